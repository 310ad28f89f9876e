//! osci builds OUTSCALE machine images and BSU volumes as a plan/apply tool
//! with a local state file. See `README.md` and the design contract.

pub mod oapi;
pub mod sim;

mod atomic_file;
