//! The resource graph as a user meets it: `osci graph`, destroy in the
//! order the state's dependencies say, a build that keeps nothing, and the
//! parallelism bound of destroy.

mod common;

use std::path::Path;
use std::process::Command;

use base64::Engine;
use common::workspace::*;
use osci::oapi::model::*;
use serde_json::{Value, json};

/// `osci graph` of the quickstart: DOT, each node with its action, and the
/// edges of a bsu build (an edge `a -> b`: a waits for b).
#[test]
fn graph_prints_the_quickstarts_edges() {
    let w = Workspace::new();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(
        repo.join("examples/quickstart.json"),
        w.path().join("quickstart.json"),
    )
    .unwrap();
    let copy = Command::new("cp")
        .arg("-r")
        .arg(repo.join("examples/files"))
        .arg(w.path())
        .status()
        .unwrap();
    assert!(copy.success());
    let out = w.run(&["graph", "quickstart.json"]);
    ok(&out);
    let dot = String::from_utf8(out.stdout).unwrap();
    assert!(dot.starts_with("digraph osci {"), "{dot}");
    for line in [
        r#""build.quickstart.vm" [label = "+ build.quickstart.vm"]"#,
        r#""build.quickstart.source" [label = "<= build.quickstart.source"]"#,
        r#""build.quickstart.vm (destroy)" [label = "- build.quickstart.vm (destroy)"]"#,
        r#""build.quickstart.vm" -> "build.quickstart.security_group""#,
        r#""build.quickstart.vm" -> "build.quickstart.keypair""#,
        r#""build.quickstart.provision" -> "build.quickstart.vm""#,
        r#""build.quickstart.stop" -> "build.quickstart.provision""#,
        r#""build.quickstart.image" -> "build.quickstart.stop""#,
        r#""build.quickstart.tags" -> "build.quickstart.image""#,
        r#""build.quickstart.vm (destroy)" -> "build.quickstart.image""#,
        r#""build.quickstart.security_group (destroy)" -> "build.quickstart.vm (destroy)""#,
    ] {
        assert!(dot.contains(line), "missing {line} in:\n{dot}");
    }
    // The same bytes every time.
    assert_eq!(
        String::from_utf8(w.run(&["graph", "quickstart.json"]).stdout).unwrap(),
        dot
    );
}

