//! The main template on moto's CloudFormation: where moto supports the
//! resource types, `cfn/drs-cache.yaml` creates a stack there, every resource
//! moto lists is in its service, and every output names what moto holds.
//!
//! moto 5.2.5 cannot create some of the template's resource types
//! (`NOT_IN_MOTO`: a test holds that list to what moto skips). They are taken
//! out, with the outputs naming them, and what else refers to them is given a
//! stand-in value (`for_moto`). The expected values come from the template as
//! `support::cfn` evaluates it for the stack, its placeholders replaced by
//! what moto's services answer for each resource (`OnMoto::real`).

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::LazyLock,
};

use crate::support::{
    cfn::{self, Stack},
    moto, workflow,
};
use regex::Regex;
use serde_json::{Map, Value as Json, json};
use serde_norway::Value as Yaml;

const TEMPLATE: &str = include_str!("../../cfn/drs-cache.yaml");
/// Where the template's relative paths start (`DefinitionS3Location`).
const TEMPLATE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/cfn");
const REGION: &str = "us-east-1";

/// The resource types of the template moto 5.2.5's CloudFormation cannot
/// create. None has a `CloudFormationModel` in moto, so
/// `resource_class_from_type` (moto/cloudformation/parsing.py) finds no class
/// for it and `parse_resource` skips the resource with the warning "Tried to
/// parse ... but it's not supported by moto's CloudFormation implementation".
const NOT_IN_MOTO: [&str; 13] = [
    // moto/dynamodb/models/table.py: `Table` is the only DynamoDB model
    // (`AWS::DynamoDB::Table`); moto implements no global table call either
    // (create_global_table, and update_table ignores ReplicaUpdates). So the
    // stacks here keep the default parameters, whose table is QueryCacheTable:
    // the global-table mode (GlobalCacheTable, with ReplicaRegions) is checked
    // by cfn-lint (scripts/lint-cfn) and on the evaluated template
    // (tests/it/cfn_template.rs).
    "AWS::DynamoDB::GlobalTable",
    // moto/apigatewayv2/models.py has the HTTP API's backend, but its Api,
    // Integration, Route, Authorizer and Stage are plain `BaseModel`s.
    "AWS::ApiGatewayV2::Api",
    "AWS::ApiGatewayV2::Integration",
    "AWS::ApiGatewayV2::Route",
    "AWS::ApiGatewayV2::Authorizer",
    "AWS::ApiGatewayV2::Stage",
    // moto/cloudwatch/models.py: `Alarm` is a `BaseModel`; only `Dashboard`
    // is a CloudFormation model.
    "AWS::CloudWatch::Alarm",
    // moto/events/models.py models Rule, EventBus and Archive; a bus's
    // statements exist only through PutPermission.
    "AWS::Events::EventBusPolicy",
    // moto/s3/models.py models the bucket (`FakeBucket`) only.
    "AWS::S3::BucketPolicy",
    // moto/scheduler/models.py: `Schedule` is a `BaseModel`.
    "AWS::Scheduler::Schedule",
    // moto/sns/models.py models the topic only; `Subscription` is a
    // `BaseModel`, and a topic policy is an attribute set by SetTopicAttributes.
    "AWS::SNS::Subscription",
    "AWS::SNS::TopicPolicy",
    // moto/sqs/models.py models the queue only.
    "AWS::SQS::QueuePolicy",
];

/// The parameters a stack needs: the code packages, which moto's Lambda
/// reads from its S3 when it creates a function.
const CODE_KEYS: [(&str, &str); 3] = [
    ("ReaderCodeKey", "reader/bootstrap.zip"),
    ("PlannerCodeKey", "planner/bootstrap.zip"),
    ("RefresherCodeKey", "refresher/bootstrap.zip"),
];

/// An empty zip archive (its end-of-central-directory record alone).
const EMPTY_ZIP: [u8; 22] = *b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";

fn template() -> Yaml {
    serde_norway::from_str(TEMPLATE).expect("cfn/drs-cache.yaml is YAML")
}

