//! The refresh workflow end to end: `statemachine/refresh.asl.json` executed by
//! moto's Step Functions engine, its Lambda tasks answered by the project's own
//! handlers (`plan::lambda::handle`, `refresh::lambda::handle`) in this process.
//!
//! One moto server per test process, started with `MOTO_PORT` set to the port
//! of a router in this process: moto's engine invokes Lambda at
//! `http://localhost:$MOTO_PORT`. The router answers
//! `POST /2015-03-31/functions/{name}/invocations` with the handler of the
//! function named by the ARN's last segment (`planner`, `refresher`), a handler
//! error as real Lambda does (HTTP 200, `X-Amz-Function-Error: Unhandled`,
//! `{"errorType", "errorMessage"}`), and forwards every other request to moto,
//! recording it. The refresher reads EC2, IAM and STS through the router (so
//! the tests can count upstream calls) and DRS from the fleet simulator.
//!
//! The router and its runtime live as long as the process, but the handlers
//! belong to one test: tests take turns ([`Rig::start`] waits for the previous
//! test's rig to be dropped), and each installs its planner and refresher, which
//! run on the test's own runtime.

use std::{
    collections::BTreeMap,
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError},
    time::{Duration, Instant},
};

use aws_config::SdkConfig;
use aws_sdk_sfn::{
    config::{BehaviorVersion, Credentials as SfnCredentials, Region as SfnRegion},
    types::{ExecutionStatus, HistoryEvent, StateMachineType},
};
use bytes::Bytes;
use drs_cache::{
    adapters::{
        aws::{AccountAccess, AwsUpstream, Credentials, RetrySettings, UpstreamConfig},
        dynamodb::{DynamoDbStore, create_table},
        s3::S3PlanStore,
        sfn::StepFunctionsTrigger,
    },
    config::REFRESH_REQUEST_WINDOW,
    domain::{AccountId, CacheEntry, CacheKey, DataType, Region, Timestamp},
    invocation::InvocationError,
    plan::{PlanConfig, Planner, lambda::PlannerFunction},
    ports::CacheStorage,
    read::{ApiRequest, ApiResponse},
    refresh::{Refresher, lambda::RefresherFunction},
};
use drs_sim::{SimConfig, SimHandle, Simulator};
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::{
    client::legacy::{Client as HttpClient, connect::HttpConnector},
    rt::{TokioExecutor, TokioIo},
};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use serde_norway::Value as Yaml;

use super::{
    moto,
    plan::{ManualClock, RecordedRuns},
    refresh::{
        Endpoints, RecordedRefreshes, assumed_config, home, moto_upstream, sdk_config, settings,
    },
};

pub use super::refresh::HOME;

/// The second account, reached through STS AssumeRole.
pub const OTHER: &str = "210987654321";
pub const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];
/// The role the refresher assumes in `OTHER` (moto does not check it exists).
pub const ROLE: &str = "drs-cache-reader";
pub const EXTERNAL_ID: &str = "drs-cache-tests";
/// Names of the resources put into moto for both accounts and regions.
pub const FIXTURE_TAG: &str = "drs-cache-workflow";

/// The plan bucket of every rig, which the definition's `ResultWriter` names.
pub const PLAN_BUCKET: &str = "drs-cache-workflow-plans";

/// The functions as the state machine names them.
pub const PLANNER: &str = "planner";
pub const REFRESHER: &str = "refresher";

const DEFINITION: &str = include_str!("../../../statemachine/refresh.asl.json");
const TARGETS_DEFINITION: &str = include_str!("../../../statemachine/refresh-targets.asl.json");
const TEMPLATE: &str = include_str!("../../../cfn/drs-cache.yaml");

pub fn other() -> AccountId {
    AccountId::parse(OTHER).unwrap()
}

pub fn regions() -> Vec<Region> {
    REGIONS.map(|r| Region::parse(r).unwrap()).to_vec()
}

pub fn function_arn(name: &str) -> String {
    format!("arn:aws:lambda:us-east-1:{HOME}:function:{name}")
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

// --- the process-wide part: moto, the router ---------------------------------------

/// One request the router forwarded to moto.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarded {
    pub method: String,
    pub path: String,
    /// The query-protocol `Action` (EC2, IAM, STS) or the JSON protocol's
    /// `X-Amz-Target` operation (DynamoDB, ...).
    pub action: Option<String>,
    /// The service and region of the SigV4 credential scope.
    pub service: Option<String>,
    pub region: Option<String>,
    pub access_key: Option<String>,
}

/// One Lambda invocation the router answered.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub function: String,
    pub payload: Value,
    /// The function's result, or its error type and message.
    pub result: Result<Value, (String, String)>,
    /// How long the function took to answer.
    pub elapsed: Duration,
}

/// A test's own functions: the result, or the error type and message, of an
/// invocation of the function named by the last segment of its ARN.
pub type StandIns = Arc<dyn Fn(&str, Value) -> Result<Value, (String, String)> + Send + Sync>;

/// What answers the Lambda invocations of the test whose turn it is.
#[derive(Clone)]
enum Dispatch {
    /// The project's handlers, on the test's runtime.
    Handlers {
        runtime: tokio::runtime::Handle,
        planner: Arc<PlannerFunction>,
        refresher: Arc<RefresherFunction>,
    },
    StandIns(StandIns),
}

