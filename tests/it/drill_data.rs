//! The data a drill reads: DRS jobs, recovery instances and source networks,
//! fetched from the fleet simulator through the real SDK, written to a
//! DynamoDB table on moto, served by the reader, and refreshed by the events
//! that change them.

use std::collections::BTreeSet;

use crate::support::InSim;
use crate::support::refresh::{HOME, REGION, Rig, home, key};
use drs_cache::domain::{EntryState, RefreshErrorKind};
use drs_cache::{
    domain::{CacheKey, Region},
    plan::{Trigger, trigger},
};
use drs_sim::{AccountMatch, Change, Faults, RegionalSelector, Service, SimConfig};
use serde_json::Value;

const JOBS: &str = "drs-jobs#us-east-1#123456789012";
const INSTANCES: &str = "drs-recovery-instances#us-east-1#123456789012";
const NETWORKS: &str = "drs-source-networks#us-east-1#123456789012";
const SERVERS: &str = "drs-source-servers#us-east-1#123456789012";

fn query() -> [(&'static str, &'static str); 2] {
    [("region", REGION), ("accountId", HOME)]
}

fn assert_fields(record: &Value, fields: &[&str]) {
    for f in fields {
        assert!(record.get(*f).is_some(), "{f} missing in {record}");
    }
}

fn list<'a>(doc: &'a Value, field: &str) -> &'a Vec<Value> {
    doc[field]
        .as_array()
        .unwrap_or_else(|| panic!("{field} in {doc}"))
}

fn ids(records: &[Value], id: &str) -> BTreeSet<String> {
    records
        .iter()
        .map(|r| r[id].as_str().unwrap().to_owned())
        .collect()
}

/// The keys a simulated change refreshes, as the planner reads its event.
fn refreshed_by(event: &Value) -> Vec<CacheKey> {
    match trigger::parse(event, home()).unwrap() {
        Trigger::Change {
            account,
            region,
            data_types,
        } => data_types
            .into_iter()
            .map(|t| CacheKey::new(t, region.clone(), account))
            .collect(),
        Trigger::Launched { account, region } => trigger::drs_changes(trigger::LAUNCH_RESULT)
            .iter()
            .map(|t| CacheKey::new(*t, region.clone(), account))
            .collect(),
        other => panic!("{event} planned as {other:?}"),
    }
}

#[tokio::test]
async fn jobs_recovery_instances_and_source_networks_are_served_with_their_documented_fields() {
    let rig = Rig::start(SimConfig::default()).await;
    let report = rig.refresh(&[JOBS, INSTANCES, NETWORKS, SERVERS]).await;
    assert_eq!(report.counts.failed, 0, "{report:#?}");
    // The source-server fetch writes its quota view too.
    assert_eq!(report.counts.refreshed, 5, "{report:#?}");

    let jobs = rig.get_json("/drs/jobs", &query()).await;
    let all_jobs = list(&jobs, "jobs");
    assert!(!all_jobs.is_empty(), "{jobs}");
    assert_eq!(jobs["count"], all_jobs.len());
    for job in all_jobs {
        assert_fields(
            job,
            &[
                "jobID",
                "type",
                "status",
                "initiatedBy",
                "creationDateTime",
                "participatingServers",
            ],
        );
    }
    // The counts DRS's limits apply to, recounted from the served jobs.
    let active: Vec<&Value> = all_jobs
        .iter()
        .filter(|j| matches!(j["status"].as_str(), Some("PENDING" | "STARTED")))
        .collect();
    assert_eq!(jobs["activeJobs"], active.len());
    let in_active: usize = active
        .iter()
        .map(|j| list(j, "participatingServers").len())
        .sum();
    assert_eq!(jobs["serversInActiveJobs"], in_active);
    let finished = all_jobs
        .iter()
        .find(|j| j["status"] == "COMPLETED")
        .unwrap();
    assert!(finished["endDateTime"].is_string(), "{finished}");

    let instances = rig.get_json("/drs/recovery-instances", &query()).await;
    let all_instances = list(&instances, "recoveryInstances");
    assert!(!all_instances.is_empty(), "{instances}");
    for instance in all_instances {
        assert_fields(
            instance,
            &[
                "recoveryInstanceID",
                "sourceServerID",
                "ec2InstanceID",
                "ec2InstanceState",
                "jobID",
                "isDrill",
                "failbackState",
                "pointInTimeSnapshotDateTime",
                "tags",
            ],
        );
    }
    // Consistent with the servers and the jobs: each instance is of a
    // served server and was launched by a served job.
    let servers = rig.get_json("/drs/source-servers", &query()).await;
    let server_ids = ids(list(&servers, "servers"), "sourceServerID");
    let job_ids = ids(all_jobs, "jobID");
    for instance in all_instances {
        assert!(server_ids.contains(instance["sourceServerID"].as_str().unwrap()));
        assert!(
            job_ids.contains(instance["jobID"].as_str().unwrap()),
            "{instance}"
        );
    }

    let networks = rig.get_json("/drs/source-networks", &query()).await;
    let all_networks = list(&networks, "sourceNetworks");
    assert!(!all_networks.is_empty(), "{networks}");
    for network in all_networks {
        assert_fields(
            network,
            &[
                "sourceNetworkID",
                "sourceVpcID",
                "sourceAccountID",
                "sourceRegion",
                "replicationStatus",
                "tags",
            ],
        );
    }

    // Filters: a server's jobs and instances, jobs by status, drills.
    let server = all_instances[0]["sourceServerID"].as_str().unwrap();
    let of_server = [("region", REGION), ("sourceServerId", server)];
    let its_jobs = rig.get_json("/drs/jobs", &of_server).await;
    assert!(its_jobs["count"].as_u64().unwrap() >= 1);
    for job in list(&its_jobs, "jobs") {
        let held = ids(list(job, "participatingServers"), "sourceServerID");
        assert!(held.contains(server), "{job}");
    }
    let its_instances = rig.get_json("/drs/recovery-instances", &of_server).await;
    for instance in list(&its_instances, "recoveryInstances") {
        assert_eq!(instance["sourceServerID"], server);
    }
    let completed = rig
        .get_json("/drs/jobs", &[("region", REGION), ("status", "COMPLETED")])
        .await;
    assert_eq!(
        completed["count"],
        all_jobs
            .iter()
            .filter(|j| j["status"] == "COMPLETED")
            .count()
    );
    let drills = rig
        .get_json(
            "/drs/recovery-instances",
            &[("region", REGION), ("isDrill", "true")],
        )
        .await;
    for instance in list(&drills, "recoveryInstances") {
        assert_eq!(instance["isDrill"], true);
    }

    // A filter value that cannot be is refused, naming the field.
    let refused = rig
        .get("/drs/jobs", &[("region", REGION), ("status", "RUNNING")])
        .await;
    assert_eq!(refused.status(), 400);
    let body: Value = serde_json::from_slice(refused.body()).unwrap();
    assert_eq!(body["details"]["field"], "status", "{body}");
}

