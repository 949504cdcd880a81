//! A clock the plan tests move by hand, and the run totals they keep.

use std::sync::{
    Mutex,
    atomic::{AtomicI64, Ordering},
};

use drs_cache::{
    domain::{Clock, Timestamp},
    plan::summary::{RunMetrics, RunSummary},
};

/// Keeps each run's totals instead of printing them.
#[derive(Default)]
pub struct RecordedRuns(Mutex<Vec<RunSummary>>);

impl RecordedRuns {
    pub fn take(&self) -> Vec<RunSummary> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl RunMetrics for RecordedRuns {
    fn record(&self, summary: &RunSummary) {
        self.0.lock().unwrap().push(summary.clone());
    }
}

pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn at(t: Timestamp) -> Self {
        Self(AtomicI64::new(t.unix_secs()))
    }

    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_secs(self.0.load(Ordering::SeqCst))
    }
}
