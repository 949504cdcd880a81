//! The capabilities the use cases need, in domain types. Adapters implement them;
//! no AWS type appears here.

use async_trait::async_trait;

use std::time::Duration;

use crate::domain::{
    AccountId, CacheEntry, CacheKey, DataType, EntryMeta, Extension, RefreshAttempt,
    RefreshErrorKind, Region, Timestamp, Version,
    inventory::{
        InstanceProfile, InstanceType, Job, RecoveryInstance, SecurityGroup, SourceNetwork,
        SourceServer, StagingAccount, Subnet,
    },
};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where cache entries live, in three capabilities so that each function holds
/// (and links) only what it does: the reader reads ([`CacheReads`]), the
/// refresher writes ([`CacheWrites`]) and the planner lists ([`CacheListing`]).
/// Every write is conditional on the version, so an older refresh never
/// replaces a newer one, and nothing but `put` changes a body.
pub trait CacheStore: CacheReads + CacheWrites + CacheListing {}

impl<T: CacheReads + CacheWrites + CacheListing + ?Sized> CacheStore for T {}

/// Reading entries: all the reader does with the cache.
#[async_trait]
pub trait CacheReads: Send + Sync {
    /// The entry under `key`, body included. A body stored in several chunks is
    /// returned whole and from one version, never mixed.
    async fn get(&self, key: &CacheKey) -> Result<Option<CacheEntry>, StoreError>;
}

/// Writing entries: all the refresher does with the cache.
#[async_trait]
pub trait CacheWrites: Send + Sync {
    /// Stores `entry` unless the stored version is the same or newer.
    async fn put(&self, entry: &CacheEntry) -> Result<PutOutcome, StoreError>;

    /// Moves the freshness of an unchanged body forward without rewriting it.
    /// The rules, in order:
    ///
    /// 1. If the stored version is the same as or newer than `ext.version`:
    ///    `Superseded { stored }`, whatever the stored etag or state.
    /// 2. Else, if there is no entry, the stored etag differs from `ext.etag`, or
    ///    the entry is `NoData`: `Changed`, and nothing is written.
    /// 3. Else `Extended`: `version`, `fetched_at`, `expires_at`,
    ///    `stale_until` and `figures` take the values of `ext`; the body, `created_at`, `state`
    ///    and `item_count` are kept; `last_attempt` becomes
    ///    `Some(RefreshAttempt { at: ext.fetched_at, failure: None })`, so a
    ///    successful refresh clears a recorded failure.
    async fn extend(&self, key: &CacheKey, ext: &Extension) -> Result<ExtendOutcome, StoreError>;

    /// Records a refresh attempt (and its failure) on the entry, creating a
    /// body-less `NoData` entry if there is none. Never changes a body, version or
    /// freshness, and never replaces a later attempt with an earlier one.
    async fn record_attempt(
        &self,
        key: &CacheKey,
        attempt: &RefreshAttempt,
    ) -> Result<(), StoreError>;
}

/// What [`store_entry`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// The body was written.
    Written,
    /// The stored body was the same: only its freshness moved.
    Extended,
    /// The store holds this version or a newer one, which was kept.
    Superseded,
}

/// Writes `entry` the cheap way: extends the stored body if it is the same,
/// else puts the new one; never replaces a newer version.
pub async fn store_entry(
    store: &dyn CacheWrites,
    entry: &CacheEntry,
) -> Result<Stored, StoreError> {
    store_entry_noting(store, entry, async { None::<()> })
        .await
        .map(|(stored, _)| stored)
}

/// [`store_entry`], running `before_put` only when the body changed, just
/// before the put, and answering its output with a `Written` outcome (`None`
/// otherwise): what a caller needs to know of the entry the put replaces.
pub async fn store_entry_noting<T>(
    store: &dyn CacheWrites,
    entry: &CacheEntry,
    before_put: impl std::future::Future<Output = Option<T>>,
) -> Result<(Stored, Option<T>), StoreError> {
    Ok(
        match store
            .extend(&entry.meta.key, &Extension::of(&entry.meta))
            .await?
        {
            ExtendOutcome::Extended => (Stored::Extended, None),
            ExtendOutcome::Superseded { .. } => (Stored::Superseded, None),
            ExtendOutcome::Changed => {
                let noted = before_put.await;
                match store.put(entry).await? {
                    PutOutcome::Written => (Stored::Written, noted),
                    PutOutcome::Superseded { .. } => (Stored::Superseded, None),
                }
            }
        },
    )
}

