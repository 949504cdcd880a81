//! A reader wired to a real DynamoDB table on moto, behind a fault proxy, with
//! a refresh trigger and metrics sink that record what they are given.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use bytes::Bytes;
use drs_cache::{
    adapters::dynamodb::{DynamoDbStore, create_table},
    domain::{
        AccountId, CacheEntry, CacheKey, DataType, Extension, RefreshAttempt, Region, SystemClock,
        Timestamp, TtlPolicy, Version,
    },
    ports::{
        CacheListing, CacheReads, CacheStorage, CacheWrites, Claim, ClaimId, ClaimRule,
        ExtendOutcome, Invalidation, LeaseClaims, MetaPage, PutOutcome, RefreshLeases,
        RefreshReason, RefreshRequestError, RefreshTrigger, RunRequests, StoreError,
    },
    read::{ApiRequest, ApiResponse, ReadService, ReaderSettings, Router, metrics::Recorded},
};

use super::{
    moto,
    proxy::{FaultProxy, Mode},
};

pub const ACCOUNT: &str = "123456789012";

/// Records refresh requests instead of starting workflows.
#[derive(Default)]
pub struct RecordingTrigger(
    Mutex<Vec<(CacheKey, RefreshReason)>>,
    Mutex<Vec<Invalidation>>,
    /// Refresh requests are recorded but refused, as a throttled workflow does.
    AtomicBool,
);

impl RecordingTrigger {
    pub fn refuse_requests(&self) {
        self.2.store(true, Ordering::SeqCst);
    }

    pub fn requests(&self) -> Vec<(CacheKey, RefreshReason)> {
        self.0.lock().unwrap().clone()
    }

    pub fn invalidations(&self) -> Vec<Invalidation> {
        self.1.lock().unwrap().clone()
    }
}

#[async_trait]
impl RefreshTrigger for RecordingTrigger {
    async fn request_refresh(
        &self,
        key: &CacheKey,
        reason: RefreshReason,
    ) -> Result<(), RefreshRequestError> {
        self.0.lock().unwrap().push((key.clone(), reason));
        if self.2.load(Ordering::SeqCst) {
            return Err(RefreshRequestError {
                key: key.to_string(),
                source: "StartExecution throttled".into(),
            });
        }
        Ok(())
    }

    async fn request_invalidation(
        &self,
        invalidation: &Invalidation,
    ) -> Result<(), RefreshRequestError> {
        self.1.lock().unwrap().push(invalidation.clone());
        Ok(())
    }
}

#[async_trait]
impl RunRequests for RecordingTrigger {
    async fn request_targets(
        &self,
        keys: &[CacheKey],
        reason: RefreshReason,
    ) -> Result<(), RefreshRequestError> {
        for key in keys {
            self.request_refresh(key, reason).await?;
        }
        Ok(())
    }
}

/// Counts the reads and writes that reach the real store it wraps, and fails
/// the next puts it is told to, as an unavailable store would.
pub struct CountingStore {
    inner: Arc<dyn CacheStorage>,
    gets: AtomicUsize,
    puts: AtomicUsize,
    failing_puts: AtomicUsize,
}

impl CountingStore {
    pub fn new(inner: Arc<dyn CacheStorage>) -> Self {
        Self {
            inner,
            gets: AtomicUsize::new(0),
            puts: AtomicUsize::new(0),
            failing_puts: AtomicUsize::new(0),
        }
    }

    pub fn gets(&self) -> usize {
        self.gets.load(Ordering::SeqCst)
    }

    /// Puts asked for, failed ones included.
    pub fn puts(&self) -> usize {
        self.puts.load(Ordering::SeqCst)
    }

    /// The next `n` puts fail as unavailable.
    pub fn fail_next_puts(&self, n: usize) {
        self.failing_puts.store(n, Ordering::SeqCst);
    }
}

#[async_trait]
impl CacheReads for CountingStore {
    async fn get(&self, key: &CacheKey) -> Result<Option<CacheEntry>, StoreError> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.inner.get(key).await
    }
}

#[async_trait]
impl CacheWrites for CountingStore {
    async fn put(&self, entry: &CacheEntry) -> Result<PutOutcome, StoreError> {
        self.puts.fetch_add(1, Ordering::SeqCst);
        let failing = self
            .failing_puts
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Err(StoreError::Unavailable("injected: throttled".into()));
        }
        self.inner.put(entry).await
    }

    async fn extend(&self, key: &CacheKey, ext: &Extension) -> Result<ExtendOutcome, StoreError> {
        self.inner.extend(key, ext).await
    }

    async fn record_attempt(
        &self,
        key: &CacheKey,
        attempt: &RefreshAttempt,
    ) -> Result<(), StoreError> {
        self.inner.record_attempt(key, attempt).await
    }
}