/// Which moto and router a rig runs on. Each harness serves one test at a
/// time; tests on different harnesses run side by side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lane {
    /// Whichever of the [`SHARED_LANES`] harnesses is free first.
    #[default]
    Shared,
    /// A moto of its own for a run of a thousand executions, so that the other
    /// workflow tests do not queue behind it for most of a minute.
    Fleet,
}

/// Harnesses the workflow tests share: a test spends most of its run waiting
/// on moto's engine, so two run at once.
const SHARED_LANES: usize = 2;

struct Harness {
    /// moto itself, such as `http://127.0.0.1:5123`.
    moto: String,
    /// The router in front of it, at `MOTO_PORT`.
    router: String,
    state: Arc<RouterState>,
    /// One test at a time uses the router.
    turn: tokio::sync::Mutex<()>,
}

struct RouterState {
    moto: SocketAddr,
    client: HttpClient<HttpConnector, Full<Bytes>>,
    dispatch: Mutex<Option<Dispatch>>,
    forwarded: Mutex<Vec<Forwarded>>,
    invocations: Mutex<Vec<Invocation>>,
}

/// The runtime the router serves on, for the life of the process.
fn router_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("workflow-router")
            .enable_all()
            .build()
            .expect("a runtime for the router")
    })
}

/// The harness `index` (`SHARED_LANES` is the fleet's), started on first use.
fn harness(index: usize) -> &'static Harness {
    static HARNESSES: [OnceLock<Harness>; SHARED_LANES + 1] =
        [const { OnceLock::new() }; SHARED_LANES + 1];
    // Started on a thread of its own: the caller may be inside a runtime.
    HARNESSES[index].get_or_init(|| {
        std::thread::spawn(Harness::start)
            .join()
            .expect("the workflow harness starts")
    })
}

/// A harness of `lane` and its turn: a free one if there is one, else the
/// next in turn once its test has finished.
async fn turn_at(lane: Lane) -> (&'static Harness, tokio::sync::MutexGuard<'static, ()>) {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let candidates: Vec<usize> = match lane {
        Lane::Shared => (0..SHARED_LANES).collect(),
        Lane::Fleet => vec![SHARED_LANES],
    };
    let started = tokio::task::spawn_blocking(move || {
        candidates.into_iter().map(harness).collect::<Vec<_>>()
    })
    .await
    .unwrap();
    for harness in &started {
        if let Ok(turn) = harness.turn.try_lock() {
            return (harness, turn);
        }
    }
    let next = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % started.len();
    (started[next], started[next].turn.lock().await)
}

impl Harness {
    fn start() -> Self {
        let runtime = router_runtime();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port for the router");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let moto = moto::start_with_env(&[("MOTO_PORT", &port.to_string())]);
        let moto_addr: SocketAddr = moto
            .strip_prefix("http://")
            .and_then(|a| a.parse().ok())
            .expect("moto's endpoint is http://IP:PORT");
        let state = Arc::new(RouterState {
            moto: moto_addr,
            client: HttpClient::builder(TokioExecutor::new()).build_http(),
            dispatch: Mutex::new(None),
            forwarded: Mutex::new(Vec::new()),
            invocations: Mutex::new(Vec::new()),
        });
        let served = state.clone();
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            serve(listener, served).await;
        });
        let harness = Self {
            moto,
            router: format!("http://127.0.0.1:{port}"),
            state,
            turn: tokio::sync::Mutex::new(()),
        };
        runtime.block_on(async {
            harness.enable_execution().await;
            put_fixtures(&harness.moto).await;
        });
        harness
    }

    async fn enable_execution(&self) {
        let request = Request::post(format!("{}/moto-api/config", self.moto))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from_static(
                br#"{"stepfunctions": {"execute_state_machine": true}}"#,
            )))
            .unwrap();
        let response = self.state.client.request(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert!(
            status.is_success(),
            "moto config: {status} {}",
            String::from_utf8_lossy(&body)
        );
    }
}

/// A subnet, a security group and an instance profile of each account (and
/// region), besides moto's default VPC, so that every view has a record of ours.
async fn put_fixtures(moto: &str) {
    let home_config = sdk_config(moto, Endpoints::default()).await;
    let other_config = assumed_config(&home_config, OTHER, ROLE, EXTERNAL_ID).await;
    for region in REGIONS {
        let base = in_region(&home_config, region);
        let other = in_region(&other_config, region);
        for (config, account) in [(&base, HOME), (&other, OTHER)] {
            let ec2 = aws_sdk_ec2::Client::new(config);
            let vpc = ec2
                .create_vpc()
                .cidr_block("10.77.0.0/16")
                .send()
                .await
                .unwrap()
                .vpc
                .unwrap()
                .vpc_id
                .unwrap();
            let name = |kind: &str| format!("{FIXTURE_TAG}-{kind}-{account}-{region}");
            let tags = |kind: &str, resource: aws_sdk_ec2::types::ResourceType| {
                aws_sdk_ec2::types::TagSpecification::builder()
                    .resource_type(resource)
                    .tags(
                        aws_sdk_ec2::types::Tag::builder()
                            .key("Name")
                            .value(name(kind))
                            .build(),
                    )
                    .build()
            };
            ec2.create_subnet()
                .vpc_id(&vpc)
                .cidr_block("10.77.1.0/24")
                .availability_zone(format!("{region}a"))
                .tag_specifications(tags("subnet", aws_sdk_ec2::types::ResourceType::Subnet))
                .send()
                .await
                .unwrap();
            ec2.create_security_group()
                .vpc_id(&vpc)
                .group_name(name("sg"))
                .description("drs-cache workflow tests")
                .send()
                .await
                .unwrap();
        }
    }
    for (config, account) in [(&home_config, HOME), (&other_config, OTHER)] {
        aws_sdk_iam::Client::new(config)
            .create_instance_profile()
            .instance_profile_name(format!("{FIXTURE_TAG}-profile-{account}"))
            .send()
            .await
            .unwrap();
    }
}

