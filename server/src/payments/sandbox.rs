//! The sandbox payment platform, served by this server itself (SPEC §9, standalone default).
//!
//! It behaves like an outside platform: it keeps its own records of the payments it was asked
//! to create (JSON files under `<data_dir>/sandbox/payments/`, so they survive restarts), its
//! payment links point at `/sandbox/pay/{payment_id}` (pages in `handlers::payments`), and it
//! reports results by posting a signed callback to `/payments/callback` over real HTTP — the
//! same path a real platform's callback takes. The webhook secret is generated on first start
//! and kept in `<data_dir>/sandbox-webhook-secret` (mode 0600).
//!
//! It is a single-machine tool: with several server instances, use a real platform (its records
//! live in one instance's data directory).

use super::signature;
use super::{
    BoxFuture, CallbackError, CallbackEvent, CreatedPayment, PaymentProvider, PaymentRequest,
    PaymentResult, PaymentState, ProviderError, RefundOutcome, RefundRequest,
};
use crate::auth::{create_private_file_once, tighten_permissions};
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use p256::elliptic_curve::rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use sop_core::ids::PaymentId;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The file holding the webhook secret, in the data directory.
pub const WEBHOOK_SECRET_FILE: &str = "sandbox-webhook-secret";

/// How long the sandbox waits for the callback endpoint to answer.
const CALLBACK_TIMEOUT: Duration = Duration::from_secs(10);

/// What the payer chose on the sandbox page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SandboxResult {
    Success,
    Failure,
}

impl SandboxResult {
    /// From the form field `result` (`success` or `failure`).
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "success" => Some(Self::Success),
            "failure" => Some(Self::Failure),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }
}

/// The sandbox's record of one payment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxPayment {
    pub payment_id: PaymentId,
    pub amount: i64,
    pub currency: String,
    pub case_reference: String,
    pub callback_url: String,
    pub created_at: DateTime<Utc>,
    /// What the payer chose, if anything yet.
    pub result: Option<SandboxResult>,
    pub refunded: bool,
}

/// The callback body the sandbox posts (and the only one it verifies).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackBody {
    pub payment_id: PaymentId,
    /// `success` or `failure`.
    pub status: String,
    pub amount: i64,
    pub currency: String,
    pub timestamp: DateTime<Utc>,
}

/// Why a result could not be set on a sandbox payment.
#[derive(Debug, thiserror::Error)]
pub enum SettleError {
    #[error("no such payment")]
    NotFound,
    #[error("the payment already succeeded")]
    AlreadyPaid,
    #[error("sandbox storage: {0}")]
    Io(#[from] std::io::Error),
}

/// Why a callback did not reach the server.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Network trouble or a 5xx/408/429 answer: worth retrying.
    #[error("callback not delivered: {0}")]
    Transient(String),
    /// The server answered with this 4xx status: retrying would get the same answer.
    #[error("callback refused with HTTP {0}")]
    Refused(u16),
    #[error("no such sandbox payment")]
    UnknownPayment,
}

/// The webhook secret; never printed.
struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The sandbox platform.
#[derive(Debug)]
pub struct Sandbox {
    public_url: String,
    secret: Secret,
    records: PathBuf,
    client: reqwest::Client,
    /// Serializes read-modify-write of records within this process.
    lock: tokio::sync::Mutex<()>,
}

impl Sandbox {
    /// The sandbox of a data directory (which must exist), linking under `public_url`. The
    /// webhook secret is loaded or created there; if that fails (an unwritable directory), the
    /// error is logged and a secret for this run only is used, so callbacks still verify.
    pub fn new(data_dir: &Path, public_url: &str) -> Self {
        let secret = load_or_create_secret(data_dir).unwrap_or_else(|e| {
            tracing::error!(
                error = %e,
                "cannot keep the sandbox webhook secret in the data directory; using one for this run only"
            );
            random_secret().into_bytes()
        });
        Self {
            public_url: public_url.trim_end_matches('/').to_owned(),
            secret: Secret(secret),
            records: data_dir.join("sandbox").join("payments"),
            client: reqwest::Client::builder()
                .timeout(CALLBACK_TIMEOUT)
                .build()
                .unwrap_or_default(),
            lock: tokio::sync::Mutex::new(()),
        }
    }

    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// The payment link of an attempt.
    pub fn link(&self, payment_id: PaymentId) -> String {
        format!("{}/sandbox/pay/{payment_id}", self.public_url)
    }

