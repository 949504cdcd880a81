//! Conversions between cache entries and DynamoDB items: the attribute names, the
//! head item and the chunk item. `docs/data-model.md` describes every attribute.

use std::{collections::HashMap, str::FromStr, time::Duration};

use aws_sdk_dynamodb::{primitives::Blob, types::AttributeValue};

use crate::domain::{
    CacheKey, ETag, EntryMeta, EntryState, Figures, RefreshAttempt, RefreshErrorKind,
    RefreshFailure, Timestamp, Version,
    payload::{Encoding, MAX_BODY_BYTES},
};

pub(super) type Item = HashMap<String, AttributeValue>;

/// Attribute names, as in the original design where it named them.
pub(super) mod attr {
    pub const CACHE_KEY: &str = "cacheKey";
    pub const DATA_TYPE: &str = "dataType";
    pub const REGION: &str = "region";
    pub const ACCOUNT_ID: &str = "accountId";
    pub const CREATED_AT: &str = "createdAt";
    pub const EXPIRES_AT: &str = "expiresAt";
    pub const TTL: &str = "ttl";
    pub const VERSION: &str = "version";
    pub const ETAG: &str = "etag";
    pub const STATE: &str = "state";
    pub const FETCHED_AT: &str = "fetchedAt";
    pub const ITEM_COUNT: &str = "itemCount";
    /// The entry's figures, a map of numbers by name; absent when it has none.
    pub const FIGURES: &str = "figures";
    pub const LAST_ATTEMPT_AT: &str = "lastAttemptAt";
    pub const LAST_ERROR_KIND: &str = "lastErrorKind";
    pub const LAST_ERROR_MESSAGE: &str = "lastErrorMessage";
    pub const ENCODING: &str = "encoding";
    pub const DATA: &str = "data";
    pub const CHUNK_COUNT: &str = "chunkCount";
    pub const CHUNK_SET: &str = "chunkSet";
    /// On a chunked head: the `ttl` its chunks were last given.
    pub const CHUNK_TTL: &str = "chunkTtl";
    pub const LEASE_UNTIL: &str = "leaseUntil";
    pub const CLAIM_ID: &str = "claimId";
    pub const STARTED_AT: &str = "startedAt";
    pub const PENDING: &str = "pending";
    /// A run ledger item's batch result, as JSON.
    pub const RESULT: &str = "result";
}

/// An encoded payload up to this size is stored inline in the head item, and a
/// larger one in chunks. A head then stays within one write request unit
/// (1 KB) with its other attributes, so that the common write, an unchanged
/// refresh extending the head, costs one unit whatever the body's size
/// (DynamoDB charges an update for the whole item): docs/data-model.md.
pub(super) const MAX_INLINE_BYTES: usize = 400;
/// Chunks hold at most this many bytes: well under the 400 KB item limit.
pub(super) const CHUNK_BYTES: usize = 350_000;
/// Error messages are cut to this many bytes so a head item always fits.
const MAX_ERROR_MESSAGE_BYTES: usize = 4_096;
/// Chunk items expire this long after their head's stale window ends when
/// written or raised, so that DynamoDB's TTL sweep never removes a chunk before
/// its head...
const CHUNK_TTL_MARGIN: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// ...and an extension raises them again only once less than this is left
/// past the head's new stale window: about once in four days, not at every
/// refresh (each raise rewrites every chunk, billed at its size). Three days
/// is what the sweep may lag behind a head's own `ttl`, during which the head
/// can still be read.
const MIN_CHUNK_TTL_MARGIN: Duration = Duration::from_secs(3 * 24 * 60 * 60);
/// A head names at most this many chunks: the largest body a decode accepts.
const MAX_CHUNKS: u64 = MAX_BODY_BYTES / CHUNK_BYTES as u64 + 1;

/// Why an item cannot be read as a cache entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ItemError(pub String);

impl ItemError {
    fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }
}

/// Where the encoded body of a head is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum StoredPayload {
    /// In the head's `data` attribute; an absent `data` is an empty payload.
    Inline(Vec<u8>),
    /// In `count` chunk items named by `set`.
    Chunked { set: String, count: usize },
}

