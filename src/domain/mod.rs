//! Pure types and rules: what is cached, under which key, and how fresh it is.

mod account;
pub mod capacity;
mod data_type;
mod entry;
mod freshness;
pub mod inventory;
mod key;
pub mod payload;
mod region;
mod time;

pub use account::{AccountId, AccountScope};
pub use data_type::{DataType, TtlPolicy, TtlTable};
pub use entry::{
    CacheEntry, ETag, EntryMeta, EntryState, Extension, RefreshAttempt, RefreshErrorKind,
    RefreshFailure, Version,
};
pub use freshness::Freshness;
pub use key::{CacheKey, KeyError};
pub use region::Region;
pub use time::{Clock, SystemClock, Timestamp};

/// Why a value given to a domain constructor was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct InvalidValue {
    /// What the value must look like, written for the caller.
    pub reason: &'static str,
}
