//! Packer templates: loading, variables, interpolation, validation.
//!
//! osci reads the OUTSCALE Packer plugin's templates as they are (design
//! §2): JSON templates (`{"variables": {…}, "builders": […],
//! "provisioners": […]}`) and HCL2 ones ([`hcl2`], which reads into the
//! same document). [`load`] checks everything that can be checked without
//! the cloud and renders everything that is known at load time, so that a
//! template that loads is one a plan can be made from.

// A template is loaded once per command, so the size of its error (which
// carries file, build, key, line and column) costs nothing worth boxing for.
#![allow(clippy::result_large_err)]

mod bsu;
mod bsuvolume;
mod chroot;
pub mod config;
mod error;
mod fields;
mod glob;
pub mod hcl2;
mod interpolate;
mod isotime;
mod json;
mod post_processors;
mod provisioners;
mod surrogate;
mod variables;
pub(crate) mod weak;

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use time::OffsetDateTime;

pub use bsu::{BsuConfig, BsuOptions};
pub use bsuvolume::{BsuVolume, VolumeConfig};
pub use chroot::{ChrootConfig, ChrootOptions, DEFAULT_MOUNT_PATH};
pub use config::{
    AccessConfig, BlockDevice, BlockDevices, CommConfig, NetFilter, OmiConfig, OmiFilter,
    RunConfig, SecurityGroupFilter, SubnetFilter, UserData, parse_go_duration,
};
pub use error::TemplateError;
pub use glob::wildcard;
pub use interpolate::{BuildVars, render_build_vars, render_provisioner};
pub use surrogate::{OmiRootDevice, SurrogateConfig};

use crate::secret::Secret;
use error::{KeyPath, Problem, Site};
use interpolate::{HOST_FIELDS, LATE_FIELDS, Late, LoadScope, Scope, render, suggest};

/// Values from the command line: `-var K=V` (already split) and `-var-file
/// F` (JSON objects of names to values). Later ones win; `-var` beats
/// `-var-file`, which beats the template's defaults.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub vars: Vec<(String, String)>,
    pub var_files: Vec<PathBuf>,
    /// The order `-var` and `-var-file` were given in, which HCL2
    /// templates follow (the later wins, as in Packer); empty: the files,
    /// then the flags.
    pub order: Vec<Given>,
}

/// One `-var` (the index of its pair in [`LoadOptions::vars`]) or
/// `-var-file` (of its path in [`LoadOptions::var_files`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Given {
    Var(usize),
    File(usize),
}

/// A loaded template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub path: PathBuf,
    pub builds: Vec<Build>,
    /// The values of the variables listed in `sensitive-variables`, to be
    /// masked wherever osci prints or records provisioner options or output.
    pub sensitive_values: Vec<Secret>,
    /// Builds of the template left out by `-only` or `-except`: what they
    /// made stays as it is.
    pub unselected: Vec<Build>,
    /// The `-only` and `-except` patterns, when the command gave any.
    pub selection: Option<(Vec<String>, Vec<String>)>,
    /// What Packer warns of at prepare time (an Amazon name, an option
    /// unused in this mode): shown, never fatal.
    pub warnings: Vec<String>,
}

impl Template {
    /// Keeps the builds `only` names (all when empty) and `except` does
    /// not, by name or glob, or as Packer names them: `TYPE.NAME`
    /// (`outscale-bsu.web`) and, for a build of a named HCL2 `build` block,
    /// `BUILD.TYPE.NAME`. A selection may keep none of the template's builds
    /// (to remove what a build gone from it left); [`Template::touches`]
    /// says what it is about.
    pub fn select(&mut self, only: &[String], except: &[String]) {
        if only.is_empty() && except.is_empty() {
            return;
        }
        let named = |patterns: &[String], b: &Build| {
            let typed = format!("{}.{}", b.builder_type, b.name);
            patterns.iter().any(|p| {
                wildcard(p, &b.name)
                    || wildcard(p, &typed)
                    || b.aliases.iter().any(|a| wildcard(p, a))
            })
        };
        let (kept, left): (Vec<Build>, Vec<Build>) = std::mem::take(&mut self.builds)
            .into_iter()
            .partition(|b| (only.is_empty() || named(only, b)) && !named(except, b));
        self.unselected.extend(left);
        self.builds = kept;
        self.selection = Some((only.to_vec(), except.to_vec()));
    }

