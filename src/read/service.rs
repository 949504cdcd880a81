//! The read use case: memory tier, then store, then stale fallback.

use std::{future::Future, sync::Arc, time::Duration};

use moka::future::Cache;
use tracing::{instrument, warn};

use crate::{
    domain::{
        AccountId, CacheKey, Clock, DemandPolicy, ETag, EntryMeta, EntryState, Freshness, Kept,
        NotKept, Ownership, RefreshAttempt, RefreshErrorKind, Region, Timestamp,
    },
    errors,
    ports::{
        CacheReads, DemandNotes, Invalidation, RefreshReason, RefreshRequestError, RefreshTrigger,
        StoreError,
    },
};

use super::{
    ReadRequest,
    demand::DemandRecorder,
    encoding::Variants,
    memory::{Loaded, MemoryTier, Snapshot},
};

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
    /// The targets the deployment keeps; a read of any other is
    /// `NOT_CONFIGURED`. `None`: every target is read.
    pub kept: Option<Kept>,
    /// Where the planner keeps the fleet capacity (`GET /drs/capacity`);
    /// `None`: the deployment keeps none.
    pub capacity_key: Option<CacheKey>,
    /// Which deployment refreshes each region: refreshes are asked only for
    /// what this one owns.
    pub ownership: Ownership,
    /// The demand windows, when refresh-ahead follows demand: reads are then
    /// noted for the planner ([`ReadService::with_demand`]). `None`: none are.
    pub demand: Option<DemandPolicy>,
    /// How long past its freshness the scheduled ticks leave a key they keep
    /// ahead (the planner's schedule interval plus its refresh-ahead margin):
    /// a read that finds data stale by less leaves its refresh to the next
    /// tick, which refreshes every key read (its note makes it in demand), and
    /// asks for one at once only for data older than that, which no tick
    /// kept. `None`: every stale read asks.
    pub ticks_keep: Option<Duration>,
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
            kept: None,
            capacity_key: None,
            ownership: Ownership::Sole,
            demand: None,
            ticks_keep: None,
        }
    }
}

/// `X-Refresh-Error` of stale data whose owner, another region's deployment,
/// has not refreshed it.
pub const OWNER_UNAVAILABLE: &str = "OwnerUnavailable";

/// Where a served body came from, named in lower case (`memory`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "lowercase")]
pub enum Tier {
    Memory,
    Store,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// What a read serves: the body asked for (filtered when the request has a
/// filter) and how fresh it is.
#[derive(Debug, Clone)]
pub struct Served {
    /// The body, and its compressed variants as they are asked for.
    pub body: Arc<Variants>,
    /// The tag of `body`.
    pub etag: ETag,
    pub tier: Tier,
    /// Seconds the data stays fresh; `None` when it is served stale.
    pub fresh_for: Option<u64>,
    /// Seconds since the data was fetched.
    pub age: u64,
    /// A refresh failed after this data was fetched, with this kind.
    pub refresh_error: Option<RefreshErrorKind>,
    /// Served stale, and refreshed only by the deployment in this region,
    /// which has not refreshed it within its freshness (it may be down).
    pub awaiting_owner: Option<Region>,
}

impl Served {
    /// `X-Refresh-Error`: `OwnerUnavailable` when stale and another region's
    /// deployment refreshes it (it has not), else the kind of a refresh that
    /// failed since the data was fetched.
    pub fn refresh_error_header(&self) -> Option<&'static str> {
        if self.awaiting_owner.is_some() {
            Some(OWNER_UNAVAILABLE)
        } else {
            self.refresh_error.map(RefreshErrorKind::as_str)
        }
    }

    /// `fresh` or `stale`, as `X-Cache-Status` says it.
    pub fn status(&self) -> &'static str {
        if self.fresh_for.is_some() {
            "fresh"
        } else {
            "stale"
        }
    }
}

/// A snapshot that may be served, before any filter.
struct Servable {
    snapshot: Arc<Snapshot>,
    tier: Tier,
    fresh_for: Option<u64>,
    age: u64,
}

