//! The refresher as a Lambda function: a [`Batch`] in, its counts and the next
//! round (if any) out. Keys that fail never fail the invocation: those that
//! failed in passing go to the next round, which the workflow runs after the
//! wait it is given; the others are counted as failed (each failure is
//! recorded on its entry). A batch whose last round has run records its counts
//! in the run ledger under its place in the run, and asks for one more run of
//! the targets a change arrived for while they were held.

use std::sync::Arc;

use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde_json::Value;

use crate::{
    domain::{AccountId, CacheKey},
    errors,
    invocation::{ErrorType, InvocationError},
    ports::{RefreshReason, RunRequests},
    workflow::{self, Batch, BatchResult, Counts, InputError, MAX_BATCH_TARGETS, RunRecords},
};

use super::{Refresher, RoundOutcome};

/// What the function runs with.
pub struct RefresherFunction {
    pub refresher: Arc<Refresher>,
    /// Where a finished batch's counts go.
    pub ledger: Arc<dyn RunRecords>,
    /// Where the follow-up runs of changed targets are asked for.
    pub trigger: Arc<dyn RunRequests>,
}

/// What one invocation answers: a few hundred bytes, or a batch of targets
/// when a round follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoundOutput {
    /// The batch's keys that are done, earlier rounds included.
    #[serde(flatten)]
    pub counts: Counts,
    /// The next round, or `null` when the batch is done.
    pub retry: Option<RetryOutput>,
}

/// `{"waitSeconds", "batch"}`: the workflow waits, then runs `batch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryOutput {
    pub wait_seconds: u64,
    pub batch: Batch,
}

impl RefresherFunction {
    /// Handles one invocation.
    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<RoundOutput, InvocationError> {
        let (batch, targets) = parse(&event.payload, self.refresher.home_account())
            .map_err(|e| InvocationError::new(ErrorType::InvalidInput, &e))?;
        let outcome = self
            .refresher
            .refresh_round(&batch, targets)
            .await
            .map_err(|e| InvocationError::new(ErrorType::StoreUnavailable, &e))?;
        self.follow_up(&outcome.follow_up).await;
        if outcome.retry.is_none() {
            self.record(&batch, outcome.counts).await;
        }
        Ok(output(outcome))
    }

    /// Asks for a run of the targets a change arrived for while this batch
    /// held them. If that cannot be asked, the change waits for the target's
    /// next due refresh: said loudly in the log.
    async fn follow_up(&self, keys: &[CacheKey]) {
        if keys.is_empty() {
            return;
        }
        match self
            .trigger
            .request_targets(keys, RefreshReason::Event)
            .await
        {
            Ok(()) => tracing::info!(
                targets = keys.len(),
                "follow-up run asked for changed targets"
            ),
            Err(e) => tracing::error!(
                targets = keys.len(),
                error = %errors::chain(&e),
                "follow-up run not started: the changes wait for the targets' next due refresh"
            ),
        }
    }

    /// Records the counts of a finished batch of a run.
    async fn record(&self, batch: &Batch, counts: Counts) {
        let Some(run) = &batch.run else { return };
        // The keys are written: a lost count is not worth fetching them again,
        // and the run's summary shows the batch as unrecorded.
        if let Err(e) = self.ledger.record(run, &BatchResult::Counts(counts)).await {
            tracing::error!(
                execution = %run.execution,
                index = run.index,
                error = %errors::chain(&e),
                "the batch's counts were not recorded"
            );
        }
    }
}

fn output(outcome: RoundOutcome) -> RoundOutput {
    RoundOutput {
        counts: outcome.counts,
        retry: outcome.retry.map(|r| RetryOutput {
            // Whole seconds, as the Wait state takes them; rounded up.
            wait_seconds: r.wait.as_secs() + u64::from(r.wait.subsec_nanos() > 0),
            batch: r.batch,
        }),
    }
}

fn parse(payload: &Value, home: AccountId) -> Result<(Batch, Vec<CacheKey>), InputError> {
    let batch: Batch = workflow::from_json(payload)?;
    let invalid = |reason: String| InputError {
        field: "targets".into(),
        reason,
    };
    if batch.targets.is_empty() {
        return Err(invalid("must hold at least one target".into()));
    }
    if batch.targets.len() > MAX_BATCH_TARGETS {
        return Err(invalid(format!(
            "holds {} targets; at most {MAX_BATCH_TARGETS} per invocation",
            batch.targets.len()
        )));
    }
    let keys = batch.keys(home)?;
    Ok((batch, keys))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn home() -> AccountId {
        AccountId::parse("999999999999").unwrap()
    }

    #[test]
    fn a_valid_event_names_its_keys_and_reason() {
        let (batch, keys) = parse(
            &json!({"reason": "event", "targets": [
                {"dataType": "drs-quotas", "region": "us-east-1", "accountId": "111122223333"},
                {"dataType": "ec2-instance-types", "region": "us-east-1"}
            ]}),
            home(),
        )
        .unwrap();
        assert_eq!(batch.reason, RefreshReason::Event);
        assert_eq!(keys[0].to_string(), "drs-quotas#us-east-1#111122223333");
        assert_eq!(keys[1].to_string(), "ec2-instance-types#us-east-1#global");
        assert_eq!(batch.run, None);
    }

    #[test]
    fn a_batch_of_a_run_names_its_place() {
        let (batch, _) = parse(
            &json!({"reason": "schedule", "targets": [
                {"dataType": "drs-quotas", "region": "us-east-1"}],
                "run": {"execution": "tick-1", "index": 7}}),
            home(),
        )
        .unwrap();
        assert_eq!(
            batch.run,
            Some(workflow::RunRef {
                execution: "tick-1".into(),
                index: 7
            })
        );
        let e = parse(
            &json!({"targets": [{"dataType": "drs-quotas", "region": "us-east-1"}],
                "run": {"execution": "tick-1"}}),
            home(),
        )
        .unwrap_err();
        assert_eq!(e.field, "run");
    }

    #[test]
    fn bad_events_are_invalid_input_naming_the_field() {
        let target = json!({"dataType": "drs-quotas", "region": "us-east-1"});
        let cases = [
            (json!({"targets": []}), "at least one"),
            (json!({"target": []}), "unknown field"),
            (json!([1, 2]), "expected"),
            (
                json!({"reason": "event", "targets": [{"dataType": "drs-quotas"}]}),
                "targets[0]",
            ),
            (
                json!({"reason": "event", "targets": [{"dataType": "drs-quotas", "region": "x"}]}),
                "targets[0].region",
            ),
            (json!({"targets": [target], "reason": "cron"}), "reason"),
        ];
        for (payload, needle) in cases {
            let e = parse(&payload, home()).unwrap_err();
            assert!(e.to_string().contains(needle), "{payload}: {e}");
        }
        let many: Vec<_> = (0..=MAX_BATCH_TARGETS).map(|_| target.clone()).collect();
        let e = parse(&json!({"reason": "event", "targets": many}), home()).unwrap_err();
        assert!(e.reason.contains("at most"), "{e}");
    }

    #[test]
    fn a_batch_without_a_reason_is_manual() {
        let (batch, _) = parse(
            &json!({"targets": [{"dataType": "drs-quotas", "region": "us-east-1"}]}),
            home(),
        )
        .unwrap();
        assert_eq!(batch.reason, RefreshReason::Manual);
    }
}
