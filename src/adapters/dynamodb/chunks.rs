//! Chunk I/O: writing, reading, deleting and extending the chunk items that hold
//! an encoded body too large for its head item.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{DeleteRequest, PutRequest, WriteRequest};
use futures::{StreamExt, TryStreamExt};

use super::{
    DynamoDbStore,
    batch::{Backoff, until_processed},
    corrupt,
    item::{self, CHUNK_BYTES, attr, n, s},
    unavailable, unique_id,
    update::{Check, Update},
};
use crate::{
    domain::{EntryMeta, Timestamp, Version},
    ports::StoreError,
};

/// BatchWriteItem takes at most 25 requests.
const WRITE_BATCH: usize = 25;
/// BatchGetItem answers at most 16 MB: this many chunks always fit.
const GET_BATCH: usize = 40;
/// Chunk ttl updates of one extension in flight at once.
const CONCURRENT_UPDATES: usize = 16;

impl DynamoDbStore {
    /// The payload in the chunks of `set`, or `None` if one of them is gone.
    pub(super) async fn read_chunks(
        &self,
        head_key: &str,
        set: &str,
        count: usize,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let keys: Vec<String> = (0..count)
            .map(|i| item::chunk_key(head_key, set, i))
            .collect();
        let mut found: HashMap<String, Vec<u8>> = HashMap::with_capacity(count);
        for group in keys.chunks(GET_BATCH) {
            let items = self.get_items(group).await?;
            for chunk in items {
                let (key, data) =
                    item::chunk_data(chunk).map_err(|e| corrupt(head_key.to_owned(), e))?;
                found.insert(key, data);
            }
        }
        let mut payload = Vec::with_capacity(count * CHUNK_BYTES);
        for key in &keys {
            match found.remove(key) {
                Some(data) => payload.extend_from_slice(&data),
                None => return Ok(None),
            }
        }
        Ok(Some(payload))
    }

    /// Writes the chunks of `payload` under a new chunk set, returning the set
    /// and the keys written.
    pub(super) async fn write_chunks(
        &self,
        meta: &EntryMeta,
        payload: &[u8],
    ) -> Result<(String, Vec<String>), StoreError> {
        let head_key = meta.key.to_string();
        let set = new_chunk_set(meta.version);
        let ttl = item::chunk_ttl(meta.stale_until);
        let mut keys = Vec::new();
        let mut requests = Vec::new();
        for (i, data) in payload.chunks(CHUNK_BYTES).enumerate() {
            let key = item::chunk_key(&head_key, &set, i);
            let put = PutRequest::builder()
                .set_item(Some(item::chunk_item(key.clone(), data, ttl)))
                .build()
                .map_err(unavailable)?;
            requests.push(WriteRequest::builder().put_request(put).build());
            keys.push(key);
        }
        if let Err(e) = self.write_batches(requests).await {
            // None of these chunks is referenced yet.
            self.delete_chunks(keys).await;
            return Err(e);
        }
        Ok((set, keys))
    }

    /// Deletes chunk items; a failure only leaves them to expire by TTL.
    pub(super) async fn delete_chunks(&self, keys: Vec<String>) {
        if keys.is_empty() {
            return;
        }
        let requests: Result<Vec<WriteRequest>, _> = keys
            .iter()
            .map(|k| {
                DeleteRequest::builder()
                    .key(attr::CACHE_KEY, s(k))
                    .build()
                    .map(|d| WriteRequest::builder().delete_request(d).build())
            })
            .collect();
        let result = match requests {
            Ok(requests) => self.write_batches(requests).await,
            Err(e) => Err(unavailable(e)),
        };
        if let Err(error) = result {
            tracing::warn!(
                error = &error as &dyn std::error::Error,
                chunks = keys.len(),
                "chunks left to expire by TTL"
            );
        }
    }

    /// Raises the `ttl` of the chunks a head points to, never lowering it;
    /// `false` when one of them is gone (swept by TTL, or removed by a newer
    /// write), so that the head must not be kept pointing at them.
    pub(super) async fn extend_chunks(
        &self,
        keys: &[String],
        ttl: Timestamp,
    ) -> Result<bool, StoreError> {
        let updates: Vec<_> = keys.iter().map(|key| self.extend_chunk(key, ttl)).collect();
        let found: Vec<bool> = futures::stream::iter(updates)
            .buffer_unordered(CONCURRENT_UPDATES)
            .try_collect()
            .await?;
        Ok(found.into_iter().all(|f| f))
    }

    /// Whether the chunk `key` exists, its `ttl` raised to `ttl` if lower.
    async fn extend_chunk(&self, key: &str, ttl: Timestamp) -> Result<bool, StoreError> {
        let ttl = n(ttl.unix_secs());
        let update = Update::new()
            .set(attr::TTL, ttl.clone())
            .condition_all([Check::Exists(attr::CACHE_KEY), Check::below(attr::TTL, ttl)]);
        if self.update(key, update).await? {
            return Ok(true);
        }
        // Not applied: gone, or already kept longer (rare: raises are made
        // only when due). Which one decides whether the head may stay.
        Ok(self.get_head(key).await?.is_some())
    }

    /// Sends `requests` in groups that BatchWriteItem takes, until each group
    /// is processed.
    pub(super) async fn write_batches(
        &self,
        requests: Vec<WriteRequest>,
    ) -> Result<(), StoreError> {
        let mut requests = requests.into_iter().peekable();
        while requests.peek().is_some() {
            let group: Vec<WriteRequest> = requests.by_ref().take(WRITE_BATCH).collect();
            until_processed(Backoff::DEFAULT, group, |group| async move {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, group)
                    .send()
                    .await
                    .map_err(unavailable)?;
                let left = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.table))
                    .unwrap_or_default();
                Ok((Vec::<()>::new(), left))
            })
            .await?;
        }
        Ok(())
    }
}

/// A name for the chunks of one write, unique to it: two writes of the same
/// version never share chunks, so the loser can delete its own.
fn new_chunk_set(version: Version) -> String {
    format!("v{}-{}", version.get(), unique_id())
}
