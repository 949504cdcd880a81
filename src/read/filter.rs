//! Filters applied to a cached region-wide snapshot.

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::domain::{DataType, ETag};

/// How a filter's value matches a record's field.
#[derive(Debug, Clone, Copy)]
enum Match {
    /// The field is this text.
    Equals,
    /// The field starts with this text, ignoring ASCII case.
    Prefix,
    /// `key=value`: the field (a map of tags) holds this tag.
    Tag,
    /// The field is a number at least this one.
    AtLeast,
    /// The field is a boolean, `true` or `false`.
    Flag,
}

/// A query parameter that filters records: the field it reads, how it
/// matches, and what a value must be. The path is a JSON pointer into a
/// record, where `/*/` steps into every element of an array and `|`
/// separates alternatives (each type's records hold one of them).
struct Field {
    name: &'static str,
    path: &'static str,
    how: Match,
    valid: fn(&str) -> bool,
    reason: &'static str,
}

/// DRS data replication states.
const REPLICATION_STATES: [&str; 12] = [
    "STOPPED",
    "INITIATING",
    "INITIAL_SYNC",
    "BACKLOG",
    "CREATING_SNAPSHOT",
    "CONTINUOUS",
    "PAUSED",
    "RESCAN",
    "STALLED",
    "DISCONNECTED",
    "REPLICATION_STATE_NOT_AVAILABLE",
    "NOT_STARTED",
];

/// A value of one of `values`, for fields that DRS enumerates.
macro_rules! one_of {
    ($($value:literal),+ $(,)?) => {
        |v: &str| [$($value),+].contains(&v)
    };
}

const FIELDS: [Field; 18] = [
    Field {
        name: "vpcId",
        path: "/vpcId",
        how: Match::Equals,
        valid: is_vpc_id,
        reason: "must be a VPC ID such as vpc-0a1b2c3d",
    },
    Field {
        name: "availabilityZone",
        path: "/availabilityZone",
        how: Match::Equals,
        valid: is_zone,
        reason: "must be an availability zone such as us-east-1a",
    },
    Field {
        name: "instanceFamily",
        path: "/instanceFamily",
        how: Match::Equals,
        valid: is_family,
        reason: "must be an instance family such as m5 or c6gn",
    },
    Field {
        name: "hostname",
        path: "/hostname",
        how: Match::Prefix,
        valid: is_hostname_prefix,
        reason: "must be the start of a hostname: 1 to 253 letters, digits, '.', '-' or '_'",
    },
    Field {
        name: "replicationState",
        path: "/replicationState",
        how: Match::Equals,
        valid: is_replication_state,
        reason: "must be a DRS replication state such as CONTINUOUS, STALLED or PAUSED",
    },
    Field {
        name: "stagingAccountId",
        path: "/stagingAccountID",
        how: Match::Equals,
        valid: is_account_id,
        reason: "must be a 12-digit AWS account ID",
    },
    Field {
        name: "tag",
        path: "/tags",
        how: Match::Tag,
        valid: is_tag,
        reason: "must be KEY=VALUE, the key 1 to 128 characters, the value at most 256",
    },
    Field {
        name: "minCores",
        path: "/hardware/totalCores",
        how: Match::AtLeast,
        valid: is_count,
        reason: "must be a whole number of cores, 0 to 100000",
    },
    Field {
        name: "minRamGiB",
        path: "/hardware/ramGiB",
        how: Match::AtLeast,
        valid: is_gib,
        reason: "must be a number of GiB, 0 to 1000000, such as 16 or 0.5",
    },
    Field {
        name: "sourceServerId",
        path: "/sourceServerID|/participatingServers/*/sourceServerID",
        how: Match::Equals,
        valid: is_source_server_id,
        reason: "must be a DRS source server ID such as s-1234567890abcdef0",
    },
    Field {
        name: "status",
        path: "/status",
        how: Match::Equals,
        valid: one_of!("PENDING", "STARTED", "COMPLETED"),
        reason: "must be a DRS job status: PENDING, STARTED or COMPLETED",
    },
    Field {
        name: "type",
        path: "/type",
        how: Match::Equals,
        valid: one_of!("LAUNCH", "TERMINATE", "CREATE_CONVERTED_SNAPSHOT"),
        reason: "must be a DRS job type: LAUNCH, TERMINATE or CREATE_CONVERTED_SNAPSHOT",
    },
    Field {
        name: "ec2InstanceState",
        path: "/ec2InstanceState",
        how: Match::Equals,
        valid: one_of!(
            "PENDING",
            "RUNNING",
            "STOPPING",
            "STOPPED",
            "SHUTTING-DOWN",
            "TERMINATED",
            "NOT_FOUND"
        ),
        reason: "must be an EC2 instance state as DRS reports it, such as RUNNING or STOPPED",
    },
    Field {
        name: "failbackState",
        path: "/failbackState",
        how: Match::Equals,
        valid: one_of!(
            "FAILBACK_NOT_STARTED",
            "FAILBACK_IN_PROGRESS",
            "FAILBACK_READY_FOR_LAUNCH",
            "FAILBACK_COMPLETED",
            "FAILBACK_ERROR",
            "FAILBACK_NOT_READY_FOR_LAUNCH",
            "FAILBACK_LAUNCH_STATE_NOT_AVAILABLE"
        ),
        reason: "must be a DRS failback state such as FAILBACK_NOT_STARTED or FAILBACK_IN_PROGRESS",
    },
    Field {
        name: "isDrill",
        path: "/isDrill",
        how: Match::Flag,
        valid: one_of!("true", "false"),
        reason: "must be true or false",
    },
    Field {
        name: "replicationStatus",
        path: "/replicationStatus",
        how: Match::Equals,
        valid: one_of!("STOPPED", "IN_PROGRESS", "PROTECTED", "ERROR"),
        reason: "must be a source network replication status: STOPPED, IN_PROGRESS, PROTECTED or ERROR",
    },
    // The fleet capacity's selection (elsewhere the key's own parts).
    Field {
        name: "accountId",
        path: "/accountId",
        how: Match::Equals,
        valid: is_account_id,
        reason: "must be a 12-digit AWS account ID",
    },
    Field {
        name: "region",
        path: "/region",
        how: Match::Equals,
        valid: |v| crate::domain::Region::parse(v).is_ok(),
        reason: "must be an AWS region such as us-east-1",
    },
];

