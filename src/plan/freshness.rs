//! How fresh the configured targets are, per data type, as a scheduled tick
//! finds them: the figures the stack alarms on when the refresh side falls
//! behind, whether or not anyone reads the data.

use std::{
    collections::HashMap,
    time::{Duration, SystemTime},
};

use serde::Serialize;

use crate::{
    domain::{CacheKey, DataType, EntryMeta, EntryState, Timestamp},
    emf::{self, MetricDef},
};

/// A target is overdue once its data is older than this many times the
/// interval the planner keeps it to: its freshness (the interval it was
/// written to stay fresh for) when it is in demand or every key is refreshed
/// ahead; the floor interval, or its stale window's end if sooner, when out
/// of demand ([`promised_interval`]).
pub const OVERDUE_FACTOR: u64 = 2;

/// How old the planner lets `meta`'s data grow before refreshing it, in
/// seconds (at least 1): its freshness when `in_demand`; else the floor
/// `floor`, or the time to its stale window's end if that is sooner, and
/// never less than its freshness.
pub fn promised_interval(meta: &EntryMeta, in_demand: bool, floor: Option<Duration>) -> u64 {
    // Freshness of at least a second: a zero TTL would divide by zero.
    let freshness = meta.expires_at.secs_since(meta.fetched_at).max(1);
    match floor {
        Some(floor) if !in_demand => floor
            .as_secs()
            .min(meta.stale_until.secs_since(meta.fetched_at))
            .max(freshness),
        _ => freshness,
    }
}

/// One data type's targets at one tick.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TypeFreshness {
    pub data_type: &'static str,
    /// Targets of this type the deployment keeps.
    pub configured_keys: u64,
    /// Configured targets never cached, or holding no data.
    pub missing_keys: u64,
    /// Targets whose data is older than [`OVERDUE_FACTOR`] times the interval
    /// the planner keeps it to ([`promised_interval`]).
    pub overdue_keys: u64,
    /// The oldest data's age over that interval (1.0: due now); 0 when
    /// nothing of this type is cached.
    pub worst_age_ratio: f64,
}

impl TypeFreshness {
    fn new(data_type: DataType) -> Self {
        Self {
            data_type: data_type.as_str(),
            configured_keys: 0,
            missing_keys: 0,
            overdue_keys: 0,
            worst_age_ratio: 0.0,
        }
    }

    fn count(
        &mut self,
        meta: Option<&EntryMeta>,
        now: Timestamp,
        promised: &impl Fn(&EntryMeta) -> u64,
    ) {
        self.configured_keys += 1;
        let Some(meta) = meta.filter(|m| m.state != EntryState::NoData) else {
            self.missing_keys += 1;
            return;
        };
        let age = meta.age(now);
        let interval = promised(meta).max(1);
        if age > OVERDUE_FACTOR * interval {
            self.overdue_keys += 1;
        }
        self.worst_age_ratio = self.worst_age_ratio.max(age as f64 / interval as f64);
    }

    /// The EMF document of this type, by data type and across types (the
    /// alarm reads the latter's maximum).
    pub fn emf_line(&self, at: SystemTime) -> Vec<u8> {
        const METRICS: [MetricDef; 4] = [
            MetricDef::new("ConfiguredKeys", "Count"),
            MetricDef::new("MissingKeys", "Count"),
            MetricDef::new("OverdueKeys", "Count"),
            MetricDef::new("WorstAgeRatio", "None"),
        ];
        emf::line(at, &[&["DataType"], &[]], &METRICS, self)
    }
}

