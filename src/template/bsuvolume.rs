//! The options of an `outscale-bsuvolume` (`osc-bsuvolume`) builder entry
//! (behaviour §1.3, §2.4): a bsu entry's access, run and communicator parts,
//! no OMI, and `bsu_volumes`, the volumes the build keeps. Packer's docs
//! call them `ebs_volumes`: read with a warning.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::bsu;
use super::config::{
    AccessConfig, BlockDevice, BlockDevices, CommConfig, Failure, RunConfig, check_devices, part,
};
use super::error::{KeyPath, Problem};
use super::weak;
use super::{BsuConfig, OmiConfig};

/// One `outscale-bsuvolume` build's options, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumeConfig {
    /// The VM's options; its launch mappings are the volumes, kept when it
    /// goes.
    pub bsu: BsuConfig,
    pub volumes: Vec<BsuVolume>,
}

/// A `bsu_volumes` entry: a launch mapping with the volume's tags.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct BsuVolume {
    #[serde(flatten)]
    pub device: BlockDevice,
    #[serde(deserialize_with = "weak::scalar_map")]
    pub tags: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct VolumesPart {
    bsu_volumes: Vec<BsuVolume>,
}

/// Every key a bsuvolume entry accepts, sorted.
pub(crate) fn accepted_keys() -> Vec<&'static str> {
    let omi = super::fields::of::<OmiConfig>();
    let mut keys: Vec<&str> = bsu::accepted_keys()
        .into_iter()
        .filter(|k| {
            !omi.contains(k)
                && !matches!(
                    *k,
                    "skip_create_omi"
                        | "launch_block_device_mappings"
                        | "omi_block_device_mappings"
                )
        })
        .chain(["bsu_volumes", "ebs_volumes"])
        .collect();
    keys.sort_unstable();
    keys
}

pub(crate) fn check_keys(entry: &Map<String, Value>) -> Result<(), Failure> {
    bsu::check_object(entry, &KeyPath::root(), &accepted_keys())?;
    let mut known = super::fields::of::<BlockDevice>().to_vec();
    known.push("tags");
    for key in ["bsu_volumes", "ebs_volumes"] {
        for (i, item) in entry
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if let Value::Object(device) = item {
                bsu::check_object(device, &KeyPath::of(key).index(i), &known)?;
            }
        }
    }
    let mut rest = entry.clone();
    rest.remove("bsu_volumes");
    rest.remove("ebs_volumes");
    bsu::check_keys(&rest)
}

pub(crate) fn build(
    mut entry: Map<String, Value>,
    template_dir: &Path,
) -> Result<(VolumeConfig, Vec<String>), Failure> {
    let mut warnings = Vec::new();
    // The bsu entry's conveniences (user_data_file, security_group_id…).
    bsu::fold(&mut entry, template_dir)?;
    if let Some(volumes) = entry.remove("ebs_volumes") {
        if entry.contains_key("bsu_volumes") {
            return Err((KeyPath::of("ebs_volumes"), Problem::Conflict("bsu_volumes")));
        }
        warnings.push(
            "ebs_volumes is the name in Packer's docs: osci reads it as bsu_volumes; write bsu_volumes"
                .to_string(),
        );
        entry.insert("bsu_volumes".into(), volumes);
    }
    let volumes: VolumesPart = part(&entry)?;
    entry.remove("bsu_volumes");
    let devices: Vec<BlockDevice> = volumes
        .bsu_volumes
        .iter()
        .map(|v| BlockDevice {
            // The volumes are the product: they stay when the VM goes.
            delete_on_vm_deletion: Some(false),
            ..v.device.clone()
        })
        .collect();
    if devices.is_empty() {
        let what = "bsu_volumes, the volumes the build makes and keeps";
        return Err((KeyPath::of("bsu_volumes"), Problem::Missing(what)));
    }
    check_devices("bsu_volumes", &devices)?;
    if let Some((i, v)) = volumes
        .bsu_volumes
        .iter()
        .enumerate()
        .find(|(_, v)| v.device.no_device)
    {
        let message = format!(
            "{} has no volume to keep: remove no_device",
            v.device.device_name
        );
        return Err((
            KeyPath::of("bsu_volumes").index(i).key("no_device"),
            Problem::Invalid(message),
        ));
    }
    let access: AccessConfig = part(&entry)?;
    let run: RunConfig = part(&entry)?;
    let mut comm: CommConfig = part(&entry)?;
    access.validate()?;
    run.validate()?;
    comm.validate(template_dir)?;
    let mut access = access;
    access.resolve_paths(template_dir);
    let bsu = BsuConfig {
        access,
        run,
        comm,
        block_devices: BlockDevices {
            launch_block_device_mappings: devices,
            omi_block_device_mappings: Vec::new(),
        },
        omi: OmiConfig::default(),
        bsu: Default::default(),
    };
    Ok((
        VolumeConfig {
            bsu,
            volumes: volumes.bsu_volumes,
        },
        warnings,
    ))
}

#[cfg(test)]
mod tests {
    /// The conveniences of a bsu entry work here too: none is accepted and
    /// then ignored.
    #[test]
    fn user_data_file_and_security_group_id_are_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("init.sh"), "#!/bin/sh\necho hi\n").unwrap();
        let entry: super::Map<String, super::Value> = serde_json::from_value(serde_json::json!({
            "vm_type": "tinav5.c2r4p2", "source_omi": "ami-12345678", "communicator": "none",
            "user_data_file": "init.sh", "security_group_id": "sg-12345678",
            "bsu_volumes": [{"device_name": "/dev/xvdf", "volume_size": 1}],
        }))
        .unwrap();
        super::check_keys(&entry).unwrap();
        let (config, _) = super::build(entry, dir.path()).unwrap();
        assert_eq!(
            config.bsu.run.user_data.as_ref().map(|u| u.as_str()),
            Some("#!/bin/sh\necho hi\n")
        );
        assert_eq!(config.bsu.run.security_group_ids, ["sg-12345678"]);
    }

    /// The schema lists exactly the keys the loader accepts.
    #[test]
    fn schema_matches_accepted_keys() {
        super::super::fields::assert_schema_lists(
            "template-bsuvolume.schema.json",
            super::accepted_keys(),
        );
    }
}
