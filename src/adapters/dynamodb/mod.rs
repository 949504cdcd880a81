//! The DynamoDB cache store: `DynamoDbStore` and the flow of its `CacheStore`
//! methods. The table holds one head item per cache key with the metadata and a
//! small payload inline (`item.rs`), immutable chunk items for larger payloads
//! (`chunks.rs`), small lease items that collapse bursts of refresh requests
//! (`lease.rs`), the run ledger's batch results (`ledger.rs`), and the
//! demand readers record and warm requests leave (`demand.rs`). `docs/data-model.md` describes the items and why a reader never
//! mixes versions.

mod batch;
mod chunks;
mod cursor;
mod demand;
mod item;
mod lease;
mod ledger;
mod table;
mod update;

use async_trait::async_trait;
use aws_sdk_dynamodb::{
    Client,
    operation::put_item::PutItemError,
    types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure},
};

pub use table::{INDEX_BY_DATA_TYPE, TableError, create_table};

use super::unique_id;

use self::{
    item::{HeadPayload, Item, ItemError, MAX_INLINE_BYTES, StoredHead, StoredPayload, attr, n, s},
    update::{Check, Update},
};
use crate::{
    domain::{
        CacheEntry, CacheKey, DataType, ETag, EntryState, Extension, RefreshAttempt, Region,
        Timestamp, TtlPolicy,
        payload::{self, Encoding},
    },
    ports::{
        CacheListing, CacheReads, CacheWrites, ExtendOutcome, MetaPage, PutOutcome, StoreError,
    },
};

/// Reads of a head whose chunks a newer write removed meanwhile, before a get
/// gives up.
const READ_ATTEMPTS: usize = 5;
/// Extensions that lose a race with a write of the same body, before giving up
/// and asking for a put.
const EXTEND_ATTEMPTS: usize = 5;

/// A `CacheStore` and `RefreshLeases` on a DynamoDB table created by
/// [`create_table`].
#[derive(Debug, Clone)]
pub struct DynamoDbStore {
    client: Client,
    table: String,
    /// The deployment region whose leases (and run-ledger items) this store
    /// takes, when several deployments share the table as a global table.
    lease_scope: Option<Region>,
}

