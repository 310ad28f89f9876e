//! The blocks that make builds — `packer`, `data`, `source` and `build` —
//! read into the document a JSON template would be (`builders`,
//! `provisioners`, `post-processors`), with the position of every key, so
//! everything after this point is shared with JSON templates.

use serde_json::{Map, Value as Json, json};

use super::eval::{Scope, to_json};
use super::syntax::{Attr, Block, Body, Pos};
use super::vars::check_keys;
use crate::template::TemplateError;
use crate::template::error::Seg;
use crate::template::interpolate::suggest;
use crate::template::json::{Position, Positions};

/// Blocks a source's body may hold, as HCL2 spells what JSON writes as
/// objects and arrays of objects.
pub(crate) const SOURCE_BLOCKS: &[&str] = &[
    "launch_block_device_mappings",
    "omi_block_device_mappings",
    "source_omi_filter",
    "net_filter",
    "subnet_filter",
    "security_group_filter",
    "filter",
];

/// Of those, the ones that may repeat: they become arrays.
pub(crate) const ARRAY_BLOCKS: &[&str] = &[
    "launch_block_device_mappings",
    "omi_block_device_mappings",
    "bsu_volumes",
    "ebs_volumes",
    "filter",
];

/// The Packer release whose template language osci follows:
/// `packer.version`, and what `required_version` is checked against.
pub(crate) const PACKER_VERSION: &str = "1.11.2";

/// Where the OUTSCALE plugin comes from, as `required_plugins` names it.
const PLUGIN_SOURCE: &str = "github.com/outscale/outscale";

/// The values of a build known only when it runs, as the provisioners'
/// `{{ build `Key` }}` stands for them.
const BUILD_KEYS: &[&str] = &[
    "ID",
    "Host",
    "Port",
    "User",
    "ConnType",
    "SourceOMI",
    "SourceOMIName",
    "BuildRegion",
    "ArtifactId",
];

/// The document being written, and where each of its keys came from.
pub(crate) struct Document {
    pub root: Map<String, Json>,
    pub positions: Positions,
    /// (build, `BUILD.TYPE.NAME`) for the builds of named `build` blocks.
    pub aliases: Vec<(String, String)>,
}

impl Document {
    fn at(&mut self, path: &[Seg], pos: &Pos) {
        self.positions.insert(
            path.to_vec(),
            Position {
                line: pos.line,
                column: pos.column,
                file: Some(pos.file.clone()),
            },
        );
    }
}

