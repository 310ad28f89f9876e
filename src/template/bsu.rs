//! The options of an `outscale-bsu` (`osc-bsu`) builder entry: behaviour
//! §2.1–§2.5 and the Packer SDK's communicator keys, with the names the
//! plugin's docs use and its code rejected (§9.16) accepted too.
//!
//! Loading a builder entry: [`check_keys`] on the entry as written (so a
//! misspelt key is reported as such, not as whatever its value trips over),
//! then interpolation (by the caller), then [`build`]: aliases and
//! conveniences folded into the canonical keys, serde for types, and
//! [`BsuConfig::validate`] for everything Packer checks at prepare time.
//!
//! The accepted keys are the fields of these structs as serde sees them, so
//! the unknown-key check, its suggestions and the JSON Schema test cannot
//! drift from the structs.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::{KeyPath, Problem, Seg};
use super::interpolate::{omi_name_char, suggest};
use super::weak;
use crate::oapi::{Endpoint, Overrides, Secret};

/// Keys of a builder entry that are not fields of [`BsuConfig`]: the entry's
/// identity, and conveniences folded into fields at load.
const EXTRA_KEYS: &[&str] = &[
    "type",
    "name",
    // → security_group_ids
    "security_group_id",
    // → user_data, read from the file
    "user_data_file",
    // → custom_endpoint_oapi (the seeds' spelling)
    "oapi_custom_endpoint",
];

/// Filter names the plugin maps to OAPI filters (behaviour C3, C4, C7).
const OMI_FILTERS: &[&str] = &[
    "account-alias",
    "account-id",
    "architecture",
    "image-id",
    "image-name",
    "virtualization-type",
    "root-device-type",
];
const NET_FILTERS: &[&str] = &[
    "ip-range",
    "dhcp-options-set-id",
    "is-default",
    "state",
    "tag-key",
    "tag-value",
];
const SUBNET_FILTERS: &[&str] = &[
    "available-ips-counts",
    "ip-ranges",
    "net-ids",
    "states",
    "subnet-ids",
    "sub-region-names",
];
// Underscores, unlike the others: the plugin's own inconsistency, kept so
// that its templates work.
const SECURITY_GROUP_FILTERS: &[&str] = &[
    "security_group_ids",
    "security_group_names",
    "tag_keys",
    "tag_values",
    "tags",
];

