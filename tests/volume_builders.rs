//! The builders that work on a build VM's extra volumes: bsusurrogate
//! (a system installed into a launch volume becomes the OMI's root) and
//! bsuvolume (the volumes are the product). The simulated VM sees its
//! extra volumes as block devices in its `/dev`, as a real one does.
//! Logging into simulated VMs and attaching their volumes need root:
//! without it these tests say so and skip; CI runs as root.

mod common;

use common::workspace::*;
use osci::oapi::model::*;
use serde_json::{Value, json};

fn privileged(test: &str) -> bool {
    let ok = osci::sim::privileged();
    if !ok {
        eprintln!("skipped {test}: simulated VMs answer SSH and see their volumes only as root");
    }
    ok
}

/// Partitions and formats `/dev/DEVICE` in the build VM and mounts it on
/// /mnt/new; as a careful script does, waits for the partition device.
fn prepare_volume(device: &str) -> Vec<String> {
    vec![
        format!("parted -s /dev/{device} mklabel msdos mkpart primary 1MiB 100%"),
        format!("while [ ! -b /dev/{device}1 ]; do sleep 0.1; done"),
        format!("mkfs.ext4 -q /dev/{device}1"),
        format!("mkdir -p /mnt/new && mount /dev/{device}1 /mnt/new"),
    ]
}

fn surrogate(w: &Workspace, changes: Value) -> Value {
    let mut builder = w.builder("sur");
    merge(
        &mut builder,
        json!({
            "type": "osc-bsusurrogate",
            "communicator": "ssh", "ssh_username": "outscale", "ssh_timeout": "30s",
            "launch_block_device_mappings": [
                {"device_name": "/dev/sda1", "volume_size": 10, "delete_on_vm_deletion": true},
                {"device_name": "/dev/xvdf", "volume_size": 4, "volume_type": "gp2", "delete_on_vm_deletion": true},
                {"device_name": "/dev/xvdg", "volume_size": 1, "delete_on_vm_deletion": true}
            ],
            "omi_root_device": {
                "source_device_name": "/dev/xvdf", "device_name": "/dev/sda1",
                "volume_size": 6, "volume_type": "io1", "iops": 300, "delete_on_vm_deletion": true
            },
            "omi_name": "surrogate",
        }),
    );
    merge(&mut builder, changes);
    builder
}

