//! Every read path of the reader against a real DynamoDB table on moto, over HTTP.

use crate::support::{
    proxy::Mode,
    reader::{ACCOUNT, Harness, harness, header, json, key, policy, settings},
    store_contract::incompressible_body,
};
use bytes::Bytes;
use drs_cache::{
    domain::{
        AccountId, CacheEntry, CacheKey, DataType, Kept, RefreshAttempt, RefreshErrorKind,
        RefreshFailure, Region, SystemClock, Timestamp, Version,
    },
    ports::{CacheReads, CacheWrites, Invalidation, RefreshReason},
    read::{ApiRequest, ReaderSettings, metrics::ReadResult},
};
use http::StatusCode;
use serde_json::json;
use std::time::Duration;

const SUBNETS: &str = "/ec2/subnets";

fn subnets_body() -> Bytes {
    let subnet = |id: &str, vpc: &str, zone: &str| {
        json!({"subnetId": id, "subnetName": format!("name-{id}"), "vpcId": vpc,
               "cidrBlock": "10.0.0.0/24", "availabilityZone": zone,
               "availableIpAddressCount": 251, "tags": {"Name": format!("name-{id}")}})
    };
    let subnets = vec![
        subnet("subnet-0000000000000001a", "vpc-0000000a", "us-east-1a"),
        subnet("subnet-0000000000000002b", "vpc-0000000a", "us-east-1b"),
        subnet("subnet-0000000000000003c", "vpc-0000000b", "us-east-1a"),
    ];
    Bytes::from(json!({"subnets": subnets, "count": 3}).to_string())
}

/// Fresh subnets of us-east-1 in the table.
async fn cache_subnets(h: &Harness) -> CacheEntry {
    let entry = key(DataType::Ec2Subnets, "us-east-1");
    h.cache(&entry, subnets_body(), 0, policy(3600, 86_400))
        .await
}

#[tokio::test]
async fn a_first_read_comes_from_the_store_and_the_next_from_memory() {
    let h = harness(settings()).await;
    let entry = h
        .cache(
            &key(DataType::Ec2Subnets, "us-east-1"),
            subnets_body(),
            10,
            policy(3600, 86_400),
        )
        .await;

    let first = h.get(SUBNETS, &[("region", "us-east-1")]).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(first.body(), &entry.body);
    assert_eq!(header(&first, "x-cache"), "store");
    assert_eq!(header(&first, "x-cache-status"), "fresh");
    assert_eq!(header(&first, "content-type"), "application/json");
    assert_eq!(header(&first, "etag"), format!("\"{}\"", entry.meta.etag));
    let max_age: u64 = header(&first, "cache-control")
        .trim_start_matches("max-age=")
        .parse()
        .unwrap();
    assert!((3580..=3590).contains(&max_age), "max-age {max_age}");
    let age: u64 = header(&first, "age").parse().unwrap();
    assert!((10..=20).contains(&age), "age {age}");

    let second = h
        .get(SUBNETS, &[("region", "us-east-1"), ("accountId", ACCOUNT)])
        .await;
    assert_eq!(second.status(), StatusCode::OK);
    assert_eq!(header(&second, "x-cache"), "memory");
    assert_eq!(second.body(), &entry.body);
    assert_eq!(h.reads.gets(), 1, "memory hit must not read the store");
    assert!(
        h.trigger.requests().is_empty(),
        "fresh data needs no refresh"
    );

    let recorded = h.metrics.take();
    assert_eq!(recorded[0].result, ReadResult::StoreHit { stale: false });
    assert_eq!(recorded[1].result, ReadResult::MemoryHit { stale: false });
    assert!(recorded[1].data_age.unwrap() >= 10);
}

