//! `GET /reports/verify?id=<report id>&sha256=<hex>`: the public check of a printed or
//! downloaded report. No authentication, and the answer says only `valid` (true or false):
//! never the case, the patient or any text of the report.

use crate::envelope::{Envelope, ok};
use crate::error::AppError;
use crate::state::AppState;
use axum::extract::{RawQuery, State};
use serde::Serialize;
use uuid::Uuid;

/// The answer of the check.
#[derive(Debug, Serialize)]
pub struct Verification {
    pub valid: bool,
}

/// The value of query parameter `name`, if present once.
fn param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// `GET /reports/verify`.
pub async fn verify(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Envelope<Verification>, AppError> {
    let query = query.unwrap_or_default();
    let id = param(&query, "id")
        .and_then(|v| v.parse::<Uuid>().ok())
        .ok_or_else(|| AppError::BadRequest("`id` must be a report id (UUID)".to_owned()))?;
    let sha256 = param(&query, "sha256")
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| {
            AppError::BadRequest("`sha256` must be 64 hexadecimal characters".to_owned())
        })?;
    let valid = crate::report::verify(&state, id, sha256).await?;
    Ok(ok(Verification { valid }))
}
