//! Secrets: secret keys, private keys and passwords. They never reach a log,
//! an error message, the output or the state file: `Debug`, `Display` and
//! `Serialize` all give a placeholder, and the value is only reachable
//! through [`Secret::expose`], so every place that uses it is easy to find.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What a secret looks like wherever it is printed or serialised.
pub const REDACTED: &str = "<redacted>";

#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(REDACTED)
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Serialising a secret writes the placeholder: a struct that holds one can
/// be written to a file or a log without leaking it.
impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(REDACTED)
    }
}

/// For the one place a secret must go out in the clear, on the wire: the
/// private key in a CreateKeypair answer (the simulator writes it). Named
/// with `#[serde(serialize_with = "…")]`, so every such place is easy to
/// find.
pub fn serialize_exposed<S: Serializer>(secret: &Option<Secret>, s: S) -> Result<S::Ok, S::Error> {
    match secret {
        Some(secret) => s.serialize_some(secret.expose()),
        None => s.serialize_none(),
    }
}

/// `text` with every secret's value replaced by `<sensitive>`, as Packer
/// masks sensitive values: the longest first, so one that holds another is
/// hidden whole.
pub fn mask<'a>(text: &str, secrets: impl IntoIterator<Item = &'a str>) -> String {
    let mut secrets: Vec<&str> = secrets.into_iter().filter(|s| !s.is_empty()).collect();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut text = text.to_string();
    for secret in secrets {
        text = text.replace(secret, "<sensitive>");
    }
    text
}

/// Secrets come in from templates and configuration files as strings.
impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking_hides_the_longest_value_whole() {
        assert_eq!(
            mask("admin:adminpass", ["admin", "adminpass", ""]),
            "<sensitive>:<sensitive>"
        );
    }

    #[test]
    fn never_printed_nor_serialised() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "<redacted> <redacted>");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"<redacted>\"");
        assert_eq!(s.expose(), "hunter2");
        let back: Secret = serde_json::from_str("\"hunter2\"").unwrap();
        assert_eq!(back, s);
    }
}
