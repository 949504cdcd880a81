//! The DynamoDB store on a moto server: the shared store contract, plus the
//! items it writes, read with the raw client.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use crate::support::{
    moto,
    proxy::{FaultProxy, Mode},
    store_contract::{TestStore, entry, incompressible_body, key, policy, store_contract_tests},
};
use aws_sdk_dynamodb::{
    Client,
    config::{
        ConfigBag, Intercept, RuntimeComponents, interceptors::BeforeTransmitInterceptorContextRef,
        retry::RetryConfig,
    },
    primitives::Blob,
    types::AttributeValue,
};
use drs_cache::{
    adapters::dynamodb::{DynamoDbStore, INDEX_BY_DATA_TYPE, create_table},
    domain::{
        CacheEntry, CacheKey, DataType, ETag, Extension, RefreshAttempt, RefreshErrorKind,
        RefreshFailure, Timestamp, Version,
    },
    ports::{
        BoxError, CacheListing, CacheReads, CacheWrites, ClaimId, ClaimRule, ExtendOutcome,
        LeaseClaims, PutOutcome, RefreshLeases, StoreError,
    },
};

type Item = std::collections::HashMap<String, AttributeValue>;

store_contract_tests!(make_store);

/// A fresh table on the moto server, with a store on it and a raw client.
struct Table {
    client: Client,
    name: String,
    store: DynamoDbStore,
}

async fn new_table() -> Table {
    crate::support::init_test_log();
    let client = moto::dynamodb_client(moto::endpoint()).await;
    let name = moto::unique_name("cache");
    create_table(&client, &name).await.unwrap();
    let store = DynamoDbStore::new(client.clone(), name.clone());
    Table {
        client,
        name,
        store,
    }
}

async fn make_store() -> TestStore {
    let table = new_table().await;
    TestStore::new(table.store, ())
}

impl Table {
    /// The items of `data_type` in the `dataType` index.
    async fn indexed(&self, data_type: DataType) -> Vec<Item> {
        self.client
            .query()
            .table_name(&self.name)
            .index_name(INDEX_BY_DATA_TYPE)
            .key_condition_expression("dataType = :t")
            .expression_attribute_values(":t", AttributeValue::S(data_type.as_str().into()))
            .send()
            .await
            .unwrap()
            .items
            .unwrap_or_default()
    }

    async fn raw_get(&self, key: &str) -> Option<Item> {
        self.client
            .get_item()
            .table_name(&self.name)
            .key("cacheKey", AttributeValue::S(key.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
    }

    async fn raw_put(&self, item: Item) {
        self.client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(item))
            .send()
            .await
            .unwrap();
    }

    async fn scan(&self) -> Vec<Item> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.name)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap();
            items.extend(out.items().iter().cloned());
            start = out.last_evaluated_key;
            if start.is_none() {
                return items;
            }
        }
    }

    /// The keys of all chunk items, sorted.
    async fn chunk_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .scan()
            .await
            .iter()
            .map(|item| text(item, "cacheKey").to_owned())
            .filter(|k| CacheKey::parse(k).is_err() && !k.starts_with("lease#"))
            .collect();
        keys.sort();
        keys
    }
}

fn text<'a>(item: &'a Item, name: &str) -> &'a str {
    item.get(name).unwrap().as_s().unwrap()
}

fn number(item: &Item, name: &str) -> i64 {
    item.get(name).unwrap().as_n().unwrap().parse().unwrap()
}

/// Attribute name to DynamoDB type.
fn shape(item: &Item) -> BTreeMap<&str, &'static str> {
    item.iter()
        .map(|(name, value)| {
            let ty = match value {
                AttributeValue::S(_) => "S",
                AttributeValue::N(_) => "N",
                AttributeValue::B(_) => "B",
                _ => "other",
            };
            (name.as_str(), ty)
        })
        .collect()
}

fn expected_shape(extra: &[(&'static str, &'static str)]) -> BTreeMap<&'static str, &'static str> {
    let mut shape: BTreeMap<_, _> = [
        ("cacheKey", "S"),
        ("dataType", "S"),
        ("region", "S"),
        ("accountId", "S"),
        ("createdAt", "N"),
        ("expiresAt", "N"),
        ("ttl", "N"),
        ("version", "N"),
        ("etag", "S"),
        ("state", "S"),
        ("fetchedAt", "N"),
        ("itemCount", "N"),
        ("lastAttemptAt", "N"),
        ("encoding", "S"),
    ]
    .into_iter()
    .collect();
    shape.extend(extra.iter().copied());
    shape
}

