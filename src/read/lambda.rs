//! The reader as a Lambda function: API Gateway REST (v1) and HTTP API (v2)
//! proxy events, and direct invocations `{"operation", "queryParams"}`.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::Method;
use lambda_http::{
    Body, RequestExt,
    aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayV2httpResponse},
    request::{LambdaRequest, RequestOrigin},
};
use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use serde_json::{Value, value::RawValue};

use crate::invocation::{ErrorType, InvocationError};

use super::{
    ApiError, ApiRequest, ApiResponse, Router, Served,
    http::{HEALTH_PATH, health},
};

/// What the reader function returns, shaped for its caller.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum ReaderResponse {
    RestApi(ApiGatewayProxyResponse),
    HttpApi(ApiGatewayV2httpResponse),
    Direct(DirectResponse),
}

/// A direct invocation's answer: the body and how it was served.
#[derive(Debug, Serialize)]
pub struct DirectResponse {
    pub data: Box<RawValue>,
    pub cache: CacheInfo,
}

/// How the data was served; empty for a health check.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheInfo {
    pub tier: String,
    pub status: String,
    pub age_seconds: u64,
    pub etag: String,
    /// As `X-Refresh-Error`: the kind of the last failed refresh, or
    /// `OwnerUnavailable`; absent when neither.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_error: Option<&'static str>,
    /// As `X-Owner-Region`, with `OwnerUnavailable`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_region: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DirectInvocation {
    operation: String,
    #[serde(default)]
    query_params: BTreeMap<String, Value>,
}

/// Runs the reader function until the runtime stops it. When reads are
/// noted (demand-aware refresh), an internal extension writes each
/// invocation's notes once its answer is made, while the runtime posts it,
/// and before the environment is frozen (the extension asks for its next
/// event only then): the caller never waits for the notes, and no note waits
/// in a frozen environment.
pub async fn run(router: Router) -> Result<(), lambda_runtime::Error> {
    let Some(recorder) = router.demand() else {
        return lambda_runtime::run(lambda_runtime::service_fn(|event| handle(&router, event)))
            .await;
    };
    let (answered, answers) = tokio::sync::mpsc::unbounded_channel::<()>();
    let answers = std::sync::Arc::new(tokio::sync::Mutex::new(answers));
    let notes = lambda_extension::service_fn(move |_: lambda_extension::LambdaEvent| {
        let (recorder, answers) = (recorder.clone(), answers.clone());
        async move {
            // The invocation's answer first: its notes are all taken then.
            answers.lock().await.recv().await;
            recorder.flush().await;
            Ok::<(), lambda_extension::Error>(())
        }
    });
    let extension = lambda_extension::Extension::new()
        .with_events(&["INVOKE"])
        .with_events_processor(notes)
        .with_extension_name("drs-cache-demand-notes")
        .register()
        .await?;
    let handler = lambda_runtime::service_fn(|event| {
        let answered = answered.clone();
        let router = &router;
        async move {
            let answer = handle(router, event).await;
            // The extension outlives every invocation: a send cannot fail.
            let _ = answered.send(());
            answer
        }
    });
    tokio::try_join!(lambda_runtime::run(handler), extension.run())?;
    Ok(())
}

/// Handles one invocation of the reader function.
pub async fn handle(
    router: &Router,
    event: LambdaEvent<Box<RawValue>>,
) -> Result<ReaderResponse, InvocationError> {
    let raw = event.payload.get();
    if let Ok(probe) = serde_json::from_str::<Value>(raw)
        && probe.get("operation").is_some()
    {
        return direct(router, raw)
            .await
            .and_then(within_response_limit)
            .map(ReaderResponse::Direct);
    }
    let request: LambdaRequest = serde_json::from_str(raw).map_err(|e| {
        InvocationError::with_message(
            ErrorType::InvalidInput,
            format!(
                "expected an API Gateway proxy event or {{\"operation\", \"queryParams\"}}: {e}"
            ),
        )
    })?;
    let origin = request.request_origin();
    let stage = match &request {
        LambdaRequest::ApiGatewayV1(r) => r.request_context.stage.clone(),
        LambdaRequest::ApiGatewayV2(r) => r.request_context.stage.clone(),
        _ => None,
    };
    let http_request: http::Request<Body> = request.into();
    let body = Bytes::copy_from_slice(http_request.body());
    let mut api = ApiRequest::from_http(&http_request, body);
    api.path = route_path(http_request.raw_http_path(), stage.as_deref()).to_owned();
    // Every answer is checked against Lambda's limit, a read's before its
    // metrics are recorded.
    let response = router.handle_within(&api, fits_lambda).await;
    let binary = is_binary(&response);
    Ok(gateway_response(&origin, response, binary))
}

