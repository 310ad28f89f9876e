//! Addresses name resources stably across runs: `build.<build>.<kind>` or
//! `build.<build>.<kind>["<key>"]`.

use crate::state::Kind;

pub fn address(build: &str, kind: Kind, key: Option<&str>) -> String {
    match key {
        Some(k) => format!(
            "build.{build}.{}[{}]",
            kind.name(),
            serde_json::Value::from(k)
        ),
        None => format!("build.{build}.{}", kind.name()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(address("web", Kind::Image, None), "build.web.image");
        assert_eq!(
            address("web", Kind::Snapshot, Some("/dev/sda1")),
            r#"build.web.snapshot["/dev/sda1"]"#
        );
    }
}
