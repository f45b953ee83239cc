//! The outbox worker (SPEC §9, DESIGN §4): delivers the outbound calls that commands stored in
//! the `outbox` table in the same transaction as the change that asked for them.
//!
//! [`spawn`] starts the background task `serve()` runs: it polls every [`POLL_EVERY`], wakes at
//! once when a request stored new rows ([`Wake`]), and runs payment reconciliation every
//! [`RECONCILE_EVERY`]. Tests call [`run_once`] with the time they choose.
//!
//! Each due row is first *claimed* (`status = 'delivering'` with a lease of [`LEASE`]), so with
//! several server instances on one database only one delivers it; if that worker dies, the lease
//! runs out and the row is due again. Delivery by kind:
//!
//! | kind | delivery |
//! |---|---|
//! | `create_payment` | `provider.create_payment`, then `PaymentLinkCreated` as `System` |
//! | `refund` | `provider.refund`, then `RefundSettled` as `System` (a decline records `refund_failed` at once and is retried; a 4xx records it and fails the row at once) |
//! | `invoice` | `profiles.create_invoice` (amount, currency and patient from the case), key `invoice:<payment id>`; standalone: logged |
//! | `push` | rendered in the recipient's language (`profiles.person`, cached by the client; English by default), then `push.send`, key `push:<notification id>`; standalone: logged |
//! | `generate_report` | `report::generate`: both PDFs from the frozen content into the blob store, then `ReportReady` as `System` |
//! | `sandbox_callback` | the sandbox's callback that could not be posted at once, posted again |
//!
//! A failed attempt is retried after 5 s × 2^(attempts − 1), at most an hour, and the row turns
//! `failed` after [`MAX_ATTEMPTS`] (admins see every row, its attempts and last error on
//! `/admin/outbox`). A refund that gives up also records `refund_failed` on the case. A command
//! the core refuses is final: the row turns `failed` with the refusal code. Errors stored in
//! `last_error` and logs name ids and codes only, never health information.

use crate::api::RequestMeta;
use crate::outbound::OutboundError;
use crate::payments::sandbox::SandboxResult;
use crate::payments::{self, PaymentRequest, RefundOutcome, RefundRequest};
use crate::profiles::InvoiceRequest;
use crate::push::{self, PushDelivery};
use crate::state::AppState;
use crate::store::rows::OutboxRow;
use crate::store::{Executed, StoreError};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use sop_core::actor::Actor;
use sop_core::case::case_reference;
use sop_core::command::Command;
use sop_core::event::Effect;
use sop_core::ids::{CaseId, PaymentId};
use sop_core::lang::Lang;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use uuid::Uuid;

/// How often the worker looks for due rows when nobody wakes it.
pub const POLL_EVERY: Duration = Duration::from_secs(1);
/// How long a claimed row stays with its worker before another may take it.
pub const LEASE: TimeDelta = TimeDelta::minutes(2);
/// Attempts before a row turns `failed`.
pub const MAX_ATTEMPTS: i32 = 10;
/// The first retry delay; it doubles with each failed attempt.
pub const BASE_BACKOFF: TimeDelta = TimeDelta::seconds(5);
/// The longest retry delay.
pub const MAX_BACKOFF: TimeDelta = TimeDelta::hours(1);
/// When a row that cannot be delivered yet is looked at again.
pub const WAIT_RECHECK: TimeDelta = TimeDelta::minutes(1);
/// How often the worker runs payment reconciliation.
pub const RECONCILE_EVERY: Duration = Duration::from_secs(600);
/// Rows taken per run.
const BATCH: i64 = 20;

/// The outbox kind of a sandbox callback waiting to be posted again.
pub const SANDBOX_CALLBACK: &str = "sandbox_callback";

/// Wakes the worker when new rows were stored (cheap to clone; shared).
#[derive(Clone, Debug, Default)]
pub struct Wake(Arc<Notify>);

impl Wake {
    /// Wakes the worker now, or at its next wait if it is busy (the wake-up is never lost).
    pub fn notify(&self) {
        self.0.notify_one();
    }

    async fn notified(&self) {
        self.0.notified().await;
    }
}

/// The running worker; dropping it stops it. A delivery cut short leaves its row claimed until
/// the lease ends, and it is delivered again then.
#[derive(Debug)]
pub struct Worker(tokio::task::JoinHandle<()>);

