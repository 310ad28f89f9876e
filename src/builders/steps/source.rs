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
use crate::template::RunConfig;

/// The question one build asks.
#[derive(Debug, Clone, PartialEq)]
struct Query {
    filters: FiltersImage,
    most_recent: bool,
}

fn query(run: &RunConfig, account_id: &str) -> Result<Query, String> {
    let mut filters = FiltersImage::default();
    if let Some(id) = &run.source_omi {
        filters.image_ids = Some(vec![id.clone()]);
    }
    let mut most_recent = false;
    if let Some(f) = &run.source_omi_filter {
        most_recent = f.most_recent;
        for (key, value) in &f.filters {
            let v = Some(vec![value.clone()]);
            match key.as_str() {
                "account-alias" => filters.account_aliases = v,
                "account-id" => filters.account_ids = v,
                "architecture" => filters.architectures = v,
                "image-id" => filters.image_ids = v,
                "image-name" | "name" => filters.image_names = v,
                "virtualization-type" => filters.virtualization_types = v,
                "root-device-type" => filters.root_device_types = v,
                other => return Err(format!("source_omi_filter: unknown filter key `{other}`")),
            }
        }
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
        if !ids.is_empty() {
            filters.account_ids = Some(ids);
        }
        if !aliases.is_empty() {
            filters.account_aliases = Some(aliases);
        }
    }
    Ok(Query {
        filters,
        most_recent,
    })
}

/// The source OMI of each build (in order), or why there is none. Builds
/// asking the same question share its answer.
pub async fn resolve(
    cloud: &Cloud,
    runs: &[&RunConfig],
) -> Result<Vec<Result<Image, String>>, Error> {
    let queries: Vec<Result<Query, String>> =
        runs.iter().map(|r| query(r, &cloud.account_id)).collect();
    let mut answers: BTreeMap<String, Vec<Image>> = BTreeMap::new();
    for q in queries.iter().flatten() {
        let key = serde_json::to_string(&q.filters).expect("filters serialise");
        if answers.contains_key(&key) {
            continue;
        }
        let mut images = cloud
            .client
            .read_all(&ReadImagesRequest {
                filters: Some(q.filters.clone()),
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
            let key = serde_json::to_string(&q.filters).expect("filters serialise");
            pick(answers[&key].clone(), q.most_recent)
        })
        .collect())
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
                .map(|i| i.image_id.as_str())
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