/// The freshness of every configured target, one entry per data type of
/// `types` (in that order, with zero counts for a type with no target: a
/// deployment that owns no region still reports every tick), then one per
/// other type in `configured`, in the order they first appear. `promised`
/// gives each stored entry's interval in seconds ([`promised_interval`]).
pub fn survey(
    types: &[DataType],
    configured: impl Iterator<Item = CacheKey>,
    stored: &HashMap<CacheKey, EntryMeta>,
    now: Timestamp,
    promised: impl Fn(&EntryMeta) -> u64,
) -> Vec<TypeFreshness> {
    let mut by_type: Vec<TypeFreshness> = types.iter().map(|t| TypeFreshness::new(*t)).collect();
    for key in configured {
        let data_type = key.data_type();
        let index = match by_type
            .iter()
            .position(|t| t.data_type == data_type.as_str())
        {
            Some(index) => index,
            None => {
                by_type.push(TypeFreshness::new(data_type));
                by_type.len() - 1
            }
        };
        by_type[index].count(stored.get(&key), now, &promised);
    }
    by_type
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use serde_json::Value;

    use super::*;
    use crate::domain::{CacheEntry, TtlPolicy, Version};

    fn key(raw: &str) -> CacheKey {
        CacheKey::parse(raw).unwrap()
    }

    fn fetched(raw: &str, at: i64, freshness: u64) -> (CacheKey, EntryMeta) {
        let policy = TtlPolicy {
            freshness: Duration::from_secs(freshness),
            stale_window: Duration::from_secs(3600),
        };
        let entry = CacheEntry::fetched(
            key(raw),
            Version::from_raw(1),
            Bytes::from_static(b"{}"),
            0,
            Timestamp::from_unix_secs(at),
            policy,
        );
        (entry.meta.key.clone(), entry.meta)
    }

    #[test]
    fn a_type_counts_its_missing_and_overdue_targets_and_its_worst_age() {
        let configured = [
            "drs-source-servers#us-east-1#123456789012",
            "drs-source-servers#us-west-2#123456789012",
            "drs-source-servers#eu-west-1#123456789012",
            "drs-quotas#us-east-1#123456789012",
        ];
        let mut stored: HashMap<CacheKey, EntryMeta> = [
            // At 1,000: 250 s old, more than twice its 120 s.
            fetched(configured[0], 750, 120),
            // 100 s old: within its freshness.
            fetched(configured[1], 900, 120),
            fetched(configured[3], 990, 300),
        ]
        .into();
        // A target holding no data counts as missing, as one never cached.
        let (k, mut no_data) = fetched(configured[2], 990, 120);
        no_data.state = EntryState::NoData;
        stored.insert(k, no_data);

        let survey = survey(
            &[DataType::DrsSourceServers],
            configured.iter().map(|raw| key(raw)),
            &stored,
            Timestamp::from_unix_secs(1_000),
            |m| promised_interval(m, true, None),
        );
        assert_eq!(
            survey,
            [
                TypeFreshness {
                    data_type: "drs-source-servers",
                    configured_keys: 3,
                    missing_keys: 1,
                    overdue_keys: 1,
                    worst_age_ratio: 250.0 / 120.0,
                },
                TypeFreshness {
                    data_type: "drs-quotas",
                    configured_keys: 1,
                    missing_keys: 0,
                    overdue_keys: 0,
                    worst_age_ratio: 10.0 / 300.0,
                },
            ]
        );
    }

    #[test]
    fn data_written_to_expire_at_once_is_overdue_after_two_seconds_and_never_divides_by_zero() {
        let raw = "drs-quotas#us-east-1#123456789012";
        let stored = [fetched(raw, 1_000, 0)].into();
        let at = |secs| {
            survey(
                &[],
                [key(raw)].into_iter(),
                &stored,
                Timestamp::from_unix_secs(secs),
                |m| promised_interval(m, true, None),
            )
        };
        assert_eq!(at(1_002)[0].overdue_keys, 0);
        assert_eq!(at(1_003)[0].overdue_keys, 1);
        assert_eq!(at(1_003)[0].worst_age_ratio, 3.0);
    }

    #[test]
    fn out_of_demand_data_is_overdue_only_past_twice_its_floor_or_stale_window() {
        let raw = "drs-source-servers#us-east-1#123456789012";
        // Fresh for 120 s, servable for an hour more (see `fetched`).
        let stored = [fetched(raw, 0, 120)].into();
        let hour = Duration::from_secs(3_600);
        let at = |secs, in_demand, floor| {
            survey(
                &[],
                [key(raw)].into_iter(),
                &stored,
                Timestamp::from_unix_secs(secs),
                |m| promised_interval(m, in_demand, floor),
            )[0]
            .overdue_keys
        };
        assert_eq!(at(241, true, Some(hour)), 1, "in demand: twice 120 s");
        assert_eq!(at(241, false, None), 1, "every key refreshed ahead");
        // Out of demand, floor 30 min: overdue past an hour.
        assert_eq!(at(3_600, false, Some(hour / 2)), 0);
        assert_eq!(at(3_601, false, Some(hour / 2)), 1);
        // A floor past the stale window's end (3,720 s): held to that end.
        assert_eq!(at(2 * 3_720, false, Some(6 * hour)), 0);
        assert_eq!(at(2 * 3_720 + 1, false, Some(6 * hour)), 1);
    }

    #[test]
    fn the_emf_line_names_each_metric_by_data_type_and_across_types() {
        let line = TypeFreshness {
            data_type: "ec2-subnets",
            configured_keys: 8,
            missing_keys: 1,
            overdue_keys: 2,
            worst_age_ratio: 2.5,
        }
        .emf_line(SystemTime::UNIX_EPOCH);
        let doc: Value = serde_json::from_slice(&line).unwrap();
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(
            directive["Dimensions"],
            serde_json::json!([["DataType"], []])
        );
        let names: Vec<&str> = directive["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "ConfiguredKeys",
                "MissingKeys",
                "OverdueKeys",
                "WorstAgeRatio"
            ]
        );
        assert_eq!(doc["DataType"], "ec2-subnets");
        assert_eq!(doc["OverdueKeys"], 2);
        assert_eq!(doc["WorstAgeRatio"], 2.5);
    }
}
