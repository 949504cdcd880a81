//! Leases at work between the planner and the refresher: a change while its
//! target is fetched is refreshed once more after that fetch (never dropped,
//! still collapsed), a refresher that dies leaves its targets to the failure
//! backoff, and a lease outlasts a refresh however slow, up to the refresher's
//! timeout.

use std::{sync::Arc, time::Duration};

use drs_cache::{
    domain::{DataType, Region, Timestamp},
    plan::{PlanConfig, Planner, Trigger},
    ports::RefreshReason,
    refresh::lambda::RefresherFunction,
    workflow::run_in_process,
};
use drs_sim::{Service, SimConfig};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};

use crate::support::{
    InSim,
    plan::ManualClock,
    reader::RecordingTrigger,
    refresh::{Rig, dynamodb_table, home, key},
    workflow::plan_config,
};

const SERVERS: &str = "drs-source-servers#us-east-1#123456789012";

fn region() -> Region {
    Region::parse("us-east-1").unwrap()
}

/// One target: the home account's source servers in us-east-1.
fn config() -> PlanConfig {
    PlanConfig {
        accounts: vec![home()],
        regions: vec![region()],
        data_types: vec![DataType::DrsSourceServers],
        ..plan_config()
    }
}

fn change() -> Trigger {
    Trigger::Change {
        account: home(),
        region: region(),
        data_types: vec![DataType::DrsSourceServers],
    }
}

/// The simulator with `servers` source servers in the one target, and a
/// planner on the rig's table with a clock the test moves.
async fn rig(servers: u32) -> (Rig, Planner, Arc<ManualClock>) {
    let rig = Rig::start(SimConfig::default()).await;
    rig.sim
        .set_servers(home().sim(), &region().sim(), servers)
        .unwrap();
    let clock = Arc::new(ManualClock::at(Timestamp::now()));
    let planner = Planner::new(
        rig.store.clone(),
        rig.store.clone(),
        clock.clone(),
        config(),
    );
    (rig, planner, clock)
}

async fn stored_servers(rig: &Rig) -> u64 {
    let entry = rig.store.get(&key(SERVERS)).await.unwrap().expect("cached");
    entry.meta.item_count
}

/// The batch of `plan` as the workflow's Map hands it to the refresher.
fn batch_of(plan: &drs_cache::plan::Plan) -> Value {
    assert_eq!(plan.batches.len(), 1, "{plan:?}");
    json!({
        "reason": plan.reason,
        "targets": [{"dataType": "drs-source-servers", "region": "us-east-1",
                     "accountId": "123456789012"}],
        "claim": plan.claim,
        "run": {"execution": "leases", "index": 0}
    })
}

fn event(payload: Value) -> LambdaEvent<Value> {
    LambdaEvent::new(payload, Context::default())
}

#[tokio::test]
async fn a_change_while_its_target_is_fetched_is_refreshed_once_more_after_that_fetch() {
    let (rig, planner, _clock) = rig(5).await;
    let hold = rig.sim.hold_next(1);
    let trigger = change();
    let run = run_in_process(&planner, &rig.refresher, &trigger, None, 4);
    let burst = async {
        // The fetch has its answer (5 servers) and is in flight.
        hold.wait_arrived(1).await;
        rig.sim
            .set_servers(home().sim(), &region().sim(), 9)
            .unwrap();
        // A burst of 50 events for the target while it is held: none plans it.
        for _ in 0..50 {
            let plan = planner.plan(&change()).await.unwrap();
            assert_eq!(plan.target_count(), 0, "{plan:?}");
            assert_eq!(plan.skipped, 1);
        }
        hold.release();
    };
    let (summary, ()) = tokio::join!(run, burst);
    let summary = summary.unwrap();
    // The listing writes the servers and the quotas drawn from them.
    assert_eq!(summary.keys.refreshed, 2, "{summary:?}");
    // The change is in the cache: one fetch in flight and one after it.
    assert_eq!(stored_servers(&rig).await, 9);
    assert_eq!(rig.sim.requests(Service::Drs, "DescribeSourceServers"), 2);
    // And the lease is free again.
    assert_eq!(planner.plan(&change()).await.unwrap().target_count(), 1);
}

