//! A batch: the targets one refresher invocation takes, as the planner packs
//! them and the workflow's Map passes them on (`{"reason", "targets": [...]}`,
//! which is also the execution input of a refresh of exact targets; the Map
//! adds `"run"`, naming the batch within its run, and `"claim"`, the claim
//! holding its leases; a retry of some of its targets adds `"round"` and
//! `"carried"`).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::{
    domain::{AccountId, CacheKey},
    ports::{ClaimId, RefreshReason},
};

use super::{Counts, Fetch, InputError, TargetSpec};

/// Most targets one refresher invocation takes; the planner packs below this.
pub const MAX_BATCH_TARGETS: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// `manual` when left out.
    #[serde(default)]
    pub reason: RefreshReason,
    pub targets: Vec<TargetSpec>,
    /// The run and position of the batch, under which its result is recorded;
    /// `None` outside a workflow run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunRef>,
    /// The claim that holds the targets' leases, which the refresher renews
    /// and releases; `None` for a batch nobody claimed (nothing is leased).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<ClaimId>,
    /// Rounds of this batch already run: a retry of the targets that failed
    /// in passing is round 1, and so on.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub round: u32,
    /// Outcomes of the earlier rounds' keys that are done.
    #[serde(default, skip_serializing_if = "Counts::is_zero")]
    pub carried: Counts,
    /// When the change that triggered the run happened (milliseconds since the
    /// Unix epoch), for an event's run: the refresher reports how long the
    /// change took to reach the cache. A plan object's items always carry it
    /// (`null` when none: see [`Batch::plan_item`]), since the Map's
    /// `ItemSelector` reads it from each.
    #[serde(default, rename = "eventTime", skip_serializing_if = "Option::is_none")]
    pub event_time: Option<u64>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A batch's place in a run: `{"execution": NAME, "index": N}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRef {
    /// The name of the workflow execution.
    pub execution: String,
    /// The batch's position in the plan, from 0.
    pub index: u64,
}

impl Batch {
    pub fn of(reason: RefreshReason, keys: &[CacheKey]) -> Self {
        Self {
            reason,
            targets: keys.iter().map(TargetSpec::of).collect(),
            run: None,
            claim: None,
            round: 0,
            carried: Counts::default(),
            event_time: None,
        }
    }

    /// The batch as a plan object's item: every field the Map's
    /// `ItemSelector` reads is present, `eventTime` as `null` when there is none.
    pub fn plan_item(&self) -> serde_json::Value {
        let mut item = serde_json::to_value(self).unwrap_or_default();
        if let Some(fields) = item.as_object_mut() {
            fields.entry("eventTime").or_insert(serde_json::Value::Null);
        }
        item
    }

    /// The next round of this batch: `keys` only, with `carried` done so far.
    pub fn next_round(&self, keys: &[CacheKey], carried: Counts) -> Self {
        Self {
            reason: self.reason,
            targets: keys.iter().map(TargetSpec::of).collect(),
            run: self.run.clone(),
            claim: self.claim.clone(),
            round: self.round.saturating_add(1),
            carried,
            event_time: self.event_time,
        }
    }

    /// The keys the targets name; `home` stands in for a missing account.
    pub fn keys(&self, home: AccountId) -> Result<Vec<CacheKey>, InputError> {
        self.targets
            .iter()
            .enumerate()
            .map(|(i, spec)| spec.to_key(home, i))
            .collect()
    }
}

