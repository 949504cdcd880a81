//! Live changes: the fleet moving over time, each change with the EventBridge
//! event AWS would deliver for it. A change edits the configuration (a
//! generation bump, a size override, a server's state set by the change), so
//! what the simulator serves stays a pure function of the configuration, and
//! the event names resources exactly as the simulator now serves them.

use std::{
    collections::HashMap,
    time::{SystemTime, UNIX_EPOCH},
};

use serde_json::{Value, json};

use crate::{
    aws::{partition, uuid},
    clock::SimTime,
    config::{ConfigError, ServerSet, SimConfig, SourceNetworkSet},
    data::Datasets,
    fleet::{Fleet, ReplicationState, SourceServer},
    ids::{AccountId, Region},
    rng::Seed,
};

/// A change a live DR fleet sees. The DRS ones move the fleet to its next
/// generation; servers are chosen by `pick`, an index taken modulo the fleet's
/// server count, so a driver that knows no server IDs can still name one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Replication moves on: the next generation redraws some servers (state,
    /// lag, last seen) and some subnets' free addresses. Event: "DRS PIT
    /// Snapshot Taken" of a redrawn CONTINUOUS server.
    ReplicationProgress,
    /// The first server at or after `pick` (cyclically) that is not STALLED
    /// becomes STALLED, and stays so until a [`Change::ServerRecovers`].
    ServerStalls { pick: u64 },
    /// The first server at or after `pick` that a [`Change::ServerStalls`]
    /// stalled (else the first STALLED one) becomes CONTINUOUS, until a later
    /// generation redraws it.
    ServerRecovers { pick: u64 },
    /// A drill or recovery launch of the server at `pick` ended: its
    /// `lastLaunchResult` and `lifeCycle.lastLaunch` (and, on success, its
    /// `recoveryInstanceId`), until a later generation redraws it.
    Launch {
        pick: u64,
        drill: bool,
        succeeded: bool,
    },
    /// One more subnet in the (account, region).
    SubnetCreated,
    /// One more security group in the (account, region).
    SecurityGroupCreated,
    /// One more instance profile in the account (every region).
    InstanceProfileCreated,
    /// The source network at `pick` (modulo the fleet's count) moves to the
    /// next `replicationStatus`: PROTECTED to ERROR or STOPPED, and back to
    /// PROTECTED through IN_PROGRESS. Event: "DRS Source Network Protection
    /// Status Change", resources the source network's ARN.
    SourceNetworkStatus { pick: u64 },
    /// The first recovery instance at or after `pick` (cyclically, modulo the
    /// fleet's recovery instances) whose failback can move on (not a drill's,
    /// not TERMINATED, not FAILBACK_COMPLETED) moves to its next
    /// `failback.state`: NOT_STARTED to IN_PROGRESS, that to READY_FOR_LAUNCH
    /// (sometimes NOT_READY_FOR_LAUNCH, which then becomes READY_FOR_LAUNCH),
    /// that to COMPLETED; IN_PROGRESS and READY_FOR_LAUNCH sometimes to ERROR,
    /// which retries as IN_PROGRESS (each retry drawing afresh). It holds
    /// while the server's record names that instance; no generation bump.
    /// Event: "DRS Recovery Instance Failback State Change", `{"state"}`,
    /// resources the instance's ARN.
    FailbackState { pick: u64 },
}

/// A change applied, and what AWS would have told EventBridge about it.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveEvent {
    pub change: Change,
    pub account: AccountId,
    /// The region the event is delivered in: the fleet's, or IAM's home region
    /// (`us-east-1` in the `aws` partition) for instance profiles.
    pub region: Region,
    /// What the event names: a source server ID, recovery instance ID, source
    /// network ID, subnet ID, security group ID or instance profile name (none
    /// for progress in a fleet without servers).
    pub resource: Option<String>,
    /// The full EventBridge envelope: `version`, `id`, `detail-type`, `source`,
    /// `account`, `time`, `region`, `resources`, `detail`.
    pub event: Value,
    /// One short human line, such as `s-0123… in 111111111111/us-east-1 stalled`.
    pub summary: String,
}

/// Why a change could not be applied; the configuration is then unchanged.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// The change would make the configuration invalid (a size over its limit).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The fleet has no server the change can act on.
    #[error("{account}/{region} has no source server that {wanted}")]
    NoServer {
        account: AccountId,
        region: Region,
        wanted: &'static str,
    },
    /// The fleet has no source network.
    #[error("{account}/{region} has no source network")]
    NoSourceNetwork { account: AccountId, region: Region },
    /// The fleet has no recovery instance whose failback can move on.
    #[error("{account}/{region} has no recovery instance whose failback can move on")]
    NoRecoveryInstance { account: AccountId, region: Region },
}

/// Applies `change` to (`account`, `region`) of `config`, all or nothing.
pub(crate) fn apply(
    config: &mut SimConfig,
    data: &Datasets,
    change: Change,
    account: &AccountId,
    region: &Region,
    at: SystemTime,
) -> Result<LiveEvent, LiveError> {
    let mut next = config.clone();
    let mut live = Live {
        config: &mut next,
        data,
        account: *account,
        region,
        time: SimTime::at(
            at.duration_since(UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
            0,
        ),
    };
    let (event_region, resource, event, summary) = match &change {
        Change::ReplicationProgress => live.progress(),
        Change::ServerStalls { pick } => live.stall(*pick)?,
        Change::ServerRecovers { pick } => live.recover(*pick)?,
        Change::Launch {
            pick,
            drill,
            succeeded,
        } => live.launch(*pick, *drill, *succeeded)?,
        Change::SubnetCreated => live.subnet()?,
        Change::SecurityGroupCreated => live.security_group()?,
        Change::InstanceProfileCreated => live.instance_profile()?,
        Change::SourceNetworkStatus { pick } => live.source_network(*pick)?,
        Change::FailbackState { pick } => live.failback(*pick)?,
    };
    next.validate()?;
    *config = next;
    Ok(LiveEvent {
        change,
        account: *account,
        region: event_region,
        resource,
        event,
        summary,
    })
}

/// The region, resource, event and summary of one change.
type Outcome = (Region, Option<String>, Value, String);

struct Live<'a> {
    config: &'a mut SimConfig,
    data: &'a Datasets,
    account: AccountId,
    region: &'a Region,
    time: SimTime,
}

