//! Waiting for resources to reach a state: polling with backoff, an overall
//! timeout, failure states, and one batched `Read*` call for every wait of
//! the same kind in flight (ten VMs waited on at once cost one ReadVms per
//! poll, not ten).

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::Client;
use super::error::Error;
use super::model::{
    FiltersImage, FiltersSnapshot, FiltersVm, FiltersVolume, Image, ReadImagesRequest,
    ReadSnapshotsRequest, ReadVmsRequest, ReadVolumesRequest, Snapshot, Vm, Volume,
};
use super::transport::BoxFuture;

/// How long and how often to poll.
#[derive(Debug, Clone)]
pub struct WaitPolicy {
    pub timeout: Duration,
    pub initial_interval: Duration,
    pub max_interval: Duration,
    /// How long "not found" counts as "not visible yet" rather than "gone".
    pub not_found_grace: Duration,
}

impl Default for WaitPolicy {
    fn default() -> Self {
        WaitPolicy {
            timeout: Duration::from_secs(30 * 60),
            initial_interval: Duration::from_secs(2),
            max_interval: Duration::from_secs(10),
            not_found_grace: Duration::from_secs(20),
        }
    }
}

impl WaitPolicy {
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// What one poll saw.
#[derive(Debug, Clone)]
pub enum Check<T> {
    Done(T),
    Pending(String),
    Failed { state: String, reason: String },
}

/// Polls until `poll` says done or failed, the timeout passes, or a poll
/// errors. The interval grows by half each poll up to `max_interval`.
pub async fn wait_for<T, F, Fut>(what: &str, policy: &WaitPolicy, mut poll: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Check<T>, Error>>,
{
    let start = Instant::now();
    let mut interval = policy.initial_interval;
    let mut last_state = String::from("unknown");
    loop {
        match poll().await? {
            Check::Done(v) => return Ok(v),
            Check::Failed { state, reason } => {
                return Err(Error::WaitFailed {
                    what: what.to_string(),
                    state,
                    reason: if reason.is_empty() {
                        String::new()
                    } else {
                        format!(": {reason}")
                    },
                });
            }
            Check::Pending(state) => {
                if state != last_state {
                    tracing::info!(resource = what, state = %state, elapsed_s = start.elapsed().as_secs(), "waiting");
                    last_state = state;
                }
            }
        }
        if start.elapsed() + interval > policy.timeout {
            return Err(Error::WaitTimeout {
                what: what.to_string(),
                elapsed_secs: start.elapsed().as_secs(),
                last_state,
            });
        }
        tokio::time::sleep(interval).await;
        interval = (interval + interval / 2).min(policy.max_interval);
    }
}

type Fetch<T> =
    Arc<dyn Fn(Vec<String>) -> BoxFuture<'static, Result<HashMap<String, T>, Error>> + Send + Sync>;
type Shared<T> = Option<Arc<Result<HashMap<String, T>, Error>>>;
/// The ids of the batch being gathered, and where its result will appear.
type Pending<T> = Arc<Mutex<Option<(BTreeSet<String>, watch::Receiver<Shared<T>>)>>>;

/// Coalesces reads of one kind: ids asked for within `window` of each other
/// are fetched by one call, and every asker gets its own resource back.
pub struct Batcher<T> {
    fetch: Fetch<T>,
    window: Duration,
    pending: Pending<T>,
}

impl<T: Clone + Send + Sync + 'static> Batcher<T> {
    pub fn new(window: Duration, fetch: Fetch<T>) -> Batcher<T> {
        Batcher {
            fetch,
            window,
            pending: Arc::new(Mutex::new(None)),
        }
    }

    /// The resource with this id as the next batched read sees it, or `None`
    /// when the read does not return it.
    pub async fn get(&self, id: &str) -> Result<Option<T>, Error> {
        let mut rx = {
            let mut pending = self.pending.lock().expect("batcher lock");
            match pending.as_mut() {
                Some((ids, rx)) => {
                    ids.insert(id.to_string());
                    rx.clone()
                }
                None => {
                    let (tx, rx) = watch::channel(None);
                    *pending = Some((BTreeSet::from([id.to_string()]), rx.clone()));
                    let slot = Arc::clone(&self.pending);
                    let fetch = Arc::clone(&self.fetch);
                    let window = self.window;
                    tokio::spawn(async move {
                        tokio::time::sleep(window).await;
                        let ids = slot
                            .lock()
                            .expect("batcher lock")
                            .take()
                            .map(|(ids, _)| ids)
                            .unwrap_or_default();
                        let result = fetch(ids.into_iter().collect()).await;
                        let _ = tx.send(Some(Arc::new(result)));
                    });
                    rx
                }
            }
        };
        let result = rx
            .wait_for(Option::is_some)
            .await
            .map_err(|_| Error::WaitGone {
                what: format!("the batched read for {id}"),
            })?
            .clone()
            .expect("waited for Some");
        match result.as_ref() {
            Ok(map) => Ok(map.get(id).cloned()),
            Err(e) => Err(e.clone()),
        }
    }
}

/// Waits on VMs, images, snapshots and volumes, sharing reads per kind.
pub struct Waiters {
    vms: Batcher<Vm>,
    images: Batcher<Image>,
    snapshots: Batcher<Snapshot>,
    volumes: Batcher<Volume>,
}

/// Builds a [`Fetch`] that reads every page of `$req` filtered on the ids.
macro_rules! fetch_by_ids {
    ($client:expr, $req:ident, $filters:ident, $ids_field:ident, $id:ident) => {{
        let client = $client.clone();
        Arc::new(move |ids: Vec<String>| {
            let client = client.clone();
            Box::pin(async move {
                let request = $req {
                    filters: Some($filters {
                        $ids_field: Some(ids),
                        ..Default::default()
                    }),
                    ..Default::default()
                };
                let items = client.read_all(&request).await?;
                Ok(items.into_iter().map(|r| (r.$id.clone(), r)).collect())
            }) as BoxFuture<'static, _>
        })
    }};
}

impl Waiters {
    pub fn new(client: &Client) -> Waiters {
        let window = Duration::from_millis(50);
        Waiters {
            vms: Batcher::new(
                window,
                fetch_by_ids!(client, ReadVmsRequest, FiltersVm, vm_ids, vm_id),
            ),
            images: Batcher::new(
                window,
                fetch_by_ids!(client, ReadImagesRequest, FiltersImage, image_ids, image_id),
            ),
            snapshots: Batcher::new(
                window,
                fetch_by_ids!(
                    client,
                    ReadSnapshotsRequest,
                    FiltersSnapshot,
                    snapshot_ids,
                    snapshot_id
                ),
            ),
            volumes: Batcher::new(
                window,
                fetch_by_ids!(
                    client,
                    ReadVolumesRequest,
                    FiltersVolume,
                    volume_ids,
                    volume_id
                ),
            ),
        }
    }

