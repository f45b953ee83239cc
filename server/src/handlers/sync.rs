//! `/sync/v1/push`, `/sync/v1/pull`, `/sync/v1/exchange` (DESIGN.md §3): the mobile apps' sync
//! endpoints, open to patients (`snr_usr`) and doctors (`snr_pro`). The token's audience says
//! which actor the user is. Bodies and answers are the `sop_core::sync::v1` wire types inside
//! the usual envelope (`data`). The work is in [`crate::sync`].
//!
//! Bodies may be larger than the API's 1 MiB (a push carries up to `Limits::max_push_ops`
//! changes): they are read here up to `SyncSettings::max_body_bytes`, and a larger one is a 413
//! envelope naming the limit; malformed JSON is a 400 envelope saying what is wrong.
//!
//! Overload is a 503 envelope with `Retry-After` (`sync::push::PushGate`), never a 500: a push
//! waits at most `SyncSettings::push_wait` for one of `max_concurrent_pushes` slots.

use crate::api::RequestMeta;
use crate::auth::{Audience, AuthUser, SyncAuth};
use crate::envelope::{Envelope, ok};
use crate::error::AppError;
use crate::lang::RequestLang;
use crate::state::AppState;
use crate::store::FeedViewer;
use crate::sync::pull::{Puller, pull};
use crate::sync::push::{Sender, push};
use axum::Router;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::de::DeserializeOwned;
use sop_core::actor::Actor;
use sop_core::ids::UserId;
use sop_core::lang::Lang;
use sop_core::sync::v1::{
    ExchangeRequest, ExchangeResponse, PullRequest, PullResponse, PushRequest, PushResponse,
};

/// The sync routes, with their full paths (merged at the root, beside `/sync/v1/live`).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/sync/v1/push", post(push_handler))
        .route("/sync/v1/pull", post(pull_handler))
        .route("/sync/v1/exchange", post(exchange_handler))
}

/// A sync request body: JSON, at most `SyncSettings::max_body_bytes`.
#[derive(Debug)]
pub struct SyncJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for SyncJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                let essence = v.split(';').next().unwrap_or_default().trim();
                essence.eq_ignore_ascii_case("application/json")
            });
        if !json {
            return Err(AppError::BadRequest(
                "Expected request with `Content-Type: application/json`".to_owned(),
            ));
        }
        let limit = state.settings.sync.max_body_bytes;
        let bytes = axum::body::to_bytes(req.into_body(), limit)
            .await
            .map_err(|_| {
                AppError::PayloadTooLarge(format!(
                    "request body is larger than the sync limit of {limit} bytes"
                ))
            })?;
        // The API's own rules: an object (not an array of field values), and messages that name
        // the field at fault.
        crate::extract::from_object(&bytes)
            .map(Self)
            .map_err(|e| match e {
                AppError::BadRequest(m) => {
                    AppError::BadRequest(format!("Invalid sync request body: {m}"))
                }
                other => other,
            })
    }
}

/// The actor a sync user is, from the audience their token was accepted for.
fn actor_of(user: &AuthUser) -> Actor {
    let id = UserId::new(user.sub.clone());
    match user.audience {
        Audience::Doctor => Actor::Doctor(id),
        // `SyncAuth` accepts patients and doctors only.
        Audience::Patient | Audience::Admin => Actor::Patient(id),
    }
}

fn viewer_of(user: &AuthUser) -> FeedViewer {
    match user.audience {
        Audience::Doctor => FeedViewer::Doctor(user.sub.clone()),
        Audience::Patient | Audience::Admin => FeedViewer::Patient(user.sub.clone()),
    }
}

async fn do_push(
    state: &AppState,
    user: &AuthUser,
    meta: &RequestMeta,
    req: &PushRequest,
) -> Result<PushResponse, AppError> {
    let actor = actor_of(user);
    let sender = Sender {
        user: &user.sub,
        actor: &actor,
        meta,
    };
    push(state, sender, req).await
}

async fn do_pull(
    state: &AppState,
    user: &AuthUser,
    meta: &RequestMeta,
    lang: Lang,
    req: &PullRequest,
) -> Result<PullResponse, AppError> {
    let actor = actor_of(user);
    let viewer = viewer_of(user);
    let puller = Puller {
        viewer: &viewer,
        actor: &actor,
        lang,
        meta,
    };
    pull(state, puller, req).await
}

/// An error answer; overload (503) tells the device when to try again.
#[derive(Debug)]
pub struct SyncError(AppError);

impl From<AppError> for SyncError {
    fn from(e: AppError) -> Self {
        Self(e)
    }
}

impl IntoResponse for SyncError {
    fn into_response(self) -> Response {
        let busy = matches!(self.0, AppError::Unavailable(_));
        let mut response = self.0.into_response();
        if busy {
            // Nothing of the push was applied or every applied op is recorded: retrying it
            // is safe, and a second is about one queue of pushes at the measured rate.
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// `POST /sync/v1/push`: `PushRequest` → `PushResponse`.
pub async fn push_handler(
    State(state): State<AppState>,
    SyncAuth(user): SyncAuth,
    meta: RequestMeta,
    SyncJson(req): SyncJson<PushRequest>,
) -> Result<Envelope<PushResponse>, SyncError> {
    Ok(ok(do_push(&state, &user, &meta, &req).await?))
}

/// `POST /sync/v1/pull`: `PullRequest` → `PullResponse`.
pub async fn pull_handler(
    State(state): State<AppState>,
    SyncAuth(user): SyncAuth,
    meta: RequestMeta,
    RequestLang(lang): RequestLang,
    SyncJson(req): SyncJson<PullRequest>,
) -> Result<Envelope<PullResponse>, AppError> {
    Ok(ok(do_pull(&state, &user, &meta, lang, &req).await?))
}

/// `POST /sync/v1/exchange`: a push, then a pull, in one round trip.
pub async fn exchange_handler(
    State(state): State<AppState>,
    SyncAuth(user): SyncAuth,
    meta: RequestMeta,
    RequestLang(lang): RequestLang,
    SyncJson(req): SyncJson<ExchangeRequest>,
) -> Result<Envelope<ExchangeResponse>, SyncError> {
    let push = do_push(&state, &user, &meta, &req.push).await?;
    let pull = do_pull(&state, &user, &meta, lang, &req.pull).await?;
    Ok(ok(ExchangeResponse { push, pull }))
}
