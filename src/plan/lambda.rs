//! The planner as a Lambda function, used three ways by the workflows: first
//! with the execution input (a trigger) to plan the run, writing the batches to
//! a plan object (or, with `{"planInline": ...}` from the targets workflow,
//! answering them); with `{"recordFailure": ...}` for a batch whose refresher
//! failed for good; and last with `{"summarize": ...}` to total the run from
//! the results its batches recorded.

use std::sync::Arc;

use lambda_runtime::LambdaEvent;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::{
    errors,
    invocation::{ErrorType, InvocationError},
    ports::StoreError,
    workflow::{
        self, Batch, BatchResult, FailureRecord, MAX_INLINE_TARGETS, PlanOutput, PlanStore,
        RunLedger, SummarizeInput, SummarizeRequest,
    },
};

use super::{
    Planner, Trigger,
    summary::{RunMetrics, RunSummary},
    trigger,
};

/// What the function runs with.
pub struct PlannerFunction {
    pub planner: Planner,
    /// Where plans are written for the Map to read.
    pub plans: Arc<dyn PlanStore>,
    /// Where batch results are recorded and read back.
    pub ledger: Arc<dyn RunLedger>,
    /// Where run totals go.
    pub metrics: Arc<dyn RunMetrics>,
}

/// What one invocation answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum PlannerOutput {
    Plan(PlanOutput),
    Summary(RunSummary),
    /// A failed batch, recorded.
    Recorded {
        recorded: bool,
    },
}

/// Handles one invocation.
pub async fn handle(
    function: &PlannerFunction,
    event: LambdaEvent<Value>,
) -> Result<PlannerOutput, InvocationError> {
    let payload = &event.payload;
    if let Some(input) = payload.get("summarize") {
        let request: SummarizeRequest = nested(input, "summarize")?;
        return summarize(function, request).await;
    }
    if let Some(input) = payload.get("recordFailure") {
        let record: FailureRecord = nested(input, "recordFailure")?;
        let result = BatchResult::Failed {
            failed_batch: true,
            error: Some(record.error),
            targets: Some(record.targets),
        };
        function
            .ledger
            .record(&record.run, &result)
            .await
            .map_err(|e| unavailable("recording a failed batch", &e))?;
        return Ok(PlannerOutput::Recorded { recorded: true });
    }
    if let Some(input) = payload.get("planInline") {
        return plan(function, input, Delivery::Inline).await;
    }
    plan(function, payload, Delivery::Object).await
}

/// Where a plan's batches go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// A plan object in the bucket, for the refresh workflow's Distributed Map.
    Object,
    /// The answer's `items`, for the targets workflow's inline Map: exact
    /// targets only, at most [`MAX_INLINE_TARGETS`].
    Inline,
}

async fn plan(
    function: &PlannerFunction,
    payload: &Value,
    delivery: Delivery,
) -> Result<PlannerOutput, InvocationError> {
    let planner = &function.planner;
    let trigger = trigger::parse(payload, planner.config().home)
        .map_err(|e| InvocationError::new(ErrorType::InvalidInput, &e))?;
    if delivery == Delivery::Inline {
        inline_plan_fits(&trigger)?;
    }
    let plan = planner
        .plan(&trigger)
        .await
        .map_err(|e| unavailable("planning", &e))?;
    if !plan.freshness.is_empty() {
        function.metrics.record_freshness(&plan.freshness);
    }
    let batches = plan.batch_inputs(trigger::event_time(payload));
    let items: Vec<Value> = batches.iter().map(Batch::plan_item).collect();
    let (location, items) = match delivery {
        Delivery::Inline => (None, Some(items)),
        Delivery::Object if items.is_empty() => (None, None),
        Delivery::Object => {
            // Keys, enums and strings only: serializing cannot fail.
            let body = serde_json::to_vec(&items).unwrap_or_default();
            let location = function
                .plans
                .put(body)
                .await
                .map_err(|e| unavailable("writing the plan", &e))?;
            (Some(location), None)
        }
    };
    let output = PlanOutput {
        reason: plan.reason,
        targets: plan.target_count(),
        skipped: plan.skipped,
        deferred: plan.deferred,
        batches: batches.len(),
        plan: location,
        items,
        ignored: plan.ignored,
    };
    tracing::info!(
        reason = plan.reason.as_str(),
        targets = output.targets,
        skipped = output.skipped,
        deferred = output.deferred,
        batches = output.batches,
        "run planned"
    );
    Ok(PlannerOutput::Plan(output))
}

/// An inline plan takes exact targets, few enough for its answer; anything
/// else is refused before a lease is claimed.
fn inline_plan_fits(trigger: &Trigger) -> Result<(), InvocationError> {
    let refused = |reason: String| {
        let e = workflow::InputError {
            field: "planInline".into(),
            reason,
        };
        InvocationError::new(ErrorType::InvalidInput, &e)
    };
    match trigger {
        Trigger::Targets { keys, .. } if keys.len() <= MAX_INLINE_TARGETS => Ok(()),
        Trigger::Targets { keys, .. } => Err(refused(format!(
            "holds {} targets, more than the {MAX_INLINE_TARGETS} an inline plan takes; \
             start the refresh workflow instead",
            keys.len()
        ))),
        _ => Err(refused(
            "takes exact targets ({\"reason\", \"targets\"}) only; \
             start the refresh workflow for any other trigger"
                .into(),
        )),
    }
}

async fn summarize(
    function: &PlannerFunction,
    request: SummarizeRequest,
) -> Result<PlannerOutput, InvocationError> {
    let results = function
        .ledger
        .results(&request.execution, request.batches)
        .await
        .map_err(|e| unavailable("reading the batch results", &e))?;
    let summary = RunSummary::of(SummarizeInput {
        reason: request.reason,
        results,
    });
    function.metrics.record(&summary);
    tracing::info!(?summary, "refresh run finished");
    Ok(PlannerOutput::Summary(summary))
}

/// `T` from the value of `field`; an error names the path within it.
fn nested<T: DeserializeOwned>(input: &Value, field: &str) -> Result<T, InvocationError> {
    workflow::from_json(input).map_err(|e| {
        let e = workflow::InputError {
            field: format!("{field}.{}", e.field),
            reason: e.reason,
        };
        InvocationError::new(ErrorType::InvalidInput, &e)
    })
}

fn unavailable(doing: &str, e: &StoreError) -> InvocationError {
    tracing::error!(error = %errors::chain(e), "{doing} failed");
    InvocationError::new(ErrorType::StoreUnavailable, e)
}
