//! The behaviour every `CacheStore` adapter must have. Each adapter's test file
//! runs all of it through `store_contract_tests!`.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use drs_cache::{
    domain::{
        AccountId, CacheEntry, CacheKey, DataType, ETag, EntryState, Extension, RefreshAttempt,
        RefreshErrorKind, RefreshFailure, Region, Timestamp, TtlPolicy, Version,
    },
    ports::{CacheStore, ExtendOutcome, PutOutcome, StoreError},
};
use rand::RngCore;

/// A store under test and whatever must stay alive while it is used.
pub struct TestStore {
    pub store: Arc<dyn CacheStore>,
    pub _guard: Box<dyn std::any::Any + Send + Sync>,
}

/// Runs every contract test against the store `$make` (an async fn returning a
/// fresh, empty `TestStore`) builds.
#[macro_export]
macro_rules! store_contract_tests {
    ($make:path) => {
        $crate::store_contract_tests!(@tests $make;
            missing_key_reads_as_none,
            put_then_get_round_trips_meta_and_body,
            older_or_equal_version_never_overwrites_newer,
            newer_version_replaces_older,
            drs_not_initialized_round_trips,
            large_incompressible_body_round_trips,
            body_moves_between_chunked_and_single_item,
            concurrent_readers_never_see_mixed_versions,
            extend_moves_freshness_of_an_unchanged_body_only,
            extend_of_a_newer_stored_version_is_superseded_whatever_the_etag,
            extend_of_a_no_data_entry_is_changed_unless_superseded,
            record_attempt_keeps_body_version_and_freshness,
            record_attempt_on_missing_key_creates_no_data_entry,
            list_pages_through_every_entry_of_one_type,
            list_rejects_a_foreign_cursor,
        );
    };
    (@tests $make:path; $($name:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let s = $make().await;
                support::store_contract::$name(&*s.store).await;
            }
        )+
    };
}

pub fn policy() -> TtlPolicy {
    TtlPolicy {
        freshness: Duration::from_secs(300),
        stale_window: Duration::from_secs(86_400),
    }
}

pub fn key(data_type: DataType, region: &str, account: &str) -> CacheKey {
    CacheKey::new(
        data_type,
        Region::parse(region).unwrap(),
        AccountId::parse(account).unwrap(),
    )
}

fn quotas_key() -> CacheKey {
    key(DataType::DrsQuotas, "us-east-1", "111122223333")
}

pub fn entry(key: CacheKey, version: u64, body: impl Into<Bytes>, fetched_at: i64) -> CacheEntry {
    CacheEntry::fetched(
        key,
        Version::from_raw(version),
        body.into(),
        3,
        Timestamp::from_unix_secs(fetched_at),
        policy(),
    )
}

/// A JSON body of about `bytes` bytes that compresses poorly, so it needs chunks.
pub fn incompressible_body(bytes: usize, tag: u64) -> Bytes {
    let mut raw = vec![0u8; bytes / 2];
    rand::rng().fill_bytes(&mut raw);
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    Bytes::from(format!(
        "{{\"tag\":{tag},\"noise\":\"{hex}\",\"end\":{tag}}}"
    ))
}

pub async fn missing_key_reads_as_none(store: &dyn CacheStore) {
    assert_eq!(store.get(&quotas_key()).await.unwrap(), None);
}

pub async fn put_then_get_round_trips_meta_and_body(store: &dyn CacheStore) {
    let e = entry(
        quotas_key(),
        7,
        &b"{\"replicatingServers\":3}"[..],
        1_700_000_000,
    );
    assert_eq!(store.put(&e).await.unwrap(), PutOutcome::Written);
    assert_eq!(store.get(&quotas_key()).await.unwrap(), Some(e));
}

pub async fn older_or_equal_version_never_overwrites_newer(store: &dyn CacheStore) {
    let newer = entry(quotas_key(), 20, &b"{\"v\":20}"[..], 1_700_000_100);
    store.put(&newer).await.unwrap();
    for older in [19, 20] {
        let stale = entry(quotas_key(), older, &b"{\"v\":\"old\"}"[..], 1_700_000_200);
        assert_eq!(
            store.put(&stale).await.unwrap(),
            PutOutcome::Superseded {
                stored: Version::from_raw(20)
            }
        );
    }
    assert_eq!(store.get(&quotas_key()).await.unwrap(), Some(newer));
}

