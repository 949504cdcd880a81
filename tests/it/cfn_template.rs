//! The CloudFormation template agrees with the code: the cache table is the one
//! `create_table` makes (and so is its global table, where several deployments
//! share one, each reading and writing its own region's replica with the same
//! grants as a single deployment), the HTTP API has a route for every path the reader
//! serves, each function runs its own package with the variables it reads and a
//! role allowing what it calls, and the schedule starts runs the planner
//! understands. (tests/statemachine.rs checks the workflow's definition and its
//! substitutions, tests/event_rules.rs the EventBridge rules.)

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::Duration,
};

use crate::support::{
    cfn::{Stack, intrinsic, resources_of},
    moto,
};
use bytes::Bytes;
use drs_cache::{
    adapters::{
        aws::Credentials, dynamodb::INDEX_BY_DATA_TYPE, local_queue::LocalRefreshQueue,
        s3::PLAN_PREFIX,
    },
    app,
    config::{
        DEFAULT_REFRESH_CONCURRENCY, DEFAULT_ROLE_NAME, Env, PlannerConfig, ReaderConfig,
        RefresherConfig, StoreChoice,
    },
    domain::{AccountId, DataType},
    plan::trigger::{self, Trigger},
    read::{ApiRequest, ReaderSettings, http::INVALIDATE_PATH, metrics::Recorded},
};
use http::{Method, StatusCode};
use serde_norway::Value;

const TEMPLATE: &str = include_str!("../../cfn/drs-cache.yaml");
const CARGO_TOML: &str = include_str!("../../Cargo.toml");
/// The account and region of the stack these tests evaluate the template for.
const STACK_ACCOUNT: &str = "111122223333";
const STACK_REGION: &str = "eu-west-1";

fn template() -> Value {
    serde_norway::from_str(TEMPLATE).expect("cfn/drs-cache.yaml is YAML")
}

fn field<'a>(value: &'a Value, name: &str) -> &'a Value {
    value
        .get(name)
        .unwrap_or_else(|| panic!("{name} missing in {value:?}"))
}

/// A plain string, not an intrinsic function (whose argument `as_str` would
/// return).
fn text<'a>(value: &'a Value, name: &str) -> &'a str {
    match field(value, name) {
        Value::String(s) => s,
        other => panic!("{name} is not a plain string: {other:?}"),
    }
}

fn list<'a>(value: &'a Value, name: &str) -> &'a [Value] {
    match field(value, name) {
        Value::Sequence(items) => items,
        other => panic!("{name} is not a plain list: {other:?}"),
    }
}

fn properties<'a>(template: &'a Value, logical_id: &str) -> &'a Value {
    field(
        field(field(template, "Resources"), logical_id),
        "Properties",
    )
}

fn is_ref(value: &Value, target: &str) -> bool {
    matches!(intrinsic(value), Some((f, arg)) if f == "Ref" && arg.as_str() == Some(target))
}

