//! Refresh leases in the cache table: one lease item per claimed target, written
//! by a conditional PutItem so that of concurrent claims exactly one succeeds.
//! `docs/data-model.md` describes the item.

use std::{
    collections::HashSet,
    sync::atomic::{AtomicBool, Ordering},
};

use async_trait::async_trait;
use futures::StreamExt;

use super::{
    DynamoDbStore, is_condition_failure,
    item::{self, attr, n, s},
    unavailable, unique_id,
};
use crate::{
    domain::{CacheKey, Timestamp},
    ports::{RefreshLeases, StoreError},
};

/// Claims (and, after a failure, releases) of one call in flight at once.
const CONCURRENT_CLAIMS: usize = 16;

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
            .set_item(Some(item::lease_item(key, claim_id, until)))
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
                    .key(attr::CACHE_KEY, s(item::lease_key(key)))
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
    /// One conditional PutItem per distinct key, 16 at a time. After a failure no
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
