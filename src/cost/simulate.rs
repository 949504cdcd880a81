//! The demand simulation: a synthetic read trace (Zipf over keys, a
//! business-hours shape) over a fleet of accounts and regions, replayed
//! against each refresh strategy with a simulated clock. Refresh-ahead
//! strategies run the planner's own due rule (`plan::due::DueRule`) over
//! every key at every tick; read-through fetches on the read that finds an
//! entry expired. It counts upstream calls, store writes, fresh hits, stale
//! serves and misses, and the age of the data each read was served, and
//! hands the counts to the cost model as a [`Workload`].
//!
//! Deterministic: the trace comes from one seeded generator, the same for
//! every strategy, and nothing reads the wall clock.

use std::{collections::HashMap, time::Duration};

use serde::Serialize;

use crate::{
    domain::{
        AccountId, CacheKey, DataType, Demand, DemandPolicy, ETag, EntryMeta, EntryState, Figures,
        Freshness, RefreshAhead, Region, Timestamp, TtlTable, Version,
    },
    plan::due::DueRule,
    workflow::Fetch,
};

use super::model::{self, Strategy, TYPES, Workload};

/// The regions a simulated fleet takes its regions from, in order: the
/// commercial regions of 2026, so at most 28.
pub const REGIONS: [&str; 28] = [
    "us-east-1",
    "us-west-2",
    "eu-west-1",
    "us-east-2",
    "us-west-1",
    "ca-central-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-east-1",
    "sa-east-1",
    "me-south-1",
    "me-central-1",
    "af-south-1",
    "il-central-1",
];

/// Sunday 2026-01-04 00:00 UTC: the warm-up day, so that measuring starts on
/// a Monday and a 7-day run holds a weekend.
const START: i64 = 1_767_484_800;

const DAY: i64 = 86_400;

/// Ages kept exactly in the histogram, in seconds; older ones are counted
/// at this age.
const MAX_AGE: usize = 3 * 86_400;

/// The simulated deployment and trace.
#[derive(Debug, Clone)]
pub struct SimSettings {
    pub accounts: u32,
    pub regions: u32,
    pub data_types: Vec<DataType>,
    /// Reads a minute averaged over the week; the shape moves them into
    /// business hours.
    pub reads_per_minute: f64,
    /// Days measured, after the warm-up.
    pub days: u32,
    /// Days run before measuring, so that every strategy starts measuring
    /// from a cache in its steady state.
    pub warmup_days: u32,
    pub seed: u64,
    pub zipf_exponent: f64,
    /// Read rate outside weekday business hours (08:00 to 18:00 UTC), as a
    /// share of the rate inside them.
    pub off_hours_weight: f64,
    pub ttl: TtlTable,
    pub schedule_interval: Duration,
    pub refresh_ahead_margin: Duration,
    pub failure_backoff: Duration,
    pub batch_size: u32,
    pub max_targets_per_run: usize,
    /// How long a reader's memory tier keeps a copy before reading the table
    /// again (one reader container is simulated).
    pub memory_ttl: Duration,
    /// Upstream pages a fetch of each data type reads.
    pub pages: [f64; TYPES],
    /// Ask the due rule about every key at every tick, instead of only about
    /// the keys whose answer can have changed since they were last asked (a
    /// read, or a time the rule compares with passed). Slower; the same
    /// result, as a test holds.
    pub every_key_every_tick: bool,
}

impl SimSettings {
    /// The default deployment and trace over `accounts` × `regions`: every
    /// data type, seven days after a day of warm-up, seed 1.
    pub fn new(accounts: u32, regions: u32, reads_per_minute: f64) -> Self {
        let assumptions = model::Assumptions::default();
        Self {
            accounts,
            regions,
            data_types: DataType::ALL.to_vec(),
            reads_per_minute,
            days: 7,
            warmup_days: 1,
            seed: 1,
            zipf_exponent: model::ZIPF_EXPONENT,
            off_hours_weight: 0.15,
            ttl: TtlTable::default(),
            schedule_interval: Duration::from_secs(60),
            refresh_ahead_margin: Duration::from_secs(30),
            failure_backoff: Duration::from_secs(300),
            batch_size: crate::config::DEFAULT_BATCH_SIZE as u32,
            max_targets_per_run: 10_000,
            memory_ttl: assumptions.memory_ttl,
            pages: assumptions.pages,
            every_key_every_tick: false,
        }
    }
}

