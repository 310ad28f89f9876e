//! Typed requests and responses of the OUTSCALE API operations osci uses.
//!
//! Field names follow `outscale.yaml` exactly (PascalCase on the wire).
//! Responses are lenient: unknown fields are ignored and missing ones take
//! their default, because each API release adds fields. Requests are strict
//! when decoded (the simulator rejects a parameter it does not know, as the
//! spec's `additionalProperties: false` says), and skip unset fields when
//! encoded.

mod account;
mod image;
mod keypair;
mod net;
mod public_ip;
mod security_group;
mod snapshot;
mod tag;
mod vm;
mod volume;

pub use account::*;
pub use image::*;
pub use keypair::*;
pub use net::*;
pub use public_ip::*;
pub use security_group::*;
pub use snapshot::*;
pub use tag::*;
pub use vm::*;
pub use volume::*;

use serde::{Deserialize, Serialize};

/// Present in every response; its `RequestId` is what OUTSCALE support asks for.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ResponseContext {
    pub request_id: Option<String>,
}

/// A `Key`/`Value` pair as resources carry it.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ResourceTag {
    pub key: String,
    pub value: String,
}

impl ResourceTag {
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        ResourceTag {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// Who may use an image or a snapshot besides its owner.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PermissionsOnResource {
    pub account_ids: Vec<String>,
    pub global_permission: bool,
}

/// A permission change: one of `additions` or `removals` per call.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct PermissionsOnResourceCreation {
    pub additions: Option<PermissionsChange>,
    pub removals: Option<PermissionsChange>,
}

/// Like [`PermissionsOnResource`] but with both fields optional, as a change
/// may name only accounts or only the global flag.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct PermissionsChange {
    pub account_ids: Option<Vec<String>>,
    pub global_permission: Option<bool>,
}

/// The response of calls that answer nothing but the request id.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EmptyResponse {
    pub response_context: ResponseContext,
}

/// Filters on tags, shared by every `Read*` of a taggable kind.
pub trait TagFilter {
    fn tag_keys(&self) -> Option<&[String]>;
    fn tag_values(&self) -> Option<&[String]>;
    /// `KEY=VALUE` strings.
    fn tags(&self) -> Option<&[String]>;
}

/// Implements [`TagFilter`] for filter structs with `tag_keys`, `tag_values`, `tags`.
macro_rules! tag_filter {
    ($($t:ty),*) => {$(
        impl $crate::oapi::model::TagFilter for $t {
            fn tag_keys(&self) -> Option<&[String]> { self.tag_keys.as_deref() }
            fn tag_values(&self) -> Option<&[String]> { self.tag_values.as_deref() }
            fn tags(&self) -> Option<&[String]> { self.tags.as_deref() }
        }
    )*};
}
pub(crate) use tag_filter;
