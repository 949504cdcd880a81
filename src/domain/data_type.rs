use std::{fmt, time::Duration};

use super::{InvalidValue, by_name};

/// One kind of cached upstream data, named in kebab case (`drs-source-servers`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    strum::IntoStaticStr,
    strum::VariantArray,
    strum::EnumCount,
)]
#[strum(serialize_all = "kebab-case")]
pub enum DataType {
    DrsSourceServers,
    DrsQuotas,
    DrsAccounts,
    DrsJobs,
    DrsRecoveryInstances,
    DrsSourceNetworks,
    Ec2Subnets,
    Ec2SecurityGroups,
    Ec2InstanceProfiles,
    Ec2InstanceTypes,
    /// Derived, never fetched: the fleet capacity, summed by the planner from
    /// the figures of the quota, recovery-instance and job entries.
    DrsCapacity,
}

/// Why a name is not a data type; lists every name (a test holds it to them).
const UNKNOWN_DATA_TYPE: &str = "must be one of drs-source-servers, drs-quotas, drs-accounts, drs-jobs, drs-recovery-instances, drs-source-networks, ec2-subnets, ec2-security-groups, ec2-instance-profiles, ec2-instance-types";

impl DataType {
    /// Every data type fetched from upstream, in declaration order: what a
    /// deployment may keep (derived types are left out).
    pub const ALL: &'static [DataType] = &[
        Self::DrsSourceServers,
        Self::DrsQuotas,
        Self::DrsAccounts,
        Self::DrsJobs,
        Self::DrsRecoveryInstances,
        Self::DrsSourceNetworks,
        Self::Ec2Subnets,
        Self::Ec2SecurityGroups,
        Self::Ec2InstanceProfiles,
        Self::Ec2InstanceTypes,
    ];

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// A data type a deployment may keep, refresh or invalidate: a derived
    /// type's name is refused like an unknown one.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        Self::parse_stored(raw)
            .ok()
            .filter(|t| !t.is_derived())
            .ok_or(InvalidValue {
                reason: UNKNOWN_DATA_TYPE,
            })
    }

    /// Any data type, derived ones included, as stored keys name them.
    pub(super) fn parse_stored(raw: &str) -> Result<Self, InvalidValue> {
        by_name(raw).map_err(|_| InvalidValue {
            reason: UNKNOWN_DATA_TYPE,
        })
    }

    /// Data that is the same in every account is keyed by region only.
    pub const fn is_account_independent(self) -> bool {
        matches!(self, Self::Ec2InstanceTypes | Self::DrsCapacity)
    }

    /// Computed from other entries by the refresh side, never fetched.
    pub const fn is_derived(self) -> bool {
        matches!(self, Self::DrsCapacity)
    }

    /// Freshness from the original design's TTL table; jobs and recovery
    /// instances, which change by the minute during a drill, for 30 seconds.
    pub const fn default_freshness(self) -> Duration {
        match self {
            Self::DrsJobs | Self::DrsRecoveryInstances => Duration::from_secs(30),
            Self::DrsSourceNetworks => Duration::from_secs(5 * 60),
            Self::DrsSourceServers | Self::DrsCapacity => Duration::from_secs(2 * 60),
            Self::DrsQuotas => Duration::from_secs(5 * 60),
            Self::DrsAccounts
            | Self::Ec2Subnets
            | Self::Ec2SecurityGroups
            | Self::Ec2InstanceProfiles => Duration::from_secs(60 * 60),
            Self::Ec2InstanceTypes => Duration::from_secs(24 * 60 * 60),
        }
    }

    /// The record list and count fields of this type's view, such as
    /// `("subnets", "count")`; quotas are one object and have none.
    pub const fn record_list(self) -> Option<(&'static str, &'static str)> {
        Some(match self {
            Self::DrsSourceServers => ("servers", "serverCount"),
            Self::DrsAccounts => ("accounts", "count"),
            Self::DrsJobs => ("jobs", "count"),
            Self::DrsRecoveryInstances => ("recoveryInstances", "count"),
            Self::DrsSourceNetworks => ("sourceNetworks", "count"),
            Self::Ec2Subnets => ("subnets", "count"),
            Self::Ec2SecurityGroups => ("securityGroups", "count"),
            Self::Ec2InstanceProfiles => ("instanceProfiles", "count"),
            Self::Ec2InstanceTypes => ("instanceTypes", "count"),
            Self::DrsQuotas | Self::DrsCapacity => return None,
        })
    }

    /// `DRS_SOURCE_SERVERS` for `drs-source-servers`: the stem of its env overrides.
    pub fn env_stem(self) -> String {
        self.as_str().replace('-', "_").to_ascii_uppercase()
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How long data of one type is fresh, and how long after that it may still be
/// served, marked stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TtlPolicy {
    pub freshness: Duration,
    pub stale_window: Duration,
}

