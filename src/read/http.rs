//! The reader's HTTP surface: one router, whatever carries the request (API
//! Gateway through Lambda, or the local server).

use std::{sync::Arc, time::Instant};

use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode, header};
use serde_json::json;

use crate::{domain::NotKept, errors, text};

use super::{
    ApiError, ReadRequest,
    encoding::Coding,
    error::{invalidation_json, json_response, render as render_error},
    invalidate,
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
    pub accept_encoding: Option<String>,
    /// The request body; empty for reads.
    pub body: Bytes,
}

/// Where invalidations are posted.
pub const INVALIDATE_PATH: &str = "/cache/invalidate";
/// Answers `{"status":"ok"}` without touching the cache.
pub const HEALTH_PATH: &str = "/health";

/// The body of a health answer.
pub fn health() -> serde_json::Value {
    json!({"status": "ok"})
}

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
            accept_encoding: None,
            body: Bytes::new(),
        }
    }

    /// Reads method, path, query, `If-None-Match` and `Accept-Encoding` from
    /// an HTTP request, with `body` as its body.
    pub fn from_http<B>(req: &http::Request<B>, body: Bytes) -> Self {
        Self {
            method: req.method().clone(),
            path: req.uri().path().to_owned(),
            query: req
                .uri()
                .query()
                .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
                .unwrap_or_default(),
            if_none_match: header_text(req.headers(), header::IF_NONE_MATCH),
            accept_encoding: header_text(req.headers(), header::ACCEPT_ENCODING),
            body,
        }
    }
}

fn header_text(headers: &http::HeaderMap, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Routes reads to the read service and renders its answers.
#[derive(Clone)]
pub struct Router {
    service: Arc<ReadService>,
    metrics: Arc<dyn MetricsSink>,
}

/// Longest path echoed back in a 404.
const MAX_PATH_CHARS: usize = 128;

impl Router {
    pub fn new(service: Arc<ReadService>, metrics: Arc<dyn MetricsSink>) -> Self {
        Self { service, metrics }
    }

    /// Answers one request. Never fails: every problem is an error response.
    pub async fn handle(&self, req: &ApiRequest) -> ApiResponse {
        self.handle_within(req, |_| Ok(())).await
    }

    /// [`Self::handle`], where `fits` may still refuse the answer (the Lambda
    /// adapter's response limit): a refused answer is replaced by the error,
    /// and a read refused so is counted as an error served, never as a hit.
    pub async fn handle_within(
        &self,
        req: &ApiRequest,
        fits: impl FnOnce(&ApiResponse) -> Result<(), ApiError>,
    ) -> ApiResponse {
        let path = req.path.strip_suffix('/').unwrap_or(&req.path);
        let other = if req.method == Method::GET && req.path == HEALTH_PATH {
            Some(json_response(StatusCode::OK, &health()))
        } else if path == INVALIDATE_PATH {
            Some(self.invalidate(req).await)
        } else if path == super::inventory::INVENTORY_PATH {
            Some(super::inventory::answer(self, req).await)
        } else {
            None
        };
        if let Some(response) = other {
            return match fits(&response) {
                Ok(()) => response,
                Err(e) => self.error(&e),
            };
        }
        let query = req.query.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        let (if_none_match, coding) = (
            req.if_none_match.as_deref(),
            Coding::negotiate(req.accept_encoding.as_deref()),
        );
        let mut answer = None;
        let read = self.read_checked(&req.method, &req.path, query, |served| {
            let response = answer.insert(render(served, if_none_match, coding));
            fits(response)
        });
        match read.await {
            Ok(served) => answer.unwrap_or_else(|| render(&served, if_none_match, coding)),
            Err(e) => self.error(&e),
        }
    }

    /// A read of `path` with `query`, as the HTTP answer and a direct
    /// invocation both serve it; its metrics are recorded.
    pub async fn read<'a>(
        &self,
        method: &Method,
        path: &str,
        query: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Served, ApiError> {
        self.read_checked(method, path, query, |_| Ok(())).await
    }

    /// [`Self::read`], where `check` may still refuse what was served (an
    /// answer over a response limit): the read is then counted as an error
    /// served, and its error is the answer.
    pub async fn read_checked<'a>(
        &self,
        method: &Method,
        path: &str,
        query: impl IntoIterator<Item = (&'a str, &'a str)>,
        check: impl FnOnce(&Served) -> Result<(), ApiError>,
    ) -> Result<Served, ApiError> {
        let started = Instant::now();
        if path.strip_suffix('/').unwrap_or(path) == INVALIDATE_PATH {
            return Err(ApiError::MethodNotAllowed {
                method: method.to_string(),
                allow: "POST",
            });
        }
        let Some(data_type) = route(path) else {
            return Err(ApiError::NotFound {
                path: text::prefix(path, MAX_PATH_CHARS).to_owned(),
            });
        };
        if method != Method::GET {
            return Err(ApiError::MethodNotAllowed {
                method: method.to_string(),
                allow: "GET",
            });
        }
        let settings = self.service.settings();
        let read = if data_type.is_derived() {
            let key = settings.capacity_key.clone().ok_or_else(|| {
                ApiError::NotConfigured(NotKept {
                    field: "dataType",
                    value: data_type.as_str().to_owned(),
                })
            })?;
            ReadRequest::capacity(key, query, settings.kept.as_ref())?
        } else {
            ReadRequest::parse(data_type, query, settings.default_account)?
        };
        let served = self.service.read(&read).await;
        let refused = served.as_ref().ok().and_then(|s| check(s).err());
        match refused {
            Some(error) => {
                self.record_outcome(data_type, ReadResult::Other, None, started);
                Err(error)
            }
            None => {
                self.record(data_type, &served, started);
                Ok(served?)
            }
        }
    }

    /// Records the metrics of one read of `data_type` begun at `started`.
    pub(super) fn record(
        &self,
        data_type: crate::domain::DataType,
        served: &Result<Served, ReadError>,
        started: Instant,
    ) {
        let (result, data_age) = match served {
            Ok(served) => {
                let stale = served.fresh_for.is_none();
                let result = match served.tier {
                    Tier::Memory => ReadResult::MemoryHit { stale },
                    Tier::Store => ReadResult::StoreHit { stale },
                };
                (result, Some(served.age))
            }
            Err(ReadError::NotCached { .. }) => (ReadResult::Miss, None),
            Err(ReadError::Unavailable { .. } | ReadError::Unreadable { .. }) => {
                (ReadResult::Unavailable, None)
            }
            Err(
                ReadError::DrsNotInitialized { .. }
                | ReadError::NotConfigured(_)
                | ReadError::StaleToken { .. },
            ) => (ReadResult::Other, None),
        };
        self.record_outcome(data_type, result, data_age, started);
    }

    fn record_outcome(
        &self,
        data_type: crate::domain::DataType,
        result: ReadResult,
        data_age: Option<u64>,
        started: Instant,
    ) {
        self.metrics.record(&ReadOutcome {
            data_type,
            result,
            data_age,
            latency: started.elapsed(),
        });
    }

    pub(super) fn service(&self) -> &ReadService {
        &self.service
    }

    /// Where the service notes its reads (demand-aware refresh), for the
    /// flushers that write the notes.
    pub fn demand(&self) -> Option<Arc<super::demand::DemandRecorder>> {
        self.service.demand().cloned()
    }

    /// The answer to `error`.
    pub fn error(&self, error: &ApiError) -> ApiResponse {
        render_error(error, self.service.settings().retry_after)
    }

    /// `POST /cache/invalidate`: asks the refresh side to refresh every
    /// configured target the body matches; `202` once the request is taken.
    async fn invalidate(&self, req: &ApiRequest) -> ApiResponse {
        if req.method != Method::POST {
            return self.error(&ApiError::MethodNotAllowed {
                method: req.method.to_string(),
                allow: "POST",
            });
        }
        let invalidation = match invalidate::parse(&req.body) {
            Ok(invalidation) => invalidation,
            Err(e) => return self.error(&e),
        };
        match self.service.invalidate(&invalidation).await {
            Ok(()) => json_response(
                StatusCode::ACCEPTED,
                &json!({"status": "accepted", "invalidation": invalidation_json(&invalidation)}),
            ),
            Err(super::RequestNotTaken::NotConfigured(not_kept)) => {
                self.error(&ApiError::NotConfigured(not_kept))
            }
            Err(super::RequestNotTaken::NotOwned { region, owner }) => {
                self.error(&ApiError::NotOwned { region, owner })
            }
            Err(e) => {
                tracing::warn!(%invalidation, error = %errors::chain(&e), "invalidation not taken");
                self.error(&ApiError::RefreshUnavailable { invalidation })
            }
        }
    }
}

