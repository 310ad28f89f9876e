//! Images (OMIs): CreateImage, ReadImages, UpdateImage, DeleteImage.

use serde::{Deserialize, Serialize};

use super::{
    BsuToCreate, EmptyResponse, PermissionsOnResource, PermissionsOnResourceCreation, ResourceTag,
    ResponseContext, tag_filter,
};
use crate::oapi::operation::{operation, paginated};

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Image {
    pub image_id: String,
    pub image_name: String,
    pub state: String,
    pub state_comment: Option<StateComment>,
    pub description: Option<String>,
    pub account_id: String,
    pub account_alias: Option<String>,
    pub creation_date: Option<String>,
    pub architecture: Option<String>,
    pub block_device_mappings: Vec<BlockDeviceMappingImage>,
    pub boot_modes: Vec<String>,
    pub root_device_name: Option<String>,
    pub root_device_type: Option<String>,
    pub image_type: Option<String>,
    pub file_location: Option<String>,
    pub permissions_to_launch: PermissionsOnResource,
    pub product_codes: Vec<String>,
    pub secure_boot: Option<bool>,
    pub tpm_mandatory: Option<bool>,
    pub tags: Vec<ResourceTag>,
}

impl Image {
    /// The snapshots behind the image, in device order.
    pub fn snapshot_ids(&self) -> Vec<String> {
        self.block_device_mappings
            .iter()
            .filter_map(|m| m.bsu.as_ref().and_then(|b| b.snapshot_id.clone()))
            .collect()
    }
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct StateComment {
    pub state_code: Option<String>,
    pub state_message: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct BlockDeviceMappingImage {
    pub device_name: Option<String>,
    pub virtual_device_name: Option<String>,
    pub bsu: Option<BsuToCreate>,
}

/// One request, four modes: from a VM (`VmId`), a copy (`SourceImageId` +
/// `SourceRegionName`), a registration from snapshots (`RootDeviceName` +
/// `BlockDeviceMappings`), or from a bucket manifest (`FileLocation`).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct CreateImageRequest {
    pub image_name: Option<String>,
    pub description: Option<String>,
    pub vm_id: Option<String>,
    pub no_reboot: Option<bool>,
    pub source_image_id: Option<String>,
    pub source_region_name: Option<String>,
    pub root_device_name: Option<String>,
    pub block_device_mappings: Option<Vec<BlockDeviceMappingImage>>,
    pub architecture: Option<String>,
    pub file_location: Option<String>,
    pub boot_modes: Option<Vec<String>>,
    pub product_codes: Option<Vec<String>>,
    pub tpm_mandatory: Option<bool>,
    pub dry_run: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImageResponse {
    pub image: Image,
    pub response_context: ResponseContext,
}

// Image names are unique per account, so a repeated create is refused
// rather than duplicated.
operation!(CreateImageRequest => ImageResponse, "CreateImage",
    retry_safe = |r| r.image_name.is_some());

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct FiltersImage {
    pub image_ids: Option<Vec<String>>,
    /// Accepts `*` and `?` wildcards.
    pub image_names: Option<Vec<String>>,
    pub account_ids: Option<Vec<String>>,
    pub account_aliases: Option<Vec<String>>,
    pub states: Option<Vec<String>>,
    pub architectures: Option<Vec<String>>,
    pub descriptions: Option<Vec<String>>,
    pub root_device_names: Option<Vec<String>>,
    pub root_device_types: Option<Vec<String>>,
    pub block_device_mapping_snapshot_ids: Option<Vec<String>>,
    pub block_device_mapping_delete_on_vm_deletion: Option<bool>,
    pub block_device_mapping_device_names: Option<Vec<String>>,
    pub block_device_mapping_volume_sizes: Option<Vec<i64>>,
    pub block_device_mapping_volume_types: Option<Vec<String>>,
    pub boot_modes: Option<Vec<String>>,
    pub file_locations: Option<Vec<String>>,
    pub hypervisors: Option<Vec<String>>,
    pub product_code_names: Option<Vec<String>>,
    pub product_codes: Option<Vec<String>>,
    pub secure_boot: Option<bool>,
    pub tpm_mandatory: Option<bool>,
    pub permissions_to_launch_account_ids: Option<Vec<String>>,
    pub permissions_to_launch_global_permission: Option<bool>,
    pub virtualization_types: Option<Vec<String>>,
    pub tag_keys: Option<Vec<String>>,
    pub tag_values: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
}
tag_filter!(FiltersImage);

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ReadImagesRequest {
    pub filters: Option<FiltersImage>,
    pub next_page_token: Option<String>,
    pub results_per_page: Option<i64>,
    pub dry_run: Option<bool>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ReadImagesResponse {
    pub images: Vec<Image>,
    pub next_page_token: Option<String>,
    pub response_context: ResponseContext,
}
paginated!(ReadImagesRequest => ReadImagesResponse, "ReadImages", images: Image);

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct UpdateImageRequest {
    pub image_id: String,
    pub description: Option<String>,
    pub permissions_to_launch: Option<PermissionsOnResourceCreation>,
    pub product_codes: Option<Vec<String>>,
    pub dry_run: Option<bool>,
}
operation!(UpdateImageRequest => ImageResponse, "UpdateImage");

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DeleteImageRequest {
    pub image_id: String,
    pub dry_run: Option<bool>,
}
operation!(DeleteImageRequest => EmptyResponse, "DeleteImage");
