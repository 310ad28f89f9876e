//! Packer's legacy interpolation: the `{{ … }}` actions of Go's text/template
//! (functions, arguments in backticks or double quotes, pipes, parentheses,
//! `{{-`/`-}}` trimming) with Packer's functions.
//!
//! Most actions are rendered when the template is loaded. Those that need
//! data only a build has — the build variables `{{ .BuildRegion }}` and
//! friends in tags and descriptions, and whatever provisioners render
//! themselves (`{{ .Vars }}`, `{{ build `ID` }}`) — are kept verbatim for
//! later; [`render_build_vars`] renders the build variables.

use std::collections::BTreeMap;
use std::path::Path;

use time::OffsetDateTime;

use super::error::did_you_mean;
use super::isotime;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RenderError {
    #[error("template syntax: {0}")]
    Syntax(String),
    #[error("undefined variable `{name}`{}", did_you_mean(.suggestion.as_deref()))]
    UndefinedVariable {
        name: String,
        suggestion: Option<String>,
    },
    #[error("required variable `{0}` is not set: give it with `-var {0}=VALUE` or in a -var-file")]
    RequiredVariable(String),
    #[error("variables refer to each other in a cycle: {0}")]
    VariableCycle(String),
    #[error("in variable `{name}`: {source}")]
    InVariable {
        name: String,
        source: Box<RenderError>,
    },
    #[error(
        "`env` is only allowed in the default values of `variables` (as in Packer): \
         define a variable whose default is {{{{env `{0}`}}}} and use {{{{user `NAME`}}}} here"
    )]
    EnvNotHere(String),
    #[error(
        "build variable `.{0}` is only rendered in {LATE_FIELDS_TEXT}; elsewhere its value is not known"
    )]
    BuildVarNotHere(String),
    #[error(
        "unknown field `.{name}` here (it has {}); in provisioners and post-processors, build \
         variables are {{{{ build `Key` }}}}",
        if .known.is_empty() { "none" } else { .known.as_str() }
    )]
    UnknownField { name: String, known: String },
    #[error("{{{{ build `{key}` }}}}: the build has no such value (it has {known})")]
    UnknownBuildData { key: String, known: String },
    #[error(
        "unknown build variable `.{name}`{}; the build variables are {LATE_VARS_TEXT}",
        did_you_mean(.suggestion.as_deref())
    )]
    UnknownBuildVar {
        name: String,
        suggestion: Option<String>,
    },
    #[error("`.SourceOMITags` needs a tag name: {{{{ .SourceOMITags.NAME }}}}")]
    TagsNeedKey,
    #[error(
        "`{0}` cannot be used at build time: an action with build variables may only use \
         the build variables and {PURE_TEXT}"
    )]
    NotAtBuildTime(String),
    #[error("`{0}` is only available in builders and provisioners")]
    NoBuild(&'static str),
    #[error("`build` is only available in provisioners")]
    BuildFunctionNotHere,
    #[error("unknown function `{name}`{}", did_you_mean(.suggestion.as_deref()))]
    UnknownFunction {
        name: String,
        suggestion: Option<String>,
    },
    #[error("function `{0}` is not supported by osci")]
    UnsupportedFunction(String),
    #[error("`{function}`: {message}")]
    BadArguments { function: String, message: String },
}

/// The fields of a bsu builder in which build variables are rendered.
pub(crate) const LATE_FIELDS: &[&str] = &[
    "tags",
    "snapshot_tags",
    "run_tags",
    "run_volume_tags",
    "root_volume_tags",
    "omi_description",
    // Their tags.
    "bsu_volumes",
    "ebs_volumes",
];
const LATE_FIELDS_TEXT: &str = "tags, snapshot_tags, run_tags, run_volume_tags, root_volume_tags, \
                                bsu_volumes' tags and omi_description";
/// The fields of a chroot builder rendered on the host, with `.Device`,
/// `.MountPath` and `.Command`.
pub(crate) const HOST_FIELDS: &[&str] = &[
    "mount_path",
    "pre_mount_commands",
    "post_mount_commands",
    "command_wrapper",
];
const LATE_VARS: &[&str] = &[
    "BuildRegion",
    "SourceOMI",
    "SourceOMIName",
    "SourceOMITags",
    "SourceOMIInfo",
];
const LATE_VARS_TEXT: &str =
    ".BuildRegion, .SourceOMI, .SourceOMIName, .SourceOMITags.NAME and .SourceOMIInfo.NAME";
