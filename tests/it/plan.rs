//! The planner over a DynamoDB table on moto: scheduled ticks refresh what is
//! due, events refresh their account and region, bursts collapse, and runs go
//! through the real refresher against the fleet simulator.

use std::{collections::HashMap, sync::Arc};

use crate::support::{
    InSim,
    plan::{ManualClock, RecordedRuns},
    refresh::{Endpoints, HOME, Rig, home, sdk_config},
    workflow::{other, plan_config, regions},
};
use drs_cache::{
    adapters::aws::{AccountAccess, Credentials, StaticKeys},
    domain::{AccountId, CacheKey, DataType, Region, Timestamp},
    plan::{PlanConfig, Planner, lambda::handle, trigger::Trigger},
    ports::Invalidation,
    workflow::run_in_process,
};
use drs_sim::{SimConfig, Simulator};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};

/// The workflow tests' plan, with small store pages so that a tick lists
/// entries page by page.
fn config() -> PlanConfig {
    PlanConfig {
        list_page: 7,
        ..plan_config()
    }
}

/// The simulator with both accounts reachable, a refresher, and a planner on
/// the same table with a clock the test moves.
async fn rig() -> (Rig, Planner, Arc<ManualClock>) {
    let key = "LOCALOTHER";
    let sim = Simulator::start(
        "127.0.0.1:0".parse().unwrap(),
        SimConfig {
            access_keys: [(key.to_owned(), other().sim())].into(),
            ..SimConfig::default()
        },
    )
    .await
    .unwrap();
    let base = sdk_config(&sim.endpoint(), Endpoints::default()).await;
    let access = AccountAccess {
        own_account: Some(home()),
        others: Credentials::Static(HashMap::from([(other(), StaticKeys::new(key, "x"))])),
    };
    let rig = Rig::over(sim, base, access).await;
    let clock = Arc::new(ManualClock::at(Timestamp::now()));
    let planner = Planner::new(
        rig.store.clone(),
        rig.store.clone(),
        clock.clone(),
        config(),
    );
    (rig, planner, clock)
}

fn count(keys: &[CacheKey], data_type: DataType) -> usize {
    keys.iter().filter(|k| k.data_type() == data_type).count()
}

#[tokio::test]
async fn a_tick_plans_everything_never_cached_and_later_ticks_only_what_is_due() {
    let (rig, planner, clock) = rig().await;
    // 2 regions x (6 per-account types x 2 accounts + instance types once),
    // refreshed through the refresher as the workflow does.
    let run = run_in_process(&planner, &rig.refresher, &Trigger::Schedule, 4)
        .await
        .unwrap();
    assert_eq!(run.keys.refreshed, 26, "{run:?}");
    assert_eq!(run.keys.failed, 0, "{run:?}");
    // One account per batch: 14 targets of the home account (instance types
    // included) and 12 of the other, in batches of at most 10.
    assert_eq!(run.batches, 4, "{run:?}");

    // Right after, nothing is due.
    let quiet = planner.plan(&Trigger::Schedule).await.unwrap();
    assert!(quiet.targets().is_empty(), "{quiet:?}");

    // A minute on, the source servers (fresh for 2 minutes) expire before the
    // next tick plus the margin: only they are refreshed ahead.
    clock.advance(61);
    let due = planner.plan(&Trigger::Schedule).await.unwrap();
    assert_eq!(due.targets().len(), 4, "{due:?}");
    assert_eq!(count(&due.targets(), DataType::DrsSourceServers), 4);
}

#[tokio::test]
async fn a_drs_event_plans_only_that_account_and_regions_drs_keys() {
    let (_rig, planner, _clock) = rig().await;
    let trigger = Trigger::Change {
        account: other(),
        region: regions()[1].clone(),
        data_types: vec![DataType::DrsSourceServers, DataType::DrsQuotas],
    };
    let plan = planner.plan(&trigger).await.unwrap();
    let keys: Vec<String> = plan.targets().iter().map(ToString::to_string).collect();
    assert_eq!(
        keys,
        [
            "drs-source-servers#eu-west-1#210987654321",
            "drs-quotas#eu-west-1#210987654321"
        ]
    );
}

#[tokio::test]
async fn a_burst_of_fifty_events_for_one_target_plans_it_once() {
    let (_rig, planner, _clock) = rig().await;
    let trigger = Trigger::Change {
        account: home(),
        region: regions()[0].clone(),
        data_types: vec![DataType::Ec2Subnets],
    };
    let plans = futures::future::join_all((0..50).map(|_| planner.plan(&trigger))).await;
    let planned: usize = plans
        .iter()
        .map(|p| p.as_ref().unwrap().targets().len())
        .sum();
    let skipped: usize = plans.iter().map(|p| p.as_ref().unwrap().skipped).sum();
    assert_eq!(planned, 1);
    assert_eq!(skipped, 49);
}

