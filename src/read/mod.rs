//! The read side: serves cached data from a memory tier and the store, never
//! from upstream.

pub mod demand;
mod encoding;
mod error;
mod filter;
pub mod http;
mod invalidate;
pub mod inventory;
pub mod lambda;
mod memory;
pub mod metrics;
pub mod request;
#[cfg(feature = "local")]
pub mod server;
mod service;

pub use error::{ApiError, invalidation_json};
pub use filter::Filter;
pub use http::{ApiRequest, ApiResponse, Router};
pub use invalidate::{
    MAX_REQUEST_BODY_BYTES as MAX_INVALIDATION_BYTES, parse as parse_invalidation,
};
pub use request::ReadRequest;
pub use service::{ReadError, ReadService, ReaderSettings, RequestNotTaken, Served, Tier};
