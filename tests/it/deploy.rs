//! scripts/deploy refuses before it changes anything, naming what is missing
//! or wrong: the environment, a parameter, the region, the credentials, the
//! bucket. Checks against an account run on moto; none of these cases gets as
//! far as the build (scripts/test runs the dry run, which does).

use std::{path::Path, process::Command};

use crate::support::moto;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/deploy");
const DEV: &str = r#"{"Parameters": {"LogRetentionDays": 7}}"#;

/// What one run of the script did.
struct Run {
    status: Option<i32>,
    stderr: String,
}

impl Run {
    /// Refused with `reason` in its message, having changed nothing.
    fn assert_refused(&self, reason: &str) {
        assert_eq!(
            self.status,
            Some(2),
            "exit status 2 for a refusal: {}",
            self.stderr
        );
        assert!(
            self.stderr.contains(reason),
            "the refusal names {reason:?}: {}",
            self.stderr
        );
        assert!(
            self.stderr.contains("nothing was changed"),
            "{}",
            self.stderr
        );
        assert!(
            !self.stderr.contains("building "),
            "refused before the build: {}",
            self.stderr
        );
    }
}

/// An environment directory holding `files` (name, JSON).
fn environments(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in files {
        std::fs::write(dir.path().join(format!("{name}.json")), body).unwrap();
    }
    dir
}

/// The script with `args`, its environments in `params`, no AWS configuration
/// but `aws` (variable, value) pairs and the moto endpoint.
fn deploy(params: &Path, aws: &[(&str, &str)], args: &[&str]) -> Run {
    let home = tempfile::tempdir().unwrap();
    let mut command = Command::new("bash");
    command.arg(SCRIPT).args(args);
    for (name, _) in std::env::vars() {
        if name.starts_with("AWS_") {
            command.env_remove(name);
        }
    }
    command
        .env("DRS_CACHE_PARAMS_DIR", params)
        .env("AWS_CONFIG_FILE", home.path().join("config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            home.path().join("credentials"),
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", moto::endpoint())
        .envs(aws.iter().copied());
    let out = command.output().expect("bash runs scripts/deploy");
    Run {
        status: out.status.code(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

const CREDENTIALS: [(&str, &str); 2] = [
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
];

fn with_region(region: &str) -> Vec<(&str, &str)> {
    let mut env = CREDENTIALS.to_vec();
    env.push(("AWS_REGION", region));
    env
}

#[test]
fn an_unknown_or_missing_environment_is_refused_naming_the_known_ones() {
    let params = environments(&[("dev", DEV), ("prod", DEV)]);
    deploy(params.path(), &[], &["--env", "staging", "--dry-run"])
        .assert_refused("unknown environment 'staging'");
    deploy(params.path(), &[], &["--dry-run"]).assert_refused("known: dev prod");
    deploy(params.path(), &[], &["--env", "../dev", "--dry-run"])
        .assert_refused("environment name '../dev'");
}

#[test]
fn a_parameter_the_template_lacks_or_a_value_it_would_reject_is_refused() {
    for (file, reason) in [
        (
            r#"{"Parameters": {"Regionz": "us-east-1"}}"#,
            "Parameters.Regionz: the template has no such parameter",
        ),
        (
            r#"{"Parameters": {"LogRetentionDays": 8}}"#,
            "Parameters.LogRetentionDays: '8' is not one of",
        ),
        (
            r#"{"Parameters": {"Regions": "mars-north"}}"#,
            "Parameters.Regions: 'mars-north' does not match",
        ),
        (
            r#"{"Parameters": {"MemorySize": 64}}"#,
            "Parameters.MemorySize: 64 is below the minimum 128",
        ),
        (
            r#"{"Parameters": {"CodeBucket": "mine"}}"#,
            "Parameters.CodeBucket: set by scripts/deploy",
        ),
        (
            r#"{"Parameters": {"AccountIds": null}}"#,
            "Parameters.AccountIds: required for this environment and still null",
        ),
        (
            r#"{"Parameters": {}, "Bucket": "mine"}"#,
            "unknown key 'Bucket'",
        ),
        ("[1, 2]", "a JSON object"),
        ("{", "not JSON"),
    ] {
        let params = environments(&[("dev", file)]);
        deploy(params.path(), &[], &["--env", "dev", "--dry-run"]).assert_refused(reason);
    }
}

#[test]
fn the_shipped_production_environment_is_refused_until_its_accounts_and_regions_are_set() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("cfn/params");
    deploy(&shipped, &[], &["--env", "prod", "--dry-run"])
        .assert_refused("Parameters.AccountIds: required for this environment and still null");
}

#[test]
fn a_deploy_needs_a_region_credentials_and_a_bucket() {
    let params = environments(&[("dev", DEV)]);
    deploy(params.path(), &CREDENTIALS, &["--env", "dev"]).assert_refused("no region");
    deploy(
        params.path(),
        &[("AWS_REGION", "us-east-1")],
        &["--env", "dev"],
    )
    .assert_refused("no usable AWS credentials");
    deploy(params.path(), &with_region("us-east-1"), &["--env", "dev"])
        .assert_refused("no code bucket: pass --bucket NAME");
    deploy(
        params.path(),
        &with_region("us-east-1"),
        &["--env", "dev", "--check-build"],
    )
    .assert_refused("--check-build builds unoptimised packages, for --dry-run only");
}

#[tokio::test]
async fn a_bucket_that_does_not_exist_is_refused_unless_it_may_be_created_and_is_not_created() {
    let params = environments(&[("dev", DEV)]);
    let bucket = moto::unique_name("code");
    deploy(
        params.path(),
        &with_region("us-east-1"),
        &["--env", "dev", "--bucket", &bucket],
    )
    .assert_refused(&format!(
        "bucket {bucket} does not exist: create it, or pass --create-bucket"
    ));
    let s3 = moto::s3_client(moto::endpoint());
    let head = s3.head_bucket().bucket(&bucket).send().await;
    assert!(
        head.is_err(),
        "the refused deploy created no bucket {bucket}"
    );
}

#[tokio::test]
async fn a_bucket_outside_the_deployment_region_is_refused() {
    let params = environments(&[("dev", DEV)]);
    let bucket = moto::unique_name("code");
    let s3 = moto::s3_client(moto::endpoint());
    s3.create_bucket()
        .bucket(&bucket)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await
        .expect("moto creates the bucket");
    deploy(
        params.path(),
        &with_region("us-east-1"),
        &["--env", "dev", "--bucket", &bucket],
    )
    .assert_refused(&format!(
        "bucket {bucket} is in eu-west-1, not in the deployment region us-east-1"
    ));
}
