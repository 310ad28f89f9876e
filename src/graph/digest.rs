//! The input digest: a SHA-256 over everything that shapes an image's
//! content, so that the plan can tell "rebuild" from "update in place".

use sha2::{Digest as _, Sha256};

/// Feeds named parts into the hash in a fixed framing, so that moving bytes
/// from one part to the next changes the digest.
#[derive(Default)]
pub struct Digest {
    hasher: Sha256,
}

impl Digest {
    pub fn new() -> Digest {
        Digest::default()
    }

    pub fn part(&mut self, name: &str, bytes: &[u8]) -> &mut Self {
        for chunk in [name.as_bytes(), bytes] {
            self.hasher.update((chunk.len() as u64).to_be_bytes());
            self.hasher.update(chunk);
        }
        self
    }

    /// A JSON value in canonical form (object keys sorted, as serde_json's
    /// default map keeps them).
    pub fn json(&mut self, name: &str, value: &serde_json::Value) -> &mut Self {
        let bytes = serde_json::to_vec(value).expect("JSON values serialise");
        self.part(name, &bytes)
    }

    pub fn finish(&mut self) -> String {
        format!(
            "sha256:{}",
            hex::encode(std::mem::take(&mut self.hasher).finalize())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_matters() {
        let a = Digest::new().part("x", b"ab").part("y", b"c").finish();
        let b = Digest::new().part("x", b"a").part("y", b"bc").finish();
        assert_ne!(a, b);
        assert_eq!(a, Digest::new().part("x", b"ab").part("y", b"c").finish());
        assert!(a.starts_with("sha256:"));
    }
}