fn servers_key() -> CacheKey {
    key(DataType::DrsSourceServers, "us-west-2", "111122223333")
}

fn failure(at: i64) -> RefreshAttempt {
    RefreshAttempt {
        at: Timestamp::from_unix_secs(at),
        failure: Some(RefreshFailure {
            kind: RefreshErrorKind::Throttled,
            message: "Rate exceeded".into(),
        }),
    }
}

#[tokio::test]
async fn an_inline_head_has_exactly_the_documented_attributes() {
    let t = new_table().await;
    let mut e = entry(servers_key(), 7, &b"{\"items\":[]}"[..], 1_700_000_000);
    e.meta.last_attempt = Some(failure(1_700_000_000));
    assert_eq!(t.store.put(&e).await.unwrap(), PutOutcome::Written);

    let head = t
        .raw_get("drs-source-servers#us-west-2#111122223333")
        .await
        .unwrap();
    assert_eq!(
        shape(&head),
        expected_shape(&[
            ("data", "B"),
            ("lastErrorKind", "S"),
            ("lastErrorMessage", "S")
        ])
    );
    assert_eq!(text(&head, "dataType"), "drs-source-servers");
    assert_eq!(text(&head, "region"), "us-west-2");
    assert_eq!(text(&head, "accountId"), "111122223333");
    assert_eq!(text(&head, "state"), "READY");
    assert_eq!(text(&head, "encoding"), "json");
    assert_eq!(text(&head, "etag"), e.meta.etag.as_str());
    assert_eq!(text(&head, "lastErrorKind"), "Throttled");
    assert_eq!(text(&head, "lastErrorMessage"), "Rate exceeded");
    assert_eq!(number(&head, "version"), 7);
    assert_eq!(number(&head, "createdAt"), 1_700_000_000);
    assert_eq!(number(&head, "fetchedAt"), 1_700_000_000);
    assert_eq!(number(&head, "expiresAt"), e.meta.expires_at.unix_secs());
    assert_eq!(number(&head, "itemCount"), 3);
    assert_eq!(
        head["data"].as_b().unwrap().as_ref(),
        b"{\"items\":[]}".as_slice()
    );

    let global = key(DataType::Ec2InstanceTypes, "eu-west-1", "111122223333");
    t.store
        .put(&entry(global, 1, &b"[]"[..], 1_700_000_000))
        .await
        .unwrap();
    let head = t
        .raw_get("ec2-instance-types#eu-west-1#global")
        .await
        .unwrap();
    assert_eq!(text(&head, "accountId"), "global");
}

#[tokio::test]
async fn a_chunked_head_and_its_chunks_have_exactly_the_documented_attributes() {
    let t = new_table().await;
    let e = entry(
        servers_key(),
        3,
        incompressible_body(1_000_000, 3),
        1_700_000_000,
    );
    t.store.put(&e).await.unwrap();

    let head = t.raw_get(&e.meta.key.to_string()).await.unwrap();
    assert_eq!(
        shape(&head),
        expected_shape(&[("chunkSet", "S"), ("chunkCount", "N"), ("chunkTtl", "N")])
    );
    assert_eq!(text(&head, "encoding"), "zstd+json");
    let set = text(&head, "chunkSet");
    assert!(set.starts_with("v3-"), "{set}");
    let count = number(&head, "chunkCount");
    assert!(count >= 2, "{count} chunks");

    let chunks = t.chunk_keys().await;
    let expected: Vec<String> = (0..count)
        .map(|n| format!("{}#{set}#c{n}", e.meta.key))
        .collect();
    let mut sorted = expected.clone();
    sorted.sort();
    assert_eq!(chunks, sorted);
    let mut total = 0;
    for key in &expected {
        let chunk = t.raw_get(key).await.unwrap();
        assert_eq!(
            shape(&chunk),
            BTreeMap::from([("cacheKey", "S"), ("data", "B"), ("ttl", "N")])
        );
        let len = chunk["data"].as_b().unwrap().as_ref().len();
        assert!(len <= 350_000, "chunk of {len} bytes");
        total += len;
    }
    assert_eq!(total, zstd_len(&e));
}

