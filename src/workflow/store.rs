//! Where a run keeps what would otherwise grow its state with the fleet: the
//! plan (every batch, read by the Map's `ItemReader`) and each batch's result
//! (read back by `Summarize`). Adapters implement both.

use async_trait::async_trait;

use crate::ports::StoreError;

use super::{BatchResult, PlanLocation, RunRef};

/// Plan objects: one JSON array of batches per run.
#[async_trait]
pub trait PlanStore: Send + Sync {
    /// Stores `body`, a JSON array of batches, as a new plan object.
    async fn put(&self, body: Vec<u8>) -> Result<PlanLocation, StoreError>;
}

/// Recording a batch's result: all the refresher does with the ledger.
#[async_trait]
pub trait RunRecords: Send + Sync {
    /// Records the result of the batch `run`; recording one again replaces it.
    async fn record(&self, run: &RunRef, result: &BatchResult) -> Result<(), StoreError>;
}

/// The results of a run's batches, each recorded once under its place in the
/// run, kept until the run has long ended.
#[async_trait]
pub trait RunLedger: RunRecords {
    /// The results of batches `0..batches` of `execution`, in order; `None`
    /// for one never recorded.
    async fn results(
        &self,
        execution: &str,
        batches: u64,
    ) -> Result<Vec<Option<BatchResult>>, StoreError>;
}
