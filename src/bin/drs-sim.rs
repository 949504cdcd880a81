//! `drs-sim`: the simulated DRS, EC2 and IAM fleet as a standalone server, for
//! local runs and for other processes' tests. Point SDK clients at the printed
//! endpoint; change faults and fleets at run time with `PUT /_sim/config`.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context;
use clap::Parser;
use drs_cache::{
    domain::AccountId,
    sim::{SimConfig, Simulator},
};
use tracing::info;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Simulated AWS DRS, EC2 and IAM endpoints with deterministic fleets"
)]
struct Args {
    /// Address to listen on, such as 127.0.0.1:4566 (port 0 picks a free one).
    #[arg(long)]
    listen: SocketAddr,
    /// A JSON configuration (see `GET /_sim/config` for its shape); the other
    /// options override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The seed all generated data derives from.
    #[arg(long)]
    seed: Option<u64>,
    /// The account of callers whose access key is not mapped.
    #[arg(long)]
    account: Option<String>,
    /// Source servers per account and region.
    #[arg(long)]
    servers: Option<u32>,
    /// Delay before every answer, in milliseconds.
    #[arg(long)]
    latency_ms: Option<u64>,
    /// Share of requests throttled, 0.0 to 1.0.
    #[arg(long)]
    throttle_rate: Option<f64>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    drs_cache::telemetry::init();
    let args = Args::parse();
    let mut config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            SimConfig::from_json(&text).with_context(|| format!("in {}", path.display()))?
        }
        None => SimConfig::default(),
    };
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    if let Some(account) = &args.account {
        config.default_account =
            AccountId::parse(account).with_context(|| format!("--account {account}"))?;
    }
    if let Some(servers) = args.servers {
        config.defaults.servers = servers;
    }
    if let Some(ms) = args.latency_ms {
        config.faults.latency = Duration::from_millis(ms);
    }
    if let Some(rate) = args.throttle_rate {
        config.faults.throttle_rate = rate;
    }
    let handle = Simulator::start(args.listen, config)
        .await
        .context("starting the simulator")?;
    info!(endpoint = %handle.endpoint(), "drs-sim ready");
    shutdown_signal().await?;
    info!("drs-sim stopping");
    handle.shutdown().await;
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("listening for SIGTERM")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("listening for ctrl-c")?,
        _ = term.recv() => {}
    }
    Ok(())
}
