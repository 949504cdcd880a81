//! What the benchmarks share.

use drs_cache::read::ApiResponse;

/// The tier an answer was served from (`x-cache`), empty when it names none.
pub fn cache_tier(response: &ApiResponse) -> &str {
    response
        .headers()
        .get("x-cache")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}
