//! Volumes: CreateVolume, ReadVolumes, LinkVolume, UnlinkVolume, DeleteVolume.

use serde::{Deserialize, Serialize};

use super::{EmptyResponse, ResourceTag, ResponseContext, tag_filter};
use crate::oapi::operation::{operation, paginated};

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Volume {
    pub volume_id: String,
    pub state: String,
    /// GiB.
    pub size: i64,
    pub subregion_name: String,
    pub volume_type: String,
    pub iops: Option<i64>,
    pub snapshot_id: Option<String>,
    pub linked_volumes: Vec<LinkedVolume>,
    pub creation_date: Option<String>,
    pub client_token: Option<String>,
    pub task_id: Option<String>,
    pub tags: Vec<ResourceTag>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct LinkedVolume {
    pub volume_id: String,
    pub vm_id: String,
    pub device_name: String,
    pub state: String,
    pub delete_on_vm_deletion: bool,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct CreateVolumeRequest {
    pub subregion_name: String,
    pub size: Option<i64>,
    pub snapshot_id: Option<String>,
    pub volume_type: Option<String>,
    pub iops: Option<i64>,
    pub client_token: Option<String>,
    pub dry_run: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeResponse {
    pub volume: Volume,
    pub response_context: ResponseContext,
}
operation!(CreateVolumeRequest => VolumeResponse, "CreateVolume",
    retry_safe = |r| r.client_token.is_some());

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct FiltersVolume {
    pub volume_ids: Option<Vec<String>>,
    pub volume_states: Option<Vec<String>>,
    pub volume_types: Option<Vec<String>>,
    pub volume_sizes: Option<Vec<i64>>,
    pub subregion_names: Option<Vec<String>>,
    pub snapshot_ids: Option<Vec<String>>,
    pub client_tokens: Option<Vec<String>>,
    pub link_volume_vm_ids: Option<Vec<String>>,
    pub link_volume_device_names: Option<Vec<String>>,
    pub link_volume_link_states: Option<Vec<String>>,
    pub link_volume_delete_on_vm_deletion: Option<bool>,
    pub tag_keys: Option<Vec<String>>,
    pub tag_values: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
}
tag_filter!(FiltersVolume);

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ReadVolumesRequest {
    pub filters: Option<FiltersVolume>,
    pub next_page_token: Option<String>,
    pub results_per_page: Option<i64>,
    pub dry_run: Option<bool>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ReadVolumesResponse {
    pub volumes: Vec<Volume>,
    pub next_page_token: Option<String>,
    pub response_context: ResponseContext,
}
paginated!(ReadVolumesRequest => ReadVolumesResponse, "ReadVolumes", volumes: Volume);

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct LinkVolumeRequest {
    pub volume_id: String,
    pub vm_id: String,
    pub device_name: String,
    pub dry_run: Option<bool>,
}
operation!(LinkVolumeRequest => EmptyResponse, "LinkVolume");

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct UnlinkVolumeRequest {
    pub volume_id: String,
    pub force_unlink: Option<bool>,
    pub dry_run: Option<bool>,
}
operation!(UnlinkVolumeRequest => EmptyResponse, "UnlinkVolume");

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DeleteVolumeRequest {
    pub volume_id: String,
    pub dry_run: Option<bool>,
}
operation!(DeleteVolumeRequest => EmptyResponse, "DeleteVolume");
