//! The workflow's steps in process, for the local mode: plan, refresh the
//! batches with bounded concurrency (each round by round, as the Map's
//! iterations do), summarize, and run the follow-ups the batches ask for. The
//! same planner and refresher as the Lambda functions the state machine runs.

use futures::{StreamExt, stream};

use crate::{
    domain::CacheKey,
    plan::{Planner, Trigger, summary::RunSummary},
    ports::{RefreshReason, StoreError},
    refresh::Refresher,
};

use super::{Batch, BatchResult, SummarizeInput};

/// Runs `trigger` to the end: at most `concurrency` batches refresh at once;
/// `event_time` is when the change behind an event's run happened (see
/// [`Batch::event_time`]).
/// The targets a change arrived for while they were held are refreshed in a
/// run of their own right after, as the refresher asks in AWS (each such run
/// is logged); the summary returned is the trigger's own run's.
pub async fn run_in_process(
    planner: &Planner,
    refresher: &Refresher,
    trigger: &Trigger,
    event_time: Option<u64>,
    concurrency: usize,
) -> Result<RunSummary, StoreError> {
    let (summary, mut follow_up) =
        run_once(planner, refresher, trigger, event_time, concurrency).await?;
    while !follow_up.is_empty() {
        let again = Trigger::Targets {
            reason: RefreshReason::Event,
            keys: follow_up,
        };
        let (more, next) = run_once(planner, refresher, &again, event_time, concurrency).await?;
        tracing::info!(
            refreshed = more.keys.refreshed,
            unchanged = more.keys.unchanged,
            failed = more.keys.failed,
            "follow-up run of changed targets done"
        );
        follow_up = next;
    }
    Ok(summary)
}

async fn run_once(
    planner: &Planner,
    refresher: &Refresher,
    trigger: &Trigger,
    event_time: Option<u64>,
    concurrency: usize,
) -> Result<(RunSummary, Vec<CacheKey>), StoreError> {
    let plan = planner.plan(trigger).await?;
    let reason = plan.reason;
    let outcomes: Vec<Result<(BatchResult, Vec<CacheKey>), StoreError>> =
        stream::iter(plan.batch_inputs(event_time).into_iter().zip(plan.batches))
            .map(|(batch, keys)| run_batch(refresher, batch, keys))
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
    let mut results = Vec::with_capacity(outcomes.len());
    let mut follow_up = Vec::new();
    for outcome in outcomes {
        let (result, more) = outcome?;
        results.push(Some(result));
        follow_up.extend(more);
    }
    Ok((
        RunSummary::of(SummarizeInput { reason, results }),
        follow_up,
    ))
}

/// Every round of one batch, waiting between them as the workflow does.
async fn run_batch(
    refresher: &Refresher,
    mut batch: Batch,
    mut keys: Vec<CacheKey>,
) -> Result<(BatchResult, Vec<CacheKey>), StoreError> {
    let mut follow_up = Vec::new();
    loop {
        let outcome = refresher.refresh_round(&batch, keys).await?;
        follow_up.extend(outcome.follow_up);
        let Some(retry) = outcome.retry else {
            return Ok((BatchResult::Counts(outcome.counts), follow_up));
        };
        tokio::time::sleep(retry.wait).await;
        (batch, keys) = (retry.batch, retry.targets);
    }
}
