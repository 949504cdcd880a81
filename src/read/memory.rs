//! The per-container memory tier: snapshots as read from the store, and the
//! filtered bodies derived from them, bounded by bytes.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use moka::future::Cache;

use crate::domain::{CacheEntry, CacheKey, ETag, EntryMeta, Timestamp};

use super::Filter;

/// One entry as held in memory: ready to send.
#[derive(Debug)]
pub struct Snapshot {
    pub meta: EntryMeta,
    pub body: Bytes,
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
            body: entry.body,
            revalidate_at,
        }
    }

    pub fn needs_revalidation(&self, now: Timestamp) -> bool {
        now >= self.revalidate_at
    }
}

/// A filtered body derived from one version of a snapshot.
#[derive(Debug)]
pub struct View {
    pub source: ETag,
    pub body: Bytes,
    pub etag: ETag,
}

/// Bounded by the bytes of the bodies it holds; concurrent loads of one key are
/// serialized so that only the first reaches the store.
#[derive(Clone)]
pub struct MemoryTier {
    pub(super) snapshots: Cache<CacheKey, Arc<Snapshot>>,
    views: Cache<(CacheKey, Filter), Arc<View>>,
}

/// Bookkeeping bytes counted per entry on top of its body.
const ENTRY_OVERHEAD: usize = 512;

fn weight(body: &Bytes) -> u32 {
    u32::try_from(body.len() + ENTRY_OVERHEAD).unwrap_or(u32::MAX)
}

impl MemoryTier {
    /// A tier holding at most about `max_bytes` of bodies: three quarters for
    /// snapshots, one quarter for filtered views.
    pub fn new(max_bytes: u64) -> Self {
        Self {
            snapshots: Cache::builder()
                .name("snapshots")
                .max_capacity(max_bytes / 4 * 3)
                .weigher(|_, v: &Arc<Snapshot>| weight(&v.body))
                .build(),
            views: Cache::builder()
                .name("views")
                .max_capacity(max_bytes / 4)
                .weigher(|_, v: &Arc<View>| weight(&v.body))
                .build(),
        }
    }

    pub async fn snapshot(&self, key: &CacheKey) -> Option<Arc<Snapshot>> {
        self.snapshots.get(key).await
    }

    /// The view of `snapshot` through `filter`, derived once per snapshot version.
    pub async fn view(
        &self,
        snapshot: &Snapshot,
        filter: &Filter,
    ) -> Result<Arc<View>, serde_json::Error> {
        let id = (snapshot.meta.key.clone(), filter.clone());
        if let Some(view) = self.views.get(&id).await
            && view.source == snapshot.meta.etag
        {
            return Ok(view);
        }
        let body = filter.apply(snapshot.meta.key.data_type(), &snapshot.body)?;
        let view = Arc::new(View {
            source: snapshot.meta.etag.clone(),
            etag: ETag::of(&body),
            body,
        });
        self.views.insert(id, view.clone()).await;
        Ok(view)
    }
}
