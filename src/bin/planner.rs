//! The planner Lambda: turns a trigger into batches of targets for the refresh
//! workflow, and totals the run at its end.

use drs_cache::{app, config::PlannerConfig, plan::lambda};
use lambda_runtime::{Error, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let aws = app::Aws::default();
    let config = PlannerConfig::from_vars(&aws.environment().await?)?;
    let function = app::planner(&aws, &config).await;
    lambda_runtime::run(service_fn(|event| lambda::handle(&function, event))).await
}
