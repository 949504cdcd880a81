//! The plan side: which targets a trigger (a scheduled tick, a change event, an
//! invalidation, a reader's miss) refreshes, packed into batches, the run's
//! summary, and how fresh a scheduled tick finds the configured targets.

mod capacity;
pub mod due;
pub mod freshness;
pub mod lambda;
mod planner;
pub mod summary;
pub mod trigger;

pub use planner::{DueWhy, Plan, PlanConfig, Planner, Preview, PreviewTarget};
pub use trigger::Trigger;
