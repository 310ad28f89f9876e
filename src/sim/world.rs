//! Everything the simulated region holds, and how it changes with time.
//!
//! Resources are stored as the API shows them (the model types of
//! `crate::oapi::model`) plus what the API does not show: the owner, and the
//! scheduled next state. Time-driven changes (a VM booting, a snapshot
//! filling up) are applied lazily by [`World::advance`] before every request,
//! from timestamps, so a restarted simulator picks up where it left off.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::oapi::model::{
    Image, Keypair, Net, PublicIp, ResourceTag, SecurityGroup, Snapshot, Subnet, Vm, Volume,
};

use super::error::Kind;

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

pub fn now_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// RFC 3339 as the API writes `CreationDate`.
pub fn iso(ms: Millis) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// How long state changes take, in seconds at scale 1.
#[derive(Debug, Clone, Copy)]
pub struct Latency {
    pub scale: f64,
}

impl Latency {
    pub const VM_BOOT: f64 = 6.0;
    pub const VM_STOP: f64 = 4.0;
    pub const VM_TERMINATE: f64 = 4.0;
    pub const VOLUME_CREATE: f64 = 2.0;
    pub const VOLUME_LINK: f64 = 1.0;
    pub const SNAPSHOT_BASE: f64 = 3.0;
    pub const SNAPSHOT_PER_GIB: f64 = 0.2;
    pub const IMAGE_REGISTER: f64 = 2.0;

    pub fn after(&self, now: Millis, seconds: f64) -> Millis {
        now + (seconds * self.scale * 1000.0).round() as i64
    }
}

/// How long a terminated VM stays listed, as on the real platform.
pub const TERMINATED_VISIBLE_MS: Millis = 3600 * 1000;

