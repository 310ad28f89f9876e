//! No input makes osci panic: property tests that feed the template loader
//! (JSON, HCL2 in both its syntaxes), var files (every kind), `fmt`, `hcl2_upgrade` and the
//! OUTSCALE config file with mutated templates and arbitrary bytes. Each
//! input must be accepted or refused with an error; a panic fails the test
//! with the (shrunk) input.
//!
//! CI runs a bounded count per target (`OSCI_FUZZ_CASES`, default 300);
//! `bench/fuzz.sh` runs a million inputs or more.

use std::path::{Path, PathBuf};

use osci::oapi::Overrides;
use osci::oapi::credentials::{Environment, resolve};
use osci::template::hcl2::{fmt, upgrade};
use osci::template::{LoadOptions, load};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// What mutations insert: the syntax and names that reach the deep parts
/// of the loaders, and values at their limits.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    "\"",
    "'",
    "`",
    "\\",
    "=",
    ",",
    ":",
    "\n",
    "\r",
    "\0",
    " ",
    "é",
    "${",
    "%{",
    "$${",
    "~}",
    "{{",
    "}}",
    "{{-",
    "-}}",
    "<<EOF\n",
    "\nEOF\n",
    "<<-X\n",
    "#",
    "//",
    "/*",
    "*/",
    "var.",
    "var.a",
    "local.",
    "local.l",
    "source.name",
    "build.ID",
    "path.root",
    "packer.version",
    "data.outscale-omi.u.id",
    "null",
    "true",
    "false",
    "-1",
    "0",
    "1e309",
    "99999999999999999999",
    "-9223372036854775808",
    "3.5",
    "for x in [1]: x",
    "?",
    ":",
    "...",
    "*",
    "[*]",
    "upper(",
    "format(\"%05d\", 3)",
    "formatdate(\"YYYY\", timestamp())",
    "timeadd(\"2024-01-01T00:00:00Z\", \"99999999999h\")",
    "range(100000000)",
    "indent(999999999999, \"x\")",
    "substr(\"ab\", -5, 99)",
    "regex(\"(\", \"x\")",
    "jsondecode(\"[[[1]]]\")",
    "can(var.zz)",
    "try(var.zz, 1)",
    "env(\"HOME\")",
    "file(\"/nonexistent\")",
    "templatefile(\"/dev/null\", {})",
    "{{user `a`}}",
    "{{timestamp}}",
    "{{isotime \"2006\"}}",
    "{{uuid}}",
    "{{ build `ID` }}",
    "{{ .SourceOMI }}",
    "{{ .SourceOMITags.x }}",
    "{{split \"a\" \"b\" 9}}",
    "{{clean_resource_name \"a b\"}}",
    "\"type\": \"shell\"",
    "\"only\": [\"x\"]",
    "\"override\": {}",
    "\"inline\": [1]",
    "\"launch_block_device_mappings\": [{}]",
    "\"source_omi_filter\": {\"filters\": {}}",
    "variable \"v\" {",
    "locals {",
    "local \"l\" {",
    "source \"outscale-bsu\" \"s\" {",
    "build {",
    "data \"outscale-omi\" \"u\" {",
    "provisioner \"shell\" {",
    "post-processor \"manifest\" {",
    "post-processors {",
    "validation {",
    "type = list(map(number))",
    "sensitive = true",
    "condition = false",
    "sources = [source.outscale-bsu.s]",
    "only = [\"outscale-bsu.s\"]",
    "required_plugins {",
    "required_version = \">= 9\"",
    "\"default\"",
    "[default]",
];

/// Seeds: the examples, the fixtures, and an HCL2 template that uses most
/// of the language.
fn seeds(ext: &str) -> Vec<String> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for dir in [repo.join("examples"), repo.join("tests/fixtures/templates")] {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.to_string_lossy().ends_with(ext) {
                out.push(std::fs::read_to_string(path).unwrap());
            }
        }
    }
    if ext == ".pkr.hcl" {
        out.push(RICH_HCL.to_string());
    }
    assert!(!out.is_empty(), "no {ext} seeds");
    out
}

const RICH_HCL: &str = r#"
packer {
  required_version = ">= 1.7.0"
}

