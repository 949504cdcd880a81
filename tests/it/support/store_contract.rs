//! The behaviour every `CacheStore` and `RefreshLeases` adapter must have. Each
//! adapter's test file runs all of it through `store_contract_tests!`.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use drs_cache::{
    domain::{
        AccountId, CacheEntry, CacheKey, DataType, ETag, EntryState, Extension, RefreshAttempt,
        RefreshErrorKind, RefreshFailure, Region, Timestamp, TtlPolicy, Version,
    },
    ports::{
        CacheStore, Claim, ClaimId, ClaimRule, ExtendOutcome, LeaseClaims, PutOutcome,
        RefreshLeases, StoreError,
    },
};
use rand::RngCore;

/// Both sides of the leases: the planner's claims and the refresher's
/// beginnings and releases.
pub trait Leases: LeaseClaims + RefreshLeases {}

impl<T: LeaseClaims + RefreshLeases + ?Sized> Leases for T {}

/// A store under test and whatever must stay alive while it is used.
pub struct TestStore {
    pub store: Arc<dyn CacheStore>,
    /// The same store, as refresh leases.
    pub leases: Arc<dyn Leases>,
    pub _guard: Box<dyn std::any::Any + Send + Sync>,
}

impl TestStore {
    pub fn new<S>(store: S, guard: impl std::any::Any + Send + Sync) -> Self
    where
        S: CacheStore + Leases + 'static,
    {
        let store = Arc::new(store);
        Self {
            store: store.clone(),
            leases: store,
            _guard: Box::new(guard),
        }
    }
}

/// Runs every contract test against the store `$make` (an async fn returning a
/// fresh, empty `TestStore`) builds.
macro_rules! store_contract_tests {
    ($make:path) => {
        $crate::support::store_contract::store_contract_tests!(@tests $make;
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
            figures_round_trip_through_put_list_and_extend,
        );
        $crate::support::store_contract::store_contract_tests!(@lease_tests $make;
            a_fresh_key_is_claimed,
            a_claimed_key_is_claimed_again_only_once_its_claim_runs_out,
            claims_are_per_key_and_keep_the_order_given,
            a_key_given_twice_in_one_call_is_claimed_once,
            concurrent_claims_of_one_key_claim_it_once,
            leases_never_show_in_or_disturb_cache_entries,
            a_released_key_is_free_at_once_and_only_its_claim_releases_it,
            begin_renews_its_claims_lease_and_takes_over_only_an_ended_one,
            changes_while_a_key_is_held_make_one_pending_mark,
            a_begun_lease_never_released_holds_off_scheduled_claims_for_the_backoff,
        );
    };
    (@tests $make:path; $($name:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let s = $make().await;
                $crate::support::store_contract::$name(&*s.store).await;
            }
        )+
    };
    (@lease_tests $make:path; $($name:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let s = $make().await;
                $crate::support::store_contract::$name(&*s.store, &*s.leases).await;
            }
        )+
    };
}
pub(crate) use store_contract_tests;

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

