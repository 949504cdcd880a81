//! Compressed answers, paged lists, and bodies of any size through Lambda.

use std::io::Read;

use crate::support::reader::{Harness, harness, header, json, key, policy, settings};
use drs_cache::{
    domain::DataType,
    read::{
        ApiRequest, ApiResponse,
        lambda::{MAX_RESPONSE_BYTES, handle},
        metrics::ReadResult,
    },
};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};

const REGION: &str = "us-east-1";
const SUBNETS: &str = "/ec2/subnets";

/// `n` subnets, the odd ones in one VPC, each padded to about `pad` bytes.
fn subnets(n: usize, pad: usize) -> String {
    let records: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "subnetId": format!("subnet-{i:08x}"),
                "vpcId": if i % 2 == 1 { "vpc-0000000a" } else { "vpc-0000000b" },
                "availabilityZone": "us-east-1a",
                "tags": {"Name": format!("app-{i}-{}", "x".repeat(pad))},
            })
        })
        .collect();
    json!({"subnets": records, "count": n}).to_string()
}

async fn cache_subnets(h: &Harness, body: &str) {
    let k = key(DataType::Ec2Subnets, REGION);
    h.cache(&k, body.to_owned(), 0, policy(3600, 86_400)).await;
}

fn read(query: &[(&str, &str)], accept: Option<&str>) -> ApiRequest {
    let mut query = query.to_vec();
    query.push(("region", REGION));
    ApiRequest {
        accept_encoding: accept.map(str::to_owned),
        ..ApiRequest::get(SUBNETS, &query)
    }
}

fn decode(coding: &str, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match coding {
        "gzip" => {
            flate2::read::GzDecoder::new(bytes)
                .read_to_end(&mut out)
                .unwrap();
        }
        "zstd" => out = zstd::decode_all(bytes).unwrap(),
        "br" => {
            brotli::Decompressor::new(bytes, 4096)
                .read_to_end(&mut out)
                .unwrap();
        }
        other => panic!("coding {other}"),
    }
    out
}

