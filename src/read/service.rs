//! The read use case: memory tier, then store, then stale fallback.

use std::{sync::Arc, time::Duration};

use moka::{
    future::Cache,
    ops::compute::{CompResult, Op},
};
use tracing::{instrument, warn};

use crate::{
    domain::{AccountId, CacheKey, Clock, EntryState, Freshness, RefreshAttempt, Timestamp},
    errors,
    ports::{CacheStore, Invalidation, RefreshReason, RefreshTrigger, StoreError},
};

use super::memory::{MemoryTier, Snapshot};

/// How the reader behaves; every field has an env override (see `config`).
#[derive(Debug, Clone)]
pub struct ReaderSettings {
    /// `accountId` when a request names none.
    pub default_account: Option<AccountId>,
    /// Bytes of bodies the memory tier holds.
    pub memory_max_bytes: u64,
    /// How long a fresh memory copy is served before the store is asked again.
    pub memory_ttl: Duration,
    /// How long a stale memory copy is served before the store is asked again.
    pub stale_recheck: Duration,
    /// Longest wait for the store before falling back to memory.
    pub store_timeout: Duration,
    /// `Retry-After` on 503 answers.
    pub retry_after: Duration,
    /// A target is asked to be refreshed at most once per this interval from one
    /// container.
    pub refresh_request_interval: Duration,
    /// Longest wait for a refresh request to be accepted.
    pub trigger_timeout: Duration,
}

impl Default for ReaderSettings {
    fn default() -> Self {
        Self {
            default_account: None,
            memory_max_bytes: 64 * 1024 * 1024,
            memory_ttl: Duration::from_secs(30),
            stale_recheck: Duration::from_secs(5),
            store_timeout: Duration::from_millis(1_000),
            retry_after: Duration::from_secs(30),
            refresh_request_interval: Duration::from_secs(30),
            trigger_timeout: Duration::from_millis(1_000),
        }
    }
}

/// Where a served body came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Memory,
    Store,
}

impl Tier {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Store => "store",
        }
    }
}

/// A snapshot that may be served.
#[derive(Debug, Clone)]
pub struct Served {
    pub snapshot: Arc<Snapshot>,
    pub tier: Tier,
    /// Seconds the data stays fresh; `None` when it is served stale.
    pub fresh_for: Option<u64>,
    /// Seconds since the data was fetched.
    pub age: u64,
}

/// Why a read has nothing to serve.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{key} is not cached yet")]
    NotCached {
        key: CacheKey,
        /// The entry exists but is past its stale window.
        expired: bool,
        refresh_requested: bool,
        last_attempt: Option<RefreshAttempt>,
    },
    #[error("DRS is not initialized in account {account} region {region}", account = key.scope(), region = key.region())]
    DrsNotInitialized { key: CacheKey },
    #[error("the cache store did not answer for {key} and no copy is held in memory")]
    Unavailable {
        key: CacheKey,
        #[source]
        source: LoadError,
    },
}

/// Why the store could not be read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    #[error("the store did not answer within {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Store(Arc<StoreError>),
}

pub struct ReadService {
    store: Arc<dyn CacheStore>,
    trigger: Arc<dyn RefreshTrigger>,
    clock: Arc<dyn Clock>,
    memory: MemoryTier,
    requested: Cache<CacheKey, ()>,
    settings: ReaderSettings,
}

enum Loaded {
    Found(Arc<Snapshot>, Tier),
    Absent,
}

impl ReadService {
    pub fn new(
        store: Arc<dyn CacheStore>,
        trigger: Arc<dyn RefreshTrigger>,
        clock: Arc<dyn Clock>,
        settings: ReaderSettings,
    ) -> Self {
        Self {
            store,
            trigger,
            clock,
            memory: MemoryTier::new(settings.memory_max_bytes),
            requested: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(settings.refresh_request_interval)
                .build(),
            settings,
        }
    }

    pub fn settings(&self) -> &ReaderSettings {
        &self.settings
    }

    pub fn memory(&self) -> &MemoryTier {
        &self.memory
    }

