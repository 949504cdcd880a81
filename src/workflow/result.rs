//! What the workflow's steps hand on besides batches: the plan the Map reads,
//! the counts each batch ends with, and what the run's last step totals.

use serde::{Deserialize, Serialize};

use crate::ports::RefreshReason;

use super::Batch;

/// The plan of a run, as `Plan refresh` returns it and the Map reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanOutput {
    pub reason: RefreshReason,
    /// Number of targets planned.
    pub targets: usize,
    pub skipped: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignored: Option<String>,
    /// One refresher input per batch.
    pub batches: Vec<Batch>,
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
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, other: Self) {
        self.refreshed += other.refreshed;
        self.unchanged += other.unchanged;
        self.superseded += other.superseded;
        self.not_initialized += other.not_initialized;
        self.failed += other.failed;
    }
}

/// One Map iteration's result: the refresher's counts, or a caught failure.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum BatchResult {
    Failed {
        #[serde(rename = "failedBatch")]
        failed_batch: bool,
        #[serde(default)]
        error: Option<String>,
        /// Targets the batch held: none of them is counted in the key totals
        /// (the refresher recorded each key's outcome on its entry).
        #[serde(default)]
        targets: Option<u64>,
    },
    Counts(Counts),
}

/// What `Summarize` receives.
#[derive(Debug, Clone, Deserialize)]
pub struct SummarizeInput {
    pub reason: RefreshReason,
    /// A Distributed Map gives `null` for a child it gave up on.
    pub results: Vec<Option<BatchResult>>,
}
