//! The typed error a Lambda function returns to its caller.

use lambda_runtime::Diagnostic;

/// A failed invocation: `code` becomes the Lambda `errorType`, a stable name the
/// caller (or a Step Functions Retry/Catch) can match.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct InvocationError {
    pub code: String,
    pub message: String,
}

impl InvocationError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }
}

impl From<InvocationError> for Diagnostic {
    fn from(e: InvocationError) -> Self {
        Diagnostic {
            error_type: e.code,
            error_message: e.message,
        }
    }
}
