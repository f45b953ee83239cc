//! The payment platform's side of the API (SPEC §5, §9):
//!
//! - `POST /payments/callback` (no JWT): a result from the platform, verified over the raw body
//!   by the provider (signature, 5-minute window) and fed to the core as the payment platform.
//!   401 (code 2000) when not authentic, with nothing changed and nothing of the body logged.
//!   A result for an unknown payment is recorded in the audit log (`unknown_payment`) and
//!   answered 200 "recorded". A repeated result answers 200 and changes nothing. An amount or
//!   currency mismatch is refused by the core (400, `amount_mismatch`); admins find it in the
//!   audit log (`/admin/audit-log`: action `payment_succeeded`, outcome
//!   `refused:amount_mismatch`, role `payment_platform`, with the case id).
//! - `GET /sandbox/pay/{payment_id}`: the sandbox's payment page (amount, currency, case
//!   reference — no health information) with *Pay* and *Fail* buttons.
//! - `POST /sandbox/pay/{payment_id}` (form field `result=success|failure`): what the buttons do.
//!   The sandbox posts its signed callback to `/payments/callback` over HTTP at once; if that
//!   does not get through, the page still answers and the callback is retried by the outbox.
//! - `POST /scheduler/run-reconciliation` (admin token): asks the platform about payments
//!   pending for over an hour → `{checked, changed}`.

use crate::api::RequestMeta;
use crate::auth::AdminAuth;
use crate::envelope::{Envelope, ok};
use crate::error::AppError;
use crate::extract::JsonOrEmpty;
use crate::handlers::scheduler::RunRequest;
use crate::outbox::{self, SandboxCallback};
use crate::payments::reconcile::{Reconciliation, reconcile};
use crate::payments::sandbox::{Sandbox, SandboxPayment, SandboxResult, SendError, SettleError};
use crate::payments::{CallbackError, Recorded, record_result};
use crate::state::AppState;
use crate::store::StoreError;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, FormRejection};
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use sop_core::ids::PaymentId;
use sop_core::refusal::RefusalCode;

/// The routes of this group, with their full paths (merged at the root).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/payments/callback", post(callback))
        .route(
            "/sandbox/pay/{payment_id}",
            get(sandbox_page).post(sandbox_pay),
        )
        .route("/scheduler/run-reconciliation", post(run_reconciliation))
}

/// The `data` of a processed callback.
#[derive(Debug, Serialize)]
pub struct CallbackAnswer {
    pub payment_id: PaymentId,
    /// `processed` (the case changed), `no_change` (a repeat, or nothing to do) or `recorded`
    /// (unknown payment: audit log only).
    pub result: &'static str,
}