/// Functions that need nothing but their arguments, so they also work at build time.
const PURE: &[&str] = &[
    "clean_resource_name",
    "clean_omi_name",
    "lower",
    "upper",
    "replace",
    "replace_all",
    "split",
    "index",
];
const PURE_TEXT: &str =
    "clean_resource_name, clean_omi_name, lower, upper, replace, replace_all, split and index";
const LOAD_FUNCTIONS: &[&str] = &[
    "user",
    "env",
    "timestamp",
    "uuid",
    "isotime",
    "build_name",
    "build_type",
    "template_dir",
    "pwd",
];
/// Packer functions that reach services osci does not talk to, or that Packer deprecated.
const UNSUPPORTED: &[&str] = &[
    "consul_key",
    "vault",
    "aws_secretsmanager",
    "aws_secretsmanager_raw",
    "sed",
    "packer_version",
    "strftime",
];

/// The build variables of one build, as [`render_build_vars`] renders them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildVars {
    pub build_region: String,
    pub source_omi: String,
    pub source_omi_name: String,
    pub source_omi_tags: BTreeMap<String, String>,
    /// The source's other outputs, as the `outscale-omi` data source names
    /// them (`creation_date`, `owner`, `owner_name`, `root_device_name`):
    /// what `data.outscale-omi.NAME.*` of the build's source stands for.
    pub source_omi_info: BTreeMap<String, String>,
}

/// Renders the build variables (`{{ .BuildRegion }}`, `{{ .SourceOMI }}`,
/// `{{ .SourceOMIName }}`, `{{ .SourceOMITags.KEY }}`, optionally piped
/// through the functions that need no load-time data) that loading left in
/// `tags`, `snapshot_tags`, `run_tags`, `run_volume_tags` and
/// `omi_description`. Call it on every key and value of those fields: a
/// string without actions comes back unchanged. A missing tag renders empty,
/// as in Go's templates.
pub fn render_build_vars(value: &str, vars: &BuildVars) -> Result<String, String> {
    render(value, &BuildScope(vars), Late::Evaluate).map_err(|e| e.to_string())
}

/// A value inside an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Val {
    Str(String),
    Int(i64),
    Map(BTreeMap<String, String>),
}

impl Val {
    fn into_string(self, function: &str) -> Result<String, RenderError> {
        match self {
            Val::Str(s) => Ok(s),
            Val::Int(n) => Ok(n.to_string()),
            Val::Map(_) => Err(bad(function, "expected a string, got a map")),
        }
    }
}

fn check_arity(function: &str, args: &[Val], n: usize) -> Result<(), RenderError> {
    if args.len() == n {
        return Ok(());
    }
    let message = format!("takes {n} argument(s), got {}", args.len());
    Err(bad(function, message))
}

fn bad(function: &str, message: impl Into<String>) -> RenderError {
    RenderError::BadArguments {
        function: function.to_string(),
        message: message.into(),
    }
}

/// What functions and `.Fields` mean where an action is rendered.
pub(crate) trait Scope {
    fn function(&self, name: &str, args: Vec<Val>) -> Result<Val, RenderError>;
    fn field(&self, path: &[String]) -> Result<Val, RenderError>;
}

/// What to do with an action that needs data only a build has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Late {
    /// Render every action now.
    Evaluate,
    /// Keep actions with build variables for [`render_build_vars`], after
    /// checking they will render then.
    BuildVars,
    /// Keep actions with `.Fields` or `build` for the provisioner.
    Provisioner,
}

