//! The jobs and recovery instances of one fleet, derived from its servers: each
//! server's `lifeCycle.lastLaunch` is a LAUNCH job (and its `recoveryInstanceId`
//! a recovery instance of that job, running), and a few past drills, seeded per
//! (account, region), launched some servers and later terminated their
//! instances (a LAUNCH and a TERMINATE job each, instances TERMINATED). A
//! recovery's `failback.state` is drawn, unless a live change set it (a
//! [`ServerSet::Failback`] naming the instance).

use serde_json::{Value, json};

use crate::{
    aws::{partition, resource_id, zone},
    clock::SimTime,
    config::ServerSet,
    fleet::{LaunchStatus, SourceServer},
    ids::{AccountId, Region},
    rng::{Rng, Seed},
};

/// One DRS job, rendered once.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub(crate) id: String,
    pub(crate) created: SimTime,
    /// The `Job` JSON object.
    pub(crate) json: String,
}

/// One recovery instance, rendered once.
#[derive(Debug, Clone)]
pub(crate) struct RecoveryInstance {
    pub(crate) id: String,
    pub(crate) arn: String,
    pub(crate) source_server: String,
    pub(crate) drill: bool,
    /// Its `ec2InstanceState`.
    pub(crate) ec2_state: &'static str,
    /// Its `failback.state`.
    pub(crate) failback: &'static str,
    /// The `RecoveryInstance` JSON object.
    pub(crate) json: String,
}

/// The most past drills a fleet has.
const MAX_DRILLS: usize = 40;
/// The most servers one past drill launched.
const MAX_DRILLED: u64 = 8;

/// The `failback.state` of a running recovery instance, as drawn.
const FAILBACK_STATES: [(&str, u32); 6] = [
    ("FAILBACK_NOT_STARTED", 80),
    ("FAILBACK_IN_PROGRESS", 6),
    ("FAILBACK_READY_FOR_LAUNCH", 5),
    ("FAILBACK_COMPLETED", 3),
    ("FAILBACK_ERROR", 3),
    ("FAILBACK_NOT_READY_FOR_LAUNCH", 3),
];

/// The jobs (latest first) and recovery instances (the servers' current ones
/// in server order, then past drills' newest first) of a fleet. `seed` is the
/// fleet's; `set` what live changes set, of which the failbacks count here.
pub(crate) fn generate(
    seed: Seed,
    account: &AccountId,
    region: &Region,
    servers: &[SourceServer],
    set: &[ServerSet],
) -> (Vec<Job>, Vec<RecoveryInstance>) {
    let ctx = Ctx {
        seed: seed.with_str("launches"),
        account,
        region,
    };
    let mut jobs = Vec::new();
    let mut instances = Vec::new();
    for server in servers {
        let Some(launch) = &server.last_launch else {
            continue;
        };
        let (status, end) = match launch.status {
            LaunchStatus::Launched | LaunchStatus::Failed => {
                let took = ctx.seed.with_str(&launch.job_id).rng().range(300, 600);
                ("COMPLETED", Some(launch.at.plus(took as i64)))
            }
            LaunchStatus::Pending => ("PENDING", None),
            LaunchStatus::InProgress | LaunchStatus::Terminated => ("STARTED", None),
        };
        let participant = participant(
            &server.id,
            launch.recovery_instance.as_deref(),
            launch.status,
        );
        jobs.push(ctx.job(
            &launch.job_id,
            "LAUNCH",
            if launch.drill {
                "START_DRILL"
            } else {
                "START_RECOVERY"
            },
            launch.at,
            end,
            status,
            vec![participant],
        ));
        if let Some(instance) = &launch.recovery_instance {
            let mut rng = ctx.seed.with_str(instance).rng();
            let state = *rng.weighted(&[("RUNNING", 85), ("STOPPED", 10), ("STOPPING", 5)]);
            let failback = if launch.drill {
                "FAILBACK_NOT_STARTED"
            } else {
                // Drawn even when a change set it, so the other draws stay.
                let drawn = *rng.weighted(&FAILBACK_STATES);
                failback_set(set, &server.id, instance).unwrap_or(drawn)
            };
            let launched = end.unwrap_or(launch.at);
            instances.push(ctx.instance(
                server,
                instance,
                &launch.job_id,
                launch.drill,
                launched,
                state,
                failback,
                &mut rng,
            ));
        }
    }
    ctx.past_drills(servers, &mut jobs, &mut instances);
    jobs.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
    (jobs, instances)
}