#[tokio::test]
async fn drill_data_is_read_through_every_page() {
    let whole = Rig::start(SimConfig::default()).await;
    whole.refresh(&[JOBS, INSTANCES, NETWORKS]).await;
    let paged = Rig::start(SimConfig {
        max_page_size: 2,
        ..SimConfig::default()
    })
    .await;
    let report = paged.refresh(&[JOBS, INSTANCES, NETWORKS]).await;
    assert_eq!(report.counts.failed, 0, "{report:#?}");
    for (path, field, id, operation) in [
        ("/drs/jobs", "jobs", "jobID", "DescribeJobs"),
        (
            "/drs/recovery-instances",
            "recoveryInstances",
            "recoveryInstanceID",
            "DescribeRecoveryInstances",
        ),
        (
            "/drs/source-networks",
            "sourceNetworks",
            "sourceNetworkID",
            "DescribeSourceNetworks",
        ),
    ] {
        let expected = whole.get_json(path, &query()).await;
        let served = paged.get_json(path, &query()).await;
        let records = list(&served, field);
        assert_eq!(served["count"], expected["count"], "{path}");
        // Every record of every page, once.
        assert_eq!(ids(records, id).len(), records.len(), "{path}");
        assert_eq!(ids(records, id), ids(list(&expected, field), id), "{path}");
        let pages = paged.sim.requests(Service::Drs, operation);
        assert_eq!(pages, (records.len() as u64).div_ceil(2).max(1), "{path}");
        assert!(pages > 1, "{path}: {} records in one page", records.len());
    }
}

#[tokio::test]
async fn a_launch_result_refreshes_the_jobs_and_recovery_instances_it_changed() {
    let rig = Rig::start(SimConfig::default()).await;
    rig.refresh(&[JOBS, INSTANCES, SERVERS]).await;
    let region = Region::parse(REGION).unwrap();
    let launch = rig
        .sim
        .apply(
            Change::Launch {
                pick: 3,
                drill: false,
                succeeded: true,
            },
            &home().sim(),
            &region.sim(),
            std::time::SystemTime::now(),
        )
        .unwrap();
    let server = launch.resource.clone().unwrap();
    let job_id = launch.event["detail"]["job-id"]
        .as_str()
        .unwrap()
        .to_owned();
    // (Nothing is read before the refresh: the reader's memory tier would
    // keep serving what it read while it is fresh.)
    let keys = refreshed_by(&launch.event);
    for wanted in [JOBS, INSTANCES, SERVERS] {
        assert!(keys.contains(&key(wanted)), "{wanted} not in {keys:?}");
    }
    let raw: Vec<String> = keys.iter().map(ToString::to_string).collect();
    let raw: Vec<&str> = raw.iter().map(String::as_str).collect();
    let report = rig.refresh(&raw).await;
    assert_eq!(report.counts.failed, 0, "{report:#?}");

    let jobs = rig
        .get_json(
            "/drs/jobs",
            &[("region", REGION), ("sourceServerId", &server)],
        )
        .await;
    let job = list(&jobs, "jobs")
        .iter()
        .find(|j| j["jobID"] == job_id.as_str())
        .unwrap_or_else(|| panic!("{job_id} not served: {jobs}"));
    assert_eq!(job["initiatedBy"], "START_RECOVERY");
    let instances = rig
        .get_json(
            "/drs/recovery-instances",
            &[("region", REGION), ("sourceServerId", &server)],
        )
        .await;
    let launched = list(&instances, "recoveryInstances")
        .iter()
        .find(|i| i["jobID"] == job_id.as_str())
        .unwrap_or_else(|| panic!("no instance of {job_id}: {instances}"));
    assert_eq!(launched["isDrill"], false);
}

