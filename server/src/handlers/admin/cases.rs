//! The admin's case endpoints: the filtered case list, the case details with the seven-step
//! progress of SPEC §3.4, and the admin's commands — assign (T4) and reassign (T5) the
//! coordinator, cancel (T16), reject (T17) — each decided by the core rules through the store.

use super::admin_actor;
use crate::api::{
    self, PageQuery, RequestMeta, audit_read, command_summary, paged, run_command, visible_case,
};
use crate::auth::AdminAuth;
use crate::envelope::{Envelope, ok};
use crate::error::AppError;
use crate::extract::{Json, JsonOrEmpty};
use crate::lang::RequestLang;
use crate::state::AppState;
use crate::store::CaseFilter;
use crate::views::{CaseSummary, CaseView};
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sop_core::case::{Case, Status, TimelineKind};
use sop_core::command::{Command, RequestSpec};
use sop_core::ids::{CaseId, CategoryId, PaymentId, RequestId, ReviewTypeId, UserId};

/// The filters of `list-cases`, all optional.
#[derive(Debug, Default, Deserialize)]
pub struct ListCasesRequest {
    #[serde(flatten)]
    pub page: PageQuery,
    pub status: Option<Status>,
    pub rt_id: Option<ReviewTypeId>,
    pub dc_id: Option<CategoryId>,
    pub coordinator_id: Option<UserId>,
    /// Created at or after (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Created at or before (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    /// A case id, or part of a patient id.
    pub q: Option<String>,
}

impl ListCasesRequest {
    fn filter(&self) -> CaseFilter {
        CaseFilter {
            status: self.status.map(|s| s.as_str().to_owned()),
            rt_id: self.rt_id.map(|id| id.0),
            dc_id: self.dc_id.map(|id| id.0),
            coordinator_id: self.coordinator_id.as_ref().map(ToString::to_string),
            from: self.from,
            to: self.to,
            q: self.q.clone(),
            ..CaseFilter::default()
        }
    }
}

/// `POST /admin/list-cases`: every case matching the filters, newest first.
pub async fn list_cases(
    State(state): State<AppState>,
    AdminAuth(_user): AdminAuth,
    JsonOrEmpty(req): JsonOrEmpty<ListCasesRequest>,
) -> Result<Envelope<Vec<CaseSummary>>, AppError> {
    let now = state.now();
    let page = state
        .store
        .list_cases(&req.filter(), req.page.page())
        .await?;
    Ok(paged(page, |case| CaseSummary::of(&case, now)))
}

/// A body naming one case.
#[derive(Debug, Deserialize)]
pub struct CaseRequest {
    pub case_id: CaseId,
}

/// The admin's case details: what [`case_view`] shows an admin, plus the progress.
#[derive(Debug, Serialize)]
pub struct AdminCaseView {
    #[serde(flatten)]
    pub case: CaseView,
    pub progress: Progress,
}

/// `POST /admin/case-details`: the case with its timeline and progress; an audited read.
pub async fn case_details(
    State(state): State<AppState>,
    AdminAuth(user): AdminAuth,
    RequestLang(lang): RequestLang,
    meta: RequestMeta,
    Json(req): Json<CaseRequest>,
) -> Result<Envelope<AdminCaseView>, AppError> {
    let actor = admin_actor(&user);
    let read = async {
        let case = visible_case(&state, req.case_id, &actor).await?;
        Ok(AdminCaseView {
            case: api::case_details(&state, &case, &actor, lang).await?,
            progress: progress(&case),
        })
    }
    .await;
    let view = audit_read(
        &state,
        &meta,
        &actor,
        "view_case_details",
        req.case_id,
        None,
        read,
    )
    .await?;
    Ok(ok(view))
}

/// The seven steps of SPEC §3.4, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Created,
    CoordinatorAssigned,
    AwaitingPayment,
    PaymentReceived,
    DoctorsAssigned,
    UnderSpecialistReview,
    Completed,
}

/// One step of the progress: whether the case has passed it, and when (if known).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StepView {
    pub step: Step,
    pub done: bool,
    pub at: Option<DateTime<Utc>>,
}

/// How a closed case ended, shown apart from the steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Cancelled,
    Rejected,
}

/// The admin's view of how far a case got.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub steps: Vec<StepView>,
    pub outcome: Option<Outcome>,
    pub outcome_at: Option<DateTime<Utc>>,
}

