//! How a build's source OMI is found: `source_omi_filter` (and the HCL2
//! `outscale-omi` data source, which becomes one) with every ReadImages
//! filter, `owners` (ids, aliases, `self`) and `most_recent`; the plan
//! shows what it resolved to, and a newer match replaces the OMI.

mod common;

use common::workspace::*;
use osci::oapi::model::*;
use serde_json::json;

/// An OMI of the account, made through the API from the catalogue's root
/// snapshot copy: a second "Ubuntu" image, newer than the catalogue's.
async fn own_image(client: &osci::oapi::Client, name: &str) -> String {
    let catalogue = all(client, ReadImagesRequest::default()).await;
    let ubuntu = catalogue
        .iter()
        .filter(|i| i.image_name.starts_with("Ubuntu"))
        .max_by(|a, b| a.creation_date.cmp(&b.creation_date))
        .unwrap();
    client
        .call(&CreateImageRequest {
            image_name: Some(name.into()),
            source_image_id: Some(ubuntu.image_id.clone()),
            source_region_name: Some("eu-west-2".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .image
        .image_id
}

fn plan_text(w: &Workspace) -> (bool, String) {
    let out = w.run(&["plan", "t.json"]);
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test]
async fn filters_owners_and_most_recent_choose_the_source() {
    let w = Workspace::new();
    // most_recent: the newest catalogue Ubuntu (2025.06.10), shown as read.
    w.template(json!({}));
    let (ok_plan, text) = plan_text(&w);
    assert!(ok_plan, "{text}");
    assert!(text.contains("<= build.web.source (ami-"), "{text}");
    assert!(
        text.contains("name = \"Ubuntu-22.04-2025.06.10-0\""),
        "{text}"
    );

    // Two matches without most_recent: an error naming both.
    w.template(json!({"source_omi_filter": {"filters": {"image-name": "Ubuntu-22.04-*"}, "owners": ["Outscale"]}}));
    let (ok_plan, text) = plan_text(&w);
    assert!(!ok_plan);
    assert!(text.contains("2 source OMIs match"), "{text}");
    assert!(
        text.contains("Ubuntu-22.04-2025.01.15-0") && text.contains("Ubuntu-22.04-2025.06.10-0"),
        "{text}"
    );

    // Filters beyond the plugin's seven: the root device's volume size and
    // the boot mode.
    w.template(json!({"source_omi_filter": {
        "filters": {"image-name": "Debian-*", "block-device-mapping-volume-size": "10", "boot-mode": "legacy"},
        "owners": ["Outscale"]}}));
    let (ok_plan, text) = plan_text(&w);
    assert!(ok_plan, "{text}");
    assert!(text.contains("Debian-12-2025.05.20-0"), "{text}");
    w.template(json!({"source_omi_filter": {
        "filters": {"image-name": "Debian-*", "block-device-mapping-volume-size": "11"},
        "owners": ["Outscale"]}}));
    let (ok_plan, text) = plan_text(&w);
    assert!(
        !ok_plan && text.contains("no available source OMI matches"),
        "{text}"
    );

    // owners = ["self"]: only the account's own images.
    let (_sim, client) = w.client();
    let own = own_image(&client, "Ubuntu-22.04-golden-base").await;
    drop(client);
    w.template(json!({"source_omi_filter": {"filters": {"image-name": "Ubuntu-22.04-*"}, "owners": ["self"]}}));
    let (ok_plan, text) = plan_text(&w);
    assert!(ok_plan, "{text}");
    assert!(
        text.contains(&format!("<= build.web.source ({own})")),
        "{text}"
    );

    // Owners by id and by alias: an image of any of them.
    w.template(json!({"source_omi_filter": {"filters": {"image-name": "Ubuntu-22.04-*"}, "owners": ["self", "Outscale"]}}));
    let (ok_plan, text) = plan_text(&w);
    assert!(!ok_plan && text.contains("3 source OMIs match"), "{text}");
}

#[tokio::test]
async fn a_newer_source_under_most_recent_replaces_the_omi() {
    let w = Workspace::new();
    w.template(json!({"source_omi_filter": {"filters": {"image-name": "base-*"}, "owners": ["self"], "most_recent": true},
                      "force_deregister": true}));
    let (_sim, client) = w.client();
    let first = own_image(&client, "base-1").await;
    drop(client);
    // Images become available with time: wait for the copy.
    for _ in 0..50 {
        if plan_text(&w).0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    ok(&w.run(&["apply", "t.json", "--auto-approve"]));
    let (_, text) = plan_text(&w);
    assert!(text.contains("No changes."), "{text}");
    // A newer base appears: the next plan rebuilds from it.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (_sim, client) = w.client();
    let second = own_image(&client, "base-2").await;
    drop(client);
    let mut text = String::new();
    for _ in 0..50 {
        text = plan_text(&w).1;
        if text.contains(&second) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        text.contains(&format!("<= build.web.source ({second})")),
        "{text}"
    );
    assert!(text.contains("-/+ build.web.image"), "{text}");
    assert_ne!(first, second);
}

#[test]
fn the_data_sources_outputs_fill_the_builds_fields() {
    let w = Workspace::new();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data-source.pkr.hcl");
    let text = std::fs::read_to_string(example).unwrap().replace(
        "sim://state/sim",
        &format!("sim://{}", w.sim_dir().display()),
    );
    std::fs::write(w.path().join("t.pkr.hcl"), text).unwrap();
    let out = w.run(&["plan", "t.pkr.hcl"]);
    let plan = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        plan.contains("description = \"Built by osci from Debian-12-2025.05.20-0 (Outscale)\""),
        "{plan}"
    );
    assert!(plan.contains("\"source_created\":\"2025-05-20"), "{plan}");
    assert!(plan.contains("\"source\":\"ami-"), "{plan}");
}
