//! How long and how often one AWS call may run: timeouts for each attempt and
//! for the whole call (retries included), and for the upstream the SDK's
//! standard retry strategy plus a classifier that waits as long as a throttling
//! answer asks (`Retry-After`), up to a cap.

use std::time::Duration;

use aws_config::{
    retry::{ErrorKind, RetryConfig},
    timeout::TimeoutConfig,
};
use aws_smithy_runtime_api::client::{
    interceptors::context::InterceptorContext,
    retries::classifiers::{ClassifyRetry, RetryAction, RetryClassifierPriority, RetryReason},
};

use super::errors::retry_after;

/// The SDK's own cap on a backoff; a longer honoured `Retry-After` raises it.
const SDK_MAX_BACKOFF: Duration = Duration::from_secs(20);

/// The longest an AWS call may take: each attempt, and the whole call with its
/// retries and their pauses. A call past either fails (as `Upstream` for the
/// upstream, `StoreUnavailable` for the store) instead of holding its batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallTimeouts {
    pub attempt: Duration,
    pub operation: Duration,
}

impl CallTimeouts {
    /// Upstream calls: 10 s an attempt, 60 s a call, well inside the
    /// refresher's 300 s timeout.
    pub const UPSTREAM: Self = Self {
        attempt: Duration::from_secs(10),
        operation: Duration::from_secs(60),
    };
    /// Cache table calls: 5 s an attempt, 20 s a call.
    pub const STORE: Self = Self {
        attempt: Duration::from_secs(5),
        operation: Duration::from_secs(20),
    };

    /// `base` (keeping its connect and read timeouts) with these attempt and
    /// operation timeouts.
    pub fn on(&self, base: Option<&TimeoutConfig>) -> TimeoutConfig {
        base.map(TimeoutConfig::to_builder)
            .unwrap_or_default()
            .operation_attempt_timeout(self.attempt)
            .operation_timeout(self.operation)
            .build()
    }
}

/// Retries of one upstream call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrySettings {
    /// Attempts per call, the first included (default 3; at least 1).
    pub max_attempts: u32,
    /// The longest `Retry-After` honoured; longer requests wait this long
    /// (default 20 s).
    pub max_retry_after: Duration,
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            max_retry_after: Duration::from_secs(20),
        }
    }
}

impl RetrySettings {
    /// The standard retry configuration for these settings.
    pub fn retry_config(&self) -> RetryConfig {
        RetryConfig::standard()
            .with_max_attempts(self.max_attempts.max(1))
            .with_max_backoff(self.max_retry_after.max(SDK_MAX_BACKOFF))
    }

    pub fn classifier(&self) -> RetryAfterClassifier {
        RetryAfterClassifier {
            cap: self.max_retry_after,
        }
    }
}

/// Makes a throttling answer (HTTP 429, or one the SDK's classifiers found to be
/// throttling by its error code) retryable after the delay it asks for in
/// `Retry-After` (seconds) or `x-amz-retry-after` (milliseconds), capped. It
/// runs after the SDK's classifiers, so it sees and refines their verdict.
///
/// The standard strategy (Retry Behavior 2.0, the default) then waits
/// `min(delay, max_backoff)` before the next attempt.
#[derive(Debug, Clone, Copy)]
pub struct RetryAfterClassifier {
    cap: Duration,
}

impl RetryAfterClassifier {
    pub fn new(cap: Duration) -> Self {
        Self { cap }
    }
}

impl ClassifyRetry for RetryAfterClassifier {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        self.classify_retry_v2(ctx, &RetryAction::NoActionIndicated)
    }

    fn classify_retry_v2(&self, ctx: &InterceptorContext, previous: &RetryAction) -> RetryAction {
        if !matches!(ctx.output_or_error(), Some(Err(_))) {
            return RetryAction::NoActionIndicated;
        }
        let Some(response) = ctx.response() else {
            return RetryAction::NoActionIndicated;
        };
        let earlier_delay = match previous {
            RetryAction::RetryIndicated(RetryReason::RetryableError {
                kind: ErrorKind::ThrottlingError,
                retry_after,
            }) => Some(*retry_after),
            _ => None,
        };
        let throttled = response.status().as_u16() == 429 || earlier_delay.is_some();
        if !throttled {
            return RetryAction::NoActionIndicated;
        }
        let asked = retry_after(response.headers()).or(earlier_delay.flatten());
        match asked {
            Some(delay) => RetryAction::retryable_error_with_explicit_delay(
                ErrorKind::ThrottlingError,
                delay.min(self.cap),
            ),
            None => RetryAction::throttling_error(),
        }
    }

    fn name(&self) -> &'static str {
        "Retry-After on throttling"
    }

    fn priority(&self) -> RetryClassifierPriority {
        RetryClassifierPriority::run_after(RetryClassifierPriority::transient_error_classifier())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_timeouts_keep_the_base_connect_timeout() {
        let base = TimeoutConfig::builder()
            .connect_timeout(Duration::from_millis(3_100))
            .build();
        let t = CallTimeouts::UPSTREAM.on(Some(&base));
        assert_eq!(t.connect_timeout(), Some(Duration::from_millis(3_100)));
        assert_eq!(t.operation_attempt_timeout(), Some(Duration::from_secs(10)));
        assert_eq!(t.operation_timeout(), Some(Duration::from_secs(60)));
        let none = CallTimeouts::STORE.on(None);
        assert_eq!(none.operation_timeout(), Some(Duration::from_secs(20)));
    }

    #[test]
    fn defaults_are_three_attempts_and_a_twenty_second_cap() {
        let s = RetrySettings::default();
        assert_eq!(s.max_attempts, 3);
        assert_eq!(s.max_retry_after, Duration::from_secs(20));
        let c = s.retry_config();
        assert_eq!(c.max_attempts(), 3);
        assert_eq!(c.max_backoff(), Duration::from_secs(20));
    }

    #[test]
    fn a_longer_cap_raises_the_sdk_backoff_limit_and_zero_attempts_mean_one() {
        let s = RetrySettings {
            max_attempts: 0,
            max_retry_after: Duration::from_secs(60),
        };
        let c = s.retry_config();
        assert_eq!(c.max_attempts(), 1);
        assert_eq!(c.max_backoff(), Duration::from_secs(60));
    }

    #[test]
    fn the_classifier_runs_after_the_sdk_classifiers() {
        let ours = RetryAfterClassifier::new(Duration::from_secs(1)).priority();
        for sdk in [
            RetryClassifierPriority::http_status_code_classifier(),
            RetryClassifierPriority::modeled_as_retryable_classifier(),
            RetryClassifierPriority::transient_error_classifier(),
        ] {
            assert!(ours > sdk);
        }
    }
}
