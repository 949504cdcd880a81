//! `drs-cache refresh`: one run of the refresh workflow in process.

use std::{io::Write, sync::Arc, time::Instant};

use anyhow::Context;
use tracing::info;

use crate::{
    app::{self, LocalRefresh},
    config::RefreshRunConfig,
    plan::Trigger,
    ports::Invalidation,
    refresh::metrics::LoggedRefreshMetrics,
};

pub async fn run(config: RefreshRunConfig, all: bool) -> anyhow::Result<()> {
    let store = app::open_store(&app::Aws::default(), &config.store).await?;
    let local = LocalRefresh::start(&config.refresh, store, Arc::new(LoggedRefreshMetrics)).await?;
    let trigger = if all {
        Trigger::Manual(Invalidation::default())
    } else {
        Trigger::Schedule
    };
    let started = Instant::now();
    let summary = local
        .run(&trigger)
        .await
        .context("the refresh run failed")?;
    info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "refresh run took"
    );
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, &summary)?;
    writeln!(out)?;
    Ok(())
}
