//! AWS Elastic Disaster Recovery through [`AwsUpstream`]: source servers,
//! staging accounts, jobs, recovery instances and source networks, every page.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_drs::types;

use crate::{
    adapters::aws::clients::{AwsUpstream, MissingField},
    domain::{
        Timestamp,
        inventory::{
            DiskInfo, Hardware, Job, JobServer, LastLaunch, NetworkInterfaceInfo, RecoveryInstance,
            SourceNetwork, SourceServer, StagingAccount,
        },
    },
    ports::{AccountRegion, DrsSource, Fetched, SourceError},
};

#[async_trait]
impl DrsSource for AwsUpstream {
    #[tracing::instrument(skip_all, fields(account_id = %scope.account, region = %scope.region))]
    async fn source_servers(
        &self,
        scope: &AccountRegion,
    ) -> Result<Fetched<SourceServer>, SourceError> {
        const OPERATION: &str = "DescribeSourceServers";
        let drs = self.drs(scope, OPERATION).await?;
        let pages = drs
            .client
            .describe_source_servers()
            .max_results(self.config().page_sizes.source_servers)
            .into_paginator()
            .send()
            .try_collect()
            .await;
        drs.every_page(OPERATION, pages, |page| page.items.unwrap_or_default())
    }

    #[tracing::instrument(skip_all, fields(account_id = %scope.account, region = %scope.region))]
    async fn staging_accounts(
        &self,
        scope: &AccountRegion,
    ) -> Result<Fetched<StagingAccount>, SourceError> {
        const OPERATION: &str = "ListStagingAccounts";
        let drs = self.drs(scope, OPERATION).await?;
        let pages = drs
            .client
            .list_staging_accounts()
            .max_results(self.config().page_sizes.staging_accounts)
            .into_paginator()
            .send()
            .try_collect()
            .await;
        drs.every_page(OPERATION, pages, |page| page.accounts.unwrap_or_default())
    }

    #[tracing::instrument(skip_all, fields(account_id = %scope.account, region = %scope.region))]
    async fn jobs(
        &self,
        scope: &AccountRegion,
        since: Timestamp,
    ) -> Result<Fetched<Job>, SourceError> {
        const OPERATION: &str = "DescribeJobs";
        let drs = self.drs(scope, OPERATION).await?;
        let window = types::DescribeJobsRequestFilters::builder()
            .from_date(since.rfc3339())
            .build();
        let pages = drs
            .client
            .describe_jobs()
            .filters(window)
            .max_results(self.config().page_sizes.drs_records)
            .into_paginator()
            .send()
            .try_collect()
            .await;
        drs.every_page(OPERATION, pages, |page| page.items.unwrap_or_default())
    }

    #[tracing::instrument(skip_all, fields(account_id = %scope.account, region = %scope.region))]
    async fn recovery_instances(
        &self,
        scope: &AccountRegion,
    ) -> Result<Fetched<RecoveryInstance>, SourceError> {
        const OPERATION: &str = "DescribeRecoveryInstances";
        let drs = self.drs(scope, OPERATION).await?;
        let pages = drs
            .client
            .describe_recovery_instances()
            .max_results(self.config().page_sizes.drs_records)
            .into_paginator()
            .send()
            .try_collect()
            .await;
        drs.every_page(OPERATION, pages, |page| page.items.unwrap_or_default())
    }

    #[tracing::instrument(skip_all, fields(account_id = %scope.account, region = %scope.region))]
    async fn source_networks(
        &self,
        scope: &AccountRegion,
    ) -> Result<Fetched<SourceNetwork>, SourceError> {
        const OPERATION: &str = "DescribeSourceNetworks";
        let drs = self.drs(scope, OPERATION).await?;
        let pages = drs
            .client
            .describe_source_networks()
            .max_results(self.config().page_sizes.drs_records)
            .into_paginator()
            .send()
            .try_collect()
            .await;
        drs.every_page(OPERATION, pages, |page| page.items.unwrap_or_default())
    }
}

