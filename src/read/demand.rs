//! The reader's demand records: each container notes the keys it reads, at
//! most once per key per note interval (a quarter of the type's demand
//! window), and writes the notes in batches off the requests' path: every few
//! seconds in a server, after each invocation's answer in Lambda (an internal
//! extension, `lambda.rs`). A note costs a request one lookup in memory.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use moka::{Expiry, future::Cache};

use crate::{
    domain::{CacheKey, DemandPolicy, Timestamp},
    errors,
    ports::DemandNotes,
};

/// Notes held for the next flush at most; a read past it is not noted (the
/// store is failing or far behind, and a lost note costs only freshness
/// ahead of reads).
const MAX_PENDING: usize = 50_000;

/// How often a server writes its notes: a few seconds against windows of a
/// minute and more (the local mode's scaled windows of a few seconds flush
/// every second, `LOCAL_FLUSH_EVERY`).
pub const SERVER_FLUSH_EVERY: Duration = Duration::from_secs(5);
pub const LOCAL_FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Each noted key is forgotten after its type's note interval.
struct NoteInterval(DemandPolicy);

impl Expiry<CacheKey, ()> for NoteInterval {
    fn expire_after_create(&self, key: &CacheKey, _: &(), _: Instant) -> Option<Duration> {
        Some(self.0.note_interval(key.data_type()))
    }
}

pub struct DemandRecorder {
    log: Arc<dyn DemandNotes>,
    /// Keys noted within their note interval.
    noted: Cache<CacheKey, ()>,
    /// Notes not written yet.
    pending: Mutex<Vec<(CacheKey, Timestamp)>>,
}

impl DemandRecorder {
    pub fn new(log: Arc<dyn DemandNotes>, policy: DemandPolicy) -> Self {
        Self {
            log,
            noted: Cache::builder()
                .max_capacity(1_000_000)
                .expire_after(NoteInterval(policy))
                .build(),
            pending: Mutex::new(Vec::new()),
        }
    }

    /// Notes a read of `key` at `now`, unless it was noted within its
    /// interval.
    pub async fn note(&self, key: &CacheKey, now: Timestamp) {
        if !self.noted.entry_by_ref(key).or_insert(()).await.is_fresh() {
            return;
        }
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if pending.len() < MAX_PENDING {
            pending.push((key.clone(), now));
        }
    }

    /// Notes waiting for the next flush.
    pub fn pending(&self) -> usize {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Writes the notes taken since the last flush; answers how many were
    /// written. A failed write is logged and its keys are forgotten, so their
    /// next reads note them again.
    pub async fn flush(&self) -> usize {
        let notes =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        if notes.is_empty() {
            return 0;
        }
        match self.log.record_reads(&notes).await {
            Ok(()) => notes.len(),
            Err(e) => {
                tracing::warn!(
                    notes = notes.len(),
                    error = %errors::chain(&e),
                    "demand notes not written; their keys are noted again when next read"
                );
                for (key, _) in &notes {
                    self.noted.invalidate(key).await;
                }
                0
            }
        }
    }

    /// Flushes every `every`, forever (a server's loop, stopped with its
    /// task).
    pub async fn flush_forever(self: Arc<Self>, every: Duration) {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            self.flush().await;
        }
    }
}
