//! Run (behaviour §2.2): the source OMI, where the build VM goes, and how it
//! runs.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Deserializer};

use super::{Failure, check_filter_names, duration, invalid, one_of};
use crate::template::error::{KeyPath, Problem};
use crate::template::weak;

/// The filters of `source_omi_filter` and the `outscale-omi` data source:
/// every filter of ReadImages (the plugin knew seven), by the name Packer
/// templates use, with the OAPI filter it is.
pub const OMI_FILTER_NAMES: &[(&str, &str)] = &[
    ("account-alias", "AccountAliases"),
    ("account-id", "AccountIds"),
    ("architecture", "Architectures"),
    (
        "block-device-mapping-delete-on-vm-deletion",
        "BlockDeviceMappingDeleteOnVmDeletion",
    ),
    (
        "block-device-mapping-device-name",
        "BlockDeviceMappingDeviceNames",
    ),
    (
        "block-device-mapping-snapshot-id",
        "BlockDeviceMappingSnapshotIds",
    ),
    (
        "block-device-mapping-volume-size",
        "BlockDeviceMappingVolumeSizes",
    ),
    (
        "block-device-mapping-volume-type",
        "BlockDeviceMappingVolumeTypes",
    ),
    ("boot-mode", "BootModes"),
    ("description", "Descriptions"),
    ("file-location", "FileLocations"),
    ("hypervisor", "Hypervisors"),
    ("image-id", "ImageIds"),
    ("image-name", "ImageNames"),
    (
        "permission-to-launch-account-id",
        "PermissionsToLaunchAccountIds",
    ),
    (
        "permission-to-launch-global-permission",
        "PermissionsToLaunchGlobalPermission",
    ),
    ("product-code", "ProductCodes"),
    ("product-code-name", "ProductCodeNames"),
    ("root-device-name", "RootDeviceNames"),
    ("root-device-type", "RootDeviceTypes"),
    ("secure-boot", "SecureBoot"),
    ("state", "States"),
    ("tag", "Tags"),
    ("tag-key", "TagKeys"),
    ("tag-value", "TagValues"),
    ("tpm-mandatory", "TpmMandatory"),
    ("virtualization-type", "VirtualizationTypes"),
];

/// The names of [`OMI_FILTER_NAMES`].
pub const OMI_FILTERS: &[&str] = &[
    "account-alias",
    "account-id",
    "architecture",
    "block-device-mapping-delete-on-vm-deletion",
    "block-device-mapping-device-name",
    "block-device-mapping-snapshot-id",
    "block-device-mapping-volume-size",
    "block-device-mapping-volume-type",
    "boot-mode",
    "description",
    "file-location",
    "hypervisor",
    "image-id",
    "image-name",
    "permission-to-launch-account-id",
    "permission-to-launch-global-permission",
    "product-code",
    "product-code-name",
    "root-device-name",
    "root-device-type",
    "secure-boot",
    "state",
    "tag",
    "tag-key",
    "tag-value",
    "tpm-mandatory",
    "virtualization-type",
];
pub const NET_FILTERS: &[&str] = &[
    "ip-range",
    "dhcp-options-set-id",
    "is-default",
    "state",
    "tag-key",
    "tag-value",
];
pub const SUBNET_FILTERS: &[&str] = &[
    "available-ips-counts",
    "ip-ranges",
    "net-ids",
    "states",
    "subnet-ids",
    "sub-region-names",
];
// Underscores, unlike the others: the plugin's own inconsistency, kept so
// that its templates work.
pub const SECURITY_GROUP_FILTERS: &[&str] = &[
    "security_group_ids",
    "security_group_names",
    "tag_keys",
    "tag_values",
    "tags",
];

const DEFAULT_CIDR: &str = "0.0.0.0/0";
const DEFAULT_SHUTDOWN: &str = "stop";

