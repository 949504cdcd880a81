//! The DRS side of a fleet: source servers and staging accounts of one
//! (account, region), generated from the seed. A server's identity (ID, host,
//! hardware, staging) never changes; its state (replication, launches, last seen)
//! is redrawn at the generations that "touch" it, so bumping a generation changes
//! some servers and leaves the others byte-identical.

use serde::Serialize;
use serde_json::{Value, json};
use strum::{EnumCount as _, IntoEnumIterator as _};

use crate::{
    aws::{account_id, partition, resource_id, uuid, zone},
    clock::{SimTime, iso_duration},
    config::{FleetParams, ServerSet},
    ids::{AccountId, Region},
    launches::{self, Job, RecoveryInstance},
    rng::{Rng, Seed},
};

const GIB: u64 = 1 << 30;

/// All DRS data of one (account, region) at one generation.
#[derive(Debug)]
pub(crate) struct Fleet {
    pub(crate) servers: Vec<SourceServer>,
    /// Sorted, distinct.
    pub(crate) staging_accounts: Vec<String>,
    /// Latest first, as DescribeJobs lists them.
    pub(crate) jobs: Vec<Job>,
    pub(crate) recovery_instances: Vec<RecoveryInstance>,
}

/// One source server, rendered once as its JSON object.
#[derive(Debug, Clone)]
pub(crate) struct SourceServer {
    pub(crate) id: String,
    pub(crate) arn: String,
    /// The last generation that redrew its state.
    pub(crate) touch: u64,
    /// Its `dataReplicationState`, as served.
    pub(crate) state: ReplicationState,
    /// EC2 instance ID, VMware UUID and MAC addresses: what `hardwareId` matches.
    pub(crate) hardware_ids: Vec<String>,
    pub(crate) staging_account: Option<String>,
    /// Its `lifeCycle.lastLaunch`, if it was ever launched.
    pub(crate) last_launch: Option<LastLaunch>,
    /// The `SourceServer` JSON object.
    pub(crate) json: String,
}

/// A server's last launch, as its record serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LastLaunch {
    pub(crate) job_id: String,
    pub(crate) drill: bool,
    pub(crate) status: LaunchStatus,
    /// `initiated.apiCallDateTime`.
    pub(crate) at: SimTime,
    /// Its `recoveryInstanceId`, when the launch left one.
    pub(crate) recovery_instance: Option<String>,
}

/// The staging accounts of `account`: the same in every region.
pub(crate) fn staging_accounts(seed: u64, account: &AccountId) -> Vec<String> {
    let base = Seed::new(seed)
        .with_str("staging")
        .with_str(account.as_str());
    let mut ids: Vec<String> = (0..3)
        .map(|i| account_id(base.with(i), account.as_str()))
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// Generates the fleet of (`account`, `region`), with the states live changes
/// `set` served over the generated ones.
pub(crate) fn generate(
    seed: u64,
    account: &AccountId,
    region: &Region,
    params: FleetParams,
    set: &[ServerSet],
) -> Fleet {
    let staging = staging_accounts(seed, account);
    let ctx = Context {
        seed: Seed::new(seed)
            .with_str("drs")
            .with_str(account.as_str())
            .with_str(region.as_str()),
        account,
        region,
        staging: &staging,
        count: u64::from(params.servers),
        generation: params.generation,
        set,
    };
    let servers: Vec<SourceServer> = (0..ctx.count).map(|i| ctx.server(i)).collect();
    let (jobs, recovery_instances) = launches::generate(ctx.seed, account, region, &servers, set);
    Fleet {
        servers,
        staging_accounts: staging,
        jobs,
        recovery_instances,
    }
}

/// The last generation, at most `generation`, that touched item `index` of
/// `count`: each generation touches about a fifth of the items, and always item
/// `generation % count`, so every bump changes something.
pub(crate) fn last_touch(seed: Seed, index: u64, count: u64, generation: u64) -> u64 {
    let floor = generation.saturating_sub(256);
    (floor + 1..=generation)
        .rev()
        .find(|&g| (count > 0 && g % count == index) || seed.with(index).with(g).unit() < 0.2)
        .unwrap_or(0)
}

struct Context<'a> {
    seed: Seed,
    account: &'a AccountId,
    region: &'a Region,
    staging: &'a [String],
    count: u64,
    generation: u64,
    set: &'a [ServerSet],
}

