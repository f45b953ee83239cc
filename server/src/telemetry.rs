//! Logging setup: `tracing` to stderr, human-readable or JSON, filtered by `RUST_LOG`
//! (default `info`).
//!
//! Logs go to stderr so that commands printing a result (`sop-server token`) keep stdout clean.
//! What is logged is decided at the call sites: request method, path, status, latency and the
//! request id — never request or response bodies, never tokens or clinical text.

use crate::config::LogFormat;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Calling it again (tests) keeps the first one.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Human => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    // Only fails when a subscriber is already installed, which is fine.
    drop(result);
}