/// One `outscale-bsu` build's options, validated.
///
/// Values are interpolated except the build variables left in `tags`,
/// `snapshot_tags`, `run_tags`, `run_volume_tags` and `omi_description`; see
/// [`super::render_build_vars`]. Relative paths are resolved against the
/// template's directory, so a template means the same from any working
/// directory.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct BsuConfig {
    // ---- access (§2.1) ----
    pub access_key: Option<String>,
    #[serde(deserialize_with = "weak::opt_secret")]
    pub secret_key: Option<Secret>,
    pub region: Option<String>,
    pub custom_endpoint_oapi: Option<String>,
    #[serde(deserialize_with = "weak::bool")]
    pub insecure_skip_tls_verify: bool,
    pub x509_cert_path: Option<PathBuf>,
    pub x509_key_path: Option<PathBuf>,
    pub profile: Option<String>,
    // The next four are inert in the plugin too: OUTSCALE has no region list
    // to validate against, access-key signing has no MFA code or session
    // token, and osci never asks instance metadata for credentials. They are
    // accepted so the plugin's templates load.
    #[serde(deserialize_with = "weak::bool")]
    pub skip_region_validation: bool,
    pub mfa_code: Option<String>,
    #[serde(deserialize_with = "weak::opt_secret")]
    pub token: Option<Secret>,
    #[serde(deserialize_with = "weak::bool")]
    pub skip_metadata_api_check: bool,

    // ---- run (§2.2) ----
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
    /// As written, or the contents of `user_data_file` (base64-encoded when
    /// not UTF-8, which the plugin would have sent encoded anyway).
    pub user_data: Option<String>,
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

    // ---- communicator (Packer SDK) ----
    /// `ssh`, `winrm` or `none`.
    pub communicator: String,
    pub ssh_host: Option<String>,
    #[serde(deserialize_with = "weak::int")]
    pub ssh_port: u16,
    pub ssh_username: Option<String>,
    #[serde(deserialize_with = "weak::opt_secret")]
    pub ssh_password: Option<Secret>,
    pub ssh_keypair_name: Option<String>,
    pub temporary_key_pair_name: Option<String>,
    pub temporary_key_pair_type: Option<String>,
    #[serde(deserialize_with = "weak::opt_int")]
    pub temporary_key_pair_bits: Option<u32>,
    pub ssh_private_key_file: Option<PathBuf>,
    pub ssh_certificate_file: Option<PathBuf>,
    #[serde(deserialize_with = "weak::bool")]
    pub ssh_agent_auth: bool,
    #[serde(deserialize_with = "weak::bool")]
    pub ssh_disable_agent_forwarding: bool,
    #[serde(deserialize_with = "weak::bool")]
    pub ssh_pty: bool,
    #[serde(deserialize_with = "weak::bool")]
    pub ssh_clear_authorized_keys: bool,
    /// A Go duration, `10m` by default here (the SDK's is 5m).
    pub ssh_timeout: String,
    #[serde(deserialize_with = "weak::opt_int")]
    pub ssh_handshake_attempts: Option<u32>,
    pub pause_before_connecting: Option<String>,
    pub ssh_keep_alive_interval: Option<String>,
    pub ssh_read_write_timeout: Option<String>,
    /// `scp` or `sftp`.
    pub ssh_file_transfer_method: Option<String>,
    pub ssh_ciphers: Vec<String>,
    pub ssh_key_exchange_algorithms: Vec<String>,
    pub ssh_local_tunnels: Vec<String>,
    pub ssh_remote_tunnels: Vec<String>,
    pub ssh_bastion_host: Option<String>,
    #[serde(deserialize_with = "weak::opt_int")]
    pub ssh_bastion_port: Option<u16>,
    pub ssh_bastion_username: Option<String>,
    #[serde(deserialize_with = "weak::opt_secret")]
    pub ssh_bastion_password: Option<Secret>,
    pub ssh_bastion_private_key_file: Option<PathBuf>,
    pub ssh_bastion_certificate_file: Option<PathBuf>,
    #[serde(deserialize_with = "weak::bool")]
    pub ssh_bastion_agent_auth: bool,
    #[serde(deserialize_with = "weak::bool")]
    pub ssh_bastion_interactive: bool,
    pub ssh_proxy_host: Option<String>,
    #[serde(deserialize_with = "weak::opt_int")]
    pub ssh_proxy_port: Option<u16>,
    pub ssh_proxy_username: Option<String>,
    #[serde(deserialize_with = "weak::opt_secret")]
    pub ssh_proxy_password: Option<Secret>,
    pub winrm_username: Option<String>,
    #[serde(deserialize_with = "weak::opt_secret")]
    pub winrm_password: Option<Secret>,
    pub winrm_host: Option<String>,
    #[serde(deserialize_with = "weak::opt_int")]
    pub winrm_port: Option<u16>,
    pub winrm_timeout: Option<String>,
    #[serde(deserialize_with = "weak::bool")]
    pub winrm_use_ssl: bool,
    #[serde(deserialize_with = "weak::bool")]
    pub winrm_insecure: bool,
    #[serde(deserialize_with = "weak::bool")]
    pub winrm_use_ntlm: bool,
    #[serde(deserialize_with = "weak::bool")]
    pub winrm_no_proxy: bool,

    // ---- OMI (§2.3) ----
    pub omi_name: String,
    pub omi_description: String,
    pub omi_account_ids: Vec<String>,
    #[serde(deserialize_with = "weak::bool")]
    pub global_permission: bool,
    pub snapshot_account_ids: Vec<String>,
    /// The docs' names, which the plugin rejected (§9.16).
    pub snapshot_users: Vec<String>,
    pub snapshot_groups: Vec<String>,
    pub omi_boot_modes: Vec<String>,
    pub product_codes: Vec<String>,
    pub omi_product_codes: Vec<String>,
    pub omi_groups: Vec<String>,
    pub omi_regions: Vec<String>,
    /// The docs name it, the plugin rejected it; OUTSCALE only has `hvm`.
    pub omi_virtualization_type: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub snapshot_tags: BTreeMap<String, String>,
    #[serde(deserialize_with = "weak::bool")]
    pub force_deregister: bool,
    #[serde(deserialize_with = "weak::bool")]
    pub force_delete_snapshot: bool,
    pub root_device_name: Option<String>,

    // ---- block devices (§2.4) and bsu-only (§2.5) ----
    pub launch_block_device_mappings: Vec<BlockDevice>,
    pub omi_block_device_mappings: Vec<BlockDevice>,
    #[serde(deserialize_with = "weak::bool")]
    pub skip_create_omi: bool,
}

