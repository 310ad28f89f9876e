//! The seam between the engine, which walks builds and keeps the state, and
//! the builders, which know OUTSCALE: builders implement [`BuildRunner`] and
//! [`Destroyer`]; the engine implements [`Recorder`].

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;

use crate::state::{Kind, Lookup, ResourceState};

/// Something worth telling the user while an apply or destroy runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Work on a resource starts (`action` is `create`, `destroy`, `update`).
    Start {
        address: String,
        action: &'static str,
    },
    /// Work on a resource ended.
    Done {
        address: String,
        action: &'static str,
        id: Option<String>,
        elapsed: Duration,
    },
    /// A wait saw a new state (`progress` for snapshots).
    Wait {
        address: String,
        state: String,
        elapsed: Duration,
    },
    /// A line for the user, about a build.
    Note { build: String, text: String },
    /// A line of provisioner output (or of the provisioners' progress).
    Output { build: String, line: String },
}

/// Where builders record what they create, before and after each call, so
/// that a crash at any point leaves state enough to find it.
pub trait Recorder: Send + Sync {
    /// The lineage of the state: every resource made is tagged with it.
    fn lineage(&self) -> String;

    /// Before a create call: the address, and the name or ClientToken that
    /// will find the resource again if the answer is lost.
    fn pending(
        &self,
        address: &str,
        build: &str,
        kind: Kind,
        ephemeral: bool,
        lookup: Lookup,
        dependencies: Vec<String>,
    ) -> Result<(), String>;

    /// Right after the create call answered: an ephemeral resource is then
    /// created, a durable one tainted until [`Recorder::update`] says
    /// otherwise.
    fn created(&self, address: &str, id: &str) -> Result<(), String>;

    /// Attributes as last seen, the input digest, and the status.
    fn update(
        &self,
        address: &str,
        attributes: BTreeMap<String, serde_json::Value>,
        input_digest: Option<String>,
        tainted: bool,
    ) -> Result<(), String>;

    /// The resource is gone from the cloud.
    fn forget(&self, address: &str) -> Result<(), String>;

    /// What the state holds for `address`.
    fn get(&self, address: &str) -> Option<ResourceState>;

    fn event(&self, event: Event);

    /// The user asked to stop (first Ctrl-C or SIGTERM): finish the call in
    /// flight, then stop creating.
    fn cancelled(&self) -> bool;
}

/// What the plan decided for a build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BuildAction {
    Create,
    /// A new image, because what shapes it changed.
    Replace,
    /// Permissions, tags or description of the existing image.
    Update,
}

/// One build of the template, ready to run.
#[async_trait]
pub trait BuildRunner: Send + Sync {
    fn name(&self) -> &str;

    /// Makes the build's durable resources and removes its ephemeral ones,
    /// or updates the durable ones in place. On failure the engine destroys
    /// what the state holds for the build, or leaves it, as `--on-error`
    /// says.
    async fn apply(&self, recorder: &dyn Recorder, action: BuildAction) -> Result<(), String>;
}

/// Removes resources that the state holds, finding pending ones by their
/// lookup and by tags.
#[async_trait]
pub trait Destroyer: Send + Sync {
    /// Deletes the resource and waits until it is gone:
    /// `Ok(Destroyed::AlreadyGone)` when it was gone before; a dependency
    /// error (still in use) is `Err(DestroyError::InUse)`, worth trying
    /// again after the rest.
    async fn destroy(&self, resource: &ResourceState) -> Result<Destroyed, DestroyError>;

    /// What came into being with `resource` that the state may not hold (an
    /// image's snapshots, when a run died before recording them). The
    /// engine records those it lacks before destroying anything, so they
    /// are destroyed too, even across a crash.
    async fn dependents(
        &self,
        resource: &ResourceState,
    ) -> Result<Vec<ResourceState>, DestroyError> {
        let _ = resource;
        Ok(Vec::new())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destroyed {
    Deleted(String),
    AlreadyGone,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestroyError {
    /// Another resource still uses it: try again after the others.
    InUse(String),
    Failed(String),
}

impl std::fmt::Display for DestroyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DestroyError::InUse(m) | DestroyError::Failed(m) => f.write_str(m),
        }
    }
}

/// An existing OMI that `force_deregister` removes before the new one is
/// made, with the snapshots `force_delete_snapshot` removes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Deregister {
    pub image_id: String,
    pub snapshot_ids: Vec<String>,
}
