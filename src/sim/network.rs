//! The EC2 network of one (account, region): VPCs, subnets and security groups,
//! each rendered once as its `<item>` of the EC2 query protocol.

use super::{
    aws::{partition, resource_id, zone, zone_id},
    config::FleetParams,
    fleet::last_touch,
    rng::Seed,
    xml::Xml,
};
use crate::domain::{AccountId, Region};

/// A listed resource: its ID (for ID filters) and its rendered `<item>`.
#[derive(Debug)]
pub struct Item {
    pub id: String,
    pub xml: String,
}

/// Subnets and security groups of one (account, region).
#[derive(Debug)]
pub struct Network {
    pub subnets: Vec<Item>,
    pub security_groups: Vec<Item>,
}

struct Vpc {
    id: String,
    name: String,
    octet: u64,
}

const TIERS: [&str; 4] = ["private", "public", "data", "app"];
const SG_ROLES: [&str; 10] = [
    "web",
    "app",
    "db",
    "cache",
    "bastion",
    "lb",
    "api",
    "mq",
    "monitoring",
    "drs-replication",
];

/// Generates the network of (`account`, `region`). Subnets' free addresses move
/// with the generation; everything else is fixed.
pub fn generate(seed: u64, account: &AccountId, region: &Region, params: FleetParams) -> Network {
    let seed = Seed::new(seed)
        .with_str("ec2")
        .with_str(account.as_str())
        .with_str(region.as_str());
    let mut rng = seed.with_str("vpcs").rng();
    // Two or three VPCs, and enough /16s for 250 subnets each.
    let vpc_count = rng.range(2, 3).max(u64::from(params.subnets).div_ceil(250));
    let names = ["prod", "nonprod", "shared", "dr"];
    let vpcs: Vec<Vpc> = (0..vpc_count)
        .map(|i| Vpc {
            id: resource_id("vpc", seed.with_str("vpc"), i),
            name: format!("{}-vpc", names[(i % 4) as usize]),
            octet: 10 + i * 7 % 240,
        })
        .collect();
    let ctx = Ctx {
        seed,
        account,
        region,
        vpcs: &vpcs,
        params,
    };
    Network {
        subnets: (0..u64::from(params.subnets))
            .map(|i| ctx.subnet(i))
            .collect(),
        security_groups: (0..u64::from(params.security_groups))
            .map(|i| ctx.security_group(i))
            .collect(),
    }
}

struct Ctx<'a> {
    seed: Seed,
    account: &'a AccountId,
    region: &'a Region,
    vpcs: &'a [Vpc],
    params: FleetParams,
}

