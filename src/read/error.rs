//! Every error answer of the reader's API: one enum with its status, code and
//! details, and one function that renders it as `{"error", "message",
//! "details"}`.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use serde_json::{Value, json};

use crate::{
    domain::{CacheKey, NotKept, RefreshAttempt, Region},
    ports::Invalidation,
};

use super::{ApiResponse, service::ReadError};

/// Each variant's code is its name in SCREAMING_SNAKE case (`NOT_CACHED`),
/// but for the two ways the cache can be unavailable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, strum::IntoStaticStr)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum ApiError {
    #[error("no route for {path}")]
    NotFound { path: String },
    #[error("{method} is not allowed here; use {allow}")]
    MethodNotAllowed { method: String, allow: &'static str },
    #[error("query parameter {field} is required")]
    MissingParameter { field: &'static str },
    /// A request body larger than the path takes, or one that could not be
    /// read whole.
    #[error(
        "the request body could not be read whole, or is larger than the {limit} bytes this path takes"
    )]
    PayloadTooLarge { limit: usize },
    /// An answer larger than its carrier takes: Lambda's response limit.
    #[error(
        "the answer is {bytes} bytes as Lambda would carry it, over its {limit}-byte limit: ask for it compressed (Accept-Encoding: br, zstd or gzip) or a page at a time (limit and nextToken)"
    )]
    ResponseTooLarge { bytes: usize, limit: usize },
    #[error("query parameter {field} {reason}")]
    InvalidParameter {
        field: String,
        reason: &'static str,
        /// The offending value, cut to 64 characters.
        value: String,
    },
    /// A read or invalidation of a target the deployment does not refresh.
    #[error(transparent)]
    NotConfigured(NotKept),
    #[error("{}", not_cached_message(key, *expired))]
    NotCached {
        key: CacheKey,
        /// The entry exists but is past its stale window.
        expired: bool,
        refresh_requested: bool,
        last_attempt: Option<RefreshAttempt>,
        /// The region of the deployment that refreshes `key`, when another.
        owner: Option<Region>,
    },
    /// An invalidation of a region another deployment refreshes.
    #[error("region {region} is refreshed by the deployment in {owner}; invalidate it there")]
    NotOwned { region: Region, owner: Region },
    #[error("DRS is not initialized in account {account} region {region}", account = key.scope(), region = key.region())]
    DrsNotInitialized { key: CacheKey },
    #[error("the cache store did not answer for {key} and no copy is held in memory")]
    #[strum(serialize = "CACHE_UNAVAILABLE")]
    StoreUnavailable {
        key: CacheKey,
        /// How the store failed, in a fixed word (`timeout`, `error`,
        /// `corrupt`); its own message goes to the log only.
        cause: &'static str,
    },
    #[error("the cached data cannot be read; a refresh will replace it")]
    #[strum(serialize = "CACHE_UNAVAILABLE")]
    Unreadable { key: CacheKey },
    #[error("the refresh workflow did not take the invalidation; retry later")]
    RefreshUnavailable { invalidation: Invalidation },
}

fn not_cached_message(key: &CacheKey, expired: bool) -> String {
    if expired {
        format!("{key} is older than its stale window; a refresh is needed")
    } else {
        format!("{key} is not cached yet")
    }
}

/// Longest value echoed back in `details.value`.
pub const MAX_ECHOED_CHARS: usize = 64;

impl ApiError {
    /// The code of [`ApiError::InvalidParameter`], also the `errorType` of a
    /// direct invocation whose event is malformed.
    pub const INVALID_PARAMETER: &'static str = "INVALID_PARAMETER";