fn text(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

// --- the template as moto can create it -------------------------------------------

/// The template in JSON as moto's CloudFormation can create it, and what was
/// taken out.
struct ForMoto {
    body: String,
    /// Logical IDs of the resources taken out.
    removed: BTreeSet<String>,
    /// Outputs taken out, for naming a resource taken out.
    removed_outputs: BTreeSet<String>,
}

/// `template` for the stack `stack` on moto: the resources of the types in
/// `remove` taken out, with the outputs that name them; wherever a resource
/// kept names one (`Ref`, `Fn::GetAtt`, `${...}` of `Fn::Sub`), a stand-in
/// string `{Name}-not-in-moto`, and `DependsOn` forgets it. Besides, two
/// things moto does unlike CloudFormation are worked around: see
/// `drop_no_value_items` and `inline_definition`.
fn for_moto(stack: &Stack, template: &Yaml, remove: &[&str]) -> ForMoto {
    let mut body = cfn::long_form(template);
    let resources = body["Resources"]
        .as_object_mut()
        .expect("Resources is a mapping");
    let removed: BTreeSet<String> = resources
        .iter()
        .filter(|(_, r)| remove.iter().any(|t| r["Type"] == *t))
        .map(|(id, _)| id.clone())
        .collect();
    resources.retain(|id, _| !removed.contains(id));
    for resource in resources.values_mut() {
        stand_in(resource, &removed);
        if let Some(depends) = resource.get("DependsOn") {
            let mut kept = match depends {
                Json::Array(list) => list.clone(),
                one => vec![one.clone()],
            };
            kept.retain(|d| !removed.iter().any(|r| d == r));
            let resource = resource.as_object_mut().expect("a resource is a mapping");
            if kept.is_empty() {
                resource.remove("DependsOn");
            } else {
                resource.insert("DependsOn".into(), Json::Array(kept));
            }
        }
        drop_no_value_items(resource, stack);
        if resource["Type"] == "AWS::StepFunctions::StateMachine" {
            inline_definition(&mut resource["Properties"]);
        }
    }
    let outputs = body["Outputs"]
        .as_object_mut()
        .expect("Outputs is a mapping");
    let removed_outputs: BTreeSet<String> = outputs
        .iter()
        .filter(|(_, output)| names_any(output, &removed))
        .map(|(name, _)| name.clone())
        .collect();
    outputs.retain(|name, _| !removed_outputs.contains(name));
    ForMoto {
        body: body.to_string(),
        removed,
        removed_outputs,
    }
}

/// `text` of a `Fn::Sub` (or a definition's placeholders) with each
/// `${Name}` or `${Name.Attribute}` for which `rewrite` answers replaced by
/// that answer; `${!Literal}` stays.
fn rewrite_names(text: &str, mut rewrite: impl FnMut(&str) -> Option<String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        let end = at + rest[at..].find('}').expect("a closed ${...}");
        let name = &rest[at + 2..end];
        out.push_str(&rest[..at]);
        let replacement = if name.starts_with('!') {
            None
        } else {
            rewrite(name)
        };
        match replacement {
            Some(replacement) => out.push_str(&replacement),
            None => out.push_str(&rest[at..=end]),
        }
        rest = &rest[end + 1..];
    }
    out + rest
}

/// The resource or parameter a `Fn::Sub` name stands for.
fn sub_referent(name: &str) -> &str {
    name.split('.').next().unwrap_or(name)
}

/// The names a `Fn::Sub` string refers to.
fn sub_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    rewrite_names(text, |name| {
        names.push(sub_referent(name).to_owned());
        None
    });
    names
}

/// The resource a `Ref` or `Fn::GetAtt` names.
fn referent(value: &Json) -> Option<&str> {
    let object = value.as_object().filter(|o| o.len() == 1)?;
    match object.iter().next()? {
        (key, Json::String(name)) if key == "Ref" => Some(name),
        (key, Json::Array(path)) if key == "Fn::GetAtt" => path.first()?.as_str(),
        _ => None,
    }
}

fn names_any(value: &Json, ids: &BTreeSet<String>) -> bool {
    if referent(value).is_some_and(|r| ids.contains(r)) {
        return true;
    }
    match value {
        Json::Object(m) => {
            let sub = match m.get("Fn::Sub") {
                Some(Json::String(s)) => Some(s.as_str()),
                Some(Json::Array(args)) => args.first().and_then(Json::as_str),
                _ => None,
            };
            sub.is_some_and(|s| sub_names(s).iter().any(|n| ids.contains(n)))
                || m.values().any(|v| names_any(v, ids))
        }
        Json::Array(items) => items.iter().any(|v| names_any(v, ids)),
        _ => false,
    }
}

