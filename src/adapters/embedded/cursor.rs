//! The list cursor: the position of the last entry of a page, `{createdAt}/{cacheKey}`,
//! hex-encoded so that it is opaque and safe in a URL.

use std::fmt::Write;

use crate::domain::{CacheKey, DataType};

/// Where the previous page ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Position {
    pub created_at: i64,
    pub key: String,
}

impl Position {
    pub fn encode(&self) -> String {
        let plain = format!("{}/{}", self.created_at, self.key);
        plain
            .bytes()
            .fold(String::with_capacity(plain.len() * 2), |mut out, b| {
                let _ = write!(out, "{b:02x}");
                out
            })
    }

    /// The position `cursor` names in a listing of `data_type`; `None` for anything
    /// this store did not hand out for that data type.
    pub fn decode(cursor: &str, data_type: DataType) -> Option<Self> {
        if !cursor.len().is_multiple_of(2) || !cursor.is_ascii() {
            return None;
        }
        let bytes = (0..cursor.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&cursor[i..i + 2], 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        let plain = String::from_utf8(bytes).ok()?;
        let (created_at, key) = plain.split_once('/')?;
        let created_at = created_at.parse().ok()?;
        let parsed = CacheKey::parse(key).ok()?;
        (parsed.data_type() == data_type).then(|| Self {
            created_at,
            key: key.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_for_its_data_type_only() {
        let pos = Position {
            created_at: -5,
            key: "ec2-subnets#us-east-1#111122223333".into(),
        };
        let cursor = pos.encode();
        assert!(cursor.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(Position::decode(&cursor, DataType::Ec2Subnets), Some(pos));
        assert_eq!(Position::decode(&cursor, DataType::DrsQuotas), None);
    }

    #[test]
    fn anything_else_is_refused() {
        let wrong_key = Position {
            created_at: 1,
            key: "ec2-subnets#nowhere#111122223333".into(),
        };
        for bad in [
            "",
            "not-a-cursor",
            "abc",
            "zz",
            "é1",
            "31",
            &wrong_key.encode(),
        ] {
            assert_eq!(Position::decode(bad, DataType::Ec2Subnets), None, "{bad:?}");
        }
    }
}