/// The progress of `case`, read from its timeline. A step is done once the case has reached it
/// (the first such entry gives the time); the review step is done when every active specialist
/// has submitted, at the last opinion. Cancellation and rejection are outcomes, not steps: the
/// steps show how far the case got before it closed.
pub fn progress(case: &Case) -> Progress {
    let first = |kind| case.timeline.iter().find(|e| e.kind == kind).map(|e| e.at);
    let last_opinion = case
        .timeline
        .iter()
        .rev()
        .find(|e| e.kind == TimelineKind::OpinionSubmitted)
        .map(|e| e.at);
    let review_done = case.status == Status::Completed
        || (case.active_specialists().next().is_some()
            && case.pending_specialists().next().is_none());
    let reached = |at: Option<DateTime<Utc>>| (at.is_some(), at);
    let steps = [
        (Step::Created, (true, Some(case.created_at))),
        (
            Step::CoordinatorAssigned,
            reached(first(TimelineKind::CoordinatorAssigned)),
        ),
        (
            Step::AwaitingPayment,
            reached(first(TimelineKind::AwaitingPayment)),
        ),
        (
            Step::PaymentReceived,
            reached(first(TimelineKind::PaymentReceived)),
        ),
        (
            Step::DoctorsAssigned,
            reached(first(TimelineKind::DoctorsAssigned)),
        ),
        (
            Step::UnderSpecialistReview,
            (review_done, last_opinion.filter(|_| review_done)),
        ),
        (Step::Completed, reached(first(TimelineKind::Completed))),
    ];
    let outcome = match case.status {
        Status::Cancelled => Some((Outcome::Cancelled, first(TimelineKind::Cancelled))),
        Status::Rejected => Some((Outcome::Rejected, first(TimelineKind::Rejected))),
        _ => None,
    };
    Progress {
        steps: steps
            .into_iter()
            .map(|(step, (done, at))| StepView { step, done, at })
            .collect(),
        outcome: outcome.map(|(o, _)| o),
        outcome_at: outcome.and_then(|(_, at)| at),
    }
}

/// The body of `assign-coordinator`.
#[derive(Debug, Deserialize)]
pub struct AssignCoordinatorRequest {
    pub case_id: CaseId,
    pub doctor_id: UserId,
    /// Documents to ask the patient for on the coordinator's behalf; an empty list asks nothing.
    pub requested_documents: Option<Vec<String>>,
}

/// The `data` of `assign-coordinator`: the case, the payment attempt opened and the document
/// request opened, if any.
#[derive(Debug, Serialize)]
pub struct AssignCoordinatorReply {
    #[serde(flatten)]
    pub case: CaseSummary,
    pub payment_id: PaymentId,
    pub request_id: Option<RequestId>,
}

/// `POST /admin/assign-coordinator` (T4): the server picks the payment attempt's id and the
/// document request's id.
pub async fn assign_coordinator(
    State(state): State<AppState>,
    AdminAuth(user): AdminAuth,
    meta: RequestMeta,
    Json(req): Json<AssignCoordinatorRequest>,
) -> Result<Envelope<AssignCoordinatorReply>, AppError> {
    let payment_id = PaymentId::new_v7();
    let requested_documents = req
        .requested_documents
        .filter(|items| !items.is_empty())
        .map(|items| RequestSpec {
            request_id: RequestId::new_v7(),
            items,
        });
    let request_id = requested_documents.as_ref().map(|r| r.request_id);
    let command = Command::AssignCoordinator {
        doctor_id: req.doctor_id,
        payment_id,
        requested_documents,
    };
    let executed = run_command(&state, req.case_id, &command, &admin_actor(&user), &meta).await?;
    Ok(ok(AssignCoordinatorReply {
        case: CaseSummary::of(&executed.case, state.now()),
        payment_id,
        request_id,
    }))
}

/// The body of `edit-coordinator`.
#[derive(Debug, Deserialize)]
pub struct EditCoordinatorRequest {
    pub case_id: CaseId,
    pub doctor_id: UserId,
}

/// `POST /admin/edit-coordinator` (T5): another eligible coordinator; the payment link stays.
pub async fn edit_coordinator(
    State(state): State<AppState>,
    AdminAuth(user): AdminAuth,
    meta: RequestMeta,
    Json(req): Json<EditCoordinatorRequest>,
) -> Result<Envelope<CaseSummary>, AppError> {
    let command = Command::ReassignCoordinator {
        doctor_id: req.doctor_id,
    };
    command_summary(&state, req.case_id, &command, &admin_actor(&user), &meta).await
}

/// The body of `cancel-case` and `reject-case`. A missing reason is the core's `reason_required`.
#[derive(Debug, Deserialize)]
pub struct CloseRequest {
    pub case_id: CaseId,
    #[serde(default)]
    pub reason: String,
}

/// `POST /admin/cancel-case` (T16).
pub async fn cancel_case(
    State(state): State<AppState>,
    AdminAuth(user): AdminAuth,
    meta: RequestMeta,
    Json(req): Json<CloseRequest>,
) -> Result<Envelope<CaseSummary>, AppError> {
    let command = Command::Cancel { reason: req.reason };
    command_summary(&state, req.case_id, &command, &admin_actor(&user), &meta).await
}

/// `POST /admin/reject-case` (T17).
pub async fn reject_case(
    State(state): State<AppState>,
    AdminAuth(user): AdminAuth,
    meta: RequestMeta,
    Json(req): Json<CloseRequest>,
) -> Result<Envelope<CaseSummary>, AppError> {
    let command = Command::Reject { reason: req.reason };
    command_summary(&state, req.case_id, &command, &admin_actor(&user), &meta).await
}
