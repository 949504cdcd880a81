//! The `drs-cache` binary as a user runs it: `create-table` against moto, and
//! `serve` answering real HTTP from the embedded store and from DynamoDB.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    process::{Child, Command, Stdio},
    time::Duration,
};

use crate::support::{
    moto,
    reader::{key, policy},
    store_contract::entry,
};
use drs_cache::{
    adapters::{dynamodb::DynamoDbStore, embedded::EmbeddedStore},
    domain::DataType,
    ports::CacheWrites,
};

const BIN: &str = env!("CARGO_BIN_EXE_drs-cache");

/// A running `drs-cache serve`, stopped with SIGTERM on drop.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(args: &[&str], envs: &[(&str, &str)]) -> Self {
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .envs(envs.iter().copied())
            .env("RUST_LOG", "info")
            .env_remove("LOG_FORMAT")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads the log until the reader's listening line, then drains it so the server
        // never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stderr).lines().map_while(Result::ok);
            for line in lines.by_ref() {
                if !line.contains("reader listening") {
                    continue;
                }
                if let Some(rest) = line.split("addr=").nth(1) {
                    let _ = tx.send(
                        rest.split_whitespace()
                            .next()
                            .unwrap_or_default()
                            .to_owned(),
                    );
                    break;
                }
            }
            lines.for_each(drop);
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("serve did not log its listening address");
        Self { child, addr }
    }

    /// One HTTP/1.1 GET: status line, headers (lowercase names) and body.
    fn get(&self, target: &str) -> (u16, Vec<(String, String)>, String) {
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        write!(
            stream,
            "GET {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        )
        .unwrap();
        let mut raw = String::new();
        stream.read_to_string(&mut raw).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        let mut head = head.lines();
        let status = head
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers = head
            .filter_map(|l| l.split_once(": "))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
            .collect();
        (status, headers, body.to_owned())
    }

    fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v)
}

fn now() -> i64 {
    drs_cache::domain::Timestamp::now().unix_secs()
}

#[tokio::test]
async fn serve_answers_http_from_an_embedded_store_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.redb");
    let body = r#"{"instanceProfiles":[{"instanceProfileName":"drs-recovery","instanceProfileArn":"arn:aws:iam::123456789012:instance-profile/drs-recovery","roles":["drs-recovery-role"]}],"count":1}"#;
    {
        let store = EmbeddedStore::open(&path).unwrap();
        let mut e = entry(
            key(DataType::Ec2InstanceProfiles, "us-east-1"),
            1,
            body,
            now(),
        );
        e = drs_cache::domain::CacheEntry::fetched(
            e.meta.key,
            e.meta.version,
            e.body,
            1,
            e.meta.fetched_at,
            policy(3600, 86_400),
        );
        store.put(&e).await.unwrap();
    }
    let path_arg = path.to_str().unwrap();
    let server = Server::start(
        &["--store", "embedded", "--path", path_arg],
        &[("DEPLOYMENT_ACCOUNT_ID", "123456789012")],
    );

    let (status, headers, got) = server.get("/ec2/instance-profiles?region=us-east-1");
    assert_eq!(status, 200);
    assert_eq!(got, body);
    assert_eq!(header(&headers, "x-cache"), "store");
    assert_eq!(header(&headers, "content-type"), "application/json");
    let (_, headers, _) =
        server.get("/ec2/instance-profiles?region=us-east-1&accountId=123456789012");
    assert_eq!(header(&headers, "x-cache"), "memory");

    let (status, _, got) = server.get("/ec2/instance-profiles?region=not%20a%20region");
    assert_eq!(status, 400);
    let err: serde_json::Value = serde_json::from_str(&got).unwrap();
    assert_eq!(err["details"]["field"], "region");
    assert_eq!(err["details"]["value"], "not a region");

    assert!(server.stop().success(), "SIGTERM stops the server cleanly");
}