/// Values are interpolated except the build variables left in `run_tags`
/// and `run_volume_tags`; see [`crate::template::render_build_vars`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct RunConfig {
    pub vm_type: String,
    pub source_omi: Option<String>,
    pub source_omi_filter: Option<OmiFilter>,
    pub subregion_name: Option<String>,
    pub net_id: Option<String>,
    pub net_filter: Option<NetFilter>,
    pub subnet_id: Option<String>,
    pub subnet_filter: Option<SubnetFilter>,
    /// Also from `security_group_id`.
    pub security_group_ids: Vec<String>,
    pub security_group_filter: Option<SecurityGroupFilter>,
    pub temporary_security_group_source_cidr: String,
    #[serde(deserialize_with = "weak::bool")]
    pub associate_public_ip_address: bool,
    pub ssh_interface: Option<String>,
    /// As written, or the contents of `user_data_file`.
    pub user_data: Option<UserData>,
    pub shutdown_behavior: String,
    #[serde(deserialize_with = "weak::bool")]
    pub disable_stop_vm: bool,
    #[serde(deserialize_with = "weak::bool")]
    pub bsu_optimized: bool,
    pub boot_mode: Option<String>,
    pub run_tags: BTreeMap<String, String>,
    pub run_volume_tags: BTreeMap<String, String>,
    /// A Go duration as written, e.g. `20m`.
    pub windows_password_timeout: Option<String>,
    // Inert in the plugin (§9.6): validated as it validates them.
    pub iam_vm_profile: Option<String>,
    #[serde(deserialize_with = "weak::bool")]
    pub enable_t2_unlimited: bool,
    #[serde(deserialize_with = "weak::int")]
    pub block_duration_minutes: u64,
}

/// The plugin's defaults; `vm_type` and a source are still needed.
impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            vm_type: String::new(),
            source_omi: None,
            source_omi_filter: None,
            subregion_name: None,
            net_id: None,
            net_filter: None,
            subnet_id: None,
            subnet_filter: None,
            security_group_ids: Vec::new(),
            security_group_filter: None,
            temporary_security_group_source_cidr: DEFAULT_CIDR.into(),
            associate_public_ip_address: false,
            ssh_interface: None,
            user_data: None,
            shutdown_behavior: DEFAULT_SHUTDOWN.into(),
            disable_stop_vm: false,
            bsu_optimized: false,
            boot_mode: None,
            run_tags: BTreeMap::new(),
            run_volume_tags: BTreeMap::new(),
            windows_password_timeout: None,
            iam_vm_profile: None,
            enable_t2_unlimited: false,
            block_duration_minutes: 0,
        }
    }
}

/// User data as the API takes it: base64. The plugin's rule (C8): text
/// that is already valid base64 is sent as it is, anything else is encoded;
/// a binary `user_data_file` arrives here as the base64 of its bytes, so it
/// is encoded exactly once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserData {
    /// Text to encode.
    Text(String),
    /// Already base64.
    Encoded(String),
}

impl UserData {
    pub fn from_text(text: String) -> UserData {
        if is_base64(&text) {
            UserData::Encoded(text)
        } else {
            UserData::Text(text)
        }
    }

    /// What the template gave, as it shapes the image.
    pub fn as_str(&self) -> &str {
        match self {
            UserData::Text(s) | UserData::Encoded(s) => s,
        }
    }

    /// The value of `UserData` in CreateVms.
    pub fn to_base64(&self) -> String {
        use base64::Engine;
        match self {
            UserData::Text(s) => base64::engine::general_purpose::STANDARD.encode(s),
            UserData::Encoded(s) => s.clone(),
        }
    }
}

impl<'de> Deserialize<'de> for UserData {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(UserData::from_text)
    }
}

/// Whether `s` is standard, padded base64 (the encoding OUTSCALE expects).
fn is_base64(s: &str) -> bool {
    use base64::Engine;
    !s.is_empty()
        && s.len().is_multiple_of(4)
        && base64::engine::general_purpose::STANDARD.decode(s).is_ok()
}

