//! VMs: CreateVms, ReadVms, ReadVmsState, StartVms, StopVms, DeleteVms,
//! ReadAdminPassword, ReadConsoleOutput.

use serde::{Deserialize, Serialize};

use super::{ResourceTag, ResponseContext, tag_filter};
use crate::oapi::operation::{operation, paginated};

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Vm {
    pub vm_id: String,
    pub state: String,
    pub state_reason: Option<String>,
    pub image_id: String,
    pub vm_type: String,
    pub keypair_name: Option<String>,
    pub private_ip: Option<String>,
    pub public_ip: Option<String>,
    pub private_dns_name: Option<String>,
    pub public_dns_name: Option<String>,
    pub subnet_id: Option<String>,
    pub net_id: Option<String>,
    pub placement: Option<Placement>,
    pub security_groups: Vec<SecurityGroupLight>,
    pub block_device_mappings: Vec<BlockDeviceMappingCreated>,
    pub root_device_name: Option<String>,
    pub root_device_type: Option<String>,
    pub nics: Vec<NicLight>,
    pub tags: Vec<ResourceTag>,
    pub client_token: Option<String>,
    pub creation_date: Option<String>,
    pub os_family: Option<String>,
    pub architecture: Option<String>,
    pub boot_mode: Option<String>,
    pub user_data: Option<String>,
    pub vm_initiated_shutdown_behavior: Option<String>,
    pub performance: Option<String>,
    pub deletion_protection: Option<bool>,
    pub launch_number: Option<i64>,
    pub reservation_id: Option<String>,
    pub hypervisor: Option<String>,
    pub is_source_dest_checked: Option<bool>,
    pub bsu_optimized: Option<bool>,
    pub product_codes: Vec<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Placement {
    pub subregion_name: Option<String>,
    pub tenancy: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SecurityGroupLight {
    pub security_group_id: String,
    pub security_group_name: String,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct BlockDeviceMappingCreated {
    pub device_name: String,
    pub bsu: BsuCreated,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct BsuCreated {
    pub volume_id: String,
    pub state: String,
    pub delete_on_vm_deletion: bool,
    pub link_date: Option<String>,
}

/// The network interface of a VM in a Net, reduced to the addresses.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NicLight {
    pub nic_id: Option<String>,
    pub account_id: Option<String>,
    pub net_id: Option<String>,
    pub subnet_id: Option<String>,
    pub state: Option<String>,
    pub mac_address: Option<String>,
    pub private_dns_name: Option<String>,
    pub link_public_ip: Option<LinkPublicIpLightForVm>,
    pub private_ips: Vec<PrivateIpLightForVm>,
    pub security_groups: Vec<SecurityGroupLight>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct LinkPublicIpLightForVm {
    pub public_ip: Option<String>,
    pub public_dns_name: Option<String>,
    pub public_ip_account_id: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PrivateIpLightForVm {
    pub is_primary: Option<bool>,
    pub private_ip: Option<String>,
    pub private_dns_name: Option<String>,
    pub link_public_ip: Option<LinkPublicIpLightForVm>,
}

/// A block device to create with a VM or an image.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct BlockDeviceMappingVmCreation {
    pub device_name: Option<String>,
    pub bsu: Option<BsuToCreate>,
    pub no_device: Option<String>,
    pub virtual_device_name: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct BsuToCreate {
    pub delete_on_vm_deletion: Option<bool>,
    pub iops: Option<i64>,
    pub snapshot_id: Option<String>,
    pub volume_size: Option<i64>,
    pub volume_type: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct CreateVmsRequest {
    pub image_id: String,
    pub vm_type: Option<String>,
    pub keypair_name: Option<String>,
    pub security_group_ids: Option<Vec<String>>,
    pub security_groups: Option<Vec<String>>,
    pub subnet_id: Option<String>,
    pub placement: Option<Placement>,
    pub user_data: Option<String>,
    pub block_device_mappings: Option<Vec<BlockDeviceMappingVmCreation>>,
    pub boot_on_creation: Option<bool>,
    pub client_token: Option<String>,
    pub min_vms_count: Option<i64>,
    pub max_vms_count: Option<i64>,
    pub private_ips: Option<Vec<String>>,
    pub performance: Option<String>,
    pub vm_initiated_shutdown_behavior: Option<String>,
    pub deletion_protection: Option<bool>,
    pub boot_mode: Option<String>,
    pub bsu_optimized: Option<bool>,
    pub nested_virtualization: Option<bool>,
    pub tpm_enabled: Option<bool>,
    pub dry_run: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateVmsResponse {
    pub vms: Vec<Vm>,
    pub response_context: ResponseContext,
}

operation!(CreateVmsRequest => CreateVmsResponse, "CreateVms",
    retry_safe = |r| r.client_token.is_some());

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct FiltersVm {
    pub vm_ids: Option<Vec<String>>,
    pub vm_state_names: Option<Vec<String>>,
    pub vm_state_codes: Option<Vec<i64>>,
    pub vm_types: Option<Vec<String>>,
    pub client_tokens: Option<Vec<String>>,
    pub image_ids: Option<Vec<String>>,
    pub keypair_names: Option<Vec<String>>,
    pub subnet_ids: Option<Vec<String>>,
    pub net_ids: Option<Vec<String>>,
    pub subregion_names: Option<Vec<String>>,
    pub security_group_ids: Option<Vec<String>>,
    pub security_group_names: Option<Vec<String>>,
    pub public_ips: Option<Vec<String>>,
    pub private_ips: Option<Vec<String>>,
    pub block_device_mapping_volume_ids: Option<Vec<String>>,
    pub tag_keys: Option<Vec<String>>,
    pub tag_values: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
}
tag_filter!(FiltersVm);

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ReadVmsRequest {
    pub filters: Option<FiltersVm>,
    pub next_page_token: Option<String>,
    pub results_per_page: Option<i64>,
    pub dry_run: Option<bool>,
}

impl ReadVmsRequest {
    /// Reads the VM `id`.
    pub fn id(id: impl Into<String>) -> ReadVmsRequest {
        ReadVmsRequest {
            filters: Some(FiltersVm {
                vm_ids: Some(vec![id.into()]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ReadVmsResponse {
    pub vms: Vec<Vm>,
    pub next_page_token: Option<String>,
    pub response_context: ResponseContext,
}

paginated!(ReadVmsRequest => ReadVmsResponse, "ReadVms", vms: Vm);

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct FiltersVmsState {
    pub vm_ids: Option<Vec<String>>,
    pub vm_states: Option<Vec<String>>,
    pub subregion_names: Option<Vec<String>>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ReadVmsStateRequest {
    /// Without it only running VMs are listed.
    pub all_vms: Option<bool>,
    pub filters: Option<FiltersVmsState>,
    pub next_page_token: Option<String>,
    pub results_per_page: Option<i64>,
    pub dry_run: Option<bool>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VmStates {
    pub vm_id: String,
    pub vm_state: String,
    pub subregion_name: Option<String>,
    pub maintenance_events: Vec<serde_json::Value>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ReadVmsStateResponse {
    pub vm_states: Vec<VmStates>,
    pub next_page_token: Option<String>,
    pub response_context: ResponseContext,
}

paginated!(ReadVmsStateRequest => ReadVmsStateResponse, "ReadVmsState", vm_states: VmStates);

/// A state change as StartVms, StopVms and DeleteVms report it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VmState {
    pub vm_id: String,
    pub previous_state: String,
    pub current_state: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VmStateChangeResponse {
    pub vms: Vec<VmState>,
    pub response_context: ResponseContext,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct StartVmsRequest {
    pub vm_ids: Vec<String>,
    pub dry_run: Option<bool>,
}
operation!(StartVmsRequest => VmStateChangeResponse, "StartVms");

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct StopVmsRequest {
    pub vm_ids: Vec<String>,
    pub force_stop: Option<bool>,
    pub dry_run: Option<bool>,
}
operation!(StopVmsRequest => VmStateChangeResponse, "StopVms");

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DeleteVmsRequest {
    pub vm_ids: Vec<String>,
    pub dry_run: Option<bool>,
}
operation!(DeleteVmsRequest => VmStateChangeResponse, "DeleteVms");

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ReadAdminPasswordRequest {
    pub vm_id: String,
    pub dry_run: Option<bool>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ReadAdminPasswordResponse {
    pub vm_id: String,
    /// Base64 of the password encrypted with the VM keypair; empty until generated.
    pub admin_password: Option<String>,
    pub response_context: ResponseContext,
}
operation!(ReadAdminPasswordRequest => ReadAdminPasswordResponse, "ReadAdminPassword");

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ReadConsoleOutputRequest {
    pub vm_id: String,
    pub dry_run: Option<bool>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ReadConsoleOutputResponse {
    pub vm_id: String,
    /// Base64 of the last 64 KiB of console output.
    pub console_output: Option<String>,
    pub response_context: ResponseContext,
}
operation!(ReadConsoleOutputRequest => ReadConsoleOutputResponse, "ReadConsoleOutput");
