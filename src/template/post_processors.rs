//! The `post-processors` section, as Packer reads it: each item is a type
//! name (`"manifest"`), an object, or an array of objects run one after the
//! other on the build's artifact. Items choose their builds with
//! `only`/`except`, as provisioners do; their own options are checked by
//! [`crate::postprocess`].

use serde_json::{Map, Value};

use super::error::{KeyPath, Problem, Site, TemplateError};
use super::provisioners::{self, Entry};

/// One post-processor, where it is in the template.
pub(crate) struct Item {
    pub at: KeyPath,
    pub entry: Entry,
}

pub(crate) fn parse(
    section: Option<&Value>,
    builds: &[String],
    site: &Site,
) -> Result<Vec<Item>, TemplateError> {
    let base = KeyPath::of("post-processors");
    let items = match section {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => {
            let problem = Problem::Invalid(
                "must be an array of post-processors (type names, objects or arrays of objects)"
                    .into(),
            );
            return Err(site.error(&base, problem));
        }
    };
    let mut flat = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = base.index(i);
        match item {
            Value::Array(chain) => {
                for (j, link) in chain.iter().enumerate() {
                    flat.push((at.index(j), link));
                }
            }
            other => flat.push((at, other)),
        }
    }
    flat.into_iter()
        .map(|(at, item)| {
            let config = match item {
                Value::String(kind) => {
                    Map::from_iter([("type".to_string(), Value::String(kind.clone()))])
                }
                Value::Object(config) => config.clone(),
                _ => {
                    let problem = Problem::Invalid(
                        "a post-processor is a type name or an object with a `type`".into(),
                    );
                    return Err(site.error(&at, problem));
                }
            };
            if config.contains_key("override") {
                let problem = Problem::Invalid(
                    "post-processors take no `override`: give each build its own post-processor \
                     with `only`"
                        .into(),
                );
                return Err(site.error(&at.key("override"), problem));
            }
            let entry = provisioners::entry(config, builds, &at)
                .map_err(|(key, problem)| site.error(&key, problem))?;
            Ok(Item { at, entry })
        })
        .collect()
}