fn zstd_len(e: &CacheEntry) -> usize {
    drs_cache::domain::payload::encode(&e.body).bytes.len()
}

#[tokio::test]
async fn chunk_items_are_not_listed_and_are_deleted_after_replacement() {
    let t = new_table().await;
    let k = servers_key();
    let v1 = entry(
        k.clone(),
        1,
        incompressible_body(1_000_000, 1),
        1_700_000_000,
    );
    t.store.put(&v1).await.unwrap();
    assert!(t.chunk_keys().await.len() >= 2);

    assert_eq!(
        t.indexed(DataType::DrsSourceServers).await.len(),
        1,
        "only the head is indexed"
    );
    let page = t
        .store
        .list(DataType::DrsSourceServers, None, 100)
        .await
        .unwrap();
    assert_eq!(page.entries, std::slice::from_ref(&v1.meta));
    assert_eq!(page.next, None);

    let v2 = entry(
        k.clone(),
        2,
        incompressible_body(1_000_000, 2),
        1_700_000_100,
    );
    t.store.put(&v2).await.unwrap();
    let head = t.raw_get(&k.to_string()).await.unwrap();
    let set = text(&head, "chunkSet");
    let chunks = t.chunk_keys().await;
    assert_eq!(chunks.len() as i64, number(&head, "chunkCount"));
    assert!(
        chunks.iter().all(|c| c.contains(set)),
        "chunks of version 1 are left: {chunks:?}"
    );

    let v3 = entry(k.clone(), 3, &b"{\"small\":true}"[..], 1_700_000_200);
    t.store.put(&v3).await.unwrap();
    assert_eq!(t.chunk_keys().await, Vec::<String>::new());
    assert_eq!(t.store.get(&k).await.unwrap(), Some(v3));
}

#[tokio::test]
async fn create_table_twice_is_ok_and_ttl_is_on() {
    let t = new_table().await;
    create_table(&t.client, &t.name).await.unwrap();
    let ttl = t
        .client
        .describe_time_to_live()
        .table_name(&t.name)
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description().unwrap();
    assert_eq!(ttl.attribute_name(), Some("ttl"));
    assert_eq!(
        ttl.time_to_live_status().map(|s| s.as_str()),
        Some("ENABLED")
    );
}

#[tokio::test]
async fn ttl_is_the_end_of_the_stale_window_and_chunks_outlive_their_head() {
    let t = new_table().await;
    let k = servers_key();
    let e = entry(
        k.clone(),
        10,
        incompressible_body(1_000_000, 10),
        1_700_000_000,
    );
    t.store.put(&e).await.unwrap();
    let head = t.raw_get(&k.to_string()).await.unwrap();
    assert_eq!(number(&head, "ttl"), e.meta.stale_until.unix_secs());
    assert_chunks_outlive(&t, e.meta.stale_until).await;

    let ext = Extension::new(
        Version::from_raw(11),
        e.meta.etag.clone(),
        Timestamp::from_unix_secs(1_700_100_000),
        policy(),
    );
    assert_eq!(
        t.store.extend(&k, &ext).await.unwrap(),
        ExtendOutcome::Extended
    );
    let head = t.raw_get(&k.to_string()).await.unwrap();
    assert_eq!(number(&head, "ttl"), ext.stale_until.unix_secs());
    assert_eq!(number(&head, "lastAttemptAt"), ext.fetched_at.unix_secs());
    assert_chunks_outlive(&t, ext.stale_until).await;
    assert_eq!(t.store.get(&k).await.unwrap().unwrap().body, e.body);
}

/// Bytes of `item` as DynamoDB bills them, rounded up: every attribute name,
/// and each value's bytes (a number counted as its decimal text, which is
/// never less than DynamoDB counts).
fn billed_bytes(item: &Item) -> usize {
    item.iter()
        .map(|(name, value)| {
            name.len()
                + match value {
                    AttributeValue::S(s) | AttributeValue::N(s) => s.len(),
                    AttributeValue::B(b) => b.as_ref().len(),
                    AttributeValue::M(m) => billed_bytes(m) + 3,
                    other => panic!("unexpected attribute {other:?}"),
                }
        })
        .sum()
}

async fn chunk_ttls(t: &Table) -> Vec<i64> {
    let mut ttls = Vec::new();
    for chunk in t.chunk_keys().await {
        ttls.push(number(&t.raw_get(&chunk).await.unwrap(), "ttl"));
    }
    ttls
}