fn stand_in(value: &mut Json, removed: &BTreeSet<String>) {
    if let Some(name) = referent(value).filter(|r| removed.contains(*r)) {
        *value = Json::String(format!("{name}-not-in-moto"));
        return;
    }
    match value {
        Json::Object(m) => {
            let sub = match m.get_mut("Fn::Sub") {
                Some(Json::Array(args)) => args.first_mut(),
                other => other,
            };
            if let Some(Json::String(text)) = sub {
                *text = rewrite_names(text, |name| {
                    removed
                        .contains(sub_referent(name))
                        .then(|| format!("{name}-not-in-moto"))
                });
            }
            m.values_mut().for_each(|v| stand_in(v, removed));
        }
        Json::Array(items) => items.iter_mut().for_each(|v| stand_in(v, removed)),
        _ => {}
    }
}

/// Whether `item` comes to `AWS::NoValue` in `stack`.
fn is_no_value(item: &Json, stack: &Stack) -> bool {
    if item == &json!({"Ref": "AWS::NoValue"}) {
        return true;
    }
    match item
        .get("Fn::If")
        .and_then(Json::as_array)
        .map(Vec::as_slice)
    {
        Some([condition, then, otherwise]) => {
            let holds = stack.condition(condition.as_str().expect("a condition name"));
            is_no_value(if holds { then } else { otherwise }, stack)
        }
        _ => false,
    }
}

/// CloudFormation drops a list item that comes to `AWS::NoValue`; moto keeps
/// it as null (`clean_json`'s list branch, moto/cloudformation/parsing.py),
/// which breaks its IAM role (a null policy) and leaves a null statement in a
/// policy document. So such items go here, their conditions decided as
/// CloudFormation would for `stack`.
fn drop_no_value_items(value: &mut Json, stack: &Stack) {
    match value {
        Json::Array(items) => {
            items.retain(|item| !is_no_value(item, stack));
            items
                .iter_mut()
                .for_each(|item| drop_no_value_items(item, stack));
        }
        Json::Object(m) => {
            for (key, value) in m.iter_mut() {
                match value {
                    // A function's arguments are no list of the template's:
                    // `Fn::If` keeps its `AWS::NoValue` branch.
                    Json::Array(arguments) if key.starts_with("Fn::") => arguments
                        .iter_mut()
                        .for_each(|argument| drop_no_value_items(argument, stack)),
                    _ => drop_no_value_items(value, stack),
                }
            }
        }
        _ => {}
    }
}

/// moto's state machine takes `DefinitionString` alone
/// (`StateMachine.create_from_cloudformation_json`,
/// moto/stepfunctions/models.py): it reads neither `DefinitionS3Location`
/// (here a local file, which `aws cloudformation package` uploads and
/// replaces with its S3 location) nor `DefinitionSubstitutions`. So the
/// file's content goes inline under `Fn::Sub`, each placeholder turned into
/// the reference its substitution names. It is `Fn::Sub`'s one-string form
/// because moto runs the form with a variable map through Python's
/// `string.Template`, which turns the definition's `$$` (context object
/// paths such as `$$.Execution.Name`) into `$`.
fn inline_definition(properties: &mut Json) {
    let properties = properties.as_object_mut().expect("Properties");
    let Some(location) = properties.remove("DefinitionS3Location") else {
        return;
    };
    let path = format!(
        "{TEMPLATE_DIR}/{}",
        location.as_str().expect("a local DefinitionS3Location")
    );
    let definition =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("the definition {path}: {e}"));
    let substitutions = properties
        .remove("DefinitionSubstitutions")
        .map(|s| s.as_object().cloned().expect("a mapping"))
        .unwrap_or_default();
    let references: BTreeMap<&str, String> = substitutions
        .iter()
        .map(|(name, value)| {
            let reference = match value.as_object().and_then(|o| o.iter().next()) {
                Some((key, Json::String(name))) if key == "Ref" => name.clone(),
                Some((key, Json::Array(path))) if key == "Fn::GetAtt" => {
                    let path: Vec<&str> = path.iter().filter_map(Json::as_str).collect();
                    path.join(".")
                }
                _ => panic!("substitution {name}: only a Ref or a GetAtt goes into Fn::Sub here"),
            };
            (name.as_str(), reference)
        })
        .collect();
    let inline = rewrite_names(&definition, |name| {
        let reference = references
            .get(name)
            .unwrap_or_else(|| panic!("the definition's ${{{name}}} has no substitution"));
        Some(format!("${{{reference}}}"))
    });
    properties.insert("DefinitionString".into(), json!({"Fn::Sub": inline}));
}

