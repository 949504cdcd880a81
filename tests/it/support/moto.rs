//! A moto server for the tests of one test process: the one named by
//! `MOTO_ENDPOINT`, or one started here on a free port that dies with the process.

use std::{
    collections::BTreeMap,
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    os::unix::process::CommandExt,
    path::PathBuf,
    process::{Command, Stdio},
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};

/// The account moto serves a request that names none (its default account):
/// the account of the events a test puts without naming one.
pub const ACCOUNT: &str = "123456789012";

/// How long a started server may take to answer.
const START_DEADLINE: Duration = Duration::from_secs(30);
/// Servers tried before giving up, in case another process takes the port first.
const START_ATTEMPTS: usize = 3;

/// The endpoint URL of the moto server, such as `http://127.0.0.1:5123`.
pub fn endpoint() -> &'static str {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT.get_or_init(|| match std::env::var("MOTO_ENDPOINT") {
        Ok(url) if !url.is_empty() => url,
        _ => start(),
    })
}

/// What a child process needs to reach the moto server at `endpoint`: the
/// endpoint, us-east-1 and dummy credentials, with `more` after them.
pub fn process_env<'a>(endpoint: &'a str, more: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    [
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ]
    .into_iter()
    .chain(more.iter().copied())
    .collect()
}

/// A DynamoDB client for `endpoint` with dummy credentials in us-east-1. Nothing
/// is read from the environment or profile files.
pub async fn dynamodb_client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(drs_cache::adapters::aws::https_client())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// An S3 client for `endpoint` (path-style addressing, as moto's engine also
/// uses), with the same dummy credentials.
pub fn s3_client(endpoint: &str) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .http_client(drs_cache::adapters::aws::https_client())
        .endpoint_url(endpoint)
        .force_path_style(true)
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "testing", "testing", None, None, "moto",
        ))
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// Creates the bucket `name` unless this account already has it.
pub async fn ensure_bucket(client: &aws_sdk_s3::Client, name: &str) {
    match client.create_bucket().bucket(name).send().await {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_bucket_already_owned_by_you()) => {}
        Err(e) => panic!("moto creates the bucket {name}: {e:?}"),
    }
}

/// The JSON document stored at `bucket`/`key`.
pub async fn object_json(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> serde_json::Value {
    let object = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("s3://{bucket}/{key} is stored: {e:?}"));
    let bytes = object
        .body
        .collect()
        .await
        .expect("the object's body")
        .into_bytes();
    serde_json::from_slice(&bytes).expect("the object is JSON")
}

/// A name no other test of any process uses, such as a table name.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::AtomicU64;
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn moto_server_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("MOTO_SERVER_BIN").filter(|b| !b.is_empty()) {
        return PathBuf::from(bin);
    }
    if let Some(home) = std::env::var_os("HOME") {
        let venv = PathBuf::from(home).join(".cache/drs-cache/tools/venv/bin/moto_server");
        if venv.is_file() {
            return venv;
        }
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("moto_server"))
            .find(|bin| bin.is_file())
    });
    on_path.unwrap_or_else(|| {
        panic!(
            "moto_server not found: set MOTO_ENDPOINT or MOTO_SERVER_BIN, or run the tests \
             with scripts/test, which installs it"
        )
    })
}

fn start() -> String {
    start_with_env(&[])
}

/// Starts a moto server of this process alone, with `envs` added to its
/// environment (such as `MOTO_PORT`, where its Step Functions engine sends
/// Lambda invocations); its endpoint URL. It dies with the process.
pub fn start_with_env(envs: &[(&str, &str)]) -> String {
    let bin = moto_server_bin();
    let mut failures = Vec::new();
    for _ in 0..START_ATTEMPTS {
        match start_on_free_port(&bin, envs) {
            Ok(addr) => return format!("http://{addr}"),
            Err(reason) => failures.push(reason),
        }
    }
    panic!("moto server {} did not start: {failures:?}", bin.display())
}

