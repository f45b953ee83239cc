//! The HTTP plumbing shared by the clients of the outside services (payment platform, profiles,
//! push; SPEC §9, `docs/adr/0007-platform-clients.md`).
//!
//! [`Service`] is one configured service: base URL, API key (sent as `Authorization: Bearer`),
//! and a reqwest client with a timeout. Every call answers either a decoded JSON answer or an
//! [`OutboundError`] saying whether trying again may help: network errors, timeouts, 408, 429
//! and 5xx are [`OutboundError::Transient`] (the outbox retries them with the same idempotency
//! key); other 4xx are [`OutboundError::Rejected`]. Errors name the service, the status and
//! the path only — never a request or response body, which could carry personal data.

use crate::config::{SecretString, SecretUrl};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// The header carrying the idempotency key of a call that must take effect once.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// Why a call failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    /// Worth retrying: no answer, a timeout, 408, 429 or 5xx.
    #[error("{0}")]
    Transient(String),
    /// The service answered this 4xx status: the same call would get the same answer.
    #[error("{service} answered HTTP {status} to {path}")]
    Rejected {
        service: &'static str,
        status: u16,
        path: String,
    },
}

impl OutboundError {
    /// The HTTP status of a rejection.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Rejected { status, .. } => Some(*status),
            Self::Transient(_) => None,
        }
    }
}

/// One outside service.
#[derive(Clone, Debug)]
pub struct Service {
    name: &'static str,
    base: SecretUrl,
    api_key: Option<SecretString>,
    client: reqwest::Client,
}

impl Service {
    /// The service `name` (for logs) at `base`, calls timing out after `timeout`.
    pub fn new(
        name: &'static str,
        base: SecretUrl,
        api_key: Option<SecretString>,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()?;
        Ok(Self {
            name,
            base,
            api_key,
            client,
        })
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// `POST base/path` with the JSON `body` and `idempotency_key`, for calls that must take
    /// effect once and whose answer is not used (an invoice, a push). A 2xx answer must still
    /// be JSON or empty; errors are those of [`Service::call`].
    pub async fn post_keyed<B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
        idempotency_key: &str,
    ) -> Result<(), OutboundError> {
        self.call::<_, serde_json::Value>(
            Method::POST,
            path,
            Some(body),
            Some(idempotency_key),
            false,
        )
        .await
        .map(|_| ())
    }

    /// `method base/path` with an optional JSON body and idempotency key; the answer decoded as
    /// `A`. A 404 is returned as `Ok(None)` when `not_found_is_none`, for lookups.
    pub async fn call<B: Serialize + ?Sized, A: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        idempotency_key: Option<&str>,
        not_found_is_none: bool,
    ) -> Result<Option<A>, OutboundError> {
        let url = format!("{}{path}", self.base.expose().trim_end_matches('/'));
        let mut request = self.client.request(method, url);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key.expose());
        }
        if let Some(key) = idempotency_key {
            request = request.header(IDEMPOTENCY_HEADER, key);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| {
            // reqwest's message may name the URL; its kind is enough and keeps credentials out.
            let kind = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "cannot connect"
            } else {
                "request failed"
            };
            OutboundError::Transient(format!("{}: {path}: {kind}", self.name))
        })?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND && not_found_is_none {
            return Ok(None);
        }
        if status.is_server_error()
            || status == StatusCode::REQUEST_TIMEOUT
            || status == StatusCode::TOO_MANY_REQUESTS
        {
            return Err(OutboundError::Transient(format!(
                "{} answered HTTP {} to {path}",
                self.name,
                status.as_u16()
            )));
        }
        if !status.is_success() {
            return Err(OutboundError::Rejected {
                service: self.name,
                status: status.as_u16(),
                path: path.to_owned(),
            });
        }
        let bytes = response.bytes().await.map_err(|_| {
            OutboundError::Transient(format!("{}: {path}: answer cut short", self.name))
        })?;
        // An empty 2xx answer decodes as JSON null (for calls whose answer we ignore).
        let text: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
        serde_json::from_slice(text).map(Some).map_err(|_| {
            OutboundError::Transient(format!("{}: {path}: answer not understood", self.name))
        })
    }
}
