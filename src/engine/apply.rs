//! `apply`: the schedule's jobs walked, each node's work bracketed by events
//! and recorded by the state as it happens; what a failed build made in
//! this apply is destroyed in reverse, unless `--on-error abort` keeps it.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use serde_json::Value;
use tracing::Instrument;

use super::walk::{self, Outcome as JobOutcome};
use super::{ApplyOptions, OnError, Outcome, StateRecorder, dependents_first, destroy_entry};
use crate::graph::{Action, Address, Destroyer, Event, Pending, RecordError, Recorder, Run};
use crate::plan::{Job, Schedule, Work};
use crate::state::{ResourceState, Status};

/// One job of the schedule, with what it needs to run and be undone.
struct ApplyJob {
    job: Job,
    recorder: Arc<StateRecorder>,
    destroyer: Arc<dyn Destroyer>,
    /// The addresses its step recorded: what undoing it removes.
    made: Mutex<Vec<Address>>,
}

fn verb(action: Action) -> &'static str {
    match action {
        Action::Create => "create",
        Action::Replace => "replace",
        Action::Update => "update",
        Action::Destroy => "destroy",
        Action::Read => "read",
    }
}

impl ApplyJob {
    /// The job's work, between a start and an end event.
    async fn work(&self) -> Result<(), String> {
        let action = verb(self.job.action);
        let address = &self.job.address;
        self.recorder.event(Event::Start {
            address: address.clone(),
            action,
        });
        let started = Instant::now();
        let result = match &self.job.work {
            Work::Step(step) => {
                let recorder = NodeRecorder {
                    inner: &self.recorder,
                    made: &self.made,
                };
                let run = Run {
                    address,
                    build: &self.job.build,
                    action: self.job.action,
                    recorder: &recorder,
                };
                step.run(&run)
                    .await
                    .map(|()| self.recorder.get(address).and_then(|r| r.id))
                    .map_err(|e| e.to_string())
            }
            Work::Destroy { adopt } => {
                destroy_entry(&self.recorder, self.destroyer.as_ref(), address, *adopt).await
            }
            Work::Nothing => Ok(None),
        };
        match result {
            Ok(id) => {
                self.recorder.event(Event::Done {
                    address: address.clone(),
                    action,
                    id,
                    elapsed: started.elapsed(),
                });
                Ok(())
            }
            Err(error) => {
                self.recorder.event(Event::Failed {
                    address: address.clone(),
                    action,
                    error: error.clone(),
                });
                Err(error)
            }
        }
    }
}

#[async_trait]
impl walk::Job for ApplyJob {
    fn label(&self) -> String {
        self.job.id.clone()
    }

    fn group(&self) -> Option<String> {
        Some(self.job.build.clone())
    }

    fn weight(&self) -> u64 {
        self.job.weight()
    }

    async fn run(&self) -> Result<(), String> {
        if matches!(self.job.work, Work::Nothing) {
            return Ok(());
        }
        let span = tracing::info_span!(
            "node",
            build = %self.job.build,
            address = %self.job.address,
            action = verb(self.job.action)
        );
        self.work().instrument(span).await
    }

    /// Destroys what the job recorded, but for a complete OMI (with its
    /// snapshots and settings): it stays, and the next plan finishes the
    /// build around it.
    async fn undo(&self) -> Result<(), String> {
        let made: Vec<ResourceState> = self
            .made
            .lock()
            .expect("made lock")
            .iter()
            .filter_map(|a| self.recorder.get(a))
            .filter(|r| r.ephemeral || r.status != Status::Created)
            .collect();
        let mut errors = Vec::new();
        for r in dependents_first(made) {
            self.recorder.event(Event::Start {
                address: r.address.clone(),
                action: "destroy",
            });
            let started = Instant::now();
            match destroy_entry(&self.recorder, self.destroyer.as_ref(), &r.address, true).await {
                Ok(id) => self.recorder.event(Event::Done {
                    address: r.address.clone(),
                    action: "destroy",
                    id,
                    elapsed: started.elapsed(),
                }),
                Err(e) => errors.push(format!("removing {}: {e}", r.address)),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}

/// The recorder a step sees: the state's, noting what the step records.
struct NodeRecorder<'a> {
    inner: &'a StateRecorder,
    made: &'a Mutex<Vec<Address>>,
}

impl NodeRecorder<'_> {
    fn note(&self, address: &Address) {
        let mut made = self.made.lock().expect("made lock");
        if !made.contains(address) {
            made.push(address.clone());
        }
    }
}

#[async_trait]
impl Recorder for NodeRecorder<'_> {
    fn lineage(&self) -> String {
        self.inner.lineage()
    }

