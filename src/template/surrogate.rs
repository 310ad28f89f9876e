//! The options of an `outscale-bsusurrogate` (`osc-bsusurrogate`) builder
//! entry (behaviour §1.2, §2.4, §2.5): a bsu entry's parts without
//! `skip_create_omi`, and `omi_root_device`, the launch volume that becomes
//! the OMI's root.

use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::BsuConfig;
use super::bsu;
use super::config::{Failure, part};
use super::error::{KeyPath, Problem};
use super::weak;

/// One `outscale-bsusurrogate` build's options, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SurrogateConfig {
    pub bsu: BsuConfig,
    pub omi_root_device: OmiRootDevice,
}

/// Which launch volume is the OMI's root, and how the OMI maps it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct OmiRootDevice {
    /// The launch mapping whose volume's snapshot is the root.
    pub source_device_name: String,
    /// Its name in the OMI.
    pub device_name: String,
    #[serde(deserialize_with = "weak::opt_bool")]
    pub delete_on_vm_deletion: Option<bool>,
    #[serde(deserialize_with = "weak::opt_int")]
    pub iops: Option<i64>,
    pub volume_type: Option<String>,
    #[serde(deserialize_with = "weak::opt_int")]
    pub volume_size: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RootPart {
    omi_root_device: Option<OmiRootDevice>,
}

/// Every key a bsusurrogate entry accepts, sorted.
pub(crate) fn accepted_keys() -> Vec<&'static str> {
    let mut keys: Vec<&str> = bsu::accepted_keys()
        .into_iter()
        .filter(|k| *k != "skip_create_omi")
        .chain(["omi_root_device"])
        .collect();
    keys.sort_unstable();
    keys
}

pub(crate) fn check_keys(entry: &Map<String, Value>) -> Result<(), Failure> {
    let mut rest = entry.clone();
    let root = rest.remove("omi_root_device");
    bsu::check_object(entry, &KeyPath::root(), &accepted_keys())?;
    if let Some(Value::Object(root)) = &root {
        bsu::check_object(
            root,
            &KeyPath::of("omi_root_device"),
            super::fields::of::<OmiRootDevice>(),
        )?;
    }
    bsu::check_keys(&rest)
}

pub(crate) fn build(
    mut entry: Map<String, Value>,
    template_dir: &Path,
) -> Result<SurrogateConfig, Failure> {
    let root: RootPart = part(&entry)?;
    entry.remove("omi_root_device");
    let bsu = bsu::build(entry, template_dir)?;
    let at = |key: &str| KeyPath::of("omi_root_device").key(key);
    let Some(root) = root.omi_root_device else {
        let what = "omi_root_device, the launch volume that becomes the OMI's root";
        return Err((KeyPath::of("omi_root_device"), Problem::Missing(what)));
    };
    if root.source_device_name.is_empty() {
        let what = "source_device_name, one of launch_block_device_mappings";
        return Err((at("source_device_name"), Problem::Missing(what)));
    }
    if root.device_name.is_empty() {
        let what = "device_name, the root device's name in the OMI";
        return Err((at("device_name"), Problem::Missing(what)));
    }
    let launch = &bsu.block_devices.launch_block_device_mappings;
    let Some(source) = launch
        .iter()
        .find(|m| m.device_name == root.source_device_name && !m.no_device)
    else {
        let message = format!(
            "no volume named `{}` in launch_block_device_mappings",
            root.source_device_name
        );
        return Err((at("source_device_name"), Problem::Invalid(message)));
    };
    if let Some(kind) = &root.volume_type {
        let kinds = ["standard", "gp2", "io1"];
        if !kinds.contains(&kind.as_str()) {
            let message = format!("`{kind}` is not one of {}", kinds.join(", "));
            return Err((at("volume_type"), Problem::Invalid(message)));
        }
    }
    if root.iops.is_some() && root.volume_type.as_deref() != Some("io1") {
        let message = "iops only applies to volume_type \"io1\"".to_string();
        return Err((at("iops"), Problem::Invalid(message)));
    }
    if let Some(size) = root.volume_size
        && (size < 1 || source.volume_size.is_some_and(|s| size < s))
    {
        let message = format!(
            "{size} GiB is smaller than the {} GiB launch volume it is a snapshot of",
            source.volume_size.unwrap_or(1)
        );
        return Err((at("volume_size"), Problem::Invalid(message)));
    }
    if source.delete_on_vm_deletion == Some(true) && bsu.run.shutdown_behavior == "terminate" {
        let message = "the root's launch volume goes with the VM, and shutdown_behavior \
                       \"terminate\" ends the VM before its snapshot: keep one or the other";
        return Err((
            KeyPath::of("shutdown_behavior"),
            Problem::Invalid(message.into()),
        ));
    }
    Ok(SurrogateConfig {
        bsu,
        omi_root_device: root,
    })
}

#[cfg(test)]
mod tests {
    /// The schema lists exactly the keys the loader accepts.
    #[test]
    fn schema_matches_accepted_keys() {
        super::super::fields::assert_schema_lists(
            "template-bsusurrogate.schema.json",
            super::accepted_keys(),
        );
    }
}
