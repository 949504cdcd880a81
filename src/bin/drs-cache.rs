//! The `drs-cache` command line.

use std::process::ExitCode;

use clap::Parser;
use drs_cache::cli::{self, Cli};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    drs_cache::telemetry::init(cli.log_level());
    match cli::run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
