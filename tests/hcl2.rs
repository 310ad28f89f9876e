//! HCL2 templates as Packer users write them: the examples' twins plan as
//! their JSON originals do, `hcl2_upgrade` and `fmt`, a folder template
//! with variables from every source in Packer's order, validation,
//! sensitive values, data sources, and errors that point at the file, line
//! and column.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::workspace::*;
use serde_json::Value;

/// The examples, copied into a workspace (the quickstart's simulator lives
/// under `state/`, relative to where osci runs).
fn examples() -> Workspace {
    let w = Workspace::new();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let copy = Command::new("cp")
        .arg("-r")
        .arg(repo.join("examples"))
        .arg(w.path())
        .status()
        .unwrap();
    assert!(copy.success());
    w
}

/// osci in `w`, with a fixed clock (templates that use the time plan the
/// same twice) and the simulator as the region of templates that name none.
fn run(w: &Workspace, args: &[&str]) -> Output {
    w.osci()
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env(
            "OSC_ENDPOINT_API",
            format!("sim://{}", w.sim_dir().display()),
        )
        .args(args)
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    ok(out);
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every example is in JSON and HCL2, and the two plan byte for byte alike
/// (text and JSON); `hcl2_upgrade` of the JSON one plans alike too, and
/// `fmt -check` passes on what it wrote.
#[test]
fn every_example_has_an_hcl2_twin_that_plans_alike() {
    let w = examples();
    let mut twins = 0;
    for entry in std::fs::read_dir(w.path().join("examples")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".json") else {
            continue;
        };
        let json = format!("examples/{name}");
        let hcl = format!("examples/{stem}.pkr.hcl");
        assert!(
            w.path().join(&hcl).exists(),
            "{json} has no HCL2 twin {hcl}"
        );
        let upgraded = format!("examples/{stem}.upgraded.pkr.hcl");
        ok(&run(
            &w,
            &["hcl2_upgrade", &json, "-output-file", &upgraded],
        ));
        ok(&run(&w, &["fmt", "-check", &upgraded]));
        ok(&run(&w, &["fmt", "-check", &hcl]));
        for flags in [&[][..], &["-json"][..]] {
            let plan = |t: &str| {
                let mut args = vec!["plan"];
                args.extend(flags);
                args.push(t);
                stdout(&run(&w, &args))
            };
            let original = plan(&json);
            assert!(
                original.contains("build.") || original.contains("\"address\""),
                "{original}"
            );
            assert_eq!(plan(&hcl), original, "{hcl} {flags:?}");
            assert_eq!(plan(&upgraded), original, "{upgraded} {flags:?}");
        }
        twins += 1;
    }
    assert!(twins >= 2, "examples checked: {twins}");
}

/// The seed's `packer { required_plugins { outscale … } }` is accepted;
/// another plugin is a clear error naming it, and so is a Packer version
/// constraint osci does not meet.
#[test]
fn the_packer_block_accepts_the_outscale_plugin_only() {
    let w = Workspace::new();
    let template = |packer: &str| {
        std::fs::write(
            w.path().join("t.pkr.hcl"),
            format!("{packer}\n{}", source_block(&w, "")),
        )
        .unwrap();
    };
    template(
        "packer {\n  required_version = \">= 1.7.0\"\n  required_plugins {\n    outscale = {\n      version = \"~> 1\"\n      source  = \"github.com/outscale/outscale\"\n    }\n  }\n}\n",
    );
    // A single file takes no `*.auto.pkrvars.hcl` (this one would not read).
    std::fs::write(w.path().join("junk.auto.pkrvars.hcl"), "not = = valid").unwrap();
    ok(&run(&w, &["validate", "t.pkr.hcl"]));
    template(
        "packer {\n  required_plugins {\n    amazon = {\n      version = \">= 1.2\"\n      source  = \"github.com/hashicorp/amazon\"\n    }\n  }\n}\n",
    );
    let out = run(&w, &["validate", "t.pkr.hcl"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("t.pkr.hcl:3:5")
            && err.contains("amazon")
            && err.contains("github.com/hashicorp/amazon"),
        "{err}"
    );
    template("packer {\n  required_version = \">= 2.0.0\"\n}\n");
    let err = stderr(&run(&w, &["validate", "t.pkr.hcl"]));
    assert!(
        err.contains("t.pkr.hcl:2:3") && err.contains(">= 2.0.0"),
        "{err}"
    );
}

/// A bsu source against the workspace's simulator, with `extra` lines.
fn source_block(w: &Workspace, extra: &str) -> String {
    format!(
        r#"source "outscale-bsu" "web" {{
  custom_endpoint_oapi = "sim://{}"
  vm_type              = "tinav5.c2r4p2"
  source_omi_filter {{
    filters = {{
      image-name = "Ubuntu-22.04-*"
    }}
    owners      = ["Outscale"]
    most_recent = true
  }}
  communicator = "none"
  omi_name     = "golden-web"
{extra}
}}

build {{
  sources = ["source.outscale-bsu.web"]
}}
"#,
        w.sim_dir().display()
    )
}