async fn serve(listener: tokio::net::TcpListener, state: Arc<RouterState>) {
    while let Ok((stream, _)) = listener.accept().await {
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(state.route(request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The function name of a Lambda Invoke path, from the last segment of the
/// (percent-encoded) name or ARN.
fn invoked_function(method: &Method, path: &str) -> Option<String> {
    if method != Method::POST {
        return None;
    }
    let name = path
        .strip_prefix("/2015-03-31/functions/")?
        .strip_suffix("/invocations")?;
    let name = percent_decode(name);
    name.rsplit(':').next().map(str::to_owned)
}

/// `text` with its `%XX` escapes decoded (a malformed one is kept as it is).
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Headers that belong to one connection, not to the request or answer.
fn hop_by_hop(name: &header::HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "te"
            | "trailer"
            | "upgrade"
            | "host"
            | "content-length"
    )
}

fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

impl RouterState {
    async fn route(&self, request: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        let (parts, body) = request.into_parts();
        let body = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) => {
                return json_response(
                    StatusCode::BAD_REQUEST,
                    &json!({"message": format!("unreadable body: {e}")}),
                );
            }
        };
        match invoked_function(&parts.method, parts.uri.path()) {
            Some(function) => self.invoke(function, &body).await,
            None => self.forward(parts, body).await,
        }
    }

    /// Runs the handler of `function` on the runtime of the test whose turn it
    /// is, answering as real Lambda does.
    async fn invoke(&self, function: String, body: &[u8]) -> Response<Full<Bytes>> {
        let Some(dispatch) = lock(&self.dispatch).clone() else {
            return json_response(
                StatusCode::NOT_FOUND,
                &json!({"Type": "User", "message": format!("Function not found: {function} (no test is running)")}),
            );
        };
        let payload: Value = match serde_json::from_slice(body) {
            Ok(payload) => payload,
            Err(e) => {
                return json_response(
                    StatusCode::BAD_REQUEST,
                    &json!({"Type": "User", "message": format!("Could not parse request body into json: {e}")}),
                );
            }
        };
        let (name, input) = (function.clone(), payload.clone());
        let (runtime, planner, refresher) = match dispatch {
            Dispatch::StandIns(answer) => {
                let started = Instant::now();
                let result = answer(&function, payload.clone());
                return self.answer(function, payload, result, started.elapsed());
            }
            Dispatch::Handlers {
                runtime,
                planner,
                refresher,
            } => (runtime, planner, refresher),
        };
        let started = Instant::now();
        let outcome = runtime
            .spawn(async move {
                let event = LambdaEvent::new(input, Context::default());
                let result = match name.as_str() {
                    PLANNER => drs_cache::plan::lambda::handle(&planner, event)
                        .await
                        .map(|out| serde_json::to_value(out).unwrap()),
                    REFRESHER => refresher
                        .handle(event)
                        .await
                        .map(|out| serde_json::to_value(out).unwrap()),
                    other => {
                        return Err(format!("Function not found: {other}"));
                    }
                };
                Ok(result)
            })
            .await;
        let result: Result<Value, (String, String)> = match outcome {
            Ok(Ok(result)) => {
                result.map_err(|e: InvocationError| (e.error_type.to_owned(), e.message))
            }
            Ok(Err(not_found)) => {
                return json_response(
                    StatusCode::NOT_FOUND,
                    &json!({"Type": "User", "message": not_found}),
                );
            }
            // A panicking handler: the runtime reports it as an unhandled error.
            Err(e) => Err(("Panic".to_owned(), e.to_string())),
        };
        self.answer(function, payload, result, started.elapsed())
    }

    /// Records an invocation and answers it as real Lambda does: a function
    /// error is HTTP 200 with `X-Amz-Function-Error` and `{"errorType",
    /// "errorMessage"}`.
    fn answer(
        &self,
        function: String,
        payload: Value,
        result: Result<Value, (String, String)>,
        elapsed: Duration,
    ) -> Response<Full<Bytes>> {
        lock(&self.invocations).push(Invocation {
            function,
            payload,
            result: result.clone(),
            elapsed,
        });
        let response = Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-amz-executed-version", "$LATEST");
        match result {
            Ok(output) => response.body(Full::new(Bytes::from(output.to_string()))),
            Err((error_type, message)) => response
                .header("x-amz-function-error", "Unhandled")
                .body(Full::new(Bytes::from(
                    json!({"errorType": error_type, "errorMessage": message}).to_string(),
                ))),
        }
        .unwrap()
    }

    /// Sends the request to moto as it is and relays the answer.
    async fn forward(&self, parts: http::request::Parts, body: Bytes) -> Response<Full<Bytes>> {
        lock(&self.forwarded).push(describe_forwarded(&parts, &body));
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let mut request = Request::builder()
            .method(parts.method.clone())
            .uri(format!("http://{}{path}", self.moto))
            .header(header::HOST, self.moto.to_string());
        for (name, value) in &parts.headers {
            if !hop_by_hop(name) {
                request = request.header(name, value);
            }
        }
        let request = request.body(Full::new(body)).unwrap();
        let answer = match self.client.request(request).await {
            Ok(answer) => answer,
            Err(e) => {
                return json_response(
                    StatusCode::BAD_GATEWAY,
                    &json!({"message": format!("moto unreachable: {e}")}),
                );
            }
        };
        let (parts, body) = answer.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let mut response = Response::builder().status(parts.status);
        for (name, value) in &parts.headers {
            if !hop_by_hop(name) {
                response = response.header(name, value);
            }
        }
        response.body(Full::new(body)).unwrap()
    }
}

fn describe_forwarded(parts: &http::request::Parts, body: &[u8]) -> Forwarded {
    let action_in = |text: &[u8]| {
        form_urlencoded::parse(text)
            .find(|(k, _)| k == "Action")
            .map(|(_, v)| v.into_owned())
    };
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(|t| t.rsplit('.').next().unwrap_or(t).to_owned());
    let action = parts
        .uri
        .query()
        .and_then(|q| action_in(q.as_bytes()))
        .or_else(|| action_in(body))
        .or(target);
    // `AWS4-HMAC-SHA256 Credential=AKID/20240514/us-east-1/ec2/aws4_request, ...`
    let scope: Vec<String> = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split(',').next())
        .map(|c| c.split('/').map(str::to_owned).collect())
        .unwrap_or_default();
    Forwarded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        action,
        access_key: scope.first().cloned(),
        region: scope.get(2).cloned(),
        service: scope.get(3).cloned(),
    }
}

