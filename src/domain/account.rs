use std::fmt;

use super::InvalidValue;

/// A 12-digit AWS account ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId([u8; 12]);

impl AccountId {
    /// Validates `raw`: exactly twelve ASCII digits, nothing else.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let bytes: [u8; 12] = raw.as_bytes().try_into().map_err(|_| InvalidValue {
            reason: "must be exactly 12 digits",
        })?;
        if bytes.iter().all(u8::is_ascii_digit) {
            Ok(Self(bytes))
        } else {
            Err(InvalidValue {
                reason: "must be exactly 12 digits",
            })
        }
    }

    pub fn as_str(&self) -> &str {
        // Constructed only from ASCII digits.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The account part of a cache key: one account, or `global` for data that is the
/// same in every account (instance types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AccountScope {
    Account(AccountId),
    Global,
}

impl AccountScope {
    pub const GLOBAL: &'static str = "global";

    pub fn as_str(&self) -> &str {
        match self {
            Self::Account(id) => id.as_str(),
            Self::Global => Self::GLOBAL,
        }
    }

    pub fn account(&self) -> Option<AccountId> {
        match self {
            Self::Account(id) => Some(*id),
            Self::Global => None,
        }
    }
}

impl fmt::Display for AccountScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_twelve_digits() {
        assert_eq!(
            AccountId::parse("123456789012").unwrap().as_str(),
            "123456789012"
        );
    }

    #[test]
    fn rejects_wrong_length_letters_and_separators() {
        for bad in [
            "",
            "12345678901",
            "1234567890123",
            "12345678901a",
            "1234-5678-9012",
            "１２３456789012",
        ] {
            assert!(AccountId::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
