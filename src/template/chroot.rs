//! The options of an `outscale-chroot` (`osc-chroot`) builder entry:
//! behaviour §2.5 and seed 004. The entry is the access and OMI parts every
//! builder shares and the options of its own; no run options and no
//! communicator (provisioners run in a chroot on the host).
//!
//! The seed's from-scratch example is written with Amazon's names
//! (`ami_name`, `ami_virtualization_type`, `ami_block_device_mappings`,
//! `delete_on_termination`): they are read as the OUTSCALE keys, with a
//! warning naming the key to write instead.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::config::{
    AccessConfig, BlockDevice, BlockDevices, Failure, OmiConfig, OmiFilter, RunConfig,
    check_devices, part,
};
use super::error::{KeyPath, Problem};
use super::weak;

/// The mounts Packer adds to the chroot when `chroot_mounts` is empty.
pub const DEFAULT_MOUNTS: [[&str; 3]; 5] = [
    ["proc", "proc", "/proc"],
    ["sysfs", "sysfs", "/sys"],
    ["bind", "/dev", "/dev"],
    ["devpts", "devpts", "/dev/pts"],
    ["binfmt_misc", "binfmt_misc", "/proc/sys/fs/binfmt_misc"],
];

/// Where the volume is mounted unless `mount_path` says otherwise.
pub const DEFAULT_MOUNT_PATH: &str = "/mnt/osci-chroot-volumes/{{.Device}}";

/// Amazon's names the seed uses, and the OUTSCALE keys they stand for.
const AMAZON_KEYS: &[(&str, &str)] = &[
    ("ami_name", "omi_name"),
    ("ami_description", "omi_description"),
    ("ami_virtualization_type", "omi_virtualization_type"),
    ("ami_block_device_mappings", "omi_block_device_mappings"),
];

/// One `outscale-chroot` build's options, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChrootConfig {
    pub access: AccessConfig,
    pub omi: OmiConfig,
    pub chroot: ChrootOptions,
}

/// What only the chroot builder has (behaviour §2.5, seed 004).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ChrootOptions {
    pub source_omi: Option<String>,
    pub source_omi_filter: Option<OmiFilter>,
    #[serde(deserialize_with = "weak::bool")]
    pub from_scratch: bool,
    /// `[fstype, source, target]` triples; empty: [`DEFAULT_MOUNTS`].
    pub chroot_mounts: Vec<Vec<String>>,
    /// Wraps every command run on the host: `{{.Command}}` is the command.
    pub command_wrapper: Option<String>,
    /// Host files copied into the chroot for the provisioners, put back as
    /// they were before the snapshot; `None`: `/etc/resolv.conf` (none from
    /// scratch).
    pub copy_files: Option<Vec<String>>,
    pub device_path: Option<String>,
    pub nvme_device_path: Option<String>,
    pub mount_path: Option<String>,
    #[serde(deserialize_with = "weak::opt_string")]
    pub mount_partition: Option<String>,
    pub mount_options: Vec<String>,
    pub pre_mount_commands: Vec<String>,
    pub post_mount_commands: Vec<String>,
    #[serde(deserialize_with = "weak::opt_int")]
    pub root_volume_size: Option<i64>,
    pub root_volume_type: Option<String>,
    pub root_volume_tags: BTreeMap<String, String>,
    pub omi_block_device_mappings: Vec<BlockDevice>,
}

impl ChrootOptions {
    /// The mounts added inside the chroot, in mount order.
    pub fn mounts(&self) -> Vec<[String; 3]> {
        if self.chroot_mounts.is_empty() {
            return DEFAULT_MOUNTS
                .iter()
                .map(|m| m.map(str::to_string))
                .collect();
        }
        self.chroot_mounts
            .iter()
            .map(|m| [m[0].clone(), m[1].clone(), m[2].clone()])
            .collect()
    }

    /// The host files copied in.
    pub fn copied_files(&self) -> Vec<String> {
        match &self.copy_files {
            Some(files) => files.clone(),
            None if self.from_scratch => Vec::new(),
            None => vec!["/etc/resolv.conf".into()],
        }
    }

    /// The partition mounted as `/`: none (the whole device) for `0`.
    pub fn partition(&self) -> Option<String> {
        match self.mount_partition.as_deref() {
            None => Some("1".into()),
            Some("" | "0") => None,
            Some(p) => Some(p.to_string()),
        }
    }

    /// The source as the planner reads it for every builder.
    pub fn source(&self) -> RunConfig {
        RunConfig {
            source_omi: self.source_omi.clone(),
            source_omi_filter: self.source_omi_filter.clone(),
            ..RunConfig::default()
        }
    }
}

