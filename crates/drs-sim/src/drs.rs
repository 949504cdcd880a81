//! DRS over restJson1: `POST /DescribeSourceServers` with a JSON body and
//! `GET /ListStagingAccounts?maxResults=&nextToken=`. Errors carry their code in
//! `x-amzn-ErrorType` and a JSON body with `message`; throttling (429) and
//! internal errors (500) carry `Retry-After`.

use std::str::FromStr;

use http::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{
    exchange::{Call, Reply},
    faults::Fault,
    page::{Pager, page},
};

/// The operations served, named as in the API and in the request counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumString, strum::IntoStaticStr)]
enum Operation {
    DescribeSourceServers,
    ListStagingAccounts,
}

impl Operation {
    /// The method of its restJson1 binding; the path is `/` and the name.
    fn method(self) -> Method {
        match self {
            Self::DescribeSourceServers => Method::POST,
            Self::ListStagingAccounts => Method::GET,
        }
    }
}

/// The most `maxResults` DescribeSourceServers and ListStagingAccounts accept.
const DESCRIBE_MAX: i64 = 1_000;
const STAGING_MAX: i64 = 50;
/// The most IDs one filter may list.
const FILTER_MAX: usize = 200;

/// The operation a request names: its path, when the method is the right one;
/// otherwise the method and path (`GET /DescribeSourceServers`).
pub(crate) fn operation(method: &Method, path: &str) -> String {
    let named = path
        .strip_prefix('/')
        .and_then(|name| Operation::from_str(name).ok());
    match named {
        Some(operation) if operation.method() == *method => <&str>::from(operation).to_owned(),
        _ => format!("{method} {path}"),
    }
}

/// Answers `operation` (from [`operation`]).
pub(crate) fn answer(call: &Call<'_>, operation: &str, query: Option<&str>, body: &[u8]) -> Reply {
    let result = match Operation::from_str(operation) {
        Ok(Operation::DescribeSourceServers) => describe_source_servers(call, body),
        Ok(Operation::ListStagingAccounts) => list_staging_accounts(call, query),
        Err(_) => Err(DrsError::unknown_operation(operation)),
    };
    match result {
        Ok(body) => Reply::new(StatusCode::OK, "application/json", body, &call.request_id),
        Err(error) => error.reply(&call.request_id),
    }
}

/// The answer of `fault` to `operation`.
pub(crate) fn fault(call: &Call<'_>, fault: Fault, operation: &str) -> Reply {
    let error = match fault {
        Fault::Throttle => DrsError {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "ThrottlingException",
            body: json!({"message": "Rate exceeded", "serviceCode": "drs"}),
            retry_after: Some(call.retry_after),
        },
        Fault::ServerError => DrsError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "InternalServerException",
            body: json!({"message": "An internal error occurred. Try again later."}),
            retry_after: Some(call.retry_after),
        },
        Fault::DisabledRegion => DrsError::plain(
            StatusCode::FORBIDDEN,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ),
        Fault::AccessDenied => DrsError {
            status: StatusCode::FORBIDDEN,
            code: "AccessDeniedException",
            body: json!({
                "message": format!(
                    "User: arn:aws:sts::{}:assumed-role/caller/session is not authorized to perform: drs:{operation}",
                    call.account
                ),
                "code": "AccessDeniedException",
            }),
            retry_after: None,
        },
        Fault::NotInitialized => DrsError {
            status: StatusCode::BAD_REQUEST,
            code: "UninitializedAccountException",
            body: json!({
                "message": "Account not initialized. Initialize Elastic Disaster Recovery in this Region first.",
                "code": "UninitializedAccountException",
            }),
            retry_after: None,
        },
    };
    error.reply(&call.request_id)
}

/// A DRS error answer.
#[derive(Debug)]
pub(crate) struct DrsError {
    status: StatusCode,
    code: &'static str,
    body: Value,
    retry_after: Option<u64>,
}

impl DrsError {
    pub(crate) fn plain(status: StatusCode, code: &'static str, message: &str) -> Self {
        Self {
            status,
            code,
            body: json!({"message": message}),
            retry_after: None,
        }
    }

    fn unknown_operation(operation: &str) -> Self {
        Self::plain(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            &format!("Unknown operation {operation}"),
        )
    }

    fn cannot_parse(message: impl std::fmt::Display) -> Self {
        Self::validation(
            "cannotParse",
            format!("Unable to parse the request: {message}"),
            None,
        )
    }

    fn field(name: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::validation(
            "fieldValidationFailed",
            format!("Invalid value for {name}: {message}"),
            Some(json!([{"name": name, "message": message}])),
        )
    }

