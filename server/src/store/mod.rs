//! The server's store: cases, catalog, content documents, the sync feed, notifications, audit
//! log and outbox on PostgreSQL or SQLite.
//!
//! All SQL lives in [`sql`] behind the [`Tx`] trait, implemented for both backends from one text.
//! The logic here and in the sibling modules is written once, generic over `Tx`: a command is
//! decided by `sop-core` inside one write transaction that also stores its events, notifications,
//! outbox rows, audit row and feed rows, so either all of it commits or none of it does. Every
//! write transaction that changes what a device may see ends with its feed rows ([`feed_tx!`]);
//! after the commit the store publishes a live hint on the [`Hints`] it was given.

mod audit;
mod cases;
mod catalog;
mod cpu;
mod docs;
mod feed;
pub mod feed_log;
mod files;
mod held;
mod push;
pub mod rows;
pub mod sql;

pub use audit::{AuditEntry, AuditMeta, ChainReport};
pub use cases::{ADMINS_RECIPIENT, Executed};
pub use docs::{Edit, StoredContent, server_actor};
pub use feed::Retry;
pub use feed_log::{FeedPage, Pulled, SnapshotExtras, SnapshotPage};
pub use push::{PushItem, PushOp, Pushed, Pusher};
pub use sql::{AuditFilter, CaseFilter, FeedViewer, OutboxFilter, Tx, Window};

use crate::db::Db;
use crate::hints::{Hint, Hints};
use sop_core::Refusal;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The core rules refused the command (or a catalog rule refused a write).
    #[error("refused: {0}")]
    Refused(Refusal),
    /// Another request changed the case first; the operation is retried.
    #[error("concurrent update")]
    Conflict,
    /// Stored data that does not decode (a bug or tampering), with a non-PHI description.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl From<Refusal> for StoreError {
    fn from(r: Refusal) -> Self {
        StoreError::Refused(r)
    }
}

/// How often a command is retried when another request changed the same case meanwhile.
const MAX_ATTEMPTS: usize = 8;

/// The store over one database.
#[derive(Clone, Debug)]
pub struct Store {
    db: Db,
    /// Where "pull now" hints go after a commit that wrote feed rows (none: nowhere).
    hints: Option<Hints>,
    /// Content documents as the last write on this instance committed them.
    docs: docs::DocCache,
}

/// Runs `$body` (using the transaction `$tx`) in a write transaction of whichever backend is
/// configured, committing when it returns `Ok`. SQLite starts with `BEGIN IMMEDIATE` so that a
/// read-then-write transaction takes the write lock first instead of failing to upgrade.
macro_rules! write_tx {
    ($db:expr, |$tx:ident| $body:expr) => {
        match $db {
            $crate::db::Db::Postgres(pool) => {
                let mut $tx = pool.begin().await?;
                let out = $body;
                if out.is_ok() {
                    $tx.commit().await?;
                }
                out
            }
            $crate::db::Db::Sqlite(pool) => {
                let mut $tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                let out = $body;
                if out.is_ok() {
                    $tx.commit().await?;
                }
                out
            }
        }
    };
}

/// Runs `$body` in a read transaction (never commits anything).
macro_rules! read_tx {
    ($db:expr, |$tx:ident| $body:expr) => {
        match $db {
            $crate::db::Db::Postgres(pool) => {
                let mut $tx = pool.begin().await?;
                $body
            }
            $crate::db::Db::Sqlite(pool) => {
                let mut $tx = pool.begin().await?;
                $body
            }
        }
    };
}

/// Runs `$body` (using the transaction `$tx` and the [`feed_log::FeedBatch`] `$feed`) in a
/// write transaction whose last statement writes the batch's feed rows, then publishes the
/// batch's hint once committed. `$body` evaluates to a `Result`; an `Err` rolls everything back.
macro_rules! feed_tx {
    ($store:expr, $now:expr, |$tx:ident, $feed:ident| $body:expr) => {{
        let out = $crate::store::write_tx!(&$store.db, |$tx| {
            let mut $feed = $crate::store::feed_log::FeedBatch::with_cache($store.docs.clone());
            match $body {
                Ok(value) => $feed
                    .commit(&mut $tx, $now)
                    .await
                    .map(|done| (value, done))
                    .map_err(Into::into),
                Err(e) => Err(e),
            }
        });
        out.map(|(value, mut done)| {
            done.cache_docs();
            $store.publish(done.hint);
            value
        })
    }};
}

pub(crate) use {feed_tx, read_tx, write_tx};

impl Store {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            hints: None,
            docs: docs::DocCache::default(),
        }
    }

    /// This store, publishing a hint on `hints` after every commit that wrote feed rows.
    pub fn with_hints(mut self, hints: Hints) -> Self {
        self.hints = Some(hints);
        self
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Publishes the hint of a committed transaction, if it wrote feed rows.
    fn publish(&self, hint: Option<Hint>) {
        if let (Some(hints), Some(hint)) = (&self.hints, hint) {
            hints.publish(hint);
        }
    }
}

/// A page request: `page` from 1, `size` 1–100 (SPEC §10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    pub page: i64,
    pub size: i64,
}

impl Page {
    pub const DEFAULT_SIZE: i64 = 15;
    pub const MAX_SIZE: i64 = 100;

    /// Clamps what the client sent into a valid page.
    pub fn new(page: Option<i64>, size: Option<i64>) -> Self {
        Self {
            page: page.unwrap_or(1).max(1),
            size: size.unwrap_or(Self::DEFAULT_SIZE).clamp(1, Self::MAX_SIZE),
        }
    }

    pub fn window(self) -> Window {
        Window {
            limit: self.size,
            offset: (self.page - 1).saturating_mul(self.size),
        }
    }
}

/// One page of results and the total count.
#[derive(Clone, Debug, PartialEq)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub total: i64,
    pub page: Page,
}