/// Every key a chroot builder entry accepts, sorted.
pub(crate) fn accepted_keys() -> Vec<&'static str> {
    use super::fields::of;
    let mut keys: Vec<&str> = [
        of::<AccessConfig>(),
        of::<OmiConfig>(),
        of::<ChrootOptions>(),
        &["type", "name", "oapi_custom_endpoint"],
        &AMAZON_KEYS.iter().map(|(a, _)| *a).collect::<Vec<_>>(),
    ]
    .concat();
    keys.sort_unstable();
    keys
}

/// Refuses keys no struct accepts, with the closest known key.
pub(crate) fn check_keys(entry: &Map<String, Value>) -> Result<(), Failure> {
    use super::fields::of;
    super::bsu::check_object(entry, &KeyPath::root(), &accepted_keys())?;
    for (key, value) in entry {
        let path = KeyPath::of(key);
        match key.as_str() {
            "source_omi_filter" => super::bsu::check_filter(value, &path, of::<OmiFilter>())?,
            "omi_block_device_mappings" | "ami_block_device_mappings" => {
                let mut known = of::<BlockDevice>().to_vec();
                known.push("delete_on_termination");
                for (i, item) in value.as_array().into_iter().flatten().enumerate() {
                    if let Value::Object(device) = item {
                        super::bsu::check_object(device, &path.index(i), &known)?;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Turns an interpolated entry (without `type` and `name`) into a validated
/// config, with the warnings Packer gives at prepare time.
pub(crate) fn build(
    mut entry: Map<String, Value>,
    template_dir: &Path,
) -> Result<(ChrootConfig, Vec<String>), Failure> {
    let mut warnings = Vec::new();
    fold(&mut entry, &mut warnings)?;
    super::bsu::fold(&mut entry, template_dir)?;
    let config = ChrootConfig {
        access: part(&entry)?,
        omi: part(&entry)?,
        chroot: part(&entry)?,
    };
    config.access.validate()?;
    let c = &config.chroot;
    let devices = BlockDevices {
        launch_block_device_mappings: Vec::new(),
        omi_block_device_mappings: c.omi_block_device_mappings.clone(),
    };
    check_devices("omi_block_device_mappings", &c.omi_block_device_mappings)?;
    for (i, mount) in c.chroot_mounts.iter().enumerate() {
        if mount.len() != 3 {
            let message = format!(
                "has {} elements; each mount is [fstype, source, target]",
                mount.len()
            );
            return Err((
                KeyPath::of("chroot_mounts").index(i),
                Problem::Invalid(message),
            ));
        }
        if !mount[2].starts_with('/') {
            let message = format!("`{}` is not an absolute path in the chroot", mount[2]);
            return Err((
                KeyPath::of("chroot_mounts").index(i).index(2),
                Problem::Invalid(message),
            ));
        }
    }
    for (i, file) in c.copy_files.iter().flatten().enumerate() {
        if !file.starts_with('/') || file.split('/').any(|part| part == "..") {
            let message = format!("`{file}` is not an absolute path on the host without `..`");
            return Err((
                KeyPath::of("copy_files").index(i),
                Problem::Invalid(message),
            ));
        }
    }
    if let Some(kind) = &c.root_volume_type {
        let kinds = ["standard", "gp2", "io1"];
        if !kinds.contains(&kind.as_str()) {
            let message = format!("`{kind}` is not one of {}", kinds.join(", "));
            return Err((KeyPath::of("root_volume_type"), Problem::Invalid(message)));
        }
    }
    if let Some(size) = c.root_volume_size
        && !(1..=14901).contains(&size)
    {
        let message = format!("{size} GiB: a volume has 1 to 14901 GiB");
        return Err((KeyPath::of("root_volume_size"), Problem::Invalid(message)));
    }
    if let Some(p) = &c.mount_partition
        && !p.is_empty()
        && p.parse::<u32>().is_err()
    {
        let message = format!("`{p}` is not a partition number (0 mounts the whole device)");
        return Err((KeyPath::of("mount_partition"), Problem::Invalid(message)));
    }
    if c.from_scratch {
        let missing =
            |key: &str, what: &'static str| Err((KeyPath::of(key), Problem::Missing(what)));
        if c.root_volume_size.is_none() {
            return missing(
                "root_volume_size",
                "root_volume_size, the size of the volume built from scratch",
            );
        }
        if c.pre_mount_commands.is_empty() {
            return missing(
                "pre_mount_commands",
                "pre_mount_commands, which partition and format the new volume",
            );
        }
        if config.omi.root_device_name.is_none() {
            return missing(
                "root_device_name",
                "root_device_name, the OMI's root device (from_scratch)",
            );
        }
        if c.omi_block_device_mappings.is_empty() {
            return missing(
                "omi_block_device_mappings",
                "omi_block_device_mappings, the OMI's devices (from_scratch)",
            );
        }
        if c.root_volume_type.as_deref() == Some("io1") {
            let message = "io1 needs an io1 source; a volume from scratch is gp2 or standard";
            return Err((
                KeyPath::of("root_volume_type"),
                Problem::Invalid(message.into()),
            ));
        }
        if c.source_omi.is_some() || c.source_omi_filter.is_some() {
            warnings.push(
                "source_omi and source_omi_filter are unused when from_scratch is true".into(),
            );
        }
    } else {
        c.source().validate_source()?;
        if !c.omi_block_device_mappings.is_empty() {
            warnings.push("omi_block_device_mappings are unused when from_scratch is false".into());
        }
        if config.omi.root_device_name.is_some() {
            warnings.push("root_device_name is unused when from_scratch is false".into());
        }
    }
    config.omi.validate_chroot(&devices, c.from_scratch)?;
    let mut config = config;
    config.access.resolve_paths(template_dir);
    Ok((config, warnings))
}

/// Reads Amazon's names as OUTSCALE's, each with a warning (the bsu
/// entry's conveniences are folded after).
fn fold(entry: &mut Map<String, Value>, warnings: &mut Vec<String>) -> Result<(), Failure> {
    for (amazon, outscale) in AMAZON_KEYS {
        if let Some(value) = entry.remove(*amazon) {
            if entry.contains_key(*outscale) {
                return Err((KeyPath::of(amazon), Problem::Conflict(outscale)));
            }
            warnings.push(format!(
                "{amazon} is Amazon's name: osci reads it as {outscale}; write {outscale}"
            ));
            entry.insert(outscale.to_string(), value);
        }
    }
    if let Some(Value::Array(devices)) = entry.get_mut("omi_block_device_mappings") {
        for (i, device) in devices.iter_mut().enumerate() {
            let Some(device) = device.as_object_mut() else {
                continue;
            };
            if let Some(value) = device.remove("delete_on_termination") {
                if device.contains_key("delete_on_vm_deletion") {
                    let at = KeyPath::of("omi_block_device_mappings")
                        .index(i)
                        .key("delete_on_termination");
                    return Err((at, Problem::Conflict("delete_on_vm_deletion")));
                }
                warnings.push(format!(
                    "omi_block_device_mappings[{i}]: delete_on_termination is Amazon's name: osci \
                     reads it as delete_on_vm_deletion; write delete_on_vm_deletion"
                ));
                device.insert("delete_on_vm_deletion".into(), value);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amazon_names_are_read_with_a_warning() {
        let entry: Map<String, Value> = serde_json::from_value(serde_json::json!({
            "ami_name": "scratch",
            "from_scratch": true,
            "ami_virtualization_type": "hvm",
            "pre_mount_commands": ["parted {{.Device}} mklabel msdos"],
            "root_volume_size": 15,
            "root_device_name": "xvdf",
            "ami_block_device_mappings": [
                {"device_name": "xvdf", "delete_on_termination": true, "volume_type": "gp2"}
            ]
        }))
        .unwrap();
        check_keys(&entry).unwrap();
        let (config, warnings) = build(entry, Path::new(".")).unwrap();
        assert_eq!(config.omi.omi_name, "scratch");
        assert_eq!(
            config.chroot.omi_block_device_mappings[0].delete_on_vm_deletion,
            Some(true)
        );
        let named: Vec<bool> = [
            "omi_name",
            "omi_virtualization_type",
            "omi_block_device_mappings",
            "delete_on_vm_deletion",
        ]
        .iter()
        .map(|k| warnings.iter().any(|w| w.contains(&format!("write {k}"))))
        .collect();
        assert_eq!(named, [true; 4], "{warnings:?}");
        assert_eq!(config.chroot.copied_files(), Vec::<String>::new());
        assert_eq!(config.chroot.mounts().len(), 5);
    }

    #[test]
    fn from_scratch_needs_its_options() {
        let entry: Map<String, Value> = serde_json::from_value(serde_json::json!({
            "omi_name": "scratch", "from_scratch": true, "root_volume_size": 4
        }))
        .unwrap();
        let (at, _) = build(entry, Path::new(".")).unwrap_err();
        assert_eq!(at.to_string(), "pre_mount_commands");
    }

    /// The schema lists exactly the keys the loader accepts.
    #[test]
    fn schema_matches_accepted_keys() {
        super::super::fields::assert_schema_lists("template-chroot.schema.json", accepted_keys());
    }
}
