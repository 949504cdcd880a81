//! The `drs-cache` command line: the local mode, the reader as a server, and
//! the operator commands, each against the embedded store, a running local
//! process or a deployment.

mod backend;
mod cost;
mod local;
mod ops;
mod output;
mod serve;

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

use clap::{Args, Parser, Subcommand};

use crate::{
    adapters::dynamodb,
    app,
    config::{Env, LocalArgs, LocalConfig, StoreKind, table_name},
    domain::DataType,
    local::{DEFAULT_DATA_DIR, LocalOptions, MetricsMode, SourceKind},
};

use backend::TargetArgs;
use ops::Scope;
use output::Output;

#[derive(Debug, Parser)]
#[command(name = "drs-cache", version, about = "Cached AWS DRS and EC2 metadata")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The whole job on this machine: the embedded store, a simulated living
    /// fleet, the planner and refresher, and the reader with a status page.
    Local(LocalCommand),
    /// Serve the reader API over HTTP.
    Serve {
        #[command(flatten)]
        store: StoreArgs,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
    },
    /// One read, with its freshness.
    Get {
        /// The data type, such as drs-source-servers or ec2-subnets.
        #[arg(value_parser = ops::parse_type)]
        data_type: DataType,
        #[arg(long, value_parser = ops::parse_region)]
        region: crate::domain::Region,
        /// The account (default: the deployment's).
        #[arg(long, value_parser = ops::parse_account)]
        account: Option<crate::domain::AccountId>,
        /// A filter the endpoint takes, as NAME=VALUE: vpcId, availabilityZone
        /// (subnets, security groups), instanceFamily (instance types),
        /// hostname, replicationState, stagingAccountId, tag (KEY=VALUE),
        /// minCores, minRamGiB (source servers); repeatable, any value matches.
        #[arg(long = "filter", value_parser = parse_filter)]
        filters: Vec<(String, String)>,
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Every key with its age, freshness, last outcome and error kind; exits 3
    /// when a key is past its stale window, never cached, or holds no data.
    Status {
        /// Only keys served stale or past their stale window.
        #[arg(long)]
        stale: bool,
        /// Only keys whose last refresh failed.
        #[arg(long)]
        failed: bool,
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// What a scheduled tick would refresh now and why, changing nothing.
    Plan {
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Run a refresh to its end and print its summary as JSON: what is due,
    /// or what the filters name, or everything with --all. In process against
    /// the simulator (or AWS with --source aws), by a running local process,
    /// or by a deployment's state machine (--state-machine-arn).
    Refresh {
        #[command(flatten)]
        scope: Scope,
        /// Every configured target, due or not.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Keep every key of an account refreshed ahead for a while, read or not
    /// (as a DRS launch does), and refresh what of it is due now; prints the
    /// run's summary as JSON. For a drill or a recovery about to start.
    Warm {
        /// The account to keep warm.
        #[arg(long, value_parser = ops::parse_account)]
        account: crate::domain::AccountId,
        /// How long, in seconds [default: the deployment's WARM_WINDOW_SECONDS,
        /// 14400].
        #[arg(long, value_parser = ops::parse_warm_seconds)]
        seconds: Option<u64>,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Ask for a refresh of every configured target the filters match.
    Invalidate {
        #[command(flatten)]
        scope: Scope,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Write a portable snapshot of the cache to FILE.
    Export {
        file: PathBuf,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Load a snapshot written by `export`; data the cache holds in the same
    /// or a newer version is kept.
    Import {
        file: PathBuf,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// What the deployment costs a month for a fleet and read rate, per line
    /// item, and with --simulate a synthetic week of reads through the
    /// planner's due rule for always-refresh, demand-aware and read-through.
    Cost(cost::CostArgs),
    /// Create the cache table with its documented schema on the DynamoDB endpoint
    /// the environment names (AWS_ENDPOINT_URL for moto or DynamoDB Local).
    CreateTable {
        /// Table name [env: CACHE_TABLE_NAME, default: drs-cache].
        #[arg(long)]
        table: Option<String>,
    },
}

#[derive(Debug, Args)]
struct LocalCommand {
    /// Address the reader and status page listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Where the store, the metrics file and the process's address live.
    #[arg(long, default_value = DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// Fleet simulator configuration (JSON); default: three accounts in two
    /// regions with a few hundred source servers each.
    #[arg(long)]
    fleet: Option<PathBuf>,
    /// Run time N times faster: freshness, ticks and fleet changes.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=3600))]
    time_scale: u32,
    /// Where metric documents (EMF) go.
    #[arg(long, value_enum, default_value_t = MetricsMode::File)]
    metrics: MetricsMode,
    /// What the refresher reads.
    #[arg(long, value_enum, default_value_t = SourceKind::Simulator)]
    source: SourceKind,
    #[arg(long, value_enum, default_value_t = StoreKind::Embedded)]
    store: StoreKind,
    /// DynamoDB table, with --store dynamodb [env: CACHE_TABLE_NAME].
    #[arg(long)]
    table: Option<String>,
    /// Seconds between changes of the simulated fleet (before --time-scale).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    change_every: u64,
    /// Seconds between status lines.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    status_every: u64,
}

/// Where `serve` keeps entries, and the fleet it refreshes from.
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
            demo_fleet: false,
            aws: false,
        }
    }
}

fn parse_filter(raw: &str) -> Result<(String, String), String> {
    match raw.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err("must be NAME=VALUE, such as vpcId=vpc-0abc".into()),
    }
}

impl Cli {
    /// The log level unless `RUST_LOG` says otherwise: the server logs what it
    /// does; the other commands print for a person and log only problems.
    pub fn log_level(&self) -> &'static str {
        match self.command {
            Command::Serve { .. } | Command::CreateTable { .. } => "info",
            _ => "warn",
        }
    }
}

/// Runs the command line; the exit code says how it went.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Local(c) => {
            crate::local::run(LocalOptions {
                listen: c.listen,
                data_dir: c.data_dir,
                fleet: c.fleet,
                time_scale: c.time_scale,
                metrics: c.metrics,
                source: c.source,
                store: c.store,
                table: c.table,
                change_every: Duration::from_secs(c.change_every),
                status_every: Duration::from_secs(c.status_every),
            })
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve { store, listen } => {
            // A deployment's accounts may be in its account list object (read
            // only when ACCOUNT_LIST_URI names one).
            let env = crate::app::Aws::default().environment().await?;
            serve::run(LocalConfig::from_vars(&env, &store.into())?, listen).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Get {
            data_type,
            region,
            account,
            filters,
            output,
            target,
        } => {
            let mut query = vec![("region".to_owned(), region.as_str().to_owned())];
            if let Some(account) = account {
                query.push(("accountId".into(), account.as_str().to_owned()));
            }
            query.extend(filters);
            ops::get(&target.open(false).await?, data_type, query, output).await
        }
        Command::Status {
            stale,
            failed,
            output,
            target,
        } => ops::status(&target.open(false).await?, stale, failed, output).await,
        Command::Plan { output, target } => ops::plan(&target.open(true).await?, output).await,
        Command::Refresh { scope, all, target } => {
            ops::refresh(&target.open(true).await?, &scope, all).await
        }
        Command::Warm {
            account,
            seconds,
            target,
        } => ops::warm(&target.open(true).await?, account, seconds).await,
        Command::Invalidate { scope, target } => {
            ops::invalidate(&target.open(true).await?, &scope).await
        }
        Command::Export { file, target } => ops::export(&target.open(false).await?, &file).await,
        Command::Import { file, target } => ops::import(&target.open(true).await?, &file).await,
        Command::Cost(args) => cost::run(args),
        Command::CreateTable { table } => {
            let table = table_name(&Env::process(), table);
            let client = aws_sdk_dynamodb::Client::new(app::Aws::default().config().await);
            dynamodb::create_table(&client, &table).await?;
            tracing::info!(%table, "cache table ready");
            Ok(ExitCode::SUCCESS)
        }
    }
}
