//! Provisioning a build VM: the SSH communicator and the `shell`, `file`
//! and `shell-local` provisioners, with Packer's options and semantics.
//!
//! Provisioners are checked, and the local files they read (scripts,
//! uploads) hashed into the build's input digest, at plan time
//! ([`inputs`]); they run at apply time ([`run`]), in template order, each
//! with the options every Packer provisioner has (`pause_before`,
//! `max_retries`, `timeout`).

pub mod chroot;
mod file;
pub mod session;
mod shell;
pub(crate) mod shell_local;
pub mod ssh;

pub use session::Session;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::template::{Provisioner, parse_go_duration};

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// A provisioner's options are wrong; `at` names it.
    #[error("{at}: {message}")]
    Config { at: String, message: String },
    /// A provisioner ran and failed.
    #[error("{at}: {message}")]
    Failed { at: String, message: String },
    #[error("{at}: {source}")]
    Ssh {
        at: String,
        #[source]
        source: ssh::SshError,
    },
    #[error("interrupted")]
    Interrupted,
}

/// What provisioners know of the build they run in.
pub struct Context<'a> {
    pub build_name: &'a str,
    /// `outscale-bsu`, what `PACKER_BUILDER_TYPE` says.
    pub builder_type: &'a str,
    /// What `{{ build `Key` }}` answers (`ID`, `Host`, `SourceOMI`,
    /// `BuildRegion`, …), also in `shell-local`'s environment.
    pub build: BTreeMap<String, String>,
    /// Relative paths of scripts and files are read from here (the
    /// template's folder).
    pub base_dir: &'a Path,
    /// Receives each line of output.
    pub output: &'a (dyn Fn(&str) + Sync),
    pub cancelled: &'a (dyn Fn() -> bool + Sync),
}

/// A provisioner's options, checked.
enum Step {
    Shell(shell::Shell),
    File(file::File),
    ShellLocal(shell_local::ShellLocal),
}

/// The options every provisioner has.
struct Common {
    pause_before: Duration,
    max_retries: u32,
    timeout: Option<Duration>,
}

struct Checked {
    at: String,
    common: Common,
    step: Step,
}

fn label(index: usize, kind: &str) -> String {
    format!("provisioners[{index}] ({kind})")
}

/// Deserializes a provisioner's own options, naming the key at fault.
pub(crate) fn options<T: DeserializeOwned>(
    config: Map<String, Value>,
    at: &str,
) -> Result<T, ProvisionError> {
    serde_path_to_error::deserialize(Value::Object(config)).map_err(|e| {
        let path = e.path().to_string();
        let message = if path == "." {
            e.inner().to_string()
        } else {
            format!("{path}: {}", e.inner())
        };
        ProvisionError::Config {
            at: at.to_string(),
            message,
        }
    })
}

fn duration(
    config: &mut Map<String, Value>,
    key: &str,
    at: &str,
) -> Result<Option<Duration>, ProvisionError> {
    match config.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            parse_go_duration(&s)
                .map(Some)
                .ok_or_else(|| ProvisionError::Config {
                    at: at.to_string(),
                    message: format!("{key}: `{s}` is not a duration such as \"30s\" or \"5m\""),
                })
        }
        Some(other) => Err(ProvisionError::Config {
            at: at.to_string(),
            message: format!("{key}: expected a duration such as \"30s\", not {other}"),
        }),
    }
}