fn text<T: AsRef<str>>(value: Option<T>) -> Option<String> {
    value.map(|v| v.as_ref().to_owned())
}

impl TryFrom<types::Job> for Job {
    type Error = MissingField;

    fn try_from(job: types::Job) -> Result<Self, Self::Error> {
        Ok(Self {
            job_id: job.job_id,
            job_type: text(job.r#type),
            status: text(job.status),
            initiated_by: text(job.initiated_by),
            creation_date_time: job.creation_date_time,
            end_date_time: job.end_date_time,
            participating_servers: job
                .participating_servers
                .unwrap_or_default()
                .into_iter()
                .map(|p| JobServer {
                    source_server_id: p.source_server_id,
                    recovery_instance_id: p.recovery_instance_id,
                    launch_status: text(p.launch_status),
                })
                .collect(),
        })
    }
}

impl TryFrom<types::RecoveryInstance> for RecoveryInstance {
    type Error = MissingField;

    fn try_from(i: types::RecoveryInstance) -> Result<Self, Self::Error> {
        Ok(Self {
            recovery_instance_id: i
                .recovery_instance_id
                .ok_or(MissingField("recoveryInstanceID"))?,
            source_server_id: i.source_server_id,
            ec2_instance_id: i.ec2_instance_id,
            ec2_instance_state: text(i.ec2_instance_state),
            job_id: i.job_id,
            is_drill: i.is_drill == Some(true),
            failback_state: text(i.failback.and_then(|f| f.state)),
            point_in_time_snapshot_date_time: i.point_in_time_snapshot_date_time,
            last_updated_date_time: i
                .recovery_instance_properties
                .and_then(|p| p.last_updated_date_time),
            origin_environment: text(i.origin_environment),
            tags: i.tags.unwrap_or_default().into_iter().collect(),
        })
    }
}

impl TryFrom<types::SourceNetwork> for SourceNetwork {
    type Error = MissingField;

    fn try_from(n: types::SourceNetwork) -> Result<Self, Self::Error> {
        Ok(Self {
            source_network_id: n.source_network_id.ok_or(MissingField("sourceNetworkID"))?,
            source_vpc_id: n.source_vpc_id,
            source_account_id: n.source_account_id,
            source_region: n.source_region,
            replication_status: text(n.replication_status),
            replication_status_details: n.replication_status_details,
            cfn_stack_name: n.cfn_stack_name,
            launched_vpc_id: n.launched_vpc_id,
            tags: n.tags.unwrap_or_default().into_iter().collect(),
        })
    }
}

impl TryFrom<types::Account> for StagingAccount {
    type Error = MissingField;

    fn try_from(account: types::Account) -> Result<Self, Self::Error> {
        let account_id = account.account_id.ok_or(MissingField("accountID"))?;
        Ok(Self { account_id })
    }
}

/// One DRS source server in the cache's shape, every field recovery planning
/// needs. Takes the SDK record by value and moves its strings; only the `Name`
/// tag and the primary IP are copied.
impl TryFrom<types::SourceServer> for SourceServer {
    type Error = MissingField;

