//! The `refresher` Lambda handler with the payloads the workflow sends: the
//! batch's counts and the next round (if any) out, counts recorded in the run
//! ledger when the batch is done; keys that fail never fail the invocation,
//! and only an input it refuses does.

use std::sync::Arc;

use crate::support::InSim;
use crate::support::reader::RecordingTrigger;
use crate::support::refresh::{HOME, Rig, dynamodb_table, home, key};
use drs_cache::{
    domain::{RefreshErrorKind, Timestamp},
    ports::ClaimRule,
    refresh::lambda::RefresherFunction,
    workflow::{BatchResult, Counts, RunLedger},
};
use drs_sim::{Faults, Service, SimConfig};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn event(payload: Value) -> LambdaEvent<Value> {
    LambdaEvent::new(payload, Context::default())
}

/// The rig's refresher as its function, with a ledger of its own.
async fn function(
    rig: &Rig,
) -> (
    RefresherFunction,
    Arc<drs_cache::adapters::dynamodb::DynamoDbStore>,
) {
    let ledger = dynamodb_table().await;
    let function = rig.function(ledger.clone(), Arc::new(RecordingTrigger::default()));
    (function, ledger)
}

async fn answer(function: &RefresherFunction, payload: Value) -> Value {
    serde_json::to_value(function.handle(event(payload)).await.unwrap()).unwrap()
}

#[tokio::test]
async fn a_batch_answers_its_counts_in_a_few_bytes_and_records_them() {
    let rig = Rig::start(SimConfig::default()).await;
    let (function, ledger) = function(&rig).await;
    let mut payload = fixture("refresher-batch.json");
    payload["run"] = json!({"execution": "tick-7", "index": 0});
    let out = answer(&function, payload).await;
    // drs-quotas also wrote drs-source-servers from the same fetch.
    let counts = Counts {
        refreshed: 4,
        ..Counts::default()
    };
    assert_eq!(out["refreshed"], 4, "{out:#}");
    assert_eq!(out["failed"], 0);
    assert_eq!(out["retry"], Value::Null, "the batch is done");
    assert_eq!(
        ledger.results("tick-7", 1).await.unwrap(),
        [Some(BatchResult::Counts(counts))]
    );
    // Far below the 256 KB state limit although the bodies are larger.
    assert!(serde_json::to_vec(&out).unwrap().len() < 200, "{out}");
    for raw in [
        "drs-quotas#us-east-1#123456789012",
        "drs-source-servers#us-east-1#123456789012",
        "ec2-subnets#us-east-1#123456789012",
        "ec2-instance-types#us-east-1#global",
    ] {
        let entry = rig.store.get(&key(raw)).await.unwrap().expect(raw);
        assert!(entry.body.len() > 10, "{raw}");
    }
}

#[tokio::test]
async fn a_denied_account_ends_its_batch_with_the_keys_failed_and_recorded() {
    let rig = Rig::start(SimConfig::default()).await;
    rig.sim
        .update(|c| c.faults.access_denied = vec![home().sim()])
        .unwrap();
    let (function, ledger) = function(&rig).await;
    let payload = json!({"reason": "event", "targets": [
        {"dataType": "drs-accounts", "region": "us-east-1", "accountId": HOME}
    ], "run": {"execution": "tick-8", "index": 0}});
    let out = answer(&function, payload).await;
    // A permanent failure: no round follows, and the batch is counted.
    assert_eq!(out["failed"], 1, "{out}");
    assert_eq!(out["retry"], Value::Null);
    assert_eq!(
        ledger.results("tick-8", 1).await.unwrap(),
        [Some(BatchResult::Counts(Counts {
            failed: 1,
            ..Counts::default()
        }))]
    );
    let entry = rig
        .store
        .get(&key("drs-accounts#us-east-1#123456789012"))
        .await
        .unwrap()
        .expect("the failure is recorded on the key");
    let failure = entry.meta.last_attempt.unwrap().failure.unwrap();
    assert_eq!(failure.kind, RefreshErrorKind::AccessDenied);
}

