//! HTTP to the server: the SPEC §10 envelope, bearer auth, and retries with backoff.
//!
//! Transport errors and 5xx answers are retried after [`BACKOFF`] delays (the server may be
//! restarting or overloaded); after the last one the call fails with `Offline` and nothing local
//! has changed. 401/403 are `Unauthorized` (the app refreshes the token); other 4xx answers are
//! returned to the caller, which knows what they mean for its request.

use super::error::{DeviceError, Result};
use reqwest::blocking::{Client, RequestBuilder};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::time::Duration;

/// Waits between attempts of a failing request.
pub(crate) const BACKOFF: [Duration; 3] = [
    Duration::from_millis(200),
    Duration::from_millis(600),
    Duration::from_millis(1800),
];

/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(60);

/// An answer that was not a success: the HTTP status and the envelope (if it parsed).
#[derive(Debug)]
pub(crate) struct Rejected {
    pub status: u16,
    pub body: Value,
}

impl Rejected {
    /// The refusal code in the envelope's `data` (upload refusals, core refusals).
    pub fn code(&self) -> Option<&str> {
        self.body.get("data")?.get("code")?.as_str()
    }

    pub fn into_error(self) -> DeviceError {
        let message = format!(
            "server answered {} ({})",
            self.status,
            self.code()
                .or_else(|| self.body.get("message").and_then(Value::as_str))
                .unwrap_or("no detail")
        );
        match self.status {
            401 | 403 => DeviceError::Unauthorized { message },
            _ => DeviceError::InvalidInput { message },
        }
    }
}

/// Where and as whom to talk to the server.
#[derive(Clone, Debug)]
pub(crate) struct Endpoint {
    pub base: String,
    pub token: String,
    pub lang: &'static str,
}

impl Endpoint {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base.trim_end_matches('/'))
    }
}

/// A client for blocking calls (created lazily: reqwest's blocking client must not be built or
/// dropped on an async runtime thread).
pub(crate) fn client() -> Result<Client> {
    Client::builder()
        .timeout(TIMEOUT)
        .build()
        .map_err(|e| DeviceError::offline(format!("http client: {e}")))
}

/// Sends the request `build` makes, retrying transport errors and 5xx answers. `Ok(Err(..))`
/// is a 4xx answer other than 401/403.
pub(crate) fn send(
    build: &dyn Fn() -> RequestBuilder,
) -> Result<std::result::Result<Value, Rejected>> {
    let mut last = String::new();
    for attempt in 0..=BACKOFF.len() {
        if attempt > 0 {
            std::thread::sleep(BACKOFF[attempt - 1]);
        }
        let response = match build().send() {
            Ok(r) => r,
            Err(e) => {
                // reqwest's error text names the URL, never a body.
                last = format!("transport: {e}");
                continue;
            }
        };
        let status = response.status().as_u16();
        let body: Value = response.json().unwrap_or(Value::Null);
        if status >= 500 {
            last = format!("server error {status}");
            continue;
        }
        if (200..300).contains(&status) {
            return Ok(Ok(body.get("data").cloned().unwrap_or(Value::Null)));
        }
        let rejected = Rejected { status, body };
        if matches!(status, 401 | 403) {
            return Err(rejected.into_error());
        }
        return Ok(Err(rejected));
    }
    Err(DeviceError::offline(last))
}

/// `POST path` with a JSON body; the envelope's `data`, decoded.
pub(crate) fn post<B: Serialize, R: DeserializeOwned>(
    client: &Client,
    endpoint: &Endpoint,
    path: &str,
    body: &B,
) -> Result<R> {
    let url = endpoint.url(path);
    let body = serde_json::to_vec(body).map_err(|e| DeviceError::storage(e.to_string()))?;
    let data = send(&|| {
        client
            .post(&url)
            .bearer_auth(&endpoint.token)
            .header("accept-language", endpoint.lang)
            .header("content-type", "application/json")
            .body(body.clone())
    })?
    .map_err(Rejected::into_error)?;
    serde_json::from_value(data)
        .map_err(|e| DeviceError::offline(format!("unexpected answer from {path}: {e}")))
}
