//! The plan side: which targets a trigger (a scheduled tick, a change event, an
//! invalidation, a reader's miss) refreshes, packed into batches, and the run's
//! summary.

pub mod lambda;
mod planner;
pub mod summary;
pub mod trigger;

pub use planner::{Plan, PlanConfig, Planner};
pub use trigger::Trigger;
