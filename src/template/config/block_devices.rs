//! Block devices (behaviour §2.4): what the build VM is launched with, and
//! how the OMI's mappings differ from what was captured.

use std::collections::BTreeSet;

use serde::Deserialize;

use super::{Failure, one_of};
use crate::template::error::{KeyPath, Problem};
use crate::template::weak;

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

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct BlockDevices {
    pub launch_block_device_mappings: Vec<BlockDevice>,
    pub omi_block_device_mappings: Vec<BlockDevice>,
}

/// Checks one list of mappings.
pub(crate) fn check_devices(key: &str, devices: &[BlockDevice]) -> Result<(), Failure> {
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
