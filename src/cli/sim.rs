//! `osci sim serve`.

use anyhow::{Context, bail};
use serde_json::json;

use osci::sim::{Faults, Sim, SimConfig, serve};

use super::args::ServeArgs;

pub async fn serve_command(args: ServeArgs) -> anyhow::Result<()> {
    if !args.listen.ip().is_loopback() {
        bail!(
            "--listen {}: the simulator only serves loopback addresses (127.0.0.0/8 or ::1)",
            args.listen
        );
    }
    let faults = Faults::parse(&args.faults).map_err(|e| anyhow::anyhow!("--faults: {e}"))?;
    let sim = Sim::open(SimConfig {
        data_dir: args.data.clone(),
        latency_scale: args.latency_scale,
        faults,
        region: args.region.clone(),
    })?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let account = sim.default_account();
    println!(
        "{}",
        json!({
            "endpoint": format!("http://{addr}/api/v1"),
            "region": account.region,
            "account_id": account.account_id,
            "access_key": account.access_key,
            "secret_key": account.secret_key.expose(),
            "metadata_url": format!("http://{addr}"),
        })
    );
    eprintln!(
        "osci simulator serving region {} on http://{addr}/api/v1 (data in {}); stop with Ctrl-C",
        account.region,
        args.data.display()
    );
    serve(sim, listener, shutdown_signal()).await?;
    Ok(())
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
