//! Typed configuration, read once at start-up from environment variables.

use std::{str::FromStr, time::Duration};

use crate::{
    domain::{AccountId, DataType, TtlPolicy, TtlTable, capacity::QuotaThresholds},
    read::ReaderSettings,
    refresh::RefreshSettings,
};

/// Fetches of one refresh batch running at once when `REFRESH_CONCURRENCY` is unset.
pub const DEFAULT_REFRESH_CONCURRENCY: usize = 8;

/// A variable that is missing or does not parse, named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable {var} {reason}")]
pub struct ConfigError {
    pub var: String,
    pub reason: String,
}

/// Reads variables through `lookup` (the process environment in production).
pub struct Env<F>(pub F);

impl Env<fn(&str) -> Option<String>> {
    pub fn process() -> Self {
        Env(|name| std::env::var(name).ok())
    }
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    pub fn optional(&self, var: &str) -> Option<String> {
        (self.0)(var).filter(|v| !v.trim().is_empty())
    }

    pub fn required(&self, var: &str) -> Result<String, ConfigError> {
        self.optional(var).ok_or_else(|| ConfigError {
            var: var.to_owned(),
            reason: "is required".into(),
        })
    }

    /// A number, or `default` when unset.
    pub fn number<T: FromStr>(&self, var: &str, default: T) -> Result<T, ConfigError> {
        match self.optional(var) {
            None => Ok(default),
            Some(raw) => raw.trim().parse().map_err(|_| ConfigError {
                var: var.to_owned(),
                reason: format!("must be a non-negative whole number, not {raw:?}"),
            }),
        }
    }

    fn seconds(&self, var: &str, default: Duration) -> Result<Duration, ConfigError> {
        self.number(var, default.as_secs()).map(Duration::from_secs)
    }

    fn millis(&self, var: &str, default: Duration) -> Result<Duration, ConfigError> {
        let default = u64::try_from(default.as_millis()).unwrap_or(u64::MAX);
        self.number(var, default).map(Duration::from_millis)
    }

    /// The deployment's own account (`DEPLOYMENT_ACCOUNT_ID`), if set.
    pub fn deployment_account(&self) -> Result<Option<AccountId>, ConfigError> {
        const VAR: &str = "DEPLOYMENT_ACCOUNT_ID";
        self.optional(VAR)
            .map(|raw| {
                AccountId::parse(raw.trim()).map_err(|e| ConfigError {
                    var: VAR.into(),
                    reason: e.reason.into(),
                })
            })
            .transpose()
    }

    /// Reader behaviour: defaults overridden by variables.
    pub fn reader_settings(&self) -> Result<ReaderSettings, ConfigError> {
        let d = ReaderSettings::default();
        Ok(ReaderSettings {
            default_account: self.deployment_account()?,
            memory_max_bytes: self.number("MEMORY_CACHE_MAX_BYTES", d.memory_max_bytes)?,
            memory_ttl: self.seconds("MEMORY_TTL_SECONDS", d.memory_ttl)?,
            stale_recheck: self.seconds("STALE_RECHECK_SECONDS", d.stale_recheck)?,
            store_timeout: self.millis("STORE_TIMEOUT_MS", d.store_timeout)?,
            retry_after: self.seconds("RETRY_AFTER_SECONDS", d.retry_after)?,
            refresh_request_interval: self.seconds(
                "REFRESH_REQUEST_INTERVAL_SECONDS",
                d.refresh_request_interval,
            )?,
            trigger_timeout: self.millis("REFRESH_REQUEST_TIMEOUT_MS", d.trigger_timeout)?,
        })
    }

    /// What the refresher needs: `DEPLOYMENT_ACCOUNT_ID` (required), the TTL
    /// table, the DRS limits and status thresholds (`DRS_MAX_REPLICATING_SERVERS`,
    /// `DRS_MAX_SOURCE_SERVERS`, `QUOTA_WARNING_PERCENT`, `QUOTA_CRITICAL_PERCENT`)
    /// and `REFRESH_CONCURRENCY`.
    pub fn refresh_settings(&self) -> Result<RefreshSettings, ConfigError> {
        let home_account = self.deployment_account()?.ok_or_else(|| ConfigError {
            var: "DEPLOYMENT_ACCOUNT_ID".into(),
            reason: "is required".into(),
        })?;
        self.refresh_settings_or(home_account)
    }

    /// As [`Self::refresh_settings`], with `home_account` where
    /// `DEPLOYMENT_ACCOUNT_ID` is unset (the local mode).
    pub fn refresh_settings_or(
        &self,
        home_account: AccountId,
    ) -> Result<RefreshSettings, ConfigError> {
        let home_account = self.deployment_account()?.unwrap_or(home_account);
        let defaults = QuotaThresholds::default();
        let quota_limits = QuotaThresholds::new(
            self.number("DRS_MAX_REPLICATING_SERVERS", defaults.max_replicating())?,
            self.number("DRS_MAX_SOURCE_SERVERS", defaults.max_source_servers())?,
            self.number("QUOTA_WARNING_PERCENT", 80)?,
            self.number("QUOTA_CRITICAL_PERCENT", 90)?,
        )
        .map_err(|e| ConfigError {
            var: "QUOTA_WARNING_PERCENT".into(),
            reason: format!("and its companions: {}", e.reason),
        })?;
        let concurrency = self.number("REFRESH_CONCURRENCY", DEFAULT_REFRESH_CONCURRENCY)?;
        if concurrency == 0 {
            return Err(ConfigError {
                var: "REFRESH_CONCURRENCY".into(),
                reason: "must be at least 1".into(),
            });
        }
        Ok(RefreshSettings {
            ttl: self.ttl_table()?,
            quota_limits,
            concurrency,
            home_account,
        })
    }