variable "a" {
  type    = string
  default = "x"
  validation {
    condition     = can(regex("^[a-z]+$", var.a))
    error_message = "Lower case."
  }
}

variable "sizes" {
  type    = list(number)
  default = [10, 20]
}

variable "tags" {
  type    = map(string)
  default = { team = "platform" }
}

variable "secret" {
  type      = string
  default   = "s3cr3t"
  sensitive = true
}

locals {
  l     = "golden-${upper(var.a)}-${formatdate("YYYYMMDD", timestamp())}"
  sizes = [for s in var.sizes : s * 2 if s > 0]
  t     = merge(var.tags, { name = local.l })
}

data "outscale-omi" "u" {
  filters = {
    image-name = "Ubuntu-*"
  }
  owners      = ["Outscale"]
  most_recent = true
}

source "outscale-bsu" "s" {
  custom_endpoint_oapi = "sim:///nonexistent"
  vm_type              = "tinav5.c2r4p2"
  source_omi           = data.outscale-omi.u.id
  communicator         = "none"
  omi_name             = local.l
  tags                 = local.t
  launch_block_device_mappings {
    device_name = "/dev/sda1"
    volume_size = local.sizes[0]
  }
}

build {
  sources = ["source.outscale-bsu.s"]

  provisioner "shell-local" {
    inline = ["echo ${source.name} ${build.ID} %{ for s in var.sizes }${s}%{ endfor }"]
  }

  post-processor "manifest" {
    custom_data = { a = var.a }
  }
}
"#;

/// A template in HCL's JSON syntax (`*.pkr.json`).
const RICH_PKR_JSON: &str = r#"{
  "variable": {
    "a": {"type": "string", "default": "x"},
    "sizes": {"type": "list(number)", "default": [10]},
    "secret": {"type": "string", "default": "s3cr3t", "sensitive": true}
  },
  "locals": {"l": "golden-${upper(var.a)}"},
  "source": {
    "outscale-bsu": {
      "s": {
        "custom_endpoint_oapi": "sim:///nonexistent",
        "vm_type": "tinav5.c2r4p2",
        "source_omi": "ami-12345678",
        "communicator": "none",
        "omi_name": "${local.l}",
        "tags": {"a": "${var.a}", "n": "${format(\"%d\", var.sizes[0])}"},
        "launch_block_device_mappings": [{"device_name": "/dev/sda1", "volume_size": "${var.sizes[0]}"}]
      }
    }
  },
  "build": {
    "sources": ["source.outscale-bsu.s"],
    "provisioner": [{"shell-local": {"inline": ["echo ${source.name} ${build.ID}"]}}],
    "post-processor": {"manifest": {"custom_data": {"a": "${var.a}"}}}
  }
}"#;

/// A seed with a few mutations: tokens inserted, ranges deleted, replaced
/// or repeated.
fn mutated(seeds: Vec<String>) -> impl Strategy<Value = String> {
    let n = seeds.len();
    (
        0..n,
        prop::collection::vec((any::<u32>(), 0u32..48, 0..TOKENS.len(), 0u8..4), 1..6),
    )
        .prop_map(move |(i, ops)| {
            let mut s = seeds[i].clone();
            for (at, len, token, op) in ops {
                let at = boundary(&s, at as usize % (s.len() + 1));
                let end = boundary(&s, (at + len as usize).min(s.len()));
                match op {
                    0 => s.insert_str(at, TOKENS[token]),
                    1 => s.replace_range(at..end, ""),
                    2 => s.replace_range(at..end, TOKENS[token]),
                    _ => {
                        let piece = s[at..end].to_string();
                        s.insert_str(end, &piece);
                    }
                }
            }
            s
        })
}