#[tokio::test]
async fn a_source_network_status_change_refreshes_the_source_networks() {
    let rig = Rig::start(SimConfig::default()).await;
    rig.refresh(&[NETWORKS]).await;
    let region = Region::parse(REGION).unwrap();
    let change = rig
        .sim
        .apply(
            Change::SourceNetworkStatus { pick: 0 },
            &home().sim(),
            &region.sim(),
            std::time::SystemTime::now(),
        )
        .unwrap();
    let network = change.resource.clone().unwrap();
    let status = |doc: &Value| {
        list(doc, "sourceNetworks")
            .iter()
            .find(|n| n["sourceNetworkID"] == network.as_str())
            .map(|n| n["replicationStatus"].clone())
            .unwrap()
    };
    let keys = refreshed_by(&change.event);
    assert_eq!(keys, [key(NETWORKS)]);
    let report = rig.refresh(&[NETWORKS]).await;
    assert_eq!(report.counts.refreshed, 1, "{report:#?}");
    let after = rig.get_json("/drs/source-networks", &query()).await;
    assert_ne!(status(&after), change.event["detail"]["previousState"]);
    assert_eq!(
        status(&after),
        change.event["detail"]["state"],
        "{}",
        change.event
    );
}

#[tokio::test]
async fn a_failback_state_change_refreshes_the_recovery_instances() {
    // A fleet large enough to hold recovery instances whose failback can move on.
    let rig = Rig::start(SimConfig {
        defaults: drs_sim::FleetSize {
            servers: 150,
            ..drs_sim::FleetSize::default()
        },
        ..SimConfig::default()
    })
    .await;
    let region = Region::parse(REGION).unwrap();
    let change = rig
        .sim
        .apply(
            Change::FailbackState { pick: 0 },
            &home().sim(),
            &region.sim(),
            std::time::SystemTime::now(),
        )
        .unwrap();
    assert_eq!(
        change.event["detail-type"],
        "DRS Recovery Instance Failback State Change"
    );
    let instance = change.resource.clone().unwrap();
    let keys = refreshed_by(&change.event);
    assert!(keys.contains(&key(INSTANCES)), "{keys:?}");
    let report = rig.refresh(&[INSTANCES]).await;
    assert_eq!(report.counts.failed, 0, "{report:#?}");
    let served = rig.get_json("/drs/recovery-instances", &query()).await;
    let record = list(&served, "recoveryInstances")
        .iter()
        .find(|i| i["recoveryInstanceID"] == instance.as_str())
        .unwrap_or_else(|| panic!("{instance} not served"));
    assert_eq!(record["failbackState"], change.event["detail"]["state"]);
    assert_eq!(record["isDrill"], false);
}

#[tokio::test]
async fn throttling_keeps_the_cached_drill_data_and_an_uninitialized_region_is_that_state() {
    let rig = Rig::start(SimConfig::default()).await;
    let keys = [JOBS, INSTANCES, NETWORKS];
    assert_eq!(rig.refresh(&keys).await.counts.refreshed, 3);
    let cached = rig.store.get(&key(JOBS)).await.unwrap().unwrap();
    rig.sim
        .set_faults(Faults {
            throttle_next: 30,
            retry_after_secs: 0,
            ..Faults::default()
        })
        .unwrap();
    let report = rig.refresh(&keys).await;
    assert_eq!(report.counts.failed, 3, "{report:#?}");
    let after = rig.store.get(&key(JOBS)).await.unwrap().unwrap();
    assert_eq!(after.body, cached.body);
    let failure = after.meta.last_attempt.unwrap().failure.unwrap();
    assert_eq!(failure.kind, RefreshErrorKind::Throttled);
    let served = rig.get("/drs/jobs", &query()).await;
    assert_eq!(served.status(), 200);
    assert_eq!(served.headers()["x-refresh-error"], "Throttled");

    let uninitialized = Rig::start(SimConfig {
        faults: Faults {
            not_initialized: vec![RegionalSelector {
                account: AccountMatch::Any,
                region: Region::parse(REGION).unwrap().sim(),
            }],
            ..Faults::default()
        },
        ..SimConfig::default()
    })
    .await;
    let report = uninitialized.refresh(&keys).await;
    assert_eq!(report.counts.not_initialized, 3, "{report:#?}");
    for k in keys {
        let entry = uninitialized.store.get(&key(k)).await.unwrap().unwrap();
        assert_eq!(entry.meta.state, EntryState::DrsNotInitialized, "{k}");
    }
    assert_eq!(
        uninitialized
            .get("/drs/recovery-instances", &query())
            .await
            .status(),
        409
    );
}
