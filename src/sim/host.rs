//! The machine the simulator runs on, as a VM of the default account
//! (design §6): its metadata service, and the volumes linked to it as real
//! block devices of this machine, which the chroot builder works on.
//!
//! A volume linked to the host is a loop device over its disk image, with a
//! block node at the device name the link asked for (`/dev/xvdf`). This
//! kernel reads no partition table, so partitions are attached here too,
//! each a loop device at its offset (`/dev/xvdf1`), and again whenever a
//! program rewrites the table: writes to device nodes are watched
//! (inotify), as udev watches them to re-read a table after `parted`.
//!
//! Reconciling keeps no memory of its own: what is attached is read back
//! from `/dev` and sysfs (a node whose loop device's backing file is one of
//! this simulator's disks), so a simulator that was killed finds its
//! devices again, and never touches a device it did not make.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use super::disk::tool;
use super::world::{VmRecord, World, iso, now_ms};
use crate::blockdev;
use crate::oapi::model::{Placement, Vm};

/// The major number of loop devices.
const LOOP_MAJOR: u64 = 7;

/// Where device nodes are made.
const DEV: &str = "/dev";

/// One host operation at a time, in this process: the watcher and the
/// reconcile of every simulator share the machine's `/dev`.
static DEVICES: Mutex<()> = Mutex::new(());

/// Registers the host as a running VM of the default account, once.
pub fn register(world: &mut World) {
    if world
        .host_vm
        .as_ref()
        .is_some_and(|id| world.vms.contains_key(id))
    {
        return;
    }
    let id = world.new_id(super::error::Kind::Vm);
    let owner = world.accounts[1].account_id.clone();
    let subregion = world.subregions().into_iter().next().unwrap_or_default();
    let vm = Vm {
        vm_id: id.clone(),
        state: "running".into(),
        image_id: String::new(),
        vm_type: "tinav5.c2r4p2".into(),
        private_ip: Some("127.0.0.1".into()),
        private_dns_name: Some(format!("ip-127-0-0-1.{}.compute.internal", world.region)),
        placement: Some(Placement {
            subregion_name: Some(subregion),
            tenancy: Some("default".into()),
        }),
        root_device_name: Some("/dev/sda1".into()),
        root_device_type: Some("ebs".into()),
        creation_date: Some(iso(now_ms())),
        ..Default::default()
    };
    world.vms.insert(
        id.clone(),
        VmRecord {
            vm,
            owner,
            next: None,
            terminated_at: None,
            console: vec!["the machine the simulator runs on".into()],
            auto_public_ip: None,
        },
    );
    world
        .tags
        .entry(id.clone())
        .or_default()
        .insert("Name".into(), "osci-sim-host".into());
    world.host_vm = Some(id);
}

/// Whether `vm_id` is the host: it is never booted, stopped or deleted by
/// the simulator.
pub fn is_host(world: &World, vm_id: &str) -> bool {
    world.host_vm.as_deref() == Some(vm_id)
}

/// The metadata service's answer for `path` (`/latest/meta-data/...`), as
/// the platform's: plain text, a listing for a folder.
pub fn metadata(world: &World, path: &str) -> Option<String> {
    let vm = &world.vms.get(world.host_vm.as_deref()?)?.vm;
    let key = path.strip_prefix("/latest/meta-data")?.trim_matches('/');
    let subregion = vm.placement.as_ref()?.subregion_name.clone()?;
    Some(match key {
        "" => [
            "instance-id",
            "instance-type",
            "local-ipv4",
            "hostname",
            "placement/",
        ]
        .join("\n"),
        "instance-id" => vm.vm_id.clone(),
        "instance-type" => vm.vm_type.clone(),
        "local-ipv4" => vm.private_ip.clone()?,
        "hostname" => vm.private_dns_name.clone()?,
        "placement" => "availability-zone\nregion".into(),
        "placement/availability-zone" => subregion,
        "placement/region" => world.region.clone(),
        _ => return None,
    })
}

/// Why a volume cannot be linked to the host at `device`, if it cannot.
pub fn refuse_link(device: &str) -> Option<String> {
    if !super::machines::privileged() {
        return Some(
            "linking a volume to the host makes a block device of this machine, which needs \
             root: run the simulator as root"
                .into(),
        );
    }
    Path::new(device)
        .exists()
        .then(|| format!("{device} already exists on the host: the device name is in use"))
}

/// A block node of a loop device the simulator made.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    path: PathBuf,
    loop_minor: u64,
    backing: PathBuf,
    offset: u64,
    sizelimit: u64,
}

