//! One round of a batch under its claim: begin the targets' leases, refresh
//! them, hand the targets that failed in passing to the next round, release
//! the rest and say which of them a change arrived for while they were held.

use std::{
    collections::HashSet,
    hash::{BuildHasher, Hasher},
    time::Duration,
};

use crate::{
    domain::CacheKey,
    ports::StoreError,
    workflow::{Batch, Counts, Fetch},
};

use super::{Refresher, summary::BatchReport};

/// How the targets of a batch that failed in passing (throttled, an upstream
/// or store error) are tried again: in a later round of the batch, holding
/// their leases, never the whole batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Rounds a batch runs at most, the first included (at least 1).
    pub rounds: u32,
    /// The pause before the second round, doubling before each further one
    /// (capped at [`MAX_RETRY_WAIT`]); each pause is drawn between half and
    /// all of that, so throttled batches do not come back together.
    pub first_wait: Duration,
}

/// The longest pause between two rounds of a batch.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(60);

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            rounds: 3,
            first_wait: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The pause before round `round` + 1 of a batch.
    pub fn wait_after(&self, round: u32) -> Duration {
        let full = self
            .first_wait
            .saturating_mul(2u32.saturating_pow(round))
            .min(MAX_RETRY_WAIT);
        let half = full / 2;
        let spread = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
        let jitter = if spread == 0 {
            0
        } else {
            random() % (spread + 1)
        };
        half + Duration::from_millis(jitter)
    }
}

/// A number the standard library seeds at random for each call.
fn random() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u8(0);
    hasher.finish()
}

/// How a round ended.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundOutcome {
    /// This round's keys, each as it ended.
    pub report: BatchReport,
    /// The outcomes of every key of the batch that is done, earlier rounds
    /// included: the batch's result once no round follows.
    pub counts: Counts,
    /// The round to run next, for the targets that failed in passing.
    pub retry: Option<Retry>,
    /// Targets released by this round that a change arrived for while held:
    /// each needs one more refresh, in a run of its own.
    pub follow_up: Vec<CacheKey>,
}

/// The next round of a batch, and how long to wait before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    pub wait: Duration,
    pub batch: Batch,
    /// The keys `batch` names.
    pub targets: Vec<CacheKey>,
}

impl Refresher {
    /// Runs round `batch.round` of `batch`, whose targets are `targets`. With a
    /// claim, only the targets whose leases it begins are refreshed (another
    /// claim took over the rest: they count as skipped), and every target but
    /// those handed to the next round is released. Fails only when the leases
    /// cannot be begun, before anything is fetched.
    #[tracing::instrument(skip_all, fields(targets = targets.len(), round = batch.round))]
    pub async fn refresh_round(
        &self,
        batch: &Batch,
        targets: Vec<CacheKey>,
    ) -> Result<RoundOutcome, StoreError> {
        let held = match &batch.claim {
            Some(claim) => {
                let now = self.clock.now();
                self.leases
                    .begin(&targets, claim, now, now.plus(self.settings.lease))
                    .await?
            }
            None => targets.clone(),
        };
        let mut counts = batch.carried;
        counts.skipped += (targets.len() - held.len()) as u64;
        let report = self
            .refresh_after(&held, batch.reason, batch.event_time)
            .await;
        let policy = self.settings.retry;
        let last = batch.round.saturating_add(1) >= policy.rounds.max(1);
        let passing: HashSet<&CacheKey> = if last {
            HashSet::new()
        } else {
            report
                .results
                .iter()
                .filter(|r| r.error.as_ref().is_some_and(|e| e.kind.is_transient()))
                .map(|r| &r.cache_key)
                .collect()
        };
        // A target is retried when any key its fetch writes failed in passing;
        // every key it writes is then counted in a later round, not this one.
        let home = self.settings.home_account;
        let (again, done): (Vec<CacheKey>, Vec<CacheKey>) = held.into_iter().partition(|t| {
            Fetch::keys_written_for(t, home)
                .iter()
                .any(|k| passing.contains(k))
        });
        let rewritten: Vec<CacheKey> = again
            .iter()
            .flat_map(|t| Fetch::keys_written_for(t, home))
            .collect();
        counts += report.counts_except(&rewritten.iter().collect());
        let follow_up = match &batch.claim {
            Some(claim) if !done.is_empty() => match self.leases.release(&done, claim).await {
                Ok(pending) => pending,
                Err(e) => {
                    tracing::error!(
                        error = &e as &dyn std::error::Error,
                        "leases not released: they run out, and a change marked on them waits for the next due refresh"
                    );
                    Vec::new()
                }
            },
            _ => Vec::new(),
        };
        let retry = (!again.is_empty()).then(|| Retry {
            wait: policy.wait_after(batch.round),
            batch: batch.next_round(&again, counts),
            targets: again,
        });
        Ok(RoundOutcome {
            report,
            counts,
            retry,
            follow_up,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_from_half_to_all_of_its_step_up_to_the_cap() {
        let policy = RetryPolicy {
            rounds: 5,
            first_wait: Duration::from_secs(4),
        };
        for (round, full) in [(0, 4), (1, 8), (2, 16), (3, 32), (4, 60), (30, 60)] {
            let full = Duration::from_secs(full);
            for _ in 0..20 {
                let wait = policy.wait_after(round);
                assert!(wait >= full / 2 && wait <= full, "round {round}: {wait:?}");
            }
        }
        let none = RetryPolicy {
            rounds: 3,
            first_wait: Duration::ZERO,
        };
        assert_eq!(none.wait_after(2), Duration::ZERO);
    }
}
