//! The DynamoDB cache table: one head item per cache key holding the metadata and
//! a small payload inline, immutable chunk items for larger payloads, and small
//! lease items that collapse bursts of refresh requests (`lease.rs`).
//! `docs/data-model.md` describes the items and why a reader never mixes versions.

mod batch;
mod item;
mod lease;
mod table;

use std::{
    collections::HashMap,
    hash::{BuildHasher, Hasher},
    sync::atomic::{AtomicU64, Ordering},
};

use async_trait::async_trait;
use aws_sdk_dynamodb::{
    Client,
    operation::put_item::PutItemError,
    types::{
        AttributeValue, DeleteRequest, KeysAndAttributes, PutRequest, ReturnValue,
        ReturnValuesOnConditionCheckFailure, WriteRequest,
    },
};
use futures::{StreamExt, TryStreamExt};

pub use table::{INDEX_BY_DATA_TYPE, TableError, create_table, wait_until_active};

use self::{
    batch::{Backoff, until_processed},
    item::{
        CHUNK_BYTES, HeadPayload, Item, ItemError, MAX_INLINE_BYTES, StoredHead, StoredPayload,
        attr, n, s,
    },
};
use crate::{
    domain::{
        CacheEntry, CacheKey, DataType, ETag, EntryMeta, EntryState, Extension, RefreshAttempt,
        Timestamp, TtlPolicy, Version,
        payload::{self, Encoding},
    },
    ports::{CacheStore, ExtendOutcome, MetaPage, PutOutcome, StoreError},
};

/// Reads of a head whose chunks a newer write removed meanwhile, before a get
/// gives up.
const READ_ATTEMPTS: usize = 5;
/// Extensions that lose a race with a write of the same body, before giving up
/// and asking for a put.
const EXTEND_ATTEMPTS: usize = 5;
/// BatchWriteItem takes at most 25 requests.
const WRITE_BATCH: usize = 25;
/// BatchGetItem answers at most 16 MB: this many chunks always fit.
const GET_BATCH: usize = 40;

/// Chunk ttl updates of one extension in flight at once.
const CONCURRENT_UPDATES: usize = 16;

/// A `CacheStore` and `RefreshLeases` on a DynamoDB table created by
/// [`create_table`].
#[derive(Debug, Clone)]
pub struct DynamoDbStore {
    client: Client,
    table: String,
}