fn sysfs(minor: u64, what: &str) -> Option<String> {
    std::fs::read_to_string(format!("/sys/dev/block/{LOOP_MAJOR}:{minor}/loop/{what}"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// The node at `path`, if it is a loop device whose backing file is in
/// `disks`.
fn node(path: &Path, disks: &Path) -> Option<Node> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    if !meta.file_type().is_block_device() {
        return None;
    }
    let (major, minor) = crate::blockdev::numbers(meta.rdev());
    if major != LOOP_MAJOR {
        return None;
    }
    let backing = PathBuf::from(sysfs(minor, "backing_file")?);
    if backing.parent() != Some(disks) {
        return None;
    }
    Some(Node {
        path: path.to_path_buf(),
        loop_minor: minor,
        backing,
        offset: sysfs(minor, "offset")?.parse().ok()?,
        sizelimit: sysfs(minor, "sizelimit")?.parse().ok()?,
    })
}

/// A whole-disk device name: `sdX` or `xvdX`.
fn whole_disk(name: &str) -> bool {
    let letter = name.strip_prefix("xvd").or_else(|| name.strip_prefix("sd"));
    matches!(letter, Some(l) if l.len() == 1 && l.chars().all(|c| c.is_ascii_lowercase()))
}

/// The simulator's whole-disk nodes in `dev`, by name.
fn attached(disks: &Path, dev: &Path) -> BTreeMap<String, Node> {
    let Ok(entries) = std::fs::read_dir(dev) else {
        return BTreeMap::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if !whole_disk(&name) {
                return None;
            }
            Some((name, node(&e.path(), disks)?))
        })
        .collect()
}

/// The partition nodes of the disk node `name` in `dev`: `name1`,
/// `name2`…
fn partition_nodes(name: &str, disks: &Path, dev: &Path) -> BTreeMap<u32, Node> {
    let Ok(entries) = std::fs::read_dir(dev) else {
        return BTreeMap::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let file = e.file_name().to_string_lossy().into_owned();
            let number: u32 = file.strip_prefix(name)?.parse().ok()?;
            Some((number, node(&e.path(), disks)?))
        })
        .collect()
}

