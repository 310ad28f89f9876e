//! The simulator: a local OUTSCALE region for tests, demos, and trying a
//! template without an account (design §6).
//!
//! It keeps real resources with their relations and rules (ownership,
//! sharing, dependencies, quotas, states that change with time) and checks
//! signatures like the gateway, so any OUTSCALE client can use it. It serves
//! HTTP on loopback (`osci sim serve`) or answers in-process as a
//! [`Transport`] (`sim://DIR`), through the same [`Sim::handle`].

mod auth;
mod disk;
mod error;
mod faults;
mod filters;
mod host;
mod keys;
mod machines;
mod ops;
mod server;
mod sshd;
mod userland;
mod world;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde_json::{Value, json};

use crate::oapi::Secret;
use crate::oapi::model::{
    BlockDeviceMappingImage, BsuToCreate, Image, PermissionsOnResource, Snapshot,
};
use crate::oapi::transport::{BoxFuture, Transport, TransportError};

pub use error::SimError;
pub use faults::Faults;
pub use machines::privileged;
pub use server::serve;
use world::{Account, ImageRecord, Latency, SnapshotRecord, World, iso, now_ms, random_key};

/// The alias of the account that publishes the public catalogue images.
pub const CATALOGUE_ALIAS: &str = "Outscale";
const STATE_FILE: &str = "sim.json";
/// The SSH host key every simulated VM shows, kept so that known_hosts
/// entries stay valid across restarts.
const HOST_KEY_FILE: &str = "ssh_host_ed25519_key";

/// How to open a simulator.
pub struct SimConfig {
    pub data_dir: PathBuf,
    /// Multiplies every state-change delay; 0 makes them instant.
    pub latency_scale: f64,
    pub faults: Faults,
    /// The region of a new simulator (an existing one keeps its own).
    pub region: String,
}

/// An account's id and keys, as `osci sim serve` prints them.
#[derive(Debug, Clone)]
pub struct AccountKeys {
    pub account_id: String,
    pub access_key: String,
    pub secret_key: Secret,
    pub region: String,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot use the simulator directory {}: {message}", dir.display())]
    Dir { dir: PathBuf, message: String },
    #[error("the simulator state {} is unreadable ({message}); move it away to start afresh", path.display())]
    Corrupt { path: PathBuf, message: String },
    #[error("the latency scale must be a number of 0 or more, not {0}")]
    Latency(f64),
}

/// Raised when a fault drops the connection: the call ran, the answer is lost.
#[derive(Debug, thiserror::Error)]
#[error("the simulator dropped the connection (fault injection)")]
pub struct Dropped;

#[derive(Default)]
struct Stats {
    calls: BTreeMap<String, u64>,
    errors: BTreeMap<String, u64>,
    faults: BTreeMap<String, u64>,
}

pub struct Sim {
    world: Mutex<World>,
    lockouts: Mutex<auth::Lockouts>,
    state_file: PathBuf,
    latency: Latency,
    faults: Faults,
    stats: Mutex<Stats>,
    machines: Mutex<machines::Machines>,
}