/// Installs the running system into the surrogate volume, with a marker.
fn install() -> Value {
    let mut commands = prepare_volume("xvdf");
    commands.extend([
        "for d in usr etc root home var; do cp -a /$d /mnt/new/; done".to_string(),
        "ln -s usr/bin /mnt/new/bin; ln -s usr/bin /mnt/new/sbin".to_string(),
        "mkdir -p /mnt/new/tmp /mnt/new/dev /mnt/new/run".to_string(),
        "for d in lib lib64; do [ -e /$d ] && cp -a /$d /mnt/new/; done; true".to_string(),
        "echo 'installed by a surrogate' > /mnt/new/etc/built-by-surrogate".to_string(),
        "umount /mnt/new".to_string(),
    ]);
    json!([{"type": "shell", "inline": commands}])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_surrogate_volume_becomes_the_root_of_the_omi() {
    if !privileged("a_surrogate_volume_becomes_the_root_of_the_omi") {
        return;
    }
    let w = Workspace::new();
    w.write_template(vec![surrogate(&w, json!({}))], install());
    let graph = String::from_utf8_lossy(&w.run(&["graph", "t.json"]).stdout).into_owned();
    // Each launch volume's snapshot waits for the stop, not for another.
    for device in ["/dev/sda1", "/dev/xvdg"] {
        let edge = format!("\"build.sur.snapshot[\\\"{device}\\\"]\" -> \"build.sur.stop\"");
        assert!(graph.contains(&edge), "{edge} not in {graph}");
    }
    assert!(!graph.contains("\"build.sur.snapshot[\\\"/dev/xvdg\\\"]\" -> \"build.sur.snapshot"));
    let out = w
        .osci()
        .args(["apply", "t.json", "--auto-approve", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The snapshots were taken at the same time: both started before
    // either was done.
    let events: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let at = |address: &str, kind: &str| {
        events
            .iter()
            .position(|e| e["type"] == kind && e["address"] == address)
            .unwrap_or_else(|| panic!("no {kind} of {address}"))
    };
    let (root, other) = (
        "build.sur.snapshot[\"/dev/sda1\"]",
        "build.sur.snapshot[\"/dev/xvdg\"]",
    );
    let started = at(root, "start").max(at(other, "start"));
    let finished = at(root, "done").min(at(other, "done"));
    assert!(started < finished, "the snapshots did not overlap");

    let (sim, client) = w.client();
    let account = sim.default_account().account_id;
    // The OMI and its two snapshots; no launch volume, no VM.
    let left = leftovers(&client, &account).await;
    assert_eq!(left.len(), 3, "{left:?}");
    let image = own_images(&client, &account).await.remove(0);
    let root = image
        .block_device_mappings
        .iter()
        .find(|m| m.device_name.as_deref() == Some("/dev/sda1"))
        .and_then(|m| m.bsu.clone())
        .unwrap();
    assert_eq!(root.volume_size, Some(6));
    assert_eq!(root.volume_type.as_deref(), Some("io1"));
    assert_eq!(root.iops, Some(300));
    assert_eq!(image.architecture.as_deref(), Some("x86_64"));
    let kit = login_kit(&client, "check").await;
    let session = log_into(&client, &image.image_id, &kit).await;
    assert_eq!(
        sh(&session, "cat /etc/built-by-surrogate").await,
        "installed by a surrogate\n"
    );
    session.close().await;
}

fn volumes(w: &Workspace, team: &str) -> Value {
    let mut builder = w.builder("data");
    merge(
        &mut builder,
        json!({
            "type": "osc-bsuvolume",
            "communicator": "ssh", "ssh_username": "outscale", "ssh_timeout": "30s",
            "omi_name": null, "omi_description": null, "tags": null,
            "ebs_volumes": [
                {"device_name": "/dev/xvdf", "volume_size": 4, "volume_type": "gp2",
                 "tags": {"Name": format!("data-{team}"), "source": "{{ .SourceOMI }}"}},
                {"device_name": "/dev/xvdg", "volume_size": 2, "tags": {"Name": "scratch"}}
            ],
        }),
    );
    builder
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bsuvolume_keeps_its_volumes_tagged_with_their_content() {
    if !privileged("bsuvolume_keeps_its_volumes_tagged_with_their_content") {
        return;
    }
    let w = Workspace::new();
    let mut commands = prepare_volume("xvdf");
    commands.extend([
        "echo 'provisioned data' > /mnt/new/hello.txt".to_string(),
        "umount /mnt/new".to_string(),
    ]);
    let provisioners = json!([{"type": "shell", "inline": commands}]);
    w.write_template(vec![volumes(&w, "platform")], provisioners.clone());
    let out = w.run(&["apply", "t.json", "--auto-approve"]);
    let stderr = ok(&out);
    // Packer's docs' name, read with a warning.
    assert!(stderr.contains("write bsu_volumes"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("build \"data\": volumes eu-west-2: vol-"),
        "{stdout}"
    );

    let (sim, client) = w.client();
    let account = sim.default_account().account_id;
    // Exactly the declared volumes, and nothing else: the VM is gone.
    let left = leftovers(&client, &account).await;
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.iter().all(|id| id.starts_with("vol-")), "{left:?}");
    let kept = all(&client, ReadVolumesRequest::default()).await;
    let tag = |v: &Volume, key: &str| {
        v.tags
            .iter()
            .find(|t| t.key == key)
            .map(|t| t.value.clone())
    };
    let data = kept.iter().find(|v| v.size == 4).unwrap();
    assert_eq!(tag(data, "Name").as_deref(), Some("data-platform"));
    assert!(tag(data, "source").unwrap().starts_with("ami-"));
    let scratch = kept.iter().find(|v| v.size == 2).unwrap();
    assert_eq!(tag(scratch, "Name").as_deref(), Some("scratch"));

    // The content, read from a new VM the volume is linked to.
    let kit = login_kit(&client, "check").await;
    let catalogue = all(&client, ReadImagesRequest::default()).await;
    let ubuntu = catalogue
        .iter()
        .find(|i| i.image_name.starts_with("Ubuntu"))
        .unwrap();
    let session = log_into(&client, &ubuntu.image_id, &kit).await;
    let vm = all(&client, ReadVmsRequest::default())
        .await
        .into_iter()
        .find(|v| v.state == "running" && v.keypair_name.as_deref() == Some("check"))
        .unwrap();
    client
        .call(&LinkVolumeRequest {
            volume_id: data.volume_id.clone(),
            vm_id: vm.vm_id.clone(),
            device_name: "/dev/xvdh".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    for _ in 0..100 {
        let v = all(&client, ReadVolumesRequest::default())
            .await
            .into_iter()
            .find(|v| v.volume_id == data.volume_id)
            .unwrap();
        if v.linked_volumes.iter().all(|l| l.state == "attached") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let read = "while [ ! -b /dev/xvdh1 ]; do sleep 0.1; done; mkdir -p /mnt/d && \
                mount /dev/xvdh1 /mnt/d && cat /mnt/d/hello.txt; umount /mnt/d";
    assert_eq!(sh(&session, read).await, "provisioned data\n");
    session.close().await;
    client
        .call(&UnlinkVolumeRequest {
            volume_id: data.volume_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    client
        .call(&DeleteVmsRequest {
            vm_ids: vec![vm.vm_id.clone()],
            ..Default::default()
        })
        .await
        .unwrap();
    drop((sim, client));

    // A tag change is made in place.
    w.write_template(vec![volumes(&w, "infra")], provisioners);
    let plan = String::from_utf8_lossy(&w.run(&["plan", "t.json"]).stdout).into_owned();
    assert!(
        plan.contains("~ build.data.volume[\"/dev/xvdf\"]"),
        "{plan}"
    );
    assert!(!plan.contains("-/+"), "{plan}");
    assert!(
        plan.contains("0 to add, 0 to replace, 1 to change"),
        "{plan}"
    );
    ok(&w.run(&["apply", "t.json", "--auto-approve"]));
    let (_sim, client) = w.client();
    let after = all(&client, ReadVolumesRequest::default()).await;
    let data_after = after
        .iter()
        .find(|v| v.volume_id == data.volume_id)
        .unwrap();
    assert_eq!(tag(data_after, "Name").as_deref(), Some("data-infra"));
    drop(client);

    // A volume the template no longer declares goes (and the others are
    // made anew: the VM's mappings shape what fills them).
    let mut one = volumes(&w, "infra");
    one["ebs_volumes"].as_array_mut().unwrap().pop();
    w.write_template(vec![one], json!([]));
    let plan = String::from_utf8_lossy(&w.run(&["plan", "t.json"]).stdout).into_owned();
    assert!(
        plan.contains("- build.data.volume[\"/dev/xvdg\"]"),
        "{plan}"
    );
    assert!(plan.contains("# no longer in the template"), "{plan}");

    // destroy removes them.
    ok(&w.run(&["destroy", "t.json", "--auto-approve"]));
    let (sim, client) = w.client();
    let left = leftovers(&client, &sim.default_account().account_id).await;
    assert!(
        left.iter()
            .all(|id| !kept.iter().any(|v| &v.volume_id == id)),
        "{left:?}"
    );
}

#[test]
fn failed_surrogate_and_volume_builds_leave_nothing() {
    if !privileged("failed_surrogate_and_volume_builds_leave_nothing") {
        return;
    }
    for builder in ["surrogate", "bsuvolume"] {
        let w = Workspace::new();
        let failing = json!([{"type": "shell", "inline": ["exit 4"]}]);
        let b = match builder {
            "surrogate" => surrogate(&w, json!({})),
            _ => volumes(&w, "platform"),
        };
        w.write_template(vec![b], failing);
        let out = w.run(&["apply", "t.json", "--auto-approve"]);
        assert!(!out.status.success(), "{builder}");
        let rt = tokio::runtime::Runtime::new().unwrap();
        let left = rt.block_on(async {
            let (sim, client) = w.client();
            leftovers(&client, &sim.default_account().account_id).await
        });
        assert!(left.is_empty(), "{builder}: {left:?}");
    }
}