/// A head item read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct StoredHead {
    pub meta: EntryMeta,
    pub encoding: Encoding,
    pub payload: StoredPayload,
}

impl TryFrom<Item> for StoredHead {
    type Error = ItemError;

    fn try_from(mut item: Item) -> Result<Self, ItemError> {
        let meta = entry_meta(&item)?;
        let encoding = Encoding::from_str(string(&item, attr::ENCODING)?)
            .map_err(|e| ItemError(format!("{}: {e}", attr::ENCODING)))?;
        let payload = match optional_number::<u64>(&item, attr::CHUNK_COUNT)? {
            Some(count) => {
                if count == 0 || count > MAX_CHUNKS {
                    return Err(ItemError(format!(
                        "{} {count} is out of range",
                        attr::CHUNK_COUNT
                    )));
                }
                let set = string(&item, attr::CHUNK_SET)?.to_owned();
                let count = usize::try_from(count)
                    .map_err(|_| ItemError::new("chunkCount does not fit in memory"))?;
                StoredPayload::Chunked { set, count }
            }
            None => match item.remove(attr::DATA) {
                None => StoredPayload::Inline(Vec::new()),
                Some(AttributeValue::B(blob)) => StoredPayload::Inline(blob.into_inner()),
                Some(_) => return Err(ItemError::new("data is not of type B")),
            },
        };
        Ok(Self {
            meta,
            encoding,
            payload,
        })
    }
}

/// The metadata of a head item, also as projected into the `dataType` index.
/// (A function, not `TryFrom`: an impl on `EntryMeta` would be public and show
/// AWS types outside this module.)
pub(super) fn entry_meta(item: &Item) -> Result<EntryMeta, ItemError> {
    let raw_key = string(item, attr::CACHE_KEY)?;
    let key = CacheKey::parse(raw_key)
        .map_err(|e| ItemError(format!("{} {raw_key:?}: {e}", attr::CACHE_KEY)))?;
    let data_type = string(item, attr::DATA_TYPE)?;
    if data_type != key.data_type().as_str() {
        return Err(ItemError(format!(
            "{} {data_type:?} does not match the key",
            attr::DATA_TYPE
        )));
    }
    let state = string(item, attr::STATE)?;
    let state = EntryState::from_str(state)
        .map_err(|_| ItemError(format!("{} {state:?} is unknown", attr::STATE)))?;
    Ok(EntryMeta {
        key,
        version: Version::from_raw(number(item, attr::VERSION)?),
        etag: ETag::from_stored(string(item, attr::ETAG)?),
        state,
        created_at: timestamp(item, attr::CREATED_AT)?,
        fetched_at: timestamp(item, attr::FETCHED_AT)?,
        expires_at: timestamp(item, attr::EXPIRES_AT)?,
        stale_until: timestamp(item, attr::TTL)?,
        item_count: number(item, attr::ITEM_COUNT)?,
        figures: figures(item)?,
        last_attempt: last_attempt(item)?,
    })
}

/// The `figures` attribute of `figures`; `None` when none is set.
pub(super) fn figures_value(figures: &Figures) -> Option<AttributeValue> {
    let named = figures.iter().map(|(name, v)| (name.to_owned(), n(v)));
    (!figures.is_empty()).then(|| AttributeValue::M(named.collect()))
}

fn figures(item: &Item) -> Result<Figures, ItemError> {
    let Some(value) = item.get(attr::FIGURES) else {
        return Ok(Figures::default());
    };
    let AttributeValue::M(named) = value else {
        return Err(ItemError::new("figures is not of type M"));
    };
    let mut pairs = Vec::with_capacity(named.len());
    for (name, value) in named {
        let number = match value {
            AttributeValue::N(raw) => raw.parse::<u64>().ok(),
            _ => None,
        }
        .ok_or_else(|| ItemError(format!("figures.{name} is not a whole number")))?;
        pairs.push((name.as_str(), number));
    }
    Ok(Figures::from_named(pairs))
}

