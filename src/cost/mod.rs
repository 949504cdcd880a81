//! What a deployment costs a month, and what demand-aware refresh saves: the
//! published prices ([`prices`]), the cost model of a fleet and read rate
//! ([`model`]) and the simulation of a synthetic read trace through the
//! planner's due rule ([`simulate`]). `drs-cache cost` prints them;
//! `docs/cost.md` explains them.

pub mod model;
pub mod prices;
pub mod simulate;

pub use model::{
    BatchExecution, CostEstimate, CostInputs, CostLine, Strategy, Workload, estimate, price,
};
pub use simulate::{SimReport, SimSettings, simulate};
