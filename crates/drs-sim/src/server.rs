//! The HTTP server: one hyper HTTP/1.1 connection task per client, requests
//! routed by the SigV4 credential scope to DRS (REST-JSON) or EC2/IAM (query),
//! admin under `/_sim/`. Latency is a `tokio::time::sleep`; nothing blocks.

use std::{
    convert::Infallible,
    io,
    net::SocketAddr,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use http::{StatusCode, request::Parts};
use http_body_util::{BodyExt, Full, Limited};
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::{net::TcpListener, sync::watch, task::JoinSet};
use tracing::{debug, info, warn};

use crate::{
    admin,
    aws::uuid,
    caller::{self, KeyLookup, Resolver},
    config::{ConfigError, Faults, SimConfig},
    data::Datasets,
    drs::{self, DrsError},
    ec2::{self, Ec2Error},
    exchange::{Call, Reply},
    faults::{self, Arrival, Fault},
    iam::{self, IamError},
    ids::{AccountId, Region},
    live::{self, Change, LiveError, LiveEvent},
    query::Params,
    rng::Seed,
    service::{RequestCounts, Service},
};

/// The largest request body read.
const MAX_BODY: usize = 1 << 20;

/// Starts simulators.
#[derive(Debug, Clone, Copy, Default)]
pub struct Simulator;

impl Simulator {
    /// Serves `config` on `listen` (port 0 picks a free port) until the handle
    /// is shut down or dropped. A configuration that fails validation is an
    /// [`io::ErrorKind::InvalidInput`] error whose source is the [`ConfigError`].
    pub async fn start(listen: SocketAddr, config: SimConfig) -> io::Result<SimHandle> {
        config
            .validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(config));
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(serve(listener, shared.clone(), stopped));
        info!(%addr, "DRS simulator listening");
        Ok(SimHandle {
            addr,
            shared,
            stop,
            task: Some(task),
        })
    }
}

/// A running simulator. Dropping it stops the server.
#[derive(Debug)]
pub struct SimHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl SimHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL to give SDK clients as `endpoint_url`, such as `http://127.0.0.1:4567`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A copy of the configuration in force.
    pub fn config(&self) -> SimConfig {
        self.shared.config().clone()
    }

    /// Changes the configuration; nothing changes if the result is invalid.
    /// `change` runs under the configuration's lock: it must not call back into
    /// this handle.
    pub fn update(&self, change: impl FnOnce(&mut SimConfig)) -> Result<(), ConfigError> {
        let mut config = self.shared.config();
        let mut next = config.clone();
        change(&mut next);
        next.validate()?;
        *config = next;
        Ok(())
    }

    /// Replaces the faults.
    pub fn set_faults(&self, faults: Faults) -> Result<(), ConfigError> {
        self.update(|c| c.faults = faults)
    }

    /// Sets the server count of (`account`, `region`).
    pub fn set_servers(
        &self,
        account: AccountId,
        region: &Region,
        servers: u32,
    ) -> Result<(), ConfigError> {
        self.update(|c| c.set_servers(account, region, servers))
    }

    /// Moves (`account`, `region`) to its next generation and returns it.
    pub fn bump_generation(&self, account: AccountId, region: &Region) -> u64 {
        self.shared.config().bump_generation(account, region)
    }

    /// Applies a live change to (`account`, `region`) (IAM changes: to
    /// `account`) and returns the EventBridge event AWS would deliver for it,
    /// dated `at`. Nothing changes if it fails. Requests arriving after it
    /// returns see the changed fleet.
    pub fn apply(
        &self,
        change: Change,
        account: &AccountId,
        region: &Region,
        at: SystemTime,
    ) -> Result<LiveEvent, LiveError> {
        let mut config = self.shared.config();
        live::apply(&mut config, &self.shared.data, change, account, region, at)
    }

    /// Requests of `operation` answered so far, faults and errors included.
    pub fn requests(&self, service: Service, operation: &str) -> u64 {
        self.shared
            .counts()
            .get(&service)
            .and_then(|ops| ops.get(operation))
            .copied()
            .unwrap_or(0)
    }

    /// All request counts.
    pub fn request_counts(&self) -> RequestCounts {
        self.shared.counts().clone()
    }

    /// Holds the next `n` requests: each is answered from the data and faults at
    /// its arrival, then waits until the [`Hold`] is released (or dropped). A
    /// new hold replaces the slots of an earlier one that no request took yet.
    pub fn hold_next(&self, n: usize) -> Hold {
        let gate = Arc::new(Gate::default());
        *lock(&self.shared.holds) = (n > 0).then(|| (n, gate.clone()));
        Hold { gate }
    }

    /// Stops accepting, closes every connection and waits for the server task.
    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