/// Renders `text`; see [`Late`] for the actions that are kept.
pub(crate) fn render(text: &str, scope: &dyn Scope, late: Late) -> Result<String, RenderError> {
    if !text.contains("{{") {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    for piece in parse(text)? {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Action { source, pipeline } => {
                let keep = match late {
                    Late::Evaluate => false,
                    Late::BuildVars => {
                        let needs_build = pipeline.uses(&|op| matches!(op, Operand::Field(_)));
                        if needs_build {
                            let probe = BuildScope(&BuildVars::default());
                            if let Val::Map(_) = eval_pipeline(&pipeline, &probe)? {
                                return Err(RenderError::TagsNeedKey);
                            }
                        }
                        needs_build
                    }
                    Late::Provisioner => pipeline.uses(&|op| match op {
                        Operand::Field(_) => true,
                        Operand::Func(name) => name == "build",
                        _ => false,
                    }),
                };
                if keep {
                    out.push_str(source);
                    continue;
                }
                let rendered = match eval_pipeline(&pipeline, scope)? {
                    Val::Str(s) => s,
                    Val::Int(n) => n.to_string(),
                    Val::Map(_) => return Err(RenderError::TagsNeedKey),
                };
                if late == Late::Evaluate {
                    out.push_str(&rendered);
                } else {
                    // The string will be rendered again: a value that happens
                    // to contain `{{` must come out as written.
                    out.push_str(&rendered.replace("{{", r#"{{"{{"}}"#));
                }
            }
        }
    }
    Ok(out)
}

/// Everything outside the build: variables, `env` (only while rendering the
/// `variables` section), the build's name and type, one clock for the load.
pub(crate) struct LoadScope<'a> {
    pub user: &'a dyn Fn(&str) -> Result<String, RenderError>,
    pub in_variables: bool,
    /// The build's name and builder type, when rendering one.
    pub build: Option<(&'a str, &'a str)>,
    pub now: OffsetDateTime,
    pub template_dir: &'a Path,
}

impl Scope for LoadScope<'_> {
    fn function(&self, name: &str, args: Vec<Val>) -> Result<Val, RenderError> {
        if let Some(result) = pure(name, &args) {
            return result;
        }
        let arity = |n: usize| check_arity(name, &args, n);
        let text = |i: usize| args[i].clone().into_string(name);
        match name {
            "user" => {
                arity(1)?;
                (self.user)(&text(0)?).map(Val::Str)
            }
            "env" => {
                arity(1)?;
                let var = text(0)?;
                if !self.in_variables {
                    return Err(RenderError::EnvNotHere(var));
                }
                Ok(Val::Str(std::env::var(&var).unwrap_or_default()))
            }
            "timestamp" => {
                arity(0)?;
                Ok(Val::Str(self.now.unix_timestamp().to_string()))
            }
            "uuid" => {
                arity(0)?;
                Ok(Val::Str(uuid::Uuid::new_v4().to_string()))
            }
            "isotime" => match args.len() {
                0 => Ok(Val::Str(isotime::format(isotime::RFC3339, self.now))),
                1 => Ok(Val::Str(isotime::format(&text(0)?, self.now))),
                n => Err(bad(name, format!("takes 0 or 1 argument, got {n}"))),
            },
            "build_name" | "build_type" => {
                arity(0)?;
                let no_build = || {
                    RenderError::NoBuild(if name == "build_name" {
                        "build_name"
                    } else {
                        "build_type"
                    })
                };
                let (build_name, build_type) = self.build.ok_or_else(no_build)?;
                let value = if name == "build_name" {
                    build_name
                } else {
                    build_type
                };
                Ok(Val::Str(value.to_string()))
            }
            "template_dir" => {
                arity(0)?;
                Ok(Val::Str(self.template_dir.display().to_string()))
            }
            "pwd" => {
                arity(0)?;
                let dir = std::env::current_dir().map_err(|e| bad(name, e.to_string()))?;
                Ok(Val::Str(dir.display().to_string()))
            }
            "build" => Err(RenderError::BuildFunctionNotHere),
            _ => Err(unknown_function(name)),
        }
    }

    fn field(&self, path: &[String]) -> Result<Val, RenderError> {
        match path.first() {
            Some(var) if LATE_VARS.contains(&var.as_str()) => {
                Err(RenderError::BuildVarNotHere(var.clone()))
            }
            _ => Err(unknown_build_var(path)),
        }
    }
}

/// The build variables of one build, and the pure functions.
struct BuildScope<'a>(&'a BuildVars);

