//! The local mode's configuration (`drs-cache serve`, `drs-cache refresh`):
//! where entries live, how the reader behaves, and what refreshes them: the
//! deployed workflow when `REFRESH_STATE_MACHINE_ARN` names one, otherwise the
//! planner and refresher in process against the fleet simulator.

use std::{path::PathBuf, time::Duration};

use drs_sim::SimConfig;

use crate::{
    adapters::aws::{AccountAccess, Credentials, StaticKeys, UpstreamConfig},
    domain::{AccountId, DataType, RefreshAhead, Region, TtlPolicy},
    plan::PlanConfig,
    read::ReaderSettings,
    refresh::RefreshSettings,
};

use super::{Env, EnvError, PlanDefaults, TARGETS_STATE_MACHINE_ARN};

/// The cache table name when `CACHE_TABLE_NAME` is unset.
pub const DEFAULT_TABLE: &str = "drs-cache";
/// The embedded store file when `EMBEDDED_STORE_PATH` is unset.
pub const DEFAULT_EMBEDDED_PATH: &str = "drs-cache.redb";
/// Batches refreshing at once when `MAP_MAX_CONCURRENCY` is unset.
pub const DEFAULT_MAP_CONCURRENCY: usize = 8;
/// The region refreshed when `REGIONS` is unset.
pub const LOCAL_REGION: &str = "us-east-1";

/// Which store a command names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreKind {
    Embedded,
    Dynamodb,
}

/// Where cache entries live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreChoice {
    /// A file of the embedded store.
    Embedded(PathBuf),
    /// A DynamoDB table on the endpoint the AWS configuration names.
    DynamoDb { table: String },
}

/// What refreshes the cache the local reader serves.
#[derive(Debug, Clone)]
pub enum RefreshSide {
    /// Reads ask the deployed workflow.
    Workflow {
        state_machine_arn: String,
        /// `REFRESH_TARGETS_STATE_MACHINE_ARN`: where a read's refresh runs,
        /// when the deployment has the targets workflow.
        targets_state_machine_arn: Option<String>,
    },
    /// The workflow's steps run in this process.
    InProcess(Box<LocalRefreshConfig>),
}

/// What the in-process refresher reads.
#[derive(Debug, Clone)]
pub enum RefreshSource {
    /// The fleet simulator, started in process: a file's (`--fleet`) or a
    /// built-in fleet, with the key [`local_key`] of `home` mapped to it.
    Simulator(Box<SimConfig>),
    /// The AWS account of the caller's credentials, and the accounts its
    /// cross-account role reaches.
    Aws,
}

/// The workflow's steps in process, against the fleet simulator or AWS.
#[derive(Debug, Clone)]
pub struct LocalRefreshConfig {
    pub source: RefreshSource,
    /// The deployment's account: `DEPLOYMENT_ACCOUNT_ID`, else the
    /// simulator's default account.
    pub home: AccountId,
    /// `home` with the local key; every other account of the fleet with its
    /// key from the fleet's map.
    pub access: AccountAccess,
    /// Every account the fleet has keys for, unless `ACCOUNT_IDS` says
    /// otherwise; `REGIONS` defaults to `us-east-1`.
    pub plan: PlanConfig,
    pub settings: RefreshSettings,
    pub upstream: UpstreamConfig,
    /// Batches refreshing at once (`MAP_MAX_CONCURRENCY`, as the workflow's Map).
    pub map_concurrency: usize,
}

/// `drs-cache serve`: where entries live, how the reader behaves, what
/// refreshes them.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    pub store: StoreChoice,
    pub reader: ReaderSettings,
    pub refresh: RefreshSide,
}

/// `drs-cache refresh`: where entries live and the workflow's steps in
/// process (it serves no reads).
#[derive(Debug, Clone)]
pub struct RefreshRunConfig {
    pub store: StoreChoice,
    pub refresh: LocalRefreshConfig,
}

