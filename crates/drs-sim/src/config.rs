//! The simulator's configuration: seed, fleets, caller accounts and faults. It is
//! JSON (`GET`/`PUT /_sim/config`, `drs-sim --config`), and every bad value is
//! reported with the path of the field that holds it.

use std::{collections::BTreeMap, time::Duration};

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::{Map, Value};

use crate::ids::{AccountId, Region};

/// The account moto and the simulator use when nothing else names one.
pub const DEFAULT_ACCOUNT: &str = "123456789012";
/// The largest page any operation serves, whatever the caller asks for.
pub const MAX_PAGE_SIZE: u32 = 1_000;
/// The most servers one (account, region) may hold.
const MAX_SERVERS: u32 = 100_000;
/// The most subnets, security groups or instance profiles one fleet may hold.
const MAX_RESOURCES: u32 = 10_000;

/// Everything the simulator serves and how it misbehaves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    /// All generated data derives from this seed.
    pub seed: u64,
    /// The account of a caller whose access key is neither mapped nor known to STS.
    pub default_account: AccountId,
    /// Access key ID to account: how the simulator knows the caller's account.
    pub access_keys: BTreeMap<String, AccountId>,
    /// A moto server URL: unknown access keys are resolved there with
    /// `GetCallerIdentity` (once per key).
    pub sts_endpoint: Option<String>,
    /// A server-side cap on every page, on top of what the caller asks for.
    pub max_page_size: u32,
    /// The size of every fleet that `fleets` does not override.
    pub defaults: FleetSize,
    /// Per (account, region) overrides: sizes and generation.
    pub fleets: Vec<FleetConfig>,
    /// Per account overrides: instance profiles (IAM is global).
    pub accounts: Vec<AccountConfig>,
    pub faults: Faults,
}

/// How many resources a fleet holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FleetSize {
    /// DRS source servers per (account, region).
    pub servers: u32,
    /// EC2 subnets per (account, region).
    pub subnets: u32,
    /// EC2 security groups per (account, region).
    pub security_groups: u32,
    /// IAM instance profiles per account.
    pub instance_profiles: u32,
}

/// One (account, region) that differs from the defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetConfig {
    pub account: AccountId,
    pub region: Region,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub servers: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnets: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_groups: Option<u32>,
    /// Bumping it changes some servers' data (replication state, last seen, ...).
    #[serde(default)]
    pub generation: u64,
    /// Source servers whose state a live change set (`SimHandle::apply`), served
    /// over the generated state; at most one replication, one launch and one
    /// failback entry per server.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers_set: Vec<ServerSet>,
    /// Source networks whose `replicationStatus` a live change set, served over
    /// the generated one; at most one entry per network.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_networks_set: Vec<SourceNetworkSet>,
}

/// The `replicationStatus` a live change gave one source network (by ID).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceNetworkSet {
    /// `sn-` and 17 letters or digits.
    pub network: String,
    /// `PROTECTED`, `IN_PROGRESS`, `STOPPED` or `ERROR`.
    pub status: String,
}

impl SourceNetworkSet {
    fn validate(&self, field: &str) -> Result<(), ConfigError> {
        if !self
            .network
            .strip_prefix("sn-")
            .is_some_and(|id| id.len() == 17 && id.bytes().all(|b| b.is_ascii_alphanumeric()))
        {
            return Err(ConfigError::new(
                format!("{field}.network"),
                "must be a source network ID: sn- and 17 letters or digits",
            ));
        }
        if !["PROTECTED", "IN_PROGRESS", "STOPPED", "ERROR"].contains(&self.status.as_str()) {
            return Err(ConfigError::new(
                format!("{field}.status"),
                "must be PROTECTED, IN_PROGRESS, STOPPED or ERROR",
            ));
        }
        Ok(())
    }
}

