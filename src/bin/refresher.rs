//! The refresher Lambda: fetches a batch of targets from DRS, EC2 and IAM and
//! writes them to the cache table. A task of the refresh workflow.

use drs_cache::{app, config::RefresherConfig};
use lambda_runtime::{Error, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = RefresherConfig::from_env()?;
    let function = app::refresher(&app::Aws::default(), &config).await?;
    lambda_runtime::run(service_fn(|event| function.handle(event))).await
}