// --- the definition as deployed --------------------------------------------------------

/// The function a `!GetAtt {Logical}.Arn` substitution names: the router's
/// function names.
fn function_of(logical_id: &str) -> &'static str {
    match logical_id {
        "PlannerFunction" => PLANNER,
        "RefresherFunction" => REFRESHER,
        other => panic!("DefinitionSubstitutions name a function {other} the router does not run"),
    }
}

/// The values of the refresh workflow's `DefinitionSubstitutions`, as
/// CloudFormation fills them in account `HOME` with the parameter defaults;
/// function ARNs name the router's functions, and `overrides` replace
/// parameter values.
pub fn substitutions(overrides: &[(&str, &str)]) -> BTreeMap<String, String> {
    substitutions_of("RefreshStateMachine", overrides)
}

/// The same for the targets workflow.
pub fn targets_substitutions(overrides: &[(&str, &str)]) -> BTreeMap<String, String> {
    substitutions_of("RefreshTargetsStateMachine", overrides)
}

fn substitutions_of(machine: &str, overrides: &[(&str, &str)]) -> BTreeMap<String, String> {
    let template: Yaml = serde_norway::from_str(TEMPLATE).expect("cfn/drs-cache.yaml is YAML");
    let properties = &template["Resources"][machine]["Properties"];
    let given = properties["DefinitionSubstitutions"]
        .as_mapping()
        .unwrap_or_else(|| panic!("{machine} has DefinitionSubstitutions"));
    let mut values = BTreeMap::new();
    for (name, value) in given {
        let name = name.as_str().expect("substitution names").to_owned();
        let Yaml::Tagged(tagged) = value else {
            panic!("{name}: expected !Ref or !GetAtt, got {value:?}")
        };
        let value = match (tagged.tag.to_string().as_str(), &tagged.value) {
            ("!Ref", Yaml::String(resource)) if resource == "PlanBucket" => PLAN_BUCKET.to_owned(),
            ("!Ref", Yaml::String(parameter)) => {
                match &template["Parameters"][parameter.as_str()]["Default"] {
                    Yaml::Number(n) => n.to_string(),
                    Yaml::String(s) => s.clone(),
                    other => panic!("{name}: parameter {parameter} has no default: {other:?}"),
                }
            }
            ("!GetAtt", Yaml::String(attribute)) => {
                let logical = attribute
                    .strip_suffix(".Arn")
                    .unwrap_or_else(|| panic!("{name}: !GetAtt {attribute} is not an ARN"));
                function_arn(function_of(logical))
            }
            (tag, arg) => panic!("{name}: cannot evaluate {tag} {arg:?}"),
        };
        values.insert(name, value);
    }
    for (name, value) in overrides {
        assert!(
            values.contains_key(*name),
            "{name} is not a DefinitionSubstitution of the template"
        );
        values.insert((*name).to_owned(), (*value).to_owned());
    }
    values
}

