//! CPU-heavy steps inside a request (an Automerge apply: milliseconds per push) run without
//! holding up the runtime's other tasks, at most one per core at a time.
//!
//! The runtime has one worker thread per core. A push's apply occupies its worker for
//! milliseconds, and meanwhile every other task queued on that worker waits, among them
//! transactions that already hold the feed clock's row lock (taken at their end, held until
//! COMMIT) and only need a poll to send their next statement: every writer then waits for them
//! (docs/PERFORMANCE.md, "Fifth round"). [`heavy`] hands the worker's other tasks to another
//! thread first (`block_in_place`), so the operating system's scheduler, which preempts, shares
//! the cores between the apply and those short steps. And applies wait for one of
//! [`slots`] (one per core) in arrival order: a dozen pushes applying at once would share the
//! cores and all finish late, where in turn each finishes as early as it can.

use std::sync::OnceLock;
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::Semaphore;

/// One slot per core for CPU-heavy steps.
fn slots() -> &'static Semaphore {
    static SLOTS: OnceLock<Semaphore> = OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Semaphore::new(cores)
    })
}

/// Runs `work` on this thread once a slot is free, letting the runtime move its other tasks
/// elsewhere meanwhile. On a current-thread runtime (tests) or outside one, `work` simply runs.
pub async fn heavy<R>(work: impl FnOnce() -> R) -> R {
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => {
            // The semaphore is never closed, so acquiring only fails if it were.
            let _slot = slots().acquire().await;
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}
