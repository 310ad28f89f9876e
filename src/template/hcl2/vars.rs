//! `variable` blocks and their values, and `locals`.
//!
//! A variable's value comes, later sources winning, from its `default`,
//! `PKR_VAR_name` in the environment, the `*.auto.pkrvars.hcl` files beside
//! the template (in name order), `-var-file` files, then `-var` flags, as
//! in Packer. It is converted to its `type`, checked by its `validation`
//! blocks, and, when `sensitive`, masked wherever osci shows it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hcl::Value;

use super::eval::{Scope, references};
use super::syntax::{self, Attr, Block, Body, Pos};
use super::types::Type;
use crate::template::interpolate::suggest;
use crate::template::{Given as CmdLine, LoadOptions, TemplateError};

const VARIABLE_KEYS: &[&str] = &["type", "default", "description", "sensitive", "nullable"];

/// A declared variable.
struct Declared {
    name: String,
    block: Block,
    kind: Type,
    sensitive: bool,
    nullable: bool,
}

/// Where a value came from, for messages.
enum Source {
    Default,
    Environment,
    File(Pos),
    Flag,
}

/// The variables' values, and the strings to mask.
pub(crate) struct Variables {
    pub values: hcl::Map<String, Value>,
    pub sensitive: Vec<String>,
}

/// What `-var`, `-var-file` and the environment give.
pub(crate) struct Given<'a> {
    /// `-var` and `-var-file`, and the order they came in.
    pub options: &'a LoadOptions,
    /// `*.auto.pkrvars.hcl` and `*.auto.pkrvars.json` beside the template.
    pub auto_files: &'a [PathBuf],
    pub environment: &'a [(String, String)],
    /// The template, named in errors about flags.
    pub template: &'a Path,
}

