//! Helpers shared by the black-box tests. Each test binary uses a part of them.
#![allow(dead_code)]

pub mod moto;
pub mod plan;
pub mod proxy;
pub mod reader;
pub mod refresh;
pub mod store_contract;
pub mod workflow;

/// Logs go to the test output only when `TEST_LOG` is set.
pub fn init_test_log() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}
