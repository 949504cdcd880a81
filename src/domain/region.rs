use std::fmt;

use super::InvalidValue;

/// An AWS region name such as `us-east-1`, `us-gov-west-1` or `ap-southeast-2`.
///
/// The pattern is `{area}(-{partition})?-{direction}-{number}`: lowercase ASCII
/// letter groups separated by single hyphens, ending in a number of one or two
/// digits. It cannot contain `#`, so it can never forge another part of a key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Region(Box<str>);

const REASON: &str = "must be an AWS region name such as us-east-1";

impl Region {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let invalid = InvalidValue { reason: REASON };
        if raw.len() > 32 {
            return Err(invalid);
        }
        let parts: Vec<&str> = raw.split('-').collect();
        let (number, words) = parts.split_last().ok_or(invalid.clone())?;
        let number_ok =
            (1..=2).contains(&number.len()) && number.bytes().all(|b| b.is_ascii_digit());
        let words_ok = (2..=3).contains(&words.len())
            && words[0].len() == 2
            && words
                .iter()
                .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()));
        if number_ok && words_ok {
            Ok(Self(raw.into()))
        } else {
            Err(invalid)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_real_region_names() {
        for ok in [
            "us-east-1",
            "eu-central-2",
            "ap-southeast-4",
            "us-gov-west-1",
            "cn-northwest-1",
            "il-central-1",
            "us-isob-east-1",
        ] {
            assert_eq!(Region::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_anything_else() {
        for bad in [
            "",
            "global",
            "us-east",
            "US-EAST-1",
            "us-east-1#123456789012",
            "us--east-1",
            "us-east-123",
            "useast-1",
            "u-east-1",
            "us-east-1 ",
            "a-b-c-d-e-1",
        ] {
            assert!(Region::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
