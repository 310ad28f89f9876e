//! A build's resources and the order they depend on each other in.

use std::collections::BTreeMap;

use petgraph::graph::{DiGraph, NodeIndex};

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
    pub depends_on: Vec<String>,
}

/// Resources with their dependencies; edges run from a dependency to its
/// dependents.
#[derive(Debug, Default)]
pub struct Graph {
    graph: DiGraph<Resource, ()>,
    index: BTreeMap<String, NodeIndex>,
}

impl Graph {
    pub fn new() -> Graph {
        Graph::default()
    }

    /// Adds a resource; its dependencies must be added before it.
    pub fn add(&mut self, resource: Resource) -> Result<(), String> {
        let deps: Vec<NodeIndex> = resource
            .depends_on
            .iter()
            .map(|d| {
                self.index
                    .get(d)
                    .copied()
                    .ok_or_else(|| format!("{} depends on unknown {d}", resource.address))
            })
            .collect::<Result<_, _>>()?;
        let address = resource.address.clone();
        let node = self.graph.add_node(resource);
        for d in deps {
            self.graph.add_edge(d, node, ());
        }
        self.index.insert(address, node);
        Ok(())
    }

    /// Resources so that each comes after what it depends on: by the
    /// length of the chain leading to it, then by address, which makes the
    /// order deterministic.
    pub fn in_order(&self) -> Vec<&Resource> {
        let mut nodes: Vec<NodeIndex> = self.graph.node_indices().collect();
        nodes.sort_by_key(|n| (depth(&self.graph, *n), self.graph[*n].address.clone()));
        nodes.into_iter().map(|n| &self.graph[n]).collect()
    }

    pub fn get(&self, address: &str) -> Option<&Resource> {
        self.index.get(address).map(|n| &self.graph[*n])
    }
}

/// The length of the longest dependency chain leading to `n`.
fn depth(graph: &DiGraph<Resource, ()>, n: NodeIndex) -> usize {
    graph
        .neighbors_directed(n, petgraph::Direction::Incoming)
        .map(|p| depth(graph, p) + 1)
        .max()
        .unwrap_or(0)
}
