//! The credential chain (design §3): field by field, highest first,
//!
//! 1. template keys or command-line flags,
//! 2. `OSC_*` environment variables,
//! 3. a profile of `~/.osc/config.json` (or `$OSC_CONFIG_FILE`; profile from
//!    the template's `profile`, else `$OSC_PROFILE`, else `default`),
//! 4. the deprecated `OUTSCALE_*` variables (with a warning),
//! 5. defaults (region `eu-west-2`, protocol `https`).
//!
//! The access key and the secret key are a pair: both come from the first
//! source that sets either, and a source that sets only one is an error.
//! Every resolved field remembers where it came from, for `osci whoami`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::Secret;
use super::endpoint::Endpoint;

pub const DEFAULT_REGION: &str = "eu-west-2";

/// Where one resolved value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A template key or a flag; `origin` says which file or flag.
    Template {
        origin: String,
        key: String,
    },
    Env(String),
    Profile {
        file: PathBuf,
        profile: String,
        key: String,
    },
    Default,
    /// The simulator's default account, used when `sim://` has no keys.
    Simulator,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Template { origin, key } => write!(f, "{origin}: {key}"),
            Source::Env(name) => write!(f, "env {name}"),
            Source::Profile { file, profile, key } => {
                write!(f, "profile {profile} in {}: {key}", file.display())
            }
            Source::Default => f.write_str("default"),
            Source::Simulator => f.write_str("simulator default account"),
        }
    }
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sourced<T> {
    pub value: T,
    pub source: Source,
}

/// A PEM given either as a file path or as base64 of the PEM itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pem {
    Path(PathBuf),
    Base64(String),
}

impl Pem {
    pub fn load(&self) -> Result<Vec<u8>, CredentialsError> {
        match self {
            Pem::Path(p) => std::fs::read(p).map_err(|e| CredentialsError::Unreadable {
                what: "x509 PEM file",
                path: p.clone(),
                message: e.to_string(),
            }),
            Pem::Base64(b) => {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD
                    .decode(b.trim())
                    .map_err(|e| CredentialsError::Invalid(format!("x509 base64 PEM: {e}")))
            }
        }
    }
}

/// Highest-precedence values: a template's access config or command flags.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Names where these came from in messages, e.g. `template web.json, build "web"`.
    pub origin: String,
    pub access_key: Option<String>,
    pub secret_key: Option<Secret>,
    pub region: Option<String>,
    pub custom_endpoint_oapi: Option<String>,
    pub x509_cert_path: Option<PathBuf>,
    pub x509_key_path: Option<PathBuf>,
    pub insecure_skip_tls_verify: Option<bool>,
    pub profile: Option<String>,
}

impl Overrides {
    /// Whether both lead to the same account, region and endpoint (the
    /// origin aside).
    pub fn same_access(&self, other: &Overrides) -> bool {
        self.access_key == other.access_key
            && self.secret_key == other.secret_key
            && self.region == other.region
            && self.custom_endpoint_oapi == other.custom_endpoint_oapi
            && self.x509_cert_path == other.x509_cert_path
            && self.x509_key_path == other.x509_key_path
            && self.insecure_skip_tls_verify == other.insecure_skip_tls_verify
            && self.profile == other.profile
    }
}

/// Everything the chain resolved.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub access_key: Option<Sourced<String>>,
    pub secret_key: Option<Sourced<Secret>>,
    pub region: Sourced<String>,
    pub endpoint: Sourced<Endpoint>,
    pub x509_cert: Option<Sourced<Pem>>,
    pub x509_key: Option<Sourced<Pem>>,
    pub tls_skip_verify: Sourced<bool>,
    /// The profile file and profile that were read, if any.
    pub profile: Option<(PathBuf, String)>,
    /// Deprecation notices to show the user.
    pub warnings: Vec<String>,
}

impl Credentials {
    pub fn has_keys(&self) -> bool {
        self.access_key.is_some() && self.secret_key.is_some()
    }