impl Scope for BuildScope<'_> {
    fn function(&self, name: &str, args: Vec<Val>) -> Result<Val, RenderError> {
        match pure(name, &args) {
            Some(result) => result,
            None if LOAD_FUNCTIONS.contains(&name) || name == "build" => {
                Err(RenderError::NotAtBuildTime(name.to_string()))
            }
            None => Err(unknown_function(name)),
        }
    }

    fn field(&self, path: &[String]) -> Result<Val, RenderError> {
        let vars = self.0;
        let simple = |v: &str| {
            if path.len() == 1 {
                Ok(Val::Str(v.to_string()))
            } else {
                Err(unknown_build_var(path))
            }
        };
        match path.first().map(String::as_str) {
            Some("BuildRegion") => simple(&vars.build_region),
            Some("SourceOMI") => simple(&vars.source_omi),
            Some("SourceOMIName") => simple(&vars.source_omi_name),
            Some("SourceOMIInfo") => match path {
                [_, key] => Ok(Val::Str(
                    vars.source_omi_info.get(key).cloned().unwrap_or_default(),
                )),
                _ => Err(unknown_build_var(path)),
            },
            Some("SourceOMITags") => match path {
                [_] => Ok(Val::Map(vars.source_omi_tags.clone())),
                [_, tag] => Ok(Val::Str(
                    vars.source_omi_tags.get(tag).cloned().unwrap_or_default(),
                )),
                _ => Err(unknown_build_var(path)),
            },
            _ => Err(unknown_build_var(path)),
        }
    }
}

/// Renders what a provisioner left for itself: `{{ .Field }}` from
/// `fields` (`.Vars`, `.Path`, `.Command`, …) and `{{ build `Key` }}` from
/// `build` (`ID`, `Host`, `SourceOMI`, …), with the pure functions.
pub fn render_provisioner(
    text: &str,
    fields: &BTreeMap<String, String>,
    build: &BTreeMap<String, String>,
) -> Result<String, String> {
    render(text, &ProvisionerScope { fields, build }, Late::Evaluate).map_err(|e| e.to_string())
}

struct ProvisionerScope<'a> {
    fields: &'a BTreeMap<String, String>,
    build: &'a BTreeMap<String, String>,
}

