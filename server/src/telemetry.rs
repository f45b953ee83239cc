//! Logging setup: `tracing` to stderr, human-readable or JSON, filtered by `RUST_LOG`
//! (default `info`), with Automerge's spans capped at `warn` (see [`QUIET_DEPENDENCIES`]).
//!
//! Logs go to stderr so that commands printing a result (`sop-server token`) keep stdout clean.
//! What is logged is decided at the call sites: request method, path, status, latency and the
//! request id — never request or response bodies, never tokens or clinical text.

use crate::config::LogFormat;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Added to the filter unless `RUST_LOG` names `automerge` itself. Automerge 0.12 wraps its
/// change parsing in `#[instrument]` spans at INFO level, so with `info` enabled every column of
/// every change the server loads would get a span with Debug-formatted fields that no log line
/// ever shows: 13–16% of the server's CPU under sync load (docs/PERFORMANCE.md).
pub const QUIET_DEPENDENCIES: &str = "automerge=warn";

/// Installs the global subscriber. Calling it again (tests) keeps the first one.
pub fn init(format: LogFormat) {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let names_automerge = std::env::var("RUST_LOG").is_ok_and(|v| v.contains("automerge"));
    if !names_automerge && let Ok(directive) = QUIET_DEPENDENCIES.parse() {
        filter = filter.add_directive(directive);
    }
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
