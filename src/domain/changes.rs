//! The change feed: what a refresh changed in a snapshot, as a few events
//! consumers subscribe to with ordinary EventBridge rules.
//!
//! The diff reads the two JSON documents the cache stores for a key, not the
//! upstream records: it runs where the previous body is at hand (the refresher,
//! about to replace it) and needs nothing the document does not say. A body that
//! does not parse, or is not the shape its data type writes, gives no events: a
//! feed that is sometimes silent is better than one that reports a damaged or
//! older-format body as every record removed and added again.

use std::collections::{HashMap, hash_map::Entry};

use serde_json::{Map, Value};

use super::{CacheKey, DataType};

/// The `source` of every change event.
pub const SOURCE: &str = "drs-cache";

/// One change event: its detail-type, the key whose snapshot changed, and its
/// detail (a JSON object, bounded in size).
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeEvent {
    pub detail_type: &'static str,
    pub key: CacheKey,
    pub detail: serde_json::Value,
}

/// Source servers added to or removed from an account and region.
pub const SOURCE_SERVERS_CHANGED: &str = "Source Servers Changed";
/// Source servers whose `replicationState` changed (`CONTINUOUS` → `STALLED`).
pub const REPLICATION_STATES_CHANGED: &str = "Replication States Changed";
/// The quota document's `status` (`OK`, `WARNING`, `CRITICAL`) changed.
pub const CAPACITY_STATUS_CHANGED: &str = "Capacity Status Changed";
/// DRS jobs started or finished.
pub const JOBS_CHANGED: &str = "Jobs Changed";
/// Subnets added or removed.
pub const SUBNETS_CHANGED: &str = "Subnets Changed";
/// Security groups added or removed.
pub const SECURITY_GROUPS_CHANGED: &str = "Security Groups Changed";

/// Every detail-type, in the order [`diff`] returns its events.
pub const DETAIL_TYPES: [&str; 6] = [
    SOURCE_SERVERS_CHANGED,
    REPLICATION_STATES_CHANGED,
    CAPACITY_STATUS_CHANGED,
    JOBS_CHANGED,
    SUBNETS_CHANGED,
    SECURITY_GROUPS_CHANGED,
];

/// Entries listed in each list of a detail. A larger change lists the first
/// ones in document order, with its full count and `truncated: true`, so one
/// refresh is one event of a bounded size, never a series a consumer would
/// have to reassemble.
pub const MAX_LISTED: usize = 50;

/// Bytes kept of each string an entry copies from the document (cut at a
/// character boundary). IDs are far shorter; names and tags (256 characters
/// at most in AWS) are cut so that two full lists stay near 60 KiB whatever
/// the fleet holds, well inside EventBridge's 256 KiB entry.
const MAX_TEXT_BYTES: usize = 256;

/// DRS job statuses of a job it still runs, as [`Job::is_active`] counts them
/// (a test holds the two together).
///
/// [`Job::is_active`]: super::inventory::Job::is_active
const ACTIVE_JOB_STATUSES: [&str; 2] = ["PENDING", "STARTED"];
/// DRS job statuses of a job that ended. DRS reports only `COMPLETED`,
/// whether its launches succeeded or not; `failedServerCount` tells which.
const FINISHED_JOB_STATUSES: [&str; 1] = ["COMPLETED"];

/// The figures of the quota document a capacity event carries besides the
/// status: enough to say how full the account is without reading the cache.
const CAPACITY_FIGURES: [&str; 4] = [
    "replicatingServers",
    "maxReplicatingServers",
    "availableReplicatingSlots",
    "utilizationPercent",
];

/// How a list type's records are named in events: the field that identifies
/// a record, and the fields (the ID first) an added or removed entry copies.
struct Listing {
    data_type: DataType,
    id: &'static str,
    fields: &'static [&'static str],
}

const SERVERS: Listing = Listing {
    data_type: DataType::DrsSourceServers,
    id: "sourceServerID",
    fields: &["sourceServerID", "hostname", "nameTag"],
};
const JOBS: Listing = Listing {
    data_type: DataType::DrsJobs,
    id: "jobID",
    fields: &["jobID", "type", "initiatedBy", "status"],
};
const SUBNETS: Listing = Listing {
    data_type: DataType::Ec2Subnets,
    id: "subnetId",
    fields: &["subnetId", "subnetName", "vpcId"],
};
const SECURITY_GROUPS: Listing = Listing {
    data_type: DataType::Ec2SecurityGroups,
    id: "groupId",
    fields: &["groupId", "groupName", "vpcId"],
};

/// Whether [`diff`] can give events for `data_type`: the refresher reads the
/// body a write replaces only for these, so the types without events cost no
/// extra read.
pub const fn has_events(data_type: DataType) -> bool {
    matches!(
        data_type,
        DataType::DrsSourceServers
            | DataType::DrsQuotas
            | DataType::DrsJobs
            | DataType::Ec2Subnets
            | DataType::Ec2SecurityGroups
    )
}

