//! The read side: serves cached data from a memory tier and the store, never
//! from upstream.

mod filter;
pub mod http;
mod invalidate;
pub mod lambda;
mod memory;
pub mod metrics;
mod request;
pub mod server;
mod service;

pub use filter::Filter;
pub use http::{ApiRequest, ApiResponse, Router};
pub use memory::MemoryTier;
pub use request::{ReadRequest, RequestError};
pub use service::{ReadError, ReadService, ReaderSettings, Served, Tier};
