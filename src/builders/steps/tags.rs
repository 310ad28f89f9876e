//! The tags of the OMI and its snapshots (`tags`, `snapshot_tags` over them
//! on the snapshots): put on a new OMI with its ownership tags in as few
//! calls as they allow, brought back in place on an existing one (tags no
//! longer wanted are removed).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::BuildRun;
use super::settings::{own_snapshots, record};
use crate::builders::cloud::{failed, to_tags, user_tags};
use crate::graph::{Address, Kind, Lifetime, Node, Run, Step, StepError};
use crate::oapi::model::{DeleteTagsRequest, Image, ResourceTag, Snapshot};

pub fn attributes(image: &Image, snapshots: &[&Snapshot]) -> BTreeMap<String, Value> {
    let snapshot_tags = snapshots
        .first()
        .map(|s| user_tags(&s.tags))
        .unwrap_or_default();
    BTreeMap::from([
        ("tags".to_string(), json!(user_tags(&image.tags))),
        ("snapshot_tags".to_string(), json!(snapshot_tags)),
    ])
}

struct Set {
    run: Arc<BuildRun>,
    image: Address,
    tags: BTreeMap<String, String>,
    snapshot_tags: BTreeMap<String, String>,
}

/// `tags` and `snapshot_tags` are rendered (build variables known).
pub fn node(
    run: &Arc<BuildRun>,
    image: &Address,
    tags: BTreeMap<String, String>,
    snapshot_tags: BTreeMap<String, String>,
) -> Node {
    let mut on_snapshots = tags.clone();
    on_snapshots.extend(snapshot_tags);
    let step = Set {
        run: Arc::clone(run),
        image: image.clone(),
        tags: tags.clone(),
        snapshot_tags: on_snapshots.clone(),
    };
    let mut node = Node::new(
        &run.name,
        Kind::Tags,
        None,
        Lifetime::Durable,
        Arc::new(step),
    )
    .with("snapshot_tags", Some(json!(on_snapshots)))
    .with("tags", Some(json!(tags)));
    node.digest = Some(run.digest.clone());
    node
}

#[async_trait]
impl Step for Set {
    async fn run(&self, run: &Run<'_>) -> Result<(), StepError> {
        let recorded = run.recorder.get(&self.image);
        let image = self.run.image(&self.image, recorded.as_ref())?;
        let cloud = &self.run.cloud;
        // What each resource has now: a new OMI and its snapshots have no
        // tags but osci's; the refresh read those of an existing one.
        let mut targets = vec![(image.image_id.clone(), &self.tags, user_tags(&image.tags))];
        for id in own_snapshots(run, &self.run, &image) {
            let have = self
                .run
                .refreshed
                .snapshots
                .get(&id)
                .map(|s| user_tags(&s.tags))
                .unwrap_or_default();
            targets.push((id, &self.snapshot_tags, have));
        }
        // Tags no longer wanted go, one call per resource that has any.
        for (id, want, have) in &targets {
            let stale: Vec<ResourceTag> = have
                .iter()
                .filter(|(k, _)| !want.contains_key(*k))
                .map(|(k, v)| ResourceTag::new(k, v))
                .collect();
            if !stale.is_empty() {
                cloud
                    .client
                    .call(&DeleteTagsRequest {
                        resource_ids: vec![id.clone()],
                        tags: stale,
                        ..Default::default()
                    })
                    .await
                    .map_err(failed)?;
            }
        }
        for (id, want, have) in &targets {
            let changed: BTreeMap<String, String> = want
                .iter()
                .filter(|(k, v)| have.get(*k) != Some(*v))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            cloud
                .tagger
                .add(&self.run.name, std::slice::from_ref(id), &to_tags(&changed));
        }
        cloud.tagger.flush(&self.run.name).await.map_err(failed)?;
        let attributes = BTreeMap::from([
            ("tags".to_string(), json!(self.tags)),
            ("snapshot_tags".to_string(), json!(self.snapshot_tags)),
        ]);
        record(run, &self.run, Kind::Tags, &image.image_id, attributes).await
    }
}
