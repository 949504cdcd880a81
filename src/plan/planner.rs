//! The plan use case: turn a trigger into the deduplicated targets to refresh,
//! claimed so that a burst of triggers refreshes each target once, and packed
//! into batches for the refresher.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use crate::{
    domain::capacity::QuotaThresholds,
    domain::{
        AccountId, CacheKey, Clock, DataType, Demand, DemandPolicy, EntryMeta, EntryState, Kept,
        Ownership, RefreshAhead, Region, Timestamp,
    },
    ports::{
        self, CacheListing, CacheWrites, ClaimId, ClaimRule, DemandLog, Invalidation, LeaseClaims,
        RefreshReason, StoreError,
    },
    workflow,
};

use super::{
    capacity,
    due::DueRule,
    freshness::{self, TypeFreshness},
    trigger::Trigger,
};

/// What this deployment refreshes, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanConfig {
    /// The deployment's own account (fetches account-independent data).
    pub home: AccountId,
    /// Accounts served; events from any other are ignored.
    pub accounts: Vec<AccountId>,
    pub regions: Vec<Region>,
    /// Data types this deployment keeps.
    pub data_types: Vec<DataType>,
    /// The period of the scheduled tick.
    pub schedule_interval: Duration,
    /// Data expiring within a tick plus this margin is refreshed ahead.
    pub refresh_ahead_margin: Duration,
    /// A target whose last refresh failed waits this long before a tick plans it
    /// again.
    pub failure_backoff: Duration,
    /// How long a claim holds a planned target before its batch begins (and
    /// each round of the batch renews it): longer than the refresher's timeout.
    pub lease: Duration,
    /// Most targets per refresher invocation.
    pub batch_size: usize,
    /// Entries listed per store page when a tick reads metadata.
    pub list_page: u32,
    /// Most targets a scheduled tick claims; the rest of what is due, the most
    /// recently refreshed, waits for the next tick.
    pub max_targets_per_run: usize,
    /// An invalidation leaves out targets fetched less than this long ago, so
    /// repeated invalidations cannot refresh the whole fleet over and over.
    pub manual_min_age: Duration,
    /// The DRS limits and status thresholds the fleet capacity rates rows by.
    pub thresholds: QuotaThresholds,
    /// Which deployment refreshes each region: this one plans only the
    /// targets of the regions it owns.
    pub ownership: Ownership,
    /// Which keys ticks refresh ahead of expiry: all, or those in demand.
    pub refresh_ahead: RefreshAhead,
}

impl PlanConfig {
    /// The accounts, regions and data types the deployment keeps (and reads).
    pub fn kept(&self) -> Kept {
        Kept::new(&self.accounts, &self.regions, &self.data_types)
    }

    /// The regions whose targets this deployment refreshes.
    pub fn owned_regions(&self) -> Vec<Region> {
        self.ownership.owned(&self.regions)
    }

    /// The targets this deployment refreshes: those of the regions it owns.
    pub fn refreshed(&self) -> Kept {
        Kept::new(&self.accounts, &self.owned_regions(), &self.data_types)
    }

    /// Where scheduled ticks keep the fleet capacity (written by the owner of
    /// its region only).
    pub fn capacity_key(&self) -> Option<CacheKey> {
        crate::domain::fleet::key_of(&self.regions, &self.data_types)
    }
}

/// What a scheduled tick would refresh now ([`Planner::preview`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Preview {
    /// Targets this deployment keeps.
    pub configured: usize,
    /// Due targets, in the order the tick takes them.
    pub targets: Vec<PreviewTarget>,
    /// Due targets past the per-run limit, left to a later tick.
    pub deferred: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PreviewTarget {
    #[serde(serialize_with = "crate::text::display")]
    pub key: CacheKey,
    pub why: DueWhy,
}

/// Why a tick refreshes a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "reason", rename_all = "camelCase")]
pub enum DueWhy {
    /// Configured and never cached.
    NeverCached,
    /// Only failed attempts are stored.
    NoData,
    /// Past its freshness.
    #[serde(rename_all = "camelCase")]
    Expired { for_seconds: u64 },
    /// Expires before the next tick plus the refresh-ahead margin.
    #[serde(rename_all = "camelCase")]
    ExpiresSoon {
        in_seconds: u64,
        horizon_seconds: u64,
    },
    /// Out of demand, and fetched the floor interval ago.
    #[serde(rename_all = "camelCase")]
    Floor {
        fetched_seconds_ago: u64,
        floor_seconds: u64,
    },
    /// Out of demand, and its stale window ends before the next tick.
    #[serde(rename_all = "camelCase")]
    StaleWindowEnds { in_seconds: u64 },
}

