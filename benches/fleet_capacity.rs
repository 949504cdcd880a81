//! The fleet capacity of 1,000 account-regions (250 accounts × 4 regions):
//! reading it with `GET /drs/capacity`, and summing it as the planner does on
//! every scheduled tick.
//!
//! Four cases:
//! - `read_memory`: the whole document from the memory tier of a warmed router;
//! - `read_store`: the whole document from the embedded redb store, the
//!   reader's memory tier disabled (`memory_max_bytes = 0`), so that every
//!   read goes to the store;
//! - `read_memory_filtered_account`: `accountId=A` (4 rows) from the memory
//!   tier, the view derived once per version and reused;
//! - `sum`: `FleetCapacity::sum` over the metadata of the 3 inputs of every
//!   account-region (3,000 entries).
//!
//! Each read runs from a parsed `ApiRequest` to the `http::Response<Bytes>`
//! that `Router::handle` returns, EMF metric line formatting included.
//!
//! Run with `cargo bench --bench fleet_capacity`.

mod common;

use common::cache_tier;
use std::{collections::HashMap, hint::black_box, sync::Arc, time::Duration, time::SystemTime};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use drs_cache::{
    adapters::{
        embedded::EmbeddedStore,
        local_queue::{LocalRefreshQueue, LocalRefreshReceiver},
    },
    app,
    domain::{
        AccountId, CacheEntry, CacheKey, DataType, EntryMeta, Figure, Figures, Region, SystemClock,
        Timestamp, TtlPolicy, Version,
        capacity::QuotaThresholds,
        fleet::{self, FleetCapacity, Summed},
    },
    ports::{CacheWrites, PutOutcome},
    read::{
        ApiRequest, ApiResponse, ReaderSettings, Router,
        metrics::{MetricsSink, ReadOutcome, emf_line},
    },
};
use http::StatusCode;
use tokio::runtime::Runtime;

const ACCOUNTS: u64 = 250;
const REGIONS: [&str; 4] = ["us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2"];
const ROWS: usize = ACCOUNTS as usize * REGIONS.len();
const PATH: &str = "/drs/capacity";

/// Formats the EMF line of every read, as the Lambda sink does, and drops it,
/// so that the formatting is part of the measured cost but no I/O is.
struct DiscardedEmf;

impl MetricsSink for DiscardedEmf {
    fn record(&self, outcome: &ReadOutcome) {
        black_box(emf_line(outcome, SystemTime::now()));
    }
}

fn accounts() -> Vec<AccountId> {
    (0..ACCOUNTS)
        .map(|n| {
            AccountId::parse(&format!("{:012}", 100_000_000_000 + n * 7_919)).expect("account")
        })
        .collect()
}

fn regions() -> Vec<Region> {
    REGIONS
        .iter()
        .map(|r| Region::parse(r).expect("region"))
        .collect()
}