/// The change events of one refresh of `key`, from the body the cache held
/// (`previous`) to the body it now holds (`current`), in [`DETAIL_TYPES`] order.
///
/// Every detail carries `accountId` (null for account-independent keys),
/// `region` and `cacheKey`, plus per detail-type:
///
/// - `drs-source-servers`: [`SOURCE_SERVERS_CHANGED`] with `added` and
///   `removed` (`{sourceServerID, hostname, nameTag}`), `addedCount`,
///   `removedCount`, `truncated`, when any server was added or removed; and
///   [`REPLICATION_STATES_CHANGED`] with `transitions` (`{sourceServerID,
///   from, to}`, states as DRS names them, null where it gave none),
///   `transitionCount`, `truncated`, when a server in both bodies changed
///   state.
/// - `drs-quotas`: [`CAPACITY_STATUS_CHANGED`] with `from` and `to` statuses
///   and the current `replicatingServers`, `maxReplicatingServers`,
///   `availableReplicatingSlots` and `utilizationPercent`, when the status
///   changed; figures that move within one status are not news.
/// - `drs-jobs`: [`JOBS_CHANGED`] with `started` (`{jobID, type, initiatedBy,
///   status, serverCount}`), `finished` (the same with `endDateTime` and
///   `failedServerCount`), `startedCount`, `finishedCount`, `truncated`, when
///   any job started or finished. A job is *started* when it is new in the
///   list or its status moved from one DRS does not run (or none) to `PENDING`
///   or `STARTED`; `PENDING` → `STARTED` is the same run and is not reported
///   again. A job is *finished* when its status is `COMPLETED` and was not,
///   or it is new in the list already completed: it started and ended between
///   two refreshes, and is then both started and finished, so a consumer
///   sees every job start once and finish once. A job that leaves the list
///   has aged out of the jobs window and is not reported; a widened window
///   reports the older jobs it brings in, once.
/// - `ec2-subnets`: [`SUBNETS_CHANGED`] with `added` and `removed`
///   (`{subnetId, subnetName, vpcId}`), `addedCount`, `removedCount`,
///   `truncated`.
/// - `ec2-security-groups`: [`SECURITY_GROUPS_CHANGED`] with `added` and
///   `removed` (`{groupId, groupName, vpcId}`), `addedCount`, `removedCount`,
///   `truncated`.
/// - every other type: none; their changes have no consumer yet, and each
///   type added here is a schema to keep.
///
/// Records are matched by ID, so a list served in another order is no
/// change. Each list holds at most [`MAX_LISTED`] entries, in the order of
/// the document that holds them (`removed` the previous one's), and
/// `truncated` is true when any list of the event was cut. Identical bodies
/// give nothing, and so does an empty `previous`: a first fill of a key is
/// not news, and reporting it would announce every server of a new account.
pub fn diff(key: &CacheKey, previous: &[u8], current: &[u8]) -> Vec<ChangeEvent> {
    if previous == current {
        return Vec::new();
    }
    let (Ok(previous), Ok(current)) = (
        serde_json::from_slice::<Value>(previous),
        serde_json::from_slice::<Value>(current),
    ) else {
        return Vec::new();
    };
    if !has_events(key.data_type()) {
        return Vec::new();
    }
    let details = match key.data_type() {
        DataType::DrsSourceServers => source_servers(&previous, &current),
        DataType::DrsQuotas => capacity_status(&previous, &current),
        DataType::DrsJobs => jobs(&previous, &current),
        DataType::Ec2Subnets => membership(SUBNETS_CHANGED, &SUBNETS, &previous, &current),
        DataType::Ec2SecurityGroups => membership(
            SECURITY_GROUPS_CHANGED,
            &SECURITY_GROUPS,
            &previous,
            &current,
        ),
        DataType::DrsAccounts
        | DataType::DrsRecoveryInstances
        | DataType::DrsSourceNetworks
        | DataType::Ec2InstanceProfiles
        | DataType::Ec2InstanceTypes
        | DataType::DrsCapacity => None,
    };
    details
        .unwrap_or_default()
        .into_iter()
        .map(|(detail_type, fields)| ChangeEvent {
            detail_type,
            key: key.clone(),
            detail: Value::Object(with_context(key, fields)),
        })
        .collect()
}

