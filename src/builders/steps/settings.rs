//! What the settings of an OMI (its permissions and tags) share: which
//! snapshots are the build's own, and how a setting is recorded.

use std::collections::BTreeMap;

use serde_json::Value;

use super::BuildRun;
use crate::graph::{Kind, Run, StepError};
use crate::oapi::model::Image;
use crate::state::{ResourceState, Status};

/// The snapshots of `image` this build made, as the state holds them: one
/// the template named with `snapshot_id` is someone's own, never re-shared
/// or re-tagged.
pub fn own_snapshots(run: &Run<'_>, build: &BuildRun, image: &Image) -> Vec<String> {
    let of_image = image.snapshot_ids();
    run.recorder
        .build_entries(&build.name)
        .into_iter()
        .filter(|r| r.kind == Kind::Snapshot && !r.ephemeral)
        .filter_map(|r| r.id)
        .filter(|id| of_image.contains(id))
        .collect()
}

/// Records a settings entry of the image `image_id` as done.
pub async fn record(
    run: &Run<'_>,
    build: &BuildRun,
    kind: Kind,
    image_id: &str,
    attributes: BTreeMap<String, Value>,
) -> Result<(), StepError> {
    let entry = ResourceState {
        attributes,
        input_digest: Some(build.digest.clone()),
        ..ResourceState::made(
            run.address.clone(),
            &build.name,
            kind,
            false,
            image_id.to_string(),
            Status::Created,
        )
    };
    run.recorder.settled(vec![entry]).await?;
    Ok(())
}
