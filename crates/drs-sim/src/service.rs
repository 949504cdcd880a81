//! The simulated services, and the count of requests each one answered.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A simulated service, named as its SigV4 signing name: `drs`, `ec2`, `iam`
/// (`Display`, `FromStr`, `<&str>::from` and serde all use that name).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Service {
    Drs,
    Ec2,
    Iam,
}

/// Requests answered, per service and operation (faults included).
pub type RequestCounts = BTreeMap<Service, BTreeMap<String, u64>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_are_named_by_their_signing_name_everywhere() {
        for (service, name) in [
            (Service::Drs, "drs"),
            (Service::Ec2, "ec2"),
            (Service::Iam, "iam"),
        ] {
            assert_eq!(service.to_string(), name);
            assert_eq!(<&str>::from(service), name);
            assert_eq!(name.parse::<Service>(), Ok(service));
            assert_eq!(
                serde_json::to_string(&service).unwrap(),
                format!("\"{name}\"")
            );
        }
        assert!("sts".parse::<Service>().is_err());
        assert!("DRS".parse::<Service>().is_err());
    }
}
