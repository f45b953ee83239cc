//! The server's store: cases, catalog, notifications, audit log, outbox and drafts on PostgreSQL
//! or SQLite.
//!
//! All SQL lives in [`sql`] behind the [`Tx`] trait, implemented for both backends from one text.
//! The logic here and in the sibling modules is written once, generic over `Tx`: a command is
//! decided by `sop-core` inside one write transaction that also stores its events, notifications,
//! outbox rows and audit row, so either all of it commits or none of it does.

mod audit;
mod cases;
mod catalog;
mod content;
mod feed;
mod files;
pub mod rows;
pub mod sql;

pub use audit::{AuditEntry, AuditMeta, ChainReport};
pub use cases::{ADMINS_RECIPIENT, Executed};
pub use content::Draft;
pub use sql::{AuditFilter, CaseFilter, Tx, Window};

use crate::db::Db;
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

pub(crate) use {read_tx, write_tx};

impl Store {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    pub fn db(&self) -> &Db {
        &self.db
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
