//! User variables: the template's `variables` defaults, overridden by
//! `-var-file` files, overridden by `-var` flags (later ones win within each
//! kind). Values are rendered as Packer renders them, where `env` is allowed
//! and variables may use each other.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use time::OffsetDateTime;

use super::LoadOptions;
use super::error::{KeyPath, Problem, Site, TemplateError, did_you_mean};
use super::interpolate::{Late, LoadScope, RenderError, render, suggest};
use super::json;
use crate::oapi::Secret;

/// The rendered value of every variable.
pub(crate) struct Variables(BTreeMap<String, String>);

impl Variables {
    /// `{{user `name`}}` outside the `variables` section.
    pub fn get(&self, name: &str) -> Result<String, RenderError> {
        self.0
            .get(name)
            .cloned()
            .ok_or_else(|| undefined(name, self.0.keys()))
    }

    /// The values of the variables named in `sensitive-variables`, non-empty ones.
    pub fn values_of(&self, names: &[String]) -> Vec<Secret> {
        names
            .iter()
            .filter_map(|n| self.0.get(n))
            .filter(|v| !v.is_empty())
            .map(|v| Secret::new(v.as_str()))
            .collect()
    }
}

fn undefined<'a>(name: &str, known: impl Iterator<Item = &'a String>) -> RenderError {
    RenderError::UndefinedVariable {
        name: name.to_string(),
        suggestion: suggest(name, known.map(String::as_str)),
    }
}

/// Where a variable's value was given.
enum Origin {
    Template,
    VarFile {
        file: PathBuf,
        position: Option<(usize, usize)>,
    },
    Flag,
}

struct Definition {
    /// `None`: declared with a `null` default, so it must be given.
    value: Option<String>,
    origin: Origin,
}

/// Reads and renders every variable; `site` is the template's root.
pub(crate) fn resolve(
    section: Option<&Value>,
    options: &LoadOptions,
    site: &Site,
    now: OffsetDateTime,
    template_dir: &Path,
) -> Result<Variables, TemplateError> {
    let mut defs = BTreeMap::new();
    let base = KeyPath::of("variables");
    match section {
        None | Some(Value::Null) => {}
        Some(Value::Object(vars)) => {
            for (name, value) in vars {
                let value = match value {
                    Value::Null => None,
                    other => Some(scalar(other).ok_or_else(|| {
                        site.error(
                            &base.key(name),
                            Problem::Invalid(
                                "a variable's default must be a string, a number, a boolean \
                                 or null (required)"
                                    .into(),
                            ),
                        )
                    })?),
                };
                let origin = Origin::Template;
                defs.insert(name.clone(), Definition { value, origin });
            }
        }
        Some(_) => {
            return Err(site.error(
                &base,
                Problem::Invalid("must be an object of variable names to default values".into()),
            ));
        }
    }

    for file in &options.var_files {
        let values = read_var_file(file, &defs)?;
        defs.extend(values);
    }
    for (name, value) in &options.vars {
        if !defs.contains_key(name) {
            return Err(flag_error(site.file, name, not_a_variable(name, &defs)));
        }
        let value = Some(value.clone());
        defs.insert(
            name.clone(),
            Definition {
                value,
                origin: Origin::Flag,
            },
        );
    }

    let resolver = Resolver {
        defs: &defs,
        done: RefCell::default(),
        stack: RefCell::default(),
        now,
        template_dir,
    };
    for (name, def) in &defs {
        resolver.get(name).map_err(|e| {
            // The failure is reported at the variable, so naming it again is noise.
            let e = match e {
                RenderError::InVariable { name: n, source } if &n == name => *source,
                other => other,
            };
            match &def.origin {
                Origin::Template => site.error(&base.key(name), e),
                Origin::VarFile { file, position } => TemplateError {
                    file: file.clone(),
                    block: None,
                    build: None,
                    key: Some(name.clone()),
                    line: position.map(|p| p.0),
                    column: position.map(|p| p.1),
                    message: e.to_string(),
                },
                Origin::Flag => flag_error(site.file, name, e.to_string()),
            }
        })?;
    }
    Ok(Variables(resolver.done.into_inner()))
}