pub(crate) fn resolve(blocks: &[&Block], given: &Given) -> Result<Variables, TemplateError> {
    let mut declared: Vec<Declared> = Vec::new();
    for block in blocks {
        let name = block.labels.first().cloned().unwrap_or_default();
        let describe = Some(block.describe());
        if block.labels.len() != 1 || !valid_name(&name) {
            return Err(block.at.error(
                describe,
                None,
                "a variable block has one label, its name (letters, digits, `_` and `-`)",
            ));
        }
        if let Some(other) = declared.iter().find(|d| d.name == name) {
            return Err(block.at.error(
                describe,
                None,
                format!(
                    "variable {name:?} is declared twice (first at {}:{})",
                    other.block.at.file.display(),
                    other.block.at.line
                ),
            ));
        }
        check_keys(
            &block.body,
            VARIABLE_KEYS,
            &["validation"],
            &block.describe(),
        )?;
        let flag = |key: &str| -> Result<bool, TemplateError> {
            match block.body.attribute(key) {
                None => Ok(key == "nullable"),
                Some(a) => match Scope::new(false).attr(a) {
                    Ok(Value::Bool(b)) => Ok(b),
                    Ok(_) => {
                        Err(a
                            .at
                            .error(Some(block.describe()), Some(key), "expected true or false"))
                    }
                    Err(e) => Err(a.at.error(Some(block.describe()), Some(key), e)),
                },
            }
        };
        let kind = match block.body.attribute("type") {
            None => Type::Any,
            Some(a) => Type::parse(&a.expr)
                .map_err(|e| a.at.error(Some(block.describe()), Some("type"), e))?,
        };
        declared.push(Declared {
            sensitive: flag("sensitive")?,
            nullable: flag("nullable")?,
            name,
            block: (*block).clone(),
            kind,
        });
    }

    let mut values: BTreeMap<String, (Value, Source)> = BTreeMap::new();
    for d in &declared {
        if let Some(a) = d.block.body.attribute("default") {
            // `env` is allowed here only, as in Packer.
            let v = Scope::new(true)
                .attr(a)
                .map_err(|e| a.at.error(Some(d.block.describe()), Some("default"), e))?;
            values.insert(d.name.clone(), (v, Source::Default));
        }
    }
    for (key, raw) in given.environment {
        if let Some(name) = key.strip_prefix("PKR_VAR_")
            && let Some(d) = declared.iter().find(|d| d.name == name)
        {
            let v = from_text(raw, &d.kind)
                .map_err(|e| flag_error(given.template, &format!("PKR_VAR_{name}: {e}")))?;
            values.insert(d.name.clone(), (v, Source::Environment));
        }
    }
    let options = given.options;
    let order: Vec<CmdLine> = if options.order.is_empty() {
        // No order said: the files, then the flags.
        (0..options.var_files.len())
            .map(CmdLine::File)
            .chain((0..options.vars.len()).map(CmdLine::Var))
            .collect()
    } else {
        options.order.clone()
    };
    let assign_file = |file: &Path,
                       values: &mut BTreeMap<String, (Value, Source)>|
     -> Result<(), TemplateError> {
        for attr in var_file(file)? {
            if !declared.iter().any(|d| d.name == attr.name) {
                tracing::warn!(
                    "{}:{}: {} is not a variable of the template; ignored",
                    attr.at.file.display(),
                    attr.at.line,
                    attr.name
                );
                continue;
            }
            let v = Scope::new(false)
                .attr(&attr)
                .map_err(|e| attr.at.error(None, Some(&attr.name), e))?;
            values.insert(attr.name.clone(), (v, Source::File(attr.at.clone())));
        }
        Ok(())
    };
    for file in given.auto_files {
        assign_file(file, &mut values)?;
    }
    for given_now in order {
        let (name, raw) = match given_now {
            CmdLine::File(i) => {
                if let Some(file) = options.var_files.get(i) {
                    assign_file(file, &mut values)?;
                }
                continue;
            }
            CmdLine::Var(i) => match options.vars.get(i) {
                Some((name, raw)) => (name, raw),
                None => continue,
            },
        };
        let Some(d) = declared.iter().find(|d| &d.name == name) else {
            let names: Vec<&str> = declared.iter().map(|d| d.name.as_str()).collect();
            let hint = match suggest(name, names.iter().copied()) {
                Some(s) => format!("; did you mean `{s}`?"),
                None => String::new(),
            };
            return Err(flag_error(
                given.template,
                &format!("-var {name}: not a variable of the template{hint}"),
            ));
        };
        let v = from_text(raw, &d.kind).map_err(|e| {
            let e = hide(d, &e, &[raw.as_str()]);
            flag_error(given.template, &format!("-var {name}: {e}"))
        })?;
        values.insert(name.clone(), (v, Source::Flag));
    }

    let mut out = Variables {
        values: hcl::Map::new(),
        sensitive: Vec::new(),
    };
    for d in &declared {
        let describe = Some(d.block.describe());
        let Some((value, source)) = values.remove(&d.name) else {
            return Err(d.block.at.error(
                describe,
                None,
                format!(
                    "variable {:?} has no value: give it a default, or set it with -var {}=…, a \
                     var file or PKR_VAR_{}",
                    d.name, d.name, d.name
                ),
            ));
        };
        let mut shown = Vec::new();
        strings(&value, &mut shown);
        let from = |message: String| -> TemplateError {
            let shown: Vec<&str> = shown.iter().map(String::as_str).collect();
            let message = hide(d, &message, &shown);
            match &source {
                Source::File(at) => at.error(None, Some(&d.name), message),
                Source::Default => d.block.at.error(describe.clone(), Some("default"), message),
                Source::Environment => {
                    flag_error(given.template, &format!("PKR_VAR_{}: {message}", d.name))
                }
                Source::Flag => flag_error(given.template, &format!("-var {}: {message}", d.name)),
            }
        };
        if value.is_null() && !d.nullable {
            return Err(from(format!("variable {:?} is not nullable", d.name)));
        }
        let value = d.kind.convert(value).map_err(from)?;
        validate(d, &value, &from)?;
        if d.sensitive {
            strings(&value, &mut out.sensitive);
        }
        out.values.insert(d.name.clone(), value);
    }
    Ok(out)
}

/// Runs the variable's `validation` blocks on its value.
fn validate(
    d: &Declared,
    value: &Value,
    from: &dyn Fn(String) -> TemplateError,
) -> Result<(), TemplateError> {
    for rule in d.block.body.blocks("validation") {
        let describe = Some(format!("{} validation", d.block.describe()));
        check_keys(
            &rule.body,
            &["condition", "error_message"],
            &[],
            &d.block.describe(),
        )?;
        let (Some(condition), Some(message)) = (
            rule.body.attribute("condition"),
            rule.body.attribute("error_message"),
        ) else {
            return Err(rule.at.error(
                describe,
                None,
                "a validation block has a condition and an error_message",
            ));
        };
        let message = match Scope::new(false).attr(message) {
            Ok(Value::String(s)) => s,
            Ok(_) | Err(_) => {
                return Err(message
                    .at
                    .error(describe, Some("error_message"), "expected a string"));
            }
        };
        let mut scope = Scope::new(false);
        let mut var = hcl::Map::new();
        var.insert(d.name.clone(), value.clone());
        scope.object("var", var);
        match scope.attr(condition) {
            Ok(Value::Bool(true)) => {}
            Ok(Value::Bool(false)) => {
                let shown = if d.sensitive {
                    "(sensitive)".to_string()
                } else {
                    value.to_string()
                };
                let mut e = from(format!("{message} (the value given: {shown})"));
                e.block = describe;
                return Err(e);
            }
            Ok(other) => {
                return Err(condition.at.error(
                    describe,
                    Some("condition"),
                    format!("the condition must be true or false, not {other}"),
                ));
            }
            Err(e) => return Err(condition.at.error(describe, Some("condition"), e)),
        }
    }
    Ok(())
}

