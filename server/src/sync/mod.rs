//! The `/sync/v1` protocol on the server (DESIGN.md §3, docs/adr/0004-sync-feed.md): push, pull
//! and the combined exchange. The live channel (`/sync/v1/live`) is [`crate::live`].
//!
//! - [`push`]: a device's operations in order, each answered `applied`, `duplicate` or
//!   `refused`; consecutive content changes of one document share one transaction (the answers
//!   are still per operation), every command runs in its own. Exactly-once lives in the store
//!   (`store::push`).
//! - [`pull`]: the feed after the device's cursor as the user may see it now, or, for a first
//!   sync or a device far behind, whole cases (records and document snapshots) in pages.
//! - [`cursor`]: the opaque cursor, which also carries where a paged snapshot resumes.
//!
//! Handlers are in `handlers::sync`; they only authenticate, parse and call these.

pub mod cursor;
pub mod pull;
pub mod push;

use std::time::Duration;

/// Settings of `/sync/v1` (defaults fit the standalone server).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncSettings {
    /// Feed rows a pull reads when the device does not say.
    pub default_pull_limit: u32,
    /// The most feed rows one pull reads, whatever the device asks.
    pub max_pull_limit: u32,
    /// A cursor more than this many feed positions behind gets whole cases (snapshots) instead
    /// of the history it missed.
    pub far_behind: i64,
    /// Cases per page of a snapshot.
    pub snapshot_cases: i64,
    /// The largest push or exchange body, in bytes.
    pub max_body_bytes: usize,
    /// A document with this many change rows after its snapshot gets compacted.
    pub compact_after: i32,
    /// How often the compaction job looks for such documents.
    pub compact_every: Duration,
    /// Pushes applied at once; more wait for a slot (see [`push::PushGate`]). Below the
    /// database pool's size, so that pulls and the API still get connections.
    pub max_concurrent_pushes: usize,
    /// How long a push waits for a slot before it is answered 503 with `Retry-After`.
    pub push_wait: Duration,
}

impl Default for SyncSettings {
    fn default() -> Self {
        Self {
            default_pull_limit: 500,
            max_pull_limit: 5000,
            far_behind: 50_000,
            snapshot_cases: 50,
            max_body_bytes: 32 * 1024 * 1024,
            compact_after: 200,
            compact_every: Duration::from_secs(30),
            max_concurrent_pushes: 12,
            push_wait: Duration::from_secs(3),
        }
    }
}

/// How many documents one compaction round handles at most.
const COMPACT_BATCH: i64 = 100;

/// Starts the background compaction of content documents (DESIGN §4): every
/// `compact_every`, documents with at least `compact_after` change rows get a new snapshot. Safe
/// with several instances (a compaction that lost a race changes nothing). Stops when the
/// returned handle is dropped.
pub fn spawn_compaction(state: crate::AppState) -> CompactionTask {
    let settings = state.settings.sync.clone();
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(settings.compact_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match state
                .store
                .compact_documents(settings.compact_after, COMPACT_BATCH)
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::debug!(documents = n, "compacted content documents"),
                Err(e) => tracing::warn!(error = %e, "content compaction failed; retrying later"),
            }
        }
    });
    CompactionTask(task)
}

/// The running compaction job; aborted on drop.
#[derive(Debug)]
pub struct CompactionTask(tokio::task::JoinHandle<()>);

impl Drop for CompactionTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}
