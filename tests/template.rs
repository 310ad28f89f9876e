//! Packer JSON templates: loading, variables, interpolation, validation and
//! error reporting, against the fixtures in tests/fixtures/templates and
//! small templates written on the fly.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use osci::template::{BuildVars, LoadOptions, Template, load, render_build_vars};
use serde_json::{Value, json};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/templates")
        .join(name)
}

fn full_options() -> LoadOptions {
    LoadOptions {
        vars: vec![
            ("disk_size".into(), "20".into()),
            ("db_password".into(), "from-flag".into()),
        ],
        var_files: vec![fixture("full.vars.json")],
        ..LoadOptions::default()
    }
}

fn load_full() -> Template {
    load(&fixture("full.json"), &full_options()).unwrap_or_else(|e| panic!("{e}"))
}

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The options of an `osc-bsu` build.
fn bsu(build: &osci::template::Build) -> &osci::template::BsuConfig {
    match &build.config {
        osci::template::BuilderConfig::Bsu(c) => c,
        other => panic!("not a bsu build: {other:?}"),
    }
}

#[test]
fn full_template_loads_with_the_right_values() {
    let t = load_full();
    let dir = fixture("");
    assert_eq!(t.builds.len(), 2);
    let web = &t.builds[0];
    assert_eq!(
        (web.name.as_str(), web.builder_type.as_str()),
        ("web", "osc-bsu")
    );
    let c = bsu(web);

    // -var beats -var-file beats the default; -var-file beats the default.
    assert_eq!(
        c.block_devices.launch_block_device_mappings[0].volume_size,
        Some(20)
    );
    assert_eq!(c.access.region.as_deref(), Some("cloudgouv-eu-west-1"));
    assert_eq!(c.run.vm_type, "tinav5.c2r4p2");

    // Access, with the seeds' endpoint alias and paths from the template's directory.
    assert_eq!(c.access.access_key.as_deref(), Some("AKIAEXAMPLE"));
    assert_eq!(
        c.access.secret_key.as_ref().map(|s| s.expose()),
        Some("secret/EXAMPLE")
    );
    assert_eq!(
        c.access.custom_endpoint_oapi.as_deref(),
        Some("outscale.com/oapi/latest")
    );
    assert_eq!(c.access.x509_cert_path, Some(dir.join("certs/client.pem")));

    // The source filter, with `filter` blocks merged and owners interpolated.
    let filter = c.run.source_omi_filter.as_ref().unwrap();
    assert_eq!(
        filter.filters,
        tags(&[
            ("architecture", "x86_64"),
            ("image-name", "Ubuntu-22.04-*"),
            ("root-device-type", "bsu"),
        ])
    );
    assert_eq!(filter.owners, ["Outscale", "123456789012"]);
    assert!(filter.most_recent);
    let subnet = c.run.subnet_filter.as_ref().unwrap();
    assert_eq!(subnet.filters, tags(&[("available-ips-counts", "10")]));
    assert!(subnet.most_free && !subnet.random);

    // Conveniences folded into their fields.
    assert_eq!(c.run.security_group_ids, ["sg-12345678"]);
    assert_eq!(
        c.run.user_data.as_ref().map(|u| u.as_str()),
        Some("#!/bin/sh\necho \"user data for osci\"\n")
    );

    // Weakly typed values and defaults.
    assert_eq!(c.comm.ssh_port, 22);
    assert!(c.comm.ssh_pty);
    assert_eq!(c.comm.ssh_timeout, "5m");
    assert_eq!(c.run.shutdown_behavior, "stop");
    assert_eq!(c.run.temporary_security_group_source_cidr, "0.0.0.0/0");
    assert!(!c.omi.force_deregister, "the pipeline renders to \"false\"");

    // One timestamp for the whole load; clean_omi_name.
    let (name, label) = c.omi.omi_name.split_once(' ').unwrap();
    let timestamp = name.strip_prefix("web-").unwrap();
    assert!(timestamp.parse::<u64>().is_ok(), "{name}");
    assert_eq!(label, "My App- v1-");
    assert_eq!(c.omi.tags["built"], timestamp);
    assert_eq!(t.builds[1].config.omi().omi_name, format!("db-{timestamp}"));

    // Build variables left for build time; everything else rendered.
    assert_eq!(
        c.omi.tags,
        tags(&[
            ("Name", "web"),
            ("built", timestamp),
            ("source", "{{ .SourceOMIName | clean_resource_name }}"),
            ("web-region", "{{ .BuildRegion }}"),
        ])
    );
    assert_eq!(c.omi.snapshot_tags, tags(&[("app", "web")]));
    assert_eq!(
        c.run.run_tags,
        tags(&[("Name", "osci web"), ("region", "{{ .BuildRegion }}")])
    );
    assert_eq!(
        c.omi.omi_description,
        "web from {{ .SourceOMIName }} ({{ .SourceOMITags.os }})"
    );

    // Docs-only names accepted.
    assert_eq!(c.omi.snapshot_users, ["123456789012"]);
    assert_eq!(c.omi.snapshot_groups, ["all"]);
    assert_eq!(c.omi.omi_virtualization_type.as_deref(), Some("hvm"));
    let sdb = &c.block_devices.launch_block_device_mappings[1];
    assert_eq!(
        (sdb.iops, sdb.virtual_name.as_deref()),
        (Some(3000), Some("ephemeral0"))
    );
    assert!(c.block_devices.launch_block_device_mappings[2].no_device);

    let db = bsu(&t.builds[1]);
    assert_eq!(db.run.source_omi.as_deref(), Some("ami-12345678"));
    assert!(!db.access.insecure_skip_tls_verify);
    assert_eq!(db.comm.communicator, "ssh");

    assert_eq!(
        t.sensitive_values
            .iter()
            .map(|s| s.expose())
            .collect::<Vec<_>>(),
        ["from-flag"]
    );
}

