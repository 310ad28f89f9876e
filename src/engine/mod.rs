//! Running plans: builds in parallel up to a bound, every step recorded in
//! the state as it happens, cleanup on failure or interruption, and destroy
//! in dependency order. The engine knows graphs and states, not builders:
//! builders come in as [`BuildRunner`]s and a [`Destroyer`].

mod recorder;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::graph::{BuildAction, BuildRunner, DestroyError, Destroyed, Destroyer, Event, Recorder};
use crate::plan::Observed;
use crate::state::{Kind, State, Status};

pub use recorder::{Cancel, StateRecorder};

/// What `--on-error` asks for when a build fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Destroy the failed build's ephemerals and half-made OMI.
    Cleanup,
    /// Leave them in the state for inspection and a later destroy.
    Abort,
}

/// What an apply or destroy left undone.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Build or address, and why.
    pub failures: Vec<(String, String)>,
    /// Addresses still in the state that the run meant to remove.
    pub left: Vec<String>,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.failures.is_empty() && self.left.is_empty()
    }
}

/// The order destroy goes in: what uses a resource goes before it.
fn tier(kind: Kind) -> u8 {
    match kind {
        Kind::ImagePermissions | Kind::SnapshotPermissions | Kind::Tags => 0,
        Kind::Image => 1,
        Kind::Snapshot => 2,
        Kind::Vm => 3,
        Kind::Volume => 4,
        Kind::SecurityGroup => 5,
        Kind::Keypair => 6,
        Kind::PublicIp => 7,
    }
}

/// Destroys the state entries at `addresses`, tier by tier, each tier in
/// parallel up to `parallelism`; what is still in use is tried again after
/// the rest, with backoff.
pub async fn destroy(
    recorder: &Arc<StateRecorder>,
    destroyer: Arc<dyn Destroyer>,
    addresses: &[String],
    parallelism: usize,
) -> Outcome {
    let mut outcome = Outcome::default();
    let mut addresses = addresses.to_vec();
    let skipped =
        adopt_dependents(recorder, destroyer.as_ref(), &mut addresses, &mut outcome).await;
    let mut pending: Vec<_> = addresses
        .iter()
        .filter(|a| !skipped.contains(a))
        .filter_map(|a| recorder.get(a))
        .collect();
    pending.sort_by_key(|r| (tier(r.kind), r.address.clone()));
    let semaphore = Arc::new(Semaphore::new(parallelism.max(1)));
    for round in 0..8u32 {
        if pending.is_empty() {
            break;
        }
        if round > 0 {
            tokio::time::sleep(Duration::from_millis(500 * u64::from(round))).await;
        }
        let mut retry = Vec::new();
        let tiers: BTreeSet<u8> = pending.iter().map(|r| tier(r.kind)).collect();
        for t in tiers {
            let batch: Vec<_> = pending
                .iter()
                .filter(|r| tier(r.kind) == t)
                .cloned()
                .collect();
            let mut tasks = Vec::new();
            for resource in batch {
                let destroyer = Arc::clone(&destroyer);
                let recorder = Arc::clone(recorder);
                let semaphore = Arc::clone(&semaphore);
                tasks.push(tokio::spawn(async move {
                    let _permit = semaphore.acquire_owned().await.expect("semaphore open");
                    recorder.event(Event::Start {
                        address: resource.address.clone(),
                        action: "destroy",
                    });
                    let started = std::time::Instant::now();
                    let result = destroyer.destroy(&resource).await;
                    if let Ok(done) = &result {
                        let id = match done {
                            Destroyed::Deleted(id) => Some(id.clone()),
                            Destroyed::AlreadyGone => None,
                        };
                        if let Err(e) = recorder.forget(&resource.address) {
                            return (resource, Err(DestroyError::Failed(e)));
                        }
                        recorder.event(Event::Done {
                            address: resource.address.clone(),
                            action: "destroy",
                            id,
                            elapsed: started.elapsed(),
                        });
                    }
                    (resource, result.map(|_| ()))
                }));
            }
            for task in tasks {
                let (resource, result) = task.await.expect("destroy task does not panic");
                match result {
                    Ok(()) => {}
                    Err(DestroyError::InUse(why)) => retry.push((resource, why)),
                    Err(DestroyError::Failed(why)) => {
                        outcome.failures.push((resource.address.clone(), why));
                    }
                }
            }
        }
        if round == 7 {
            for (r, why) in &retry {
                outcome.failures.push((r.address.clone(), why.clone()));
            }
        }
        pending = retry.into_iter().map(|(r, _)| r).collect();
    }
    outcome.left = addresses
        .iter()
        .filter(|a| recorder.get(a).is_some())
        .cloned()
        .collect();
    outcome
}

