//! A builder entry's options, split as Packer splits them, so that every
//! builder composes the parts it shares with the others: access (credentials
//! and endpoint), run (where and how the build VM runs), OMI (what is
//! registered and who may use it), block devices, and the communicator.
//!
//! Each part is a serde struct read from the same entry; the keys a builder
//! accepts are the union of its parts' fields (see `fields::of`), so the
//! unknown-key check, its suggestions and the JSON Schema test cannot drift
//! from the structs. Each part checks itself as Packer's `Prepare` does.

mod access;
mod block_devices;
mod communicator;
mod omi;
mod run;

pub use access::AccessConfig;
pub(crate) use block_devices::check_devices;
pub use block_devices::{BlockDevice, BlockDevices};
pub use communicator::CommConfig;
pub use omi::OmiConfig;
pub(crate) use run::NameValue;
pub use run::{
    NET_FILTERS, NetFilter, OMI_FILTER_NAMES, OMI_FILTERS, OmiFilter, RunConfig,
    SECURITY_GROUP_FILTERS, SUBNET_FILTERS, SecurityGroupFilter, SubnetFilter, UserData,
};

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::error::{KeyPath, Problem, Seg};
use super::interpolate::suggest;

pub(crate) type Failure = (KeyPath, Problem);

/// Reads one part from the whole entry: the part takes its own keys and
/// leaves the others, and an error names the key at fault.
pub(crate) fn part<T: DeserializeOwned>(entry: &Map<String, Value>) -> Result<T, Failure> {
    serde_path_to_error::deserialize(Value::Object(entry.clone())).map_err(|e| {
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
    })
}

/// `launch_block_device_mappings`, checked with the run part as the plugin
/// checks them.
pub(crate) fn check_launch_devices(devices: &BlockDevices) -> Result<(), Failure> {
    block_devices::check_devices(
        "launch_block_device_mappings",
        &devices.launch_block_device_mappings,
    )
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

fn duration(key: &str, value: &str) -> Result<(), Failure> {
    if parse_go_duration(value).is_some() {
        return Ok(());
    }
    let message = format!("`{value}` is not a duration such as \"30s\", \"5m\" or \"1h30m\"");
    Err(invalid(key, message))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        for ok in ["0", "5m", "1h30m", "1.5h", "300ms", "10s"] {
            assert!(parse_go_duration(ok).is_some(), "{ok}");
        }
        for bad in ["", "5", "m", "5 m", "-5m", "5d", "1..5s"] {
            assert!(parse_go_duration(bad).is_none(), "{bad}");
        }
    }
}
