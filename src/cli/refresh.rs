//! `drs-cache refresh`: one run of the refresh workflow in process.

use std::{io::Write, path::Path, sync::Arc, time::Instant};

use tracing::info;

use super::local::{self, LocalRefresh};
use crate::{
    app::{self, StoreChoice},
    config::Env,
    plan::trigger::Trigger,
    ports::Invalidation,
    refresh::metrics::LoggedRefreshMetrics,
    sim,
};

pub async fn run<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    choice: &StoreChoice,
    sim_config: Option<&Path>,
    all: bool,
) -> anyhow::Result<()> {
    let store = app::open_store(&app::Aws::default(), choice).await?;
    let home = env
        .deployment_account()?
        .unwrap_or_else(sim::default_account);
    let sim = local::sim_config(sim_config, home)?;
    let metrics = Arc::new(LoggedRefreshMetrics);
    let local = LocalRefresh::start(env, store, home, sim, metrics).await?;
    let trigger = if all {
        Trigger::Manual(Invalidation::default())
    } else {
        Trigger::Schedule
    };
    let started = Instant::now();
    let summary = local.run(&trigger).await?;
    let elapsed = started.elapsed();
    info!(elapsed_ms = elapsed.as_millis() as u64, "refresh run took");
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, &summary)?;
    writeln!(out)?;
    Ok(())
}