    /// Why a selection that touches none of `builds` (those the state
    /// holds) is refused: most likely a misspelt name.
    pub fn refuse_empty_selection<'a>(
        &self,
        mut builds: impl Iterator<Item = &'a str>,
    ) -> Result<(), String> {
        let Some((only, except)) = &self.selection else {
            return Ok(());
        };
        if !self.builds.is_empty() || builds.any(|b| self.touches(b)) {
            return Ok(());
        }
        let names: Vec<&str> = self.unselected.iter().map(|b| b.name.as_str()).collect();
        Err(format!(
            "{}: -only {only:?} and -except {except:?} select no build; its builds are {}",
            self.path.display(),
            names.join(", ")
        ))
    }

    /// Whether the command is about the state entries of `build`: a build
    /// of the template it selected, or one gone from the template that no
    /// selection leaves out (by its name: the state knows no more of it).
    pub fn touches(&self, build: &str) -> bool {
        if self.builds.iter().any(|b| b.name == build) {
            return true;
        }
        if self.unselected.iter().any(|b| b.name == build) {
            return false;
        }
        match &self.selection {
            None => true,
            Some((only, except)) => {
                (only.is_empty() || only.iter().any(|p| wildcard(p, build)))
                    && !except.iter().any(|p| wildcard(p, build))
            }
        }
    }
}

/// A build's options, as its builder type reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuilderConfig {
    Bsu(Box<BsuConfig>),
    Chroot(Box<ChrootConfig>),
    Surrogate(Box<SurrogateConfig>),
    Volume(Box<VolumeConfig>),
}

impl BuilderConfig {
    pub fn access(&self) -> &AccessConfig {
        match self {
            BuilderConfig::Bsu(c) => &c.access,
            BuilderConfig::Chroot(c) => &c.access,
            BuilderConfig::Surrogate(c) => &c.bsu.access,
            BuilderConfig::Volume(c) => &c.bsu.access,
        }
    }

    pub fn omi(&self) -> &OmiConfig {
        match self {
            BuilderConfig::Bsu(c) => &c.omi,
            BuilderConfig::Chroot(c) => &c.omi,
            BuilderConfig::Surrogate(c) => &c.bsu.omi,
            BuilderConfig::Volume(c) => &c.bsu.omi,
        }
    }

    pub fn omi_mut(&mut self) -> &mut OmiConfig {
        match self {
            BuilderConfig::Bsu(c) => &mut c.omi,
            BuilderConfig::Chroot(c) => &mut c.omi,
            BuilderConfig::Surrogate(c) => &mut c.bsu.omi,
            BuilderConfig::Volume(c) => &mut c.bsu.omi,
        }
    }
}