fn last_attempt(item: &Item) -> Result<Option<RefreshAttempt>, ItemError> {
    let Some(at) = optional_number::<i64>(item, attr::LAST_ATTEMPT_AT)? else {
        return Ok(None);
    };
    let failure = match optional_string(item, attr::LAST_ERROR_KIND)? {
        None => None,
        Some(kind) => Some(RefreshFailure {
            kind: RefreshErrorKind::from_str(kind)
                .map_err(|_| ItemError(format!("{} {kind:?} is unknown", attr::LAST_ERROR_KIND)))?,
            message: optional_string(item, attr::LAST_ERROR_MESSAGE)?
                .unwrap_or_default()
                .to_owned(),
        }),
    };
    Ok(Some(RefreshAttempt {
        at: Timestamp::from_unix_secs(at),
        failure,
    }))
}

/// The stored `version` of an item, for reporting a superseded write.
pub(super) fn stored_version(item: &Item) -> Result<Version, ItemError> {
    number(item, attr::VERSION).map(Version::from_raw)
}

/// The chunk keys a head item points to, if it is chunked and readable.
pub(super) fn chunk_keys_of(item: &Item) -> Option<Vec<String>> {
    let head = string(item, attr::CACHE_KEY).ok()?;
    let set = string(item, attr::CHUNK_SET).ok()?;
    let count: u64 = number(item, attr::CHUNK_COUNT).ok()?;
    let count = usize::try_from(count.min(MAX_CHUNKS)).ok()?;
    Some((0..count).map(|n| chunk_key(head, set, n)).collect())
}

/// The head item of `meta` with its payload, `data` or `chunkSet`/`chunkCount`.
pub(super) fn head_item(meta: &EntryMeta, encoding: Encoding, payload: &HeadPayload<'_>) -> Item {
    let key = &meta.key;
    let mut item = Item::from([
        (attr::CACHE_KEY.into(), s(key.to_string())),
        (attr::DATA_TYPE.into(), s(key.data_type().as_str())),
        (attr::REGION.into(), s(key.region().as_str())),
        (attr::ACCOUNT_ID.into(), s(key.scope().as_str())),
        (attr::VERSION.into(), n(meta.version.get())),
        (attr::ETAG.into(), s(meta.etag.as_str())),
        (attr::STATE.into(), s(meta.state.as_str())),
        (attr::CREATED_AT.into(), n(meta.created_at.unix_secs())),
        (attr::FETCHED_AT.into(), n(meta.fetched_at.unix_secs())),
        (attr::EXPIRES_AT.into(), n(meta.expires_at.unix_secs())),
        (attr::TTL.into(), n(meta.stale_until.unix_secs())),
        (attr::ITEM_COUNT.into(), n(meta.item_count)),
        (attr::ENCODING.into(), s(encoding.as_str())),
    ]);
    if let Some(figures) = figures_value(&meta.figures) {
        item.insert(attr::FIGURES.into(), figures);
    }
    if let Some(attempt) = &meta.last_attempt {
        item.insert(attr::LAST_ATTEMPT_AT.into(), n(attempt.at.unix_secs()));
        if let Some(failure) = &attempt.failure {
            item.insert(attr::LAST_ERROR_KIND.into(), s(failure.kind.as_str()));
            item.insert(
                attr::LAST_ERROR_MESSAGE.into(),
                s(truncate_message(&failure.message)),
            );
        }
    }
    match payload {
        HeadPayload::Inline([]) => {}
        HeadPayload::Inline(bytes) => {
            item.insert(attr::DATA.into(), AttributeValue::B(Blob::new(*bytes)));
        }
        HeadPayload::Chunked { set, count } => {
            item.insert(attr::CHUNK_SET.into(), s(*set));
            item.insert(attr::CHUNK_COUNT.into(), n(*count));
            let ttl = chunk_ttl(meta.stale_until);
            item.insert(attr::CHUNK_TTL.into(), n(ttl.unix_secs()));
        }
    }
    item
}