#[test]
fn provisioners_follow_only_except_and_override() {
    let t = load_full();
    let path_env = std::env::var("PATH").unwrap_or_default();
    assert!(!path_env.is_empty());

    let web = &t.builds[0].provisioners;
    assert_eq!(
        web.iter().map(|p| p.kind.as_str()).collect::<Vec<_>>(),
        ["shell", "file"]
    );
    assert_eq!(
        web[0].config,
        json!({
            "inline": ["echo hello from web on web", "echo '{{ .Vars }}'"],
            "execute_command": "sudo -E sh '{{ .Path }}'",
        })
    );
    let source = fixture("").join("files/app.conf");
    assert_eq!(web[1].config["source"], json!(source.to_str().unwrap()));

    let db = &t.builds[1].provisioners;
    assert_eq!(db.len(), 2);
    assert_eq!(db[0].config["inline"], json!(["echo db only"]));
    assert_eq!(
        db[1].config["environment_vars"],
        json!(["DB_PASSWORD=from-flag"])
    );
}

#[test]
fn build_variables_render_at_build_time() {
    let t = load_full();
    let c = bsu(&t.builds[0]);
    let vars = BuildVars {
        build_region: "eu-west-2".into(),
        source_omi: "ami-87654321".into(),
        source_omi_name: "Ubuntu 22.04 (x86_64): 2024*".into(),
        source_omi_tags: tags(&[("os", "linux")]),
        ..Default::default()
    };
    let render = |s: &str| render_build_vars(s, &vars).unwrap();
    assert_eq!(
        render(&c.omi.tags["source"]),
        "Ubuntu 22.04 (x86_64)- 2024-"
    );
    assert_eq!(render(&c.omi.tags["web-region"]), "eu-west-2");
    assert_eq!(render(&c.run.run_volume_tags["built-from"]), "ami-87654321");
    assert_eq!(
        render(&c.omi.omi_description),
        "web from Ubuntu 22.04 (x86_64): 2024* (linux)"
    );
    assert_eq!(render("no actions"), "no actions");

    for (input, reason) in [
        (
            "{{ .SourceAMI }}",
            "unknown build variable `.SourceAMI`; did you mean `SourceOMI`?",
        ),
        ("{{ .BuildZone }}", "unknown build variable"),
        ("{{ timestamp }}", "cannot be used at build time"),
    ] {
        let e = render_build_vars(input, &vars).unwrap_err();
        assert!(e.contains(reason), "{input}: {e}");
    }
}

#[test]
fn overrides_carry_the_access_keys() {
    let t = load_full();
    let o = t.builds[0]
        .config
        .access()
        .overrides("template full.json, build \"web\"".into());
    assert_eq!(o.origin, "template full.json, build \"web\"");
    assert_eq!(o.access_key.as_deref(), Some("AKIAEXAMPLE"));
    assert_eq!(
        o.secret_key.map(|s| s.expose().to_string()).as_deref(),
        Some("secret/EXAMPLE")
    );
    assert_eq!(o.region.as_deref(), Some("cloudgouv-eu-west-1"));
    assert_eq!(
        o.insecure_skip_tls_verify, None,
        "false does not override the environment"
    );
    let db = t.builds[1].config.access().overrides(String::new());
    assert_eq!(db.access_key, None);
    assert_eq!(
        db.custom_endpoint_oapi.as_deref(),
        Some("https://api.eu-west-2.outscale.com/api/v1")
    );
}

