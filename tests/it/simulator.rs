//! The fleet simulator, driven over HTTP by the unmodified aws-sdk-drs, aws-sdk-ec2
//! and aws-sdk-iam clients (and moto's STS for account resolution): pagination,
//! determinism, generations, faults, account resolution, admin.

use std::{
    collections::{BTreeSet, HashSet},
    net::SocketAddr,
    time::{Duration, Instant},
};

use aws_sdk_drs::{
    config::{BehaviorVersion, Credentials, Region, http::HttpResponse, retry::RetryConfig},
    error::{ProvideErrorMetadata, SdkError},
    operation::describe_source_servers::DescribeSourceServersError,
    types::{
        DataReplicationErrorString, DataReplicationState, DescribeSourceServersRequestFilters,
        ExtensionStatus, LastLaunchResult, SourceServer,
    },
};
use bytes::Bytes;
use drs_sim::{
    AccountId, AccountMatch, Faults, RegionalSelector, Service, SimConfig, SimHandle, Simulator,
};
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client as HttpClient, rt::TokioExecutor};

const ACCOUNT_A: &str = "111111111111";
const ACCOUNT_B: &str = "222222222222";
const KEY_A: &str = "AKIAACCOUNTAAAAAAAAA";
const KEY_B: &str = "AKIAACCOUNTBBBBBBBBB";
const REGION: &str = "eu-west-1";

fn account(raw: &str) -> AccountId {
    AccountId::parse(raw).unwrap()
}

fn region(raw: &str) -> drs_sim::Region {
    drs_sim::Region::parse(raw).unwrap()
}

/// A configuration with two mapped access keys and small fleets.
fn config() -> SimConfig {
    let mut config = SimConfig {
        seed: 42,
        ..SimConfig::default()
    };
    config.access_keys.insert(KEY_A.into(), account(ACCOUNT_A));
    config.access_keys.insert(KEY_B.into(), account(ACCOUNT_B));
    config
}

async fn start(config: SimConfig) -> SimHandle {
    crate::support::init_test_log();
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    Simulator::start(listen, config).await.unwrap()
}

/// Clients of one caller: an access key (and session token) in a region.
struct Clients {
    drs: aws_sdk_drs::Client,
    ec2: aws_sdk_ec2::Client,
    iam: aws_sdk_iam::Client,
}

fn clients_with(
    sim: &SimHandle,
    region: &str,
    credentials: Credentials,
    retry: RetryConfig,
) -> Clients {
    let endpoint = sim.endpoint();
    Clients {
        drs: aws_sdk_drs::Client::from_conf(
            aws_sdk_drs::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .http_client(drs_cache::adapters::aws::https_client())
                .endpoint_url(&endpoint)
                .region(Region::new(region.to_owned()))
                .credentials_provider(credentials.clone())
                .retry_config(retry.clone())
                .build(),
        ),
        ec2: aws_sdk_ec2::Client::from_conf(
            aws_sdk_ec2::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .http_client(drs_cache::adapters::aws::https_client())
                .endpoint_url(&endpoint)
                .region(Region::new(region.to_owned()))
                .credentials_provider(credentials.clone())
                .retry_config(retry.clone())
                .build(),
        ),
        iam: aws_sdk_iam::Client::from_conf(
            aws_sdk_iam::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .http_client(drs_cache::adapters::aws::https_client())
                .endpoint_url(&endpoint)
                // IAM is global: its requests are signed for us-east-1.
                .region(Region::new("us-east-1"))
                .credentials_provider(credentials)
                .retry_config(retry)
                .build(),
        ),
    }
}

/// Clients of `key` in `region` that never retry, so every fault is visible.
fn clients(sim: &SimHandle, region: &str, key: &str) -> Clients {
    let credentials = Credentials::new(key, "secret", None, None, "test");
    clients_with(sim, region, credentials, RetryConfig::disabled())
}

async fn all_servers(drs: &aws_sdk_drs::Client, max_results: i32) -> Vec<SourceServer> {
    drs.describe_source_servers()
        .max_results(max_results)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .unwrap()
}

/// The HTTP status and error code of a failed call.
fn failure<E: ProvideErrorMetadata>(error: &SdkError<E, HttpResponse>) -> (u16, String) {
    let status = error.raw_response().map_or(0, |r| r.status().as_u16());
    (status, error.code().unwrap_or("<none>").to_owned())
}

/// A raw signed-looking request (the simulator reads only the credential scope).
async fn raw(
    sim: &SimHandle,
    method: &str,
    path: &str,
    scope: Option<(&str, &str)>,
    body: &str,
) -> (u16, http::HeaderMap, Bytes) {
    let client = HttpClient::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut request = http::Request::builder()
        .method(method)
        .uri(format!("{}{path}", sim.endpoint()));
    if let Some((region, service)) = scope {
        request = request.header(
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential={KEY_A}/20240601/{region}/{service}/aws4_request, \
                 SignedHeaders=host, Signature=0"
            ),
        );
    }
    if path == "/" {
        request = request.header("content-type", "application/x-www-form-urlencoded");
    }
    let response = client
        .request(
            request
                .body(Full::new(Bytes::from(body.to_owned())))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, body)
}

// ---------------------------------------------------------------- DRS

#[tokio::test]
async fn drs_pages_through_every_server_under_a_small_server_side_cap() {
    let mut config = config();
    config.defaults.servers = 120;
    config.max_page_size = 25;
    let sim = start(config).await;
    let c = clients(&sim, REGION, KEY_A);

    // The caller asks for 1000 a page; the simulator caps pages at 25.
    let first = c.drs.describe_source_servers().send().await.unwrap();
    assert_eq!(first.items().len(), 25);
    assert!(first.next_token().is_some());

    let servers = all_servers(&c.drs, 10).await;
    assert_eq!(servers.len(), 120);
    let ids: HashSet<&str> = servers
        .iter()
        .filter_map(|s| s.source_server_id())
        .collect();
    assert_eq!(ids.len(), 120, "no server is listed twice");
    // 12 pages of 10, plus the first call.
    assert_eq!(sim.requests(Service::Drs, "DescribeSourceServers"), 13);
}

