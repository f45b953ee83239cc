//! The payment platform (SPEC §5, §9) behind the [`PaymentProvider`] trait, and how its answers
//! reach the case rules.
//!
//! - [`PaymentProvider`]: create a payment and its link, refund, ask for a payment's status,
//!   verify a result callback. Object-safe (`Arc<dyn PaymentProvider>` in `AppState.payments`),
//!   async methods return boxed futures. The built-in [`Sandbox`] is the standalone default;
//!   [`http::HttpPlatform`] is the real platform over HTTP (`--payments-url`).
//! - [`signature`]: the callback signature (HMAC-SHA256 over the raw body, 5-minute window).
//! - [`record_result`]: a payment result (from a callback or from reconciliation) fed to the
//!   core as `PaymentSucceeded` / `PaymentFailed` by the payment platform. The core decides what
//!   it means (late success, superseded attempt, closed case, repeat); nothing is decided here.
//! - [`reconcile`]: asks the platform about payments still pending after an hour.
//!
//! Outbound calls (create, refund) are made only by the outbox worker ([`crate::outbox`]), never
//! inside a request.

pub mod http;
pub mod reconcile;
pub mod sandbox;
pub mod signature;

pub use sandbox::Sandbox;

use crate::api::RequestMeta;
use crate::state::AppState;
use crate::store::{AuditEntry, AuditMeta, Executed, StoreError};
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use sop_core::actor::Actor;
use sop_core::command::Command;
use sop_core::ids::PaymentId;
use std::future::Future;
use std::pin::Pin;

/// The future returned by the async methods of [`PaymentProvider`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the server asks the platform to charge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentRequest {
    /// Our id of the attempt; the platform echoes it in callbacks.
    pub payment_id: PaymentId,
    /// Integer minor units of `currency`.
    pub amount: i64,
    pub currency: String,
    /// The case reference shown to the payer (`SOP-…`): no health information.
    pub case_reference: String,
    /// Where the platform posts the result.
    pub callback_url: String,
}

/// The platform's answer to a payment creation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatedPayment {
    /// The platform's own reference of the payment (logged; the sandbox uses our id).
    pub provider_ref: String,
    /// The link the patient pays at.
    pub link: String,
}

/// A refund to make, at most once per idempotency key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundRequest {
    pub payment_id: PaymentId,
    pub amount: i64,
    pub currency: String,
    pub idempotency_key: String,
}

/// The platform's word on a refund. A transport failure is a [`ProviderError`] instead, and is
/// retried. Both refusals record `refund_failed` on the case at once (admins see it on the
/// case, its timeline and in their inbox); they differ in what the outbox does next
/// (`docs/adr/0007-platform-clients.md`, "Refunds the platform refuses").
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefundOutcome {
    Refunded,
    /// Declined by the platform (`{status: "failed"}`), with its reason (no health
    /// information): it may go through later (merchant balance, a settlement not yet
    /// cleared), so the outbox retries it with backoff.
    Failed {
        reason: String,
    },
    /// The platform refused the request itself (a 4xx): the same request would get the same
    /// answer, so it is not repeated; the outbox row turns `failed` at once for an admin to
    /// settle on the platform.
    Rejected {
        reason: String,
    },
}

/// Where the platform says a payment stands (reconciliation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PaymentState {
    Pending,
    Succeeded {
        amount: i64,
        currency: String,
    },
    Failed,
    /// The platform does not know the payment (its creation has not been delivered yet).
    Unknown,
}

/// The result a callback reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PaymentResult {
    Success { amount: i64, currency: String },
    Failure,
}

/// A verified callback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallbackEvent {
    pub payment_id: PaymentId,
    pub result: PaymentResult,
    /// When the platform says the result happened.
    pub timestamp: DateTime<Utc>,
}

/// Why a callback was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    /// Not signed by the platform, or signed too long ago: 401, nothing changes.
    #[error("callback not authenticated: {0}")]
    Unauthenticated(#[from] signature::SignatureError),
    /// Signed, but not a body we understand: 400.
    #[error("callback body not understood: {0}")]
    Malformed(String),
}

/// A failed call to the platform (network, timeout, 5xx); the outbox retries it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProviderError(pub String);

/// What the server asks of a payment platform.
pub trait PaymentProvider: Send + Sync + std::fmt::Debug {
    /// A short name for logs (`sandbox`, …).
    fn name(&self) -> &'static str;

    /// Creates a payment and its link. Repeating it for the same `payment_id` answers the same
    /// link (the outbox may deliver twice).
    fn create_payment<'a>(
        &'a self,
        request: &'a PaymentRequest,
    ) -> BoxFuture<'a, Result<CreatedPayment, ProviderError>>;

    /// Returns the money of a payment, once per idempotency key.
    fn refund<'a>(
        &'a self,
        request: &'a RefundRequest,
    ) -> BoxFuture<'a, Result<RefundOutcome, ProviderError>>;

    /// Where a payment stands, for reconciliation of missed callbacks.
    fn status(&self, payment_id: PaymentId) -> BoxFuture<'_, Result<PaymentState, ProviderError>>;

    /// Checks a callback's signature over the raw `body` and decodes it.
    fn verify_callback(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<CallbackEvent, CallbackError>;

    /// The built-in sandbox, when this provider is (or wraps) it: its pages are served only then.
    fn sandbox(&self) -> Option<&Sandbox> {
        None
    }
}

/// Where the platform posts results: `{public_url}/payments/callback`.
pub fn callback_url(public_url: &str) -> String {
    format!("{}/payments/callback", public_url.trim_end_matches('/'))
}

/// The command that reports `result` for `payment_id` to the core.
pub fn result_command(payment_id: PaymentId, result: &PaymentResult) -> Command {
    match result {
        PaymentResult::Success { amount, currency } => Command::PaymentSucceeded {
            payment_id,
            amount: *amount,
            currency: currency.clone(),
        },
        PaymentResult::Failure => Command::PaymentFailed { payment_id },
    }
}

/// What became of a payment result.
#[derive(Debug)]
pub enum Recorded {
    /// No attempt has this id: recorded in the audit log only (SPEC §5).
    UnknownPayment,
    /// The core accepted it; the decision may be a no-op (a repeated callback).
    Applied(Box<Executed>),
}

/// The audit action of a payment result whose attempt is unknown.
pub const UNKNOWN_PAYMENT_ACTION: &str = "payment_callback";

/// Feeds a payment result to the core as the payment platform, in one store transaction. A
/// refusal (e.g. `amount_mismatch`) is audited by the store as `refused:<code>` and returned.
pub async fn record_result(
    state: &AppState,
    payment_id: PaymentId,
    result: &PaymentResult,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<Recorded, StoreError> {
    let actor = Actor::PaymentPlatform;
    let audit_meta: AuditMeta = meta.audit(&actor);
    let Some(case_id) = state.store.case_of_payment(payment_id).await? else {
        let entry = AuditEntry {
            action: UNKNOWN_PAYMENT_ACTION,
            case_id: None,
            resource_id: Some(payment_id.to_string()),
            outcome: "unknown_payment".to_owned(),
        };
        state.store.audit(&audit_meta, entry, now).await?;
        return Ok(Recorded::UnknownPayment);
    };
    let command = result_command(payment_id, result);
    let executed = state
        .store
        .execute(
            case_id,
            &command,
            &actor,
            &audit_meta,
            &state.settings.limits,
            now,
        )
        .await?;
    if !executed.decision.effects.is_empty() {
        state.outbox_wake.notify();
    }
    Ok(Recorded::Applied(Box::new(executed)))
}
