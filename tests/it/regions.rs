//! Two deployments over one global table, on one machine: a cache table of the
//! same name in two moto regions, each region with its own planner, refresher
//! and reader configured from the variables the template sets
//! (`DEPLOYMENT_REGION`, `REGION_OWNERS`), and [`GlobalTableStandIn`], a
//! replicator that exists only in these tests and stands in for DynamoDB
//! global-table replication between the two tables.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::{Arc, Mutex},
};

use aws_sdk_dynamodb::{Client, types::AttributeValue};
use drs_cache::{
    adapters::{
        aws::{AccountAccess, AwsUpstream, Credentials, UpstreamConfig},
        dynamodb::{DynamoDbStore, create_table},
    },
    config::{Env, PlannerConfig, ReaderConfig},
    domain::{CacheKey, DataType, Timestamp, TtlTable},
    plan::{Planner, Trigger},
    read::{ApiRequest, ApiResponse, ReadService, Router, metrics::Recorded},
    refresh::{Refresher, Upstream},
    workflow::run_in_process,
};
use drs_sim::{SimConfig, SimHandle, Simulator};

use crate::support::{
    moto,
    plan::ManualClock,
    reader::{RecordingTrigger, header, json},
    refresh::{Endpoints, HOME, RecordedRefreshes, home, sdk_config, settings},
};

const EAST: &str = "us-east-1";
const WEST: &str = "eu-west-1";
const TYPES: &str = "drs-source-servers,drs-quotas,ec2-subnets";
/// Every target of both regions: three types of the one account in each.
const TARGETS: usize = 6;

/// A DynamoDB client of moto's `region`.
async fn client_in(region: &str) -> Client {
    let base = moto::dynamodb_client(moto::endpoint()).await;
    let conf = base
        .config()
        .to_builder()
        .region(aws_sdk_dynamodb::config::Region::new(region.to_owned()))
        .build();
    Client::from_conf(conf)
}

type Item = HashMap<String, AttributeValue>;

/// Stands in, in these tests only, for the replication DynamoDB global tables
/// do between replicas: [`Self::replicate`] copies every item written in one
/// region's table to the other's, and deletes there what was deleted at the
/// source since, as replication does within about a second. It also tells
/// which items each region wrote itself (those it did not bring), so a test
/// can check that no key has two writers.
struct GlobalTableStandIn {
    table: String,
    clients: HashMap<&'static str, Client>,
    state: Mutex<Replicated>,
}

#[derive(Default)]
struct Replicated {
    /// Per region, the items this stand-in put there, as it put them.
    brought: HashMap<&'static str, HashMap<String, Item>>,
    /// Per region, its items as the last copy from it saw them.
    seen: HashMap<&'static str, BTreeMap<String, Item>>,
    /// Per region, the keys of the items written there by the region itself.
    written: HashMap<&'static str, BTreeSet<String>>,
}

impl GlobalTableStandIn {
    async fn create(table: &str) -> Self {
        let mut clients = HashMap::new();
        for name in [EAST, WEST] {
            let client = client_in(name).await;
            create_table(&client, table).await.unwrap();
            clients.insert(name, client);
        }
        Self {
            table: table.to_owned(),
            clients,
            state: Mutex::default(),
        }
    }

    async fn items(&self, region: &str) -> BTreeMap<String, Item> {
        let items: Vec<Item> = self.clients[region]
            .scan()
            .table_name(&self.table)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<_, _>>()
            .await
            .unwrap();
        items
            .into_iter()
            .map(|item| (item["cacheKey"].as_s().unwrap().clone(), item))
            .collect()
    }

    /// Copies the items `from` wrote itself since the last copy to `to`, and
    /// deletes from `to` those an earlier copy brought that `from` no longer
    /// holds.
    async fn replicate(&self, from: &'static str, to: &'static str) {
        let items = self.items(from).await;
        let (copies, gone) = {
            let mut state = self.state.lock().unwrap();
            let brought = state.brought.entry(from).or_default().clone();
            let seen = state.seen.insert(from, items.clone()).unwrap_or_default();
            let own: Vec<(String, Item)> = items
                .iter()
                .filter(|(key, item)| {
                    brought.get(*key) != Some(item) && seen.get(*key) != Some(item)
                })
                .map(|(k, i)| (k.clone(), i.clone()))
                .collect();
            let written = state.written.entry(from).or_default();
            written.extend(own.iter().map(|(k, _)| k.clone()));
            let sent = state.brought.entry(to).or_default();
            let gone: Vec<String> = sent
                .keys()
                .filter(|k| !items.contains_key(*k))
                .cloned()
                .collect();
            for key in &gone {
                sent.remove(key);
            }
            sent.extend(own.iter().cloned());
            (own, gone)
        };
        let target = &self.clients[to];
        for key in gone {
            target
                .delete_item()
                .table_name(&self.table)
                .key("cacheKey", AttributeValue::S(key))
                .send()
                .await
                .unwrap();
        }
        for (_, item) in copies {
            target
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .send()
                .await
                .unwrap();
        }
    }