/// The `200` (or `304` when `if_none_match` names its tag) answer serving
/// `served` in `wanted` coding (identity for a short body).
fn render(served: &Served, if_none_match: Option<&str>, wanted: Coding) -> ApiResponse {
    // The coding actually sent names the tag: identity if compressing failed.
    let (sent, body) = served.body.body(served.body.coding_for(wanted));
    let etag = sent.etag(&served.etag);
    // Any coding's tag names the same data: a client that switched codings
    // still revalidates.
    let not_modified = if_none_match.is_some_and(|header| {
        <Coding as strum::VariantArray>::VARIANTS
            .iter()
            .any(|c| etag_matches(header, c.etag(&served.etag).trim_matches('"')))
    });
    let mut response = if not_modified {
        let mut response = Response::new(Bytes::new());
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response
    } else {
        let mut response = Response::new(body);
        if sent != Coding::Identity {
            response.headers_mut().insert(
                header::CONTENT_ENCODING,
                HeaderValue::from_static(sent.as_str()),
            );
        }
        response
    };
    let headers = response.headers_mut();
    if !not_modified {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    headers.insert(header::ETAG, header_value(&etag));
    let max_age = served.fresh_for.unwrap_or(0);
    headers.insert(
        header::CACHE_CONTROL,
        header_value(&format!("max-age={max_age}")),
    );
    headers.insert(header::AGE, HeaderValue::from(served.age));
    headers.insert("x-cache", HeaderValue::from_static(served.tier.as_str()));
    headers.insert("x-cache-status", HeaderValue::from_static(served.status()));
    // Stale, and only another region's deployment refreshes it, which has
    // not (it may be down); or older than a refresh that failed since: say why.
    if let Some(error) = served.refresh_error_header() {
        headers.insert("x-refresh-error", HeaderValue::from_static(error));
    }
    if let Some(owner) = &served.awaiting_owner {
        headers.insert("x-owner-region", header_value(owner.as_str()));
    }
    response
}

fn header_value(text: &str) -> HeaderValue {
    // Built from hex digits and ASCII only.
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
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
