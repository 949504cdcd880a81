//! Refresh metrics as CloudWatch Embedded Metric Format: one document per
//! data type and outcome of a batch, each key's figures a value in the
//! document's arrays (at most [`emf::MAX_VALUES`] a document), so that every
//! statistic stays what one document per key would give while the bytes logged
//! fall about fivefold. A failed key is a document of its own, naming the key
//! and the error.

use std::time::SystemTime;

use serde::Serialize;

use crate::{
    emf::{self, MetricDef},
    ports::RefreshReason,
};

use super::summary::KeySummary;

/// Where refresh outcomes go.
pub trait RefreshMetrics: Send + Sync {
    /// Records the outcomes of one batch's keys, in the batch's order.
    fn record(&self, reason: RefreshReason, summaries: &[KeySummary]);
}

/// Writes EMF lines to standard output, where Lambda sends them to CloudWatch Logs.
#[derive(Debug, Default)]
pub struct EmfRefreshMetrics;

impl RefreshMetrics for EmfRefreshMetrics {
    fn record(&self, reason: RefreshReason, summaries: &[KeySummary]) {
        emf_lines(reason, summaries, SystemTime::now())
            .into_iter()
            .for_each(emf::emit);
    }
}

/// Writes each outcome as a debug log line instead: for the command line, whose
/// standard output is its result.
#[derive(Debug, Default)]
pub struct LoggedRefreshMetrics;

impl RefreshMetrics for LoggedRefreshMetrics {
    fn record(&self, reason: RefreshReason, summaries: &[KeySummary]) {
        for summary in summaries {
            tracing::debug!(
                cache_key = %summary.cache_key,
                reason = reason.as_str(),
                status = ?summary.status,
                items = summary.items,
                bytes = summary.bytes,
                pages = summary.pages,
                duration_ms = summary.duration_ms,
                error = summary.error.as_ref().map(|e| e.kind.as_str()),
                "key refreshed"
            );
        }
    }
}

/// Every EMF document of a batch's outcomes: its refresh documents
/// ([`emf_groups`]), then each key's event latency and change events.
pub fn emf_lines(reason: RefreshReason, summaries: &[KeySummary], at: SystemTime) -> Vec<Vec<u8>> {
    let mut lines = emf_groups(reason, summaries, at);
    for summary in summaries {
        lines.extend(event_lag_line(summary, at));
        lines.extend(change_events_line(summary, at));
    }
    lines
}

const METRICS: [MetricDef; 6] = [
    MetricDef::new("RefreshCount", "Count"),
    MetricDef::new("RefreshChanged", "Count"),
    MetricDef::new("RefreshDuration", "Milliseconds"),
    MetricDef::new("RefreshItems", "Count"),
    MetricDef::new("RefreshBytes", "Bytes"),
    MetricDef::new("UpstreamPages", "Count"),
];

/// One refresh document: keys of one data type and outcome, each a value of
/// every metric's array. A failure's document holds its one key, named.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Line<'a> {
    data_type: &'static str,
    /// The status, or the failure kind for a failed refresh.
    outcome: &'static str,
    reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_key: Option<String>,
    refresh_count: Vec<u8>,
    refresh_changed: Vec<u8>,
    refresh_duration: Vec<u64>,
    refresh_items: Vec<u64>,
    refresh_bytes: Vec<u64>,
    upstream_pages: Vec<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_message: Option<&'a str>,
}

impl<'a> Line<'a> {
    fn new(reason: RefreshReason, first: &'a KeySummary) -> Self {
        let failure = first.error.as_ref();
        Self {
            data_type: first.cache_key.data_type().as_str(),
            outcome: outcome(first),
            reason: reason.as_str(),
            cache_key: failure.map(|_| first.cache_key.to_string()),
            refresh_count: Vec::new(),
            refresh_changed: Vec::new(),
            refresh_duration: Vec::new(),
            refresh_items: Vec::new(),
            refresh_bytes: Vec::new(),
            upstream_pages: Vec::new(),
            error_message: failure.map(|e| e.message.as_str()),
        }
    }

    /// Whether `summary` belongs in this document, which has room for it.
    fn takes(&self, summary: &KeySummary) -> bool {
        self.cache_key.is_none()
            && summary.error.is_none()
            && self.refresh_count.len() < emf::MAX_VALUES
            && self.data_type == summary.cache_key.data_type().as_str()
            && self.outcome == outcome(summary)
    }

    fn push(&mut self, summary: &KeySummary) {
        self.refresh_count.push(1);
        self.refresh_changed.push(u8::from(summary.changed));
        self.refresh_duration.push(summary.duration_ms);
        self.refresh_items.push(summary.items);
        self.refresh_bytes.push(summary.bytes);
        self.upstream_pages.push(summary.pages);
    }
}

/// The status of a refresh, or its failure kind.
fn outcome(summary: &KeySummary) -> &'static str {
    match &summary.error {
        Some(failure) => failure.kind.as_str(),
        None => summary.status.into(),
    }
}

