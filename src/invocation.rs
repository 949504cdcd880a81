//! The typed error a Lambda function returns to its caller.

use lambda_runtime::Diagnostic;

use crate::{domain::RefreshErrorKind, errors};

/// The error types the workflow's functions fail with: the names the state
/// machine's Retry and Catch match (a test holds the definition to this list).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    strum::IntoStaticStr,
    strum::Display,
    strum::VariantArray,
)]
pub enum ErrorType {
    /// Upstream throttled past every attempt; retried after a pause.
    Throttled,
    /// The role in the target account may not make the call; caught.
    AccessDenied,
    /// DRS is not initialized in the account and region.
    NotInitialized,
    /// The region is not enabled in the account; caught.
    RegionNotEnabled,
    /// Upstream failed otherwise; retried.
    Upstream,
    /// The payload is not one the function takes; caught, a caller's defect.
    InvalidInput,
    /// The cache store could not be reached or refused; retried.
    StoreUnavailable,
}

impl From<RefreshErrorKind> for ErrorType {
    fn from(kind: RefreshErrorKind) -> Self {
        match kind {
            RefreshErrorKind::Throttled => Self::Throttled,
            RefreshErrorKind::AccessDenied => Self::AccessDenied,
            RefreshErrorKind::NotInitialized => Self::NotInitialized,
            RefreshErrorKind::RegionNotEnabled => Self::RegionNotEnabled,
            RefreshErrorKind::Upstream => Self::Upstream,
        }
    }
}

/// A failed invocation: `error_type` becomes the Lambda `errorType`, a stable
/// name the caller (or a Step Functions Retry/Catch) can match.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error_type}: {message}")]
pub struct InvocationError {
    pub error_type: &'static str,
    pub message: String,
}

impl InvocationError {
    /// `error` and its causes as the message.
    pub fn new(error_type: ErrorType, error: &dyn std::error::Error) -> Self {
        Self::with_message(error_type, errors::chain(error))
    }

    pub fn with_message(error_type: ErrorType, message: String) -> Self {
        Self {
            error_type: error_type.into(),
            message,
        }
    }

    /// An error named by the reader's HTTP error code (`NOT_CACHED`), for its
    /// direct invocations.
    pub fn api(code: &'static str, message: String) -> Self {
        Self {
            error_type: code,
            message,
        }
    }
}

impl From<InvocationError> for Diagnostic {
    fn from(e: InvocationError) -> Self {
        Diagnostic {
            error_type: e.error_type.to_owned(),
            error_message: e.message,
        }
    }
}