/// A scheduled change to `to` at time `at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Next {
    pub to: String,
    pub at: Millis,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Account {
    pub account_id: String,
    pub alias: Option<String>,
    pub email: String,
    pub access_key: String,
    /// The simulator's own record of the key, as the real platform keeps it.
    pub secret_key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VmRecord {
    pub vm: Vm,
    pub owner: String,
    pub next: Option<Next>,
    pub terminated_at: Option<Millis>,
    pub console: Vec<String>,
    /// The address a public-Cloud VM gets by itself, shown while no public
    /// IP of the account is linked to it.
    pub auto_public_ip: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageRecord {
    pub image: Image,
    pub ready_at: Millis,
    /// Ends in `failed` instead of `available` (the `fail` fault).
    #[serde(default)]
    pub fails: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotRecord {
    pub snapshot: Snapshot,
    /// The snapshot this one copies (its bytes come from there).
    #[serde(default)]
    pub copied_from: Option<String>,
    pub started_at: Millis,
    pub done_at: Millis,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VolumeRecord {
    pub volume: Volume,
    pub owner: String,
    pub next: Option<Next>,
    /// When the link (attaching or detaching) settles.
    pub link_settles_at: Option<Millis>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeypairRecord {
    pub keypair: Keypair,
    pub owner: String,
    /// OpenSSH form (`ssh-rsa AAAA…`), what a VM puts in authorized_keys.
    pub public_key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PublicIpRecord {
    pub ip: PublicIp,
    pub owner: String,
}

impl PublicIpRecord {
    pub fn clear_link(&mut self) {
        self.ip.vm_id = None;
        self.ip.link_public_ip_id = None;
        self.ip.private_ip = None;
        self.ip.nic_account_id = None;
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetRecord {
    pub net: Net,
    pub owner: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubnetRecord {
    pub subnet: Subnet,
    pub owner: String,
}

/// The whole region.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct World {
    pub region: String,
    pub accounts: Vec<Account>,
    pub vms: BTreeMap<String, VmRecord>,
    pub images: BTreeMap<String, ImageRecord>,
    pub snapshots: BTreeMap<String, SnapshotRecord>,
    pub volumes: BTreeMap<String, VolumeRecord>,
    /// By keypair id.
    pub keypairs: BTreeMap<String, KeypairRecord>,
    pub security_groups: BTreeMap<String, SecurityGroup>,
    pub public_ips: BTreeMap<String, PublicIpRecord>,
    pub nets: BTreeMap<String, NetRecord>,
    pub subnets: BTreeMap<String, SubnetRecord>,
    /// Resource id → key → value.
    pub tags: BTreeMap<String, BTreeMap<String, String>>,
    /// The VM that stands for the machine the simulator runs on.
    #[serde(default)]
    pub host_vm: Option<String>,
}

/// A random id of the OUTSCALE form `prefix-xxxxxxxx`.
pub fn random_id(prefix: &str, hex_len: usize) -> String {
    let mut rng = rand::thread_rng();
    let hex: String = (0..hex_len)
        .map(|_| char::from_digit(rng.gen_range(0..16), 16).expect("digit < 16"))
        .collect();
    format!("{prefix}-{hex}")
}

/// Upper-case letters and digits, as OUTSCALE access and secret keys are.
pub fn random_key(len: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| char::from(CHARS[rng.gen_range(0..CHARS.len())]))
        .collect()
}

impl World {
    /// A new id of `kind`, unused in this world.
    pub fn new_id(&self, kind: Kind) -> String {
        loop {
            let id = match kind {
                Kind::Vm => random_id("i", 8),
                Kind::Image => random_id("ami", 8),
                Kind::Snapshot => random_id("snap", 8),
                Kind::Volume => random_id("vol", 8),
                Kind::Keypair => random_id("key", 32),
                Kind::SecurityGroup => random_id("sg", 8),
                Kind::PublicIp => random_id("eipalloc", 8),
                Kind::Net => random_id("vpc", 8),
                Kind::Subnet => random_id("subnet", 8),
            };
            if !self.exists(&id) {
                return id;
            }
        }
    }

    pub fn exists(&self, id: &str) -> bool {
        self.vms.contains_key(id)
            || self.images.contains_key(id)
            || self.snapshots.contains_key(id)
            || self.volumes.contains_key(id)
            || self.keypairs.contains_key(id)
            || self.security_groups.contains_key(id)
            || self.public_ips.contains_key(id)
            || self.nets.contains_key(id)
            || self.subnets.contains_key(id)
    }

    /// The owner of a resource, if it exists.
    pub fn owner_of(&self, id: &str) -> Option<&str> {
        Some(match Kind::of_id(id)? {
            Kind::Vm => self.vms.get(id)?.owner.as_str(),
            Kind::Image => self.images.get(id)?.image.account_id.as_str(),
            Kind::Snapshot => self.snapshots.get(id)?.snapshot.account_id.as_str(),
            Kind::Volume => self.volumes.get(id)?.owner.as_str(),
            Kind::Keypair => self.keypairs.get(id)?.owner.as_str(),
            Kind::SecurityGroup => self.security_groups.get(id)?.account_id.as_str(),
            Kind::PublicIp => self.public_ips.get(id)?.owner.as_str(),
            Kind::Net => self.nets.get(id)?.owner.as_str(),
            Kind::Subnet => self.subnets.get(id)?.owner.as_str(),
        })
    }

    pub fn tags_of(&self, id: &str) -> Vec<ResourceTag> {
        self.tags
            .get(id)
            .map(|t| t.iter().map(|(k, v)| ResourceTag::new(k, v)).collect())
            .unwrap_or_default()
    }

    pub fn account(&self, account_id: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.account_id == account_id)
    }

    pub fn account_by_key(&self, access_key: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.access_key == access_key)
    }

    pub fn subregions(&self) -> Vec<String> {
        ["a", "b", "c"]
            .iter()
            .map(|l| format!("{}{l}", self.region))
            .collect()
    }

    /// A loopback address for a VM's private side (127.1.0.0 to
    /// 127.99.255.255) or a public IP (127.100.0.0 to 127.199.255.255), so
    /// that a VM's services can listen on its own addresses on this machine.
    /// Random in a wide range, so that simulators running side by side
    /// (parallel tests) almost never pick the same one.
    pub fn allocate_ip(&mut self, public: bool) -> String {
        let mut rng = rand::thread_rng();
        loop {
            let second = if public {
                rng.gen_range(100..=199)
            } else {
                rng.gen_range(1..=99)
            };
            let ip = Ipv4Addr::new(127, second, rng.gen_range(0..=255), rng.gen_range(2..=254))
                .to_string();
            let used = self.vms.values().any(|r| {
                r.vm.private_ip.as_deref() == Some(ip.as_str())
                    || r.auto_public_ip.as_deref() == Some(ip.as_str())
            }) || self.public_ips.values().any(|p| p.ip.public_ip == ip);
            if !used {
                return ip;
            }
        }
    }

    /// Applies every scheduled change that is due at `now`.
    pub fn advance(&mut self, now: Millis) {
        self.advance_vms(now);
        self.advance_volumes(now);
        for rec in self.snapshots.values_mut() {
            let s = &mut rec.snapshot;
            if s.state == "pending" {
                if now >= rec.done_at {
                    s.state = "completed".into();
                    s.progress = 100;
                } else {
                    let span = (rec.done_at - rec.started_at).max(1) as f64;
                    s.progress =
                        (((now - rec.started_at) as f64 / span) * 100.0).clamp(0.0, 99.0) as i64;
                }
            }
        }
        let snapshots = &self.snapshots;
        for rec in self.images.values_mut() {
            if rec.image.state == "pending" && now >= rec.ready_at && rec.fails {
                rec.image.state = "failed".into();
                rec.image.state_comment = Some(crate::oapi::model::StateComment {
                    state_code: Some("Server.InternalError".into()),
                    state_message: Some("Image registration failed (injected fault)".into()),
                });
                continue;
            }
            if rec.image.state == "pending" && now >= rec.ready_at {
                let ready = rec.image.snapshot_ids().iter().all(|id| {
                    snapshots
                        .get(id)
                        .is_some_and(|s| s.snapshot.state == "completed")
                });
                if ready {
                    rec.image.state = "available".into();
                }
            }
        }
    }

    fn advance_vms(&mut self, now: Millis) {
        let due: Vec<String> = self
            .vms
            .iter()
            .filter(|(_, r)| r.next.as_ref().is_some_and(|n| n.at <= now))
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            let Some(rec) = self.vms.get_mut(&id) else {
                continue;
            };
            let Some(next) = rec.next.take() else {
                continue;
            };
            rec.console.push(format!(
                "[{}] {} -> {}",
                iso(next.at),
                rec.vm.state,
                next.to
            ));
            rec.vm.state = next.to.clone();
            match next.to.as_str() {
                "terminated" => {
                    rec.terminated_at = Some(next.at);
                    self.release_vm(&id);
                }
                "stopped" => {
                    // The platform drops a public IP link on stop unless the
                    // VM asked to keep it with the auto-attach tag.
                    let keep = self
                        .tags
                        .get(&id)
                        .and_then(|t| t.get("osc.fcu.eip.auto-attach"))
                        .cloned();
                    self.unlink_public_ips(&id, keep.as_deref());
                }
                _ => {}
            }
        }
        self.vms.retain(|_, r| {
            r.terminated_at
                .is_none_or(|t| now - t < TERMINATED_VISIBLE_MS)
        });
    }

    fn advance_volumes(&mut self, now: Millis) {
        for rec in self.volumes.values_mut() {
            if let Some(next) = rec.next.as_ref().filter(|n| n.at <= now) {
                rec.volume.state = next.to.clone();
                rec.next = None;
            }
            if rec.link_settles_at.is_some_and(|t| t <= now) {
                rec.link_settles_at = None;
                rec.volume.linked_volumes.retain(|l| l.state != "detaching");
                for l in &mut rec.volume.linked_volumes {
                    if l.state == "attaching" {
                        l.state = "attached".into();
                    }
                }
                rec.volume.state = if rec.volume.linked_volumes.is_empty() {
                    "available".into()
                } else {
                    "in-use".into()
                };
            }
        }
    }

    /// A VM reached `terminated`: its volumes are deleted or freed according
    /// to DeleteOnVmDeletion, and its public IPs unlinked.
    fn release_vm(&mut self, vm_id: &str) {
        let mut deleted = Vec::new();
        for (vol_id, rec) in self.volumes.iter_mut() {
            let before = rec.volume.linked_volumes.len();
            let mut delete = false;
            rec.volume.linked_volumes.retain(|l| {
                if l.vm_id == vm_id {
                    delete |= l.delete_on_vm_deletion;
                    false
                } else {
                    true
                }
            });
            if rec.volume.linked_volumes.len() != before {
                if delete {
                    deleted.push(vol_id.clone());
                } else {
                    rec.volume.state = "available".into();
                    rec.link_settles_at = None;
                }
            }
        }
        for id in deleted {
            self.volumes.remove(&id);
            self.tags.remove(&id);
        }
        if let Some(rec) = self.vms.get_mut(vm_id) {
            for m in &mut rec.vm.block_device_mappings {
                m.bsu.state = "detached".into();
            }
        }
        self.unlink_public_ips(vm_id, None);
    }

    /// Unlinks the public IPs linked to a VM, except `keep`, and updates
    /// the address the VM shows.
    pub fn unlink_public_ips(&mut self, vm_id: &str, keep: Option<&str>) {
        for rec in self.public_ips.values_mut() {
            if rec.ip.vm_id.as_deref() == Some(vm_id) && keep != Some(rec.ip.public_ip.as_str()) {
                rec.clear_link();
            }
        }
        self.refresh_vm_public_ip(vm_id);
    }

    /// A VM shows its linked public IP, else its automatic one while it exists.
    pub fn refresh_vm_public_ip(&mut self, vm_id: &str) {
        let linked = self
            .public_ips
            .values()
            .find(|p| p.ip.vm_id.as_deref() == Some(vm_id))
            .map(|p| p.ip.public_ip.clone());
        if let Some(rec) = self.vms.get_mut(vm_id) {
            rec.vm.public_ip = if rec.vm.state == "terminated" {
                None
            } else {
                linked.or_else(|| rec.auto_public_ip.clone())
            };
        }
    }
}