#[tokio::test]
async fn every_source_server_field_round_trips_through_the_sdk() {
    let mut config = config();
    config.defaults.servers = 400;
    let sim = start(config).await;
    let c = clients(&sim, REGION, KEY_A);
    let servers = all_servers(&c.drs, 1000).await;
    assert_eq!(servers.len(), 400);

    let (mut aws, mut vmware, mut extended, mut stalled, mut launched) = (0, 0, 0, 0, 0);
    let mut states = BTreeSet::new();
    for s in &servers {
        let id = s.source_server_id().unwrap();
        assert!(id.starts_with("s-") && id.len() == 19, "{id}");
        assert_eq!(
            s.arn().unwrap(),
            format!("arn:aws:drs:{REGION}:{ACCOUNT_A}:source-server/{id}")
        );
        let tags = s.tags().unwrap();
        let hints = s
            .source_properties()
            .unwrap()
            .identification_hints()
            .unwrap();
        assert_eq!(tags.get("Name").map(String::as_str), hints.hostname());
        assert!(hints.fqdn().unwrap().ends_with(".example.internal"));
        aws += usize::from(hints.aws_instance_id().is_some());
        vmware += usize::from(hints.vm_ware_uuid().is_some());

        let result = s.last_launch_result().unwrap();
        assert!(
            LastLaunchResult::values().contains(&result.as_str()),
            "{result:?}"
        );
        if *result != LastLaunchResult::NotStarted {
            launched += 1;
            let last = s.life_cycle().unwrap().last_launch().unwrap();
            assert!(
                last.initiated()
                    .unwrap()
                    .job_id()
                    .unwrap()
                    .starts_with("drsjob-")
            );
            assert!(last.status().is_some());
        }

        let info = s.data_replication_info().unwrap();
        let state = info.data_replication_state().unwrap();
        assert!(
            DataReplicationState::values().contains(&state.as_str()),
            "{state:?}"
        );
        states.insert(state.as_str().to_owned());
        if *state == DataReplicationState::Continuous {
            let lag = info.lag_duration().unwrap();
            assert!(lag.starts_with("PT") && lag.ends_with('S'), "{lag}");
        }
        if *state == DataReplicationState::Stalled {
            stalled += 1;
            let error = info.data_replication_error().unwrap().error().unwrap();
            assert!(DataReplicationErrorString::values().contains(&error.as_str()));
        }
        let initiation = info.data_replication_initiation().unwrap();
        assert_eq!(initiation.steps().len(), 11);
        assert!(initiation.start_date_time().is_some());
        assert!(
            info.staging_availability_zone()
                .unwrap()
                .starts_with(REGION)
        );

        let life = s.life_cycle().unwrap();
        assert!(
            life.added_to_service_date_time()
                .unwrap()
                .ends_with("+00:00")
        );
        assert!(life.last_seen_by_service_date_time().is_some());

        let props = s.source_properties().unwrap();
        assert!(props.last_updated_date_time().is_some());
        assert!(props.recommended_instance_type().unwrap().contains('.'));
        let cores: i64 = props.cpus().iter().map(|c| c.cores()).sum();
        assert!((2..=64).contains(&cores), "{cores}");
        assert!(props.cpus().iter().all(|c| c.model_name().is_some()));
        assert!(props.ram_bytes() >= 2 * cores * (1 << 30));
        assert!((1..=4).contains(&props.disks().len()));
        assert!(
            props
                .disks()
                .iter()
                .all(|d| d.bytes() > 0 && d.device_name().is_some())
        );
        assert_eq!(info.replicated_disks().len(), props.disks().len());
        let nics = props.network_interfaces();
        assert!(nics[0].is_primary() == Some(true) && nics[0].mac_address().is_some());
        assert!(!nics[0].ips().is_empty());
        assert!(props.os().unwrap().full_string().is_some());

        let staging = s.staging_area().unwrap();
        match staging.status().unwrap() {
            ExtensionStatus::Extended => {
                extended += 1;
                assert_eq!(staging.staging_account_id().map(str::len), Some(12));
                assert!(
                    staging
                        .staging_source_server_arn()
                        .unwrap()
                        .contains(":source-server/s-")
                );
            }
            ExtensionStatus::ExtensionError => assert!(staging.error_message().is_some()),
            status => assert_eq!(*status, ExtensionStatus::NotExtended),
        }
        assert!(s.replication_direction().is_some());
        assert!(s.agent_version().unwrap().starts_with("4."));
        assert!(s.source_cloud_properties().is_some());
    }
    assert!(
        aws > 50 && vmware > 100,
        "{aws} from EC2, {vmware} from VMware"
    );
    assert!((15..=80).contains(&extended), "{extended} extended");
    assert!(stalled > 0 && launched > 0);
    assert!(states.len() >= 8, "{states:?}");
}

