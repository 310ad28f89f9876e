//! The source OMI (behaviour C3): `source_omi` and `source_omi_filter`
//! together narrow the search (the plugin dropped `source_omi` when filters
//! were set); owners split into account ids and aliases, `self` is this
//! account. Read at plan time for every build at once: builds that ask the
//! same question share one ReadImages.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;

use super::BuildRun;
use crate::builders::cloud::Cloud;
use crate::graph::{Action, Kind, Lifetime, Node, Nothing};
use crate::oapi::Error;
use crate::oapi::model::{FiltersImage, Image, ReadImagesRequest};
use crate::template::config::OMI_FILTER_NAMES;
use crate::template::{RunConfig, wildcard};

/// The question one build asks.
#[derive(Debug, Clone, PartialEq)]
struct Query {
    filters: FiltersImage,
    most_recent: bool,
    /// Owners given both as account ids and as aliases: an image of any
    /// of them (the API would want both at once).
    any_owner: Option<(Vec<String>, Vec<String>)>,
}

fn query(run: &RunConfig, account_id: &str) -> Result<Query, String> {
    let mut filters = FiltersImage::default();
    if let Some(id) = &run.source_omi {
        filters.image_ids = Some(vec![id.clone()]);
    }
    let mut most_recent = false;
    let mut any_owner = None;
    if let Some(f) = &run.source_omi_filter {
        most_recent = f.most_recent;
        let mut fields = serde_json::Map::new();
        if let Some(id) = &run.source_omi {
            fields.insert("ImageIds".into(), json!([id]));
        }
        for (key, value) in &f.filters {
            let key = if key == "name" { "image-name" } else { key };
            let Some((_, field)) = OMI_FILTER_NAMES.iter().find(|(name, _)| *name == key) else {
                return Err(format!("source_omi_filter: unknown filter key `{key}`"));
            };
            let one = if field.ends_with("Permission")
                || field.ends_with("Deletion")
                || matches!(*field, "SecureBoot" | "TpmMandatory")
            {
                match value.as_str() {
                    "true" => json!(true),
                    "false" => json!(false),
                    _ => {
                        return Err(format!(
                            "source_omi_filter: `{key}` is true or false, not `{value}`"
                        ));
                    }
                }
            } else if *field == "BlockDeviceMappingVolumeSizes" {
                let size: i64 = value.parse().map_err(|_| {
                    format!("source_omi_filter: `{key}` is a size in GiB, not `{value}`")
                })?;
                json!([size])
            } else {
                json!([value])
            };
            fields.insert(field.to_string(), one);
        }
        filters = serde_json::from_value(serde_json::Value::Object(fields))
            .map_err(|e| format!("source_omi_filter: {e}"))?;
        let (ids, aliases): (Vec<String>, Vec<String>) = f
            .owners
            .iter()
            .map(|o| {
                if o == "self" {
                    account_id.to_string()
                } else {
                    o.clone()
                }
            })
            .partition(|o| o.bytes().all(|b| b.is_ascii_digit()));
        match (ids.is_empty(), aliases.is_empty()) {
            (false, false) => any_owner = Some((ids, aliases)),
            (false, true) => filters.account_ids = Some(ids),
            (true, false) => filters.account_aliases = Some(aliases),
            (true, true) => {}
        }
    }
    Ok(Query {
        filters,
        most_recent,
        any_owner,
    })
}

/// The source OMI of each build (in order), or why there is none. Builds
/// whose questions differ only in their values share one read, with the
/// values of every filter listed; each then keeps what its own filters
/// match.
pub async fn resolve(
    cloud: &Cloud,
    runs: &[&RunConfig],
) -> Result<Vec<Result<Image, String>>, Error> {
    let queries: Vec<Result<Query, String>> =
        runs.iter().map(|r| query(r, &cloud.account_id)).collect();
    // One read per shape of question (which filters it sets).
    let mut reads: BTreeMap<String, FiltersImage> = BTreeMap::new();
    for q in queries.iter().flatten() {
        reads
            .entry(shape(&q.filters))
            .and_modify(|merged| merge(merged, &q.filters))
            .or_insert_with(|| q.filters.clone());
    }
    let mut answers: BTreeMap<String, Vec<Image>> = BTreeMap::new();
    for (key, filters) in reads {
        let mut images = cloud
            .client
            .read_all(&ReadImagesRequest {
                filters: Some(filters),
                ..Default::default()
            })
            .await?;
        images.retain(|i| i.state == "available");
        answers.insert(key, images);
    }
    Ok(queries
        .into_iter()
        .map(|q| {
            let q = q?;
            let images = answers[&shape(&q.filters)]
                .iter()
                .filter(|i| matches(i, &q.filters))
                .filter(|i| {
                    q.any_owner.as_ref().is_none_or(|(ids, aliases)| {
                        ids.contains(&i.account_id)
                            || i.account_alias
                                .as_ref()
                                .is_some_and(|a| aliases.contains(a))
                    })
                })
                .cloned()
                .collect();
            pick(images, q.most_recent)
        })
        .collect())
}

