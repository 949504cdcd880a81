//! Pauses between the sends of what a service did not take (a batch's
//! unprocessed items, refused events): exponential from a first pause, capped,
//! with "equal jitter" (half fixed, half random) so that the writers a
//! throttle refused together do not come back together.

use std::time::Duration;

/// The first pause and the longest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pauses {
    pub first: Duration,
    pub max: Duration,
}

impl Pauses {
    /// The pause before retry `n` (1: the first retry): `first` × 2^(n−1),
    /// at most `max`, of which the first half is fixed and the second random.
    pub fn before_retry(&self, n: u32) -> Duration {
        let full = self
            .first
            .saturating_mul(1 << n.saturating_sub(1).min(16))
            .min(self.max);
        let half = full / 2;
        let spread = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(fastrand::u64(0..=spread))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_from_the_first_and_stay_capped() {
        let p = Pauses {
            first: Duration::from_millis(100),
            max: Duration::from_secs(2),
        };
        for _ in 0..50 {
            let first = p.before_retry(1);
            assert!(first >= p.first / 2 && first <= p.first, "{first:?}");
            let second = p.before_retry(2);
            assert!(second >= p.first && second <= p.first * 2, "{second:?}");
            let late = p.before_retry(40);
            assert!(late >= p.max / 2 && late <= p.max, "{late:?}");
        }
        let none = Pauses {
            first: Duration::ZERO,
            max: Duration::ZERO,
        };
        assert_eq!(none.before_retry(3), Duration::ZERO);
    }
}