/// A detail's fields before the key's context is added.
type Fields = Map<String, Value>;
/// The events of one diff, or `None` when a body is not the expected shape.
type Details = Option<Vec<(&'static str, Fields)>>;
/// One record of a list document.
type Record = Map<String, Value>;

static NULL: Value = Value::Null;

fn source_servers(previous: &Value, current: &Value) -> Details {
    let before = Records::of(previous, &SERVERS)?;
    let after = Records::of(current, &SERVERS)?;
    let mut details = Vec::new();
    if let Some(fields) = added_and_removed(&SERVERS, &before, &after) {
        details.push((SOURCE_SERVERS_CHANGED, fields));
    }
    let transitions: Vec<(&str, &Value, &Value)> = after
        .iter()
        .filter_map(|(id, record)| {
            let from = field(before.get(id)?, "replicationState");
            let to = field(record, "replicationState");
            (from != to).then_some((id, from, to))
        })
        .collect();
    if !transitions.is_empty() {
        let mut detail = Detail::default();
        detail.list(
            "transitions",
            "transitionCount",
            &transitions,
            |(id, from, to)| {
                let mut entry = Map::new();
                entry.insert(SERVERS.id.to_owned(), clipped(&Value::from(*id)));
                entry.insert("from".to_owned(), clipped(from));
                entry.insert("to".to_owned(), clipped(to));
                Value::Object(entry)
            },
        );
        details.push((REPLICATION_STATES_CHANGED, detail.into_fields()));
    }
    Some(details)
}

fn capacity_status(previous: &Value, current: &Value) -> Details {
    let from = previous.get("status")?.as_str()?;
    let to = current.get("status")?.as_str()?;
    if from == to {
        return Some(Vec::new());
    }
    let mut fields = Map::new();
    fields.insert("from".to_owned(), clipped(&Value::from(from)));
    fields.insert("to".to_owned(), clipped(&Value::from(to)));
    for name in CAPACITY_FIGURES {
        fields.insert(name.to_owned(), clipped(field_of(current, name)));
    }
    Some(vec![(CAPACITY_STATUS_CHANGED, fields)])
}

fn jobs(previous: &Value, current: &Value) -> Details {
    let before = Records::of(previous, &JOBS)?;
    let after = Records::of(current, &JOBS)?;
    let started: Vec<&Record> = after
        .iter()
        .filter(|(id, job)| {
            before.get(id).is_none_or(|old| {
                !job_is(old, &ACTIVE_JOB_STATUSES) && job_is(job, &ACTIVE_JOB_STATUSES)
            })
        })
        .map(|(_, job)| job)
        .collect();
    let finished: Vec<&Record> = after
        .iter()
        .filter(|(id, job)| {
            job_is(job, &FINISHED_JOB_STATUSES)
                && before
                    .get(id)
                    .is_none_or(|old| !job_is(old, &FINISHED_JOB_STATUSES))
        })
        .map(|(_, job)| job)
        .collect();
    if started.is_empty() && finished.is_empty() {
        return Some(Vec::new());
    }
    let mut detail = Detail::default();
    detail.list("started", "startedCount", &started, |job| {
        Value::Object(job_entry(job))
    });
    detail.list("finished", "finishedCount", &finished, |job| {
        let failed = servers_of(job).map(|servers| {
            servers
                .iter()
                .filter(|s| s.get("launchStatus").and_then(Value::as_str) == Some("FAILED"))
                .count()
        });
        let mut entry = job_entry(job);
        entry.insert("endDateTime".to_owned(), clipped(field(job, "endDateTime")));
        entry.insert("failedServerCount".to_owned(), Value::from(failed));
        Value::Object(entry)
    });
    Some(vec![(JOBS_CHANGED, detail.into_fields())])
}

/// A job as an event lists it: its identifying fields and how many servers
/// it holds.
fn job_entry(job: &Record) -> Fields {
    let mut entry = summary(job, JOBS.fields);
    entry.insert(
        "serverCount".to_owned(),
        Value::from(servers_of(job).map(Vec::len)),
    );
    entry
}

fn servers_of(job: &Record) -> Option<&Vec<Value>> {
    job.get("participatingServers").and_then(Value::as_array)
}

fn job_is(job: &Record, statuses: &[&str]) -> bool {
    job.get("status")
        .and_then(Value::as_str)
        .is_some_and(|s| statuses.contains(&s))
}

fn membership(
    detail_type: &'static str,
    listing: &Listing,
    previous: &Value,
    current: &Value,
) -> Details {
    let before = Records::of(previous, listing)?;
    let after = Records::of(current, listing)?;
    Some(
        added_and_removed(listing, &before, &after)
            .map(|fields| vec![(detail_type, fields)])
            .unwrap_or_default(),
    )
}

/// The `added` and `removed` lists of a membership event, or `None` when
/// both are empty.
fn added_and_removed(listing: &Listing, before: &Records, after: &Records) -> Option<Fields> {
    let added: Vec<&Record> = after
        .iter()
        .filter(|(id, _)| before.get(id).is_none())
        .map(|(_, r)| r)
        .collect();
    let removed: Vec<&Record> = before
        .iter()
        .filter(|(id, _)| after.get(id).is_none())
        .map(|(_, r)| r)
        .collect();
    if added.is_empty() && removed.is_empty() {
        return None;
    }
    let mut detail = Detail::default();
    let entry = |r: &&Record| Value::Object(summary(r, listing.fields));
    detail.list("added", "addedCount", &added, entry);
    detail.list("removed", "removedCount", &removed, entry);
    Some(detail.into_fields())
}

/// The records of a list document by ID, in document order. A repeated ID
/// keeps its first record, as a reader looking it up would find.
struct Records<'a> {
    order: Vec<(&'a str, &'a Record)>,
    by_id: HashMap<&'a str, &'a Record>,
}

