//! The engine's [`Recorder`]: every change is on disk before the call that
//! asked for it returns. Writes run off the async workers, one at a time;
//! changes made while one is in flight go to disk together in the next
//! (group commit), so many builds recording at once cost few writes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;

use crate::graph::{Address, Event, Pending, RecordError, Recorder};
use crate::state::{ResourceState, State, StateStore, Status};

/// Set by the first Ctrl-C or SIGTERM.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

struct Memory {
    state: State,
    /// Bumped by every change.
    changed: u64,
    /// The last change on disk.
    written: u64,
}

pub struct StateRecorder {
    memory: Mutex<Memory>,
    /// The store, and the last change it wrote: a write never replaces a
    /// newer one, whatever order the blocking tasks run in.
    store: Arc<Mutex<(StateStore, u64)>>,
    /// One write at a time, in turn.
    writing: tokio::sync::Mutex<()>,
    /// What each recorded node needs, from the plan's graph.
    dependencies: BTreeMap<Address, Vec<Address>>,
    cancel: Cancel,
    events: Mutex<Option<UnboundedSender<Event>>>,
}

impl StateRecorder {
    pub fn new(store: StateStore, state: State, cancel: Cancel) -> StateRecorder {
        StateRecorder {
            memory: Mutex::new(Memory {
                state,
                changed: 0,
                written: 0,
            }),
            store: Arc::new(Mutex::new((store, 0))),
            writing: tokio::sync::Mutex::new(()),
            dependencies: BTreeMap::new(),
            cancel,
            events: Mutex::new(None),
        }
    }

    /// The dependencies new entries are recorded with.
    pub fn with_dependencies(mut self, dependencies: BTreeMap<Address, Vec<Address>>) -> Self {
        self.dependencies = dependencies;
        self
    }

    /// Where events go (the CLI renders them).
    pub fn subscribe(&self, sender: UnboundedSender<Event>) {
        *self.events.lock().expect("events lock") = Some(sender);
    }

    /// Stops sending events, so the renderer sees the end of the stream.
    pub fn unsubscribe(&self) {
        *self.events.lock().expect("events lock") = None;
    }

    /// A copy of the state as it is now.
    pub fn snapshot(&self) -> State {
        self.memory.lock().expect("state lock").state.clone()
    }

    /// Changes the state and returns once the change is on disk.
    pub async fn change(&self, f: impl FnOnce(&mut State)) -> Result<(), RecordError> {
        let mine = {
            let mut m = self.memory.lock().expect("state lock");
            f(&mut m.state);
            m.changed += 1;
            m.changed
        };
        let _turn = self.writing.lock().await;
        let (mut snapshot, covers) = {
            let m = self.memory.lock().expect("state lock");
            if m.written >= mine {
                // Written by the write before ours.
                return Ok(());
            }
            (m.state.clone(), m.changed)
        };
        let store = Arc::clone(&self.store);
        let written = tokio::task::spawn_blocking(move || {
            let mut guard = store.lock().expect("store lock");
            let (store, last) = &mut *guard;
            if *last >= covers {
                return Ok(None);
            }
            store.write(&mut snapshot)?;
            *last = covers;
            Ok(Some(snapshot.serial))
        })
        .await
        .map_err(|e| RecordError(e.to_string()))?
        .map_err(|e: crate::state::StateError| RecordError(e.to_string()))?;
        let mut m = self.memory.lock().expect("state lock");
        m.written = m.written.max(covers);
        if let Some(serial) = written {
            m.state.serial = m.state.serial.max(serial);
        }
        Ok(())
    }

    fn dependencies_of(&self, address: &Address) -> Vec<Address> {
        self.dependencies.get(address).cloned().unwrap_or_default()
    }
}

#[async_trait]
impl Recorder for StateRecorder {
    fn lineage(&self) -> String {
        self.memory
            .lock()
            .expect("state lock")
            .state
            .lineage
            .clone()
    }

    async fn pending(&self, entry: Pending) -> Result<(), RecordError> {
        let dependencies = self.dependencies_of(&entry.address);
        self.change(|s| {
            let build = build_of(&entry.address);
            let mut r = ResourceState::pending(
                entry.address,
                &build,
                entry.kind,
                entry.ephemeral,
                entry.lookup,
            );
            r.dependencies = dependencies;
            s.put(r);
        })
        .await
    }

    async fn created(&self, address: &Address, id: &str) -> Result<(), RecordError> {
        self.change(|s| {
            if let Some(r) = s.get_mut(address.as_str()) {
                r.id = Some(id.to_string());
                // A durable resource is not done until configured: tainted
                // in the same write as its id, so no crash leaves it looking
                // complete.
                if r.status == Status::Pending {
                    r.status = if r.ephemeral {
                        Status::Created
                    } else {
                        Status::Tainted
                    };
                }
            }
        })
        .await
    }