fn start_on_free_port(bin: &PathBuf, envs: &[(&str, &str)]) -> Result<SocketAddr, String> {
    let addr = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port: {e}"))?;
    let exited = Arc::new(AtomicBool::new(false));
    let (started, spawn_result) = mpsc::channel();
    let mut command = Command::new(bin);
    command
        .args(["-H", "127.0.0.1", "-p", &addr.port().to_string()])
        .envs(envs.iter().copied())
        .stdin(Stdio::null());
    if std::env::var_os("TEST_LOG").is_none() {
        command.stdout(Stdio::null()).stderr(Stdio::null());
    }
    let parent = std::process::id();
    // SAFETY: the closure runs in the forked child before exec and calls only
    // async-signal-safe functions.
    unsafe {
        command.pre_exec(move || {
            // Killed when the thread that spawned it ends, which is never before
            // the test process ends.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent died before the line above took effect.
            if u32::try_from(libc::getppid()).ok() != Some(parent) {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    let exited_flag = Arc::clone(&exited);
    std::thread::Builder::new()
        .name(format!("moto-server-{}", addr.port()))
        .spawn(move || {
            match command.spawn() {
                Ok(mut child) => {
                    let _ = started.send(Ok(()));
                    let _ = child.wait();
                    exited_flag.store(true, Ordering::SeqCst);
                }
                Err(e) => {
                    let _ = started.send(Err(e.to_string()));
                }
            }
            // PR_SET_PDEATHSIG fires when this thread ends: never end it.
            loop {
                std::thread::park();
            }
        })
        .map_err(|e| format!("no thread for moto: {e}"))?;
    spawn_result
        .recv()
        .map_err(|e| format!("moto thread ended: {e}"))??;

    let deadline = Instant::now() + START_DEADLINE;
    let mut pause = Duration::from_millis(20);
    loop {
        if answers_http(addr) {
            return Ok(addr);
        }
        if exited.load(Ordering::SeqCst) {
            return Err(format!("moto on port {} exited", addr.port()));
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "moto on port {} did not answer in time",
                addr.port()
            ));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

/// Whether an HTTP server answers a request on `addr`.
fn answers_http(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let timeout = Some(Duration::from_secs(2));
    if stream.set_read_timeout(timeout).is_err() || stream.set_write_timeout(timeout).is_err() {
        return false;
    }
    let request =
        format!("GET /moto-api/data.json HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
}

// --- raw calls, for what the SDK clients of the tests do not cover ---------------

/// One request to the moto server as `account` in `region`: moto takes the
/// account from `x-moto-account-id` and the service and region from the
/// Authorization header's credential scope, and checks no signature. The
/// answer's status and body.
pub fn request(
    account: &str,
    region: &str,
    service: &str,
    method: &str,
    path: &str,
    headers: &str,
    body: &[u8],
) -> (u16, String) {
    let host = endpoint().trim_start_matches("http://");
    let mut stream = TcpStream::connect(host).expect("moto answers");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{headers}x-moto-account-id: {account}\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=testing/20240101/{region}/{service}/aws4_request, \
         SignedHeaders=host, Signature=0\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let response = String::from_utf8(response).expect("UTF-8 answer");
    let (head, payload) = response.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "chunked answers are not read here"
    );
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("an HTTP status line: {head}"));
    (status, payload.to_owned())
}

/// `request` answered 2xx, with a JSON body (or none: `Null`).
pub fn request_json(
    account: &str,
    region: &str,
    service: &str,
    method: &str,
    path: &str,
    headers: &str,
    body: &[u8],
) -> serde_json::Value {
    let (status, payload) = request(account, region, service, method, path, headers, body);
    assert!(
        (200..300).contains(&status),
        "{service} {method} {path} {headers}: HTTP {status}: {payload}"
    );
    if payload.trim().is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(&payload).unwrap_or_else(|e| panic!("{e}: {payload}"))
    }
}

/// One POST to `/` (the AWS JSON and query protocols), answered 2xx: its
/// JSON body.
pub fn call(
    account: &str,
    region: &str,
    service: &str,
    headers: &str,
    body: &str,
) -> serde_json::Value {
    request_json(
        account,
        region,
        service,
        "POST",
        "/",
        headers,
        body.as_bytes(),
    )
}

/// A call of an AWS JSON protocol (EventBridge, SQS, DynamoDB, Step
/// Functions, CloudWatch, CloudWatch Logs).
pub fn aws_json(
    account: &str,
    region: &str,
    service: &str,
    target: &str,
    body: &serde_json::Value,
) -> serde_json::Value {
    let content_type = match service {
        "sqs" | "dynamodb" | "states" | "monitoring" => "application/x-amz-json-1.0",
        _ => "application/x-amz-json-1.1",
    };
    call(
        account,
        region,
        service,
        &format!("X-Amz-Target: {target}\r\nContent-Type: {content_type}\r\n"),
        &body.to_string(),
    )
}

/// A new custom event bus of `account` in `region`, named from `prefix`
/// (unique to the call); its name.
pub fn create_event_bus(account: &str, region: &str, prefix: &str) -> String {
    let bus = unique_name(prefix);
    aws_json(
        account,
        region,
        "events",
        "AWSEvents.CreateEventBus",
        &serde_json::json!({"Name": bus}),
    );
    bus
}

fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A call of an AWS query protocol (CloudFormation, IAM, SNS), answered in
/// JSON (moto does so for `ContentType=JSON`): the action's result.
pub fn query(
    account: &str,
    region: &str,
    service: &str,
    version: &str,
    action: &str,
    parameters: &[(String, String)],
) -> serde_json::Value {
    let body = [
        ("Action".to_owned(), action.to_owned()),
        ("Version".to_owned(), version.to_owned()),
        ("ContentType".to_owned(), "JSON".to_owned()),
    ]
    .iter()
    .chain(parameters)
    .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
    .collect::<Vec<_>>()
    .join("&");
    let answer = call(
        account,
        region,
        service,
        "Content-Type: application/x-www-form-urlencoded\r\n",
        &body,
    );
    answer[format!("{action}Response")][format!("{action}Result")].clone()
}

/// A CloudFormation call (`query`).
pub fn cloudformation(
    account: &str,
    region: &str,
    action: &str,
    parameters: &[(String, String)],
) -> serde_json::Value {
    query(
        account,
        region,
        "cloudformation",
        "2010-05-15",
        action,
        parameters,
    )
}

/// A twelve-digit account ID no other test of any process uses, so that what
/// moto holds for it is this test's alone.
pub fn unique_account() -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    unique_name("account").hash(&mut hasher);
    format!("{:012}", hasher.finish() % 1_000_000_000_000)
}

/// How long a stack moto reports in progress may take to finish.
const STACK_DEADLINE: Duration = Duration::from_secs(30);

/// Creates the stack `name` of `template` (YAML or JSON) with `parameters`
/// and named-IAM capability; the stack as DescribeStacks answers once it is
/// no longer in progress. (moto creates every resource within CreateStack, so
/// that is at once.)
pub fn create_stack(
    account: &str,
    region: &str,
    name: &str,
    template: &str,
    parameters: &[(&str, &str)],
) -> serde_json::Value {
    let mut request = vec![
        ("StackName".to_owned(), name.to_owned()),
        ("TemplateBody".to_owned(), template.to_owned()),
        (
            "Capabilities.member.1".to_owned(),
            "CAPABILITY_NAMED_IAM".to_owned(),
        ),
    ];
    for (i, (key, value)) in parameters.iter().enumerate() {
        request.push((
            format!("Parameters.member.{}.ParameterKey", i + 1),
            (*key).to_owned(),
        ));
        request.push((
            format!("Parameters.member.{}.ParameterValue", i + 1),
            (*value).to_owned(),
        ));
    }
    cloudformation(account, region, "CreateStack", &request);
    let deadline = Instant::now() + STACK_DEADLINE;
    loop {
        let described = cloudformation(
            account,
            region,
            "DescribeStacks",
            &[("StackName".into(), name.into())],
        );
        let stack = described["Stacks"][0].clone();
        let status = stack["StackStatus"].as_str().unwrap_or_default();
        if !status.ends_with("_IN_PROGRESS") {
            return stack;
        }
        assert!(
            Instant::now() < deadline,
            "stack {name} is still {status} after {STACK_DEADLINE:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A described stack's outputs: key to value.
pub fn stack_outputs(stack: &serde_json::Value) -> BTreeMap<String, String> {
    stack["Outputs"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|o| {
            (
                o["OutputKey"].as_str().expect("OutputKey").to_owned(),
                o["OutputValue"].as_str().expect("OutputValue").to_owned(),
            )
        })
        .collect()
}

/// A stack's resources as moto's CloudFormation lists them: logical ID to
/// physical ID (moto lists what it skipped, or did not create for its
/// condition, with an empty logical ID).
pub fn stack_resources(account: &str, region: &str, stack: &str) -> BTreeMap<String, String> {
    let listed = cloudformation(
        account,
        region,
        "ListStackResources",
        &[("StackName".into(), stack.into())],
    );
    listed["StackResourceSummaries"]
        .as_array()
        .expect("StackResourceSummaries")
        .iter()
        .filter(|r| r["LogicalResourceId"] != "")
        .map(|r| {
            (
                r["LogicalResourceId"].as_str().unwrap().to_owned(),
                r["PhysicalResourceId"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// A rule named `name` on `bus` (of moto's account, in `region`) with
/// `pattern`, delivering to a queue of the same name, which it returns.
pub fn subscribe(region: &str, bus: &str, name: &str, pattern: &serde_json::Value) -> Queue {
    let queue = Queue::create(ACCOUNT, region, name);
    aws_json(
        ACCOUNT,
        region,
        "events",
        "AWSEvents.PutRule",
        &serde_json::json!({
            "Name": name,
            "EventBusName": bus,
            "EventPattern": pattern.to_string(),
            "State": "ENABLED",
        }),
    );
    aws_json(
        ACCOUNT,
        region,
        "events",
        "AWSEvents.PutTargets",
        &serde_json::json!({"Rule": name, "EventBusName": bus, "Targets": [{"Id": "queue", "Arn": queue.arn}]}),
    );
    queue
}

/// An SQS queue of `account` in `region` on moto, as a rule target that
/// shows which events the rule took.
pub struct Queue {
    account: String,
    region: String,
    url: String,
    pub arn: String,
}

impl Queue {
    pub fn create(account: &str, region: &str, name: &str) -> Self {
        let created = aws_json(
            account,
            region,
            "sqs",
            "AmazonSQS.CreateQueue",
            &serde_json::json!({"QueueName": name}),
        );
        let url = created["QueueUrl"].as_str().expect("QueueUrl").to_owned();
        let attributes = aws_json(
            account,
            region,
            "sqs",
            "AmazonSQS.GetQueueAttributes",
            &serde_json::json!({"QueueUrl": url, "AttributeNames": ["QueueArn"]}),
        );
        let arn = attributes["Attributes"]["QueueArn"]
            .as_str()
            .unwrap()
            .to_owned();
        Self {
            account: account.to_owned(),
            region: region.to_owned(),
            url,
            arn,
        }
    }

    /// The events waiting in the queue, removed from it. moto delivers to a
    /// rule's targets within PutEvents, so nothing arrives later.
    pub fn drain(&self) -> Vec<serde_json::Value> {
        let mut events = Vec::new();
        loop {
            let received = aws_json(
                &self.account,
                &self.region,
                "sqs",
                "AmazonSQS.ReceiveMessage",
                &serde_json::json!({"QueueUrl": self.url, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 0}),
            );
            let messages = received["Messages"].as_array().cloned().unwrap_or_default();
            if messages.is_empty() {
                return events;
            }
            for message in messages {
                events.push(serde_json::from_str(message["Body"].as_str().unwrap()).unwrap());
                aws_json(
                    &self.account,
                    &self.region,
                    "sqs",
                    "AmazonSQS.DeleteMessage",
                    &serde_json::json!({"QueueUrl": self.url, "ReceiptHandle": message["ReceiptHandle"]}),
                );
            }
        }
    }
}