    fn validation(reason: &str, message: String, fields: Option<Value>) -> Self {
        let mut body = json!({"message": message, "code": "ValidationException", "reason": reason});
        if let Some(fields) = fields {
            body["fieldList"] = fields;
        }
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "ValidationException",
            body,
            retry_after: None,
        }
    }

    pub(crate) fn reply(&self, request_id: &str) -> Reply {
        let mut reply = Reply::new(
            self.status,
            "application/json",
            self.body.to_string(),
            request_id,
        )
        .header("x-amzn-ErrorType", self.code);
        if let Some(secs) = self.retry_after {
            reply = reply.header("Retry-After", &secs.to_string());
        }
        reply
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeInput {
    #[serde(default)]
    filters: Option<Filters>,
    #[serde(default)]
    max_results: Option<i64>,
    #[serde(default)]
    next_token: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
struct Filters {
    #[serde(default, rename = "sourceServerIDs")]
    source_server_ids: Option<Vec<String>>,
    #[serde(default, rename = "hardwareId")]
    hardware_id: Option<String>,
    #[serde(default, rename = "stagingAccountIDs")]
    staging_account_ids: Option<Vec<String>>,
}

fn describe_source_servers(call: &Call<'_>, body: &[u8]) -> Result<String, DrsError> {
    let input: DescribeInput = if body.iter().all(u8::is_ascii_whitespace) {
        DescribeInput::default()
    } else {
        serde_json::from_slice(body).map_err(DrsError::cannot_parse)?
    };
    let limit = max_results(input.max_results, DESCRIBE_MAX)?;
    let filters = input.filters.unwrap_or_default();
    validate_filters(&filters)?;

    let fleet = call.fleet();
    let ids = filters.source_server_ids.as_deref().unwrap_or_default();
    let staging = filters.staging_account_ids.as_deref().unwrap_or_default();
    let matching: Vec<&str> = fleet
        .servers
        .iter()
        .filter(|s| ids.is_empty() || ids.contains(&s.id))
        .filter(|s| {
            filters
                .hardware_id
                .as_ref()
                .is_none_or(|h| s.hardware_ids.contains(h))
        })
        .filter(|s| {
            staging.is_empty()
                || s.staging_account
                    .as_ref()
                    .is_some_and(|a| staging.contains(a))
        })
        .map(|s| s.json.as_str())
        .collect();

    let filter_text = serde_json::to_string(&filters).unwrap_or_default();
    let pager = call.pager(Operation::DescribeSourceServers.into(), &filter_text);
    let offset = offset(&pager, input.next_token.as_deref())?;
    let (range, next) = page(matching.len(), offset, limit.min(call.max_page));
    let mut out = String::with_capacity(range.len() * 3_000 + 64);
    out.push_str("{\"items\":[");
    out.push_str(&matching[range].join(","));
    out.push(']');
    if let Some(next) = next {
        out.push_str(&format!(",\"nextToken\":\"{}\"", pager.token(next)));
    }
    out.push('}');
    Ok(out)
}

fn list_staging_accounts(call: &Call<'_>, query: Option<&str>) -> Result<String, DrsError> {
    let mut max = None;
    let mut token = None;
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "maxResults" => {
                let n = value
                    .parse::<i64>()
                    .map_err(|_| DrsError::field("maxResults", "must be a number"))?;
                max = Some(n);
            }
            "nextToken" => token = Some(value.into_owned()),
            _ => {}
        }
    }
    let limit = max_results(max, STAGING_MAX)?;
    let fleet = call.fleet();
    let pager = call.pager(Operation::ListStagingAccounts.into(), "");
    let offset = offset(&pager, token.as_deref())?;
    let accounts = &fleet.staging_accounts;
    let (range, next) = page(accounts.len(), offset, limit.min(call.max_page));
    let mut body = json!({
        "accounts": accounts[range].iter().map(|a| json!({"accountID": a})).collect::<Vec<_>>(),
    });
    if let Some(next) = next {
        body["nextToken"] = json!(pager.token(next));
    }
    Ok(body.to_string())
}

/// `maxResults`, when given, must be in `1..=max`; absent, it is `max`.
fn max_results(value: Option<i64>, max: i64) -> Result<usize, DrsError> {
    match value {
        None => Ok(max as usize),
        Some(n) if (1..=max).contains(&n) => Ok(n as usize),
        Some(n) => Err(DrsError::field(
            "maxResults",
            format!("{n} is not between 1 and {max}"),
        )),
    }
}

fn offset(pager: &Pager, token: Option<&str>) -> Result<usize, DrsError> {
    match token {
        None | Some("") => Ok(0),
        Some(token) => pager
            .offset(token)
            .ok_or_else(|| DrsError::field("nextToken", "invalid or expired pagination token")),
    }
}

fn validate_filters(filters: &Filters) -> Result<(), DrsError> {
    let ids = filters.source_server_ids.as_deref().unwrap_or_default();
    if ids.len() > FILTER_MAX {
        return Err(DrsError::field(
            "filters.sourceServerIDs",
            format!("at most {FILTER_MAX} IDs"),
        ));
    }
    if let Some(bad) = ids.iter().find(|id| !is_server_id(id)) {
        return Err(DrsError::field(
            "filters.sourceServerIDs",
            format!("{bad:?} does not match ^s-[0-9a-zA-Z]{{17}}$"),
        ));
    }
    let staging = filters.staging_account_ids.as_deref().unwrap_or_default();
    if staging.len() > FILTER_MAX {
        return Err(DrsError::field(
            "filters.stagingAccountIDs",
            format!("at most {FILTER_MAX} IDs"),
        ));
    }
    if let Some(bad) = staging
        .iter()
        .find(|a| a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(DrsError::field(
            "filters.stagingAccountIDs",
            format!("{bad:?} is not a 12-digit account ID"),
        ));
    }
    if filters.hardware_id.as_ref().is_some_and(|h| h.len() > 256) {
        return Err(DrsError::field(
            "filters.hardwareId",
            "at most 256 characters",
        ));
    }
    Ok(())
}

fn is_server_id(id: &str) -> bool {
    id.len() == 19 && id.starts_with("s-") && id.bytes().skip(2).all(|b| b.is_ascii_alphanumeric())
}
