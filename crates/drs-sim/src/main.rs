//! `drs-sim`: the simulated DRS, EC2 and IAM fleet as a standalone server, for
//! local runs and for other processes' tests. Point SDK clients at the logged
//! endpoint; change faults and fleets at run time with `PUT /_sim/config`.

use std::{io::IsTerminal, net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context;
use clap::Parser;
use drs_sim::{AccountId, SimConfig, Simulator};
use tokio::signal::unix::{SignalKind, signal};
use tracing::info;
use tracing_subscriber::EnvFilter;

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
    account: Option<AccountId>,
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

impl Args {
    /// The configuration file (or the default) with the options applied.
    fn config(&self) -> anyhow::Result<SimConfig> {
        let mut config = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                SimConfig::from_json(&text).with_context(|| format!("in {}", path.display()))?
            }
            None => SimConfig::default(),
        };
        config.seed = self.seed.unwrap_or(config.seed);
        config.default_account = self.account.unwrap_or(config.default_account);
        config.defaults.servers = self.servers.unwrap_or(config.defaults.servers);
        if let Some(ms) = self.latency_ms {
            config.faults.latency = Duration::from_millis(ms);
        }
        config.faults.throttle_rate = self.throttle_rate.unwrap_or(config.faults.throttle_rate);
        Ok(config)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let handle = Simulator::start(args.listen, args.config()?)
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
    let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("listening for ctrl-c")?,
        _ = term.recv() => {}
    }
    Ok(())
}
