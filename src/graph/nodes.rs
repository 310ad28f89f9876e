//! The graph builders declare: nodes (resources, data, steps) and edges
//! (what must exist before what), in petgraph.

use std::collections::BTreeMap;
use std::sync::Arc;

use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};
use serde_json::Value;

use super::{Action, Address, Kind, Step};

/// How long what a node makes lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    /// Kept in the state after the apply: an OMI, its snapshots, their
    /// settings.
    Durable,
    /// Made and removed by the apply that needs it: the build VM, its
    /// keypair, security group, public IP and volumes.
    Ephemeral,
    /// Made by the apply that needs it, and given up as soon as the nodes
    /// right after it are done: the host's device lock, held from the
    /// choice of a device until the volume is linked there.
    Held,
    /// Work with nothing to keep: provisioning, stopping the VM.
    Step,
    /// Read at plan time: the source OMI.
    Data,
    /// Removes something the state does not hold (`force_deregister`).
    Removal,
}

/// One node as a builder declares it.
pub struct Node {
    pub address: Address,
    pub build: String,
    pub kind: Kind,
    pub lifetime: Lifetime,
    /// What the template decides of it, as the plan shows it; `None`
    /// values are known only after apply.
    pub desired: BTreeMap<String, Option<Value>>,
    /// The digest of the inputs that shape it (durable nodes): when it
    /// changes, the node is replaced.
    pub digest: Option<String>,
    /// The id of what a data node read or a removal node removes.
    pub id: Option<String>,
    /// Why the node is there, when the plan should say (a removal).
    pub reason: Option<String>,
    /// What the plan decided; `None` until planned, and for nodes with
    /// nothing to do.
    pub action: Option<Action>,
    /// What carries the action out.
    pub step: Arc<dyn Step>,
}

impl Node {
    pub fn new(
        build: &str,
        kind: Kind,
        key: Option<&str>,
        lifetime: Lifetime,
        step: Arc<dyn Step>,
    ) -> Node {
        Node {
            address: Address::new(build, kind, key),
            build: build.to_string(),
            kind,
            lifetime,
            desired: BTreeMap::new(),
            digest: None,
            id: None,
            reason: None,
            action: None,
            step,
        }
    }

    pub fn with(mut self, attribute: &str, value: Option<Value>) -> Node {
        self.desired.insert(attribute.to_string(), value);
        self
    }

    pub fn ephemeral(&self) -> bool {
        matches!(self.lifetime, Lifetime::Ephemeral | Lifetime::Held)
    }
}

/// Why one node comes after another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    /// The later node uses the earlier one (a VM its security group): made
    /// after it, removed before it.
    Needs,
    /// The earlier node's work brings the later one into being (a VM its
    /// volumes, an image its snapshots): recorded after it, removed after
    /// it too, since the maker uses what it made.
    Makes,
    /// The later node starts once the earlier, ephemeral one is removed
    /// (a snapshot of a volume once it is unmounted and unlinked); the
    /// earlier one still runs only for it.
    Freed,
}

/// A cycle among declared nodes, which no order can satisfy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the graph has a cycle: {}", cycle_text(.0))]
pub struct Cycle(pub Vec<String>);

