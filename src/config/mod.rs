//! Typed configuration, read once at start-up from environment variables: one
//! struct per binary, each built by its `from_vars` (from the process
//! environment, with its account list object read in where one is named:
//! `app::Aws::environment`) and holding everything the binary needs, or an
//! error naming the variable at fault. Nothing else in the
//! crate reads the environment (the log filter set-up aside).

mod account_list;
mod env;
#[cfg(feature = "local")]
mod local;
mod parts;

use std::time::Duration;

use crate::{
    adapters::aws::{AccountAccess, CallTimeouts, UpstreamConfig},
    domain::Ownership,
    plan::PlanConfig,
    read::ReaderSettings,
    refresh::RefreshSettings,
};

pub use account_list::{
    ACCOUNT_LIST_URI, AccountListUri, MAX_ACCOUNT_LIST_BYTES, parse_account_list, read_account_list,
};
pub use env::{Env, EnvError};
#[cfg(feature = "local")]
pub use local::{
    DEMO_FLEET, LOCAL_REGION, LOCAL_SECRET, LocalArgs, LocalConfig, LocalConfigError,
    LocalRefreshConfig, RefreshRunConfig, RefreshSide, RefreshSource, StoreChoice, StoreKind,
    local_key, table_name,
};
pub use parts::{DEFAULT_BATCH_SIZE, DEFAULT_LEASE, DEFAULT_REFRESH_CONCURRENCY, PlanDefaults};

/// The role assumed in other accounts when `CROSS_ACCOUNT_ROLE_NAME` is unset.
pub const DEFAULT_ROLE_NAME: &str = "drs-cache-reader";
/// The STS session name of assumed roles.
pub const SESSION_NAME: &str = "drs-cache-refresher";
/// Requests for one target within this window start one workflow execution.
pub const REFRESH_REQUEST_WINDOW: Duration = Duration::from_secs(60);

/// The EXPRESS targets workflow a read's or a follow-up's exact targets run
/// on; without it they run on the refresh workflow.
pub const TARGETS_STATE_MACHINE_ARN: &str = "REFRESH_TARGETS_STATE_MACHINE_ARN";

/// The `reader` function: `CACHE_TABLE_NAME`, `REFRESH_STATE_MACHINE_ARN` and
/// `REGIONS` (all required), `REFRESH_TARGETS_STATE_MACHINE_ARN`, the targets
/// kept (`ACCOUNT_IDS`, `DATA_TYPES`, as the planner reads them) and the
/// reader's settings.
#[derive(Debug, Clone)]
pub struct ReaderConfig {
    pub table: String,
    /// Each cache table call (`STORE_ATTEMPT_TIMEOUT_MS`,
    /// `STORE_OPERATION_TIMEOUT_MS`); a read also gives up after the reader's
    /// `STORE_TIMEOUT_MS`.
    pub store_timeouts: CallTimeouts,
    pub state_machine_arn: String,
    /// Where a read's refresh runs, when the deployment has the targets
    /// workflow.
    pub targets_state_machine_arn: Option<String>,
    pub settings: ReaderSettings,
}

impl ReaderConfig {
    pub fn from_vars<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, EnvError> {
        let table = env.required("CACHE_TABLE_NAME")?;
        let state_machine_arn = env.required("REFRESH_STATE_MACHINE_ARN")?;
        let mut settings = env.reader_settings()?;
        let targets = env.targets(settings.default_account, None)?;
        settings.kept = Some(targets.kept());
        settings.capacity_key = targets.capacity_key();
        Ok(Self {
            table,
            store_timeouts: env.call_timeouts("STORE", CallTimeouts::STORE)?,
            state_machine_arn,
            targets_state_machine_arn: env.optional(TARGETS_STATE_MACHINE_ARN),
            settings,
        })
    }
}

/// The `planner` function: `CACHE_TABLE_NAME`, `PLAN_BUCKET` and
/// `DEPLOYMENT_ACCOUNT_ID` (all required) and what it plans over.
#[derive(Debug, Clone)]
pub struct PlannerConfig {
    pub table: String,
    /// Each cache table call (`STORE_ATTEMPT_TIMEOUT_MS`, `STORE_OPERATION_TIMEOUT_MS`).
    pub store_timeouts: CallTimeouts,
    /// The bucket plan objects are written to.
    pub plan_bucket: String,
    pub plan: PlanConfig,
}

impl PlannerConfig {
    pub fn from_vars<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, EnvError> {
        Ok(Self {
            table: env.required("CACHE_TABLE_NAME")?,
            store_timeouts: env.call_timeouts("STORE", CallTimeouts::STORE)?,
            plan_bucket: env.required("PLAN_BUCKET")?,
            plan: env.plan_config(home_account(env)?, None)?,
        })
    }
}

