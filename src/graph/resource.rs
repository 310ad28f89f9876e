//! A resource a build wants.

use std::collections::BTreeMap;

use crate::state::Kind;

/// One resource a build wants.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub address: String,
    pub build: String,
    pub kind: Kind,
    /// Made and removed by the same apply.
    pub ephemeral: bool,
    /// The attributes the template decides; `None` values are known only
    /// after apply.
    pub attributes: BTreeMap<String, Option<serde_json::Value>>,
}