/// The state a live change gave one source server (by ID), at the fleet
/// generation it happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "set", rename_all = "snake_case", deny_unknown_fields)]
pub enum ServerSet {
    /// `dataReplicationState` STALLED until a `recovered` entry replaces it.
    Stalled { server: String, generation: u64 },
    /// CONTINUOUS until a later generation redraws the server.
    Recovered { server: String, generation: u64 },
    /// `lastLaunchResult` and `lifeCycle.lastLaunch` of this launch, until a
    /// later generation redraws the server.
    Launched {
        server: String,
        generation: u64,
        /// `drsjob-` and 17 alphanumerics.
        job_id: String,
        drill: bool,
        succeeded: bool,
    },
    /// The `failback.state` of the server's recovery instance
    /// `recovery_instance`, while the server's record names that instance (a
    /// later launch or redraw replaces it).
    Failback {
        server: String,
        generation: u64,
        /// `i-` and 17 hexadecimal digits.
        recovery_instance: String,
        /// A `failback.state` DRS serves, such as `FAILBACK_IN_PROGRESS`.
        state: String,
        /// How often this failback erred and was retried (it seeds the draws
        /// of the next state).
        #[serde(default, skip_serializing_if = "is_zero")]
        retries: u32,
    },
}

/// Whether a count is left out of the JSON.
fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Every `failback.state` of a DRS recovery instance.
pub(crate) const FAILBACK_STATE_NAMES: [&str; 7] = [
    "FAILBACK_NOT_STARTED",
    "FAILBACK_IN_PROGRESS",
    "FAILBACK_READY_FOR_LAUNCH",
    "FAILBACK_COMPLETED",
    "FAILBACK_ERROR",
    "FAILBACK_NOT_READY_FOR_LAUNCH",
    "FAILBACK_LAUNCH_STATE_NOT_AVAILABLE",
];

impl ServerSet {
    /// The source server it names.
    pub fn server(&self) -> &str {
        match self {
            Self::Stalled { server, .. }
            | Self::Recovered { server, .. }
            | Self::Launched { server, .. }
            | Self::Failback { server, .. } => server,
        }
    }

    /// The generation it happened at.
    pub fn generation(&self) -> u64 {
        match self {
            Self::Stalled { generation, .. }
            | Self::Recovered { generation, .. }
            | Self::Launched { generation, .. }
            | Self::Failback { generation, .. } => *generation,
        }
    }

    /// Whether it sets the replication state (else the last launch or the
    /// recovery instance's failback).
    pub fn is_replication(&self) -> bool {
        matches!(self, Self::Stalled { .. } | Self::Recovered { .. })
    }

    /// What of its server it sets: the replication state, the last launch or
    /// the failback; one entry per server and slot.
    fn slot(&self) -> u8 {
        match self {
            Self::Stalled { .. } | Self::Recovered { .. } => 0,
            Self::Launched { .. } => 1,
            Self::Failback { .. } => 2,
        }
    }

    fn validate(&self, field: &str) -> Result<(), ConfigError> {
        let alnum =
            |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_alphanumeric());
        if !self
            .server()
            .strip_prefix("s-")
            .is_some_and(|id| alnum(id, 17))
        {
            return Err(ConfigError::new(
                format!("{field}.server"),
                "must be a source server ID: s- and 17 letters or digits",
            ));
        }
        if let Self::Launched { job_id, .. } = self
            && !job_id
                .strip_prefix("drsjob-")
                .is_some_and(|id| alnum(id, 17))
        {
            return Err(ConfigError::new(
                format!("{field}.job_id"),
                "must be a DRS job ID: drsjob- and 17 letters or digits",
            ));
        }
        if let Self::Failback {
            recovery_instance,
            state,
            ..
        } = self
        {
            if !recovery_instance
                .strip_prefix("i-")
                .is_some_and(|id| id.len() == 17 && id.bytes().all(|b| b.is_ascii_hexdigit()))
            {
                return Err(ConfigError::new(
                    format!("{field}.recovery_instance"),
                    "must be a recovery instance ID: i- and 17 hexadecimal digits",
                ));
            }
            if !FAILBACK_STATE_NAMES.contains(&state.as_str()) {
                return Err(ConfigError::new(
                    format!("{field}.state"),
                    "must be a failback state such as FAILBACK_IN_PROGRESS",
                ));
            }
        }
        Ok(())
    }
}

/// One account that differs from the defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    pub account: AccountId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_profiles: Option<u32>,
}

