//! The SSH service of a simulated VM: it listens on the VM's own loopback
//! addresses, port 22, lets in the keys of the VM's `authorized_keys` (as
//! an sshd does), and runs what it is asked as root inside the VM's root
//! filesystem (`chroot`). The VM's security groups decide who may connect.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use russh::keys::PublicKey;
use russh::server::{Auth, ChannelOpenHandle, Msg, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, ChannelMsg, MethodKind, MethodSet};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The port every simulated VM answers SSH on.
pub const SSH_PORT: u16 = 22;

/// Which sources the VM's security groups let reach port 22: IPv4
/// networks as (address, prefix length).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access(pub Vec<(Ipv4Addr, u8)>);

impl Access {
    pub fn allows(&self, peer: IpAddr) -> bool {
        let IpAddr::V4(peer) = peer else {
            return false;
        };
        self.0.iter().any(|(net, len)| {
            let mask = if *len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(*len))
            };
            u32::from(peer) & mask == u32::from(*net) & mask
        })
    }
}

/// What every connection to one VM shares.
pub struct Machine {
    pub vm_id: String,
    /// The VM's root filesystem on this machine.
    pub root: PathBuf,
    pub access: RwLock<Access>,
    /// Turns to `false` when the VM stops: listeners, sessions and the
    /// commands they run end.
    pub powered: watch::Receiver<bool>,
    /// The process groups of the commands running in the VM, killed when
    /// it stops (with whatever they started in the background).
    pub processes: std::sync::Mutex<std::collections::BTreeSet<u32>>,
    /// Counts reboots: each one ends every session and command.
    pub reboots: watch::Sender<u64>,
}

/// Where cloud-init turns password logins on.
pub const PASSWORD_DROP_IN: &str = "etc/ssh/sshd_config.d/50-cloud-init.conf";

/// How the simulator keeps a VM user's password.
pub fn password_hash(password: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(password.as_bytes()))
}

/// What `reboot` in a simulated VM leaves for the simulator to act on.
pub const REBOOT_REQUEST: &str = "run/osci-reboot-requested";

impl Machine {
    /// A reboot: processes die, sessions drop, the disk stays, and the VM
    /// answers again.
    fn reboot(&self) {
        self.kill_all();
        self.reboots.send_modify(|n| *n += 1);
    }

    /// Kills every process running in the VM.
    pub fn kill_all(&self) {
        let groups: Vec<u32> = self
            .processes
            .lock()
            .map(|mut p| std::mem::take(&mut *p).into_iter().collect())
            .unwrap_or_default();
        for group in groups {
            let _ = std::process::Command::new(super::disk::tool("kill"))
                .args(["-KILL", "--", &format!("-{group}")])
                .status();
        }
    }
}

/// `path` under `root`, unless a component of it (below `root`) is a
/// symbolic link: the tree is the VM's, and what the host reads or writes
/// there must not lead out of it.
pub fn inside(root: &std::path::Path, path: &str) -> Option<PathBuf> {
    let mut at = root.to_path_buf();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        if part == ".." {
            return None;
        }
        at.push(part);
        if std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
            return None;
        }
    }
    Some(at)
}

/// Serves SSH for `machine` on `listener` until the VM powers off or
/// `listening` turns `false`.
pub async fn serve(
    listener: TcpListener,
    machine: Arc<Machine>,
    config: Arc<russh::server::Config>,
    mut listening: watch::Receiver<bool>,
) {
    let mut powered = machine.powered.clone();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(_) => continue,
            },
            _ = off(&mut powered) => return,
            // The address moved to another VM.
            _ = off(&mut listening) => return,
        };
        let allowed = machine
            .access
            .read()
            .map(|a| a.allows(peer.ip()))
            .unwrap_or(false);
        if !allowed {
            tracing::debug!(vm = %machine.vm_id, %peer, "security groups refuse port 22");
            drop(stream);
            continue;
        }
        let handler = Connection {
            machine: Arc::clone(&machine),
            channels: HashMap::new(),
        };
        let config = Arc::clone(&config);
        let mut powered = machine.powered.clone();
        let mut reboots = machine.reboots.subscribe();
        tokio::spawn(async move {
            let Ok(session) = russh::server::run_stream(config, stream, handler).await else {
                return;
            };
            let handle = session.handle();
            tokio::select! {
                _ = session => {}
                _ = reboots.changed() => {
                    let _ = handle
                        .disconnect(russh::Disconnect::ByApplication, "the VM is rebooting".into(), String::new())
                        .await;
                }
                _ = off(&mut powered) => {
                    let _ = handle
                        .disconnect(russh::Disconnect::ByApplication, "the VM stopped".into(), String::new())
                        .await;
                }
            }
        });
    }
}

