//! DRS, EC2 and IAM clients for every account and region the cache reads,
//! built on first use and kept for the life of the process.
//!
//! Credentials are per account: the deployment's own account uses the base
//! `SdkConfig`'s; every other account gets one credentials provider (a role to
//! assume, or fixed keys) and one identity cache, which every client of that
//! account shares, whatever its service or region. An assumed role's credentials
//! are therefore fetched once per account and kept until shortly before they
//! expire. Endpoints come from the base `SdkConfig` (`AWS_ENDPOINT_URL`,
//! `AWS_ENDPOINT_URL_DRS`, ...).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError},
};

use aws_config::{SdkConfig, identity::IdentityCache, sts::AssumeRoleProvider};
use aws_sdk_sts::config::{Credentials as AwsCredentials, Region, SharedCredentialsProvider};
use aws_smithy_runtime_api::client::{orchestrator::HttpResponse, result::SdkError};
use tokio::sync::OnceCell;

use super::{
    access::{AccountAccess, Credentials, Partition, role_arn},
    errors,
    retry::{CallTimeouts, RetrySettings},
};

use crate::{
    domain::{AccountId, RefreshErrorKind},
    ports::{AccountRegion, Fetched, SourceError},
};

/// Items asked for per page of each listing (the API maximum by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSizes {
    /// DRS DescribeSourceServers `maxResults` (default 1000, at most 1000).
    pub source_servers: i32,
    /// DRS ListStagingAccounts `maxResults` (default 50, at most 50).
    pub staging_accounts: i32,
    /// DRS DescribeJobs, DescribeRecoveryInstances and DescribeSourceNetworks
    /// `maxResults` (default 1000, at most 1000).
    pub drs_records: i32,
    /// EC2 DescribeSubnets `MaxResults` (default 1000, 5 to 1000).
    pub subnets: i32,
    /// EC2 DescribeSecurityGroups `MaxResults` (default 1000, 5 to 1000).
    pub security_groups: i32,
    /// EC2 DescribeInstanceTypes `MaxResults` (default 100, 5 to 100).
    pub instance_types: i32,
    /// IAM ListInstanceProfiles `MaxItems` (default 1000, at most 1000).
    pub instance_profiles: i32,
}

impl Default for PageSizes {
    fn default() -> Self {
        Self {
            source_servers: 1000,
            staging_accounts: 50,
            drs_records: 1000,
            subnets: 1000,
            security_groups: 1000,
            instance_types: 100,
            instance_profiles: 1000,
        }
    }
}

/// How the upstream pages and retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpstreamConfig {
    pub page_sizes: PageSizes,
    pub retry: RetrySettings,
    pub timeouts: CallTimeouts,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        Self {
            page_sizes: PageSizes::default(),
            retry: RetrySettings::default(),
            timeouts: CallTimeouts::UPSTREAM,
        }
    }
}

/// The one HTTPS client of the process (hyper 1, rustls with ring), shared by
/// every AWS client it builds. Left to itself, each service client builds its
/// own, and a fleet of a thousand accounts in several regions then holds
/// thousands of pools, sockets and TLS configurations. ring rather than the
/// SDK's default aws-lc: the same TLS, without a C library that takes longer
/// to build than any crate of this one's but the EC2 client.
pub fn https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::{Builder, tls};
    static CLIENT: OnceLock<aws_smithy_runtime_api::client::http::SharedHttpClient> =
        OnceLock::new();
    CLIENT
        .get_or_init(|| {
            Builder::new()
                .tls_provider(tls::Provider::Rustls(
                    tls::rustls_provider::CryptoMode::Ring,
                ))
                .build_https()
        })
        .clone()
}

/// The base `SdkConfig` cannot serve the upstream.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("the base AWS config has no region")]
    NoRegion,
    /// `AssumeRoleProvider` needs one; `aws_config::defaults(..).load()` sets it.
    #[error("the base AWS config has no time source: build it with aws_config::defaults")]
    NoTimeSource,
}

/// DRS, EC2 and IAM for every account and region, through one set of cached
/// clients. Build one per process.
pub struct AwsUpstream {
    base: SdkConfig,
    base_partition: Partition,
    access: AccountAccess,
    config: UpstreamConfig,
    accounts: Mutex<HashMap<(AccountId, Partition), AccountCell>>,
    drs: Mutex<HashMap<AccountRegion, Connection<aws_sdk_drs::Client>>>,
    ec2: Mutex<HashMap<AccountRegion, Connection<aws_sdk_ec2::Client>>>,
    iam: Mutex<HashMap<AccountId, Connection<aws_sdk_iam::Client>>>,
}

/// The config of one account, made by the first call that needs it.
type AccountCell = Arc<OnceCell<AccountConfig>>;

