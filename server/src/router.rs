//! Every route of the server, assembled in one place, and the layers around them.
//!
//! Layers, outermost first: a request id (`x-request-id`, kept if the client sent one), the
//! trace span (method, path, request id — never the query string or bodies), the request id
//! copied onto the response, and the default body limit ([`JSON_BODY_LIMIT`]). Unknown paths and
//! methods answer our envelope (404/405). Adding a route group: nest a `Router` under its prefix
//! before the fallbacks are set (the 405 fallback only covers routes that exist at that point).

use crate::error::localize_refusals;
use crate::extract::JSON_BODY_LIMIT;
use crate::handlers::{admin, app, ops, payments, pro, scheduler, sync};
use crate::state::AppState;
use crate::{report, uploads};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use axum::middleware;
use axum::routing::get;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

/// The header carrying the request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The whole HTTP application over `state`.
pub fn app(state: AppState) -> Router {
    let request_id = HeaderName::from_static(REQUEST_ID_HEADER);
    let trace = TraceLayer::new_for_http()
        .make_span_with(|req: &Request<_>| {
            let request_id = req
                .headers()
                .get(REQUEST_ID_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::info_span!(
                "request",
                method = %req.method(),
                path = %req.uri().path(),
                request_id = %request_id,
            )
        })
        .on_response(DefaultOnResponse::new().level(Level::INFO));

    Router::new()
        .route("/health", get(ops::health))
        .route("/ready", get(ops::ready))
        .route("/metrics", get(crate::metrics::serve))
        .route("/openapi.json", get(crate::openapi::serve))
        .nest("/app", app::routes())
        .nest("/pro", pro::routes())
        .nest("/admin", admin::routes())
        .nest("/scheduler", scheduler::routes())
        .merge(payments::routes())
        .merge(sync::routes())
        // Resumable uploads take their own body limit (what is left of the file), not the JSON one.
        .route(
            "/sync/v1/upload/{sha256}",
            get(uploads::status_handler)
                .patch(uploads::patch_handler)
                .layer(DefaultBodyLimit::disable()),
        )
        .route("/reports/verify", get(report::http::verify))
        .route("/sync/v1/live", get(crate::live::connect))
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .layer(middleware::from_fn(localize_refusals))
        // Per route (so under its template), outside the handlers' own layers.
        .layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            crate::metrics::track,
        ))
        // `layer` wraps everything added before it, so the last layer here runs first.
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(trace)
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}
