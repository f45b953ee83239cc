//! Reconciliation (SPEC §5): payments still pending an hour after they were opened may have
//! lost their callback, so the platform is asked where they stand and its answer is fed to the
//! core exactly like a callback ([`super::record_result`]). Safe to run anywhere, any number of
//! times: the core ignores a result it already has.

use super::{PaymentResult, PaymentState, Recorded, record_result};
use crate::api::RequestMeta;
use crate::state::AppState;
use crate::store::{CaseFilter, Page, StoreError};
use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use sop_core::case::{PaymentStatus, Status};
use sop_core::ids::PaymentId;

/// How long a payment may stay pending before the platform is asked about it.
pub const PENDING_FOR: TimeDelta = TimeDelta::hours(1);

/// What a run did: `checked` payments asked about, `changed` cases whose state moved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Reconciliation {
    pub checked: u32,
    pub changed: u32,
}

/// The current attempts of cases awaiting payment that were opened before `cutoff` and are
/// still pending. All pages are read first: feeding results moves cases out of the filter,
/// which would shift the pages under a loop that read and changed at once.
async fn stale_payments(
    state: &AppState,
    cutoff: DateTime<Utc>,
) -> Result<Vec<PaymentId>, StoreError> {
    let filter = CaseFilter {
        status: Some(Status::AwaitingPayment.as_str().to_owned()),
        ..CaseFilter::default()
    };
    let mut found = Vec::new();
    let mut page = Page::new(Some(1), Some(Page::MAX_SIZE));
    loop {
        let cases = state.store.list_cases(&filter, page).await?;
        found.extend(cases.items.iter().filter_map(|case| {
            case.current_payment()
                .filter(|p| p.status == PaymentStatus::Pending && p.created_at < cutoff)
                .map(|p| p.payment_id)
        }));
        if page.page.saturating_mul(page.size) >= cases.total {
            return Ok(found);
        }
        page.page += 1;
    }
}

/// Asks the platform about every payment pending for longer than [`PENDING_FOR`] at `now`.
/// A platform error on one payment is logged and the others still go ahead. `meta` is the
/// request that triggered the run (default for the worker's own runs), for the audit rows.
pub async fn reconcile(
    state: &AppState,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<Reconciliation, StoreError> {
    let mut report = Reconciliation::default();
    for payment_id in stale_payments(state, now - PENDING_FOR).await? {
        report.checked += 1;
        let result = match state.payments.status(payment_id).await {
            Ok(PaymentState::Succeeded { amount, currency }) => {
                PaymentResult::Success { amount, currency }
            }
            Ok(PaymentState::Failed) => PaymentResult::Failure,
            Ok(PaymentState::Pending | PaymentState::Unknown) => continue,
            Err(e) => {
                tracing::warn!(%payment_id, error = %e, "reconciliation: the platform did not answer");
                continue;
            }
        };
        match record_result(state, payment_id, &result, meta, now).await {
            Ok(Recorded::Applied(executed)) if !executed.decision.events.is_empty() => {
                tracing::info!(%payment_id, "reconciliation recorded a missed payment result");
                report.changed += 1;
            }
            Ok(_) => {}
            Err(StoreError::Refused(refusal)) => {
                tracing::warn!(%payment_id, code = %refusal.code, "reconciliation result refused");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(report)
}
