//! Typed configuration read once at start-up.
