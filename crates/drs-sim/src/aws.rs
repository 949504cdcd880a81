//! Naming rules of AWS that generated data follows: partitions, availability
//! zones, identifiers.

use crate::{
    ids::Region,
    rng::{Seed, mix},
};

/// The ARN partition of `region`.
pub(crate) fn partition(region: &Region) -> &'static str {
    let name = region.as_str();
    if name.starts_with("cn-") {
        "aws-cn"
    } else if name.starts_with("us-gov-") {
        "aws-us-gov"
    } else if name.starts_with("us-iso-") {
        "aws-iso"
    } else if name.starts_with("us-isob-") {
        "aws-iso-b"
    } else {
        "aws"
    }
}

/// The `n`th availability zone of `region`: `us-east-1a`, `us-east-1b`, ...
pub(crate) fn zone(region: &Region, n: usize) -> String {
    let letter = char::from(b'a' + (n % 6) as u8);
    format!("{region}{letter}")
}

/// The zone ID of the `n`th zone, such as `use1-az1` or `usgw1-az2`.
pub(crate) fn zone_id(region: &Region, n: usize) -> String {
    let mut short = String::new();
    for (i, part) in region.as_str().split('-').enumerate() {
        if i == 0 || part.bytes().all(|b| b.is_ascii_digit()) {
            short.push_str(part);
        } else if let Some(c) = part.chars().next() {
            short.push(c);
        }
    }
    format!("{short}-az{}", n % 6 + 1)
}

/// A resource ID such as `subnet-0a1b2c3d4e5f60718`: `prefix-` and 17 hex digits,
/// distinct for every `index` under the same `seed`.
pub(crate) fn resource_id(prefix: &str, seed: Seed, index: u64) -> String {
    let body = mix(seed.value().wrapping_add(index));
    let lead = seed.with(index).value() & 0xf;
    format!("{prefix}-{lead:x}{body:016x}")
}

/// A 12-digit account ID that is never `not`.
pub(crate) fn account_id(seed: Seed, not: &str) -> String {
    let mut rng = seed.rng();
    loop {
        let id = format!("{:012}", rng.range(100_000_000_000, 999_999_999_999));
        if id != not {
            return id;
        }
    }
}

/// A UUID-shaped identifier (8-4-4-4-12 hex digits).
pub(crate) fn uuid(seed: Seed) -> String {
    let mut rng = seed.rng();
    format!(
        "{}-{}-4{}-{}-{}",
        rng.hex(8),
        rng.hex(4),
        rng.hex(3),
        (*rng.pick(&["8", "9", "a", "b"])).to_owned() + &rng.hex(3),
        rng.hex(12)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_and_partitions() {
        let r = Region::parse("us-east-1").unwrap();
        assert_eq!(zone(&r, 0), "us-east-1a");
        assert_eq!(zone_id(&r, 1), "use1-az2");
        assert_eq!(partition(&r), "aws");
        let gov = Region::parse("us-gov-west-1").unwrap();
        assert_eq!(zone_id(&gov, 0), "usgw1-az1");
        assert_eq!(partition(&gov), "aws-us-gov");
        assert_eq!(partition(&Region::parse("cn-north-1").unwrap()), "aws-cn");
    }

    #[test]
    fn resource_ids_are_distinct_and_well_formed() {
        let seed = Seed::new(1).with_str("subnet");
        let ids: std::collections::HashSet<String> = (0..10_000)
            .map(|i| resource_id("subnet", seed, i))
            .collect();
        assert_eq!(ids.len(), 10_000);
        let id = resource_id("s", seed, 0);
        assert_eq!(id.len(), 19);
        assert!(id[2..].bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