impl Sim {
    /// Opens the simulator persisted in `config.data_dir`, creating and
    /// seeding it on first use.
    pub fn open(config: SimConfig) -> Result<Arc<Sim>, OpenError> {
        if !(config.latency_scale >= 0.0 && config.latency_scale.is_finite()) {
            return Err(OpenError::Latency(config.latency_scale));
        }
        let dir = &config.data_dir;
        std::fs::create_dir_all(dir).map_err(|e| OpenError::Dir {
            dir: dir.clone(),
            message: e.to_string(),
        })?;
        let state_file = dir.join(STATE_FILE);
        let mut world: World = match std::fs::read(&state_file) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| OpenError::Corrupt {
                path: state_file.clone(),
                message: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let world = seed(&config.region);
                persist(&state_file, &world).map_err(|message| OpenError::Dir {
                    dir: dir.clone(),
                    message,
                })?;
                world
            }
            Err(e) => {
                return Err(OpenError::Dir {
                    dir: dir.clone(),
                    message: e.to_string(),
                });
            }
        };
        if world.host_vm.is_none() {
            host::register(&mut world);
            persist(&state_file, &world).map_err(|message| OpenError::Dir {
                dir: dir.clone(),
                message,
            })?;
        }
        let host_key = host_key(&dir.join(HOST_KEY_FILE)).map_err(|message| OpenError::Dir {
            dir: dir.clone(),
            message,
        })?;
        Ok(Arc::new(Sim {
            machines: Mutex::new(machines::Machines::new(dir, host_key)),
            world: Mutex::new(world),
            lockouts: Mutex::new(auth::Lockouts::default()),
            state_file,
            latency: Latency {
                scale: config.latency_scale,
            },
            faults: config.faults,
            stats: Mutex::new(Stats::default()),
        }))
    }

    pub fn region(&self) -> String {
        self.world.lock().expect("world lock").region.clone()
    }

    /// The account `osci sim serve` prints, the same for a given directory.
    pub fn default_account(&self) -> AccountKeys {
        let world = self.world.lock().expect("world lock");
        keys_of(&world, &world.accounts[1])
    }

    /// Opens another account (to test sharing between accounts).
    pub fn create_account(&self) -> Result<AccountKeys, SimError> {
        let mut world = self.world.lock().expect("world lock");
        let n = world.accounts.len();
        let account = new_account(&mut world, None, &format!("user{n}@sim.invalid"));
        let keys = keys_of(&world, &account);
        persist(&self.state_file, &world).map_err(SimError::internal)?;
        Ok(keys)
    }

    /// Counts of calls, errors and injected faults, and the latency model.
    pub fn stats(&self) -> Value {
        let stats = self.stats.lock().expect("stats lock");
        json!({
            "calls": stats.calls,
            "errors": stats.errors,
            "faults": stats.faults,
            "latency_scale": self.latency.scale,
            "latency_seconds_at_scale_1": {
                "vm_boot": Latency::VM_BOOT,
                "vm_stop": Latency::VM_STOP,
                "vm_terminate": Latency::VM_TERMINATE,
                "volume_create": Latency::VOLUME_CREATE,
                "volume_link": Latency::VOLUME_LINK,
                "snapshot_base": Latency::SNAPSHOT_BASE,
                "snapshot_per_gib": Latency::SNAPSHOT_PER_GIB,
                "image_register": Latency::IMAGE_REGISTER,
            },
        })
    }

    /// Answers one HTTP request: an API call, or the `/_sim/` endpoints.
    pub async fn handle(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, Dropped> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let path = request.uri().path().to_string();
        let method = request.method().clone();
        match (method, path.as_str()) {
            (http::Method::GET, "/_sim/stats") => return Ok(respond(200, &self.stats())),
            // The host's metadata service, unsigned as the platform's is.
            (http::Method::GET, p) if p.starts_with("/latest/meta-data") => {
                let world = self.world.lock().expect("world lock");
                return Ok(match host::metadata(&world, p) {
                    Some(text) => http::Response::builder()
                        .status(200)
                        .header(http::header::CONTENT_TYPE, "text/plain")
                        .body(Bytes::from(text))
                        .expect("status and header are valid"),
                    None => http::Response::builder()
                        .status(404)
                        .body(Bytes::from_static(b"Not Found"))
                        .expect("status is valid"),
                });
            }
            (http::Method::POST, "/_sim/accounts") => {
                return Ok(match self.create_account() {
                    Ok(k) => respond(
                        200,
                        &json!({"account_id": k.account_id, "access_key": k.access_key,
                                "secret_key": k.secret_key.expose()}),
                    ),
                    Err(e) => respond(e.status, &e.body(&request_id)),
                });
            }
            (http::Method::POST, p) if p.starts_with("/api/v1/") => {}
            (_, p) => {
                let e = SimError::unknown_operation(p);
                return Ok(respond(404, &e.body(&request_id)));
            }
        }
        let operation = path.rsplit('/').next().unwrap_or_default().to_string();
        self.count(|s| &mut s.calls, &operation);
        let decision = self.faults.decide(&operation);
        if !decision.delay.is_zero() {
            self.count(|s| &mut s.faults, "slow");
            tokio::time::sleep(decision.delay).await;
        }
        let refused = decision.refuse.map(|kind| {
            let (name, error) = match kind {
                faults::FaultKind::Throttle => ("throttle", SimError::throttled()),
                faults::FaultKind::Busy => ("busy", SimError::platform_throttled()),
                _ => ("error", SimError::internal("injected fault")),
            };
            self.count(|s| &mut s.faults, name);
            error
        });
        let result = match refused {
            Some(e) => Err(e),
            None => {
                if decision.fail_later {
                    self.count(|s| &mut s.faults, "fail");
                }
                let call = || {
                    self.call(
                        &operation,
                        &path,
                        request.headers(),
                        request.body(),
                        decision.fail_later,
                    )
                };
                // Calls may copy disks and unpack filesystems: on a
                // multi-threaded runtime, other tasks (SSH sessions) move to
                // another worker meanwhile.
                match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
                    Ok(tokio::runtime::RuntimeFlavor::MultiThread) => {
                        tokio::task::block_in_place(call)
                    }
                    _ => call(),
                }
            }
        };
        let response = match result {
            Ok(mut body) => {
                if let Value::Object(map) = &mut body {
                    map.insert("ResponseContext".into(), json!({"RequestId": request_id}));
                }
                respond(200, &body)
            }
            Err(e) => {
                self.count(|s| &mut s.errors, &operation);
                respond(e.status, &e.body(&request_id))
            }
        };
        if decision.crash_after {
            // What the call did is saved; its caller never hears of it.
            std::process::exit(137);
        }
        if decision.drop_after {
            self.count(|s| &mut s.faults, "drop");
            return Err(Dropped);
        }
        Ok(response)
    }

    fn call(
        &self,
        operation: &str,
        path: &str,
        headers: &http::HeaderMap,
        body: &[u8],
        fail_later: bool,
    ) -> Result<Value, SimError> {
        let now = now_ms();
        let mut world = self.world.lock().expect("world lock");
        world.advance(now);
        let mut machines = self.machines.lock().expect("machines lock");
        machines.reconcile(&mut world);
        let account = if ops::is_public(operation) {
            String::new()
        } else {
            let mut lockouts = self.lockouts.lock().expect("lockout lock");
            auth::verify(&world, &mut lockouts, headers, path, body, now)?
        };
        let mut ctx = ops::Ctx {
            world: &mut world,
            account,
            now,
            latency: self.latency,
            fail_later,
        };
        let value = ops::dispatch(&mut ctx, operation, body)?;
        // A read changes nothing the machines follow.
        if !ops::is_read(operation) {
            machines.reconcile(&mut world);
            persist(&self.state_file, &world).map_err(SimError::internal)?;
        }
        Ok(value)
    }

    fn count(&self, field: impl Fn(&mut Stats) -> &mut BTreeMap<String, u64>, key: &str) {
        let mut stats = self.stats.lock().expect("stats lock");
        *field(&mut stats).entry(key.to_string()).or_insert(0) += 1;
    }
}

