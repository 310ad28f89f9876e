//! Waiting for resources to reach a state: polls that grow further apart as
//! a transition lasts, an overall timeout, failure states, and one `Read*`
//! call for every wait of the same kind due at about the same moment (ten
//! VMs waited on at once cost one ReadVms per poll, not ten).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::Client;
use super::error::Error;
use super::model::{
    FiltersImage, FiltersSnapshot, FiltersVm, FiltersVolume, Image, ReadImagesRequest,
    ReadSnapshotsRequest, ReadVmsRequest, ReadVolumesRequest, Snapshot, Vm, Volume,
};
use super::transport::BoxFuture;

/// How long and how often to poll.
#[derive(Debug, Clone, PartialEq)]
pub struct WaitPolicy {
    pub timeout: Duration,
    /// The time between the first polls of a transition (the Packer
    /// plugin's fixed 2 s). Once a transition has lasted five times this,
    /// polls come every fifth of the time it has lasted so far.
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
            max_interval: Duration::from_secs(30),
            not_found_grace: Duration::from_secs(20),
        }
    }
}

impl WaitPolicy {
    /// The policy for a cloud whose time runs `scale` times as fast as a
    /// real one's (an in-process simulator): polls as often, relative to
    /// its transitions, as they would be against the real thing.
    pub fn scaled(mut self, scale: f64) -> Self {
        let floor = Duration::from_millis(10);
        let scale = |d: Duration| d.mul_f64(scale.clamp(0.0, 1.0)).max(floor);
        self.initial_interval = scale(self.initial_interval);
        self.max_interval = scale(self.max_interval);
        self
    }

    /// How long after a poll the next one comes, `elapsed` into the
    /// transition: often at first, then a fifth of the time so far, so a
    /// long transition is not polled at a short one's pace.
    pub fn next_interval(&self, elapsed: Duration) -> Duration {
        (elapsed / 5)
            .max(self.initial_interval)
            .min(self.max_interval.max(self.initial_interval))
    }
}

/// What one poll saw.
#[derive(Debug, Clone)]
pub enum Check<T> {
    Done(T),
    Pending(String),
    Failed { state: String, reason: String },
}

/// The bookkeeping of one wait: the last state seen, and what ends it.
struct Watch<'a> {
    what: &'a str,
    last_state: String,
}