/// The tags the plan gives build `web`'s OMI.
fn planned_tags(plan: &str) -> serde_json::Map<String, Value> {
    let plan: Value = serde_json::from_str(plan).unwrap();
    let changes = plan["resource_changes"].as_array().unwrap();
    let tags = changes
        .iter()
        .find(|n| n["address"] == "build.web.tags")
        .unwrap_or_else(|| panic!("no tags change in {plan}"));
    tags["after"]["tags"].as_object().unwrap().clone()
}

/// A folder template: variables declared in three files (one in HCL's
/// JSON syntax), the source in one, the build in another; values from defaults, `PKR_VAR_`, a
/// `.auto.pkrvars.hcl`, `-var-file` and `-var`, later ones winning in that
/// order, as in Packer. A failed `validation` shows its message; a
/// `sensitive` value is masked in the plan and in provisioner output.
#[test]
fn a_folder_template_takes_variables_in_packers_order() {
    let w = Workspace::new();
    let dir = w.path().join("golden");
    std::fs::create_dir(&dir).unwrap();
    let declare = |names: &[&str]| -> String {
        names
            .iter()
            .map(|v| {
                format!("variable \"{v}\" {{\n  type    = string\n  default = \"default\"\n}}\n\n")
            })
            .collect()
    };
    let mut vars = declare(&["a", "b"]);
    vars.push_str(
        r#"variable "size" {
  type    = number
  default = 10
  validation {
    condition     = var.size >= 10 && var.size <= 100
    error_message = "The size is between 10 and 100 GiB."
  }
}

locals {
  owner = "team-${upper(var.a)}"
}
"#,
    );
    std::fs::write(dir.join("variables.pkr.hcl"), vars).unwrap();
    let source = source_block(
        &w,
        r#"  launch_block_device_mappings {
    device_name = "/dev/sda1"
    volume_size = var.size
  }
  tags = {
    a     = var.a
    b     = var.b
    c     = var.c
    d     = var.d
    e     = var.e
    owner = local.owner
    token = var.token
  }"#,
    );
    let (source, build) = source.split_at(source.find("build {").unwrap());
    assert!(build.contains("source.outscale-bsu.web"));
    std::fs::write(
        dir.join("source.pkr.hcl"),
        format!("{}{source}", declare(&["c", "d"])),
    )
    .unwrap();
    // The build, and the last variables, in HCL's JSON syntax, as Packer
    // reads `*.pkr.json`; its provisioner prints the sensitive token.
    std::fs::write(
        dir.join("build.pkr.json"),
        r#"{
  "variable": {
    "e": {"type": "string", "default": "default"},
    "token": {"type": "string", "default": "s3cr3t-t0ken", "sensitive": true},
    "pin": {"type": "number", "default": 1234, "sensitive": true}
  },
  "build": {
    "sources": ["source.outscale-bsu.web"],
    "provisioner": {"shell-local": {"inline": ["echo token ${var.token} for ${var.a}"]}}
  }
}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("team.auto.pkrvars.hcl"),
        "c = \"auto\"\nd = \"auto\"\ne = \"auto\"\n",
    )
    .unwrap();
    std::fs::write(
        w.path().join("extra.pkrvars.hcl"),
        "d = \"file\"\ne = \"file\"\n",
    )
    .unwrap();

    let plan = |extra: &[&str]| {
        // In the order given, the later winning: d from the file, e from
        // the flag.
        let mut args = vec![
            "plan",
            "-json",
            "-var",
            "d=early-flag",
            "-var-file=extra.pkrvars.hcl",
            "-var",
            "e=flag",
        ];
        args.extend(extra);
        args.push("golden");
        w.osci()
            .env("PKR_VAR_b", "environment")
            .env("PKR_VAR_c", "environment")
            .args(&args)
            .output()
            .unwrap()
    };
    let out = plan(&[]);
    let tags = planned_tags(&stdout(&out));
    for (k, v) in [
        ("a", "default"),
        ("b", "environment"),
        ("c", "auto"),
        ("d", "file"),
        ("e", "flag"),
        ("owner", "team-DEFAULT"),
        ("token", "<sensitive>"),
    ] {
        assert_eq!(tags[k], v, "{k}: {tags:?}");
    }
    assert!(!String::from_utf8_lossy(&out.stdout).contains("s3cr3t-t0ken"));
    let text = w.osci().args(["plan", "golden"]).output().unwrap();
    let text = stdout(&text);
    assert!(
        text.contains("<sensitive>") && !text.contains("s3cr3t-t0ken"),
        "{text}"
    );

    // The provisioner's output hides the token too.
    let out = w
        .osci()
        .args(["build", "-var", "size=12", "golden"])
        .output()
        .unwrap();
    let err = ok(&out);
    assert!(
        err.contains("token <sensitive> for default") && !err.contains("s3cr3t-t0ken"),
        "{err}"
    );

    let out = plan(&["-var", "size=500"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("The size is between 10 and 100 GiB.")
            && err.contains("variable \"size\" validation")
            && err.contains("500"),
        "{err}"
    );
    let out = plan(&["-var", "size=ten"]);
    let err = stderr(&out);
    assert!(
        err.contains("-var size") && err.contains("a number is required"),
        "{err}"
    );
    // A sensitive value given wrong is not shown either.
    let out = plan(&["-var", "pin=s3cr3t-pin"]);
    let err = stderr(&out);
    assert!(
        err.contains("-var pin") && err.contains("<sensitive>") && !err.contains("s3cr3t-pin"),
        "{err}"
    );
    let out = plan(&["-var", "colour=red"]);
    let err = stderr(&out);
    assert!(
        err.contains("-var colour: not a variable of the template"),
        "{err}"
    );
}