#[tokio::test]
async fn each_accepted_coding_is_sent_compressed_once_per_version_with_its_own_etag() {
    let h = harness(settings()).await;
    let body = subnets(200, 20);
    cache_subnets(&h, &body).await;
    let plain = h.router.handle(&read(&[], None)).await;
    assert_eq!(plain.status(), 200);
    assert_eq!(plain.body().as_ref(), body.as_bytes());
    assert!(plain.headers().get("content-encoding").is_none());
    assert_eq!(header(&plain, "vary"), "accept-encoding");
    let identity_tag = header(&plain, "etag").to_owned();

    for (accept, coding) in [
        ("gzip", "gzip"),
        ("zstd", "zstd"),
        ("br", "br"),
        ("gzip, deflate, br, zstd", "br"),
        ("br;q=0.2, gzip;q=0.8", "gzip"),
    ] {
        let answer = h.router.handle(&read(&[], Some(accept))).await;
        assert_eq!(answer.status(), 200, "{accept}");
        assert_eq!(header(&answer, "content-encoding"), coding, "{accept}");
        assert_eq!(header(&answer, "vary"), "accept-encoding");
        assert_eq!(header(&answer, "content-type"), "application/json");
        let tag = header(&answer, "etag").to_owned();
        assert_ne!(tag, identity_tag, "{accept}: a tag per representation");
        assert!(answer.body().len() < body.len() / 4, "{accept}");
        assert_eq!(decode(coding, answer.body()), body.as_bytes(), "{accept}");
        // The variant was made once: the next answer sends the same bytes.
        let again = h.router.handle(&read(&[], Some(accept))).await;
        assert_eq!(again.body().as_ptr(), answer.body().as_ptr(), "{accept}");
        // Revalidation with the variant's tag, or the identity's (any
        // coding's), is a 304.
        for held in [&tag, &identity_tag] {
            let conditional = ApiRequest {
                if_none_match: Some(held.clone()),
                ..read(&[], Some(accept))
            };
            let not_modified = h.router.handle(&conditional).await;
            assert_eq!(not_modified.status(), 304, "{accept} {held}");
            assert!(not_modified.body().is_empty());
        }
    }
    // A tag held from one coding revalidates a request for another.
    let gzip_tag = header(&h.router.handle(&read(&[], Some("gzip"))).await, "etag").to_owned();
    let switched = ApiRequest {
        if_none_match: Some(gzip_tag),
        ..read(&[], Some("br"))
    };
    assert_eq!(h.router.handle(&switched).await.status(), 304);
    // A filtered view has variants of its own.
    let filtered = h
        .router
        .handle(&read(&[("vpcId", "vpc-0000000a")], Some("zstd")))
        .await;
    assert_eq!(header(&filtered, "content-encoding"), "zstd");
    let doc: Value = serde_json::from_slice(&decode("zstd", filtered.body())).unwrap();
    assert_eq!(doc["count"], 100);
    // A short body is sent as it is, whatever is accepted.
    let k = key(DataType::DrsQuotas, REGION);
    h.cache(&k, r#"{"replicatingServers":1}"#, 0, policy(300, 86_400))
        .await;
    let short = h
        .get_with("/drs/quotas", &[("region", REGION)], Some("br"))
        .await;
    assert_eq!(short.status(), 200);
    assert!(short.headers().get("content-encoding").is_none());
}

/// Every record of a list, read `limit` at a time by following `nextToken`.
async fn pages(h: &Harness, limit: &str, filter: &[(&str, &str)]) -> (Vec<String>, usize) {
    let mut ids = Vec::new();
    let mut token: Option<String> = None;
    let mut count = 0;
    loop {
        let mut query = vec![("limit", limit)];
        query.extend_from_slice(filter);
        if let Some(t) = &token {
            query.push(("nextToken", t.as_str()));
        }
        let answer = h.router.handle(&read(&query, None)).await;
        assert_eq!(answer.status(), 200, "{:?}", answer.body());
        let doc = json(&answer);
        let page = doc["subnets"].as_array().unwrap();
        assert_eq!(doc["count"], page.len());
        ids.extend(
            page.iter()
                .map(|s| s["subnetId"].as_str().unwrap().to_owned()),
        );
        count += 1;
        match doc.get("nextToken") {
            Some(next) => token = Some(next.as_str().unwrap().to_owned()),
            None => return (ids, count),
        }
    }
}

#[tokio::test]
async fn a_list_is_read_a_page_at_a_time_within_one_version() {
    let h = harness(settings()).await;
    cache_subnets(&h, &subnets(25, 0)).await;
    let whole = json(&h.router.handle(&read(&[], None)).await);
    let all: Vec<String> = whole["subnets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["subnetId"].as_str().unwrap().to_owned())
        .collect();
    let (paged, count) = pages(&h, "10", &[]).await;
    assert_eq!((paged.as_slice(), count), (all.as_slice(), 3));
    // Filters and pages combine: the pages of the matching records.
    let (odd, count) = pages(&h, "5", &[("vpcId", "vpc-0000000a")]).await;
    assert_eq!(count, 3);
    assert_eq!(odd.len(), 12);
    assert!(
        odd.iter()
            .all(|id| all.iter().position(|a| a == id).unwrap() % 2 == 1)
    );

    // A token carries the filters it was issued for: given with others (or
    // none), it is refused rather than counted into another list; the same
    // filters in another order are the same filters.
    let vpc = ("vpcId", "vpc-0000000a");
    let filtered = json(&h.router.handle(&read(&[("limit", "5"), vpc], None)).await);
    let token = filtered["nextToken"].as_str().unwrap().to_owned();
    for other in [
        vec![],
        vec![("vpcId", "vpc-0000000b")],
        vec![vpc, ("vpcId", "vpc-0000000b")],
    ] {
        let mut query = vec![("limit", "5"), ("nextToken", token.as_str())];
        query.extend(other.iter().copied());
        let refused = h.router.handle(&read(&query, None)).await;
        assert_eq!(refused.status(), 400, "{other:?}");
        let body = json(&refused);
        assert_eq!(body["details"]["field"], "nextToken");
        assert!(
            body["message"].as_str().unwrap().contains("other filters"),
            "{body}"
        );
    }
    let two = [("vpcId", "vpc-0000000b"), vpc];
    let first = json(
        &h.router
            .handle(&read(&[("limit", "5"), two[0], two[1]], None))
            .await,
    );
    let next = first["nextToken"].as_str().unwrap().to_owned();
    let reordered = h
        .router
        .handle(&read(
            &[("limit", "5"), two[1], ("nextToken", &next), two[0]],
            None,
        ))
        .await;
    assert_eq!(reordered.status(), 200, "{:?}", reordered.body());

    // A token of the version read before a refresh is refused, naming it.
    let first = json(&h.router.handle(&read(&[("limit", "10")], None)).await);
    let token = first["nextToken"].as_str().unwrap().to_owned();
    cache_subnets(&h, &subnets(30, 0)).await;
    // Past the memory tier's copy: the store holds the new version.
    let fresh = drs_cache::read::ReaderSettings {
        memory_max_bytes: 0,
        ..settings()
    };
    let h2 = Harness {
        router: drs_cache::read::Router::new(
            std::sync::Arc::new(drs_cache::read::ReadService::new(
                h.reads.clone(),
                h.trigger.clone(),
                std::sync::Arc::new(drs_cache::domain::SystemClock),
                fresh,
            )),
            h.metrics.clone(),
        ),
        ..h
    };
    let stale = h2
        .router
        .handle(&read(&[("limit", "10"), ("nextToken", &token)], None))
        .await;
    assert_eq!(stale.status(), 400);
    assert_eq!(json(&stale)["details"]["field"], "nextToken");

    // Bad paging input names its parameter; a list-less type takes none.
    for (query, field) in [
        (vec![("limit", "0")], "limit"),
        (vec![("limit", "10001")], "limit"),
        (vec![("limit", "+5")], "limit"),
        (vec![("limit", "007")], "limit"),
        (vec![("nextToken", "abc")], "nextToken"),
    ] {
        let answer = h2.router.handle(&read(&query, None)).await;
        assert_eq!(answer.status(), 400, "{query:?}");
        assert_eq!(json(&answer)["details"]["field"], field);
    }
    let quotas = h2
        .get_with("/drs/quotas", &[("region", REGION), ("limit", "10")], None)
        .await;
    assert_eq!(quotas.status(), 400);
    assert_eq!(json(&quotas)["details"]["field"], "limit");
}

#[tokio::test]
async fn a_token_of_a_newer_version_than_this_containers_copy_is_read_from_the_store() {
    let h = harness(settings()).await;
    cache_subnets(&h, &subnets(25, 0)).await;
    // This container holds the first version in memory.
    let held = h.router.handle(&read(&[("limit", "10")], None)).await;
    assert_eq!(json(&held)["count"], 10);
    // A refresh writes a second; another container, with nothing in memory,
    // serves its first page.
    cache_subnets(&h, &subnets(30, 0)).await;
    let other = drs_cache::read::Router::new(
        std::sync::Arc::new(drs_cache::read::ReadService::new(
            h.reads.clone(),
            h.trigger.clone(),
            std::sync::Arc::new(drs_cache::domain::SystemClock),
            settings(),
        )),
        h.metrics.clone(),
    );
    let first = json(&other.handle(&read(&[("limit", "10")], None)).await);
    let token = first["nextToken"].as_str().unwrap().to_owned();
    // Its token reaches this container: the store is read, not the token
    // refused, and the page is of the second version.
    let gets = h.reads.gets();
    let next = h
        .router
        .handle(&read(&[("limit", "10"), ("nextToken", &token)], None))
        .await;
    assert_eq!(next.status(), 200, "{:?}", json(&next));
    assert_eq!(h.reads.gets(), gets + 1, "one store read");
    assert_eq!(json(&next)["count"], 10);
    assert_eq!(header(&next, "x-cache"), "store");
}

/// An HTTP API event for `GET /ec2/subnets` with `query` and `accept`.
fn http_api_event(
    query: &str,
    accept: Option<&str>,
) -> LambdaEvent<Box<serde_json::value::RawValue>> {
    let mut headers = json!({"host": "api.example.com"});
    if let Some(accept) = accept {
        headers["accept-encoding"] = accept.into();
    }
    let event = json!({
        "version": "2.0",
        "routeKey": "GET /ec2/subnets",
        "rawPath": "/ec2/subnets",
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "api.example.com",
            "http": {"method": "GET", "path": "/ec2/subnets", "protocol": "HTTP/1.1",
                     "sourceIp": "10.0.0.1", "userAgent": "test"},
            "requestId": "r",
            "routeKey": "GET /ec2/subnets",
            "stage": "$default",
            "time": "14/Nov/2023:22:13:20 +0000",
            "timeEpoch": 1700000000000u64
        },
        "isBase64Encoded": false
    });
    LambdaEvent::new(
        serde_json::value::RawValue::from_string(event.to_string()).unwrap(),
        Context::default(),
    )
}

async fn invoke(h: &Harness, query: &str, accept: Option<&str>) -> Value {
    let response = handle(&h.router, http_api_event(query, accept))
        .await
        .unwrap();
    serde_json::to_value(&response).unwrap()
}

#[tokio::test]
async fn through_lambda_a_body_over_six_mb_is_413_unless_asked_compressed_or_a_page_at_a_time() {
    let h = harness(settings()).await;
    // 24,000 subnets of about 300 bytes: over 7 MB of JSON.
    let body = subnets(24_000, 200);
    assert!(body.len() > MAX_RESPONSE_BYTES, "{}", body.len());
    cache_subnets(&h, &body).await;
    let query = format!("region={REGION}");

    let refused = invoke(&h, &query, None).await;
    assert_eq!(refused["statusCode"], 413, "{}", refused["body"]);
    let error: Value = serde_json::from_str(refused["body"].as_str().unwrap()).unwrap();
    assert_eq!(error["error"], "RESPONSE_TOO_LARGE");
    assert_eq!(error["details"]["limit"], MAX_RESPONSE_BYTES);
    assert!(error["details"]["bytes"].as_u64().unwrap() > MAX_RESPONSE_BYTES as u64);
    // The read served an error: it is not counted as a hit.
    h.metrics.take();
    let _ = invoke(&h, &query, None).await;
    let counted: Vec<ReadResult> = h.metrics.take().iter().map(|o| o.result).collect();
    assert_eq!(counted, [ReadResult::Other]);

    // Compressed, it fits: base64 in the proxy response, as Lambda requires.
    let compressed = invoke(&h, &query, Some("gzip")).await;
    assert_eq!(compressed["statusCode"], 200);
    assert_eq!(compressed["isBase64Encoded"], true);
    assert_eq!(compressed["headers"]["content-encoding"], "gzip");
    let bytes = base64_decode(compressed["body"].as_str().unwrap());
    assert_eq!(decode("gzip", &bytes), body.as_bytes());
    assert!(serde_json::to_vec(&compressed).unwrap().len() < MAX_RESPONSE_BYTES);

    // A page at a time, it fits as text.
    let page = invoke(&h, &format!("{query}&limit=5000"), None).await;
    assert_eq!(page["statusCode"], 200);
    assert_eq!(page["isBase64Encoded"], false);
    let doc: Value = serde_json::from_str(page["body"].as_str().unwrap()).unwrap();
    assert_eq!(doc["count"], 5000);
    assert!(doc["nextToken"].is_string());

    // Invoked directly, the whole body is a typed error naming paging, never
    // Lambda's own; a page is answered.
    let direct = |params: Value| {
        let event = json!({"operation": "ec2-subnets", "queryParams": params});
        LambdaEvent::new(
            serde_json::value::RawValue::from_string(event.to_string()).unwrap(),
            Context::default(),
        )
    };
    h.metrics.take();
    let refused = handle(&h.router, direct(json!({"region": REGION})))
        .await
        .unwrap_err();
    assert_eq!(
        refused.error_type, "RESPONSE_TOO_LARGE",
        "{}",
        refused.message
    );
    assert!(refused.message.contains("nextToken"), "{}", refused.message);
    let counted: Vec<ReadResult> = h.metrics.take().iter().map(|o| o.result).collect();
    assert_eq!(
        counted,
        [ReadResult::Other],
        "a refused direct read is no hit"
    );
    let paged = handle(
        &h.router,
        direct(json!({"region": REGION, "limit": "5000"})),
    )
    .await
    .unwrap();
    let paged = serde_json::to_value(&paged).unwrap();
    assert_eq!(paged["data"]["count"], 5000);
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

impl Harness {
    async fn get_with(
        &self,
        path: &str,
        query: &[(&str, &str)],
        accept: Option<&str>,
    ) -> ApiResponse {
        let request = ApiRequest {
            accept_encoding: accept.map(str::to_owned),
            ..ApiRequest::get(path, query)
        };
        self.router.handle(&request).await
    }
}