/// The plugin's defaults; `vm_type`, `omi_name` and a source are still
/// needed for a usable build.
impl Default for BsuConfig {
    fn default() -> Self {
        BsuConfig {
            access_key: None,
            secret_key: None,
            region: None,
            custom_endpoint_oapi: None,
            insecure_skip_tls_verify: false,
            x509_cert_path: None,
            x509_key_path: None,
            profile: None,
            skip_region_validation: false,
            mfa_code: None,
            token: None,
            skip_metadata_api_check: false,
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
            communicator: DEFAULT_COMMUNICATOR.into(),
            ssh_host: None,
            ssh_port: DEFAULT_SSH_PORT,
            ssh_username: None,
            ssh_password: None,
            ssh_keypair_name: None,
            temporary_key_pair_name: None,
            temporary_key_pair_type: None,
            temporary_key_pair_bits: None,
            ssh_private_key_file: None,
            ssh_certificate_file: None,
            ssh_agent_auth: false,
            ssh_disable_agent_forwarding: false,
            ssh_pty: false,
            ssh_clear_authorized_keys: false,
            ssh_timeout: DEFAULT_SSH_TIMEOUT.into(),
            ssh_handshake_attempts: None,
            pause_before_connecting: None,
            ssh_keep_alive_interval: None,
            ssh_read_write_timeout: None,
            ssh_file_transfer_method: None,
            ssh_ciphers: Vec::new(),
            ssh_key_exchange_algorithms: Vec::new(),
            ssh_local_tunnels: Vec::new(),
            ssh_remote_tunnels: Vec::new(),
            ssh_bastion_host: None,
            ssh_bastion_port: None,
            ssh_bastion_username: None,
            ssh_bastion_password: None,
            ssh_bastion_private_key_file: None,
            ssh_bastion_certificate_file: None,
            ssh_bastion_agent_auth: false,
            ssh_bastion_interactive: false,
            ssh_proxy_host: None,
            ssh_proxy_port: None,
            ssh_proxy_username: None,
            ssh_proxy_password: None,
            winrm_username: None,
            winrm_password: None,
            winrm_host: None,
            winrm_port: None,
            winrm_timeout: None,
            winrm_use_ssl: false,
            winrm_insecure: false,
            winrm_use_ntlm: false,
            winrm_no_proxy: false,
            omi_name: String::new(),
            omi_description: String::new(),
            omi_account_ids: Vec::new(),
            global_permission: false,
            snapshot_account_ids: Vec::new(),
            snapshot_users: Vec::new(),
            snapshot_groups: Vec::new(),
            omi_boot_modes: Vec::new(),
            product_codes: Vec::new(),
            omi_product_codes: Vec::new(),
            omi_groups: Vec::new(),
            omi_regions: Vec::new(),
            omi_virtualization_type: None,
            tags: BTreeMap::new(),
            snapshot_tags: BTreeMap::new(),
            force_deregister: false,
            force_delete_snapshot: false,
            root_device_name: None,
            launch_block_device_mappings: Vec::new(),
            omi_block_device_mappings: Vec::new(),
            skip_create_omi: false,
        }
    }
}

const DEFAULT_CIDR: &str = "0.0.0.0/0";
const DEFAULT_SHUTDOWN: &str = "stop";
const DEFAULT_COMMUNICATOR: &str = "ssh";
const DEFAULT_SSH_PORT: u16 = 22;
const DEFAULT_SSH_TIMEOUT: &str = "10m";

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

