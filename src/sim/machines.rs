//! Real machines in miniature (design §6): what the simulated region's
//! records stand for on this machine, kept in line with them after every
//! call, as a controller reconciles desired and observed state.
//!
//! - every volume and snapshot has its disk image ([`Disks`]), made when
//!   the record appears: a copy of what it was made from, so content flows
//!   image → VM → image; disks of deleted resources are removed;
//! - every running VM is a machine: its root volume's filesystem unpacked
//!   in `machines/<vm-id>/root` (the VM's working copy, written back to the
//!   volume when the VM stops, or when a snapshot of it is taken), and an
//!   SSH service on its addresses ([`sshd`](super::sshd)).
//!
//! On first boot of a VM, as cloud-init does, the keypair it was launched
//! with goes to root's and the default user's `authorized_keys`, and its
//! user data to `/var/lib/cloud/instances/<vm-id>/user-data.txt`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use base64::Engine;
use tokio::sync::watch;

use super::disk::{Disks, Partition};
use super::sshd::{self, Access};
use super::world::World;

/// The machines of one simulator.
pub struct Machines {
    disks: Disks,
    host: super::host::Devices,
    dir: PathBuf,
    ssh: Arc<russh::server::Config>,
    running: BTreeMap<String, Running>,
    /// Whether trees left by a previous simulator have been dealt with.
    swept: bool,
}

struct Running {
    machine: Arc<sshd::Machine>,
    power: watch::Sender<bool>,
    /// `None` when the root volume holds no filesystem to boot.
    root: Option<(String, Partition)>,
    /// The addresses port 22 is bound on, each with its listener's switch.
    listeners: BTreeMap<String, watch::Sender<bool>>,
    /// Addresses that could not be bound, told once on the console.
    unbound: BTreeSet<String>,
}

/// Whether this process may `chroot` and bind port 22.
pub fn privileged() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

impl Machines {
    pub fn new(data_dir: &Path, host_key: russh::keys::PrivateKey) -> Machines {
        // Absolute: tools run from inside VM trees, and chroot needs a
        // path that does not depend on where it runs.
        let data_dir = &std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
        Machines {
            disks: Disks::new(data_dir.join("disks")),
            host: super::host::Devices::new(data_dir.join("disks")),
            dir: data_dir.join("machines"),
            ssh: Arc::new(sshd::config(host_key)),
            running: BTreeMap::new(),
            swept: false,
        }
    }

    /// Brings disks and machines in line with `world`. Problems are logged
    /// and shown on the VM's console: a simulator keeps answering.
    pub fn reconcile(&mut self, world: &mut World) {
        self.make_disks(world);
        self.stop_gone(world);
        if !self.swept {
            self.swept = true;
            self.sweep(world);
        }
        let mut live: BTreeSet<&str> = world.volumes.keys().map(String::as_str).collect();
        live.extend(world.snapshots.keys().map(String::as_str));
        self.disks.collect_garbage(&live);
        self.host.reconcile(world);
        self.boot_new(world);
        if privileged() {
            for vm_id in self.running.keys() {
                self.host.reconcile_vm(world, vm_id, &self.tree(vm_id));
            }
        }
        self.update_network(world);
    }

