//! The one error type of the HTTP layer and its mapping to the SPEC §10 envelope.
//!
//! Handlers return `Result<_, AppError>`. [`AppError::parts`] is the single place that decides
//! the HTTP status, the envelope code and the message of every error; change it there only.
//! Server-side failures (`Internal`, `Unavailable`) answer a generic message and log the detail;
//! nothing here ever logs a request body.

use crate::envelope::{Code, Envelope};
use crate::store::StoreError;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sop_core::Refusal;
use sop_core::lang::Lang;
use sop_core::refusal::RefusalClass;
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
    /// A command or write refused by the core rules. Status and code follow the refusal's class
    /// (404/409/400 → 1002, 403 → 2000); the body carries the stable code and both messages, and
    /// [`localize_refusals`] puts the Arabic message in `message` when the request asked for it.
    #[error("refused: {}", .0.code)]
    Refused(Refusal),
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

impl From<Refusal> for AppError {
    fn from(refusal: Refusal) -> Self {
        AppError::Refused(refusal)
    }
}

impl From<StoreError> for AppError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Refused(refusal) => AppError::Refused(refusal),
            StoreError::Conflict => {
                AppError::Conflict("the case was changed by another request; try again".to_owned())
            }
            StoreError::Corrupt(detail) => {
                AppError::Internal(anyhow::anyhow!("corrupt stored data: {detail}"))
            }
            StoreError::Db(e) => AppError::from(e),
        }
    }
}

/// The body `data` of a refusal: the stable code and the reason in both languages.
#[derive(serde::Serialize)]
struct RefusalData<'a> {
    code: &'a str,
    message_en: &'a str,
    message_ar: &'a str,
}

fn refusal_response(refusal: &Refusal, lang: Lang) -> Response {
    let (status, code, _) = AppError::Refused(refusal.clone()).parts();
    let message = lang
        .pick(&refusal.message_en, &refusal.message_ar)
        .to_owned();
    let data = RefusalData {
        code: refusal.code.as_str(),
        message_en: &refusal.message_en,
        message_ar: &refusal.message_ar,
    };
    let mut response = Envelope::error_with_data(code, message, data).into_response();
    *response.status_mut() = status;
    response.extensions_mut().insert(refusal.clone());
    response
}

/// Middleware: answers refusals in the language of the request's `lang` header.
pub async fn localize_refusals(request: Request, next: Next) -> Response {
    let value = request.headers().get("lang").and_then(|v| v.to_str().ok());
    let lang = Lang::from_header(value);
    let response = next.run(request).await;
    match (lang, response.extensions().get::<Refusal>()) {
        (Lang::Ar, Some(refusal)) => refusal_response(&refusal.clone(), lang),
        _ => response,
    }
}

impl AppError {
    /// The HTTP status, envelope code and caller-facing message of this error.
    pub fn parts(&self) -> (StatusCode, Code, Cow<'_, str>) {
        match self {
            AppError::Refused(r) => {
                let status = match r.class() {
                    RefusalClass::NotFound => StatusCode::NOT_FOUND,
                    RefusalClass::Forbidden => StatusCode::FORBIDDEN,
                    RefusalClass::Conflict => StatusCode::CONFLICT,
                    RefusalClass::Invalid => StatusCode::BAD_REQUEST,
                };
                let code = if status == StatusCode::FORBIDDEN {
                    Code::Auth
                } else {
                    Code::BadInput
                };
                (status, code, r.message_en.as_str().into())
            }
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
            AppError::Refused(refusal) => return refusal_response(refusal, Lang::En),
            _ => {}
        }
        let (status, code, message) = self.parts();
        let mut response = Envelope::<()>::error(code, message.into_owned()).into_response();
        *response.status_mut() = status;
        response
    }
}
