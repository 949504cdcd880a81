//! What a run of the workflow starts with, when this project writes it: a
//! trigger (`{"trigger": "schedule"}` from the schedule, `{"trigger":
//! "manual", ...}` for an invalidation) or exact targets (a [`Batch`], as the
//! reader asks for a miss). Any other input is an EventBridge event, which the
//! planner reads as one.

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::{
    domain::{AccountId, CacheKey, DataType, Region},
    ports::{Invalidation, RefreshReason},
};

use super::Batch;

/// A value of our own inputs that is malformed, with the field at fault, such
/// as `targets[2].region`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {reason}")]
pub struct InputError {
    pub field: String,
    pub reason: String,
}

/// Reads `T` from `value`; an error names the path of the field at fault.
pub fn from_json<T: DeserializeOwned>(value: &Value) -> Result<T, InputError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let field = match e.path().to_string() {
            root if root == "." => "input".to_owned(),
            path => path,
        };
        InputError {
            field,
            reason: e.into_inner().to_string(),
        }
    })
}

/// The most targets the targets workflow's inline plan takes: about 90 bytes
/// each in the planner's answer, well inside the 256 KiB a task may return.
pub const MAX_INLINE_TARGETS: usize = 1_000;

/// The execution input of one of our own runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ExecutionInput {
    Trigger(TriggerInput),
    Targets(Batch),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TriggerKind {
    /// A scheduled tick: refresh what is due.
    Schedule,
    /// An invalidation: refresh every configured target matching the scope.
    Manual,
    /// Keep every key of `accountId` refreshed ahead for `seconds` (default:
    /// the warm window), read or not, and refresh what of it is due now.
    Warm,
}

/// `{"trigger", "dataType"?, "region"?, "accountId"?, "time"?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TriggerInput {
    pub trigger: TriggerKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_type: Option<DataType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<Region>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<AccountId>,
    /// When a scheduled tick fired (the schedule's
    /// `<aws.scheduler.scheduled-time>`), for the execution's history only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// How long a warm trigger keeps its account warm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<u64>,
}

/// What a warm trigger asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WarmRequest {
    pub account: AccountId,
    /// `None`: the deployment's warm window.
    pub window: Option<std::time::Duration>,
}

impl TriggerInput {
    /// What a manual trigger invalidates; a scheduled one takes no scope.
    pub fn invalidation(&self) -> Result<Option<Invalidation>, InputError> {
        if self.seconds.is_some() && self.trigger != TriggerKind::Warm {
            return Err(InputError {
                field: "seconds".into(),
                reason: "is taken by the warm trigger only".into(),
            });
        }
        let invalidation = Invalidation {
            data_type: self.data_type,
            region: self.region.clone(),
            account: self.account_id,
        };
        match self.trigger {
            TriggerKind::Manual => Ok(Some(invalidation)),
            TriggerKind::Schedule if invalidation == Invalidation::default() => Ok(None),
            TriggerKind::Schedule => Err(InputError {
                field: "trigger".into(),
                reason: "schedule takes no dataType, region or accountId; use manual".into(),
            }),
            TriggerKind::Warm => Err(InputError {
                field: "trigger".into(),
                reason: "warm is read by TriggerInput::warm".into(),
            }),
        }
    }

    /// What a warm trigger asks for; `Ok(None)` for another trigger.
    pub fn warm(&self) -> Result<Option<WarmRequest>, InputError> {
        if self.trigger != TriggerKind::Warm {
            return Ok(None);
        }
        let refused = |field: &str, reason: &str| InputError {
            field: field.into(),
            reason: reason.into(),
        };
        if self.data_type.is_some() || self.region.is_some() {
            return Err(refused(
                "trigger",
                "warm takes an accountId (and seconds), not a dataType or region: every key of the account is kept warm",
            ));
        }
        let Some(account) = self.account_id else {
            return Err(refused("accountId", "is required by the warm trigger"));
        };
        let window = match self.seconds {
            None => None,
            Some(s) if s == 0 || s > crate::domain::demand::MAX_WINDOW.as_secs() => {
                return Err(refused("seconds", "must be between 1 and 604800 (7 days)"));
            }
            Some(s) => Some(std::time::Duration::from_secs(s)),
        };
        Ok(Some(WarmRequest { account, window }))
    }
}

impl ExecutionInput {
    /// A refresh of exact `keys`.
    pub fn targets(reason: RefreshReason, keys: &[CacheKey]) -> Self {
        Self::Targets(Batch::of(reason, keys))
    }