/// `statemachine/refresh.asl.json` as CloudFormation hands it to Step
/// Functions: every placeholder filled.
pub fn filled_definition(substitutions: &BTreeMap<String, String>) -> String {
    fill(DEFINITION, substitutions)
}

/// `statemachine/refresh-targets.asl.json` as CloudFormation hands it to Step
/// Functions.
pub fn filled_targets_definition(substitutions: &BTreeMap<String, String>) -> String {
    fill(TARGETS_DEFINITION, substitutions)
}

fn fill(definition: &str, substitutions: &BTreeMap<String, String>) -> String {
    let text = substitutions
        .iter()
        .fold(definition.to_owned(), |text, (name, value)| {
            text.replace(&format!("${{{name}}}"), value)
        });
    if let Some(at) = text.find("${") {
        let rest = &text[at..];
        panic!(
            "the definition has a placeholder the template does not fill: {}",
            &rest[..rest.find('}').map_or(rest.len(), |e| e + 1)]
        );
    }
    text
}

/// The filled definition as moto runs it: every retrier's interval and
/// longest delay cut to 1 s (moto sleeps for real), and the Map's children
/// STANDARD (`BatchExecutionType`), since moto's engine refuses EXPRESS ones.
pub fn deployed_definition(substitutions: &BTreeMap<String, String>) -> String {
    let mut substitutions = substitutions.clone();
    substitutions.insert("BatchExecutionType".into(), "STANDARD".into());
    shortened(&filled_definition(&substitutions))
}

/// The filled targets definition as moto runs it: every retrier's interval
/// and longest delay cut to 1 s.
pub fn deployed_targets_definition(substitutions: &BTreeMap<String, String>) -> String {
    shortened(&filled_targets_definition(substitutions))
}

fn shortened(filled: &str) -> String {
    let mut definition: Value = serde_json::from_str(filled).expect("the definition is JSON");
    fn shorten(machine: &mut Value) {
        let Some(states) = machine.get_mut("States").and_then(Value::as_object_mut) else {
            return;
        };
        for state in states.values_mut() {
            let retriers = state.get_mut("Retry").and_then(Value::as_array_mut);
            for retrier in retriers.into_iter().flatten() {
                retrier["IntervalSeconds"] = json!(1);
                if retrier.get("MaxDelaySeconds").is_some() {
                    retrier["MaxDelaySeconds"] = json!(1);
                }
            }
            for nested in ["ItemProcessor", "Iterator"] {
                if let Some(processor) = state.get_mut(nested) {
                    shorten(processor);
                }
            }
            if let Some(branches) = state.get_mut("Branches").and_then(Value::as_array_mut) {
                branches.iter_mut().for_each(shorten);
            }
        }
    }
    shorten(&mut definition);
    definition.to_string()
}

// --- one test's rig -------------------------------------------------------------------

/// What a test changes in its rig.
#[derive(Clone)]
pub struct Options {
    pub sim: SimConfig,
    /// Attempts per upstream call (the SDK's retries inside one invocation).
    pub upstream_attempts: u32,
    /// `RefreshMaxConcurrency`: batches refreshed at once.
    pub map_concurrency: u32,
    /// What the planner plans over.
    pub plan: PlanConfig,
    /// The refresher the router runs; `None`: one over the rig's table, reading
    /// EC2, IAM and STS from moto and DRS from the simulator.
    pub refresher: Option<Arc<Refresher>>,
    /// Where the planner reads entry metadata and claims leases; `None`: the
    /// rig's table, which always keeps the run ledger.
    pub plan_store: Option<Arc<dyn CacheStorage>>,
    /// The rig's table is reached through the router, which counts its calls.
    pub table_via_router: bool,
    /// How long one execution may take.
    pub execution_deadline: Duration,
    pub lane: Lane,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            sim: SimConfig {
                defaults: drs_sim::FleetSize {
                    servers: 12,
                    ..drs_sim::FleetSize::default()
                },
                ..SimConfig::default()
            },
            upstream_attempts: 3,
            map_concurrency: 4,
            plan: plan_config(),
            refresher: None,
            plan_store: None,
            table_via_router: false,
            execution_deadline: Duration::from_secs(90),
            lane: Lane::Shared,
        }
    }
}

/// The deployment's configuration: both accounts, both regions, every data type.
/// The data types the workflow and planner tests count their targets over:
/// the seven of the original design. DRS jobs, recovery instances and source
/// networks plan and fetch like any per-account type; tests/it/drill_data.rs
/// refreshes them end to end, and leaving them out here keeps these runs on
/// moto's Step Functions at the size their arithmetic names.
pub const COUNTED_TYPES: [DataType; 7] = [
    DataType::DrsSourceServers,
    DataType::DrsQuotas,
    DataType::DrsAccounts,
    DataType::Ec2Subnets,
    DataType::Ec2SecurityGroups,
    DataType::Ec2InstanceProfiles,
    DataType::Ec2InstanceTypes,
];

