//! The workflow's steps in process, for the local mode: plan, refresh the
//! batches with bounded concurrency, summarize. The same planner and refresher
//! as the Lambda functions the state machine runs.

use futures::{StreamExt, stream};

use crate::{ports::StoreError, refresh::Refresher};

use super::{
    Planner, batches,
    summary::{BatchResult, Counts, RunSummary, SummarizeInput},
    trigger::Trigger,
};

/// Runs `trigger` to the end: at most `concurrency` batches refresh at once.
pub async fn run_in_process(
    planner: &Planner,
    refresher: &Refresher,
    trigger: &Trigger,
    concurrency: usize,
) -> Result<RunSummary, StoreError> {
    let plan = planner.plan(trigger).await?;
    let config = planner.config();
    let batches = batches(&plan.targets, config.home, config.batch_size);
    let results: Vec<Option<BatchResult>> = stream::iter(batches)
        .map(|batch| async move {
            let report = refresher.refresh(&batch, plan.reason).await;
            Some(BatchResult::Counts(Counts {
                refreshed: report.refreshed as u64,
                unchanged: report.unchanged as u64,
                superseded: report.superseded as u64,
                not_initialized: report.not_initialized as u64,
                failed: report.failed as u64,
            }))
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    Ok(RunSummary::of(SummarizeInput {
        reason: plan.reason.as_str().to_owned(),
        results,
    }))
}
