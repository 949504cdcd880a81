//! The cost model: what a deployment does in a day ([`Workload`]) and what
//! that costs in a month ([`CostEstimate`]), as small functions of the fleet
//! (accounts A, regions R, data types T, keys K), the read rate and the
//! refresh strategy. `docs/cost.md` quotes each function.
//!
//! A workload comes from [`Workload::estimate`] (closed formulas over a Zipf
//! read distribution) or from the simulation (`super::simulate`), which counts
//! the same quantities by running the planner's due rule over a synthetic
//! trace; [`price`] turns either into monthly lines.

use std::time::Duration;

use serde::Serialize;

use crate::domain::{DataType, DemandPolicy, TtlTable};

use super::prices;

/// Days in the month AWS prices by: 730 hours.
pub const DAYS_PER_MONTH: f64 = 730.0 / 24.0;

const SECONDS_PER_DAY: f64 = 86_400.0;

/// Every data type, derived ones included, for arrays indexed by type.
pub const TYPES: usize = <DataType as strum::EnumCount>::COUNT;

/// The data types whose changed bodies publish change events
/// (`docs/api.md#change-events`).
const EVENT_TYPES: [DataType; 5] = [
    DataType::DrsSourceServers,
    DataType::DrsQuotas,
    DataType::DrsJobs,
    DataType::Ec2Subnets,
    DataType::Ec2SecurityGroups,
];

/// How the cache is kept fresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    /// `REFRESH_AHEAD=always`: every configured key refreshed ahead of expiry.
    AlwaysRefresh,
    /// `REFRESH_AHEAD=demand`: keys read within their window refreshed ahead,
    /// the others at the floor and when a read finds them stale.
    DemandAware(DemandPolicy),
    /// The original design: cache on read, no background refresh; a read
    /// that finds its entry expired fetches it there and then.
    ReadThrough,
}

impl Strategy {
    pub fn name(&self) -> &'static str {
        match self {
            Self::AlwaysRefresh => "always-refresh",
            Self::DemandAware(_) => "demand-aware",
            Self::ReadThrough => "read-through",
        }
    }
}

/// One quantity per data type, indexed by `DataType as usize`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PerType(pub [f64; TYPES]);

impl PerType {
    pub fn get(&self, t: DataType) -> f64 {
        self.0[t as usize]
    }

    pub fn add(&mut self, t: DataType, n: f64) {
        self.0[t as usize] += n;
    }

    pub fn total(&self) -> f64 {
        self.0.iter().sum()
    }

    /// Each quantity divided by `d`.
    #[must_use]
    pub fn per(&self, d: f64) -> Self {
        Self(self.0.map(|v| v / d))
    }

    /// Each type's quantity times what `f` gives for the type.
    pub fn weighted(&self, f: impl Fn(DataType) -> f64) -> f64 {
        <DataType as strum::VariantArray>::VARIANTS
            .iter()
            .map(|&t| self.get(t) * f(t))
            .sum()
    }
}

impl Serialize for PerType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        for &t in <DataType as strum::VariantArray>::VARIANTS {
            if self.get(t) != 0.0 {
                map.serialize_entry(t.as_str(), &self.get(t))?;
            }
        }
        map.end()
    }
}

/// What the estimate assumes besides prices and the configuration: sizes and
/// durations no configuration sets. Each is a round figure, stated in
/// `docs/cost.md`; item sizes were measured on the demo fleet.
#[derive(Debug, Clone, PartialEq)]
pub struct Assumptions {
    /// Bytes of an entry (encoded body and head attributes), per data type.
    pub item_bytes: [u64; TYPES],
    /// Bytes of a head whose body is in chunks: at most one write unit
    /// (bodies over 400 bytes are chunked, `src/adapters/dynamodb/item.rs`).
    pub chunked_head_bytes: u64,
    /// Days between two raises of an entry's chunks' expiry by its extensions.
    pub chunk_ttl_raise_days: f64,
    /// Upstream pages (calls) one fetch of a data type reads.
    pub pages: [f64; TYPES],
    /// Bytes of an entry's metadata in the index a tick lists.
    pub meta_bytes: u64,
    /// Bytes of a demand record.
    pub demand_record_bytes: u64,
    /// Bytes of one account-region row of the fleet capacity, once compressed.
    pub capacity_row_bytes: u64,
    /// Lease writes per target a run claims: claim, begin and release.
    pub lease_writes_per_target: f64,
    /// Milliseconds one upstream call (one page) takes.
    pub upstream_ms: f64,
    /// Milliseconds one cache write (read of the head, then update or put) takes.
    pub write_ms: f64,
    /// Milliseconds of a reader invocation that answers from the cache.
    pub reader_ms: f64,
    /// Milliseconds of a refresher invocation besides its fetches and writes.
    pub refresher_base_ms: f64,
    /// Fetches one refresher invocation runs at once (`REFRESH_CONCURRENCY`).
    pub refresh_concurrency: f64,
    /// Milliseconds of a scheduled plan besides listing the metadata.
    pub planner_tick_ms: f64,
    /// Milliseconds of listing 1,000 entries' metadata (one index page).
    pub planner_ms_per_1000_keys: f64,
    /// Milliseconds of any other planner invocation (a summary, a read's plan).
    pub planner_small_ms: f64,
    /// Memory of each function in MB (`cfn/drs-cache.yaml` defaults).
    pub reader_mb: f64,
    pub planner_mb: f64,
    pub refresher_mb: f64,
    /// How long the reader's memory tier serves a copy before reading the
    /// table again (`MEMORY_TTL_SECONDS`).
    pub memory_ttl: Duration,
    /// Log bytes per reader request (its EMF line).
    pub reader_log_bytes: f64,
    /// Log bytes per key a refresh writes: its share of its batch's EMF
    /// document for its data type and outcome (803 bytes for five keys, and
    /// CloudWatch's 26 bytes an event).
    pub refresh_log_bytes_per_key: f64,
    /// Log bytes Lambda itself writes per invocation: none, with its system
    /// log level at WARN (`cfn/drs-cache.yaml`), but for errors.
    pub invocation_log_bytes: f64,
    /// Log bytes a planner invocation writes besides Lambda's own.
    pub planner_log_bytes: f64,
    /// Log bytes of a tick's freshness line, per data type.
    pub freshness_line_bytes: f64,
    /// Changes a day of one key's upstream data that a refresh can find (for
    /// the data types that publish change events).
    pub changes_per_key_per_day: f64,
    /// Refresh outcomes seen in a month per data type (`refreshed`,
    /// `unchanged`): each is a metric of its own.
    pub refresh_outcomes: f64,
    /// Run reasons seen in a month (`schedule`, `miss`, `event`).
    pub run_reasons: f64,
}