fn cycle_text(nodes: &[String]) -> String {
    let mut text = nodes.join(" -> ");
    if let Some(first) = nodes.first() {
        text.push_str(" -> ");
        text.push_str(first);
    }
    text
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    #[error("two nodes have the address {0}")]
    Duplicate(Address),
    #[error(transparent)]
    Cycle(#[from] Cycle),
}

/// The nodes and edges of every build of a template.
#[derive(Default)]
pub struct Graph {
    inner: DiGraph<Node, Edge>,
    index: BTreeMap<Address, NodeIndex>,
}

impl Graph {
    pub fn new() -> Graph {
        Graph::default()
    }

    pub fn add(&mut self, node: Node) -> Result<NodeIndex, GraphError> {
        if self.index.contains_key(&node.address) {
            return Err(GraphError::Duplicate(node.address));
        }
        let address = node.address.clone();
        let i = self.inner.add_node(node);
        self.index.insert(address, i);
        Ok(i)
    }

    /// `user` needs `used`.
    pub fn needs(&mut self, user: NodeIndex, used: NodeIndex) {
        self.inner.update_edge(used, user, Edge::Needs);
    }

    /// `maker`'s work brings `made` into being.
    pub fn makes(&mut self, maker: NodeIndex, made: NodeIndex) {
        self.inner.update_edge(maker, made, Edge::Makes);
    }

    /// `later` starts once `ephemeral` is removed.
    pub fn after_removal(&mut self, later: NodeIndex, ephemeral: NodeIndex) {
        self.inner.update_edge(ephemeral, later, Edge::Freed);
    }

    pub fn find(&self, address: &str) -> Option<NodeIndex> {
        self.index.get(address).copied()
    }

    pub fn node(&self, i: NodeIndex) -> &Node {
        &self.inner[i]
    }

    pub fn node_mut(&mut self, i: NodeIndex) -> &mut Node {
        &mut self.inner[i]
    }

    /// Every node, in the order they were declared.
    pub fn indices(&self) -> impl Iterator<Item = NodeIndex> + '_ {
        self.inner.node_indices()
    }

    /// The nodes `i` comes after, with why.
    pub fn before(&self, i: NodeIndex) -> impl Iterator<Item = (NodeIndex, Edge)> + '_ {
        self.inner
            .edges_directed(i, Direction::Incoming)
            .map(|e| (petgraph::visit::EdgeRef::source(&e), *e.weight()))
    }

    /// The nodes that come after `i`, with why.
    pub fn after(&self, i: NodeIndex) -> impl Iterator<Item = (NodeIndex, Edge)> + '_ {
        self.inner
            .edges_directed(i, Direction::Outgoing)
            .map(|e| (petgraph::visit::EdgeRef::target(&e), *e.weight()))
    }

    /// Every edge: (earlier, later, why).
    pub fn edges(&self) -> impl Iterator<Item = (NodeIndex, NodeIndex, Edge)> + '_ {
        self.inner.edge_indices().map(|e| {
            let (a, b) = self.inner.edge_endpoints(e).expect("an edge of the graph");
            (a, b, self.inner[e])
        })
    }

    /// The nodes in an order where every node comes after those it follows,
    /// or the cycle that makes this impossible, named in full.
    pub fn order(&self) -> Result<Vec<NodeIndex>, Cycle> {
        match petgraph::algo::toposort(&self.inner, None) {
            Ok(order) => Ok(order),
            Err(_) => Err(find_cycle(&self.inner, |n| n.address.to_string())),
        }
    }

    /// For each recorded node, the recorded nodes it must be destroyed
    /// before: what it needs, and what it made.
    pub fn recorded_dependencies(&self) -> BTreeMap<Address, Vec<Address>> {
        let mut out = BTreeMap::new();
        for i in self.inner.node_indices() {
            let node = &self.inner[i];
            if !node.kind.is_recorded() {
                continue;
            }
            let mut deps: Vec<Address> = self
                .before(i)
                .filter(|(_, edge)| *edge == Edge::Needs)
                .map(|(p, _)| &self.inner[p])
                .filter(|p| p.kind.is_recorded())
                .map(|p| p.address.clone())
                .chain(
                    self.after(i)
                        .filter(|(_, edge)| *edge == Edge::Makes)
                        .map(|(c, _)| self.inner[c].address.clone()),
                )
                .collect();
            deps.sort();
            deps.dedup();
            out.insert(node.address.clone(), deps);
        }
        out
    }
}

