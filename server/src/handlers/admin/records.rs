//! What admins read besides cases: the audit log (SPEC §8), the outbox of outbound calls with
//! their delivery state (DESIGN §4) and the retry of a call that failed for good, the admins'
//! notification inbox (SPEC §7) and a case's report PDF (SPEC §8: admins see the report).

use crate::api::{PageQuery, RequestMeta, paged};
use crate::auth::AdminAuth;
use crate::envelope::{Envelope, ok};
use crate::error::AppError;
use crate::extract::{Json, JsonOrEmpty};
use crate::handlers::app::{NotificationItem, inbox};
use crate::handlers::downloads::{self, ReportRequest};
use crate::lang::RequestLang;
use crate::state::AppState;
use crate::store::rows::{AuditRow, OutboxRow};
use crate::store::{ADMINS_RECIPIENT, AuditFilter, OutboxFilter, Retry};
use axum::extract::State;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sop_core::case::case_reference;
use sop_core::ids::CaseId;
use std::collections::BTreeMap;
use uuid::Uuid;

/// The filters of `audit-log`, all optional.
#[derive(Debug, Default, Deserialize)]
pub struct AuditLogRequest {
    #[serde(flatten)]
    pub page: PageQuery,
    pub case_id: Option<CaseId>,
    pub user_id: Option<String>,
    /// At or after (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// At or before (RFC 3339).
    pub to: Option<DateTime<Utc>>,
}

/// `POST /admin/audit-log`: audit rows, newest first. Rows carry no clinical text by design, so
/// they are shown whole (hashes included, for checking the chain by hand).
pub async fn audit_log(
    State(state): State<AppState>,
    AdminAuth(_user): AdminAuth,
    JsonOrEmpty(req): JsonOrEmpty<AuditLogRequest>,
) -> Result<Envelope<Vec<AuditRow>>, AppError> {
    let filter = AuditFilter {
        case_id: req.case_id.map(|c| c.0),
        user_id: req.user_id,
        from: req.from,
        to: req.to,
    };
    let page = state.store.list_audit(&filter, req.page.page()).await?;
    Ok(paged(page, |row| row))
}

/// One outbound call as admins see it: its kind, the ids it concerns and its delivery state.
#[derive(Debug, Serialize)]
pub struct OutboxItem {
    pub outbox_id: Uuid,
    pub case_id: Option<Uuid>,
    /// The case's short reference (`SOP-…`).
    pub reference: Option<String>,
    pub kind: String,
    /// The ids in the payload (`payment_id`, …); amounts and any other field are left out.
    pub ids: BTreeMap<String, String>,
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub next_attempt_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub done_at: Option<DateTime<Utc>>,
}

impl From<OutboxRow> for OutboxItem {
    fn from(row: OutboxRow) -> Self {
        // Only top-level `*_id` strings are shown, so a payload that one day carries more than
        // ids and amounts still cannot leak anything else here.
        let ids = row
            .payload
            .0
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(key, _)| key.ends_with("_id"))
            .filter_map(|(key, value)| Some((key.clone(), value.as_str()?.to_owned())))
            .collect();
        Self {
            outbox_id: row.outbox_id,
            case_id: row.case_id,
            reference: row.case_id.map(|id| case_reference(CaseId(id))),
            kind: row.kind,
            ids,
            status: row.status,
            attempts: row.attempts,
            last_error: row.last_error,
            next_attempt_at: row.next_attempt_at,
            created_at: row.created_at,
            done_at: row.done_at,
        }
    }
}

/// The delivery states of an outbound call.
#[derive(Clone, Copy, Debug, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxStatus {
    Pending,
    Delivering,
    Done,
    Failed,
}

impl OutboxStatus {
    fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::Delivering => "delivering",
            OutboxStatus::Done => "done",
            OutboxStatus::Failed => "failed",
        }
    }
}

/// The filters of `outbox`, all optional.
#[derive(Debug, Default, Deserialize)]
pub struct OutboxRequest {
    #[serde(flatten)]
    pub page: PageQuery,
    pub status: Option<OutboxStatus>,
    pub case_id: Option<CaseId>,
}

/// `POST /admin/outbox`: the outbound calls (of a status, of a case), newest first, with their
/// delivery attempts.
pub async fn outbox(
    State(state): State<AppState>,
    AdminAuth(_user): AdminAuth,
    JsonOrEmpty(req): JsonOrEmpty<OutboxRequest>,
) -> Result<Envelope<Vec<OutboxItem>>, AppError> {
    let filter = OutboxFilter {
        status: req.status.map(|s| s.as_str().to_owned()),
        case_id: req.case_id.map(|c| c.0),
    };
    let page = state.store.list_outbox(&filter, req.page.page()).await?;
    Ok(paged(page, OutboxItem::from))
}

/// The body of `retry-outbox`.
#[derive(Debug, Deserialize)]
pub struct RetryOutboxRequest {
    pub outbox_id: Uuid,
}

/// The answer of `retry-outbox`.
#[derive(Debug, Serialize)]
pub struct RetriedCall {
    pub outbox_id: Uuid,
    /// Always `pending`: the worker delivers it shortly.
    pub status: OutboxStatus,
}

/// `POST /admin/retry-outbox`: puts a call that failed for good back in the queue (attempts
/// from zero, the same idempotency key), for when the other side has been fixed. 404 for an
/// unknown id, 409 for a call that is not `failed`.
pub async fn retry_outbox(
    State(state): State<AppState>,
    AdminAuth(user): AdminAuth,
    meta: RequestMeta,
    Json(req): Json<RetryOutboxRequest>,
) -> Result<Envelope<RetriedCall>, AppError> {
    let audit = meta.audit(&super::admin_actor(&user));
    match state
        .store
        .retry_outbox(req.outbox_id, &audit, state.now())
        .await?
    {
        Retry::Queued => {
            state.outbox_wake.notify();
            Ok(ok(RetriedCall {
                outbox_id: req.outbox_id,
                status: OutboxStatus::Pending,
            }))
        }
        Retry::Unknown => Err(AppError::NotFound(
            "No outbound call has this outbox_id".to_owned(),
        )),
        Retry::NotFailed(status) => Err(AppError::Conflict(format!(
            "Only a failed outbound call can be retried; this one is {status}"
        ))),
    }
}

/// `POST /admin/list-notifications`: the admins' shared inbox plus the caller's own, newest first,
/// in the language of the `lang` header.
pub async fn list_notifications(
    State(state): State<AppState>,
    AdminAuth(user): AdminAuth,
    RequestLang(lang): RequestLang,
    JsonOrEmpty(req): JsonOrEmpty<PageQuery>,
) -> Result<Envelope<Vec<NotificationItem>>, AppError> {
    let recipients = [ADMINS_RECIPIENT.to_owned(), user.sub];
    inbox(&state, &recipients, lang, req).await
}

/// `POST /admin/get-report`: the report PDF of a completed case (`lang` in the body or the
/// header), as the patient and the coordinator get it. Audited like theirs.
pub async fn get_report(
    State(state): State<AppState>,
    AdminAuth(user): AdminAuth,
    meta: RequestMeta,
    RequestLang(lang): RequestLang,
    Json(req): Json<ReportRequest>,
) -> Result<Response, AppError> {
    let actor = super::admin_actor(&user);
    let lang = req.lang(lang);
    downloads::report(&state, &meta, &actor, req.case_id, lang).await
}
