//! The `reader` binary as Lambda runs it, under a stand-in for Lambda's
//! Runtime API and Extensions API: when it follows demand, its internal
//! extension writes an invocation's demand notes after the answer has been
//! posted and before it asks for its next event (before Lambda would freeze
//! the environment); when it refreshes everything ahead, no extension
//! registers.
//!
//! The stand-in plays one invocation the way Lambda does: init ends when the
//! runtime and every registered extension have asked for their next event;
//! then the extension gets INVOKE and the runtime the event at once; the next
//! calls after that are held, as Lambda holds them until the next invocation.
//! The reader's AWS calls go to moto through a proxy that holds the notes'
//! `BatchWriteItem` until the answer has been posted: an answer that waited
//! for its notes never comes, and the test fails at its deadline.

use std::{
    convert::Infallible,
    fmt::Write as _,
    io::{BufRead, BufReader, Read},
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use drs_cache::{
    adapters::dynamodb::{DynamoDbStore, create_table},
    domain::{CacheKey, DataType, Timestamp},
    ports::DemandLog,
};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::{TokioExecutor, TokioIo},
};
use serde_json::{Value, json};
use tokio::{net::TcpListener, sync::watch};

use crate::support::moto;

/// How long the reader, a separate process calling a moto server that other
/// tests keep busy, may take to make the calls a test waits for.
const DEADLINE: Duration = Duration::from_secs(30);

const REQUEST_ID: &str = "8476a536-e9f4-11e8-9739-2dfe598c3fcd";
const EXTENSION_ID: &str = "6a4fd7ab-1f3c-4a8e-9b62-0d4c5e7f8a91";
const EXTENSION_NAME: &str = "drs-cache-demand-notes";
const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:reader";
const TRACE_ID: &str = "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1";
/// A machine moto does not have: the reader's refresh request only logs a
/// warning.
const STATE_MACHINE: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:none";
/// What the invocation reads, in the deployment account.
const READ_KEY: &str = "drs-source-servers#us-east-1#123456789012";

/// A call the reader made, to the Lambda APIs or (the notes) to the store.
#[derive(Debug, Clone)]
enum Call {
    /// `POST /2020-01-01/extension/register`.
    Register { name: Option<String>, events: Value },
    /// `GET /2020-01-01/extension/event/next`, with the extension's identifier.
    ExtensionNext { id: Option<String> },
    /// `GET /2018-06-01/runtime/invocation/next`.
    RuntimeNext,
    /// `POST /2018-06-01/runtime/invocation/{request_id}/response`.
    Response { request_id: String, body: Value },
    /// Any other call (an error report, say).
    Other {
        method: String,
        path: String,
        body: String,
    },
    /// A `BatchWriteItem` (the demand notes) reached the store proxy, which
    /// holds it until the answer has been posted.
    NotesWriteArrived,
    /// moto answered it; the proxy passes the answer on.
    NotesWriteAnswered { status: u16 },
}

#[derive(Debug, Clone)]
struct Logged {
    after: Duration,
    call: Call,
}

/// What the stand-in has seen, in order.
#[derive(Debug, Clone, Default)]
struct Sandbox {
    calls: Vec<Logged>,
    /// The note for [`READ_KEY`] the table held when the extension asked for
    /// its second event, checked right then.
    note_at_freeze: Option<Result<Option<Timestamp>, String>>,
    /// The reader's output streams that have ended: both, and it exited.
    outputs_closed: usize,
}

impl Sandbox {
    fn positions(&self, mut matches: impl FnMut(&Call) -> bool) -> Vec<usize> {
        (0..self.calls.len())
            .filter(|&i| matches(&self.calls[i].call))
            .collect()
    }

    fn count(&self, matches: impl FnMut(&Call) -> bool) -> usize {
        self.positions(matches).len()
    }

    fn registered(&self) -> usize {
        self.count(|c| matches!(c, Call::Register { .. }))
    }

    fn extension_nexts(&self) -> usize {
        self.count(|c| matches!(c, Call::ExtensionNext { .. }))
    }

    fn runtime_nexts(&self) -> usize {
        self.count(|c| matches!(c, Call::RuntimeNext))
    }

    /// Init is over: the runtime and every extension registered asked for
    /// their next event.
    fn initialized(&self) -> bool {
        self.runtime_nexts() >= 1 && self.extension_nexts() >= self.registered()
    }

    fn posted(&self) -> bool {
        self.count(|c| matches!(c, Call::Response { .. })) > 0
    }

