//! What the local process did lately: refreshes by reason, reads by tier,
//! events handled and how long each took to reach the cache, and the change
//! events refreshes published. It is the metrics
//! sink of the local reader and refresher, and writes their EMF documents where
//! asked (a file, standard output, or nowhere).

use std::{
    collections::{BTreeMap, VecDeque},
    io::Write,
    sync::{Mutex, MutexGuard, PoisonError},
    time::SystemTime,
};

use serde::Serialize;

use crate::{
    domain::{Timestamp, changes::ChangeEvent},
    ports::{ChangeFeed, PublishOutcome, RefreshReason},
    read::metrics::{self as read_metrics, MetricsSink, ReadOutcome, ReadResult},
    refresh::{
        metrics::{self as refresh_metrics, RefreshMetrics},
        summary::KeySummary,
    },
};

/// Refreshes and events kept for the page and the percentiles.
const RECENT: usize = 50;
/// Event latencies the percentiles are taken over.
const LATENCIES: usize = 200;

/// One key's refresh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RefreshRecord {
    pub at: String,
    pub key: String,
    pub reason: &'static str,
    pub status: &'static str,
    pub duration_ms: u64,
    pub event_to_cache_ms: Option<u64>,
}

/// One fleet event handled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventRecord {
    pub at: String,
    pub summary: String,
    pub detail_type: String,
    pub account: Option<String>,
    pub region: Option<String>,
    /// The keys the planner refreshed for it.
    pub keys: Vec<String>,
    /// From the change to the last of its keys written.
    pub to_cache_ms: Option<u64>,
}

/// Reads by where they were served from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadCounts {
    pub memory: u64,
    pub store: u64,
    pub miss: u64,
    pub unavailable: u64,
    pub other: u64,
    /// Reads served from memory or the store over reads of cached data.
    pub hit_rate: Option<f64>,
}

/// Percentiles of recent event-to-cache latencies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Latencies {
    pub count: u64,
    pub p50_ms: Option<u64>,
    pub p99_ms: Option<u64>,
}

