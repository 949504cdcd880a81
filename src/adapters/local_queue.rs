//! In-process refresh queue for the local mode.
