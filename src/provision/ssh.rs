//! The SSH communicator: connects to the build VM (through a bastion if
//! asked), waiting for it to answer within `ssh_timeout`, and runs
//! commands and moves files over exec channels, as the Packer SDK does with
//! `scp` but with nothing needed on the VM beyond a shell and `cat`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use russh::client::{self, Handle};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg};
use russh::{ChannelMsg, Disconnect};
use tokio::net::TcpStream;

use crate::oapi::Secret;

/// How to prove who we are to one SSH server.
#[derive(Clone)]
pub enum Credential {
    /// A private key (RSA keys sign with rsa-sha2-256/512 when the server
    /// offers them).
    Key(Arc<PrivateKey>),
    Password(Secret),
    /// Each key of the SSH agent at `SSH_AUTH_SOCK`, in turn.
    Agent,
}

/// One SSH server and the user to log in as.
#[derive(Clone)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub username: String,
    pub credential: Credential,
}

impl Endpoint {
    fn address(&self) -> String {
        format!("{}@{}:{}", self.username, self.host, self.port)
    }
}

/// Everything the communicator options decide.
#[derive(Clone)]
pub struct Settings {
    pub target: Endpoint,
    pub bastion: Option<Endpoint>,
    /// How long to wait for the VM to answer (`ssh_timeout`).
    pub timeout: Duration,
    /// How many times a server that answers may fail the handshake or
    /// refuse the credential before osci gives up (`ssh_handshake_attempts`).
    pub handshake_attempts: u32,
    pub keep_alive: Option<Duration>,
    /// Ask for a terminal for each command (`ssh_pty`).
    pub pty: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error(
        "no SSH answer from {address} within {timeout:?} (ssh_timeout){}; check that the VM's security group lets port {port} in from this machine",
        last.as_ref().map(|e| format!(": last attempt: {e}")).unwrap_or_default()
    )]
    Timeout {
        address: String,
        port: u16,
        timeout: Duration,
        last: Option<String>,
    },
    #[error(
        "{address} refused the credential {attempts} times (ssh_handshake_attempts): check ssh_username and the key or password"
    )]
    Refused { address: String, attempts: u32 },
    #[error("SSH to {address}: {message}")]
    Session { address: String, message: String },
    #[error("in the chroot {root}: {message}")]
    Chroot { root: String, message: String },
    #[error("interrupted while waiting for SSH")]
    Interrupted,
}

/// Which stream output came on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// How a remote command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Status(u32),
    /// The connection or channel closed without an exit status (the
    /// command rebooted the VM, or was killed by a signal).
    Disconnected,
}

struct Client;

impl client::Handler for Client {
    type Error = russh::Error;

