//! Builds the concrete adapters a process runs with, from its configuration.
//! The Lambda functions and the CLI share it; use cases never see it.

use std::{path::PathBuf, sync::Arc, time::Duration};

use aws_config::{BehaviorVersion, SdkConfig};

use crate::{
    adapters::{
        dynamodb::DynamoDbStore,
        embedded::EmbeddedStore,
        local_queue::{LocalRefreshQueue, LocalRefreshReceiver},
        sfn::StepFunctionsTrigger,
        upstream::{
            AccountAccess, AwsUpstream, Credentials, RetrySettings, SetupError, UpstreamConfig,
        },
    },
    config::{ConfigError, Env},
    domain::{AccountId, SystemClock},
    plan::Planner,
    ports::{CacheStorage, CacheStore, RefreshTrigger},
    read::{ReadService, ReaderSettings, Router, metrics::MetricsSink},
    refresh::{
        RefreshSettings, Refresher, Upstream,
        metrics::{EmfRefreshMetrics, RefreshMetrics},
    },
};

/// The cache table name when `CACHE_TABLE_NAME` is unset.
pub const DEFAULT_TABLE: &str = "drs-cache";
/// The embedded store file when `EMBEDDED_STORE_PATH` is unset.
pub const DEFAULT_EMBEDDED_PATH: &str = "drs-cache.redb";
/// Requests for one target within this window start one workflow execution.
pub const REFRESH_REQUEST_WINDOW: Duration = Duration::from_secs(60);
/// The role assumed in other accounts when `CROSS_ACCOUNT_ROLE_NAME` is unset.
pub const DEFAULT_ROLE_NAME: &str = "drs-cache-reader";
/// The STS session name of assumed roles.
pub const SESSION_NAME: &str = "drs-cache-refresher";
/// Targets waiting in the local refresh queue at most.
pub const LOCAL_QUEUE_CAPACITY: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreChoice {
    Embedded(PathBuf),
    DynamoDb { table: String },
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot reach upstream AWS")]
    Upstream(#[from] SetupError),
    #[error("cannot open the embedded store at {path}")]
    Embedded {
        path: String,
        #[source]
        source: crate::ports::StoreError,
    },
}

/// The AWS configuration from the environment (region, credentials, and
/// `AWS_ENDPOINT_URL*` for local emulators), loaded on first use and shared by
/// every client the process builds.
#[derive(Debug, Default)]
pub struct Aws(tokio::sync::OnceCell<SdkConfig>);

impl Aws {
    pub async fn config(&self) -> &SdkConfig {
        self.0
            .get_or_init(|| aws_config::defaults(BehaviorVersion::latest()).load())
            .await
    }
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    pub fn table_name(&self) -> String {
        self.optional("CACHE_TABLE_NAME")
            .unwrap_or_else(|| DEFAULT_TABLE.into())
    }

    pub fn embedded_path(&self) -> PathBuf {
        self.optional("EMBEDDED_STORE_PATH")
            .unwrap_or_else(|| DEFAULT_EMBEDDED_PATH.into())
            .into()
    }

    /// How accounts other than `own` are reached: the role
    /// `CROSS_ACCOUNT_ROLE_NAME` with `CROSS_ACCOUNT_EXTERNAL_ID`.
    pub fn account_access(&self, own: AccountId) -> Result<AccountAccess, ConfigError> {
        let external_id = self.optional("CROSS_ACCOUNT_EXTERNAL_ID");
        if external_id.as_ref().is_some_and(|id| id.len() < 2) {
            return Err(ConfigError {
                var: "CROSS_ACCOUNT_EXTERNAL_ID".into(),
                reason: "must be at least 2 characters, as STS requires".into(),
            });
        }
        Ok(AccountAccess {
            own_account: Some(own),
            others: Credentials::AssumeRole {
                role_name: self
                    .optional("CROSS_ACCOUNT_ROLE_NAME")
                    .unwrap_or_else(|| DEFAULT_ROLE_NAME.into()),
                external_id,
                session_name: SESSION_NAME.into(),
            },
        })
    }

    /// Paging and retries of upstream calls: `UPSTREAM_MAX_ATTEMPTS` and
    /// `UPSTREAM_MAX_RETRY_AFTER_SECONDS`.
    pub fn upstream_config(&self) -> Result<UpstreamConfig, ConfigError> {
        let d = RetrySettings::default();
        let max_attempts = self.number("UPSTREAM_MAX_ATTEMPTS", d.max_attempts)?;
        if max_attempts == 0 {
            return Err(ConfigError {
                var: "UPSTREAM_MAX_ATTEMPTS".into(),
                reason: "must be at least 1".into(),
            });
        }
        let max_retry_after = Duration::from_secs(self.number(
            "UPSTREAM_MAX_RETRY_AFTER_SECONDS",
            d.max_retry_after.as_secs(),
        )?);
        Ok(UpstreamConfig {
            retry: RetrySettings {
                max_attempts,
                max_retry_after,
            },
            ..UpstreamConfig::default()
        })
    }
}

/// The cache store `choice` names, which also keeps refresh leases.
pub async fn open_store(
    aws: &Aws,
    choice: &StoreChoice,
) -> Result<Arc<dyn CacheStorage>, StartError> {
    Ok(match choice {
        StoreChoice::Embedded(path) => {
            Arc::new(
                EmbeddedStore::open(path).map_err(|source| StartError::Embedded {
                    path: path.display().to_string(),
                    source,
                })?,
            )
        }
        StoreChoice::DynamoDb { table } => {
            let client = aws_sdk_dynamodb::Client::new(aws.config().await);
            Arc::new(DynamoDbStore::new(client, table.clone()))
        }
    })
}

/// Refresh requests go to the workflow when one is configured
/// (`REFRESH_STATE_MACHINE_ARN`), otherwise to an in-process queue whose
/// receiver is returned for the local refresher.
pub async fn refresh_trigger<F: Fn(&str) -> Option<String>>(
    aws: &Aws,
    env: &Env<F>,
) -> (Arc<dyn RefreshTrigger>, Option<LocalRefreshReceiver>) {
    match env.optional("REFRESH_STATE_MACHINE_ARN") {
        Some(arn) => (workflow_trigger(aws, arn).await, None),
        None => {
            let (queue, rx) = LocalRefreshQueue::new(LOCAL_QUEUE_CAPACITY);
            (Arc::new(queue), Some(rx))
        }
    }
}

/// Refresh requests as executions of the state machine `arn`.
pub async fn workflow_trigger(aws: &Aws, arn: String) -> Arc<dyn RefreshTrigger> {
    let client = aws_sdk_sfn::Client::new(aws.config().await);
    Arc::new(StepFunctionsTrigger::new(
        client,
        arn,
        REFRESH_REQUEST_WINDOW,
    ))
}

/// The refresher of the `refresher` Lambda: the DynamoDB table
/// `CACHE_TABLE_NAME` and the AWS upstream of the deployment's account.
pub async fn refresher<F: Fn(&str) -> Option<String>>(
    aws: &Aws,
    env: &Env<F>,
) -> Result<Refresher, StartError> {
    let settings = env.refresh_settings()?;
    let table = env.required("CACHE_TABLE_NAME")?;
    let store = open_store(aws, &StoreChoice::DynamoDb { table }).await?;
    let upstream = AwsUpstream::new(
        aws.config().await.clone(),
        env.account_access(settings.home_account)?,
        env.upstream_config()?,
    )?;
    Ok(refresher_over(
        store,
        upstream,
        settings,
        Arc::new(EmfRefreshMetrics),
    ))
}

/// A refresher writing to `store` from the AWS upstream `upstream`.
pub fn refresher_over(
    store: Arc<dyn CacheStore>,
    upstream: AwsUpstream,
    settings: RefreshSettings,
    metrics: Arc<dyn RefreshMetrics>,
) -> Refresher {
    let upstream = Arc::new(upstream);
    let sources = Upstream {
        drs: upstream.clone(),
        ec2: upstream.clone(),
        iam: upstream,
    };
    Refresher::new(store, sources, Arc::new(SystemClock), metrics, settings)
}

/// The planner of the `planner` Lambda: store metadata and leases in the
/// DynamoDB table `CACHE_TABLE_NAME`.
pub async fn planner<F: Fn(&str) -> Option<String>>(
    aws: &Aws,
    env: &Env<F>,
) -> Result<Planner, StartError> {
    let config = env.plan_config(None)?;
    let table = env.required("CACHE_TABLE_NAME")?;
    let store = open_store(aws, &StoreChoice::DynamoDb { table }).await?;
    Ok(Planner::new(
        store.clone(),
        store,
        Arc::new(SystemClock),
        config,
    ))
}

pub fn reader_router(
    store: Arc<dyn CacheStore>,
    trigger: Arc<dyn RefreshTrigger>,
    settings: ReaderSettings,
    metrics: Arc<dyn MetricsSink>,
) -> Router {
    let service = ReadService::new(store, trigger, Arc::new(SystemClock), settings);
    Router::new(Arc::new(service), metrics)
}