#[tokio::test]
async fn a_matching_if_none_match_gets_304_without_a_body() {
    let h = harness(settings()).await;
    let entry = h
        .cache(
            &key(DataType::DrsQuotas, "us-east-1"),
            &br#"{"replicatingServers":1}"#[..],
            0,
            policy(300, 86_400),
        )
        .await;
    let mut req = ApiRequest::get("/drs/quotas", &[("region", "us-east-1")]);
    req.if_none_match = Some(format!("\"{}\"", entry.meta.etag));
    let r = h.router.handle(&req).await;
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    assert!(r.body().is_empty());
    assert_eq!(header(&r, "etag"), format!("\"{}\"", entry.meta.etag));
    assert_eq!(header(&r, "x-cache-status"), "fresh");

    req.if_none_match = Some("\"something-else\"".into());
    let r = h.router.handle(&req).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.body(), &entry.body);
}

#[tokio::test]
async fn expired_data_within_the_stale_window_is_served_marked_stale_and_refreshed() {
    let h = harness(settings()).await;
    let k = key(DataType::DrsSourceServers, "eu-west-1");
    let entry = h
        .cache(
            &k,
            &br#"{"servers":[],"region":"eu-west-1","serverCount":0}"#[..],
            600,
            policy(120, 86_400),
        )
        .await;

    let r = h
        .get("/drs/source-servers", &[("region", "eu-west-1")])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.body(), &entry.body);
    assert_eq!(header(&r, "x-cache-status"), "stale");
    assert_eq!(header(&r, "cache-control"), "max-age=0");
    assert_eq!(h.trigger.requests(), vec![(k.clone(), RefreshReason::Miss)]);

    // Served stale again from memory, without asking for a second refresh.
    let again = h
        .get("/drs/source-servers", &[("region", "eu-west-1")])
        .await;
    assert_eq!(header(&again, "x-cache"), "memory");
    assert_eq!(header(&again, "x-cache-status"), "stale");
    assert_eq!(h.trigger.requests().len(), 1);
    assert_eq!(
        h.metrics.take()[0].result,
        ReadResult::StoreHit { stale: true }
    );
}

/// As deployed, scheduled ticks keep the keys read fresh ahead: data stale by
/// less than a tick and its margin is left to the next tick (which refreshes
/// it, now that it was read), and only older stale data, which no tick kept,
/// is refreshed at once.
#[tokio::test]
async fn a_read_leaves_data_stale_within_a_tick_to_the_ticks_and_asks_at_once_for_older() {
    let h = harness(ReaderSettings {
        ticks_keep: Some(Duration::from_secs(90)),
        ..settings()
    })
    .await;
    let body = |region: &str| {
        Bytes::from(format!(
            r#"{{"servers":[],"region":"{region}","serverCount":0}}"#
        ))
    };
    // Fresh for two minutes, fetched two and a half minutes ago.
    let kept = key(DataType::DrsSourceServers, "eu-west-1");
    h.cache(&kept, body("eu-west-1"), 150, policy(120, 86_400))
        .await;
    let r = h
        .get("/drs/source-servers", &[("region", "eu-west-1")])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "x-cache-status"), "stale");
    assert_eq!(h.trigger.requests(), vec![]);

    // Fetched twelve minutes ago: no tick kept it.
    let cold = key(DataType::DrsSourceServers, "eu-west-2");
    h.cache(&cold, body("eu-west-2"), 720, policy(120, 86_400))
        .await;
    let r = h
        .get("/drs/source-servers", &[("region", "eu-west-2")])
        .await;
    assert_eq!(header(&r, "x-cache-status"), "stale");
    assert_eq!(h.trigger.requests(), vec![(cold, RefreshReason::Miss)]);
}

/// Caches `drs-accounts` of us-east-1, fetched two hours ago: past its stale
/// window.
async fn cache_expired_accounts(h: &Harness) -> CacheKey {
    let k = key(DataType::DrsAccounts, "us-east-1");
    h.cache(
        &k,
        &br#"{"accounts":[],"count":0}"#[..],
        7_200,
        policy(60, 600),
    )
    .await;
    k
}

