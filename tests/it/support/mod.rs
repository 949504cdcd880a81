//! Harnesses and helpers the integration tests share.

pub mod browser;
pub mod cfn;
pub mod events;
pub mod local;
pub mod moto;
pub mod plan;
pub mod proxy;
pub mod reader;
pub mod refresh;
pub mod store_contract;
pub mod workflow;

/// Logs go to the test output only when `TEST_LOG` is set, filtered by
/// `RUST_LOG` (default: debug for this project's crates).
pub fn init_test_log() {
    if std::env::var_os("TEST_LOG").is_some() {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new("drs_cache=debug,drs_sim=debug")
        });
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    }
}

/// The simulator's own ID types for the cache's: both take the same names.
pub trait InSim {
    type Id;
    fn sim(&self) -> Self::Id;
}

impl InSim for drs_cache::domain::AccountId {
    type Id = drs_sim::AccountId;

    fn sim(&self) -> drs_sim::AccountId {
        drs_sim::AccountId::parse(self.as_str()).expect("both take twelve digits")
    }
}

impl InSim for drs_cache::domain::Region {
    type Id = drs_sim::Region;

    fn sim(&self) -> drs_sim::Region {
        drs_sim::Region::parse(self.as_str()).expect("both take region names")
    }
}
