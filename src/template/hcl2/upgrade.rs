//! `osci hcl2_upgrade`: a JSON template written as HCL2, as `packer
//! hcl2_upgrade` does: variables become `variable` blocks, builders
//! `source` blocks, and provisioners and post-processors go into a `build`
//! block. `{{user `x`}}` becomes `var.x`, `{{build_name}}` `source.name`,
//! `{{ build `ID` }}` `build.ID` and `{{env `X`}}` (in defaults) `env("X")`;
//! the other actions (`{{timestamp}}`, `{{ .SourceOMI }}`, …) stay as they
//! are, since osci renders them in HCL2 templates too, so the upgraded
//! template plans as the JSON one does.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::path::Path;

use serde_json::{Map, Value};

use super::builds::{ARRAY_BLOCKS, SOURCE_BLOCKS};
use super::syntax::quote_literal;

/// Why a template cannot be upgraded.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct UpgradeError {
    pub path: std::path::PathBuf,
    pub message: String,
}

/// The HCL2 text of the JSON template at `path`, formatted as `fmt` would.
pub fn upgrade(path: &Path) -> Result<String, UpgradeError> {
    let error = |message: String| UpgradeError {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| error(format!("cannot read it: {e}")))?;
    let root: Value =
        serde_json::from_str(&text).map_err(|e| error(format!("not a JSON template: {e}")))?;
    let Value::Object(root) = root else {
        return Err(error("not a JSON template: expected an object".into()));
    };
    let mut out = String::new();
    for (key, value) in &root {
        if let (true, Value::String(s)) = (key.starts_with('_') || key == "description", value) {
            for line in s.lines() {
                let _ = writeln!(out, "# {line}");
            }
            out.push('\n');
        }
    }
    if let Some(Value::String(v)) = root.get("min_packer_version") {
        let _ = writeln!(
            out,
            "packer {{\n  required_version = {}\n}}\n",
            quote_literal(&format!(">= {v}"))
        );
    }

    let sensitive: BTreeSet<&str> = root
        .get("sensitive-variables")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if let Some(Value::Object(vars)) = root.get("variables") {
        for (name, value) in vars {
            let _ = writeln!(out, "variable {} {{", quote_literal(name));
            out.push_str("  type = string\n");
            match value {
                Value::Null => {}
                Value::String(s) => {
                    if s.contains("{{") && has_user(s) {
                        return Err(error(format!(
                            "variables.{name}: its default uses another variable, which an HCL2 \
                             variable cannot: make it a local value by hand"
                        )));
                    }
                    let _ = writeln!(out, "  default = {}", expression(s, true));
                }
                other => {
                    let _ = writeln!(out, "  default = {}", quote_literal(&scalar(other)));
                }
            }
            if sensitive.contains(name.as_str()) {
                out.push_str("  sensitive = true\n");
            }
            out.push_str("}\n\n");
        }
    }

    let builders = root
        .get("builders")
        .and_then(Value::as_array)
        .ok_or_else(|| error("builders: expected an array of builders".into()))?;
    let mut refs = Vec::new();
    for (i, builder) in builders.iter().enumerate() {
        let Value::Object(b) = builder else {
            return Err(error(format!("builders[{i}]: expected an object")));
        };
        let kind = b
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| error(format!("builders[{i}]: no type")))?;
        let name = b.get("name").and_then(Value::as_str).unwrap_or(kind);
        let _ = writeln!(
            out,
            "source {} {} {{",
            quote_literal(kind),
            quote_literal(name)
        );
        let config: Map<String, Value> = b
            .iter()
            .filter(|(k, _)| k.as_str() != "type" && k.as_str() != "name")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        body(&mut out, &config, 1, true);
        out.push_str("}\n\n");
        refs.push((name.to_string(), format!("{kind}.{name}")));
    }

    out.push_str("build {\n");
    let _ = writeln!(
        out,
        "  sources = [{}]",
        refs.iter()
            .map(|(_, r)| quote_literal(&format!("source.{r}")))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let source_ref = |build: &str| -> String {
        refs.iter()
            .find(|(n, _)| n == build)
            .map_or_else(|| build.to_string(), |(_, r)| r.clone())
    };
    if let Some(Value::Array(provisioners)) = root.get("provisioners") {
        for p in provisioners {
            out.push('\n');
            step(&mut out, "provisioner", p, 1, &source_ref);
        }
    }
    if let Some(Value::Array(post)) = root.get("post-processors") {
        for p in post {
            out.push('\n');
            match p {
                Value::Array(chain) => {
                    out.push_str("  post-processors {\n");
                    for (j, link) in chain.iter().enumerate() {
                        if j > 0 {
                            out.push('\n');
                        }
                        step(&mut out, "post-processor", link, 2, &source_ref);
                    }
                    out.push_str("  }\n");
                }
                other => step(&mut out, "post-processor", other, 1, &source_ref),
            }
        }
    }
    out.push_str("}\n");
    super::fmt::format(path, &out).map_err(|e| error(e.message))
}