/// How many clients and account credentials the upstream holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachedClients {
    /// Accounts with a credentials provider and identity cache.
    pub accounts: usize,
    /// DRS clients, one per account and region.
    pub drs: usize,
    /// EC2 clients, one per account and region.
    pub ec2: usize,
    /// IAM clients, one per account.
    pub iam: usize,
}

/// The `SdkConfig` every client of one account is built from: its credentials
/// provider and identity cache are shared by all of them.
#[derive(Clone)]
struct AccountConfig {
    sdk: SdkConfig,
    /// The role assumed to reach the account, if one is.
    role_arn: Option<Arc<str>>,
}

/// A client, and the role its credentials come from.
#[derive(Clone)]
pub(crate) struct Connection<C> {
    pub(crate) client: C,
    role_arn: Option<Arc<str>>,
}

impl<C> Connection<C> {
    /// Classifies a failed call of `operation` made through this client.
    pub(crate) fn fail<E>(
        &self,
        operation: &'static str,
        error: SdkError<E, HttpResponse>,
    ) -> SourceError
    where
        E: std::error::Error + aws_sdk_sts::error::ProvideErrorMetadata + Send + Sync + 'static,
    {
        errors::classify(operation, error, self.role_arn.as_deref())
    }
}

impl<C> Connection<C> {
    /// The records of every page of a listing made through this client, each
    /// converted to its domain type; a failed page or record fails the listing.
    pub(crate) fn every_page<P, E, Raw, T>(
        &self,
        operation: &'static str,
        pages: Result<Vec<P>, SdkError<E, HttpResponse>>,
        records: impl Fn(P) -> Vec<Raw>,
    ) -> Result<Fetched<T>, SourceError>
    where
        E: std::error::Error + aws_sdk_sts::error::ProvideErrorMetadata + Send + Sync + 'static,
        T: TryFrom<Raw, Error = MissingField>,
    {
        let pages = pages.map_err(|e| self.fail(operation, e))?;
        let count = u32::try_from(pages.len()).unwrap_or(u32::MAX);
        let items = pages
            .into_iter()
            .flat_map(records)
            .map(T::try_from)
            .collect::<Result<Vec<T>, MissingField>>()
            .map_err(|e| e.in_answer_of(operation))?;
        tracing::debug!(items = items.len(), pages = count, "fetched");
        Ok(Fetched {
            items,
            pages: count,
        })
    }
}