impl DynamoDbStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            lease_scope: None,
        }
    }

    /// This store, taking the leases and keeping the run ledger of the
    /// deployment in `region` (one of several over a global table; `None`:
    /// the only one).
    #[must_use]
    pub fn with_lease_scope(mut self, region: Option<Region>) -> Self {
        self.lease_scope = region;
        self
    }

    fn lease_scope(&self) -> Option<&Region> {
        self.lease_scope.as_ref()
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

    /// Applies `update` to the item `key`. `Ok(false)`: its condition failed,
    /// and nothing changed.
    async fn update(&self, key: &str, update: Update) -> Result<bool, StoreError> {
        let updated = update
            .apply(self.client.update_item())
            .table_name(&self.table)
            .key(attr::CACHE_KEY, s(key))
            .send()
            .await;
        match updated {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }
}

#[async_trait]
impl CacheReads for DynamoDbStore {
    #[tracing::instrument(skip_all, fields(cache_key = %key))]
    async fn get(&self, key: &CacheKey) -> Result<Option<CacheEntry>, StoreError> {
        let raw_key = key.to_string();
        // The chunk set found missing by the last attempt, if any.
        let mut missing: Option<String> = None;
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
                        // The same head past its stale window, read again
                        // and still without its chunks: the TTL sweep took
                        // them before it, and nothing servable is cached.
                        None if missing.as_deref() == Some(set.as_str())
                            && head.meta.stale_until <= Timestamp::now() =>
                        {
                            return Ok(None);
                        }
                        None => {
                            // A newer write replaced the head and removed these
                            // chunks after the head was read: read the new head.
                            tracing::debug!(chunk_set = %set, "chunks replaced while reading");
                            missing = Some(set);
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
}

#[async_trait]
impl CacheWrites for DynamoDbStore {
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
            // A chunked head whose chunks' ttl has passed may have lost them
            // to the TTL sweep: the body is put again, with chunks of its own.
            if chunks.is_some() && item::chunks_may_be_gone(&head, meta.stale_until, ext.fetched_at)
            {
                return Ok(ExtendOutcome::Changed);
            }
            // Chunks outlive their head: raise theirs before the head's, when
            // the head's new stale window would come within days of theirs.
            let chunk_ttl = match &chunks {
                Some(chunks) if item::chunks_expire_too_soon(&head, ext.stale_until) => {
                    let ttl = item::chunk_ttl(ext.stale_until);
                    if !self.extend_chunks(chunks, ttl).await? {
                        return Ok(ExtendOutcome::Changed);
                    }
                    Some(ttl)
                }
                _ => None,
            };
            let version = n(ext.version.get());
            let fetched = n(ext.fetched_at.unix_secs());
            // Only the head whose chunks were just extended may be extended.
            let same_chunks = match chunk_set {
                Some(set) => Check::equals(attr::CHUNK_SET, set),
                None => Check::Absent(attr::CHUNK_SET),
            };
            let update = Update::new()
                .set(attr::VERSION, version.clone())
                .set(attr::FETCHED_AT, fetched.clone())
                .set(attr::EXPIRES_AT, n(ext.expires_at.unix_secs()))
                .set(attr::TTL, n(ext.stale_until.unix_secs()))
                .set(attr::LAST_ATTEMPT_AT, fetched)
                .remove(attr::LAST_ERROR_KIND)
                .remove(attr::LAST_ERROR_MESSAGE);
            let update = match item::figures_value(&ext.figures) {
                Some(figures) => update.set(attr::FIGURES, figures),
                None => update.remove(attr::FIGURES),
            };
            let update = match chunk_ttl {
                Some(ttl) => update.set(attr::CHUNK_TTL, n(ttl.unix_secs())),
                None => update,
            };
            let update = update.condition_all([
                Check::Exists(attr::CACHE_KEY),
                Check::equals(attr::ETAG, s(ext.etag.as_str())),
                Check::below(attr::VERSION, version),
                Check::differs(attr::STATE, s(EntryState::NoData.as_str())),
                same_chunks,
            ]);
            if self.update(&raw_key, update).await? {
                return Ok(ExtendOutcome::Extended);
            }
            // The head changed since it was read: decide again on the new one.
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
        let at = n(attempt.at.unix_secs());
        let no_data_until = attempt.at.plus(TtlPolicy::DEFAULT_STALE_WINDOW);
        let update = Update::new()
            .set(attr::LAST_ATTEMPT_AT, at.clone())
            // The attributes of a NoData head, set only where the item is new.
            .set_if_absent(attr::DATA_TYPE, s(key.data_type().as_str()))
            .set_if_absent(attr::REGION, s(key.region().as_str()))
            .set_if_absent(attr::ACCOUNT_ID, s(key.scope().as_str()))
            .set_if_absent(attr::STATE, s(EntryState::NoData.as_str()))
            .set_if_absent(attr::VERSION, n(0))
            .set_if_absent(attr::ETAG, s(ETag::of(b"").as_str()))
            .set_if_absent(attr::CREATED_AT, at.clone())
            .set_if_absent(attr::FETCHED_AT, at.clone())
            .set_if_absent(attr::EXPIRES_AT, at.clone())
            .set_if_absent(attr::TTL, n(no_data_until.unix_secs()))
            .set_if_absent(attr::ITEM_COUNT, n(0))
            .set_if_absent(attr::ENCODING, s(Encoding::Json.as_str()));
        let update = match &attempt.failure {
            Some(failure) => update
                .set(attr::LAST_ERROR_KIND, s(failure.kind.as_str()))
                .set(
                    attr::LAST_ERROR_MESSAGE,
                    s(item::truncate_message(&failure.message)),
                ),
            None => update
                .remove(attr::LAST_ERROR_KIND)
                .remove(attr::LAST_ERROR_MESSAGE),
        };
        let update = update.condition_any([
            Check::Absent(attr::LAST_ATTEMPT_AT),
            Check::at_most(attr::LAST_ATTEMPT_AT, at),
        ]);
        // Not applied: a later attempt is already recorded.
        self.update(&key.to_string(), update).await.map(|_| ())
    }
}

#[async_trait]
impl CacheListing for DynamoDbStore {
    #[tracing::instrument(skip_all, fields(data_type = %data_type))]
    async fn list(
        &self,
        data_type: DataType,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<MetaPage, StoreError> {
        let start = cursor
            .map(|c| cursor::decode(c, data_type))
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
            .map(cursor::encode)
            .transpose()
            .map_err(|e| corrupt(String::new(), e))?;
        Ok(MetaPage { entries, next })
    }
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
