//! Plans (design §4): the template's graph against the refreshed state, as
//! an action per node and the jobs an apply will run, rendered as text,
//! JSON and DOT. Plans are deterministic: same template, state and cloud
//! give the same bytes.

mod diff;
mod dot;
mod render;
mod schedule;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::graph::Action;
use crate::graph::{Address, Graph, Kind, Lifetime};
use crate::state::State;
pub use diff::{Diff, Observed, Orphan, anchor, current_attributes, diff};
pub use dot::render_dot;
pub use render::{render_json, render_text};
pub use schedule::{DESTROY_SUFFIX, Job, ORPHAN_SUFFIX, Schedule, Work, schedule};

/// The version of `plan --json` and of saved plans.
pub const FORMAT_VERSION: &str = "1.0";

/// One line of the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub address: Address,
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

/// An existing OMI that `force_deregister` removes before the new one is
/// made, with the snapshots `force_delete_snapshot` removes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deregister {
    pub image_id: String,
    pub snapshot_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildPlan {
    pub name: String,
    /// What happens to the build's artifact; `None` when nothing.
    pub action: Option<Action>,
    pub digest: String,
    pub source_omi: String,
    pub deregister: Vec<Deregister>,
}

/// A node of the plan's graph: a declared node, the removal of an
/// ephemeral one, or a leftover's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanNode {
    /// Unique in the graph (see [`Job::id`]).
    pub id: String,
    pub address: Address,
    pub build: String,
    pub kind: Kind,
    /// `None`: nothing to do.
    pub action: Option<Action>,
    pub ephemeral: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: String,
    /// `None` while the state has never been written: a new state's
    /// lineage is only chosen for good by its first write.
    pub lineage: Option<String>,
    pub serial: u64,
    pub builds: Vec<BuildPlan>,
    /// Every change, leftovers' then builds', in the order they are listed.
    pub changes: Vec<Change>,
    pub nodes: Vec<PlanNode>,
    /// `(a, b)`: node `a` comes before node `b`.
    pub edges: Vec<(String, String)>,
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| c.action != Action::Read)
    }

    pub fn count(&self, action: Action) -> usize {
        self.changes.iter().filter(|c| c.action == action).count()
    }
}

/// What happens to a build's artifact: its anchor's action, or an update
/// when only settings change.
pub fn build_action(graph: &Graph, build: &str) -> Option<Action> {
    if let Some(action) = anchor(graph, build).and_then(|a| graph.node(a).action) {
        return Some(action);
    }
    graph
        .indices()
        .map(|i| graph.node(i))
        .filter(|n| n.build == build && n.lifetime == Lifetime::Durable)
        .find_map(|n| n.action)
        .map(|_| Action::Update)
}

/// The plan of a planned graph: its lines, nodes and edges.
pub fn summarize(
    graph: &Graph,
    schedule: &Schedule,
    diff: &Diff,
    state: &State,
    observed: &Observed,
    builds: Vec<BuildPlan>,
) -> Plan {
    let mut changes = Vec::new();
    for o in &diff.orphans {
        let Some(r) = state.get(o.address.as_str()) else {
            continue;
        };
        changes.push(Change {
            address: r.address.clone(),
            action: Action::Destroy,
            ephemeral: r.ephemeral,
            id: r.id.clone(),
            before: r.attributes.clone(),
            after: BTreeMap::new(),
            reason: Some(o.reason.into()),
        });
    }
    for b in &builds {
        let nodes: Vec<_> = graph
            .indices()
            .map(|i| graph.node(i))
            .filter(|n| n.build == b.name)
            .collect();
        let changed = nodes
            .iter()
            .any(|n| n.action.is_some_and(|a| a != Action::Read));
        if !changed {
            continue;
        }
        for n in nodes.iter().filter(|n| n.lifetime == Lifetime::Removal) {
            changes.push(Change {
                address: n.address.clone(),
                action: Action::Destroy,
                ephemeral: false,
                id: n.id.clone(),
                before: BTreeMap::new(),
                after: BTreeMap::new(),
                reason: n.reason.clone(),
            });
        }
        for n in &nodes {
            let Some(action) = n.action else { continue };
            let shown = match n.lifetime {
                Lifetime::Data => true,
                Lifetime::Durable | Lifetime::Ephemeral | Lifetime::Held => n.kind.is_recorded(),
                Lifetime::Step | Lifetime::Removal => false,
            };
            if !shown {
                continue;
            }
            let previous = state
                .get(n.address.as_str())
                .filter(|_| matches!(action, Action::Replace | Action::Update));
            let before = match action {
                Action::Update => {
                    let current = current_attributes(&n.address, state, observed);
                    n.desired
                        .keys()
                        .filter_map(|k| current.get(k).map(|v| (k.clone(), v.clone())))
                        .collect()
                }
                _ => previous.map(|p| p.attributes.clone()).unwrap_or_default(),
            };
            let anchor_node = n.kind == Kind::Image && n.address.key().is_none();
            let reason = if anchor_node && action == Action::Create && diff.gone.contains(&b.name) {
                Some("the OMI was deleted outside osci".to_string())
            } else if anchor_node && action == Action::Replace {
                Some("the inputs that shape the image changed".to_string())
            } else {
                None
            };
            changes.push(Change {
                address: n.address.clone(),
                action,
                ephemeral: n.ephemeral(),
                id: previous.and_then(|p| p.id.clone()).or_else(|| n.id.clone()),
                before,
                after: n.desired.clone(),
                reason,
            });
        }
    }
    let mut nodes: Vec<PlanNode> = graph
        .indices()
        .map(|i| graph.node(i))
        .map(|n| PlanNode {
            id: n.address.to_string(),
            address: n.address.clone(),
            build: n.build.clone(),
            kind: n.kind,
            action: n.action,
            ephemeral: n.ephemeral(),
        })
        .collect();
    let declared: std::collections::BTreeSet<String> = nodes.iter().map(|n| n.id.clone()).collect();
    nodes.extend(
        schedule
            .jobs
            .iter()
            .filter(|j| !declared.contains(&j.id))
            .map(|j| PlanNode {
                id: j.id.clone(),
                address: j.address.clone(),
                build: j.build.clone(),
                kind: j.kind,
                action: Some(j.action),
                ephemeral: j.ephemeral,
            }),
    );
    let mut edges: std::collections::BTreeSet<(String, String)> = graph
        .edges()
        .map(|(a, b, _)| {
            (
                graph.node(a).address.to_string(),
                graph.node(b).address.to_string(),
            )
        })
        .collect();
    edges.extend(
        schedule
            .edges
            .iter()
            .map(|&(a, b)| (schedule.jobs[a].id.clone(), schedule.jobs[b].id.clone())),
    );
    Plan {
        format_version: FORMAT_VERSION.to_string(),
        lineage: (state.serial > 0).then(|| state.lineage.clone()),
        serial: state.serial,
        builds,
        changes,
        nodes,
        edges: edges.into_iter().collect(),
    }
}
