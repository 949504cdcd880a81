//! No request, however malformed, makes the reader panic or answer outside its
//! documented set of statuses; every error has the documented JSON shape.

use std::sync::Arc;

use drs_cache::{
    adapters::{embedded::EmbeddedStore, local_queue::LocalRefreshQueue},
    app::reader_router,
    read::{ApiRequest, ReaderSettings, metrics::Recorded},
};
use http::Method;
use proptest::prelude::*;

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/drs/source-servers".to_owned()),
        Just("/drs/quotas".to_owned()),
        Just("/ec2/subnets/".to_owned()),
        Just("/ec2/instance-types".to_owned()),
        Just("/health".to_owned()),
        Just("/cache/invalidate".to_owned()),
        "/[a-z0-9/%#?.-]{0,30}",
        "\\PC{0,40}",
    ]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        Just(br#"{"dataType":"drs-quotas","region":"us-east-1"}"#.to_vec()),
        "\\{\"(dataType|region|accountId|x)\":\"[a-z0-9-]{0,16}\"\\}".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..64),
    ]
}

fn param() -> impl Strategy<Value = (String, String)> {
    let name = prop_oneof![
        Just("region".to_owned()),
        Just("accountId".to_owned()),
        Just("vpcId".to_owned()),
        Just("availabilityZone".to_owned()),
        Just("instanceFamily".to_owned()),
        "\\PC{0,12}",
    ];
    let value = prop_oneof![
        Just("us-east-1".to_owned()),
        Just("123456789012".to_owned()),
        Just("vpc-0a1b2c3d".to_owned()),
        Just("us-east-1a".to_owned()),
        "[a-z0-9#-]{0,20}",
        "\\PC{0,80}",
    ];
    (name, value)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]
    #[test]
    fn any_request_gets_a_documented_answer(
        path in path(),
        query in prop::collection::vec(param(), 0..6),
        post in any::<bool>(),
        if_none_match in prop::option::of("\\PC{0,40}"),
        accept_encoding in prop::option::of("\\PC{0,40}"),
        body in body(),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let response = rt.block_on(async {
            let store = Arc::new(EmbeddedStore::open(dir.path().join("c.redb")).unwrap());
            let (queue, _rx) = LocalRefreshQueue::new(16);
            let router = reader_router(store, Arc::new(queue), ReaderSettings::default(), Arc::new(Recorded::default()), None);
            let request = ApiRequest {
                method: if post { Method::POST } else { Method::GET },
                path,
                query,
                if_none_match,
                accept_encoding,
                body: body.into(),
            };
            router.handle(&request).await
        });
        let status = response.status().as_u16();
        prop_assert!([200, 202, 400, 404, 405, 503].contains(&status), "status {}", status);
        let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        if status >= 400 {
            prop_assert!(body["error"].is_string());
            prop_assert!(body["message"].is_string());
            prop_assert!(body["details"].is_object());
        }
    }
}
