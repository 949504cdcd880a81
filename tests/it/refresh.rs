//! The refresher end to end: the real AWS SDK clients read the fleet simulator
//! over HTTP, views are written to a DynamoDB table on moto, and the reader
//! serves them.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use crate::support::InSim;
use crate::support::reader::CountingStore;
use crate::support::refresh::{
    Endpoints, HOME, REGION, RecordedRefreshes, Rig, home, key, sdk_config, settings, table_store,
};
use drs_cache::{
    adapters::aws::{AccountAccess, AwsUpstream, Credentials, UpstreamConfig},
    app,
    domain::{EntryState, RefreshErrorKind, Region},
    ports::RefreshReason,
    refresh::summary::{FailureKind, Status},
    workflow::Batch,
};
use drs_sim::{AccountMatch, Faults, RegionalSelector, Service, SimConfig};
use serde_json::Value;

const ALL_KEYS: [&str; 7] = [
    "drs-source-servers#us-east-1#123456789012",
    "drs-quotas#us-east-1#123456789012",
    "drs-accounts#us-east-1#123456789012",
    "ec2-subnets#us-east-1#123456789012",
    "ec2-security-groups#us-east-1#123456789012",
    "ec2-instance-profiles#us-east-1#123456789012",
    "ec2-instance-types#us-east-1#global",
];

fn region() -> Region {
    Region::parse(REGION).unwrap()
}

fn assert_fields(record: &Value, fields: &[&str]) {
    for f in fields {
        assert!(record.get(*f).is_some(), "{f} missing in {record}");
    }
}

fn query() -> [(&'static str, &'static str); 2] {
    [("region", REGION), ("accountId", HOME)]
}

