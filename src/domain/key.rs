use std::fmt;

use super::{AccountId, AccountScope, DataType, InvalidValue, Region};

/// The key of one cached target: `{dataType}#{region}#{accountId}`, with `global`
/// in place of the account for account-independent data.
///
/// Every part is validated and none can contain `#`, so parsing and formatting
/// round-trip and no input can address another target's entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey {
    data_type: DataType,
    region: Region,
    scope: AccountScope,
}

/// Why a key or its parts were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("a cache key has three parts separated by '#'")]
    Shape,
    #[error("dataType {0}")]
    DataType(InvalidValue),
    #[error("region {0}")]
    Region(InvalidValue),
    #[error("accountId {0}")]
    Account(InvalidValue),
    #[error("{0} is the same in every account and is keyed by 'global'")]
    ExpectedGlobal(DataType),
    #[error("{0} is per account and needs an account ID, not 'global'")]
    ExpectedAccount(DataType),
}

impl CacheKey {
    /// The key of `data_type` in `region` for `account`. The account is ignored
    /// for account-independent data, which is keyed by `global`.
    pub fn new(data_type: DataType, region: Region, account: AccountId) -> Self {
        let scope = if data_type.is_account_independent() {
            AccountScope::Global
        } else {
            AccountScope::Account(account)
        };
        Self {
            data_type,
            region,
            scope,
        }
    }

    /// The key of the fleet capacity the planner of a deployment whose first
    /// region is `region` keeps: `drs-capacity#{region}#global`.
    pub fn fleet_capacity(region: Region) -> Self {
        Self {
            data_type: DataType::DrsCapacity,
            region,
            scope: AccountScope::Global,
        }
    }

    /// The key of account-independent data; `None` for per-account types.
    pub fn global(data_type: DataType, region: Region) -> Option<Self> {
        data_type.is_account_independent().then_some(Self {
            data_type,
            region,
            scope: AccountScope::Global,
        })
    }

    pub fn parse(raw: &str) -> Result<Self, KeyError> {
        let mut parts = raw.split('#');
        let (Some(t), Some(r), Some(a), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(KeyError::Shape);
        };
        let data_type = DataType::parse_stored(t).map_err(KeyError::DataType)?;
        let region = Region::parse(r).map_err(KeyError::Region)?;
        let scope = match (a, data_type.is_account_independent()) {
            (AccountScope::GLOBAL, true) => AccountScope::Global,
            (AccountScope::GLOBAL, false) => return Err(KeyError::ExpectedAccount(data_type)),
            (_, true) => return Err(KeyError::ExpectedGlobal(data_type)),
            (a, false) => AccountScope::Account(AccountId::parse(a).map_err(KeyError::Account)?),
        };
        Ok(Self {
            data_type,
            region,
            scope,
        })
    }

    pub fn data_type(&self) -> DataType {
        self.data_type
    }

    pub fn region(&self) -> &Region {
        &self.region
    }

    pub fn scope(&self) -> AccountScope {
        self.scope
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}#{}", self.data_type, self.region, self.scope)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn account() -> AccountId {
        AccountId::parse("438465159935").unwrap()
    }

    #[test]
    fn formats_as_in_the_original_design() {
        let r = Region::parse("us-east-1").unwrap();
        assert_eq!(
            CacheKey::new(DataType::DrsQuotas, r.clone(), account()).to_string(),
            "drs-quotas#us-east-1#438465159935"
        );
        assert_eq!(
            CacheKey::new(DataType::Ec2InstanceTypes, r, account()).to_string(),
            "ec2-instance-types#us-east-1#global"
        );
    }

    #[test]
    fn scope_must_match_the_data_type() {
        assert_eq!(
            CacheKey::parse("ec2-subnets#us-east-1#global"),
            Err(KeyError::ExpectedAccount(DataType::Ec2Subnets))
        );
        assert_eq!(
            CacheKey::parse("ec2-instance-types#us-east-1#438465159935"),
            Err(KeyError::ExpectedGlobal(DataType::Ec2InstanceTypes))
        );
        assert_eq!(
            CacheKey::parse("drs-quotas#us-east-1#438465159935#x"),
            Err(KeyError::Shape)
        );
    }

    fn region_strategy() -> impl Strategy<Value = String> {
        ("[a-z]{2}", "(gov-|iso-)?", "[a-z]{3,9}", 1u8..=20)
            .prop_map(|(a, p, d, n)| format!("{a}-{p}{d}-{n}"))
    }

    proptest! {
        #[test]
        fn valid_keys_round_trip(
            t in 0usize..7,
            region in region_strategy(),
            account in "[0-9]{12}",
        ) {
            let key = CacheKey::new(
                DataType::ALL[t],
                Region::parse(&region).unwrap(),
                AccountId::parse(&account).unwrap(),
            );
            let text = key.to_string();
            prop_assert_eq!(CacheKey::parse(&text), Ok(key));
        }

        /// Whatever a caller sends as region and account, the key built from it
        /// either is refused or names exactly that data type, region and account.
        #[test]
        fn no_input_addresses_another_target(
            t in 0usize..7,
            region in prop_oneof![
                region_strategy(),
                "\\PC{0,24}",
                (region_strategy(), "[#a-z0-9 -]{1,14}").prop_map(|(r, s)| r + &s),
            ],
            account in prop_oneof!["[0-9]{12}", "\\PC{0,20}", "[0-9]{12}#[#0-9a-z-]{1,20}"],
            target_region in region_strategy(),
            target_account in "[0-9]{12}",
        ) {
            let data_type = DataType::ALL[t];
            if let (Ok(r), Ok(a)) = (Region::parse(&region), AccountId::parse(&account)) {
                let key = CacheKey::new(data_type, r, a);
                let text = key.to_string();
                prop_assert_eq!(text.matches('#').count(), 2);
                prop_assert_eq!(key.region().as_str(), region.as_str());
                let target = CacheKey::new(
                    data_type,
                    Region::parse(&target_region).unwrap(),
                    AccountId::parse(&target_account).unwrap(),
                );
                let same_target = region == target_region
                    && (data_type.is_account_independent() || account == target_account);
                prop_assert_eq!(key == target, same_target);
                prop_assert_eq!(text == target.to_string(), same_target);
            }
        }

        #[test]
        fn parse_never_panics_and_accepts_only_canonical_text(raw in "\\PC{0,60}") {
            if let Ok(key) = CacheKey::parse(&raw) {
                prop_assert_eq!(key.to_string(), raw);
            }
        }
    }
}
