//! Access (behaviour §2.1): credentials, region and endpoint.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Failure, invalid};
use crate::oapi::{Endpoint, Overrides};
use crate::secret::Secret;
use crate::template::weak;

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct AccessConfig {
    pub access_key: Option<String>,
    #[serde(deserialize_with = "weak::opt_secret")]
    pub secret_key: Option<Secret>,
    pub region: Option<String>,
    pub custom_endpoint_oapi: Option<String>,
    #[serde(deserialize_with = "weak::bool")]
    pub insecure_skip_tls_verify: bool,
    pub x509_cert_path: Option<PathBuf>,
    pub x509_key_path: Option<PathBuf>,
    pub profile: Option<String>,
    // The next four are inert in the plugin too: OUTSCALE has no region list
    // to validate against, access-key signing has no MFA code or session
    // token, and osci never asks instance metadata for credentials. They are
    // accepted so the plugin's templates load.
    #[serde(deserialize_with = "weak::bool")]
    pub skip_region_validation: bool,
    pub mfa_code: Option<String>,
    #[serde(deserialize_with = "weak::opt_secret")]
    pub token: Option<Secret>,
    #[serde(deserialize_with = "weak::bool")]
    pub skip_metadata_api_check: bool,
}

impl AccessConfig {
    /// The template's part of the credential chain. `insecure_skip_tls_verify`
    /// only overrides when true, as in the plugin, where a `false` in the
    /// template does not stop the environment from turning it on.
    pub fn overrides(&self, origin: String) -> Overrides {
        Overrides {
            origin,
            access_key: self.access_key.clone(),
            secret_key: self.secret_key.clone(),
            region: self.region.clone(),
            custom_endpoint_oapi: self.custom_endpoint_oapi.clone(),
            x509_cert_path: self.x509_cert_path.clone(),
            x509_key_path: self.x509_key_path.clone(),
            insecure_skip_tls_verify: self.insecure_skip_tls_verify.then_some(true),
            profile: self.profile.clone(),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), Failure> {
        match (&self.access_key, &self.secret_key) {
            (Some(_), None) => {
                return Err(invalid("access_key", "set secret_key with it, or neither"));
            }
            (None, Some(_)) => {
                return Err(invalid("secret_key", "set access_key with it, or neither"));
            }
            _ => {}
        }
        if let Some(raw) = &self.custom_endpoint_oapi {
            Endpoint::parse(raw, "https").map_err(|e| invalid("custom_endpoint_oapi", e))?;
        }
        Ok(())
    }

    /// Certificate paths are relative to the template's folder.
    pub(crate) fn resolve_paths(&mut self, template_dir: &Path) {
        for path in [&mut self.x509_cert_path, &mut self.x509_key_path]
            .into_iter()
            .flatten()
        {
            *path = template_dir.join(&*path);
        }
    }
}
