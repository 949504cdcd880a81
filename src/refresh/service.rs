//! The refresh use case: fetch a batch of targets from upstream, shape each into
//! its view, and write it to the cache store without ever losing newer data.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use futures::{StreamExt, stream};

use crate::{
    domain::{
        AccountId, CacheEntry, CacheKey, Clock, DataType, EntryState, RefreshAttempt,
        RefreshErrorKind, RefreshFailure, Timestamp, TtlTable, Version, capacity::QuotaThresholds,
    },
    errors,
    ports::{
        self, CacheReads, CacheWrites, ChangeFeed, DrsSource, Ec2Source, Fetched, IamSource,
        RefreshLeases, RefreshReason, SourceError, StoreError, Stored,
    },
};

use crate::{domain::changes, workflow::Fetch};

use super::{
    jobs::{self, Job},
    metrics::RefreshMetrics,
    round::RetryPolicy,
    summary::{BatchReport, FailureKind, FailureSummary, KeySummary, Status},
    views::{self, View},
};

/// Writes of one fetched body before its key is reported failed: a store that
/// is briefly unavailable is written again, never fetched from upstream again.
const WRITE_ATTEMPTS: u32 = 3;
/// The pause before the second write; it doubles before each further one.
const WRITE_RETRY_PAUSE: Duration = Duration::from_millis(200);

/// The upstream systems a refresh reads.
#[derive(Clone)]
pub struct Upstream {
    pub drs: Arc<dyn DrsSource>,
    pub ec2: Arc<dyn Ec2Source>,
    pub iam: Arc<dyn IamSource>,
}

#[derive(Debug, Clone)]
pub struct RefreshSettings {
    /// Freshness and stale window per data type.
    pub ttl: TtlTable,
    pub quota_limits: QuotaThresholds,
    /// Fetches of one batch running at once.
    pub concurrency: usize,
    /// The deployment's own account: fetches account-independent data.
    pub home_account: AccountId,
    /// How long a round of a batch holds its targets' leases: longer than the
    /// round may run (the refresher's timeout).
    pub lease: Duration,
    /// How the targets that failed in passing are tried again.
    pub retry: RetryPolicy,
    /// How far back `drs-jobs` lists jobs (by creation time).
    pub jobs_window: Duration,
}

/// The default window of `drs-jobs`: a week of drills and recoveries.
pub const DEFAULT_JOBS_WINDOW: Duration = Duration::from_secs(7 * 24 * 60 * 60);

pub struct Refresher {
    store: Arc<dyn CacheWrites>,
    pub(super) leases: Arc<dyn RefreshLeases>,
    upstream: Upstream,
    pub(super) clock: Arc<dyn Clock>,
    metrics: Arc<dyn RefreshMetrics>,
    pub(super) settings: RefreshSettings,
    /// Where what a write changed is published; `None`: nowhere.
    changes: Option<ChangePublishing>,
}

/// How the refresher publishes what its writes changed: the body a write
/// replaces is read from `reads` just before the put (only when the body
/// changed, and only for the types that have change events), and the events
/// of the difference go to `feed` after the write.
#[derive(Clone)]
pub struct ChangePublishing {
    pub reads: Arc<dyn CacheReads>,
    pub feed: Arc<dyn ChangeFeed>,
}

/// Views fetched for the keys of one job.
struct Shaped {
    pages: u32,
    views: Vec<(CacheKey, View)>,
}

impl Refresher {
    pub fn new(
        store: Arc<dyn CacheWrites>,
        leases: Arc<dyn RefreshLeases>,
        upstream: Upstream,
        clock: Arc<dyn Clock>,
        metrics: Arc<dyn RefreshMetrics>,
        settings: RefreshSettings,
    ) -> Self {
        Self {
            store,
            leases,
            upstream,
            clock,
            metrics,
            settings,
            changes: None,
        }
    }

