//! Running plans: the jobs of a schedule walked with bounded parallelism,
//! every step recorded in the state as it happens, a failed build's work
//! reversed (or left, as `--on-error` says), and destroy in the reverse
//! order of the recorded dependencies. The engine knows graphs and states,
//! not builders: nodes come in as steps, and removal as a [`Destroyer`].

mod apply;
mod destroy;
mod recorder;
pub mod walk;

use std::time::Duration;

pub use apply::apply;
pub use destroy::destroy;
pub use recorder::{Cancel, StateRecorder};

use crate::graph::{Address, DestroyError, Destroyed, Destroyer, Recorder};
use crate::plan::Observed;
use crate::state::ResourceState;

/// What `--on-error` asks for when a build fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Destroy what the failed build made in this apply.
    Cleanup,
    /// Leave it in the state for inspection and a later destroy.
    Abort,
}

/// How an apply runs.
pub struct ApplyOptions<'a> {
    /// At most this many operations at once, across builds.
    pub parallelism: usize,
    /// At most this many builds under way at once (`-parallel-builds`).
    pub parallel_builds: Option<usize>,
    /// What a failed build leaves when nobody is asked.
    pub on_error: OnError,
    /// Asked what to do when a build's step fails (`-on-error=ask`).
    pub ask: Option<walk::Ask<'a>>,
}

/// What an apply or destroy left undone.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Who (a build, an address), and why.
    pub failures: Vec<(String, String)>,
    /// Addresses still in the state that the run meant to remove.
    pub left: Vec<String>,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.failures.is_empty() && self.left.is_empty()
    }
}

/// How often a removal still in use is tried again, and how long apart.
const IN_USE_ATTEMPTS: u32 = 8;

fn in_use_delay(attempt: u32) -> Duration {
    Duration::from_millis(250u64 << attempt.min(5)).min(Duration::from_secs(5))
}

/// Destroys the state entry at `address`, trying again while another
/// resource still uses it, and forgets it. Answers the id deleted. With
/// `adopt`, what the resource made and the state lacks (a crash came
/// before it was recorded) is recorded first, then destroyed after it.
async fn destroy_entry(
    recorder: &StateRecorder,
    destroyer: &dyn Destroyer,
    address: &Address,
    adopt: bool,
) -> Result<Option<String>, String> {
    let Some(resource) = recorder.get(address) else {
        return Ok(None);
    };
    let adopted = if adopt {
        adopt_dependents(recorder, destroyer, std::slice::from_ref(&resource)).await?
    } else {
        Vec::new()
    };
    let id = destroy_one(recorder, destroyer, &resource).await?;
    for a in adopted {
        if let Some(r) = recorder.get(&a) {
            destroy_one(recorder, destroyer, &r).await?;
        }
    }
    Ok(id)
}

/// Destroys one entry, trying again while it is in use, and forgets it.
async fn destroy_one(
    recorder: &StateRecorder,
    destroyer: &dyn Destroyer,
    resource: &ResourceState,
) -> Result<Option<String>, String> {
    let address = &resource.address;
    let mut attempt = 0;
    let destroyed = loop {
        match destroyer.destroy(resource).await {
            Err(DestroyError::InUse(_)) if attempt + 1 < IN_USE_ATTEMPTS => {
                tokio::time::sleep(in_use_delay(attempt)).await;
                attempt += 1;
            }
            other => break other.map_err(|e| e.to_string())?,
        }
    };
    recorder
        .forget(std::slice::from_ref(address))
        .await
        .map_err(|e| e.to_string())?;
    Ok(match destroyed {
        Destroyed::Deleted(id) => Some(id),
        Destroyed::AlreadyGone => None,
    })
}

/// Records what `resources` made that the state lacks, found through them
/// (an image's snapshots, a VM's volumes), each maker depending on what it
/// made. Answers the addresses recorded.
async fn adopt_dependents(
    recorder: &StateRecorder,
    destroyer: &dyn Destroyer,
    resources: &[ResourceState],
) -> Result<Vec<Address>, String> {
    let found = destroyer
        .dependents(resources)
        .await
        .map_err(|e| e.to_string())?;
    if found.is_empty() {
        return Ok(Vec::new());
    }
    let mut recorded = Vec::new();
    recorder
        .change(|state| {
            for (maker, mut dependent) in found {
                let id = dependent.id.clone();
                if state.resources.iter().any(|r| r.id.is_some() && r.id == id) {
                    continue;
                }
                if state.get(dependent.address.as_str()).is_some() {
                    // The address names another object: key this one by its id.
                    let key = id.unwrap_or_default();
                    dependent.address = Address::new(&dependent.build, dependent.kind, Some(&key));
                }
                // What it came with uses it: that goes first.
                if let Some(m) = state.get_mut(maker.as_str()) {
                    m.dependencies.push(dependent.address.clone());
                }
                recorded.push(dependent.address.clone());
                state.put(dependent);
            }
        })
        .await
        .map_err(|e| e.to_string())?;
    Ok(recorded)
}

/// The entries in an order where each comes before what it depends on.
fn dependents_first(entries: Vec<ResourceState>) -> Vec<ResourceState> {
    let mut left = entries;
    let mut out = Vec::new();
    while !left.is_empty() {
        let needed = |r: &ResourceState, others: &[ResourceState]| {
            others
                .iter()
                .any(|o| o.address != r.address && o.dependencies.contains(&r.address))
        };
        let (free, blocked): (Vec<_>, Vec<_>) =
            left.iter().cloned().partition(|r| !needed(r, &left));
        if free.is_empty() {
            // A cycle of recorded dependencies: the in-use retries sort it.
            out.extend(blocked);
            break;
        }
        out.extend(free);
        left = blocked;
    }
    out
}

/// Makes what refresh saw the state's view of each resource, before
/// anything changes (attributes only; ids and statuses stay).
pub async fn record_refresh(recorder: &StateRecorder, observed: &Observed) -> Result<(), String> {
    let seen: Vec<(
        Address,
        std::collections::BTreeMap<String, serde_json::Value>,
    )> = observed
        .iter()
        .filter_map(|(a, s)| Some((a.clone(), s.clone()?)))
        .collect();
    if seen.is_empty() {
        return Ok(());
    }
    recorder
        .change(|state| {
            for (address, attributes) in seen {
                if let Some(r) = state.get_mut(address.as_str()) {
                    r.attributes.extend(attributes);
                }
            }
        })
        .await
        .map_err(|e| e.to_string())
}
