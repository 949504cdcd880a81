//! Demand-aware refresh: both stores keep the reads readers note and the
//! accounts warmed; a reader notes each key once per interval and writes its
//! notes off the request; ticks refresh ahead only what is in demand, the
//! rest at the floor; a warm request and a DRS launch make an account's keys
//! hot, read or not.

use std::{collections::HashMap, sync::Arc, time::Duration};

use async_trait::async_trait;
use drs_cache::{
    adapters::{embedded::EmbeddedStore, local_queue::LocalRefreshQueue},
    app,
    domain::{
        AccountId, CacheKey, DataType, Demand, DemandPolicy, RefreshAhead, Region, Timestamp,
    },
    plan::{DueWhy, Plan, PlanConfig, Planner, trigger::Trigger},
    ports::{CacheStorage, DemandLog, DemandNotes, StoreError},
    read::{ApiRequest, ReaderSettings, metrics::Recorded},
    workflow::{WarmRequest, run_in_process},
};

use crate::support::{
    plan::{ManualClock, planner_rig},
    refresh::{Rig, dynamodb_table, home},
    workflow::{other, plan_config, regions},
};

fn servers(region: &str, account: AccountId) -> CacheKey {
    CacheKey::new(
        DataType::DrsSourceServers,
        Region::parse(region).unwrap(),
        account,
    )
}

/// What both stores must do with demand records.
async fn keeps_latest_reads_and_longest_warm_marks(store: Arc<dyn CacheStorage>) {
    let now = Timestamp::now();
    let east = servers("us-east-1", home());
    let west = servers("us-west-2", home());
    store
        .record_reads(&[
            (east.clone(), now.minus(Duration::from_secs(30))),
            (east.clone(), now.minus(Duration::from_secs(10))),
            (west.clone(), now.minus(Duration::from_secs(50))),
        ])
        .await
        .unwrap();
    // An older note written later never moves a read back in the embedded
    // store; DynamoDB keeps the last written (seconds apart, see the adapter).
    store
        .record_reads(&[(west.clone(), now.minus(Duration::from_secs(40)))])
        .await
        .unwrap();
    store
        .warm(other(), now.plus(Duration::from_secs(3_600)))
        .await
        .unwrap();
    store
        .warm(other(), now.plus(Duration::from_secs(600)))
        .await
        .unwrap();
    store
        .warm(home(), now.minus(Duration::from_secs(1)))
        .await
        .unwrap();
    let demand = store
        .demand(&[DataType::DrsSourceServers], now)
        .await
        .unwrap();
    assert_eq!(demand.reads.len(), 2, "{demand:?}");
    assert_eq!(demand.reads[&east], now.minus(Duration::from_secs(10)));
    assert_eq!(demand.reads[&west], now.minus(Duration::from_secs(40)));
    assert_eq!(
        demand.warm,
        HashMap::from([(other(), now.plus(Duration::from_secs(3_600)))]),
        "the longer mark is kept and an ended one is not read"
    );
    // Reads of other types are not read for these, and no demand record is
    // listed as a cached entry.
    let subnets = store.demand(&[DataType::Ec2Subnets], now).await.unwrap();
    assert!(subnets.reads.is_empty(), "{subnets:?}");
    let listed = store
        .list(DataType::DrsSourceServers, None, 100)
        .await
        .unwrap();
    assert!(listed.entries.is_empty(), "{:?}", listed.entries);
}

#[tokio::test]
async fn the_embedded_store_keeps_each_keys_latest_read_and_each_accounts_longest_warm_mark() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(dir.path().join("c.redb")).unwrap());
    keeps_latest_reads_and_longest_warm_marks(store).await;
}

#[tokio::test]
async fn the_dynamodb_store_keeps_each_keys_latest_read_and_each_accounts_longest_warm_mark() {
    keeps_latest_reads_and_longest_warm_marks(dynamodb_table().await).await;
}

/// Notes that fail while `failing`, else go to `inner`; counts the writes.
struct Flaky {
    inner: Arc<EmbeddedStore>,
    failing: std::sync::atomic::AtomicBool,
    writes: std::sync::atomic::AtomicUsize,
}