// --- moto's services ---------------------------------------------------------------

/// The code bucket of a stack in `account`, holding an (empty) package at
/// each code key.
fn upload_code(account: &str) -> String {
    let bucket = moto::unique_name("drs-cache-code");
    let put = |path: &str, body: &[u8]| {
        let (status, answer) = moto::request(account, REGION, "s3", "PUT", path, "", body);
        assert_eq!(status, 200, "moto's S3 takes PUT {path}: {answer}");
    };
    put(&format!("/{bucket}"), b"");
    for (_, key) in CODE_KEYS {
        put(&format!("/{bucket}/{key}"), &EMPTY_ZIP);
    }
    bucket
}

/// A stack's resources on moto, for telling what a placeholder of the
/// template (`support::cfn`) is there.
struct OnMoto<'a> {
    account: &'a str,
    stack: &'a Stack<'a>,
    /// Logical ID to physical ID, as moto's CloudFormation lists them.
    physical: BTreeMap<String, String>,
}

impl OnMoto<'_> {
    fn resource_type(&self, id: &str) -> String {
        let resource = self
            .stack
            .resource(id)
            .unwrap_or_else(|| panic!("{id} is not created in this stack"));
        text(&resource["Type"])
    }

    fn physical_id(&self, id: &str) -> &str {
        self.physical
            .get(id)
            .unwrap_or_else(|| panic!("moto's stack has no {id}"))
    }

    /// What moto's service answers for the resource `id`; it panics if the
    /// service has no such resource.
    fn describe(&self, id: &str) -> Json {
        let account = self.account;
        let physical = self.physical_id(id);
        let iam = |action: &str, key: &str| {
            moto::query(
                account,
                REGION,
                "iam",
                "2010-05-08",
                action,
                &[(key.into(), physical.into())],
            )
        };
        let json = |service: &str, target: &str, body: Json| {
            moto::aws_json(account, REGION, service, target, &body)
        };
        match self.resource_type(id).as_str() {
            "AWS::DynamoDB::Table" => json(
                "dynamodb",
                "DynamoDB_20120810.DescribeTable",
                json!({"TableName": physical}),
            )["Table"]
                .clone(),
            "AWS::S3::Bucket" => {
                let (status, answer) = moto::request(
                    account,
                    REGION,
                    "s3",
                    "HEAD",
                    &format!("/{physical}"),
                    "",
                    b"",
                );
                assert_eq!(status, 200, "moto's S3 has the bucket {physical}: {answer}");
                json!({"Name": physical})
            }
            "AWS::Lambda::Function" => moto::request_json(
                account,
                REGION,
                "lambda",
                "GET",
                &format!("/2015-03-31/functions/{physical}"),
                "",
                b"",
            ),
            "AWS::Lambda::Permission" => {
                // moto keeps a permission as a statement of its function's
                // policy, and names it nowhere else.
                let properties = self.stack.properties(id);
                let function = text(&self.real(&properties["FunctionName"]));
                let policy = moto::request_json(
                    account,
                    REGION,
                    "lambda",
                    "GET",
                    &format!("/2015-03-31/functions/{function}/policy"),
                    "",
                    b"",
                );
                let policy: Json = serde_json::from_str(policy["Policy"].as_str().unwrap())
                    .expect("the policy is JSON");
                policy["Statement"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|s| {
                        s["Action"] == properties["Action"]
                            && s["Principal"]["Service"] == properties["Principal"]
                    })
                    .cloned()
                    .unwrap_or_else(|| panic!("{id}: no statement in {policy}"))
            }
            "AWS::StepFunctions::StateMachine" => json(
                "states",
                "AWSStepFunctions.DescribeStateMachine",
                json!({"stateMachineArn": physical}),
            ),
            "AWS::SNS::Topic" => moto::query(
                account,
                REGION,
                "sns",
                "2010-03-31",
                "GetTopicAttributes",
                &[("TopicArn".into(), physical.into())],
            )["Attributes"]
                .clone(),
            "AWS::CloudWatch::Dashboard" => json(
                "monitoring",
                "GraniteServiceVersion20100801.GetDashboard",
                json!({"DashboardName": physical}),
            ),
            "AWS::IAM::Role" => iam("GetRole", "RoleName")["Role"].clone(),
            "AWS::IAM::ManagedPolicy" => iam("GetPolicy", "PolicyArn")["Policy"].clone(),
            "AWS::SQS::Queue" => json(
                "sqs",
                "AmazonSQS.GetQueueAttributes",
                json!({"QueueUrl": physical, "AttributeNames": ["All"]}),
            )["Attributes"]
                .clone(),
            "AWS::Logs::LogGroup" => {
                let found = json(
                    "logs",
                    "Logs_20140328.DescribeLogGroups",
                    json!({"logGroupNamePrefix": physical}),
                );
                found["logGroups"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|g| g["logGroupName"] == physical)
                    .cloned()
                    .unwrap_or_else(|| panic!("moto's logs have no group {physical}"))
            }
            "AWS::Events::Rule" => json(
                "events",
                "AWSEvents.DescribeRule",
                json!({"Name": physical}),
            ),
            other => panic!("{id}: no way here to ask moto for a {other}; add one"),
        }
    }

    /// `{attribute}` of the resource `id`, as its service answers it.
    fn attribute(&self, id: &str, attribute: &str) -> String {
        let described = self.describe(id);
        let field = match (self.resource_type(id).as_str(), attribute) {
            ("AWS::Lambda::Function", "Arn") => &described["Configuration"]["FunctionArn"],
            ("AWS::IAM::Role", "Arn") => &described["Arn"],
            ("AWS::DynamoDB::Table", "Arn") => &described["TableArn"],
            ("AWS::SQS::Queue", "Arn") => &described["QueueArn"],
            ("AWS::Logs::LogGroup", "Arn") => &described["arn"],
            (ty, _) => panic!("{id}: no way here to ask moto for {attribute} of a {ty}; add one"),
        };
        field
            .as_str()
            .unwrap_or_else(|| panic!("{id}.{attribute} in {described}"))
            .to_owned()
    }

    /// `value` as `support::cfn` evaluates it, with each placeholder of a
    /// resource (`physical-id-of-X`, `Arn-of-X`) replaced by what moto's
    /// service answers for it.
    fn real(&self, value: &Json) -> Json {
        static PLACEHOLDER: LazyLock<Regex> = LazyLock::new(|| {
            Regex::new(r"(physical-id|[A-Z][A-Za-z]*)-of-([A-Za-z0-9]+)").unwrap()
        });
        match value {
            Json::String(s) => {
                let replaced = PLACEHOLDER.replace_all(s, |found: &regex::Captures| {
                    let (what, id) = (&found[1], &found[2]);
                    if what == "physical-id" {
                        // Asked for, so that a name is only taken for what
                        // the service holds.
                        self.describe(id);
                        self.physical_id(id).to_owned()
                    } else {
                        self.attribute(id, what)
                    }
                });
                Json::String(replaced.into_owned())
            }
            Json::Array(items) => Json::Array(items.iter().map(|v| self.real(v)).collect()),
            Json::Object(m) => Json::Object(
                m.iter()
                    .map(|(k, v)| (k.clone(), self.real(v)))
                    .collect::<Map<_, _>>(),
            ),
            other => other.clone(),
        }
    }
}

