//! `drs-cache local` as a user runs it: a child process on a free port over a
//! data directory, its printed lines collected, HTTP to it over loopback.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    path::Path,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

pub const BIN: &str = env!("CARGO_BIN_EXE_drs-cache");

/// A running `drs-cache local`, stopped with SIGTERM on drop.
pub struct Local {
    child: Child,
    pub url: String,
    /// What it printed on standard error, line by line.
    pub lines: Arc<Mutex<Vec<String>>>,
    pub started: Instant,
}

impl Local {
    /// Starts it on `data_dir` with `args` after `local`; waits for its banner.
    pub fn start(data_dir: &Path, args: &[&str]) -> Self {
        Self::start_with(data_dir, args, &[])
    }

    /// [`Self::start`] with `envs` set (after the deployment variables are
    /// cleared).
    pub fn start_with(data_dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Self {
        let started = Instant::now();
        let mut child = Command::new(BIN)
            .args(["local", "--listen", "127.0.0.1:0", "--metrics", "off"])
            .arg("--data-dir")
            .arg(data_dir)
            .args(args)
            .env_remove("RUST_LOG")
            .env_remove("REFRESH_STATE_MACHINE_ARN")
            .env_remove("DEPLOYMENT_ACCOUNT_ID")
            .env_remove("REGIONS")
            .env_remove("ACCOUNT_IDS")
            .envs(envs.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("drs-cache starts");
        let stderr = child.stderr.take().expect("piped");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let kept = lines.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.split(" data at ").nth(1)
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(url.trim().to_owned());
                }
                kept.lock().unwrap().push(line);
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no banner; printed: {:?}", lines.lock().unwrap()));
        Self {
            child,
            url,
            lines,
            started,
        }
    }

    pub fn printed(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// `GET path`: status, headers (lower-case names) and body.
    pub fn get(&self, path: &str) -> Answer {
        http(&self.url, "GET", path, b"")
    }

    /// The status JSON.
    pub fn status(&self) -> serde_json::Value {
        let answer = self.get("/_local/status");
        assert_eq!(answer.status, 200, "{}", answer.body);
        serde_json::from_str(&answer.body).unwrap()
    }

    /// Waits until `ready` holds of the status JSON, polling it; panics with
    /// the last status after `within`.
    pub fn wait_status(
        &self,
        within: Duration,
        mut ready: impl FnMut(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + within;
        loop {
            let status = self.status();
            if ready(&status) {
                return status;
            }
            assert!(Instant::now() < deadline, "not reached: {status:#}");
            // Polling interval of the check, not a wait for the outcome.
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until a printed line contains `text`; panics with what was
    /// printed after `within`.
    pub fn wait_printed(&self, text: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.printed().iter().any(|l| l.contains(text)) {
            assert!(
                Instant::now() < deadline,
                "never printed {text:?}: {:?}",
                self.printed()
            );
            // Polling interval of the check.
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then waits for the exit.
    pub fn stop(mut self) {
        terminate(&mut self.child);
    }
}

fn terminate(child: &mut Child) {
    // SAFETY: signalling our own child process.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let _ = child.wait();
}

impl Drop for Local {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            terminate(&mut self.child);
        }
    }
}

pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request to `url` (`http://host:port`), the connection closed
/// after it.
pub fn http(url: &str, method: &str, path: &str, body: &[u8]) -> Answer {
    let host = url.trim_start_matches("http://");
    http_with(url, method, path, &[("Host", host)], body)
}

/// [`http`] with `headers` (which must include `Host`).
pub fn http_with(
    url: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Answer {
    let host = url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(host).expect("the local server accepts");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Connection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    ));
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut head_lines = head.lines();
    let status = head_lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = head_lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// The read path of each data type, with a region and account of the demo
/// fleet.
pub fn every_endpoint() -> Vec<String> {
    let q = "region=us-west-2&accountId=222222222222";
    vec![
        format!("/drs/source-servers?{q}"),
        format!("/drs/quotas?{q}"),
        format!("/drs/accounts?{q}"),
        format!("/ec2/subnets?{q}"),
        format!("/ec2/security-groups?{q}"),
        format!("/ec2/instance-profiles?{q}"),
        "/ec2/instance-types?region=us-west-2".to_owned(),
    ]
}

/// Runs `drs-cache ARGS` to its end: exit code, stdout, stderr.
pub fn cli(args: &[&str], envs: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .envs(envs.iter().copied())
        .env_remove("RUST_LOG")
        .env_remove("REFRESH_STATE_MACHINE_ARN")
        .env_remove("EMBEDDED_STORE_PATH")
        .output()
        .expect("drs-cache runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
