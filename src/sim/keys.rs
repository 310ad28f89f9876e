//! Keypairs as OUTSCALE makes them: generated RSA 2048 keys returned once in
//! PKCS#1 PEM, or public keys imported in OpenSSH, RFC 4716, PKCS#8 or
//! PKCS#1 form. Everything is kept in OpenSSH form, what a VM trusts.

use base64::Engine;
use md5::{Digest, Md5};
use rsa::pkcs1::{DecodeRsaPublicKey, EncodeRsaPrivateKey, LineEnding};
use rsa::pkcs8::DecodePublicKey;
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};

use super::error::{SimError, SimResult};

/// A public key in the simulator's keeping.
pub struct PublicKey {
    /// `ssh-rsa`, `ssh-ed25519`, `ecdsa-sha2-nistp256`, …
    pub kind: String,
    /// The OpenSSH wire blob.
    pub blob: Vec<u8>,
}

impl PublicKey {
    /// `aa:bb:…`, the MD5 fingerprint OUTSCALE reports.
    pub fn fingerprint(&self) -> String {
        Md5::digest(&self.blob)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    }

    pub fn openssh(&self) -> String {
        format!(
            "{} {}",
            self.kind,
            base64::engine::general_purpose::STANDARD.encode(&self.blob)
        )
    }
}

fn put_string(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
}

/// An SSH `mpint`: big-endian, with a leading zero when the top bit is set.
fn put_mpint(out: &mut Vec<u8>, be: &[u8]) {
    let trimmed: &[u8] = {
        let start = be.iter().position(|b| *b != 0).unwrap_or(be.len());
        &be[start..]
    };
    if trimmed.first().is_some_and(|b| b & 0x80 != 0) {
        let mut v = vec![0u8];
        v.extend_from_slice(trimmed);
        put_string(out, &v);
    } else {
        put_string(out, trimmed);
    }
}

fn rsa_public(key: &RsaPublicKey) -> PublicKey {
    let mut blob = Vec::new();
    put_string(&mut blob, b"ssh-rsa");
    put_mpint(&mut blob, &key.e().to_bytes_be());
    put_mpint(&mut blob, &key.n().to_bytes_be());
    PublicKey {
        kind: "ssh-rsa".into(),
        blob,
    }
}

/// A new RSA 2048 key: the private key in PKCS#1 PEM and its public key.
pub fn generate() -> SimResult<(String, PublicKey)> {
    let mut rng = rand::thread_rng();
    let private = RsaPrivateKey::new(&mut rng, 2048)
        .map_err(|e| SimError::internal(format!("key generation failed: {e}")))?;
    let pem = private
        .to_pkcs1_pem(LineEnding::LF)
        .map_err(|e| SimError::internal(format!("key encoding failed: {e}")))?;
    Ok((pem.to_string(), rsa_public(&private.to_public_key())))
}

/// Reads `PublicKey` of CreateKeypair: base64 of the key text.
pub fn import(public_key_b64: &str) -> SimResult<PublicKey> {
    let engine = base64::engine::general_purpose::STANDARD;
    let bad = |why: &str| SimError::invalid_code("4033", format!("PublicKey: {why}"));
    let text = engine
        .decode(public_key_b64.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| bad("must be the base64 of a public key file"))?;
    let text = text.trim();
    if text.starts_with("-----BEGIN PUBLIC KEY-----") {
        let key = RsaPublicKey::from_public_key_pem(text)
            .map_err(|_| bad("only RSA keys are read in PKCS#8 PEM form"))?;
        return checked_rsa(&key);
    }
    if text.starts_with("-----BEGIN RSA PUBLIC KEY-----") {
        let key = RsaPublicKey::from_pkcs1_pem(text).map_err(|e| bad(&e.to_string()))?;
        return checked_rsa(&key);
    }
    let b64 = if text.starts_with("---- BEGIN SSH2 PUBLIC KEY ----") {
        text.lines()
            .filter(|l| !l.starts_with("----") && !l.contains(':'))
            .collect::<String>()
    } else {
        text.split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string()
    };
    let blob = engine
        .decode(b64)
        .map_err(|_| bad("not an OpenSSH, RFC 4716, PKCS#8 or PKCS#1 public key"))?;
    let kind = read_string(&blob)
        .and_then(|s| String::from_utf8(s.to_vec()).ok())
        .ok_or_else(|| bad("truncated key"))?;
    const KINDS: [&str; 5] = [
        "ssh-rsa",
        "ssh-ed25519",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
    ];
    if !KINDS.contains(&kind.as_str()) {
        return Err(bad(&format!("unsupported key type {kind}")));
    }
    Ok(PublicKey { kind, blob })
}

fn checked_rsa(key: &RsaPublicKey) -> SimResult<PublicKey> {
    let bits = key.n().bits();
    if bits < 2048 {
        return Err(SimError::invalid_code(
            "4033",
            format!("PublicKey: RSA keys must have 2048 bits or more, this one has {bits}"),
        ));
    }
    Ok(rsa_public(key))
}

fn read_string(data: &[u8]) -> Option<&[u8]> {
    let len = u32::from_be_bytes(data.get(..4)?.try_into().ok()?) as usize;
    data.get(4..4 + len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_is_pkcs1_and_imports_back() {
        let (pem, public) = generate().unwrap();
        assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        assert_eq!(public.kind, "ssh-rsa");
        let engine = base64::engine::general_purpose::STANDARD;
        let again = import(&engine.encode(public.openssh())).unwrap();
        assert_eq!(again.blob, public.blob);
        assert_eq!(again.fingerprint(), public.fingerprint());
        assert_eq!(public.fingerprint().split(':').count(), 16);
    }

    #[test]
    fn rejects_garbage() {
        let engine = base64::engine::general_purpose::STANDARD;
        assert!(import("%%%").is_err());
        assert!(import(&engine.encode("ssh-rsa notbase64!")).is_err());
        assert!(import(&engine.encode("ssh-dss AAAAB3NzaC1kc3M=")).is_err());
    }
}