    /// Both ways, as replication runs from every replica.
    async fn sync(&self) {
        self.replicate(EAST, WEST).await;
        self.replicate(WEST, EAST).await;
    }

    /// The keys of the items `region` wrote itself, as of the last sync.
    fn written_by(&self, region: &str) -> BTreeSet<String> {
        self.state
            .lock()
            .unwrap()
            .written
            .get(region)
            .cloned()
            .unwrap_or_default()
    }
}

/// One region's deployment: its planner, refresher and reader over its own
/// replica, built from the variables its functions would be given.
struct Deployment {
    planner: Planner,
    refresher: Refresher,
    router: Router,
    trigger: Arc<RecordingTrigger>,
}

impl Deployment {
    async fn start(
        sim: &SimHandle,
        replicas: &GlobalTableStandIn,
        deployment: &'static str,
        owners: &str,
        clock: Arc<ManualClock>,
    ) -> Self {
        let vars: HashMap<&str, String> = HashMap::from([
            ("CACHE_TABLE_NAME", replicas.table.clone()),
            ("PLAN_BUCKET", "plans".into()),
            ("DEPLOYMENT_ACCOUNT_ID", HOME.into()),
            (
                "REFRESH_STATE_MACHINE_ARN",
                format!("arn:aws:states:{deployment}:{HOME}:stateMachine:refresh"),
            ),
            ("REGIONS", format!("{EAST},{WEST}")),
            ("DATA_TYPES", TYPES.into()),
            ("DEPLOYMENT_REGION", deployment.into()),
            ("REGION_OWNERS", owners.into()),
            // Ownership, not demand, is under test: every owned key is
            // refreshed ahead.
            ("REFRESH_AHEAD", "always".into()),
        ]);
        let env = Env(|name: &str| vars.get(name).cloned());
        let plan = PlannerConfig::from_vars(&env).unwrap().plan;
        let reader = ReaderConfig::from_vars(&env).unwrap().settings;
        let store = Arc::new(
            DynamoDbStore::new(client_in(deployment).await, replicas.table.clone())
                .with_lease_scope(plan.ownership.deployment().cloned()),
        );
        let base = sdk_config(&sim.endpoint(), Endpoints::default()).await;
        let access = AccountAccess {
            own_account: Some(home()),
            others: Credentials::Static(HashMap::new()),
        };
        let upstream = Arc::new(AwsUpstream::new(base, access, UpstreamConfig::default()).unwrap());
        // On the test's clock, as the planner and the reader.
        let refresher = Refresher::new(
            store.clone(),
            store.clone(),
            Upstream {
                drs: upstream.clone(),
                ec2: upstream.clone(),
                iam: upstream,
            },
            clock.clone(),
            Arc::new(RecordedRefreshes::default()),
            settings(),
        );
        let planner = Planner::new(store.clone(), store.clone(), clock.clone(), plan)
            .with_capacity_writes(store.clone());
        let trigger = Arc::new(RecordingTrigger::default());
        let service = ReadService::new(store, trigger.clone(), clock.clone(), reader);
        Self {
            planner,
            refresher,
            router: Router::new(Arc::new(service), Arc::new(Recorded::default())),
            trigger,
        }
    }

    /// One scheduled tick, run to the end through the refresher: the targets
    /// it refreshed.
    async fn tick(&self) -> BTreeSet<String> {
        let due = self.planner.preview().await.unwrap();
        let run = run_in_process(&self.planner, &self.refresher, &Trigger::Schedule, None, 4)
            .await
            .unwrap();
        assert_eq!(run.keys.failed, 0, "{run:?}");
        let done = run.keys.refreshed + run.keys.unchanged;
        assert_eq!(done as usize, due.targets.len(), "{run:?} {due:?}");
        due.targets.iter().map(|t| t.key.to_string()).collect()
    }

    async fn get(&self, path: &str, query: &[(&str, &str)]) -> ApiResponse {
        self.router.handle(&ApiRequest::get(path, query)).await
    }

    async fn invalidate(&self, body: serde_json::Value) -> ApiResponse {
        let request = ApiRequest {
            method: http::Method::POST,
            body: body.to_string().into(),
            ..ApiRequest::get("/cache/invalidate", &[])
        };
        self.router.handle(&request).await
    }

    /// The regions of the targets this side's reader asked to refresh.
    fn requested_regions(&self) -> BTreeSet<String> {
        self.trigger
            .requests()
            .iter()
            .map(|(key, _)| key.region().to_string())
            .collect()
    }
}