/// How long a change took from its event to the cache, over all data types
/// (which the stack alarms on at p99); by type in Logs Insights, from the
/// document's `DataType`.
const EVENT_LAG: [MetricDef; 1] = [MetricDef::new("EventToCacheLatency", "Milliseconds")];

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct LagLine {
    data_type: &'static str,
    cache_key: String,
    event_to_cache_latency: u64,
}

/// The EMF document of an event's change reaching one key, when it did.
pub fn event_lag_line(summary: &KeySummary, at: SystemTime) -> Option<Vec<u8>> {
    let lag = summary.event_to_cache_ms?;
    let line = LagLine {
        data_type: summary.cache_key.data_type().as_str(),
        cache_key: summary.cache_key.to_string(),
        event_to_cache_latency: lag,
    };
    Some(emf::line(at, &[&[]], &EVENT_LAG, &line))
}

/// Change events a write published and gave up on, over all data types.
const CHANGE_EVENTS: [MetricDef; 2] = [
    MetricDef::new("ChangeEventsPublished", "Count"),
    MetricDef::new("ChangeEventsFailed", "Count"),
];

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ChangeEventsLine {
    data_type: &'static str,
    cache_key: String,
    change_events_published: u64,
    change_events_failed: u64,
}

/// The EMF document of the change events of one key's write, when it had any.
pub fn change_events_line(summary: &KeySummary, at: SystemTime) -> Option<Vec<u8>> {
    if summary.events_published == 0 && summary.events_failed == 0 {
        return None;
    }
    let line = ChangeEventsLine {
        data_type: summary.cache_key.data_type().as_str(),
        cache_key: summary.cache_key.to_string(),
        change_events_published: summary.events_published,
        change_events_failed: summary.events_failed,
    };
    Some(emf::line(at, &[&[]], &CHANGE_EVENTS, &line))
}