/// The most values one filter takes: each costs a pass over the records.
pub const MAX_VALUES: usize = 20;

fn field(name: &str) -> Option<&'static Field> {
    FIELDS.iter().find(|f| f.name == name)
}

/// Conditions on the records of a snapshot: every filter given must hold, and
/// a filter given several values holds when any of them matches; and which
/// page of the matching records to keep. Kept in a canonical order, so equal
/// filters key the same derived view.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Filter(Vec<(&'static str, Vec<Box<str>>)>, Option<Page>);

/// The most records one page holds.
pub const MAX_PAGE: usize = 10_000;

/// One page of a record list: `limit` records from `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Page {
    pub offset: usize,
    pub limit: usize,
}

/// Where the next page starts, in one version of the records and one
/// selection of them: the tag of the snapshot it pages, the offset and the tag
/// of the filters it was issued for, as `{etag}-{offset}-{filters}`. A token
/// of another version is refused rather than served from a shifted list, and
/// one given with other filters rather than counted into another list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageToken {
    pub source: Box<str>,
    pub offset: usize,
    pub filters: Box<str>,
}

impl PageToken {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        const REASON: &str = "must be the nextToken of the previous page, unchanged";
        let mut parts = raw.split('-');
        let (Some(source), Some(offset), Some(filters), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(REASON);
        };
        let hex = |text: &str, len: usize| {
            text.len() == len
                && text
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        let offset = decimal(offset).ok_or(REASON)?;
        if !hex(source, 32) || !hex(filters, FILTERS_TAG_LEN) || offset == 0 {
            return Err(REASON);
        }
        Ok(Self {
            source: source.into(),
            offset,
            filters: filters.into(),
        })
    }

    fn text(source: &ETag, offset: usize, filters: &str) -> String {
        format!("{source}-{offset}-{filters}")
    }
}

/// Hex digits of a page token's filters tag.
const FILTERS_TAG_LEN: usize = 8;

