//! `osci hcl2_upgrade` and `osci fmt`: the HCL2 tooling Packer users reach
//! for.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use osci::template::hcl2::{fmt, upgrade};

use super::args::{FmtArgs, UpgradeArgs};

/// Writes the JSON template as HCL2 beside it (`t.json` → `t.json.pkr.hcl`,
/// as Packer names it) or where `-output-file` says.
pub fn hcl2_upgrade(args: UpgradeArgs) -> anyhow::Result<()> {
    let text = upgrade::upgrade(&args.template)?;
    let output = args.output_file.unwrap_or_else(|| {
        let mut name = args.template.as_os_str().to_owned();
        name.push(".pkr.hcl");
        PathBuf::from(name)
    });
    std::fs::write(&output, text).with_context(|| format!("writing {}", output.display()))?;
    eprintln!(
        "Wrote {}: check it with `osci validate {}`.",
        output.display(),
        output.display()
    );
    Ok(())
}

/// Formats the HCL2 files of the target; with `-check`, exits 3 when one is
/// not formatted (and changes nothing).
pub fn fmt(args: FmtArgs) -> anyhow::Result<ExitCode> {
    let files = if args.target.is_dir() {
        let mut files = Vec::new();
        collect(&args.target, args.recursive, &mut files)?;
        files.sort();
        files
    } else {
        vec![args.target.clone()]
    };
    let mut unformatted = false;
    for file in &files {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let formatted = fmt::format(file, &text)?;
        if formatted == text {
            continue;
        }
        unformatted = true;
        println!("{}", file.display());
        if args.diff {
            let diff = similar::TextDiff::from_lines(&text, &formatted);
            print!(
                "{}",
                diff.unified_diff()
                    .header(&file.display().to_string(), &file.display().to_string())
            );
        }
        if args.write && !args.check {
            std::fs::write(file, formatted)
                .with_context(|| format!("writing {}", file.display()))?;
        }
    }
    Ok(if args.check && unformatted {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

fn collect(dir: &Path, recursive: bool, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let name = path.to_string_lossy();
        if path.is_dir() {
            if recursive {
                collect(&path, recursive, out)?;
            }
        } else if name.ends_with(".pkr.hcl") || name.ends_with(".pkrvars.hcl") {
            out.push(path);
        }
    }
    Ok(())
}
