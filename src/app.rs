//! The composition root: builds the concrete adapters a process runs with, from
//! its configuration. The Lambda functions and the CLI share it; use cases never
//! see it.

use std::sync::Arc;

use aws_config::{BehaviorVersion, SdkConfig};

use crate::{
    adapters::{
        aws::{AwsUpstream, CallTimeouts, SetupError, https_client},
        dynamodb::DynamoDbStore,
        eventbridge::EventBridgeFeed,
        s3::{self, S3PlanStore},
        sfn::StepFunctionsTrigger,
    },
    config::{
        self, Env, EnvError, PlannerConfig, REFRESH_REQUEST_WINDOW, ReaderConfig, RefresherConfig,
    },
    domain::{Region, SystemClock},
    plan::{
        Planner,
        lambda::PlannerFunction,
        summary::{EmfRunMetrics, RunMetrics},
    },
    ports::{CacheReads, CacheWrites, DemandNotes, RefreshLeases, RefreshTrigger},
    read::{ReadService, ReaderSettings, Router, metrics::MetricsSink},
    refresh::{
        ChangePublishing, RefreshSettings, Refresher, Upstream,
        lambda::RefresherFunction,
        metrics::{EmfRefreshMetrics, RefreshMetrics},
    },
    workflow::PlanStore,
};

#[cfg(feature = "local")]
pub use local::{LocalRefresh, LocalSide, StartError, local_reader, open_store};

/// The process environment as [`Aws::environment`] resolves it.
pub type ProcessEnv = Env<Box<dyn Fn(&str) -> Option<String> + Send + Sync>>;

/// The AWS configuration from the environment (region, credentials, and
/// `AWS_ENDPOINT_URL*` for local emulators), loaded on first use and shared by
/// every client the process builds.
#[derive(Debug, Default)]
pub struct Aws(tokio::sync::OnceCell<SdkConfig>);

impl Aws {
    pub async fn config(&self) -> &SdkConfig {
        self.0
            .get_or_init(|| {
                aws_config::defaults(BehaviorVersion::latest())
                    .http_client(https_client())
                    .load()
            })
            .await
    }

    /// The cache table `table` on DynamoDB, each call bounded by `timeouts`,
    /// taking the leases of the deployment in `lease_scope` (one of several
    /// over a global table; `None`: the only one).
    pub async fn table(
        &self,
        table: &str,
        timeouts: CallTimeouts,
        lease_scope: Option<&Region>,
    ) -> Arc<DynamoDbStore> {
        let sdk = self.config().await;
        let conf = aws_sdk_dynamodb::config::Builder::from(sdk)
            .timeout_config(timeouts.on(sdk.timeout_config()))
            .build();
        let client = aws_sdk_dynamodb::Client::from_conf(conf);
        Arc::new(
            DynamoDbStore::new(client, table.to_owned()).with_lease_scope(lease_scope.cloned()),
        )
    }

    /// The process environment, with the accounts of the S3 object
    /// `ACCOUNT_LIST_URI` names, when it names one, in place of `ACCOUNT_IDS`:
    /// read once, before the configuration is built.
    pub async fn environment(&self) -> Result<ProcessEnv, EnvError> {
        let env = Env::process();
        let accounts = config::read_account_list(&env, |uri| async move {
            let client = aws_sdk_s3::Client::new(self.config().await);
            s3::read_text(
                &client,
                &uri.bucket,
                &uri.key,
                config::MAX_ACCOUNT_LIST_BYTES,
            )
            .await
        })
        .await?;
        let env = env.with_accounts(accounts.as_deref());
        Ok(Env(Box::new(env.0)))
    }

    /// Refresh requests as executions of the state machine `arn`, exact
    /// targets of the targets workflow `targets` where there is one.
    pub async fn workflow_trigger(
        &self,
        arn: &str,
        targets: Option<&str>,
    ) -> Arc<StepFunctionsTrigger> {
        let client = aws_sdk_sfn::Client::new(self.config().await);
        Arc::new(
            StepFunctionsTrigger::new(client, arn, REFRESH_REQUEST_WINDOW)
                .with_targets_machine(targets.map(str::to_owned)),
        )
    }
}

/// The router of the `reader` Lambda: the DynamoDB table, the refresh
/// workflow, EMF metrics on standard output.
pub async fn reader(aws: &Aws, config: &ReaderConfig, metrics: Arc<dyn MetricsSink>) -> Router {
    let (store, trigger) = tokio::join!(
        aws.table(&config.table, config.store_timeouts, None),
        aws.workflow_trigger(
            &config.state_machine_arn,
            config.targets_state_machine_arn.as_deref()
        )
    );
    reader_router(
        store.clone(),
        trigger,
        config.settings.clone(),
        metrics,
        Some(store),
    )
}