/// `limit` as a page size: a whole number from 1 to [`MAX_PAGE`].
pub fn page_limit(raw: &str) -> Result<usize, &'static str> {
    decimal(raw)
        .filter(|n| (1..=MAX_PAGE).contains(n))
        .ok_or("must be a whole number from 1 to 10000")
}

/// A number written in its canonical decimal digits only (no sign, no
/// leading zero).
fn decimal(raw: &str) -> Option<usize> {
    let canonical = !raw.is_empty()
        && raw.len() <= 9
        && raw.bytes().all(|b| b.is_ascii_digit())
        && (raw == "0" || !raw.starts_with('0'));
    canonical.then(|| raw.parse().ok()).flatten()
}

impl Filter {
    /// This filter, keeping only `page` of the records it matches.
    #[must_use]
    pub(super) fn paged(mut self, page: Page) -> Self {
        self.1 = Some(page);
        self
    }

    /// Adds `value` to the filter `name`, validating it for that filter.
    pub(super) fn add(&mut self, name: &str, value: &str) -> Result<(), &'static str> {
        let field = field(name).ok_or("is not a filter")?;
        if !(field.valid)(value) {
            return Err(field.reason);
        }
        if self.values(field.name).len() >= MAX_VALUES {
            return Err("is given more than 20 times");
        }
        let at = match self.0.binary_search_by_key(&field.name, |(n, _)| n) {
            Ok(at) => at,
            Err(at) => {
                self.0.insert(at, (field.name, Vec::new()));
                at
            }
        };
        let values = &mut self.0[at].1;
        if let Err(pos) = values.binary_search_by(|v| (**v).cmp(value)) {
            values.insert(pos, value.into());
        }
        Ok(())
    }

    /// The values given for `name`.
    pub(super) fn values(&self, name: &str) -> &[Box<str>] {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(&[], |(_, v)| v.as_slice())
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty() && self.1.is_none()
    }

    /// The tag of the records this filter selects, whatever the page: the
    /// first hex digits of a hash of its names and values, which are kept
    /// sorted, so the same filters in any order give the same tag.
    pub(super) fn selection_tag(&self) -> String {
        let mut hasher = blake3::Hasher::new();
        for (name, values) in &self.0 {
            hasher.update(name.as_bytes());
            for value in values {
                hasher.update(b"\0");
                hasher.update(value.as_bytes());
            }
            hasher.update(b"\n");
        }
        hasher.finalize().to_hex()[..FILTERS_TAG_LEN].to_owned()
    }

    fn matches(&self, record: &Value) -> bool {
        self.0.iter().all(|(name, values)| {
            let Some(field) = field(name) else {
                return false;
            };
            let mut actual = Vec::new();
            for path in field.path.split('|') {
                at_path(record, path, &mut actual);
            }
            values
                .iter()
                .any(|v| actual.iter().any(|a| holds(field.how, a, v)))
        })
    }

    /// The snapshot `body` (tagged `source`) of `data_type` with only the
    /// matching records, and its count updated; with a page, only that page
    /// of them, and the token of the next page while one is left.
    pub fn apply(
        &self,
        data_type: DataType,
        body: &[u8],
        source: &ETag,
    ) -> Result<Bytes, serde_json::Error> {
        if data_type == DataType::DrsCapacity {
            return self.select_capacity(body);
        }
        let Some((list, count)) = data_type.record_list() else {
            return Ok(Bytes::copy_from_slice(body));
        };
        let mut doc: Map<String, Value> = serde_json::from_slice(body)?;
        let mut kept: Vec<Value> = match doc.remove(list) {
            Some(Value::Array(items)) => items.into_iter().filter(|r| self.matches(r)).collect(),
            _ => Vec::new(),
        };
        if let Some(Page { offset, limit }) = self.1 {
            let total = kept.len();
            kept = kept.into_iter().skip(offset).take(limit).collect();
            let next = offset + kept.len();
            if next < total {
                let token = PageToken::text(source, next, &self.selection_tag());
                doc.insert("nextToken".into(), token.into());
            }
        }
        doc.insert(count.to_owned(), Value::from(kept.len()));
        doc.insert(list.to_owned(), Value::Array(kept));
        serde_json::to_vec(&doc).map(Bytes::from)
    }
}