struct Ctx<'a> {
    seed: Seed,
    account: &'a AccountId,
    region: &'a Region,
}

impl Ctx<'_> {
    fn arn(&self, kind: &str, id: &str) -> String {
        format!(
            "arn:{}:drs:{}:{}:{kind}/{id}",
            partition(self.region),
            self.region,
            self.account
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn job(
        &self,
        id: &str,
        kind: &str,
        initiated_by: &str,
        created: SimTime,
        end: Option<SimTime>,
        status: &str,
        participants: Vec<Value>,
    ) -> Job {
        let mut job = json!({
            "jobID": id,
            "arn": self.arn("job", id),
            "type": kind,
            "initiatedBy": initiated_by,
            "creationDateTime": created.drs(),
            "status": status,
            "participatingServers": participants,
            "tags": {},
        });
        if let Some(end) = end {
            job["endDateTime"] = json!(end.drs());
        }
        Job {
            id: id.to_owned(),
            created,
            json: job.to_string(),
        }
    }

    /// A recovery instance of `server`, launched by `job` at `launched`.
    #[allow(clippy::too_many_arguments)]
    fn instance(
        &self,
        server: &SourceServer,
        id: &str,
        job: &str,
        drill: bool,
        launched: SimTime,
        state: &'static str,
        failback: &'static str,
        rng: &mut Rng,
    ) -> RecoveryInstance {
        let source: Value = serde_json::from_str(&server.json).unwrap_or_default();
        let props = &source["sourceProperties"];
        let hints = &props["identificationHints"];
        let disks: Vec<Value> = props["disks"]
            .as_array()
            .map(|disks| {
                disks
                    .iter()
                    .map(|d| {
                        json!({
                            "internalDeviceName": d["deviceName"],
                            "bytes": d["bytes"],
                            "ebsVolumeID": format!("vol-{}", rng.hex(17)),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let nics = json!([{
            "macAddress": format!("0a:{}", (0..5).map(|_| rng.hex(2)).collect::<Vec<_>>().join(":")),
            "ips": [format!("10.{}.{}.{}", rng.range(0, 63), rng.range(0, 255), rng.range(4, 250))],
            "isPrimary": true,
        }]);
        let origin = if source["sourceCloudProperties"]["originRegion"].is_string() {
            "AWS"
        } else {
            "ON_PREMISES"
        };
        let mut failback_info = json!({"state": failback, "failbackToOriginalServer": true});
        if !matches!(
            failback,
            "FAILBACK_NOT_STARTED" | "FAILBACK_LAUNCH_STATE_NOT_AVAILABLE"
        ) {
            // Drawn apart, so a failback moving on changes nothing else, and
            // its client, job and times stay while it moves on.
            let mut rng = self.seed.with_str(id).with_str("failback").rng();
            let began = launched.plus(rng.range(3_600, 86_400) as i64);
            failback_info["failbackClientID"] = json!(format!("fbc-{}", rng.hex(17)));
            failback_info["failbackJobID"] = json!(format!("drsjob-{}", rng.hex(17)));
            failback_info["failbackInitiationTime"] = json!(began.drs());
            failback_info["failbackLaunchType"] = json!("RECOVERY");
            failback_info["firstByteDateTime"] = json!(began.plus(600).drs());
            failback_info["agentLastSeenByServiceDateTime"] = json!(began.plus(3_000).drs());
            failback_info["failbackClientLastSeenByServiceDateTime"] =
                json!(began.plus(3_000).drs());
            failback_info["elapsedReplicationDuration"] = json!("PT40M");
        }
        let instance = json!({
            "recoveryInstanceID": id,
            "arn": self.arn("recovery-instance", id),
            "ec2InstanceID": id,
            "ec2InstanceState": state,
            "sourceServerID": server.id,
            "jobID": job,
            "isDrill": drill,
            "pointInTimeSnapshotDateTime": launched.minus(rng.range(60, 3_600) as i64).drs(),
            "recoveryInstanceProperties": {
                "lastUpdatedDateTime": launched.plus(rng.range(60, 1_800) as i64).drs(),
                "identificationHints": {
                    "hostname": hints["hostname"],
                    "fqdn": hints["fqdn"],
                    "awsInstanceID": id,
                },
                "networkInterfaces": nics,
                "disks": disks,
                "cpus": props["cpus"],
                "ramBytes": props["ramBytes"],
                "os": props["os"],
            },
            "failback": failback_info,
            "originEnvironment": origin,
            "originAvailabilityZone": zone(self.region, rng.below(3) as usize),
            "agentVersion": source["agentVersion"],
            "tags": source["tags"],
        });
        RecoveryInstance {
            id: id.to_owned(),
            arn: self.arn("recovery-instance", id),
            source_server: server.id.clone(),
            drill,
            ec2_state: state,
            failback,
            json: instance.to_string(),
        }
    }

    /// Past drills: each launched a few servers and a TERMINATE job later
    /// ended their instances.
    fn past_drills(
        &self,
        servers: &[SourceServer],
        jobs: &mut Vec<Job>,
        instances: &mut Vec<RecoveryInstance>,
    ) {
        let n = servers.len() as u64;
        if n == 0 {
            return;
        }
        let drills = (servers.len() / 25).clamp(1, MAX_DRILLS);
        let mut at = SimTime::generation(0);
        for k in 0..drills as u64 {
            let seed = self.seed.with_str("drill").with(k);
            let mut rng = seed.rng();
            at = at.minus(rng.range(5, 20) as i64 * 86_400 + rng.range(0, 86_399) as i64);
            let mut picked: Vec<u64> = (0..rng.range(1, MAX_DRILLED.min(n)))
                .map(|_| rng.below(n))
                .collect();
            picked.sort_unstable();
            picked.dedup();
            let launch_id = format!("drsjob-{}", rng.hex(17));
            let terminate_id = format!("drsjob-{}", rng.hex(17));
            let ended = at.plus(rng.range(600, 1_800) as i64);
            let terminated = ended.plus(rng.range(3_600, 2 * 86_400) as i64);
            let mut launched = Vec::new();
            let mut terminate = Vec::new();
            for (j, &index) in picked.iter().enumerate() {
                let server = &servers[index as usize];
                if rng.chance(0.05) {
                    launched.push(participant(&server.id, None, LaunchStatus::Failed));
                    continue;
                }
                let id = resource_id("i", seed.with_str("instance"), j as u64);
                launched.push(participant(&server.id, Some(&id), LaunchStatus::Terminated));
                terminate.push(participant(&server.id, Some(&id), LaunchStatus::Terminated));
                let mut draws = seed.with_str(&id).rng();
                instances.push(self.instance(
                    server,
                    &id,
                    &launch_id,
                    true,
                    ended,
                    "TERMINATED",
                    "FAILBACK_LAUNCH_STATE_NOT_AVAILABLE",
                    &mut draws,
                ));
            }
            jobs.push(self.job(
                &launch_id,
                "LAUNCH",
                "START_DRILL",
                at,
                Some(ended),
                "COMPLETED",
                launched,
            ));
            if !terminate.is_empty() {
                jobs.push(self.job(
                    &terminate_id,
                    "TERMINATE",
                    "TERMINATE_RECOVERY_INSTANCES",
                    terminated,
                    Some(terminated.plus(rng.range(60, 600) as i64)),
                    "COMPLETED",
                    terminate,
                ));
            }
        }
    }
}

/// The `failback.state` a live change set on `instance` of `server`, if one
/// did (and names a state DRS serves).
fn failback_set(set: &[ServerSet], server: &str, instance: &str) -> Option<&'static str> {
    set.iter().rev().find_map(|entry| match entry {
        ServerSet::Failback {
            server: s,
            recovery_instance,
            state,
            ..
        } if s == server && recovery_instance == instance => crate::config::FAILBACK_STATE_NAMES
            .into_iter()
            .find(|name| name == state),
        _ => None,
    })
}

/// One of a job's `participatingServers`.
fn participant(server: &str, instance: Option<&str>, status: LaunchStatus) -> Value {
    let mut participant = json!({
        "sourceServerID": server,
        "launchStatus": status,
        "launchActionsStatus": {"runs": []},
    });
    if let Some(instance) = instance {
        participant["recoveryInstanceID"] = json!(instance);
    }
    participant
}
