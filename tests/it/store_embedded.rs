//! The embedded store: the shared store contract, plus what only a file-backed
//! store has (reopening, locking, files of earlier versions).

use std::{path::Path, time::Duration};

use crate::support::store_contract::{
    TestStore, entry, incompressible_body, key, store_contract_tests,
};
use drs_cache::{
    adapters::embedded::{EmbeddedStore, OpenError},
    domain::{CacheKey, DataType, ETag, Timestamp},
    ports::{
        CacheListing, CacheReads, CacheWrites, ClaimRule, LeaseClaims, PutOutcome, RefreshLeases,
        StoreError,
    },
};
use tempfile::TempDir;

store_contract_tests!(make_store);

async fn make_store() -> TestStore {
    crate::support::init_test_log();
    let dir = TempDir::new().unwrap();
    let store = EmbeddedStore::open(dir.path().join("cache.redb")).unwrap();
    TestStore::new(store, dir)
}

fn cache_file(dir: &TempDir) -> std::path::PathBuf {
    dir.path().join("cache.redb")
}

fn open(path: &Path) -> EmbeddedStore {
    EmbeddedStore::open(path).unwrap()
}

/// The `OpenError` under the `StoreError` that `open` failed with.
fn open_error(got: Result<EmbeddedStore, StoreError>) -> OpenError {
    match got {
        Ok(_) => panic!("the file opened"),
        Err(StoreError::Unavailable(source)) => match source.downcast::<OpenError>() {
            Ok(e) => *e,
            Err(other) => panic!("not an OpenError: {other:?}"),
        },
        Err(other) => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn data_survives_reopening_the_file() {
    crate::support::init_test_log();
    let dir = TempDir::new().unwrap();
    let subnets = key(DataType::Ec2Subnets, "eu-west-1", "111122223333");
    let e = entry(
        subnets.clone(),
        4,
        &b"{\"subnets\":[],\"count\":0}"[..],
        1_700_000_000,
    );
    {
        let store = open(&cache_file(&dir));
        assert_eq!(store.put(&e).await.unwrap(), PutOutcome::Written);
    }

    let store = open(&cache_file(&dir));
    assert_eq!(store.get(&subnets).await.unwrap(), Some(e.clone()));
    let page = store.list(DataType::Ec2Subnets, None, 10).await.unwrap();
    assert_eq!(page.entries, vec![e.meta]);
    assert_eq!(page.next, None);
}

#[tokio::test]
async fn a_large_body_round_trips_after_reopening() {
    crate::support::init_test_log();
    let dir = TempDir::new().unwrap();
    let servers = key(DataType::DrsSourceServers, "us-west-2", "111122223333");
    let body = incompressible_body(2_500_000, 7);
    assert!(body.len() >= 2_500_000);
    let e = entry(servers.clone(), 1, body.clone(), 1_700_000_000);
    {
        let store = open(&cache_file(&dir));
        assert_eq!(store.put(&e).await.unwrap(), PutOutcome::Written);
    }

    let got = open(&cache_file(&dir))
        .get(&servers)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.body, body);
    assert_eq!(got.meta.etag, ETag::of(&body));
    assert_eq!(got, e);
}

#[tokio::test]
async fn opening_a_file_twice_is_a_clear_error() {
    crate::support::init_test_log();
    let dir = TempDir::new().unwrap();
    let path = cache_file(&dir);
    let first = open(&path);

    let err = open_error(EmbeddedStore::open(&path));
    assert!(matches!(err, OpenError::AlreadyOpen { .. }), "{err:?}");
    assert!(err.to_string().contains("already open"), "{err}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );

    // The first store is unaffected, and the file opens again once it is closed.
    let k = key(DataType::DrsQuotas, "us-east-1", "111122223333");
    first
        .put(&entry(k.clone(), 1, &b"{}"[..], 1))
        .await
        .unwrap();
    drop(first);
    assert!(open(&path).get(&k).await.unwrap().is_some());
}

#[test]
fn opening_a_file_that_is_not_a_store_is_an_error() {
    let dir = TempDir::new().unwrap();
    let path = cache_file(&dir);
    std::fs::write(&path, vec![0x5a_u8; 64 * 1024]).unwrap();
    let err = open_error(EmbeddedStore::open(&path));
    assert!(matches!(err, OpenError::Open { .. }), "{err:?}");
}

const PLAIN: ClaimRule = ClaimRule::Demand {
    mark_pending: false,
};

async fn claim(
    store: &EmbeddedStore,
    k: &CacheKey,
    now: Timestamp,
    until: Timestamp,
) -> Vec<CacheKey> {
    store
        .claim(std::slice::from_ref(k), now, until, PLAIN)
        .await
        .unwrap()
        .keys
}

#[tokio::test]
async fn leases_survive_reopening_the_file() {
    crate::support::init_test_log();
    let dir = TempDir::new().unwrap();
    let k = key(DataType::DrsQuotas, "us-east-1", "111122223333");
    let now = Timestamp::now();
    let until = now.plus(Duration::from_secs(60));
    let pending = ClaimRule::Demand { mark_pending: true };
    let id = {
        let store = open(&cache_file(&dir));
        let claimed = store
            .claim(std::slice::from_ref(&k), now, until, PLAIN)
            .await
            .unwrap();
        assert_eq!(claimed.keys, vec![k.clone()]);
        let marked = store
            .claim(std::slice::from_ref(&k), now, until, pending)
            .await
            .unwrap();
        assert_eq!(marked.keys, []);
        claimed.id
    };

    let store = open(&cache_file(&dir));
    assert_eq!(claim(&store, &k, now, until).await, []);
    assert_eq!(
        store.release(std::slice::from_ref(&k), &id).await.unwrap(),
        vec![k.clone()],
        "the pending mark was kept"
    );
    assert_eq!(claim(&store, &k, now, until).await, [k]);
}

/// A file written by an earlier version keeps its leases in a `leases` table
/// of lease ends: opening it drops that table, keeps the entries, and claims
/// work in the table of today's leases.
#[tokio::test]
async fn a_file_with_the_earlier_leases_table_drops_it_on_open() {
    crate::support::init_test_log();
    let dir = TempDir::new().unwrap();
    let k = key(DataType::Ec2Subnets, "eu-west-1", "111122223333");
    let e = entry(
        k.clone(),
        1,
        &b"{\"subnets\":[],\"count\":0}"[..],
        1_700_000_000,
    );
    let old: redb::TableDefinition<&str, i64> = redb::TableDefinition::new("leases");
    let now = Timestamp::now();
    {
        let store = open(&cache_file(&dir));
        store.put(&e).await.unwrap();
    }
    {
        let db = redb::Database::open(cache_file(&dir)).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(old)
            .unwrap()
            .insert(k.to_string().as_str(), now.unix_secs() + 600)
            .unwrap();
        txn.commit().unwrap();
    }

    let store = open(&cache_file(&dir));
    assert_eq!(store.get(&k).await.unwrap(), Some(e));
    assert_eq!(
        claim(&store, &k, now, now.plus(Duration::from_secs(60))).await,
        [k]
    );
    drop(store);
    let db = redb::Database::open(cache_file(&dir)).unwrap();
    let txn = db.begin_write().unwrap();
    assert!(!txn.delete_table(old).unwrap(), "the earlier table is gone");
}
