//! Snapshots: CreateSnapshot, ReadSnapshots, UpdateSnapshot, DeleteSnapshot.

use serde::{Deserialize, Serialize};

use super::{
    EmptyResponse, PermissionsOnResource, PermissionsOnResourceCreation, ResourceTag,
    ResponseContext, tag_filter,
};
use crate::oapi::operation::{operation, paginated};

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Snapshot {
    pub snapshot_id: String,
    pub state: String,
    pub progress: i64,
    pub volume_id: Option<String>,
    /// GiB.
    pub volume_size: i64,
    pub account_id: String,
    pub account_alias: Option<String>,
    pub description: Option<String>,
    pub creation_date: Option<String>,
    pub permissions_to_create_volume: PermissionsOnResource,
    pub client_token: Option<String>,
    pub tags: Vec<ResourceTag>,
}

/// From a volume (`VolumeId`), a copy (`SourceSnapshotId` + `SourceRegionName`)
/// or an import (`FileLocation` + `SnapshotSize`).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct CreateSnapshotRequest {
    pub volume_id: Option<String>,
    pub source_snapshot_id: Option<String>,
    pub source_region_name: Option<String>,
    pub file_location: Option<String>,
    pub snapshot_size: Option<i64>,
    pub description: Option<String>,
    pub client_token: Option<String>,
    pub dry_run: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SnapshotResponse {
    pub snapshot: Snapshot,
    pub response_context: ResponseContext,
}
operation!(CreateSnapshotRequest => SnapshotResponse, "CreateSnapshot",
    retry_safe = |r| r.client_token.is_some());

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct FiltersSnapshot {
    pub snapshot_ids: Option<Vec<String>>,
    pub volume_ids: Option<Vec<String>>,
    pub account_ids: Option<Vec<String>>,
    pub account_aliases: Option<Vec<String>>,
    pub states: Option<Vec<String>>,
    pub progresses: Option<Vec<i64>>,
    pub volume_sizes: Option<Vec<i64>>,
    pub descriptions: Option<Vec<String>>,
    pub client_tokens: Option<Vec<String>>,
    pub permissions_to_create_volume_account_ids: Option<Vec<String>>,
    pub permissions_to_create_volume_global_permission: Option<bool>,
    pub tag_keys: Option<Vec<String>>,
    pub tag_values: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
}
tag_filter!(FiltersSnapshot);

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ReadSnapshotsRequest {
    pub filters: Option<FiltersSnapshot>,
    pub next_page_token: Option<String>,
    pub results_per_page: Option<i64>,
    pub dry_run: Option<bool>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ReadSnapshotsResponse {
    pub snapshots: Vec<Snapshot>,
    pub next_page_token: Option<String>,
    pub response_context: ResponseContext,
}
paginated!(ReadSnapshotsRequest => ReadSnapshotsResponse, "ReadSnapshots", snapshots: Snapshot);

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct UpdateSnapshotRequest {
    pub snapshot_id: String,
    pub permissions_to_create_volume: PermissionsOnResourceCreation,
    pub dry_run: Option<bool>,
}
operation!(UpdateSnapshotRequest => SnapshotResponse, "UpdateSnapshot");

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DeleteSnapshotRequest {
    pub snapshot_id: String,
    pub dry_run: Option<bool>,
}
operation!(DeleteSnapshotRequest => EmptyResponse, "DeleteSnapshot");
