//! The end of a run: totals over the Map's batch results, and their metrics.

use std::{collections::BTreeMap, time::SystemTime};

use serde::Serialize;

use super::freshness::TypeFreshness;
use crate::{
    emf::{self, MetricDef},
    ports::RefreshReason,
    workflow::{BatchResult, Counts, SummarizeInput},
};

/// Where run totals, and the freshness a scheduled tick found, go.
pub trait RunMetrics: Send + Sync {
    fn record(&self, summary: &RunSummary);
    fn record_freshness(&self, survey: &[TypeFreshness]);
}

/// Writes the EMF line of each run to standard output, where Lambda sends it to
/// CloudWatch Logs.
#[derive(Debug, Default)]
pub struct EmfRunMetrics;

impl RunMetrics for EmfRunMetrics {
    fn record(&self, summary: &RunSummary) {
        emf::emit(summary.emf_line(SystemTime::now()));
    }

    fn record_freshness(&self, survey: &[TypeFreshness]) {
        let now = SystemTime::now();
        for data_type in survey {
            emf::emit(data_type.emf_line(now));
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    pub reason: RefreshReason,
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
                Some(BatchResult::Counts(counts)) => summary.keys += counts,
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
        struct Line {
            reason: &'static str,
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
            reason: self.reason.as_str(),
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