#[tokio::test]
async fn a_burst_of_changes_during_a_fetch_asks_for_one_follow_up_run() {
    let (rig, planner, _clock) = rig(5).await;
    let trigger = Arc::new(RecordingTrigger::default());
    let function = rig.function(dynamodb_table().await, trigger.clone());
    let plan = planner.plan(&change()).await.unwrap();
    let hold = rig.sim.hold_next(1);
    let refresh = function.handle(event(batch_of(&plan)));
    let burst = async {
        hold.wait_arrived(1).await;
        for _ in 0..50 {
            assert_eq!(planner.plan(&change()).await.unwrap().target_count(), 0);
        }
        hold.release();
    };
    let (out, ()) = tokio::join!(refresh, burst);
    let out = out.unwrap();
    assert_eq!(out.counts.refreshed, 2, "servers and quotas");
    // One run asked for, of the changed target, and the lease is free for it.
    assert_eq!(trigger.requests(), [(key(SERVERS), RefreshReason::Event)]);
    let follow_up = planner
        .plan(&Trigger::Targets {
            reason: RefreshReason::Event,
            keys: vec![key(SERVERS)],
        })
        .await
        .unwrap();
    assert_eq!(follow_up.target_count(), 1);

    // A fetch that no change met asks for nothing.
    let quiet = RefresherFunction {
        trigger: Arc::new(RecordingTrigger::default()),
        ..function
    };
    quiet.handle(event(batch_of(&follow_up))).await.unwrap();
    let asked: &RecordingTrigger = &trigger;
    assert_eq!(asked.requests().len(), 1);
}

#[tokio::test]
async fn a_refresher_killed_mid_batch_leaves_its_targets_to_the_failure_backoff() {
    let (rig, planner, clock) = rig(5).await;
    let function = Arc::new(rig.function(
        dynamodb_table().await,
        Arc::new(RecordingTrigger::default()),
    ));
    let plan = planner.plan(&Trigger::Schedule).await.unwrap();
    let hold = rig.sim.hold_next(1);
    let running = {
        let function = function.clone();
        let batch = batch_of(&plan);
        tokio::spawn(async move { function.handle(event(batch)).await })
    };
    hold.wait_arrived(1).await;
    // The invocation dies mid-fetch: nothing ends its lease.
    running.abort();
    assert!(running.await.unwrap_err().is_cancelled());
    drop(hold);

    // Past the lease the target is due (never cached), yet a tick leaves it
    // until the failure backoff has passed since the lease ended. (The lease
    // was begun on the wall clock, a moment after the planner's; hence the
    // few seconds of margin.)
    let lease = config().lease.as_secs();
    let backoff = config().failure_backoff.as_secs();
    let mut moved = 0;
    for at in [lease + 5, lease + backoff - 5] {
        clock.advance(at - moved);
        moved = at;
        let tick = planner.plan(&Trigger::Schedule).await.unwrap();
        assert_eq!(tick.target_count(), 0, "at +{at}s: {tick:?}");
        assert_eq!(tick.skipped, 1);
    }
    clock.advance(10);
    let tick = planner.plan(&Trigger::Schedule).await.unwrap();
    assert_eq!(tick.target_count(), 1, "{tick:?}");
}

#[tokio::test]
async fn a_lease_outlasts_a_refresh_as_slow_as_the_refreshers_timeout() {
    let (rig, planner, clock) = rig(5).await;
    let trigger = Arc::new(RecordingTrigger::default());
    let function = rig.function(dynamodb_table().await, trigger.clone());
    let plan = planner.plan(&Trigger::Schedule).await.unwrap();
    let hold = rig.sim.hold_next(1);
    let refresh = function.handle(event(batch_of(&plan)));
    let later = async {
        hold.wait_arrived(1).await;
        // 300 s, the refresher's timeout, into the fetch: still held for
        // ticks and for changes (which mark it for after).
        clock.advance(300);
        assert_eq!(
            planner
                .plan(&Trigger::Schedule)
                .await
                .unwrap()
                .target_count(),
            0
        );
        assert_eq!(planner.plan(&change()).await.unwrap().target_count(), 0);
        hold.release();
    };
    let (out, ()) = tokio::join!(refresh, later);
    assert_eq!(out.unwrap().counts.refreshed, 2, "servers and quotas");
    assert_eq!(trigger.requests(), [(key(SERVERS), RefreshReason::Event)]);
    assert!(config().lease >= Duration::from_secs(300) + Duration::from_secs(60));
}