    pub fn auth_method(&self) -> &'static str {
        match (self.has_keys(), self.x509_cert.is_some()) {
            (true, true) => "access key + x509 client certificate",
            (true, false) => "access key",
            (false, true) => "x509 client certificate only (no access key)",
            (false, false) => "none",
        }
    }

    /// Every place that was looked at for keys, for a "no credentials" error.
    pub fn searched(&self) -> String {
        let file = self
            .profile
            .as_ref()
            .map(|(f, p)| format!("profile {p} in {}", f.display()))
            .unwrap_or_else(|| "no profile file".into());
        format!(
            "looked for access_key/secret_key in the template, OSC_ACCESS_KEY/OSC_SECRET_KEY, \
             {file}, and OUTSCALE_ACCESSKEYID/OUTSCALE_SECRETKEYID"
        )
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CredentialsError {
    #[error(
        "{set} is set by {origin} but {missing} is not: the access key and the secret key must \
         come from the same place"
    )]
    HalfPair {
        set: &'static str,
        missing: &'static str,
        origin: String,
    },
    #[error("profile `{profile}` was asked for ({asked_by}) but {}: {reason}", file.display())]
    Profile {
        profile: String,
        asked_by: String,
        file: PathBuf,
        reason: String,
    },
    #[error("cannot read the {what} {}: {message}", path.display())]
    Unreadable {
        what: &'static str,
        path: PathBuf,
        message: String,
    },
    #[error("the credentials file {}: {message}", path.display())]
    BadFile { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

/// One profile of the credentials file. Unknown keys are ignored: the file is
/// shared with other OUTSCALE tools, which have keys of their own.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct Profile {
    access_key: Option<String>,
    secret_key: Option<String>,
    region: Option<String>,
    protocol: Option<String>,
    endpoints: BTreeMap<String, String>,
    x509_client_cert: Option<String>,
    x509_client_key: Option<String>,
    x509_client_cert_b64: Option<String>,
    x509_client_key_b64: Option<String>,
    tls_skip_verify: Option<bool>,
}

/// The process environment and home directory, injectable for tests.
pub struct Environment<'a> {
    pub var: &'a dyn Fn(&str) -> Option<String>,
    pub home: Option<PathBuf>,
}

impl Environment<'_> {
    fn get(&self, name: &str) -> Option<String> {
        (self.var)(name).filter(|v| !v.is_empty())
    }
}

/// The real process environment.
pub fn process_environment() -> Environment<'static> {
    fn var(name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
    Environment {
        var: &var,
        home: std::env::var_os("HOME").map(PathBuf::from),
    }
}

/// One layer of the chain with the names it uses for each field.
struct Layer {
    source: Box<dyn Fn(&str) -> Source>,
    access_key: Option<String>,
    secret_key: Option<String>,
    region: Option<String>,
    endpoint: Option<String>,
    x509_cert: Option<Pem>,
    x509_key: Option<Pem>,
    tls_skip_verify: Option<bool>,
    names: LayerNames,
}

/// The key or variable name of each field in a layer, for sources and errors.
struct LayerNames {
    access_key: &'static str,
    secret_key: &'static str,
    region: &'static str,
    endpoint: &'static str,
    x509_cert: &'static str,
    x509_key: &'static str,
    tls_skip_verify: &'static str,
}

fn parse_bool(v: &str) -> bool {
    matches!(v.to_ascii_lowercase().as_str(), "true" | "yes" | "1")
}

fn env_pem(
    env: &Environment<'_>,
    path_var: &'static str,
    b64_var: &'static str,
) -> Option<(Pem, &'static str)> {
    if let Some(p) = env.get(path_var) {
        return Some((Pem::Path(PathBuf::from(p)), path_var));
    }
    env.get(b64_var).map(|b| (Pem::Base64(b), b64_var))
}

