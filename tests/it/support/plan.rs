//! A clock the plan tests move by hand, and the run totals they keep.

use std::sync::{
    Mutex,
    atomic::{AtomicU64, Ordering},
};

use drs_cache::{
    domain::{Clock, Timestamp},
    plan::{
        freshness::TypeFreshness,
        summary::{RunMetrics, RunSummary},
    },
};

/// Keeps each run's totals, and each tick's freshness survey, instead of
/// printing them.
#[derive(Default)]
pub struct RecordedRuns {
    runs: Mutex<Vec<RunSummary>>,
    surveys: Mutex<Vec<Vec<TypeFreshness>>>,
}

impl RecordedRuns {
    pub fn take(&self) -> Vec<RunSummary> {
        std::mem::take(&mut *self.runs.lock().unwrap())
    }

    /// The freshness surveys recorded, one per scheduled tick, oldest first.
    pub fn take_surveys(&self) -> Vec<Vec<TypeFreshness>> {
        std::mem::take(&mut *self.surveys.lock().unwrap())
    }
}

impl RunMetrics for RecordedRuns {
    fn record(&self, summary: &RunSummary) {
        self.runs.lock().unwrap().push(summary.clone());
    }

    fn record_freshness(&self, survey: &[TypeFreshness]) {
        self.surveys.lock().unwrap().push(survey.to_vec());
    }
}

/// Stands still at whole seconds until moved.
pub struct ManualClock(AtomicU64);

const MICROS: u64 = 1_000_000;

impl ManualClock {
    pub fn at(t: Timestamp) -> Self {
        let secs = u64::try_from(t.unix_secs()).expect("a time after the epoch");
        Self(AtomicU64::new(secs * MICROS))
    }

    pub fn advance(&self, secs: u64) {
        self.0.fetch_add(secs * MICROS, Ordering::SeqCst);
    }

    /// Moves to the whole second at or after `t`, unless already past it: for a
    /// test whose entries were written at the system's time while it ran.
    pub fn catch_up(&self, t: Timestamp) {
        let secs = u64::try_from(t.unix_secs()).expect("a time after the epoch") + 1;
        self.0.fetch_max(secs * MICROS, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn unix_micros(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}