impl std::fmt::Display for DueWhy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NeverCached => f.write_str("never cached"),
            Self::NoData => f.write_str("no data (failed attempts only)"),
            Self::Expired { for_seconds } => write!(f, "expired {for_seconds} s ago"),
            Self::ExpiresSoon {
                in_seconds,
                horizon_seconds,
            } => write!(
                f,
                "expires in {in_seconds} s, within the next tick and margin ({horizon_seconds} s)"
            ),
            Self::Floor {
                fetched_seconds_ago,
                floor_seconds,
            } => write!(
                f,
                "not read lately; fetched {fetched_seconds_ago} s ago, past the floor interval ({floor_seconds} s)"
            ),
            Self::StaleWindowEnds { in_seconds } => write!(
                f,
                "not read lately; its stale window ends in {in_seconds} s"
            ),
        }
    }
}

/// The targets of one run, packed into the refresher's batches.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub reason: RefreshReason,
    /// One refresher invocation each (see [`workflow::pack`]).
    pub batches: Vec<Vec<CacheKey>>,
    /// The claim holding the planned targets' leases; `None` when nothing was
    /// planned.
    pub claim: Option<ClaimId>,
    /// Targets asked for but not planned: claimed by a run shortly before, or
    /// outside this deployment's configuration.
    pub skipped: usize,
    /// Due targets a scheduled tick left to the next one, past
    /// [`PlanConfig::max_targets_per_run`].
    pub deferred: usize,
    /// Why nothing was planned, when the trigger was ignored.
    pub ignored: Option<String>,
    /// How fresh the configured targets were, by data type: surveyed by
    /// scheduled ticks only, which read every target's metadata anyway.
    pub freshness: Vec<TypeFreshness>,
}

impl Plan {
    /// Every target planned, batch after batch.
    pub fn targets(&self) -> Vec<CacheKey> {
        self.batches.iter().flatten().cloned().collect()
    }

    /// The refresher's input for each batch: its targets under the plan's
    /// claim, with the time of the change that triggered the run, if any.
    pub fn batch_inputs(&self, event_time: Option<u64>) -> Vec<workflow::Batch> {
        self.batches
            .iter()
            .map(|keys| workflow::Batch {
                claim: self.claim.clone(),
                event_time,
                ..workflow::Batch::of(self.reason, keys)
            })
            .collect()
    }

    pub fn target_count(&self) -> usize {
        self.batches.iter().map(Vec::len).sum()
    }
}

pub struct Planner {
    store: Arc<dyn CacheListing>,
    leases: Arc<dyn LeaseClaims>,
    clock: Arc<dyn Clock>,
    config: PlanConfig,
    /// The targets this deployment refreshes, for lookups by key.
    kept: Kept,
    /// The regions whose targets it refreshes, in the configured order.
    owned: Vec<Region>,
    /// Where scheduled ticks write the fleet capacity; `None`: nowhere.
    capacity: Option<Arc<dyn CacheWrites>>,
    /// Where readers record demand and warm requests are kept; `None`: no
    /// key is in demand (with `REFRESH_AHEAD=demand`, every key waits for its
    /// floor or a read).
    demand: Option<Arc<dyn DemandLog>>,
}

impl Planner {
    pub fn new(
        store: Arc<dyn CacheListing>,
        leases: Arc<dyn LeaseClaims>,
        clock: Arc<dyn Clock>,
        config: PlanConfig,
    ) -> Self {
        Self {
            store,
            leases,
            clock,
            kept: config.refreshed(),
            owned: config.owned_regions(),
            config,
            capacity: None,
            demand: None,
        }
    }

    /// This planner, reading demand from (and keeping warm requests in) `log`.
    #[must_use]
    pub fn with_demand(mut self, log: Arc<dyn DemandLog>) -> Self {
        self.demand = Some(log);
        self
    }