/// Listing entries' metadata: all the planner does with the cache.
#[async_trait]
pub trait CacheListing: Send + Sync {
    /// The metadata of every entry of `data_type`, a page at a time, oldest
    /// `created_at` first. Pass the returned cursor to get the next page.
    async fn list(
        &self,
        data_type: DataType,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<MetaPage, StoreError>;
}

/// The metadata of every stored entry of `types`, listed `page` at a time.
pub async fn list_all(
    store: &dyn CacheListing,
    types: &[DataType],
    page: u32,
) -> Result<std::collections::HashMap<CacheKey, EntryMeta>, StoreError> {
    let mut stored = std::collections::HashMap::new();
    for data_type in types {
        let mut cursor: Option<String> = None;
        loop {
            let listed = store.list(*data_type, cursor.as_deref(), page).await?;
            stored.extend(listed.entries.into_iter().map(|m| (m.key.clone(), m)));
            match listed.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    Ok(stored)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Written,
    /// The store holds this version or a newer one, which was kept.
    Superseded {
        stored: Version,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtendOutcome {
    Extended,
    /// The store holds this version or a newer one, which was kept.
    Superseded {
        stored: Version,
    },
    /// No entry, or one with another body: the caller must `put` the body.
    Changed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaPage {
    pub entries: Vec<EntryMeta>,
    /// Cursor of the next page; `None` on the last page.
    pub next: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached or refused the request; retrying may work.
    #[error("cache store unavailable")]
    Unavailable(#[source] BoxError),
    /// What is stored cannot be read back; it is left as it is.
    #[error("cache entry {key} is unreadable: {reason}")]
    Corrupt { key: String, reason: String },
    /// A list cursor that this store did not hand out.
    #[error("invalid list cursor")]
    InvalidCursor,
}

/// Why a refresh is asked for, named in lower case (`miss`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum RefreshReason {
    Schedule,
    Event,
    /// An operator's request, and a batch that names no reason.
    #[default]
    Manual,
    /// A reader found the target missing or stale.
    Miss,
}

impl RefreshReason {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// What an invalidation refreshes: every configured target matching the parts
/// given (none given: everything). On the wire `{"dataType", "region",
/// "accountId"}`, each optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Invalidation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_type: Option<DataType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<Region>,
    #[serde(default, rename = "accountId", skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountId>,
}

impl std::fmt::Display for Invalidation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let part = |p: Option<&str>| p.unwrap_or("*").to_owned();
        write!(
            f,
            "{}#{}#{}",
            part(self.data_type.map(DataType::as_str)),
            part(self.region.as_ref().map(Region::as_str)),
            part(self.account.as_ref().map(AccountId::as_str)),
        )
    }
}

/// Asks the refresh side to refresh a target soon. Requests for the same target
/// close together may be collapsed into one refresh.
#[async_trait]
pub trait RefreshTrigger: Send + Sync {
    async fn request_refresh(
        &self,
        key: &CacheKey,
        reason: RefreshReason,
    ) -> Result<(), RefreshRequestError>;

    /// Asks for a refresh of every configured target `invalidation` matches.
    async fn request_invalidation(
        &self,
        invalidation: &Invalidation,
    ) -> Result<(), RefreshRequestError>;
}

/// Asks the refresh side for runs of given targets: the refresher's follow-up
/// runs of targets changed while it held them.
#[async_trait]
pub trait RunRequests: Send + Sync {
    /// Asks for a new run refreshing exactly `keys`: never collapsed into a run
    /// already under way, which may have fetched them before the change.
    async fn request_targets(
        &self,
        keys: &[CacheKey],
        reason: RefreshReason,
    ) -> Result<(), RefreshRequestError>;
}

#[derive(Debug, thiserror::Error)]
#[error("refresh request for {key} failed")]
pub struct RefreshRequestError {
    /// The cache key, or the invalidation, asked for.
    pub key: String,
    #[source]
    pub source: BoxError,
}

/// Where an upstream fetch runs: one account in one region.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccountRegion {
    pub account: AccountId,
    pub region: Region,
}

impl std::fmt::Display for AccountRegion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.account, self.region)
    }
}

/// Every record of one upstream listing, and how many pages it took.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched<T> {
    pub items: Vec<T>,
    pub pages: u32,
}