/// One builder entry of the template.
#[derive(Debug, Clone, PartialEq)]
pub struct Build {
    /// The entry's `name`, else its type.
    pub name: String,
    /// As written, e.g. `osc-bsu`.
    pub builder_type: String,
    /// Other names `-only` and `-except` know it by: `BUILD.TYPE.NAME`
    /// for a build of a named HCL2 `build` block.
    pub aliases: Vec<String>,
    pub config: BuilderConfig,
    /// Provisioners that apply to this build (after `only`/`except` and with
    /// its `override`), in order, as JSON with variables already
    /// interpolated; `crate::provision` checks and runs them.
    pub provisioners: Vec<Provisioner>,
    /// Post-processors that apply to this build, in order, run on the OMI
    /// once it is made; options rendered as the provisioners' are.
    pub post_processors: Vec<PostProcessor>,
    /// The template's folder: relative paths of scripts and uploads are
    /// read from there.
    pub template_dir: PathBuf,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Provisioner {
    /// Its position in the template's `provisioners`.
    pub index: usize,
    /// Its `type`, e.g. `shell`.
    pub kind: String,
    /// Its other options (an object). Actions the provisioner renders itself
    /// (`{{ .Vars }}`, `{{ build `ID` }}`) are left as written, so a `{{`
    /// in a rendered value (a variable's, say) comes out as `{{"{{"}}`.
    pub config: Value,
}

/// A post-processor of a build.
#[derive(Debug, Clone, PartialEq)]
pub struct PostProcessor {
    /// Where it is in the template, e.g. `post-processors[1][0]`.
    pub at: String,
    /// Its `type`, e.g. `manifest`.
    pub kind: String,
    /// Its other options (an object).
    pub config: Value,
}

const TOP_LEVEL_KEYS: &[&str] = &[
    "description",
    "min_packer_version",
    "variables",
    "sensitive-variables",
    "builders",
    "provisioners",
    "post-processors",
];
/// Every builder type osci knows, in both spellings.
pub(crate) fn builder_types() -> impl Iterator<Item = &'static str> + Clone {
    BSU_TYPES
        .iter()
        .chain(CHROOT_TYPES)
        .chain(SURROGATE_TYPES)
        .chain(VOLUME_TYPES)
        .copied()
}

const BSU_TYPES: &[&str] = &["osc-bsu", "outscale-bsu"];
const CHROOT_TYPES: &[&str] = &["osc-chroot", "outscale-chroot"];
const SURROGATE_TYPES: &[&str] = &["osc-bsusurrogate", "outscale-bsusurrogate"];
const VOLUME_TYPES: &[&str] = &["osc-bsuvolume", "outscale-bsuvolume"];

/// The clock of a load: now, or `SOURCE_DATE_EPOCH` when it is set, so a
/// template that uses the time plans the same twice (reproducible builds'
/// convention).
fn clock() -> OffsetDateTime {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or_else(OffsetDateTime::now_utc)
}

/// Reads, renders and validates a template: a Packer JSON template, or an
/// HCL2 one (a `*.pkr.hcl` or `*.pkr.json` file, or a folder of them).
/// `{{timestamp}}`, `timestamp()` and friends use one clock reading for
/// the whole load, so every field that uses them agrees.
pub fn load(path: &Path, options: &LoadOptions) -> Result<Template, TemplateError> {
    let now = clock();
    if hcl2::is_hcl2(path) {
        let environment: Vec<(String, String)> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        let read = hcl2::read(path, options, &environment, now)?;
        let Value::Object(root) = read.root else {
            unreachable!("an HCL2 template reads into an object")
        };
        let sensitive: Vec<Secret> = read.sensitive.into_iter().map(Secret::new).collect();
        let hide = |mut e: TemplateError| {
            e.message = crate::secret::mask(&e.message, sensitive.iter().map(Secret::expose));
            e
        };
        // Its variables are resolved: nothing of the command line is left.
        let mut template = from_document(
            path,
            root,
            &read.positions,
            &LoadOptions::default(),
            now,
            read.template_dir,
            sensitive.clone(),
        )
        .map_err(hide)?;
        for b in &mut template.builds {
            b.aliases = read
                .aliases
                .iter()
                .filter(|(name, _)| *name == b.name)
                .map(|(_, alias)| alias.clone())
                .collect();
        }
        return Ok(template);
    }
    let whole_file = |problem: Problem| TemplateError::of_file(path, problem.to_string());
    let text = std::fs::read_to_string(path).map_err(|error| {
        let path = path.to_path_buf();
        whole_file(Problem::Io { path, error })
    })?;
    let (root, positions) = json::parse(&text).map_err(|e| TemplateError {
        key: (!e.path.is_empty()).then(|| KeyPath(e.path.clone()).to_string()),
        line: e.position.map(|p| p.0),
        column: e.position.map(|p| p.1),
        ..whole_file(e.problem)
    })?;
    let Value::Object(root) = root else {
        let message =
            "a template is a JSON object with `builders` (and `variables`, `provisioners`)";
        return Err(whole_file(Problem::Invalid(message.into())));
    };
    let template_dir = std::path::absolute(match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    })
    .map_err(|error| {
        let path = path.to_path_buf();
        whole_file(Problem::Io { path, error })
    })?;
    from_document(
        path,
        root,
        &positions,
        options,
        now,
        template_dir,
        Vec::new(),
    )
}

