use std::{fmt, str::FromStr, time::Duration};

use bytes::Bytes;

use super::{CacheKey, Clock, Figures, Freshness, Timestamp, TtlPolicy, UnknownName, by_name};

/// Orders the writes of one key: taken when a fetch starts (microseconds since the
/// Unix epoch), so a refresh that started later always carries the larger version,
/// whichever finishes first. A store never lets a smaller version replace a larger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(u64);

impl Version {
    /// The version of a fetch starting now, as `clock` tells the time.
    pub fn at_fetch_start(clock: &dyn Clock) -> Self {
        Self(clock.unix_micros())
    }

    pub const fn from_raw(raw: u64) -> Self {
        Self(raw)
    }

    pub const fn get(self) -> u64 {
        self.0
    }
}

/// A content hash of a cached body: equal bodies have equal tags.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ETag(Box<str>);

impl ETag {
    /// The tag of `body`: 128 bits of its BLAKE3 hash, in hex.
    pub fn of(body: &[u8]) -> Self {
        let hash = blake3::hash(body);
        let hex = hash.to_hex();
        Self(hex[..32].into())
    }

    /// A tag read back from a store.
    pub fn from_stored(raw: &str) -> Self {
        Self(raw.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ETag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What an entry holds, stored by its SCREAMING_SNAKE name (`DRS_NOT_INITIALIZED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::VariantArray)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum EntryState {
    /// A body fetched from upstream.
    Ready,
    /// DRS answered that it is not initialized in this account and region: a
    /// state to report, not a failure.
    DrsNotInitialized,
    /// Refreshes were attempted but none has succeeded yet: only the attempt is
    /// recorded.
    NoData,
}

impl EntryState {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl FromStr for EntryState {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        by_name(s)
    }
}

/// The stable kinds a refresh failure is classified into, named as the
/// workflow's Retry and Catch match them (`Throttled`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    strum::IntoStaticStr,
    strum::Display,
    strum::VariantArray,
)]
pub enum RefreshErrorKind {
    Throttled,
    AccessDenied,
    NotInitialized,
    RegionNotEnabled,
    Upstream,
}

impl RefreshErrorKind {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// What the kind means, in words fit for any caller: unlike the upstream's
    /// own message, it names no role, account or request.
    pub fn description(self) -> &'static str {
        match self {
            Self::Throttled => "the upstream API refused the refresh for its rate limit",
            Self::AccessDenied => "the refresher was denied access to this account's data",
            Self::NotInitialized => "DRS is not initialized in this account and region",
            Self::RegionNotEnabled => "the region is not enabled for this account",
            Self::Upstream => "the upstream API failed or could not be reached",
        }
    }
}

impl FromStr for RefreshErrorKind {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        by_name(s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshFailure {
    pub kind: RefreshErrorKind,
    pub message: String,
}

/// The last time a refresh of a key was attempted, and how it failed if it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshAttempt {
    pub at: Timestamp,
    pub failure: Option<RefreshFailure>,
}

/// Everything known about an entry except its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryMeta {
    pub key: CacheKey,
    pub version: Version,
    pub etag: ETag,
    pub state: EntryState,
    /// When this version was written.
    pub created_at: Timestamp,
    /// When the data was fetched from upstream.
    pub fetched_at: Timestamp,
    /// End of freshness.
    pub expires_at: Timestamp,
    /// End of the stale window: after this the entry is not served (and DynamoDB
    /// may delete it).
    pub stale_until: Timestamp,
    /// Number of records in the body (servers, subnets, ...).
    pub item_count: u64,
    /// Counts of the body beyond `item_count` that the fleet capacity sums.
    pub figures: Figures,
    pub last_attempt: Option<RefreshAttempt>,
}

impl EntryMeta {
    pub fn freshness(&self, now: Timestamp) -> Freshness {
        Freshness::of(now, self.expires_at, self.stale_until)
    }

    /// Seconds since the data was fetched.
    pub fn age(&self, now: Timestamp) -> u64 {
        now.secs_since(self.fetched_at)
    }

    /// Whether at `now` the data expired less than `keep` ago: within the
    /// interval past its freshness in which the scheduled ticks refresh a key
    /// they keep ahead (`keep` = the schedule interval and its margin).
    pub fn expired_within(&self, keep: Duration, now: Timestamp) -> bool {
        now < self.expires_at.plus(keep)
    }
}

/// A cached body with its metadata. The body is the JSON document the reader
/// serves for the unfiltered request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    pub meta: EntryMeta,
    pub body: Bytes,
}

impl CacheEntry {
    /// A freshly fetched body, fresh from `fetched_at` as `policy` says.
    pub fn fetched(
        key: CacheKey,
        version: Version,
        body: Bytes,
        item_count: u64,
        fetched_at: Timestamp,
        policy: TtlPolicy,
    ) -> Self {
        Self::with_state(
            key,
            version,
            EntryState::Ready,
            body,
            item_count,
            fetched_at,
            policy,
        )
    }

    /// A target where DRS is not initialized: no body, but a state the reader
    /// reports, with the same freshness as data would have.
    pub fn drs_not_initialized(
        key: CacheKey,
        version: Version,
        fetched_at: Timestamp,
        policy: TtlPolicy,
    ) -> Self {
        let state = EntryState::DrsNotInitialized;
        Self::with_state(key, version, state, Bytes::new(), 0, fetched_at, policy)
    }

    /// This entry with `figures` recorded beside its body.
    #[must_use]
    pub fn with_figures(mut self, figures: Figures) -> Self {
        self.meta.figures = figures;
        self
    }

    fn with_state(
        key: CacheKey,
        version: Version,
        state: EntryState,
        body: Bytes,
        item_count: u64,
        fetched_at: Timestamp,
        policy: TtlPolicy,
    ) -> Self {
        let expires_at = fetched_at.plus(policy.freshness);
        Self {
            meta: EntryMeta {
                key,
                version,
                etag: ETag::of(&body),
                state,
                created_at: fetched_at,
                fetched_at,
                expires_at,
                stale_until: expires_at.plus(policy.stale_window),
                item_count,
                figures: Figures::default(),
                last_attempt: Some(RefreshAttempt {
                    at: fetched_at,
                    failure: None,
                }),
            },
            body,
        }
    }
}

/// A refresh that fetched exactly the stored body again: only its freshness moves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    pub version: Version,
    pub etag: ETag,
    pub fetched_at: Timestamp,
    pub expires_at: Timestamp,
    pub stale_until: Timestamp,
    /// The figures of the body, recorded again: an entry stored before
    /// figures were recorded gains them without its body being rewritten.
    pub figures: Figures,
}

impl Extension {
    pub fn new(version: Version, etag: ETag, fetched_at: Timestamp, policy: TtlPolicy) -> Self {
        let expires_at = fetched_at.plus(policy.freshness);
        Self {
            version,
            etag,
            fetched_at,
            expires_at,
            stale_until: expires_at.plus(policy.stale_window),
            figures: Figures::default(),
        }
    }

    /// The extension that gives a stored body the version and freshness of `meta`.
    pub fn of(meta: &EntryMeta) -> Self {
        Self {
            version: meta.version,
            etag: meta.etag.clone(),
            fetched_at: meta.fetched_at,
            expires_at: meta.expires_at,
            stale_until: meta.stale_until,
            figures: meta.figures,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn etag_depends_only_on_content() {
        assert_eq!(ETag::of(b"{\"a\":1}"), ETag::of(b"{\"a\":1}"));
        assert_ne!(ETag::of(b"{\"a\":1}"), ETag::of(b"{\"a\":2}"));
        assert_eq!(ETag::of(b"x").as_str().len(), 32);
    }

    #[test]
    fn a_fetched_entry_is_fresh_for_its_policy_then_stale_for_its_window() {
        let policy = TtlPolicy {
            freshness: Duration::from_secs(120),
            stale_window: Duration::from_secs(3600),
        };
        let key = CacheKey::parse("drs-quotas#us-east-1#123456789012").unwrap();
        let at = Timestamp::from_unix_secs(1_000);
        let e = CacheEntry::fetched(
            key,
            Version::from_raw(1),
            Bytes::from_static(b"{}"),
            0,
            at,
            policy,
        );
        assert_eq!(e.meta.expires_at.unix_secs(), 1_120);
        assert_eq!(e.meta.stale_until.unix_secs(), 4_720);
    }

    #[test]
    fn stored_names_round_trip() {
        use strum::VariantArray;
        for &s in EntryState::VARIANTS {
            assert_eq!(s.as_str().parse(), Ok(s));
        }
        assert_eq!(
            EntryState::DrsNotInitialized.as_str(),
            "DRS_NOT_INITIALIZED"
        );
        for &k in RefreshErrorKind::VARIANTS {
            assert_eq!(k.as_str().parse(), Ok(k));
        }
        assert_eq!("Throttled".parse(), Ok(RefreshErrorKind::Throttled));
        assert!("Other".parse::<RefreshErrorKind>().is_err());
    }
}
