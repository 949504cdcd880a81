use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in time, in whole seconds since the Unix epoch (the unit DynamoDB TTL uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_unix_secs(secs: i64) -> Self {
        Self(secs)
    }

    pub fn now() -> Self {
        SystemClock.now()
    }

    /// The whole second `micros` (microseconds since the epoch) falls in.
    pub fn from_unix_micros(micros: u64) -> Self {
        Self(i64::try_from(micros / 1_000_000).unwrap_or(i64::MAX))
    }

    pub const fn unix_secs(self) -> i64 {
        self.0
    }

    pub fn plus(self, d: Duration) -> Self {
        let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        Self(self.0.saturating_add(secs))
    }

    pub fn minus(self, d: Duration) -> Self {
        let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        Self(self.0.saturating_sub(secs))
    }

    /// RFC 3339 in UTC, such as `2026-12-02T15:00:00Z`.
    pub fn rfc3339(self) -> String {
        use aws_smithy_types::{DateTime, date_time::Format};
        DateTime::from_secs(self.0)
            .fmt(Format::DateTime)
            .unwrap_or_else(|_| self.0.to_string())
    }

    /// Seconds from `earlier` to `self`, zero if `earlier` is later.
    pub fn secs_since(self, earlier: Timestamp) -> u64 {
        u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0)
    }
}

/// Tells the time; tests substitute one they move by hand.
pub trait Clock: Send + Sync {
    /// Microseconds since the Unix epoch.
    fn unix_micros(&self) -> u64;

    fn now(&self) -> Timestamp {
        Timestamp::from_unix_micros(self.unix_micros())
    }
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn unix_micros(&self) -> u64 {
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros());
        u64::try_from(micros).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timestamp_reads_as_rfc3339_in_utc() {
        assert_eq!(
            Timestamp::from_unix_secs(1_796_223_601).rfc3339(),
            "2026-12-02T15:00:01Z"
        );
    }
}