fn keys_in(targets: &BTreeSet<String>, region: &str) -> usize {
    targets
        .iter()
        .filter(|k| CacheKey::parse(k).unwrap().region().as_str() == region)
        .count()
}

async fn fleet() -> SimHandle {
    Simulator::start("127.0.0.1:0".parse().unwrap(), SimConfig::default())
        .await
        .unwrap()
}

#[tokio::test]
async fn each_region_refreshes_only_what_it_owns_and_reads_everything() {
    let sim = fleet().await;
    let replicas = GlobalTableStandIn::create(&moto::unique_name("global")).await;
    let clock = Arc::new(ManualClock::at(Timestamp::now()));
    let east = Deployment::start(&sim, &replicas, EAST, "", clock.clone()).await;
    let west = Deployment::start(&sim, &replicas, WEST, "", clock.clone()).await;

    let (by_east, by_west) = (east.tick().await, west.tick().await);
    assert_eq!(
        by_east.len() + by_west.len(),
        TARGETS,
        "{by_east:?} {by_west:?}"
    );
    assert!(
        by_east.is_disjoint(&by_west),
        "no target refreshed by two regions"
    );
    assert_eq!(keys_in(&by_east, EAST), TARGETS / 2, "{by_east:?}");
    assert_eq!(keys_in(&by_west, WEST), TARGETS / 2, "{by_west:?}");

    replicas.sync().await;
    clock.catch_up(Timestamp::now());
    for reader in [&east, &west] {
        for r in [EAST, WEST] {
            let answer = reader.get("/ec2/subnets", &[("region", r)]).await;
            assert_eq!(answer.status(), 200, "{r}: {:?}", json(&answer));
            assert_eq!(header(&answer, "x-cache-status"), "fresh");
        }
    }
    assert!(east.trigger.requests().is_empty() && west.trigger.requests().is_empty());

    // Right after, neither side finds anything due; east's tick sums the fleet
    // capacity from both regions' replicated entries, and only east writes it:
    // it owns the region of its key (the first configured).
    assert!(east.tick().await.is_empty());
    assert!(west.tick().await.is_empty());
    replicas.sync().await;
    let capacity = west.get("/drs/capacity", &[]).await;
    assert_eq!(capacity.status(), 200, "{:?}", json(&capacity));
    let fleet = &json(&capacity)["fleet"];
    assert_eq!(
        (fleet["rows"].as_u64(), fleet["incompleteRows"].as_u64()),
        (Some(2), Some(0)),
        "{fleet}"
    );
    let (east_wrote, west_wrote) = (replicas.written_by(EAST), replicas.written_by(WEST));
    assert!(
        east_wrote.is_disjoint(&west_wrote),
        "items written by both: {:?}",
        east_wrote.intersection(&west_wrote).collect::<Vec<_>>()
    );
    assert!(
        east_wrote.contains("drs-capacity#us-east-1#global"),
        "{east_wrote:?}"
    );
    // Each side's leases are its own.
    assert!(
        west_wrote
            .iter()
            .filter(|k| k.starts_with("lease#"))
            .all(|k| k.starts_with("lease#eu-west-1#")),
        "{west_wrote:?}"
    );
}

/// Both sides refreshed and replicated, then east stops: west's clock moves
/// past the subnets' freshness (within their stale window).
async fn east_stopped() -> (SimHandle, GlobalTableStandIn, Deployment, Arc<ManualClock>) {
    let sim = fleet().await;
    let replicas = GlobalTableStandIn::create(&moto::unique_name("failover")).await;
    let clock = Arc::new(ManualClock::at(Timestamp::now()));
    let east = Deployment::start(&sim, &replicas, EAST, "", clock.clone()).await;
    let west = Deployment::start(&sim, &replicas, WEST, "", clock.clone()).await;
    assert_eq!(east.tick().await.len() + west.tick().await.len(), TARGETS);
    replicas.sync().await;
    drop(east);
    clock.catch_up(Timestamp::now());
    let subnets = TtlTable::default().policy(DataType::Ec2Subnets);
    assert!(subnets.stale_window.as_secs() > 60, "{subnets:?}");
    // Past the freshness and the tick and margin within which a stale read
    // leaves its refresh to the ticks: reads of it ask for one.
    clock.advance(subnets.freshness.as_secs() + 120);
    (sim, replicas, west, clock)
}

