//! The reader Lambda: serves cached reads behind API Gateway and to direct
//! invocations. Never calls DRS or EC2.

use std::sync::Arc;

use drs_cache::{
    app::{self, Aws, StoreChoice},
    config::Env,
    read::{lambda, metrics::EmfStdout},
};
use lambda_runtime::{Error, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let (env, aws) = (Env::process(), Aws::default());
    let table = env.required("CACHE_TABLE_NAME")?;
    let store = app::open_store(&aws, &StoreChoice::DynamoDb { table }).await?;
    let trigger = app::workflow_trigger(&aws, env.required("REFRESH_STATE_MACHINE_ARN")?).await;
    let router = app::reader_router(store, trigger, env.reader_settings()?, Arc::new(EmfStdout));
    lambda_runtime::run(service_fn(|event| lambda::handle(&router, event))).await
}
