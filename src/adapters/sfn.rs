//! Refresh requests as Step Functions executions: of the refresh workflow, or,
//! for exact targets where the deployment has it, of the EXPRESS targets
//! workflow.
//!
//! Refresh workflow executions are named from the target and a time window,
//! so a burst of requests for one target within the window starts one
//! execution: Step Functions refuses a second STANDARD execution with the same
//! name. EXPRESS executions are not deduplicated by name (a second one with the
//! same name runs beside the first), so each gets a name of its own; the
//! reader's own request window and the planner's leases keep a burst to one
//! fetch.

use std::time::Duration;

use super::unique_id;
use crate::{
    domain::{CacheKey, Timestamp},
    ports::{
        BoxError, Invalidation, RefreshReason, RefreshRequestError, RefreshTrigger, RunRequests,
    },
    text::prefix,
    workflow::{ExecutionInput, MAX_INLINE_TARGETS},
};
use async_trait::async_trait;
use aws_sdk_sfn::{
    Client, error::SdkError, operation::start_execution::StartExecutionError,
    types::ExecutionStatus,
};

/// Step Functions limits execution names to 80 characters.
const MAX_NAME: usize = 80;

pub struct StepFunctionsTrigger {
    client: Client,
    state_machine_arn: String,
    /// The EXPRESS targets workflow, where exact targets run when it is set.
    targets_machine_arn: Option<String>,
    window: Duration,
}

impl StepFunctionsTrigger {
    /// Requests for one target within `window` share one execution.
    pub fn new(client: Client, state_machine_arn: impl Into<String>, window: Duration) -> Self {
        Self {
            client,
            state_machine_arn: state_machine_arn.into(),
            targets_machine_arn: None,
            window,
        }
    }

    /// Exact targets (a read's key, a follow-up's targets) run on the
    /// targets workflow `arn`; `None` keeps them on the refresh workflow.
    pub fn with_targets_machine(mut self, arn: Option<String>) -> Self {
        self.targets_machine_arn = arn;
        self
    }
}

/// `{reason}-{dataType}-{region}-{account}-{window number}`: the same for every
/// request for one target within one window, and a valid execution name.
pub fn execution_name(
    key: &CacheKey,
    reason: RefreshReason,
    now: Timestamp,
    window: Duration,
) -> String {
    bounded_name(
        reason.as_str(),
        &key_parts(key),
        &slot(now, window).to_string(),
    )
}

/// `{reason}-{dataType}-{region}-{account}-{unique id}`: an EXPRESS targets
/// run's own name.
pub fn targets_run_name(key: &CacheKey, reason: RefreshReason) -> String {
    bounded_name(reason.as_str(), &key_parts(key), &unique_id())
}

fn key_parts(key: &CacheKey) -> String {
    format!("{}-{}-{}", key.data_type(), key.region(), key.scope())
}

/// `manual-{dataType}-{region}-{account}-{window number}` (`all` for a part not
/// given): one execution per invalidation per window.
pub fn invalidation_name(invalidation: &Invalidation, now: Timestamp, window: Duration) -> String {
    let part = |p: Option<&str>| p.unwrap_or("all").to_owned();
    let parts = format!(
        "{}-{}-{}",
        part(invalidation.data_type.map(|t| t.as_str())),
        part(invalidation.region.as_ref().map(|r| r.as_str())),
        part(invalidation.account.as_ref().map(|a| a.as_str())),
    );
    bounded_name(
        RefreshReason::Manual.as_str(),
        &parts,
        &slot(now, window).to_string(),
    )
}

/// The number of the `window` that `now` falls in.
fn slot(now: Timestamp, window: Duration) -> i64 {
    let window_secs = i64::try_from(window.as_secs().max(1)).unwrap_or(i64::MAX);
    now.unix_secs().div_euclid(window_secs)
}

/// `{prefix}-{parts}-{suffix}`, or with `parts` replaced by a hash of the
/// whole name where that would be longer than Step Functions allows.
fn bounded_name(prefix: &str, parts: &str, suffix: &str) -> String {
    let name = format!("{prefix}-{parts}-{suffix}");
    if name.len() <= MAX_NAME {
        name
    } else {
        let hash = blake3::hash(name.as_bytes()).to_hex();
        format!("{prefix}-{}-{suffix}", &hash[..32])
    }
}