/// What live changes set on one server and still hold at its last redraw.
#[derive(Default)]
struct Set<'a> {
    state: Option<ReplicationState>,
    launch: Option<&'a ServerSet>,
}

/// What a server is: drawn once from its index.
struct Identity {
    id: String,
    arn: String,
    hostname: String,
    fqdn: String,
    env: &'static str,
    app: &'static str,
    windows: bool,
    os: &'static str,
    origin: Origin,
    cpus: Vec<Value>,
    ram_bytes: u64,
    disks: Vec<(String, u64)>,
    nics: Vec<Value>,
    hardware_ids: Vec<String>,
    recommended: String,
    added: SimTime,
    first_byte: SimTime,
    agent_version: String,
    staging: Staging,
    failback: bool,
}

enum Origin {
    Ec2 {
        instance_id: String,
        account: String,
        region: &'static str,
        zone: usize,
    },
    VMware {
        uuid: String,
    },
    Physical,
}

enum Staging {
    NotExtended,
    Extended { account: String, arn: String },
    Error { account: String },
}

const OSES: [((&str, bool), u32); 6] = [
    (
        (
            "Microsoft Windows Server 2019 Datacenter 10.0.17763 64-bit",
            true,
        ),
        18,
    ),
    (
        (
            "Microsoft Windows Server 2022 Datacenter 10.0.20348 64-bit",
            true,
        ),
        17,
    ),
    (
        (
            "Red Hat Enterprise Linux 8.9 (Ootpa) 4.18.0-513.5.1.el8_9.x86_64",
            false,
        ),
        15,
    ),
    (
        (
            "Red Hat Enterprise Linux 9.3 (Plow) 5.14.0-362.8.1.el9_3.x86_64",
            false,
        ),
        12,
    ),
    (("Ubuntu 22.04.4 LTS 5.15.0-1055-aws x86_64", false), 20),
    (
        (
            "Amazon Linux 2023.4.20240528 6.1.91-99.172.amzn2023.x86_64",
            false,
        ),
        18,
    ),
];
const ROLES: [&str; 11] = [
    "web", "app", "api", "db", "cache", "mq", "batch", "etl", "file", "search", "auth",
];
const ENVS: [(&str, u32); 4] = [("prod", 50), ("staging", 20), ("dev", 20), ("qa", 10)];
const APPS: [&str; 8] = [
    "payments",
    "orders",
    "crm",
    "billing",
    "inventory",
    "hr",
    "analytics",
    "portal",
];
const CPU_MODELS: [&str; 5] = [
    "Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz",
    "Intel(R) Xeon(R) Gold 6248R CPU @ 3.00GHz",
    "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz",
    "Intel(R) Xeon(R) CPU E5-2686 v4 @ 2.30GHz",
    "AMD EPYC 7R13 Processor",
];
const CORES: [(u64, u32); 7] = [
    (2, 15),
    (4, 30),
    (8, 25),
    (16, 15),
    (32, 8),
    (48, 4),
    (64, 3),
];
pub(crate) const ORIGIN_REGIONS: [&str; 6] = [
    "us-east-1",
    "us-west-2",
    "eu-west-1",
    "eu-central-1",
    "ap-southeast-2",
    "ap-northeast-1",
];
/// A server's `dataReplicationState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum ReplicationState {
    Continuous,
    InitialSync,
    Rescan,
    Backlog,
    CreatingSnapshot,
    Initiating,
    Stalled,
    Paused,
    Disconnected,
    Stopped,
}

use ReplicationState::{
    Backlog, Continuous, CreatingSnapshot, Disconnected, InitialSync, Initiating, Paused, Rescan,
    Stalled, Stopped,
};

/// How often each state is drawn (the order is part of the data).
const STATES: [(ReplicationState, u32); 10] = [
    (Continuous, 70),
    (InitialSync, 6),
    (Rescan, 3),
    (Backlog, 4),
    (CreatingSnapshot, 3),
    (Initiating, 3),
    (Stalled, 4),
    (Paused, 2),
    (Disconnected, 3),
    (Stopped, 2),
];

