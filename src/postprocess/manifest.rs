//! The `manifest` post-processor: appends the build's artifact to a JSON
//! file in Packer's `packer-manifest.json` format, so what reads Packer's
//! manifests (`jq -r '.builds[-1].artifact_id'`) reads osci's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Artifact;
use crate::template::weak;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Manifest {
    /// Where the manifest goes; relative to the current folder, as in Packer.
    output: Option<String>,
    #[serde(deserialize_with = "weak::bool")]
    strip_path: bool,
    #[serde(deserialize_with = "weak::bool")]
    strip_time: bool,
    custom_data: Option<BTreeMap<String, String>>,
}

/// One build in the manifest, field for field as Packer writes it.
#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    name: String,
    builder_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    build_time: Option<i64>,
    files: Option<Vec<Value>>,
    artifact_id: String,
    packer_run_uuid: String,
    custom_data: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Document {
    builds: Vec<Entry>,
    last_run_uuid: String,
}

/// One id per osci run, as Packer has one per `packer build`.
fn run_uuid() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| uuid::Uuid::new_v4().to_string())
}

/// Builds of one run record at once: one at a time reads and rewrites the
/// file.
static WRITING: Mutex<()> = Mutex::new(());

impl Manifest {
    /// Appends `artifact` to the manifest, keeping what earlier runs
    /// recorded; answers the file written.
    pub fn record(&self, artifact: &Artifact) -> Result<PathBuf, String> {
        let path = PathBuf::from(self.output.as_deref().unwrap_or("packer-manifest.json"));
        let _writing = WRITING.lock().unwrap_or_else(|e| e.into_inner());
        let mut document = read(&path)?;
        let build_time =
            (!self.strip_time).then(|| time::OffsetDateTime::now_utc().unix_timestamp());
        document.builds.push(Entry {
            name: artifact.build_name.clone(),
            builder_type: artifact.builder_type.clone(),
            build_time,
            files: None,
            artifact_id: artifact.id(),
            packer_run_uuid: run_uuid().to_string(),
            custom_data: self.custom_data.clone(),
        });
        document.last_run_uuid = run_uuid().to_string();
        let mut bytes = serde_json::to_vec_pretty(&document).map_err(|e| e.to_string())?;
        bytes.push(b'\n');
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        }
        crate::atomic_file::write(&path, &bytes)
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
        Ok(path)
    }
}

/// The manifest at `path`, empty when there is none yet.
fn read(path: &Path) -> Result<Document, String> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            format!(
                "{} is not a manifest osci can add to ({e}): move it away or set `output`",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Document::default()),
        Err(e) => Err(format!("reading {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn artifact(build: &str, omi: &str) -> Artifact {
        Artifact {
            build_name: build.into(),
            builder_type: "outscale-bsu".into(),
            region: "eu-west-2".into(),
            omi_id: omi.into(),
        }
    }

    #[test]
    fn builds_are_appended_in_packers_format() {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("out/manifest.json");
        let manifest = Manifest {
            output: Some(output.to_string_lossy().into_owned()),
            strip_time: true,
            custom_data: Some(BTreeMap::from([("team".into(), "platform".into())])),
            ..Default::default()
        };
        manifest.record(&artifact("web", "ami-1")).unwrap();
        manifest.record(&artifact("db", "ami-2")).unwrap();
        let written: Value = serde_json::from_slice(&std::fs::read(&output).unwrap()).unwrap();
        let builds = written["builds"].as_array().unwrap();
        assert_eq!(builds.len(), 2);
        assert_eq!(builds[0]["artifact_id"], "eu-west-2:ami-1");
        assert_eq!(builds[1]["name"], "db");
        assert_eq!(builds[1]["builder_type"], "outscale-bsu");
        assert_eq!(builds[1]["custom_data"]["team"], "platform");
        assert!(builds[1]["files"].is_null());
        assert!(builds[1].get("build_time").is_none(), "strip_time");
        assert_eq!(written["last_run_uuid"], builds[1]["packer_run_uuid"]);
    }

    #[test]
    fn a_file_that_is_not_a_manifest_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("manifest.json");
        std::fs::write(&output, "not json").unwrap();
        let manifest = Manifest {
            output: Some(output.to_string_lossy().into_owned()),
            ..Default::default()
        };
        let error = manifest.record(&artifact("web", "ami-1")).unwrap_err();
        assert!(error.contains("is not a manifest"), "{error}");
        assert_eq!(std::fs::read_to_string(&output).unwrap(), "not json");
    }
}