impl Default for Assumptions {
    fn default() -> Self {
        let mut item_bytes = [0; TYPES];
        let mut pages = [1.0; TYPES];
        for &t in <DataType as strum::VariantArray>::VARIANTS {
            item_bytes[t as usize] = demo_item_bytes(t);
        }
        // 822 instance types in the demo fleet's regions, 100 a page.
        pages[DataType::Ec2InstanceTypes as usize] = 9.0;
        Self {
            item_bytes,
            chunked_head_bytes: 1_000,
            chunk_ttl_raise_days: 4.0,
            pages,
            meta_bytes: 300,
            demand_record_bytes: 150,
            capacity_row_bytes: 60,
            lease_writes_per_target: 3.0,
            upstream_ms: 450.0,
            write_ms: 25.0,
            reader_ms: 8.0,
            refresher_base_ms: 150.0,
            refresh_concurrency: 8.0,
            planner_tick_ms: 150.0,
            planner_ms_per_1000_keys: 40.0,
            planner_small_ms: 60.0,
            reader_mb: 256.0,
            planner_mb: 256.0,
            refresher_mb: 512.0,
            memory_ttl: Duration::from_secs(30),
            reader_log_bytes: 700.0,
            refresh_log_bytes_per_key: 170.0,
            invocation_log_bytes: 0.0,
            planner_log_bytes: 800.0,
            freshness_line_bytes: 450.0,
            changes_per_key_per_day: 4.0,
            refresh_outcomes: 2.0,
            run_reasons: 3.0,
        }
    }
}

/// Head item bytes per data type: the mean encoded body of the demo fleet
/// (`drs-cache refresh --all`, then `export`, each body encoded as the store
/// encodes it, zstd level 3 above 2 KiB; 90 to 400 source servers an account
/// and region, 822 instance types), plus 400 bytes of attributes, rounded to
/// 100 bytes.
const fn demo_item_bytes(t: DataType) -> u64 {
    match t {
        DataType::DrsSourceServers => 34_000,
        DataType::DrsQuotas => 800,
        DataType::DrsAccounts => 500,
        DataType::DrsJobs => 1_400,
        DataType::DrsRecoveryInstances => 4_700,
        DataType::DrsSourceNetworks => 1_300,
        DataType::Ec2Subnets => 1_100,
        DataType::Ec2SecurityGroups => 1_100,
        DataType::Ec2InstanceProfiles => 800,
        DataType::Ec2InstanceTypes => 7_000,
        DataType::DrsCapacity => 1_000,
    }
}

/// Write request units of one write of an item of `bytes`: one per KB,
/// rounded up. An UpdateItem (an `extend`) is charged for the larger of the
/// item before and after, so extending an inline body costs what putting it
/// does.
pub fn write_units(bytes: u64) -> f64 {
    bytes.div_ceil(prices::WRITE_UNIT_BYTES).max(1) as f64
}

/// Read request units of one strongly consistent read of an item of
/// `bytes`: one per 4 KB, rounded up.
pub fn strong_read_units(bytes: u64) -> f64 {
    bytes.div_ceil(prices::READ_UNIT_BYTES).max(1) as f64
}

/// Read request units of an eventually consistent query returning `bytes`
/// (the index is only eventually consistent): half a unit per 4 KB.
pub fn query_read_units(bytes: f64) -> f64 {
    (bytes / prices::READ_UNIT_BYTES as f64).ceil() * 0.5
}

/// The type of the Distributed Map's child executions, one a batch
/// (`BatchExecutionType` in `cfn/drs-cache.yaml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[cfg_attr(feature = "local", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum BatchExecution {
    /// Billed per execution and its duration.
    #[default]
    Express,
    /// Billed per state transition: three a round.
    Standard,
}

/// Everything the estimate depends on.
#[derive(Debug, Clone)]
pub struct CostInputs {
    pub accounts: u32,
    pub regions: u32,
    pub data_types: Vec<DataType>,
    /// Reads a minute, averaged over a week.
    pub reads_per_minute: f64,
    pub strategy: Strategy,
    pub ttl: TtlTable,
    /// `SCHEDULE_INTERVAL_SECONDS` (60).
    pub schedule_interval: Duration,
    /// `REFRESH_AHEAD_MARGIN_SECONDS` (30).
    pub refresh_ahead_margin: Duration,
    /// `REFRESH_BATCH_SIZE` (50).
    pub batch_size: u32,
    /// The Map's child executions (`BatchExecutionType`, EXPRESS).
    pub batch_execution: BatchExecution,
    /// The exponent of the Zipf distribution reads follow over keys.
    pub zipf_exponent: f64,
    pub assumptions: Assumptions,
}

impl CostInputs {
    /// The default deployment over `accounts` × `regions` with every data
    /// type, reading `reads_per_minute`, refreshed by `strategy`.
    pub fn new(accounts: u32, regions: u32, reads_per_minute: f64, strategy: Strategy) -> Self {
        Self {
            accounts,
            regions,
            data_types: DataType::ALL.to_vec(),
            reads_per_minute,
            strategy,
            ttl: TtlTable::default(),
            schedule_interval: Duration::from_secs(60),
            refresh_ahead_margin: Duration::from_secs(30),
            batch_size: crate::config::DEFAULT_BATCH_SIZE as u32,
            batch_execution: BatchExecution::Express,
            zipf_exponent: ZIPF_EXPONENT,
            assumptions: Assumptions::default(),
        }
    }

