//! Operational endpoints (`/health`, `/ready`) and the fallbacks for unknown paths and methods.

use crate::envelope::{Envelope, ok};
use crate::error::AppError;
use crate::state::AppState;
use axum::extract::State;
use serde::Serialize;
use std::time::Duration;

/// How long `/ready` waits for the database.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// The `data` of `/health`.
#[derive(Debug, Serialize)]
pub struct Health {
    /// Always `up`: the server answered.
    pub status: &'static str,
    /// The version of the case rules (`sop-core`).
    pub version: &'static str,
}

/// `GET /health`: 200 as soon as the server accepts requests; no authentication, no I/O.
pub async fn health() -> Envelope<Health> {
    ok(Health {
        status: "up",
        version: sop_core::VERSION,
    })
}

/// The `data` of `/ready`.
#[derive(Debug, Serialize)]
pub struct Ready {
    /// `ok` when the database answered.
    pub database: &'static str,
}

/// `GET /ready`: 200 when the database answers `SELECT 1` in time, else 503 (code 1001).
pub async fn ready(State(state): State<AppState>) -> Result<Envelope<Ready>, AppError> {
    match tokio::time::timeout(READY_TIMEOUT, state.db.ping()).await {
        Ok(Ok(())) => Ok(ok(Ready { database: "ok" })),
        Ok(Err(e)) => Err(AppError::Unavailable(format!("database ping failed: {e}"))),
        Err(_) => Err(AppError::Unavailable(format!(
            "database did not answer within {READY_TIMEOUT:?}"
        ))),
    }
}

/// Any path no route matches: 404 envelope.
pub async fn not_found() -> AppError {
    AppError::NotFound("no such endpoint".to_owned())
}

/// A known path with an unsupported method: 405 envelope.
pub async fn method_not_allowed() -> AppError {
    AppError::MethodNotAllowed
}
