//! The change feed on moto's EventBridge: events published through
//! `EventBridgeFeed` reach the rules that subscribe to them, each once, as
//! ordinary events of source `drs-cache`. Every test has a bus of its own, and
//! SQS queues as the rules' targets show what each rule took (moto delivers
//! within PutEvents, so nothing arrives later).

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use crate::support::{init_test_log, moto};
use aws_sdk_eventbridge::{
    Client,
    config::{
        BehaviorVersion, ConfigBag, Credentials, Intercept, Region, RuntimeComponents,
        interceptors::BeforeTransmitInterceptorContextRef,
    },
};
use drs_cache::{
    adapters::eventbridge::{EventBridgeFeed, MAX_CALL_BYTES},
    domain::{
        CacheKey,
        changes::{ChangeEvent, SOURCE},
    },
    ports::{BoxError, ChangeFeed, NoChangeFeed, PublishOutcome},
};
use serde_json::{Value, json};

const REGION: &str = "us-east-1";
const DETAIL_TYPES: [&str; 3] = ["Source servers changed", "Jobs changed", "Subnets changed"];

/// Counts the PutEvents requests a client sends, retries included.
#[derive(Debug)]
struct CountPutEvents(Arc<AtomicUsize>);

impl Intercept for CountPutEvents {
    fn name(&self) -> &'static str {
        "CountPutEvents"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let is_put = context
            .request()
            .headers()
            .get("x-amz-target")
            .is_some_and(|target| target.ends_with(".PutEvents"));
        if is_put {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

/// A feed publishing to `bus` on moto, and the count of its PutEvents calls.
fn feed(bus: &str) -> (EventBridgeFeed, Arc<AtomicUsize>) {
    init_test_log();
    let calls = Arc::new(AtomicUsize::new(0));
    let config = aws_sdk_eventbridge::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(drs_cache::adapters::aws::https_client())
        .endpoint_url(moto::endpoint())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
        .interceptor(CountPutEvents(calls.clone()))
        .build();
    (EventBridgeFeed::new(Client::from_conf(config), bus), calls)
}

/// A new custom bus, named for this test.
fn new_bus() -> String {
    moto::create_event_bus(moto::ACCOUNT, REGION, "changes")
}

/// A rule on `bus` with `pattern`, and the queue it delivers to.
fn subscribe(bus: &str, pattern: &Value) -> moto::Queue {
    moto::subscribe(REGION, bus, &moto::unique_name("subscriber"), pattern)
}

/// Event `n`: one of the three detail-types in turn, a key of its own, and a
/// detail that names both and carries `padding` bytes more.
fn event(n: usize, padding: usize) -> ChangeEvent {
    let key = CacheKey::parse(&format!(
        "drs-source-servers#us-east-1#{:012}",
        100_000_000_000 + n
    ))
    .unwrap();
    ChangeEvent {
        detail_type: DETAIL_TYPES[n % DETAIL_TYPES.len()],
        detail: json!({
            "cacheKey": key.to_string(),
            "n": n,
            "added": [format!("s-{n:017x}")],
            "removed": [],
            "padding": "x".repeat(padding),
        }),
        key,
    }
}

fn events(count: usize) -> Vec<ChangeEvent> {
    (0..count).map(|n| event(n, 0)).collect()
}

/// The delivered events by their `n`, each checked to have arrived once.
fn by_number(delivered: Vec<Value>) -> BTreeMap<u64, Value> {
    let mut seen = BTreeMap::new();
    for event in delivered {
        let n = event["detail"]["n"].as_u64().expect("detail.n");
        if let Some(earlier) = seen.insert(n, event) {
            panic!("event {n} arrived twice: {earlier}");
        }
    }
    seen
}

fn outcome(published: usize, failed: usize) -> PublishOutcome {
    PublishOutcome { published, failed }
}

#[tokio::test]
async fn every_published_event_reaches_a_source_rule_once_with_its_type_and_detail() {
    let bus = new_bus();
    let all = subscribe(&bus, &json!({"source": [SOURCE]}));
    let (feed, calls) = feed(&bus);
    let sent = events(25);

    assert_eq!(feed.publish(&sent).await, outcome(25, 0));
    // Ten entries a call at most.
    assert_eq!(calls.load(Ordering::SeqCst), 3);

    let delivered = by_number(all.drain());
    assert_eq!(delivered.len(), 25);
    for (n, event) in sent.iter().enumerate() {
        let got = &delivered[&(n as u64)];
        assert_eq!(got["source"], "drs-cache", "{got}");
        assert_eq!(got["detail-type"], event.detail_type, "{got}");
        assert_eq!(got["detail"], event.detail, "{got}");
        assert_eq!(got["resources"], json!([]), "{got}");
        assert_eq!(got["region"], REGION, "{got}");
    }
}

#[tokio::test]
async fn a_rule_on_one_detail_type_receives_only_events_of_that_type() {
    let bus = new_bus();
    let all = subscribe(&bus, &json!({"source": [SOURCE]}));
    let jobs = subscribe(
        &bus,
        &json!({"source": [SOURCE], "detail-type": [DETAIL_TYPES[1]]}),
    );
    let (feed, _) = feed(&bus);
    let sent = events(25);

    assert_eq!(feed.publish(&sent).await, outcome(25, 0));

    let expected: Vec<u64> = (0..25u64)
        .filter(|n| sent[*n as usize].detail_type == DETAIL_TYPES[1])
        .collect();
    let taken = by_number(jobs.drain());
    assert_eq!(taken.keys().copied().collect::<Vec<_>>(), expected);
    for event in taken.values() {
        assert_eq!(event["detail-type"], DETAIL_TYPES[1], "{event}");
    }
    // The narrower rule takes nothing from the broader one.
    assert_eq!(by_number(all.drain()).len(), 25);
}

#[tokio::test]
async fn publishing_no_events_makes_no_call() {
    let bus = new_bus();
    let all = subscribe(&bus, &json!({"source": [SOURCE]}));
    let (feed, calls) = feed(&bus);

    assert_eq!(feed.publish(&[]).await, outcome(0, 0));
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert!(all.drain().is_empty());
}

#[tokio::test]
async fn publishing_to_a_bus_that_does_not_exist_counts_every_event_failed() {
    let (feed, calls) = feed(&moto::unique_name("no-such-bus"));

    assert_eq!(feed.publish(&events(12)).await, outcome(0, 12));
    // A missing bus is refused for good: each call is made once, not retried.
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_event_over_the_size_limit_is_counted_failed_and_the_others_are_published() {
    let bus = new_bus();
    let all = subscribe(&bus, &json!({"source": [SOURCE]}));
    let (feed, calls) = feed(&bus);
    let sent = vec![
        event(0, 0),
        event(1, MAX_CALL_BYTES),
        event(2, 0),
        event(3, 0),
    ];

    assert_eq!(feed.publish(&sent).await, outcome(3, 1));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let delivered = by_number(all.drain());
    assert_eq!(delivered.keys().copied().collect::<Vec<_>>(), [0, 2, 3]);
}

#[tokio::test]
async fn large_events_are_split_into_calls_within_the_size_limit() {
    let bus = new_bus();
    let all = subscribe(&bus, &json!({"source": [SOURCE]}));
    let (feed, calls) = feed(&bus);
    // About 100 KiB each: two fit in a call, three do not.
    let sent: Vec<ChangeEvent> = (0..5).map(|n| event(n, 100 * 1024)).collect();

    assert_eq!(feed.publish(&sent).await, outcome(5, 0));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let delivered = by_number(all.drain());
    assert_eq!(delivered.len(), 5);
    for (n, event) in sent.iter().enumerate() {
        assert_eq!(delivered[&(n as u64)]["detail"], event.detail);
    }
}

#[tokio::test]
async fn a_deployment_without_a_bus_publishes_nothing_and_counts_nothing() {
    assert_eq!(NoChangeFeed.publish(&events(3)).await, outcome(0, 0));
}