/// Errors name the file, line and column, the block and the attribute,
/// with a suggestion for a misspelt name.
#[test]
fn errors_point_at_file_line_and_column() {
    let w = Workspace::new();
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "a misspelt builder key",
            source_block(&w, "  vm_typ = \"x\""),
            vec!["t.pkr.hcl:13:3", "build \"web\"", "key \"vm_typ\"", "did you mean `vm_type`?"],
        ),
        (
            "a misspelt variable",
            format!("variable \"region\" {{\n  default = \"eu-west-2\"\n}}\n{}", source_block(&w, "  region = var.regoin")),
            vec!["t.pkr.hcl:16:3", "source \"outscale-bsu\" \"web\"", "key \"region\"", "did you mean `var.region`?"],
        ),
        (
            "a misspelt function",
            source_block(&w, "  omi_description = uper(\"x\")"),
            vec!["t.pkr.hcl:13:3", "key \"omi_description\"", "did you mean `upper`?"],
        ),
        (
            "env outside a default",
            source_block(&w, "  omi_description = env(\"HOME\")"),
            vec!["t.pkr.hcl:13:3", "env() is allowed only in the default of a variable"],
        ),
        (
            "a syntax error",
            "source \"outscale-bsu\" \"web\" {\n  vm_type = \n}\n".to_string(),
            vec!["t.pkr.hcl:2:13", "HCL syntax error"],
        ),
        (
            "an unknown block",
            format!("sorce \"outscale-bsu\" \"x\" {{}}\n{}", source_block(&w, "")),
            vec!["t.pkr.hcl:1:1", "unknown block `sorce`", "did you mean `source`?"],
        ),
        (
            "an unknown builder type",
            source_block(&w, "").replace("source \"outscale-bsu\"", "source \"amazon-ebs\""),
            vec!["t.pkr.hcl:1:1", "unknown builder type `amazon-ebs`"],
        ),
        (
            "an unknown data source type",
            format!("data \"amazon-ami\" \"ubuntu\" {{}}\n{}", source_block(&w, "")),
            vec!["t.pkr.hcl:1:1", "data \"amazon-ami\" \"ubuntu\"", "unknown data source type `amazon-ami`"],
        ),
        (
            "a build of an undeclared source",
            source_block(&w, "").replace("[\"source.outscale-bsu.web\"]", "[\"source.outscale-bsu.wbe\"]"),
            vec!["t.pkr.hcl:17:3", "no source `source.outscale-bsu.wbe`", "did you mean `source.outscale-bsu.web`?"],
        ),
        (
            "a local that refers to itself",
            format!("locals {{\n  a = local.b\n  b = local.a\n}}\n{}", source_block(&w, "")),
            vec!["t.pkr.hcl:2:3", "cycle: a → b → a"],
        ),
        (
            "a required variable without a value",
            format!("variable \"name\" {{\n  type = string\n}}\n{}", source_block(&w, "")),
            vec!["t.pkr.hcl:1:1", "variable \"name\" has no value", "PKR_VAR_name"],
        ),
        (
            "an unknown provisioner option",
            source_block(&w, "").replace(
                "sources = [\"source.outscale-bsu.web\"]",
                "sources = [\"source.outscale-bsu.web\"]\n  provisioner \"shell-local\" {\n    inlin = [\"true\"]\n  }",
            ),
            vec!["t.pkr.hcl", "unknown field `inlin`"],
        ),
    ];
    for (what, text, parts) in cases {
        std::fs::write(w.path().join("t.pkr.hcl"), &text).unwrap();
        for command in ["validate", "plan"] {
            let out = run(&w, &[command, "t.pkr.hcl"]);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(1), "{what}: {command}: {err}");
            for part in &parts {
                assert!(
                    err.contains(part),
                    "{what}: {command}: no {part:?} in {err}"
                );
            }
            assert!(!err.contains("panicked"), "{what}: {err}");
        }
    }
}

