//! The credential chain of design §3, source by source, field by field.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use osci::oapi::credentials::{CredentialsError, Environment, Pem, Source, resolve};
use osci::oapi::{Endpoint, Overrides, Secret};

struct Case {
    name: &'static str,
    overrides: Overrides,
    env: &'static [(&'static str, &'static str)],
    /// Contents of ~/.osc/config.json, if any.
    profile_file: Option<&'static str>,
    expect: Expect,
}

enum Expect {
    Ok {
        access_key: Option<(&'static str, Src)>,
        region: (&'static str, Src),
        endpoint: (&'static str, Src),
        warns: bool,
    },
    Err(&'static str),
}

/// A source with the file path filled in later.
#[derive(Debug, Clone, Copy)]
enum Src {
    Template(&'static str),
    Env(&'static str),
    Profile(&'static str, &'static str),
    Default,
}

impl Src {
    fn into_source(self, file: &Path) -> Source {
        match self {
            Src::Template(key) => Source::Template {
                origin: "template t.json".into(),
                key: key.into(),
            },
            Src::Env(name) => Source::Env(name.into()),
            Src::Profile(profile, key) => Source::Profile {
                file: file.to_path_buf(),
                profile: profile.into(),
                key: key.into(),
            },
            Src::Default => Source::Default,
        }
    }
}

fn template(ak: Option<&str>, sk: Option<&str>, region: Option<&str>) -> Overrides {
    Overrides {
        origin: "template t.json".into(),
        access_key: ak.map(str::to_string),
        secret_key: sk.map(Secret::new),
        region: region.map(str::to_string),
        ..Default::default()
    }
}

const PROFILES: &str = r#"{
  "default": {"access_key": "AK_FILE", "secret_key": "SK_FILE", "region": "us-east-2"},
  "other": {"access_key": "AK_OTHER", "secret_key": "SK_OTHER",
            "endpoints": {"api": "gw.example.com"}, "protocol": "https"},
  "half": {"access_key": "AK_HALF"}
}"#;

fn cases() -> Vec<Case> {
    use Expect::*;
    vec![
        Case {
            name: "nothing set: defaults, no keys",
            overrides: Overrides::default(),
            env: &[],
            profile_file: None,
            expect: Ok {
                access_key: None,
                region: ("eu-west-2", Src::Default),
                endpoint: ("https://api.eu-west-2.outscale.com/api/v1", Src::Default),
                warns: false,
            },
        },
        Case {
            name: "OSC_* environment",
            overrides: Overrides::default(),
            env: &[
                ("OSC_ACCESS_KEY", "AK_ENV"),
                ("OSC_SECRET_KEY", "SK_ENV"),
                ("OSC_REGION", "cloudgouv-eu-west-1"),
            ],
            profile_file: None,
            expect: Ok {
                access_key: Some(("AK_ENV", Src::Env("OSC_ACCESS_KEY"))),
                region: ("cloudgouv-eu-west-1", Src::Env("OSC_REGION")),
                endpoint: (
                    "https://api.cloudgouv-eu-west-1.outscale.com/api/v1",
                    Src::Default,
                ),
                warns: false,
            },
        },
        Case {
            name: "default profile of ~/.osc/config.json",
            overrides: Overrides::default(),
            env: &[],
            profile_file: Some(PROFILES),
            expect: Ok {
                access_key: Some(("AK_FILE", Src::Profile("default", "access_key"))),
                region: ("us-east-2", Src::Profile("default", "region")),
                endpoint: ("https://api.us-east-2.outscale.com/api/v1", Src::Default),
                warns: false,
            },
        },
        Case {
            name: "deprecated OUTSCALE_* variables, with a warning",
            overrides: Overrides::default(),
            env: &[
                ("OUTSCALE_ACCESSKEYID", "AK_OLD"),
                ("OUTSCALE_SECRETKEYID", "SK_OLD"),
                ("OUTSCALE_REGION", "us-west-1"),
                ("OUTSCALE_OAPI_URL", "https://legacy.example/api/v1"),
            ],
            profile_file: None,
            expect: Ok {
                access_key: Some(("AK_OLD", Src::Env("OUTSCALE_ACCESSKEYID"))),
                region: ("us-west-1", Src::Env("OUTSCALE_REGION")),
                endpoint: (
                    "https://legacy.example/api/v1",
                    Src::Env("OUTSCALE_OAPI_URL"),
                ),
                warns: true,
            },
        },
        Case {
            name: "template beats env beats profile beats OUTSCALE_*",
            overrides: template(Some("AK_TPL"), Some("SK_TPL"), None),
            env: &[
                ("OSC_ACCESS_KEY", "AK_ENV"),
                ("OSC_SECRET_KEY", "SK_ENV"),
                ("OUTSCALE_ACCESSKEYID", "AK_OLD"),
                ("OUTSCALE_SECRETKEYID", "SK_OLD"),
                ("OUTSCALE_REGION", "us-west-1"),
            ],
            profile_file: Some(PROFILES),
            expect: Ok {
                access_key: Some(("AK_TPL", Src::Template("access_key"))),
                // Field by field: the region comes from the profile, which
                // ranks above OUTSCALE_REGION, as no higher source sets it.
                region: ("us-east-2", Src::Profile("default", "region")),
                endpoint: ("https://api.us-east-2.outscale.com/api/v1", Src::Default),
                warns: false,
            },
        },
        Case {
            name: "keys from the profile, region from OSC_REGION",
            overrides: Overrides::default(),
            env: &[("OSC_REGION", "ap-northeast-1")],
            profile_file: Some(PROFILES),
            expect: Ok {
                access_key: Some(("AK_FILE", Src::Profile("default", "access_key"))),
                region: ("ap-northeast-1", Src::Env("OSC_REGION")),
                endpoint: (
                    "https://api.ap-northeast-1.outscale.com/api/v1",
                    Src::Default,
                ),
                warns: false,
            },
        },
        Case {
            name: "template region beats every other",
            overrides: template(None, None, Some("us-west-1")),
            env: &[("OSC_REGION", "ap-northeast-1")],
            profile_file: Some(PROFILES),
            expect: Ok {
                access_key: Some(("AK_FILE", Src::Profile("default", "access_key"))),
                region: ("us-west-1", Src::Template("region")),
                endpoint: ("https://api.us-west-1.outscale.com/api/v1", Src::Default),
                warns: false,
            },
        },
        Case {
            name: "OSC_PROFILE selects a profile with its endpoint",
            overrides: Overrides::default(),
            env: &[("OSC_PROFILE", "other")],
            profile_file: Some(PROFILES),
            expect: Ok {
                access_key: Some(("AK_OTHER", Src::Profile("other", "access_key"))),
                region: ("eu-west-2", Src::Default),
                endpoint: (
                    "https://gw.example.com/api/v1",
                    Src::Profile("other", "endpoints.api"),
                ),
                warns: false,
            },
        },
        Case {
            name: "OSC_ENDPOINT_API beats the profile's endpoint; sim:// selects the simulator",
            overrides: Overrides::default(),
            env: &[("OSC_PROFILE", "other"), ("OSC_ENDPOINT_API", "sim://")],
            profile_file: Some(PROFILES),
            expect: Ok {
                access_key: Some(("AK_OTHER", Src::Profile("other", "access_key"))),
                region: ("eu-west-2", Src::Default),
                endpoint: ("sim://state/sim", Src::Env("OSC_ENDPOINT_API")),
                warns: false,
            },
        },
        Case {
            name: "pair rule: env sets only the access key, even though the profile has both",
            overrides: Overrides::default(),
            env: &[("OSC_ACCESS_KEY", "AK_ENV")],
            profile_file: Some(PROFILES),
            expect: Err("access key is set by env OSC_ACCESS_KEY but the secret key is not"),
        },
        Case {
            name: "pair rule: template sets only the secret key",
            overrides: template(None, Some("SK_TPL"), None),
            env: &[("OSC_ACCESS_KEY", "AK_ENV"), ("OSC_SECRET_KEY", "SK_ENV")],
            profile_file: None,
            expect: Err(
                "secret key is set by template t.json: secret_key but the access key is not",
            ),
        },
        Case {
            name: "pair rule: a profile with only an access key",
            overrides: Overrides::default(),
            env: &[("OSC_PROFILE", "half")],
            profile_file: Some(PROFILES),
            expect: Err("access key is set by profile half"),
        },
        Case {
            name: "a named profile that does not exist",
            overrides: Overrides {
                origin: "template t.json".into(),
                profile: Some("nope".into()),
                ..Default::default()
            },
            env: &[],
            profile_file: Some(PROFILES),
            expect: Err("profile `nope` was asked for (template t.json: profile)"),
        },
        Case {
            name: "a named profile without a file",
            overrides: Overrides::default(),
            env: &[("OSC_PROFILE", "x")],
            profile_file: None,
            expect: Err("the file does not exist"),
        },
        Case {
            name: "a broken credentials file",
            overrides: Overrides::default(),
            env: &[],
            profile_file: Some("{not json"),
            expect: Err("not a JSON object of profiles"),
        },
    ]
}

fn env_fn(
    pairs: &'static [(&'static str, &'static str)],
    extra: Vec<(String, String)>,
) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .chain(extra)
        .collect();
    move |name: &str| map.get(name).cloned()
}

#[test]
fn precedence_table() {
    for case in cases() {
        let home = tempfile::tempdir().unwrap();
        let file = home.path().join(".osc").join("config.json");
        if let Some(text) = case.profile_file {
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, text).unwrap();
        }
        let var = env_fn(case.env, Vec::new());
        let env = Environment {
            var: &var,
            home: Some(home.path().to_path_buf()),
        };
        let result = resolve(&case.overrides, &env);
        match case.expect {
            Expect::Ok {
                access_key,
                region,
                endpoint,
                warns,
            } => {
                let c = result.unwrap_or_else(|e| panic!("{}: {e}", case.name));
                match access_key {
                    None => assert!(
                        c.access_key.is_none() && c.secret_key.is_none(),
                        "{}",
                        case.name
                    ),
                    Some((value, src)) => {
                        let ak = c.access_key.as_ref().unwrap();
                        assert_eq!(ak.value, value, "{}", case.name);
                        assert_eq!(ak.source, src.into_source(&file), "{}", case.name);
                        let sk = c.secret_key.as_ref().unwrap();
                        assert_eq!(
                            sk.value.expose(),
                            value.replace("AK", "SK"),
                            "{}: pair",
                            case.name
                        );
                    }
                }
                assert_eq!(c.region.value, region.0, "{}", case.name);
                assert_eq!(
                    c.region.source,
                    region.1.into_source(&file),
                    "{}",
                    case.name
                );
                assert_eq!(c.endpoint.value.to_string(), endpoint.0, "{}", case.name);
                assert_eq!(
                    c.endpoint.source,
                    endpoint.1.into_source(&file),
                    "{}",
                    case.name
                );
                assert_eq!(
                    !c.warnings.is_empty(),
                    warns,
                    "{}: {:?}",
                    case.name,
                    c.warnings
                );
            }
            Expect::Err(fragment) => {
                let e = result
                    .err()
                    .unwrap_or_else(|| panic!("{}: expected an error", case.name));
                assert!(e.to_string().contains(fragment), "{}: {e}", case.name);
            }
        }
    }
}

#[test]
fn config_file_path_comes_from_osc_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("elsewhere.json");
    std::fs::write(&file, PROFILES).unwrap();
    let var = env_fn(
        &[],
        vec![("OSC_CONFIG_FILE".into(), file.display().to_string())],
    );
    let env = Environment {
        var: &var,
        home: None,
    };
    let c = resolve(&Overrides::default(), &env).unwrap();
    assert_eq!(c.access_key.unwrap().value, "AK_FILE");
    assert_eq!(c.profile, Some((file, "default".to_string())));
}

#[test]
fn x509_and_tls_settings() {
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join(".osc/config.json");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(
        &file,
        r#"{"default": {"access_key": "A", "secret_key": "S", "tls_skip_verify": true,
            "x509_client_cert_b64": "Q0VSVA==", "x509_client_key": "/etc/osc/client.key"}}"#,
    )
    .unwrap();
    let var = env_fn(&[("OSC_X509_CLIENT_CERT", "/env/cert.pem")], Vec::new());
    let env = Environment {
        var: &var,
        home: Some(home.path().to_path_buf()),
    };
    let c = resolve(&Overrides::default(), &env).unwrap();
    assert_eq!(c.auth_method(), "access key + x509 client certificate");
    let cert = c.x509_cert.unwrap();
    assert_eq!(cert.value, Pem::Path(PathBuf::from("/env/cert.pem")));
    assert_eq!(cert.source, Source::Env("OSC_X509_CLIENT_CERT".into()));
    let key = c.x509_key.unwrap();
    assert_eq!(key.value, Pem::Path(PathBuf::from("/etc/osc/client.key")));
    assert!(c.tls_skip_verify.value);
    assert!(matches!(c.tls_skip_verify.source, Source::Profile { .. }));