/// What one strategy did over the measured days.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SimReport {
    pub strategy: &'static str,
    pub keys: usize,
    pub days: u32,
    pub reads: u64,
    /// Reads served data within its freshness.
    pub fresh_hits: u64,
    /// Reads served data past its freshness (a refresh then follows).
    pub stale_serves: u64,
    /// Reads that found nothing servable: never cached, or past the stale
    /// window (refresh-ahead strategies answer them 503), or, read-through,
    /// expired (fetched there and then).
    pub misses: u64,
    pub fresh_hit_ratio: f64,
    /// The 99th percentile of the age of the data served (now − fetched),
    /// over the reads that were served data.
    pub p99_age_seconds: u64,
    pub upstream_calls_per_day: f64,
    pub store_writes_per_day: f64,
    /// The counts of a day, for the cost model.
    pub workload: Workload,
}

/// The keys of the fleet, with what each one's fetch reads and writes.
struct Fleet {
    keys: Vec<CacheKey>,
    types: Vec<DataType>,
    /// Index of the upstream fetch (`workflow::Fetch`) that produces each key.
    fetch_of: Vec<usize>,
    /// Pages of each fetch.
    fetch_pages: Vec<f64>,
    /// The keys each key's fetch writes (itself, and the other source-server
    /// view).
    writes_of: Vec<Vec<usize>>,
    freshness: Vec<Duration>,
    stale_window: Vec<Duration>,
}

/// The twelve-digit account of index `i`.
fn account(i: u32) -> AccountId {
    AccountId::parse(&format!("{:012}", 100_000_000_000u64 + u64::from(i))).expect("twelve digits")
}

impl Fleet {
    fn new(s: &SimSettings) -> Self {
        let regions: Vec<Region> = REGIONS
            .iter()
            .take(s.regions as usize)
            .map(|r| Region::parse(r).expect("a region name"))
            .collect();
        let home = account(0);
        let mut keys = Vec::new();
        for &t in &s.data_types {
            for region in &regions {
                if t.is_account_independent() {
                    keys.extend(CacheKey::global(t, region.clone()));
                } else {
                    keys.extend(
                        (0..s.accounts).map(|a| CacheKey::new(t, region.clone(), account(a))),
                    );
                }
            }
        }
        let index: HashMap<CacheKey, usize> = keys
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, k)| (k, i))
            .collect();
        let mut fetches: HashMap<Fetch, usize> = HashMap::new();
        let mut fetch_pages = Vec::new();
        let mut fetch_of = Vec::with_capacity(keys.len());
        let mut writes_of = Vec::with_capacity(keys.len());
        for key in &keys {
            let fetch = Fetch::of(key, home).expect("a fetched data type");
            let next = fetches.len();
            let f = *fetches.entry(fetch).or_insert(next);
            if f == next {
                fetch_pages.push(s.pages[key.data_type() as usize]);
            }
            fetch_of.push(f);
            writes_of.push(
                Fetch::keys_written_for(key, home)
                    .iter()
                    .filter_map(|k| index.get(k).copied())
                    .collect(),
            );
        }
        let policy = |k: &CacheKey| s.ttl.policy(k.data_type());
        Self {
            types: keys.iter().map(CacheKey::data_type).collect(),
            freshness: keys.iter().map(|k| policy(k).freshness).collect(),
            stale_window: keys.iter().map(|k| policy(k).stale_window).collect(),
            keys,
            fetch_of,
            fetch_pages,
            writes_of,
        }
    }
}

/// The share of the week's average read rate at `at`: 1 in weekday business
/// hours (08:00 to 18:00 UTC), `off` otherwise, divided by the week's mean
/// (50 such hours of 168).
pub fn read_weight(at: i64, off: f64) -> f64 {
    let days = at.div_euclid(DAY);
    // 1970-01-01 was a Thursday: Monday is 0.
    let weekday = (days + 3).rem_euclid(7);
    let hour = at.rem_euclid(DAY) / 3_600;
    let busy = weekday < 5 && (8..18).contains(&hour);
    let mean = (50.0 + 118.0 * off) / 168.0;
    if busy { 1.0 / mean } else { off / mean }
}

/// The synthetic read trace: how many reads each tick has, and which key
/// each one reads.
struct Trace {
    rng: fastrand::Rng,
    /// Cumulative Zipf probabilities by rank.
    cdf: Vec<f64>,
    /// The key of each rank: a seeded random permutation.
    order: Vec<usize>,
    carry: f64,
}