/// The server configuration every simulated VM uses: one host key per
/// simulator; keys, and passwords where cloud-init allowed them.
pub fn config(host_key: russh::keys::PrivateKey) -> russh::server::Config {
    russh::server::Config {
        methods: MethodSet::from(&[MethodKind::PublicKey, MethodKind::Password][..]),
        auth_rejection_time: Duration::from_millis(200),
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys: vec![host_key],
        inactivity_timeout: Some(Duration::from_secs(3600)),
        ..Default::default()
    }
}

struct Pending {
    channel: Option<Channel<Msg>>,
    env: Vec<(String, String)>,
}

struct Connection {
    machine: Arc<Machine>,
    channels: HashMap<ChannelId, Pending>,
}

impl Connection {
    /// The keys the VM trusts for `user`: those of the `authorized_keys`
    /// in the user's home, as `/etc/passwd` gives it. A user the VM does
    /// not know has none.
    fn authorized(&self, user: &str) -> Vec<PublicKey> {
        let passwd = inside(&self.machine.root, "etc/passwd")
            .and_then(|f| std::fs::read_to_string(f).ok())
            .unwrap_or_default();
        let files: Vec<String> = passwd
            .lines()
            .map(|line| line.split(':').collect::<Vec<_>>())
            .find(|fields| fields.first() == Some(&user))
            .and_then(|fields| {
                fields
                    .get(5)
                    .map(|home| format!("{home}/.ssh/authorized_keys"))
            })
            .into_iter()
            .collect();
        files
            .iter()
            .filter_map(|f| inside(&self.machine.root, f))
            .filter_map(|f| std::fs::read_to_string(f).ok())
            .flat_map(|text| {
                text.lines()
                    .filter_map(|line| line.split_whitespace().nth(1).map(str::to_string))
                    .collect::<Vec<_>>()
            })
            .filter_map(|blob| russh::keys::parse_public_key_base64(&blob).ok())
            .collect()
    }

    fn start(&mut self, channel: ChannelId, command: Option<String>, session: &mut Session) {
        let Some(pending) = self.channels.get_mut(&channel) else {
            let _ = session.channel_failure(channel);
            return;
        };
        let Some(ch) = pending.channel.take() else {
            let _ = session.channel_failure(channel);
            return;
        };
        let _ = session.channel_success(channel);
        let env = std::mem::take(&mut pending.env);
        let machine = Arc::clone(&self.machine);
        tokio::spawn(run(machine, ch, command, env));
    }
}

impl russh::server::Handler for Connection {
    type Error = russh::Error;

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let trusted = self
            .authorized(user)
            .iter()
            .any(|k| k.key_data() == key.public_key.key_data());
        Ok(if trusted {
            Auth::Accept
        } else {
            Auth::reject()
        })
    }

    /// Passwords count only where cloud-init turned them on
    /// (`ssh_pwauth`), as with a real sshd.
    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        let root = &self.machine.root;
        let enabled = inside(root, PASSWORD_DROP_IN)
            .and_then(|f| std::fs::read_to_string(f).ok())
            .is_some_and(|c| c.lines().any(|l| l.trim() == "PasswordAuthentication yes"));
        let hash = password_hash(password);
        let known = inside(root, "etc/ssh/osci_passwords")
            .and_then(|f| std::fs::read_to_string(f).ok())
            .is_some_and(|c| {
                c.lines()
                    .any(|l| l.split_once(':') == Some((user, hash.as_str())))
            });
        Ok(if enabled && known {
            Auth::Accept
        } else {
            Auth::reject()
        })
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.insert(
            channel.id(),
            Pending {
                channel: Some(channel),
                env: Vec::new(),
            },
        );
        reply.accept().await;
        Ok(())
    }

    /// Port forwarding, what a VM used as a bastion does: the connection
    /// leaves from this machine, like any VM's outgoing traffic.
    #[allow(clippy::too_many_arguments)]
    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host: &str,
        port: u32,
        _originator: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Ok(port) = u16::try_from(port) else {
            reply.reject(russh::ChannelOpenFailure::ConnectFailed).await;
            return Ok(());
        };
        match tokio::net::TcpStream::connect((host, port)).await {
            Ok(mut tcp) => {
                reply.accept().await;
                let mut powered = self.machine.powered.clone();
                tokio::spawn(async move {
                    let mut stream = channel.into_stream();
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut stream, &mut tcp) => {}
                        _ = off(&mut powered) => {}
                    }
                });
            }
            Err(_) => reply.reject(russh::ChannelOpenFailure::ConnectFailed).await,
        }
        Ok(())
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // As sshd's usual `AcceptEnv LANG LC_*`: other variables could
        // change how the host's chroot program runs (LD_PRELOAD).
        let accepted = name == "LANG" || name.starts_with("LC_");
        match self.channels.get_mut(&channel) {
            Some(p) if accepted => {
                p.env.push((name.to_string(), value.to_string()));
                session.channel_success(channel)
            }
            _ => session.channel_failure(channel),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _cols: u32,
        _rows: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // Commands run on pipes; a terminal is accepted and not emulated.
        session.channel_success(channel)
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.start(channel, None, session);
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let command = String::from_utf8_lossy(data).into_owned();
        self.start(channel, Some(command), session);
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        _name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.remove(&channel);
        Ok(())
    }
}

