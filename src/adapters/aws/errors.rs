//! Upstream failures classified into the kinds the refresh workflow acts on.

use std::{error::Error as StdError, time::Duration};

use aws_sdk_sts::{error::ProvideErrorMetadata, operation::assume_role::AssumeRoleError};
use aws_smithy_runtime_api::{
    client::{orchestrator::HttpResponse, result::SdkError},
    http::Headers,
};

use crate::{domain::RefreshErrorKind, errors, ports::SourceError};

const THROTTLED: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "RequestLimitExceeded",
    "TooManyRequestsException",
];
const ACCESS_DENIED: &[&str] = &[
    "AccessDeniedException",
    "AccessDenied",
    "UnauthorizedOperation",
    "UnauthorizedException",
    // EC2's answer to credentials it does not accept: retrying cannot help.
    "AuthFailure",
];
const NOT_INITIALIZED: &[&str] = &["UninitializedAccountException"];
const REGION_NOT_ENABLED: &[&str] = &[
    "OptInRequired",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
];

/// The kind of a failed answer from its error code and HTTP status. Codes decide
/// first; a 429 without a known code is throttling; anything else is `Upstream`.
pub fn kind_of(code: Option<&str>, status: Option<u16>) -> RefreshErrorKind {
    let listed = |codes: &[&str]| code.is_some_and(|c| codes.contains(&c));
    if listed(THROTTLED) {
        RefreshErrorKind::Throttled
    } else if listed(ACCESS_DENIED) {
        RefreshErrorKind::AccessDenied
    } else if listed(NOT_INITIALIZED) {
        RefreshErrorKind::NotInitialized
    } else if listed(REGION_NOT_ENABLED) {
        RefreshErrorKind::RegionNotEnabled
    } else if status == Some(429) {
        RefreshErrorKind::Throttled
    } else {
        RefreshErrorKind::Upstream
    }
}

/// How long the answer asks callers to wait: `Retry-After` in seconds, else the
/// AWS `x-amz-retry-after` in milliseconds. An HTTP date is not read.
pub fn retry_after(headers: &Headers) -> Option<Duration> {
    let seconds = headers
        .get("retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    seconds.or_else(|| {
        headers
            .get("x-amz-retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_millis)
    })
}

/// Classifies a failed call of `operation`, made with the credentials of
/// `role_arn` if given. The message is `code: message` for an error answer, and
/// the whole error chain otherwise; a failure to assume the role is reported as
/// such, naming the role; the SDK error is kept as the source.
pub(crate) fn classify<E>(
    operation: &'static str,
    error: SdkError<E, HttpResponse>,
    role_arn: Option<&str>,
) -> SourceError
where
    E: StdError + ProvideErrorMetadata + Send + Sync + 'static,
{
    if let Some(sts) = assume_role_failure(&error) {
        let (kind, detail) = assume_role_kind(sts);
        let retry_after = sts.raw_response().and_then(|r| retry_after(r.headers()));
        return SourceError {
            kind,
            operation,
            message: match role_arn {
                Some(arn) => format!("could not assume role {arn}: {detail}"),
                None => format!("could not assume the account's role: {detail}"),
            },
            retry_after,
            source: Some(Box::new(error)),
        };
    }
    let status = error.raw_response().map(|r| r.status().as_u16());
    let kind = kind_of(error.code(), status);
    let message = describe(&error, status);
    let retry_after = error.raw_response().and_then(|r| retry_after(r.headers()));
    SourceError {
        kind,
        operation,
        message,
        retry_after,
        source: Some(Box::new(error)),
    }
}

/// `code: message` for an error answer, else the error chain, with the HTTP
/// status when there was an answer that could not be read.
fn describe<E>(error: &SdkError<E, HttpResponse>, status: Option<u16>) -> String
where
    E: StdError + ProvideErrorMetadata + Send + Sync + 'static,
{
    match (error.code(), error.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_owned(),
        (None, _) => match status {
            Some(status) => format!("HTTP {status}: {}", errors::chain(error)),
            None => errors::chain(error),
        },
    }
}