/// AWS Elastic Disaster Recovery, read through every page.
#[async_trait]
pub trait DrsSource: Send + Sync {
    async fn source_servers(
        &self,
        scope: &AccountRegion,
    ) -> Result<Fetched<SourceServer>, SourceError>;
    async fn staging_accounts(
        &self,
        scope: &AccountRegion,
    ) -> Result<Fetched<StagingAccount>, SourceError>;
    /// The jobs created at or after `since`.
    async fn jobs(
        &self,
        scope: &AccountRegion,
        since: Timestamp,
    ) -> Result<Fetched<Job>, SourceError>;
    async fn recovery_instances(
        &self,
        scope: &AccountRegion,
    ) -> Result<Fetched<RecoveryInstance>, SourceError>;
    async fn source_networks(
        &self,
        scope: &AccountRegion,
    ) -> Result<Fetched<SourceNetwork>, SourceError>;
}

/// Amazon EC2, read through every page.
#[async_trait]
pub trait Ec2Source: Send + Sync {
    async fn subnets(&self, scope: &AccountRegion) -> Result<Fetched<Subnet>, SourceError>;
    async fn security_groups(
        &self,
        scope: &AccountRegion,
    ) -> Result<Fetched<SecurityGroup>, SourceError>;
    async fn instance_types(
        &self,
        scope: &AccountRegion,
    ) -> Result<Fetched<InstanceType>, SourceError>;
}

/// AWS IAM, which is global: one listing per account serves every region.
#[async_trait]
pub trait IamSource: Send + Sync {
    async fn instance_profiles(
        &self,
        account: &AccountId,
    ) -> Result<Fetched<InstanceProfile>, SourceError>;
}

/// An upstream call that failed, classified into a kind the workflow acts on.
#[derive(Debug, thiserror::Error)]
#[error("{operation} failed: {kind}: {message}")]
pub struct SourceError {
    pub kind: RefreshErrorKind,
    /// The upstream operation, such as `DescribeSourceServers`.
    pub operation: &'static str,
    pub message: String,
    /// How long the upstream asked callers to wait (`Retry-After`), if it did.
    pub retry_after: Option<Duration>,
    #[source]
    pub source: Option<BoxError>,
}

/// Leases on targets, so that no target is refreshed twice at once and a burst
/// of triggers means one fetch in flight and at most one after it.
///
/// A planner claims the targets of a run; the refresher `begin`s each round of
/// its batch under that claim (renewing the lease for as long as the round may
/// take and recording when its fetch started) and `release`s the targets it is
/// done with. A lease that was begun and never released is the record of a
/// refresh that died: a scheduled claim leaves its target alone for a backoff
/// past the lease's end.
/// The planner's side of the leases ([`RefreshLeases`]): claiming targets.
#[async_trait]
pub trait LeaseClaims: Send + Sync {
    /// Claims each of `keys` until `until` under a new claim id, unless a lease
    /// on it runs past `now` (or, by `rule`, a refresh of it died recently).
    /// Returns the claim: its id and the keys it holds, in the order given;
    /// concurrent calls never both claim one key. A call that fails leaves no
    /// claim of its own in place (the DynamoDB store releases what it wrote,
    /// best effort; a claim it could not release runs out at `until`).
    async fn claim(
        &self,
        keys: &[CacheKey],
        now: Timestamp,
        until: Timestamp,
        rule: ClaimRule,
    ) -> Result<Claim, StoreError>;
}

/// The refresher's side of the leases: beginning and releasing what a claim
/// holds.
#[async_trait]
pub trait RefreshLeases: Send + Sync {
    /// Starts a fetch of `keys` under `claim`: each lease that `claim` holds,
    /// or that no live lease holds, becomes `claim`'s until `until`, with `now`
    /// as the start of its fetch and no pending mark (the fetch that begins
    /// answers every change marked before it). Returns the keys `claim` now
    /// holds, in the order given; a key another claim took over is left out.
    async fn begin(
        &self,
        keys: &[CacheKey],
        claim: &ClaimId,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<CacheKey>, StoreError>;

    /// Ends `claim`'s leases on `keys` (a key `claim` no longer holds is left
    /// as it is). Returns the keys a change was recorded for while `claim`
    /// held them ([`ClaimRule::Demand`]): each needs one more refresh.
    async fn release(
        &self,
        keys: &[CacheKey],
        claim: &ClaimId,
    ) -> Result<Vec<CacheKey>, StoreError>;
}

/// The id of one claim, carried by the batches it planned (16 hex digits).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct ClaimId(pub String);

impl std::fmt::Display for ClaimId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a claim took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub id: ClaimId,
    pub keys: Vec<CacheKey>,
}

