//! The operator commands, each against a running local process or a store
//! (embedded, or a deployment's table and state machine).

use std::{path::Path, process::ExitCode, time::Duration};

use anyhow::{Context, bail};
use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    domain::{AccountId, DataType, Region, SystemClock, Timestamp},
    local::{
        activity::{Activity, EmfOutput},
        console::run_with_progress,
        portable::{self, ImportReport},
        routes::{EXPORT_PATH, IMPORT_PATH, PLAN_PATH, REFRESH_PATH, STATUS_PATH},
        status::{KeyState, StatusReport},
    },
    plan::{DueWhy, Trigger},
    ports::{Invalidation, RefreshReason, RefreshRequestError, RefreshTrigger},
    read::{ApiRequest, ReadService, Router, metrics::Recorded, request::path_of},
    workflow::ExecutionInput,
};

use super::{
    backend::{Backend, Opened},
    output::{self, Output},
};

/// `--type`, `--region`, `--account`: what a refresh or invalidation covers.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Scope {
    /// Only this data type (such as drs-source-servers).
    #[arg(long = "type", value_parser = parse_type)]
    pub data_type: Option<DataType>,
    /// Only this region.
    #[arg(long, value_parser = parse_region)]
    pub region: Option<Region>,
    /// Only this account.
    #[arg(long, value_parser = parse_account)]
    pub account: Option<AccountId>,
}

pub fn parse_type(raw: &str) -> Result<DataType, String> {
    DataType::parse(raw).map_err(|e| e.reason.to_owned())
}

pub fn parse_region(raw: &str) -> Result<Region, String> {
    Region::parse(raw).map_err(|e| e.reason.to_owned())
}

pub fn parse_account(raw: &str) -> Result<AccountId, String> {
    AccountId::parse(raw).map_err(|e| e.reason.to_owned())
}

/// `warm --seconds`: 1 to 604,800 (7 days), as the warm trigger takes.
pub fn parse_warm_seconds(raw: &str) -> Result<u64, String> {
    let max = crate::domain::demand::MAX_WINDOW.as_secs();
    match raw.trim().parse::<u64>() {
        Ok(s) if (1..=max).contains(&s) => Ok(s),
        _ => Err(format!(
            "must be a whole number of seconds from 1 to {max} (7 days)"
        )),
    }
}

impl Scope {
    fn invalidation(&self) -> Invalidation {
        Invalidation {
            data_type: self.data_type,
            region: self.region.clone(),
            account: self.account,
        }
    }

    fn is_empty(&self) -> bool {
        self.invalidation() == Invalidation::default()
    }
}

/// A read as the reader serves it: status, freshness headers and body.
struct Read {
    status: StatusCode,
    headers: http::HeaderMap,
    body: Bytes,
}

/// The body of an invalidation: only the parts given.
fn invalidation_body(invalidation: &Invalidation) -> Bytes {
    let mut body = serde_json::Map::new();
    if let Some(t) = invalidation.data_type {
        body.insert("dataType".into(), t.as_str().into());
    }
    if let Some(r) = &invalidation.region {
        body.insert("region".into(), r.as_str().into());
    }
    if let Some(a) = &invalidation.account {
        body.insert("accountId".into(), a.as_str().into());
    }
    Bytes::from(Value::Object(body).to_string())
}

/// Asks for nothing: a command-line read reports a miss, it never starts a
/// refresh behind the operator's back.
struct NoRefresh;

#[async_trait::async_trait]
impl RefreshTrigger for NoRefresh {
    async fn request_refresh(
        &self,
        _key: &crate::domain::CacheKey,
        _reason: RefreshReason,
    ) -> Result<(), RefreshRequestError> {
        Ok(())
    }

    async fn request_invalidation(
        &self,
        _invalidation: &Invalidation,
    ) -> Result<(), RefreshRequestError> {
        Ok(())
    }
}

fn query_string(query: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(query)
        .finish()
}

