//! Verifying request signatures as the gateway does (`reference/oapi.md`
//! §2.1): recompute the OSC4 or AWS4 signature with the account's secret key
//! over the headers the client says it signed, refuse dates more than five
//! minutes off, and lock a key out after four failures in a row.

use std::collections::HashMap;

use http::HeaderMap;

use crate::oapi::sign::{SigningInput, parse_authorization, parse_date, sign_headers};

use super::error::{SimError, SimResult};
use super::world::{Millis, World};

const MAX_SKEW_SECS: i64 = 5 * 60;
const FAILURES_BEFORE_LOCK: u32 = 4;

/// Consecutive failures and lock deadlines per access key.
#[derive(Debug, Default)]
pub struct Lockouts {
    keys: HashMap<String, (u32, Millis)>,
}

impl Lockouts {
    fn check(&self, access_key: &str, now: Millis) -> SimResult<()> {
        match self.keys.get(access_key) {
            Some((_, until)) if *until > now => Err(SimError::locked(format!(
                "access key {access_key} is locked for {} more seconds after repeated \
                 authentication failures",
                (until - now + 999) / 1000
            ))),
            _ => Ok(()),
        }
    }

    fn failed(&mut self, access_key: &str, now: Millis) {
        let entry = self.keys.entry(access_key.to_string()).or_insert((0, 0));
        entry.0 += 1;
        if entry.0.is_multiple_of(FAILURES_BEFORE_LOCK) {
            // One more minute for every four failures, ten at most.
            let minutes = i64::from(entry.0 / FAILURES_BEFORE_LOCK).min(10);
            entry.1 = now + minutes * 60_000;
        }
    }

    fn succeeded(&mut self, access_key: &str) {
        self.keys.remove(access_key);
    }
}

/// Returns the account id the request is signed for.
pub fn verify(
    world: &World,
    lockouts: &mut Lockouts,
    headers: &HeaderMap,
    path: &str,
    body: &[u8],
    now: Millis,
) -> SimResult<String> {
    let header = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            SimError::auth_failed("the request is not signed (no Authorization header)")
        })?;
    let auth = parse_authorization(header).ok_or_else(|| {
        SimError::auth_failed(
            "the Authorization header is not an OSC4-HMAC-SHA256 or AWS4-HMAC-SHA256 signature",
        )
    })?;
    lockouts.check(&auth.access_key, now)?;
    let result = check(world, &auth, headers, path, body, now);
    match &result {
        Ok(_) => lockouts.succeeded(&auth.access_key),
        Err(_) => lockouts.failed(&auth.access_key, now),
    }
    result
}

fn check(
    world: &World,
    auth: &crate::oapi::sign::Authorization,
    headers: &HeaderMap,
    path: &str,
    body: &[u8],
    now: Millis,
) -> SimResult<String> {
    let account = world
        .account_by_key(&auth.access_key)
        .ok_or_else(|| SimError::auth_failed("the access key is unknown"))?;
    let date_header = auth.flavour.date_header();
    let date_iso = headers
        .get(date_header)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| SimError::auth_failed(format!("the {date_header} header is missing")))?;
    let date = parse_date(date_iso).ok_or_else(|| {
        SimError::auth_failed(format!("{date_header} `{date_iso}` is not a date"))
    })?;
    let skew = (date.unix_timestamp() - now / 1000).abs();
    if skew > MAX_SKEW_SECS {
        return Err(SimError::auth_failed(format!(
            "the request date {date_iso} is {skew} seconds away from the server time: check the clock"
        )));
    }
    if !date_iso.starts_with(&auth.date) {
        return Err(SimError::auth_failed(
            "the credential scope date does not match the request date",
        ));
    }
    if auth.region != world.region {
        return Err(SimError::auth_failed(format!(
            "the signature is scoped to region {} but this is {}",
            auth.region, world.region
        )));
    }
    let names: Vec<&str> = auth.signed_headers.split(';').collect();
    if !names.contains(&"host") || !names.contains(&date_header) {
        return Err(SimError::auth_failed(format!(
            "SignedHeaders must cover host and {date_header}"
        )));
    }
    let value = |name: &str| -> SimResult<String> {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| SimError::auth_failed(format!("signed header {name} is missing")))
    };
    let host = value("host")?;
    // Some SDKs (osc-sdk-python) sign the host without the port they send.
    let mut hosts = vec![host.clone()];
    if let Some((bare, _port)) = host.rsplit_once(':')
        && !bare.ends_with(']')
    {
        hosts.push(bare.to_string());
    }
    for candidate in hosts {
        let mut signed = Vec::with_capacity(names.len());
        for name in &names {
            let v = if *name == "host" {
                candidate.clone()
            } else {
                value(name)?
            };
            signed.push((name.to_string(), v));
        }
        let computed = sign_headers(
            &SigningInput {
                flavour: auth.flavour,
                access_key: &auth.access_key,
                secret_key: &account.secret_key,
                region: &auth.region,
                service: &auth.service,
                host: &candidate,
                path,
                content_type: "",
                date_iso,
                body,
            },
            &signed,
        );
        if constant_time_eq(computed.signature.as_bytes(), auth.signature.as_bytes()) {
            return Ok(account.account_id.clone());
        }
    }
    Err(SimError::auth_failed(
        "the signature does not match: check the secret key and that the exact body, \
         Content-Type and Host were signed",
    ))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