/// `!GetAtt Resource.Attribute` in either form.
fn is_get_att(value: &Value, resource: &str, attribute: &str) -> bool {
    let Some((f, arg)) = intrinsic(value) else {
        return false;
    };
    let parts: Vec<&str> = match arg {
        Value::String(s) => s.splitn(2, '.').collect(),
        Value::Sequence(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => return false,
    };
    f == "GetAtt" && parts == [resource, attribute]
}

// --- the cache table ---------------------------------------------------------

#[derive(Debug, PartialEq, Eq)]
struct TableSchema {
    billing_mode: String,
    /// Attribute name to scalar type.
    attributes: BTreeMap<String, String>,
    /// (attribute, HASH or RANGE), in order.
    key: Vec<(String, String)>,
    indexes: BTreeMap<String, IndexSchema>,
    ttl_attribute: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
struct IndexSchema {
    key: Vec<(String, String)>,
    projection: String,
    non_key_attributes: BTreeSet<String>,
}

fn key_of(elements: &[Value]) -> Vec<(String, String)> {
    elements
        .iter()
        .map(|e| {
            (
                text(e, "AttributeName").to_owned(),
                text(e, "KeyType").to_owned(),
            )
        })
        .collect()
}

fn template_table(template: &Value) -> TableSchema {
    let table = properties(template, "QueryCacheTable");
    let indexes = list(table, "GlobalSecondaryIndexes")
        .iter()
        .map(|index| {
            let projection = field(index, "Projection");
            let non_key = projection
                .get("NonKeyAttributes")
                .map(|_| {
                    list(projection, "NonKeyAttributes")
                        .iter()
                        .map(|n| n.as_str().expect("attribute names").to_owned())
                        .collect()
                })
                .unwrap_or_default();
            (
                text(index, "IndexName").to_owned(),
                IndexSchema {
                    key: key_of(list(index, "KeySchema")),
                    projection: text(projection, "ProjectionType").to_owned(),
                    non_key_attributes: non_key,
                },
            )
        })
        .collect();
    let ttl = field(table, "TimeToLiveSpecification");
    TableSchema {
        billing_mode: text(table, "BillingMode").to_owned(),
        attributes: list(table, "AttributeDefinitions")
            .iter()
            .map(|a| {
                (
                    text(a, "AttributeName").to_owned(),
                    text(a, "AttributeType").to_owned(),
                )
            })
            .collect(),
        key: key_of(list(table, "KeySchema")),
        indexes,
        ttl_attribute: (field(ttl, "Enabled") == &Value::Bool(true))
            .then(|| text(ttl, "AttributeName").to_owned()),
    }
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|&(a, b)| (a.to_owned(), b.to_owned()))
        .collect()
}

#[test]
fn the_table_has_the_documented_schema() {
    // docs/data-model.md; the projection is `INDEX_ATTRIBUTES` in table.rs.
    let expected = TableSchema {
        billing_mode: "PAY_PER_REQUEST".into(),
        attributes: pairs(&[("cacheKey", "S"), ("dataType", "S"), ("createdAt", "N")])
            .into_iter()
            .collect(),
        key: pairs(&[("cacheKey", "HASH")]),
        indexes: BTreeMap::from([(
            INDEX_BY_DATA_TYPE.to_owned(),
            IndexSchema {
                key: pairs(&[("dataType", "HASH"), ("createdAt", "RANGE")]),
                projection: "INCLUDE".into(),
                non_key_attributes: [
                    "version",
                    "etag",
                    "state",
                    "fetchedAt",
                    "expiresAt",
                    "ttl",
                    "itemCount",
                    "figures",
                    "lastAttemptAt",
                    "lastErrorKind",
                    "lastErrorMessage",
                ]
                .map(String::from)
                .into(),
            },
        )]),
        ttl_attribute: Some("ttl".into()),
    };
    assert_eq!(template_table(&template()), expected);
}

/// The schema of a table that `create_table` made, as DynamoDB describes it.
async fn created_table() -> TableSchema {
    let client = moto::dynamodb_client(moto::endpoint()).await;
    let name = moto::unique_name("cfn");
    drs_cache::adapters::dynamodb::create_table(&client, &name)
        .await
        .unwrap();
    let described = client
        .describe_table()
        .table_name(&name)
        .send()
        .await
        .unwrap();
    let table = described.table().expect("a table description");
    let ttl = client
        .describe_time_to_live()
        .table_name(&name)
        .send()
        .await
        .unwrap();
    let key = |elements: &[aws_sdk_dynamodb::types::KeySchemaElement]| {
        elements
            .iter()
            .map(|k| {
                (
                    k.attribute_name().to_owned(),
                    k.key_type().as_str().to_owned(),
                )
            })
            .collect::<Vec<_>>()
    };
    TableSchema {
        billing_mode: table
            .billing_mode_summary()
            .and_then(|b| b.billing_mode())
            .map(|m| m.as_str().to_owned())
            .unwrap_or_default(),
        attributes: table
            .attribute_definitions()
            .iter()
            .map(|a| {
                (
                    a.attribute_name().to_owned(),
                    a.attribute_type().as_str().to_owned(),
                )
            })
            .collect(),
        key: key(table.key_schema()),
        indexes: table
            .global_secondary_indexes()
            .iter()
            .map(|i| {
                let projection = i.projection().expect("a projection");
                (
                    i.index_name().unwrap_or_default().to_owned(),
                    IndexSchema {
                        key: key(i.key_schema()),
                        projection: projection
                            .projection_type()
                            .map(|p| p.as_str().to_owned())
                            .unwrap_or_default(),
                        non_key_attributes: projection
                            .non_key_attributes()
                            .iter()
                            .cloned()
                            .collect(),
                    },
                )
            })
            .collect(),
        ttl_attribute: ttl
            .time_to_live_description()
            .filter(|d| {
                d.time_to_live_status()
                    .is_some_and(|s| s.as_str() == "ENABLED" || s.as_str() == "ENABLING")
            })
            .and_then(|d| d.attribute_name())
            .map(str::to_owned),
    }
}

#[tokio::test]
async fn the_table_is_the_one_create_table_makes() {
    assert_eq!(template_table(&template()), created_table().await);
}

#[test]
fn the_table_is_a_disposable_encrypted_cache() {
    let t = template();
    let resource = field(field(&t, "Resources"), "QueryCacheTable");
    assert_eq!(text(resource, "Type"), "AWS::DynamoDB::Table");
    assert_eq!(text(resource, "DeletionPolicy"), "Delete");
    let props = properties(&t, "QueryCacheTable");
    assert_eq!(
        field(field(props, "SSESpecification"), "SSEEnabled"),
        &Value::Bool(true)
    );
    let pitr = field(
        field(props, "PointInTimeRecoverySpecification"),
        "PointInTimeRecoveryEnabled",
    );
    assert!(is_ref(pitr, "PointInTimeRecovery"), "{pitr:?}");
    let parameter = field(
        field(field(&t, "Parameters"), "PointInTimeRecovery"),
        "Default",
    );
    // On by default: while the upstream is out, what the table holds cannot be
    // fetched again.
    assert_eq!(parameter.as_str(), Some("true"));
}

// --- several deployments over a global table ---------------------------------------

/// The region of the stack that makes the global table in these tests.
const HOME: &str = "us-east-1";
/// The cache table's name at the default parameters, in every region.
const TABLE_NAME: &str = "drs-orchestration-query-cache-dev";
/// A multi-Region KMS key, by its ARN in `HOME`.
const MULTI_REGION_KEY: &str =
    "arn:aws:kms:us-east-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab";

/// The three ways a stack has the cache table, as (region, parameters): a
/// table of its own; the global table it makes, with replicas; the replica of
/// the global table another stack made. The shared ones assign a region too.
const TABLE_MODES: [(&str, &[(&str, &str)]); 3] = [
    (HOME, &[]),
    (
        HOME,
        &[
            ("ReplicaRegions", "us-west-2,eu-west-1"),
            ("RegionOwners", "eu-west-1=us-east-1"),
        ],
    ),
    (
        "us-west-2",
        &[
            ("GlobalTableRegion", HOME),
            ("RegionOwners", "eu-west-1=us-east-1"),
        ],
    ),
];

/// The table's ARN in `region`, as the stack's roles and outputs name it.
fn table_arn(region: &str) -> String {
    format!("arn:aws:dynamodb:{region}:{STACK_ACCOUNT}:table/{TABLE_NAME}")
}

/// The regions of a global table's replicas, in order.
fn replica_regions(table: &serde_json::Value) -> Vec<&str> {
    table["Replicas"]
        .as_array()
        .expect("Replicas is a list")
        .iter()
        .map(|r| r["Region"].as_str().expect("a replica's region"))
        .collect()
}

/// `parameter`'s AllowedPattern, for the whole value.
fn allowed_pattern(template: &Value, parameter: &str) -> regex::Regex {
    let pattern = text(
        field(field(template, "Parameters"), parameter),
        "AllowedPattern",
    );
    assert!(
        pattern.starts_with('^') && pattern.ends_with('$'),
        "{parameter}: {pattern}"
    );
    regex::Regex::new(pattern).unwrap()
}

/// The stack's parameters break none of the template's rules.
fn assert_deployable(stack: &Stack) {
    let broken = stack.broken_rules();
    assert!(broken.is_empty(), "the parameters break {broken:?}");
}

#[test]
fn a_stack_of_default_parameters_makes_its_own_table_and_shares_nothing() {
    let t = template();
    let stack = stack_of(&t, &[]);
    assert_deployable(&stack);
    assert!(stack.creates("QueryCacheTable"));
    assert!(!stack.creates("GlobalCacheTable"));
    assert_eq!(stack.properties("QueryCacheTable")["TableName"], TABLE_NAME);
    for (function, _) in FUNCTIONS {
        let environment = stack.environment(function);
        // The table's Ref, so that the function waits for the table.
        assert_eq!(
            environment["CACHE_TABLE_NAME"], "physical-id-of-QueryCacheTable",
            "{function}"
        );
        for var in ["DEPLOYMENT_REGION", "REGION_OWNERS"] {
            assert!(!environment.contains_key(var), "{function} gets {var}");
        }
    }
    let outputs = stack.outputs();
    assert_eq!(outputs["QueryCacheTableName"], TABLE_NAME);
    assert_eq!(
        outputs["QueryCacheTableArn"],
        table_arn(STACK_REGION).as_str()
    );
}

#[test]
fn replica_regions_make_a_global_table_of_the_same_table_here_and_in_each_region() {
    let t = template();
    let plain_stack = stack_in(&t, HOME, &[]);
    let plain = plain_stack.resource("QueryCacheTable").unwrap();
    let stack = stack_in(&t, HOME, &[("ReplicaRegions", "us-west-2,eu-west-1")]);
    assert_deployable(&stack);
    assert!(!stack.creates("QueryCacheTable"), "one table, not two");
    let global = stack.resource("GlobalCacheTable").expect("a global table");
    assert_eq!(global["Type"], "AWS::DynamoDB::GlobalTable");
    for policy in ["DeletionPolicy", "UpdateReplacePolicy"] {
        assert_eq!(global[policy], plain[policy], "{policy}");
    }
    let (global, plain) = (&global["Properties"], &plain["Properties"]);
    // The same table: name, schema, index and its projection, TTL, billing,
    // and encryption (with no key, the AWS-managed one).
    for property in [
        "TableName",
        "BillingMode",
        "AttributeDefinitions",
        "KeySchema",
        "GlobalSecondaryIndexes",
        "TimeToLiveSpecification",
        "SSESpecification",
    ] {
        assert_eq!(global[property], plain[property], "{property}");
    }
    // Replicated through streams, which more than one replica requires.
    assert_eq!(
        global["StreamSpecification"],
        serde_json::json!({"StreamViewType": "NEW_AND_OLD_IMAGES"})
    );
    // A replica here first (a global table's stack must have one in its
    // region), then one in each region, in the order given.
    assert_eq!(replica_regions(global), [HOME, "us-west-2", "eu-west-1"]);
    for replica in global["Replicas"].as_array().unwrap() {
        let region = &replica["Region"];
        assert_eq!(
            replica["PointInTimeRecoverySpecification"], plain["PointInTimeRecoverySpecification"],
            "{region}"
        );
        assert_eq!(replica["Tags"], plain["Tags"], "{region}");
        assert!(replica.get("SSESpecification").is_none(), "{region}");
    }
    let off = stack_in(
        &t,
        HOME,
        &[
            ("ReplicaRegions", "us-west-2"),
            ("PointInTimeRecovery", "false"),
        ],
    )
    .properties("GlobalCacheTable");
    for replica in off["Replicas"].as_array().unwrap() {
        assert_eq!(
            replica["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
            "false"
        );
    }

    // Each function is one deployment of several, in this region, and waits
    // for the table.
    for (function, _) in FUNCTIONS {
        let environment = stack.environment(function);
        assert_eq!(environment["DEPLOYMENT_REGION"], HOME, "{function}");
        assert!(!environment.contains_key("REGION_OWNERS"), "{function}");
        assert_eq!(
            environment["CACHE_TABLE_NAME"], "physical-id-of-GlobalCacheTable",
            "{function}"
        );
    }
    let outputs = stack.outputs();
    assert_eq!(outputs["QueryCacheTableName"], TABLE_NAME);
    assert_eq!(outputs["QueryCacheTableArn"], table_arn(HOME).as_str());
}

#[test]
fn one_to_four_replica_regions_each_get_a_replica_and_no_more_are_accepted() {
    let t = template();
    let regions = ["us-west-2", "eu-west-1", "ap-southeast-2", "sa-east-1"];
    for n in 1..=regions.len() {
        let listed = regions[..n].join(",");
        let table =
            stack_in(&t, HOME, &[("ReplicaRegions", &listed)]).properties("GlobalCacheTable");
        let expected: Vec<&str> = [HOME].iter().chain(&regions[..n]).copied().collect();
        assert_eq!(replica_regions(&table), expected, "{listed}");
    }
    let pattern = allowed_pattern(&t, "ReplicaRegions");
    for accepted in [
        "",
        "us-west-2",
        "us-west-2,eu-west-1,ap-southeast-2,sa-east-1",
    ] {
        assert!(pattern.is_match(accepted), "{accepted:?}");
    }
    for refused in [
        "us-west-2,eu-west-1,ap-southeast-2,sa-east-1,eu-central-1",
        "us-west-2,",
        ",us-west-2",
        "us-west-2, eu-west-1",
        "mars",
    ] {
        assert!(!pattern.is_match(refused), "{refused:?}");
    }
}

#[test]
fn with_a_key_each_replica_is_encrypted_with_the_multi_region_key_of_its_region() {
    let t = template();
    let table = stack_in(
        &t,
        HOME,
        &[
            ("ReplicaRegions", "us-west-2,eu-west-1"),
            ("KmsKeyArn", MULTI_REGION_KEY),
        ],
    )
    .properties("GlobalCacheTable");
    assert_eq!(
        table["SSESpecification"],
        serde_json::json!({"SSEEnabled": true, "SSEType": "KMS"})
    );
    for replica in table["Replicas"].as_array().unwrap() {
        let region = replica["Region"].as_str().unwrap();
        assert_eq!(
            replica["SSESpecification"],
            serde_json::json!({"KMSMasterKeyId": format!(
                "arn:aws:kms:{region}:{STACK_ACCOUNT}:key/mrk-1234abcd12ab34cd56ef1234567890ab"
            )}),
            "{region}"
        );
    }
    // A multi-Region key is a key KmsKeyArn takes; a single-Region one still is.
    let pattern = allowed_pattern(&t, "KmsKeyArn");
    for key in [
        MULTI_REGION_KEY,
        "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "",
    ] {
        assert!(pattern.is_match(key), "{key}");
    }
}

#[test]
fn a_stack_in_a_replica_region_makes_no_table_and_uses_the_replica_there() {
    let t = template();
    let region = "us-west-2";
    let stack = stack_in(&t, region, &[("GlobalTableRegion", HOME)]);
    assert_deployable(&stack);
    for ty in ["AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable"] {
        assert!(stack.resources_of(ty).is_empty(), "{ty}");
    }
    // Every function names the replica by the table's name and reads and
    // writes it in its own region.
    for (function, _) in FUNCTIONS {
        let environment = stack.environment(function);
        assert_eq!(environment["CACHE_TABLE_NAME"], TABLE_NAME, "{function}");
        assert_eq!(environment["DEPLOYMENT_REGION"], region, "{function}");
    }
    assert_eq!(
        ReaderConfig::from_vars(&stack.env("ReaderFunction"))
            .unwrap()
            .table,
        TABLE_NAME
    );
    assert_eq!(
        PlannerConfig::from_vars(&stack.env("PlannerFunction"))
            .unwrap()
            .table,
        TABLE_NAME
    );
    assert_eq!(
        RefresherConfig::from_vars(&stack.env("RefresherFunction"))
            .unwrap()
            .table,
        TABLE_NAME
    );
    let here = table_arn(region);
    for (id, role) in stack.resources_of("AWS::IAM::Role") {
        for (action, resources) in crate::support::cfn::granted(&role) {
            if action.starts_with("dynamodb:") {
                for resource in resources {
                    assert!(
                        resource == here || resource == format!("{here}/index/*"),
                        "{id}: {action} on {resource}"
                    );
                }
            }
        }
    }
    let outputs = stack.outputs();
    assert_eq!(outputs["QueryCacheTableName"], TABLE_NAME);
    assert_eq!(outputs["QueryCacheTableArn"], here.as_str());
    // Dashboard names are the account's: each region's deployment names its
    // own, where a single deployment keeps the name it had.
    let dashboard = |stack: &Stack| stack.properties("Dashboard")["DashboardName"].clone();
    let single = dashboard(&stack_in(&t, region, &[]));
    assert_eq!(
        dashboard(&stack),
        format!("{}-{region}", single.as_str().unwrap())
    );
}

#[test]
fn region_owners_reach_every_function_of_a_shared_deployment() {
    let t = template();
    let owners = "us-east-1=us-west-2,eu-west-1=us-west-2";
    for (region, table) in [
        (HOME, ("ReplicaRegions", "us-west-2,eu-west-1")),
        ("us-west-2", ("GlobalTableRegion", HOME)),
    ] {
        let stack = stack_in(&t, region, &[table, ("RegionOwners", owners)]);
        assert_deployable(&stack);
        for (function, read) in FUNCTIONS {
            let environment = stack.environment(function);
            assert_eq!(environment["REGION_OWNERS"], owners, "{function}");
            assert_eq!(environment["DEPLOYMENT_REGION"], region, "{function}");
            let configured = read(&Env(&|name: &str| environment.get(name).cloned()));
            assert!(!configured.starts_with("Err"), "{function}: {configured}");
        }
    }
    let pattern = allowed_pattern(&t, "RegionOwners");
    for accepted in ["", "us-east-1=us-west-2", owners] {
        assert!(pattern.is_match(accepted), "{accepted:?}");
    }
    for refused in [
        "eu-west-1",
        "eu-west-1=",
        "eu-west-1=us-east-1,",
        "eu-west-1 = us-east-1",
        "eu-west-1=us-east-1;ap-south-1=us-west-2",
    ] {
        assert!(!pattern.is_match(refused), "{refused:?}");
    }
}

#[test]
fn the_rules_refuse_a_global_table_made_twice_here_or_owners_without_one() {
    let t = template();
    let broken =
        |region: &str, parameters: &[(&str, &str)]| stack_in(&t, region, parameters).broken_rules();
    assert_eq!(
        broken(
            HOME,
            &[
                ("ReplicaRegions", "us-west-2"),
                ("GlobalTableRegion", "us-west-2")
            ]
        ),
        ["GlobalTableMadeOnce"]
    );
    assert_eq!(
        broken(HOME, &[("GlobalTableRegion", HOME)]),
        ["GlobalTableMadeElsewhere"]
    );
    assert_eq!(
        broken(HOME, &[("RegionOwners", "eu-west-1=us-east-1")]),
        ["RegionOwnersNeedAGlobalTable"]
    );
    for (region, parameters) in TABLE_MODES {
        assert!(broken(region, parameters).is_empty(), "{parameters:?}");
    }
    // The evaluation of rules itself: an older rule breaks as it should.
    assert_eq!(
        broken(HOME, &[("ApiAuthorization", "JWT")]),
        ["JwtNeedsAnIssuer"]
    );
}

/// A shared deployment's roles are the same as a single one's, so what
/// tests/it/linked_calls.rs holds against the binaries, and the checks above
/// of what each grant is on, hold for them too: every role of the stack, with
/// its conditions (the planner's lease items, `lease#*`, include a shared
/// deployment's `lease#REGION#...`), and with and without a key.
#[test]
fn every_role_grants_the_same_on_the_table_here_whichever_table_it_is() {
    let t = template();
    for key in [None, Some(MULTI_REGION_KEY)] {
        for (region, parameters) in TABLE_MODES {
            let with_key: Vec<(&str, &str)> = parameters
                .iter()
                .copied()
                .chain(key.map(|k| ("KmsKeyArn", k)))
                .collect();
            let own: Vec<(&str, &str)> = key.map(|k| ("KmsKeyArn", k)).into_iter().collect();
            let single = stack_in(&t, region, &own).resources_of("AWS::IAM::Role");
            let shared = stack_in(&t, region, &with_key).resources_of("AWS::IAM::Role");
            assert_eq!(
                shared.keys().collect::<Vec<_>>(),
                single.keys().collect::<Vec<_>>()
            );
            for (id, role) in &shared {
                assert_eq!(role, &single[id], "{id} in {region} with {with_key:?}");
            }
        }
    }
}

#[test]
fn the_plan_bucket_is_private_encrypted_and_expires_plans_and_results_after_a_day() {
    let t = template();
    let props = properties(&t, "PlanBucket");
    let encryption = &field(
        field(props, "BucketEncryption"),
        "ServerSideEncryptionConfiguration",
    )[0]["ServerSideEncryptionByDefault"];
    // S3-managed keys, or the customer-managed key KmsKeyArn names.
    let algorithm = intrinsic(field(encryption, "SSEAlgorithm"));
    assert!(
        matches!(&algorithm, Some((f, arg)) if f == "If"
            && arg[0].as_str() == Some("UseKmsKey")
            && arg[1].as_str() == Some("aws:kms")
            && arg[2].as_str() == Some("AES256")),
        "{algorithm:?}"
    );
    let block = field(props, "PublicAccessBlockConfiguration");
    for setting in [
        "BlockPublicAcls",
        "BlockPublicPolicy",
        "IgnorePublicAcls",
        "RestrictPublicBuckets",
    ] {
        assert_eq!(field(block, setting), &Value::Bool(true), "{setting}");
    }
    let rules = field(field(props, "LifecycleConfiguration"), "Rules")
        .as_sequence()
        .unwrap();
    // Plans as the planner names them, result files under the Map's
    // ResultWriter prefix (`results`).
    for prefix in [PLAN_PREFIX, "results/"] {
        let rule = rules
            .iter()
            .find(|r| r.get("Prefix").and_then(Value::as_str) == Some(prefix))
            .unwrap_or_else(|| panic!("no lifecycle rule for {prefix}"));
        assert_eq!(text(rule, "Status"), "Enabled");
        assert_eq!(rule["ExpirationInDays"].as_u64(), Some(1), "{prefix}");
    }
    // Only TLS reaches it.
    let policy = field(properties(&t, "PlanBucketPolicy"), "PolicyDocument");
    let deny = &policy["Statement"][0];
    assert_eq!(text(deny, "Effect"), "Deny");
    assert_eq!(
        deny["Condition"]["Bool"]["aws:SecureTransport"].as_str(),
        Some("false")
    );
}

// --- the HTTP API --------------------------------------------------------------

/// The route that asks for a refresh by hand.
const INVALIDATE_ROUTE: &str = "POST /cache/invalidate";

/// Route keys of the API, each checked to lead to the reader and to be
/// authorized as `ApiAuthorization` says.
fn template_routes(template: &Value) -> BTreeSet<String> {
    let integration = properties(template, "ReaderIntegration");
    assert_eq!(text(integration, "IntegrationType"), "AWS_PROXY");
    assert_eq!(text(integration, "PayloadFormatVersion"), "2.0");
    assert!(is_ref(field(integration, "ApiId"), "HttpApi"));
    assert!(is_get_att(
        field(integration, "IntegrationUri"),
        "ReaderFunction",
        "Arn"
    ));
    resources_of(template, "AWS::ApiGatewayV2::Route")
        .into_iter()
        .map(|(id, route)| {
            let props = field(route, "Properties");
            assert!(is_ref(field(props, "ApiId"), "HttpApi"), "{id}");
            assert!(
                is_ref(field(props, "AuthorizationType"), "ApiAuthorization"),
                "{id}"
            );
            // With JWT, the authorizer checks every route's token.
            let authorizer = intrinsic(field(props, "AuthorizerId"));
            assert!(
                matches!(&authorizer, Some((f, arg)) if f == "If"
                    && arg[0].as_str() == Some("UseJwt")
                    && is_ref(&arg[1], "JwtAuthorizer")),
                "{id}: {authorizer:?}"
            );
            // Only invalidation needs a scope: reading never grants it.
            let scopes = props.get("AuthorizationScopes");
            assert_eq!(
                scopes.is_some(),
                text(props, "RouteKey") == INVALIDATE_ROUTE,
                "{id}: {scopes:?}"
            );
            let target = intrinsic(field(props, "Target"));
            assert!(
                matches!(&target, Some((f, arg))
                    if f == "Sub" && arg.as_str() == Some("integrations/${ReaderIntegration}")),
                "{id} targets {target:?}"
            );
            text(props, "RouteKey").to_owned()
        })
        .collect()
}

/// The path the reader serves a data type at (`drs-quotas` at `/drs/quotas`).
fn path_of(data_type: DataType) -> String {
    format!("/{}", data_type.as_str().replacen('-', "/", 1))
}

#[test]
fn every_path_the_reader_serves_has_a_route_and_so_does_invalidation() {
    let routes = template_routes(&template());
    let expected: BTreeSet<String> = DataType::ALL
        .iter()
        .map(|&t| format!("GET {}", path_of(t)))
        .chain([
            INVALIDATE_ROUTE.to_owned(),
            format!("GET {}", drs_cache::read::inventory::INVENTORY_PATH),
            format!("GET {}", path_of(DataType::DrsCapacity)),
        ])
        .collect();
    assert_eq!(routes, expected);
}

#[tokio::test]
async fn every_route_reaches_a_path_the_reader_serves() {
    assert_eq!(INVALIDATE_ROUTE, format!("POST {INVALIDATE_PATH}"));
    let dir = tempfile::TempDir::new().unwrap();
    let choice = StoreChoice::Embedded(dir.path().join("cache.redb"));
    let store = app::open_store(&app::Aws::default(), &choice, None)
        .await
        .unwrap();
    let (queue, _receiver) = LocalRefreshQueue::new(16);
    let settings = ReaderSettings {
        capacity_key: Some(drs_cache::domain::CacheKey::fleet_capacity(
            drs_cache::domain::Region::parse("us-east-1").unwrap(),
        )),
        ..ReaderSettings::default()
    };
    let router = app::reader_router(
        store,
        Arc::new(queue),
        settings,
        Arc::new(Recorded::default()),
        None,
    );
    let status = |method: Method, path: &str, body: &'static str| {
        let request = ApiRequest {
            method,
            path: path.to_owned(),
            query: Vec::new(),
            if_none_match: None,
            accept_encoding: None,
            body: Bytes::from_static(body.as_bytes()),
        };
        let router = &router;
        async move { router.handle(&request).await.status() }
    };
    assert_eq!(
        status(Method::GET, "/drs/nothing-here", "").await,
        StatusCode::NOT_FOUND
    );
    for route in template_routes(&template()) {
        let (method, path) = route.split_once(' ').unwrap();
        let answer = match method {
            // Without `region` the reader refuses the request, but it knows the path.
            "GET" => status(Method::GET, path, "").await,
            "POST" => status(Method::POST, path, r#"{"dataType": "drs-quotas"}"#).await,
            other => panic!("{route}: method {other}"),
        };
        assert!(
            ![StatusCode::NOT_FOUND, StatusCode::METHOD_NOT_ALLOWED].contains(&answer),
            "{route}: {answer}"
        );
        if path == path_of(DataType::DrsCapacity) {
            // It takes no required parameter: nothing is cached yet.
            assert_eq!(answer, StatusCode::SERVICE_UNAVAILABLE, "{route}");
        } else if method == "GET" {
            assert_eq!(answer, StatusCode::BAD_REQUEST, "{route}");
        }
    }
}

#[test]
fn the_api_serves_paths_as_the_reader_sees_them() {
    let t = template();
    // The reader takes the path as it is only on the `$default` stage
    // (`read::lambda` strips any other stage name from it).
    let stage = properties(&t, "DefaultStage");
    assert_eq!(text(stage, "StageName"), "$default");
    assert_eq!(field(stage, "AutoDeploy"), &Value::Bool(true));
    assert_eq!(
        text(properties(&t, "HttpApi"), "ProtocolType"),
        "HTTP",
        "the reader parses HTTP API (v2) events"
    );
    // API Gateway may invoke the reader for the reads and for invalidation.
    let mut allowed = BTreeSet::new();
    for (id, permission) in resources_of(&t, "AWS::Lambda::Permission") {
        let props = field(permission, "Properties");
        assert_eq!(text(props, "Principal"), "apigateway.amazonaws.com", "{id}");
        assert!(
            is_get_att(field(props, "FunctionName"), "ReaderFunction", "Arn"),
            "{id}"
        );
        let Some((f, arn)) = intrinsic(field(props, "SourceArn")) else {
            panic!("{id}: SourceArn")
        };
        assert_eq!(f, "Sub", "{id}");
        let arn = arn.as_str().unwrap();
        let prefix =
            "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${HttpApi}/*/";
        allowed.insert(
            arn.strip_prefix(prefix)
                .unwrap_or_else(|| panic!("{id}: {arn}"))
                .to_owned(),
        );
    }
    assert_eq!(
        allowed,
        BTreeSet::from(["GET/*".to_owned(), "POST/cache/invalidate".to_owned()])
    );
}

// --- the functions ---------------------------------------------------------------

/// The parameters without a default, as scripts/deploy sets them.
const REQUIRED_PARAMETERS: [(&str, &str); 4] = [
    ("CodeBucket", "code-bucket"),
    ("ReaderCodeKey", "drs-cache/dev/functions/reader.zip"),
    ("PlannerCodeKey", "drs-cache/dev/functions/planner.zip"),
    ("RefresherCodeKey", "drs-cache/dev/functions/refresher.zip"),
];

/// The stack of `template` in `STACK_ACCOUNT` and `STACK_REGION` with the
/// given parameter values (and `REQUIRED_PARAMETERS`).
fn stack_of<'a>(template: &'a Value, parameters: &[(&str, &str)]) -> Stack<'a> {
    stack_in(template, STACK_REGION, parameters)
}