/// The steps of `dataReplicationInitiation`, in the order DRS runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::EnumIter, strum::EnumCount)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum InitiationStep {
    Wait,
    CreateSecurityGroup,
    LaunchReplicationServer,
    BootReplicationServer,
    AuthenticateWithService,
    DownloadReplicationSoftware,
    CreateStagingDisks,
    AttachStagingDisks,
    PairReplicationServerWithAgent,
    ConnectAgentToReplicationServer,
    StartDataTransfer,
}

/// The status of one initiation step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum StepStatus {
    NotStarted,
    InProgress,
    Succeeded,
    Failed,
}

/// A server's `lastLaunchResult`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum LaunchResult {
    NotStarted,
    Succeeded,
    Pending,
    Failed,
}

/// The `status` of a server's `lastLaunch` (and a job's participating server).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum LaunchStatus {
    Pending,
    InProgress,
    Launched,
    Failed,
    /// Its instance was terminated since (jobs only).
    Terminated,
}

/// Replication errors, the initiation step each one fails (if any) and a raw error.
const ERRORS: [(&str, Option<InitiationStep>, &str); 8] = [
    (
        "AGENT_NOT_SEEN",
        None,
        "The AWS Replication Agent has not been seen for 1 hour",
    ),
    (
        "NOT_CONVERGING",
        None,
        "Replication is not converging: the write rate exceeds the available bandwidth",
    ),
    (
        "UNSTABLE_NETWORK",
        None,
        "Connection to the replication server was reset 14 times in the last hour",
    ),
    (
        "SNAPSHOTS_FAILURE",
        None,
        "Failed to create EBS snapshot: SnapshotLimitExceeded",
    ),
    (
        "FAILED_TO_BOOT_REPLICATION_SERVER",
        Some(InitiationStep::BootReplicationServer),
        "Replication server i-0 failed status checks",
    ),
    (
        "FAILED_TO_AUTHENTICATE_WITH_SERVICE",
        Some(InitiationStep::AuthenticateWithService),
        "Replication server could not reach drs endpoint on TCP 443",
    ),
    (
        "FAILED_TO_ATTACH_STAGING_DISKS",
        Some(InitiationStep::AttachStagingDisks),
        "VolumeInUse: staging volume is attached to another instance",
    ),
    (
        "FAILED_TO_CONNECT_AGENT_TO_REPLICATION_SERVER",
        Some(InitiationStep::ConnectAgentToReplicationServer),
        "Agent could not connect to the replication server on TCP 1500",
    ),
];