    /// Makes the disks of new snapshots (first, as new volumes may start
    /// from them) and new volumes. Catalogue snapshots, which copy nothing,
    /// are made when a volume first needs them.
    fn make_disks(&mut self, world: &World) {
        let snapshots: Vec<String> = world
            .snapshots
            .iter()
            .filter(|(id, r)| {
                (r.copied_from.is_some() || r.snapshot.volume_id.is_some())
                    && !self.disks.exists(id)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in snapshots {
            if let Err(e) = self.make_snapshot_disk(world, &id, 0) {
                tracing::warn!(snapshot = %id, "{e}");
            }
        }
        for (id, rec) in &world.volumes {
            if self.disks.exists(id) {
                continue;
            }
            let v = &rec.volume;
            let made = match v.snapshot_id.as_deref() {
                Some(snap) if world.snapshots.contains_key(snap) => self
                    .make_snapshot_disk(world, snap, 0)
                    .and_then(|()| self.disks.copy(snap, id, v.size)),
                _ => self.disks.blank(id, v.size),
            };
            if let Err(e) = made {
                tracing::warn!(volume = %id, "{e}");
            }
        }
    }

    fn make_snapshot_disk(&mut self, world: &World, id: &str, depth: u8) -> Result<(), String> {
        let Some(rec) = world.snapshots.get(id) else {
            return Ok(());
        };
        if self.disks.exists(id) {
            return Ok(());
        }
        let size = rec.snapshot.volume_size;
        if let Some(source) = rec.copied_from.as_deref() {
            if depth < 8 {
                self.make_snapshot_disk(world, source, depth + 1)?;
            }
            return self.disks.copy(source, id, size);
        }
        if let Some(volume) = rec.snapshot.volume_id.as_deref() {
            if !self.disks.exists(volume) {
                return Err(format!("the disk of {volume} is missing: {id} stays empty"));
            }
            self.flush_volume(volume)?;
            if linked(world, volume) {
                self.host.flush();
            }
            return self.disks.copy(volume, id, size);
        }
        // A catalogue snapshot: the image it backs names the system.
        let name = world
            .images
            .values()
            .find(|i| i.image.snapshot_ids().iter().any(|s| s == id))
            .map_or("Linux", |i| i.image.image_name.as_str());
        self.disks.seed(id, size, name)
    }

    /// Writes a running machine's root filesystem back to `volume`, so that
    /// a copy of the volume holds what the VM wrote.
    fn flush_volume(&self, volume: &str) -> Result<(), String> {
        for (vm_id, r) in &self.running {
            if let Some((root_volume, partition)) = &r.root
                && root_volume == volume
            {
                self.disks
                    .flush(volume, *partition, &r.machine.root)
                    .map_err(|e| format!("flushing the disk of {vm_id}: {e}"))?;
            }
        }
        Ok(())
    }

    /// Stops the machines of VMs that no longer run: their SSH service
    /// ends, their filesystem goes back to the volume.
    fn stop_gone(&mut self, world: &mut World) {
        let stopping: Vec<String> = self
            .running
            .keys()
            .filter(|id| world.vms.get(*id).is_none_or(|r| r.vm.state != "running"))
            .cloned()
            .collect();
        for vm_id in stopping {
            let Some(r) = self.running.remove(&vm_id) else {
                continue;
            };
            let _ = r.power.send(false);
            r.machine.kill_all();
            self.retire(world, &vm_id, r.root);
        }
    }

    /// Where a VM's root filesystem is unpacked while it runs.
    fn tree(&self, vm_id: &str) -> PathBuf {
        self.dir.join(vm_id).join("root")
    }

    /// Writes a VM's tree back to its root volume (if the volume is still
    /// there) and removes it. If that fails the tree stays: a start boots
    /// from it again.
    fn retire(&self, world: &mut World, vm_id: &str, root: Option<(String, Partition)>) {
        let tree = self.tree(vm_id);
        // What the VM mounted and its devices go first: neither is part of
        // its root filesystem, nor to be removed with its tree.
        if self.host.release_tree(&tree) {
            self.host.flush();
        }
        if let Some((volume, partition)) = root
            && world.volumes.contains_key(&volume)
            && tree.is_dir()
            && let Err(e) = self.disks.flush(&volume, partition, &tree)
        {
            console(world, vm_id, &format!("flushing the root disk failed: {e}"));
            return;
        }
        let _ = std::fs::remove_dir_all(self.dir.join(vm_id));
    }

    /// Trees a previous simulator left for VMs that no longer run: written
    /// back to their volume, then removed.
    fn sweep(&mut self, world: &mut World) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let vm_id = entry.file_name().to_string_lossy().into_owned();
            if world
                .vms
                .get(&vm_id)
                .is_some_and(|r| r.vm.state == "running")
            {
                continue;
            }
            let root = root_volume(world, &vm_id).and_then(|volume| {
                let partition = self.disks.root_partition(&volume).ok().flatten()?;
                Some((volume, partition))
            });
            self.retire(world, &vm_id, root);
        }
    }

