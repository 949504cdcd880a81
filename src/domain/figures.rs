//! The few counts a refresh records beside a body, so that the fleet capacity
//! can be summed from entry metadata alone, without reading a single body.

use std::collections::BTreeMap;

/// One count an entry may carry, named in camel case (`replicatingServers`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    strum::IntoStaticStr,
    strum::VariantArray,
    strum::EnumCount,
)]
#[strum(serialize_all = "camelCase")]
pub enum Figure {
    /// `drs-quotas`: servers holding a replication slot in the account.
    ReplicatingServers,
    /// `drs-quotas`: servers extended from a staging account.
    ExtendedServers,
    /// `drs-recovery-instances`: instances launched by a drill.
    DrillInstances,
    /// `drs-jobs`: jobs DRS still runs (`PENDING` or `STARTED`).
    ActiveJobs,
    /// `drs-jobs`: servers held by those jobs.
    ServersInActiveJobs,
}

impl Figure {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// The figures of one entry: each [`Figure`] set or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Figures([Option<u64>; <Figure as strum::EnumCount>::COUNT]);

impl Figures {
    pub fn get(&self, figure: Figure) -> Option<u64> {
        self.0[figure as usize]
    }

    /// These figures with `figure` set to `value`.
    #[must_use]
    pub fn with(mut self, figure: Figure, value: u64) -> Self {
        self.0[figure as usize] = Some(value);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(Option::is_none)
    }

    /// The figures set, by name, in declaration order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        <Figure as strum::VariantArray>::VARIANTS
            .iter()
            .filter_map(|f| self.get(*f).map(|v| (f.as_str(), v)))
    }

    /// The figures among `pairs` by name; a name this version does not know
    /// (written by a newer one) is left out.
    pub fn from_named<'a>(pairs: impl IntoIterator<Item = (&'a str, u64)>) -> Self {
        pairs
            .into_iter()
            .fold(Self::default(), |figures, (name, v)| {
                match super::by_name::<Figure>(name) {
                    Ok(f) => figures.with(f, v),
                    Err(_) => figures,
                }
            })
    }
}

impl serde::Serialize for Figures {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> serde::Deserialize<'de> for Figures {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let named = BTreeMap::<String, u64>::deserialize(deserializer)?;
        Ok(Self::from_named(
            named.iter().map(|(k, v)| (k.as_str(), *v)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_round_trip_by_name_and_unknown_names_are_left_out() {
        let f = Figures::default()
            .with(Figure::ReplicatingServers, 12)
            .with(Figure::ActiveJobs, 0);
        let json = serde_json::to_string(&f).unwrap();
        assert_eq!(json, r#"{"replicatingServers":12,"activeJobs":0}"#);
        assert_eq!(serde_json::from_str::<Figures>(&json).unwrap(), f);
        let newer: Figures =
            serde_json::from_str(r#"{"drillInstances":2,"snapshotsTaken":9}"#).unwrap();
        assert_eq!(newer, Figures::default().with(Figure::DrillInstances, 2));
        assert!(Figures::default().is_empty());
        assert!(!f.is_empty());
    }
}