impl Context<'_> {
    fn server(&self, index: u64) -> SourceServer {
        let identity = self.identity(index);
        let touch = last_touch(
            self.seed.with_str("touch"),
            index,
            self.count,
            self.generation,
        );
        let mut rng = self.seed.with_str("state").with(index).with(touch).rng();
        let set = self.set_on(&identity.id, touch);
        let (json, state, last_launch) = self.render(&identity, touch, &set, &mut rng);
        SourceServer {
            id: identity.id,
            arn: identity.arn,
            touch,
            state,
            hardware_ids: identity.hardware_ids,
            staging_account: match identity.staging {
                Staging::NotExtended => None,
                Staging::Extended { account, .. } | Staging::Error { account } => Some(account),
            },
            last_launch,
            json,
        }
    }

    /// What live changes set on `id` that its redraw at `touch` has not undone:
    /// a stall holds until a recovery; a recovery or launch until a later redraw.
    fn set_on(&self, id: &str, touch: u64) -> Set<'_> {
        let mut set = Set::default();
        for entry in self.set.iter().filter(|s| s.server() == id) {
            match entry {
                ServerSet::Stalled { .. } => set.state = Some(Stalled),
                ServerSet::Recovered { generation, .. } if *generation >= touch => {
                    set.state = Some(Continuous);
                }
                ServerSet::Launched { generation, .. } if *generation >= touch => {
                    set.launch = Some(entry);
                }
                // A failback is its recovery instance's (see `launches`).
                ServerSet::Recovered { .. }
                | ServerSet::Launched { .. }
                | ServerSet::Failback { .. } => {}
            }
        }
        set
    }

    fn identity(&self, index: u64) -> Identity {
        let seed = self.seed.with_str("identity").with(index);
        let mut rng = seed.rng();
        let id = resource_id("s", self.seed.with_str("id"), index);
        let partition = partition(self.region);
        let arn = format!(
            "arn:{partition}:drs:{}:{}:source-server/{id}",
            self.region, self.account
        );
        let role = *rng.pick(&ROLES);
        let env = *rng.weighted(&ENVS);
        let app = *rng.pick(&APPS);
        let hostname = format!("{role}-{:04}", index + 1);
        let fqdn = format!("{hostname}.{env}.example.internal");
        let (os, windows) = *rng.weighted(&OSES);

        let origin = match rng.below(100) {
            0..35 => {
                let region = *rng.pick(&ORIGIN_REGIONS);
                Origin::Ec2 {
                    instance_id: resource_id("i", seed.with_str("instance"), 0),
                    account: if rng.chance(0.7) {
                        self.account.to_string()
                    } else {
                        account_id(seed.with_str("origin"), self.account.as_str())
                    },
                    region,
                    zone: rng.below(3) as usize,
                }
            }
            35..85 => Origin::VMware {
                uuid: uuid(seed.with_str("vmware")),
            },
            _ => Origin::Physical,
        };

        let cores = *rng.weighted(&CORES);
        let sockets = if cores >= 16 && rng.chance(0.5) { 2 } else { 1 };
        let model = *rng.pick(&CPU_MODELS);
        let cpus = (0..sockets)
            .map(|_| json!({"cores": cores / sockets, "modelName": model}))
            .collect();
        let ratio = *rng.weighted(&[(2_u64, 20), (4, 55), (8, 25)]);
        let ram_bytes = cores * ratio * GIB;

        let disk_count = *rng.weighted(&[(1_usize, 35), (2, 35), (3, 20), (4, 10)]);
        let nvme = !windows && rng.chance(0.4);
        let disks = (0..disk_count)
            .map(|n| {
                let name = if windows {
                    format!("\\\\.\\PHYSICALDRIVE{n}")
                } else if nvme {
                    format!("/dev/nvme{n}n1")
                } else {
                    format!("/dev/sd{}", char::from(b'a' + n as u8))
                };
                let gib = if n == 0 {
                    *rng.pick(&[40, 50, 80, 100, 128, 200])
                } else {
                    rng.range(10, 205) * 10
                };
                (name, gib * GIB)
            })
            .collect();

        let vmware = matches!(origin, Origin::VMware { .. });
        let nic_count = if rng.chance(0.15) { 2 } else { 1 };
        let mut macs = Vec::new();
        let nics = (0..nic_count)
            .map(|n| {
                let mac = if vmware {
                    format!("00:50:56:{}", colon_hex(&mut rng, 3))
                } else {
                    format!("0a:{}", colon_hex(&mut rng, 5))
                };
                macs.push(mac.clone());
                let ips: Vec<String> = (0..rng.range(1, 2))
                    .map(|_| {
                        format!(
                            "10.{}.{}.{}",
                            rng.range(0, 63),
                            rng.range(0, 255),
                            rng.range(4, 250)
                        )
                    })
                    .collect();
                json!({"macAddress": mac, "ips": ips, "isPrimary": n == 0})
            })
            .collect();

        let mut hardware_ids = Vec::new();
        match &origin {
            Origin::Ec2 { instance_id, .. } => hardware_ids.push(instance_id.clone()),
            Origin::VMware { uuid } => hardware_ids.push(uuid.clone()),
            Origin::Physical => {}
        }
        hardware_ids.extend(macs);

        let family = match ratio {
            2 => *rng.pick(&["c5", "c6i", "c7i"]),
            4 => *rng.pick(&["m5", "m6i", "m7i"]),
            _ => *rng.pick(&["r5", "r6i", "r7i"]),
        };
        let recommended = format!("{family}.{}", size_for(cores));

        let added = SimTime::generation(0)
            .minus(rng.range(30, 700) as i64 * 86_400 + rng.range(0, 86_399) as i64);
        let added = SimTime::at(added.secs, rng.below(1_000_000) as u32);
        let first_byte = added.plus(rng.range(60, 1_800) as i64);
        let agent_version = format!("4.{}.{}.0", rng.range(5, 7), rng.range(100, 2_400));

        let staging = match rng.below(100) {
            0..10 => {
                let account = rng.pick(self.staging).clone();
                let other = resource_id("s", seed.with_str("staged"), 0);
                let arn = format!(
                    "arn:{partition}:drs:{}:{account}:source-server/{other}",
                    self.region
                );
                Staging::Extended { account, arn }
            }
            10..12 => Staging::Error {
                account: rng.pick(self.staging).clone(),
            },
            _ => Staging::NotExtended,
        };
        let failback = rng.chance(0.02);

        Identity {
            id,
            arn,
            hostname,
            fqdn,
            env,
            app,
            windows,
            os,
            origin,
            cpus,
            ram_bytes,
            disks,
            nics,
            hardware_ids,
            recommended,
            added,
            first_byte,
            agent_version,
            staging,
            failback,
        }
    }

    fn render(
        &self,
        id: &Identity,
        touch: u64,
        set: &Set<'_>,
        rng: &mut Rng,
    ) -> (String, ReplicationState, Option<LastLaunch>) {
        let now = SimTime::generation(touch);
        // Drawn even when set, so the draws after it stay where they were.
        let drawn = *rng.weighted(&STATES);
        let state = set.state.unwrap_or(drawn);
        let last_seen = match state {
            Disconnected => now.minus(rng.range(2 * 3_600, 5 * 86_400) as i64),
            Stopped | Paused => now.minus(rng.range(86_400, 20 * 86_400) as i64),
            _ => now.minus(rng.range(0, 120) as i64),
        };
        let last_seen = SimTime::at(last_seen.secs, rng.below(1_000_000) as u32);

        let mut replication = json!({
            "dataReplicationState": state,
            "replicatedDisks": self.replicated_disks(id, state, rng),
            "dataReplicationInitiation": initiation(id, state, now, rng),
            "stagingAvailabilityZone": zone(self.region, rng.below(3) as usize),
        });
        let lag = match state {
            Continuous => Some(rng.range(1, 30)),
            CreatingSnapshot => Some(rng.range(5, 60)),
            Rescan => Some(rng.range(60, 600)),
            Backlog => Some(rng.range(300, 7_200)),
            Stalled => Some(rng.range(3_600, 3 * 86_400)),
            Paused | Stopped | Disconnected => {
                Some(u64::try_from(now.secs - last_seen.secs).unwrap_or(0))
            }
            InitialSync | Initiating => None,
        };
        if let Some(lag) = lag {
            replication["lagDuration"] = json!(iso_duration(lag));
        }
        if matches!(state, InitialSync | Rescan | Backlog) {
            replication["etaDateTime"] = json!(now.plus(rng.range(300, 36_000) as i64).drs());
        }
        if state == Stalled {
            let (error, _, raw) = error_for(id);
            replication["dataReplicationError"] = json!({"error": error, "rawError": raw});
        }

        let (drawn_result, drawn_launch) = last_launch(now, rng, id.added);
        let (result, mut last_launch) = match set.launch {
            Some(launch) => launched(launch),
            None => (drawn_result, drawn_launch),
        };
        let mut life_cycle = json!({
            "addedToServiceDateTime": id.added.drs(),
            "lastSeenByServiceDateTime": last_seen.drs(),
        });
        if state != Initiating {
            life_cycle["firstByteDateTime"] = json!(id.first_byte.drs());
            let elapsed = u64::try_from(last_seen.secs - id.first_byte.secs).unwrap_or(0);
            life_cycle["elapsedReplicationDuration"] = json!(iso_duration(elapsed));
        }
        if let Some(launch) = &last_launch {
            life_cycle["lastLaunch"] = launch.json();
        }

        let mut hints = json!({"fqdn": id.fqdn, "hostname": id.hostname});
        let mut cloud = json!({});
        match &id.origin {
            Origin::Ec2 {
                instance_id,
                account,
                region,
                zone: z,
            } => {
                hints["awsInstanceID"] = json!(instance_id);
                cloud = json!({
                    "originAccountID": account,
                    "originRegion": region,
                    "originAvailabilityZone": format!("{region}{}", char::from(b'a' + *z as u8)),
                });
            }
            Origin::VMware { uuid } => hints["vmWareUuid"] = json!(uuid),
            Origin::Physical => {}
        }

        let staging = match &id.staging {
            Staging::NotExtended => json!({"status": "NOT_EXTENDED"}),
            Staging::Extended { account, arn } => json!({
                "status": "EXTENDED",
                "stagingAccountID": account,
                "stagingSourceServerArn": arn,
            }),
            Staging::Error { account } => json!({
                "status": "EXTENSION_ERROR",
                "stagingAccountID": account,
                "errorMessage": "The staging source server no longer exists in the staging account",
            }),
        };

        let mut tags = json!({
            "Name": id.hostname,
            "Environment": id.env,
            "Application": id.app,
        });
        if id.windows {
            tags["Patching"] = json!("windows-monthly");
        }

        let mut server = json!({
            "sourceServerID": id.id,
            "arn": id.arn,
            "tags": tags,
            "lastLaunchResult": result,
            "dataReplicationInfo": replication,
            "lifeCycle": life_cycle,
            "sourceProperties": {
                "lastUpdatedDateTime": now.minus(rng.range(0, 3_600) as i64).drs(),
                "recommendedInstanceType": id.recommended,
                "identificationHints": hints,
                "networkInterfaces": id.nics,
                "disks": id.disks.iter()
                    .map(|(name, bytes)| json!({"deviceName": name, "bytes": bytes}))
                    .collect::<Vec<_>>(),
                "cpus": id.cpus,
                "ramBytes": id.ram_bytes,
                "os": {"fullString": id.os},
                "supportsNitroInstances": true,
            },
            "stagingArea": staging,
            "sourceCloudProperties": cloud,
            "replicationDirection": if id.failback { "FAILBACK" } else { "FAILOVER" },
            "agentVersion": id.agent_version,
        });
        if id.failback {
            server["reversedDirectionSourceServerArn"] = json!(format!(
                "{}:source-server/{}",
                id.arn.rsplit_once(':').map_or("", |(head, _)| head),
                resource_id("s", self.seed.with_str("reversed").with_str(&id.id), 0)
            ));
        }
        let drawn_recovery = drawn_result == LaunchResult::Succeeded && rng.chance(0.5);
        let recovery = match set.launch {
            Some(ServerSet::Launched {
                generation,
                succeeded: true,
                ..
            }) => Some(*generation),
            Some(_) => None,
            None => drawn_recovery.then_some(touch),
        };
        if let Some(at) = recovery {
            let instance = resource_id("i", self.seed.with_str("recovery").with_str(&id.id), at);
            server["recoveryInstanceId"] = json!(instance);
            if let Some(launch) = &mut last_launch {
                launch.recovery_instance = Some(instance);
            }
        }
        (server.to_string(), state, last_launch)
    }

    fn replicated_disks(
        &self,
        id: &Identity,
        state: ReplicationState,
        rng: &mut Rng,
    ) -> Vec<Value> {
        id.disks
            .iter()
            .map(|(name, total)| {
                let total = *total;
                let share = |rng: &mut Rng| total / 100 * rng.range(1, 99);
                let mut disk = json!({
                    "deviceName": name,
                    "totalStorageBytes": total,
                    "volumeStatus": "REGULAR",
                });
                let replicated = match state {
                    Initiating | Stalled => 0,
                    InitialSync => share(rng),
                    _ => total,
                };
                disk["replicatedStorageBytes"] = json!(replicated);
                disk["rescannedStorageBytes"] = json!(if state == Rescan { share(rng) } else { 0 });
                disk["backloggedStorageBytes"] = json!(if state == Backlog {
                    rng.range(1, 40) * GIB / 4
                } else {
                    0
                });
                disk
            })
            .collect()
    }
}

