//! The `refresher` Lambda handler with the payloads the workflow sends: a small
//! report on success, and on failure an error whose type is the failure kind
//! (for Step Functions Retry and Catch) and whose message is the report. A
//! batch of a run that ends normally records its counts in the run ledger.

use crate::support::InSim;
use crate::support::refresh::{HOME, Rig, dynamodb_table};
use drs_cache::{
    refresh::lambda::handle,
    workflow::{BatchResult, RunLedger},
};
use drs_sim::{Faults, SimConfig};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn event(payload: Value) -> LambdaEvent<Value> {
    LambdaEvent::new(payload, Context::default())
}

#[tokio::test]
async fn a_batch_returns_one_small_summary_per_key_and_records_its_counts() {
    let rig = Rig::start(SimConfig::default()).await;
    let ledger = dynamodb_table().await;
    let mut payload = fixture("refresher-batch.json");
    payload["run"] = json!({"execution": "tick-7", "index": 0});
    let report = handle(&rig.refresher, &*ledger, event(payload))
        .await
        .unwrap();
    assert_eq!(
        ledger.results("tick-7", 1).await.unwrap(),
        [Some(BatchResult::Counts(report.counts))]
    );
    let json = serde_json::to_value(&report).unwrap();
    // drs-quotas also wrote drs-source-servers from the same fetch.
    assert_eq!(json["refreshed"], 4, "{json:#}");
    assert_eq!(json["failed"], 0);
    let results = json["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    for r in results {
        assert_eq!(r["status"], "refreshed");
        assert_eq!(r["changed"], true);
        assert!(r["items"].as_u64().unwrap() > 0);
        assert!(r["bytes"].as_u64().unwrap() > 0);
        assert!(r["durationMs"].is_u64());
    }
    // Far below the 256 KB state limit although the bodies are larger.
    let total_bytes: u64 = results.iter().map(|r| r["bytes"].as_u64().unwrap()).sum();
    assert!(total_bytes > 100_000);
    assert!(serde_json::to_vec(&json).unwrap().len() < 2_000);
}

#[tokio::test]
async fn a_denied_account_fails_the_invocation_as_access_denied_with_the_report() {
    let rig = Rig::start(SimConfig::default()).await;
    rig.sim
        .update(|c| c.faults.access_denied = vec![crate::support::refresh::home().sim()])
        .unwrap();
    let payload = json!({"reason": "event", "targets": [
        {"dataType": "drs-accounts", "region": "us-east-1", "accountId": HOME}
    ], "run": {"execution": "tick-8", "index": 0}});
    let ledger = dynamodb_table().await;
    let error = handle(&rig.refresher, &*ledger, event(payload))
        .await
        .unwrap_err();
    // The workflow's Record failure records the failed batch, not the refresher.
    assert_eq!(ledger.results("tick-8", 1).await.unwrap(), [None]);
    assert_eq!(error.error_type, "AccessDenied");
    let report: Value = serde_json::from_str(&error.message).unwrap();
    assert_eq!(report["failed"], 1);
    assert_eq!(report["results"][0]["error"]["kind"], "AccessDenied");
    let diagnostic: lambda_runtime::Diagnostic = error.into();
    assert_eq!(diagnostic.error_type, "AccessDenied");
}

#[tokio::test]
async fn a_throttled_batch_fails_as_throttled_so_the_workflow_retries_it() {
    let rig = Rig::start(SimConfig::default()).await;
    rig.sim
        .set_faults(Faults {
            throttle_next: 100,
            retry_after_secs: 0,
            ..Faults::default()
        })
        .unwrap();
    let ledger = dynamodb_table().await;
    let error = handle(
        &rig.refresher,
        &*ledger,
        event(fixture("refresher-batch.json")),
    )
    .await
    .unwrap_err();
    assert_eq!(error.error_type, "Throttled");
}

#[tokio::test]
async fn an_event_that_is_not_a_refresh_request_is_invalid_input_and_fetches_nothing() {
    let rig = Rig::start(SimConfig::default()).await;
    let ledger = dynamodb_table().await;
    for payload in [
        json!({"targets": [{"dataType": "drs-quotas", "region": "us-east-1", "accountId": "1234"}]}),
        json!({"Items": []}),
        json!("refresh everything"),
    ] {
        let error = handle(&rig.refresher, &*ledger, event(payload.clone()))
            .await
            .unwrap_err();
        assert_eq!(error.error_type, "InvalidInput", "{payload}");
    }
    let counts = rig.sim.request_counts();
    assert!(counts.is_empty(), "{counts:?}");
}