#[tokio::test]
async fn drs_filters_select_servers() {
    let sim = start(config()).await;
    let c = clients(&sim, REGION, KEY_A);
    let servers = all_servers(&c.drs, 1000).await;
    let wanted: Vec<String> = servers
        .iter()
        .step_by(7)
        .map(|s| s.source_server_id().unwrap().to_owned())
        .collect();

    let filters = DescribeSourceServersRequestFilters::builder()
        .set_source_server_ids(Some(wanted.clone()))
        .build();
    let by_id = c
        .drs
        .describe_source_servers()
        .filters(filters)
        .send()
        .await
        .unwrap();
    let got: Vec<&str> = by_id
        .items()
        .iter()
        .filter_map(|s| s.source_server_id())
        .collect();
    assert_eq!(got, wanted);

    let hinted = servers
        .iter()
        .find_map(|s| {
            let hints = s.source_properties()?.identification_hints()?;
            hints
                .aws_instance_id()
                .or(hints.vm_ware_uuid())
                .map(|h| (h.to_owned(), s))
        })
        .unwrap();
    let filters = DescribeSourceServersRequestFilters::builder()
        .hardware_id(&hinted.0)
        .build();
    let by_hardware = c
        .drs
        .describe_source_servers()
        .filters(filters)
        .send()
        .await
        .unwrap();
    assert_eq!(by_hardware.items(), std::slice::from_ref(hinted.1));

    let staging: Vec<&str> = servers
        .iter()
        .filter_map(|s| s.staging_area()?.staging_account_id())
        .collect();
    let first = staging[0].to_owned();
    let filters = DescribeSourceServersRequestFilters::builder()
        .staging_account_ids(&first)
        .build();
    let by_staging = c
        .drs
        .describe_source_servers()
        .filters(filters)
        .send()
        .await
        .unwrap();
    assert_eq!(
        by_staging.items().len(),
        staging.iter().filter(|a| **a == first).count()
    );
}

#[tokio::test]
async fn staging_accounts_paginate_and_include_those_extended_servers_name() {
    let mut config = config();
    config.defaults.servers = 200;
    let sim = start(config).await;
    let c = clients(&sim, REGION, KEY_A);
    let accounts: Vec<String> = c
        .drs
        .list_staging_accounts()
        .max_results(1)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.account_id().unwrap().to_owned())
        .collect();
    assert!((2..=5).contains(&accounts.len()), "{accounts:?}");
    assert!(sim.requests(Service::Drs, "ListStagingAccounts") >= 2);
    for server in all_servers(&c.drs, 1000).await {
        let staging = server.staging_area().unwrap();
        if staging.status() == Some(&ExtensionStatus::Extended) {
            assert!(
                accounts
                    .iter()
                    .any(|a| Some(a.as_str()) == staging.staging_account_id())
            );
        }
    }
}

#[tokio::test]
async fn drs_refuses_bad_page_parameters_and_unknown_operations() {
    let sim = start(config()).await;
    let c = clients(&sim, REGION, KEY_A);
    for max in [0, 1001] {
        let error = c
            .drs
            .describe_source_servers()
            .max_results(max)
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            failure(&error),
            (400, "ValidationException".into()),
            "maxResults {max}"
        );
    }
    let error = c
        .drs
        .describe_source_servers()
        .next_token("not-a-token")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        error.as_service_error(),
        Some(DescribeSourceServersError::ValidationException(_))
    ));
    let error = c
        .drs
        .list_staging_accounts()
        .max_results(51)
        .send()
        .await
        .unwrap_err();
    assert_eq!(failure(&error), (400, "ValidationException".into()));

    // A token of one listing is no good for another caller.
    let page = c
        .drs
        .describe_source_servers()
        .max_results(5)
        .send()
        .await
        .unwrap();
    let token = page.next_token().unwrap();
    let other = clients(&sim, REGION, KEY_B);
    let error = other
        .drs
        .describe_source_servers()
        .next_token(token)
        .send()
        .await
        .unwrap_err();
    assert_eq!(failure(&error), (400, "ValidationException".into()));

    // An operation the simulator does not implement, through the SDK.
    let error = c
        .drs
        .describe_recovery_snapshots()
        .source_server_id("s-1234567890abcdef0")
        .send()
        .await
        .unwrap_err();
    assert_eq!(failure(&error), (400, "UnknownOperationException".into()));

    let (status, headers, _) = raw(
        &sim,
        "POST",
        "/DescribeSourceServers",
        Some((REGION, "drs")),
        "{not json",
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(headers["x-amzn-errortype"], "ValidationException");
    let (status, _, body) = raw(&sim, "POST", "/DescribeSourceServers", None, "{}").await;
    assert_eq!(status, 403, "{body:?}");
}

// ---------------------------------------------------------------- EC2 and IAM

#[tokio::test]
async fn ec2_subnets_and_security_groups_paginate() {
    let mut config = config();
    config.defaults.subnets = 23;
    config.defaults.security_groups = 31;
    let sim = start(config).await;
    let c = clients(&sim, REGION, KEY_A);

    let subnets: Vec<_> = c
        .ec2
        .describe_subnets()
        .max_results(5)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(subnets.len(), 23);
    assert_eq!(sim.requests(Service::Ec2, "DescribeSubnets"), 5);
    let vpcs: HashSet<&str> = subnets.iter().filter_map(|s| s.vpc_id()).collect();
    assert!((2..=3).contains(&vpcs.len()), "{vpcs:?}");
    for s in &subnets {
        assert!(s.subnet_id().unwrap().starts_with("subnet-"));
        assert!(s.cidr_block().unwrap().ends_with("/24"));
        assert!(s.availability_zone().unwrap().starts_with(REGION));
        assert!(s.availability_zone_id().unwrap().starts_with("euw1-az"));
        assert!((0..=251).contains(&s.available_ip_address_count().unwrap()));
        assert_eq!(s.owner_id(), Some(ACCOUNT_A));
        assert!(s.subnet_arn().unwrap().contains(ACCOUNT_A));
    }
    let named = subnets
        .iter()
        .filter(|s| s.tags().iter().any(|t| t.key() == Some("Name")))
        .count();
    assert!(named >= 15, "{named} of 23 named");

    let groups: Vec<_> = c
        .ec2
        .describe_security_groups()
        .max_results(10)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(groups.len(), 31);
    for g in &groups {
        assert!(g.group_id().unwrap().starts_with("sg-"));
        assert!(g.group_name().is_some() && g.description().is_some());
        assert!(vpcs.contains(g.vpc_id().unwrap()));
        assert_eq!(g.owner_id(), Some(ACCOUNT_A));
        assert!(!g.ip_permissions_egress().is_empty());
    }
    assert!(groups.iter().any(|g| g.group_name() == Some("default")));

    // Named IDs.
    let two = [
        subnets[3].subnet_id().unwrap(),
        subnets[17].subnet_id().unwrap(),
    ];
    let picked = c
        .ec2
        .describe_subnets()
        .subnet_ids(two[0])
        .subnet_ids(two[1])
        .send()
        .await
        .unwrap();
    assert_eq!(picked.subnets(), [subnets[3].clone(), subnets[17].clone()]);
    let error = c
        .ec2
        .describe_subnets()
        .subnet_ids("subnet-00000000000000000")
        .send()
        .await
        .unwrap_err();
    assert_eq!(failure(&error), (400, "InvalidSubnetID.NotFound".into()));
}

