//! Typed configuration, read once at start-up from environment variables.

use std::{str::FromStr, time::Duration};

use crate::{
    domain::{AccountId, DataType, Region, TtlPolicy, TtlTable, capacity::QuotaThresholds},
    plan::PlanConfig,
    read::ReaderSettings,
    refresh::RefreshSettings,
};

/// Fetches of one refresh batch running at once when `REFRESH_CONCURRENCY` is unset.
pub const DEFAULT_REFRESH_CONCURRENCY: usize = 8;

/// The local mode's defaults where the planner's variables are unset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalPlan {
    pub home: AccountId,
    pub accounts: Vec<AccountId>,
    pub regions: Vec<Region>,
}

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

    /// What the planner plans over: `DEPLOYMENT_ACCOUNT_ID` (required, or `home`
    /// when given), `ACCOUNT_IDS` (comma-separated; default the deployment's
    /// account), `REGIONS` (comma-separated, required), `DATA_TYPES` (default
    /// all), `SCHEDULE_INTERVAL_SECONDS` (60), `REFRESH_AHEAD_MARGIN_SECONDS`
    /// (30), `FAILURE_BACKOFF_SECONDS` (300), `LEASE_SECONDS` (30) and
    /// `REFRESH_BATCH_SIZE` (10).
    pub fn plan_config(&self, local: Option<LocalPlan>) -> Result<PlanConfig, ConfigError> {
        let home = match (self.deployment_account()?, local.as_ref().map(|l| l.home)) {
            (Some(account), _) | (None, Some(account)) => account,
            (None, None) => {
                return Err(ConfigError {
                    var: "DEPLOYMENT_ACCOUNT_ID".into(),
                    reason: "is required".into(),
                });
            }
        };
        let accounts = match self.list("ACCOUNT_IDS", |raw| {
            AccountId::parse(raw).map_err(|e| e.reason)
        })? {
            Some(accounts) => accounts,
            None => local
                .as_ref()
                .map_or_else(|| vec![home], |l| l.accounts.clone()),
        };
        let regions = match self.list("REGIONS", |raw| Region::parse(raw).map_err(|e| e.reason))? {
            Some(regions) => regions,
            None => local.map(|l| l.regions).ok_or_else(|| ConfigError {
                var: "REGIONS".into(),
                reason: "is required: the regions to refresh, comma-separated".into(),
            })?,
        };
        let data_types = self
            .list("DATA_TYPES", |raw| {
                DataType::parse(raw).map_err(|e| e.reason)
            })?
            .unwrap_or_else(|| DataType::ALL.to_vec());
        let batch_size = self.number("REFRESH_BATCH_SIZE", 10usize)?;
        if batch_size == 0 {
            return Err(ConfigError {
                var: "REFRESH_BATCH_SIZE".into(),
                reason: "must be at least 1".into(),
            });
        }
        Ok(PlanConfig {
            home,
            accounts,
            regions,
            data_types,
            schedule_interval: self
                .seconds("SCHEDULE_INTERVAL_SECONDS", Duration::from_secs(60))?,
            refresh_ahead_margin: self
                .seconds("REFRESH_AHEAD_MARGIN_SECONDS", Duration::from_secs(30))?,
            failure_backoff: self.seconds("FAILURE_BACKOFF_SECONDS", Duration::from_secs(300))?,
            lease: self.seconds("LEASE_SECONDS", Duration::from_secs(30))?,
            batch_size,
            list_page: 100,
        })
    }

    /// A comma-separated list, each item parsed; `None` when unset.
    fn list<T: PartialEq>(
        &self,
        var: &str,
        parse: impl Fn(&str) -> Result<T, &'static str>,
    ) -> Result<Option<Vec<T>>, ConfigError> {
        let Some(raw) = self.optional(var) else {
            return Ok(None);
        };
        let mut items = Vec::new();
        for item in raw.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let value = parse(item).map_err(|reason| ConfigError {
                var: var.to_owned(),
                reason: format!("item {item:?} {reason}"),
            })?;
            if !items.contains(&value) {
                items.push(value);
            }
        }
        Ok(Some(items))
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
    fn the_planner_reads_its_accounts_regions_and_types() {
        let c = env(&[
            ("DEPLOYMENT_ACCOUNT_ID", "123456789012"),
            ("ACCOUNT_IDS", "123456789012, 210987654321,123456789012"),
            ("REGIONS", "us-east-1,eu-west-1"),
            ("DATA_TYPES", "drs-quotas"),
        ])
        .plan_config(None)
        .unwrap();
        assert_eq!(c.accounts.len(), 2);
        assert_eq!(c.regions.len(), 2);
        assert_eq!(c.data_types, [DataType::DrsQuotas]);
        assert_eq!(c.batch_size, 10);
        let err = env(&[("DEPLOYMENT_ACCOUNT_ID", "123456789012")])
            .plan_config(None)
            .unwrap_err();
        assert_eq!(err.var, "REGIONS");
        let local = LocalPlan {
            home: AccountId::parse("123456789012").unwrap(),
            accounts: vec![AccountId::parse("123456789012").unwrap()],
            regions: vec![Region::parse("eu-west-1").unwrap()],
        };
        let c = env(&[]).plan_config(Some(local.clone())).unwrap();
        assert_eq!(c.regions, local.regions);
        let err = env(&[("REGIONS", "us-east-1,mars")])
            .plan_config(Some(local))
            .unwrap_err();
        assert_eq!(err.var, "REGIONS");
        assert!(err.reason.contains("\"mars\""), "{err}");
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
