//! The AWS upstream over HTTP: against moto for EC2, IAM and STS (one account
//! and a second one reached by AssumeRole), and against tiny local fakes for
//! what moto cannot do: DRS, pagination, error answers and `Retry-After`.

use std::{
    collections::BTreeMap,
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use crate::support::{moto, refresh::moto_upstream};
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_ec2::types::Tag;
use aws_sdk_sts::config::Credentials as AwsCredentials;
use bytes::Bytes;
use drs_cache::{
    adapters::aws::CallTimeouts,
    adapters::aws::{
        AccountAccess, AwsUpstream, CachedClients, Credentials, RetrySettings, StaticKeys,
        UpstreamConfig,
    },
    domain::{
        AccountId, RefreshErrorKind, Region,
        inventory::{InstanceType, Subnet},
    },
    ports::{AccountRegion, DrsSource, Ec2Source, IamSource, SourceError},
};
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, body::Incoming, service::service_fn};
use hyper_util::{
    client::legacy::Client as HttpClient,
    rt::{TokioExecutor, TokioIo},
};
use tokio::net::TcpListener;

const ACCOUNT_A: &str = "123456789012";
const ACCOUNT_B: &str = "210987654321";
const ROLE: &str = "DrsCacheReader";
const EXTERNAL_ID: &str = "drs-cache-test";

fn account(raw: &str) -> AccountId {
    AccountId::parse(raw).unwrap()
}

fn scope(account_id: &str, region: &str) -> AccountRegion {
    AccountRegion {
        account: account(account_id),
        region: Region::parse(region).unwrap(),
    }
}

/// The deployment's config: us-east-1, dummy keys of account A, every service at
/// `endpoint`.
async fn base_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(drs_cache::adapters::aws::https_client())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(AwsCredentials::new(
            "testing", "testing", None, None, "test",
        ))
        .load()
        .await
}

fn assume_role_access() -> AccountAccess {
    AccountAccess {
        own_account: Some(account(ACCOUNT_A)),
        others: Credentials::AssumeRole {
            role_name: ROLE.into(),
            external_id: Some(EXTERNAL_ID.into()),
            session_name: "drs-cache-test".into(),
        },
    }
}

async fn upstream_at(endpoint: &str, config: UpstreamConfig) -> AwsUpstream {
    crate::support::init_test_log();
    AwsUpstream::new(base_config(endpoint).await, assume_role_access(), config).unwrap()
}

/// One attempt per call, so error answers come back at once.
fn no_retries() -> UpstreamConfig {
    UpstreamConfig {
        retry: RetrySettings {
            max_attempts: 1,
            ..RetrySettings::default()
        },
        ..UpstreamConfig::default()
    }
}

// ---------------------------------------------------------------------------
// Writing test data into moto, in either account.

/// The config that writes into `account_id` in moto: the base one for account A,
/// credentials from an AssumeRole into the account otherwise.
async fn writer_config(endpoint: &str, account_id: &str) -> SdkConfig {
    let base = base_config(endpoint).await;
    if account_id == ACCOUNT_A {
        return base;
    }
    crate::support::refresh::assumed_config(&base, account_id, ROLE, EXTERNAL_ID).await
}

struct CreatedSubnet {
    id: String,
    name: String,
    vpc_id: String,
    cidr: String,
    zone: String,
}

struct CreatedGroup {
    id: String,
    name: String,
    description: String,
    vpc_id: String,
}

/// A new VPC in `region` with one named subnet per entry of `names` and one
/// security group.
async fn create_network(
    conf: &SdkConfig,
    region: &str,
    names: &[&str],
) -> (Vec<CreatedSubnet>, CreatedGroup) {
    let ec2 = aws_sdk_ec2::Client::from_conf(
        aws_sdk_ec2::config::Builder::from(conf)
            .region(aws_config::Region::new(region.to_owned()))
            .build(),
    );
    let vpc_id = ec2
        .create_vpc()
        .cidr_block("10.0.0.0/16")
        .send()
        .await
        .unwrap()
        .vpc
        .and_then(|v| v.vpc_id)
        .unwrap();
    let zone = format!("{region}a");
    let mut subnets = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let cidr = format!("10.0.{i}.0/24");
        let id = ec2
            .create_subnet()
            .vpc_id(&vpc_id)
            .cidr_block(&cidr)
            .availability_zone(&zone)
            .send()
            .await
            .unwrap()
            .subnet
            .and_then(|s| s.subnet_id)
            .unwrap();
        ec2.create_tags()
            .resources(&id)
            .tags(Tag::builder().key("Name").value(*name).build())
            .tags(Tag::builder().key("Tier").value("app").build())
            .send()
            .await
            .unwrap();
        subnets.push(CreatedSubnet {
            id,
            name: (*name).to_owned(),
            vpc_id: vpc_id.clone(),
            cidr,
            zone: zone.clone(),
        });
    }
    let group_name = moto::unique_name("sg");
    let description = format!("group {group_name}");
    let group_id = ec2
        .create_security_group()
        .group_name(&group_name)
        .description(&description)
        .vpc_id(&vpc_id)
        .send()
        .await
        .unwrap()
        .group_id
        .unwrap();
    let group = CreatedGroup {
        id: group_id,
        name: group_name,
        description,
        vpc_id,
    };
    (subnets, group)
}

