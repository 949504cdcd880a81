//! The `drs-cache` command line: run the reader locally, run the workflow's
//! steps once, prepare a table.

mod local;
mod refresh;
mod serve;

use std::{net::SocketAddr, path::PathBuf};

use clap::{Args, Parser, Subcommand};

use crate::{
    adapters::dynamodb,
    app,
    config::{Env, LocalArgs, LocalConfig, RefreshRunConfig, StoreKind, table_name},
};

#[derive(Debug, Parser)]
#[command(name = "drs-cache", version, about = "Cached AWS DRS and EC2 metadata")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the reader API over HTTP.
    Serve {
        #[command(flatten)]
        store: StoreArgs,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
    },
    /// Run the refresh workflow once in process, against the fleet simulator:
    /// plan (what is due, or what the filters name), refresh with bounded
    /// concurrency, and print the run's summary as JSON.
    Refresh {
        #[command(flatten)]
        store: StoreArgs,
        /// Refresh every configured target, due or not (an invalidation).
        #[arg(long)]
        all: bool,
    },
    /// Create the cache table with its documented schema on the DynamoDB endpoint
    /// the environment names (AWS_ENDPOINT_URL for moto or DynamoDB Local).
    CreateTable {
        /// Table name [env: CACHE_TABLE_NAME, default: drs-cache].
        #[arg(long)]
        table: Option<String>,
    },
}

/// Where a local command keeps entries, and the fleet it refreshes from.
#[derive(Debug, Args)]
struct StoreArgs {
    /// Where cached entries live.
    #[arg(long, value_enum, default_value_t = StoreKind::Embedded)]
    store: StoreKind,
    /// Embedded store file [env: EMBEDDED_STORE_PATH, default: drs-cache.redb].
    #[arg(long)]
    path: Option<PathBuf>,
    /// DynamoDB table [env: CACHE_TABLE_NAME, default: drs-cache].
    #[arg(long)]
    table: Option<String>,
    /// Fleet simulator configuration (JSON) for the local refresher, used
    /// when no REFRESH_STATE_MACHINE_ARN is set.
    #[arg(long)]
    sim_config: Option<PathBuf>,
    /// Let the local refresher write simulated data into a DynamoDB table on
    /// no emulator endpoint (a real table the credentials reach).
    #[arg(long)]
    allow_simulated_data: bool,
}

impl From<StoreArgs> for LocalArgs {
    fn from(args: StoreArgs) -> Self {
        Self {
            store: Some(args.store),
            path: args.path,
            table: args.table,
            fleet: args.sim_config,
            allow_simulated_data: args.allow_simulated_data,
        }
    }
}

/// Runs the command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { store, listen } => {
            serve::run(LocalConfig::from_env(&store.into())?, listen).await
        }
        Command::Refresh { store, all } => {
            refresh::run(RefreshRunConfig::from_env(&store.into())?, all).await
        }
        Command::CreateTable { table } => {
            let table = table_name(&Env::process(), table);
            let client = aws_sdk_dynamodb::Client::new(app::Aws::default().config().await);
            dynamodb::create_table(&client, &table).await?;
            tracing::info!(%table, "cache table ready");
            Ok(())
        }
    }
}