/// Which filters a question sets; a question that sets one this module
/// does not check on a shared answer (virtualization types, which OUTSCALE
/// images do not show, tags, mappings…) is a shape of its own.
fn shape(f: &FiltersImage) -> String {
    let checked = FiltersImage {
        image_ids: f.image_ids.clone(),
        image_names: f.image_names.clone(),
        account_ids: f.account_ids.clone(),
        account_aliases: f.account_aliases.clone(),
        architectures: f.architectures.clone(),
        root_device_types: f.root_device_types.clone(),
        ..Default::default()
    };
    if checked != *f {
        return serde_json::to_string(f).expect("filters serialise");
    }
    let set = |v: &Option<Vec<String>>, name: &'static str| if v.is_some() { name } else { "" };
    [
        set(&f.image_ids, "ids,"),
        set(&f.image_names, "names,"),
        set(&f.account_ids, "accounts,"),
        set(&f.account_aliases, "aliases,"),
        set(&f.architectures, "architectures,"),
        set(&f.root_device_types, "root-device-types,"),
    ]
    .concat()
}

/// Adds the values of `more` to those of `into` (they have the same shape).
fn merge(into: &mut FiltersImage, more: &FiltersImage) {
    let add = |into: &mut Option<Vec<String>>, more: &Option<Vec<String>>| {
        if let (Some(into), Some(more)) = (into.as_mut(), more) {
            for v in more {
                if !into.contains(v) {
                    into.push(v.clone());
                }
            }
        }
    };
    add(&mut into.image_ids, &more.image_ids);
    add(&mut into.image_names, &more.image_names);
    add(&mut into.account_ids, &more.account_ids);
    add(&mut into.account_aliases, &more.account_aliases);
    add(&mut into.architectures, &more.architectures);
    add(&mut into.root_device_types, &more.root_device_types);
}

/// Whether `image` answers `f` as the API would: every filter set, any of
/// its values; names with `*` and `?` wildcards.
fn matches(image: &Image, f: &FiltersImage) -> bool {
    let any = |values: &Option<Vec<String>>, value: Option<&str>| {
        values
            .as_ref()
            .is_none_or(|vs| value.is_some_and(|v| vs.iter().any(|x| x == v)))
    };
    any(&f.image_ids, Some(&image.image_id))
        && f.image_names
            .as_ref()
            .is_none_or(|ps| ps.iter().any(|p| wildcard(p, &image.image_name)))
        && any(&f.account_ids, Some(&image.account_id))
        && any(&f.account_aliases, image.account_alias.as_deref())
        && any(&f.architectures, image.architecture.as_deref())
        && any(&f.root_device_types, image.root_device_type.as_deref())
}

fn pick(mut images: Vec<Image>, most_recent: bool) -> Result<Image, String> {
    match images.len() {
        0 => Err("no available source OMI matches source_omi / source_omi_filter".into()),
        1 => Ok(images.remove(0)),
        _ if most_recent => {
            images.sort_by(|a, b| {
                a.creation_date
                    .cmp(&b.creation_date)
                    .then(a.image_id.cmp(&b.image_id))
            });
            Ok(images.pop().expect("non-empty"))
        }
        n => Err(format!(
            "{n} source OMIs match ({}): narrow source_omi_filter or set most_recent",
            images
                .iter()
                .map(|i| format!(
                    "{} \"{}\" of {}",
                    i.image_id,
                    i.image_name,
                    i.creation_date.as_deref().unwrap_or("an unknown date")
                ))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// The node of the source a build starts from: read at plan time.
pub fn node(run: &Arc<BuildRun>, source: &Image) -> Node {
    let mut node = Node::new(
        &run.name,
        Kind::Source,
        None,
        Lifetime::Data,
        Arc::new(Nothing),
    )
    .with("name", Some(json!(source.image_name)));
    node.id = Some(source.image_id.clone());
    node.action = Some(Action::Read);
    node
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_of_one_shape_share_a_read_and_keep_their_own_answer() {
        let q = |name: &str| FiltersImage {
            image_names: Some(vec![name.to_string()]),
            account_aliases: Some(vec!["Outscale".into()]),
            ..Default::default()
        };
        let (ubuntu, debian) = (q("Ubuntu-*"), q("Debian-*"));
        assert_eq!(shape(&ubuntu), shape(&debian));
        let mut merged = ubuntu.clone();
        merge(&mut merged, &debian);
        assert_eq!(
            merged.image_names,
            Some(vec!["Ubuntu-*".to_string(), "Debian-*".to_string()])
        );
        let image = |name: &str| Image {
            image_name: name.into(),
            account_alias: Some("Outscale".into()),
            ..Default::default()
        };
        assert!(matches(&image("Ubuntu-22.04"), &ubuntu));
        assert!(!matches(&image("Ubuntu-22.04"), &debian));
        let by_id = FiltersImage {
            image_ids: Some(vec!["ami-1".into()]),
            ..Default::default()
        };
        assert_ne!(shape(&by_id), shape(&ubuntu));
    }
}
