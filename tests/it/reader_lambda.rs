//! The reader function with real API Gateway and direct-invocation payloads.

use crate::support::reader::{Harness, harness, key, policy, settings};
use drs_cache::{
    domain::DataType,
    read::lambda::{ReaderResponse, handle},
};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json, value::RawValue};

fn event(name: &str) -> LambdaEvent<Box<RawValue>> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    LambdaEvent::new(RawValue::from_string(text).unwrap(), Context::default())
}

fn raw(value: Value) -> LambdaEvent<Box<RawValue>> {
    LambdaEvent::new(
        RawValue::from_string(value.to_string()).unwrap(),
        Context::default(),
    )
}

async fn cached_quotas(h: &Harness) -> String {
    let body = r#"{"accountId":"123456789012","region":"us-east-1","replicatingServers":12}"#;
    h.cache(
        &key(DataType::DrsQuotas, "us-east-1"),
        body,
        0,
        policy(300, 86_400),
    )
    .await;
    body.to_owned()
}

#[tokio::test]
async fn a_rest_api_event_gets_a_rest_api_response() {
    let h = harness(settings()).await;
    let subnets = json!({"subnets": [
        {"subnetId": "subnet-1", "vpcId": "vpc-0000000a", "availabilityZone": "us-east-1a"},
        {"subnetId": "subnet-2", "vpcId": "vpc-0000000b", "availabilityZone": "us-east-1a"}], "count": 2});
    h.cache(
        &key(DataType::Ec2Subnets, "us-east-1"),
        subnets.to_string(),
        0,
        policy(3600, 86_400),
    )
    .await;

    let response = handle(&h.router, event("apigw-rest-get-subnets.json"))
        .await
        .unwrap();
    assert!(matches!(response, ReaderResponse::RestApi(_)));
    let out = serde_json::to_value(&response).unwrap();
    assert_eq!(out["statusCode"], 200);
    assert_eq!(out["multiValueHeaders"]["x-cache"], json!(["store"]));
    assert_eq!(out["isBase64Encoded"], false);
    let body: Value = serde_json::from_str(out["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["count"], 1, "the vpcId filter of the event applied");
    assert_eq!(body["subnets"][0]["subnetId"], "subnet-1");
}

#[tokio::test]
async fn an_http_api_event_on_a_named_stage_gets_an_http_api_response() {
    let h = harness(settings()).await;
    let body = cached_quotas(&h).await;
    let response = handle(&h.router, event("apigw-http-get-quotas.json"))
        .await
        .unwrap();
    assert!(matches!(response, ReaderResponse::HttpApi(_)));
    let out = serde_json::to_value(&response).unwrap();
    assert_eq!(out["statusCode"], 200);
    assert_eq!(out["headers"]["x-cache-status"], "fresh");
    assert_eq!(out["body"], body);
}

#[tokio::test]
async fn an_unknown_route_is_a_404_response_not_a_function_error() {
    let h = harness(settings()).await;
    let response = handle(&h.router, event("apigw-http-get-unknown-route.json"))
        .await
        .unwrap();
    let out = serde_json::to_value(&response).unwrap();
    assert_eq!(out["statusCode"], 404);
    let body: Value = serde_json::from_str(out["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["error"], "NOT_FOUND");
}

#[tokio::test]
async fn a_direct_invocation_gets_the_data_and_how_it_was_served() {
    let h = harness(settings()).await;
    cached_quotas(&h).await;
    let response = handle(&h.router, event("direct-get-quotas.json"))
        .await
        .unwrap();
    let out = serde_json::to_value(&response).unwrap();
    assert_eq!(out["data"]["replicatingServers"], 12);
    assert_eq!(out["cache"]["tier"], "store");
    assert_eq!(out["cache"]["status"], "fresh");
    assert_eq!(out["cache"]["etag"].as_str().unwrap().len(), 32);
}

#[tokio::test]
async fn drs_inventory_invoked_directly_merges_targets_and_refuses_a_bad_list() {
    let h = harness(settings()).await;
    let servers = json!({"servers": [{"sourceServerID": "s-1", "hostname": "web-1"}],
                         "region": "us-east-1", "serverCount": 1});
    h.cache(
        &key(DataType::DrsSourceServers, "us-east-1"),
        servers.to_string(),
        0,
        policy(120, 86_400),
    )
    .await;
    let call = json!({"operation": "drs-inventory",
                      "queryParams": {"regions": "us-east-1", "accountIds": "123456789012"}});
    let out = serde_json::to_value(handle(&h.router, raw(call)).await.unwrap()).unwrap();
    assert_eq!(out["data"]["serverCount"], 1, "{out}");
    assert_eq!(out["data"]["servers"][0]["hostname"], "web-1");
    assert_eq!(out["data"]["targets"][0]["state"], "fresh");
    assert_eq!(out["cache"]["tier"], "merged");
    assert_eq!(out["cache"]["status"], "fresh");
    assert_eq!(out["cache"]["etag"].as_str().unwrap().len(), 32);

    let bad = json!({"operation": "drs-inventory", "queryParams": {"regions": "mars-1"}});
    let err = handle(&h.router, raw(bad)).await.unwrap_err();
    assert_eq!(err.error_type, "INVALID_PARAMETER");
    assert!(err.message.contains("regions"), "{}", err.message);
}

#[tokio::test]
async fn a_bad_direct_invocation_is_a_typed_error_naming_the_field() {
    let h = harness(settings()).await;
    let err = handle(&h.router, event("direct-bad-account.json"))
        .await
        .unwrap_err();
    assert_eq!(err.error_type, "INVALID_PARAMETER");
    assert!(err.message.contains("accountId"), "{}", err.message);

    let err = handle(
        &h.router,
        raw(json!({"operation": "drs-quotas", "queryParams": {"region": 1}})),
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_type, "INVALID_PARAMETER");
    assert!(
        err.message.contains("queryParams.region"),
        "{}",
        err.message
    );

    let err = handle(
        &h.router,
        raw(json!({"operation": "drs-quotas", "query": {}})),
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_type, "INVALID_PARAMETER");

    let err = handle(
        &h.router,
        raw(json!({"operation": "nothing", "queryParams": {}})),
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_type, "NOT_FOUND");

    let err = handle(
        &h.router,
        raw(json!({"operation": "drs-quotas", "queryParams": {"region": "us-east-9"}})),
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_type, "NOT_CACHED");
}

#[tokio::test]
async fn a_direct_health_check_answers_ok_and_invalidations_are_posted_only() {
    let h = harness(settings()).await;
    for operation in ["health", "/health"] {
        let response = handle(&h.router, raw(json!({ "operation": operation })))
            .await
            .unwrap();
        let out = serde_json::to_value(&response).unwrap();
        assert_eq!(out["data"], json!({"status": "ok"}));
        assert_eq!(out["cache"]["tier"], "");
        assert_eq!(out["cache"]["ageSeconds"], 0);
    }
    let err = handle(&h.router, raw(json!({"operation": "/cache/invalidate"})))
        .await
        .unwrap_err();
    assert_eq!(err.error_type, "METHOD_NOT_ALLOWED");
}

#[tokio::test]
async fn an_event_of_no_known_shape_is_invalid_input() {
    let h = harness(settings()).await;
    for payload in [json!({"hello": "world"}), json!([1, 2]), json!("text")] {
        let err = handle(&h.router, raw(payload)).await.unwrap_err();
        assert_eq!(err.error_type, "InvalidInput");
    }
}