    // A base64 PEM decodes; the template's false does not stop the env's true.
    assert_eq!(Pem::Base64("Q0VSVA==".into()).load().unwrap(), b"CERT");
    let var = env_fn(&[("OSC_TLS_SKIP_VERIFY", "yes")], Vec::new());
    let env = Environment {
        var: &var,
        home: None,
    };
    let c = resolve(&Overrides::default(), &env).unwrap();
    assert!(c.tls_skip_verify.value);
    let c = resolve(
        &Overrides {
            insecure_skip_tls_verify: Some(false),
            origin: "template t.json".into(),
            ..Default::default()
        },
        &env,
    )
    .unwrap();
    assert!(!c.tls_skip_verify.value, "the template ranks first");
}

#[test]
fn certificate_without_key_is_refused() {
    let var = env_fn(&[("OSC_X509_CLIENT_CERT", "/c.pem")], Vec::new());
    let env = Environment {
        var: &var,
        home: None,
    };
    let e = resolve(&Overrides::default(), &env).unwrap_err();
    assert!(matches!(e, CredentialsError::Invalid(_)));
    assert!(e.to_string().contains("no key"), "{e}");
}

#[test]
fn custom_endpoint_is_normalised() {
    let var = env_fn(&[], Vec::new());
    let env = Environment {
        var: &var,
        home: None,
    };
    let c = resolve(
        &Overrides {
            origin: "template t.json".into(),
            custom_endpoint_oapi: Some("api.eu-west-2.outscale.com".into()),
            ..Default::default()
        },
        &env,
    )
    .unwrap();
    assert_eq!(
        c.endpoint.value,
        Endpoint::Url("https://api.eu-west-2.outscale.com/api/v1".into())
    );
    assert_eq!(
        c.endpoint.source,
        Source::Template {
            origin: "template t.json".into(),
            key: "custom_endpoint_oapi".into()
        }
    );
}