/// What a local command was given on its command line.
#[derive(Debug, Clone, Default)]
pub struct LocalArgs {
    pub store: Option<StoreKind>,
    /// Embedded store file (else `EMBEDDED_STORE_PATH`, else the default).
    pub path: Option<PathBuf>,
    /// DynamoDB table (else `CACHE_TABLE_NAME`, else the default).
    pub table: Option<String>,
    /// Fleet simulator configuration (JSON).
    pub fleet: Option<PathBuf>,
    /// Simulated data may be written into a DynamoDB table with no emulator
    /// endpoint set.
    pub allow_simulated_data: bool,
    /// Without a fleet file, simulate the demo fleet ([`DEMO_FLEET`]) rather
    /// than the simulator's default one.
    pub demo_fleet: bool,
    /// Refresh from AWS with the caller's credentials instead of the simulator.
    pub aws: bool,
}

/// The fleet `drs-cache local` simulates without `--fleet`: three accounts in
/// two regions, a few hundred source servers each.
pub const DEMO_FLEET: &str = include_str!("demo-fleet.json");

#[derive(Debug, thiserror::Error)]
pub enum LocalConfigError {
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error("cannot read the fleet configuration {}", path.display())]
    FleetFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the fleet configuration {} is not valid", path.display())]
    Fleet {
        path: PathBuf,
        #[source]
        source: drs_sim::ConfigError,
    },
    /// The in-process refresher reads the fleet simulator: its data must not
    /// supersede a real deployment's.
    #[error(
        "refusing to write simulated fleet data into the DynamoDB table {table}: no emulator \
         endpoint is set (AWS_ENDPOINT_URL_DYNAMODB or AWS_ENDPOINT_URL), so it may be a real \
         deployment's table, whose entries the simulated ones would replace; set \
         REFRESH_STATE_MACHINE_ARN to serve a deployment, point AWS_ENDPOINT_URL at an emulator, \
         or pass --allow-simulated-data"
    )]
    SimulatedIntoRealTable { table: String },
    /// The simulator and the cache both take twelve digits: a defect if seen.
    #[error("account {0} is not one both the simulator and the cache take")]
    Account(String),
}

/// The secret of every key the local mode signs with; the simulator checks none.
pub const LOCAL_SECRET: &str = "local";

/// The access key the local mode signs with for `account`.
pub fn local_key(account: &AccountId) -> String {
    format!("LOCAL{account}")
}

fn cache_account(account: &drs_sim::AccountId) -> Result<AccountId, LocalConfigError> {
    AccountId::parse(account.as_str()).map_err(|_| LocalConfigError::Account(account.to_string()))
}

fn fleet_account(account: &AccountId) -> Result<drs_sim::AccountId, LocalConfigError> {
    drs_sim::AccountId::parse(account.as_str())
        .map_err(|_| LocalConfigError::Account(account.to_string()))
}

impl LocalConfig {
    /// `drs-cache local`: always the refresher in process, whatever
    /// `REFRESH_STATE_MACHINE_ARN` says.
    /// The store is in the same process, so a memory copy need not outlive a
    /// second unless `MEMORY_TTL_SECONDS` and `STALE_RECHECK_SECONDS` say
    /// otherwise.
    pub fn in_process(args: &LocalArgs) -> Result<Self, LocalConfigError> {
        let env = Env::process();
        let mut config = Self::of(&env, args, None)?;
        if env.optional("MEMORY_TTL_SECONDS").is_none() {
            config.reader.memory_ttl = Duration::from_secs(1);
        }
        if env.optional("STALE_RECHECK_SECONDS").is_none() {
            config.reader.stale_recheck = Duration::from_secs(1);
        }
        Ok(config)
    }

    pub fn from_vars<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        args: &LocalArgs,
    ) -> Result<Self, LocalConfigError> {
        Self::of(env, args, env.optional("REFRESH_STATE_MACHINE_ARN"))
    }

    fn of<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        args: &LocalArgs,
        workflow: Option<String>,
    ) -> Result<Self, LocalConfigError> {
        let mut reader = env.reader_settings()?;
        let refresh = match workflow {
            Some(state_machine_arn) => {
                // A deployment's targets when REGIONS names them; else every
                // target is read.
                if env.optional("REGIONS").is_some() {
                    let targets = env.targets(reader.default_account, None)?;
                    reader.kept = Some(targets.kept());
                    reader.capacity_key = targets.capacity_key();
                }
                RefreshSide::Workflow {
                    state_machine_arn,
                    targets_state_machine_arn: env.optional(TARGETS_STATE_MACHINE_ARN),
                }
            }
            None => {
                let local = LocalRefreshConfig::from_vars(env, args)?;
                reader.default_account.get_or_insert(local.home);
                reader.kept = Some(local.plan.kept());
                reader.capacity_key = local.plan.capacity_key();
                RefreshSide::InProcess(Box::new(local))
            }
        };
        let store = store_choice(env, args);
        if matches!(&refresh, RefreshSide::InProcess(l) if matches!(l.source, RefreshSource::Simulator(_)))
        {
            simulated_data_allowed(env, &store, args)?;
        }
        Ok(Self {
            store,
            reader,
            refresh,
        })
    }
}