/// The `refresher` Lambda: the DynamoDB table (entries, leases and the run
/// ledger), the AWS upstream of the deployment's account, and the workflow for
/// follow-up runs.
pub async fn refresher(
    aws: &Aws,
    config: &RefresherConfig,
) -> Result<RefresherFunction, SetupError> {
    let upstream = AwsUpstream::new(
        aws.config().await.clone(),
        config.access.clone(),
        config.upstream,
    )?;
    let (store, trigger) = tokio::join!(
        aws.table(
            &config.table,
            config.store_timeouts,
            config.ownership.deployment()
        ),
        aws.workflow_trigger(
            &config.state_machine_arn,
            config.targets_state_machine_arn.as_deref()
        )
    );
    let mut refresher = refresher_over(
        store.clone(),
        store.clone(),
        upstream,
        config.settings.clone(),
        Arc::new(EmfRefreshMetrics),
    );
    if let Some(bus) = &config.change_bus {
        // The feed retries the entries a call did not take; the client, once.
        let conf = aws_sdk_eventbridge::config::Builder::from(aws.config().await)
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(1))
            .build();
        let feed = EventBridgeFeed::new(aws_sdk_eventbridge::Client::from_conf(conf), bus);
        refresher = refresher.with_change_feed(ChangePublishing {
            reads: store.clone(),
            feed: Arc::new(feed),
        });
    }
    Ok(RefresherFunction {
        refresher: Arc::new(refresher),
        ledger: store,
        trigger,
    })
}

/// The `planner` Lambda: store metadata, leases and the run ledger in the
/// DynamoDB table, plans in the plan bucket, run totals as EMF.
pub async fn planner(aws: &Aws, config: &PlannerConfig) -> PlannerFunction {
    let store = aws
        .table(
            &config.table,
            config.store_timeouts,
            config.plan.ownership.deployment(),
        )
        .await;
    let plans = S3PlanStore::new(
        aws_sdk_s3::Client::new(aws.config().await),
        &config.plan_bucket,
    );
    planner_function(store, Arc::new(plans), Arc::new(EmfRunMetrics), config)
}

/// The planner's function over `store` (metadata, leases and ledger) and
/// `plans`.
pub fn planner_function(
    store: Arc<DynamoDbStore>,
    plans: Arc<dyn PlanStore>,
    metrics: Arc<dyn RunMetrics>,
    config: &PlannerConfig,
) -> PlannerFunction {
    PlannerFunction {
        planner: Planner::new(
            store.clone(),
            store.clone(),
            Arc::new(SystemClock),
            config.plan.clone(),
        )
        .with_capacity_writes(store.clone())
        .with_demand(store.clone()),
        plans,
        ledger: store,
        metrics,
    }
}

/// A refresher writing to `store`, under the leases of `leases`, from the AWS
/// upstream `upstream`.
pub fn refresher_over(
    store: Arc<dyn CacheWrites>,
    leases: Arc<dyn RefreshLeases>,
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
    Refresher::new(
        store,
        leases,
        sources,
        Arc::new(SystemClock),
        metrics,
        settings,
    )
}

/// A reader over `store`, asking `trigger` for refreshes, noting its reads in
/// `demand` when its settings follow demand.
pub fn reader_router(
    store: Arc<dyn CacheReads>,
    trigger: Arc<dyn RefreshTrigger>,
    settings: ReaderSettings,
    metrics: Arc<dyn MetricsSink>,
    demand: Option<Arc<dyn DemandNotes>>,
) -> Router {
    let mut service = ReadService::new(store, trigger, Arc::new(SystemClock), settings);
    if let Some(log) = demand {
        service = service.with_demand(log);
    }
    Router::new(Arc::new(service), metrics)
}

#[cfg(feature = "local")]
mod local {
    //! The local mode's wiring: the embedded store, and the workflow's steps in
    //! process against the fleet simulator, read with the same AWS adapters as
    //! in AWS.

    use std::sync::Arc;

    use aws_config::{BehaviorVersion, Region as SdkRegion};
    use aws_sdk_sts::config::Credentials as SdkCredentials;
    use drs_sim::{SimHandle, Simulator};

    use super::{Aws, reader_router, refresher_over};
    use crate::{
        adapters::{
            aws::{AwsUpstream, CallTimeouts, https_client},
            embedded::EmbeddedStore,
            local_queue::{LocalRefreshQueue, LocalRefreshReceiver},
        },
        config::{
            LOCAL_REGION, LOCAL_SECRET, LocalConfig, LocalRefreshConfig, RefreshSide,
            RefreshSource, StoreChoice, local_key,
        },
        domain::{Region, SystemClock},
        plan::Planner,
        ports::{CacheStorage, ChangeFeed, RefreshTrigger, StoreError},
        read::{Router, metrics::MetricsSink},
        refresh::{
            ChangePublishing, Refresher,
            metrics::{EmfRefreshMetrics, RefreshMetrics},
        },
    };

    /// Targets waiting in the local refresh queue at most.
    const LOCAL_QUEUE_CAPACITY: usize = 10_000;

    /// The refresh side of `drs-cache serve` when it runs in process: the
    /// planner and refresher, and the queue of the reader's requests for them.
    pub struct LocalSide {
        pub refresh: Arc<LocalRefresh>,
        pub requests: LocalRefreshReceiver,
    }