/// `RESPONSE_TOO_LARGE` for an answer whose proxy response would be over
/// Lambda's limit.
fn fits_lambda(response: &ApiResponse) -> Result<(), ApiError> {
    let carried = carried_bytes(response, is_binary(response));
    if carried > MAX_RESPONSE_BYTES {
        return Err(ApiError::ResponseTooLarge {
            bytes: carried,
            limit: MAX_RESPONSE_BYTES,
        });
    }
    Ok(())
}

/// Lambda's limit on the response of a synchronous invocation, the proxy
/// event's JSON envelope included.
pub const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;

/// Room left for the envelope and the headers of an answer.
const ENVELOPE_BYTES: usize = 16 * 1024;

/// The bytes `response` takes in the proxy response's JSON: a compressed body
/// travels base64-encoded, a text body JSON-escaped.
fn carried_bytes(response: &ApiResponse, binary: bool) -> usize {
    let body = response.body();
    let encoded = if binary {
        body.len().div_ceil(3) * 4
    } else {
        body.len()
            + body
                .iter()
                .map(|b| match b {
                    b'"' | b'\\' => 1,
                    0..0x20 => 5,
                    _ => 0,
                })
                .sum::<usize>()
    };
    encoded + ENVELOPE_BYTES
}

/// A direct answer that fits Lambda's response limit, else a typed
/// `RESPONSE_TOO_LARGE`: Lambda would fail the invocation with an error of its
/// own. A direct invocation cannot ask for compression; a page can fit.
fn within_response_limit(response: DirectResponse) -> Result<DirectResponse, InvocationError> {
    let bytes = response.data.get().len() + ENVELOPE_BYTES;
    if bytes <= MAX_RESPONSE_BYTES {
        return Ok(response);
    }
    Err(direct_too_large(bytes))
}

/// The typed error of a direct answer of `bytes`, over Lambda's limit.
fn direct_too_large(bytes: usize) -> InvocationError {
    InvocationError::api(
        ApiError::ResponseTooLarge {
            bytes,
            limit: MAX_RESPONSE_BYTES,
        }
        .code(),
        format!(
            "the answer is {bytes} bytes, over Lambda's {MAX_RESPONSE_BYTES}-byte response limit: read it a page at a time (queryParams limit and nextToken)"
        ),
    )
}

/// A body with a `Content-Encoding` is bytes, never text.
fn is_binary(response: &ApiResponse) -> bool {
    response
        .headers()
        .contains_key(http::header::CONTENT_ENCODING)
        || std::str::from_utf8(response.body()).is_err()
}

/// The path a request was made to, without the API stage that HTTP APIs put
/// in front of it (`/prod/drs/quotas` on stage `prod` is `/drs/quotas`).
fn route_path<'a>(raw: &'a str, stage: Option<&str>) -> &'a str {
    match stage {
        Some(stage) if stage != "$default" => raw
            .strip_prefix('/')
            .and_then(|p| p.strip_prefix(stage))
            .filter(|rest| rest.starts_with('/'))
            .unwrap_or(raw),
        _ => raw,
    }
}