pub fn plan_config() -> PlanConfig {
    PlanConfig {
        home: home(),
        accounts: vec![home(), other()],
        regions: regions(),
        data_types: COUNTED_TYPES.to_vec(),
        schedule_interval: Duration::from_secs(60),
        refresh_ahead_margin: Duration::from_secs(30),
        failure_backoff: Duration::from_secs(300),
        lease: drs_cache::config::DEFAULT_LEASE,
        batch_size: 10,
        list_page: 25,
        max_targets_per_run: 10_000,
        manual_min_age: Duration::from_secs(60),
        thresholds: Default::default(),
        ownership: Default::default(),
        refresh_ahead: drs_cache::domain::RefreshAhead::Always,
    }
}

/// How an execution ended.
#[derive(Debug, Clone)]
pub struct Finished {
    pub arn: String,
    pub name: String,
    pub status: ExecutionStatus,
    pub output: Value,
    pub error: Option<String>,
    pub cause: Option<String>,
}

/// One test's deployment: a fresh table and simulator, its planner and
/// refresher installed in the router, its own state machine on moto.
pub struct Rig {
    pub sim: SimHandle,
    pub store: Arc<DynamoDbStore>,
    pub planner: Arc<PlannerFunction>,
    /// Plan objects, in the moto bucket [`PLAN_BUCKET`].
    pub s3: aws_sdk_s3::Client,
    /// The planner's clock; the refresher keeps the system clock.
    pub clock: Arc<ManualClock>,
    pub sfn: aws_sdk_sfn::Client,
    pub machine: String,
    /// The targets workflow, where the refresher's follow-up runs start.
    pub targets_machine: String,
    /// The cache table, on moto.
    pub table: String,
    execution_deadline: Duration,
    reader: drs_cache::read::Router,
    harness: &'static Harness,
    /// Held for the life of the rig: one test at a time uses the router.
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl Drop for Rig {
    fn drop(&mut self) {
        *lock(&self.harness.state.dispatch) = None;
    }
}

/// A turn at the router for a test's stand-in functions: state machines it
/// creates on the shared moto reach `functions`. The turn ends when dropped.
pub struct StandInTurn {
    pub sfn: aws_sdk_sfn::Client,
    /// moto's S3, holding the bucket [`PLAN_BUCKET`].
    pub s3: aws_sdk_s3::Client,
    harness: &'static Harness,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl Drop for StandInTurn {
    fn drop(&mut self) {
        *lock(&self.harness.state.dispatch) = None;
    }
}

impl StandInTurn {
    pub async fn start(functions: StandIns) -> Self {
        let (harness, turn) = turn_at(Lane::Shared).await;
        let sfn = sfn_client(&harness.moto);
        stop_leftover_executions(&sfn).await;
        let s3 = moto::s3_client(&harness.moto);
        moto::ensure_bucket(&s3, PLAN_BUCKET).await;
        *lock(&harness.state.dispatch) = Some(Dispatch::StandIns(functions));
        Self {
            sfn,
            s3,
            harness,
            _turn: turn,
        }
    }
}

/// A state machine of `definition` on moto, under a unique name from `name`.
async fn create_machine(
    sfn: &aws_sdk_sfn::Client,
    name: &str,
    definition: String,
    kind: StateMachineType,
) -> String {
    sfn.create_state_machine()
        .name(moto::unique_name(name))
        .definition(definition)
        .role_arn(format!("arn:aws:iam::{HOME}:role/drs-cache-refresh"))
        .r#type(kind)
        .send()
        .await
        .unwrap_or_else(|e| panic!("moto accepts the {name} definition: {e:?}"))
        .state_machine_arn()
        .to_owned()
}

impl Rig {
    /// moto's own endpoint, where the state machine and the table are.
    pub fn moto_endpoint(&self) -> &str {
        &self.harness.moto
    }