    fn exited(&self) -> bool {
        self.outputs_closed == 2
    }

    fn log(&self) -> String {
        let mut out = String::new();
        for (i, logged) in self.calls.iter().enumerate() {
            let _ = writeln!(out, "  {i:>2} +{:>9.3?} {:?}", logged.after, logged.call);
        }
        let _ = writeln!(out, "  note at freeze: {:?}", self.note_at_freeze);
        out
    }
}

/// The stand-in's state, shared by its two servers and the reader's output
/// threads.
struct Shared {
    sandbox: watch::Sender<Sandbox>,
    started: Instant,
    /// The invocation's event.
    event: String,
    /// The table, on moto itself (not through the proxy).
    store: DynamoDbStore,
    moto: String,
    forward: Client<HttpConnector, Full<Bytes>>,
}

impl Shared {
    /// Logs `call`; how many of its kind there are now, it included.
    fn record(&self, call: Call) -> usize {
        let kind = std::mem::discriminant(&call);
        let mut nth = 0;
        let after = self.started.elapsed();
        self.sandbox.send_modify(|s| {
            s.calls.push(Logged { after, call });
            nth = s.count(|c| std::mem::discriminant(c) == kind);
        });
        nth
    }

    async fn until(&self, condition: impl FnMut(&Sandbox) -> bool) {
        // The sender lives as long as `self`: the wait ends only when met.
        let _ = self.sandbox.subscribe().wait_for(condition).await;
    }

    /// What the table holds for [`READ_KEY`] now.
    async fn note(&self) -> Result<Option<Timestamp>, String> {
        let key = CacheKey::parse(READ_KEY).expect("a valid key");
        self.store
            .demand(&[DataType::DrsSourceServers], Timestamp::now())
            .await
            .map(|demand| demand.reads.get(&key).copied())
            .map_err(|e| format!("{e:?}"))
    }
}

/// Lambda holds a next call until the next invocation and freezes the
/// environment meanwhile; the test ends first.
async fn frozen() -> Response<Full<Bytes>> {
    std::future::pending().await
}

/// A JSON answer with `status` and `headers`.
fn json_response(
    status: StatusCode,
    headers: &[(&str, &str)],
    body: &Value,
) -> Response<Full<Bytes>> {
    let mut builder = Response::builder()
        .status(status)
        .header("content-type", "application/json");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("a valid response")
}

fn epoch_millis() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after the epoch");
    u64::try_from(since.as_millis()).expect("milliseconds fit in u64")
}

