//! The options of an `outscale-bsu` (`osc-bsu`) builder entry: behaviour
//! §2.1–§2.5 and the Packer SDK's communicator keys, with the names the
//! plugin's docs use and its code rejected (§9.16) accepted too. The entry
//! is the parts every builder shares (see [`super::config`]) and the one
//! option of its own, `skip_create_omi`.
//!
//! Loading a builder entry: [`check_keys`] on the entry as written (so a
//! misspelt key is reported as such, not as whatever its value trips over),
//! then interpolation (by the caller), then [`build`]: aliases and
//! conveniences folded into the canonical keys, serde for types, and each
//! part's checks for everything Packer checks at prepare time.

use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::config::{
    AccessConfig, BlockDevice, BlockDevices, CommConfig, Failure, NameValue, NetFilter, OmiConfig,
    OmiFilter, RunConfig, SecurityGroupFilter, SubnetFilter, part,
};
use super::error::{KeyPath, Problem};
use super::interpolate::suggest;
use super::weak;

/// Keys of a builder entry that are not fields of a part: the entry's
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

/// One `outscale-bsu` build's options, validated.
///
/// Relative paths are resolved against the template's directory, so a
/// template means the same from any working directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BsuConfig {
    pub access: AccessConfig,
    pub run: RunConfig,
    pub omi: OmiConfig,
    pub block_devices: BlockDevices,
    pub comm: CommConfig,
    pub bsu: BsuOptions,
}

/// What only the bsu builder has (behaviour §2.5).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct BsuOptions {
    #[serde(deserialize_with = "weak::bool")]
    pub skip_create_omi: bool,
}

// ---- keys ----

/// Every key a bsu builder entry accepts, sorted.
pub(crate) fn accepted_keys() -> Vec<&'static str> {
    use super::fields::of;
    let mut keys: Vec<&str> = [
        of::<AccessConfig>(),
        of::<RunConfig>(),
        of::<OmiConfig>(),
        of::<BlockDevices>(),
        of::<CommConfig>(),
        of::<BsuOptions>(),
        EXTRA_KEYS,
    ]
    .concat();
    keys.sort_unstable();
    keys
}

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

pub(crate) fn check_filter(value: &Value, path: &KeyPath, known: &[&str]) -> Result<(), Failure> {
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

pub(crate) fn check_object(
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
    let mut config = BsuConfig {
        access: part(&entry)?,
        run: part(&entry)?,
        omi: part(&entry)?,
        block_devices: part(&entry)?,
        comm: part(&entry)?,
        bsu: part(&entry)?,
    };
    config.access.validate()?;
    config.run.validate()?;
    super::config::check_launch_devices(&config.block_devices)?;
    config.comm.validate(template_dir)?;
    config.omi.validate(&config.block_devices)?;
    config.access.resolve_paths(template_dir);
    Ok(config)
}

/// Moves aliases and conveniences into their canonical keys, and drops
/// empty strings: as in Packer, an option that renders empty (a variable
/// defaulting to "", typically) is an option not set, so that it falls back
/// to its default or, for credentials, to the environment.
pub(crate) fn fold(entry: &mut Map<String, Value>, template_dir: &Path) -> Result<(), Failure> {
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
        // A binary file goes on as the base64 of its bytes, which the user
        // data rule then sends as it is: encoded once.
        let data = String::from_utf8(bytes).unwrap_or_else(|e| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(e.into_bytes())
        });
        entry.insert("user_data".into(), Value::String(data));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

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
            set(super::super::config::OMI_FILTERS)
        );
        assert_eq!(
            names("/$defs/net_filter/properties/filters/properties"),
            set(super::super::config::NET_FILTERS)
        );
        assert_eq!(
            names("/$defs/subnet_filter/properties/filters/properties"),
            set(super::super::config::SUBNET_FILTERS)
        );
        assert_eq!(
            names("/$defs/security_group_filter/properties/filters/properties"),
            set(super::super::config::SECURITY_GROUP_FILTERS)
        );
    }
}