/// A state whose dependencies no order of kinds could satisfy: security
/// groups that must go one after the other (each rule names the next), after
/// the VM in the first. Destroy follows them in one pass: not one call is
/// refused as "in use".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_follows_the_recorded_dependencies_in_one_pass() {
    let sim = common::SimProcess::start(&[]);
    let client = sim_client(&sim);
    let group = |name: &str| CreateSecurityGroupRequest {
        security_group_name: name.into(),
        description: "destroy order".into(),
        ..Default::default()
    };
    let mut ids = Vec::new();
    for name in ["a", "b", "c"] {
        ids.push(
            client
                .call(&group(name))
                .await
                .unwrap()
                .security_group
                .security_group_id,
        );
    }
    // a's rule names b, b's names c: c can only go last, b second.
    for pair in ids.windows(2) {
        client
            .call(&CreateSecurityGroupRuleRequest {
                security_group_id: pair[0].clone(),
                flow: "Inbound".into(),
                rules: Some(vec![SecurityGroupRule {
                    ip_protocol: Some("tcp".into()),
                    from_port_range: Some(22),
                    to_port_range: Some(22),
                    security_groups_members: Some(vec![SecurityGroupsMember {
                        security_group_id: Some(pair[1].clone()),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }]),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let image = client
        .read_all(&ReadImagesRequest::default())
        .await
        .unwrap()
        .remove(0);
    let vm = client
        .call(&CreateVmsRequest {
            image_id: image.image_id,
            security_group_ids: Some(vec![ids[0].clone()]),
            ..Default::default()
        })
        .await
        .unwrap()
        .vms
        .remove(0);
    let entry = |key: &str, kind: &str, id: &str, deps: &[&str]| {
        json!({"address": format!("build.x.{kind}[\"{key}\"]"), "build": "x", "kind": kind,
               "id": id, "status": "created", "ephemeral": true, "attributes": {},
               "dependencies": deps.iter().map(|d| format!("build.x.{d}")).collect::<Vec<_>>()})
    };
    let w = Workspace::new();
    w.template(json!({"custom_endpoint_oapi": sim.endpoint}));
    std::fs::create_dir_all(w.path().join("state")).unwrap();
    let mut resources = vec![
        entry("a", "security_group", &ids[0], &["security_group[\"b\"]"]),
        entry("b", "security_group", &ids[1], &["security_group[\"c\"]"]),
        entry("c", "security_group", &ids[2], &[]),
        entry("v", "vm", &vm.vm_id, &["security_group[\"a\"]"]),
    ];
    resources.sort_by(|a, b| a["address"].as_str().cmp(&b["address"].as_str()));
    std::fs::write(
        w.path().join("state/t.json"),
        serde_json::to_vec(&json!({
            "format_version": 2, "lineage": "7dc86082-3d28-438b-b919-09219fd1a2bb",
            "serial": 1, "osci_version": "0.1.0", "resources": resources,
        }))
        .unwrap(),
    )
    .unwrap();
    let out = osci_for(&w, &sim)
        .args(["destroy", "t.json", "--auto-approve", "--json"])
        .output()
        .unwrap();
    ok(&out);
    let done: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["type"] == "done")
        .map(|e| e["address"].as_str().unwrap().to_string())
        .collect();
    // The VM's volume, which the state lacked, goes too, after its VM.
    let at = |address: &str| {
        done.iter()
            .position(|d| d == address)
            .unwrap_or_else(|| panic!("{address} not destroyed: {done:?}"))
    };
    let order = [
        "build.x.vm[\"v\"]",
        "build.x.security_group[\"a\"]",
        "build.x.security_group[\"b\"]",
        "build.x.security_group[\"c\"]",
    ];
    assert!(order.windows(2).all(|p| at(p[0]) < at(p[1])), "{done:?}");
    assert!(
        at(order[0]) < at("build.x.volume[\"/dev/sda1\"]"),
        "{done:?}"
    );
    let stats: Value = reqwest::get(sim.endpoint.replace("/api/v1", "/_sim/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["errors"], json!({}), "no call was refused: {stats}");
    assert!(leftovers(&client, &sim.account_id).await.is_empty());
}

/// `skip_create_omi`: the build runs, keeps nothing, and the next plan has
/// nothing to do, until what shapes it changes.
#[test]
fn a_build_that_keeps_nothing_plans_no_changes_once_applied() {
    let w = Workspace::new();
    w.template(json!({"skip_create_omi": true}));
    let text = String::from_utf8_lossy(&w.run(&["plan", "t.json"]).stdout).into_owned();
    assert!(text.contains("+ build.web.run"), "{text}");
    assert!(!text.contains("build.web.image"), "{text}");
    ok(&w.run(&["apply", "t.json", "--auto-approve"]));
    assert_eq!(w.addresses(), ["build.web.run"]);
    let out = w.run(&["plan", "t.json", "--detailed-exitcode"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    w.template(json!({"skip_create_omi": true, "vm_type": "tinav5.c4r8p2"}));
    let text = String::from_utf8_lossy(&w.run(&["plan", "t.json"]).stdout).into_owned();
    assert!(text.contains("-/+ build.web.run"), "{text}");
    assert!(text.contains("+ build.web.vm"), "{text}");
}

/// `destroy --parallelism 1` removes one thing at a time.
#[test]
fn destroy_keeps_to_its_parallelism() {
    let w = Workspace::new();
    w.write_template(
        vec![w.builder("a"), w.builder("b"), w.builder("c")],
        json!([]),
    );
    ok(&w.run(&["apply", "t.json", "--auto-approve"]));
    let out = w.run(&[
        "destroy",
        "t.json",
        "--auto-approve",
        "--json",
        "--parallelism",
        "1",
    ]);
    ok(&out);
    let mut running = 0;
    let mut destroyed = 0;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let e: Value = serde_json::from_str(line).unwrap();
        match e["type"].as_str() {
            Some("start") => {
                running += 1;
                assert_eq!(running, 1, "two at once: {line}");
            }
            Some("done") => {
                running -= 1;
                destroyed += 1;
            }
            _ => {}
        }
    }
    assert_eq!(destroyed, 15, "three builds of five entries each");
}

/// User data that is base64 already, and a binary `user_data_file`, reach
/// the VM encoded once, as the plugin sends them.
#[tokio::test]
async fn user_data_is_encoded_once() {
    let b64 = base64::engine::general_purpose::STANDARD;
    let w = Workspace::new();
    let script = "#cloud-config\nruncmd:\n - echo hi\n";
    let binary: &[u8] = &[0x1f, 0x8b, 0xff, 0x00, 0x42];
    std::fs::write(w.path().join("data.bin"), binary).unwrap();
    for (changes, expected) in [
        (json!({"user_data": script}), script.as_bytes()),
        (json!({"user_data": b64.encode(script)}), script.as_bytes()),
        (json!({"user_data_file": "data.bin"}), binary),
    ] {
        let mut changes = changes;
        merge(&mut changes, json!({"skip_create_omi": true}));
        w.template(changes.clone());
        ok(&w.run(&["apply", "t.json", "--auto-approve"]));
        let (_sim, client) = w.client();
        // The build's VMs: not the host, the VM this machine is.
        let mut vms: Vec<Vm> = client
            .read_all(&ReadVmsRequest::default())
            .await
            .unwrap()
            .into_iter()
            .filter(|v| v.tags.iter().all(|t| t.value != "osci-sim-host"))
            .collect();
        vms.sort_by(|a, b| a.creation_date.cmp(&b.creation_date));
        let sent = vms.last().unwrap().user_data.clone().unwrap_or_default();
        assert_eq!(b64.decode(&sent).unwrap(), expected, "{changes}");
        ok(&w.run(&["destroy", "t.json", "--auto-approve"]));
    }
}

/// On a terminal, apply shows the nodes at work, each with its state and
/// elapsed time, redrawn in place; the lines of what ended scroll above.
#[test]
fn a_terminal_gets_a_live_view() {
    let w = Workspace::new();
    w.template(json!({"skip_create_omi": true}));
    let out = w
        .terminal("apply --auto-approve t.json")
        .env("OSCI_SIM_LATENCY_SCALE", "0.2")
        .output()
        .unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    assert!(
        screen.contains("build.web.vm: create, waiting to be running")
            || screen.contains("build.web.vm: create, pending"),
        "no live state of the VM in: {screen}"
    );
    assert!(
        screen.contains("\u{1b}["),
        "nothing redrawn in place: {screen}"
    );
    assert!(screen.contains("build.web.vm: create done"), "{screen}");
    assert!(screen.contains("build.web.vm: destroy done"), "{screen}");
}

/// `force_deregister` removes the old OMI only once the new one is about to
/// be made: a build that fails before keeps it, and the state with it.
#[tokio::test]
async fn force_deregister_waits_until_the_new_omi_is_about_to_be_made() {
    let w = Workspace::new();
    w.template(json!({}));
    ok(&w.run(&["apply", "t.json", "--auto-approve"]));
    let first = w.state()["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["address"] == "build.web.image")
        .unwrap()["id"]
        .clone();
    w.template_with(
        "web",
        json!({"vm_type": "tinav5.c4r8p2", "force_deregister": true, "force_delete_snapshot": true}),
        json!([{"type": "shell-local", "inline": ["exit 3"]}]),
    );
    let out = w.run(&["apply", "t.json", "--auto-approve"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (sim, client) = w.client();
    let images = own_images(&client, &sim.default_account().account_id).await;
    assert_eq!(images.len(), 1, "{images:?}");
    assert_eq!(json!(images[0].image_id), first, "the old OMI stays");
    assert!(!images[0].snapshot_ids().is_empty());
    let recorded = w.state()["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["address"] == "build.web.image")
        .map(|r| r["id"].clone());
    assert_eq!(recorded, Some(first), "and the state still holds it");
}

/// A keypair name already taken (`temporary_key_pair_name`) fails the
/// build, and the keypair, which is not osci's, is left alone.
#[tokio::test]
async fn a_taken_name_is_not_taken_over() {
    let w = Workspace::new();
    {
        let (_sim, client) = w.client();
        client
            .call(&CreateKeypairRequest {
                keypair_name: "mine".into(),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    w.template(json!({"communicator": "ssh", "ssh_username": "outscale", "temporary_key_pair_name": "mine"}));
    let out = w.run(&["apply", "t.json", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        !w.addresses().contains(&"build.web.keypair".to_string()),
        "{:?}",
        w.addresses()
    );
    ok(&w.run(&["destroy", "t.json", "--auto-approve"]));
    let (_sim, client) = w.client();
    let keypairs = client
        .read_all(&ReadKeypairsRequest::default())
        .await
        .unwrap();
    assert_eq!(
        keypairs
            .iter()
            .map(|k| k.keypair_name.as_str())
            .collect::<Vec<_>>(),
        ["mine"]
    );
}

/// An OMI registered from a capture with a snapshot of the user's as its
/// root: its plan settles, it can be replaced, and the replacement's own
/// snapshot is complete, tagged and recorded.
#[tokio::test]
async fn an_omi_shaped_by_mappings_settles_and_is_replaced() {
    let w = Workspace::new();
    let (volume, mine) = {
        let (_sim, client) = w.client();
        user_snapshot(&client, 3).await
    };
    let template = |changes: Value| {
        let mut t = json!({
            "launch_block_device_mappings": [
                {"device_name": "/dev/sda1", "volume_size": 12},
                {"device_name": "/dev/sdb", "volume_size": 5}
            ],
            "root_device_name": "/dev/sda1",
            "omi_block_device_mappings": [{"device_name": "/dev/sda1", "snapshot_id": mine}],
            "snapshot_tags": {"role": "data"},
        });
        merge(&mut t, changes);
        w.template(t);
    };
    template(json!({}));
    ok(&w.run(&["apply", "t.json", "--auto-approve"]));
    let settled = |w: &Workspace| w.run(&["plan", "t.json", "--detailed-exitcode"]);
    let out = settled(&w);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // The old OMI's own snapshot goes with it; the user's, which the new
    // one is registered from too, stays.
    template(
        json!({"vm_type": "tinav5.c4r8p2", "force_deregister": true, "force_delete_snapshot": true}),
    );
    let plan = String::from_utf8_lossy(&w.run(&["plan", "t.json"]).stdout).into_owned();
    assert!(!plan.contains(&format!("- {mine}")), "{plan}");
    ok(&w.run(&["apply", "t.json", "--auto-approve"]));
    let out = settled(&w);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let sdb = w.state()["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["address"] == "build.web.snapshot[\"/dev/sdb\"]")
        .cloned()
        .expect("the new OMI's snapshot is recorded");
    assert_eq!(sdb["status"], "created");
    let (sim, client) = w.client();
    let account = sim.default_account().account_id;
    let images = own_images(&client, &account).await;
    assert_eq!(images.len(), 1, "{images:?}");
    assert!(images[0].snapshot_ids().contains(&mine));
    assert!(
        images[0]
            .snapshot_ids()
            .contains(&sdb["id"].as_str().unwrap().to_string())
    );
    let tagged = snapshots(
        &client,
        FiltersSnapshot {
            snapshot_ids: Some(vec![sdb["id"].as_str().unwrap().to_string()]),
            ..Default::default()
        },
    )
    .await
    .remove(0);
    assert!(
        tagged
            .tags
            .iter()
            .any(|t| t.key == "role" && t.value == "data"),
        "{:?}",
        tagged.tags
    );
    drop((sim, client));
    ok(&w.run(&["destroy", "t.json", "--auto-approve"]));
    let (sim, client) = w.client();
    let mut left = leftovers(&client, &sim.default_account().account_id).await;
    left.sort();
    let mut expected = vec![volume, mine];
    expected.sort();
    assert_eq!(left, expected, "only what the user made is left");
}
