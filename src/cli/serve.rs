//! `drs-cache serve`: the reader on a local HTTP port.

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context;
use tokio::net::TcpListener;
use tracing::info;

use crate::{
    app::{self, LocalSide},
    config::LocalConfig,
    read::{
        metrics::{BATCH_FLUSH_INTERVAL, BatchedEmfStdout},
        server,
    },
};

pub async fn run(config: LocalConfig, listen: SocketAddr) -> anyhow::Result<()> {
    let aws = app::Aws::default();
    let store = app::open_store(&aws, &config.store, config.reader.ownership.deployment()).await?;
    let metrics = Arc::new(BatchedEmfStdout::default());
    let (router, local) = app::local_reader(&aws, &config, store, metrics.clone()).await?;
    // Without a workflow, the workflow's steps run here, against the simulator.
    if let Some(LocalSide { refresh, requests }) = local {
        tokio::spawn(refresh.clone().drain(requests));
        tokio::spawn(refresh.tick_forever());
    }
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let flushed = metrics.clone();
    let flusher = tokio::spawn(async move {
        let mut every = tokio::time::interval(BATCH_FLUSH_INTERVAL);
        loop {
            every.tick().await;
            flushed.flush();
        }
    });
    let demand = router.demand();
    let notes = demand
        .clone()
        .map(|d| tokio::spawn(d.flush_forever(crate::read::demand::SERVER_FLUSH_EVERY)));
    let served = server::serve(listener, router, crate::local::shutdown_signal()).await;
    flusher.abort();
    metrics.flush();
    if let (Some(task), Some(demand)) = (notes, demand) {
        task.abort();
        demand.flush().await;
    }
    served?;
    info!("reader stopped");
    Ok(())
}
