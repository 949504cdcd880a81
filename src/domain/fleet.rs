//! The capacity of a whole fleet: for every kept account and region, what
//! counts against each DRS limit, with totals per account, per region and for
//! the fleet. Summed from entry metadata (counts and [`Figures`]) only, so it
//! costs no body read however large the fleet.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{
    AccountId, CacheKey, DataType, EntryMeta, EntryState, Figure, Freshness, Region, Timestamp,
    capacity::{CapacityStatus, QuotaThresholds, percent},
};

/// The entries a row of the fleet capacity is summed from.
pub const INPUTS: [DataType; 3] = [
    DataType::DrsQuotas,
    DataType::DrsRecoveryInstances,
    DataType::DrsJobs,
];

/// Where a deployment keeping `data_types` in `regions` keeps its fleet
/// capacity: under its first region, or nowhere if it keeps none of the
/// inputs.
pub fn key_of(regions: &[Region], data_types: &[DataType]) -> Option<CacheKey> {
    let kept = INPUTS.iter().any(|t| data_types.contains(t));
    let region = regions.first().filter(|_| kept)?;
    Some(CacheKey::fleet_capacity(region.clone()))
}

/// How close a row, or a total, is to its limits, in upper case. `UNKNOWN`
/// when none of its inputs is cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum FleetStatus {
    Ok,
    Warning,
    Critical,
    #[default]
    Unknown,
}

impl From<CapacityStatus> for FleetStatus {
    fn from(status: CapacityStatus) -> Self {
        match status {
            CapacityStatus::Ok => Self::Ok,
            CapacityStatus::Warning => Self::Warning,
            CapacityStatus::Critical => Self::Critical,
        }
    }
}

/// What counts against one DRS limit, named as the answer names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Measure {
    ReplicatingServers,
    SourceServers,
    RecoveryInstances,
    ActiveJobs,
    ServersInActiveJobs,
}

/// The limit of each measure, per account and region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    pub replicating_servers: u64,
    pub source_servers: u64,
    pub recovery_instances: u64,
    pub active_jobs: u64,
    pub servers_in_active_jobs: u64,
}

impl Limits {
    pub fn of(t: &QuotaThresholds) -> Self {
        Self {
            replicating_servers: t.max_replicating(),
            source_servers: t.max_source_servers(),
            recovery_instances: t.max_recovery_instances(),
            active_jobs: t.max_active_jobs(),
            servers_in_active_jobs: t.max_servers_in_active_jobs(),
        }
    }
}

/// The utilization at which a row turns `WARNING` and `CRITICAL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Thresholds {
    pub warning_percent: u8,
    pub critical_percent: u8,
}

/// One account in one region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    pub account_id: AccountId,
    pub region: Region,
    pub status: FleetStatus,
    /// In a replicating state and not extended (limit: `replicatingServers`).
    pub replicating_servers: Option<u64>,
    pub source_servers: Option<u64>,
    /// Extended from a staging account: replicating there, not here.
    pub extended_servers: Option<u64>,
    /// Drills included (limit: `recoveryInstances`).
    pub recovery_instances: Option<u64>,
    pub drill_instances: Option<u64>,
    /// Pending or started; finished jobs are not counted.
    pub active_jobs: Option<u64>,
    pub servers_in_active_jobs: Option<u64>,
    /// The highest utilization of a known measure, and which one it is.
    pub utilization_percent: Option<f64>,
    pub limited_by: Option<Measure>,
    /// DRS is not initialized here: every count is zero.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drs_not_initialized: bool,
    /// Inputs not cached (never, only failed attempts, or past their stale
    /// window): the counts they give are `null`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<DataType>,
    /// Inputs past their freshness, counted as last cached.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stale: Vec<DataType>,
}

impl Row {
    fn measures(&self, limits: &Limits) -> [(Measure, Option<u64>, u64); 5] {
        [
            (
                Measure::ReplicatingServers,
                self.replicating_servers,
                limits.replicating_servers,
            ),
            (
                Measure::SourceServers,
                self.source_servers,
                limits.source_servers,
            ),
            (
                Measure::RecoveryInstances,
                self.recovery_instances,
                limits.recovery_instances,
            ),
            (Measure::ActiveJobs, self.active_jobs, limits.active_jobs),
            (
                Measure::ServersInActiveJobs,
                self.servers_in_active_jobs,
                limits.servers_in_active_jobs,
            ),
        ]
    }

