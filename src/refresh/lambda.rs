//! The refresher as a Lambda function: `{"targets": [...], "reason": "..."}` in,
//! a small report out. A batch with a failed key fails the invocation with the
//! failure's kind as the error type, so the workflow can Retry or Catch it; the
//! message carries the report.

use lambda_runtime::LambdaEvent;
use serde::Deserialize;
use serde_json::Value;

use crate::{invocation::InvocationError, ports::RefreshReason};

use super::{
    Refresher,
    summary::BatchReport,
    target::{TargetSpec, parse_reason},
};

/// The error type of an event that is not a refresh request.
pub const INVALID_INPUT: &str = "InvalidInput";
/// Most targets one invocation takes; the workflow batches below this.
pub const MAX_TARGETS: usize = 500;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshEvent {
    targets: Vec<Value>,
    #[serde(default)]
    reason: Option<String>,
}

/// Handles one invocation.
pub async fn handle(
    refresher: &Refresher,
    event: LambdaEvent<Value>,
) -> Result<BatchReport, InvocationError> {
    let (targets, reason) = parse(event.payload, refresher.home_account())?;
    let report = refresher.refresh(&targets, reason).await;
    match report.decisive_failure() {
        None => Ok(report),
        Some(kind) => Err(InvocationError::new(
            kind.as_str(),
            serde_json::to_string(&report).unwrap_or_default(),
        )),
    }
}

fn parse(
    payload: Value,
    home: crate::domain::AccountId,
) -> Result<(Vec<crate::domain::CacheKey>, RefreshReason), InvocationError> {
    let invalid = |message: String| InvocationError::new(INVALID_INPUT, message);
    let event: RefreshEvent = serde_json::from_value(payload)
        .map_err(|e| invalid(format!("expected {{\"targets\": [...], \"reason\"}}: {e}")))?;
    let reason = match event.reason.as_deref() {
        None => RefreshReason::Manual,
        Some(raw) => parse_reason(raw).ok_or_else(|| {
            invalid("reason must be one of schedule, event, manual, miss".to_owned())
        })?,
    };
    if event.targets.is_empty() {
        return Err(invalid("targets must hold at least one target".to_owned()));
    }
    if event.targets.len() > MAX_TARGETS {
        return Err(invalid(format!(
            "targets holds {} targets; at most {MAX_TARGETS} per invocation",
            event.targets.len()
        )));
    }
    let targets = event
        .targets
        .into_iter()
        .enumerate()
        .map(|(i, raw)| {
            let spec: TargetSpec =
                serde_json::from_value(raw).map_err(|e| invalid(format!("targets[{i}] {e}")))?;
            spec.to_key(home, i).map_err(|e| invalid(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((targets, reason))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::AccountId;

    fn home() -> AccountId {
        AccountId::parse("999999999999").unwrap()
    }

    #[test]
    fn a_valid_event_names_its_keys_and_reason() {
        let (keys, reason) = parse(
            json!({"reason": "event", "targets": [
                {"dataType": "drs-quotas", "region": "us-east-1", "accountId": "111122223333"},
                {"dataType": "ec2-instance-types", "region": "us-east-1"}
            ]}),
            home(),
        )
        .unwrap();
        assert_eq!(reason, RefreshReason::Event);
        assert_eq!(keys[0].to_string(), "drs-quotas#us-east-1#111122223333");
        assert_eq!(keys[1].to_string(), "ec2-instance-types#us-east-1#global");
    }

    #[test]
    fn bad_events_are_invalid_input_naming_the_field() {
        let cases = [
            (json!({"targets": []}), "at least one"),
            (json!({"target": []}), "unknown field"),
            (json!([1, 2]), "expected"),
            (
                json!({"targets": [{"dataType": "drs-quotas"}]}),
                "targets[0]",
            ),
            (
                json!({"targets": [{"dataType": "drs-quotas", "region": "x"}]}),
                "targets[0].region",
            ),
            (
                json!({"targets": [{"dataType": "drs-quotas", "region": "us-east-1"}], "reason": "cron"}),
                "reason",
            ),
        ];
        for (payload, needle) in cases {
            let e = parse(payload.clone(), home()).unwrap_err();
            assert_eq!(e.code, INVALID_INPUT);
            assert!(e.message.contains(needle), "{payload}: {}", e.message);
        }
        let many: Vec<_> = (0..=MAX_TARGETS)
            .map(|_| json!({"dataType": "drs-quotas", "region": "us-east-1"}))
            .collect();
        let e = parse(json!({ "targets": many }), home()).unwrap_err();
        assert!(e.message.contains("at most"));
    }
}