fn boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// JSON seeds with a value swapped for another: valid JSON whose values
/// reach the checks behind the parser.
fn json_values(seeds: Vec<String>) -> impl Strategy<Value = String> {
    let n = seeds.len();
    let values: Vec<serde_json::Value> = seeds
        .iter()
        .filter_map(|s| serde_json::from_str(s).ok())
        .collect();
    assert_eq!(values.len(), n, "the JSON seeds parse");
    (
        0..n,
        prop::collection::vec((any::<u32>(), 0..TOKENS.len(), 0u8..6), 1..4),
    )
        .prop_map(move |(i, swaps)| {
            let mut v = values[i].clone();
            for (at, token, kind) in swaps {
                let leaves = leaves(&v);
                let path = &leaves[at as usize % leaves.len()];
                let new = match kind {
                    0 => serde_json::Value::String(TOKENS[token].to_string()),
                    1 => serde_json::json!(at as i64 - i32::MAX as i64),
                    2 => serde_json::json!([TOKENS[token]]),
                    3 => serde_json::json!({ TOKENS[token]: TOKENS[token] }),
                    4 => serde_json::Value::Null,
                    _ => serde_json::json!(at % 2 == 0),
                };
                if let Some(slot) = v.pointer_mut(path) {
                    *slot = new;
                }
            }
            v.to_string()
        })
}

/// The JSON pointers of a value's leaves (and of its empty containers).
fn leaves(v: &serde_json::Value) -> Vec<String> {
    fn walk(v: &serde_json::Value, at: String, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(o) if !o.is_empty() => {
                for (k, item) in o {
                    walk(
                        item,
                        format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                        out,
                    );
                }
            }
            serde_json::Value::Array(a) if !a.is_empty() => {
                for (i, item) in a.iter().enumerate() {
                    walk(item, format!("{at}/{i}"), out);
                }
            }
            _ => out.push(at),
        }
    }
    let mut out = Vec::new();
    walk(v, String::new(), &mut out);
    out
}

/// Mutated seeds (and, for JSON, seeds with values swapped), and now and
/// then arbitrary bytes or a heap of tokens.
fn inputs(ext: &str) -> impl Strategy<Value = Vec<u8>> {
    let json = ext == ".json";
    let text = mutated(seeds(ext));
    let structured = if json {
        json_values(seeds(ext)).boxed()
    } else {
        mutated(seeds(ext)).boxed()
    };
    prop_oneof![
        4 => text.prop_map(String::into_bytes),
        4 => structured.prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..512),
        1 => prop::collection::vec(prop::sample::select(TOKENS.to_vec()), 0..40)
            .prop_map(|t| t.concat().into_bytes()),
    ]
}