    // Build VMs are new at every run, as are their host keys: like the
    // Packer SDK, osci does not check them.
    async fn check_server_key(
        &mut self,
        _key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

/// Why one connection attempt failed.
enum Failure {
    /// Nothing answered, or it hung up before the SSH handshake: the VM may
    /// still be booting.
    Unreachable(String),
    /// A server answered and the handshake or login failed.
    Handshake(String),
    Refused,
}

/// A logged-in SSH connection.
pub struct Session {
    settings: Settings,
    connection: tokio::sync::Mutex<Connection>,
}

/// One SSH connection to the target.
struct Connection {
    handle: Handle<Client>,
    /// Kept open while the target is reached through it.
    _bastion: Option<Handle<Client>>,
}

/// Connects to `settings.target`, retrying until `ssh_timeout`. The
/// session connects again by itself when the VM dropped the connection (a
/// reboot, `expect_disconnect`).
pub async fn connect(
    settings: &Settings,
    cancelled: &(dyn Fn() -> bool + Sync),
) -> Result<Session, SshError> {
    let connection = open(settings, cancelled).await?;
    Ok(Session {
        settings: settings.clone(),
        connection: tokio::sync::Mutex::new(connection),
    })
}

async fn open(
    settings: &Settings,
    cancelled: &(dyn Fn() -> bool + Sync),
) -> Result<Connection, SshError> {
    let started = Instant::now();
    let mut last = None;
    let mut handshakes = 0;
    let mut refused = false;
    loop {
        let left = settings.timeout.saturating_sub(started.elapsed());
        match tokio::time::timeout(left.max(Duration::from_millis(1)), attempt(settings)).await {
            Ok(Ok(connection)) => return Ok(connection),
            Ok(Err(Failure::Unreachable(e))) => last = Some(e),
            Ok(Err(Failure::Handshake(e))) => {
                handshakes += 1;
                last = Some(e);
            }
            Ok(Err(Failure::Refused)) => {
                handshakes += 1;
                refused = true;
            }
            Err(_) => last = last.or(Some("timed out".into())),
        }
        if handshakes >= settings.handshake_attempts.max(1) {
            let address = settings.target.address();
            return Err(if refused {
                SshError::Refused {
                    address,
                    attempts: handshakes,
                }
            } else {
                SshError::Session {
                    address,
                    message: last.unwrap_or_default(),
                }
            });
        }
        if started.elapsed() >= settings.timeout {
            return Err(SshError::Timeout {
                address: settings.target.address(),
                port: settings.target.port,
                timeout: settings.timeout,
                last,
            });
        }
        for _ in 0..8 {
            if cancelled() {
                return Err(SshError::Interrupted);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

fn config(settings: &Settings) -> Arc<client::Config> {
    Arc::new(client::Config {
        keepalive_interval: settings.keep_alive,
        keepalive_max: 3,
        nodelay: true,
        ..Default::default()
    })
}

async fn attempt(settings: &Settings) -> Result<Connection, Failure> {
    let config = config(settings);
    let target = &settings.target;
    let (handle, bastion) = match &settings.bastion {
        None => {
            let tcp = TcpStream::connect((target.host.as_str(), target.port))
                .await
                .map_err(|e| Failure::Unreachable(e.to_string()))?;
            let handle = client::connect_stream(Arc::clone(&config), tcp, Client)
                .await
                .map_err(unreachable_or_handshake)?;
            (handle, None)
        }
        Some(bastion) => {
            let tcp = TcpStream::connect((bastion.host.as_str(), bastion.port))
                .await
                .map_err(|e| Failure::Unreachable(format!("bastion: {e}")))?;
            let mut via = client::connect_stream(Arc::clone(&config), tcp, Client)
                .await
                .map_err(unreachable_or_handshake)?;
            login(&mut via, bastion).await?;
            let channel = via
                .channel_open_direct_tcpip(target.host.as_str(), target.port.into(), "127.0.0.1", 0)
                .await
                .map_err(|e| Failure::Unreachable(format!("through the bastion: {e}")))?;
            let handle = client::connect_stream(config, channel.into_stream(), Client)
                .await
                .map_err(unreachable_or_handshake)?;
            (handle, Some(via))
        }
    };
    let mut handle = handle;
    login(&mut handle, target).await?;
    Ok(Connection {
        handle,
        _bastion: bastion,
    })
}

/// A connection closed before the server said anything is a VM still
/// booting (or a firewall); anything later is the server's answer.
fn unreachable_or_handshake(e: russh::Error) -> Failure {
    match e {
        russh::Error::IO(e) => Failure::Unreachable(e.to_string()),
        russh::Error::Disconnect | russh::Error::HUP => {
            Failure::Unreachable("the connection closed".into())
        }
        other => Failure::Handshake(other.to_string()),
    }
}

async fn login(handle: &mut Handle<Client>, endpoint: &Endpoint) -> Result<(), Failure> {
    let user = endpoint.username.clone();
    let result = match &endpoint.credential {
        Credential::Key(key) => {
            let hash = handle
                .best_supported_rsa_hash()
                .await
                .map_err(|e| Failure::Handshake(e.to_string()))?
                .flatten();
            handle
                .authenticate_publickey(user, PrivateKeyWithHashAlg::new(Arc::clone(key), hash))
                .await
        }
        Credential::Password(password) => {
            handle
                .authenticate_password(user, password.expose().to_string())
                .await
        }
        Credential::Agent => return login_with_agent(handle, user).await,
    }
    .map_err(unreachable_or_handshake)?;
    if result.success() {
        Ok(())
    } else {
        Err(Failure::Refused)
    }
}

async fn login_with_agent(handle: &mut Handle<Client>, user: String) -> Result<(), Failure> {
    use russh::keys::agent::AgentIdentity;
    let agent_error =
        |e: russh::keys::Error| Failure::Handshake(format!("the SSH agent (SSH_AUTH_SOCK): {e}"));
    let mut agent = russh::keys::agent::client::AgentClient::connect_env()
        .await
        .map_err(agent_error)?;
    let identities = agent.request_identities().await.map_err(agent_error)?;
    let hash = handle
        .best_supported_rsa_hash()
        .await
        .map_err(|e| Failure::Handshake(e.to_string()))?
        .flatten();
    for identity in identities {
        let AgentIdentity::PublicKey { key, .. } = identity else {
            continue;
        };
        let result = handle
            .authenticate_publickey_with(user.clone(), key, hash, &mut agent)
            .await
            .map_err(|e| Failure::Handshake(format!("signing with the SSH agent: {e}")))?;
        if result.success() {
            return Ok(());
        }
    }
    Err(Failure::Refused)
}

/// `'text'` for a POSIX shell.
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r#"'"'"'"#))
}

impl Session {
    pub(crate) fn error(&self, e: impl std::fmt::Display) -> SshError {
        SshError::Session {
            address: self.settings.target.address(),
            message: e.to_string(),
        }
    }

    /// Runs `command`, feeding it `stdin` then end-of-file, and hands its
    /// output to `output` as it comes; with a terminal if `ssh_pty` asks.
    pub async fn exec(
        &self,
        command: &str,
        stdin: &[u8],
        output: &mut (dyn FnMut(Stream, &[u8]) + Send),
    ) -> Result<Exit, SshError> {
        self.run(command, stdin, output, self.settings.pty).await
    }

    /// A new session channel, on a new connection if the VM dropped the
    /// last one.
    async fn channel(&self) -> Result<russh::Channel<client::Msg>, SshError> {
        let mut connection = self.connection.lock().await;
        if !connection.handle.is_closed()
            && let Ok(channel) = connection.handle.channel_open_session().await
        {
            return Ok(channel);
        }
        *connection = open(&self.settings, &|| false).await?;
        connection
            .handle
            .channel_open_session()
            .await
            .map_err(|e| self.error(e))
    }

    pub(crate) async fn run(
        &self,
        command: &str,
        stdin: &[u8],
        output: &mut (dyn FnMut(Stream, &[u8]) + Send),
        pty: bool,
    ) -> Result<Exit, SshError> {
        let mut channel = self.channel().await?;
        if pty {
            channel
                .request_pty(false, "xterm", 80, 24, 0, 0, &[])
                .await
                .map_err(|e| self.error(e))?;
        }
        channel
            .exec(true, command)
            .await
            .map_err(|e| self.error(e))?;
        if !stdin.is_empty() {
            channel
                .data_bytes(stdin.to_vec())
                .await
                .map_err(|e| self.error(e))?;
        }
        channel.eof().await.map_err(|e| self.error(e))?;
        let mut exit = Exit::Disconnected;
        while let Some(msg) = channel.wait().await {
            match msg {
                ChannelMsg::Data { data } => output(Stream::Stdout, &data),
                ChannelMsg::ExtendedData { data, ext: 1 } => output(Stream::Stderr, &data),
                ChannelMsg::ExitStatus { exit_status } => exit = Exit::Status(exit_status),
                _ => {}
            }
        }
        Ok(exit)
    }

    pub async fn close(self) {
        let connection = self.connection.into_inner();
        let _ = connection
            .handle
            .disconnect(Disconnect::ByApplication, "", "en")
            .await;
    }
}
