//! The `shell` provisioner: uploads each script (or the `inline` commands
//! as one script) to the VM and runs it with `execute_command`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::session::Session;
use super::ssh::{Exit, Stream, quote};
use super::{Context, Lines, ProvisionError, environment, exit_ok, local_path, vars_string};
use crate::template::{render_provisioner, weak};

const DEFAULT_EXECUTE: &str = "chmod +x {{.Path}}; {{.Vars}} {{.Path}}";
const DEFAULT_EXECUTE_ENV_FILE: &str = "chmod +x {{.Path}}; . {{.EnvVarFile}} && {{.Path}}";
const DEFAULT_SHEBANG: &str = "/bin/sh -e";
const DEFAULT_START_RETRY: std::time::Duration = std::time::Duration::from_secs(300);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Shell {
    inline: Vec<String>,
    script: Option<String>,
    scripts: Vec<String>,
    environment_vars: Vec<String>,
    env: BTreeMap<String, String>,
    execute_command: Option<String>,
    inline_shebang: Option<String>,
    remote_folder: Option<String>,
    remote_file: Option<String>,
    remote_path: Option<String>,
    #[serde(deserialize_with = "weak::bool")]
    expect_disconnect: bool,
    valid_exit_codes: Option<Vec<u32>>,
    #[serde(deserialize_with = "weak::bool")]
    skip_clean: bool,
    #[serde(deserialize_with = "weak::bool")]
    binary: bool,
    env_var_format: Option<String>,
    #[serde(deserialize_with = "weak::bool")]
    use_env_var_file: bool,
    start_retry_timeout: Option<String>,
    pause_after: Option<String>,
}

/// One script to run, and what to call it in messages.
struct Script {
    name: String,
    bytes: Vec<u8>,
}

impl Shell {
    pub fn check(self, at: &str) -> Result<Shell, super::ProvisionError> {
        super::exactly_one(
            &[
                !self.inline.is_empty(),
                self.script.is_some(),
                !self.scripts.is_empty(),
            ],
            &["inline", "script", "scripts"],
            at,
        )?;
        let config = |message: &str| {
            Err(ProvisionError::Config {
                at: at.to_string(),
                message: message.to_string(),
            })
        };
        if self.remote_path.is_some()
            && (self.remote_folder.is_some() || self.remote_file.is_some())
        {
            return config("remote_path excludes remote_folder and remote_file");
        }
        super::check_environment_vars(&self.environment_vars, at)?;
        for (key, value) in [
            ("start_retry_timeout", &self.start_retry_timeout),
            ("pause_after", &self.pause_after),
        ] {
            if let Some(v) = value
                && crate::template::parse_go_duration(v).is_none()
            {
                return config(&format!("{key}: `{v}` is not a duration such as \"5m\""));
            }
        }
        Ok(self)
    }

    fn script_paths(&self) -> Vec<String> {
        self.script.iter().chain(&self.scripts).cloned().collect()
    }

    pub fn local_files(&self) -> Vec<String> {
        self.script_paths()
    }

    fn scripts(&self, ctx: &Context<'_>, at: &str) -> Result<Vec<Script>, ProvisionError> {
        if !self.inline.is_empty() {
            let shebang = self.inline_shebang.as_deref().unwrap_or(DEFAULT_SHEBANG);
            return Ok(vec![Script {
                name: "inline script".into(),
                bytes: super::inline_script(shebang, &self.inline),
            }]);
        }
        self.script_paths()
            .into_iter()
            .map(|path| {
                let file = local_path(ctx.base_dir, &path);
                let bytes = std::fs::read(&file).map_err(|e| ProvisionError::Failed {
                    at: at.to_string(),
                    message: format!("reading {}: {e}", file.display()),
                })?;
                Ok(Script { name: path, bytes })
            })
            .collect()
    }

    fn remote_path(&self) -> String {
        if let Some(path) = &self.remote_path {
            return path.clone();
        }
        let folder = self.remote_folder.as_deref().unwrap_or("/tmp");
        match &self.remote_file {
            Some(file) => format!("{}/{file}", folder.trim_end_matches('/')),
            None => format!(
                "{}/script_{}.sh",
                folder.trim_end_matches('/'),
                rand::random::<u16>()
            ),
        }
    }

    /// Uploads a script, trying again until `start_retry_timeout` (5m by
    /// default) while the VM does not answer (it may be rebooting).
    async fn upload_retrying(
        &self,
        session: &Session,
        path: &str,
        bytes: &[u8],
        ctx: &Context<'_>,
    ) -> Result<(), super::ssh::SshError> {
        let limit = self
            .start_retry_timeout
            .as_deref()
            .and_then(crate::template::parse_go_duration)
            .unwrap_or(DEFAULT_START_RETRY);
        let deadline = std::time::Instant::now() + limit;
        loop {
            match session.upload(path, bytes, 0o755).await {
                Err(e) if std::time::Instant::now() < deadline && !(ctx.cancelled)() => {
                    (ctx.output)(&format!("retrying the upload of {path}: {e}"));
                    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                }
                other => return other,
            }
        }
    }

