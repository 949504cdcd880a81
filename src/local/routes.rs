//! The local server's own pages beside the reader's API: the status page at
//! `/`, its JSON at `/_local/status`, and what the CLI asks of a running
//! local process (`plan`, `refresh`, `warm`, `export`, `import`), since the embedded
//! store admits one process at a time.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use serde::Serialize;
use serde_json::json;

use crate::{
    app::LocalRefresh,
    domain::{AccountId, Timestamp, TtlTable},
    errors,
    plan::Trigger,
    ports::{CacheStorage, Invalidation},
    read::{ApiError, ApiRequest, ApiResponse, Router, server::Handler},
    workflow::WarmRequest,
};

use super::{
    activity::Activity,
    portable::{self, PortableError},
    status::StatusReport,
};

/// The status page.
const PAGE: &str = include_str!("page.html");
/// The largest export `POST /_local/import` takes: 256 MiB.
const MAX_IMPORT_BYTES: usize = 256 << 20;

pub const STATUS_PATH: &str = "/_local/status";
pub const PLAN_PATH: &str = "/_local/plan";
pub const REFRESH_PATH: &str = "/_local/refresh";
pub const WARM_PATH: &str = "/_local/warm";
pub const EXPORT_PATH: &str = "/_local/export";
pub const IMPORT_PATH: &str = "/_local/import";

/// What the local process runs, for its pages and the console.
pub struct LocalApp {
    pub refresh: Arc<LocalRefresh>,
    pub store: Arc<dyn CacheStorage>,
    pub activity: Arc<Activity>,
    pub ttl: TtlTable,
    pub time_scale: u32,
}

impl LocalApp {
    /// Every configured key's state, with the recent activity.
    pub async fn status(&self) -> Result<StatusReport, crate::ports::StoreError> {
        let mut report = StatusReport::read(
            &*self.store,
            self.refresh.planner.configured(),
            &self.ttl,
            Timestamp::now(),
        )
        .await?;
        report.time_scale = self.time_scale;
        report.activity = Some(self.activity.report());
        Ok(report)
    }
}

/// The reader's router, with the local pages in front of it.
pub struct LocalRouter {
    pub reader: Router,
    pub app: Arc<LocalApp>,
}

fn respond(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> ApiResponse {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn json_of<T: Serialize>(status: StatusCode, value: &T) -> ApiResponse {
    // Reports of strings and numbers: serializing cannot fail.
    let body = serde_json::to_vec(value).unwrap_or_default();
    respond(status, "application/json", body)
}

/// An error in the reader's shape: `{"error": CODE, "message", "details"}`.
fn failure(status: StatusCode, code: &str, message: &str) -> ApiResponse {
    json_of(
        status,
        &json!({"error": code, "message": message, "details": {}}),
    )
}

/// Whether `authority` (a `Host` header's value) names this machine's
/// loopback.
fn is_loopback_authority(authority: &str) -> bool {
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    };
    matches!(host, "localhost" | "[::1]") || host.starts_with("127.")
}

impl LocalRouter {
    async fn local(&self, req: &ApiRequest) -> Option<ApiResponse> {
        let app = &self.app;
        let unavailable = |e: &dyn std::error::Error| {
            failure(
                StatusCode::SERVICE_UNAVAILABLE,
                "STORE_UNAVAILABLE",
                &errors::chain(e),
            )
        };
        let allowed = |method: &'static str| {
            (req.method.as_str() != method).then(|| {
                self.reader.error(&ApiError::MethodNotAllowed {
                    method: req.method.to_string(),
                    allow: method,
                })
            })
        };
        Some(match req.path.as_str() {
            "/" | "/index.html" => allowed("GET")
                .unwrap_or_else(|| respond(StatusCode::OK, "text/html; charset=utf-8", PAGE)),
            STATUS_PATH => match allowed("GET") {
                Some(refused) => refused,
                None => match app.status().await {
                    Ok(report) => json_of(StatusCode::OK, &report),
                    Err(e) => unavailable(&e),
                },
            },
            PLAN_PATH => match allowed("GET") {
                Some(refused) => refused,
                None => match app.refresh.planner.preview().await {
                    Ok(preview) => json_of(StatusCode::OK, &preview),
                    Err(e) => unavailable(&e),
                },
            },
            REFRESH_PATH => match allowed("POST") {
                Some(refused) => refused,
                None => self.refresh(req).await,
            },
            WARM_PATH => match allowed("POST") {
                Some(refused) => refused,
                None => match parse_warm(&req.body) {
                    Ok(warm) => self.run(&Trigger::Warm(warm)).await,
                    Err(e) => self.reader.error(&e),
                },
            },
            EXPORT_PATH => match allowed("GET") {
                Some(refused) => refused,
                None => match portable::export(&*app.store, Timestamp::now()).await {
                    Ok(file) => respond(StatusCode::OK, "application/x-ndjson", file),
                    Err(e) => unavailable(&e),
                },
            },
            IMPORT_PATH => match allowed("POST") {
                Some(refused) => refused,
                None => match portable::import(&*app.store, &req.body, Timestamp::now()).await {
                    Ok(report) => json_of(StatusCode::OK, &report),
                    Err(e @ PortableError::NotAnExport { .. }) => {
                        failure(StatusCode::BAD_REQUEST, "NOT_AN_EXPORT", &e.to_string())
                    }
                    Err(e) => unavailable(&e),
                },
            },
            _ => return None,
        })
    }

    /// `POST /_local/refresh`: `?due` runs what a tick would; otherwise the
    /// body is an invalidation (`{"dataType","region","accountId"}`, each
    /// optional). Answers the run's summary once it ends.
    async fn refresh(&self, req: &ApiRequest) -> ApiResponse {
        let trigger = if req.query.iter().any(|(k, _)| k == "due") {
            Trigger::Schedule
        } else {
            match parse_invalidation(&req.body) {
                Ok(invalidation) => Trigger::Manual(invalidation),
                Err(e) => return self.reader.error(&e),
            }
        };
        self.run(&trigger).await
    }

    /// Runs `trigger` to its end; answers its summary.
    async fn run(&self, trigger: &Trigger) -> ApiResponse {
        match self.app.refresh.run(trigger).await {
            Ok(summary) => json_of(StatusCode::OK, &summary),
            Err(e) => failure(
                StatusCode::SERVICE_UNAVAILABLE,
                "STORE_UNAVAILABLE",
                &errors::chain(&e),
            ),
        }
    }
}

