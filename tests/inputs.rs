//! Input a user gets wrong is a clear error, at once: an endpoint whose
//! host does not resolve, a credential with a stray control character.

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
}
