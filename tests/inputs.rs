//! Input a user gets wrong is a clear error, at once: an endpoint whose
//! host does not resolve, a credential with a stray control character, a
//! template `validate` must refuse as `plan` does.

mod common;

use common::workspace::*;
use serde_json::json;

/// A host that does not resolve is not retried: the error names the
/// endpoint and how to change it, and nothing is coloured in a pipe.
#[test]
fn an_endpoint_that_does_not_resolve_fails_at_once() {
    let w = Workspace::new();
    w.template(json!({
        "custom_endpoint_oapi": "https://api.no-such-region.invalid/api/v1",
        "access_key": "AKIAEXAMPLE",
        "secret_key": "secret",
    }));
    let out = w
        .osci()
        .env_remove("NO_COLOR")
        .args(["plan", "t.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("https://api.no-such-region.invalid/api/v1")
            && stderr.contains("does not resolve")
            && stderr.contains("custom_endpoint_oapi")
            && stderr.contains("OSC_ENDPOINT_API"),
        "{stderr}"
    );
    assert!(!stderr.contains("retrying"), "tried again: {stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "colour codes in a pipe: {stderr:?}"
    );
}

/// A key with a carriage return (a profile file saved on Windows) is an
/// error that names the file, the profile and the key, not a crash; the
/// value itself is never shown.
#[test]
fn a_control_character_in_a_credential_names_its_source() {
    let w = Workspace::new();
    w.template(json!({"custom_endpoint_oapi": null}));
    let osc = w.path().join(".osc");
    std::fs::create_dir_all(&osc).unwrap();
    std::fs::write(
        osc.join("config.json"),
        "{\"default\": {\"access_key\": \"AKIAEXAMPLE\\r\", \"secret_key\": \"s3cr3t-value\", \"region\": \"eu-west-2\"}}",
    )
    .unwrap();
    for args in [&["plan", "t.json"][..], &["whoami"]] {
        let out = w.run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("access key")
                && stderr.contains("config.json")
                && stderr.contains("default")
                && stderr.contains("carriage return"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    // A secret with a tab: named, not shown.
    std::fs::write(
        osc.join("config.json"),
        "{\"default\": {\"access_key\": \"AKIAEXAMPLE\", \"secret_key\": \"s3cr3t\\tvalue\", \"region\": \"eu-west-2\"}}",
    )
    .unwrap();
    let out = w.run(&["whoami"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("secret key") && stderr.contains("a tab"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cr3t"), "{stderr}");
    // A NUL in the key of another profile, chosen by OSC_PROFILE.
    std::fs::write(
        osc.join("config.json"),
        "{\"ci\": {\"access_key\": \"AKIA\\u0000EXAMPLE\", \"secret_key\": \"s3cr3t\", \"region\": \"eu-west-2\"}}",
    )
    .unwrap();
    let out = w
        .osci()
        .env("OSC_PROFILE", "ci")
        .arg("whoami")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("access key") && stderr.contains("profile ci") && stderr.contains("U+0000"),
        "{stderr}"
    );
}

/// Every template `plan` refuses for a reason it could see offline,
/// `validate` refuses too, with the same reason, and without the cloud: its
/// endpoint here does not even resolve.
#[test]
fn validate_refuses_what_plan_refuses_offline() {
    let w = Workspace::new();
    let cases: Vec<(&str, serde_json::Value, serde_json::Value, &str)> = vec![
        (
            "a provisioner osci lacks",
            json!({}),
            json!([{"type": "ansible", "playbook_file": "site.yml"}]),
            "no `ansible` provisioner",
        ),
        (
            "a misspelt provisioner key",
            json!({}),
            json!([{"type": "shell", "inlin": ["true"]}]),
            "unknown field `inlin`",
        ),
        (
            "winrm without its user",
            json!({"communicator": "winrm"}),
            json!([]),
            "winrm_username",
        ),
        (
            "a communicator that does not exist",
            json!({"communicator": "telnet"}),
            json!([]),
            "telnet",
        ),
        (
            "a misspelt builder key",
            json!({"vm_typ": "tinav5.c2r4p2"}),
            json!([]),
            "vm_typ",
        ),
        (
            "an unknown builder type",
            json!({"type": "amazon-ebs"}),
            json!([]),
            "amazon-ebs",
        ),
        (
            "an OMI without a name",
            json!({"omi_name": null}),
            json!([]),
            "omi_name",
        ),
        (
            "an undefined variable",
            json!({"omi_name": "golden-{{user `nope`}}"}),
            json!([]),
            "nope",
        ),
        (
            "a duration that does not read",
            json!({"communicator": "ssh", "ssh_username": "outscale", "ssh_timeout": "ten minutes"}),
            json!([]),
            "ssh_timeout",
        ),
        (
            "a volume type that does not exist",
            json!({"launch_block_device_mappings": [{"device_name": "/dev/sda1", "volume_type": "ssd", "volume_size": 10}]}),
            json!([]),
            "ssd",
        ),
        (
            "a region that cannot be one",
            json!({"region": "eu west 2"}),
            json!([]),
            "region",
        ),
        (
            "a file provisioner without a source",
            json!({}),
            json!([{"type": "file", "destination": "/tmp/x"}]),
            "source",
        ),
    ];
    for (what, changes, provisioners, reason) in cases {
        let mut changes = changes;
        merge(
            &mut changes,
            json!({"custom_endpoint_oapi": "https://api.no-such-region.invalid/api/v1",
                   "access_key": "AKIAEXAMPLE", "secret_key": "secret"}),
        );
        w.template_with("web", changes, provisioners);
        for command in ["validate", "plan"] {
            let out = w.run(&[command, "t.json"]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{what}: {command}: {stderr}");
            assert!(
                stderr.contains(reason) && stderr.contains("t.json"),
                "{what}: {command} does not say {reason:?}: {stderr}"
            );
            assert!(
                !stderr.contains("does not resolve"),
                "{what}: {command} went to the cloud first: {stderr}"
            );
        }
    }
    // The same template, valid: validate says so, offline.
    w.template(
        json!({"custom_endpoint_oapi": "https://api.no-such-region.invalid/api/v1",
                      "access_key": "AKIAEXAMPLE", "secret_key": "secret"}),
    );
    let out = w.run(&["validate", "t.json"]);
    ok(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid, 1 build (web)"));
}
