//! The per-container memory tier: snapshots as read from the store, and the
//! filtered bodies derived from them, bounded by bytes.

use std::{future::Future, sync::Arc, time::Duration};

use moka::{
    future::Cache,
    ops::compute::{CompResult, Op},
};

use crate::domain::{CacheEntry, CacheKey, ETag, EntryMeta, Timestamp};

use super::{Filter, encoding::Variants};

/// One entry as held in memory: ready to send, in every coding.
#[derive(Debug)]
pub struct Snapshot {
    pub meta: EntryMeta,
    pub body: Arc<Variants>,
    /// After this the store is consulted again before the copy is served.
    revalidate_at: Timestamp,
}

impl Snapshot {
    /// A copy loaded at `now`. A fresh copy is served from memory for at most
    /// `memory_ttl` and never past its freshness; a stale one for `stale_recheck`.
    pub fn loaded(
        entry: CacheEntry,
        now: Timestamp,
        memory_ttl: Duration,
        stale_recheck: Duration,
    ) -> Self {
        let revalidate_at = if entry.meta.freshness(now).is_fresh() {
            now.plus(memory_ttl).min(entry.meta.expires_at)
        } else {
            now.plus(stale_recheck)
        };
        Self {
            meta: entry.meta,
            body: Arc::new(Variants::new(entry.body)),
            revalidate_at,
        }
    }

    pub fn needs_revalidation(&self, now: Timestamp) -> bool {
        now >= self.revalidate_at
    }
}

/// A filtered body derived from one version of a snapshot, in every coding.
#[derive(Debug)]
pub struct Filtered {
    pub source: ETag,
    pub body: Arc<Variants>,
    pub etag: ETag,
}

/// What a load found.
pub enum Loaded {
    /// A snapshot, and whether it was read from the store just now.
    Found(Arc<Snapshot>, bool),
    /// The store holds nothing under the key.
    Absent,
}

/// Bounded by the bytes of the bodies it holds; concurrent loads of one key are
/// serialized so that only the first reaches the store.
#[derive(Clone)]
pub struct MemoryTier {
    snapshots: Cache<CacheKey, Arc<Snapshot>>,
    views: Cache<(CacheKey, Filter), Arc<Filtered>>,
    memory_ttl: Duration,
    stale_recheck: Duration,
}

/// Bookkeeping bytes counted per entry on top of its body.
const ENTRY_OVERHEAD: usize = 512;

/// The bytes an entry is counted for: its body, half as much again for the
/// compressed variants it may come to hold (JSON compresses to well under a
/// sixth in each of the three codings), and the bookkeeping.
fn weight(body: &Variants) -> u32 {
    let identity = body.identity().len();
    u32::try_from(identity + identity / 2 + ENTRY_OVERHEAD).unwrap_or(u32::MAX)
}

impl MemoryTier {
    /// A tier holding at most about `max_bytes` of bodies: three quarters for
    /// snapshots, one quarter for filtered views. A fresh copy is served for at
    /// most `memory_ttl`, a stale one for `stale_recheck`, before the store is
    /// asked again.
    pub fn new(max_bytes: u64, memory_ttl: Duration, stale_recheck: Duration) -> Self {
        Self {
            memory_ttl,
            stale_recheck,
            snapshots: Cache::builder()
                .name("snapshots")
                .max_capacity(max_bytes / 4 * 3)
                .weigher(|_, v: &Arc<Snapshot>| weight(&v.body))
                .build(),
            views: Cache::builder()
                .name("views")
                .max_capacity(max_bytes / 4)
                .weigher(|_, v: &Arc<Filtered>| weight(&v.body))
                .build(),
        }
    }

    pub async fn snapshot(&self, key: &CacheKey) -> Option<Arc<Snapshot>> {
        self.snapshots.get(key).await
    }

    /// The copy of `key` after reading it with `fetch` unless the copy held
    /// satisfies `keep` (one that needs no revalidation, for a read).
    /// Concurrent loads of one key run one after another, so a load that finds
    /// a copy another load just made uses it instead of reading the store
    /// again.
    pub async fn load_unless<E, F>(
        &self,
        key: &CacheKey,
        now: Timestamp,
        keep: impl FnOnce(&Snapshot) -> bool,
        fetch: impl FnOnce() -> F,
    ) -> Result<Loaded, E>
    where
        F: Future<Output = Result<Option<CacheEntry>, E>>,
        E: Send + Sync + 'static,
    {
        let (memory_ttl, stale_recheck) = (self.memory_ttl, self.stale_recheck);
        let result = self
            .snapshots
            .entry_by_ref(key)
            .and_try_compute_with(|current| async move {
                if current.is_some_and(|c| keep(c.value())) {
                    return Ok(Op::Nop);
                }
                Ok(match fetch().await? {
                    None => Op::Remove,
                    Some(entry) => Op::Put(Arc::new(Snapshot::loaded(
                        entry,
                        now,
                        memory_ttl,
                        stale_recheck,
                    ))),
                })
            })
            .await?;
        Ok(match result {
            CompResult::Inserted(e) | CompResult::ReplacedWith(e) => {
                Loaded::Found(e.into_value(), true)
            }
            CompResult::Unchanged(e) => Loaded::Found(e.into_value(), false),
            CompResult::Removed(_) | CompResult::StillNone(_) => Loaded::Absent,
        })
    }

    /// The view of `snapshot` through `filter`, derived once per snapshot version.
    pub async fn view(
        &self,
        snapshot: &Snapshot,
        filter: &Filter,
    ) -> Result<Arc<Filtered>, serde_json::Error> {
        let id = (snapshot.meta.key.clone(), filter.clone());
        if let Some(view) = self.views.get(&id).await
            && view.source == snapshot.meta.etag
        {
            return Ok(view);
        }
        let meta = &snapshot.meta;
        let body = filter.apply(meta.key.data_type(), snapshot.body.identity(), &meta.etag)?;
        let view = Arc::new(Filtered {
            source: snapshot.meta.etag.clone(),
            etag: ETag::of(&body),
            body: Arc::new(Variants::new(body)),
        });
        self.views.insert(id, view.clone()).await;
        Ok(view)
    }
}