impl Live<'_> {
    fn seed(&self) -> Seed {
        Seed::new(self.config.seed)
            .with_str("live")
            .with_str(self.account.as_str())
            .with_str(self.region.as_str())
    }

    fn where_(&self) -> String {
        format!("{}/{}", self.account, self.region)
    }

    /// The fleet as served now.
    fn fleet(&self) -> std::sync::Arc<Fleet> {
        self.data.fleet(
            self.config.seed,
            &self.account,
            self.region,
            self.config.fleet(&self.account, self.region),
            self.config.servers_set(&self.account, self.region),
        )
    }

    /// Moves the fleet to its next generation and drops what earlier changes
    /// set that the new generation has undone (or whose server is gone).
    fn next_generation(&mut self) -> (u64, std::sync::Arc<Fleet>) {
        let generation = self.config.bump_generation(self.account, self.region);
        let fleet = self.fleet();
        let touches: HashMap<&str, u64> = fleet
            .servers
            .iter()
            .map(|s| (s.id.as_str(), s.touch))
            .collect();
        self.config
            .retain_servers_set(self.account, self.region, |set| {
                touches.get(set.server()).is_some_and(|&touch| {
                    matches!(set, ServerSet::Stalled { .. }) || set.generation() >= touch
                })
            });
        // What was dropped had no effect, so the fleet served is the same.
        (generation, fleet)
    }

    /// Records `set` and returns the server as now served.
    fn set(&mut self, set: ServerSet) -> SourceServer {
        let id = set.server().to_owned();
        self.config.set_server(self.account, self.region, set);
        let fleet = self.fleet();
        let server = fleet.servers.iter().find(|s| s.id == id);
        server
            .cloned()
            .unwrap_or_else(|| unreachable!("the server was chosen from the fleet"))
    }

    fn no_server(&self, wanted: &'static str) -> LiveError {
        LiveError::NoServer {
            account: self.account,
            region: self.region.clone(),
            wanted,
        }
    }

    fn progress(&mut self) -> Outcome {
        let (generation, fleet) = self.next_generation();
        // A redrawn server replicating normally takes the snapshot.
        let snapshot = cyclic(&fleet, generation)
            .find(|s| s.touch == generation && s.state == ReplicationState::Continuous);
        let seed = self.seed().with_str("pit").with(generation);
        let (resources, detail, resource) = match snapshot {
            Some(server) => {
                let disks = serde_json::from_str::<Value>(&server.json)
                    .ok()
                    .and_then(|v| v["sourceProperties"]["disks"].as_array().map(Vec::len))
                    .unwrap_or(1);
                let mut rng = seed.rng();
                let pit = format!("pit-{}", rng.hex(17));
                let ebs: Vec<String> = (0..disks)
                    .map(|_| format!("snap-{}", rng.hex(17)))
                    .collect();
                (
                    vec![server.arn.clone()],
                    json!({"DrsSnapshotID": pit, "EbsSnapshotIDs": ebs.join(",")}),
                    Some(server.id.clone()),
                )
            }
            None => (Vec::new(), json!({}), None),
        };
        let summary = match &resource {
            Some(id) => format!(
                "replication moved on in {} (generation {generation}); {id} took a snapshot",
                self.where_()
            ),
            None => format!(
                "replication moved on in {} (generation {generation})",
                self.where_()
            ),
        };
        let event = self.drs_event("DRS PIT Snapshot Taken", seed, resources, detail);
        (self.region.clone(), resource, event, summary)
    }

    fn stall(&mut self, pick: u64) -> Result<Outcome, LiveError> {
        let (generation, fleet) = self.next_generation();
        let server = cyclic(&fleet, pick)
            .find(|s| s.state != ReplicationState::Stalled)
            .ok_or_else(|| self.no_server("is not STALLED"))?;
        let server = self.set(ServerSet::Stalled {
            server: server.id.clone(),
            generation,
        });
        Ok(self.stalled_change(&server, "STALLED", "stalled"))
    }

    fn recover(&mut self, pick: u64) -> Result<Outcome, LiveError> {
        let (generation, fleet) = self.next_generation();
        let stalled_by_change: Vec<&str> = self
            .config
            .servers_set(&self.account, self.region)
            .iter()
            .filter(|s| matches!(s, ServerSet::Stalled { .. }))
            .map(ServerSet::server)
            .collect();
        let server = cyclic(&fleet, pick)
            .find(|s| stalled_by_change.contains(&s.id.as_str()))
            .or_else(|| cyclic(&fleet, pick).find(|s| s.state == ReplicationState::Stalled))
            .ok_or_else(|| self.no_server("is STALLED"))?;
        let server = self.set(ServerSet::Recovered {
            server: server.id.clone(),
            generation,
        });
        Ok(self.stalled_change(&server, "NOT_STALLED", "recovered"))
    }

    fn stalled_change(&self, server: &SourceServer, state: &str, verb: &str) -> Outcome {
        let seed = self
            .seed()
            .with_str(state)
            .with_str(&server.id)
            .with(server.touch);
        let event = self.drs_event(
            "DRS Source Server Data Replication Stalled Change",
            seed.with(self.config.fleet(&self.account, self.region).generation),
            vec![server.arn.clone()],
            json!({"state": state}),
        );
        let summary = format!("{} in {} {verb}", server.id, self.where_());
        (self.region.clone(), Some(server.id.clone()), event, summary)
    }

    fn launch(&mut self, pick: u64, drill: bool, succeeded: bool) -> Result<Outcome, LiveError> {
        let (generation, fleet) = self.next_generation();
        let server = cyclic(&fleet, pick)
            .next()
            .ok_or_else(|| self.no_server("exists"))?;
        let seed = self.seed().with_str("launch").with(generation);
        let job_id = format!("drsjob-{}", seed.rng().hex(17));
        let server = self.set(ServerSet::Launched {
            server: server.id.clone(),
            generation,
            job_id: job_id.clone(),
            drill,
            succeeded,
        });
        let state = if succeeded {
            "RECOVERY_LAUNCH_SUCCEEDED"
        } else {
            "RECOVERY_LAUNCH_FAILED"
        };
        let event = self.drs_event(
            "DRS Source Server Launch Result",
            seed,
            vec![server.arn.clone()],
            json!({
                "state": state,
                "job-id": job_id,
                "is-drill": if drill { "TRUE" } else { "FALSE" },
            }),
        );
        let summary = format!(
            "{} launch of {} in {} {} ({job_id})",
            if drill { "drill" } else { "recovery" },
            server.id,
            self.where_(),
            if succeeded { "succeeded" } else { "failed" },
        );
        Ok((self.region.clone(), Some(server.id), event, summary))
    }

    fn subnet(&mut self) -> Result<Outcome, LiveError> {
        let count = self.config.fleet(&self.account, self.region).subnets;
        let count = count.saturating_add(1);
        self.config.set_subnets(self.account, self.region, count);
        self.config.validate()?;
        let params = self.config.fleet(&self.account, self.region);
        let network = self
            .data
            .network(self.config.seed, &self.account, self.region, params);
        let subnet = &network.subnets[network.subnets.len() - 1];
        let field = |tag| xml_text(&subnet.xml, tag);
        let request = json!({
            "vpcId": field("vpcId"),
            "cidrBlock": field("cidrBlock"),
            "availabilityZone": field("availabilityZone"),
        });
        let seed = self.seed().with_str("subnet").with(u64::from(count));
        let response = json!({
            "requestId": uuid(seed.with_str("request")),
            "subnet": {
                "subnetId": subnet.id,
                "subnetArn": field("subnetArn"),
                "state": field("state"),
                "vpcId": field("vpcId"),
                "cidrBlock": field("cidrBlock"),
                "availableIpAddressCount": field("availableIpAddressCount").parse::<u64>().unwrap_or(0),
                "availabilityZone": field("availabilityZone"),
                "availabilityZoneId": field("availabilityZoneId"),
                "ownerId": self.account,
                "defaultForAz": false,
                "mapPublicIpOnLaunch": field("mapPublicIpOnLaunch") == "true",
                "assignIpv6AddressOnCreation": false,
                "ipv6CidrBlockAssociationSet": {},
            },
        });
        let event = self.cloudtrail("ec2", "CreateSubnet", self.region, seed, request, response);
        let summary = format!("{} created in {}", subnet.id, self.where_());
        Ok((self.region.clone(), Some(subnet.id.clone()), event, summary))
    }

    fn security_group(&mut self) -> Result<Outcome, LiveError> {
        let count = self
            .config
            .fleet(&self.account, self.region)
            .security_groups;
        let count = count.saturating_add(1);
        self.config
            .set_security_groups(self.account, self.region, count);
        self.config.validate()?;
        let params = self.config.fleet(&self.account, self.region);
        let network = self
            .data
            .network(self.config.seed, &self.account, self.region, params);
        let group = &network.security_groups[network.security_groups.len() - 1];
        let field = |tag| xml_text(&group.xml, tag);
        let request = json!({
            "groupName": field("groupName"),
            "groupDescription": field("groupDescription"),
            "vpcId": field("vpcId"),
        });
        let seed = self.seed().with_str("sg").with(u64::from(count));
        let response = json!({
            "requestId": uuid(seed.with_str("request")),
            "_return": true,
            "groupId": group.id,
            "securityGroupArn": field("securityGroupArn"),
        });
        let event = self.cloudtrail(
            "ec2",
            "CreateSecurityGroup",
            self.region,
            seed,
            request,
            response,
        );
        let summary = format!(
            "{} ({}) created in {}",
            group.id,
            field("groupName"),
            self.where_()
        );
        Ok((self.region.clone(), Some(group.id.clone()), event, summary))
    }

    fn instance_profile(&mut self) -> Result<Outcome, LiveError> {
        let count = self
            .config
            .instance_profiles(&self.account)
            .saturating_add(1);
        self.config.set_instance_profiles(self.account, count);
        self.config.validate()?;
        let profiles = self.data.profiles(self.config.seed, &self.account, count);
        let newest = u64::from(count) - 1;
        let profile = profiles.iter().find(|p| p.index == newest);
        let profile = profile.unwrap_or_else(|| unreachable!("count profiles were generated"));
        let field = |tag| xml_text(&profile.xml, tag);
        let home = iam_region(self.region);
        let request = json!({"instanceProfileName": profile.name, "path": profile.path});
        let response = json!({
            "instanceProfile": {
                "path": profile.path,
                "instanceProfileName": profile.name,
                "instanceProfileId": field("InstanceProfileId"),
                "arn": field("Arn"),
                "createDate": field("CreateDate"),
                "roles": [],
            },
        });
        let seed = Seed::new(self.config.seed)
            .with_str("live-iam")
            .with_str(self.account.as_str())
            .with(newest);
        let event = self.cloudtrail(
            "iam",
            "CreateInstanceProfile",
            &home,
            seed,
            request,
            response,
        );
        let summary = format!(
            "instance profile {} created in {}",
            profile.name, self.account
        );
        Ok((home, Some(profile.name.clone()), event, summary))
    }

    fn source_network(&mut self, pick: u64) -> Result<Outcome, LiveError> {
        let networks = self.data.source_networks(
            self.config.seed,
            &self.account,
            self.region,
            self.config.source_networks_set(&self.account, self.region),
        );
        if networks.is_empty() {
            return Err(LiveError::NoSourceNetwork {
                account: self.account,
                region: self.region.clone(),
            });
        }
        let network = &networks[(pick % networks.len() as u64) as usize];
        let seed = self.seed().with_str("source-network").with_str(&network.id);
        let next = match network.status {
            "PROTECTED" if seed.with_str(network.status).unit() < 0.5 => "STOPPED",
            "PROTECTED" => "ERROR",
            "STOPPED" | "ERROR" => "IN_PROGRESS",
            _ => "PROTECTED",
        };
        self.config.set_source_network(
            self.account,
            self.region,
            SourceNetworkSet {
                network: network.id.clone(),
                status: next.to_owned(),
            },
        );
        let event = self.drs_event(
            "DRS Source Network Protection Status Change",
            seed.with_str(next),
            vec![network.arn.clone()],
            json!({"state": next, "previousState": network.status}),
        );
        let summary = format!(
            "source network {} in {} {} -> {next}",
            network.id,
            self.where_(),
            network.status
        );
        Ok((
            self.region.clone(),
            Some(network.id.clone()),
            event,
            summary,
        ))
    }

    fn failback(&mut self, pick: u64) -> Result<Outcome, LiveError> {
        let fleet = self.fleet();
        let instances = &fleet.recovery_instances;
        let n = instances.len() as u64;
        let instance = (0..n)
            .map(|i| &instances[((pick % n + i) % n) as usize])
            .find(|r| {
                !r.drill && r.ec2_state != "TERMINATED" && next_failback(r.failback, 0.5).is_some()
            });
        let Some(instance) = instance else {
            return Err(LiveError::NoRecoveryInstance {
                account: self.account,
                region: self.region.clone(),
            });
        };
        let generation = self.config.fleet(&self.account, self.region).generation;
        let retries = self
            .config
            .servers_set(&self.account, self.region)
            .iter()
            .find_map(|set| match set {
                ServerSet::Failback {
                    recovery_instance,
                    retries,
                    ..
                } if *recovery_instance == instance.id => Some(*retries),
                _ => None,
            })
            .unwrap_or(0);
        // A retry draws afresh, so a failback that erred can get through.
        let seed = self
            .seed()
            .with_str("failback")
            .with_str(&instance.id)
            .with(u64::from(retries));
        let draw = seed.with_str(instance.failback).unit();
        let next = next_failback(instance.failback, draw)
            .unwrap_or_else(|| unreachable!("the instance was chosen as able to move on"));
        let retries = retries.saturating_add(u32::from(instance.failback == "FAILBACK_ERROR"));
        self.config.set_server(
            self.account,
            self.region,
            ServerSet::Failback {
                server: instance.source_server.clone(),
                generation,
                recovery_instance: instance.id.clone(),
                state: next.to_owned(),
                retries,
            },
        );
        let event = self.drs_event(
            "DRS Recovery Instance Failback State Change",
            seed.with_str(next),
            vec![instance.arn.clone()],
            json!({"state": next}),
        );
        let summary = format!(
            "recovery instance {} of {} in {} {} -> {next}",
            instance.id,
            instance.source_server,
            self.where_(),
            instance.failback
        );
        Ok((
            self.region.clone(),
            Some(instance.id.clone()),
            event,
            summary,
        ))
    }

    /// An event DRS sends EventBridge itself.
    fn drs_event(
        &self,
        detail_type: &str,
        seed: Seed,
        resources: Vec<String>,
        detail: Value,
    ) -> Value {
        envelope(
            seed.with(self.time.secs as u64),
            detail_type,
            "aws.drs",
            &self.account,
            self.time,
            self.region,
            resources,
            detail,
        )
    }

    /// An API call CloudTrail delivers to EventBridge.
    fn cloudtrail(
        &self,
        service: &str,
        name: &str,
        region: &Region,
        seed: Seed,
        request: Value,
        response: Value,
    ) -> Value {
        let seed = seed.with(self.time.secs as u64);
        let request_id = response
            .get("requestId")
            .and_then(Value::as_str)
            .map_or_else(|| uuid(seed.with_str("request")), str::to_owned);
        let account = self.account.as_str();
        let detail = json!({
            "eventVersion": "1.09",
            "userIdentity": {
                "type": "AssumedRole",
                "principalId": format!("AROADRSSIMULATOR0000:drs-sim"),
                "arn": format!("arn:{}:sts::{account}:assumed-role/drs-sim-operator/drs-sim", partition(region)),
                "accountId": account,
            },
            "eventTime": self.time.iam(),
            "eventSource": format!("{service}.amazonaws.com"),
            "eventName": name,
            "awsRegion": region,
            "sourceIPAddress": "198.51.100.7",
            "userAgent": "drs-sim",
            "requestParameters": request,
            "responseElements": response,
            "requestID": request_id,
            "eventID": uuid(seed.with_str("event")),
            "readOnly": false,
            "eventType": "AwsApiCall",
            "managementEvent": true,
            "recipientAccountId": account,
            "eventCategory": "Management",
        });
        envelope(
            seed,
            "AWS API Call via CloudTrail",
            &format!("aws.{service}"),
            &self.account,
            self.time,
            region,
            Vec::new(),
            detail,
        )
    }
}

