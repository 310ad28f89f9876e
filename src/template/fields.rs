//! The keys a serde-derived struct accepts, read from the derive itself.
//!
//! `#[derive(Deserialize)]` passes a struct's field names to
//! `Deserializer::deserialize_struct`; a deserializer that only records them
//! gives the list, so the structs stay the one place where keys are declared.

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// The field names of `T` (of its `try_from` source, if it has one).
pub(crate) fn of<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
    let mut probe = Probe(None);
    // The probe always fails: it only wants to be asked for a struct.
    let _ = T::deserialize(&mut probe);
    probe
        .0
        .expect("a type deserialized from a struct with named fields")
}

struct Probe(Option<&'static [&'static str]>);

#[derive(Debug)]
struct Stop;

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("field probe")
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Stop
    }
}

impl<'de> Deserializer<'de> for &mut Probe {
    type Error = Stop;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Stop> {
        self.0 = Some(fields);
        Err(Stop)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

/// Asserts that the JSON Schema `schema/FILE` lists exactly `accepted` as
/// a builder entry's keys: the schema cannot drift from the structs.
#[cfg(test)]
pub(crate) fn assert_schema_lists(file: &str, accepted: Vec<&str>) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schema")
        .join(file);
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let listed: std::collections::BTreeSet<&str> = schema["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let accepted: std::collections::BTreeSet<&str> = accepted.into_iter().collect();
    assert_eq!(listed, accepted, "{file}");
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_derive() {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        struct Two {
            first: u8,
            second: String,
        }
        assert_eq!(super::of::<Two>(), ["first", "second"]);
    }
}
