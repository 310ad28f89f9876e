//! A user's working folder for black-box tests of the binary: a template
//! against the in-process simulator (`sim://DIR`), `osci` run there, and
//! readers of what the simulator holds.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use osci::oapi::Client;
use osci::oapi::model::*;
use serde_json::{Value, json};

pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Workspace {
        Workspace {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn sim_dir(&self) -> PathBuf {
        self.path().join("sim")
    }

    /// Writes `t.json`: a bsu build against the in-process simulator, with
    /// `changes` merged into the builder.
    pub fn template(&self, changes: Value) -> PathBuf {
        self.template_named("web", changes)
    }

    pub fn template_named(&self, name: &str, changes: Value) -> PathBuf {
        self.template_with(name, changes, json!([]))
    }

    /// Writes `t.json` with these provisioners.
    pub fn template_with(&self, name: &str, changes: Value, provisioners: Value) -> PathBuf {
        let mut builder = self.builder(name);
        merge(&mut builder, json!({"omi_name": "golden-web"}));
        merge(&mut builder, changes);
        self.write_template(vec![builder], provisioners)
    }

    /// A bsu build against the in-process simulator, named `name`, making
    /// the OMI `golden-NAME`.
    pub fn builder(&self, name: &str) -> Value {
        json!({
            "type": "outscale-bsu",
            "name": name,
            "custom_endpoint_oapi": format!("sim://{}", self.sim_dir().display()),
            "vm_type": "tinav5.c2r4p2",
            "source_omi_filter": {"filters": {"image-name": "Ubuntu-22.04-*"}, "owners": ["Outscale"], "most_recent": true},
            "communicator": "none",
            "omi_name": format!("golden-{name}"),
            "omi_description": "from {{ .SourceOMIName }}",
            "tags": {"team": "platform", "source": "{{ .SourceOMI }}"},
        })
    }

    /// Writes `t.json` with these builders and provisioners.
    pub fn write_template(&self, builders: Vec<Value>, provisioners: Value) -> PathBuf {
        let path = self.path().join("t.json");
        std::fs::write(
            &path,
            serde_json::to_vec_pretty(&json!({"builders": builders, "provisioners": provisioners}))
                .unwrap(),
        )
        .unwrap();
        path
    }

    pub fn osci(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_osci"));
        c.current_dir(self.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.path())
            .env("OSCI_SIM_LATENCY_SCALE", "0")
            .env("NO_COLOR", "1");
        c
    }

    /// osci with `args` on a pseudo-terminal (`script` gives it one and
    /// copies what it draws to its own stdout), as a person runs it.
    pub fn terminal(&self, args: &str) -> Command {
        let command = format!("{} {args}", env!("CARGO_BIN_EXE_osci"));
        let mut c = Command::new("script");
        c.args(["-qec", &command, "/dev/null"])
            .current_dir(self.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.path())
            .env("OSCI_SIM_LATENCY_SCALE", "0")
            .env("TERM", "xterm");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.osci().args(args).output().unwrap()
    }

    /// Runs osci with faults injected into its in-process simulator.
    pub fn run_with_faults(&self, faults: &str, args: &[&str]) -> Output {
        self.osci()
            .env("OSCI_SIM_FAULTS", faults)
            .args(args)
            .output()
            .unwrap()
    }

    pub fn addresses(&self) -> Vec<String> {
        self.state()["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["address"].as_str().unwrap().to_string())
            .collect()
    }

    /// A client of the simulator's default account (osci is not running).
    pub fn client(&self) -> (std::sync::Arc<osci::sim::Sim>, Client) {
        let sim = super::open(&self.sim_dir(), 0.0, osci::sim::Faults::none());
        let client = super::client_for(&sim, None);
        (sim, client)
    }

    pub fn state(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.path().join("state/t.json")).unwrap()).unwrap()
    }
}

pub fn merge(base: &mut Value, changes: Value) {
    if let (Value::Object(b), Value::Object(c)) = (base, changes) {
        for (k, v) in c {
            if v.is_null() {
                b.remove(&k);
            } else {
                b.insert(k, v);
            }
        }
    }
}