impl Filter {
    /// The fleet capacity `body` with only the rows of the accounts and
    /// regions asked for, its totals summed again over those rows.
    fn select_capacity(&self, body: &[u8]) -> Result<Bytes, serde_json::Error> {
        use crate::domain::{AccountId, Region, fleet::FleetCapacity};
        let capacity: FleetCapacity = serde_json::from_slice(body)?;
        // Validated when added: every value parses.
        let accounts: Vec<AccountId> = self
            .values("accountId")
            .iter()
            .filter_map(|a| AccountId::parse(a).ok())
            .collect();
        let regions: Vec<Region> = self
            .values("region")
            .iter()
            .filter_map(|r| Region::parse(r).ok())
            .collect();
        serde_json::to_vec(&capacity.select(&accounts, &regions)).map(Bytes::from)
    }
}

/// Collects the values at `path` in `record` (see [`Field`]).
fn at_path<'a>(record: &'a Value, path: &str, into: &mut Vec<&'a Value>) {
    match path.split_once("/*") {
        None => into.extend(record.pointer(path)),
        Some((array, rest)) => {
            if let Some(Value::Array(items)) = record.pointer(array) {
                for item in items {
                    at_path(item, rest, into);
                }
            }
        }
    }
}

fn holds(how: Match, actual: &Value, wanted: &str) -> bool {
    match how {
        Match::Equals => actual.as_str() == Some(wanted),
        Match::Prefix => actual.as_str().is_some_and(|a| {
            a.len() >= wanted.len()
                && a.is_char_boundary(wanted.len())
                && a[..wanted.len()].eq_ignore_ascii_case(wanted)
        }),
        Match::Tag => wanted
            .split_once('=')
            .is_some_and(|(key, value)| actual.get(key).and_then(Value::as_str) == Some(value)),
        Match::Flag => actual.as_bool() == Some(wanted == "true"),
        Match::AtLeast => match (actual.as_f64(), wanted.parse::<f64>()) {
            (Some(actual), Ok(wanted)) => actual >= wanted,
            _ => false,
        },
    }
}

