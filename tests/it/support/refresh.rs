//! A refresher and a reader over one DynamoDB table on moto, reading upstream
//! from the fleet simulator (DRS, EC2, IAM) and, where a test says so, from moto
//! (STS, EC2, IAM).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use aws_config::{BehaviorVersion, Region as SdkRegion, SdkConfig};
use aws_sdk_dynamodb::config::Credentials as SdkCredentials;
use aws_types::{
    origin::Origin,
    service_config::{LoadServiceConfig, ServiceConfigKey},
};
use drs_cache::{
    adapters::{
        aws::{AccountAccess, AwsUpstream, CallTimeouts, Credentials, UpstreamConfig},
        dynamodb::{DynamoDbStore, create_table},
    },
    app,
    config::DEFAULT_LEASE,
    domain::{AccountId, CacheKey, TtlTable, capacity::QuotaThresholds},
    ports::{CacheStorage, RefreshReason, RunRequests},
    read::{ApiRequest, ApiResponse, ReaderSettings, metrics::Recorded},
    refresh::{
        RefreshSettings, Refresher, RetryPolicy,
        lambda::RefresherFunction,
        metrics::RefreshMetrics,
        summary::{BatchReport, KeySummary},
    },
    workflow::RunRecords,
};
use drs_sim::{SimConfig, SimHandle, Simulator};

use super::{moto, reader::RecordingTrigger};

/// The deployment's own account: moto's default account, and the simulator's.
pub const HOME: &str = "123456789012";
pub const REGION: &str = "us-east-1";

/// Endpoints per service (by service id: `drs`, `sts`, `ec2`, `iam`), and one
/// for every other service, as `AWS_ENDPOINT_URL_*` variables would give.
#[derive(Debug, Clone, Default)]
pub struct Endpoints {
    default: String,
    services: HashMap<&'static str, String>,
}

impl Endpoints {
    pub fn with(mut self, service_id: &'static str, url: &str) -> Self {
        self.services.insert(service_id, url.to_owned());
        self
    }
}

impl LoadServiceConfig for Endpoints {
    fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
        if key.env() != "AWS_ENDPOINT_URL" {
            return None;
        }
        let url = self.services.get(key.service_id()).unwrap_or(&self.default);
        Some(url.clone())
    }
}

