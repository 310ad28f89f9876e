//! Comparing what the template wants with what the state holds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::graph::{BuildAction, Deregister, Resource};
use crate::state::{Kind, State, Status};

/// What refresh saw of a state entry: its attributes now, or gone.
pub type Observed = BTreeMap<String, Option<BTreeMap<String, Value>>>;

/// One build as the template wants it.
pub struct DesiredBuild {
    pub name: String,
    pub resources: Vec<Resource>,
    pub digest: String,
    pub deregister: Vec<Deregister>,
    pub source_omi: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Replace,
    Update,
    Destroy,
}

impl Action {
    pub fn symbol(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Replace => "-/+",
            Action::Update => "~",
            Action::Destroy => "-",
        }
    }
}

/// One line of the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub address: String,
    pub action: Action,
    pub ephemeral: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Attribute name → value before (`null` when new).
    pub before: BTreeMap<String, Value>,
    /// Attribute name → value after; `null` means known after apply.
    pub after: BTreeMap<String, Option<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildPlan {
    pub name: String,
    /// `None` when the build needs nothing.
    pub action: Option<BuildAction>,
    pub digest: String,
    pub source_omi: String,
    pub deregister: Vec<Deregister>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: String,
    /// `None` while the state has never been written: a new state's
    /// lineage is only chosen for good by its first write.
    pub lineage: Option<String>,
    pub serial: u64,
    pub builds: Vec<BuildPlan>,
    /// Every change, builds' and leftovers', in the order they are listed.
    pub changes: Vec<Change>,
    /// State entries the apply destroys before building: leftovers of
    /// interrupted applies and builds no longer in the template.
    pub orphans: Vec<String>,
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        !self.changes.is_empty()
    }

    pub fn count(&self, action: Action) -> usize {
        self.changes.iter().filter(|c| c.action == action).count()
    }
}

