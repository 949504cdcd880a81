//! The embedded, file-backed cache store for running on one machine.
