//! Refresh leases in the `refresh_leases` table, all the keys of one call in one
//! write transaction.

use std::collections::HashSet;

use async_trait::async_trait;
use redb::ReadableTable;

use super::{EmbeddedStore, tables::LEASES};
use crate::{
    adapters::unique_id,
    domain::{CacheKey, Timestamp},
    ports::{Claim, ClaimId, ClaimRule, RefreshLeases, StoreError},
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

fn distinct(keys: &[CacheKey]) -> Vec<CacheKey> {
    let mut seen = HashSet::with_capacity(keys.len());
    keys.iter().filter(|&k| seen.insert(k)).cloned().collect()
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

#[async_trait]
impl RefreshLeases for EmbeddedStore {
    /// Atomic: a claim that fails claims nothing.
    #[tracing::instrument(skip_all, fields(keys = keys.len(), until = until.unix_secs()))]
    async fn claim(
        &self,
        keys: &[CacheKey],
        now: Timestamp,
        until: Timestamp,
        rule: ClaimRule,
    ) -> Result<Claim, StoreError> {
        let keys = distinct(keys);
        let id = ClaimId(unique_id());
        if keys.is_empty() {
            return Ok(Claim { id, keys });
        }
        let claim = id.clone();
        let claimed = self
            .run(move |db| {
                let txn = db.begin_write()?;
                let mut claimed = Vec::new();
                {
                    let mut leases = txn.open_table(LEASES)?;
                    for key in keys {
                        let raw = key.to_string();
                        let stored = leases.get(raw.as_str())?.map(|g| Lease::read(g.value()));
                        if claimable(stored.as_ref(), now, rule) {
                            let lease = Lease {
                                until: until.unix_secs(),
                                claim: claim.0.clone(),
                                started: None,
                                pending: false,
                            };
                            leases.insert(raw.as_str(), lease.row())?;
                            claimed.push(key);
                        } else if let (Some(mut held), ClaimRule::Demand { mark_pending: true }) =
                            (stored, rule)
                            && held.until > now.unix_secs()
                        {
                            held.pending = true;
                            leases.insert(raw.as_str(), held.row())?;
                        }
                    }
                }
                txn.commit()?;
                Ok(claimed)
            })
            .await?;
        Ok(Claim { id, keys: claimed })
    }

    #[tracing::instrument(skip_all, fields(keys = keys.len(), until = until.unix_secs()))]
    async fn begin(
        &self,
        keys: &[CacheKey],
        claim: &ClaimId,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<CacheKey>, StoreError> {
        let keys = distinct(keys);
        let claim = claim.clone();
        self.run(move |db| {
            let txn = db.begin_write()?;
            let mut held = Vec::new();
            {
                let mut leases = txn.open_table(LEASES)?;
                for key in keys {
                    let raw = key.to_string();
                    let stored = leases.get(raw.as_str())?.map(|g| Lease::read(g.value()));
                    let ours = match &stored {
                        None => true,
                        Some(lease) => lease.claim == claim.0 || lease.until <= now.unix_secs(),
                    };
                    if ours {
                        let lease = Lease {
                            until: until.unix_secs(),
                            claim: claim.0.clone(),
                            started: Some(now.unix_secs()),
                            // A mark made before now is answered by the fetch
                            // beginning now.
                            pending: false,
                        };
                        leases.insert(raw.as_str(), lease.row())?;
                        held.push(key);
                    }
                }
            }
            txn.commit()?;
            Ok(held)
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(keys = keys.len()))]
    async fn release(
        &self,
        keys: &[CacheKey],
        claim: &ClaimId,
    ) -> Result<Vec<CacheKey>, StoreError> {
        let keys = distinct(keys);
        let claim = claim.clone();
        self.run(move |db| {
            let txn = db.begin_write()?;
            let mut pending = Vec::new();
            {
                let mut leases = txn.open_table(LEASES)?;
                for key in keys {
                    let raw = key.to_string();
                    let stored = leases.get(raw.as_str())?.map(|g| Lease::read(g.value()));
                    if let Some(lease) = stored
                        && lease.claim == claim.0
                    {
                        leases.remove(raw.as_str())?;
                        if lease.pending {
                            pending.push(key);
                        }
                    }
                }
            }
            txn.commit()?;
            Ok(pending)
        })
        .await
    }
}