    async fn pending(&self, entry: Pending) -> Result<(), RecordError> {
        self.note(&entry.address);
        self.inner.pending(entry).await
    }

    async fn created(&self, address: &Address, id: &str) -> Result<(), RecordError> {
        self.inner.created(address, id).await
    }

    async fn made_with(
        &self,
        maker: &Address,
        made: Vec<ResourceState>,
    ) -> Result<(), RecordError> {
        for r in &made {
            self.note(&r.address);
        }
        self.inner.made_with(maker, made).await
    }

    async fn settled(&self, entries: Vec<ResourceState>) -> Result<(), RecordError> {
        for entry in &entries {
            self.note(&entry.address);
        }
        self.inner.settled(entries).await
    }

    async fn update(
        &self,
        address: &Address,
        attributes: std::collections::BTreeMap<String, Value>,
        input_digest: Option<String>,
        status: Status,
    ) -> Result<(), RecordError> {
        self.inner
            .update(address, attributes, input_digest, status)
            .await
    }

    async fn forget(&self, addresses: &[Address]) -> Result<(), RecordError> {
        self.inner.forget(addresses).await
    }

    fn get(&self, address: &Address) -> Option<ResourceState> {
        self.inner.get(address)
    }

    fn build_entries(&self, build: &str) -> Vec<ResourceState> {
        self.inner.build_entries(build)
    }

    fn event(&self, event: Event) {
        self.inner.event(event)
    }

    fn cancelled(&self) -> bool {
        self.inner.cancelled()
    }
}

/// Runs the schedule: at most `parallelism` jobs at once; a build that
/// fails stops, and what it made in this apply is destroyed, or kept, or
/// its step runs again, as `on_error` says or the user answers; the other
/// builds go on.
pub async fn apply(
    recorder: &Arc<StateRecorder>,
    schedule: &Schedule,
    destroyer: Arc<dyn Destroyer>,
    how: &ApplyOptions<'_>,
) -> Outcome {
    let jobs: Vec<Arc<ApplyJob>> = schedule
        .jobs
        .iter()
        .map(|job| {
            Arc::new(ApplyJob {
                job: job.clone(),
                recorder: Arc::clone(recorder),
                destroyer: Arc::clone(&destroyer),
                made: Mutex::new(Vec::new()),
            })
        })
        .collect();
    let stop = || recorder.cancelled();
    let on_failure = match how.on_error {
        OnError::Cleanup => walk::Decision::Reverse,
        OnError::Abort => walk::Decision::Keep,
    };
    let options = walk::Options {
        max_groups: how.parallel_builds,
        ask: how.ask,
        ..walk::Options::new(how.parallelism, on_failure, &stop)
    };
    let mut outcome = Outcome::default();
    let report = match walk::walk(jobs.clone(), &schedule.edges, &options).await {
        Ok(report) => report,
        Err(cycle) => {
            outcome.failures.push(("plan".into(), cycle.to_string()));
            return outcome;
        }
    };
    for (job, result) in jobs.iter().zip(&report.outcomes) {
        if let JobOutcome::Failed(why) = result {
            outcome.failures.push((
                format!("build \"{}\" ({})", job.job.build, job.job.id),
                why.clone(),
            ));
        }
    }
    if report.stopped && outcome.failures.is_empty() {
        outcome
            .failures
            .push(("apply".into(), "interrupted before the end".into()));
    }
    for (i, result) in &report.undone {
        if let Err(why) = result {
            outcome
                .failures
                .push((format!("cleanup of {}", jobs[*i].job.id), why.clone()));
        }
    }
    let state = recorder.snapshot();
    // Kept on purpose (`abort`) or left by a failed cleanup: either way,
    // a destroy removes it.
    outcome.left = report
        .failed_groups
        .iter()
        .flat_map(|build| state.build(build))
        .filter(|r| r.ephemeral || r.status != Status::Created)
        .map(|r| r.address.to_string())
        .collect();
    outcome
}