    /// This planner, with each scheduled tick also summing the fleet capacity
    /// from the metadata it lists and writing it to `store`.
    #[must_use]
    pub fn with_capacity_writes(mut self, store: Arc<dyn CacheWrites>) -> Self {
        self.capacity = Some(store);
        self
    }

    pub fn config(&self) -> &PlanConfig {
        &self.config
    }

    #[tracing::instrument(skip_all, fields(reason = trigger.reason().as_str()))]
    pub async fn plan(&self, trigger: &Trigger) -> Result<Plan, StoreError> {
        let now = self.clock.now();
        let reason = trigger.reason();
        let mut deferred = 0;
        let mut freshness = Vec::new();
        let asked: Vec<CacheKey> = match trigger {
            Trigger::Schedule => {
                let stored = self.stored(&self.config.data_types).await?;
                let demand = self.demand(now).await;
                freshness = self.survey(&stored, demand.as_ref(), now);
                if let Some(writes) = &self.capacity
                    && self.owns_capacity()
                {
                    capacity::keep(&**writes, &*self.clock, &self.config, &stored, now).await;
                }
                let mut due = self.due(&stored, demand.as_ref(), now);
                deferred = due.len().saturating_sub(self.config.max_targets_per_run);
                due.truncate(self.config.max_targets_per_run);
                if deferred > 0 {
                    tracing::warn!(
                        deferred,
                        "due targets past the per-run limit left to the next tick"
                    );
                }
                due.into_iter().map(|(key, _)| key).collect()
            }
            Trigger::Warm(warm) => self.warm(warm.account, warm.window, now).await?,
            Trigger::Launched { account, region } => {
                // The launch's own data is planned whatever becomes of the
                // mark; the ticks refresh the rest of the account. A launch
                // in a region this deployment does not refresh (not kept, or
                // owned by another) is its owner's to mark.
                let launch = CacheKey::new(DataType::DrsSourceServers, region.clone(), *account);
                if !self.is_configured(&launch) {
                    tracing::info!(account = %account, region = %region, "a launch outside this deployment's regions: not kept warm here");
                } else if let Err(e) = self.keep_warm(*account, None, now).await {
                    tracing::error!(
                        account = %account,
                        error = %crate::errors::chain(&e),
                        "a launch's account not kept warm"
                    );
                }
                self.changed(trigger)
            }
            Trigger::Change { .. } | Trigger::ProfilesChanged { .. } => self.changed(trigger),
            Trigger::Manual(invalidation) => self.invalidated(invalidation, now).await?,
            Trigger::Targets { keys, .. } => keys.clone(),
            Trigger::Ignored { why } => {
                tracing::info!(why = %why, "event ignored");
                return Ok(Plan {
                    reason,
                    batches: Vec::new(),
                    claim: None,
                    skipped: 0,
                    deferred: 0,
                    ignored: Some(why.clone()),
                    freshness,
                });
            }
        };
        let mut seen = HashSet::with_capacity(asked.len());
        let wanted: Vec<CacheKey> = asked
            .iter()
            .filter(|key| self.is_configured(key) && seen.insert(*key))
            .cloned()
            .collect();
        let outside = asked.len() - wanted.len();
        if outside > 0 {
            tracing::info!(
                outside,
                "targets outside this deployment's configuration, or of regions another deployment owns, skipped"
            );
        }
        let claim = self
            .leases
            .claim(
                &wanted,
                now,
                now.plus(self.config.lease),
                self.rule(trigger),
            )
            .await?;
        let skipped = asked.len() - claim.keys.len();
        Ok(Plan {
            reason,
            batches: workflow::pack(&claim.keys, self.config.home, self.config.batch_size),
            claim: (!claim.keys.is_empty()).then_some(claim.id),
            skipped,
            deferred,
            ignored: None,
            freshness,
        })
    }