impl<'a> Records<'a> {
    /// `None` unless `document` holds the type's list and every record in it
    /// is an object with a string ID.
    fn of(document: &'a Value, listing: &Listing) -> Option<Self> {
        let (list_field, _) = listing.data_type.record_list()?;
        let list = document.get(list_field)?.as_array()?;
        let mut records = Self {
            order: Vec::with_capacity(list.len()),
            by_id: HashMap::with_capacity(list.len()),
        };
        for value in list {
            let record = value.as_object()?;
            let id = record.get(listing.id)?.as_str()?;
            if let Entry::Vacant(slot) = records.by_id.entry(id) {
                slot.insert(record);
                records.order.push((id, record));
            }
        }
        Some(records)
    }

    fn get(&self, id: &str) -> Option<&'a Record> {
        self.by_id.get(id).copied()
    }

    fn iter(&self) -> impl Iterator<Item = (&'a str, &'a Record)> + '_ {
        self.order.iter().copied()
    }
}

/// A detail's lists, each cut to [`MAX_LISTED`] entries beside its full count.
#[derive(Default)]
struct Detail {
    fields: Fields,
    truncated: bool,
}

impl Detail {
    /// Lists the first [`MAX_LISTED`] of `items` under `name`, as `entry`
    /// makes them, and the number of all of them under `count`.
    fn list<T>(&mut self, name: &str, count: &str, items: &[T], entry: impl Fn(&T) -> Value) {
        let listed: Vec<Value> = items.iter().take(MAX_LISTED).map(entry).collect();
        self.truncated |= items.len() > listed.len();
        self.fields.insert(name.to_owned(), Value::Array(listed));
        self.fields
            .insert(count.to_owned(), Value::from(items.len()));
    }

    fn into_fields(mut self) -> Fields {
        self.fields
            .insert("truncated".to_owned(), Value::Bool(self.truncated));
        self.fields
    }
}

/// `fields` with the key's account, region and text, which every detail
/// carries so a rule can match on them without parsing the key.
fn with_context(key: &CacheKey, mut fields: Fields) -> Fields {
    let account = key.scope().account().map(|a| a.as_str().to_owned());
    fields.insert("accountId".to_owned(), Value::from(account));
    fields.insert("region".to_owned(), Value::from(key.region().as_str()));
    fields.insert("cacheKey".to_owned(), Value::from(key.to_string()));
    fields
}

/// The named fields of `record`, each clipped, null where it has none.
fn summary(record: &Record, names: &[&str]) -> Fields {
    names
        .iter()
        .map(|name| ((*name).to_owned(), clipped(field(record, name))))
        .collect()
}

fn field<'a>(record: &'a Record, name: &str) -> &'a Value {
    record.get(name).unwrap_or(&NULL)
}

fn field_of<'a>(document: &'a Value, name: &str) -> &'a Value {
    document.get(name).unwrap_or(&NULL)
}

