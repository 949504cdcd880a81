//! What a refresh reports: one small summary per cache key, never the payload
//! (Step Functions caps state data at 256 KB).

use std::fmt;

use serde::Serialize;

use crate::{
    domain::{CacheKey, RefreshErrorKind},
    invocation::ErrorType,
    text,
    workflow::Counts,
};

/// Longest error message kept in a summary.
const MAX_MESSAGE_CHARS: usize = 300;

/// How one key's refresh ended, named in snake case (`not_initialized`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Status {
    /// A new body was written.
    Refreshed,
    /// Upstream returned the body already stored: only its freshness moved.
    Unchanged,
    /// A refresh that started later had already written this key: kept.
    Superseded,
    /// DRS is not initialized in this account and region: stored as a state.
    NotInitialized,
    Failed,
}

impl Status {
    /// The cache holds what upstream answered (a new body, the same body with
    /// its freshness moved, or the not-initialized state).
    pub const fn reached_cache(self) -> bool {
        matches!(
            self,
            Self::Refreshed | Self::Unchanged | Self::NotInitialized
        )
    }
}

/// Why a key could not be refreshed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    Upstream(RefreshErrorKind),
    /// The cache store refused or could not be reached.
    StoreUnavailable,
}

impl FailureKind {
    /// The error type a batch failing with this kind raises.
    pub fn error_type(self) -> ErrorType {
        match self {
            Self::Upstream(kind) => kind.into(),
            Self::StoreUnavailable => ErrorType::StoreUnavailable,
        }
    }

    pub fn as_str(self) -> &'static str {
        self.error_type().into()
    }

    /// Worth retrying soon: the same request may succeed.
    pub const fn is_transient(self) -> bool {
        matches!(
            self,
            Self::Upstream(RefreshErrorKind::Throttled | RefreshErrorKind::Upstream)
                | Self::StoreUnavailable
        )
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for FailureKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailureSummary {
    pub kind: FailureKind,
    pub message: String,
}

impl FailureSummary {
    pub fn new(kind: FailureKind, message: &str) -> Self {
        Self {
            kind,
            message: text::truncated(message, MAX_MESSAGE_CHARS),
        }
    }
}

/// The outcome of refreshing one cache key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeySummary {
    #[serde(serialize_with = "text::display")]
    pub cache_key: CacheKey,
    pub status: Status,
    /// The stored body changed.
    pub changed: bool,
    /// Records in the body (servers, subnets, ...).
    pub items: u64,
    /// Size of the JSON body.
    pub bytes: u64,
    /// Upstream pages read by the fetch that fed this key.
    pub pages: u32,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<FailureSummary>,
    /// For a run an event triggered: milliseconds from the change to this key
    /// showing it (written, or confirmed unchanged).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_to_cache_ms: Option<u64>,
    /// Change events the write's difference published, and those given up
    /// on after the feed's retries.
    #[serde(skip_serializing_if = "is_zero")]
    pub events_published: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub events_failed: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The outcome of a batch: counts, and one summary per key written or attempted
/// (a `drs-quotas` target also writes `drs-source-servers` from the same fetch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchReport {
    #[serde(flatten)]
    pub counts: Counts,
    pub results: Vec<KeySummary>,
}

impl BatchReport {
    pub fn new(results: Vec<KeySummary>) -> Self {
        let mut report = Self {
            counts: Counts::default(),
            results,
        };
        report.counts = report.counts_except(&std::collections::HashSet::new());
        report
    }

    /// The counts of every key but those in `left_out`.
    pub fn counts_except(&self, left_out: &std::collections::HashSet<&CacheKey>) -> Counts {
        let mut counts = Counts::default();
        for r in self
            .results
            .iter()
            .filter(|r| !left_out.contains(&r.cache_key))
        {
            match r.status {
                Status::Refreshed => counts.refreshed += 1,
                Status::Unchanged => counts.unchanged += 1,
                Status::Superseded => counts.superseded += 1,
                Status::NotInitialized => counts.not_initialized += 1,
                Status::Failed => counts.failed += 1,
            }
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(status: Status, error: Option<FailureKind>) -> KeySummary {
        KeySummary {
            cache_key: CacheKey::parse("drs-accounts#us-east-1#111122223333").unwrap(),
            status,
            changed: false,
            items: 0,
            bytes: 0,
            pages: 1,
            duration_ms: 3,
            error: error.map(|k| FailureSummary::new(k, "boom")),
            event_to_cache_ms: None,
            events_published: 0,
            events_failed: 0,
        }
    }

    #[test]
    fn counts_add_up_by_status_and_leave_out_what_is_asked() {
        let report = BatchReport::new(vec![
            summary(Status::Refreshed, None),
            summary(
                Status::Failed,
                Some(FailureKind::Upstream(RefreshErrorKind::AccessDenied)),
            ),
            summary(Status::Unchanged, None),
        ]);
        assert_eq!(report.counts.refreshed, 1);
        assert_eq!(report.counts.unchanged, 1);
        assert_eq!(report.counts.failed, 1);
        let key = report.results[0].cache_key.clone();
        let all_of_it = std::collections::HashSet::from([&key]);
        // Every summary here names the same key: leaving it out leaves nothing.
        assert_eq!(report.counts_except(&all_of_it), Counts::default());
    }

    #[test]
    fn long_messages_are_cut_and_the_summary_serializes_small() {
        let long = "x".repeat(5000);
        let f = FailureSummary::new(FailureKind::StoreUnavailable, &long);
        assert_eq!(f.message.len(), MAX_MESSAGE_CHARS + 3);
        let json =
            serde_json::to_value(summary(Status::Failed, Some(FailureKind::StoreUnavailable)))
                .unwrap();
        assert_eq!(json["cacheKey"], "drs-accounts#us-east-1#111122223333");
        assert_eq!(json["status"], "failed");
        assert_eq!(json["error"]["kind"], "StoreUnavailable");
        assert_eq!(json["durationMs"], 3);
    }
}
