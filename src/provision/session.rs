//! Where provisioners run: a VM over SSH, or a chroot on this machine (the
//! chroot builder's communicator). Both run a command with its input and
//! stream its output; files go up and down as commands, the same way for
//! both.

use super::chroot::Chroot;
use super::ssh::{self, Exit, SshError, Stream, quote};

pub enum Session {
    Ssh(Box<ssh::Session>),
    Chroot(Chroot),
}

impl Session {
    fn error(&self, e: impl std::fmt::Display) -> SshError {
        match self {
            Session::Ssh(s) => s.error(e),
            Session::Chroot(c) => c.error(e),
        }
    }

    /// Runs `command`, feeding it `stdin` then end-of-file, and hands its
    /// output to `output` as it comes; over SSH with a terminal if
    /// `ssh_pty` asks.
    pub async fn exec(
        &self,
        command: &str,
        stdin: &[u8],
        output: &mut (dyn FnMut(Stream, &[u8]) + Send),
    ) -> Result<Exit, SshError> {
        match self {
            Session::Ssh(s) => s.exec(command, stdin, output).await,
            Session::Chroot(c) => c.run(command, stdin, output).await,
        }
    }

    /// Runs `command` and answers its standard output, failing with its
    /// error output unless it exits 0. Never on a terminal, which would
    /// echo and translate the bytes of a file transfer.
    async fn checked(&self, command: &str, stdin: &[u8]) -> Result<Vec<u8>, SshError> {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let mut collect = |stream: Stream, data: &[u8]| match stream {
            Stream::Stdout => out.extend_from_slice(data),
            Stream::Stderr => err.extend_from_slice(data),
        };
        let exit = match self {
            Session::Ssh(s) => s.run(command, stdin, &mut collect, false).await?,
            Session::Chroot(c) => c.run(command, stdin, &mut collect).await?,
        };
        match exit {
            Exit::Status(0) => Ok(out),
            other => Err(self.error(format!(
                "`{command}` failed ({other:?}): {}",
                String::from_utf8_lossy(&err).trim()
            ))),
        }
    }

    /// Writes `data` to the file `path` on the target (making its folder),
    /// with permissions `mode`.
    pub async fn upload(&self, path: &str, data: &[u8], mode: u32) -> Result<(), SshError> {
        let dir = match path.rfind('/') {
            Some(0) => "/",
            Some(i) => &path[..i],
            None => ".",
        };
        let command = format!(
            "mkdir -p {dir} && cat > {path} && chmod {mode:o} {path}",
            dir = quote(dir),
            path = quote(path),
        );
        self.checked(&command, data).await.map(|_| ())
    }

    /// Makes the folder `path` on the target.
    pub async fn mkdir(&self, path: &str) -> Result<(), SshError> {
        self.checked(&format!("mkdir -p {}", quote(path)), &[])
            .await
            .map(|_| ())
    }

    /// The bytes of the file `path` on the target.
    pub async fn download(&self, path: &str) -> Result<Vec<u8>, SshError> {
        self.checked(&format!("cat {}", quote(path)), &[]).await
    }

    /// The files under the folder `path` on the target, relative to it.
    pub async fn list_files(&self, path: &str) -> Result<Vec<String>, SshError> {
        let out = self
            .checked(&format!("cd {} && find . -type f", quote(path)), &[])
            .await?;
        Ok(String::from_utf8_lossy(&out)
            .lines()
            .filter_map(|l| l.strip_prefix("./"))
            .map(str::to_string)
            .collect())
    }

    pub async fn close(self) {
        if let Session::Ssh(s) = self {
            s.close().await;
        }
    }
}
