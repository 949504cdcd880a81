//! The run ledger in the cache table: one small item per batch of a run,
//! `run#{execution}#{index}`, holding the batch's result as JSON and expiring a
//! day later. Without `dataType` it never appears in the `dataType` index.

use std::{collections::HashMap, time::Duration};

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};

use super::{
    DynamoDbStore,
    batch::MAX_GET_BATCH,
    corrupt,
    item::{Item, attr, n, s, string},
    unavailable,
};
use crate::{
    domain::{Region, Timestamp},
    ports::StoreError,
    workflow::{BatchResult, RunLedger, RunRecords, RunRef},
};

/// How long a batch's result is kept: a run ends within minutes.
const RESULT_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// BatchGetItem calls of one summary in flight at once.
const CONCURRENT_GETS: usize = 8;

/// The key of the result item of batch `index` of `execution`:
/// `run#{execution}#{index}`, or, for one of several deployments over a global
/// table, `run#{deployment region}#{execution}#{index}`, since execution names
/// are only unique within a region's workflow (an invalidation's is the same in
/// every region within its minute). It has at least three `#`-separated parts
/// and starts with `run`, which no data type (and so no cache, chunk or lease
/// key) does.
fn result_key(scope: Option<&Region>, execution: &str, index: u64) -> String {
    match scope {
        None => format!("run#{execution}#{index}"),
        Some(region) => format!("run#{region}#{execution}#{index}"),
    }
}

fn result_item(scope: Option<&Region>, run: &RunRef, result: &BatchResult, now: Timestamp) -> Item {
    // Numbers and short strings only: serializing cannot fail.
    let json = serde_json::to_string(result).unwrap_or_default();
    Item::from([
        (
            attr::CACHE_KEY.into(),
            s(result_key(scope, &run.execution, run.index)),
        ),
        (attr::RESULT.into(), s(json)),
        (attr::TTL.into(), n(now.plus(RESULT_TTL).unix_secs())),
    ])
}

#[async_trait]
impl RunRecords for DynamoDbStore {
    async fn record(&self, run: &RunRef, result: &BatchResult) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(result_item(
                self.lease_scope(),
                run,
                result,
                Timestamp::now(),
            )))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

#[async_trait]
impl RunLedger for DynamoDbStore {
    #[tracing::instrument(skip(self))]
    async fn results(
        &self,
        execution: &str,
        batches: u64,
    ) -> Result<Vec<Option<BatchResult>>, StoreError> {
        let keys: Vec<String> = (0..batches)
            .map(|i| result_key(self.lease_scope(), execution, i))
            .collect();
        let gets: Vec<_> = keys
            .chunks(MAX_GET_BATCH)
            .map(|group| self.get_items(group))
            .collect();
        let groups: Vec<Vec<Item>> = futures::stream::iter(gets)
            .buffer_unordered(CONCURRENT_GETS)
            .try_collect()
            .await?;
        let mut found: HashMap<String, BatchResult> = HashMap::with_capacity(keys.len());
        for item in groups.into_iter().flatten() {
            let key = string(&item, attr::CACHE_KEY)
                .map_err(|e| corrupt(execution.to_owned(), e))?
                .to_owned();
            let json = string(&item, attr::RESULT).map_err(|e| corrupt(key.clone(), e))?;
            let result = serde_json::from_str(json).map_err(|e| StoreError::Corrupt {
                key: key.clone(),
                reason: e.to_string(),
            })?;
            found.insert(key, result);
        }
        Ok(keys.iter().map(|k| found.remove(k)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        domain::{CacheKey, DataType},
        workflow::Counts,
    };

    #[test]
    fn result_keys_are_neither_cache_keys_nor_lease_keys() {
        for data_type in DataType::ALL {
            assert!(!data_type.as_str().starts_with("run"), "{data_type}");
        }
        let key = result_key(None, "tick-2026", 12);
        assert_eq!(key, "run#tick-2026#12");
        assert!(CacheKey::parse(&key).is_err());
        assert!(!key.starts_with("lease#"));
        let west = Region::parse("us-west-2").unwrap();
        assert_eq!(
            result_key(Some(&west), "manual-all-all-all-29000000", 0),
            "run#us-west-2#manual-all-all-all-29000000#0",
            "one region's run never writes another's result"
        );
    }

    #[test]
    fn a_result_item_is_not_indexed_and_expires() {
        let run = RunRef {
            execution: "tick".into(),
            index: 3,
        };
        let result = BatchResult::Counts(Counts {
            refreshed: 2,
            ..Counts::default()
        });
        let now = Timestamp::from_unix_secs(1_700_000_000);
        let item = result_item(None, &run, &result, now);
        assert!(!item.contains_key(attr::DATA_TYPE));
        let json = string(&item, attr::RESULT).unwrap();
        assert_eq!(serde_json::from_str::<BatchResult>(json).unwrap(), result);
        assert_eq!(
            super::super::item::number::<i64>(&item, attr::TTL),
            Ok(1_700_000_000 + 86_400)
        );
    }
}
