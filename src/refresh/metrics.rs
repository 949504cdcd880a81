//! Refresh metrics as CloudWatch Embedded Metric Format: one line per key.

use std::time::SystemTime;

use serde::Serialize;

use crate::{
    emf::{self, MetricDef},
    ports::RefreshReason,
};

use super::summary::KeySummary;

/// Where refresh outcomes go.
pub trait RefreshMetrics: Send + Sync {
    fn record(&self, reason: RefreshReason, summary: &KeySummary);
}

/// Writes EMF lines to standard output, where Lambda sends them to CloudWatch Logs.
#[derive(Debug, Default)]
pub struct EmfRefreshMetrics;

impl RefreshMetrics for EmfRefreshMetrics {
    fn record(&self, reason: RefreshReason, summary: &KeySummary) {
        let now = SystemTime::now();
        emf::emit(emf_line(reason, summary, now));
        if let Some(line) = event_lag_line(summary, now) {
            emf::emit(line);
        }
        if let Some(line) = change_events_line(summary, now) {
            emf::emit(line);
        }
    }
}

/// Writes each outcome as a debug log line instead: for the command line, whose
/// standard output is its result.
#[derive(Debug, Default)]
pub struct LoggedRefreshMetrics;

impl RefreshMetrics for LoggedRefreshMetrics {
    fn record(&self, reason: RefreshReason, summary: &KeySummary) {
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

const METRICS: [MetricDef; 6] = [
    MetricDef::new("RefreshCount", "Count"),
    MetricDef::new("RefreshChanged", "Count"),
    MetricDef::new("RefreshDuration", "Milliseconds"),
    MetricDef::new("RefreshItems", "Count"),
    MetricDef::new("RefreshBytes", "Bytes"),
    MetricDef::new("UpstreamPages", "Count"),
];

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Line<'a> {
    data_type: &'static str,
    /// The status, or the failure kind for a failed refresh.
    outcome: &'static str,
    reason: &'static str,
    cache_key: String,
    refresh_count: u8,
    refresh_changed: u8,
    refresh_duration: u64,
    refresh_items: u64,
    refresh_bytes: u64,
    upstream_pages: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_message: Option<&'a str>,
}

/// How long a change took from its event to the cache, per data type and
/// over all (which the stack alarms on at p99).
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
    Some(emf::line(at, &[&["DataType"], &[]], &EVENT_LAG, &line))
}

/// Change events a write published and gave up on, per data type and over
/// all.
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
    Some(emf::line(at, &[&["DataType"], &[]], &CHANGE_EVENTS, &line))
}

/// The EMF document of one key's refresh, by data type and by outcome.
pub fn emf_line(reason: RefreshReason, summary: &KeySummary, at: SystemTime) -> Vec<u8> {
    let outcome = match &summary.error {
        Some(failure) => failure.kind.as_str(),
        None => summary.status.into(),
    };
    let line = Line {
        data_type: summary.cache_key.data_type().as_str(),
        outcome,
        reason: reason.as_str(),
        cache_key: summary.cache_key.to_string(),
        refresh_count: 1,
        refresh_changed: u8::from(summary.changed),
        refresh_duration: summary.duration_ms,
        refresh_items: summary.items,
        refresh_bytes: summary.bytes,
        upstream_pages: summary.pages,
        error_message: summary.error.as_ref().map(|e| e.message.as_str()),
    };
    // Every figure by data type; only the count by outcome as well (the
    // failure alarms and the outcome widgets), since each dimension set of
    // each metric is a custom metric of its own.
    emf::line_of(
        at,
        &[
            emf::Directive::new(&[&["DataType"]], &METRICS),
            emf::Directive::new(&[&["DataType", "Outcome"]], &METRICS[..1]),
        ],
        &line,
    )
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
        let doc: Value = serde_json::from_slice(&emf_line(
            RefreshReason::Schedule,
            &summary,
            SystemTime::now(),
        ))
        .unwrap();
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], emf::NAMESPACE);
        assert_eq!(directive["Dimensions"], serde_json::json!([["DataType"]]));
        // By outcome, the count alone: 6 × T + 1 × T × outcomes metrics.
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
        assert_eq!(doc["UpstreamPages"], 2);
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
        assert_eq!(directive["Dimensions"][0][0], "DataType");
        // And without dimensions, which the stack's alarm reads.
        assert_eq!(directive["Dimensions"][1], serde_json::json!([]));
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
            let line = emf_line(RefreshReason::Event, &summary, SystemTime::now());
            let doc: Value = serde_json::from_slice(&line).unwrap();
            assert_eq!(doc["Outcome"], outcome);
        }
    }
}
