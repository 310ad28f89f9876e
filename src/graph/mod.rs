//! The vocabulary of osci's resource graph: kinds, addresses, nodes and
//! edges, the actions a plan gives nodes, the input digest, and the seam
//! through which the engine runs what builders declare.

mod action;
mod address;
mod digest;
mod kind;
mod nodes;
mod seam;

pub use action::Action;
pub use address::Address;
pub use digest::Digest;
pub use kind::Kind;
pub use nodes::{Cycle, Edge, Graph, GraphError, Lifetime, Node, find_cycle};
pub use petgraph::graph::NodeIndex;
pub use seam::{
    DestroyError, Destroyed, Destroyer, Event, Nothing, Pending, RecordError, Recorder, Run, Step,
    StepError,
};
