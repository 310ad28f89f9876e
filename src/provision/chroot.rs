//! The chroot communicator (behaviour §6): commands run on this machine as
//! `chroot ROOT /bin/sh -c COMMAND`, through the build's `command_wrapper`,
//! so provisioners work inside the mounted volume as they would on a VM.

use std::path::PathBuf;
use std::process::Stdio;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::ssh::{Exit, SshError, Stream, quote};

pub struct Chroot {
    /// The mounted volume.
    pub root: PathBuf,
    /// `command_wrapper`: `{{.Command}}` is the command.
    pub wrapper: String,
}

impl Chroot {
    pub(crate) fn error(&self, e: impl std::fmt::Display) -> SshError {
        SshError::Chroot {
            root: self.root.display().to_string(),
            message: e.to_string(),
        }
    }

    /// Runs `command` in the chroot, feeding it `stdin`, streaming its
    /// output as it comes.
    pub async fn run(
        &self,
        command: &str,
        stdin: &[u8],
        output: &mut (dyn FnMut(Stream, &[u8]) + Send),
    ) -> Result<Exit, SshError> {
        let inner = format!(
            "chroot {} /bin/sh -c {}",
            quote(&self.root.display().to_string()),
            quote(command)
        );
        run_wrapped(&inner, &self.wrapper, stdin, output)
            .await
            .map_err(|e| self.error(e))
    }
}

/// Runs `command` on this machine with `sh -c`, through `wrapper` (its
/// `{{.Command}}` is the command), feeding it `stdin` and streaming its
/// output as it comes: the chroot communicator's commands, and the chroot
/// builder's own (mounts, `pre_mount_commands`…).
pub async fn run_wrapped(
    command: &str,
    wrapper: &str,
    stdin: &[u8],
    output: &mut (dyn FnMut(Stream, &[u8]) + Send),
) -> Result<Exit, String> {
    let fields = std::collections::BTreeMap::from([("Command".to_string(), command.to_string())]);
    let wrapped = crate::template::render_provisioner(wrapper, &fields, &Default::default())
        .map_err(|e| format!("command_wrapper: {e}"))?;
    let mut child = tokio::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(&wrapped)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("running /bin/sh: {e}"))?;
    let mut input = child.stdin.take();
    let data = stdin.to_vec();
    let feed = async move {
        if let Some(input) = input.as_mut() {
            // A command that does not read its input closes it: not an error.
            let _ = input.write_all(&data).await;
        }
        drop(input);
    };
    let (mut out, mut err) = (
        child.stdout.take().expect("piped"),
        child.stderr.take().expect("piped"),
    );
    let read = async {
        let (mut a, mut b) = ([0u8; 8192], [0u8; 8192]);
        let (mut out_open, mut err_open) = (true, true);
        while out_open || err_open {
            tokio::select! {
                n = out.read(&mut a), if out_open => match n {
                    Ok(0) | Err(_) => out_open = false,
                    Ok(n) => output(Stream::Stdout, &a[..n]),
                },
                n = err.read(&mut b), if err_open => match n {
                    Ok(0) | Err(_) => err_open = false,
                    Ok(n) => output(Stream::Stderr, &b[..n]),
                },
            }
        }
    };
    let ((), ()) = tokio::join!(feed, read);
    let status = child.wait().await.map_err(|e| e.to_string())?;
    Ok(match status.code() {
        Some(code) => Exit::Status(code as u32),
        None => Exit::Disconnected,
    })
}