#[tokio::test]
async fn instance_types_are_a_large_catalogue_in_pages_of_at_most_100() {
    let sim = start(config()).await;
    let list = |c: Clients| async move {
        c.ec2
            .describe_instance_types()
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .unwrap()
    };
    let types = list(clients(&sim, REGION, KEY_A)).await;
    assert!((800..=1_400).contains(&types.len()), "{}", types.len());
    let pages = sim.requests(Service::Ec2, "DescribeInstanceTypes");
    assert_eq!(pages as usize, types.len().div_ceil(100));
    let names: HashSet<&str> = types
        .iter()
        .filter_map(|t| t.instance_type().map(|i| i.as_str()))
        .collect();
    assert_eq!(names.len(), types.len());
    for family in [
        "m5.large",
        "m6i.xlarge",
        "c6gn.large",
        "r7g.2xlarge",
        "t3.micro",
        "x2iedn.xlarge",
    ] {
        let present = names.contains(family);
        // A region lacks a few types; these families are large enough that at
        // least one of the two regions tested offers each.
        if !present {
            continue;
        }
        let t = types
            .iter()
            .find(|t| t.instance_type().map(|i| i.as_str()) == Some(family))
            .unwrap();
        assert!(t.v_cpu_info().unwrap().default_v_cpus().unwrap() >= 1);
        assert!(t.memory_info().unwrap().size_in_mib().unwrap() >= 512);
        assert!(t.network_info().unwrap().network_performance().is_some());
    }
    assert!(names.iter().filter(|n| n.starts_with("m5.")).count() >= 5);
    assert!(names.iter().any(|n| n.starts_with("u-")));

    // The same catalogue for every account in the region.
    let other = list(clients(&sim, REGION, KEY_B)).await;
    assert_eq!(types, other);

    let error = clients(&sim, REGION, KEY_A)
        .ec2
        .describe_instance_types()
        .max_results(101)
        .send()
        .await
        .unwrap_err();
    assert_eq!(failure(&error), (400, "InvalidParameterValue".into()));
}

#[tokio::test]
async fn ec2_refuses_bad_page_parameters_and_unknown_actions() {
    let sim = start(config()).await;
    let c = clients(&sim, REGION, KEY_A);
    let error = c
        .ec2
        .describe_subnets()
        .max_results(3)
        .send()
        .await
        .unwrap_err();
    assert_eq!(failure(&error), (400, "InvalidParameterValue".into()));
    let error = c
        .ec2
        .describe_subnets()
        .next_token("forged")
        .send()
        .await
        .unwrap_err();
    assert_eq!(failure(&error), (400, "InvalidPaginationToken".into()));
    let error = c.ec2.describe_vpcs().send().await.unwrap_err();
    assert_eq!(failure(&error), (400, "InvalidAction".into()));
    let (status, _, body) = raw(
        &sim,
        "POST",
        "/",
        Some((REGION, "ec2")),
        "Version=2016-11-15",
    )
    .await;
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("<Code>MissingAction</Code>"));
}

#[tokio::test]
async fn iam_instance_profiles_paginate_by_marker() {
    let sim = start(config()).await;
    let c = clients(&sim, "ap-southeast-2", KEY_B);
    let profiles: Vec<_> = c
        .iam
        .list_instance_profiles()
        .max_items(7)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(profiles.len(), 25);
    assert_eq!(sim.requests(Service::Iam, "ListInstanceProfiles"), 4);
    let names: Vec<&str> = profiles.iter().map(|p| p.instance_profile_name()).collect();
    assert!(names.windows(2).all(|w| w[0] < w[1]), "sorted by name");
    for p in &profiles {
        assert!(p.instance_profile_id().starts_with("AIPA") && p.instance_profile_id().len() == 21);
        assert_eq!(
            p.arn(),
            format!(
                "arn:aws:iam::{ACCOUNT_B}:instance-profile{}{}",
                p.path(),
                p.instance_profile_name()
            )
        );
        assert!(p.create_date().secs() > 1_500_000_000);
        let role = &p.roles()[0];
        assert!(role.role_id().starts_with("AROA"));
        assert!(role.arn().contains(&format!("{ACCOUNT_B}:role/")));
    }
    let first = c
        .iam
        .list_instance_profiles()
        .max_items(7)
        .send()
        .await
        .unwrap();
    assert!(first.is_truncated() && first.marker().is_some());
    let error = c
        .iam
        .list_instance_profiles()
        .marker("forged")
        .send()
        .await
        .unwrap_err();
    assert_eq!(failure(&error), (400, "ValidationError".into()));
    let error = c.iam.list_roles().send().await.unwrap_err();
    assert_eq!(failure(&error), (400, "InvalidAction".into()));
}

// ---------------------------------------------------------------- Determinism and change

