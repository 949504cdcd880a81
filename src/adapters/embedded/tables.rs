//! The tables of the store file and the reads and writes that keep them
//! consistent with each other inside one transaction.

use redb::{Database, ReadableTable, TableDefinition, WriteTransaction};

use super::record::{HeadRecord, RecordError, StoredHead};
use crate::{
    domain::{EntryMeta, payload},
    ports::StoreError,
};

pub(super) const HEADS: TableDefinition<&str, &[u8]> = TableDefinition::new("heads");
pub(super) const BODIES: TableDefinition<&str, &[u8]> = TableDefinition::new("bodies");
pub(super) const BY_CREATED: TableDefinition<(&str, i64, &str), ()> =
    TableDefinition::new("by_created");
/// Cache key → its refresh lease: (end in epoch seconds, claim id, start of
/// the fetch begun under it, marked pending).
pub(super) const LEASES: TableDefinition<&str, (i64, &str, Option<i64>, bool)> =
    TableDefinition::new("refresh_leases");
/// The leases of earlier versions (key → end): dropped when a store opens.
const OLD_LEASES: TableDefinition<&str, i64> = TableDefinition::new("leases");

pub(super) fn create_tables(db: &Database) -> Result<(), redb::Error> {
    let txn = db.begin_write()?;
    txn.open_table(HEADS)?;
    txn.open_table(BODIES)?;
    txn.open_table(BY_CREATED)?;
    txn.open_table(LEASES)?;
    txn.open_table(super::demand::READS)?;
    txn.open_table(super::demand::WARM)?;
    txn.delete_table(OLD_LEASES)?;
    txn.commit()?;
    Ok(())
}

pub(super) fn read_head(
    heads: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<StoredHead>, Failure> {
    let Some(stored) = heads.get(key)? else {
        return Ok(None);
    };
    let head = HeadRecord::from_json(key, stored.value()).map_err(|e| corrupt(key, &e))?;
    Ok(Some(head))
}

pub(super) fn write_head(
    txn: &WriteTransaction,
    key: &str,
    meta: &EntryMeta,
    encoding: payload::Encoding,
) -> Result<(), Failure> {
    let json = HeadRecord::new(meta, encoding).to_json();
    txn.open_table(HEADS)?.insert(key, json.as_slice())?;
    Ok(())
}

/// Writes head, body and index row of `meta`, replacing those of `old`.
pub(super) fn write_entry(
    txn: &WriteTransaction,
    key: &str,
    old: Option<&StoredHead>,
    meta: &EntryMeta,
    body: &[u8],
) -> Result<(), Failure> {
    let encoded = payload::encode(body);
    write_head(txn, key, meta, encoded.encoding)?;
    txn.open_table(BODIES)?
        .insert(key, encoded.bytes.as_slice())?;
    let mut index = txn.open_table(BY_CREATED)?;
    let dt = meta.key.data_type().as_str();
    if let Some(old) = old {
        index.remove((dt, old.meta.created_at.unix_secs(), key))?;
    }
    index.insert((dt, meta.created_at.unix_secs(), key), ())?;
    Ok(())
}

pub(super) fn corrupt(key: &str, e: &RecordError) -> Failure {
    Failure::Store(StoreError::Corrupt {
        key: key.to_owned(),
        reason: e.chain(),
    })
}

/// What a transaction can fail with: redb, or what it read.
pub(super) enum Failure {
    Db(redb::Error),
    Store(StoreError),
}

impl From<Failure> for StoreError {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Db(e) => StoreError::Unavailable(Box::new(e)),
            Failure::Store(e) => e,
        }
    }
}

macro_rules! redb_failures {
    ($($t:ty),+) => {
        $(impl From<$t> for Failure {
            fn from(e: $t) -> Self {
                Self::Db(e.into())
            }
        })+
    };
}
redb_failures!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