impl StepFunctionsTrigger {
    /// Starts an execution named `name`. One that already exists is this
    /// window's run of the same request: if it is still running it will do
    /// the work, so the request is taken; if it has ended, a run under a name
    /// of its own (`{name}-r{unix seconds}`) is started, so an accepted request
    /// always means a run.
    async fn start(
        &self,
        name: String,
        input: String,
        asked: String,
    ) -> Result<(), RefreshRequestError> {
        let refused = |source: BoxError| RefreshRequestError {
            key: asked.clone(),
            source,
        };
        match self
            .start_named(&self.state_machine_arn, &name, &input)
            .await
        {
            Ok(Started::New) => return Ok(()),
            Ok(Started::Exists) => {}
            Err(e) => return Err(refused(e)),
        }
        if self.is_running(&name).await.map_err(refused)? {
            return Ok(());
        }
        let again = format!(
            "{}-r{}",
            prefix(&name, MAX_NAME - 12),
            Timestamp::now().unix_secs()
        );
        match self
            .start_named(&self.state_machine_arn, &again, &input)
            .await
        {
            // Exists: another request started it within this second.
            Ok(_) => Ok(()),
            Err(e) => Err(refused(e)),
        }
    }

    async fn start_named(
        &self,
        machine: &str,
        name: &str,
        input: &str,
    ) -> Result<Started, BoxError> {
        let result = self
            .client
            .start_execution()
            .state_machine_arn(machine)
            .name(name)
            .input(input)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Started::New),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), StartExecutionError::ExecutionAlreadyExists(_)) =>
            {
                Ok(Started::Exists)
            }
            Err(e) => Err(Box::new(e)),
        }
    }

    /// Whether the execution `name` of the state machine is still running.
    async fn is_running(&self, name: &str) -> Result<bool, BoxError> {
        let described = self
            .client
            .describe_execution()
            .execution_arn(execution_arn(&self.state_machine_arn, name))
            .send()
            .await
            .map_err(|e| Box::new(e) as BoxError)?;
        Ok(*described.status() == ExecutionStatus::Running)
    }
}

/// How an execution the command line started and followed ended.
#[cfg(feature = "local")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowedRun {
    pub execution_arn: String,
    /// `SUCCEEDED`, `FAILED`, `TIMED_OUT` or `ABORTED`.
    pub status: String,
    /// The execution's output (the run's summary) when it succeeded.
    pub output: Option<String>,
    pub error: Option<String>,
    pub cause: Option<String>,
}

#[cfg(feature = "local")]
impl StepFunctionsTrigger {
    /// Starts a run of `input` under a name of its own and waits for its end,
    /// asking every `poll`; `on_poll` hears each status seen.
    pub async fn run_to_end(
        &self,
        input: &ExecutionInput,
        poll: Duration,
        mut on_poll: impl FnMut(&str),
    ) -> Result<FollowedRun, BoxError> {
        let name = format!("cli-{}-{}", Timestamp::now().unix_secs(), unique_id());
        let started = self
            .client
            .start_execution()
            .state_machine_arn(&self.state_machine_arn)
            .name(prefix(&name, MAX_NAME))
            .input(input.to_json())
            .send()
            .await
            .map_err(|e| Box::new(e) as BoxError)?;
        let arn = started.execution_arn().to_owned();
        loop {
            let described = self
                .client
                .describe_execution()
                .execution_arn(&arn)
                .send()
                .await
                .map_err(|e| Box::new(e) as BoxError)?;
            let status = described.status().as_str().to_owned();
            on_poll(&status);
            if *described.status() != ExecutionStatus::Running {
                return Ok(FollowedRun {
                    execution_arn: arn,
                    status,
                    output: described.output().map(str::to_owned),
                    error: described.error().map(str::to_owned),
                    cause: described.cause().map(str::to_owned),
                });
            }
            tokio::time::sleep(poll).await;
        }
    }
}

enum Started {
    New,
    Exists,
}

/// The ARN of the execution `name` of `state_machine_arn`:
/// `arn:aws:states:REGION:ACCOUNT:execution:MACHINE:NAME`.
fn execution_arn(state_machine_arn: &str, name: &str) -> String {
    format!(
        "{}:{name}",
        state_machine_arn.replacen(":stateMachine:", ":execution:", 1)
    )
}

#[async_trait]
impl RefreshTrigger for StepFunctionsTrigger {
    #[tracing::instrument(skip_all, fields(cache_key = %key))]
    async fn request_refresh(
        &self,
        key: &CacheKey,
        reason: RefreshReason,
    ) -> Result<(), RefreshRequestError> {
        let input = ExecutionInput::targets(reason, std::slice::from_ref(key));
        if let Some(machine) = &self.targets_machine_arn {
            let name = targets_run_name(key, reason);
            return self
                .start_named(machine, &name, &input.to_json())
                .await
                .map(|_| ())
                .map_err(|source| RefreshRequestError {
                    key: key.to_string(),
                    source,
                });
        }
        let name = execution_name(key, reason, Timestamp::now(), self.window);
        self.start(name, input.to_json(), key.to_string()).await
    }