    fn boot_new(&mut self, world: &mut World) {
        let booting: Vec<String> = world
            .vms
            .iter()
            .filter(|(id, r)| {
                r.vm.state == "running"
                    && !self.running.contains_key(*id)
                    && !super::host::is_host(world, id)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for vm_id in booting {
            let (power, powered) = watch::channel(true);
            let tree = self.tree(&vm_id);
            let root = match self.boot(world, &vm_id, &tree) {
                Ok(root) => root,
                Err(e) => {
                    console(world, &vm_id, &format!("boot failed: {e}"));
                    None
                }
            };
            let machine = Arc::new(sshd::Machine {
                vm_id: vm_id.clone(),
                root: tree,
                access: RwLock::new(Access::default()),
                powered,
                processes: Default::default(),
                reboots: watch::channel(0).0,
            });
            self.running.insert(
                vm_id,
                Running {
                    machine,
                    power,
                    root,
                    listeners: BTreeMap::new(),
                    unbound: BTreeSet::new(),
                },
            );
        }
    }

    /// Unpacks the root filesystem (unless a previous run of the simulator
    /// left it unpacked) and does the first-boot work.
    fn boot(
        &self,
        world: &World,
        vm_id: &str,
        tree: &Path,
    ) -> Result<Option<(String, Partition)>, String> {
        let rec = &world.vms[vm_id];
        let Some(volume) = root_volume(world, vm_id) else {
            return Err("no volume at the root device".into());
        };
        let Some(partition) = self.disks.root_partition(&volume)? else {
            return Err(format!("{volume} has no partition table: nothing to boot"));
        };
        if !tree.is_dir() {
            let partial = tree.with_extension("partial");
            let _ = std::fs::remove_dir_all(&partial);
            self.disks.extract(&volume, partition, &partial)?;
            std::fs::rename(&partial, tree).map_err(|e| format!("unpacking {volume}: {e}"))?;
        }
        let key = rec.vm.keypair_name.as_deref().and_then(|name| {
            world
                .keypairs
                .values()
                .find(|k| k.owner == rec.owner && k.keypair.keypair_name == name)
                .map(|k| k.public_key.clone())
        });
        // /run starts empty at every boot: no reboot is pending.
        if let Some(marker) = sshd::inside(tree, sshd::REBOOT_REQUEST) {
            let _ = std::fs::remove_file(marker);
        }
        first_boot(tree, vm_id, key.as_deref(), rec.vm.user_data.as_deref())
            .map_err(|e| format!("first boot: {e}"))?;
        make_devices(tree);
        Ok(Some((volume, partition)))
    }

    /// Follows address and security group changes: binds port 22 on the
    /// VM's current addresses and lets in what its groups allow.
    fn update_network(&mut self, world: &mut World) {
        let mut notes = Vec::new();
        for (vm_id, r) in self.running.iter_mut() {
            let Some(rec) = world.vms.get(vm_id) else {
                continue;
            };
            let access = access(world, &rec.vm.security_groups);
            if let Ok(mut current) = r.machine.access.write()
                && *current != access
            {
                *current = access;
            }
            // Listening needs the runtime the simulator serves from.
            if r.root.is_none() || tokio::runtime::Handle::try_current().is_err() {
                continue;
            }
            let addresses: BTreeSet<String> = rec
                .vm
                .private_ip
                .iter()
                .chain(&rec.vm.public_ip)
                .cloned()
                .collect();
            r.listeners.retain(|address, switch| {
                let keep = addresses.contains(address);
                if !keep {
                    let _ = switch.send(false);
                }
                keep
            });
            for address in addresses {
                if r.listeners.contains_key(&address) {
                    continue;
                }
                match sshd::bind(&address) {
                    Ok(listener) => {
                        let (switch, listening) = watch::channel(true);
                        tokio::spawn(sshd::serve(
                            listener,
                            Arc::clone(&r.machine),
                            Arc::clone(&self.ssh),
                            listening,
                        ));
                        r.unbound.remove(&address);
                        r.listeners.insert(address, switch);
                    }
                    // Tried again at the next call; told once.
                    Err(e) => {
                        if r.unbound.insert(address.clone()) {
                            notes.push((vm_id.clone(), format!("sshd: {address}:22: {e}")));
                        }
                    }
                }
            }
        }
        for (vm_id, note) in notes {
            console(world, &vm_id, &note);
        }
    }
}

impl Drop for Machines {
    /// The SSH services end with the simulator; running VMs stay unpacked
    /// and are picked up again by the next simulator on this folder, which
    /// gives them their volumes' devices again: the devices go now, with
    /// what was mounted from them.
    fn drop(&mut self) {
        for (vm_id, r) in &self.running {
            let _ = r.power.send(false);
            r.machine.kill_all();
            self.host.release_tree(&self.tree(vm_id));
        }
    }
}

/// What the security groups let reach port 22 over TCP, from IPv4 ranges.
fn access(world: &World, groups: &[crate::oapi::model::SecurityGroupLight]) -> Access {
    let mut nets = Vec::new();
    for light in groups {
        let Some(group) = world.security_groups.get(&light.security_group_id) else {
            continue;
        };
        for rule in &group.inbound_rules {
            let protocol = rule.ip_protocol.as_deref().unwrap_or("-1");
            let port = i64::from(sshd::SSH_PORT);
            let ports = protocol == "-1"
                || (protocol == "tcp"
                    && rule.from_port_range.unwrap_or(0) <= port
                    && port <= rule.to_port_range.unwrap_or(65535));
            if !ports {
                continue;
            }
            for range in rule.ip_ranges.iter().flatten() {
                let (ip, len) = range.split_once('/').unwrap_or((range, "32"));
                if let (Ok(ip), Ok(len)) = (ip.parse::<Ipv4Addr>(), len.parse::<u8>())
                    && len <= 32
                {
                    nets.push((ip, len));
                }
            }
        }
    }
    Access(nets)
}

fn console(world: &mut World, vm_id: &str, line: &str) {
    tracing::warn!(vm = %vm_id, "{line}");
    if let Some(rec) = world.vms.get_mut(vm_id) {
        rec.console.push(line.to_string());
    }
}

/// The volume at a VM's root device.
/// Whether `volume` is linked to a VM (the host's or a simulated VM's
/// block device, which may hold writes not yet in its disk image).
fn linked(world: &World, volume: &str) -> bool {
    world
        .volumes
        .get(volume)
        .is_some_and(|r| !r.volume.linked_volumes.is_empty())
}

fn root_volume(world: &World, vm_id: &str) -> Option<String> {
    let rec = world.vms.get(vm_id)?;
    let root_device = rec.vm.root_device_name.as_deref().unwrap_or("/dev/sda1");
    world
        .volumes
        .iter()
        .find(|(_, v)| {
            v.volume
                .linked_volumes
                .iter()
                .any(|l| l.vm_id == vm_id && l.device_name == root_device)
        })
        .map(|(id, _)| id.clone())
}

/// `path` in the VM's tree, refusing links out of it (the tree is the
/// image's, and the host writes there as root).
fn in_tree(tree: &Path, path: &str) -> std::io::Result<PathBuf> {
    sshd::inside(tree, path).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("/{path} leads out of the VM's filesystem (a symbolic link)"),
        )
    })
}

