//! Demand in the `demand_reads` and `warm_accounts` tables: a key's latest
//! recorded read, and when each warm account's mark ends, both in epoch
//! seconds. Apart from the entries, so a demand record never shows in or
//! changes one.

use async_trait::async_trait;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use super::EmbeddedStore;
use crate::{
    domain::{AccountId, CacheKey, DataType, Demand, Timestamp},
    ports::{DemandLog, DemandNotes, StoreError},
};

/// Cache key → the time of its latest recorded read.
pub(super) const READS: TableDefinition<&str, i64> = TableDefinition::new("demand_reads");
/// Account → the end of its warm mark.
pub(super) const WARM: TableDefinition<&str, i64> = TableDefinition::new("warm_accounts");

#[async_trait]
impl DemandNotes for EmbeddedStore {
    async fn record_reads(&self, reads: &[(CacheKey, Timestamp)]) -> Result<(), StoreError> {
        if reads.is_empty() {
            return Ok(());
        }
        let reads: Vec<(String, i64)> = reads
            .iter()
            .map(|(key, at)| (key.to_string(), at.unix_secs()))
            .collect();
        self.run(move |db| {
            let txn = db.begin_write()?;
            {
                let mut table = txn.open_table(READS)?;
                for (key, at) in &reads {
                    let last = table.get(key.as_str())?.map(|g| g.value());
                    if last.is_none_or(|last| last < *at) {
                        table.insert(key.as_str(), *at)?;
                    }
                }
            }
            txn.commit()?;
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl DemandLog for EmbeddedStore {
    async fn warm(&self, account: AccountId, until: Timestamp) -> Result<(), StoreError> {
        let (account, until) = (account.to_string(), until.unix_secs());
        self.run(move |db| {
            let txn = db.begin_write()?;
            {
                let mut table = txn.open_table(WARM)?;
                let end = table.get(account.as_str())?.map(|g| g.value());
                if end.is_none_or(|end| end < until) {
                    table.insert(account.as_str(), until)?;
                }
            }
            txn.commit()?;
            Ok(())
        })
        .await
    }

    async fn demand(&self, types: &[DataType], now: Timestamp) -> Result<Demand, StoreError> {
        let types = types.to_vec();
        self.run(move |db| {
            let txn = db.begin_read()?;
            let mut demand = Demand::default();
            for row in txn.open_table(READS)?.iter()? {
                let (key, at) = row?;
                // A key this version cannot parse is no target: skipped.
                if let Ok(key) = CacheKey::parse(key.value())
                    && types.contains(&key.data_type())
                {
                    demand.note_read(key, Timestamp::from_unix_secs(at.value()));
                }
            }
            for row in txn.open_table(WARM)?.iter()? {
                let (account, until) = row?;
                if let Ok(account) = AccountId::parse(account.value())
                    && until.value() > now.unix_secs()
                {
                    demand.warm(account, Timestamp::from_unix_secs(until.value()));
                }
            }
            Ok(demand)
        })
        .await
    }
}
