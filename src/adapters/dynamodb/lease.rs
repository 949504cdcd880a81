//! Refresh leases in the cache table: one lease item per claimed target, written
//! by a conditional PutItem so that of concurrent claims exactly one succeeds.
//! `docs/data-model.md` describes the item, which is built here.

use std::{
    collections::HashSet,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use async_trait::async_trait;
use futures::StreamExt;

use super::{
    DynamoDbStore, is_condition_failure,
    item::{Item, attr, n, s},
    unavailable, unique_id,
};
use crate::{
    domain::{CacheKey, Timestamp},
    ports::{RefreshLeases, StoreError},
};

/// Claims (and, after a failure, releases) of one call in flight at once.
const CONCURRENT_CLAIMS: usize = 64;
/// Lease items expire this long after their lease ends. The lease is decided by
/// `leaseUntil` alone; the margin only keeps the last claim of a target visible
/// for a while, for whoever wonders why it was or was not refreshed.
const LEASE_TTL_MARGIN: Duration = Duration::from_secs(60 * 60);

/// The key of the lease item of `key`: `lease#{key}`. It has four `#`-separated
/// parts, so it never parses as a cache key, and it starts with `lease`, which
/// no data type (and so no chunk key) does.
fn lease_key(key: &CacheKey) -> String {
    format!("lease#{key}")
}

/// A lease item: its key, when the lease ends, which claim wrote it, and its
/// expiry. Without `dataType` it never appears in the `dataType` index.
fn lease_item(key: &CacheKey, claim_id: &str, until: Timestamp) -> Item {
    Item::from([
        (attr::CACHE_KEY.into(), s(lease_key(key))),
        (attr::LEASE_UNTIL.into(), n(until.unix_secs())),
        (attr::CLAIM_ID.into(), s(claim_id)),
        (
            attr::TTL.into(),
            n(until.plus(LEASE_TTL_MARGIN).unix_secs()),
        ),
    ])
}

impl DynamoDbStore {
    /// Writes the lease of `key` unless one that runs past `now` is stored.
    /// `Ok(false)`: another claim holds the key.
    async fn claim_one(
        &self,
        key: &CacheKey,
        claim_id: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        let written = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(lease_item(key, claim_id, until)))
            .condition_expression("attribute_not_exists(#key) OR #until <= :now")
            .expression_attribute_names("#key", attr::CACHE_KEY)
            .expression_attribute_names("#until", attr::LEASE_UNTIL)
            .expression_attribute_values(":now", n(now.unix_secs()))
            .send()
            .await;
        match written {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// Deletes the leases of `keys` that the claim `claim_id` wrote, and no
    /// other. A failure only leaves a lease to run out.
    async fn release(&self, keys: &[&CacheKey], claim_id: &str) {
        let releases: Vec<_> = keys
            .iter()
            .map(|&key| async move {
                let deleted = self
                    .client
                    .delete_item()
                    .table_name(&self.table)
                    .key(attr::CACHE_KEY, s(lease_key(key)))
                    .condition_expression("#claim = :claim")
                    .expression_attribute_names("#claim", attr::CLAIM_ID)
                    .expression_attribute_values(":claim", s(claim_id))
                    .send()
                    .await;
                match deleted {
                    // Gone, or never written by this claim.
                    Ok(_) => {}
                    Err(e) if is_condition_failure(&e) => {}
                    Err(e) => tracing::warn!(
                        cache_key = %key,
                        error = &unavailable(e) as &dyn std::error::Error,
                        "lease left to run out"
                    ),
                }
            })
            .collect();
        futures::stream::iter(releases)
            .buffer_unordered(CONCURRENT_CLAIMS)
            .collect::<()>()
            .await;
    }
}

#[async_trait]
impl RefreshLeases for DynamoDbStore {
    /// One conditional PutItem per distinct key, 64 at a time. After a failure no
    /// further claim is sent, the claims in flight finish, the leases this call
    /// wrote or may have written are deleted again (best effort, and only those
    /// carrying this call's claim id) and the error is returned, so that a retry
    /// can claim them.
    #[tracing::instrument(skip_all, fields(keys = keys.len(), until = until.unix_secs()))]
    async fn claim(
        &self,
        keys: &[CacheKey],
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<CacheKey>, StoreError> {
        let mut seen = HashSet::with_capacity(keys.len());
        let keys: Vec<&CacheKey> = keys.iter().filter(|&k| seen.insert(k)).collect();
        let claim_id = unique_id();
        let failed = AtomicBool::new(false);
        let claims: Vec<_> = keys
            .iter()
            .map(|&key| {
                let (failed, claim_id) = (&failed, &claim_id);
                async move {
                    if failed.load(Ordering::Relaxed) {
                        return Ok(false);
                    }
                    self.claim_one(key, claim_id, now, until).await
                }
            })
            .collect();
        let mut answers = futures::stream::iter(claims).buffered(CONCURRENT_CLAIMS);
        let mut claimed = Vec::new();
        // Claims that failed: the lease may have been written all the same.
        let mut unknown = Vec::new();
        let mut failure = None;
        // `buffered` answers in the order of `keys`.
        let mut keys = keys.into_iter();
        while let Some(answer) = answers.next().await {
            let Some(key) = keys.next() else { break };
            match answer {
                Ok(true) => claimed.push(key),
                Ok(false) => {}
                Err(e) => {
                    failed.store(true, Ordering::Relaxed);
                    unknown.push(key);
                    failure.get_or_insert(e);
                }
            }
        }
        let Some(error) = failure else {
            return Ok(claimed.into_iter().cloned().collect());
        };
        claimed.extend(unknown);
        self.release(&claimed, &claim_id).await;
        Err(error)
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
        let lease = lease_key(&key);
        assert_eq!(lease, "lease#drs-quotas#us-east-1#111122223333");
        assert!(CacheKey::parse(&lease).is_err());
        assert_ne!(lease, chunk_key(&key.to_string(), "v1-00ff", 0));
    }

    #[test]
    fn a_lease_item_is_not_indexed_and_outlives_its_lease() {
        let until = Timestamp::from_unix_secs(1_700_000_060);
        let item = lease_item(&key(), "0123456789abcdef", until);
        assert!(!item.contains_key(attr::DATA_TYPE));
        assert_eq!(number::<i64>(&item, attr::LEASE_UNTIL), Ok(1_700_000_060));
        assert_eq!(string(&item, attr::CLAIM_ID), Ok("0123456789abcdef"));
        assert_eq!(
            number::<i64>(&item, attr::TTL),
            Ok(1_700_000_060 + LEASE_TTL_MARGIN.as_secs() as i64)
        );
    }
}
