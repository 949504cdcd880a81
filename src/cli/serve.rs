//! `drs-cache serve`: the reader on a local HTTP port.

use std::{net::SocketAddr, sync::Arc};

use tokio::net::TcpListener;
use tracing::info;

use crate::{
    app::{self, StoreChoice},
    config::Env,
    read::{metrics::EmfStdout, server},
};

pub async fn run<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    choice: &StoreChoice,
    listen: SocketAddr,
) -> anyhow::Result<()> {
    let settings = env.reader_settings()?;
    let aws = app::Aws::default();
    let (store, trigger) = tokio::join!(
        app::open_store(&aws, choice),
        app::refresh_trigger(&aws, env)
    );
    let (trigger, local_queue) = trigger;
    if let Some(mut queue) = local_queue {
        tokio::spawn(async move {
            while let Some(request) = queue.recv().await {
                info!(cache_key = %request.key, reason = request.reason.as_str(), "refresh requested");
            }
        });
    }
    let router = app::reader_router(store?, trigger, settings, Arc::new(EmfStdout));
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