#[test]
fn minimal_template_loads() {
    let t = load(&fixture("minimal.json"), &LoadOptions::default()).unwrap();
    let build = &t.builds[0];
    assert_eq!(build.name, "outscale-bsu");
    assert_eq!(bsu(build).run.source_omi.as_deref(), Some("ami-cd8d714e"));
    assert!(
        build
            .config
            .omi()
            .omi_name
            .starts_with("packer-quick-start ")
    );
    assert_eq!(build.provisioners.len(), 1);
}

// ---- errors ----

/// A valid bsu builder entry the error cases start from.
fn base_builder() -> Value {
    json!({
        "name": "web",
        "type": "osc-bsu",
        "vm_type": "tinav6.c2r4p2",
        "source_omi": "ami-12345678",
        "ssh_username": "outscale",
        "omi_name": "web-{{timestamp}}",
    })
}

/// Writes `template` as `<case>.json` in a fresh directory and loads it;
/// the error as displayed.
fn load_value(case: &str, template: &Value, options: &LoadOptions) -> Result<Template, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{case}.json"));
    std::fs::write(&path, serde_json::to_string_pretty(template).unwrap()).unwrap();
    load(&path, options).map_err(|e| e.to_string())
}

/// The builder `base_builder()` with `patch` applied: keys set, or removed when null.
fn builder_with(patch: &Value) -> Value {
    let mut builder = base_builder();
    for (k, v) in patch.as_object().unwrap() {
        if v.is_null() {
            builder.as_object_mut().unwrap().remove(k);
        } else {
            builder[k] = v.clone();
        }
    }
    builder
}