/// The EventBridge envelope.
#[allow(clippy::too_many_arguments)]
fn envelope(
    seed: Seed,
    detail_type: &str,
    source: &str,
    account: &AccountId,
    time: SimTime,
    region: &Region,
    resources: Vec<String>,
    detail: Value,
) -> Value {
    json!({
        "version": "0",
        "id": uuid(seed.with_str("envelope")),
        "detail-type": detail_type,
        "source": source,
        "account": account,
        "time": time.iam(),
        "region": region,
        "resources": resources,
        "detail": detail,
    })
}

/// The `failback.state` after `state`, `draw` (in [0, 1)) choosing among the
/// plausible ones; `None` when it does not move on (COMPLETED, or a state only
/// a terminated drill's instance has).
fn next_failback(state: &str, draw: f64) -> Option<&'static str> {
    Some(match state {
        "FAILBACK_NOT_STARTED" | "FAILBACK_ERROR" => "FAILBACK_IN_PROGRESS",
        "FAILBACK_IN_PROGRESS" if draw < 0.1 => "FAILBACK_ERROR",
        "FAILBACK_IN_PROGRESS" if draw < 0.25 => "FAILBACK_NOT_READY_FOR_LAUNCH",
        "FAILBACK_IN_PROGRESS" | "FAILBACK_NOT_READY_FOR_LAUNCH" => "FAILBACK_READY_FOR_LAUNCH",
        "FAILBACK_READY_FOR_LAUNCH" if draw < 0.1 => "FAILBACK_ERROR",
        "FAILBACK_READY_FOR_LAUNCH" => "FAILBACK_COMPLETED",
        _ => return None,
    })
}

