//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod workspace;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use std::collections::HashMap;

use osci::oapi::credentials::{Environment, resolve};
use osci::oapi::wait::WaitPolicy;
use osci::oapi::{
    ApiError, Client, ClientConfig, Endpoint, Error, HttpTransport, Overrides, RetryPolicy, Secret,
};
use osci::sim::{Faults, Sim, SimConfig, SimTransport};

/// An in-process simulator with instant state changes, and a client of its
/// default account.
pub struct InProcess {
    pub dir: tempfile::TempDir,
    pub sim: Arc<Sim>,
    pub client: Client,
}

pub fn in_process() -> InProcess {
    let dir = tempfile::tempdir().unwrap();
    let sim = open(dir.path(), 0.0, Faults::none());
    let client = client_for(&sim, None);
    InProcess { dir, sim, client }
}

pub fn open(dir: &std::path::Path, latency_scale: f64, faults: Faults) -> Arc<Sim> {
    Sim::open(SimConfig {
        data_dir: dir.to_path_buf(),
        latency_scale,
        faults,
        region: "eu-west-2".into(),
    })
    .unwrap()
}

/// A client of the default account, or of `keys` (access key, secret key).
pub fn client_for(sim: &Arc<Sim>, keys: Option<(String, Secret)>) -> Client {
    let (ak, sk) = keys.unwrap_or_else(|| {
        let a = sim.default_account();
        (a.access_key, a.secret_key)
    });
    let mut config =
        ClientConfig::new("http://api.eu-west-2.sim.invalid/api/v1", "eu-west-2").with_keys(ak, sk);
    config.rate_limit = None;
    config.retry = fast_retry();
    Client::new(config, Arc::new(SimTransport(Arc::clone(sim)))).unwrap()
}

/// An HTTP client built as the CLI builds one, from these environment
/// variables alone, with `secret` in place of the resolved secret key if
/// given, and fast retries up to `attempts` in all.
pub fn http_client(
    vars: HashMap<&'static str, String>,
    secret: Option<&str>,
    attempts: u32,
) -> Result<Client, String> {
    let var = move |name: &str| vars.get(name).cloned();
    let credentials = resolve(
        &Overrides::default(),
        &Environment {
            var: &var,
            home: None,
        },
    )
    .map_err(|e| e.to_string())?;
    let Endpoint::Url(url) = &credentials.endpoint.value else {
        panic!("not a URL endpoint")
    };
    let secret = match secret {
        Some(s) => Secret::new(s),
        None => credentials.secret_key.clone().unwrap().value,
    };
    let mut config = ClientConfig::new(url.clone(), credentials.region.value.clone())
        .with_keys(credentials.access_key.clone().unwrap().value, secret);
    config.rate_limit = None;
    config.retry = RetryPolicy {
        max_attempts: attempts,
        ..fast_retry()
    };
    let transport = HttpTransport::new(&credentials).map_err(|e| e.to_string())?;
    Ok(Client::new(config, Arc::new(transport)).unwrap())
}

pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 10,
        base: Duration::from_millis(5),
        jitter: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
    }
}

pub fn fast_wait() -> WaitPolicy {
    WaitPolicy {
        timeout: Duration::from_secs(20),
        initial_interval: Duration::from_millis(10),
        max_interval: Duration::from_millis(100),
        not_found_grace: Duration::from_secs(1),
    }
}

/// The HTTP status and OUTSCALE code of an API error.
pub fn api_error<T: std::fmt::Debug>(result: Result<T, Error>) -> ApiError {
    match result {
        Err(Error::Api(e)) => e,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[track_caller]
pub fn assert_code<T: std::fmt::Debug>(result: Result<T, Error>, status: u16, code: &str) {
    let e = api_error(result);
    assert_eq!((e.status, e.code()), (status, Some(code)), "{e}");
}

/// `osci sim serve` as a child process, stopped by its pid on drop.
pub struct SimProcess {
    pub child: Child,
    pub endpoint: String,
    pub account_id: String,
    pub access_key: String,
    pub secret_key: String,
    pub dir: tempfile::TempDir,
}

impl SimProcess {
    /// A simulator with instant state changes.
    pub fn start(extra: &[&str]) -> SimProcess {
        let mut args = vec!["--latency-scale", "0"];
        args.extend_from_slice(extra);
        SimProcess::start_with(&args)
    }

    pub fn start_with(extra: &[&str]) -> SimProcess {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_osci"))
            .args(["sim", "serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(dir.path().join("sim"))
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        let s = |k: &str| v[k].as_str().unwrap().to_string();
        SimProcess {
            endpoint: s("endpoint"),
            account_id: s("account_id"),
            access_key: s("access_key"),
            secret_key: s("secret_key"),
            child,
            dir,
        }
    }

    /// The osci binary with nothing of this machine's OUTSCALE settings.
    pub fn osci(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_osci"));
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.dir.path());
        c
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