fn strings(map: &Json) -> BTreeMap<String, String> {
    map.as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), text(v))).collect())
        .unwrap_or_default()
}

// --- the stack ---------------------------------------------------------------------

/// Creates the stack of `parameters` (besides the code's) on moto and checks
/// it: moto creates it and every resource the template has for it but those
/// of `NOT_IN_MOTO`, each is in its service as the template sets it, and
/// every output but those naming what moto cannot create is what moto holds.
fn creates_the_stack_and_its_outputs_resolve(parameters: &[(&str, &str)]) {
    let template = template();
    let account = moto::unique_account();
    let bucket = upload_code(&account);
    let mut given = vec![("CodeBucket", bucket.as_str())];
    given.extend(CODE_KEYS);
    given.extend(parameters);
    let stack = given
        .iter()
        .fold(Stack::new(&template, &account, REGION), |s, (k, v)| {
            s.with(k, v)
        });
    let prepared = for_moto(&stack, &template, &NOT_IN_MOTO);
    let name = moto::unique_name("drs-cache");
    let created = moto::create_stack(&account, REGION, &name, &prepared.body, &given);
    assert_eq!(created["StackStatus"], "CREATE_COMPLETE", "{created}");

    // Every resource the stack has, but for those moto cannot create.
    let physical = moto::stack_resources(&account, REGION, &name);
    let mut wanted = stack.resources();
    wanted.retain(|id, _| !prepared.removed.contains(id));
    let missing: Vec<String> = wanted
        .iter()
        .filter(|(id, _)| !physical.contains_key(*id))
        .map(|(id, r)| format!("{id} ({})", text(&r["Type"])))
        .collect();
    assert!(
        missing.is_empty(),
        "moto did not create {missing:?}: if moto cannot, add the type to NOT_IN_MOTO"
    );
    let extra: Vec<&String> = physical
        .keys()
        .filter(|id| !wanted.contains_key(*id))
        .collect();
    assert!(
        extra.is_empty(),
        "moto created {extra:?}, which the template does not make for this stack"
    );
    let moto = OnMoto {
        account: &account,
        stack: &stack,
        physical,
    };
    for id in wanted.keys() {
        moto.describe(id);
    }

    // Every output is what moto holds.
    let outputs = moto::stack_outputs(&created);
    let mut expected = stack.outputs();
    expected.retain(|name, _| !prepared.removed_outputs.contains(name));
    assert_eq!(
        outputs.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "the outputs but those naming what moto cannot create ({:?})",
        prepared.removed_outputs
    );
    for (output, value) in &expected {
        let real = text(&moto.real(value));
        assert_eq!(
            outputs[output], real,
            "output {output}: the template's {value} on moto"
        );
    }
    let bus = moto::aws_json(
        &account,
        REGION,
        "events",
        "AWSEvents.DescribeEventBus",
        &json!({"Name": "default"}),
    );
    assert_eq!(
        bus["Arn"].as_str(),
        Some(outputs["EventBusArn"].as_str()),
        "EventBusArn is moto's default bus"
    );

    the_table_has_the_template_schema(&moto, &outputs["QueryCacheTableName"]);
    every_function_is_set_as_the_template_sets_it(&moto);
    every_role_has_the_template_trust_and_policies(&moto);
    the_workflow_definition_has_its_substitutions(&moto, &outputs["RefreshStateMachineArn"]);
    the_dashboard_names_the_stack_resources(&moto);
}

