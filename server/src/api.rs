//! What every API handler shares: the request's audit metadata, paging, and running a command
//! through the store with the core rules.

use crate::envelope::{Envelope, Pagination, ok, ok_page};
use crate::error::AppError;
use crate::state::AppState;
use crate::store::{AuditEntry, AuditMeta, Executed, Page, Paged};
use crate::views::{CaseSummary, CaseView, case_view};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sop_core::access::sees_case;
use sop_core::actor::Actor;
use sop_core::command::Command;
use sop_core::ids::CaseId;
use sop_core::lang::Lang;
use sop_core::refusal::RefusalCode;
use sop_core::{Case, Refusal};
use std::convert::Infallible;
use std::net::SocketAddr;

/// Where a request comes from, for the audit log: request id, device id and device time (sent
/// by the apps as `x-device-id` / `x-device-time`), client IP.
#[derive(Clone, Debug, Default)]
pub struct RequestMeta {
    pub request_id: Option<String>,
    pub device_id: Option<String>,
    pub device_time: Option<DateTime<Utc>>,
    pub ip: Option<String>,
}

fn header(parts: &Parts, name: &str) -> Option<String> {
    parts
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(128).collect())
}

impl<S: Send + Sync> FromRequestParts<S> for RequestMeta {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(RequestMeta {
            request_id: header(parts, crate::router::REQUEST_ID_HEADER),
            device_id: header(parts, "x-device-id"),
            device_time: header(parts, "x-device-time")
                .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                .map(|t| t.with_timezone(&Utc)),
            ip: parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip().to_string()),
        })
    }
}

impl RequestMeta {
    /// The audit metadata of `actor` making this request.
    pub fn audit(&self, actor: &Actor) -> AuditMeta {
        AuditMeta {
            user_id: actor.user_id().map(|u| u.to_string()),
            role: actor.kind().to_owned(),
            request_id: self.request_id.clone(),
            device_id: self.device_id.clone(),
            device_time: self.device_time,
            ip: self.ip.clone(),
        }
    }
}

/// `page` (from 1) and `size` (default 15, max 100) of a paged list request.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
pub struct PageQuery {
    pub page: Option<i64>,
    pub size: Option<i64>,
}

impl PageQuery {
    pub fn page(self) -> Page {
        Page::new(self.page, self.size)
    }
}

/// A paged list envelope, mapping each stored item to its wire shape.
pub fn paged<T, U: Serialize>(paged: Paged<T>, map: impl FnMut(T) -> U) -> Envelope<Vec<U>> {
    let pagination = Pagination {
        total: u64::try_from(paged.total).unwrap_or(0),
        page: u32::try_from(paged.page.page).unwrap_or(u32::MAX),
        page_size: u32::try_from(paged.page.size).unwrap_or(u32::MAX),
    };
    ok_page(paged.items.into_iter().map(map).collect(), pagination)
}

/// "Case not found": what anyone who may not see a case gets (SPEC §8).
pub fn case_not_found() -> AppError {
    AppError::Refused(Refusal::new(RefusalCode::CaseNotFound))
}

/// Runs `command` from `actor` on a case through the core rules and the store.
pub async fn run_command(
    state: &AppState,
    case_id: CaseId,
    command: &Command,
    actor: &Actor,
    meta: &RequestMeta,
) -> Result<Executed, AppError> {
    let executed = state
        .store
        .execute(
            case_id,
            command,
            actor,
            &meta.audit(actor),
            &state.settings.limits,
            state.now(),
        )
        .await?;
    if !executed.decision.effects.is_empty() {
        state.outbox_wake.notify();
    }
    Ok(executed)
}

/// The case `case_id` if `actor` may see it, else "Case not found" (SPEC §8), the same answer
/// for a missing case and a hidden one.
pub async fn visible_case(
    state: &AppState,
    case_id: CaseId,
    actor: &Actor,
) -> Result<Case, AppError> {
    match state.store.case(case_id).await? {
        Some(case) if sees_case(&case, actor) => Ok(case),
        _ => Err(case_not_found()),
    }
}

/// The details of `case` as `actor` may see them (SPEC §8), with the coordinator's directory
/// entry for the status card (name and contact from the profiles service when one is
/// configured: [`crate::profiles::doctor_profile`]) and, for those who see the patient's
/// content, the patient's name.
pub async fn case_details(
    state: &AppState,
    case: &Case,
    actor: &Actor,
    lang: Lang,
) -> Result<CaseView, AppError> {
    let coordinator = match &case.coordinator_id {
        Some(id) => crate::profiles::doctor_profile(state, id.as_str()).await?,
        None => None,
    };
    let mut view = case_view(case, actor, lang, state.now(), coordinator.as_ref());
    if sop_core::access::can_view(case, actor, &sop_core::access::Resource::PatientContent) {
        view.patient_name =
            crate::profiles::name_for_view(state, case.patient_id.as_str(), lang).await;
    }
    Ok(view)
}

/// Audits a read of case details, a document or the report (SPEC §8: every read is audited,
/// refused ones included) and passes its result through. `resource_id` names what was read
/// (a document or report id); never put content here. If the audit row cannot be written, the
/// read is not served.
pub async fn audit_read<T>(
    state: &AppState,
    meta: &RequestMeta,
    actor: &Actor,
    action: &str,
    case_id: CaseId,
    resource_id: Option<String>,
    result: Result<T, AppError>,
) -> Result<T, AppError> {
    let outcome = match &result {
        Ok(_) => "ok".to_owned(),
        Err(AppError::Refused(r)) => format!("refused:{}", r.code),
        Err(_) => "failed".to_owned(),
    };
    let entry = AuditEntry {
        action,
        case_id: Some(case_id.0),
        resource_id,
        outcome,
    };
    state
        .store
        .audit(&meta.audit(actor), entry, state.now())
        .await?;
    result
}

/// Runs `command` on a case (see [`run_command`]) and answers the case's summary afterwards:
/// what the command endpoints that create nothing return.
pub async fn command_summary(
    state: &AppState,
    case_id: CaseId,
    command: &Command,
    actor: &Actor,
    meta: &RequestMeta,
) -> Result<Envelope<CaseSummary>, AppError> {
    let executed = run_command(state, case_id, command, actor, meta).await?;
    Ok(ok(CaseSummary::of(&executed.case, state.now())))
}

/// The body of the requests about one case.
#[derive(Debug, Deserialize)]
pub struct CaseRequest {
    pub case_id: CaseId,
}