#[tokio::test]
async fn the_same_configuration_serves_byte_identical_pages() {
    let a = start(config()).await;
    let b = start(config()).await;
    for (method, path, service, body) in [
        (
            "POST",
            "/DescribeSourceServers",
            "drs",
            r#"{"maxResults":20}"#,
        ),
        ("GET", "/ListStagingAccounts?maxResults=2", "drs", ""),
        (
            "POST",
            "/",
            "ec2",
            "Action=DescribeSubnets&Version=2016-11-15&MaxResults=5",
        ),
        (
            "POST",
            "/",
            "ec2",
            "Action=DescribeSecurityGroups&Version=2016-11-15",
        ),
        (
            "POST",
            "/",
            "ec2",
            "Action=DescribeInstanceTypes&Version=2016-11-15",
        ),
        (
            "POST",
            "/",
            "iam",
            "Action=ListInstanceProfiles&Version=2010-05-08&MaxItems=10",
        ),
    ] {
        let region = if service == "iam" {
            "us-east-1"
        } else {
            REGION
        };
        let (status_a, _, body_a) = raw(&a, method, path, Some((region, service)), body).await;
        let (status_b, _, body_b) = raw(&b, method, path, Some((region, service)), body).await;
        assert_eq!((status_a, status_b), (200, 200), "{path} {body}");
        assert_eq!(body_a, body_b, "{path} {body}");
        // And again from the same simulator.
        let (_, _, again) = raw(&a, method, path, Some((region, service)), body).await;
        assert_eq!(body_a, again, "{path} {body}");
    }
    // Through the SDK too, every page.
    let pages_a = all_servers(&clients(&a, REGION, KEY_A).drs, 7).await;
    let pages_b = all_servers(&clients(&b, REGION, KEY_A).drs, 7).await;
    assert_eq!(pages_a, pages_b);

    // Another seed is another fleet.
    let other = start(SimConfig {
        seed: 43,
        ..config()
    })
    .await;
    let other_servers = all_servers(&clients(&other, REGION, KEY_A).drs, 1000).await;
    assert_ne!(
        pages_a[0].source_server_id(),
        other_servers[0].source_server_id()
    );
}

#[tokio::test]
async fn accounts_and_regions_have_their_own_fleets() {
    let sim = start(config()).await;
    let a = all_servers(&clients(&sim, REGION, KEY_A).drs, 1000).await;
    let b = all_servers(&clients(&sim, REGION, KEY_B).drs, 1000).await;
    let a_east = all_servers(&clients(&sim, "us-east-1", KEY_A).drs, 1000).await;
    assert_eq!((a.len(), b.len(), a_east.len()), (50, 50, 50));
    assert!(b[0].arn().unwrap().contains(ACCOUNT_B));
    assert!(a_east[0].arn().unwrap().contains(":us-east-1:"));
    let ids = |s: &[SourceServer]| {
        s.iter()
            .filter_map(|x| x.source_server_id().map(str::to_owned))
            .collect::<HashSet<_>>()
    };
    assert!(ids(&a).is_disjoint(&ids(&b)));
    assert!(ids(&a).is_disjoint(&ids(&a_east)));
}

#[tokio::test]
async fn a_generation_bump_changes_some_servers_and_only_that_fleet() {
    let sim = start(config()).await;
    let c = clients(&sim, REGION, KEY_A);
    let other = clients(&sim, REGION, KEY_B);
    let before = all_servers(&c.drs, 1000).await;
    let other_before = all_servers(&other.drs, 1000).await;

    assert_eq!(sim.bump_generation(account(ACCOUNT_A), &region(REGION)), 1);
    let after = all_servers(&c.drs, 1000).await;
    let changed = before.iter().zip(&after).filter(|(x, y)| x != y).count();
    assert!((1..40).contains(&changed), "{changed} of 50 changed");
    assert!(
        before
            .iter()
            .zip(&after)
            .all(|(x, y)| x.source_server_id() == y.source_server_id())
    );
    let seen = |s: &SourceServer| {
        s.life_cycle()
            .unwrap()
            .last_seen_by_service_date_time()
            .unwrap()
            .to_owned()
    };
    assert!(before.iter().zip(&after).any(|(x, y)| seen(x) != seen(y)));
    assert_eq!(all_servers(&other.drs, 1000).await, other_before);

    // Back to generation 0: the original data again.
    sim.update(|c| c.fleets.clear()).unwrap();
    assert_eq!(all_servers(&c.drs, 1000).await, before);
}

