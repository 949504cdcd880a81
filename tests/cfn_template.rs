//! The read side's CloudFormation template agrees with the code: the cache table
//! is the one `create_table` makes, the HTTP API has a route for every path the
//! reader serves, and the reader function gets the variables it reads.

mod support;

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

use drs_cache::{
    adapters::{dynamodb::INDEX_BY_DATA_TYPE, local_queue::LocalRefreshQueue},
    app::{self, StoreChoice},
    config::Env,
    domain::DataType,
    read::{ApiRequest, ReaderSettings, metrics::Recorded},
};
use http::{Method, StatusCode};
use serde_norway::Value;
use support::moto;

const TEMPLATE: &str = include_str!("../cfn/drs-cache.yaml");
const READER_MAIN: &str = include_str!("../src/bin/reader.rs");

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

/// The resources of one type, by logical ID.
fn resources_of<'a>(template: &'a Value, ty: &str) -> BTreeMap<&'a str, &'a Value> {
    field(template, "Resources")
        .as_mapping()
        .expect("Resources is a mapping")
        .iter()
        .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(ty))
        .map(|(id, r)| (id.as_str().expect("logical IDs are strings"), r))
        .collect()
}

/// An intrinsic function call, short form (`!Ref X`) or long (`Ref: X`,
/// `Fn::GetAtt: [...]`): its name without `Fn::`, and its argument.
fn intrinsic(value: &Value) -> Option<(String, &Value)> {
    match value {
        Value::Tagged(tagged) => Some((
            tagged.tag.to_string().trim_start_matches('!').to_owned(),
            &tagged.value,
        )),
        Value::Mapping(m) if m.len() == 1 => {
            let (name, argument) = m.iter().next()?;
            let name = name.as_str()?;
            (name == "Ref" || name.starts_with("Fn::"))
                .then(|| (name.trim_start_matches("Fn::").to_owned(), argument))
        }
        _ => None,
    }
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
    assert_eq!(parameter.as_str(), Some("false"));
}

// --- the HTTP API --------------------------------------------------------------

/// `GET` route keys of the API, each checked to lead to the reader.
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
fn every_path_the_reader_serves_has_a_route() {
    let routes = template_routes(&template());
    let expected: BTreeSet<String> = DataType::ALL
        .iter()
        .map(|&t| format!("GET {}", path_of(t)))
        .collect();
    assert_eq!(routes, expected);
}

#[tokio::test]
async fn every_route_reaches_a_path_the_reader_serves() {
    let dir = tempfile::TempDir::new().unwrap();
    let choice = StoreChoice::Embedded(dir.path().join("cache.redb"));
    let store = app::open_store(&app::Aws::default(), &choice)
        .await
        .unwrap();
    let (queue, _receiver) = LocalRefreshQueue::new(16);
    let router = app::reader_router(
        store,
        Arc::new(queue),
        ReaderSettings::default(),
        Arc::new(Recorded::default()),
    );
    let status = |path: &str| {
        let request = ApiRequest {
            method: Method::GET,
            path: path.to_owned(),
            query: Vec::new(),
            if_none_match: None,
        };
        let router = &router;
        async move { router.handle(&request).await.status() }
    };
    assert_eq!(status("/drs/nothing-here").await, StatusCode::NOT_FOUND);
    for route in template_routes(&template()) {
        let path = route.strip_prefix("GET ").expect("GET routes only");
        // Without `region` the reader refuses the request, but it knows the path.
        assert_eq!(status(path).await, StatusCode::BAD_REQUEST, "{route}");
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
    let permission = properties(&t, "ReaderInvokePermission");
    assert_eq!(text(permission, "Principal"), "apigateway.amazonaws.com");
    assert!(is_get_att(
        field(permission, "FunctionName"),
        "ReaderFunction",
        "Arn"
    ));
}

// --- the reader function ---------------------------------------------------------

/// Evaluates the intrinsics the function's environment uses, as CloudFormation
/// would for a stack in `account` with the given parameter values.
struct Stack<'a> {
    template: &'a Value,
    parameters: BTreeMap<&'a str, &'a str>,
    account: &'a str,
}

impl Stack<'_> {
    fn resolve(&self, value: &Value) -> String {
        if let Value::String(s) = value {
            return s.clone();
        }
        match intrinsic(value) {
            Some((f, arg)) if f == "Ref" => {
                let name = arg.as_str().expect("Ref takes a name");
                if name == "AWS::AccountId" {
                    return self.account.to_owned();
                }
                if let Some(value) = self.parameters.get(name) {
                    return (*value).to_owned();
                }
                let parameter = self.template.get("Parameters").and_then(|p| p.get(name));
                match parameter {
                    Some(p) => p
                        .get("Default")
                        .and_then(Value::as_str)
                        .unwrap_or_else(|| panic!("parameter {name} needs a value"))
                        .to_owned(),
                    // A resource: its physical ID.
                    None => format!("physical-id-of-{name}"),
                }
            }
            Some((f, arg)) if f == "If" => {
                let [condition, then, otherwise] =
                    arg.as_sequence().expect("If takes a list").as_slice()
                else {
                    panic!("If takes three arguments: {arg:?}");
                };
                let condition = condition.as_str().expect("a condition name");
                if self.condition(condition) {
                    self.resolve(then)
                } else {
                    self.resolve(otherwise)
                }
            }
            other => panic!("cannot evaluate {other:?}"),
        }
    }

    fn condition(&self, name: &str) -> bool {
        let condition = field(field(self.template, "Conditions"), name);
        match intrinsic(condition) {
            Some((f, arg)) if f == "Equals" => {
                let [a, b] = arg.as_sequence().expect("Equals takes a list").as_slice() else {
                    panic!("Equals takes two arguments: {arg:?}");
                };
                self.resolve(a) == self.resolve(b)
            }
            other => panic!("cannot evaluate condition {name}: {other:?}"),
        }
    }

    /// The function's environment variables, evaluated.
    fn function_environment(&self) -> BTreeMap<String, String> {
        let variables = field(
            field(properties(self.template, "ReaderFunction"), "Environment"),
            "Variables",
        );
        variables
            .as_mapping()
            .expect("Variables is a mapping")
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().expect("variable names").to_owned(),
                    self.resolve(value),
                )
            })
            .collect()
    }
}

