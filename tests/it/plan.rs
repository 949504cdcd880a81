//! The planner over a DynamoDB table on moto: scheduled ticks refresh what is
//! due, events refresh their account and region, bursts collapse, and runs go
//! through the real refresher against the fleet simulator.

use std::{collections::HashMap, sync::Arc, time::Duration};

use crate::support::{
    moto,
    plan::{ManualClock, RecordedRuns, planner_rig},
    refresh::{HOME, Rig, dynamodb_table, home},
    workflow::{COUNTED_TYPES, other, plan_config, regions},
};
use drs_cache::{
    adapters::{embedded::EmbeddedStore, s3::S3PlanStore},
    domain::{AccountId, CacheKey, DataType, Region, Timestamp},
    plan::{
        PlanConfig, Planner,
        freshness::TypeFreshness,
        lambda::{PlannerFunction, handle},
        trigger::Trigger,
    },
    ports::{Invalidation, RefreshReason, StoreError},
    workflow::{BatchResult, Counts, PlanLocation, RunRecords, RunRef, run_in_process},
};
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

/// The plan tests' rig over [`config`].
async fn rig() -> (Rig, Planner, Arc<ManualClock>) {
    planner_rig(config()).await
}

fn count(keys: &[CacheKey], data_type: DataType) -> usize {
    keys.iter().filter(|k| k.data_type() == data_type).count()
}

