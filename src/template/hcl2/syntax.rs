//! The files of an HCL2 template, read into blocks and attributes that know
//! where they are (file, line, column): native syntax (`*.pkr.hcl`) through
//! `hcl-edit`, which keeps spans, and HCL's JSON syntax (`*.pkr.json`),
//! whose strings are templates as in native syntax.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hcl_edit::Span;
use hcl_edit::expr::Expression;
use hcl_edit::structure::{BlockLabel, Structure};
use serde_json::Value;

use crate::template::TemplateError;

/// Where something is: file, line and column (from 1; the column counts
/// characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pos {
    pub file: Arc<PathBuf>,
    pub line: usize,
    pub column: usize,
}

impl Pos {
    /// An error here; `block` and `key` say what it is about.
    pub fn error(
        &self,
        block: Option<String>,
        key: Option<&str>,
        message: impl Into<String>,
    ) -> TemplateError {
        TemplateError {
            file: self.file.as_ref().clone(),
            block,
            build: None,
            key: key.map(String::from),
            line: Some(self.line),
            column: Some(self.column),
            message: message.into(),
        }
    }
}

/// An attribute: `name = expression`.
#[derive(Debug, Clone)]
pub(crate) struct Attr {
    pub name: String,
    pub expr: Expression,
    pub at: Pos,
}

/// A block: `kind "label" … { body }`.
#[derive(Debug, Clone)]
pub(crate) struct Block {
    pub kind: String,
    pub labels: Vec<String>,
    pub body: Body,
    pub at: Pos,
}

impl Block {
    /// How messages name it: `source "osc-bsu" "web"`.
    pub fn describe(&self) -> String {
        let mut s = self.kind.clone();
        for l in &self.labels {
            s.push_str(&format!(" {l:?}"));
        }
        s
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Body {
    pub attributes: Vec<Attr>,
    pub blocks: Vec<Block>,
}

impl Body {
    pub fn attribute(&self, name: &str) -> Option<&Attr> {
        self.attributes.iter().find(|a| a.name == name)
    }

    pub fn blocks<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Block> + 'a {
        self.blocks.iter().filter(move |b| b.kind == kind)
    }
}

/// Byte offsets to lines and columns.
struct Lines<'a> {
    text: &'a str,
    starts: Vec<usize>,
    file: Arc<PathBuf>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str, file: Arc<PathBuf>) -> Lines<'a> {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Lines { text, starts, file }
    }

    fn at(&self, offset: usize) -> Pos {
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts[line - 1];
        let end = offset.min(self.text.len()).max(start);
        let column = self
            .text
            .get(start..end)
            .map_or(1, |s| s.chars().count() + 1);
        Pos {
            file: Arc::clone(&self.file),
            line,
            column,
        }
    }

    fn span(&self, span: Option<Range<usize>>) -> Pos {
        self.at(span.map_or(0, |s| s.start))
    }
}

/// Reads a native-syntax file. (hcl-edit bounds how deep expressions and
/// blocks nest, so no input exhausts the stack.)
pub(crate) fn parse_native(path: &Path, text: &str) -> Result<Body, TemplateError> {
    let file = Arc::new(path.to_path_buf());
    let body = hcl_edit::parser::parse_body(text).map_err(|e| {
        let location = e.location();
        TemplateError {
            line: Some(location.line()),
            column: Some(location.column()),
            ..TemplateError::of_file(path, format!("HCL syntax error: {}", e.message()))
        }
    })?;
    let lines = Lines::new(text, file);
    Ok(convert(&body, &lines))
}

fn convert(body: &hcl_edit::structure::Body, lines: &Lines) -> Body {
    let mut out = Body::default();
    for structure in body.iter() {
        match structure {
            Structure::Attribute(a) => out.attributes.push(Attr {
                name: a.key.as_str().to_string(),
                expr: a.value.clone(),
                at: lines.span(a.span()),
            }),
            Structure::Block(b) => {
                let at = lines.span(b.span());
                out.blocks.push(Block {
                    kind: b.ident.as_str().to_string(),
                    labels: b
                        .labels
                        .iter()
                        .map(|l| match l {
                            BlockLabel::Ident(i) => i.as_str().to_string(),
                            BlockLabel::String(s) => s.as_str().to_string(),
                        })
                        .collect(),
                    body: convert(&b.body, lines),
                    at,
                })
            }
        }
    }
    out
}

/// How many labels each top-level block of a template has, and which
/// nested blocks a block kind has: HCL's JSON syntax cannot tell a nested
/// block from an object attribute without being told.
fn labels_of(kind: &str) -> usize {
    match kind {
        "source" | "data" => 2,
        "variable" | "local" | "provisioner" | "post-processor" => 1,
        // `source` inside `build` has one label, its reference.
        _ => 0,
    }
}

