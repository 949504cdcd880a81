//! The reader Lambda: serves cached reads behind API Gateway and to direct
//! invocations. Never calls DRS or EC2.

use std::sync::Arc;

use drs_cache::{
    app,
    config::ReaderConfig,
    read::{lambda, metrics::EmfStdout},
};
use lambda_runtime::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let aws = app::Aws::default();
    let config = ReaderConfig::from_vars(&aws.environment().await?)?;
    let router = app::reader(&aws, &config, Arc::new(EmfStdout)).await;
    lambda::run(router).await
}