/// `stack_of` in `region`.
fn stack_in<'a>(template: &'a Value, region: &str, parameters: &[(&str, &str)]) -> Stack<'a> {
    REQUIRED_PARAMETERS.iter().chain(parameters).fold(
        Stack::new(template, STACK_ACCOUNT, region),
        |stack, (name, value)| stack.with(name, value),
    )
}

/// A function's environment, as the stack gives it.
trait FunctionEnvironment {
    /// The function's environment variables, evaluated.
    fn environment(&self, function: &str) -> BTreeMap<String, String>;

    /// `Env` over the function's environment, as the function reads it.
    fn env(&self, function: &str) -> Env<impl Fn(&str) -> Option<String> + 'static>;
}

impl FunctionEnvironment for Stack<'_> {
    fn environment(&self, function: &str) -> BTreeMap<String, String> {
        let properties = self.properties(function);
        let variables = properties["Environment"]["Variables"]
            .as_object()
            .unwrap_or_else(|| panic!("{function} has environment variables"));
        variables
            .iter()
            .map(|(name, value)| {
                let value = match value {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Number(n) => n.to_string(),
                    other => panic!("{function}: {name} is {other}"),
                };
                (name.clone(), value)
            })
            .collect()
    }

    fn env(&self, function: &str) -> Env<impl Fn(&str) -> Option<String> + 'static> {
        let environment = self.environment(function);
        Env(move |name: &str| environment.get(name).cloned())
    }
}

