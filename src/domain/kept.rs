//! What a deployment keeps: the accounts, regions and data types it refreshes.
//! The planner plans only these; the reader answers `NOT_CONFIGURED` for any
//! other target instead of asking for a refresh that would never come.

use std::collections::HashSet;

use super::{AccountId, CacheKey, DataType, Region};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    accounts: HashSet<AccountId>,
    regions: HashSet<Region>,
    data_types: HashSet<DataType>,
}

/// The part of a key the deployment does not keep, named as the API names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {value} is not kept by this deployment")]
pub struct NotKept {
    /// `dataType`, `region` or `accountId`.
    pub field: &'static str,
    pub value: String,
}

impl Kept {
    pub fn new(accounts: &[AccountId], regions: &[Region], data_types: &[DataType]) -> Self {
        Self {
            accounts: accounts.iter().copied().collect(),
            regions: regions.iter().cloned().collect(),
            data_types: data_types.iter().copied().collect(),
        }
    }

    /// Whether `key` is one of the deployment's targets; account-independent
    /// data is kept for every kept region.
    pub fn check(&self, key: &CacheKey) -> Result<(), NotKept> {
        self.check_parts(
            Some(key.data_type()),
            Some(key.region()),
            key.scope().account(),
        )
    }

    /// Whether each part given is kept (an invalidation's scope).
    pub fn check_parts(
        &self,
        data_type: Option<DataType>,
        region: Option<&Region>,
        account: Option<AccountId>,
    ) -> Result<(), NotKept> {
        let not_kept = |field, value: &str| NotKept {
            field,
            value: value.to_owned(),
        };
        if let Some(t) = data_type.filter(|t| !self.data_types.contains(t)) {
            return Err(not_kept("dataType", t.as_str()));
        }
        if let Some(r) = region.filter(|r| !self.regions.contains(*r)) {
            return Err(not_kept("region", r.as_str()));
        }
        match account {
            Some(a) if !self.accounts.contains(&a) => Err(not_kept("accountId", a.as_str())),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_outside_is_refused_naming_the_first_part_not_kept() {
        let kept = Kept::new(
            &[AccountId::parse("111122223333").unwrap()],
            &[Region::parse("us-east-1").unwrap()],
            &[DataType::DrsQuotas, DataType::Ec2InstanceTypes],
        );
        let check = |raw: &str| kept.check(&CacheKey::parse(raw).unwrap());
        assert_eq!(check("drs-quotas#us-east-1#111122223333"), Ok(()));
        assert_eq!(check("ec2-instance-types#us-east-1#global"), Ok(()));
        let field = |raw: &str| check(raw).unwrap_err().field;
        assert_eq!(field("drs-quotas#us-east-1#444455556666"), "accountId");
        assert_eq!(field("drs-quotas#eu-west-1#111122223333"), "region");
        assert_eq!(field("ec2-subnets#eu-west-1#444455556666"), "dataType");
        assert_eq!(
            check("drs-quotas#us-east-1#444455556666")
                .unwrap_err()
                .to_string(),
            "accountId 444455556666 is not kept by this deployment"
        );
    }
}
