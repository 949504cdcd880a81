//! Admin over HTTP, for the binary and other processes: `GET /_sim/config`,
//! `PUT /_sim/config` (the whole configuration, validated) and
//! `GET /_sim/requests`. Errors are `{"error", "message", "details"}`.

use http::{Method, StatusCode};
use serde_json::json;

use super::{
    config::SimConfig,
    server::{Reply, Shared},
};

const JSON: &str = "application/json";

pub(super) fn handle(shared: &Shared, method: &Method, path: &str, body: &[u8]) -> Reply {
    match (path, method) {
        ("/_sim/config", &Method::GET) => ok(&*shared.config()),
        ("/_sim/config", &Method::PUT) => {
            let text = String::from_utf8_lossy(body);
            match SimConfig::from_json(&text) {
                Ok(config) => {
                    *shared.config() = config;
                    ok(&*shared.config())
                }
                Err(e) => error(
                    StatusCode::BAD_REQUEST,
                    "InvalidConfig",
                    &e.to_string(),
                    json!({"field": e.field}),
                ),
            }
        }
        ("/_sim/requests", &Method::GET) => ok(&*shared.counts()),
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
