//! drs-cache: AWS DRS and EC2 metadata served from a cache that is kept fresh in
//! the background.

pub mod adapters;
pub mod app;
pub mod cli;
pub mod config;
pub mod domain;
pub mod emf;
pub mod errors;
pub mod invocation;
pub mod plan;
pub mod ports;
pub mod read;
pub mod refresh;
pub mod sim;
pub mod telemetry;
