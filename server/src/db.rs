//! The database handle: PostgreSQL in production, SQLite for the standalone default.
//!
//! [`Db`] holds one pool or the other. Queries are runtime-checked (`sqlx::query`/`query_as`),
//! never the compile-time macros, so one crate can speak both backends (TECH-NOTES). Migrations
//! are embedded from `migrations/postgres` and `migrations/sqlite` at the workspace root and run
//! at start-up and by `sop-server migrate`. Adding a table: add `NNNN_name.sql` to **both**
//! folders, each in its backend's native types, and extend the store tests that run on both.

use crate::config::DatabaseConfig;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::str::FromStr;
use std::time::Duration;

/// Migrations of the PostgreSQL backend.
pub static POSTGRES_MIGRATOR: Migrator = sqlx::migrate!("../migrations/postgres");

/// Migrations of the SQLite backend.
pub static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("../migrations/sqlite");

/// How long a request waits for a free connection before failing.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long SQLite waits on a locked database before `SQLITE_BUSY`.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Which backend a [`Db`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL.
    Postgres,
    /// SQLite.
    Sqlite,
}

/// A connection pool to one of the two backends. Cheap to clone (pools are shared handles).
#[derive(Clone, Debug)]
pub enum Db {
    /// PostgreSQL.
    Postgres(PgPool),
    /// SQLite.
    Sqlite(SqlitePool),
}

impl Db {
    /// Connects as configured. A SQLite file is created if missing (its directory must exist)
    /// and opened with WAL, `foreign_keys = ON` and a busy timeout.
    pub async fn connect(config: &DatabaseConfig) -> Result<Self, sqlx::Error> {
        match config {
            DatabaseConfig::Postgres(url) => {
                let pool = PgPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect(url.expose())
                    .await?;
                Ok(Db::Postgres(pool))
            }
            DatabaseConfig::Sqlite { path } => {
                Self::connect_sqlite(SqliteConnectOptions::new().filename(path)).await
            }
            DatabaseConfig::SqliteUrl(url) => {
                Self::connect_sqlite(SqliteConnectOptions::from_str(url.expose())?).await
            }
        }
    }

    async fn connect_sqlite(options: SqliteConnectOptions) -> Result<Self, sqlx::Error> {
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL is durable across application crashes in WAL mode; only an OS crash can
            // lose the last transactions.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(SQLITE_BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        Ok(Db::Sqlite(pool))
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        match self {
            Db::Postgres(_) => Backend::Postgres,
            Db::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// Applies the pending migrations of this backend.
    pub async fn migrate(&self) -> Result<(), MigrateError> {
        match self {
            Db::Postgres(pool) => POSTGRES_MIGRATOR.run(pool).await,
            Db::Sqlite(pool) => SQLITE_MIGRATOR.run(pool).await,
        }
    }

    /// Checks that the database answers (`SELECT 1`).
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        match self {
            Db::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
            Db::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
        }
    }

    /// The pool's connections: (open, idle).
    pub fn pool_state(&self) -> (usize, usize) {
        let (size, idle) = match self {
            Db::Postgres(pool) => (pool.size(), pool.num_idle()),
            Db::Sqlite(pool) => (pool.size(), pool.num_idle()),
        };
        (usize::try_from(size).unwrap_or(usize::MAX), idle)
    }

    /// Closes the pool, waiting for checked-out connections to come back (SQLite checkpoints
    /// its WAL on the last close).
    pub async fn close(&self) {
        match self {
            Db::Postgres(pool) => pool.close().await,
            Db::Sqlite(pool) => pool.close().await,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a failing test should panic loudly
mod tests {
    use super::*;

    #[tokio::test]
    async fn sqlite_file_is_created_migrated_and_configured() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        let db = Db::connect(&DatabaseConfig::Sqlite { path: path.clone() })
            .await
            .expect("connect");
        assert!(path.exists());
        db.migrate().await.expect("migrate");
        db.migrate().await.expect("migrating twice is a no-op");
        db.ping().await.expect("ping");
        let Db::Sqlite(pool) = &db else {
            panic!("expected SQLite")
        };
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(pool)
            .await
            .expect("journal_mode");
        assert_eq!(mode, "wal");
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(pool)
            .await
            .expect("foreign_keys");
        assert_eq!(fk, 1);
        sqlx::query("INSERT INTO server_info (key, value) VALUES ($1, $2)")
            .bind("k")
            .bind("v")
            .execute(pool)
            .await
            .expect("server_info exists");
        db.close().await;
    }
}