#[tokio::test]
async fn create_table_then_serve_from_dynamodb() {
    let endpoint = moto::endpoint();
    let table = moto::unique_name("serve");
    let aws_env = moto::process_env(
        endpoint,
        &[
            ("DEPLOYMENT_ACCOUNT_ID", "123456789012"),
            // The region read below is one the local refresher keeps.
            ("REGIONS", "eu-west-1"),
        ],
    );
    for _ in 0..2 {
        let status = Command::new(BIN)
            .args(["create-table", "--table", &table])
            .envs(aws_env.iter().copied())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(
            status.success(),
            "create-table succeeds, also when the table exists"
        );
    }

    let store = DynamoDbStore::new(moto::dynamodb_client(endpoint).await, table.clone());
    let body = r#"{"accounts":[{"accountId":"210987654321"}],"count":1}"#;
    store
        .put(&entry(
            key(DataType::DrsAccounts, "eu-west-1"),
            1,
            body,
            now(),
        ))
        .await
        .unwrap();

    let server = Server::start(&["--store", "dynamodb", "--table", &table], &aws_env);
    let (status, headers, got) = server.get("/drs/accounts?region=eu-west-1");
    assert_eq!(status, 200);
    assert_eq!(got, body);
    assert_eq!(header(&headers, "x-cache-status"), "fresh");

    let (status, headers, got) = server.get("/drs/quotas?region=eu-west-1");
    assert_eq!(status, 503);
    assert_eq!(header(&headers, "retry-after"), "30");
    let err: serde_json::Value = serde_json::from_str(&got).unwrap();
    assert_eq!(err["error"], "NOT_CACHED");
    assert_eq!(err["details"]["refreshRequested"], true);

    // A region the deployment does not keep: 404, and nothing is asked for.
    let (status, headers, got) = server.get("/drs/quotas?region=ap-south-1");
    assert_eq!(status, 404, "{got}");
    assert!(headers.iter().all(|(name, _)| name != "retry-after"));
    let err: serde_json::Value = serde_json::from_str(&got).unwrap();
    assert_eq!(err["error"], "NOT_CONFIGURED");
    assert_eq!(err["details"]["field"], "region");
    assert_eq!(err["details"]["value"], "ap-south-1");
    assert!(server.stop().success());
}

/// Asks for `target` until it is served (`200`), for at most `deadline`.
fn get_until_served(
    server: &Server,
    target: &str,
    deadline: Duration,
) -> (u16, Vec<(String, String)>, String) {
    let started = std::time::Instant::now();
    loop {
        let answer = server.get(target);
        if answer.0 == 200 || started.elapsed() > deadline {
            return answer;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn serve_without_a_workflow_refreshes_misses_locally_from_the_simulator() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.redb");
    let sim_config = dir.path().join("sim.json");
    std::fs::write(&sim_config, r#"{"seed": 7, "defaults": {"servers": 120}}"#).unwrap();
    let server = Server::start(
        &[
            "--store",
            "embedded",
            "--path",
            path.to_str().unwrap(),
            "--sim-config",
            sim_config.to_str().unwrap(),
        ],
        &[],
    );
    // Never cached: 503, and the miss asks the local refresher for it.
    let (status, _, got) = server.get("/drs/source-servers?region=us-east-1");
    assert_eq!(status, 503, "{got}");
    let err: serde_json::Value = serde_json::from_str(&got).unwrap();
    assert_eq!(err["details"]["refreshRequested"], true);

    let (status, headers, got) = get_until_served(
        &server,
        "/drs/source-servers?region=us-east-1",
        Duration::from_secs(30),
    );
    assert_eq!(status, 200, "{got}");
    assert_eq!(header(&headers, "x-cache-status"), "fresh");
    let servers: serde_json::Value = serde_json::from_str(&got).unwrap();
    assert_eq!(servers["serverCount"], 120);
    assert_eq!(servers["region"], "us-east-1");
    // The same fetch writes the quota view, right after the servers' view: it
    // may land a moment after the servers are served.
    let (status, _, got) = get_until_served(
        &server,
        "/drs/quotas?region=us-east-1",
        Duration::from_secs(30),
    );
    assert_eq!(status, 200, "{got}");
    let quotas: serde_json::Value = serde_json::from_str(&got).unwrap();
    assert_eq!(quotas["totalSourceServers"], 120);
    assert!(server.stop().success());
}

#[test]
fn a_local_refresh_refuses_to_write_simulated_data_into_a_table_on_no_emulator() {
    let output = Command::new(BIN)
        .args([
            "refresh",
            "--store",
            "dynamodb",
            "--table",
            "prod-cache",
            "--source",
            "simulator",
        ])
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_DYNAMODB")
        .env_remove("REFRESH_STATE_MACHINE_ARN")
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("prod-cache"), "{stderr}");
    assert!(stderr.contains("--allow-simulated-data"), "{stderr}");
}