/// The refresh documents of a batch: the keys that did not fail grouped by
/// data type and outcome, in order of first appearance, at most
/// [`emf::MAX_VALUES`] a document; each failed key a document of its own.
/// Every figure is published without dimensions, and only the count by data
/// type and outcome as well (the failure alarms and the outcome widgets):
/// each dimension set of each metric is a custom metric of its own, and a
/// figure by type is a Logs Insights query on the documents' `DataType`.
pub fn emf_groups(reason: RefreshReason, summaries: &[KeySummary], at: SystemTime) -> Vec<Vec<u8>> {
    let mut groups: Vec<Line> = Vec::new();
    for summary in summaries {
        let at = match groups.iter().position(|g| g.takes(summary)) {
            Some(at) => at,
            None => {
                groups.push(Line::new(reason, summary));
                groups.len() - 1
            }
        };
        groups[at].push(summary);
    }
    let directives = [
        emf::Directive::new(&[&[]], &METRICS),
        emf::Directive::new(&[&["DataType", "Outcome"]], &METRICS[..1]),
    ];
    groups
        .iter()
        .map(|line| emf::line_of(at, &directives, line))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::{
        domain::{CacheKey, RefreshErrorKind},
        refresh::summary::{FailureKind, FailureSummary, Status},
    };

    #[test]
    fn a_failed_refresh_is_counted_under_its_kind_with_every_declared_metric() {
        let summary = KeySummary {
            cache_key: CacheKey::parse("ec2-subnets#us-east-1#111122223333").unwrap(),
            status: Status::Failed,
            changed: false,
            items: 0,
            bytes: 0,
            pages: 2,
            duration_ms: 40,
            error: Some(FailureSummary::new(
                FailureKind::Upstream(RefreshErrorKind::AccessDenied),
                "denied",
            )),
            event_to_cache_ms: None,
            events_published: 0,
            events_failed: 0,
        };
        let lines = emf_groups(RefreshReason::Schedule, &[summary], SystemTime::now());
        assert_eq!(lines.len(), 1);
        let doc: Value = serde_json::from_slice(&lines[0]).unwrap();
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], emf::NAMESPACE);
        assert_eq!(directive["Dimensions"], serde_json::json!([[]]));
        // By type and outcome, the count alone: 6 + T × outcomes metrics.
        let by_outcome = &doc["_aws"]["CloudWatchMetrics"][1];
        assert_eq!(by_outcome["Namespace"], emf::NAMESPACE);
        assert_eq!(
            by_outcome["Dimensions"],
            serde_json::json!([["DataType", "Outcome"]])
        );
        assert_eq!(
            by_outcome["Metrics"],
            serde_json::json!([{"Name": "RefreshCount", "Unit": "Count"}])
        );
        assert_eq!(doc["Outcome"], "AccessDenied");
        assert_eq!(doc["DataType"], "ec2-subnets");
        assert_eq!(doc["Reason"], "schedule");
        assert_eq!(doc["UpstreamPages"], serde_json::json!([2]));
        // A failure names its key and its error.
        assert_eq!(doc["CacheKey"], "ec2-subnets#us-east-1#111122223333");
        assert_eq!(doc["ErrorMessage"], "denied");
        for m in directive["Metrics"].as_array().unwrap() {
            assert!(doc.get(m["Name"].as_str().unwrap()).is_some(), "{m}");
        }
    }

    #[test]
    fn an_event_s_change_reaching_a_key_is_one_latency_document_and_other_refreshes_none() {
        let mut summary = KeySummary {
            cache_key: CacheKey::parse("drs-source-servers#us-east-1#111122223333").unwrap(),
            status: Status::Refreshed,
            changed: true,
            items: 3,
            bytes: 300,
            pages: 1,
            duration_ms: 20,
            error: None,
            event_to_cache_ms: None,
            events_published: 0,
            events_failed: 0,
        };
        assert!(event_lag_line(&summary, SystemTime::now()).is_none());
        summary.event_to_cache_ms = Some(1_250);
        let doc: Value =
            serde_json::from_slice(&event_lag_line(&summary, SystemTime::now()).unwrap()).unwrap();
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Metrics"][0]["Name"], "EventToCacheLatency");
        assert_eq!(directive["Metrics"][0]["Unit"], "Milliseconds");
        // Without dimensions only, which the stack's alarm reads; the type
        // is a property.
        assert_eq!(directive["Dimensions"], serde_json::json!([[]]));
        assert_eq!(doc["EventToCacheLatency"], 1_250);
        assert_eq!(doc["DataType"], "drs-source-servers");
    }

    #[test]
    fn a_key_that_did_not_fail_is_counted_under_its_status() {
        for (status, outcome) in [
            (Status::Refreshed, "refreshed"),
            (Status::Unchanged, "unchanged"),
            (Status::Superseded, "superseded"),
            (Status::NotInitialized, "not_initialized"),
        ] {
            let summary = KeySummary {
                cache_key: CacheKey::parse("drs-quotas#us-east-1#111122223333").unwrap(),
                status,
                changed: status == Status::Refreshed,
                items: 1,
                bytes: 10,
                pages: 1,
                duration_ms: 5,
                error: None,
                event_to_cache_ms: None,
                events_published: 0,
                events_failed: 0,
            };
            let lines = emf_groups(RefreshReason::Event, &[summary], SystemTime::now());
            let doc: Value = serde_json::from_slice(&lines[0]).unwrap();
            assert_eq!(doc["Outcome"], outcome);
            assert!(
                doc.get("CacheKey").is_none(),
                "only a failure names its key"
            );
        }
    }

    fn unchanged(key: &str, duration_ms: u64) -> KeySummary {
        KeySummary {
            cache_key: CacheKey::parse(key).unwrap(),
            status: Status::Unchanged,
            changed: false,
            items: 2,
            bytes: 100,
            pages: 1,
            duration_ms,
            error: None,
            event_to_cache_ms: None,
            events_published: 0,
            events_failed: 0,
        }
    }

    #[test]
    fn a_batch_is_one_document_per_data_type_and_outcome_whose_arrays_count_every_key() {
        let accounts = 1..=250u64;
        let mut batch: Vec<KeySummary> = accounts
            .clone()
            .flat_map(|a| {
                [
                    unchanged(&format!("ec2-subnets#us-east-1#{:012}", a), a),
                    unchanged(&format!("drs-jobs#us-east-1#{:012}", a), a),
                ]
            })
            .collect();
        let mut failed = unchanged("drs-jobs#us-east-1#999999999999", 7);
        failed.status = Status::Failed;
        failed.error = Some(FailureSummary::new(
            FailureKind::Upstream(RefreshErrorKind::Throttled),
            "slow down",
        ));
        batch.insert(3, failed);
        let docs: Vec<Value> = emf_groups(RefreshReason::Schedule, &batch, SystemTime::now())
            .iter()
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        // 250 keys of each type: three documents each (100, 100, 50), and the
        // failure's own.
        assert_eq!(docs.len(), 7);
        let count = |doc: &Value| doc["RefreshCount"].as_array().unwrap().len();
        let total: usize = docs.iter().map(count).sum();
        assert_eq!(total, batch.len(), "every key is counted once");
        for doc in &docs {
            assert!(count(doc) <= emf::MAX_VALUES);
            for metric in METRICS {
                let values = doc[metric.name].as_array().unwrap();
                assert_eq!(values.len(), count(doc), "{}", metric.name);
            }
        }
        let throttled: Vec<&Value> = docs
            .iter()
            .filter(|d| d["Outcome"] == "Throttled")
            .collect();
        assert_eq!(throttled.len(), 1);
        assert_eq!(throttled[0]["CacheKey"], "drs-jobs#us-east-1#999999999999");
        // The durations of one type's keys are their values, in order.
        let subnets: Vec<u64> = docs
            .iter()
            .filter(|d| d["DataType"] == "ec2-subnets")
            .flat_map(|d| d["RefreshDuration"].as_array().unwrap().clone())
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(subnets, accounts.collect::<Vec<_>>());
        assert!(emf_groups(RefreshReason::Schedule, &[], SystemTime::now()).is_empty());
    }
}