    /// This refresher, publishing what its writes change (see
    /// [`ChangePublishing`]).
    #[must_use]
    pub fn with_change_feed(mut self, publishing: ChangePublishing) -> Self {
        self.changes = Some(publishing);
        self
    }

    pub fn home_account(&self) -> AccountId {
        self.settings.home_account
    }

    /// Refreshes `targets`, at most `concurrency` fetches at once, a new one
    /// starting whenever one ends. Every key is reported, in the order of the
    /// targets' jobs; a failure is recorded on its entry and never touches its
    /// body.
    pub async fn refresh(&self, targets: &[CacheKey], reason: RefreshReason) -> BatchReport {
        self.refresh_after(targets, reason, None).await
    }

    /// [`Self::refresh`] of a run an event triggered: each key its change
    /// reached (written, or found unchanged) reports how long after
    /// `event_time` (milliseconds since the Unix epoch) that was.
    #[tracing::instrument(skip_all, fields(targets = targets.len(), reason = reason.as_str()))]
    pub async fn refresh_after(
        &self,
        targets: &[CacheKey],
        reason: RefreshReason,
        event_time: Option<u64>,
    ) -> BatchReport {
        let jobs = jobs::plan(targets, self.settings.home_account);
        // Unordered: a slow fetch never keeps the next jobs from starting.
        let mut results: Vec<(usize, Vec<KeySummary>)> = stream::iter(jobs.into_iter().enumerate())
            .map(|(at, job)| async move {
                let mut summaries = self.run(job).await;
                if let Some(event_ms) = event_time {
                    let now_ms = self.clock.unix_micros() / 1_000;
                    for summary in summaries.iter_mut().filter(|s| s.status.reached_cache()) {
                        summary.event_to_cache_ms = Some(now_ms.saturating_sub(event_ms));
                    }
                }
                (at, summaries)
            })
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
        results.sort_unstable_by_key(|(at, _)| *at);
        let results: Vec<KeySummary> = results.into_iter().flat_map(|(_, r)| r).collect();
        self.metrics.record(reason, &results);
        BatchReport::new(results)
    }

    #[tracing::instrument(skip_all, fields(operation = job.fetch.operation(), keys = job.keys.len()))]
    async fn run(&self, job: Job) -> Vec<KeySummary> {
        let started = Instant::now();
        let version = Version::at_fetch_start(&*self.clock);
        let fetched_at = self.clock.now();
        let fetched = self.fetch(&job).await;
        let mut summaries = Vec::with_capacity(job.keys.len());
        match fetched {
            Ok(shaped) => {
                for (key, view) in shaped.views {
                    let policy = self.settings.ttl.policy(key.data_type());
                    let entry = CacheEntry::fetched(
                        key, version, view.body, view.items, fetched_at, policy,
                    )
                    .with_figures(view.figures);
                    summaries.push(self.write(entry, shaped.pages, started).await);
                }
            }
            Err(error) => {
                tracing::warn!(error = %error, kind = %error.kind, "upstream fetch failed");
                for key in job.keys {
                    let summary = if error.kind == RefreshErrorKind::NotInitialized
                        && is_drs(key.data_type())
                    {
                        let policy = self.settings.ttl.policy(key.data_type());
                        let entry =
                            CacheEntry::drs_not_initialized(key, version, fetched_at, policy);
                        self.write(entry, 1, started).await
                    } else {
                        self.record_failure(key, &error, fetched_at, started).await
                    };
                    summaries.push(summary);
                }
            }
        }
        summaries
    }