/// Why a read has nothing to serve.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The deployment does not refresh this target: nothing is asked for.
    #[error(transparent)]
    NotConfigured(NotKept),
    #[error("{key} is not cached yet")]
    NotCached {
        key: CacheKey,
        /// The entry exists but is past its stale window.
        expired: bool,
        refresh_requested: bool,
        last_attempt: Option<RefreshAttempt>,
        /// The region of the deployment that refreshes `key`, when it is not
        /// this one (so no refresh was asked for).
        owner: Option<Region>,
    },
    #[error("DRS is not initialized in account {account} region {region}", account = key.scope(), region = key.region())]
    DrsNotInitialized { key: CacheKey },
    #[error("the cache store did not answer for {key} and no copy is held in memory")]
    Unavailable {
        key: CacheKey,
        #[source]
        source: LoadError,
    },
    /// The cached body is not the view its data type has; a refresh will
    /// replace it.
    #[error("the cached body of {key} cannot be read")]
    Unreadable { key: CacheKey },
    /// A page token of another version than the one served: the list it
    /// counted into has changed.
    #[error("nextToken {token} is of an earlier version of {key}")]
    StaleToken { key: CacheKey, token: String },
}

/// Why a refresh request or an invalidation was not taken by the refresh side.
#[derive(Debug, thiserror::Error)]
pub enum RequestNotTaken {
    /// The invalidation names a part the deployment does not keep.
    #[error(transparent)]
    NotConfigured(NotKept),
    #[error(transparent)]
    Refused(#[from] RefreshRequestError),
    #[error("the refresh request was not taken within {0:?}")]
    TimedOut(Duration),
    /// The invalidation names a region another deployment refreshes.
    #[error("region {region} is refreshed by the deployment in {owner}")]
    NotOwned { region: Region, owner: Region },
}

/// Why the store could not be read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    #[error("the store did not answer within {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Store(Arc<StoreError>),
}

impl LoadError {
    /// The failure in one fixed word, for answers: `timeout`, `corrupt` or
    /// `error`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "timeout",
            Self::Store(e) if matches!(**e, StoreError::Corrupt { .. }) => "corrupt",
            Self::Store(_) => "error",
        }
    }
}

pub struct ReadService {
    store: Arc<dyn CacheReads>,
    trigger: Arc<dyn RefreshTrigger>,
    clock: Arc<dyn Clock>,
    memory: MemoryTier,
    /// Targets asked for within the interval, and whether the request was
    /// taken.
    requested: Cache<CacheKey, bool>,
    settings: ReaderSettings,
    /// Where reads are noted for demand-aware refresh; `None`: nowhere.
    demand: Option<Arc<DemandRecorder>>,
}

impl ReadService {
    pub fn new(
        store: Arc<dyn CacheReads>,
        trigger: Arc<dyn RefreshTrigger>,
        clock: Arc<dyn Clock>,
        settings: ReaderSettings,
    ) -> Self {
        Self {
            store,
            trigger,
            clock,
            memory: MemoryTier::new(
                settings.memory_max_bytes,
                settings.memory_ttl,
                settings.stale_recheck,
            ),
            requested: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(settings.refresh_request_interval)
                .build(),
            settings,
            demand: None,
        }
    }

    /// This service, noting its reads in `log` when the settings have demand
    /// windows (else unchanged).
    #[must_use]
    pub fn with_demand(mut self, log: Arc<dyn DemandNotes>) -> Self {
        self.demand = self
            .settings
            .demand
            .clone()
            .map(|policy| Arc::new(DemandRecorder::new(log, policy)));
        self
    }

    /// Where this service notes its reads, for the flushers that write them.
    pub fn demand(&self) -> Option<&Arc<DemandRecorder>> {
        self.demand.as_ref()
    }

    pub fn settings(&self) -> &ReaderSettings {
        &self.settings
    }

