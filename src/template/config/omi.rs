//! OMI (behaviour §2.3): what is registered, who may use it, how it is
//! tagged, and what `force_deregister` may remove.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::block_devices::{BlockDevices, check_devices};
use super::{Failure, invalid, one_of};
use crate::template::error::{KeyPath, Problem};
use crate::template::interpolate::omi_name_char;
use crate::template::weak;

/// Values are interpolated except the build variables left in `tags`,
/// `snapshot_tags` and `omi_description`; see
/// [`crate::template::render_build_vars`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct OmiConfig {
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
}

impl OmiConfig {
    /// `devices` for the root-device rule: `omi_block_device_mappings`
    /// need a `root_device_name`.
    pub(crate) fn validate(&self, devices: &BlockDevices) -> Result<(), Failure> {
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
        check_devices(
            "omi_block_device_mappings",
            &devices.omi_block_device_mappings,
        )?;
        self.check_root(devices)
    }

    /// The chroot builder's checks: the OMI's mappings and root device
    /// matter only from scratch (its own checks say so).
    pub(crate) fn validate_chroot(
        &self,
        devices: &BlockDevices,
        from_scratch: bool,
    ) -> Result<(), Failure> {
        let names_only = OmiConfig {
            root_device_name: None,
            ..self.clone()
        };
        names_only.validate(&BlockDevices::default())?;
        if from_scratch {
            self.check_root(devices)?;
        }
        Ok(())
    }

    fn check_root(&self, devices: &BlockDevices) -> Result<(), Failure> {
        if !devices.omi_block_device_mappings.is_empty() && self.root_device_name.is_none() {
            let what = "root_device_name, which of omi_block_device_mappings is the root";
            return Err((KeyPath::of("root_device_name"), Problem::Missing(what)));
        }
        Ok(())
    }
}