/// Loads a template document: a JSON template as written, or what an HCL2
/// template reads into (`sensitive`: the values its sensitive variables
/// and locals hold).
fn from_document(
    path: &Path,
    root: Map<String, Value>,
    positions: &json::Positions,
    options: &LoadOptions,
    now: OffsetDateTime,
    template_dir: PathBuf,
    sensitive: Vec<Secret>,
) -> Result<Template, TemplateError> {
    let site = Site {
        file: path,
        positions,
        base: KeyPath::root(),
        build: None,
    };
    // Packer's way to comment a template: top-level keys starting with `_`.
    if let Some(key) = root
        .keys()
        .find(|k| !k.starts_with('_') && !TOP_LEVEL_KEYS.contains(&k.as_str()))
    {
        let suggestion = suggest(key, TOP_LEVEL_KEYS.iter().copied());
        return Err(site.error(&KeyPath::of(key), Problem::UnknownKey(suggestion)));
    }
    for key in ["description", "min_packer_version"] {
        if root.get(key).is_some_and(|v| !v.is_string()) {
            let problem = Problem::Invalid("expected a string".into());
            return Err(site.error(&KeyPath::of(key), problem));
        }
    }
    let vars = variables::resolve(root.get("variables"), options, &site, now, &template_dir)?;
    let sensitive_names = sensitive_variables(root.get("sensitive-variables"), &root, &site)?;

    let entries = builder_entries(root.get("builders"), &site)?;
    let names: Vec<String> = entries.iter().map(|e| e.name.clone()).collect();
    let provisioners = provisioners::parse(root.get("provisioners"), &names, &site)?;
    let post_processors = post_processors::parse(root.get("post-processors"), &names, &site)?;

    let user = |name: &str| vars.get(name);
    let mut builds = Vec::new();
    let mut warnings = Vec::new();
    for entry in entries {
        let scope = LoadScope {
            user: &user,
            in_variables: false,
            build: Some((&entry.name, &entry.builder_type)),
            now,
            template_dir: &template_dir,
        };
        let build_site = Site {
            file: path,
            positions,
            base: KeyPath::of("builders").index(entry.index),
            build: Some(entry.name.clone()),
        };
        let fail = |(key, problem): (KeyPath, Problem)| build_site.error(&key, problem);

        let kind = entry.builder_type.as_str();
        let chroot = CHROOT_TYPES.contains(&kind);
        let surrogate = SURROGATE_TYPES.contains(&kind);
        let volume = VOLUME_TYPES.contains(&kind);
        let mut config = entry.config;
        if chroot {
            chroot::check_keys(&config).map_err(fail)?;
        } else if surrogate {
            surrogate::check_keys(&config).map_err(fail)?;
        } else if volume {
            bsuvolume::check_keys(&config).map_err(fail)?;
        } else {
            bsu::check_keys(&config).map_err(fail)?;
        }
        config.remove("type");
        config.remove("name");
        let late = |at: &KeyPath| match at.head() {
            Some(field) if LATE_FIELDS.contains(&field) => Late::BuildVars,
            Some(field) if HOST_FIELDS.contains(&field) => Late::Provisioner,
            _ => Late::Evaluate,
        };
        let config = render_object(config, &KeyPath::root(), &scope, &late).map_err(fail)?;
        let config = if chroot {
            let (config, said) = chroot::build(config, &template_dir).map_err(fail)?;
            warnings.extend(
                said.into_iter()
                    .map(|w| format!("{}: builders[{}]: {w}", path.display(), entry.index)),
            );
            BuilderConfig::Chroot(Box::new(config))
        } else if volume {
            let (config, said) = bsuvolume::build(config, &template_dir).map_err(fail)?;
            warnings.extend(
                said.into_iter()
                    .map(|w| format!("{}: builders[{}]: {w}", path.display(), entry.index)),
            );
            BuilderConfig::Volume(Box::new(config))
        } else if surrogate {
            BuilderConfig::Surrogate(Box::new(
                surrogate::build(config, &template_dir).map_err(fail)?,
            ))
        } else {
            BuilderConfig::Bsu(Box::new(bsu::build(config, &template_dir).map_err(fail)?))
        };

        let provisioner_site = Site {
            base: KeyPath::root(),
            ..build_site
        };
        let fail = |(key, problem): (KeyPath, Problem)| provisioner_site.error(&key, problem);
        let mut build_provisioners = Vec::new();
        for (i, p) in provisioners.iter().enumerate() {
            if !p.applies_to(&entry.name) {
                continue;
            }
            let at = KeyPath::of("provisioners").index(i);
            let config = p.config_for(&entry.name);
            let config =
                render_object(config, &at, &scope, &|_| Late::Provisioner).map_err(fail)?;
            build_provisioners.push(Provisioner {
                index: i,
                kind: p.kind.clone(),
                config: Value::Object(config),
            });
        }

        let mut build_post_processors = Vec::new();
        for item in &post_processors {
            if !item.entry.applies_to(&entry.name) {
                continue;
            }
            let config = item.entry.config_for(&entry.name);
            let config =
                render_object(config, &item.at, &scope, &|_| Late::Provisioner).map_err(fail)?;
            build_post_processors.push(PostProcessor {
                at: item.at.to_string(),
                kind: item.entry.kind.clone(),
                config: Value::Object(config),
            });
        }

        builds.push(Build {
            name: entry.name,
            builder_type: entry.builder_type,
            aliases: Vec::new(),
            config,
            provisioners: build_provisioners,
            post_processors: build_post_processors,
            template_dir: template_dir.clone(),
        });
    }
    Ok(Template {
        path: path.to_path_buf(),
        builds,
        sensitive_values: vars
            .values_of(&sensitive_names)
            .into_iter()
            .chain(sensitive)
            .collect(),
        unselected: Vec::new(),
        selection: None,
        warnings,
    })
}

