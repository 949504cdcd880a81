//! Admin over HTTP, for the binary and other processes: `GET /_sim/config`,
//! `PUT /_sim/config` (the whole configuration, validated) and
//! `GET /_sim/requests`. Errors are `{"error", "message", "details"}`.

use http::{Method, StatusCode};
use serde_json::json;

use crate::{config::SimConfig, exchange::Reply, service::RequestCounts};

const JSON: &str = "application/json";

/// What the admin endpoints read and change: the running simulator's state.
pub(crate) trait State {
    /// The configuration in force.
    fn current_config(&self) -> SimConfig;
    /// Puts `config` in force.
    fn replace_config(&self, config: SimConfig);
    /// The requests answered so far.
    fn request_counts(&self) -> RequestCounts;
}

pub(crate) fn handle(state: &impl State, method: &Method, path: &str, body: &[u8]) -> Reply {
    match (path, method) {
        ("/_sim/config", &Method::GET) => ok(&state.current_config()),
        ("/_sim/config", &Method::PUT) => {
            let text = String::from_utf8_lossy(body);
            match SimConfig::from_json(&text) {
                Ok(config) => {
                    state.replace_config(config);
                    ok(&state.current_config())
                }
                Err(e) => error(
                    StatusCode::BAD_REQUEST,
                    "InvalidConfig",
                    &e.to_string(),
                    json!({"field": e.field}),
                ),
            }
        }
        ("/_sim/requests", &Method::GET) => ok(&state.request_counts()),
        ("/_sim/config" | "/_sim/requests", _) => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            &format!("{method} is not allowed on {path}"),
            json!({"path": path}),
        ),
        _ => error(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("no admin endpoint {path}"),
            json!({"path": path}),
        ),
    }
}

fn ok(value: &impl serde::Serialize) -> Reply {
    match serde_json::to_string_pretty(value) {
        Ok(body) => Reply::new(StatusCode::OK, JSON, body, ""),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal",
            &e.to_string(),
            json!({}),
        ),
    }
}

fn error(status: StatusCode, code: &str, message: &str, details: serde_json::Value) -> Reply {
    let body = json!({"error": code, "message": message, "details": details});
    Reply::new(status, JSON, body.to_string(), "")
}
