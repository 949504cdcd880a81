//! Refresh leases in the `leases` table, all the keys of a claim in one write
//! transaction.

use std::collections::HashSet;

use async_trait::async_trait;
use redb::ReadableTable;

use super::{EmbeddedStore, tables::LEASES};
use crate::{
    domain::{CacheKey, Timestamp},
    ports::{RefreshLeases, StoreError},
};

#[async_trait]
impl RefreshLeases for EmbeddedStore {
    /// Atomic: a claim that fails claims nothing.
    #[tracing::instrument(skip_all, fields(keys = keys.len(), until = until.unix_secs()))]
    async fn claim(
        &self,
        keys: &[CacheKey],
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<CacheKey>, StoreError> {
        let mut seen = HashSet::with_capacity(keys.len());
        let keys: Vec<CacheKey> = keys.iter().filter(|&k| seen.insert(k)).cloned().collect();
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        self.run(move |db| {
            let txn = db.begin_write()?;
            let mut claimed = Vec::new();
            {
                let mut leases = txn.open_table(LEASES)?;
                for key in keys {
                    let raw = key.to_string();
                    let held = leases
                        .get(raw.as_str())?
                        .is_some_and(|stored| stored.value() > now.unix_secs());
                    if !held {
                        leases.insert(raw.as_str(), until.unix_secs())?;
                        claimed.push(key);
                    }
                }
            }
            txn.commit()?;
            Ok(claimed)
        })
        .await
    }
}
