//! Logging for the command line: JSON lines on standard error when
//! `LOG_FORMAT=json`, readable text otherwise; level from `RUST_LOG`, else
//! the command's default.

use std::io::IsTerminal;

use tracing_subscriber::{EnvFilter, fmt};

/// Starts logging at `default_level` unless `RUST_LOG` says otherwise.
pub fn init(default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json")) {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}
