//! Packer decodes builder options "weakly" (mapstructure's
//! `WeaklyTypedInput`): booleans and integers may be written as strings.
//! JSON templates depend on it, because user variables are strings:
//! `"volume_size": "{{user `size`}}"`. Strings stay strict: `"vm_type": 3` is
//! an error, not `"3"`.

use std::collections::BTreeMap;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::oapi::Secret;

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean `{b}`"),
        Value::Number(n) => format!("number `{n}`"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

fn parse_bool(v: &Value) -> Result<Option<bool>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        // Go's strconv.ParseBool, plus mapstructure's empty string.
        Value::String(s) => match s.as_str() {
            "" => Ok(None),
            "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(Some(true)),
            "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(Some(false)),
            _ => Err(format!("expected a boolean, got {}", describe(v))),
        },
        other => Err(format!("expected a boolean, got {}", describe(other))),
    }
}

fn parse_int<T: TryFrom<i64>>(v: &Value) -> Result<Option<T>, String> {
    let range = || format!("expected {}, got {}", integer_name::<T>(), describe(v));
    let n = match v {
        Value::Null => return Ok(None),
        Value::Number(n) => n.as_i64().ok_or_else(range)?,
        Value::String(s) if s.trim().is_empty() => return Ok(None),
        Value::String(s) => s.trim().parse::<i64>().map_err(|_| range())?,
        _ => return Err(range()),
    };
    T::try_from(n).map(Some).map_err(|_| range())
}

fn integer_name<T>() -> &'static str {
    match std::any::type_name::<T>() {
        "u16" => "an integer from 0 to 65535",
        "u32" | "u64" => "a non-negative integer",
        _ => "an integer",
    }
}

pub(crate) fn bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    opt_bool(d).map(Option::unwrap_or_default)
}

pub(crate) fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    parse_bool(&Value::deserialize(d)?).map_err(D::Error::custom)
}

pub(crate) fn int<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64> + Default,
{
    opt_int(d).map(Option::unwrap_or_default)
}

pub(crate) fn opt_int<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64>,
{
    parse_int(&Value::deserialize(d)?).map_err(D::Error::custom)
}

/// A string, also written as a number (`"mount_partition": 1`).
pub(crate) fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        Value::Number(n) => Ok(Some(n.to_string())),
        _ => Err(D::Error::custom("expected a string")),
    }
}

/// A secret whose wrong-typed value is not repeated in the error.
pub(crate) fn opt_secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(Secret::new(s))),
        _ => Err(D::Error::custom("expected a string")),
    }
}

/// Filter values: single strings, also written as numbers or booleans
/// (`"is-default": true`).
pub(crate) fn scalar_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let map = BTreeMap::<String, Value>::deserialize(d)?;
    map.into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k, s)),
            Value::Number(n) => Ok((k, n.to_string())),
            Value::Bool(b) => Ok((k, b.to_string())),
            other => Err(D::Error::custom(format!(
                "filter `{k}`: expected a single string, got {}",
                describe(&other)
            ))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn weak_scalars() {
        assert_eq!(parse_bool(&json!("True")), Ok(Some(true)));
        assert_eq!(parse_bool(&json!("0")), Ok(Some(false)));
        assert_eq!(parse_bool(&json!("")), Ok(None));
        assert!(parse_bool(&json!("yes")).is_err());
        assert!(parse_bool(&json!(1)).is_err());
        assert_eq!(parse_int::<u16>(&json!("2222")), Ok(Some(2222)));
        assert_eq!(parse_int::<i64>(&json!(-3)), Ok(Some(-3)));
        let e = parse_int::<u16>(&json!(70000)).unwrap_err();
        assert_eq!(e, "expected an integer from 0 to 65535, got number `70000`");
        assert!(parse_int::<i64>(&json!(1.5)).is_err());
        assert!(parse_int::<i64>(&json!("ten")).is_err());
    }
}