fn cases() -> u32 {
    std::env::var("OSCI_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300)
}

/// Runs `check` on `cases()` inputs; a panic fails with the input. `check`
/// answers whether the input was accepted, for the figures printed.
fn fuzz(name: &str, strategy: impl Strategy<Value = Vec<u8>>, check: impl Fn(&[u8]) -> bool) {
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let started = std::time::Instant::now();
    let accepted = std::cell::Cell::new(0u64);
    let result = runner.run(&strategy, |input| {
        if check(&input) {
            accepted.set(accepted.get() + 1);
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
    eprintln!(
        "{name}: {} inputs ({} accepted), no panic, {:.1}s",
        cases(),
        accepted.get(),
        started.elapsed().as_secs_f64()
    );
}

fn scratch(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    (dir, path)
}

/// A loaded template goes on to the offline checks `validate` makes;
/// answers whether it passed them.
fn load_and_check(path: &Path, options: &LoadOptions) -> bool {
    match load(path, options) {
        Ok(t) => t
            .builds
            .iter()
            .all(|b| osci::builders::prepare(b, &t.sensitive_values, "eu-west-2").is_ok()),
        Err(_) => false,
    }
}

#[test]
fn json_templates() {
    let (_dir, path) = scratch("t.json");
    fuzz("json templates", inputs(".json"), |input| {
        std::fs::write(&path, input).unwrap();
        let valid = load_and_check(&path, &LoadOptions::default());
        let _ = upgrade::upgrade(&path);
        valid
    });
}

#[test]
fn hcl2_templates() {
    let (_dir, path) = scratch("t.pkr.hcl");
    fuzz("hcl2 templates", inputs(".pkr.hcl"), |input| {
        std::fs::write(&path, input).unwrap();
        let valid = load_and_check(&path, &LoadOptions::default());
        if let Ok(text) = std::str::from_utf8(input)
            && let Ok(once) = fmt::format(&path, text)
        {
            // Formatting twice changes nothing more.
            assert_eq!(
                fmt::format(&path, &once).ok().as_deref(),
                Some(once.as_str())
            );
        }
        valid
    });
}

#[test]
fn hcl2_json_syntax_templates() {
    let (_dir, path) = scratch("t.pkr.json");
    let strategy = prop_oneof![
        4 => mutated(vec![RICH_PKR_JSON.to_string()]).prop_map(String::into_bytes),
        4 => json_values(vec![RICH_PKR_JSON.to_string()]).prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..512),
    ];
    fuzz("hcl2 json-syntax templates", strategy, |input| {
        std::fs::write(&path, input).unwrap();
        load_and_check(&path, &LoadOptions::default())
    });
}

#[test]
fn var_files() {
    let (dir, template) = scratch("t.pkr.hcl");
    std::fs::write(&template, RICH_HCL).unwrap();
    let json_template = dir.path().join("t.json");
    std::fs::write(
        &json_template,
        r#"{"variables": {"a": "x", "version": "1"}, "builders": [{"type": "osc-bsu", "custom_endpoint_oapi": "sim:///nonexistent", "vm_type": "t", "source_omi": "ami-1", "communicator": "none", "omi_name": "g-{{user `a`}}-{{user `version`}}"}]}"#,
    )
    .unwrap();
    let hcl_vars = dir.path().join("v.pkrvars.hcl");
    let hcl_json_vars = dir.path().join("v.pkrvars.json");
    let json_vars = dir.path().join("v.json");
    let strategy = prop_oneof![
        mutated(vec![
            "[3, 4]\na = \"y\"\nsizes = [1, 2]\ntags = { x = \"y\" }\nsecret = \"z\"\n".into(),
            "{\"a\": \"y\", \"version\": \"2\", \"sizes\": [1], \"tags\": {\"x\": \"${upper(\\\"y\\\")}\"}}".into(),
        ])
        .prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..256),
    ];
    fuzz("var files", strategy, |input| {
        std::fs::write(&hcl_vars, input).unwrap();
        std::fs::write(&hcl_json_vars, input).unwrap();
        std::fs::write(&json_vars, input).unwrap();
        let hcl = load_and_check(
            &template,
            &LoadOptions {
                var_files: vec![hcl_vars.clone()],
                ..LoadOptions::default()
            },
        );
        let hcl_json = load_and_check(
            &template,
            &LoadOptions {
                var_files: vec![hcl_json_vars.clone()],
                ..LoadOptions::default()
            },
        );
        let text = String::from_utf8_lossy(input);
        let flag = text.lines().next().unwrap_or("").to_string();
        let hcl_flag = load_and_check(
            &template,
            &LoadOptions {
                vars: vec![("sizes".into(), flag)],
                ..LoadOptions::default()
            },
        );
        let json = load_and_check(
            &json_template,
            &LoadOptions {
                var_files: vec![json_vars.clone()],
                ..LoadOptions::default()
            },
        );
        hcl || hcl_json || hcl_flag || json
    });
}

#[test]
fn outscale_config_files() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join(".osc/config.json");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    let seed = r#"{"default": {"access_key": "AKIAEXAMPLE", "secret_key": "s3cr3t", "region": "eu-west-2", "endpoints": {"api": "https://api.eu-west-2.outscale.com/api/v1"}, "x509_client_cert": "/nonexistent"}, "ci": {"access_key": "A", "secret_key": "B", "region_name": "us-east-2"}}"#;
    let strategy = prop_oneof![
        4 => mutated(vec![seed.to_string()]).prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..256),
    ];
    fuzz("outscale config files", strategy, |input| {
        std::fs::write(&config, input).unwrap();
        let mut accepted = false;
        for profile in [None, Some("ci")] {
            let var = |name: &str| match (name, profile) {
                ("OSC_PROFILE", Some(p)) => Some(p.to_string()),
                _ => None,
            };
            let env = Environment {
                var: &var,
                home: Some(dir.path().to_path_buf()),
            };
            accepted |= resolve(&Overrides::default(), &env).is_ok();
        }
        accepted
    });
}