#[test]
fn bad_builders_are_refused_with_file_build_key_and_reason() {
    // (case, patch of the builder entry, key in the error, reason)
    #[rustfmt::skip]
    let cases: &[(&str, Value, &str, &str)] = &[
        ("user-data-twice", json!({"user_data": "x", "user_data_file": "u.sh"}), "user_data_file", "cannot be used together with `user_data`"),
        ("user-data-file-missing", json!({"user_data_file": "nope.sh"}), "user_data_file", "cannot read"),
        ("key-file-missing", json!({"ssh_private_key_file": "keys/nope.pem"}), "ssh_private_key_file", "cannot read"),
        ("bad-cidr", json!({"temporary_security_group_source_cidr": "10.0.0.0/40"}), "temporary_security_group_source_cidr", "not a CIDR block"),
        ("no-omi-name", json!({"omi_name": null}), "omi_name", "required"),
        ("no-vm-type", json!({"vm_type": null}), "vm_type", "required"),
        ("no-source", json!({"source_omi": null}), "source_omi", "source_omi or source_omi_filter"),
        ("no-owners", json!({"source_omi": null, "source_omi_filter": {"filters": {"image-name": "x"}}}), "source_omi_filter.owners", "required"),
        ("bad-filter-name", json!({"source_omi_filter": {"filters": {"name": "x"}, "owners": ["self"]}}), "source_omi_filter.filters.name", "unknown filter `name`"),
        ("omi-name-chars", json!({"omi_name": "web:{{timestamp}}"}), "omi_name", "contains ':'"),
        ("omi-name-short", json!({"omi_name": "ab"}), "omi_name", "3 to 128"),
        ("omi-name-long", json!({"omi_name": "x".repeat(129)}), "omi_name", "3 to 128"),
        ("vm-type-number", json!({"vm_type": 3}), "vm_type", "invalid type: integer `3`, expected a string"),
        ("tags-array", json!({"tags": []}), "tags", "expected a map"),
        ("tag-value-number", json!({"tags": {"a": 1}}), "tags.a", "expected a string"),
        ("port-too-big", json!({"ssh_port": 70000}), "ssh_port", "from 0 to 65535"),
        ("bool-word", json!({"bsu_optimized": "yes"}), "bsu_optimized", "expected a boolean"),
        ("shutdown", json!({"shutdown_behavior": "halt"}), "shutdown_behavior", "`halt` is not one of `stop`, `terminate`"),
        ("boot-mode", json!({"boot_mode": "bios"}), "boot_mode", "not one of `legacy`, `uefi`"),
        ("omi-boot-modes", json!({"omi_boot_modes": ["uefi", "bios"]}), "omi_boot_modes[1]", "not one of"),
        ("ssh-interface", json!({"ssh_interface": "ipv6"}), "ssh_interface", "not one of `public_ip`"),
        ("iops-gp2", json!({"launch_block_device_mappings": [{"device_name": "/dev/sda1", "volume_type": "gp2", "iops": 100}]}), "launch_block_device_mappings[0].iops", "only applies to volume_type \"io1\""),
        ("device-name", json!({"omi_block_device_mappings": [{"volume_size": 10}], "root_device_name": "/dev/sda1"}), "omi_block_device_mappings[0].device_name", "required"),
        ("root-device", json!({"omi_block_device_mappings": [{"device_name": "/dev/sda1"}]}), "root_device_name", "required"),
        ("block-duration", json!({"block_duration_minutes": 90}), "block_duration_minutes", "multiple of 60"),
        ("t2-unlimited", json!({"enable_t2_unlimited": true}), "enable_t2_unlimited", "only applies to t2"),
        ("keypair-no-key", json!({"ssh_keypair_name": "mine"}), "ssh_keypair_name", "needs ssh_private_key_file or ssh_agent_auth"),
        ("communicator", json!({"communicator": "telnet"}), "communicator", "not one of `ssh`, `winrm`, `none`"),
        ("no-ssh-user", json!({"ssh_username": null}), "ssh_username", "required"),
        ("winrm-user", json!({"communicator": "winrm"}), "winrm_username", "required"),
        ("duration", json!({"ssh_timeout": "ten minutes"}), "ssh_timeout", "not a duration"),
        ("virtualization", json!({"omi_virtualization_type": "paravirtual"}), "omi_virtualization_type", "not one of `hvm`"),
        ("snapshot-groups", json!({"snapshot_groups": ["friends"]}), "snapshot_groups[0]", "not one of `all`"),
        ("sg-twice", json!({"security_group_id": "sg-1", "security_group_ids": ["sg-2"]}), "security_group_id", "cannot be used together with `security_group_ids`"),
        ("endpoint-twice", json!({"oapi_custom_endpoint": "a.example", "custom_endpoint_oapi": "b.example"}), "oapi_custom_endpoint", "cannot be used together"),
        ("endpoint", json!({"custom_endpoint_oapi": "ftp://api.example"}), "custom_endpoint_oapi", "scheme must be http or https"),
        ("half-keys", json!({"access_key": "AK"}), "access_key", "secret_key"),
        ("unknown-key", json!({"omi_nmae": "x"}), "omi_nmae", "unknown key; did you mean `omi_name`?"),
        ("amazon-key", json!({"ami_name": "x"}), "ami_name", "did you mean `omi_name`?"),
        ("amazon-device-key", json!({"launch_block_device_mappings": [{"device_name": "/dev/sda1", "delete_on_termination": true}]}), "launch_block_device_mappings[0].delete_on_termination", "did you mean `delete_on_vm_deletion`?"),
        ("filter-block-key", json!({"source_omi_filter": {"filter": [{"name": "image-name", "values": "x"}], "owners": ["self"]}}), "source_omi_filter.filter[0].values", "did you mean `value`?"),
        ("filter-key", json!({"source_omi_filter": {"owner": ["self"]}}), "source_omi_filter.owner", "did you mean `owners`?"),
        ("late-var", json!({"omi_name": "web-{{ .SourceOMI }}"}), "omi_name", "only rendered in tags, snapshot_tags, run_tags, run_volume_tags, root_volume_tags, bsu_volumes' tags and omi_description"),
        ("late-unknown", json!({"tags": {"a": "{{ .SourceOMIId }}"}}), "tags.a", "unknown build variable `.SourceOMIId`"),
        ("env-in-builder", json!({"region": "{{env `OSC_REGION`}}"}), "region", "`env` is only allowed in the default values of `variables`"),
        ("unknown-function", json!({"omi_name": "{{ clean_name `x` }}"}), "omi_name", "unknown function `clean_name`"),
        ("undefined-var", json!({"region": "{{user `regoin`}}"}), "region", "undefined variable `regoin`; did you mean `region`?"),
    ];
    let options = LoadOptions::default();
    let mut failures = Vec::new();
    for (case, patch, key, reason) in cases {
        let template = json!({
            "variables": {"region": "eu-west-2"},
            "builders": [builder_with(patch)],
        });
        let message = match load_value(case, &template, &options) {
            Ok(_) => {
                failures.push(format!("{case}: accepted"));
                continue;
            }
            Err(e) => e,
        };
        for part in [
            format!("{case}.json:"),
            "build \"web\"".to_string(),
            format!("key \"{key}\""),
            reason.to_string(),
        ] {
            if !message.contains(&part) {
                failures.push(format!("{case}: {part:?} missing from: {message}"));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn errors_point_at_the_line_and_column_of_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.json");
    let text = r#"{
  "builders": [
    {
      "type": "osc-bsu",
      "vm_type": "tinav6.c2r4p2",
      "source_omi": "ami-12345678",
      "ssh_username": "outscale",
        "omi_nam": "web"
    }
  ]
}"#;
    std::fs::write(&path, text).unwrap();
    let e = load(&path, &LoadOptions::default()).unwrap_err();
    assert_eq!((e.line, e.column), (Some(8), Some(9)));
    assert_eq!(e.build.as_deref(), Some("osc-bsu"));
    assert_eq!(e.key.as_deref(), Some("omi_nam"));
    assert!(e.to_string().ends_with(
        "web.json:8:9: build \"osc-bsu\": key \"omi_nam\": unknown key; did you mean `omi_name`?"
    ));

    std::fs::write(
        &path,
        "{\n  \"builders\": [\n    {\"type\": \"osc-bsu\",}\n  ]\n}",
    )
    .unwrap();
    let e = load(&path, &LoadOptions::default()).unwrap_err();
    assert_eq!((e.line, e.column), (Some(3), Some(24)), "{e}");
    assert!(
        e.to_string().contains("web.json:3:24: JSON syntax error"),
        "{e}"
    );

    std::fs::write(
        &path,
        r#"{"builders": [{"type": "osc-bsu", "vm_type": "a", "vm_type": "b"}]}"#,
    )
    .unwrap();
    let e = load(&path, &LoadOptions::default()).unwrap_err();
    assert_eq!((e.line, e.column), (Some(1), Some(51)), "{e}");
    assert!(e.message.contains("more than once"), "{e}");
}

#[test]
fn template_level_errors() {
    let builder = base_builder();
    let other = builder_with(&json!({"name": "db"}));
    // (case, template, options, parts of the error)
    #[rustfmt::skip]
    let cases: Vec<(&str, Value, LoadOptions, Vec<&str>)> = vec![
        ("top-key", json!({"builder": [builder]}), LoadOptions::default(), vec!["key \"builder\"", "did you mean `builders`?"]),
        ("no-builders", json!({"variables": {}}), LoadOptions::default(), vec!["key \"builders\"", "required"]),
        ("surrogate", json!({"builders": [{"type": "osc-bsusurrogate", "name": "c", "vm_type": "t", "source_omi": "ami-12345678", "omi_name": "x-1", "communicator": "none"}]}), LoadOptions::default(), vec!["build \"c\"", "key \"omi_root_device\"", "the launch volume that becomes the OMI's root"]),
        ("volume", json!({"builders": [{"type": "outscale-bsuvolume", "vm_type": "t", "source_omi": "ami-12345678", "communicator": "none"}]}), LoadOptions::default(), vec!["build \"outscale-bsuvolume\"", "bsu_volumes, the volumes the build makes and keeps"]),
        ("amazon", json!({"builders": [{"type": "amazon-ebs"}]}), LoadOptions::default(), vec!["unknown builder type `amazon-ebs`", "outscale-bsu, outscale-chroot"]),
        ("duplicate", json!({"builders": [builder, builder]}), LoadOptions::default(), vec!["build \"web\"", "key \"name\"", "builders[0] already has this name"]),
        ("required-var", json!({"variables": {"password": null}, "builders": [builder]}), LoadOptions::default(), vec!["key \"variables.password\"", "required variable `password` is not set"]),
        ("var-cycle", json!({"variables": {"a": "{{user `b`}}", "b": "{{user `a`}}"}, "builders": [builder]}), LoadOptions::default(), vec!["cycle: a → b → a"]),
        ("var-uses-undefined", json!({"variables": {"a": "x-{{user `c`}}"}, "builders": [builder]}), LoadOptions::default(), vec!["key \"variables.a\"", "undefined variable `c`"]),
        ("unknown-flag-var", json!({"variables": {"region": "x"}, "builders": [builder]}), LoadOptions { vars: vec![("regio".into(), "y".into())], ..LoadOptions::default() }, vec!["-var regio: not a variable of the template; did you mean `region`?"]),
        ("only-unknown", json!({"builders": [builder, other], "provisioners": [{"type": "shell", "only": ["wbe"]}]}), LoadOptions::default(), vec!["key \"provisioners[0].only[0]\"", "no build is named `wbe`; did you mean `web`?"]),
        ("only-and-except", json!({"builders": [builder, other], "provisioners": [{"type": "shell", "only": ["web"], "except": ["db"]}]}), LoadOptions::default(), vec!["key \"provisioners[0].except\"", "cannot be used together with `only`"]),
        ("provisioner-type", json!({"builders": [builder], "provisioners": [{"inline": ["x"]}]}), LoadOptions::default(), vec!["key \"provisioners[0].type\"", "required"]),
        ("provisioner-env", json!({"builders": [builder], "provisioners": [{"type": "shell", "inline": ["{{env `HOME`}}"]}]}), LoadOptions::default(), vec!["build \"web\"", "key \"provisioners[0].inline[0]\"", "`env` is only allowed"]),
        ("post-processors", json!({"builders": [builder, other], "post-processors": ["manifest", [{"type": "manifest", "only": ["wbe"]}]]}), LoadOptions::default(), vec!["key \"post-processors[1][0].only[0]\"", "no build is named `wbe`; did you mean `web`?"]),
        ("sensitive", json!({"builders": [builder], "sensitive-variables": ["nope"]}), LoadOptions::default(), vec!["key \"sensitive-variables[0]\"", "a variable defined"]),
        ("name-interpolated", json!({"builders": [builder_with(&json!({"name": "{{user `x`}}"}))]}), LoadOptions::default(), vec!["key \"builders[0].name\"", "not interpolated"]),
    ];
    let mut failures = Vec::new();
    for (case, template, options, parts) in cases {
        let message = match load_value(case, &template, &options) {
            Ok(_) => {
                failures.push(format!("{case}: accepted"));
                continue;
            }
            Err(e) => e,
        };
        for part in
            std::iter::once(format!("{case}.json:")).chain(parts.iter().map(|p| p.to_string()))
        {
            if !message.contains(&part) {
                failures.push(format!("{case}: {part:?} missing from: {message}"));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn var_file_errors_name_the_var_file() {
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("web.json");
    let template_json = json!({"variables": {"region": "x"}, "builders": [base_builder()]});
    std::fs::write(&template, template_json.to_string()).unwrap();
    let cases = [
        (
            "typo.json",
            "{\n  \"regoin\": \"y\"\n}",
            "typo.json:2:3: key \"regoin\": not a variable of the template; did you mean `region`?",
        ),
        (
            "syntax.json",
            "{\n  \"region\": \n}",
            "syntax.json:3:1: JSON syntax error",
        ),
        (
            "array.json",
            "[]",
            "array.json: a -var-file must hold a JSON object",
        ),
        (
            "nested.json",
            "{\"region\": {}}",
            "nested.json:1:2: key \"region\": a variable's value must be",
        ),
        ("missing.json", "", "missing.json: cannot read"),
    ];
    for (name, text, want) in cases {
        let file = dir.path().join(name);
        if !text.is_empty() {
            std::fs::write(&file, text).unwrap();
        }
        let options = LoadOptions {
            var_files: vec![file],
            ..LoadOptions::default()
        };
        let e = load(&template, &options).unwrap_err().to_string();
        assert!(e.contains(want), "{name}: {e}");
    }
}

#[test]
fn empty_values_are_unset_and_binary_user_data_is_encoded() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("data.bin"), [0x1f, 0x8b, 0xff, 0x00]).unwrap();
    let builder = builder_with(&json!({
        "access_key": "{{user `ak`}}",
        "secret_key": "{{user `sk`}}",
        "ssh_private_key_file": "",
        "shutdown_behavior": "",
        "user_data_file": "data.bin",
        "launch_block_device_mappings": [{"device_name": "/dev/sda1", "volume_type": ""}],
    }));
    let template = json!({"variables": {"ak": "", "sk": ""}, "builders": [builder]});
    let path = dir.path().join("empty.json");
    std::fs::write(&path, template.to_string()).unwrap();
    let t = load(&path, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let c = bsu(&t.builds[0]);
    assert_eq!(
        (
            c.access.access_key.as_deref(),
            c.access.secret_key.is_none()
        ),
        (None, true)
    );
    assert_eq!(c.comm.ssh_private_key_file, None);
    assert_eq!(c.run.shutdown_behavior, "stop");
    assert_eq!(
        c.block_devices.launch_block_device_mappings[0].volume_type,
        None
    );
    // A binary file goes as the base64 of its bytes, encoded once.
    let user_data = c.run.user_data.as_ref().unwrap();
    assert_eq!(user_data.as_str(), "H4v/AA==");
    assert_eq!(user_data.to_base64(), "H4v/AA==");
}

/// An HCL2 template loads into the same builds as its JSON twin: the
/// template layer is the only one that knows which language it was.
#[test]
fn an_hcl2_template_loads_as_its_json_twin() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let json = load(&examples.join("quickstart.json"), &LoadOptions::default()).unwrap();
    let hcl = load(
        &examples.join("quickstart.pkr.hcl"),
        &LoadOptions::default(),
    )
    .unwrap();
    assert_eq!(hcl.builds, json.builds);
    assert_eq!(hcl.builds[0].provisioners.len(), 3);
    let options = LoadOptions {
        vars: vec![("version".into(), "2.0.0".into())],
        ..LoadOptions::default()
    };
    let json = load(&examples.join("quickstart.json"), &options).unwrap();
    let hcl = load(&examples.join("quickstart.pkr.hcl"), &options).unwrap();
    assert_eq!(hcl.builds, json.builds);
    assert_eq!(hcl.builds[0].config.omi().omi_name, "quickstart-2.0.0");
}

// ---- schema ----

/// The fixtures the loader accepts are valid against schema/template.schema.json.
#[test]
fn accepted_fixtures_match_the_schema() {
    let schemas = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema");
    let read = |name: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(schemas.join(name)).unwrap()).unwrap()
    };
    let checker = Checker {
        files: [
            "template.schema.json",
            "template-bsu.schema.json",
            "template-chroot.schema.json",
            "template-bsusurrogate.schema.json",
            "template-bsuvolume.schema.json",
        ]
        .into_iter()
        .map(|n| (n.to_string(), read(n)))
        .collect(),
    };
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let examples = std::fs::read_dir(examples)
        .into_iter()
        .flatten()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"));
    let fixtures = ["full.json", "minimal.json"].map(fixture);
    let mut checked = 0;
    for path in fixtures.into_iter().chain(examples) {
        // Only what the loader accepts: examples of builders osci does not
        // support yet have no schema yet.
        if load(&path, &full_options()).is_err() && load(&path, &LoadOptions::default()).is_err() {
            continue;
        }
        let template: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let errors = checker.check(
            "template.schema.json",
            "template.schema.json",
            &template,
            "",
        );
        assert!(
            errors.is_empty(),
            "{}:\n{}",
            path.display(),
            errors.join("\n")
        );
        checked += 1;
    }
    assert!(checked >= 2);
    // And the checker does check.
    let bad = json!({"builders": [builder_with(&json!({"omi_nmae": "x", "vm_type": 3}))]});
    let errors = checker.check("template.schema.json", "template.schema.json", &bad, "");
    // A builder matches one of the builders' schemas, or none: the bsu
    // schema's two complaints are among those told.
    assert_eq!(errors.len(), 1, "{errors:?}");
    for complaint in [
        "unknown key \\\"omi_nmae\\\"",
        ".builders[0].vm_type: 3 is not",
    ] {
        assert!(
            errors[0].contains(complaint),
            "{complaint} not in {errors:?}"
        );
    }
}

/// Just enough of JSON Schema 2020-12 for osci's schemas; it panics on
/// anything else, so a schema change it cannot check is noticed.
struct Checker {
    files: BTreeMap<String, Value>,
}

impl Checker {
    fn check(&self, file: &str, pointer_or_file: &str, value: &Value, at: &str) -> Vec<String> {
        let schema = if pointer_or_file.ends_with(".json") {
            &self.files[pointer_or_file]
        } else {
            self.files[file].pointer(pointer_or_file).unwrap()
        };
        self.check_schema(file, schema, value, at)
    }

    fn check_schema(&self, file: &str, schema: &Value, value: &Value, at: &str) -> Vec<String> {
        let mut errors = Vec::new();
        let schema = schema.as_object().unwrap();
        for (keyword, arg) in schema {
            match keyword.as_str() {
                "$schema" | "$id" | "$defs" | "title" | "description" => {}
                "$ref" => {
                    let target = arg.as_str().unwrap();
                    errors.extend(match target.strip_prefix('#') {
                        Some(pointer) => self.check(file, pointer, value, at),
                        None => self.check(target, target, value, at),
                    });
                }
                "type" => {
                    let types: Vec<&str> = match arg {
                        Value::String(t) => vec![t.as_str()],
                        Value::Array(ts) => ts.iter().map(|t| t.as_str().unwrap()).collect(),
                        _ => panic!("type {arg}"),
                    };
                    let matches = |t: &str| match t {
                        "string" => value.is_string(),
                        "boolean" => value.is_boolean(),
                        "integer" => value.is_i64() || value.is_u64(),
                        "number" => value.is_number(),
                        "null" => value.is_null(),
                        "array" => value.is_array(),
                        "object" => value.is_object(),
                        other => panic!("type {other}"),
                    };
                    if !types.iter().any(|t| matches(t)) {
                        errors.push(format!("{at}: {value} is not {types:?}"));
                    }
                }
                "enum" => {
                    if !arg.as_array().unwrap().contains(value) {
                        errors.push(format!("{at}: {value} not in {arg}"));
                    }
                }
                "pattern" => {
                    if let Value::String(s) = value
                        && !pattern_matches(arg.as_str().unwrap(), s)
                    {
                        errors.push(format!("{at}: {s:?} does not match {arg}"));
                    }
                }
                "minLength" | "maxLength" => {
                    if let Value::String(s) = value {
                        let n = s.chars().count() as u64;
                        let bound = arg.as_u64().unwrap();
                        let ok = if keyword == "minLength" {
                            n >= bound
                        } else {
                            n <= bound
                        };
                        // Interpolation may lengthen or shorten a value.
                        if !ok && !s.contains("{{") {
                            errors.push(format!("{at}: length {n} breaks {keyword} {bound}"));
                        }
                    }
                }
                "minItems" | "maxItems" => {
                    if let Value::Array(items) = value {
                        let n = items.len() as u64;
                        let bound = arg.as_u64().unwrap();
                        if (keyword == "minItems" && n < bound)
                            || (keyword == "maxItems" && n > bound)
                        {
                            errors.push(format!("{at}: {n} items breaks {keyword} {bound}"));
                        }
                    }
                }
                "required" => {
                    if let Value::Object(o) = value {
                        for key in arg.as_array().unwrap() {
                            if !o.contains_key(key.as_str().unwrap()) {
                                errors.push(format!("{at}: missing {key}"));
                            }
                        }
                    }
                }
                "items" => {
                    if let Value::Array(items) = value {
                        for (i, item) in items.iter().enumerate() {
                            errors.extend(self.check_schema(
                                file,
                                arg,
                                item,
                                &format!("{at}[{i}]"),
                            ));
                        }
                    }
                }
                "properties" | "patternProperties" | "additionalProperties" => {
                    if keyword == "additionalProperties" {
                        errors.extend(self.additional(file, schema, value, at));
                    } else if let (Value::Object(o), Value::Object(props)) = (value, arg) {
                        for (key, item) in o {
                            for (name, sub) in props {
                                let applies = if keyword == "properties" {
                                    name == key
                                } else {
                                    pattern_matches(name, key)
                                };
                                if applies {
                                    let path = format!("{at}.{key}");
                                    errors.extend(self.check_schema(file, sub, item, &path));
                                }
                            }
                        }
                    }
                }
                "anyOf" | "allOf" => {
                    let results: Vec<Vec<String>> = arg
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|sub| self.check_schema(file, sub, value, at))
                        .collect();
                    let passed = results.iter().filter(|r| r.is_empty()).count();
                    if keyword == "anyOf" && passed == 0 {
                        errors.push(format!("{at}: no anyOf branch matches: {results:?}"));
                    }
                    if keyword == "allOf" {
                        errors.extend(results.into_iter().flatten());
                    }
                }
                "not" => {
                    if self.check_schema(file, arg, value, at).is_empty() {
                        errors.push(format!("{at}: matches `not` {arg}"));
                    }
                }
                other => panic!("the schema checker does not know `{other}`"),
            }
        }
        errors
    }

    fn additional(
        &self,
        file: &str,
        schema: &serde_json::Map<String, Value>,
        value: &Value,
        at: &str,
    ) -> Vec<String> {
        let Value::Object(o) = value else {
            return Vec::new();
        };
        let named = |key: &str| {
            schema
                .get("properties")
                .is_some_and(|p| p.get(key).is_some())
                || schema
                    .get("patternProperties")
                    .and_then(Value::as_object)
                    .is_some_and(|p| p.keys().any(|pattern| pattern_matches(pattern, key)))
        };
        let rule = &schema["additionalProperties"];
        o.iter()
            .filter(|(key, _)| !named(key))
            .flat_map(|(key, item)| match rule {
                Value::Bool(false) => vec![format!("{at}: unknown key {key:?}")],
                Value::Bool(true) => Vec::new(),
                sub => self.check_schema(file, sub, item, &format!("{at}.{key}")),
            })
            .collect()
    }
}

/// The two regular-expression shapes the schemas use: `^prefix` and an
/// escaped literal to find anywhere.
fn pattern_matches(pattern: &str, s: &str) -> bool {
    let literal = |p: &str| {
        assert!(
            !p.replace("\\{", "")
                .replace("\\}", "")
                .contains(['\\', '[', '(', '*', '+', '?', '$', '.', '{']),
            "the schema checker cannot match /{pattern}/"
        );
        p.replace("\\{", "{").replace("\\}", "}")
    };
    match pattern.strip_prefix('^') {
        Some(prefix) => s.starts_with(&literal(prefix)),
        None => s.contains(&literal(pattern)),
    }
}