fn parse_invalidation(body: &Bytes) -> Result<Invalidation, ApiError> {
    crate::read::parse_invalidation(body)
}

/// `POST /_local/warm`'s body: `{"accountId": "...", "seconds": N}`, seconds
/// optional (the warm window).
fn parse_warm(body: &Bytes) -> Result<WarmRequest, ApiError> {
    let text = String::from_utf8_lossy(body);
    let fields: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(body).map_err(|_| {
            ApiError::invalid(
                "body",
                "must be a JSON object with accountId and optional seconds",
                &text,
            )
        })?;
    let account = match fields.get("accountId") {
        Some(serde_json::Value::String(raw)) => {
            AccountId::parse(raw).map_err(|e| ApiError::invalid("accountId", e.reason, raw))?
        }
        Some(other) => {
            return Err(ApiError::invalid(
                "accountId",
                "must be a string",
                &other.to_string(),
            ));
        }
        None => return Err(ApiError::MissingParameter { field: "accountId" }),
    };
    let max = crate::domain::demand::MAX_WINDOW.as_secs();
    let window = match fields.get("seconds") {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => match v.as_u64().filter(|s| (1..=max).contains(s)) {
            Some(s) => Some(std::time::Duration::from_secs(s)),
            None => {
                return Err(ApiError::invalid(
                    "seconds",
                    "must be a whole number from 1 to 604800 (7 days)",
                    &v.to_string(),
                ));
            }
        },
    };
    if let Some(name) = fields.keys().find(|k| *k != "accountId" && *k != "seconds") {
        return Err(ApiError::invalid(
            name,
            "is not a field of a warm request (accountId, seconds)",
            name,
        ));
    }
    Ok(WarmRequest { account, window })
}

impl Handler for LocalRouter {
    async fn handle(&self, req: ApiRequest) -> ApiResponse {
        match self.local(&req).await {
            Some(response) => response,
            None => self.reader.handle(&req).await,
        }
    }

    fn error(&self, error: &ApiError) -> ApiResponse {
        self.reader.error(error)
    }

    /// The local server answers only this machine: a request whose `Host` is
    /// not a loopback name (a DNS-rebinding page) or that a page of another
    /// origin sent (a cross-site form or fetch) is `403`, before its body is
    /// read. The CLI and curl send no `Origin`; the status page is same-origin.
    fn refuse(&self, headers: &http::HeaderMap) -> Option<ApiResponse> {
        let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
        let host = text(header::HOST);
        let host_ok = host.is_none_or(is_loopback_authority);
        let origin_ok = text(header::ORIGIN).is_none_or(|origin| {
            origin
                .strip_prefix("http://")
                .is_some_and(|authority| Some(authority) == host)
        });
        (!(host_ok && origin_ok)).then(|| {
            failure(
                StatusCode::FORBIDDEN,
                "FORBIDDEN",
                "the local server answers this machine only: the Host must be a loopback name, and a browser page must be the server's own",
            )
        })
    }

    fn body_limit(&self, path: &str) -> usize {
        if path == IMPORT_PATH {
            MAX_IMPORT_BYTES
        } else {
            crate::read::MAX_INVALIDATION_BYTES
        }
    }
}