#[tokio::test]
async fn data_past_its_stale_window_is_not_served() {
    let h = harness(settings()).await;
    let k = cache_expired_accounts(&h).await;
    let r = h.get("/drs/accounts", &[("region", "us-east-1")]).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = json(&r);
    assert_eq!(body["error"], "NOT_CACHED");
    assert_eq!(body["details"]["expired"], true);
    assert_eq!(body["details"]["refreshRequested"], true);
    assert_eq!(header(&r, "retry-after"), "30");
    assert_eq!(h.trigger.requests(), vec![(k, RefreshReason::Miss)]);
}

#[tokio::test]
async fn a_store_outage_serves_the_memory_copy_marked_stale() {
    for mode in [Mode::Refuse, Mode::Hang] {
        let h = harness(ReaderSettings {
            memory_ttl: Duration::ZERO,
            store_timeout: Duration::from_millis(300),
            ..settings()
        })
        .await;
        let entry = cache_subnets(&h).await;
        let loaded = h.get(SUBNETS, &[("region", "us-east-1")]).await;
        assert_eq!(header(&loaded, "x-cache"), "store");

        h.outage(mode);
        let r = h.get(SUBNETS, &[("region", "us-east-1")]).await;
        assert_eq!(r.status(), StatusCode::OK, "{mode:?}");
        assert_eq!(r.body(), &entry.body);
        assert_eq!(header(&r, "x-cache"), "memory");
        assert_eq!(header(&r, "x-cache-status"), "stale", "{mode:?}");
        assert_eq!(h.reads.gets(), 2, "the store was tried before falling back");
    }
}

#[tokio::test]
async fn a_store_outage_without_a_memory_copy_is_503_with_retry_after() {
    for mode in [Mode::Refuse, Mode::Hang] {
        let h = harness(ReaderSettings {
            store_timeout: Duration::from_millis(300),
            ..settings()
        })
        .await;
        cache_subnets(&h).await;
        h.outage(mode);
        let r = h.get(SUBNETS, &[("region", "us-east-1")]).await;
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE, "{mode:?}");
        assert_eq!(json(&r)["error"], "CACHE_UNAVAILABLE");
        assert_eq!(header(&r, "retry-after"), "30");
        assert_eq!(h.metrics.take()[0].result, ReadResult::Unavailable);
    }
}

#[tokio::test]
async fn a_never_cached_target_is_503_not_cached_and_requests_one_refresh() {
    let h = harness(settings()).await;
    let k = key(DataType::Ec2SecurityGroups, "ap-southeast-2");
    for _ in 0..3 {
        let r = h
            .get("/ec2/security-groups", &[("region", "ap-southeast-2")])
            .await;
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(header(&r, "retry-after"), "30");
        let body = json(&r);
        assert_eq!(body["error"], "NOT_CACHED");
        assert_eq!(body["details"]["cacheKey"], k.to_string());
        assert_eq!(body["details"]["refreshRequested"], true);
    }
    assert_eq!(
        h.trigger.requests(),
        vec![(k, RefreshReason::Miss)],
        "a burst asks once"
    );
    assert!(
        h.metrics
            .take()
            .iter()
            .all(|m| m.result == ReadResult::Miss)
    );
}

#[tokio::test]
async fn a_target_whose_refreshes_all_failed_reports_the_last_failure() {
    let h = harness(settings()).await;
    let k = key(DataType::DrsQuotas, "us-west-2");
    let at = Timestamp::now();
    h.writer
        .record_attempt(
            &k,
            &RefreshAttempt {
                at,
                failure: Some(RefreshFailure {
                    kind: RefreshErrorKind::AccessDenied,
                    message: "not authorized".into(),
                }),
            },
        )
        .await
        .unwrap();
    let r = h.get("/drs/quotas", &[("region", "us-west-2")]).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = json(&r);
    assert_eq!(body["error"], "NOT_CACHED");
    assert_eq!(body["details"]["lastAttempt"]["errorKind"], "AccessDenied");
    assert_eq!(body["details"]["lastAttempt"]["at"], at.unix_secs());
    // The upstream's own words stay in the table and the log.
    assert_eq!(
        body["details"]["lastAttempt"]["message"],
        RefreshErrorKind::AccessDenied.description()
    );
}