fn run(command: &mut Command) -> Result<String, String> {
    let program = command.get_program().to_string_lossy().into_owned();
    let out = command
        .output()
        .map_err(|e| format!("running {program}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!(
            "{program} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Whether the loop device of `node` is mounted somewhere.
fn mounted(node: &Node) -> bool {
    let wanted = format!("{LOOP_MAJOR}:{}", node.loop_minor);
    std::fs::read_to_string("/proc/self/mountinfo").is_ok_and(|m| {
        m.lines()
            .any(|l| l.split(' ').nth(2) == Some(wanted.as_str()))
    })
}

/// A new loop device over `disk` (from `offset`, `len` bytes when given)
/// with a block node at `path`.
fn attach(path: &Path, disk: &Path, window: Option<(u64, u64)>) -> Result<(), String> {
    let mut losetup = Command::new(tool("losetup"));
    losetup.args(["--find", "--show"]);
    if let Some((offset, len)) = window {
        losetup.args([
            "--offset",
            &offset.to_string(),
            "--sizelimit",
            &len.to_string(),
        ]);
    }
    let device = run(losetup.arg(disk))?;
    let minor = std::fs::metadata(&device)
        .map(|m| crate::blockdev::numbers(m.rdev()).1)
        .map_err(|e| format!("{device}: {e}"))?;
    let made = run(Command::new(tool("mknod"))
        .args(["-m", "0660"])
        .arg(path)
        .args(["b", &LOOP_MAJOR.to_string(), &minor.to_string()]));
    if made.is_err() {
        let _ = run(Command::new(tool("losetup")).arg("--detach").arg(&device));
    }
    made.map(|_| ())
}

/// Removes the node and lets its loop device go (at once, or when whoever
/// still has it open closes it).
fn detach(node: &Node) {
    let _ = std::fs::remove_file(&node.path);
    let _ = run(Command::new(tool("losetup"))
        .arg("--detach")
        .arg(format!("/dev/loop{}", node.loop_minor)));
}

/// Brings the partition nodes of disk node `name` in `dev` in line with
/// its table.
fn settle_partitions(name: &str, disk: &Node, disks: &Path, dev: &Path) {
    let mut sector = [0u8; 512];
    let table = std::fs::File::open(&disk.path)
        .and_then(|mut f| f.read_exact(&mut sector))
        .map(|()| blockdev::read(&sector))
        .unwrap_or_default();
    let wanted: BTreeMap<u32, (u64, u64)> = table
        .iter()
        .filter(|p| p.is_data())
        .map(|p| (p.number, (p.offset, p.len)))
        .collect();
    let present = partition_nodes(name, disks, dev);
    for (number, node) in &present {
        let right = wanted.get(number).is_some_and(|(offset, len)| {
            node.backing == disk.backing && node.offset == *offset && node.sizelimit == *len
        });
        // A kernel refuses to drop a partition that is mounted: so does
        // the simulator.
        if !right && !mounted(node) {
            detach(node);
        }
    }
    for (number, (offset, len)) in wanted {
        let path = dev.join(format!("{name}{number}"));
        if present
            .get(&number)
            .is_some_and(|n| n.backing == disk.backing && n.offset == offset && n.sizelimit == len)
        {
            continue;
        }
        if let Err(e) = attach(&path, &disk.backing, Some((offset, len))) {
            tracing::warn!(device = %path.display(), "attaching a partition: {e}");
        }
    }
}

/// The volumes linked to `vm_id`, attached, by device name (without
/// `/dev/`), for the devices `keep` keeps.
fn linked(world: &World, vm_id: &str, keep: impl Fn(&str) -> bool) -> BTreeMap<String, String> {
    world
        .volumes
        .values()
        .flat_map(|r| r.volume.linked_volumes.iter())
        .filter(|l| l.vm_id == vm_id && l.state == "attached" && keep(&l.device_name))
        .filter_map(|l| {
            let name = l.device_name.strip_prefix("/dev/")?;
            Some((name.to_string(), l.volume_id.clone()))
        })
        .collect()
}

/// The devices of the volumes linked to the host (and to simulated VMs,
/// in their trees), kept in line with the world.
pub struct Devices {
    disks: PathBuf,
    /// The folders read since this simulator started that held none of
    /// its devices: while none is wanted there, they are not read again at
    /// every call.
    empty: Mutex<BTreeSet<PathBuf>>,
}

impl Devices {
    pub fn new(disks: PathBuf) -> Devices {
        Devices {
            disks,
            empty: Mutex::new(BTreeSet::new()),
        }
    }

    /// Attaches the volumes whose link to the host is complete, detaches
    /// those no longer linked (a link being removed goes at once, as a
    /// device vanishes when the platform unlinks it).
    pub fn reconcile(&self, world: &World) {
        let Some(host) = world.host_vm.as_deref() else {
            return;
        };
        let wanted = linked(world, host, |_| true);
        self.reconcile_dir(Path::new(DEV), &wanted);
    }

    /// Gives the running VM whose tree is `tree` its volumes other than the
    /// root as devices in its `/dev`, as the host gets its own.
    pub fn reconcile_vm(&self, world: &World, vm_id: &str, tree: &Path) {
        let root = world
            .vms
            .get(vm_id)
            .and_then(|r| r.vm.root_device_name.clone());
        let wanted = linked(world, vm_id, |device| Some(device) != root.as_deref());
        // The VM's own /dev: never a link it made to somewhere else.
        let Some(dev) = super::sshd::inside(tree, "dev") else {
            return;
        };
        if wanted.is_empty() && !dev.is_dir() {
            return;
        }
        let _ = std::fs::create_dir_all(&dev);
        self.reconcile_dir(&dev, &wanted);
    }

    /// Before a VM's tree goes back to its volume or away: what is mounted
    /// in it is unmounted (innermost first), its devices detached.
    /// Answers whether there was anything to release: then what the
    /// devices held is to be written back (`flush`).
    pub fn release_tree(&self, tree: &Path) -> bool {
        let mounts: Vec<String> = std::fs::read_to_string("/proc/mounts")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(1).map(str::to_string))
            .filter(|m| Path::new(m).starts_with(tree))
            .collect();
        for m in mounts.iter().rev() {
            let _ = run(Command::new("umount").arg("-l").arg(m));
        }
        let devices = super::sshd::inside(tree, "dev")
            .filter(|d| d.is_dir())
            .is_some_and(|dev| {
                let had = !attached(&self.disks, &dev).is_empty();
                self.reconcile_dir(&dev, &BTreeMap::new());
                had
            });
        devices || !mounts.is_empty()
    }

    /// Brings the disk nodes of `dev` in line with `wanted` (name → volume).
    fn reconcile_dir(&self, dev: &Path, wanted: &BTreeMap<String, String>) {
        let mut empty = self.empty.lock().unwrap_or_else(|e| e.into_inner());
        if wanted.is_empty() && empty.contains(dev) {
            return;
        }
        let _one = DEVICES.lock().unwrap_or_else(|e| e.into_inner());
        let present = attached(&self.disks, dev);
        if wanted.is_empty() {
            empty.insert(dev.to_path_buf());
        } else {
            empty.remove(dev);
        }
        if wanted.is_empty() && present.is_empty() {
            return;
        }
        for (name, node) in &present {
            let volume = node.backing.file_stem().map(|s| s.to_string_lossy());
            if wanted.get(name).map(String::as_str) != volume.as_deref() {
                for partition in partition_nodes(name, &self.disks, dev).values() {
                    detach(partition);
                }
                detach(node);
            }
        }
        let mut made = BTreeSet::new();
        for (name, volume) in wanted {
            if present.contains_key(name) {
                continue;
            }
            let path = dev.join(name);
            let disk = self.disks.join(format!("{volume}.img"));
            if path.exists() {
                tracing::warn!(device = %path.display(), "in use: {volume} stays unattached");
                continue;
            }
            match attach(&path, &disk, None) {
                Ok(()) => {
                    made.insert(name.clone());
                }
                Err(e) => tracing::warn!(device = %path.display(), "attaching {volume}: {e}"),
            }
        }
        for (name, node) in attached(&self.disks, dev) {
            if wanted.contains_key(&name) {
                settle_partitions(&name, &node, &self.disks, dev);
            }
        }
        if !made.is_empty() {
            watch(self.disks.clone(), dev.to_path_buf());
        }
    }

    /// Writes what the host's devices hold back to their disk images, so
    /// that a snapshot of a linked volume is taken from the device's current
    /// content.
    pub fn flush(&self) {
        let _ = run(&mut Command::new(tool("sync")));
    }
}

/// What one simulator's watcher watches: each watched folder by its
/// watch, and the handle that adds more.
struct Watching {
    watches: inotify::Watches,
    dirs: std::collections::HashMap<inotify::WatchDescriptor, PathBuf>,
}

/// Watches `dev` for device nodes written and closed, and settles the
/// partitions of the simulator's disks that were: one thread per
/// simulator's disks, one watch per folder.
fn watch(disks: PathBuf, dev: PathBuf) {
    type Registry = Mutex<BTreeMap<PathBuf, std::sync::Arc<Mutex<Watching>>>>;
    static WATCHERS: OnceLock<Registry> = OnceLock::new();
    let registry = WATCHERS.get_or_init(|| Mutex::new(BTreeMap::new()));
    let mut registry = registry.lock().unwrap_or_else(|e| e.into_inner());
    let watching = match registry.get(&disks) {
        Some(w) => std::sync::Arc::clone(w),
        None => {
            let Ok(inotify) = inotify::Inotify::init() else {
                return;
            };
            let watching = std::sync::Arc::new(Mutex::new(Watching {
                watches: inotify.watches(),
                dirs: Default::default(),
            }));
            registry.insert(disks.clone(), std::sync::Arc::clone(&watching));
            let shared = std::sync::Arc::clone(&watching);
            let from = disks.clone();
            let started = std::thread::Builder::new()
                .name("osci-sim-devices".into())
                .spawn(move || settle_on_writes(inotify, shared, from));
            if let Err(e) = started {
                tracing::warn!("watching devices: {e}");
            }
            watching
        }
    };
    let mut watching = watching.lock().unwrap_or_else(|e| e.into_inner());
    if watching.dirs.values().any(|d| *d == dev) {
        return;
    }
    match watching.watches.add(&dev, inotify::WatchMask::CLOSE_WRITE) {
        Ok(wd) => {
            watching.dirs.insert(wd, dev);
        }
        Err(e) => tracing::warn!(dir = %dev.display(), "watching devices: {e}"),
    }
}

/// The watcher's loop: a disk node written and closed has its partitions
/// settled.
fn settle_on_writes(
    mut inotify: inotify::Inotify,
    watching: std::sync::Arc<Mutex<Watching>>,
    disks: PathBuf,
) {
    let mut buffer = [0u8; 4096];
    loop {
        let Ok(events) = inotify.read_events_blocking(&mut buffer) else {
            return;
        };
        let written: BTreeSet<(PathBuf, String)> = {
            let mut watching = watching.lock().unwrap_or_else(|e| e.into_inner());
            events
                .filter_map(|e| {
                    // A folder gone (a VM's tree removed) lost its watch:
                    // it is watched anew when it has devices again.
                    if e.mask.contains(inotify::EventMask::IGNORED) {
                        watching.dirs.remove(&e.wd);
                        return None;
                    }
                    let dir = watching.dirs.get(&e.wd)?.clone();
                    let name = e.name?.to_string_lossy().into_owned();
                    whole_disk(&name).then_some((dir, name))
                })
                .collect()
        };
        let _one = DEVICES.lock().unwrap_or_else(|e| e.into_inner());
        for (dev, name) in written {
            if let Some(node) = attached(&disks, &dev).get(&name) {
                settle_partitions(&name, node, &disks, &dev);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_names() {
        assert!(whole_disk("xvdf"));
        assert!(whole_disk("sdb"));
        assert!(!whole_disk("xvdf1"));
        assert!(!whole_disk("vda"));
        assert!(!whole_disk("loop0"));
    }
}
