//! Demand: which keys people read, and which accounts a recovery (or an
//! operator) made hot. Refresh-ahead follows it: a key read within its type's
//! demand window, or of a warm account, is refreshed before it expires; any
//! other key only at the floor interval, before its stale window ends, and
//! when a read finds it stale (stale-while-revalidate).

use std::{collections::HashMap, time::Duration};

use super::{AccountId, CacheKey, DataType, InvalidValue, Timestamp};

/// The longest demand window and warm window: demand records live a little
/// longer in the store (see `RECORD_LIFETIME`).
pub const MAX_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);

/// How long a stored demand record or warm mark is kept past its time: longer
/// than any window, so a record is read as long as it can matter.
pub const RECORD_LIFETIME: Duration = Duration::from_secs(8 * 24 * 3600);

/// How many records of one key a reader container writes per demand window at
/// most: it notes a key again only a quarter of a window after it last did,
/// so a key read without a pause always has a record within its window.
const RECORDS_PER_WINDOW: u32 = 4;

/// How the planner refreshes ahead of expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshAhead {
    /// Every configured key, read or not (`REFRESH_AHEAD=always`).
    Always,
    /// Keys in demand; the others at the floor interval
    /// (`REFRESH_AHEAD=demand`).
    OnDemand(DemandPolicy),
}

impl RefreshAhead {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Always => "always",
            Self::OnDemand(_) => "demand",
        }
    }

    /// The demand policy, when refresh-ahead follows demand.
    pub fn demand(&self) -> Option<&DemandPolicy> {
        match self {
            Self::Always => None,
            Self::OnDemand(policy) => Some(policy),
        }
    }
}

/// The windows demand-aware refresh works with, validated on construction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemandPolicy {
    /// How long after its last read a key stays in demand, by data type.
    windows: HashMap<DataType, Duration>,
    default_window: Duration,
    /// A key out of demand is refreshed once fetched this long ago.
    floor: Duration,
    /// How long a warm request (or a DRS launch) keeps an account's keys in
    /// demand.
    warm_window: Duration,
}

impl DemandPolicy {
    pub const DEFAULT_WINDOW: Duration = Duration::from_secs(3600);
    /// The windows of the types that change fastest, shorter than
    /// [`Self::DEFAULT_WINDOW`]: a key of one is refreshed ahead at every tick
    /// while in demand (1,440 times a day), so an hour in demand after one
    /// read costs 60 refreshes, where a read after the window finds it stale
    /// and refreshes it once. A recovery's keys are kept ahead by its warm
    /// window whatever these say. `DEMAND_WINDOWS` sets others per type.
    pub const DEFAULT_TYPE_WINDOWS: [(DataType, Duration); 4] = [
        (DataType::DrsJobs, Duration::from_secs(300)),
        (DataType::DrsRecoveryInstances, Duration::from_secs(300)),
        (DataType::DrsSourceServers, Duration::from_secs(900)),
        (DataType::DrsQuotas, Duration::from_secs(900)),
    ];
    pub const DEFAULT_FLOOR: Duration = Duration::from_secs(6 * 3600);
    pub const DEFAULT_WARM_WINDOW: Duration = Duration::from_secs(4 * 3600);
    /// The shortest demand window: a reader notes a key at most every quarter
    /// of it, and a shorter note interval costs writes for little.
    pub const MIN_WINDOW: Duration = Duration::from_secs(60);

    /// A policy with `window` for every type but those of
    /// [`Self::DEFAULT_TYPE_WINDOWS`] (which [`Self::with_window`] changes),
    /// `floor` and `warm_window`.
    pub fn new(
        window: Duration,
        floor: Duration,
        warm_window: Duration,
    ) -> Result<Self, InvalidValue> {
        check_window(window)?;
        if floor < Duration::from_secs(60) {
            return Err(InvalidValue {
                reason: "the floor interval must be at least 60 seconds",
            });
        }
        if warm_window.is_zero() || warm_window > MAX_WINDOW {
            return Err(InvalidValue {
                reason: "the warm window must be between 1 second and 7 days",
            });
        }
        Ok(Self {
            windows: HashMap::from(Self::DEFAULT_TYPE_WINDOWS),
            default_window: window,
            floor,
            warm_window,
        })
    }

