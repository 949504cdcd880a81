//! The planner as a Lambda function, used twice by the workflow: first with the
//! execution input (a trigger) to plan the run, last with `{"summarize": ...}`
//! to total the Map's results.

use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde_json::Value;

use crate::{
    invocation::InvocationError,
    refresh::{lambda::INVALID_INPUT, target::TargetSpec},
};

use super::{
    Planner,
    planner::batches,
    summary::{RunMetrics, RunSummary, SummarizeInput},
    trigger,
};

/// The plan of a run, as the workflow's Map reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanOutput {
    pub reason: &'static str,
    /// Number of targets planned.
    pub targets: usize,
    pub skipped: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignored: Option<String>,
    /// One refresher input per batch.
    pub batches: Vec<Batch>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Batch {
    pub reason: &'static str,
    pub targets: Vec<TargetSpec>,
}

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
    let invalid = |message: String| InvocationError::new(INVALID_INPUT, message);
    if let Some(input) = event.payload.get("summarize") {
        let input: SummarizeInput =
            serde_json::from_value(input.clone()).map_err(|e| invalid(format!("summarize {e}")))?;
        let summary = RunSummary::of(input);
        metrics.record(&summary);
        tracing::info!(?summary, "refresh run finished");
        return Ok(PlannerOutput::Summary(summary));
    }
    let config = planner.config();
    let trigger =
        trigger::parse(&event.payload, config.home).map_err(|e| invalid(e.to_string()))?;
    let plan = planner
        .plan(&trigger)
        .await
        .map_err(|e| InvocationError::new("StoreUnavailable", e.to_string()))?;
    let reason = plan.reason.as_str();
    let output = PlanOutput {
        reason,
        targets: plan.targets.len(),
        skipped: plan.skipped,
        ignored: plan.ignored,
        batches: batches(&plan.targets, config.home, config.batch_size)
            .into_iter()
            .map(|keys| Batch {
                reason,
                targets: keys.iter().map(TargetSpec::of).collect(),
            })
            .collect(),
    };
    tracing::info!(
        reason,
        targets = output.targets,
        skipped = output.skipped,
        batches = output.batches.len(),
        "run planned"
    );
    Ok(PlannerOutput::Plan(output))
}