    pub async fn start(options: Options) -> Self {
        super::init_test_log();
        let (harness, turn) = turn_at(options.lane).await;
        let sfn = sfn_client(&harness.moto);
        stop_leftover_executions(&sfn).await;

        let sim = Simulator::start(
            "127.0.0.1:0".parse().unwrap(),
            SimConfig {
                sts_endpoint: Some(harness.moto.clone()),
                ..options.sim
            },
        )
        .await
        .unwrap();
        let table_endpoint = if options.table_via_router {
            &harness.router
        } else {
            &harness.moto
        };
        let client = moto::dynamodb_client(table_endpoint).await;
        let table = moto::unique_name("workflow");
        create_table(&client, &table).await.unwrap();
        let store = Arc::new(DynamoDbStore::new(client, table.clone()));

        // EC2, IAM and STS through the router (counted), DRS at the simulator.
        let base = sdk_config(
            &harness.router,
            Endpoints::default().with("drs", &sim.endpoint()),
        )
        .await;
        let access = AccountAccess {
            own_account: Some(home()),
            others: Credentials::AssumeRole {
                role_name: ROLE.into(),
                external_id: Some(EXTERNAL_ID.into()),
                session_name: "drs-cache-refresher".into(),
            },
        };
        let upstream = AwsUpstream::new(
            base,
            access,
            UpstreamConfig {
                retry: RetrySettings {
                    max_attempts: options.upstream_attempts,
                    ..RetrySettings::default()
                },
                ..moto_upstream()
            },
        )
        .unwrap();
        let refresher = options.refresher.unwrap_or_else(|| {
            Arc::new(drs_cache::app::refresher_over(
                store.clone(),
                store.clone(),
                upstream,
                settings(),
                Arc::new(RecordedRefreshes::default()),
            ))
        });
        let clock = Arc::new(ManualClock::at(Timestamp::now()));
        let s3 = moto::s3_client(&harness.moto);
        moto::ensure_bucket(&s3, PLAN_BUCKET).await;
        let planner = Arc::new(PlannerFunction {
            planner: match options.plan_store {
                Some(plan_store) => {
                    Planner::new(plan_store.clone(), plan_store, clock.clone(), options.plan)
                }
                None => Planner::new(store.clone(), store.clone(), clock.clone(), options.plan),
            },
            plans: Arc::new(S3PlanStore::new(s3.clone(), PLAN_BUCKET)),
            ledger: store.clone(),
            metrics: Arc::new(RecordedRuns::default()),
        });

        let concurrency = options.map_concurrency.to_string();
        let definition =
            deployed_definition(&substitutions(&[("RefreshMaxConcurrency", &concurrency)]));
        let machine = create_machine(&sfn, "refresh", definition, StateMachineType::Standard).await;
        // moto runs an EXPRESS machine's executions as STANDARD ones, with a
        // history the tests can read.
        let targets_machine = create_machine(
            &sfn,
            "refresh-targets",
            deployed_targets_definition(&targets_substitutions(&[(
                "RefreshMaxConcurrency",
                &concurrency,
            )])),
            StateMachineType::Express,
        )
        .await;
        // Follow-up runs start on the targets machine, as the deployed
        // refresher's do.
        let refresher = Arc::new(RefresherFunction {
            refresher,
            ledger: store.clone(),
            trigger: Arc::new(
                StepFunctionsTrigger::new(sfn.clone(), &machine, REFRESH_REQUEST_WINDOW)
                    .with_targets_machine(Some(targets_machine.clone())),
            ),
        });
        *lock(&harness.state.dispatch) = Some(Dispatch::Handlers {
            runtime: tokio::runtime::Handle::current(),
            planner: planner.clone(),
            refresher,
        });
        lock(&harness.state.forwarded).clear();
        lock(&harness.state.invocations).clear();
        let reader = super::refresh::reader(store.clone());
        Self {
            sim,
            store,
            planner,
            s3,
            clock,
            sfn,
            machine,
            targets_machine,
            table,
            execution_deadline: options.execution_deadline,
            reader,
            harness,
            _turn: turn,
        }
    }

    /// The batches in the plan object a plan output names; `[]` for none.
    pub async fn plan_object(&self, plan: &Value) -> Value {
        match (
            plan["plan"]["bucket"].as_str(),
            plan["plan"]["key"].as_str(),
        ) {
            (Some(bucket), Some(key)) => moto::object_json(&self.s3, bucket, key).await,
            _ => json!([]),
        }
    }

    /// Every target the deployment keeps (26: 2 regions × (6 per-account types
    /// × 2 accounts + instance types)).
    pub fn configured(&self) -> Vec<CacheKey> {
        self.planner.planner.configured().collect()
    }

    /// Requests forwarded to moto since the rig started or since the last
    /// [`Rig::clear_forwarded`].
    pub fn forwarded(&self) -> Vec<Forwarded> {
        lock(&self.harness.state.forwarded).clone()
    }

    pub fn clear_forwarded(&self) {
        lock(&self.harness.state.forwarded).clear();
    }

    /// Forwarded requests of `action`.
    pub fn forwarded_actions(&self, action: &str) -> Vec<Forwarded> {
        self.forwarded()
            .into_iter()
            .filter(|f| f.action.as_deref() == Some(action))
            .collect()
    }

    /// Lambda invocations since the rig started.
    pub fn invocations(&self) -> Vec<Invocation> {
        lock(&self.harness.state.invocations).clone()
    }

    pub fn invocations_of(&self, function: &str) -> Vec<Invocation> {
        self.invocations()
            .into_iter()
            .filter(|i| i.function == function)
            .collect()
    }

    /// Starts an execution named `name` (moto needs one) with `input`; its ARN.
    pub async fn start_execution(&self, name: &str, input: &Value) -> String {
        self.sfn
            .start_execution()
            .state_machine_arn(&self.machine)
            .name(name)
            .input(input.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("start {name}: {e:?}"))
            .execution_arn()
            .to_owned()
    }

    /// The ARNs of the executions of `machine`, by name.
    pub async fn executions(&self, machine: &str) -> BTreeMap<String, String> {
        self.sfn
            .list_executions()
            .state_machine_arn(machine)
            .send()
            .await
            .unwrap_or_else(|e| panic!("list executions of {machine}: {e:?}"))
            .executions()
            .iter()
            .map(|e| (e.name().to_owned(), e.execution_arn().to_owned()))
            .collect()
    }

