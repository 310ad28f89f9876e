//! Resources as osci plans them: addresses, what builders record and do,
//! and the digest of the inputs that shape an image.

mod address;
mod digest;
mod ops;
mod resource;

pub use address::address;
pub use digest::Digest;
pub use ops::{
    BuildAction, BuildRunner, Deregister, DestroyError, Destroyed, Destroyer, Event, Recorder,
};
pub use resource::Resource;