/// The bound of docs/refresh.md: with every call throttled, one target whose
/// listing is one page costs `REFRESH_ROUNDS` x the SDK's attempts calls (3 x
/// 3 here), and its batch then ends with the target failed, its lease released.
#[tokio::test]
async fn a_target_throttled_on_every_call_costs_rounds_times_attempts_calls_at_most() {
    let rig = Rig::start(SimConfig::default()).await;
    rig.sim
        .set_faults(Faults {
            throttle_next: 1_000,
            retry_after_secs: 0,
            ..Faults::default()
        })
        .unwrap();
    let (function, ledger) = function(&rig).await;
    let target = key("drs-quotas#us-east-1#123456789012");
    let now = Timestamp::now();
    let claim = rig
        .store
        .claim(
            std::slice::from_ref(&target),
            now,
            now.plus(std::time::Duration::from_secs(360)),
            ClaimRule::Demand {
                mark_pending: false,
            },
        )
        .await
        .unwrap();
    let mut batch = json!({"reason": "schedule",
        "targets": [{"dataType": "drs-quotas", "region": "us-east-1", "accountId": HOME}],
        "claim": claim.id, "run": {"execution": "tick-9", "index": 0}});
    // Round after round as the workflow's loop runs them (without the waits).
    let mut rounds = Vec::new();
    let last = loop {
        let out = answer(&function, batch.clone()).await;
        rounds.push(batch.get("round").and_then(Value::as_u64).unwrap_or(0));
        if out["retry"].is_null() {
            break out;
        }
        assert!(out["retry"]["waitSeconds"].as_u64().unwrap() >= 1, "{out}");
        assert_eq!(
            ledger.results("tick-9", 1).await.unwrap(),
            [None],
            "not done yet"
        );
        batch = out["retry"]["batch"].clone();
        assert_eq!(
            batch["claim"],
            json!(claim.id),
            "the next round holds the lease"
        );
    };
    assert_eq!(rounds, [0, 1, 2]);
    assert_eq!(
        rig.sim.requests(Service::Drs, "DescribeSourceServers"),
        3 * 3
    );
    // The quotas and the source servers it writes, both failed.
    assert_eq!(last["failed"], 2, "{last}");
    assert_eq!(
        ledger.results("tick-9", 1).await.unwrap(),
        [Some(BatchResult::Counts(Counts {
            failed: 2,
            ..Counts::default()
        }))]
    );
    let again = rig
        .store
        .claim(
            std::slice::from_ref(&target),
            Timestamp::now(),
            Timestamp::now().plus(std::time::Duration::from_secs(360)),
            ClaimRule::Demand {
                mark_pending: false,
            },
        )
        .await
        .unwrap();
    assert_eq!(again.keys, [target], "the last round released the lease");
}

#[tokio::test]
async fn an_event_that_is_not_a_refresh_request_is_invalid_input_and_fetches_nothing() {
    let rig = Rig::start(SimConfig::default()).await;
    let (function, _) = function(&rig).await;
    for payload in [
        json!({"targets": [{"dataType": "drs-quotas", "region": "us-east-1", "accountId": "1234"}]}),
        json!({"Items": []}),
        json!("refresh everything"),
        json!({"targets": [{"dataType": "drs-quotas", "region": "us-east-1"}], "round": -1}),
        json!({"targets": [{"dataType": "drs-quotas", "region": "us-east-1"}], "round": 1e10}),
    ] {
        let error = function.handle(event(payload.clone())).await.unwrap_err();
        assert_eq!(error.error_type, "InvalidInput", "{payload}");
    }
    let counts = rig.sim.request_counts();
    assert!(counts.is_empty(), "{counts:?}");

    // A round past the last is the last: its failures are final, never a panic.
    let out = answer(
        &function,
        json!({"targets": [{"dataType": "drs-accounts", "region": "us-east-1", "accountId": HOME}],
               "round": u32::MAX}),
    )
    .await;
    assert_eq!(out["retry"], Value::Null, "{out}");
}