fn respond(status: u16, body: &Value) -> http::Response<Bytes> {
    http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Bytes::from(body.to_string()))
        .expect("status and header are valid")
}

fn persist(path: &Path, world: &World) -> Result<(), String> {
    let bytes = serde_json::to_vec(world).map_err(|e| e.to_string())?;
    crate::atomic_file::write(path, &bytes).map_err(|e| format!("saving {}: {e}", path.display()))
}

/// The simulator's SSH host key, made on first use.
fn host_key(path: &Path) -> Result<russh::keys::PrivateKey, String> {
    if let Ok(text) = std::fs::read_to_string(path) {
        return russh::keys::PrivateKey::from_openssh(text)
            .map_err(|e| format!("the SSH host key {} is unreadable: {e}", path.display()));
    }
    let seed: [u8; 32] = rand::random();
    let key = russh::keys::PrivateKey::from(
        russh::keys::ssh_key::private::Ed25519Keypair::from_seed(&seed),
    );
    let text = key
        .to_openssh(russh::keys::ssh_key::LineEnding::LF)
        .map_err(|e| e.to_string())?;
    crate::atomic_file::write(path, text.as_bytes())
        .map_err(|e| format!("saving {}: {e}", path.display()))?;
    Ok(key)
}

fn keys_of(world: &World, a: &Account) -> AccountKeys {
    AccountKeys {
        account_id: a.account_id.clone(),
        access_key: a.access_key.clone(),
        secret_key: Secret::new(a.secret_key.clone()),
        region: world.region.clone(),
    }
}

/// A new account with keys and its default security group.
fn new_account(world: &mut World, alias: Option<&str>, email: &str) -> Account {
    let account_id = loop {
        let id: String = random_key(40)
            .bytes()
            .filter(u8::is_ascii_digit)
            .map(char::from)
            .chain(std::iter::repeat('7'))
            .take(12)
            .collect();
        if world.account(&id).is_none() {
            break id;
        }
    };
    let account = Account {
        account_id: account_id.clone(),
        alias: alias.map(str::to_string),
        email: email.to_string(),
        access_key: random_key(20),
        secret_key: random_key(40),
    };
    world.accounts.push(account.clone());
    ops::new_group(world, &account_id, "default", "default group", None);
    account
}

