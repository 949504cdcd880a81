//! Simulated time: a fixed epoch plus seeded offsets, formatted the way each API
//! does. Served data never reads the wall clock, so the same configuration
//! serves the same bytes; only the STS lookup dates its request with it.

/// 2024-06-01T00:00:00Z: "now" for generation 0 of every fleet.
pub(crate) const EPOCH: i64 = 1_717_200_000;

/// Seconds that pass between two generations of a fleet.
pub(crate) const GENERATION_SECS: i64 = 3_600;

/// A simulated instant: seconds since the Unix epoch and microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SimTime {
    pub(crate) secs: i64,
    pub(crate) micros: u32,
}

impl SimTime {
    pub(crate) const fn at(secs: i64, micros: u32) -> Self {
        Self { secs, micros }
    }

    /// "Now" in a fleet at `generation`.
    pub(crate) fn generation(generation: u64) -> Self {
        let hours = i64::try_from(generation).unwrap_or(i64::MAX / GENERATION_SECS);
        Self::at(
            EPOCH.saturating_add(hours.saturating_mul(GENERATION_SECS)),
            0,
        )
    }

    #[must_use]
    pub(crate) fn minus(self, secs: i64) -> Self {
        Self::at(self.secs.saturating_sub(secs), self.micros)
    }

    #[must_use]
    pub(crate) fn plus(self, secs: i64) -> Self {
        Self::at(self.secs.saturating_add(secs), self.micros)
    }

    /// Parses `2024-06-01T10:11:12Z` or `2024-06-01T10:11:12.345Z` (the DRS
    /// date filters' pattern); fractions beyond microseconds are cut.
    pub(crate) fn parse_utc(text: &str) -> Option<Self> {
        let text = text.strip_suffix('Z')?;
        let (civil, fraction) = match text.split_once('.') {
            Some((civil, fraction)) => (civil, Some(fraction)),
            None => (text, None),
        };
        let (date, time) = civil.split_once('T')?;
        let mut d = date.rsplitn(3, '-');
        let (day, month, year) = (d.next()?, d.next()?, d.next()?);
        let mut t = time.split(':');
        let (h, m, s) = (t.next()?, t.next()?, t.next()?);
        let num = |s: &str, len: usize| {
            (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse::<i64>().ok())
                .flatten()
        };
        let year = (!year.is_empty()
            && !year.starts_with('0')
            && year.bytes().all(|b| b.is_ascii_digit()))
        .then(|| year.parse::<i64>().ok())
        .flatten()?;
        let (month, day, h, m, s) = (
            num(month, 2)?,
            num(day, 2)?,
            num(h, 2)?,
            num(m, 2)?,
            num(s, 2)?,
        );
        if t.next().is_some()
            || !(1..=12).contains(&month)
            || !(1..=31).contains(&day)
            || h > 23
            || m > 59
            || s > 59
        {
            return None;
        }
        let micros = match fraction {
            None => 0,
            Some(f) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => {
                format!("{f:0<6}")[..6].parse::<u32>().ok()?
            }
            Some(_) => return None,
        };
        let days = days_from_civil(year, month as u32, day as u32);
        Some(Self::at(days * 86_400 + h * 3_600 + m * 60 + s, micros))
    }

    /// DRS style: `2024-06-01T10:11:12.345678+00:00`.
    pub(crate) fn drs(self) -> String {
        format!("{}.{:06}+00:00", self.civil(), self.micros)
    }

    /// IAM style: `2024-06-01T10:11:12Z`.
    pub(crate) fn iam(self) -> String {
        format!("{}Z", self.civil())
    }

    /// SigV4 style (`X-Amz-Date`): `20240601T101112Z`.
    pub(crate) fn amz(self) -> String {
        let civil: String = self
            .civil()
            .chars()
            .filter(|c| !matches!(c, '-' | ':'))
            .collect();
        format!("{civil}Z")
    }

    fn civil(self) -> String {
        let days = self.secs.div_euclid(86_400);
        let rem = self.secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
            rem / 3_600,
            rem % 3_600 / 60,
            rem % 60
        )
    }
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to (year, month, day).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m as u32, d as u32)
}

/// Howard Hinnant's `days_from_civil`: (year, month, day) to days since 1970-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// An ISO-8601 duration such as `PT5S`, `PT12M30S`, `PT2H5M` or `P3DT4H`.
pub(crate) fn iso_duration(secs: u64) -> String {
    if secs == 0 {
        return "PT0S".to_owned();
    }
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (h, m, s) = (rem / 3_600, rem % 3_600 / 60, rem % 60);
    let mut out = String::from("P");
    if days > 0 {
        out.push_str(&format!("{days}D"));
    }
    if h + m + s > 0 {
        out.push('T');
        for (value, unit) in [(h, 'H'), (m, 'M'), (s, 'S')] {
            if value > 0 {
                out.push_str(&format!("{value}{unit}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_the_epoch_and_leap_days() {
        assert_eq!(SimTime::at(EPOCH, 0).iam(), "2024-06-01T00:00:00Z");
        assert_eq!(SimTime::at(0, 0).drs(), "1970-01-01T00:00:00.000000+00:00");
        // 2024-02-29T23:59:59Z
        assert_eq!(
            SimTime::at(1_709_251_199, 42).drs(),
            "2024-02-29T23:59:59.000042+00:00"
        );
        assert_eq!(SimTime::generation(2).iam(), "2024-06-01T02:00:00Z");
        assert_eq!(SimTime::at(EPOCH + 36_672, 9).amz(), "20240601T101112Z");
    }

    #[test]
    fn parses_the_drs_date_filters() {
        assert_eq!(
            SimTime::parse_utc("2024-06-01T00:00:00Z"),
            Some(SimTime::at(EPOCH, 0))
        );
        assert_eq!(
            SimTime::parse_utc("2024-02-29T23:59:59.000042Z"),
            Some(SimTime::at(1_709_251_199, 42))
        );
        assert_eq!(
            SimTime::parse_utc("2024-06-01T10:11:12.5Z"),
            Some(SimTime::at(EPOCH + 36_672, 500_000))
        );
        for bad in [
            "",
            "2024-06-01",
            "2024-06-01T00:00:00",
            "2024-06-01T00:00:00+00:00",
            "2024-13-01T00:00:00Z",
            "2024-06-01T24:00:00Z",
            "2024-06-01T00:00:00.Z",
            "0024-06-01T00:00:00Z",
            "2024-6-01T00:00:00Z",
        ] {
            assert_eq!(SimTime::parse_utc(bad), None, "{bad}");
        }
    }

    #[test]
    fn formats_durations() {
        assert_eq!(iso_duration(0), "PT0S");
        assert_eq!(iso_duration(5), "PT5S");
        assert_eq!(iso_duration(750), "PT12M30S");
        assert_eq!(iso_duration(7_500), "PT2H5M");
        assert_eq!(iso_duration(3 * 86_400 + 4 * 3_600), "P3DT4H");
        assert_eq!(iso_duration(86_400), "P1D");
    }
}
