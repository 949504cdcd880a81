//! The EC2 network of one (account, region): VPCs, subnets and security groups,
//! each rendered once as its `<item>` of the EC2 query protocol.

use std::io;

use crate::{
    aws::{partition, resource_id, zone, zone_id},
    config::FleetParams,
    fleet::last_touch,
    ids::{AccountId, Region},
    rng::Seed,
    xml::{self, XmlWriter, text},
};

/// A listed resource: its ID (for ID filters) and its rendered `<item>`.
#[derive(Debug)]
pub(crate) struct Item {
    pub(crate) id: String,
    pub(crate) xml: String,
}

/// Subnets and security groups of one (account, region).
#[derive(Debug)]
pub(crate) struct Network {
    pub(crate) subnets: Vec<Item>,
    pub(crate) security_groups: Vec<Item>,
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
pub(crate) fn generate(
    seed: u64,
    account: &AccountId,
    region: &Region,
    params: FleetParams,
) -> Network {
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
        let name = named.then(|| {
            format!(
                "{}-{tier}-{}",
                vpc.name.trim_end_matches("-vpc"),
                zone(self.region, az)
            )
        });
        let xml = xml::render(|w| {
            w.create_element("item").write_inner_content(|w| {
                text(w, "subnetId", &id)?;
                text(w, "subnetArn", &arn)?;
                text(w, "state", "available")?;
                text(w, "ownerId", self.account)?;
                text(w, "vpcId", &vpc.id)?;
                text(w, "cidrBlock", format!("10.{}.{}.0/24", vpc.octet, slot))?;
                w.create_element("ipv6CidrBlockAssociationSet")
                    .write_empty()?;
                text(w, "availableIpAddressCount", available)?;
                text(w, "availabilityZone", zone(self.region, az))?;
                text(w, "availabilityZoneId", zone_id(self.region, az))?;
                text(w, "defaultForAz", false)?;
                text(w, "mapPublicIpOnLaunch", tier == "public")?;
                text(w, "mapCustomerOwnedIpOnLaunch", false)?;
                text(w, "assignIpv6AddressOnCreation", false)?;
                text(w, "enableDns64", false)?;
                text(w, "ipv6Native", false)?;
                let tags = name.as_deref().map(|n| ("Name", n));
                tag_set(w, tags.into_iter().chain([("Tier", tier)]))?;
                w.create_element("privateDnsNameOptionsOnLaunch")
                    .write_inner_content(|w| {
                        text(w, "hostnameType", "ip-name")?;
                        text(w, "enableResourceNameDnsARecord", false)?;
                        text(w, "enableResourceNameDnsAAAARecord", false)
                    })?;
                Ok(())
            })?;
            Ok(())
        });
        Item { id, xml }
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
        let port =
            (!default).then(|| *rng.pick(&[443_u16, 8443, 5432, 3306, 6379, 22, 3389, 1500]));
        let xml = xml::render(|w| {
            w.create_element("item").write_inner_content(|w| {
                text(w, "ownerId", self.account)?;
                text(w, "groupId", &id)?;
                text(w, "groupName", &name)?;
                text(w, "groupDescription", &description)?;
                text(w, "vpcId", &vpc.id)?;
                text(w, "securityGroupArn", &arn)?;
                w.create_element("ipPermissions").write_inner_content(|w| {
                    w.create_element("item").write_inner_content(|w| {
                        match port {
                            // The default group lets its own members in.
                            None => {
                                text(w, "ipProtocol", "-1")?;
                                w.create_element("groups").write_inner_content(|w| {
                                    w.create_element("item").write_inner_content(|w| {
                                        text(w, "userId", self.account)?;
                                        text(w, "groupId", &id)
                                    })?;
                                    Ok(())
                                })?;
                                w.create_element("ipRanges").write_empty()?;
                            }
                            Some(port) => {
                                text(w, "ipProtocol", "tcp")?;
                                text(w, "fromPort", port)?;
                                text(w, "toPort", port)?;
                                w.create_element("groups").write_empty()?;
                                ip_ranges(
                                    w,
                                    &format!("10.{}.0.0/16", vpc.octet),
                                    Some(&format!("{role} clients")),
                                )?;
                            }
                        }
                        no_ipv6_or_prefix_lists(w)
                    })?;
                    Ok(())
                })?;
                w.create_element("ipPermissionsEgress")
                    .write_inner_content(|w| {
                        w.create_element("item").write_inner_content(|w| {
                            text(w, "ipProtocol", "-1")?;
                            w.create_element("groups").write_empty()?;
                            ip_ranges(w, "0.0.0.0/0", None)?;
                            no_ipv6_or_prefix_lists(w)
                        })?;
                        Ok(())
                    })?;
                let tags = (!default).then_some(("Name", name.as_str()));
                tag_set(w, tags)
            })?;
            Ok(())
        });
        Item { id, xml }
    }
}

/// `<tagSet>` with an `<item><key/><value/></item>` per tag.
fn tag_set<'a>(
    w: &mut XmlWriter,
    tags: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> io::Result<()> {
    w.create_element("tagSet").write_inner_content(|w| {
        tags.into_iter().try_for_each(|(key, value)| {
            w.create_element("item").write_inner_content(|w| {
                text(w, "key", key)?;
                text(w, "value", value)
            })?;
            Ok(())
        })
    })?;
    Ok(())
}

/// `<ipRanges>` holding one CIDR range.
fn ip_ranges(w: &mut XmlWriter, cidr: &str, description: Option<&str>) -> io::Result<()> {
    w.create_element("ipRanges").write_inner_content(|w| {
        w.create_element("item").write_inner_content(|w| {
            text(w, "cidrIp", cidr)?;
            description.map_or(Ok(()), |d| text(w, "description", d))
        })?;
        Ok(())
    })?;
    Ok(())
}

/// The empty IPv6 range and prefix list sets that end every permission.
fn no_ipv6_or_prefix_lists(w: &mut XmlWriter) -> io::Result<()> {
    w.create_element("ipv6Ranges").write_empty()?;
    w.create_element("prefixListIds").write_empty()?;
    Ok(())
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