    /// Waits for a VM to reach `target` (`running`, `stopped` or `terminated`).
    /// A VM that terminates while waiting for anything else has failed; a VM
    /// that is gone when waiting for `terminated` is done.
    pub async fn vm(
        &self,
        id: &str,
        target: &str,
        policy: &WaitPolicy,
    ) -> Result<Option<Vm>, Error> {
        let what = format!("VM {id} to be {target}");
        let start = Instant::now();
        wait_for(&what, policy, || async {
            let vm = self.vms.get(id).await?;
            Ok(match vm {
                None if target == "terminated" => Check::Done(None),
                None => not_found(start, policy, id)?,
                Some(vm) if vm.state == target => Check::Done(Some(vm)),
                Some(vm)
                    if target != "terminated"
                        && matches!(
                            vm.state.as_str(),
                            "terminated" | "shutting-down" | "quarantine"
                        ) =>
                {
                    Check::Failed {
                        reason: vm.state_reason.clone().unwrap_or_default(),
                        state: vm.state,
                    }
                }
                Some(vm) => Check::Pending(vm.state),
            })
        })
        .await
    }

    /// Waits for an image to be `available`; `failed` is a failure.
    pub async fn image_available(&self, id: &str, policy: &WaitPolicy) -> Result<Image, Error> {
        let what = format!("image {id} to be available");
        let start = Instant::now();
        wait_for(&what, policy, || async {
            Ok(match self.images.get(id).await? {
                None => not_found(start, policy, id)?,
                Some(i) if i.state == "available" => Check::Done(i),
                Some(i) if i.state == "failed" => Check::Failed {
                    reason: i
                        .state_comment
                        .and_then(|c| c.state_message)
                        .unwrap_or_default(),
                    state: i.state,
                },
                Some(i) => Check::Pending(i.state),
            })
        })
        .await
    }

