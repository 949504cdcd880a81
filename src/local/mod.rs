//! `drs-cache local`: the whole job on one machine. The embedded store (kept
//! in a data directory, so a restart serves the last data at once), the fleet
//! simulator in process with a living demo fleet whose changes arrive as
//! events, the planner and refresher as the workflow runs them, and the reader
//! with a status page, all in one process.

pub mod activity;
pub mod console;
pub mod life;
pub mod portable;
pub mod routes;
pub mod status;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

use crate::{
    adapters::{embedded, local_queue::LocalRefreshQueue},
    app::{self, LocalRefresh},
    config::{LocalArgs, LocalConfig, RefreshSide, RefreshSource, StoreKind},
    plan::Trigger,
    read::server,
};

use activity::{Activity, EmfOutput};
pub use routes::WARM_PATH;
use routes::{LocalApp, LocalRouter};

/// The embedded store's file in the data directory.
pub const STORE_FILE: &str = "cache.redb";
/// Where a running local process says how to reach it.
pub const SERVER_FILE: &str = "local.json";
/// EMF documents, with `--metrics file`.
pub const METRICS_FILE: &str = "metrics.emf";
/// The data directory when none is given.
pub const DEFAULT_DATA_DIR: &str = ".drs-cache";
/// Refresh requests waiting at most.
const QUEUE_CAPACITY: usize = 10_000;

/// Where metric documents go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MetricsMode {
    /// `metrics.emf` in the data directory.
    File,
    /// Standard output, as on Lambda.
    Emf,
    Off,
}

/// What the local refresher reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SourceKind {
    /// The fleet simulator, in process.
    Simulator,
    /// AWS, with the caller's credentials.
    Aws,
}

#[derive(Debug, Clone)]
pub struct LocalOptions {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub fleet: Option<PathBuf>,
    pub time_scale: u32,
    pub metrics: MetricsMode,
    pub source: SourceKind,
    pub store: StoreKind,
    pub table: Option<String>,
    /// How often the simulated fleet changes (before the time scale).
    pub change_every: Duration,
    /// How often a status line is printed.
    pub status_every: Duration,
}

/// What `local.json` holds.
#[derive(Debug, Serialize, Deserialize)]
pub struct ServerFile {
    pub url: String,
    pub pid: u32,
}

impl ServerFile {
    /// The running local process of `data_dir`, if it left its address.
    pub fn read(data_dir: &Path) -> Option<Self> {
        let text = std::fs::read_to_string(data_dir.join(SERVER_FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }
}

/// Runs the local mode until Ctrl-C or SIGTERM.
pub async fn run(opts: LocalOptions) -> anyhow::Result<()> {
    std::fs::create_dir_all(&opts.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            opts.data_dir.display()
        )
    })?;
    let args = LocalArgs {
        store: Some(opts.store),
        path: Some(opts.data_dir.join(STORE_FILE)),
        table: opts.table.clone(),
        fleet: opts.fleet.clone(),
        allow_simulated_data: false,
        demo_fleet: true,
        aws: opts.source == SourceKind::Aws,
    };
    let LocalConfig {
        store: store_choice,
        mut reader,
        refresh,
    } = LocalConfig::in_process(&args)?;
    let RefreshSide::InProcess(mut refresh_config) = refresh else {
        anyhow::bail!("the local mode always refreshes in process");
    };
    let scale = opts.time_scale.max(1);
    refresh_config.scale_time(scale);
    reader.refresh_request_interval =
        (reader.refresh_request_interval / scale).max(Duration::from_secs(1));
    reader.demand = reader.demand.map(|policy| policy.scaled(scale));
    let plan = &refresh_config.plan;
    reader.ticks_keep = Some(plan.schedule_interval + plan.refresh_ahead_margin);
    let seed = match &refresh_config.source {
        RefreshSource::Simulator(fleet) => Some(fleet.seed),
        RefreshSource::Aws => None,
    };