fn account(id: &str) -> AccountId {
    AccountId::parse(id).unwrap()
}

#[test]
fn the_reader_gets_every_variable_it_requires() {
    let t = template();
    let stack = stack_of(&t, &[]);
    let mut environment = stack.environment("ReaderFunction");
    let config = ReaderConfig::from_vars(&stack.env("ReaderFunction"))
        .unwrap_or_else(|e| panic!("{e} on the function"));
    assert_eq!(config.table, "physical-id-of-QueryCacheTable");
    // The stack's own workflow (Ref of a state machine is its ARN).
    assert_eq!(
        config.state_machine_arn,
        "physical-id-of-RefreshStateMachine"
    );
    // A read's refresh runs on the targets workflow.
    assert_eq!(
        config.targets_state_machine_arn.as_deref(),
        Some("physical-id-of-RefreshTargetsStateMachine")
    );
    // Reader settings keep the code's defaults, and the default account is the
    // stack's own.
    let settings = config.settings;
    assert_eq!(settings.default_account, Some(account(STACK_ACCOUNT)));
    assert_eq!(settings.memory_ttl, ReaderSettings::default().memory_ttl);
    assert_eq!(
        settings.store_timeout,
        ReaderSettings::default().store_timeout
    );
    // Both variables the stack sets are required: without either, the reader
    // refuses to start, naming it.
    for var in ["CACHE_TABLE_NAME", "REFRESH_STATE_MACHINE_ARN"] {
        let value = environment.remove(var).expect("the stack sets it");
        let without = environment.clone();
        let err = ReaderConfig::from_vars(&Env(move |name: &str| without.get(name).cloned()))
            .unwrap_err();
        assert_eq!(err.var, var);
        environment.insert(var.to_owned(), value);
    }
}

#[test]
fn a_deployment_account_parameter_overrides_the_stack_account_for_reads_only() {
    let t = template();
    let stack = stack_of(&t, &[("DeploymentAccountId", "444455556666")]);
    let settings = ReaderConfig::from_vars(&stack.env("ReaderFunction"))
        .unwrap()
        .settings;
    assert_eq!(settings.default_account, Some(account("444455556666")));
    // The functions read this stack's account with their own credentials, so
    // that is their home account whatever the reader serves by default ...
    let refresher = RefresherConfig::from_vars(&stack.env("RefresherFunction"))
        .unwrap()
        .settings;
    assert_eq!(refresher.home_account, account(STACK_ACCOUNT));
    let plan = PlannerConfig::from_vars(&stack.env("PlannerFunction"))
        .unwrap()
        .plan;
    assert_eq!(plan.home, account(STACK_ACCOUNT));
    // ... and the account the reader serves is the one kept fresh.
    assert_eq!(plan.accounts, [account("444455556666")]);
}

#[test]
fn the_planner_gets_the_variables_it_reads() {
    let t = template();
    // Defaults: the deployment's account and the stack's region, every type.
    let config = PlannerConfig::from_vars(&stack_of(&t, &[]).env("PlannerFunction"))
        .expect("a configuration the planner accepts")
        .plan;
    assert_eq!(config.home, account(STACK_ACCOUNT));
    assert_eq!(config.accounts, [account(STACK_ACCOUNT)]);
    assert_eq!(
        config
            .regions
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>(),
        [STACK_REGION]
    );
    assert_eq!(config.data_types, DataType::ALL);
    assert_eq!(config.schedule_interval, Duration::from_secs(60));
    assert_eq!(config.batch_size, 50);
    // Every parameter reaches it.
    let stack = stack_of(
        &t,
        &[
            ("AccountIds", "111111111111,222222222222"),
            ("Regions", "us-east-1,ap-southeast-2"),
            ("DataTypes", "drs-quotas,ec2-subnets"),
            ("ScheduleExpression", "rate(5 minutes)"),
            ("ScheduleIntervalSeconds", "300"),
            ("RefreshBatchSize", "25"),
        ],
    );
    let config = PlannerConfig::from_vars(&stack.env("PlannerFunction"))
        .unwrap()
        .plan;
    assert_eq!(
        config.accounts,
        [account("111111111111"), account("222222222222")]
    );
    assert_eq!(
        config
            .regions
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>(),
        ["us-east-1", "ap-southeast-2"]
    );
    assert_eq!(
        config.data_types,
        [DataType::DrsQuotas, DataType::Ec2Subnets]
    );
    assert_eq!(config.schedule_interval, Duration::from_secs(300));
    assert_eq!(config.batch_size, 25);
    assert_eq!(
        PlannerConfig::from_vars(&stack_of(&t, &[]).env("PlannerFunction"))
            .unwrap()
            .table,
        "physical-id-of-QueryCacheTable"
    );
}