/// Diffs the template's builds against the state (with what refresh saw).
pub fn diff(desired: &[DesiredBuild], state: &State, observed: &Observed) -> Plan {
    let mut changes = Vec::new();
    let mut builds = Vec::new();
    let mut orphans = Vec::new();

    // Leftovers first: builds gone from the template, ephemerals and
    // half-made entries of interrupted applies.
    let in_template: Vec<&str> = desired.iter().map(|b| b.name.as_str()).collect();
    for r in &state.resources {
        let reason = if !in_template.contains(&r.build.as_str()) {
            Some("the build is no longer in the template")
        } else if r.ephemeral {
            Some("left by an interrupted apply")
        } else if r.status != Status::Created {
            Some("half-made by an interrupted or failed apply")
        } else {
            None
        };
        if let Some(reason) = reason {
            orphans.push(r.address.clone());
            changes.push(Change {
                address: r.address.clone(),
                action: Action::Destroy,
                ephemeral: r.ephemeral,
                id: r.id.clone(),
                before: r.attributes.clone(),
                after: BTreeMap::new(),
                reason: Some(reason.into()),
            });
        }
    }

    for build in desired {
        let image = build
            .resources
            .iter()
            .find(|r| r.kind == Kind::Image)
            .map(|r| r.address.clone());
        let current = image
            .as_ref()
            .and_then(|a| state.get(a))
            .filter(|r| r.status == Status::Created && !orphans.contains(&r.address));
        let gone = current.is_some_and(|r| matches!(observed.get(&r.address), Some(None)));
        if gone {
            // What the deleted OMI left (its snapshots, its settings) goes
            // before the build makes new ones at the same addresses.
            for r in state.build(&build.name) {
                if !orphans.contains(&r.address) {
                    orphans.push(r.address.clone());
                }
            }
        }
        let action = match (&image, current) {
            (None, _) => Some(BuildAction::Create),
            (Some(_), None) => Some(BuildAction::Create),
            (Some(_), Some(_)) if gone => Some(BuildAction::Create),
            (Some(_), Some(r)) if r.input_digest.as_deref() != Some(build.digest.as_str()) => {
                Some(BuildAction::Replace)
            }
            (Some(_), Some(_)) => {
                let stale = build.resources.iter().any(|d| {
                    !d.ephemeral && d.kind != Kind::Snapshot && differs(d, state, observed)
                });
                stale.then_some(BuildAction::Update)
            }
        };
        for target in &build.deregister {
            changes.push(Change {
                address: target.image_id.clone(),
                action: Action::Destroy,
                ephemeral: false,
                id: Some(target.image_id.clone()),
                before: BTreeMap::new(),
                after: BTreeMap::new(),
                reason: Some(format!("force_deregister (build \"{}\")", build.name)),
            });
            for s in &target.snapshot_ids {
                changes.push(Change {
                    address: s.clone(),
                    action: Action::Destroy,
                    ephemeral: false,
                    id: Some(s.clone()),
                    before: BTreeMap::new(),
                    after: BTreeMap::new(),
                    reason: Some(format!("force_delete_snapshot (build \"{}\")", build.name)),
                });
            }
        }
        match action {
            Some(BuildAction::Create) | Some(BuildAction::Replace) => {
                let replacing = action == Some(BuildAction::Replace);
                for d in &build.resources {
                    let previous = state
                        .get(&d.address)
                        .filter(|_| (replacing || gone) && !d.ephemeral);
                    changes.push(Change {
                        address: d.address.clone(),
                        action: if previous.is_some() {
                            Action::Replace
                        } else {
                            Action::Create
                        },
                        ephemeral: d.ephemeral,
                        id: previous.and_then(|p| p.id.clone()),
                        before: previous.map(|p| p.attributes.clone()).unwrap_or_default(),
                        after: d.attributes.clone(),
                        reason: if gone && d.kind == Kind::Image {
                            Some("the OMI was deleted outside osci".into())
                        } else if previous.is_some() && d.kind == Kind::Image {
                            Some("the inputs that shape the image changed".into())
                        } else {
                            None
                        },
                    });
                }
            }
            Some(BuildAction::Update) => {
                for d in &build.resources {
                    if d.ephemeral || d.kind == Kind::Snapshot || !differs(d, state, observed) {
                        continue;
                    }
                    // A setting forgotten by `state rm` is set again: a create.
                    let recorded = state.get(&d.address).is_some();
                    let before = if recorded {
                        current_attributes(&d.address, state, observed)
                    } else {
                        BTreeMap::new()
                    };
                    changes.push(Change {
                        address: d.address.clone(),
                        action: if recorded {
                            Action::Update
                        } else {
                            Action::Create
                        },
                        ephemeral: false,
                        id: state.get(&d.address).and_then(|r| r.id.clone()),
                        before: d
                            .attributes
                            .keys()
                            .filter_map(|k| before.get(k).map(|v| (k.clone(), v.clone())))
                            .collect(),
                        after: d.attributes.clone(),
                        reason: None,
                    });
                }
            }
            None => {}
        }
        builds.push(BuildPlan {
            name: build.name.clone(),
            action,
            digest: build.digest.clone(),
            source_omi: build.source_omi.clone(),
            deregister: build.deregister.clone(),
        });
    }
    Plan {
        format_version: super::FORMAT_VERSION.to_string(),
        lineage: (state.serial > 0).then(|| state.lineage.clone()),
        serial: state.serial,
        builds,
        changes,
        orphans,
    }
}

/// The attributes of a state entry as refresh saw them, or as last recorded.
fn current_attributes(
    address: &str,
    state: &State,
    observed: &Observed,
) -> BTreeMap<String, Value> {
    match observed.get(address) {
        Some(Some(seen)) => seen.clone(),
        _ => state
            .get(address)
            .map(|r| r.attributes.clone())
            .unwrap_or_default(),
    }
}

/// Whether any attribute the template decides differs from what is there.
fn differs(desired: &Resource, state: &State, observed: &Observed) -> bool {
    if state.get(&desired.address).is_none() {
        return true;
    }
    let current = current_attributes(&desired.address, state, observed);
    desired.attributes.iter().any(|(k, want)| match want {
        // Known after apply, and names are set at creation: not an update.
        None => false,
        Some(_) if k == "name" => false,
        Some(v) => current.get(k) != Some(v),
    })
}
