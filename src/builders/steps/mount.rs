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

    /// The folder (as written), what is mounted there (`-o` options and
    /// source, or `-t`/`--bind` and source), and the device to wait for.
    fn plan(&self) -> Result<Planned, StepError> {
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
                Ok(Planned {
                    dir,
                    what: format!("{options}{}", quote(&source)),
                    // nvme_device_path names a device this host makes itself.
                    wait: r.nvme_device_path.is_none().then(|| source.clone()),
                    source: Some(source),
                })
            }
            What::Extra(e) => {
                let root = self.id_of(&e.root)?;
                let dir = format!("{}{}", root.trim_end_matches('/'), e.target);
                let what = match e.fstype.as_str() {
                    "bind" => format!("--bind {}", quote(&e.source)),
                    fstype => format!("-t {} {}", quote(fstype), quote(&e.source)),
                };
                Ok(Planned {
                    dir,
                    what,
                    wait: None,
                    source: None,
                })
            }
        }
    }
}

/// What a mount does.
struct Planned {
    dir: String,
    what: String,
    wait: Option<String>,
    /// The device mounted (the volume's mount), which destroy checks is
    /// still what is mounted there.
    source: Option<String>,
}

#[async_trait]
impl Step for Mount {
    async fn run(&self, run: &Run<'_>) -> Result<(), StepError> {
        let planned = self.plan()?;
        let wrapper = match &self.what {
            What::Root(r) => {
                let device = self.id_of(&r.device)?;
                // A table a command just wrote: its partitions first.
                host::settle(&device).await.map_err(StepError::Failed)?;
                r.wrapper.clone()
            }
            What::Extra(e) => e.wrapper.clone(),
        };
        if let Some(device) = &planned.wait {
            host::wait_for_device(device)
                .await
                .map_err(StepError::Failed)?;
        }
        let dir = &planned.dir;
        std::fs::create_dir_all(dir)
            .map_err(|e| StepError::Failed(format!("creating {dir}: {e}")))?;
        // As /proc/mounts names it: no `..`, no link, no trailing slash.
        let dir = std::fs::canonicalize(dir)
            .map_err(|e| StepError::Failed(format!("{dir}: {e}")))?
            .display()
            .to_string();
        if host::is_mounted(&dir) {
            return Err(StepError::Failed(format!(
                "{dir} is already a mount point (another build's?): give each build its own \
                 mount_path, with {{{{.Device}}}}"
            )));
        }
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
        let command = format!("mount {} {}", planned.what, quote(&dir));
        host::run(&command, &wrapper, &output)
            .await
            .map_err(|e| StepError::Failed(self.run.mask(&e)))?;
        run.recorder.created(run.address, &dir).await?;
        if let Some(source) = planned.source {
            run.recorder
                .update(
                    run.address,
                    BTreeMap::from([("source".to_string(), serde_json::json!(source))]),
                    None,
                    crate::state::Status::Created,
                )
                .await?;
        }
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
    // What is mounted there now must be what this build mounted.
    if let (Some(source), Some(now)) = (
        r.attributes.get("source").and_then(|s| s.as_str()),
        host::mounted_source(dir),
    ) && source != now
    {
        return Err(DestroyError::Failed(format!(
            "{dir} has {now} mounted, not {source} as this build left it: left alone"
        )));
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
