//! What an operator command works against: a running `drs-cache local` (over
//! HTTP, since the embedded store admits one process at a time), the embedded
//! store, or a deployment's DynamoDB table and state machine.

use std::{path::PathBuf, sync::Arc};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};

use crate::{
    adapters::{
        embedded::{self, EmbeddedStore},
        sfn::StepFunctionsTrigger,
    },
    app::{self, LocalRefresh},
    config::{
        LocalArgs, LocalConfigError, LocalRefreshConfig, RefreshRunConfig, StoreChoice, StoreKind,
    },
    domain::SystemClock,
    local::{DEFAULT_DATA_DIR, STORE_FILE, ServerFile, SourceKind},
    plan::Planner,
    ports::CacheStorage,
    refresh::metrics::RefreshMetrics,
};

/// Where an operator command's cache is, and what refreshes it.
#[derive(Debug, Clone, clap::Args)]
pub struct TargetArgs {
    /// A running `drs-cache local` to talk to (its URL), instead of a store.
    #[arg(long)]
    pub url: Option<String>,
    /// The local mode's data directory: its store, and the address of a
    /// `drs-cache local` running on it.
    #[arg(long, default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Where cached entries live.
    #[arg(long, value_enum, default_value_t = StoreKind::Embedded)]
    pub store: StoreKind,
    /// Embedded store file [default: DATA_DIR/cache.redb].
    #[arg(long, env = "EMBEDDED_STORE_PATH")]
    pub path: Option<PathBuf>,
    /// A deployment's cache table [env: CACHE_TABLE_NAME; default: drs-cache].
    #[arg(long)]
    pub table: Option<String>,
    /// A deployment's refresh state machine: refreshes and invalidations run
    /// there.
    #[arg(long, env = "REFRESH_STATE_MACHINE_ARN")]
    pub state_machine_arn: Option<String>,
    /// What an in-process refresh reads, and so which targets are configured:
    /// the simulator's fleet, or the accounts and regions the environment
    /// names as the deployed functions read them (DEPLOYMENT_ACCOUNT_ID,
    /// REGIONS, ACCOUNT_IDS) [default: aws with --store dynamodb, else
    /// simulator].
    #[arg(long, value_enum)]
    pub source: Option<SourceKind>,
    /// Fleet simulator configuration (JSON); default: the demo fleet of
    /// `drs-cache local`.
    #[arg(long, alias = "sim-config")]
    pub fleet: Option<PathBuf>,
    /// Let an in-process refresh write simulated data into a DynamoDB table
    /// on no emulator endpoint.
    #[arg(long)]
    pub allow_simulated_data: bool,
}

/// A store this process opened, and how its targets are configured.
pub struct Opened {
    pub store: Arc<dyn CacheStorage>,
    pub config: LocalRefreshConfig,
    /// The deployment's state machine, when one is named.
    pub workflow: Option<String>,
}

pub enum Backend {
    /// A running `drs-cache local`.
    Remote(Box<Remote>),
    Store(Box<Opened>),
}

impl TargetArgs {
    fn embedded_path(&self) -> PathBuf {
        self.path
            .clone()
            .unwrap_or_else(|| self.data_dir.join(STORE_FILE))
    }