/// A problem with `-var NAME=…`, which has no place in a file.
fn flag_error(template: &Path, name: &str, message: String) -> TemplateError {
    TemplateError::of_file(template, format!("-var {name}: {message}"))
}

fn not_a_variable(name: &str, defs: &BTreeMap<String, Definition>) -> String {
    let suggestion = suggest(name, defs.keys().map(String::as_str));
    format!(
        "not a variable of the template{}",
        did_you_mean(suggestion.as_deref())
    )
}

/// A variable value as a string, as Packer decodes it.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A `-var-file`: a JSON object of variable names to values.
fn read_var_file(
    file: &Path,
    defs: &BTreeMap<String, Definition>,
) -> Result<Vec<(String, Definition)>, TemplateError> {
    let error =
        |key: Option<String>, position: Option<(usize, usize)>, problem: Problem| TemplateError {
            file: file.to_path_buf(),
            block: None,
            build: None,
            key,
            line: position.map(|p| p.0),
            column: position.map(|p| p.1),
            message: problem.to_string(),
        };
    let text = std::fs::read_to_string(file).map_err(|e| {
        let path = PathBuf::from(file);
        error(None, None, Problem::Io { path, error: e })
    })?;
    let (value, positions) = json::parse(&text).map_err(|e| {
        let key = (!e.path.is_empty()).then(|| KeyPath(e.path.clone()).to_string());
        error(key, e.position, e.problem)
    })?;
    let site = Site {
        file,
        positions: &positions,
        base: KeyPath::root(),
        build: None,
    };
    let Value::Object(vars) = value else {
        let message = "a -var-file must hold a JSON object of variable names to values";
        return Err(site.error(&KeyPath::root(), Problem::Invalid(message.into())));
    };
    vars.into_iter()
        .map(|(name, value)| {
            let key = KeyPath::of(&name);
            if !defs.contains_key(&name) {
                let message = not_a_variable(&name, defs);
                return Err(site.error(&key, Problem::Invalid(message)));
            }
            let value = scalar(&value).ok_or_else(|| {
                let message = "a variable's value must be a string, a number or a boolean";
                site.error(&key, Problem::Invalid(message.into()))
            })?;
            let origin = Origin::VarFile {
                file: file.to_path_buf(),
                position: positions.find(&key.0).map(|p| (p.line, p.column)),
            };
            let value = Some(value);
            Ok((name, Definition { value, origin }))
        })
        .collect()
}

/// Renders variables on demand, so that they may use each other in any order.
struct Resolver<'a> {
    defs: &'a BTreeMap<String, Definition>,
    done: RefCell<BTreeMap<String, String>>,
    stack: RefCell<Vec<String>>,
    now: OffsetDateTime,
    template_dir: &'a Path,
}

impl Resolver<'_> {
    fn get(&self, name: &str) -> Result<String, RenderError> {
        if let Some(value) = self.done.borrow().get(name) {
            return Ok(value.clone());
        }
        let def = self
            .defs
            .get(name)
            .ok_or_else(|| undefined(name, self.defs.keys()))?;
        if self.stack.borrow().iter().any(|n| n == name) {
            let mut cycle = self.stack.borrow().clone();
            cycle.push(name.to_string());
            return Err(RenderError::VariableCycle(cycle.join(" → ")));
        }
        let raw = def
            .value
            .as_ref()
            .ok_or_else(|| RenderError::RequiredVariable(name.to_string()))?;
        self.stack.borrow_mut().push(name.to_string());
        let user = |n: &str| self.get(n);
        let scope = LoadScope {
            user: &user,
            in_variables: true,
            build: None,
            now: self.now,
            template_dir: self.template_dir,
        };
        let rendered = render(raw, &scope, Late::Evaluate);
        self.stack.borrow_mut().pop();
        let value = rendered.map_err(|e| match e {
            cycle @ RenderError::VariableCycle(_) => cycle,
            other => RenderError::InVariable {
                name: name.to_string(),
                source: Box::new(other),
            },
        })?;
        self.done
            .borrow_mut()
            .insert(name.to_string(), value.clone());
        Ok(value)
    }
}
