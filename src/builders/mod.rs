//! Builders turn a template's build into resources and the OUTSCALE calls
//! that make them. They know OUTSCALE; they know nothing of rendering.

pub mod bsu;
mod communicator;
pub mod network;
pub mod outscale;
pub mod planner;

pub use bsu::Bsu;
pub use outscale::{OutscaleDestroyer, refresh};
pub use planner::{PlanError, Planned, account_id, plan, wait_policy};