/// A value given as text (`-var`, `PKR_VAR_`): a string variable takes it as
/// it is; others read it as an HCL expression (`["a", "b"]`, `3`).
fn from_text(raw: &str, kind: &Type) -> Result<Value, String> {
    if kind.is_primitive() || matches!(kind, Type::Any) && !looks_structured(raw) {
        return kind.convert(Value::String(raw.to_string()));
    }
    let expr = hcl_edit::parser::parse_expr(raw)
        .map_err(|e| format!("{raw:?} does not read as a value: {}", e.message()))?;
    Scope::new(false).eval(&expr)
}

fn looks_structured(raw: &str) -> bool {
    let t = raw.trim_start();
    t.starts_with('[') || t.starts_with('{')
}

/// The assignments of a var file (`NAME = value` lines, or a JSON object).
fn var_file(path: &Path) -> Result<Vec<Attr>, TemplateError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| TemplateError::of_file(path, format!("cannot read the var file: {e}")))?;
    let is_json = path.extension().is_some_and(|x| x == "json");
    let body = if is_json {
        syntax::parse_json(path, &text, false)?
    } else {
        syntax::parse_native(path, &text)?
    };
    if let Some(block) = body.blocks.first() {
        return Err(block.at.error(
            Some(block.describe()),
            None,
            "a var file holds assignments (`name = value`), not blocks",
        ));
    }
    Ok(body.attributes)
}

/// `message` with the values of a sensitive variable hidden.
fn hide(d: &Declared, message: &str, values: &[&str]) -> String {
    if d.sensitive {
        crate::secret::mask(message, values.iter().copied())
    } else {
        message.to_string()
    }
}

fn flag_error(template: &Path, message: &str) -> TemplateError {
    TemplateError::of_file(template, message)
}

/// The texts of a value to mask: its strings, and its numbers long enough
/// not to mask every small number of the output.
fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) if !s.is_empty() => out.push(s.clone()),
        Value::Number(n) if n.to_string().len() >= 4 => out.push(n.to_string()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(o) => o.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '-')
}

/// Refuses attributes and blocks a block does not have, suggesting the
/// closest.
pub(crate) fn check_keys(
    body: &Body,
    attributes: &[&str],
    blocks: &[&str],
    describe: &str,
) -> Result<(), TemplateError> {
    if let Some(a) = body
        .attributes
        .iter()
        .find(|a| !attributes.contains(&a.name.as_str()))
    {
        let hint = match suggest(&a.name, attributes.iter().copied()) {
            Some(s) => format!("; did you mean `{s}`?"),
            None => format!(" (it has {})", attributes.join(", ")),
        };
        return Err(a.at.error(
            Some(describe.to_string()),
            Some(&a.name),
            format!("unknown attribute{hint}"),
        ));
    }
    if let Some(b) = body
        .blocks
        .iter()
        .find(|b| !blocks.contains(&b.kind.as_str()))
    {
        let hint = match suggest(&b.kind, blocks.iter().copied()) {
            Some(s) => format!("; did you mean `{s}`?"),
            None if blocks.is_empty() => " (it has no blocks)".into(),
            None => format!(" (it has {})", blocks.join(", ")),
        };
        return Err(b.at.error(
            Some(describe.to_string()),
            None,
            format!("unknown block `{}`{hint}", b.kind),
        ));
    }
    Ok(())
}

/// A local value, as declared.
pub(crate) struct Local {
    pub name: String,
    pub attr: Attr,
    pub sensitive: bool,
}

