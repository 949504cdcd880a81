//! The living fleet: at every interval the simulator changes one fleet (a
//! replication state moves, a server stalls or recovers, a launch, a new
//! subnet, security group or instance profile) and hands back the EventBridge
//! event AWS would deliver for it, which goes through the same parser and
//! planner as in AWS and refreshes exactly the keys it names.

use std::{sync::Arc, time::Duration};

use drs_sim::Life;
use tracing::warn;

use crate::{
    app::LocalRefresh,
    domain::{CacheKey, Clock, SystemClock, Timestamp},
    errors,
    plan::{Trigger, trigger},
};

use super::activity::{Activity, EventRecord};

/// Changes the simulated fleet every `every`, forever, and refreshes what
/// each change's event names.
pub async fn run(refresh: Arc<LocalRefresh>, activity: Arc<Activity>, seed: u64, every: Duration) {
    let Some(simulator) = refresh.simulator.as_ref() else {
        return;
    };
    let fleets = fleets(&refresh);
    let mut life = Life::new(seed);
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        ticks.tick().await;
        let Some((change, account, region)) = life.next(&fleets) else {
            return;
        };
        let live = match simulator.apply(change, &account, &region, std::time::SystemTime::now()) {
            Ok(live) => live,
            Err(e) => {
                warn!(error = %errors::chain(&e), "the simulated fleet did not change");
                continue;
            }
        };
        handle(&refresh, &activity, &live.event, live.summary).await;
    }
}

/// Plans and refreshes what `event` names, and records how long its change
/// took to reach the cache.
pub async fn handle(
    refresh: &LocalRefresh,
    activity: &Activity,
    event: &serde_json::Value,
    summary: String,
) {
    let home = refresh.planner.config().home;
    let trigger = match trigger::parse(event, home) {
        Ok(trigger) => trigger,
        Err(e) => {
            warn!(error = %e, "a simulated event is not one the planner reads");
            return;
        }
    };
    let event_time = trigger::event_time(event);
    let keys = keys_of(&trigger, refresh);
    let done = refresh.run_after(&trigger, event_time).await;
    // Only a change that reached configured keys has a latency to report.
    let to_cache_ms = match (&done, event_time) {
        (Ok(_), Some(at)) if !keys.is_empty() => {
            Some((SystemClock.unix_micros() / 1_000).saturating_sub(at))
        }
        _ => None,
    };
    let text = |path: &str| {
        event
            .pointer(path)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    activity.event_handled(EventRecord {
        at: Timestamp::now().rfc3339(),
        summary,
        detail_type: text("/detail-type").unwrap_or_default(),
        account: text("/detail/recipientAccountId").or_else(|| text("/account")),
        region: text("/detail/awsRegion").or_else(|| text("/region")),
        keys: keys.iter().map(ToString::to_string).collect(),
        to_cache_ms,
    });
}

/// The configured keys of the regions this deployment owns that `trigger` refreshes.
fn keys_of(trigger: &Trigger, refresh: &LocalRefresh) -> Vec<CacheKey> {
    let kept = refresh.planner.config().refreshed();
    let mut keys = refresh.planner.changed(trigger);
    keys.retain(|k| kept.check(k).is_ok());
    keys
}

/// Every (account, region) the planner keeps, as the simulator names them.
fn fleets(refresh: &LocalRefresh) -> Vec<(drs_sim::AccountId, drs_sim::Region)> {
    let config = refresh.planner.config();
    config
        .accounts
        .iter()
        .flat_map(|a| config.regions.iter().map(move |r| (a, r)))
        .filter_map(|(a, r)| {
            Some((
                drs_sim::AccountId::parse(a.as_str()).ok()?,
                drs_sim::Region::parse(r.as_str()).ok()?,
            ))
        })
        .collect()
}