/// The nodes of one cycle of `graph` (which has one), in cycle order.
pub fn find_cycle<N, E>(graph: &DiGraph<N, E>, name: impl Fn(&N) -> String) -> Cycle {
    for component in petgraph::algo::tarjan_scc(graph) {
        let looped = component.len() > 1
            || component
                .first()
                .is_some_and(|&n| graph.find_edge(n, n).is_some());
        if !looped {
            continue;
        }
        // The shortest way round from the smallest name, so the message is
        // short and stable.
        let members: std::collections::BTreeSet<NodeIndex> = component.iter().copied().collect();
        let start = *component
            .iter()
            .min_by_key(|&&n| name(&graph[n]))
            .expect("a non-empty component");
        let mut parent: BTreeMap<NodeIndex, NodeIndex> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        'search: while let Some(at) = queue.pop_front() {
            let mut next: Vec<NodeIndex> = graph
                .neighbors_directed(at, Direction::Outgoing)
                .filter(|n| members.contains(n))
                .collect();
            next.sort_by_key(|&n| name(&graph[n]));
            for n in next {
                if n == start {
                    parent.insert(start, at);
                    break 'search;
                }
                if let std::collections::btree_map::Entry::Vacant(e) = parent.entry(n) {
                    e.insert(at);
                    queue.push_back(n);
                }
            }
        }
        let mut path = Vec::new();
        let mut at = parent.get(&start).copied().unwrap_or(start);
        while at != start {
            path.push(at);
            at = parent[&at];
        }
        path.push(start);
        path.reverse();
        return Cycle(path.into_iter().map(|n| name(&graph[n])).collect());
    }
    Cycle(Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Nothing;

    fn node(kind: Kind, key: Option<&str>, lifetime: Lifetime) -> Node {
        Node::new("web", kind, key, lifetime, Arc::new(Nothing))
    }

    #[test]
    fn a_cycle_is_refused_with_every_node_on_it() {
        let mut g = Graph::new();
        let sg = g
            .add(node(Kind::SecurityGroup, None, Lifetime::Ephemeral))
            .unwrap();
        let vm = g.add(node(Kind::Vm, None, Lifetime::Ephemeral)).unwrap();
        let stop = g.add(node(Kind::Stop, None, Lifetime::Step)).unwrap();
        g.needs(vm, sg);
        g.needs(stop, vm);
        assert_eq!(g.order().unwrap(), [sg, vm, stop]);
        g.needs(sg, stop);
        let cycle = g.order().unwrap_err();
        assert_eq!(
            cycle.to_string(),
            "the graph has a cycle: build.web.security_group -> build.web.vm -> build.web.stop -> build.web.security_group"
        );
        assert!(matches!(
            g.add(node(Kind::Vm, None, Lifetime::Ephemeral)),
            Err(GraphError::Duplicate(_))
        ));
    }

    #[test]
    fn recorded_dependencies_are_what_each_resource_needs() {
        let mut g = Graph::new();
        let sg = g
            .add(node(Kind::SecurityGroup, None, Lifetime::Ephemeral))
            .unwrap();
        let vm = g.add(node(Kind::Vm, None, Lifetime::Ephemeral)).unwrap();
        let volume = g
            .add(node(Kind::Volume, Some("/dev/sda1"), Lifetime::Ephemeral))
            .unwrap();
        let stop = g.add(node(Kind::Stop, None, Lifetime::Step)).unwrap();
        let image = g.add(node(Kind::Image, None, Lifetime::Durable)).unwrap();
        g.needs(vm, sg);
        g.makes(vm, volume);
        g.needs(stop, vm);
        g.needs(image, stop);
        let deps = g.recorded_dependencies();
        let of = |i: NodeIndex| deps[&g.node(i).address].clone();
        // The VM uses its group and the volume it was launched with.
        assert_eq!(
            of(vm),
            [g.node(sg).address.clone(), g.node(volume).address.clone()]
        );
        assert!(of(volume).is_empty());
        // Steps are not recorded; what comes after one needs nothing through it.
        assert!(!deps.contains_key(&g.node(stop).address));
        assert!(of(image).is_empty());
    }
}
