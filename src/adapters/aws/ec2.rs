//! Amazon EC2 through [`AwsUpstream`]: subnets, security groups and instance
//! types, every page.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_ec2::types;

use crate::{
    adapters::aws::clients::{AwsUpstream, MissingField},
    domain::inventory::{InstanceType, SecurityGroup, Subnet},
    ports::{AccountRegion, Ec2Source, Fetched, SourceError},
};

#[async_trait]
impl Ec2Source for AwsUpstream {
    #[tracing::instrument(skip_all, fields(account_id = %scope.account, region = %scope.region))]
    async fn subnets(&self, scope: &AccountRegion) -> Result<Fetched<Subnet>, SourceError> {
        const OPERATION: &str = "DescribeSubnets";
        let ec2 = self.ec2(scope, OPERATION).await?;
        let pages = ec2
            .client
            .describe_subnets()
            .max_results(self.config().page_sizes.subnets)
            .into_paginator()
            .send()
            .try_collect()
            .await;
        ec2.every_page(OPERATION, pages, |page| page.subnets.unwrap_or_default())
    }

    #[tracing::instrument(skip_all, fields(account_id = %scope.account, region = %scope.region))]
    async fn security_groups(
        &self,
        scope: &AccountRegion,
    ) -> Result<Fetched<SecurityGroup>, SourceError> {
        const OPERATION: &str = "DescribeSecurityGroups";
        let ec2 = self.ec2(scope, OPERATION).await?;
        let pages = ec2
            .client
            .describe_security_groups()
            .max_results(self.config().page_sizes.security_groups)
            .into_paginator()
            .send()
            .try_collect()
            .await;
        ec2.every_page(OPERATION, pages, |page| {
            page.security_groups.unwrap_or_default()
        })
    }

    #[tracing::instrument(skip_all, fields(account_id = %scope.account, region = %scope.region))]
    async fn instance_types(
        &self,
        scope: &AccountRegion,
    ) -> Result<Fetched<InstanceType>, SourceError> {
        const OPERATION: &str = "DescribeInstanceTypes";
        let ec2 = self.ec2(scope, OPERATION).await?;
        let pages = ec2
            .client
            .describe_instance_types()
            .max_results(self.config().page_sizes.instance_types)
            .into_paginator()
            .send()
            .try_collect()
            .await;
        ec2.every_page(OPERATION, pages, |page| {
            page.instance_types.unwrap_or_default()
        })
    }
}

/// EC2 tags as a map; a tag without key is dropped, one without value is empty.
fn tag_map(tags: Option<Vec<types::Tag>>) -> BTreeMap<String, String> {
    tags.into_iter()
        .flatten()
        .filter_map(|t| Some((t.key?, t.value.unwrap_or_default())))
        .collect()
}

impl TryFrom<types::Subnet> for Subnet {
    type Error = MissingField;

    fn try_from(s: types::Subnet) -> Result<Self, Self::Error> {
        let tags = tag_map(s.tags);
        Ok(Self {
            subnet_id: s.subnet_id.ok_or(MissingField("subnetId"))?,
            subnet_name: tags.get("Name").cloned(),
            vpc_id: s.vpc_id,
            cidr_block: s.cidr_block,
            availability_zone: s.availability_zone,
            available_ip_address_count: s.available_ip_address_count.map(i64::from),
            tags,
        })
    }
}

impl TryFrom<types::SecurityGroup> for SecurityGroup {
    type Error = MissingField;

    fn try_from(g: types::SecurityGroup) -> Result<Self, Self::Error> {
        Ok(Self {
            group_id: g.group_id.ok_or(MissingField("groupId"))?,
            group_name: g.group_name,
            description: g.description,
            vpc_id: g.vpc_id,
        })
    }
}

impl TryFrom<types::InstanceTypeInfo> for InstanceType {
    type Error = MissingField;

    fn try_from(i: types::InstanceTypeInfo) -> Result<Self, Self::Error> {
        let instance_type = i
            .instance_type
            .ok_or(MissingField("instanceType"))?
            .as_str()
            .to_owned();
        Ok(Self {
            instance_family: InstanceType::family_of(&instance_type).to_owned(),
            vcpus: i.v_cpu_info.and_then(|v| v.default_v_cpus).map(i64::from),
            memory_mib: i.memory_info.and_then(|m| m.size_in_mib),
            network_performance: i.network_info.and_then(|n| n.network_performance),
            instance_type,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::{MemoryInfo, NetworkInfo, Tag, VCpuInfo};

    fn tag(key: &str, value: &str) -> Tag {
        Tag::builder().key(key).value(value).build()
    }

    #[test]
    fn a_subnet_takes_its_name_from_the_name_tag() {
        let raw = types::Subnet::builder()
            .subnet_id("subnet-1")
            .vpc_id("vpc-1")
            .cidr_block("10.0.1.0/24")
            .availability_zone("us-east-1a")
            .available_ip_address_count(251)
            .tags(tag("Name", "app-a"))
            .tags(tag("Tier", "app"))
            .tags(Tag::builder().value("keyless").build())
            .build();
        let s = Subnet::try_from(raw).unwrap();
        assert_eq!(
            s,
            Subnet {
                subnet_id: "subnet-1".into(),
                subnet_name: Some("app-a".into()),
                vpc_id: Some("vpc-1".into()),
                cidr_block: Some("10.0.1.0/24".into()),
                availability_zone: Some("us-east-1a".into()),
                available_ip_address_count: Some(251),
                tags: BTreeMap::from([
                    ("Name".into(), "app-a".into()),
                    ("Tier".into(), "app".into())
                ]),
            }
        );
    }

    #[test]
    fn records_without_their_id_are_refused() {
        assert_eq!(
            Subnet::try_from(types::Subnet::builder().build()),
            Err(MissingField("subnetId"))
        );
        assert_eq!(
            SecurityGroup::try_from(types::SecurityGroup::builder().build()),
            Err(MissingField("groupId"))
        );
        assert_eq!(
            InstanceType::try_from(types::InstanceTypeInfo::builder().build()),
            Err(MissingField("instanceType"))
        );
    }

    #[test]
    fn an_instance_type_reads_vcpus_memory_network_and_family() {
        let raw = types::InstanceTypeInfo::builder()
            .instance_type(types::InstanceType::from("c6gn.medium"))
            .v_cpu_info(VCpuInfo::builder().default_v_cpus(1).build())
            .memory_info(MemoryInfo::builder().size_in_mib(2048).build())
            .network_info(
                NetworkInfo::builder()
                    .network_performance("Up to 16 Gigabit")
                    .build(),
            )
            .build();
        assert_eq!(
            InstanceType::try_from(raw).unwrap(),
            InstanceType {
                instance_type: "c6gn.medium".into(),
                vcpus: Some(1),
                memory_mib: Some(2048),
                instance_family: "c6gn".into(),
                network_performance: Some("Up to 16 Gigabit".into()),
            }
        );
    }

    #[test]
    fn a_security_group_keeps_name_description_and_vpc() {
        let raw = types::SecurityGroup::builder()
            .group_id("sg-1")
            .group_name("web")
            .description("web tier")
            .vpc_id("vpc-1")
            .build();
        assert_eq!(
            SecurityGroup::try_from(raw).unwrap(),
            SecurityGroup {
                group_id: "sg-1".into(),
                group_name: Some("web".into()),
                description: Some("web tier".into()),
                vpc_id: Some("vpc-1".into()),
            }
        );
    }
}
