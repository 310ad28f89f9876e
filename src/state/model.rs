//! The state document and its resources.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::graph::{Address, Kind};

/// The version of the state document this osci writes. Version 1 recorded
/// what made a resource as its dependency (a volume depended on its VM);
/// version 2 records what a resource needs, so destroy goes in reverse
/// order of the dependencies, whatever the kinds. Version 1 is read and
/// turned into version 2 ([`State::upgrade`]).
pub const FORMAT_VERSION: u32 = 2;

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
        self.position(address).map(|i| &self.resources[i])
    }

    pub fn get_mut(&mut self, address: &str) -> Option<&mut ResourceState> {
        self.position(address).map(|i| &mut self.resources[i])
    }

    fn position(&self, address: &str) -> Option<usize> {
        self.resources
            .binary_search_by(|r| r.address.as_str().cmp(address))
            .ok()
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
        let i = self.position(address)?;
        Some(self.resources.remove(i))
    }

    /// The resources of one build.
    pub fn build(&self, build: &str) -> impl Iterator<Item = &ResourceState> {
        self.resources.iter().filter(move |r| r.build == build)
    }

    /// This state with the resources of the builds `keep` keeps only:
    /// what a plan of a selection of builds sees, so that it leaves the
    /// others alone.
    pub fn of_builds(&self, keep: impl Fn(&str) -> bool) -> State {
        let mut view = self.clone();
        view.resources.retain(|r| keep(&r.build));
        view
    }

    /// Turns an older document into the current version.
    pub fn upgrade(&mut self) {
        if self.format_version < 2 {
            // Version 1 made a volume depend on its VM and a snapshot on its
            // image; the VM uses the volume and the image the snapshot, so
            // the edge turns round.
            let made: Vec<(Address, Address)> = self
                .resources
                .iter()
                .filter(|r| matches!(r.kind, Kind::Volume | Kind::Snapshot))
                .flat_map(|r| {
                    r.dependencies
                        .iter()
                        .filter(|d| {
                            self.get(d.as_str())
                                .is_some_and(|m| matches!(m.kind, Kind::Vm | Kind::Image))
                        })
                        .map(|d| (d.clone(), r.address.clone()))
                })
                .collect();
            for (maker, child) in made {
                if let Some(c) = self.get_mut(child.as_str()) {
                    c.dependencies.retain(|d| *d != maker);
                }
                if let Some(m) = self.get_mut(maker.as_str())
                    && !m.dependencies.contains(&child)
                {
                    m.dependencies.push(child);
                }
            }
            self.resources.sort_by(|a, b| a.address.cmp(&b.address));
            self.format_version = 2;
        }
    }
}

impl Default for State {
    fn default() -> Self {
        State::new()
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

impl Lookup {
    pub fn name(name: impl Into<String>) -> Lookup {
        Lookup {
            name: Some(name.into()),
            client_token: None,
        }
    }

    pub fn client_token(token: impl Into<String>) -> Lookup {
        Lookup {
            name: None,
            client_token: Some(token.into()),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.client_token.is_none()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceState {
    /// `build.web.image`, `build.web.snapshot["/dev/sda1"]`, …
    pub address: Address,
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
    /// What this resource needs while it exists: destroy removes it before
    /// them, without the template.
    #[serde(default)]
    pub dependencies: Vec<Address>,
}

impl ResourceState {
    pub fn pending(
        address: Address,
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

    /// A resource made with another, its id known.
    pub fn made(
        address: Address,
        build: &str,
        kind: Kind,
        ephemeral: bool,
        id: String,
        status: Status,
    ) -> Self {
        ResourceState {
            id: Some(id),
            status,
            ..ResourceState::pending(address, build, kind, ephemeral, Lookup::default())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_1_dependencies_turn_round() {
        let entry = |address: &str, kind, deps: &[&str]| ResourceState {
            dependencies: deps.iter().map(|d| Address::from_text(*d)).collect(),
            ..ResourceState::made(
                Address::from_text(address),
                "w",
                kind,
                true,
                "x".into(),
                Status::Created,
            )
        };
        let mut state = State {
            format_version: 1,
            resources: vec![
                entry("build.w.security_group", Kind::SecurityGroup, &[]),
                entry("build.w.vm", Kind::Vm, &["build.w.security_group"]),
                entry(
                    "build.w.volume[\"/dev/sda1\"]",
                    Kind::Volume,
                    &["build.w.vm"],
                ),
            ],
            ..State::new()
        };
        state.upgrade();
        assert_eq!(state.format_version, 2);
        let deps = |a: &str| state.get(a).unwrap().dependencies.clone();
        assert_eq!(
            deps("build.w.vm"),
            vec![
                Address::from_text("build.w.security_group"),
                Address::from_text("build.w.volume[\"/dev/sda1\"]")
            ]
        );
        assert!(deps("build.w.volume[\"/dev/sda1\"]").is_empty());
    }
}