    async fn fetch(&self, job: &Job) -> Result<Shaped, SourceError> {
        let up = &self.upstream;
        let keys = &job.keys;
        Ok(match &job.fetch {
            Fetch::SourceServers(scope) => {
                let fetched = up.drs.source_servers(scope).await?;
                let limits = &self.settings.quota_limits;
                let views = keys
                    .iter()
                    .map(|key| {
                        let view = match key.data_type() {
                            DataType::DrsQuotas => {
                                views::quotas(&scope.account, &scope.region, &fetched.items, limits)
                            }
                            other => views::list(other, &scope.region, &fetched.items),
                        };
                        (key.clone(), view)
                    })
                    .collect();
                Shaped {
                    pages: fetched.pages,
                    views,
                }
            }
            Fetch::StagingAccounts(scope) => one_view(keys, up.drs.staging_accounts(scope).await?),
            Fetch::Jobs(scope) => {
                let since = self.clock.now().minus(self.settings.jobs_window);
                let fetched = up.drs.jobs(scope, since).await?;
                for_every_key(keys, fetched.pages, views::jobs(&fetched.items))
            }
            Fetch::RecoveryInstances(scope) => {
                let fetched = up.drs.recovery_instances(scope).await?;
                let view = views::recovery_instances(&scope.region, &fetched.items);
                for_every_key(keys, fetched.pages, view)
            }
            Fetch::SourceNetworks(scope) => one_view(keys, up.drs.source_networks(scope).await?),
            Fetch::Subnets(scope) => one_view(keys, up.ec2.subnets(scope).await?),
            Fetch::SecurityGroups(scope) => one_view(keys, up.ec2.security_groups(scope).await?),
            Fetch::InstanceTypes(scope) => one_view(keys, up.ec2.instance_types(scope).await?),
            // IAM is global: one body serves every region of the account.
            Fetch::InstanceProfiles(account) => {
                one_view(keys, up.iam.instance_profiles(account).await?)
            }
        })
    }

    /// Writes `entry` unless a refresh that started later already did: only the
    /// freshness moves when the stored body is the same. A store that is
    /// unavailable is tried [`WRITE_ATTEMPTS`] times with the body in hand.
    async fn write(&self, entry: CacheEntry, pages: u32, started: Instant) -> KeySummary {
        let key = entry.meta.key.clone();
        let items = entry.meta.item_count;
        let bytes = entry.body.len() as u64;
        let not_initialized = entry.meta.state == EntryState::DrsNotInitialized;
        let mut attempt = 1;
        let outcome = loop {
            match self.store_noting(&entry).await {
                Err(StoreError::Unavailable(e)) if attempt < WRITE_ATTEMPTS => {
                    tracing::warn!(cache_key = %key, attempt, error = %errors::chain(&*e), "cache store write failed; writing again");
                    tokio::time::sleep(WRITE_RETRY_PAUSE * 2u32.pow(attempt - 1)).await;
                    attempt += 1;
                }
                outcome => break outcome,
            }
        };
        let (outcome, replaced) = match outcome {
            Ok((stored, replaced)) => (Ok(stored), replaced),
            Err(e) => (Err(e), None),
        };
        let published = match (&self.changes, replaced) {
            (Some(publishing), Some(previous)) => {
                publish_changes(&*publishing.feed, &previous, &entry).await
            }
            _ => ports::PublishOutcome::default(),
        };
        let (status, error) = match outcome {
            Ok(Stored::Written | Stored::Extended) if not_initialized => {
                (Status::NotInitialized, None)
            }
            Ok(stored) => (
                match stored {
                    Stored::Written => Status::Refreshed,
                    Stored::Extended => Status::Unchanged,
                    Stored::Superseded => Status::Superseded,
                },
                None,
            ),
            Err(e) => {
                tracing::error!(cache_key = %key, error = %e, "cache store write failed");
                let message = errors::chain(&e);
                let failure = FailureSummary::new(FailureKind::StoreUnavailable, &message);
                (Status::Failed, Some(failure))
            }
        };
        KeySummary {
            changed: status == Status::Refreshed,
            cache_key: key,
            status,
            items,
            bytes,
            pages,
            duration_ms: elapsed_ms(started),
            error,
            event_to_cache_ms: None,
            events_published: published.published as u64,
            events_failed: published.failed as u64,
        }
    }

