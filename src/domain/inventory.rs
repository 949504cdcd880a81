//! The upstream records the cache holds, one type per data type, in the shape the
//! reader serves them. Adapters build them from AWS types; the refresher wraps
//! them into views.

use std::collections::BTreeMap;

use serde::Serialize;

/// The DRS `stagingArea.status` of a server extended from a staging account.
pub const STAGING_STATUS_EXTENDED: &str = "EXTENDED";

/// One DRS source server.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceServer {
    #[serde(rename = "sourceServerID")]
    pub source_server_id: String,
    pub hostname: Option<String>,
    pub fqdn: Option<String>,
    /// The `Name` tag.
    pub name_tag: Option<String>,
    /// The EC2 instance the server replicates, when it is one.
    pub source_instance_id: Option<String>,
    /// The first IP of the primary network interface.
    pub source_ip: Option<String>,
    pub os: Option<String>,
    /// The DRS data replication state, such as `CONTINUOUS` or `STALLED`.
    pub replication_state: Option<String>,
    /// Replication lag as DRS reports it (ISO-8601 duration).
    pub lag_duration: Option<String>,
    /// When the agent was last seen by DRS.
    pub last_seen: Option<String>,
    pub last_launch_result: Option<String>,
    /// The DRS `stagingArea.status`: `EXTENDED`, `NOT_EXTENDED`, ...
    pub staging_status: Option<String>,
    pub hardware: Hardware,
    /// The server's DRS tags.
    pub tags: BTreeMap<String, String>,
    /// The account of the DRS source server (its ARN's).
    #[serde(rename = "accountID")]
    pub account_id: Option<String>,
    /// Where the source machine runs, for a machine in AWS
    /// (`sourceCloudProperties`): its account, region and availability zone.
    #[serde(rename = "sourceAccountID")]
    pub source_account_id: Option<String>,
    pub source_region: Option<String>,
    pub source_availability_zone: Option<String>,
    /// The account whose staging area holds its replication:
    /// `stagingArea.stagingAccountID` when extended (or failing to be), else
    /// its own account.
    #[serde(rename = "stagingAccountID")]
    pub staging_account_id: Option<String>,
    /// Extended from a staging account: it replicates there, so it does not
    /// use this account's replication capacity (`stagingArea.status` is
    /// `EXTENDED`).
    pub is_extended: bool,
    /// The recovery instance launched for it, if one exists.
    #[serde(rename = "recoveryInstanceID")]
    pub recovery_instance_id: Option<String>,
    /// Its last drill or recovery launch (`lifeCycle.lastLaunch`).
    pub last_launch: Option<LastLaunch>,
    /// Bytes replicated so far, over every replicated disk.
    pub replicated_storage_bytes: u64,
    pub disks: Vec<DiskInfo>,
    pub network_interfaces: Vec<NetworkInterfaceInfo>,
}

/// A source server's last launch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LastLaunch {
    /// `RECOVERY` or `DRILL`.
    #[serde(rename = "type")]
    pub launch_type: Option<String>,
    /// `PENDING`, `IN_PROGRESS`, `LAUNCHED`, `FAILED`, `TERMINATED`.
    pub status: Option<String>,
    #[serde(rename = "jobID")]
    pub job_id: Option<String>,
    /// When the launch was asked for (ISO-8601).
    pub initiated_at: Option<String>,
}

/// One disk of a source server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiskInfo {
    pub device_name: Option<String>,
    pub bytes: u64,
}

/// One network interface of a source server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkInterfaceInfo {
    pub ips: Vec<String>,
    pub mac_address: Option<String>,
    pub is_primary: bool,
}

impl SourceServer {
    /// A server with only its ID, every other field empty.
    pub fn bare(source_server_id: impl Into<String>) -> Self {
        Self {
            source_server_id: source_server_id.into(),
            ..Self::default()
        }
    }