/// Packs `targets` into batches of at most `size` targets, keeping the targets
/// that share an upstream fetch (a source-server listing, an account's
/// instance profiles) together so the refresher fetches them once; such a group
/// is never split, even when larger than `size`. An account's targets are kept
/// next to each other, so it spans as few batches as it can, but a batch holds
/// several accounts: a tick of a large fleet refreshes a few keys of many
/// accounts, and each batch is a child execution billed on its own
/// (docs/cost.md). One account's failures stay its own: a denied or throttled
/// target is an outcome of that target, not of its batch.
pub fn pack(targets: &[CacheKey], home: AccountId, size: usize) -> Vec<Vec<CacheKey>> {
    let mut groups: Vec<(Fetch, Vec<CacheKey>)> = Vec::new();
    let mut group_of: HashMap<Fetch, usize> = HashMap::new();
    for key in targets {
        let Some(fetch) = Fetch::of(key, home) else {
            tracing::error!(cache_key = %key, "derived data is not fetched; target left out");
            continue;
        };
        match group_of.get(&fetch) {
            Some(&at) => groups[at].1.push(key.clone()),
            None => {
                group_of.insert(fetch.clone(), groups.len());
                groups.push((fetch, vec![key.clone()]));
            }
        }
    }
    // Stable: the order of first appearance within each account.
    groups.sort_by_key(|(fetch, _)| fetch.account());
    let size = size.max(1);
    let mut out: Vec<Vec<CacheKey>> = Vec::new();
    for (_, keys) in groups {
        match out.last_mut() {
            Some(batch) if batch.len() + keys.len() <= size => batch.extend(keys),
            _ => out.push(keys),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::workflow::from_json;

    fn key(raw: &str) -> CacheKey {
        CacheKey::parse(raw).unwrap()
    }

    fn home() -> AccountId {
        AccountId::parse("999999999999").unwrap()
    }

    #[test]
    fn targets_sharing_a_fetch_stay_in_one_batch() {
        let targets = [
            key("drs-source-servers#us-east-1#111122223333"),
            key("ec2-subnets#us-east-1#111122223333"),
            key("drs-quotas#us-east-1#111122223333"),
            key("ec2-instance-profiles#us-east-1#111122223333"),
            key("ec2-instance-profiles#eu-west-1#111122223333"),
        ];
        let out = pack(&targets, home(), 2);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0], [targets[0].clone(), targets[2].clone()]);
        assert_eq!(out[1], [targets[1].clone()]);
        assert_eq!(out[2], [targets[3].clone(), targets[4].clone()]);
        let all: usize = pack(&targets, home(), 10).iter().map(Vec::len).sum();
        assert_eq!(all, 5);
    }

    #[test]
    fn a_batch_holds_several_accounts_each_kept_together() {
        let targets = [
            key("ec2-subnets#us-east-1#111122223333"),
            key("ec2-subnets#us-east-1#444455556666"),
            key("ec2-security-groups#us-east-1#111122223333"),
            key("ec2-instance-types#us-east-1#global"),
        ];
        // Instance types are fetched in the home account (999999999999).
        assert_eq!(
            pack(&targets, home(), 10),
            [vec![
                targets[0].clone(),
                targets[2].clone(),
                targets[1].clone(),
                targets[3].clone(),
            ]]
        );
        assert_eq!(
            pack(&targets, home(), 2),
            [
                vec![targets[0].clone(), targets[2].clone()],
                vec![targets[1].clone(), targets[3].clone()],
            ]
        );
    }

    #[test]
    fn a_plan_item_always_names_its_event_time_and_reads_back_as_the_batch() {
        let keys = [key("drs-quotas#us-east-1#111122223333")];
        let mut batch = Batch::of(RefreshReason::Schedule, &keys);
        assert_eq!(batch.plan_item()["eventTime"], serde_json::Value::Null);
        batch.event_time = Some(1_796_223_601_000);
        let item = batch.plan_item();
        assert_eq!(item["eventTime"], 1_796_223_601_000_u64);
        let back: Batch = serde_json::from_value(item).unwrap();
        assert_eq!(back, batch);
        let null: Batch =
            serde_json::from_value(Batch::of(RefreshReason::Schedule, &keys).plan_item()).unwrap();
        assert_eq!(null.event_time, None);
    }

    #[test]
    fn a_batch_round_trips_through_its_wire_form() {
        let keys = [
            key("drs-quotas#us-east-1#111122223333"),
            key("ec2-instance-types#us-east-1#global"),
        ];
        let batch = Batch::of(RefreshReason::Event, &keys);
        let wire = serde_json::to_value(&batch).unwrap();
        assert_eq!(
            wire,
            json!({"reason": "event", "targets": [
                {"dataType": "drs-quotas", "region": "us-east-1", "accountId": "111122223333"},
                {"dataType": "ec2-instance-types", "region": "us-east-1", "accountId": "global"},
            ]})
        );
        let back: Batch = from_json(&wire).unwrap();
        assert_eq!(back.keys(home()).unwrap(), keys);
    }

    #[test]
    fn a_bad_target_is_named_by_its_position() {
        let e = from_json::<Batch>(&json!({"reason": "miss", "targets": [
            {"dataType": "ec2-subnets", "region": "us-east-1"},
            {"dataType": "x", "region": "us-east-1"}]}))
        .unwrap_err();
        assert_eq!(e.field, "targets[1].dataType");
        let e = from_json::<Batch>(&json!({"reason": "cron", "targets": []})).unwrap_err();
        assert_eq!(e.field, "reason");
    }
}
