//! The chroot builder on this machine's own block devices: the simulator's
//! host VM (this machine) gets the build's volume as a loop device at the
//! device name osci chose, osci mounts it, provisions it in a chroot, and
//! the OMI made from its snapshot boots VMs that show what was done.
//! Linking volumes to the host and mounting need root: without it these
//! tests say so and skip; CI runs as root.

mod common;

use std::time::{Duration, Instant};

use common::workspace::*;
use serde_json::{Value, json};

fn privileged(test: &str) -> bool {
    let ok = osci::sim::privileged();
    if !ok {
        eprintln!("skipped {test}: linking volumes to this machine and mounting them need root");
    }
    ok
}

/// A chroot build against the workspace's simulator, mounting under the
/// workspace (so what it leaves is found there).
fn chroot_builder(w: &Workspace, name: &str, changes: Value) -> Value {
    let mut builder = json!({
        "type": "outscale-chroot",
        "name": name,
        "custom_endpoint_oapi": format!("sim://{}", w.sim_dir().display()),
        "source_omi_filter": {"filters": {"image-name": "Debian-12-*"}, "owners": ["Outscale"], "most_recent": true},
        "omi_name": format!("chroot-{name}"),
        "mount_path": format!("{}/mnt/{{{{.Device}}}}", w.path().display()),
        "root_volume_tags": {"Name": "chroot-{{ .SourceOMIName }}"},
        "tags": {"team": "platform"},
    });
    merge(&mut builder, changes);
    builder
}

/// Unmounts and unlinks what a test that failed half-way left on this
/// machine, so that the next tests start from a clean host.
struct Cleanup<'a>(&'a Workspace);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.0.run(&["destroy", "t.json", "--auto-approve"]);
        }
    }
}