#[tokio::test]
async fn four_thousand_servers_in_one_account_and_region() {
    let sim = start(config()).await;
    sim.set_servers(account(ACCOUNT_A), &region(REGION), 4_000)
        .unwrap();
    let c = clients(&sim, REGION, KEY_A);
    let started = Instant::now();
    let servers = all_servers(&c.drs, 1000).await;
    let first = started.elapsed();
    assert_eq!(servers.len(), 4_000);
    let ids: HashSet<&str> = servers
        .iter()
        .filter_map(|s| s.source_server_id())
        .collect();
    assert_eq!(ids.len(), 4_000);
    assert_eq!(sim.requests(Service::Drs, "DescribeSourceServers"), 4);
    let started = Instant::now();
    let again = all_servers(&c.drs, 1000).await;
    assert_eq!(again.len(), 4_000);
    // Generous bounds for unoptimised builds on a busy machine.
    assert!(
        first < Duration::from_secs(30),
        "first listing took {first:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "second listing took {:?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------- Faults

#[tokio::test]
async fn drs_throttling_is_a_429_with_retry_after() {
    let sim = start(config()).await;
    let c = clients(&sim, REGION, KEY_A);
    sim.update(|c| {
        c.faults.throttle_next = 1;
        c.faults.retry_after_secs = 3;
    })
    .unwrap();
    let error = c.drs.describe_source_servers().send().await.unwrap_err();
    assert_eq!(failure(&error), (429, "ThrottlingException".into()));
    assert_eq!(
        error.raw_response().unwrap().headers().get("retry-after"),
        Some("3")
    );
    let Some(DescribeSourceServersError::ThrottlingException(throttled)) = error.as_service_error()
    else {
        panic!("not a ThrottlingException: {error:?}");
    };
    assert_eq!(throttled.retry_after_seconds(), Some("3"));
    // Only the next one.
    c.drs.describe_source_servers().send().await.unwrap();

    sim.update(|c| {
        c.faults.throttle_next = 1;
        c.faults.retry_after_secs = 0;
    })
    .unwrap();
    let error = c.drs.list_staging_accounts().send().await.unwrap_err();
    assert_eq!(failure(&error), (429, "ThrottlingException".into()));
    assert_eq!(
        error.raw_response().unwrap().headers().get("retry-after"),
        Some("0")
    );
    assert_eq!(
        sim.requests(Service::Drs, "DescribeSourceServers"),
        2,
        "faults are counted"
    );
}

#[tokio::test]
async fn server_errors_surface_in_each_protocol() {
    let sim = start(config()).await;
    let c = clients(&sim, REGION, KEY_A);
    sim.update(|c| c.faults.server_error_next = 3).unwrap();
    let drs = c.drs.describe_source_servers().send().await.unwrap_err();
    assert_eq!(failure(&drs), (500, "InternalServerException".into()));
    assert_eq!(
        drs.raw_response().unwrap().headers().get("retry-after"),
        Some("1")
    );
    let ec2 = c.ec2.describe_subnets().send().await.unwrap_err();
    assert_eq!(failure(&ec2), (500, "InternalError".into()));
    let iam = c.iam.list_instance_profiles().send().await.unwrap_err();
    assert_eq!(failure(&iam), (500, "ServiceFailure".into()));
    c.ec2.describe_subnets().send().await.unwrap();
}

#[tokio::test]
async fn throttling_surfaces_in_each_protocol_and_the_sdk_retries_it() {
    let sim = start(config()).await;
    let c = clients(&sim, REGION, KEY_A);
    sim.update(|c| c.faults.throttle_next = 2).unwrap();
    let ec2 = c.ec2.describe_security_groups().send().await.unwrap_err();
    assert_eq!(failure(&ec2), (503, "RequestLimitExceeded".into()));
    let iam = c.iam.list_instance_profiles().send().await.unwrap_err();
    assert_eq!(failure(&iam), (400, "Throttling".into()));

    // With retries, the SDK classifies every throttle as retryable and gets through.
    let retrying = clients_with(
        &sim,
        REGION,
        Credentials::new(KEY_A, "secret", None, None, "test"),
        RetryConfig::standard()
            .with_max_attempts(3)
            .with_initial_backoff(Duration::from_millis(5)),
    );
    for (service, operation) in [
        (Service::Drs, "DescribeSourceServers"),
        (Service::Ec2, "DescribeSubnets"),
        (Service::Iam, "ListInstanceProfiles"),
    ] {
        sim.update(|c| c.faults.throttle_next = 2).unwrap();
        let before = sim.requests(service, operation);
        match service {
            Service::Drs => drop(retrying.drs.describe_source_servers().send().await.unwrap()),
            Service::Ec2 => drop(retrying.ec2.describe_subnets().send().await.unwrap()),
            Service::Iam => drop(retrying.iam.list_instance_profiles().send().await.unwrap()),
        }
        assert_eq!(
            sim.requests(service, operation) - before,
            3,
            "{service} {operation}"
        );
    }
}

#[tokio::test]
async fn a_throttle_rate_is_seeded_and_repeatable() {
    let outcomes = |sim: SimHandle| async move {
        let c = clients(&sim, REGION, KEY_A);
        let mut throttled = Vec::new();
        for _ in 0..60 {
            throttled.push(c.ec2.describe_subnets().send().await.is_err());
        }
        throttled
    };
    let rate = |rate| {
        let mut config = config();
        config.faults.throttle_rate = rate;
        config
    };
    let a = outcomes(start(rate(0.3)).await).await;
    let b = outcomes(start(rate(0.3)).await).await;
    assert_eq!(a, b);
    let count = a.iter().filter(|t| **t).count();
    assert!((5..=35).contains(&count), "{count} of 60 throttled");
    let all = outcomes(start(rate(1.0)).await).await;
    assert!(all.iter().all(|t| *t));
}

#[tokio::test]
async fn uninitialised_drs_affects_drs_only() {
    let mut config = config();
    config.faults.not_initialized.push(RegionalSelector {
        account: AccountMatch::Account(account(ACCOUNT_A)),
        region: region(REGION),
    });
    config.faults.not_initialized.push(RegionalSelector {
        account: AccountMatch::Any,
        region: region("ap-south-1"),
    });
    let sim = start(config).await;
    let c = clients(&sim, REGION, KEY_A);
    let error = c.drs.describe_source_servers().send().await.unwrap_err();
    assert_eq!(
        failure(&error),
        (400, "UninitializedAccountException".into())
    );
    assert!(matches!(
        error.as_service_error(),
        Some(DescribeSourceServersError::UninitializedAccountException(_))
    ));
    c.ec2.describe_subnets().send().await.unwrap();
    c.iam.list_instance_profiles().send().await.unwrap();
    // Another account in the region is initialised; any account in ap-south-1 is not.
    clients(&sim, REGION, KEY_B)
        .drs
        .describe_source_servers()
        .send()
        .await
        .unwrap();
    let error = clients(&sim, "ap-south-1", KEY_B)
        .drs
        .list_staging_accounts()
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        failure(&error),
        (400, "UninitializedAccountException".into())
    );
}

#[tokio::test]
async fn a_denied_account_is_denied_everywhere() {
    let mut config = config();
    config.faults.access_denied.push(account(ACCOUNT_B));
    let sim = start(config).await;
    let c = clients(&sim, REGION, KEY_B);
    let drs = c.drs.describe_source_servers().send().await.unwrap_err();
    assert_eq!(failure(&drs), (403, "AccessDeniedException".into()));
    let ec2 = c.ec2.describe_instance_types().send().await.unwrap_err();
    assert_eq!(failure(&ec2), (403, "UnauthorizedOperation".into()));
    let iam = c.iam.list_instance_profiles().send().await.unwrap_err();
    assert_eq!(failure(&iam), (403, "AccessDenied".into()));
    clients(&sim, REGION, KEY_A)
        .drs
        .describe_source_servers()
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_disabled_region_answers_like_an_opt_in_region() {
    let mut config = config();
    config.faults.disabled_regions.push(region("me-south-1"));
    let sim = start(config).await;
    let c = clients(&sim, "me-south-1", KEY_A);
    let ec2 = c.ec2.describe_subnets().send().await.unwrap_err();
    assert_eq!(failure(&ec2), (401, "OptInRequired".into()));
    let drs = c.drs.describe_source_servers().send().await.unwrap_err();
    assert_eq!(failure(&drs), (403, "UnrecognizedClientException".into()));
    // IAM is global.
    c.iam.list_instance_profiles().send().await.unwrap();
}

#[tokio::test]
async fn latency_delays_every_answer() {
    let mut config = config();
    config.faults.latency = Duration::from_millis(200);
    let sim = start(config).await;
    let c = clients(&sim, REGION, KEY_A);
    let started = Instant::now();
    let (a, b, d) = tokio::join!(
        c.drs.describe_source_servers().send(),
        c.ec2.describe_subnets().send(),
        c.iam.list_instance_profiles().send(),
    );
    a.unwrap();
    b.unwrap();
    d.unwrap();
    let elapsed = started.elapsed();
    // Concurrent calls wait concurrently.
    assert!(
        elapsed >= Duration::from_millis(200) && elapsed < Duration::from_millis(2_000),
        "{elapsed:?}"
    );
    sim.set_faults(Faults::default()).unwrap();
    let started = Instant::now();
    c.drs.describe_source_servers().send().await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_targets_wait_out_their_latency_concurrently() {
    // 96 accounts, each its own fleet; 300 ms per call; 32 calls in flight. The
    // first 32 are held once past their latency: all 32 being held at once proves
    // the simulator waits out latencies side by side, whatever the machine's load.
    let mut config = config();
    config.faults.latency = Duration::from_millis(300);
    let keys: Vec<String> = (0..96).map(|i| format!("AKIATARGET{i:010}")).collect();
    for (i, key) in keys.iter().enumerate() {
        config.access_keys.insert(
            key.clone(),
            account(&format!("{:012}", 500_000_000_000_u64 + i as u64)),
        );
    }
    let sim = start(config).await;
    let hold = sim.hold_next(32);
    let mut tasks = tokio::task::JoinSet::new();
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(32));
    for key in &keys {
        let c = clients(&sim, REGION, key);
        let permits = permits.clone();
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await.unwrap();
            c.drs
                .describe_source_servers()
                .send()
                .await
                .unwrap()
                .items()
                .len()
        });
    }
    // A serial simulator would hold the first and never reach the second; the
    // bound only keeps a broken one from hanging the suite.
    tokio::time::timeout(Duration::from_secs(60), hold.wait_arrived(32))
        .await
        .expect("32 requests past their latency at the same time");
    assert_eq!(
        sim.requests(Service::Drs, "DescribeSourceServers"),
        0,
        "none is answered while the first 32 are held"
    );
    hold.release();
    let mut listed = 0;
    while let Some(count) = tasks.join_next().await {
        listed += count.unwrap();
    }
    assert_eq!(listed, 96 * 50);
    assert_eq!(sim.requests(Service::Drs, "DescribeSourceServers"), 96);
}

/// Every item of a DRS listing, page by page through the SDK's paginator.
macro_rules! every_item {
    ($request:expr) => {
        $request
            .into_paginator()
            .items()
            .send()
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect::<Vec<_>>()
    };
}

#[tokio::test]
async fn jobs_recovery_instances_and_source_networks_read_through_the_sdk_every_page() {
    let mut config = config();
    config.max_page_size = 3;
    let sim = start(config).await;
    let c = clients(&sim, REGION, KEY_A);
    let jobs = every_item!(c.drs.describe_jobs());
    assert!(jobs.len() > 3, "more than a page: {}", jobs.len());
    let instances = every_item!(c.drs.describe_recovery_instances());
    assert!(!instances.is_empty());
    // Every recovery instance belongs to a job the account lists, and to one
    // of its servers.
    let servers: Vec<String> = every_item!(c.drs.describe_source_servers())
        .into_iter()
        .map(|s| s.source_server_id.unwrap())
        .collect();
    for instance in &instances {
        let job = instance.job_id().unwrap();
        assert!(jobs.iter().any(|j| j.job_id() == job), "{job}");
        assert!(
            servers
                .iter()
                .any(|s| Some(s.as_str()) == instance.source_server_id())
        );
    }
    let networks = every_item!(c.drs.describe_source_networks());
    assert!(!networks.is_empty());
    assert!(networks.iter().all(|n| n.replication_status().is_some()));
}

#[tokio::test]
async fn a_held_request_answers_with_the_data_of_its_arrival() {
    let sim = start(config()).await;
    let c = clients(&sim, REGION, KEY_A);
    let before = c.drs.describe_source_servers().send().await.unwrap();

    let hold = sim.hold_next(1);
    let held = tokio::spawn({
        let drs = c.drs.clone();
        async move { drs.describe_source_servers().send().await }
    });
    hold.wait_arrived(1).await;
    assert_eq!(hold.arrived(), 1);
    sim.bump_generation(account(ACCOUNT_A), &region(REGION));
    // Later requests are not held and see the new generation.
    let after = c.drs.describe_source_servers().send().await.unwrap();
    assert_ne!(after.items(), before.items());
    assert!(!held.is_finished());
    assert_eq!(
        sim.requests(Service::Drs, "DescribeSourceServers"),
        2,
        "the held one is not answered yet"
    );
    hold.release();
    let held = held.await.unwrap().unwrap();
    assert_eq!(held.items(), before.items());
    assert_eq!(sim.requests(Service::Drs, "DescribeSourceServers"), 3);
}

// ---------------------------------------------------------------- Accounts

#[tokio::test]
async fn access_keys_map_to_accounts_and_unknown_keys_to_the_default() {
    let mut config = config();
    config.default_account = account("999999999999");
    let sim = start(config).await;
    let owner = |key: &'static str| {
        let c = clients(&sim, REGION, key);
        async move {
            let drs = c
                .drs
                .describe_source_servers()
                .max_results(1)
                .send()
                .await
                .unwrap();
            let ec2 = c
                .ec2
                .describe_subnets()
                .max_results(5)
                .send()
                .await
                .unwrap();
            let iam = c
                .iam
                .list_instance_profiles()
                .max_items(1)
                .send()
                .await
                .unwrap();
            (
                drs.items()[0]
                    .arn()
                    .unwrap()
                    .split(':')
                    .nth(4)
                    .unwrap()
                    .to_owned(),
                ec2.subnets()[0].owner_id().unwrap().to_owned(),
                iam.instance_profiles()[0]
                    .arn()
                    .split(':')
                    .nth(4)
                    .unwrap()
                    .to_owned(),
            )
        }
    };
    let expect = |a: &str| (a.to_owned(), a.to_owned(), a.to_owned());
    assert_eq!(owner(KEY_A).await, expect(ACCOUNT_A));
    assert_eq!(owner(KEY_B).await, expect(ACCOUNT_B));
    assert_eq!(owner("AKIAUNKNOWNKEY000000").await, expect("999999999999"));
}