#[async_trait]
impl DemandNotes for Flaky {
    async fn record_reads(&self, reads: &[(CacheKey, Timestamp)]) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering;
        self.writes.fetch_add(1, Ordering::SeqCst);
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("the table is away".into()));
        }
        self.inner.record_reads(reads).await
    }
}

#[tokio::test]
async fn a_reader_notes_each_key_once_per_interval_and_writes_nothing_on_the_request() {
    use std::sync::atomic::Ordering;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(dir.path().join("c.redb")).unwrap());
    let notes = Arc::new(Flaky {
        inner: store.clone(),
        failing: true.into(),
        writes: 0.into(),
    });
    let (queue, _requests) = LocalRefreshQueue::new(64);
    let router = app::reader_router(
        store.clone(),
        Arc::new(queue),
        ReaderSettings {
            default_account: Some(home()),
            demand: Some(DemandPolicy::default()),
            ..ReaderSettings::default()
        },
        Arc::new(Recorded::default()),
        Some(notes.clone()),
    );
    let recorder = router.demand().expect("reads are noted");
    let read = |region: &'static str| {
        let router = router.clone();
        async move {
            router
                .handle(&ApiRequest::get(
                    "/drs/source-servers",
                    &[("region", region)],
                ))
                .await
        }
    };
    // Nothing is cached: each read is a miss, and still a read in demand.
    for _ in 0..50 {
        read("us-east-1").await;
    }
    read("us-west-2").await;
    assert_eq!(recorder.pending(), 2, "one note per key");
    assert_eq!(notes.writes.load(Ordering::SeqCst), 0, "no read wrote");
    // A failed write drops its notes and forgets their keys: the next reads
    // note them again.
    assert_eq!(recorder.flush().await, 0);
    read("us-east-1").await;
    assert_eq!(recorder.pending(), 1);
    notes.failing.store(false, Ordering::SeqCst);
    assert_eq!(recorder.flush().await, 1);
    assert_eq!(recorder.flush().await, 0, "nothing left to write");
    read("us-east-1").await;
    assert_eq!(recorder.pending(), 0, "noted within its interval");
    let demand = store
        .demand(&[DataType::DrsSourceServers], Timestamp::now())
        .await
        .unwrap();
    assert_eq!(
        demand.reads.keys().cloned().collect::<Vec<_>>(),
        [servers("us-east-1", home())]
    );
    // Without demand windows (REFRESH_AHEAD=always) nothing is noted.
    let (queue, _requests) = LocalRefreshQueue::new(64);
    let always = app::reader_router(
        store,
        Arc::new(queue),
        ReaderSettings::default(),
        Arc::new(Recorded::default()),
        Some(notes),
    );
    assert!(always.demand().is_none());
}

/// A planner following demand over the workflow tests' fleet on moto, with a
/// clock the test moves.
async fn demand_rig() -> (Rig, Planner, Arc<ManualClock>) {
    let config = PlanConfig {
        refresh_ahead: RefreshAhead::OnDemand(DemandPolicy::default()),
        ..plan_config()
    };
    let (rig, planner, clock) = planner_rig(config).await;
    let planner = planner.with_demand(rig.store.clone());
    (rig, planner, clock)
}

async fn previewed(planner: &Planner) -> Vec<(CacheKey, DueWhy)> {
    planner
        .preview()
        .await
        .unwrap()
        .targets
        .into_iter()
        .map(|t| (t.key, t.why))
        .collect()
}