/// The STS error behind a call that failed because its credentials could not be
/// obtained by assuming a role: the SDK reports it as a dispatch failure whose
/// cause chain holds the AssumeRole error.
fn assume_role_failure<'a>(
    error: &'a (dyn StdError + 'static),
) -> Option<&'a SdkError<AssumeRoleError, HttpResponse>> {
    let mut cause: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(e) = cause {
        if let Some(sts) = e.downcast_ref::<SdkError<AssumeRoleError, HttpResponse>>() {
            return Some(sts);
        }
        cause = e.source();
    }
    None
}

/// A refusal by STS is `AccessDenied` (or `Throttled`); STS out of reach is
/// `Upstream`.
fn assume_role_kind(sts: &SdkError<AssumeRoleError, HttpResponse>) -> (RefreshErrorKind, String) {
    let status = sts.raw_response().map(|r| r.status().as_u16());
    let detail = describe(sts, status);
    let kind = match (kind_of(sts.code(), status), status) {
        (RefreshErrorKind::Throttled, _) => RefreshErrorKind::Throttled,
        (_, Some(_)) => RefreshErrorKind::AccessDenied,
        (_, None) => RefreshErrorKind::Upstream,
    };
    (kind, detail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use RefreshErrorKind::*;

    #[test]
    fn codes_decide_the_kind() {
        for (code, kind) in [
            ("ThrottlingException", Throttled),
            ("Throttling", Throttled),
            ("RequestLimitExceeded", Throttled),
            ("TooManyRequestsException", Throttled),
            ("AccessDeniedException", AccessDenied),
            ("AccessDenied", AccessDenied),
            ("UnauthorizedOperation", AccessDenied),
            ("UnauthorizedException", AccessDenied),
            ("AuthFailure", AccessDenied),
            ("UninitializedAccountException", NotInitialized),
            ("OptInRequired", RegionNotEnabled),
            ("UnrecognizedClientException", RegionNotEnabled),
            ("InvalidClientTokenId", RegionNotEnabled),
            ("InternalServerException", Upstream),
            ("ValidationException", Upstream),
            ("SomethingNew", Upstream),
        ] {
            assert_eq!(kind_of(Some(code), Some(400)), kind, "{code}");
        }
    }

    #[test]
    fn a_known_code_wins_over_the_status() {
        assert_eq!(
            kind_of(Some("AccessDeniedException"), Some(429)),
            AccessDenied
        );
        assert_eq!(kind_of(Some("ThrottlingException"), Some(503)), Throttled);
    }

    #[test]
    fn any_429_is_throttling_and_other_statuses_are_upstream() {
        assert_eq!(kind_of(None, Some(429)), Throttled);
        assert_eq!(kind_of(Some("Whatever"), Some(429)), Throttled);
        for status in [400, 403, 404, 500, 502, 503, 504] {
            assert_eq!(kind_of(None, Some(status)), Upstream, "{status}");
        }
        assert_eq!(kind_of(None, None), Upstream);
    }

    #[test]
    fn codes_are_matched_exactly() {
        assert_eq!(kind_of(Some("accessdenied"), Some(403)), Upstream);
        assert_eq!(kind_of(Some("AccessDenied "), Some(403)), Upstream);
    }

    #[derive(Debug, thiserror::Error)]
    #[error("{text}")]
    struct Layer {
        text: &'static str,
        #[source]
        inner: Option<Box<Layer>>,
    }

    #[test]
    fn the_chain_names_every_cause_once() {
        let error = Layer {
            text: "dispatch failure",
            inner: Some(Box::new(Layer {
                text: "io error: connection refused",
                inner: Some(Box::new(Layer {
                    text: "connection refused",
                    inner: None,
                })),
            })),
        };
        assert_eq!(
            errors::chain(&error),
            "dispatch failure: io error: connection refused"
        );
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> Headers {
        let mut h = Headers::new();
        for (name, value) in pairs {
            h.insert(*name, *value);
        }
        h
    }

    #[test]
    fn retry_after_is_read_in_seconds_then_amz_milliseconds() {
        assert_eq!(
            retry_after(&headers(&[("Retry-After", "7")])),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after(&headers(&[("x-amz-retry-after", "1500")])),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            retry_after(&headers(&[
                ("retry-after", "2"),
                ("x-amz-retry-after", "9000")
            ])),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            retry_after(&headers(&[(
                "Retry-After",
                "Wed, 21 Oct 2015 07:28:00 GMT"
            )])),
            None
        );
        assert_eq!(retry_after(&headers(&[])), None);
    }
}