/// The `refresher` function: `CACHE_TABLE_NAME`, `REFRESH_STATE_MACHINE_ARN`
/// (where follow-up runs start, or `REFRESH_TARGETS_STATE_MACHINE_ARN` where
/// set) and `DEPLOYMENT_ACCOUNT_ID` (all required),
/// its settings, how it reaches other accounts and how it pages and retries
/// upstream.
#[derive(Debug, Clone)]
pub struct RefresherConfig {
    pub table: String,
    pub state_machine_arn: String,
    /// Where follow-up runs start, when the deployment has the targets
    /// workflow.
    pub targets_state_machine_arn: Option<String>,
    /// Each cache table call (`STORE_ATTEMPT_TIMEOUT_MS`, `STORE_OPERATION_TIMEOUT_MS`).
    pub store_timeouts: CallTimeouts,
    pub settings: RefreshSettings,
    pub access: AccountAccess,
    pub upstream: UpstreamConfig,
    /// Whose leases the refresher takes (see [`crate::domain::Ownership`]).
    pub ownership: Ownership,
    /// `CHANGE_EVENT_BUS`: the event bus change events are published to;
    /// `None`: none are.
    pub change_bus: Option<String>,
}

impl RefresherConfig {
    pub fn from_env() -> Result<Self, EnvError> {
        Self::from_vars(&Env::process())
    }

    pub fn from_vars<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, EnvError> {
        let home = home_account(env)?;
        Ok(Self {
            table: env.required("CACHE_TABLE_NAME")?,
            state_machine_arn: env.required("REFRESH_STATE_MACHINE_ARN")?,
            targets_state_machine_arn: env.optional(TARGETS_STATE_MACHINE_ARN),
            store_timeouts: env.call_timeouts("STORE", CallTimeouts::STORE)?,
            settings: env.refresh_settings(home)?,
            access: env.account_access(home)?,
            upstream: env.upstream_config()?,
            ownership: env.ownership()?,
            change_bus: env
                .optional("CHANGE_EVENT_BUS")
                .map(|b| b.trim().to_owned()),
        })
    }
}

