//! Reading variables: each lookup names its variable in the error it returns.

use std::{str::FromStr, time::Duration};

use crate::domain::{AccountId, InvalidValue};

/// A variable that is missing or does not parse, named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable {var} {reason}")]
pub struct EnvError {
    pub var: String,
    pub reason: String,
}

impl EnvError {
    pub fn new(var: &str, reason: impl Into<String>) -> Self {
        Self {
            var: var.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Reads variables through `lookup`: the process environment in production, a
/// map in tests (such as a function's environment in the CloudFormation
/// template).
pub struct Env<F>(pub F);

impl Env<fn(&str) -> Option<String>> {
    /// The process environment.
    pub fn process() -> Self {
        Env(|name| std::env::var(name).ok())
    }
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// The value of `var`; unset and blank are the same.
    pub fn optional(&self, var: &str) -> Option<String> {
        (self.0)(var).filter(|v| !v.trim().is_empty())
    }

    pub fn required(&self, var: &str) -> Result<String, EnvError> {
        self.optional(var)
            .ok_or_else(|| EnvError::new(var, "is required"))
    }

    /// A whole number, or `default` when unset.
    pub fn number<T: FromStr>(&self, var: &str, default: T) -> Result<T, EnvError> {
        match self.optional(var) {
            None => Ok(default),
            Some(raw) => raw.trim().parse().map_err(|_| {
                EnvError::new(
                    var,
                    format!("must be a non-negative whole number, not {raw:?}"),
                )
            }),
        }
    }

    /// A whole number of at least `min`, or `default` when unset.
    pub fn number_at_least<T: FromStr + PartialOrd + std::fmt::Display>(
        &self,
        var: &str,
        default: T,
        min: T,
    ) -> Result<T, EnvError> {
        let value = self.number(var, default)?;
        if value < min {
            return Err(EnvError::new(var, format!("must be at least {min}")));
        }
        Ok(value)
    }

    /// Whole seconds, or `default` when unset.
    pub fn seconds(&self, var: &str, default: Duration) -> Result<Duration, EnvError> {
        self.number(var, default.as_secs()).map(Duration::from_secs)
    }

    /// Whole milliseconds, or `default` when unset.
    pub fn millis(&self, var: &str, default: Duration) -> Result<Duration, EnvError> {
        let default = u64::try_from(default.as_millis()).unwrap_or(u64::MAX);
        self.number(var, default).map(Duration::from_millis)
    }

    /// A value a domain type validates, such as an account ID.
    pub fn parsed<T>(
        &self,
        var: &str,
        parse: impl Fn(&str) -> Result<T, InvalidValue>,
    ) -> Result<Option<T>, EnvError> {
        self.optional(var)
            .map(|raw| parse(raw.trim()).map_err(|e| EnvError::new(var, e.reason)))
            .transpose()
    }

    /// The deployment's own account (`DEPLOYMENT_ACCOUNT_ID`), if set.
    pub fn deployment_account(&self) -> Result<Option<AccountId>, EnvError> {
        self.parsed("DEPLOYMENT_ACCOUNT_ID", AccountId::parse)
    }

    /// A comma-separated list, each item parsed and repeats dropped; `None`
    /// when unset.
    pub fn list<T: PartialEq>(
        &self,
        var: &str,
        parse: impl Fn(&str) -> Result<T, InvalidValue>,
    ) -> Result<Option<Vec<T>>, EnvError> {
        let Some(raw) = self.optional(var) else {
            return Ok(None);
        };
        let mut items = Vec::new();
        for item in raw.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let value = parse(item)
                .map_err(|e| EnvError::new(var, format!("item {item:?} {}", e.reason)))?;
            if !items.contains(&value) {
                items.push(value);
            }
        }
        Ok(Some(items))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::domain::Region;

    /// `Env` over `pairs`.
    pub(crate) fn env(pairs: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String> + use<>> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        Env(move |name: &str| map.get(name).cloned())
    }

    #[test]
    fn blank_is_unset_and_bad_numbers_name_their_variable() {
        let e = env(&[("A", "  "), ("N", "-1"), ("M", "0")]);
        assert_eq!(e.optional("A"), None);
        assert_eq!(e.required("A").unwrap_err().var, "A");
        assert_eq!(e.number("N", 3u32).unwrap_err().var, "N");
        assert_eq!(e.number("UNSET", 3u32), Ok(3));
        let err = e.number_at_least("M", 1usize, 1).unwrap_err();
        assert_eq!(
            (err.var.as_str(), err.reason.as_str()),
            ("M", "must be at least 1")
        );
    }

    #[test]
    fn lists_drop_repeats_and_name_the_bad_item() {
        let e = env(&[
            ("R", "us-east-1, eu-west-1,us-east-1"),
            ("BAD", "us-east-1,mars"),
        ]);
        assert_eq!(e.list("R", Region::parse).unwrap().unwrap().len(), 2);
        let err = e.list("BAD", Region::parse).unwrap_err();
        assert_eq!(err.var, "BAD");
        assert!(err.reason.contains("\"mars\""), "{err}");
    }
}
