//! From a build's communicator options and its VM to a provisioned VM:
//! which address to reach (behaviour C9), which credential (the temporary
//! keypair of C5, a key file, or a password), then the provisioners
//! (C12), and the temporary key's removal from the VM
//! (`ssh_clear_authorized_keys`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::oapi::model::Vm;
use crate::provision::ssh::{self, Credential, Endpoint, Settings, quote};
use crate::provision::{self, Context, ProvisionError};
use crate::secret::Secret;
use crate::template::{CommConfig, Provisioner, parse_go_duration};

/// The SDK's defaults.
const DEFAULT_HANDSHAKE_ATTEMPTS: u32 = 10;
const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(5);
/// The template's default, should a value not parse (it was checked at load).
const DEFAULT_SSH_TIMEOUT: Duration = Duration::from_secs(600);

/// Options osci does not honour yet, refused at plan time rather than
/// ignored.
pub fn unsupported(config: &CommConfig) -> Option<String> {
    let not_yet = |key: &str, why: &str| Some(format!("{key}: {why} is not supported yet"));
    if config.communicator == "winrm" {
        return not_yet("communicator \"winrm\"", "WinRM");
    }
    if config.communicator != "ssh" {
        return None;
    }
    if config.ssh_certificate_file.is_some() || config.ssh_bastion_certificate_file.is_some() {
        return not_yet("ssh_certificate_file", "SSH certificate authentication");
    }
    if config.ssh_proxy_host.is_some() {
        return not_yet("ssh_proxy_host", "a SOCKS proxy");
    }
    if !config.ssh_local_tunnels.is_empty() || !config.ssh_remote_tunnels.is_empty() {
        return not_yet("ssh_local_tunnels/ssh_remote_tunnels", "forwarding ports");
    }
    if config.ssh_bastion_interactive {
        return not_yet(
            "ssh_bastion_interactive",
            "keyboard-interactive bastion login",
        );
    }
    if config.ssh_bastion_host.is_some()
        && config.ssh_bastion_private_key_file.is_none()
        && config.ssh_bastion_password.is_none()
        && !config.ssh_bastion_agent_auth
    {
        return Some(
            "ssh_bastion_host: give ssh_bastion_private_key_file, ssh_bastion_password or \
             ssh_bastion_agent_auth"
                .into(),
        );
    }
    None
}

/// The address to connect to (C9). Without `ssh_interface`, a VM outside
/// a Net is reached on its public IP rather than its public DNS name (the
/// plugin's choice), which this machine may not resolve.
pub fn host(config: &CommConfig, ssh_interface: Option<&str>, vm: &Vm) -> Option<String> {
    if let Some(host) = &config.ssh_host {
        return Some(host.clone());
    }
    let pick = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    match ssh_interface {
        Some("public_ip") => pick(&vm.public_ip),
        Some("private_ip") => pick(&vm.private_ip),
        Some("public_dns") => pick(&vm.public_dns_name),
        Some("private_dns") => pick(&vm.private_dns_name),
        _ => pick(&vm.public_ip)
            .or_else(|| {
                if vm.net_id.is_some() {
                    None
                } else {
                    pick(&vm.public_dns_name)
                }
            })
            .or_else(|| pick(&vm.private_ip)),
    }
}

fn read_key(path: &std::path::Path, key: &str) -> Result<Credential, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{key}: reading {}: {e}", path.display()))?;
    let parsed = russh::keys::decode_secret_key(&text, None).map_err(|e| {
        format!(
            "{key}: {} is not an unencrypted private key osci can use: {e}",
            path.display()
        )
    })?;
    Ok(Credential::Key(Arc::new(parsed)))
}

/// The target's credential: the temporary key, else the key file, else
/// the password, else the SSH agent.
fn credential(config: &CommConfig, temporary: Option<&Secret>) -> Result<Credential, String> {
    if config.ssh_agent_auth && config.ssh_private_key_file.is_none() {
        return Ok(Credential::Agent);
    }
    if let Some(pem) = temporary {
        let key = russh::keys::decode_secret_key(pem.expose(), None)
            .map_err(|e| format!("the temporary keypair's private key is unusable: {e}"))?;
        return Ok(Credential::Key(Arc::new(key)));
    }
    if let Some(path) = &config.ssh_private_key_file {
        return read_key(path, "ssh_private_key_file");
    }
    if let Some(password) = &config.ssh_password {
        return Ok(Credential::Password(password.clone()));
    }
    Err("no SSH credential: give ssh_private_key_file or ssh_password".into())
}