/// `POST /payments/callback`.
pub async fn callback(
    State(state): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Envelope<CallbackAnswer>, AppError> {
    let body = body?;
    let now = state.now();
    let event = state
        .payments
        .verify_callback(&headers, &body, now)
        .map_err(|e| {
            tracing::warn!(reason = %e, "payment callback rejected");
            match e {
                CallbackError::Unauthenticated(_) => {
                    AppError::Unauthorized("invalid payment callback signature".to_owned())
                }
                CallbackError::Malformed(reason) => AppError::BadRequest(reason),
            }
        })?;
    let payment_id = event.payment_id;
    match record_result(&state, payment_id, &event.result, &meta, now).await {
        Ok(Recorded::UnknownPayment) => {
            tracing::info!(%payment_id, "callback for an unknown payment recorded");
            Ok(ok(CallbackAnswer {
                payment_id,
                result: "recorded",
            })
            .with_message("recorded"))
        }
        Ok(Recorded::Applied(executed)) => {
            let result = if executed.decision.events.is_empty() {
                "no_change"
            } else {
                "processed"
            };
            tracing::info!(%payment_id, case_id = %executed.case.case_id, result, "payment callback");
            Ok(ok(CallbackAnswer { payment_id, result }))
        }
        Err(StoreError::Refused(refusal)) => {
            if refusal.code == RefusalCode::AmountMismatch {
                tracing::warn!(%payment_id, "payment callback with a wrong amount or currency; flagged in the audit log");
            }
            Err(AppError::Refused(refusal))
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /scheduler/run-reconciliation`.
pub async fn run_reconciliation(
    State(state): State<AppState>,
    AdminAuth(user): AdminAuth,
    meta: RequestMeta,
    JsonOrEmpty(_req): JsonOrEmpty<RunRequest>,
) -> Result<Envelope<Reconciliation>, AppError> {
    let report = reconcile(&state, &meta, state.now()).await?;
    tracing::info!(triggered_by = %user.sub, checked = report.checked, changed = report.changed, "reconciliation run");
    Ok(ok(report))
}

/// The sandbox form.
#[derive(Debug, Deserialize)]
pub struct PayForm {
    pub result: Option<String>,
}

/// `GET /sandbox/pay/{payment_id}`.
pub async fn sandbox_page(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match find(&state, &id).await {
        Ok((_, payment)) => payment_page(&payment),
        Err(response) => response,
    }
}

/// `POST /sandbox/pay/{payment_id}` with `result=success|failure`.
pub async fn sandbox_pay(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: Result<Form<PayForm>, FormRejection>,
) -> Response {
    let (sandbox, payment) = match find(&state, &id).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    if let Err(rejection) = &form
        && rejection.status() == StatusCode::PAYLOAD_TOO_LARGE
    {
        return message_page(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Form too large",
            "The form is larger than the limit of 1 MiB.",
        );
    }
    let Some(result) = form
        .ok()
        .and_then(|Form(f)| f.result)
        .and_then(|r| SandboxResult::parse(&r))
    else {
        return message_page(
            StatusCode::BAD_REQUEST,
            "Choose Pay or Fail",
            "The form field result must be success or failure.",
        );
    };
    let payment = match sandbox.settle(payment.payment_id, result).await {
        Ok(payment) => payment,
        Err(SettleError::AlreadyPaid) => {
            return message_page(
                StatusCode::CONFLICT,
                "Already paid",
                "This payment already succeeded; it cannot fail any more.",
            );
        }
        Err(SettleError::NotFound) => return unknown_payment_page(),
        Err(SettleError::Io(e)) => {
            tracing::error!(payment_id = %payment.payment_id, error = %e, "sandbox storage failed");
            return message_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Sandbox error",
                "The sandbox could not record the result. Try again.",
            );
        }
    };
    let delivery = notify_service(&state, sandbox, &payment, result).await;
    let title = match result {
        SandboxResult::Success => "Payment succeeded",
        SandboxResult::Failure => "Payment failed",
    };
    message_page(StatusCode::OK, title, delivery)
}

/// Posts the callback now; if the service cannot be reached, leaves it to the outbox. Answers
/// what the page says about it.
async fn notify_service(
    state: &AppState,
    sandbox: &Sandbox,
    payment: &SandboxPayment,
    result: SandboxResult,
) -> &'static str {
    let payment_id = payment.payment_id;
    match sandbox.send_callback(payment, result).await {
        Ok(()) => "The service was notified. You can close this page and return to the app.",
        Err(SendError::Transient(e)) => {
            tracing::warn!(%payment_id, error = %e, "sandbox callback not delivered; queued for retry");
            let callback = SandboxCallback { payment_id, result };
            match outbox::enqueue_sandbox_callback(state, &callback, state.now()).await {
                Ok(()) => "The service will be notified within moments.",
                Err(e) => {
                    tracing::error!(%payment_id, error = %e, "cannot queue the sandbox callback");
                    "The service could not be notified. Reconciliation will pick the result up."
                }
            }
        }
        Err(e) => {
            tracing::warn!(%payment_id, error = %e, "sandbox callback refused");
            "The service refused the notification."
        }
    }
}

/// The sandbox and its record of the payment `id`, or the page to answer instead.
async fn find<'a>(
    state: &'a AppState,
    id: &str,
) -> Result<(&'a Sandbox, SandboxPayment), Response> {
    let sandbox = state.payments.sandbox().ok_or_else(unknown_payment_page)?;
    let payment_id: PaymentId = id.parse().map_err(|_| unknown_payment_page())?;
    match sandbox.payment(payment_id).await {
        Ok(Some(payment)) => Ok((sandbox, payment)),
        Ok(None) => Err(unknown_payment_page()),
        Err(e) => {
            tracing::error!(%payment_id, error = %e, "sandbox storage failed");
            Err(message_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Sandbox error",
                "The sandbox could not read this payment. Try again.",
            ))
        }
    }
}

fn unknown_payment_page() -> Response {
    message_page(
        StatusCode::NOT_FOUND,
        "Payment not found",
        "The sandbox has no payment at this link.",
    )
}

/// The payment page with its Pay and Fail buttons (the form posts to this same URL).
fn payment_page(payment: &SandboxPayment) -> Response {
    let state = match payment.result {
        None => "awaiting payment",
        Some(SandboxResult::Success) => "paid",
        Some(SandboxResult::Failure) => "failed (you may still pay)",
    };
    let body = format!(
        "<dl><dt>Case</dt><dd>{reference}</dd><dt>Amount</dt><dd>{amount}</dd>\
         <dt>Status</dt><dd>{state}</dd></dl>\
         <form method=\"post\">\
         <button type=\"submit\" name=\"result\" value=\"success\">Pay</button> \
         <button type=\"submit\" name=\"result\" value=\"failure\" class=\"fail\">Fail</button>\
         </form>",
        reference = escape(&payment.case_reference),
        amount = escape(&format_amount(payment.amount, &payment.currency)),
    );
    html(StatusCode::OK, "Sandbox payment", &body)
}

fn message_page(status: StatusCode, title: &str, message: &str) -> Response {
    html(status, title, &format!("<p>{}</p>", escape(message)))
}

/// A complete page around `body` (already escaped).
fn html(status: StatusCode, title: &str, body: &str) -> Response {
    let title = escape(title);
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} — SOP sandbox</title><style>\
         body{{font-family:system-ui,sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem}}\
         dt{{color:#555;font-size:.9rem}}dd{{margin:0 0 .8rem;font-size:1.2rem}}\
         button{{font-size:1.1rem;padding:.6rem 1.6rem;border:0;border-radius:.4rem;\
         background:#1b7f3b;color:#fff;cursor:pointer}}button.fail{{background:#a32020}}\
         .note{{color:#666;font-size:.85rem}}</style></head><body>\
         <h1>{title}</h1>{body}\
         <p class=\"note\">SOP sandbox payment platform: a test tool, no real money moves.</p>\
         </body></html>"
    );
    (status, Html(page)).into_response()
}

/// Text made safe to put in HTML.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Minor units shown in major units with the currency's decimals (ISO 4217 exponents of the
/// currencies that do not use two).
fn format_amount(amount: i64, currency: &str) -> String {
    let decimals: u32 = match currency {
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        "JPY" | "KRW" | "CLP" | "ISK" | "UGX" | "VND" | "XAF" | "XOF" => 0,
        _ => 2,
    };
    if decimals == 0 {
        return format!("{amount} {currency}");
    }
    let unit = 10_i64.pow(decimals);
    let sign = if amount < 0 { "-" } else { "" };
    let abs = amount.unsigned_abs();
    let unit = unit.unsigned_abs();
    format!(
        "{sign}{}.{:0width$} {currency}",
        abs / unit,
        abs % unit,
        width = decimals as usize
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_use_the_currency_decimals() {
        assert_eq!(format_amount(150_000, "SAR"), "1500.00 SAR");
        assert_eq!(format_amount(5, "SAR"), "0.05 SAR");
        assert_eq!(format_amount(1_234, "KWD"), "1.234 KWD");
        assert_eq!(format_amount(500, "JPY"), "500 JPY");
        assert_eq!(format_amount(-150, "USD"), "-1.50 USD");
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape(r#"<b a="1">&'"#),
            "&lt;b a=&quot;1&quot;&gt;&amp;&#39;"
        );
    }
}
