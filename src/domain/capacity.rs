//! DRS replication capacity: how many of an account's source servers replicate
//! in a region, against the service limits.

use std::collections::BTreeMap;

use super::{InvalidValue, inventory::SourceServer};

/// Replication states that hold a replication slot.
pub const REPLICATING_STATES: [&str; 6] = [
    "CONTINUOUS",
    "INITIAL_SYNC",
    "RESCAN",
    "INITIATING",
    "CREATING_SNAPSHOT",
    "BACKLOG",
];

/// The DRS limit on replicating source servers per account and region.
pub const DEFAULT_MAX_REPLICATING: u64 = 300;
/// The DRS limit on source servers per account and region.
pub const DEFAULT_MAX_SOURCE_SERVERS: u64 = 4000;
/// The DRS limit on recovery instances per account and region.
pub const DEFAULT_MAX_RECOVERY_INSTANCES: u64 = 4000;
/// The DRS limit on concurrent (pending or started) jobs per account and region.
pub const DEFAULT_MAX_ACTIVE_JOBS: u64 = 20;
/// The DRS limit on servers across all active jobs per account and region.
pub const DEFAULT_MAX_SERVERS_IN_ACTIVE_JOBS: u64 = 500;

/// Limits and the utilization at which the status turns WARNING and CRITICAL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaThresholds {
    max_replicating: u64,
    max_source_servers: u64,
    max_recovery_instances: u64,
    max_active_jobs: u64,
    max_servers_in_active_jobs: u64,
    warning_percent: u8,
    critical_percent: u8,
}

impl Default for QuotaThresholds {
    fn default() -> Self {
        Self {
            max_replicating: DEFAULT_MAX_REPLICATING,
            max_source_servers: DEFAULT_MAX_SOURCE_SERVERS,
            max_recovery_instances: DEFAULT_MAX_RECOVERY_INSTANCES,
            max_active_jobs: DEFAULT_MAX_ACTIVE_JOBS,
            max_servers_in_active_jobs: DEFAULT_MAX_SERVERS_IN_ACTIVE_JOBS,
            warning_percent: 80,
            critical_percent: 90,
        }
    }
}

impl QuotaThresholds {
    /// Limits must be positive and `0 < warning <= critical <= 100`.
    pub fn new(
        max_replicating: u64,
        max_source_servers: u64,
        warning_percent: u8,
        critical_percent: u8,
    ) -> Result<Self, InvalidValue> {
        if max_replicating == 0 || max_source_servers == 0 {
            return Err(InvalidValue {
                reason: "limits must be greater than zero",
            });
        }
        if warning_percent == 0 || warning_percent > critical_percent || critical_percent > 100 {
            return Err(InvalidValue {
                reason: "thresholds must satisfy 0 < warning <= critical <= 100",
            });
        }
        Ok(Self {
            max_replicating,
            max_source_servers,
            warning_percent,
            critical_percent,
            ..Self::default()
        })
    }

    /// These thresholds with the limits on recovery instances, active jobs
    /// and servers in active jobs; each must be greater than zero.
    pub fn with_recovery_limits(
        self,
        max_recovery_instances: u64,
        max_active_jobs: u64,
        max_servers_in_active_jobs: u64,
    ) -> Result<Self, InvalidValue> {
        if max_recovery_instances == 0 || max_active_jobs == 0 || max_servers_in_active_jobs == 0 {
            return Err(InvalidValue {
                reason: "limits must be greater than zero",
            });
        }
        Ok(Self {
            max_recovery_instances,
            max_active_jobs,
            max_servers_in_active_jobs,
            ..self
        })
    }

    pub const fn max_recovery_instances(&self) -> u64 {
        self.max_recovery_instances
    }

    pub const fn max_active_jobs(&self) -> u64 {
        self.max_active_jobs
    }

    pub const fn max_servers_in_active_jobs(&self) -> u64 {
        self.max_servers_in_active_jobs
    }

    pub const fn warning_percent(&self) -> u8 {
        self.warning_percent
    }

    pub const fn critical_percent(&self) -> u8 {
        self.critical_percent
    }

    /// The status of `used` against `limit` (a positive limit).
    pub fn status_of(&self, used: u64, limit: u64) -> CapacityStatus {
        let used = u128::from(used) * 100;
        let limit = u128::from(limit.max(1));
        if used >= limit * u128::from(self.critical_percent) {
            CapacityStatus::Critical
        } else if used >= limit * u128::from(self.warning_percent) {
            CapacityStatus::Warning
        } else {
            CapacityStatus::Ok
        }
    }

    pub const fn max_replicating(&self) -> u64 {
        self.max_replicating
    }

    pub const fn max_source_servers(&self) -> u64 {
        self.max_source_servers
    }
}

/// How close an account and region are to their replication limits, served
/// in upper case (`WARNING`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, strum::IntoStaticStr)]
#[strum(serialize_all = "UPPERCASE")]
pub enum CapacityStatus {
    Ok,
    Warning,
    Critical,
}