/// Requests held by [`SimHandle::hold_next`].
#[derive(Debug)]
pub struct Hold {
    gate: Arc<Gate>,
}

#[derive(Debug)]
struct Gate {
    released: watch::Sender<bool>,
    arrived: watch::Sender<usize>,
}

impl Default for Gate {
    fn default() -> Self {
        Self {
            released: watch::channel(false).0,
            arrived: watch::channel(0).0,
        }
    }
}

impl Gate {
    async fn pass(&self) {
        let mut released = self.released.subscribe();
        self.arrived.send_modify(|n| *n += 1);
        // The sender lives in `self`, so this ends only on release.
        let _ = released.wait_for(|r| *r).await;
    }
}

impl Hold {
    /// Held requests whose answer is decided and waiting.
    pub fn arrived(&self) -> usize {
        *self.gate.arrived.borrow()
    }

    /// Waits until `n` held requests are waiting.
    pub async fn wait_arrived(&self, n: usize) {
        let mut arrived = self.gate.arrived.subscribe();
        let _ = arrived.wait_for(|a| *a >= n).await;
    }

    /// Lets every held request answer.
    pub fn release(self) {}
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.gate.released.send_replace(true);
    }
}

/// State shared by every connection.
#[derive(Debug)]
struct Shared {
    config: Mutex<SimConfig>,
    data: Datasets,
    resolver: Resolver,
    seq: AtomicU64,
    counts: Mutex<RequestCounts>,
    holds: Mutex<Option<(usize, Arc<Gate>)>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn new(config: SimConfig) -> Self {
        Self {
            config: Mutex::new(config),
            data: Datasets::default(),
            resolver: Resolver::default(),
            seq: AtomicU64::new(0),
            counts: Mutex::new(RequestCounts::new()),
            holds: Mutex::new(None),
        }
    }