/// cloud-init's first boot of an instance: the launch key is trusted and
/// the user data kept, once per VM id.
fn first_boot(
    tree: &Path,
    vm_id: &str,
    key: Option<&str>,
    user_data: Option<&str>,
) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let instance_dir = format!("var/lib/cloud/instances/{vm_id}");
    let instance = in_tree(tree, &instance_dir)?;
    if instance.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(&instance)?;
    if let Some(data) = user_data {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data)
            .unwrap_or_else(|_| data.as_bytes().to_vec());
        let file = in_tree(tree, &format!("{instance_dir}/user-data.txt"))?;
        std::fs::write(file, &bytes)?;
        set_passwords(tree, &String::from_utf8_lossy(&bytes))?;
    }
    if let Some(key) = key {
        for home in ["root", "home/outscale"] {
            let ssh = in_tree(tree, &format!("{home}/.ssh"))?;
            std::fs::create_dir_all(&ssh)?;
            std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o700))?;
            let file = in_tree(tree, &format!("{home}/.ssh/authorized_keys"))?;
            let mut keys = std::fs::read_to_string(&file).unwrap_or_default();
            if !keys.lines().any(|l| l.trim() == key.trim()) {
                if !keys.is_empty() && !keys.ends_with('\n') {
                    keys.push('\n');
                }
                keys.push_str(key.trim());
                keys.push('\n');
            }
            std::fs::write(&file, keys)?;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
}

/// cloud-init's "set passwords" module, for a `#cloud-config` user data
/// with `password:` (the default user's) and `ssh_pwauth: true`. The
/// simulator keeps a SHA-256 of the password in `/etc/ssh/osci_passwords`
/// (its sshd's own file: it has no PAM), and lets passwords in as
/// cloud-init does, with a `sshd_config.d` drop-in.
fn set_passwords(tree: &Path, user_data: &str) -> std::io::Result<()> {
    if !user_data.starts_with("#cloud-config") {
        return Ok(());
    }
    let value = |key: &str| {
        user_data.lines().find_map(|line| {
            let (k, v) = line.split_once(':')?;
            (k.trim() == key).then(|| v.trim().trim_matches(|c| c == '"' || c == '\'').to_string())
        })
    };
    if let Some(password) = value("password").filter(|p| !p.is_empty()) {
        let file = in_tree(tree, "etc/ssh/osci_passwords")?;
        std::fs::create_dir_all(in_tree(tree, "etc/ssh")?)?;
        std::fs::write(
            &file,
            format!("outscale:{}\n", sshd::password_hash(&password)),
        )?;
        std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    }
    if value("ssh_pwauth").is_some_and(|v| matches!(v.as_str(), "true" | "yes" | "True")) {
        std::fs::create_dir_all(in_tree(tree, "etc/ssh/sshd_config.d")?)?;
        std::fs::write(
            in_tree(tree, sshd::PASSWORD_DROP_IN)?,
            "PasswordAuthentication yes\n",
        )?;
    }
    Ok(())
}

/// The device nodes a booted system has (devtmpfs would make them).
fn make_devices(tree: &Path) {
    let Ok(dev) = in_tree(tree, "dev") else {
        return;
    };
    let _ = std::fs::create_dir_all(&dev);
    for (name, minor) in [
        ("null", "3"),
        ("zero", "5"),
        ("random", "8"),
        ("urandom", "9"),
    ] {
        let Ok(node) = in_tree(tree, &format!("dev/{name}")) else {
            continue;
        };
        if node.exists() {
            continue;
        }
        let _ = std::process::Command::new(super::disk::tool("mknod"))
            .args(["-m", "666"])
            .arg(&node)
            .args(["c", "1", minor])
            .status();
    }
}
