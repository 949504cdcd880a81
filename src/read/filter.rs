//! Filters applied to a cached region-wide snapshot.

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::domain::DataType;

/// Conditions `field == value` on the records of a snapshot, all of which must
/// hold. Field names are the query parameter names, which are also the record
/// field names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Filter(Vec<(&'static str, Box<str>)>);

impl Filter {
    /// Adds a condition on `field`, validating `value` for that field.
    pub(super) fn add(&mut self, field: &str, value: &str) -> Result<(), &'static str> {
        let (field, valid, reason): (&'static str, fn(&str) -> bool, _) = match field {
            "vpcId" => ("vpcId", is_vpc_id, "must be a VPC ID such as vpc-0a1b2c3d"),
            "availabilityZone" => (
                "availabilityZone",
                is_zone,
                "must be an availability zone such as us-east-1a",
            ),
            "instanceFamily" => (
                "instanceFamily",
                is_family,
                "must be an instance family such as m5 or c6gn",
            ),
            _ => return Err("is not a filter"),
        };
        if !valid(value) {
            return Err(reason);
        }
        self.0.push((field, value.into()));
        Ok(())
    }

    pub(super) fn get(&self, field: &str) -> Option<&str> {
        self.0.iter().find(|(f, _)| *f == field).map(|(_, v)| &**v)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The snapshot `body` of `data_type` with only the matching records, and
    /// its count updated.
    pub fn apply(&self, data_type: DataType, body: &[u8]) -> Result<Bytes, serde_json::Error> {
        let Some((list, count)) = data_type.record_list() else {
            return Ok(Bytes::copy_from_slice(body));
        };
        let mut doc: Map<String, Value> = serde_json::from_slice(body)?;
        let kept = match doc.remove(list) {
            Some(Value::Array(items)) => items
                .into_iter()
                .filter(|item| {
                    self.0
                        .iter()
                        .all(|(f, v)| item.get(*f).and_then(Value::as_str) == Some(&**v))
                })
                .collect(),
            _ => Vec::new(),
        };
        doc.insert(count.to_owned(), Value::from(kept.len()));
        doc.insert(list.to_owned(), Value::Array(kept));
        serde_json::to_vec(&doc).map(Bytes::from)
    }
}

fn is_vpc_id(v: &str) -> bool {
    v.strip_prefix("vpc-").is_some_and(|hex| {
        (8..=17).contains(&hex.len())
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

fn is_zone(v: &str) -> bool {
    v.len() <= 32
        && v.ends_with(|c: char| c.is_ascii_lowercase())
        && crate::domain::Region::parse(&v[..v.len() - 1]).is_ok()
}

fn is_family(v: &str) -> bool {
    (1..=16).contains(&v.len())
        && v.starts_with(|c: char| c.is_ascii_lowercase())
        && v.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(pairs: &[(&str, &str)]) -> Filter {
        let mut f = Filter::default();
        for (k, v) in pairs {
            f.add(k, v).unwrap();
        }
        f
    }

    #[test]
    fn keeps_records_matching_every_condition_and_recounts() {
        let body = br#"{"count":3,"subnets":[
            {"subnetId":"subnet-1","vpcId":"vpc-0000000a","availabilityZone":"us-east-1a"},
            {"subnetId":"subnet-2","vpcId":"vpc-0000000a","availabilityZone":"us-east-1b"},
            {"subnetId":"subnet-3","vpcId":"vpc-0000000b","availabilityZone":"us-east-1a"}]}"#;
        let f = filter(&[
            ("vpcId", "vpc-0000000a"),
            ("availabilityZone", "us-east-1a"),
        ]);
        let out: Value =
            serde_json::from_slice(&f.apply(DataType::Ec2Subnets, body).unwrap()).unwrap();
        assert_eq!(out["count"], 1);
        assert_eq!(out["subnets"][0]["subnetId"], "subnet-1");
    }

    #[test]
    fn values_are_validated_per_field() {
        let mut f = Filter::default();
        assert!(f.add("vpcId", "vpc-12").is_err());
        assert!(f.add("vpcId", "vpc-0123456789abcdef0").is_ok());
        assert!(f.add("availabilityZone", "us-east-1").is_err());
        assert!(f.add("availabilityZone", "us-east-1f").is_ok());
        assert!(f.add("instanceFamily", "M5").is_err());
        assert!(f.add("instanceFamily", "u-6tb1").is_ok());
    }
}
