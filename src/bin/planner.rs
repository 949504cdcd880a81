//! The planner Lambda: turns a trigger into batches of targets for the refresh
//! workflow, and totals the run at its end.

use drs_cache::{
    app,
    config::PlannerConfig,
    plan::{lambda, summary::EmfRunMetrics},
};
use lambda_runtime::{Error, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = PlannerConfig::from_env()?;
    let planner = app::planner(&app::Aws::default(), &config).await;
    let metrics = EmfRunMetrics;
    lambda_runtime::run(service_fn(|event| {
        lambda::handle(&planner, &metrics, event)
    }))
    .await
}