/// A base AWS config with dummy credentials in `REGION`: every service at
/// `default_endpoint` except those `endpoints` names.
pub async fn sdk_config(default_endpoint: &str, endpoints: Endpoints) -> SdkConfig {
    let endpoints = Endpoints {
        default: default_endpoint.to_owned(),
        ..endpoints
    };
    let mut builder = aws_config::defaults(BehaviorVersion::latest())
        .http_client(drs_cache::adapters::aws::https_client())
        .region(SdkRegion::new(REGION))
        .credentials_provider(SdkCredentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .load()
        .await
        .to_builder()
        .service_config(endpoints);
    // The loader marks an endpoint it did not find as set in code, which would
    // make every client ignore the per-service endpoints.
    builder.insert_origin("endpoint_url", Origin::shared_environment_variable());
    builder.build()
}

pub fn home() -> AccountId {
    AccountId::parse(HOME).unwrap()
}

pub fn key(raw: &str) -> CacheKey {
    CacheKey::parse(raw).unwrap()
}

/// The upstream configuration for calls that reach moto: moto renders the whole
/// instance type catalogue for each DescribeInstanceTypes page, 8 to 13 s on a
/// busy two-core machine, past the production attempt timeout of 10 s (which
/// the timeout tests check against fakes, not moto).
pub fn moto_upstream() -> UpstreamConfig {
    UpstreamConfig {
        timeouts: CallTimeouts {
            attempt: Duration::from_secs(60),
            operation: Duration::from_secs(120),
        },
        ..UpstreamConfig::default()
    }
}

pub fn settings() -> RefreshSettings {
    RefreshSettings {
        ttl: TtlTable::default(),
        quota_limits: QuotaThresholds::default(),
        concurrency: 8,
        home_account: home(),
        lease: DEFAULT_LEASE,
        // Short pauses between the rounds of a batch: a test waits 1-3 s in all.
        retry: RetryPolicy {
            rounds: 3,
            first_wait: Duration::from_secs(1),
        },
        // The simulator's clock stands at 2024-06-01 (its fleets' epoch): a
        // window of ten years reaches its jobs from the wall clock's now.
        jobs_window: Duration::from_secs(3_650 * 24 * 60 * 60),
    }
}

/// A fresh cache table on moto.
pub async fn table_store() -> Arc<dyn CacheStorage> {
    dynamodb_table().await
}

/// A fresh cache table on moto.
pub async fn dynamodb_table() -> Arc<DynamoDbStore> {
    let client = moto::dynamodb_client(moto::endpoint()).await;
    let table = moto::unique_name("refresh");
    create_table(&client, &table).await.unwrap();
    Arc::new(DynamoDbStore::new(client, table))
}

/// A reader over `store` for the home account, whose refresh requests are
/// only recorded. It waits for the store as long as a moto server busy with
/// the other tests' writes may take: these tests read what was written, and
/// the reader's own timeouts are tested in `reader`.
pub fn reader(store: Arc<dyn CacheStorage>) -> drs_cache::read::Router {
    app::reader_router(
        store,
        Arc::new(RecordingTrigger::default()),
        ReaderSettings {
            default_account: Some(home()),
            store_timeout: std::time::Duration::from_secs(30),
            ..ReaderSettings::default()
        },
        Arc::new(Recorded::default()),
        None,
    )
}

pub struct Rig {
    pub sim: SimHandle,
    pub store: Arc<dyn CacheStorage>,
    pub refresher: Arc<Refresher>,
    pub metrics: Arc<RecordedRefreshes>,
    router: drs_cache::read::Router,
}

/// Keeps the refresh metrics instead of printing them.
#[derive(Default)]
pub struct RecordedRefreshes(Mutex<Vec<(RefreshReason, KeySummary)>>);

impl RecordedRefreshes {
    pub fn take(&self) -> Vec<(RefreshReason, KeySummary)> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl RefreshMetrics for RecordedRefreshes {
    fn record(&self, reason: RefreshReason, summaries: &[KeySummary]) {
        let mut kept = self.0.lock().unwrap();
        kept.extend(summaries.iter().map(|s| (reason, s.clone())));
    }
}

impl Rig {
    /// The simulator started with `config`, every upstream service at it, only
    /// the home account reachable.
    pub async fn start(config: SimConfig) -> Self {
        let sim = Simulator::start("127.0.0.1:0".parse().unwrap(), config)
            .await
            .unwrap();
        let base = sdk_config(&sim.endpoint(), Endpoints::default()).await;
        let access = AccountAccess {
            own_account: Some(home()),
            others: Credentials::Static(HashMap::new()),
        };
        Self::over(sim, base, access).await
    }

    /// The refresher reading through `base` with `access`.
    pub async fn over(sim: SimHandle, base: SdkConfig, access: AccountAccess) -> Self {
        let store = table_store().await;
        let upstream = AwsUpstream::new(base, access, UpstreamConfig::default()).unwrap();
        let metrics = Arc::new(RecordedRefreshes::default());
        let refresher = Arc::new(app::refresher_over(
            store.clone(),
            store.clone(),
            upstream,
            settings(),
            metrics.clone(),
        ));
        let router = reader(store.clone());
        Self {
            sim,
            store,
            refresher,
            metrics,
            router,
        }
    }

    /// The refresher as its Lambda function runs it: batch counts in `ledger`,
    /// follow-up runs asked of `trigger`.
    pub fn function(
        &self,
        ledger: Arc<dyn RunRecords>,
        trigger: Arc<dyn RunRequests>,
    ) -> RefresherFunction {
        RefresherFunction {
            refresher: self.refresher.clone(),
            ledger,
            trigger,
        }
    }

    pub async fn refresh(&self, keys: &[&str]) -> BatchReport {
        let keys: Vec<CacheKey> = keys.iter().map(|k| key(k)).collect();
        self.refresher.refresh(&keys, RefreshReason::Manual).await
    }

    /// `GET path?query` through the reader.
    pub async fn get(&self, path: &str, query: &[(&str, &str)]) -> ApiResponse {
        self.router.handle(&ApiRequest::get(path, query)).await
    }

    /// The JSON body of a `200` answer to `GET path?query`.
    pub async fn get_json(&self, path: &str, query: &[(&str, &str)]) -> serde_json::Value {
        let response = self.get(path, query).await;
        assert_eq!(
            response.status(),
            200,
            "{path}: {}",
            String::from_utf8_lossy(response.body())
        );
        serde_json::from_slice(response.body()).unwrap()
    }
}

/// `base` with credentials of `account`, from an STS AssumeRole of
/// `role_name` (at the STS endpoint of `base`), as a test writing into
/// another moto account needs.
pub async fn assumed_config(
    base: &SdkConfig,
    account: &str,
    role_name: &str,
    external_id: &str,
) -> SdkConfig {
    let assumed = aws_sdk_sts::Client::new(base)
        .assume_role()
        .role_arn(format!("arn:aws:iam::{account}:role/{role_name}"))
        .role_session_name("test-writer")
        .external_id(external_id)
        .send()
        .await
        .unwrap();
    let c = assumed.credentials.unwrap();
    let keys = SdkCredentials::new(
        c.access_key_id,
        c.secret_access_key,
        Some(c.session_token),
        None,
        "test-writer",
    );
    base.to_builder()
        .credentials_provider(aws_sdk_sts::config::SharedCredentialsProvider::new(keys))
        .build()
}