    pub async fn run(
        &self,
        session: &Session,
        ctx: &Context<'_>,
        at: &str,
    ) -> Result<(), ProvisionError> {
        let ssh = super::ssh_failed(at);
        let vars = environment(ctx, &self.environment_vars, &self.env);
        let format = self.env_var_format.as_deref().unwrap_or("%s='%s' ");
        let mut fields = BTreeMap::from([("Vars".to_string(), vars_string(&vars, format))]);
        let env_file = if self.use_env_var_file {
            let folder = self.remote_folder.as_deref().unwrap_or("/tmp");
            let path = format!(
                "{}/varfile_{}.sh",
                folder.trim_end_matches('/'),
                rand::random::<u16>()
            );
            let text: String = vars
                .iter()
                .map(|(k, v)| format!("export {k}={}\n", quote(v)))
                .collect();
            session
                .upload(&path, text.as_bytes(), 0o600)
                .await
                .map_err(ssh)?;
            fields.insert("EnvVarFile".into(), path.clone());
            Some(path)
        } else {
            None
        };
        let template = self
            .execute_command
            .as_deref()
            .unwrap_or(if self.use_env_var_file {
                DEFAULT_EXECUTE_ENV_FILE
            } else {
                DEFAULT_EXECUTE
            });
        for script in self.scripts(ctx, at)? {
            if (ctx.cancelled)() {
                return Err(ProvisionError::Interrupted);
            }
            let path = self.remote_path();
            (ctx.output)(&format!("running {} as {path}", script.name));
            let mut bytes = script.bytes;
            if !self.binary {
                // Scripts written on Windows run on Linux.
                bytes = unix_line_endings(&bytes);
            }
            self.upload_retrying(session, &path, &bytes, ctx)
                .await
                .map_err(ssh)?;
            fields.insert("Path".into(), path.clone());
            let command = render_provisioner(template, &fields, &ctx.build).map_err(|e| {
                ProvisionError::Config {
                    at: at.to_string(),
                    message: format!("execute_command: {e}"),
                }
            })?;
            // A line each stream: a partial line of one is not glued to the
            // other's.
            let (mut out, mut err) = (Lines::new(ctx.output), Lines::new(ctx.output));
            let exit = session
                .exec(&command, &[], &mut |stream, data| match stream {
                    Stream::Stdout => out.push(data),
                    Stream::Stderr => err.push(data),
                })
                .await;
            out.finish();
            err.finish();
            match exit.map_err(ssh)? {
                Exit::Status(code) if exit_ok(&self.valid_exit_codes, code) => {}
                Exit::Status(code) => {
                    return Err(ProvisionError::Failed {
                        at: at.to_string(),
                        message: format!(
                            "{} exited with status {code} (valid_exit_codes: {:?})",
                            script.name,
                            self.valid_exit_codes.as_deref().unwrap_or(&[0])
                        ),
                    });
                }
                Exit::Disconnected if self.expect_disconnect => {
                    (ctx.output)(&format!(
                        "{} disconnected, as expect_disconnect allows",
                        script.name
                    ));
                    continue;
                }
                Exit::Disconnected => {
                    return Err(ProvisionError::Failed {
                        at: at.to_string(),
                        message: format!(
                            "the connection closed while {} ran (set expect_disconnect if it reboots the VM)",
                            script.name
                        ),
                    });
                }
            }
            if !self.skip_clean {
                session
                    .exec(&format!("rm -f {}", quote(&path)), &[], &mut |_, _| {})
                    .await
                    .map_err(ssh)?;
            }
        }
        if let Some(path) = env_file
            && !self.skip_clean
        {
            let _ = session
                .exec(&format!("rm -f {}", quote(&path)), &[], &mut |_, _| {})
                .await;
        }
        if let Some(pause) = self
            .pause_after
            .as_deref()
            .and_then(crate::template::parse_go_duration)
        {
            super::sleep(pause, ctx).await?;
        }
        Ok(())
    }
}

/// `bytes` with CRLF line ends turned to LF, other bytes untouched.
fn unix_line_endings(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            continue;
        }
        out.push(*b);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn crlf_becomes_lf_and_other_bytes_stay() {
        let bytes = b"a\r\nb\r\xff\n";
        assert_eq!(super::unix_line_endings(bytes), b"a\nb\r\xff\n");
    }
}
