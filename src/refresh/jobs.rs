//! Which upstream fetches a batch of targets needs. One fetch can serve several
//! keys: DRS source servers feed both the server and the quota views, and IAM
//! instance profiles (global) feed every region of an account.

use crate::{
    domain::{AccountId, AccountScope, CacheKey, DataType},
    ports::Scope,
};

/// One upstream listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetch {
    /// DescribeSourceServers; writes `drs-source-servers` and `drs-quotas`.
    SourceServers(Scope),
    StagingAccounts(Scope),
    Subnets(Scope),
    SecurityGroups(Scope),
    /// Account-independent: fetched with the deployment's own account.
    InstanceTypes(Scope),
    /// Global: one listing per account, written to each requested region.
    InstanceProfiles(AccountId),
}

impl Fetch {
    /// The fetch that produces `key`, with `home` as the account of
    /// account-independent data.
    pub fn of(key: &CacheKey, home: AccountId) -> Self {
        let account = match key.scope() {
            AccountScope::Account(id) => id,
            AccountScope::Global => home,
        };
        let scope = Scope {
            account,
            region: key.region().clone(),
        };
        match key.data_type() {
            DataType::DrsSourceServers | DataType::DrsQuotas => Self::SourceServers(scope),
            DataType::DrsAccounts => Self::StagingAccounts(scope),
            DataType::Ec2Subnets => Self::Subnets(scope),
            DataType::Ec2SecurityGroups => Self::SecurityGroups(scope),
            DataType::Ec2InstanceTypes => Self::InstanceTypes(scope),
            DataType::Ec2InstanceProfiles => Self::InstanceProfiles(account),
        }
    }

    /// The account the fetch runs in.
    pub fn account(&self) -> AccountId {
        match self {
            Self::SourceServers(scope)
            | Self::StagingAccounts(scope)
            | Self::Subnets(scope)
            | Self::SecurityGroups(scope)
            | Self::InstanceTypes(scope) => scope.account,
            Self::InstanceProfiles(account) => *account,
        }
    }

    /// The upstream operation, for logs and errors.
    pub const fn operation(&self) -> &'static str {
        match self {
            Self::SourceServers(_) => "DescribeSourceServers",
            Self::StagingAccounts(_) => "ListStagingAccounts",
            Self::Subnets(_) => "DescribeSubnets",
            Self::SecurityGroups(_) => "DescribeSecurityGroups",
            Self::InstanceTypes(_) => "DescribeInstanceTypes",
            Self::InstanceProfiles(_) => "ListInstanceProfiles",
        }
    }
}

/// A fetch and the keys it writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub fetch: Fetch,
    pub keys: Vec<CacheKey>,
}

/// Groups `targets` into one job per distinct fetch, in the order targets first
/// need them. Duplicate targets collapse; a source-server fetch always writes both
/// of its keys.
pub fn plan(targets: &[CacheKey], home: AccountId) -> Vec<Job> {
    let mut jobs: Vec<Job> = Vec::new();
    for key in targets {
        let fetch = Fetch::of(key, home);
        let keys = written_keys(&fetch, key);
        match jobs.iter_mut().find(|job| job.fetch == fetch) {
            Some(job) => {
                for k in keys {
                    if !job.keys.contains(&k) {
                        job.keys.push(k);
                    }
                }
            }
            None => jobs.push(Job { fetch, keys }),
        }
    }
    jobs
}

fn written_keys(fetch: &Fetch, key: &CacheKey) -> Vec<CacheKey> {
    match fetch {
        Fetch::SourceServers(scope) => [DataType::DrsSourceServers, DataType::DrsQuotas]
            .map(|t| CacheKey::new(t, scope.region.clone(), scope.account))
            .into(),
        _ => vec![key.clone()],
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
    fn given_servers_and_quotas_targets_when_planned_then_one_fetch_writes_both() {
        let jobs = plan(
            &[
                key("drs-quotas#us-east-1#111122223333"),
                key("drs-source-servers#us-east-1#111122223333"),
            ],
            home(),
        );
        assert_eq!(jobs.len(), 1);
        assert_eq!(
            jobs[0].keys,
            [
                key("drs-source-servers#us-east-1#111122223333"),
                key("drs-quotas#us-east-1#111122223333"),
            ]
        );
    }

    #[test]
    fn given_profiles_in_two_regions_when_planned_then_iam_is_listed_once_per_account() {
        let jobs = plan(
            &[
                key("ec2-instance-profiles#us-east-1#111122223333"),
                key("ec2-instance-profiles#eu-west-1#111122223333"),
                key("ec2-instance-profiles#eu-west-1#222233334444"),
                key("ec2-instance-profiles#eu-west-1#111122223333"),
            ],
            home(),
        );
        assert_eq!(jobs.len(), 2);
        assert_eq!(jobs[0].keys.len(), 2);
        assert_eq!(jobs[1].keys.len(), 1);
    }

    #[test]
    fn account_independent_data_is_fetched_with_the_home_account() {
        let jobs = plan(&[key("ec2-instance-types#us-west-2#global")], home());
        assert_eq!(
            jobs[0].fetch,
            Fetch::InstanceTypes(Scope {
                account: home(),
                region: Region::parse("us-west-2").unwrap()
            })
        );
    }
}