#[track_caller]
pub fn ok(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {stderr}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

pub async fn own_images(client: &Client, account: &str) -> Vec<Image> {
    client
        .read_all(&ReadImagesRequest {
            filters: Some(FiltersImage {
                account_ids: Some(vec![account.to_string()]),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
}

/// A volume and a snapshot of it, made by hand: (volume id, snapshot id).
pub async fn user_snapshot(client: &Client, size: i64) -> (String, String) {
    let volume = client
        .call(&CreateVolumeRequest {
            subregion_name: "eu-west-2a".into(),
            size: Some(size),
            ..Default::default()
        })
        .await
        .unwrap()
        .volume;
    let snapshot = client
        .call(&CreateSnapshotRequest {
            volume_id: Some(volume.volume_id.clone()),
            ..Default::default()
        })
        .await
        .unwrap()
        .snapshot;
    (volume.volume_id, snapshot.snapshot_id)
}

/// The snapshots `filters` select.
pub async fn snapshots(client: &Client, filters: FiltersSnapshot) -> Vec<Snapshot> {
    client
        .read_all(&ReadSnapshotsRequest {
            filters: Some(filters),
            ..Default::default()
        })
        .await
        .unwrap()
}

/// Everything of the account that osci could have made and left.
pub async fn leftovers(client: &Client, account: &str) -> Vec<String> {
    let vms = all(client, ReadVmsRequest::default()).await;
    let volumes = all(client, ReadVolumesRequest::default()).await;
    let own_snapshots = FiltersSnapshot {
        account_ids: Some(vec![account.to_string()]),
        ..Default::default()
    };
    let keypairs = all(client, ReadKeypairsRequest::default()).await;
    let groups = all(client, ReadSecurityGroupsRequest::default()).await;
    let ips = all(client, ReadPublicIpsRequest::default()).await;
    let host = |v: &Vm| {
        v.tags
            .iter()
            .any(|t| t.key == "Name" && t.value == "osci-sim-host")
    };
    let mut left: Vec<String> = vms
        .into_iter()
        .filter(|v| v.state != "terminated" && !host(v))
        .map(|v| v.vm_id)
        .collect();
    left.extend(volumes.into_iter().map(|v| v.volume_id));
    left.extend(
        own_images(client, account)
            .await
            .into_iter()
            .map(|i| i.image_id),
    );
    left.extend(
        snapshots(client, own_snapshots)
            .await
            .into_iter()
            .map(|s| s.snapshot_id),
    );
    left.extend(keypairs.into_iter().map(|k| k.keypair_name));
    left.extend(
        groups
            .into_iter()
            .filter(|g| g.security_group_name != "default")
            .map(|g| g.security_group_id),
    );
    left.extend(ips.into_iter().map(|p| p.public_ip_id));
    left
}

/// Every page of a read.
pub async fn all<O: osci::oapi::Paginated + Clone>(client: &Client, request: O) -> Vec<O::Item> {
    client.read_all(&request).await.unwrap()
}

/// osci run in `w` against an `osci sim serve`, with its keys.
pub fn osci_for(w: &Workspace, sim: &super::SimProcess) -> Command {
    let mut c = w.osci();
    c.env("OSC_ACCESS_KEY", &sim.access_key)
        .env("OSC_SECRET_KEY", &sim.secret_key)
        .env("OSCI_RATE_LIMIT", "0");
    c
}

/// A client of an `osci sim serve`'s default account, over HTTP.
pub fn sim_client(sim: &super::SimProcess) -> Client {
    super::http_client(
        std::collections::HashMap::from([
            ("OSC_ENDPOINT_API", sim.endpoint.clone()),
            ("OSC_ACCESS_KEY", sim.access_key.clone()),
            ("OSC_SECRET_KEY", sim.secret_key.clone()),
        ]),
        None,
        10,
    )
    .unwrap()
}

/// What a chroot build of this workspace left on the machine: mounts
/// under the workspace (`/proc/mounts`), loop devices over its
/// simulator's disks (`losetup -a`), and the device nodes of those
/// (`/dev`).
pub fn host_leftovers(w: &Workspace) -> Vec<String> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let root = w.path().display().to_string();
    let mut left: Vec<String> = std::fs::read_to_string("/proc/mounts")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(1))
        .filter(|m| m.starts_with(&root))
        .map(|m| format!("mount {m}"))
        .collect();
    for entry in std::fs::read_dir("/dev").unwrap().flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.file_type().is_block_device() || (meta.rdev() >> 8) & 0xfff != 7 {
            continue;
        }
        let minor = (meta.rdev() & 0xff) | ((meta.rdev() >> 12) & 0xfff00);
        let backing =
            std::fs::read_to_string(format!("/sys/dev/block/7:{minor}/loop/backing_file"))
                .unwrap_or_default();
        if backing.starts_with(&root) {
            left.push(format!(
                "{} over {}",
                entry.path().display(),
                backing.trim()
            ));
        }
    }
    let losetup = Command::new("losetup").arg("-a").output();
    for line in losetup
        .map(|o| o.stdout)
        .unwrap_or_default()
        .split(|b| *b == b'\n')
    {
        let line = String::from_utf8_lossy(line);
        if line.contains(&root) {
            left.push(format!("losetup: {line}"));
        }
    }
    left.sort();
    left.dedup();
    left
}

/// A keypair and a security group open on port 22 from loopback: what a
/// user needs to log into a VM.
pub async fn login_kit(
    client: &Client,
    name: &str,
) -> (String, std::sync::Arc<russh::keys::PrivateKey>, String) {
    let keypair = client
        .call(&CreateKeypairRequest {
            keypair_name: name.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .keypair;
    let pem = keypair.private_key.unwrap();
    let key = russh::keys::decode_secret_key(pem.expose(), None).unwrap();
    let group = client
        .call(&CreateSecurityGroupRequest {
            security_group_name: name.into(),
            description: "ssh".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .security_group
        .security_group_id;
    client
        .call(&CreateSecurityGroupRuleRequest {
            security_group_id: group.clone(),
            flow: "Inbound".into(),
            ip_protocol: Some("tcp".into()),
            from_port_range: Some(22),
            to_port_range: Some(22),
            ip_range: Some("127.0.0.0/8".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    (name.to_string(), std::sync::Arc::new(key), group)
}

/// A VM launched from `image`, running, logged into over SSH.
pub async fn log_into(
    client: &Client,
    image: &str,
    kit: &(String, std::sync::Arc<russh::keys::PrivateKey>, String),
) -> osci::provision::ssh::Session {
    let vm = client
        .call(&CreateVmsRequest {
            image_id: image.into(),
            keypair_name: Some(kit.0.clone()),
            security_group_ids: Some(vec![kit.2.clone()]),
            ..Default::default()
        })
        .await
        .unwrap()
        .vms
        .remove(0);
    let start = std::time::Instant::now();
    let vm = loop {
        let current = client
            .read_all(&ReadVmsRequest::id(vm.vm_id.clone()))
            .await
            .unwrap()
            .remove(0);
        if current.state == "running" {
            break current;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "{} never ran",
            vm.vm_id
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let settings = osci::provision::ssh::Settings {
        target: osci::provision::ssh::Endpoint {
            host: vm.public_ip.clone().unwrap(),
            port: 22,
            username: "outscale".into(),
            credential: osci::provision::ssh::Credential::Key(std::sync::Arc::clone(&kit.1)),
        },
        bastion: None,
        timeout: std::time::Duration::from_secs(20),
        handshake_attempts: 1,
        keep_alive: None,
        pty: false,
    };
    osci::provision::ssh::connect(&settings, &|| false)
        .await
        .unwrap()
}

pub async fn sh(session: &osci::provision::ssh::Session, command: &str) -> String {
    let mut out = Vec::new();
    let exit = session
        .exec(command, &[], &mut |_, d| out.extend_from_slice(d))
        .await
        .unwrap();
    assert_eq!(
        exit,
        osci::provision::ssh::Exit::Status(0),
        "`{command}`: {}",
        String::from_utf8_lossy(&out)
    );
    String::from_utf8_lossy(&out).into_owned()
}
