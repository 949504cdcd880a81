//! Which upstream listing produces a target. One fetch can serve several keys:
//! DRS source servers feed both the server and the quota views, and IAM
//! instance profiles (global) feed every region of an account. The planner keeps
//! the targets of one fetch in one batch; the refresher fetches each once.

use crate::{
    domain::{AccountId, AccountScope, CacheKey, DataType},
    ports::AccountRegion,
};

/// One upstream listing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Fetch {
    /// DescribeSourceServers; writes `drs-source-servers` and `drs-quotas`.
    SourceServers(AccountRegion),
    StagingAccounts(AccountRegion),
    /// DescribeJobs over the configured window.
    Jobs(AccountRegion),
    RecoveryInstances(AccountRegion),
    SourceNetworks(AccountRegion),
    Subnets(AccountRegion),
    SecurityGroups(AccountRegion),
    /// Account-independent: fetched with the deployment's own account.
    InstanceTypes(AccountRegion),
    /// Global: one listing per account, written to each requested region.
    InstanceProfiles(AccountId),
}

impl Fetch {
    /// The fetch that produces `key`, with `home` as the account of
    /// account-independent data; `None` for derived data, which no fetch
    /// produces (and which no workflow input can name: `DataType::parse`
    /// refuses it).
    pub fn of(key: &CacheKey, home: AccountId) -> Option<Self> {
        let account = match key.scope() {
            AccountScope::Account(id) => id,
            AccountScope::Global => home,
        };
        let at = AccountRegion {
            account,
            region: key.region().clone(),
        };
        Some(match key.data_type() {
            DataType::DrsSourceServers | DataType::DrsQuotas => Self::SourceServers(at),
            DataType::DrsAccounts => Self::StagingAccounts(at),
            DataType::DrsJobs => Self::Jobs(at),
            DataType::DrsRecoveryInstances => Self::RecoveryInstances(at),
            DataType::DrsSourceNetworks => Self::SourceNetworks(at),
            DataType::Ec2Subnets => Self::Subnets(at),
            DataType::Ec2SecurityGroups => Self::SecurityGroups(at),
            DataType::Ec2InstanceTypes => Self::InstanceTypes(at),
            DataType::Ec2InstanceProfiles => Self::InstanceProfiles(account),
            DataType::DrsCapacity => return None,
        })
    }

    /// Every key the fetch of `key` writes; none for derived data.
    pub fn keys_written_for(key: &CacheKey, home: AccountId) -> Vec<CacheKey> {
        Self::of(key, home).map_or_else(Vec::new, |f| f.written_keys(key))
    }

    /// The account the fetch runs in.
    pub fn account(&self) -> AccountId {
        match self {
            Self::SourceServers(at)
            | Self::StagingAccounts(at)
            | Self::Jobs(at)
            | Self::RecoveryInstances(at)
            | Self::SourceNetworks(at)
            | Self::Subnets(at)
            | Self::SecurityGroups(at)
            | Self::InstanceTypes(at) => at.account,
            Self::InstanceProfiles(account) => *account,
        }
    }

    /// The upstream operation, for logs and errors.
    pub const fn operation(&self) -> &'static str {
        match self {
            Self::SourceServers(_) => "DescribeSourceServers",
            Self::StagingAccounts(_) => "ListStagingAccounts",
            Self::Jobs(_) => "DescribeJobs",
            Self::RecoveryInstances(_) => "DescribeRecoveryInstances",
            Self::SourceNetworks(_) => "DescribeSourceNetworks",
            Self::Subnets(_) => "DescribeSubnets",
            Self::SecurityGroups(_) => "DescribeSecurityGroups",
            Self::InstanceTypes(_) => "DescribeInstanceTypes",
            Self::InstanceProfiles(_) => "ListInstanceProfiles",
        }
    }

    /// Every key this fetch writes when asked for `key`: a source-server listing
    /// always writes both of its views.
    pub fn written_keys(&self, key: &CacheKey) -> Vec<CacheKey> {
        match self {
            Self::SourceServers(at) => [DataType::DrsSourceServers, DataType::DrsQuotas]
                .map(|t| CacheKey::new(t, at.region.clone(), at.account))
                .into(),
            _ => vec![key.clone()],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Region;

    fn key(raw: &str) -> CacheKey {
        CacheKey::parse(raw).unwrap()
    }

    fn home() -> AccountId {
        AccountId::parse("999999999999").unwrap()
    }

    #[test]
    fn account_independent_data_is_fetched_with_the_home_account() {
        assert_eq!(
            Fetch::of(&key("ec2-instance-types#us-west-2#global"), home()),
            Some(Fetch::InstanceTypes(AccountRegion {
                account: home(),
                region: Region::parse("us-west-2").unwrap()
            }))
        );
        let capacity = CacheKey::fleet_capacity(Region::parse("us-west-2").unwrap());
        assert_eq!(Fetch::of(&capacity, home()), None);
        assert!(Fetch::keys_written_for(&capacity, home()).is_empty());
    }

    #[test]
    fn profiles_of_every_region_share_the_account_listing() {
        let east = Fetch::of(&key("ec2-instance-profiles#us-east-1#111122223333"), home());
        let west = Fetch::of(&key("ec2-instance-profiles#eu-west-1#111122223333"), home());
        assert_eq!(east, west);
        assert_eq!(east.unwrap().operation(), "ListInstanceProfiles");
    }
}
