//! Refresh: what the state holds, as the cloud has it now, for the plan to
//! diff against; one read per kind for the whole state.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::{Refreshed, image, permissions, snapshot, tags};
use crate::builders::cloud::Cloud;
use crate::graph::Kind;
use crate::oapi::Error;
use crate::oapi::model::{
    FiltersImage, FiltersSnapshot, FiltersVolume, ReadImagesRequest, ReadSnapshotsRequest,
    ReadVolumesRequest, Snapshot, Volume,
};
use crate::plan::Observed;
use crate::state::State;

/// Reads the images and snapshots the state holds, one call per kind for
/// the whole state, and reports, per address, their current attributes, or
/// `None` for what is gone.
pub async fn refresh(cloud: &Cloud, state: &State) -> Result<(Observed, Refreshed), Error> {
    let ids_of = |kinds: &[Kind]| -> Vec<String> {
        let ids: BTreeSet<String> = state
            .resources
            .iter()
            .filter(|r| kinds.contains(&r.kind))
            .filter_map(|r| r.id.clone())
            .collect();
        ids.into_iter().collect()
    };
    let image_ids = ids_of(&[
        Kind::Image,
        Kind::ImagePermissions,
        Kind::SnapshotPermissions,
        Kind::Tags,
    ]);
    let mut refreshed = Refreshed::default();
    if !image_ids.is_empty() {
        refreshed.images = cloud
            .client
            .read_all(&ReadImagesRequest {
                filters: Some(FiltersImage {
                    image_ids: Some(image_ids),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await?
            .into_iter()
            .map(|i| (i.image_id.clone(), i))
            .collect();
    }
    // Only the snapshots the state holds: an OMI may also use one of the
    // user's (`snapshot_id`), which osci neither tags nor shares.
    let snapshot_ids = ids_of(&[Kind::Snapshot]);
    if !snapshot_ids.is_empty() {
        refreshed.snapshots = cloud
            .client
            .read_all(&ReadSnapshotsRequest {
                filters: Some(FiltersSnapshot {
                    snapshot_ids: Some(snapshot_ids),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await?
            .into_iter()
            .map(|s| (s.snapshot_id.clone(), s))
            .collect();
    }
    // The volumes builds keep (bsuvolume's).
    let volume_ids: Vec<String> = state
        .resources
        .iter()
        .filter(|r| r.kind == Kind::Volume && !r.ephemeral)
        .filter_map(|r| r.id.clone())
        .collect();
    let volumes: BTreeMap<String, Volume> = if volume_ids.is_empty() {
        BTreeMap::new()
    } else {
        cloud
            .client
            .read_all(&ReadVolumesRequest {
                filters: Some(FiltersVolume {
                    volume_ids: Some(volume_ids),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await?
            .into_iter()
            .map(|v| (v.volume_id.clone(), v))
            .collect()
    };
    let mut observed = Observed::new();
    for r in &state.resources {
        let Some(id) = &r.id else { continue };
        let image = || refreshed.images.get(id);
        let seen: Option<BTreeMap<String, Value>> = match r.kind {
            Kind::Image => image().map(image::attributes),
            Kind::Snapshot => refreshed.snapshots.get(id).map(snapshot::attributes),
            Kind::ImagePermissions => image().map(permissions::image_attributes),
            Kind::SnapshotPermissions => {
                let ids = permissions::recorded_snapshot_ids(r);
                let first = ids.first().and_then(|s| refreshed.snapshots.get(s));
                match (image(), first) {
                    (Some(_), Some(s)) => Some(permissions::snapshot_attributes(s, &ids)),
                    (Some(_), None) if ids.is_empty() => Some(r.attributes.clone()),
                    _ => None,
                }
            }
            Kind::Tags => image().map(|i| {
                let snaps: Vec<&Snapshot> = i
                    .snapshot_ids()
                    .iter()
                    .filter_map(|s| refreshed.snapshots.get(s))
                    .collect();
                tags::attributes(i, &snaps)
            }),
            Kind::Volume if !r.ephemeral => volumes.get(id).map(|v| {
                // The tags osci manages on it, as they are now; the size.
                let managed: Vec<String> = r
                    .attributes
                    .get("tags")
                    .and_then(Value::as_object)
                    .map(|t| t.keys().cloned().collect())
                    .unwrap_or_default();
                let tags: BTreeMap<String, String> = v
                    .tags
                    .iter()
                    .filter(|t| managed.contains(&t.key))
                    .map(|t| (t.key.clone(), t.value.clone()))
                    .collect();
                let mut seen = r.attributes.clone();
                seen.insert("tags".into(), serde_json::json!(tags));
                seen.insert("size".into(), serde_json::json!(v.size));
                seen
            }),
            _ => continue,
        };
        observed.insert(r.address.clone(), seen);
    }
    Ok((observed, refreshed))
}