    /// Sets the staging status, and whether it is extended with it.
    pub fn with_staging_status(mut self, status: &str) -> Self {
        self.is_extended = status == STAGING_STATUS_EXTENDED;
        self.staging_status = Some(status.to_owned());
        self
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Hardware {
    pub total_cores: u64,
    #[serde(rename = "ramGiB")]
    pub ram_gib: f64,
    #[serde(rename = "totalDiskGiB")]
    pub total_disk_gib: f64,
    pub ram_bytes: u64,
    pub total_disk_bytes: u64,
}

impl Hardware {
    /// From raw byte counts; the GiB figures rounded to two decimals.
    pub fn from_bytes(total_cores: u64, ram_bytes: u64, disk_bytes: u64) -> Self {
        Self {
            total_cores,
            ram_gib: gib(ram_bytes),
            total_disk_gib: gib(disk_bytes),
            ram_bytes,
            total_disk_bytes: disk_bytes,
        }
    }
}

fn gib(bytes: u64) -> f64 {
    const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
    // Precision loss above 2^53 bytes is irrelevant at two decimals.
    #[allow(clippy::cast_precision_loss)]
    let raw = bytes as f64 / GIB;
    (raw * 100.0).round() / 100.0
}

/// An account DRS stages replication in for this account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StagingAccount {
    pub account_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Subnet {
    pub subnet_id: String,
    /// The `Name` tag.
    pub subnet_name: Option<String>,
    pub vpc_id: Option<String>,
    pub cidr_block: Option<String>,
    pub availability_zone: Option<String>,
    pub available_ip_address_count: Option<i64>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityGroup {
    pub group_id: String,
    pub group_name: Option<String>,
    pub description: Option<String>,
    pub vpc_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceProfile {
    pub instance_profile_name: String,
    pub instance_profile_arn: String,
    /// Names of the roles in the profile.
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceType {
    pub instance_type: String,
    pub vcpus: Option<i64>,
    #[serde(rename = "memoryMiB")]
    pub memory_mib: Option<i64>,
    /// The part of the name before the first `.` (`m5` for `m5.large`).
    pub instance_family: String,
    pub network_performance: Option<String>,
}

impl InstanceType {
    /// The family of an instance type name: `c6gn` for `c6gn.medium`.
    pub fn family_of(name: &str) -> &str {
        name.split_once('.').map_or(name, |(family, _)| family)
    }
}

/// One DRS job: a launch, a termination or a snapshot conversion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    #[serde(rename = "jobID")]
    pub job_id: String,
    /// `LAUNCH`, `TERMINATE` or `CREATE_CONVERTED_SNAPSHOT`.
    #[serde(rename = "type")]
    pub job_type: Option<String>,
    /// `PENDING`, `STARTED` or `COMPLETED`.
    pub status: Option<String>,
    /// `START_DRILL`, `START_RECOVERY`, `FAILBACK`, `DIAGNOSTIC`, ...
    pub initiated_by: Option<String>,
    /// When the job was created (ISO-8601).
    pub creation_date_time: Option<String>,
    /// When it ended; absent while it runs.
    pub end_date_time: Option<String>,
    pub participating_servers: Vec<JobServer>,
}

/// A source server a job holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobServer {
    #[serde(rename = "sourceServerID")]
    pub source_server_id: Option<String>,
    #[serde(rename = "recoveryInstanceID")]
    pub recovery_instance_id: Option<String>,
    /// `PENDING`, `IN_PROGRESS`, `LAUNCHED`, `FAILED`, `TERMINATED`.
    pub launch_status: Option<String>,
}

impl Job {
    /// A job DRS still runs: `PENDING` or `STARTED`. Such jobs count against
    /// the limits of 20 concurrent jobs and 500 servers in all active jobs.
    pub fn is_active(&self) -> bool {
        matches!(self.status.as_deref(), Some("PENDING" | "STARTED"))
    }
}

/// One DRS recovery instance: an EC2 instance launched by a drill or a recovery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryInstance {
    #[serde(rename = "recoveryInstanceID")]
    pub recovery_instance_id: String,
    #[serde(rename = "sourceServerID")]
    pub source_server_id: Option<String>,
    #[serde(rename = "ec2InstanceID")]
    pub ec2_instance_id: Option<String>,
    /// `RUNNING`, `STOPPED`, `TERMINATED`, ...
    pub ec2_instance_state: Option<String>,
    /// The job that launched it.
    #[serde(rename = "jobID")]
    pub job_id: Option<String>,
    pub is_drill: bool,
    /// `failback.state`: `FAILBACK_NOT_STARTED`, `FAILBACK_IN_PROGRESS`, ...
    pub failback_state: Option<String>,
    /// The point in time of the snapshot it was launched from (ISO-8601).
    pub point_in_time_snapshot_date_time: Option<String>,
    /// When DRS last updated its properties (ISO-8601).
    pub last_updated_date_time: Option<String>,
    /// `ON_PREMISES` or `AWS`.
    pub origin_environment: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// One DRS source network: a source VPC whose configuration DRS replicates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceNetwork {
    #[serde(rename = "sourceNetworkID")]
    pub source_network_id: String,
    #[serde(rename = "sourceVpcID")]
    pub source_vpc_id: Option<String>,
    #[serde(rename = "sourceAccountID")]
    pub source_account_id: Option<String>,
    pub source_region: Option<String>,
    /// `STOPPED`, `IN_PROGRESS`, `PROTECTED` or `ERROR`.
    pub replication_status: Option<String>,
    pub replication_status_details: Option<String>,
    /// The CloudFormation stack that recreates the network in the recovery region.
    pub cfn_stack_name: Option<String>,
    /// The VPC launched from it in the recovery region, if one was.
    #[serde(rename = "launchedVpcID")]
    pub launched_vpc_id: Option<String>,
    pub tags: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hardware_is_reported_in_gib_with_two_decimals() {
        let h = Hardware::from_bytes(8, 16 * 1024 * 1024 * 1024, 1_610_612_736 + 512);
        assert_eq!(h.ram_gib, 16.0);
        assert_eq!(h.total_disk_gib, 1.5);
    }

    #[test]
    fn family_is_the_name_before_the_first_dot() {
        assert_eq!(InstanceType::family_of("c6gn.medium"), "c6gn");
        assert_eq!(InstanceType::family_of("u-6tb1.112xlarge"), "u-6tb1");
        assert_eq!(InstanceType::family_of("odd"), "odd");
    }

    #[test]
    fn only_an_extended_staging_status_marks_a_server_extended() {
        let s = SourceServer::bare("s-1").with_staging_status("NOT_EXTENDED");
        assert!(!s.is_extended);
        let s = s.with_staging_status(STAGING_STATUS_EXTENDED);
        assert!(s.is_extended);
        assert_eq!(s.staging_status.as_deref(), Some("EXTENDED"));
    }
}