/// A table holding a 40 KB source-server body (in chunks) fetched at `at`.
async fn chunked_entry(at: i64) -> (Table, CacheKey, CacheEntry) {
    let t = new_table().await;
    let k = servers_key();
    let e = entry(k.clone(), 1, incompressible_body(40_000, 1), at);
    t.store.put(&e).await.unwrap();
    (t, k, e)
}

/// The extension of `e` by a refresh at `at` that found the same body.
fn same_body(e: &CacheEntry, version: u64, at: i64) -> Extension {
    Extension::new(
        Version::from_raw(version),
        e.meta.etag.clone(),
        Timestamp::from_unix_secs(at),
        policy(),
    )
}

/// The common write, a refresh that found the same body, updates a head of
/// at most 1 KB (one write request unit) whatever the body's size, and leaves
/// its chunks alone until the head's stale window would come within three
/// days of their expiry; then it raises theirs a week past the head's and
/// records it.
#[tokio::test]
async fn an_unchanged_refresh_updates_a_one_kilobyte_head_and_raises_its_chunks_every_few_days() {
    let start = 1_700_000_000;
    let (t, k, e) = chunked_entry(start).await;
    let head = t.raw_get(&k.to_string()).await.unwrap();
    assert!(!head.contains_key("data"), "a 40 KB body is in chunks");
    let written = chunk_ttls(&t).await;
    assert_eq!(number(&head, "chunkTtl"), written[0]);

    let extend = |version: u64, at: i64| same_body(&e, version, at);
    // An hour on: the head moves, the chunks do not.
    let hour = extend(2, start + 3_600);
    assert_eq!(
        t.store.extend(&k, &hour).await.unwrap(),
        ExtendOutcome::Extended
    );
    let head = t.raw_get(&k.to_string()).await.unwrap();
    let bytes = billed_bytes(&head);
    assert!(bytes <= 1_024, "the head holds {bytes} bytes");
    assert_eq!(number(&head, "ttl"), hour.stale_until.unix_secs());
    assert_eq!(chunk_ttls(&t).await, written);
    assert_chunks_outlive(&t, hour.stale_until).await;

    // Six and a half days on, the chunks would expire within three days of
    // the head's new stale window: raised to a week past it.
    let later = extend(3, start + 13 * 43_200);
    assert_eq!(
        t.store.extend(&k, &later).await.unwrap(),
        ExtendOutcome::Extended
    );
    let raised = later.stale_until.unix_secs() + 7 * 86_400;
    assert!(chunk_ttls(&t).await.iter().all(|&ttl| ttl == raised));
    let head = t.raw_get(&k.to_string()).await.unwrap();
    assert_eq!(number(&head, "chunkTtl"), raised);
    assert_eq!(t.store.get(&k).await.unwrap().unwrap().body, e.body);
}

/// An extension never leaves a head pointing at chunks that may be gone: a
/// chunked head past its stale window (whose chunks the TTL sweep may have
/// taken), or one whose chunks' raise finds one missing, answers `Changed`,
/// so that the body is put again with chunks of its own.
#[tokio::test]
async fn an_extension_of_a_head_whose_chunks_may_be_gone_answers_changed() {
    let start = 1_700_000_000;
    let (t, k, e) = chunked_entry(start).await;
    let extend = |version: u64, at: i64| same_body(&e, version, at);
    // Past its stale window the head may still be read, and its chunks are
    // there: it is extended. Once their ttl has passed, it is not.
    let head = t.raw_get(&k.to_string()).await.unwrap();
    let chunk_ttl = number(&head, "chunkTtl");
    let late = extend(2, chunk_ttl);
    assert_eq!(
        t.store.extend(&k, &late).await.unwrap(),
        ExtendOutcome::Changed
    );

    let chunk = t.chunk_keys().await[0].clone();
    t.client
        .delete_item()
        .table_name(&t.name)
        .key("cacheKey", AttributeValue::S(chunk))
        .send()
        .await
        .unwrap();
    let due = extend(3, start + 13 * 43_200);
    assert_eq!(
        t.store.extend(&k, &due).await.unwrap(),
        ExtendOutcome::Changed
    );
    // The head was left as it was, and a put of the body mends it.
    let head = t.raw_get(&k.to_string()).await.unwrap();
    assert_eq!(number(&head, "version"), 1);
    let again = entry(
        k.clone(),
        3,
        incompressible_body(40_000, 1),
        start + 13 * 43_200,
    );
    assert_eq!(t.store.put(&again).await.unwrap(), PutOutcome::Written);
    assert_eq!(t.store.get(&k).await.unwrap().unwrap().body, again.body);
}