async fn direct(router: &Router, raw: &str) -> Result<DirectResponse, InvocationError> {
    let unreadable = |what: &str| {
        InvocationError::api("CACHE_UNAVAILABLE", format!("cached body is not {what}"))
    };
    let invalid = |message: String| InvocationError::api(ApiError::INVALID_PARAMETER, message);
    let call: DirectInvocation =
        serde_json::from_str(raw).map_err(|e| invalid(format!("invocation: {e}")))?;
    let path = if call.operation.starts_with('/') {
        call.operation.clone()
    } else {
        format!("/{}", call.operation.replacen('-', "/", 1))
    };
    let mut query = Vec::with_capacity(call.query_params.len());
    for (name, value) in &call.query_params {
        match value {
            Value::String(s) => query.push((name.as_str(), s.as_str())),
            Value::Null => {}
            _ => return Err(invalid(format!("queryParams.{name} must be a string"))),
        }
    }
    if path == HEALTH_PATH {
        return Ok(DirectResponse {
            data: serde_json::value::to_raw_value(&health()).map_err(|_| unreadable("JSON"))?,
            cache: CacheInfo::default(),
        });
    }
    if path.strip_suffix('/').unwrap_or(&path) == super::inventory::INVENTORY_PATH {
        return direct_inventory(router, &path, &query).await;
    }
    // An answer over the limit is refused before the read's metrics are
    // recorded, so that it counts as an error served.
    let fits = |served: &Served| {
        let bytes = served.body.identity().len() + ENVELOPE_BYTES;
        match bytes > MAX_RESPONSE_BYTES {
            true => Err(ApiError::ResponseTooLarge {
                bytes,
                limit: MAX_RESPONSE_BYTES,
            }),
            false => Ok(()),
        }
    };
    let served = router
        .read_checked(&Method::GET, &path, query, fits)
        .await
        .map_err(|e| match e {
            ApiError::ResponseTooLarge { bytes, .. } => direct_too_large(bytes),
            e => InvocationError::api(e.code(), e.to_string()),
        })?;
    let body =
        String::from_utf8(served.body.identity().to_vec()).map_err(|_| unreadable("UTF-8"))?;
    let data = RawValue::from_string(body).map_err(|_| unreadable("JSON"))?;
    Ok(DirectResponse {
        data,
        cache: CacheInfo {
            tier: served.tier.as_str().to_owned(),
            status: served.status().to_owned(),
            age_seconds: served.age,
            etag: served.etag.as_str().to_owned(),
            refresh_error: served.refresh_error_header(),
            owner_region: served.awaiting_owner.as_ref().map(ToString::to_string),
        },
    })
}

/// `drs-inventory` invoked directly: the inventory answer as `data`, its
/// merged freshness as `cache` (`tier` is `merged`: each target was read from
/// its own tier), and its error as a typed error.
async fn direct_inventory(
    router: &Router,
    path: &str,
    query: &[(&str, &str)],
) -> Result<DirectResponse, InvocationError> {
    let response = super::inventory::merged(router, &super::ApiRequest::get(path, query))
        .await
        .map_err(|e| InvocationError::api(e.code(), e.to_string()))?;
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    // The inventory answer is JSON the reader built itself.
    let body = String::from_utf8(response.body().to_vec()).unwrap_or_default();
    let data = RawValue::from_string(body).map_err(|e| {
        InvocationError::api("CACHE_UNAVAILABLE", format!("inventory is not JSON: {e}"))
    })?;
    Ok(DirectResponse {
        data,
        cache: CacheInfo {
            tier: "merged".to_owned(),
            status: header("x-cache-status").to_owned(),
            age_seconds: header("age").parse().unwrap_or(0),
            etag: header("etag").trim_matches('"').to_owned(),
            ..CacheInfo::default()
        },
    })
}

/// The proxy response carrying `response`, its body base64-encoded when
/// `binary` (see [`is_binary`]).
fn gateway_response(origin: &RequestOrigin, response: ApiResponse, binary: bool) -> ReaderResponse {
    let (parts, bytes) = response.into_parts();
    let body = (!bytes.is_empty()).then(|| match String::from_utf8(bytes.to_vec()) {
        Ok(text) if !binary => Body::Text(text),
        Ok(text) => Body::Binary(text.into_bytes()),
        Err(e) => Body::Binary(e.into_bytes()),
    });
    let is_base64_encoded = matches!(body, Some(Body::Binary(_)));
    let status_code = i64::from(parts.status.as_u16());
    match origin {
        RequestOrigin::ApiGatewayV2 => {
            let mut r = ApiGatewayV2httpResponse::default();
            r.status_code = status_code;
            r.headers = parts.headers;
            r.body = body;
            r.is_base64_encoded = is_base64_encoded;
            ReaderResponse::HttpApi(r)
        }
        _ => {
            let mut r = ApiGatewayProxyResponse::default();
            r.status_code = status_code;
            // REST APIs merge both header maps; use one so nothing is repeated.
            r.multi_value_headers = parts.headers;
            r.body = body;
            r.is_base64_encoded = is_base64_encoded;
            ReaderResponse::RestApi(r)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::route_path;

    #[test]
    fn the_stage_is_not_part_of_the_route() {
        assert_eq!(route_path("/prod/drs/quotas", Some("prod")), "/drs/quotas");
        assert_eq!(route_path("/drs/quotas", Some("prod")), "/drs/quotas");
        assert_eq!(route_path("/drs/quotas", Some("$default")), "/drs/quotas");
        assert_eq!(route_path("/production/x", Some("prod")), "/production/x");
        assert_eq!(route_path("/drs/quotas", None), "/drs/quotas");
    }
}
