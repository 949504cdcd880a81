//! What `drs-cache local` prints for a person: the URLs to try, the start-up
//! refresh's progress (a bar on a terminal, plain lines otherwise), then one
//! status line per interval.

use std::{io::IsTerminal, sync::Arc, time::Duration};

use indicatif::{ProgressBar, ProgressStyle};

use crate::{
    app::LocalRefresh,
    domain::{CacheKey, DataType},
    plan::{Trigger, summary::RunSummary},
    ports::StoreError,
    read::request::path_of,
};

use super::{
    activity::{Activity, ActivityReport},
    routes::LocalApp,
    status::StatusReport,
};

/// The banner: where the reader listens and a `curl` line per data type, for
/// the first configured key of each.
pub fn banner(url: &str, configured: &[CacheKey]) -> String {
    let mut out = format!(
        "drs-cache local: serving cached DRS and EC2 data at {url}\n  status page: {url}/\n  try:\n"
    );
    for &data_type in DataType::ALL {
        let Some(key) = configured.iter().find(|k| k.data_type() == data_type) else {
            continue;
        };
        let mut query = format!("region={}", key.region());
        if let Some(account) = key.scope().account() {
            query.push_str(&format!("&accountId={account}"));
        }
        out.push_str(&format!(
            "    curl -s '{url}{}?{query}'\n",
            path_of(data_type)
        ));
    }
    out
}

/// A progress display of `total` keys: a bar on a terminal, else a line at
/// the start and one at the end.
pub struct Progress {
    bar: ProgressBar,
    terminal: bool,
}

impl Progress {
    pub fn start(total: u64, what: &str) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let bar = if terminal {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} keys ({elapsed})")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.set_message(what.to_owned());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        } else {
            eprintln!("{what}: {total} keys");
            ProgressBar::hidden()
        };
        Self { bar, terminal }
    }

    pub fn set(&self, done: u64) {
        self.bar
            .set_position(done.min(self.bar.length().unwrap_or(done)));
    }

    pub fn finish(self, line: &str) {
        if self.terminal {
            self.bar.finish_and_clear();
        }
        eprintln!("{line}");
    }
}

/// Runs `trigger` in process with a progress display of `total` keys (counted
/// by `activity`), ending it with the run's outcome.
pub async fn run_with_progress(
    refresh: &LocalRefresh,
    activity: &Activity,
    trigger: &Trigger,
    total: u64,
    what: &str,
) -> Result<RunSummary, StoreError> {
    let progress = Progress::start(total, what);
    let started = std::time::Instant::now();
    let run = refresh.run(trigger);
    tokio::pin!(run);
    let summary = loop {
        tokio::select! {
            done = &mut run => break done,
            () = tokio::time::sleep(Duration::from_millis(100)) => progress.set(activity.keys_done()),
        }
    };
    match &summary {
        Ok(s) => {
            let k = &s.keys;
            progress.finish(&format!(
                "{what} done in {:.1} s: {} refreshed, {} unchanged, {} failed, {} still fresh",
                started.elapsed().as_secs_f64(),
                k.refreshed,
                k.unchanged,
                k.failed,
                total.saturating_sub(k.refreshed + k.unchanged + k.failed),
            ));
        }
        Err(e) => progress.finish(&format!("{what} failed: {e}")),
    }
    summary
}

/// One status line: keys by state, refreshes by reason, reads by tier, the
/// last event and the event-to-cache percentiles.
pub fn status_line(report: &StatusReport) -> String {
    let t = &report.totals;
    let mut line = format!(
        "keys {} fresh {} stale {} expired {} missing {}",
        t.keys,
        t.fresh,
        t.stale,
        t.expired,
        t.missing + t.no_data
    );
    if let Some(ActivityReport {
        refreshes,
        events,
        changes,
        reads,
    }) = &report.activity
    {
        let by_reason: Vec<String> = refreshes
            .by_reason
            .iter()
            .map(|(reason, n)| format!("{reason} {n}"))
            .collect();
        line.push_str(&format!(
            " | refreshes {}",
            if by_reason.is_empty() {
                "none".to_owned()
            } else {
                by_reason.join(", ")
            }
        ));
        line.push_str(&format!(
            " | reads memory {} store {} miss {}",
            reads.memory, reads.store, reads.miss
        ));
        if let Some(rate) = reads.hit_rate {
            line.push_str(&format!(" hit {:.0}%", rate * 100.0));
        }
        if let Some(last) = events.recent.first() {
            line.push_str(&format!(
                " | last event: {} -> {} keys{}",
                last.summary,
                last.keys.len(),
                last.to_cache_ms
                    .map(|ms| format!(" in {ms} ms"))
                    .unwrap_or_default()
            ));
        }
        let lag = &events.event_to_cache;
        if let (Some(p50), Some(p99)) = (lag.p50_ms, lag.p99_ms) {
            line.push_str(&format!(
                " | event->cache p50 {p50} ms p99 {p99} ms ({} events)",
                lag.count
            ));
        }
        if let Some(last) = changes.recent.first() {
            line.push_str(&format!(
                " | changes published {}, last: {} {}",
                changes.published, last.detail_type, last.key
            ));
        }
    }
    line
}

/// Prints a status line every `every`, forever.
pub async fn status_lines(app: Arc<LocalApp>, every: Duration) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        ticks.tick().await;
        match app.status().await {
            Ok(report) => eprintln!("{}", status_line(&report)),
            Err(e) => eprintln!("status unavailable: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_banner_has_a_curl_line_per_configured_type_with_a_real_account_and_region() {
        let keys = vec![
            CacheKey::parse("drs-source-servers#us-east-1#111111111111").unwrap(),
            CacheKey::parse("ec2-instance-types#us-west-2#global").unwrap(),
        ];
        let banner = banner("http://127.0.0.1:8080", &keys);
        assert!(banner.contains(
            "curl -s 'http://127.0.0.1:8080/drs/source-servers?region=us-east-1&accountId=111111111111'"
        ));
        assert!(
            banner.contains("curl -s 'http://127.0.0.1:8080/ec2/instance-types?region=us-west-2'")
        );
        assert_eq!(banner.matches("curl").count(), 2);
    }
}
