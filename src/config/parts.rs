//! The pieces several binaries configure the same way: the reader's and the
//! refresher's settings, the plan, and how upstream accounts are reached.

use std::time::Duration;

use crate::{
    adapters::aws::{AccountAccess, CallTimeouts, Credentials, RetrySettings, UpstreamConfig},
    domain::{
        AccountId, CacheKey, DataType, DemandPolicy, InvalidValue, Kept, Ownership, RefreshAhead,
        Region, TtlPolicy, TtlTable, capacity::QuotaThresholds,
    },
    plan::PlanConfig,
    read::ReaderSettings,
    refresh::{RefreshSettings, RetryPolicy},
};

use super::{DEFAULT_ROLE_NAME, Env, EnvError, SESSION_NAME};

/// How long a lease lasts when `LEASE_SECONDS` is unset: the refresher's
/// 300 s timeout and a minute.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(360);
/// The shortest `LEASE_SECONDS`.
const MIN_LEASE: Duration = Duration::from_secs(60);
/// The most `REFRESH_ROUNDS`.
const MAX_REFRESH_ROUNDS: u32 = 10;
/// Targets of one refresh batch when `REFRESH_BATCH_SIZE` is unset: a tick's
/// batches are child executions billed by their transitions, and 50 targets
/// at `DEFAULT_REFRESH_CONCURRENCY` take a few seconds of the refresher's 300.
pub const DEFAULT_BATCH_SIZE: usize = 50;
/// Fetches of one refresh batch running at once when `REFRESH_CONCURRENCY` is unset.
pub const DEFAULT_REFRESH_CONCURRENCY: usize = 8;

/// `policy` with the windows of `raw`, `type=seconds` pairs separated by
/// commas (`drs-jobs=86400,ec2-subnets=600`); the reason a pair is refused.
fn demand_windows(mut policy: DemandPolicy, raw: &str) -> Result<DemandPolicy, String> {
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((name, seconds)) = pair.split_once('=') else {
            return Err(format!("{pair:?} is not type=seconds"));
        };
        let data_type =
            DataType::parse(name.trim()).map_err(|e| format!("{:?}: {}", name.trim(), e.reason))?;
        let seconds: u64 = seconds
            .trim()
            .parse()
            .map_err(|_| format!("{pair:?}: seconds must be a whole number"))?;
        policy = policy
            .with_window(data_type, Duration::from_secs(seconds))
            .map_err(|e: InvalidValue| format!("{pair:?}: {}", e.reason))?;
    }
    Ok(policy)
}

/// What the plan covers where its variables are unset, instead of requiring
/// them (the local mode's fleet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanDefaults {
    pub accounts: Vec<AccountId>,
    pub regions: Vec<Region>,
}

/// The accounts, regions and data types a deployment keeps.
pub(super) struct Targets {
    pub accounts: Vec<AccountId>,
    pub regions: Vec<Region>,
    pub data_types: Vec<DataType>,
}

impl Targets {
    pub fn kept(&self) -> Kept {
        Kept::new(&self.accounts, &self.regions, &self.data_types)
    }