#[tokio::test]
async fn every_data_type_is_refreshed_then_served_with_its_documented_fields() {
    let rig = Rig::start(SimConfig::default()).await;
    let report = rig.refresh(&ALL_KEYS).await;
    assert_eq!(report.counts.failed, 0, "{report:#?}");
    assert_eq!(report.counts.refreshed, 7, "{report:#?}");
    // One DescribeSourceServers fed both DRS keys.
    assert_eq!(rig.sim.requests(Service::Drs, "DescribeSourceServers"), 1);
    // One metric record per key, with its reason, items and bytes.
    let metrics = rig.metrics.take();
    assert_eq!(metrics.len(), 7);
    for (reason, summary) in &metrics {
        assert_eq!(*reason, RefreshReason::Manual);
        assert!(
            summary.items > 0 && summary.bytes > 0 && summary.pages > 0,
            "{summary:?}"
        );
    }

    let servers = rig.get_json("/drs/source-servers", &query()).await;
    assert_eq!(servers["region"], REGION);
    assert_eq!(servers["serverCount"], 50);
    assert_eq!(servers["servers"].as_array().unwrap().len(), 50);
    let server = &servers["servers"][0];
    assert_fields(
        server,
        &[
            "sourceServerID",
            "hostname",
            "fqdn",
            "nameTag",
            "sourceInstanceId",
            "sourceIp",
            "os",
            "replicationState",
            "lagDuration",
            "lastSeen",
            "lastLaunchResult",
            "stagingStatus",
            "hardware",
            "tags",
        ],
    );
    assert!(server["sourceServerID"].as_str().unwrap().starts_with("s-"));
    assert!(server["hostname"].is_string());
    assert!(server["hardware"]["totalCores"].as_u64().unwrap() > 0);
    assert!(server["hardware"]["ramGiB"].as_f64().unwrap() > 0.0);

    let quotas = rig.get_json("/drs/quotas", &query()).await;
    assert_eq!(quotas["accountId"], HOME);
    assert_eq!(quotas["totalSourceServers"], 50);
    assert_eq!(quotas["maxReplicatingServers"], 300);
    assert_eq!(quotas["maxSourceServers"], 4000);
    let replicating = quotas["replicatingServers"].as_u64().unwrap();
    assert_eq!(
        quotas["availableReplicatingSlots"].as_u64().unwrap(),
        300 - replicating
    );
    let by_state = quotas["serversByReplicationState"].as_object().unwrap();
    assert_eq!(
        by_state.values().map(|v| v.as_u64().unwrap()).sum::<u64>(),
        50
    );
    assert_eq!(quotas["status"], "OK");
    // Recount from the served servers: replicating = local servers in a
    // replicating state.
    let expected = servers["servers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["stagingStatus"] != "EXTENDED")
        .filter(|s| {
            [
                "CONTINUOUS",
                "INITIAL_SYNC",
                "RESCAN",
                "INITIATING",
                "CREATING_SNAPSHOT",
                "BACKLOG",
            ]
            .contains(&s["replicationState"].as_str().unwrap_or_default())
        })
        .count() as u64;
    assert_eq!(replicating, expected);

    let accounts = rig.get_json("/drs/accounts", &query()).await;
    assert!(accounts["count"].as_u64().unwrap() > 0);
    assert_fields(&accounts["accounts"][0], &["accountId"]);

    let subnets = rig.get_json("/ec2/subnets", &query()).await;
    assert_eq!(subnets["count"], 12);
    assert_fields(
        &subnets["subnets"][0],
        &[
            "subnetId",
            "subnetName",
            "vpcId",
            "cidrBlock",
            "availabilityZone",
            "availableIpAddressCount",
            "tags",
        ],
    );
    let vpc = subnets["subnets"][0]["vpcId"].as_str().unwrap().to_owned();
    let in_vpc = rig
        .get_json("/ec2/subnets", &[("region", REGION), ("vpcId", &vpc)])
        .await;
    assert!(in_vpc["count"].as_u64().unwrap() >= 1);

    let groups = rig.get_json("/ec2/security-groups", &query()).await;
    assert_eq!(groups["count"], 20);
    assert_fields(
        &groups["securityGroups"][0],
        &["groupId", "groupName", "description", "vpcId"],
    );

    let profiles = rig.get_json("/ec2/instance-profiles", &query()).await;
    assert_eq!(profiles["count"], 25);
    assert_fields(
        &profiles["instanceProfiles"][0],
        &["instanceProfileName", "instanceProfileArn", "roles"],
    );
    assert!(
        profiles["instanceProfiles"][0]["instanceProfileArn"]
            .as_str()
            .unwrap()
            .contains(HOME)
    );

    let types = rig
        .get_json("/ec2/instance-types", &[("region", REGION)])
        .await;
    let count = types["count"].as_u64().unwrap();
    assert!((800..=1400).contains(&count), "{count} instance types");
    assert_fields(
        &types["instanceTypes"][0],
        &[
            "instanceType",
            "vcpus",
            "memoryMiB",
            "instanceFamily",
            "networkPerformance",
        ],
    );
    let m5 = rig
        .get_json(
            "/ec2/instance-types",
            &[("region", REGION), ("instanceFamily", "m5")],
        )
        .await;
    assert!(m5["count"].as_u64().unwrap() > 0);
    for t in m5["instanceTypes"].as_array().unwrap() {
        assert!(t["instanceType"].as_str().unwrap().starts_with("m5."));
    }
}

#[tokio::test]
async fn every_listing_is_read_through_all_of_its_pages() {
    let rig = Rig::start(SimConfig {
        max_page_size: 7,
        ..SimConfig::default()
    })
    .await;
    let report = rig.refresh(&ALL_KEYS).await;
    assert_eq!(report.counts.failed, 0, "{report:#?}");
    let pages = |k: &str| {
        report
            .results
            .iter()
            .find(|r| r.cache_key == key(k))
            .unwrap()
            .pages
    };
    // 50 servers, 12 subnets, 20 groups, 25 profiles in pages of 7.
    assert_eq!(pages(ALL_KEYS[0]), 8);
    assert_eq!(pages(ALL_KEYS[3]), 2);
    assert_eq!(pages(ALL_KEYS[4]), 3);
    assert_eq!(pages(ALL_KEYS[5]), 4);
    assert!(pages(ALL_KEYS[6]) > 100);
    assert_eq!(rig.sim.requests(Service::Drs, "DescribeSourceServers"), 8);
    assert_eq!(rig.sim.requests(Service::Iam, "ListInstanceProfiles"), 4);

    // Every record of every page made it into the views, once.
    let servers = rig.get_json("/drs/source-servers", &query()).await;
    let mut ids: Vec<&str> = servers["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["sourceServerID"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 50);
    let profiles = rig.get_json("/ec2/instance-profiles", &query()).await;
    assert_eq!(profiles["count"], 25);
}

#[tokio::test]
async fn an_unchanged_upstream_only_extends_and_a_change_rewrites() {
    let rig = Rig::start(SimConfig::default()).await;
    let servers = "drs-source-servers#us-east-1#123456789012";
    let first = rig.refresh(&[servers]).await;
    assert_eq!(first.counts.refreshed, 2);
    let before = rig.store.get(&key(servers)).await.unwrap().unwrap();

    let again = rig.refresh(&[servers]).await;
    assert_eq!(again.counts.unchanged, 2, "{again:#?}");
    assert!(again.results.iter().all(|r| !r.changed));
    let extended = rig.store.get(&key(servers)).await.unwrap().unwrap();
    assert_eq!(extended.body, before.body);
    assert!(extended.meta.version > before.meta.version);
    assert_eq!(extended.meta.created_at, before.meta.created_at);

    rig.sim.bump_generation(home().sim(), &region().sim());
    let changed = rig.refresh(&[servers]).await;
    let summary = &changed.results[0];
    assert_eq!(summary.status, Status::Refreshed, "{changed:#?}");
    assert!(summary.changed);
    let rewritten = rig.store.get(&key(servers)).await.unwrap().unwrap();
    assert_ne!(rewritten.body, before.body);
}

#[tokio::test]
async fn a_throttled_call_waits_for_retry_after_and_then_succeeds() {
    let rig = Rig::start(SimConfig::default()).await;
    rig.sim
        .set_faults(Faults {
            throttle_next: 2,
            retry_after_secs: 1,
            ..Faults::default()
        })
        .unwrap();
    let started = Instant::now();
    let report = rig.refresh(&["drs-accounts#us-east-1#123456789012"]).await;
    assert_eq!(report.counts.refreshed, 1, "{report:#?}");
    assert_eq!(rig.sim.requests(Service::Drs, "ListStagingAccounts"), 3);
    // Two answers asked for one second each.
    assert!(started.elapsed() >= Duration::from_secs(2));
}

#[tokio::test]
async fn throttling_past_every_attempt_is_recorded_and_keeps_the_cached_data() {
    let rig = Rig::start(SimConfig::default()).await;
    let subnets = "ec2-subnets#us-east-1#123456789012";
    assert_eq!(rig.refresh(&[subnets]).await.counts.refreshed, 1);
    let cached = rig.store.get(&key(subnets)).await.unwrap().unwrap();
    rig.sim
        .set_faults(Faults {
            throttle_next: 10,
            retry_after_secs: 0,
            ..Faults::default()
        })
        .unwrap();
    let report = rig.refresh(&[subnets]).await;
    assert_eq!(report.counts.failed, 1);
    assert_eq!(
        report.results[0].error.as_ref().map(|e| e.kind),
        Some(FailureKind::Upstream(RefreshErrorKind::Throttled))
    );
    let after = rig.store.get(&key(subnets)).await.unwrap().unwrap();
    assert_eq!(after.body, cached.body);
    assert_eq!(after.meta.version, cached.meta.version);
    let failure = after.meta.last_attempt.unwrap().failure.unwrap();
    assert_eq!(failure.kind, RefreshErrorKind::Throttled);
}

#[tokio::test]
async fn a_region_where_drs_is_not_initialized_is_stored_as_that_state() {
    let rig = Rig::start(SimConfig {
        faults: Faults {
            not_initialized: vec![RegionalSelector {
                account: AccountMatch::Any,
                region: region().sim(),
            }],
            ..Faults::default()
        },
        ..SimConfig::default()
    })
    .await;
    let report = rig
        .refresh(&[
            "drs-quotas#us-east-1#123456789012",
            "drs-accounts#us-east-1#123456789012",
            "ec2-subnets#us-east-1#123456789012",
        ])
        .await;
    assert_eq!(report.counts.not_initialized, 3, "{report:#?}");
    assert_eq!(report.counts.refreshed, 1);
    assert!(
        report.results.iter().all(|r| r.error.is_none()),
        "{report:#?}"
    );
    let entry = rig
        .store
        .get(&key("drs-quotas#us-east-1#123456789012"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entry.meta.state, EntryState::DrsNotInitialized);
    let response = rig.get("/drs/quotas", &query()).await;
    assert_eq!(response.status(), 409);
    let body: Value = serde_json::from_slice(response.body()).unwrap();
    assert_eq!(body["error"], "DRS_NOT_INITIALIZED");
    // EC2 is not affected.
    rig.get_json("/ec2/subnets", &query()).await;
}

#[tokio::test]
async fn access_denied_is_recorded_without_touching_the_cached_data() {
    let rig = Rig::start(SimConfig::default()).await;
    let keys = [
        "drs-source-servers#us-east-1#123456789012",
        "ec2-security-groups#us-east-1#123456789012",
    ];
    assert_eq!(rig.refresh(&keys).await.counts.refreshed, 3);
    let cached = rig.store.get(&key(keys[0])).await.unwrap().unwrap();
    rig.sim
        .update(|c| c.faults.access_denied = vec![home().sim()])
        .unwrap();
    let report = rig.refresh(&keys).await;
    assert_eq!(report.counts.failed, 3, "{report:#?}");
    for r in &report.results {
        let error = r.error.as_ref().unwrap();
        assert_eq!(
            error.kind,
            FailureKind::Upstream(RefreshErrorKind::AccessDenied)
        );
    }
    let entry = rig.store.get(&key(keys[0])).await.unwrap().unwrap();
    assert_eq!(entry.meta.state, EntryState::Ready);
    assert_eq!(entry.body, cached.body);
    assert_eq!(entry.meta.version, cached.meta.version);
    assert_eq!(
        entry.meta.last_attempt.unwrap().failure.unwrap().kind,
        RefreshErrorKind::AccessDenied
    );
    // The reader still serves the data, and says the last refresh failed.
    let response = rig.get("/drs/source-servers", &query()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-refresh-error"], "AccessDenied");
    assert_eq!(response.body(), &cached.body);
}

#[tokio::test]
async fn a_region_that_is_not_enabled_is_reported_as_such() {
    let rig = Rig::start(SimConfig {
        faults: Faults {
            disabled_regions: vec![drs_sim::Region::parse("ap-east-1").unwrap()],
            ..Faults::default()
        },
        ..SimConfig::default()
    })
    .await;
    let report = rig
        .refresh(&[
            "ec2-subnets#ap-east-1#123456789012",
            "drs-accounts#ap-east-1#123456789012",
        ])
        .await;
    assert_eq!(report.counts.failed, 2, "{report:#?}");
    for result in &report.results {
        assert_eq!(
            result.error.as_ref().map(|e| e.kind),
            Some(FailureKind::Upstream(RefreshErrorKind::RegionNotEnabled)),
            "{result:?}"
        );
    }
}

#[tokio::test]
async fn a_refresh_that_started_earlier_never_replaces_one_that_started_later() {
    let rig = Rig::start(SimConfig::default()).await;
    let servers = "drs-source-servers#us-east-1#123456789012";
    // A starts first and its answer (generation 0) is held at the simulator.
    let hold = rig.sim.hold_next(1);
    let targets = [servers];
    let early = rig.refresh(&targets);
    let (early_report, late) = tokio::join!(early, async {
        hold.wait_arrived(1).await;
        // B starts later, sees generation 1, and finishes first.
        rig.sim.bump_generation(home().sim(), &region().sim());
        let late = rig.refresh(&[servers]).await;
        hold.release();
        late
    });
    assert_eq!(late.counts.refreshed, 2, "{late:#?}");
    assert_eq!(early_report.counts.superseded, 2, "{early_report:#?}");
    // B's data is in place: what generation 1 answers now.
    let stored = rig.store.get(&key(servers)).await.unwrap().unwrap();
    let check = rig.refresh(&[servers]).await;
    assert_eq!(check.counts.unchanged, 2, "{check:#?}");
    let after = rig.store.get(&key(servers)).await.unwrap().unwrap();
    assert_eq!(after.body, stored.body);
}

#[tokio::test]
async fn four_thousand_source_servers_round_trip_through_store_and_reader() {
    let rig = Rig::start(SimConfig::default()).await;
    rig.sim
        .set_servers(home().sim(), &region().sim(), 4000)
        .unwrap();
    let report = rig
        .refresh(&["drs-source-servers#us-east-1#123456789012"])
        .await;
    assert_eq!(report.counts.refreshed, 2, "{report:#?}");
    let summary = &report.results[0];
    assert_eq!(summary.items, 4000);
    assert!(summary.bytes > 400 * 1024, "{} bytes", summary.bytes);
    let response = rig.get("/drs/source-servers", &query()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.body().len() as u64, summary.bytes);
    let served: Value = serde_json::from_slice(response.body()).unwrap();
    assert_eq!(served["serverCount"], 4000);
    assert_eq!(served["servers"].as_array().unwrap().len(), 4000);
    let quotas = rig.get_json("/drs/quotas", &query()).await;
    assert_eq!(quotas["totalSourceServers"], 4000);
    // Far more than 300 servers replicate: no slot is left.
    assert_eq!(quotas["status"], "CRITICAL");
    assert_eq!(quotas["availableReplicatingSlots"], 0);
}

/// A refresher over `store`, reading the rig's simulator in the home account.
async fn refresher_over(rig: &Rig, store: Arc<CountingStore>) -> drs_cache::refresh::Refresher {
    let base = sdk_config(&rig.sim.endpoint(), Endpoints::default()).await;
    let access = AccountAccess {
        own_account: Some(home()),
        others: Credentials::Static(Default::default()),
    };
    let upstream = AwsUpstream::new(base, access, UpstreamConfig::default()).unwrap();
    app::refresher_over(
        store.clone(),
        store,
        upstream,
        settings(),
        Arc::new(RecordedRefreshes::default()),
    )
}

#[tokio::test]
async fn a_target_retried_for_one_failed_write_counts_each_of_its_keys_once() {
    let rig = Rig::start(SimConfig::default()).await;
    let flaky = Arc::new(CountingStore::new(table_store().await));
    let refresher = refresher_over(&rig, flaky.clone()).await;
    // The quotas target writes the source servers and the quotas from one
    // listing; every write of the first of them fails, the second is written.
    flaky.fail_next_puts(3);
    let targets = vec![key("drs-quotas#us-east-1#123456789012")];
    let first = refresher
        .refresh_round(&Batch::of(RefreshReason::Manual, &targets), targets.clone())
        .await
        .unwrap();
    let failed: Vec<_> = first
        .report
        .results
        .iter()
        .filter(|r| r.error.is_some())
        .collect();
    assert_eq!(failed.len(), 1, "{:?}", first.report);
    let retry = first.retry.expect("the target failed in passing");
    assert_eq!(retry.targets, targets);
    assert!(
        first.counts.is_zero(),
        "counted in the round that ends it: {:?}",
        first.counts
    );
    // The next round writes both again, and each is counted once.
    let second = refresher
        .refresh_round(&retry.batch, retry.targets)
        .await
        .unwrap();
    assert!(second.retry.is_none());
    assert_eq!(
        second.counts.refreshed + second.counts.unchanged,
        2,
        "{:?}",
        second.counts
    );
    assert_eq!(second.counts.failed, 0);
    assert_eq!(rig.sim.requests(Service::Drs, "DescribeSourceServers"), 2);
}

#[tokio::test]
async fn a_failed_store_write_is_written_again_without_fetching_again() {
    let rig = Rig::start(SimConfig::default()).await;
    for (failures, status, puts) in [(2, Status::Refreshed, 3), (5, Status::Failed, 3)] {
        let flaky = Arc::new(CountingStore::new(table_store().await));
        flaky.fail_next_puts(failures);
        let refresher = refresher_over(&rig, flaky.clone()).await;
        let before = rig.sim.requests(Service::Drs, "ListStagingAccounts");
        let report = refresher
            .refresh(
                &[key("drs-accounts#us-east-1#123456789012")],
                RefreshReason::Manual,
            )
            .await;
        assert_eq!(report.results[0].status, status, "{failures} failures");
        assert_eq!(flaky.puts(), puts, "{failures} failures");
        assert_eq!(
            rig.sim.requests(Service::Drs, "ListStagingAccounts") - before,
            1,
            "fetched once, written {puts} times"
        );
    }
}

/// Keeps the change events a refresher publishes; refuses them all when
/// told to, as an unreachable bus would.
#[derive(Default)]
struct RecordedChanges {
    events: std::sync::Mutex<Vec<drs_cache::domain::changes::ChangeEvent>>,
    refuse: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl drs_cache::ports::ChangeFeed for RecordedChanges {
    async fn publish(
        &self,
        events: &[drs_cache::domain::changes::ChangeEvent],
    ) -> drs_cache::ports::PublishOutcome {
        if self.refuse.load(std::sync::atomic::Ordering::SeqCst) {
            return drs_cache::ports::PublishOutcome {
                published: 0,
                failed: events.len(),
            };
        }
        self.events.lock().unwrap().extend_from_slice(events);
        drs_cache::ports::PublishOutcome {
            published: events.len(),
            failed: 0,
        }
    }
}

#[tokio::test]
async fn a_refresh_that_changes_a_snapshot_publishes_what_changed_and_an_unchanged_one_nothing() {
    let rig = Rig::start(SimConfig::default()).await;
    let feed = Arc::new(RecordedChanges::default());
    let base = sdk_config(&rig.sim.endpoint(), Endpoints::default()).await;
    let access = AccountAccess {
        own_account: Some(home()),
        others: Credentials::Static(Default::default()),
    };
    let upstream = AwsUpstream::new(base, access, UpstreamConfig::default()).unwrap();
    let refresher = app::refresher_over(
        rig.store.clone(),
        rig.store.clone(),
        upstream,
        settings(),
        Arc::new(RecordedRefreshes::default()),
    )
    .with_change_feed(drs_cache::refresh::ChangePublishing {
        reads: rig.store.clone(),
        feed: feed.clone(),
    });
    let servers = [key("drs-source-servers#us-east-1#123456789012")];
    // A first write has nothing to compare with; an unchanged one, nothing
    // that changed.
    for _ in 0..2 {
        let report = refresher.refresh(&servers, RefreshReason::Manual).await;
        assert_eq!(report.counts.failed, 0, "{report:#?}");
        assert!(report.results.iter().all(|r| r.events_published == 0));
    }
    assert!(feed.events.lock().unwrap().is_empty());

    // Three servers more: one event naming them, counted on the key.
    let before = rig
        .store
        .get(&servers[0])
        .await
        .unwrap()
        .unwrap()
        .meta
        .item_count;
    rig.sim
        .set_servers(home().sim(), &region().sim(), before as u32 + 3)
        .unwrap();
    let report = refresher.refresh(&servers, RefreshReason::Manual).await;
    let events = std::mem::take(&mut *feed.events.lock().unwrap());
    let added: Vec<_> = events
        .iter()
        .filter(|e| e.detail_type == drs_cache::domain::changes::SOURCE_SERVERS_CHANGED)
        .collect();
    assert_eq!(added.len(), 1, "{events:#?}");
    assert_eq!(added[0].detail["addedCount"], 3, "{:#}", added[0].detail);
    assert_eq!(added[0].detail["removedCount"], 0);
    assert_eq!(added[0].key, servers[0]);
    let summary = report
        .results
        .iter()
        .find(|r| r.cache_key == servers[0])
        .unwrap();
    assert_eq!(summary.events_published, events.len() as u64);

    // A feed that refuses every event never fails the write: the new body is
    // stored and the events are counted as failed.
    feed.refuse.store(true, std::sync::atomic::Ordering::SeqCst);
    rig.sim
        .set_servers(home().sim(), &region().sim(), before as u32)
        .unwrap();
    let report = refresher.refresh(&servers, RefreshReason::Manual).await;
    assert_eq!(report.counts.failed, 0, "{report:#?}");
    let summary = report
        .results
        .iter()
        .find(|r| r.cache_key == servers[0])
        .unwrap();
    assert_eq!(summary.status, Status::Refreshed);
    assert!(summary.events_failed >= 1, "{summary:?}");
    let stored = rig.store.get(&servers[0]).await.unwrap().unwrap();
    assert_eq!(stored.meta.item_count, before);
}
