//! Targets as the workflow passes them: `{"dataType", "region", "accountId"}`.

use serde::{Deserialize, Serialize};

use crate::{
    domain::{AccountId, AccountScope, CacheKey, DataType, Region},
    ports::RefreshReason,
};

/// One target on the wire. `accountId` may be left out (the deployment's own
/// account) and is `global` for account-independent data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetSpec {
    pub data_type: String,
    pub region: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
}

/// A target that does not name a valid cache key, with the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {reason}")]
pub struct TargetError {
    /// Such as `targets[2].region`.
    pub field: String,
    pub reason: String,
}

impl TargetSpec {
    pub fn of(key: &CacheKey) -> Self {
        Self {
            data_type: key.data_type().as_str().to_owned(),
            region: key.region().as_str().to_owned(),
            account_id: Some(key.scope().as_str().to_owned()),
        }
    }

    /// The key this target names; `home` stands in for a missing account.
    /// `position` names the field in errors (`targets[position]`).
    pub fn to_key(&self, home: AccountId, position: usize) -> Result<CacheKey, TargetError> {
        let error = |field: &str, reason: &str| TargetError {
            field: format!("targets[{position}].{field}"),
            reason: reason.to_owned(),
        };
        let data_type =
            DataType::parse(&self.data_type).map_err(|e| error("dataType", e.reason))?;
        let region = Region::parse(&self.region).map_err(|e| error("region", e.reason))?;
        let account = match self.account_id.as_deref() {
            None => home,
            Some(AccountScope::GLOBAL) if data_type.is_account_independent() => home,
            Some(AccountScope::GLOBAL) => {
                return Err(error(
                    "accountId",
                    "must be an account ID: this data type is per account",
                ));
            }
            Some(raw) => AccountId::parse(raw).map_err(|e| error("accountId", e.reason))?,
        };
        Ok(CacheKey::new(data_type, region, account))
    }
}

/// Parses a reason name: `schedule`, `event`, `manual` or `miss`.
pub fn parse_reason(raw: &str) -> Option<RefreshReason> {
    [
        RefreshReason::Schedule,
        RefreshReason::Event,
        RefreshReason::Manual,
        RefreshReason::Miss,
    ]
    .into_iter()
    .find(|r| r.as_str() == raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home() -> AccountId {
        AccountId::parse("999999999999").unwrap()
    }

    fn spec(t: &str, r: &str, a: Option<&str>) -> TargetSpec {
        TargetSpec {
            data_type: t.into(),
            region: r.into(),
            account_id: a.map(Into::into),
        }
    }

    #[test]
    fn a_key_round_trips_through_its_spec() {
        let key = CacheKey::parse("ec2-subnets#eu-west-1#111122223333").unwrap();
        assert_eq!(TargetSpec::of(&key).to_key(home(), 0), Ok(key));
        let global = CacheKey::parse("ec2-instance-types#eu-west-1#global").unwrap();
        assert_eq!(TargetSpec::of(&global).to_key(home(), 0), Ok(global));
    }

    #[test]
    fn a_missing_account_is_the_home_account() {
        let key = spec("drs-quotas", "us-east-1", None)
            .to_key(home(), 0)
            .unwrap();
        assert_eq!(key.to_string(), "drs-quotas#us-east-1#999999999999");
    }

    #[test]
    fn errors_name_the_field_of_the_target() {
        let e = spec("drs-quotas", "mars-1", None)
            .to_key(home(), 3)
            .unwrap_err();
        assert_eq!(e.field, "targets[3].region");
        let e = spec("drs-quota", "us-east-1", None)
            .to_key(home(), 0)
            .unwrap_err();
        assert_eq!(e.field, "targets[0].dataType");
        let e = spec("ec2-subnets", "us-east-1", Some("global"))
            .to_key(home(), 1)
            .unwrap_err();
        assert_eq!(e.field, "targets[1].accountId");
        let e = spec("ec2-subnets", "us-east-1", Some("12"))
            .to_key(home(), 1)
            .unwrap_err();
        assert_eq!(e.reason, "must be exactly 12 digits");
    }

    #[test]
    fn reasons_parse_by_name() {
        assert_eq!(parse_reason("event"), Some(RefreshReason::Event));
        assert_eq!(parse_reason("Event"), None);
    }
}
