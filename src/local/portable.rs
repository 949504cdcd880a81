//! A portable snapshot of the cache (`drs-cache export` / `import`): JSON
//! lines, a header naming the format, then one entry per line with its
//! metadata and body. Import keeps what the store has when it is as new or
//! newer (the store's version rule), so importing never replaces newer data.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::{
    domain::{
        CacheEntry, CacheKey, DataType, ETag, EntryMeta, EntryState, Figures, RefreshAttempt,
        RefreshErrorKind, RefreshFailure, Timestamp, Version,
    },
    ports::{self, CacheStore, PutOutcome, StoreError},
};

/// The header's `format`.
pub const FORMAT: &str = "drs-cache-export";
/// The header's `version`: what this code reads and writes.
pub const FORMAT_VERSION: u32 = 1;
const LIST_PAGE: u32 = 1_000;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Header {
    format: String,
    version: u32,
    exported_at: String,
    entries: u64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Line {
    key: String,
    version: u64,
    etag: String,
    state: String,
    created_at: i64,
    fetched_at: i64,
    expires_at: i64,
    stale_until: i64,
    item_count: u64,
    #[serde(default, skip_serializing_if = "Figures::is_empty")]
    figures: Figures,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_attempt: Option<Attempt>,
    /// The JSON body as text; empty when the entry holds none.
    body: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Attempt {
    at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error_kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error_message: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PortableError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("line {line}: {reason}")]
    NotAnExport { line: usize, reason: String },
    #[error("the body of {key} is not UTF-8 JSON text")]
    Body { key: String },
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportReport {
    /// Entries written: the store had none, or an older version.
    pub imported: u64,
    /// Entries kept as stored: the store's version was the same or newer.
    pub kept_newer: u64,
    /// Imported entries per data type.
    pub by_type: BTreeMap<String, u64>,
}

/// Every entry of `store` as an export file.
pub async fn export(store: &dyn CacheStore, now: Timestamp) -> Result<Vec<u8>, PortableError> {
    let stored = ports::list_all(store, DataType::ALL, LIST_PAGE).await?;
    let mut keys: Vec<&CacheKey> = stored.keys().collect();
    keys.sort_by_key(|k| k.to_string());
    let mut lines = Vec::with_capacity(keys.len());
    for key in keys {
        // An entry removed since it was listed is left out.
        if let Some(entry) = store.get(key).await? {
            lines.push(line_of(&entry)?);
        }
    }
    let header = Header {
        format: FORMAT.into(),
        version: FORMAT_VERSION,
        exported_at: now.rfc3339(),
        entries: lines.len() as u64,
    };
    let mut out = json_line(&header);
    for line in &lines {
        out.extend(json_line(line));
    }
    Ok(out)
}

fn json_line<T: Serialize>(value: &T) -> Vec<u8> {
    // Strings and integers only: serializing cannot fail.
    let mut line = serde_json::to_vec(value).unwrap_or_default();
    line.push(b'\n');
    line
}

fn line_of(entry: &CacheEntry) -> Result<Line, PortableError> {
    let m = &entry.meta;
    let body = std::str::from_utf8(&entry.body).map_err(|_| PortableError::Body {
        key: m.key.to_string(),
    })?;
    Ok(Line {
        key: m.key.to_string(),
        version: m.version.get(),
        etag: m.etag.as_str().to_owned(),
        state: m.state.as_str().to_owned(),
        created_at: m.created_at.unix_secs(),
        fetched_at: m.fetched_at.unix_secs(),
        expires_at: m.expires_at.unix_secs(),
        stale_until: m.stale_until.unix_secs(),
        item_count: m.item_count,
        figures: m.figures,
        last_attempt: m.last_attempt.as_ref().map(|a| Attempt {
            at: a.at.unix_secs(),
            error_kind: a.failure.as_ref().map(|f| f.kind.as_str().to_owned()),
            error_message: a.failure.as_ref().map(|f| f.message.clone()),
        }),
        body: body.to_owned(),
    })
}

/// How far ahead of this machine's clock an entry's version or fetch time may
/// be: clocks of the exporting machine may run a little ahead.
const MAX_CLOCK_SKEW_SECS: i64 = 300;
/// The longest an entry may stay servable after its fetch (freshness plus
/// stale window).
const MAX_SERVABLE_SECS: i64 = 400 * 24 * 60 * 60;

/// Reads a whole export file before writing anything, so a file that is not
/// an export (or is cut short) changes nothing. Entries from the future are
/// refused: a version ahead of every refresh would keep newer data out.
pub fn parse(file: &[u8], now: Timestamp) -> Result<Vec<CacheEntry>, PortableError> {
    let bad = |line: usize, reason: String| PortableError::NotAnExport { line, reason };
    let text = std::str::from_utf8(file).map_err(|_| bad(1, "is not UTF-8 text".into()))?;
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, first) = lines.next().ok_or_else(|| {
        bad(
            1,
            "the file is empty; an export starts with its header".into(),
        )
    })?;
    let header: Header = serde_json::from_str(first).map_err(|e| {
        bad(
            1,
            format!("is not a {FORMAT} header ({{\"format\":\"{FORMAT}\",...}}): {e}"),
        )
    })?;
    if header.format != FORMAT {
        return Err(bad(
            1,
            format!("format is {:?}, not {FORMAT:?}", header.format),
        ));
    }
    if header.version != FORMAT_VERSION {
        return Err(bad(
            1,
            format!(
                "format version {} is not {FORMAT_VERSION}, the one this drs-cache reads",
                header.version
            ),
        ));
    }
    let mut entries = Vec::new();
    for (at, text) in lines {
        let n = at + 1;
        let line: Line = serde_json::from_str(text).map_err(|e| bad(n, e.to_string()))?;
        entries.push(entry_of(line, now).map_err(|reason| bad(n, reason))?);
    }
    if entries.len() as u64 != header.entries {
        return Err(bad(
            1,
            format!(
                "the header counts {} entries but the file holds {}: it was cut short or edited",
                header.entries,
                entries.len()
            ),
        ));
    }
    Ok(entries)
}

fn entry_of(line: Line, now: Timestamp) -> Result<CacheEntry, String> {
    let key = CacheKey::parse(&line.key).map_err(|e| format!("key {:?}: {e}", line.key))?;
    let latest = now.unix_secs().saturating_add(MAX_CLOCK_SKEW_SECS);
    let version_secs = i64::try_from(line.version / 1_000_000).unwrap_or(i64::MAX);
    if version_secs > latest || line.fetched_at > latest {
        return Err(format!(
            "{key} was fetched in the future (version {}, fetchedAt {}): a version ahead of this clock would keep every later refresh out",
            line.version, line.fetched_at
        ));
    }
    if !(line.fetched_at <= line.expires_at
        && line.expires_at <= line.stale_until
        && line.stale_until.saturating_sub(line.fetched_at) <= MAX_SERVABLE_SECS)
    {
        return Err(format!(
            "{key}: fetchedAt <= expiresAt <= staleUntil must hold, within 400 days"
        ));
    }
    let state: EntryState = line.state.parse().map_err(|_| {
        format!(
            "state {:?} is not READY, DRS_NOT_INITIALIZED or NO_DATA",
            line.state
        )
    })?;
    let body = Bytes::from(line.body.into_bytes());
    if state == EntryState::Ready && serde_json::from_slice::<serde_json::Value>(&body).is_err() {
        return Err(format!("the body of {key} is not JSON"));
    }
    let etag = ETag::from_stored(&line.etag);
    if state == EntryState::Ready && etag != ETag::of(&body) {
        return Err(format!("the body of {key} does not match its etag"));
    }
    let last_attempt = match line.last_attempt {
        None => None,
        Some(a) => Some(RefreshAttempt {
            at: Timestamp::from_unix_secs(a.at),
            failure: match a.error_kind {
                None => None,
                Some(kind) => Some(RefreshFailure {
                    kind: kind
                        .parse::<RefreshErrorKind>()
                        .map_err(|_| format!("error kind {kind:?} is not one drs-cache records"))?,
                    message: a.error_message.unwrap_or_default(),
                }),
            },
        }),
    };
    let at = Timestamp::from_unix_secs;
    Ok(CacheEntry {
        meta: EntryMeta {
            key,
            version: Version::from_raw(line.version),
            etag,
            state,
            created_at: at(line.created_at),
            fetched_at: at(line.fetched_at),
            expires_at: at(line.expires_at),
            stale_until: at(line.stale_until),
            item_count: line.item_count,
            figures: line.figures,
            last_attempt,
        },
        body,
    })
}

/// Writes each entry of `file` unless the store holds its version or a newer
/// one.
pub async fn import(
    store: &dyn CacheStore,
    file: &[u8],
    now: Timestamp,
) -> Result<ImportReport, PortableError> {
    let entries = parse(file, now)?;
    let mut report = ImportReport::default();
    for entry in &entries {
        match store.put(entry).await? {
            PutOutcome::Written => {
                report.imported += 1;
                *report
                    .by_type
                    .entry(entry.meta.key.data_type().as_str().to_owned())
                    .or_default() += 1;
            }
            PutOutcome::Superseded { .. } => report.kept_newer += 1,
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        adapters::embedded::EmbeddedStore,
        domain::{Region, TtlPolicy},
        ports::{CacheReads, CacheWrites},
    };

    fn entry(version: u64, body: &str) -> CacheEntry {
        let key = CacheKey::new(
            DataType::Ec2Subnets,
            Region::parse("us-east-1").unwrap(),
            crate::domain::AccountId::parse("111111111111").unwrap(),
        );
        CacheEntry::fetched(
            key,
            Version::from_raw(version),
            Bytes::from(body.to_owned()),
            1,
            Timestamp::from_unix_secs(1_796_000_000),
            TtlPolicy {
                freshness: std::time::Duration::from_secs(60),
                stale_window: std::time::Duration::from_secs(600),
            },
        )
    }

    fn store() -> (tempfile::TempDir, EmbeddedStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path().join("c.redb")).unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn an_export_imports_whole_into_an_empty_store_and_never_over_newer_data() {
        let (_a, source) = store();
        source.put(&entry(5, r#"{"subnets":[1]}"#)).await.unwrap();
        let file = export(&source, Timestamp::from_unix_secs(1_796_000_100))
            .await
            .unwrap();
        let (_b, target) = store();
        let report = import(&target, &file, Timestamp::from_unix_secs(1_796_000_200))
            .await
            .unwrap();
        assert_eq!((report.imported, report.kept_newer), (1, 0));
        assert_eq!(report.by_type["ec2-subnets"], 1);
        let key = entry(5, "{}").meta.key;
        assert_eq!(
            target.get(&key).await.unwrap().unwrap(),
            source.get(&key).await.unwrap().unwrap()
        );
        // A newer version in the target is kept.
        target.put(&entry(9, r#"{"subnets":[2]}"#)).await.unwrap();
        let report = import(&target, &file, Timestamp::from_unix_secs(1_796_000_200))
            .await
            .unwrap();
        assert_eq!((report.imported, report.kept_newer), (0, 1));
        assert_eq!(
            target.get(&key).await.unwrap().unwrap().meta.version,
            Version::from_raw(9)
        );
    }

    #[tokio::test]
    async fn a_file_that_is_not_an_export_changes_nothing_and_names_its_line() {
        let (_a, source) = store();
        source.put(&entry(5, r#"{"subnets":[1]}"#)).await.unwrap();
        let file = export(&source, Timestamp::from_unix_secs(1)).await.unwrap();
        let text = String::from_utf8(file).unwrap();
        let (_b, target) = store();
        for (bad, line) in [
            (String::new(), 1),
            ("{\"hello\": 1}\n".to_owned(), 1),
            (text.replace("drs-cache-export", "other"), 1),
            (text.replace("\"version\":1", "\"version\":7"), 1),
            (text.lines().next().unwrap().to_owned(), 1),
            (
                text.replace(r#"{\"subnets\":[1]}"#, r#"{\"subnets\":[3]}"#),
                2,
            ),
            (text.replace("ec2-subnets#", "ec2-nets#"), 2),
            // A version far ahead of the clock would shut out every refresh.
            (
                text.replace("\"version\":5,", "\"version\":18446744073709551615,"),
                2,
            ),
        ] {
            let err = import(
                &target,
                bad.as_bytes(),
                Timestamp::from_unix_secs(1_796_000_200),
            )
            .await
            .unwrap_err();
            assert!(
                matches!(&err, PortableError::NotAnExport { line: l, .. } if *l == line),
                "{bad:?}: {err}"
            );
        }
        assert!(
            ports::list_all(&target, DataType::ALL, 10)
                .await
                .unwrap()
                .is_empty()
        );
    }
}
