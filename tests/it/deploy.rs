//! scripts/deploy refuses before it changes anything, naming what is missing
//! or wrong: the environment, a parameter, the accounts file, the region, the
//! credentials, the bucket. Checks against an account run on moto; none of the
//! refusals gets as far as the build (scripts/test runs the dry run, which
//! does, as does the dry run of a fleet's accounts file here).

use std::{path::Path, process::Command};

use crate::support::moto;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/deploy");
const DEV: &str = r#"{"Parameters": {"LogRetentionDays": 7}}"#;

/// What one run of the script did.
struct Run {
    status: Option<i32>,
    stdout: String,
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

/// `count` distinct account IDs as an accounts file: a comment, a blank line,
/// then one a line, the last ten on one line separated by commas.
fn accounts_file(count: usize) -> String {
    let ids: Vec<String> = (0..count)
        .map(|i| format!("{:012}", 200_000_000_000 + i))
        .collect();
    let (lines, tail) = ids.split_at(count.saturating_sub(10));
    format!("# the fleet\n\n{}\n{}\n", lines.join("\n"), tail.join(","))
}

/// An environment file naming `accounts.txt` in AccountListFile, with an
/// organization, and its accounts file holding `accounts`.
fn fleet_environment(name: &str, accounts: &str) -> tempfile::TempDir {
    let params = environments(&[(
        name,
        r#"{"AccountListFile": "accounts.txt",
            "Parameters": {"OrganizationId": "o-a1b2c3d4e5"}}"#,
    )]);
    std::fs::write(params.path().join("accounts.txt"), accounts).unwrap();
    params
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
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
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
            r#"{"Parameters": {"AccountListObject": "s3://b-1/accounts.txt"}}"#,
            "Parameters.AccountListObject: set by scripts/deploy from AccountListFile",
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

#[test]
fn more_than_100_account_ids_are_refused_pointing_to_an_account_list_file() {
    let ids = |n: usize| {
        (0..n)
            .map(|i| format!("\"{:012}\"", 300_000_000_000 + i))
            .collect::<Vec<_>>()
            .join(",")
    };
    let params = environments(&[(
        "dev",
        &format!(r#"{{"Parameters": {{"AccountIds": [{}]}}}}"#, ids(101)),
    )]);
    deploy(params.path(), &[], &["--env", "dev", "--dry-run"]).assert_refused(
        "dev.json: Parameters.AccountIds: 101 accounts, more than the event rules' account \
         filter holds (about 100): put the accounts in an AccountListFile, with \
         Parameters.OrganizationId",
    );
    let params = environments(&[(
        "dev",
        &format!(
            r#"{{"Parameters": {{"AccountIds": [{}], "LogRetentionDays": 8}}}}"#,
            ids(100)
        ),
    )]);
    // 100 pass that check: the next one refuses.
    deploy(params.path(), &[], &["--env", "dev", "--dry-run"])
        .assert_refused("Parameters.LogRetentionDays: '8' is not one of");
}

#[test]
fn an_account_list_file_is_refused_beside_account_ids_or_without_an_organization() {
    for (file, reason) in [
        (
            r#"{"AccountListFile": "accounts.txt",
                "Parameters": {"OrganizationId": "o-a1b2c3d4e5", "AccountIds": "111111111111"}}"#,
            "dev.json: AccountListFile: set together with Parameters.AccountIds",
        ),
        (
            r#"{"AccountListFile": "accounts.txt", "Parameters": {"AccountIds": null}}"#,
            "dev.json: AccountListFile: set together with Parameters.AccountIds",
        ),
        (
            r#"{"AccountListFile": "accounts.txt", "Parameters": {}}"#,
            "dev.json: AccountListFile: needs Parameters.OrganizationId: the event bus policy \
             and the sts:AssumeRole of a large fleet are scoped by organization",
        ),
        (
            r#"{"AccountListFile": "accounts.txt", "Parameters": {"OrganizationId": ""}}"#,
            "dev.json: AccountListFile: needs Parameters.OrganizationId",
        ),
        (
            r#"{"AccountListFile": "", "Parameters": {"OrganizationId": "o-a1b2c3d4e5"}}"#,
            "dev.json: AccountListFile: a path to the accounts file",
        ),
    ] {
        let params = environments(&[("dev", file)]);
        std::fs::write(params.path().join("accounts.txt"), accounts_file(3)).unwrap();
        deploy(params.path(), &[], &["--env", "dev", "--dry-run"]).assert_refused(reason);
    }
}

#[test]
fn a_bad_accounts_file_is_refused_naming_the_file_and_line() {
    for (accounts, reason) in [
        (
            "# the fleet\n111111111111\n11111111111\n",
            "accounts.txt: line 3: '11111111111' is not a 12-digit account ID",
        ),
        (
            "111111111111,222222222222\narn:aws:iam::333333333333:root\n",
            "accounts.txt: line 2: 'arn:aws:iam::333333333333:root' is not a 12-digit account ID",
        ),
        (
            "111111111111\n222222222222 # staging\n\n111111111111\n",
            "accounts.txt: line 4: account 111111111111 repeats line 1",
        ),
        ("# nobody yet\n\n", "accounts.txt: names no account"),
    ] {
        let params = fleet_environment("dev", accounts);
        deploy(params.path(), &[], &["--env", "dev", "--dry-run"]).assert_refused(reason);
    }
    let params = fleet_environment("dev", "111111111111\n");
    std::fs::remove_file(params.path().join("accounts.txt")).unwrap();
    deploy(params.path(), &[], &["--env", "dev", "--dry-run"])
        .assert_refused("dev.json: AccountListFile: accounts.txt is not a file");
}

/// This one builds the Lambda packages, as scripts/test's dry run does and in
/// the same build dir and profile (x86_64, dev), so after that step it only
/// packages and validates. Its environment has a name of its own: the dry run
/// replaces the environment's output directory.
#[test]
fn a_dry_run_with_an_account_list_file_of_1000_accounts_names_its_content_addressed_key() {
    let accounts = accounts_file(1000);
    let params = fleet_environment("fleet-dry-run", &accounts);
    let run = deploy(
        params.path(),
        &[],
        &[
            "--env",
            "fleet-dry-run",
            "--dry-run",
            "--x86",
            "--check-build",
        ],
    );
    assert_eq!(run.status, Some(0), "the dry run passes: {}", run.stderr);
    let digest = Command::new("sha256sum")
        .arg(params.path().join("accounts.txt"))
        .output()
        .expect("sha256sum runs");
    let digest = String::from_utf8(digest.stdout).unwrap()[..16].to_owned();
    let object =
        format!("s3://dry-run-code-bucket/drs-cache/fleet-dry-run/accounts/{digest}-accounts.txt");
    assert!(
        run.stderr.contains(&format!(
            "accounts: 1000 in {} (AccountListFile), for {object}",
            params.path().join("accounts.txt").display()
        )),
        "the accounts and their key are named before the build: {}",
        run.stderr
    );
    assert!(
        run.stdout.contains(&format!(
            "  accounts          1000 from {}, as AccountListObject={object}\n",
            params.path().join("accounts.txt").display()
        )),
        "the dry run names the accounts and their object: {}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains(&format!("  would upload      {object}\n")),
        "the dry run names the accounts object: {}",
        run.stdout
    );
    let parameters_file = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("  parameters        "))
        .map(Path::new)
        .expect("the dry run names its parameters file");
    let parameters = std::fs::read_to_string(parameters_file).unwrap();
    assert!(
        parameters
            .lines()
            .any(|l| l == format!("AccountListObject={object}")),
        "the accounts object is passed to the stack: {parameters}"
    );
    assert!(
        !parameters.contains("AccountIds="),
        "and no AccountIds: {parameters}"
    );
    let packaged = parameters_file.with_file_name("accounts.txt");
    assert_eq!(
        std::fs::read_to_string(&packaged).unwrap(),
        accounts,
        "what would be uploaded is the accounts file as it is"
    );
}
