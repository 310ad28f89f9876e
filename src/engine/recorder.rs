//! The engine's [`Recorder`]: every change goes to the state file at once.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc::UnboundedSender;

use crate::graph::{Event, Recorder};
use crate::state::{Kind, Lookup, ResourceState, State, StateStore, Status};

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

pub struct StateRecorder {
    inner: Mutex<(StateStore, State)>,
    cancel: Cancel,
    events: Mutex<Option<UnboundedSender<Event>>>,
}

impl StateRecorder {
    pub fn new(store: StateStore, state: State, cancel: Cancel) -> StateRecorder {
        StateRecorder {
            inner: Mutex::new((store, state)),
            cancel,
            events: Mutex::new(None),
        }
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
        self.inner.lock().expect("state lock").1.clone()
    }

    /// Changes the state and writes it at once.
    pub fn change(&self, f: impl FnOnce(&mut State)) -> Result<(), String> {
        let mut guard = self.inner.lock().expect("state lock");
        let (store, state) = &mut *guard;
        f(state);
        store.write(state).map_err(|e| e.to_string())
    }
}

impl Recorder for StateRecorder {
    fn lineage(&self) -> String {
        self.inner.lock().expect("state lock").1.lineage.clone()
    }

    fn pending(
        &self,
        address: &str,
        build: &str,
        kind: Kind,
        ephemeral: bool,
        lookup: Lookup,
        dependencies: Vec<String>,
    ) -> Result<(), String> {
        self.change(|s| {
            let mut r = ResourceState::pending(address.to_string(), build, kind, ephemeral, lookup);
            r.dependencies = dependencies;
            s.put(r);
        })
    }

    fn created(&self, address: &str, id: &str) -> Result<(), String> {
        self.change(|s| {
            if let Some(r) = s.get_mut(address) {
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
    }

    fn update(
        &self,
        address: &str,
        attributes: BTreeMap<String, serde_json::Value>,
        input_digest: Option<String>,
        tainted: bool,
    ) -> Result<(), String> {
        self.change(|s| {
            if let Some(r) = s.get_mut(address) {
                r.attributes = attributes;
                if input_digest.is_some() {
                    r.input_digest = input_digest;
                }
                r.status = if tainted {
                    Status::Tainted
                } else {
                    Status::Created
                };
            }
        })
    }

    fn forget(&self, address: &str) -> Result<(), String> {
        self.change(|s| {
            s.remove(address);
        })
    }

    fn get(&self, address: &str) -> Option<ResourceState> {
        self.inner
            .lock()
            .expect("state lock")
            .1
            .get(address)
            .cloned()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_durable_resource_is_tainted_until_updated_an_ephemeral_one_created_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let (store, state) = StateStore::lock(&dir.path().join("s.json"), "test").unwrap();
        let rec = StateRecorder::new(store, state, Cancel::default());
        for (address, kind, ephemeral) in [
            ("build.w.image", Kind::Image, false),
            ("build.w.vm", Kind::Vm, true),
        ] {
            rec.pending(address, "w", kind, ephemeral, Lookup::default(), vec![])
                .unwrap();
            assert_eq!(rec.get(address).unwrap().status, Status::Pending);
            rec.created(address, "id-1").unwrap();
        }
        assert_eq!(rec.get("build.w.image").unwrap().status, Status::Tainted);
        assert_eq!(rec.get("build.w.vm").unwrap().status, Status::Created);
        rec.update(
            "build.w.image",
            BTreeMap::new(),
            Some("sha256:x".into()),
            false,
        )
        .unwrap();
        assert_eq!(rec.get("build.w.image").unwrap().status, Status::Created);
        // Every step was written: the file holds what the recorder holds.
        let on_disk = StateStore::read_only(&dir.path().join("s.json")).unwrap();
        assert_eq!(on_disk, rec.snapshot());
    }
}
