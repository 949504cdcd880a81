//! What the workflow's steps hand on besides batches: the plan the Map reads,
//! the counts each batch ends with, and what the run's last step totals. None
//! of it grows with the fleet: the batches travel in a plan object, the batch
//! results in the run ledger (`store.rs`).

use serde::{Deserialize, Serialize};

use crate::ports::RefreshReason;

use super::RunRef;

/// Where a run's plan object is: the JSON array of its batches, which the
/// Map's `ItemReader` reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanLocation {
    pub bucket: String,
    pub key: String,
}

/// The plan of a run, as `Plan refresh` returns it: a few hundred bytes
/// however many targets it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanOutput {
    pub reason: RefreshReason,
    /// Number of targets planned.
    pub targets: usize,
    pub skipped: usize,
    /// Due targets a scheduled tick left to the next one (its limit).
    pub deferred: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignored: Option<String>,
    /// Number of batches in the plan object.
    pub batches: usize,
    /// The plan object; `null` when nothing was planned or the plan is
    /// answered inline.
    pub plan: Option<PlanLocation>,
    /// The batches themselves, as the plan object would hold them, when the
    /// plan was asked for inline (`[]` for none); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<serde_json::Value>>,
}

/// The keys of a batch by outcome, as the refresher reports them and the Map's
/// `ResultSelector` keeps them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Counts {
    pub refreshed: u64,
    pub unchanged: u64,
    pub superseded: u64,
    pub not_initialized: u64,
    pub failed: u64,
    /// Targets another claim had taken over when the batch began: that claim
    /// refreshes them.
    pub skipped: u64,
}

impl Counts {
    pub fn is_zero(&self) -> bool {
        *self == Self::default()
    }
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, other: Self) {
        self.refreshed += other.refreshed;
        self.unchanged += other.unchanged;
        self.superseded += other.superseded;
        self.not_initialized += other.not_initialized;
        self.failed += other.failed;
        self.skipped += other.skipped;
    }
}

/// One Map iteration's result: the refresher's counts, or a caught failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BatchResult {
    Failed {
        #[serde(rename = "failedBatch")]
        failed_batch: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// Targets the batch held: none of them is counted in the key totals
        /// (the refresher recorded each key's outcome on its entry).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        targets: Option<u64>,
    },
    Counts(Counts),
}

/// The results a run's summary totals, one per batch.
#[derive(Debug, Clone, Deserialize)]
pub struct SummarizeInput {
    pub reason: RefreshReason,
    /// `None` for a batch whose result was never recorded (in process: never).
    pub results: Vec<Option<BatchResult>>,
}

/// What `Summarize` sends the planner: `{"summarize": {"reason", "execution",
/// "batches"}}`; the results are in the run ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SummarizeRequest {
    pub reason: RefreshReason,
    /// The execution's name, under which the batches recorded their results.
    pub execution: String,
    /// How many batches the plan held.
    pub batches: u64,
}

/// What `Record failure` sends the planner for a batch whose refresher
/// invocation failed for good: `{"recordFailure": {"run", "error", "targets"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailureRecord {
    pub run: RunRef,
    /// The error type Step Functions caught.
    pub error: String,
    /// Targets the batch held.
    pub targets: u64,
}