#[tokio::test]
async fn a_stopped_regions_data_is_served_stale_with_its_age_and_owner_and_not_refreshed_elsewhere()
{
    let (_sim, _replicas, west, _clock) = east_stopped().await;
    let freshness = TtlTable::default()
        .policy(DataType::Ec2Subnets)
        .freshness
        .as_secs();

    let answer = west.get("/ec2/subnets", &[("region", EAST)]).await;
    assert_eq!(answer.status(), 200, "{:?}", json(&answer));
    assert_eq!(header(&answer, "x-cache-status"), "stale");
    assert_eq!(header(&answer, "x-refresh-error"), "OwnerUnavailable");
    assert_eq!(header(&answer, "x-owner-region"), EAST);
    let age: u64 = header(&answer, "age").parse().unwrap();
    assert!(age > freshness, "age {age} past the freshness {freshness}");
    assert!(!json(&answer)["subnets"].as_array().unwrap().is_empty());

    // West's own stale data is asked for and marked as any stale answer.
    let own = west.get("/ec2/subnets", &[("region", WEST)]).await;
    assert_eq!(header(&own, "x-cache-status"), "stale");
    assert!(own.headers().get("x-owner-region").is_none());
    assert_eq!(west.requested_regions(), BTreeSet::from([WEST.to_owned()]));

    // Its tick refreshes its own region only; an invalidation of east's is
    // refused naming the owner.
    let refreshed = west.tick().await;
    assert_eq!(keys_in(&refreshed, EAST), 0, "{refreshed:?}");
    assert!(keys_in(&refreshed, WEST) > 0, "{refreshed:?}");
    let refused = west.invalidate(serde_json::json!({"region": EAST})).await;
    assert_eq!(refused.status(), 409, "{:?}", json(&refused));
    let body = json(&refused);
    assert_eq!(body["error"], "NOT_OWNED");
    assert_eq!(body["details"]["field"], "region");
    assert_eq!(body["details"]["ownerRegion"], EAST);
    assert!(west.trigger.invalidations().is_empty());
}

#[tokio::test]
async fn moving_ownership_to_the_survivor_makes_it_refresh_the_stopped_regions_targets() {
    let (sim, replicas, west, clock) = east_stopped().await;
    assert_eq!(keys_in(&west.tick().await, EAST), 0);
    // East went down in the middle of a run: the leases of its claim stand,
    // replicated, but they are east's (leases are per deployment region).
    let east = Deployment::start(&sim, &replicas, EAST, "", clock.clone()).await;
    let held = east.planner.plan(&Trigger::Schedule).await.unwrap();
    assert!(
        held.targets().iter().any(|k| k.region().as_str() == EAST),
        "{held:?}"
    );
    drop(east);
    replicas.sync().await;

    // The failover: one pair more in west's REGION_OWNERS.
    let west = Deployment::start(&sim, &replicas, WEST, "us-east-1=eu-west-1", clock.clone()).await;
    let taken = west.tick().await;
    assert!(keys_in(&taken, EAST) > 0, "{taken:?}");
    clock.catch_up(Timestamp::now());
    let answer = west.get("/ec2/subnets", &[("region", EAST)]).await;
    assert_eq!(header(&answer, "x-cache-status"), "fresh");
    assert!(answer.headers().get("x-refresh-error").is_none());
    let accepted = west.invalidate(serde_json::json!({"region": EAST})).await;
    assert_eq!(accepted.status(), 202, "{:?}", json(&accepted));

    // Moving it back: east's deployment, given the same map, leaves its
    // region to west; with the pair removed on both, east takes it again.
    let east = Deployment::start(&sim, &replicas, EAST, "us-east-1=eu-west-1", clock.clone()).await;
    replicas.sync().await;
    assert!(
        east.tick().await.is_empty(),
        "east owns nothing while the pair stands"
    );
    // It still reports every tick: each kept type surveyed with no target.
    let idle = east.planner.plan(&Trigger::Schedule).await.unwrap();
    assert_eq!(idle.freshness.len(), 3, "{:?}", idle.freshness);
    assert!(idle.freshness.iter().all(|t| t.configured_keys == 0));
    let east = Deployment::start(&sim, &replicas, EAST, "", clock.clone()).await;
    let west = Deployment::start(&sim, &replicas, WEST, "", clock.clone()).await;
    clock.advance(
        TtlTable::default()
            .policy(DataType::Ec2Subnets)
            .freshness
            .as_secs(),
    );
    let (by_east, by_west) = (east.tick().await, west.tick().await);
    assert_eq!(
        keys_in(&by_east, WEST) + keys_in(&by_west, EAST),
        0,
        "{by_east:?} {by_west:?}"
    );
    assert!(keys_in(&by_east, EAST) > 0, "{by_east:?}");
    replicas.sync().await;
    // East never wrote west's region; west wrote east's while it owned it.
    let east_wrote = replicas.written_by(EAST);
    assert!(
        east_wrote.iter().all(|k| !k.contains(WEST)),
        "{east_wrote:?}"
    );
    let west_wrote = replicas.written_by(WEST);
    assert!(
        west_wrote.contains(&format!("ec2-subnets#{EAST}#{HOME}")),
        "{west_wrote:?}"
    );
}
