//! The refresh side: fetch targets from DRS, EC2 and IAM, shape them into the
//! views the reader serves, and write them to the cache store safely.

mod jobs;
pub mod lambda;
pub mod metrics;
mod round;
mod service;
pub mod summary;
pub mod views;

pub use round::{Retry, RetryPolicy, RoundOutcome};
pub use service::{ChangePublishing, DEFAULT_JOBS_WINDOW, RefreshSettings, Refresher, Upstream};
