//! The `drs-cache` command line: run the reader locally, prepare a table.

mod local;
mod refresh;
mod serve;

use std::{net::SocketAddr, path::PathBuf};

use clap::{Parser, Subcommand, ValueEnum};

use crate::{adapters::dynamodb, app, config::Env};

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
        /// Where cached entries live.
        #[arg(long, value_enum, default_value_t = StoreKind::Embedded)]
        store: StoreKind,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
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
    },
    /// Run the refresh workflow once in process, against the fleet simulator:
    /// plan (what is due, or what the filters name), refresh with bounded
    /// concurrency, and print the run's summary as JSON.
    Refresh {
        /// Where cached entries live.
        #[arg(long, value_enum, default_value_t = StoreKind::Embedded)]
        store: StoreKind,
        /// Embedded store file [env: EMBEDDED_STORE_PATH, default: drs-cache.redb].
        #[arg(long)]
        path: Option<PathBuf>,
        /// DynamoDB table [env: CACHE_TABLE_NAME, default: drs-cache].
        #[arg(long)]
        table: Option<String>,
        /// Fleet simulator configuration (JSON).
        #[arg(long)]
        sim_config: Option<PathBuf>,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum StoreKind {
    Embedded,
    Dynamodb,
}

fn store_choice<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    store: StoreKind,
    path: Option<PathBuf>,
    table: Option<String>,
) -> app::StoreChoice {
    match store {
        StoreKind::Embedded => {
            app::StoreChoice::Embedded(path.unwrap_or_else(|| env.embedded_path()))
        }
        StoreKind::Dynamodb => app::StoreChoice::DynamoDb {
            table: table.unwrap_or_else(|| env.table_name()),
        },
    }
}

/// Runs the command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let env = Env::process();
    match cli.command {
        Command::Serve {
            store,
            listen,
            path,
            table,
            sim_config,
        } => {
            let choice = store_choice(&env, store, path, table);
            serve::run(&env, &choice, listen, sim_config.as_deref()).await
        }
        Command::Refresh {
            store,
            path,
            table,
            sim_config,
            all,
        } => {
            let choice = store_choice(&env, store, path, table);
            refresh::run(&env, &choice, sim_config.as_deref(), all).await
        }
        Command::CreateTable { table } => {
            let table = table.unwrap_or_else(|| env.table_name());
            let client = aws_sdk_dynamodb::Client::new(app::Aws::default().config().await);
            dynamodb::create_table(&client, &table).await?;
            tracing::info!(%table, "cache table ready");
            Ok(())
        }
    }
}