/// A builder entry, identified, not yet validated.
struct Entry {
    index: usize,
    name: String,
    builder_type: String,
    config: Map<String, Value>,
}

fn builder_entries(section: Option<&Value>, site: &Site) -> Result<Vec<Entry>, TemplateError> {
    let base = KeyPath::of("builders");
    let items = match section {
        None => {
            let what = "builders, the list of builds (e.g. one \"outscale-bsu\" builder)";
            return Err(site.error(&base, Problem::Missing(what)));
        }
        Some(Value::Array(items)) if !items.is_empty() => items,
        Some(_) => {
            let problem = Problem::Invalid("must be a non-empty array of builders".into());
            return Err(site.error(&base, problem));
        }
    };
    let mut entries: Vec<Entry> = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let at = base.index(index);
        let Value::Object(config) = item else {
            let problem = Problem::Invalid("a builder is an object with a `type`".into());
            return Err(site.error(&at, problem));
        };
        let builder_type = match config.get("type") {
            Some(Value::String(t)) => t.clone(),
            None => {
                let what = "type, the builder type, e.g. \"outscale-bsu\"";
                return Err(site.error(&at.key("type"), Problem::Missing(what)));
            }
            Some(_) => {
                let problem = Problem::Invalid("expected a string such as \"outscale-bsu\"".into());
                return Err(site.error(&at.key("type"), problem));
            }
        };
        let name = match config.get("name") {
            None => builder_type.clone(),
            Some(Value::String(name)) if !name.is_empty() && !name.contains("{{") => name.clone(),
            Some(_) => {
                let message = "expected a non-empty plain string: build names are not interpolated";
                return Err(site.error(&at.key("name"), Problem::Invalid(message.into())));
            }
        };
        let build_site = Site {
            file: site.file,
            positions: site.positions,
            base: at.clone(),
            build: Some(name.clone()),
        };
        if !BSU_TYPES.contains(&builder_type.as_str())
            && !CHROOT_TYPES.contains(&builder_type.as_str())
            && !SURROGATE_TYPES.contains(&builder_type.as_str())
            && !VOLUME_TYPES.contains(&builder_type.as_str())
        {
            let known = builder_types();
            let (current, old): (Vec<&str>, Vec<&str>) =
                known.clone().partition(|t| t.starts_with("outscale-"));
            let message = format!(
                "unknown builder type `{builder_type}`{}; the OUTSCALE builders are {} \
                 (formerly {})",
                error::did_you_mean(suggest(&builder_type, known).as_deref()),
                current.join(", "),
                old.join(", ")
            );
            return Err(build_site.error(&KeyPath::of("type"), Problem::Invalid(message)));
        }
        if let Some(first) = entries.iter().find(|e| e.name == name) {
            let message = format!(
                "builders[{}] already has this name; give each builder a distinct `name`",
                first.index
            );
            let key = if config.contains_key("name") {
                "name"
            } else {
                "type"
            };
            return Err(build_site.error(&KeyPath::of(key), Problem::Invalid(message)));
        }
        entries.push(Entry {
            index,
            name,
            builder_type,
            config: config.clone(),
        });
    }
    Ok(entries)
}