    #[tracing::instrument(skip_all, fields(invalidation = %invalidation))]
    async fn request_invalidation(
        &self,
        invalidation: &Invalidation,
    ) -> Result<(), RefreshRequestError> {
        let name = invalidation_name(invalidation, Timestamp::now(), self.window);
        let input = ExecutionInput::invalidation(invalidation);
        self.start(name, input.to_json(), invalidation.to_string())
            .await
    }
}

#[async_trait]
impl RunRequests for StepFunctionsTrigger {
    /// An execution of its own, `{reason}-targets-{unix seconds}-{unique id}`,
    /// on the targets workflow where there is one.
    #[tracing::instrument(skip_all, fields(keys = keys.len()))]
    async fn request_targets(
        &self,
        keys: &[CacheKey],
        reason: RefreshReason,
    ) -> Result<(), RefreshRequestError> {
        let name = format!(
            "{}-targets-{}-{}",
            reason.as_str(),
            Timestamp::now().unix_secs(),
            unique_id()
        );
        let input = ExecutionInput::targets(reason, keys);
        let machine = match &self.targets_machine_arn {
            Some(targets) if keys.len() <= MAX_INLINE_TARGETS => targets,
            _ => &self.state_machine_arn,
        };
        self.start_named(machine, &name, &input.to_json())
            .await
            .map(|_| ())
            .map_err(|source| RefreshRequestError { key: name, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(raw: &str) -> CacheKey {
        CacheKey::parse(raw).unwrap()
    }

    #[test]
    fn requests_within_one_window_share_a_name() {
        let k = key("drs-source-servers#us-east-1#123456789012");
        let w = Duration::from_secs(60);
        let at = |s| Timestamp::from_unix_secs(s);
        let a = execution_name(&k, RefreshReason::Miss, at(1_700_000_040), w);
        assert_eq!(a, "miss-drs-source-servers-us-east-1-123456789012-28333334");
        assert_eq!(
            a,
            execution_name(&k, RefreshReason::Miss, at(1_700_000_099), w)
        );
        assert_ne!(
            a,
            execution_name(&k, RefreshReason::Miss, at(1_700_000_100), w)
        );
        let other = key("drs-quotas#us-east-1#123456789012");
        assert_ne!(
            a,
            execution_name(&other, RefreshReason::Miss, at(1_700_000_040), w)
        );
    }

    #[test]
    fn names_are_valid_for_every_key() {
        let k = key("ec2-instance-profiles#us-isob-southeast-12#123456789012");
        let name = execution_name(
            &k,
            RefreshReason::Manual,
            Timestamp::from_unix_secs(i64::MAX),
            Duration::ZERO,
        );
        assert!(name.len() <= MAX_NAME, "{name}");
        assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    }

    #[test]
    fn an_execution_arn_is_built_from_its_state_machine_and_name() {
        assert_eq!(
            execution_arn(
                "arn:aws:states:us-east-1:123456789012:stateMachine:drs-refresh",
                "manual-all-all-all-1"
            ),
            "arn:aws:states:us-east-1:123456789012:execution:drs-refresh:manual-all-all-all-1"
        );
    }

    #[test]
    fn an_invalidation_starts_a_manual_run_named_by_its_parts() {
        let inv = Invalidation {
            data_type: Some(crate::domain::DataType::Ec2Subnets),
            region: None,
            account: None,
        };
        let at = Timestamp::from_unix_secs(1_700_000_040);
        let name = invalidation_name(&inv, at, Duration::from_secs(60));
        assert_eq!(name, "manual-ec2-subnets-all-all-28333334");
        let long = Invalidation {
            region: Some(crate::domain::Region::parse("us-isob-southeast-12").unwrap()),
            account: Some(crate::domain::AccountId::parse("123456789012").unwrap()),
            data_type: Some(crate::domain::DataType::Ec2InstanceProfiles),
        };
        let name = invalidation_name(&long, Timestamp::from_unix_secs(i64::MAX), Duration::ZERO);
        assert!(name.len() <= MAX_NAME, "{name}");
        assert!(name.starts_with("manual-"), "{name}");
    }
}