impl Scope for ProvisionerScope<'_> {
    fn function(&self, name: &str, args: Vec<Val>) -> Result<Val, RenderError> {
        if name == "build" {
            return match args.as_slice() {
                [Val::Str(key)] => {
                    self.build
                        .get(key)
                        .map(|v| Val::Str(v.clone()))
                        .ok_or_else(|| RenderError::UnknownBuildData {
                            key: key.clone(),
                            known: self.build.keys().cloned().collect::<Vec<_>>().join(", "),
                        })
                }
                _ => Err(RenderError::UnknownBuildVar {
                    name: "build".into(),
                    suggestion: None,
                }),
            };
        }
        match pure(name, &args) {
            Some(result) => result,
            None if LOAD_FUNCTIONS.contains(&name) => {
                Err(RenderError::NotAtBuildTime(name.to_string()))
            }
            None => Err(unknown_function(name)),
        }
    }

    fn field(&self, path: &[String]) -> Result<Val, RenderError> {
        match path {
            [name] => self
                .fields
                .get(name)
                .map(|v| Val::Str(v.clone()))
                .ok_or_else(|| RenderError::UnknownField {
                    name: name.clone(),
                    known: self
                        .fields
                        .keys()
                        .map(|k| format!(".{k}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                }),
            _ => Err(unknown_build_var(path)),
        }
    }
}

fn unknown_build_var(path: &[String]) -> RenderError {
    let name = path.join(".");
    RenderError::UnknownBuildVar {
        suggestion: suggest(&name, LATE_VARS.iter().copied()),
        name,
    }
}

fn unknown_function(name: &str) -> RenderError {
    if UNSUPPORTED.contains(&name) {
        return RenderError::UnsupportedFunction(name.to_string());
    }
    RenderError::UnknownFunction {
        name: name.to_string(),
        suggestion: suggest(
            name,
            PURE.iter().chain(LOAD_FUNCTIONS).copied().chain(["build"]),
        ),
    }
}

/// The closest candidate, if it is close enough to be a typo.
pub(crate) fn suggest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<String> {
    let limit = (name.chars().count() / 3).max(2);
    candidates
        .map(|c| {
            (
                strsim::levenshtein(&name.to_lowercase(), &c.to_lowercase()),
                c,
            )
        })
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.to_string())
}

/// The characters an OMI name may hold, besides ASCII letters and digits.
pub(crate) fn omi_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "()[] ./-'@_".contains(c)
}

/// Functions that need nothing but their arguments; `None` if `name` is not one.
fn pure(name: &str, args: &[Val]) -> Option<Result<Val, RenderError>> {
    if !PURE.contains(&name) {
        return None;
    }
    Some(pure_inner(name, args))
}

fn pure_inner(name: &str, args: &[Val]) -> Result<Val, RenderError> {
    let arity = |n: usize| check_arity(name, args, n);
    let text = |i: usize| args[i].clone().into_string(name);
    let int = |i: usize| match &args[i] {
        Val::Int(n) => Ok(*n),
        Val::Str(s) => s
            .parse::<i64>()
            .map_err(|_| bad(name, format!("`{s}` is not an integer"))),
        Val::Map(_) => Err(bad(name, "expected an integer, got a map")),
    };
    match name {
        "clean_resource_name" | "clean_omi_name" => {
            arity(1)?;
            let cleaned = text(0)?
                .chars()
                .map(|c| if omi_name_char(c) { c } else { '-' })
                .collect();
            Ok(Val::Str(cleaned))
        }
        "lower" => {
            arity(1)?;
            Ok(Val::Str(text(0)?.to_lowercase()))
        }
        "upper" => {
            arity(1)?;
            Ok(Val::Str(text(0)?.to_uppercase()))
        }
        // Packer's argument orders, so that the subject can be piped in last.
        "replace" => {
            arity(4)?;
            let (old, new, n, s) = (text(0)?, text(1)?, int(2)?, text(3)?);
            Ok(Val::Str(if n < 0 {
                s.replace(&old, &new)
            } else {
                s.replacen(&old, &new, n as usize)
            }))
        }
        "replace_all" => {
            arity(3)?;
            Ok(Val::Str(text(2)?.replace(&text(0)?, &text(1)?)))
        }
        "split" => {
            arity(3)?;
            let (s, sep, i) = (text(0)?, text(1)?, int(2)?);
            let parts: Vec<&str> = s.split(sep.as_str()).collect();
            usize::try_from(i)
                .ok()
                .and_then(|i| parts.get(i))
                .map(|p| Val::Str(p.to_string()))
                .ok_or_else(|| {
                    bad(
                        name,
                        format!("index {i} out of range: `{s}` has {} part(s)", parts.len()),
                    )
                })
        }
        _ => {
            // `index`
            arity(2)?;
            match &args[0] {
                Val::Map(m) => Ok(Val::Str(m.get(&text(1)?).cloned().unwrap_or_default())),
                _ => Err(bad(
                    name,
                    "the first argument must be a map such as .SourceOMITags",
                )),
            }
        }
    }
}

// ---- parsing ----

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Func(String),
    Field(Vec<String>),
    Str(String),
    Int(i64),
    Sub(Pipeline),
}

/// Commands joined by `|`; each command's value is the last argument of the next.
#[derive(Debug, Clone, PartialEq)]
struct Pipeline(Vec<Vec<Operand>>);

impl Pipeline {
    fn uses(&self, test: &dyn Fn(&Operand) -> bool) -> bool {
        self.0.iter().flatten().any(|op| {
            test(op)
                || match op {
                    Operand::Sub(p) => p.uses(test),
                    _ => false,
                }
        })
    }
}

enum Piece<'a> {
    Text(&'a str),
    Action {
        /// The whole action as written, `{{` to `}}`.
        source: &'a str,
        pipeline: Pipeline,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Field(Vec<String>),
    Str(String),
    Int(i64),
    Pipe,
    Open,
    Close,
}

fn syntax(message: impl Into<String>) -> RenderError {
    RenderError::Syntax(message.into())
}

fn parse(text: &str) -> Result<Vec<Piece<'_>>, RenderError> {
    let mut pieces = Vec::new();
    let mut i = 0;
    while let Some(offset) = text[i..].find("{{") {
        let open = i + offset;
        let mut j = open + 2;
        let trim_left = text[j..].starts_with('-')
            && text[j + 1..].starts_with(|c: char| c.is_ascii_whitespace());
        if trim_left {
            j += 1;
        }
        let (tokens, end, trim_right) = lex(text, open, j)?;
        let before = &text[i..open];
        pieces.push(Piece::Text(if trim_left {
            before.trim_end()
        } else {
            before
        }));
        let mut cursor = 0;
        let pipeline = parse_pipeline(&tokens, &mut cursor)?;
        if cursor < tokens.len() {
            return Err(syntax(format!(
                "unexpected {:?} in {}",
                tokens[cursor],
                &text[open..end]
            )));
        }
        pieces.push(Piece::Action {
            source: &text[open..end],
            pipeline,
        });
        i = end;
        if trim_right {
            i = text.len() - text[i..].trim_start().len();
        }
    }
    pieces.push(Piece::Text(&text[i..]));
    Ok(pieces)
}

