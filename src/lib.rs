//! drs-cache: AWS DRS and EC2 metadata served from a cache that is kept fresh in
//! the background.
//!
//! The three Lambda functions (`reader`, `planner`, `refresher`) build with the
//! default feature `local` off; it adds the `drs-cache` command line, the
//! embedded store, the local refresh queue and HTTP server, and the fleet
//! simulator they run against.

pub mod adapters;
pub mod app;
#[cfg(feature = "local")]
pub mod cli;
pub mod config;
pub mod cost;
pub mod domain;
mod emf;
mod errors;
pub mod invocation;
#[cfg(feature = "local")]
pub mod local;
pub mod plan;
pub mod ports;
pub mod read;
pub mod refresh;
#[cfg(feature = "local")]
pub mod telemetry;
mod text;
pub mod workflow;
