//! A real headless browser for the tests of web pages: Chromium, run as a child
//! process, loads a URL and prints the DOM as it is once the page's scripts ran.
//!
//! The binary is `CHROMIUM_BIN` (exported by scripts/test, which installs Debian's
//! `chromium`), else `/usr/bin/chromium`.

use std::{
    fs::File,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

/// How long one Chromium run may take, start-up included, before it is killed.
const WALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Lines of Chromium's stderr quoted in an error.
const STDERR_TAIL_LINES: usize = 20;

/// The flags of every run, each for a reason. This machine's network is closed and
/// the tests may run as root in a container.
const FLAGS: &[&str] = &[
    // No display: the headless browser, the same engine as the desktop one.
    "--headless",
    // The sandbox needs namespaces a root user in a container does not get.
    "--no-sandbox",
    // No GPU on a test machine: software rendering, no GPU process start-up errors.
    "--disable-gpu",
    // No QUIC (UDP) connection attempts beside the page's own HTTP.
    "--disable-quic",
    // No first-run dialogs or default-browser checks.
    "--no-first-run",
    // No background requests to Google's services (safe browsing, variations, ...)
    // that would wait on the closed network.
    "--disable-background-networking",
    // No component updater downloads.
    "--disable-component-update",
    // No Chrome Sync.
    "--disable-sync",
];

/// The DOM of `url` serialised as HTML, after the page's scripts have run for
/// `wait` of virtual time.
///
/// `--virtual-time-budget` makes Chromium advance the page's clock (timers such as
/// a 2 s poll) as fast as it can while waiting for the page's network requests, so
/// `wait` is the page's time, not the test's: a few seconds of it take well under
/// one. A fresh `--user-data-dir` per call keeps runs from sharing a profile (and its
/// lock). Chromium is killed, with any process it started, after [`WALL_TIMEOUT`].
/// Errors quote the tail of Chromium's stderr.
pub fn dump_dom(url: &str, wait: Duration) -> Result<String, String> {
    let bin = chromium_bin();
    if !bin.is_file() {
        return Err(format!(
            "no Chromium at {}: scripts/test installs it (Debian: `apt-get install -y \
             --no-install-recommends chromium`), or set CHROMIUM_BIN to a Chromium binary",
            bin.display()
        ));
    }
    let dir = tempfile::tempdir().map_err(|e| format!("temporary directory for Chromium: {e}"))?;
    // Output goes to files, not pipes: a process Chromium started that outlives it
    // cannot keep a read blocked.
    let dom_path = dir.path().join("dom.html");
    let stderr_path = dir.path().join("stderr.log");
    let create =
        |path: &Path| File::create(path).map_err(|e| format!("creating {}: {e}", path.display()));
    let mut child = Command::new(&bin)
        .args(FLAGS)
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("profile").display()
        ))
        .arg(format!("--virtual-time-budget={}", wait.as_millis()))
        .arg("--dump-dom")
        .arg(url)
        .stdin(Stdio::null())
        .stdout(create(&dom_path)?)
        .stderr(create(&stderr_path)?)
        // Its own process group, so a timeout can kill the renderers with it.
        .process_group(0)
        .spawn()
        .map_err(|e| format!("starting {}: {e}", bin.display()))?;

    let deadline = Instant::now() + WALL_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
            outcome => {
                // Not reaped yet, so the group is still this child's.
                let pgid = libc::pid_t::try_from(child.id()).expect("a pid fits pid_t");
                // SAFETY: kill(2) takes no pointers; a negative pid names the
                // process group the child leads (`process_group(0)` above).
                unsafe { libc::kill(-pgid, libc::SIGKILL) };
                let _ = child.wait();
                let why = match outcome {
                    Err(e) => format!("waiting for Chromium failed: {e}"),
                    _ => format!("Chromium did not finish within {WALL_TIMEOUT:?}"),
                };
                return Err(format!(
                    "{why} loading {url}; {}",
                    stderr_tail(&stderr_path)
                ));
            }
        }
    };
    let dom = std::fs::read_to_string(&dom_path)
        .map_err(|e| format!("reading Chromium's output {}: {e}", dom_path.display()))?;
    if !status.success() || dom.trim().is_empty() {
        return Err(format!(
            "Chromium exited with {status} and {} bytes of DOM loading {url}; {}",
            dom.len(),
            stderr_tail(&stderr_path)
        ));
    }
    Ok(dom)
}

fn chromium_bin() -> PathBuf {
    std::env::var_os("CHROMIUM_BIN")
        .filter(|bin| !bin.is_empty())
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

fn stderr_tail(path: &Path) -> String {
    let text = std::fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(STDERR_TAIL_LINES)..];
    if tail.is_empty() {
        "its stderr was empty".to_owned()
    } else {
        format!("the end of its stderr:\n{}", tail.join("\n"))
    }
}
