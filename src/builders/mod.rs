//! Builders turn a template's build into resources and the OUTSCALE calls
//! that make them. They know OUTSCALE; they know nothing of rendering.

pub mod bsu;
pub mod outscale;

pub use bsu::Bsu;
pub use outscale::{OutscaleDestroyer, Refreshed, refresh};