pub fn settings(
    config: &CommConfig,
    host: String,
    temporary: Option<&Secret>,
) -> Result<Settings, String> {
    let target = Endpoint {
        host,
        port: config.ssh_port,
        username: config.ssh_username.clone().unwrap_or_else(|| "root".into()),
        credential: credential(config, temporary)?,
    };
    let bastion = match &config.ssh_bastion_host {
        None => None,
        Some(host) => Some(Endpoint {
            host: host.clone(),
            port: config.ssh_bastion_port.unwrap_or(22),
            username: config
                .ssh_bastion_username
                .clone()
                .unwrap_or_else(|| target.username.clone()),
            credential: match (
                &config.ssh_bastion_private_key_file,
                &config.ssh_bastion_password,
            ) {
                (Some(path), _) => read_key(path, "ssh_bastion_private_key_file")?,
                (None, Some(password)) => Credential::Password(password.clone()),
                (None, None) if config.ssh_bastion_agent_auth => Credential::Agent,
                (None, None) => return Err("ssh_bastion_host: no credential".into()),
            },
        }),
    };
    // Both were checked when the template was loaded.
    let keep_alive = config
        .ssh_keep_alive_interval
        .as_deref()
        .and_then(parse_go_duration)
        .unwrap_or(DEFAULT_KEEP_ALIVE);
    Ok(Settings {
        target,
        bastion,
        timeout: parse_go_duration(&config.ssh_timeout).unwrap_or(DEFAULT_SSH_TIMEOUT),
        handshake_attempts: config
            .ssh_handshake_attempts
            .unwrap_or(DEFAULT_HANDSHAKE_ATTEMPTS),
        keep_alive: Some(keep_alive).filter(|d| !d.is_zero()),
        pty: config.ssh_pty,
    })
}

/// Connects (unless the communicator is `none`), runs the provisioners,
/// and removes the temporary key from the VM if asked.
pub async fn provision(
    config: &CommConfig,
    settings: Option<Settings>,
    clear: bool,
    provisioners: &[Provisioner],
    ctx: &Context<'_>,
) -> Result<(), String> {
    let Some(settings) = settings else {
        return provision::run(provisioners, None, ctx)
            .await
            .map_err(|e| e.to_string());
    };
    if let Some(pause) = config
        .pause_before_connecting
        .as_deref()
        .and_then(parse_go_duration)
    {
        (ctx.output)(&format!("pausing {pause:?} before connecting"));
        tokio::time::sleep(pause).await;
    }
    (ctx.output)(&format!(
        "waiting for SSH on {}:{} (up to {:?})",
        settings.target.host, settings.target.port, settings.timeout
    ));
    let session = provision::Session::Ssh(Box::new(
        ssh::connect(&settings, ctx.cancelled)
            .await
            .map_err(|e| e.to_string())?,
    ));
    (ctx.output)("connected over SSH");
    let result = provision::run(provisioners, Some(&session), ctx).await;
    let cleared = match (&result, &settings.target.credential) {
        (Ok(()), Credential::Key(key)) if clear => clear_key(&session, key).await,
        _ => Ok(()),
    };
    session.close().await;
    result.map_err(|e: ProvisionError| e.to_string())?;
    cleared
}

/// Removes `key` from the authorized keys on the VM, so the image does not
/// trust the build's key.
async fn clear_key(
    session: &provision::Session,
    key: &russh::keys::PrivateKey,
) -> Result<(), String> {
    let public = key
        .public_key()
        .to_openssh()
        .map_err(|e| format!("ssh_clear_authorized_keys: {e}"))?;
    let blob = public.split_whitespace().nth(1).unwrap_or_default();
    let command = format!(
        "for f in ~/.ssh/authorized_keys /root/.ssh/authorized_keys /home/*/.ssh/authorized_keys; do \
         [ -f \"$f\" ] && sed -i {} \"$f\"; done; true",
        quote(&format!("\\|{blob}|d"))
    );
    let mut err = Vec::new();
    match session
        .exec(&command, &[], &mut |_, data| err.extend_from_slice(data))
        .await
    {
        Ok(ssh::Exit::Status(0)) => Ok(()),
        Ok(_) => Err(format!(
            "ssh_clear_authorized_keys: {}",
            String::from_utf8_lossy(&err).trim()
        )),
        Err(e) => Err(format!("ssh_clear_authorized_keys: {e}")),
    }
}

/// What `{{ build `Key` }}` answers and `shell-local` sees in its
/// environment. Never a secret.
pub fn build_data(
    vm: &Vm,
    host: Option<&str>,
    config: &CommConfig,
    vars: &crate::template::BuildVars,
) -> BTreeMap<String, String> {
    let mut data = BTreeMap::from([
        ("ID".to_string(), vm.vm_id.clone()),
        ("ConnType".to_string(), config.communicator.clone()),
        ("SourceOMI".to_string(), vars.source_omi.clone()),
        ("SourceOMIName".to_string(), vars.source_omi_name.clone()),
        ("BuildRegion".to_string(), vars.build_region.clone()),
    ]);
    if let Some(host) = host {
        data.insert("Host".into(), host.to_string());
        data.insert("Port".into(), config.ssh_port.to_string());
        data.insert(
            "User".into(),
            config.ssh_username.clone().unwrap_or_default(),
        );
    }
    data
}

/// What `{{ build `Key` }}` answers in a chroot build: no VM, no address.
pub fn chroot_build_data(vars: &crate::template::BuildVars) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("ConnType".to_string(), "chroot".to_string()),
        ("SourceOMI".to_string(), vars.source_omi.clone()),
        ("SourceOMIName".to_string(), vars.source_omi_name.clone()),
        ("BuildRegion".to_string(), vars.build_region.clone()),
    ])
}
