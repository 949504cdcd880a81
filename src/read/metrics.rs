//! Read metrics as CloudWatch Embedded Metric Format, which CloudWatch turns
//! into metrics without any API call: in Lambda one document per request (an
//! invocation is one read), in a server one document per batch of up to 100
//! reads of a data type, each read a sample in the document's arrays, so
//! that every statistic (the hit rate's average, latency percentiles) stays
//! exact while the lines written fall a hundredfold.

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

/// The metrics also published by `DataType`: the hit rate, the stale share
/// and the data's age, which differ by type. Every metric is published without
/// dimensions too (the totals the stack alarms on and charts). Each dimension
/// set of each metric is a custom metric of its own, billed monthly: the other
/// five by type would be 50 more, for a breakdown Logs Insights gives from the
/// documents' `DataType` property.
const BY_TYPE: [&str; 3] = ["CacheHit", "StaleServe", "DataAge"];

/// A read document of `values`: every metric without dimensions, and
/// [`BY_TYPE`] by `DataType`; `DataAge` only when it has one.
fn document<T: Serialize>(at: SystemTime, with_age: bool, values: &T) -> Vec<u8> {
    let all = metric_defs(with_age);
    let typed: Vec<MetricDef> = all
        .iter()
        .copied()
        .filter(|m| BY_TYPE.contains(&m.name))
        .collect();
    emf::line_of(
        at,
        &[
            emf::Directive::new(&[&[]], &all),
            emf::Directive::new(&[&["DataType"]], &typed),
        ],
        values,
    )
}

/// The metrics a read document declares; `DataAge` only when it has one.
fn metric_defs(with_age: bool) -> Vec<MetricDef> {
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
    if with_age {
        metrics.push(metric("DataAge", "Seconds"));
    }
    metrics
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
    document(at, outcome.data_age.is_some(), &line)
}

/// The most values one EMF metric holds (CloudWatch's limit on an array).
pub const MAX_SAMPLES: usize = emf::MAX_VALUES;

/// Reads gathered per data type until a batch is full or flushed.
#[derive(Debug, Default)]
pub struct ReadBatches {
    batches: [Mutex<Vec<ReadOutcome>>; <DataType as strum::EnumCount>::COUNT],
}

impl ReadBatches {
    /// Adds `outcome` to its data type's batch; returns the batch's document
    /// when this read filled it.
    pub fn add(&self, outcome: &ReadOutcome, at: SystemTime) -> Option<Vec<u8>> {
        let mut batch = self.batches[outcome.data_type as usize]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        batch.push(*outcome);
        (batch.len() >= MAX_SAMPLES).then(|| {
            let full = std::mem::take(&mut *batch);
            drop(batch);
            emf_batch(&full, at)
        })
    }

    /// The documents of every batch not yet written, emptying them.
    pub fn drain(&self, at: SystemTime) -> Vec<Vec<u8>> {
        self.batches
            .iter()
            .filter_map(|batch| {
                let taken = std::mem::take(&mut *batch.lock().unwrap_or_else(|p| p.into_inner()));
                (!taken.is_empty()).then(|| emf_batch(&taken, at))
            })
            .collect()
    }
}

/// Batches reads into EMF documents written to standard output: the
/// server's sink. [`Self::flush`] writes what a quiet interval left.
#[derive(Debug, Default)]
pub struct BatchedEmfStdout(ReadBatches);

impl BatchedEmfStdout {
    pub fn flush(&self) {
        for line in self.0.drain(SystemTime::now()) {
            emf::emit(line);
        }
    }
}

impl MetricsSink for BatchedEmfStdout {
    fn record(&self, outcome: &ReadOutcome) {
        if let Some(line) = self.0.add(outcome, SystemTime::now()) {
            emf::emit(line);
        }
    }
}

/// How often a server writes the batches a quiet interval left partial.
pub const BATCH_FLUSH_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct BatchLine {
    data_type: &'static str,
    reads: usize,
    cache_hit: Vec<u8>,
    memory_hit: Vec<u8>,
    store_hit: Vec<u8>,
    cache_miss: Vec<u8>,
    stale_serve: Vec<u8>,
    cache_unavailable: Vec<u8>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    data_age: Vec<u64>,
    cache_latency: Vec<f64>,
}