    /// Keys of one data type: A × R, or R for account-independent data.
    pub fn keys_of(&self, t: DataType) -> f64 {
        let (a, r) = (f64::from(self.accounts), f64::from(self.regions));
        if t.is_account_independent() { r } else { a * r }
    }

    /// Every configured key: K = Σ over T of [`Self::keys_of`].
    pub fn keys(&self) -> f64 {
        self.data_types.iter().map(|&t| self.keys_of(t)).sum()
    }

    fn configured(&self, t: DataType) -> bool {
        self.data_types.contains(&t)
    }
}

/// The exponent of the Zipf distribution of reads over keys.
pub const ZIPF_EXPONENT: f64 = 1.1;

/// The read rate (reads a second) of each key, most read first, when
/// `reads_per_second` follow a Zipf distribution with exponent `s` over
/// `keys` keys: key r is read `reads_per_second` × r^−s / Σ i^−s.
pub fn zipf_rates(keys: usize, reads_per_second: f64, s: f64) -> Vec<f64> {
    let weights: Vec<f64> = (1..=keys).map(|r| (r as f64).powf(-s)).collect();
    let sum: f64 = weights.iter().sum();
    weights
        .into_iter()
        .map(|w| reads_per_second * w / sum)
        .collect()
}

/// Seconds between two scheduled refreshes of a key kept ahead of expiry: a
/// tick refreshes it once it expires within a tick and the margin, and ticks
/// come every `tick`, so P = tick × max(1, ⌈(F − tick − margin) / tick⌉).
pub fn scheduled_period(freshness: Duration, tick: Duration, margin: Duration) -> f64 {
    let (f, t, m) = (
        freshness.as_secs_f64(),
        tick.as_secs_f64(),
        margin.as_secs_f64(),
    );
    t * ((f - t - m) / t).ceil().max(1.0)
}

/// The share of the time a key read at `rate` (a second) is in demand: read
/// within the last `window`, 1 − e^(−λW).
pub fn hot_fraction(rate: f64, window: Duration) -> f64 {
    1.0 - (-rate * window.as_secs_f64()).exp()
}

/// Reads a day of a key read at `rate` that find it out of demand and past
/// its freshness: the first read after a pause longer than the window and
/// the freshness, 86,400 λ e^(−λ(W + F)). Each is served stale and refreshes
/// the key.
pub fn onset_refreshes_per_day(rate: f64, window: Duration, freshness: Duration) -> f64 {
    SECONDS_PER_DAY * rate * (-rate * (window + freshness).as_secs_f64()).exp()
}

/// How often a day something renewed on a read at `rate`, and then good for
/// `period`, is renewed: 86,400 λ / (1 + λT). It gives a read-through
/// key's fetches (T the freshness), a reader's table reads (T the memory
/// tier's lifetime) and its demand notes (T the note interval).
pub fn renewals_per_day(rate: f64, period: Duration) -> f64 {
    SECONDS_PER_DAY * rate / (1.0 + rate * period.as_secs_f64())
}

/// What a deployment does in a day. Every quantity is a daily count.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Workload {
    /// Reads answered (API Gateway requests, reader invocations).
    pub reads: f64,
    /// Scheduled runs of the workflow (one a tick).
    pub ticks: f64,
    /// Scheduled runs that refreshed something.
    pub ticks_with_targets: f64,
    /// Runs a read started (a stale or missing key), one target each.
    pub read_runs: f64,
    /// Refresher invocations (batches).
    pub batches: f64,
    /// Targets runs claimed (each one lease: claim, begin, release).
    pub targets: f64,
    /// Upstream listings fetched by the refresher.
    pub fetches: f64,
    /// Upstream calls (pages) of those listings.
    pub upstream_calls: f64,
    /// Upstream calls the reader made itself (read-through).
    pub reader_upstream_calls: f64,
    /// Keys written (a put or an extension), by data type.
    pub writes: PerType,
    /// Reads of the table by the reader (memory tier misses), by data type.
    pub store_reads: PerType,
    /// Demand records the reader wrote.
    pub demand_notes: f64,
    /// Demand records a tick lists, on average.
    pub demand_records: f64,
}

