//! Public IPs: CreatePublicIp, ReadPublicIps, LinkPublicIp, UnlinkPublicIp, DeletePublicIp.

use serde::{Deserialize, Serialize};

use super::{EmptyResponse, ResourceTag, ResponseContext, tag_filter};
use crate::oapi::operation::{operation, paginated};

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PublicIp {
    pub public_ip_id: String,
    pub public_ip: String,
    pub link_public_ip_id: Option<String>,
    pub vm_id: Option<String>,
    pub nic_id: Option<String>,
    pub nic_account_id: Option<String>,
    pub private_ip: Option<String>,
    pub tags: Vec<ResourceTag>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct CreatePublicIpRequest {
    pub dry_run: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreatePublicIpResponse {
    pub public_ip: PublicIp,
    pub response_context: ResponseContext,
}
// Neither a token nor a name makes a second allocation recognisable.
operation!(CreatePublicIpRequest => CreatePublicIpResponse, "CreatePublicIp",
    retry_safe = |_r| false);

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct LinkPublicIpRequest {
    pub public_ip: Option<String>,
    pub public_ip_id: Option<String>,
    pub vm_id: Option<String>,
    pub nic_id: Option<String>,
    pub private_ip: Option<String>,
    pub allow_relink: Option<bool>,
    pub dry_run: Option<bool>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct LinkPublicIpResponse {
    pub link_public_ip_id: Option<String>,
    pub response_context: ResponseContext,
}
operation!(LinkPublicIpRequest => LinkPublicIpResponse, "LinkPublicIp");

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct UnlinkPublicIpRequest {
    pub link_public_ip_id: Option<String>,
    pub public_ip: Option<String>,
    pub dry_run: Option<bool>,
}
operation!(UnlinkPublicIpRequest => EmptyResponse, "UnlinkPublicIp");

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DeletePublicIpRequest {
    pub public_ip: Option<String>,
    pub public_ip_id: Option<String>,
    pub dry_run: Option<bool>,
}
operation!(DeletePublicIpRequest => EmptyResponse, "DeletePublicIp");

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct FiltersPublicIp {
    pub public_ip_ids: Option<Vec<String>>,
    pub public_ips: Option<Vec<String>>,
    pub vm_ids: Option<Vec<String>>,
    pub link_public_ip_ids: Option<Vec<String>>,
    pub nic_ids: Option<Vec<String>>,
    pub private_ips: Option<Vec<String>>,
    pub tag_keys: Option<Vec<String>>,
    pub tag_values: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
}
tag_filter!(FiltersPublicIp);

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ReadPublicIpsRequest {
    pub filters: Option<FiltersPublicIp>,
    pub next_page_token: Option<String>,
    pub results_per_page: Option<i64>,
    pub dry_run: Option<bool>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ReadPublicIpsResponse {
    pub public_ips: Vec<PublicIp>,
    pub next_page_token: Option<String>,
    pub response_context: ResponseContext,
}
paginated!(ReadPublicIpsRequest => ReadPublicIpsResponse, "ReadPublicIps", public_ips: PublicIp);