/// `source_omi_filter`: `filters` and `filter` blocks merged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawOmiFilter")]
pub struct OmiFilter {
    pub filters: BTreeMap<String, String>,
    /// Account ids, or aliases such as `Outscale`.
    pub owners: Vec<String>,
    pub most_recent: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawFilter")]
pub struct NetFilter {
    pub filters: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawSubnetFilter")]
pub struct SubnetFilter {
    pub filters: BTreeMap<String, String>,
    pub most_free: bool,
    pub random: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawFilter")]
pub struct SecurityGroupFilter {
    pub filters: BTreeMap<String, String>,
}

/// A `filter` block: the SDK's repeatable form of one `filters` entry.
#[derive(Debug, Deserialize)]
pub(crate) struct NameValue {
    name: String,
    value: String,
}

#[derive(Deserialize)]
struct RawOmiFilter {
    #[serde(default, deserialize_with = "weak::scalar_map")]
    filters: BTreeMap<String, String>,
    #[serde(default)]
    filter: Vec<NameValue>,
    #[serde(default)]
    owners: Vec<String>,
    #[serde(default, deserialize_with = "weak::bool")]
    most_recent: bool,
}

#[derive(Deserialize)]
struct RawFilter {
    #[serde(default, deserialize_with = "weak::scalar_map")]
    filters: BTreeMap<String, String>,
    #[serde(default)]
    filter: Vec<NameValue>,
}

#[derive(Deserialize)]
struct RawSubnetFilter {
    #[serde(default, deserialize_with = "weak::scalar_map")]
    filters: BTreeMap<String, String>,
    #[serde(default)]
    filter: Vec<NameValue>,
    #[serde(default, deserialize_with = "weak::bool")]
    most_free: bool,
    #[serde(default, deserialize_with = "weak::bool")]
    random: bool,
}

fn merge_filters(
    mut filters: BTreeMap<String, String>,
    blocks: Vec<NameValue>,
) -> Result<BTreeMap<String, String>, String> {
    for NameValue { name, value } in blocks {
        if filters.contains_key(&name) {
            return Err(format!("filter `{name}` is given more than once"));
        }
        filters.insert(name, value);
    }
    Ok(filters)
}

impl TryFrom<RawOmiFilter> for OmiFilter {
    type Error = String;
    fn try_from(raw: RawOmiFilter) -> Result<Self, String> {
        Ok(OmiFilter {
            filters: merge_filters(raw.filters, raw.filter)?,
            owners: raw.owners,
            most_recent: raw.most_recent,
        })
    }
}

impl TryFrom<RawFilter> for NetFilter {
    type Error = String;
    fn try_from(raw: RawFilter) -> Result<Self, String> {
        let filters = merge_filters(raw.filters, raw.filter)?;
        Ok(NetFilter { filters })
    }
}

impl TryFrom<RawFilter> for SecurityGroupFilter {
    type Error = String;
    fn try_from(raw: RawFilter) -> Result<Self, String> {
        let filters = merge_filters(raw.filters, raw.filter)?;
        Ok(SecurityGroupFilter { filters })
    }
}

impl TryFrom<RawSubnetFilter> for SubnetFilter {
    type Error = String;
    fn try_from(raw: RawSubnetFilter) -> Result<Self, String> {
        Ok(SubnetFilter {
            filters: merge_filters(raw.filters, raw.filter)?,
            most_free: raw.most_free,
            random: raw.random,
        })
    }
}

impl RunConfig {
    pub(crate) fn validate(&self) -> Result<(), Failure> {
        if self.vm_type.is_empty() {
            let what = "the VM type to build on, e.g. \"tinav6.c4r8p2\"";
            return Err((KeyPath::of("vm_type"), Problem::Missing(what)));
        }
        self.validate_source()?;
        if let Some(f) = &self.net_filter {
            check_filter_names("net_filter", &f.filters, NET_FILTERS)?;
        }
        if let Some(f) = &self.subnet_filter {
            check_filter_names("subnet_filter", &f.filters, SUBNET_FILTERS)?;
        }
        if let Some(f) = &self.security_group_filter {
            check_filter_names("security_group_filter", &f.filters, SECURITY_GROUP_FILTERS)?;
        }

        let cidr = &self.temporary_security_group_source_cidr;
        if !valid_cidr(cidr) {
            let message = format!("`{cidr}` is not a CIDR block such as \"203.0.113.0/24\"");
            return Err(invalid("temporary_security_group_source_cidr", message));
        }
        if let Some(interface) = &self.ssh_interface {
            let allowed = ["public_ip", "private_ip", "public_dns", "private_dns"];
            one_of(KeyPath::of("ssh_interface"), interface, &allowed)?;
        }
        one_of(
            KeyPath::of("shutdown_behavior"),
            &self.shutdown_behavior,
            &["stop", "terminate"],
        )?;
        if let Some(mode) = &self.boot_mode {
            one_of(KeyPath::of("boot_mode"), mode, &["legacy", "uefi"])?;
        }
        if let Some(timeout) = &self.windows_password_timeout {
            duration("windows_password_timeout", timeout)?;
        }
        if !self.block_duration_minutes.is_multiple_of(60) {
            let message = "must be a multiple of 60";
            return Err(invalid("block_duration_minutes", message));
        }
        if self.enable_t2_unlimited && !self.vm_type.starts_with("t2.") {
            let message = format!("only applies to t2 VM types, not `{}`", self.vm_type);
            return Err(invalid("enable_t2_unlimited", message));
        }
        Ok(())
    }