impl TtlPolicy {
    pub const DEFAULT_STALE_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);
}

/// The policy of every data type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TtlTable([TtlPolicy; <DataType as strum::EnumCount>::COUNT]);

impl Default for TtlTable {
    fn default() -> Self {
        Self(std::array::from_fn(|i| TtlPolicy {
            freshness: <DataType as strum::VariantArray>::VARIANTS[i].default_freshness(),
            stale_window: TtlPolicy::DEFAULT_STALE_WINDOW,
        }))
    }
}

impl TtlTable {
    pub fn policy(&self, data_type: DataType) -> TtlPolicy {
        self.0[data_type as usize]
    }

    pub fn set(&mut self, data_type: DataType, policy: TtlPolicy) {
        self.0[data_type as usize] = policy;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for &t in DataType::ALL {
            assert_eq!(DataType::parse(t.as_str()), Ok(t));
        }
        assert!(DataType::parse("drs-quota").is_err());
        // Derived data is stored under its name but never kept or asked for.
        assert!(DataType::parse("drs-capacity").is_err());
        assert_eq!(
            DataType::parse_stored("drs-capacity"),
            Ok(DataType::DrsCapacity)
        );
        let variants = <DataType as strum::VariantArray>::VARIANTS;
        let fetched: Vec<_> = variants.iter().filter(|t| !t.is_derived()).collect();
        assert_eq!(fetched, DataType::ALL.iter().collect::<Vec<_>>());
        assert_eq!(DataType::Ec2SecurityGroups.as_str(), "ec2-security-groups");
    }

    #[test]
    fn the_refusal_names_every_data_type_in_order() {
        let names: Vec<&str> = DataType::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(
            UNKNOWN_DATA_TYPE,
            format!("must be one of {}", names.join(", "))
        );
    }

    #[test]
    fn defaults_follow_the_original_ttl_table() {
        let table = TtlTable::default();
        let secs = |t| table.policy(t).freshness.as_secs();
        assert_eq!(secs(DataType::DrsSourceServers), 120);
        assert_eq!(secs(DataType::DrsQuotas), 300);
        assert_eq!(secs(DataType::DrsAccounts), 3600);
        assert_eq!(secs(DataType::DrsJobs), 30);
        assert_eq!(secs(DataType::DrsRecoveryInstances), 30);
        assert_eq!(secs(DataType::DrsSourceNetworks), 300);
        assert_eq!(secs(DataType::Ec2Subnets), 3600);
        assert_eq!(secs(DataType::Ec2SecurityGroups), 3600);
        assert_eq!(secs(DataType::Ec2InstanceProfiles), 3600);
        assert_eq!(secs(DataType::Ec2InstanceTypes), 86_400);
        for &t in DataType::ALL {
            assert_eq!(table.policy(t).stale_window.as_secs(), 86_400);
        }
    }

    #[test]
    fn env_stem_is_screaming_snake() {
        assert_eq!(DataType::Ec2InstanceTypes.env_stem(), "EC2_INSTANCE_TYPES");
    }
}