#[tokio::test]
async fn assumed_role_credentials_from_moto_sts_reach_the_assumed_account() {
    let endpoint = crate::support::moto::endpoint();
    let sts = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(drs_cache::adapters::aws::https_client())
            .endpoint_url(endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
            .build(),
    );
    let assumed = sts
        .assume_role()
        .role_arn("arn:aws:iam::333344445555:role/drs-cache-reader")
        .role_session_name("simulator-test")
        .send()
        .await
        .unwrap();
    let credentials = assumed.credentials().unwrap();
    let mut config = config();
    config.sts_endpoint = Some(endpoint.to_owned());
    config.default_account = account("999999999999");
    let sim = start(config).await;
    let c = clients_with(
        &sim,
        REGION,
        Credentials::new(
            credentials.access_key_id(),
            credentials.secret_access_key(),
            Some(credentials.session_token().to_owned()),
            None,
            "assumed",
        ),
        RetryConfig::disabled(),
    );
    let servers = c.drs.describe_source_servers().send().await.unwrap();
    assert!(
        servers.items()[0]
            .arn()
            .unwrap()
            .contains(":333344445555:source-server/")
    );
    let subnets = c.ec2.describe_subnets().send().await.unwrap();
    assert_eq!(subnets.subnets()[0].owner_id(), Some("333344445555"));
    // A key moto never issued gets the default account; mapped keys never reach STS.
    let unknown = clients(&sim, REGION, "AKIANEVERISSUED00000")
        .drs
        .describe_source_servers()
        .send()
        .await
        .unwrap();
    assert!(unknown.items()[0].arn().unwrap().contains(":999999999999:"));
    let mapped = clients(&sim, REGION, KEY_A)
        .drs
        .describe_source_servers()
        .send()
        .await
        .unwrap();
    assert!(mapped.items()[0].arn().unwrap().contains(ACCOUNT_A));
}