    /// This policy with `window` for `data_type`.
    pub fn with_window(
        mut self,
        data_type: DataType,
        window: Duration,
    ) -> Result<Self, InvalidValue> {
        check_window(window)?;
        self.windows.insert(data_type, window);
        Ok(self)
    }

    pub fn window(&self, data_type: DataType) -> Duration {
        self.windows
            .get(&data_type)
            .copied()
            .unwrap_or(self.default_window)
    }

    pub fn floor(&self) -> Duration {
        self.floor
    }

    pub fn warm_window(&self) -> Duration {
        self.warm_window
    }

    /// This policy with every window `scale` times shorter (the local mode's
    /// `--time-scale`), past the bounds a deployment is held to: a window
    /// stays at least 4 s (a note a second), the floor and warm window 1 s.
    #[must_use]
    pub fn scaled(&self, scale: u32) -> Self {
        let by = |d: Duration, min: u64| (d / scale.max(1)).max(Duration::from_secs(min));
        Self {
            windows: self.windows.iter().map(|(t, w)| (*t, by(*w, 4))).collect(),
            default_window: by(self.default_window, 4),
            floor: by(self.floor, 1),
            warm_window: by(self.warm_window, 1),
        }
    }

    /// How long a reader container waits before it notes a read of a key of
    /// `data_type` again.
    pub fn note_interval(&self, data_type: DataType) -> Duration {
        self.window(data_type) / RECORDS_PER_WINDOW
    }
}

impl Default for DemandPolicy {
    fn default() -> Self {
        Self {
            windows: HashMap::from(Self::DEFAULT_TYPE_WINDOWS),
            default_window: Self::DEFAULT_WINDOW,
            floor: Self::DEFAULT_FLOOR,
            warm_window: Self::DEFAULT_WARM_WINDOW,
        }
    }
}

fn check_window(window: Duration) -> Result<(), InvalidValue> {
    if window < DemandPolicy::MIN_WINDOW || window > MAX_WINDOW {
        return Err(InvalidValue {
            reason: "a demand window must be between 60 seconds and 7 days",
        });
    }
    Ok(())
}

/// The demand the store holds: the last recorded read of each key, and the
/// accounts kept warm, with when each warm mark ends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Demand {
    pub reads: HashMap<CacheKey, Timestamp>,
    pub warm: HashMap<AccountId, Timestamp>,
}

/// Why a key is in demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hot {
    /// Read this long ago, within its type's window.
    Read { ago: Duration },
    /// Its account is warm until then (for an account-independent key: some
    /// configured account is).
    Warm { until: Timestamp },
}

impl Demand {
    /// Notes a read of `key` at `at`, keeping the latest.
    pub fn note_read(&mut self, key: CacheKey, at: Timestamp) {
        let last = self.reads.entry(key).or_insert(at);
        *last = (*last).max(at);
    }

    /// Keeps `account` warm until `until`, or longer if it already is.
    pub fn warm(&mut self, account: AccountId, until: Timestamp) {
        let end = self.warm.entry(account).or_insert(until);
        *end = (*end).max(until);
    }