    fn config(&self) -> MutexGuard<'_, SimConfig> {
        lock(&self.config)
    }

    fn counts(&self) -> MutexGuard<'_, RequestCounts> {
        lock(&self.counts)
    }

    async fn handle(&self, request: http::Request<Incoming>) -> http::Response<Full<Bytes>> {
        let (parts, body) = request.into_parts();
        let body = match Limited::new(body, MAX_BODY).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(error) => {
                debug!(error = %error, "request body unreadable");
                return DrsError::plain(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "RequestEntityTooLargeException",
                    "The request body is unreadable or larger than 1 MiB",
                )
                .reply("")
                .into_response();
            }
        };
        if parts.uri.path().starts_with("/_sim/") {
            return admin::handle(self, &parts.method, parts.uri.path(), &body).into_response();
        }
        self.answer(&parts, &body).await.into_response()
    }

    /// Claims a hold slot, waits out the latency, decides the answer, waits for
    /// a hold's release, counts the request.
    async fn answer(&self, parts: &Parts, body: &[u8]) -> Reply {
        let gate = {
            let mut holds = lock(&self.holds);
            let gate = holds.as_mut().map(|(left, gate)| {
                *left -= 1;
                gate.clone()
            });
            if holds.as_ref().is_some_and(|(left, _)| *left == 0) {
                *holds = None;
            }
            gate
        };
        let latency = self.config().faults.latency;
        if latency > Duration::ZERO {
            tokio::time::sleep(latency).await;
        }
        let (counted, reply) = self.respond(parts, body).await;
        if let Some(gate) = gate {
            gate.pass().await;
        }
        if let Some((service, operation)) = counted {
            *self
                .counts()
                .entry(service)
                .or_default()
                .entry(operation)
                .or_default() += 1;
        }
        reply
    }

    async fn respond(&self, parts: &Parts, body: &[u8]) -> (Option<(Service, String)>, Reply) {
        let query = parts.uri.query();
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let anonymous_id = uuid(Seed::new(seq).with_str("anonymous"));
        let Some(scope) = caller::scope(&parts.headers, query) else {
            let error = DrsError::plain(
                StatusCode::FORBIDDEN,
                "MissingAuthenticationTokenException",
                "Missing Authentication Token",
            );
            return (None, error.reply(&anonymous_id));
        };
        let Ok(service) = scope.service.parse::<Service>() else {
            let message = format!(
                "The simulator serves drs, ec2 and iam, not {}",
                scope.service
            );
            let error =
                DrsError::plain(StatusCode::BAD_REQUEST, "UnknownServiceException", &message);
            return (None, error.reply(&anonymous_id));
        };
        let params = Params::parse(query, body);
        let operation = match service {
            Service::Drs => drs::operation(&parts.method, parts.uri.path()),
            Service::Ec2 | Service::Iam => params.action().unwrap_or_default().to_owned(),
        };
        let counted = Some((service, operation.clone()));
        if operation.is_empty() {
            let message = "The request must contain the parameter Action";
            return (
                counted,
                protocol_error(
                    service,
                    StatusCode::BAD_REQUEST,
                    "MissingAction",
                    message,
                    &anonymous_id,
                ),
            );
        }
        let Ok(region) = Region::parse(&scope.region) else {
            let message = format!(
                "Credential should be scoped to a valid region, not '{}'",
                scope.region
            );
            let code = match service {
                Service::Drs => "InvalidSignatureException",
                Service::Ec2 => "AuthFailure",
                Service::Iam => "SignatureDoesNotMatch",
            };
            return (
                counted,
                protocol_error(
                    service,
                    StatusCode::FORBIDDEN,
                    code,
                    &message,
                    &anonymous_id,
                ),
            );
        };

        let lookup = {
            let config = self.config();
            KeyLookup {
                mapped: config.access_keys.get(&scope.access_key).copied(),
                sts_endpoint: config.sts_endpoint.clone(),
                default: config.default_account,
            }
        };
        let account = self.resolver.account(&scope.access_key, lookup).await;

        let (fault, seed, params_fleet, sets, instance_profiles, max_page, retry_after) = {
            let mut config = self.config();
            let seed = config.seed;
            let arrival = Arrival {
                seed,
                seq,
                service,
                account: &account,
                region: &region,
            };
            let fault = faults::decide(&mut config.faults, &arrival);
            (
                fault,
                seed,
                config.fleet(&account, &region),
                (
                    config.servers_set(&account, &region).to_vec(),
                    config.source_networks_set(&account, &region).to_vec(),
                ),
                config.instance_profiles(&account),
                config.max_page_size as usize,
                config.faults.retry_after_secs,
            )
        };
        // The same request to the same data gets the same ID, so bodies repeat
        // byte for byte.
        let request_id = uuid(
            Seed::new(seed)
                .with_str(service.into())
                .with_str(&operation)
                .with_str(account.as_str())
                .with_str(region.as_str())
                .with_str(query.unwrap_or_default())
                .with_bytes(body)
                .with(params_fleet.generation)
                .with(fault.map_or(0, |f| f as u64 + 1)),
        );
        let call = Call {
            seed,
            account: &account,
            region: &region,
            params: params_fleet,
            servers_set: sets.0,
            source_networks_set: sets.1,
            instance_profiles,
            max_page,
            retry_after,
            request_id,
            data: &self.data,
        };
        let reply = match (service, fault) {
            (Service::Drs, Some(f)) => drs::fault(&call, f, &operation),
            (Service::Drs, None) => drs::answer(&call, &operation, query, body),
            (Service::Ec2, Some(f)) => ec2::fault(&call, f, &operation),
            (Service::Ec2, None) => ec2::answer(&call, &operation, &params),
            (Service::Iam, Some(f)) => iam::fault(&call, f, &operation),
            (Service::Iam, None) => iam::answer(&call, &operation, &params),
        };
        log_fault(fault, service, &operation, &reply);
        (counted, reply)
    }
}

