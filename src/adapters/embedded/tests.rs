//! What the contract tests cannot reach: records damaged inside the file.

use std::time::Duration;

use redb::TableDefinition;

use super::*;
use crate::domain::{Region, Timestamp};

fn key() -> CacheKey {
    CacheKey::global(
        DataType::Ec2InstanceTypes,
        Region::parse("us-east-1").unwrap(),
    )
    .unwrap()
}

fn entry(version: u64) -> CacheEntry {
    let policy = TtlPolicy {
        freshness: Duration::from_secs(60),
        stale_window: Duration::from_secs(600),
    };
    let at = Timestamp::from_unix_secs(1_700_000_000);
    let body = Bytes::from_static(b"{\"instanceTypes\":[]}");
    CacheEntry::fetched(key(), Version::from_raw(version), body, 0, at, policy)
}

fn overwrite(store: &EmbeddedStore, table: TableDefinition<&str, &[u8]>, value: &[u8]) {
    let txn = store.db.begin_write().unwrap();
    txn.open_table(table)
        .unwrap()
        .insert(key().to_string().as_str(), value)
        .unwrap();
    txn.commit().unwrap();
}

fn is_corrupt<T: std::fmt::Debug>(got: Result<T, StoreError>, part: &str) {
    match got {
        Err(StoreError::Corrupt { key: k, reason }) => {
            assert_eq!(k, key().to_string());
            assert!(reason.contains(part), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[tokio::test]
async fn a_damaged_head_is_reported_as_corrupt_and_left_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path().join("cache.redb")).unwrap();
    store.put(&entry(1)).await.unwrap();
    overwrite(&store, HEADS, b"{\"cacheKey\":");

    is_corrupt(store.get(&key()).await, "not the expected JSON");
    is_corrupt(
        store.list(DataType::Ec2InstanceTypes, None, 10).await,
        "JSON",
    );
    is_corrupt(store.put(&entry(2)).await, "JSON");
    let attempt = RefreshAttempt {
        at: Timestamp::from_unix_secs(1_700_000_100),
        failure: None,
    };
    is_corrupt(store.record_attempt(&key(), &attempt).await, "JSON");
}

#[tokio::test]
async fn a_damaged_body_is_reported_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path().join("cache.redb")).unwrap();
    let mut big = entry(1);
    big.body = Bytes::from(format!("[{}]", vec!["{\"a\":1}"; 1000].join(",")));
    big.meta.etag = ETag::of(&big.body);
    store.put(&big).await.unwrap();
    overwrite(&store, BODIES, b"not zstd");

    is_corrupt(store.get(&key()).await, "body does not decode");
    let page = store
        .list(DataType::Ec2InstanceTypes, None, 10)
        .await
        .unwrap();
    assert_eq!(page.entries, vec![big.meta]);
}