/// `source_omi = data.outscale-omi.NAME.id` plans as the same filters in
/// `source_omi_filter` do; its outputs where they cannot be known yet are
/// refused.
#[test]
fn the_omi_data_source_chooses_the_source_omi() {
    let w = Workspace::new();
    let with_filter = source_block(&w, "");
    std::fs::write(w.path().join("filter.pkr.hcl"), &with_filter).unwrap();
    let data = "data \"outscale-omi\" \"ubuntu\" {\n  filters = {\n    image-name = \"Ubuntu-22.04-*\"\n  }\n  owners      = [\"Outscale\"]\n  most_recent = true\n}\n";
    let start = with_filter.find("  source_omi_filter {").unwrap();
    let end = with_filter[start..].find("\n  }\n").unwrap() + start + 5;
    let with_data = format!(
        "{data}{}  source_omi = data.outscale-omi.ubuntu.id\n{}",
        &with_filter[..start],
        &with_filter[end..]
    );
    std::fs::write(w.path().join("data.pkr.hcl"), &with_data).unwrap();
    let plan = |t: &str| stdout(&run(&w, &["plan", "-json", "-state=s.json", t]));
    assert_eq!(plan("data.pkr.hcl"), plan("filter.pkr.hcl"));

    let other_use = with_data.replace(
        "  omi_name     = \"golden-web\"",
        "  omi_name = data.outscale-omi.ubuntu.name",
    );
    std::fs::write(w.path().join("data.pkr.hcl"), other_use).unwrap();
    // The source's name is known once the plan reads it: in the fields
    // rendered then, not in the OMI's name.
    let err = stderr(&run(&w, &["validate", "data.pkr.hcl"]));
    assert!(
        err.contains("key \"omi_name\"") && err.contains("is only rendered in tags"),
        "{err}"
    );
}

