//! Wiring a client from the credential chain: HTTPS to a region, or the
//! in-process simulator for `sim://DIR`. This is the only place that knows
//! the simulator can stand behind an endpoint.

use std::sync::Arc;

use anyhow::{Context, bail};

use osci::builders::metadata::{self, Metadata};
use osci::oapi::credentials::{self, Credentials, Source, Sourced};
use osci::oapi::wait::WaitPolicy;
use osci::oapi::{Client, ClientConfig, Endpoint, HttpTransport, Overrides, Secret, Transport};
use osci::sim::{Faults, Sim, SimConfig, SimTransport};

/// Latency scale of an in-process simulator unless `OSCI_SIM_LATENCY_SCALE` says otherwise.
const DEFAULT_SIM_LATENCY: f64 = 0.25;

pub struct Connection {
    pub client: Client,
    pub credentials: Credentials,
    /// How waits poll: as against a real region, or, for the in-process
    /// simulator, as often relative to its (scaled) time.
    pub wait: WaitPolicy,
    /// The metadata service of the VM osci runs on: `OSCI_METADATA_URL`,
    /// else the in-process simulator's, else the platform's.
    pub metadata: Metadata,
}

fn env_f64(name: &str) -> anyhow::Result<Option<f64>> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v
            .parse()
            .map(Some)
            .with_context(|| format!("{name}=`{v}` is not a number")),
        _ => Ok(None),
    }
}

pub fn connect(overrides: &Overrides) -> anyhow::Result<Connection> {
    let mut credentials = credentials::resolve(overrides, &credentials::process_environment())
        .context("resolving OUTSCALE credentials")?;
    for w in &credentials.warnings {
        eprintln!("warning: {w}");
    }
    let mut rate_limit = match env_f64("OSCI_RATE_LIMIT")? {
        Some(r) if r <= 0.0 => None,
        Some(r) => Some(r),
        None => Some(5.0),
    };
    let mut wait = WaitPolicy::default();
    let metadata_url = std::env::var("OSCI_METADATA_URL")
        .ok()
        .filter(|u| !u.is_empty());
    let metadata_over_http = |url: &str| -> anyhow::Result<Metadata> {
        Ok(Metadata::new(Arc::new(HttpTransport::metadata()?), url))
    };
    let (transport, base_url, metadata): (Arc<dyn Transport>, String, Metadata) = match &credentials
        .endpoint
        .value
    {
        Endpoint::Sim(dir) => {
            let latency_scale = env_f64("OSCI_SIM_LATENCY_SCALE")?.unwrap_or(DEFAULT_SIM_LATENCY);
            wait = wait.scaled(latency_scale);
            let sim = Sim::open(SimConfig {
                data_dir: dir.clone(),
                latency_scale,
                faults: match std::env::var("OSCI_SIM_FAULTS") {
                    Ok(spec) => {
                        Faults::parse(&spec).map_err(|e| anyhow::anyhow!("OSCI_SIM_FAULTS: {e}"))?
                    }
                    Err(_) => Faults::none(),
                },
                region: credentials.region.value.clone(),
            })?;
            let region = sim.region();
            if region != credentials.region.value {
                credentials.region = Sourced {
                    value: region.clone(),
                    source: Source::Simulator,
                };
            }
            if !credentials.has_keys() {
                let account = sim.default_account();
                credentials.access_key = Some(Sourced {
                    value: account.access_key,
                    source: Source::Simulator,
                });
                credentials.secret_key = Some(Sourced {
                    value: account.secret_key,
                    source: Source::Simulator,
                });
            }
            // Nothing to protect from a burst: the simulator is in this process.
            rate_limit = None;
            let transport: Arc<dyn Transport> = Arc::new(SimTransport(sim));
            let metadata = match &metadata_url {
                Some(url) => metadata_over_http(url)?,
                // The host the in-process simulator serves the metadata of.
                None => Metadata::new(Arc::clone(&transport), "http://metadata.sim.invalid"),
            };
            (
                transport,
                format!("http://api.{region}.sim.invalid/api/v1"),
                metadata,
            )
        }
        Endpoint::Url(url) => {
            if !credentials.has_keys() {
                bail!(
                    "no OUTSCALE access key and secret key were found: {}. Set OSC_ACCESS_KEY and \
                     OSC_SECRET_KEY, add a profile to ~/.osc/config.json, or use the simulator \
                     with OSC_ENDPOINT_API=sim://",
                    credentials.searched()
                );
            }
            (
                Arc::new(HttpTransport::new(&credentials)?),
                url.clone(),
                metadata_over_http(metadata_url.as_deref().unwrap_or(metadata::DEFAULT_URL))?,
            )
        }
    };
    let mut config = ClientConfig::new(base_url, credentials.region.value.clone());
    config.rate_limit = rate_limit;
    if let (Some(ak), Some(sk)) = (&credentials.access_key, &credentials.secret_key) {
        config = config.with_keys(ak.value.clone(), Secret::clone(&sk.value));
    }
    let client = Client::new(config, transport).map_err(anyhow::Error::msg)?;
    Ok(Connection {
        client,
        credentials,
        wait,
        metadata,
    })
}
