//! The due rule: whether a scheduled tick refreshes a key now, and why. The
//! planner applies it to every configured key's metadata; the demand
//! simulation (`drs-cache cost --simulate`) applies the same rule to a
//! simulated fleet.

use std::time::Duration;

use crate::domain::{CacheKey, Demand, EntryMeta, EntryState, RefreshAhead, Timestamp};

use super::DueWhy;

/// What the rule reads besides each key's metadata.
#[derive(Debug, Clone, Copy)]
pub struct DueRule<'a> {
    pub now: Timestamp,
    /// Data expiring before this (the next tick plus the refresh-ahead margin)
    /// is refreshed ahead, when in demand.
    pub horizon: Timestamp,
    /// A key whose last refresh failed waits this long.
    pub failure_backoff: Duration,
    pub ahead: &'a RefreshAhead,
    pub demand: &'a Demand,
}

/// A due key: when it became (or becomes) due, for the order a tick takes
/// keys in (`None`, never cached, first), and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    pub at: Option<Timestamp>,
    pub why: DueWhy,
}

impl DueRule<'_> {
    /// Whether `key`, with `meta` stored, is due now.
    ///
    /// - Never cached, or holding no data: due (unless a refresh failed within
    ///   the backoff), in demand or not, so a first read is a cache read.
    /// - In demand (read within its type's window, or of a warm account), or
    ///   with `REFRESH_AHEAD=always`: due when it expires before the horizon.
    /// - Out of demand: due when fetched a floor interval ago, or when its
    ///   stale window ends before the horizon; else it waits for a read, which
    ///   serves it stale and asks for its refresh at once.
    pub fn due(&self, key: &CacheKey, meta: Option<&EntryMeta>) -> Option<Due> {
        let Some(meta) = meta else {
            return Some(Due {
                at: None,
                why: DueWhy::NeverCached,
            });
        };
        let failed_recently = meta
            .last_attempt
            .as_ref()
            .is_some_and(|a| a.failure.is_some() && a.at.plus(self.failure_backoff) > self.now);
        if failed_recently {
            return None;
        }
        if meta.state == EntryState::NoData {
            return Some(Due {
                at: Some(meta.expires_at),
                why: DueWhy::NoData,
            });
        }
        let in_demand = match self.ahead.demand() {
            None => true,
            Some(policy) => self.demand.hot(key, policy, self.now).is_some(),
        };
        if in_demand {
            return (meta.expires_at <= self.horizon).then(|| Due {
                at: Some(meta.expires_at),
                why: self.expiry_why(meta),
            });
        }
        let floor = self.ahead.demand().map(|p| p.floor()).unwrap_or_default();
        let floor_at = meta.fetched_at.plus(floor);
        if floor_at <= self.now {
            return Some(Due {
                at: Some(floor_at),
                why: DueWhy::Floor {
                    fetched_seconds_ago: meta.age(self.now),
                    floor_seconds: floor.as_secs(),
                },
            });
        }
        (meta.stale_until <= self.horizon).then(|| Due {
            at: Some(meta.stale_until),
            why: DueWhy::StaleWindowEnds {
                in_seconds: meta.stale_until.secs_since(self.now),
            },
        })
    }

    fn expiry_why(&self, meta: &EntryMeta) -> DueWhy {
        if meta.expires_at <= self.now {
            DueWhy::Expired {
                for_seconds: self.now.secs_since(meta.expires_at),
            }
        } else {
            DueWhy::ExpiresSoon {
                in_seconds: meta.expires_at.secs_since(self.now),
                horizon_seconds: self.horizon.secs_since(self.now),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        AccountId, DataType, DemandPolicy, ETag, Figures, RefreshAttempt, RefreshErrorKind,
        RefreshFailure, Region, Version,
    };

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_unix_secs(secs)
    }

    fn key() -> CacheKey {
        CacheKey::new(
            DataType::DrsSourceServers,
            Region::parse("eu-west-1").unwrap(),
            AccountId::parse("111111111111").unwrap(),
        )
    }

    /// Fetched at `fetched`, fresh for 120 s, servable for a day more.
    fn meta(fetched: i64) -> EntryMeta {
        EntryMeta {
            key: key(),
            version: Version::from_raw(1),
            etag: ETag::of(b"[]"),
            state: EntryState::Ready,
            created_at: at(fetched),
            fetched_at: at(fetched),
            expires_at: at(fetched + 120),
            stale_until: at(fetched + 120 + 86_400),
            item_count: 0,
            figures: Figures::default(),
            last_attempt: None,
        }
    }

    fn rule<'a>(now: i64, ahead: &'a RefreshAhead, demand: &'a Demand) -> DueRule<'a> {
        DueRule {
            now: at(now),
            horizon: at(now + 90),
            failure_backoff: Duration::from_secs(300),
            ahead,
            demand,
        }
    }

    #[test]
    fn always_refreshes_every_key_ahead_of_its_expiry() {
        let ahead = RefreshAhead::Always;
        let demand = Demand::default();
        let m = meta(0);
        assert_eq!(rule(20, &ahead, &demand).due(&key(), Some(&m)), None);
        let due = rule(40, &ahead, &demand).due(&key(), Some(&m)).unwrap();
        assert_eq!(
            due.why,
            DueWhy::ExpiresSoon {
                in_seconds: 80,
                horizon_seconds: 90
            }
        );
        assert_eq!(
            rule(0, &ahead, &demand).due(&key(), None).unwrap().why,
            DueWhy::NeverCached
        );
    }

    #[test]
    fn on_demand_a_key_read_within_its_window_is_refreshed_ahead_and_an_unread_one_waits_for_the_floor()
     {
        let ahead = RefreshAhead::OnDemand(DemandPolicy::default());
        let m = meta(0);
        let mut read = Demand::default();
        read.note_read(key(), at(10));
        assert!(rule(40, &ahead, &read).due(&key(), Some(&m)).is_some());
        let unread = Demand::default();
        assert_eq!(rule(40, &ahead, &unread).due(&key(), Some(&m)), None);
        // Past its freshness and unread: left stale until the floor.
        assert_eq!(rule(3_000, &ahead, &unread).due(&key(), Some(&m)), None);
        let floor = rule(6 * 3600, &ahead, &unread)
            .due(&key(), Some(&m))
            .unwrap();
        assert_eq!(
            floor.why,
            DueWhy::Floor {
                fetched_seconds_ago: 6 * 3600,
                floor_seconds: 6 * 3600
            }
        );
        // Read an hour and more ago: out of demand again.
        assert_eq!(rule(10 + 3_600, &ahead, &read).due(&key(), Some(&m)), None);
        // Never cached: fetched once, read or not.
        assert_eq!(
            rule(0, &ahead, &unread).due(&key(), None).unwrap().why,
            DueWhy::NeverCached
        );
    }

    #[test]
    fn an_unread_key_is_refreshed_before_its_stale_window_ends_whatever_the_floor() {
        let policy = DemandPolicy::new(
            Duration::from_secs(3600),
            Duration::from_secs(7 * 24 * 3600),
            Duration::from_secs(3600),
        )
        .unwrap();
        let ahead = RefreshAhead::OnDemand(policy);
        let demand = Demand::default();
        let m = meta(0);
        let end = 120 + 86_400;
        assert_eq!(rule(end - 100, &ahead, &demand).due(&key(), Some(&m)), None);
        assert_eq!(
            rule(end - 60, &ahead, &demand)
                .due(&key(), Some(&m))
                .unwrap()
                .why,
            DueWhy::StaleWindowEnds { in_seconds: 60 }
        );
    }

    #[test]
    fn a_warm_account_is_refreshed_ahead_unread_and_a_failed_refresh_waits_its_backoff() {
        let ahead = RefreshAhead::OnDemand(DemandPolicy::default());
        let mut demand = Demand::default();
        demand.warm(AccountId::parse("111111111111").unwrap(), at(1_000));
        let mut m = meta(0);
        assert!(rule(40, &ahead, &demand).due(&key(), Some(&m)).is_some());
        m.last_attempt = Some(RefreshAttempt {
            at: at(30),
            failure: Some(RefreshFailure {
                kind: RefreshErrorKind::Throttled,
                message: "slow down".into(),
            }),
        });
        assert_eq!(rule(40, &ahead, &demand).due(&key(), Some(&m)), None);
        assert!(rule(331, &ahead, &demand).due(&key(), Some(&m)).is_some());
    }
}