/// The effective shape of one (account, region): defaults plus its override.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FleetParams {
    pub servers: u32,
    pub subnets: u32,
    pub security_groups: u32,
    pub generation: u64,
}

/// Faults, all of which can change while the simulator runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// A delay before every answer.
    #[serde(rename = "latency_ms", with = "millis")]
    pub latency: Duration,
    /// The share of requests throttled, decided per request by a seeded PRNG.
    pub throttle_rate: f64,
    /// Throttle exactly the next N requests (counts down as they arrive).
    pub throttle_next: u64,
    /// The `Retry-After` header of DRS throttling and server errors, in seconds.
    pub retry_after_secs: u64,
    /// The share of requests answered with a server error.
    pub server_error_rate: f64,
    /// Answer exactly the next N requests with a server error.
    pub server_error_next: u64,
    /// Where DRS answers `UninitializedAccountException` (EC2 and IAM unaffected).
    pub not_initialized: Vec<RegionalSelector>,
    /// Accounts for which every call is denied.
    pub access_denied: Vec<AccountId>,
    /// Regions that answer as an opt-in region that is not enabled (DRS and EC2).
    pub disabled_regions: Vec<Region>,
}

/// An account (or every account, `"*"`) in one region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionalSelector {
    pub account: AccountMatch,
    pub region: Region,
}

/// One account, or any account: `"123456789012"` or `"*"` in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum AccountMatch {
    Any,
    Account(AccountId),
}

impl AccountMatch {
    pub fn matches(&self, account: &AccountId) -> bool {
        match self {
            Self::Any => true,
            Self::Account(a) => a == account,
        }
    }
}

impl TryFrom<String> for AccountMatch {
    type Error = String;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        if raw == "*" {
            return Ok(Self::Any);
        }
        AccountId::parse(&raw)
            .map(Self::Account)
            .map_err(|e| format!("{raw:?}: {e}, or \"*\" for any account"))
    }
}

impl From<AccountMatch> for String {
    fn from(m: AccountMatch) -> Self {
        match m {
            AccountMatch::Any => "*".to_owned(),
            AccountMatch::Account(a) => a.to_string(),
        }
    }
}

/// A configuration value that was refused, with the path of its field
/// (`faults.throttle_rate`, `fleets[2].region`).
#[derive(Debug, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ConfigError {
    pub field: String,
    pub message: String,
    #[source]
    pub source: Option<serde_json::Error>,
}

impl ConfigError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
            source: None,
        }
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            default_account: default_account(),
            access_keys: BTreeMap::new(),
            sts_endpoint: None,
            max_page_size: MAX_PAGE_SIZE,
            defaults: FleetSize::default(),
            fleets: Vec::new(),
            accounts: Vec::new(),
            faults: Faults::default(),
        }
    }
}

/// The account of callers the simulator cannot place: [`DEFAULT_ACCOUNT`].
pub fn default_account() -> AccountId {
    AccountId::parse(DEFAULT_ACCOUNT).unwrap_or_else(|_| unreachable!("a valid constant"))
}

impl Default for FleetSize {
    fn default() -> Self {
        Self {
            servers: 50,
            subnets: 12,
            security_groups: 20,
            instance_profiles: 25,
        }
    }
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            throttle_rate: 0.0,
            throttle_next: 0,
            retry_after_secs: 1,
            server_error_rate: 0.0,
            server_error_next: 0,
            not_initialized: Vec::new(),
            access_denied: Vec::new(),
            disabled_regions: Vec::new(),
        }
    }
}