    /// Waits for the execution `arn` to end, up to a deadline.
    pub async fn wait(&self, arn: &str) -> Finished {
        let deadline = Instant::now() + self.execution_deadline;
        let mut pause = Duration::from_millis(50);
        loop {
            let described = self
                .sfn
                .describe_execution()
                .execution_arn(arn)
                .send()
                .await
                .unwrap_or_else(|e| panic!("describe {arn}: {e:?}"));
            if *described.status() != ExecutionStatus::Running {
                return Finished {
                    arn: arn.to_owned(),
                    name: described.name().unwrap_or_default().to_owned(),
                    status: described.status().clone(),
                    output: described
                        .output()
                        .map(|o| serde_json::from_str(o).expect("output is JSON"))
                        .unwrap_or(Value::Null),
                    error: described.error().map(str::to_owned),
                    cause: described.cause().map(str::to_owned),
                };
            }
            if Instant::now() >= deadline {
                panic!(
                    "{arn} still running after {:?}; history:\n{}",
                    self.execution_deadline,
                    self.history_text(arn).await
                );
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(300));
        }
    }

    /// Runs one execution, which must succeed; how it ended.
    pub async fn run(&self, name: &str, input: &Value) -> Finished {
        let arn = self.start_execution(name, input).await;
        let finished = self.wait(&arn).await;
        if finished.status != ExecutionStatus::Succeeded {
            panic!(
                "{name} ended {:?} ({:?}: {:?}); history:\n{}",
                finished.status,
                finished.error,
                finished.cause,
                self.history_text(&arn).await
            );
        }
        finished
    }

    /// The whole history of an execution, oldest first.
    pub async fn history(&self, arn: &str) -> Vec<HistoryEvent> {
        let mut events = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .sfn
                .get_execution_history()
                .execution_arn(arn)
                .set_next_token(token.take())
                .send()
                .await
                .unwrap_or_else(|e| panic!("history of {arn}: {e:?}"));
            events.extend(page.events().iter().cloned());
            match page.next_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_owned()),
                _ => return events,
            }
        }
    }

    /// The history as one line per event, for failure messages.
    pub async fn history_text(&self, arn: &str) -> String {
        self.history(arn)
            .await
            .iter()
            .map(describe_event)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// `GET path?query` through the reader.
    pub async fn get(&self, path: &str, query: &[(&str, &str)]) -> ApiResponse {
        self.reader.handle(&ApiRequest::get(path, query)).await
    }

    /// The reader's answer for `key`.
    pub async fn read(&self, key: &CacheKey) -> ApiResponse {
        let path = format!("/{}", key.data_type().as_str().replacen('-', "/", 1));
        let account = key.scope().account().map(|a| a.to_string());
        let mut query = vec![("region", key.region().as_str())];
        if let Some(account) = account.as_deref() {
            query.push(("accountId", account));
        }
        self.get(&path, &query).await
    }

    /// The stored entry of `key`.
    pub async fn entry(&self, key: &CacheKey) -> Option<CacheEntry> {
        use drs_cache::ports::CacheReads;
        self.store.get(key).await.unwrap()
    }
}

/// One history event as a line: id, type, and the details that matter here.
pub fn describe_event(event: &HistoryEvent) -> String {
    let mut line = format!("{:>4} {:?}", event.id(), event.r#type());
    if let Some(d) = event.state_entered_event_details() {
        line.push_str(&format!(" {}", d.name()));
    }
    if let Some(d) = event.task_scheduled_event_details() {
        line.push_str(&format!(" {}", truncate(d.parameters(), 160)));
    }
    if let Some(d) = event.task_failed_event_details() {
        line.push_str(&format!(
            " error={:?} cause={}",
            d.error(),
            truncate(d.cause().unwrap_or_default(), 200)
        ));
    }
    if let Some(d) = event.task_succeeded_event_details() {
        line.push_str(&format!(
            " {}",
            truncate(d.output().unwrap_or_default(), 200)
        ));
    }
    if let Some(d) = event.execution_failed_event_details() {
        line.push_str(&format!(
            " error={:?} cause={}",
            d.error(),
            truncate(d.cause().unwrap_or_default(), 300)
        ));
    }
    line
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

fn sfn_client(endpoint: &str) -> aws_sdk_sfn::Client {
    let config = aws_sdk_sfn::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(drs_cache::adapters::aws::https_client())
        .endpoint_url(endpoint)
        .region(SfnRegion::new("us-east-1"))
        .credentials_provider(SfnCredentials::new(
            "testing", "testing", None, None, "moto",
        ))
        .build();
    aws_sdk_sfn::Client::from_conf(config)
}

/// Stops what an earlier test (one that failed before its executions ended)
/// left running, so it cannot call this test's functions.
async fn stop_leftover_executions(sfn: &aws_sdk_sfn::Client) {
    let machines = sfn.list_state_machines().send().await.unwrap();
    for machine in machines.state_machines() {
        let running = sfn
            .list_executions()
            .state_machine_arn(machine.state_machine_arn())
            .status_filter(ExecutionStatus::Running)
            .send()
            .await
            .unwrap();
        for execution in running.executions() {
            let _ = sfn
                .stop_execution()
                .execution_arn(execution.execution_arn())
                .send()
                .await;
        }
    }
}

/// `base` in `region`.
pub fn in_region(base: &SdkConfig, region: &str) -> SdkConfig {
    base.to_builder()
        .region(aws_config::Region::new(region.to_owned()))
        .build()
}