/// The payload part of a head item being written.
#[derive(Debug, Clone, Copy)]
pub(super) enum HeadPayload<'a> {
    Inline(&'a [u8]),
    Chunked { set: &'a str, count: usize },
}

/// The key of chunk `n` of the chunk set `set` of the head `head_key`. It has five
/// `#`-separated parts, so it never parses as a cache key.
pub(super) fn chunk_key(head_key: &str, set: &str, n: usize) -> String {
    format!("{head_key}#{set}#c{n}")
}

/// A chunk item: only its key, its bytes and its expiry. Without `dataType` it
/// never appears in the `dataType` index.
pub(super) fn chunk_item(key: String, data: &[u8], ttl: Timestamp) -> Item {
    Item::from([
        (attr::CACHE_KEY.into(), s(key)),
        (attr::DATA.into(), AttributeValue::B(Blob::new(data))),
        (attr::TTL.into(), n(ttl.unix_secs())),
    ])
}

/// The `ttl` of the chunks of a head whose stale window ends at `stale_until`.
pub(super) fn chunk_ttl(stale_until: Timestamp) -> Timestamp {
    stale_until.plus(CHUNK_TTL_MARGIN)
}

/// Whether the chunks of `head` must be kept longer before its stale window
/// may move to `stale_until`: less than three days would be left past it (or the
/// head, written before heads recorded it, does not say).
pub(super) fn chunks_expire_too_soon(head: &Item, stale_until: Timestamp) -> bool {
    recorded_chunk_ttl(head)
        .is_none_or(|ttl| ttl < stale_until.plus(MIN_CHUNK_TTL_MARGIN).unix_secs())
}

/// Whether the chunks of `head` may have been swept by `now`: their `ttl` (as
/// the head records it, else as it was written) has passed.
pub(super) fn chunks_may_be_gone(head: &Item, stale_until: Timestamp, now: Timestamp) -> bool {
    let ttl = recorded_chunk_ttl(head).unwrap_or_else(|| chunk_ttl(stale_until).unix_secs());
    ttl <= now.unix_secs()
}

/// The `ttl` a head records its chunks were given (`chunkTtl`); `None` for a
/// head written before heads recorded it.
fn recorded_chunk_ttl(head: &Item) -> Option<i64> {
    optional_number(head, attr::CHUNK_TTL).ok().flatten()
}

/// The bytes of a chunk item.
pub(super) fn chunk_data(mut item: Item) -> Result<(String, Vec<u8>), ItemError> {
    let key = string(&item, attr::CACHE_KEY)?.to_owned();
    match item.remove(attr::DATA) {
        Some(AttributeValue::B(blob)) => Ok((key, blob.into_inner())),
        _ => Err(ItemError(format!("chunk {key} has no data of type B"))),
    }
}

/// Keeps at most `MAX_ERROR_MESSAGE_BYTES` of `message`, cut at a character
/// boundary.
pub(super) fn truncate_message(message: &str) -> &str {
    if message.len() <= MAX_ERROR_MESSAGE_BYTES {
        return message;
    }
    let mut end = MAX_ERROR_MESSAGE_BYTES;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    &message[..end]
}

pub(super) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(super) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(super) fn string<'a>(item: &'a Item, name: &str) -> Result<&'a str, ItemError> {
    optional_string(item, name)?.ok_or_else(|| ItemError(format!("{name} is missing")))
}

fn optional_string<'a>(item: &'a Item, name: &str) -> Result<Option<&'a str>, ItemError> {
    match item.get(name) {
        None => Ok(None),
        Some(AttributeValue::S(v)) => Ok(Some(v)),
        Some(_) => Err(ItemError(format!("{name} is not of type S"))),
    }
}

pub(super) fn number<T: FromStr>(item: &Item, name: &str) -> Result<T, ItemError> {
    optional_number(item, name)?.ok_or_else(|| ItemError(format!("{name} is missing")))
}