fn check(p: &Provisioner) -> Result<Checked, ProvisionError> {
    let at = label(p.index, &p.kind);
    let Value::Object(config) = &p.config else {
        return Err(ProvisionError::Config {
            at,
            message: "expected an object of options".into(),
        });
    };
    let mut config = config.clone();
    let pause_before = duration(&mut config, "pause_before", &at)?.unwrap_or_default();
    let timeout = duration(&mut config, "timeout", &at)?;
    // Weakly typed, as Packer reads it: `"3"` is 3.
    let max_retries =
        crate::template::weak::int::<_, u32>(config.remove("max_retries").unwrap_or(Value::Null))
            .map_err(|e| ProvisionError::Config {
            at: at.clone(),
            message: format!("max_retries: {e}"),
        })?;
    let step = match p.kind.as_str() {
        "shell" => Step::Shell(shell::Shell::check(options(config, &at)?, &at)?),
        "file" => Step::File(file::File::check(options(config, &at)?, &at)?),
        "shell-local" => {
            Step::ShellLocal(shell_local::ShellLocal::check(options(config, &at)?, &at)?)
        }
        other => {
            return Err(ProvisionError::Config {
                at,
                message: format!(
                    "osci has no `{other}` provisioner (it has shell, file and shell-local)"
                ),
            });
        }
    };
    Ok(Checked {
        at,
        common: Common {
            pause_before,
            max_retries,
            timeout,
        },
        step,
    })
}

/// Resolves a path of the template against its folder.
fn local_path(base: &Path, path: &str) -> PathBuf {
    base.join(path)
}

/// Checks the provisioners and answers what of the local disk they read,
/// as (name, bytes) pairs for the input digest: editing a script or an
/// uploaded file changes the digest, and so the plan.
pub fn inputs(
    provisioners: &[Provisioner],
    base_dir: &Path,
) -> Result<Vec<(String, Vec<u8>)>, ProvisionError> {
    let mut out = Vec::new();
    for p in provisioners {
        let checked = check(p)?;
        let files = match &checked.step {
            Step::Shell(s) => s.local_files(),
            Step::File(f) => f.local_files(),
            Step::ShellLocal(s) => s.local_files(),
        };
        for path in files {
            let root = local_path(base_dir, &path);
            let error = |e: std::io::Error| ProvisionError::Config {
                at: checked.at.clone(),
                message: format!("reading {}: {e}", root.display()),
            };
            for (relative, file) in files_under(&root).map_err(error)? {
                let name = if relative.is_empty() {
                    path.clone()
                } else {
                    format!("{path}/{relative}")
                };
                out.push((name, std::fs::read(&file).map_err(error)?));
            }
        }
    }
    Ok(out)
}

