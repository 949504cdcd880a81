//! DRS over restJson1: `POST /DescribeSourceServers`, `/DescribeJobs`,
//! `/DescribeRecoveryInstances` and `/DescribeSourceNetworks` with a JSON body,
//! and `GET /ListStagingAccounts?maxResults=&nextToken=`. Errors carry their code in
//! `x-amzn-ErrorType` and a JSON body with `message`; throttling (429) and
//! internal errors (500) carry `Retry-After`.

use std::str::FromStr;

use http::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{
    clock::SimTime,
    exchange::{Call, Reply},
    faults::Fault,
    page::{Pager, page},
};

/// The operations served, named as in the API and in the request counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumString, strum::IntoStaticStr)]
enum Operation {
    DescribeSourceServers,
    DescribeJobs,
    DescribeRecoveryInstances,
    DescribeSourceNetworks,
    ListStagingAccounts,
}

impl Operation {
    /// The method of its restJson1 binding; the path is `/` and the name.
    fn method(self) -> Method {
        match self {
            Self::DescribeSourceServers
            | Self::DescribeJobs
            | Self::DescribeRecoveryInstances
            | Self::DescribeSourceNetworks => Method::POST,
            Self::ListStagingAccounts => Method::GET,
        }
    }
}

/// The most `maxResults` the Describe operations and ListStagingAccounts accept.
const DESCRIBE_MAX: i64 = 1_000;
const STAGING_MAX: i64 = 50;
/// The most IDs one filter may list (`jobIDs`: 1000, `sourceNetworkIDs`: 100).
const FILTER_MAX: usize = 200;
const JOB_FILTER_MAX: usize = 1_000;
const NETWORK_FILTER_MAX: usize = 100;

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
        Ok(Operation::DescribeJobs) => describe_jobs(call, body),
        Ok(Operation::DescribeRecoveryInstances) => describe_recovery_instances(call, body),
        Ok(Operation::DescribeSourceNetworks) => describe_source_networks(call, body),
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

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", bound = "F: Deserialize<'de>")]
struct DescribeInput<F> {
    #[serde(default)]
    filters: Option<F>,
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

/// The input of a Describe operation (an empty body is no input).
fn describe_input<F: serde::de::DeserializeOwned>(
    body: &[u8],
) -> Result<DescribeInput<F>, DrsError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(DescribeInput {
            filters: None,
            max_results: None,
            next_token: None,
        })
    } else {
        serde_json::from_slice(body).map_err(DrsError::cannot_parse)
    }
}

