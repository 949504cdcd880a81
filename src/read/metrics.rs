//! Read metrics as CloudWatch Embedded Metric Format: one JSON line per request,
//! which CloudWatch turns into metrics without any API call.

use std::{
    sync::Mutex,
    time::{Duration, SystemTime},
};

use serde::Serialize;

use crate::{
    domain::DataType,
    emf::{self, MetricDef},
};

pub use crate::emf::NAMESPACE;

/// What one read did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOutcome {
    pub data_type: DataType,
    pub result: ReadResult,
    /// Seconds since the served data was fetched.
    pub data_age: Option<u64>,
    pub latency: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadResult {
    MemoryHit {
        stale: bool,
    },
    StoreHit {
        stale: bool,
    },
    Miss,
    Unavailable,
    /// Served an error that is not about the cache (bad request, not initialized).
    Other,
}

/// Where metric lines go.
pub trait MetricsSink: Send + Sync {
    fn record(&self, outcome: &ReadOutcome);
}

/// Writes EMF lines to standard output, where Lambda sends them to CloudWatch Logs.
#[derive(Debug, Default)]
pub struct EmfStdout;

impl MetricsSink for EmfStdout {
    fn record(&self, outcome: &ReadOutcome) {
        emf::emit(emf_line(outcome, SystemTime::now()));
    }
}

/// Keeps outcomes in memory, for tests and for the local server's stats.
#[derive(Debug, Default)]
pub struct Recorded(Mutex<Vec<ReadOutcome>>);

impl Recorded {
    pub fn take(&self) -> Vec<ReadOutcome> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl MetricsSink for Recorded {
    fn record(&self, outcome: &ReadOutcome) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(*outcome);
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Line {
    data_type: &'static str,
    tier: Option<&'static str>,
    cache_status: &'static str,
    cache_hit: u8,
    memory_hit: u8,
    store_hit: u8,
    cache_miss: u8,
    stale_serve: u8,
    cache_unavailable: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_age: Option<u64>,
    cache_latency: f64,
}

/// The EMF document of one read.
pub fn emf_line(outcome: &ReadOutcome, at: SystemTime) -> Vec<u8> {
    let (tier, stale) = match outcome.result {
        ReadResult::MemoryHit { stale } => (Some("memory"), stale),
        ReadResult::StoreHit { stale } => (Some("store"), stale),
        _ => (None, false),
    };
    let status = match outcome.result {
        _ if tier.is_some() && stale => "stale",
        _ if tier.is_some() => "fresh",
        ReadResult::Miss => "miss",
        ReadResult::Unavailable => "unavailable",
        _ => "error",
    };
    let metric = MetricDef::new;
    let mut metrics = vec![
        metric("CacheHit", "Count"),
        metric("MemoryHit", "Count"),
        metric("StoreHit", "Count"),
        metric("CacheMiss", "Count"),
        metric("StaleServe", "Count"),
        metric("CacheUnavailable", "Count"),
        metric("CacheLatency", "Milliseconds"),
    ];
    if outcome.data_age.is_some() {
        metrics.push(metric("DataAge", "Seconds"));
    }
    let line = Line {
        data_type: outcome.data_type.as_str(),
        tier,
        cache_status: status,
        cache_hit: u8::from(tier.is_some()),
        memory_hit: u8::from(tier == Some("memory")),
        store_hit: u8::from(tier == Some("store")),
        cache_miss: u8::from(outcome.result == ReadResult::Miss),
        stale_serve: u8::from(stale),
        cache_unavailable: u8::from(outcome.result == ReadResult::Unavailable),
        data_age: outcome.data_age,
        cache_latency: outcome.latency.as_secs_f64() * 1000.0,
    };
    emf::line(at, &[&["DataType"]], &metrics, &line)
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use serde_json::Value;

    use super::*;

    #[test]
    fn a_stale_memory_hit_is_a_hit_by_tier_with_its_age() {
        let line = emf_line(
            &ReadOutcome {
                data_type: DataType::Ec2Subnets,
                result: ReadResult::MemoryHit { stale: true },
                data_age: Some(4000),
                latency: Duration::from_micros(1500),
            },
            UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        );
        let doc: Value = serde_json::from_slice(&line).unwrap();
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_000u64);
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(directive["Dimensions"][0][0], "DataType");
        assert_eq!(doc["DataType"], "ec2-subnets");
        assert_eq!(doc["CacheHit"], 1);
        assert_eq!(doc["MemoryHit"], 1);
        assert_eq!(doc["StoreHit"], 0);
        assert_eq!(doc["StaleServe"], 1);
        assert_eq!(doc["CacheStatus"], "stale");
        assert_eq!(doc["DataAge"], 4000);
        assert_eq!(doc["CacheLatency"], 1.5);
        // Every declared metric has a value in the document.
        for m in directive["Metrics"].as_array().unwrap() {
            assert!(doc.get(m["Name"].as_str().unwrap()).is_some(), "{m}");
        }
    }

    #[test]
    fn a_miss_declares_no_age() {
        let line = emf_line(
            &ReadOutcome {
                data_type: DataType::DrsQuotas,
                result: ReadResult::Miss,
                data_age: None,
                latency: Duration::ZERO,
            },
            SystemTime::now(),
        );
        let doc: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(doc["CacheMiss"], 1);
        assert_eq!(doc["CacheHit"], 0);
        assert!(doc.get("DataAge").is_none());
        let names: Vec<_> = doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap().to_owned())
            .collect();
        assert!(!names.contains(&"DataAge".to_owned()));
    }
}