/// The figures of an entry are read back by `get` and `list`, and an
/// extension records them again: an entry stored without figures gains them
/// while its body stays as it was.
pub async fn figures_round_trip_through_put_list_and_extend(store: &dyn CacheStore) {
    use drs_cache::domain::{Figure, Figures};
    let k = quotas_key();
    let figures = Figures::default()
        .with(Figure::ReplicatingServers, 250)
        .with(Figure::ExtendedServers, 0);
    let with = entry(k.clone(), 10, &b"{\"v\":1}"[..], 1_700_000_000).with_figures(figures);
    store.put(&with).await.unwrap();
    assert_eq!(store.get(&k).await.unwrap().unwrap().meta.figures, figures);
    let listed = store.list(DataType::DrsQuotas, None, 10).await.unwrap();
    assert_eq!(listed.entries[0].figures, figures);

    // Written without figures, then extended with them.
    let bare = key(DataType::DrsJobs, "us-east-1", "111122223333");
    let old = entry(bare.clone(), 10, &b"{\"jobs\":[]}"[..], 1_700_000_000);
    store.put(&old).await.unwrap();
    assert!(
        store
            .get(&bare)
            .await
            .unwrap()
            .unwrap()
            .meta
            .figures
            .is_empty()
    );
    let jobs = Figures::default()
        .with(Figure::ActiveJobs, 0)
        .with(Figure::ServersInActiveJobs, 0);
    let ext = Extension {
        figures: jobs,
        ..Extension::new(
            Version::from_raw(11),
            old.meta.etag.clone(),
            Timestamp::from_unix_secs(1_700_000_600),
            policy(),
        )
    };
    assert_eq!(
        store.extend(&bare, &ext).await.unwrap(),
        ExtendOutcome::Extended
    );
    let got = store.get(&bare).await.unwrap().unwrap();
    assert_eq!(got.meta.figures, jobs);
    assert_eq!(got.body, old.body);
    let listed = store.list(DataType::DrsJobs, None, 10).await.unwrap();
    assert_eq!(listed.entries[0].figures, jobs);
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

/// Times to claim at, as seconds after one moment: now, so that no store treats
/// the leases as long expired.
fn lease_clock() -> impl Fn(i64) -> Timestamp {
    let start = Timestamp::now().unix_secs();
    move |offset| Timestamp::from_unix_secs(start + offset)
}

async fn claim(
    leases: &dyn Leases,
    keys: &[&CacheKey],
    now: Timestamp,
    until: Timestamp,
) -> Vec<CacheKey> {
    claim_by(leases, keys, now, until, PLAIN).await.keys
}

/// A claim that neither marks held keys nor minds a died refresh.
const PLAIN: ClaimRule = ClaimRule::Demand {
    mark_pending: false,
};

async fn claim_by(
    leases: &dyn Leases,
    keys: &[&CacheKey],
    now: Timestamp,
    until: Timestamp,
    rule: ClaimRule,
) -> Claim {
    let keys: Vec<CacheKey> = keys.iter().map(|&k| k.clone()).collect();
    leases.claim(&keys, now, until, rule).await.unwrap()
}

pub async fn a_fresh_key_is_claimed(_: &dyn CacheStore, leases: &dyn Leases) {
    let at = lease_clock();
    let (now, until) = (at(0), at(60));
    let k = quotas_key();
    assert_eq!(claim(leases, &[&k], now, until).await, vec![k.clone()]);
    assert_eq!(claim(leases, &[], now, until).await, []);
}

pub async fn a_claimed_key_is_claimed_again_only_once_its_claim_runs_out(
    _: &dyn CacheStore,
    leases: &dyn Leases,
) {
    let at = lease_clock();
    let k = quotas_key();
    let start = at(0);
    let until = at(60);
    assert_eq!(claim(leases, &[&k], start, until).await, vec![k.clone()]);

    // Held until its end, whatever `until` the later calls ask for.
    for now in [start, at(1), at(59)] {
        let later = Timestamp::from_unix_secs(now.unix_secs() + 60);
        assert_eq!(
            claim(leases, &[&k], now, later).await,
            [],
            "claimed again at {} of a lease until {}",
            now.unix_secs(),
            until.unix_secs()
        );
    }

    // Free at its end: `now >= until`.
    let second_until = at(120);
    assert_eq!(
        claim(leases, &[&k], until, second_until).await,
        vec![k.clone()]
    );
    assert_eq!(claim(leases, &[&k], at(119), at(179)).await, []);
    // And after its end.
    assert_eq!(
        claim(leases, &[&k], at(500), at(560)).await,
        vec![k.clone()]
    );
}

pub async fn claims_are_per_key_and_keep_the_order_given(_: &dyn CacheStore, leases: &dyn Leases) {
    let at = lease_clock();
    let (now, until) = (at(0), at(60));
    let a = key(DataType::Ec2Subnets, "us-east-1", "111122223333");
    let b = key(DataType::Ec2Subnets, "us-east-1", "444455556666");
    let c = key(DataType::DrsSourceServers, "eu-west-1", "111122223333");
    let d = key(DataType::Ec2InstanceTypes, "eu-west-1", "111122223333");
    assert_eq!(claim(leases, &[&a], now, until).await, vec![a.clone()]);
    assert_eq!(claim(leases, &[&a, &b], now, until).await, vec![b.clone()]);
    assert_eq!(
        claim(leases, &[&c, &a, &b, &d], now, until).await,
        [c.clone(), d.clone()]
    );

    // Many keys at once, more than are claimed concurrently, in order.
    let many: Vec<CacheKey> = (0..40)
        .map(|i| {
            key(
                DataType::DrsQuotas,
                "us-east-1",
                &format!("{:012}", 100 + i),
            )
        })
        .collect();
    let mut reversed = many.clone();
    reversed.reverse();
    assert_eq!(
        leases
            .claim(&reversed, now, until, PLAIN)
            .await
            .unwrap()
            .keys,
        reversed
    );
    let mut mixed = vec![a.clone()];
    mixed.extend(many.iter().cloned());
    mixed.push(key(DataType::DrsQuotas, "us-east-2", "111122223333"));
    assert_eq!(
        leases.claim(&mixed, now, until, PLAIN).await.unwrap().keys,
        [key(DataType::DrsQuotas, "us-east-2", "111122223333")]
    );
}

pub async fn a_key_given_twice_in_one_call_is_claimed_once(
    _: &dyn CacheStore,
    leases: &dyn Leases,
) {
    let at = lease_clock();
    let (now, until) = (at(0), at(60));
    let a = key(DataType::Ec2Subnets, "us-east-1", "111122223333");
    let b = key(DataType::Ec2SecurityGroups, "us-east-1", "111122223333");
    assert_eq!(
        claim(leases, &[&a, &b, &a, &b, &a], now, until).await,
        [a.clone(), b.clone()]
    );
    // Even with a lease that ends at once, the second mention is not a claim.
    let c = key(DataType::DrsAccounts, "us-east-1", "111122223333");
    assert_eq!(claim(leases, &[&c, &c], now, now).await, vec![c.clone()]);
}

/// Twenty planners claim one shared target, each with a target of its own, at
/// the same moment: the shared one is claimed by exactly one of them.
pub async fn concurrent_claims_of_one_key_claim_it_once(_: &dyn CacheStore, leases: &dyn Leases) {
    let at = lease_clock();
    let (now, until) = (at(0), at(60));
    let shared = quotas_key();
    let calls = (0..20).map(|i| {
        let own = key(
            DataType::DrsSourceServers,
            "us-east-1",
            &format!("{:012}", 500 + i),
        );
        let keys = if i % 2 == 0 {
            vec![shared.clone(), own.clone()]
        } else {
            vec![own.clone(), shared.clone()]
        };
        async move {
            let claimed = leases.claim(&keys, now, until, PLAIN).await.unwrap();
            (own, claimed.keys)
        }
    });
    let answers = futures::future::join_all(calls).await;
    let mut winners = 0;
    for (own, claimed) in answers {
        assert!(claimed.contains(&own), "{own} not claimed: {claimed:?}");
        match claimed.len() {
            1 => {}
            2 => winners += 1,
            _ => panic!("{claimed:?}"),
        }
    }
    assert_eq!(winners, 1, "the shared key was claimed {winners} times");
    assert_eq!(claim(leases, &[&shared], now, until).await, []);
}

/// Leases and entries live side by side under the same cache keys without
/// seeing each other.
pub async fn leases_never_show_in_or_disturb_cache_entries(
    store: &dyn CacheStore,
    leases: &dyn Leases,
) {
    let at = lease_clock();
    let (now, until) = (at(0), at(60));
    let k = key(DataType::Ec2Subnets, "us-east-1", "111122223333");
    let e = entry(
        k.clone(),
        3,
        &b"{\"subnets\":[],\"count\":0}"[..],
        1_700_000_000,
    );
    store.put(&e).await.unwrap();
    assert_eq!(claim(leases, &[&k], now, until).await, vec![k.clone()]);
    assert_eq!(store.get(&k).await.unwrap(), Some(e.clone()));

    // A key with only a lease has no entry, and lists nothing.
    let only_leased = key(DataType::Ec2SecurityGroups, "us-east-1", "111122223333");
    assert_eq!(
        claim(leases, &[&only_leased], now, until).await,
        vec![only_leased.clone()]
    );
    assert_eq!(store.get(&only_leased).await.unwrap(), None);
    let page = store.list(DataType::Ec2Subnets, None, 100).await.unwrap();
    assert_eq!(page.entries, vec![e.meta.clone()]);
    assert_eq!(page.next, None);
    let page = store
        .list(DataType::Ec2SecurityGroups, None, 100)
        .await
        .unwrap();
    assert_eq!(page.entries, []);

    // Entries are written as before, and writing them leaves the lease held.
    let attempt = failure(1_700_000_100, RefreshErrorKind::Throttled);
    store.record_attempt(&k, &attempt).await.unwrap();
    let newer = entry(
        k.clone(),
        4,
        &b"{\"subnets\":[],\"count\":1}"[..],
        1_700_000_200,
    );
    assert_eq!(store.put(&newer).await.unwrap(), PutOutcome::Written);
    assert_eq!(store.get(&k).await.unwrap(), Some(newer.clone()));
    let ext = Extension::new(
        Version::from_raw(5),
        newer.meta.etag.clone(),
        Timestamp::from_unix_secs(1_700_000_300),
        policy(),
    );
    assert_eq!(
        store.extend(&k, &ext).await.unwrap(),
        ExtendOutcome::Extended
    );
    assert_eq!(claim(leases, &[&k, &only_leased], now, until).await, []);
    let page = store.list(DataType::Ec2Subnets, None, 100).await.unwrap();
    assert_eq!(page.entries.len(), 1);
    assert_eq!(page.entries[0].version, Version::from_raw(5));
}

pub async fn a_released_key_is_free_at_once_and_only_its_claim_releases_it(
    _: &dyn CacheStore,
    leases: &dyn Leases,
) {
    let at = lease_clock();
    let k = quotas_key();
    let first = claim_by(leases, &[&k], at(0), at(360), PLAIN).await;
    assert_eq!(first.keys, vec![k.clone()]);
    let other = ClaimId("0000000000000000".into());
    let keys = vec![k.clone()];
    assert_eq!(leases.release(&keys, &other).await.unwrap(), []);
    assert_eq!(
        claim(leases, &[&k], at(1), at(361)).await,
        [],
        "another claim released it"
    );
    assert_eq!(leases.release(&keys, &first.id).await.unwrap(), []);
    assert_eq!(
        claim(leases, &[&k], at(2), at(362)).await,
        vec![k.clone()],
        "released"
    );
    // Releasing what is no longer held changes nothing.
    assert_eq!(leases.release(&keys, &first.id).await.unwrap(), []);
    assert_eq!(claim(leases, &[&k], at(3), at(363)).await, []);
}

pub async fn begin_renews_its_claims_lease_and_takes_over_only_an_ended_one(
    _: &dyn CacheStore,
    leases: &dyn Leases,
) {
    let at = lease_clock();
    let (a, b) = (
        key(DataType::Ec2Subnets, "us-east-1", "111122223333"),
        key(DataType::Ec2Subnets, "us-east-1", "444455556666"),
    );
    let first = claim_by(leases, &[&a], at(0), at(60), PLAIN).await;
    // Renewed past the claim's end: a claim after it finds the key held.
    let both = [a.clone(), b.clone()];
    assert_eq!(
        leases
            .begin(&both, &first.id, at(30), at(400))
            .await
            .unwrap(),
        both,
        "its own key renewed, a free one taken"
    );
    assert_eq!(claim(leases, &[&a, &b], at(100), at(160)).await, []);
    let second = ClaimId("1111111111111111".into());
    assert_eq!(
        leases
            .begin(&both, &second, at(100), at(460))
            .await
            .unwrap(),
        [],
        "held by the first claim"
    );
    // Once it ends, another claim takes it over, and the first no longer can.
    assert_eq!(
        leases
            .begin(std::slice::from_ref(&b), &second, at(400), at(760))
            .await
            .unwrap(),
        vec![b.clone()]
    );
    assert_eq!(
        leases
            .begin(&both, &first.id, at(401), at(761))
            .await
            .unwrap(),
        vec![a.clone()]
    );
}

pub async fn changes_while_a_key_is_held_make_one_pending_mark(
    _: &dyn CacheStore,
    leases: &dyn Leases,
) {
    let at = lease_clock();
    let k = quotas_key();
    let change = ClaimRule::Demand { mark_pending: true };
    let held = claim_by(leases, &[&k], at(0), at(360), PLAIN).await;
    let keys = vec![k.clone()];
    leases.begin(&keys, &held.id, at(1), at(361)).await.unwrap();
    // A burst of 50 changes while the fetch is in flight: none claims it.
    for i in 0..50 {
        assert_eq!(
            claim_by(leases, &[&k], at(2 + i), at(400), change)
                .await
                .keys,
            []
        );
    }
    // A request that marks nothing leaves no mark of its own.
    assert_eq!(claim(leases, &[&k], at(60), at(400)).await, []);
    // The release says a change came: one follow-up, whatever the burst.
    assert_eq!(leases.release(&keys, &held.id).await.unwrap(), keys);
    let next = claim_by(leases, &[&k], at(70), at(430), PLAIN).await;
    assert_eq!(next.keys, keys, "free after the release");
    assert_eq!(
        leases.release(&keys, &next.id).await.unwrap(),
        [],
        "no mark carried over"
    );

    // Without a change while held, nothing is pending.
    let quiet = claim_by(leases, &[&k], at(80), at(440), PLAIN).await;
    assert_eq!(claim(leases, &[&k], at(81), at(441)).await, []);
    assert_eq!(leases.release(&keys, &quiet.id).await.unwrap(), []);

    // A change before the fetch begins is answered by that fetch: the begin
    // clears the mark, and a change after it marks again.
    let early = claim_by(leases, &[&k], at(90), at(450), PLAIN).await;
    assert_eq!(
        claim_by(leases, &[&k], at(91), at(451), change).await.keys,
        []
    );
    leases
        .begin(&keys, &early.id, at(92), at(452))
        .await
        .unwrap();
    assert_eq!(
        leases.release(&keys, &early.id).await.unwrap(),
        [],
        "answered by the fetch"
    );
    let late = claim_by(leases, &[&k], at(100), at(460), PLAIN).await;
    leases
        .begin(&keys, &late.id, at(101), at(461))
        .await
        .unwrap();
    assert_eq!(
        claim_by(leases, &[&k], at(102), at(462), change).await.keys,
        []
    );
    // The next round of the same batch begins again: its fetch answers it too.
    leases
        .begin(&keys, &late.id, at(103), at(463))
        .await
        .unwrap();
    assert_eq!(leases.release(&keys, &late.id).await.unwrap(), []);
}

pub async fn a_begun_lease_never_released_holds_off_scheduled_claims_for_the_backoff(
    _: &dyn CacheStore,
    leases: &dyn Leases,
) {
    let at = lease_clock();
    let backoff = Duration::from_secs(300);
    let tick = ClaimRule::Schedule {
        died_backoff: backoff,
    };
    let (died, unbegun) = (
        key(DataType::Ec2Subnets, "us-east-1", "111122223333"),
        key(DataType::Ec2SecurityGroups, "us-east-1", "111122223333"),
    );
    let claimed = claim_by(leases, &[&died, &unbegun], at(0), at(60), tick).await;
    assert_eq!(claimed.keys, [died.clone(), unbegun.clone()]);
    // The fetch of one begins and its refresher dies: nothing releases it.
    let begun = [died.clone()];
    leases
        .begin(&begun, &claimed.id, at(5), at(65))
        .await
        .unwrap();
    // Past the lease, a tick takes the key whose batch never began, and leaves
    // the died one until the backoff has passed since its lease ended.
    assert_eq!(
        claim_by(leases, &[&died, &unbegun], at(66), at(126), tick)
            .await
            .keys,
        vec![unbegun.clone()]
    );
    assert_eq!(
        claim_by(leases, &[&died], at(364), at(424), tick)
            .await
            .keys,
        []
    );
    // A change is never held off: it claims the died key at once.
    let change = ClaimRule::Demand { mark_pending: true };
    let after_change = claim_by(leases, &[&died], at(100), at(160), change).await;
    assert_eq!(after_change.keys, begun);
    leases.release(&begun, &after_change.id).await.unwrap();
    // And after the backoff a tick takes a died key too.
    let again = claim_by(leases, &[&died], at(200), at(260), PLAIN).await;
    leases
        .begin(&begun, &again.id, at(201), at(261))
        .await
        .unwrap();
    assert_eq!(
        claim_by(leases, &[&died], at(560), at(620), tick)
            .await
            .keys,
        []
    );
    assert_eq!(
        claim_by(leases, &[&died], at(561), at(621), tick)
            .await
            .keys,
        begun
    );
}