impl Trace {
    fn new(keys: usize, s: &SimSettings) -> Self {
        let mut rng = fastrand::Rng::with_seed(s.seed);
        let mut order: Vec<usize> = (0..keys).collect();
        rng.shuffle(&mut order);
        let weights: Vec<f64> = (1..=keys)
            .map(|r| (r as f64).powf(-s.zipf_exponent))
            .collect();
        let sum: f64 = weights.iter().sum();
        let mut acc = 0.0;
        let cdf = weights
            .iter()
            .map(|w| {
                acc += w / sum;
                acc
            })
            .collect();
        Self {
            rng,
            cdf,
            order,
            carry: 0.0,
        }
    }

    /// Reads in the tick starting at `at`, `tick` seconds long.
    fn reads_in(&mut self, at: i64, tick: i64, s: &SimSettings) -> u64 {
        self.carry += s.reads_per_minute * tick as f64 / 60.0 * read_weight(at, s.off_hours_weight);
        let n = self.carry.floor();
        self.carry -= n;
        n as u64
    }

    fn key(&mut self) -> usize {
        let u = self.rng.f64();
        let rank = self
            .cdf
            .partition_point(|&c| c < u)
            .min(self.order.len() - 1);
        self.order[rank]
    }
}

/// The counters of the measured days.
#[derive(Default)]
struct Counts {
    w: Workload,
    reads: u64,
    fresh: u64,
    stale: u64,
    misses: u64,
    ages: Vec<u64>,
    demand_records: f64,
}

impl Counts {
    fn new() -> Self {
        Self {
            ages: vec![0; MAX_AGE + 1],
            ..Self::default()
        }
    }

    fn served(&mut self, age: u64) {
        self.ages[(age as usize).min(MAX_AGE)] += 1;
    }

    fn p99(&self) -> u64 {
        let total: u64 = self.ages.iter().sum();
        let target = (total as f64 * 0.99).ceil() as u64;
        let mut seen = 0;
        for (age, n) in self.ages.iter().enumerate() {
            seen += n;
            if seen >= target && seen > 0 {
                return age as u64;
            }
        }
        0
    }
}

/// One strategy's cache as it runs.
struct Run<'a> {
    fleet: &'a Fleet,
    settings: &'a SimSettings,
    strategy: &'a Strategy,
    metas: Vec<Option<EntryMeta>>,
    /// When the reader's memory tier last read each key from the table.
    memory: Vec<Option<i64>>,
    /// When the reader last noted a read of each key.
    noted: Vec<Option<i64>>,
    /// The first tick time at which the due rule's answer for each key can
    /// differ from its last one, unless the key is read before.
    check_at: Vec<i64>,
    demand: Demand,
    /// The refresh each fetch and key was last part of, so that one refresh
    /// fetches a listing and writes a key once.
    fetch_mark: Vec<u64>,
    write_mark: Vec<u64>,
    refreshes: u64,
    c: Counts,
}