impl Workload {
    /// The workload of `inputs` from formulas: each key's read rate from the
    /// Zipf distribution of the weekly average read rate, its refreshes from
    /// its data type's freshness and the strategy (see each function).
    pub fn estimate(inputs: &CostInputs) -> Self {
        let keys = inputs.keys();
        let rates = zipf_rates(
            keys.round() as usize,
            inputs.reads_per_minute / 60.0,
            inputs.zipf_exponent,
        );
        let mean = |f: &dyn Fn(f64) -> f64| -> f64 {
            if rates.is_empty() {
                0.0
            } else {
                rates.iter().map(|&r| f(r)).sum::<f64>() / rates.len() as f64
            }
        };
        let a = &inputs.assumptions;
        let tick = inputs.schedule_interval;
        let margin = inputs.refresh_ahead_margin;
        let ticks = SECONDS_PER_DAY / tick.as_secs_f64();
        let mut w = Workload {
            reads: inputs.reads_per_minute * 1_440.0,
            ..Workload::default()
        };
        // Scheduled and read-triggered refreshes a day of one key of each type.
        let mut scheduled = PerType::default();
        let mut on_read = PerType::default();
        for &t in &inputs.data_types {
            let f = inputs.ttl.policy(t).freshness;
            let period = scheduled_period(f, tick, margin);
            // A read that finds a key kept ahead stale (in the last P − F
            // seconds of its period) leaves it to the next tick, which
            // refreshes it anyway: only keys out of demand are refreshed on
            // a read (`ReaderSettings::ticks_keep`).
            let (s, r) = match &inputs.strategy {
                Strategy::AlwaysRefresh => (SECONDS_PER_DAY / period, 0.0),
                Strategy::DemandAware(policy) => {
                    let window = policy.window(t);
                    let floor = SECONDS_PER_DAY / policy.floor().as_secs_f64();
                    let hot = mean(&|l| hot_fraction(l, window));
                    (
                        hot * SECONDS_PER_DAY / period + (1.0 - hot) * floor,
                        mean(&|l| onset_refreshes_per_day(l, window, f)),
                    )
                }
                Strategy::ReadThrough => (0.0, mean(&|l| renewals_per_day(l, f))),
            };
            scheduled.add(t, s);
            on_read.add(t, r);
            let store = mean(&|l| renewals_per_day(l, a.memory_ttl));
            w.store_reads.add(t, store * inputs.keys_of(t));
            if let Strategy::DemandAware(policy) = &inputs.strategy {
                w.demand_notes +=
                    mean(&|l| renewals_per_day(l, policy.note_interval(t))) * inputs.keys_of(t);
            }
        }
        // A source-server fetch writes both of its views: the pair is fetched
        // as often as the more often refreshed of the two.
        let pair = [DataType::DrsSourceServers, DataType::DrsQuotas];
        let paired = pair.iter().all(|&t| inputs.configured(t));
        for &t in &inputs.data_types {
            if paired && t == DataType::DrsQuotas {
                continue;
            }
            let (s, r) = if paired && t == DataType::DrsSourceServers {
                let [servers, quotas] = pair.map(|p| (scheduled.get(p), on_read.get(p)));
                if servers.0 + servers.1 >= quotas.0 + quotas.1 {
                    servers
                } else {
                    quotas
                }
            } else {
                (scheduled.get(t), on_read.get(t))
            };
            let n = inputs.keys_of(t);
            let (s, r) = (s * n, r * n);
            // Instance profiles are global: one listing serves every region
            // of the account refreshed with it, as all are when always kept
            // fresh (read at random times, each is counted on its own).
            let shared = match (t, &inputs.strategy) {
                (DataType::Ec2InstanceProfiles, Strategy::AlwaysRefresh) => {
                    f64::from(inputs.regions.max(1))
                }
                _ => 1.0,
            };
            let fetches = (s + r) / shared;
            let calls = fetches * a.pages[t as usize];
            if paired && t == DataType::DrsSourceServers {
                pair.iter().for_each(|&p| w.writes.add(p, s + r));
            } else {
                w.writes.add(t, s + r);
            }
            match inputs.strategy {
                Strategy::ReadThrough => w.reader_upstream_calls += calls,
                _ => {
                    w.fetches += fetches;
                    w.upstream_calls += calls;
                    w.targets += s + r;
                    w.read_runs += r;
                }
            }
        }
        if !matches!(inputs.strategy, Strategy::ReadThrough) {
            w.ticks = ticks;
            let scheduled_targets = w.targets - w.read_runs;
            w.ticks_with_targets = ticks.min(scheduled_targets);
            let per_tick = if w.ticks_with_targets > 0.0 {
                scheduled_targets / w.ticks_with_targets
            } else {
                0.0
            };
            // Batches hold several accounts (`workflow::pack`).
            w.batches = w.ticks_with_targets * (per_tick / f64::from(inputs.batch_size)).ceil()
                + w.read_runs;
        }
        if let Strategy::DemandAware(_) = inputs.strategy {
            // Records of every key read in the last 8 days (their lifetime).
            let lifetime = crate::domain::demand::RECORD_LIFETIME;
            w.demand_records = keys * mean(&|l| hot_fraction(l, lifetime));
        }
        w
    }
}

/// One priced line of the estimate.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CostLine {
    pub service: &'static str,
    pub item: &'static str,
    /// How many units a month.
    pub quantity: f64,
    pub unit: &'static str,
    /// US dollars a month.
    pub usd: f64,
}

/// A monthly estimate: its lines, their total and the upstream calls a day.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CostEstimate {
    pub strategy: &'static str,
    pub accounts: u32,
    pub regions: u32,
    pub keys: f64,
    pub reads_per_minute: f64,
    pub lines: Vec<CostLine>,
    pub total_usd: f64,
    pub upstream_calls_per_day: f64,
    pub workload: Workload,
}

/// Standard state transitions a day, of the refresh workflow's ticks
/// (`statemachine/refresh.asl.json`): a tick with nothing to refresh enters 3
/// states (*Plan refresh*, *Any targets?*, *Nothing to refresh*), one with
/// targets 4 (*Plan refresh*, *Any targets?*, *Refresh targets*,
/// *Summarize*), and each of its batches' STANDARD child executions 3
/// (*Refresh batch*, *More rounds?*, *Batch done*); an EXPRESS child is billed
/// as an execution instead ([`express_seconds`]). A read's run is an EXPRESS
/// execution of the targets workflow ([`targets_run_seconds`]), no transitions.
pub fn state_transitions(w: &Workload, batches: BatchExecution) -> f64 {
    let children = match batches {
        BatchExecution::Standard => scheduled_batches(w) * 3.0,
        BatchExecution::Express => 0.0,
    };
    (w.ticks - w.ticks_with_targets) * 3.0 + w.ticks_with_targets * 4.0 + children
}

/// Batches a day of the ticks' runs: every batch but the one of each read's
/// run.
pub fn scheduled_batches(w: &Workload) -> f64 {
    (w.batches - w.read_runs).max(0.0)
}

/// Seconds the refresher takes for a read's run's batch: its base time and
/// one fetch's calls and writes.
pub fn read_batch_seconds(w: &Workload, a: &Assumptions) -> f64 {
    if w.fetches == 0.0 {
        return 0.0;
    }
    let calls = w.upstream_calls / w.fetches;
    let writes = w.writes.total() / w.fetches;
    (a.refresher_base_ms + calls * a.upstream_ms + writes * a.write_ms) / 1_000.0
}

/// `seconds` billed in Step Functions' 100 ms steps.
fn in_express_steps(seconds: f64) -> f64 {
    (seconds * 10.0).ceil() / 10.0
}

/// Seconds a day of the ticks' EXPRESS child executions: each lasts its
/// refresher invocation and the Lambda round trip (100 ms), billed in 100 ms
/// steps.
pub fn express_seconds(w: &Workload, a: &Assumptions) -> f64 {
    let batches = scheduled_batches(w);
    if batches == 0.0 {
        return 0.0;
    }
    let refreshing = (refresher_seconds(w, a) - w.read_runs * read_batch_seconds(w, a)).max(0.0);
    batches * in_express_steps(refreshing / batches + 0.1)
}

