//! What a plan decides for a node.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Made by this apply (ephemerals are also removed by it).
    Create,
    /// Made anew because what shapes it changed; the old one is retired.
    Replace,
    /// Changed where it stands (tags, permissions, description).
    Update,
    /// Removed.
    Destroy,
    /// Read at plan time (a data node: the source OMI).
    Read,
}

impl Action {
    /// How plans show it, as Terraform does.
    pub fn symbol(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Replace => "-/+",
            Action::Update => "~",
            Action::Destroy => "-",
            Action::Read => "<=",
        }
    }

    /// Whether the node makes something new.
    pub fn makes(self) -> bool {
        matches!(self, Action::Create | Action::Replace)
    }
}
