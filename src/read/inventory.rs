//! `GET /drs/inventory`: the source servers of several accounts and regions
//! in one answer, merged from their cached snapshots (each read as a single
//! read would be: memory, then the store, stale served, misses asking for a
//! refresh), with the state of every target. It never calls DRS.

use std::time::Instant;

use http::{HeaderValue, Method, StatusCode, header};
use serde_json::{Value, json};

use crate::domain::{AccountId, CacheKey, DataType, ETag, Region};

use super::{
    ApiError, ApiRequest, ApiResponse, Filter, ReadRequest, Router,
    error::json_response,
    request::filter_fields,
    service::{ReadError, Served},
};

pub const INVENTORY_PATH: &str = "/drs/inventory";
/// The most account-region targets one inventory read merges.
pub const MAX_TARGETS: usize = 100;
/// The most regions, and the most accounts, one inventory read names.
const MAX_LIST: usize = 100;

/// What an inventory read asks for.
#[derive(Debug)]
struct Inventory {
    regions: Vec<Region>,
    accounts: Vec<AccountId>,
    filter: Option<Filter>,
}

fn list<T>(
    field: &'static str,
    raw: &str,
    parse: impl Fn(&str) -> Result<T, &'static str>,
) -> Result<Vec<T>, ApiError> {
    let mut items: Vec<T> = Vec::new();
    for part in raw.split(',') {
        let item = parse(part.trim()).map_err(|reason| ApiError::invalid(field, reason, raw))?;
        items.push(item);
    }
    if items.len() > MAX_LIST {
        return Err(ApiError::invalid(field, "names more than 100 items", raw));
    }
    Ok(items)
}

fn parse(req: &ApiRequest, default_account: Option<AccountId>) -> Result<Inventory, ApiError> {
    let allowed = filter_fields(DataType::DrsSourceServers);
    let mut regions = None;
    let mut accounts = None;
    let mut filter = Filter::default();
    let mut seen: Vec<&str> = Vec::new();
    for (name, value) in &req.query {
        let (name, value) = (name.as_str(), value.as_str());
        let invalid = |reason| ApiError::invalid(name, reason, value);
        if seen.contains(&name) && !allowed.contains(&name) {
            return Err(invalid("is given more than once"));
        }
        seen.push(name);
        match name {
            "regions" => {
                regions = Some(list("regions", value, |r| {
                    Region::parse(r).map_err(|e| e.reason)
                })?);
            }
            "accountIds" => {
                accounts = Some(list("accountIds", value, |a| {
                    AccountId::parse(a).map_err(|e| e.reason)
                })?);
            }
            _ if allowed.contains(&name) => filter.add(name, value).map_err(invalid)?,
            _ => return Err(invalid("is not a parameter of this endpoint")),
        }
    }
    let mut regions = regions.ok_or(ApiError::MissingParameter { field: "regions" })?;
    let mut accounts = match accounts {
        Some(accounts) => accounts,
        None => vec![default_account.ok_or(ApiError::MissingParameter {
            field: "accountIds",
        })?],
    };
    dedup(&mut regions);
    dedup(&mut accounts);
    if regions.len() * accounts.len() > MAX_TARGETS {
        return Err(ApiError::invalid(
            "accountIds",
            "names, with regions, more than 100 account-region targets",
            &format!("{} accounts × {} regions", accounts.len(), regions.len()),
        ));
    }
    Ok(Inventory {
        regions,
        accounts,
        filter: (!filter.is_empty()).then_some(filter),
    })
}

fn dedup<T: PartialEq>(items: &mut Vec<T>) {
    let mut kept: Vec<T> = Vec::with_capacity(items.len());
    for item in items.drain(..) {
        if !kept.contains(&item) {
            kept.push(item);
        }
    }
    *items = kept;
}

/// How one target of the inventory was served.
fn target_state(served: &Result<Served, ReadError>) -> &'static str {
    match served {
        Ok(s) if s.fresh_for.is_some() => "fresh",
        Ok(_) => "stale",
        Err(ReadError::NotCached { .. }) => "missing",
        Err(ReadError::DrsNotInitialized { .. }) => "not_initialized",
        Err(ReadError::NotConfigured(_)) => "not_configured",
        Err(ReadError::Unavailable { .. } | ReadError::Unreadable { .. }) => "unavailable",
        // An inventory read is never paged.
        Err(ReadError::StaleToken { .. }) => "unavailable",
    }
}

/// Answers an inventory read.
pub(super) async fn answer(router: &Router, req: &ApiRequest) -> ApiResponse {
    match merged(router, req).await {
        Ok(response) => response,
        Err(e) => router.error(&e),
    }
}

