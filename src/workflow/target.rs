//! One target as the workflow passes it: `{"dataType", "region", "accountId"}`.

use serde::{Deserialize, Serialize};

use crate::domain::{AccountId, AccountScope, CacheKey, DataType, Region};

use super::InputError;

/// One target on the wire. `accountId` may be left out (the deployment's own
/// account) and is `global` for account-independent data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetSpec {
    pub data_type: DataType,
    pub region: Region,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
}

impl TargetSpec {
    pub fn of(key: &CacheKey) -> Self {
        Self {
            data_type: key.data_type(),
            region: key.region().clone(),
            account_id: Some(key.scope().as_str().to_owned()),
        }
    }

    /// The key this target names; `home` stands in for a missing account.
    /// `position` names the field in errors (`targets[position].accountId`).
    pub fn to_key(&self, home: AccountId, position: usize) -> Result<CacheKey, InputError> {
        let account = match self.account_id.as_deref() {
            None => home,
            Some(AccountScope::GLOBAL) if self.data_type.is_account_independent() => home,
            Some(AccountScope::GLOBAL) => {
                return Err(account_error(
                    position,
                    "must be an account ID: this data type is per account",
                ));
            }
            Some(raw) => AccountId::parse(raw).map_err(|e| account_error(position, e.reason))?,
        };
        Ok(CacheKey::new(self.data_type, self.region.clone(), account))
    }
}

fn account_error(position: usize, reason: &str) -> InputError {
    InputError {
        field: format!("targets[{position}].accountId"),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::workflow::from_json;

    fn home() -> AccountId {
        AccountId::parse("999999999999").unwrap()
    }

    fn spec(value: serde_json::Value) -> Result<TargetSpec, InputError> {
        from_json(&value)
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
        let key = spec(json!({"dataType": "drs-quotas", "region": "us-east-1"}))
            .unwrap()
            .to_key(home(), 0)
            .unwrap();
        assert_eq!(key.to_string(), "drs-quotas#us-east-1#999999999999");
    }

    #[test]
    fn errors_name_the_field_of_the_target() {
        let e = spec(json!({"dataType": "drs-quotas", "region": "mars-1"})).unwrap_err();
        assert_eq!(e.field, "region");
        let e = spec(json!({"dataType": "drs-quota", "region": "us-east-1"})).unwrap_err();
        assert_eq!(e.field, "dataType");
        let global =
            spec(json!({"dataType": "ec2-subnets", "region": "us-east-1", "accountId": "global"}));
        let e = global.unwrap().to_key(home(), 1).unwrap_err();
        assert_eq!(e.field, "targets[1].accountId");
        let short =
            spec(json!({"dataType": "ec2-subnets", "region": "us-east-1", "accountId": "12"}));
        let e = short.unwrap().to_key(home(), 1).unwrap_err();
        assert_eq!(e.reason, "must be exactly 12 digits");
    }
}