pub async fn newer_version_replaces_older(store: &dyn CacheStore) {
    store
        .put(&entry(quotas_key(), 1, &b"{\"v\":1}"[..], 1_700_000_000))
        .await
        .unwrap();
    let newer = entry(quotas_key(), 2, &b"{\"v\":2}"[..], 1_700_000_060);
    assert_eq!(store.put(&newer).await.unwrap(), PutOutcome::Written);
    assert_eq!(store.get(&quotas_key()).await.unwrap(), Some(newer));
}

pub async fn drs_not_initialized_round_trips(store: &dyn CacheStore) {
    let k = key(DataType::DrsSourceServers, "eu-west-3", "111122223333");
    let e = CacheEntry::drs_not_initialized(
        k.clone(),
        Version::from_raw(5),
        Timestamp::from_unix_secs(1_700_000_000),
        policy(),
    );
    store.put(&e).await.unwrap();
    let got = store.get(&k).await.unwrap().unwrap();
    assert_eq!(got.meta.state, EntryState::DrsNotInitialized);
    assert_eq!(got, e);
}

pub async fn large_incompressible_body_round_trips(store: &dyn CacheStore) {
    let k = key(DataType::DrsSourceServers, "us-west-2", "111122223333");
    let body = incompressible_body(2_500_000, 1);
    assert!(body.len() >= 2_000_000);
    let e = entry(k.clone(), 1, body.clone(), 1_700_000_000);
    assert_eq!(store.put(&e).await.unwrap(), PutOutcome::Written);
    let got = store.get(&k).await.unwrap().unwrap();
    assert_eq!(got.body, body);
    assert_eq!(got.meta.etag, ETag::of(&body));
}

pub async fn body_moves_between_chunked_and_single_item(store: &dyn CacheStore) {
    let k = key(DataType::Ec2InstanceTypes, "us-east-1", "111122223333");
    let bodies = [
        incompressible_body(1_500_000, 1),
        Bytes::from_static(b"{\"instanceTypes\":[],\"count\":0}"),
        incompressible_body(900_000, 3),
    ];
    for (i, body) in bodies.into_iter().enumerate() {
        let version = i as u64 + 1;
        let e = entry(
            k.clone(),
            version,
            body.clone(),
            1_700_000_000 + version as i64,
        );
        assert_eq!(store.put(&e).await.unwrap(), PutOutcome::Written);
        assert_eq!(
            store.get(&k).await.unwrap().unwrap(),
            e,
            "version {version}"
        );
    }
}

/// Bodies big enough to be chunked are replaced while readers read: every read
/// returns one whole version whose body matches its tag.
pub async fn concurrent_readers_never_see_mixed_versions(store: &dyn CacheStore) {
    let k = key(DataType::DrsSourceServers, "ap-southeast-2", "111122223333");
    let versions: Vec<CacheEntry> = (1..=6)
        .map(|v| {
            entry(
                k.clone(),
                v,
                incompressible_body(1_200_000, v),
                1_700_000_000,
            )
        })
        .collect();
    store.put(&versions[0]).await.unwrap();

    let reads = async {
        let mut seen = 0usize;
        for _ in 0..40 {
            let got = store.get(&k).await.unwrap().expect("entry present");
            let v = got.meta.version.get();
            assert_eq!(
                got.meta.etag,
                ETag::of(&got.body),
                "body of another version"
            );
            assert_eq!(got, versions[v as usize - 1], "mixed read at version {v}");
            seen += 1;
        }
        seen
    };
    let writes = async {
        for e in &versions[1..] {
            assert_eq!(store.put(e).await.unwrap(), PutOutcome::Written);
        }
    };
    let (seen, ()) = tokio::join!(reads, writes);
    assert_eq!(seen, 40);
    assert_eq!(store.get(&k).await.unwrap().as_ref(), versions.last());
}

