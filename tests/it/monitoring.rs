//! The stack's monitoring agrees with the code and the docs: every alarm
//! notifies the alarm topic and links a runbook entry of docs/operations.md,
//! every metric of the project's namespace that an alarm or the dashboard reads
//! is one the code writes, the dashboard is valid JSON, and every function logs
//! to a group of the stack with the retention parameter.

use std::collections::BTreeSet;

use serde_json::Value as Json;

use crate::support::cfn::{intrinsic, resources_of};
use serde_norway::Value;

const TEMPLATE: &str = include_str!("../../cfn/drs-cache.yaml");
const OPERATIONS: &str = include_str!("../../docs/operations.md");
const NAMESPACE: &str = "DROrchestration/QueryCache";
/// The code that writes the namespace's metrics, each name once in a
/// `MetricDef::new("Name", ...)` or `metric("Name", ...)` call.
const METRIC_SOURCES: [&str; 4] = [
    include_str!("../../src/read/metrics.rs"),
    include_str!("../../src/refresh/metrics.rs"),
    include_str!("../../src/plan/summary.rs"),
    include_str!("../../src/plan/freshness.rs"),
];

fn template() -> Value {
    serde_norway::from_str(TEMPLATE).expect("cfn/drs-cache.yaml is YAML")
}

/// The properties of the resources of one type, by logical ID.
fn properties_of<'a>(template: &'a Value, ty: &str) -> Vec<(&'a str, &'a Value)> {
    resources_of(template, ty)
        .into_iter()
        .map(|(id, r)| (id, &r["Properties"]))
        .collect()
}

/// Every metric name the code writes to the namespace.
fn emitted() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for source in METRIC_SOURCES {
        for call in ["MetricDef::new(\"", "metric(\""] {
            for (at, _) in source.match_indices(call) {
                let rest = &source[at + call.len()..];
                names.insert(rest[..rest.find('"').unwrap()].to_owned());
            }
        }
    }
    names
}

/// The GitHub anchor of each heading of a Markdown document.
fn anchors(markdown: &str) -> BTreeSet<String> {
    markdown
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|heading| {
            heading
                .trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter_map(|c| match c {
                    ' ' => Some('-'),
                    c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                    _ => None,
                })
                .collect()
        })
        .collect()
}

/// The names in `text` that follow `FROM SCHEMA("NAMESPACE"` metric queries
/// (`SUM(Name)`, `AVG(Name)`) and `MetricName="Name"` searches.
fn metrics_named_in(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for func in ["SUM(", "AVG(", "MAX(", "MIN("] {
        for (at, _) in text.match_indices(func) {
            let rest = &text[at + func.len()..];
            names.insert(rest[..rest.find(')').unwrap()].to_owned());
        }
    }
    for (at, _) in text.match_indices("MetricName=\\\"") {
        let rest = &text[at + "MetricName=\\\"".len()..];
        names.insert(rest[..rest.find('\\').unwrap()].to_owned());
    }
    names
}

#[test]
fn every_alarm_notifies_the_alarm_topic_and_links_a_runbook_entry() {
    let template = template();
    let alarms = properties_of(&template, "AWS::CloudWatch::Alarm");
    assert!(alarms.len() >= 9, "{alarms:?}");
    let entries = anchors(OPERATIONS);
    for (id, alarm) in &alarms {
        for actions in ["AlarmActions", "OKActions"] {
            let action = &alarm[actions][0];
            let (tag, value) = intrinsic(action).unwrap_or_else(|| panic!("{id}: {actions}"));
            assert_eq!(tag, "If", "{id}: {actions}");
            let branches = value.as_sequence().unwrap();
            assert_eq!(branches[0].as_str(), Some("MakeAlarmTopic"), "{id}");
            assert_eq!(
                intrinsic(&branches[1]).map(|(t, v)| (t, v.as_str())),
                Some(("Ref".to_owned(), Some("AlarmTopic"))),
                "{id}"
            );
            assert_eq!(
                intrinsic(&branches[2]).map(|(t, v)| (t, v.as_str())),
                Some(("Ref".to_owned(), Some("AlarmTopicArn"))),
                "{id}"
            );
        }
        let description = alarm["AlarmDescription"].as_str().unwrap();
        let link = description
            .split("docs/operations.md#")
            .nth(1)
            .unwrap_or_else(|| panic!("{id} links no runbook entry: {description}"));
        let anchor: String = link
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '-')
            .collect();
        assert!(
            entries.contains(&anchor),
            "{id}: docs/operations.md has no heading #{anchor}"
        );
    }
}