    /// What `request` serves: its body (filtered as asked), or why there is
    /// none.
    // A debug span: at the default level a read formats no span fields (its
    // warnings name the key themselves).
    #[instrument(level = "debug", skip_all, fields(cache_key = %request.key))]
    pub async fn read(&self, request: &ReadRequest) -> Result<Served, ReadError> {
        let key = &request.key;
        // Derived data is not a target: the request's own parts were checked.
        if let Some(kept) = &self.settings.kept
            && !key.data_type().is_derived()
        {
            kept.check(key).map_err(ReadError::NotConfigured)?;
        }
        if let Some(demand) = &self.demand
            && !key.data_type().is_derived()
        {
            demand.note(key, self.clock.now()).await;
        }
        let mut servable = self.servable(key).await?;
        if let Some(after) = &request.after
            && *after.source != *servable.snapshot.meta.etag.as_str()
            && servable.tier == Tier::Memory
        {
            // The token may be of a newer version another container served:
            // read the store once before refusing it.
            let now = self.clock.now();
            let wanted = |held: &Snapshot| *held.meta.etag.as_str() == *after.source;
            if let Ok(Loaded::Found(_, read_now)) = self.load_unless(key, now, wanted).await {
                servable = self.servable(key).await?;
                if read_now {
                    servable.tier = Tier::Store;
                }
            }
        }
        let snapshot = &servable.snapshot;
        if let Some(after) = &request.after
            && *after.source != *snapshot.meta.etag.as_str()
        {
            return Err(ReadError::StaleToken {
                key: key.clone(),
                token: format!("{}-{}-{}", after.source, after.offset, after.filters),
            });
        }
        let (body, etag) = match &request.filter {
            None => (snapshot.body.clone(), snapshot.meta.etag.clone()),
            Some(filter) => match self.memory.view(snapshot, filter).await {
                Ok(view) => (view.body.clone(), view.etag.clone()),
                Err(e) => {
                    tracing::error!(cache_key = %key, error = %e, "cached body is not a valid view");
                    self.request_refresh(key).await;
                    return Err(ReadError::Unreadable { key: key.clone() });
                }
            },
        };
        let refresh_error = snapshot
            .meta
            .last_attempt
            .as_ref()
            .and_then(|a| a.failure.as_ref())
            .map(|f| f.kind);
        let awaiting_owner = servable
            .fresh_for
            .is_none()
            .then(|| self.other_owner(key))
            .flatten();
        Ok(Served {
            body,
            etag,
            tier: servable.tier,
            fresh_for: servable.fresh_for,
            age: servable.age,
            refresh_error,
            awaiting_owner,
        })
    }

    /// The snapshot of `key` that may be served: memory tier, then store, then
    /// stale fallback.
    async fn servable(&self, key: &CacheKey) -> Result<Servable, ReadError> {
        let now = self.clock.now();
        let found = match self.memory.snapshot(key).await {
            Some(s) if !s.needs_revalidation(now) => Some((s, Tier::Memory)),
            _ => match self.load(key, now).await {
                Ok(Loaded::Found(s, from_store)) => Some((
                    s,
                    if from_store {
                        Tier::Store
                    } else {
                        Tier::Memory
                    },
                )),
                Ok(Loaded::Absent) => None,
                Err(e) => return self.fall_back_to_memory(key, now, e).await,
            },
        };
        let Some((snapshot, tier)) = found else {
            return Err(ReadError::NotCached {
                key: key.clone(),
                expired: false,
                refresh_requested: self.request_refresh(key).await,
                last_attempt: None,
                owner: self.other_owner(key),
            });
        };
        let freshness = snapshot.meta.freshness(now);
        match (snapshot.meta.state, freshness) {
            (EntryState::NoData, _) | (_, Freshness::Expired) => Err(ReadError::NotCached {
                key: key.clone(),
                expired: snapshot.meta.state != EntryState::NoData,
                refresh_requested: self.request_refresh(key).await,
                last_attempt: snapshot.meta.last_attempt.clone(),
                owner: self.other_owner(key),
            }),
            (EntryState::DrsNotInitialized, f) => {
                if !f.is_fresh() {
                    self.request_refresh(key).await;
                }
                Err(ReadError::DrsNotInitialized { key: key.clone() })
            }
            (EntryState::Ready, Freshness::Fresh { remaining }) => Ok(Servable {
                age: snapshot.meta.age(now),
                snapshot,
                tier,
                fresh_for: Some(remaining),
            }),
            (EntryState::Ready, Freshness::Stale { .. }) => {
                if !self.left_to_ticks(&snapshot.meta, now) {
                    self.request_refresh(key).await;
                }
                Ok(Servable {
                    age: snapshot.meta.age(now),
                    snapshot,
                    tier,
                    fresh_for: None,
                })
            }
        }
    }