/// The Runtime API and the Extensions API, for one invocation.
async fn lambda_api(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let path = parts.uri.path();
    // Five minutes from now: the function's timeout.
    let deadline_ms = epoch_millis() + 300_000;
    let response = match (parts.method.as_str(), path) {
        ("POST", "/2020-01-01/extension/register") => {
            shared.record(Call::Register {
                name: header("lambda-extension-name"),
                events: serde_json::from_slice(&body).unwrap_or(Value::Null),
            });
            let registered = json!({
                "functionName": "reader",
                "functionVersion": "$LATEST",
                "handler": "bootstrap",
                "accountId": moto::ACCOUNT,
            });
            json_response(
                StatusCode::OK,
                &[("lambda-extension-identifier", EXTENSION_ID)],
                &registered,
            )
        }
        ("GET", "/2020-01-01/extension/event/next") => {
            let nth = shared.record(Call::ExtensionNext {
                id: header("lambda-extension-identifier"),
            });
            if nth > 1 {
                // The extension is done with the invocation: Lambda would
                // freeze the environment now, so its notes must be written.
                let note = shared.note().await;
                shared
                    .sandbox
                    .send_modify(|s| s.note_at_freeze = Some(note));
                return Ok(frozen().await);
            }
            shared.until(Sandbox::initialized).await;
            let invoke = json!({
                "eventType": "INVOKE",
                "deadlineMs": deadline_ms,
                "requestId": REQUEST_ID,
                "invokedFunctionArn": FUNCTION_ARN,
                "tracing": {"type": "X-Amzn-Trace-Id", "value": TRACE_ID},
            });
            json_response(StatusCode::OK, &[], &invoke)
        }
        ("GET", "/2018-06-01/runtime/invocation/next") => {
            if shared.record(Call::RuntimeNext) > 1 {
                return Ok(frozen().await);
            }
            shared.until(Sandbox::initialized).await;
            Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/json")
                .header("lambda-runtime-aws-request-id", REQUEST_ID)
                .header("lambda-runtime-deadline-ms", deadline_ms.to_string())
                .header("lambda-runtime-invoked-function-arn", FUNCTION_ARN)
                .header("lambda-runtime-trace-id", TRACE_ID)
                .body(Full::new(Bytes::from(shared.event.clone())))
                .expect("a valid response")
        }
        ("POST", _) if path.ends_with("/response") => {
            let request_id = path
                .trim_start_matches("/2018-06-01/runtime/invocation/")
                .trim_end_matches("/response")
                .to_owned();
            let body = serde_json::from_slice(&body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
            shared.record(Call::Response { request_id, body });
            let accepted = json!({"status": "OK"});
            json_response(StatusCode::ACCEPTED, &[], &accepted)
        }
        (method, _) => {
            shared.record(Call::Other {
                method: method.to_owned(),
                path: path.to_owned(),
                body: String::from_utf8_lossy(&body).into_owned(),
            });
            let unknown = json!({"errorType": "NotFound"});
            json_response(StatusCode::NOT_FOUND, &[], &unknown)
        }
    };
    Ok(response)
}

/// moto, with the notes' `BatchWriteItem` held until the answer is posted.
async fn store_api(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (mut parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let notes = parts
        .headers
        .get("x-amz-target")
        .is_some_and(|t| t.as_bytes().ends_with(b".BatchWriteItem"));
    if notes {
        shared.record(Call::NotesWriteArrived);
        shared.until(Sandbox::posted).await;
    }
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = format!("{}{target}", shared.moto)
        .parse()
        .expect("a valid URI");
    let answered = match shared
        .forward
        .request(Request::from_parts(parts, Full::new(body)))
        .await
    {
        Ok(answered) => {
            let (parts, body) = answered.into_parts();
            let body = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            Response::from_parts(parts, Full::new(body))
        }
        Err(e) => Response::builder()
            .status(StatusCode::BAD_GATEWAY)
            .body(Full::new(Bytes::from(format!("moto: {e:?}"))))
            .expect("a valid response"),
    };
    if notes {
        shared.record(Call::NotesWriteAnswered {
            status: answered.status().as_u16(),
        });
    }
    Ok(answered)
}

/// Serves `api` on a free port of 127.0.0.1 for as long as the test runs.
async fn serve<F, Fut>(shared: Arc<Shared>, api: F) -> SocketAddr
where
    F: Fn(Arc<Shared>, Request<Incoming>) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let addr = listener.local_addr().expect("a bound address");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let shared = shared.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| api(shared.clone(), req));
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// The stand-in for Lambda, and the proxy to moto the reader calls.
struct FakeLambda {
    shared: Arc<Shared>,
    runtime_api: SocketAddr,
    store_endpoint: String,
}

impl FakeLambda {
    async fn start(table: &str) -> Self {
        let moto = moto::endpoint().to_owned();
        let store = DynamoDbStore::new(moto::dynamodb_client(&moto).await, table);
        let shared = Arc::new(Shared {
            sandbox: watch::Sender::new(Sandbox::default()),
            started: Instant::now(),
            event: read_event().to_string(),
            store,
            moto,
            forward: Client::builder(TokioExecutor::new()).build_http(),
        });
        let runtime_api = serve(shared.clone(), lambda_api).await;
        let store_endpoint = format!("http://{}", serve(shared.clone(), store_api).await);
        Self {
            shared,
            runtime_api,
            store_endpoint,
        }
    }

    fn snapshot(&self) -> Sandbox {
        self.shared.sandbox.borrow().clone()
    }

    /// Waits until `reached` holds, or fails with the calls and the reader's
    /// output once the reader exited or the deadline passed. The reader is
    /// another process: how long it takes is not this test's to decide.
    async fn wait_for(&self, what: &str, reader: &Reader, reached: impl Fn(&Sandbox) -> bool) {
        let mut changes = self.shared.sandbox.subscribe();
        let waited =
            tokio::time::timeout(DEADLINE, changes.wait_for(|s| reached(s) || s.exited())).await;
        let met = match waited {
            Ok(Ok(sandbox)) => reached(&sandbox),
            _ => false,
        };
        if !met {
            let s = self.snapshot();
            let why = if s.exited() {
                "the reader exited"
            } else {
                "the deadline passed"
            };
            panic!(
                "{what}: {why} ({DEADLINE:?})\ncalls:\n{}reader output:\n{}",
                s.log(),
                reader.output()
            );
        }
    }
}

/// An API Gateway HTTP API (v2) event: `GET /drs/source-servers?region=us-east-1`.
fn read_event() -> Value {
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/drs/source-servers",
        "rawQueryString": "region=us-east-1",
        "headers": {
            "accept": "application/json",
            "content-length": "0",
            "host": "f6g7h8i9j0.execute-api.us-east-1.amazonaws.com",
            "user-agent": "dr-orchestrator/2.4",
            "x-forwarded-for": "10.20.30.40",
            "x-forwarded-port": "443",
            "x-forwarded-proto": "https"
        },
        "queryStringParameters": {"region": "us-east-1"},
        "requestContext": {
            "accountId": moto::ACCOUNT,
            "apiId": "f6g7h8i9j0",
            "domainName": "f6g7h8i9j0.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "f6g7h8i9j0",
            "http": {
                "method": "GET",
                "path": "/drs/source-servers",
                "protocol": "HTTP/1.1",
                "sourceIp": "10.20.30.40",
                "userAgent": "dr-orchestrator/2.4"
            },
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": "$default",
            "stage": "$default",
            "time": "14/Nov/2023:22:13:20 +0000",
            "timeEpoch": 1_700_000_000_000_u64
        },
        "isBase64Encoded": false
    })
}