fn nested_blocks(kind: &str) -> &'static [&'static str] {
    match kind {
        "packer" => &["required_plugins"],
        "variable" => &["validation"],
        "build" => &["source", "provisioner", "post-processor", "post-processors"],
        "post-processors" => &["post-processor"],
        "source" => super::builds::SOURCE_BLOCKS,
        _ => &[],
    }
}

/// Reads a JSON-syntax file (`*.pkr.json`, `*.pkrvars.json`): top-level
/// keys are blocks (`{"source": {"osc-bsu": {"web": {…}}}}`), strings are
/// templates. `top_blocks`: whether its top level holds blocks (a template)
/// or attributes (a var file).
pub(crate) fn parse_json(path: &Path, text: &str, top_blocks: bool) -> Result<Body, TemplateError> {
    let file = Arc::new(path.to_path_buf());
    let (value, positions) = crate::template::json::parse(text).map_err(|e| TemplateError {
        file: path.to_path_buf(),
        block: None,
        build: None,
        key: None,
        line: e.position.map(|p| p.0),
        column: e.position.map(|p| p.1),
        message: e.problem.to_string(),
    })?;
    let pos_of = |path: &[crate::template::error::Seg]| {
        let (line, column) = positions.find(path).map_or((1, 1), |p| (p.line, p.column));
        Pos {
            file: Arc::clone(&file),
            line,
            column,
        }
    };
    let Value::Object(root) = value else {
        return Err(pos_of(&[]).error(None, None, "expected a JSON object"));
    };
    let mut json = JsonReader { pos_of: &pos_of };
    if top_blocks {
        let mut body = Body::default();
        for (kind, v) in json.in_order(&root, &[]) {
            let path = vec![crate::template::error::Seg::Key(kind.clone())];
            json.blocks(
                kind,
                v,
                labels_of(kind),
                Vec::new(),
                &path,
                &mut body.blocks,
            )?;
        }
        Ok(body)
    } else {
        json.body("", &root, &[])
    }
}

struct JsonReader<'a, F: Fn(&[crate::template::error::Seg]) -> Pos> {
    pos_of: &'a F,
}

impl<F: Fn(&[crate::template::error::Seg]) -> Pos> JsonReader<'_, F> {
    /// An object's entries in the order the file has them (serde_json's
    /// map sorts them): blocks run in that order.
    fn in_order<'v>(
        &self,
        object: &'v serde_json::Map<String, Value>,
        path: &[crate::template::error::Seg],
    ) -> Vec<(&'v String, &'v Value)> {
        let mut entries: Vec<(&String, &Value)> = object.iter().collect();
        entries.sort_by_key(|(k, _)| {
            let mut p = path.to_vec();
            p.push(crate::template::error::Seg::Key((*k).clone()));
            let at = (self.pos_of)(&p);
            (at.line, at.column)
        });
        entries
    }

    /// The blocks of `kind` under `value`: `labels` more levels of objects
    /// keyed by label, then a body (or an array of bodies).
    fn blocks(
        &mut self,
        kind: &str,
        value: &Value,
        labels: usize,
        have: Vec<String>,
        path: &[crate::template::error::Seg],
        out: &mut Vec<Block>,
    ) -> Result<(), TemplateError> {
        use crate::template::error::Seg;
        let at = (self.pos_of)(path);
        if labels > 0 {
            match value {
                Value::Object(by_label) => {
                    for (label, v) in self.in_order(by_label, path) {
                        let mut p = path.to_vec();
                        p.push(Seg::Key(label.clone()));
                        let mut with = have.clone();
                        with.push(label.clone());
                        self.blocks(kind, v, labels - 1, with, &p, out)?;
                    }
                }
                // `[{"shell": {…}}, {"file": {…}}]`: the way to keep an
                // order across labels.
                Value::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let mut p = path.to_vec();
                        p.push(Seg::Index(i));
                        self.blocks(kind, item, labels, have.clone(), &p, out)?;
                    }
                }
                _ => {
                    return Err(at.error(None, Some(kind), "expected an object keyed by label"));
                }
            }
            return Ok(());
        }
        let bodies: Vec<(Vec<Seg>, &serde_json::Map<String, Value>)> = match value {
            Value::Object(o) => vec![(path.to_vec(), o)],
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let mut p = path.to_vec();
                    p.push(Seg::Index(i));
                    match item {
                        Value::Object(o) => Ok((p, o)),
                        _ => Err((self.pos_of)(&p).error(None, Some(kind), "expected an object")),
                    }
                })
                .collect::<Result<_, _>>()?,
            _ => return Err(at.error(None, Some(kind), "expected an object (a block)")),
        };
        for (p, o) in bodies {
            let at = (self.pos_of)(&p);
            out.push(Block {
                kind: kind.to_string(),
                labels: have.clone(),
                body: self.body(kind, o, &p)?,
                at,
            });
        }
        Ok(())
    }

    fn body(
        &mut self,
        kind: &str,
        object: &serde_json::Map<String, Value>,
        path: &[crate::template::error::Seg],
    ) -> Result<Body, TemplateError> {
        use crate::template::error::Seg;
        let mut body = Body::default();
        let nested = nested_blocks(kind);
        for (key, v) in self.in_order(object, path) {
            let mut p = path.to_vec();
            p.push(Seg::Key(key.clone()));
            let at = (self.pos_of)(&p);
            if nested.contains(&key.as_str()) && (v.is_object() || v.is_array()) {
                let labels = if kind == "build" && key == "source" {
                    1
                } else {
                    labels_of(key)
                };
                self.blocks(key, v, labels, Vec::new(), &p, &mut body.blocks)?;
                continue;
            }
            let expr = json_expression(v)
                .map_err(|e| at.error(None, Some(key), format!("HCL syntax error: {e}")))?;
            body.attributes.push(Attr {
                name: key.clone(),
                expr,
                at,
            });
        }
        Ok(body)
    }
}