impl Latencies {
    /// Nearest-rank percentiles of `samples`.
    pub fn of(samples: impl IntoIterator<Item = u64>) -> Self {
        let mut sorted: Vec<u64> = samples.into_iter().collect();
        sorted.sort_unstable();
        let rank = |p: f64| {
            let n = sorted.len();
            (n > 0).then(|| sorted[((p * n as f64).ceil() as usize).clamp(1, n) - 1])
        };
        Self {
            count: sorted.len() as u64,
            p50_ms: rank(0.50),
            p99_ms: rank(0.99),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Refreshes {
    pub by_reason: BTreeMap<&'static str, u64>,
    pub recent: Vec<RefreshRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Events {
    pub handled: u64,
    pub event_to_cache: Latencies,
    pub recent: Vec<EventRecord>,
}

/// One change event a refresh published: what the change feed sends to
/// EventBridge in AWS.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeRecord {
    pub at: String,
    pub detail_type: &'static str,
    pub key: String,
    pub detail: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Changes {
    pub published: u64,
    pub recent: Vec<ChangeRecord>,
}

/// A copy of the activity, newest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActivityReport {
    pub refreshes: Refreshes,
    pub events: Events,
    pub changes: Changes,
    pub reads: ReadCounts,
}

/// Where EMF documents go.
pub enum EmfOutput {
    Off,
    To(Box<dyn Write + Send>),
}

#[derive(Default)]
struct State {
    by_reason: BTreeMap<&'static str, u64>,
    keys_done: u64,
    refreshes: VecDeque<RefreshRecord>,
    events: VecDeque<EventRecord>,
    handled: u64,
    latencies: VecDeque<u64>,
    changes: VecDeque<ChangeRecord>,
    published: u64,
    reads: ReadCounts,
}

/// The local process's activity; shared by its reader, refresher and console.
pub struct Activity {
    state: Mutex<State>,
    emf: Mutex<EmfOutput>,
    /// Reads gathered into EMF documents of up to 100 samples.
    read_batches: read_metrics::ReadBatches,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn push<T>(queue: &mut VecDeque<T>, item: T, cap: usize) {
    if queue.len() == cap {
        queue.pop_front();
    }
    queue.push_back(item);
}

impl Activity {
    pub fn new(emf: EmfOutput) -> Self {
        Self {
            state: Mutex::default(),
            emf: Mutex::new(emf),
            read_batches: read_metrics::ReadBatches::default(),
        }
    }

    /// Writes the read metrics a quiet interval left in partial batches.
    pub fn flush_reads(&self) {
        for line in self.read_batches.drain(SystemTime::now()) {
            self.emit(line);
        }
    }

    fn emit(&self, line: Vec<u8>) {
        if let EmfOutput::To(out) = &mut *lock(&self.emf) {
            // A lost metric line never fails the work it describes.
            let _ = out.write_all(&line).and_then(|()| out.write_all(b"\n"));
        }
    }

    /// Keys refreshed (with any outcome) since start.
    pub fn keys_done(&self) -> u64 {
        lock(&self.state).keys_done
    }

    /// Records a fleet event the planner acted on.
    pub fn event_handled(&self, record: EventRecord) {
        let mut state = lock(&self.state);
        state.handled += 1;
        if let Some(ms) = record.to_cache_ms {
            push(&mut state.latencies, ms, LATENCIES);
        }
        push(&mut state.events, record, RECENT);
    }

    pub fn report(&self) -> ActivityReport {
        let state = lock(&self.state);
        let mut reads = state.reads;
        let hits = reads.memory + reads.store;
        let cached_reads = hits + reads.miss + reads.unavailable;
        reads.hit_rate = (cached_reads > 0).then(|| hits as f64 / cached_reads as f64);
        ActivityReport {
            refreshes: Refreshes {
                by_reason: state.by_reason.clone(),
                recent: state.refreshes.iter().rev().cloned().collect(),
            },
            events: Events {
                handled: state.handled,
                event_to_cache: Latencies::of(state.latencies.iter().copied()),
                recent: state.events.iter().rev().cloned().collect(),
            },
            changes: Changes {
                published: state.published,
                recent: state.changes.iter().rev().cloned().collect(),
            },
            reads,
        }
    }
}

/// The local mode's change feed: the events are kept for the status output
/// and page, as many as [`RECENT`].
#[async_trait::async_trait]
impl ChangeFeed for Activity {
    async fn publish(&self, events: &[ChangeEvent]) -> PublishOutcome {
        let at = Timestamp::now().rfc3339();
        let mut state = lock(&self.state);
        for event in events {
            state.published += 1;
            let record = ChangeRecord {
                at: at.clone(),
                detail_type: event.detail_type,
                key: event.key.to_string(),
                detail: event.detail.clone(),
            };
            push(&mut state.changes, record, RECENT);
        }
        PublishOutcome {
            published: events.len(),
            failed: 0,
        }
    }
}

impl RefreshMetrics for Activity {
    fn record(&self, reason: RefreshReason, summaries: &[KeySummary]) {
        for line in refresh_metrics::emf_lines(reason, summaries, SystemTime::now()) {
            self.emit(line);
        }
        let mut state = lock(&self.state);
        let keys = summaries.len() as u64;
        state.keys_done += keys;
        *state.by_reason.entry(reason.as_str()).or_default() += keys;
        for summary in summaries {
            let record = RefreshRecord {
                at: Timestamp::now().rfc3339(),
                key: summary.cache_key.to_string(),
                reason: reason.as_str(),
                status: summary
                    .error
                    .as_ref()
                    .map_or(summary.status.into(), |e| e.kind.as_str()),
                duration_ms: summary.duration_ms,
                event_to_cache_ms: summary.event_to_cache_ms,
            };
            push(&mut state.refreshes, record, RECENT);
        }
    }
}

impl MetricsSink for Activity {
    fn record(&self, outcome: &ReadOutcome) {
        if let Some(line) = self.read_batches.add(outcome, SystemTime::now()) {
            self.emit(line);
        }
        let mut state = lock(&self.state);
        let reads = &mut state.reads;
        *match outcome.result {
            ReadResult::MemoryHit { .. } => &mut reads.memory,
            ReadResult::StoreHit { .. } => &mut reads.store,
            ReadResult::Miss => &mut reads.miss,
            ReadResult::Unavailable => &mut reads.unavailable,
            ReadResult::Other => &mut reads.other,
        } += 1;
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Duration};

    use super::*;
    use crate::{
        domain::{CacheKey, DataType},
        refresh::summary::Status,
    };

    /// Collects what is written, for the tests.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            lock(&self.0).extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn summary(lag: Option<u64>) -> KeySummary {
        KeySummary {
            cache_key: CacheKey::parse("ec2-subnets#us-east-1#111111111111").unwrap(),
            status: Status::Refreshed,
            changed: true,
            items: 4,
            bytes: 100,
            pages: 1,
            duration_ms: 7,
            error: None,
            event_to_cache_ms: lag,
            events_published: 0,
            events_failed: 0,
        }
    }

    #[test]
    fn every_refresh_is_one_emf_document_and_reads_are_samples_of_a_batch() {
        let sink = Sink::default();
        let activity = Activity::new(EmfOutput::To(Box::new(sink.clone())));
        RefreshMetrics::record(&activity, RefreshReason::Schedule, &[summary(None)]);
        RefreshMetrics::record(&activity, RefreshReason::Event, &[summary(Some(900))]);
        for result in [
            ReadResult::MemoryHit { stale: false },
            ReadResult::MemoryHit { stale: true },
            ReadResult::StoreHit { stale: false },
            ReadResult::Miss,
        ] {
            MetricsSink::record(
                &activity,
                &ReadOutcome {
                    data_type: DataType::Ec2Subnets,
                    result,
                    data_age: None,
                    latency: Duration::from_micros(5),
                },
            );
        }
        let report = activity.report();
        assert_eq!(report.refreshes.by_reason["schedule"], 1);
        assert_eq!(report.refreshes.by_reason["event"], 1);
        assert_eq!(report.refreshes.recent[0].event_to_cache_ms, Some(900));
        assert_eq!((report.reads.memory, report.reads.store), (2, 1));
        assert_eq!(report.reads.hit_rate, Some(0.75));
        assert_eq!(activity.keys_done(), 2);
        let documents = || -> Vec<serde_json::Value> {
            String::from_utf8(lock(&sink.0).clone())
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        };
        // Two refresh documents and one latency document; the reads wait in
        // their batch until it fills or is flushed.
        assert_eq!(documents().len(), 3);
        activity.flush_reads();
        let docs = documents();
        assert_eq!(docs.len(), 4);
        let reads = &docs[3];
        assert_eq!(reads["Reads"], 4);
        assert_eq!(reads["CacheHit"], serde_json::json!([1, 1, 1, 0]));
        assert_eq!(reads["StaleServe"], serde_json::json!([0, 1, 0, 0]));
        assert_eq!(
            docs.iter()
                .filter(|d| d.get("EventToCacheLatency").is_some())
                .count(),
            1
        );
    }

    #[test]
    fn percentiles_are_nearest_rank_over_the_recent_events() {
        let l = Latencies::of((1..=100).rev());
        assert_eq!((l.count, l.p50_ms, l.p99_ms), (100, Some(50), Some(99)));
        assert_eq!(Latencies::of([7]).p99_ms, Some(7));
        assert_eq!(Latencies::of([]).p50_ms, None);
        let activity = Activity::new(EmfOutput::Off);
        for ms in [100, 300, 200] {
            activity.event_handled(EventRecord {
                at: String::new(),
                summary: String::new(),
                detail_type: String::new(),
                account: None,
                region: None,
                keys: Vec::new(),
                to_cache_ms: Some(ms),
            });
        }
        let events = activity.report().events;
        assert_eq!(events.handled, 3);
        assert_eq!(events.event_to_cache.p50_ms, Some(200));
        assert_eq!(events.event_to_cache.p99_ms, Some(300));
    }
}