    fn try_from(s: types::SourceServer) -> Result<Self, Self::Error> {
        let source_server_id = s.source_server_id.ok_or(MissingField("sourceServerID"))?;
        let tags: BTreeMap<String, String> = s.tags.unwrap_or_default().into_iter().collect();
        let mut server = SourceServer {
            name_tag: tags.get("Name").cloned(),
            tags,
            account_id: s.arn.as_deref().and_then(arn_account),
            recovery_instance_id: s.recovery_instance_id,
            last_launch_result: s.last_launch_result.map(|v| v.as_str().to_owned()),
            ..SourceServer::bare(source_server_id)
        };
        if let Some(p) = s.source_properties {
            if let Some(hints) = p.identification_hints {
                server.hostname = hints.hostname;
                server.fqdn = hints.fqdn;
                server.source_instance_id = hints.aws_instance_id;
            }
            let interfaces = p.network_interfaces.unwrap_or_default();
            server.source_ip = first_ip(&interfaces);
            server.network_interfaces = interfaces
                .into_iter()
                .map(|i| NetworkInterfaceInfo {
                    ips: i.ips.unwrap_or_default(),
                    mac_address: i.mac_address,
                    is_primary: i.is_primary == Some(true),
                })
                .collect();
            server.os = p.os.and_then(|os| os.full_string);
            let cores = p.cpus.iter().flatten().map(|c| non_negative(c.cores)).sum();
            server.disks = p
                .disks
                .unwrap_or_default()
                .into_iter()
                .map(|d| DiskInfo {
                    device_name: d.device_name,
                    bytes: non_negative(d.bytes),
                })
                .collect();
            let disk = server.disks.iter().map(|d| d.bytes).sum();
            server.hardware = Hardware::from_bytes(cores, non_negative(p.ram_bytes), disk);
        }
        if let Some(info) = s.data_replication_info {
            server.replication_state = info.data_replication_state.map(|v| v.as_str().to_owned());
            server.lag_duration = info.lag_duration;
            server.replicated_storage_bytes = info
                .replicated_disks
                .iter()
                .flatten()
                .map(|d| non_negative(d.replicated_storage_bytes))
                .sum();
        }
        if let Some(life) = s.life_cycle {
            server.last_seen = life.last_seen_by_service_date_time;
            server.last_launch = life.last_launch.map(|l| {
                let initiated = l.initiated;
                LastLaunch {
                    launch_type: initiated
                        .as_ref()
                        .and_then(|i| i.r#type.as_ref())
                        .map(|t| t.as_str().to_owned()),
                    status: l.status.map(|v| v.as_str().to_owned()),
                    job_id: initiated.as_ref().and_then(|i| i.job_id.clone()),
                    initiated_at: initiated.and_then(|i| i.api_call_date_time),
                }
            });
        }
        if let Some(area) = s.staging_area {
            if let Some(status) = area.status {
                server = server.with_staging_status(status.as_str());
            }
            server.staging_account_id = area.staging_account_id;
        }
        // Not extended, it replicates into its own account's staging area.
        if server.staging_account_id.is_none() && !server.is_extended {
            server.staging_account_id.clone_from(&server.account_id);
        }
        if let Some(cloud) = s.source_cloud_properties {
            server.source_account_id = cloud.origin_account_id;
            server.source_region = cloud.origin_region;
            server.source_availability_zone = cloud.origin_availability_zone;
        }
        Ok(server)
    }
}

/// The account of `arn:partition:drs:region:account:source-server/ID`.
fn arn_account(arn: &str) -> Option<String> {
    let account = arn.split(':').nth(4)?;
    (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())).then(|| account.to_owned())
}

/// The first IP of the primary interface, else of the first interface.
fn first_ip(interfaces: &[types::NetworkInterface]) -> Option<String> {
    let primary = interfaces.iter().position(|i| i.is_primary == Some(true));
    let interface = interfaces.get(primary.unwrap_or(0))?;
    interface.ips.as_ref()?.first().cloned()
}

fn non_negative(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_drs::types::{
        Cpu, DataReplicationInfo, DataReplicationInfoReplicatedDisk, DataReplicationState, Disk,
        ExtensionStatus, IdentificationHints, LastLaunchResult, LastLaunchType, LaunchStatus,
        LifeCycle, LifeCycleLastLaunch, LifeCycleLastLaunchInitiated, NetworkInterface, Os,
        SourceCloudProperties, SourceProperties, StagingArea,
    };

    const GIB: i64 = 1024 * 1024 * 1024;

    fn interface(ips: &[&str], primary: Option<bool>) -> NetworkInterface {
        NetworkInterface::builder()
            .set_ips(Some(ips.iter().map(|ip| (*ip).to_owned()).collect()))
            .set_is_primary(primary)
            .build()
    }

    fn full_server() -> types::SourceServer {
        types::SourceServer::builder()
            .source_server_id("s-1234567890abcdef0")
            .arn("arn:aws:drs:us-east-1:111122223333:source-server/s-1234567890abcdef0")
            .recovery_instance_id("i-0recovery")
            .source_cloud_properties(
                SourceCloudProperties::builder()
                    .origin_account_id("444455556666")
                    .origin_region("eu-west-1")
                    .origin_availability_zone("eu-west-1b")
                    .build(),
            )
            .tags("Name", "web-01")
            .tags("App", "shop")
            .last_launch_result(LastLaunchResult::Succeeded)
            .data_replication_info(
                DataReplicationInfo::builder()
                    .data_replication_state(DataReplicationState::Continuous)
                    .lag_duration("PT1M30S")
                    .replicated_disks(
                        DataReplicationInfoReplicatedDisk::builder()
                            .replicated_storage_bytes(10 * GIB)
                            .build(),
                    )
                    .replicated_disks(
                        DataReplicationInfoReplicatedDisk::builder()
                            .replicated_storage_bytes(GIB)
                            .build(),
                    )
                    .build(),
            )
            .life_cycle(
                LifeCycle::builder()
                    .last_seen_by_service_date_time("2024-05-01T10:00:00Z")
                    .last_launch(
                        LifeCycleLastLaunch::builder()
                            .status(LaunchStatus::Launched)
                            .initiated(
                                LifeCycleLastLaunchInitiated::builder()
                                    .r#type(LastLaunchType::Drill)
                                    .job_id("drsjob-0abc")
                                    .api_call_date_time("2024-05-01T09:00:00Z")
                                    .build(),
                            )
                            .build(),
                    )
                    .build(),
            )
            .staging_area(
                StagingArea::builder()
                    .status(ExtensionStatus::Extended)
                    .staging_account_id("777788889999")
                    .build(),
            )
            .source_properties(
                SourceProperties::builder()
                    .identification_hints(
                        IdentificationHints::builder()
                            .hostname("web-01")
                            .fqdn("web-01.example.com")
                            .aws_instance_id("i-0abc")
                            .build(),
                    )
                    .network_interfaces(interface(&["10.0.0.9"], Some(false)))
                    .network_interfaces(interface(&["10.0.1.5", "10.0.1.6"], Some(true)))
                    .cpus(Cpu::builder().cores(4).model_name("x").build())
                    .cpus(Cpu::builder().cores(2).build())
                    .ram_bytes(16 * GIB)
                    .disks(
                        Disk::builder()
                            .device_name("/dev/sda")
                            .bytes(100 * GIB)
                            .build(),
                    )
                    .disks(Disk::builder().bytes(GIB / 2).build())
                    .os(Os::builder().full_string("Ubuntu 22.04").build())
                    .build(),
            )
            .build()
    }

    #[test]
    fn every_field_comes_from_its_drs_source() {
        let s = SourceServer::try_from(full_server()).unwrap();
        assert_eq!(s.source_server_id, "s-1234567890abcdef0");
        assert_eq!(s.hostname.as_deref(), Some("web-01"));
        assert_eq!(s.fqdn.as_deref(), Some("web-01.example.com"));
        assert_eq!(s.name_tag.as_deref(), Some("web-01"));
        assert_eq!(s.source_instance_id.as_deref(), Some("i-0abc"));
        assert_eq!(s.source_ip.as_deref(), Some("10.0.1.5"));
        assert_eq!(s.os.as_deref(), Some("Ubuntu 22.04"));
        assert_eq!(s.replication_state.as_deref(), Some("CONTINUOUS"));
        assert_eq!(s.lag_duration.as_deref(), Some("PT1M30S"));
        assert_eq!(s.last_seen.as_deref(), Some("2024-05-01T10:00:00Z"));
        assert_eq!(s.last_launch_result.as_deref(), Some("SUCCEEDED"));
        assert_eq!(s.staging_status.as_deref(), Some("EXTENDED"));
        assert!(s.is_extended);
        assert_eq!(s.hardware.total_cores, 6);
        assert_eq!(s.hardware.ram_gib, 16.0);
        assert_eq!(s.hardware.total_disk_gib, 100.5);
        assert_eq!(
            s.tags,
            BTreeMap::from([
                ("App".to_owned(), "shop".to_owned()),
                ("Name".to_owned(), "web-01".to_owned()),
            ])
        );
        assert_eq!(s.account_id.as_deref(), Some("111122223333"));
        assert_eq!(s.source_account_id.as_deref(), Some("444455556666"));
        assert_eq!(s.source_region.as_deref(), Some("eu-west-1"));
        assert_eq!(s.source_availability_zone.as_deref(), Some("eu-west-1b"));
        assert_eq!(s.staging_account_id.as_deref(), Some("777788889999"));
        assert_eq!(s.recovery_instance_id.as_deref(), Some("i-0recovery"));
        assert_eq!(
            s.last_launch,
            Some(LastLaunch {
                launch_type: Some("DRILL".into()),
                status: Some("LAUNCHED".into()),
                job_id: Some("drsjob-0abc".into()),
                initiated_at: Some("2024-05-01T09:00:00Z".into()),
            })
        );
        assert_eq!(s.replicated_storage_bytes, 11 * GIB as u64);
        assert_eq!(s.hardware.ram_bytes, 16 * GIB as u64);
        assert_eq!(
            s.disks,
            [
                DiskInfo {
                    device_name: Some("/dev/sda".into()),
                    bytes: 100 * GIB as u64
                },
                DiskInfo {
                    device_name: None,
                    bytes: GIB as u64 / 2
                },
            ]
        );
        assert_eq!(s.network_interfaces.len(), 2);
        assert!(s.network_interfaces[1].is_primary);
        assert_eq!(s.network_interfaces[1].ips, ["10.0.1.5", "10.0.1.6"]);
        // The whole record as the view serves it.
        let json = serde_json::to_value(&s).unwrap();
        for field in [
            "accountID",
            "sourceAccountID",
            "sourceRegion",
            "sourceAvailabilityZone",
            "stagingAccountID",
            "isExtended",
            "recoveryInstanceID",
            "lastLaunch",
            "replicatedStorageBytes",
            "disks",
            "networkInterfaces",
        ] {
            assert!(json.get(field).is_some(), "{field}: {json}");
        }
        assert_eq!(json["hardware"]["ramBytes"], 16 * GIB);
    }

    #[test]
    fn without_a_primary_interface_the_first_one_gives_the_ip() {
        let raw = types::SourceServer::builder()
            .source_server_id("s-1")
            .source_properties(
                SourceProperties::builder()
                    .network_interfaces(interface(&["192.168.0.7"], None))
                    .network_interfaces(interface(&["192.168.0.8"], Some(false)))
                    .build(),
            )
            .build();
        let s = SourceServer::try_from(raw).unwrap();
        assert_eq!(s.source_ip.as_deref(), Some("192.168.0.7"));
    }

    #[test]
    fn a_bare_server_converts_with_empty_fields() {
        let s = SourceServer::try_from(
            types::SourceServer::builder()
                .source_server_id("s-2")
                .build(),
        )
        .unwrap();
        assert_eq!(s.source_server_id, "s-2");
        assert_eq!(
            (
                s.hostname,
                s.source_ip,
                s.replication_state,
                s.staging_status
            ),
            (None, None, None, None)
        );
        assert_eq!(s.hardware, Hardware::from_bytes(0, 0, 0));
        assert!(s.tags.is_empty() && s.name_tag.is_none());
    }

    #[test]
    fn unknown_enum_values_keep_their_wire_string() {
        let raw = types::SourceServer::builder()
            .source_server_id("s-3")
            .data_replication_info(
                DataReplicationInfo::builder()
                    .data_replication_state(DataReplicationState::from("BRAND_NEW_STATE"))
                    .build(),
            )
            .build();
        let s = SourceServer::try_from(raw).unwrap();
        assert_eq!(s.replication_state.as_deref(), Some("BRAND_NEW_STATE"));
    }

    #[test]
    fn a_server_without_id_is_refused() {
        assert_eq!(
            SourceServer::try_from(types::SourceServer::builder().build()),
            Err(MissingField("sourceServerID"))
        );
    }
}
