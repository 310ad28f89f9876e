//! HCL2 templates (`*.pkr.hcl`, `*.pkr.json`, or a folder of them), as
//! Packer reads them, turned into the document a JSON template is: the
//! variables, locals and data sources are resolved and every expression
//! evaluated here; what is left (builders, provisioners, post-processors,
//! with the position of every key in its file) is loaded, checked and
//! rendered by the same code as JSON templates.

mod builds;
mod eval;
pub mod fmt;
mod functions;
mod syntax;
mod types;
pub mod upgrade;
mod vars;

use std::path::{Path, PathBuf};

use serde_json::Map;
use time::OffsetDateTime;

use super::interpolate::suggest;
use super::json::Positions;
use super::{LoadOptions, TemplateError};
use builds::Document;
use eval::Scope;
use syntax::Block;

/// Whether `path` is an HCL2 template: a folder, or a file named as Packer
/// names them.
pub fn is_hcl2(path: &Path) -> bool {
    let name = path.to_string_lossy();
    path.is_dir() || name.ends_with(".pkr.hcl") || name.ends_with(".pkr.json")
}

/// An HCL2 template, read.
pub(crate) struct Read {
    pub root: serde_json::Value,
    pub positions: Positions,
    /// The values of sensitive variables and locals.
    pub sensitive: Vec<String>,
    /// Where relative paths of scripts and files are read from.
    pub template_dir: PathBuf,
    /// (build, `BUILD.TYPE.NAME`) for the builds of named `build` blocks.
    pub aliases: Vec<(String, String)>,
}

const TOP_BLOCKS: &[&str] = &[
    "packer",
    "variable",
    "variables",
    "locals",
    "local",
    "data",
    "source",
    "build",
];