    /// Whether `key` is in demand at `now` under `policy`, and why.
    pub fn hot(&self, key: &CacheKey, policy: &DemandPolicy, now: Timestamp) -> Option<Hot> {
        let warm_until = match key.scope().account() {
            Some(account) => self.warm.get(&account).copied(),
            None => self.warm.values().copied().max(),
        };
        if let Some(until) = warm_until.filter(|until| *until > now) {
            return Some(Hot::Warm { until });
        }
        let read = *self.reads.get(key)?;
        let ago = Duration::from_secs(now.secs_since(read));
        (ago < policy.window(key.data_type())).then_some(Hot::Read { ago })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Region;

    fn key(t: DataType, account: &str) -> CacheKey {
        CacheKey::new(
            t,
            Region::parse("us-east-1").unwrap(),
            AccountId::parse(account).unwrap(),
        )
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_unix_secs(secs)
    }

    #[test]
    fn a_key_is_hot_for_its_types_window_after_its_last_read() {
        let policy = DemandPolicy::default()
            .with_window(DataType::Ec2Subnets, Duration::from_secs(600))
            .unwrap();
        let groups = key(DataType::Ec2SecurityGroups, "111111111111");
        let subnets = key(DataType::Ec2Subnets, "111111111111");
        let jobs = key(DataType::DrsJobs, "111111111111");
        let mut demand = Demand::default();
        demand.note_read(groups.clone(), at(1_000));
        demand.note_read(groups.clone(), at(900));
        demand.note_read(subnets.clone(), at(1_000));
        demand.note_read(jobs.clone(), at(1_000));
        assert_eq!(
            demand.hot(&groups, &policy, at(1_000 + 3_599)),
            Some(Hot::Read {
                ago: Duration::from_secs(3_599)
            })
        );
        assert_eq!(demand.hot(&groups, &policy, at(1_000 + 3_600)), None);
        // Jobs change fastest: five minutes in demand by default.
        assert!(demand.hot(&jobs, &policy, at(1_000 + 299)).is_some());
        assert_eq!(demand.hot(&jobs, &policy, at(1_000 + 300)), None);
        assert!(demand.hot(&subnets, &policy, at(1_000 + 599)).is_some());
        assert_eq!(demand.hot(&subnets, &policy, at(1_000 + 600)), None);
        assert_eq!(
            demand.hot(
                &key(DataType::DrsRecoveryInstances, "111111111111"),
                &policy,
                at(1_000)
            ),
            None
        );
    }

    #[test]
    fn a_warm_account_makes_its_keys_and_the_regions_shared_keys_hot_until_it_ends() {
        let policy = DemandPolicy::default();
        let mut demand = Demand::default();
        let account = AccountId::parse("222222222222").unwrap();
        demand.warm(account, at(5_000));
        demand.warm(account, at(4_000));
        let jobs = key(DataType::DrsJobs, "222222222222");
        let other = key(DataType::DrsJobs, "333333333333");
        let types = CacheKey::global(
            DataType::Ec2InstanceTypes,
            Region::parse("us-east-1").unwrap(),
        );
        assert_eq!(
            demand.hot(&jobs, &policy, at(4_999)),
            Some(Hot::Warm { until: at(5_000) })
        );
        assert_eq!(demand.hot(&jobs, &policy, at(5_000)), None);
        assert_eq!(demand.hot(&other, &policy, at(4_999)), None);
        let types = types.unwrap();
        assert!(demand.hot(&types, &policy, at(4_999)).is_some());
    }

    #[test]
    fn windows_out_of_bounds_are_refused_and_notes_come_four_times_a_window() {
        let hour = Duration::from_secs(3600);
        assert!(DemandPolicy::new(Duration::from_secs(59), hour, hour).is_err());
        assert!(DemandPolicy::new(MAX_WINDOW + Duration::from_secs(1), hour, hour).is_err());
        assert!(DemandPolicy::new(hour, Duration::from_secs(30), hour).is_err());
        assert!(DemandPolicy::new(hour, hour, Duration::ZERO).is_err());
        let policy = DemandPolicy::new(hour, hour, hour).unwrap();
        assert_eq!(
            policy.note_interval(DataType::Ec2Subnets),
            Duration::from_secs(900)
        );
        // The fast types keep their own windows under any default window.
        assert_eq!(
            policy.note_interval(DataType::DrsSourceServers),
            Duration::from_secs(225)
        );
        assert_eq!(policy.window(DataType::DrsJobs), Duration::from_secs(300));
    }
}