impl SimConfig {
    /// Parses and validates JSON; an error names the offending field.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let value: Value = serde_json::from_str(text).map_err(|e| ConfigError {
            field: "$".to_owned(),
            message: e.to_string(),
            source: Some(e),
        })?;
        let config = match serde_json::from_value::<Self>(value.clone()) {
            Ok(config) => config,
            Err(e) => return Err(locate(&value, e)),
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks the ranges serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=MAX_PAGE_SIZE).contains(&self.max_page_size) {
            return Err(ConfigError::new(
                "max_page_size",
                format!("must be between 1 and {MAX_PAGE_SIZE}"),
            ));
        }
        if let Some(url) = &self.sts_endpoint
            && !url.starts_with("http://")
        {
            return Err(ConfigError::new(
                "sts_endpoint",
                "must be an http:// URL (a local STS emulator such as moto)",
            ));
        }
        self.defaults.validate("defaults")?;
        for (i, fleet) in self.fleets.iter().enumerate() {
            let field = format!("fleets[{i}]");
            fleet.validate(&field)?;
            let first = self
                .fleets
                .iter()
                .position(|f| f.account == fleet.account && f.region == fleet.region);
            if first != Some(i) {
                return Err(ConfigError::new(
                    field,
                    format!("{} {} is configured twice", fleet.account, fleet.region),
                ));
            }
        }
        for (i, over) in self.accounts.iter().enumerate() {
            let field = format!("accounts[{i}]");
            check_count(
                &field,
                "instance_profiles",
                over.instance_profiles,
                MAX_RESOURCES,
            )?;
            if self.accounts.iter().position(|a| a.account == over.account) != Some(i) {
                return Err(ConfigError::new(
                    field,
                    format!("{} is configured twice", over.account),
                ));
            }
        }
        self.faults.validate()
    }

    /// The instance profiles of `account`.
    pub fn instance_profiles(&self, account: &AccountId) -> u32 {
        self.accounts
            .iter()
            .find(|a| &a.account == account)
            .and_then(|a| a.instance_profiles)
            .unwrap_or(self.defaults.instance_profiles)
    }

    /// Sets the instance profile count of `account`.
    pub fn set_instance_profiles(&mut self, account: AccountId, count: u32) {
        match self.accounts.iter_mut().find(|a| a.account == account) {
            Some(over) => over.instance_profiles = Some(count),
            None => self.accounts.push(AccountConfig {
                account,
                instance_profiles: Some(count),
            }),
        }
    }

    /// Sets the subnet count of (`account`, `region`).
    pub fn set_subnets(&mut self, account: AccountId, region: &Region, subnets: u32) {
        self.fleet_mut(account, region).subnets = Some(subnets);
    }

    /// Sets the security group count of (`account`, `region`).
    pub fn set_security_groups(&mut self, account: AccountId, region: &Region, groups: u32) {
        self.fleet_mut(account, region).security_groups = Some(groups);
    }

    /// The servers whose state live changes set in (`account`, `region`).
    pub fn servers_set(&self, account: &AccountId, region: &Region) -> &[ServerSet] {
        self.fleets
            .iter()
            .find(|f| &f.account == account && &f.region == region)
            .map_or(&[], |f| f.servers_set.as_slice())
    }

    /// Records `set` in (`account`, `region`), replacing what an earlier change
    /// set on the same server's replication (or launch, or failback). A launch
    /// replaces the server's recovery instance, so it also ends the failback
    /// an earlier change set.
    pub fn set_server(&mut self, account: AccountId, region: &Region, set: ServerSet) {
        let fleet = self.fleet_mut(account, region);
        let launch = matches!(set, ServerSet::Launched { .. });
        fleet.servers_set.retain(|s| {
            s.server() != set.server()
                || (s.slot() != set.slot() && !(launch && matches!(s, ServerSet::Failback { .. })))
        });
        fleet.servers_set.push(set);
    }

    /// The source networks whose status live changes set in (`account`, `region`).
    pub fn source_networks_set(&self, account: &AccountId, region: &Region) -> &[SourceNetworkSet] {
        self.fleets
            .iter()
            .find(|f| &f.account == account && &f.region == region)
            .map_or(&[], |f| f.source_networks_set.as_slice())
    }

    /// Records `set` in (`account`, `region`), replacing an earlier status of
    /// the same network.
    pub fn set_source_network(
        &mut self,
        account: AccountId,
        region: &Region,
        set: SourceNetworkSet,
    ) {
        let fleet = self.fleet_mut(account, region);
        fleet
            .source_networks_set
            .retain(|s| s.network != set.network);
        fleet.source_networks_set.push(set);
    }

    /// Keeps only the entries of (`account`, `region`) that `keep` accepts.
    pub(crate) fn retain_servers_set(
        &mut self,
        account: AccountId,
        region: &Region,
        keep: impl FnMut(&ServerSet) -> bool,
    ) {
        self.fleet_mut(account, region).servers_set.retain(keep);
    }

    /// The effective fleet of (`account`, `region`).
    pub fn fleet(&self, account: &AccountId, region: &Region) -> FleetParams {
        let over = self
            .fleets
            .iter()
            .find(|f| &f.account == account && &f.region == region);
        FleetParams {
            servers: over
                .and_then(|f| f.servers)
                .unwrap_or(self.defaults.servers),
            subnets: over
                .and_then(|f| f.subnets)
                .unwrap_or(self.defaults.subnets),
            security_groups: over
                .and_then(|f| f.security_groups)
                .unwrap_or(self.defaults.security_groups),
            generation: over.map_or(0, |f| f.generation),
        }
    }

    /// Sets the server count of (`account`, `region`).
    pub fn set_servers(&mut self, account: AccountId, region: &Region, servers: u32) {
        self.fleet_mut(account, region).servers = Some(servers);
    }

    /// Moves (`account`, `region`) to its next generation and returns it.
    pub fn bump_generation(&mut self, account: AccountId, region: &Region) -> u64 {
        let fleet = self.fleet_mut(account, region);
        fleet.generation = fleet.generation.saturating_add(1);
        fleet.generation
    }

    fn fleet_mut(&mut self, account: AccountId, region: &Region) -> &mut FleetConfig {
        let found = self
            .fleets
            .iter()
            .position(|f| f.account == account && &f.region == region);
        let index = found.unwrap_or_else(|| {
            self.fleets.push(FleetConfig {
                account,
                region: region.clone(),
                servers: None,
                subnets: None,
                security_groups: None,
                generation: 0,
                servers_set: Vec::new(),
                source_networks_set: Vec::new(),
            });
            self.fleets.len() - 1
        });
        &mut self.fleets[index]
    }
}