/// A provisioner or post-processor block.
fn step(
    out: &mut String,
    kind: &str,
    item: &Value,
    depth: usize,
    source_ref: &dyn Fn(&str) -> String,
) {
    let indent = "  ".repeat(depth);
    let config = match item {
        Value::String(t) => Map::from_iter([("type".to_string(), Value::String(t.clone()))]),
        Value::Object(o) => o.clone(),
        other => Map::from_iter([("type".to_string(), other.clone())]),
    };
    let t = config.get("type").and_then(Value::as_str).unwrap_or("");
    let _ = writeln!(out, "{indent}{kind} {} {{", quote_literal(t));
    let mut rest = Map::new();
    for (k, v) in &config {
        match (k.as_str(), v) {
            ("type", _) => {}
            ("only" | "except", Value::Array(names)) => {
                let refs: Vec<Value> = names
                    .iter()
                    .map(|n| Value::String(source_ref(n.as_str().unwrap_or(""))))
                    .collect();
                rest.insert(k.clone(), Value::Array(refs));
            }
            ("override", Value::Object(by_build)) => {
                let by_ref: Map<String, Value> = by_build
                    .iter()
                    .map(|(b, o)| (source_ref(b), o.clone()))
                    .collect();
                rest.insert(k.clone(), Value::Object(by_ref));
            }
            _ => {
                rest.insert(k.clone(), v.clone());
            }
        }
    }
    body(out, &rest, depth + 1, false);
    let _ = writeln!(out, "{indent}}}");
}

/// The attributes (and, in a source, the nested blocks) of a body.
fn body(out: &mut String, config: &Map<String, Value>, depth: usize, source: bool) {
    let indent = "  ".repeat(depth);
    let is_block = |k: &str, v: &Value| {
        source
            && SOURCE_BLOCKS.contains(&k)
            && match v {
                Value::Object(_) => !ARRAY_BLOCKS.contains(&k),
                Value::Array(items) => {
                    ARRAY_BLOCKS.contains(&k) && items.iter().all(Value::is_object)
                }
                _ => false,
            }
    };
    for (k, v) in config
        .iter()
        .filter(|(k, v)| !is_block(k, v) && !k.starts_with('_'))
    {
        let _ = writeln!(out, "{indent}{} = {}", key(k), value(v, depth));
    }
    for (k, v) in config.iter().filter(|(k, v)| is_block(k, v)) {
        let items: Vec<&Map<String, Value>> = match v {
            Value::Object(o) => vec![o],
            Value::Array(items) => items.iter().filter_map(Value::as_object).collect(),
            _ => Vec::new(),
        };
        for item in items {
            let _ = writeln!(out, "{indent}{k} {{");
            body(out, item, depth + 1, true);
            let _ = writeln!(out, "{indent}}}");
        }
    }
}

fn value(v: &Value, depth: usize) -> String {
    let indent = "  ".repeat(depth);
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => expression(s, false),
        Value::Array(items) if items.is_empty() => "[]".into(),
        Value::Array(items) => {
            let one: Vec<String> = items.iter().map(|i| value(i, depth + 1)).collect();
            let line = format!("[{}]", one.join(", "));
            if line.len() <= 80 && !line.contains('\n') {
                line
            } else {
                let mut s = "[\n".to_string();
                for i in one {
                    let _ = writeln!(s, "{indent}  {i},");
                }
                s.push_str(&indent);
                s.push(']');
                s
            }
        }
        Value::Object(o) if o.is_empty() => "{}".into(),
        Value::Object(o) => {
            let mut s = "{\n".to_string();
            for (k, item) in o {
                let _ = writeln!(s, "{indent}  {} = {}", key(k), value(item, depth + 1));
            }
            s.push_str(&indent);
            s.push('}');
            s
        }
    }
}