/// A new instance profile holding a new role; returns (name, arn, role name).
async fn create_instance_profile(conf: &SdkConfig) -> (String, String, String) {
    let iam = aws_sdk_iam::Client::new(conf);
    let role = moto::unique_name("role");
    iam.create_role()
        .role_name(&role)
        .assume_role_policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        )
        .send()
        .await
        .unwrap();
    let name = moto::unique_name("profile");
    let arn = iam
        .create_instance_profile()
        .instance_profile_name(&name)
        .send()
        .await
        .unwrap()
        .instance_profile
        .unwrap()
        .arn;
    iam.add_role_to_instance_profile()
        .instance_profile_name(&name)
        .role_name(&role)
        .send()
        .await
        .unwrap();
    (name, arn, role)
}

fn find<'a>(subnets: &'a [Subnet], id: &str) -> Option<&'a Subnet> {
    subnets.iter().find(|s| s.subnet_id == id)
}

// ---------------------------------------------------------------------------
// Against moto.

#[tokio::test]
async fn subnets_and_security_groups_come_with_every_field() {
    let endpoint = moto::endpoint();
    let writer = writer_config(endpoint, ACCOUNT_A).await;
    let (created, group) = create_network(&writer, "us-east-1", &["app-a", "app-b"]).await;
    let upstream = upstream_at(endpoint, UpstreamConfig::default()).await;
    let here = scope(ACCOUNT_A, "us-east-1");

    let subnets = upstream.subnets(&here).await.unwrap();
    assert_eq!(subnets.pages, 1);
    for c in &created {
        let s = find(&subnets.items, &c.id).expect("created subnet listed");
        assert_eq!(
            s,
            &Subnet {
                subnet_id: c.id.clone(),
                subnet_name: Some(c.name.clone()),
                vpc_id: Some(c.vpc_id.clone()),
                cidr_block: Some(c.cidr.clone()),
                availability_zone: Some(c.zone.clone()),
                // A /24 less the five addresses AWS reserves.
                available_ip_address_count: Some(251),
                tags: BTreeMap::from([
                    ("Name".to_owned(), c.name.clone()),
                    ("Tier".to_owned(), "app".to_owned()),
                ]),
            }
        );
    }

    let groups = upstream.security_groups(&here).await.unwrap();
    assert_eq!(groups.pages, 1);
    let g = groups
        .items
        .iter()
        .find(|g| g.group_id == group.id)
        .expect("created group listed");
    assert_eq!(g.group_name.as_deref(), Some(group.name.as_str()));
    assert_eq!(g.description.as_deref(), Some(group.description.as_str()));
    assert_eq!(g.vpc_id.as_deref(), Some(group.vpc_id.as_str()));
}

#[tokio::test]
async fn instance_profiles_list_their_roles() {
    let endpoint = moto::endpoint();
    let writer = writer_config(endpoint, ACCOUNT_A).await;
    let (name, arn, role) = create_instance_profile(&writer).await;
    let upstream = upstream_at(endpoint, UpstreamConfig::default()).await;

    let profiles = upstream
        .instance_profiles(&account(ACCOUNT_A))
        .await
        .unwrap();
    assert_eq!(profiles.pages, 1);
    let p = profiles
        .items
        .iter()
        .find(|p| p.instance_profile_name == name)
        .expect("created profile listed");
    assert_eq!(p.instance_profile_arn, arn);
    assert!(arn.starts_with("arn:aws:iam::123456789012:instance-profile/"));
    assert_eq!(p.roles, vec![role]);
}

#[tokio::test]
async fn instance_types_come_from_the_catalogue() {
    let upstream = upstream_at(moto::endpoint(), moto_upstream()).await;
    let types = upstream
        .instance_types(&scope(ACCOUNT_A, "us-east-1"))
        .await
        .unwrap();
    assert!(types.items.len() > 100, "{} types", types.items.len());
    assert!(types.pages >= 1);
    for t in &types.items {
        assert!(t.vcpus.is_some_and(|v| v > 0), "{t:?}");
        assert!(t.memory_mib.is_some_and(|m| m > 0), "{t:?}");
        assert!(
            t.network_performance
                .as_deref()
                .is_some_and(|n| !n.is_empty()),
            "{t:?}"
        );
        assert_eq!(
            t.instance_family,
            InstanceType::family_of(&t.instance_type),
            "{t:?}"
        );
    }
    let m5 = types
        .items
        .iter()
        .find(|t| t.instance_type == "m5.large")
        .expect("m5.large listed");
    assert_eq!(
        (m5.vcpus, m5.memory_mib, m5.instance_family.as_str()),
        (Some(2), Some(8192), "m5")
    );
}