/// Runs `command` (a login shell if `None`) as root in the VM, wiring the
/// channel to its standard streams, and reports its exit status.
async fn run(
    machine: Arc<Machine>,
    channel: Channel<Msg>,
    command: Option<String>,
    env: Vec<(String, String)>,
) {
    let (mut read, write) = channel.split();
    // The command starts in root's home, as after an SSH login.
    let script = match &command {
        Some(_) => "cd \"$HOME\" 2>/dev/null; exec /bin/sh -c \"$1\"",
        None => "cd \"$HOME\" 2>/dev/null; exec /bin/sh -i",
    };
    let mut child = match tokio::process::Command::new(super::disk::tool("chroot"))
        .arg(&machine.root)
        .args(["/bin/sh", "-c", script, "sh"])
        .args(command.as_deref())
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("HOME", "/root")
        .env("USER", "root")
        .env("LOGNAME", "root")
        .env("SHELL", "/bin/sh")
        .envs(env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0)
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            let message = format!("the simulated VM cannot run commands: {e}\n");
            let _ = write.extended_data_bytes(1, message.into_bytes()).await;
            let _ = write.exit_status(127).await;
            let _ = write.eof().await;
            let _ = write.close().await;
            return;
        }
    };
    let group = child.id();
    if let (Some(g), Ok(mut groups)) = (group, machine.processes.lock()) {
        groups.insert(g);
    }
    let mut stdin = child.stdin.take();
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let mut out = write.make_writer();
    let mut err = write.make_writer_ext(Some(1));
    let pump_out = async {
        let _ = tokio::io::copy(&mut stdout, &mut out).await;
        let _ = out.flush().await;
    };
    let pump_err = async {
        let _ = tokio::io::copy(&mut stderr, &mut err).await;
        let _ = err.flush().await;
    };
    let pump_in = async {
        while let Some(msg) = read.wait().await {
            match msg {
                ChannelMsg::Data { data } => {
                    if let Some(s) = stdin.as_mut()
                        && s.write_all(&data).await.is_err()
                    {
                        stdin = None;
                    }
                }
                ChannelMsg::Eof => stdin = None,
                _ => {}
            }
        }
    };
    let mut powered = machine.powered.clone();
    let mut reboots = machine.reboots.subscribe();
    let requested = async {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if let Some(marker) = inside(&machine.root, REBOOT_REQUEST)
                && std::fs::remove_file(marker).is_ok()
            {
                return;
            }
        }
    };
    let mut rebooted = false;
    let status = tokio::select! {
        status = async {
            tokio::join!(pump_out, pump_err);
            child.wait().await
        } => status.ok(),
        _ = pump_in => {
            // The client went away: the command goes with it.
            None
        }
        _ = off(&mut powered) => None,
        () = requested => {
            machine.reboot();
            rebooted = true;
            None
        }
        _ = reboots.changed() => {
            rebooted = true;
            None
        }
    };
    if let (Some(g), Ok(mut groups)) = (group, machine.processes.lock()) {
        groups.remove(&g);
    }
    if rebooted {
        // The connection drops with the VM: no exit status, as on a real
        // reboot.
        return;
    }
    let code = status.and_then(|s| s.code()).unwrap_or(255);
    let _ = write.exit_status(code as u32).await;
    let _ = write.eof().await;
    let _ = write.close().await;
}

/// Resolves when the VM powers off.
async fn off(powered: &mut watch::Receiver<bool>) {
    let _ = powered.wait_for(|on| !*on).await;
}

/// Binds port 22 on `address`.
pub fn bind(address: &str) -> std::io::Result<TcpListener> {
    let ip: Ipv4Addr = address
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let listener = std::net::TcpListener::bind(SocketAddr::from((ip, SSH_PORT)))?;
    listener.set_nonblocking(true)?;
    TcpListener::from_std(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_matches_networks() {
        let access = Access(vec![(Ipv4Addr::new(127, 0, 0, 0), 8)]);
        assert!(access.allows("127.1.2.3".parse().unwrap()));
        assert!(!access.allows("10.0.0.1".parse().unwrap()));
        assert!(Access(vec![(Ipv4Addr::UNSPECIFIED, 0)]).allows("10.0.0.1".parse().unwrap()));
        assert!(!Access::default().allows("127.0.0.1".parse().unwrap()));
    }
}