impl Drop for Worker {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts the worker on `state`.
pub fn spawn(state: AppState) -> Worker {
    Worker(tokio::spawn(work(state)))
}

async fn work(state: AppState) {
    let mut last_reconciliation = tokio::time::Instant::now();
    loop {
        let busy = match run_once(&state, state.now()).await {
            Ok(report) => report.due >= BATCH as u32,
            Err(e) => {
                tracing::warn!(error = %e, "outbox run failed");
                false
            }
        };
        if last_reconciliation.elapsed() >= RECONCILE_EVERY {
            last_reconciliation = tokio::time::Instant::now();
            match payments::reconcile::reconcile(&state, &RequestMeta::default(), state.now()).await
            {
                Ok(r) if r.checked > 0 => {
                    tracing::info!(
                        checked = r.checked,
                        changed = r.changed,
                        "reconciliation ran"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "reconciliation failed"),
            }
        }
        if !busy {
            tokio::select! {
                () = state.outbox_wake.notified() => {}
                () = tokio::time::sleep(POLL_EVERY) => {}
            }
        }
    }
}

/// What one run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunReport {
    /// Rows that were due.
    pub due: u32,
    pub delivered: u32,
    /// Failed attempts that will be retried.
    pub retried: u32,
    /// Rows that turned `failed`.
    pub failed: u32,
    /// Rows not deliverable yet (left pending).
    pub waiting: u32,
    /// Due rows another worker claimed first.
    pub skipped: u32,
}

/// Delivers every row due at `now` (up to a batch), one at a time.
pub async fn run_once(state: &AppState, now: DateTime<Utc>) -> Result<RunReport, StoreError> {
    let rows = state.store.due_outbox(now, BATCH).await?;
    let mut report = RunReport {
        due: u32::try_from(rows.len()).unwrap_or(u32::MAX),
        ..RunReport::default()
    };
    for row in rows {
        if !state
            .store
            .claim_outbox(row.outbox_id, now, now + LEASE)
            .await?
        {
            report.skipped += 1;
            continue;
        }
        let outcome = deliver(state, &row, now).await;
        finish(state, &row, outcome, now, &mut report).await?;
    }
    Ok(report)
}

/// The result of one delivery attempt.
#[derive(Debug)]
enum Outcome {
    Done,
    /// Failed, worth retrying.
    Retry(String),
    /// Failed for good.
    Fail(String),
}

/// The delay before the retry that follows failed attempt number `attempts` (from 1).
pub fn backoff(attempts: i32) -> TimeDelta {
    let doublings = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(20);
    let delay = BASE_BACKOFF * 2_i32.saturating_pow(doublings);
    delay.min(MAX_BACKOFF)
}

async fn finish(
    state: &AppState,
    row: &OutboxRow,
    outcome: Outcome,
    now: DateTime<Utc>,
    report: &mut RunReport,
) -> Result<(), StoreError> {
    let store = &state.store;
    let id = row.outbox_id;
    let attempts = row.attempts.saturating_add(1);
    match outcome {
        Outcome::Done => {
            tracing::info!(outbox_id = %id, kind = %row.kind, case_id = ?row.case_id, "outbox row delivered");
            report.delivered += 1;
            store
                .finish_outbox(id, "done", attempts, now, None, Some(now))
                .await
        }
        Outcome::Retry(error) if attempts < MAX_ATTEMPTS => {
            let next = now + backoff(attempts);
            tracing::warn!(outbox_id = %id, kind = %row.kind, attempts, %next, error = %error, "outbox delivery failed; will retry");
            report.retried += 1;
            store
                .finish_outbox(id, "pending", attempts, next, Some(&error), None)
                .await
        }
        Outcome::Retry(error) | Outcome::Fail(error) => {
            tracing::error!(outbox_id = %id, kind = %row.kind, attempts, error = %error, "outbox delivery failed for good");
            report.failed += 1;
            if let Some((case_id, Effect::RequestRefund { payment_id, .. })) = effect_of(row) {
                // Admins see a refund that gave up on the case too (timeline `refund_failed`).
                settle_refund(state, case_id, payment_id, false, now).await;
            }
            store
                .finish_outbox(id, "failed", attempts, now, Some(&error), None)
                .await
        }
    }
}

/// The case and effect of a row stored by a case command.
fn effect_of(row: &OutboxRow) -> Option<(CaseId, Effect)> {
    let effect = serde_json::from_value(row.payload.0.clone()).ok()?;
    Some((CaseId(row.case_id?), effect))
}

async fn deliver(state: &AppState, row: &OutboxRow, now: DateTime<Utc>) -> Outcome {
    if row.kind == SANDBOX_CALLBACK {
        return deliver_sandbox_callback(state, row).await;
    }
    if row.kind == crate::push::KIND {
        return deliver_push(state, row).await;
    }
    let Some((case_id, effect)) = effect_of(row) else {
        return Outcome::Fail(format!("cannot decode a {} row", row.kind));
    };
    match effect {
        Effect::CreatePayment {
            payment_id,
            amount,
            currency,
        } => create_payment(state, case_id, payment_id, amount, currency, now).await,
        Effect::RequestRefund {
            payment_id,
            amount,
            currency,
        } => {
            let request = RefundRequest {
                payment_id,
                amount,
                currency,
                idempotency_key: row.idempotency_key.clone(),
            };
            refund(state, case_id, &request, now).await
        }
        Effect::RequestInvoice { payment_id } => {
            invoice(state, case_id, payment_id, &row.idempotency_key).await
        }
        Effect::GenerateReport => match crate::report::generate(state, case_id, now).await {
            Ok(()) => Outcome::Done,
            Err(crate::report::ReportError::Transient(e)) => Outcome::Retry(e),
            Err(crate::report::ReportError::Permanent(e)) => Outcome::Fail(e),
        },
    }
}

/// The outcome of a call to an outside service: a rejection (4xx) is final, anything else is
/// retried.
fn called(service: &str, result: Result<(), OutboundError>) -> Outcome {
    match result {
        Ok(()) => Outcome::Done,
        Err(e @ OutboundError::Transient(_)) => Outcome::Retry(e.to_string()),
        Err(e @ OutboundError::Rejected { .. }) => Outcome::Fail(format!("{service}: {e}")),
    }
}

/// Creates the invoice of a successful payment in the profiles/billing system (SPEC §5).
async fn invoice(
    state: &AppState,
    case_id: CaseId,
    payment_id: PaymentId,
    idempotency_key: &str,
) -> Outcome {
    let case = match state.store.case(case_id).await {
        Ok(Some(case)) => case,
        Ok(None) => return Outcome::Fail("the case of the invoice is gone".to_owned()),
        Err(e) => return Outcome::Retry(format!("store: {e}")),
    };
    let Some(payment) = case.payments.iter().find(|p| p.payment_id == payment_id) else {
        return Outcome::Fail("the payment of the invoice is not on its case".to_owned());
    };
    let request = InvoiceRequest {
        payment_reference: payment_id,
        case_id,
        case_reference: case_reference(case_id),
        patient_id: case.patient_id.to_string(),
        amount: payment.amount,
        currency: payment.currency.clone(),
    };
    let result = state
        .profiles
        .create_invoice(&request, idempotency_key)
        .await;
    called(state.profiles.name(), result)
}

/// Delivers one push: the recipient's language from the profiles service (English when it does
/// not know them; asked again later when it does not answer), then the push service.
async fn deliver_push(state: &AppState, row: &OutboxRow) -> Outcome {
    let Ok(delivery) = serde_json::from_value::<PushDelivery>(row.payload.0.clone()) else {
        return Outcome::Fail("cannot decode a push row".to_owned());
    };
    let lang = if delivery.for_admins() {
        Lang::En
    } else {
        match state.profiles.person(&delivery.recipient).await {
            Ok(person) => person.map(|p| p.lang()).unwrap_or_default(),
            Err(e @ OutboundError::Transient(_)) => return Outcome::Retry(e.to_string()),
            // A service that refuses to say is no reason to withhold the notice.
            Err(OutboundError::Rejected { .. }) => Lang::En,
        }
    };
    let message = push::render(&delivery, lang);
    let result = state.push.send(&message, &row.idempotency_key).await;
    called(state.push.name(), result)
}

/// Runs a command from the server itself.
async fn run_system(
    state: &AppState,
    case_id: CaseId,
    command: &Command,
    now: DateTime<Utc>,
) -> Result<Executed, StoreError> {
    let actor = Actor::System;
    state
        .store
        .execute(
            case_id,
            command,
            &actor,
            &RequestMeta::default().audit(&actor),
            &state.settings.limits,
            now,
        )
        .await
}

/// The outcome of storing a command's result: a refusal is final, a store failure is retried.
fn stored(result: Result<Executed, StoreError>) -> Outcome {
    match result {
        Ok(_) => Outcome::Done,
        Err(StoreError::Refused(refusal)) => Outcome::Fail(format!("refused:{}", refusal.code)),
        Err(e) => Outcome::Retry(format!("store: {e}")),
    }
}

async fn create_payment(
    state: &AppState,
    case_id: CaseId,
    payment_id: PaymentId,
    amount: i64,
    currency: String,
    now: DateTime<Utc>,
) -> Outcome {
    let request = PaymentRequest {
        payment_id,
        amount,
        currency,
        case_reference: case_reference(case_id),
        callback_url: payments::callback_url(&state.settings.public_url),
    };
    let created = match state.payments.create_payment(&request).await {
        Ok(created) => created,
        Err(e) => return Outcome::Retry(format!("{}: {e}", state.payments.name())),
    };
    tracing::info!(%case_id, %payment_id, provider_ref = %created.provider_ref, "payment created");
    let command = Command::PaymentLinkCreated {
        payment_id,
        link: created.link,
    };
    stored(run_system(state, case_id, &command, now).await)
}

async fn refund(
    state: &AppState,
    case_id: CaseId,
    request: &RefundRequest,
    now: DateTime<Utc>,
) -> Outcome {
    match state.payments.refund(request).await {
        Ok(RefundOutcome::Refunded) => {
            let command = Command::RefundSettled {
                payment_id: request.payment_id,
                refunded: true,
            };
            stored(run_system(state, case_id, &command, now).await)
        }
        Ok(RefundOutcome::Failed { reason }) => {
            settle_refund(state, case_id, request.payment_id, false, now).await;
            Outcome::Retry(format!("refund declined: {reason}"))
        }
        Ok(RefundOutcome::Rejected { reason }) => {
            settle_refund(state, case_id, request.payment_id, false, now).await;
            Outcome::Fail(format!("refund rejected: {reason}"))
        }
        Err(e) => Outcome::Retry(format!("{}: {e}", state.payments.name())),
    }
}

/// Records a refund's settlement on the case; a failure to record is logged (the row's own
/// retry or failure carries on regardless).
async fn settle_refund(
    state: &AppState,
    case_id: CaseId,
    payment_id: PaymentId,
    refunded: bool,
    now: DateTime<Utc>,
) {
    let command = Command::RefundSettled {
        payment_id,
        refunded,
    };
    if let Err(e) = run_system(state, case_id, &command, now).await {
        tracing::warn!(%case_id, %payment_id, error = %e, "cannot record the refund settlement");
    }
}

/// The payload of a [`SANDBOX_CALLBACK`] row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxCallback {
    pub payment_id: PaymentId,
    pub result: SandboxResult,
}