/// The variables `src/bin/reader.rs` reads with `env.required(..)`.
fn required_by_reader() -> BTreeSet<&'static str> {
    READER_MAIN
        .split("required(\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect()
}

#[test]
fn the_function_gets_every_variable_the_reader_requires() {
    let t = template();
    let stack = Stack {
        template: &t,
        parameters: BTreeMap::from([(
            "RefreshStateMachineArn",
            "arn:aws:states:us-east-1:111122223333:stateMachine:refresh",
        )]),
        account: "111122223333",
    };
    let environment = stack.function_environment();
    let required = required_by_reader();
    assert!(
        required.contains("CACHE_TABLE_NAME") && required.contains("REFRESH_STATE_MACHINE_ARN"),
        "reader.rs requires {required:?}"
    );
    let env = Env(|name: &str| environment.get(name).cloned());
    for var in &required {
        env.required(var)
            .unwrap_or_else(|e| panic!("{e} on the function"));
    }
    assert_eq!(env.table_name(), "physical-id-of-QueryCacheTable");
    assert_eq!(
        environment["REFRESH_STATE_MACHINE_ARN"],
        "arn:aws:states:us-east-1:111122223333:stateMachine:refresh"
    );
    // Reader settings keep the code's defaults, and the default account is the
    // stack's own.
    let settings = env.reader_settings().expect("settings the reader accepts");
    assert_eq!(
        settings.default_account.map(|a| a.as_str().to_owned()),
        Some("111122223333".into())
    );
    assert_eq!(settings.memory_ttl, ReaderSettings::default().memory_ttl);
    assert_eq!(
        settings.store_timeout,
        ReaderSettings::default().store_timeout
    );
}

#[test]
fn a_deployment_account_parameter_overrides_the_stack_account() {
    let t = template();
    let stack = Stack {
        template: &t,
        parameters: BTreeMap::from([
            ("DeploymentAccountId", "444455556666"),
            (
                "RefreshStateMachineArn",
                "arn:aws:states:us-east-1:111122223333:stateMachine:refresh",
            ),
        ]),
        account: "111122223333",
    };
    let environment = stack.function_environment();
    let settings = Env(|name: &str| environment.get(name).cloned())
        .reader_settings()
        .unwrap();
    assert_eq!(
        settings.default_account.map(|a| a.as_str().to_owned()),
        Some("444455556666".into())
    );
}

#[test]
fn the_function_runs_the_reader_package() {
    let t = template();
    let function = properties(&t, "ReaderFunction");
    assert_eq!(text(function, "Runtime"), "provided.al2023");
    assert_eq!(text(function, "Handler"), "bootstrap");
    assert_eq!(text(field(function, "LoggingConfig"), "LogFormat"), "JSON");
    assert!(is_ref(&list(function, "Architectures")[0], "Architecture"));
    assert!(is_ref(
        field(field(function, "Code"), "S3Key"),
        "ReaderCodeKey"
    ));
    assert!(is_get_att(field(function, "Role"), "ReaderRole", "Arn"));
}

#[test]
fn the_role_allows_reads_and_refresh_requests_only() {
    let t = template();
    let role = properties(&t, "ReaderRole");
    let mut granted: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for policy in list(role, "Policies") {
        for statement in list(field(policy, "PolicyDocument"), "Statement") {
            assert_eq!(text(statement, "Effect"), "Allow");
            let actions: Vec<&str> = match field(statement, "Action") {
                Value::String(a) => vec![a.as_str()],
                Value::Sequence(items) => items.iter().filter_map(Value::as_str).collect(),
                other => panic!("Action {other:?}"),
            };
            for action in actions {
                granted
                    .entry(action.to_owned())
                    .or_default()
                    .push(field(statement, "Resource"));
            }
        }
    }
    // `DynamoDbStore::get` reads a head with GetItem and its chunks with
    // BatchGetItem; refresh requests are StartExecution.
    assert_eq!(
        granted.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "dynamodb:BatchGetItem",
            "dynamodb:GetItem",
            "states:StartExecution"
        ]
    );
    for action in ["dynamodb:GetItem", "dynamodb:BatchGetItem"] {
        let resources = &granted[action];
        assert!(
            resources
                .iter()
                .all(|r| is_get_att(r, "QueryCacheTable", "Arn")),
            "{action} on {resources:?}"
        );
    }
    assert!(
        granted["states:StartExecution"]
            .iter()
            .all(|r| is_ref(r, "RefreshStateMachineArn"))
    );
}