impl Run<'_> {
    /// Refreshes key `i` at `at` as part of refresh `mark`: its fetch once,
    /// and every key that fetch writes.
    fn refresh(&mut self, i: usize, at: i64, mark: u64, by_reader: bool) {
        let f = self.fleet.fetch_of[i];
        if self.fetch_mark[f] != mark {
            self.fetch_mark[f] = mark;
            let pages = self.fleet.fetch_pages[f];
            if by_reader {
                self.c.w.reader_upstream_calls += pages;
            } else {
                self.c.w.fetches += 1.0;
                self.c.w.upstream_calls += pages;
            }
        }
        for n in 0..self.fleet.writes_of[i].len() {
            let k = self.fleet.writes_of[i][n];
            if self.write_mark[k] != mark {
                self.write_mark[k] = mark;
                self.write(k, at);
            }
        }
    }

    /// Stores a fetch of key `k` at `at`, as a put or an extension would.
    fn write(&mut self, k: usize, at: i64) {
        let fetched = Timestamp::from_unix_secs(at);
        let expires = fetched.plus(self.fleet.freshness[k]);
        let stale_until = expires.plus(self.fleet.stale_window[k]);
        let version = Version::from_raw(u64::try_from(at).unwrap_or(0) * 1_000_000);
        match &mut self.metas[k] {
            Some(meta) => {
                meta.version = version;
                meta.fetched_at = fetched;
                meta.expires_at = expires;
                meta.stale_until = stale_until;
            }
            slot @ None => {
                *slot = Some(EntryMeta {
                    key: self.fleet.keys[k].clone(),
                    version,
                    etag: ETag::of(b""),
                    state: EntryState::Ready,
                    created_at: fetched,
                    fetched_at: fetched,
                    expires_at: expires,
                    stale_until,
                    item_count: 0,
                    figures: Figures::default(),
                    last_attempt: None,
                });
            }
        }
        self.c.w.writes.add(self.fleet.types[k], 1.0);
        self.check_at[k] = self.next_check(k, at);
    }

    /// When the due rule can next find key `k` due, as of `now`, unless it is
    /// read first: a key never cached at once; a key in demand (read within
    /// its window) once it expires within the horizon, or when its window
    /// ends; a key out of demand at the floor after its fetch or once its
    /// stale window ends within the horizon. Always-refresh counts every key
    /// as in demand for good.
    fn next_check(&self, k: usize, now: i64) -> i64 {
        let Some(meta) = &self.metas[k] else {
            return i64::MIN;
        };
        let s = self.settings;
        let lead = (s.schedule_interval + s.refresh_ahead_margin).as_secs() as i64;
        let expiry = meta.expires_at.unix_secs() - lead;
        let Strategy::DemandAware(policy) = self.strategy else {
            return expiry;
        };
        let window = policy.window(self.fleet.types[k]).as_secs() as i64;
        match self.noted[k].map(|read| read + window) {
            Some(window_end) if window_end > now => expiry.min(window_end),
            _ => {
                let floor = meta.fetched_at.plus(policy.floor()).unix_secs();
                floor.min(meta.stale_until.unix_secs() - lead)
            }
        }
    }

    fn next_mark(&mut self) -> u64 {
        self.refreshes += 1;
        self.refreshes
    }

    /// A scheduled tick at `now`: the due rule over every key, the due keys
    /// (at most a run's worth, never cached first, then by when due) refreshed.
    fn tick(&mut self, now: i64, ahead: &RefreshAhead) {
        let s = self.settings;
        let at = Timestamp::from_unix_secs(now);
        let rule = DueRule {
            now: at,
            horizon: at.plus(s.schedule_interval + s.refresh_ahead_margin),
            failure_backoff: s.failure_backoff,
            ahead,
            demand: &self.demand,
        };
        let every = s.every_key_every_tick;
        let mut asked = Vec::new();
        let mut due: Vec<(Option<Timestamp>, usize)> = Vec::new();
        for (i, (key, meta)) in self.fleet.keys.iter().zip(&self.metas).enumerate() {
            if !every && self.check_at[i] > now {
                continue;
            }
            match rule.due(key, meta.as_ref()) {
                Some(d) => due.push((d.at, i)),
                None => asked.push(i),
            }
        }
        for i in asked {
            self.check_at[i] = self.next_check(i, now);
        }
        due.sort_by_key(|(at, _)| *at);
        due.truncate(s.max_targets_per_run);
        self.c.w.ticks += 1.0;
        self.c.demand_records += self.demand.reads.len() as f64;
        if due.is_empty() {
            return;
        }
        self.c.w.ticks_with_targets += 1.0;
        self.c.w.targets += due.len() as f64;
        // As `workflow::pack` packs them, accounts together.
        self.c.w.batches += (due.len() as f64 / f64::from(s.batch_size)).ceil();
        let mark = self.next_mark();
        for (_, i) in due {
            self.refresh(i, now, mark, false);
        }
    }

    /// One read of key `i` at `at`.
    fn read(&mut self, i: usize, at: i64) {
        let t = self.fleet.types[i];
        self.check_at[i] = self.check_at[i].min(at);
        self.c.reads += 1;
        self.c.w.reads += 1.0;
        let memory_ttl = self.settings.memory_ttl.as_secs() as i64;
        if self.memory[i].is_none_or(|m| at - m >= memory_ttl) {
            self.memory[i] = Some(at);
            self.c.w.store_reads.add(t, 1.0);
        }
        if let Strategy::DemandAware(policy) = self.strategy {
            self.note(i, at, policy);
        }
        let now = Timestamp::from_unix_secs(at);
        let freshness = self.metas[i]
            .as_ref()
            .map(|m| (m.freshness(now), m.age(now)));
        match (self.strategy, freshness) {
            (_, Some((Freshness::Fresh { .. }, age))) => {
                self.c.fresh += 1;
                self.c.served(age);
            }
            (Strategy::ReadThrough, _) => {
                // Expired or never cached: fetched there and then, served fresh.
                self.c.misses += 1;
                let mark = self.next_mark();
                self.refresh(i, at, mark, true);
                self.c.served(0);
            }
            (_, Some((Freshness::Stale { .. }, age))) => {
                self.c.stale += 1;
                self.c.served(age);
                // As the reader does: stale within a tick and its margin is
                // the next tick's to refresh (the read made it in demand).
                let keep = self.settings.schedule_interval + self.settings.refresh_ahead_margin;
                let kept = self.metas[i]
                    .as_ref()
                    .is_some_and(|m| m.expired_within(keep, now));
                if !kept {
                    self.refresh_on_read(i, at);
                }
            }
            (_, Some((Freshness::Expired, _)) | None) => {
                self.c.misses += 1;
                self.refresh_on_read(i, at);
            }
        }
    }

    /// A read's request for a refresh: a run of one target, refreshed at once.
    fn refresh_on_read(&mut self, i: usize, at: i64) {
        self.c.w.read_runs += 1.0;
        self.c.w.batches += 1.0;
        self.c.w.targets += 1.0;
        let mark = self.next_mark();
        self.refresh(i, at, mark, false);
    }

    /// Notes a read in the demand, at most once per note interval, as the
    /// reader does.
    fn note(&mut self, i: usize, at: i64, policy: &DemandPolicy) {
        let interval = policy.note_interval(self.fleet.types[i]).as_secs() as i64;
        if self.noted[i].is_none_or(|n| at - n >= interval) {
            self.noted[i] = Some(at);
            self.demand
                .note_read(self.fleet.keys[i].clone(), Timestamp::from_unix_secs(at));
            self.c.w.demand_notes += 1.0;
        }
    }
}

