//! One module per real system. AWS SDK types stay inside these modules.

pub mod aws;
pub mod backoff;
pub mod dynamodb;
#[cfg(feature = "local")]
pub mod embedded;
pub mod eventbridge;
#[cfg(feature = "local")]
pub mod local_queue;
pub mod s3;
pub mod sfn;

use std::{
    collections::HashSet,
    hash::{BuildHasher, Hasher},
    sync::atomic::{AtomicU64, Ordering},
};

use crate::domain::CacheKey;

/// The keys of `keys` with each one once, in the order of first mention: what
/// a lease call works on.
pub(crate) fn distinct(keys: &[CacheKey]) -> Vec<&CacheKey> {
    let mut seen = HashSet::with_capacity(keys.len());
    keys.iter().filter(|&k| seen.insert(k)).collect()
}

/// 16 hex digits that no other call of this or another process draws.
pub(crate) fn unique_id() -> String {
    static WRITES: AtomicU64 = AtomicU64::new(0);
    // Seeded randomly per process by the standard library.
    let mut random = std::collections::hash_map::RandomState::new().build_hasher();
    random.write_u64(WRITES.fetch_add(1, Ordering::Relaxed));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut id = blake3::Hasher::new();
    id.update(&random.finish().to_le_bytes());
    id.update(&nanos.to_le_bytes());
    id.update(&std::process::id().to_le_bytes());
    id.finalize().to_hex()[..16].to_owned()
}