#[test]
fn the_data_types_default_is_every_type_and_each_is_allowed() {
    let t = template();
    let parameter = field(field(&t, "Parameters"), "DataTypes");
    let default: Vec<&str> = text(parameter, "Default").split(',').collect();
    let all: Vec<&str> = DataType::ALL.iter().map(|d| d.as_str()).collect();
    assert_eq!(default, all);
    let pattern = text(parameter, "AllowedPattern");
    for data_type in all {
        assert!(pattern.contains(data_type), "{data_type} not allowed");
    }
}

#[test]
fn the_refresher_gets_the_variables_it_reads() {
    let t = template();
    let config = RefresherConfig::from_vars(&stack_of(&t, &[]).env("RefresherFunction"))
        .expect("a configuration the refresher accepts");
    assert_eq!(config.table, "physical-id-of-QueryCacheTable");
    // Follow-up runs start on this stack's state machine, named as it is.
    let stack = stack_of(&t, &[]);
    let name = stack.properties("RefreshStateMachine")["StateMachineName"]
        .as_str()
        .expect("a state machine name")
        .to_owned();
    assert_eq!(
        config.state_machine_arn,
        format!("arn:aws:states:{STACK_REGION}:{STACK_ACCOUNT}:stateMachine:{name}")
    );
    let targets = stack.properties("RefreshTargetsStateMachine")["StateMachineName"]
        .as_str()
        .expect("a state machine name")
        .to_owned();
    assert_eq!(
        config.targets_state_machine_arn,
        Some(format!(
            "arn:aws:states:{STACK_REGION}:{STACK_ACCOUNT}:stateMachine:{targets}"
        ))
    );
    let settings = config.settings;
    assert_eq!(settings.home_account, account(STACK_ACCOUNT));
    assert_eq!(settings.concurrency, DEFAULT_REFRESH_CONCURRENCY);
    let access = config.access;
    assert_eq!(access.own_account, Some(account(STACK_ACCOUNT)));
    let Credentials::AssumeRole {
        role_name,
        external_id,
        ..
    } = access.others
    else {
        panic!("other accounts are reached with AssumeRole")
    };
    assert_eq!(role_name, DEFAULT_ROLE_NAME);
    assert_eq!(external_id, None, "an empty parameter is no ExternalId");

    let stack = stack_of(
        &t,
        &[
            ("CrossAccountRoleName", "dr-metadata-reader"),
            ("CrossAccountExternalId", "drs-cache-prod"),
            ("RefreshConcurrency", "16"),
        ],
    );
    let config = RefresherConfig::from_vars(&stack.env("RefresherFunction")).unwrap();
    assert_eq!(config.settings.concurrency, 16);
    let Credentials::AssumeRole {
        role_name,
        external_id,
        ..
    } = config.access.others
    else {
        panic!("other accounts are reached with AssumeRole")
    };
    assert_eq!(role_name, "dr-metadata-reader");
    assert_eq!(external_id.as_deref(), Some("drs-cache-prod"));
}

/// What each function's configuration reads, as the configuration's Debug
/// form (the variables it asks for are recorded by [`variables_read`]).
type Read = fn(&Env<&dyn Fn(&str) -> Option<String>>) -> String;

/// Debug with every line sorted: sets and maps print their elements in no
/// fixed order, a changed value still changes a line.
fn canonical(debug: String) -> Vec<String> {
    let mut lines: Vec<String> = debug.lines().map(|l| l.trim().to_owned()).collect();
    lines.sort_unstable();
    lines
}

const FUNCTIONS: [(&str, Read); 3] = [
    ("ReaderFunction", |env| {
        format!("{:#?}", ReaderConfig::from_vars(env))
    }),
    ("PlannerFunction", |env| {
        format!("{:#?}", PlannerConfig::from_vars(env))
    }),
    ("RefresherFunction", |env| {
        format!("{:#?}", RefresherConfig::from_vars(env))
    }),
];

/// In every way of having the table: a shared deployment's
/// `DEPLOYMENT_REGION` and `REGION_OWNERS` are read too, and make another
/// configuration than a single deployment's.
#[test]
fn every_variable_set_on_a_function_is_one_its_code_reads() {
    let t = template();
    for (region, parameters) in TABLE_MODES {
        let stack = stack_in(&t, region, parameters);
        for (function, read) in FUNCTIONS {
            let environment = stack.environment(function);
            let asked = variables_read(&environment, read);
            for var in environment.keys() {
                assert!(
                    asked.contains(var),
                    "{function} sets {var}, which its configuration never reads ({parameters:?})"
                );
            }
            let shared = read(&Env(&|name: &str| environment.get(name).cloned()));
            assert!(!shared.starts_with("Err"), "{function}: {shared}");
            let single = read(&Env(&|name: &str| {
                (!["DEPLOYMENT_REGION", "REGION_OWNERS"].contains(&name))
                    .then(|| environment.get(name).cloned())
                    .flatten()
            }));
            assert_eq!(
                canonical(shared) == canonical(single),
                !environment.contains_key("DEPLOYMENT_REGION"),
                "{function}: DEPLOYMENT_REGION and REGION_OWNERS change its configuration ({parameters:?})"
            );
        }
    }
}

#[test]
fn each_function_runs_its_own_package() {
    let t = template();
    for (function, bin, key, role) in [
        ("ReaderFunction", "reader", "ReaderCodeKey", "ReaderRole"),
        (
            "PlannerFunction",
            "planner",
            "PlannerCodeKey",
            "PlannerRole",
        ),
        (
            "RefresherFunction",
            "refresher",
            "RefresherCodeKey",
            "RefresherRole",
        ),
    ] {
        let props = properties(&t, function);
        assert_eq!(text(props, "Runtime"), "provided.al2023", "{function}");
        assert_eq!(text(props, "Handler"), "bootstrap", "{function}");
        assert_eq!(
            text(field(props, "LoggingConfig"), "LogFormat"),
            "JSON",
            "{function}"
        );
        assert!(is_ref(&list(props, "Architectures")[0], "Architecture"));
        let code = field(props, "Code");
        assert!(is_ref(field(code, "S3Bucket"), "CodeBucket"), "{function}");
        assert!(is_ref(field(code, "S3Key"), key), "{function}");
        assert!(is_get_att(field(props, "Role"), role, "Arn"), "{function}");
        // Named like the binary and its `target/lambda/{bin}/` package.
        let name = format!("${{ProjectName}}-{bin}-${{Environment}}");
        assert!(is_sub(field(props, "FunctionName"), &name), "{function}");
        assert!(
            CARGO_TOML.contains(&format!("name = \"{bin}\"")),
            "no [[bin]] {bin} in Cargo.toml"
        );
    }
}

// --- roles ---------------------------------------------------------------------------

/// The actions a role's inline policies allow, each with the resources named
/// (a policy or a statement under `!If` counts as present).
fn granted<'a>(template: &'a Value, role: &str) -> BTreeMap<String, Vec<&'a Value>> {
    let mut granted: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for policy in list(properties(template, role), "Policies") {
        let policy = match intrinsic(policy) {
            Some((f, arg)) if f == "If" => &arg.as_sequence().expect("If takes a list")[1],
            _ => policy,
        };
        for statement in list(field(policy, "PolicyDocument"), "Statement") {
            let statement = match intrinsic(statement) {
                Some((f, arg)) if f == "If" => &arg.as_sequence().expect("If takes a list")[1],
                _ => statement,
            };
            assert_eq!(text(statement, "Effect"), "Allow");
            let actions: Vec<&str> = match field(statement, "Action") {
                Value::String(a) => vec![a.as_str()],
                Value::Sequence(items) => items.iter().filter_map(Value::as_str).collect(),
                other => panic!("Action {other:?}"),
            };
            let resources: Vec<&Value> = match field(statement, "Resource") {
                Value::Sequence(items) => items.iter().collect(),
                one => vec![one],
            };
            for action in actions {
                granted
                    .entry(action.to_owned())
                    .or_default()
                    .extend(resources.iter().copied());
            }
        }
    }
    granted
}

fn actions<'a>(granted: &'a BTreeMap<String, Vec<&Value>>) -> Vec<&'a str> {
    granted.keys().map(String::as_str).collect()
}

fn is_sub(value: &Value, text: &str) -> bool {
    matches!(intrinsic(value), Some((f, arg)) if f == "Sub" && arg.as_str() == Some(text))
}

/// The cache table in the stack's own region, as the roles name it: by name,
/// since with a global table it is a replica that no attribute of the stack
/// names.
const TABLE_ARN: &str = "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${ProjectName}-query-cache-${Environment}";

fn is_table(value: &Value) -> bool {
    is_sub(value, TABLE_ARN)
}

#[test]
fn the_reader_role_allows_reads_and_refresh_requests_only() {
    let t = template();
    let granted = granted(&t, "ReaderRole");
    // Which actions: tests/it/linked_calls.rs, from the binary. On what:
    assert!(granted["states:DescribeExecution"].iter().all(|r| is_sub(
        r,
        "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:${ProjectName}-refresh-${Environment}:*"
    )));
    for action in ["dynamodb:GetItem", "dynamodb:BatchGetItem"] {
        assert!(granted[action].iter().all(|r| is_table(r)), "{action}");
    }
    // Invalidations start the refresh workflow, a read's refresh the targets
    // workflow; nothing else.
    let started = &granted["states:StartExecution"];
    assert_eq!(started.len(), 2, "{started:?}");
    for machine in ["RefreshStateMachine", "RefreshTargetsStateMachine"] {
        assert!(started.iter().any(|r| is_ref(r, machine)), "{machine}");
    }
}