/// `DEPLOYMENT_ACCOUNT_ID`, which the refresh side requires.
fn home_account<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
) -> Result<crate::domain::AccountId, EnvError> {
    env.deployment_account()?
        .ok_or_else(|| EnvError::new("DEPLOYMENT_ACCOUNT_ID", "is required"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::env::tests::env;

    #[test]
    fn each_function_names_the_variable_it_misses() {
        let missing = |result: Result<(), EnvError>| result.unwrap_err().var;
        let table = [("CACHE_TABLE_NAME", "t")];
        assert_eq!(
            missing(ReaderConfig::from_vars(&env(&[])).map(drop)),
            "CACHE_TABLE_NAME"
        );
        assert_eq!(
            missing(ReaderConfig::from_vars(&env(&table)).map(drop)),
            "REFRESH_STATE_MACHINE_ARN"
        );
        let reader = [
            ("CACHE_TABLE_NAME", "t"),
            (
                "REFRESH_STATE_MACHINE_ARN",
                "arn:aws:states:us-east-1:1:stateMachine:r",
            ),
        ];
        assert_eq!(
            missing(ReaderConfig::from_vars(&env(&reader)).map(drop)),
            "ACCOUNT_IDS"
        );
        assert_eq!(
            missing(RefresherConfig::from_vars(&env(&table)).map(drop)),
            "DEPLOYMENT_ACCOUNT_ID"
        );
        let planner = [
            ("CACHE_TABLE_NAME", "t"),
            ("DEPLOYMENT_ACCOUNT_ID", "123456789012"),
        ];
        assert_eq!(
            missing(PlannerConfig::from_vars(&env(&planner)).map(drop)),
            "PLAN_BUCKET"
        );
        let planner = [
            ("CACHE_TABLE_NAME", "t"),
            ("PLAN_BUCKET", "plans"),
            ("DEPLOYMENT_ACCOUNT_ID", "123456789012"),
        ];
        assert_eq!(
            missing(PlannerConfig::from_vars(&env(&planner)).map(drop)),
            "REGIONS"
        );
    }

    const MACHINE: &str =
        "arn:aws:states:us-east-1:123456789012:stateMachine:drs-cache-refresh-dev";

    #[test]
    fn leases_outlast_the_refresher_and_rounds_are_bounded() {
        let base = [
            ("CACHE_TABLE_NAME", "t"),
            ("DEPLOYMENT_ACCOUNT_ID", "123456789012"),
            ("REFRESH_STATE_MACHINE_ARN", MACHINE),
            ("PLAN_BUCKET", "plans"),
            ("REGIONS", "us-east-1"),
        ];
        let c = RefresherConfig::from_vars(&env(&base)).unwrap();
        assert_eq!(c.settings.lease, Duration::from_secs(360));
        assert_eq!(c.settings.retry.rounds, 3);
        assert_eq!(c.settings.retry.first_wait, Duration::from_secs(5));
        let p = PlannerConfig::from_vars(&env(&base)).unwrap();
        assert_eq!(p.plan.lease, c.settings.lease, "one LEASE_SECONDS for both");
        for (var, value) in [
            ("LEASE_SECONDS", "30"),
            ("REFRESH_ROUNDS", "0"),
            ("REFRESH_ROUNDS", "11"),
            ("RETRY_WAIT_SECONDS", "soon"),
        ] {
            let mut vars = base.to_vec();
            vars.push((var, value));
            let e = RefresherConfig::from_vars(&env(&vars)).unwrap_err();
            assert_eq!(e.var, var, "{value}");
        }
        let mut vars = base.to_vec();
        vars.push(("LEASE_SECONDS", "30"));
        assert_eq!(
            PlannerConfig::from_vars(&env(&vars)).unwrap_err().var,
            "LEASE_SECONDS"
        );
    }

    #[test]
    fn ownership_comes_from_the_deployment_region_and_the_owner_map() {
        let base = [
            ("CACHE_TABLE_NAME", "t"),
            ("DEPLOYMENT_ACCOUNT_ID", "123456789012"),
            ("REFRESH_STATE_MACHINE_ARN", MACHINE),
            ("PLAN_BUCKET", "plans"),
            ("REGIONS", "us-east-1,eu-west-1,ap-south-1"),
        ];
        let p = PlannerConfig::from_vars(&env(&base)).unwrap();
        assert_eq!(p.plan.ownership, Ownership::Sole);
        assert_eq!(p.plan.owned_regions().len(), 3);
        let mut vars = base.to_vec();
        vars.push(("DEPLOYMENT_REGION", "eu-west-1"));
        vars.push(("REGION_OWNERS", "ap-south-1=eu-west-1"));
        let p = PlannerConfig::from_vars(&env(&vars)).unwrap();
        let owned: Vec<String> = p
            .plan
            .owned_regions()
            .iter()
            .map(|r| r.to_string())
            .collect();
        assert_eq!(owned, ["eu-west-1", "ap-south-1"]);
        let r = RefresherConfig::from_vars(&env(&vars)).unwrap();
        assert_eq!(r.ownership, p.plan.ownership, "one map for every function");
        let reader = ReaderConfig::from_vars(&env(&vars)).unwrap();
        assert_eq!(reader.settings.ownership, p.plan.ownership);
        for (var, value, named) in [
            ("DEPLOYMENT_REGION", "mars", "DEPLOYMENT_REGION"),
            ("REGION_OWNERS", "ap-south-1", "REGION_OWNERS"),
        ] {
            let mut bad = vars.clone();
            bad.retain(|(v, _)| *v != var);
            bad.push((var, value));
            let e = PlannerConfig::from_vars(&env(&bad)).unwrap_err();
            assert_eq!(e.var, named, "{value}");
        }
        let mut alone = base.to_vec();
        alone.push(("REGION_OWNERS", "ap-south-1=eu-west-1"));
        let e = PlannerConfig::from_vars(&env(&alone)).unwrap_err();
        assert_eq!(e.var, "REGION_OWNERS");
        assert!(e.reason.contains("DEPLOYMENT_REGION"), "{e}");
    }

    #[test]
    fn call_timeouts_default_and_a_bad_pair_is_named() {
        let base = [
            ("CACHE_TABLE_NAME", "t"),
            ("DEPLOYMENT_ACCOUNT_ID", "123456789012"),
            ("REFRESH_STATE_MACHINE_ARN", MACHINE),
        ];
        let c = RefresherConfig::from_vars(&env(&base)).unwrap();
        assert_eq!(c.store_timeouts, CallTimeouts::STORE);
        assert_eq!(c.upstream.timeouts, CallTimeouts::UPSTREAM);
        let mut vars = base.to_vec();
        vars.push(("UPSTREAM_ATTEMPT_TIMEOUT_MS", "5000"));
        vars.push(("UPSTREAM_OPERATION_TIMEOUT_MS", "1000"));
        let e = RefresherConfig::from_vars(&env(&vars)).unwrap_err();
        assert_eq!(e.var, "UPSTREAM_OPERATION_TIMEOUT_MS");
        let mut vars = base.to_vec();
        vars.push(("STORE_ATTEMPT_TIMEOUT_MS", "0"));
        let e = RefresherConfig::from_vars(&env(&vars)).unwrap_err();
        assert_eq!(e.var, "STORE_ATTEMPT_TIMEOUT_MS");
    }

    #[test]
    fn the_refresher_reaches_other_accounts_through_the_named_role() {
        let vars = [
            ("CACHE_TABLE_NAME", "t"),
            ("DEPLOYMENT_ACCOUNT_ID", "123456789012"),
            ("REFRESH_STATE_MACHINE_ARN", MACHINE),
            ("CROSS_ACCOUNT_ROLE_NAME", "reader"),
        ];
        let e = RefresherConfig::from_vars(&env(&vars[..2])).unwrap_err();
        assert_eq!(
            e.var, "REFRESH_STATE_MACHINE_ARN",
            "follow-up runs need the workflow"
        );
        let c = RefresherConfig::from_vars(&env(&vars)).unwrap();
        assert_eq!(c.state_machine_arn, MACHINE);
        assert_eq!(c.settings.home_account.as_str(), "123456789012");
        assert_eq!(c.access.own_account, Some(c.settings.home_account));
        let crate::adapters::aws::Credentials::AssumeRole { role_name, .. } = &c.access.others
        else {
            panic!("{:?}", c.access.others)
        };
        assert_eq!(role_name, "reader");
    }
}