fn optional_number<T: FromStr>(item: &Item, name: &str) -> Result<Option<T>, ItemError> {
    match item.get(name) {
        None => Ok(None),
        Some(AttributeValue::N(v)) => v
            .parse()
            .map(Some)
            .map_err(|_| ItemError(format!("{name} {v:?} is out of range"))),
        Some(_) => Err(ItemError(format!("{name} is not of type N"))),
    }
}

fn timestamp(item: &Item, name: &str) -> Result<Timestamp, ItemError> {
    number(item, name).map(Timestamp::from_unix_secs)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;
    use crate::domain::{AccountId, CacheEntry, DataType, Region, TtlPolicy};

    fn entry(body: &'static [u8]) -> CacheEntry {
        let key = CacheKey::new(
            DataType::DrsQuotas,
            Region::parse("us-east-1").unwrap(),
            AccountId::parse("111122223333").unwrap(),
        );
        let policy = TtlPolicy {
            freshness: Duration::from_secs(300),
            stale_window: Duration::from_secs(3600),
        };
        CacheEntry::fetched(
            key,
            Version::from_raw(42),
            Bytes::from_static(body),
            1,
            Timestamp::from_unix_secs(1_700_000_000),
            policy,
        )
    }

    #[test]
    fn a_head_item_reads_back_as_its_meta_and_payload() {
        let mut e = entry(b"{\"a\":1}");
        e.meta.last_attempt = Some(RefreshAttempt {
            at: Timestamp::from_unix_secs(1_700_000_100),
            failure: Some(RefreshFailure {
                kind: RefreshErrorKind::Throttled,
                message: "slow down".into(),
            }),
        });
        let item = head_item(&e.meta, Encoding::Json, &HeadPayload::Inline(&e.body));
        let head = StoredHead::try_from(item).unwrap();
        assert_eq!(head.meta, e.meta);
        assert_eq!(head.payload, StoredPayload::Inline(e.body.to_vec()));

        let item = head_item(
            &e.meta,
            Encoding::ZstdJson,
            &HeadPayload::Chunked {
                set: "v42-ab",
                count: 3,
            },
        );
        assert_eq!(
            chunk_keys_of(&item).unwrap(),
            [0, 1, 2].map(|n| format!("drs-quotas#us-east-1#111122223333#v42-ab#c{n}"))
        );
        let head = StoredHead::try_from(item).unwrap();
        assert_eq!(head.encoding, Encoding::ZstdJson);
        assert_eq!(
            head.payload,
            StoredPayload::Chunked {
                set: "v42-ab".into(),
                count: 3
            }
        );
    }

    #[test]
    fn unreadable_items_name_what_is_wrong() {
        let e = entry(b"{}");
        let good = head_item(&e.meta, Encoding::Json, &HeadPayload::Inline(&e.body));
        let cases: [(&str, Option<AttributeValue>, &str); 5] = [
            ("encoding", Some(s("gzip")), "encoding"),
            ("version", None, "version is missing"),
            ("version", Some(s("1")), "version is not of type N"),
            ("cacheKey", Some(s("drs-quotas#us-east-1")), "cacheKey"),
            ("dataType", Some(s("ec2-subnets")), "does not match"),
        ];
        for (name, value, reason) in cases {
            let mut item = good.clone();
            match value {
                Some(v) => item.insert(name.into(), v),
                None => item.remove(name),
            };
            let err = StoredHead::try_from(item).unwrap_err();
            assert!(err.0.contains(reason), "{name}: {err:?}");
        }
    }

    #[test]
    fn chunk_keys_never_parse_as_cache_keys() {
        let key = chunk_key("ec2-instance-types#us-east-1#global", "v1-00ff", 0);
        assert!(CacheKey::parse(&key).is_err());
    }

    #[test]
    fn long_error_messages_are_cut_at_a_character_boundary() {
        let long = "é".repeat(MAX_ERROR_MESSAGE_BYTES);
        let cut = truncate_message(&long);
        assert!(cut.len() <= MAX_ERROR_MESSAGE_BYTES);
        assert!(long.starts_with(cut));
        assert_eq!(truncate_message("short"), "short");
    }
}