/// The EMF document of `reads` (of one data type, at most [`MAX_SAMPLES`]):
/// each metric an array holding every read's value.
pub fn emf_batch(reads: &[ReadOutcome], at: SystemTime) -> Vec<u8> {
    let data_type = reads.first().map_or("", |r| r.data_type.as_str());
    let flag = |f: fn(&ReadOutcome) -> bool| reads.iter().map(|r| u8::from(f(r))).collect();
    let hit = |r: &ReadOutcome| {
        matches!(
            r.result,
            ReadResult::MemoryHit { .. } | ReadResult::StoreHit { .. }
        )
    };
    let line = BatchLine {
        data_type,
        reads: reads.len(),
        cache_hit: flag(hit),
        memory_hit: flag(|r| matches!(r.result, ReadResult::MemoryHit { .. })),
        store_hit: flag(|r| matches!(r.result, ReadResult::StoreHit { .. })),
        cache_miss: flag(|r| r.result == ReadResult::Miss),
        stale_serve: flag(|r| {
            matches!(
                r.result,
                ReadResult::MemoryHit { stale: true } | ReadResult::StoreHit { stale: true }
            )
        }),
        cache_unavailable: flag(|r| r.result == ReadResult::Unavailable),
        data_age: reads.iter().filter_map(|r| r.data_age).collect(),
        cache_latency: reads
            .iter()
            .map(|r| r.latency.as_secs_f64() * 1000.0)
            .collect(),
    };
    document(at, !line.data_age.is_empty(), &line)
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
        // Every metric without dimensions; three of them by type as well.
        assert_eq!(directive["Dimensions"], serde_json::json!([[]]));
        assert_eq!(directive["Metrics"].as_array().unwrap().len(), 8);
        let by_type = &doc["_aws"]["CloudWatchMetrics"][1];
        assert_eq!(by_type["Dimensions"], serde_json::json!([["DataType"]]));
        let names: Vec<&str> = by_type["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["CacheHit", "StaleServe", "DataAge"]);
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

    fn outcome(data_type: DataType, i: usize) -> ReadOutcome {
        let result = match i % 4 {
            0 => ReadResult::MemoryHit { stale: false },
            1 => ReadResult::StoreHit { stale: true },
            2 => ReadResult::Miss,
            _ => ReadResult::Unavailable,
        };
        ReadOutcome {
            data_type,
            result,
            data_age: (i % 4 < 2).then_some(i as u64),
            latency: Duration::from_micros(i as u64),
        }
    }

    /// The sum of the values of `metric` over `docs`, and how many there are.
    fn samples(docs: &[Vec<u8>], metric: &str) -> (u64, usize) {
        docs.iter()
            .map(|d| serde_json::from_slice::<Value>(d).unwrap())
            .flat_map(|d| d[metric].as_array().cloned().unwrap_or_default())
            .fold((0, 0), |(sum, n), v| {
                (sum + v.as_f64().unwrap() as u64, n + 1)
            })
    }

    #[test]
    fn batched_reads_lose_no_sample_and_the_counts_add_up() {
        let batches = std::sync::Arc::new(ReadBatches::default());
        let written = std::sync::Arc::new(Mutex::new(Vec::new()));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let (batches, written) = (batches.clone(), written.clone());
                std::thread::spawn(move || {
                    let data_type = [DataType::Ec2Subnets, DataType::DrsQuotas][t % 2];
                    for i in 0..1_001 {
                        if let Some(doc) = batches.add(&outcome(data_type, i), SystemTime::now()) {
                            written.lock().unwrap().push(doc);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let mut docs = written.lock().unwrap().clone();
        // Full batches were written as they filled; the rest at the flush.
        let full = docs.len();
        docs.extend(batches.drain(SystemTime::now()));
        assert!(full >= 38, "{full}");
        assert!(batches.drain(SystemTime::now()).is_empty());
        let reads = 4 * 1_001;
        // Hits: the memory and store reads, 251 + 250 of each thread's 1,001.
        assert_eq!(samples(&docs, "CacheHit"), (4 * 501, reads));
        assert_eq!(samples(&docs, "CacheMiss").1, reads);
        // Per kind: i % 4 over 0..1001 gives 251, 250, 250, 250.
        assert_eq!(samples(&docs, "MemoryHit").0, 4 * 251);
        assert_eq!(samples(&docs, "StoreHit").0, 4 * 250);
        assert_eq!(samples(&docs, "StaleServe").0, 4 * 250);
        assert_eq!(samples(&docs, "CacheMiss").0, 4 * 250);
        assert_eq!(samples(&docs, "CacheUnavailable").0, 4 * 250);
        assert_eq!(samples(&docs, "CacheLatency").1, reads);
        assert_eq!(samples(&docs, "DataAge").1, 4 * 501);
        let per_doc: usize = docs
            .iter()
            .map(|d| serde_json::from_slice::<Value>(d).unwrap())
            .map(|d| {
                let n = d["Reads"].as_u64().unwrap() as usize;
                assert!(n <= MAX_SAMPLES);
                assert_eq!(d["CacheHit"].as_array().unwrap().len(), n);
                let directive = &d["_aws"]["CloudWatchMetrics"][0];
                for m in directive["Metrics"].as_array().unwrap() {
                    assert!(d.get(m["Name"].as_str().unwrap()).is_some(), "{m}");
                }
                n
            })
            .sum();
        assert_eq!(per_doc, reads);
    }
}