/// The initiation steps: all done, or in progress, or failed at the step the
/// server's error names.
fn initiation(id: &Identity, state: ReplicationState, now: SimTime, rng: &mut Rng) -> Value {
    let all = InitiationStep::COUNT;
    let (done, current) = match state {
        Initiating => {
            let at = rng.range(1, all as u64 - 1) as usize;
            (at, Some(StepStatus::InProgress))
        }
        Stalled => match error_for(id).1 {
            Some(step) => (step as usize, Some(StepStatus::Failed)),
            None => (all, None),
        },
        _ => (all, None),
    };
    let steps: Vec<Value> = InitiationStep::iter()
        .enumerate()
        .map(|(i, name)| {
            let status = if i < done {
                StepStatus::Succeeded
            } else if i == done {
                current.unwrap_or(StepStatus::Succeeded)
            } else {
                StepStatus::NotStarted
            };
            json!({"name": name, "status": status})
        })
        .collect();
    let mut initiation = json!({
        "startDateTime": id.first_byte.minus(900).drs(),
        "steps": steps,
    });
    if current == Some(StepStatus::Failed) {
        initiation["nextAttemptDateTime"] = json!(now.plus(1_800).drs());
    }
    initiation
}

/// The stalled server's error: fixed per server, so it does not flap.
fn error_for(id: &Identity) -> (&'static str, Option<InitiationStep>, &'static str) {
    let n = id.id.bytes().map(usize::from).sum::<usize>();
    ERRORS[n % ERRORS.len()]
}