impl Ctx<'_> {
    fn subnet(&self, i: u64) -> Item {
        let vpc_count = self.vpcs.len() as u64;
        let vpc = &self.vpcs[(i % vpc_count) as usize];
        let slot = i / vpc_count;
        let az = (slot % 3) as usize;
        let tier = TIERS[(slot / 3 % 4) as usize];
        let id = resource_id("subnet", self.seed.with_str("subnet"), i);
        let mut rng = self.seed.with_str("subnet-fixed").with(i).rng();
        let named = rng.chance(0.85);
        let count = u64::from(self.params.subnets);
        let touch = last_touch(
            self.seed.with_str("subnet-touch"),
            i,
            count,
            self.params.generation,
        );
        let available = self
            .seed
            .with_str("subnet-free")
            .with(i)
            .with(touch)
            .rng()
            .range(0, 251);
        let arn = format!(
            "arn:{}:ec2:{}:{}:subnet/{id}",
            partition(self.region),
            self.region,
            self.account
        );
        let mut x = Xml::new();
        x.open("item")
            .el("subnetId", &id)
            .el("subnetArn", arn)
            .el("state", "available")
            .el("ownerId", self.account)
            .el("vpcId", &vpc.id)
            .el("cidrBlock", format!("10.{}.{}.0/24", vpc.octet, slot))
            .raw("<ipv6CidrBlockAssociationSet/>")
            .el("availableIpAddressCount", available)
            .el("availabilityZone", zone(self.region, az))
            .el("availabilityZoneId", zone_id(self.region, az))
            .el("defaultForAz", "false")
            .el("mapPublicIpOnLaunch", tier == "public")
            .el("mapCustomerOwnedIpOnLaunch", "false")
            .el("assignIpv6AddressOnCreation", "false")
            .el("enableDns64", "false")
            .el("ipv6Native", "false");
        x.open("tagSet");
        if named {
            tag(
                &mut x,
                "Name",
                &format!(
                    "{}-{tier}-{}",
                    vpc.name.trim_end_matches("-vpc"),
                    zone(self.region, az)
                ),
            );
        }
        tag(&mut x, "Tier", tier);
        x.close("tagSet");
        x.open("privateDnsNameOptionsOnLaunch")
            .el("hostnameType", "ip-name")
            .el("enableResourceNameDnsARecord", "false")
            .el("enableResourceNameDnsAAAARecord", "false")
            .close("privateDnsNameOptionsOnLaunch");
        x.close("item");
        Item {
            id,
            xml: x.finish(),
        }
    }

    fn security_group(&self, i: u64) -> Item {
        let vpc_count = self.vpcs.len() as u64;
        let vpc = &self.vpcs[(i % vpc_count) as usize];
        let id = resource_id("sg", self.seed.with_str("sg"), i);
        let default = i < vpc_count;
        let mut rng = self.seed.with_str("sg-fixed").with(i).rng();
        let role = *rng.pick(&SG_ROLES);
        let (name, description) = if default {
            (
                "default".to_owned(),
                "default VPC security group".to_owned(),
            )
        } else {
            (
                format!("{}-{role}-{:03}-sg", vpc.name.trim_end_matches("-vpc"), i),
                format!("{role} tier in {}", vpc.name),
            )
        };
        let arn = format!(
            "arn:{}:ec2:{}:{}:security-group/{id}",
            partition(self.region),
            self.region,
            self.account
        );
        let mut x = Xml::new();
        x.open("item")
            .el("ownerId", self.account)
            .el("groupId", &id)
            .el("groupName", &name)
            .el("groupDescription", description)
            .el("vpcId", &vpc.id)
            .el("securityGroupArn", arn);
        x.open("ipPermissions");
        if default {
            x.open("item")
                .el("ipProtocol", "-1")
                .open("groups")
                .open("item")
                .el("userId", self.account)
                .el("groupId", &id)
                .close("item")
                .close("groups")
                .raw("<ipRanges/><ipv6Ranges/><prefixListIds/>")
                .close("item");
        } else {
            let port = *rng.pick(&[443_u16, 8443, 5432, 3306, 6379, 22, 3389, 1500]);
            x.open("item")
                .el("ipProtocol", "tcp")
                .el("fromPort", port)
                .el("toPort", port)
                .raw("<groups/>")
                .open("ipRanges")
                .open("item")
                .el("cidrIp", format!("10.{}.0.0/16", vpc.octet))
                .el("description", format!("{role} clients"))
                .close("item")
                .close("ipRanges")
                .raw("<ipv6Ranges/><prefixListIds/>")
                .close("item");
        }
        x.close("ipPermissions");
        x.open("ipPermissionsEgress")
            .open("item")
            .el("ipProtocol", "-1")
            .raw("<groups/>")
            .open("ipRanges")
            .open("item")
            .el("cidrIp", "0.0.0.0/0")
            .close("item")
            .close("ipRanges")
            .raw("<ipv6Ranges/><prefixListIds/>")
            .close("item")
            .close("ipPermissionsEgress");
        x.open("tagSet");
        if !default {
            tag(&mut x, "Name", &name);
        }
        x.close("tagSet");
        x.close("item");
        Item {
            id,
            xml: x.finish(),
        }
    }
}

fn tag(x: &mut Xml, key: &str, value: &str) {
    x.open("item")
        .el("key", key)
        .el("value", value)
        .close("item");
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn params(generation: u64) -> FleetParams {
        FleetParams {
            servers: 0,
            subnets: 12,
            security_groups: 20,
            generation,
        }
    }

    #[test]
    fn networks_are_deterministic_and_ids_unique() {
        let account = AccountId::parse("111122223333").unwrap();
        let region = Region::parse("us-west-2").unwrap();
        let a = generate(1, &account, &region, params(0));
        let b = generate(1, &account, &region, params(0));
        let xml = |n: &Network| n.subnets.iter().map(|s| s.xml.clone()).collect::<Vec<_>>();
        assert_eq!(xml(&a), xml(&b));
        assert_eq!(a.subnets.len(), 12);
        assert_eq!(a.security_groups.len(), 20);
        let ids: HashSet<&str> = a.subnets.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids.len(), 12);
        assert!(
            a.subnets[0]
                .xml
                .contains("<availabilityZone>us-west-2a</availabilityZone>")
        );
    }

    #[test]
    fn a_generation_bump_moves_some_subnets_free_addresses() {
        let account = AccountId::parse("111122223333").unwrap();
        let region = Region::parse("us-west-2").unwrap();
        let a = generate(1, &account, &region, params(0));
        let b = generate(1, &account, &region, params(1));
        let changed = a
            .subnets
            .iter()
            .zip(&b.subnets)
            .filter(|(x, y)| x.xml != y.xml)
            .count();
        assert!(changed >= 1);
    }
}