#[async_trait]
impl CacheListing for CountingStore {
    async fn list(
        &self,
        data_type: DataType,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<MetaPage, StoreError> {
        self.inner.list(data_type, cursor, limit).await
    }
}

#[async_trait]
impl LeaseClaims for CountingStore {
    async fn claim(
        &self,
        keys: &[CacheKey],
        now: Timestamp,
        until: Timestamp,
        rule: ClaimRule,
    ) -> Result<Claim, StoreError> {
        self.inner.claim(keys, now, until, rule).await
    }
}

#[async_trait]
impl RefreshLeases for CountingStore {
    async fn begin(
        &self,
        keys: &[CacheKey],
        claim: &ClaimId,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<CacheKey>, StoreError> {
        self.inner.begin(keys, claim, now, until).await
    }

    async fn release(
        &self,
        keys: &[CacheKey],
        claim: &ClaimId,
    ) -> Result<Vec<CacheKey>, StoreError> {
        self.inner.release(keys, claim).await
    }
}

pub struct Harness {
    pub router: Router,
    /// Writes straight to the table, never through the proxy.
    pub writer: DynamoDbStore,
    /// The raw client and table, for writing items no store would write.
    pub admin: aws_sdk_dynamodb::Client,
    pub table: String,
    pub proxy: FaultProxy,
    pub reads: Arc<CountingStore>,
    pub trigger: Arc<RecordingTrigger>,
    pub metrics: Arc<Recorded>,
}

pub fn settings() -> ReaderSettings {
    ReaderSettings {
        default_account: Some(AccountId::parse(ACCOUNT).unwrap()),
        store_timeout: Duration::from_millis(500),
        ..ReaderSettings::default()
    }
}

/// A reader on a fresh table.
pub async fn harness(settings: ReaderSettings) -> Harness {
    let endpoint = moto::endpoint();
    let table = moto::unique_name("reader");
    let admin = moto::dynamodb_client(endpoint).await;
    create_table(&admin, &table).await.unwrap();
    let proxy = FaultProxy::start(endpoint).await;
    let reader_store = DynamoDbStore::new(moto::dynamodb_client(&proxy.url()).await, table.clone());
    let reads = Arc::new(CountingStore::new(Arc::new(reader_store)));
    let trigger = Arc::new(RecordingTrigger::default());
    let metrics = Arc::new(Recorded::default());
    let service = ReadService::new(
        reads.clone(),
        trigger.clone(),
        Arc::new(SystemClock),
        settings,
    );
    Harness {
        router: Router::new(Arc::new(service), metrics.clone()),
        writer: DynamoDbStore::new(admin.clone(), table.clone()),
        admin,
        table,
        proxy,
        reads,
        trigger,
        metrics,
    }
}

impl Harness {
    pub async fn get(&self, path: &str, query: &[(&str, &str)]) -> ApiResponse {
        self.router.handle(&ApiRequest::get(path, query)).await
    }

    /// Stores `body` under `key`, fetched `age_secs` ago, with `policy`.
    pub async fn cache(
        &self,
        key: &CacheKey,
        body: impl Into<Bytes>,
        age_secs: i64,
        policy: TtlPolicy,
    ) -> CacheEntry {
        let fetched = Timestamp::from_unix_secs(Timestamp::now().unix_secs() - age_secs);
        let entry = CacheEntry::fetched(
            key.clone(),
            Version::at_fetch_start(&SystemClock),
            body.into(),
            1,
            fetched,
            policy,
        );
        assert_eq!(self.writer.put(&entry).await.unwrap(), PutOutcome::Written);
        entry
    }

    pub fn outage(&self, mode: Mode) {
        self.proxy.set(mode);
    }
}

pub fn key(data_type: DataType, region: &str) -> CacheKey {
    CacheKey::new(
        data_type,
        Region::parse(region).unwrap(),
        AccountId::parse(ACCOUNT).unwrap(),
    )
}

pub fn policy(freshness_secs: u64, stale_window_secs: u64) -> TtlPolicy {
    TtlPolicy {
        freshness: Duration::from_secs(freshness_secs),
        stale_window: Duration::from_secs(stale_window_secs),
    }
}

pub fn header<'a>(r: &'a ApiResponse, name: &str) -> &'a str {
    r.headers().get(name).map_or("", |v| v.to_str().unwrap())
}

pub fn json(r: &ApiResponse) -> serde_json::Value {
    serde_json::from_slice(r.body()).unwrap()
}
