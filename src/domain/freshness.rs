use super::Timestamp;

/// Whether cached data may be served, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Within its freshness: served as is for `remaining` more seconds.
    Fresh { remaining: u64 },
    /// Past freshness but inside the stale window: served marked stale, and a
    /// refresh is due.
    Stale { expired_for: u64 },
    /// Past the stale window: too old to serve.
    Expired,
}

impl Freshness {
    pub fn of(now: Timestamp, expires_at: Timestamp, stale_until: Timestamp) -> Self {
        if now < expires_at {
            Self::Fresh {
                remaining: expires_at.secs_since(now),
            }
        } else if now < stale_until {
            Self::Stale {
                expired_for: now.secs_since(expires_at),
            }
        } else {
            Self::Expired
        }
    }

    pub fn is_fresh(self) -> bool {
        matches!(self, Self::Fresh { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_unix_secs(secs)
    }

    #[test]
    fn given_expiry_at_100_and_stale_until_200_then_freshness_moves_through_three_phases() {
        assert_eq!(
            Freshness::of(at(40), at(100), at(200)),
            Freshness::Fresh { remaining: 60 }
        );
        assert_eq!(
            Freshness::of(at(100), at(100), at(200)),
            Freshness::Stale { expired_for: 0 }
        );
        assert_eq!(
            Freshness::of(at(150), at(100), at(200)),
            Freshness::Stale { expired_for: 50 }
        );
        assert_eq!(Freshness::of(at(200), at(100), at(200)), Freshness::Expired);
    }
}