/// Stores a sandbox callback to post again, and wakes the worker.
pub async fn enqueue_sandbox_callback(
    state: &AppState,
    callback: &SandboxCallback,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let payload = serde_json::to_value(callback).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let outbox_id = Uuid::now_v7();
    state
        .store
        .enqueue_outbox(&OutboxRow {
            outbox_id,
            case_id: None,
            kind: SANDBOX_CALLBACK.to_owned(),
            payload: sqlx::types::Json(payload),
            // Each resend is its own row: the server treats repeated results as no-ops.
            idempotency_key: format!("{SANDBOX_CALLBACK}:{}:{outbox_id}", callback.payment_id),
            status: "pending".to_owned(),
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
            created_at: now,
            done_at: None,
        })
        .await?;
    state.outbox_wake.notify();
    Ok(())
}

async fn deliver_sandbox_callback(state: &AppState, row: &OutboxRow) -> Outcome {
    use payments::sandbox::SendError;
    let Ok(callback) = serde_json::from_value::<SandboxCallback>(row.payload.0.clone()) else {
        return Outcome::Fail("cannot decode a sandbox callback row".to_owned());
    };
    let Some(sandbox) = state.payments.sandbox() else {
        return Outcome::Fail("the sandbox is not the configured payment platform".to_owned());
    };
    match sandbox
        .resend_callback(callback.payment_id, callback.result)
        .await
    {
        Ok(()) => Outcome::Done,
        Err(e @ SendError::Transient(_)) => Outcome::Retry(e.to_string()),
        Err(e) => Outcome::Fail(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_five_seconds_and_stops_at_an_hour() {
        assert_eq!(backoff(1), TimeDelta::seconds(5));
        assert_eq!(backoff(2), TimeDelta::seconds(10));
        assert_eq!(backoff(4), TimeDelta::seconds(40));
        assert_eq!(backoff(10), TimeDelta::seconds(2560));
        assert_eq!(backoff(11), TimeDelta::hours(1));
        assert_eq!(backoff(1000), TimeDelta::hours(1));
        assert_eq!(backoff(0), TimeDelta::seconds(5));
    }
}
