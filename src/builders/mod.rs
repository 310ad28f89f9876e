//! Builders turn a template's builds into nodes and edges of the resource
//! graph, over shared steps (one module per kind of node, in [`steps`]).
//! They know OUTSCALE; they know nothing of rendering, and nothing of how
//! the graph is walked.

pub mod artifact;
pub mod bsu;
pub mod bsuvolume;
pub mod chroot;
pub mod cloud;
mod communicator;
pub mod host;
mod launch;
pub mod metadata;
pub mod network;
pub mod planner;
pub mod steps;
pub mod surrogate;
mod tagger;

use std::sync::Arc;

pub use bsu::Bsu;
pub use chroot::Chroot;
pub use cloud::Cloud;
pub use planner::{PlanError, Planned, connect, plan};
pub use steps::OutscaleDestroyer;

use crate::graph::{Graph, NodeIndex};
use crate::oapi::model::Image;
use crate::secret::Secret;
use crate::template::{Build, BuilderConfig, OmiConfig, RunConfig};
use network::Placement;
use steps::{BuildRun, Refreshed};

/// What a builder declares from, read at plan time for every build at once.
pub struct Declare<'a> {
    pub cloud: &'a Arc<Cloud>,
    pub refreshed: &'a Arc<Refreshed>,
    /// The source OMI, resolved (none from scratch).
    pub source: Option<&'a Image>,
    /// The network ids, resolved from the filters.
    pub placement: &'a Placement,
}

/// What a builder declared.
pub struct Declared {
    /// What its steps share.
    pub run: Arc<BuildRun>,
    /// The OMI's node, if the build makes one.
    pub image: Option<NodeIndex>,
}

/// One build of a template: from its options, the nodes and edges that make
/// its artifact.
pub trait Builder: Send + Sync {
    fn name(&self) -> &str;

    /// Where the source OMI is found (`None`: the build starts from
    /// scratch).
    fn source(&self) -> Option<&RunConfig>;

    /// Where the build VM runs (`None`: it launches none).
    fn network(&self) -> Option<&RunConfig>;

    /// The OMI the build registers, if it registers one.
    fn omi(&self) -> Option<&OmiConfig>;

    /// The snapshots the template names (`snapshot_id`): the user's, which
    /// `force_delete_snapshot` never removes.
    fn named_snapshots(&self) -> Vec<String>;

    /// Adds the build's nodes and edges to `graph`.
    fn declare(&self, input: Declare<'_>, graph: &mut Graph) -> Result<Declared, String>;
}

/// The builder of a build, checked against what osci can honour in
/// `region` (without the cloud).
pub fn prepare(
    build: &Build,
    sensitive: &[Secret],
    region: &str,
) -> Result<Box<dyn Builder>, String> {
    Ok(match &build.config {
        BuilderConfig::Bsu(config) => Box::new(Bsu::prepare(build, config, sensitive, region)?),
        BuilderConfig::Chroot(config) => Box::new(Chroot::prepare(build, config, sensitive)?),
        BuilderConfig::Surrogate(config) => Box::new(surrogate::Surrogate::prepare(
            build, config, sensitive, region,
        )?),
        BuilderConfig::Volume(config) => Box::new(bsuvolume::BsuVolume::prepare(
            build, config, sensitive, region,
        )?),
    })
}