/// The `locals` and `local` blocks' values, with those that must be masked.
pub(crate) fn locals(blocks: &[&Block]) -> Result<Vec<Local>, TemplateError> {
    let mut out: Vec<Local> = Vec::new();
    let mut push = |local: Local, at: &Pos| -> Result<(), TemplateError> {
        if out.iter().any(|l| l.name == local.name) {
            return Err(at.error(
                None,
                Some(&local.name),
                format!("local.{} is defined twice", local.name),
            ));
        }
        out.push(local);
        Ok(())
    };
    for block in blocks {
        match block.kind.as_str() {
            "locals" => {
                check_keys(
                    &Body {
                        attributes: Vec::new(),
                        ..block.body.clone()
                    },
                    &[],
                    &[],
                    "locals",
                )?;
                for a in &block.body.attributes {
                    push(
                        Local {
                            name: a.name.clone(),
                            attr: a.clone(),
                            sensitive: false,
                        },
                        &a.at,
                    )?;
                }
            }
            _ => {
                let describe = block.describe();
                check_keys(&block.body, &["expression", "sensitive"], &[], &describe)?;
                let Some(expression) = block.body.attribute("expression") else {
                    return Err(block.at.error(Some(describe), None, "required: expression"));
                };
                let sensitive = match block.body.attribute("sensitive") {
                    None => false,
                    Some(a) => matches!(Scope::new(false).attr(a), Ok(Value::Bool(true))),
                };
                push(
                    Local {
                        name: block.labels.first().cloned().unwrap_or_default(),
                        attr: Attr {
                            name: block.labels.first().cloned().unwrap_or_default(),
                            ..expression.clone()
                        },
                        sensitive,
                    },
                    &block.at,
                )?;
            }
        }
    }
    Ok(out)
}

/// Evaluates the locals in the order their references need, in `scope`
/// (which offers `var`, `path`, …); each becomes `local.NAME` as it is
/// known. A cycle is an error naming it.
pub(crate) fn evaluate_locals(
    locals: &[Local],
    scope: &mut Scope,
    sensitive: &mut Vec<String>,
) -> Result<(), TemplateError> {
    let names: Vec<&str> = locals.iter().map(|l| l.name.as_str()).collect();
    let needs = |l: &Local| -> Vec<String> {
        references(&l.attr.expr)
            .into_iter()
            .filter(|(root, _)| root == "local")
            .filter_map(|(_, a)| a)
            .filter(|a| names.contains(&a.as_str()))
            .collect()
    };
    let mut known = hcl::Map::new();
    // Declared names are offered from the start, so a misspelt one gets a
    // suggestion; their values come as they are evaluated.
    let offer = |known: &hcl::Map<String, Value>, scope: &mut Scope| {
        scope.object("local", known.clone());
        if let Some((_, names_offered)) = scope.roots.iter_mut().find(|(r, _)| *r == "local") {
            *names_offered = Some(names.iter().map(|n| n.to_string()).collect());
        }
    };
    offer(&known, scope);
    let mut left: Vec<&Local> = locals.iter().collect();
    while !left.is_empty() {
        let ready: Vec<&Local> = left
            .iter()
            .copied()
            .filter(|l| needs(l).iter().all(|n| known.contains_key(n)))
            .collect();
        if ready.is_empty() {
            let cycle = find_cycle(&left, &needs);
            let first = left.iter().find(|l| l.name == cycle[0]).unwrap_or(&left[0]);
            return Err(first.attr.at.error(
                Some("locals".into()),
                Some(&first.name),
                format!(
                    "local values refer to each other in a cycle: {}",
                    cycle.join(" → ")
                ),
            ));
        }
        for l in ready {
            let v = scope
                .attr(&l.attr)
                .map_err(|e| l.attr.at.error(Some("locals".into()), Some(&l.name), e))?;
            if l.sensitive {
                strings(&v, sensitive);
            }
            known.insert(l.name.clone(), v);
            left.retain(|o| o.name != l.name);
        }
        offer(&known, scope);
    }
    Ok(())
}

fn find_cycle(left: &[&Local], needs: &dyn Fn(&Local) -> Vec<String>) -> Vec<String> {
    let mut path = vec![left[0].name.clone()];
    loop {
        let current = left
            .iter()
            .find(|l| l.name == *path.last().expect("not empty"));
        let Some(next) = current.and_then(|l| {
            needs(l)
                .into_iter()
                .find(|n| left.iter().any(|o| &o.name == n))
        }) else {
            return path;
        };
        if let Some(i) = path.iter().position(|p| *p == next) {
            let mut cycle = path[i..].to_vec();
            cycle.push(next);
            return cycle;
        }
        path.push(next);
    }
}
