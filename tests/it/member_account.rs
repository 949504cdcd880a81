//! Member accounts and their events. `cfn/target-account-role.yaml`, deployed
//! with StackSets to every account the main stack refreshes, holds the role the
//! refresher assumes there, allowing exactly the calls the refresher makes
//! (derived from `src/adapters/aws/`), and rules forwarding that account's
//! change events to the deployment account's default bus, matching exactly what
//! the main stack's rules act on. The main stack (`cfn/drs-cache.yaml`) lets
//! the accounts it refreshes put events on that bus, and its rules start a run
//! for their events only: a forwarded event keeps its original account.
//!
//! The templates are evaluated for one stack at a time (`support::cfn`), and
//! checked on moto where moto can: its CloudFormation creates the member stack
//! (all but `AWS::SQS::QueuePolicy`, which it skips), and its EventBridge
//! routes events by the rules' real patterns. moto puts an event forwarded to
//! another account's bus there under that account and region, without its
//! resources, whereas EventBridge keeps the original account and region; so the
//! main stack's account filter is checked on buses of the member accounts
//! themselves, where moto stamps an event with the account that puts it, as
//! EventBridge stamps a forwarded event with the account it comes from.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use crate::support::{
    cfn::{Stack, granted, strings},
    events, moto, workflow,
};
use drs_cache::{
    config::DEFAULT_ROLE_NAME,
    domain::{AccountId, CacheKey, DataType, Region},
    plan::trigger::{
        self, DRS_DETAIL_TYPES, INSTANCE_PROFILE_EVENTS, SECURITY_GROUP_EVENTS, SUBNET_EVENTS,
        Trigger,
    },
    workflow::Fetch,
};
use serde_json::{Value, json};
use serde_norway::Value as Yaml;

const MEMBER_TEMPLATE: &str = include_str!("../../cfn/target-account-role.yaml");
const MAIN_TEMPLATE: &str = include_str!("../../cfn/drs-cache.yaml");

/// The deployment account and region of the template-only tests.
const DEPLOYMENT: &str = "111122223333";
const DEPLOYMENT_REGION: &str = "us-east-1";
/// Member accounts of the template-only tests.
const MEMBER: &str = "444455556666";
const OTHER_MEMBER: &str = "777788889999";
const REFRESHER_ROLE: &str = "arn:aws:iam::111122223333:role/drs-cache-RefresherRole-1A2B3C4D5E6F";
const CLOUDTRAIL: &str = "AWS API Call via CloudTrail";

/// Main stack rule to the member stack rule forwarding its events.
const FORWARDED_BY: [(&str, &str); 3] = [
    ("DrsEventRule", "ForwardDrsEventsRule"),
    ("Ec2ChangeRule", "ForwardEc2ChangesRule"),
    (
        "IamInstanceProfileChangeRule",
        "ForwardIamInstanceProfileChangesRule",
    ),
];
/// What the member stack makes to forward events.
const FORWARDING: [&str; 6] = [
    "ForwardEventsRole",
    "ForwardedEventsDeadLetterQueue",
    "ForwardedEventsDeadLetterQueuePolicy",
    "ForwardDrsEventsRule",
    "ForwardEc2ChangesRule",
    "ForwardIamInstanceProfileChangesRule",
];
/// Resource types of the member template that moto's CloudFormation skips.
const NOT_IN_MOTO: [&str; 1] = ["AWS::SQS::QueuePolicy"];

fn member_template() -> Yaml {
    serde_norway::from_str(MEMBER_TEMPLATE).expect("cfn/target-account-role.yaml is YAML")
}

fn main_template() -> Yaml {
    serde_norway::from_str(MAIN_TEMPLATE).expect("cfn/drs-cache.yaml is YAML")
}

fn bus_arn(account: &str, region: &str) -> String {
    format!("arn:aws:events:{region}:{account}:event-bus/default")
}

/// A member stack in `account` and `region` forwarding to the deployment bus of
/// the template-only tests.
fn member_stack<'a>(template: &'a Yaml, account: &str, region: &str) -> Stack<'a> {
    Stack::new(template, account, region)
        .with("RefresherRoleArn", REFRESHER_ROLE)
        .with(
            "DeploymentEventBusArn",
            &bus_arn(DEPLOYMENT, DEPLOYMENT_REGION),
        )
}

fn set<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> BTreeSet<String> {
    items.into_iter().map(|s| s.as_ref().to_owned()).collect()
}

fn parameter<'t>(template: &'t Yaml, name: &str) -> &'t Yaml {
    template["Parameters"]
        .get(name)
        .unwrap_or_else(|| panic!("no parameter {name}"))
}

fn allowed_pattern(template: &Yaml, name: &str) -> regex::Regex {
    let pattern = parameter(template, name)["AllowedPattern"]
        .as_str()
        .unwrap_or_else(|| panic!("{name} has an AllowedPattern"));
    assert!(
        pattern.starts_with('^') && pattern.ends_with('$'),
        "{name}: the pattern must hold for the whole value"
    );
    regex::Regex::new(pattern).unwrap_or_else(|e| panic!("{name}: {e}"))
}

// --- the calls the refresher makes in an account ------------------------------------

