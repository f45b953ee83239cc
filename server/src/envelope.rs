//! The response envelope of SPEC §10: `{ "status": code, "message": text, "data"?: …,
//! "pagination"?: {total, page, page_size} }`.
//!
//! Handlers answer success with [`ok`] or [`ok_page`]; errors go through
//! [`AppError`](crate::error::AppError), which builds the error envelope in one place.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Serialize, Serializer};

/// The envelope `status` codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// 1000: success (HTTP 200).
    Success,
    /// 1001: server error (HTTP 500/503).
    ServerError,
    /// 1002: bad input, not found or conflict (HTTP 400/404/409, also 405/413).
    BadInput,
    /// 2000: unauthorized or forbidden (HTTP 401/403).
    Auth,
}

impl Code {
    /// The number on the wire.
    pub fn as_u16(self) -> u16 {
        match self {
            Code::Success => 1000,
            Code::ServerError => 1001,
            Code::BadInput => 1002,
            Code::Auth => 2000,
        }
    }
}

impl Serialize for Code {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u16(self.as_u16())
    }
}

/// The `pagination` object of a paged list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Pagination {
    /// Number of items across all pages.
    pub total: u64,
    /// The page returned, from 1.
    pub page: u32,
    /// The page size used.
    pub page_size: u32,
}

/// The message of every success envelope.
pub const SUCCESS_MESSAGE: &str = "success";

/// A response envelope. Its `IntoResponse` answers HTTP 200 with the JSON body; error envelopes
/// get their status from [`AppError`](crate::error::AppError).
#[derive(Clone, Debug, Serialize)]
pub struct Envelope<T> {
    status: Code,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pagination: Option<Pagination>,
}

impl<T> Envelope<T> {
    /// An error envelope without data (used by `AppError`).
    pub(crate) fn error(code: Code, message: String) -> Self {
        Self {
            status: code,
            message,
            data: None,
            pagination: None,
        }
    }

    /// An error envelope with data (a refusal's code and messages).
    pub(crate) fn error_with_data(code: Code, message: String, data: T) -> Self {
        Self {
            status: code,
            message,
            data: Some(data),
            pagination: None,
        }
    }

    /// Replaces the success message (e.g. with a localized confirmation).
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }
}

/// A success envelope carrying `data`.
pub fn ok<T: Serialize>(data: T) -> Envelope<T> {
    Envelope {
        status: Code::Success,
        message: SUCCESS_MESSAGE.to_owned(),
        data: Some(data),
        pagination: None,
    }
}

/// A success envelope carrying one page of a list and its `pagination`.
pub fn ok_page<T: Serialize>(data: Vec<T>, pagination: Pagination) -> Envelope<Vec<T>> {
    Envelope {
        status: Code::Success,
        message: SUCCESS_MESSAGE.to_owned(),
        data: Some(data),
        pagination: Some(pagination),
    }
}

impl<T: Serialize> IntoResponse for Envelope<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self) {
            Ok(body) => (
                StatusCode::OK,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                body,
            )
                .into_response(),
            Err(err) => {
                // Only a bug in a `Serialize` impl gets here; answer the generic 1001 envelope.
                tracing::error!(error = %err, "failed to serialize a response");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    [(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    )],
                    r#"{"status":1001,"message":"internal server error"}"#,
                )
                    .into_response()
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a failing test should panic loudly
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn success_envelope_shape() {
        let v = serde_json::to_value(ok(json!({"a": 1}))).expect("serializes");
        assert_eq!(
            v,
            json!({"status": 1000, "message": "success", "data": {"a": 1}})
        );
    }

    #[test]
    fn paged_envelope_shape() {
        let page = Pagination {
            total: 31,
            page: 2,
            page_size: 15,
        };
        let v = serde_json::to_value(ok_page(vec![1, 2], page)).expect("serializes");
        assert_eq!(
            v,
            json!({"status": 1000, "message": "success", "data": [1, 2],
                   "pagination": {"total": 31, "page": 2, "page_size": 15}})
        );
    }

    #[test]
    fn error_envelope_has_no_data() {
        let v = serde_json::to_value(Envelope::<()>::error(Code::Auth, "no".into()))
            .expect("serializes");
        assert_eq!(v, json!({"status": 2000, "message": "no"}));
    }
}
