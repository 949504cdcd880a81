//! The list cursor: the `LastEvaluatedKey` of a page of the `dataType` index,
//! written as hex of a small JSON object, and read back as the next page's
//! `ExclusiveStartKey`.

use std::fmt::Write as _;

use super::item::{Item, ItemError, attr, n, number, s, string};
use crate::domain::{CacheKey, DataType};

/// The position after the last entry of a page: the index key of that entry.
#[derive(Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Cursor {
    k: String,
    t: String,
    c: i64,
}

/// Why a cursor was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct InvalidCursor;

/// The cursor of a page that ended at `last_evaluated_key`.
pub(super) fn encode(last_evaluated_key: &Item) -> Result<String, ItemError> {
    let cursor = Cursor {
        k: string(last_evaluated_key, attr::CACHE_KEY)?.to_owned(),
        t: string(last_evaluated_key, attr::DATA_TYPE)?.to_owned(),
        c: number(last_evaluated_key, attr::CREATED_AT)?,
    };
    let json = serde_json::to_vec(&cursor).map_err(|e| ItemError(format!("cursor: {e}")))?;
    let mut hex = String::with_capacity(json.len() * 2);
    for b in json {
        // Writing to a String cannot fail.
        let _ = write!(hex, "{b:02x}");
    }
    Ok(hex)
}

/// The `ExclusiveStartKey` of the page after `raw`, which must be a cursor
/// handed out by a listing of `data_type`.
pub(super) fn decode(raw: &str, data_type: DataType) -> Result<Item, InvalidCursor> {
    if !raw.len().is_multiple_of(2) || raw.len() > 4_096 {
        return Err(InvalidCursor);
    }
    let json = (0..raw.len())
        .step_by(2)
        .map(|i| {
            raw.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or(InvalidCursor)
        })
        .collect::<Result<Vec<u8>, _>>()?;
    let cursor: Cursor = serde_json::from_slice(&json).map_err(|_| InvalidCursor)?;
    let key = CacheKey::parse(&cursor.k).map_err(|_| InvalidCursor)?;
    if cursor.t != data_type.as_str() || key.data_type() != data_type {
        return Err(InvalidCursor);
    }
    Ok(Item::from([
        (attr::CACHE_KEY.into(), s(cursor.k)),
        (attr::DATA_TYPE.into(), s(cursor.t)),
        (attr::CREATED_AT.into(), n(cursor.c)),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        let lek = Item::from([
            (
                attr::CACHE_KEY.into(),
                s("ec2-subnets#us-east-1#111122223333"),
            ),
            (attr::DATA_TYPE.into(), s("ec2-subnets")),
            (attr::CREATED_AT.into(), n(1_700_000_000)),
        ]);
        let cursor = encode(&lek).unwrap();
        assert_eq!(decode(&cursor, DataType::Ec2Subnets), Ok(lek));
        assert_eq!(
            decode(&cursor, DataType::Ec2SecurityGroups),
            Err(InvalidCursor)
        );
        for bad in ["", "not-a-cursor", "7b7d", "abc", "zz"] {
            assert_eq!(decode(bad, DataType::Ec2Subnets), Err(InvalidCursor));
        }
    }
}
