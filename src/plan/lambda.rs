//! The planner as a Lambda function, used twice by the workflow: first with the
//! execution input (a trigger) to plan the run, last with `{"summarize": ...}`
//! to total the Map's results.

use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde_json::Value;

use crate::{
    errors,
    invocation::{ErrorType, InvocationError},
    workflow::{self, Batch, PlanOutput, SummarizeInput},
};

use super::{
    Planner,
    summary::{RunMetrics, RunSummary},
    trigger,
};

/// What one invocation answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum PlannerOutput {
    Plan(PlanOutput),
    Summary(RunSummary),
}

/// Handles one invocation; a run's totals go to `metrics`.
pub async fn handle(
    planner: &Planner,
    metrics: &dyn RunMetrics,
    event: LambdaEvent<Value>,
) -> Result<PlannerOutput, InvocationError> {
    let invalid = |e: workflow::InputError| InvocationError::new(ErrorType::InvalidInput, &e);
    if let Some(input) = event.payload.get("summarize") {
        let input: SummarizeInput = workflow::from_json(input).map_err(|e| {
            invalid(workflow::InputError {
                field: format!("summarize.{}", e.field),
                reason: e.reason,
            })
        })?;
        let summary = RunSummary::of(input);
        metrics.record(&summary);
        tracing::info!(?summary, "refresh run finished");
        return Ok(PlannerOutput::Summary(summary));
    }
    let trigger = trigger::parse(&event.payload, planner.config().home).map_err(invalid)?;
    let plan = planner.plan(&trigger).await.map_err(|e| {
        tracing::error!(error = %errors::chain(&e), "planning failed");
        InvocationError::new(ErrorType::StoreUnavailable, &e)
    })?;
    let output = PlanOutput {
        reason: plan.reason,
        targets: plan.target_count(),
        skipped: plan.skipped,
        batches: plan
            .batches
            .iter()
            .map(|keys| Batch::of(plan.reason, keys))
            .collect(),
        ignored: plan.ignored,
    };
    tracing::info!(
        reason = plan.reason.as_str(),
        targets = output.targets,
        skipped = output.skipped,
        batches = output.batches.len(),
        "run planned"
    );
    Ok(PlannerOutput::Plan(output))
}