    /// The reader of `drs-cache serve` over `store`, asking the workflow for
    /// refreshes, or the local refresh side started here and returned to be run.
    pub async fn local_reader(
        aws: &Aws,
        config: &LocalConfig,
        store: Arc<dyn CacheStorage>,
        metrics: Arc<dyn MetricsSink>,
    ) -> Result<(Router, Option<LocalSide>), StartError> {
        let (trigger, local): (Arc<dyn RefreshTrigger>, _) = match &config.refresh {
            RefreshSide::Workflow {
                state_machine_arn,
                targets_state_machine_arn,
            } => (
                aws.workflow_trigger(state_machine_arn, targets_state_machine_arn.as_deref())
                    .await,
                None,
            ),
            RefreshSide::InProcess(local) => {
                let (queue, requests) = LocalRefreshQueue::new(LOCAL_QUEUE_CAPACITY);
                let refresh =
                    LocalRefresh::start(local, store.clone(), Arc::new(EmfRefreshMetrics), None)
                        .await?;
                let side = LocalSide {
                    refresh: Arc::new(refresh),
                    requests,
                };
                (Arc::new(queue), Some(side))
            }
        };
        let router = reader_router(
            store.clone(),
            trigger,
            config.reader.clone(),
            metrics,
            Some(store),
        );
        Ok((router, local))
    }

    #[derive(Debug, thiserror::Error)]
    pub enum StartError {
        #[error("cannot open the embedded store at {path}")]
        Embedded {
            path: String,
            #[source]
            source: StoreError,
        },
        #[error("cannot start the fleet simulator")]
        Simulator(#[source] std::io::Error),
        #[error("cannot read the simulated fleet")]
        Upstream(#[from] crate::adapters::aws::SetupError),
    }

    /// The cache store `choice` names, which also keeps refresh leases.
    pub async fn open_store(
        aws: &Aws,
        choice: &StoreChoice,
        lease_scope: Option<&Region>,
    ) -> Result<Arc<dyn CacheStorage>, StartError> {
        Ok(match choice {
            StoreChoice::Embedded(path) => Arc::new(EmbeddedStore::open(path).map_err(
                |source| StartError::Embedded {
                    path: path.display().to_string(),
                    source,
                },
            )?),
            StoreChoice::DynamoDb { table } => {
                aws.table(table, CallTimeouts::STORE, lease_scope).await
            }
        })
    }

    /// The planner and refresher of the local mode, and the simulator they
    /// read (none when they read AWS).
    pub struct LocalRefresh {
        pub planner: Planner,
        pub refresher: Refresher,
        /// Batches refreshing at once, as the workflow's Map.
        pub concurrency: usize,
        /// Runs as long as this does.
        pub simulator: Option<SimHandle>,
    }

    impl LocalRefresh {
        /// Starts the simulator on a free loopback port (unless the source is
        /// AWS) and the planner and refresher over `store`, reading upstream
        /// with the same adapters as in AWS.
        pub async fn start(
            config: &LocalRefreshConfig,
            store: Arc<dyn CacheStorage>,
            metrics: Arc<dyn RefreshMetrics>,
            changes: Option<Arc<dyn ChangeFeed>>,
        ) -> Result<Self, StartError> {
            let (base, simulator) = match &config.source {
                RefreshSource::Simulator(fleet) => {
                    let simulator = Simulator::start(([127, 0, 0, 1], 0).into(), (**fleet).clone())
                        .await
                        .map_err(StartError::Simulator)?;
                    tracing::info!(endpoint = %simulator.endpoint(), "fleet simulator serving DRS, EC2 and IAM");
                    let base = aws_config::defaults(BehaviorVersion::latest())
                        .http_client(https_client())
                        .region(SdkRegion::new(LOCAL_REGION))
                        .endpoint_url(simulator.endpoint())
                        .credentials_provider(SdkCredentials::new(
                            local_key(&config.home),
                            LOCAL_SECRET,
                            None,
                            None,
                            "local",
                        ))
                        .load()
                        .await;
                    (base, Some(simulator))
                }
                RefreshSource::Aws => (Aws::default().config().await.clone(), None),
            };
            let upstream = AwsUpstream::new(base, config.access.clone(), config.upstream)?;
            let mut refresher = refresher_over(
                store.clone(),
                store.clone(),
                upstream,
                config.settings.clone(),
                metrics,
            );
            if let Some(feed) = changes {
                refresher = refresher.with_change_feed(ChangePublishing {
                    reads: store.clone(),
                    feed,
                });
            }
            let planner = Planner::new(
                store.clone(),
                store.clone(),
                Arc::new(SystemClock),
                config.plan.clone(),
            )
            .with_capacity_writes(store.clone())
            .with_demand(store);
            Ok(Self {
                planner,
                refresher,
                concurrency: config.map_concurrency,
                simulator,
            })
        }
    }
}