impl LastLaunch {
    /// The `lifeCycle.lastLaunch` object.
    fn json(&self) -> Value {
        json!({
            "initiated": {
                "apiCallDateTime": self.at.drs(),
                "jobID": self.job_id,
                "type": if self.drill { "DRILL" } else { "RECOVERY" },
            },
            "status": self.status,
        })
    }
}

fn last_launch(now: SimTime, rng: &mut Rng, added: SimTime) -> (LaunchResult, Option<LastLaunch>) {
    let result = *rng.weighted(&[
        (LaunchResult::NotStarted, 60),
        (LaunchResult::Succeeded, 25),
        (LaunchResult::Pending, 10),
        (LaunchResult::Failed, 5),
    ]);
    let status = match result {
        LaunchResult::NotStarted => return (result, None),
        LaunchResult::Succeeded => LaunchStatus::Launched,
        LaunchResult::Failed => LaunchStatus::Failed,
        LaunchResult::Pending => *rng.pick(&[LaunchStatus::Pending, LaunchStatus::InProgress]),
    };
    let span = u64::try_from(now.secs - added.secs)
        .unwrap_or(86_400)
        .max(3_600);
    let at = now.minus(rng.range(600, span) as i64);
    let job_id = format!("drsjob-{}", rng.hex(17));
    let drill = *rng.weighted(&[(true, 8), (false, 2)]);
    let launch = LastLaunch {
        job_id,
        drill,
        status,
        at,
        recovery_instance: None,
    };
    (result, Some(launch))
}