#[test]
fn the_planner_role_reads_the_table_writes_leases_and_plans_and_calls_nothing_upstream() {
    let t = template();
    let granted = granted(&t, "PlannerRole");
    // Which actions: tests/it/linked_calls.rs, from the binary. On what:
    // The customer-managed key, when KmsKeyArn names one, and nothing else.
    for action in ["kms:Decrypt", "kms:GenerateDataKey"] {
        assert!(
            granted[action].iter().all(|r| is_ref(r, "KmsKeyArn")),
            "{action}"
        );
    }
    // Plans only, under the prefix the bucket expires.
    assert!(
        granted["s3:PutObject"]
            .iter()
            .all(|r| is_sub(r, "${PlanBucket.Arn}/plans/*"))
    );
    let query = &granted["dynamodb:Query"];
    assert!(query.iter().any(|r| is_table(r)));
    assert!(
        query
            .iter()
            .any(|r| is_sub(r, &format!("{TABLE_ARN}/index/*"))),
        "Query on the dataType index"
    );
    for action in [
        "dynamodb:BatchGetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
        "dynamodb:BatchWriteItem",
    ] {
        assert!(granted[action].iter().all(|r| is_table(r)), "{action}");
    }
    // Every item write and read is bound to its own items: leases, the run
    // ledger, and the fleet capacity with its chunks.
    let statements = list(
        field(
            &list(properties(&t, "PlannerRole"), "Policies")[0],
            "PolicyDocument",
        ),
        "Statement",
    );
    let item_actions = [
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
    ];
    // (The statement under `!If` is the KMS key's.)
    for statement in statements.iter().filter(|s| intrinsic(s).is_none()) {
        let actions: Vec<&str> = match field(statement, "Action") {
            Value::String(a) => vec![a.as_str()],
            Value::Sequence(items) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if actions.iter().any(|a| item_actions.contains(a)) {
            let condition = field(field(statement, "Condition"), "ForAllValues:StringLike");
            let keys: Vec<&str> = list(condition, "dynamodb:LeadingKeys")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            assert!(
                keys.iter()
                    .all(|k| ["lease#*", "run#*", "warm#*", "drs-capacity#*"].contains(k)),
                "{keys:?}"
            );
        }
    }
}

#[test]
fn the_refresher_role_writes_the_table_reads_upstream_and_assumes_the_cross_account_role() {
    let t = template();
    let granted = granted(&t, "RefresherRole");
    // Which actions: tests/it/linked_calls.rs, from the binary. On what:
    for (action, resources) in &granted {
        if action.starts_with("states:") {
            // Follow-up runs, of this stack's two state machines only.
            assert_eq!(
                resources,
                &[
                    "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:${ProjectName}-refresh-${Environment}",
                    "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:${ProjectName}-refresh-targets-${Environment}"
                ],
                "{action}"
            );
        }
        if action.starts_with("dynamodb:") {
            assert!(resources.iter().all(|r| is_table(r)), "{action}");
        }
    }
    // The role the refresher's configuration names by default.
    assert!(granted["sts:AssumeRole"].iter().all(|r| is_sub(
        r,
        "arn:${AWS::Partition}:iam::*:role/${CrossAccountRoleName}"
    )));
    let parameter = field(field(&t, "Parameters"), "CrossAccountRoleName");
    assert_eq!(text(parameter, "Default"), DEFAULT_ROLE_NAME);
}

/// The `sts:AssumeRole` statement of the refresher's role in a stack with
/// `parameters`.
fn assume_role_statement(parameters: &[(&str, &str)]) -> serde_json::Value {
    let template = template();
    let role = stack_of(&template, parameters).properties("RefresherRole");
    role["Policies"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["PolicyDocument"]["Statement"].as_array().unwrap())
        .find(|s| s["Action"] == "sts:AssumeRole")
        .expect("an sts:AssumeRole statement")
        .clone()
}

#[test]
fn the_refresher_assumes_roles_only_in_the_accounts_it_refreshes_or_their_organization() {
    let listed = assume_role_statement(&[("AccountIds", "444455556666,777788889999")]);
    assert_eq!(
        listed["Condition"],
        serde_json::json!({"StringEquals": {"aws:ResourceAccount": ["444455556666", "777788889999"]}})
    );
    // No accounts listed: the stack's own, which needs no role at all.
    let own = assume_role_statement(&[]);
    assert_eq!(
        own["Condition"],
        serde_json::json!({"StringEquals": {"aws:ResourceAccount": [STACK_ACCOUNT]}})
    );
    // An organization holds any number of accounts in one condition.
    let organization = assume_role_statement(&[
        ("AccountIds", "444455556666"),
        ("OrganizationId", "o-a1b2c3d4e5"),
    ]);
    assert_eq!(
        organization["Condition"],
        serde_json::json!({"StringEquals": {"aws:ResourceOrgID": "o-a1b2c3d4e5"}})
    );
}

#[test]
fn the_workflow_role_invokes_both_functions_reads_plans_and_runs_its_own_child_executions() {
    let t = template();
    let granted = granted(&t, "RefreshStateMachineRole");
    let invoke = &granted["lambda:InvokeFunction"];
    for function in ["PlannerFunction", "RefresherFunction"] {
        assert!(
            invoke.iter().any(|r| is_get_att(r, function, "Arn")),
            "{function}"
        );
    }
    // The Distributed Map starts, describes and stops executions of this very
    // state machine, named by its name to avoid a circular dependency.
    let name = intrinsic(field(
        properties(&t, "RefreshStateMachine"),
        "StateMachineName",
    ))
    .and_then(|(f, arg)| (f == "Sub").then(|| arg.as_str().unwrap().to_owned()))
    .expect("StateMachineName is a !Sub");
    let machine = format!(
        "arn:${{AWS::Partition}}:states:${{AWS::Region}}:${{AWS::AccountId}}:stateMachine:{name}"
    );
    // Its children's executions, STANDARD or EXPRESS (`BatchExecutionType`).
    let executions = |kind: &str| {
        format!(
            "arn:${{AWS::Partition}}:states:${{AWS::Region}}:${{AWS::AccountId}}:{kind}:{name}/*"
        )
    };
    assert!(
        granted["states:StartExecution"]
            .iter()
            .all(|r| is_sub(r, &machine))
    );
    for action in ["states:DescribeExecution", "states:StopExecution"] {
        let resources = &granted[action];
        assert_eq!(resources.len(), 2, "{action}: {resources:?}");
        for kind in ["execution", "express"] {
            assert!(
                resources.iter().any(|r| is_sub(r, &executions(kind))),
                "{action} on {kind} executions"
            );
        }
    }
    // With a customer-managed key, the plans and results are under that key.
    for action in ["kms:Decrypt", "kms:GenerateDataKey"] {
        assert!(
            granted[action].iter().all(|r| is_ref(r, "KmsKeyArn")),
            "{action}"
        );
    }
    // The Map reads plans and writes its result files, each under its prefix.
    assert!(
        granted["s3:GetObject"]
            .iter()
            .all(|r| is_sub(r, "${PlanBucket.Arn}/plans/*"))
    );
    for action in [
        "s3:PutObject",
        "s3:ListMultipartUploadParts",
        "s3:AbortMultipartUpload",
    ] {
        assert!(
            granted[action]
                .iter()
                .all(|r| is_sub(r, "${PlanBucket.Arn}/results/*")),
            "{action}"
        );
    }
    // Nothing else but log delivery (when logging is on).
    for action in granted.keys() {
        assert!(
            action.starts_with("logs:")
                || action.starts_with("s3:")
                || action.starts_with("kms:")
                || action == "lambda:InvokeFunction"
                || action.starts_with("states:"),
            "{action}"
        );
    }
}

#[test]
fn schedules_and_rules_may_only_start_the_workflow() {
    let t = template();
    for role in ["RefreshScheduleRole", "RefreshEventRuleRole"] {
        let granted = granted(&t, role);
        // Scheduler also sends the ticks it could not deliver to the schedule's
        // dead-letter queue with its role (EventBridge rules need no role for
        // theirs: the queue's policy lets them).
        // With a customer-managed key, the queue's key too.
        let expected: &[&str] = if role == "RefreshScheduleRole" {
            &[
                "kms:Decrypt",
                "kms:GenerateDataKey",
                "sqs:SendMessage",
                "states:StartExecution",
            ]
        } else {
            &["states:StartExecution"]
        };
        assert_eq!(actions(&granted), expected, "{role}");
        assert!(
            granted["states:StartExecution"]
                .iter()
                .all(|r| is_ref(r, "RefreshStateMachine")),
            "{role}"
        );
        for action in ["kms:Decrypt", "kms:GenerateDataKey"] {
            if let Some(keys) = granted.get(action) {
                assert!(keys.iter().all(|r| is_ref(r, "KmsKeyArn")), "{role}");
            }
        }
        if let Some(queues) = granted.get("sqs:SendMessage") {
            assert!(
                queues
                    .iter()
                    .all(|r| is_get_att(r, "RefreshScheduleDeadLetterQueue", "Arn")),
                "{role}"
            );
        }
    }
}

// --- the schedule ----------------------------------------------------------------------

/// The period of a `rate(...)` expression.
fn rate_period(expression: &str) -> Duration {
    let inner = expression
        .strip_prefix("rate(")
        .and_then(|e| e.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{expression} is not a rate"));
    let (count, unit) = inner.split_once(' ').expect("rate(N unit)");
    let count: u64 = count.parse().expect("a count");
    let unit = match unit.trim_end_matches('s') {
        "minute" => 60,
        "hour" => 3600,
        "day" => 86_400,
        other => panic!("unit {other}"),
    };
    Duration::from_secs(count * unit)
}

#[test]
fn the_schedule_starts_a_scheduled_run_as_often_as_the_planner_is_told() {
    let t = template();
    let schedule = properties(&t, "RefreshSchedule");
    assert!(is_ref(
        field(schedule, "ScheduleExpression"),
        "ScheduleExpression"
    ));
    let target = field(schedule, "Target");
    assert!(is_ref(field(target, "Arn"), "RefreshStateMachine"));
    assert!(is_get_att(
        field(target, "RoleArn"),
        "RefreshScheduleRole",
        "Arn"
    ));
    // A tick it cannot deliver after its retries goes to an encrypted queue.
    assert!(field(target, "RetryPolicy").is_mapping());
    assert!(is_get_att(
        field(field(target, "DeadLetterConfig"), "Arn"),
        "RefreshScheduleDeadLetterQueue",
        "Arn"
    ));
    let queue = properties(&t, "RefreshScheduleDeadLetterQueue");
    // Encrypted: SQS-managed keys, or the customer-managed key KmsKeyArn names.
    let sse = intrinsic(field(queue, "SqsManagedSseEnabled"));
    assert!(
        matches!(&sse, Some((f, arg)) if f == "If"
            && arg[0].as_str() == Some("UseKmsKey")
            && arg[2] == Value::Bool(true)),
        "{sse:?}"
    );
    let kms = intrinsic(field(queue, "KmsMasterKeyId"));
    assert!(
        matches!(&kms, Some((f, arg)) if f == "If" && is_ref(&arg[1], "KmsKeyArn")),
        "{kms:?}"
    );
    let outputs = field(&t, "Outputs");
    assert!(is_ref(
        field(field(outputs, "RefreshScheduleDeadLetterQueueUrl"), "Value"),
        "RefreshScheduleDeadLetterQueue"
    ));
    assert!(is_get_att(
        field(field(outputs, "RefreshScheduleDeadLetterQueueArn"), "Value"),
        "RefreshScheduleDeadLetterQueue",
        "Arn"
    ));
    // The input, with the time Scheduler puts in, is a scheduled tick.
    let input: serde_json::Value = serde_json::from_str(text(target, "Input")).unwrap();
    assert_eq!(
        input,
        serde_json::json!({"trigger": "schedule", "time": "<aws.scheduler.scheduled-time>"})
    );
    let mut tick = input.clone();
    tick["time"] = "2024-05-14T09:00:00Z".into();
    assert_eq!(
        trigger::parse(&tick, account(STACK_ACCOUNT)),
        Ok(Trigger::Schedule)
    );
    // The planner's notion of the period matches the expression's.
    let parameters = field(&t, "Parameters");
    let expression = text(field(parameters, "ScheduleExpression"), "Default");
    assert_eq!(expression, "rate(1 minute)");
    let config = PlannerConfig::from_vars(&stack_of(&t, &[]).env("PlannerFunction"))
        .unwrap()
        .plan;
    assert_eq!(config.schedule_interval, rate_period(expression));
}

#[test]
fn the_outputs_name_the_workflow_and_every_function() {
    let t = template();
    let outputs = field(&t, "Outputs");
    assert!(is_ref(
        field(field(outputs, "RefreshStateMachineArn"), "Value"),
        "RefreshStateMachine"
    ));
    for function in ["ReaderFunction", "PlannerFunction", "RefresherFunction"] {
        let output = field(outputs, &format!("{function}Arn"));
        assert!(
            is_get_att(field(output, "Value"), function, "Arn"),
            "{function}"
        );
    }
    // The reader's workflow is this stack's own now.
    assert!(
        field(&t, "Parameters")
            .get("RefreshStateMachineArn")
            .is_none()
    );
}

/// Every variable `read` asks for when given `environment`, in the order asked.
fn variables_read<T>(
    environment: &BTreeMap<String, String>,
    read: impl Fn(&Env<&dyn Fn(&str) -> Option<String>>) -> T,
) -> Vec<String> {
    let asked = std::sync::Mutex::new(Vec::new());
    let lookup = |name: &str| {
        asked.lock().unwrap().push(name.to_owned());
        environment.get(name).cloned()
    };
    read(&Env(&lookup));
    let mut asked = asked.into_inner().unwrap();
    asked.dedup();
    asked
}

/// Each function's template environment sets every variable its configuration
/// reads (all but the SDK's own `AWS_*`; those of a shared deployment,
/// `DEPLOYMENT_REGION` and `REGION_OWNERS`, in a shared deployment's stack,
/// and `ACCOUNT_LIST_URI` in one with an account list object),
/// each tuning variable from a parameter whose default gives the same
/// configuration as the code's own default.
#[test]
fn every_variable_a_function_reads_is_set_and_each_default_is_the_codes() {
    let t = template();
    let stack = stack_of(&t, &[]);
    let parameters = field(&t, "Parameters");
    for (function, read) in FUNCTIONS {
        let environment = stack.environment(function);
        let mut set_somewhere: BTreeSet<String> = BTreeSet::new();
        for (region, parameters) in TABLE_MODES {
            let environment = stack_in(&t, region, parameters).environment(function);
            set_somewhere.extend(environment.into_keys());
        }
        // A large fleet's account list object.
        let listed = [
            ("AccountListObject", ACCOUNT_LIST),
            ("OrganizationId", ORGANIZATION),
        ];
        set_somewhere.extend(stack_of(&t, &listed).environment(function).into_keys());
        let asked = variables_read(&environment, read);
        let unset: Vec<&String> = asked
            .iter()
            .filter(|v| !v.starts_with("AWS_") && !set_somewhere.contains(*v))
            .collect();
        assert!(
            unset.is_empty(),
            "{function} reads but the template never sets {unset:?}"
        );

        let deployed = read(&Env(&|name: &str| environment.get(name).cloned()));
        assert!(!deployed.starts_with("Err"), "{function}: {deployed}");
        let deployed = canonical(deployed);
        let variables = field(field(properties(&t, function), "Environment"), "Variables");
        for (name, value) in variables.as_mapping().unwrap() {
            let name = name.as_str().unwrap();
            // Tuning variables come from a parameter of the same default.
            let Some(("Ref", parameter)) = intrinsic(value)
                .as_ref()
                .map(|(f, arg)| (f.as_str(), arg.as_str().unwrap_or_default()))
            else {
                continue;
            };
            let Some(declared) = parameters.get(parameter) else {
                continue; // a resource
            };
            let without = read(&Env(&|n: &str| {
                (n != name).then(|| environment.get(n).cloned()).flatten()
            }));
            if without.starts_with("Err") {
                continue; // required: no code default to agree with
            }
            assert!(
                declared.get("Default").is_some(),
                "{parameter} has no default"
            );
            assert_eq!(
                deployed,
                canonical(without),
                "{function}: {name} = {parameter}'s default changes the code's default"
            );
        }
    }
}

// --- a fleet of a thousand accounts in every region ------------------------------------

/// Lambda's limit on a function's environment: 4 KB of names and values.
const LAMBDA_ENVIRONMENT_BYTES: usize = 4 * 1024;
/// EventBridge's default limit on an event pattern.
const EVENT_PATTERN_CHARACTERS: usize = 2_048;
/// IAM's limit on a role's inline policies together, whitespace not counted.
const ROLE_POLICY_CHARACTERS: usize = 10_240;
/// EventBridge's limit on an event bus's resource policy.
const BUS_POLICY_CHARACTERS: usize = 10_240;
/// CloudFormation's limit on a parameter's value.
const PARAMETER_BYTES: usize = 4_096;
const ORGANIZATION: &str = "o-a1b2c3d4e5";
const ACCOUNT_LIST: &str =
    "s3://drs-cache-code-111122223333/prod/accounts/0123456789abcdef-accounts.txt";

/// `n` account IDs.
fn accounts(n: u64) -> Vec<String> {
    (0..n)
        .map(|i| format!("{:012}", 100_000_000_000 + i))
        .collect()
}

/// The parameters of a deployment in `HOME` refreshing all 28 regions over a
/// global table with a second deployment in us-west-2, which owns the other
/// western regions, and `more`.
fn every_region(more: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    let regions = drs_cache::cost::simulate::REGIONS;
    let owners: Vec<String> = regions
        .iter()
        .filter(|r| !["us-east-1", "us-west-2"].contains(r))
        .map(|r| {
            let owner = if r.starts_with("us-west") || r.starts_with("ap-") {
                "us-west-2"
            } else {
                "us-east-1"
            };
            format!("{r}={owner}")
        })
        .collect();
    let mut parameters = vec![
        ("Regions", regions.join(",")),
        ("ReplicaRegions", "us-west-2".to_owned()),
        ("RegionOwners", owners.join(",")),
    ];
    parameters.extend(more.iter().cloned());
    parameters
}

fn stack_with<'a>(template: &'a Value, parameters: &[(&'static str, String)]) -> Stack<'a> {
    let pairs: Vec<(&str, &str)> = parameters.iter().map(|(k, v)| (*k, v.as_str())).collect();
    stack_in(template, HOME, &pairs)
}

/// Characters of `json` as IAM counts them: whitespace outside strings is not.
fn compact_len(json: &serde_json::Value) -> usize {
    serde_json::to_string(json).unwrap().len()
}

/// Every size limit a deployment of `parameters` could reach: each function's
/// environment, each rule's pattern, each role's inline policies, the bus
/// policy and each parameter value, with what it measured.
fn assert_within_limits(stack: &Stack, parameters: &[(&'static str, String)]) -> Vec<String> {
    let mut measured = Vec::new();
    for (name, value) in parameters {
        assert!(
            value.len() <= PARAMETER_BYTES,
            "{name}: {} bytes",
            value.len()
        );
    }
    for (function, _) in FUNCTIONS {
        let environment = stack.environment(function);
        let bytes: usize = environment.iter().map(|(k, v)| k.len() + v.len()).sum();
        assert!(
            bytes <= LAMBDA_ENVIRONMENT_BYTES,
            "{function}'s environment holds {bytes} bytes"
        );
        measured.push(format!("{function} environment {bytes} B"));
    }
    for (rule, properties) in stack.resources_of("AWS::Events::Rule") {
        let Some(pattern) = properties.get("EventPattern") else {
            continue;
        };
        let characters = compact_len(pattern);
        assert!(
            characters <= EVENT_PATTERN_CHARACTERS,
            "{rule}'s pattern has {characters} characters"
        );
        measured.push(format!("{rule} pattern {characters}"));
    }
    for (role, properties) in stack.resources_of("AWS::IAM::Role") {
        let characters: usize = properties
            .get("Policies")
            .and_then(serde_json::Value::as_array)
            .map(|policies| policies.iter().map(compact_len).sum())
            .unwrap_or_default();
        assert!(
            characters <= ROLE_POLICY_CHARACTERS,
            "{role}'s inline policies have {characters} characters"
        );
        measured.push(format!("{role} policies {characters}"));
    }
    let bus = compact_len(&stack.properties("ForwardedEventsBusPolicy")["Statement"]);
    assert!(
        bus <= BUS_POLICY_CHARACTERS,
        "the bus policy has {bus} characters"
    );
    measured.push(format!("bus policy {bus}"));
    measured
}

/// A fleet of 1,000 accounts in all 28 regions deploys: its accounts are in
/// an S3 object, which no limit of the stack sees, and everything the stack
/// does list (regions, owners) fits Lambda's environment, EventBridge's
/// patterns and policies, and IAM's policy size.
#[test]
fn a_thousand_accounts_in_every_region_fit_every_size_limit_of_the_stack() {
    let t = template();
    let parameters = every_region(&[
        ("AccountListObject", ACCOUNT_LIST.to_owned()),
        ("OrganizationId", ORGANIZATION.to_owned()),
    ]);
    let stack = stack_with(&t, &parameters);
    assert!(
        stack.broken_rules().is_empty(),
        "{:?}",
        stack.broken_rules()
    );
    let measured = assert_within_limits(&stack, &parameters);
    assert!(!measured.is_empty());
}

/// The largest fleets `AccountIds` holds with no organization, 100 accounts
/// in 4 regions and 70 in all 28 (the rules' account and region filters share
/// one pattern): the list reaches the environments, the rules' account
/// filters, the bus policy and the AssumeRole condition, all within limits.
#[test]
fn a_hundred_listed_accounts_in_four_regions_or_seventy_in_every_region_fit_the_stack() {
    let t = template();
    let four = [
        ("AccountIds", accounts(100).join(",")),
        ("Regions", drs_cache::cost::simulate::REGIONS[..4].join(",")),
    ];
    let stack = stack_with(&t, &four);
    assert!(
        stack.broken_rules().is_empty(),
        "{:?}",
        stack.broken_rules()
    );
    assert_within_limits(&stack, &four);
    let parameters = every_region(&[("AccountIds", accounts(70).join(","))]);
    let stack = stack_with(&t, &parameters);
    assert!(
        stack.broken_rules().is_empty(),
        "{:?}",
        stack.broken_rules()
    );
    assert_within_limits(&stack, &parameters);
}

/// With an account list object the reader and the planner read the object
/// (and may read it, nothing else in its bucket), not `ACCOUNT_IDS`; the
/// rules filter by region but not by account, which the organization's bus
/// policy and the planner's own list do; the object needs an organization
/// and excludes `AccountIds`.
#[test]
fn an_account_list_object_replaces_account_ids_for_the_reader_and_the_planner() {
    let t = template();
    let stack = stack_of(
        &t,
        &[
            ("AccountListObject", ACCOUNT_LIST),
            ("OrganizationId", ORGANIZATION),
            ("Regions", "eu-west-1,eu-central-1"),
        ],
    );
    for (function, role) in [
        ("ReaderFunction", "ReaderRole"),
        ("PlannerFunction", "PlannerRole"),
    ] {
        let environment = stack.environment(function);
        assert_eq!(
            environment.get("ACCOUNT_LIST_URI").map(String::as_str),
            Some(ACCOUNT_LIST)
        );
        assert!(!environment.contains_key("ACCOUNT_IDS"), "{function}");
        let grants = crate::support::cfn::granted(&stack.properties(role));
        assert_eq!(
            grants["s3:GetObject"],
            BTreeSet::from([format!(
                "arn:aws:s3:::{}",
                ACCOUNT_LIST.trim_start_matches("s3://")
            )]),
            "{role}"
        );
    }
    let refresher = stack.environment("RefresherFunction");
    assert!(!refresher.contains_key("ACCOUNT_LIST_URI"));
    for rule in [
        "DrsEventRule",
        "Ec2ChangeRule",
        "IamInstanceProfileChangeRule",
    ] {
        let pattern = &stack.properties(rule)["EventPattern"];
        assert!(pattern.get("account").is_none(), "{rule}: {pattern}");
    }
    for rule in ["DrsEventRule", "Ec2ChangeRule"] {
        let pattern = &stack.properties(rule)["EventPattern"];
        assert_eq!(
            pattern["region"],
            serde_json::json!(["eu-west-1", "eu-central-1"]),
            "{rule}"
        );
    }
    // IAM's events come from us-east-1, whichever regions are refreshed.
    let iam = &stack.properties("IamInstanceProfileChangeRule")["EventPattern"];
    assert!(iam.get("region").is_none(), "{iam}");
    // Without the object each function names its accounts; the rules too.
    let listed = stack_of(&t, &[("AccountIds", "111111111111,222222222222")]);
    for function in ["ReaderFunction", "PlannerFunction"] {
        let environment = listed.environment(function);
        assert!(!environment.contains_key("ACCOUNT_LIST_URI"), "{function}");
        assert_eq!(environment["ACCOUNT_IDS"], "111111111111,222222222222");
    }
    assert_eq!(
        listed.properties("DrsEventRule")["EventPattern"]["region"],
        serde_json::json!([STACK_REGION])
    );
    assert!(
        !crate::support::cfn::granted(&listed.properties("ReaderRole"))
            .contains_key("s3:GetObject")
    );

    let broken = |parameters: &[(&str, &str)]| stack_of(&t, parameters).broken_rules();
    assert_eq!(
        broken(&[("AccountListObject", ACCOUNT_LIST)]),
        ["AccountListNeedsAnOrganization"]
    );
    assert_eq!(
        broken(&[
            ("AccountListObject", ACCOUNT_LIST),
            ("OrganizationId", ORGANIZATION),
            ("AccountIds", "111111111111"),
        ]),
        ["AccountListNeedsAnOrganization"]
    );
    let pattern = allowed_pattern(&t, "AccountListObject");
    for good in ["", ACCOUNT_LIST, "s3://b.c-d/k"] {
        assert!(pattern.is_match(good), "{good}");
    }
    for bad in [
        "s3://bucket",
        "s3://bucket/",
        "https://bucket/key",
        "s3://Bucket/key",
        "s3://b/k k",
    ] {
        assert!(!pattern.is_match(bad), "{bad}");
    }
}

/// The object the stack names, on moto's S3, gives the reader and the planner
/// the thousand accounts it lists, through the same read the functions make
/// at start-up; an object that is not there stops the function with an error
/// naming `ACCOUNT_LIST_URI` and the object.
#[tokio::test]
async fn the_functions_read_a_thousand_accounts_from_the_account_list_object_on_s3() {
    let s3 = moto::s3_client(moto::endpoint());
    let bucket = moto::unique_name("accounts");
    moto::ensure_bucket(&s3, &bucket).await;
    let key = "prod/accounts/0123456789abcdef-accounts.txt";
    let listed = accounts(1_000);
    let text = format!("# the DR fleet\n{}\n", listed.join("\n"));
    s3.put_object()
        .bucket(&bucket)
        .key(key)
        .body(text.into_bytes().into())
        .send()
        .await
        .expect("moto stores the account list");
    let t = template();
    let uri = format!("s3://{bucket}/{key}");
    let stack = stack_of(
        &t,
        &[
            ("AccountListObject", &uri),
            ("OrganizationId", ORGANIZATION),
        ],
    );
    let read = |uri: drs_cache::config::AccountListUri| {
        let s3 = s3.clone();
        async move {
            drs_cache::adapters::s3::read_text(
                &s3,
                &uri.bucket,
                &uri.key,
                drs_cache::config::MAX_ACCOUNT_LIST_BYTES,
            )
            .await
        }
    };
    let resolve = async |env: Env<_>| {
        let accounts = drs_cache::config::read_account_list(&env, read).await?;
        Ok::<_, drs_cache::config::EnvError>(env.with_accounts(accounts.as_deref()))
    };
    let planner = resolve(stack.env("PlannerFunction")).await.unwrap();
    let plan = PlannerConfig::from_vars(&planner).unwrap().plan;
    let planned: Vec<String> = plan.accounts.iter().map(|a| a.to_string()).collect();
    assert_eq!(planned, listed);
    let reader = resolve(stack.env("ReaderFunction")).await.unwrap();
    let kept = ReaderConfig::from_vars(&reader)
        .unwrap()
        .settings
        .kept
        .unwrap();
    assert!(
        kept.check_parts(None, None, Some(account(&listed[999])))
            .is_ok()
    );
    assert!(
        kept.check_parts(None, None, Some(account("999999999999")))
            .is_err()
    );

    let missing = stack_of(
        &t,
        &[
            ("AccountListObject", &format!("s3://{bucket}/no-such-key")),
            ("OrganizationId", ORGANIZATION),
        ],
    );
    let err = resolve(missing.env("ReaderFunction"))
        .await
        .err()
        .expect("a missing object is an error");
    assert_eq!(err.var, "ACCOUNT_LIST_URI");
    assert!(
        err.reason
            .contains(&format!("s3://{bucket}/no-such-key cannot be read"))
            && err.reason.contains("NoSuchKey"),
        "{err}"
    );
}
