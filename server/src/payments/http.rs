//! The real payment platform over HTTP (SPEC §5, §9), configured with `--payments-url`,
//! `--payments-api-key` and `--payments-webhook-secret`. The request shapes are those of
//! `docs/adr/0007-platform-clients.md`:
//!
//! | call | request | answer |
//! |---|---|---|
//! | create | `POST /v1/payments` `{reference, amount, currency, case_reference, callback_url}` | `{id, link}` |
//! | refund | `POST /v1/payments/{reference}/refunds` `{amount, currency}` | `{status: refunded\|failed, reason?}`; 4xx → rejected |
//! | status | `GET /v1/payments/{reference}` | `{status: pending\|succeeded\|failed, amount, currency}`; 404 → unknown |
//!
//! `reference` is our payment id. Create and refund carry an `Idempotency-Key` header (the
//! outbox row's key: `create_payment:<id>`, `refund:<id>`), so a retried call never charges or
//! refunds twice. Callbacks are signed like the sandbox's ([`super::signature`]) with the webhook
//! secret and carry the same body ([`super::sandbox::CallbackBody`]).

use super::sandbox::verify_signed_callback;
use super::{
    BoxFuture, CallbackError, CallbackEvent, CreatedPayment, PaymentProvider, PaymentRequest,
    PaymentState, ProviderError, RefundOutcome, RefundRequest,
};
use crate::config::SecretString;
use crate::outbound::{OutboundError, Service};
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use sop_core::ids::PaymentId;

/// The platform client.
#[derive(Debug)]
pub struct HttpPlatform {
    service: Service,
    webhook_secret: SecretString,
}

#[derive(Serialize)]
struct CreateBody<'a> {
    reference: PaymentId,
    amount: i64,
    currency: &'a str,
    case_reference: &'a str,
    callback_url: &'a str,
}

#[derive(Deserialize)]
struct CreateAnswer {
    id: String,
    link: String,
}

#[derive(Serialize)]
struct RefundBody<'a> {
    amount: i64,
    currency: &'a str,
}

#[derive(Deserialize)]
struct RefundAnswer {
    status: String,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Deserialize)]
struct StatusAnswer {
    status: String,
    #[serde(default)]
    amount: i64,
    #[serde(default)]
    currency: String,
}

fn provider_error(e: OutboundError) -> ProviderError {
    ProviderError(e.to_string())
}

fn missing_answer(path: &str) -> ProviderError {
    ProviderError(format!("payments: {path}: empty answer"))
}

impl HttpPlatform {
    pub fn new(service: Service, webhook_secret: SecretString) -> Self {
        Self {
            service,
            webhook_secret,
        }
    }

    async fn create(&self, request: &PaymentRequest) -> Result<CreatedPayment, ProviderError> {
        let path = "/v1/payments";
        let body = CreateBody {
            reference: request.payment_id,
            amount: request.amount,
            currency: &request.currency,
            case_reference: &request.case_reference,
            callback_url: &request.callback_url,
        };
        let key = format!("create_payment:{}", request.payment_id);
        let answer: CreateAnswer = self
            .service
            .call(Method::POST, path, Some(&body), Some(&key), false)
            .await
            .map_err(provider_error)?
            .ok_or_else(|| missing_answer(path))?;
        Ok(CreatedPayment {
            provider_ref: answer.id,
            link: answer.link,
        })
    }

    async fn refund_payment(
        &self,
        request: &RefundRequest,
    ) -> Result<RefundOutcome, ProviderError> {
        let path = format!("/v1/payments/{}/refunds", request.payment_id);
        let body = RefundBody {
            amount: request.amount,
            currency: &request.currency,
        };
        let answer: Option<RefundAnswer> = match self
            .service
            .call(
                Method::POST,
                &path,
                Some(&body),
                Some(&request.idempotency_key),
                false,
            )
            .await
        {
            Ok(answer) => answer,
            // A 4xx is the platform's final word on this request (see `RefundOutcome`).
            Err(OutboundError::Rejected { status, .. }) => {
                return Ok(RefundOutcome::Rejected {
                    reason: format!("HTTP {status}"),
                });
            }
            Err(e) => return Err(provider_error(e)),
        };
        let answer = answer.ok_or_else(|| missing_answer(&path))?;
        Ok(match answer.status.as_str() {
            "refunded" => RefundOutcome::Refunded,
            _ => RefundOutcome::Failed {
                reason: answer.reason.unwrap_or(answer.status),
            },
        })
    }

    async fn state_of(&self, payment_id: PaymentId) -> Result<PaymentState, ProviderError> {
        let path = format!("/v1/payments/{payment_id}");
        let answer: Option<StatusAnswer> = self
            .service
            .call::<(), _>(Method::GET, &path, None, None, true)
            .await
            .map_err(provider_error)?;
        let Some(answer) = answer else {
            return Ok(PaymentState::Unknown);
        };
        Ok(match answer.status.as_str() {
            "succeeded" => PaymentState::Succeeded {
                amount: answer.amount,
                currency: answer.currency,
            },
            "failed" => PaymentState::Failed,
            _ => PaymentState::Pending,
        })
    }
}

impl PaymentProvider for HttpPlatform {
    fn name(&self) -> &'static str {
        "payment platform"
    }

    fn create_payment<'a>(
        &'a self,
        request: &'a PaymentRequest,
    ) -> BoxFuture<'a, Result<CreatedPayment, ProviderError>> {
        Box::pin(self.create(request))
    }

    fn refund<'a>(
        &'a self,
        request: &'a RefundRequest,
    ) -> BoxFuture<'a, Result<RefundOutcome, ProviderError>> {
        Box::pin(self.refund_payment(request))
    }

    fn status(&self, payment_id: PaymentId) -> BoxFuture<'_, Result<PaymentState, ProviderError>> {
        Box::pin(self.state_of(payment_id))
    }

    fn verify_callback(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<CallbackEvent, CallbackError> {
        verify_signed_callback(self.webhook_secret.expose().as_bytes(), headers, body, now)
    }
}
