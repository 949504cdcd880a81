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
    },
    config::{ConfigError, Env},
    domain::SystemClock,
    ports::{CacheStore, RefreshTrigger},
    read::{ReadService, ReaderSettings, Router, metrics::MetricsSink},
};

/// The cache table name when `CACHE_TABLE_NAME` is unset.
pub const DEFAULT_TABLE: &str = "drs-cache";
/// The embedded store file when `EMBEDDED_STORE_PATH` is unset.
pub const DEFAULT_EMBEDDED_PATH: &str = "drs-cache.redb";
/// Requests for one target within this window start one workflow execution.
pub const REFRESH_REQUEST_WINDOW: Duration = Duration::from_secs(60);
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
}

pub async fn open_store(
    aws: &Aws,
    choice: &StoreChoice,
) -> Result<Arc<dyn CacheStore>, StartError> {
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

pub fn reader_router(
    store: Arc<dyn CacheStore>,
    trigger: Arc<dyn RefreshTrigger>,
    settings: ReaderSettings,
    metrics: Arc<dyn MetricsSink>,
) -> Router {
    let service = ReadService::new(store, trigger, Arc::new(SystemClock), settings);
    Router::new(Arc::new(service), metrics)
}