    /// A parameter (or the body, `field` `body`) that breaks its rule.
    pub fn invalid(field: &str, reason: &'static str, value: &str) -> Self {
        Self::InvalidParameter {
            field: field.to_owned(),
            reason,
            value: crate::text::prefix(value, MAX_ECHOED_CHARS).to_owned(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotFound { .. } | Self::NotConfigured(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::MissingParameter { .. } | Self::InvalidParameter { .. } => {
                StatusCode::BAD_REQUEST
            }
            Self::DrsNotInitialized { .. } | Self::NotOwned { .. } => StatusCode::CONFLICT,
            Self::PayloadTooLarge { .. } | Self::ResponseTooLarge { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            Self::NotCached { .. }
            | Self::StoreUnavailable { .. }
            | Self::Unreadable { .. }
            | Self::RefreshUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The stable code callers match: `error` in the body, and the `errorType`
    /// of a failed direct invocation.
    pub fn code(&self) -> &'static str {
        self.into()
    }

    fn details(&self) -> Value {
        match self {
            Self::NotFound { path } => json!({"path": path}),
            Self::MethodNotAllowed { method, .. } => json!({"method": method}),
            Self::MissingParameter { field } => json!({"field": field}),
            Self::PayloadTooLarge { limit } => json!({"limit": limit}),
            Self::ResponseTooLarge { bytes, limit } => json!({"bytes": bytes, "limit": limit}),
            Self::NotConfigured(not_kept) => {
                json!({"field": not_kept.field, "value": not_kept.value})
            }
            Self::InvalidParameter { field, value, .. } => json!({"field": field, "value": value}),
            Self::NotCached {
                key,
                expired,
                refresh_requested,
                last_attempt,
                owner,
            } => json!({
                "cacheKey": key.to_string(),
                "refreshRequested": refresh_requested,
                "expired": expired,
                "lastAttempt": last_attempt.as_ref().map(attempt_json),
                "ownerRegion": owner.as_ref().map(Region::as_str),
            }),
            Self::NotOwned { region, owner } => json!({
                "field": "region",
                "value": region.as_str(),
                "ownerRegion": owner.as_str(),
            }),
            Self::DrsNotInitialized { key } => json!({
                "accountId": key.scope().as_str(),
                "region": key.region().as_str(),
            }),
            Self::StoreUnavailable { key, cause } => {
                json!({"cacheKey": key.to_string(), "cause": cause})
            }
            Self::Unreadable { key } => json!({"cacheKey": key.to_string()}),
            Self::RefreshUnavailable { invalidation } => {
                json!({"invalidation": invalidation_json(invalidation)})
            }
        }
    }
}

impl From<ReadError> for ApiError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::NotCached {
                key,
                expired,
                refresh_requested,
                last_attempt,
                owner,
            } => Self::NotCached {
                key,
                expired,
                refresh_requested,
                last_attempt,
                owner,
            },
            ReadError::NotConfigured(not_kept) => Self::NotConfigured(not_kept),
            ReadError::DrsNotInitialized { key } => Self::DrsNotInitialized { key },
            ReadError::Unavailable { key, source } => Self::StoreUnavailable {
                key,
                cause: source.kind(),
            },
            ReadError::Unreadable { key } => Self::Unreadable { key },
            ReadError::StaleToken { token, .. } => Self::invalid(
                "nextToken",
                "is of an earlier version of the data: read again from the first page",
                &token,
            ),
        }
    }
}

/// The error answer: status, JSON body, `Allow` on a 405 and `Retry-After`
/// (at least a second) on a 503.
pub fn render(error: &ApiError, retry_after: Duration) -> ApiResponse {
    let body =
        json!({"error": error.code(), "message": error.to_string(), "details": error.details()});
    let mut response = json_response(error.status(), &body);
    let headers = response.headers_mut();
    if let ApiError::MethodNotAllowed { allow, .. } = error {
        headers.insert(header::ALLOW, HeaderValue::from_static(allow));
    }
    if error.status() == StatusCode::SERVICE_UNAVAILABLE {
        let secs = retry_after.as_secs().max(1);
        headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// `body` as an `application/json` answer with `status`.
pub fn json_response(status: StatusCode, body: &Value) -> ApiResponse {
    let mut response = Response::new(Bytes::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// An invalidation's scope as answers show it: every part, `null` when not given.
pub fn invalidation_json(invalidation: &Invalidation) -> Value {
    json!({
        "dataType": invalidation.data_type.map(|t| t.as_str()),
        "region": invalidation.region.as_ref().map(|r| r.as_str()),
        "accountId": invalidation.account.as_ref().map(|a| a.as_str()),
    })
}

/// The attempt with its error kind and the kind's fixed description: the
/// upstream's message, which may name roles and other accounts, stays in the
/// table and the refresher's log.
fn attempt_json(a: &RefreshAttempt) -> Value {
    json!({
        "at": a.at.unix_secs(),
        "errorKind": a.failure.as_ref().map(|f| f.kind.as_str()),
        "message": a.failure.as_ref().map(|f| f.kind.description()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CacheKey {
        CacheKey::parse("drs-quotas#us-east-1#123456789012").unwrap()
    }

    #[test]
    fn unavailable_answers_say_when_to_retry_and_refusals_do_not() {
        let retry = Duration::from_secs(30);
        let busy = render(&ApiError::Unreadable { key: key() }, retry);
        assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(busy.headers()[header::RETRY_AFTER], "30");
        let soon = render(&ApiError::Unreadable { key: key() }, Duration::ZERO);
        assert_eq!(soon.headers()[header::RETRY_AFTER], "1");
        let bad = render(&ApiError::MissingParameter { field: "region" }, retry);
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
        assert!(bad.headers().get(header::RETRY_AFTER).is_none());
        let doc: Value = serde_json::from_slice(bad.body()).unwrap();
        assert_eq!(doc["error"], "MISSING_PARAMETER");
        assert_eq!(doc["details"]["field"], "region");
        assert_eq!(doc["message"], "query parameter region is required");
    }

    #[test]
    fn codes_are_the_documented_ones() {
        let codes = [
            ApiError::NotFound { path: "/".into() },
            ApiError::invalid("region", "is bad", "x"),
            ApiError::MissingParameter { field: "region" },
            ApiError::Unreadable { key: key() },
            ApiError::StoreUnavailable {
                key: key(),
                cause: "timeout",
            },
            ApiError::RefreshUnavailable {
                invalidation: Invalidation::default(),
            },
            ApiError::DrsNotInitialized { key: key() },
            ApiError::PayloadTooLarge { limit: 4096 },
            ApiError::NotConfigured(NotKept {
                field: "region",
                value: "eu-west-1".into(),
            }),
        ]
        .map(|e| e.code());
        assert_eq!(
            codes,
            [
                "NOT_FOUND",
                ApiError::INVALID_PARAMETER,
                "MISSING_PARAMETER",
                "CACHE_UNAVAILABLE",
                "CACHE_UNAVAILABLE",
                "REFRESH_UNAVAILABLE",
                "DRS_NOT_INITIALIZED",
                "PAYLOAD_TOO_LARGE",
                "NOT_CONFIGURED",
            ]
        );
        assert_eq!(ApiError::INVALID_PARAMETER, "INVALID_PARAMETER");
    }

    #[test]
    fn a_failed_attempt_shows_its_kind_and_never_the_upstream_message() {
        use crate::domain::{RefreshErrorKind, RefreshFailure, Timestamp};
        let sts = "User: arn:aws:sts::999999999999:assumed-role/drs-cache-refresher/x is not \
                   authorized to perform: sts:AssumeRole on arn:aws:iam::111122223333:role/r";
        let e = ApiError::NotCached {
            key: key(),
            expired: false,
            refresh_requested: true,
            owner: None,
            last_attempt: Some(RefreshAttempt {
                at: Timestamp::from_unix_secs(1_700_000_000),
                failure: Some(RefreshFailure {
                    kind: RefreshErrorKind::AccessDenied,
                    message: sts.into(),
                }),
            }),
        };
        let body = render(&e, Duration::ZERO);
        let text = String::from_utf8_lossy(body.body());
        assert!(!text.contains("arn:aws"), "{text}");
        assert!(!text.contains("999999999999"), "{text}");
        let doc: Value = serde_json::from_slice(body.body()).unwrap();
        assert_eq!(doc["details"]["lastAttempt"]["errorKind"], "AccessDenied");
        assert_eq!(
            doc["details"]["lastAttempt"]["message"],
            RefreshErrorKind::AccessDenied.description()
        );
    }

    #[test]
    fn a_refused_method_names_the_allowed_one() {
        let e = ApiError::MethodNotAllowed {
            method: "PUT".into(),
            allow: "GET",
        };
        let r = render(&e, Duration::ZERO);
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(r.headers()[header::ALLOW], "GET");
    }

    #[test]
    fn echoed_values_are_cut() {
        let e = ApiError::invalid("vpcId", "is bad", &"v".repeat(500));
        let ApiError::InvalidParameter { value, .. } = e else {
            panic!()
        };
        assert_eq!(value.len(), MAX_ECHOED_CHARS);
    }
}