fn the_table_has_the_template_schema(moto: &OnMoto, name: &str) {
    for (id, properties) in moto.stack.resources_of("AWS::DynamoDB::Table") {
        let table = moto.describe(&id);
        if table["TableName"] != name {
            continue;
        }
        assert_eq!(table["TableName"], properties["TableName"], "{id}");
        assert_eq!(table["KeySchema"], properties["KeySchema"], "{id}");
        let attributes = |value: &Json| -> BTreeSet<String> {
            value
                .as_array()
                .unwrap()
                .iter()
                .map(Json::to_string)
                .collect()
        };
        assert_eq!(
            attributes(&table["AttributeDefinitions"]),
            attributes(&properties["AttributeDefinitions"]),
            "{id}"
        );
        assert_eq!(
            table["BillingModeSummary"]["BillingMode"], properties["BillingMode"],
            "{id}"
        );
        let indexes = |value: &Json| -> BTreeMap<String, Json> {
            value
                .as_array()
                .unwrap()
                .iter()
                .map(|index| {
                    (
                        text(&index["IndexName"]),
                        json!([index["KeySchema"], index["Projection"]]),
                    )
                })
                .collect()
        };
        assert_eq!(
            indexes(&table["GlobalSecondaryIndexes"]),
            indexes(&properties["GlobalSecondaryIndexes"]),
            "{id}: the indexes' keys and projections"
        );
        return;
    }
    panic!("QueryCacheTableName {name} is no table of the template");
}

fn every_function_is_set_as_the_template_sets_it(moto: &OnMoto) {
    let functions = moto.stack.resources_of("AWS::Lambda::Function");
    assert!(!functions.is_empty(), "the template has functions");
    for (id, properties) in functions {
        let described = moto.describe(&id);
        let configuration = &described["Configuration"];
        for field in [
            "FunctionName",
            "Runtime",
            "Handler",
            "Description",
            "Timeout",
            "MemorySize",
            "Role",
        ] {
            assert_eq!(
                text(&configuration[field]),
                text(&moto.real(&properties[field])),
                "{id}: {field}"
            );
        }
        assert_eq!(configuration["Runtime"], "provided.al2023", "{id}");
        assert_eq!(configuration["Handler"], "bootstrap", "{id}");
        // CloudFormation hands every variable over as a string; moto passes a
        // Number parameter on as a number.
        assert_eq!(
            strings(&configuration["Environment"]["Variables"]),
            strings(&moto.real(&properties["Environment"]["Variables"])),
            "{id}: the environment"
        );
        assert_eq!(
            described["Concurrency"]["ReservedConcurrentExecutions"]
                .as_u64()
                .map(|n| n.to_string()),
            properties.get("ReservedConcurrentExecutions").map(text),
            "{id}: reserved concurrency"
        );
        // moto 5.2.5 drops Architectures (and LoggingConfig):
        // LambdaFunction.create_from_cloudformation_json
        // (moto/awslambda/models.py) passes neither on, so a function is
        // x86_64 whatever the template says.
        assert_eq!(
            configuration["Architectures"],
            json!(["x86_64"]),
            "{id}: moto now takes Architectures from the template: compare them with the \
             template's {} instead",
            properties["Architectures"]
        );
    }
}