/// Checks the `packer` block: `required_version` against the Packer release
/// osci follows, `required_plugins` naming only the OUTSCALE plugin.
pub(crate) fn packer_block(block: &Block, scope: &Scope) -> Result<(), TemplateError> {
    let describe = "packer";
    check_keys(
        &block.body,
        &["required_version"],
        &["required_plugins"],
        describe,
    )?;
    if let Some(a) = block.body.attribute("required_version") {
        let constraint = string(a, scope, describe)?;
        if !version_matches(&constraint, PACKER_VERSION)
            .map_err(|e| a.at.error(Some(describe.into()), Some(&a.name), e))?
        {
            return Err(a.at.error(
                Some(describe.into()),
                Some(&a.name),
                format!(
                    "osci follows the template language of Packer {PACKER_VERSION}, which does \
                     not meet {constraint:?}"
                ),
            ));
        }
    }
    for plugins in block.body.blocks("required_plugins") {
        check_keys(
            &Body {
                attributes: Vec::new(),
                ..plugins.body.clone()
            },
            &[],
            &[],
            "required_plugins",
        )?;
        for a in &plugins.body.attributes {
            let value = scope.attr(a).map_err(|e| {
                a.at.error(Some("required_plugins".into()), Some(&a.name), e)
            })?;
            let source = match &value {
                hcl::Value::Object(o) => o.get("source").and_then(|s| s.as_str()).map(String::from),
                _ => None,
            };
            let source = source.unwrap_or_default();
            let ours = source.trim_end_matches('/') == PLUGIN_SOURCE
                || (source.is_empty() && a.name == "outscale");
            if !ours {
                return Err(a.at.error(
                    Some("required_plugins".into()),
                    Some(&a.name),
                    format!(
                        "osci carries out the OUTSCALE plugin ({PLUGIN_SOURCE}) and no other: \
                         `{}`{} cannot be provided; remove it",
                        a.name,
                        if source.is_empty() {
                            String::new()
                        } else {
                            format!(" ({source})")
                        }
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Whether `version` meets `constraint` (`>= 1.7.0, < 2`, `~> 1.9`).
fn version_matches(constraint: &str, version: &str) -> Result<bool, String> {
    let parse = |v: &str| -> Result<Vec<u64>, String> {
        v.trim()
            .trim_start_matches('v')
            .split('.')
            .map(|p| {
                p.parse::<u64>()
                    .map_err(|_| format!("{v:?} is not a version"))
            })
            .collect()
    };
    let have = parse(version)?;
    let cmp = |want: &[u64]| -> std::cmp::Ordering {
        for i in 0..want.len().max(have.len()) {
            let (a, b) = (have.get(i).unwrap_or(&0), want.get(i).unwrap_or(&0));
            if a != b {
                return a.cmp(b);
            }
        }
        std::cmp::Ordering::Equal
    };
    for part in constraint.split(',') {
        let part = part.trim();
        let (op, v) = ["~>", ">=", "<=", "!=", ">", "<", "="]
            .iter()
            .find_map(|op| part.strip_prefix(op).map(|v| (*op, v)))
            .unwrap_or(("=", part));
        let want = parse(v)?;
        use std::cmp::Ordering::*;
        let ok = match op {
            ">=" => cmp(&want) != Less,
            "<=" => cmp(&want) != Greater,
            ">" => cmp(&want) == Greater,
            "<" => cmp(&want) == Less,
            "!=" => cmp(&want) != Equal,
            "~>" => {
                let fixed = want.len().saturating_sub(1).max(1);
                cmp(&want) != Less && have.get(..fixed) == want.get(..fixed)
            }
            _ => cmp(&want) == Equal,
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// A data source: `data "outscale-omi" "name"`, resolved at plan time.
pub(crate) struct Data {
    pub name: String,
    /// Its filters, owners and most_recent, as a `source_omi_filter`.
    pub filter: Json,
    pub at: Pos,
}

const OMI_DATA_KEYS: &[&str] = &[
    "filters",
    "owners",
    "most_recent",
    // The access keys, which the plugin ignores (behaviour §4): the
    // build's access reads the OMI.
    "access_key",
    "secret_key",
    "region",
    "profile",
    "custom_endpoint_oapi",
    "insecure_skip_tls_verify",
    "x509_cert_path",
    "x509_key_path",
    "skip_region_validation",
];

/// Reads a `data` block: only `outscale-omi` exists.
pub(crate) fn data_block(block: &Block, scope: &Scope) -> Result<Data, TemplateError> {
    let describe = block.describe();
    let [kind, name] = block.labels.as_slice() else {
        return Err(block.at.error(
            Some(describe),
            None,
            "a data block has two labels: its type and its name",
        ));
    };
    if kind != "outscale-omi" {
        return Err(block.at.error(
            Some(describe),
            None,
            format!("unknown data source type `{kind}`: osci has `outscale-omi`"),
        ));
    }
    check_keys(&block.body, OMI_DATA_KEYS, &["filter"], &describe)?;
    let mut filter = body_object(&block.body, scope, &describe, &mut None, &[])?;
    for key in OMI_DATA_KEYS.iter().skip(3) {
        filter.remove(*key);
    }
    if filter
        .get("owners")
        .is_none_or(|o| o.as_array().is_none_or(|a| a.is_empty()))
    {
        return Err(block.at.error(
            Some(describe),
            Some("owners"),
            "required: owners, the accounts (ids or aliases) whose OMIs may be chosen",
        ));
    }
    Ok(Data {
        name: name.clone(),
        filter: Json::Object(filter),
        at: block.at.clone(),
    })
}

/// Marks what a data source answers only at plan time.
fn data_marker(name: &str, attr: &str) -> String {
    format!("\u{1}data.outscale-omi.{name}.{attr}\u{1}")
}

/// `data.outscale-omi.NAME.*`, as markers the document replaces.
pub(crate) fn data_values(data: &[Data]) -> hcl::Value {
    let mut by_name = hcl::Map::new();
    for d in data {
        let attrs: hcl::Map<String, hcl::Value> = [
            "id",
            "name",
            "creation_date",
            "owner",
            "owner_name",
            "root_device_name",
            "tags",
        ]
        .iter()
        .map(|a| (a.to_string(), hcl::Value::from(data_marker(&d.name, a))))
        .collect();
        by_name.insert(d.name.clone(), hcl::Value::Object(attrs));
    }
    let mut kinds = hcl::Map::new();
    kinds.insert("outscale-omi".to_string(), hcl::Value::Object(by_name));
    hcl::Value::Object(kinds)
}

/// A source, as declared at the top level.
pub(crate) struct Source<'a> {
    pub kind: String,
    pub name: String,
    pub block: &'a Block,
}

pub(crate) fn source_block(block: &Block) -> Result<Source<'_>, TemplateError> {
    let describe = block.describe();
    let [kind, name] = block.labels.as_slice() else {
        return Err(block.at.error(
            Some(describe),
            None,
            "a source block has two labels: its builder type and its name",
        ));
    };
    if !crate::template::builder_types().any(|t| t == kind) {
        let known: Vec<&str> = crate::template::builder_types().collect();
        let hint = match suggest(kind, known.iter().copied()) {
            Some(s) => format!("; did you mean `{s}`?"),
            None => format!(" (osci has {})", known.join(", ")),
        };
        return Err(block.at.error(
            Some(describe),
            None,
            format!("unknown builder type `{kind}`{hint}"),
        ));
    }
    Ok(Source {
        kind: kind.clone(),
        name: name.clone(),
        block,
    })
}

/// One build: a source of a `build` block, with its overrides.
struct Planned<'a> {
    name: String,
    source: &'a Source<'a>,
    overrides: Option<&'a Block>,
    build: &'a Block,
}

/// Reads the `build` blocks into the document's builders, provisioners and
/// post-processors. `scope` offers `var`, `local`, `path`, `packer` and
/// `data`; each build adds `source` and `build`.
pub(crate) fn builds(
    build_blocks: &[&Block],
    sources: &[Source],
    data: &[Data],
    scope: &mut Scope,
    doc: &mut Document,
) -> Result<(), TemplateError> {
    let mut planned: Vec<Planned> = Vec::new();
    for build in build_blocks {
        let describe = "build".to_string();
        check_keys(
            &build.body,
            &["name", "description", "sources"],
            &["source", "provisioner", "post-processor", "post-processors"],
            &describe,
        )?;
        let mut refs: Vec<(String, Pos, Option<&Block>)> = Vec::new();
        if let Some(a) = build.body.attribute("sources") {
            match scope.attr(a) {
                Ok(hcl::Value::Array(items)) => {
                    for item in items {
                        match item {
                            hcl::Value::String(s) => refs.push((s, a.at.clone(), None)),
                            other => {
                                return Err(a.at.error(
                                    Some(describe),
                                    Some("sources"),
                                    format!("expected source references such as \"source.outscale-bsu.web\", not {other}"),
                                ));
                            }
                        }
                    }
                }
                Ok(other) => {
                    return Err(a.at.error(
                        Some(describe),
                        Some("sources"),
                        format!("expected a list of source references, not {other}"),
                    ));
                }
                Err(e) => {
                    // `sources = [source.outscale-bsu.web]`, unquoted, as
                    // Packer allows: read the references as written.
                    refs.extend(
                        unquoted_sources(&a.expr)
                            .ok_or_else(|| a.at.error(Some(describe.clone()), Some("sources"), e))?
                            .into_iter()
                            .map(|r| (r, a.at.clone(), None)),
                    );
                }
            }
        }
        for nested in build.body.blocks("source") {
            let Some(r) = nested.labels.first() else {
                return Err(nested.at.error(
                    Some("build source".into()),
                    None,
                    "a source block in a build has one label: the source it uses, e.g. \"source.outscale-bsu.web\"",
                ));
            };
            refs.push((r.clone(), nested.at.clone(), Some(nested)));
        }
        if refs.is_empty() {
            return Err(build.at.error(
                Some(describe),
                Some("sources"),
                "a build names the sources it builds, e.g. sources = [\"source.outscale-bsu.web\"]",
            ));
        }
        for (r, at, overrides) in refs {
            let wanted = r.strip_prefix("source.").unwrap_or(&r);
            let Some(source) = sources
                .iter()
                .find(|s| format!("{}.{}", s.kind, s.name) == wanted)
            else {
                let known: Vec<String> = sources
                    .iter()
                    .map(|s| format!("source.{}.{}", s.kind, s.name))
                    .collect();
                let hint = match suggest(&r, known.iter().map(String::as_str)) {
                    Some(s) => format!("; did you mean `{s}`?"),
                    None if known.is_empty() => "; no source block is declared".into(),
                    None => format!(" (sources: {})", known.join(", ")),
                };
                return Err(at.error(
                    Some("build".into()),
                    Some("sources"),
                    format!("no source `{r}` is declared{hint}"),
                ));
            };
            let name = match overrides.and_then(|o| o.body.attribute("name")) {
                Some(a) => string(a, scope, "build source")?,
                None => source.name.clone(),
            };
            if let Some(other) = planned.iter().find(|p| p.name == name) {
                return Err(at.error(
                    Some("build".into()),
                    None,
                    format!(
                        "two builds are named {name:?} ({} at {}:{}): give one another name with \
                         a `source` block in the build and its `name`",
                        other.source.block.describe(),
                        other.build.at.file.display(),
                        other.build.at.line
                    ),
                ));
            }
            if let Some(a) = build.body.attribute("name") {
                let block_name = string(a, scope, "build")?;
                doc.aliases.push((
                    name.clone(),
                    format!("{block_name}.{}.{}", source.kind, source.name),
                ));
            }
            planned.push(Planned {
                name,
                source,
                overrides,
                build,
            });
        }
    }

    let mut builders = Vec::new();
    let mut provisioners = Vec::new();
    let mut post_processors = Vec::new();
    let names: Vec<String> = planned.iter().map(|p| p.name.clone()).collect();
    for (i, p) in planned.iter().enumerate() {
        let mut source_values = hcl::Map::new();
        source_values.insert("name".into(), hcl::Value::from(p.name.as_str()));
        source_values.insert("type".into(), hcl::Value::from(p.source.kind.as_str()));
        scope.object("source", source_values);
        scope.roots.retain(|(r, _)| *r != "build");

        let path = vec![Seg::Key("builders".into()), Seg::Index(i)];
        doc.at(&path, &p.source.block.at);
        let describe = p.source.block.describe();
        let mut positions = Some(&mut *doc);
        let mut config = body_object(
            &p.source.block.body,
            scope,
            &describe,
            &mut positions,
            &path,
        )?;
        if let Some(o) = p.overrides {
            let body = Body {
                attributes: o
                    .body
                    .attributes
                    .iter()
                    .filter(|a| a.name != "name")
                    .cloned()
                    .collect(),
                ..o.body.clone()
            };
            let over = body_object(&body, scope, "build source", &mut positions, &path)?;
            config.extend(over);
        }
        resolve_data(&mut config, data, &p.source.block.at, &describe)?;
        let mut entry = Map::new();
        entry.insert("type".into(), json!(p.source.kind));
        entry.insert("name".into(), json!(p.name));
        entry.extend(config);
        builders.push(Json::Object(entry));

        let mut build_values = hcl::Map::new();
        for key in BUILD_KEYS {
            build_values.insert(
                key.to_string(),
                hcl::Value::from(format!("{{{{ build `{key}` }}}}")),
            );
        }
        build_values.insert("name".into(), hcl::Value::from(p.name.as_str()));
        scope.object("build", build_values);

        for block in &p.build.body.blocks {
            match block.kind.as_str() {
                "provisioner" => {
                    if let Some(item) = step(
                        block,
                        p,
                        &names,
                        scope,
                        doc,
                        "provisioners",
                        provisioners.len(),
                    )? {
                        provisioners.push(item);
                    }
                }
                "post-processor" | "post-processors" => {
                    // A `post-processors` block is a chain of them.
                    let chain: Vec<&Block> = if block.kind == "post-processor" {
                        vec![block]
                    } else {
                        check_keys(
                            &Body {
                                attributes: Vec::new(),
                                ..block.body.clone()
                            },
                            &[],
                            &["post-processor"],
                            "post-processors",
                        )?;
                        block.body.blocks("post-processor").collect()
                    };
                    for link in chain {
                        let at = post_processors.len();
                        if let Some(item) =
                            step(link, p, &names, scope, doc, "post-processors", at)?
                        {
                            post_processors.push(item);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    scope.roots.retain(|(r, _)| *r != "source" && *r != "build");
    doc.root.insert("builders".into(), Json::Array(builders));
    if !provisioners.is_empty() {
        doc.root
            .insert("provisioners".into(), Json::Array(provisioners));
    }
    if !post_processors.is_empty() {
        doc.root
            .insert("post-processors".into(), Json::Array(post_processors));
    }
    Ok(())
}

/// A provisioner or post-processor block for one build, as the JSON
/// section's item (`None` when its `only`/`except` leave the build out).
fn step(
    block: &Block,
    p: &Planned,
    names: &[String],
    scope: &Scope,
    doc: &mut Document,
    section: &str,
    index: usize,
) -> Result<Option<Json>, TemplateError> {
    let describe = block.describe();
    let [kind] = block.labels.as_slice() else {
        return Err(block.at.error(
            Some(describe),
            None,
            format!("a {} block has one label, its type", block.kind),
        ));
    };
    let applies = |key: &str| -> Result<Option<Vec<String>>, TemplateError> {
        let Some(a) = block.body.attribute(key) else {
            return Ok(None);
        };
        let refs = match scope.attr(a) {
            Ok(hcl::Value::Array(items)) => items
                .into_iter()
                .map(|v| v.as_str().map(String::from))
                .collect::<Option<Vec<String>>>(),
            _ => None,
        }
        .ok_or_else(|| {
            a.at.error(
                Some(describe.clone()),
                Some(key),
                "expected a list of source names such as \"outscale-bsu.web\"",
            )
        })?;
        for r in &refs {
            if !names.iter().any(|n| source_matches(r, n, p.source)) && !known_source(r, names) {
                return Err(a.at.error(
                    Some(describe.clone()),
                    Some(key),
                    format!("no build is named `{r}` (builds: {})", names.join(", ")),
                ));
            }
        }
        Ok(Some(refs))
    };
    let only = applies("only")?;
    let except = applies("except")?.unwrap_or_default();
    let mine = |r: &String| source_matches(r, &p.name, p.source);
    if only.as_ref().is_some_and(|o| !o.iter().any(mine)) || except.iter().any(mine) {
        return Ok(None);
    }
    let path = vec![Seg::Key(section.into()), Seg::Index(index)];
    doc.at(&path, &block.at);
    let body = Body {
        attributes: block
            .body
            .attributes
            .iter()
            .filter(|a| !matches!(a.name.as_str(), "only" | "except" | "override" | "name"))
            .cloned()
            .collect(),
        ..block.body.clone()
    };
    let mut positions = Some(&mut *doc);
    let mut config = body_object(&body, scope, &describe, &mut positions, &path)?;
    if let Some(a) = block.body.attribute("override") {
        let overrides = scope
            .attr(a)
            .map_err(|e| a.at.error(Some(describe.clone()), Some("override"), e))?;
        if let hcl::Value::Object(o) = overrides {
            for (r, v) in o {
                if source_matches(&r, &p.name, p.source)
                    && let Json::Object(over) = to_json(&v)
                {
                    config.extend(over);
                }
            }
        }
    }
    if let Some(marker) = find_marker(&Json::Object(config.clone())) {
        return Err(block.at.error(
            Some(describe),
            None,
            format!("{marker} is read at plan time; osci uses an outscale-omi data source as a build's source_omi"),
        ));
    }
    let mut item = Map::new();
    item.insert("type".into(), json!(kind));
    item.insert("only".into(), json!([p.name]));
    item.extend(config);
    Ok(Some(Json::Object(item)))
}

/// Whether a provisioner's `only`/`except` entry names this build: its
/// name, `TYPE.NAME` or `source.TYPE.NAME`.
fn source_matches(r: &str, build: &str, source: &Source) -> bool {
    let r = r.strip_prefix("source.").unwrap_or(r);
    r == build
        || r == format!("{}.{}", source.kind, source.name)
        || r == format!("{}.{build}", source.kind)
}

fn known_source(r: &str, names: &[String]) -> bool {
    let r = r.strip_prefix("source.").unwrap_or(r);
    names
        .iter()
        .any(|n| r.rsplit_once('.').is_some_and(|(_, name)| name == n))
}

/// `[source.outscale-bsu.web]`: the references, written unquoted.
fn unquoted_sources(expr: &hcl_edit::expr::Expression) -> Option<Vec<String>> {
    let hcl_edit::expr::Expression::Array(items) = expr else {
        return None;
    };
    items
        .iter()
        .map(|item| {
            let text = item.to_string();
            let text = text.trim();
            text.starts_with("source.").then(|| text.to_string())
        })
        .collect()
}

/// A body as a JSON object: attributes evaluated, nested blocks as objects
/// (or arrays of objects, for those that repeat). Records positions under
/// `path` when `doc` is given.
fn body_object(
    body: &Body,
    scope: &Scope,
    describe: &str,
    doc: &mut Option<&mut Document>,
    path: &[Seg],
) -> Result<Map<String, Json>, TemplateError> {
    let mut out = Map::new();
    for a in &body.attributes {
        let v = scope
            .attr(a)
            .map_err(|e| a.at.error(Some(describe.to_string()), Some(&a.name), e))?;
        if out.contains_key(&a.name) {
            return Err(a
                .at
                .error(Some(describe.to_string()), Some(&a.name), "given twice"));
        }
        let mut p = path.to_vec();
        p.push(Seg::Key(a.name.clone()));
        if let Some(doc) = doc.as_deref_mut() {
            doc.at(&p, &a.at);
        }
        out.insert(a.name.clone(), to_json(&v));
    }
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for b in &body.blocks {
        let n = match counts.iter_mut().find(|(k, _)| *k == b.kind) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                counts.push((&b.kind, 0));
                0
            }
        };
        let array = ARRAY_BLOCKS.contains(&b.kind.as_str());
        if n > 0 && !array {
            return Err(b.at.error(
                Some(describe.to_string()),
                Some(&b.kind),
                format!("only one `{}` block is allowed", b.kind),
            ));
        }
        if !b.labels.is_empty() {
            return Err(b.at.error(
                Some(describe.to_string()),
                Some(&b.kind),
                format!("a `{}` block has no labels", b.kind),
            ));
        }
        let mut p = path.to_vec();
        p.push(Seg::Key(b.kind.clone()));
        if array {
            p.push(Seg::Index(n));
        }
        if let Some(doc) = doc.as_deref_mut() {
            doc.at(&p, &b.at);
        }
        let inner = body_object(&b.body, scope, describe, doc, &p)?;
        if array {
            let list = out
                .entry(b.kind.clone())
                .or_insert_with(|| Json::Array(Vec::new()));
            match list {
                Json::Array(items) => items.push(Json::Object(inner)),
                _ => {
                    return Err(b.at.error(
                        Some(describe.to_string()),
                        Some(&b.kind),
                        "given both as an attribute and as blocks",
                    ));
                }
            }
        } else {
            if out.contains_key(&b.kind) {
                return Err(b.at.error(
                    Some(describe.to_string()),
                    Some(&b.kind),
                    "given both as an attribute and as a block",
                ));
            }
            out.insert(b.kind.clone(), Json::Object(inner));
        }
    }
    Ok(out)
}

/// A source whose `source_omi` is a data source's id takes the data
/// source's filters as its `source_omi_filter`, read at plan time as the
/// data source would be; any other use of a data source is refused. `at`
/// is the source block, `describe` how messages name it.
fn resolve_data(
    config: &mut Map<String, Json>,
    data: &[Data],
    at: &Pos,
    describe: &str,
) -> Result<(), TemplateError> {
    if let Some(Json::String(id)) = config.get("source_omi")
        && let Some(d) = data.iter().find(|d| *id == data_marker(&d.name, "id"))
    {
        if config.contains_key("source_omi_filter") {
            return Err(at.error(
                Some(describe.to_string()),
                Some("source_omi"),
                format!(
                    "source_omi comes from data.outscale-omi.{} and source_omi_filter is given \
                     too: keep one",
                    d.name
                ),
            ));
        }
        config.remove("source_omi");
        config.insert("source_omi_filter".into(), d.filter.clone());
        // Its outputs elsewhere in the build are the source's: build
        // variables, rendered once the plan has read it.
        let name = d.name.clone();
        outputs_as_build_vars(config, &name);
    }
    if let Some(marker) = find_marker(&Json::Object(config.clone())) {
        return Err(at.error(
            Some(describe.to_string()),
            None,
            format!(
                "{marker} is read at plan time; osci uses an outscale-omi data source as a \
                 build's source_omi (`source_omi = data.outscale-omi.NAME.id`)"
            ),
        ));
    }
    Ok(())
}

/// Replaces the references to the outputs of data source `name` in the
/// strings of `config` with the build variables that hold them.
fn outputs_as_build_vars(config: &mut Map<String, Json>, name: &str) {
    fn walk(value: &mut Json, name: &str) {
        match value {
            Json::String(s) => {
                for (attr, var) in [
                    ("id", "{{ .SourceOMI }}"),
                    ("name", "{{ .SourceOMIName }}"),
                    ("creation_date", "{{ .SourceOMIInfo.creation_date }}"),
                    ("owner", "{{ .SourceOMIInfo.owner }}"),
                    ("owner_name", "{{ .SourceOMIInfo.owner_name }}"),
                    ("root_device_name", "{{ .SourceOMIInfo.root_device_name }}"),
                ] {
                    *s = s.replace(&data_marker(name, attr), var);
                }
            }
            Json::Array(items) => items.iter_mut().for_each(|i| walk(i, name)),
            Json::Object(o) => o.values_mut().for_each(|v| walk(v, name)),
            _ => {}
        }
    }
    for value in config.values_mut() {
        walk(value, name);
    }
}

/// The first data-source reference left in `value`, as written.
fn find_marker(value: &Json) -> Option<String> {
    match value {
        Json::String(s) => s.split('\u{1}').nth(1).map(String::from),
        Json::Array(items) => items.iter().find_map(find_marker),
        Json::Object(o) => o.values().find_map(find_marker),
        _ => None,
    }
}

fn string(a: &Attr, scope: &Scope, describe: &str) -> Result<String, TemplateError> {
    match scope.attr(a) {
        Ok(hcl::Value::String(s)) => Ok(s),
        Ok(other) => Err(a.at.error(
            Some(describe.to_string()),
            Some(&a.name),
            format!("expected a string, not {other}"),
        )),
        Err(e) => Err(a.at.error(Some(describe.to_string()), Some(&a.name), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_constraints() {
        for (c, ok) in [
            (">= 1.7.0", true),
            (">= 1.7.0, < 2.0.0", true),
            ("~> 1.9", true),
            ("~> 1.9.0", false),
            ("~> 1.11.0", true),
            ("< 1.10", false),
            ("1.11.2", true),
            ("!= 1.11.2", false),
        ] {
            assert_eq!(version_matches(c, "1.11.2").unwrap(), ok, "{c}");
        }
        assert!(version_matches(">= one", "1.11.2").is_err());
    }
}