/// `osci build -force -on-error=abort t.pkr.hcl`: Packer's command line on
/// an HCL2 template; provisioners and post-processors in `build` blocks,
/// with `only`, `source.name`, `build.ID` and a `post-processors` chain.
#[test]
fn build_force_on_an_hcl2_template_with_provisioners_and_post_processors() {
    let w = Workspace::new();
    let two = format!(
        "{}\n{}",
        source_block(&w, "").split("build {").next().unwrap(),
        source_block(&w, "")
            .split("build {")
            .next()
            .unwrap()
            .replace("\"web\"", "\"db\"")
            .replace("golden-web", "golden-db"),
    );
    let template = format!(
        r#"{two}
build {{
  name    = "golden"
  sources = ["source.outscale-bsu.web", "source.outscale-bsu.db"]

  provisioner "shell-local" {{
    inline = ["echo ${{source.name}} on ${{build.ID}} >> ran.log"]
  }}

  provisioner "shell-local" {{
    only   = ["outscale-bsu.db"]
    inline = ["echo only-db >> ran.log"]
  }}

  post-processor "manifest" {{
    output = "manifest.json"
    custom_data = {{
      source = source.name
    }}
  }}

  post-processors {{
    post-processor "shell-local" {{
      except = ["outscale-bsu.web"]
      inline = ["echo post ${{source.name}} >> ran.log"]
    }}
  }}
}}
"#
    );
    std::fs::write(w.path().join("t.pkr.hcl"), &template).unwrap();
    // An OMI of the same name, made by another state: -force replaces it.
    // Packer's names of an HCL2 build, TYPE.NAME and BUILD.TYPE.NAME,
    // select it.
    ok(&run(
        &w,
        &[
            "build",
            "-state=other.json",
            "-only=golden.outscale-bsu.web",
            "t.pkr.hcl",
        ],
    ));
    let other: Value =
        serde_json::from_slice(&std::fs::read(w.path().join("other.json")).unwrap()).unwrap();
    let builds: Vec<&Value> = other["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["build"])
        .collect();
    assert!(
        !builds.is_empty() && builds.iter().all(|b| *b == "web"),
        "{other}"
    );
    let out = run(&w, &["build", "t.pkr.hcl"]);
    assert!(
        stderr(&out).contains("force_deregister"),
        "{}",
        stderr(&out)
    );
    std::fs::remove_file(w.path().join("ran.log")).unwrap();
    std::fs::remove_file(w.path().join("manifest.json")).unwrap();
    ok(&run(
        &w,
        &["build", "-force", "-on-error=abort", "t.pkr.hcl"],
    ));

    let log = std::fs::read_to_string(w.path().join("ran.log")).unwrap();
    let mut lines: Vec<&str> = log.lines().collect();
    lines.sort();
    assert_eq!(lines.len(), 4, "{log}");
    assert!(
        lines[0].starts_with("db on i-") && lines[1] == "only-db",
        "{log}"
    );
    assert_eq!(lines[2], "post db", "{log}");
    assert!(lines[3].starts_with("web on i-"), "{log}");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(w.path().join("manifest.json")).unwrap()).unwrap();
    let mut built: Vec<(String, String)> = manifest["builds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["custom_data"]["source"].as_str().unwrap().to_string(),
                b["artifact_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    built.sort();
    assert_eq!(built.len(), 2);
    assert_eq!(built[0].0, "db");
    assert!(built[1].1.starts_with("eu-west-2:ami-"), "{built:?}");
}
