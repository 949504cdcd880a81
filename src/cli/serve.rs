//! `drs-cache serve`: the reader on a local HTTP port.

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context;
use tokio::net::TcpListener;
use tracing::info;

use crate::{
    adapters::local_queue::LocalRefreshQueue,
    app::{self, LocalRefresh},
    config::{LocalConfig, RefreshSide},
    read::{metrics::EmfStdout, server},
    refresh::metrics::EmfRefreshMetrics,
};

/// Targets waiting in the local refresh queue at most.
const LOCAL_QUEUE_CAPACITY: usize = 10_000;

pub async fn run(config: LocalConfig, listen: SocketAddr) -> anyhow::Result<()> {
    let aws = app::Aws::default();
    let store = app::open_store(&aws, &config.store).await?;
    // Without a workflow, the workflow's steps run here, against the simulator.
    let (trigger, _local) = match &config.refresh {
        RefreshSide::Workflow { state_machine_arn } => {
            (aws.workflow_trigger(state_machine_arn).await, None)
        }
        RefreshSide::InProcess(local) => {
            let (queue, receiver) = LocalRefreshQueue::new(LOCAL_QUEUE_CAPACITY);
            let local = Arc::new(
                LocalRefresh::start(local, store.clone(), Arc::new(EmfRefreshMetrics)).await?,
            );
            tokio::spawn(local.clone().drain(receiver));
            tokio::spawn(local.clone().tick_forever());
            (Arc::new(queue) as _, Some(local))
        }
    };
    let router = app::reader_router(store, trigger, config.reader, Arc::new(EmfStdout));
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    server::serve(listener, router, shutdown_signal()).await?;
    info!("reader stopped");
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}