/// The `reader` binary running under the stand-in; killed on drop.
struct Reader {
    child: Child,
    output: Arc<Mutex<String>>,
}

impl Reader {
    fn start(fake: &FakeLambda, table: &str, more: &[(&str, &str)]) -> Self {
        let runtime_api = fake.runtime_api.to_string();
        let lambda = [
            ("AWS_LAMBDA_RUNTIME_API", runtime_api.as_str()),
            ("AWS_LAMBDA_FUNCTION_NAME", "reader"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/reader"),
            (
                "AWS_LAMBDA_LOG_STREAM_NAME",
                "2024/01/01/[$LATEST]0123456789abcdef",
            ),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("CACHE_TABLE_NAME", table),
            ("REFRESH_STATE_MACHINE_ARN", STATE_MACHINE),
            ("DEPLOYMENT_ACCOUNT_ID", moto::ACCOUNT),
            ("REGIONS", "us-east-1"),
            // The read waits for moto, however busy the other tests keep it.
            ("STORE_TIMEOUT_MS", "30000"),
            ("RUST_LOG", "info"),
            // Plain log lines in the output a failure shows.
            ("NO_COLOR", "1"),
        ];
        let env: Vec<(&str, &str)> = lambda.iter().chain(more).copied().collect();
        let mut child = Command::new(env!("CARGO_BIN_EXE_reader"))
            // Nothing of the test's own environment (REFRESH_AHEAD, an AWS
            // profile) reaches the function.
            .env_clear()
            .envs(moto::process_env(&fake.store_endpoint, &env))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the reader binary starts");
        let output = Arc::new(Mutex::new(String::new()));
        let streams: [(&str, Box<dyn Read + Send>); 2] = [
            (
                "stdout",
                Box::new(child.stdout.take().expect("piped stdout")),
            ),
            (
                "stderr",
                Box::new(child.stderr.take().expect("piped stderr")),
            ),
        ];
        for (name, stream) in streams {
            let (output, shared) = (output.clone(), fake.shared.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut output = output.lock().unwrap_or_else(PoisonError::into_inner);
                    let _ = writeln!(output, "  [{name}] {line}");
                }
                shared.sandbox.send_modify(|s| s.outputs_closed += 1);
            });
        }
        Self { child, output }
    }

    fn output(&self) -> String {
        self.output
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh cache table on moto.
async fn fresh_table() -> String {
    let client = moto::dynamodb_client(moto::endpoint()).await;
    let table = moto::unique_name("reader-extension");
    create_table(&client, &table)
        .await
        .expect("moto creates the table");
    table
}

/// The one answer posted: for the invocation, and a 503 `NOT_CACHED`.
fn assert_not_cached_posted(s: &Sandbox) {
    let answers: Vec<(&String, &Value)> = s
        .calls
        .iter()
        .filter_map(|l| match &l.call {
            Call::Response { request_id, body } => Some((request_id, body)),
            _ => None,
        })
        .collect();
    assert_eq!(answers.len(), 1, "one answer:\n{}", s.log());
    let (request_id, answer) = answers[0];
    assert_eq!(request_id, REQUEST_ID, "{}", s.log());
    assert_eq!(answer["statusCode"], 503, "{}", s.log());
    let body: Value = serde_json::from_str(answer["body"].as_str().unwrap_or_default())
        .unwrap_or_else(|e| panic!("the answer's body is JSON: {e}\n{}", s.log()));
    assert_eq!(body["error"], "NOT_CACHED", "{}", s.log());
}

/// The reader made no call the stand-in does not play: no init, invocation
/// or extension error reports.
fn assert_no_other_calls(s: &Sandbox) {
    for logged in &s.calls {
        if let Call::Other { method, path, body } = &logged.call {
            panic!("unexpected call {method} {path}: {body}\n{}", s.log());
        }
    }
}

#[tokio::test]
async fn the_demand_extension_writes_an_invocations_note_after_its_answer_and_before_the_freeze() {
    let table = fresh_table().await;
    let fake = FakeLambda::start(&table).await;
    let before = Timestamp::now();
    // REFRESH_AHEAD unset: reads are noted (demand, the default).
    let reader = Reader::start(&fake, &table, &[]);

    fake.wait_for(
        "the extension's second event/next and the note check",
        &reader,
        |s| s.note_at_freeze.is_some(),
    )
    .await;
    let s = fake.snapshot();

    let registered: Vec<&Call> = s
        .calls
        .iter()
        .map(|l| &l.call)
        .filter(|c| matches!(c, Call::Register { .. }))
        .collect();
    assert_eq!(registered.len(), 1, "one extension registers:\n{}", s.log());
    let Call::Register { name, events } = registered[0] else {
        unreachable!("filtered to registrations")
    };
    assert_eq!(name.as_deref(), Some(EXTENSION_NAME), "{}", s.log());
    assert_eq!(events, &json!({"events": ["INVOKE"]}), "{}", s.log());
    for logged in &s.calls {
        if let Call::ExtensionNext { id } = &logged.call {
            assert_eq!(id.as_deref(), Some(EXTENSION_ID), "{}", s.log());
        }
    }

    assert_no_other_calls(&s);
    assert_not_cached_posted(&s);
    let answer = s.positions(|c| matches!(c, Call::Response { .. }))[0];
    let written = s.positions(|c| matches!(c, Call::NotesWriteAnswered { .. }));
    let nexts = s.positions(|c| matches!(c, Call::ExtensionNext { .. }));
    assert_eq!(
        written.len(),
        1,
        "the notes are written in one batch:\n{}",
        s.log()
    );
    assert!(
        matches!(
            s.calls[written[0]].call,
            Call::NotesWriteAnswered { status: 200 }
        ),
        "moto took the notes:\n{}",
        s.log()
    );
    // The proxy held the write until the answer was posted, so the answer
    // never waited for it; the extension asked for its next event only once
    // the write was answered.
    assert!(
        answer < written[0] && written[0] < nexts[1],
        "answer, then notes written, then the extension's next event:\n{}",
        s.log()
    );

    let at = match &s.note_at_freeze {
        Some(Ok(Some(at))) => *at,
        other => panic!(
            "the note for {READ_KEY} is in the table before the freeze, not {other:?}:\n{}\nreader output:\n{}",
            s.log(),
            reader.output()
        ),
    };
    assert!(
        before <= at && at <= Timestamp::now(),
        "the note holds the read's time: {at:?}, read after {before:?}"
    );
}

#[tokio::test]
async fn with_refresh_ahead_always_no_extension_registers_and_the_answer_is_still_posted() {
    let table = fresh_table().await;
    let fake = FakeLambda::start(&table).await;
    let reader = Reader::start(&fake, &table, &[("REFRESH_AHEAD", "always")]);

    fake.wait_for(
        "the answer and the runtime's next invocation/next",
        &reader,
        |s| s.runtime_nexts() >= 2,
    )
    .await;
    let s = fake.snapshot();

    assert_eq!(s.registered(), 0, "no extension registers:\n{}", s.log());
    assert_eq!(s.extension_nexts(), 0, "{}", s.log());
    assert_no_other_calls(&s);
    assert_not_cached_posted(&s);
    assert_eq!(
        s.count(|c| matches!(c, Call::NotesWriteArrived)),
        0,
        "no notes are written:\n{}",
        s.log()
    );
    let demand = fake
        .shared
        .store
        .demand(&[DataType::DrsSourceServers], Timestamp::now())
        .await
        .expect("moto answers");
    assert!(demand.reads.is_empty(), "no read is noted: {demand:?}");
}