impl FleetSize {
    fn validate(&self, field: &str) -> Result<(), ConfigError> {
        check_count(field, "servers", Some(self.servers), MAX_SERVERS)?;
        check_count(field, "subnets", Some(self.subnets), MAX_RESOURCES)?;
        check_count(
            field,
            "security_groups",
            Some(self.security_groups),
            MAX_RESOURCES,
        )?;
        check_count(
            field,
            "instance_profiles",
            Some(self.instance_profiles),
            MAX_RESOURCES,
        )
    }
}

impl FleetConfig {
    fn validate(&self, field: &str) -> Result<(), ConfigError> {
        check_count(field, "servers", self.servers, MAX_SERVERS)?;
        check_count(field, "subnets", self.subnets, MAX_RESOURCES)?;
        check_count(
            field,
            "security_groups",
            self.security_groups,
            MAX_RESOURCES,
        )?;
        for (i, set) in self.servers_set.iter().enumerate() {
            set.validate(&format!("{field}.servers_set[{i}]"))?;
        }
        for (i, set) in self.source_networks_set.iter().enumerate() {
            set.validate(&format!("{field}.source_networks_set[{i}]"))?;
        }
        Ok(())
    }
}

impl Faults {
    fn validate(&self) -> Result<(), ConfigError> {
        for (name, rate) in [
            ("throttle_rate", self.throttle_rate),
            ("server_error_rate", self.server_error_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(ConfigError::new(
                    format!("faults.{name}"),
                    "must be between 0.0 and 1.0",
                ));
            }
        }
        if self.retry_after_secs > 3_600 {
            return Err(ConfigError::new(
                "faults.retry_after_secs",
                "must be at most 3600",
            ));
        }
        if self.latency > Duration::from_secs(600) {
            return Err(ConfigError::new(
                "faults.latency_ms",
                "must be at most 600000",
            ));
        }
        Ok(())
    }
}

fn check_count(parent: &str, name: &str, value: Option<u32>, max: u32) -> Result<(), ConfigError> {
    match value {
        Some(v) if v > max => Err(ConfigError::new(
            format!("{parent}.{name}"),
            format!("must be at most {max}"),
        )),
        _ => Ok(()),
    }
}

