//! The fleet capacity, kept by scheduled ticks: summed from the metadata a
//! tick lists anyway, and written only when it changed (else its freshness
//! moves), so that a read of it costs one entry whatever the fleet size.

use std::{collections::HashMap, time::Duration};

use bytes::Bytes;

use crate::{
    domain::{
        CacheEntry, CacheKey, Clock, EntryMeta, Timestamp, TtlPolicy, Version, fleet::FleetCapacity,
    },
    errors,
    ports::{self, CacheWrites},
};

use super::PlanConfig;

/// The shortest freshness of a fleet capacity, whatever the tick: with ticks
/// a second apart (the local mode's fastest), a loaded machine's late tick
/// would otherwise mark a just-summed capacity stale.
const MIN_FRESHNESS: Duration = Duration::from_secs(30);

/// How long a fleet capacity stays fresh: two ticks (at least
/// [`MIN_FRESHNESS`]), so one late tick does not mark it stale, and a planner
/// that stopped does within two.
fn freshness(config: &PlanConfig) -> Duration {
    (config.schedule_interval * 2).max(MIN_FRESHNESS)
}

/// Sums the fleet capacity from `stored` (the metadata of every kept type)
/// and writes it. A failure is logged and left to the next tick: it never
/// fails the plan.
pub async fn keep(
    store: &dyn CacheWrites,
    clock: &dyn Clock,
    config: &PlanConfig,
    stored: &HashMap<CacheKey, EntryMeta>,
    now: Timestamp,
) {
    let Some(key) = config.capacity_key() else {
        return;
    };
    let entry = entry(key, clock, config, stored, now);
    match ports::store_entry(store, &entry).await {
        Ok(outcome) => tracing::info!(
            cache_key = %entry.meta.key,
            rows = entry.meta.item_count,
            outcome = ?outcome,
            "fleet capacity kept"
        ),
        Err(e) => tracing::error!(
            cache_key = %entry.meta.key,
            error = %errors::chain(&e),
            "fleet capacity not written; the next tick tries again"
        ),
    }
}

/// The fleet capacity entry as of `now`: its data as old as its oldest input
/// (so a read's `Age` is that input's age), fresh for two ticks (at least 30 s) from now.
pub fn entry(
    key: CacheKey,
    clock: &dyn Clock,
    config: &PlanConfig,
    stored: &HashMap<CacheKey, EntryMeta>,
    now: Timestamp,
) -> CacheEntry {
    let summed = FleetCapacity::sum(
        stored,
        &config.accounts,
        &config.regions,
        &config.data_types,
        &config.thresholds,
        now,
    );
    // Enums, strings and numbers: serializing cannot fail.
    let body = Bytes::from(serde_json::to_vec(&summed.capacity).unwrap_or_default());
    let rows = summed.capacity.row_count as u64;
    let policy = TtlPolicy {
        freshness: freshness(config),
        stale_window: TtlPolicy::DEFAULT_STALE_WINDOW,
    };
    let mut entry =
        CacheEntry::fetched(key, Version::at_fetch_start(clock), body, rows, now, policy);
    entry.meta.fetched_at = summed.oldest_input.unwrap_or(now).min(now);
    entry
}