/// A key as an identifier when it can be one, else quoted.
fn key(k: &str) -> String {
    let ident = k
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !matches!(k, "null" | "true" | "false" | "for" | "in" | "if");
    if ident {
        k.to_string()
    } else {
        quote_literal(k)
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn has_user(s: &str) -> bool {
    actions(s)
        .iter()
        .any(|a| matches!(a, Piece::Action(x) if x.trim().starts_with("user")))
}

enum Piece<'a> {
    Text(&'a str),
    Action(&'a str),
}

/// The text and `{{ … }}` actions of a string.
fn actions(s: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start..].find("}}") else {
            break;
        };
        if start > 0 {
            out.push(Piece::Text(&rest[..start]));
        }
        out.push(Piece::Action(&rest[start + 2..start + len]));
        rest = &rest[start + len + 2..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    out
}

/// A Go-template action as the HCL2 expression it becomes, when it has one.
fn converted(action: &str, in_default: bool) -> Option<String> {
    let a = action
        .trim()
        .trim_start_matches('-')
        .trim_end_matches('-')
        .trim();
    let arg = |name: &str| -> Option<String> {
        let rest = a.strip_prefix(name)?.trim();
        let quoted = rest
            .strip_prefix('`')
            .and_then(|r| r.strip_suffix('`'))
            .or_else(|| rest.strip_prefix('"').and_then(|r| r.strip_suffix('"')))?;
        Some(quoted.to_string())
    };
    let ident = |s: &str| {
        !s.is_empty()
            && s.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    if let Some(v) = arg("user") {
        return Some(if ident(&v) {
            format!("var.{v}")
        } else {
            format!("var[{}]", quote_literal(&v))
        });
    }
    if let Some(k) = arg("build").filter(|k| ident(k)) {
        return Some(format!("build.{k}"));
    }
    if in_default && let Some(e) = arg("env") {
        return Some(format!("env({})", quote_literal(&e)));
    }
    match a {
        "build_name" => Some("source.name".into()),
        "build_type" => Some("source.type".into()),
        _ => None,
    }
}

/// A JSON string as an HCL2 expression: a bare reference when it is one
/// action that converts, else a quoted template.
fn expression(s: &str, in_default: bool) -> String {
    let pieces = actions(s);
    if let [Piece::Action(a)] = pieces.as_slice()
        && let Some(e) = converted(a, in_default)
    {
        return e;
    }
    // Text is escaped; converted expressions go in as they are.
    let text = |t: &str| {
        let quoted = quote_literal(t);
        quoted[1..quoted.len() - 1].to_string()
    };
    let mut template = String::from("\"");
    for piece in pieces {
        match piece {
            Piece::Text(t) => template.push_str(&text(t)),
            Piece::Action(a) => match converted(a, in_default) {
                Some(e) => {
                    template.push_str("${");
                    template.push_str(&e);
                    template.push('}');
                }
                None => template.push_str(&text(&format!("{{{{{a}}}}}"))),
            },
        }
    }
    template.push('"');
    template
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_become_references() {
        assert_eq!(expression("{{user `v`}}", false), "var.v");
        assert_eq!(
            expression("x-{{ user `v` }}-${y}", false),
            "\"x-${var.v}-$${y}\""
        );
        assert_eq!(expression("{{env `HOME`}}", true), "env(\"HOME\")");
        assert_eq!(expression("{{env `HOME`}}", false), "\"{{env `HOME`}}\"");
        assert_eq!(
            expression("{{ .SourceOMI }}", false),
            "\"{{ .SourceOMI }}\""
        );
        assert_eq!(expression("{{ build `ID` }}", false), "build.ID");
        assert_eq!(
            expression("n-{{build_name}}", false),
            "\"n-${source.name}\""
        );
        assert_eq!(
            expression("h-{{env `HOME`}}", true),
            "\"h-${env(\"HOME\")}\""
        );
        assert_eq!(expression("say \"hi\"", false), "\"say \\\"hi\\\"\"");
    }
}