/// Records what the resources at `addresses` brought along and the state
/// lacks, and adds it to what is destroyed. Answers the resources whose
/// dependents could not be read: they are left alone, so that nothing loses
/// track.
async fn adopt_dependents(
    recorder: &Arc<StateRecorder>,
    destroyer: &dyn Destroyer,
    addresses: &mut Vec<String>,
    outcome: &mut Outcome,
) -> Vec<String> {
    let mut adopted = Vec::new();
    let mut unreadable = Vec::new();
    for address in addresses.iter() {
        let Some(resource) = recorder.get(address) else {
            continue;
        };
        match destroyer.dependents(&resource).await {
            Ok(found) => adopted.extend(found),
            Err(e) => {
                outcome.failures.push((address.clone(), e.to_string()));
                unreadable.push(address.clone());
            }
        }
    }
    if adopted.is_empty() {
        return unreadable;
    }
    let mut recorded = Vec::new();
    let change = recorder.change(|state| {
        for mut dependent in adopted {
            let id = dependent.id.clone();
            if state.resources.iter().any(|r| r.id.is_some() && r.id == id) {
                continue;
            }
            if state.get(&dependent.address).is_some() {
                // The address names another object: key this one by its id.
                let id = id.unwrap_or_default();
                dependent.address =
                    crate::graph::address(&dependent.build, dependent.kind, Some(&id));
            }
            recorded.push(dependent.address.clone());
            state.put(dependent);
        }
    });
    match change {
        Ok(()) => {
            addresses.extend(recorded);
            unreadable
        }
        Err(e) => {
            // Destroying without the record would risk losing them.
            outcome.failures.push(("state".into(), e));
            addresses.clone()
        }
    }
}

/// The entries a failed build leaves to clean: its ephemerals and whatever
/// durable entry is not complete.
fn failed_build_entries(state: &State, build: &str) -> Vec<String> {
    state
        .build(build)
        .filter(|r| r.ephemeral || r.status != Status::Created)
        .map(|r| r.address.clone())
        .collect()
}

/// Runs the plan: leftovers first, then each build with its action, at most
/// `parallelism` at once.
pub async fn apply(
    recorder: &Arc<StateRecorder>,
    runners: Vec<(Arc<dyn BuildRunner>, BuildAction)>,
    orphans: &[String],
    destroyer: Arc<dyn Destroyer>,
    parallelism: usize,
    on_error: OnError,
) -> Outcome {
    let mut outcome = destroy(recorder, Arc::clone(&destroyer), orphans, parallelism).await;
    if !outcome.ok() {
        return outcome;
    }
    let semaphore = Arc::new(Semaphore::new(parallelism.max(1)));
    let mut tasks = Vec::new();
    for (runner, action) in runners {
        let recorder = Arc::clone(recorder);
        // Taken before spawning, so builds start in plan order.
        let permit = Arc::clone(&semaphore)
            .acquire_owned()
            .await
            .expect("semaphore open");
        let span = tracing::info_span!("build", name = runner.name());
        tasks.push(tokio::spawn(
            async move {
                let _permit = permit;
                let result = runner.apply(recorder.as_ref(), action).await;
                (runner.name().to_string(), result)
            }
            .instrument(span),
        ));
    }
    let mut failed = Vec::new();
    for task in tasks {
        let (build, result) = task.await.expect("build task does not panic");
        if let Err(e) = result {
            outcome.failures.push((format!("build \"{build}\""), e));
            failed.push(build);
        }
    }
    if on_error == OnError::Cleanup {
        for build in failed {
            let addresses = failed_build_entries(&recorder.snapshot(), &build);
            let cleanup = destroy(recorder, Arc::clone(&destroyer), &addresses, parallelism).await;
            outcome.failures.extend(cleanup.failures);
            outcome.left.extend(cleanup.left);
        }
    }
    outcome
}

/// Makes what refresh saw the state's view of each resource, before
/// anything changes (attributes only; ids and statuses stay).
pub fn record_refresh(recorder: &StateRecorder, observed: &Observed) -> Result<(), String> {
    recorder.change(|state| {
        for (address, seen) in observed {
            if let (Some(r), Some(attributes)) = (state.get_mut(address), seen) {
                r.attributes
                    .extend(attributes.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
    })
}
