//! The end of a run: totals over the Map's batch results, and their metrics.

use std::{collections::BTreeMap, time::SystemTime};

use serde::{Deserialize, Serialize};

use crate::emf::{self, MetricDef};

/// Where run totals go.
pub trait RunMetrics: Send + Sync {
    fn record(&self, summary: &RunSummary);
}

/// Writes the EMF line of each run to standard output, where Lambda sends it to
/// CloudWatch Logs.
#[derive(Debug, Default)]
pub struct EmfRunMetrics;

impl RunMetrics for EmfRunMetrics {
    fn record(&self, summary: &RunSummary) {
        emf::emit(summary.emf_line(SystemTime::now()));
    }
}

/// One Map iteration's result: the refresher's counts, or a caught failure.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum BatchResult {
    Failed {
        #[serde(rename = "failedBatch")]
        failed_batch: bool,
        #[serde(default)]
        error: Option<String>,
        /// Targets the batch held: none of them is counted in the key totals
        /// (the refresher recorded each key's outcome on its entry).
        #[serde(default)]
        targets: Option<u64>,
    },
    Counts(Counts),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Counts {
    pub refreshed: u64,
    pub unchanged: u64,
    pub superseded: u64,
    pub not_initialized: u64,
    pub failed: u64,
}

/// What `Summarize` receives.
#[derive(Debug, Clone, Deserialize)]
pub struct SummarizeInput {
    pub reason: String,
    /// A Distributed Map gives `null` for a child it gave up on.
    pub results: Vec<Option<BatchResult>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    pub reason: String,
    pub batches: u64,
    pub failed_batches: u64,
    /// Targets of the failed batches, whose keys `keys` does not count.
    pub failed_batch_targets: u64,
    /// Keys of the batches that ended normally.
    #[serde(flatten)]
    pub keys: Counts,
    /// Failed batches per error type.
    pub errors: BTreeMap<String, u64>,
}

impl RunSummary {
    pub fn of(input: SummarizeInput) -> Self {
        let mut summary = Self {
            reason: input.reason,
            batches: input.results.len() as u64,
            failed_batches: 0,
            failed_batch_targets: 0,
            keys: Counts::default(),
            errors: BTreeMap::new(),
        };
        for result in input.results {
            match result {
                Some(BatchResult::Counts(c)) => {
                    let k = &mut summary.keys;
                    k.refreshed += c.refreshed;
                    k.unchanged += c.unchanged;
                    k.superseded += c.superseded;
                    k.not_initialized += c.not_initialized;
                    k.failed += c.failed;
                }
                Some(BatchResult::Failed { error, targets, .. }) => {
                    summary.failed_batches += 1;
                    summary.failed_batch_targets += targets.unwrap_or(0);
                    let error = error.unwrap_or_else(|| "Unknown".into());
                    *summary.errors.entry(error).or_default() += 1;
                }
                None => {
                    summary.failed_batches += 1;
                    *summary.errors.entry("Abandoned".into()).or_default() += 1;
                }
            }
        }
        summary
    }

    /// The run as one EMF line, by reason.
    pub fn emf_line(&self, at: SystemTime) -> Vec<u8> {
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Line<'a> {
            reason: &'a str,
            run_batches: u64,
            run_failed_batches: u64,
            run_failed_batch_targets: u64,
            run_refreshed: u64,
            run_unchanged: u64,
            run_not_initialized: u64,
            run_failed: u64,
        }
        const METRICS: [MetricDef; 7] = [
            MetricDef::new("RunBatches", "Count"),
            MetricDef::new("RunFailedBatches", "Count"),
            MetricDef::new("RunFailedBatchTargets", "Count"),
            MetricDef::new("RunRefreshed", "Count"),
            MetricDef::new("RunUnchanged", "Count"),
            MetricDef::new("RunNotInitialized", "Count"),
            MetricDef::new("RunFailed", "Count"),
        ];
        let line = Line {
            reason: &self.reason,
            run_batches: self.batches,
            run_failed_batches: self.failed_batches,
            run_failed_batch_targets: self.failed_batch_targets,
            run_refreshed: self.keys.refreshed,
            run_unchanged: self.keys.unchanged,
            run_not_initialized: self.keys.not_initialized,
            run_failed: self.keys.failed,
        };
        emf::line(at, &[&["Reason"]], &METRICS, &line)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn totals_add_counts_and_name_failed_batches() {
        let input: SummarizeInput = serde_json::from_value(json!({
            "reason": "schedule",
            "results": [
                {"refreshed": 3, "unchanged": 1, "superseded": 0, "notInitialized": 2, "failed": 0},
                {"failedBatch": true, "error": "AccessDenied", "targets": 3},
                {"refreshed": 1, "unchanged": 4, "superseded": 1, "notInitialized": 0, "failed": 0},
                null
            ]
        }))
        .unwrap();
        let s = RunSummary::of(input);
        assert_eq!(s.batches, 4);
        assert_eq!(s.failed_batches, 2);
        assert_eq!(s.failed_batch_targets, 3);
        assert_eq!(s.keys.refreshed, 4);
        assert_eq!(s.keys.unchanged, 5);
        assert_eq!(s.keys.not_initialized, 2);
        assert_eq!(s.errors["AccessDenied"], 1);
        assert_eq!(s.errors["Abandoned"], 1);
        let doc: serde_json::Value =
            serde_json::from_slice(&s.emf_line(SystemTime::now())).unwrap();
        assert_eq!(doc["RunRefreshed"], 4);
        assert_eq!(doc["Reason"], "schedule");
    }
}