    async fn made_with(
        &self,
        maker: &Address,
        made: Vec<ResourceState>,
    ) -> Result<(), RecordError> {
        let made: Vec<ResourceState> = made
            .into_iter()
            .map(|mut r| {
                r.dependencies = self.dependencies_of(&r.address);
                r
            })
            .collect();
        self.change(|s| {
            let addresses: Vec<Address> = made.iter().map(|r| r.address.clone()).collect();
            for r in made {
                s.put(r);
            }
            // The maker uses what it made: it goes first.
            if let Some(m) = s.get_mut(maker.as_str()) {
                for a in addresses {
                    if !m.dependencies.contains(&a) {
                        m.dependencies.push(a);
                    }
                }
            }
        })
        .await
    }

    async fn settled(&self, entries: Vec<ResourceState>) -> Result<(), RecordError> {
        self.change(|s| {
            for mut entry in entries {
                let mut dependencies = self.dependencies_of(&entry.address);
                for d in s
                    .get(entry.address.as_str())
                    .map(|r| r.dependencies.clone())
                    .unwrap_or_default()
                    .into_iter()
                    .chain(std::mem::take(&mut entry.dependencies))
                {
                    if !dependencies.contains(&d) {
                        dependencies.push(d);
                    }
                }
                entry.dependencies = dependencies;
                s.put(entry);
            }
        })
        .await
    }

    async fn update(
        &self,
        address: &Address,
        attributes: BTreeMap<String, Value>,
        input_digest: Option<String>,
        status: Status,
    ) -> Result<(), RecordError> {
        self.change(|s| {
            if let Some(r) = s.get_mut(address.as_str()) {
                r.attributes = attributes;
                if input_digest.is_some() {
                    r.input_digest = input_digest;
                }
                r.status = status;
            }
        })
        .await
    }

    async fn forget(&self, addresses: &[Address]) -> Result<(), RecordError> {
        if addresses.is_empty() {
            return Ok(());
        }
        self.change(|s| {
            for a in addresses {
                s.remove(a.as_str());
            }
        })
        .await
    }

    fn get(&self, address: &Address) -> Option<ResourceState> {
        self.memory
            .lock()
            .expect("state lock")
            .state
            .get(address.as_str())
            .cloned()
    }

    fn build_entries(&self, build: &str) -> Vec<ResourceState> {
        self.memory
            .lock()
            .expect("state lock")
            .state
            .build(build)
            .cloned()
            .collect()
    }

    fn event(&self, event: Event) {
        if let Some(tx) = self.events.lock().expect("events lock").as_ref() {
            let _ = tx.send(event);
        }
    }

    fn cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }
}

/// The build of a `build.<name>.…` address.
fn build_of(address: &Address) -> String {
    address
        .as_str()
        .strip_prefix("build.")
        .and_then(|rest| rest.split('.').next())
        .unwrap_or_default()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Kind;
    use crate::state::Lookup;

    fn recorder(dir: &std::path::Path) -> StateRecorder {
        let (store, state) = StateStore::lock(&dir.join("s.json"), "test").unwrap();
        StateRecorder::new(store, state, Cancel::default())
    }

    #[tokio::test]
    async fn a_durable_resource_is_tainted_until_updated_an_ephemeral_one_created_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let rec = recorder(dir.path());
        for (address, kind, ephemeral) in [
            ("build.w.image", Kind::Image, false),
            ("build.w.vm", Kind::Vm, true),
        ] {
            let address = Address::from_text(address);
            rec.pending(Pending {
                address: address.clone(),
                kind,
                ephemeral,
                lookup: Lookup::default(),
            })
            .await
            .unwrap();
            assert_eq!(rec.get(&address).unwrap().status, Status::Pending);
            assert_eq!(rec.get(&address).unwrap().build, "w");
            rec.created(&address, "id-1").await.unwrap();
        }
        let image = Address::from_text("build.w.image");
        assert_eq!(rec.get(&image).unwrap().status, Status::Tainted);
        assert_eq!(
            rec.get(&Address::from_text("build.w.vm")).unwrap().status,
            Status::Created
        );
        rec.update(
            &image,
            BTreeMap::new(),
            Some("sha256:x".into()),
            Status::Created,
        )
        .await
        .unwrap();
        assert_eq!(rec.get(&image).unwrap().status, Status::Created);
        // Every step was written: the file holds what the recorder holds.
        let on_disk = StateStore::read_only(&dir.path().join("s.json")).unwrap();
        assert_eq!(on_disk, rec.snapshot());
    }

    /// Changes made while a write is in flight share the next write.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_changes_share_writes() {
        let dir = tempfile::tempdir().unwrap();
        let rec = Arc::new(recorder(dir.path()));
        let mut tasks = Vec::new();
        for n in 0..50 {
            let rec = Arc::clone(&rec);
            tasks.push(tokio::spawn(async move {
                rec.pending(Pending {
                    address: Address::from_text(format!("build.w.volume[\"{n}\"]")),
                    kind: Kind::Volume,
                    ephemeral: true,
                    lookup: Lookup::default(),
                })
                .await
                .unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let on_disk = StateStore::read_only(&dir.path().join("s.json")).unwrap();
        assert_eq!(on_disk.resources.len(), 50);
        assert_eq!(on_disk, rec.snapshot());
        assert!(
            on_disk.serial < 50,
            "50 concurrent records took {} writes",
            on_disk.serial
        );
    }
}