/// A JSON value as the HCL expression it stands for: its strings are
/// templates (`"${var.x}"`).
fn json_expression(value: &Value) -> Result<Expression, String> {
    hcl_edit::parser::parse_expr(&json_to_hcl(value)).map_err(|e| e.message().to_string())
}

fn json_to_hcl(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => quote_template(s),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(json_to_hcl).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(o) => format!(
            "{{{}}}",
            o.iter()
                .map(|(k, v)| format!("{} = {}", quote_literal(k), json_to_hcl(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `s`, the text of an HCL template (a JSON string's), quoted: its
/// literal text escaped, its `${…}` and `%{…}` as they are, since their
/// expressions are HCL already (`${format("%s", var.v)}`).
pub(crate) fn quote_template(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        let marker = matches!(c, '$' | '%');
        if marker && chars.peek() == Some(&c) {
            // `$${` and `%%{` stand for literal `${` and `%{`.
            out.push(c);
            out.push(chars.next().unwrap_or(c));
            continue;
        }
        if marker && chars.peek() == Some(&'{') {
            // Copy the interpolation up to its closing brace, with the
            // strings and braces inside it.
            out.push(c);
            let mut depth = 0usize;
            let mut in_string = false;
            while let Some(d) = chars.next() {
                out.push(d);
                match d {
                    '\\' if in_string => {
                        if let Some(e) = chars.next() {
                            out.push(e);
                        }
                    }
                    '"' => in_string = !in_string,
                    '{' if !in_string => depth += 1,
                    '}' if !in_string => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
            }
            continue;
        }
        escape(c, &mut out);
    }
    out.push('"');
    out
}

fn escape(c: char, out: &mut String) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => out.push(c),
    }
}

/// `s` as a quoted HCL string that means exactly `s`: `${` and `%{` are
/// escaped as `$${` and `%%{`.
pub(crate) fn quote_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.replace("${", "$${").replace("%{", "%%{").chars() {
        escape(c, &mut out);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expr(json: &str) -> String {
        let v: Value = serde_json::from_str(json).unwrap();
        json_expression(&v).unwrap().to_string()
    }

    #[test]
    fn json_strings_are_templates() {
        assert_eq!(
            expr(r#""${format(\"g-%s\", var.v)} say \"hi\"""#),
            r#""${format("g-%s", var.v)} say \"hi\"""#
        );
        assert_eq!(expr(r#""$${not} %%{this}""#), r#""$${not} %%{this}""#);
        assert_eq!(expr(r#"{"a": ["x\ny"]}"#), r#"{"a" = ["x\ny"]}"#);
    }

    #[test]
    fn json_blocks_keep_the_files_order() {
        let text = r#"{"build": {"sources": ["source.x.y"],
            "provisioner": [{"shell": {"inline": ["b"]}}, {"file": {"source": "a"}}],
            "post-processor": {"shell-local": [{"inline": ["1"]}, {"inline": ["2"]}]}}}"#;
        let body = parse_json(Path::new("t.pkr.json"), text, true).unwrap();
        let build = &body.blocks[0];
        let kinds: Vec<(String, Vec<String>)> = build
            .body
            .blocks
            .iter()
            .map(|b| (b.kind.clone(), b.labels.clone()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("provisioner".to_string(), vec!["shell".to_string()]),
                ("provisioner".to_string(), vec!["file".to_string()]),
                (
                    "post-processor".to_string(),
                    vec!["shell-local".to_string()]
                ),
                (
                    "post-processor".to_string(),
                    vec!["shell-local".to_string()]
                ),
            ]
        );
    }
}