    /// Sets the status and the highest utilization from the counts.
    fn rate(&mut self, limits: &Limits, thresholds: &QuotaThresholds) {
        let mut highest: Option<(Measure, u64, u64)> = None;
        for (measure, used, limit) in self.measures(limits) {
            let Some(used) = used else { continue };
            // Compared as used/limit without rounding.
            let higher = highest.is_none_or(|(_, u, l)| {
                u128::from(used) * u128::from(l.max(1)) > u128::from(u) * u128::from(limit.max(1))
            });
            if higher {
                highest = Some((measure, used, limit));
            }
        }
        self.status = highest.map_or(FleetStatus::Unknown, |(_, used, limit)| {
            thresholds.status_of(used, limit).into()
        });
        self.utilization_percent = highest.map(|(_, used, limit)| percent(used, limit));
        self.limited_by = highest.map(|(m, _, _)| m);
    }
}

/// Rows by status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub struct StatusCounts {
    pub ok: u64,
    pub warning: u64,
    pub critical: u64,
    pub unknown: u64,
}

/// The sums of a set of rows. Limits hold per account and region, so a
/// total's status is that of its worst row, not the sum against a sum.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    pub status: FleetStatus,
    pub rows: u64,
    pub rows_by_status: StatusCounts,
    /// Rows with an input missing: their unknown counts add nothing.
    pub incomplete_rows: u64,
    pub replicating_servers: u64,
    pub source_servers: u64,
    pub extended_servers: u64,
    pub recovery_instances: u64,
    pub drill_instances: u64,
    pub active_jobs: u64,
    pub servers_in_active_jobs: u64,
}

impl Totals {
    fn of<'a>(rows: impl IntoIterator<Item = &'a Row>) -> Self {
        let mut t = Self::default();
        for row in rows {
            t.rows += 1;
            let counts = &mut t.rows_by_status;
            *match row.status {
                FleetStatus::Ok => &mut counts.ok,
                FleetStatus::Warning => &mut counts.warning,
                FleetStatus::Critical => &mut counts.critical,
                FleetStatus::Unknown => &mut counts.unknown,
            } += 1;
            if !row.missing.is_empty() {
                t.incomplete_rows += 1;
            }
            let add = |sum: &mut u64, n: Option<u64>| *sum += n.unwrap_or(0);
            add(&mut t.replicating_servers, row.replicating_servers);
            add(&mut t.source_servers, row.source_servers);
            add(&mut t.extended_servers, row.extended_servers);
            add(&mut t.recovery_instances, row.recovery_instances);
            add(&mut t.drill_instances, row.drill_instances);
            add(&mut t.active_jobs, row.active_jobs);
            add(&mut t.servers_in_active_jobs, row.servers_in_active_jobs);
        }
        t.status = worst(&t.rows_by_status);
        t
    }
}

