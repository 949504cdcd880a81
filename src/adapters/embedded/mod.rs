//! The embedded, file-backed cache store for running on one machine: a
//! [`CacheStore`] on a single [redb](https://docs.rs/redb) file.
//!
//! Six tables, all written in one redb write transaction per operation, so a
//! reader sees every change of an operation or none of it and never a body of
//! one version under the metadata of another; no chunking is needed.
//!
//! - `heads`: cache key → the entry's metadata as JSON, with the attribute names
//!   of the DynamoDB item (`record.rs`).
//! - `bodies`: cache key → the body encoded by [`payload::encode`]; kept apart
//!   so that `extend`, `record_attempt` and `list` never read or rewrite it.
//! - `by_created`: (dataType, createdAt, cacheKey) → (): an index that `list`
//!   walks in order, so a page costs its own size instead of a scan of every
//!   entry. Writes that change `createdAt` move the entry's index row.
//! - `demand_reads` and `warm_accounts`: each key's latest recorded read and
//!   each warm account's end ([`DemandLog`](crate::ports::DemandLog),
//!   `demand.rs`).
//! - `leases`: cache key → the end of its refresh lease in epoch seconds
//!   ([`RefreshLeases`](crate::ports::RefreshLeases), `lease.rs`). Apart from
//!   the entries, so a lease never shows in or changes one. A claim of many keys
//!   is one transaction: concurrent claims run one after the other.
//!
//! The tables and the writes that keep them consistent are in `tables.rs`; the
//! list cursor is in `cursor.rs`. redb is synchronous: every transaction runs on
//! tokio's blocking pool.

mod cursor;
mod demand;
mod lease;
mod record;
mod tables;

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use async_trait::async_trait;
use bytes::Bytes;
use redb::{Database, ReadableDatabase};
use tracing::Span;

use self::{
    cursor::Position,
    record::RecordError,
    tables::{
        BODIES, BY_CREATED, Failure, HEADS, corrupt, create_tables, read_head, write_entry,
        write_head,
    },
};
use crate::{
    domain::{
        CacheEntry, CacheKey, DataType, ETag, EntryMeta, EntryState, Extension, Figures,
        RefreshAttempt, TtlPolicy, Version, payload,
    },
    ports::{
        CacheListing, CacheReads, CacheWrites, ExtendOutcome, MetaPage, PutOutcome, StoreError,
    },
};

/// A [`CacheStore`] and [`RefreshLeases`](crate::ports::RefreshLeases) in one
/// local file. One process at a time may open a file.
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
}

/// Whether `error`, from [`EmbeddedStore::open`], says another process (or
/// this one) holds the file.
pub fn is_held(error: &StoreError) -> bool {
    matches!(error, StoreError::Unavailable(source)
        if matches!(source.downcast_ref::<OpenError>(), Some(OpenError::AlreadyOpen { .. })))
}

/// Why a store file could not be opened: the source of the `StoreError` that
/// [`EmbeddedStore::open`] returns.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("the cache file {} is already open in this or another process", path.display())]
    AlreadyOpen {
        path: PathBuf,
        #[source]
        source: redb::DatabaseError,
    },
    #[error("cannot open the cache file {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: redb::DatabaseError,
    },
    #[error("cannot create the tables in the cache file {}", path.display())]
    Tables {
        path: PathBuf,
        #[source]
        source: redb::Error,
    },
}

impl EmbeddedStore {
    /// Opens the store in `path`, creating the file if it is missing. The file is
    /// checked on open, so a damaged file is an error rather than a panic later.
    ///
    /// Fails with `StoreError::Unavailable` whose source is an [`OpenError`]
    /// naming the file, [`OpenError::AlreadyOpen`] when another store has it.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::try_open(path.as_ref()).map_err(|e| StoreError::Unavailable(Box::new(e)))
    }

    fn try_open(path: &Path) -> Result<Self, OpenError> {
        let db = Database::builder()
            .set_check_integrity_on_open(true)
            .create(path)
            .map_err(|source| match source {
                redb::DatabaseError::DatabaseAlreadyOpen => OpenError::AlreadyOpen {
                    path: path.to_owned(),
                    source,
                },
                source => OpenError::Open {
                    path: path.to_owned(),
                    source,
                },
            })?;
        create_tables(&db).map_err(|source| OpenError::Tables {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self { db: Arc::new(db) })
    }

    /// Runs `work` on the blocking pool, inside the caller's span.
    async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, Failure> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        let span = Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(|| work(&db)))
            .await
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?
            .map_err(StoreError::from)
    }
}

#[async_trait]
impl CacheReads for EmbeddedStore {
    #[tracing::instrument(skip_all, fields(cache_key = %key))]
    async fn get(&self, key: &CacheKey) -> Result<Option<CacheEntry>, StoreError> {
        let key = key.to_string();
        self.run(move |db| {
            let txn = db.begin_read()?;
            let Some(head) = read_head(&txn.open_table(HEADS)?, &key)? else {
                return Ok(None);
            };
            let bodies = txn.open_table(BODIES)?;
            let stored = bodies.get(key.as_str())?;
            let stored = stored.ok_or_else(|| corrupt(&key, &RecordError::MissingBody))?;
            let body = payload::decode(head.encoding, stored.value())
                .map_err(|e| corrupt(&key, &RecordError::Payload(e)))?;
            Ok(Some(CacheEntry {
                meta: head.meta,
                body,
            }))
        })
        .await
    }
}