/// `lastLaunchResult` and `lifeCycle.lastLaunch` of a launch a live change set.
fn launched(launch: &ServerSet) -> (LaunchResult, Option<LastLaunch>) {
    let ServerSet::Launched {
        generation,
        job_id,
        drill,
        succeeded,
        ..
    } = launch
    else {
        return (LaunchResult::NotStarted, None);
    };
    let (result, status) = if *succeeded {
        (LaunchResult::Succeeded, LaunchStatus::Launched)
    } else {
        (LaunchResult::Failed, LaunchStatus::Failed)
    };
    let launch = LastLaunch {
        job_id: job_id.clone(),
        drill: *drill,
        status,
        at: SimTime::generation(*generation).minus(600),
        recovery_instance: None,
    };
    (result, Some(launch))
}

fn size_for(cores: u64) -> &'static str {
    match cores {
        0..=2 => "large",
        3..=4 => "xlarge",
        5..=8 => "2xlarge",
        9..=16 => "4xlarge",
        17..=32 => "8xlarge",
        33..=48 => "12xlarge",
        _ => "16xlarge",
    }
}

fn colon_hex(rng: &mut Rng, bytes: usize) -> String {
    (0..bytes).map(|_| rng.hex(2)).collect::<Vec<_>>().join(":")
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;

    fn params(servers: u32, generation: u64) -> FleetParams {
        FleetParams {
            servers,
            subnets: 12,
            security_groups: 20,
            generation,
        }
    }

    fn ids() -> (AccountId, Region) {
        (
            AccountId::parse("111122223333").unwrap(),
            Region::parse("eu-west-1").unwrap(),
        )
    }

    #[test]
    fn the_same_inputs_give_byte_identical_fleets() {
        let (account, region) = ids();
        let a = generate(5, &account, &region, params(200, 3), &[]);
        let b = generate(5, &account, &region, params(200, 3), &[]);
        let render = |f: &Fleet| f.servers.iter().map(|s| s.json.clone()).collect::<Vec<_>>();
        assert_eq!(render(&a), render(&b));
        assert_eq!(a.staging_accounts, b.staging_accounts);
    }

    #[test]
    fn other_seeds_accounts_and_regions_give_other_fleets() {
        let (account, region) = ids();
        let base = generate(5, &account, &region, params(5, 0), &[]);
        let other_seed = generate(6, &account, &region, params(5, 0), &[]);
        let other_region = generate(
            5,
            &account,
            &Region::parse("us-east-1").unwrap(),
            params(5, 0),
            &[],
        );
        assert_ne!(base.servers[0].id, other_seed.servers[0].id);
        assert_ne!(base.servers[0].id, other_region.servers[0].id);
    }

    #[test]
    fn a_generation_bump_changes_some_servers_and_keeps_identities() {
        let (account, region) = ids();
        let before = generate(1, &account, &region, params(100, 0), &[]);
        let after = generate(1, &account, &region, params(100, 1), &[]);
        let changed = before
            .servers
            .iter()
            .zip(&after.servers)
            .filter(|(a, b)| a.json != b.json)
            .count();
        assert!((1..60).contains(&changed), "{changed} of 100 changed");
        for (a, b) in before.servers.iter().zip(&after.servers) {
            assert_eq!(a.id, b.id);
            assert_eq!(a.hardware_ids, b.hardware_ids);
        }
        // A one-server fleet changes on every bump too.
        let one = |g| {
            generate(1, &account, &region, params(1, g), &[]).servers[0]
                .json
                .clone()
        };
        assert_ne!(one(0), one(1));
    }

    #[test]
    fn growing_a_fleet_keeps_the_servers_it_had() {
        let (account, region) = ids();
        let small = generate(2, &account, &region, params(10, 0), &[]);
        let large = generate(2, &account, &region, params(20, 0), &[]);
        for (a, b) in small.servers.iter().zip(&large.servers) {
            assert_eq!(a.id, b.id);
        }
    }

    #[test]
    fn a_fleet_is_realistic() {
        let (account, region) = ids();
        let fleet = generate(3, &account, &region, params(2_000, 0), &[]);
        let ids: HashSet<&str> = fleet.servers.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids.len(), 2_000, "IDs are unique");
        let mut states: HashMap<String, usize> = HashMap::new();
        let mut extended = 0;
        for server in &fleet.servers {
            let v: Value = serde_json::from_str(&server.json).unwrap();
            assert!(server.id.starts_with("s-") && server.id.len() == 19);
            let state = v["dataReplicationInfo"]["dataReplicationState"]
                .as_str()
                .unwrap();
            *states.entry(state.to_owned()).or_default() += 1;
            if state == "STALLED" {
                assert!(v["dataReplicationInfo"]["dataReplicationError"]["error"].is_string());
            }
            if v["stagingArea"]["status"] == "EXTENDED" {
                extended += 1;
                let staging = v["stagingArea"]["stagingAccountID"].as_str().unwrap();
                assert!(fleet.staging_accounts.iter().any(|a| a == staging));
                assert!(v["stagingArea"]["stagingSourceServerArn"].is_string());
            }
            let cores: u64 = v["sourceProperties"]["cpus"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["cores"].as_u64().unwrap())
                .sum();
            assert!((2..=64).contains(&cores));
            let disks = v["sourceProperties"]["disks"].as_array().unwrap().len();
            assert!((1..=4).contains(&disks));
            assert_eq!(
                v["tags"]["Name"],
                v["sourceProperties"]["identificationHints"]["hostname"]
            );
        }
        for (state, _) in STATES {
            let name = serde_json::to_value(state).unwrap();
            let name = name.as_str().unwrap();
            assert!(states.contains_key(name), "{name} missing: {states:?}");
        }
        assert!(states["CONTINUOUS"] > 1_000);
        assert!((120..300).contains(&extended), "{extended} extended");
    }

    #[test]
    fn last_touch_is_monotonic_and_bounded() {
        let seed = Seed::new(4);
        for index in 0..50 {
            let mut previous = 0;
            for generation in 0..40 {
                let touch = last_touch(seed, index, 50, generation);
                assert!(touch <= generation && touch >= previous);
                previous = touch;
            }
        }
        assert_eq!(
            last_touch(seed, 3, 10, 13),
            13,
            "index g % count is always touched"
        );
    }
}