/// A new region: the catalogue account with its public images, and the
/// default account.
fn seed(region: &str) -> World {
    let mut world = World {
        region: region.to_string(),
        ..Default::default()
    };
    let catalogue = new_account(&mut world, Some(CATALOGUE_ALIAS), "catalogue@sim.invalid");
    new_account(&mut world, None, "user@sim.invalid");
    let images = [
        ("Ubuntu-22.04-2025.01.15-0", 1_736_899_200_000_i64),
        ("Ubuntu-22.04-2025.06.10-0", 1_749_513_600_000),
        ("Debian-12-2025.05.20-0", 1_747_699_200_000),
        ("RockyLinux-9-2025.04.02-0", 1_743_552_000_000),
    ];
    for (name, created) in images {
        let snapshot_id = world.new_id(error::Kind::Snapshot);
        world.snapshots.insert(
            snapshot_id.clone(),
            SnapshotRecord {
                snapshot: Snapshot {
                    snapshot_id: snapshot_id.clone(),
                    state: "completed".into(),
                    progress: 100,
                    volume_size: 10,
                    account_id: catalogue.account_id.clone(),
                    account_alias: Some(CATALOGUE_ALIAS.into()),
                    description: Some(format!("root of {name}")),
                    creation_date: Some(iso(created)),
                    ..Default::default()
                },
                started_at: created,
                done_at: created,
                copied_from: None,
            },
        );
        let image_id = world.new_id(error::Kind::Image);
        world.images.insert(
            image_id.clone(),
            ImageRecord {
                image: Image {
                    image_id,
                    image_name: name.into(),
                    state: "available".into(),
                    description: Some(format!("{name} (osci simulator catalogue)")),
                    account_id: catalogue.account_id.clone(),
                    account_alias: Some(CATALOGUE_ALIAS.into()),
                    creation_date: Some(iso(created)),
                    architecture: Some("x86_64".into()),
                    block_device_mappings: vec![BlockDeviceMappingImage {
                        device_name: Some("/dev/sda1".into()),
                        virtual_device_name: None,
                        bsu: Some(BsuToCreate {
                            delete_on_vm_deletion: Some(true),
                            iops: None,
                            snapshot_id: Some(snapshot_id),
                            volume_size: Some(10),
                            volume_type: Some("standard".into()),
                        }),
                    }],
                    boot_modes: vec!["legacy".into()],
                    root_device_name: Some("/dev/sda1".into()),
                    root_device_type: Some("bsu".into()),
                    image_type: Some("machine".into()),
                    permissions_to_launch: PermissionsOnResource {
                        account_ids: Vec::new(),
                        global_permission: true,
                    },
                    product_codes: vec!["0001".into()],
                    secure_boot: Some(false),
                    tpm_mandatory: Some(false),
                    ..Default::default()
                },
                ready_at: created,
                fails: false,
            },
        );
    }
    world
}

/// The in-process transport of `sim://DIR`: requests go straight to
/// [`Sim::handle`], signatures and all.
pub struct SimTransport(pub Arc<Sim>);

impl Transport for SimTransport {
    fn send(
        &self,
        request: http::Request<Bytes>,
    ) -> BoxFuture<'_, Result<http::Response<Bytes>, TransportError>> {
        Box::pin(async move {
            self.0
                .handle(request)
                .await
                .map_err(|e| TransportError(e.to_string()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_world_persists_and_reloads_the_same_keys() {
        let dir = tempfile::tempdir().unwrap();
        let open = || {
            Sim::open(SimConfig {
                data_dir: dir.path().to_path_buf(),
                latency_scale: 0.0,
                faults: Faults::none(),
                region: "eu-west-2".into(),
            })
            .unwrap()
        };
        let a = open().default_account();
        let b = open().default_account();
        assert_eq!(a.account_id, b.account_id);
        assert_eq!(a.access_key, b.access_key);
        assert_eq!(a.secret_key, b.secret_key);
        assert_eq!(a.account_id.len(), 12);
        assert_eq!(a.access_key.len(), 20);
    }

    #[test]
    fn corrupt_state_is_reported_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(STATE_FILE), b"{not json").unwrap();
        let err = Sim::open(SimConfig {
            data_dir: dir.path().to_path_buf(),
            latency_scale: 0.0,
            faults: Faults::none(),
            region: "eu-west-2".into(),
        })
        .err()
        .unwrap();
        assert!(matches!(err, OpenError::Corrupt { .. }), "{err}");
        assert_eq!(
            std::fs::read(dir.path().join(STATE_FILE)).unwrap(),
            b"{not json"
        );
    }
}