    /// Whether the source OMI is given, or a filter that finds it safely.
    pub(crate) fn validate_source(&self) -> Result<(), Failure> {
        let no_source = self.source_omi.is_none();
        match &self.source_omi_filter {
            None if no_source => {
                let what = "source_omi or source_omi_filter, the OMI to start from";
                return Err((KeyPath::of("source_omi"), Problem::Missing(what)));
            }
            Some(filter) => {
                if no_source && filter.owners.is_empty() {
                    let what = "owners (account ids or aliases such as \"Outscale\") when \
                                source_omi is not set: anyone can publish an OMI";
                    let path = KeyPath::of("source_omi_filter").key("owners");
                    return Err((path, Problem::Missing(what)));
                }
                check_filter_names("source_omi_filter", &filter.filters, OMI_FILTERS)?;
            }
            None => {}
        }
        Ok(())
    }
}

fn valid_cidr(s: &str) -> bool {
    let Some((ip, bits)) = s.split_once('/') else {
        return false;
    };
    let Ok(bits) = bits.parse::<u8>() else {
        return false;
    };
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) => bits <= 32,
        Ok(IpAddr::V6(_)) => bits <= 128,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        for ok in ["0.0.0.0/0", "203.0.113.7/32", "2001:db8::/32"] {
            assert!(valid_cidr(ok), "{ok}");
        }
        for bad in [
            "0.0.0.0",
            "10.0.0.0/33",
            "300.0.0.0/8",
            "x/8",
            "10.0.0.0/-1",
        ] {
            assert!(!valid_cidr(bad), "{bad}");
        }
    }

    #[test]
    fn user_data_is_encoded_once() {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let text = UserData::from_text("#!/bin/sh\necho hi\n".into());
        assert_eq!(
            b64.decode(text.to_base64()).unwrap(),
            b"#!/bin/sh\necho hi\n"
        );
        let encoded = b64.encode("#cloud-config\n");
        let given = UserData::from_text(encoded.clone());
        assert_eq!(given, UserData::Encoded(encoded.clone()));
        assert_eq!(given.to_base64(), encoded);
    }
}