#[tokio::test]
async fn a_target_the_deployment_does_not_keep_is_404_not_configured_and_asks_for_nothing() {
    let kept = Kept::new(
        &[AccountId::parse(ACCOUNT).unwrap()],
        &[Region::parse("us-east-1").unwrap()],
        &[DataType::Ec2Subnets, DataType::DrsQuotas],
    );
    let h = harness(ReaderSettings {
        kept: Some(kept),
        ..settings()
    })
    .await;
    let cases = [
        (
            "/drs/quotas",
            vec![("region", "eu-west-1")],
            "region",
            "eu-west-1",
        ),
        (
            "/drs/quotas",
            vec![("region", "us-east-1"), ("accountId", "444455556666")],
            "accountId",
            "444455556666",
        ),
        (
            "/drs/accounts",
            vec![("region", "us-east-1")],
            "dataType",
            "drs-accounts",
        ),
    ];
    for (path, query, field, value) in cases {
        let r = h.get(path, &query).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path} {query:?}");
        let body = json(&r);
        assert_eq!(body["error"], "NOT_CONFIGURED");
        assert_eq!(body["details"]["field"], field);
        assert_eq!(body["details"]["value"], value);
    }
    let r = h
        .router
        .handle(&post("/cache/invalidate", r#"{"region": "eu-west-1"}"#))
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(json(&r)["details"]["field"], "region");
    assert!(h.trigger.requests().is_empty());
    assert!(h.trigger.invalidations().is_empty());
    assert_eq!(h.reads.gets(), 0, "the store is not read either");
    // A kept target is read as ever.
    let r = h.get("/drs/quotas", &[("region", "us-east-1")]).await;
    assert_eq!(json(&r)["error"], "NOT_CACHED");
}

#[tokio::test]
async fn a_refused_refresh_request_is_not_asked_again_within_the_interval() {
    let h = harness(settings()).await;
    h.trigger.refuse_requests();
    let k = key(DataType::Ec2SecurityGroups, "ap-southeast-2");
    for _ in 0..3 {
        let r = h
            .get("/ec2/security-groups", &[("region", "ap-southeast-2")])
            .await;
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = json(&r);
        assert_eq!(body["error"], "NOT_CACHED");
        assert_eq!(body["details"]["refreshRequested"], false);
    }
    assert_eq!(h.trigger.requests(), vec![(k, RefreshReason::Miss)]);
}

#[tokio::test]
async fn a_store_outage_never_serves_a_memory_copy_past_its_stale_window() {
    let h = harness(ReaderSettings {
        memory_ttl: Duration::ZERO,
        stale_recheck: Duration::ZERO,
        store_timeout: Duration::from_millis(300),
        ..settings()
    })
    .await;
    cache_expired_accounts(&h).await;
    // Read once: too old to serve, but now held in memory.
    let r = h.get("/drs/accounts", &[("region", "us-east-1")]).await;
    assert_eq!(json(&r)["error"], "NOT_CACHED");
    h.outage(Mode::Refuse);
    let r = h.get("/drs/accounts", &[("region", "us-east-1")]).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = json(&r);
    assert_eq!(body["error"], "CACHE_UNAVAILABLE");
    // A refused connection is retried by the SDK until the store timeout.
    let cause = body["details"]["cause"].as_str().unwrap();
    assert!(["timeout", "error"].contains(&cause), "{cause}");
}

#[tokio::test]
async fn drs_not_initialized_is_reported_as_such() {
    let h = harness(settings()).await;
    let k = key(DataType::DrsSourceServers, "sa-east-1");
    let e = CacheEntry::drs_not_initialized(
        k,
        Version::at_fetch_start(&SystemClock),
        Timestamp::now(),
        policy(120, 86_400),
    );
    h.writer.put(&e).await.unwrap();
    let r = h
        .get("/drs/source-servers", &[("region", "sa-east-1")])
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let body = json(&r);
    assert_eq!(body["error"], "DRS_NOT_INITIALIZED");
    assert_eq!(
        body["details"],
        json!({"accountId": ACCOUNT, "region": "sa-east-1"})
    );
}

#[tokio::test]
async fn concurrent_misses_read_the_store_once() {
    let h = harness(settings()).await;
    cache_subnets(&h).await;
    let reads = (0..32).map(|_| h.get(SUBNETS, &[("region", "us-east-1")]));
    let responses = futures::future::join_all(reads).await;
    assert!(responses.iter().all(|r| r.status() == StatusCode::OK));
    assert_eq!(h.reads.gets(), 1);
    let from_store = responses
        .iter()
        .filter(|r| header(r, "x-cache") == "store")
        .count();
    assert_eq!(from_store, 1);
}

#[tokio::test]
async fn filters_apply_to_the_cached_region_snapshot() {
    let h = harness(settings()).await;
    cache_subnets(&h).await;
    let r = h
        .get(
            SUBNETS,
            &[("region", "us-east-1"), ("vpcId", "vpc-0000000a")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body = json(&r);
    assert_eq!(body["count"], 2);
    let r = h
        .get(
            SUBNETS,
            &[
                ("region", "us-east-1"),
                ("vpcId", "vpc-0000000a"),
                ("availabilityZone", "us-east-1b"),
            ],
        )
        .await;
    let body = json(&r);
    assert_eq!(body["count"], 1);
    assert_eq!(body["subnets"][0]["subnetId"], "subnet-0000000000000002b");
    assert_ne!(header(&r, "etag"), "", "a filtered body has its own tag");
    assert_eq!(
        h.reads.gets(),
        1,
        "every filter is served from the one snapshot"
    );

    let types = json!({"instanceTypes": [
        {"instanceType": "m5.large", "vcpus": 2, "memoryMiB": 8192, "instanceFamily": "m5", "networkPerformance": "Up to 10 Gigabit"},
        {"instanceType": "c6gn.xlarge", "vcpus": 4, "memoryMiB": 8192, "instanceFamily": "c6gn", "networkPerformance": "Up to 25 Gigabit"}],
        "count": 2});
    let global = drs_cache::domain::CacheKey::parse("ec2-instance-types#us-east-1#global").unwrap();
    h.cache(&global, types.to_string(), 0, policy(86_400, 86_400))
        .await;
    let r = h
        .get(
            "/ec2/instance-types",
            &[("region", "us-east-1"), ("instanceFamily", "c6gn")],
        )
        .await;
    let body = json(&r);
    assert_eq!(body["count"], 1);
    assert_eq!(body["instanceTypes"][0]["instanceType"], "c6gn.xlarge");
}

#[tokio::test]
async fn a_chunked_multi_megabyte_body_is_served_whole() {
    let h = harness(settings()).await;
    let k = key(DataType::DrsSourceServers, "us-east-2");
    let body = incompressible_body(2_400_000, 1);
    let entry = h.cache(&k, body.clone(), 0, policy(120, 86_400)).await;
    let r = h
        .get("/drs/source-servers", &[("region", "us-east-2")])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.body().len(), body.len());
    assert_eq!(r.body(), &body);
    assert_eq!(header(&r, "etag"), format!("\"{}\"", entry.meta.etag));
    let again = h
        .get("/drs/source-servers", &[("region", "us-east-2")])
        .await;
    assert_eq!(header(&again, "x-cache"), "memory");
    assert_eq!(again.body(), &body);
}

#[tokio::test]
async fn every_bad_request_is_a_4xx_naming_the_field() {
    let h = harness(ReaderSettings {
        default_account: None,
        ..settings()
    })
    .await;
    // (path, query, status, error code, field named in details)
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], u16, &'a str, &'a str);
    let cases: &[Case] = &[
        (SUBNETS, &[], 400, "MISSING_PARAMETER", "region"),
        (
            SUBNETS,
            &[("region", "us-east-1")],
            400,
            "MISSING_PARAMETER",
            "accountId",
        ),
        (
            SUBNETS,
            &[("region", "moon-base-1x"), ("accountId", ACCOUNT)],
            400,
            "INVALID_PARAMETER",
            "region",
        ),
        (
            SUBNETS,
            &[("region", "us-east-1"), ("accountId", "1234")],
            400,
            "INVALID_PARAMETER",
            "accountId",
        ),
        (
            SUBNETS,
            &[("region", "us-east-1"), ("accountId", "12345678901a")],
            400,
            "INVALID_PARAMETER",
            "accountId",
        ),
        (
            SUBNETS,
            &[("region", "us-east-1#123456789012"), ("accountId", ACCOUNT)],
            400,
            "INVALID_PARAMETER",
            "region",
        ),
        (
            SUBNETS,
            &[
                ("region", "us-east-1"),
                ("accountId", ACCOUNT),
                ("vpcId", "vpc-1"),
            ],
            400,
            "INVALID_PARAMETER",
            "vpcId",
        ),
        (
            SUBNETS,
            &[
                ("region", "us-east-1"),
                ("accountId", ACCOUNT),
                ("availabilityZone", "eu-west-1a"),
            ],
            400,
            "INVALID_PARAMETER",
            "availabilityZone",
        ),
        (
            SUBNETS,
            &[
                ("region", "us-east-1"),
                ("accountId", ACCOUNT),
                ("accountId", ACCOUNT),
            ],
            400,
            "INVALID_PARAMETER",
            "accountId",
        ),
        (
            SUBNETS,
            &[
                ("region", "us-east-1"),
                ("accountId", ACCOUNT),
                ("instanceFamily", "m5"),
            ],
            400,
            "INVALID_PARAMETER",
            "instanceFamily",
        ),
        (
            "/ec2/instance-types",
            &[("region", "us-east-1"), ("instanceFamily", "M5!")],
            400,
            "INVALID_PARAMETER",
            "instanceFamily",
        ),
        (
            "/ec2/security-groups",
            &[
                ("region", "us-east-1"),
                ("accountId", ACCOUNT),
                ("limit", "0"),
            ],
            400,
            "INVALID_PARAMETER",
            "limit",
        ),
    ];
    for (path, query, status, code, field) in cases {
        let r = h.get(path, query).await;
        assert_eq!(r.status().as_u16(), *status, "{path} {query:?}");
        let body = json(&r);
        assert_eq!(body["error"], *code, "{path} {query:?}");
        assert_eq!(body["details"]["field"], *field, "{path} {query:?}");
        assert!(body["message"].as_str().unwrap().contains(field), "{body}");
    }
    let r = h.get("/drs/unknown", &[("region", "us-east-1")]).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(json(&r)["error"], "NOT_FOUND");
    let mut post = ApiRequest::get(SUBNETS, &[("region", "us-east-1")]);
    post.method = http::Method::POST;
    let r = h.router.handle(&post).await;
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(header(&r, "allow"), "GET");
    assert_eq!(h.reads.gets(), 0, "bad requests never reach the store");
}

