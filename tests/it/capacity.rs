//! The fleet capacity (`GET /drs/capacity`): kept by the planner's scheduled
//! ticks from the metadata of the quota, recovery-instance and job entries,
//! and served by the reader from that one entry, whatever the fleet size.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use drs_cache::{
    adapters::{
        dynamodb::{DynamoDbStore, create_table},
        embedded::EmbeddedStore,
    },
    domain::{
        AccountId, CacheEntry, CacheKey, Clock, DataType, Figure, Figures, Region, Timestamp,
        TtlPolicy, Version, fleet,
    },
    plan::{PlanConfig, Planner, Trigger},
    ports::{CacheStorage, CacheWrites, PutOutcome},
    read::{ApiRequest, ApiResponse, ReadService, ReaderSettings, Router, metrics::Recorded},
};
use serde_json::Value;

use crate::support::{
    moto,
    plan::ManualClock,
    reader::{CountingStore, RecordingTrigger, header, json},
    workflow::plan_config,
};

const REGIONS: [&str; 4] = ["us-east-1", "eu-west-1", "ap-southeast-2", "sa-east-1"];
/// How long before the first tick every input was fetched.
const INPUT_AGE: u64 = 100;

fn accounts(n: usize) -> Vec<AccountId> {
    (0..n)
        .map(|i| AccountId::parse(&format!("{:012}", 100_000_000_000 + i)).unwrap())
        .collect()
}

fn regions(n: usize) -> Vec<Region> {
    REGIONS[..n]
        .iter()
        .map(|r| Region::parse(r).unwrap())
        .collect()
}

/// What one account-region holds.
#[derive(Debug, Clone, Copy)]
struct Cell {
    servers: u64,
    replicating: u64,
    extended: u64,
    instances: u64,
    drills: u64,
    jobs: u64,
    active_jobs: u64,
    servers_in_jobs: u64,
}

/// The same small cell everywhere: 12 servers (10 replicating, 1 extended),
/// 3 recovery instances (2 drills), 5 jobs in the window (1 active, with 4
/// servers).
const QUIET: Cell = Cell {
    servers: 12,
    replicating: 10,
    extended: 1,
    instances: 3,
    drills: 2,
    jobs: 5,
    active_jobs: 1,
    servers_in_jobs: 4,
};

fn plan(accounts: &[AccountId], regions: &[Region]) -> PlanConfig {
    PlanConfig {
        home: accounts[0],
        accounts: accounts.to_vec(),
        regions: regions.to_vec(),
        data_types: fleet::INPUTS.to_vec(),
        list_page: 1_000,
        ..plan_config()
    }
}

/// The three input entries of `cell` in `account` and `region`, as the
/// refresher writes them, fetched at `at`.
fn inputs(
    account: AccountId,
    region: &Region,
    cell: Cell,
    at: Timestamp,
    version: u64,
) -> [CacheEntry; 3] {
    let policy = TtlPolicy {
        freshness: Duration::from_secs(300),
        stale_window: Duration::from_secs(86_400),
    };
    let entry = |t, count, figures| {
        CacheEntry::fetched(
            CacheKey::new(t, region.clone(), account),
            Version::from_raw(version),
            Bytes::from(format!("{{\"v\":{version}}}")),
            count,
            at,
            policy,
        )
        .with_figures(figures)
    };
    [
        entry(
            DataType::DrsQuotas,
            cell.servers,
            Figures::default()
                .with(Figure::ReplicatingServers, cell.replicating)
                .with(Figure::ExtendedServers, cell.extended),
        ),
        entry(
            DataType::DrsRecoveryInstances,
            cell.instances,
            Figures::default().with(Figure::DrillInstances, cell.drills),
        ),
        entry(
            DataType::DrsJobs,
            cell.jobs,
            Figures::default()
                .with(Figure::ActiveJobs, cell.active_jobs)
                .with(Figure::ServersInActiveJobs, cell.servers_in_jobs),
        ),
    ]
}