/// Rule 3 of `CacheStore::extend`: only the freshness and version move, and the
/// refresh clears a recorded failure.
pub async fn extend_moves_freshness_of_an_unchanged_body_only(store: &dyn CacheStore) {
    let k = quotas_key();
    let original = entry(k.clone(), 10, &b"{\"v\":1}"[..], 1_700_000_000);
    store.put(&original).await.unwrap();
    let throttled = failure(1_700_000_300, RefreshErrorKind::Throttled);
    store.record_attempt(&k, &throttled).await.unwrap();
    assert_eq!(
        store.get(&k).await.unwrap().unwrap().meta.last_attempt,
        Some(throttled)
    );

    let later = Timestamp::from_unix_secs(1_700_000_600);
    let ext = Extension::new(
        Version::from_raw(11),
        original.meta.etag.clone(),
        later,
        policy(),
    );
    assert_eq!(
        store.extend(&k, &ext).await.unwrap(),
        ExtendOutcome::Extended
    );
    let mut expected = original.clone();
    expected.meta.version = Version::from_raw(11);
    expected.meta.fetched_at = later;
    expected.meta.expires_at = ext.expires_at;
    expected.meta.stale_until = ext.stale_until;
    expected.meta.last_attempt = Some(RefreshAttempt {
        at: later,
        failure: None,
    });
    let got = store.get(&k).await.unwrap().unwrap();
    assert_eq!(got.body, original.body);
    assert_eq!(got.meta.created_at, original.meta.created_at);
    assert_eq!(got.meta.state, original.meta.state);
    assert_eq!(got.meta.item_count, original.meta.item_count);
    assert_eq!(
        got.meta.last_attempt, expected.meta.last_attempt,
        "failure cleared"
    );
    assert_eq!(got, expected);

    let older = Extension::new(
        Version::from_raw(9),
        original.meta.etag.clone(),
        later,
        policy(),
    );
    assert_eq!(
        store.extend(&k, &older).await.unwrap(),
        ExtendOutcome::Superseded {
            stored: Version::from_raw(11)
        }
    );
    let other = Extension::new(Version::from_raw(12), ETag::of(b"other"), later, policy());
    assert_eq!(
        store.extend(&k, &other).await.unwrap(),
        ExtendOutcome::Changed
    );
    let missing = key(DataType::DrsQuotas, "us-east-2", "111122223333");
    assert_eq!(
        store.extend(&missing, &other).await.unwrap(),
        ExtendOutcome::Changed
    );
    assert_eq!(store.get(&missing).await.unwrap(), None);
    assert_eq!(store.get(&k).await.unwrap(), Some(expected));
}

/// Rule 1 of `CacheStore::extend`: a stored version the same or newer wins,
/// whatever its etag, and nothing is written.
pub async fn extend_of_a_newer_stored_version_is_superseded_whatever_the_etag(
    store: &dyn CacheStore,
) {
    let k = quotas_key();
    let stored = entry(k.clone(), 10, &b"{\"v\":10}"[..], 1_700_000_000);
    store.put(&stored).await.unwrap();

    let later = Timestamp::from_unix_secs(1_700_000_600);
    for version in [9, 10] {
        let ext = Extension::new(
            Version::from_raw(version),
            ETag::of(b"{\"v\":\"another body\"}"),
            later,
            policy(),
        );
        assert_ne!(ext.etag, stored.meta.etag);
        assert_eq!(
            store.extend(&k, &ext).await.unwrap(),
            ExtendOutcome::Superseded {
                stored: Version::from_raw(10)
            },
            "extension of version {version}"
        );
    }
    assert_eq!(store.get(&k).await.unwrap(), Some(stored));
}

/// Rules 1 and 2 of `CacheStore::extend` on the body-less entry that
/// `record_attempt` leaves: never extended.
pub async fn extend_of_a_no_data_entry_is_changed_unless_superseded(store: &dyn CacheStore) {
    let k = key(DataType::DrsAccounts, "us-east-1", "999988887777");
    let denied = failure(1_700_000_000, RefreshErrorKind::AccessDenied);
    store.record_attempt(&k, &denied).await.unwrap();
    let no_data = store.get(&k).await.unwrap().unwrap();
    assert_eq!(no_data.meta.state, EntryState::NoData);

    let later = Timestamp::from_unix_secs(1_700_000_600);
    let same_etag = Extension::new(
        no_data.meta.version,
        no_data.meta.etag.clone(),
        later,
        policy(),
    );
    assert_eq!(
        store.extend(&k, &same_etag).await.unwrap(),
        ExtendOutcome::Superseded {
            stored: no_data.meta.version
        }
    );
    let newer = Extension::new(
        Version::from_raw(no_data.meta.version.get() + 1),
        no_data.meta.etag.clone(),
        later,
        policy(),
    );
    assert_eq!(
        store.extend(&k, &newer).await.unwrap(),
        ExtendOutcome::Changed
    );
    assert_eq!(store.get(&k).await.unwrap(), Some(no_data));
}

