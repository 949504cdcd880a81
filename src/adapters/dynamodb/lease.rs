//! Refresh leases in the cache table: one lease item per claimed target. Every
//! change to a lease is one conditional write, so of concurrent claims exactly
//! one succeeds, and a mark and a release never miss each other.
//! `docs/data-model.md` describes the item, which is built here.

use std::{
    future::Future,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use futures::StreamExt;

use super::{
    DynamoDbStore, is_condition_failure,
    item::{Item, attr, n, s},
    unavailable, unique_id,
};
use crate::{
    adapters::distinct,
    domain::{CacheKey, Region, Timestamp},
    ports::{Claim, ClaimId, ClaimRule, LeaseClaims, RefreshLeases, StoreError},
};

/// Lease writes of one call in flight at once.
const CONCURRENT_CLAIMS: usize = 64;
/// Lease items expire this long after their lease ends. A live lease is decided
/// by `leaseUntil` alone; the margin keeps the lease of a refresh that died for
/// longer than any died-refresh backoff, and shows why a target was or was not
/// refreshed.
const LEASE_TTL_MARGIN: Duration = Duration::from_secs(60 * 60);
/// Tries of a claim on one key that finds a lease ending between its claim and
/// its mark.
const CLAIM_TRIES: u32 = 3;

/// The key of the lease item of `key`: `lease#{key}`, or, for one of several
/// deployments over a global table, `lease#{deployment region}#{key}`. Leases
/// are per owner region: a conditional write is decided in one replica only,
/// so a lease means nothing to another region, and the leases a failed region
/// left behind never hold up the region its targets move to. It has four or
/// five `#`-separated parts, so it never parses as a cache key, and it starts
/// with `lease`, which no data type (and so no chunk key) does.
fn lease_key(scope: Option<&Region>, key: &CacheKey) -> String {
    match scope {
        None => format!("lease#{key}"),
        Some(region) => format!("lease#{region}#{key}"),
    }
}

/// A lease item as a claim writes it: its key, when the lease ends, which claim
/// wrote it, and its expiry; no fetch started, nothing pending. Without
/// `dataType` it never appears in the `dataType` index.
fn lease_item(scope: Option<&Region>, key: &CacheKey, claim: &ClaimId, until: Timestamp) -> Item {
    Item::from([
        (attr::CACHE_KEY.into(), s(lease_key(scope, key))),
        (attr::LEASE_UNTIL.into(), n(until.unix_secs())),
        (attr::CLAIM_ID.into(), s(&claim.0)),
        (attr::TTL.into(), n(expiry(until))),
    ])
}

fn expiry(until: Timestamp) -> i64 {
    until.plus(LEASE_TTL_MARGIN).unix_secs()
}

/// Runs `calls`, [`CONCURRENT_CLAIMS`] at a time, answering in their order.
async fn in_turn<T>(calls: Vec<impl Future<Output = T>>) -> Vec<T> {
    futures::stream::iter(calls)
        .buffered(CONCURRENT_CLAIMS)
        .collect()
        .await
}

impl DynamoDbStore {
    /// Writes the lease of `key` if `rule` lets this claim take it; marks it
    /// pending when a live lease holds it and `rule` says so. `Ok(false)`:
    /// another claim holds the key.
    async fn claim_one(
        &self,
        key: &CacheKey,
        claim: &ClaimId,
        now: Timestamp,
        until: Timestamp,
        rule: ClaimRule,
    ) -> Result<bool, StoreError> {
        for _ in 0..CLAIM_TRIES {
            let put = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(lease_item(self.lease_scope(), key, claim, until)))
                .expression_attribute_names("#key", attr::CACHE_KEY)
                .expression_attribute_names("#until", attr::LEASE_UNTIL)
                .expression_attribute_values(":now", n(now.unix_secs()));
            let put = match rule {
                // A lease begun and never released is a refresh that died.
                ClaimRule::Schedule { died_backoff } => put
                    .condition_expression(
                        "attribute_not_exists(#key) \
                         OR (#until <= :now AND attribute_not_exists(#started)) \
                         OR #until <= :edge",
                    )
                    .expression_attribute_names("#started", attr::STARTED_AT)
                    .expression_attribute_values(":edge", n(now.minus(died_backoff).unix_secs())),
                ClaimRule::Demand { .. } => {
                    put.condition_expression("attribute_not_exists(#key) OR #until <= :now")
                }
            };
            match put.send().await {
                Ok(_) => return Ok(true),
                Err(e) if is_condition_failure(&e) => {}
                Err(e) => return Err(unavailable(e)),
            }
            if !matches!(rule, ClaimRule::Demand { mark_pending: true }) {
                return Ok(false);
            }
            // Held: mark it, unless the lease ended since (a release deletes
            // the item), in which case try to claim it again.
            let marked = self
                .client
                .update_item()
                .table_name(&self.table)
                .key(attr::CACHE_KEY, s(lease_key(self.lease_scope(), key)))
                .update_expression("SET #pending = :true")
                .condition_expression("#until > :now")
                .expression_attribute_names("#pending", attr::PENDING)
                .expression_attribute_names("#until", attr::LEASE_UNTIL)
                .expression_attribute_values(":true", AttributeValue::Bool(true))
                .expression_attribute_values(":now", n(now.unix_secs()))
                .send()
                .await;
            match marked {
                Ok(_) => return Ok(false),
                Err(e) if is_condition_failure(&e) => {}
                Err(e) => return Err(unavailable(e)),
            }
        }
        Ok(false)
    }

    /// Takes or renews the lease of `key` for `claim`. `Ok(false)`: another
    /// claim holds it.
    async fn begin_one(
        &self,
        key: &CacheKey,
        claim: &ClaimId,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        let begun = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(attr::CACHE_KEY, s(lease_key(self.lease_scope(), key)))
            // A mark made before now is answered by the fetch beginning now.
            .update_expression(
                "SET #until = :until, #claim = :claim, #started = :now, #ttl = :ttl \
                 REMOVE #pending",
            )
            .condition_expression("#claim = :claim OR attribute_not_exists(#key) OR #until <= :now")
            .expression_attribute_names("#key", attr::CACHE_KEY)
            .expression_attribute_names("#until", attr::LEASE_UNTIL)
            .expression_attribute_names("#claim", attr::CLAIM_ID)
            .expression_attribute_names("#started", attr::STARTED_AT)
            .expression_attribute_names("#ttl", attr::TTL)
            .expression_attribute_names("#pending", attr::PENDING)
            .expression_attribute_values(":until", n(until.unix_secs()))
            .expression_attribute_values(":claim", s(&claim.0))
            .expression_attribute_values(":now", n(now.unix_secs()))
            .expression_attribute_values(":ttl", n(expiry(until)))
            .send()
            .await;
        match begun {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// Deletes the lease of `key` if `claim` holds it. `Ok(true)`: it was
    /// marked pending.
    async fn release_one(&self, key: &CacheKey, claim: &ClaimId) -> Result<bool, StoreError> {
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(attr::CACHE_KEY, s(lease_key(self.lease_scope(), key)))
            .condition_expression("#claim = :claim")
            .expression_attribute_names("#claim", attr::CLAIM_ID)
            .expression_attribute_values(":claim", s(&claim.0))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match deleted {
            Ok(out) => Ok(out
                .attributes()
                .and_then(|old| old.get(attr::PENDING))
                .is_some_and(|p| matches!(p, AttributeValue::Bool(true)))),
            // Gone, or another claim's.
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }
}

#[async_trait]
impl LeaseClaims for DynamoDbStore {
    /// One conditional PutItem per distinct key (and an UpdateItem marking a
    /// held one pending), 64 at a time. After a failure no further claim is
    /// sent, the claims in flight finish, the leases this call wrote or may
    /// have written are deleted again (best effort, and only those carrying
    /// this call's claim id) and the error is returned, so that a retry can
    /// claim them.
    #[tracing::instrument(skip_all, fields(keys = keys.len(), until = until.unix_secs()))]
    async fn claim(
        &self,
        keys: &[CacheKey],
        now: Timestamp,
        until: Timestamp,
        rule: ClaimRule,
    ) -> Result<Claim, StoreError> {
        let keys = distinct(keys);
        let id = ClaimId(unique_id());
        let failed = AtomicBool::new(false);
        let calls: Vec<_> = keys
            .iter()
            .map(|&key| {
                let (failed, id) = (&failed, &id);
                async move {
                    if failed.load(Ordering::Relaxed) {
                        return Ok(false);
                    }
                    let answer = self.claim_one(key, id, now, until, rule).await;
                    if answer.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    answer
                }
            })
            .collect();
        let answers = in_turn(calls).await;
        let mut claimed = Vec::new();
        let mut failure = None;
        for (&key, answer) in keys.iter().zip(answers) {
            match answer {
                Ok(true) => claimed.push(key.clone()),
                Ok(false) => {}
                Err(e) => {
                    // The lease may have been written all the same.
                    claimed.push(key.clone());
                    failure.get_or_insert(e);
                }
            }
        }
        let Some(error) = failure else {
            return Ok(Claim { id, keys: claimed });
        };
        if let Err(e) = self.release(&claimed, &id).await {
            tracing::warn!(
                error = &e as &dyn std::error::Error,
                "leases left to run out"
            );
        }
        Err(error)
    }
}

#[async_trait]
impl RefreshLeases for DynamoDbStore {
    /// One conditional UpdateItem per distinct key, 64 at a time.
    #[tracing::instrument(skip_all, fields(keys = keys.len(), until = until.unix_secs()))]
    async fn begin(
        &self,
        keys: &[CacheKey],
        claim: &ClaimId,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<CacheKey>, StoreError> {
        let keys = distinct(keys);
        let calls: Vec<_> = keys
            .iter()
            .map(|&key| self.begin_one(key, claim, now, until))
            .collect();
        let answers = in_turn(calls).await;
        let mut held = Vec::with_capacity(keys.len());
        for (&key, answer) in keys.iter().zip(answers) {
            if answer? {
                held.push(key.clone());
            }
        }
        Ok(held)
    }

    /// One conditional DeleteItem per distinct key, 64 at a time, each returning
    /// the lease it deleted. Every key is tried; the first failure is returned.
    #[tracing::instrument(skip_all, fields(keys = keys.len()))]
    async fn release(
        &self,
        keys: &[CacheKey],
        claim: &ClaimId,
    ) -> Result<Vec<CacheKey>, StoreError> {
        let keys = distinct(keys);
        let calls: Vec<_> = keys
            .iter()
            .map(|&key| self.release_one(key, claim))
            .collect();
        let answers = in_turn(calls).await;
        let mut pending = Vec::new();
        let mut failure = None;
        for (&key, answer) in keys.iter().zip(answers) {
            match answer {
                Ok(true) => pending.push(key.clone()),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(cache_key = %key, error = &e as &dyn std::error::Error, "lease left to run out");
                    failure.get_or_insert(e);
                }
            }
        }
        match failure {
            None => Ok(pending),
            Some(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        adapters::dynamodb::item::{chunk_key, number, string},
        domain::{AccountId, DataType, Region},
    };

    fn key() -> CacheKey {
        CacheKey::new(
            DataType::DrsQuotas,
            Region::parse("us-east-1").unwrap(),
            AccountId::parse("111122223333").unwrap(),
        )
    }

    #[test]
    fn lease_keys_are_neither_cache_keys_nor_chunk_keys() {
        for data_type in DataType::ALL {
            assert!(!data_type.as_str().starts_with("lease"), "{data_type}");
        }
        let key = key();
        let lease = lease_key(None, &key);
        assert_eq!(lease, "lease#drs-quotas#us-east-1#111122223333");
        assert!(CacheKey::parse(&lease).is_err());
        assert_ne!(lease, chunk_key(&key.to_string(), "v1-00ff", 0));
        let west = Region::parse("us-west-2").unwrap();
        let scoped = lease_key(Some(&west), &key);
        assert_eq!(scoped, "lease#us-west-2#drs-quotas#us-east-1#111122223333");
        assert!(CacheKey::parse(&scoped).is_err());
    }

    #[test]
    fn a_lease_item_is_not_indexed_and_outlives_its_lease() {
        let until = Timestamp::from_unix_secs(1_700_000_060);
        let item = lease_item(None, &key(), &ClaimId("0123456789abcdef".into()), until);
        assert!(!item.contains_key(attr::DATA_TYPE));
        assert_eq!(number::<i64>(&item, attr::LEASE_UNTIL), Ok(1_700_000_060));
        assert_eq!(string(&item, attr::CLAIM_ID), Ok("0123456789abcdef"));
        assert_eq!(
            number::<i64>(&item, attr::TTL),
            Ok(1_700_000_060 + LEASE_TTL_MARGIN.as_secs() as i64)
        );
    }
}
