//! Security groups and their rules.

use serde::{Deserialize, Serialize};

use super::{EmptyResponse, ResourceTag, ResponseContext, tag_filter};
use crate::oapi::operation::{operation, paginated};

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SecurityGroup {
    pub security_group_id: String,
    pub security_group_name: String,
    pub description: String,
    pub account_id: String,
    pub net_id: Option<String>,
    pub inbound_rules: Vec<SecurityGroupRule>,
    pub outbound_rules: Vec<SecurityGroupRule>,
    pub tags: Vec<ResourceTag>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SecurityGroupRule {
    /// `tcp`, `udp`, `icmp`, or `-1` for every protocol.
    pub ip_protocol: Option<String>,
    pub from_port_range: Option<i64>,
    pub to_port_range: Option<i64>,
    pub ip_ranges: Option<Vec<String>>,
    pub security_groups_members: Option<Vec<SecurityGroupsMember>>,
    pub service_ids: Option<Vec<String>>,
    pub security_group_rule_id: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SecurityGroupsMember {
    pub account_id: Option<String>,
    pub security_group_id: Option<String>,
    pub security_group_name: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct CreateSecurityGroupRequest {
    pub security_group_name: String,
    pub description: String,
    pub net_id: Option<String>,
    pub dry_run: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SecurityGroupResponse {
    pub security_group: SecurityGroup,
    pub response_context: ResponseContext,
}
operation!(CreateSecurityGroupRequest => SecurityGroupResponse, "CreateSecurityGroup");

/// Adds or removes rules: one inline rule (`IpProtocol`, ports, `IpRange`),
/// a link to another group, or a list of `Rules`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct CreateSecurityGroupRuleRequest {
    pub security_group_id: String,
    /// `Inbound` or `Outbound`.
    pub flow: String,
    pub ip_protocol: Option<String>,
    pub from_port_range: Option<i64>,
    pub to_port_range: Option<i64>,
    pub ip_range: Option<String>,
    pub security_group_account_id_to_link: Option<String>,
    pub security_group_name_to_link: Option<String>,
    pub rules: Option<Vec<SecurityGroupRule>>,
    pub dry_run: Option<bool>,
}
operation!(CreateSecurityGroupRuleRequest => SecurityGroupResponse, "CreateSecurityGroupRule");

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DeleteSecurityGroupRuleRequest {
    pub security_group_id: String,
    pub flow: String,
    pub ip_protocol: Option<String>,
    pub from_port_range: Option<i64>,
    pub to_port_range: Option<i64>,
    pub ip_range: Option<String>,
    pub security_group_account_id_to_unlink: Option<String>,
    pub security_group_name_to_unlink: Option<String>,
    pub rules: Option<Vec<SecurityGroupRule>>,
    pub dry_run: Option<bool>,
}
operation!(DeleteSecurityGroupRuleRequest => SecurityGroupResponse, "DeleteSecurityGroupRule");

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct FiltersSecurityGroup {
    pub security_group_ids: Option<Vec<String>>,
    pub security_group_names: Option<Vec<String>>,
    pub net_ids: Option<Vec<String>>,
    pub descriptions: Option<Vec<String>>,
    pub inbound_rule_ip_ranges: Option<Vec<String>>,
    pub inbound_rule_protocols: Option<Vec<String>>,
    pub inbound_rule_from_port_ranges: Option<Vec<i64>>,
    pub inbound_rule_to_port_ranges: Option<Vec<i64>>,
    pub tag_keys: Option<Vec<String>>,
    pub tag_values: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
}
tag_filter!(FiltersSecurityGroup);

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ReadSecurityGroupsRequest {
    pub filters: Option<FiltersSecurityGroup>,
    pub next_page_token: Option<String>,
    pub results_per_page: Option<i64>,
    pub dry_run: Option<bool>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ReadSecurityGroupsResponse {
    pub security_groups: Vec<SecurityGroup>,
    pub next_page_token: Option<String>,
    pub response_context: ResponseContext,
}
paginated!(ReadSecurityGroupsRequest => ReadSecurityGroupsResponse, "ReadSecurityGroups",
    security_groups: SecurityGroup);

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DeleteSecurityGroupRequest {
    pub security_group_id: Option<String>,
    pub security_group_name: Option<String>,
    pub dry_run: Option<bool>,
}
operation!(DeleteSecurityGroupRequest => EmptyResponse, "DeleteSecurityGroup");