/// Seconds a day of the targets workflow's EXPRESS executions, one per read's
/// run: its plan and summary (two small planner invocations), its batch's
/// refresher invocation, and three Lambda round trips (100 ms each), billed in
/// 100 ms steps (`statemachine/refresh-targets.asl.json`).
pub fn targets_run_seconds(w: &Workload, a: &Assumptions) -> f64 {
    let each = 2.0 * a.planner_small_ms / 1_000.0 + read_batch_seconds(w, a) + 0.3;
    w.read_runs * in_express_steps(each)
}

/// Planner invocations a day: a plan per run, and a summary per run with
/// targets.
pub fn planner_invocations(w: &Workload) -> f64 {
    w.ticks + w.ticks_with_targets + 2.0 * w.read_runs
}

/// Planner seconds a day: each tick lists every key's metadata (K / 1,000
/// pages), every other invocation is small.
pub fn planner_seconds(w: &Workload, keys: f64, a: &Assumptions) -> f64 {
    let tick_ms = a.planner_tick_ms + a.planner_ms_per_1000_keys * keys / 1_000.0;
    (w.ticks * tick_ms + (w.ticks_with_targets + 2.0 * w.read_runs) * a.planner_small_ms) / 1_000.0
}

/// Refresher seconds a day: each batch's base time, and its calls and writes
/// run `REFRESH_CONCURRENCY` at a time (fewer when a batch has fewer fetches).
pub fn refresher_seconds(w: &Workload, a: &Assumptions) -> f64 {
    if w.batches == 0.0 {
        return 0.0;
    }
    let concurrency = (w.fetches / w.batches).clamp(1.0, a.refresh_concurrency);
    let work_ms = w.upstream_calls * a.upstream_ms + w.writes.total() * a.write_ms;
    (w.batches * a.refresher_base_ms + work_ms / concurrency) / 1_000.0
}

/// Reader seconds a day: every read, and the upstream calls and writes a
/// read-through reader makes itself.
pub fn reader_seconds(w: &Workload, a: &Assumptions) -> f64 {
    let fetch_ms = if w.reader_upstream_calls > 0.0 {
        w.reader_upstream_calls * a.upstream_ms + w.writes.total() * a.write_ms
    } else {
        0.0
    };
    (w.reads * a.reader_ms + fetch_ms) / 1_000.0
}

/// Bytes of the fleet capacity document a tick writes: A × R rows.
pub fn capacity_bytes(inputs: &CostInputs) -> u64 {
    u64::from(inputs.accounts) * u64::from(inputs.regions) * inputs.assumptions.capacity_row_bytes
        + 400
}

/// Bytes of the head item of an entry of `t`: the whole entry when its body
/// is inline, else the chunked head.
pub fn head_bytes(a: &Assumptions, t: DataType) -> u64 {
    a.item_bytes[t as usize].min(a.chunked_head_bytes)
}

/// Writes a day of a data type that put a changed body (the rest extend the
/// head of an unchanged one): at most `changes_per_key_per_day` a key.
pub fn changed_writes(inputs: &CostInputs, w: &Workload, t: DataType) -> f64 {
    w.writes
        .get(t)
        .min(inputs.keys_of(t) * inputs.assumptions.changes_per_key_per_day)
}

/// Write request units a day of the `dataType-createdAt-index`: its items
/// are at most 1 KB (the key and the projected metadata), so each index write
/// is one unit. A changed body's put moves the entry's `createdAt`, the index
/// range key, which DynamoDB bills as two index writes (the old index item
/// deleted, the new one put); an extension changes projected attributes
/// (`fetchedAt`, `expiresAt`, `ttl`) under the same key, one; a demand note
/// moves its record's `createdAt`, two; the fleet capacity each tick, two.
/// Leases, chunks and ledger items have no `dataType` and are not in the index.
pub fn index_write_units(inputs: &CostInputs, w: &Workload) -> f64 {
    let entries: f64 = inputs
        .data_types
        .iter()
        .map(|&t| {
            let changed = changed_writes(inputs, w, t);
            2.0 * changed + (w.writes.get(t) - changed)
        })
        .sum();
    entries + 2.0 * w.demand_notes + 2.0 * w.ticks
}

/// Write request units a day: a changed body put at its entry's size, an
/// unchanged one extending its head at the head's size, the chunks' expiry
/// raised every `chunk_ttl_raise_days` at their size, three lease writes per
/// target, a ledger item per batch, a demand record per note, the fleet
/// capacity each tick, and the index's writes ([`index_write_units`]).
pub fn write_request_units(inputs: &CostInputs, w: &Workload) -> f64 {
    let a = &inputs.assumptions;
    let entries: f64 = inputs
        .data_types
        .iter()
        .map(|&t| {
            let changed = changed_writes(inputs, w, t);
            let unchanged = w.writes.get(t) - changed;
            let item = a.item_bytes[t as usize];
            let raises = if item > a.chunked_head_bytes && w.writes.get(t) > 0.0 {
                inputs.keys_of(t) / a.chunk_ttl_raise_days * write_units(item)
            } else {
                0.0
            };
            changed * write_units(item) + unchanged * write_units(head_bytes(a, t)) + raises
        })
        .sum();
    entries
        + w.targets * a.lease_writes_per_target
        + w.batches
        + w.demand_notes
        + w.ticks * write_units(capacity_bytes(inputs))
        + index_write_units(inputs, w)
}

/// Read request units a day: the strongly consistent read of the head before
/// each write (the extension's check, at the head's size), the reader's table
/// reads (head and chunks), each tick's
/// listing of K metadata items and of the demand records (eventually
/// consistent), a ledger read per batch, and the fleet capacity's head.
pub fn read_request_units(inputs: &CostInputs, w: &Workload) -> f64 {
    let a = &inputs.assumptions;
    let head = |t: DataType| strong_read_units(head_bytes(a, t));
    // A chunked entry is read as its head, then its chunks (BatchGetItem).
    let entry = |t: DataType| {
        let chunks = a.item_bytes[t as usize].saturating_sub(head_bytes(a, t));
        head(t)
            + if chunks > 0 {
                strong_read_units(chunks)
            } else {
                0.0
            }
    };
    let listing = query_read_units(inputs.keys() * a.meta_bytes as f64)
        + query_read_units(w.demand_records * a.demand_record_bytes as f64);
    w.writes.weighted(head)
        + w.store_reads.weighted(entry)
        + w.ticks * (listing + strong_read_units(capacity_bytes(inputs)))
        + w.batches
}

