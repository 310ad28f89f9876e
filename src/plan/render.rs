//! Plans as a person reads them, and as JSON.

use std::fmt::Write;

use serde_json::{Value, json};

use super::{Action, Change, Plan};

fn show(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

fn attribute_lines(out: &mut String, change: &Change) {
    let width = change
        .after
        .keys()
        .chain(change.before.keys())
        .map(|k| k.len())
        .max()
        .unwrap_or(0);
    match change.action {
        Action::Update => {
            for (k, after) in &change.after {
                let before = change.before.get(k).cloned().unwrap_or(Value::Null);
                let Some(after) = after else { continue };
                if &before == after {
                    continue;
                }
                let (b, a) = (pretty(&before), pretty(after));
                if b.lines().count() <= 1 && a.lines().count() <= 1 {
                    let _ = writeln!(out, "      {k:<width$} = {b} -> {a}");
                } else {
                    let _ = writeln!(out, "      {k}:");
                    let diff = similar::TextDiff::from_lines(&b, &a);
                    for line in diff.iter_all_changes() {
                        let sign = match line.tag() {
                            similar::ChangeTag::Delete => "-",
                            similar::ChangeTag::Insert => "+",
                            similar::ChangeTag::Equal => " ",
                        };
                        let _ = write!(out, "        {sign} {line}");
                        if !line.to_string().ends_with('\n') {
                            out.push('\n');
                        }
                    }
                }
            }
        }
        Action::Create | Action::Replace | Action::Read => {
            for (k, v) in &change.after {
                let shown = match v {
                    Some(v) => show(v),
                    None => "(known after apply)".into(),
                };
                let before = change.before.get(k);
                match before {
                    Some(b) if change.action == Action::Replace && Some(b) != v.as_ref() => {
                        let _ = writeln!(out, "      {k:<width$} = {} -> {shown}", show(b));
                    }
                    _ => {
                        let _ = writeln!(out, "      {k:<width$} = {shown}");
                    }
                }
            }
        }
        Action::Destroy => {}
    }
}

/// The plan as text, the same bytes for the same plan.
pub fn render_text(plan: &Plan) -> String {
    let mut out = String::new();
    if !plan.has_changes() {
        out.push_str("No changes. The state and the cloud match the template.\n");
        return out;
    }
    out.push_str("osci will perform these actions:\n\n");
    for change in &plan.changes {
        let mut head = format!("  {} {}", change.action.symbol(), change.address);
        if let Some(id) = &change.id
            && change.address.as_str() != id
        {
            let _ = write!(head, " ({id})");
        }
        if change.ephemeral && change.action != Action::Destroy {
            head.push_str("  [ephemeral: removed by this apply]");
        }
        if let Some(reason) = &change.reason {
            let _ = write!(head, "  # {reason}");
        }
        out.push_str(&head);
        out.push('\n');
        attribute_lines(&mut out, change);
    }
    let durable = |a: Action| {
        plan.changes
            .iter()
            .filter(|c| c.action == a && !c.ephemeral)
            .count()
    };
    let ephemeral = plan
        .changes
        .iter()
        .filter(|c| c.ephemeral && c.action == Action::Create)
        .count();
    let _ = writeln!(
        out,
        "\nPlan: {} to add, {} to replace, {} to change, {} to destroy; {} ephemeral to make and remove.",
        durable(Action::Create),
        durable(Action::Replace),
        durable(Action::Update),
        plan.count(Action::Destroy),
        ephemeral
    );
    out
}

/// `plan --json`: one document with a `format_version`.
pub fn render_json(plan: &Plan) -> Value {
    let nodes: Vec<Value> = plan
        .nodes
        .iter()
        .map(|n| {
            json!({
                "id": n.id,
                "address": n.address,
                "build": n.build,
                "kind": n.kind,
                "action": n.action.map_or(json!("no-op"), |a| json!(a)),
                "ephemeral": n.ephemeral,
            })
        })
        .collect();
    json!({
        "format_version": plan.format_version,
        "lineage": plan.lineage,
        "serial": plan.serial,
        "builds": plan.builds,
        "resource_changes": plan.changes,
        "nodes": nodes,
        "edges": plan.edges,
        "summary": {
            "create": plan.count(Action::Create),
            "replace": plan.count(Action::Replace),
            "update": plan.count(Action::Update),
            "destroy": plan.count(Action::Destroy),
        },
    })
}
