//! Post-processors as Packer users chain them: `manifest` for the tools
//! that come after, `shell-local` for whatever else; the state records
//! that they ran, so a failed run, a new OMI or new options run them again.

mod common;

use std::process::Command;

use common::workspace::*;
use serde_json::{Value, json};

/// Writes `t.json`: builds `a` and `b`, with these post-processors.
fn template(w: &Workspace, post_processors: Value) {
    let path = w.write_template(vec![w.builder("a"), w.builder("b")], json!([]));
    let mut t: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    t["post-processors"] = post_processors;
    std::fs::write(&path, serde_json::to_vec_pretty(&t).unwrap()).unwrap();
}

fn image_id(w: &Workspace, build: &str) -> String {
    w.state()["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["build"] == build && r["kind"] == "image")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `jq`, as a user's next step would run it on the manifest.
fn jq(w: &Workspace, filter: &str, file: &str) -> String {
    let out = Command::new("jq")
        .args(["-r", filter, file])
        .current_dir(w.path())
        .output()
        .expect("jq is installed (CI installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_manifest_holds_the_omis_jq_reads() {
    let w = Workspace::new();
    template(
        &w,
        json!([
            {"type": "manifest", "custom_data": {"source": "{{ build `SourceOMI` }}"}},
            [{"type": "shell-local", "inline": ["echo \"post $PACKER_BUILD_NAME {{ build `ArtifactId` }}\" >> post.log"]}],
            {"type": "manifest", "output": "out/b.json", "only": ["b"], "strip_time": true},
        ]),
    );
    let out = w.run(&["build", "t.json"]);
    ok(&out);
    let (a, b) = (image_id(&w, "a"), image_id(&w, "b"));
    let mut ids: Vec<String> = jq(&w, ".builds[].artifact_id", "packer-manifest.json")
        .lines()
        .map(String::from)
        .collect();
    ids.sort();
    let mut expected = vec![format!("eu-west-2:{a}"), format!("eu-west-2:{b}")];
    expected.sort();
    assert_eq!(ids, expected);
    assert_eq!(
        jq(
            &w,
            ".builds[0].builder_type, (.builds | map(.packer_run_uuid) | unique | length), (.last_run_uuid == .builds[0].packer_run_uuid)",
            "packer-manifest.json"
        ),
        "outscale-bsu\n1\ntrue\n"
    );
    assert!(jq(&w, ".builds[0].custom_data.source", "packer-manifest.json").starts_with("ami-"));
    assert_eq!(
        jq(
            &w,
            ".builds[] | [.name, .artifact_id, (.build_time | type)] | @tsv",
            "out/b.json"
        ),
        format!("b\teu-west-2:{b}\tnull\n")
    );
    let log = std::fs::read_to_string(w.path().join("post.log")).unwrap();
    assert!(log.contains(&format!("post a eu-west-2:{a}")), "{log}");
    assert!(log.contains(&format!("post b eu-west-2:{b}")), "{log}");

    // Nothing changed: nothing runs, the manifest keeps two builds.
    let plan = String::from_utf8(w.run(&["plan", "t.json"]).stdout).unwrap();
    assert!(plan.contains("No changes"), "{plan}");
}

#[test]
fn a_failed_post_processor_runs_again_and_only_it() {
    let w = Workspace::new();
    std::fs::write(w.path().join("gate"), "closed").unwrap();
    template(
        &w,
        json!([{"type": "shell-local", "inline": ["grep -q open gate", "echo ran >> post.log"]}]),
    );
    let out = w.run(&["build", "t.json"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("post-processors[0] (shell-local)"), "{err}");
    // The OMIs are complete and kept; only the post-processing is to do.
    let a = image_id(&w, "a");
    let plan = String::from_utf8(w.run(&["plan", "t.json"]).stdout).unwrap();
    assert!(plan.contains("+ build.a.post_process"), "{plan}");
    assert!(!plan.contains("build.a.image"), "{plan}");
    std::fs::write(w.path().join("gate"), "open").unwrap();
    ok(&w.run(&["build", "t.json"]));
    assert_eq!(image_id(&w, "a"), a);
    let log = std::fs::read_to_string(w.path().join("post.log")).unwrap();
    assert_eq!(log.lines().count(), 2, "{log}");

    // New options: the post-processors run again, on the same OMIs.
    template(
        &w,
        json!([{"type": "shell-local", "inline": ["echo again >> post.log"]}]),
    );
    let plan = String::from_utf8(w.run(&["plan", "t.json"]).stdout).unwrap();
    assert!(plan.contains("-/+ build.a.post_process"), "{plan}");
    assert!(!plan.contains("build.a.image"), "{plan}");
    ok(&w.run(&["build", "t.json"]));
    assert_eq!(image_id(&w, "a"), a);
    let log = std::fs::read_to_string(w.path().join("post.log")).unwrap();
    assert_eq!(log.lines().filter(|l| *l == "again").count(), 2, "{log}");
}

#[test]
fn post_processors_osci_lacks_are_refused_offline() {
    let w = Workspace::new();
    for (post, says) in [
        (
            json!(["amazon-import"]),
            "no `amazon-import` post-processor",
        ),
        (
            json!([{"type": "manifest", "outptu": "m.json"}]),
            "unknown field `outptu`",
        ),
        (
            json!([{"type": "manifest", "only": ["c"]}]),
            "no build is named `c`",
        ),
        (
            json!([{"type": "manifest", "override": {"a": {}}}]),
            "override",
        ),
        (json!({"type": "manifest"}), "must be an array"),
    ] {
        template(&w, post.clone());
        let out = w.run(&["validate", "t.json"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{post}: {err}");
        assert!(
            err.contains(says) && err.contains("t.json"),
            "{post}: {err}"
        );
    }
    let path = w.template(json!({"skip_create_omi": true}));
    let mut t: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    t["post-processors"] = json!(["manifest"]);
    std::fs::write(w.path().join("t.json"), t.to_string()).unwrap();
    let out = w.run(&["validate", "t.json"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("skip_create_omi"), "{err}");
}