#[test]
fn alarms_and_the_dashboard_read_only_metrics_the_code_writes() {
    let template = template();
    let emitted = emitted();
    assert!(emitted.contains("OverdueKeys") && emitted.contains("CacheHit"));
    let mut read = BTreeSet::new();
    for (id, alarm) in properties_of(&template, "AWS::CloudWatch::Alarm") {
        if alarm["Namespace"].as_str() == Some(NAMESPACE) {
            read.insert(alarm["MetricName"].as_str().unwrap().to_owned());
        }
        for query in alarm["Metrics"].as_sequence().into_iter().flatten() {
            if let Some(expression) = query["Expression"].as_str()
                && expression.contains(NAMESPACE)
            {
                let named = metrics_named_in(expression);
                assert!(!named.is_empty(), "{id}: {expression}");
                read.extend(named);
            }
        }
    }
    let dashboard = &properties_of(&template, "AWS::CloudWatch::Dashboard")[0].1;
    let (tag, sub) = intrinsic(&dashboard["DashboardBody"]).unwrap();
    assert_eq!(tag, "Sub");
    let body = sub[0].as_str().unwrap();
    let on_dashboard = metrics_named_in(body);
    for name in [
        "MemoryHit",
        "StaleServe",
        "WorstAgeRatio",
        "RefreshCount",
        "RunRefreshed",
    ] {
        assert!(on_dashboard.contains(name), "{name} not on the dashboard");
    }
    read.extend(on_dashboard);
    let unknown: Vec<&String> = read.difference(&emitted).collect();
    assert!(unknown.is_empty(), "read but never written: {unknown:?}");

    // With its substitutions filled in, the body is the JSON CloudWatch takes.
    let mut filled = body.to_owned();
    while let Some(start) = filled.find("${") {
        let end = start + filled[start..].find('}').unwrap();
        let value = match &filled[start + 2..end] {
            "HitRateAlarmThreshold" => "0.7",
            "EventToCacheAlarmMilliseconds" => "60000",
            "Ns" => NAMESPACE,
            _ => "x",
        };
        filled.replace_range(start..=end, value);
    }
    let json: Json = serde_json::from_str(&filled).expect("the dashboard body is JSON");
    assert!(json["widgets"].as_array().unwrap().len() >= 8);
}

#[test]
fn every_function_logs_to_a_group_of_the_stack_kept_for_the_retention_parameter() {
    let template = template();
    let groups = properties_of(&template, "AWS::Logs::LogGroup");
    for (id, function) in properties_of(&template, "AWS::Lambda::Function") {
        let (tag, group) = intrinsic(&function["LoggingConfig"]["LogGroup"])
            .unwrap_or_else(|| panic!("{id} names no log group"));
        assert_eq!(tag, "Ref", "{id}");
        let group_id = group.as_str().unwrap();
        let (_, properties) = groups
            .iter()
            .find(|(g, _)| *g == group_id)
            .unwrap_or_else(|| panic!("{id}: no log group {group_id}"));
        let retention = intrinsic(&properties["RetentionInDays"]).map(|(t, v)| (t, v.as_str()));
        assert_eq!(
            retention,
            Some(("Ref".to_owned(), Some("LogRetentionDays"))),
            "{group_id}"
        );
        // The group is the one Lambda would make for the function's name.
        let name =
            |value: &Value| intrinsic(value).and_then(|(_, v)| v.as_str().map(str::to_owned));
        let function_name = name(&function["FunctionName"]).unwrap();
        assert_eq!(
            name(&properties["LogGroupName"]),
            Some(format!("/aws/lambda/{function_name}")),
            "{id}"
        );
    }
}

#[test]
fn every_deploy_parameter_is_in_a_console_group_and_documented_with_its_default() {
    let template = template();
    let section = OPERATIONS
        .split("## Deploy parameters")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("docs/operations.md has a Deploy parameters section");
    let grouped: BTreeSet<&str> =
        template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
            .as_sequence()
            .unwrap()
            .iter()
            .flat_map(|g| g["Parameters"].as_sequence().unwrap())
            .map(|p| p.as_str().unwrap())
            .collect();
    for (name, parameter) in template["Parameters"].as_mapping().unwrap() {
        let name = name.as_str().unwrap();
        assert!(grouped.contains(name), "{name} is in no ParameterGroup");
        let default = match &parameter["Default"] {
            Value::String(s) if s.is_empty() => "(empty)".to_owned(),
            Value::String(s) => format!("`{s}`"),
            Value::Number(n) => format!("`{n}`"),
            Value::Null => "(required)".to_owned(),
            other => panic!("{name}: default {other:?}"),
        };
        let row = section
            .lines()
            .find(|l| l.starts_with(&format!("| `{name}` |")))
            .unwrap_or_else(|| panic!("docs/operations.md does not document {name}"));
        assert!(
            row.starts_with(&format!("| `{name}` | {default} |")),
            "{name}: documented as {row}, default {default}"
        );
    }
}
