//! The OUTSCALE API client: endpoint and credentials, OSC4 signing, typed
//! operations, errors, retries, rate limit and waiters.
//!
//! The client never knows what answers it: a real region over HTTPS or the
//! simulator, plugged in as a [`Transport`] at the CLI edge.

pub mod client;
pub mod credentials;
pub mod endpoint;
pub mod error;
pub mod limiter;
pub mod model;
pub mod operation;
pub mod retry;

pub mod sign;
pub mod transport;
pub mod wait;

pub use crate::secret::Secret;
pub use client::{Client, ClientConfig};
pub use credentials::{Credentials, Overrides, Source, Sourced};
pub use endpoint::Endpoint;
pub use error::{ApiError, Error};
pub use operation::{Operation, Paginated};
pub use retry::RetryPolicy;
pub use transport::{HttpTransport, Transport, TransportError};