fn read_profile(
    env: &Environment<'_>,
    overrides: &Overrides,
) -> Result<Option<(PathBuf, String, Profile)>, CredentialsError> {
    let (name, asked_by) = match (&overrides.profile, env.get("OSC_PROFILE")) {
        (Some(p), _) => (p.clone(), Some(format!("{}: profile", overrides.origin))),
        (None, Some(p)) => (p, Some("env OSC_PROFILE".to_string())),
        (None, None) => ("default".to_string(), None),
    };
    let file = match env.get("OSC_CONFIG_FILE") {
        Some(f) => PathBuf::from(f),
        None => match &env.home {
            Some(h) => h.join(".osc").join("config.json"),
            None => return Ok(None),
        },
    };
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return match asked_by {
                Some(asked_by) => Err(CredentialsError::Profile {
                    profile: name,
                    asked_by,
                    file,
                    reason: "the file does not exist".into(),
                }),
                None => Ok(None),
            };
        }
        Err(e) => {
            return Err(CredentialsError::Unreadable {
                what: "credentials file",
                path: file,
                message: e.to_string(),
            });
        }
    };
    let mut profiles: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(&text).map_err(|e| CredentialsError::BadFile {
            path: file.clone(),
            message: format!("not a JSON object of profiles: {e}"),
        })?;
    let Some(value) = profiles.remove(&name) else {
        return match asked_by {
            Some(asked_by) => Err(CredentialsError::Profile {
                profile: name,
                asked_by,
                file,
                reason: format!(
                    "the file has no such profile (it has: {})",
                    profiles.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            }),
            None => Ok(None),
        };
    };
    let profile: Profile =
        serde_json::from_value(value).map_err(|e| CredentialsError::BadFile {
            path: file.clone(),
            message: format!("profile `{name}`: {e}"),
        })?;
    Ok(Some((file, name, profile)))
}

/// Runs the chain.
/// A key with a character no key has: it would not sign (and could not go
/// in a header). The message names where it came from, never the value.
fn check_key(what: &str, value: &str, source: &Source) -> Result<(), CredentialsError> {
    match value
        .char_indices()
        .find(|(_, c)| c.is_control() || c.is_whitespace())
    {
        None => Ok(()),
        Some((at, c)) => Err(CredentialsError::Invalid(format!(
            "the {what} from {source} holds {} at position {}{}: remove it",
            describe_char(c),
            value[..at].chars().count() + 1,
            windows_hint(c),
        ))),
    }
}

fn describe_char(c: char) -> String {
    match c {
        '\r' => "a carriage return (\\r)".into(),
        '\n' => "a line feed (\\n)".into(),
        '\t' => "a tab".into(),
        ' ' => "a space".into(),
        c if c.is_control() => format!("the control character U+{:04X}", c as u32),
        c => format!("{c:?}"),
    }
}

fn windows_hint(c: char) -> &'static str {
    if c == '\r' {
        " (a file saved with Windows line endings leaves one)"
    } else {
        ""
    }
}