    /// Reads `key` from the store into memory, unless a load just made a copy.
    async fn load(&self, key: &CacheKey, now: Timestamp) -> Result<Loaded, LoadError> {
        self.load_unless(key, now, |held| !held.needs_revalidation(now))
            .await
    }

    /// Reads `key` from the store into memory, unless the copy held is one
    /// `keep` accepts.
    async fn load_unless(
        &self,
        key: &CacheKey,
        now: Timestamp,
        keep: impl FnOnce(&Snapshot) -> bool,
    ) -> Result<Loaded, LoadError> {
        let timeout = self.settings.store_timeout;
        self.memory
            .load_unless(key, now, keep, || async move {
                match tokio::time::timeout(timeout, self.store.get(key)).await {
                    Err(_) => Err(LoadError::Timeout(timeout)),
                    Ok(result) => result.map_err(|e| LoadError::Store(Arc::new(e))),
                }
            })
            .await
    }

    /// The store failed: serve the memory copy, marked stale, until the end of
    /// its stale window.
    async fn fall_back_to_memory(
        &self,
        key: &CacheKey,
        now: Timestamp,
        error: LoadError,
    ) -> Result<Servable, ReadError> {
        warn!(cache_key = %key, error = %errors::chain(&error), "cache store read failed");
        if matches!(&error, LoadError::Store(e) if matches!(**e, StoreError::Corrupt { .. })) {
            // Only a new version can replace an unreadable one.
            self.request_refresh(key).await;
        }
        let servable = self
            .memory
            .snapshot(key)
            .await
            .filter(|s| s.meta.freshness(now) != Freshness::Expired);
        match servable {
            Some(snapshot) if snapshot.meta.state == EntryState::Ready => Ok(Servable {
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
    /// most the trigger timeout.
    pub async fn invalidate(&self, invalidation: &Invalidation) -> Result<(), RequestNotTaken> {
        if let Some(kept) = &self.settings.kept {
            kept.check_parts(
                invalidation.data_type,
                invalidation.region.as_ref(),
                invalidation.account,
            )
            .map_err(RequestNotTaken::NotConfigured)?;
        }
        if let Some(region) = &invalidation.region
            && let Some(owner) = self.settings.ownership.other_owner(region)
        {
            return Err(RequestNotTaken::NotOwned {
                region: region.clone(),
                owner: owner.clone(),
            });
        }
        self.within_trigger_timeout(self.trigger.request_invalidation(invalidation))
            .await
    }

    /// The region of the deployment that refreshes `key`, when it is not this
    /// one.
    fn other_owner(&self, key: &CacheKey) -> Option<Region> {
        self.settings.ownership.other_owner(key.region()).cloned()
    }

    async fn within_trigger_timeout(
        &self,
        request: impl Future<Output = Result<(), RefreshRequestError>>,
    ) -> Result<(), RequestNotTaken> {
        let timeout = self.settings.trigger_timeout;
        match tokio::time::timeout(timeout, request).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(RequestNotTaken::TimedOut(timeout)),
        }
    }

    /// Whether stale data is still within the interval the ticks keep it to,
    /// so that the next tick refreshes it ([`ReaderSettings::ticks_keep`]).
    fn left_to_ticks(&self, meta: &EntryMeta, now: Timestamp) -> bool {
        self.settings
            .ticks_keep
            .is_some_and(|keep| meta.expired_within(keep, now))
    }

    /// Asks for a refresh of `key` unless this container asked within the
    /// refresh request interval, whether that request was taken or not (so a
    /// throttled workflow is not asked again on every read). Returns whether a
    /// refresh is on its way.
    async fn request_refresh(&self, key: &CacheKey) -> bool {
        // Derived data is kept by every scheduled tick, never on request;
        // another region's data, by the deployment that owns that region.
        if key.data_type().is_derived() || !self.settings.ownership.owns(key.region()) {
            return false;
        }
        let entry = self.requested.entry_by_ref(key).or_insert(true).await;
        if !entry.is_fresh() {
            return entry.into_value();
        }
        let request = self.trigger.request_refresh(key, RefreshReason::Miss);
        let Err(failure) = self.within_trigger_timeout(request).await else {
            return true;
        };
        warn!(cache_key = %key, error = %errors::chain(&failure), "refresh request failed");
        self.requested.insert(key.clone(), false).await;
        false
    }
}
