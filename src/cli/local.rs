//! The local mode's refresh side at work: runs of the workflow's steps in
//! process, on a schedule and for what the reader asks.

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use tracing::{info, warn};

use crate::{
    adapters::local_queue::{LocalRefreshReceiver, RefreshRequest},
    app::LocalRefresh,
    errors,
    plan::{Trigger, summary::RunSummary},
    ports::StoreError,
    workflow::run_in_process,
};

impl LocalRefresh {
    /// One run of `trigger`, as the workflow would run it.
    pub async fn run(&self, trigger: &Trigger) -> Result<RunSummary, StoreError> {
        self.run_after(trigger, None).await
    }

    /// One run of `trigger`, for a change made at `event_time` (milliseconds
    /// since the Unix epoch) when an event triggered it.
    pub async fn run_after(
        &self,
        trigger: &Trigger,
        event_time: Option<u64>,
    ) -> Result<RunSummary, StoreError> {
        let summary = run_in_process(
            &self.planner,
            &self.refresher,
            trigger,
            event_time,
            self.concurrency,
        )
        .await?;
        info!(
            reason = summary.reason.as_str(),
            batches = summary.batches,
            refreshed = summary.keys.refreshed,
            unchanged = summary.keys.unchanged,
            failed = summary.keys.failed,
            "local refresh run done"
        );
        Ok(summary)
    }

    /// Runs a scheduled tick every `SCHEDULE_INTERVAL_SECONDS`, the first one
    /// interval after start (until then, reads that miss are refreshed at once).
    pub async fn tick_forever(self: Arc<Self>) {
        let period = self
            .planner
            .config()
            .schedule_interval
            .max(Duration::from_secs(1));
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            ticks.tick().await;
            if let Err(e) = self.run(&Trigger::Schedule).await {
                warn!(error = %errors::chain(&e), "local scheduled refresh failed");
            }
        }
    }

    /// Refreshes what the reader asks for, until the queue closes: each request
    /// is planned like the reader's request to the workflow.
    pub async fn drain(self: Arc<Self>, queue: LocalRefreshReceiver) {
        let requests = futures::stream::unfold(queue, |mut queue| async move {
            queue.recv().await.map(|request| (request, queue))
        });
        requests
            .for_each_concurrent(self.concurrency.max(1), |request| {
                let this = self.clone();
                async move {
                    let trigger = match request {
                        RefreshRequest::Target { key, reason } => Trigger::Targets {
                            reason,
                            keys: vec![key],
                        },
                        RefreshRequest::Invalidation(inv) => Trigger::Manual(inv),
                    };
                    if let Err(e) = this.run(&trigger).await {
                        warn!(error = %errors::chain(&e), "local refresh failed");
                    }
                }
            })
            .await;
    }
}