    /// Where the planner keeps these targets' fleet capacity.
    pub fn capacity_key(&self) -> Option<CacheKey> {
        crate::domain::fleet::key_of(&self.regions, &self.data_types)
    }
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// Reader behaviour: the defaults overridden by `DEPLOYMENT_ACCOUNT_ID`,
    /// `MEMORY_CACHE_MAX_BYTES`, `MEMORY_TTL_SECONDS`, `STALE_RECHECK_SECONDS`,
    /// `STORE_TIMEOUT_MS`, `RETRY_AFTER_SECONDS`,
    /// `REFRESH_REQUEST_INTERVAL_SECONDS` and `REFRESH_REQUEST_TIMEOUT_MS`.
    pub(super) fn reader_settings(&self) -> Result<ReaderSettings, EnvError> {
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
            kept: None,
            capacity_key: None,
            ownership: self.ownership()?,
            demand: self.refresh_ahead()?.demand().cloned(),
            ticks_keep: Some(self.schedule_interval()? + self.refresh_ahead_margin()?),
        })
    }

    /// `SCHEDULE_INTERVAL_SECONDS` (60): how often a scheduled tick runs.
    fn schedule_interval(&self) -> Result<Duration, EnvError> {
        self.seconds("SCHEDULE_INTERVAL_SECONDS", Duration::from_secs(60))
    }

    /// `REFRESH_AHEAD_MARGIN_SECONDS` (30): a tick refreshes what expires
    /// before the next one and this margin.
    fn refresh_ahead_margin(&self) -> Result<Duration, EnvError> {
        self.seconds("REFRESH_AHEAD_MARGIN_SECONDS", Duration::from_secs(30))
    }

    /// How ticks refresh ahead: `REFRESH_AHEAD` (`demand`, the default, or
    /// `always`), with demand's windows `DEMAND_WINDOW_SECONDS` (3,600),
    /// `DEMAND_WINDOWS` (per type, `type=seconds` pairs, comma-separated),
    /// `DEMAND_FLOOR_SECONDS` (21,600) and `WARM_WINDOW_SECONDS` (14,400). The reader and the planner read
    /// the same variables, so a reader notes reads as often as the planner's
    /// windows need.
    pub(super) fn refresh_ahead(&self) -> Result<RefreshAhead, EnvError> {
        match self.optional("REFRESH_AHEAD").as_deref().map(str::trim) {
            None | Some("demand") => {}
            Some("always") => return Ok(RefreshAhead::Always),
            Some(_) => {
                return Err(EnvError::new(
                    "REFRESH_AHEAD",
                    "must be demand (refresh ahead what is read) or always (every configured key)",
                ));
            }
        }
        let mut policy = DemandPolicy::new(
            self.seconds("DEMAND_WINDOW_SECONDS", DemandPolicy::DEFAULT_WINDOW)?,
            self.seconds("DEMAND_FLOOR_SECONDS", DemandPolicy::DEFAULT_FLOOR)?,
            self.seconds("WARM_WINDOW_SECONDS", DemandPolicy::DEFAULT_WARM_WINDOW)?,
        )
        .map_err(|e| {
            let var = match e.reason {
                r if r.contains("floor") => "DEMAND_FLOOR_SECONDS",
                r if r.contains("warm") => "WARM_WINDOW_SECONDS",
                _ => "DEMAND_WINDOW_SECONDS",
            };
            EnvError::new(var, e.reason)
        })?;
        if let Some(raw) = self.optional("DEMAND_WINDOWS") {
            policy = demand_windows(policy, &raw)
                .map_err(|reason| EnvError::new("DEMAND_WINDOWS", reason))?;
        }
        Ok(RefreshAhead::OnDemand(policy))
    }

    /// Which deployment refreshes each data region: `DEPLOYMENT_REGION` set
    /// makes this one of several deployments over a global table, owning its
    /// own region's targets and those `REGION_OWNERS` (`data=owner` pairs,
    /// comma-separated) assigns it; unset, it owns every region.
    pub(super) fn ownership(&self) -> Result<Ownership, EnvError> {
        let owners = self.optional("REGION_OWNERS");
        let Some(raw) = self.optional("DEPLOYMENT_REGION") else {
            return match owners {
                Some(_) => Err(EnvError::new(
                    "REGION_OWNERS",
                    "needs DEPLOYMENT_REGION: owners are assigned among the deployments over a global table",
                )),
                None => Ok(Ownership::Sole),
            };
        };
        let deployment =
            Region::parse(raw.trim()).map_err(|e| EnvError::new("DEPLOYMENT_REGION", e.reason))?;
        Ownership::shared(deployment, owners.as_deref().unwrap_or(""))
            .map_err(|e| EnvError::new("REGION_OWNERS", e.to_string()))
    }

    /// The targets a deployment keeps: `ACCOUNT_IDS` (comma-separated; default
    /// `home`, required without one; an account list object must have been
    /// read into it, see [`super::read_account_list`]), `REGIONS` (comma-separated; required
    /// unless `defaults` gives them) and `DATA_TYPES` (default all), as the
    /// planner reads them.
    pub(super) fn targets(
        &self,
        home: Option<AccountId>,
        defaults: Option<PlanDefaults>,
    ) -> Result<Targets, EnvError> {
        if self.optional(super::ACCOUNT_LIST_URI).is_some() {
            return Err(EnvError::new(
                super::ACCOUNT_LIST_URI,
                "names an S3 object of accounts, which the functions, serve and the deployment commands read at start-up, but not this command: set ACCOUNT_IDS for it instead",
            ));
        }
        let accounts = match self.list("ACCOUNT_IDS", AccountId::parse)? {
            Some(accounts) => accounts,
            None => match (&defaults, home) {
                (Some(d), _) => d.accounts.clone(),
                (None, Some(home)) => vec![home],
                (None, None) => {
                    return Err(EnvError::new(
                        "ACCOUNT_IDS",
                        "is required without DEPLOYMENT_ACCOUNT_ID: the accounts kept, comma-separated",
                    ));
                }
            },
        };
        let regions = match self.list("REGIONS", Region::parse)? {
            Some(regions) => regions,
            None => defaults.map(|d| d.regions).ok_or_else(|| {
                EnvError::new(
                    "REGIONS",
                    "is required: the regions to refresh, comma-separated",
                )
            })?,
        };
        let data_types = self
            .list("DATA_TYPES", DataType::parse)?
            .unwrap_or_else(|| DataType::ALL.to_vec());
        Ok(Targets {
            accounts,
            regions,
            data_types,
        })
    }

    /// What the refresher needs, with `home` as the deployment's account: the
    /// TTL table, the DRS limits and status thresholds
    /// (`DRS_MAX_REPLICATING_SERVERS`, `DRS_MAX_SOURCE_SERVERS`,
    /// `QUOTA_WARNING_PERCENT`, `QUOTA_CRITICAL_PERCENT`) and
    /// `REFRESH_CONCURRENCY`, `LEASE_SECONDS` (360), `REFRESH_ROUNDS` (3, from
    /// 1 to 10) and `RETRY_WAIT_SECONDS` (5).
    pub(super) fn refresh_settings(&self, home: AccountId) -> Result<RefreshSettings, EnvError> {
        let rounds = self.number_at_least("REFRESH_ROUNDS", RetryPolicy::default().rounds, 1)?;
        if rounds > MAX_REFRESH_ROUNDS {
            return Err(EnvError::new(
                "REFRESH_ROUNDS",
                format!("must be at most {MAX_REFRESH_ROUNDS}"),
            ));
        }
        Ok(RefreshSettings {
            ttl: self.ttl_table()?,
            quota_limits: self.quota_thresholds()?,
            concurrency: self.number_at_least(
                "REFRESH_CONCURRENCY",
                DEFAULT_REFRESH_CONCURRENCY,
                1,
            )?,
            home_account: home,
            lease: self.lease()?,
            retry: RetryPolicy {
                rounds,
                first_wait: self
                    .seconds("RETRY_WAIT_SECONDS", RetryPolicy::default().first_wait)?,
            },
            jobs_window: self.jobs_window()?,
        })
    }

    /// `JOBS_WINDOW_DAYS`: how many days of jobs `drs-jobs` holds, 1 to 90.
    fn jobs_window(&self) -> Result<Duration, EnvError> {
        let days = self.number_at_least("JOBS_WINDOW_DAYS", 7, 1)?;
        if days > 90 {
            return Err(EnvError::new("JOBS_WINDOW_DAYS", "must be at most 90"));
        }
        Ok(Duration::from_secs(days * 24 * 60 * 60))
    }

    /// `LEASE_SECONDS`: how long a claim or a round of a batch holds a
    /// target, which both the planner and the refresher read. At least a
    /// minute, so that it outlasts the refresher's own call timeouts.
    fn lease(&self) -> Result<Duration, EnvError> {
        let lease = self.seconds("LEASE_SECONDS", DEFAULT_LEASE)?;
        if lease < MIN_LEASE {
            return Err(EnvError::new(
                "LEASE_SECONDS",
                format!(
                    "must be at least {} (longer than the refresher's timeout)",
                    MIN_LEASE.as_secs()
                ),
            ));
        }
        Ok(lease)
    }

    fn quota_thresholds(&self) -> Result<QuotaThresholds, EnvError> {
        let d = QuotaThresholds::default();
        let max_replicating =
            self.number_at_least("DRS_MAX_REPLICATING_SERVERS", d.max_replicating(), 1)?;
        let max_source_servers =
            self.number_at_least("DRS_MAX_SOURCE_SERVERS", d.max_source_servers(), 1)?;
        let critical: u8 = self.number("QUOTA_CRITICAL_PERCENT", 90)?;
        if !(1..=100).contains(&critical) {
            return Err(EnvError::new(
                "QUOTA_CRITICAL_PERCENT",
                "must be from 1 to 100 (0 < warning <= critical <= 100)",
            ));
        }
        let warning: u8 = self.number("QUOTA_WARNING_PERCENT", 80)?;
        if !(1..=critical).contains(&warning) {
            return Err(EnvError::new(
                "QUOTA_WARNING_PERCENT",
                format!(
                    "must be from 1 to QUOTA_CRITICAL_PERCENT ({critical}): 0 < warning <= critical <= 100"
                ),
            ));
        }
        QuotaThresholds::new(max_replicating, max_source_servers, warning, critical)
            .map_err(|e| EnvError::new("QUOTA_WARNING_PERCENT", e.reason))
    }

    /// The refresher's limits and thresholds, with the limits on recovery
    /// instances and jobs the fleet capacity also rates rows against.
    fn fleet_thresholds(&self) -> Result<QuotaThresholds, EnvError> {
        let d = QuotaThresholds::default();
        let thresholds = self.quota_thresholds()?;
        let instances =
            self.number_at_least("DRS_MAX_RECOVERY_INSTANCES", d.max_recovery_instances(), 1)?;
        let jobs = self.number_at_least("DRS_MAX_ACTIVE_JOBS", d.max_active_jobs(), 1)?;
        let servers = self.number_at_least(
            "DRS_MAX_SERVERS_IN_ACTIVE_JOBS",
            d.max_servers_in_active_jobs(),
            1,
        )?;
        thresholds
            .with_recovery_limits(instances, jobs, servers)
            .map_err(|e| EnvError::new("DRS_MAX_RECOVERY_INSTANCES", e.reason))
    }

    /// What the planner plans over, with `home` as the deployment's account:
    /// `ACCOUNT_IDS` (comma-separated; default the deployment's account, or the
    /// `defaults`), `REGIONS` (comma-separated; required unless `defaults`
    /// gives them), `DATA_TYPES` (default all), `SCHEDULE_INTERVAL_SECONDS`
    /// (60), `REFRESH_AHEAD_MARGIN_SECONDS` (30), `FAILURE_BACKOFF_SECONDS`
    /// (300), `LEASE_SECONDS` (360), `REFRESH_BATCH_SIZE` (50, at most 500) and
    /// `MAX_TARGETS_PER_RUN` (10,000) and `MANUAL_MIN_AGE_SECONDS` (60), and
    /// the DRS limits and status thresholds the fleet capacity rates rows by
    /// (those of the refresher, and `DRS_MAX_RECOVERY_INSTANCES` (4,000),
    /// `DRS_MAX_ACTIVE_JOBS` (20), `DRS_MAX_SERVERS_IN_ACTIVE_JOBS` (500)).
    pub(super) fn plan_config(
        &self,
        home: AccountId,
        defaults: Option<PlanDefaults>,
    ) -> Result<PlanConfig, EnvError> {
        let Targets {
            accounts,
            regions,
            data_types,
        } = self.targets(Some(home), defaults)?;
        let batch_size = self.number_at_least("REFRESH_BATCH_SIZE", DEFAULT_BATCH_SIZE, 1)?;
        if batch_size > crate::workflow::MAX_BATCH_TARGETS {
            return Err(EnvError::new(
                "REFRESH_BATCH_SIZE",
                format!(
                    "must be at most {}, the most one refresher invocation takes",
                    crate::workflow::MAX_BATCH_TARGETS
                ),
            ));
        }
        Ok(PlanConfig {
            home,
            accounts,
            regions,
            data_types,
            schedule_interval: self.schedule_interval()?,
            refresh_ahead_margin: self.refresh_ahead_margin()?,
            failure_backoff: self.seconds("FAILURE_BACKOFF_SECONDS", Duration::from_secs(300))?,
            lease: self.lease()?,
            batch_size,
            list_page: 1_000,
            max_targets_per_run: self.number_at_least("MAX_TARGETS_PER_RUN", 10_000usize, 1)?,
            manual_min_age: self.seconds("MANUAL_MIN_AGE_SECONDS", Duration::from_secs(60))?,
            thresholds: self.fleet_thresholds()?,
            ownership: self.ownership()?,
            refresh_ahead: self.refresh_ahead()?,
        })
    }

    /// Freshness and stale window of every data type: the defaults, overridden
    /// by `FRESHNESS_{TYPE}_SECONDS` and `STALE_WINDOW_{TYPE}_SECONDS` (TYPE as in
    /// `DRS_SOURCE_SERVERS`).
    pub(super) fn ttl_table(&self) -> Result<TtlTable, EnvError> {
        let mut table = TtlTable::default();
        for &t in DataType::ALL {
            let stem = t.env_stem();
            let current = table.policy(t);
            let freshness = format!("FRESHNESS_{stem}_SECONDS");
            let policy = TtlPolicy {
                freshness: Duration::from_secs(self.number_at_least(
                    &freshness,
                    current.freshness.as_secs(),
                    1,
                )?),
                stale_window: self.seconds(
                    &format!("STALE_WINDOW_{stem}_SECONDS"),
                    current.stale_window,
                )?,
            };
            table.set(t, policy);
        }
        Ok(table)
    }

    /// How accounts other than `own` are reached: the role
    /// `CROSS_ACCOUNT_ROLE_NAME` with `CROSS_ACCOUNT_EXTERNAL_ID`.
    pub(super) fn account_access(&self, own: AccountId) -> Result<AccountAccess, EnvError> {
        let external_id = self.optional("CROSS_ACCOUNT_EXTERNAL_ID");
        if external_id.as_ref().is_some_and(|id| id.len() < 2) {
            return Err(EnvError::new(
                "CROSS_ACCOUNT_EXTERNAL_ID",
                "must be at least 2 characters, as STS requires",
            ));
        }
        Ok(AccountAccess {
            own_account: Some(own),
            others: Credentials::AssumeRole {
                role_name: self
                    .optional("CROSS_ACCOUNT_ROLE_NAME")
                    .unwrap_or_else(|| DEFAULT_ROLE_NAME.into()),
                external_id,
                session_name: SESSION_NAME.into(),
            },
        })
    }

    /// Paging and retries of upstream calls: `UPSTREAM_MAX_ATTEMPTS` and
    /// `UPSTREAM_MAX_RETRY_AFTER_SECONDS`.
    pub(super) fn upstream_config(&self) -> Result<UpstreamConfig, EnvError> {
        let d = RetrySettings::default();
        Ok(UpstreamConfig {
            retry: RetrySettings {
                max_attempts: self.number_at_least("UPSTREAM_MAX_ATTEMPTS", d.max_attempts, 1)?,
                max_retry_after: self
                    .seconds("UPSTREAM_MAX_RETRY_AFTER_SECONDS", d.max_retry_after)?,
            },
            timeouts: self.call_timeouts("UPSTREAM", CallTimeouts::UPSTREAM)?,
            ..UpstreamConfig::default()
        })
    }

    /// `{PREFIX}_ATTEMPT_TIMEOUT_MS` and `{PREFIX}_OPERATION_TIMEOUT_MS`, each
    /// at least 1 ms, the attempt's no longer than the operation's.
    pub(super) fn call_timeouts(
        &self,
        prefix: &str,
        defaults: CallTimeouts,
    ) -> Result<CallTimeouts, EnvError> {
        let attempt_var = format!("{prefix}_ATTEMPT_TIMEOUT_MS");
        let operation_var = format!("{prefix}_OPERATION_TIMEOUT_MS");
        let attempt = self.millis(&attempt_var, defaults.attempt)?;
        let operation = self.millis(&operation_var, defaults.operation)?;
        if attempt.is_zero() {
            return Err(EnvError::new(&attempt_var, "must be at least 1"));
        }
        if operation < attempt {
            return Err(EnvError::new(
                &operation_var,
                format!(
                    "must be at least {attempt_var} ({} ms)",
                    attempt.as_millis()
                ),
            ));
        }
        Ok(CallTimeouts { attempt, operation })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::env::tests::env;

    fn home() -> AccountId {
        AccountId::parse("123456789012").unwrap()
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
    fn refresh_ahead_follows_demand_by_default_and_takes_windows_per_type() {
        let ahead = env(&[]).refresh_ahead().unwrap();
        let policy = ahead.demand().unwrap();
        assert_eq!(policy, &DemandPolicy::default());
        let ahead = env(&[
            ("DEMAND_WINDOW_SECONDS", "1800"),
            ("DEMAND_WINDOWS", "drs-jobs=86400, ec2-subnets=600"),
            ("DEMAND_FLOOR_SECONDS", "7200"),
            ("WARM_WINDOW_SECONDS", "3600"),
        ])
        .refresh_ahead()
        .unwrap();
        let policy = ahead.demand().unwrap();
        assert_eq!(
            policy.window(DataType::DrsJobs),
            Duration::from_secs(86_400)
        );
        assert_eq!(
            policy.window(DataType::Ec2Subnets),
            Duration::from_secs(600)
        );
        assert_eq!(
            policy.window(DataType::Ec2SecurityGroups),
            Duration::from_secs(1_800)
        );
        // A type with a window of its own by default keeps it unless named.
        assert_eq!(
            policy.window(DataType::DrsSourceServers),
            Duration::from_secs(900)
        );
        assert_eq!(policy.floor(), Duration::from_secs(7_200));
        assert_eq!(policy.warm_window(), Duration::from_secs(3_600));
        assert_eq!(
            env(&[("REFRESH_AHEAD", "always")]).refresh_ahead().unwrap(),
            RefreshAhead::Always
        );
        for (var, value) in [
            ("REFRESH_AHEAD", "sometimes"),
            ("DEMAND_WINDOW_SECONDS", "30"),
            ("DEMAND_WINDOWS", "drs-jobs=30"),
            ("DEMAND_WINDOWS", "drs-jobz=600"),
            ("DEMAND_WINDOWS", "drs-jobs"),
            ("DEMAND_FLOOR_SECONDS", "10"),
            ("WARM_WINDOW_SECONDS", "0"),
        ] {
            let err = env(&[(var, value)]).refresh_ahead().unwrap_err();
            assert_eq!(err.var, var, "{value}: {err}");
        }
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
    fn the_plan_reads_its_accounts_regions_and_types() {
        let c = env(&[
            ("ACCOUNT_IDS", "123456789012, 210987654321,123456789012"),
            ("REGIONS", "us-east-1,eu-west-1"),
            ("DATA_TYPES", "drs-quotas"),
        ])
        .plan_config(home(), None)
        .unwrap();
        assert_eq!(c.accounts.len(), 2);
        assert_eq!(c.regions.len(), 2);
        assert_eq!(c.data_types, [DataType::DrsQuotas]);
        assert_eq!(c.batch_size, DEFAULT_BATCH_SIZE);
        assert_eq!(c.max_targets_per_run, 10_000);
        assert_eq!(c.manual_min_age, Duration::from_secs(60));
        let err = env(&[]).plan_config(home(), None).unwrap_err();
        assert_eq!(err.var, "REGIONS");
        let defaults = PlanDefaults {
            accounts: vec![home()],
            regions: vec![Region::parse("eu-west-1").unwrap()],
        };
        let c = env(&[])
            .plan_config(home(), Some(defaults.clone()))
            .unwrap();
        assert_eq!(c.regions, defaults.regions);
        let err = env(&[("REGIONS", "us-east-1,mars")])
            .plan_config(home(), Some(defaults))
            .unwrap_err();
        assert_eq!(err.var, "REGIONS");
        assert!(err.reason.contains("\"mars\""), "{err}");
        let err = env(&[("REGIONS", "us-east-1"), ("REFRESH_BATCH_SIZE", "501")])
            .plan_config(home(), None)
            .unwrap_err();
        assert_eq!(err.var, "REFRESH_BATCH_SIZE");
    }

    #[test]
    fn the_refresher_takes_its_limits_from_env_and_names_each_bad_one() {
        let s = env(&[
            ("DRS_MAX_REPLICATING_SERVERS", "100"),
            ("REFRESH_CONCURRENCY", "4"),
        ])
        .refresh_settings(home())
        .unwrap();
        assert_eq!(s.quota_limits.max_replicating(), 100);
        assert_eq!(s.concurrency, 4);
        let var = |pairs: &[(&str, &str)]| env(pairs).refresh_settings(home()).unwrap_err();
        let err = var(&[("QUOTA_WARNING_PERCENT", "95")]);
        assert_eq!(err.var, "QUOTA_WARNING_PERCENT");
        assert!(err.reason.contains("warning <= critical"), "{err}");
        assert_eq!(
            var(&[("QUOTA_CRITICAL_PERCENT", "101")]).var,
            "QUOTA_CRITICAL_PERCENT"
        );
        assert_eq!(
            var(&[("REFRESH_CONCURRENCY", "0")]).var,
            "REFRESH_CONCURRENCY"
        );
        assert_eq!(
            var(&[("DRS_MAX_REPLICATING_SERVERS", "0")]).var,
            "DRS_MAX_REPLICATING_SERVERS"
        );
        assert_eq!(
            var(&[("DRS_MAX_SOURCE_SERVERS", "x")]).var,
            "DRS_MAX_SOURCE_SERVERS"
        );
    }

    #[test]
    fn upstream_attempts_and_the_external_id_are_checked() {
        let err = env(&[("UPSTREAM_MAX_ATTEMPTS", "0")])
            .upstream_config()
            .unwrap_err();
        assert_eq!(err.var, "UPSTREAM_MAX_ATTEMPTS");
        let err = env(&[("CROSS_ACCOUNT_EXTERNAL_ID", "x")])
            .account_access(home())
            .unwrap_err();
        assert_eq!(err.var, "CROSS_ACCOUNT_EXTERNAL_ID");
    }
}
