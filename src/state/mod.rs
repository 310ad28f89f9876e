//! The state file (design §4): what osci made, where, and from which inputs.
//!
//! Writes are atomic and keep the previous version as `.backup`; a lock on
//! `<state>.lock` admits one apply or destroy at a time; a `pending` entry
//! is written before every create call so that a crash at any point leaves
//! enough to find what was made.

mod lock;
mod model;
mod store;

pub use lock::{LockError, StateLock};
pub use model::*;
pub use store::{StateError, StateStore};