fn every_role_has_the_template_trust_and_policies(moto: &OnMoto) {
    for (id, properties) in moto.stack.resources_of("AWS::IAM::Role") {
        let role = moto.describe(&id);
        let trust: Json = serde_json::from_str(&workflow::percent_decode(
            role["AssumeRolePolicyDocument"].as_str().unwrap(),
        ))
        .expect("a trust policy in JSON");
        assert_eq!(
            trust,
            moto.real(&properties["AssumeRolePolicyDocument"]),
            "{id}: the trust policy"
        );
        let listed = moto::query(
            moto.account,
            REGION,
            "iam",
            "2010-05-08",
            "ListRolePolicies",
            &[("RoleName".into(), moto.physical_id(&id).into())],
        );
        let names = |value: &Json| -> BTreeSet<String> {
            value
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(text)
                .collect()
        };
        let wanted: Vec<Json> = properties["Policies"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|p| p["PolicyName"].clone())
            .collect();
        assert_eq!(
            names(&listed["PolicyNames"]),
            names(&Json::Array(wanted)),
            "{id}: the inline policies"
        );
    }
}

fn the_workflow_definition_has_its_substitutions(moto: &OnMoto, arn: &str) {
    let id = "RefreshStateMachine";
    let properties = moto.stack.properties(id);
    let described = moto.describe(id);
    assert_eq!(described["stateMachineArn"], arn);
    assert_eq!(described["name"], properties["StateMachineName"]);
    assert_eq!(described["type"], properties["StateMachineType"]);
    assert_eq!(
        described["roleArn"],
        moto.real(&properties["RoleArn"]),
        "the workflow's role"
    );
    let definition = described["definition"].as_str().expect("a definition");
    assert!(
        !definition.contains("${"),
        "every placeholder of the definition is filled: {definition}"
    );
    let substitutions: BTreeMap<String, String> =
        strings(&moto.real(&properties["DefinitionSubstitutions"]));
    let expected: Json = serde_json::from_str(&workflow::filled_definition(&substitutions))
        .expect("the filled definition is JSON");
    let definition: Json = serde_json::from_str(definition).expect("the definition is JSON");
    if let Some(difference) = first_difference(&definition, &expected, "") {
        panic!(
            "the definition is not the file with the template's DefinitionSubstitutions: {difference}"
        );
    }
}

/// Where two JSON values first differ: a JSON pointer and both values.
fn first_difference(got: &Json, wanted: &Json, at: &str) -> Option<String> {
    match (got, wanted) {
        (Json::Object(g), Json::Object(w)) => {
            let keys: BTreeSet<&String> = g.keys().chain(w.keys()).collect();
            keys.into_iter().find_map(|k| {
                let at = format!("{at}/{k}");
                match (g.get(k), w.get(k)) {
                    (Some(g), Some(w)) => first_difference(g, w, &at),
                    (g, w) => Some(format!("{at}: {g:?} instead of {w:?}")),
                }
            })
        }
        (Json::Array(g), Json::Array(w)) if g.len() == w.len() => g
            .iter()
            .zip(w)
            .enumerate()
            .find_map(|(i, (g, w))| first_difference(g, w, &format!("{at}/{i}"))),
        _ => (got != wanted).then(|| format!("{at}: {got} instead of {wanted}")),
    }
}

fn the_dashboard_names_the_stack_resources(moto: &OnMoto) {
    for (id, properties) in moto.stack.resources_of("AWS::CloudWatch::Dashboard") {
        let described = moto.describe(&id);
        let body = described["DashboardBody"].as_str().expect("a body");
        assert!(!body.contains("${"), "{id}: every name filled: {body}");
        let body: Json = serde_json::from_str(body).expect("the body is JSON");
        let expected: Json = serde_json::from_str(&text(&moto.real(&properties["DashboardBody"])))
            .expect("the template's body is JSON");
        if let Some(difference) = first_difference(&body, &expected, "") {
            panic!("{id}: the body is not the template's: {difference}");
        }
    }
}