fn failure(at: i64, kind: RefreshErrorKind) -> RefreshAttempt {
    RefreshAttempt {
        at: Timestamp::from_unix_secs(at),
        failure: Some(RefreshFailure {
            kind,
            message: format!("{} at {at}", kind.as_str()),
        }),
    }
}

pub async fn record_attempt_keeps_body_version_and_freshness(store: &dyn CacheStore) {
    let k = quotas_key();
    let original = entry(
        k.clone(),
        10,
        incompressible_body(800_000, 10),
        1_700_000_000,
    );
    store.put(&original).await.unwrap();

    let denied = failure(1_700_000_900, RefreshErrorKind::AccessDenied);
    store.record_attempt(&k, &denied).await.unwrap();
    let got = store.get(&k).await.unwrap().unwrap();
    assert_eq!(got.meta.last_attempt.as_ref(), Some(&denied));
    let mut expected = original.clone();
    expected.meta.last_attempt = Some(denied.clone());
    assert_eq!(got, expected);

    let earlier = failure(1_700_000_500, RefreshErrorKind::Throttled);
    store.record_attempt(&k, &earlier).await.unwrap();
    assert_eq!(
        store.get(&k).await.unwrap().unwrap().meta.last_attempt,
        Some(denied)
    );
}

pub async fn record_attempt_on_missing_key_creates_no_data_entry(store: &dyn CacheStore) {
    let k = key(DataType::DrsAccounts, "us-east-1", "999988887777");
    let denied = failure(1_700_000_000, RefreshErrorKind::AccessDenied);
    store.record_attempt(&k, &denied).await.unwrap();
    let got = store.get(&k).await.unwrap().unwrap();
    assert_eq!(got.meta.state, EntryState::NoData);
    assert_eq!(got.meta.last_attempt, Some(denied));
    assert!(got.body.is_empty());

    let first = entry(
        k.clone(),
        1,
        &b"{\"accounts\":[],\"count\":0}"[..],
        1_700_000_100,
    );
    assert_eq!(store.put(&first).await.unwrap(), PutOutcome::Written);
    assert_eq!(store.get(&k).await.unwrap(), Some(first));
}

pub async fn list_pages_through_every_entry_of_one_type(store: &dyn CacheStore) {
    let regions = ["us-east-1", "us-west-2", "eu-west-1"];
    let accounts = ["111122223333", "444455556666", "777788889999"];
    let mut expected = Vec::new();
    for (i, region) in regions.iter().enumerate() {
        for (j, account) in accounts.iter().enumerate().take(if i == 2 { 1 } else { 3 }) {
            let created = 1_700_000_000 + (i * 10 + j) as i64;
            let e = entry(
                key(DataType::Ec2Subnets, region, account),
                1,
                &b"{}"[..],
                created,
            );
            store.put(&e).await.unwrap();
            expected.push(e.meta);
        }
    }
    for region in regions {
        let other = entry(
            key(DataType::Ec2SecurityGroups, region, accounts[0]),
            1,
            &b"{}"[..],
            1,
        );
        store.put(&other).await.unwrap();
    }

    let mut listed = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = store
            .list(DataType::Ec2Subnets, cursor.as_deref(), 3)
            .await
            .unwrap();
        assert!(page.entries.len() <= 3);
        listed.extend(page.entries);
        pages += 1;
        assert!(pages <= 4, "paging does not end");
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert!(pages >= 3);
    assert_eq!(listed, expected, "every subnet entry once, oldest first");
}

pub async fn list_rejects_a_foreign_cursor(store: &dyn CacheStore) {
    let got = store
        .list(DataType::Ec2Subnets, Some("not-a-cursor"), 10)
        .await;
    assert!(matches!(got, Err(StoreError::InvalidCursor)), "{got:?}");
}