/// An answer that lacks a field every record must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an answer item has no {0}")]
pub struct MissingField(pub &'static str);

impl MissingField {
    pub(crate) fn in_answer_of(self, operation: &'static str) -> SourceError {
        SourceError {
            kind: RefreshErrorKind::Upstream,
            operation,
            message: self.to_string(),
            retry_after: None,
            source: Some(Box::new(self)),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave a map half-written.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl AwsUpstream {
    /// An upstream reading through `base` (region, endpoints, HTTP client and the
    /// own account's credentials) and reaching accounts as `access` says.
    pub fn new(
        base: SdkConfig,
        access: AccountAccess,
        config: UpstreamConfig,
    ) -> Result<Self, SetupError> {
        let region = base.region().ok_or(SetupError::NoRegion)?;
        if matches!(access.others, Credentials::AssumeRole { .. }) && base.time_source().is_none() {
            return Err(SetupError::NoTimeSource);
        }
        let base_partition = Partition::of(region.as_ref());
        // Every client and credentials provider built from it bounds its calls
        // and shares one HTTP client: one connection pool per endpoint, not one
        // pool (and TLS configuration) per account and region.
        let timeouts = config.timeouts.on(base.timeout_config());
        let mut builder = base.to_builder().timeout_config(timeouts);
        if base.http_client().is_none() {
            builder = builder.http_client(https_client());
        }
        let base = builder.build();
        Ok(Self {
            base_partition,
            base,
            access,
            config,
            accounts: Mutex::default(),
            drs: Mutex::default(),
            ec2: Mutex::default(),
            iam: Mutex::default(),
        })
    }

    pub fn config(&self) -> &UpstreamConfig {
        &self.config
    }

    /// How many clients are cached so far.
    pub fn cached_clients(&self) -> CachedClients {
        CachedClients {
            accounts: lock(&self.accounts)
                .values()
                .filter(|c| c.initialized())
                .count(),
            drs: lock(&self.drs).len(),
            ec2: lock(&self.ec2).len(),
            iam: lock(&self.iam).len(),
        }
    }

    pub(crate) async fn drs(
        &self,
        scope: &AccountRegion,
        operation: &'static str,
    ) -> Result<Connection<aws_sdk_drs::Client>, SourceError> {
        let retry = self.config.retry;
        let partition = Partition::of(scope.region.as_str());
        self.connection(
            &self.drs,
            scope,
            &scope.account,
            partition,
            operation,
            |sdk| {
                let conf = aws_sdk_drs::config::Builder::from(sdk)
                    .region(Region::new(scope.region.as_str().to_owned()))
                    .retry_config(retry.retry_config())
                    .retry_classifier(retry.classifier())
                    .build();
                aws_sdk_drs::Client::from_conf(conf)
            },
        )
        .await
    }

    pub(crate) async fn ec2(
        &self,
        scope: &AccountRegion,
        operation: &'static str,
    ) -> Result<Connection<aws_sdk_ec2::Client>, SourceError> {
        let retry = self.config.retry;
        let partition = Partition::of(scope.region.as_str());
        self.connection(
            &self.ec2,
            scope,
            &scope.account,
            partition,
            operation,
            |sdk| {
                let conf = aws_sdk_ec2::config::Builder::from(sdk)
                    .region(Region::new(scope.region.as_str().to_owned()))
                    .retry_config(retry.retry_config())
                    .retry_classifier(retry.classifier())
                    .build();
                aws_sdk_ec2::Client::from_conf(conf)
            },
        )
        .await
    }

    /// IAM is global: one client per account, in the base region's partition.
    pub(crate) async fn iam(
        &self,
        account: &AccountId,
        operation: &'static str,
    ) -> Result<Connection<aws_sdk_iam::Client>, SourceError> {
        let retry = self.config.retry;
        let partition = self.base_partition;
        self.connection(&self.iam, account, account, partition, operation, |sdk| {
            let conf = aws_sdk_iam::config::Builder::from(sdk)
                .retry_config(retry.retry_config())
                .retry_classifier(retry.classifier())
                .build();
            aws_sdk_iam::Client::from_conf(conf)
        })
        .await
    }

    /// The client kept in `clients` under `key`, built with `build` from the
    /// config of `account` on first use.
    async fn connection<K: std::hash::Hash + Eq + Clone, C: Clone>(
        &self,
        clients: &Mutex<HashMap<K, Connection<C>>>,
        key: &K,
        account: &AccountId,
        partition: Partition,
        operation: &'static str,
        build: impl FnOnce(&SdkConfig) -> C,
    ) -> Result<Connection<C>, SourceError> {
        if let Some(found) = lock(clients).get(key) {
            return Ok(found.clone());
        }
        let account = self.account(account, partition, operation).await?;
        let built = Connection {
            client: build(&account.sdk),
            role_arn: account.role_arn,
        };
        Ok(lock(clients).entry(key.clone()).or_insert(built).clone())
    }

    /// The shared config of `account` in `partition`, made once.
    async fn account(
        &self,
        account: &AccountId,
        partition: Partition,
        operation: &'static str,
    ) -> Result<AccountConfig, SourceError> {
        let cell = lock(&self.accounts)
            .entry((*account, partition))
            .or_default()
            .clone();
        cell.get_or_try_init(|| self.account_config(account, partition, operation))
            .await
            .cloned()
    }

    async fn account_config(
        &self,
        account: &AccountId,
        partition: Partition,
        operation: &'static str,
    ) -> Result<AccountConfig, SourceError> {
        if self.access.own_account.as_ref() == Some(account) {
            let sdk = if self.base.identity_cache().is_some() {
                self.base.clone()
            } else {
                self.base
                    .to_builder()
                    .identity_cache(IdentityCache::lazy().build())
                    .build()
            };
            return Ok(AccountConfig {
                sdk,
                role_arn: None,
            });
        }
        let (provider, role) = match &self.access.others {
            Credentials::AssumeRole {
                role_name,
                external_id,
                session_name,
            } => {
                let arn = role_arn(partition, account, role_name);
                let mut builder = AssumeRoleProvider::builder(arn.clone())
                    .configure(&self.base)
                    .session_name(session_name.clone());
                if let Some(id) = external_id {
                    builder = builder.external_id(id.clone());
                }
                tracing::debug!(role_arn = %arn, "credentials for account through its role");
                let provider = SharedCredentialsProvider::new(builder.build().await);
                (provider, Some(Arc::from(arn)))
            }
            Credentials::Static(keys) => {
                let Some(keys) = keys.get(account) else {
                    return Err(SourceError {
                        kind: RefreshErrorKind::AccessDenied,
                        operation,
                        message: format!("no credentials are configured for account {account}"),
                        retry_after: None,
                        source: None,
                    });
                };
                let provider = SharedCredentialsProvider::new(AwsCredentials::new(
                    keys.access_key_id.clone(),
                    keys.secret_access_key.clone(),
                    None,
                    None,
                    "drs-cache-static",
                ));
                (provider, None)
            }
        };
        let sdk = self
            .base
            .to_builder()
            .credentials_provider(provider)
            .identity_cache(IdentityCache::lazy().build())
            .build();
        Ok(AccountConfig {
            sdk,
            role_arn: role,
        })
    }
}
