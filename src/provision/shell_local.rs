//! The `shell-local` provisioner: runs commands on the machine osci runs
//! on, with the build's variables (`SourceOMI`, `BuildRegion`, `ID`, …) in
//! their environment.

use std::collections::BTreeMap;
use std::process::Stdio;

use serde::Deserialize;
use tokio::io::AsyncReadExt;

use super::{Context, Lines, ProvisionError, environment, exit_ok, local_path, vars_string};
use crate::template::{render_provisioner, weak};

const DEFAULT_SHEBANG: &str = "/bin/sh -e";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShellLocal {
    command: Option<String>,
    inline: Vec<String>,
    script: Option<String>,
    scripts: Vec<String>,
    environment_vars: Vec<String>,
    env: BTreeMap<String, String>,
    execute_command: Option<Vec<String>>,
    inline_shebang: Option<String>,
    env_var_format: Option<String>,
    valid_exit_codes: Option<Vec<u32>>,
    only_on: Vec<String>,
    /// Windows Subsystem for Linux paths: nothing to translate here.
    #[serde(rename = "use_linux_pathing", deserialize_with = "weak::bool")]
    _use_linux_pathing: bool,
    tempfile_extension: Option<String>,
}

/// Hands what `reader` gives to `output`, line by line.
async fn pump(mut reader: impl tokio::io::AsyncRead + Unpin, output: &(dyn Fn(&str) + Sync)) {
    let mut lines = Lines::new(output);
    let mut buf = [0u8; 8192];
    while let Ok(n) = reader.read(&mut buf).await {
        if n == 0 {
            break;
        }
        lines.push(&buf[..n]);
    }
    lines.finish();
}

impl ShellLocal {
    pub fn check(self, at: &str) -> Result<ShellLocal, ProvisionError> {
        super::exactly_one(
            &[
                self.command.is_some(),
                !self.inline.is_empty(),
                self.script.is_some(),
                !self.scripts.is_empty(),
            ],
            &["command", "inline", "script", "scripts"],
            at,
        )?;
        let config = |message: &str| {
            Err(ProvisionError::Config {
                at: at.to_string(),
                message: message.to_string(),
            })
        };
        if let Some(cmd) = &self.execute_command
            && cmd.is_empty()
        {
            return config("execute_command: give the program and its arguments");
        }
        super::check_environment_vars(&self.environment_vars, at)?;
        Ok(self)
    }

    pub fn local_files(&self) -> Vec<String> {
        self.script.iter().chain(&self.scripts).cloned().collect()
    }

    pub async fn run(&self, ctx: &Context<'_>, at: &str) -> Result<(), ProvisionError> {
        if !self.only_on.is_empty() && !self.only_on.iter().any(|os| os == std::env::consts::OS) {
            (ctx.output)(&format!("skipped: only_on {:?}", self.only_on));
            return Ok(());
        }
        let failed = |message: String| ProvisionError::Failed {
            at: at.to_string(),
            message,
        };
        let mut vars = environment(ctx, &self.environment_vars, &self.env);
        vars.extend(ctx.build.iter().map(|(k, v)| (k.clone(), v.clone())));
        let format = self.env_var_format.as_deref().unwrap_or("%s='%s' ");
        let inline: Vec<String> = match &self.command {
            Some(c) => vec![c.clone()],
            None => self.inline.clone(),
        };
        // Each script runs from an executable temporary copy (inline
        // commands become one, as in Packer), so a script file need not be
        // executable itself.
        let mut bodies: Vec<(String, Vec<u8>)> = Vec::new();
        if !inline.is_empty() {
            let shebang = self.inline_shebang.as_deref().unwrap_or(DEFAULT_SHEBANG);
            bodies.push((
                "inline script".to_string(),
                super::inline_script(shebang, &inline),
            ));
        }
        for s in self.local_files() {
            let path = local_path(ctx.base_dir, &s);
            let bytes = std::fs::read(&path)
                .map_err(|e| failed(format!("reading {}: {e}", path.display())))?;
            bodies.push((s, bytes));
        }
        let suffix = self.tempfile_extension.as_deref().unwrap_or(".sh");
        let mut scripts = Vec::new();
        for (name, bytes) in bodies {
            let file = tempfile::Builder::new()
                .prefix("osci-shell-local-")
                .suffix(suffix)
                .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
                .tempfile()
                .map_err(|e| failed(format!("copying {name}: {e}")))?;
            std::fs::write(file.path(), bytes)
                .map_err(|e| failed(format!("copying {name}: {e}")))?;
            // Closed before it runs: a file open for writing cannot be
            // executed ("Text file busy").
            scripts.push((name, file.into_temp_path()));
        }
        let command = self.execute_command.clone().unwrap_or_else(|| {
            vec![
                "/bin/sh".into(),
                "-c".into(),
                "{{.Vars}} {{.Script}}".into(),
            ]
        });
        for (name, path) in &scripts {
            if (ctx.cancelled)() {
                return Err(ProvisionError::Interrupted);
            }
            let fields = BTreeMap::from([
                ("Vars".to_string(), vars_string(&vars, format)),
                ("Script".to_string(), path.to_string_lossy().into_owned()),
                ("Command".to_string(), inline.join("\n")),
            ]);
            let argv = command
                .iter()
                .map(|arg| render_provisioner(arg, &fields, &ctx.build))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ProvisionError::Config {
                    at: at.to_string(),
                    message: format!("execute_command: {e}"),
                })?;
            (ctx.output)(&format!("running {name} locally"));
            let mut child = tokio::process::Command::new(&argv[0])
                .args(&argv[1..])
                .envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| failed(format!("starting {}: {e}", argv[0])))?;
            let stdout = child.stdout.take().expect("piped");
            let stderr = child.stderr.take().expect("piped");
            tokio::join!(pump(stdout, ctx.output), pump(stderr, ctx.output));
            let status = child
                .wait()
                .await
                .map_err(|e| failed(format!("waiting for {name}: {e}")))?;
            let code = status.code().map_or(u32::MAX, |c| c as u32);
            if !exit_ok(&self.valid_exit_codes, code) {
                return Err(failed(format!(
                    "{name} exited with {status} (valid_exit_codes: {:?})",
                    self.valid_exit_codes.as_deref().unwrap_or(&[0])
                )));
            }
        }
        Ok(())
    }
}