impl<'a> Watch<'a> {
    fn new(what: &'a str) -> Watch<'a> {
        Watch {
            what,
            last_state: "unknown".into(),
        }
    }

    /// `Some` when done; an error when failed. A new state is logged and
    /// answered through `changed`.
    fn see<T>(&mut self, check: Check<T>, start: Instant) -> Result<Option<T>, Error> {
        match check {
            Check::Done(v) => Ok(Some(v)),
            Check::Failed { state, reason } => Err(Error::WaitFailed {
                what: self.what.to_string(),
                state,
                reason: if reason.is_empty() {
                    String::new()
                } else {
                    format!(": {reason}")
                },
            }),
            Check::Pending(state) => {
                if state != self.last_state {
                    tracing::info!(resource = self.what, state = %state, elapsed_s = start.elapsed().as_secs(), "waiting");
                    self.last_state = state;
                }
                Ok(None)
            }
        }
    }

    fn timed_out(&self, start: Instant, next: Duration, policy: &WaitPolicy) -> Result<(), Error> {
        if start.elapsed() + next > policy.timeout {
            return Err(Error::WaitTimeout {
                what: self.what.to_string(),
                elapsed_secs: start.elapsed().as_secs(),
                last_state: self.last_state.clone(),
            });
        }
        Ok(())
    }
}

type Fetch<T> =
    Arc<dyn Fn(Vec<String>) -> BoxFuture<'static, Result<HashMap<String, T>, Error>> + Send + Sync>;

/// One wait's wish to see a resource at or after a moment, and how much
/// later than that it may be seen so that the poll is shared.
struct Due<T> {
    id: String,
    at: Instant,
    slack: Duration,
    reply: oneshot::Sender<Result<Option<T>, Error>>,
}

struct Queue<T> {
    due: Vec<Due<T>>,
    /// Whether the task that serves the queue runs.
    serving: bool,
}

/// Serves the polls of one kind: each wait says when it wants to look next;
/// the polls due within a short slack of each other are made by one call,
/// at the latest of their moments, so waits that started close together
/// fall into step and share every later poll too.
pub struct Poller<T> {
    fetch: Fetch<T>,
    queue: Arc<Mutex<Queue<T>>>,
    wake: Arc<tokio::sync::Notify>,
}

impl<T: Clone + Send + Sync + 'static> Poller<T> {
    pub fn new(fetch: Fetch<T>) -> Poller<T> {
        Poller {
            fetch,
            queue: Arc::new(Mutex::new(Queue {
                due: Vec::new(),
                serving: false,
            })),
            wake: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// The resource with this id as a poll made at or after `at` (and
    /// within `slack` of it, unless another poll is already that late)
    /// sees it, or `None` when the read does not return it.
    pub async fn observe(
        &self,
        id: &str,
        at: Instant,
        slack: Duration,
    ) -> Result<Option<T>, Error> {
        let mut seen = self.observe_all(&[id.to_string()], at, slack).await?;
        Ok(seen.pop().flatten())
    }

    /// [`Poller::observe`] for several ids at once: one read.
    pub async fn observe_all(
        &self,
        ids: &[String],
        at: Instant,
        slack: Duration,
    ) -> Result<Vec<Option<T>>, Error> {
        let mut answers = Vec::new();
        let start = {
            let mut queue = self.queue.lock().expect("poller lock");
            for id in ids {
                let (reply, answer) = oneshot::channel();
                answers.push((id, answer));
                queue.due.push(Due {
                    id: id.clone(),
                    at,
                    slack,
                    reply,
                });
            }
            !std::mem::replace(&mut queue.serving, true)
        };
        if start {
            tokio::spawn(serve(
                Arc::clone(&self.queue),
                Arc::clone(&self.wake),
                Arc::clone(&self.fetch),
            ));
        } else {
            self.wake.notify_one();
        }
        let mut seen = Vec::new();
        for (id, answer) in answers {
            seen.push(answer.await.map_err(|_| Error::WaitGone {
                what: format!("the poll for {id}"),
            })??);
        }
        Ok(seen)
    }
}

async fn serve<T: Clone + Send + Sync + 'static>(
    queue: Arc<Mutex<Queue<T>>>,
    wake: Arc<tokio::sync::Notify>,
    fetch: Fetch<T>,
) {
    loop {
        let (first, slack) = {
            let mut q = queue.lock().expect("poller lock");
            q.due.retain(|d| !d.reply.is_closed());
            match q.due.iter().min_by_key(|d| d.at) {
                Some(d) => (d.at, d.slack),
                None => {
                    q.serving = false;
                    return;
                }
            }
        };
        // A new wish may come before the first due one: look again then.
        tokio::select! {
            _ = tokio::time::sleep_until(first) => {}
            _ = wake.notified() => continue,
        }
        // Those due a little later are polled with it, at the latest of
        // their moments: nobody is polled before it asked to be.
        let at = {
            let q = queue.lock().expect("poller lock");
            q.due
                .iter()
                .map(|d| d.at)
                .filter(|at| *at <= first + slack)
                .max()
                .unwrap_or(first)
        };
        // A read asked for now (no slack) does not wait for the others.
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(at) => break,
                _ = wake.notified() => {
                    let now = Instant::now();
                    let urgent = queue
                        .lock()
                        .expect("poller lock")
                        .due
                        .iter()
                        .any(|d| d.at <= now && d.slack.is_zero());
                    if urgent {
                        break;
                    }
                }
            }
        }
        let at = at.min(Instant::now().max(first));
        let batch: Vec<Due<T>> = {
            let mut q = queue.lock().expect("poller lock");
            let (now, later) = std::mem::take(&mut q.due)
                .into_iter()
                .partition(|d| d.at <= at);
            q.due = later;
            now
        };
        let ids: BTreeSet<String> = batch.iter().map(|d| d.id.clone()).collect();
        let result = fetch(ids.into_iter().collect()).await;
        for due in batch {
            let answer = match &result {
                Ok(found) => Ok(found.get(&due.id).cloned()),
                Err(e) => Err(e.clone()),
            };
            let _ = due.reply.send(answer);
        }
    }
}