    /// [`ports::store_entry`], and the entry a changed body replaced, when
    /// changes are published for its type (read just before the put; a failed
    /// read only loses the events).
    async fn store_noting(
        &self,
        entry: &CacheEntry,
    ) -> Result<(Stored, Option<CacheEntry>), StoreError> {
        let key = &entry.meta.key;
        let Some(publishing) = self
            .changes
            .as_ref()
            .filter(|_| changes::has_events(key.data_type()))
        else {
            return ports::store_entry(&*self.store, entry)
                .await
                .map(|stored| (stored, None));
        };
        let previous = async {
            match publishing.reads.get(key).await {
                Ok(previous) => previous,
                Err(e) => {
                    tracing::warn!(cache_key = %key, error = %errors::chain(&e), "the body a write replaces could not be read; its change events are lost");
                    None
                }
            }
        };
        ports::store_entry_noting(&*self.store, entry, previous).await
    }

    /// Records the failed attempt on the entry, leaving its body as it is.
    async fn record_failure(
        &self,
        key: CacheKey,
        error: &SourceError,
        at: Timestamp,
        started: Instant,
    ) -> KeySummary {
        let message = errors::chain(error);
        let attempt = RefreshAttempt {
            at,
            failure: Some(RefreshFailure {
                kind: error.kind,
                message: FailureSummary::new(FailureKind::Upstream(error.kind), &message).message,
            }),
        };
        let mut failure = FailureSummary::new(FailureKind::Upstream(error.kind), &message);
        if let Err(e) = self.store.record_attempt(&key, &attempt).await {
            tracing::error!(cache_key = %key, error = %e, "cannot record the failed attempt");
            failure.message = format!("{}; not recorded: {e}", failure.message);
        }
        KeySummary {
            cache_key: key,
            status: Status::Failed,
            changed: false,
            items: 0,
            bytes: 0,
            pages: 0,
            duration_ms: elapsed_ms(started),
            error: Some(failure),
            event_to_cache_ms: None,
            events_published: 0,
            events_failed: 0,
        }
    }
}

/// The view of the records of `fetched`, serialized once for every key of the job.
fn one_view<T: serde::Serialize>(keys: &[CacheKey], fetched: Fetched<T>) -> Shaped {
    let Some(first) = keys.first() else {
        return Shaped {
            pages: fetched.pages,
            views: Vec::new(),
        };
    };
    let view = views::list(first.data_type(), first.region(), &fetched.items);
    for_every_key(keys, fetched.pages, view)
}

/// `view`, shared by every key of the job.
fn for_every_key(keys: &[CacheKey], pages: u32, view: View) -> Shaped {
    Shaped {
        pages,
        views: keys.iter().map(|k| (k.clone(), view.clone())).collect(),
    }
}

const fn is_drs(data_type: DataType) -> bool {
    matches!(
        data_type,
        DataType::DrsSourceServers
            | DataType::DrsQuotas
            | DataType::DrsAccounts
            | DataType::DrsJobs
            | DataType::DrsRecoveryInstances
            | DataType::DrsSourceNetworks
    )
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Publishes the events of what `written` changed from `previous`: nothing
/// for a first write (no baseline) or a body-less entry, and never an error:
/// a failed publish is counted in the outcome (the feed logs and retries).
async fn publish_changes(
    feed: &dyn ChangeFeed,
    previous: &CacheEntry,
    written: &CacheEntry,
) -> ports::PublishOutcome {
    if previous.meta.state != EntryState::Ready || written.meta.state != EntryState::Ready {
        return ports::PublishOutcome::default();
    }
    let events = changes::diff(&written.meta.key, &previous.body, &written.body);
    if events.is_empty() {
        return ports::PublishOutcome::default();
    }
    let outcome = feed.publish(&events).await;
    tracing::info!(
        cache_key = %written.meta.key,
        published = outcome.published,
        failed = outcome.failed,
        "change events published"
    );
    outcome
}