fn source_dir(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// `describe_source_servers` → `DescribeSourceServers`.
fn pascal_case(snake: &str) -> String {
    snake
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The IAM actions of the SDK operations the refresher calls: every
/// `.client.operation(` in `src/adapters/aws/`, outside its unit tests, as
/// `service:Operation`, the service being that of the connection the client
/// comes from (`self.drs(..)`, `self.ec2(..)` or `self.iam(..)`). Each
/// operation is also the `OPERATION` the adapter names in its errors.
fn refresher_actions() -> BTreeSet<String> {
    let mut actions = BTreeSet::new();
    for file in rust_files(&source_dir("src/adapters/aws")) {
        let text = std::fs::read_to_string(&file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap();
        let mut from = 0;
        while let Some(at) = code[from..].find(".client") {
            let start = from + at;
            from = start + ".client".len();
            let Some(call) = code[from..].trim_start().strip_prefix('.') else {
                continue;
            };
            let operation: String = call
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            if !call[operation.len()..].starts_with('(') {
                continue;
            }
            let service = ["drs", "ec2", "iam"]
                .into_iter()
                .filter_map(|s| code[..start].rfind(&format!("self.{s}(")).map(|i| (i, s)))
                .max()
                .map(|(_, s)| s)
                .unwrap_or_else(|| panic!("{}: whose client calls {operation}?", file.display()));
            let name = pascal_case(&operation);
            assert!(
                code.contains(&format!("const OPERATION: &str = \"{name}\";")),
                "{}: {operation} is not the OPERATION {name} the adapter names",
                file.display()
            );
            actions.insert(format!("{service}:{name}"));
        }
    }
    actions
}

#[test]
fn only_the_aws_adapters_call_drs_ec2_and_iam() {
    // What `refresher_actions` scans is every place that can call them.
    for file in rust_files(&source_dir("src")) {
        if file.starts_with(source_dir("src/adapters/aws")) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for sdk in ["aws_sdk_drs", "aws_sdk_ec2", "aws_sdk_iam"] {
            assert!(
                !text.contains(sdk),
                "{} uses {sdk} outside src/adapters/aws",
                file.display()
            );
        }
    }
    let actions = refresher_actions();
    let services: BTreeSet<&str> = actions
        .iter()
        .map(|a| a.split_once(':').unwrap().0)
        .collect();
    assert_eq!(
        services,
        BTreeSet::from(["drs", "ec2", "iam"]),
        "{actions:?}"
    );
}

/// The operations whose fetches run in `account`, for a refresher whose own
/// account is `home`: those of every data type kept per account, while data
/// that is the same in every account (instance types) is fetched with the
/// refresher's own account (`workflow::Fetch`).
fn operations_run_in(account: &str, home: &str) -> BTreeSet<String> {
    let (account, home) = (
        AccountId::parse(account).unwrap(),
        AccountId::parse(home).unwrap(),
    );
    let region = Region::parse("eu-west-1").unwrap();
    DataType::ALL
        .iter()
        .filter_map(|&data_type| {
            Fetch::of(&CacheKey::new(data_type, region.clone(), account), home)
        })
        .filter(|fetch| fetch.account() == account)
        .map(|fetch| fetch.operation().to_owned())
        .collect()
}

/// The actions of the refresher's calls in an account other than its own.
fn member_account_actions() -> BTreeSet<String> {
    let in_member = operations_run_in(MEMBER, DEPLOYMENT);
    let actions = refresher_actions();
    // Every operation a fetch names is one the adapters call, and back.
    let operations = |actions: &BTreeSet<String>| {
        actions
            .iter()
            .map(|a| a.split_once(':').unwrap().1.to_owned())
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(
        operations(&actions),
        operations_run_in(DEPLOYMENT, DEPLOYMENT)
    );
    actions
        .into_iter()
        .filter(|a| in_member.contains(a.split_once(':').unwrap().1))
        .collect()
}

#[test]
fn the_member_role_allows_exactly_the_calls_the_refresher_makes_there() {
    let actions = member_account_actions();
    // Instance types are read in the deployment account only.
    assert!(
        !actions.contains("ec2:DescribeInstanceTypes"),
        "{actions:?}"
    );
    let member = member_template();
    let role = member_stack(&member, MEMBER, "us-east-1").properties("ReaderRole");
    let allowed = granted(&role);
    assert_eq!(set(allowed.keys()), actions);
    // None of them supports resource-level permissions (the template says so
    // beside each statement).
    for (action, resources) in &allowed {
        assert_eq!(resources, &set(["*"]), "{action}");
    }

    // The refresher's own role reads its own account with every call.
    let actions = refresher_actions();
    let main = main_template();
    let refresher = Stack::new(&main, DEPLOYMENT, DEPLOYMENT_REGION).properties("RefresherRole");
    let read_upstream = refresher["Policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["PolicyName"] == "ReadUpstream")
        .expect("the ReadUpstream policy");
    let upstream = granted(&json!({"Policies": [read_upstream]}));
    assert_eq!(set(upstream.keys()), actions);
}

#[test]
fn the_member_role_is_the_one_the_refresher_assumes_and_trusts_its_role_only() {
    let member = member_template();
    let main = main_template();
    // Named as the refresher names it by default, under the same rules as the
    // main stack's parameters.
    assert_eq!(parameter(&member, "RoleName")["Default"], DEFAULT_ROLE_NAME);
    assert_eq!(
        parameter(&main, "CrossAccountRoleName")["Default"],
        DEFAULT_ROLE_NAME
    );
    for (ours, theirs) in [
        ("RoleName", "CrossAccountRoleName"),
        ("ExternalId", "CrossAccountExternalId"),
        ("PreviousExternalId", "CrossAccountExternalId"),
    ] {
        assert_eq!(
            parameter(&member, ours)["AllowedPattern"],
            parameter(&main, theirs)["AllowedPattern"],
            "{ours}"
        );
    }
    let role = member_stack(&member, MEMBER, "us-east-1")
        .with("RoleName", "dr-metadata-reader")
        .properties("ReaderRole");
    assert_eq!(role["RoleName"], "dr-metadata-reader");

    // The refresher's role is required and must be a role's ARN.
    let refresher = parameter(&member, "RefresherRoleArn");
    assert!(
        refresher.get("Default").is_none(),
        "RefresherRoleArn is required"
    );
    let pattern = allowed_pattern(&member, "RefresherRoleArn");
    for arn in [
        REFRESHER_ROLE,
        "arn:aws:iam::111122223333:role/service-role/drs-cache-refresher",
        "arn:aws-us-gov:iam::111122223333:role/drs-cache-RefresherRole-X",
    ] {
        assert!(pattern.is_match(arn), "{arn}");
    }
    for not_a_role in [
        "",
        "*",
        "111122223333",
        "arn:aws:iam::111122223333:root",
        "arn:aws:iam::111122223333:user/alice",
        "arn:aws:iam::*:role/drs-cache-RefresherRole-X",
        "arn:aws:sts::111122223333:assumed-role/drs-cache-RefresherRole-X/session",
        "arn:aws:iam::111122223333:role/",
    ] {
        assert!(!pattern.is_match(not_a_role), "{not_a_role}");
    }

    // One statement: the refresher's role may assume it, with the ExternalId
    // when one is set.
    let trust = |stack: Stack| {
        let document = stack.properties("ReaderRole")["AssumeRolePolicyDocument"].clone();
        let statements = document["Statement"].as_array().unwrap().clone();
        assert_eq!(statements.len(), 1, "{document}");
        let statement = statements[0].clone();
        assert_eq!(statement["Effect"], "Allow");
        assert_eq!(statement["Principal"], json!({"AWS": REFRESHER_ROLE}));
        assert_eq!(statement["Action"], "sts:AssumeRole");
        statement.get("Condition").cloned()
    };
    assert_eq!(trust(member_stack(&member, MEMBER, "us-east-1")), None);
    assert_eq!(
        trust(member_stack(&member, MEMBER, "us-east-1").with("ExternalId", "drs-cache-prod")),
        Some(json!({"StringEquals": {"sts:ExternalId": "drs-cache-prod"}}))
    );
    // During a rotation, the value being replaced too.
    assert_eq!(
        trust(
            member_stack(&member, MEMBER, "us-east-1")
                .with("ExternalId", "drs-cache-2025")
                .with("PreviousExternalId", "drs-cache-2024")
        ),
        Some(json!({"StringEquals": {"sts:ExternalId": ["drs-cache-2025", "drs-cache-2024"]}}))
    );
    // A previous value alone requires nothing.
    assert_eq!(
        trust(member_stack(&member, MEMBER, "us-east-1").with("PreviousExternalId", "old")),
        None
    );
}

#[test]
fn a_stack_set_over_several_regions_creates_the_role_once() {
    let member = member_template();
    let regions = ["us-east-1", "eu-west-1", "ap-southeast-2"];
    for role_region in [None, Some("eu-west-1")] {
        let mut made_in = Vec::new();
        for region in regions {
            let mut stack = member_stack(&member, MEMBER, region);
            if let Some(role_region) = role_region {
                stack = stack.with("RoleRegion", role_region);
            }
            let outputs = stack.outputs();
            assert_eq!(
                stack.creates("ReaderRole"),
                outputs.contains_key("RoleArn"),
                "{region}"
            );
            if stack.creates("ReaderRole") {
                assert_eq!(outputs["RoleArn"], "Arn-of-ReaderRole");
                made_in.push(region);
            }
        }
        assert_eq!(made_in, [role_region.unwrap_or("us-east-1")]);
    }
}

// --- forwarding -----------------------------------------------------------------------

/// A main stack in the deployment account refreshing `accounts`.
fn main_stack<'a>(template: &'a Yaml, accounts: &str) -> Stack<'a> {
    Stack::new(template, DEPLOYMENT, DEPLOYMENT_REGION).with("AccountIds", accounts)
}

fn event_pattern(stack: &Stack, rule: &str) -> Value {
    stack.properties(rule)["EventPattern"].clone()
}

#[test]
fn the_forwarding_rules_take_exactly_what_the_main_rules_act_on() {
    let main = main_template();
    let main = main_stack(&main, &format!("{MEMBER},{OTHER_MEMBER}"));
    let member = member_template();
    let member = member_stack(&member, MEMBER, "us-east-1");
    for (theirs, ours) in FORWARDED_BY {
        let mut expected = event_pattern(&main, theirs);
        // The member's bus carries the member's events only, of its own
        // region (a stack instance in each region forwards that region's).
        let filters = expected.as_object_mut().unwrap();
        filters
            .remove("account")
            .unwrap_or_else(|| panic!("{theirs} has an account filter"));
        filters.remove("region");
        assert_eq!(event_pattern(&member, ours), expected, "{ours}");
    }
    // And those are the events the planner acts on.
    let drs = event_pattern(&member, "ForwardDrsEventsRule");
    assert_eq!(strings(&drs["source"]), set(["aws.drs"]));
    assert_eq!(strings(&drs["detail-type"]), set(DRS_DETAIL_TYPES));
    let ec2 = event_pattern(&member, "ForwardEc2ChangesRule");
    assert_eq!(strings(&ec2["source"]), set(["aws.ec2"]));
    assert_eq!(strings(&ec2["detail-type"]), set([CLOUDTRAIL]));
    assert_eq!(
        strings(&ec2["detail"]["eventName"]),
        set(SUBNET_EVENTS.into_iter().chain(SECURITY_GROUP_EVENTS))
    );
    let iam = event_pattern(&member, "ForwardIamInstanceProfileChangesRule");
    assert_eq!(strings(&iam["source"]), set(["aws.iam"]));
    assert_eq!(strings(&iam["detail-type"]), set([CLOUDTRAIL]));
    assert_eq!(
        strings(&iam["detail"]["eventName"]),
        set(INSTANCE_PROFILE_EVENTS)
    );
}

#[test]
fn each_forwarding_rule_puts_the_whole_event_on_the_deployment_bus_retrying_into_a_queue() {
    let member = member_template();
    let stack = member_stack(&member, MEMBER, "us-east-1");
    let deployment_bus = bus_arn(DEPLOYMENT, DEPLOYMENT_REGION);
    let rules = stack.resources_of("AWS::Events::Rule");
    assert_eq!(set(rules.keys()), set(FORWARDED_BY.map(|(_, ours)| ours)));
    for (id, rule) in &rules {
        assert_eq!(rule["State"], "ENABLED", "{id}");
        // On this account's default bus, where AWS services put their events.
        assert!(rule.get("EventBusName").is_none(), "{id}");
        let targets = rule["Targets"].as_array().unwrap();
        assert_eq!(targets.len(), 1, "{id}");
        let target = &targets[0];
        assert_eq!(target["Arn"], deployment_bus.as_str(), "{id}");
        assert_eq!(target["RoleArn"], "Arn-of-ForwardEventsRole", "{id}");
        assert_eq!(
            target["DeadLetterConfig"],
            json!({"Arn": "Arn-of-ForwardedEventsDeadLetterQueue"}),
            "{id}"
        );
        let retry = &target["RetryPolicy"];
        assert!(retry["MaximumRetryAttempts"].as_u64() > Some(0), "{id}");
        assert!(
            retry["MaximumEventAgeInSeconds"].as_u64() >= Some(60),
            "{id}"
        );
        // Forwarded as it is: the main rules and the planner read the event.
        for field in ["Input", "InputPath", "InputTransformer"] {
            assert!(target.get(field).is_none(), "{id}: {field}");
        }
    }

    // EventBridge, for this account's rules only, may put events on that bus
    // and nothing else.
    let role = stack.properties("ForwardEventsRole");
    assert_eq!(
        role["AssumeRolePolicyDocument"]["Statement"],
        json!([{
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": MEMBER}},
        }])
    );
    assert_eq!(
        granted(&role),
        BTreeMap::from([("events:PutEvents".to_owned(), set([&deployment_bus]))])
    );

    // What could not be forwarded waits, encrypted, in a queue only the
    // forwarding rules may send to.
    let queue = stack.properties("ForwardedEventsDeadLetterQueue");
    assert_eq!(queue["SqsManagedSseEnabled"], true);
    for region in ["us-east-1", "eu-west-1"] {
        let stack = member_stack(&member, MEMBER, region);
        let policy = stack.properties("ForwardedEventsDeadLetterQueuePolicy");
        assert_eq!(
            policy["Queues"],
            json!(["physical-id-of-ForwardedEventsDeadLetterQueue"])
        );
        let rules: Vec<String> = stack
            .resources_of("AWS::Events::Rule")
            .into_keys()
            .map(|id| format!("Arn-of-{id}"))
            .collect();
        assert_eq!(
            policy["PolicyDocument"]["Statement"],
            json!([{
                "Sid": "ForwardingRulesDeadLetters",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": "Arn-of-ForwardedEventsDeadLetterQueue",
                "Condition": {"ArnEquals": {"aws:SourceArn": set(rules)}},
            }]),
            "{region}"
        );
    }
}

#[test]
fn iam_events_are_forwarded_from_us_east_1_only_and_drs_and_ec2_events_from_every_region() {
    let member = member_template();
    for region in ["us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2"] {
        let stack = member_stack(&member, MEMBER, region);
        let rules = set(stack.resources_of("AWS::Events::Rule").into_keys());
        let mut expected = set(["ForwardDrsEventsRule", "ForwardEc2ChangesRule"]);
        if region == "us-east-1" {
            expected.insert("ForwardIamInstanceProfileChangesRule".into());
        }
        assert_eq!(rules, expected, "{region}");
    }
}

#[test]
fn nothing_is_forwarded_without_a_deployment_bus_nor_onto_the_bus_the_events_are_on() {
    let member = member_template();
    let forwarding = |stack: &Stack| {
        FORWARDING
            .into_iter()
            .filter(|id| stack.creates(id))
            .collect::<Vec<_>>()
    };
    let without = Stack::new(&member, MEMBER, "us-east-1").with("RefresherRoleArn", REFRESHER_ROLE);
    assert_eq!(forwarding(&without), Vec::<&str>::new());
    assert!(without.creates("ReaderRole"));
    // The deployment account in the main stack's region already has the
    // events on that bus; in its other regions it forwards them like any
    // member.
    let home = member_stack(&member, DEPLOYMENT, DEPLOYMENT_REGION);
    assert_eq!(forwarding(&home), Vec::<&str>::new());
    let elsewhere = member_stack(&member, DEPLOYMENT, "eu-west-1");
    assert_eq!(
        forwarding(&elsewhere),
        FORWARDING
            .into_iter()
            .filter(|id| *id != "ForwardIamInstanceProfileChangesRule")
            .collect::<Vec<_>>()
    );

    // The bus to name is the one the main stack outputs.
    let main = main_template();
    let outputs = Stack::new(&main, DEPLOYMENT, DEPLOYMENT_REGION).outputs();
    let bus = outputs["EventBusArn"].as_str().unwrap();
    assert_eq!(bus, bus_arn(DEPLOYMENT, DEPLOYMENT_REGION));
    let pattern = allowed_pattern(&member, "DeploymentEventBusArn");
    for arn in [
        "",
        bus,
        "arn:aws-cn:events:cn-north-1:111122223333:event-bus/default",
    ] {
        assert!(pattern.is_match(arn), "{arn}");
    }
    for not_the_bus in [
        "default",
        "arn:aws:events:us-east-1:111122223333:event-bus/custom",
        "arn:aws:events:us-east-1:111122223333:rule/default",
        "arn:aws:sqs:us-east-1:111122223333:default",
        "arn:aws:events:us-east-1:*:event-bus/default",
    ] {
        assert!(!pattern.is_match(not_the_bus), "{not_the_bus}");
    }
}

// --- the deployment account's side --------------------------------------------------------

/// The accounts a main stack's planner refreshes (its `ACCOUNT_IDS`).
fn planner_accounts(template: &Yaml, stack: &Stack) -> Vec<String> {
    let variables = &template["Resources"]["PlannerFunction"]["Properties"]["Environment"];
    stack.value(variables)["Variables"]["ACCOUNT_IDS"]
        .as_str()
        .unwrap()
        .split(',')
        .map(str::to_owned)
        .collect()
}

/// Parameter values of a main stack, and the accounts it refreshes.
type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str]);

#[test]
fn the_main_rules_take_the_events_of_the_accounts_refreshed_only() {
    let main = main_template();
    let cases: [Case; 4] = [
        // The deployment account alone.
        (&[], &[DEPLOYMENT]),
        (&[("DeploymentAccountId", MEMBER)], &[MEMBER]),
        (&[("AccountIds", MEMBER)], &[MEMBER]),
        (
            &[(
                "AccountIds",
                &format!("{DEPLOYMENT},{MEMBER},{OTHER_MEMBER}"),
            )],
            &[DEPLOYMENT, MEMBER, OTHER_MEMBER],
        ),
    ];
    for (parameters, expected) in cases {
        let stack = parameters.iter().fold(
            Stack::new(&main, DEPLOYMENT, DEPLOYMENT_REGION),
            |s, (k, v)| s.with(k, v),
        );
        assert_eq!(planner_accounts(&main, &stack), expected, "{parameters:?}");
        for (rule, _) in FORWARDED_BY {
            assert_eq!(
                event_pattern(&stack, rule)["account"],
                json!(expected),
                "{rule} with {parameters:?}"
            );
        }
    }
}

#[test]
fn the_rules_patterns_stay_within_eventbridge_default_size_for_a_hundred_accounts() {
    // EventBridge's default quota on an event pattern is 2,048 characters
    // (docs/member-accounts.md says how many accounts fit).
    let main = main_template();
    let accounts: Vec<String> = (0..100)
        .map(|i| format!("{:012}", 100_000_000_000u64 + i))
        .collect();
    let stack = main_stack(&main, &accounts.join(","));
    for (rule, _) in FORWARDED_BY {
        let pattern = event_pattern(&stack, rule).to_string();
        assert!(
            pattern.len() <= 2048,
            "{rule}: {} characters",
            pattern.len()
        );
    }
}

#[test]
fn the_bus_accepts_events_from_the_accounts_refreshed_or_the_organization_and_nobody_else() {
    let main = main_template();
    let accounts = format!("{MEMBER},{OTHER_MEMBER}");
    let policy = |stack: &Stack| {
        let policy = stack.properties("ForwardedEventsBusPolicy");
        // The bus the rules watch (they name none) and member stacks forward to.
        assert_eq!(policy["EventBusName"], "default");
        for (rule, _) in FORWARDED_BY {
            assert!(
                stack.properties(rule).get("EventBusName").is_none(),
                "{rule}"
            );
        }
        let statement = policy["Statement"].clone();
        assert_eq!(statement["Effect"], "Allow");
        assert_eq!(statement["Action"], "events:PutEvents");
        assert_eq!(statement["Resource"], stack.outputs()["EventBusArn"]);
        (
            statement["Principal"].clone(),
            statement.get("Condition").cloned(),
        )
    };
    assert_eq!(
        policy(&main_stack(&main, &accounts)),
        (json!({"AWS": [MEMBER, OTHER_MEMBER]}), None)
    );
    assert_eq!(
        policy(&Stack::new(&main, DEPLOYMENT, DEPLOYMENT_REGION)),
        (json!({"AWS": [DEPLOYMENT]}), None)
    );
    assert_eq!(
        policy(&main_stack(&main, &accounts).with("OrganizationId", "o-a1b2c3d4e5")),
        (
            json!("*"),
            Some(json!({"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}}))
        )
    );
    let pattern = allowed_pattern(&main, "OrganizationId");
    for id in ["", "o-a1b2c3d4e5", "o-abcdefghijklmnopqrstuvwxyz012345"] {
        assert!(pattern.is_match(id), "{id}");
    }
    for not_an_organization in ["r-a1b2", "ou-a1b2-c3d4e5f6", "o-", "o-ABCDEFGHIJ", "*"] {
        assert!(
            !pattern.is_match(not_an_organization),
            "{not_an_organization}"
        );
    }
}

// --- several deployments over a global table ------------------------------------------

/// The refresher roles of two more main stacks, in other regions.
const OTHER_REFRESHER_ROLES: [&str; 2] = [
    "arn:aws:iam::111122223333:role/drs-cache-RefresherRole-7G8H9I0J1K2L",
    "arn:aws:iam::111122223333:role/drs-cache-RefresherRole-3M4N5O6P7Q8R",
];

#[test]
fn with_several_deployments_the_member_role_trusts_every_refresher() {
    let member = member_template();
    let principal = |stack: Stack| {
        stack.properties("ReaderRole")["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
            .clone()
    };
    // One deployment: its refresher alone.
    assert_eq!(
        principal(member_stack(&member, MEMBER, "us-east-1")),
        json!({"AWS": REFRESHER_ROLE})
    );
    // Several: each of them may be the owner of a region, and so read there.
    let others = OTHER_REFRESHER_ROLES.join(",");
    assert_eq!(
        principal(
            member_stack(&member, MEMBER, "us-east-1").with("OtherRefresherRoleArns", &others)
        ),
        json!({"AWS": [REFRESHER_ROLE, OTHER_REFRESHER_ROLES[0], OTHER_REFRESHER_ROLES[1]]})
    );
    // As many as a global table has replicas besides the one that made it.
    let pattern = allowed_pattern(&member, "OtherRefresherRoleArns");
    let role = |n: usize| format!("arn:aws:iam::111122223333:role/drs-cache-RefresherRole-{n}");
    for n in 0..=4 {
        let list = (0..n).map(role).collect::<Vec<_>>().join(",");
        assert!(pattern.is_match(&list), "{list:?}");
    }
    for refused in [
        (0..5).map(role).collect::<Vec<_>>().join(","),
        format!("{},", role(0)),
        format!("{}, {}", role(0), role(1)),
        "arn:aws:iam::111122223333:user/alice".to_owned(),
        "arn:aws:iam::*:role/drs-cache-RefresherRole-X".to_owned(),
    ] {
        assert!(!pattern.is_match(&refused), "{refused:?}");
    }
}

/// Main stacks in us-east-1 and us-west-2 over a global table, eu-west-1
/// assigned to us-east-1's (RegionOwners `eu-west-1=us-east-1`), then us-east-1
/// failed over to us-west-2's (`...,us-east-1=us-west-2`): the stack set's
/// per-region overrides of DeploymentEventBusArn name each region's owner.
#[test]
fn with_several_deployments_each_region_forwards_to_the_bus_of_its_owner() {
    let member = member_template();
    let main = main_template();
    let in_region = |account: &str, region: &str, owner: &str| {
        Stack::new(&member, account, region)
            .with("RefresherRoleArn", REFRESHER_ROLE)
            .with("DeploymentEventBusArn", &bus_arn(DEPLOYMENT, owner))
    };
    for owners in [
        [
            ("us-east-1", "us-east-1"),
            ("us-west-2", "us-west-2"),
            ("eu-west-1", "us-east-1"),
        ],
        [
            ("us-east-1", "us-west-2"),
            ("us-west-2", "us-west-2"),
            ("eu-west-1", "us-east-1"),
        ],
    ] {
        for (region, owner) in owners {
            let stack = in_region(MEMBER, region, owner);
            let rules = stack.resources_of("AWS::Events::Rule");
            assert!(!rules.is_empty(), "{region}");
            for (id, rule) in &rules {
                assert_eq!(
                    rule["Targets"][0]["Arn"],
                    bus_arn(DEPLOYMENT, owner).as_str(),
                    "{region}: {id}"
                );
            }
            // IAM's events, from us-east-1 only, go to us-east-1's owner.
            assert_eq!(
                rules.contains_key("ForwardIamInstanceProfileChangesRule"),
                region == "us-east-1",
                "{region}"
            );
            let put = granted(&stack.properties("ForwardEventsRole"));
            assert_eq!(put["events:PutEvents"], set([bus_arn(DEPLOYMENT, owner)]));
            // The deployment account's own events are on its owner's bus
            // already where the owner runs in that region.
            let own = in_region(DEPLOYMENT, region, owner);
            assert_eq!(
                own.creates("ForwardEventsRole"),
                region != owner,
                "{region}"
            );
        }
    }
    // Each main stack's bus takes the members' events, whichever table the
    // stack has.
    for (region, table) in [
        ("us-east-1", ("ReplicaRegions", "us-west-2,eu-west-1")),
        ("us-west-2", ("GlobalTableRegion", "us-east-1")),
    ] {
        let stack = Stack::new(&main, DEPLOYMENT, region)
            .with("AccountIds", MEMBER)
            .with(table.0, table.1)
            .with("RegionOwners", "eu-west-1=us-east-1");
        let statement = &stack.properties("ForwardedEventsBusPolicy")["Statement"];
        assert_eq!(statement["Principal"], json!({"AWS": [MEMBER]}), "{region}");
        assert_eq!(
            stack.outputs()["EventBusArn"],
            bus_arn(DEPLOYMENT, region).as_str()
        );
    }
}

// --- moto -------------------------------------------------------------------------------

/// The main stack rule a sample event is for, from its name; `None` for
/// `other-*` (tests/it/event_rules.rs holds the names to this).
fn rule_for(fixture: &str) -> Option<&'static str> {
    [
        ("drs-", "DrsEventRule"),
        ("ec2-", "Ec2ChangeRule"),
        ("iam-", "IamInstanceProfileChangeRule"),
    ]
    .into_iter()
    .find(|(prefix, _)| fixture.starts_with(prefix))
    .map(|(_, rule)| rule)
}

/// A sample event as it happened in `account` and `region` (IAM's in
/// us-east-1, where IAM's CloudTrail events are): its account and region
/// replaced wherever they appear, the envelope's, the resources' ARNs and
/// CloudTrail's `recipientAccountId` and `awsRegion` alike.
fn happened_in(event: &Value, account: &str, region: &str) -> Value {
    let sample_account = event["account"].as_str().unwrap();
    let sample_region = event["region"].as_str().unwrap();
    let region = if event["source"] == "aws.iam" {
        "us-east-1"
    } else {
        region
    };
    let text = event
        .to_string()
        .replace(sample_account, account)
        .replace(sample_region, region);
    serde_json::from_str(&text).unwrap()
}

fn put_event(account: &str, region: &str, bus: Option<&str>, event: &Value) {
    let mut entry = json!({
        "Source": event["source"],
        "DetailType": event["detail-type"],
        "Resources": event["resources"],
        "Detail": event["detail"].to_string(),
    });
    if let Some(bus) = bus {
        entry["EventBusName"] = bus.into();
    }
    let put = moto::aws_json(
        account,
        region,
        "events",
        "AWSEvents.PutEvents",
        &json!({"Entries": [entry]}),
    );
    assert_eq!(put["FailedEntryCount"], 0, "{put}");
}

/// The main stack's three rules, with their real patterns, each sending to a
/// queue, on a bus of `account` in `region`.
struct MainRules {
    account: String,
    region: String,
    bus: String,
    queues: BTreeMap<&'static str, moto::Queue>,
}

impl MainRules {
    fn put(stack: &Stack, account: &str, region: &str) -> Self {
        let bus = moto::create_event_bus(account, region, "deployment-bus");
        let mut queues = BTreeMap::new();
        for (rule, _) in FORWARDED_BY {
            let name = moto::unique_name(&rule.to_lowercase());
            let queue = moto::Queue::create(account, region, &name);
            moto::aws_json(
                account,
                region,
                "events",
                "AWSEvents.PutRule",
                &json!({
                    "Name": name,
                    "EventBusName": bus,
                    "EventPattern": event_pattern(stack, rule).to_string(),
                    "State": "ENABLED",
                }),
            );
            moto::aws_json(
                account,
                region,
                "events",
                "AWSEvents.PutTargets",
                &json!({"Rule": name, "EventBusName": bus, "Targets": [{"Id": "queue", "Arn": queue.arn}]}),
            );
            queues.insert(rule, queue);
        }
        Self {
            account: account.to_owned(),
            region: region.to_owned(),
            bus,
            queues,
        }
    }

    /// Puts `event` on the bus; the rules that took it, each with the event
    /// it delivered.
    fn route(&self, event: &Value) -> Vec<(&'static str, Value)> {
        put_event(&self.account, &self.region, Some(&self.bus), event);
        self.queues
            .iter()
            .flat_map(|(rule, queue)| queue.drain().into_iter().map(|e| (*rule, e)))
            .collect()
    }
}

#[test]
fn moto_routes_forwarded_events_of_the_accounts_refreshed_to_their_rule_and_no_others() {
    let main = main_template();
    let (deployment, member, other_member, stranger) = (
        moto::unique_account(),
        moto::unique_account(),
        moto::unique_account(),
        moto::unique_account(),
    );
    let stack = Stack::new(&main, &deployment, DEPLOYMENT_REGION)
        .with("AccountIds", &format!("{member},{other_member}"))
        .with("Regions", &format!("{DEPLOYMENT_REGION},eu-west-1"));
    let home = AccountId::parse(&deployment).unwrap();
    let mut rules = BTreeMap::new();
    let mut taken = 0;
    for (account, refreshed) in [
        (&member, true),
        (&other_member, true),
        (&stranger, false),
        // Not in AccountIds: its own events start no run either.
        (&deployment, false),
    ] {
        for (name, sample) in events::fixtures() {
            // DRS and EC2 events of another region than the deployment's.
            let event = happened_in(&sample, account, "eu-west-1");
            let region = event["region"].as_str().unwrap().to_owned();
            let rules = rules
                .entry((account.clone(), region.clone()))
                .or_insert_with(|| MainRules::put(&stack, account, &region));
            let routed = rules.route(&event);
            let expected = rule_for(&name).filter(|_| refreshed);
            assert_eq!(
                routed.iter().map(|(rule, _)| *rule).collect::<Vec<_>>(),
                Vec::from_iter(expected),
                "{name} from {account}"
            );
            let Some((_, delivered)) = routed.first() else {
                continue;
            };
            taken += 1;
            assert_eq!(
                events::identity(delivered),
                events::identity(&event),
                "{name}"
            );
            // The run it starts refreshes the member account's data, in the
            // region the event happened in.
            let account = AccountId::parse(account).unwrap();
            let parsed = trigger::parse(&event, home).unwrap();
            match parsed {
                Trigger::Change {
                    account: changed,
                    region: changed_in,
                    ref data_types,
                } => {
                    assert_eq!(changed, account, "{name}");
                    assert_eq!(changed_in, Region::parse(&region).unwrap(), "{name}");
                    assert!(!data_types.is_empty(), "{name}");
                }
                Trigger::Launched {
                    account: changed,
                    region: changed_in,
                } => {
                    assert_eq!(changed, account, "{name}");
                    assert_eq!(changed_in, Region::parse(&region).unwrap(), "{name}");
                }
                Trigger::ProfilesChanged { account: changed } => {
                    assert_eq!(changed, account, "{name}");
                }
                other => panic!("{name}: the planner answers {other:?}"),
            }
        }
    }
    let samples = events::fixtures()
        .keys()
        .filter(|n| rule_for(n).is_some())
        .count();
    assert_eq!(taken, 2 * samples);

    // A refreshed account's DRS and EC2 events of a region not refreshed start
    // no run; its IAM events, always of us-east-1, still do.
    for (name, sample) in events::fixtures() {
        let event = happened_in(&sample, &member, "ap-south-1");
        let region = event["region"].as_str().unwrap().to_owned();
        let rules = rules
            .entry((member.clone(), region.clone()))
            .or_insert_with(|| MainRules::put(&stack, &member, &region));
        let routed: Vec<&str> = rules.route(&event).iter().map(|(rule, _)| *rule).collect();
        let expected = rule_for(&name).filter(|_| event["source"] == "aws.iam");
        assert_eq!(routed, Vec::from_iter(expected), "{name} in {region}");
    }
}

#[test]
fn moto_creates_the_member_stack_in_each_region_and_its_rules_forward_to_the_deployment_bus() {
    let template = member_template();
    let (deployment, member) = (moto::unique_account(), moto::unique_account());
    let deployment_bus = bus_arn(&deployment, DEPLOYMENT_REGION);
    let refresher = format!("arn:aws:iam::{deployment}:role/drs-cache-RefresherRole-1A2B3C4D5E6F");
    let parameters = [
        ("RefresherRoleArn", refresher.as_str()),
        ("DeploymentEventBusArn", deployment_bus.as_str()),
        ("ExternalId", "drs-cache-test"),
    ];

    // What arrives on the deployment bus, from any source a sample has.
    let sources: BTreeSet<String> = events::fixtures()
        .values()
        .map(|e| e["source"].as_str().unwrap().to_owned())
        .collect();
    let arrived = moto::Queue::create(
        &deployment,
        DEPLOYMENT_REGION,
        &moto::unique_name("arrived"),
    );
    moto::aws_json(
        &deployment,
        DEPLOYMENT_REGION,
        "events",
        "AWSEvents.PutRule",
        &json!({"Name": "arrived", "EventPattern": json!({"source": sources}).to_string()}),
    );
    moto::aws_json(
        &deployment,
        DEPLOYMENT_REGION,
        "events",
        "AWSEvents.PutTargets",
        &json!({"Rule": "arrived", "Targets": [{"Id": "queue", "Arn": arrived.arn}]}),
    );

    // One stack set over two regions: us-east-1 first, which makes the role.
    for region in ["us-east-1", "eu-west-1"] {
        let name = moto::unique_name("drs-cache-member");
        let created = &moto::create_stack(&member, region, &name, MEMBER_TEMPLATE, &parameters);
        assert_eq!(
            created["StackStatus"], "CREATE_COMPLETE",
            "{region}: {created}"
        );

        // moto made what CloudFormation would, but for what it cannot make.
        let expected = parameters
            .iter()
            .fold(Stack::new(&template, &member, region), |s, (k, v)| {
                s.with(k, v)
            });
        let resources = moto::stack_resources(&member, region, &name);
        let mut wanted = expected.resources();
        wanted.retain(|_, r| !NOT_IN_MOTO.iter().any(|t| r["Type"] == *t));
        assert_eq!(set(resources.keys()), set(wanted.keys()), "{region}");

        let outputs = moto::stack_outputs(created);
        if region == "us-east-1" {
            let role_arn = format!("arn:aws:iam::{member}:role/{DEFAULT_ROLE_NAME}");
            assert_eq!(outputs.get("RoleArn"), Some(&role_arn));
            let role = moto::query(
                &member,
                region,
                "iam",
                "2010-05-08",
                "GetRole",
                &[("RoleName".into(), DEFAULT_ROLE_NAME.into())],
            );
            let trust: Value = serde_json::from_str(&workflow::percent_decode(
                role["Role"]["AssumeRolePolicyDocument"].as_str().unwrap(),
            ))
            .unwrap();
            assert_eq!(
                trust,
                expected.properties("ReaderRole")["AssumeRolePolicyDocument"]
            );
            assert_eq!(
                trust["Statement"][0]["Condition"],
                json!({"StringEquals": {"sts:ExternalId": "drs-cache-test"}})
            );
        } else {
            assert!(!outputs.contains_key("RoleArn"), "{region}");
        }

        // Each rule puts what it takes on the deployment bus, as the
        // forwarding role, retrying into the dead-letter queue.
        let forwarder = format!(
            "arn:aws:iam::{member}:role/{}",
            resources["ForwardEventsRole"]
        );
        for (id, rule) in expected.resources_of("AWS::Events::Rule") {
            let listed = moto::aws_json(
                &member,
                region,
                "events",
                "AWSEvents.ListTargetsByRule",
                &json!({"Rule": resources[&id]}),
            );
            let target = &listed["Targets"][0];
            assert_eq!(target["Arn"], deployment_bus.as_str(), "{id}");
            assert_eq!(target["RoleArn"], forwarder.as_str(), "{id}");
            assert_eq!(
                target["DeadLetterConfig"]["Arn"],
                outputs["ForwardedEventsDeadLetterQueueArn"].as_str(),
                "{id}"
            );
            assert_eq!(
                target["RetryPolicy"], rule["Targets"][0]["RetryPolicy"],
                "{id}"
            );
        }

        // The member's events: DRS and EC2 changes from every region, IAM
        // changes from us-east-1 only, nothing else.
        for (name, sample) in events::fixtures() {
            let event = happened_in(&sample, &member, region);
            put_event(&member, region, None, &event);
            let forwarded = arrived.drain();
            let expected = match rule_for(&name) {
                Some("IamInstanceProfileChangeRule") => region == "us-east-1",
                Some(_) => true,
                None => false,
            };
            assert_eq!(forwarded.len(), usize::from(expected), "{name} in {region}");
            // moto forwards an event without its resources.
            for delivered in forwarded {
                assert_eq!(
                    json!([
                        delivered["source"],
                        delivered["detail-type"],
                        delivered["detail"]
                    ]),
                    json!([event["source"], event["detail-type"], event["detail"]]),
                    "{name}"
                );
            }
        }
    }
}