/// Lexes the action opened at `open` from `start` (just after `{{` or
/// `{{-`); returns its tokens, the index just past `}}`, and whether it
/// ended with `-}}`.
fn lex(text: &str, open: usize, start: usize) -> Result<(Vec<Token>, usize, bool), RenderError> {
    let mut tokens = Vec::new();
    let mut i = start;
    loop {
        let rest = &text[i..];
        let trimmed = rest.trim_start();
        let had_space = trimmed.len() < rest.len();
        i += rest.len() - trimmed.len();
        if had_space && trimmed.starts_with("-}}") {
            return Ok((tokens, i + 3, true));
        }
        if trimmed.starts_with("}}") {
            return Ok((tokens, i + 2, false));
        }
        let Some(c) = trimmed.chars().next() else {
            return Err(syntax(format!("unclosed action `{}`", &text[open..])));
        };
        match c {
            '|' => {
                tokens.push(Token::Pipe);
                i += 1;
            }
            '(' => {
                tokens.push(Token::Open);
                i += 1;
            }
            ')' => {
                tokens.push(Token::Close);
                i += 1;
            }
            '`' => {
                let end = trimmed[1..]
                    .find('`')
                    .ok_or_else(|| syntax("unterminated raw string (missing closing backtick)"))?;
                tokens.push(Token::Str(trimmed[1..1 + end].to_string()));
                i += end + 2;
            }
            '"' => {
                let (s, len) = quoted(trimmed)?;
                tokens.push(Token::Str(s));
                i += len;
            }
            '.' => {
                let len = 1 + trimmed[1..]
                    .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
                    .unwrap_or(trimmed.len() - 1);
                let path: Vec<String> = trimmed[1..len]
                    .split('.')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
                tokens.push(Token::Field(path));
                i += len;
            }
            c if c.is_ascii_digit()
                || (c == '-' && trimmed[1..].starts_with(|d: char| d.is_ascii_digit())) =>
            {
                let len = 1 + trimmed[1..]
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(trimmed.len() - 1);
                let n = trimmed[..len]
                    .parse()
                    .map_err(|_| syntax(format!("bad number `{}`", &trimmed[..len])))?;
                tokens.push(Token::Int(n));
                i += len;
            }
            c if c.is_alphabetic() || c == '_' => {
                let len = trimmed
                    .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .unwrap_or(trimmed.len());
                tokens.push(Token::Ident(trimmed[..len].to_string()));
                i += len;
            }
            other => {
                return Err(syntax(format!(
                    "unexpected `{other}` in `{}`",
                    &text[open..]
                )));
            }
        }
    }
}

/// A double-quoted string with Go escapes; returns it and its length in the source.
fn quoted(s: &str) -> Result<(String, usize), RenderError> {
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, i + 1)),
            '\\' => match chars.next().map(|(_, e)| e) {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some(e @ ('\\' | '"' | '\'')) => out.push(e),
                other => {
                    return Err(syntax(format!(
                        "unknown escape `\\{}` in a quoted string",
                        other.map(String::from).unwrap_or_default()
                    )));
                }
            },
            c => out.push(c),
        }
    }
    Err(syntax("unterminated quoted string"))
}

fn parse_pipeline(tokens: &[Token], i: &mut usize) -> Result<Pipeline, RenderError> {
    let mut commands = vec![parse_command(tokens, i)?];
    while tokens.get(*i) == Some(&Token::Pipe) {
        *i += 1;
        commands.push(parse_command(tokens, i)?);
    }
    Ok(Pipeline(commands))
}

