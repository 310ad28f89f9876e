//! Provisioning for real: a build connects to its VM over SSH, runs the
//! `shell`, `file` and `shell-local` provisioners, and the OMI carries what
//! they did; a VM launched from it shows it. Tests that need simulated VMs
//! to answer SSH (root: port 22 on loopback, chroot) say so and skip
//! without it; CI runs as root.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::workspace::*;
use osci::oapi::Client;
use osci::oapi::model::*;
use osci::provision::ssh::{self, Credential, Endpoint, Settings};
use serde_json::{Value, json};

fn privileged(test: &str) -> bool {
    let ok = osci::sim::privileged();
    if !ok {
        eprintln!("skipped {test}: simulated VMs answer SSH only when the tests run as root");
    }
    ok
}

/// An SSH build: provisioners run over SSH as `outscale`.
fn ssh_builder(changes: Value) -> Value {
    let mut builder = json!({
        "communicator": "ssh",
        "ssh_username": "outscale",
        "ssh_timeout": "30s",
    });
    if let (Value::Object(b), Value::Object(c)) = (&mut builder, changes) {
        b.extend(c);
    }
    builder
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// A private key file, as `ssh` and `ssh-add` want it (mode 0600).
fn write_key(path: &Path, key: &russh::keys::PrivateKey) {
    let pem = key
        .to_openssh(russh::keys::ssh_key::LineEnding::LF)
        .unwrap();
    write(path, pem.as_bytes());
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
}

/// Launches a VM from `image` and waits for it to run.
async fn launch(client: &Client, image: &str, keypair: &str, group: &str) -> Vm {
    let vm = client
        .call(&CreateVmsRequest {
            image_id: image.into(),
            keypair_name: Some(keypair.into()),
            security_group_ids: Some(vec![group.into()]),
            ..Default::default()
        })
        .await
        .unwrap()
        .vms
        .remove(0);
    for _ in 0..100 {
        let current = client
            .read_all(&ReadVmsRequest::id(vm.vm_id.clone()))
            .await
            .unwrap()
            .remove(0);
        if current.state == "running" {
            return current;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{} never ran", vm.vm_id);
}

fn settings(host: &str, key: Arc<russh::keys::PrivateKey>) -> Settings {
    Settings {
        target: Endpoint {
            host: host.into(),
            port: 22,
            username: "outscale".into(),
            credential: Credential::Key(key),
        },
        bastion: None,
        timeout: Duration::from_secs(10),
        handshake_attempts: 1,
        keep_alive: None,
        pty: false,
    }
}

const MOTD: &str = "Golden image, built by osci.\n\tTabs, 'quotes' and $dollars stay as written.\n";

fn provisioners() -> Value {
    json!([
        {"type": "shell", "inline": ["printf '%s' \"$MOTD\" > /etc/motd"],
         "environment_vars": [format!("MOTD={MOTD}")]},
        {"type": "shell", "script": "scripts/setup.sh",
         "execute_command": "chmod +x {{ .Path }}; {{ .Vars }} sudo -E sh '{{ .Path }}'"},
        {"type": "file", "source": "app", "destination": "/opt/"},
        {"type": "file", "direction": "download", "source": "/etc/os-release", "destination": "downloads/"},
        {"type": "file", "direction": "download", "source": "/opt/app/", "destination": "fetched"},
        {"type": "shell-local", "inline": ["echo \"$SourceOMI $BuildRegion $PACKER_BUILD_NAME\" > local.txt"]},
    ])
}

#[tokio::test]
async fn provisioned_files_reach_a_vm_launched_from_the_omi() {
    if !privileged("provisioned_files_reach_a_vm_launched_from_the_omi") {
        return;
    }
    let w = Workspace::new();
    write(&w.path().join("scripts/setup.sh"), b"#!/bin/sh\nset -e\necho setting up\nmkdir -p /var/lib/app\necho ready > /var/lib/app/state\n");
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("app.conf", b"name=web\nlevel=golden\n".to_vec()),
        ("bin/run.sh", b"#!/bin/sh\necho run\n".to_vec()),
        ("data/blob.bin", (0..=255u8).cycle().take(70_000).collect()),
    ];
    for (path, bytes) in &files {
        write(&w.path().join("app").join(path), bytes);
    }
    w.template_with(
        "web",
        ssh_builder(json!({"force_deregister": true, "ssh_clear_authorized_keys": true})),
        provisioners(),
    );
    let stderr = ok(&w.run(&["apply", "t.json", "--auto-approve"]));
    // Output is streamed, prefixed by the build's name.
    assert!(stderr.contains("    web: setting up"), "{stderr}");
    assert!(
        stderr.contains("    web: uploading app => /opt/app/"),
        "{stderr}"
    );

    let (sim, client) = w.client();
    let account = sim.default_account().account_id;
    let image = own_images(&client, &account).await.remove(0);
    // shell-local saw the build variables.
    let local = std::fs::read_to_string(w.path().join("local.txt")).unwrap();
    let source = image.tags.iter().find(|t| t.key == "source").unwrap();
    assert_eq!(local, format!("{} eu-west-2 web\n", source.value));
    // Downloads: a file into a folder, a folder's files.
    let os_release = std::fs::read_to_string(w.path().join("downloads/os-release")).unwrap();
    assert!(os_release.contains("Ubuntu-22.04"), "{os_release}");
    for (path, bytes) in &files {
        assert!(std::fs::read(w.path().join("fetched").join(path)).unwrap() == *bytes);
    }
    // Only the OMI and its snapshot are left.
    let left = leftovers(&client, &account).await;
    assert_eq!(left.len(), 2, "{left:?}");

    let (keypair, key, group) = login_kit(&client, "check").await;
    let vm = launch(&client, &image.image_id, &keypair, &group).await;
    let session = osci::provision::Session::Ssh(Box::new(
        ssh::connect(&settings(vm.public_ip.as_deref().unwrap(), key), &|| false)
            .await
            .unwrap(),
    ));
    assert_eq!(
        session.download("/etc/motd").await.unwrap(),
        MOTD.as_bytes()
    );
    assert_eq!(
        session.download("/var/lib/app/state").await.unwrap(),
        b"ready\n"
    );
    let mut listed = session.list_files("/opt/app").await.unwrap();
    listed.sort();
    assert_eq!(listed, ["app.conf", "bin/run.sh", "data/blob.bin"]);
    for (path, bytes) in &files {
        let remote = session.download(&format!("/opt/app/{path}")).await.unwrap();
        assert!(remote == *bytes, "/opt/app/{path} differs");
    }
    // The image trusts only the key its VM was launched with: the build's
    // temporary key was cleared. The scripts were cleaned from /tmp.
    let trusted = session
        .download("/root/.ssh/authorized_keys")
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&trusted).lines().count(), 1);
    let mut out = Vec::new();
    let exit = session
        .exec("ls /tmp | wc -l", &[], &mut |_, d| out.extend_from_slice(d))
        .await
        .unwrap();
    assert_eq!(exit, ssh::Exit::Status(0));
    assert_eq!(String::from_utf8_lossy(&out).trim(), "0");
    session.close().await;
    client
        .call(&DeleteVmsRequest {
            vm_ids: vec![vm.vm_id.clone()],
            ..Default::default()
        })
        .await
        .unwrap();
    let _ = client.read_all(&ReadVmsRequest::default()).await;
    drop((sim, client));

    // Nothing edited: no changes. An uploaded file or a script edited:
    // the OMI is rebuilt.
    let plan = |w: &Workspace| {
        let out = w.run(&["plan", "t.json"]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let text = plan(&w);
    assert!(text.contains("No changes."), "{text}");
    write(&w.path().join("app/data/blob.bin"), b"other bytes");
    let text = plan(&w);
    assert!(text.contains("-/+ build.web.image"), "{text}");
    write(&w.path().join("app/data/blob.bin"), &files[2].1);
    assert!(plan(&w).contains("No changes."));
    write(
        &w.path().join("scripts/setup.sh"),
        b"#!/bin/sh\necho changed\n",
    );
    let text = plan(&w);
    assert!(text.contains("-/+ build.web.image"), "{text}");
}

#[tokio::test]
async fn a_failing_provisioner_fails_the_apply_and_leaves_nothing() {
    if !privileged("a_failing_provisioner_fails_the_apply_and_leaves_nothing") {
        return;
    }
    let w = Workspace::new();
    // A relative simulator folder, as the quickstart's.
    w.template_with(
        "web",
        ssh_builder(json!({"custom_endpoint_oapi": "sim://sim"})),
        json!([{"type": "shell", "inline": ["echo about to fail >&2", "exit 7", "echo never"]}]),
    );
    let out = w.run(&["apply", "t.json", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("    web: about to fail"), "{stderr}");
    assert!(!stderr.contains("never"), "{stderr}");
    assert!(
        stderr.contains("provisioners[0] (shell): inline script exited with status 7"),
        "{stderr}"
    );
    let (sim, client) = w.client();
    let left = leftovers(&client, &sim.default_account().account_id).await;
    assert!(left.is_empty(), "{left:?}");
    assert!(w.addresses().is_empty(), "{:?}", w.addresses());
}

#[tokio::test]
async fn closed_port_22_times_out_and_a_wrong_key_is_refused() {
    if !privileged("closed_port_22_times_out_and_a_wrong_key_is_refused") {
        return;
    }
    let w = Workspace::new();
    let (sim, client) = w.client();
    let account = sim.default_account().account_id;
    let closed = client
        .call(&CreateSecurityGroupRequest {
            security_group_name: "closed".into(),
            description: "no ssh".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .security_group
        .security_group_id;
    let (keypair, _, open) = login_kit(&client, "mine").await;
    let other = client
        .call(&CreateKeypairRequest {
            keypair_name: "other".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .keypair;
    write(
        &w.path().join("other.pem"),
        other.private_key.unwrap().expose().as_bytes(),
    );
    let before = leftovers(&client, &account).await;
    drop((sim, client));

    let shell = json!([{"type": "shell", "inline": ["true"]}]);
    w.template_with(
        "web",
        ssh_builder(json!({"security_group_ids": [closed], "ssh_timeout": "3s"})),
        shell.clone(),
    );
    let started = std::time::Instant::now();
    let out = w.run(&["apply", "t.json", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no SSH answer from outscale@")
            && stderr.contains("within 3s (ssh_timeout)"),
        "{stderr}"
    );
    assert!(started.elapsed() >= Duration::from_secs(3));

    // The VM trusts `mine`; osci offers the key of `other`.
    w.template_with(
        "web",
        ssh_builder(json!({
            "security_group_ids": [open],
            "ssh_keypair_name": keypair,
            "ssh_private_key_file": "other.pem",
            "ssh_handshake_attempts": 2,
        })),
        shell,
    );
    let out = w.run(&["apply", "t.json", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refused the credential 2 times (ssh_handshake_attempts)"),
        "{stderr}"
    );
    let (sim, client) = w.client();
    let after = leftovers(&client, &sim.default_account().account_id).await;
    assert_eq!(after, before);
}

#[test]
fn shell_local_sees_the_build_variables() {
    let w = Workspace::new();
    write(
        &w.path().join("check.sh"),
        b"#!/bin/sh\necho \"from $SourceOMI in $BuildRegion by $PACKER_BUILDER_TYPE\"\n",
    );
    w.template_with(
        "web",
        json!({}),
        json!([
            {"type": "shell-local", "script": "check.sh"},
            {"type": "shell-local", "command": "echo vm {{ build `ID` }} > id.txt"},
        ]),
    );
    let stderr = ok(&w.run(&["apply", "t.json", "--auto-approve"]));
    let line = stderr
        .lines()
        .find(|l| l.starts_with("    web: from "))
        .unwrap_or_else(|| panic!("{stderr}"));
    let source = line.split_whitespace().nth(2).unwrap();
    assert!(source.starts_with("ami-"), "{line}");
    assert!(line.ends_with(" in eu-west-2 by outscale-bsu"), "{line}");
    let id = std::fs::read_to_string(w.path().join("id.txt")).unwrap();
    assert!(id.starts_with("vm i-"), "{id}");
    // With --json, output lines are events.
    ok(&w.run(&["destroy", "t.json", "--auto-approve"]));
    let out = w.run(&["apply", "t.json", "--auto-approve", "--json"]);
    let events: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        events.iter().any(|e| e["type"] == "output"
            && e["build"] == "web"
            && e["line"]
                .as_str()
                .is_some_and(|l| l.ends_with(" in eu-west-2 by outscale-bsu"))),
        "{events:?}"
    );
    // Sensitive variables are masked in what provisioners print.
    ok(&w.run(&["destroy", "t.json", "--auto-approve"]));
    let mut template: Value =
        serde_json::from_slice(&std::fs::read(w.path().join("t.json")).unwrap()).unwrap();
    template["variables"] = json!({"token": "s3cr3t-t0ken"});
    template["sensitive-variables"] = json!(["token"]);
    template["provisioners"] = json!([
        {"type": "shell-local", "command": "echo token={{user `token`}}; echo $TOKEN", "env": {"TOKEN": "{{user `token`}}"}}
    ]);
    write(&w.path().join("t.json"), template.to_string().as_bytes());
    let out = w.run(&["apply", "t.json", "--auto-approve", "--json"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(!text.contains("s3cr3t-t0ken"), "{text}");
    assert!(text.contains("token=<sensitive>"), "{text}");
    // A VM provisioner with communicator "none" is refused at plan time.
    w.template_with(
        "web",
        json!({}),
        json!([{"type": "shell", "inline": ["true"]}]),
    );
    let out = w.run(&["plan", "t.json"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("provisioners[0] (shell) runs on the VM"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_bastion_leads_to_the_build_vm() {
    if !privileged("a_bastion_leads_to_the_build_vm") {
        return;
    }
    let sim = common::SimProcess::start(&[]);
    let client = sim_client(&sim);
    let w = Workspace::new();
    let (keypair, key, group) = login_kit(&client, "jump").await;
    let catalogue = client
        .read_all(&ReadImagesRequest {
            filters: Some(FiltersImage {
                account_aliases: Some(vec!["Outscale".into()]),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .remove(0);
    let bastion = launch(&client, &catalogue.image_id, &keypair, &group).await;
    write_key(&w.path().join("jump.pem"), &key);
    w.template_with(
        "web",
        ssh_builder(json!({
            "custom_endpoint_oapi": sim.endpoint,
            "ssh_bastion_host": bastion.public_ip,
            "ssh_bastion_username": "outscale",
            "ssh_bastion_private_key_file": "jump.pem",
            "ssh_timeout": "5s",
        })),
        json!([{"type": "shell", "inline": ["echo through the bastion"]}]),
    );
    // The bastion stopped: the build cannot reach its VM.
    client
        .call(&StopVmsRequest {
            vm_ids: vec![bastion.vm_id.clone()],
            ..Default::default()
        })
        .await
        .unwrap();
    let _ = client.read_all(&ReadVmsRequest::default()).await;
    let out = osci_for(&w, &sim)
        .args(["apply", "t.json", "--auto-approve"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bastion"), "{stderr}");
    // Running again, it leads there.
    client
        .call(&StartVmsRequest {
            vm_ids: vec![bastion.vm_id.clone()],
            ..Default::default()
        })
        .await
        .unwrap();
    let _ = client.read_all(&ReadVmsRequest::default()).await;
    let stderr = ok(&osci_for(&w, &sim)
        .args(["apply", "t.json", "--auto-approve"])
        .output()
        .unwrap());
    assert!(stderr.contains("    web: through the bastion"), "{stderr}");
}

#[tokio::test]
async fn ssh_agent_auth_logs_in_with_the_agents_key() {
    if !privileged("ssh_agent_auth_logs_in_with_the_agents_key") {
        return;
    }
    let has = |tool: &str| std::process::Command::new(tool).arg("-h").output().is_ok();
    if !has("ssh-agent") || !has("ssh-add") {
        eprintln!(
            "skipped ssh_agent_auth_logs_in_with_the_agents_key: ssh-agent/ssh-add (openssh-client) not installed"
        );
        return;
    }
    let w = Workspace::new();
    let (sim, client) = w.client();
    let (keypair, key, group) = login_kit(&client, "agent").await;
    drop((sim, client));
    let key_file = w.path().join("agent.pem");
    write_key(&key_file, &key);
    let socket = w.path().join("agent.sock");
    let mut agent = std::process::Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&socket)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..50 {
        if socket.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let added = std::process::Command::new("ssh-add")
        .arg(&key_file)
        .env("SSH_AUTH_SOCK", &socket)
        .output()
        .unwrap();
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    std::fs::remove_file(&key_file).unwrap();

    w.template_with(
        "web",
        ssh_builder(json!({
            "ssh_agent_auth": true,
            "ssh_keypair_name": keypair,
            "security_group_ids": [group],
            "ssh_pty": true,
        })),
        json!([{"type": "shell", "inline": ["echo signed by the agent"]}]),
    );
    let out = w
        .osci()
        .env("SSH_AUTH_SOCK", &socket)
        .args(["apply", "t.json", "--auto-approve"])
        .output()
        .unwrap();
    let _ = agent.kill();
    let _ = agent.wait();
    let stderr = ok(&out);
    assert!(stderr.contains("    web: signed by the agent"), "{stderr}");
}

#[test]
fn exit_codes_retries_and_timeouts() {
    let w = Workspace::new();
    w.template_with(
        "web",
        json!({}),
        json!([
            {"type": "shell-local", "inline": ["exit 3"], "valid_exit_codes": [0, 3]},
            // Fails the first time, succeeds the second; options are
            // weakly typed, as in Packer ("2" is 2).
            {"type": "shell-local", "max_retries": "2",
             "inline": ["if [ -e tried ]; then echo second try; else touch tried; exit 1; fi"]},
        ]),
    );
    let stderr = ok(&w.run(&["apply", "t.json", "--auto-approve"]));
    assert!(stderr.contains("retrying (1/2)"), "{stderr}");
    assert!(stderr.contains("    web: second try"), "{stderr}");
    ok(&w.run(&["destroy", "t.json", "--auto-approve"]));

    w.template_with(
        "web",
        json!({}),
        json!([{"type": "shell-local", "inline": ["sleep 30"], "timeout": "1s"}]),
    );
    let out = w.run(&["apply", "t.json", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("provisioners[0] (shell-local): did not finish within its timeout (1s)"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_reboot_is_survived_with_expect_disconnect() {
    if !privileged("a_reboot_is_survived_with_expect_disconnect") {
        return;
    }
    let w = Workspace::new();
    let reboot =
        json!({"type": "shell", "inline": ["echo before", "reboot"], "expect_disconnect": true});
    let after = json!({"type": "shell", "inline": ["echo after the reboot"]});
    w.template_with("web", ssh_builder(json!({})), json!([reboot, after]));
    let stderr = ok(&w.run(&["apply", "t.json", "--auto-approve"]));
    for line in [
        "    web: before",
        "    web: inline script disconnected, as expect_disconnect allows",
        "    web: after the reboot",
    ] {
        assert!(stderr.contains(line), "{line}: {stderr}");
    }
    ok(&w.run(&["destroy", "t.json", "--auto-approve"]));

    let reboot = json!({"type": "shell", "inline": ["reboot"]});
    w.template_with("web", ssh_builder(json!({})), json!([reboot]));
    let out = w.run(&["apply", "t.json", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the connection closed while inline script ran (set expect_disconnect"),
        "{stderr}"
    );
}

#[tokio::test]
async fn ssh_password_logs_in_where_cloud_init_allows_it() {
    if !privileged("ssh_password_logs_in_where_cloud_init_allows_it") {
        return;
    }
    let w = Workspace::new();
    let shell = json!([{"type": "shell", "inline": ["echo logged in with a password"]}]);
    w.template_with(
        "web",
        ssh_builder(json!({
            "ssh_password": "pa55-w0rd",
            "user_data": "#cloud-config\npassword: pa55-w0rd\nssh_pwauth: true\n",
        })),
        shell.clone(),
    );
    let out = w.run(&["apply", "t.json", "--auto-approve"]);
    let stderr = ok(&out);
    assert!(
        stderr.contains("    web: logged in with a password"),
        "{stderr}"
    );
    assert!(!stderr.contains("pa55-w0rd"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("pa55-w0rd"));
    // No temporary keypair was needed.
    assert!(!stderr.contains("keypair"), "{stderr}");
    ok(&w.run(&["destroy", "t.json", "--auto-approve"]));

    // Without ssh_pwauth the VM's sshd takes keys only.
    w.template_with(
        "web",
        ssh_builder(json!({
            "ssh_password": "pa55-w0rd",
            "ssh_handshake_attempts": 1,
            "user_data": "#cloud-config\npassword: pa55-w0rd\n",
        })),
        shell,
    );
    let out = w.run(&["apply", "t.json", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refused the credential 1 times"),
        "{stderr}"
    );
}
