//! The local mode's refresh side: the fleet simulator in process, standing in
//! for DRS, EC2 and IAM, and a refresher draining the in-process refresh queue.

use std::{path::Path, sync::Arc};

use aws_config::{BehaviorVersion, Region};
use aws_sdk_sts::config::Credentials;
use futures::StreamExt;
use tracing::info;

use crate::{
    adapters::{
        local_queue::LocalRefreshReceiver,
        upstream::{AccountAccess, AwsUpstream, StaticKeys, UpstreamConfig},
    },
    app,
    domain::AccountId,
    ports::CacheStore,
    refresh::{RefreshSettings, Refresher},
    sim::{SimConfig, SimHandle, Simulator},
};

/// The region the local AWS config signs for; every request names its own.
const LOCAL_REGION: &str = "us-east-1";

/// The simulator's configuration: `path` (JSON, see docs/simulator.md) or the
/// defaults, with `home` as the account of the local credentials.
pub fn sim_config(path: Option<&Path>, home: AccountId) -> anyhow::Result<SimConfig> {
    let mut config = match path {
        Some(path) => SimConfig::from_json(&std::fs::read_to_string(path)?)?,
        None => SimConfig::default(),
    };
    config.access_keys.insert(local_key(&home), home);
    Ok(config)
}

fn local_key(account: &AccountId) -> String {
    format!("LOCAL{account}")
}

/// Starts the simulator on a free loopback port and a refresher that reads
/// it with the same adapters as in AWS. Every account the simulator's key map
/// names is reachable with its key.
pub async fn start(
    store: Arc<dyn CacheStore>,
    settings: RefreshSettings,
    upstream: UpstreamConfig,
    config: SimConfig,
) -> anyhow::Result<(Refresher, SimHandle)> {
    let home = settings.home_account;
    let others = config
        .access_keys
        .iter()
        .map(|(key, account)| (*account, StaticKeys::new(key.clone(), "local")))
        .collect();
    let sim = Simulator::start(([127, 0, 0, 1], 0).into(), config).await?;
    info!(endpoint = %sim.endpoint(), "fleet simulator serving DRS, EC2 and IAM");
    let base = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(LOCAL_REGION))
        .endpoint_url(sim.endpoint())
        .credentials_provider(Credentials::new(
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
        others: crate::adapters::upstream::Credentials::Static(others),
    };
    let upstream = AwsUpstream::new(base, access, upstream)?;
    Ok((app::refresher_over(store, upstream, settings), sim))
}

/// Refreshes what the reader asks for, `concurrency` targets at a time, until
/// the queue closes.
pub async fn drain(refresher: Arc<Refresher>, queue: LocalRefreshReceiver, concurrency: usize) {
    let requests = futures::stream::unfold(queue, |mut queue| async move {
        queue.recv().await.map(|request| (request, queue))
    });
    requests
        .for_each_concurrent(concurrency.max(1), |request| {
            let refresher = refresher.clone();
            async move {
                let report = refresher
                    .refresh(std::slice::from_ref(&request.key), request.reason)
                    .await;
                info!(
                    cache_key = %request.key,
                    reason = request.reason.as_str(),
                    refreshed = report.refreshed,
                    unchanged = report.unchanged,
                    failed = report.failed,
                    "local refresh done"
                );
            }
        })
        .await;
}
