//! The head record of an entry as stored: its metadata without the body, with
//! the attribute names of the DynamoDB item, serialized as JSON.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::domain::{
    CacheKey, ETag, EntryMeta, EntryState, Figures, KeyError, RefreshAttempt, RefreshFailure,
    Timestamp, Version,
    payload::{Encoding, PayloadError},
};

/// The error of parsing a stored state or error kind name.
type UnknownName = <EntryState as FromStr>::Err;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct HeadRecord {
    cache_key: String,
    data_type: String,
    region: String,
    account_id: String,
    created_at: i64,
    expires_at: i64,
    /// End of the stale window (`stale_until`); DynamoDB's TTL attribute.
    ttl: i64,
    version: u64,
    etag: String,
    state: String,
    fetched_at: i64,
    item_count: u64,
    /// The entry's figures by name; absent when it has none.
    #[serde(default, skip_serializing_if = "Figures::is_empty")]
    figures: Figures,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_attempt_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_error_kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_error_message: Option<String>,
    /// How the body in the bodies table is encoded.
    encoding: String,
}

/// The metadata of an entry and the encoding of its stored body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct StoredHead {
    pub meta: EntryMeta,
    pub encoding: Encoding,
}

/// Why a stored record cannot be read back.
#[derive(Debug, thiserror::Error)]
pub(super) enum RecordError {
    #[error("head record is not the expected JSON")]
    Json(#[source] serde_json::Error),
    #[error("cacheKey is not a valid key")]
    Key(#[source] KeyError),
    #[error("{field} {found:?} disagrees with the key it is stored under")]
    Mismatch { field: &'static str, found: String },
    #[error("unknown {field} {found:?}")]
    Unknown {
        field: &'static str,
        found: String,
        #[source]
        source: UnknownName,
    },
    #[error("encoding")]
    Encoding(#[source] PayloadError),
    #[error("lastErrorKind and lastErrorMessage must come together, with lastAttemptAt")]
    PartialAttempt,
    #[error("body has no head record")]
    MissingHead,
    #[error("head record has no body")]
    MissingBody,
    #[error("body does not decode")]
    Payload(#[source] PayloadError),
}

impl RecordError {
    /// The message and every cause under it, for `StoreError::Corrupt`.
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }
}

impl HeadRecord {
    pub fn new(meta: &EntryMeta, encoding: Encoding) -> Self {
        let (last_attempt_at, failure) = match &meta.last_attempt {
            Some(a) => (Some(a.at.unix_secs()), a.failure.as_ref()),
            None => (None, None),
        };
        Self {
            cache_key: meta.key.to_string(),
            data_type: meta.key.data_type().as_str().to_owned(),
            region: meta.key.region().as_str().to_owned(),
            account_id: meta.key.scope().as_str().to_owned(),
            created_at: meta.created_at.unix_secs(),
            expires_at: meta.expires_at.unix_secs(),
            ttl: meta.stale_until.unix_secs(),
            version: meta.version.get(),
            etag: meta.etag.as_str().to_owned(),
            state: meta.state.as_str().to_owned(),
            fetched_at: meta.fetched_at.unix_secs(),
            item_count: meta.item_count,
            figures: meta.figures,
            last_attempt_at,
            last_error_kind: failure.map(|f| f.kind.as_str().to_owned()),
            last_error_message: failure.map(|f| f.message.clone()),
            encoding: encoding.as_str().to_owned(),
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        // A struct of strings and integers always serializes.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads the record stored under `stored_key`.
    pub fn from_json(stored_key: &str, bytes: &[u8]) -> Result<StoredHead, RecordError> {
        let record: Self = serde_json::from_slice(bytes).map_err(RecordError::Json)?;
        if record.cache_key != stored_key {
            return Err(RecordError::Mismatch {
                field: "cacheKey",
                found: record.cache_key,
            });
        }
        StoredHead::try_from(record)
    }
}

impl TryFrom<HeadRecord> for StoredHead {
    type Error = RecordError;

    fn try_from(r: HeadRecord) -> Result<Self, Self::Error> {
        let key = CacheKey::parse(&r.cache_key).map_err(RecordError::Key)?;
        for (field, found, expected) in [
            ("dataType", &r.data_type, key.data_type().as_str()),
            ("region", &r.region, key.region().as_str()),
            ("accountId", &r.account_id, key.scope().as_str()),
        ] {
            if found != expected {
                return Err(RecordError::Mismatch {
                    field,
                    found: found.clone(),
                });
            }
        }
        let state = r
            .state
            .parse::<EntryState>()
            .map_err(|source| RecordError::Unknown {
                field: "state",
                found: r.state.clone(),
                source,
            })?;
        let encoding = r
            .encoding
            .parse::<Encoding>()
            .map_err(RecordError::Encoding)?;
        let last_attempt = match (r.last_attempt_at, r.last_error_kind, r.last_error_message) {
            (None, None, None) => None,
            (Some(at), None, None) => Some(RefreshAttempt {
                at: Timestamp::from_unix_secs(at),
                failure: None,
            }),
            (Some(at), Some(kind), Some(message)) => Some(RefreshAttempt {
                at: Timestamp::from_unix_secs(at),
                failure: Some(RefreshFailure {
                    kind: kind.parse().map_err(|source| RecordError::Unknown {
                        field: "lastErrorKind",
                        found: kind.clone(),
                        source,
                    })?,
                    message,
                }),
            }),
            _ => return Err(RecordError::PartialAttempt),
        };
        Ok(Self {
            meta: EntryMeta {
                key,
                version: Version::from_raw(r.version),
                etag: ETag::from_stored(&r.etag),
                state,
                created_at: Timestamp::from_unix_secs(r.created_at),
                fetched_at: Timestamp::from_unix_secs(r.fetched_at),
                expires_at: Timestamp::from_unix_secs(r.expires_at),
                stale_until: Timestamp::from_unix_secs(r.ttl),
                item_count: r.item_count,
                figures: r.figures,
                last_attempt,
            },
            encoding,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;
    use crate::domain::{CacheEntry, RefreshErrorKind, TtlPolicy};

    fn meta() -> EntryMeta {
        let key = CacheKey::parse("ec2-instance-types#us-east-1#global").unwrap();
        let policy = TtlPolicy {
            freshness: Duration::from_secs(60),
            stale_window: Duration::from_secs(600),
        };
        let at = Timestamp::from_unix_secs(1_700_000_000);
        let body = Bytes::from_static(b"{}");
        let figures = crate::domain::Figures::default().with(crate::domain::Figure::ActiveJobs, 3);
        let mut e = CacheEntry::fetched(key, Version::from_raw(9), body, 2, at, policy)
            .with_figures(figures);
        e.meta.last_attempt = Some(RefreshAttempt {
            at,
            failure: Some(RefreshFailure {
                kind: RefreshErrorKind::Throttled,
                message: "slow down".into(),
            }),
        });
        e.meta
    }

    #[test]
    fn a_head_round_trips_with_dynamodb_attribute_names() {
        let meta = meta();
        let json = HeadRecord::new(&meta, Encoding::ZstdJson).to_json();
        let text = std::str::from_utf8(&json).unwrap();
        for name in ["cacheKey", "accountId", "ttl", "lastErrorKind", "itemCount"] {
            assert!(
                text.contains(&format!("\"{name}\"")),
                "{name} missing: {text}"
            );
        }
        let back = HeadRecord::from_json(&meta.key.to_string(), &json).unwrap();
        assert_eq!(back.meta, meta);
        assert_eq!(back.encoding, Encoding::ZstdJson);
    }

    #[test]
    fn records_that_do_not_describe_their_key_are_refused() {
        let meta = meta();
        let json = HeadRecord::new(&meta, Encoding::Json).to_json();
        let other = "ec2-instance-types#us-west-2#global";
        assert!(matches!(
            HeadRecord::from_json(other, &json),
            Err(RecordError::Mismatch {
                field: "cacheKey",
                ..
            })
        ));

        let mut record: HeadRecord = serde_json::from_slice(&json).unwrap();
        record.region = "us-west-2".into();
        assert!(matches!(
            StoredHead::try_from(record),
            Err(RecordError::Mismatch {
                field: "region",
                ..
            })
        ));

        let mut record: HeadRecord = serde_json::from_slice(&json).unwrap();
        record.state = "MAYBE".into();
        let err = StoredHead::try_from(record).unwrap_err();
        assert_eq!(err.chain(), "unknown state \"MAYBE\": unknown name");

        let mut record: HeadRecord = serde_json::from_slice(&json).unwrap();
        record.last_error_message = None;
        assert!(matches!(
            StoredHead::try_from(record),
            Err(RecordError::PartialAttempt)
        ));
        assert!(matches!(
            HeadRecord::from_json(&meta.key.to_string(), b"{\"cacheKey\":1}"),
            Err(RecordError::Json(_))
        ));
    }
}
