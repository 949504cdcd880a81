//! The reader's HTTP surface: one router, whatever carries the request (API
//! Gateway through Lambda, or the local server).

use std::{sync::Arc, time::Instant};

use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode, header};
use serde_json::{Value, json};

use crate::domain::RefreshAttempt;

use super::{
    ReadRequest, RequestError, invalidate,
    metrics::{MetricsSink, ReadOutcome, ReadResult},
    request::route,
    service::{ReadError, ReadService, Served, Tier},
};

/// A request as the router needs it, whatever carried it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiRequest {
    pub method: Method,
    pub path: String,
    /// Decoded query parameters, in order, repeats kept.
    pub query: Vec<(String, String)>,
    pub if_none_match: Option<String>,
    /// The request body; empty for reads.
    pub body: Bytes,
}

/// Where invalidations are posted.
pub const INVALIDATE_PATH: &str = "/cache/invalidate";

pub type ApiResponse = Response<Bytes>;

impl ApiRequest {
    pub fn get(path: impl Into<String>, query: &[(&str, &str)]) -> Self {
        Self {
            method: Method::GET,
            path: path.into(),
            query: query
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            if_none_match: None,
            body: Bytes::new(),
        }
    }

    /// Reads method, path, query and `If-None-Match` from an HTTP request,
    /// with `body` as its body.
    pub fn from_http<B>(req: &http::Request<B>, body: Bytes) -> Self {
        Self {
            method: req.method().clone(),
            path: req.uri().path().to_owned(),
            query: req
                .uri()
                .query()
                .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
                .unwrap_or_default(),
            if_none_match: req
                .headers()
                .get(header::IF_NONE_MATCH)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body,
        }
    }
}

/// Routes reads to the read service and renders its answers.
#[derive(Clone)]
pub struct Router {
    service: Arc<ReadService>,
    metrics: Arc<dyn MetricsSink>,
}

impl Router {
    pub fn new(service: Arc<ReadService>, metrics: Arc<dyn MetricsSink>) -> Self {
        Self { service, metrics }
    }

    /// Answers one request. Never fails: every problem is an error response.
    pub async fn handle(&self, req: &ApiRequest) -> ApiResponse {
        let started = Instant::now();
        if req.method == Method::GET && req.path == "/health" {
            return json_response(StatusCode::OK, &json!({"status": "ok"}));
        }
        if req.path.strip_suffix('/').unwrap_or(&req.path) == INVALIDATE_PATH {
            return self.invalidate(req).await;
        }
        let Some(data_type) = route(&req.path) else {
            return request_error(&RequestError::NotFound {
                path: truncated_path(&req.path),
            });
        };
        if req.method != Method::GET {
            return request_error(&RequestError::MethodNotAllowed {
                method: req.method.to_string(),
                allow: "GET",
            });
        }
        let query = req.query.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        let read =
            match ReadRequest::parse(data_type, query, self.service.settings().default_account) {
                Ok(read) => read,
                Err(e) => return request_error(&e),
            };
        let (response, result, data_age) = match self.service.read(&read.key).await {
            Ok(served) => {
                let stale = served.fresh_for.is_none();
                let result = match served.tier {
                    Tier::Memory => ReadResult::MemoryHit { stale },
                    Tier::Store => ReadResult::StoreHit { stale },
                };
                let age = served.age;
                match self
                    .render(&read, &served, req.if_none_match.as_deref())
                    .await
                {
                    Ok(response) => (response, result, Some(age)),
                    Err(response) => (response, ReadResult::Unavailable, None),
                }
            }
            Err(e) => {
                let result = match e {
                    ReadError::NotCached { .. } => ReadResult::Miss,
                    ReadError::Unavailable { .. } => ReadResult::Unavailable,
                    ReadError::DrsNotInitialized { .. } => ReadResult::Other,
                };
                (self.read_error(&e), result, None)
            }
        };
        self.metrics.record(&ReadOutcome {
            data_type,
            result,
            data_age,
            latency: started.elapsed(),
        });
        response
    }

