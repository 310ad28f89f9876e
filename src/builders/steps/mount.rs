//! Mounts on the host (behaviour §6, StepMountDevice and StepMountExtra):
//! the volume's root partition at `mount_path`, then `chroot_mounts`
//! inside it. Each is recorded (its folder) before `mount` runs, so a
//! crash at any point leaves enough to unmount; removal unmounts, the
//! innermost first (each mount needs the one it sits in), and takes the
//! build's mount folder away.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::{BuildRun, Output};
use crate::builders::host::{self, quote};
use crate::graph::{
    Address, DestroyError, Destroyed, Kind, Lifetime, Node, Pending, Run, Step, StepError,
};
use crate::state::{Lookup, ResourceState};

/// The key of the root mount.
pub const ROOT: &str = "/";

/// The volume's mount.
pub struct Root {
    pub device: Address,
    /// `mount_partition`: `None` mounts the whole device.
    pub partition: Option<String>,
    pub nvme_device_path: Option<String>,
    /// `mount_path`, with `{{.Device}}`.
    pub mount_path: String,
    pub options: Vec<String>,
    pub wrapper: String,
}

/// A mount inside the chroot: `[fstype, source, target]`.
pub struct Extra {
    pub root: Address,
    pub fstype: String,
    pub source: String,
    pub target: String,
    pub wrapper: String,
}

enum What {
    Root(Root),
    Extra(Extra),
}

struct Mount {
    run: Arc<BuildRun>,
    what: What,
}

pub fn root_node(run: &Arc<BuildRun>, root: Root) -> Node {
    node(run, ROOT, What::Root(root))
}

pub fn extra_node(run: &Arc<BuildRun>, extra: Extra) -> Node {
    let key = extra.target.clone();
    node(run, &key, What::Extra(extra))
}

fn node(run: &Arc<BuildRun>, key: &str, what: What) -> Node {
    let step = Mount {
        run: Arc::clone(run),
        what,
    };
    Node::new(
        &run.name,
        Kind::Mount,
        Some(key),
        Lifetime::Ephemeral,
        Arc::new(step),
    )
}

impl Mount {
    fn id_of(&self, address: &Address) -> Result<String, StepError> {
        match self.run.output(address) {
            Some(Output::Id(id)) => Ok(id),
            _ => Err(StepError::Failed(format!("{address} has not run"))),
        }
    }

    /// The folder, the command that mounts there, and the device it
    /// mounts, to wait for.
    fn plan(&self) -> Result<(String, String, Option<String>), StepError> {
        match &self.what {
            What::Root(r) => {
                let device = self.id_of(&r.device)?;
                let name = device.rsplit('/').next().unwrap_or(&device).to_string();
                let fields = BTreeMap::from([("Device".to_string(), name)]);
                let dir = crate::template::render_provisioner(
                    &r.mount_path,
                    &fields,
                    &Default::default(),
                )
                .map_err(|e| StepError::Failed(format!("mount_path: {e}")))?;
                let dir = std::path::absolute(&dir)
                    .map_err(|e| StepError::Failed(format!("mount_path {dir}: {e}")))?
                    .display()
                    .to_string();
                let base = r.nvme_device_path.clone().unwrap_or(device);
                let source = match &r.partition {
                    Some(p) => format!("{base}{p}"),
                    None => base,
                };
                let options: String = r
                    .options
                    .iter()
                    .map(|o| format!("-o {} ", quote(o)))
                    .collect();
                let command = format!("mount {options}{} {}", quote(&source), quote(&dir));
                // nvme_device_path names a device this host makes itself.
                let wait = r.nvme_device_path.is_none().then_some(source);
                Ok((dir, command, wait))
            }
            What::Extra(e) => {
                let root = self.id_of(&e.root)?;
                let dir = format!("{}{}", root.trim_end_matches('/'), e.target);
                let command = match e.fstype.as_str() {
                    "bind" => format!("mount --bind {} {}", quote(&e.source), quote(&dir)),
                    fstype => format!(
                        "mount -t {} {} {}",
                        quote(fstype),
                        quote(&e.source),
                        quote(&dir)
                    ),
                };
                Ok((dir, command, None))
            }
        }
    }
}

#[async_trait]
impl Step for Mount {
    async fn run(&self, run: &Run<'_>) -> Result<(), StepError> {
        let (dir, command, source) = self.plan()?;
        let wrapper = match &self.what {
            What::Root(r) => {
                let device = self.id_of(&r.device)?;
                // A table a command just wrote: its partitions first.
                host::settle(&device).await.map_err(StepError::Failed)?;
                r.wrapper.clone()
            }
            What::Extra(e) => e.wrapper.clone(),
        };
        if let Some(source) = source {
            host::wait_for_device(&source)
                .await
                .map_err(StepError::Failed)?;
        }
        std::fs::create_dir_all(&dir)
            .map_err(|e| StepError::Failed(format!("creating {dir}: {e}")))?;
        run.recorder
            .pending(Pending {
                address: run.address.clone(),
                kind: Kind::Mount,
                ephemeral: true,
                lookup: Lookup::name(dir.clone()),
            })
            .await?;
        let output = |line: &str| {
            run.recorder.event(crate::graph::Event::Output {
                build: self.run.name.clone(),
                line: self.run.mask(line),
            })
        };
        host::run(&command, &wrapper, &output)
            .await
            .map_err(StepError::Failed)?;
        run.recorder.created(run.address, &dir).await?;
        self.run.outputs.put(run.address, Output::Id(dir));
        Ok(())
    }
}

/// Unmounts the folder `dir` a mount was recorded with; the volume's mount
/// folder goes too.
pub async fn destroy(r: &ResourceState, dir: &str) -> Result<Destroyed, DestroyError> {
    if !host::is_mounted(dir) && !std::path::Path::new(dir).exists() {
        return Ok(Destroyed::AlreadyGone);
    }
    host::unmount(dir).await.map_err(DestroyError::InUse)?;
    if r.address.key().as_deref() == Some(ROOT) {
        let _ = std::fs::remove_dir(dir);
    }
    Ok(Destroyed::Deleted(dir.to_string()))
}

/// The folder of a mount whose `mount` may have run before its record.
pub fn find(r: &ResourceState) -> Option<String> {
    r.lookup.name.clone()
}