/// The metadata of the 3 inputs of every account-region, as a tick lists it:
/// deterministic counts that spread the rows over `OK`, `WARNING` and
/// `CRITICAL`, each input fetched within the last few minutes and fresh.
fn stored_inputs(
    accounts: &[AccountId],
    regions: &[Region],
    now: Timestamp,
) -> HashMap<CacheKey, EntryMeta> {
    let policy = TtlPolicy {
        freshness: Duration::from_secs(60 * 60),
        stale_window: TtlPolicy::DEFAULT_STALE_WINDOW,
    };
    let mut stored = HashMap::with_capacity(accounts.len() * regions.len() * fleet::INPUTS.len());
    let mut n: u64 = 0;
    for account in accounts {
        for region in regions {
            n += 1;
            let servers = (n * 37) % 330;
            let extended = (n * 3) % 7;
            let replicating = servers.saturating_sub(extended).min(300);
            let instances = (n * 11) % 60;
            let drills = instances / 2;
            let active_jobs = (n * 5) % 21;
            let servers_in_jobs = (active_jobs * 17).min(500);
            let inputs = [
                (
                    DataType::DrsQuotas,
                    servers,
                    Figures::default()
                        .with(Figure::ReplicatingServers, replicating)
                        .with(Figure::ExtendedServers, extended),
                ),
                (
                    DataType::DrsRecoveryInstances,
                    instances,
                    Figures::default().with(Figure::DrillInstances, drills),
                ),
                (
                    DataType::DrsJobs,
                    active_jobs + n % 9,
                    Figures::default()
                        .with(Figure::ActiveJobs, active_jobs)
                        .with(Figure::ServersInActiveJobs, servers_in_jobs),
                ),
            ];
            for (data_type, count, figures) in inputs {
                let key = CacheKey::new(data_type, region.clone(), *account);
                let fetched_at = now.minus(Duration::from_secs(n % 300));
                let entry = CacheEntry::fetched(
                    key.clone(),
                    Version::from_raw(fetched_at.unix_secs().unsigned_abs() * 1_000_000),
                    Bytes::new(),
                    count,
                    fetched_at,
                    policy,
                )
                .with_figures(figures);
                stored.insert(key, entry.meta);
            }
        }
    }
    stored
}

fn sum(
    stored: &HashMap<CacheKey, EntryMeta>,
    accounts: &[AccountId],
    regions: &[Region],
    now: Timestamp,
) -> Summed {
    FleetCapacity::sum(
        stored,
        accounts,
        regions,
        &fleet::INPUTS,
        &QuotaThresholds::default(),
        now,
    )
}

/// The capacity entry as the planner builds it: the summed document under the
/// key of the first region, as old as its oldest input, fresh for a day.
fn capacity_entry(summed: &Summed, region: Region, now: Timestamp) -> CacheEntry {
    let body = Bytes::from(serde_json::to_vec(&summed.capacity).expect("the capacity serializes"));
    let policy = TtlPolicy {
        freshness: Duration::from_secs(24 * 60 * 60),
        stale_window: TtlPolicy::DEFAULT_STALE_WINDOW,
    };
    let mut entry = CacheEntry::fetched(
        CacheKey::fleet_capacity(region),
        Version::at_fetch_start(&SystemClock),
        body,
        summed.capacity.row_count as u64,
        now,
        policy,
    );
    entry.meta.fetched_at = summed.oldest_input.unwrap_or(now).min(now);
    entry
}

/// Two routers over one embedded store holding the fleet capacity: one with
/// the default memory tier, one with none.
struct Fixture {
    rt: Runtime,
    memory: Router,
    store_only: Router,
    body_len: usize,
    // Kept alive: the store file and the refresh queues' receiving ends.
    _dir: tempfile::TempDir,
    _queues: [LocalRefreshReceiver; 2],
}

fn fixture(entry: &CacheEntry) -> Fixture {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let store =
        Arc::new(EmbeddedStore::open(dir.path().join("bench.redb")).expect("embedded store"));
    let put = rt.block_on(store.put(entry)).expect("store put");
    assert_eq!(put, PutOutcome::Written);

    let settings = ReaderSettings {
        memory_ttl: Duration::from_secs(60 * 60),
        capacity_key: Some(entry.meta.key.clone()),
        ..ReaderSettings::default()
    };
    let (queue, memory_receiver) = LocalRefreshQueue::new(16);
    let memory = app::reader_router(
        store.clone(),
        Arc::new(queue),
        settings.clone(),
        Arc::new(DiscardedEmf),
        None,
    );
    let (queue, store_receiver) = LocalRefreshQueue::new(16);
    let store_only = app::reader_router(
        store,
        Arc::new(queue),
        ReaderSettings {
            memory_max_bytes: 0,
            ..settings
        },
        Arc::new(DiscardedEmf),
        None,
    );

    Fixture {
        rt,
        memory,
        store_only,
        body_len: entry.body.len(),
        _dir: dir,
        _queues: [memory_receiver, store_receiver],
    }
}

