//! What every builder that registers an OMI declares after it, whatever
//! made it: who may launch the OMI and create volumes from its snapshots,
//! its tags, then the post-processors; and the build variables the OMI's
//! options are rendered with.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

use super::steps::permissions::{self, Of};
use super::steps::{BuildRun, post_process, tags};
use crate::graph::{Graph, Kind, NodeIndex};
use crate::oapi::model::Image;
use crate::template::{BuildVars, OmiConfig, PostProcessor, render_build_vars};

/// The build variables of a build from `source` (none from scratch).
pub fn build_vars(source: Option<&Image>, region: &str) -> BuildVars {
    BuildVars {
        build_region: region.to_string(),
        source_omi: source.map(|s| s.image_id.clone()).unwrap_or_default(),
        source_omi_name: source.map(|s| s.image_name.clone()).unwrap_or_default(),
        source_omi_tags: source
            .map(|s| {
                s.tags
                    .iter()
                    .map(|t| (t.key.clone(), t.value.clone()))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// `map` with the build variables rendered in keys and values.
pub fn render(
    map: &BTreeMap<String, String>,
    vars: &BuildVars,
) -> Result<BTreeMap<String, String>, String> {
    map.iter()
        .map(|(k, v)| Ok((render_build_vars(k, vars)?, render_build_vars(v, vars)?)))
        .collect()
}

/// `product_codes` and `omi_product_codes` (inert in the plugin) alike.
pub fn product_codes(omi: &OmiConfig) -> Option<Vec<String>> {
    let codes: BTreeSet<&String> = omi
        .product_codes
        .iter()
        .chain(&omi.omi_product_codes)
        .collect();
    (!codes.is_empty()).then(|| codes.into_iter().cloned().collect())
}

/// Who may launch the OMI: `omi_groups: ["all"]` (inert in the plugin) is
/// `global_permission`.
fn image_permissions(omi: &OmiConfig) -> BTreeMap<String, Value> {
    let ids: BTreeSet<String> = omi.omi_account_ids.iter().cloned().collect();
    let global = omi.global_permission || omi.omi_groups.iter().any(|g| g == "all");
    permissions::desired(&ids, global)
}

/// Snapshots are shared with `snapshot_account_ids` and `snapshot_users`
/// (which the plugin ignored or rejected), and with the OMI's accounts, who
/// need them to copy it; `snapshot_groups: ["all"]` makes them public.
fn snapshot_permissions(omi: &OmiConfig) -> BTreeMap<String, Value> {
    let ids: BTreeSet<String> = omi
        .snapshot_account_ids
        .iter()
        .chain(&omi.snapshot_users)
        .chain(&omi.omi_account_ids)
        .cloned()
        .collect();
    let global = omi.snapshot_groups.iter().any(|g| g == "all");
    permissions::desired(&ids, global)
}

/// The post-processors of a build, and what they read.
pub struct PostProcessing<'a> {
    pub builder_type: &'a str,
    pub post_processors: &'a [PostProcessor],
    pub inputs: &'a [(String, Vec<u8>)],
    pub template_dir: &'a PathBuf,
}

/// Declares the settings of the OMI at `image` (whose own snapshots are
/// `own_snapshots`) and the post-processors after them.
pub fn declare(
    run: &Arc<BuildRun>,
    graph: &mut Graph,
    image: NodeIndex,
    own_snapshots: &[NodeIndex],
    omi: &OmiConfig,
    post: PostProcessing<'_>,
) -> Result<(), String> {
    let add = |graph: &mut Graph, node| graph.add(node).map_err(|e| e.to_string());
    let image_address = graph.node(image).address.clone();
    let settings = [
        permissions::node(run, &image_address, Of::Image, image_permissions(omi)),
        permissions::node(
            run,
            &image_address,
            Of::Snapshots,
            snapshot_permissions(omi),
        ),
        tags::node(
            run,
            &image_address,
            render(&omi.tags, &run.vars)?,
            render(&omi.snapshot_tags, &run.vars)?,
        ),
    ];
    let mut done = vec![image];
    for node in settings {
        let setting = add(graph, node)?;
        graph.needs(setting, image);
        for s in own_snapshots {
            if graph.node(setting).kind != Kind::ImagePermissions {
                graph.needs(setting, *s);
            }
        }
        done.push(setting);
    }
    if !post.post_processors.is_empty() {
        let node = post_process::node(
            run,
            &image_address,
            post.builder_type,
            post.post_processors.to_vec(),
            post.inputs,
            post.template_dir.clone(),
        );
        let post = add(graph, node)?;
        for before in done {
            graph.needs(post, before);
        }
    }
    Ok(())
}