    /// The sandbox's record of a payment, if it created one.
    pub async fn payment(&self, payment_id: PaymentId) -> std::io::Result<Option<SandboxPayment>> {
        let path = self.record_path(payment_id);
        match tokio::fs::read(&path).await {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(std::io::Error::other),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Records what the payer chose. A failed payment may still succeed later (a late success,
    /// SPEC §5); a succeeded one stays succeeded. Choosing the same result again is allowed (the
    /// callback is sent again, and the server treats it as a repeat).
    pub async fn settle(
        &self,
        payment_id: PaymentId,
        result: SandboxResult,
    ) -> Result<SandboxPayment, SettleError> {
        let _guard = self.lock.lock().await;
        let mut payment = self
            .payment(payment_id)
            .await?
            .ok_or(SettleError::NotFound)?;
        if payment.result == Some(SandboxResult::Success) && result == SandboxResult::Failure {
            return Err(SettleError::AlreadyPaid);
        }
        payment.result = Some(result);
        self.write(&payment).await?;
        Ok(payment)
    }

    /// Posts the signed callback of `result` for `payment` to its callback URL.
    pub async fn send_callback(
        &self,
        payment: &SandboxPayment,
        result: SandboxResult,
    ) -> Result<(), SendError> {
        let now = Utc::now();
        let body = CallbackBody {
            payment_id: payment.payment_id,
            status: result.as_str().to_owned(),
            amount: payment.amount,
            currency: payment.currency.clone(),
            timestamp: now,
        };
        let body = serde_json::to_vec(&body).map_err(|e| SendError::Transient(e.to_string()))?;
        let header = signature::header_value(&self.secret.0, now.timestamp(), &body);
        let response = self
            .client
            .post(&payment.callback_url)
            .header(signature::HEADER, header)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| SendError::Transient(e.to_string()))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else if status.is_server_error()
            || status == reqwest::StatusCode::REQUEST_TIMEOUT
            || status == reqwest::StatusCode::TOO_MANY_REQUESTS
        {
            Err(SendError::Transient(format!("HTTP {}", status.as_u16())))
        } else {
            Err(SendError::Refused(status.as_u16()))
        }
    }

    /// Sends the callback of `result` for a payment by id again (the outbox's retry).
    pub async fn resend_callback(
        &self,
        payment_id: PaymentId,
        result: SandboxResult,
    ) -> Result<(), SendError> {
        let payment = self
            .payment(payment_id)
            .await
            .map_err(|e| SendError::Transient(e.to_string()))?
            .ok_or(SendError::UnknownPayment)?;
        self.send_callback(&payment, result).await
    }

    fn record_path(&self, payment_id: PaymentId) -> PathBuf {
        self.records.join(format!("{}.json", payment_id.0.simple()))
    }

    /// Writes a record atomically (temporary file, then rename).
    async fn write(&self, payment: &SandboxPayment) -> std::io::Result<()> {
        tokio::fs::create_dir_all(&self.records).await?;
        let path = self.record_path(payment.payment_id);
        let tmp = path.with_extension(format!("{}.tmp", uuid::Uuid::new_v4().simple()));
        let bytes = serde_json::to_vec_pretty(payment).map_err(std::io::Error::other)?;
        tokio::fs::write(&tmp, bytes).await?;
        tokio::fs::rename(&tmp, &path).await
    }

    async fn create(&self, request: &PaymentRequest) -> std::io::Result<CreatedPayment> {
        let _guard = self.lock.lock().await;
        if self.payment(request.payment_id).await?.is_none() {
            self.write(&SandboxPayment {
                payment_id: request.payment_id,
                amount: request.amount,
                currency: request.currency.clone(),
                case_reference: request.case_reference.clone(),
                callback_url: request.callback_url.clone(),
                created_at: Utc::now(),
                result: None,
                refunded: false,
            })
            .await?;
        }
        Ok(CreatedPayment {
            provider_ref: request.payment_id.to_string(),
            link: self.link(request.payment_id),
        })
    }

    /// The sandbox refunds any payment it knows (it moves no real money); an unknown one is
    /// declined.
    async fn refund_payment(&self, request: &RefundRequest) -> std::io::Result<RefundOutcome> {
        let _guard = self.lock.lock().await;
        let Some(mut payment) = self.payment(request.payment_id).await? else {
            return Ok(RefundOutcome::Failed {
                reason: "unknown payment".to_owned(),
            });
        };
        if !payment.refunded {
            payment.refunded = true;
            self.write(&payment).await?;
        }
        Ok(RefundOutcome::Refunded)
    }

    async fn state_of(&self, payment_id: PaymentId) -> std::io::Result<PaymentState> {
        Ok(match self.payment(payment_id).await? {
            None => PaymentState::Unknown,
            Some(p) => match p.result {
                None => PaymentState::Pending,
                Some(SandboxResult::Success) => PaymentState::Succeeded {
                    amount: p.amount,
                    currency: p.currency,
                },
                Some(SandboxResult::Failure) => PaymentState::Failed,
            },
        })
    }
}

fn provider_error(e: std::io::Error) -> ProviderError {
    ProviderError(format!("sandbox storage: {e}"))
}

impl PaymentProvider for Sandbox {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    fn create_payment<'a>(
        &'a self,
        request: &'a PaymentRequest,
    ) -> BoxFuture<'a, Result<CreatedPayment, ProviderError>> {
        Box::pin(async move { self.create(request).await.map_err(provider_error) })
    }