#[tokio::test]
async fn a_corrupt_cached_body_is_503_and_stays_untouched() {
    let h = harness(settings()).await;
    let k = key(DataType::Ec2Subnets, "us-east-1");
    let entry = h.cache(&k, &b"not json"[..], 0, policy(3600, 86_400)).await;
    let r = h
        .get(
            SUBNETS,
            &[("region", "us-east-1"), ("vpcId", "vpc-0000000a")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(json(&r)["error"], "CACHE_UNAVAILABLE");
    assert_eq!(h.writer.get(&k).await.unwrap(), Some(entry));
    assert_eq!(
        h.trigger.requests(),
        vec![(k, RefreshReason::Miss)],
        "a new version will replace it"
    );
}

#[tokio::test]
async fn an_unreadable_item_is_503_and_asks_for_a_new_version() {
    use aws_sdk_dynamodb::types::AttributeValue::{N, S};
    let h = harness(settings()).await;
    let k = key(DataType::Ec2Subnets, "us-east-1");
    let now = Timestamp::now().unix_secs().to_string();
    h.admin
        .put_item()
        .table_name(&h.table)
        .item("cacheKey", S(k.to_string()))
        .item("dataType", S("ec2-subnets".into()))
        .item("createdAt", N(now.clone()))
        .item("expiresAt", N(now))
        .item("encoding", S("rot13".into()))
        .send()
        .await
        .unwrap();
    let r = h.get(SUBNETS, &[("region", "us-east-1")]).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(json(&r)["error"], "CACHE_UNAVAILABLE");
    assert_eq!(h.trigger.requests(), vec![(k, RefreshReason::Miss)]);
}

fn post(path: &str, body: &'static str) -> ApiRequest {
    ApiRequest {
        method: http::Method::POST,
        body: Bytes::from_static(body.as_bytes()),
        ..ApiRequest::get(path, &[])
    }
}

#[tokio::test]
async fn an_invalidation_is_accepted_and_passed_to_the_refresh_side() {
    let h = harness(settings()).await;
    let response = h
        .router
        .handle(&post(
            "/cache/invalidate",
            r#"{"dataType":"drs-quotas","region":"us-east-1"}"#,
        ))
        .await;
    assert_eq!(response.status(), 202);
    let body = json(&response);
    assert_eq!(body["status"], "accepted");
    assert_eq!(body["invalidation"]["dataType"], "drs-quotas");
    assert!(body["invalidation"]["accountId"].is_null());
    let everything = h.router.handle(&post("/cache/invalidate/", "")).await;
    assert_eq!(everything.status(), 202);
    assert_eq!(
        h.trigger.invalidations(),
        [
            Invalidation {
                data_type: Some(DataType::DrsQuotas),
                region: Some(Region::parse("us-east-1").unwrap()),
                account: None,
            },
            Invalidation::default(),
        ]
    );
}

#[tokio::test]
async fn a_bad_invalidation_is_a_4xx_naming_the_field_and_asks_for_nothing() {
    let h = harness(settings()).await;
    for (body, field) in [
        (r#"{"dataType":"drs-quota"}"#, "dataType"),
        (r#"{"region":"Mars"}"#, "region"),
        (r#"{"accountId":"1"}"#, "accountId"),
        (r#"{"accountId":123456789012}"#, "accountId"),
        (r#"{"all":"yes"}"#, "all"),
        ("dataType=drs-quotas", "body"),
    ] {
        let response = h.router.handle(&post("/cache/invalidate", body)).await;
        assert_eq!(response.status(), 400, "{body}");
        let error = json(&response);
        assert_eq!(error["error"], "INVALID_PARAMETER", "{body}");
        assert_eq!(error["details"]["field"], field, "{body}");
    }
    let get = h.get("/cache/invalidate", &[]).await;
    assert_eq!(get.status(), 405);
    assert_eq!(header(&get, "allow"), "POST");
    let post_read = h
        .router
        .handle(&post("/drs/quotas", r#"{"region":"us-east-1"}"#))
        .await;
    assert_eq!(post_read.status(), 405);
    assert_eq!(header(&post_read, "allow"), "GET");
    assert!(h.trigger.invalidations().is_empty());
}