/// The files under `root` (path relative to it, full path), in name
/// order; `root` itself, with an empty relative path, if it is a file.
fn files_under(root: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    if !std::fs::metadata(root)?.is_dir() {
        return Ok(vec![(String::new(), root.to_path_buf())]);
    }
    let mut out = Vec::new();
    let mut stack = vec![(String::new(), root.to_path_buf())];
    while let Some((prefix, dir)) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            if entry.file_type()?.is_dir() {
                stack.push((format!("{name}/"), entry.path()));
            } else {
                out.push((name, entry.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Runs the provisioners in order on `session` (`None` with communicator
/// `none`: only `shell-local` can run then).
pub async fn run(
    provisioners: &[Provisioner],
    session: Option<&Session>,
    ctx: &Context<'_>,
) -> Result<(), ProvisionError> {
    for p in provisioners {
        let p = with_build_data(p, ctx)?;
        let checked = check(&p)?;
        let at = checked.at.clone();
        sleep(checked.common.pause_before, ctx).await?;
        let mut attempt = 0;
        loop {
            let once = run_step(&checked, session, ctx);
            let result = match checked.common.timeout {
                Some(limit) => tokio::time::timeout(limit, once).await.unwrap_or_else(|_| {
                    Err(ProvisionError::Failed {
                        at: at.clone(),
                        message: format!("did not finish within its timeout ({limit:?})"),
                    })
                }),
                None => once.await,
            };
            match result {
                Err(e)
                    if attempt < checked.common.max_retries
                        && !matches!(e, ProvisionError::Interrupted) =>
                {
                    attempt += 1;
                    (ctx.output)(&format!(
                        "{at} failed ({e}); retrying ({attempt}/{})",
                        checked.common.max_retries
                    ));
                    sleep(Duration::from_secs(2), ctx).await?;
                }
                other => {
                    other?;
                    break;
                }
            }
        }
    }
    Ok(())
}

/// Renders the `{{ build `Key` }}` actions of a provisioner's options now
/// that the build has a VM.
fn with_build_data(p: &Provisioner, ctx: &Context<'_>) -> Result<Provisioner, ProvisionError> {
    let config = render_build_data(&p.config, ctx).map_err(|message| ProvisionError::Config {
        at: label(p.index, &p.kind),
        message,
    })?;
    Ok(Provisioner {
        config,
        ..p.clone()
    })
}

/// Renders the `{{ build `Key` }}` actions of options, leaving
/// `execute_command` (rendered per script, with `.Vars` and `.Path`).
pub(crate) fn render_build_data(config: &Value, ctx: &Context<'_>) -> Result<Value, String> {
    fn walk(value: &mut Value, ctx: &Context<'_>) -> Result<(), String> {
        match value {
            Value::String(s) => {
                *s = crate::template::render_provisioner(s, &BTreeMap::new(), &ctx.build)?;
            }
            Value::Array(items) => {
                for item in items {
                    walk(item, ctx)?;
                }
            }
            Value::Object(map) => {
                for (key, item) in map.iter_mut() {
                    if key != "execute_command" {
                        walk(item, ctx)?;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
    let mut config = config.clone();
    walk(&mut config, ctx)?;
    Ok(config)
}

async fn run_step(
    checked: &Checked,
    session: Option<&Session>,
    ctx: &Context<'_>,
) -> Result<(), ProvisionError> {
    let at = &checked.at;
    let remote = || {
        session.ok_or_else(|| ProvisionError::Config {
            at: at.clone(),
            message: "runs on the VM, and the communicator is \"none\"".into(),
        })
    };
    match &checked.step {
        Step::Shell(s) => s.run(remote()?, ctx, at).await,
        Step::File(f) => f.run(remote()?, ctx, at).await,
        Step::ShellLocal(s) => s.run(ctx, at).await,
    }
}

async fn sleep(duration: Duration, ctx: &Context<'_>) -> Result<(), ProvisionError> {
    let until = tokio::time::Instant::now() + duration;
    while tokio::time::Instant::now() < until {
        if (ctx.cancelled)() {
            return Err(ProvisionError::Interrupted);
        }
        let step = until.saturating_duration_since(tokio::time::Instant::now());
        tokio::time::sleep(step.min(Duration::from_millis(250))).await;
    }
    Ok(())
}

/// Inline commands as one script, as Packer writes them: the shebang
/// line, then each command on its own line.
fn inline_script(shebang: &str, commands: &[String]) -> Vec<u8> {
    let mut text = format!("#!{shebang}\n");
    for command in commands {
        text.push_str(command);
        text.push('\n');
    }
    text.into_bytes()
}

/// Splits a byte stream into lines for [`Context::output`].
struct Lines<'a> {
    pending: Vec<u8>,
    output: &'a (dyn Fn(&str) + Sync),
}

impl<'a> Lines<'a> {
    fn new(output: &'a (dyn Fn(&str) + Sync)) -> Self {
        Lines {
            pending: Vec::new(),
            output,
        }
    }

    fn push(&mut self, data: &[u8]) {
        self.pending.extend_from_slice(data);
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line[..line.len() - 1]);
            (self.output)(text.trim_end_matches('\r'));
        }
    }

    fn finish(&mut self) {
        if !self.pending.is_empty() {
            let text = String::from_utf8_lossy(&self.pending).into_owned();
            (self.output)(&text);
            self.pending.clear();
        }
    }
}

/// `KEY=VALUE` pairs a script sees: Packer's own, then
/// `environment_vars`, then `env`.
fn environment(
    ctx: &Context<'_>,
    environment_vars: &[String],
    env: &BTreeMap<String, String>,
) -> Vec<(String, String)> {
    let mut vars = vec![
        (
            "PACKER_BUILDER_TYPE".to_string(),
            ctx.builder_type.to_string(),
        ),
        ("PACKER_BUILD_NAME".to_string(), ctx.build_name.to_string()),
    ];
    for pair in environment_vars {
        if let Some((k, v)) = pair.split_once('=') {
            vars.push((k.to_string(), v.to_string()));
        }
    }
    vars.extend(env.iter().map(|(k, v)| (k.clone(), v.clone())));
    vars
}

/// Exactly one of the options `names` must be given (`given` says which
/// are).
fn exactly_one(given: &[bool], names: &[&str], at: &str) -> Result<(), ProvisionError> {
    let list = names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let message = match given.iter().filter(|g| **g).count() {
        1 => return Ok(()),
        0 => format!("give one of {list}"),
        _ => format!("{list} exclude each other: keep one"),
    };
    Err(ProvisionError::Config {
        at: at.to_string(),
        message,
    })
}

/// Wraps an SSH failure of the provisioner at `at`.
fn ssh_failed(at: &str) -> impl Fn(ssh::SshError) -> ProvisionError + Copy + '_ {
    move |source| ProvisionError::Ssh {
        at: at.to_string(),
        source,
    }
}

/// `environment_vars` entries must be `KEY=VALUE`.
fn check_environment_vars(vars: &[String], at: &str) -> Result<(), ProvisionError> {
    match vars
        .iter()
        .find(|v| v.split_once('=').is_none_or(|(k, _)| k.is_empty()))
    {
        Some(bad) => Err(ProvisionError::Config {
            at: at.to_string(),
            message: format!("environment_vars: `{bad}` is not KEY=VALUE"),
        }),
        None => Ok(()),
    }
}

/// The `{{ .Vars }}` string: each pair through `format` (Packer's
/// `env_var_format`, `%s='%s' ` by default), values single-quote escaped.
fn vars_string(vars: &[(String, String)], format: &str) -> String {
    vars.iter()
        .map(|(k, v)| {
            let escaped = v.replace('\'', r#"'"'"'"#);
            format.replacen("%s", k, 1).replacen("%s", &escaped, 1)
        })
        .collect()
}

/// The valid exit codes, `[0]` unless the template says.
fn exit_ok(valid: &Option<Vec<u32>>, code: u32) -> bool {
    valid.as_deref().unwrap_or(&[0]).contains(&code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vars_are_quoted() {
        let vars = vec![("A".to_string(), "it's".to_string())];
        assert_eq!(vars_string(&vars, "%s='%s' "), r#"A='it'"'"'s' "#);
    }

    #[test]
    fn lines_split_across_chunks() {
        let seen = std::sync::Mutex::new(Vec::new());
        let sink = |l: &str| seen.lock().unwrap().push(l.to_string());
        let mut lines = Lines::new(&sink);
        lines.push(b"a\r\nb");
        lines.push(b"c\n");
        lines.push(b"tail");
        lines.finish();
        assert_eq!(*seen.lock().unwrap(), ["a", "bc", "tail"]);
    }

    #[test]
    fn unknown_options_and_types_are_named() {
        let p = |kind: &str, config: Value| Provisioner {
            index: 0,
            kind: kind.into(),
            config,
        };
        let dir = Path::new("/nonexistent");
        let e = inputs(&[p("shell", serde_json::json!({"inlin": ["x"]}))], dir)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("provisioners[0] (shell)") && e.contains("inlin"),
            "{e}"
        );
        let e = inputs(&[p("ansible", serde_json::json!({}))], dir)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("no `ansible` provisioner"), "{e}");
        let e = inputs(&[p("shell", serde_json::json!({"script": "nope.sh"}))], dir)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("nope.sh"), "{e}");
    }
}
