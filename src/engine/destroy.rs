//! `destroy`: what the state holds, removed in the reverse order of the
//! dependencies it recorded (whatever the kinds), after recording what came
//! into being with it and the state lacks.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use super::walk::{self, Outcome as JobOutcome};
use super::{Outcome, StateRecorder, destroy_entry};
use crate::graph::{Address, Destroyer, Event, Recorder};
use crate::state::ResourceState;

struct DestroyJob {
    address: Address,
    recorder: Arc<StateRecorder>,
    destroyer: Arc<dyn Destroyer>,
}

#[async_trait]
impl walk::Job for DestroyJob {
    fn label(&self) -> String {
        self.address.to_string()
    }

    fn group(&self) -> Option<String> {
        None
    }

    async fn run(&self) -> Result<(), String> {
        self.recorder.event(Event::Start {
            address: self.address.clone(),
            action: "destroy",
        });
        let started = Instant::now();
        // What each entry made was adopted before the walk, for all at once.
        let id = destroy_entry(
            &self.recorder,
            self.destroyer.as_ref(),
            &self.address,
            false,
        )
        .await
        .inspect_err(|error| {
            self.recorder.event(Event::Failed {
                address: self.address.clone(),
                action: "destroy",
                error: error.clone(),
            })
        })?;
        self.recorder.event(Event::Done {
            address: self.address.clone(),
            action: "destroy",
            id,
            elapsed: started.elapsed(),
        });
        Ok(())
    }
}

/// Destroys the state entries at `addresses`, at most `parallelism` at
/// once, each after what depends on it. What a failure leaves in place
/// (and what had to wait for it) is reported.
pub async fn destroy(
    recorder: &Arc<StateRecorder>,
    destroyer: Arc<dyn Destroyer>,
    addresses: &[Address],
    parallelism: usize,
) -> Outcome {
    let mut outcome = Outcome::default();
    let mut addresses = addresses.to_vec();
    let unreadable =
        adopt_dependents(recorder, destroyer.as_ref(), &mut addresses, &mut outcome).await;
    addresses.retain(|a| !unreadable.contains(a));
    let entries: Vec<ResourceState> = addresses.iter().filter_map(|a| recorder.get(a)).collect();
    let index: BTreeMap<&Address, usize> = entries
        .iter()
        .enumerate()
        .map(|(i, r)| (&r.address, i))
        .collect();
    let edges: Vec<(usize, usize)> = entries
        .iter()
        .enumerate()
        .flat_map(|(i, r)| {
            r.dependencies
                .iter()
                .filter_map(|d| index.get(d))
                .map(move |&j| (i, j))
        })
        .collect();
    let jobs: Vec<Arc<DestroyJob>> = entries
        .iter()
        .map(|r| {
            Arc::new(DestroyJob {
                address: r.address.clone(),
                recorder: Arc::clone(recorder),
                destroyer: Arc::clone(&destroyer),
            })
        })
        .collect();
    let stop = || recorder.cancelled();
    let options = walk::Options::new(parallelism, walk::Decision::Keep, &stop);
    match walk::walk(jobs.clone(), &edges, &options).await {
        Ok(report) => {
            for (job, result) in jobs.iter().zip(&report.outcomes) {
                if let JobOutcome::Failed(why) = result {
                    outcome
                        .failures
                        .push((job.address.to_string(), why.clone()));
                }
            }
        }
        Err(cycle) => outcome.failures.push((
            "state".into(),
            format!("the recorded dependencies cannot be followed: {cycle}"),
        )),
    }
    outcome.left = addresses
        .iter()
        .filter(|a| recorder.get(a).is_some())
        .map(|a| a.to_string())
        .collect();
    outcome
}

/// Records what the resources at `addresses` brought along and the state
/// lacks, and adds it to what is destroyed. Answers the resources whose
/// dependents could not be read or recorded: they are left alone, so that
/// nothing loses track.
async fn adopt_dependents(
    recorder: &Arc<StateRecorder>,
    destroyer: &dyn Destroyer,
    addresses: &mut Vec<Address>,
    outcome: &mut Outcome,
) -> Vec<Address> {
    let resources: Vec<ResourceState> = addresses.iter().filter_map(|a| recorder.get(a)).collect();
    match super::adopt_dependents(recorder, destroyer, &resources).await {
        Ok(recorded) => {
            addresses.extend(recorded);
            Vec::new()
        }
        Err(e) => {
            outcome.failures.push(("dependents".into(), e));
            addresses.clone()
        }
    }
}
