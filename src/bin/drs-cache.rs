//! The `drs-cache` command line.

use clap::Parser;
use drs_cache::cli::{self, Cli};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    drs_cache::telemetry::init();
    cli::run(Cli::parse()).await
}