#[tokio::test]
async fn each_account_sees_only_its_own_data() {
    let endpoint = moto::endpoint();
    let writer_a = writer_config(endpoint, ACCOUNT_A).await;
    let writer_b = writer_config(endpoint, ACCOUNT_B).await;
    let (subnets_a, group_a) = create_network(&writer_a, "us-east-1", &["only-in-a"]).await;
    let (subnets_b, group_b) = create_network(&writer_b, "us-east-1", &["only-in-b"]).await;
    let (profile_a, _, _) = create_instance_profile(&writer_a).await;
    let (profile_b, arn_b, role_b) = create_instance_profile(&writer_b).await;
    let upstream = upstream_at(endpoint, UpstreamConfig::default()).await;

    let seen_a = upstream
        .subnets(&scope(ACCOUNT_A, "us-east-1"))
        .await
        .unwrap();
    let seen_b = upstream
        .subnets(&scope(ACCOUNT_B, "us-east-1"))
        .await
        .unwrap();
    assert!(find(&seen_a.items, &subnets_a[0].id).is_some());
    assert!(find(&seen_a.items, &subnets_b[0].id).is_none());
    let b = find(&seen_b.items, &subnets_b[0].id).expect("B's subnet listed in B");
    assert_eq!(b.subnet_name.as_deref(), Some("only-in-b"));
    assert!(find(&seen_b.items, &subnets_a[0].id).is_none());

    let groups_b = upstream
        .security_groups(&scope(ACCOUNT_B, "us-east-1"))
        .await
        .unwrap();
    assert!(groups_b.items.iter().any(|g| g.group_id == group_b.id));
    assert!(!groups_b.items.iter().any(|g| g.group_id == group_a.id));

    let profiles_a = upstream
        .instance_profiles(&account(ACCOUNT_A))
        .await
        .unwrap();
    let profiles_b = upstream
        .instance_profiles(&account(ACCOUNT_B))
        .await
        .unwrap();
    let names = |f: &[drs_cache::domain::inventory::InstanceProfile]| -> Vec<String> {
        f.iter().map(|p| p.instance_profile_name.clone()).collect()
    };
    assert!(names(&profiles_a.items).contains(&profile_a));
    assert!(!names(&profiles_a.items).contains(&profile_b));
    assert!(!names(&profiles_b.items).contains(&profile_a));
    let in_b = profiles_b
        .items
        .iter()
        .find(|p| p.instance_profile_name == profile_b)
        .expect("B's profile listed in B");
    assert!(arn_b.starts_with("arn:aws:iam::210987654321:instance-profile/"));
    assert_eq!(in_b.instance_profile_arn, arn_b);
    assert_eq!(in_b.roles, vec![role_b]);
}

#[tokio::test]
async fn credentials_and_clients_are_made_once_per_account_and_region() {
    let proxy = CountingProxy::start(moto::endpoint()).await;
    let upstream = upstream_at(&proxy.url(), moto_upstream()).await;
    let b_east = scope(ACCOUNT_B, "us-east-1");
    let b_west = scope(ACCOUNT_B, "us-west-2");

    for round in 0..2 {
        upstream.subnets(&b_east).await.unwrap();
        upstream.subnets(&b_west).await.unwrap();
        upstream.security_groups(&b_east).await.unwrap();
        upstream.instance_types(&b_west).await.unwrap();
        upstream
            .instance_profiles(&account(ACCOUNT_B))
            .await
            .unwrap();
        assert_eq!(proxy.assume_role_calls(), 1, "round {round}");
        assert_eq!(
            upstream.cached_clients(),
            CachedClients {
                accounts: 1,
                drs: 0,
                ec2: 2,
                iam: 1
            },
            "round {round}"
        );
    }

    // The own account uses the base credentials: no role to assume.
    upstream
        .subnets(&scope(ACCOUNT_A, "us-east-1"))
        .await
        .unwrap();
    upstream
        .instance_profiles(&account(ACCOUNT_A))
        .await
        .unwrap();
    assert_eq!(proxy.assume_role_calls(), 1);
    assert_eq!(
        upstream.cached_clients(),
        CachedClients {
            accounts: 2,
            drs: 0,
            ec2: 3,
            iam: 2
        }
    );
}

// ---------------------------------------------------------------------------
// Against local fakes.