fn run(fleet: &Fleet, s: &SimSettings, strategy: &Strategy) -> SimReport {
    let n = fleet.keys.len();
    let ahead = match strategy {
        Strategy::AlwaysRefresh => Some(RefreshAhead::Always),
        Strategy::DemandAware(policy) => Some(RefreshAhead::OnDemand(policy.clone())),
        Strategy::ReadThrough => None,
    };
    let mut r = Run {
        fleet,
        settings: s,
        strategy,
        metas: vec![None; n],
        memory: vec![None; n],
        noted: vec![None; n],
        check_at: vec![i64::MIN; n],
        demand: Demand::default(),
        fetch_mark: vec![0; fleet.fetch_pages.len()],
        write_mark: vec![0; n],
        refreshes: 0,
        c: Counts::new(),
    };
    let mut trace = Trace::new(n, s);
    let tick = i64::try_from(s.schedule_interval.as_secs().max(1)).unwrap_or(60);
    let warmup = i64::from(s.warmup_days) * DAY / tick;
    let ticks = warmup + i64::from(s.days) * DAY / tick;
    for k in 0..ticks {
        if k == warmup {
            r.c = Counts::new();
        }
        let now = START + k * tick;
        if let Some(ahead) = &ahead {
            r.tick(now, ahead);
        }
        let reads = trace.reads_in(now, tick, s);
        for j in 0..reads {
            let at = now + i64::try_from(j * tick as u64 / reads).unwrap_or(0);
            let i = trace.key();
            r.read(i, at);
        }
    }
    let days = f64::from(s.days.max(1));
    let c = &r.c;
    let mut w = c.w.clone();
    w.demand_records = if w.ticks > 0.0 {
        c.demand_records / w.ticks
    } else {
        0.0
    };
    let w = per_day(w, days);
    SimReport {
        strategy: strategy.name(),
        keys: n,
        days: s.days,
        reads: c.reads,
        fresh_hits: c.fresh,
        stale_serves: c.stale,
        misses: c.misses,
        fresh_hit_ratio: if c.reads == 0 {
            0.0
        } else {
            c.fresh as f64 / c.reads as f64
        },
        p99_age_seconds: c.p99(),
        upstream_calls_per_day: w.upstream_calls + w.reader_upstream_calls,
        store_writes_per_day: w.writes.total(),
        workload: w,
    }
}

/// Daily counts of `w`, counted over `days`.
fn per_day(w: Workload, days: f64) -> Workload {
    Workload {
        reads: w.reads / days,
        ticks: w.ticks / days,
        ticks_with_targets: w.ticks_with_targets / days,
        read_runs: w.read_runs / days,
        batches: w.batches / days,
        targets: w.targets / days,
        fetches: w.fetches / days,
        upstream_calls: w.upstream_calls / days,
        reader_upstream_calls: w.reader_upstream_calls / days,
        writes: w.writes.per(days),
        store_reads: w.store_reads.per(days),
        demand_notes: w.demand_notes / days,
        demand_records: w.demand_records,
    }
}