async fn put_all(store: &dyn CacheWrites, entries: impl IntoIterator<Item = CacheEntry>) {
    for entry in entries {
        assert_eq!(store.put(&entry).await.unwrap(), PutOutcome::Written);
    }
}

/// Every cell of `accounts` × `regions` holds `QUIET`.
async fn seed(store: &dyn CacheWrites, accounts: &[AccountId], regions: &[Region], at: Timestamp) {
    for account in accounts {
        for region in regions {
            put_all(store, inputs(*account, region, QUIET, at, 1)).await;
        }
    }
}

/// An empty embedded store, in a directory that lives as long as the guard.
fn embedded() -> (tempfile::TempDir, Arc<dyn CacheStorage>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(dir.path().join("cache.redb")).unwrap());
    (dir, store)
}

/// A fleet seeded with `QUIET` everywhere, fetched `INPUT_AGE` before the
/// clock's time, and the plan over it.
struct Seeded {
    clock: Arc<ManualClock>,
    config: PlanConfig,
}

async fn seeded(store: &dyn CacheWrites, accounts: &[AccountId], regions: &[Region]) -> Seeded {
    let clock = Arc::new(ManualClock::at(Timestamp::now()));
    let at = clock.now().minus(Duration::from_secs(INPUT_AGE));
    seed(store, accounts, regions, at).await;
    Seeded {
        clock,
        config: plan(accounts, regions),
    }
}

/// A reader over `store` that counts what reaches it, on `clock`.
fn reader(
    store: Arc<CountingStore>,
    config: &PlanConfig,
    clock: Arc<ManualClock>,
    memory: bool,
) -> Router {
    let settings = ReaderSettings {
        default_account: Some(config.home),
        kept: Some(config.kept()),
        capacity_key: config.capacity_key(),
        memory_max_bytes: if memory { 64 << 20 } else { 0 },
        ..ReaderSettings::default()
    };
    let service = ReadService::new(
        store,
        Arc::new(RecordingTrigger::default()),
        clock,
        settings,
    );
    Router::new(Arc::new(service), Arc::new(Recorded::default()))
}

async fn get(router: &Router, query: &[(&str, &str)]) -> ApiResponse {
    router
        .handle(&ApiRequest::get("/drs/capacity", query))
        .await
}

async fn tick(planner: &Planner) {
    planner.plan(&Trigger::Schedule).await.unwrap();
}

fn row<'a>(doc: &'a Value, account: &AccountId, region: &str) -> &'a Value {
    doc["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["accountId"] == account.as_str() && r["region"] == region)
        .unwrap_or_else(|| panic!("no row {account} {region}"))
}

/// A quiet fleet in `store` after one scheduled tick, and a reader (with a
/// memory tier) counting the store reads it makes.
async fn after_one_tick(
    store: Arc<dyn CacheStorage>,
    accounts: &[AccountId],
    regions: &[Region],
) -> (Router, Arc<CountingStore>) {
    let Seeded { clock, config } = seeded(&*store, accounts, regions).await;
    let planner = Planner::new(store.clone(), store.clone(), clock.clone(), config.clone())
        .with_capacity_writes(store.clone());
    tick(&planner).await;
    let counted = Arc::new(CountingStore::new(store));
    (reader(counted.clone(), &config, clock, true), counted)
}