fn log_fault(fault: Option<Fault>, service: Service, operation: &str, reply: &Reply) {
    if let Some(fault) = fault {
        debug!(?fault, %service, operation, status = %reply.status(), "fault injected");
    }
}

/// An error in the protocol of `service`.
fn protocol_error(
    service: Service,
    status: StatusCode,
    code: &'static str,
    message: &str,
    request_id: &str,
) -> Reply {
    match service {
        Service::Drs => DrsError::plain(status, code, message).reply(request_id),
        Service::Ec2 => Ec2Error::new(status, code, message).reply(request_id),
        Service::Iam => IamError::sender(status, code, message).reply(request_id),
    }
}

impl admin::State for Shared {
    fn current_config(&self) -> SimConfig {
        self.config().clone()
    }

    fn replace_config(&self, config: SimConfig) {
        *self.config() = config;
    }

    fn request_counts(&self) -> RequestCounts {
        self.counts().clone()
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let shared = shared.clone();
                    connections.spawn(async move {
                        let service = service_fn(move |request| {
                            let shared = shared.clone();
                            async move { Ok::<_, Infallible>(shared.handle(request).await) }
                        });
                        if let Err(error) = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await
                        {
                            debug!(%peer, error = %error, "connection ended with an error");
                        }
                    });
                }
                Err(error) => {
                    // Out of file descriptors, usually: back off instead of spinning.
                    warn!(error = %error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            // A stop, or the handle dropped.
            _ = stopped.changed() => break,
        }
        while connections.try_join_next().is_some() {}
    }
    connections.shutdown().await;
    debug!("DRS simulator stopped");
}

#[cfg(test)]
mod tests {
    use http::header;
    use hyper_util::client::legacy::{Client, connect::HttpConnector};
    use serde_json::Value;

    use super::*;

