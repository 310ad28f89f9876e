//! Addresses name nodes stably across runs: `build.<build>.<kind>` or
//! `build.<build>.<kind>["<key>"]`.

use serde::{Deserialize, Serialize};

use super::Kind;

#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Address(String);

impl Address {
    pub fn new(build: &str, kind: Kind, key: Option<&str>) -> Address {
        Address(match key {
            Some(k) => format!(
                "build.{build}.{}[{}]",
                kind.name(),
                serde_json::Value::from(k)
            ),
            None => format!("build.{build}.{}", kind.name()),
        })
    }

    /// An address as written (in the state, or on the command line).
    pub fn from_text(text: impl Into<String>) -> Address {
        Address(text.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key between brackets, if any: a device name, an OMI id.
    pub fn key(&self) -> Option<String> {
        let open = self.0.find('[')?;
        serde_json::from_str(self.0[open + 1..].strip_suffix(']')?).ok()
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Debug for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl std::borrow::Borrow<str> for Address {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for Address {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Address {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_and_keys() {
        let image = Address::new("web", Kind::Image, None);
        assert_eq!(image.as_str(), "build.web.image");
        assert_eq!(image.key(), None);
        let snapshot = Address::new("web", Kind::Snapshot, Some("/dev/sda1"));
        assert_eq!(snapshot.as_str(), r#"build.web.snapshot["/dev/sda1"]"#);
        assert_eq!(snapshot.key().as_deref(), Some("/dev/sda1"));
    }
}
