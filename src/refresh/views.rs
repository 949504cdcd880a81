//! The documents the reader serves, built from upstream records and serialized
//! once per refresh.

use bytes::Bytes;
use serde::{Serialize, ser::SerializeMap};

use crate::domain::{
    AccountId, DataType, Figure, Figures, Region,
    capacity::{Capacity, QuotaThresholds},
    inventory::{Job, RecoveryInstance, SourceServer},
};

/// A serialized view, the number of records in it, and the figures the fleet
/// capacity sums from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub body: Bytes,
    pub items: u64,
    pub figures: Figures,
}

/// The view of a record list: `{"<list>": [...], "<count>": n}` with the list and
/// count fields of `data_type` (plus `region` for source servers, as the API
/// documents). Quotas, which have no record list, are built by [`quotas`].
pub fn list<T: Serialize>(data_type: DataType, region: &Region, records: &[T]) -> View {
    debug_assert!(
        data_type.record_list().is_some(),
        "{data_type} is not a list"
    );
    let (list_field, count_field) = data_type.record_list().unwrap_or(("items", "count"));
    let document = ListDocument {
        list_field,
        count_field,
        region: (data_type == DataType::DrsSourceServers).then_some(region.as_str()),
        records,
    };
    View {
        body: to_bytes(&document),
        items: records.len() as u64,
        figures: Figures::default(),
    }
}

/// The recovery-instance list, with how many of the instances drills launched.
pub fn recovery_instances(region: &Region, instances: &[RecoveryInstance]) -> View {
    let drills = instances.iter().filter(|i| i.is_drill).count() as u64;
    View {
        figures: Figures::default().with(Figure::DrillInstances, drills),
        ..list(DataType::DrsRecoveryInstances, region, instances)
    }
}

struct ListDocument<'a, T> {
    list_field: &'static str,
    count_field: &'static str,
    region: Option<&'a str>,
    records: &'a [T],
}

impl<T: Serialize> Serialize for ListDocument<'_, T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry(self.list_field, self.records)?;
        if let Some(region) = self.region {
            map.serialize_entry("region", region)?;
        }
        map.serialize_entry(self.count_field, &self.records.len())?;
        map.end()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct QuotaDocument<'a> {
    account_id: &'a str,
    region: &'a str,
    total_source_servers: u64,
    replicating_servers: u64,
    max_replicating_servers: u64,
    max_source_servers: u64,
    available_replicating_slots: u64,
    utilization_percent: f64,
    status: &'static str,
    extended_servers: u64,
    servers_by_replication_state: &'a std::collections::BTreeMap<String, u64>,
}

