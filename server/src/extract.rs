//! Our own request extractors, so that every malformed request is answered with our envelope and
//! a clear message (400/413, code 1002) instead of axum's plain-text rejections.
//!
//! - [`Json<T>`]: a JSON body is required (`Content-Type: application/json`).
//! - [`JsonOrEmpty<T>`]: like `Json<T>`, but an empty body means `T::default()`, for endpoints
//!   whose fields are all optional (clients often POST them without a body).
//!
//! Unknown fields are ignored (serde's default; never add `deny_unknown_fields` to request types).
//! A body must be a JSON object: serde would also build a struct from an array of its field
//! values in order (`["<case id>"]`), a shape no client means and the API does not document.
//! Bodies are limited to [`JSON_BODY_LIMIT`] by the router; a route that needs more (uploads)
//! sets its own `DefaultBodyLimit`.

use crate::error::AppError;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

/// The largest request body accepted by default: 1 MiB.
pub const JSON_BODY_LIMIT: usize = 1024 * 1024;

/// A JSON request body (an object), rejected with our envelope.
#[derive(Clone, Copy, Debug, Default)]
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !has_json_content_type(req.headers()) {
            return Err(AppError::BadRequest(MISSING_JSON_CONTENT_TYPE.to_owned()));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(AppError::from)?;
        from_object(&bytes).map(Self)
    }
}

/// A JSON request body that may also be empty (then `T::default()`).
#[derive(Clone, Copy, Debug, Default)]
pub struct JsonOrEmpty<T>(pub T);

impl<S, T> FromRequest<S> for JsonOrEmpty<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Default,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json_content = has_json_content_type(req.headers());
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(AppError::from)?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        if !json_content {
            return Err(AppError::BadRequest(MISSING_JSON_CONTENT_TYPE.to_owned()));
        }
        from_object(&bytes).map(Self)
    }
}

const MISSING_JSON_CONTENT_TYPE: &str = "Expected request with `Content-Type: application/json`";

const NOT_AN_OBJECT: &str = "The request body must be a JSON object";

/// `T` from a body that must be a JSON object (see the module doc), with the messages of
/// [`Json`]; for extractors that read the bytes themselves (the sync API's larger bodies).
pub fn from_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(AppError::BadRequest(NOT_AN_OBJECT.to_owned()));
    }
    let axum::Json(value) = axum::Json::<T>::from_bytes(bytes)?;
    Ok(value)
}

/// `application/json` or `application/<something>+json`, parameters ignored.
fn has_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn too_large() -> AppError {
    AppError::PayloadTooLarge(format!(
        "request body is larger than the limit of {JSON_BODY_LIMIT} bytes (1 MiB)"
    ))
}

impl From<JsonRejection> for AppError {
    fn from(rejection: JsonRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return too_large();
        }
        // axum's texts are precise and never echo the body: "Failed to parse the request body as
        // JSON: ...", "Failed to deserialize the JSON body into the target type: field: ...",
        // "Expected request with `Content-Type: application/json`".
        AppError::BadRequest(rejection.body_text())
    }
}

impl From<BytesRejection> for AppError {
    fn from(rejection: BytesRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return too_large();
        }
        AppError::BadRequest(rejection.body_text())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a failing test should panic loudly
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::extract::DefaultBodyLimit;
    use axum::routing::post;
    use http_body_util::BodyExt;
    use serde::Deserialize;
    use serde_json::Value;
    use tower::ServiceExt;

    #[derive(Debug, Default, Deserialize)]
    struct Payload {
        n: u32,
        #[serde(default)]
        name: Option<String>,
    }

    fn router() -> Router {
        Router::new()
            .route(
                "/strict",
                post(|Json(p): Json<Payload>| async move { format!("{}:{:?}", p.n, p.name) }),
            )
            .route(
                "/lenient",
                post(|JsonOrEmpty(p): JsonOrEmpty<Payload>| async move { p.n.to_string() }),
            )
            .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
    }