/// Waits on VMs, images, snapshots and volumes, sharing polls per kind.
pub struct Waiters {
    vms: Poller<Vm>,
    images: Poller<Image>,
    snapshots: Poller<Snapshot>,
    volumes: Poller<Volume>,
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

/// How a wait reports the states it sees (for a progress display).
pub type OnState<'a> = &'a (dyn Fn(&str) + Sync);

fn quiet(_: &str) {}

impl Waiters {
    pub fn new(client: &Client) -> Waiters {
        Waiters {
            vms: Poller::new(fetch_by_ids!(
                client,
                ReadVmsRequest,
                FiltersVm,
                vm_ids,
                vm_id
            )),
            images: Poller::new(fetch_by_ids!(
                client,
                ReadImagesRequest,
                FiltersImage,
                image_ids,
                image_id
            )),
            snapshots: Poller::new(fetch_by_ids!(
                client,
                ReadSnapshotsRequest,
                FiltersSnapshot,
                snapshot_ids,
                snapshot_id
            )),
            volumes: Poller::new(fetch_by_ids!(
                client,
                ReadVolumesRequest,
                FiltersVolume,
                volume_ids,
                volume_id
            )),
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
        self.vm_reporting(id, target, policy, &quiet).await
    }

    pub async fn vm_reporting(
        &self,
        id: &str,
        target: &str,
        policy: &WaitPolicy,
        on_state: OnState<'_>,
    ) -> Result<Option<Vm>, Error> {
        let what = format!("VM {id} to be {target}");
        poll(&self.vms, &what, id, policy, on_state, |vm, start| {
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
        self.image_reporting(id, &[], policy, &quiet).await
    }

    /// Waits for an image made with `snapshots` to be `available`. It is
    /// when they are complete: their progress, read once, tells when to
    /// look.
    pub async fn image_reporting(
        &self,
        id: &str,
        snapshots: &[String],
        policy: &WaitPolicy,
        on_state: OnState<'_>,
    ) -> Result<Image, Error> {
        let what = format!("image {id} to be available");
        let start = Instant::now();
        let mut first = start + policy.initial_interval;
        if !snapshots.is_empty() {
            let mut longest = Duration::ZERO;
            let mut least = 100;
            let seen = self
                .snapshots
                .observe_all(snapshots, first, policy.initial_interval / 2)
                .await?;
            for seen in seen {
                let progress = match seen {
                    Some(s) if s.state == "completed" => 100,
                    Some(s) if s.state == "pending" => s.progress.clamp(0, 100),
                    _ => 0,
                };
                least = least.min(progress);
                if progress > 0 {
                    let total = start.elapsed().mul_f64(100.0 / progress as f64);
                    longest = longest.max(total);
                }
            }
            on_state(&format!("pending {least}%"));
            // At the moment the slowest snapshot should be done (but not
            // later than the usual pace allows), or at the usual pace when
            // progress says nothing.
            let now = Instant::now();
            let usual = now + policy.next_interval(start.elapsed());
            first = if least > 0 {
                (start + longest + Duration::from_millis(50)).clamp(now, now + policy.max_interval)
            } else {
                usual
            };
        }
        poll_from(
            &self.images,
            &what,
            id,
            policy,
            (start, first),
            on_state,
            |image, start| {
                Ok(match image {
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
            },
        )
        .await
    }

    /// Waits for a snapshot to be `completed`; `error` is a failure.
    pub async fn snapshot_completed(
        &self,
        id: &str,
        policy: &WaitPolicy,
    ) -> Result<Snapshot, Error> {
        let what = format!("snapshot {id} to be completed");
        poll(&self.snapshots, &what, id, policy, &quiet, |s, start| {
            Ok(match s {
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

    /// The image as a read made now sees it (shared with the polls due now).
    pub async fn image_now(&self, id: &str) -> Result<Option<Image>, Error> {
        self.images
            .observe(id, Instant::now(), Duration::ZERO)
            .await
    }

    /// The VM as a read made now sees it (shared with the polls due now).
    pub async fn vm_now(&self, id: &str) -> Result<Option<Vm>, Error> {
        self.vms.observe(id, Instant::now(), Duration::ZERO).await
    }

    /// The volume as a read made now sees it (shared with the polls due
    /// now).
    pub async fn volume_now(&self, id: &str) -> Result<Option<Volume>, Error> {
        self.volumes
            .observe(id, Instant::now(), Duration::ZERO)
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
        poll(&self.volumes, &what, id, policy, &quiet, |v, start| {
            Ok(match v {
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

/// Waits on one resource through the poller of its kind. The first poll
/// comes one interval after the wait starts: whatever was just asked of the
/// resource (a launch, a stop) takes at least that long.
async fn poll<T: Clone + Send + Sync + 'static, R>(
    poller: &Poller<T>,
    what: &str,
    id: &str,
    policy: &WaitPolicy,
    on_state: OnState<'_>,
    check: impl Fn(Option<T>, Instant) -> Result<Check<R>, Error>,
) -> Result<R, Error> {
    let start = Instant::now();
    let first = start + policy.initial_interval;
    poll_from(poller, what, id, policy, (start, first), on_state, check).await
}

/// [`poll`], for a wait that started at `start` and first looks at `first`.
async fn poll_from<T: Clone + Send + Sync + 'static, R>(
    poller: &Poller<T>,
    what: &str,
    id: &str,
    policy: &WaitPolicy,
    (start, first): (Instant, Instant),
    on_state: OnState<'_>,
    check: impl Fn(Option<T>, Instant) -> Result<Check<R>, Error>,
) -> Result<R, Error> {
    let mut watch = Watch::new(what);
    let mut next = first;
    // Half an interval: waits that started a little later fall in step
    // with this one. The last of a group of waits decides when they all
    // end, so the others lose nothing by waiting for it.
    let slack = policy.initial_interval / 2;
    loop {
        let seen = poller.observe(id, next, slack).await?;
        let before = watch.last_state.clone();
        if let Some(done) = watch.see(check(seen, start)?, start)? {
            return Ok(done);
        }
        if watch.last_state != before {
            on_state(&watch.last_state);
        }
        let interval = policy.next_interval(start.elapsed());
        watch.timed_out(start, interval, policy)?;
        next = Instant::now() + interval;
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

    fn poller(calls: Arc<AtomicUsize>, seen: Arc<Mutex<Vec<Vec<String>>>>) -> Poller<String> {
        Poller::new(Arc::new(move |ids: Vec<String>| {
            calls.fetch_add(1, Ordering::SeqCst);
            seen.lock().unwrap().push(ids.clone());
            Box::pin(async move {
                Ok(ids
                    .into_iter()
                    .filter(|i| i != "gone")
                    .map(|i| (i.clone(), format!("state of {i}")))
                    .collect())
            })
        }))
    }

    #[tokio::test(start_paused = true)]
    async fn polls_due_close_together_share_one_read_at_the_latest_moment() {
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let p = poller(calls.clone(), seen.clone());
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let slack = Duration::from_millis(100);
        let (a, b, g, late) = tokio::join!(
            p.observe("a", at(1000), slack),
            p.observe("b", at(1080), slack),
            p.observe("gone", at(1050), slack),
            p.observe("late", at(1500), slack),
        );
        assert_eq!(a.unwrap().as_deref(), Some("state of a"));
        assert_eq!(b.unwrap().as_deref(), Some("state of b"));
        assert_eq!(g.unwrap(), None);
        assert_eq!(late.unwrap().as_deref(), Some("state of late"));
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "{:?}",
            seen.lock().unwrap()
        );
        assert_eq!(seen.lock().unwrap()[0], vec!["a", "b", "gone"]);
        assert_eq!(seen.lock().unwrap()[1], vec!["late"]);
    }

    #[tokio::test(start_paused = true)]
    async fn nobody_is_polled_before_its_moment() {
        let calls = Arc::new(AtomicUsize::new(0));
        let p = poller(calls.clone(), Arc::new(Mutex::new(Vec::new())));
        let t0 = Instant::now();
        p.observe("a", t0 + Duration::from_secs(2), Duration::from_millis(500))
            .await
            .unwrap();
        assert!(t0.elapsed() >= Duration::from_secs(2));
        assert!(t0.elapsed() < Duration::from_millis(2200));
    }

    #[test]
    fn intervals_grow_with_the_transition() {
        let p = WaitPolicy::default();
        assert_eq!(
            p.next_interval(Duration::from_secs(1)),
            Duration::from_secs(2)
        );
        assert_eq!(
            p.next_interval(Duration::from_secs(30)),
            Duration::from_secs(6)
        );
        assert_eq!(
            p.next_interval(Duration::from_secs(600)),
            Duration::from_secs(30)
        );
        let fast = WaitPolicy::default().scaled(0.0);
        assert_eq!(fast.initial_interval, Duration::from_millis(10));
        let quarter = WaitPolicy::default().scaled(0.25);
        assert_eq!(quarter.initial_interval, Duration::from_millis(500));
    }

    /// A poller whose reads answer `state` for every id, counting them.
    fn stuck(state: Arc<Mutex<Vec<&'static str>>>, calls: Arc<AtomicUsize>) -> Poller<String> {
        Poller::new(Arc::new(move |ids: Vec<String>| {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            let states = state.lock().unwrap().clone();
            let now = states[n.min(states.len() - 1)].to_string();
            Box::pin(async move { Ok(ids.into_iter().map(|i| (i, now.clone())).collect()) })
        }))
    }

    fn check(state: Option<String>, _: Instant) -> Result<Check<()>, Error> {
        Ok(match state.as_deref() {
            Some("done") => Check::Done(()),
            Some("failed") => Check::Failed {
                state: "failed".into(),
                reason: "disk".into(),
            },
            other => Check::Pending(other.unwrap_or("gone").to_string()),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_times_out_with_the_last_state_seen() {
        let policy = WaitPolicy {
            timeout: Duration::from_secs(10),
            initial_interval: Duration::from_secs(1),
            max_interval: Duration::from_secs(2),
            not_found_grace: Duration::from_secs(1),
        };
        let calls = Arc::new(AtomicUsize::new(0));
        let p = stuck(Arc::new(Mutex::new(vec!["pending"])), calls.clone());
        let err = poll(&p, "thing", "i-1", &policy, &quiet, check)
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
    async fn a_failure_state_ends_the_wait_and_states_are_reported() {
        let calls = Arc::new(AtomicUsize::new(0));
        let p = stuck(
            Arc::new(Mutex::new(vec!["pending", "pending", "failed"])),
            calls.clone(),
        );
        let seen = Mutex::new(Vec::new());
        let report = |s: &str| seen.lock().unwrap().push(s.to_string());
        let err = poll(&p, "image", "ami-1", &WaitPolicy::default(), &report, check)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("failed: disk"), "{err}");
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(*seen.lock().unwrap(), ["pending"]);
    }
}
