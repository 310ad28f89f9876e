//! `osci plan`, `apply` and `destroy` as a user runs them, against the
//! simulator: in-process (`sim://DIR`) for most, `osci sim serve` where a
//! test needs to stop osci in the middle of its work.

mod common;

use common::workspace::*;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use osci::oapi::Client;
use osci::oapi::model::*;
use serde_json::{Value, json};

#[tokio::test]
async fn plan_apply_plan_again_and_destroy() {
    let w = Workspace::new();
    w.template(json!({"omi_account_ids": ["123456789012"], "snapshot_tags": {"role": "root"}}));

    let out = w.run(&["plan", "t.json", "--detailed-exitcode"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        "+ build.web.security_group",
        "+ build.web.vm",
        "+ build.web.image",
        "+ build.web.snapshot[\"/dev/sda1\"]",
        "+ build.web.image_permissions",
        "+ build.web.tags",
        "(known after apply)",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }

    let out = w.run(&["apply", "t.json", "--auto-approve"]);
    let stderr = ok(&out);
    assert!(stderr.contains("build.web.vm: running"), "{stderr}");
    assert!(stderr.contains("build.web.image: available"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("OMI eu-west-2: ami-"), "{stdout}");

    let (sim, client) = w.client();
    let account = sim.default_account().account_id;
    let images = own_images(&client, &account).await;
    assert_eq!(images.len(), 1);
    let image = &images[0];
    assert_eq!(image.state, "available");
    assert_eq!(image.image_name, "golden-web");
    assert!(
        image
            .description
            .as_deref()
            .unwrap()
            .starts_with("from Ubuntu-22.04-2025.06.10"),
        "{:?}",
        image.description
    );
    assert_eq!(
        image.permissions_to_launch.account_ids,
        vec!["123456789012".to_string()]
    );
    let tag =
        |tags: &[ResourceTag], k: &str| tags.iter().find(|t| t.key == k).map(|t| t.value.clone());
    assert_eq!(tag(&image.tags, "team").as_deref(), Some("platform"));
    assert!(tag(&image.tags, "source").unwrap().starts_with("ami-"));
    assert!(tag(&image.tags, "osci:lineage").is_some());
    let snapshot = snapshots(
        &client,
        FiltersSnapshot {
            snapshot_ids: Some(image.snapshot_ids()),
            ..Default::default()
        },
    )
    .await
    .remove(0);
    assert_eq!(tag(&snapshot.tags, "role").as_deref(), Some("root"));
    assert_eq!(tag(&snapshot.tags, "team").as_deref(), Some("platform"));
    assert_eq!(
        snapshot.permissions_to_create_volume.account_ids,
        vec!["123456789012".to_string()]
    );
    // Nothing temporary is left: no VM, volume, group or keypair.
    let left: Vec<String> = leftovers(&client, &account)
        .await
        .into_iter()
        .filter(|id| *id != image.image_id && *id != snapshot.snapshot_id)
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    drop(client);
    drop(sim);

    let out = w.run(&["plan", "t.json", "--detailed-exitcode"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("No changes"));

    ok(&w.run(&["destroy", "t.json", "--auto-approve"]));
    let (sim, client) = w.client();
    assert!(
        leftovers(&client, &sim.default_account().account_id)
            .await
            .is_empty()
    );
    // The catalogue is untouched.
    assert_eq!(
        client
            .read_all(&ReadImagesRequest::default())
            .await
            .unwrap()
            .len(),
        4
    );
    assert!(w.state()["resources"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn in_place_updates_replacements_and_removal() {
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

    // Tags and sharing change in place: no new OMI.
    w.template(json!({"tags": {"team": "security"}, "omi_account_ids": ["210987654321"]}));
    let out = w.run(&["plan", "t.json"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("~ build.web.tags"), "{text}");
    assert!(text.contains("~ build.web.image_permissions"), "{text}");
    assert!(!text.contains("+ build.web.image"), "{text}");
    ok(&w.run(&["apply", "t.json", "--auto-approve"]));
    {
        let (sim, client) = w.client();
        let images = own_images(&client, &sim.default_account().account_id).await;
        assert_eq!(images.len(), 1, "no new OMI");
        assert_eq!(Value::from(images[0].image_id.clone()), first);
        assert_eq!(
            images[0].permissions_to_launch.account_ids,
            vec!["210987654321".to_string()]
        );
        assert!(
            images[0]
                .tags
                .iter()
                .any(|t| t.key == "team" && t.value == "security")
        );
        assert!(
            !images[0].tags.iter().any(|t| t.key == "source"),
            "a tag no longer wanted is removed"
        );
    }
    assert_eq!(
        w.run(&["plan", "t.json", "--detailed-exitcode"])
            .status
            .code(),
        Some(0)
    );

    // vm_type shapes the image: replace. The current OMI holds the name, so
    // without force_deregister the plan says how to go on.
    w.template(json!({"tags": {"team": "security"}, "omi_account_ids": ["210987654321"], "vm_type": "tinav5.c4r8p2"}));
    let out = w.run(&["plan", "t.json"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        stderr.contains("must be replaced")
            && stderr.contains(first.as_str().unwrap())
            && stderr.contains("force_deregister"),
        "{stderr}"
    );
    let replacing = json!({"tags": {"team": "security"}, "omi_account_ids": ["210987654321"], "vm_type": "tinav5.c4r8p2", "force_deregister": true});
    w.template(replacing);
    let text = String::from_utf8_lossy(&w.run(&["plan", "t.json"]).stdout).into_owned();
    assert!(text.contains("-/+ build.web.image"), "{text}");
    assert!(
        text.contains(first.as_str().unwrap()),
        "the plan names the OMI force_deregister removes: {text}"
    );
    // So does another source OMI.
    let debian = {
        let (_sim, client) = w.client();
        client
            .read_all(&ReadImagesRequest {
                filters: Some(FiltersImage {
                    image_names: Some(vec!["Debian-12-*".into()]),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .remove(0)
            .image_id
    };
    w.template(json!({"tags": {"team": "security"}, "omi_account_ids": ["210987654321"], "source_omi_filter": null, "source_omi": debian, "force_deregister": true}));
    let text = String::from_utf8_lossy(&w.run(&["plan", "t.json"]).stdout).into_owned();
    assert!(text.contains("-/+ build.web.image"), "{text}");
    ok(&w.run(&["apply", "t.json", "--auto-approve"]));
    {
        let (sim, client) = w.client();
        let images = own_images(&client, &sim.default_account().account_id).await;
        assert_eq!(
            images.len(),
            1,
            "the replaced OMI is gone, one new one stands"
        );
        assert_ne!(Value::from(images[0].image_id.clone()), first);
    }

    // The build gone from the template: destroy.
    w.template_named("other", json!({"omi_name": "golden-other"}));
    let text = String::from_utf8_lossy(&w.run(&["plan", "t.json"]).stdout).into_owned();
    assert!(text.contains("- build.web.image"), "{text}");
    assert!(
        text.contains("the build is no longer in the template"),
        "{text}"
    );
}

#[tokio::test]
async fn force_deregister_removes_exactly_the_planned_images() {
    let w = Workspace::new();
    // Another account owns an OMI of the same name: never touched. This
    // account has one made by hand: the plan names it and its snapshot.
    let (other_image, mine, mine_snapshots) = {
        let (sim, client) = w.client();
        let catalogue = client
            .read_all(&ReadImagesRequest::default())
            .await
            .unwrap()
            .remove(0);
        let other = sim.create_account().unwrap();
        let other_client = common::client_for(&sim, Some((other.access_key, other.secret_key)));
        let copy = |c: Client, name: &'static str| {
            let source = catalogue.image_id.clone();
            async move {
                c.call(&CreateImageRequest {
                    source_image_id: Some(source),
                    source_region_name: Some("eu-west-2".into()),
                    image_name: Some(name.into()),
                    ..Default::default()
                })
                .await
                .unwrap()
                .image
            }
        };
        let other_image = copy(other_client, "golden-web").await;
        let mine = copy(client.clone(), "golden-web").await;
        (
            other_image.image_id,
            mine.image_id.clone(),
            mine.snapshot_ids(),
        )
    };

    // Without force_deregister the clash is reported at plan time.
    w.template(json!({}));
    let out = w.run(&["plan", "t.json"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("already exists") && stderr.contains(&mine),
        "{stderr}"
    );
    assert!(!stderr.contains(&other_image), "{stderr}");

    w.template(json!({"force_deregister": true, "force_delete_snapshot": true}));
    let text = String::from_utf8_lossy(&w.run(&["plan", "t.json"]).stdout).into_owned();
    assert!(text.contains(&format!("- {mine}")), "{text}");
    for s in &mine_snapshots {
        assert!(text.contains(&format!("- {s}")), "{text}");
    }
    assert!(!text.contains(&other_image), "{text}");
    ok(&w.run(&["apply", "t.json", "--auto-approve"]));

    let (sim, client) = w.client();
    let images = client
        .read_all(&ReadImagesRequest::default())
        .await
        .unwrap();
    assert!(
        !images.iter().any(|i| i.image_id == mine),
        "the planned OMI is gone"
    );
    let snapshots = snapshots(
        &client,
        FiltersSnapshot {
            account_ids: Some(vec![sim.default_account().account_id]),
            ..Default::default()
        },
    )
    .await;
    assert!(
        !snapshots
            .iter()
            .any(|s| mine_snapshots.contains(&s.snapshot_id))
    );
    let new = images
        .iter()
        .find(|i| i.image_name == "golden-web" && i.image_id != other_image)
        .unwrap();
    assert_ne!(new.image_id, mine);
    let other = sim.create_account().unwrap();
    drop(other);
    // The other account's OMI still exists (seen from the simulator's side).
    let all: Value =
        serde_json::from_slice(&std::fs::read(w.sim_dir().join("sim.json")).unwrap()).unwrap();
    assert!(
        all["images"].get(&other_image).is_some(),
        "another account's OMI is never touched"
    );
}

#[test]
fn a_second_apply_is_refused_while_one_runs() {
    let w = Workspace::new();
    w.template(json!({}));
    // A slow simulator keeps the first apply busy.
    let mut first = w
        .osci()
        .env("OSCI_SIM_LATENCY_SCALE", "1")
        .args(["apply", "t.json", "--auto-approve"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lock = w.path().join("state/t.json.lock");
    for _ in 0..100 {
        if std::fs::read_to_string(&lock).is_ok_and(|s| s.contains("pid")) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = w.run(&["apply", "t.json", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("locked by pid {}", first.id())),
        "{stderr}"
    );
    assert!(stderr.contains("osci apply"), "{stderr}");
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(first.id().to_string())
        .status();
    let _ = first.wait();
}

#[test]
fn corrupt_state_is_refused_and_left_untouched() {
    let w = Workspace::new();
    w.template(json!({}));
    std::fs::create_dir_all(w.path().join("state")).unwrap();
    let path = w.path().join("state/t.json");
    for bad in [
        &b"{\"format_version\": 1, \"lineage\": \"x\", \"ser"[..],
        b"",
        b"not json",
    ] {
        std::fs::write(&path, bad).unwrap();
        for args in [
            &["plan", "t.json"][..],
            &["apply", "t.json", "--auto-approve"],
            &["destroy", "t.json", "--auto-approve"],
        ] {
            let out = w.run(args);
            assert_eq!(out.status.code(), Some(1), "{args:?}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains("is not valid osci state") && stderr.contains("left untouched"),
                "{stderr}"
            );
            assert_eq!(
                std::fs::read(&path).unwrap(),
                bad,
                "{args:?} changed the file"
            );
        }
    }
}

#[test]
fn bad_templates_are_clear_errors() {
    let w = Workspace::new();
    let cases: Vec<(Value, &str)> = vec![
        (json!({"omi_nmae": "x"}), "omi_name"),
        (json!({"omi_name": null}), "omi_name"),
        (
            json!({"temporary_security_group_source_cidr": "10.0.0.0/33"}),
            "temporary_security_group_source_cidr",
        ),
        (json!({"vm_type": 3}), "vm_type"),
        (
            json!({"user_data": "a", "user_data_file": "x.sh"}),
            "user_data",
        ),
    ];
    for (change, key) in cases {
        w.template(change.clone());
        let out = w.run(&["validate", "t.json"]);
        assert_eq!(out.status.code(), Some(1), "{change}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("t.json") && stderr.contains("web") && stderr.contains(key),
            "{change}: {stderr}"
        );
    }
    w.template(json!({}));
    ok(&w.run(&["validate", "t.json"]));
}

/// The same template, state and cloud give the same plan, byte for byte.
#[test]
fn plans_are_deterministic_golden() {
    let w = Workspace::new();
    w.template(json!({"omi_account_ids": ["123456789012"], "tags": {"b": "2", "a": "1"}}));
    let text = |args: &[&str]| {
        let out = w.run(args);
        assert!(
            out.status.code() == Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let plan = text(&["plan", "t.json"]);
    let json_plan = text(&["plan", "t.json", "--json"]);
    assert_eq!(plan, text(&["plan", "t.json"]));
    assert_eq!(json_plan, text(&["plan", "t.json", "--json"]));
    // A state never written has no lineage yet; the source id and digest
    // vary with the simulator's seed, the rest is golden.
    let v: Value = serde_json::from_str(&json_plan).unwrap();
    assert_eq!(v["format_version"], "1.0");
    assert!(v["lineage"].is_null(), "{json_plan}");
    let source = v["builds"][0]["source_omi"].as_str().unwrap().to_string();
    let digest = v["builds"][0]["digest"].as_str().unwrap().to_string();
    let normalise = |s: &str| s.replace(&source, "ami-SOURCE").replace(&digest, "DIGEST");
    golden("plan.txt", &normalise(&plan));
    golden("plan.json", &normalise(&json_plan));
}

/// Compares with `tests/golden/NAME`; `OSCI_BLESS=1` rewrites it.
fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("OSCI_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("no golden file {}: run with OSCI_BLESS=1", path.display()));
    assert_eq!(actual, expected, "differs from {}", path.display());
}

/// Polls the simulator's call counts until `moment` says osci got there;
/// fails if `child` ends first or a minute passes.
async fn wait_for_moment(
    sim: &common::SimProcess,
    child: &mut std::process::Child,
    moment: impl Fn(&Value) -> bool,
) {
    let stats_url = sim.endpoint.replace("/api/v1", "/_sim/stats");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let stats: Value = reqwest::get(&stats_url)
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if moment(&stats) {
            return;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "osci ended before the moment came"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "the moment never came: {stats}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Stops `osci apply` with SIGKILL at a moment the simulator's call counts
/// reveal, then checks that `osci destroy` leaves nothing osci made.
async fn kill_then_destroy(faults: &str, moment: impl Fn(&Value) -> bool) {
    let sim = common::SimProcess::start_with(&["--latency-scale", "0.3", "--faults", faults]);
    let w = Workspace::new();
    w.template(json!({"custom_endpoint_oapi": sim.endpoint, "associate_public_ip_address": true}));
    let mut child = osci_for(&w, &sim)
        .args(["apply", "t.json", "--auto-approve"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_moment(&sim, &mut child, moment).await;
    child.kill().unwrap();
    child.wait().unwrap();

    let out = osci_for(&w, &sim)
        .args(["destroy", "t.json", "--auto-approve"])
        .output()
        .unwrap();
    ok(&out);
    for file in ["state/t.json", "state/t.json.backup"] {
        let bytes = std::fs::read_to_string(w.path().join(file)).unwrap();
        assert!(
            !bytes.contains(&sim.secret_key),
            "the secret key is in {file}"
        );
    }
    assert!(!String::from_utf8_lossy(&out.stderr).contains(&sim.secret_key));
    let client = sim_client(&sim);
    let left = leftovers(&client, &sim.account_id).await;
    assert!(left.is_empty(), "left behind after destroy: {left:?}");
    assert_eq!(
        client
            .read_all(&ReadImagesRequest::default())
            .await
            .unwrap()
            .len(),
        4,
        "catalogue untouched"
    );
}

fn calls(stats: &Value, op: &str) -> u64 {
    stats["calls"][op].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_right_after_create_vms() {
    // The first CreateVms runs but its answer is lost; the retry is slow:
    // osci dies knowing only the ClientToken it chose.
    kill_then_destroy("drop@CreateVms*1,slow:4000@CreateVms", |s| {
        calls(s, "CreateVms") >= 2
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_the_image_wait() {
    kill_then_destroy("", |s| {
        calls(s, "CreateImage") >= 1 && calls(s, "ReadImages") >= 2
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_teardown() {
    kill_then_destroy("", |s| calls(s, "DeleteVms") >= 1).await;
}

/// The platform fails the new image: by default everything the build made
/// goes, the half-made OMI and its snapshots included.
#[tokio::test]
async fn a_failed_image_is_cleaned_up_with_everything_the_build_made() {
    let w = Workspace::new();
    w.template(
        json!({"associate_public_ip_address": true, "launch_block_device_mappings": [
            {"device_name": "/dev/sda1", "volume_size": 12},
            {"device_name": "/dev/sdb", "volume_size": 5, "delete_on_vm_deletion": false}
        ]}),
    );
    let out = w.run_with_faults("fail@CreateImage", &["apply", "t.json", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("reached the failure state failed"),
        "{stderr}"
    );
    assert!(w.addresses().is_empty(), "{:?}", w.addresses());
    let (sim, client) = w.client();
    let left = leftovers(&client, &sim.default_account().account_id).await;
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// `--on-error abort` keeps what the failed build made, for inspection;
/// `destroy --orphans-only` removes exactly that, and leaves the OMI another
/// build made in the same run.
#[tokio::test]
async fn on_error_abort_keeps_the_failed_build_for_destroy_orphans_only() {
    let w = Workspace::new();
    let builder = |name: &str| {
        json!({
            "type": "outscale-bsu",
            "name": name,
            "custom_endpoint_oapi": format!("sim://{}", w.sim_dir().display()),
            "vm_type": "tinav5.c2r4p2",
            "source_omi_filter": {"filters": {"image-name": "Ubuntu-22.04-*"}, "owners": ["Outscale"], "most_recent": true},
            "communicator": "none",
            "omi_name": format!("golden-{name}"),
        })
    };
    std::fs::write(
        w.path().join("t.json"),
        serde_json::to_vec(&json!({"builders": [builder("a"), builder("b")]})).unwrap(),
    )
    .unwrap();
    // One build at a time: "a" gets the one failing CreateImage.
    let out = w.run_with_faults(
        "fail@CreateImage*1",
        &[
            "apply",
            "t.json",
            "--auto-approve",
            "--on-error",
            "abort",
            "--parallelism",
            "1",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kept = w.addresses();
    for address in [
        "build.a.vm",
        "build.a.security_group",
        "build.a.image",
        "build.b.image",
    ] {
        assert!(
            kept.contains(&address.to_string()),
            "{address} not in {kept:?}"
        );
    }
    assert!(!kept.contains(&"build.b.vm".to_string()), "{kept:?}");
    let status = |address: &str| {
        w.state()["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["address"] == address)
            .unwrap()["status"]
            .clone()
    };
    assert_eq!(status("build.a.image"), "tainted");
    assert_eq!(status("build.b.image"), "created");
    {
        let (_sim, client) = w.client();
        let vms: Vec<_> = client.read_all(&ReadVmsRequest::default()).await.unwrap();
        assert!(
            vms.iter().any(|v| v.state == "stopped"),
            "the failed build's VM is kept: {vms:?}"
        );
    }
    // The next plan removes the leftovers and builds "a" again.
    let text = String::from_utf8_lossy(&w.run(&["plan", "t.json"]).stdout).into_owned();
    assert!(text.contains("- build.a.vm"), "{text}");
    assert!(!text.contains("build.b."), "{text}");

    let good = w.state()["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["address"] == "build.b.image")
        .unwrap()["id"]
        .clone();
    ok(&w.run(&["destroy", "t.json", "--orphans-only", "--auto-approve"]));
    assert!(
        w.addresses().iter().all(|a| a.starts_with("build.b.")),
        "{:?}",
        w.addresses()
    );
    {
        let (sim, client) = w.client();
        let left = leftovers(&client, &sim.default_account().account_id).await;
        let images = own_images(&client, &sim.default_account().account_id).await;
        assert_eq!(images.len(), 1);
        assert_eq!(Value::from(images[0].image_id.clone()), good);
        assert_eq!(left.len(), 2, "build b's OMI and snapshot only: {left:?}");
    }
    ok(&w.run(&["destroy", "t.json", "--auto-approve"]));
    let (sim, client) = w.client();
    assert!(
        leftovers(&client, &sim.default_account().account_id)
            .await
            .is_empty()
    );
}

/// `plan -out` then `apply PLANFILE` applies without asking; a saved plan
/// made before the state changed is refused.
#[test]
fn saved_plans_apply_and_stale_ones_are_refused() {
    let w = Workspace::new();
    w.template(json!({}));
    ok(&w.run(&["plan", "t.json", "-out", "first.plan"]));
    // stdin is not a terminal: only a saved plan applies without --auto-approve.
    ok(&w.run(&["apply", "first.plan"]));
    assert!(w.addresses().contains(&"build.web.image".to_string()));

    w.template(json!({"tags": {"team": "one"}}));
    ok(&w.run(&["plan", "t.json", "-out", "second.plan"]));
    w.template(json!({"tags": {"team": "two"}}));
    ok(&w.run(&["apply", "t.json", "--auto-approve"]));
    let before = std::fs::read(w.path().join("state/t.json")).unwrap();
    let out = w.run(&["apply", "second.plan"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("stale"), "{stderr}");
    assert_eq!(
        std::fs::read(w.path().join("state/t.json")).unwrap(),
        before,
        "a refused plan writes nothing"
    );
}

/// `state list`, `show` and `rm`: what a user inspects and edits.
#[test]
fn state_list_show_and_rm() {
    let w = Workspace::new();
    w.template(json!({}));
    ok(&w.run(&["apply", "t.json", "--auto-approve"]));
    let out = w.run(&["state", "list", "t.json"]);
    ok(&out);
    let list = String::from_utf8_lossy(&out.stdout).into_owned();
    let image_line = list
        .lines()
        .find(|l| l.starts_with("build.web.image\t"))
        .unwrap_or_else(|| panic!("{list}"));
    assert!(
        image_line.contains("\tami-") && image_line.ends_with("\tcreated"),
        "{image_line}"
    );

    let out = w.run(&["state", "show", "build.web.image", "t.json"]);
    ok(&out);
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["kind"], "image");
    assert_eq!(shown["attributes"]["name"], "golden-web");

    let out = w.run(&["state", "show", "build.web.nothing", "t.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no resource at build.web.nothing"));

    ok(&w.run(&["state", "rm", "build.web.tags", "t.json"]));
    assert!(!w.addresses().contains(&"build.web.tags".to_string()));
    let text = String::from_utf8_lossy(&w.run(&["plan", "t.json"]).stdout).into_owned();
    assert!(text.contains("+ build.web.tags"), "{text}");
    ok(&w.run(&["apply", "t.json", "--auto-approve"]));
    assert!(w.addresses().contains(&"build.web.tags".to_string()));
    assert_eq!(
        w.run(&["plan", "t.json", "--detailed-exitcode"])
            .status
            .code(),
        Some(0)
    );
}

/// The first SIGTERM stops the build and cleans up what it made; the state
/// keeps nothing ephemeral.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_cleans_up_what_the_build_made() {
    let sim = common::SimProcess::start_with(&["--latency-scale", "0.5"]);
    let w = Workspace::new();
    // A kept volume, which osci records only once the VM runs: the
    // interrupt comes before, so destroy must find it through the VM.
    w.template(
        json!({"custom_endpoint_oapi": sim.endpoint, "launch_block_device_mappings": [
            {"device_name": "/dev/sda1", "volume_size": 10},
            {"device_name": "/dev/sdb", "volume_size": 4, "delete_on_vm_deletion": false}
        ]}),
    );
    let mut child = osci_for(&w, &sim)
        .args(["apply", "t.json", "--auto-approve"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_moment(&sim, &mut child, |s| calls(s, "CreateVms") >= 1).await;
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Interrupted"), "{stderr}");
    // The wait for the VM ends at once rather than running its course.
    assert!(
        stderr.contains("interrupted while waiting for build.web.vm to be running"),
        "{stderr}"
    );
    assert!(w.addresses().is_empty(), "{:?}", w.addresses());
    let client = sim_client(&sim);
    let left = leftovers(&client, &sim.account_id).await;
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// `net_filter`, `subnet_filter` (most_free) and `security_group_filter`
/// choose where the VM runs: inside the chosen Net only, with the matched
/// group and no temporary one.
#[tokio::test]
async fn network_filters_place_the_vm() {
    let w = Workspace::new();
    let (subnet, group) = {
        let (_sim, client) = w.client();
        let make_net = |range: &str| CreateNetRequest {
            ip_range: range.into(),
            ..Default::default()
        };
        // A decoy Net whose subnet has more free addresses: the filter on the
        // Net must keep the subnet search inside the chosen one.
        let decoy = client.call(&make_net("10.1.0.0/16")).await.unwrap().net;
        let net = client.call(&make_net("10.0.0.0/16")).await.unwrap().net;
        client
            .call(&CreateTagsRequest {
                resource_ids: vec![net.net_id.clone()],
                tags: vec![ResourceTag::new("team", "images")],
                ..Default::default()
            })
            .await
            .unwrap();
        let subnet = |net_id: &str, range: &str| CreateSubnetRequest {
            net_id: net_id.into(),
            ip_range: range.into(),
            ..Default::default()
        };
        client
            .call(&subnet(&decoy.net_id, "10.1.0.0/16"))
            .await
            .unwrap();
        client
            .call(&subnet(&net.net_id, "10.0.1.0/28"))
            .await
            .unwrap();
        let big = client
            .call(&subnet(&net.net_id, "10.0.2.0/24"))
            .await
            .unwrap()
            .subnet;
        let group = client
            .call(&CreateSecurityGroupRequest {
                security_group_name: "builders".into(),
                description: "for image builds".into(),
                net_id: Some(net.net_id.clone()),
                ..Default::default()
            })
            .await
            .unwrap()
            .security_group;
        (big.subnet_id, group.security_group_id)
    };
    w.template(json!({
        "net_filter": {"filters": {"tag-key": "team"}},
        "subnet_filter": {"filters": {"states": "available"}, "most_free": true},
        "security_group_filter": {"filters": {"security_group_names": "builders"}},
    }));
    let text = String::from_utf8_lossy(&w.run(&["plan", "t.json"]).stdout).into_owned();
    assert!(
        !text.contains("build.web.security_group"),
        "no temporary group: {text}"
    );
    ok(&w.run(&["apply", "t.json", "--auto-approve"]));
    let (_sim, client) = w.client();
    // The build VM; not the host, the VM this machine is.
    let vms: Vec<Vm> = client
        .read_all(&ReadVmsRequest::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|v| v.private_ip.as_deref() != Some("127.0.0.1"))
        .collect();
    assert_eq!(vms.len(), 1, "{vms:?}");
    assert_eq!(vms[0].subnet_id.as_deref(), Some(subnet.as_str()));
    let groups: Vec<_> = vms[0]
        .security_groups
        .iter()
        .map(|g| g.security_group_id.clone())
        .collect();
    assert_eq!(groups, vec![group]);

    // A filter that matches nothing is a plan-time error naming the key.
    w.template(json!({"net_filter": {"filters": {"tag-key": "nobody"}}}));
    let out = w.run(&["plan", "t.json"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("net_filter") && stderr.contains("no Net matches"),
        "{stderr}"
    );
}

/// `omi_block_device_mappings`: the OMI is the captured VM with the mappings
/// laid over it (the plugin registered from the mappings alone), the
/// capture image does not outlive the apply, and a snapshot the template
/// names is used, never recorded or deleted.
#[tokio::test]
async fn omi_block_device_mappings_shape_the_captured_omi() {
    let w = Workspace::new();
    let (data_volume, data_snapshot) = {
        let (_sim, client) = w.client();
        user_snapshot(&client, 3).await
    };
    let mappings = |extra: Value| {
        json!({
            "launch_block_device_mappings": [
                {"device_name": "/dev/sda1", "volume_size": 12},
                {"device_name": "/dev/sdb", "volume_size": 5},
                {"device_name": "/dev/sdd", "volume_size": 3}
            ],
            "root_device_name": "/dev/sda1",
            "omi_block_device_mappings": [
                {"device_name": "/dev/sdb", "volume_size": 8, "volume_type": "gp2"},
                {"device_name": "/dev/sdc", "snapshot_id": data_snapshot},
                extra
            ]
        })
    };
    // A new device with nothing to capture and no snapshot: a plan error.
    w.template(mappings(
        json!({"device_name": "/dev/sde", "volume_size": 4}),
    ));
    let out = w.run(&["plan", "t.json"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("omi_block_device_mappings[2] (/dev/sde)"),
        "{stderr}"
    );

    // /dev/sdd is captured, then left out of the OMI: its snapshot must go.
    w.template(mappings(
        json!({"device_name": "/dev/sdd", "no_device": true}),
    ));
    ok(&w.run(&["apply", "t.json", "--auto-approve"]));
    let (sim, client) = w.client();
    let account = sim.default_account().account_id;
    let images = own_images(&client, &account).await;
    assert_eq!(images.len(), 1, "the capture image is gone: {images:?}");
    let omi = &images[0];
    let device = |name: &str| {
        omi.block_device_mappings
            .iter()
            .find(|m| m.device_name.as_deref() == Some(name))
            .and_then(|m| m.bsu.clone())
            .unwrap_or_else(|| panic!("no {name} in {omi:?}"))
    };
    assert_eq!(omi.root_device_name.as_deref(), Some("/dev/sda1"));
    assert_eq!(device("/dev/sda1").volume_size, Some(12));
    assert_eq!(device("/dev/sdb").volume_size, Some(8));
    assert_eq!(device("/dev/sdb").volume_type.as_deref(), Some("gp2"));
    assert_eq!(
        device("/dev/sdc").snapshot_id.as_deref(),
        Some(data_snapshot.as_str())
    );
    assert!(
        !omi.block_device_mappings
            .iter()
            .any(|m| m.device_name.as_deref() == Some("/dev/sdd"))
    );
    // The user's snapshot is used as it is: neither tagged nor shared.
    let data = snapshots(
        &client,
        FiltersSnapshot {
            snapshot_ids: Some(vec![data_snapshot.clone()]),
            ..Default::default()
        },
    )
    .await
    .remove(0);
    assert!(data.tags.is_empty(), "{:?}", data.tags);
    let addresses = w.addresses();
    assert!(
        addresses.contains(&"build.web.snapshot[\"/dev/sdb\"]".to_string()),
        "{addresses:?}"
    );
    assert!(
        !addresses
            .iter()
            .any(|a| a.contains("sdc") || a.contains("capture")),
        "{addresses:?}"
    );
    assert_eq!(
        w.run(&["plan", "t.json", "--detailed-exitcode"])
            .status
            .code(),
        Some(0)
    );

    drop((sim, client));
    ok(&w.run(&["destroy", "t.json", "--auto-approve"]));
    let (sim, client) = w.client();
    let mut left = leftovers(&client, &sim.default_account().account_id).await;
    left.sort();
    let mut expected = vec![data_volume, data_snapshot];
    expected.sort();
    assert_eq!(left, expected, "only what the user made is left");
}

/// One state serves one account and region: builds that disagree on where
/// they go are refused before anything is read or made.
#[test]
fn builds_with_different_regions_are_refused() {
    let w = Workspace::new();
    let builder = |name: &str, region: &str| {
        json!({
            "type": "outscale-bsu",
            "name": name,
            "region": region,
            "custom_endpoint_oapi": format!("sim://{}", w.sim_dir().display()),
            "vm_type": "tinav5.c2r4p2",
            "source_omi": "ami-00000000",
            "communicator": "none",
            "omi_name": format!("golden-{name}"),
        })
    };
    std::fs::write(
        w.path().join("t.json"),
        serde_json::to_vec(
            &json!({"builders": [builder("a", "eu-west-2"), builder("b", "us-east-2")]}),
        )
        .unwrap(),
    )
    .unwrap();
    for command in ["plan", "apply", "destroy"] {
        let out =
            w.run(&[command, "t.json", "--auto-approve"][..if command == "plan" { 2 } else { 3 }]);
        assert_eq!(out.status.code(), Some(1), "{command}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("builds \"a\" and \"b\" use different access settings"),
            "{command}: {stderr}"
        );
    }
    assert!(
        !w.path().join("state/t.json").exists(),
        "nothing was written"
    );
}

/// An image in the state whose snapshots are not (a run killed between
/// CreateImage and recording them): destroy records its snapshots first,
/// then deletes them with it; a snapshot the image was registered from,
/// older than the image, is not the image's and stays.
#[tokio::test]
async fn destroy_finds_the_snapshots_an_image_was_made_with() {
    let w = Workspace::new();
    w.template(json!({}));
    let (captured, registered, older_snapshot) = {
        let (_sim, client) = w.client();
        let source = client
            .read_all(&ReadImagesRequest::default())
            .await
            .unwrap()
            .remove(0);
        let vm = client
            .call(&CreateVmsRequest {
                image_id: source.image_id.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .vms
            .remove(0);
        let (_, older) = user_snapshot(&client, 2).await;
        // Latency 0: the VM is running by the next call.
        let captured = client
            .call(&CreateImageRequest {
                image_name: Some("captured".into()),
                vm_id: Some(vm.vm_id),
                ..Default::default()
            })
            .await
            .unwrap()
            .image;
        let registered = client
            .call(&CreateImageRequest {
                image_name: Some("registered".into()),
                root_device_name: Some("/dev/sda1".into()),
                block_device_mappings: Some(vec![BlockDeviceMappingImage {
                    device_name: Some("/dev/sda1".into()),
                    bsu: Some(BsuToCreate {
                        snapshot_id: Some(older.clone()),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]),
                ..Default::default()
            })
            .await
            .unwrap()
            .image;
        (captured, registered, older)
    };
    let entry = |build: &str, id: &str| {
        json!({"address": format!("build.{build}.image"), "build": build, "kind": "image", "id": id,
               "status": "tainted", "ephemeral": false, "attributes": {}, "dependencies": []})
    };
    std::fs::create_dir_all(w.path().join("state")).unwrap();
    std::fs::write(
        w.path().join("state/t.json"),
        serde_json::to_vec(&json!({
            "format_version": 1, "lineage": "7dc86082-3d28-438b-b919-09219fd1a2bb", "serial": 1,
            "osci_version": "0.1.0",
            "resources": [entry("old", &registered.image_id), entry("web", &captured.image_id)],
        }))
        .unwrap(),
    )
    .unwrap();
    let out = w.run(&["destroy", "t.json", "--auto-approve"]);
    ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let made = captured.snapshot_ids();
    assert_eq!(made.len(), 1);
    assert!(
        stderr.contains(&format!("destroy done ({})", made[0])),
        "{stderr}"
    );
    let (sim, client) = w.client();
    let snapshots: Vec<String> = snapshots(
        &client,
        FiltersSnapshot {
            account_ids: Some(vec![sim.default_account().account_id]),
            ..Default::default()
        },
    )
    .await
    .into_iter()
    .map(|s| s.snapshot_id)
    .collect();
    assert_eq!(
        snapshots,
        vec![older_snapshot],
        "only the older snapshot stays"
    );
    assert!(w.addresses().is_empty());
}

/// The OMI deleted outside osci: the plan says so and builds it again; the
/// snapshots the old OMI left are removed, not lost track of.
#[tokio::test]
async fn an_omi_deleted_outside_osci_is_rebuilt() {
    let w = Workspace::new();
    w.template(json!({}));
    ok(&w.run(&["apply", "t.json", "--auto-approve"]));
    let old_snapshot = {
        let (sim, client) = w.client();
        let image = own_images(&client, &sim.default_account().account_id)
            .await
            .remove(0);
        client
            .call(&DeleteImageRequest {
                image_id: image.image_id.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        image.snapshot_ids().remove(0)
    };
    let out = w.run(&["plan", "t.json", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("+ build.web.image") && text.contains("deleted outside osci"),
        "{text}"
    );
    ok(&w.run(&["apply", "t.json", "--auto-approve"]));
    assert_eq!(
        w.run(&["plan", "t.json", "--detailed-exitcode"])
            .status
            .code(),
        Some(0)
    );
    let (sim, client) = w.client();
    let account = sim.default_account().account_id;
    assert_eq!(own_images(&client, &account).await.len(), 1);
    let left = leftovers(&client, &account).await;
    assert!(
        !left.contains(&old_snapshot),
        "the old OMI's snapshot is gone: {left:?}"
    );
    assert_eq!(left.len(), 2, "the new OMI and its snapshot: {left:?}");

    // A tag changed outside osci is drift too: put back in place.
    let image = own_images(&client, &account).await.remove(0);
    client
        .call(&CreateTagsRequest {
            resource_ids: vec![image.image_id.clone()],
            tags: vec![ResourceTag::new("team", "someone-else")],
            ..Default::default()
        })
        .await
        .unwrap();
    drop((sim, client));
    let text = String::from_utf8_lossy(&w.run(&["plan", "t.json"]).stdout).into_owned();
    assert!(text.contains("~ build.web.tags"), "{text}");
    assert!(text.contains("someone-else"), "{text}");
    ok(&w.run(&["apply", "t.json", "--auto-approve"]));
    let (_sim, client) = w.client();
    let image = own_images(&client, &account).await.remove(0);
    assert!(
        image
            .tags
            .iter()
            .any(|t| t.key == "team" && t.value == "platform"),
        "{:?}",
        image.tags
    );
}

/// What OUTSCALE cannot do is refused at plan time, naming the key; what
/// the plugin left inert (`omi_groups`, `omi_product_codes`, `omi_regions`
/// of the build's own region) works.
#[tokio::test]
async fn options_osci_cannot_honour_are_refused_and_inert_ones_work() {
    let w = Workspace::new();
    for (change, key) in [
        (json!({"omi_regions": ["us-east-2"]}), "omi_regions"),
        (json!({"iam_vm_profile": "builder"}), "iam_vm_profile"),
        (
            json!({"block_duration_minutes": 60}),
            "block_duration_minutes",
        ),
    ] {
        w.template(change);
        let out = w.run(&["plan", "t.json"]);
        assert_eq!(out.status.code(), Some(1), "{key}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("build \"web\"") && stderr.contains(key),
            "{stderr}"
        );
    }
    w.template(json!({
        "omi_regions": ["eu-west-2"],
        "omi_groups": ["all"],
        "omi_product_codes": ["pc-42"],
    }));
    ok(&w.run(&["apply", "t.json", "--auto-approve"]));
    let (sim, client) = w.client();
    let image = own_images(&client, &sim.default_account().account_id)
        .await
        .remove(0);
    assert!(image.permissions_to_launch.global_permission, "{image:?}");
    assert!(
        image.product_codes.contains(&"pc-42".to_string()),
        "{image:?}"
    );

    // A new omi_name cannot be set on the OMI: it is a new OMI.
    w.template(json!({
        "omi_regions": ["eu-west-2"],
        "omi_groups": ["all"],
        "omi_product_codes": ["pc-42"],
        "omi_name": "golden-web-2",
    }));
    let text = String::from_utf8_lossy(&w.run(&["plan", "t.json"]).stdout).into_owned();
    assert!(text.contains("-/+ build.web.image"), "{text}");
    assert!(
        text.contains("\"golden-web\" -> \"golden-web-2\""),
        "{text}"
    );
    // Without force_deregister the old OMI stays, no longer osci's: its
    // ownership tags are gone and destroy leaves it.
    drop((sim, client));
    let stderr = ok(&w.run(&["apply", "t.json", "--auto-approve"]));
    assert!(
        stderr.contains(&format!("the previous OMI {} is kept", image.image_id)),
        "{stderr}"
    );
    ok(&w.run(&["destroy", "t.json", "--auto-approve"]));
    let (sim, client) = w.client();
    let images = own_images(&client, &sim.default_account().account_id).await;
    assert_eq!(images.len(), 1, "{images:?}");
    assert_eq!(images[0].image_id, image.image_id);
    assert!(
        !images[0].tags.iter().any(|t| t.key.starts_with("osci:")),
        "{:?}",
        images[0].tags
    );
    let snapshot = images[0].snapshot_ids().remove(0);
    let snapshots = snapshots(
        &client,
        FiltersSnapshot {
            snapshot_ids: Some(vec![snapshot]),
            ..Default::default()
        },
    )
    .await;
    assert!(
        !snapshots[0].tags.iter().any(|t| t.key.starts_with("osci:")),
        "{:?}",
        snapshots[0].tags
    );
}

/// `apply --json` is a stream of JSON lines: the plan, then an event per
/// step, then the artifact.
#[test]
fn apply_json_is_a_stream_of_events() {
    let w = Workspace::new();
    w.template(json!({}));
    let out = w.run(&["apply", "t.json", "--auto-approve", "--json"]);
    ok(&out);
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines[0]["type"], "plan");
    assert_eq!(lines[0]["plan"]["format_version"], "1.0");
    let kinds: Vec<&str> = lines.iter().map(|l| l["type"].as_str().unwrap()).collect();
    for kind in ["start", "wait", "done"] {
        assert!(kinds.contains(&kind), "{kinds:?}");
    }
    let artifact = lines.last().unwrap();
    assert_eq!(artifact["type"], "artifact");
    assert!(
        artifact["omi"].as_str().unwrap().starts_with("ami-"),
        "{artifact}"
    );
    let created = lines
        .iter()
        .find(|l| l["type"] == "done" && l["address"] == "build.web.image")
        .unwrap();
    assert_eq!(created["id"], artifact["omi"]);
}
