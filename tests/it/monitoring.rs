//! The stack's monitoring agrees with the code and the docs: every alarm
//! notifies the alarm topic and links a runbook entry of docs/operations.md,
//! every metric of the project's namespace that an alarm or the dashboard reads
//! is one the code writes, under a dimension set the code publishes it with,
//! the dashboard is valid JSON, and every function logs to a group of the
//! stack with the retention parameter.

use std::{
    collections::BTreeSet,
    time::{Duration, SystemTime},
};

use drs_cache::{
    domain::{CacheKey, DataType, RefreshErrorKind},
    plan::{freshness::TypeFreshness, summary::RunSummary},
    ports::RefreshReason,
    read::metrics::{ReadOutcome, ReadResult, emf_batch, emf_line},
    refresh::{
        metrics::{change_events_line, emf_groups, event_lag_line},
        summary::{FailureKind, FailureSummary, KeySummary, Status},
    },
    workflow::{BatchResult, Counts, SummarizeInput},
};
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

/// A metric as CloudWatch keeps it: its name and its dimension names, sorted.
type Published = (String, Vec<String>);

/// Every (metric, dimension set) the code's EMF documents publish, from real
/// documents of each writer: a read (with an age) and a batch of reads, a
/// batch's refreshes (one failed), an event's lag and a write's change events,
/// a run's summary, a tick's freshness.
fn published() -> BTreeSet<Published> {
    let at = SystemTime::now();
    let key = CacheKey::parse("ec2-subnets#us-east-1#111122223333").unwrap();
    let read = ReadOutcome {
        data_type: DataType::Ec2Subnets,
        result: ReadResult::StoreHit { stale: true },
        data_age: Some(90),
        latency: Duration::from_millis(3),
    };
    let refreshed = KeySummary {
        cache_key: key.clone(),
        status: Status::Refreshed,
        changed: true,
        items: 3,
        bytes: 900,
        pages: 1,
        duration_ms: 420,
        error: None,
        event_to_cache_ms: Some(1_500),
        events_published: 1,
        events_failed: 0,
    };
    let failed = KeySummary {
        status: Status::Failed,
        error: Some(FailureSummary::new(
            FailureKind::Upstream(RefreshErrorKind::Throttled),
            "slow down",
        )),
        ..refreshed.clone()
    };
    let summary = RunSummary::of(SummarizeInput {
        reason: RefreshReason::Schedule,
        results: vec![Some(BatchResult::Counts(Counts::default()))],
    });
    let freshness = TypeFreshness {
        data_type: DataType::Ec2Subnets.as_str(),
        configured_keys: 1,
        missing_keys: 0,
        overdue_keys: 0,
        worst_age_ratio: 0.5,
    };
    let mut documents = vec![emf_line(&read, at), emf_batch(&[read], at)];
    documents.extend(emf_groups(
        RefreshReason::Schedule,
        &[refreshed.clone(), failed],
        at,
    ));
    documents.extend(event_lag_line(&refreshed, at));
    documents.extend(change_events_line(&refreshed, at));
    documents.push(summary.emf_line(at));
    documents.push(freshness.emf_line(at));
    let mut published = BTreeSet::new();
    for document in documents {
        let doc: Json = serde_json::from_slice(&document).unwrap();
        for directive in doc["_aws"]["CloudWatchMetrics"].as_array().unwrap() {
            assert_eq!(directive["Namespace"], NAMESPACE);
            for dimensions in directive["Dimensions"].as_array().unwrap() {
                let dimensions = dimension_set(
                    dimensions
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|d| d.as_str().unwrap()),
                );
                for metric in directive["Metrics"].as_array().unwrap() {
                    let name = metric["Name"].as_str().unwrap().to_owned();
                    published.insert((name, dimensions.clone()));
                }
            }
        }
    }
    published
}

/// A dimension set as compared here: the names trimmed, in order.
fn dimension_set<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut set: Vec<String> = names.into_iter().map(|d| d.trim().to_owned()).collect();
    set.sort();
    set
}

/// The (metric, dimension set) pairs `text` reads: `FUNC(Name) FROM
/// SCHEMA("ns", A, B)` queries and `SEARCH('{ns,A} MetricName="Name"')`
/// searches (the dashboard's `${Ns}` standing for the namespace).
fn read_in(text: &str) -> BTreeSet<Published> {
    let text = text.replace("${Ns}", NAMESPACE).replace("\\\"", "\"");
    let mut read = BTreeSet::new();
    for (at, _) in text.match_indices("SELECT ") {
        let query = &text[at..];
        let open = query.find('(').unwrap();
        let name = &query[open + 1..open + query[open..].find(')').unwrap()];
        let schema = &query[query.find("SCHEMA(").unwrap() + "SCHEMA(".len()..];
        let schema = &schema[..schema.find(')').unwrap()];
        let dimensions = dimension_set(schema.split(',').skip(1));
        read.insert((name.to_owned(), dimensions));
    }
    for (at, _) in text.match_indices("SEARCH('{") {
        let search = &text[at + "SEARCH('{".len()..];
        let braces = &search[..search.find('}').unwrap()];
        let dimensions = dimension_set(braces.split(',').skip(1));
        let named = &search[search.find("MetricName=\"").unwrap() + "MetricName=\"".len()..];
        read.insert((named[..named.find('"').unwrap()].to_owned(), dimensions));
    }
    read
}

#[test]
fn alarms_and_the_dashboard_read_each_metric_under_a_dimension_set_the_code_publishes() {
    let template = template();
    let published = published();
    let mut read = BTreeSet::new();
    for (_, alarm) in properties_of(&template, "AWS::CloudWatch::Alarm") {
        if alarm["Namespace"].as_str() == Some(NAMESPACE) {
            let dimensions = dimension_set(
                alarm["Dimensions"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                    .map(|d| d["Name"].as_str().unwrap()),
            );
            read.insert((alarm["MetricName"].as_str().unwrap().to_owned(), dimensions));
        }
        for query in alarm["Metrics"].as_sequence().into_iter().flatten() {
            if let Some(expression) = query["Expression"].as_str() {
                read.extend(read_in(expression));
            }
        }
    }
    let dashboard = &properties_of(&template, "AWS::CloudWatch::Dashboard")[0].1;
    let (_, sub) = intrinsic(&dashboard["DashboardBody"]).unwrap();
    read.extend(read_in(sub[0].as_str().unwrap()));
    // The totals the hit-rate alarm and the tier widgets read, and the
    // refresh outcomes the failure alarms read.
    for expected in [
        ("CacheHit", vec![]),
        ("MemoryHit", vec![]),
        ("RefreshCount", vec!["DataType", "Outcome"]),
        ("WorstAgeRatio", vec!["DataType"]),
    ] {
        let expected = (
            expected.0.to_owned(),
            expected.1.into_iter().map(str::to_owned).collect(),
        );
        assert!(read.contains(&expected), "{expected:?} is not read");
    }
    let unpublished: Vec<&Published> = read.difference(&published).collect();
    assert!(
        unpublished.is_empty(),
        "read under a dimension set never published: {unpublished:?}"
    );
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