    /// The keys a change names (every region's instance profiles for an IAM
    /// change); none for another trigger. Keys outside the configuration are
    /// included: the plan skips them.
    pub fn changed(&self, trigger: &Trigger) -> Vec<CacheKey> {
        match trigger {
            Trigger::Change {
                account,
                region,
                data_types,
            } => data_types
                .iter()
                .map(|t| CacheKey::new(*t, region.clone(), *account))
                .collect(),
            Trigger::Launched { account, region } => {
                super::trigger::drs_changes(super::trigger::LAUNCH_RESULT)
                    .iter()
                    .map(|t| CacheKey::new(*t, region.clone(), *account))
                    .collect()
            }
            Trigger::ProfilesChanged { account } => self
                .config
                .regions
                .iter()
                .map(|r| CacheKey::new(DataType::Ec2InstanceProfiles, r.clone(), *account))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// What a scheduled tick would plan now, each target with why, changing
    /// nothing: no claim is taken, so targets another run holds are listed
    /// too (the tick would skip them).
    pub async fn preview(&self) -> Result<Preview, StoreError> {
        let now = self.clock.now();
        let stored = self.stored(&self.config.data_types).await?;
        let demand = self.demand(now).await;
        let mut due = self.due(&stored, demand.as_ref(), now);
        let deferred = due.len().saturating_sub(self.config.max_targets_per_run);
        due.truncate(self.config.max_targets_per_run);
        let targets = due
            .into_iter()
            .map(|(key, why)| PreviewTarget { key, why })
            .collect();
        Ok(Preview {
            configured: self.configured().count(),
            targets,
            deferred,
        })
    }

    /// How the claim of `trigger`'s targets treats those another lease holds:
    /// a tick leaves targets whose refresh died to their backoff; a change or
    /// an operator's request marks the targets in flight for one more refresh
    /// (a reader's request needs none: the refresh in flight answers it).
    fn rule(&self, trigger: &Trigger) -> ClaimRule {
        match trigger.reason() {
            RefreshReason::Schedule => ClaimRule::Schedule {
                died_backoff: self.config.failure_backoff,
            },
            RefreshReason::Event | RefreshReason::Manual => {
                ClaimRule::Demand { mark_pending: true }
            }
            RefreshReason::Miss => ClaimRule::Demand {
                mark_pending: false,
            },
        }
    }

    /// Whether this deployment writes the fleet capacity: it owns the region
    /// of its key, so exactly one deployment over a global table does.
    fn owns_capacity(&self) -> bool {
        self.config
            .capacity_key()
            .is_some_and(|key| self.config.ownership.owns(key.region()))
    }

    /// Every target this deployment refreshes: those of the regions it owns.
    pub fn configured(&self) -> impl Iterator<Item = CacheKey> + '_ {
        let c = &self.config;
        self.owned.iter().flat_map(move |region| {
            c.data_types.iter().flat_map(move |t| {
                let accounts: &[AccountId] = if t.is_account_independent() {
                    std::slice::from_ref(&c.home)
                } else {
                    &c.accounts
                };
                accounts
                    .iter()
                    .map(move |a| CacheKey::new(*t, region.clone(), *a))
            })
        })
    }

    /// The configured targets `invalidation` matches, but those fetched within
    /// the manual minimum age.
    async fn invalidated(
        &self,
        invalidation: &Invalidation,
        now: Timestamp,
    ) -> Result<Vec<CacheKey>, StoreError> {
        let Invalidation {
            data_type,
            region,
            account,
        } = invalidation;
        let matching: Vec<CacheKey> = self
            .configured()
            .filter(|k| data_type.is_none_or(|t| k.data_type() == t))
            .filter(|k| region.as_ref().is_none_or(|r| k.region() == r))
            .filter(|k| account.is_none_or(|a| k.scope().account().is_none_or(|ka| ka == a)))
            .collect();
        let min_age = self.config.manual_min_age;
        if min_age.is_zero() || matching.is_empty() {
            return Ok(matching);
        }
        let types: Vec<DataType> = match data_type {
            Some(t) => vec![*t],
            None => self.config.data_types.clone(),
        };
        let stored = self.stored(&types).await?;
        let recent = |key: &CacheKey| {
            stored
                .get(key)
                .is_some_and(|m| m.state != EntryState::NoData && m.fetched_at.plus(min_age) > now)
        };
        Ok(matching.into_iter().filter(|k| !recent(k)).collect())
    }

    /// The metadata of every stored entry of `types`.
    async fn stored(&self, types: &[DataType]) -> Result<HashMap<CacheKey, EntryMeta>, StoreError> {
        ports::list_all(&*self.store, types, self.config.list_page).await
    }

    fn is_configured(&self, key: &CacheKey) -> bool {
        self.kept.check(key).is_ok()
    }

    /// The demand readers recorded and the warm accounts, when refresh-ahead
    /// follows demand. `None`: every key is refreshed ahead, as with
    /// `REFRESH_AHEAD=always`; also when the demand cannot be read, so a
    /// store that fails this read costs more refreshes, never staler data.
    async fn demand(&self, now: Timestamp) -> Option<Demand> {
        self.config.refresh_ahead.demand()?;
        let Some(log) = &self.demand else {
            return Some(Demand::default());
        };
        match log.demand(&self.config.data_types, now).await {
            Ok(demand) => Some(demand),
            Err(e) => {
                tracing::warn!(
                    error = %crate::errors::chain(&e),
                    "demand not read; this tick refreshes every key ahead"
                );
                None
            }
        }
    }

    /// How fresh the configured targets are, each held to the interval the
    /// due rule keeps it to under `demand` (`None`: every key in demand).
    fn survey(
        &self,
        stored: &HashMap<CacheKey, EntryMeta>,
        demand: Option<&Demand>,
        now: Timestamp,
    ) -> Vec<TypeFreshness> {
        let policy = demand.and(self.config.refresh_ahead.demand());
        freshness::survey(
            &self.config.data_types,
            self.configured(),
            stored,
            now,
            |meta| {
                let in_demand = match (policy, demand) {
                    (Some(policy), Some(demand)) => demand.hot(&meta.key, policy, now).is_some(),
                    _ => true,
                };
                freshness::promised_interval(meta, in_demand, policy.map(|p| p.floor()))
            },
        )
    }

    /// Keeps every key of `account` in demand for `window` (default: the warm
    /// window), when ticks follow demand; answers when that ends.
    async fn keep_warm(
        &self,
        account: AccountId,
        window: Option<Duration>,
        now: Timestamp,
    ) -> Result<Timestamp, StoreError> {
        let policy = self.config.refresh_ahead.demand();
        let default = policy.map_or(DemandPolicy::DEFAULT_WARM_WINDOW, DemandPolicy::warm_window);
        let until = now.plus(window.unwrap_or(default));
        if let (Some(log), Some(_)) = (&self.demand, policy) {
            log.warm(account, until).await?;
            tracing::info!(account = %account, until = %until.rfc3339(), "account kept warm");
        }
        Ok(until)
    }

    /// Keeps `account` warm ([`Self::keep_warm`]), and answers those of its
    /// keys due now that it is.
    async fn warm(
        &self,
        account: AccountId,
        window: Option<Duration>,
        now: Timestamp,
    ) -> Result<Vec<CacheKey>, StoreError> {
        let until = self.keep_warm(account, window, now).await?;
        let stored = self.stored(&self.config.data_types).await?;
        let mut demand = self.demand(now).await.unwrap_or_default();
        demand.warm(account, until);
        Ok(self
            .due(&stored, Some(&demand), now)
            .into_iter()
            .map(|(key, _)| key)
            .filter(|key| key.scope().account().is_none_or(|a| a == account))
            .collect())
    }

    /// Configured targets the due rule ([`DueRule`]) finds due, in the order a
    /// tick takes them: never cached first, then by when each became due; a
    /// target whose last refresh failed waits out the failure backoff.
    /// `demand` `None`: every key counts as in demand.
    fn due(
        &self,
        stored: &HashMap<CacheKey, EntryMeta>,
        demand: Option<&Demand>,
        now: Timestamp,
    ) -> Vec<(CacheKey, DueWhy)> {
        let c = &self.config;
        let empty = Demand::default();
        let rule = DueRule {
            now,
            horizon: now.plus(c.schedule_interval + c.refresh_ahead_margin),
            failure_backoff: c.failure_backoff,
            ahead: match demand {
                Some(_) => &c.refresh_ahead,
                None => &RefreshAhead::Always,
            },
            demand: demand.unwrap_or(&empty),
        };
        let mut due: Vec<(Option<Timestamp>, CacheKey, DueWhy)> = self
            .configured()
            .filter_map(|key| {
                rule.due(&key, stored.get(&key))
                    .map(|due| (due.at, key, due.why))
            })
            .collect();
        // Stable: targets due at one time keep the configured order; `None`
        // (never cached) sorts first.
        due.sort_by_key(|(at, _, _)| *at);
        due.into_iter().map(|(_, key, why)| (key, why)).collect()
    }
}