impl RefreshRunConfig {
    /// Always the local refresher, whatever `REFRESH_STATE_MACHINE_ARN` says.
    pub fn from_env(args: &LocalArgs) -> Result<Self, LocalConfigError> {
        Self::from_vars(&Env::process(), args)
    }

    pub fn from_vars<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        args: &LocalArgs,
    ) -> Result<Self, LocalConfigError> {
        let store = store_choice(env, args);
        if !args.aws {
            simulated_data_allowed(env, &store, args)?;
        }
        Ok(Self {
            store,
            refresh: LocalRefreshConfig::from_vars(env, args)?,
        })
    }
}

/// Simulated data goes into the embedded store, a table on an emulator, or a
/// table the caller explicitly allows.
fn simulated_data_allowed<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    store: &StoreChoice,
    args: &LocalArgs,
) -> Result<(), LocalConfigError> {
    let StoreChoice::DynamoDb { table } = store else {
        return Ok(());
    };
    let emulated = ["AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL"]
        .iter()
        .any(|var| env.optional(var).is_some());
    if emulated || args.allow_simulated_data {
        Ok(())
    } else {
        Err(LocalConfigError::SimulatedIntoRealTable {
            table: table.clone(),
        })
    }
}

/// The table `CACHE_TABLE_NAME` names, else the default.
pub fn table_name<F: Fn(&str) -> Option<String>>(env: &Env<F>, given: Option<String>) -> String {
    given
        .or_else(|| env.optional("CACHE_TABLE_NAME"))
        .unwrap_or_else(|| DEFAULT_TABLE.into())
}

fn store_choice<F: Fn(&str) -> Option<String>>(env: &Env<F>, args: &LocalArgs) -> StoreChoice {
    match args.store.unwrap_or(StoreKind::Embedded) {
        StoreKind::Embedded => StoreChoice::Embedded(args.path.clone().unwrap_or_else(|| {
            env.optional("EMBEDDED_STORE_PATH")
                .unwrap_or_else(|| DEFAULT_EMBEDDED_PATH.into())
                .into()
        })),
        StoreKind::Dynamodb => StoreChoice::DynamoDb {
            table: table_name(env, args.table.clone()),
        },
    }
}

