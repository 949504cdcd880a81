//! Which upstream fetches a batch of targets needs: one job per distinct
//! [`Fetch`], writing every key it feeds.

use crate::{
    domain::{AccountId, CacheKey},
    workflow::Fetch,
};

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
        let Some(fetch) = Fetch::of(key, home) else {
            tracing::error!(cache_key = %key, "derived data is not fetched; target left out");
            continue;
        };
        let keys = fetch.written_keys(key);
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
