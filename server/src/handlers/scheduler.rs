//! `/scheduler/*`: triggers of the scheduled jobs.

use crate::state::AppState;
use axum::Router;

/// The routes of this group.
pub fn routes() -> Router<AppState> {
    Router::new()
}