/// The replication capacity view of one account and region, computed from the
/// same servers as the source-server view.
pub fn quotas(
    account: &AccountId,
    region: &Region,
    servers: &[SourceServer],
    limits: &QuotaThresholds,
) -> View {
    let capacity = Capacity::of(servers);
    let document = QuotaDocument {
        account_id: account.as_str(),
        region: region.as_str(),
        total_source_servers: capacity.total_source_servers,
        replicating_servers: capacity.replicating_servers,
        max_replicating_servers: limits.max_replicating(),
        max_source_servers: limits.max_source_servers(),
        available_replicating_slots: capacity.available_replicating_slots(limits),
        utilization_percent: capacity.utilization_percent(limits),
        status: capacity.status(limits).as_str(),
        extended_servers: capacity.extended_servers,
        servers_by_replication_state: &capacity.by_replication_state,
    };
    View {
        body: to_bytes(&document),
        items: capacity.total_source_servers,
        figures: Figures::default()
            .with(Figure::ReplicatingServers, capacity.replicating_servers)
            .with(Figure::ExtendedServers, capacity.extended_servers),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JobsDocument<'a> {
    jobs: &'a [Job],
    count: usize,
    active_jobs: u64,
    servers_in_active_jobs: u64,
}

/// The jobs view: every job of the window, and how many of them DRS still
/// runs with how many servers (the figures its limits of 20 jobs and 500
/// servers in active jobs count).
pub fn jobs(jobs: &[Job]) -> View {
    let active = jobs.iter().filter(|j| j.is_active());
    let document = JobsDocument {
        jobs,
        count: jobs.len(),
        active_jobs: active.clone().count() as u64,
        servers_in_active_jobs: active.map(|j| j.participating_servers.len() as u64).sum(),
    };
    View {
        body: to_bytes(&document),
        items: jobs.len() as u64,
        figures: Figures::default()
            .with(Figure::ActiveJobs, document.active_jobs)
            .with(Figure::ServersInActiveJobs, document.servers_in_active_jobs),
    }
}

fn to_bytes<T: Serialize>(document: &T) -> Bytes {
    // Maps with string keys, strings and numbers: serializing cannot fail, and
    // a non-finite float is written as null by serde_json.
    Bytes::from(serde_json::to_vec(document).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::Value;

    use super::*;
    use crate::domain::inventory::{Hardware, Subnet};

    fn region() -> Region {
        Region::parse("eu-west-1").unwrap()
    }

    #[test]
    fn a_list_view_has_the_fields_the_reader_filters_on() {
        let subnet = Subnet {
            subnet_id: "subnet-1".into(),
            subnet_name: Some("app-a".into()),
            vpc_id: Some("vpc-0000000a".into()),
            cidr_block: Some("10.0.0.0/24".into()),
            availability_zone: Some("eu-west-1a".into()),
            available_ip_address_count: Some(250),
            tags: BTreeMap::from([("Name".into(), "app-a".into())]),
        };
        let view = list(DataType::Ec2Subnets, &region(), &[subnet]);
        let doc: Value = serde_json::from_slice(&view.body).unwrap();
        assert_eq!(view.items, 1);
        assert_eq!(doc["count"], 1);
        assert_eq!(doc["subnets"][0]["subnetName"], "app-a");
        assert_eq!(doc["subnets"][0]["availableIpAddressCount"], 250);
        assert!(doc.get("region").is_none());
    }

    #[test]
    fn the_source_server_view_names_its_region_and_count() {
        let server = SourceServer {
            hostname: Some("web-1".into()),
            replication_state: Some("STALLED".into()),
            hardware: Hardware::from_bytes(4, 8 << 30, 100 << 30),
            ..SourceServer::bare("s-1234567890abcdef0")
        };
        let view = list(
            DataType::DrsSourceServers,
            &region(),
            std::slice::from_ref(&server),
        );
        let doc: Value = serde_json::from_slice(&view.body).unwrap();
        assert_eq!(doc["region"], "eu-west-1");
        assert_eq!(doc["serverCount"], 1);
        let s = &doc["servers"][0];
        assert_eq!(s["sourceServerID"], "s-1234567890abcdef0");
        assert_eq!(s["hardware"]["ramGiB"], 8.0);
        assert_eq!(s["hardware"]["totalDiskGiB"], 100.0);
        assert_eq!(s["hardware"]["totalCores"], 4);
        assert!(s["fqdn"].is_null());

        let account = AccountId::parse("111122223333").unwrap();
        let q = quotas(&account, &region(), &[server], &QuotaThresholds::default());
        let doc: Value = serde_json::from_slice(&q.body).unwrap();
        assert_eq!(doc["accountId"], "111122223333");
        assert_eq!(doc["totalSourceServers"], 1);
        assert_eq!(doc["replicatingServers"], 0);
        assert_eq!(doc["availableReplicatingSlots"], 300);
        assert_eq!(doc["maxSourceServers"], 4000);
        assert_eq!(doc["status"], "OK");
        assert_eq!(doc["serversByReplicationState"]["STALLED"], 1);
        assert_eq!(q.figures.get(Figure::ReplicatingServers), Some(0));
        assert_eq!(q.figures.get(Figure::ExtendedServers), Some(0));
    }

    #[test]
    fn the_jobs_view_counts_only_pending_and_started_jobs_and_their_servers() {
        let job = |id: &str, status: &str, servers: usize| Job {
            job_id: id.into(),
            job_type: Some("LAUNCH".into()),
            status: Some(status.into()),
            initiated_by: Some("START_DRILL".into()),
            creation_date_time: None,
            end_date_time: None,
            participating_servers: vec![
                crate::domain::inventory::JobServer {
                    source_server_id: Some("s-1".into()),
                    recovery_instance_id: None,
                    launch_status: None,
                };
                servers
            ],
        };
        let view = jobs(&[
            job("drsjob-1", "STARTED", 3),
            job("drsjob-2", "PENDING", 2),
            job("drsjob-3", "COMPLETED", 40),
        ]);
        let doc: Value = serde_json::from_slice(&view.body).unwrap();
        assert_eq!(view.items, 3);
        assert_eq!(doc["count"], 3);
        assert_eq!(doc["activeJobs"], 2);
        assert_eq!(doc["serversInActiveJobs"], 5);
        assert_eq!(view.figures.get(Figure::ActiveJobs), Some(2));
        assert_eq!(view.figures.get(Figure::ServersInActiveJobs), Some(5));
        assert_eq!(doc["jobs"][0]["jobID"], "drsjob-1");
        assert_eq!(
            doc["jobs"][0]["participatingServers"][0]["sourceServerID"],
            "s-1"
        );
    }

    #[test]
    fn the_recovery_instance_view_counts_its_drills() {
        let instance = |id: &str, is_drill| crate::domain::inventory::RecoveryInstance {
            recovery_instance_id: id.into(),
            source_server_id: Some("s-1".into()),
            ec2_instance_id: None,
            ec2_instance_state: Some("RUNNING".into()),
            job_id: None,
            is_drill,
            failback_state: None,
            point_in_time_snapshot_date_time: None,
            last_updated_date_time: None,
            origin_environment: None,
            tags: BTreeMap::new(),
        };
        let view = recovery_instances(
            &region(),
            &[
                instance("i-1", true),
                instance("i-2", false),
                instance("i-3", true),
            ],
        );
        assert_eq!(view.items, 3);
        assert_eq!(view.figures.get(Figure::DrillInstances), Some(2));
        let doc: Value = serde_json::from_slice(&view.body).unwrap();
        assert_eq!(doc["count"], 3);
        assert_eq!(doc["recoveryInstances"][1]["isDrill"], false);
    }

    #[test]
    fn equal_records_serialize_to_equal_bytes() {
        let a = list(DataType::DrsAccounts, &region(), &["x", "y"]);
        let b = list(DataType::DrsAccounts, &region(), &["x", "y"]);
        assert_eq!(a, b);
    }
}
