//! The state document and its resources.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The version of the state document this osci reads and writes.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub format_version: u32,
    /// Chosen when the state is created, never changed: tells whether two
    /// serials are comparable, and tags everything this state made.
    pub lineage: String,
    /// Bumped on every write.
    pub serial: u64,
    pub osci_version: String,
    /// Sorted by address.
    pub resources: Vec<ResourceState>,
}

impl State {
    pub fn new() -> State {
        State {
            format_version: FORMAT_VERSION,
            lineage: uuid::Uuid::new_v4().to_string(),
            serial: 0,
            osci_version: env!("CARGO_PKG_VERSION").to_string(),
            resources: Vec::new(),
        }
    }

    pub fn get(&self, address: &str) -> Option<&ResourceState> {
        self.resources.iter().find(|r| r.address == address)
    }

    pub fn get_mut(&mut self, address: &str) -> Option<&mut ResourceState> {
        self.resources.iter_mut().find(|r| r.address == address)
    }

    /// Inserts or replaces the resource at its address, keeping the order.
    pub fn put(&mut self, resource: ResourceState) {
        match self
            .resources
            .binary_search_by(|r| r.address.cmp(&resource.address))
        {
            Ok(i) => self.resources[i] = resource,
            Err(i) => self.resources.insert(i, resource),
        }
    }

    pub fn remove(&mut self, address: &str) -> Option<ResourceState> {
        let i = self.resources.iter().position(|r| r.address == address)?;
        Some(self.resources.remove(i))
    }

    /// The resources of one build.
    pub fn build(&self, build: &str) -> impl Iterator<Item = &ResourceState> {
        self.resources.iter().filter(move |r| r.build == build)
    }
}

impl Default for State {
    fn default() -> Self {
        State::new()
    }
}

/// What kind of thing a state entry stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Keypair,
    SecurityGroup,
    PublicIp,
    Vm,
    Volume,
    Image,
    Snapshot,
    /// Who may launch the image (its id is the image's).
    ImagePermissions,
    /// Who may create volumes from the image's snapshots.
    SnapshotPermissions,
    /// The tags of the image and its snapshots.
    Tags,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Keypair => "keypair",
            Kind::SecurityGroup => "security_group",
            Kind::PublicIp => "public_ip",
            Kind::Vm => "vm",
            Kind::Volume => "volume",
            Kind::Image => "image",
            Kind::Snapshot => "snapshot",
            Kind::ImagePermissions => "image_permissions",
            Kind::SnapshotPermissions => "snapshot_permissions",
            Kind::Tags => "tags",
        }
    }

    /// Settings of another resource rather than a resource of their own:
    /// destroying them means nothing once their owner is gone.
    pub fn is_setting(self) -> bool {
        matches!(
            self,
            Kind::ImagePermissions | Kind::SnapshotPermissions | Kind::Tags
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The create call may have been sent; the id may be unknown.
    Pending,
    Created,
    /// Made, but not as the template wants it (a failed or interrupted build):
    /// the next plan replaces it.
    Tainted,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Pending => "pending",
            Status::Created => "created",
            Status::Tainted => "tainted",
        })
    }
}

/// How to find a resource whose id was never recorded: the name or
/// ClientToken chosen before the create call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lookup {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceState {
    /// `build.web.image`, `build.web.snapshot["/dev/sda1"]`, …
    pub address: String,
    pub build: String,
    pub kind: Kind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub status: Status,
    /// Made for one apply and removed by it (VM, keypair, security group…).
    pub ephemeral: bool,
    #[serde(default, skip_serializing_if = "Lookup::is_empty")]
    pub lookup: Lookup,
    /// What the resource looks like, as last seen; never a secret.
    #[serde(default)]
    pub attributes: BTreeMap<String, serde_json::Value>,
    /// The digest of the inputs that shaped its content (durable resources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_digest: Option<String>,
    /// Addresses this one depends on, to destroy in the right order without
    /// the template.
    #[serde(default)]
    pub dependencies: Vec<String>,
}

impl Lookup {
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.client_token.is_none()
    }
}

impl ResourceState {
    pub fn pending(
        address: String,
        build: &str,
        kind: Kind,
        ephemeral: bool,
        lookup: Lookup,
    ) -> Self {
        ResourceState {
            address,
            build: build.to_string(),
            kind,
            id: None,
            status: Status::Pending,
            ephemeral,
            lookup,
            attributes: BTreeMap::new(),
            input_digest: None,
            dependencies: Vec::new(),
        }
    }
}
