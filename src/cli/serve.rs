//! `drs-cache serve`: the reader on a local HTTP port.

use std::{net::SocketAddr, path::Path, sync::Arc};

use tokio::net::TcpListener;
use tracing::info;

use super::local::{self, LocalRefresh};
use crate::{
    app::{self, StoreChoice},
    config::Env,
    read::{metrics::EmfStdout, server},
    refresh::metrics::EmfRefreshMetrics,
    sim,
};

pub async fn run<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    choice: &StoreChoice,
    listen: SocketAddr,
    sim_config: Option<&Path>,
) -> anyhow::Result<()> {
    let mut settings = env.reader_settings()?;
    let aws = app::Aws::default();
    let (store, trigger) = tokio::join!(
        app::open_store(&aws, choice),
        app::refresh_trigger(&aws, env)
    );
    let store = store?;
    let (trigger, local_queue) = trigger;
    // Without a workflow, the workflow's steps run here, against the simulator.
    let _local = match local_queue {
        Some(queue) => {
            let home = settings
                .default_account
                .unwrap_or_else(sim::default_account);
            settings.default_account = Some(home);
            let sim = local::sim_config(sim_config, home)?;
            let metrics = Arc::new(EmfRefreshMetrics);
            let local =
                Arc::new(LocalRefresh::start(env, store.clone(), home, sim, metrics).await?);
            tokio::spawn(local.clone().drain(queue));
            tokio::spawn(local.clone().tick_forever());
            Some(local)
        }
        None => None,
    };
    let router = app::reader_router(store, trigger, settings, Arc::new(EmfStdout));
    let listener = TcpListener::bind(listen).await?;
    server::serve(listener, router, shutdown_signal()).await?;
    info!("reader stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