fn parse_command(tokens: &[Token], i: &mut usize) -> Result<Vec<Operand>, RenderError> {
    let mut operands = Vec::new();
    while let Some(token) = tokens.get(*i) {
        let operand = match token {
            Token::Pipe | Token::Close => break,
            Token::Ident(name) => Operand::Func(name.clone()),
            Token::Field(path) => Operand::Field(path.clone()),
            Token::Str(s) => Operand::Str(s.clone()),
            Token::Int(n) => Operand::Int(*n),
            Token::Open => {
                *i += 1;
                let inner = parse_pipeline(tokens, i)?;
                if tokens.get(*i) != Some(&Token::Close) {
                    return Err(syntax("unclosed parenthesis"));
                }
                Operand::Sub(inner)
            }
        };
        operands.push(operand);
        *i += 1;
    }
    if operands.is_empty() {
        return Err(syntax("missing value in an action (empty `{{ }}` or `|`)"));
    }
    Ok(operands)
}

// ---- evaluation ----

fn eval_pipeline(p: &Pipeline, scope: &dyn Scope) -> Result<Val, RenderError> {
    let mut piped = None;
    for command in &p.0 {
        piped = Some(eval_command(command, scope, piped)?);
    }
    Ok(piped.expect("a pipeline has at least one command"))
}

fn eval_command(
    command: &[Operand],
    scope: &dyn Scope,
    piped: Option<Val>,
) -> Result<Val, RenderError> {
    if let Operand::Func(name) = &command[0] {
        let mut args = command[1..]
            .iter()
            .map(|op| eval_operand(op, scope))
            .collect::<Result<Vec<_>, _>>()?;
        args.extend(piped);
        return scope.function(name, args);
    }
    if command.len() > 1 || piped.is_some() {
        return Err(syntax("only a function can take arguments"));
    }
    eval_operand(&command[0], scope)
}

