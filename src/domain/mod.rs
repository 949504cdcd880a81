//! Pure types and rules: what is cached, under which key, and how fresh it is.

mod account;
pub mod capacity;
pub mod changes;
mod data_type;
pub mod demand;
mod entry;
mod figures;
pub mod fleet;
mod freshness;
pub mod inventory;
mod kept;
mod key;
mod ownership;
pub mod payload;
mod region;
mod time;

pub use account::{AccountId, AccountScope};
pub use data_type::{DataType, TtlPolicy, TtlTable};
pub use demand::{Demand, DemandPolicy, Hot, RefreshAhead};
pub use entry::{
    CacheEntry, ETag, EntryMeta, EntryState, Extension, RefreshAttempt, RefreshErrorKind,
    RefreshFailure, Version,
};
pub use figures::{Figure, Figures};
pub use freshness::Freshness;
pub use kept::{Kept, NotKept};
pub use key::{CacheKey, KeyError};
pub use ownership::{Ownership, OwnershipError};
pub use region::Region;
pub use time::{Clock, SystemClock, Timestamp};

/// Why a value given to a domain constructor was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct InvalidValue {
    /// What the value must look like, written for the caller.
    pub reason: &'static str,
}

/// A stored or given name that this version of the code does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown name")]
pub struct UnknownName;

/// The variant of `T` named `name`, by the names strum derives for `T`.
pub fn by_name<T>(name: &str) -> Result<T, UnknownName>
where
    T: strum::VariantArray + Copy + Into<&'static str>,
{
    T::VARIANTS
        .iter()
        .copied()
        .find(|v| (*v).into() == name)
        .ok_or(UnknownName)
}

/// Serializes a validated type as its string and deserializes it through its
/// `parse`, so a refused value is reported with the type's own reason (derives
/// over `FromStr` would report strum's or serde's generic words instead).
macro_rules! serde_as_str {
    ($($t:ty),+ $(,)?) => {$(
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(deserializer)?;
                <$t>::parse(&raw).map_err(|e| serde::de::Error::custom(e.reason))
            }
        }
    )+};
}

serde_as_str!(AccountId, Region, DataType);