pub fn resolve(
    overrides: &Overrides,
    env: &Environment<'_>,
) -> Result<Credentials, CredentialsError> {
    let mut warnings = Vec::new();
    let profile = read_profile(env, overrides)?;

    let origin = overrides.origin.clone();
    let template = Layer {
        source: Box::new(move |key| Source::Template {
            origin: origin.clone(),
            key: key.to_string(),
        }),
        access_key: overrides.access_key.clone(),
        secret_key: overrides
            .secret_key
            .as_ref()
            .map(|s| s.expose().to_string()),
        region: overrides.region.clone(),
        endpoint: overrides.custom_endpoint_oapi.clone(),
        x509_cert: overrides.x509_cert_path.clone().map(Pem::Path),
        x509_key: overrides.x509_key_path.clone().map(Pem::Path),
        tls_skip_verify: overrides.insecure_skip_tls_verify,
        names: LayerNames {
            access_key: "access_key",
            secret_key: "secret_key",
            region: "region",
            endpoint: "custom_endpoint_oapi",
            x509_cert: "x509_cert_path",
            x509_key: "x509_key_path",
            tls_skip_verify: "insecure_skip_tls_verify",
        },
    };

    let cert = env_pem(env, "OSC_X509_CLIENT_CERT", "OSC_X509_CLIENT_CERT_B64");
    let key = env_pem(env, "OSC_X509_CLIENT_KEY", "OSC_X509_CLIENT_KEY_B64");
    let osc_env = Layer {
        source: Box::new(|name| Source::Env(name.to_string())),
        access_key: env.get("OSC_ACCESS_KEY"),
        secret_key: env.get("OSC_SECRET_KEY"),
        region: env.get("OSC_REGION"),
        endpoint: env.get("OSC_ENDPOINT_API"),
        names: LayerNames {
            access_key: "OSC_ACCESS_KEY",
            secret_key: "OSC_SECRET_KEY",
            region: "OSC_REGION",
            endpoint: "OSC_ENDPOINT_API",
            x509_cert: cert.as_ref().map_or("OSC_X509_CLIENT_CERT", |c| c.1),
            x509_key: key.as_ref().map_or("OSC_X509_CLIENT_KEY", |c| c.1),
            tls_skip_verify: "OSC_TLS_SKIP_VERIFY",
        },
        x509_cert: cert.map(|c| c.0),
        x509_key: key.map(|c| c.0),
        tls_skip_verify: env.get("OSC_TLS_SKIP_VERIFY").map(|v| parse_bool(&v)),
    };

    let mut layers = vec![template, osc_env];
    let mut protocol = env.get("OSC_PROTOCOL");
    if let Some((file, name, p)) = &profile {
        let (file, name) = (file.clone(), name.clone());
        if protocol.is_none() {
            protocol = p.protocol.clone();
        }
        let cert_b64 = p.x509_client_cert.is_none() && p.x509_client_cert_b64.is_some();
        let key_b64 = p.x509_client_key.is_none() && p.x509_client_key_b64.is_some();
        layers.push(Layer {
            source: Box::new(move |key| Source::Profile {
                file: file.clone(),
                profile: name.clone(),
                key: key.to_string(),
            }),
            access_key: p.access_key.clone().filter(|s| !s.is_empty()),
            secret_key: p.secret_key.clone().filter(|s| !s.is_empty()),
            region: p.region.clone().filter(|s| !s.is_empty()),
            endpoint: p.endpoints.get("api").cloned().filter(|s| !s.is_empty()),
            x509_cert: p
                .x509_client_cert
                .clone()
                .map(|c| Pem::Path(PathBuf::from(c)))
                .or_else(|| p.x509_client_cert_b64.clone().map(Pem::Base64)),
            x509_key: p
                .x509_client_key
                .clone()
                .map(|c| Pem::Path(PathBuf::from(c)))
                .or_else(|| p.x509_client_key_b64.clone().map(Pem::Base64)),
            tls_skip_verify: p.tls_skip_verify,
            names: LayerNames {
                access_key: "access_key",
                secret_key: "secret_key",
                region: "region",
                endpoint: "endpoints.api",
                x509_cert: if cert_b64 {
                    "x509_client_cert_b64"
                } else {
                    "x509_client_cert"
                },
                x509_key: if key_b64 {
                    "x509_client_key_b64"
                } else {
                    "x509_client_key"
                },
                tls_skip_verify: "tls_skip_verify",
            },
        });
    }

    let legacy = Layer {
        source: Box::new(|name| Source::Env(name.to_string())),
        access_key: env.get("OUTSCALE_ACCESSKEYID"),
        secret_key: env.get("OUTSCALE_SECRETKEYID"),
        region: env.get("OUTSCALE_REGION"),
        endpoint: env.get("OUTSCALE_OAPI_URL"),
        x509_cert: env.get("OUTSCALE_X509CERT").map(|p| Pem::Path(p.into())),
        x509_key: env.get("OUTSCALE_X509KEY").map(|p| Pem::Path(p.into())),
        tls_skip_verify: None,
        names: LayerNames {
            access_key: "OUTSCALE_ACCESSKEYID",
            secret_key: "OUTSCALE_SECRETKEYID",
            region: "OUTSCALE_REGION",
            endpoint: "OUTSCALE_OAPI_URL",
            x509_cert: "OUTSCALE_X509CERT",
            x509_key: "OUTSCALE_X509KEY",
            tls_skip_verify: "",
        },
    };
    layers.push(legacy);

    // The pair rule: the first layer that names either key must name both.
    let mut access_key = None;
    let mut secret_key = None;
    for layer in &layers {
        match (&layer.access_key, &layer.secret_key) {
            (Some(ak), Some(sk)) => {
                access_key = Some(Sourced {
                    value: ak.clone(),
                    source: (layer.source)(layer.names.access_key),
                });
                secret_key = Some(Sourced {
                    value: Secret::new(sk.clone()),
                    source: (layer.source)(layer.names.secret_key),
                });
                break;
            }
            (Some(_), None) => {
                return Err(CredentialsError::HalfPair {
                    set: "access key",
                    missing: "the secret key",
                    origin: (layer.source)(layer.names.access_key).to_string(),
                });
            }
            (None, Some(_)) => {
                return Err(CredentialsError::HalfPair {
                    set: "secret key",
                    missing: "the access key",
                    origin: (layer.source)(layer.names.secret_key).to_string(),
                });
            }
            (None, None) => {}
        }
    }

    fn first<T: Clone>(
        layers: &[Layer],
        get: impl Fn(&Layer) -> Option<T>,
        name: impl Fn(&LayerNames) -> &'static str,
    ) -> Option<Sourced<T>> {
        layers.iter().find_map(|l| {
            get(l).map(|value| Sourced {
                value,
                source: (l.source)(name(&l.names)),
            })
        })
    }

    let region = first(&layers, |l| l.region.clone(), |n| n.region).unwrap_or(Sourced {
        value: DEFAULT_REGION.to_string(),
        source: Source::Default,
    });
    let protocol = protocol.unwrap_or_else(|| "https".to_string());
    let endpoint = match first(&layers, |l| l.endpoint.clone(), |n| n.endpoint) {
        Some(raw) => Sourced {
            value: Endpoint::parse(&raw.value, &protocol).map_err(|e| {
                CredentialsError::Invalid(format!("endpoint from {}: {e}", raw.source))
            })?,
            source: raw.source,
        },
        None => Sourced {
            value: Endpoint::for_region(&region.value, &protocol),
            source: Source::Default,
        },
    };
    let x509_cert = first(&layers, |l| l.x509_cert.clone(), |n| n.x509_cert);
    let x509_key = first(&layers, |l| l.x509_key.clone(), |n| n.x509_key);
    match (&x509_cert, &x509_key) {
        (Some(c), None) => {
            return Err(CredentialsError::Invalid(format!(
                "an x509 client certificate is set by {} but no key for it",
                c.source
            )));
        }
        (None, Some(k)) => {
            return Err(CredentialsError::Invalid(format!(
                "an x509 client key is set by {} but no certificate for it",
                k.source
            )));
        }
        _ => {}
    }
    let tls_skip_verify =
        first(&layers, |l| l.tls_skip_verify, |n| n.tls_skip_verify).unwrap_or(Sourced {
            value: false,
            source: Source::Default,
        });

    for field in [
        access_key.as_ref().map(|s| &s.source),
        Some(&region.source),
        Some(&endpoint.source),
        x509_cert.as_ref().map(|s| &s.source),
    ]
    .into_iter()
    .flatten()
    {
        if let Source::Env(name) = field
            && name.starts_with("OUTSCALE_")
        {
            warnings.push(format!(
                "{name} is deprecated: use the OSC_* variables (OSC_ACCESS_KEY, OSC_SECRET_KEY, \
                 OSC_REGION, OSC_ENDPOINT_API, OSC_X509_CLIENT_CERT, OSC_X509_CLIENT_KEY)"
            ));
        }
    }

    if let Some(k) = &access_key {
        check_key("access key", &k.value, &k.source)?;
    }
    if let Some(k) = &secret_key {
        check_key("secret key", k.value.expose(), &k.source)?;
    }
    if let Some(bad) = region
        .value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
    {
        return Err(CredentialsError::Invalid(format!(
            "the region from {} holds {}: a region name is letters, digits and dashes, such as \
             eu-west-2{}",
            region.source,
            describe_char(bad),
            windows_hint(bad),
        )));
    }

    Ok(Credentials {
        access_key,
        secret_key,
        region,
        endpoint,
        x509_cert,
        x509_key,
        tls_skip_verify,
        profile: profile.map(|(f, n, _)| (f, n)),
        warnings,
    })
}
