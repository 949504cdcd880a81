//! The read side: serve cached data, never call upstream.