#[test]
fn moto_cannot_create_exactly_the_resource_types_taken_out_for_it() {
    let template = template();
    // Every condition of a resource holds in one of two stacks, so every type
    // is tried: the second's cache table is a global table (GlobalCacheTable,
    // where the first has QueryCacheTable; no stack has both). Each in an
    // account of its own, as both name their resources alike.
    let mut given = vec![
        ("ApiAuthorization", "JWT"),
        ("JwtIssuer", "https://issuer.example.com"),
        ("JwtAudience", "client"),
        ("AlarmEmail", "ops@example.com"),
    ];
    given.extend(CODE_KEYS);
    let types: BTreeMap<String, String> = template["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .map(|(id, r)| {
            (
                id.as_str().unwrap().to_owned(),
                r["Type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut tried = BTreeSet::new();
    let mut made = BTreeSet::new();
    for global in [&[][..], &[("ReplicaRegions", "us-west-2")][..]] {
        let account = moto::unique_account();
        let bucket = upload_code(&account);
        let given: Vec<(&str, &str)> = [("CodeBucket", bucket.as_str())]
            .iter()
            .chain(&given)
            .chain(global)
            .copied()
            .collect();
        let stack = given
            .iter()
            .fold(Stack::new(&template, &account, REGION), |s, (k, v)| {
                s.with(k, v)
            });
        tried.extend(stack.resources().into_keys());

        // Nothing taken out; moto skips what it cannot create. Without the
        // outputs: moto answers HTTP 500 for an output's GetAtt of a type it
        // has no model for (validate_outputs, moto/cloudformation/parsing.py).
        let prepared = for_moto(&stack, &template, &[]);
        let mut body: Json = serde_json::from_str(&prepared.body).unwrap();
        body.as_object_mut().unwrap().remove("Outputs");
        let name = moto::unique_name("drs-cache-probe");
        let created = moto::create_stack(&account, REGION, &name, &body.to_string(), &given);
        assert_eq!(created["StackStatus"], "CREATE_COMPLETE", "{created}");
        made.extend(moto::stack_resources(&account, REGION, &name).into_keys());
    }
    assert_eq!(
        tried.len(),
        types.len(),
        "these parameters create every resource of the template"
    );

    let mut skipped: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut created_types = BTreeSet::new();
    for (id, ty) in &types {
        if made.contains(id) {
            created_types.insert(ty.as_str());
        } else {
            skipped.entry(ty).or_default().push(id);
        }
    }
    for (ty, ids) in &skipped {
        assert!(
            !created_types.contains(ty),
            "moto creates some {ty} but not {ids:?}"
        );
        assert!(
            NOT_IN_MOTO.contains(ty),
            "moto cannot create {ty} ({ids:?}): add it to NOT_IN_MOTO, with where moto lacks it"
        );
    }
    for ty in NOT_IN_MOTO {
        assert!(
            types.values().any(|t| t == ty),
            "the template has no {ty} any more: take it out of NOT_IN_MOTO"
        );
        assert!(
            skipped.contains_key(ty),
            "moto creates {ty} now: take it out of NOT_IN_MOTO"
        );
    }
}

// Both stacks have a table of their own (QueryCacheTable): moto cannot create
// an AWS::DynamoDB::GlobalTable (NOT_IN_MOTO), so a stack with ReplicaRegions
// or GlobalTableRegion is left to cfn-lint and tests/it/cfn_template.rs.
#[test]
fn moto_creates_the_default_stack_and_every_output_names_what_moto_holds() {
    creates_the_stack_and_its_outputs_resolve(&[]);
}

#[test]
fn moto_creates_a_stack_without_workflow_logs_for_given_accounts_and_alarm_topic() {
    creates_the_stack_and_its_outputs_resolve(&[
        ("StateMachineLogLevel", "OFF"),
        (
            "AlarmTopicArn",
            "arn:aws:sns:us-east-1:111122223333:operations",
        ),
        ("AccountIds", "111122223333,444455556666"),
        ("Regions", "us-east-1,eu-west-1"),
        ("DeploymentAccountId", "111122223333"),
        ("ReaderReservedConcurrency", "5"),
        ("RefreshMaxConcurrency", "25"),
    ]);
}