    /// The servable snapshot of `key`.
    #[instrument(skip_all, fields(cache_key = %key))]
    pub async fn read(&self, key: &CacheKey) -> Result<Served, ReadError> {
        let now = self.clock.now();
        let loaded = match self.memory.snapshot(key).await {
            Some(s) if !s.needs_revalidation(now) => Loaded::Found(s, Tier::Memory),
            _ => match self.load(key, now).await {
                Ok(loaded) => loaded,
                Err(e) => return self.fall_back_to_memory(key, now, e).await,
            },
        };
        let (snapshot, tier) = match loaded {
            Loaded::Found(s, tier) => (s, tier),
            Loaded::Absent => {
                return Err(ReadError::NotCached {
                    key: key.clone(),
                    expired: false,
                    refresh_requested: self.request_refresh(key).await,
                    last_attempt: None,
                });
            }
        };
        let freshness = snapshot.meta.freshness(now);
        match (snapshot.meta.state, freshness) {
            (EntryState::NoData, _) | (_, Freshness::Expired) => Err(ReadError::NotCached {
                key: key.clone(),
                expired: snapshot.meta.state != EntryState::NoData,
                refresh_requested: self.request_refresh(key).await,
                last_attempt: snapshot.meta.last_attempt.clone(),
            }),
            (EntryState::DrsNotInitialized, f) => {
                if !f.is_fresh() {
                    self.request_refresh(key).await;
                }
                Err(ReadError::DrsNotInitialized { key: key.clone() })
            }
            (EntryState::Ready, Freshness::Fresh { remaining }) => Ok(Served {
                age: snapshot.meta.age(now),
                snapshot,
                tier,
                fresh_for: Some(remaining),
            }),
            (EntryState::Ready, Freshness::Stale { .. }) => {
                self.request_refresh(key).await;
                Ok(Served {
                    age: snapshot.meta.age(now),
                    snapshot,
                    tier,
                    fresh_for: None,
                })
            }
        }
    }

    /// Reads `key` from the store into memory. Concurrent loads of one key run
    /// one after another, and a load that finds a copy another load just made
    /// uses it instead of reading the store again.
    async fn load(&self, key: &CacheKey, now: Timestamp) -> Result<Loaded, LoadError> {
        let store = &self.store;
        let timeout = self.settings.store_timeout;
        let (memory_ttl, stale_recheck) = (self.settings.memory_ttl, self.settings.stale_recheck);
        let result = self
            .memory
            .snapshots
            .entry_by_ref(key)
            .and_try_compute_with(|current| async move {
                if current.is_some_and(|c| !c.value().needs_revalidation(now)) {
                    return Ok(Op::Nop);
                }
                match tokio::time::timeout(timeout, store.get(key)).await {
                    Err(_) => Err(LoadError::Timeout(timeout)),
                    Ok(Err(e)) => Err(LoadError::Store(Arc::new(e))),
                    Ok(Ok(None)) => Ok(Op::Remove),
                    Ok(Ok(Some(entry))) => Ok(Op::Put(Arc::new(Snapshot::loaded(
                        entry,
                        now,
                        memory_ttl,
                        stale_recheck,
                    )))),
                }
            })
            .await?;
        Ok(match result {
            CompResult::Inserted(e) | CompResult::ReplacedWith(e) => {
                Loaded::Found(e.into_value(), Tier::Store)
            }
            CompResult::Unchanged(e) => Loaded::Found(e.into_value(), Tier::Memory),
            CompResult::Removed(_) | CompResult::StillNone(_) => Loaded::Absent,
        })
    }

    /// The store failed: serve the memory copy, however old, marked stale.
    async fn fall_back_to_memory(
        &self,
        key: &CacheKey,
        now: Timestamp,
        error: LoadError,
    ) -> Result<Served, ReadError> {
        warn!(cache_key = %key, error = %errors::chain(&error), "cache store read failed");
        if matches!(&error, LoadError::Store(e) if matches!(**e, StoreError::Corrupt { .. })) {
            // Only a new version can replace an unreadable one.
            self.request_refresh(key).await;
        }
        match self.memory.snapshot(key).await {
            Some(snapshot) if snapshot.meta.state == EntryState::Ready => Ok(Served {
                age: snapshot.meta.age(now),
                snapshot,
                tier: Tier::Memory,
                fresh_for: None,
            }),
            Some(snapshot) if snapshot.meta.state == EntryState::DrsNotInitialized => {
                Err(ReadError::DrsNotInitialized { key: key.clone() })
            }
            _ => Err(ReadError::Unavailable {
                key: key.clone(),
                source: error,
            }),
        }
    }

    /// Asks the refresh side to refresh what `invalidation` matches, waiting at
    /// most the trigger timeout. The error says why the request was not taken.
    pub async fn invalidate(&self, invalidation: &Invalidation) -> Result<(), String> {
        let request = self.trigger.request_invalidation(invalidation);
        match tokio::time::timeout(self.settings.trigger_timeout, request).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(errors::chain(&e)),
            Err(_) => Err("timed out".to_owned()),
        }
    }

    /// Asks for a refresh of `key` unless this container asked recently. Returns
    /// whether a refresh is on its way (asked now or recently).
    pub(super) async fn request_refresh(&self, key: &CacheKey) -> bool {
        let entry = self.requested.entry_by_ref(key).or_insert(()).await;
        if !entry.is_fresh() {
            return true;
        }
        let request = self.trigger.request_refresh(key, RefreshReason::Miss);
        let failure = match tokio::time::timeout(self.settings.trigger_timeout, request).await {
            Ok(Ok(())) => return true,
            Ok(Err(e)) => errors::chain(&e),
            Err(_) => "timed out".to_owned(),
        };
        warn!(cache_key = %key, error = %failure, "refresh request failed");
        // Not on its way after all: the next read may ask again.
        self.requested.invalidate(key).await;
        false
    }
}