fn eval_operand(op: &Operand, scope: &dyn Scope) -> Result<Val, RenderError> {
    match op {
        // As in Go, a function named as an argument is called without arguments.
        Operand::Func(name) => scope.function(name, Vec::new()),
        Operand::Field(path) if path.is_empty() => Err(syntax("`.` alone has no value here")),
        Operand::Field(path) => scope.field(path),
        Operand::Str(s) => Ok(Val::Str(s.clone())),
        Operand::Int(n) => Ok(Val::Int(*n)),
        Operand::Sub(p) => eval_pipeline(p, scope),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_user(name: &str) -> Result<String, RenderError> {
        match name {
            "app" => Ok("web".into()),
            "tricky" => Ok("{{ .BuildRegion }}".into()),
            _ => Err(RenderError::UndefinedVariable {
                name: name.into(),
                suggestion: None,
            }),
        }
    }

    fn scope(in_variables: bool) -> LoadScope<'static> {
        LoadScope {
            user: &no_user,
            in_variables,
            build: Some(("web", "osc-bsu")),
            now: time::macros::datetime!(2024-03-05 07:08:09.123 UTC),
            template_dir: Path::new("/templates"),
        }
    }

    fn r(text: &str) -> Result<String, RenderError> {
        render(text, &scope(false), Late::Evaluate)
    }

    #[test]
    fn functions() {
        let cases = [
            ("plain", "plain"),
            ("{{user `app`}}-{{ user \"app\" }}", "web-web"),
            ("{{timestamp}}", "1709622489"),
            ("{{isotime}}", "2024-03-05T07:08:09Z"),
            ("{{ isotime \"2006-01-02 15h04\" }}", "2024-03-05 07h08"),
            ("{{build_name}}/{{ build_type }}", "web/osc-bsu"),
            ("{{ clean_resource_name `a:b*c (d)` }}", "a-b-c (d)"),
            ("{{ clean_omi_name \"x{y}\" }}", "x-y-"),
            ("{{ timestamp | clean_resource_name }}", "1709622489"),
            ("{{ isotime `15:04` | clean_omi_name }}", "07-08"),
            ("{{ clean_resource_name (user `app`) }}", "web"),
            ("{{ upper `ab` }}{{ \"CD\" | lower }}", "ABcd"),
            ("{{ replace_all `-` `_` `a-b-c` }}", "a_b_c"),
            ("{{ `a-b-c` | replace `-` `_` 1 }}", "a_b-c"),
            ("{{ split `a,b,c` `,` 1 }}", "b"),
            ("{{template_dir}}", "/templates"),
            ("a  {{- `b` -}}  c", "abc"),
            ("}} stays", "}} stays"),
        ];
        for (input, want) in cases {
            assert_eq!(r(input).as_deref(), Ok(want), "{input}");
        }
        assert_eq!(r("{{uuid}}").unwrap().len(), 36);
    }

    #[test]
    fn errors() {
        let cases = [
            ("{{ nope }}", "unknown function `nope`"),
            ("{{ timestmp }}", "did you mean `timestamp`?"),
            ("{{ vault `a` `b` }}", "not supported by osci"),
            ("{{ user `x` }}", "undefined variable `x`"),
            (
                "{{ env `HOME` }}",
                "only allowed in the default values of `variables`",
            ),
            ("{{ .BuildRegion }}", "only rendered in tags"),
            ("{{ .Nope }}", "unknown build variable `.Nope`"),
            ("{{ user }}", "takes 1 argument"),
            ("{{ timestamp", "unclosed action"),
            ("{{ `x` `y` }}", "only a function can take arguments"),
            ("{{ }}", "missing value"),
            ("{{ split `a` `,` 3 }}", "out of range"),
            ("{{ build `ID` }}", "only available in provisioners"),
        ];
        for (input, want) in cases {
            let e = r(input).expect_err(input).to_string();
            assert!(e.contains(want), "{input}: {e}");
        }
    }

    #[test]
    fn env_in_variables() {
        // SAFETY: tests in this module do not read this variable concurrently.
        unsafe { std::env::set_var("OSCI_TEMPLATE_TEST", "from-env") };
        let got = render("{{env `OSCI_TEMPLATE_TEST`}}", &scope(true), Late::Evaluate);
        assert_eq!(got.as_deref(), Ok("from-env"));
    }

    #[test]
    fn build_vars_are_kept_then_rendered() {
        let s = scope(false);
        let text = "{{user `app`}} from {{ .SourceOMIName | clean_resource_name }} in {{.BuildRegion}} ({{ .SourceOMITags.os }}{{ index .SourceOMITags `no-such` }})";
        let kept = render(text, &s, Late::BuildVars).unwrap();
        assert_eq!(
            kept,
            "web from {{ .SourceOMIName | clean_resource_name }} in {{.BuildRegion}} ({{ .SourceOMITags.os }}{{ index .SourceOMITags `no-such` }})"
        );
        let vars = BuildVars {
            build_region: "eu-west-2".into(),
            source_omi: "ami-12345678".into(),
            source_omi_name: "Ubuntu:22.04".into(),
            source_omi_tags: [("os".to_string(), "linux".to_string())].into(),
            ..Default::default()
        };
        assert_eq!(
            render_build_vars(&kept, &vars).as_deref(),
            Ok("web from Ubuntu-22.04 in eu-west-2 (linux)")
        );
        // A value that looks like an action stays a value.
        let kept = render("{{user `tricky`}}", &s, Late::BuildVars).unwrap();
        assert_eq!(
            render_build_vars(&kept, &vars).as_deref(),
            Ok("{{ .BuildRegion }}")
        );
        for (bad, want) in [
            ("{{ .BuildRegon }}", "did you mean `BuildRegion`?"),
            ("{{ .SourceOMI | user }}", "cannot be used at build time"),
        ] {
            let e = render(bad, &s, Late::BuildVars).unwrap_err().to_string();
            assert!(e.contains(want), "{bad}: {e}");
        }
        let e = render_build_vars("{{ .Nope }}", &vars).unwrap_err();
        assert!(e.contains("unknown build variable `.Nope`"), "{e}");
        let e = render_build_vars("{{ .SourceOMITags }}", &vars).unwrap_err();
        assert!(e.contains("needs a tag name"), "{e}");
    }

    #[test]
    fn provisioner_actions_are_kept() {
        let text = "{{ .Vars }} sudo -E sh '{{ .Path }}' {{ build `ID` }} {{user `app`}}";
        assert_eq!(
            render(text, &scope(false), Late::Provisioner).unwrap(),
            "{{ .Vars }} sudo -E sh '{{ .Path }}' {{ build `ID` }} web"
        );
    }
}