impl LocalRefreshConfig {
    fn from_vars<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        args: &LocalArgs,
    ) -> Result<Self, LocalConfigError> {
        if args.aws {
            return Self::of_aws(env);
        }
        let mut fleet = match (&args.fleet, args.demo_fleet) {
            (Some(path), _) => {
                let text = std::fs::read_to_string(path).map_err(|source| {
                    LocalConfigError::FleetFile {
                        path: path.clone(),
                        source,
                    }
                })?;
                SimConfig::from_json(&text).map_err(|source| LocalConfigError::Fleet {
                    path: path.clone(),
                    source,
                })?
            }
            (None, true) => {
                SimConfig::from_json(DEMO_FLEET).map_err(|source| LocalConfigError::Fleet {
                    path: "(the built-in demo fleet)".into(),
                    source,
                })?
            }
            (None, false) => SimConfig::default(),
        };
        let home = match env.deployment_account()? {
            Some(account) => account,
            None => cache_account(&fleet.default_account)?,
        };
        fleet
            .access_keys
            .insert(local_key(&home), fleet_account(&home)?);
        let mut accounts = vec![home];
        let mut others = std::collections::HashMap::new();
        for (key, account) in &fleet.access_keys {
            let account = cache_account(account)?;
            if !accounts.contains(&account) {
                accounts.push(account);
            }
            others.insert(account, StaticKeys::new(key.clone(), LOCAL_SECRET));
        }
        // The regions the fleet's overrides name, in order; else the local one.
        let mut regions: Vec<Region> = Vec::new();
        for name in fleet
            .fleets
            .iter()
            .map(|f| f.region.as_str())
            .chain((fleet.fleets.is_empty()).then_some(LOCAL_REGION))
        {
            let region = Region::parse(name).map_err(|e| EnvError::new("REGIONS", e.reason))?;
            if !regions.contains(&region) {
                regions.push(region);
            }
        }
        let defaults = PlanDefaults { accounts, regions };
        let mut settings = env.refresh_settings(home)?;
        settings.jobs_window += since_simulated_epoch();
        Ok(Self {
            plan: env.plan_config(home, Some(defaults))?,
            settings,
            upstream: env.upstream_config()?,
            map_concurrency: map_concurrency(env)?,
            source: RefreshSource::Simulator(Box::new(fleet)),
            home,
            access: AccountAccess {
                own_account: Some(home),
                others: Credentials::Static(others),
            },
        })
    }

    /// AWS with the caller's credentials: `DEPLOYMENT_ACCOUNT_ID` (the
    /// credentials' account), `REGIONS` (else `AWS_REGION`), `ACCOUNT_IDS`
    /// and the cross-account role, as the deployed refresher reads them.
    fn of_aws<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, LocalConfigError> {
        let home = env.deployment_account()?.ok_or_else(|| {
            EnvError::new(
                "DEPLOYMENT_ACCOUNT_ID",
                "must name the account of your AWS credentials (aws sts get-caller-identity) to refresh from AWS",
            )
        })?;
        let defaults = match env.optional("REGIONS") {
            Some(_) => None,
            None => {
                let region = env.optional("AWS_REGION").ok_or_else(|| {
                    EnvError::new("REGIONS", "must be set (or AWS_REGION) to refresh from AWS")
                })?;
                Some(PlanDefaults {
                    accounts: vec![home],
                    regions: vec![
                        Region::parse(&region)
                            .map_err(|e| EnvError::new("AWS_REGION", e.reason))?,
                    ],
                })
            }
        };
        Ok(Self {
            plan: env.plan_config(home, defaults)?,
            settings: env.refresh_settings(home)?,
            upstream: env.upstream_config()?,
            map_concurrency: map_concurrency(env)?,
            source: RefreshSource::Aws,
            home,
            access: env.account_access(home)?,
        })
    }

    /// Runs `scale` times faster: every freshness, stale window, tick, margin
    /// and backoff divided by `scale` (at least a second each), so a demo shows
    /// expiry and refresh-ahead within minutes.
    pub fn scale_time(&mut self, scale: u32) {
        let by = |d: Duration| (d / scale.max(1)).max(Duration::from_secs(1));
        for &t in DataType::ALL {
            let p = self.settings.ttl.policy(t);
            self.settings.ttl.set(
                t,
                TtlPolicy {
                    freshness: by(p.freshness),
                    stale_window: by(p.stale_window),
                },
            );
        }
        let plan = &mut self.plan;
        plan.schedule_interval = by(plan.schedule_interval);
        plan.refresh_ahead_margin = by(plan.refresh_ahead_margin);
        plan.failure_backoff = by(plan.failure_backoff);
        plan.manual_min_age = by(plan.manual_min_age);
        if let RefreshAhead::OnDemand(policy) = &plan.refresh_ahead {
            plan.refresh_ahead = RefreshAhead::OnDemand(policy.scaled(scale));
        }
    }
}

/// How long ago the simulator's clock stands: its dates count from a fixed
/// epoch, so the jobs window reaches back that much further to hold the
/// simulated jobs the configured window would hold of a real fleet.
fn since_simulated_epoch() -> std::time::Duration {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let epoch = std::time::Duration::from_secs(drs_sim::EPOCH_UNIX_SECS.unsigned_abs());
    now.saturating_sub(epoch)
}

