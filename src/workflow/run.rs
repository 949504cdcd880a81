//! The workflow's steps in process, for the local mode: plan, refresh the
//! batches with bounded concurrency, summarize. The same planner and refresher
//! as the Lambda functions the state machine runs.

use futures::{StreamExt, stream};

use crate::{
    plan::{Planner, Trigger, summary::RunSummary},
    ports::StoreError,
    refresh::Refresher,
};

use super::{BatchResult, SummarizeInput};

/// Runs `trigger` to the end: at most `concurrency` batches refresh at once.
pub async fn run_in_process(
    planner: &Planner,
    refresher: &Refresher,
    trigger: &Trigger,
    concurrency: usize,
) -> Result<RunSummary, StoreError> {
    let plan = planner.plan(trigger).await?;
    let reason = plan.reason;
    let results: Vec<Option<BatchResult>> = stream::iter(plan.batches)
        .map(|keys| async move {
            let report = refresher.refresh(&keys, reason).await;
            Some(BatchResult::Counts(report.counts))
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    Ok(RunSummary::of(SummarizeInput { reason, results }))
}