/// The inventory answer, or why the request is refused.
pub(super) async fn merged(router: &Router, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    if req.method != Method::GET {
        return Err(ApiError::MethodNotAllowed {
            method: req.method.to_string(),
            allow: "GET",
        });
    }
    let service = router.service();
    let inventory = parse(req, service.settings().default_account)?;
    let (regions, filter) = (&inventory.regions, &inventory.filter);
    let reads: Vec<ReadRequest> = inventory
        .accounts
        .iter()
        .flat_map(|a| {
            regions.iter().map(move |r| ReadRequest {
                key: CacheKey::new(DataType::DrsSourceServers, r.clone(), *a),
                filter: filter.clone(),
                after: None,
            })
        })
        .collect();
    let answers = futures::future::join_all(reads.iter().map(|read| async move {
        let started = Instant::now();
        let served = service.read(read).await;
        router.record(DataType::DrsSourceServers, &served, started);
        served
    }))
    .await;

    let mut servers: Vec<Value> = Vec::new();
    let mut targets: Vec<Value> = Vec::with_capacity(reads.len());
    let mut fresh_for: Option<u64> = Some(u64::MAX);
    let mut oldest: u64 = 0;
    for (read, served) in reads.iter().zip(&answers) {
        let state = target_state(served);
        let mut count = 0;
        if let Ok(s) = served {
            fresh_for = fresh_for.zip(s.fresh_for).map(|(a, b)| a.min(b));
            oldest = oldest.max(s.age);
            let doc: Value = serde_json::from_slice(s.body.identity()).unwrap_or(Value::Null);
            if let Some(Value::Array(list)) = doc.get("servers") {
                count = list.len();
                let account = read.key.scope().account().map(|a| a.as_str().to_owned());
                servers.extend(list.iter().cloned().map(|mut server| {
                    if let Some(fields) = server.as_object_mut() {
                        fields.insert("region".into(), read.key.region().as_str().into());
                        // The target's account, where the record names none.
                        if fields.get("accountID").is_none_or(Value::is_null) {
                            fields.insert("accountID".into(), account.clone().into());
                        }
                    }
                    server
                }));
            }
        } else {
            fresh_for = None;
        }
        targets.push(json!({
            "accountId": read.key.scope().account().map(|a| a.as_str().to_owned()),
            "region": read.key.region().as_str(),
            "state": state,
            "ageSeconds": served.as_ref().ok().map(|s| s.age),
            "serverCount": count,
        }));
    }
    let complete = answers.iter().all(Result::is_ok);
    let body = json!({
        "servers": servers,
        "serverCount": servers.len(),
        "targets": targets,
        "complete": complete,
    });
    let mut response = json_response(StatusCode::OK, &body);
    let etag = ETag::of(response.body());
    let headers = response.headers_mut();
    let max_age = fresh_for.filter(|_| complete).unwrap_or(0);
    let value =
        |text: String| HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("0"));
    headers.insert(header::ETAG, value(format!("\"{etag}\"")));
    headers.insert(header::CACHE_CONTROL, value(format!("max-age={max_age}")));
    headers.insert(header::AGE, HeaderValue::from(oldest));
    headers.insert(
        "x-cache-status",
        HeaderValue::from_static(if complete && max_age > 0 {
            "fresh"
        } else {
            "stale"
        }),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(query: &[(&str, &str)]) -> ApiRequest {
        ApiRequest::get(INVENTORY_PATH, query)
    }

    fn home() -> Option<AccountId> {
        AccountId::parse("111111111111").ok()
    }

    #[test]
    fn regions_and_accounts_are_lists_bounded_in_product() {
        let i = parse(
            &request(&[
                ("regions", "us-east-1,us-west-2,us-east-1"),
                ("accountIds", "111111111111,222222222222"),
                ("replicationState", "STALLED"),
            ]),
            home(),
        )
        .unwrap();
        assert_eq!((i.regions.len(), i.accounts.len()), (2, 2));
        assert!(i.filter.is_some());
        let defaulted = parse(&request(&[("regions", "us-east-1")]), home()).unwrap();
        assert_eq!(defaulted.accounts, home().into_iter().collect::<Vec<_>>());
        let accounts: Vec<String> = (0..51)
            .map(|i| format!("{:012}", 100_000_000_000_u64 + i))
            .collect();
        let too_many = parse(
            &request(&[
                ("regions", "us-east-1,us-west-2"),
                ("accountIds", &accounts.join(",")),
            ]),
            home(),
        );
        assert!(
            matches!(too_many, Err(ApiError::InvalidParameter { field, .. }) if field == "accountIds")
        );
    }

    #[test]
    fn bad_input_names_the_field() {
        let field = |q: &[(&str, &str)]| match parse(&request(q), home()) {
            Err(ApiError::InvalidParameter { field, .. }) => field,
            Err(ApiError::MissingParameter { field }) => field.to_owned(),
            other => panic!("{other:?}"),
        };
        assert_eq!(field(&[]), "regions");
        assert_eq!(field(&[("regions", "us-east-1,mars")]), "regions");
        assert_eq!(
            field(&[("regions", "us-east-1"), ("accountIds", "1,2")]),
            "accountIds"
        );
        assert_eq!(
            field(&[("regions", "us-east-1"), ("regions", "us-east-1")]),
            "regions"
        );
        assert_eq!(
            field(&[("regions", "us-east-1"), ("vpcId", "vpc-0000000a")]),
            "vpcId"
        );
        assert_eq!(
            field(&[("regions", "us-east-1"), ("minCores", "x")]),
            "minCores"
        );
        let none = parse(&request(&[("regions", "us-east-1")]), None);
        assert!(matches!(
            none,
            Err(ApiError::MissingParameter {
                field: "accountIds"
            })
        ));
    }
}
