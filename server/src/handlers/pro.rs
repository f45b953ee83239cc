//! `/pro/*`: the doctors' endpoints (audience `snr_pro`).

use crate::state::AppState;
use axum::Router;

/// The routes of this group.
pub fn routes() -> Router<AppState> {
    Router::new()
}
