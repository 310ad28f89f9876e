//! `copy_files` (behaviour §6): host files (`/etc/resolv.conf` by default)
//! copied into the chroot so provisioners can resolve names, and put back
//! as they were in the image before the snapshot. The plugin deleted them
//! instead, leaving an image without its `/etc/resolv.conf` (or with a
//! dangling systemd link replaced): osci keeps what the image had, in
//! memory, for the second node to restore.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use super::{BuildRun, Output};
use crate::graph::{Address, Kind, Lifetime, Node, Run, Step, StepError};

/// The key of the node that puts the image's files back.
pub const RESTORE: &str = "restore";

/// What the image had at a copied file's path.
#[derive(Debug, Clone)]
pub enum Original {
    Absent,
    File { bytes: Vec<u8>, mode: u32 },
    Link(PathBuf),
}

struct Copy {
    run: Arc<BuildRun>,
    files: Vec<String>,
    mount: Address,
}

struct Restore {
    run: Arc<BuildRun>,
    copy: Address,
}

pub fn node(run: &Arc<BuildRun>, files: Vec<String>, mount: &Address) -> Node {
    let shown = json!(files);
    let step = Copy {
        run: Arc::clone(run),
        files,
        mount: mount.clone(),
    };
    Node::new(
        &run.name,
        Kind::CopyFiles,
        None,
        Lifetime::Step,
        Arc::new(step),
    )
    .with("files", Some(shown))
}

pub fn restore_node(run: &Arc<BuildRun>, copy: &Address) -> Node {
    let step = Restore {
        run: Arc::clone(run),
        copy: copy.clone(),
    };
    Node::new(
        &run.name,
        Kind::CopyFiles,
        Some(RESTORE),
        Lifetime::Step,
        Arc::new(step),
    )
}

/// Where `file` is in the chroot at `root`: its folder resolved, and
/// refused if a link in the image leads out of the chroot.
fn inside(root: &str, file: &str) -> std::io::Result<PathBuf> {
    let path = Path::new(root).join(file.trim_start_matches('/'));
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(std::io::Error::other("not a file path"));
    };
    let parent = std::fs::canonicalize(parent)?;
    if !parent.starts_with(std::fs::canonicalize(root)?) {
        return Err(std::io::Error::other(format!(
            "its folder leads out of the chroot, to {}",
            parent.display()
        )));
    }
    Ok(parent.join(name))
}

fn original(path: &Path) -> std::io::Result<Original> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Original::Absent),
        Err(e) => Err(e),
        Ok(m) if m.file_type().is_symlink() => Ok(Original::Link(std::fs::read_link(path)?)),
        Ok(m) if m.is_file() => Ok(Original::File {
            bytes: std::fs::read(path)?,
            mode: m.permissions().mode(),
        }),
        Ok(_) => Err(std::io::Error::other("not a file")),
    }
}

fn put_back(path: &Path, original: &Original) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    match original {
        Original::Absent => Ok(()),
        Original::File { bytes, mode } => {
            std::fs::write(path, bytes)?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(*mode))
        }
        Original::Link(target) => std::os::unix::fs::symlink(target, path),
    }
}

#[async_trait]
impl Step for Copy {
    async fn run(&self, run: &Run<'_>) -> Result<(), StepError> {
        let Some(Output::Id(root)) = self.run.output(&self.mount) else {
            return Err(StepError::Failed(format!("{} has not run", self.mount)));
        };
        let mut saved = Vec::new();
        let failed =
            |file: &str, e: std::io::Error| StepError::Failed(format!("copy_files: {file}: {e}"));
        for file in &self.files {
            let target = inside(&root, file).map_err(|e| failed(file, e))?;
            let before = original(&target).map_err(|e| failed(file, e))?;
            // A link in the image may point anywhere: it is replaced, not
            // followed (cp --remove-destination).
            if !matches!(before, Original::Absent) {
                std::fs::remove_file(&target).map_err(|e| failed(file, e))?;
            }
            saved.push((target.clone(), before));
            std::fs::copy(file, &target).map_err(|e| failed(file, e))?;
        }
        self.run
            .outputs
            .put(run.address, Output::Files(Arc::new(saved)));
        Ok(())
    }
}

#[async_trait]
impl Step for Restore {
    async fn run(&self, _run: &Run<'_>) -> Result<(), StepError> {
        let Some(Output::Files(saved)) = self.run.output(&self.copy) else {
            return Err(StepError::Failed(format!("{} has not run", self.copy)));
        };
        for (path, original) in saved.iter() {
            put_back(path, original)
                .map_err(|e| StepError::Failed(format!("putting back {}: {e}", path.display())))?;
        }
        Ok(())
    }
}