#[tokio::test]
async fn a_tick_plans_everything_never_cached_and_later_ticks_only_what_is_due() {
    let (rig, planner, clock) = rig().await;
    // 2 regions x (6 per-account types x 2 accounts + instance types once),
    // refreshed through the refresher as the workflow does.
    let run = run_in_process(&planner, &rig.refresher, &Trigger::Schedule, None, 4)
        .await
        .unwrap();
    assert_eq!(run.keys.refreshed, 26, "{run:?}");
    assert_eq!(run.keys.failed, 0, "{run:?}");
    // 26 targets in batches of at most 10 (this rig's size), accounts
    // together.
    assert_eq!(run.batches, 3, "{run:?}");

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

/// A data type's line of a tick's freshness survey.
fn surveyed(plan: &drs_cache::plan::Plan, data_type: DataType) -> TypeFreshness {
    plan.freshness
        .iter()
        .find(|t| t.data_type == data_type.as_str())
        .unwrap_or_else(|| panic!("no {data_type:?} in {:?}", plan.freshness))
        .clone()
}

#[tokio::test]
async fn a_tick_surveys_each_types_missing_and_overdue_targets_and_the_lambda_records_it() {
    let (rig, planner, clock) = rig().await;
    let run = run_in_process(&planner, &rig.refresher, &Trigger::Schedule, None, 4)
        .await
        .unwrap();
    assert_eq!(run.keys.refreshed, 26, "{run:?}");
    // The refresher wrote the entries at the system's time, however long the run
    // took; the ages below count from then.
    clock.catch_up(Timestamp::now());
    let fresh = planner.plan(&Trigger::Schedule).await.unwrap();
    assert_eq!(fresh.freshness.len(), COUNTED_TYPES.len(), "{fresh:?}");
    assert!(
        fresh
            .freshness
            .iter()
            .all(|t| t.missing_keys == 0 && t.overdue_keys == 0),
        "{:?}",
        fresh.freshness
    );
    assert_eq!(
        fresh
            .freshness
            .iter()
            .map(|t| t.configured_keys)
            .sum::<u64>(),
        26
    );
    assert!(surveyed(&fresh, DataType::DrsSourceServers).worst_age_ratio < 1.0);

    // A region configured since: its targets are missing until refreshed.
    let mut wider = config();
    wider.regions.push(Region::parse("eu-central-1").unwrap());
    let wider = Planner::new(rig.store.clone(), rig.store.clone(), clock.clone(), wider);
    let grown = wider.plan(&Trigger::Schedule).await.unwrap();
    let servers = surveyed(&grown, DataType::DrsSourceServers);
    assert_eq!(
        (
            servers.configured_keys,
            servers.missing_keys,
            servers.overdue_keys
        ),
        (6, 2, 0)
    );
    assert_eq!(
        grown.freshness.iter().map(|t| t.missing_keys).sum::<u64>(),
        13
    );

    // Past twice their freshness (2 minutes), the source servers are overdue;
    // instance types (a day) are not.
    clock.advance(2 * 120 + 1);
    let late = planner.plan(&Trigger::Schedule).await.unwrap();
    let servers = surveyed(&late, DataType::DrsSourceServers);
    assert_eq!((servers.missing_keys, servers.overdue_keys), (0, 4));
    assert!(servers.worst_age_ratio > 2.0, "{servers:?}");
    assert_eq!(surveyed(&late, DataType::Ec2InstanceTypes).overdue_keys, 0);

    // Events plan without a survey; the planner function records each tick's.
    let change = planner
        .plan(&Trigger::Change {
            account: home(),
            region: Region::parse("us-east-1").unwrap(),
            data_types: vec![DataType::DrsSourceServers],
        })
        .await
        .unwrap();
    assert!(change.freshness.is_empty(), "{change:?}");
    let runs = Arc::new(RecordedRuns::default());
    let s3 = moto::s3_client(moto::endpoint());
    let bucket = moto::unique_name("plans");
    moto::ensure_bucket(&s3, &bucket).await;
    let function = PlannerFunction {
        planner,
        plans: Arc::new(S3PlanStore::new(s3, &bucket)),
        ledger: dynamodb_table().await,
        metrics: runs.clone(),
    };
    handle(&function, event(json!({"trigger": "schedule"})))
        .await
        .unwrap();
    let surveys = runs.take_surveys();
    assert_eq!(surveys.len(), 1);
    assert_eq!(surveys[0].len(), COUNTED_TYPES.len());
}

#[tokio::test]
async fn a_tick_claims_at_most_its_limit_oldest_first_and_later_ticks_take_the_rest() {
    let (rig, _, clock) = rig().await;
    let planner = Planner::new(
        rig.store.clone(),
        rig.store.clone(),
        clock.clone(),
        PlanConfig {
            max_targets_per_run: 10,
            ..config()
        },
    );
    // 26 targets never cached: 10, 10 and 6 on three ticks in a row.
    let mut planned = Vec::new();
    for (expected, deferred) in [(10, 16), (10, 6), (6, 0)] {
        let plan = planner.plan(&Trigger::Schedule).await.unwrap();
        assert_eq!(plan.target_count(), expected, "{plan:?}");
        assert_eq!(plan.deferred, deferred, "{plan:?}");
        rig.refresher
            .refresh(&plan.targets(), RefreshReason::Schedule)
            .await;
        planned.extend(plan.targets());
        clock.advance(1);
    }
    planned.sort();
    planned.dedup();
    assert_eq!(planned.len(), 26);

    // Hours on, all but the instance types (fresh for a day) are due: the 10
    // that expired first go first.
    clock.advance(2 * 3600);
    let plan = planner.plan(&Trigger::Schedule).await.unwrap();
    assert_eq!(plan.deferred, 24 - 10);
    let mut expiry = HashMap::new();
    for key in &planned {
        let meta = rig.store.get(key).await.unwrap().unwrap().meta;
        expiry.insert(key.clone(), meta.expires_at);
    }
    let chosen = plan.targets();
    let latest_chosen = chosen.iter().map(|k| expiry[k]).max().unwrap();
    let waiting = planned
        .iter()
        .filter(|k| !chosen.contains(k) && k.data_type() != DataType::Ec2InstanceTypes);
    for key in waiting {
        assert!(
            expiry[key] >= latest_chosen,
            "{key} expired before a chosen one"
        );
    }
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

#[tokio::test]
async fn an_invalidation_leaves_out_targets_refreshed_within_the_minimum_age() {
    let (rig, _, clock) = rig().await;
    let min_age = Duration::from_secs(600);
    let planner = Planner::new(
        rig.store.clone(),
        rig.store.clone(),
        clock.clone(),
        PlanConfig {
            manual_min_age: min_age,
            ..config()
        },
    );
    let run = run_in_process(&planner, &rig.refresher, &Trigger::Schedule, None, 4)
        .await
        .unwrap();
    assert_eq!(run.keys.refreshed, 26, "{run:?}");
    // Past the tick's leases, everything was fetched less than the minimum
    // age ago: nothing is planned.
    clock.advance(config().lease.as_secs());
    let everything = Trigger::Manual(Invalidation::default());
    let soon = planner.plan(&everything).await.unwrap();
    assert!(soon.targets().is_empty(), "{soon:?}");
    // Past it, the invalidation plans every target.
    clock.advance(min_age.as_secs());
    let later = planner.plan(&everything).await.unwrap();
    assert_eq!(later.targets().len(), 26, "{later:?}");
}

fn event(payload: Value) -> LambdaEvent<Value> {
    LambdaEvent::new(payload, Context::default())
}

#[tokio::test]
async fn the_planner_lambda_writes_its_batches_to_a_plan_object_and_totals_the_run_from_the_ledger()
{
    let (_rig, planner, _clock) = rig().await;
    let s3 = moto::s3_client(moto::endpoint());
    let bucket = moto::unique_name("plans");
    moto::ensure_bucket(&s3, &bucket).await;
    let runs = Arc::new(RecordedRuns::default());
    let ledger = dynamodb_table().await;
    let function = PlannerFunction {
        planner,
        plans: Arc::new(S3PlanStore::new(s3.clone(), &bucket)),
        ledger: ledger.clone(),
        metrics: runs.clone(),
    };
    let out = handle(
        &function,
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
    assert_eq!(out["batches"], 1);
    assert_eq!(out["plan"]["bucket"], bucket.as_str());
    let plan = moto::object_json(&s3, &bucket, out["plan"]["key"].as_str().unwrap()).await;
    assert_eq!(plan.as_array().unwrap().len(), 1);
    assert_eq!(plan[0]["reason"], "event");
    assert_eq!(
        plan[0]["targets"][0],
        json!({"dataType": "drs-source-servers", "region": "us-east-1", "accountId": HOME})
    );

    // A plan of nothing writes no object.
    let none = handle(
        &function,
        event(json!({"source": "aws.s3", "detail-type": "Object Created"})),
    )
    .await
    .unwrap();
    let none = serde_json::to_value(none).unwrap();
    assert_eq!(none["batches"], 0);
    assert_eq!(none["plan"], Value::Null);

    // Planning records no run totals; summarizing does, from what the batches
    // recorded: the refresher's counts, a recorded failure, and one batch that
    // recorded nothing.
    assert!(runs.take().is_empty());
    let run = |index| RunRef {
        execution: "tick-1".into(),
        index,
    };
    let counts = Counts {
        refreshed: 2,
        ..Counts::default()
    };
    ledger
        .record(&run(0), &BatchResult::Counts(counts))
        .await
        .unwrap();
    let failed = handle(
        &function,
        event(json!({"recordFailure": {
            "run": {"execution": "tick-1", "index": 1}, "error": "AccessDenied", "targets": 3}})),
    )
    .await
    .unwrap();
    assert_eq!(
        serde_json::to_value(failed).unwrap(),
        json!({"recorded": true})
    );
    let totals = handle(
        &function,
        event(json!({"summarize": {"reason": "event", "execution": "tick-1", "batches": 3}})),
    )
    .await
    .unwrap();
    let totals = serde_json::to_value(totals).unwrap();
    assert_eq!(totals["batches"], 3);
    assert_eq!(totals["refreshed"], 2);
    assert_eq!(totals["failedBatches"], 2);
    assert_eq!(totals["failedBatchTargets"], 3);
    assert_eq!(totals["errors"], json!({"AccessDenied": 1, "Abandoned": 1}));
    let recorded = runs.take();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].keys.refreshed, 2);
    assert_eq!(recorded[0].failed_batches, 2);

    let bad = handle(
        &function,
        event(json!({"summarize": {"reason": "event", "batches": 3}})),
    )
    .await
    .unwrap_err();
    assert_eq!(bad.error_type, "InvalidInput");
    assert!(bad.message.contains("summarize"), "{}", bad.message);

    let bad = handle(
        &function,
        event(json!({"trigger": "manual", "region": "moon"})),
    )
    .await
    .unwrap_err();
    assert_eq!(bad.error_type, "InvalidInput");
    assert!(bad.message.contains("region"), "{}", bad.message);
}

/// Keeps plan objects in memory.
#[derive(Default)]
struct KeptPlans(std::sync::Mutex<Vec<Vec<u8>>>);

#[async_trait::async_trait]
impl drs_cache::workflow::PlanStore for KeptPlans {
    async fn put(&self, body: Vec<u8>) -> Result<PlanLocation, StoreError> {
        let mut kept = self.0.lock().unwrap();
        kept.push(body);
        Ok(PlanLocation {
            bucket: "kept".into(),
            key: format!("plans/{}.json", kept.len()),
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plan_the_state_carries_stays_a_few_hundred_bytes_at_196_000_targets() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(dir.path().join("cache.redb")).unwrap());
    let accounts: Vec<AccountId> = (0..1_167u64)
        .map(|i| AccountId::parse(&format!("{:012}", 100_000_000_000 + i)).unwrap())
        .collect();
    let config = PlanConfig {
        accounts,
        regions: drs_cache::cost::simulate::REGIONS
            .map(|r| Region::parse(r).unwrap())
            .to_vec(),
        max_targets_per_run: 200_000,
        ..config()
    };
    let plans = Arc::new(KeptPlans::default());
    let function = PlannerFunction {
        planner: Planner::new(
            store.clone(),
            store,
            Arc::new(ManualClock::at(Timestamp::now())),
            config,
        ),
        plans: plans.clone(),
        ledger: dynamodb_table().await,
        metrics: Arc::new(RecordedRuns::default()),
    };
    let out = handle(&function, event(json!({"trigger": "schedule"})))
        .await
        .unwrap();
    let out = serde_json::to_value(out).unwrap();
    assert_eq!(out["targets"], 1_167 * 28 * 6 + 28, "{out}");
    let size = serde_json::to_vec(&out).unwrap().len();
    assert!(size < 400, "{size} bytes: {out}");
    // The batches travel in the plan object instead: megabytes of them.
    let kept = plans.0.lock().unwrap();
    let batches: Vec<Value> = serde_json::from_slice(&kept[0]).unwrap();
    assert_eq!(json!(batches.len()), out["batches"]);
    let planned: usize = batches
        .iter()
        .map(|b| b["targets"].as_array().unwrap().len())
        .sum();
    assert_eq!(json!(planned), out["targets"]);
    assert!(kept[0].len() > 10_000_000, "{} bytes", kept[0].len());
}