#[tokio::test]
async fn ticks_refresh_ahead_only_the_keys_read_within_their_window_and_the_rest_at_the_floor() {
    let (rig, planner, clock) = demand_rig().await;
    // Never cached: everything is fetched once, read or not.
    let first = run_in_process(&planner, &rig.refresher, &Trigger::Schedule, None, 4)
        .await
        .unwrap();
    assert_eq!(first.keys.refreshed, 26, "{first:?}");
    clock.catch_up(Timestamp::now());
    let read = servers("us-east-1", home());
    rig.store
        .record_reads(&[(read.clone(), now_of(&clock))])
        .await
        .unwrap();
    // A minute on, the four source-server keys expire before the next tick
    // and margin; only the one read is refreshed ahead.
    clock.advance(61);
    let due = previewed(&planner).await;
    assert_eq!(due.len(), 1, "{due:?}");
    assert_eq!(due[0].0, read);
    assert!(matches!(due[0].1, DueWhy::ExpiresSoon { .. }), "{due:?}");
    // An hour past its read the key is out of demand too: nothing is due
    // until the floor, 6 hours after each fetch, when every key is.
    clock.advance(3_600);
    assert!(previewed(&planner).await.is_empty());
    clock.advance(6 * 3_600 - 3_600);
    let floor = previewed(&planner).await;
    assert_eq!(floor.len(), 26, "{floor:?}");
    assert!(
        floor
            .iter()
            .all(|(_, why)| matches!(why, DueWhy::Floor { .. } | DueWhy::StaleWindowEnds { .. })),
        "{floor:?}"
    );
}

/// The demand the store holds for source servers at the clock's time.
async fn servers_demand(rig: &Rig, clock: &ManualClock) -> Demand {
    rig.store
        .demand(&[DataType::DrsSourceServers], now_of(clock))
        .await
        .unwrap()
}

/// The plan of a DRS launch in `account` and `region`.
async fn launched(planner: &Planner, account: AccountId, region: &str) -> Plan {
    planner
        .plan(&Trigger::Launched {
            account,
            region: Region::parse(region).unwrap(),
        })
        .await
        .unwrap()
}

fn now_of(clock: &ManualClock) -> Timestamp {
    use drs_cache::domain::Clock;
    clock.now()
}

#[tokio::test]
async fn a_warm_request_and_a_drs_launch_keep_every_key_of_their_account_refreshed_ahead_unread() {
    let (rig, planner, clock) = demand_rig().await;
    run_in_process(&planner, &rig.refresher, &Trigger::Schedule, None, 4)
        .await
        .unwrap();
    clock.catch_up(Timestamp::now());
    clock.advance(61);
    assert!(previewed(&planner).await.is_empty(), "nothing is read");

    // Warming the other account plans its due keys now and keeps them due.
    let warm = planner
        .plan(&Trigger::Warm(WarmRequest {
            account: other(),
            window: Some(Duration::from_secs(2 * 3_600)),
        }))
        .await
        .unwrap();
    let mut planned = warm.targets();
    planned.sort_by_key(|k| k.to_string());
    let mut expected: Vec<CacheKey> = regions()
        .iter()
        .map(|r| servers(r.as_str(), other()))
        .collect();
    expected.sort_by_key(|k| k.to_string());
    assert_eq!(planned, expected);
    let due: Vec<CacheKey> = previewed(&planner)
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(due.len(), 2, "{due:?}");
    assert!(due.iter().all(|k| k.scope().account() == Some(other())));

    // A launch in the home account refreshes its launch data and warms it.
    let launch = launched(&planner, home(), "us-east-1").await;
    assert!(
        launch
            .targets()
            .iter()
            .all(|k| k.scope().account() == Some(home())),
        "{launch:?}"
    );
    let due: Vec<CacheKey> = previewed(&planner)
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(due.len(), 4, "both accounts' source servers: {due:?}");

    // Past the warm window, the other account is cold again.
    clock.advance(2 * 3_600);
    let demand = servers_demand(&rig, &clock).await;
    assert!(!demand.warm.contains_key(&other()), "{demand:?}");
    assert!(
        demand.warm.contains_key(&home()),
        "four hours by default: {demand:?}"
    );

    // A launch in a region this deployment does not refresh is for the
    // deployment that does: nothing planned here, and no mark.
    let elsewhere = launched(&planner, other(), "ap-south-1").await;
    assert!(elsewhere.targets().is_empty(), "{elsewhere:?}");
    let demand = servers_demand(&rig, &clock).await;
    assert!(!demand.warm.contains_key(&other()), "{demand:?}");
}
