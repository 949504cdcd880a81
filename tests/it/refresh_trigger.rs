//! Refresh requests as Step Functions executions, against moto's Step Functions.

use std::time::Duration;

use crate::support::moto;
use aws_sdk_sfn::{
    config::{BehaviorVersion, Credentials, Region},
    types::ExecutionStatus,
};
use drs_cache::{
    adapters::sfn::StepFunctionsTrigger,
    domain::CacheKey,
    ports::{Invalidation, RefreshReason, RefreshTrigger},
};

async fn sfn_client() -> aws_sdk_sfn::Client {
    let config = aws_sdk_sfn::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(drs_cache::adapters::aws::https_client())
        .endpoint_url(moto::endpoint())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
        .build();
    aws_sdk_sfn::Client::from_conf(config)
}

/// A state machine that does nothing, named for this test; its ARN.
async fn state_machine(client: &aws_sdk_sfn::Client) -> String {
    client
        .create_state_machine()
        .name(moto::unique_name("refresh"))
        .definition(r#"{"StartAt":"Done","States":{"Done":{"Type":"Succeed"}}}"#)
        .role_arn("arn:aws:iam::123456789012:role/refresh")
        .send()
        .await
        .unwrap()
        .state_machine_arn()
        .to_owned()
}

#[tokio::test]
async fn a_burst_of_requests_for_one_target_starts_one_execution() {
    let client = sfn_client().await;
    let machine = state_machine(&client).await;
    let arn = machine.as_str();
    // A window long enough that the burst cannot straddle two windows.
    let trigger = StepFunctionsTrigger::new(client.clone(), arn, Duration::from_secs(86_400 * 365));
    let key = CacheKey::parse("drs-source-servers#us-east-1#123456789012").unwrap();
    let other = CacheKey::parse("drs-quotas#us-east-1#123456789012").unwrap();
    for _ in 0..5 {
        trigger
            .request_refresh(&key, RefreshReason::Miss)
            .await
            .unwrap();
    }
    trigger
        .request_refresh(&other, RefreshReason::Miss)
        .await
        .unwrap();

    let executions = client
        .list_executions()
        .state_machine_arn(arn)
        .send()
        .await
        .unwrap();
    let mut names: Vec<_> = executions
        .executions()
        .iter()
        .map(|e| e.name().to_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names[0].starts_with("miss-drs-quotas-us-east-1-123456789012-"));
    assert!(names[1].starts_with("miss-drs-source-servers-us-east-1-123456789012-"));

    let described = client
        .describe_execution()
        .execution_arn(executions.executions()[0].execution_arn())
        .send()
        .await
        .unwrap();
    let input: serde_json::Value = serde_json::from_str(described.input().unwrap()).unwrap();
    assert_eq!(input["reason"], "miss");
    assert_eq!(input["targets"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_missing_state_machine_is_an_error() {
    let trigger = StepFunctionsTrigger::new(
        sfn_client().await,
        "arn:aws:states:us-east-1:123456789012:stateMachine:absent",
        Duration::from_secs(60),
    );
    let key = CacheKey::parse("drs-quotas#us-east-1#123456789012").unwrap();
    assert!(
        trigger
            .request_refresh(&key, RefreshReason::Miss)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_request_whose_windows_run_has_ended_starts_a_new_run() {
    let client = sfn_client().await;
    let machine = state_machine(&client).await;
    let arn = machine.as_str();
    let trigger = StepFunctionsTrigger::new(client.clone(), arn, Duration::from_secs(86_400 * 365));
    let everything = Invalidation::default();
    let executions = || async {
        client
            .list_executions()
            .state_machine_arn(arn)
            .send()
            .await
            .unwrap()
            .executions()
            .to_vec()
    };

    // While the window's run is running, the same request joins it.
    trigger.request_invalidation(&everything).await.unwrap();
    trigger.request_invalidation(&everything).await.unwrap();
    let runs = executions().await;
    assert_eq!(runs.len(), 1, "{runs:?}");

    // Once it has ended, the same request is a run of its own.
    client
        .stop_execution()
        .execution_arn(runs[0].execution_arn())
        .send()
        .await
        .unwrap();
    trigger.request_invalidation(&everything).await.unwrap();
    let runs = executions().await;
    assert_eq!(runs.len(), 2, "{runs:?}");
    let running: Vec<_> = runs
        .iter()
        .filter(|e| *e.status() == ExecutionStatus::Running)
        .collect();
    assert_eq!(running.len(), 1, "{runs:?}");
    let name = running[0].name();
    assert!(name.starts_with("manual-all-all-all-"), "{name}");
    assert!(name.contains("-r"), "{name}");
}