#[tokio::test]
async fn a_throttled_answer_is_retried_after_its_retry_after() {
    let fake = FakeAws::start(|n, _| {
        if n == 0 {
            Canned::drs_error(429, "ThrottlingException", "Rate exceeded")
                .header("Retry-After", "1")
        } else {
            Canned::json(200, r#"{"items":[]}"#)
        }
    })
    .await;
    let upstream = upstream_at(&fake.url(), UpstreamConfig::default()).await;

    let started = Instant::now();
    let fetched = upstream
        .source_servers(&scope(ACCOUNT_A, "us-east-1"))
        .await
        .unwrap();
    let waited = started.elapsed();

    assert_eq!((fetched.items.len(), fetched.pages), (0, 1));
    assert_eq!(fake.requests().len(), 2);
    assert!(waited >= Duration::from_secs(1), "retried after {waited:?}");
    assert!(waited < Duration::from_secs(5), "retried after {waited:?}");
}

/// How long a source-server fetch takes when the first answer is a throttling
/// one asking to wait `retry_after` seconds and the second a success.
async fn throttled_once(retry_after: &'static str, config: UpstreamConfig) -> Duration {
    let fake = FakeAws::start(move |n, _| {
        if n == 0 {
            Canned::drs_error(429, "ThrottlingException", "Rate exceeded")
                .header("Retry-After", retry_after)
        } else {
            Canned::json(200, r#"{"items":[]}"#)
        }
    })
    .await;
    let upstream = upstream_at(&fake.url(), config).await;
    let started = Instant::now();
    upstream
        .source_servers(&scope(ACCOUNT_A, "us-east-1"))
        .await
        .unwrap();
    let waited = started.elapsed();
    assert_eq!(fake.requests().len(), 2);
    waited
}

/// The SDK's own first backoff is under a second, so only an honoured
/// `Retry-After` waits two.
#[tokio::test]
async fn a_retry_after_longer_than_the_sdk_backoff_is_honoured() {
    let waited = throttled_once("2", UpstreamConfig::default()).await;
    assert!(waited >= Duration::from_secs(2), "retried after {waited:?}");
    assert!(waited < Duration::from_secs(6), "retried after {waited:?}");
}

#[tokio::test]
async fn a_longer_retry_after_is_capped() {
    let config = UpstreamConfig {
        retry: RetrySettings {
            max_attempts: 3,
            max_retry_after: Duration::from_secs(2),
        },
        ..UpstreamConfig::default()
    };
    let waited = throttled_once("30", config).await;
    assert!(waited >= Duration::from_secs(2), "retried after {waited:?}");
    assert!(waited < Duration::from_secs(6), "retried after {waited:?}");
}

#[tokio::test]
async fn a_429_without_code_is_retried_too() {
    let fake = FakeAws::start(|n, _| {
        if n == 0 {
            Canned::json(429, "").header("Retry-After", "1")
        } else {
            Canned::json(200, r#"{"accounts":[{"accountID":"111122223333"}]}"#)
        }
    })
    .await;
    let upstream = upstream_at(&fake.url(), UpstreamConfig::default()).await;
    let started = Instant::now();
    let fetched = upstream
        .staging_accounts(&scope(ACCOUNT_A, "us-east-1"))
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(fetched.items[0].account_id, "111122223333");
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn throttling_left_after_the_last_attempt_carries_its_retry_after() {
    let fake = FakeAws::start(|_, _| {
        Canned::drs_error(429, "ThrottlingException", "Rate exceeded").header("Retry-After", "7")
    })
    .await;
    let upstream = upstream_at(&fake.url(), no_retries()).await;
    let err = upstream
        .source_servers(&scope(ACCOUNT_A, "us-east-1"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, RefreshErrorKind::Throttled);
    assert_eq!(err.retry_after, Some(Duration::from_secs(7)));
    assert_eq!(err.operation, "DescribeSourceServers");
    assert_eq!(err.message, "ThrottlingException: Rate exceeded");
    assert!(err.source.is_some());
    assert_eq!(fake.requests().len(), 1);
}

#[derive(Debug, Clone, Copy)]
enum Call {
    SourceServers,
    Subnets,
    InstanceProfiles,
}

async fn call(upstream: &AwsUpstream, which: Call) -> Result<(), SourceError> {
    let here = scope(ACCOUNT_A, "us-east-1");
    match which {
        Call::SourceServers => upstream.source_servers(&here).await.map(drop),
        Call::Subnets => upstream.subnets(&here).await.map(drop),
        Call::InstanceProfiles => upstream.instance_profiles(&here.account).await.map(drop),
    }
}

#[tokio::test]
async fn error_answers_are_classified_by_code_and_status() {
    use RefreshErrorKind::*;
    let cases: Vec<(Call, Canned, RefreshErrorKind, &str)> = vec![
        (
            Call::SourceServers,
            Canned::drs_error(
                400,
                "UninitializedAccountException",
                "DRS is not initialized",
            ),
            NotInitialized,
            "UninitializedAccountException: DRS is not initialized",
        ),
        (
            Call::SourceServers,
            Canned::drs_error(403, "AccessDeniedException", "no"),
            AccessDenied,
            "AccessDeniedException: no",
        ),
        (
            Call::SourceServers,
            Canned::drs_error(403, "UnrecognizedClientException", "bad token"),
            RegionNotEnabled,
            "UnrecognizedClientException: bad token",
        ),
        (
            Call::SourceServers,
            Canned::drs_error(500, "InternalServerException", "oops"),
            Upstream,
            "InternalServerException: oops",
        ),
        (
            Call::SourceServers,
            Canned::json(502, "<html>Bad Gateway</html>"),
            Upstream,
            "HTTP 502",
        ),
        (
            Call::Subnets,
            Canned::ec2_error(403, "UnauthorizedOperation", "You are not authorized"),
            AccessDenied,
            "UnauthorizedOperation: You are not authorized",
        ),
        (
            Call::Subnets,
            Canned::ec2_error(401, "OptInRequired", "opt in first"),
            RegionNotEnabled,
            "OptInRequired: opt in first",
        ),
        (
            Call::Subnets,
            Canned::ec2_error(503, "RequestLimitExceeded", "Request limit exceeded."),
            Throttled,
            "RequestLimitExceeded: Request limit exceeded.",
        ),
        (
            Call::InstanceProfiles,
            Canned::query_error(403, "AccessDenied", "not allowed"),
            AccessDenied,
            "AccessDenied: not allowed",
        ),
        (
            Call::InstanceProfiles,
            Canned::query_error(400, "Throttling", "Rate exceeded"),
            Throttled,
            "Throttling: Rate exceeded",
        ),
        (
            Call::InstanceProfiles,
            Canned::query_error(403, "InvalidClientTokenId", "bad token"),
            RegionNotEnabled,
            "InvalidClientTokenId: bad token",
        ),
    ];
    for (which, answer, kind, message) in cases {
        let fake = FakeAws::start(move |_, _| answer.clone()).await;
        let upstream = upstream_at(&fake.url(), no_retries()).await;
        let err = call(&upstream, which).await.unwrap_err();
        assert_eq!(err.kind, kind, "{which:?} {message}: {err}");
        assert!(
            err.message.starts_with(message),
            "{which:?}: {:?} does not start with {message:?}",
            err.message
        );
        assert!(err.source.is_some());
    }
}

#[tokio::test]
async fn a_refused_assume_role_is_access_denied_naming_the_role() {
    let fake = FakeAws::start(|_, seen| {
        if seen.body.contains("Action=AssumeRole") {
            Canned::query_error(
                403,
                "AccessDenied",
                "not authorized to perform sts:AssumeRole",
            )
        } else {
            Canned::json(200, r#"{"items":[]}"#)
        }
    })
    .await;
    let upstream = upstream_at(&fake.url(), no_retries()).await;
    let err = upstream
        .source_servers(&scope(ACCOUNT_B, "us-east-1"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, RefreshErrorKind::AccessDenied, "{err}");
    assert_eq!(err.operation, "DescribeSourceServers");
    assert!(
        err.message
            .contains("arn:aws:iam::210987654321:role/DrsCacheReader"),
        "{}",
        err.message
    );
    assert!(err.message.contains("AccessDenied"), "{}", err.message);
    let requests = fake.requests();
    assert!(
        requests
            .iter()
            .all(|r| r.body.contains("Action=AssumeRole"))
    );
    assert!(requests[0].body.contains("ExternalId=drs-cache-test"));
    assert!(
        requests[0]
            .body
            .contains("RoleArn=arn%3Aaws%3Aiam%3A%3A210987654321%3Arole%2FDrsCacheReader")
    );
    // The own account is not affected.
    upstream
        .source_servers(&scope(ACCOUNT_A, "us-east-1"))
        .await
        .unwrap();
}

#[tokio::test]
async fn an_account_without_static_keys_is_refused_without_a_call() {
    let fake = FakeAws::start(|_, _| Canned::json(200, r#"{"items":[]}"#)).await;
    let access = AccountAccess {
        own_account: None,
        others: Credentials::Static(
            [(account(ACCOUNT_B), StaticKeys::new("AKIDB", "secret-b"))].into(),
        ),
    };
    let upstream = AwsUpstream::new(
        base_config(&fake.url()).await,
        access,
        UpstreamConfig::default(),
    )
    .unwrap();
    let err = upstream
        .source_servers(&scope(ACCOUNT_A, "us-east-1"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, RefreshErrorKind::AccessDenied);
    assert!(fake.requests().is_empty());

    upstream
        .source_servers(&scope(ACCOUNT_B, "eu-west-1"))
        .await
        .unwrap();
    let auth = fake.requests()[0].authorization.clone();
    assert!(
        auth.contains("Credential=AKIDB/") && auth.contains("/eu-west-1/drs/"),
        "{auth}"
    );
}

#[tokio::test]
async fn an_unreachable_upstream_is_upstream() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let upstream = upstream_at(&format!("http://127.0.0.1:{port}"), no_retries()).await;
    let err = upstream
        .subnets(&scope(ACCOUNT_A, "us-east-1"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, RefreshErrorKind::Upstream, "{err}");
    assert_eq!(err.retry_after, None);
    assert!(
        err.message.starts_with("dispatch failure: ") && err.message.contains("onnection refused"),
        "{}",
        err.message
    );
    assert!(!err.message.contains("DispatchFailure("), "{}", err.message);
}

#[tokio::test]
async fn a_call_that_never_answers_ends_at_its_timeouts_as_upstream() {
    let proxy = crate::support::proxy::FaultProxy::start(moto::endpoint()).await;
    proxy.set(crate::support::proxy::Mode::Hang);
    let config = UpstreamConfig {
        timeouts: CallTimeouts {
            attempt: Duration::from_millis(200),
            operation: Duration::from_millis(700),
        },
        ..UpstreamConfig::default()
    };
    let upstream = upstream_at(&proxy.url(), config).await;
    let started = std::time::Instant::now();
    let err = upstream
        .subnets(&scope(ACCOUNT_A, "us-east-1"))
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.kind, RefreshErrorKind::Upstream, "{err}");
    // Bounded by the operation timeout (retries included), far below the
    // refresher's own timeout.
    assert!(took >= Duration::from_millis(200), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[tokio::test]
async fn the_clients_of_every_account_and_region_share_one_connection_pool() {
    // A DRS endpoint that answers every listing with no items, and counts the
    // connections it accepts.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let accepted = connections.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            accepted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let service = service_fn(|_req| async {
                Ok::<_, Infallible>(Canned::json(200, r#"{"items":[]}"#).into_response())
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    let accounts: Vec<String> = (0..12)
        .map(|i| format!("{:012}", 300_000_000_000u64 + i))
        .collect();
    let keys = accounts
        .iter()
        .map(|a| (account(a), StaticKeys::new(format!("KEY{a}"), "x")))
        .collect();
    let access = AccountAccess {
        own_account: None,
        others: Credentials::Static(keys),
    };
    let upstream = AwsUpstream::new(
        base_config(&format!("http://{addr}")).await,
        access,
        no_retries(),
    )
    .unwrap();
    for a in &accounts {
        for region in ["us-east-1", "eu-west-1"] {
            let fetched = upstream.source_servers(&scope(a, region)).await.unwrap();
            assert!(fetched.items.is_empty());
        }
    }
    // 24 clients, one after the other: the shared pool keeps reusing one
    // connection, where a pool per client would open 24.
    let opened = connections.load(std::sync::atomic::Ordering::SeqCst);
    assert!(opened <= 2, "{opened} connections for 24 clients");
}

// ---------------------------------------------------------------------------
// Pagination, against fakes that do paginate.

const SUBNETS_PAGE_1: &str = r#"<DescribeSubnetsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>r-1</requestId>
  <subnetSet>
    <item><subnetId>subnet-1</subnetId><vpcId>vpc-1</vpcId><cidrBlock>10.0.1.0/24</cidrBlock><availabilityZone>us-east-1a</availabilityZone><availableIpAddressCount>250</availableIpAddressCount><tagSet><item><key>Name</key><value>one</value></item></tagSet></item>
    <item><subnetId>subnet-2</subnetId><vpcId>vpc-1</vpcId><cidrBlock>10.0.2.0/24</cidrBlock><availabilityZone>us-east-1b</availabilityZone><availableIpAddressCount>249</availableIpAddressCount></item>
  </subnetSet>
  <nextToken>page-2</nextToken>
</DescribeSubnetsResponse>"#;

const SUBNETS_PAGE_2: &str = r#"<DescribeSubnetsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>r-2</requestId>
  <subnetSet>
    <item><subnetId>subnet-3</subnetId><vpcId>vpc-2</vpcId><cidrBlock>10.1.0.0/24</cidrBlock><availabilityZone>us-east-1c</availabilityZone><availableIpAddressCount>10</availableIpAddressCount><tagSet><item><key>Name</key><value>three</value></item></tagSet></item>
  </subnetSet>
</DescribeSubnetsResponse>"#;

#[tokio::test]
async fn subnets_are_read_through_every_page() {
    let fake = FakeAws::start(|_, seen| {
        if seen.body.contains("NextToken=page-2") {
            Canned::xml(200, SUBNETS_PAGE_2)
        } else {
            Canned::xml(200, SUBNETS_PAGE_1)
        }
    })
    .await;
    let upstream = upstream_at(&fake.url(), UpstreamConfig::default()).await;
    let fetched = upstream
        .subnets(&scope(ACCOUNT_A, "us-east-1"))
        .await
        .unwrap();
    assert_eq!(fetched.pages, 2);
    let ids: Vec<&str> = fetched.items.iter().map(|s| s.subnet_id.as_str()).collect();
    assert_eq!(ids, ["subnet-1", "subnet-2", "subnet-3"]);
    assert_eq!(fetched.items[2].subnet_name.as_deref(), Some("three"));
    assert_eq!(fetched.items[2].available_ip_address_count, Some(10));
    assert_eq!(fetched.items[1].subnet_name, None);

    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests[0].body.contains("Action=DescribeSubnets"));
    assert!(requests[0].body.contains("MaxResults=1000"));
    assert!(!requests[0].body.contains("NextToken"));
    assert!(requests[1].body.contains("NextToken=page-2"));
}

#[tokio::test]
async fn page_sizes_are_configurable() {
    let fake = FakeAws::start(|_, _| Canned::xml(200, SUBNETS_PAGE_2)).await;
    let mut config = UpstreamConfig::default();
    config.page_sizes.subnets = 5;
    let upstream = upstream_at(&fake.url(), config).await;
    upstream
        .subnets(&scope(ACCOUNT_A, "us-east-1"))
        .await
        .unwrap();
    assert!(fake.requests()[0].body.contains("MaxResults=5"));
}

#[tokio::test]
async fn source_servers_are_read_through_every_page() {
    let fake = FakeAws::start(|_, seen| {
        if seen.body.contains(r#""nextToken":"t-2""#) {
            Canned::json(
                200,
                r#"{"items":[{"sourceServerID":"s-3","sourceProperties":{"networkInterfaces":[{"ips":["10.0.0.3"],"isPrimary":true}],"cpus":[{"cores":2}],"ramBytes":1073741824,"disks":[{"bytes":2147483648}]}}]}"#,
            )
        } else {
            Canned::json(
                200,
                r#"{"items":[{"sourceServerID":"s-1","tags":{"Name":"one"},"dataReplicationInfo":{"dataReplicationState":"STALLED","lagDuration":"PT5M"},"stagingArea":{"status":"NOT_EXTENDED"},"lifeCycle":{"lastSeenByServiceDateTime":"2024-05-01T10:00:00Z"},"lastLaunchResult":"FAILED"},{"sourceServerID":"s-2"}],"nextToken":"t-2"}"#,
            )
        }
    })
    .await;
    let upstream = upstream_at(&fake.url(), UpstreamConfig::default()).await;
    let fetched = upstream
        .source_servers(&scope(ACCOUNT_A, "us-east-1"))
        .await
        .unwrap();
    assert_eq!(fetched.pages, 2);
    let ids: Vec<&str> = fetched
        .items
        .iter()
        .map(|s| s.source_server_id.as_str())
        .collect();
    assert_eq!(ids, ["s-1", "s-2", "s-3"]);
    let one = &fetched.items[0];
    assert_eq!(one.name_tag.as_deref(), Some("one"));
    assert_eq!(one.replication_state.as_deref(), Some("STALLED"));
    assert_eq!(one.lag_duration.as_deref(), Some("PT5M"));
    assert_eq!(one.staging_status.as_deref(), Some("NOT_EXTENDED"));
    assert_eq!(one.last_seen.as_deref(), Some("2024-05-01T10:00:00Z"));
    assert_eq!(one.last_launch_result.as_deref(), Some("FAILED"));
    let three = &fetched.items[2];
    assert_eq!(three.source_ip.as_deref(), Some("10.0.0.3"));
    assert_eq!(
        (
            three.hardware.total_cores,
            three.hardware.ram_gib,
            three.hardware.total_disk_gib
        ),
        (2, 1.0, 2.0)
    );

    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].path, "/DescribeSourceServers");
    assert!(requests[0].body.contains(r#""maxResults":1000"#));
    assert!(requests[1].body.contains(r#""nextToken":"t-2""#));
}

#[tokio::test]
async fn staging_accounts_are_read_through_every_page() {
    let fake = FakeAws::start(|_, seen| {
        if seen.path.contains("nextToken=n") {
            Canned::json(200, r#"{"accounts":[{"accountID":"333333333333"}]}"#)
        } else {
            Canned::json(
                200,
                r#"{"accounts":[{"accountID":"111111111111"},{"accountID":"222222222222"}],"nextToken":"n"}"#,
            )
        }
    })
    .await;
    let upstream = upstream_at(&fake.url(), UpstreamConfig::default()).await;
    let fetched = upstream
        .staging_accounts(&scope(ACCOUNT_A, "us-east-1"))
        .await
        .unwrap();
    assert_eq!(fetched.pages, 2);
    let ids: Vec<&str> = fetched
        .items
        .iter()
        .map(|a| a.account_id.as_str())
        .collect();
    assert_eq!(ids, ["111111111111", "222222222222", "333333333333"]);
    let requests = fake.requests();
    assert!(requests[0].path.starts_with("/ListStagingAccounts"));
    assert!(
        requests[0].path.contains("maxResults=50"),
        "{}",
        requests[0].path
    );
}

fn profiles_page(names: &[&str], marker: Option<&str>) -> String {
    let members: String = names
        .iter()
        .map(|n| {
            format!(
                "<member><Path>/</Path><InstanceProfileName>{n}</InstanceProfileName>\
                 <InstanceProfileId>AIPA{n}</InstanceProfileId>\
                 <Arn>arn:aws:iam::123456789012:instance-profile/{n}</Arn>\
                 <CreateDate>2024-01-01T00:00:00Z</CreateDate><Roles><member><Path>/</Path>\
                 <RoleName>role-{n}</RoleName><RoleId>AROA{n}</RoleId>\
                 <Arn>arn:aws:iam::123456789012:role/role-{n}</Arn>\
                 <CreateDate>2024-01-01T00:00:00Z</CreateDate></member></Roles></member>"
            )
        })
        .collect();
    let truncation = match marker {
        Some(m) => format!("<IsTruncated>true</IsTruncated><Marker>{m}</Marker>"),
        None => "<IsTruncated>false</IsTruncated>".to_owned(),
    };
    format!(
        "<ListInstanceProfilesResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\">\
         <ListInstanceProfilesResult>{truncation}<InstanceProfiles>{members}</InstanceProfiles>\
         </ListInstanceProfilesResult><ResponseMetadata><RequestId>r</RequestId>\
         </ResponseMetadata></ListInstanceProfilesResponse>"
    )
}

#[tokio::test]
async fn instance_profiles_are_read_through_every_page() {
    let fake = FakeAws::start(|_, seen| {
        if seen.body.contains("Marker=m-2") {
            Canned::xml(200, &profiles_page(&["p3"], None))
        } else {
            Canned::xml(200, &profiles_page(&["p1", "p2"], Some("m-2")))
        }
    })
    .await;
    let upstream = upstream_at(&fake.url(), UpstreamConfig::default()).await;
    let fetched = upstream
        .instance_profiles(&account(ACCOUNT_A))
        .await
        .unwrap();
    assert_eq!(fetched.pages, 2);
    let names: Vec<&str> = fetched
        .items
        .iter()
        .map(|p| p.instance_profile_name.as_str())
        .collect();
    assert_eq!(names, ["p1", "p2", "p3"]);
    assert_eq!(fetched.items[2].roles, ["role-p3"]);
    let requests = fake.requests();
    assert!(requests[0].body.contains("MaxItems=1000"));
    assert!(requests[1].body.contains("Marker=m-2"));
}

// ---------------------------------------------------------------------------
// Local HTTP helpers.

/// A request a fake received.
#[derive(Debug, Clone)]
struct Seen {
    /// Path and query.
    path: String,
    authorization: String,
    body: String,
}

/// A canned answer.
#[derive(Debug, Clone)]
struct Canned {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

impl Canned {
    fn json(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: vec![("content-type", "application/json".into())],
            body: body.into(),
        }
    }

    fn xml(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: vec![("content-type", "text/xml".into())],
            body: body.into(),
        }
    }

    /// A REST-JSON error answer, as DRS gives.
    fn drs_error(status: u16, code: &str, message: &str) -> Self {
        Self::json(status, &format!(r#"{{"message":"{message}"}}"#))
            .header("x-amzn-ErrorType", code)
    }

    /// An EC2 query error answer.
    fn ec2_error(status: u16, code: &str, message: &str) -> Self {
        Self::xml(
            status,
            &format!(
                "<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message>\
                 </Error></Errors><RequestID>r</RequestID></Response>"
            ),
        )
    }

    /// An AWS query error answer, as IAM and STS give.
    fn query_error(status: u16, code: &str, message: &str) -> Self {
        Self::xml(
            status,
            &format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>\
                 <Message>{message}</Message></Error><RequestId>r</RequestId></ErrorResponse>"
            ),
        )
    }

    fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn into_response(self) -> Response<Full<Bytes>> {
        let mut response = Response::builder().status(self.status);
        for (name, value) in self.headers {
            response = response.header(name, value);
        }
        response.body(Full::new(Bytes::from(self.body))).unwrap()
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type Handler = Arc<dyn Fn(Request<Incoming>) -> BoxFuture<Response<Full<Bytes>>> + Send + Sync>;

/// Serves `handler` over HTTP/1 on a free local port until the test ends.
async fn serve(handler: Handler) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handler = handler.clone();
            let service = service_fn(move |req| {
                let answer = handler(req);
                async move { Ok::<_, Infallible>(answer.await) }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    addr
}

async fn read(req: Request<Incoming>) -> (http::request::Parts, Bytes) {
    let (parts, body) = req.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (parts, bytes)
}

/// Answers every request with what `answer(n, request)` says, `n` counting
/// requests from 0, and records the requests.
struct FakeAws {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FakeAws {
    async fn start(answer: impl Fn(usize, &Seen) -> Canned + Send + Sync + 'static) -> Self {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let answer = Arc::new(answer);
        let record = seen.clone();
        let handler: Handler = Arc::new(move |req| {
            let answer = answer.clone();
            let record = record.clone();
            Box::pin(async move {
                let (parts, body) = read(req).await;
                let request = Seen {
                    path: parts
                        .uri
                        .path_and_query()
                        .map_or_else(String::new, |p| p.to_string()),
                    authorization: parts
                        .headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned(),
                    body: String::from_utf8_lossy(&body).into_owned(),
                };
                let n = {
                    let mut all = record.lock().unwrap();
                    all.push(request.clone());
                    all.len() - 1
                };
                answer(n, &request).into_response()
            })
        });
        Self {
            addr: serve(handler).await,
            seen,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Forwards every request to moto and counts the STS AssumeRole calls.
struct CountingProxy {
    addr: SocketAddr,
    assume_role: Arc<AtomicUsize>,
}

impl CountingProxy {
    async fn start(upstream: &str) -> Self {
        let upstream: Arc<str> = upstream.trim_end_matches('/').into();
        let client = HttpClient::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let assume_role = Arc::new(AtomicUsize::new(0));
        let count = assume_role.clone();
        let handler: Handler = Arc::new(move |req| {
            let upstream = upstream.clone();
            let client = client.clone();
            let count = count.clone();
            Box::pin(async move {
                let (mut parts, body) = read(req).await;
                if String::from_utf8_lossy(&body).contains("Action=AssumeRole") {
                    count.fetch_add(1, Ordering::SeqCst);
                }
                let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
                parts.uri = format!("{upstream}{path}").parse().unwrap();
                parts.headers.remove("host");
                let forwarded = client
                    .request(Request::from_parts(parts, Full::new(body)))
                    .await
                    .unwrap();
                let (parts, body) = forwarded.into_parts();
                let body = body.collect().await.unwrap().to_bytes();
                Response::from_parts(parts, Full::new(body))
            })
        });
        Self {
            addr: serve(handler).await,
            assume_role,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn assume_role_calls(&self) -> usize {
        self.assume_role.load(Ordering::SeqCst)
    }
}
