//! The local mode's refresh side: the fleet simulator in process, standing in
//! for DRS, EC2 and IAM, and the planner and refresher of the workflow run in
//! process against it.

use std::{path::Path, sync::Arc, time::Duration};

use aws_config::{BehaviorVersion, Region as SdkRegion};
use aws_sdk_sts::config::Credentials as SdkCredentials;
use futures::StreamExt;
use tracing::{info, warn};

use crate::{
    adapters::{
        local_queue::{LocalRefreshReceiver, RefreshRequest},
        upstream::{AccountAccess, AwsUpstream, Credentials, StaticKeys},
    },
    app,
    config::{Env, LocalPlan},
    domain::{AccountId, Region, SystemClock},
    plan::{Planner, run::run_in_process, summary::RunSummary, trigger::Trigger},
    ports::CacheStorage,
    refresh::{Refresher, metrics::RefreshMetrics},
    sim::{SimConfig, SimHandle, Simulator},
};

/// Batches refreshing at once when `MAP_MAX_CONCURRENCY` is unset.
pub const DEFAULT_MAP_CONCURRENCY: usize = 8;

/// The region the local AWS config signs for; every request names its own.
const LOCAL_REGION: &str = "us-east-1";

/// The planner and refresher of the local mode, and the simulator they read.
pub struct LocalRefresh {
    pub planner: Planner,
    pub refresher: Refresher,
    /// Batches refreshing at once (`MAP_MAX_CONCURRENCY`, as the workflow's Map).
    pub concurrency: usize,
    /// Kept so the simulator runs as long as this does.
    _simulator: SimHandle,
}

/// The simulator's configuration: `path` (JSON, see docs/simulator.md) or the
/// defaults, with a key for `home` so the local credentials reach its fleet.
pub fn sim_config(path: Option<&Path>, home: AccountId) -> anyhow::Result<SimConfig> {
    let mut config = match path {
        Some(path) => SimConfig::from_json(&std::fs::read_to_string(path)?)?,
        None => SimConfig::default(),
    };
    config.access_keys.insert(local_key(&home), home);
    Ok(config)
}

/// The access key the local mode signs with for `account`.
pub fn local_key(account: &AccountId) -> String {
    format!("LOCAL{account}")
}

impl LocalRefresh {
    /// Starts the simulator on a free loopback port and the planner and
    /// refresher over `store`, reading it with the same adapters as in AWS.
    /// Every account of the simulator's key map is reachable with its key and,
    /// unless `ACCOUNT_IDS` says otherwise, refreshed; `REGIONS` defaults to
    /// `us-east-1`.
    pub async fn start<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        store: Arc<dyn CacheStorage>,
        home: AccountId,
        config: SimConfig,
        metrics: Arc<dyn RefreshMetrics>,
    ) -> anyhow::Result<Self> {
        let settings = env.refresh_settings_or(home)?;
        let home = settings.home_account;
        let mut accounts: Vec<AccountId> = vec![home];
        for account in config.access_keys.values() {
            if !accounts.contains(account) {
                accounts.push(*account);
            }
        }
        let plan = env.plan_config(Some(LocalPlan {
            home,
            accounts,
            regions: vec![Region::parse(LOCAL_REGION)?],
        }))?;
        let others = config
            .access_keys
            .iter()
            .map(|(key, account)| (*account, StaticKeys::new(key.clone(), "local")))
            .collect();
        let simulator = Simulator::start(([127, 0, 0, 1], 0).into(), config).await?;
        info!(endpoint = %simulator.endpoint(), "fleet simulator serving DRS, EC2 and IAM");
        let base = aws_config::defaults(BehaviorVersion::latest())
            .region(SdkRegion::new(LOCAL_REGION))
            .endpoint_url(simulator.endpoint())
            .credentials_provider(SdkCredentials::new(
                local_key(&home),
                "local",
                None,
                None,
                "local",
            ))
            .load()
            .await;
        let access = AccountAccess {
            own_account: Some(home),
            others: Credentials::Static(others),
        };
        let upstream = AwsUpstream::new(base, access, env.upstream_config()?)?;
        let concurrency = env.number("MAP_MAX_CONCURRENCY", DEFAULT_MAP_CONCURRENCY)?;
        let refresher = app::refresher_over(store.clone(), upstream, settings, metrics);
        let planner = Planner::new(store.clone(), store, Arc::new(SystemClock), plan);
        Ok(Self {
            planner,
            refresher,
            concurrency,
            _simulator: simulator,
        })
    }

    /// One run of `trigger`, as the workflow would run it.
    pub async fn run(&self, trigger: &Trigger) -> anyhow::Result<RunSummary> {
        let summary =
            run_in_process(&self.planner, &self.refresher, trigger, self.concurrency).await?;
        info!(
            reason = %summary.reason,
            batches = summary.batches,
            refreshed = summary.keys.refreshed,
            unchanged = summary.keys.unchanged,
            failed = summary.keys.failed,
            "local refresh run done"
        );
        Ok(summary)
    }

    /// Runs a scheduled tick every `SCHEDULE_INTERVAL_SECONDS`, the first one
    /// interval after start (until then, reads that miss are refreshed at once).
    pub async fn tick_forever(self: Arc<Self>) {
        let period = self
            .planner
            .config()
            .schedule_interval
            .max(Duration::from_secs(1));
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            ticks.tick().await;
            if let Err(e) = self.run(&Trigger::Schedule).await {
                warn!(error = %e, "local scheduled refresh failed");
            }
        }
    }

    /// Refreshes what the reader asks for, until the queue closes: each request
    /// is planned like the reader's request to the workflow.
    pub async fn drain(self: Arc<Self>, queue: LocalRefreshReceiver) {
        let requests = futures::stream::unfold(queue, |mut queue| async move {
            queue.recv().await.map(|request| (request, queue))
        });
        requests
            .for_each_concurrent(self.concurrency.max(1), |request| {
                let this = self.clone();
                async move {
                    let trigger = match request {
                        RefreshRequest::Target { key, reason } => Trigger::Targets {
                            reason,
                            keys: vec![key],
                        },
                        RefreshRequest::Invalidation(inv) => Trigger::Manual(inv),
                    };
                    if let Err(e) = this.run(&trigger).await {
                        warn!(error = %e, "local refresh failed");
                    }
                }
            })
            .await;
    }
}
