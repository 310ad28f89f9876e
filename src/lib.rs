//! osci builds OUTSCALE machine images and BSU volumes as a plan/apply tool
//! with a local state file. See `README.md` and the design contract.

pub mod blockdev;
pub mod builders;
pub mod engine;
pub mod graph;
pub mod oapi;
pub mod plan;
pub mod postprocess;
pub mod provision;
pub mod secret;
pub mod sim;
pub mod state;
pub mod template;

mod atomic_file;
