//! `osci whoami` against `osci sim serve`: the right account, and where each
//! credential came from.

mod common;

use common::SimProcess;

fn json_of(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn keys_from_the_environment() {
    let sim = SimProcess::start(&[]);
    let out = sim
        .osci()
        .args(["whoami", "--json"])
        .env("OSC_ENDPOINT_API", &sim.endpoint)
        .env("OSC_ACCESS_KEY", &sim.access_key)
        .env("OSC_SECRET_KEY", &sim.secret_key)
        .env("OSCI_RATE_LIMIT", "0")
        .output()
        .unwrap();
    let v = json_of(&out);
    assert_eq!(v["account_id"], sim.account_id.as_str());
    assert_eq!(v["access_key"]["source"], "env OSC_ACCESS_KEY");
    assert_eq!(v["secret_key"]["source"], "env OSC_SECRET_KEY");
    assert_eq!(v["endpoint"]["value"], sim.endpoint.as_str());
    assert_eq!(v["endpoint"]["source"], "env OSC_ENDPOINT_API");
    assert_eq!(v["region"]["value"], "eu-west-2");
    assert_eq!(v["region"]["source"], "default");
    assert_eq!(v["auth_method"], "access key");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains(&sim.secret_key),
        "the secret key is never printed"
    );
    assert!(
        !text.contains(&sim.access_key),
        "the access key is shown masked"
    );
}

#[test]
fn keys_from_a_profile_and_region_from_env() {
    let sim = SimProcess::start(&[]);
    let osc = sim.dir.path().join(".osc");
    std::fs::create_dir_all(&osc).unwrap();
    let file = osc.join("config.json");
    std::fs::write(
        &file,
        serde_json::json!({
            "default": {"access_key": "AKNOTUSED", "secret_key": "nope"},
            "sim": {
                "access_key": sim.access_key,
                "secret_key": sim.secret_key,
                "region": "us-east-2",
                "endpoints": {"api": sim.endpoint},
            }
        })
        .to_string(),
    )
    .unwrap();
    let out = sim
        .osci()
        .args(["whoami", "--json"])
        .env("OSC_PROFILE", "sim")
        .env("OSC_REGION", "eu-west-2")
        .output()
        .unwrap();
    let v = json_of(&out);
    let file = file.display().to_string();
    assert_eq!(v["account_id"], sim.account_id.as_str());
    assert_eq!(
        v["access_key"]["source"],
        format!("profile sim in {file}: access_key")
    );
    assert_eq!(
        v["endpoint"]["source"],
        format!("profile sim in {file}: endpoints.api")
    );
    assert_eq!(v["region"]["source"], "env OSC_REGION");
    assert_eq!(v["profile"]["name"], "sim");

    // The human form names the same sources.
    let out = sim
        .osci()
        .arg("whoami")
        .env("OSC_PROFILE", "sim")
        .env("OSC_REGION", "eu-west-2")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&sim.account_id), "{text}");
    assert!(text.contains("env OSC_REGION"), "{text}");
    assert!(text.contains("profile sim in"), "{text}");
}

#[test]
fn deprecated_variables_work_with_a_warning() {
    let sim = SimProcess::start(&[]);
    let out = sim
        .osci()
        .args(["whoami", "--json"])
        .env("OUTSCALE_OAPI_URL", &sim.endpoint)
        .env("OUTSCALE_ACCESSKEYID", &sim.access_key)
        .env("OUTSCALE_SECRETKEYID", &sim.secret_key)
        .output()
        .unwrap();
    let v = json_of(&out);
    assert_eq!(v["access_key"]["source"], "env OUTSCALE_ACCESSKEYID");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("OUTSCALE_ACCESSKEYID is deprecated"),
        "{stderr}"
    );
}

#[test]
fn bad_and_missing_credentials_are_explained() {
    let sim = SimProcess::start(&[]);
    let out = sim
        .osci()
        .arg("whoami")
        .env("OSC_ENDPOINT_API", &sim.endpoint)
        .env("OSC_ACCESS_KEY", &sim.access_key)
        .env("OSC_SECRET_KEY", "not-the-secret")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("HTTP 401"), "{stderr}");
    assert!(stderr.contains("clock"), "{stderr}");
    assert!(stderr.contains("lock"), "{stderr}");
    assert!(stderr.contains("secret key env OSC_SECRET_KEY"), "{stderr}");
    assert!(
        !stderr.contains("not-the-secret"),
        "the secret is never printed"
    );

    let out = sim
        .osci()
        .arg("whoami")
        .env("OSC_ENDPOINT_API", &sim.endpoint)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no OUTSCALE access key"), "{stderr}");
    assert!(stderr.contains("OSC_ACCESS_KEY"), "{stderr}");

    let out = sim
        .osci()
        .arg("whoami")
        .env("OSC_ACCESS_KEY", "only-half")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("must come from the same place"));
}

#[test]
fn in_process_simulator_needs_no_keys() {
    let dir = tempfile::tempdir().unwrap();
    let sim_dir = dir.path().join("region");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_osci"))
        .env_clear()
        .env("HOME", dir.path())
        .env("OSC_ENDPOINT_API", format!("sim://{}", sim_dir.display()))
        .args(["whoami", "--json"])
        .output()
        .unwrap();
    let v = json_of(&out);
    assert_eq!(v["access_key"]["source"], "simulator default account");
    assert!(
        sim_dir.join("sim.json").exists(),
        "the region is kept in the directory"
    );
    // The same directory is the same account next time.
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_osci"))
        .env_clear()
        .env("HOME", dir.path())
        .env("OSC_ENDPOINT_API", format!("sim://{}", sim_dir.display()))
        .args(["whoami", "--json"])
        .output()
        .unwrap();
    assert_eq!(json_of(&again)["account_id"], v["account_id"]);
}

#[test]
fn sim_serve_refuses_non_loopback_addresses() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_osci"))
        .args(["sim", "serve", "--listen", "0.0.0.0:0", "--data"])
        .arg(tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
}

#[test]
fn debug_logs_name_calls_and_never_secrets() {
    let sim = SimProcess::start(&[]);
    let out = sim
        .osci()
        .args(["whoami", "-vv"])
        .env("OSC_ENDPOINT_API", &sim.endpoint)
        .env("OSC_ACCESS_KEY", &sim.access_key)
        .env("OSC_SECRET_KEY", &sim.secret_key)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(out.status.success());
    let log = String::from_utf8_lossy(&out.stderr);
    let call = log
        .lines()
        .find(|l| l.contains("operation=\"ReadAccounts\"") && l.contains("request_id="))
        .unwrap_or_else(|| panic!("no call line in the log: {log}"));
    assert!(call.contains("duration_ms="), "{call}");
    assert!(!log.contains(&sim.secret_key), "{log}");
    assert!(
        !log.contains("Signature="),
        "signatures stay out of the log"
    );
}