/// The store reads of a fleet-wide read, a repeated one and one account's
/// read, over a fleet of `n_accounts` × `n_regions`.
async fn reads_serving_capacity(n_accounts: usize, n_regions: usize) -> [usize; 3] {
    let (_dir, store) = embedded();
    let accounts = accounts(n_accounts);
    let (router, counted) = after_one_tick(store, &accounts, &regions(n_regions)).await;
    let mut reads = [0; 3];
    let all = get(&router, &[]).await;
    assert_eq!(all.status(), 200, "{:?}", all.body());
    let doc = json(&all);
    let cells = (n_accounts * n_regions) as u64;
    assert_eq!(doc["rowCount"], cells);
    assert_eq!(
        doc["fleet"]["replicatingServers"],
        cells * QUIET.replicating
    );
    assert_eq!(doc["fleet"]["drillInstances"], cells * QUIET.drills);
    assert_eq!(doc["fleet"]["incompleteRows"], 0);
    assert_eq!(doc["accounts"].as_array().unwrap().len(), n_accounts);
    assert_eq!(doc["regions"].as_array().unwrap().len(), n_regions);
    // The age of the oldest input.
    assert_eq!(header(&all, "age"), INPUT_AGE.to_string());
    reads[0] = counted.gets();
    assert_eq!(get(&router, &[]).await.status(), 200);
    reads[1] = counted.gets();
    let one = get(&router, &[("accountId", accounts[0].as_str())]).await;
    assert_eq!(one.status(), 200);
    assert_eq!(json(&one)["rowCount"], n_regions);
    reads[2] = counted.gets();
    reads
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_10_or_1000_account_regions_when_capacity_is_read_then_the_same_one_store_read_serves_it()
 {
    let small = reads_serving_capacity(5, 2).await;
    let large = reads_serving_capacity(250, 4).await;
    // One read of the one entry; the repeat and the account's view are
    // answered from memory.
    assert_eq!(small, [1, 1, 1]);
    assert_eq!(large, small);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_of_one_account_shows_after_the_next_tick_and_an_unchanged_tick_writes_nothing() {
    let (_dir, store) = embedded();
    let (accounts, regions) = (accounts(2), regions(2));
    let Seeded { clock, config } = seeded(&*store, &accounts, &regions).await;
    let planner_writes = Arc::new(CountingStore::new(store.clone()));
    let planner = Planner::new(store.clone(), store.clone(), clock.clone(), config.clone())
        .with_capacity_writes(planner_writes.clone());
    let router = reader(
        Arc::new(CountingStore::new(store.clone())),
        &config,
        clock.clone(),
        false,
    );

    tick(&planner).await;
    let before = json(&get(&router, &[]).await);
    let (changed, east) = (accounts[1], REGIONS[0]);
    assert_eq!(row(&before, &changed, east)["status"], "OK");
    assert_eq!(before["status"], "OK");
    assert_eq!(planner_writes.puts(), 1);

    // Nothing changed: the next tick moves the entry's freshness only.
    clock.advance(60);
    tick(&planner).await;
    assert_eq!(
        planner_writes.puts(),
        1,
        "an unchanged capacity is not rewritten"
    );
    let same = get(&router, &[]).await;
    assert_eq!(same.status(), 200);
    assert_eq!(header(&same, "x-cache-status"), "fresh");
    assert_eq!(json(&same), before);

    // One account's drill takes 280 of its 300 replication slots and starts
    // 19 jobs holding 450 servers; the refresher writes its entries.
    let drill = Cell {
        servers: 300,
        replicating: 280,
        extended: 0,
        instances: 120,
        drills: 120,
        jobs: 25,
        active_jobs: 19,
        servers_in_jobs: 450,
    };
    let region = Region::parse(east).unwrap();
    put_all(&*store, inputs(changed, &region, drill, clock.now(), 2)).await;
    clock.advance(60);
    tick(&planner).await;
    assert_eq!(planner_writes.puts(), 2);
    let after = json(&get(&router, &[]).await);
    let r = row(&after, &changed, east);
    assert_eq!(r["replicatingServers"], 280);
    assert_eq!(r["activeJobs"], 19);
    assert_eq!(r["serversInActiveJobs"], 450);
    assert_eq!(r["drillInstances"], 120);
    // 19 of 20 jobs (95 %) is the highest use: critical.
    assert_eq!(r["status"], "CRITICAL");
    assert_eq!(r["limitedBy"], "activeJobs");
    assert_eq!(r["utilizationPercent"], 95.0);
    assert_eq!(after["status"], "CRITICAL");
    assert_eq!(
        after["fleet"]["replicatingServers"],
        3 * QUIET.replicating + drill.replicating
    );
    // The other account's rows are as they were.
    for region in REGIONS[..2].iter() {
        assert_eq!(
            row(&after, &accounts[0], region),
            row(&before, &accounts[0], region)
        );
    }
    // The changed account alone, and that account in one region.
    let one = json(&get(&router, &[("accountId", changed.as_str())]).await);
    assert_eq!(one["rowCount"], 2);
    assert_eq!(one["status"], "CRITICAL");
    assert_eq!(one["fleet"]["activeJobs"], 19 + QUIET.active_jobs);
    let cell = json(
        &get(
            &router,
            &[("accountId", changed.as_str()), ("region", REGIONS[1])],
        )
        .await,
    );
    assert_eq!(cell["rowCount"], 1);
    assert_eq!(cell["status"], "OK");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_or_foreign_selections_are_refused_and_no_capacity_is_a_clear_503() {
    let (_dir, store) = embedded();
    let (accounts, regions) = (accounts(1), regions(1));
    let config = plan(&accounts, &regions);
    let clock = Arc::new(ManualClock::at(Timestamp::now()));
    let router = reader(Arc::new(CountingStore::new(store)), &config, clock, true);
    // Before the first tick: not cached yet, and no refresh is asked for.
    let none = get(&router, &[]).await;
    assert_eq!(none.status(), 503);
    assert_eq!(json(&none)["error"], "NOT_CACHED");
    assert_eq!(json(&none)["details"]["refreshRequested"], false);
    let field = |r: &ApiResponse| json(r)["details"]["field"].as_str().unwrap().to_owned();
    let bad = get(&router, &[("accountId", "12")]).await;
    assert_eq!(
        (bad.status().as_u16(), field(&bad)),
        (400, "accountId".into())
    );
    let bad = get(&router, &[("region", "atlantis")]).await;
    assert_eq!((bad.status().as_u16(), field(&bad)), (400, "region".into()));
    let bad = get(&router, &[("vpcId", "vpc-0000000a")]).await;
    assert_eq!((bad.status().as_u16(), field(&bad)), (400, "vpcId".into()));
    let foreign = get(&router, &[("accountId", "999999999999")]).await;
    assert_eq!(
        (foreign.status().as_u16(), field(&foreign)),
        (404, "accountId".into())
    );
    let foreign = get(&router, &[("region", "eu-north-1")]).await;
    assert_eq!(
        (foreign.status().as_u16(), field(&foreign)),
        (404, "region".into())
    );
    let post = router
        .handle(&ApiRequest {
            method: http::Method::POST,
            ..ApiRequest::get("/drs/capacity", &[])
        })
        .await;
    assert_eq!(post.status(), 405);
    // The derived type is not a data type anyone keeps or invalidates.
    assert!(DataType::parse("drs-capacity").is_err());
}

/// On DynamoDB the figures travel in the `dataType` index's projection: the
/// planner lists them, never reading a body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_dynamodb_the_tick_sums_the_figures_it_lists_from_the_index() {
    let admin = moto::dynamodb_client(moto::endpoint()).await;
    let table = moto::unique_name("capacity");
    create_table(&admin, &table).await.unwrap();
    let store: Arc<dyn CacheStorage> = Arc::new(DynamoDbStore::new(admin, table));
    let (router, counted) = after_one_tick(store, &accounts(2), &regions(2)).await;
    let answer = get(&router, &[]).await;
    assert_eq!(answer.status(), 200);
    let doc = json(&answer);
    assert_eq!(doc["fleet"]["incompleteRows"], 0, "{doc:#}");
    assert_eq!(doc["fleet"]["replicatingServers"], 4 * QUIET.replicating);
    assert_eq!(
        doc["fleet"]["serversInActiveJobs"],
        4 * QUIET.servers_in_jobs
    );
    assert_eq!(doc["fleet"]["sourceServers"], 4 * QUIET.servers);
    assert_eq!(counted.gets(), 1);
    assert_eq!(header(&answer, "age"), INPUT_AGE.to_string());
}