    /// POSTs `body` to `path` as a caller of `service` in `region`, signed by
    /// an unmapped key (the default account): the status, `x-amzn-ErrorType`
    /// and body.
    async fn send(
        sim: &SimHandle,
        service: &str,
        region: &str,
        path: &str,
        body: &str,
    ) -> (StatusCode, Option<String>, String) {
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential=AKIDTEST/20240601/{region}/{service}/aws4_request, \
             SignedHeaders=host, Signature={}",
            "0".repeat(64)
        );
        let content_type = if service == "drs" {
            "application/json"
        } else {
            "application/x-www-form-urlencoded"
        };
        let request = http::Request::post(format!("{}{path}", sim.endpoint()))
            .header(header::AUTHORIZATION, authorization)
            .header(header::CONTENT_TYPE, content_type)
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap();
        let response = client.request(request).await.unwrap();
        let status = response.status();
        let code = response
            .headers()
            .get("x-amzn-ErrorType")
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, code, String::from_utf8(bytes.to_vec()).unwrap())
    }

    /// As [`send`], for an answer that must be 200.
    async fn call(sim: &SimHandle, service: &str, region: &str, path: &str, body: &str) -> String {
        let (status, _, body) = send(sim, service, region, path, body).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Every item of a DRS Describe listing, following `nextToken` with
    /// `maxResults` `page`; also the number of pages.
    async fn all_items(
        sim: &SimHandle,
        path: &str,
        filters: Value,
        page: u32,
    ) -> (Vec<Value>, usize) {
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut body = serde_json::json!({"filters": filters, "maxResults": page});
            if let Some(token) = &token {
                body["nextToken"] = Value::from(token.as_str());
            }
            let answer = call(sim, "drs", "eu-west-1", path, &body.to_string()).await;
            let answer: Value = serde_json::from_str(&answer).unwrap();
            pages += 1;
            items.extend(answer["items"].as_array().unwrap().iter().cloned());
            match answer["nextToken"].as_str() {
                Some(next) => token = Some(next.to_owned()),
                None => return (items, pages),
            }
        }
    }

    async fn start(config: SimConfig) -> SimHandle {
        Simulator::start(([127, 0, 0, 1], 0).into(), config)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn jobs_and_recovery_instances_are_those_the_servers_name() {
        // GIVEN a fleet of 60 servers and a page cap of 7
        let sim = start(SimConfig {
            seed: 4,
            max_page_size: 7,
            defaults: crate::FleetSize {
                servers: 60,
                ..crate::FleetSize::default()
            },
            ..SimConfig::default()
        })
        .await;
        // WHEN every server, job and recovery instance is listed page by page
        let (servers, _) =
            all_items(&sim, "/DescribeSourceServers", serde_json::json!({}), 1000).await;
        let (jobs, pages) = all_items(&sim, "/DescribeJobs", serde_json::json!({}), 1000).await;
        let (instances, _) =
            all_items(&sim, "/DescribeRecoveryInstances", serde_json::json!({}), 5).await;
        assert_eq!(servers.len(), 60);
        assert_eq!(pages, jobs.len().div_ceil(7), "pages are capped at 7");
        // THEN every server's last launch is a LAUNCH job it takes part in
        let job = |id: &Value| jobs.iter().find(|j| j["jobID"] == *id);
        let mut launched = 0;
        for server in &servers {
            let Some(last) = server["lifeCycle"].get("lastLaunch") else {
                continue;
            };
            launched += 1;
            let job = job(&last["initiated"]["jobID"]).expect("the server's job is listed");
            assert_eq!(job["type"], "LAUNCH");
            let initiated = if last["initiated"]["type"] == "DRILL" {
                "START_DRILL"
            } else {
                "START_RECOVERY"
            };
            assert_eq!(job["initiatedBy"], initiated);
            assert_eq!(
                job["creationDateTime"],
                last["initiated"]["apiCallDateTime"]
            );
            let participant = &job["participatingServers"][0];
            assert_eq!(participant["sourceServerID"], server["sourceServerID"]);
            assert_eq!(participant["launchStatus"], last["status"]);
            // AND its recovery instance, if it has one, is listed and not terminated
            if let Some(instance) = server.get("recoveryInstanceId") {
                assert_eq!(participant["recoveryInstanceID"], *instance);
                let listed = instances
                    .iter()
                    .find(|r| r["recoveryInstanceID"] == *instance)
                    .expect("the server's recovery instance is listed");
                assert_eq!(listed["sourceServerID"], server["sourceServerID"]);
                assert_eq!(listed["jobID"], last["initiated"]["jobID"]);
                assert_eq!(listed["isDrill"], last["initiated"]["type"] == "DRILL");
                assert_ne!(listed["ec2InstanceState"], "TERMINATED");
            }
        }
        assert!(launched > 5, "{launched} of 60 servers were launched");
        // AND past drills left TERMINATED instances, each with its TERMINATE job
        let terminated: Vec<&Value> = instances
            .iter()
            .filter(|r| r["ec2InstanceState"] == "TERMINATED")
            .collect();
        assert!(!terminated.is_empty());
        for instance in terminated {
            assert_eq!(instance["isDrill"], true);
            assert!(jobs.iter().any(|j| {
                j["type"] == "TERMINATE"
                    && j["participatingServers"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|p| p["recoveryInstanceID"] == instance["recoveryInstanceID"])
            }));
        }
        // AND jobs are listed latest first, once each
        let created: Vec<&str> = jobs
            .iter()
            .map(|j| j["creationDateTime"].as_str().unwrap())
            .collect();
        assert!(created.windows(2).all(|w| w[0] >= w[1]), "{created:?}");
        let ids: std::collections::HashSet<&str> =
            jobs.iter().map(|j| j["jobID"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), jobs.len());
        for job in &jobs {
            assert_eq!(
                job["arn"],
                format!(
                    "arn:aws:drs:eu-west-1:123456789012:job/{}",
                    job["jobID"].as_str().unwrap()
                )
            );
            assert!(["PENDING", "STARTED", "COMPLETED"].contains(&job["status"].as_str().unwrap()));
            assert_eq!(job["endDateTime"].is_string(), job["status"] == "COMPLETED");
        }
        // AND the filters select
        let first = &jobs[jobs.len() - 1];
        let middle = jobs[jobs.len() / 2]["creationDateTime"].as_str().unwrap();
        let (by_id, _) = all_items(
            &sim,
            "/DescribeJobs",
            serde_json::json!({"jobIDs": [first["jobID"]]}),
            10,
        )
        .await;
        assert_eq!(by_id, vec![first.clone()]);
        let (before, _) = all_items(
            &sim,
            "/DescribeJobs",
            serde_json::json!({"toDate": middle.replace("+00:00", "Z")}),
            10,
        )
        .await;
        let expected: Vec<Value> = jobs
            .iter()
            .filter(|j| j["creationDateTime"].as_str().unwrap() <= middle)
            .cloned()
            .collect();
        assert!(expected.len() < jobs.len());
        assert_eq!(before, expected);
        let server = instances[0]["sourceServerID"].clone();
        let (of_server, _) = all_items(
            &sim,
            "/DescribeRecoveryInstances",
            serde_json::json!({"sourceServerIDs": [server]}),
            10,
        )
        .await;
        assert!(of_server.iter().all(|r| r["sourceServerID"] == server));
        assert!(!of_server.is_empty());
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn a_launch_is_a_job_and_a_recovery_instance_under_the_ids_its_event_names() {
        let sim = start(SimConfig::default()).await;
        let account = crate::config::default_account();
        let region = Region::parse("eu-west-1").unwrap();
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        // WHEN a recovery launch of a server succeeds
        let launch = sim
            .apply(
                Change::Launch {
                    pick: 11,
                    drill: false,
                    succeeded: true,
                },
                &account,
                &region,
                at,
            )
            .unwrap();
        let job_id = launch.event["detail"]["job-id"].as_str().unwrap();
        let server_id = launch.resource.clone().unwrap();
        // THEN DescribeJobs serves that job, with that server launched
        let body = format!(r#"{{"filters": {{"jobIDs": ["{job_id}"]}}}}"#);
        let answer = call(&sim, "drs", "eu-west-1", "/DescribeJobs", &body).await;
        let answer: Value = serde_json::from_str(&answer).unwrap();
        let job = &answer["items"][0];
        assert_eq!(answer["items"].as_array().unwrap().len(), 1);
        assert_eq!(job["type"], "LAUNCH");
        assert_eq!(job["initiatedBy"], "START_RECOVERY");
        assert_eq!(job["status"], "COMPLETED");
        let participant = &job["participatingServers"][0];
        assert_eq!(participant["sourceServerID"], server_id.as_str());
        assert_eq!(participant["launchStatus"], "LAUNCHED");
        // AND DescribeRecoveryInstances serves the instance the server record names
        let body = format!(r#"{{"filters": {{"sourceServerIDs": ["{server_id}"]}}}}"#);
        let servers = call(&sim, "drs", "eu-west-1", "/DescribeSourceServers", &body).await;
        let servers: Value = serde_json::from_str(&servers).unwrap();
        let instance_id = servers["items"][0]["recoveryInstanceId"].clone();
        assert_eq!(participant["recoveryInstanceID"], instance_id);
        let body = format!(r#"{{"filters": {{"recoveryInstanceIDs": [{instance_id}]}}}}"#);
        let answer = call(
            &sim,
            "drs",
            "eu-west-1",
            "/DescribeRecoveryInstances",
            &body,
        )
        .await;
        let answer: Value = serde_json::from_str(&answer).unwrap();
        let instance = &answer["items"][0];
        assert_eq!(instance["jobID"], job_id);
        assert_eq!(instance["sourceServerID"], server_id.as_str());
        assert_eq!(instance["isDrill"], false);
        assert_eq!(instance["ec2InstanceID"], instance_id);
        assert!(instance["recoveryInstanceProperties"]["ramBytes"].is_u64());
        assert!(instance["failback"]["state"].is_string());
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn a_failback_state_change_is_what_describe_recovery_instances_serves() {
        let sim = start(SimConfig::default()).await;
        let account = crate::config::default_account();
        let region = Region::parse("eu-west-1").unwrap();
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        // GIVEN a recovery's instance
        let recovery = Change::Launch {
            pick: 11,
            drill: false,
            succeeded: true,
        };
        sim.apply(recovery, &account, &region, at).unwrap();
        // WHEN a recovery instance's failback moves on
        let live = sim
            .apply(Change::FailbackState { pick: 3 }, &account, &region, at)
            .unwrap();
        let id = live.resource.clone().unwrap();
        assert_eq!(
            live.event["detail-type"],
            "DRS Recovery Instance Failback State Change"
        );
        // THEN DescribeRecoveryInstances serves that instance in the event's state
        let body = format!(r#"{{"filters": {{"recoveryInstanceIDs": ["{id}"]}}}}"#);
        let answer = call(
            &sim,
            "drs",
            "eu-west-1",
            "/DescribeRecoveryInstances",
            &body,
        )
        .await;
        let answer: Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(answer["items"].as_array().unwrap().len(), 1);
        let instance = &answer["items"][0];
        assert_eq!(instance["arn"], live.event["resources"][0]);
        assert_eq!(instance["failback"]["state"], live.event["detail"]["state"]);
        assert_eq!(instance["isDrill"], false);
        // AND the configuration served over HTTP keeps it
        let config = sim.config();
        let kept = config.servers_set(&account, &region).iter().any(|s| {
            matches!(s, crate::ServerSet::Failback { recovery_instance, .. } if *recovery_instance == id)
        });
        assert!(kept);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn source_networks_are_served_and_filtered() {
        let sim = start(SimConfig {
            max_page_size: 1,
            ..SimConfig::default()
        })
        .await;
        let (networks, pages) =
            all_items(&sim, "/DescribeSourceNetworks", serde_json::json!({}), 1000).await;
        assert!((2..=4).contains(&networks.len()));
        assert_eq!(pages, networks.len());
        for network in &networks {
            let id = network["sourceNetworkID"].as_str().unwrap();
            assert!(id.starts_with("sn-") && id.len() == 20, "{id}");
            assert_eq!(
                network["arn"],
                format!("arn:aws:drs:eu-west-1:123456789012:source-network/{id}")
            );
            assert!(network["sourceVpcID"].as_str().unwrap().starts_with("vpc-"));
            assert_ne!(network["sourceRegion"], "eu-west-1");
            assert!(
                ["PROTECTED", "IN_PROGRESS", "STOPPED", "ERROR"]
                    .contains(&network["replicationStatus"].as_str().unwrap())
            );
        }
        let region = networks[0]["sourceRegion"].clone();
        let (in_region, _) = all_items(
            &sim,
            "/DescribeSourceNetworks",
            serde_json::json!({"originRegion": region}),
            10,
        )
        .await;
        assert!(!in_region.is_empty() && in_region.iter().all(|n| n["sourceRegion"] == region));
        let (by_id, _) = all_items(
            &sim,
            "/DescribeSourceNetworks",
            serde_json::json!({"sourceNetworkIDs": [networks[1]["sourceNetworkID"]]}),
            10,
        )
        .await;
        assert_eq!(by_id, vec![networks[1].clone()]);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn the_new_operations_refuse_bad_input_and_take_faults_and_counts() {
        let sim = start(SimConfig::default()).await;
        for (path, body) in [
            (
                "/DescribeJobs",
                r#"{"nextToken": "0123456789abcdef0123456789abcdef"}"#,
            ),
            ("/DescribeJobs", r#"{"maxResults": 0}"#),
            ("/DescribeJobs", r#"{"filters": {"jobIDs": ["job-1"]}}"#),
            ("/DescribeJobs", r#"{"filters": {"fromDate": "yesterday"}}"#),
            ("/DescribeRecoveryInstances", r#"{"maxResults": 1001}"#),
            (
                "/DescribeRecoveryInstances",
                r#"{"filters": {"recoveryInstanceIDs": ["i-xyz"]}}"#,
            ),
            (
                "/DescribeRecoveryInstances",
                r#"{"filters": {"sourceServerIDs": ["s-1"]}}"#,
            ),
            (
                "/DescribeSourceNetworks",
                r#"{"filters": {"sourceNetworkIDs": ["sn-1"]}}"#,
            ),
            (
                "/DescribeSourceNetworks",
                r#"{"filters": {"originAccountID": "12"}}"#,
            ),
            (
                "/DescribeSourceNetworks",
                r#"{"filters": {"originRegion": "Mars"}}"#,
            ),
            ("/DescribeSourceNetworks", r#"{"filters": 5}"#),
        ] {
            let (status, code, answer) = send(&sim, "drs", "eu-west-1", path, body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}: {answer}");
            assert_eq!(
                code.as_deref(),
                Some("ValidationException"),
                "{path} {body}"
            );
        }
        // A token of one operation is refused by another.
        sim.update(|c| c.max_page_size = 1).unwrap();
        let jobs = call(&sim, "drs", "eu-west-1", "/DescribeJobs", "{}").await;
        let token = serde_json::from_str::<Value>(&jobs).unwrap()["nextToken"].clone();
        let body = format!(r#"{{"nextToken": {token}}}"#);
        let (status, _, _) = send(
            &sim,
            "drs",
            "eu-west-1",
            "/DescribeRecoveryInstances",
            &body,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            send(&sim, "drs", "eu-west-1", "/DescribeJobs", &body)
                .await
                .0,
            StatusCode::OK
        );
        // Faults apply as to every DRS operation.
        sim.update(|c| {
            c.faults.throttle_next = 1;
            c.faults.not_initialized = vec![crate::RegionalSelector {
                account: crate::AccountMatch::Any,
                region: Region::parse("ap-east-1").unwrap(),
            }];
        })
        .unwrap();
        let (status, code, _) =
            send(&sim, "drs", "eu-west-1", "/DescribeSourceNetworks", "{}").await;
        assert_eq!(
            (status, code.as_deref()),
            (StatusCode::TOO_MANY_REQUESTS, Some("ThrottlingException"))
        );
        let (status, code, _) =
            send(&sim, "drs", "ap-east-1", "/DescribeRecoveryInstances", "").await;
        assert_eq!(
            (status, code.as_deref()),
            (
                StatusCode::BAD_REQUEST,
                Some("UninitializedAccountException")
            )
        );
        assert_eq!(sim.requests(Service::Drs, "DescribeJobs"), 6);
        assert_eq!(sim.requests(Service::Drs, "DescribeRecoveryInstances"), 5);
        assert_eq!(sim.requests(Service::Drs, "DescribeSourceNetworks"), 5);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn applied_changes_are_what_the_running_server_serves() {
        // GIVEN a running simulator
        let sim = Simulator::start(([127, 0, 0, 1], 0).into(), SimConfig::default())
            .await
            .unwrap();
        let account = crate::config::default_account();
        let region = Region::parse("eu-west-1").unwrap();
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        // WHEN a server stalls and an instance profile is created
        let stall = sim
            .apply(Change::ServerStalls { pick: 9 }, &account, &region, at)
            .unwrap();
        let profile = sim
            .apply(Change::InstanceProfileCreated, &account, &region, at)
            .unwrap();
        // THEN DescribeSourceServers serves the stalled server as STALLED
        let id = stall.resource.unwrap();
        let body = format!(r#"{{"filters": {{"sourceServerIDs": ["{id}"]}}}}"#);
        let answer = call(&sim, "drs", "eu-west-1", "/DescribeSourceServers", &body).await;
        let answer: Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(
            answer["items"][0]["dataReplicationInfo"]["dataReplicationState"],
            "STALLED"
        );
        assert_eq!(stall.event["resources"][0], answer["items"][0]["arn"]);
        // AND ListInstanceProfiles lists the new profile among 26
        let query = "Action=ListInstanceProfiles&Version=2010-05-08&MaxItems=1000";
        let answer = call(&sim, "iam", "us-east-1", "/", query).await;
        let name = profile.resource.unwrap();
        assert!(answer.contains(&format!(
            "<InstanceProfileName>{name}</InstanceProfileName>"
        )));
        assert_eq!(answer.matches("<InstanceProfileName>").count(), 26);
        sim.shutdown().await;
    }
}