/// `get`: one read, with its freshness.
pub async fn get(
    backend: &Backend,
    data_type: DataType,
    query: Vec<(String, String)>,
    out: Output,
) -> anyhow::Result<ExitCode> {
    let path = path_of(data_type);
    let read = match backend {
        Backend::Remote(remote) => {
            let answer = remote
                .request(
                    Method::GET,
                    &format!("{path}?{}", query_string(&query)),
                    Bytes::new(),
                )
                .await?;
            Read {
                status: answer.status,
                headers: answer.headers,
                body: answer.body,
            }
        }
        Backend::Store(opened) => {
            let mut settings = crate::read::ReaderSettings {
                default_account: Some(opened.config.home),
                kept: Some(opened.config.plan.kept()),
                capacity_key: opened.config.plan.capacity_key(),
                ..Default::default()
            };
            settings.memory_max_bytes = 0;
            let service = ReadService::new(
                opened.store.clone(),
                std::sync::Arc::new(NoRefresh),
                std::sync::Arc::new(SystemClock),
                settings,
            );
            let router = Router::new(
                std::sync::Arc::new(service),
                std::sync::Arc::new(Recorded::default()),
            );
            let pairs: Vec<(&str, &str)> = query
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let response = router.handle(&ApiRequest::get(path, &pairs)).await;
            let (parts, body) = response.into_parts();
            Read {
                status: parts.status,
                headers: parts.headers,
                body,
            }
        }
    };
    let value: Value = serde_json::from_slice(&read.body).unwrap_or(Value::Null);
    if read.status != StatusCode::OK {
        eprintln!("{} {}", read.status.as_u16(), output::json(&value));
        return Ok(ExitCode::FAILURE);
    }
    let header = |name: &str| {
        read.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("?")
            .to_owned()
    };
    let freshness = format!(
        "{}: {} from {}, {} s old{}",
        data_type,
        header("x-cache-status"),
        header("x-cache"),
        header("age"),
        read.headers
            .get("x-refresh-error")
            .and_then(|v| v.to_str().ok())
            .map(|kind| format!(", last refresh failed: {kind}"))
            .unwrap_or_default()
    );
    match out {
        Output::Json => println!("{}", output::json(&value)),
        Output::Table => {
            eprintln!("{freshness}");
            match data_type
                .record_list()
                .and_then(|(list, _)| value.get(list))
            {
                Some(Value::Array(records)) => {
                    let columns = output::record_columns(records);
                    let refs: Vec<&str> = columns.iter().map(String::as_str).collect();
                    println!("{}", output::table(&refs, records));
                    println!("{} records", records.len());
                }
                _ => {
                    let rows: Vec<Value> = value
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(k, v)| json!({"field": k, "value": output::cell(Some(v))}))
                        .collect();
                    println!("{}", output::table(&["field", "value"], &rows));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn remote_json(
    backend: &super::backend::Remote,
    method: Method,
    path: &str,
    body: Bytes,
) -> anyhow::Result<Value> {
    let answer = backend.request(method, path, body).await?;
    let value: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    if !answer.status.is_success() {
        bail!("{} answered {}: {}", path, answer.status, value);
    }
    Ok(value)
}

/// `status`: every key with its state; non-zero when a key is past its stale
/// window, never cached, or holds no data.
pub async fn status(
    backend: &Backend,
    stale: bool,
    failed: bool,
    out: Output,
) -> anyhow::Result<ExitCode> {
    let report: Value = match backend {
        Backend::Remote(remote) => {
            remote_json(remote, Method::GET, STATUS_PATH, Bytes::new()).await?
        }
        Backend::Store(opened) => {
            let report = StatusReport::read(
                &*opened.store,
                opened.planner().configured(),
                &opened.config.settings.ttl,
                Timestamp::now(),
            )
            .await?;
            serde_json::to_value(report)?
        }
    };
    let keys: Vec<Value> = report
        .get("keys")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let state = |k: &Value| serde_json::from_value::<KeyState>(k["state"].clone()).ok();
    let unservable = keys
        .iter()
        .filter(|k| state(k).is_some_and(KeyState::is_unservable))
        .count();
    let shown: Vec<Value> = keys
        .into_iter()
        .filter(|k| !stale || matches!(state(k), Some(KeyState::Stale | KeyState::Expired)))
        .filter(|k| !failed || k["lastOutcome"] == "failed")
        .collect();
    match out {
        Output::Json => {
            let mut report = report;
            report["keys"] = Value::Array(shown);
            println!("{}", output::json(&report));
        }
        Output::Table => {
            let rows: Vec<Value> = shown
                .iter()
                .map(|k| {
                    let mut row = k.clone();
                    row["age"] = json!(format!(
                        "{} / {} s",
                        output::cell(k.get("ageSeconds")),
                        output::cell(k.get("freshnessSeconds"))
                    ));
                    row
                })
                .collect();
            println!(
                "{}",
                output::table(
                    &[
                        "dataType",
                        "region",
                        "account",
                        "state",
                        "age",
                        "items",
                        "lastOutcome",
                        "errorKind"
                    ],
                    &rows
                )
            );
            let t = &report["totals"];
            println!(
                "{} keys: {} fresh, {} stale, {} expired, {} missing, {} without data",
                t["keys"], t["fresh"], t["stale"], t["expired"], t["missing"], t["noData"]
            );
        }
    }
    if unservable > 0 {
        eprintln!("{unservable} keys are past their stale window, never cached or without data");
        return Ok(ExitCode::from(3));
    }
    Ok(ExitCode::SUCCESS)
}

/// `plan`: what a scheduled tick would refresh now and why, changing nothing.
pub async fn plan(backend: &Backend, out: Output) -> anyhow::Result<ExitCode> {
    let preview: Value = match backend {
        Backend::Remote(remote) => {
            remote_json(remote, Method::GET, PLAN_PATH, Bytes::new()).await?
        }
        Backend::Store(opened) => serde_json::to_value(opened.planner().preview().await?)?,
    };
    match out {
        Output::Json => println!("{}", output::json(&preview)),
        Output::Table => {
            let targets = preview["targets"].as_array().cloned().unwrap_or_default();
            let rows: Vec<Value> = targets
                .iter()
                .map(|t| {
                    let why = serde_json::from_value::<DueWhy>(t["why"].clone())
                        .map_or_else(|_| t["why"].to_string(), |why| why.to_string());
                    json!({"key": t["key"], "why": why})
                })
                .collect();
            if !rows.is_empty() {
                println!("{}", output::table(&["key", "why"], &rows));
            }
            println!(
                "a tick now would refresh {} of {} configured targets ({} deferred to a later tick)",
                targets.len(),
                preview["configured"],
                preview["deferred"]
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `refresh`: a run to its end, printing its summary as JSON: in process
/// (with a progress bar), by the running local process, or by the
/// deployment's state machine (followed until it ends).
pub async fn refresh(backend: &Backend, scope: &Scope, all: bool) -> anyhow::Result<ExitCode> {
    let trigger = if all || !scope.is_empty() {
        Trigger::Manual(scope.invalidation())
    } else {
        Trigger::Schedule
    };
    let summary = run_trigger(backend, &trigger).await?;
    println!("{}", serde_json::to_string(&summary)?);
    Ok(run_exit(&summary))
}

/// `warm --account A [--seconds S]`: keeps the account's keys refreshed
/// ahead, and runs the refresh of what of it is due now.
pub async fn warm(
    backend: &Backend,
    account: AccountId,
    seconds: Option<u64>,
) -> anyhow::Result<ExitCode> {
    let trigger = Trigger::Warm(crate::workflow::WarmRequest {
        account,
        window: seconds.map(Duration::from_secs),
    });
    let summary = run_trigger(backend, &trigger).await?;
    println!("{}", serde_json::to_string(&summary)?);
    Ok(run_exit(&summary))
}

/// Runs `trigger` to its end where `backend` refreshes: a running local
/// process, a deployment's state machine, or in process. Answers the run's
/// summary.
async fn run_trigger(backend: &Backend, trigger: &Trigger) -> anyhow::Result<Value> {
    Ok(match backend {
        Backend::Remote(remote) => {
            let (path, body) = match trigger {
                Trigger::Manual(inv) => (REFRESH_PATH.to_owned(), invalidation_body(inv)),
                Trigger::Warm(warm) => (
                    crate::local::WARM_PATH.to_owned(),
                    Bytes::from(
                        json!({"accountId": warm.account.to_string(), "seconds": warm.window.map(|w| w.as_secs())})
                            .to_string(),
                    ),
                ),
                _ => (format!("{REFRESH_PATH}?due"), Bytes::new()),
            };
            remote_json(remote, Method::POST, &path, body).await?
        }
        Backend::Store(opened) => match opened.workflow_trigger().await {
            Some(workflow) => {
                let input = match trigger {
                    Trigger::Manual(inv) => ExecutionInput::invalidation(inv),
                    Trigger::Warm(warm) => ExecutionInput::warm(warm.account, warm.window),
                    _ => ExecutionInput::Trigger(crate::workflow::TriggerInput {
                        trigger: crate::workflow::TriggerKind::Schedule,
                        data_type: None,
                        region: None,
                        account_id: None,
                        time: None,
                        seconds: None,
                    }),
                };
                let mut last = String::new();
                let run = workflow
                    .run_to_end(&input, Duration::from_secs(2), |status| {
                        if status != last {
                            eprintln!("execution {status}");
                            last = status.to_owned();
                        }
                    })
                    .await
                    .map_err(|e| anyhow::anyhow!(e))
                    .context("cannot run the deployment's refresh workflow")?;
                if run.status != "SUCCEEDED" {
                    bail!(
                        "the execution {} ended {}: {} {}",
                        run.execution_arn,
                        run.status,
                        run.error.unwrap_or_default(),
                        run.cause.unwrap_or_default()
                    );
                }
                eprintln!("execution {} succeeded", run.execution_arn);
                run.output
                    .and_then(|o| serde_json::from_str(&o).ok())
                    .unwrap_or(Value::Null)
            }
            None => serde_json::to_value(in_process(opened, trigger).await?)?,
        },
    })
}

/// A run that failed keys or batches exits 1, after printing its summary.
fn run_exit(summary: &Value) -> ExitCode {
    let count = |field: &str| summary[field].as_u64().unwrap_or(0);
    let failed = count("failed") + count("failedBatches");
    if failed > 0 {
        eprintln!(
            "the run failed {failed} keys or batches: see the summary's failed, failedBatches and errors"
        );
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

async fn in_process(
    opened: &Opened,
    trigger: &Trigger,
) -> anyhow::Result<crate::plan::summary::RunSummary> {
    let activity = std::sync::Arc::new(Activity::new(EmfOutput::Off));
    let local = opened.local_refresh(activity.clone()).await?;
    let total = match trigger {
        Trigger::Schedule => local.planner.preview().await?.targets.len(),
        _ => local.planner.configured().count(),
    };
    Ok(run_with_progress(&local, &activity, trigger, total as u64, "refresh").await?)
}

/// `invalidate`: asks the refresh side to refresh what the scope matches.
pub async fn invalidate(backend: &Backend, scope: &Scope) -> anyhow::Result<ExitCode> {
    let invalidation = scope.invalidation();
    match backend {
        Backend::Remote(remote) => {
            let answer = remote_json(
                remote,
                Method::POST,
                crate::read::http::INVALIDATE_PATH,
                invalidation_body(&invalidation),
            )
            .await?;
            println!("{answer}");
        }
        Backend::Store(opened) => match opened.workflow_trigger().await {
            Some(workflow) => {
                workflow
                    .request_invalidation(&invalidation)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}: {}", crate::errors::chain(&e)))?;
                println!(
                    "{}",
                    json!({"status": "accepted", "invalidation": crate::read::invalidation_json(&invalidation)})
                );
            }
            None => {
                let summary = serde_json::to_value(
                    in_process(opened, &Trigger::Manual(invalidation)).await?,
                )?;
                println!("{}", serde_json::to_string(&summary)?);
                return Ok(run_exit(&summary));
            }
        },
    }
    Ok(ExitCode::SUCCESS)
}

/// `export FILE`.
pub async fn export(backend: &Backend, file: &Path) -> anyhow::Result<ExitCode> {
    let bytes = match backend {
        Backend::Remote(remote) => {
            let answer = remote
                .request(Method::GET, EXPORT_PATH, Bytes::new())
                .await?;
            if !answer.status.is_success() {
                bail!("{EXPORT_PATH} answered {}", answer.status);
            }
            answer.body.to_vec()
        }
        Backend::Store(opened) => portable::export(&*opened.store, Timestamp::now()).await?,
    };
    let entries = bytes
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        .saturating_sub(1);
    std::fs::write(file, &bytes).with_context(|| format!("cannot write {}", file.display()))?;
    eprintln!("exported {entries} entries to {}", file.display());
    Ok(ExitCode::SUCCESS)
}

/// `import FILE`: never replaces newer data; reports what it kept.
pub async fn import(backend: &Backend, file: &Path) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let report: ImportReport = match backend {
        Backend::Remote(remote) => {
            let answer = remote
                .request(Method::POST, IMPORT_PATH, Bytes::from(bytes))
                .await?;
            let value: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
            if !answer.status.is_success() {
                bail!(
                    "{} was not imported ({} {}): {}",
                    file.display(),
                    answer.status.as_u16(),
                    value["error"].as_str().unwrap_or("refused"),
                    value["message"].as_str().unwrap_or("")
                );
            }
            serde_json::from_value(value)?
        }
        Backend::Store(opened) => portable::import(&*opened.store, &bytes, Timestamp::now())
            .await
            .with_context(|| format!("{} was not imported; nothing was written", file.display()))?,
    };
    eprintln!(
        "imported {} entries; kept {} where the cache already held the same or newer data",
        report.imported, report.kept_newer
    );
    println!("{}", serde_json::to_string(&report)?);
    Ok(ExitCode::SUCCESS)
}