/// Finds the field of `value` that made deserialisation fail, by deserialising one
/// field at a time (every level but `fleets[i]` is all-default, and a fleet gets
/// valid placeholders for its required fields).
fn locate(value: &Value, whole: serde_json::Error) -> ConfigError {
    let fallback = |e: serde_json::Error| ConfigError {
        field: "$".to_owned(),
        message: e.to_string(),
        source: Some(e),
    };
    let Some(root) = value.as_object() else {
        return fallback(whole);
    };
    let Some((key, error)) = first_bad_field::<SimConfig>(root, &Map::new()) else {
        return fallback(whole);
    };
    let child = &root[&key];
    let nested = match (key.as_str(), child) {
        ("faults", Value::Object(obj)) => {
            first_bad_field::<Faults>(obj, &Map::new()).map(|(k, e)| (format!("faults.{k}"), e))
        }
        ("defaults", Value::Object(obj)) => first_bad_field::<FleetSize>(obj, &Map::new())
            .map(|(k, e)| (format!("defaults.{k}"), e)),
        ("fleets", Value::Array(items)) => items.iter().enumerate().find_map(|(i, item)| {
            let error = serde_json::from_value::<FleetConfig>(item.clone()).err()?;
            let inner = item.as_object().and_then(|obj| {
                let mut base = Map::new();
                base.insert("account".into(), DEFAULT_ACCOUNT.into());
                base.insert("region".into(), "us-east-1".into());
                first_bad_field::<FleetConfig>(obj, &base)
            });
            Some(match inner {
                Some((k, e)) => (format!("fleets[{i}].{k}"), e),
                None => (format!("fleets[{i}]"), error),
            })
        }),
        ("accounts", Value::Array(items)) => items.iter().enumerate().find_map(|(i, item)| {
            let error = serde_json::from_value::<AccountConfig>(item.clone()).err()?;
            let inner = item.as_object().and_then(|obj| {
                let mut base = Map::new();
                base.insert("account".into(), DEFAULT_ACCOUNT.into());
                first_bad_field::<AccountConfig>(obj, &base)
            });
            Some(match inner {
                Some((k, e)) => (format!("accounts[{i}].{k}"), e),
                None => (format!("accounts[{i}]"), error),
            })
        }),
        _ => None,
    };
    let (field, error) = nested.unwrap_or((key, error));
    ConfigError {
        field,
        message: error.to_string(),
        source: Some(error),
    }
}

/// The first key of `obj` that `T` refuses on its own (on top of `base`).
fn first_bad_field<T: DeserializeOwned>(
    obj: &Map<String, Value>,
    base: &Map<String, Value>,
) -> Option<(String, serde_json::Error)> {
    obj.iter().find_map(|(key, value)| {
        let mut probe = base.clone();
        probe.insert(key.clone(), value.clone());
        serde_json::from_value::<T>(Value::Object(probe))
            .err()
            .map(|e| (key.clone(), e))
    })
}