fn map_concurrency<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<usize, EnvError> {
    env.number_at_least("MAP_MAX_CONCURRENCY", DEFAULT_MAP_CONCURRENCY, 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::env::tests::env;

    #[test]
    fn without_a_workflow_the_fleet_is_refreshed_in_process_for_its_accounts() {
        let c = LocalConfig::from_vars(&env(&[]), &LocalArgs::default()).unwrap();
        assert_eq!(c.store, StoreChoice::Embedded(DEFAULT_EMBEDDED_PATH.into()));
        let RefreshSide::InProcess(local) = &c.refresh else {
            panic!("{:?}", c.refresh)
        };
        assert_eq!(c.reader.default_account, Some(local.home));
        let home_key = local_key(&local.home);
        let RefreshSource::Simulator(fleet) = &local.source else {
            panic!("{:?}", local.source)
        };
        assert_eq!(fleet.access_keys[&home_key].as_str(), local.home.as_str());
        assert_eq!(local.plan.accounts[0], local.home);
        assert_eq!(local.plan.regions[0].as_str(), LOCAL_REGION);
        assert_eq!(local.map_concurrency, DEFAULT_MAP_CONCURRENCY);
    }

    #[test]
    fn serve_asks_the_workflow_when_one_is_named_and_a_one_off_run_never_does() {
        let e = env(&[
            (
                "REFRESH_STATE_MACHINE_ARN",
                "arn:aws:states:us-east-1:123456789012:stateMachine:r",
            ),
            ("CACHE_TABLE_NAME", "cache"),
        ]);
        let args = LocalArgs {
            store: Some(StoreKind::Dynamodb),
            ..LocalArgs::default()
        };
        let serve = LocalConfig::from_vars(&e, &args).unwrap();
        assert!(matches!(serve.refresh, RefreshSide::Workflow { .. }));
        assert_eq!(
            serve.store,
            StoreChoice::DynamoDb {
                table: "cache".into()
            }
        );
        // A one-off run writes simulated data: only into a table on an emulator.
        let emulated = env(&[
            ("CACHE_TABLE_NAME", "cache"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
        ]);
        let refresh = RefreshRunConfig::from_vars(&emulated, &args).unwrap();
        assert_eq!(refresh.store, serve.store);
        assert_eq!(refresh.refresh.plan.regions[0].as_str(), LOCAL_REGION);
    }

    #[test]
    fn simulated_data_goes_into_a_dynamodb_table_only_on_an_emulator_or_when_allowed() {
        let dynamodb = LocalArgs {
            store: Some(StoreKind::Dynamodb),
            ..LocalArgs::default()
        };
        let real = env(&[("CACHE_TABLE_NAME", "prod-cache")]);
        for err in [
            LocalConfig::from_vars(&real, &dynamodb).map(drop),
            RefreshRunConfig::from_vars(&real, &dynamodb).map(drop),
        ] {
            let err = err.unwrap_err();
            assert!(
                matches!(&err, LocalConfigError::SimulatedIntoRealTable { table } if table == "prod-cache"),
                "{err}"
            );
            assert!(err.to_string().contains("--allow-simulated-data"), "{err}");
        }
        let only_dynamodb = env(&[
            ("CACHE_TABLE_NAME", "prod-cache"),
            ("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8000"),
        ]);
        assert!(RefreshRunConfig::from_vars(&only_dynamodb, &dynamodb).is_ok());
        let allowed = LocalArgs {
            allow_simulated_data: true,
            ..dynamodb
        };
        assert!(LocalConfig::from_vars(&real, &allowed).is_ok());
        // The embedded store holds only what the local mode writes.
        assert!(RefreshRunConfig::from_vars(&real, &LocalArgs::default()).is_ok());
    }

    #[test]
    fn a_bad_fleet_file_or_variable_is_named() {
        let args = LocalArgs {
            fleet: Some("/nonexistent/fleet.json".into()),
            ..LocalArgs::default()
        };
        let err = RefreshRunConfig::from_vars(&env(&[]), &args).unwrap_err();
        assert!(matches!(err, LocalConfigError::FleetFile { .. }), "{err}");
        let err = RefreshRunConfig::from_vars(
            &env(&[("MAP_MAX_CONCURRENCY", "0")]),
            &LocalArgs::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("MAP_MAX_CONCURRENCY"), "{err}");
        // A one-off run serves no reads, so the reader's variables are not read.
        let ok = RefreshRunConfig::from_vars(
            &env(&[("MEMORY_TTL_SECONDS", "soon")]),
            &LocalArgs::default(),
        );
        assert!(ok.is_ok(), "{ok:?}");
    }
}
