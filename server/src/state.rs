//! The shared application state handed to every handler (`State<AppState>`).
//!
//! Sub-states are extracted with `FromRef` (e.g. the [`Authenticator`] used by the auth
//! extractors), so handlers ask only for what they use. Adding a service (store, blob store,
//! outbox): add a field here and build it in `serve`; tests build states with [`AppState::new`].

use crate::auth::Authenticator;
use crate::db::Db;
use axum::extract::FromRef;

/// Everything a request handler may need. Cheap to clone: every field is a shared handle.
#[derive(Clone, Debug, FromRef)]
pub struct AppState {
    /// The database pool.
    pub db: Db,
    /// Verifies bearer tokens.
    pub auth: Authenticator,
}

impl AppState {
    /// A state over a connected (and migrated) database and a token verifier.
    pub fn new(db: Db, auth: Authenticator) -> Self {
        Self { db, auth }
    }
}