    async fn render(
        &self,
        read: &ReadRequest,
        served: &Served,
        if_none_match: Option<&str>,
    ) -> Result<ApiResponse, ApiResponse> {
        let snapshot = &served.snapshot;
        let (body, etag) = match &read.filter {
            None => (
                snapshot.body.clone(),
                snapshot.meta.etag.as_str().to_owned(),
            ),
            Some(filter) => match self.service.memory().view(snapshot, filter).await {
                Ok(view) => (view.body.clone(), view.etag.as_str().to_owned()),
                Err(e) => {
                    tracing::error!(cache_key = %read.key, error = %e, "cached body is not a valid view");
                    self.service.request_refresh(&read.key).await;
                    return Err(self.error_response(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "CACHE_UNAVAILABLE",
                        "the cached data cannot be read; a refresh will replace it".into(),
                        json!({"cacheKey": read.key.to_string()}),
                        true,
                    ));
                }
            },
        };
        let not_modified = if_none_match.is_some_and(|header| etag_matches(header, &etag));
        let mut response = if not_modified {
            Response::new(Bytes::new())
        } else {
            Response::new(body)
        };
        if not_modified {
            *response.status_mut() = StatusCode::NOT_MODIFIED;
        }
        let headers = response.headers_mut();
        if !not_modified {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        headers.insert(header::ETAG, header_value(&format!("\"{etag}\"")));
        let max_age = served.fresh_for.unwrap_or(0);
        headers.insert(
            header::CACHE_CONTROL,
            header_value(&format!("max-age={max_age}")),
        );
        headers.insert(header::AGE, HeaderValue::from(served.age));
        headers.insert("x-cache", HeaderValue::from_static(served.tier.as_str()));
        let status = if served.fresh_for.is_some() {
            "fresh"
        } else {
            "stale"
        };
        headers.insert("x-cache-status", HeaderValue::from_static(status));
        // The data served is older than a refresh that failed since: say why.
        let failure = served.snapshot.meta.last_attempt.as_ref();
        if let Some(failure) = failure.and_then(|a| a.failure.as_ref()) {
            headers.insert(
                "x-refresh-error",
                HeaderValue::from_static(failure.kind.as_str()),
            );
        }
        Ok(response)
    }

    fn read_error(&self, e: &ReadError) -> ApiResponse {
        match e {
            ReadError::NotCached {
                key,
                expired,
                refresh_requested,
                last_attempt,
            } => self.error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "NOT_CACHED",
                if *expired {
                    format!("{key} is older than its stale window; a refresh is needed")
                } else {
                    e.to_string()
                },
                json!({
                    "cacheKey": key.to_string(),
                    "refreshRequested": refresh_requested,
                    "expired": expired,
                    "lastAttempt": last_attempt.as_ref().map(attempt_json),
                }),
                true,
            ),
            ReadError::DrsNotInitialized { key } => self.error_response(
                StatusCode::CONFLICT,
                "DRS_NOT_INITIALIZED",
                e.to_string(),
                json!({
                    "accountId": key.scope().as_str(),
                    "region": key.region().as_str(),
                }),
                false,
            ),
            ReadError::Unavailable { key, source } => self.error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "CACHE_UNAVAILABLE",
                e.to_string(),
                json!({"cacheKey": key.to_string(), "cause": source.to_string()}),
                true,
            ),
        }
    }

    /// `POST /cache/invalidate`: asks the refresh side to refresh every
    /// configured target the body matches; `202` once the request is taken.
    async fn invalidate(&self, req: &ApiRequest) -> ApiResponse {
        if req.method != Method::POST {
            return request_error(&RequestError::MethodNotAllowed {
                method: req.method.to_string(),
                allow: "POST",
            });
        }
        let invalidation = match invalidate::parse(&req.body) {
            Ok(invalidation) => invalidation,
            Err(e) => return request_error(&e),
        };
        let scope = json!({
            "dataType": invalidation.data_type.map(|t| t.as_str()),
            "region": invalidation.region.as_ref().map(|r| r.as_str()),
            "accountId": invalidation.account.as_ref().map(|a| a.as_str()),
        });
        match self.service.invalidate(&invalidation).await {
            Ok(()) => json_response(
                StatusCode::ACCEPTED,
                &json!({"status": "accepted", "invalidation": scope}),
            ),
            Err(reason) => {
                tracing::warn!(%invalidation, error = %reason, "invalidation not taken");
                self.error_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "REFRESH_UNAVAILABLE",
                    "the refresh workflow did not take the invalidation; retry later".into(),
                    json!({"invalidation": scope}),
                    true,
                )
            }
        }
    }

    fn error_response(
        &self,
        status: StatusCode,
        code: &str,
        message: String,
        details: Value,
        retry: bool,
    ) -> ApiResponse {
        let mut response = error_body(status, code, message, details);
        if retry {
            let secs = self.service.settings().retry_after.as_secs().max(1);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

fn attempt_json(a: &RefreshAttempt) -> Value {
    json!({
        "at": a.at.unix_secs(),
        "errorKind": a.failure.as_ref().map(|f| f.kind.as_str()),
        "message": a.failure.as_ref().map(|f| f.message.as_str()),
    })
}

/// The 4xx answer to a request that cannot be served as asked.
pub fn request_error(e: &RequestError) -> ApiResponse {
    let message = e.to_string();
    match e {
        RequestError::NotFound { path } => error_body(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            message,
            json!({"path": path}),
        ),
        RequestError::MethodNotAllowed { method, allow } => {
            let mut r = error_body(
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                message,
                json!({"method": method}),
            );
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
            r
        }
        RequestError::Missing { field } => error_body(
            StatusCode::BAD_REQUEST,
            "MISSING_PARAMETER",
            message,
            json!({"field": field}),
        ),
        RequestError::Invalid { field, value, .. } => error_body(
            StatusCode::BAD_REQUEST,
            "INVALID_PARAMETER",
            message,
            json!({"field": field, "value": value}),
        ),
    }
}

fn error_body(status: StatusCode, code: &str, message: String, details: Value) -> ApiResponse {
    json_response(
        status,
        &json!({"error": code, "message": message, "details": details}),
    )
}

fn json_response(status: StatusCode, body: &Value) -> ApiResponse {
    let mut response = Response::new(Bytes::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn header_value(text: &str) -> HeaderValue {
    // Built from hex digits and ASCII only.
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

fn truncated_path(path: &str) -> String {
    path.chars().take(128).collect()
}

/// Whether an `If-None-Match` header names `etag` (weak comparison, `*` matches).
fn etag_matches(header: &str, etag: &str) -> bool {
    header.split(',').map(str::trim).any(|candidate| {
        let candidate = candidate.strip_prefix("W/").unwrap_or(candidate);
        candidate == "*" || candidate.trim_matches('"') == etag
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_compares_weakly_across_lists() {
        assert!(etag_matches("\"abc\"", "abc"));
        assert!(etag_matches("W/\"abc\"", "abc"));
        assert!(etag_matches("\"x\", \"abc\"", "abc"));
        assert!(etag_matches("*", "abc"));
        assert!(!etag_matches("\"abd\"", "abc"));
        assert!(!etag_matches("", "abc"));
    }

    #[test]
    fn query_is_decoded_in_order_with_repeats() {
        let req = http::Request::get("/ec2/subnets?region=us-east-1&vpcId=vpc%2D0a1b2c3d&region=x")
            .header("if-none-match", "\"e\"")
            .body(())
            .unwrap();
        let api = ApiRequest::from_http(&req, Bytes::new());
        assert_eq!(api.path, "/ec2/subnets");
        assert_eq!(
            api.query,
            vec![
                ("region".into(), "us-east-1".into()),
                ("vpcId".into(), "vpc-0a1b2c3d".into()),
                ("region".into(), "x".into()),
            ]
        );
        assert_eq!(api.if_none_match.as_deref(), Some("\"e\""));
    }
}