/// The servers of `fleet` from index `start` (modulo its size) round to the one
/// before it.
fn cyclic(fleet: &Fleet, start: u64) -> impl Iterator<Item = &SourceServer> {
    let n = fleet.servers.len();
    let first = if n == 0 {
        0
    } else {
        (start % n as u64) as usize
    };
    (0..n).map(move |i| &fleet.servers[(first + i) % n])
}

/// The text of the first `<tag>` of an item the simulator rendered.
fn xml_text<'a>(xml: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    xml.split_once(&open)
        .and_then(|(_, rest)| rest.split_once('<'))
        .map_or("", |(text, _)| text)
}

/// Where IAM's CloudTrail events are delivered for the partition of `region`.
fn iam_region(region: &Region) -> Region {
    let home = match partition(region) {
        "aws-cn" => "cn-north-1",
        "aws-us-gov" => "us-gov-west-1",
        _ => "us-east-1",
    };
    Region::parse(home).unwrap_or_else(|_| region.clone())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn account(raw: &str) -> AccountId {
        AccountId::parse(raw).unwrap()
    }

    fn region(raw: &str) -> Region {
        Region::parse(raw).unwrap()
    }

    /// 2026-11-29T10:00:00Z.
    fn at() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_795_946_400)
    }

    /// Everything served, per listing: DRS servers of two fleets, EC2 items of
    /// two fleets, instance profiles of two accounts.
    #[derive(Debug, PartialEq)]
    struct Served {
        servers: Vec<Vec<String>>,
        subnets: Vec<Vec<String>>,
        groups: Vec<Vec<String>>,
        profiles: Vec<Vec<String>>,
    }

    fn fleets() -> [(AccountId, Region); 2] {
        [
            (account("111111111111"), region("us-east-1")),
            (account("222222222222"), region("eu-west-1")),
        ]
    }

    fn served(config: &SimConfig) -> Served {
        // A fresh cache each time, so nothing served is stale.
        let data = Datasets::default();
        let mut out = Served {
            servers: Vec::new(),
            subnets: Vec::new(),
            groups: Vec::new(),
            profiles: Vec::new(),
        };
        for (a, r) in fleets() {
            let params = config.fleet(&a, &r);
            let fleet = data.fleet(config.seed, &a, &r, params, config.servers_set(&a, &r));
            out.servers
                .push(fleet.servers.iter().map(|s| s.json.clone()).collect());
            let network = data.network(config.seed, &a, &r, params);
            out.subnets
                .push(network.subnets.iter().map(|s| s.xml.clone()).collect());
            out.groups.push(
                network
                    .security_groups
                    .iter()
                    .map(|s| s.xml.clone())
                    .collect(),
            );
            let profiles = data.profiles(config.seed, &a, config.instance_profiles(&a));
            out.profiles
                .push(profiles.iter().map(|p| p.xml.clone()).collect());
        }
        out
    }

    fn server_json(config: &SimConfig, a: &AccountId, r: &Region, id: &str) -> Value {
        let fleet = Datasets::default().fleet(
            config.seed,
            a,
            r,
            config.fleet(a, r),
            config.servers_set(a, r),
        );
        let server = fleet.servers.iter().find(|s| s.id == id).unwrap();
        serde_json::from_str(&server.json).unwrap()
    }

    fn apply_to_first(config: &mut SimConfig, change: Change) -> LiveEvent {
        let (a, r) = fleets()[0].clone();
        apply(config, &Datasets::default(), change, &a, &r, at()).unwrap()
    }

    fn config() -> SimConfig {
        SimConfig {
            seed: 11,
            ..SimConfig::default()
        }
    }

    #[test]
    fn a_subnet_created_adds_one_subnet_to_its_fleet_and_nothing_else() {
        // GIVEN a simulator's configuration and what it serves
        let mut config = config();
        let before = served(&config);
        // WHEN a subnet is created in the first fleet
        let live = apply_to_first(&mut config, Change::SubnetCreated);
        // THEN that fleet lists one more subnet, the one the event names
        let after = served(&config);
        assert_eq!(after.subnets[0].len(), before.subnets[0].len() + 1);
        assert_eq!(after.subnets[0][..12], before.subnets[0][..]);
        let id = live.event["detail"]["responseElements"]["subnet"]["subnetId"]
            .as_str()
            .unwrap();
        assert!(after.subnets[0][12].contains(&format!("<subnetId>{id}</subnetId>")));
        assert_eq!(live.resource.as_deref(), Some(id));
        // AND nothing else changed
        assert_eq!(after.subnets[1], before.subnets[1]);
        assert_eq!(after.servers, before.servers);
        assert_eq!(after.groups, before.groups);
        assert_eq!(after.profiles, before.profiles);
        // AND the event is CloudTrail's, for the fleet's account and region
        let event = &live.event;
        assert_eq!(event["source"], "aws.ec2");
        assert_eq!(event["detail-type"], "AWS API Call via CloudTrail");
        assert_eq!(event["detail"]["eventSource"], "ec2.amazonaws.com");
        assert_eq!(event["detail"]["eventName"], "CreateSubnet");
        assert_eq!(event["detail"]["awsRegion"], "us-east-1");
        assert_eq!(event["detail"]["recipientAccountId"], "111111111111");
        assert_eq!(event["time"], "2026-11-29T10:00:00Z");
        assert!(after.subnets[0][12].contains(&format!(
            "<vpcId>{}</vpcId>",
            event["detail"]["requestParameters"]["vpcId"].as_str().unwrap()
        )));
    }

    #[test]
    fn a_security_group_created_adds_one_group_to_its_fleet_and_nothing_else() {
        let mut config = config();
        let before = served(&config);
        let live = apply_to_first(&mut config, Change::SecurityGroupCreated);
        let after = served(&config);
        assert_eq!(after.groups[0].len(), 21);
        assert_eq!(after.groups[0][..20], before.groups[0][..]);
        let id = live.event["detail"]["responseElements"]["groupId"]
            .as_str()
            .unwrap();
        assert!(after.groups[0][20].contains(&format!("<groupId>{id}</groupId>")));
        assert_eq!(live.event["detail"]["eventName"], "CreateSecurityGroup");
        assert_eq!(after.groups[1], before.groups[1]);
        assert_eq!(after.subnets, before.subnets);
        assert_eq!(after.servers, before.servers);
        assert_eq!(after.profiles, before.profiles);
    }

    #[test]
    fn an_instance_profile_created_adds_one_profile_to_its_account_only() {
        let mut config = config();
        let before = served(&config);
        let live = apply_to_first(&mut config, Change::InstanceProfileCreated);
        let after = served(&config);
        assert_eq!(after.profiles[0].len(), 26);
        let name =
            live.event["detail"]["responseElements"]["instanceProfile"]["instanceProfileName"]
                .as_str()
                .unwrap();
        let tag = format!("<InstanceProfileName>{name}</InstanceProfileName>");
        assert!(!before.profiles[0].iter().any(|p| p.contains(&tag)));
        assert!(after.profiles[0].iter().any(|p| p.contains(&tag)));
        assert!(
            before.profiles[0]
                .iter()
                .all(|p| after.profiles[0].contains(p))
        );
        assert_eq!(after.profiles[1], before.profiles[1]);
        assert_eq!(after.servers, before.servers);
        assert_eq!(after.subnets, before.subnets);
        // IAM is global: the event comes from us-east-1, whatever the fleet.
        assert_eq!(live.event["source"], "aws.iam");
        assert_eq!(live.event["region"], "us-east-1");
        assert_eq!(live.event["detail"]["eventSource"], "iam.amazonaws.com");
        assert_eq!(live.event["detail"]["eventName"], "CreateInstanceProfile");
        assert_eq!(live.event["detail"]["recipientAccountId"], "111111111111");
        assert_eq!(config.accounts.len(), 1);
        assert_eq!(config.accounts[0].instance_profiles, Some(26));
    }

    #[test]
    fn progress_bumps_only_its_fleet_and_names_a_redrawn_server() {
        let mut config = config();
        let before = served(&config);
        let live = apply_to_first(&mut config, Change::ReplicationProgress);
        let after = served(&config);
        assert_ne!(after.servers[0], before.servers[0]);
        assert_eq!(after.servers[1], before.servers[1]);
        assert_eq!(after.subnets[1], before.subnets[1]);
        assert_eq!(after.groups, before.groups);
        assert_eq!(after.profiles, before.profiles);
        let (a, r) = fleets()[0].clone();
        assert_eq!(config.fleet(&a, &r).generation, 1);
        assert_eq!(live.event["detail-type"], "DRS PIT Snapshot Taken");
        if let Some(id) = &live.resource {
            let server = server_json(&config, &a, &r, id);
            assert_eq!(live.event["resources"][0], server["arn"]);
            assert_eq!(
                server["dataReplicationInfo"]["dataReplicationState"],
                "CONTINUOUS"
            );
        }
    }

    #[test]
    fn a_stall_names_a_server_now_stalled_and_its_recovery_the_same_server() {
        let mut config = config();
        let (a, r) = fleets()[0].clone();
        let before = served(&config);
        // WHEN a server stalls
        let stalled = apply_to_first(&mut config, Change::ServerStalls { pick: 7 });
        // THEN the event names a server whose served state is STALLED
        let event = &stalled.event;
        assert_eq!(event["source"], "aws.drs");
        assert_eq!(
            event["detail-type"],
            "DRS Source Server Data Replication Stalled Change"
        );
        assert_eq!(event["detail"], json!({"state": "STALLED"}));
        let id = stalled.resource.clone().unwrap();
        assert_eq!(
            event["resources"][0],
            format!("arn:aws:drs:us-east-1:111111111111:source-server/{id}")
        );
        let state = |config: &SimConfig| {
            server_json(config, &a, &r, &id)["dataReplicationInfo"]["dataReplicationState"].clone()
        };
        assert_eq!(state(&config), "STALLED");
        assert!(stalled.summary.contains(&id) && stalled.summary.ends_with("stalled"));
        // AND the other fleet is untouched
        assert_eq!(served(&config).servers[1], before.servers[1]);
        // WHEN replication moves on for a while, the server stays stalled
        for _ in 0..30 {
            apply_to_first(&mut config, Change::ReplicationProgress);
            assert_eq!(state(&config), "STALLED");
        }
        // WHEN it recovers, by the same pick
        let recovered = apply_to_first(&mut config, Change::ServerRecovers { pick: 7 });
        assert_eq!(recovered.resource.as_deref(), Some(id.as_str()));
        assert_eq!(recovered.event["detail"], json!({"state": "NOT_STALLED"}));
        assert_eq!(state(&config), "CONTINUOUS");
        // AND the stall is no longer kept
        assert!(
            config
                .servers_set(&a, &r)
                .iter()
                .all(|s| !matches!(s, ServerSet::Stalled { .. }))
        );
    }

    #[test]
    fn a_launch_sets_the_servers_last_launch() {
        let mut config = config();
        let (a, r) = fleets()[0].clone();
        let live = apply_to_first(
            &mut config,
            Change::Launch {
                pick: 3,
                drill: true,
                succeeded: true,
            },
        );
        let event = &live.event;
        assert_eq!(event["detail-type"], "DRS Source Server Launch Result");
        assert_eq!(event["detail"]["state"], "RECOVERY_LAUNCH_SUCCEEDED");
        assert_eq!(event["detail"]["is-drill"], "TRUE");
        let job = event["detail"]["job-id"].as_str().unwrap();
        assert!(job.starts_with("drsjob-") && job.len() == 24);
        let server = server_json(&config, &a, &r, live.resource.as_deref().unwrap());
        assert_eq!(event["resources"][0], server["arn"]);
        assert_eq!(server["lastLaunchResult"], "SUCCEEDED");
        assert_eq!(server["lifeCycle"]["lastLaunch"]["initiated"]["jobID"], job);
        assert_eq!(
            server["lifeCycle"]["lastLaunch"]["initiated"]["type"],
            "DRILL"
        );
        assert_eq!(server["lifeCycle"]["lastLaunch"]["status"], "LAUNCHED");
        assert!(server["recoveryInstanceId"].is_string());
    }

    #[test]
    fn a_source_network_status_change_is_what_describe_serves() {
        let mut config = config();
        let (a, r) = fleets()[0].clone();
        let before = served(&config);
        let status = |config: &SimConfig, id: &str| {
            let networks = Datasets::default().source_networks(
                config.seed,
                &a,
                &r,
                config.source_networks_set(&a, &r),
            );
            let network = networks.iter().find(|n| n.id == id).unwrap();
            serde_json::from_str::<Value>(&network.json).unwrap()["replicationStatus"].clone()
        };
        let mut seen = std::collections::HashSet::new();
        for _ in 0..6 {
            let live = apply_to_first(&mut config, Change::SourceNetworkStatus { pick: 1 });
            let id = live.resource.clone().unwrap();
            assert_eq!(
                live.event["detail-type"],
                "DRS Source Network Protection Status Change"
            );
            assert_eq!(
                live.event["resources"][0],
                format!("arn:aws:drs:us-east-1:111111111111:source-network/{id}")
            );
            assert_eq!(live.event["detail"]["state"], status(&config, &id));
            assert_ne!(
                live.event["detail"]["state"],
                live.event["detail"]["previousState"]
            );
            seen.insert(live.event["detail"]["state"].as_str().unwrap().to_owned());
            assert_eq!(config.source_networks_set(&a, &r).len(), 1);
        }
        assert!(
            seen.contains("PROTECTED") && seen.contains("IN_PROGRESS"),
            "{seen:?}"
        );
        // Nothing else moves: not even the fleet's generation.
        assert_eq!(served(&config), before);
        assert_eq!(config.fleet(&a, &r).generation, 0);
        let again = SimConfig::from_json(&serde_json::to_string(&config).unwrap()).unwrap();
        assert_eq!(again, config);
    }

    /// Every recovery instance of (`a`, `r`) as served, by ID.
    fn recovery_instances(config: &SimConfig, a: &AccountId, r: &Region) -> HashMap<String, Value> {
        let fleet = Datasets::default().fleet(
            config.seed,
            a,
            r,
            config.fleet(a, r),
            config.servers_set(a, r),
        );
        fleet
            .recovery_instances
            .iter()
            .map(|i| (i.id.clone(), serde_json::from_str(&i.json).unwrap()))
            .collect()
    }

    /// Whether DRS moves a recovery instance's failback from `from` to `to`.
    fn plausible_failback(from: &str, to: &str) -> bool {
        matches!(
            (from, to),
            (
                "FAILBACK_NOT_STARTED" | "FAILBACK_ERROR",
                "FAILBACK_IN_PROGRESS"
            ) | (
                "FAILBACK_IN_PROGRESS",
                "FAILBACK_READY_FOR_LAUNCH" | "FAILBACK_NOT_READY_FOR_LAUNCH" | "FAILBACK_ERROR"
            ) | ("FAILBACK_NOT_READY_FOR_LAUNCH", "FAILBACK_READY_FOR_LAUNCH")
                | (
                    "FAILBACK_READY_FOR_LAUNCH",
                    "FAILBACK_COMPLETED" | "FAILBACK_ERROR"
                )
        )
    }

    /// Fleets large enough to hold a few recoveries' instances.
    fn recovering(seed: u64) -> SimConfig {
        SimConfig {
            seed,
            defaults: crate::FleetSize {
                servers: 150,
                ..crate::FleetSize::default()
            },
            ..SimConfig::default()
        }
    }

    #[test]
    fn given_recovery_instances_when_a_failback_moves_on_then_describe_serves_the_state_its_event_names()
     {
        // GIVEN a fleet with recovery instances and what it serves
        let mut config = recovering(11);
        let (a, r) = fleets()[0].clone();
        let before = served(&config);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..12 {
            let instances = recovery_instances(&config, &a, &r);
            // WHEN the failback of the instance at the same pick moves on
            let live = apply_to_first(&mut config, Change::FailbackState { pick: 2 });
            // THEN the event is DRS's, naming the instance by its ARN
            let id = live.resource.clone().unwrap();
            let event = &live.event;
            assert_eq!(event["source"], "aws.drs");
            assert_eq!(
                event["detail-type"],
                "DRS Recovery Instance Failback State Change"
            );
            assert_eq!(
                event["resources"],
                json!([format!(
                    "arn:aws:drs:us-east-1:111111111111:recovery-instance/{id}"
                )])
            );
            let state = event["detail"]["state"].as_str().unwrap().to_owned();
            assert_eq!(event["detail"], json!({"state": state}));
            // AND the instance served now has that state, reached plausibly
            let after = recovery_instances(&config, &a, &r);
            let (old, new) = (&instances[&id], &after[&id]);
            assert_eq!(old["isDrill"], false);
            assert_ne!(old["ec2InstanceState"], "TERMINATED");
            assert_eq!(new["arn"], event["resources"][0]);
            assert_eq!(new["failback"]["state"], state.as_str());
            let from = old["failback"]["state"].as_str().unwrap();
            assert!(plausible_failback(from, &state), "{from} -> {state}");
            assert!(live.summary.contains(&id) && live.summary.ends_with(&state));
            if state != "FAILBACK_NOT_STARTED" {
                assert!(new["failback"]["failbackJobID"].is_string());
            }
            // AND nothing else of it, nor any other instance, changed
            let without_failback = |v: &Value| {
                let mut v = v.clone();
                v.as_object_mut().unwrap().remove("failback");
                v
            };
            assert_eq!(without_failback(old), without_failback(new));
            for (other, instance) in &after {
                if *other != id {
                    assert_eq!(instances[other], *instance);
                }
            }
            seen.insert(state);
        }
        assert!(
            seen.contains("FAILBACK_IN_PROGRESS") && seen.contains("FAILBACK_COMPLETED"),
            "{seen:?}"
        );
        // AND the servers, the EC2 items and the generation did not move
        assert_eq!(served(&config), before);
        assert_eq!(config.fleet(&a, &r).generation, 0);
        // AND the failbacks are kept in the configuration, one per server
        let set = config.servers_set(&a, &r);
        assert!(set.iter().all(|s| matches!(s, ServerSet::Failback { .. })));
        let servers: std::collections::HashSet<&str> = set.iter().map(ServerSet::server).collect();
        assert_eq!(servers.len(), set.len());
        let again = SimConfig::from_json(&serde_json::to_string(&config).unwrap()).unwrap();
        assert_eq!(again, config);
        assert_eq!(
            recovery_instances(&again, &a, &r),
            recovery_instances(&config, &a, &r)
        );
    }

    #[test]
    fn a_failback_that_erred_is_retried_as_in_progress_and_counted() {
        // GIVEN a recovery instance whose failback erred
        let mut config = recovering(11);
        let (a, r) = fleets()[0].clone();
        let first = apply_to_first(&mut config, Change::FailbackState { pick: 2 });
        let id = first.resource.unwrap();
        let server = recovery_instances(&config, &a, &r)[&id]["sourceServerID"]
            .as_str()
            .unwrap()
            .to_owned();
        let erred = |retries| ServerSet::Failback {
            server: server.clone(),
            generation: 0,
            recovery_instance: id.clone(),
            state: "FAILBACK_ERROR".into(),
            retries,
        };
        config.set_server(a, &r, erred(0));
        assert_eq!(
            recovery_instances(&config, &a, &r)[&id]["failback"]["state"],
            "FAILBACK_ERROR"
        );
        // WHEN its failback moves on
        let live = apply_to_first(&mut config, Change::FailbackState { pick: 2 });
        // THEN it is in progress again, one retry on
        assert_eq!(live.resource.as_deref(), Some(id.as_str()));
        assert_eq!(
            live.event["detail"],
            json!({"state": "FAILBACK_IN_PROGRESS"})
        );
        let kept = config.servers_set(&a, &r);
        assert_eq!(kept.len(), 1);
        assert!(
            matches!(&kept[0], ServerSet::Failback { state, retries: 1, .. } if state == "FAILBACK_IN_PROGRESS"),
            "{kept:?}"
        );
        // AND a second error retries once more
        config.set_server(a, &r, erred(1));
        apply_to_first(&mut config, Change::FailbackState { pick: 2 });
        assert!(matches!(
            config.servers_set(&a, &r)[0],
            ServerSet::Failback { retries: 2, .. }
        ));
    }

    #[test]
    fn the_same_seed_moves_the_same_failbacks_the_same_way() {
        let run = |seed: u64| {
            let mut config = recovering(seed);
            let events: Vec<LiveEvent> = [5, 5, 40, 5, 40, 17]
                .into_iter()
                .map(|pick| apply_to_first(&mut config, Change::FailbackState { pick }))
                .collect();
            (events, config)
        };
        let (first, config) = run(11);
        let (second, again) = run(11);
        assert_eq!(first, second);
        assert_eq!(config, again);
        let (other, _) = run(12);
        assert_ne!(first, other);
    }

    #[test]
    fn the_envelope_is_eventbridges() {
        let mut config = config();
        let live = apply_to_first(&mut config, Change::ServerStalls { pick: 0 });
        let keys: Vec<&str> = live
            .event
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        for key in [
            "version",
            "id",
            "detail-type",
            "source",
            "account",
            "time",
            "region",
            "resources",
            "detail",
        ] {
            assert!(keys.contains(&key), "{key} missing: {keys:?}");
        }
        assert_eq!(live.event["version"], "0");
        assert_eq!(live.event["account"], "111111111111");
        assert_eq!(live.event["region"], "us-east-1");
        assert_eq!(live.event["id"].as_str().unwrap().len(), 36);
        // The same change to the same configuration gives the same event.
        let mut again = self::config();
        let twin = apply_to_first(&mut again, Change::ServerStalls { pick: 0 });
        assert_eq!(twin, live);
    }

    #[test]
    fn a_change_that_cannot_apply_changes_nothing() {
        let mut config = SimConfig {
            defaults: crate::FleetSize {
                servers: 0,
                ..crate::FleetSize::default()
            },
            ..self::config()
        };
        let before = config.clone();
        let (a, r) = fleets()[0].clone();
        let error = apply(
            &mut config,
            &Datasets::default(),
            Change::ServerStalls { pick: 0 },
            &a,
            &r,
            at(),
        )
        .unwrap_err();
        assert!(matches!(error, LiveError::NoServer { .. }), "{error}");
        let error = apply(
            &mut config,
            &Datasets::default(),
            Change::ServerRecovers { pick: 0 },
            &a,
            &r,
            at(),
        )
        .unwrap_err();
        assert!(matches!(error, LiveError::NoServer { .. }), "{error}");
        let error = apply(
            &mut config,
            &Datasets::default(),
            Change::FailbackState { pick: 0 },
            &a,
            &r,
            at(),
        )
        .unwrap_err();
        assert!(
            matches!(&error, LiveError::NoRecoveryInstance { account, region }
                if *account == a && *region == r),
            "{error}"
        );
        assert_eq!(
            error.to_string(),
            "111111111111/us-east-1 has no recovery instance whose failback can move on"
        );
        assert_eq!(config, before);
        config.set_subnets(a, &r, 10_000);
        let full = config.clone();
        let error = apply(
            &mut config,
            &Datasets::default(),
            Change::SubnetCreated,
            &a,
            &r,
            at(),
        )
        .unwrap_err();
        assert!(
            matches!(&error, LiveError::Config(e) if e.field == "fleets[0].subnets"),
            "{error}"
        );
        assert_eq!(config, full);
        assert_ne!(before, full);
    }
}
