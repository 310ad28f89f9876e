//! `osci graph`: the plan's graph in Graphviz's DOT, as `terraform graph`
//! prints it: an edge `a -> b` means `a` waits for `b`; each node is
//! labelled with its action.

use std::fmt::Write;

use super::Plan;

/// The plan's graph as DOT, the same bytes for the same plan.
pub fn render_dot(plan: &Plan) -> String {
    let quote = |s: &str| serde_json::Value::from(s).to_string();
    let mut out = String::from(
        "digraph osci {\n  compound = \"true\"\n  newrank = \"true\"\n  node [shape = \"box\"]\n",
    );
    for node in &plan.nodes {
        let symbol = node.action.map_or("", |a| a.symbol());
        let label = if symbol.is_empty() {
            node.id.clone()
        } else {
            format!("{symbol} {}", node.id)
        };
        let style = if node.action.is_none() {
            ", style = \"dashed\""
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  {} [label = {}{style}]",
            quote(&node.id),
            quote(&label)
        );
    }
    for (before, after) in &plan.edges {
        let _ = writeln!(out, "  {} -> {}", quote(after), quote(before));
    }
    out.push_str("}\n");
    out
}
