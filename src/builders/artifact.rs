//! What every builder shares around its own nodes: the build's work (its
//! provisioners and post-processors, and what they read), the run its
//! steps share, the build variables; and what follows an OMI, whatever
//! made it: who may launch it and create volumes from its snapshots, its
//! tags, then the post-processors.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::Declare;
use super::steps::permissions::{self, Of};
use super::steps::{BuildRun, post_process, tags};
use crate::graph::{Digest, Graph, Kind, NodeIndex};
use crate::oapi::model::Image;
use crate::secret::Secret;
use crate::template::{Build, BuildVars, OmiConfig, PostProcessor, Provisioner, render_build_vars};

/// A build's work besides its builder's options.
pub struct Work {
    pub name: String,
    /// As written, e.g. `osc-bsu`.
    pub builder_type: String,
    /// Scripts and uploads are read from here.
    pub template_dir: PathBuf,
    pub provisioners: Vec<Provisioner>,
    /// What the provisioners read from the local disk, for the digest.
    pub inputs: Vec<(String, Vec<u8>)>,
    pub post_processors: Vec<PostProcessor>,
    /// What the post-processors read from the local disk, for their digest.
    pub post_inputs: Vec<(String, Vec<u8>)>,
    /// Values never shown: sensitive variables and passwords.
    pub sensitive: Vec<Secret>,
}

impl Work {
    /// Reads what the provisioners and post-processors of `build` upload
    /// or run.
    pub fn of(build: &Build, sensitive: Vec<Secret>) -> Result<Work, String> {
        let dir = &build.template_dir;
        Ok(Work {
            name: build.name.clone(),
            builder_type: build.builder_type.clone(),
            template_dir: dir.clone(),
            inputs: crate::provision::inputs(&build.provisioners, dir)
                .map_err(|e| e.to_string())?,
            provisioners: build.provisioners.clone(),
            post_inputs: crate::postprocess::inputs(&build.post_processors, dir)
                .map_err(|e| e.to_string())?,
            post_processors: build.post_processors.clone(),
            sensitive,
        })
    }

    /// A build's digest: its builder's `options`, its source, its
    /// provisioners and the bytes of the files they read.
    pub fn digest(&self, options: &Value, source: Option<&Image>) -> String {
        let provisioners: Vec<Value> = self
            .provisioners
            .iter()
            .map(|p| json!({"type": p.kind, "config": p.config}))
            .collect();
        let mut digest = Digest::new();
        digest
            .json("options", options)
            .part(
                "source_omi",
                source.map_or("", |s| s.image_id.as_str()).as_bytes(),
            )
            .json("provisioners", &Value::Array(provisioners));
        for (name, bytes) in &self.inputs {
            digest.part(&format!("file {name}"), bytes);
        }
        digest.finish()
    }

    /// What the build's steps share.
    pub fn run(&self, input: &Declare<'_>, digest: String, vars: BuildVars) -> Arc<BuildRun> {
        Arc::new(BuildRun {
            name: self.name.clone(),
            cloud: Arc::clone(input.cloud),
            outputs: Default::default(),
            refreshed: Arc::clone(input.refreshed),
            digest,
            vars,
            sensitive: self.sensitive.clone(),
            deregistered: Mutex::new(Vec::new()),
        })
    }
}

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
        source_omi_info: source
            .map(|s| {
                [
                    ("creation_date", s.creation_date.clone()),
                    ("owner", Some(s.account_id.clone())),
                    ("owner_name", s.account_alias.clone()),
                    ("root_device_name", s.root_device_name.clone()),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.unwrap_or_default()))
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

/// Declares the settings of the OMI at `image` (whose own snapshots are
/// `own_snapshots`) and the post-processors after them.
pub fn declare(
    run: &Arc<BuildRun>,
    graph: &mut Graph,
    image: NodeIndex,
    own_snapshots: &[NodeIndex],
    omi: &OmiConfig,
    work: &Work,
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
    if !work.post_processors.is_empty() {
        let node = post_process::node(
            run,
            &image_address,
            &work.builder_type,
            work.post_processors.clone(),
            &work.post_inputs,
            work.template_dir.clone(),
        );
        let post = add(graph, node)?;
        for before in done {
            graph.needs(post, before);
        }
    }
    Ok(())
}