/// GB stored: every key's head item.
pub fn stored_gb(inputs: &CostInputs) -> f64 {
    let a = &inputs.assumptions;
    let bytes: f64 = inputs
        .data_types
        .iter()
        .map(|&t| inputs.keys_of(t) * a.item_bytes[t as usize] as f64)
        .sum();
    bytes / 1e9
}

/// Log bytes a day: each read's EMF line, each key written's line, Lambda's
/// own lines per invocation, each planner invocation's and each tick's
/// freshness lines (one per data type and one over all).
pub fn log_bytes(inputs: &CostInputs, w: &Workload) -> f64 {
    let a = &inputs.assumptions;
    let invocations = w.reads + w.batches + planner_invocations(w);
    w.reads * a.reader_log_bytes
        + w.writes.total() * a.refresh_log_bytes_per_key
        + invocations * a.invocation_log_bytes
        + planner_invocations(w) * a.planner_log_bytes
        + w.ticks * (inputs.data_types.len() as f64 + 1.0) * a.freshness_line_bytes
}

/// Custom metrics (each metric name with one set of dimension values):
/// the reader's 8 over all, and 3 of them (`CacheHit`, `StaleServe`,
/// `DataAge`) by `DataType` (T + 1, the fleet capacity too); the refresher's 6
/// over all, and its count by `DataType` and `Outcome`; its
/// `EventToCacheLatency` and its 2 change-event counts over all; the planner's
/// 7 run counts by `Reason` and 4 freshness figures by `DataType` and over all
/// (none for read-through, which has no planner).
pub fn custom_metrics(inputs: &CostInputs) -> f64 {
    let a = &inputs.assumptions;
    let t = inputs.data_types.len() as f64;
    let events = EVENT_TYPES
        .iter()
        .filter(|&&e| inputs.configured(e))
        .count() as f64;
    let reader = 8.0 + 3.0 * (t + 1.0);
    let refresher = 6.0 + t * a.refresh_outcomes + 1.0 + if events > 0.0 { 2.0 } else { 0.0 };
    let planner = 7.0 * a.run_reasons + 4.0 * (t + 1.0);
    match inputs.strategy {
        Strategy::ReadThrough => reader + refresher,
        _ => reader + refresher + planner,
    }
}

/// Change events a day: a changed body of a type that publishes them, at
/// most one per write and per upstream change.
pub fn change_events(inputs: &CostInputs, w: &Workload) -> f64 {
    EVENT_TYPES
        .iter()
        .filter(|&&t| inputs.configured(t))
        .map(|&t| changed_writes(inputs, w, t))
        .sum()
}

/// The monthly estimate of `workload` under `inputs`.
pub fn price(inputs: &CostInputs, workload: &Workload) -> CostEstimate {
    let a = &inputs.assumptions;
    let w = workload;
    let m = DAYS_PER_MONTH;
    let keys = inputs.keys();
    let gb_s = |seconds: f64, mb: f64| seconds * mb / prices::MB_PER_GB;
    let mut lines = Vec::new();
    let mut line = |service, item, quantity: f64, unit, unit_price: f64| {
        lines.push(CostLine {
            service,
            item,
            quantity,
            unit,
            usd: quantity * unit_price,
        });
    };
    line(
        "Step Functions",
        "state transitions",
        state_transitions(w, inputs.batch_execution) * m,
        "transitions",
        prices::SFN_PER_TRANSITION,
    );
    let express = inputs.batch_execution == BatchExecution::Express;
    line(
        "Step Functions",
        "Express child executions",
        if express {
            scheduled_batches(w) * m
        } else {
            0.0
        },
        "executions",
        prices::SFN_EXPRESS_PER_REQUEST,
    );
    line(
        "Step Functions",
        "Express child duration",
        if express {
            gb_s(express_seconds(w, a), prices::SFN_EXPRESS_MIN_MB) * m
        } else {
            0.0
        },
        "GB-s",
        prices::SFN_EXPRESS_PER_GB_SECOND,
    );
    line(
        "Step Functions",
        "Express targets runs (reads)",
        w.read_runs * m,
        "executions",
        prices::SFN_EXPRESS_PER_REQUEST,
    );
    line(
        "Step Functions",
        "Express targets run duration",
        gb_s(targets_run_seconds(w, a), prices::SFN_EXPRESS_MIN_MB) * m,
        "GB-s",
        prices::SFN_EXPRESS_PER_GB_SECOND,
    );
    let functions = [
        ("reader", w.reads, reader_seconds(w, a), a.reader_mb),
        (
            "planner",
            planner_invocations(w),
            planner_seconds(w, keys, a),
            a.planner_mb,
        ),
        (
            "refresher",
            w.batches,
            refresher_seconds(w, a),
            a.refresher_mb,
        ),
    ];
    for (name, requests, seconds, mb) in functions {
        let (requests_item, duration_item) = match name {
            "reader" => ("reader requests", "reader duration"),
            "planner" => ("planner requests", "planner duration"),
            _ => ("refresher requests", "refresher duration"),
        };
        line(
            "Lambda",
            requests_item,
            requests * m,
            "requests",
            prices::LAMBDA_PER_REQUEST,
        );
        line(
            "Lambda",
            duration_item,
            gb_s(seconds, mb) * m,
            "GB-s",
            prices::LAMBDA_ARM_PER_GB_SECOND,
        );
    }
    line(
        "DynamoDB",
        "write request units",
        write_request_units(inputs, w) * m,
        "WRU",
        prices::DYNAMODB_PER_WRU,
    );
    line(
        "DynamoDB",
        "read request units",
        read_request_units(inputs, w) * m,
        "RRU",
        prices::DYNAMODB_PER_RRU,
    );
    line(
        "DynamoDB",
        "storage",
        stored_gb(inputs),
        "GB-month",
        prices::DYNAMODB_PER_GB_MONTH,
    );
    // Only the ticks' runs have a plan object; a read's is answered inline.
    let runs = w.ticks_with_targets;
    line(
        "S3",
        "PUT (plan, Map results)",
        runs * 3.0 * m,
        "requests",
        prices::S3_PER_PUT,
    );
    line(
        "S3",
        "GET (Map item reader)",
        runs * m,
        "requests",
        prices::S3_PER_GET,
    );
    line(
        "API Gateway",
        "HTTP API requests",
        w.reads * m,
        "requests",
        prices::HTTP_API_PER_REQUEST,
    );
    line(
        "CloudWatch",
        "logs ingested",
        log_bytes(inputs, w) / 1e9 * m,
        "GB",
        prices::LOGS_PER_GB_INGESTED,
    );
    line(
        "CloudWatch",
        "custom metrics",
        custom_metrics(inputs),
        "metrics",
        prices::CUSTOM_METRIC_PER_MONTH,
    );
    line(
        "EventBridge",
        "change events",
        change_events(inputs, w) * m,
        "events",
        prices::EVENTBRIDGE_PER_EVENT,
    );
    line(
        "DRS, EC2, IAM",
        "upstream calls (quota, no charge)",
        (w.upstream_calls + w.reader_upstream_calls) * m,
        "calls",
        0.0,
    );
    let total_usd = lines.iter().map(|l| l.usd).sum();
    CostEstimate {
        strategy: inputs.strategy.name(),
        accounts: inputs.accounts,
        regions: inputs.regions,
        keys,
        reads_per_minute: inputs.reads_per_minute,
        lines,
        total_usd,
        upstream_calls_per_day: w.upstream_calls + w.reader_upstream_calls,
        workload: w.clone(),
    }
}

