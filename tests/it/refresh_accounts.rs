//! Cross-account refresh: the deployment's own account with its own
//! credentials, a second account through STS AssumeRole on moto. EC2 and IAM
//! are moto's (which keeps accounts apart); DRS is the simulator, which takes
//! the caller's account from moto STS as AWS does.

use std::collections::BTreeSet;

use crate::support::{
    moto,
    refresh::{Endpoints, HOME, REGION, Rig, assumed_config, home, sdk_config},
};
use drs_cache::adapters::aws::{AccountAccess, Credentials};
use drs_sim::{SimConfig, Simulator};
use serde_json::Value;

const OTHER: &str = "210987654321";
const ROLE: &str = "drs-cache-reader";
const EXTERNAL_ID: &str = "drs-cache-tests";

/// Creates a VPC and a subnet named `name` in the account of `config`.
async fn create_subnet(config: &aws_config::SdkConfig, name: &str) -> String {
    let ec2 = aws_sdk_ec2::Client::new(config);
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.40.0.0/16")
        .send()
        .await
        .unwrap()
        .vpc
        .unwrap()
        .vpc_id
        .unwrap();
    let tag = aws_sdk_ec2::types::Tag::builder()
        .key("Name")
        .value(name)
        .build();
    ec2.create_subnet()
        .vpc_id(vpc)
        .cidr_block("10.40.1.0/24")
        .availability_zone(format!("{REGION}a"))
        .tag_specifications(
            aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::Subnet)
                .tags(tag)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .subnet
        .unwrap()
        .subnet_id
        .unwrap()
}

async fn create_profile(config: &aws_config::SdkConfig, name: &str) {
    aws_sdk_iam::Client::new(config)
        .create_instance_profile()
        .instance_profile_name(name)
        .send()
        .await
        .unwrap();
}

fn values(doc: &Value, list: &str, field: &str) -> BTreeSet<String> {
    doc[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[field].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn two_accounts_each_see_their_own_data_only() {
    let sim = Simulator::start(
        "127.0.0.1:0".parse().unwrap(),
        SimConfig {
            sts_endpoint: Some(moto::endpoint().to_owned()),
            ..SimConfig::default()
        },
    )
    .await
    .unwrap();
    let base = sdk_config(
        moto::endpoint(),
        Endpoints::default().with("drs", &sim.endpoint()),
    )
    .await;
    let other = assumed_config(&base, OTHER, ROLE, EXTERNAL_ID).await;
    let tag = moto::unique_name("subnet");
    let home_subnet = create_subnet(&base, &format!("{tag}-home")).await;
    let other_subnet = create_subnet(&other, &format!("{tag}-other")).await;
    let profile = moto::unique_name("profile");
    create_profile(&base, &format!("{profile}-home")).await;
    create_profile(&other, &format!("{profile}-other")).await;

    let access = AccountAccess {
        own_account: Some(home()),
        others: Credentials::AssumeRole {
            role_name: ROLE.into(),
            external_id: Some(EXTERNAL_ID.into()),
            session_name: "drs-cache-refresher".into(),
        },
    };
    let rig = Rig::over(sim, base, access).await;
    let keys: Vec<String> = [HOME, OTHER]
        .iter()
        .flat_map(|account| {
            ["drs-source-servers", "ec2-subnets", "ec2-instance-profiles"]
                .map(|t| format!("{t}#{REGION}#{account}"))
        })
        .collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let report = rig.refresh(&keys).await;
    assert_eq!(report.counts.failed, 0, "{report:#?}");

    let read = |account: &'static str, path: &'static str| {
        let rig = &rig;
        async move {
            rig.get_json(path, &[("region", REGION), ("accountId", account)])
                .await
        }
    };
    let home_subnets = values(&read(HOME, "/ec2/subnets").await, "subnets", "subnetId");
    let other_subnets = values(&read(OTHER, "/ec2/subnets").await, "subnets", "subnetId");
    assert!(home_subnets.contains(&home_subnet));
    assert!(!home_subnets.contains(&other_subnet));
    assert!(other_subnets.contains(&other_subnet));
    assert!(!other_subnets.contains(&home_subnet));

    let home_profiles = values(
        &read(HOME, "/ec2/instance-profiles").await,
        "instanceProfiles",
        "instanceProfileName",
    );
    let other_profiles = values(
        &read(OTHER, "/ec2/instance-profiles").await,
        "instanceProfiles",
        "instanceProfileName",
    );
    assert!(home_profiles.contains(&format!("{profile}-home")));
    assert!(!home_profiles.contains(&format!("{profile}-other")));
    assert!(other_profiles.contains(&format!("{profile}-other")));
    assert!(!other_profiles.contains(&format!("{profile}-home")));

    // DRS answered each account with its own fleet.
    let home_servers = values(
        &read(HOME, "/drs/source-servers").await,
        "servers",
        "sourceServerID",
    );
    let other_servers = values(
        &read(OTHER, "/drs/source-servers").await,
        "servers",
        "sourceServerID",
    );
    assert_eq!(home_servers.len(), 50);
    assert_eq!(other_servers.len(), 50);
    assert!(home_servers.is_disjoint(&other_servers));
}
