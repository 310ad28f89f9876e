//! The `provisioners` section: which builds each provisioner applies to
//! (`only`/`except`) and its per-build `override`. The provisioners' own
//! options are theirs to check. Post-processors choose their builds the
//! same way.

use serde_json::{Map, Value};

use super::error::{KeyPath, Problem, Site, TemplateError, did_you_mean};
use super::interpolate::suggest;

/// One provisioner as written, before it is given to builds.
pub(crate) struct Entry {
    pub kind: String,
    /// Builds named in `only` (`None`: all builds).
    only: Option<Vec<String>>,
    except: Vec<String>,
    overrides: Map<String, Value>,
    config: Map<String, Value>,
}

impl Entry {
    pub fn applies_to(&self, build: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|only| only.iter().any(|b| b == build))
            && !self.except.iter().any(|b| b == build)
    }

    /// The options for `build`: the common ones, then the build's override
    /// on top, key by key, as Packer merges them.
    pub fn config_for(&self, build: &str) -> Map<String, Value> {
        let mut config = self.config.clone();
        if let Some(Value::Object(over)) = self.overrides.get(build) {
            config.extend(over.clone());
        }
        config
    }
}

pub(crate) fn parse(
    section: Option<&Value>,
    builds: &[String],
    site: &Site,
) -> Result<Vec<Entry>, TemplateError> {
    let base = KeyPath::of("provisioners");
    let items = match section {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => {
            let problem = Problem::Invalid("must be an array of provisioners".into());
            return Err(site.error(&base, problem));
        }
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let at = base.index(i);
            let Value::Object(item) = item else {
                let problem = Problem::Invalid("a provisioner is an object with a `type`".into());
                return Err(site.error(&at, problem));
            };
            entry(item.clone(), builds, &at).map_err(|(key, problem)| site.error(&key, problem))
        })
        .collect()
}

pub(crate) fn entry(
    mut config: Map<String, Value>,
    builds: &[String],
    at: &KeyPath,
) -> Result<Entry, (KeyPath, Problem)> {
    let kind = match config.remove("type") {
        Some(Value::String(kind)) if !kind.is_empty() => kind,
        None => {
            let what = "type, the kind of provisioner, e.g. \"shell\"";
            return Err((at.key("type"), Problem::Missing(what)));
        }
        Some(_) => {
            let problem = Problem::Invalid("expected a string such as \"shell\"".into());
            return Err((at.key("type"), problem));
        }
    };
    let only = config
        .remove("only")
        .map(|v| build_names(v, builds, &at.key("only")))
        .transpose()?;
    let except = config
        .remove("except")
        .map(|v| build_names(v, builds, &at.key("except")))
        .transpose()?
        .unwrap_or_default();
    if only.is_some() && !except.is_empty() {
        return Err((at.key("except"), Problem::Conflict("only")));
    }
    let overrides = match config.remove("override") {
        None => Map::new(),
        Some(Value::Object(overrides)) => {
            for (build, value) in &overrides {
                let key = at.key("override").key(build);
                known_build(build, builds).map_err(|p| (key.clone(), p))?;
                if !value.is_object() {
                    let problem = Problem::Invalid("expected an object of options".into());
                    return Err((key, problem));
                }
            }
            overrides
        }
        Some(_) => {
            let problem = Problem::Invalid("expected an object keyed by build name".into());
            return Err((at.key("override"), problem));
        }
    };
    Ok(Entry {
        kind,
        only,
        except,
        overrides,
        config,
    })
}

fn build_names(
    value: Value,
    builds: &[String],
    at: &KeyPath,
) -> Result<Vec<String>, (KeyPath, Problem)> {
    let Value::Array(items) = value else {
        return Err((
            at.clone(),
            Problem::Invalid("expected an array of build names".into()),
        ));
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let Value::String(name) = item else {
                let problem = Problem::Invalid("expected a build name".into());
                return Err((at.index(i), problem));
            };
            known_build(&name, builds).map_err(|p| (at.index(i), p))?;
            Ok(name)
        })
        .collect()
}

fn known_build(name: &str, builds: &[String]) -> Result<(), Problem> {
    if builds.iter().any(|b| b == name) {
        return Ok(());
    }
    let suggestion = suggest(name, builds.iter().map(String::as_str));
    Err(Problem::Invalid(format!(
        "no build is named `{name}`{} (builds: {})",
        did_you_mean(suggestion.as_deref()),
        builds.join(", ")
    )))
}
