//! Comparing the graph the template declares with what the state holds and
//! refresh saw: an action for every node, and the state entries to remove.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::graph::{Action, Address, Edge, Graph, Kind, Lifetime, NodeIndex};
use crate::state::{State, Status};

/// What refresh saw of a state entry: its attributes now, or gone.
pub type Observed = BTreeMap<Address, Option<BTreeMap<String, Value>>>;

/// A state entry the apply removes before building: a leftover of an
/// interrupted apply, or what a build no longer in the template made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphan {
    pub address: Address,
    pub reason: &'static str,
}

/// What the diff found besides the nodes' actions.
#[derive(Debug, Clone, Default)]
pub struct Diff {
    /// In state order.
    pub orphans: Vec<Orphan>,
    /// Builds whose artifact was deleted outside osci.
    pub gone: BTreeSet<String>,
}

impl Diff {
    pub fn is_orphan(&self, address: &str) -> bool {
        self.orphans.iter().any(|o| o.address == address)
    }
}

/// The node a build's artifact hangs on: its OMI, or the record of a build
/// that keeps nothing.
pub fn anchor(graph: &Graph, build: &str) -> Option<NodeIndex> {
    graph.indices().find(|&i| {
        let n = graph.node(i);
        n.build == build
            && n.lifetime == Lifetime::Durable
            && (n.kind == Kind::Run || (n.kind == Kind::Image && n.address.key().is_none()))
    })
}

/// Gives every node of `graph` its action.
///
/// Durable nodes are made when the state lacks them or refresh found them
/// gone, replaced when their input digest changed or a durable node they
/// come after is made anew (a changed digest spreads along edges), and
/// updated in place when only what can change in place differs. Ephemeral
/// and step nodes run when a durable node after them is made; data nodes
/// are read.
pub fn diff(graph: &mut Graph, state: &State, observed: &Observed) -> Diff {
    let builds: BTreeSet<String> = graph
        .indices()
        .map(|i| graph.node(i).build.clone())
        .collect();
    let mut diff = Diff::default();

    // Leftovers first: builds gone from the template, ephemerals,
    // half-made entries of interrupted applies, and kept volumes the build
    // no longer declares.
    for r in &state.resources {
        let reason = if !builds.contains(&r.build) {
            Some("the build is no longer in the template")
        } else if r.ephemeral {
            Some("left by an interrupted apply")
        } else if r.status != Status::Created {
            Some("half-made by an interrupted or failed apply")
        } else if r.kind == Kind::Volume && graph.find(r.address.as_str()).is_none() {
            // A kept volume the template no longer declares, or one a
            // rebuild replaced.
            Some("no longer in the template")
        } else {
            None
        };
        if let Some(reason) = reason {
            diff.orphans.push(Orphan {
                address: r.address.clone(),
                reason,
            });
        }
    }
    // An artifact deleted outside osci: what it left (snapshots, settings)
    // goes before the build makes new ones at the same addresses.
    for build in &builds {
        let Some(a) = anchor(graph, build) else {
            continue;
        };
        let address = &graph.node(a).address;
        let recorded = state
            .get(address.as_str())
            .is_some_and(|r| r.status == Status::Created && !diff.is_orphan(address.as_str()));
        if recorded && matches!(observed.get(address), Some(None)) {
            diff.gone.insert(build.clone());
            for r in state.build(build) {
                if !diff.is_orphan(r.address.as_str()) {
                    diff.orphans.push(Orphan {
                        address: r.address.clone(),
                        reason: "its OMI was deleted outside osci",
                    });
                }
            }
        }
    }

    let order = graph.order().expect("the planner refuses cycles first");
    for &i in &order {
        let action = {
            let node = graph.node(i);
            match node.lifetime {
                Lifetime::Durable => durable_action(graph, i, state, observed, &diff),
                Lifetime::Data => Some(Action::Read),
                Lifetime::Removal => Some(Action::Destroy),
                Lifetime::Ephemeral | Lifetime::Held | Lifetime::Step => None,
            }
        };
        graph.node_mut(i).action = action;
    }
    // Ephemerals and steps run for what comes after them…
    for &i in order.iter().rev() {
        let node = graph.node(i);
        if !matches!(
            node.lifetime,
            Lifetime::Ephemeral | Lifetime::Held | Lifetime::Step
        ) {
            continue;
        }
        let needed = graph.after(i).any(|(s, _)| {
            let next = graph.node(s);
            match next.lifetime {
                Lifetime::Durable => next.action.is_some_and(Action::makes),
                Lifetime::Ephemeral | Lifetime::Held | Lifetime::Step => next.action.is_some(),
                _ => false,
            }
        });
        if needed {
            graph.node_mut(i).action = Some(Action::Create);
        }
    }
    // …and what a running node makes comes into being with it: its
    // ephemerals, and the durable nodes it makes anew (a VM launched again
    // makes every volume a bsuvolume build keeps).
    for &i in &order {
        if !graph.node(i).action.is_some_and(Action::makes) {
            continue;
        }
        let made: Vec<NodeIndex> = graph
            .after(i)
            .filter(|(_, edge)| *edge == Edge::Makes)
            .map(|(s, _)| s)
            .collect();
        for s in made {
            let node = graph.node_mut(s);
            if node.ephemeral() {
                node.action = Some(Action::Create);
            } else if node.lifetime == Lifetime::Durable && node.action.is_none() {
                node.action = Some(Action::Replace);
            }
        }
    }
    diff
}

fn durable_action(
    graph: &Graph,
    i: NodeIndex,
    state: &State,
    observed: &Observed,
    diff: &Diff,
) -> Option<Action> {
    let node = graph.node(i);
    let entry = state
        .get(node.address.as_str())
        .filter(|r| r.status == Status::Created && !diff.is_orphan(r.address.as_str()));
    let Some(entry) = entry else {
        return Some(Action::Create);
    };
    // A kept volume deleted outside osci (an OMI's drift is its build's,
    // above).
    if node.kind == Kind::Volume && matches!(observed.get(&node.address), Some(None)) {
        return Some(Action::Create);
    }
    if node.digest.is_some() && entry.input_digest != node.digest {
        return Some(Action::Replace);
    }
    let upstream_new = graph.before(i).any(|(p, _)| {
        let before = graph.node(p);
        before.lifetime == Lifetime::Durable && before.action.is_some_and(Action::makes)
    });
    if upstream_new {
        return Some(Action::Replace);
    }
    differs(graph, i, state, observed).then_some(Action::Update)
}

/// The attributes of a state entry as refresh saw them, or as last recorded.
pub fn current_attributes(
    address: &Address,
    state: &State,
    observed: &Observed,
) -> BTreeMap<String, Value> {
    match observed.get(address) {
        Some(Some(seen)) => seen.clone(),
        _ => state
            .get(address.as_str())
            .map(|r| r.attributes.clone())
            .unwrap_or_default(),
    }
}

/// Whether any attribute the template decides differs from what is there.
fn differs(graph: &Graph, i: NodeIndex, state: &State, observed: &Observed) -> bool {
    let node = graph.node(i);
    let current = current_attributes(&node.address, state, observed);
    node.desired.iter().any(|(k, want)| match want {
        // Known after apply, and names are set at creation: not an update.
        None => false,
        Some(_) if k == "name" => false,
        Some(v) => current.get(k) != Some(v),
    })
}