/// One page of `matching` (rendered items) as `{"items": [...], "nextToken"}`,
/// the token bound to `operation` and `filters`.
fn items_page<F: Serialize>(
    call: &Call<'_>,
    operation: Operation,
    input: &DescribeInput<F>,
    filters: &F,
    matching: &[&str],
) -> Result<String, DrsError> {
    let limit = max_results(input.max_results, DESCRIBE_MAX)?;
    let filter_text = serde_json::to_string(filters).unwrap_or_default();
    let pager = call.pager(operation.into(), &filter_text);
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

fn describe_source_servers(call: &Call<'_>, body: &[u8]) -> Result<String, DrsError> {
    let input: DescribeInput<Filters> = describe_input(body)?;
    max_results(input.max_results, DESCRIBE_MAX)?;
    let filters = input.filters.as_ref();
    let default = Filters::default();
    let filters = filters.unwrap_or(&default);
    validate_filters(filters)?;

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
    items_page(
        call,
        Operation::DescribeSourceServers,
        &input,
        filters,
        &matching,
    )
}

#[derive(Debug, Default, Deserialize, Serialize)]
struct JobFilters {
    #[serde(default, rename = "jobIDs")]
    job_ids: Option<Vec<String>>,
    #[serde(default, rename = "fromDate")]
    from_date: Option<String>,
    #[serde(default, rename = "toDate")]
    to_date: Option<String>,
}

fn describe_jobs(call: &Call<'_>, body: &[u8]) -> Result<String, DrsError> {
    let input: DescribeInput<JobFilters> = describe_input(body)?;
    max_results(input.max_results, DESCRIBE_MAX)?;
    let default = JobFilters::default();
    let filters = input.filters.as_ref().unwrap_or(&default);
    let ids = filters.job_ids.as_deref().unwrap_or_default();
    check_ids(
        "filters.jobIDs",
        ids,
        JOB_FILTER_MAX,
        "^drsjob-[0-9a-zA-Z]{17}$",
        |id| is_id(id, "drsjob-", 17),
    )?;
    let from = date_filter("filters.fromDate", filters.from_date.as_deref())?;
    let to = date_filter("filters.toDate", filters.to_date.as_deref())?;

    let fleet = call.fleet();
    let matching: Vec<&str> = fleet
        .jobs
        .iter()
        .filter(|j| ids.is_empty() || ids.contains(&j.id))
        .filter(|j| from.is_none_or(|from| j.created >= from))
        .filter(|j| to.is_none_or(|to| j.created <= to))
        .map(|j| j.json.as_str())
        .collect();
    items_page(call, Operation::DescribeJobs, &input, filters, &matching)
}

#[derive(Debug, Default, Deserialize, Serialize)]
struct RecoveryInstanceFilters {
    #[serde(default, rename = "recoveryInstanceIDs")]
    recovery_instance_ids: Option<Vec<String>>,
    #[serde(default, rename = "sourceServerIDs")]
    source_server_ids: Option<Vec<String>>,
}

fn describe_recovery_instances(call: &Call<'_>, body: &[u8]) -> Result<String, DrsError> {
    let input: DescribeInput<RecoveryInstanceFilters> = describe_input(body)?;
    max_results(input.max_results, DESCRIBE_MAX)?;
    let default = RecoveryInstanceFilters::default();
    let filters = input.filters.as_ref().unwrap_or(&default);
    let ids = filters.recovery_instance_ids.as_deref().unwrap_or_default();
    check_ids(
        "filters.recoveryInstanceIDs",
        ids,
        FILTER_MAX,
        "^i-[0-9a-fA-F]{8,}$",
        |id| {
            (10..=19).contains(&id.len())
                && id
                    .strip_prefix("i-")
                    .is_some_and(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
        },
    )?;
    let servers = filters.source_server_ids.as_deref().unwrap_or_default();
    check_ids(
        "filters.sourceServerIDs",
        servers,
        FILTER_MAX,
        "^s-[0-9a-zA-Z]{17}$",
        is_server_id,
    )?;

    let fleet = call.fleet();
    let matching: Vec<&str> = fleet
        .recovery_instances
        .iter()
        .filter(|r| ids.is_empty() || ids.contains(&r.id))
        .filter(|r| servers.is_empty() || servers.contains(&r.source_server))
        .map(|r| r.json.as_str())
        .collect();
    items_page(
        call,
        Operation::DescribeRecoveryInstances,
        &input,
        filters,
        &matching,
    )
}

#[derive(Debug, Default, Deserialize, Serialize)]
struct SourceNetworkFilters {
    #[serde(default, rename = "sourceNetworkIDs")]
    source_network_ids: Option<Vec<String>>,
    #[serde(default, rename = "originAccountID")]
    origin_account_id: Option<String>,
    #[serde(default, rename = "originRegion")]
    origin_region: Option<String>,
}

fn describe_source_networks(call: &Call<'_>, body: &[u8]) -> Result<String, DrsError> {
    let input: DescribeInput<SourceNetworkFilters> = describe_input(body)?;
    max_results(input.max_results, DESCRIBE_MAX)?;
    let default = SourceNetworkFilters::default();
    let filters = input.filters.as_ref().unwrap_or(&default);
    let ids = filters.source_network_ids.as_deref().unwrap_or_default();
    check_ids(
        "filters.sourceNetworkIDs",
        ids,
        NETWORK_FILTER_MAX,
        "^sn-[0-9a-zA-Z]{17}$",
        |id| is_id(id, "sn-", 17),
    )?;
    if let Some(account) = &filters.origin_account_id
        && !(account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(DrsError::field(
            "filters.originAccountID",
            format!("{account:?} is not a 12-digit account ID"),
        ));
    }
    if let Some(region) = &filters.origin_region
        && crate::ids::Region::parse(region).is_err()
    {
        return Err(DrsError::field(
            "filters.originRegion",
            format!("{region:?} is not an AWS region name"),
        ));
    }

    let networks = call.source_networks();
    let matching: Vec<&str> = networks
        .iter()
        .filter(|n| ids.is_empty() || ids.contains(&n.id))
        .filter(|n| {
            filters
                .origin_account_id
                .as_ref()
                .is_none_or(|a| *a == n.account)
        })
        .filter(|n| {
            filters
                .origin_region
                .as_ref()
                .is_none_or(|r| *r == n.region)
        })
        .map(|n| n.json.as_str())
        .collect();
    items_page(
        call,
        Operation::DescribeSourceNetworks,
        &input,
        filters,
        &matching,
    )
}

/// At most `max` IDs, each one `valid`.
fn check_ids(
    field: &str,
    ids: &[String],
    max: usize,
    pattern: &str,
    valid: impl Fn(&str) -> bool,
) -> Result<(), DrsError> {
    if ids.len() > max {
        return Err(DrsError::field(field, format!("at most {max} IDs")));
    }
    match ids.iter().find(|id| !valid(id)) {
        Some(bad) => Err(DrsError::field(
            field,
            format!("{bad:?} does not match {pattern}"),
        )),
        None => Ok(()),
    }
}

/// A `fromDate` or `toDate`: ISO-8601 in UTC, `2024-06-01T10:11:12(.123)Z`.
fn date_filter(field: &str, value: Option<&str>) -> Result<Option<SimTime>, DrsError> {
    value
        .map(|text| {
            SimTime::parse_utc(text).ok_or_else(|| {
                DrsError::field(
                    field,
                    format!("{text:?} is not a date-time such as 2024-06-01T10:11:12Z"),
                )
            })
        })
        .transpose()
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
    is_id(id, "s-", 17)
}

/// `prefix` and `len` letters or digits.
fn is_id(id: &str, prefix: &str, len: usize) -> bool {
    id.strip_prefix(prefix)
        .is_some_and(|rest| rest.len() == len && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}