#[async_trait]
impl CacheWrites for EmbeddedStore {
    #[tracing::instrument(skip_all, fields(cache_key = %entry.meta.key))]
    async fn put(&self, entry: &CacheEntry) -> Result<PutOutcome, StoreError> {
        let entry = entry.clone();
        self.run(move |db| {
            let key = entry.meta.key.to_string();
            let txn = db.begin_write()?;
            let old = read_head(&txn.open_table(HEADS)?, &key)?;
            if let Some(old) = &old
                && old.meta.version >= entry.meta.version
            {
                return Ok(PutOutcome::Superseded {
                    stored: old.meta.version,
                });
            }
            write_entry(&txn, &key, old.as_ref(), &entry.meta, &entry.body)?;
            txn.commit()?;
            Ok(PutOutcome::Written)
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(cache_key = %key))]
    async fn extend(&self, key: &CacheKey, ext: &Extension) -> Result<ExtendOutcome, StoreError> {
        let key = key.to_string();
        let ext = ext.clone();
        self.run(move |db| {
            let txn = db.begin_write()?;
            let Some(head) = read_head(&txn.open_table(HEADS)?, &key)? else {
                return Ok(ExtendOutcome::Changed);
            };
            // The version first: a newer entry wins whatever its body.
            if head.meta.version >= ext.version {
                return Ok(ExtendOutcome::Superseded {
                    stored: head.meta.version,
                });
            }
            if head.meta.state == EntryState::NoData || head.meta.etag != ext.etag {
                return Ok(ExtendOutcome::Changed);
            }
            let meta = EntryMeta {
                version: ext.version,
                fetched_at: ext.fetched_at,
                expires_at: ext.expires_at,
                stale_until: ext.stale_until,
                figures: ext.figures,
                // A successful refresh: any recorded failure is cleared.
                last_attempt: Some(RefreshAttempt {
                    at: ext.fetched_at,
                    failure: None,
                }),
                ..head.meta
            };
            write_head(&txn, &key, &meta, head.encoding)?;
            txn.commit()?;
            Ok(ExtendOutcome::Extended)
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(cache_key = %key))]
    async fn record_attempt(
        &self,
        key: &CacheKey,
        attempt: &RefreshAttempt,
    ) -> Result<(), StoreError> {
        let cache_key = key.clone();
        let key = key.to_string();
        let attempt = attempt.clone();
        self.run(move |db| {
            let txn = db.begin_write()?;
            // Bound first: a temporary in the match would keep `heads` open.
            let head = read_head(&txn.open_table(HEADS)?, &key)?;
            match head {
                Some(head) => {
                    let later_stored = head.meta.last_attempt.as_ref().map(|a| a.at);
                    if later_stored.is_some_and(|stored| stored > attempt.at) {
                        return Ok(());
                    }
                    let meta = EntryMeta {
                        last_attempt: Some(attempt),
                        ..head.meta
                    };
                    write_head(&txn, &key, &meta, head.encoding)?;
                }
                None => {
                    let meta = no_data(cache_key, attempt);
                    write_entry(&txn, &key, None, &meta, &Bytes::new())?;
                }
            }
            txn.commit()?;
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl CacheListing for EmbeddedStore {
    #[tracing::instrument(skip_all, fields(data_type = %data_type))]
    async fn list(
        &self,
        data_type: DataType,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<MetaPage, StoreError> {
        let after = match cursor {
            Some(c) => Some(Position::decode(c, data_type).ok_or(StoreError::InvalidCursor)?),
            None => None,
        };
        let limit = usize::try_from(limit.max(1)).unwrap_or(usize::MAX);
        self.run(move |db| {
            let txn = db.begin_read()?;
            let index = txn.open_table(BY_CREATED)?;
            let heads = txn.open_table(HEADS)?;
            let dt = data_type.as_str();
            let rows = match &after {
                Some(p) => index.range::<(&str, i64, &str)>((
                    std::ops::Bound::Excluded((dt, p.created_at, p.key.as_str())),
                    std::ops::Bound::Unbounded,
                ))?,
                None => index.range::<(&str, i64, &str)>((dt, i64::MIN, "")..)?,
            };
            let mut entries = Vec::new();
            let mut next = None;
            for row in rows {
                let (row, _) = row?;
                let (row_type, created_at, key) = row.value();
                if row_type != dt {
                    break;
                }
                if entries.len() == limit {
                    next = entries.last().map(|m: &EntryMeta| {
                        Position {
                            created_at: m.created_at.unix_secs(),
                            key: m.key.to_string(),
                        }
                        .encode()
                    });
                    break;
                }
                let head = read_head(&heads, key)?
                    .ok_or_else(|| corrupt(key, &RecordError::MissingHead))?;
                if head.meta.created_at.unix_secs() != created_at {
                    return Err(corrupt(
                        key,
                        &RecordError::Mismatch {
                            field: "createdAt",
                            found: head.meta.created_at.unix_secs().to_string(),
                        },
                    ));
                }
                entries.push(head.meta);
            }
            Ok(MetaPage { entries, next })
        })
        .await
    }
}

/// The entry `record_attempt` creates for a key that has none.
fn no_data(key: CacheKey, attempt: RefreshAttempt) -> EntryMeta {
    let at = attempt.at;
    EntryMeta {
        key,
        version: Version::from_raw(0),
        etag: ETag::of(b""),
        state: EntryState::NoData,
        created_at: at,
        fetched_at: at,
        expires_at: at,
        stale_until: at.plus(TtlPolicy::DEFAULT_STALE_WINDOW),
        item_count: 0,
        figures: Figures::default(),
        last_attempt: Some(attempt),
    }
}

#[cfg(test)]
mod tests;