/// Reads the template at `path` (a file or a folder), with the values the
/// command line and the environment give its variables.
pub(crate) fn read(
    path: &Path,
    options: &LoadOptions,
    environment: &[(String, String)],
    now: OffsetDateTime,
) -> Result<Read, TemplateError> {
    let _load = functions::Load::start(now);
    let whole = |message: String| TemplateError::of_file(path, message);
    let (files, dir) = if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| whole(format!("cannot read the folder: {e}")))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                let name = p.to_string_lossy();
                name.ends_with(".pkr.hcl") || name.ends_with(".pkr.json")
            })
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(whole(
                "the folder holds no template (*.pkr.hcl or *.pkr.json files)".into(),
            ));
        }
        (files, path.to_path_buf())
    } else {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        (vec![path.to_path_buf()], dir)
    };
    // As in Packer, a folder's `*.auto.pkrvars.*` files are read; a
    // template given as a file has none.
    let mut auto_files: Vec<PathBuf> = if path.is_dir() {
        std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| {
                        let name = p.to_string_lossy();
                        name.ends_with(".auto.pkrvars.hcl") || name.ends_with(".auto.pkrvars.json")
                    })
                    .collect()
            })
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    auto_files.sort();

    let mut blocks: Vec<Block> = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file)
            .map_err(|e| TemplateError::of_file(file, format!("cannot read the file: {e}")))?;
        let body = if file.to_string_lossy().ends_with(".json") {
            syntax::parse_json(file, &text, true)?
        } else {
            syntax::parse_native(file, &text)?
        };
        if let Some(a) = body.attributes.first() {
            return Err(a.at.error(
                None,
                Some(&a.name),
                "a template's top level holds blocks (source, build, variable, …), not attributes",
            ));
        }
        for b in body.blocks {
            if !TOP_BLOCKS.contains(&b.kind.as_str()) {
                let hint = match suggest(&b.kind, TOP_BLOCKS.iter().copied()) {
                    Some(s) => format!("; did you mean `{s}`?"),
                    None => format!(" (blocks: {})", TOP_BLOCKS.join(", ")),
                };
                return Err(b
                    .at
                    .error(None, None, format!("unknown block `{}`{hint}", b.kind)));
            }
            blocks.push(b);
        }
    }
    let of = |kinds: &[&str]| -> Vec<&Block> {
        blocks
            .iter()
            .filter(|b| kinds.contains(&b.kind.as_str()))
            .collect()
    };

    // `variables { a = "x" }`, Packer's older spelling: a variable per
    // attribute, its value the default.
    let mut declared: Vec<Block> = of(&["variable"]).into_iter().cloned().collect();
    for block in of(&["variables"]) {
        for a in &block.body.attributes {
            declared.push(Block {
                kind: "variable".into(),
                labels: vec![a.name.clone()],
                body: syntax::Body {
                    attributes: vec![syntax::Attr {
                        name: "default".into(),
                        ..a.clone()
                    }],
                    blocks: Vec::new(),
                },
                at: a.at.clone(),
            });
        }
    }
    let declared: Vec<&Block> = declared.iter().collect();
    let variables = vars::resolve(
        &declared,
        &vars::Given {
            options,
            auto_files: &auto_files,
            environment,
            template: path,
        },
    )?;
    let mut sensitive = variables.sensitive;

    let mut scope = Scope::new(false);
    scope.sensitive = sensitive.clone();
    scope.object("var", variables.values);
    let mut root_dir = hcl::Map::new();
    root_dir.insert(
        "root".into(),
        hcl::Value::from(dir.to_string_lossy().into_owned()),
    );
    root_dir.insert(
        "cwd".into(),
        hcl::Value::from(
            std::env::current_dir()
                .map(|d| d.to_string_lossy().into_owned())
                .unwrap_or_default(),
        ),
    );
    scope.object("path", root_dir);
    let mut packer = hcl::Map::new();
    packer.insert("version".into(), hcl::Value::from(builds::PACKER_VERSION));
    scope.object("packer", packer);

    for block in of(&["packer"]) {
        builds::packer_block(block, &scope)?;
    }
    let data = of(&["data"])
        .into_iter()
        .map(|b| builds::data_block(b, &scope))
        .collect::<Result<Vec<_>, _>>()?;
    for (i, d) in data.iter().enumerate() {
        if let Some(other) = data[..i].iter().find(|o| o.name == d.name) {
            return Err(d.at.error(
                None,
                None,
                format!(
                    "data.outscale-omi.{} is declared twice (first at line {})",
                    d.name, other.at.line
                ),
            ));
        }
    }
    scope.value("data", builds::data_values(&data));
    let locals = vars::locals(&of(&["locals", "local"]))?;
    vars::evaluate_locals(&locals, &mut scope, &mut sensitive)?;
    scope.sensitive = sensitive.clone();

    let sources = of(&["source"])
        .into_iter()
        .map(builds::source_block)
        .collect::<Result<Vec<_>, _>>()?;
    for (i, s) in sources.iter().enumerate() {
        if let Some(other) = sources[..i]
            .iter()
            .find(|o| o.kind == s.kind && o.name == s.name)
        {
            return Err(s.block.at.error(
                Some(s.block.describe()),
                None,
                format!("declared twice (first at line {})", other.block.at.line),
            ));
        }
    }
    let build_blocks = of(&["build"]);
    if build_blocks.is_empty() {
        return Err(whole(
            "the template has no build block: add `build { sources = [\"source.outscale-bsu.NAME\"] }`"
                .into(),
        ));
    }
    let mut doc = Document {
        root: Map::new(),
        positions: Positions::default(),
        aliases: Vec::new(),
    };
    builds::builds(&build_blocks, &sources, &data, &mut scope, &mut doc)?;
    let template_dir = std::path::absolute(&dir).map_err(|e| whole(e.to_string()))?;
    Ok(Read {
        root: serde_json::Value::Object(doc.root),
        positions: doc.positions,
        sensitive,
        template_dir,
        aliases: doc.aliases,
    })
}
