//! What every API handler shares: the request's audit metadata, paging, and running a command
//! through the store with the core rules.

use crate::envelope::{Envelope, Pagination, ok_page};
use crate::error::AppError;
use crate::state::AppState;
use crate::store::{AuditMeta, Executed, Page, Paged};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sop_core::Refusal;
use sop_core::actor::Actor;
use sop_core::command::Command;
use sop_core::ids::CaseId;
use sop_core::refusal::RefusalCode;
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
    Ok(executed)
}