/// Nothing of the build on this machine, and only `kept` in the account.
async fn assert_clean(w: &Workspace, kept: usize, when: &str) {
    assert_eq!(
        host_leftovers(w),
        Vec::<String>::new(),
        "{when}: left on this machine"
    );
    let (sim, client) = w.client();
    let left = leftovers(&client, &sim.default_account().account_id).await;
    assert_eq!(left.len(), kept, "{when}: left in the account: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chroot_build_reaches_the_vms_of_its_omi_and_puts_resolv_conf_back() {
    if !privileged("a_chroot_build_reaches_the_vms_of_its_omi_and_puts_resolv_conf_back") {
        return;
    }
    let w = Workspace::new();
    let _cleanup = Cleanup(&w);
    std::fs::create_dir_all(w.path().join("site")).unwrap();
    std::fs::write(w.path().join("site/index.html"), "<h1>chroot</h1>\n").unwrap();
    let provisioners = json!([
        {"type": "shell", "inline": [
            "echo 'built in a chroot' > /etc/motd",
            "cat /etc/resolv.conf > /root/resolv-during-build",
            "echo \"device {{ build `ConnType` }}\"",
            "echo \"wrapped=$WRAPPED\"",
            "grep \" / \" /proc/mounts | grep -c noatime"
        ]},
        {"type": "file", "source": "site", "destination": "/var/www/"},
    ]);
    // Every command on this machine goes through the wrapper; the volume
    // is mounted with the options.
    let changes = json!({
        "command_wrapper": "env WRAPPED=yes {{.Command}}",
        "mount_options": ["noatime"],
    });
    w.write_template(vec![chroot_builder(&w, "c", changes)], provisioners);
    let stderr = ok(&w.run(&["apply", "t.json", "--auto-approve"]));
    assert!(stderr.contains("    c: device chroot"), "{stderr}");
    assert!(stderr.contains("    c: wrapped=yes"), "{stderr}");
    // The source belongs to the catalogue's account: its copy made the
    // volume, and went.
    assert!(
        stderr.contains("build.c.image[\"source_copy\"]: destroy done"),
        "{stderr}"
    );
    // The OMI and its snapshot stay; nothing else, here or in the account.
    assert_clean(&w, 2, "after the apply").await;

    let (sim, client) = w.client();
    let image = own_images(&client, &sim.default_account().account_id)
        .await
        .remove(0);
    assert_eq!(image.image_name, "chroot-c");
    assert_eq!(image.architecture.as_deref(), Some("x86_64"));
    let kit = login_kit(&client, "check").await;
    let session = log_into(&client, &image.image_id, &kit).await;
    assert_eq!(sh(&session, "cat /etc/motd").await, "built in a chroot\n");
    assert_eq!(
        sh(&session, "cat /var/www/site/index.html").await,
        "<h1>chroot</h1>\n"
    );
    // During the build the chroot resolved names with this machine's file;
    // the image has its own link back.
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap();
    assert_eq!(
        sh(&session, "cat /root/resolv-during-build").await,
        host_resolv
    );
    assert_eq!(
        sh(&session, "readlink /etc/resolv.conf").await.trim(),
        "../run/systemd/resolve/stub-resolv.conf"
    );
    session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_chroot_builds_of_one_apply_run_together_on_distinct_devices() {
    if !privileged("two_chroot_builds_of_one_apply_run_together_on_distinct_devices") {
        return;
    }
    let w = Workspace::new();
    let _cleanup = Cleanup(&w);
    let provisioners = json!([
        {"type": "shell", "inline": [
            "echo {{ build_name }} > /etc/built-by",
            "sleep 1"
        ]},
    ]);
    w.write_template(
        vec![
            chroot_builder(&w, "a", json!({})),
            chroot_builder(&w, "b", json!({})),
        ],
        provisioners,
    );
    let stderr = ok(&w.run(&["apply", "t.json", "--auto-approve"]));
    let done = |build: &str, what: &str| {
        stderr
            .lines()
            .position(|l| l.starts_with(&format!("build.{build}.{what}")) && l.contains("done"))
            .unwrap_or_else(|| panic!("no {build} {what} done: {stderr}"))
    };
    let device = |build: &str| {
        let line = stderr
            .lines()
            .find(|l| l.starts_with(&format!("build.{build}.device: create done")))
            .unwrap();
        line.split('(')
            .nth(1)
            .unwrap()
            .split(')')
            .next()
            .unwrap()
            .to_string()
    };
    assert_ne!(device("a"), device("b"), "{stderr}");
    // Both volumes were mounted before either was unmounted: the builds
    // were provisioned at the same time.
    let mounted = done("a", "mount[\"/\"]: create").max(done("b", "mount[\"/\"]: create"));
    let first_unmount = stderr
        .lines()
        .position(|l| l.contains("mount[\"/\"]: destroy"))
        .unwrap();
    assert!(mounted < first_unmount, "{stderr}");
    assert_clean(&w, 4, "after the apply").await;

    let (sim, client) = w.client();
    let kit = login_kit(&client, "check").await;
    for image in own_images(&client, &sim.default_account().account_id).await {
        let session = log_into(&client, &image.image_id, &kit).await;
        let built_by = sh(&session, "cat /etc/built-by").await;
        assert_eq!(format!("chroot-{}", built_by.trim()), image.image_name);
        session.close().await;
    }
}

#[test]
fn a_failing_provisioner_leaves_nothing_on_the_machine_or_in_the_account() {
    if !privileged("a_failing_provisioner_leaves_nothing_on_the_machine_or_in_the_account") {
        return;
    }
    let w = Workspace::new();
    let _cleanup = Cleanup(&w);
    let provisioners =
        json!([{"type": "shell", "inline": ["echo half done > /etc/half", "exit 3"]}]);
    w.write_template(vec![chroot_builder(&w, "c", json!({}))], provisioners);
    let out = w.run(&["apply", "t.json", "--auto-approve"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("provisioning failed"), "{stderr}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(assert_clean(&w, 0, "after the failed apply"));
}

#[test]
fn killed_while_provisioning_then_destroyed_leaves_nothing() {
    if !privileged("killed_while_provisioning_then_destroyed_leaves_nothing") {
        return;
    }
    let w = Workspace::new();
    let _cleanup = Cleanup(&w);
    let started = w.path().join("started");
    let provisioners = json!([
        {"type": "shell-local", "inline": [format!("touch {}", started.display())]},
        {"type": "shell", "inline": ["sleep 60"]},
    ]);
    w.write_template(vec![chroot_builder(&w, "c", json!({}))], provisioners);
    let mut child = w
        .osci()
        .args(["apply", "t.json", "--auto-approve"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !started.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "provisioning never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Give the shell provisioner time to be under way in the chroot.
    std::thread::sleep(Duration::from_millis(500));
    child.kill().unwrap();
    child.wait().unwrap();
    // The build's mounts and devices are still there, and the state knows
    // them.
    assert!(!host_leftovers(&w).is_empty());
    let addresses = w.addresses();
    // The device lock went once the volume was linked: the link holds the
    // device name now.
    for kind in ["link", "mount[\"/\"]", "mount[\"/dev/pts\"]"] {
        assert!(
            addresses.iter().any(|a| a == &format!("build.c.{kind}")),
            "{kind} not in {addresses:?}"
        );
    }
    let stderr = ok(&w.run(&["destroy", "t.json", "--auto-approve"]));
    // Innermost first.
    let at = |what: &str| {
        stderr
            .lines()
            .position(|l| l.starts_with(what) && l.contains("destroy done"))
            .unwrap_or_else(|| panic!("{what}: {stderr}"))
    };
    assert!(at("build.c.mount[\"/dev/pts\"]") < at("build.c.mount[\"/dev\"]"));
    assert!(at("build.c.mount[\"/dev\"]") < at("build.c.mount[\"/\"]"));
    assert!(at("build.c.mount[\"/\"]") < at("build.c.link"));
    assert!(at("build.c.link") < at("build.c.volume"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(assert_clean(&w, 0, "after destroy"));
    assert!(w.addresses().is_empty(), "{:?}", w.addresses());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_scratch_the_seed_partitions_formats_and_its_omi_boots() {
    if !privileged("from_scratch_the_seed_partitions_formats_and_its_omi_boots") {
        return;
    }
    if which("parted").is_none() {
        eprintln!(
            "skipped from_scratch_the_seed_partitions_formats_and_its_omi_boots: parted is not installed (CI installs it)"
        );
        return;
    }
    let w = Workspace::new();
    let _cleanup = Cleanup(&w);
    // The example's userland, copied from this machine.
    let userland = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/files/userland.sh");
    std::fs::copy(userland, w.path().join("userland.sh")).unwrap();
    // The seed's example, as written, with a userland put in place after
    // mounting.
    let seed = json!({
        "type": "osc-chroot",
        "name": "scratch",
        "custom_endpoint_oapi": format!("sim://{}", w.sim_dir().display()),
        "ami_name": "packer-from-scratch {{timestamp}}",
        "from_scratch": true,
        "ami_virtualization_type": "hvm",
        "pre_mount_commands": [
            "parted {{.Device}} mklabel msdos mkpart primary 1M 100% set 1 boot on print",
            "mkfs.ext4 {{.Device}}1"
        ],
        "root_volume_size": 15,
        "root_device_name": "xvdf",
        "ami_block_device_mappings": [
            {"device_name": "xvdf", "delete_on_termination": true, "volume_type": "gp2"}
        ],
        "mount_path": format!("{}/mnt/{{{{.Device}}}}", w.path().display()),
        "post_mount_commands": [format!("sh {}/userland.sh {{{{.MountPath}}}}", w.path().display())],
        "force_deregister": true,
        "force_delete_snapshot": true,
    });
    let provisioners = json!([{"type": "shell", "inline": ["echo \"made from nothing, round {{user `round`}}\" > /etc/motd"]}]);
    let template =
        json!({"variables": {"round": "0"}, "builders": [seed], "provisioners": provisioners});
    std::fs::write(w.path().join("t.json"), template.to_string()).unwrap();
    let validated = w.run(&["validate", "t.json"]);
    let warnings = String::from_utf8_lossy(&validated.stderr);
    assert!(validated.status.success(), "{warnings}");
    for key in [
        "omi_name",
        "omi_virtualization_type",
        "omi_block_device_mappings",
        "delete_on_vm_deletion",
    ] {
        assert!(warnings.contains(&format!("write {key}")), "{warnings}");
    }

    // Partitioning, formatting and mounting, ten times in a row (each
    // round's image replaces the last, by its name): the partition is
    // there when mkfs looks for it, every time.
    for round in 1..=10 {
        let out = w
            .osci()
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .args([
                "apply",
                "t.json",
                "--auto-approve",
                "-var",
                &format!("round={round}"),
            ])
            .output()
            .unwrap();
        let stderr = ok(&out);
        assert!(
            stderr.contains("Partition Table: msdos"),
            "round {round}: {stderr}"
        );
        assert_eq!(host_leftovers(&w), Vec::<String>::new(), "round {round}");
    }
    assert_clean(&w, 2, "after ten rounds").await;

    let (sim, client) = w.client();
    let image = own_images(&client, &sim.default_account().account_id)
        .await
        .remove(0);
    assert_eq!(image.root_device_name.as_deref(), Some("xvdf"));
    let root = &image.block_device_mappings[0];
    assert_eq!(root.bsu.as_ref().unwrap().volume_size, Some(15));
    assert_eq!(
        root.bsu.as_ref().unwrap().volume_type.as_deref(),
        Some("gp2")
    );
    let kit = login_kit(&client, "check").await;
    let session = log_into(&client, &image.image_id, &kit).await;
    assert_eq!(
        sh(&session, "cat /etc/motd").await,
        "made from nothing, round 10\n"
    );
    assert_eq!(sh(&session, "cat /etc/hostname").await, "from-scratch\n");
    session.close().await;
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .chain(["/usr/sbin", "/sbin"].map(Into::into))
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

#[test]
fn the_seeds_chroot_examples_validate_with_warnings_for_amazon_names() {
    let w = Workspace::new();
    let _cleanup = Cleanup(&w);
    let basic = json!({
        "type": "osc-chroot",
        // The seed's example is "completely valid except for the access
        // keys": its placeholders hold spaces, which osci refuses in a key.
        "access_key": "YOURKEYHERE",
        "secret_key": "YOURSECRETKEYHERE",
        "source_omi": "ami-3e158364",
        "omi_name": "packer-outscale-chroot {{timestamp}}"
    });
    let path = w.write_template(vec![basic], json!([]));
    let out = w.run(&["validate", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("warning"));
}

#[test]
fn plan_and_graph_show_a_chroot_build() {
    let w = Workspace::new();
    let _cleanup = Cleanup(&w);
    w.write_template(vec![chroot_builder(&w, "c", json!({}))], json!([]));
    let out = w.run(&["plan", "t.json"]);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    for line in [
        "+ build.c.volume[\"/dev/sda1\"]  [ephemeral: removed by this apply]",
        "+ build.c.link  [ephemeral: removed by this apply]",
        "+ build.c.mount[\"/\"]  [ephemeral: removed by this apply]",
        "+ build.c.snapshot[\"/dev/sda1\"]\n",
        "+ build.c.image\n",
    ] {
        assert!(text.contains(line), "{line} not in {text}");
    }
    let graph = String::from_utf8_lossy(&w.run(&["graph", "t.json"]).stdout).into_owned();
    // Edges point from a job to what it waits for. The snapshot is taken
    // once the volume is unmounted and unlinked; the device lock goes once
    // the volume is linked.
    for edge in [
        "\"build.c.link (destroy)\" -> \"build.c.mount[\\\"/\\\"] (destroy)\"",
        "\"build.c.snapshot[\\\"/dev/sda1\\\"]\" -> \"build.c.link (destroy)\"",
        "\"build.c.device (destroy)\" -> \"build.c.link\"",
        "\"build.c.image\" -> \"build.c.snapshot[\\\"/dev/sda1\\\"]\"",
    ] {
        assert!(graph.contains(edge), "{edge} not in {graph}");
    }
}