    async fn send(path: &str, content_type: Option<&str>, body: impl Into<Body>) -> (u16, Value) {
        let mut req = Request::post(path);
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        let req = req.body(body.into()).expect("request");
        let resp = router().oneshot(req).await.expect("infallible");
        let status = resp.status().as_u16();
        let is_json = has_json_content_type(resp.headers());
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        let value = if is_json {
            serde_json::from_slice(&bytes).expect("a JSON response parses")
        } else {
            Value::String(String::from_utf8_lossy(&bytes).into_owned())
        };
        (status, value)
    }

    const JSON: Option<&str> = Some("application/json");

    fn assert_bad_input(status: u16, body: &Value, expected_status: u16, needle: &str) {
        assert_eq!(status, expected_status, "{body}");
        assert_eq!(body["status"], 1002, "{body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{message:?} lacks {needle:?}");
    }

    #[tokio::test]
    async fn valid_body_with_unknown_fields_is_accepted() {
        let (status, body) = send("/strict", JSON, r#"{"n": 3, "extra": [1, 2]}"#).await;
        assert_eq!((status, body), (200, Value::String("3:None".into())));
    }

    #[tokio::test]
    async fn syntax_error_is_a_400_envelope() {
        let (status, body) = send("/strict", JSON, r#"{"n": "#).await;
        assert_bad_input(status, &body, 400, "parse the request body as JSON");
    }

    #[tokio::test]
    async fn missing_field_is_named() {
        let (status, body) = send("/strict", JSON, r#"{"name": "x"}"#).await;
        assert_bad_input(status, &body, 400, "missing field `n`");
    }

    #[tokio::test]
    async fn wrong_type_names_the_field() {
        let (status, body) = send("/strict", JSON, r#"{"n": "three"}"#).await;
        assert_bad_input(status, &body, 400, "n: invalid type");
    }

    #[tokio::test]
    async fn a_body_that_is_not_an_object_is_refused_even_if_it_fits_the_struct() {
        // serde reads `Payload` from `[3]` (its fields in order); the API takes objects only.
        for body in ["[3]", "[3, \"x\"]", "[]", "null", "3", "\"n\"", ""] {
            let (status, reply) = send("/strict", JSON, body).await;
            assert_bad_input(status, &reply, 400, "must be a JSON object");
        }
        for body in ["[3]", "null", "3"] {
            let (status, reply) = send("/lenient", JSON, body).await;
            assert_bad_input(status, &reply, 400, "must be a JSON object");
        }
    }

    #[tokio::test]
    async fn missing_content_type_is_a_400_envelope() {
        let (status, body) = send("/strict", None, r#"{"n": 1}"#).await;
        assert_bad_input(status, &body, 400, "Content-Type: application/json");
        let (status, body) = send("/strict", Some("text/plain"), r#"{"n": 1}"#).await;
        assert_bad_input(status, &body, 400, "Content-Type: application/json");
    }

    #[tokio::test]
    async fn oversized_body_names_the_limit() {
        let big = format!(r#"{{"n": 1, "name": "{}"}}"#, "x".repeat(JSON_BODY_LIMIT));
        let (status, body) = send("/strict", JSON, big.clone()).await;
        assert_bad_input(status, &body, 413, "1048576 bytes (1 MiB)");
        let (status, body) = send("/lenient", JSON, big).await;
        assert_bad_input(status, &body, 413, "1 MiB");
    }

    #[tokio::test]
    async fn lenient_accepts_empty_body_and_checks_the_rest() {
        assert_eq!(send("/lenient", None, "").await, (200, Value::from("0")));
        assert_eq!(send("/lenient", JSON, " \n").await, (200, Value::from("0")));
        assert_eq!(
            send(
                "/lenient",
                Some("application/json; charset=utf-8"),
                r#"{"n": 7}"#
            )
            .await,
            (200, Value::from("7"))
        );
        let (status, body) = send("/lenient", None, r#"{"n": 7}"#).await;
        assert_bad_input(status, &body, 400, "Content-Type");
        let (status, body) = send("/lenient", JSON, "[").await;
        assert_bad_input(status, &body, 400, "JSON");
    }
}