impl CapacityStatus {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// The replication capacity of one account in one region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capacity {
    pub total_source_servers: u64,
    /// Servers holding a replication slot in this account: in a replicating state
    /// and not extended from a staging account.
    pub replicating_servers: u64,
    /// Servers extended from a staging account, which replicate there.
    pub extended_servers: u64,
    /// Every server (extended or not) per replication state, so STALLED, PAUSED
    /// and DISCONNECTED servers are visible; `UNKNOWN` where DRS gave none.
    pub by_replication_state: BTreeMap<String, u64>,
}

impl Capacity {
    pub fn of(servers: &[SourceServer]) -> Self {
        let mut capacity = Self {
            total_source_servers: servers.len() as u64,
            replicating_servers: 0,
            extended_servers: 0,
            by_replication_state: BTreeMap::new(),
        };
        for server in servers {
            let state = server.replication_state.as_deref().unwrap_or("UNKNOWN");
            *capacity
                .by_replication_state
                .entry(state.to_owned())
                .or_default() += 1;
            if server.is_extended {
                capacity.extended_servers += 1;
            } else if REPLICATING_STATES.contains(&state) {
                capacity.replicating_servers += 1;
            }
        }
        capacity
    }

    pub fn available_replicating_slots(&self, limits: &QuotaThresholds) -> u64 {
        limits
            .max_replicating
            .saturating_sub(self.replicating_servers)
    }

    /// Replicating servers as a percentage of the limit, to one decimal.
    pub fn utilization_percent(&self, limits: &QuotaThresholds) -> f64 {
        percent(self.replicating_servers, limits.max_replicating)
    }

    pub fn status(&self, limits: &QuotaThresholds) -> CapacityStatus {
        limits.status_of(self.replicating_servers, limits.max_replicating)
    }
}

/// `used` as a percentage of `limit`, to one decimal.
pub fn percent(used: u64, limit: u64) -> f64 {
    // Counts are far below 2^53.
    #[allow(clippy::cast_precision_loss)]
    let raw = used as f64 * 100.0 / limit.max(1) as f64;
    (raw * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::inventory::Hardware;

    fn server(state: &str, staging: &str) -> SourceServer {
        SourceServer {
            replication_state: Some(state.into()),
            hardware: Hardware::from_bytes(1, 0, 0),
            ..SourceServer::bare("s-1").with_staging_status(staging)
        }
    }

    fn fleet(replicating: usize, other: &[(&str, &str)]) -> Vec<SourceServer> {
        let mut servers: Vec<_> = (0..replicating)
            .map(|i| server(REPLICATING_STATES[i % 6], "NOT_EXTENDED"))
            .collect();
        servers.extend(other.iter().map(|(s, st)| server(s, st)));
        servers
    }

    #[test]
    fn given_mixed_states_when_counted_then_only_local_replicating_servers_hold_slots() {
        let servers = fleet(
            6,
            &[
                ("STALLED", "NOT_EXTENDED"),
                ("PAUSED", "NOT_EXTENDED"),
                ("DISCONNECTED", "NOT_EXTENDED"),
                ("CONTINUOUS", "EXTENDED"),
            ],
        );
        let c = Capacity::of(&servers);
        assert_eq!(c.total_source_servers, 10);
        assert_eq!(c.replicating_servers, 6);
        assert_eq!(c.extended_servers, 1);
        assert_eq!(c.by_replication_state["STALLED"], 1);
        assert_eq!(c.by_replication_state["PAUSED"], 1);
        assert_eq!(c.by_replication_state["DISCONNECTED"], 1);
        assert_eq!(c.by_replication_state["CONTINUOUS"], 2);
    }

    #[test]
    fn status_turns_warning_at_80_percent_and_critical_at_90() {
        let limits = QuotaThresholds::default();
        let status = |n| Capacity::of(&fleet(n, &[])).status(&limits);
        assert_eq!(status(239), CapacityStatus::Ok);
        assert_eq!(status(240), CapacityStatus::Warning);
        assert_eq!(status(269), CapacityStatus::Warning);
        assert_eq!(status(270), CapacityStatus::Critical);
        assert_eq!(status(320), CapacityStatus::Critical);
    }

    #[test]
    fn slots_and_utilization_follow_the_limit() {
        let limits = QuotaThresholds::default();
        let c = Capacity::of(&fleet(100, &[]));
        assert_eq!(c.available_replicating_slots(&limits), 200);
        assert_eq!(c.utilization_percent(&limits), 33.3);
        let over = Capacity::of(&fleet(301, &[]));
        assert_eq!(over.available_replicating_slots(&limits), 0);
    }

    #[test]
    fn thresholds_are_validated() {
        assert!(QuotaThresholds::new(300, 4000, 80, 90).is_ok());
        assert!(QuotaThresholds::new(0, 4000, 80, 90).is_err());
        assert!(QuotaThresholds::new(300, 4000, 95, 90).is_err());
        assert!(QuotaThresholds::new(300, 4000, 80, 101).is_err());
        assert!(QuotaThresholds::new(300, 4000, 0, 90).is_err());
        let t = QuotaThresholds::default();
        assert!(t.with_recovery_limits(4000, 20, 500).is_ok());
        assert!(t.with_recovery_limits(4000, 0, 500).is_err());
    }
}
