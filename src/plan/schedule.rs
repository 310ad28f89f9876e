//! From a planned graph to the jobs an apply runs, and the order between
//! them: every node with an action, the removal of every ephemeral node once
//! nothing after it needs it, and the removal of leftovers before their
//! build starts again.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::graph::{Action, Address, Edge, Graph, Kind, Lifetime, NodeIndex, Step};
use crate::state::State;

use super::diff::Diff;

/// What a job does.
#[derive(Clone)]
pub enum Work {
    /// The node's step carries out its action.
    Step(Arc<dyn Step>),
    /// The state entry at the job's address is destroyed; with `adopt`,
    /// what it made and the state lacks too (a leftover of a crash).
    Destroy { adopt: bool },
    /// Nothing at apply time (a data node, read at plan time).
    Nothing,
}

/// One job of an apply.
#[derive(Clone)]
pub struct Job {
    /// Unique in the schedule: the address, with ` (destroy)` for the
    /// removal of an ephemeral node and ` (orphan)` for a leftover's.
    pub id: String,
    pub address: Address,
    pub build: String,
    pub kind: Kind,
    pub action: Action,
    pub ephemeral: bool,
    pub work: Work,
}

impl Job {
    /// The removal of the state entry at `address`, under `id`.
    fn removal(
        id: String,
        address: &Address,
        build: &str,
        kind: Kind,
        ephemeral: bool,
        adopt: bool,
    ) -> Job {
        Job {
            id,
            address: address.clone(),
            build: build.to_string(),
            kind,
            action: Action::Destroy,
            ephemeral,
            work: Work::Destroy { adopt },
        }
    }

    /// How long the job usually lasts, relative to a quick call: the walk
    /// starts the longest remaining chains first.
    pub fn weight(&self) -> u64 {
        match (self.kind, self.action) {
            (Kind::Vm, Action::Create | Action::Replace) => 10,
            (Kind::Image, Action::Create | Action::Replace) => 10,
            (Kind::Vm, Action::Destroy) | (Kind::Stop, _) => 5,
            (Kind::Provision, _) => 5,
            _ => 1,
        }
    }
}

/// The jobs of an apply and the order between them: `(a, b)` means job `a`
/// finishes before job `b` starts.
#[derive(Clone, Default)]
pub struct Schedule {
    pub jobs: Vec<Job>,
    pub edges: Vec<(usize, usize)>,
}

pub const DESTROY_SUFFIX: &str = " (destroy)";
pub const ORPHAN_SUFFIX: &str = " (orphan)";

/// The schedule of `graph` as planned, with `diff`'s leftovers.
pub fn schedule(graph: &Graph, diff: &Diff, state: &State) -> Schedule {
    let mut s = Schedule::default();
    let mut job_of: BTreeMap<NodeIndex, usize> = BTreeMap::new();
    let mut teardown_of: BTreeMap<NodeIndex, usize> = BTreeMap::new();
    for i in graph.indices() {
        let node = graph.node(i);
        let Some(action) = node.action else { continue };
        let work = match node.lifetime {
            Lifetime::Data => Work::Nothing,
            _ => Work::Step(Arc::clone(&node.step)),
        };
        job_of.insert(i, s.jobs.len());
        s.jobs.push(Job {
            id: node.address.to_string(),
            address: node.address.clone(),
            build: node.build.clone(),
            kind: node.kind,
            action,
            ephemeral: node.ephemeral(),
            work,
        });
    }
    for i in graph.indices() {
        let node = graph.node(i);
        if node.ephemeral() && node.action.is_some_and(Action::makes) {
            teardown_of.insert(i, s.jobs.len());
            s.jobs.push(Job::removal(
                format!("{}{DESTROY_SUFFIX}", node.address),
                &node.address,
                &node.build,
                node.kind,
                true,
                false,
            ));
        }
    }
    let mut edges: BTreeSet<(usize, usize)> = BTreeSet::new();
    for (a, b, edge) in graph.edges() {
        if let (Some(&ja), Some(&jb)) = (job_of.get(&a), job_of.get(&b)) {
            edges.insert((ja, jb));
        }
        if let (Edge::Freed, Some(&ta), Some(&jb)) = (edge, teardown_of.get(&a), job_of.get(&b)) {
            edges.insert((ta, jb));
        }
        // A held node is given up before what uses it goes.
        let held = |n: NodeIndex| graph.node(n).lifetime == Lifetime::Held;
        if let (Some(&ta), Some(&tb)) = (teardown_of.get(&a), teardown_of.get(&b))
            && !held(a)
            && !held(b)
        {
            match edge {
                // The user goes before what it used.
                Edge::Needs => {
                    edges.insert((tb, ta));
                }
                // The maker goes before what it made, which it uses.
                Edge::Makes => {
                    edges.insert((ta, tb));
                }
                Edge::Freed => {}
            }
        }
    }
    // An ephemeral node goes once what it serves is done: the nodes after
    // it, up to the first durable ones (made from it); their settings do
    // not need it. A held node goes once the nodes right after it are.
    for (&i, &t) in &teardown_of {
        edges.insert((job_of[&i], t));
        let served = match graph.node(i).lifetime {
            Lifetime::Held => graph
                .after(i)
                .filter(|(_, edge)| *edge != Edge::Freed)
                .map(|(n, _)| n)
                .collect(),
            _ => served(graph, i),
        };
        for later in served {
            if let Some(&j) = job_of.get(&later) {
                edges.insert((j, t));
            }
        }
    }
    // Leftovers go first, in the order their dependencies say, before
    // their build makes anything.
    let mut orphan_of: BTreeMap<Address, usize> = BTreeMap::new();
    for o in &diff.orphans {
        let Some(r) = state.get(o.address.as_str()) else {
            continue;
        };
        orphan_of.insert(r.address.clone(), s.jobs.len());
        s.jobs.push(Job::removal(
            format!("{}{ORPHAN_SUFFIX}", r.address),
            &r.address,
            &r.build,
            r.kind,
            r.ephemeral,
            true,
        ));
    }
    for (address, &j) in &orphan_of {
        let r = state.get(address.as_str()).expect("an orphan of the state");
        for d in &r.dependencies {
            if let Some(&k) = orphan_of.get(d) {
                edges.insert((j, k));
            }
        }
        for (i, &job) in &job_of {
            if graph.node(*i).build == r.build {
                edges.insert((j, job));
            }
        }
    }
    s.edges = edges.into_iter().collect();
    s
}

/// The nodes after `i` through ephemeral and step nodes, with the durable
/// ones where those paths end; not those that wait for `i` to be removed.
fn served(graph: &Graph, i: NodeIndex) -> BTreeSet<NodeIndex> {
    let waits: BTreeSet<NodeIndex> = graph
        .after(i)
        .filter(|(_, edge)| *edge == Edge::Freed)
        .map(|(n, _)| n)
        .collect();
    let mut seen = BTreeSet::new();
    let mut stack: Vec<NodeIndex> = graph
        .after(i)
        .filter(|(n, _)| !waits.contains(n))
        .map(|(n, _)| n)
        .collect();
    while let Some(n) = stack.pop() {
        if seen.insert(n)
            && matches!(
                graph.node(n).lifetime,
                Lifetime::Ephemeral | Lifetime::Held | Lifetime::Step
            )
        {
            stack.extend(
                graph
                    .after(n)
                    .filter(|(m, _)| !waits.contains(m))
                    .map(|(m, _)| m),
            );
        }
    }
    seen
}