async fn assert_chunks_outlive(t: &Table, stale_until: Timestamp) {
    let chunks = t.chunk_keys().await;
    assert!(!chunks.is_empty());
    for chunk in chunks {
        let ttl = number(&t.raw_get(&chunk).await.unwrap(), "ttl");
        assert!(
            ttl > stale_until.unix_secs(),
            "chunk {chunk} expires at {ttl}"
        );
    }
}

#[tokio::test]
async fn a_first_failed_attempt_writes_a_listed_no_data_head() {
    let t = new_table().await;
    let k = key(DataType::DrsQuotas, "eu-west-3", "444455556666");
    let attempt = failure(1_700_000_000);
    t.store.record_attempt(&k, &attempt).await.unwrap();

    let head = t.raw_get(&k.to_string()).await.unwrap();
    assert_eq!(
        shape(&head),
        expected_shape(&[("lastErrorKind", "S"), ("lastErrorMessage", "S")])
    );
    assert_eq!(text(&head, "state"), "NO_DATA");
    assert_eq!(number(&head, "version"), 0);
    assert_eq!(text(&head, "etag"), ETag::of(b"").as_str());
    for at in ["createdAt", "fetchedAt", "expiresAt", "lastAttemptAt"] {
        assert_eq!(number(&head, at), 1_700_000_000, "{at}");
    }
    assert_eq!(number(&head, "ttl"), 1_700_000_000 + 86_400);

    let page = t.store.list(DataType::DrsQuotas, None, 10).await.unwrap();
    assert_eq!(page.entries.len(), 1);
    assert_eq!(page.entries[0].last_attempt, Some(attempt));

    // A success clears the error.
    let ok = RefreshAttempt {
        at: Timestamp::from_unix_secs(1_700_000_060),
        failure: None,
    };
    t.store.record_attempt(&k, &ok).await.unwrap();
    let head = t.raw_get(&k.to_string()).await.unwrap();
    assert!(!head.contains_key("lastErrorKind") && !head.contains_key("lastErrorMessage"));
    assert_eq!(number(&head, "lastAttemptAt"), 1_700_000_060);
}

#[tokio::test]
async fn a_newer_version_from_another_writer_supersedes_and_leaves_no_orphan_chunks() {
    let t = new_table().await;
    let other_writer = DynamoDbStore::new(t.client.clone(), t.name.clone());
    let k = servers_key();

    let newer = entry(k.clone(), 100, &b"{\"v\":100}"[..], 1_700_000_100);
    assert_eq!(other_writer.put(&newer).await.unwrap(), PutOutcome::Written);
    let losing = entry(
        k.clone(),
        50,
        incompressible_body(1_000_000, 50),
        1_700_000_000,
    );
    assert_eq!(
        t.store.put(&losing).await.unwrap(),
        PutOutcome::Superseded {
            stored: Version::from_raw(100)
        }
    );
    assert_eq!(t.chunk_keys().await, Vec::<String>::new());
    assert_eq!(t.store.get(&k).await.unwrap(), Some(newer));

    // Two writes of one version: the loser removes only its own chunks.
    let first = entry(
        k.clone(),
        200,
        incompressible_body(1_000_000, 1),
        1_700_000_200,
    );
    assert_eq!(other_writer.put(&first).await.unwrap(), PutOutcome::Written);
    let chunks_of_first = t.chunk_keys().await;
    let second = entry(
        k.clone(),
        200,
        incompressible_body(1_000_000, 2),
        1_700_000_200,
    );
    assert_eq!(
        t.store.put(&second).await.unwrap(),
        PutOutcome::Superseded {
            stored: Version::from_raw(200)
        }
    );
    assert_eq!(t.chunk_keys().await, chunks_of_first);
    assert_eq!(t.store.get(&k).await.unwrap(), Some(first));
}

