//! `/admin/*`: the dashboard endpoints (audience `snr_dash`).

use crate::state::AppState;
use axum::Router;

/// The routes of this group.
pub fn routes() -> Router<AppState> {
    Router::new()
}
