//! Refresh leases in the `refresh_leases` table, all the keys of one call in one
//! write transaction.

use async_trait::async_trait;
use redb::ReadableTable;

use super::{EmbeddedStore, tables::LEASES};
use crate::{
    adapters::{distinct, unique_id},
    domain::{CacheKey, Timestamp},
    ports::{Claim, ClaimId, ClaimRule, LeaseClaims, RefreshLeases, StoreError},
};

/// A stored lease.
struct Lease {
    until: i64,
    claim: String,
    started: Option<i64>,
    pending: bool,
}

type Row<'a> = (i64, &'a str, Option<i64>, bool);

impl Lease {
    fn read(row: Row<'_>) -> Self {
        let (until, claim, started, pending) = row;
        Self {
            until,
            claim: claim.to_owned(),
            started,
            pending,
        }
    }

    fn row(&self) -> Row<'_> {
        (self.until, &self.claim, self.started, self.pending)
    }
}

/// Whether a claim under `rule` at `now` may take the key `stored` leases.
fn claimable(stored: Option<&Lease>, now: Timestamp, rule: ClaimRule) -> bool {
    let Some(lease) = stored else { return true };
    let ended = lease.until <= now.unix_secs();
    match rule {
        // A lease begun and never released is a refresh that died.
        ClaimRule::Schedule { died_backoff } => {
            ended && (lease.started.is_none() || lease.until <= now.minus(died_backoff).unix_secs())
        }
        ClaimRule::Demand { .. } => ended,
    }
}

/// What a call does to the lease of one key, and whether its answer names
/// the key.
enum Step {
    Leave,
    Put { lease: Lease, answer: bool },
    Remove { answer: bool },
}

impl EmbeddedStore {
    /// Takes `step` on the lease of each distinct key of `keys`, all in one
    /// write transaction; answers the keys the steps name, in the order given.
    async fn each_lease<F>(&self, keys: &[CacheKey], step: F) -> Result<Vec<CacheKey>, StoreError>
    where
        F: Fn(Option<Lease>) -> Step + Send + 'static,
    {
        let keys: Vec<CacheKey> = distinct(keys).into_iter().cloned().collect();
        if keys.is_empty() {
            return Ok(keys);
        }
        self.run(move |db| {
            let txn = db.begin_write()?;
            let mut answer = Vec::new();
            {
                let mut leases = txn.open_table(LEASES)?;
                for key in keys {
                    let raw = key.to_string();
                    let stored = leases.get(raw.as_str())?.map(|g| Lease::read(g.value()));
                    let named = match step(stored) {
                        Step::Leave => false,
                        Step::Put { lease, answer } => {
                            leases.insert(raw.as_str(), lease.row())?;
                            answer
                        }
                        Step::Remove { answer } => {
                            leases.remove(raw.as_str())?;
                            answer
                        }
                    };
                    if named {
                        answer.push(key);
                    }
                }
            }
            txn.commit()?;
            Ok(answer)
        })
        .await
    }
}

#[async_trait]
impl LeaseClaims for EmbeddedStore {
    /// Atomic: a claim that fails claims nothing.
    #[tracing::instrument(skip_all, fields(keys = keys.len(), until = until.unix_secs()))]
    async fn claim(
        &self,
        keys: &[CacheKey],
        now: Timestamp,
        until: Timestamp,
        rule: ClaimRule,
    ) -> Result<Claim, StoreError> {
        let id = ClaimId(unique_id());
        let claim = id.0.clone();
        let claimed = self
            .each_lease(keys, move |stored| {
                if claimable(stored.as_ref(), now, rule) {
                    let lease = Lease {
                        until: until.unix_secs(),
                        claim: claim.clone(),
                        started: None,
                        pending: false,
                    };
                    return Step::Put {
                        lease,
                        answer: true,
                    };
                }
                match (stored, rule) {
                    (Some(held), ClaimRule::Demand { mark_pending: true })
                        if held.until > now.unix_secs() =>
                    {
                        let lease = Lease {
                            pending: true,
                            ..held
                        };
                        Step::Put {
                            lease,
                            answer: false,
                        }
                    }
                    _ => Step::Leave,
                }
            })
            .await?;
        Ok(Claim { id, keys: claimed })
    }
}

#[async_trait]
impl RefreshLeases for EmbeddedStore {
    #[tracing::instrument(skip_all, fields(keys = keys.len(), until = until.unix_secs()))]
    async fn begin(
        &self,
        keys: &[CacheKey],
        claim: &ClaimId,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<CacheKey>, StoreError> {
        let claim = claim.0.clone();
        self.each_lease(keys, move |stored| {
            let ours = stored
                .as_ref()
                .is_none_or(|lease| lease.claim == claim || lease.until <= now.unix_secs());
            if !ours {
                return Step::Leave;
            }
            let lease = Lease {
                until: until.unix_secs(),
                claim: claim.clone(),
                started: Some(now.unix_secs()),
                // A mark made before now is answered by the fetch beginning now.
                pending: false,
            };
            Step::Put {
                lease,
                answer: true,
            }
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(keys = keys.len()))]
    async fn release(
        &self,
        keys: &[CacheKey],
        claim: &ClaimId,
    ) -> Result<Vec<CacheKey>, StoreError> {
        let claim = claim.0.clone();
        self.each_lease(keys, move |stored| match stored {
            Some(lease) if lease.claim == claim => Step::Remove {
                answer: lease.pending,
            },
            _ => Step::Leave,
        })
        .await
    }
}
