//! The metadata service of the VM osci runs on (behaviour §6): which VM the
//! chroot builder links its volumes to, and in which subregion it makes
//! them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::oapi::Transport;

/// Where the platform serves it.
pub const DEFAULT_URL: &str = "http://169.254.169.254";

/// The metadata service, reached through a transport (HTTP, or the
/// in-process simulator's). What it answers of the VM (its id, its
/// subregion) does not change while osci runs: each key is read once.
#[derive(Clone)]
pub struct Metadata {
    transport: Arc<dyn Transport>,
    base: String,
    read: Arc<Mutex<HashMap<String, String>>>,
}

impl Metadata {
    pub fn new(transport: Arc<dyn Transport>, base: &str) -> Metadata {
        Metadata {
            transport,
            base: base.trim_end_matches('/').to_string(),
            read: Default::default(),
        }
    }

    /// The value at `/latest/meta-data/KEY`.
    pub async fn get(&self, key: &str) -> Result<String, String> {
        if let Some(value) = self.read.lock().expect("metadata lock").get(key) {
            return Ok(value.clone());
        }
        let url = format!("{}/latest/meta-data/{key}", self.base);
        let fail = |why: String| {
            format!(
                "reading {url}: {why}. The chroot builder runs on an OUTSCALE VM; elsewhere, \
                 OSCI_METADATA_URL names a metadata service (`osci sim serve` prints one)"
            )
        };
        let request = http::Request::get(&url)
            .body(Bytes::new())
            .map_err(|e| fail(e.to_string()))?;
        let response = self
            .transport
            .send(request)
            .await
            .map_err(|e| fail(e.to_string()))?;
        if !response.status().is_success() {
            return Err(fail(format!("HTTP {}", response.status())));
        }
        let text = String::from_utf8_lossy(response.body()).trim().to_string();
        if text.is_empty() {
            return Err(fail("an empty answer".into()));
        }
        self.read
            .lock()
            .expect("metadata lock")
            .insert(key.to_string(), text.clone());
        Ok(text)
    }
}