/// How a claim treats a key another lease holds, or held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimRule {
    /// A scheduled tick: a key whose lease was begun and never released (its
    /// refresh died) is not claimed until `died_backoff` past that lease's end,
    /// as a failed refresh waits out its backoff.
    Schedule { died_backoff: Duration },
    /// A change or a request: a key whose lease has ended is claimed whatever
    /// became of its refresh. With `mark_pending`, a key held by a live lease
    /// is marked, and its holder asks for one more refresh when it releases it
    /// (unless a fetch began after the mark): a change after a fetch started is
    /// never lost, and any number of marks make one refresh.
    Demand { mark_pending: bool },
}

/// A cache store that also keeps refresh leases and demand, as both stores
/// do.
pub trait CacheStorage: CacheStore + LeaseClaims + RefreshLeases + DemandNotes + DemandLog {}

impl<T: CacheStore + LeaseClaims + RefreshLeases + DemandNotes + DemandLog + ?Sized> CacheStorage
    for T
{
}

/// The change feed: where the refresher tells consumers what a refresh changed.
/// Publishing is best effort and never fails a cache write: an event that
/// could not be published, after the feed's own retries, is counted (and
/// logged by the feed), not returned as an error.
#[async_trait]
pub trait ChangeFeed: Send + Sync {
    /// Publishes `events`; how many were published and how many were given up
    /// on (`published + failed == events.len()`). No events: nothing is sent.
    async fn publish(&self, events: &[crate::domain::changes::ChangeEvent]) -> PublishOutcome;
}

/// What [`ChangeFeed::publish`] did with the events it was given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublishOutcome {
    /// Events the feed accepted.
    pub published: usize,
    /// Events given up on: refused, too large, or still failing after the
    /// retries.
    pub failed: usize,
}

/// The feed of a deployment without an event bus: publishes nothing and counts
/// nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoChangeFeed;

#[async_trait]
impl ChangeFeed for NoChangeFeed {
    async fn publish(&self, _events: &[crate::domain::changes::ChangeEvent]) -> PublishOutcome {
        PublishOutcome::default()
    }
}

/// Where readers note which keys they read, for demand-aware refresh. A note
/// is a hint: one lost costs at most a key refreshed later, never data, so
/// readers write notes off their requests' path and drop them when the store
/// fails.
#[async_trait]
pub trait DemandNotes: Send + Sync {
    /// Records each read (key, when): a key's latest read is kept.
    async fn record_reads(
        &self,
        reads: &[(CacheKey, crate::domain::Timestamp)],
    ) -> Result<(), StoreError>;
}

/// Demand as the planner works with it: the reads readers noted, and the
/// accounts an operator or a DRS launch warmed.
#[async_trait]
pub trait DemandLog: Send + Sync {
    /// Keeps every key of `account` in demand until `until` (or later, if
    /// it already is).
    async fn warm(
        &self,
        account: crate::domain::AccountId,
        until: crate::domain::Timestamp,
    ) -> Result<(), StoreError>;

    /// The reads recorded for keys of `types`, and the accounts warm at
    /// `now`.
    async fn demand(
        &self,
        types: &[DataType],
        now: crate::domain::Timestamp,
    ) -> Result<crate::domain::Demand, StoreError>;
}

#[cfg(test)]
mod tests {
    use strum::VariantArray;

    use super::*;

    #[test]
    fn reasons_are_named_in_lower_case_and_parse_only_by_that_name() {
        for &reason in RefreshReason::VARIANTS {
            let wire = serde_json::to_value(reason).unwrap();
            assert_eq!(wire, reason.as_str());
            assert_eq!(
                serde_json::from_value::<RefreshReason>(wire).unwrap(),
                reason
            );
        }
        assert_eq!(RefreshReason::Miss.as_str(), "miss");
        assert!(serde_json::from_value::<RefreshReason>("Event".into()).is_err());
        assert_eq!(RefreshReason::default(), RefreshReason::Manual);
    }
}