/// A scalar as an event may copy it: strings cut to [`MAX_TEXT_BYTES`];
/// arrays and objects, which no field an event copies should hold, as null
/// rather than of unbounded size.
fn clipped(value: &Value) -> Value {
    match value {
        Value::String(s) if s.len() > MAX_TEXT_BYTES => {
            let mut end = MAX_TEXT_BYTES;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            Value::from(&s[..end])
        }
        Value::Array(_) | Value::Object(_) => Value::Null,
        scalar => scalar.clone(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::{
        domain::{
            AccountId, Region,
            capacity::QuotaThresholds,
            inventory::{Job, JobServer, SecurityGroup, SourceServer, Subnet},
        },
        refresh::views,
    };

    fn region() -> Region {
        Region::parse("eu-west-1").unwrap()
    }

    fn account() -> AccountId {
        AccountId::parse("111122223333").unwrap()
    }

    fn key(data_type: DataType) -> CacheKey {
        CacheKey::new(data_type, region(), account())
    }

    fn server(id: &str, state: &str) -> SourceServer {
        SourceServer {
            hostname: Some(format!("host-{id}")),
            name_tag: Some(format!("name-{id}")),
            replication_state: Some(state.into()),
            ..SourceServer::bare(id)
        }
    }

    fn servers_body(servers: &[SourceServer]) -> Vec<u8> {
        views::list(DataType::DrsSourceServers, &region(), servers)
            .body
            .to_vec()
    }

    fn job(id: &str, status: &str, servers: &[&str]) -> Job {
        Job {
            job_id: id.into(),
            job_type: Some("LAUNCH".into()),
            status: Some(status.into()),
            initiated_by: Some("START_DRILL".into()),
            creation_date_time: Some("2024-05-01T10:00:00Z".into()),
            end_date_time: (status == "COMPLETED").then(|| "2024-05-01T10:20:00Z".into()),
            participating_servers: servers
                .iter()
                .map(|launch| JobServer {
                    source_server_id: Some("s-1".into()),
                    recovery_instance_id: None,
                    launch_status: Some((*launch).into()),
                })
                .collect(),
        }
    }

    fn jobs_body(jobs: &[Job]) -> Vec<u8> {
        views::jobs(jobs).body.to_vec()
    }

    fn subnet(id: &str, name: &str) -> Subnet {
        Subnet {
            subnet_id: id.into(),
            subnet_name: Some(name.into()),
            vpc_id: Some("vpc-0000000a".into()),
            cidr_block: Some("10.0.0.0/24".into()),
            availability_zone: Some("eu-west-1a".into()),
            available_ip_address_count: Some(250),
            tags: BTreeMap::new(),
        }
    }

    fn group(id: &str, name: &str) -> SecurityGroup {
        SecurityGroup {
            group_id: id.into(),
            group_name: Some(name.into()),
            description: Some("test".into()),
            vpc_id: Some("vpc-0000000a".into()),
        }
    }

    fn quotas_body(replicating: usize) -> Vec<u8> {
        let servers: Vec<_> = (0..replicating)
            .map(|i| server(&format!("s-{i}"), "CONTINUOUS"))
            .collect();
        views::quotas(&account(), &region(), &servers, &QuotaThresholds::default())
            .body
            .to_vec()
    }

    fn detail_types(events: &[ChangeEvent]) -> Vec<&'static str> {
        events.iter().map(|e| e.detail_type).collect()
    }

    #[test]
    fn added_and_removed_servers_are_listed_with_their_names() {
        let before = servers_body(&[server("s-1", "CONTINUOUS"), server("s-2", "CONTINUOUS")]);
        let after = servers_body(&[server("s-2", "CONTINUOUS"), server("s-3", "INITIAL_SYNC")]);

        let events = diff(&key(DataType::DrsSourceServers), &before, &after);

        assert_eq!(detail_types(&events), [SOURCE_SERVERS_CHANGED]);
        assert_eq!(events[0].key, key(DataType::DrsSourceServers));
        assert_eq!(
            events[0].detail,
            json!({
                "added": [{"sourceServerID": "s-3", "hostname": "host-s-3", "nameTag": "name-s-3"}],
                "removed": [{"sourceServerID": "s-1", "hostname": "host-s-1", "nameTag": "name-s-1"}],
                "addedCount": 1,
                "removedCount": 1,
                "truncated": false,
                "accountId": "111122223333",
                "region": "eu-west-1",
                "cacheKey": "drs-source-servers#eu-west-1#111122223333",
            })
        );
    }

    #[test]
    fn a_changed_replication_state_is_a_transition() {
        let before = servers_body(&[server("s-1", "CONTINUOUS"), server("s-2", "CONTINUOUS")]);
        let after = servers_body(&[server("s-1", "STALLED"), server("s-2", "CONTINUOUS")]);

        let events = diff(&key(DataType::DrsSourceServers), &before, &after);

        assert_eq!(detail_types(&events), [REPLICATION_STATES_CHANGED]);
        assert_eq!(
            events[0].detail,
            json!({
                "transitions": [{"sourceServerID": "s-1", "from": "CONTINUOUS", "to": "STALLED"}],
                "transitionCount": 1,
                "truncated": false,
                "accountId": "111122223333",
                "region": "eu-west-1",
                "cacheKey": "drs-source-servers#eu-west-1#111122223333",
            })
        );
    }

    #[test]
    fn a_server_refresh_gives_membership_before_transitions() {
        let before = servers_body(&[server("s-1", "CONTINUOUS")]);
        let mut unknown = SourceServer::bare("s-1");
        unknown.replication_state = None;
        let after = servers_body(&[unknown, server("s-2", "CONTINUOUS")]);

        let events = diff(&key(DataType::DrsSourceServers), &before, &after);

        assert_eq!(
            detail_types(&events),
            [SOURCE_SERVERS_CHANGED, REPLICATION_STATES_CHANGED]
        );
        assert_eq!(events[0].detail["addedCount"], 1);
        assert_eq!(events[0].detail["removedCount"], 0);
        assert_eq!(events[0].detail["removed"], json!([]));
        // DRS gave no state: the transition says so rather than inventing one.
        assert_eq!(
            events[1].detail["transitions"],
            json!([{"sourceServerID": "s-1", "from": "CONTINUOUS", "to": null}])
        );
    }

    #[test]
    fn capacity_turning_from_ok_to_warning_is_reported_with_its_figures() {
        let events = diff(
            &key(DataType::DrsQuotas),
            &quotas_body(239),
            &quotas_body(240),
        );

        assert_eq!(detail_types(&events), [CAPACITY_STATUS_CHANGED]);
        assert_eq!(
            events[0].detail,
            json!({
                "from": "OK",
                "to": "WARNING",
                "replicatingServers": 240,
                "maxReplicatingServers": 300,
                "availableReplicatingSlots": 60,
                "utilizationPercent": 80.0,
                "accountId": "111122223333",
                "region": "eu-west-1",
                "cacheKey": "drs-quotas#eu-west-1#111122223333",
            })
        );
    }

    #[test]
    fn capacity_figures_moving_within_one_status_are_not_reported() {
        assert_eq!(
            diff(
                &key(DataType::DrsQuotas),
                &quotas_body(10),
                &quotas_body(11)
            ),
            []
        );
    }

    #[test]
    fn a_new_job_is_started_and_a_completed_one_finished() {
        let before = jobs_body(&[
            job("drsjob-1", "STARTED", &["IN_PROGRESS", "IN_PROGRESS"]),
            job("drsjob-2", "PENDING", &[]),
        ]);
        let after = jobs_body(&[
            job("drsjob-1", "COMPLETED", &["LAUNCHED", "FAILED"]),
            job("drsjob-2", "STARTED", &["PENDING"]),
            job("drsjob-3", "PENDING", &["PENDING"]),
        ]);

        let events = diff(&key(DataType::DrsJobs), &before, &after);

        assert_eq!(detail_types(&events), [JOBS_CHANGED]);
        // drsjob-2 moving from PENDING to STARTED is the same run: not reported.
        assert_eq!(
            events[0].detail,
            json!({
                "started": [{
                    "jobID": "drsjob-3", "type": "LAUNCH", "initiatedBy": "START_DRILL",
                    "status": "PENDING", "serverCount": 1,
                }],
                "finished": [{
                    "jobID": "drsjob-1", "type": "LAUNCH", "initiatedBy": "START_DRILL",
                    "status": "COMPLETED", "serverCount": 2,
                    "endDateTime": "2024-05-01T10:20:00Z", "failedServerCount": 1,
                }],
                "startedCount": 1,
                "finishedCount": 1,
                "truncated": false,
                "accountId": "111122223333",
                "region": "eu-west-1",
                "cacheKey": "drs-jobs#eu-west-1#111122223333",
            })
        );
    }

    #[test]
    fn a_job_that_ran_between_two_refreshes_is_both_started_and_finished() {
        let before = jobs_body(&[]);
        let after = jobs_body(&[job("drsjob-1", "COMPLETED", &["LAUNCHED"])]);

        let events = diff(&key(DataType::DrsJobs), &before, &after);

        assert_eq!(events[0].detail["startedCount"], 1);
        assert_eq!(events[0].detail["finishedCount"], 1);
        assert_eq!(events[0].detail["started"][0]["jobID"], "drsjob-1");
        assert_eq!(events[0].detail["finished"][0]["failedServerCount"], 0);
    }

    #[test]
    fn a_job_leaving_the_window_is_not_reported() {
        let before = jobs_body(&[
            job("drsjob-old", "COMPLETED", &["LAUNCHED"]),
            job("drsjob-1", "STARTED", &[]),
        ]);
        let after = jobs_body(&[job("drsjob-1", "STARTED", &[])]);

        assert_eq!(diff(&key(DataType::DrsJobs), &before, &after), []);
    }

    #[test]
    fn the_job_statuses_are_those_a_job_counts_as_active() {
        for status in ["PENDING", "STARTED", "COMPLETED", "ANYTHING"] {
            let active = job("drsjob-1", status, &[]).is_active();
            assert_eq!(ACTIVE_JOB_STATUSES.contains(&status), active, "{status}");
            if FINISHED_JOB_STATUSES.contains(&status) {
                assert!(!active, "{status} is both active and finished");
            }
        }
    }

    #[test]
    fn added_and_removed_subnets_are_listed_with_name_and_vpc() {
        let list = |subnets: &[Subnet]| {
            views::list(DataType::Ec2Subnets, &region(), subnets)
                .body
                .to_vec()
        };
        let before = list(&[subnet("subnet-1", "app-a"), subnet("subnet-2", "app-b")]);
        let after = list(&[subnet("subnet-2", "app-b"), subnet("subnet-3", "app-c")]);

        let events = diff(&key(DataType::Ec2Subnets), &before, &after);

        assert_eq!(detail_types(&events), [SUBNETS_CHANGED]);
        assert_eq!(
            events[0].detail,
            json!({
                "added": [{"subnetId": "subnet-3", "subnetName": "app-c", "vpcId": "vpc-0000000a"}],
                "removed": [{"subnetId": "subnet-1", "subnetName": "app-a", "vpcId": "vpc-0000000a"}],
                "addedCount": 1,
                "removedCount": 1,
                "truncated": false,
                "accountId": "111122223333",
                "region": "eu-west-1",
                "cacheKey": "ec2-subnets#eu-west-1#111122223333",
            })
        );
    }

    #[test]
    fn added_and_removed_security_groups_are_listed_with_name_and_vpc() {
        let list = |groups: &[SecurityGroup]| {
            views::list(DataType::Ec2SecurityGroups, &region(), groups)
                .body
                .to_vec()
        };
        let before = list(&[group("sg-1", "web"), group("sg-2", "db")]);
        let after = list(&[group("sg-2", "db-renamed"), group("sg-3", "cache")]);

        let events = diff(&key(DataType::Ec2SecurityGroups), &before, &after);

        assert_eq!(detail_types(&events), [SECURITY_GROUPS_CHANGED]);
        // A renamed group is neither added nor removed.
        assert_eq!(
            events[0].detail,
            json!({
                "added": [{"groupId": "sg-3", "groupName": "cache", "vpcId": "vpc-0000000a"}],
                "removed": [{"groupId": "sg-1", "groupName": "web", "vpcId": "vpc-0000000a"}],
                "addedCount": 1,
                "removedCount": 1,
                "truncated": false,
                "accountId": "111122223333",
                "region": "eu-west-1",
                "cacheKey": "ec2-security-groups#eu-west-1#111122223333",
            })
        );
    }

    #[test]
    fn an_unchanged_refresh_publishes_nothing() {
        let servers = servers_body(&[server("s-1", "CONTINUOUS")]);
        let jobs = jobs_body(&[job("drsjob-1", "STARTED", &[])]);
        let quotas = quotas_body(250);
        let subnets = views::list(DataType::Ec2Subnets, &region(), &[subnet("subnet-1", "a")]);
        let groups = views::list(
            DataType::Ec2SecurityGroups,
            &region(),
            &[group("sg-1", "a")],
        );
        for (data_type, body) in [
            (DataType::DrsSourceServers, servers),
            (DataType::DrsJobs, jobs),
            (DataType::DrsQuotas, quotas),
            (DataType::Ec2Subnets, subnets.body.to_vec()),
            (DataType::Ec2SecurityGroups, groups.body.to_vec()),
        ] {
            assert_eq!(diff(&key(data_type), &body, &body), [], "{data_type}");
        }
    }

    #[test]
    fn the_same_records_in_another_order_are_no_change() {
        let a = server("s-1", "CONTINUOUS");
        let b = server("s-2", "STALLED");
        let before = servers_body(&[a.clone(), b.clone()]);
        let after = servers_body(&[b, a]);

        assert_eq!(diff(&key(DataType::DrsSourceServers), &before, &after), []);
    }

    #[test]
    fn a_repeated_id_is_matched_by_its_first_record() {
        let before = servers_body(&[server("s-1", "CONTINUOUS")]);
        let after = servers_body(&[server("s-1", "CONTINUOUS"), server("s-1", "STALLED")]);

        assert_eq!(diff(&key(DataType::DrsSourceServers), &before, &after), []);
    }

    #[test]
    fn an_unparseable_or_misshapen_body_gives_no_events() {
        let key = key(DataType::DrsSourceServers);
        let good = servers_body(&[server("s-1", "CONTINUOUS")]);
        for bad in [
            &b""[..],
            b"not json",
            b"{\"servers\": [",
            b"[]",
            b"{}",
            b"{\"servers\": 3}",
            b"{\"servers\": [1]}",
            b"{\"servers\": [{\"hostname\": \"no-id\"}]}",
            b"{\"servers\": [{\"sourceServerID\": 7}]}",
        ] {
            assert_eq!(
                diff(&key, bad, &good),
                [],
                "{}",
                String::from_utf8_lossy(bad)
            );
            assert_eq!(
                diff(&key, &good, bad),
                [],
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let quotas = quotas_body(1);
        let key = self::key(DataType::DrsQuotas);
        assert_eq!(diff(&key, b"{\"status\": 1}", &quotas), []);
        assert_eq!(diff(&key, b"{}", &quotas), []);
    }

    #[test]
    fn more_than_fifty_changes_list_the_first_fifty_with_full_counts() {
        let before: Vec<_> = (0..70)
            .map(|i| server(&format!("s-old-{i:03}"), "CONTINUOUS"))
            .collect();
        let mut after: Vec<_> = (0..120)
            .map(|i| server(&format!("s-new-{i:03}"), "CONTINUOUS"))
            .collect();
        after.push(SourceServer {
            replication_state: Some("STALLED".into()),
            ..before[0].clone()
        });

        let events = diff(
            &key(DataType::DrsSourceServers),
            &servers_body(&before),
            &servers_body(&after),
        );

        let detail = &events[0].detail;
        assert_eq!(detail["addedCount"], 120);
        assert_eq!(detail["removedCount"], 69);
        assert_eq!(detail["truncated"], true);
        let ids = |list: &str| -> Vec<String> {
            detail[list]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["sourceServerID"].as_str().unwrap().to_owned())
                .collect()
        };
        let first_added: Vec<_> = (0..50).map(|i| format!("s-new-{i:03}")).collect();
        let first_removed: Vec<_> = (1..51).map(|i| format!("s-old-{i:03}")).collect();
        assert_eq!(ids("added"), first_added);
        assert_eq!(ids("removed"), first_removed);
        // The transition event has one entry: it is not cut.
        assert_eq!(events[1].detail["transitionCount"], 1);
        assert_eq!(events[1].detail["truncated"], false);
    }

    /// The size EventBridge counts for an entry: source, detail-type and detail.
    fn entry_bytes(event: &ChangeEvent) -> usize {
        SOURCE.len() + event.detail_type.len() + serde_json::to_vec(&event.detail).unwrap().len()
    }

    #[test]
    fn an_event_for_ten_thousand_added_servers_stays_under_64_kib() {
        let after: Vec<_> = (0..10_000)
            .map(|i| SourceServer {
                hostname: Some(format!(
                    "ip-10-0-{}-{}.eu-west-1.compute.internal",
                    i / 256,
                    i % 256
                )),
                name_tag: Some(format!("payments-application-server-{i:05}")),
                ..SourceServer::bare(format!("s-{i:017x}"))
            })
            .collect();

        let events = diff(
            &key(DataType::DrsSourceServers),
            &servers_body(&[]),
            &servers_body(&after),
        );

        assert_eq!(events.len(), 1);
        assert_eq!(events[0].detail["addedCount"], 10_000);
        assert_eq!(
            events[0].detail["added"].as_array().unwrap().len(),
            MAX_LISTED
        );
        assert!(
            entry_bytes(&events[0]) < 64 * 1024,
            "{}",
            entry_bytes(&events[0])
        );
    }

    #[test]
    fn long_names_are_clipped_so_the_largest_event_fits_an_eventbridge_entry() {
        let long = "é".repeat(1000);
        let fleet = |prefix: &str| -> Vec<SourceServer> {
            (0..100)
                .map(|i| SourceServer {
                    hostname: Some(long.clone()),
                    name_tag: Some(long.clone()),
                    ..SourceServer::bare(format!("{prefix}-{i}"))
                })
                .collect()
        };

        let events = diff(
            &key(DataType::DrsSourceServers),
            &servers_body(&fleet("s-old")),
            &servers_body(&fleet("s-new")),
        );

        let hostname = events[0].detail["added"][0]["hostname"].as_str().unwrap();
        assert_eq!(hostname, "é".repeat(MAX_TEXT_BYTES / 2));
        assert!(
            entry_bytes(&events[0]) < 64 * 1024,
            "{}",
            entry_bytes(&events[0])
        );
    }

    #[test]
    fn types_without_events_give_none() {
        let accounts = |ids: &[&str]| {
            views::list(DataType::DrsAccounts, &region(), ids)
                .body
                .to_vec()
        };
        let (before, after) = (accounts(&["a"]), accounts(&["b"]));
        for data_type in [
            DataType::DrsAccounts,
            DataType::DrsRecoveryInstances,
            DataType::DrsSourceNetworks,
            DataType::Ec2InstanceProfiles,
            DataType::Ec2InstanceTypes,
        ] {
            assert_eq!(diff(&key(data_type), &before, &after), [], "{data_type}");
        }
        let capacity = CacheKey::fleet_capacity(region());
        assert_eq!(
            diff(
                &capacity,
                b"{\"status\":\"OK\"}",
                b"{\"status\":\"WARNING\"}"
            ),
            []
        );
    }

    #[test]
    fn only_the_types_with_events_are_worth_reading_the_previous_body_for() {
        let with_events: Vec<DataType> = <DataType as strum::VariantArray>::VARIANTS
            .iter()
            .copied()
            .filter(|&t| has_events(t))
            .collect();
        assert_eq!(
            with_events,
            [
                DataType::DrsSourceServers,
                DataType::DrsQuotas,
                DataType::DrsJobs,
                DataType::Ec2Subnets,
                DataType::Ec2SecurityGroups,
            ]
        );
    }

    #[test]
    fn an_account_independent_key_carries_a_null_account() {
        let key = CacheKey::fleet_capacity(region());
        let fields = with_context(&key, Map::new());
        assert_eq!(
            Value::Object(fields),
            json!({"accountId": null, "region": "eu-west-1", "cacheKey": "drs-capacity#eu-west-1#global"})
        );
    }

    #[test]
    fn the_fields_events_copy_are_fields_the_views_write() {
        let documents = [
            (&SERVERS, servers_body(&[server("s-1", "CONTINUOUS")])),
            (
                &JOBS,
                jobs_body(&[job("drsjob-1", "COMPLETED", &["FAILED"])]),
            ),
            (
                &SUBNETS,
                views::list(DataType::Ec2Subnets, &region(), &[subnet("subnet-1", "a")])
                    .body
                    .to_vec(),
            ),
            (
                &SECURITY_GROUPS,
                views::list(
                    DataType::Ec2SecurityGroups,
                    &region(),
                    &[group("sg-1", "a")],
                )
                .body
                .to_vec(),
            ),
        ];
        for (listing, body) in documents {
            let document: Value = serde_json::from_slice(&body).unwrap();
            let records = Records::of(&document, listing).expect("the view's shape");
            let (_, record) = records.iter().next().unwrap();
            assert_eq!(listing.fields[0], listing.id);
            for name in listing.fields {
                assert!(
                    record.contains_key(*name),
                    "{name} of {}",
                    listing.data_type
                );
            }
            if listing.data_type == DataType::DrsSourceServers {
                assert!(record.contains_key("replicationState"));
            }
            if listing.data_type == DataType::DrsJobs {
                for name in ["status", "endDateTime", "participatingServers"] {
                    assert!(record.contains_key(name), "{name}");
                }
                assert!(servers_of(record).unwrap()[0].get("launchStatus").is_some());
            }
        }
        let quotas: Value = serde_json::from_slice(&quotas_body(1)).unwrap();
        for name in CAPACITY_FIGURES.iter().chain(&["status"]) {
            assert!(quotas.get(name).is_some(), "{name}");
        }
    }

    #[test]
    fn detail_types_are_listed_in_the_order_diff_returns_them() {
        assert_eq!(
            DETAIL_TYPES,
            [
                "Source Servers Changed",
                "Replication States Changed",
                "Capacity Status Changed",
                "Jobs Changed",
                "Subnets Changed",
                "Security Groups Changed",
            ]
        );
    }
}