    fn refund<'a>(
        &'a self,
        request: &'a RefundRequest,
    ) -> BoxFuture<'a, Result<RefundOutcome, ProviderError>> {
        Box::pin(async move { self.refund_payment(request).await.map_err(provider_error) })
    }

    fn status(&self, payment_id: PaymentId) -> BoxFuture<'_, Result<PaymentState, ProviderError>> {
        Box::pin(async move { self.state_of(payment_id).await.map_err(provider_error) })
    }

    fn verify_callback(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<CallbackEvent, CallbackError> {
        verify_signed_callback(&self.secret.0, headers, body, now)
    }

    fn sandbox(&self) -> Option<&Sandbox> {
        Some(self)
    }
}

/// Checks a callback signed with `secret` ([`signature`]) and decodes its [`CallbackBody`]. The
/// sandbox and the HTTP platform client share this format (`docs/adr/0007-platform-clients.md`).
pub fn verify_signed_callback(
    secret: &[u8],
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<CallbackEvent, CallbackError> {
    let header = headers.get(signature::HEADER).and_then(|v| v.to_str().ok());
    signature::verify(secret, header, body, now)?;
    // serde's messages may quote the body, so the reason stays generic.
    let body: CallbackBody = serde_json::from_slice(body)
        .map_err(|_| CallbackError::Malformed("invalid callback JSON".to_owned()))?;
    let result = match SandboxResult::parse(&body.status) {
        Some(SandboxResult::Success) => PaymentResult::Success {
            amount: body.amount,
            currency: body.currency,
        },
        Some(SandboxResult::Failure) => PaymentResult::Failure,
        None => {
            return Err(CallbackError::Malformed(
                "status must be success or failure".to_owned(),
            ));
        }
    };
    Ok(CallbackEvent {
        payment_id: body.payment_id,
        result,
        timestamp: body.timestamp,
    })
}

/// 32 random bytes as hex: the secret is kept as text so tools can read it.
fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Reads `<data_dir>/sandbox-webhook-secret`, creating it (0600) on first use.
fn load_or_create_secret(data_dir: &Path) -> std::io::Result<Vec<u8>> {
    let path = data_dir.join(WEBHOOK_SECRET_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => {
            tighten_permissions(&path);
            return Ok(text.trim().as_bytes().to_vec());
        }
        Ok(_) => {
            return Err(std::io::Error::other(format!(
                "{} is empty",
                path.display()
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    if create_private_file_once(&path, random_secret().as_bytes())? {
        tracing::info!(path = %path.display(), "generated the sandbox webhook secret");
    }
    Ok(std::fs::read_to_string(&path)?.trim().as_bytes().to_vec())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a failing test should panic loudly
mod tests {
    use super::*;

    fn request(payment_id: PaymentId) -> PaymentRequest {
        PaymentRequest {
            payment_id,
            amount: 150_000,
            currency: "SAR".to_owned(),
            case_reference: "SOP-ABCDEF12".to_owned(),
            callback_url: "http://127.0.0.1:9/payments/callback".to_owned(),
        }
    }

    #[test]
    fn the_secret_is_created_once_with_mode_0600_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_secret(dir.path()).unwrap();
        let second = load_or_create_secret(dir.path()).unwrap();
        assert_eq!(first, second);
        assert_eq!(first.len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(WEBHOOK_SECRET_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[tokio::test]
    async fn records_follow_create_settle_refund() {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = Sandbox::new(dir.path(), "http://sop.test/");
        let id = PaymentId::new_v7();
        assert_eq!(sandbox.status(id).await, Ok(PaymentState::Unknown));

        let created = sandbox.create_payment(&request(id)).await.unwrap();
        assert_eq!(created.link, format!("http://sop.test/sandbox/pay/{id}"));
        // Creating again (a redelivered outbox row) answers the same link.
        assert_eq!(sandbox.create_payment(&request(id)).await.unwrap(), created);
        assert_eq!(sandbox.status(id).await, Ok(PaymentState::Pending));

        sandbox.settle(id, SandboxResult::Failure).await.unwrap();
        assert_eq!(sandbox.status(id).await, Ok(PaymentState::Failed));
        sandbox.settle(id, SandboxResult::Success).await.unwrap();
        assert!(matches!(
            sandbox.settle(id, SandboxResult::Failure).await,
            Err(SettleError::AlreadyPaid)
        ));
        assert_eq!(
            sandbox.status(id).await,
            Ok(PaymentState::Succeeded {
                amount: 150_000,
                currency: "SAR".to_owned()
            })
        );

        let refund = RefundRequest {
            payment_id: id,
            amount: 150_000,
            currency: "SAR".to_owned(),
            idempotency_key: format!("refund:{id}"),
        };
        assert_eq!(sandbox.refund(&refund).await, Ok(RefundOutcome::Refunded));
        assert!(sandbox.payment(id).await.unwrap().unwrap().refunded);
        let unknown = RefundRequest {
            payment_id: PaymentId::new_v7(),
            ..refund
        };
        assert!(matches!(
            sandbox.refund(&unknown).await,
            Ok(RefundOutcome::Failed { .. })
        ));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = Sandbox::new(dir.path(), "http://sop.test");
        let secret = std::fs::read_to_string(dir.path().join(WEBHOOK_SECRET_FILE)).unwrap();
        assert!(!format!("{sandbox:?}").contains(secret.trim()));
    }
}