impl DynamoDbStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    async fn get_head(&self, key: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(attr::CACHE_KEY, s(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out.item)
    }

    /// The payload in the chunks of `set`, or `None` if one of them is gone.
    async fn read_chunks(
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
            let requests = group
                .iter()
                .map(|k| HashMap::from([(attr::CACHE_KEY.to_owned(), s(k))]))
                .collect();
            let items = until_processed(Backoff::DEFAULT, requests, |keys| async move {
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .consistent_read(true)
                    .build()
                    .map_err(unavailable)?;
                let mut out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(unavailable)?;
                let items = out
                    .responses
                    .as_mut()
                    .and_then(|r| r.remove(&self.table))
                    .unwrap_or_default();
                let left = out
                    .unprocessed_keys
                    .as_mut()
                    .and_then(|u| u.remove(&self.table))
                    .map(|k| k.keys)
                    .unwrap_or_default();
                Ok((items, left))
            })
            .await?;
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

    async fn write_batches(&self, requests: Vec<WriteRequest>) -> Result<(), StoreError> {
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

    /// Deletes chunk items; a failure only leaves them to expire by TTL.
    async fn delete_chunks(&self, keys: Vec<String>) {
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

    /// Writes the chunks of `payload` under a new chunk set, returning the set
    /// and the keys written.
    async fn write_chunks(
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

    async fn extend_chunk(&self, key: &str, ttl: Timestamp) -> Result<(), StoreError> {
        let updated = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(attr::CACHE_KEY, s(key))
            .update_expression("SET #ttl = :ttl")
            .condition_expression("attribute_exists(#key) AND #ttl < :ttl")
            .expression_attribute_names("#key", attr::CACHE_KEY)
            .expression_attribute_names("#ttl", attr::TTL)
            .expression_attribute_values(":ttl", n(ttl.unix_secs()))
            .send()
            .await;
        match updated {
            Ok(_) => Ok(()),
            // Gone, or already kept longer.
            Err(e) if is_condition_failure(&e) => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// Raises the `ttl` of the chunks a head points to, never lowering it.
    /// Chunks that are gone are skipped: the head write that follows notices.
    async fn extend_chunks(&self, keys: &[String], ttl: Timestamp) -> Result<(), StoreError> {
        let updates: Vec<_> = keys.iter().map(|key| self.extend_chunk(key, ttl)).collect();
        futures::stream::iter(updates)
            .buffer_unordered(CONCURRENT_UPDATES)
            .try_collect::<()>()
            .await
    }
}

#[async_trait]
impl CacheStore for DynamoDbStore {
    #[tracing::instrument(skip_all, fields(cache_key = %key))]
    async fn get(&self, key: &CacheKey) -> Result<Option<CacheEntry>, StoreError> {
        let raw_key = key.to_string();
        for _ in 0..READ_ATTEMPTS {
            let Some(head) = self.get_head(&raw_key).await? else {
                return Ok(None);
            };
            let head = StoredHead::try_from(head).map_err(|e| corrupt(raw_key.clone(), e))?;
            if head.meta.key != *key {
                return Err(corrupt(raw_key, ItemError("cacheKey differs".into())));
            }
            let encoded = match head.payload {
                StoredPayload::Inline(bytes) => bytes,
                StoredPayload::Chunked { set, count } => {
                    match self.read_chunks(&raw_key, &set, count).await? {
                        Some(bytes) => bytes,
                        None => {
                            // A newer write replaced the head and removed these
                            // chunks after the head was read: read the new head.
                            tracing::debug!(chunk_set = %set, "chunks replaced while reading");
                            continue;
                        }
                    }
                }
            };
            let body = payload::decode(head.encoding, &encoded)
                .map_err(|e| corrupt(raw_key.clone(), ItemError(format!("payload: {e}"))))?;
            if ETag::of(&body) != head.meta.etag {
                return Err(corrupt(
                    raw_key,
                    ItemError("payload does not match its etag".into()),
                ));
            }
            return Ok(Some(CacheEntry {
                meta: head.meta,
                body,
            }));
        }
        Err(corrupt(
            raw_key,
            ItemError(format!(
                "chunks missing in {READ_ATTEMPTS} consecutive reads of the head"
            )),
        ))
    }

    #[tracing::instrument(skip_all, fields(cache_key = %entry.meta.key))]
    async fn put(&self, entry: &CacheEntry) -> Result<PutOutcome, StoreError> {
        let encoded = payload::encode(&entry.body);
        let (chunk_set, written_chunks) = if encoded.bytes.len() > MAX_INLINE_BYTES {
            let (set, keys) = self.write_chunks(&entry.meta, &encoded.bytes).await?;
            (Some(set), keys)
        } else {
            (None, Vec::new())
        };
        let head_payload = match &chunk_set {
            Some(set) => HeadPayload::Chunked {
                set,
                count: written_chunks.len(),
            },
            None => HeadPayload::Inline(&encoded.bytes),
        };
        let head = item::head_item(&entry.meta, encoded.encoding, &head_payload);
        let written = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(head))
            .condition_expression("attribute_not_exists(#key) OR #version < :version")
            .expression_attribute_names("#key", attr::CACHE_KEY)
            .expression_attribute_names("#version", attr::VERSION)
            .expression_attribute_values(":version", n(entry.meta.version.get()))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match written {
            Ok(out) => {
                if let Some(old_chunks) = out.attributes.as_ref().and_then(item::chunk_keys_of) {
                    self.delete_chunks(old_chunks).await;
                }
                Ok(PutOutcome::Written)
            }
            Err(e) if is_condition_failure(&e) => {
                // The head was not written: the chunks of this write are unused.
                self.delete_chunks(written_chunks).await;
                let stored = match e.into_service_error() {
                    PutItemError::ConditionalCheckFailedException(c) => c.item,
                    _ => None,
                };
                let stored = match stored {
                    Some(item) => item,
                    None => self
                        .get_head(&entry.meta.key.to_string())
                        .await?
                        .ok_or_else(|| {
                            StoreError::Unavailable(
                                "the write was refused but no entry is stored".into(),
                            )
                        })?,
                };
                let version = item::stored_version(&stored)
                    .map_err(|e| corrupt(entry.meta.key.to_string(), e))?;
                Ok(PutOutcome::Superseded { stored: version })
            }
            // The head may have been written even though the call failed, so the
            // chunks stay; if unused, they expire by TTL.
            Err(e) => Err(unavailable(e)),
        }
    }

    #[tracing::instrument(skip_all, fields(cache_key = %key))]
    async fn extend(&self, key: &CacheKey, ext: &Extension) -> Result<ExtendOutcome, StoreError> {
        let raw_key = key.to_string();
        for _ in 0..EXTEND_ATTEMPTS {
            let Some(head) = self.get_head(&raw_key).await? else {
                return Ok(ExtendOutcome::Changed);
            };
            let chunks = item::chunk_keys_of(&head);
            let chunk_set = head.get(attr::CHUNK_SET).cloned();
            let meta = item::entry_meta(&head).map_err(|e| corrupt(raw_key.clone(), e))?;
            // The version first: a newer entry wins whatever its body.
            if meta.version >= ext.version {
                return Ok(ExtendOutcome::Superseded {
                    stored: meta.version,
                });
            }
            if meta.state == EntryState::NoData || meta.etag != ext.etag {
                return Ok(ExtendOutcome::Changed);
            }
            // Chunks outlive their head: raise theirs before the head's.
            if let Some(chunks) = &chunks {
                self.extend_chunks(chunks, item::chunk_ttl(ext.stale_until))
                    .await?;
            }
            let update = self
                .client
                .update_item()
                .table_name(&self.table)
                .key(attr::CACHE_KEY, s(&raw_key))
                .update_expression(
                    "SET #version = :version, #fetched = :fetched, #expires = :expires, \
                     #ttl = :ttl, #attempt = :fetched REMOVE #errorKind, #errorMessage",
                )
                .expression_attribute_names("#key", attr::CACHE_KEY)
                .expression_attribute_names("#version", attr::VERSION)
                .expression_attribute_names("#etag", attr::ETAG)
                .expression_attribute_names("#state", attr::STATE)
                .expression_attribute_names("#chunkSet", attr::CHUNK_SET)
                .expression_attribute_names("#fetched", attr::FETCHED_AT)
                .expression_attribute_names("#expires", attr::EXPIRES_AT)
                .expression_attribute_names("#ttl", attr::TTL)
                .expression_attribute_names("#attempt", attr::LAST_ATTEMPT_AT)
                .expression_attribute_names("#errorKind", attr::LAST_ERROR_KIND)
                .expression_attribute_names("#errorMessage", attr::LAST_ERROR_MESSAGE)
                .expression_attribute_values(":version", n(ext.version.get()))
                .expression_attribute_values(":etag", s(ext.etag.as_str()))
                .expression_attribute_values(":noData", s(EntryState::NoData.as_str()))
                .expression_attribute_values(":fetched", n(ext.fetched_at.unix_secs()))
                .expression_attribute_values(":expires", n(ext.expires_at.unix_secs()))
                .expression_attribute_values(":ttl", n(ext.stale_until.unix_secs()));
            // Only the head whose chunks were just extended may be extended.
            let update = match chunk_set {
                Some(set) => update
                    .condition_expression(
                        "attribute_exists(#key) AND #etag = :etag AND #version < :version \
                         AND #state <> :noData AND #chunkSet = :chunkSet",
                    )
                    .expression_attribute_values(":chunkSet", set),
                None => update.condition_expression(
                    "attribute_exists(#key) AND #etag = :etag AND #version < :version \
                     AND #state <> :noData AND attribute_not_exists(#chunkSet)",
                ),
            };
            match update.send().await {
                Ok(_) => return Ok(ExtendOutcome::Extended),
                // The head changed since it was read: decide again on the new one.
                Err(e) if is_condition_failure(&e) => continue,
                Err(e) => return Err(unavailable(e)),
            }
        }
        // Writes keep racing this extension: a put of the body is always safe.
        Ok(ExtendOutcome::Changed)
    }

    #[tracing::instrument(skip_all, fields(cache_key = %key))]
    async fn record_attempt(
        &self,
        key: &CacheKey,
        attempt: &RefreshAttempt,
    ) -> Result<(), StoreError> {
        let at = attempt.at;
        // The attributes of a NoData head, set only where the item is new.
        let no_data_until = at.plus(TtlPolicy::DEFAULT_STALE_WINDOW);
        let mut set = vec!["#attempt = :at".to_owned()];
        let mut remove = Vec::new();
        let mut values: HashMap<String, AttributeValue> = HashMap::from([
            (":at".to_owned(), n(at.unix_secs())),
            (":dataType".to_owned(), s(key.data_type().as_str())),
            (":region".to_owned(), s(key.region().as_str())),
            (":account".to_owned(), s(key.scope().as_str())),
            (":noData".to_owned(), s(EntryState::NoData.as_str())),
            (":zero".to_owned(), n(0)),
            (":etag".to_owned(), s(ETag::of(b"").as_str())),
            (":ttl".to_owned(), n(no_data_until.unix_secs())),
            (":encoding".to_owned(), s(Encoding::Json.as_str())),
        ]);
        for (name, value) in [
            ("#dataType", ":dataType"),
            ("#region", ":region"),
            ("#account", ":account"),
            ("#state", ":noData"),
            ("#version", ":zero"),
            ("#etag", ":etag"),
            ("#created", ":at"),
            ("#fetched", ":at"),
            ("#expires", ":at"),
            ("#ttl", ":ttl"),
            ("#itemCount", ":zero"),
            ("#encoding", ":encoding"),
        ] {
            set.push(format!("{name} = if_not_exists({name}, {value})"));
        }
        match &attempt.failure {
            Some(failure) => {
                set.push("#errorKind = :errorKind".to_owned());
                set.push("#errorMessage = :errorMessage".to_owned());
                values.insert(":errorKind".to_owned(), s(failure.kind.as_str()));
                values.insert(
                    ":errorMessage".to_owned(),
                    s(item::truncate_message(&failure.message)),
                );
            }
            None => remove.extend(["#errorKind", "#errorMessage"]),
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        let names = HashMap::from(
            [
                ("#attempt", attr::LAST_ATTEMPT_AT),
                ("#dataType", attr::DATA_TYPE),
                ("#region", attr::REGION),
                ("#account", attr::ACCOUNT_ID),
                ("#state", attr::STATE),
                ("#version", attr::VERSION),
                ("#etag", attr::ETAG),
                ("#created", attr::CREATED_AT),
                ("#fetched", attr::FETCHED_AT),
                ("#expires", attr::EXPIRES_AT),
                ("#ttl", attr::TTL),
                ("#itemCount", attr::ITEM_COUNT),
                ("#encoding", attr::ENCODING),
                ("#errorKind", attr::LAST_ERROR_KIND),
                ("#errorMessage", attr::LAST_ERROR_MESSAGE),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        let updated = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(attr::CACHE_KEY, s(key.to_string()))
            .update_expression(expression)
            .condition_expression("attribute_not_exists(#attempt) OR #attempt <= :at")
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        match updated {
            Ok(_) => Ok(()),
            // A later attempt is already recorded.
            Err(e) if is_condition_failure(&e) => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }

    #[tracing::instrument(skip_all, fields(data_type = %data_type))]
    async fn list(
        &self,
        data_type: DataType,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<MetaPage, StoreError> {
        let start = cursor
            .map(|c| item::decode_cursor(c, data_type))
            .transpose()
            .map_err(|_| StoreError::InvalidCursor)?;
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(INDEX_BY_DATA_TYPE)
            .key_condition_expression("#dataType = :dataType")
            .expression_attribute_names("#dataType", attr::DATA_TYPE)
            .expression_attribute_values(":dataType", s(data_type.as_str()))
            .scan_index_forward(true)
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(unavailable)?;
        let entries = out
            .items()
            .iter()
            .map(|item| {
                item::entry_meta(item).map_err(|e| {
                    let key = match item.get(attr::CACHE_KEY) {
                        Some(AttributeValue::S(k)) => k.clone(),
                        _ => String::new(),
                    };
                    corrupt(key, e)
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let next = out
            .last_evaluated_key()
            .map(item::encode_cursor)
            .transpose()
            .map_err(|e| corrupt(String::new(), e))?;
        Ok(MetaPage { entries, next })
    }
}

/// A name for the chunks of one write, unique to it: two writes of the same
/// version never share chunks, so the loser can delete its own.
fn new_chunk_set(version: Version) -> String {
    format!("v{}-{}", version.get(), unique_id())
}

/// 16 hex digits that no other call of this or another process draws.
fn unique_id() -> String {
    static WRITES: AtomicU64 = AtomicU64::new(0);
    // Seeded randomly per process by the standard library.
    let mut random = std::collections::hash_map::RandomState::new().build_hasher();
    random.write_u64(WRITES.fetch_add(1, Ordering::Relaxed));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut id = blake3::Hasher::new();
    id.update(&random.finish().to_le_bytes());
    id.update(&nanos.to_le_bytes());
    id.update(&std::process::id().to_le_bytes());
    id.finalize().to_hex()[..16].to_owned()
}

fn unavailable(e: impl Into<crate::ports::BoxError>) -> StoreError {
    StoreError::Unavailable(e.into())
}

fn corrupt(key: String, e: ItemError) -> StoreError {
    StoreError::Corrupt { key, reason: e.0 }
}

fn is_condition_failure<E, R>(e: &aws_sdk_dynamodb::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    e.as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "ConditionalCheckFailedException")
}