/// The names in `sensitive-variables`, which must be variables.
fn sensitive_variables(
    section: Option<&Value>,
    root: &Map<String, Value>,
    site: &Site,
) -> Result<Vec<String>, TemplateError> {
    let base = KeyPath::of("sensitive-variables");
    let Some(section) = section.filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let Value::Array(items) = section else {
        let problem = Problem::Invalid("expected an array of variable names".into());
        return Err(site.error(&base, problem));
    };
    let defined = root.get("variables").and_then(Value::as_object);
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let name = item
                .as_str()
                .filter(|n| defined.is_some_and(|d| d.contains_key(*n)));
            name.map(String::from).ok_or_else(|| {
                let message = "expected the name of a variable defined in `variables`";
                site.error(&base.index(i), Problem::Invalid(message.into()))
            })
        })
        .collect()
}

type Failure = (KeyPath, Problem);

/// Renders every key and string value of an object, recursively.
fn render_object(
    object: Map<String, Value>,
    at: &KeyPath,
    scope: &dyn Scope,
    late: &dyn Fn(&KeyPath) -> Late,
) -> Result<Map<String, Value>, Failure> {
    let mut out = Map::new();
    for (key, value) in object {
        let path = at.key(&key);
        let rendered_key =
            render(&key, scope, late(&path)).map_err(|e| (path.clone(), e.into()))?;
        let value = render_value(value, &path, scope, late)?;
        if out.insert(rendered_key.clone(), value).is_some() {
            let message = format!("another key of this object also renders to `{rendered_key}`");
            return Err((path, Problem::Invalid(message)));
        }
    }
    Ok(out)
}

fn render_value(
    value: Value,
    at: &KeyPath,
    scope: &dyn Scope,
    late: &dyn Fn(&KeyPath) -> Late,
) -> Result<Value, Failure> {
    match value {
        Value::String(s) => render(&s, scope, late(at))
            .map(Value::String)
            .map_err(|e| (at.clone(), e.into())),
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| render_value(item, &at.index(i), scope, late))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        Value::Object(object) => render_object(object, at, scope, late).map(Value::Object),
        other => Ok(other),
    }
}
