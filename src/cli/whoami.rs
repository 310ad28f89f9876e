//! `osci whoami`: who the credentials are, and where each came from.

use serde_json::json;

use osci::oapi::credentials::Sourced;
use osci::oapi::model::ReadAccountsRequest;
use osci::oapi::{Error, Overrides};

use super::connect::connect;

/// The first and last four characters: enough to tell keys apart.
fn mask(key: &str) -> String {
    if key.len() <= 8 {
        return "*".repeat(key.len());
    }
    format!("{}…{}", &key[..4], &key[key.len() - 4..])
}

pub async fn run(json_output: bool) -> anyhow::Result<()> {
    let connection = connect(&Overrides {
        origin: "flags".into(),
        ..Default::default()
    })?;
    let c = &connection.credentials;
    let accounts = connection
        .client
        .call(&ReadAccountsRequest::default())
        .await
        .map_err(|e| match &e {
            Error::Api(api) if api.is_auth_failure() => anyhow::anyhow!(
                "{e}\nThe keys came from: access key {}, secret key {}",
                c.access_key
                    .as_ref()
                    .map_or("none".into(), |s| s.source.to_string()),
                c.secret_key
                    .as_ref()
                    .map_or("none".into(), |s| s.source.to_string()),
            ),
            _ => anyhow::Error::new(e),
        })?;
    let account = accounts
        .accounts
        .first()
        .ok_or_else(|| anyhow::anyhow!("ReadAccounts answered no account"))?;
    let field = |s: &Sourced<String>| json!({"value": s.value, "source": s.source.to_string()});
    let source = |s: Option<String>| s.map_or(serde_json::Value::Null, |s| json!({"source": s}));
    if json_output {
        let out = json!({
            "account_id": account.account_id,
            "email": account.email,
            "region": field(&c.region),
            "endpoint": {"value": c.endpoint.value.to_string(), "source": c.endpoint.source.to_string()},
            "auth_method": c.auth_method(),
            "access_key": c.access_key.as_ref().map(|k| json!({"value": mask(&k.value), "source": k.source.to_string()})),
            "secret_key": source(c.secret_key.as_ref().map(|s| s.source.to_string())),
            "x509_client_cert": source(c.x509_cert.as_ref().map(|s| s.source.to_string())),
            "x509_client_key": source(c.x509_key.as_ref().map(|s| s.source.to_string())),
            "tls_skip_verify": {"value": c.tls_skip_verify.value, "source": c.tls_skip_verify.source.to_string()},
            "profile": c.profile.as_ref().map(|(f, p)| json!({"file": f, "name": p})),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let row = |name: &str, value: &str, source: &str| {
        println!("{name:<12} {value:<45} {source}");
    };
    row(
        "account",
        &account.account_id,
        account.email.as_deref().unwrap_or(""),
    );
    row("region", &c.region.value, &c.region.source.to_string());
    row(
        "endpoint",
        &c.endpoint.value.to_string(),
        &c.endpoint.source.to_string(),
    );
    row("auth", c.auth_method(), "");
    if let Some(ak) = &c.access_key {
        row("access key", &mask(&ak.value), &ak.source.to_string());
    }
    if let Some(sk) = &c.secret_key {
        row("secret key", "(hidden)", &sk.source.to_string());
    }
    if let (Some(cert), Some(key)) = (&c.x509_cert, &c.x509_key) {
        row("x509 cert", "", &cert.source.to_string());
        row("x509 key", "", &key.source.to_string());
    }
    row(
        "tls verify",
        if c.tls_skip_verify.value { "off" } else { "on" },
        &c.tls_skip_verify.source.to_string(),
    );
    if let Some((file, name)) = &c.profile {
        row("profile", name, &file.display().to_string());
    }
    Ok(())
}
