//! AWS Elastic Disaster Recovery through [`AwsUpstream`]: source servers and
//! staging accounts, every page.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_drs::types;

use crate::{
    adapters::aws::clients::{AwsUpstream, MissingField},
    domain::inventory::{Hardware, SourceServer, StagingAccount},
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
}

impl TryFrom<types::Account> for StagingAccount {
    type Error = MissingField;

    fn try_from(account: types::Account) -> Result<Self, Self::Error> {
        let account_id = account.account_id.ok_or(MissingField("accountID"))?;
        Ok(Self { account_id })
    }
}

/// One DRS source server in the cache's shape. Takes the SDK record by value and
/// moves its strings; only the `Name` tag is copied.
impl TryFrom<types::SourceServer> for SourceServer {
    type Error = MissingField;

    fn try_from(s: types::SourceServer) -> Result<Self, Self::Error> {
        let source_server_id = s.source_server_id.ok_or(MissingField("sourceServerID"))?;
        let tags: BTreeMap<String, String> = s.tags.unwrap_or_default().into_iter().collect();
        let name_tag = tags.get("Name").cloned();

        let mut hostname = None;
        let mut fqdn = None;
        let mut source_instance_id = None;
        let mut source_ip = None;
        let mut os = None;
        let mut hardware = Hardware::from_bytes(0, 0, 0);
        if let Some(p) = s.source_properties {
            if let Some(hints) = p.identification_hints {
                hostname = hints.hostname;
                fqdn = hints.fqdn;
                source_instance_id = hints.aws_instance_id;
            }
            source_ip = p.network_interfaces.and_then(first_ip);
            os = p.os.and_then(|os| os.full_string);
            let cores = p.cpus.iter().flatten().map(|c| non_negative(c.cores)).sum();
            let disk = p
                .disks
                .iter()
                .flatten()
                .map(|d| non_negative(d.bytes))
                .sum();
            hardware = Hardware::from_bytes(cores, non_negative(p.ram_bytes), disk);
        }

        let (replication_state, lag_duration) = match s.data_replication_info {
            Some(info) => (
                info.data_replication_state.map(|v| v.as_str().to_owned()),
                info.lag_duration,
            ),
            None => (None, None),
        };

        Ok(Self {
            source_server_id,
            hostname,
            fqdn,
            name_tag,
            source_instance_id,
            source_ip,
            os,
            replication_state,
            lag_duration,
            last_seen: s.life_cycle.and_then(|l| l.last_seen_by_service_date_time),
            last_launch_result: s.last_launch_result.map(|v| v.as_str().to_owned()),
            staging_status: s
                .staging_area
                .and_then(|a| a.status)
                .map(|v| v.as_str().to_owned()),
            hardware,
            tags,
        })
    }
}

/// The first IP of the primary interface, else of the first interface.
fn first_ip(interfaces: Vec<types::NetworkInterface>) -> Option<String> {
    let primary = interfaces.iter().position(|i| i.is_primary == Some(true));
    let interface = interfaces.into_iter().nth(primary.unwrap_or(0))?;
    interface.ips?.into_iter().next()
}

fn non_negative(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_drs::types::{
        Cpu, DataReplicationInfo, DataReplicationState, Disk, ExtensionStatus, IdentificationHints,
        LastLaunchResult, LifeCycle, NetworkInterface, Os, SourceProperties, StagingArea,
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
            .tags("Name", "web-01")
            .tags("App", "shop")
            .last_launch_result(LastLaunchResult::Succeeded)
            .data_replication_info(
                DataReplicationInfo::builder()
                    .data_replication_state(DataReplicationState::Continuous)
                    .lag_duration("PT1M30S")
                    .build(),
            )
            .life_cycle(
                LifeCycle::builder()
                    .last_seen_by_service_date_time("2024-05-01T10:00:00Z")
                    .build(),
            )
            .staging_area(
                StagingArea::builder()
                    .status(ExtensionStatus::Extended)
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
        assert!(s.is_extended());
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
