//! A clock the plan tests move by hand, the run totals they keep, and their
//! rig: the simulator, a refresher and a planner on one table.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use drs_cache::{
    adapters::aws::{AccountAccess, Credentials, StaticKeys},
    domain::{Clock, Timestamp},
    plan::{
        PlanConfig, Planner,
        freshness::TypeFreshness,
        summary::{RunMetrics, RunSummary},
    },
};
use drs_sim::{SimConfig, Simulator};

use super::{
    InSim,
    refresh::{Endpoints, Rig, home, sdk_config},
    workflow::other,
};

/// The simulator with both accounts of the workflow tests reachable, a
/// refresher, and a planner with `config` on the same table, with a clock the
/// test moves.
pub async fn planner_rig(config: PlanConfig) -> (Rig, Planner, Arc<ManualClock>) {
    let key = "LOCALOTHER";
    let sim = Simulator::start(
        "127.0.0.1:0".parse().unwrap(),
        SimConfig {
            access_keys: [(key.to_owned(), other().sim())].into(),
            ..SimConfig::default()
        },
    )
    .await
    .unwrap();
    let base = sdk_config(&sim.endpoint(), Endpoints::default()).await;
    let access = AccountAccess {
        own_account: Some(home()),
        others: Credentials::Static(HashMap::from([(other(), StaticKeys::new(key, "x"))])),
    };
    let rig = Rig::over(sim, base, access).await;
    let clock = Arc::new(ManualClock::at(Timestamp::now()));
    let planner = Planner::new(rig.store.clone(), rig.store.clone(), clock.clone(), config);
    (rig, planner, clock)
}

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