#[tokio::test]
async fn unreadable_items_are_corrupt() {
    let t = new_table().await;
    let k = servers_key();
    let raw_key = k.to_string();
    let e = entry(k.clone(), 1, &b"{\"a\":1}"[..], 1_700_000_000);
    t.store.put(&e).await.unwrap();
    let good = t.raw_get(&raw_key).await.unwrap();

    // Within its stale window (a day from now), so that its chunks must be
    // there.
    let chunked_without_chunks = {
        let mut item = good.clone();
        item.remove("data");
        item.insert("chunkSet".into(), AttributeValue::S("v1-gone".into()));
        item.insert("chunkCount".into(), AttributeValue::N("2".into()));
        let tomorrow = Timestamp::now().plus(std::time::Duration::from_secs(86_400));
        item.insert(
            "ttl".into(),
            AttributeValue::N(tomorrow.unix_secs().to_string()),
        );
        item
    };
    let cases: [(&str, Item); 5] = [
        ("unknown encoding", {
            let mut item = good.clone();
            item.insert("encoding".into(), AttributeValue::S("gzip".into()));
            item
        }),
        ("missing version", {
            let mut item = good.clone();
            item.remove("version");
            item
        }),
        ("body of another tag", {
            let mut item = good.clone();
            item.insert(
                "data".into(),
                AttributeValue::B(Blob::new(&b"{\"a\":2}"[..])),
            );
            item
        }),
        ("bad zstd", {
            let mut item = good.clone();
            item.insert("encoding".into(), AttributeValue::S("zstd+json".into()));
            item
        }),
        ("missing chunks", chunked_without_chunks),
    ];
    for (case, item) in cases {
        t.raw_put(item).await;
        match t.store.get(&k).await {
            Err(StoreError::Corrupt { key, .. }) => assert_eq!(key, raw_key, "{case}"),
            other => panic!("{case}: {other:?}"),
        }
    }
    // Past its stale window, a head without its chunks is one the TTL sweep
    // left behind them: nothing is cached.
    let mut swept = good.clone();
    swept.remove("data");
    swept.insert("chunkSet".into(), AttributeValue::S("v1-swept".into()));
    swept.insert("chunkCount".into(), AttributeValue::N("2".into()));
    t.raw_put(swept).await;
    assert_eq!(t.store.get(&k).await.unwrap(), None);

    // A listed item that cannot be read fails the listing, naming it.
    let mut item = good.clone();
    item.insert("state".into(), AttributeValue::S("MAYBE".into()));
    t.raw_put(item).await;
    match t.store.list(DataType::DrsSourceServers, None, 10).await {
        Err(StoreError::Corrupt { key, reason }) => {
            assert_eq!(key, raw_key);
            assert!(reason.contains("state"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_cursor_is_valid_only_for_its_data_type() {
    let t = new_table().await;
    for (i, account) in ["111122223333", "444455556666"].into_iter().enumerate() {
        let e = entry(
            key(DataType::Ec2Subnets, "us-east-1", account),
            1,
            &b"{}"[..],
            1_700_000_000 + i as i64,
        );
        t.store.put(&e).await.unwrap();
    }
    let first = t.store.list(DataType::Ec2Subnets, None, 1).await.unwrap();
    let cursor = first.next.expect("a second page");
    let second = t
        .store
        .list(DataType::Ec2Subnets, Some(&cursor), 1)
        .await
        .unwrap();
    assert_eq!(second.entries.len(), 1);
    assert_ne!(second.entries, first.entries);
    assert!(matches!(
        t.store
            .list(DataType::Ec2SecurityGroups, Some(&cursor), 1)
            .await,
        Err(StoreError::InvalidCursor)
    ));
}

const PLAIN: ClaimRule = ClaimRule::Demand {
    mark_pending: false,
};

/// Times to claim at, as seconds after one moment near now.
fn lease_clock() -> impl Fn(i64) -> Timestamp {
    let start = Timestamp::now().unix_secs();
    move |offset| Timestamp::from_unix_secs(start + offset)
}

#[tokio::test]
async fn a_lease_item_has_no_data_type_and_expires_by_ttl() {
    let t = new_table().await;
    let at = lease_clock();
    let k = servers_key();
    let e = entry(k.clone(), 1, &b"{\"items\":[]}"[..], 1_700_000_000);
    t.store.put(&e).await.unwrap();
    let (now, until) = (at(0), at(60));
    assert_eq!(
        t.store
            .claim(std::slice::from_ref(&k), now, until, PLAIN)
            .await
            .unwrap()
            .keys,
        vec![k.clone()]
    );

    let lease = t
        .raw_get("lease#drs-source-servers#us-west-2#111122223333")
        .await
        .expect("a lease item");
    assert_eq!(
        shape(&lease),
        BTreeMap::from([
            ("cacheKey", "S"),
            ("leaseUntil", "N"),
            ("claimId", "S"),
            ("ttl", "N")
        ])
    );
    assert_eq!(number(&lease, "leaseUntil"), until.unix_secs());
    let ttl = number(&lease, "ttl");
    assert!(ttl >= until.unix_secs(), "ttl {ttl} before the lease ends");
    assert!(
        ttl <= until.unix_secs() + 86_400,
        "ttl {ttl} keeps it too long"
    );
    let claim_id = text(&lease, "claimId");
    assert_eq!(claim_id.len(), 16, "{claim_id}");

    // The head is untouched, and only the head is indexed.
    assert_eq!(
        t.raw_get(&k.to_string()).await.unwrap()["version"]
            .as_n()
            .unwrap(),
        "1"
    );
    assert_eq!(
        t.indexed(DataType::DrsSourceServers).await.len(),
        1,
        "only the head is indexed"
    );
    assert_eq!(t.scan().await.len(), 2, "one head and one lease");
    assert_eq!(t.chunk_keys().await, Vec::<String>::new());

    // A new claim after the end replaces the item with its own.
    let (later, later_until) = (until, at(120));
    assert_eq!(
        t.store
            .claim(std::slice::from_ref(&k), later, later_until, PLAIN)
            .await
            .unwrap()
            .keys,
        vec![k.clone()]
    );
    let lease2 = t
        .raw_get("lease#drs-source-servers#us-west-2#111122223333")
        .await
        .unwrap();
    assert_eq!(number(&lease2, "leaseUntil"), later_until.unix_secs());
    let claim2 = ClaimId(text(&lease2, "claimId").to_owned());
    assert_ne!(claim2.0, claim_id);

    // A fetch begun under it records its start; a change while held, a mark.
    let keys = [k.clone()];
    let begun = t
        .store
        .begin(&keys, &claim2, at(121), at(481))
        .await
        .unwrap();
    assert_eq!(begun, keys);
    let marked = t
        .store
        .claim(
            &keys,
            at(122),
            at(482),
            ClaimRule::Demand { mark_pending: true },
        )
        .await
        .unwrap();
    assert_eq!(marked.keys, []);
    let lease3 = t
        .raw_get("lease#drs-source-servers#us-west-2#111122223333")
        .await
        .unwrap();
    assert_eq!(number(&lease3, "leaseUntil"), at(481).unix_secs());
    assert_eq!(number(&lease3, "startedAt"), at(121).unix_secs());
    assert_eq!(lease3["pending"].as_bool(), Ok(&true));
    assert!(number(&lease3, "ttl") >= at(481).unix_secs());
    // Released: the item is gone.
    assert_eq!(t.store.release(&keys, &claim2).await.unwrap(), keys);
    assert!(
        t.raw_get("lease#drs-source-servers#us-west-2#111122223333")
            .await
            .is_none()
    );
}

#[tokio::test]
async fn a_claim_on_an_unreachable_table_is_unavailable() {
    let t = new_table().await;
    let at = lease_clock();
    let proxy = FaultProxy::start(moto::endpoint()).await;
    let config = moto::dynamodb_client(&proxy.url())
        .await
        .config()
        .to_builder()
        .retry_config(RetryConfig::disabled())
        .build();
    let store = DynamoDbStore::new(Client::from_conf(config), t.name.clone());
    proxy.set(Mode::Refuse);

    let got = store.claim(&[servers_key()], at(0), at(60), PLAIN).await;
    assert!(matches!(got, Err(StoreError::Unavailable(_))), "{got:?}");
    proxy.set(Mode::Forward);
    assert_eq!(t.scan().await.len(), 0, "nothing was claimed");
}

/// Fails the PutItem requests that mention `fail`, counting every PutItem sent;
/// every other request goes.
#[derive(Debug)]
struct FailPutsOf {
    fail: &'static str,
    puts: Arc<AtomicUsize>,
}

impl Intercept for FailPutsOf {
    fn name(&self) -> &'static str {
        "FailPutsOf"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        let is_put = request
            .headers()
            .get("x-amz-target")
            .is_some_and(|target| target.ends_with(".PutItem"));
        if !is_put {
            return Ok(());
        }
        self.puts.fetch_add(1, Ordering::SeqCst);
        let body = request.body().bytes().unwrap_or_default();
        if String::from_utf8_lossy(body).contains(self.fail) {
            return Err(format!("injected failure of the PutItem of {}", self.fail).into());
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_claim_that_fails_part_way_releases_its_own_leases_only() {
    let t = new_table().await;
    let at = lease_clock();
    let puts = Arc::new(AtomicUsize::new(0));
    let config = t
        .client
        .config()
        .to_builder()
        .interceptor(FailPutsOf {
            fail: "999999999999",
            puts: puts.clone(),
        })
        .retry_config(RetryConfig::disabled())
        .build();
    let failing = DynamoDbStore::new(Client::from_conf(config), t.name.clone());
    let (now, until) = (at(0), at(60));
    // More keys after the failing one than one call has in flight (64).
    let keys: Vec<CacheKey> = (0..150)
        .map(|i| {
            key(
                DataType::DrsQuotas,
                "us-east-1",
                &format!("{:012}", 100 + i),
            )
        })
        .collect();
    let held = key(DataType::DrsQuotas, "us-east-2", "111122223333");
    let bad = key(DataType::DrsQuotas, "us-east-1", "999999999999");
    assert_eq!(
        t.store
            .claim(std::slice::from_ref(&held), now, until, PLAIN)
            .await
            .unwrap()
            .keys,
        vec![held.clone()]
    );

    // Some keys before the failing one, some after it (some of those in flight).
    let mut call = vec![held.clone()];
    call.extend_from_slice(&keys[..10]);
    call.push(bad.clone());
    call.extend_from_slice(&keys[10..]);
    let got = failing.claim(&call, now, until, PLAIN).await;
    assert!(matches!(got, Err(StoreError::Unavailable(_))), "{got:?}");
    // At most those in flight when the failure was seen are sent after it.
    let sent = puts.load(Ordering::SeqCst);
    assert!(sent < call.len(), "{sent} of {} claims sent", call.len());

    // Everything the failed call claimed is free again; the lease of another
    // claim is not.
    let leases: Vec<String> = t
        .scan()
        .await
        .iter()
        .map(|item| text(item, "cacheKey").to_owned())
        .collect();
    assert_eq!(leases, [format!("lease#{held}")]);
    let mut again = keys.clone();
    again.push(held.clone());
    assert_eq!(
        t.store.claim(&again, now, until, PLAIN).await.unwrap().keys,
        keys
    );
}

/// A table whose `dataType` index was made by an earlier release, projecting
/// no `figures`, is refused with the attribute named: listing through it
/// would silently drop the figures the fleet capacity sums.
#[tokio::test]
async fn a_table_whose_index_lacks_an_attribute_the_store_lists_is_refused() {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
        Projection, ProjectionType, ScalarAttributeType,
    };
    let client = moto::dynamodb_client(moto::endpoint()).await;
    let name = moto::unique_name("old-index");
    let attribute = |n: &str, t| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(t)
            .build()
            .unwrap()
    };
    let key = |n: &str, t| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .unwrap()
    };
    let earlier = [
        "version",
        "etag",
        "state",
        "fetchedAt",
        "expiresAt",
        "ttl",
        "itemCount",
        "lastAttemptAt",
        "lastErrorKind",
        "lastErrorMessage",
    ];
    let index = GlobalSecondaryIndex::builder()
        .index_name(INDEX_BY_DATA_TYPE)
        .key_schema(key("dataType", KeyType::Hash))
        .key_schema(key("createdAt", KeyType::Range))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::Include)
                .set_non_key_attributes(Some(earlier.map(String::from).to_vec()))
                .build(),
        )
        .build()
        .unwrap();
    client
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("cacheKey", ScalarAttributeType::S))
        .attribute_definitions(attribute("dataType", ScalarAttributeType::S))
        .attribute_definitions(attribute("createdAt", ScalarAttributeType::N))
        .key_schema(key("cacheKey", KeyType::Hash))
        .global_secondary_indexes(index)
        .send()
        .await
        .unwrap();
    let refused = create_table(&client, &name).await.unwrap_err().to_string();
    assert!(refused.contains("figures"), "{refused}");
}
