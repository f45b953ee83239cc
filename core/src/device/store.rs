//! The SQLite side of the device store: opening (WAL), the versioned schema and its upgrade
//! steps, and the small key/value `meta` table.
//!
//! The schema version is `PRAGMA user_version`. [`STEPS`] holds one upgrade step per version:
//! step `i` takes a database from version `i` to `i + 1`, in its own transaction, so a crash
//! mid-upgrade leaves the previous version intact. Version 1's SQL is kept verbatim in
//! `schema/v1.sql` (the upgrade test builds a v1 file from it); never edit a released step, add
//! one.

use super::error::{DeviceError, Result};
use rusqlite::{Connection, OptionalExtension, params};
use std::time::Duration;

/// Version 1: every table of the first release.
pub(crate) const V1_SQL: &str = include_str!("schema/v1.sql");

/// Version 2: change ops are looked up by document on every keystroke (coalescing into the
/// queued op), and notifications get a "seen" flag.
const V2_SQL: &str = "
CREATE INDEX outbox_by_doc ON outbox (doc_id);
ALTER TABLE notifications ADD COLUMN seen INTEGER NOT NULL DEFAULT 0;
";

/// The upgrade steps, in order: `STEPS[i]` upgrades version `i` to `i + 1`.
pub(crate) const STEPS: &[&str] = &[V1_SQL, V2_SQL];

/// The schema version this code writes.
pub const SCHEMA_VERSION: i64 = STEPS.len() as i64;

/// Opens the database at `path` in WAL mode and brings its schema to [`SCHEMA_VERSION`].
pub(crate) fn open(path: &str) -> Result<Connection> {
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    // WAL: readers never block the writer, and a commit is one append. `synchronous = NORMAL`
    // keeps every committed transaction through an app kill (the WAL is written before the
    // commit returns); only an OS crash may lose the last ones.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(DeviceError::storage(format!(
            "journal mode {mode}, not wal"
        )));
    }
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")?;
    upgrade(&mut conn)?;
    Ok(conn)
}

/// The database's schema version.
pub(crate) fn version(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// Runs the upgrade steps the database has not had yet, one transaction each.
pub(crate) fn upgrade(conn: &mut Connection) -> Result<()> {
    let current = version(conn)?;
    if current > SCHEMA_VERSION {
        return Err(DeviceError::storage(format!(
            "database schema {current} is newer than this app's ({SCHEMA_VERSION})"
        )));
    }
    for (from, sql) in STEPS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", from as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// A `meta` value.
pub(crate) fn meta(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?)
}

/// Sets a `meta` value.
pub(crate) fn set_meta(conn: &Connection, key: &str, value: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}