/// Durations as whole milliseconds.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_round_trips_through_json() {
        let config = SimConfig::default();
        let text = serde_json::to_string(&config).unwrap();
        assert_eq!(SimConfig::from_json(&text).unwrap(), config);
    }

    #[test]
    fn a_full_config_parses() {
        let config = SimConfig::from_json(
            r#"{"seed": 7, "default_account": "111111111111",
                "access_keys": {"AKIAEXAMPLE": "222222222222"},
                "fleets": [{"account": "222222222222", "region": "eu-west-1", "servers": 4000, "generation": 3}],
                "faults": {"latency_ms": 300, "throttle_rate": 0.1,
                           "not_initialized": [{"account": "*", "region": "ap-south-1"}],
                           "access_denied": ["333333333333"], "disabled_regions": ["me-south-1"]}}"#,
        )
        .unwrap();
        let account = AccountId::parse("222222222222").unwrap();
        let region = Region::parse("eu-west-1").unwrap();
        assert_eq!(config.faults.latency, Duration::from_millis(300));
        assert_eq!(config.fleet(&account, &region).servers, 4000);
        assert_eq!(config.fleet(&account, &region).generation, 3);
        assert_eq!(config.fleet(&account, &region).subnets, 12);
        assert!(config.faults.not_initialized[0].account.matches(&account));
    }

    #[test]
    fn errors_name_the_field() {
        for (json, field) in [
            (r#"{"seed": "x"}"#, "seed"),
            (r#"{"default_account": "12"}"#, "default_account"),
            (
                r#"{"faults": {"throttle_rate": 2.0}}"#,
                "faults.throttle_rate",
            ),
            (
                r#"{"faults": {"disabled_regions": ["nowhere"]}}"#,
                "faults.disabled_regions",
            ),
            (r#"{"faults": {"bogus": 1}}"#, "faults.bogus"),
            (
                r#"{"fleets": [{"account": "111111111111", "region": "us-east-1"}, {"account": "111111111111", "region": "US"}]}"#,
                "fleets[1].region",
            ),
            (r#"{"fleets": [{"region": "us-east-1"}]}"#, "fleets[0]"),
            (r#"{"max_page_size": 0}"#, "max_page_size"),
            (
                r#"{"sts_endpoint": "https://sts.amazonaws.com"}"#,
                "sts_endpoint",
            ),
            (r#"{"defaults": {"servers": 100001}}"#, "defaults.servers"),
            (r#"{"unknown": true}"#, "unknown"),
        ] {
            let error = SimConfig::from_json(json).unwrap_err();
            assert_eq!(error.field, field, "{json}: {error}");
        }
    }

    #[test]
    fn account_overrides_and_servers_set_round_trip_and_validate() {
        let text = r#"{"seed": 3,
            "accounts": [{"account": "111111111111", "instance_profiles": 30}],
            "fleets": [{"account": "111111111111", "region": "us-east-1", "generation": 4,
                        "servers_set": [
                          {"set": "stalled", "server": "s-0123456789abcdef0", "generation": 3},
                          {"set": "launched", "server": "s-0123456789abcdef0", "generation": 4,
                           "job_id": "drsjob-0123456789abcdef0", "drill": true, "succeeded": false},
                          {"set": "failback", "server": "s-0123456789abcdef0", "generation": 4,
                           "recovery_instance": "i-0123456789abcdef0", "state": "FAILBACK_IN_PROGRESS",
                           "retries": 1}]}]}"#;
        let config = SimConfig::from_json(text).unwrap();
        let account = AccountId::parse("111111111111").unwrap();
        let region = Region::parse("us-east-1").unwrap();
        assert_eq!(config.instance_profiles(&account), 30);
        let other = AccountId::parse("222222222222").unwrap();
        assert_eq!(config.instance_profiles(&other), 25);
        assert_eq!(config.servers_set(&account, &region).len(), 3);
        let again = SimConfig::from_json(&serde_json::to_string(&config).unwrap()).unwrap();
        assert_eq!(again, config);
        for (json, field) in [
            (
                r#"{"accounts": [{"account": "111111111111", "instance_profiles": 10001}]}"#,
                "accounts[0].instance_profiles",
            ),
            (
                r#"{"accounts": [{"account": "111111111111"}, {"account": "111111111111"}]}"#,
                "accounts[1]",
            ),
            (
                r#"{"accounts": [{"account": "111111111111", "profiles": 1}]}"#,
                "accounts[0].profiles",
            ),
            (r#"{"accounts": [{"account": "1"}]}"#, "accounts[0].account"),
            (
                r#"{"fleets": [{"account": "111111111111", "region": "us-east-1",
                    "servers_set": [{"set": "stalled", "server": "i-1", "generation": 1}]}]}"#,
                "fleets[0].servers_set[0].server",
            ),
            (
                r#"{"fleets": [{"account": "111111111111", "region": "us-east-1",
                    "servers_set": [{"set": "launched", "server": "s-0123456789abcdef0", "generation": 1,
                                     "job_id": "job", "drill": true, "succeeded": true}]}]}"#,
                "fleets[0].servers_set[0].job_id",
            ),
            (
                r#"{"fleets": [{"account": "111111111111", "region": "us-east-1",
                    "servers_set": [{"set": "failback", "server": "s-0123456789abcdef0", "generation": 1,
                                     "recovery_instance": "i-xyz", "state": "FAILBACK_ERROR"}]}]}"#,
                "fleets[0].servers_set[0].recovery_instance",
            ),
            (
                r#"{"fleets": [{"account": "111111111111", "region": "us-east-1",
                    "servers_set": [{"set": "failback", "server": "s-0123456789abcdef0", "generation": 1,
                                     "recovery_instance": "i-0123456789abcdef0", "state": "DONE"}]}]}"#,
                "fleets[0].servers_set[0].state",
            ),
            (
                r#"{"fleets": [{"account": "111111111111", "region": "us-east-1",
                    "servers_set": [{"set": "melted", "server": "s-0123456789abcdef0", "generation": 1}]}]}"#,
                "fleets[0].servers_set",
            ),
        ] {
            let error = SimConfig::from_json(json).unwrap_err();
            assert_eq!(error.field, field, "{json}: {error}");
        }
    }

    #[test]
    fn a_later_change_to_a_server_replaces_the_earlier_one() {
        let mut config = SimConfig::default();
        let account = AccountId::parse("111111111111").unwrap();
        let region = Region::parse("us-east-1").unwrap();
        let server = "s-0123456789abcdef0".to_owned();
        config.set_server(
            account,
            &region,
            ServerSet::Stalled {
                server: server.clone(),
                generation: 1,
            },
        );
        config.set_server(
            account,
            &region,
            ServerSet::Launched {
                server: server.clone(),
                generation: 2,
                job_id: "drsjob-0123456789abcdef0".into(),
                drill: false,
                succeeded: true,
            },
        );
        config.set_server(
            account,
            &region,
            ServerSet::Recovered {
                server,
                generation: 3,
            },
        );
        let set = config.servers_set(&account, &region);
        assert_eq!(set.len(), 2);
        assert!(matches!(set[0], ServerSet::Launched { .. }));
        assert!(matches!(set[1], ServerSet::Recovered { .. }));
    }

    #[test]
    fn a_failback_is_kept_beside_the_replication_and_replaced_by_a_later_launch() {
        let mut config = SimConfig::default();
        let account = AccountId::parse("111111111111").unwrap();
        let region = Region::parse("us-east-1").unwrap();
        let server = "s-0123456789abcdef0".to_owned();
        let failback = |state: &str| ServerSet::Failback {
            server: server.clone(),
            generation: 1,
            recovery_instance: "i-0123456789abcdef0".into(),
            state: state.into(),
            retries: 0,
        };
        config.set_server(
            account,
            &region,
            ServerSet::Stalled {
                server: server.clone(),
                generation: 1,
            },
        );
        config.set_server(account, &region, failback("FAILBACK_IN_PROGRESS"));
        config.set_server(account, &region, failback("FAILBACK_READY_FOR_LAUNCH"));
        let set = config.servers_set(&account, &region);
        assert_eq!(set.len(), 2);
        assert!(matches!(set[0], ServerSet::Stalled { .. }));
        assert!(
            matches!(&set[1], ServerSet::Failback { state, .. } if state == "FAILBACK_READY_FOR_LAUNCH")
        );
        assert!(!set[1].is_replication());
        // A launch gives the server another recovery instance: the failback ends.
        config.set_server(
            account,
            &region,
            ServerSet::Launched {
                server: server.clone(),
                generation: 2,
                job_id: "drsjob-0123456789abcdef0".into(),
                drill: false,
                succeeded: true,
            },
        );
        let set = config.servers_set(&account, &region);
        assert_eq!(set.len(), 2);
        assert!(matches!(set[0], ServerSet::Stalled { .. }));
        assert!(matches!(set[1], ServerSet::Launched { .. }));
    }

    #[test]
    fn bumping_a_generation_creates_the_override() {
        let mut config = SimConfig::default();
        let account = AccountId::parse("111111111111").unwrap();
        let region = Region::parse("us-east-1").unwrap();
        assert_eq!(config.bump_generation(account, &region), 1);
        assert_eq!(config.bump_generation(account, &region), 2);
        config.set_servers(account, &region, 7);
        assert_eq!(config.fleets.len(), 1);
        assert_eq!(config.fleet(&account, &region).servers, 7);
        assert_eq!(config.fleet(&account, &region).generation, 2);
    }
}
