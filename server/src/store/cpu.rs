//! CPU-heavy steps inside a request (an Automerge apply: milliseconds per push) run without
//! holding up the runtime's other tasks.
//!
//! The runtime has one worker thread per core. A push's apply occupies its worker for
//! milliseconds, and meanwhile every other task queued on that worker waits, among them
//! transactions that already hold the feed clock's row lock (taken at their end, held until
//! COMMIT) and only need a poll to send their next statement: every writer then waits for them
//! (docs/PERFORMANCE.md, "Fifth round"). [`heavy`] hands the worker's other tasks to another
//! thread first (`block_in_place`), so the operating system's scheduler, which preempts, shares
//! the cores between the apply and those short steps.

use tokio::runtime::{Handle, RuntimeFlavor};

/// Runs `work` on this thread, letting the runtime move its other tasks elsewhere meanwhile.
/// On a current-thread runtime (tests) or outside one, `work` simply runs.
pub fn heavy<R>(work: impl FnOnce() -> R) -> R {
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}