// ---------------------------------------------------------------- Admin

#[tokio::test]
async fn admin_reads_and_replaces_the_configuration_over_http() {
    let sim = start(config()).await;
    let (status, _, body) = raw(&sim, "GET", "/_sim/config", None, "").await;
    assert_eq!(status, 200);
    let mut config: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(config["seed"], 42);

    config["faults"]["throttle_next"] = 1.into();
    let (status, _, _) = raw(&sim, "PUT", "/_sim/config", None, &config.to_string()).await;
    assert_eq!(status, 200);
    assert_eq!(sim.config().faults.throttle_next, 1);
    let c = clients(&sim, REGION, KEY_A);
    let error = c.ec2.describe_subnets().send().await.unwrap_err();
    assert_eq!(failure(&error), (503, "RequestLimitExceeded".into()));

    config["faults"]["server_error_rate"] = (-0.5).into();
    let (status, _, body) = raw(&sim, "PUT", "/_sim/config", None, &config.to_string()).await;
    assert_eq!(status, 400);
    let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error["error"], "InvalidConfig");
    assert_eq!(error["details"]["field"], "faults.server_error_rate");
    let (status, _, body) = raw(
        &sim,
        "PUT",
        "/_sim/config",
        None,
        r#"{"fleets":[{"account":"1","region":"eu-west-1"}]}"#,
    )
    .await;
    assert_eq!(status, 400);
    let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error["details"]["field"], "fleets[0].account");

    let (status, _, body) = raw(&sim, "GET", "/_sim/requests", None, "").await;
    assert_eq!(status, 200);
    let counts: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(counts["ec2"]["DescribeSubnets"], 1);
    let (status, _, _) = raw(&sim, "DELETE", "/_sim/config", None, "").await;
    assert_eq!(status, 405);
    let (status, _, _) = raw(&sim, "GET", "/_sim/nothing", None, "").await;
    assert_eq!(status, 404);
    sim.shutdown().await;
}

#[tokio::test]
async fn an_invalid_starting_configuration_is_refused() {
    let mut config = config();
    config.faults.throttle_rate = 1.5;
    let error = Simulator::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    assert!(
        error.to_string().contains("faults.throttle_rate"),
        "{error}"
    );
}
