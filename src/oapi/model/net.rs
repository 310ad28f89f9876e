//! Nets, subnets and subregions: where a VM is placed.

use serde::{Deserialize, Serialize};

use super::{EmptyResponse, ResourceTag, ResponseContext, tag_filter};
use crate::oapi::operation::{operation, paginated};

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Net {
    pub net_id: String,
    pub ip_range: String,
    pub state: String,
    pub tenancy: Option<String>,
    pub dhcp_options_set_id: Option<String>,
    pub tags: Vec<ResourceTag>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Subnet {
    pub subnet_id: String,
    pub net_id: String,
    pub subregion_name: String,
    pub ip_range: String,
    pub state: String,
    pub available_ips_count: i64,
    pub map_public_ip_on_launch: bool,
    pub tags: Vec<ResourceTag>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Subregion {
    pub subregion_name: String,
    pub region_name: String,
    pub state: String,
    pub location_code: String,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct CreateNetRequest {
    pub ip_range: String,
    pub tenancy: Option<String>,
    pub dry_run: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetResponse {
    pub net: Net,
    pub response_context: ResponseContext,
}
operation!(CreateNetRequest => NetResponse, "CreateNet", retry_safe = |_r| false);

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DeleteNetRequest {
    pub net_id: String,
    pub dry_run: Option<bool>,
}
operation!(DeleteNetRequest => EmptyResponse, "DeleteNet");

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct CreateSubnetRequest {
    pub net_id: String,
    pub ip_range: String,
    pub subregion_name: Option<String>,
    pub dry_run: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SubnetResponse {
    pub subnet: Subnet,
    pub response_context: ResponseContext,
}
// The same IP range cannot be used twice in a Net, so a repeat is refused.
operation!(CreateSubnetRequest => SubnetResponse, "CreateSubnet");

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DeleteSubnetRequest {
    pub subnet_id: String,
    pub dry_run: Option<bool>,
}
operation!(DeleteSubnetRequest => EmptyResponse, "DeleteSubnet");

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct FiltersNet {
    pub net_ids: Option<Vec<String>>,
    pub states: Option<Vec<String>>,
    pub ip_ranges: Option<Vec<String>>,
    pub is_default: Option<bool>,
    pub tag_keys: Option<Vec<String>>,
    pub tag_values: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
}
tag_filter!(FiltersNet);

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ReadNetsRequest {
    pub filters: Option<FiltersNet>,
    pub next_page_token: Option<String>,
    pub results_per_page: Option<i64>,
    pub dry_run: Option<bool>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ReadNetsResponse {
    pub nets: Vec<Net>,
    pub next_page_token: Option<String>,
    pub response_context: ResponseContext,
}
paginated!(ReadNetsRequest => ReadNetsResponse, "ReadNets", nets: Net);

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct FiltersSubnet {
    pub subnet_ids: Option<Vec<String>>,
    pub net_ids: Option<Vec<String>>,
    pub subregion_names: Option<Vec<String>>,
    pub states: Option<Vec<String>>,
    pub ip_ranges: Option<Vec<String>>,
    pub available_ips_counts: Option<Vec<i64>>,
    pub tag_keys: Option<Vec<String>>,
    pub tag_values: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
}
tag_filter!(FiltersSubnet);

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ReadSubnetsRequest {
    pub filters: Option<FiltersSubnet>,
    pub next_page_token: Option<String>,
    pub results_per_page: Option<i64>,
    pub dry_run: Option<bool>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ReadSubnetsResponse {
    pub subnets: Vec<Subnet>,
    pub next_page_token: Option<String>,
    pub response_context: ResponseContext,
}
paginated!(ReadSubnetsRequest => ReadSubnetsResponse, "ReadSubnets", subnets: Subnet);

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct FiltersSubregion {
    pub subregion_names: Option<Vec<String>>,
    pub region_names: Option<Vec<String>>,
    pub states: Option<Vec<String>>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ReadSubregionsRequest {
    pub filters: Option<FiltersSubregion>,
    pub next_page_token: Option<String>,
    pub results_per_page: Option<i64>,
    pub dry_run: Option<bool>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ReadSubregionsResponse {
    pub subregions: Vec<Subregion>,
    pub next_page_token: Option<String>,
    pub response_context: ResponseContext,
}
paginated!(ReadSubregionsRequest => ReadSubregionsResponse, "ReadSubregions",
    subregions: Subregion);