/// A `launch_block_device_mappings` or `omi_block_device_mappings` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct BlockDevice {
    pub device_name: String,
    #[serde(deserialize_with = "weak::opt_bool")]
    pub delete_on_vm_deletion: Option<bool>,
    /// `standard`, `gp2` or `io1`.
    pub volume_type: Option<String>,
    /// GiB.
    #[serde(deserialize_with = "weak::opt_int")]
    pub volume_size: Option<i64>,
    /// `io1` only.
    #[serde(deserialize_with = "weak::opt_int")]
    pub iops: Option<i64>,
    pub snapshot_id: Option<String>,
    /// The docs name it and the plugin rejected it (§9.16); OAPI has it as
    /// `VirtualDeviceName`.
    pub virtual_name: Option<String>,
    #[serde(deserialize_with = "weak::bool")]
    pub no_device: bool,
}

/// A `filter` block: the SDK's repeatable form of one `filters` entry.
#[derive(Debug, Deserialize)]
struct NameValue {
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

impl BsuConfig {
    /// The template's part of the credential chain. `insecure_skip_tls_verify`
    /// only overrides when true, as in the plugin, where a `false` in the
    /// template does not stop the environment from turning it on.
    pub fn overrides(&self, origin: String) -> Overrides {
        Overrides {
            origin,
            access_key: self.access_key.clone(),
            secret_key: self.secret_key.clone(),
            region: self.region.clone(),
            custom_endpoint_oapi: self.custom_endpoint_oapi.clone(),
            x509_cert_path: self.x509_cert_path.clone(),
            x509_key_path: self.x509_key_path.clone(),
            insecure_skip_tls_verify: self.insecure_skip_tls_verify.then_some(true),
            profile: self.profile.clone(),
        }
    }
}

// ---- keys ----

/// Every key a bsu builder entry accepts, sorted.
pub(crate) fn accepted_keys() -> Vec<&'static str> {
    let mut keys: Vec<&str> = super::fields::of::<BsuConfig>()
        .iter()
        .chain(EXTRA_KEYS)
        .copied()
        .collect();
    keys.sort_unstable();
    keys
}

type Failure = (KeyPath, Problem);