    /// Opens what the arguments name: the running local process when its
    /// store is held by one (or `--url` names it), else the store itself,
    /// created when `create` (for the commands that write).
    pub async fn open(&self, create: bool) -> anyhow::Result<Backend> {
        let source = self.source.unwrap_or(match self.store {
            StoreKind::Dynamodb => SourceKind::Aws,
            StoreKind::Embedded => SourceKind::Simulator,
        });
        if let Some(url) = &self.url {
            return Ok(Backend::Remote(Box::new(Remote::new(url))));
        }
        let workflow = self.state_machine_arn.clone();
        let args = LocalArgs {
            store: Some(self.store),
            path: Some(self.embedded_path()),
            table: self.table.clone(),
            fleet: self.fleet.clone(),
            allow_simulated_data: self.allow_simulated_data,
            demo_fleet: true,
            // A deployment's targets are configured as its refresher's are.
            aws: source == SourceKind::Aws || workflow.is_some(),
        };
        // A deployment's accounts may be in its account list object (read
        // only when ACCOUNT_LIST_URI names one).
        let aws = crate::app::Aws::default();
        let env = aws.environment().await?;
        let config = RefreshRunConfig::from_vars(&env, &args).map_err(|e| match e {
            LocalConfigError::Env(e) if workflow.is_some() => anyhow::anyhow!(
                "{e} (a deployment's targets are read from DEPLOYMENT_ACCOUNT_ID, REGIONS and ACCOUNT_IDS or ACCOUNT_LIST_URI, as its functions read them)"
            ),
            e => e.into(),
        })?;
        let store: Arc<dyn CacheStorage> = match &config.store {
            StoreChoice::Embedded(path) => {
                if create {
                    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                        std::fs::create_dir_all(dir)
                            .with_context(|| format!("cannot create {}", dir.display()))?;
                    }
                } else if !path.exists() {
                    bail!(
                        "no cache at {}: run `drs-cache local` (or `drs-cache refresh`) first, or pass --data-dir, --path or --store dynamodb",
                        path.display()
                    );
                }
                match EmbeddedStore::open(path) {
                    Ok(store) => Arc::new(store),
                    Err(e) if embedded::is_held(&e) => {
                        let server = ServerFile::read(&self.data_dir).with_context(|| {
                            format!(
                                "{} is open in another process, which left no address in {}: pass --url",
                                path.display(),
                                self.data_dir.display()
                            )
                        })?;
                        return Ok(Backend::Remote(Box::new(Remote::new(&server.url))));
                    }
                    Err(e) => {
                        return Err(anyhow::Error::new(e)
                            .context(format!("cannot open the cache at {}", path.display())));
                    }
                }
            }
            StoreChoice::DynamoDb { table } => {
                let store = aws
                    .table(
                        table,
                        crate::adapters::aws::CallTimeouts::STORE,
                        config.refresh.plan.ownership.deployment(),
                    )
                    .await;
                // One cheap listing proves the table is there and readable.
                crate::ports::CacheListing::list(
                    &*store,
                    crate::domain::DataType::DrsQuotas,
                    None,
                    1,
                )
                .await
                .with_context(|| {
                    format!(
                        "cannot use the cache table {table} (set --table or CACHE_TABLE_NAME, and AWS_REGION and credentials)"
                    )
                })?;
                store
            }
        };
        Ok(Backend::Store(Box::new(Opened {
            store,
            config: config.refresh,
            workflow,
        })))
    }
}

impl Opened {
    /// A planner over the store, for what is configured and due.
    pub fn planner(&self) -> Planner {
        Planner::new(
            self.store.clone(),
            self.store.clone(),
            Arc::new(SystemClock),
            self.config.plan.clone(),
        )
        .with_capacity_writes(self.store.clone())
    }

    /// The planner and refresher in process, against the simulator or AWS.
    pub async fn local_refresh(
        &self,
        metrics: Arc<dyn RefreshMetrics>,
    ) -> anyhow::Result<LocalRefresh> {
        Ok(LocalRefresh::start(&self.config, self.store.clone(), metrics, None).await?)
    }

    /// The deployment's workflow, when one is named.
    pub async fn workflow_trigger(&self) -> Option<Arc<StepFunctionsTrigger>> {
        match &self.workflow {
            Some(arn) => Some(app::Aws::default().workflow_trigger(arn, None).await),
            None => None,
        }
    }
}

/// A running `drs-cache local`, over HTTP.
pub struct Remote {
    base: String,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
}

/// An answer of the running local process.
pub struct Answer {
    pub status: http::StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Remote {
    fn new(url: &str) -> Self {
        Self {
            base: url.trim_end_matches('/').to_owned(),
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    pub async fn request(
        &self,
        method: http::Method,
        path_and_query: &str,
        body: Bytes,
    ) -> anyhow::Result<Answer> {
        let uri = format!("{}{path_and_query}", self.base);
        let request = http::Request::builder()
            .method(method)
            .uri(&uri)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            .with_context(|| format!("{uri} is not a URL"))?;
        let response = self.client.request(request).await.with_context(|| {
            format!(
                "cannot reach drs-cache local at {}: is it running?",
                self.base
            )
        })?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .with_context(|| format!("the answer of {uri} was cut short"))?
            .to_bytes();
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}