    /// Waits for a snapshot to be `completed`; `error` is a failure.
    pub async fn snapshot_completed(
        &self,
        id: &str,
        policy: &WaitPolicy,
    ) -> Result<Snapshot, Error> {
        let what = format!("snapshot {id} to be completed");
        let start = Instant::now();
        wait_for(&what, policy, || async {
            Ok(match self.snapshots.get(id).await? {
                None => not_found(start, policy, id)?,
                Some(s) if s.state == "completed" => Check::Done(s),
                Some(s) if s.state == "error" => Check::Failed {
                    state: s.state,
                    reason: String::new(),
                },
                Some(s) => Check::Pending(format!("{} {}%", s.state, s.progress)),
            })
        })
        .await
    }

    /// Waits for a volume to be `available` (created, or unlinked); `error`
    /// is a failure.
    pub async fn volume_available(&self, id: &str, policy: &WaitPolicy) -> Result<Volume, Error> {
        self.volume(id, policy, "available", |v| v.state == "available")
            .await
    }

    /// Waits for a volume to be `in-use` with every link `attached`.
    pub async fn volume_attached(&self, id: &str, policy: &WaitPolicy) -> Result<Volume, Error> {
        self.volume(id, policy, "attached", |v| {
            v.state == "in-use"
                && !v.linked_volumes.is_empty()
                && v.linked_volumes.iter().all(|l| l.state == "attached")
        })
        .await
    }

    async fn volume(
        &self,
        id: &str,
        policy: &WaitPolicy,
        target: &str,
        done: impl Fn(&Volume) -> bool,
    ) -> Result<Volume, Error> {
        let what = format!("volume {id} to be {target}");
        let start = Instant::now();
        wait_for(&what, policy, || async {
            Ok(match self.volumes.get(id).await? {
                None => not_found(start, policy, id)?,
                Some(v) if done(&v) => Check::Done(v),
                Some(v) if v.state == "error" => Check::Failed {
                    state: v.state,
                    reason: String::new(),
                },
                Some(v) => Check::Pending(v.state),
            })
        })
        .await
    }
}

/// Right after a create the API may not list the resource yet; past the
/// grace period, missing means gone.
fn not_found<T>(start: Instant, policy: &WaitPolicy, id: &str) -> Result<Check<T>, Error> {
    if start.elapsed() < policy.not_found_grace {
        Ok(Check::Pending("not visible yet".into()))
    } else {
        Err(Error::WaitGone {
            what: id.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn concurrent_gets_share_one_fetch() {
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (c, s) = (calls.clone(), seen.clone());
        let batcher: Batcher<String> = Batcher::new(
            Duration::from_millis(20),
            Arc::new(move |ids: Vec<String>| {
                c.fetch_add(1, Ordering::SeqCst);
                s.lock().unwrap().push(ids.clone());
                Box::pin(async move {
                    Ok(ids
                        .into_iter()
                        .filter(|i| i != "gone")
                        .map(|i| (i.clone(), format!("state of {i}")))
                        .collect())
                })
            }),
        );
        let (a, b, g) = tokio::join!(batcher.get("a"), batcher.get("b"), batcher.get("gone"));
        assert_eq!(a.unwrap().as_deref(), Some("state of a"));
        assert_eq!(b.unwrap().as_deref(), Some("state of b"));
        assert_eq!(g.unwrap(), None);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(seen.lock().unwrap()[0], vec!["a", "b", "gone"]);
        // A later get starts a new batch.
        batcher.get("a").await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn wait_times_out_with_last_state() {
        let policy = WaitPolicy {
            timeout: Duration::from_secs(10),
            initial_interval: Duration::from_secs(1),
            max_interval: Duration::from_secs(2),
            not_found_grace: Duration::from_secs(1),
        };
        let err = wait_for::<(), _, _>("thing", &policy, || async {
            Ok(Check::Pending("pending".into()))
        })
        .await
        .unwrap_err();
        match err {
            Error::WaitTimeout {
                last_state,
                elapsed_secs,
                ..
            } => {
                assert_eq!(last_state, "pending");
                assert!(elapsed_secs <= 10);
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn failure_state_ends_the_wait() {
        let policy = WaitPolicy::default();
        let mut n = 0;
        let err = wait_for::<(), _, _>("image", &policy, || {
            n += 1;
            let n = n;
            async move {
                Ok(if n < 3 {
                    Check::Pending("pending".into())
                } else {
                    Check::Failed {
                        state: "failed".into(),
                        reason: "disk".into(),
                    }
                })
            }
        })
        .await
        .unwrap_err();
        assert!(err.to_string().contains("failed: disk"), "{err}");
        assert_eq!(n, 3);
    }
}
