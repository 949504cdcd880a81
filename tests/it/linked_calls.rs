//! Each function's role grants exactly the AWS calls its binary can make. What a
//! binary can call is read off the binary itself: the linker keeps only the code
//! some path of `main` reaches (each function holds its ports as the narrow
//! traits it uses, so not even a vtable brings in more), and every SDK
//! operation it kept leaves its `orchestrate` symbol, which `nm` lists.

use std::{collections::BTreeSet, process::Command};

use crate::support::cfn::{Stack, granted};
use serde_norway::Value as Yaml;

const TEMPLATE: &str = include_str!("../../cfn/drs-cache.yaml");
const KEY: &str = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

/// Each Lambda binary, as the integration tests' build made it, and its role.
const FUNCTIONS: [(&str, &str, &str); 3] = [
    ("reader", env!("CARGO_BIN_EXE_reader"), "ReaderRole"),
    ("planner", env!("CARGO_BIN_EXE_planner"), "PlannerRole"),
    (
        "refresher",
        env!("CARGO_BIN_EXE_refresher"),
        "RefresherRole",
    ),
];

/// Operations the SDK links that no function makes in Lambda, each with the
/// symbol of what links it (asserted present) and why it is never called.
const NEVER_CALLED: [(&str, &str, &str); 3] = [
    (
        "sts:AssumeRoleWithWebIdentity",
        "aws_config::web_identity_token::WebIdentityTokenCredentialsProvider",
        "the default credential chain's web identity provider (EKS, CI); a Lambda \
         function's credentials come from its environment, earlier in the chain",
    ),
    (
        "sts:AssumeRole",
        "aws_config::profile::credentials::ProfileFileCredentialsProvider",
        "the default credential chain's role profiles in ~/.aws/config, which Lambda \
         has none of; a function that assumes roles itself links its own \
         AssumeRoleProvider (OWN_ASSUME_ROLE)",
    ),
    (
        "s3:CreateSession",
        "aws_sdk_s3::s3_express",
        "S3 Express One Zone's session auth, for directory buckets only; the plan \
         bucket is a general purpose bucket",
    ),
];

/// The code's own cross-account role assumption (`adapters::aws::clients`).
const OWN_ASSUME_ROLE: &str = "aws_config::sts::assume_role::AssumeRoleProviderBuilder::build";

/// The demangled symbol names of `binary`.
fn symbols(binary: &str) -> String {
    let out = Command::new("nm")
        .args(["--demangle", "--defined-only", binary])
        .output()
        .unwrap_or_else(|e| panic!("nm (binutils) is needed to read {binary}: {e}"));
    assert!(
        out.status.success(),
        "nm {binary}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("nm prints UTF-8")
}

/// `aws_sdk_dynamodb::operation::get_item::GetItem::orchestrate` →
/// `dynamodb:GetItem`: the IAM action of each SDK operation `symbols` holds.
fn linked_operations(symbols: &str) -> BTreeSet<String> {
    let mut actions = BTreeSet::new();
    for line in symbols.lines() {
        let Some(at) = line.find("aws_sdk_") else {
            continue;
        };
        let path: Vec<&str> = line[at + "aws_sdk_".len()..]
            .split(|c: char| c.is_whitespace() || c == '{' || c == '<')
            .next()
            .unwrap_or_default()
            .split("::")
            .collect();
        if let [service, "operation", _, operation, "orchestrate", ..] = path[..] {
            // Step Functions' actions are `states:`, EventBridge's `events:`.
            let prefix = match service {
                "sfn" => "states",
                "eventbridge" => "events",
                other => other,
            };
            actions.insert(format!("{prefix}:{operation}"));
        }
    }
    actions
}

/// What `binary` can call in AWS: its linked operations but those the SDK links
/// for paths a Lambda function never takes.
fn calls(binary: &str) -> BTreeSet<String> {
    let symbols = symbols(binary);
    let mut calls = linked_operations(&symbols);
    for (action, linked_by, why) in NEVER_CALLED {
        if calls.contains(action) {
            assert!(
                symbols.contains(linked_by),
                "{binary}: {action} is linked, but not by {linked_by} ({why})"
            );
            calls.remove(action);
        }
    }
    if symbols.contains(OWN_ASSUME_ROLE) {
        calls.insert("sts:AssumeRole".to_owned());
    }
    calls
}

#[test]
fn nm_finds_the_sdk_operations_a_binary_links() {
    // The reader is the smallest: it reads the table and asks for refreshes.
    let reader = calls(FUNCTIONS[0].1);
    assert!(reader.contains("dynamodb:GetItem"), "{reader:?}");
    assert!(reader.contains("states:StartExecution"), "{reader:?}");
}

#[test]
fn each_function_role_grants_exactly_the_calls_its_binary_can_make() {
    let template: Yaml = serde_norway::from_str(TEMPLATE).expect("cfn/drs-cache.yaml is YAML");
    // With a customer-managed key, so that its statements are there too, and
    // with an account list object, so that its read is there too.
    let stack = Stack::new(&template, "111122223333", "eu-west-1")
        .with("KmsKeyArn", KEY)
        .with("AccountListObject", "s3://code-bucket/accounts.txt")
        .with("OrganizationId", "o-a1b2c3d4e5");
    for (function, binary, role) in FUNCTIONS {
        let mut allowed = granted(&stack.properties(role));
        // KMS is called by DynamoDB and S3 on the function's behalf, for the
        // customer-managed key only.
        allowed.retain(|action, resources| {
            let kms = action.starts_with("kms:");
            if kms {
                assert_eq!(
                    resources,
                    &BTreeSet::from([KEY.to_owned()]),
                    "{role}: {action}"
                );
            }
            !kms
        });
        let allowed: BTreeSet<String> = allowed.into_keys().collect();
        let calls = calls(binary);
        assert_eq!(
            allowed,
            calls,
            "{role} grants {:?} that {function} never calls, and misses {:?} that it can call",
            allowed.difference(&calls).collect::<Vec<_>>(),
            calls.difference(&allowed).collect::<Vec<_>>(),
        );
    }
}