/// The estimate of `inputs` from the formulas alone.
pub fn estimate(inputs: &CostInputs) -> CostEstimate {
    price(inputs, &Workload::estimate(inputs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn a_key_kept_ahead_is_refreshed_at_the_first_tick_within_the_horizon_of_its_expiry() {
        let (tick, margin) = (secs(60), secs(30));
        // Due once it expires within 90 s: two minutes of freshness last one tick.
        assert_eq!(scheduled_period(secs(120), tick, margin), 60.0);
        assert_eq!(scheduled_period(secs(300), tick, margin), 240.0);
        assert_eq!(scheduled_period(secs(3_600), tick, margin), 3_540.0);
        assert_eq!(scheduled_period(secs(86_400), tick, margin), 86_340.0);
        // Nothing is refreshed more often than every tick.
        assert_eq!(scheduled_period(secs(30), tick, margin), 60.0);
    }

    #[test]
    fn request_units_round_up_per_kb_written_and_per_4_kb_read() {
        assert_eq!(write_units(1), 1.0);
        assert_eq!(write_units(1_024), 1.0);
        assert_eq!(write_units(1_025), 2.0);
        assert_eq!(write_units(34_000), 34.0);
        assert_eq!(strong_read_units(4_096), 1.0);
        assert_eq!(strong_read_units(4_097), 2.0);
        assert_eq!(query_read_units(10_000.0), 1.5);
    }

    #[test]
    fn renewals_follow_every_read_when_rare_and_the_period_when_frequent() {
        let period = secs(30);
        let rare = 1.0 / 86_400.0;
        assert!((renewals_per_day(rare, period) - 1.0).abs() < 0.001);
        assert!((renewals_per_day(1_000.0, period) - 2_880.0).abs() < 0.1);
        assert_eq!(renewals_per_day(0.0, period), 0.0);
        assert!(hot_fraction(0.0, secs(3_600)) == 0.0);
        assert!(hot_fraction(1.0, secs(3_600)) > 0.999);
        // A key read every second never pauses long enough to cool down.
        assert!(onset_refreshes_per_day(1.0, secs(3_600), secs(120)) < 1e-9);
    }

    #[test]
    fn always_refresh_of_an_unread_account_region_calls_each_listing_at_its_period() {
        let inputs = CostInputs::new(1, 1, 0.0, Strategy::AlwaysRefresh);
        let w = Workload::estimate(&inputs);
        // Source servers (with quotas from the same fetch), jobs and recovery
        // instances every tick, source networks every 4 minutes, the hourly
        // types every 59 minutes, 9 pages of instance types a day.
        let expected = 3.0 * 1_440.0 + 360.0 + 4.0 * 86_400.0 / 3_540.0 + 9.0 * 86_400.0 / 86_340.0;
        assert_eq!(
            w.fetches,
            3.0 * 1_440.0 + 360.0 + 4.0 * 86_400.0 / 3_540.0 + 86_400.0 / 86_340.0
        );
        assert!(
            (w.upstream_calls - expected).abs() < 1e-6,
            "{}",
            w.upstream_calls
        );
        assert_eq!(w.writes.get(DataType::DrsQuotas), 1_440.0);
        assert_eq!(w.read_runs, 0.0);
        assert_eq!(w.ticks_with_targets, 1_440.0);
    }

    #[test]
    fn a_tick_costs_three_transitions_empty_four_with_targets_and_three_per_standard_batch() {
        // Ten reads' runs, each with its batch, on the targets workflow.
        let w = Workload {
            ticks: 1_440.0,
            ticks_with_targets: 1_000.0,
            read_runs: 10.0,
            batches: 2_010.0,
            ..Workload::default()
        };
        assert_eq!(
            state_transitions(&w, BatchExecution::Standard),
            440.0 * 3.0 + 1_000.0 * 4.0 + 2_000.0 * 3.0
        );
        // EXPRESS children are billed as executions, not transitions.
        assert_eq!(
            state_transitions(&w, BatchExecution::Express),
            440.0 * 3.0 + 1_000.0 * 4.0
        );
        assert_eq!(planner_invocations(&w), 1_440.0 + 1_000.0 + 20.0);
    }

    #[test]
    fn an_express_child_bills_its_refresher_time_and_round_trip_in_100_ms_steps() {
        let a = Assumptions::default();
        let w = Workload {
            batches: 10.0,
            fetches: 10.0,
            upstream_calls: 10.0,
            ..Workload::default()
        };
        // One fetch a batch: 150 ms base + 450 ms call, and 100 ms round trip.
        assert!((refresher_seconds(&w, &a) - 6.0).abs() < 1e-9);
        assert!((express_seconds(&w, &a) - 7.0).abs() < 1e-9);
        assert_eq!(express_seconds(&Workload::default(), &a), 0.0);
    }

    #[test]
    fn a_read_s_run_is_one_express_targets_execution_without_transitions_or_plan_objects() {
        let a = Assumptions::default();
        let ticks = Workload {
            ticks: 1_440.0,
            ticks_with_targets: 1_440.0,
            batches: 2_880.0,
            fetches: 2_880.0,
            upstream_calls: 2_880.0,
            ..Workload::default()
        };
        let with_reads = Workload {
            read_runs: 1_000.0,
            batches: ticks.batches + 1_000.0,
            fetches: ticks.fetches + 1_000.0,
            upstream_calls: ticks.upstream_calls + 1_000.0,
            ..ticks.clone()
        };
        for batches in [BatchExecution::Express, BatchExecution::Standard] {
            assert_eq!(
                state_transitions(&with_reads, batches),
                state_transitions(&ticks, batches),
                "{batches:?}"
            );
        }
        assert_eq!(scheduled_batches(&with_reads), ticks.batches);
        // The ticks' children last as long with the reads' runs beside them.
        assert!((express_seconds(&with_reads, &a) - express_seconds(&ticks, &a)).abs() < 1e-6);
        // 2 × 60 ms planning and totals, 150 ms + 450 ms for the batch, 300 ms
        // of round trips: 1,020 ms, billed as 1.1 s.
        assert!((targets_run_seconds(&with_reads, &a) - 1_100.0).abs() < 1e-6);
        assert_eq!(targets_run_seconds(&ticks, &a), 0.0);
    }

    #[test]
    fn only_express_children_have_execution_lines_and_only_standard_ones_transitions() {
        let line = |e: &CostEstimate, item: &str| {
            e.lines
                .iter()
                .find(|l| l.item == item)
                .map(|l| l.usd)
                .unwrap()
        };
        let express = estimate(&CostInputs::new(100, 4, 1_000.0, Strategy::AlwaysRefresh));
        let standard = estimate(&CostInputs {
            batch_execution: BatchExecution::Standard,
            ..CostInputs::new(100, 4, 1_000.0, Strategy::AlwaysRefresh)
        });
        assert!(line(&express, "Express child executions") > 0.0);
        assert!(line(&express, "Express child duration") > 0.0);
        assert_eq!(line(&standard, "Express child executions"), 0.0);
        assert_eq!(line(&standard, "Express child duration"), 0.0);
        let batches = scheduled_batches(&express.workload) * DAYS_PER_MONTH;
        assert!(
            (line(&standard, "state transitions")
                - line(&express, "state transitions")
                - batches * 3.0 * prices::SFN_PER_TRANSITION)
                .abs()
                < 1e-6
        );
    }

    #[test]
    fn an_extension_writes_the_index_once_and_a_changed_put_or_a_note_twice() {
        let inputs = CostInputs {
            data_types: vec![DataType::Ec2Subnets],
            ..CostInputs::new(1, 1, 0.0, Strategy::AlwaysRefresh)
        };
        let mut w = Workload::default();
        // 10 writes of one key a day: at most 4 found a changed body.
        w.writes.add(DataType::Ec2Subnets, 10.0);
        w.demand_notes = 3.0;
        w.ticks = 5.0;
        assert_eq!(
            index_write_units(&inputs, &w),
            4.0 * 2.0 + 6.0 + 3.0 * 2.0 + 5.0 * 2.0
        );
    }

    #[test]
    fn every_data_type_makes_135_custom_metrics_and_read_through_drops_the_planners() {
        // Reader 8 + 3 × 11, refresher 6 + 10 × 2 + 1 + 2, planner 7 × 3 + 4 × 11.
        let refresh = CostInputs::new(10, 2, 100.0, Strategy::AlwaysRefresh);
        assert_eq!(custom_metrics(&refresh), 135.0);
        let read_through = CostInputs::new(10, 2, 100.0, Strategy::ReadThrough);
        assert_eq!(custom_metrics(&read_through), 135.0 - 21.0 - 44.0);
    }

    #[test]
    fn the_total_is_the_sum_of_the_lines_and_reads_cost_the_same_in_every_strategy() {
        let policy = DemandPolicy::default();
        let estimates: Vec<CostEstimate> = [
            Strategy::AlwaysRefresh,
            Strategy::DemandAware(policy),
            Strategy::ReadThrough,
        ]
        .into_iter()
        .map(|s| estimate(&CostInputs::new(100, 4, 1_000.0, s)))
        .collect();
        for e in &estimates {
            let sum: f64 = e.lines.iter().map(|l| l.usd).sum();
            assert!((e.total_usd - sum).abs() < 1e-9);
            let api = e.lines.iter().find(|l| l.service == "API Gateway").unwrap();
            assert!((api.usd - 1_000.0 * 1_440.0 * DAYS_PER_MONTH / 1e6).abs() < 1e-9);
        }
        let [always, demand, read_through] = [0, 1, 2].map(|i| &estimates[i]);
        assert!(demand.upstream_calls_per_day < always.upstream_calls_per_day);
        assert!(read_through.upstream_calls_per_day < demand.upstream_calls_per_day);
        // Even with nearly every key read within the hour, the fast types'
        // short windows save more than the targets runs of reads out of
        // demand cost.
        assert!(demand.total_usd < always.total_usd);
    }

    #[test]
    fn demand_aware_without_reads_refreshes_each_key_at_the_floor() {
        let policy = DemandPolicy::default();
        let inputs = CostInputs::new(2, 1, 0.0, Strategy::DemandAware(policy));
        let w = Workload::estimate(&inputs);
        // Nine listings per account and region (quotas come with the
        // servers) and nine pages of instance types, four times a day.
        assert!((w.upstream_calls - (2.0 * 8.0 + 9.0) * 4.0).abs() < 1e-9);
        assert_eq!(w.demand_notes, 0.0);
    }
}
