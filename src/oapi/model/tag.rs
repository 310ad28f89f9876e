//! Tags: CreateTags, DeleteTags, ReadTags.

use serde::{Deserialize, Serialize};

use super::{EmptyResponse, ResourceTag, ResponseContext};
use crate::oapi::operation::{operation, paginated};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Tag {
    pub key: String,
    pub value: String,
    pub resource_id: String,
    /// `image`, `instance`, `keypair`, `public-ip`, `security-group`,
    /// `snapshot`, `subnet`, `volume`, `vpc`, …
    pub resource_type: String,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct CreateTagsRequest {
    pub resource_ids: Vec<String>,
    pub tags: Vec<ResourceTag>,
    pub dry_run: Option<bool>,
}
operation!(CreateTagsRequest => EmptyResponse, "CreateTags", background);

/// Deletes only the tags whose key and value both match.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DeleteTagsRequest {
    pub resource_ids: Vec<String>,
    pub tags: Vec<ResourceTag>,
    pub dry_run: Option<bool>,
}
operation!(DeleteTagsRequest => EmptyResponse, "DeleteTags");

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct FiltersTag {
    pub keys: Option<Vec<String>>,
    pub values: Option<Vec<String>>,
    pub resource_ids: Option<Vec<String>>,
    pub resource_types: Option<Vec<String>>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ReadTagsRequest {
    pub filters: Option<FiltersTag>,
    pub next_page_token: Option<String>,
    pub results_per_page: Option<i64>,
    pub dry_run: Option<bool>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ReadTagsResponse {
    pub tags: Vec<Tag>,
    pub next_page_token: Option<String>,
    pub response_context: ResponseContext,
}
paginated!(ReadTagsRequest => ReadTagsResponse, "ReadTags", tags: Tag);