/// `prefix` and then as many lowercase hex digits as `digits` allows: the
/// shape of AWS resource IDs.
fn is_hex_id(v: &str, prefix: &str, digits: std::ops::RangeInclusive<usize>) -> bool {
    v.strip_prefix(prefix).is_some_and(|hex| {
        digits.contains(&hex.len())
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

fn is_vpc_id(v: &str) -> bool {
    is_hex_id(v, "vpc-", 8..=17)
}

fn is_zone(v: &str) -> bool {
    v.len() <= 32
        && v.ends_with(|c: char| c.is_ascii_lowercase())
        && crate::domain::Region::parse(&v[..v.len() - 1]).is_ok()
}

fn is_family(v: &str) -> bool {
    (1..=16).contains(&v.len())
        && v.starts_with(|c: char| c.is_ascii_lowercase())
        && v.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn is_hostname_prefix(v: &str) -> bool {
    (1..=253).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

fn is_replication_state(v: &str) -> bool {
    REPLICATION_STATES.contains(&v)
}

fn is_account_id(v: &str) -> bool {
    v.len() == 12 && v.bytes().all(|b| b.is_ascii_digit())
}

fn is_tag(v: &str) -> bool {
    v.split_once('=').is_some_and(|(key, value)| {
        (1..=128).contains(&key.chars().count()) && value.chars().count() <= 256
    })
}

fn is_source_server_id(v: &str) -> bool {
    is_hex_id(v, "s-", 17..=17)
}

fn is_count(v: &str) -> bool {
    v.parse::<u32>().is_ok_and(|n| n <= 100_000)
}

fn is_gib(v: &str) -> bool {
    !v.is_empty()
        && v.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && v.parse::<f64>()
            .is_ok_and(|n| (0.0..=1_000_000.0).contains(&n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(pairs: &[(&str, &str)]) -> Filter {
        let mut f = Filter::default();
        for (k, v) in pairs {
            f.add(k, v).unwrap();
        }
        f
    }

    /// The IDs (`id` field) of the records `f` keeps.
    fn kept(f: &Filter, t: DataType, body: &[u8], (list, id): (&str, &str)) -> Vec<String> {
        let out: Value =
            serde_json::from_slice(&f.apply(t, body, &ETag::of(body)).unwrap()).unwrap();
        out[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r[id].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn keeps_records_matching_every_condition_and_recounts() {
        let body = br#"{"count":3,"subnets":[
            {"subnetId":"subnet-1","vpcId":"vpc-0000000a","availabilityZone":"us-east-1a"},
            {"subnetId":"subnet-2","vpcId":"vpc-0000000a","availabilityZone":"us-east-1b"},
            {"subnetId":"subnet-3","vpcId":"vpc-0000000b","availabilityZone":"us-east-1a"}]}"#;
        let f = filter(&[
            ("vpcId", "vpc-0000000a"),
            ("availabilityZone", "us-east-1a"),
        ]);
        let out: Value = serde_json::from_slice(
            &f.apply(DataType::Ec2Subnets, body, &ETag::of(body))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(out["count"], 1);
        assert_eq!(out["subnets"][0]["subnetId"], "subnet-1");
    }

    #[test]
    fn jobs_filter_by_status_type_and_a_server_they_hold() {
        let body = br#"{"count":3,"activeJobs":2,"jobs":[
            {"jobID":"drsjob-1","type":"LAUNCH","status":"STARTED",
             "participatingServers":[{"sourceServerID":"s-00000000000000001"},
                                     {"sourceServerID":"s-00000000000000002"}]},
            {"jobID":"drsjob-2","type":"TERMINATE","status":"PENDING",
             "participatingServers":[{"sourceServerID":"s-00000000000000002"}]},
            {"jobID":"drsjob-3","type":"LAUNCH","status":"COMPLETED","participatingServers":[]}]}"#;
        let t = DataType::DrsJobs;
        let ids = |pairs: &[(&str, &str)]| kept(&filter(pairs), t, body, ("jobs", "jobID"));
        assert_eq!(
            ids(&[("sourceServerId", "s-00000000000000002")]),
            ["drsjob-1", "drsjob-2"]
        );
        assert_eq!(
            ids(&[("status", "STARTED"), ("status", "PENDING")]),
            ["drsjob-1", "drsjob-2"]
        );
        assert_eq!(
            ids(&[("type", "LAUNCH"), ("status", "COMPLETED")]),
            ["drsjob-3"]
        );
        assert!(ids(&[("sourceServerId", "s-0000000000000000f")]).is_empty());
    }

    #[test]
    fn recovery_instances_filter_by_server_state_failback_and_drill() {
        let body = br#"{"count":2,"recoveryInstances":[
            {"recoveryInstanceID":"i-1","sourceServerID":"s-00000000000000001","isDrill":true,
             "ec2InstanceState":"RUNNING","failbackState":"FAILBACK_NOT_STARTED"},
            {"recoveryInstanceID":"i-2","sourceServerID":"s-00000000000000002","isDrill":false,
             "ec2InstanceState":"STOPPED","failbackState":"FAILBACK_IN_PROGRESS"}]}"#;
        let t = DataType::DrsRecoveryInstances;
        let ids = |pairs: &[(&str, &str)]| {
            kept(
                &filter(pairs),
                t,
                body,
                ("recoveryInstances", "recoveryInstanceID"),
            )
        };
        assert_eq!(ids(&[("isDrill", "true")]), ["i-1"]);
        assert_eq!(ids(&[("isDrill", "false")]), ["i-2"]);
        assert_eq!(ids(&[("sourceServerId", "s-00000000000000002")]), ["i-2"]);
        assert_eq!(ids(&[("failbackState", "FAILBACK_IN_PROGRESS")]), ["i-2"]);
        assert_eq!(ids(&[("ec2InstanceState", "RUNNING")]), ["i-1"]);
        assert!(filter_err("isDrill", "yes").contains("true or false"));
        assert!(filter_err("sourceServerId", "s-1").contains("source server ID"));
        assert!(filter_err("status", "RUNNING").contains("PENDING, STARTED or COMPLETED"));
    }

    fn filter_err(name: &str, value: &str) -> &'static str {
        Filter::default().add(name, value).unwrap_err()
    }

    #[test]
    fn several_values_of_one_filter_mean_any_of_them() {
        let body = br#"{"count":3,"subnets":[
            {"subnetId":"subnet-1","availabilityZone":"us-east-1a"},
            {"subnetId":"subnet-2","availabilityZone":"us-east-1b"},
            {"subnetId":"subnet-3","availabilityZone":"us-east-1c"}]}"#;
        let f = filter(&[
            ("availabilityZone", "us-east-1c"),
            ("availabilityZone", "us-east-1a"),
        ]);
        assert_eq!(
            kept(&f, DataType::Ec2Subnets, body, ("subnets", "subnetId")),
            ["subnet-1", "subnet-3"]
        );
        // The same values in another order are the same filter.
        let g = filter(&[
            ("availabilityZone", "us-east-1a"),
            ("availabilityZone", "us-east-1c"),
            ("availabilityZone", "us-east-1a"),
        ]);
        assert_eq!(f, g);
    }

    #[test]
    fn source_servers_filter_by_hostname_state_staging_tag_cores_and_ram() {
        let body = br#"{"serverCount":3,"servers":[
            {"sourceServerID":"s-1","hostname":"WEB-01.corp","replicationState":"CONTINUOUS",
             "stagingAccountID":"111111111111","tags":{"App":"shop","Env":"prod"},
             "hardware":{"totalCores":8,"ramGiB":32.0}},
            {"sourceServerID":"s-2","hostname":"db-01","replicationState":"STALLED",
             "stagingAccountID":"222222222222","tags":{"App":"shop"},
             "hardware":{"totalCores":2,"ramGiB":4.0}},
            {"sourceServerID":"s-3","hostname":null,"replicationState":"PAUSED",
             "stagingAccountID":null,"tags":{},"hardware":{"totalCores":16,"ramGiB":0.5}}]}"#;
        let t = DataType::DrsSourceServers;
        let ids =
            |pairs: &[(&str, &str)]| kept(&filter(pairs), t, body, ("servers", "sourceServerID"));
        assert_eq!(ids(&[("hostname", "web")]), ["s-1"]);
        assert_eq!(
            ids(&[
                ("replicationState", "STALLED"),
                ("replicationState", "PAUSED")
            ]),
            ["s-2", "s-3"]
        );
        assert_eq!(ids(&[("stagingAccountId", "222222222222")]), ["s-2"]);
        assert_eq!(ids(&[("tag", "App=shop")]), ["s-1", "s-2"]);
        assert_eq!(
            ids(&[("tag", "App=shop"), ("tag", "Env=dev")]),
            ["s-1", "s-2"]
        );
        assert_eq!(ids(&[("tag", "Env=prod")]), ["s-1"]);
        assert_eq!(ids(&[("minCores", "8")]), ["s-1", "s-3"]);
        assert_eq!(ids(&[("minRamGiB", "4")]), ["s-1", "s-2"]);
        assert_eq!(ids(&[("minCores", "8"), ("minRamGiB", "1")]), ["s-1"]);
    }

    #[test]
    fn values_are_validated_per_field() {
        let mut f = Filter::default();
        assert!(f.add("vpcId", "vpc-12").is_err());
        assert!(f.add("vpcId", "vpc-0123456789abcdef0").is_ok());
        assert!(f.add("availabilityZone", "us-east-1").is_err());
        assert!(f.add("availabilityZone", "us-east-1f").is_ok());
        assert!(f.add("instanceFamily", "M5").is_err());
        assert!(f.add("instanceFamily", "u-6tb1").is_ok());
        assert!(f.add("hostname", "web 01").is_err());
        assert!(f.add("replicationState", "stalled").is_err());
        assert!(f.add("stagingAccountId", "12345").is_err());
        assert!(f.add("tag", "no-equals").is_err());
        assert!(f.add("tag", "=value").is_err());
        assert!(f.add("tag", "Env=").is_ok());
        assert!(f.add("minCores", "-1").is_err());
        assert!(f.add("minCores", "2.5").is_err());
        assert!(f.add("minRamGiB", "NaN").is_err());
        assert!(f.add("minRamGiB", "1e3").is_err());
        assert!(f.add("minRamGiB", "0.5").is_ok());
        assert!(f.add("colour", "red").is_err());
        let mut many = Filter::default();
        for n in 0..MAX_VALUES {
            many.add("hostname", &format!("web-{n}")).unwrap();
        }
        assert_eq!(
            many.add("hostname", "one-more"),
            Err("is given more than 20 times")
        );
    }
}