/// Refuses keys no struct accepts, at any depth, with the closest known key.
pub(crate) fn check_keys(entry: &Map<String, Value>) -> Result<(), Failure> {
    use super::fields::of;
    check_object(entry, &KeyPath::root(), &accepted_keys())?;
    for (key, value) in entry {
        let path = KeyPath::of(key);
        match key.as_str() {
            "source_omi_filter" => check_filter(value, &path, of::<OmiFilter>())?,
            "net_filter" => check_filter(value, &path, of::<NetFilter>())?,
            "subnet_filter" => check_filter(value, &path, of::<SubnetFilter>())?,
            "security_group_filter" => check_filter(value, &path, of::<SecurityGroupFilter>())?,
            "launch_block_device_mappings" | "omi_block_device_mappings" => {
                for (i, item) in value.as_array().into_iter().flatten().enumerate() {
                    if let Value::Object(device) = item {
                        check_object(device, &path.index(i), of::<BlockDevice>())?;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn check_filter(value: &Value, path: &KeyPath, known: &[&str]) -> Result<(), Failure> {
    let Value::Object(filter) = value else {
        return Ok(());
    };
    check_object(filter, path, known)?;
    let blocks = filter.get("filter").and_then(Value::as_array);
    for (i, block) in blocks.into_iter().flatten().enumerate() {
        if let Value::Object(block) = block {
            let path = path.key("filter").index(i);
            check_object(block, &path, super::fields::of::<NameValue>())?;
        }
    }
    Ok(())
}

fn check_object(
    object: &Map<String, Value>,
    path: &KeyPath,
    known: &[&str],
) -> Result<(), Failure> {
    match object.keys().find(|k| !known.contains(&k.as_str())) {
        Some(key) => Err((path.key(key), Problem::UnknownKey(suggest_key(key, known)))),
        None => Ok(()),
    }
}

/// The closest known key; Amazon's names (the seeds' from-scratch example
/// uses them) map to OUTSCALE's first.
fn suggest_key(key: &str, known: &[&str]) -> Option<String> {
    const AMAZON: &[(&str, &str)] = &[
        ("ami", "omi"),
        ("ebs", "bsu"),
        ("instance", "vm"),
        ("vpc", "net"),
        ("availability_zone", "subregion_name"),
        ("delete_on_termination", "delete_on_vm_deletion"),
    ];
    let translated = AMAZON
        .iter()
        .fold(key.to_string(), |k, (amazon, outscale)| {
            k.replace(amazon, outscale)
        });
    if translated != key && known.contains(&translated.as_str()) {
        return Some(translated);
    }
    suggest(key, known.iter().copied())
}

// ---- building ----

/// Turns an interpolated builder entry (without `type` and `name`) into a
/// validated config.
pub(crate) fn build(
    mut entry: Map<String, Value>,
    template_dir: &Path,
) -> Result<BsuConfig, Failure> {
    fold(&mut entry, template_dir)?;
    let mut config: BsuConfig =
        serde_path_to_error::deserialize(Value::Object(entry)).map_err(|e| {
            let path = KeyPath(
                e.path()
                    .iter()
                    .filter_map(|segment| match segment {
                        serde_path_to_error::Segment::Seq { index } => Some(Seg::Index(*index)),
                        serde_path_to_error::Segment::Map { key } => Some(Seg::Key(key.clone())),
                        _ => None,
                    })
                    .collect(),
            );
            (path, Problem::Invalid(e.into_inner().to_string()))
        })?;
    config.validate(template_dir)?;
    Ok(config)
}

/// Moves aliases and conveniences into their canonical keys, and drops
/// empty strings: as in Packer, an option that renders empty (a variable
/// defaulting to "", typically) is an option not set, so that it falls back
/// to its default or, for credentials, to the environment.
fn fold(entry: &mut Map<String, Value>, template_dir: &Path) -> Result<(), Failure> {
    let conflict = |key: &str, other: &'static str| (KeyPath::of(key), Problem::Conflict(other));

    let unset = |object: &mut Map<String, Value>| object.retain(|_, v| v.as_str() != Some(""));
    unset(entry);
    for key in ["launch_block_device_mappings", "omi_block_device_mappings"] {
        if let Some(Value::Array(devices)) = entry.get_mut(key) {
            devices
                .iter_mut()
                .filter_map(Value::as_object_mut)
                .for_each(unset);
        }
    }

    if let Some(endpoint) = entry.remove("oapi_custom_endpoint") {
        if entry.contains_key("custom_endpoint_oapi") {
            return Err(conflict("oapi_custom_endpoint", "custom_endpoint_oapi"));
        }
        entry.insert("custom_endpoint_oapi".into(), endpoint);
    }

    if let Some(id) = entry.remove("security_group_id") {
        if entry.contains_key("security_group_ids") {
            return Err(conflict("security_group_id", "security_group_ids"));
        }
        match id {
            Value::Null => {}
            Value::String(s) => {
                entry.insert("security_group_ids".into(), Value::from(vec![s]));
            }
            _ => {
                let problem = Problem::Invalid("expected a string (one security group id)".into());
                return Err((KeyPath::of("security_group_id"), problem));
            }
        }
    }

    if let Some(file) = entry.remove("user_data_file") {
        if entry.contains_key("user_data") {
            return Err(conflict("user_data_file", "user_data"));
        }
        let key = KeyPath::of("user_data_file");
        let Value::String(file) = file else {
            return Err((
                key,
                Problem::Invalid("expected a string (a file path)".into()),
            ));
        };
        let path = template_dir.join(&file);
        let bytes = std::fs::read(&path).map_err(|error| (key, Problem::Io { path, error }))?;
        let data = String::from_utf8(bytes).unwrap_or_else(|e| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(e.into_bytes())
        });
        entry.insert("user_data".into(), Value::String(data));
    }
    Ok(())
}

fn invalid(key: &str, message: impl Into<String>) -> Failure {
    (KeyPath::of(key), Problem::Invalid(message.into()))
}

fn one_of(at: KeyPath, value: &str, allowed: &[&str]) -> Result<(), Failure> {
    if allowed.contains(&value) {
        return Ok(());
    }
    let list = allowed
        .iter()
        .map(|a| format!("`{a}`"))
        .collect::<Vec<_>>()
        .join(", ");
    Err((
        at,
        Problem::Invalid(format!("`{value}` is not one of {list}")),
    ))
}

/// A Go duration such as `5m`, `1h30m` or `500ms` (negative ones make no
/// sense for these timeouts), or `None` if `s` is not one.
pub fn parse_go_duration(s: &str) -> Option<std::time::Duration> {
    if s == "0" {
        return Some(std::time::Duration::ZERO);
    }
    let mut rest = s;
    let mut seconds = 0f64;
    while !rest.is_empty() {
        let number = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let digits = &rest[..number];
        if digits.is_empty() || digits == "." || digits.matches('.').count() > 1 {
            return None;
        }
        let value: f64 = digits.parse().ok()?;
        rest = &rest[number..];
        let unit = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        seconds += value * scale;
        rest = &rest[unit..];
    }
    (!s.is_empty())
        .then(|| std::time::Duration::try_from_secs_f64(seconds).ok())
        .flatten()
}

fn go_duration(s: &str) -> bool {
    parse_go_duration(s).is_some()
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

fn check_filter_names(
    key: &str,
    filters: &BTreeMap<String, String>,
    known: &[&str],
) -> Result<(), Failure> {
    match filters.keys().find(|k| !known.contains(&k.as_str())) {
        None => Ok(()),
        Some(name) => {
            let path = KeyPath::of(key).key("filters").key(name);
            let list = known.join(", ");
            let hint = super::error::did_you_mean(suggest(name, known.iter().copied()).as_deref());
            let message = format!("unknown filter `{name}`{hint}; {key} knows {list}");
            Err((path, Problem::Invalid(message)))
        }
    }
}

fn check_devices(key: &str, devices: &[BlockDevice]) -> Result<(), Failure> {
    let mut seen = BTreeSet::new();
    for (i, device) in devices.iter().enumerate() {
        let at = |field: &str| KeyPath::of(key).index(i).key(field);
        if device.device_name.is_empty() {
            let what = "the device name, e.g. \"/dev/sda1\"";
            return Err((at("device_name"), Problem::Missing(what)));
        }
        if !seen.insert(device.device_name.as_str()) {
            let message = format!("device `{}` is mapped more than once", device.device_name);
            return Err((at("device_name"), Problem::Invalid(message)));
        }
        if let Some(kind) = &device.volume_type {
            let allowed = ["standard", "gp2", "io1"];
            one_of(at("volume_type"), kind, &allowed)?;
        }
        if device.iops.is_some() && device.volume_type.as_deref() != Some("io1") {
            let message = "iops only applies to volume_type \"io1\"";
            return Err((at("iops"), Problem::Invalid(message.into())));
        }
        for (field, value) in [("volume_size", device.volume_size), ("iops", device.iops)] {
            if value.is_some_and(|v| v < 0) {
                return Err((at(field), Problem::Invalid("must not be negative".into())));
            }
        }
    }
    Ok(())
}

impl BsuConfig {
    /// What Packer and the plugin check at prepare time, and what they should
    /// have: a template that passes loads into a build that can be planned.
    fn validate(&mut self, template_dir: &Path) -> Result<(), Failure> {
        self.validate_access()?;
        self.validate_run()?;
        self.validate_communicator(template_dir)?;
        self.validate_omi()?;
        for path in [&mut self.x509_cert_path, &mut self.x509_key_path]
            .into_iter()
            .flatten()
        {
            *path = template_dir.join(&*path);
        }
        Ok(())
    }

    fn validate_access(&self) -> Result<(), Failure> {
        match (&self.access_key, &self.secret_key) {
            (Some(_), None) => {
                return Err(invalid("access_key", "set secret_key with it, or neither"));
            }
            (None, Some(_)) => {
                return Err(invalid("secret_key", "set access_key with it, or neither"));
            }
            _ => {}
        }
        if let Some(raw) = &self.custom_endpoint_oapi {
            Endpoint::parse(raw, "https").map_err(|e| invalid("custom_endpoint_oapi", e))?;
        }
        Ok(())
    }

    fn validate_run(&self) -> Result<(), Failure> {
        if self.vm_type.is_empty() {
            let what = "the VM type to build on, e.g. \"tinav6.c4r8p2\"";
            return Err((KeyPath::of("vm_type"), Problem::Missing(what)));
        }
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
        check_devices(
            "launch_block_device_mappings",
            &self.launch_block_device_mappings,
        )
    }

    fn validate_communicator(&mut self, template_dir: &Path) -> Result<(), Failure> {
        one_of(
            KeyPath::of("communicator"),
            &self.communicator,
            &["ssh", "winrm", "none"],
        )?;
        if self.ssh_port == 0 {
            self.ssh_port = DEFAULT_SSH_PORT;
        }
        duration("ssh_timeout", &self.ssh_timeout)?;
        for (key, value) in [
            ("pause_before_connecting", &self.pause_before_connecting),
            ("ssh_keep_alive_interval", &self.ssh_keep_alive_interval),
            ("ssh_read_write_timeout", &self.ssh_read_write_timeout),
            ("winrm_timeout", &self.winrm_timeout),
        ] {
            if let Some(value) = value {
                duration(key, value)?;
            }
        }
        if let Some(method) = &self.ssh_file_transfer_method {
            one_of(
                KeyPath::of("ssh_file_transfer_method"),
                method,
                &["scp", "sftp"],
            )?;
        }
        if let Some(kind) = &self.temporary_key_pair_type {
            let allowed = ["rsa", "dsa", "ecdsa", "ed25519"];
            one_of(KeyPath::of("temporary_key_pair_type"), kind, &allowed)?;
        }
        for path in [
            &mut self.ssh_private_key_file,
            &mut self.ssh_certificate_file,
            &mut self.ssh_bastion_private_key_file,
            &mut self.ssh_bastion_certificate_file,
        ]
        .into_iter()
        .flatten()
        {
            *path = template_dir.join(&*path);
        }
        // The SDK reads the key at prepare time; a missing one would
        // otherwise only show after the VM is up.
        if let Some(key) = &self.ssh_private_key_file
            && let Err(error) = std::fs::metadata(key)
        {
            let path = key.clone();
            return Err((
                KeyPath::of("ssh_private_key_file"),
                Problem::Io { path, error },
            ));
        }
        let has_key_file = self.ssh_private_key_file.is_some();
        match self.communicator.as_str() {
            "ssh" => {
                if self.ssh_username.is_none() {
                    let what = "ssh_username, the user to connect as (e.g. \"outscale\")";
                    return Err((KeyPath::of("ssh_username"), Problem::Missing(what)));
                }
                if self.ssh_keypair_name.is_some() && !has_key_file && !self.ssh_agent_auth {
                    let message = "needs ssh_private_key_file or ssh_agent_auth: osci has no \
                                   other way to the private key of an existing keypair";
                    return Err(invalid("ssh_keypair_name", message));
                }
            }
            "winrm" => {
                if self.winrm_username.is_none() {
                    let what = "winrm_username, the user to connect as";
                    return Err((KeyPath::of("winrm_username"), Problem::Missing(what)));
                }
                if self.ssh_keypair_name.is_some() && !has_key_file && self.winrm_password.is_none()
                {
                    let message = "needs winrm_password or ssh_private_key_file (to decrypt \
                                   the Windows password)";
                    return Err(invalid("ssh_keypair_name", message));
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn validate_omi(&self) -> Result<(), Failure> {
        let name = &self.omi_name;
        if name.is_empty() {
            let what = "omi_name, the name of the OMI to create";
            return Err((KeyPath::of("omi_name"), Problem::Missing(what)));
        }
        let length = name.chars().count();
        if !(3..=128).contains(&length) {
            let message = format!("`{name}` has {length} characters; an OMI name has 3 to 128");
            return Err(invalid("omi_name", message));
        }
        if let Some(bad) = name.chars().find(|c| !omi_name_char(*c)) {
            let message = format!(
                "`{name}` contains {bad:?}; an OMI name may only hold letters, digits and \
                 ()[] ./-'@_ (clean_resource_name replaces the others)"
            );
            return Err(invalid("omi_name", message));
        }
        for (i, mode) in self.omi_boot_modes.iter().enumerate() {
            let at = KeyPath::of("omi_boot_modes").index(i);
            one_of(at, mode, &["legacy", "uefi"])?;
        }
        if let Some(kind) = &self.omi_virtualization_type {
            one_of(KeyPath::of("omi_virtualization_type"), kind, &["hvm"])?;
        }
        for (key, groups) in [
            ("snapshot_groups", &self.snapshot_groups),
            ("omi_groups", &self.omi_groups),
        ] {
            for (i, group) in groups.iter().enumerate() {
                one_of(KeyPath::of(key).index(i), group, &["all"])?;
            }
        }
        check_devices("omi_block_device_mappings", &self.omi_block_device_mappings)?;
        if !self.omi_block_device_mappings.is_empty() && self.root_device_name.is_none() {
            let what = "root_device_name, which of omi_block_device_mappings is the root";
            return Err((KeyPath::of("root_device_name"), Problem::Missing(what)));
        }
        Ok(())
    }
}

fn duration(key: &str, value: &str) -> Result<(), Failure> {
    if go_duration(value) {
        return Ok(());
    }
    let message = format!("`{value}` is not a duration such as \"30s\", \"5m\" or \"1h30m\"");
    Err(invalid(key, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_cidrs() {
        for ok in ["0", "5m", "1h30m", "1.5h", "300ms", "10s"] {
            assert!(go_duration(ok), "{ok}");
        }
        for bad in ["", "5", "m", "5 m", "-5m", "5d", "1..5s"] {
            assert!(!go_duration(bad), "{bad}");
        }
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
    fn amazon_names_suggest_outscale_names() {
        let keys = accepted_keys();
        let s = |k| suggest_key(k, &keys);
        assert_eq!(s("ami_name").as_deref(), Some("omi_name"));
        assert_eq!(s("instance_type").as_deref(), Some("vm_type"));
        assert_eq!(s("source_ami_filter").as_deref(), Some("source_omi_filter"));
        assert_eq!(s("ebs_optimized").as_deref(), Some("bsu_optimized"));
        assert_eq!(s("omi_nmae").as_deref(), Some("omi_name"));
        assert_eq!(s("completely_unrelated"), None);
        let device = super::super::fields::of::<BlockDevice>();
        assert_eq!(
            suggest_key("delete_on_termination", device).as_deref(),
            Some("delete_on_vm_deletion")
        );
    }

    /// The schema lists exactly the keys the loader accepts, at every level.
    #[test]
    fn schema_matches_accepted_keys() {
        use super::super::fields::of;
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/schema/template-bsu.schema.json"
        );
        let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let keys = |pointer: &str| -> BTreeSet<String> {
            let properties = schema.pointer(pointer).and_then(Value::as_object);
            let properties = properties.unwrap_or_else(|| panic!("no {pointer}"));
            properties.keys().cloned().collect()
        };
        let set = |keys: &[&str]| keys.iter().map(|k| k.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(keys("/properties"), set(&accepted_keys()));
        assert_eq!(
            keys("/$defs/block_device/properties"),
            set(of::<BlockDevice>())
        );
        assert_eq!(keys("/$defs/omi_filter/properties"), set(of::<OmiFilter>()));
        assert_eq!(keys("/$defs/net_filter/properties"), set(of::<NetFilter>()));
        assert_eq!(
            keys("/$defs/subnet_filter/properties"),
            set(of::<SubnetFilter>())
        );
        assert_eq!(
            keys("/$defs/security_group_filter/properties"),
            set(of::<SecurityGroupFilter>())
        );
        assert_eq!(
            keys("/$defs/filter_block/properties"),
            set(of::<NameValue>())
        );
        // Filter names too.
        let names = |pointer: &str| -> BTreeSet<String> {
            let names = schema.pointer(pointer).and_then(Value::as_object);
            names
                .unwrap_or_else(|| panic!("no {pointer}"))
                .keys()
                .cloned()
                .collect()
        };
        assert_eq!(
            names("/$defs/omi_filter/properties/filters/properties"),
            set(OMI_FILTERS)
        );
        assert_eq!(
            names("/$defs/net_filter/properties/filters/properties"),
            set(NET_FILTERS)
        );
        assert_eq!(
            names("/$defs/subnet_filter/properties/filters/properties"),
            set(SUBNET_FILTERS)
        );
        assert_eq!(
            names("/$defs/security_group_filter/properties/filters/properties"),
            set(SECURITY_GROUP_FILTERS)
        );
    }
}
