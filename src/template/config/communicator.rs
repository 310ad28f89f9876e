//! The communicator (the Packer SDK's keys): how osci reaches the build VM.

use std::path::Path;
use std::path::PathBuf;

use serde::Deserialize;

use super::{Failure, duration, invalid, one_of};
use crate::secret::Secret;
use crate::template::error::{KeyPath, Problem};
use crate::template::weak;

const DEFAULT_COMMUNICATOR: &str = "ssh";
const DEFAULT_SSH_PORT: u16 = 22;
const DEFAULT_SSH_TIMEOUT: &str = "10m";

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct CommConfig {
    /// `ssh`, `winrm` or `none`.
    pub communicator: String,
    pub ssh_host: Option<String>,
    #[serde(deserialize_with = "weak::int")]
    pub ssh_port: u16,
    pub ssh_username: Option<String>,
    #[serde(deserialize_with = "weak::opt_secret")]
    pub ssh_password: Option<Secret>,
    pub ssh_keypair_name: Option<String>,
    pub temporary_key_pair_name: Option<String>,
    pub temporary_key_pair_type: Option<String>,
    #[serde(deserialize_with = "weak::opt_int")]
    pub temporary_key_pair_bits: Option<u32>,
    pub ssh_private_key_file: Option<PathBuf>,
    pub ssh_certificate_file: Option<PathBuf>,
    #[serde(deserialize_with = "weak::bool")]
    pub ssh_agent_auth: bool,
    #[serde(deserialize_with = "weak::bool")]
    pub ssh_disable_agent_forwarding: bool,
    #[serde(deserialize_with = "weak::bool")]
    pub ssh_pty: bool,
    #[serde(deserialize_with = "weak::bool")]
    pub ssh_clear_authorized_keys: bool,
    /// A Go duration, `10m` by default here (the SDK's is 5m).
    pub ssh_timeout: String,
    #[serde(deserialize_with = "weak::opt_int")]
    pub ssh_handshake_attempts: Option<u32>,
    pub pause_before_connecting: Option<String>,
    pub ssh_keep_alive_interval: Option<String>,
    pub ssh_read_write_timeout: Option<String>,
    /// `scp` or `sftp`.
    pub ssh_file_transfer_method: Option<String>,
    pub ssh_ciphers: Vec<String>,
    pub ssh_key_exchange_algorithms: Vec<String>,
    pub ssh_local_tunnels: Vec<String>,
    pub ssh_remote_tunnels: Vec<String>,
    pub ssh_bastion_host: Option<String>,
    #[serde(deserialize_with = "weak::opt_int")]
    pub ssh_bastion_port: Option<u16>,
    pub ssh_bastion_username: Option<String>,
    #[serde(deserialize_with = "weak::opt_secret")]
    pub ssh_bastion_password: Option<Secret>,
    pub ssh_bastion_private_key_file: Option<PathBuf>,
    pub ssh_bastion_certificate_file: Option<PathBuf>,
    #[serde(deserialize_with = "weak::bool")]
    pub ssh_bastion_agent_auth: bool,
    #[serde(deserialize_with = "weak::bool")]
    pub ssh_bastion_interactive: bool,
    pub ssh_proxy_host: Option<String>,
    #[serde(deserialize_with = "weak::opt_int")]
    pub ssh_proxy_port: Option<u16>,
    pub ssh_proxy_username: Option<String>,
    #[serde(deserialize_with = "weak::opt_secret")]
    pub ssh_proxy_password: Option<Secret>,
    pub winrm_username: Option<String>,
    #[serde(deserialize_with = "weak::opt_secret")]
    pub winrm_password: Option<Secret>,
    pub winrm_host: Option<String>,
    #[serde(deserialize_with = "weak::opt_int")]
    pub winrm_port: Option<u16>,
    pub winrm_timeout: Option<String>,
    #[serde(deserialize_with = "weak::bool")]
    pub winrm_use_ssl: bool,
    #[serde(deserialize_with = "weak::bool")]
    pub winrm_insecure: bool,
    #[serde(deserialize_with = "weak::bool")]
    pub winrm_use_ntlm: bool,
    #[serde(deserialize_with = "weak::bool")]
    pub winrm_no_proxy: bool,
}

