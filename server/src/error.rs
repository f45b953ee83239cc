//! The one error type of the HTTP layer and its mapping to the SPEC §10 envelope.
//!
//! Handlers return `Result<_, AppError>`. [`AppError::parts`] is the single place that decides
//! the HTTP status, the envelope code and the message of every error; change it there only.
//! Server-side failures (`Internal`, `Unavailable`) answer a generic message and log the detail;
//! nothing here ever logs a request body.

use crate::envelope::{Code, Envelope};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::borrow::Cow;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request is malformed or breaks a rule (400, code 1002). The message is shown to the
    /// caller, so it must say what is wrong without echoing the request.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The resource does not exist or is not visible to the caller (404, code 1002).
    #[error("not found: {0}")]
    NotFound(String),
    /// The request conflicts with the current state (409, code 1002).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The request body is larger than allowed (413, code 1002).
    #[error("payload too large: {0}")]
    PayloadTooLarge(String),
    /// The path exists but not with this method (405, code 1002).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// No valid credentials (401, code 2000).
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// Valid credentials that do not open this resource (403, code 2000).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// A dependency (the database, ...) is not available (503, code 1001). The detail is logged,
    /// the caller gets a generic message.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected failure (500, code 1001). The detail is logged, the caller gets a
    /// generic message.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for AppError {
    fn from(err: sqlx::Error) -> Self {
        // Named constraints will map to `Conflict` here once the case store has them.
        AppError::Internal(anyhow::Error::new(err).context("database error"))
    }
}

impl AppError {
    /// The HTTP status, envelope code and caller-facing message of this error.
    pub fn parts(&self) -> (StatusCode, Code, Cow<'_, str>) {
        match self {
            AppError::BadRequest(m) => (StatusCode::BAD_REQUEST, Code::BadInput, m.into()),
            AppError::NotFound(m) => (StatusCode::NOT_FOUND, Code::BadInput, m.into()),
            AppError::Conflict(m) => (StatusCode::CONFLICT, Code::BadInput, m.into()),
            AppError::PayloadTooLarge(m) => {
                (StatusCode::PAYLOAD_TOO_LARGE, Code::BadInput, m.into())
            }
            AppError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                Code::BadInput,
                "method not allowed for this path".into(),
            ),
            AppError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, Code::Auth, m.into()),
            AppError::Forbidden(m) => (StatusCode::FORBIDDEN, Code::Auth, m.into()),
            AppError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                Code::ServerError,
                "service unavailable, try again later".into(),
            ),
            AppError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                Code::ServerError,
                "internal server error".into(),
            ),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        // The response is built inside the request's span, so these lines carry the request id.
        match &self {
            AppError::Internal(err) => {
                tracing::error!(error = format!("{err:#}"), "request failed")
            }
            AppError::Unavailable(detail) => tracing::warn!(detail, "service unavailable"),
            _ => {}
        }
        let (status, code, message) = self.parts();
        let mut response = Envelope::<()>::error(code, message.into_owned()).into_response();
        *response.status_mut() = status;
        response
    }
}
