//! Packer's command line, as its users type it: `osci build`, single-dash
//! long options, `-only`/`-except`, `-force`, `-on-error`,
//! `-parallel-builds`, `-color=false` and `-timestamp-ui`.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::Stdio;

use common::workspace::*;
use serde_json::{Value, json};

/// Two builds, `a` and `b`, and a third, `c`, against one simulator.
fn three_builds(w: &Workspace) {
    w.write_template(
        vec![w.builder("a"), w.builder("b"), w.builder("c")],
        json!([]),
    );
}

/// The state entries of one build, as written.
fn entries(w: &Workspace, build: &str) -> Vec<Value> {
    w.state()["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["build"] == build)
        .cloned()
        .collect()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `-only` and `-except`, by name or glob, on plan, apply, build and
/// destroy: the builds left out are not planned, and what they made stays
/// as it is, in the cloud and in the state.
#[tokio::test]
async fn only_and_except_select_builds_and_leave_the_others_alone() {
    let w = Workspace::new();
    three_builds(&w);
    let plan = stdout(&w.run(&["plan", "-only=a", "t.json"]));
    assert!(plan.contains("+ build.a.image"), "{plan}");
    assert!(
        !plan.contains("build.b.") && !plan.contains("build.c."),
        "{plan}"
    );
    let plan = stdout(&w.run(&["plan", "-except", "a,c", "t.json"]));
    assert!(plan.contains("+ build.b.image"), "{plan}");
    assert!(
        !plan.contains("build.a.") && !plan.contains("build.c."),
        "{plan}"
    );

    ok(&w.run(&["apply", "-only=a", "-auto-approve", "t.json"]));
    let a = entries(&w, "a");
    assert!(a.iter().any(|r| r["kind"] == "image"), "{a:?}");
    assert!(entries(&w, "b").is_empty() && entries(&w, "c").is_empty());

    // Another selection, by glob: a's entries are the same bytes after.
    ok(&w.run(&["build", "-except=a*", "t.json"]));
    assert_eq!(entries(&w, "a"), a);
    assert!(entries(&w, "b").iter().any(|r| r["kind"] == "image"));
    assert!(entries(&w, "c").iter().any(|r| r["kind"] == "image"));
    let (sim, client) = w.client();
    let account = sim.default_account().account_id;
    let mut names: Vec<String> = own_images(&client, &account)
        .await
        .into_iter()
        .map(|i| i.image_name)
        .collect();
    names.sort();
    assert_eq!(names, ["golden-a", "golden-b", "golden-c"]);
    drop(sim);

    // Without b in the selection, a plan has nothing to say of it, even
    // when its OMI is gone; with it, the plan rebuilds it.
    let b_image = entries(&w, "b")
        .into_iter()
        .find(|r| r["kind"] == "image")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (sim, client) = w.client();
    client
        .call(&osci::oapi::model::DeleteImageRequest {
            image_id: b_image,
            ..Default::default()
        })
        .await
        .unwrap();
    drop(sim);
    let out = w.run(&["plan", "-detailed-exitcode", "-only=a,c", "t.json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let out = w.run(&["plan", "-detailed-exitcode", "-only=b", "t.json"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));

    // Destroy of a selection removes that selection only; Packer's
    // TYPE.NAME names a build too.
    ok(&w.run(&["destroy", "-only=outscale-bsu.c", "-auto-approve", "t.json"]));
    assert!(entries(&w, "c").is_empty());
    assert_eq!(entries(&w, "a"), a);

    // A build gone from the template is left alone by a selection that
    // does not name it; a plan of the whole template removes what it made.
    ok(&w.run(&["apply", "-only=c", "-auto-approve", "t.json"]));
    w.write_template(vec![w.builder("a"), w.builder("b")], json!([]));
    let plan = stdout(&w.run(&["plan", "-only=a", "t.json"]));
    assert!(!plan.contains("build.c."), "{plan}");
    let plan = stdout(&w.run(&["plan", "t.json"]));
    assert!(plan.contains("- build.c.image"), "{plan}");
    ok(&w.run(&["destroy", "-only=c", "-auto-approve", "t.json"]));
    assert!(entries(&w, "c").is_empty());
    assert_eq!(entries(&w, "a"), a);

    let out = w.run(&["plan", "-only=nothing*", "t.json"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nothing*"), "{err}");
}

/// `osci build -force -on-error=abort`: `-force` replaces an OMI of the same
/// name that this state does not hold, as force_deregister does; a failed
/// build under `abort` keeps what it made, in the state, for a destroy.
#[tokio::test]
async fn build_force_and_on_error_abort() {
    let w = Workspace::new();
    w.template(json!({}));
    ok(&w.run(&["build", "-state=other.json", "t.json"]));
    let out = w.run(&["build", "t.json"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("force_deregister"), "{err}");

    // -force goes to the plan, and a saved plan carries it.
    ok(&w.run(&["plan", "-force", "-out", "p.osciplan", "t.json"]));
    let out = w.run(&["apply", "-force", "p.osciplan"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("osci plan -force"),
        "{err}"
    );
    ok(&w.run(&["apply", "p.osciplan"]));
    ok(&w.run(&["destroy", "-auto-approve", "t.json"]));
    ok(&w.run(&["build", "-state=other.json", "t.json"]));
    ok(&w.run(&["build", "-force", "-on-error=abort", "t.json"]));
    let (sim, client) = w.client();
    let account = sim.default_account().account_id;
    let images = own_images(&client, &account).await;
    assert_eq!(images.len(), 1, "{images:?}");
    let state = w.state();
    let recorded = state["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "image")
        .unwrap();
    assert_eq!(recorded["id"], images[0].image_id.as_str());
    drop(sim);

    // A new source name makes a new OMI; the image ends failed, and abort
    // keeps the build's VM and security group, recorded.
    w.template(json!({"omi_name": "golden-web-2"}));
    let out = w.run_with_faults(
        "fail@CreateImage*1",
        &["build", "-on-error=abort", "-force", "t.json"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("still in the state"), "{err}");
    let addresses = w.addresses();
    for kept in ["build.web.vm", "build.web.security_group"] {
        assert!(addresses.iter().any(|a| a == kept), "{addresses:?}");
    }
    ok(&w.run(&["destroy", "-auto-approve", "t.json"]));
    // What the build kept is gone; the OMI it was to replace stays, as
    // Packer leaves an OMI of another name (and snapshots it does not own).
    let (sim, client) = w.client();
    let account = sim.default_account().account_id;
    let left: Vec<String> = leftovers(&client, &account)
        .await
        .into_iter()
        .filter(|id| !id.starts_with("snap-"))
        .collect();
    assert_eq!(left, [images[0].image_id.clone()]);
    assert_eq!(w.addresses(), Vec::<String>::new());
}

/// Runs `osci ARGS` in `w` on a pseudo-terminal (`script`), answering
/// `answer` once the on-error question shows; returns the screen and
/// whether osci succeeded.
fn on_a_terminal(w: &Workspace, faults: &str, args: &str, answer: &str) -> (String, bool) {
    let mut child = w
        .terminal(args)
        .env("OSCI_SIM_FAULTS", faults)
        .env("NO_COLOR", "1")
        .env("TERM", "dumb")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut screen = String::new();
    let mut answered = false;
    loop {
        let mut chunk = Vec::new();
        // The question ends without a newline: read up to its last word.
        let n = if answered {
            reader.read_to_end(&mut chunk).unwrap()
        } else {
            reader.read_until(b'?', &mut chunk).unwrap()
        };
        if n == 0 {
            break;
        }
        screen.push_str(&String::from_utf8_lossy(&chunk));
        if !answered && screen.contains("[r] retry step") && screen.trim_end().ends_with('?') {
            stdin.write_all(format!("{answer}\n").as_bytes()).unwrap();
            stdin.flush().unwrap();
            answered = true;
        }
    }
    let mut rest = String::new();
    let _ = reader.read_to_string(&mut rest);
    screen.push_str(&rest);
    drop(stdin);
    let status = child.wait().unwrap();
    (screen, status.success())
}

/// `-on-error=ask` on a terminal: the failed step is named, and the choices
/// are Packer's. Retry undoes the failed attempt (the failed image goes)
/// and runs the step again; cleanup removes what the build made.
#[tokio::test]
async fn on_error_ask_offers_cleanup_abort_and_retry() {
    let w = Workspace::new();
    w.template(json!({}));
    let (screen, success) =
        on_a_terminal(&w, "fail@CreateImage*1", "build -on-error=ask t.json", "r");
    assert!(success, "{screen}");
    for choice in ["[c] Clean up", "[a] abort", "[r] retry step"] {
        assert!(screen.contains(choice), "no {choice} in: {screen}");
    }
    assert!(
        screen.contains("build.web.image failed") && screen.contains("injected fault"),
        "{screen}"
    );
    let (sim, client) = w.client();
    let images = own_images(&client, &sim.default_account().account_id).await;
    assert_eq!(images.len(), 1, "the failed image stayed: {images:?}");
    assert_eq!(images[0].state, "available");
    drop(sim);
    ok(&w.run(&["destroy", "-auto-approve", "t.json"]));

    let (screen, success) =
        on_a_terminal(&w, "fail@CreateImage*1", "build -on-error=ask t.json", "c");
    assert!(!success, "{screen}");
    assert_eq!(w.addresses(), Vec::<String>::new(), "{screen}");
    let (sim, client) = w.client();
    assert_eq!(
        leftovers(&client, &sim.default_account().account_id).await,
        Vec::<String>::new()
    );

    // Nobody to ask: refused before anything starts.
    let out = w.run(&["build", "-on-error=ask", "t.json"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("terminal"), "{err}");
}

/// Single-dash long options with `=` or a separate value, as Go's flag
/// package reads them: `-state`, `-json`, `-detailed-exitcode`, `-var`,
/// `-var-file`, `-auto-approve`, `-parallel-builds`, `-color=false` and
/// `-timestamp-ui`.
#[test]
fn single_dash_long_options() {
    let w = Workspace::new();
    let mut a = w.builder("a");
    merge(&mut a, json!({"omi_name": "golden-{{user `suffix`}}"}));
    let mut b = w.builder("b");
    merge(&mut b, json!({"omi_name": "golden-{{user `other`}}"}));
    let path = w.write_template(vec![a, b], json!([]));
    let mut t: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    t["variables"] = json!({"suffix": "x", "other": "y"});
    std::fs::write(&path, serde_json::to_vec(&t).unwrap()).unwrap();
    std::fs::write(w.path().join("vars.json"), r#"{"other": "from-file"}"#).unwrap();

    let out = w.run(&[
        "plan",
        "-state=s.json",
        "-json",
        "-detailed-exitcode",
        "-var",
        "suffix=from-flag",
        "-var-file=vars.json",
        "t.json",
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = plan.to_string();
    assert!(
        text.contains("golden-from-flag") && text.contains("golden-from-file"),
        "{text}"
    );

    let out = w.run(&[
        "-color=false",
        "-timestamp-ui",
        "apply",
        "-auto-approve",
        "-parallel-builds=1",
        "-state=s.json",
        "-var=suffix=from-flag",
        "-var-file",
        "vars.json",
        "t.json",
    ]);
    let err = ok(&out);
    // Each progress line starts with the time, RFC 3339 in UTC.
    let progress: Vec<&str> = err.lines().filter(|l| l.contains(": create")).collect();
    assert!(!progress.is_empty(), "{err}");
    for line in &progress {
        let stamp = line.split(": ").next().unwrap();
        assert!(
            time::OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339)
                .is_ok(),
            "no time at the start of {line}"
        );
    }
    // One build at a time: every step of one ends before the other's first.
    let build_of = |line: &str| {
        if line.contains("build.a.") {
            Some('a')
        } else if line.contains("build.b.") {
            Some('b')
        } else {
            None
        }
    };
    let order: Vec<char> = err
        .lines()
        .filter(|l| l.contains("Z: build."))
        .filter_map(build_of)
        .collect();
    let switches = order.windows(2).filter(|w| w[0] != w[1]).count();
    assert_eq!(switches, 1, "builds interleaved: {order:?}");
    assert!(w.path().join("s.json").exists());
}

/// On a terminal, logs are coloured; `-color=false` turns that off.
#[test]
fn color_false_on_a_terminal() {
    let w = Workspace::new();
    w.template(json!({}));
    let screen = |flags: &str| {
        let out = w
            .terminal(&format!("{flags} plan t.json"))
            .env("OSCI_LOG", "osci=debug")
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let coloured = screen("");
    assert!(
        coloured.contains("DEBUG") && coloured.contains("\u{1b}[34m"),
        "{coloured}"
    );
    let plain = screen("-color=false");
    assert!(
        plain.contains("DEBUG") && !plain.contains("\u{1b}["),
        "{plain}"
    );
}