impl Default for CommConfig {
    fn default() -> Self {
        CommConfig {
            communicator: DEFAULT_COMMUNICATOR.into(),
            ssh_host: None,
            ssh_port: DEFAULT_SSH_PORT,
            ssh_username: None,
            ssh_password: None,
            ssh_keypair_name: None,
            temporary_key_pair_name: None,
            temporary_key_pair_type: None,
            temporary_key_pair_bits: None,
            ssh_private_key_file: None,
            ssh_certificate_file: None,
            ssh_agent_auth: false,
            ssh_disable_agent_forwarding: false,
            ssh_pty: false,
            ssh_clear_authorized_keys: false,
            ssh_timeout: DEFAULT_SSH_TIMEOUT.into(),
            ssh_handshake_attempts: None,
            pause_before_connecting: None,
            ssh_keep_alive_interval: None,
            ssh_read_write_timeout: None,
            ssh_file_transfer_method: None,
            ssh_ciphers: Vec::new(),
            ssh_key_exchange_algorithms: Vec::new(),
            ssh_local_tunnels: Vec::new(),
            ssh_remote_tunnels: Vec::new(),
            ssh_bastion_host: None,
            ssh_bastion_port: None,
            ssh_bastion_username: None,
            ssh_bastion_password: None,
            ssh_bastion_private_key_file: None,
            ssh_bastion_certificate_file: None,
            ssh_bastion_agent_auth: false,
            ssh_bastion_interactive: false,
            ssh_proxy_host: None,
            ssh_proxy_port: None,
            ssh_proxy_username: None,
            ssh_proxy_password: None,
            winrm_username: None,
            winrm_password: None,
            winrm_host: None,
            winrm_port: None,
            winrm_timeout: None,
            winrm_use_ssl: false,
            winrm_insecure: false,
            winrm_use_ntlm: false,
            winrm_no_proxy: false,
        }
    }
}

impl CommConfig {
    /// Relative key paths are resolved against the template's folder.
    pub(crate) fn validate(&mut self, template_dir: &Path) -> Result<(), Failure> {
        one_of(
            KeyPath::of("communicator"),
            &self.communicator,
            &["ssh", "winrm", "none"],
        )?;
        if self.ssh_port == 0 {
            self.ssh_port = DEFAULT_SSH_PORT;
        }
        duration("ssh_timeout", &self.ssh_timeout)?;
        for (key, value) in [
            ("pause_before_connecting", &self.pause_before_connecting),
            ("ssh_keep_alive_interval", &self.ssh_keep_alive_interval),
            ("ssh_read_write_timeout", &self.ssh_read_write_timeout),
            ("winrm_timeout", &self.winrm_timeout),
        ] {
            if let Some(value) = value {
                duration(key, value)?;
            }
        }
        if let Some(method) = &self.ssh_file_transfer_method {
            one_of(
                KeyPath::of("ssh_file_transfer_method"),
                method,
                &["scp", "sftp"],
            )?;
        }
        if let Some(kind) = &self.temporary_key_pair_type {
            let allowed = ["rsa", "dsa", "ecdsa", "ed25519"];
            one_of(KeyPath::of("temporary_key_pair_type"), kind, &allowed)?;
        }
        for path in [
            &mut self.ssh_private_key_file,
            &mut self.ssh_certificate_file,
            &mut self.ssh_bastion_private_key_file,
            &mut self.ssh_bastion_certificate_file,
        ]
        .into_iter()
        .flatten()
        {
            *path = template_dir.join(&*path);
        }
        // The SDK reads the key at prepare time; a missing one would
        // otherwise only show after the VM is up.
        if let Some(key) = &self.ssh_private_key_file
            && let Err(error) = std::fs::metadata(key)
        {
            let path = key.clone();
            return Err((
                KeyPath::of("ssh_private_key_file"),
                Problem::Io { path, error },
            ));
        }
        let has_key_file = self.ssh_private_key_file.is_some();
        match self.communicator.as_str() {
            "ssh" => {
                if self.ssh_username.is_none() {
                    let what = "ssh_username, the user to connect as (e.g. \"outscale\")";
                    return Err((KeyPath::of("ssh_username"), Problem::Missing(what)));
                }
                if self.ssh_keypair_name.is_some() && !has_key_file && !self.ssh_agent_auth {
                    let message = "needs ssh_private_key_file or ssh_agent_auth: osci has no \
                                   other way to the private key of an existing keypair";
                    return Err(invalid("ssh_keypair_name", message));
                }
            }
            "winrm" => {
                if self.winrm_username.is_none() {
                    let what = "winrm_username, the user to connect as";
                    return Err((KeyPath::of("winrm_username"), Problem::Missing(what)));
                }
                if self.ssh_keypair_name.is_some() && !has_key_file && self.winrm_password.is_none()
                {
                    let message = "needs winrm_password or ssh_private_key_file (to decrypt \
                                   the Windows password)";
                    return Err(invalid("ssh_keypair_name", message));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Whether the build makes a temporary keypair (C5): SSH, and no key,
    /// password or keypair of the user's.
    pub fn needs_temporary_keypair(&self) -> bool {
        self.communicator == "ssh"
            && self.ssh_private_key_file.is_none()
            && self.ssh_password.is_none()
            && self.ssh_keypair_name.is_none()
            && !self.ssh_agent_auth
    }
}