/// The strategies the simulation compares: always-refresh, demand-aware with
/// `policy`, and the original read-through.
pub fn strategies(policy: &DemandPolicy) -> [Strategy; 3] {
    [
        Strategy::AlwaysRefresh,
        Strategy::DemandAware(policy.clone()),
        Strategy::ReadThrough,
    ]
}

/// Simulates each of `strategies` over the same trace, one thread each, and
/// reports them in the order given.
pub fn simulate(settings: &SimSettings, strategies: &[Strategy]) -> Vec<SimReport> {
    let fleet = Fleet::new(settings);
    std::thread::scope(|scope| {
        let runs: Vec<_> = strategies
            .iter()
            .map(|strategy| {
                let fleet = &fleet;
                scope.spawn(move || run(fleet, settings, strategy))
            })
            .collect();
        runs.into_iter()
            .map(|h| h.join().expect("a simulation thread does not panic"))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cost::model::{CostInputs, Workload};

    fn small(reads_per_minute: f64, days: u32) -> SimSettings {
        SimSettings {
            days,
            ..SimSettings::new(3, 2, reads_per_minute)
        }
    }

    #[test]
    fn reads_crowd_into_weekday_business_hours_and_average_to_the_rate_asked() {
        let monday_9 = START + DAY + 9 * 3_600;
        let saturday_9 = START + 6 * DAY + 9 * 3_600;
        assert!(read_weight(monday_9, 0.15) > 2.0);
        assert!(read_weight(saturday_9, 0.15) < 0.5);
        let week: f64 = (0..7 * 24)
            .map(|h| read_weight(START + h * 3_600, 0.15))
            .sum::<f64>()
            / 168.0;
        assert!((week - 1.0).abs() < 1e-9);
    }

    #[test]
    fn asking_only_about_keys_whose_answer_can_change_gives_the_same_result_as_asking_about_all() {
        let fast = small(40.0, 2);
        let exhaustive = SimSettings {
            every_key_every_tick: true,
            ..fast.clone()
        };
        let all = strategies(&DemandPolicy::default());
        assert_eq!(simulate(&fast, &all), simulate(&exhaustive, &all));
    }

    #[test]
    fn an_unread_fleet_kept_always_fresh_calls_upstream_as_the_model_says() {
        let settings = small(0.0, 2);
        let sim = &simulate(&settings, &[Strategy::AlwaysRefresh])[0];
        let model = Workload::estimate(&CostInputs::new(3, 2, 0.0, Strategy::AlwaysRefresh));
        // Two days hold 49 refreshes of each hourly key (59 minutes apart)
        // where the model counts 24.4 a day.
        assert!(
            (sim.upstream_calls_per_day / model.upstream_calls - 1.0).abs() < 0.001,
            "simulated {} modelled {}",
            sim.upstream_calls_per_day,
            model.upstream_calls
        );
        assert_eq!(sim.reads, 0);
    }

    #[test]
    fn the_same_seed_replays_the_same_trace_and_another_seed_another() {
        let a = small(30.0, 1);
        let b = SimSettings {
            seed: 2,
            ..a.clone()
        };
        let run = |s: &SimSettings| simulate(s, &[Strategy::ReadThrough]).remove(0);
        assert_eq!(run(&a), run(&a));
        assert_ne!(run(&a).misses, run(&b).misses);
    }

    #[test]
    fn read_through_fetches_only_on_reads_and_serves_what_it_fetched_fresh() {
        let report = &simulate(&small(30.0, 1), &[Strategy::ReadThrough])[0];
        assert_eq!(report.workload.ticks, 0.0);
        assert_eq!(report.stale_serves, 0);
        assert!(report.misses > 0);
        assert_eq!(report.fresh_hits + report.misses, report.reads);
        assert!(report.workload.reader_upstream_calls > 0.0);
        assert_eq!(report.workload.upstream_calls, 0.0);
    }

    #[test]
    fn the_most_read_key_takes_its_zipf_share_of_the_reads() {
        let settings = small(1.0, 1);
        let mut trace = Trace::new(1_000, &settings);
        let first = trace.order[0];
        let n = 200_000;
        let hits = (0..n).filter(|_| trace.key() == first).count();
        let weights: f64 = (1..=1_000).map(|r| f64::from(r).powf(-1.1)).sum();
        let share = hits as f64 / f64::from(n);
        assert!((share - 1.0 / weights).abs() < 0.01, "{share}");
    }
}