/// The worst known status among rows counted in `c`; `UNKNOWN` if none is known.
fn worst(c: &StatusCounts) -> FleetStatus {
    if c.critical > 0 {
        FleetStatus::Critical
    } else if c.warning > 0 {
        FleetStatus::Warning
    } else if c.ok > 0 {
        FleetStatus::Ok
    } else {
        FleetStatus::Unknown
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountTotals {
    pub account_id: AccountId,
    #[serde(flatten)]
    pub totals: Totals,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegionTotals {
    pub region: Region,
    #[serde(flatten)]
    pub totals: Totals,
}

/// The fleet capacity document, as stored and served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetCapacity {
    pub status: FleetStatus,
    pub limits: Limits,
    pub thresholds: Thresholds,
    pub fleet: Totals,
    pub accounts: Vec<AccountTotals>,
    pub regions: Vec<RegionTotals>,
    pub rows: Vec<Row>,
    pub row_count: usize,
}

/// A fleet capacity and the fetch time of its oldest input.
#[derive(Debug, Clone, PartialEq)]
pub struct Summed {
    pub capacity: FleetCapacity,
    /// `None` when no input is cached.
    pub oldest_input: Option<Timestamp>,
}

impl FleetCapacity {
    /// The capacity of every account of `accounts` in every region of
    /// `regions`, from the metadata in `stored`, as of `now`. Inputs not in
    /// `kept` are left out of every row (and their counts are `null`).
    pub fn sum(
        stored: &HashMap<CacheKey, EntryMeta>,
        accounts: &[AccountId],
        regions: &[Region],
        kept: &[DataType],
        thresholds: &QuotaThresholds,
        now: Timestamp,
    ) -> Summed {
        let limits = Limits::of(thresholds);
        let mut oldest_input: Option<Timestamp> = None;
        let mut rows = Vec::with_capacity(accounts.len() * regions.len());
        for account in accounts {
            for region in regions {
                let mut row = Row {
                    account_id: *account,
                    region: region.clone(),
                    status: FleetStatus::Unknown,
                    replicating_servers: None,
                    source_servers: None,
                    extended_servers: None,
                    recovery_instances: None,
                    drill_instances: None,
                    active_jobs: None,
                    servers_in_active_jobs: None,
                    utilization_percent: None,
                    limited_by: None,
                    drs_not_initialized: false,
                    missing: Vec::new(),
                    stale: Vec::new(),
                };
                for input in INPUTS.iter().filter(|t| kept.contains(t)) {
                    let key = CacheKey::new(*input, region.clone(), *account);
                    match stored.get(&key).and_then(|m| Input::of(m, now)) {
                        None => row.missing.push(*input),
                        Some(found) => {
                            oldest_input = Some(
                                oldest_input.map_or(found.fetched_at, |o| o.min(found.fetched_at)),
                            );
                            if found.stale {
                                row.stale.push(*input);
                            }
                            row.drs_not_initialized |= found.not_initialized;
                            found.count_into(*input, &mut row);
                        }
                    }
                }
                row.rate(&limits, thresholds);
                rows.push(row);
            }
        }
        let capacity = Self::of_rows(
            rows,
            limits,
            Thresholds {
                warning_percent: thresholds.warning_percent(),
                critical_percent: thresholds.critical_percent(),
            },
        );
        Summed {
            capacity,
            oldest_input,
        }
    }

    /// The document of `rows`, its totals summed from them.
    fn of_rows(rows: Vec<Row>, limits: Limits, thresholds: Thresholds) -> Self {
        let fleet = Totals::of(&rows);
        let mut account_ids: Vec<AccountId> = Vec::new();
        let mut region_ids: Vec<Region> = Vec::new();
        for row in &rows {
            if !account_ids.contains(&row.account_id) {
                account_ids.push(row.account_id);
            }
            if !region_ids.contains(&row.region) {
                region_ids.push(row.region.clone());
            }
        }
        let accounts = account_ids
            .into_iter()
            .map(|account_id| AccountTotals {
                totals: Totals::of(rows.iter().filter(|r| r.account_id == account_id)),
                account_id,
            })
            .collect();
        let regions = region_ids
            .into_iter()
            .map(|region| RegionTotals {
                totals: Totals::of(rows.iter().filter(|r| r.region == region)),
                region,
            })
            .collect();
        Self {
            status: fleet.status,
            limits,
            thresholds,
            fleet,
            accounts,
            regions,
            row_count: rows.len(),
            rows,
        }
    }

    /// Only the rows of `accounts` and of `regions` (either empty: all), with
    /// the totals of those rows.
    #[must_use]
    pub fn select(self, accounts: &[AccountId], regions: &[Region]) -> Self {
        let rows = self
            .rows
            .into_iter()
            .filter(|r| accounts.is_empty() || accounts.contains(&r.account_id))
            .filter(|r| regions.is_empty() || regions.contains(&r.region))
            .collect();
        Self::of_rows(rows, self.limits, self.thresholds)
    }
}

/// One cached input of a row, as of a point in time.
struct Input<'a> {
    meta: &'a EntryMeta,
    fetched_at: Timestamp,
    stale: bool,
    not_initialized: bool,
}

impl<'a> Input<'a> {
    /// `meta` as an input, unless it holds no data, is past its stale window,
    /// or lacks the figures its type records.
    fn of(meta: &'a EntryMeta, now: Timestamp) -> Option<Self> {
        let freshness = meta.freshness(now);
        let not_initialized = match meta.state {
            EntryState::NoData => return None,
            EntryState::DrsNotInitialized => true,
            EntryState::Ready => false,
        };
        if freshness == Freshness::Expired {
            return None;
        }
        let needs: &[Figure] = match meta.key.data_type() {
            DataType::DrsQuotas => &[Figure::ReplicatingServers, Figure::ExtendedServers],
            DataType::DrsRecoveryInstances => &[Figure::DrillInstances],
            DataType::DrsJobs => &[Figure::ActiveJobs, Figure::ServersInActiveJobs],
            _ => &[],
        };
        if !not_initialized && needs.iter().any(|f| meta.figures.get(*f).is_none()) {
            return None;
        }
        Some(Self {
            meta,
            fetched_at: meta.fetched_at,
            stale: !freshness.is_fresh(),
            not_initialized,
        })
    }

    /// A figure of the input; zero where DRS is not initialized.
    fn figure(&self, figure: Figure) -> Option<u64> {
        if self.not_initialized {
            Some(0)
        } else {
            self.meta.figures.get(figure)
        }
    }

    fn count(&self) -> Option<u64> {
        Some(if self.not_initialized {
            0
        } else {
            self.meta.item_count
        })
    }

    fn count_into(&self, input: DataType, row: &mut Row) {
        match input {
            DataType::DrsQuotas => {
                row.source_servers = self.count();
                row.replicating_servers = self.figure(Figure::ReplicatingServers);
                row.extended_servers = self.figure(Figure::ExtendedServers);
            }
            DataType::DrsRecoveryInstances => {
                row.recovery_instances = self.count();
                row.drill_instances = self.figure(Figure::DrillInstances);
            }
            DataType::DrsJobs => {
                row.active_jobs = self.figure(Figure::ActiveJobs);
                row.servers_in_active_jobs = self.figure(Figure::ServersInActiveJobs);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::domain::{ETag, Figures, Version};

    fn account(n: u64) -> AccountId {
        AccountId::parse(&format!("{:012}", 111_111_111_111 * n)).unwrap()
    }

    fn region(name: &str) -> Region {
        Region::parse(name).unwrap()
    }

    const NOW: i64 = 1_000_000;

    fn meta(
        t: DataType,
        a: AccountId,
        r: &str,
        count: u64,
        figures: Figures,
        fetched_ago: u64,
    ) -> EntryMeta {
        let fetched_at = Timestamp::from_unix_secs(NOW).minus(Duration::from_secs(fetched_ago));
        let expires_at = fetched_at.plus(Duration::from_secs(300));
        EntryMeta {
            key: CacheKey::new(t, region(r), a),
            version: Version::from_raw(1),
            etag: ETag::of(b"x"),
            state: EntryState::Ready,
            created_at: fetched_at,
            fetched_at,
            expires_at,
            stale_until: expires_at.plus(Duration::from_secs(3600)),
            item_count: count,
            figures,
            last_attempt: None,
        }
    }

    fn quotas(replicating: u64, extended: u64) -> Figures {
        Figures::default()
            .with(Figure::ReplicatingServers, replicating)
            .with(Figure::ExtendedServers, extended)
    }

    fn jobs(active: u64, servers: u64) -> Figures {
        Figures::default()
            .with(Figure::ActiveJobs, active)
            .with(Figure::ServersInActiveJobs, servers)
    }

    fn drills(n: u64) -> Figures {
        Figures::default().with(Figure::DrillInstances, n)
    }

    /// Two accounts in two regions, counted by hand:
    ///
    /// | account | region    | servers | replicating | extended | instances (drills) | jobs | servers in jobs |
    /// |---------|-----------|---------|-------------|----------|--------------------|------|-----------------|
    /// | 1       | us-east-1 | 260     | 250         | 5        | 12 (8)             | 2    | 40              |
    /// | 1       | eu-west-1 | 10      | 4           | 0        | 0                  | 0    | 0               |
    /// | 2       | us-east-1 | 3       | 3           | 0        | 3000 (2900)        | 18   | 120             |
    /// | 2       | eu-west-1 | (not initialized)                                                             |
    fn fleet() -> HashMap<CacheKey, EntryMeta> {
        let (a1, a2) = (account(1), account(2));
        let mut not_initialized = meta(
            DataType::DrsQuotas,
            a2,
            "eu-west-1",
            0,
            Figures::default(),
            10,
        );
        not_initialized.state = EntryState::DrsNotInitialized;
        [
            meta(
                DataType::DrsQuotas,
                a1,
                "us-east-1",
                260,
                quotas(250, 5),
                30,
            ),
            meta(
                DataType::DrsRecoveryInstances,
                a1,
                "us-east-1",
                12,
                drills(8),
                20,
            ),
            meta(DataType::DrsJobs, a1, "us-east-1", 7, jobs(2, 40), 10),
            meta(DataType::DrsQuotas, a1, "eu-west-1", 10, quotas(4, 0), 90),
            meta(
                DataType::DrsRecoveryInstances,
                a1,
                "eu-west-1",
                0,
                drills(0),
                5,
            ),
            meta(DataType::DrsJobs, a1, "eu-west-1", 3, jobs(0, 0), 5),
            meta(DataType::DrsQuotas, a2, "us-east-1", 3, quotas(3, 0), 5),
            meta(
                DataType::DrsRecoveryInstances,
                a2,
                "us-east-1",
                3000,
                drills(2900),
                5,
            ),
            // Past its freshness (300 s): counted, and listed as stale.
            meta(DataType::DrsJobs, a2, "us-east-1", 40, jobs(18, 120), 400),
            not_initialized,
        ]
        .into_iter()
        .map(|m| (m.key.clone(), m))
        .collect()
    }

    fn summed(stored: &HashMap<CacheKey, EntryMeta>) -> Summed {
        FleetCapacity::sum(
            stored,
            &[account(1), account(2)],
            &[region("us-east-1"), region("eu-west-1")],
            DataType::ALL,
            &QuotaThresholds::default(),
            Timestamp::from_unix_secs(NOW),
        )
    }

    #[test]
    fn given_a_hand_counted_fleet_when_summed_then_every_row_and_total_matches() {
        let s = summed(&fleet());
        let c = &s.capacity;
        assert_eq!(c.row_count, 4);
        let r = &c.rows[0];
        assert_eq!((r.account_id, r.region.as_str()), (account(1), "us-east-1"));
        assert_eq!(r.replicating_servers, Some(250));
        assert_eq!(r.extended_servers, Some(5));
        assert_eq!(r.source_servers, Some(260));
        assert_eq!(r.recovery_instances, Some(12));
        assert_eq!(r.drill_instances, Some(8));
        assert_eq!(r.active_jobs, Some(2));
        assert_eq!(r.servers_in_active_jobs, Some(40));
        // 250 of 300 replicating: 83.3 %, past the 80 % warning.
        assert_eq!(r.status, FleetStatus::Warning);
        assert_eq!(r.utilization_percent, Some(83.3));
        assert_eq!(r.limited_by, Some(Measure::ReplicatingServers));
        assert_eq!(c.rows[1].status, FleetStatus::Ok);
        // 18 of 20 active jobs: 90 %, critical; the jobs entry is stale.
        let r = &c.rows[2];
        assert_eq!(r.status, FleetStatus::Critical);
        assert_eq!(r.limited_by, Some(Measure::ActiveJobs));
        assert_eq!(r.stale, [DataType::DrsJobs]);
        // Not initialized: zero counts from the quota entry, the other
        // inputs missing.
        let r = &c.rows[3];
        assert!(r.drs_not_initialized);
        assert_eq!(r.source_servers, Some(0));
        assert_eq!(r.recovery_instances, None);
        assert_eq!(
            r.missing,
            [DataType::DrsRecoveryInstances, DataType::DrsJobs]
        );
        assert_eq!(r.status, FleetStatus::Ok);

        assert_eq!(c.status, FleetStatus::Critical);
        let f = &c.fleet;
        assert_eq!(f.replicating_servers, 257);
        assert_eq!(f.source_servers, 273);
        assert_eq!(f.extended_servers, 5);
        assert_eq!(f.recovery_instances, 3012);
        assert_eq!(f.drill_instances, 2908);
        assert_eq!(f.active_jobs, 20);
        assert_eq!(f.servers_in_active_jobs, 160);
        assert_eq!(f.incomplete_rows, 1);
        assert_eq!(
            f.rows_by_status,
            StatusCounts {
                ok: 2,
                warning: 1,
                critical: 1,
                unknown: 0
            }
        );
        assert_eq!(c.accounts[0].totals.status, FleetStatus::Warning);
        assert_eq!(c.accounts[0].totals.replicating_servers, 254);
        assert_eq!(c.accounts[1].totals.status, FleetStatus::Critical);
        assert_eq!(c.regions[0].region.as_str(), "us-east-1");
        assert_eq!(c.regions[0].totals.recovery_instances, 3012);
        assert_eq!(c.regions[1].totals.status, FleetStatus::Ok);
        // The oldest input was fetched 400 s ago.
        assert_eq!(s.oldest_input, Some(Timestamp::from_unix_secs(NOW - 400)));
    }

    #[test]
    fn inputs_without_data_or_past_their_window_or_without_figures_are_missing() {
        let mut stored = fleet();
        let key = CacheKey::new(DataType::DrsQuotas, region("us-east-1"), account(1));
        stored.get_mut(&key).unwrap().figures = Figures::default();
        let key = CacheKey::new(DataType::DrsJobs, region("us-east-1"), account(1));
        stored.get_mut(&key).unwrap().state = EntryState::NoData;
        let key = CacheKey::new(
            DataType::DrsRecoveryInstances,
            region("us-east-1"),
            account(1),
        );
        let m = stored.get_mut(&key).unwrap();
        m.expires_at = Timestamp::from_unix_secs(NOW - 3600);
        m.stale_until = Timestamp::from_unix_secs(NOW - 1);
        let c = summed(&stored).capacity;
        let r = &c.rows[0];
        assert_eq!(r.missing, INPUTS);
        assert_eq!(r.status, FleetStatus::Unknown);
        assert_eq!(r.utilization_percent, None);
        assert_eq!(c.fleet.rows_by_status.unknown, 1);
        // The unknown row no longer warns: the worst known row is critical.
        assert_eq!(c.status, FleetStatus::Critical);
    }

    #[test]
    fn a_selection_keeps_its_rows_and_sums_them_again() {
        let c = summed(&fleet()).capacity;
        let one = c.clone().select(&[account(1)], &[]);
        assert_eq!(one.row_count, 2);
        assert_eq!(one.accounts.len(), 1);
        assert_eq!(one.fleet.replicating_servers, 254);
        assert_eq!(one.status, FleetStatus::Warning);
        let cell = c.clone().select(&[account(1)], &[region("eu-west-1")]);
        assert_eq!(cell.row_count, 1);
        assert_eq!(cell.status, FleetStatus::Ok);
        let none = c.select(&[account(3)], &[]);
        assert_eq!(none.row_count, 0);
        assert_eq!(none.status, FleetStatus::Unknown);
    }

    #[test]
    fn the_document_reads_back_as_written() {
        let c = summed(&fleet()).capacity;
        let json = serde_json::to_vec(&c).unwrap();
        let back: FleetCapacity = serde_json::from_slice(&json).unwrap();
        assert_eq!(back, c);
        let doc: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(doc["rows"][0]["limitedBy"], "replicatingServers");
        assert_eq!(doc["fleet"]["rowsByStatus"]["CRITICAL"], 1);
        assert_eq!(doc["accounts"][0]["accountId"], account(1).as_str());
        assert_eq!(doc["limits"]["serversInActiveJobs"], 500);
        assert!(doc["rows"][0].get("missing").is_none());
    }
}