fn whole() -> ApiRequest {
    ApiRequest::get(PATH, &[])
}

fn of_account(account: &AccountId) -> ApiRequest {
    ApiRequest::get(PATH, &[("accountId", account.as_str())])
}

/// The rows of a capacity answer, checked to be a 200 from `tier`.
fn rows_of(response: &ApiResponse, tier: &str) -> usize {
    assert_eq!(response.status(), StatusCode::OK, "{:?}", response.body());
    assert_eq!(cache_tier(response), tier);
    let doc: FleetCapacity = serde_json::from_slice(response.body()).expect("a capacity document");
    assert_eq!(doc.rows.len(), doc.row_count);
    doc.row_count
}

fn fleet_capacity(c: &mut Criterion) {
    let (accounts, regions) = (accounts(), regions());
    let now = Timestamp::now();
    let stored = stored_inputs(&accounts, &regions, now);
    assert_eq!(stored.len(), ROWS * fleet::INPUTS.len());
    let summed = sum(&stored, &accounts, &regions, now);
    let capacity = &summed.capacity;
    assert_eq!(capacity.row_count, ROWS);
    assert_eq!(capacity.fleet.incomplete_rows, 0, "every input is counted");
    let by_status = capacity.fleet.rows_by_status;
    assert!(by_status.ok > 0 && by_status.warning > 0 && by_status.critical > 0);

    let entry = capacity_entry(&summed, regions[0].clone(), now);
    let f = fixture(&entry);
    let handle = |router: &Router, req: &ApiRequest| f.rt.block_on(router.handle(req));

    // Checked once, outside the timed loops: each case is the answer it claims
    // to be, from the tier it claims.
    let first = handle(&f.memory, &whole());
    assert_eq!(
        rows_of(&first, "store"),
        ROWS,
        "the first read is a store hit"
    );
    let from_memory = handle(&f.memory, &whole());
    assert_eq!(rows_of(&from_memory, "memory"), ROWS);
    assert_eq!(from_memory.body().len(), f.body_len);
    for _ in 0..32 {
        let from_store = handle(&f.store_only, &whole());
        assert_eq!(rows_of(&from_store, "store"), ROWS);
        assert_eq!(from_store.body().len(), f.body_len);
    }
    let account = accounts[accounts.len() / 2];
    let filtered = handle(&f.memory, &of_account(&account));
    assert_eq!(rows_of(&filtered, "memory"), REGIONS.len());
    let doc: FleetCapacity = serde_json::from_slice(filtered.body()).expect("a capacity document");
    assert!(doc.rows.iter().all(|r| r.account_id == account));
    // The view is derived on the first filtered read; the benched ones reuse it.
    assert_eq!(
        handle(&f.memory, &of_account(&account)).body(),
        filtered.body()
    );

    eprintln!(
        "fleet_capacity: {ROWS} rows, body {} bytes, accountId view {} bytes ({} rows); \
         rows OK {} WARNING {} CRITICAL {}",
        f.body_len,
        filtered.body().len(),
        doc.row_count,
        by_status.ok,
        by_status.warning,
        by_status.critical,
    );

    let mut group = c.benchmark_group("fleet_capacity");
    let req = whole();
    group.bench_function("read_memory", |b| {
        b.iter(|| black_box(handle(&f.memory, &req)))
    });
    group.bench_function("read_store", |b| {
        b.iter(|| black_box(handle(&f.store_only, &req)))
    });
    let req = of_account(&account);
    group.bench_function("read_memory_filtered_account", |b| {
        b.iter(|| black_box(handle(&f.memory, &req)))
    });
    group.bench_function("sum", |b| {
        b.iter(|| black_box(sum(black_box(&stored), &accounts, &regions, now)))
    });
    group.finish();
}

criterion_group!(benches, fleet_capacity);
criterion_main!(benches);