    let aws = app::Aws::default();
    let store = match app::open_store(&aws, &store_choice, reader.ownership.deployment()).await {
        Ok(store) => store,
        Err(app::StartError::Embedded { source, .. }) if embedded::is_held(&source) => {
            anyhow::bail!(
                "another process (a drs-cache local?) holds the store in {}: stop it, or pass another --data-dir",
                opts.data_dir.display()
            )
        }
        Err(e) => return Err(e.into()),
    };
    let activity = Arc::new(Activity::new(emf_output(opts.metrics, &opts.data_dir)?));
    let refresh = Arc::new(
        LocalRefresh::start(
            &refresh_config,
            store.clone(),
            activity.clone(),
            Some(activity.clone()),
        )
        .await?,
    );
    let (queue, requests) = LocalRefreshQueue::new(QUEUE_CAPACITY);
    let reader = app::reader_router(
        store.clone(),
        Arc::new(queue),
        reader,
        activity.clone(),
        Some(store.clone()),
    );
    let reader_demand = reader.demand();
    let app = Arc::new(LocalApp {
        refresh: refresh.clone(),
        store,
        activity: activity.clone(),
        ttl: refresh_config.settings.ttl.clone(),
        time_scale: scale,
    });

    let listener = TcpListener::bind(opts.listen)
        .await
        .with_context(|| format!("cannot listen on {}", opts.listen))?;
    let url = format!("http://{}", listener.local_addr()?);
    let server_file = opts.data_dir.join(SERVER_FILE);
    let written = serde_json::to_vec(&ServerFile {
        url: url.clone(),
        pid: std::process::id(),
    })?;
    std::fs::write(&server_file, written)
        .with_context(|| format!("cannot write {}", server_file.display()))?;
    let configured: Vec<_> = refresh.planner.configured().collect();
    eprint!("{}", console::banner(&url, &configured));
    if scale > 1 {
        eprintln!("  time runs {scale}x faster: freshness, ticks and fleet changes are scaled");
    }

    let serving = tokio::spawn(server::serve(
        listener,
        LocalRouter {
            reader,
            app: app.clone(),
        },
        shutdown_signal(),
    ));
    // Every task of the refresh side, stopped (never awaited) when serving
    // ends: the reader's requests; everything configured at once (all of it
    // on a first start, on a restart what expired while stopped), then the
    // schedule, the living fleet and the status lines.
    let mut background = tokio::task::JoinSet::new();
    background.spawn(refresh.clone().drain(requests));
    if let Some(notes) = reader_demand.clone() {
        background.spawn(notes.flush_forever(crate::read::demand::LOCAL_FLUSH_EVERY));
    }
    let flushed = activity.clone();
    background.spawn(async move {
        let mut every = tokio::time::interval(crate::read::metrics::BATCH_FLUSH_INTERVAL);
        loop {
            every.tick().await;
            flushed.flush_reads();
        }
    });
    let kept = activity.clone();
    background.spawn(async move {
        let activity = kept;
        let total = configured.len() as u64;
        // A failure is on the progress line; the ticks try again.
        let _ = console::run_with_progress(
            &refresh,
            &activity,
            &Trigger::Schedule,
            total,
            "start-up refresh",
        )
        .await;
        let living = async {
            if let Some(seed) = seed {
                let every = (opts.change_every / scale).max(Duration::from_millis(200));
                life::run(refresh.clone(), activity, seed, every).await;
            }
        };
        tokio::join!(
            refresh.clone().tick_forever(),
            living,
            console::status_lines(app, opts.status_every),
        );
    });

    let served = serving.await;
    background.shutdown().await;
    activity.flush_reads();
    if let Some(notes) = &reader_demand {
        notes.flush().await;
    }
    let _ = std::fs::remove_file(&server_file);
    served.context("the server task failed")??;
    eprintln!("drs-cache local stopped");
    Ok(())
}

fn emf_output(mode: MetricsMode, data_dir: &Path) -> anyhow::Result<EmfOutput> {
    Ok(match mode {
        MetricsMode::Off => EmfOutput::Off,
        MetricsMode::Emf => EmfOutput::To(Box::new(std::io::stdout())),
        MetricsMode::File => {
            let path = data_dir.join(METRICS_FILE);
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            EmfOutput::To(Box::new(std::io::LineWriter::new(file)))
        }
    })
}

/// Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}
