//! The payment platform callback (`/payments/callback`) and the sandbox pages (`/sandbox/`).

use crate::state::AppState;
use axum::Router;

/// The routes of this group.
pub fn routes() -> Router<AppState> {
    Router::new()
}