#[tokio::test]
async fn events_outside_the_configuration_and_unknown_events_plan_nothing() {
    let (_rig, planner, _clock) = rig().await;
    let stranger = Trigger::Change {
        account: AccountId::parse("555555555555").unwrap(),
        region: regions()[0].clone(),
        data_types: vec![DataType::Ec2Subnets],
    };
    let plan = planner.plan(&stranger).await.unwrap();
    assert!(plan.targets().is_empty());
    assert_eq!(plan.skipped, 1);
    let elsewhere = Trigger::Change {
        account: home(),
        region: Region::parse("ap-south-1").unwrap(),
        data_types: vec![DataType::Ec2Subnets],
    };
    assert!(planner.plan(&elsewhere).await.unwrap().targets().is_empty());
    let ignored = planner
        .plan(&Trigger::Ignored {
            why: "unrelated".into(),
        })
        .await
        .unwrap();
    assert!(ignored.targets().is_empty());
    assert_eq!(ignored.ignored.as_deref(), Some("unrelated"));
}

#[tokio::test]
async fn an_invalidation_plans_exactly_the_matching_targets() {
    let (_rig, planner, _clock) = rig().await;
    let plan = planner
        .plan(&Trigger::Manual(Invalidation {
            data_type: Some(DataType::Ec2Subnets),
            region: Some(regions()[1].clone()),
            account: None,
        }))
        .await
        .unwrap();
    let keys: Vec<String> = plan.targets().iter().map(ToString::to_string).collect();
    assert_eq!(
        keys,
        [
            "ec2-subnets#eu-west-1#123456789012",
            "ec2-subnets#eu-west-1#210987654321"
        ]
    );
    let every = planner
        .plan(&Trigger::Manual(Invalidation {
            data_type: None,
            region: None,
            account: Some(other()),
        }))
        .await
        .unwrap();
    // Every per-account type of that account, and the instance types, in both
    // regions; the subnets of eu-west-1 are still leased.
    assert_eq!(every.targets().len(), 2 * 7 - 1, "{every:?}");
}

fn event(payload: Value) -> LambdaEvent<Value> {
    LambdaEvent::new(payload, Context::default())
}

#[tokio::test]
async fn the_planner_lambda_answers_batches_of_refresher_inputs_and_totals_the_run() {
    let (_rig, planner, _clock) = rig().await;
    let runs = RecordedRuns::default();
    let out = handle(
        &planner,
        &runs,
        event(json!({
            "version": "0", "id": "7bf73129-1428-4cd3-a780-95db273d1602",
            "detail-type": "DRS Source Server Data Replication Stalled Change",
            "source": "aws.drs", "account": HOME, "time": "2026-11-29T10:00:00Z",
            "region": "us-east-1",
            "resources": [format!("arn:aws:drs:us-east-1:{HOME}:source-server/s-1234567890abcdef0")],
            "detail": {"state": "STALLED"}
        })),
    )
    .await
    .unwrap();
    let out = serde_json::to_value(out).unwrap();
    assert_eq!(out["reason"], "event");
    assert_eq!(out["targets"], 2);
    assert_eq!(out["batches"].as_array().unwrap().len(), 1);
    assert_eq!(out["batches"][0]["reason"], "event");
    assert_eq!(
        out["batches"][0]["targets"][0],
        json!({"dataType": "drs-source-servers", "region": "us-east-1", "accountId": HOME})
    );

    // Planning records no run totals; summarizing does.
    assert!(runs.take().is_empty());
    let totals = handle(
        &planner,
        &runs,
        event(json!({"summarize": {"reason": "event", "results": [
            {"refreshed": 2, "unchanged": 0, "superseded": 0, "notInitialized": 0, "failed": 0},
            {"failedBatch": true, "error": "AccessDenied"}
        ]}})),
    )
    .await
    .unwrap();
    let totals = serde_json::to_value(totals).unwrap();
    assert_eq!(totals["refreshed"], 2);
    assert_eq!(totals["failedBatches"], 1);
    assert_eq!(totals["errors"]["AccessDenied"], 1);
    let recorded = runs.take();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].keys.refreshed, 2);
    assert_eq!(recorded[0].failed_batches, 1);

    let bad = handle(
        &planner,
        &runs,
        event(json!({"trigger": "manual", "region": "moon"})),
    )
    .await
    .unwrap_err();
    assert_eq!(bad.error_type, "InvalidInput");
    assert!(bad.message.contains("region"), "{}", bad.message);
}
