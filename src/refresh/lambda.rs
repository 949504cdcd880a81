//! The refresher as a Lambda function: a [`Batch`] in, a small report out. A
//! batch with a failed key fails the invocation with the failure's kind as the
//! error type, so the workflow can Retry or Catch it; the message carries the
//! report. A batch that ends normally records its counts in the run ledger
//! under its place in the run.

use lambda_runtime::LambdaEvent;
use serde_json::Value;

use crate::{
    domain::{AccountId, CacheKey},
    errors,
    invocation::{ErrorType, InvocationError},
    ports::RefreshReason,
    workflow::{self, Batch, BatchResult, InputError, MAX_BATCH_TARGETS, RunLedger, RunRef},
};

use super::{Refresher, summary::BatchReport};

/// Handles one invocation.
pub async fn handle(
    refresher: &Refresher,
    ledger: &dyn RunLedger,
    event: LambdaEvent<Value>,
) -> Result<BatchReport, InvocationError> {
    let (targets, reason, run) = parse(&event.payload, refresher.home_account())
        .map_err(|e| InvocationError::new(ErrorType::InvalidInput, &e))?;
    let report = refresher.refresh(&targets, reason).await;
    if let Some(kind) = report.decisive_failure() {
        return Err(InvocationError::with_message(
            kind.error_type(),
            serde_json::to_string(&report).unwrap_or_default(),
        ));
    }
    if let Some(run) = run {
        let result = BatchResult::Counts(report.counts);
        // The keys are written: a lost count is not worth fetching them again,
        // and the run's summary shows the batch as unrecorded.
        if let Err(e) = ledger.record(&run, &result).await {
            tracing::error!(
                execution = %run.execution,
                index = run.index,
                error = %errors::chain(&e),
                "the batch's counts were not recorded"
            );
        }
    }
    Ok(report)
}

type Parsed = (Vec<CacheKey>, RefreshReason, Option<RunRef>);

fn parse(payload: &Value, home: AccountId) -> Result<Parsed, InputError> {
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
    Ok((batch.keys(home)?, batch.reason, batch.run))
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
        let (keys, reason, run) = parse(
            &json!({"reason": "event", "targets": [
                {"dataType": "drs-quotas", "region": "us-east-1", "accountId": "111122223333"},
                {"dataType": "ec2-instance-types", "region": "us-east-1"}
            ]}),
            home(),
        )
        .unwrap();
        assert_eq!(reason, RefreshReason::Event);
        assert_eq!(keys[0].to_string(), "drs-quotas#us-east-1#111122223333");
        assert_eq!(keys[1].to_string(), "ec2-instance-types#us-east-1#global");
        assert_eq!(run, None);
    }

    #[test]
    fn a_batch_of_a_run_names_its_place() {
        let (_, _, run) = parse(
            &json!({"reason": "schedule", "targets": [
                {"dataType": "drs-quotas", "region": "us-east-1"}],
                "run": {"execution": "tick-1", "index": 7}}),
            home(),
        )
        .unwrap();
        assert_eq!(
            run,
            Some(RunRef {
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
        let (_, reason, _) = parse(
            &json!({"targets": [{"dataType": "drs-quotas", "region": "us-east-1"}]}),
            home(),
        )
        .unwrap();
        assert_eq!(reason, RefreshReason::Manual);
    }
}
