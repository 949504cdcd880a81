//! The two names every simulated answer is keyed by: the caller's account and
//! the region of the credential scope. Both are checked once, when they are
//! made, and are text from then on.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error as _};

/// Why a text is not an account ID or a region name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidId {
    #[error("must be exactly 12 digits")]
    Account,
    #[error("must be an AWS region name such as us-east-1")]
    Region,
}

/// An AWS account ID: twelve ASCII digits, leading zeros kept.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccountId([u8; 12]);

impl AccountId {
    pub fn parse(text: &str) -> Result<Self, InvalidId> {
        let digits = <[u8; 12]>::try_from(text.as_bytes()).map_err(|_| InvalidId::Account)?;
        if digits.iter().any(|b| !b.is_ascii_digit()) {
            return Err(InvalidId::Account);
        }
        Ok(Self(digits))
    }

    pub fn as_str(&self) -> &str {
        // Twelve ASCII digits are always UTF-8.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// An AWS region name such as `us-east-1`, `eu-central-2` or `us-gov-west-1`:
/// two or three groups of lowercase ASCII letters, the first of two letters,
/// joined by single hyphens, then a hyphen and a number of one or two digits;
/// at most 32 characters.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Region(Box<str>);

impl Region {
    /// The longest name accepted.
    const MAX_LEN: usize = 32;

    pub fn parse(text: &str) -> Result<Self, InvalidId> {
        let letters =
            |group: &str| !group.is_empty() && group.bytes().all(|b| b.is_ascii_lowercase());
        let (name, number) = text.rsplit_once('-').ok_or(InvalidId::Region)?;
        let number_ok = matches!(number.len(), 1 | 2) && number.bytes().all(|b| b.is_ascii_digit());
        let mut groups = name.split('-');
        let area_ok = groups
            .next()
            .is_some_and(|area| area.len() == 2 && letters(area));
        let rest: Vec<&str> = groups.collect();
        let rest_ok = matches!(rest.len(), 1 | 2) && rest.iter().all(|g| letters(g));
        if text.len() <= Self::MAX_LEN && number_ok && area_ok && rest_ok {
            Ok(Self(text.into()))
        } else {
            Err(InvalidId::Region)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Display, Debug, FromStr and serde (as a string, validated) for both names;
/// `$what` starts the message of a value serde refuses: `account "12" must be
/// exactly 12 digits`.
macro_rules! text_name {
    ($name:ident, $what:literal) => {
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($name))
                    .field(&self.as_str())
                    .finish()
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::parse(text)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                Self::parse(&text).map_err(|e| {
                    D::Error::custom(format_args!(concat!($what, " {:?} {}"), text, e))
                })
            }
        }
    };
}

text_name!(AccountId, "account");
text_name!(Region, "region");

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn an_account_is_twelve_digits() {
        // GIVEN twelve digits, leading zeros included
        // WHEN parsed
        let account = AccountId::parse("000123456789").unwrap();
        // THEN the text is kept as it was
        assert_eq!(account.as_str(), "000123456789");
        assert_eq!(account.to_string(), "000123456789");
        assert_eq!("000123456789".parse::<AccountId>(), Ok(account));
    }

    #[test]
    fn anything_else_is_not_an_account() {
        for bad in [
            "",
            "12345678901",
            "1234567890123",
            "12345678901a",
            " 12345678901",
            "１２３４５６７８９０１２",
            "-12345678901",
        ] {
            assert_eq!(AccountId::parse(bad), Err(InvalidId::Account), "{bad:?}");
        }
    }

    #[test]
    fn real_region_names_are_regions() {
        for name in [
            "us-east-1",
            "eu-central-2",
            "ap-southeast-4",
            "us-gov-west-1",
            "cn-northwest-1",
            "il-central-1",
            "us-isob-east-1",
            "me-south-1",
            "xx-yy-99",
        ] {
            let region = Region::parse(name).unwrap();
            assert_eq!(region.as_str(), name);
            assert_eq!(region.to_string(), name);
            assert_eq!(name.parse::<Region>(), Ok(region));
        }
    }

    #[test]
    fn anything_else_is_not_a_region() {
        for bad in [
            "",
            "global",
            "us-east",
            "US-EAST-1",
            "us-east-1#123456789012",
            "us--east-1",
            "us-east-123",
            "us-east-",
            "-east-1",
            "useast-1",
            "u-east-1",
            "us-east-1 ",
            "us-east-1a",
            "us-1",
            "a-b-c-d-e-1",
            "us-gov-west-east-1",
            "us-abcdefghijklmnopqrstuvwxyzabc-1",
        ] {
            assert_eq!(Region::parse(bad), Err(InvalidId::Region), "{bad:?}");
        }
    }

    #[test]
    fn both_serialize_as_their_text_and_deserialize_checked() {
        let account = AccountId::parse("111122223333").unwrap();
        let region = Region::parse("eu-west-1").unwrap();
        assert_eq!(
            serde_json::to_string(&account).unwrap(),
            r#""111122223333""#
        );
        assert_eq!(serde_json::to_string(&region).unwrap(), r#""eu-west-1""#);
        assert_eq!(
            serde_json::from_str::<AccountId>(r#""111122223333""#).unwrap(),
            account
        );
        assert_eq!(
            serde_json::from_str::<Region>(r#""eu-west-1""#).unwrap(),
            region
        );
        let error = serde_json::from_value::<AccountId>("12".into()).unwrap_err();
        assert_eq!(
            error.to_string(),
            r#"account "12" must be exactly 12 digits"#
        );
        let error = serde_json::from_value::<Region>("nowhere".into()).unwrap_err();
        assert_eq!(
            error.to_string(),
            r#"region "nowhere" must be an AWS region name such as us-east-1"#
        );
        assert!(serde_json::from_str::<AccountId>("111122223333").is_err());
    }

    #[test]
    fn they_order_and_debug_by_their_text() {
        let regions: BTreeSet<Region> = ["us-west-2", "eu-west-1", "us-east-1"]
            .into_iter()
            .map(|r| Region::parse(r).unwrap())
            .collect();
        let names: Vec<&str> = regions.iter().map(Region::as_str).collect();
        assert_eq!(names, ["eu-west-1", "us-east-1", "us-west-2"]);
        assert!(
            AccountId::parse("011111111111").unwrap() < AccountId::parse("100000000000").unwrap()
        );
        assert_eq!(
            format!("{:?}", AccountId::parse("111122223333").unwrap()),
            r#"AccountId("111122223333")"#
        );
    }
}
