//! The seam between the engine, which walks graphs and keeps the state, and
//! the builders, which know OUTSCALE: builders give each node a [`Step`] and
//! the engine a [`Destroyer`]; the engine gives steps a [`Recorder`].

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use super::{Action, Address, Kind};
use crate::state::{Lookup, ResourceState, Status};

/// Something worth telling the user while an apply or destroy runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Work on a node starts (`action` is `create`, `destroy`, `update`…).
    Start {
        address: Address,
        action: &'static str,
    },
    /// Work on a node ended.
    Done {
        address: Address,
        action: &'static str,
        id: Option<String>,
        elapsed: Duration,
    },
    /// Work on a node failed.
    Failed {
        address: Address,
        action: &'static str,
        error: String,
    },
    /// A wait saw a new state (`progress` for snapshots).
    Wait {
        address: Address,
        state: String,
        elapsed: Duration,
    },
    /// A line for the user, about a build.
    Note { build: String, text: String },
    /// A line of provisioner output (or of the provisioners' progress).
    Output { build: String, line: String },
}

/// A state write that failed; what the step did is not on disk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("recording state: {0}")]
pub struct RecordError(pub String);

/// A resource about to be created, recorded before the create call so that
/// a crash at any point leaves enough to find it.
#[derive(Debug, Clone)]
pub struct Pending {
    pub address: Address,
    pub kind: Kind,
    pub ephemeral: bool,
    /// The name or ClientToken chosen before the call.
    pub lookup: Lookup,
}

/// Where steps record what they make, before and after each call. Every
/// change is on disk when the call returns.
#[async_trait]
pub trait Recorder: Send + Sync {
    /// The lineage of the state: every resource made is tagged with it.
    fn lineage(&self) -> String;

    /// Before a create call. The entry's dependencies are the graph's.
    async fn pending(&self, entry: Pending) -> Result<(), RecordError>;

    /// Right after the create call answered: an ephemeral resource is then
    /// created, a durable one tainted until [`Recorder::update`] says
    /// otherwise.
    async fn created(&self, address: &Address, id: &str) -> Result<(), RecordError>;

    /// Resources that came into being with `maker` (a VM's volumes, an
    /// image's snapshots), ids known, in one write.
    async fn made_with(&self, maker: &Address, made: Vec<ResourceState>)
    -> Result<(), RecordError>;

    /// Complete entries, in one write: settings and records (which no call
    /// that could lose its answer makes), or an OMI with its snapshots, so
    /// that no crash leaves one complete without the others. Their
    /// dependencies are the graph's, and those already recorded.
    async fn settled(&self, entries: Vec<ResourceState>) -> Result<(), RecordError>;

    /// Attributes as last seen, the input digest (kept when `None`), and
    /// the status.
    async fn update(
        &self,
        address: &Address,
        attributes: BTreeMap<String, Value>,
        input_digest: Option<String>,
        status: Status,
    ) -> Result<(), RecordError>;

    /// The resources are gone from the cloud, or no longer osci's.
    async fn forget(&self, addresses: &[Address]) -> Result<(), RecordError>;

    /// What the state holds for `address`.
    fn get(&self, address: &Address) -> Option<ResourceState>;

    /// Every entry of a build.
    fn build_entries(&self, build: &str) -> Vec<ResourceState>;

    fn event(&self, event: Event);

    /// The user asked to stop (first Ctrl-C or SIGTERM): finish the call in
    /// flight, then stop creating.
    fn cancelled(&self) -> bool;
}

/// Why a step failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StepError {
    #[error("{0}")]
    Failed(String),
    /// The user asked to stop (first Ctrl-C or SIGTERM); says where.
    #[error("{0}")]
    Interrupted(String),
    #[error(transparent)]
    Record(#[from] RecordError),
}

/// What a step is asked to do, and where it records it.
pub struct Run<'a> {
    pub address: &'a Address,
    pub build: &'a str,
    pub action: Action,
    pub recorder: &'a dyn Recorder,
}

/// The work of one node: one module per kind under `builders::steps`.
#[async_trait]
pub trait Step: Send + Sync {
    /// Carries out the node's action: create, replace, update in place, or
    /// a removal's destroy. Data nodes were read at plan time: nothing.
    async fn run(&self, run: &Run<'_>) -> Result<(), StepError>;
}

/// A step with nothing to do at apply time (a data node).
pub struct Nothing;

#[async_trait]
impl Step for Nothing {
    async fn run(&self, _: &Run<'_>) -> Result<(), StepError> {
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destroyed {
    Deleted(String),
    AlreadyGone,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DestroyError {
    /// Another resource still uses it: try again after the others.
    #[error("{0}")]
    InUse(String),
    #[error("{0}")]
    Failed(String),
}

/// Removes resources that the state holds, finding pending ones by their
/// lookup and by tags, whatever the kind.
#[async_trait]
pub trait Destroyer: Send + Sync {
    /// Deletes the resource and waits until it is gone:
    /// `Ok(Destroyed::AlreadyGone)` when it was gone before; a dependency
    /// error (still in use) is `Err(DestroyError::InUse)`.
    async fn destroy(&self, resource: &ResourceState) -> Result<Destroyed, DestroyError>;

    /// What came into being with `resources` that the state may not hold
    /// (an image's snapshots, a VM's volumes, when a run died before
    /// recording them), each with the address of what made it. The engine
    /// records those it lacks before destroying anything, so they are
    /// destroyed too, even across a crash.
    async fn dependents(
        &self,
        resources: &[ResourceState],
    ) -> Result<Vec<(Address, ResourceState)>, DestroyError>;
}