    /// Freshness and stale window of every data type: the defaults, overridden
    /// by `FRESHNESS_{TYPE}_SECONDS` and `STALE_WINDOW_{TYPE}_SECONDS` (TYPE as in
    /// `DRS_SOURCE_SERVERS`).
    pub fn ttl_table(&self) -> Result<TtlTable, ConfigError> {
        let mut table = TtlTable::default();
        for t in DataType::ALL {
            let stem = t.env_stem();
            let current = table.policy(t);
            let policy = TtlPolicy {
                freshness: self.seconds(&format!("FRESHNESS_{stem}_SECONDS"), current.freshness)?,
                stale_window: self.seconds(
                    &format!("STALE_WINDOW_{stem}_SECONDS"),
                    current.stale_window,
                )?,
            };
            if policy.freshness.is_zero() {
                return Err(ConfigError {
                    var: format!("FRESHNESS_{stem}_SECONDS"),
                    reason: "must be at least 1".into(),
                });
            }
            table.set(t, policy);
        }
        Ok(table)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String>> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        Env(move |name: &str| map.get(name).cloned())
    }

    #[test]
    fn unset_variables_give_the_defaults() {
        let e = env(&[]);
        assert_eq!(e.ttl_table().unwrap(), TtlTable::default());
        let s = e.reader_settings().unwrap();
        assert_eq!(s.default_account, None);
        assert_eq!(s.memory_ttl, ReaderSettings::default().memory_ttl);
    }

    #[test]
    fn overrides_apply_per_data_type() {
        let e = env(&[
            ("FRESHNESS_DRS_QUOTAS_SECONDS", "60"),
            ("STALE_WINDOW_EC2_SUBNETS_SECONDS", "7200"),
            ("DEPLOYMENT_ACCOUNT_ID", "123456789012"),
            ("STORE_TIMEOUT_MS", "250"),
        ]);
        let t = e.ttl_table().unwrap();
        assert_eq!(
            t.policy(DataType::DrsQuotas).freshness,
            Duration::from_secs(60)
        );
        assert_eq!(
            t.policy(DataType::Ec2Subnets).stale_window,
            Duration::from_secs(7200)
        );
        assert_eq!(
            t.policy(DataType::DrsSourceServers).freshness,
            Duration::from_secs(120)
        );
        let s = e.reader_settings().unwrap();
        assert_eq!(s.store_timeout, Duration::from_millis(250));
        assert_eq!(s.default_account.unwrap().as_str(), "123456789012");
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = env(&[("FRESHNESS_EC2_SUBNETS_SECONDS", "an hour")])
            .ttl_table()
            .unwrap_err();
        assert_eq!(err.var, "FRESHNESS_EC2_SUBNETS_SECONDS");
        let err = env(&[("FRESHNESS_EC2_SUBNETS_SECONDS", "0")])
            .ttl_table()
            .unwrap_err();
        assert_eq!(err.var, "FRESHNESS_EC2_SUBNETS_SECONDS");
        let err = env(&[("DEPLOYMENT_ACCOUNT_ID", "12")])
            .reader_settings()
            .unwrap_err();
        assert_eq!(err.var, "DEPLOYMENT_ACCOUNT_ID");
        let err = env(&[("MEMORY_TTL_SECONDS", "-1")])
            .reader_settings()
            .unwrap_err();
        assert_eq!(err.var, "MEMORY_TTL_SECONDS");
    }

    #[test]
    fn the_refresher_needs_its_account_and_takes_its_limits_from_env() {
        let err = env(&[]).refresh_settings().unwrap_err();
        assert_eq!(err.var, "DEPLOYMENT_ACCOUNT_ID");
        let s = env(&[
            ("DEPLOYMENT_ACCOUNT_ID", "123456789012"),
            ("DRS_MAX_REPLICATING_SERVERS", "100"),
            ("REFRESH_CONCURRENCY", "4"),
        ])
        .refresh_settings()
        .unwrap();
        assert_eq!(s.quota_limits.max_replicating(), 100);
        assert_eq!(s.concurrency, 4);
        let err = env(&[
            ("DEPLOYMENT_ACCOUNT_ID", "123456789012"),
            ("QUOTA_WARNING_PERCENT", "95"),
        ])
        .refresh_settings()
        .unwrap_err();
        assert!(err.reason.contains("warning <= critical"), "{err}");
        let err = env(&[
            ("DEPLOYMENT_ACCOUNT_ID", "123456789012"),
            ("REFRESH_CONCURRENCY", "0"),
        ])
        .refresh_settings()
        .unwrap_err();
        assert_eq!(err.var, "REFRESH_CONCURRENCY");
    }
}