    /// A refresh of every configured target `invalidation` matches.
    pub fn invalidation(invalidation: &Invalidation) -> Self {
        Self::Trigger(TriggerInput {
            trigger: TriggerKind::Manual,
            data_type: invalidation.data_type,
            region: invalidation.region.clone(),
            account_id: invalidation.account,
            time: None,
            seconds: None,
        })
    }

    /// A warm request for `account`, for `window` or the deployment's warm
    /// window.
    pub fn warm(account: AccountId, window: Option<std::time::Duration>) -> Self {
        Self::Trigger(TriggerInput {
            trigger: TriggerKind::Warm,
            data_type: None,
            region: None,
            account_id: Some(account),
            time: None,
            seconds: window.map(|w| w.as_secs()),
        })
    }

    /// Reads one of our own inputs; `Ok(None)` when `value` is none of them
    /// (it has neither `trigger` nor `targets`): an event.
    pub fn parse(value: &Value) -> Result<Option<Self>, InputError> {
        if value.get("trigger").is_some() {
            return from_json(value).map(|t| Some(Self::Trigger(t)));
        }
        if value.get("targets").is_some() {
            return from_json(value).map(|b| Some(Self::Targets(b)));
        }
        Ok(None)
    }

    /// The input as Step Functions takes it.
    pub fn to_json(&self) -> String {
        // Strings, enums and optional fields only: serializing cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parsed(value: Value) -> Result<Option<ExecutionInput>, InputError> {
        ExecutionInput::parse(&value)
    }

    #[test]
    fn every_input_we_write_reads_back_as_itself() {
        let key = CacheKey::parse("ec2-instance-types#eu-west-1#global").unwrap();
        let inputs = [
            ExecutionInput::targets(RefreshReason::Miss, std::slice::from_ref(&key)),
            ExecutionInput::invalidation(&Invalidation::default()),
            ExecutionInput::invalidation(&Invalidation {
                data_type: Some(DataType::Ec2Subnets),
                region: Some(Region::parse("eu-west-1").unwrap()),
                account: Some(AccountId::parse("111122223333").unwrap()),
            }),
        ];
        for input in inputs {
            let wire: Value = serde_json::from_str(&input.to_json()).unwrap();
            assert_eq!(parsed(wire).unwrap(), Some(input));
        }
    }

    #[test]
    fn the_wire_forms_are_the_documented_ones() {
        let key = CacheKey::parse("ec2-instance-types#eu-west-1#global").unwrap();
        let miss = ExecutionInput::targets(RefreshReason::Miss, &[key]);
        assert_eq!(
            serde_json::to_value(&miss).unwrap(),
            json!({"reason": "miss", "targets": [
                {"dataType": "ec2-instance-types", "region": "eu-west-1", "accountId": "global"}]})
        );
        let subnets = ExecutionInput::invalidation(&Invalidation {
            data_type: Some(DataType::Ec2Subnets),
            ..Invalidation::default()
        });
        assert_eq!(
            serde_json::to_value(&subnets).unwrap(),
            json!({"trigger": "manual", "dataType": "ec2-subnets"})
        );
    }

    #[test]
    fn a_scheduled_tick_carries_its_time_and_no_scope() {
        let tick = parsed(json!({"trigger": "schedule", "time": "2026-11-29T10:00:00Z"}));
        let Ok(Some(ExecutionInput::Trigger(t))) = tick else {
            panic!("{tick:?}")
        };
        assert_eq!(t.invalidation(), Ok(None));
        let scoped = parsed(json!({"trigger": "schedule", "region": "us-east-1"}));
        let Ok(Some(ExecutionInput::Trigger(t))) = scoped else {
            panic!("{scoped:?}")
        };
        assert_eq!(t.invalidation().unwrap_err().field, "trigger");
    }

    #[test]
    fn errors_name_the_field() {
        let field = |v: Value| parsed(v).unwrap_err().field;
        assert_eq!(field(json!({"trigger": "often"})), "trigger");
        assert_eq!(
            field(json!({"trigger": "manual", "region": "moon"})),
            "region"
        );
        assert_eq!(
            field(json!({"trigger": "manual", "accountId": "12"})),
            "accountId"
        );
        assert_eq!(
            field(json!({"reason": "miss", "targets": [{}]})),
            "targets[0]"
        );
        assert!(parsed(json!({"source": "aws.drs"})).unwrap().is_none());
    }
}
