//! Demand in the cache table: one small item per key read
//! (`demand#{cacheKey}`) and per warm account (`warm#{accountId}`), listed
//! through the `dataType` index under partitions of their own
//! (`demand#{dataType}` and `warm`), so a listing of cached entries never
//! sees them. `createdAt` holds the time that matters (the latest read, the
//! warm mark's end), the index's sort key, so a query reads only the records
//! recent enough to count. `docs/data-model.md` describes the items.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};

use super::{
    DynamoDbStore, INDEX_BY_DATA_TYPE,
    item::{Item, attr, n, number, s, string},
    unavailable,
    update::{Check, Update},
};
use crate::{
    domain::{
        AccountId, CacheKey, DataType, Demand, Timestamp,
        demand::{MAX_WINDOW, RECORD_LIFETIME},
    },
    ports::{DemandLog, DemandNotes, StoreError},
};

const READ_PREFIX: &str = "demand#";
const WARM_PREFIX: &str = "warm#";
/// The index partition of the warm marks.
const WARM_PARTITION: &str = "warm";

/// The index partition of the read records of `data_type`.
fn read_partition(data_type: DataType) -> String {
    format!("{READ_PREFIX}{}", data_type.as_str())
}

/// The item recording a read of `key` at `at`. Written without a condition:
/// two containers recording one key a moment apart may leave the earlier
/// time, seconds off, which no window notices.
fn read_item(key: &CacheKey, at: Timestamp) -> Item {
    Item::from([
        (attr::CACHE_KEY.into(), s(format!("{READ_PREFIX}{key}"))),
        (attr::DATA_TYPE.into(), s(read_partition(key.data_type()))),
        (attr::CREATED_AT.into(), n(at.unix_secs())),
        (attr::TTL.into(), n(at.plus(RECORD_LIFETIME).unix_secs())),
    ])
}

impl DynamoDbStore {
    /// Every item of index partition `partition` whose `createdAt` is after
    /// `since`, page after page.
    async fn query_after(
        &self,
        partition: &str,
        since: Timestamp,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(INDEX_BY_DATA_TYPE)
                .key_condition_expression("#dataType = :partition AND #createdAt > :since")
                .expression_attribute_names("#dataType", attr::DATA_TYPE)
                .expression_attribute_names("#createdAt", attr::CREATED_AT)
                .expression_attribute_values(":partition", s(partition))
                .expression_attribute_values(":since", n(since.unix_secs()))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(unavailable)?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(items),
            }
        }
    }
}

/// The key and time of a demand or warm item; `None` for one this version
/// cannot read (skipped: a record is only a hint).
fn keyed<'a>(item: &'a Item, prefix: &str) -> Option<(&'a str, Timestamp)> {
    let key = string(item, attr::CACHE_KEY).ok()?.strip_prefix(prefix)?;
    let at = number::<i64>(item, attr::CREATED_AT).ok()?;
    Some((key, Timestamp::from_unix_secs(at)))
}

#[async_trait]
impl DemandNotes for DynamoDbStore {
    async fn record_reads(&self, reads: &[(CacheKey, Timestamp)]) -> Result<(), StoreError> {
        // One request per key: BatchWriteItem refuses a key twice in a batch.
        let mut latest: HashMap<&CacheKey, Timestamp> = HashMap::new();
        for (key, at) in reads {
            let last = latest.entry(key).or_insert(*at);
            *last = (*last).max(*at);
        }
        let requests = latest
            .into_iter()
            .map(|(key, at)| {
                PutRequest::builder()
                    .set_item(Some(read_item(key, at)))
                    .build()
                    .map(|put| WriteRequest::builder().put_request(put).build())
                    .map_err(unavailable)
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.write_batches(requests).await
    }
}

#[async_trait]
impl DemandLog for DynamoDbStore {
    async fn warm(&self, account: AccountId, until: Timestamp) -> Result<(), StoreError> {
        let end = n(until.unix_secs());
        let update = Update::new()
            .set(attr::DATA_TYPE, s(WARM_PARTITION))
            .set(attr::CREATED_AT, end.clone())
            .set(attr::TTL, n(until.plus(RECORD_LIFETIME).unix_secs()))
            .condition_any([
                Check::Absent(attr::CREATED_AT),
                Check::below(attr::CREATED_AT, end),
            ]);
        // Not applied: already warm for longer.
        self.update(&format!("{WARM_PREFIX}{account}"), update)
            .await
            .map(|_| ())
    }

    async fn demand(&self, types: &[DataType], now: Timestamp) -> Result<Demand, StoreError> {
        let mut demand = Demand::default();
        let since = now.minus(MAX_WINDOW);
        for &data_type in types {
            for item in self.query_after(&read_partition(data_type), since).await? {
                if let Some((raw, at)) = keyed(&item, READ_PREFIX)
                    && let Ok(key) = CacheKey::parse(raw)
                {
                    demand.note_read(key, at);
                }
            }
        }
        for item in self.query_after(WARM_PARTITION, now).await? {
            if let Some((raw, until)) = keyed(&item, WARM_PREFIX)
                && let Ok(account) = AccountId::parse(raw)
            {
                demand.warm(account, until);
            }
        }
        Ok(demand)
    }
}
