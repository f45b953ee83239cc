//! `/pro/*`: the doctors' endpoints (audience `snr_pro`), SPEC §10.
//!
//! A doctor's role is per case (coordinator or specialist, from the assignments); the core
//! decides what each may do and see. A doctor who is not (or no longer) on a case gets "Case not
//! found" from every endpoint taking a `case_id`.
//!
//! Drafts are stored as JSON documents (`store.save_draft`), one per kind and doctor:
//! notes `{"notes": text}`, an opinion the [`OpinionContent`] sections, the summary
//! `{"summary": text}`. Submitting freezes the draft in the same transaction as the command
//! (`store.execute_freezing`), so what the report shows is exactly what was submitted.

use crate::api::{
    CaseRequest, PageQuery, RequestMeta, audit_read, case_details, command_summary, paged,
    run_command, visible_case,
};
use crate::auth::{AuthUser, DoctorAuth};
use crate::envelope::{Envelope, ok};
use crate::error::AppError;
use crate::extract::{Json, JsonOrEmpty};
use crate::handlers::app::{NotificationItem, inbox};
use crate::handlers::downloads::{self, ReportRequest};
use crate::lang::RequestLang;
use crate::state::AppState;
use crate::store::CaseFilter;
use crate::store::Draft;
use crate::views::{CaseSummary, CaseView};
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sop_core::Refusal;
use sop_core::access::{ContentKind, Resource, can_view};
use sop_core::actor::Actor;
use sop_core::case::{AssignmentRole, Case, Relation};
use sop_core::command::{Command, Concordance, DoctorToAssign, OpinionContent, RequestSpec};
use sop_core::ids::{CaseId, DocumentId, RequestId, UserId};

/// The routes of this group.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/sops", post(sops))
        .route("/review-case-details", post(review_case_details))
        .route("/assign-doctor", post(assign_doctor))
        .route("/unassign-doctor", post(unassign_doctor))
        .route("/request-documents", post(request_documents))
        .route("/save-notes", post(save_notes))
        .route("/save-opinion", post(save_opinion))
        .route("/submit-opinion", post(submit_opinion))
        .route("/save-summary", post(save_summary))
        .route("/submit-summary", post(submit_summary))
        .route("/send-overdue-reminder", post(send_overdue_reminder))
        .route("/get-document", post(get_document))
        .route("/get-report", post(get_report))
        .route("/list-notifications", post(list_notifications))
}

/// The doctor making a request, as an actor and as a user id.
fn doctor(user: AuthUser) -> (Actor, UserId) {
    let id = UserId::new(user.sub);
    (Actor::Doctor(id.clone()), id)
}

// ----- Lists and details ---------------------------------------------------------------------

/// The body of `/pro/sops`.
#[derive(Debug, Default, Deserialize)]
pub struct SopsRequest {
    /// `true`: only cases this doctor coordinates; `false`: only cases they review; absent: both.
    pub coordinator: Option<bool>,
    #[serde(flatten)]
    pub page: PageQuery,
}

/// A case on a doctor's list, with their role on it.
#[derive(Debug, Serialize)]
pub struct SopItem {
    #[serde(flatten)]
    pub summary: CaseSummary,
    pub role: Option<AssignmentRole>,
}

/// The role `actor` plays on `case`, if any.
fn role_on(case: &Case, actor: &Actor) -> Option<AssignmentRole> {
    match case.relation_of(actor) {
        Relation::Coordinator => Some(AssignmentRole::Coordinator),
        Relation::Specialist => Some(AssignmentRole::Specialist),
        _ => None,
    }
}

/// `POST /pro/sops`: the cases the doctor is actively assigned to, newest first.
pub async fn sops(
    State(state): State<AppState>,
    DoctorAuth(user): DoctorAuth,
    JsonOrEmpty(req): JsonOrEmpty<SopsRequest>,
) -> Result<Envelope<Vec<SopItem>>, AppError> {
    let (actor, id) = doctor(user);
    let filter = CaseFilter {
        doctor_id: Some(id.0),
        doctor_is_coordinator: req.coordinator,
        ..CaseFilter::default()
    };
    let listed = state.store.list_cases(&filter, req.page.page()).await?;
    let now = state.now();
    Ok(paged(listed, |case| SopItem {
        role: role_on(&case, &actor),
        summary: CaseSummary::of(&case, now),
    }))
}

/// A saved draft's state.
#[derive(Debug, Serialize)]
pub struct DraftState {
    pub updated_at: DateTime<Utc>,
    /// When it was submitted (and frozen), if it was.
    pub submitted_at: Option<DateTime<Utc>>,
}

impl From<&Draft> for DraftState {
    fn from(d: &Draft) -> Self {
        Self {
            updated_at: d.updated_at,
            submitted_at: d.frozen_at,
        }
    }
}

/// The doctor's own notes.
#[derive(Debug, Serialize)]
pub struct NotesView {
    pub notes: String,
    #[serde(flatten)]
    pub state: DraftState,
}

/// An opinion with its author and state.
#[derive(Debug, Serialize)]
pub struct OpinionView {
    pub doctor_id: UserId,
    #[serde(flatten)]
    pub opinion: OpinionContent,
    pub submitted: bool,
    #[serde(flatten)]
    pub state: Option<DraftState>,
}

/// The coordinator's final summary.
#[derive(Debug, Serialize)]
pub struct SummaryView {
    pub summary: String,
    pub submitted: bool,
    #[serde(flatten)]
    pub state: DraftState,
}

/// A case's details for a doctor: what SPEC §8 lets them see, plus their own drafts.
#[derive(Debug, Serialize)]
pub struct DoctorCaseView {
    #[serde(flatten)]
    pub case: CaseView,
    /// This doctor's role on the case.
    pub role: Option<AssignmentRole>,
    /// This doctor's private notes.
    pub notes: Option<NotesView>,
    /// This doctor's opinion (specialists), saved or submitted.
    pub my_opinion: Option<OpinionView>,
    /// The other specialists' submitted opinions this doctor may read (all for the
    /// coordinator; for a specialist only after submitting their own).
    pub opinions: Vec<OpinionView>,
    /// The final summary: the draft for the coordinator, the submitted one for others who
    /// may see it.
    pub summary: Option<SummaryView>,
}

/// The notes draft body.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct NotesBody {
    #[serde(default)]
    pub notes: String,
}

/// The summary draft body.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct SummaryBody {
    #[serde(default)]
    pub summary: String,
}

/// A stored body as `T`; a body that does not decode is a bug or tampering.
fn decode<T: DeserializeOwned>(draft: &Draft) -> Result<T, AppError> {
    serde_json::from_value(draft.body.clone())
        .map_err(|e| AppError::Internal(anyhow::anyhow!("stored draft does not decode: {e}")))
}

fn encode<T: Serialize>(body: &T) -> Result<serde_json::Value, AppError> {
    serde_json::to_value(body).map_err(|e| AppError::Internal(anyhow::Error::new(e)))
}

/// The opinion draft of `doctor_id` on `case`, as a view.
async fn opinion_of(
    state: &AppState,
    case: &Case,
    doctor_id: &UserId,
) -> Result<OpinionView, AppError> {
    let draft = state
        .store
        .draft(case.case_id, &ContentKind::Opinion(doctor_id.clone()))
        .await?;
    let opinion = match &draft {
        Some(d) => decode::<OpinionDraft>(d)?.into_content(),
        None => OpinionContent::default(),
    };
    let submitted = case
        .active_specialist(doctor_id)
        .is_some_and(|a| a.opinion_submitted_at.is_some());
    Ok(OpinionView {
        doctor_id: doctor_id.clone(),
        opinion,
        submitted,
        state: draft.as_ref().map(DraftState::from),
    })
}

/// Everything of `case` that `actor` sees beyond the case view: their drafts and what they may
/// read of the others'.
async fn doctor_view(
    state: &AppState,
    case: &Case,
    actor: &Actor,
    me: &UserId,
    view: CaseView,
) -> Result<DoctorCaseView, AppError> {
    let notes = match state
        .store
        .draft(case.case_id, &ContentKind::Notes(me.clone()))
        .await?
    {
        Some(d) if can_view(case, actor, &Resource::Notes { doctor: me }) => Some(NotesView {
            notes: decode::<NotesBody>(&d)?.notes,
            state: DraftState::from(&d),
        }),
        _ => None,
    };
    let my_opinion = match case.active_specialist(me) {
        Some(_) => Some(opinion_of(state, case, me).await?),
        None => None,
    };
    let mut opinions = Vec::new();
    let submitted = case
        .assignments
        .iter()
        .filter(|a| a.role == AssignmentRole::Specialist && a.opinion_submitted_at.is_some())
        .filter(|a| &a.doctor_id != me);
    for a in submitted {
        if can_view(
            case,
            actor,
            &Resource::Opinion {
                doctor: &a.doctor_id,
            },
        ) {
            opinions.push(opinion_of(state, case, &a.doctor_id).await?);
        }
    }
    let summary = match state
        .store
        .draft(case.case_id, &ContentKind::Summary)
        .await?
    {
        // Others see the summary once it is submitted; the coordinator sees their draft too.
        Some(d)
            if can_view(case, actor, &Resource::SummaryAndReport)
                && (d.frozen_at.is_some() || case.relation_of(actor) == Relation::Coordinator) =>
        {
            Some(SummaryView {
                summary: decode::<SummaryBody>(&d)?.summary,
                submitted: d.frozen_at.is_some(),
                state: DraftState::from(&d),
            })
        }
        _ => None,
    };
    Ok(DoctorCaseView {
        case: view,
        role: role_on(case, actor),
        notes,
        my_opinion,
        opinions,
        summary,
    })
}

/// `POST /pro/review-case-details`: the case as this doctor may see it, with their drafts.
/// Audited.
pub async fn review_case_details(
    State(state): State<AppState>,
    DoctorAuth(user): DoctorAuth,
    meta: RequestMeta,
    RequestLang(lang): RequestLang,
    Json(req): Json<CaseRequest>,
) -> Result<Envelope<DoctorCaseView>, AppError> {
    let (actor, me) = doctor(user);
    let result = async {
        let case = visible_case(&state, req.case_id, &actor).await?;
        let view = case_details(&state, &case, &actor, lang).await?;
        doctor_view(&state, &case, &actor, &me, view).await
    }
    .await;
    let view = audit_read(
        &state,
        &meta,
        &actor,
        "view_case",
        req.case_id,
        None,
        result,
    )
    .await?;
    Ok(ok(view))
}

// ----- Assignments and requests --------------------------------------------------------------

/// The body of `/pro/assign-doctor`: one doctor (`doctor_id`) or several (`doctor_ids`), and
/// the documents to request for each of them.
#[derive(Debug, Deserialize)]
pub struct AssignDoctorRequest {
    pub case_id: CaseId,
    pub doctor_id: Option<UserId>,
    #[serde(default)]
    pub doctor_ids: Vec<UserId>,
    #[serde(default)]
    pub requested_documents: Vec<String>,
}

/// A document request opened for an assigned doctor.
#[derive(Debug, Serialize)]
pub struct OpenedRequest {
    pub doctor_id: UserId,
    pub request_id: RequestId,
}

/// The case after an assignment, with the requests it opened.
#[derive(Debug, Serialize)]
pub struct Assigned {
    #[serde(flatten)]
    pub summary: CaseSummary,
    pub requests: Vec<OpenedRequest>,
}

/// `POST /pro/assign-doctor`: T9, by the case's coordinator.
pub async fn assign_doctor(
    State(state): State<AppState>,
    DoctorAuth(user): DoctorAuth,
    meta: RequestMeta,
    Json(req): Json<AssignDoctorRequest>,
) -> Result<Envelope<Assigned>, AppError> {
    let (actor, _) = doctor(user);
    // `doctor_id` and `doctor_ids` may both be sent (older and newer clients): one list, each
    // doctor once, in the order given. An empty list is the core's to refuse.
    let mut ids: Vec<UserId> = Vec::new();
    for id in req.doctor_id.into_iter().chain(req.doctor_ids) {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    let doctors: Vec<DoctorToAssign> = ids
        .into_iter()
        .map(|doctor_id| DoctorToAssign {
            doctor_id,
            requested_documents: (!req.requested_documents.is_empty()).then(|| RequestSpec {
                request_id: RequestId::new_v7(),
                items: req.requested_documents.clone(),
            }),
        })
        .collect();
    let requests = doctors
        .iter()
        .filter_map(|d| {
            d.requested_documents.as_ref().map(|r| OpenedRequest {
                doctor_id: d.doctor_id.clone(),
                request_id: r.request_id,
            })
        })
        .collect();
    let command = Command::AssignDoctors { doctors };
    let done = run_command(&state, req.case_id, &command, &actor, &meta).await?;
    Ok(ok(Assigned {
        summary: CaseSummary::of(&done.case, state.now()),
        requests,
    }))
}

/// The body of `/pro/unassign-doctor`.
#[derive(Debug, Deserialize)]
pub struct UnassignDoctorRequest {
    pub case_id: CaseId,
    pub doctor_id: UserId,
}

/// `POST /pro/unassign-doctor`: T10, by the case's coordinator.
pub async fn unassign_doctor(
    State(state): State<AppState>,
    DoctorAuth(user): DoctorAuth,
    meta: RequestMeta,
    Json(req): Json<UnassignDoctorRequest>,
) -> Result<Envelope<CaseSummary>, AppError> {
    let (actor, _) = doctor(user);
    let command = Command::UnassignDoctor {
        doctor_id: req.doctor_id,
    };
    command_summary(&state, req.case_id, &command, &actor, &meta).await
}

/// The body of `/pro/request-documents`.
#[derive(Debug, Deserialize)]
pub struct RequestDocumentsRequest {
    pub case_id: CaseId,
    /// What the patient should provide; the core refuses an empty list.
    #[serde(default)]
    pub items: Vec<String>,
}

/// The id of an opened document request.
#[derive(Debug, Serialize)]
pub struct RequestOpened {
    pub request_id: RequestId,
}

/// `POST /pro/request-documents`: T11.
pub async fn request_documents(
    State(state): State<AppState>,
    DoctorAuth(user): DoctorAuth,
    meta: RequestMeta,
    Json(req): Json<RequestDocumentsRequest>,
) -> Result<Envelope<RequestOpened>, AppError> {
    let (actor, _) = doctor(user);
    let request_id = RequestId::new_v7();
    let command = Command::RequestDocuments {
        request: RequestSpec {
            request_id,
            items: req.items,
        },
    };
    run_command(&state, req.case_id, &command, &actor, &meta).await?;
    Ok(ok(RequestOpened { request_id }))
}

/// `POST /pro/send-overdue-reminder`: T18, by the case's coordinator.
pub async fn send_overdue_reminder(
    State(state): State<AppState>,
    DoctorAuth(user): DoctorAuth,
    meta: RequestMeta,
    Json(req): Json<CaseRequest>,
) -> Result<Envelope<CaseSummary>, AppError> {
    let (actor, _) = doctor(user);
    command_summary(
        &state,
        req.case_id,
        &Command::SendOverdueReminder,
        &actor,
        &meta,
    )
    .await
}

// ----- Drafts and submissions ----------------------------------------------------------------

/// A saved draft.
#[derive(Debug, Serialize)]
pub struct Saved<T> {
    pub case_id: CaseId,
    #[serde(flatten)]
    pub body: T,
}

/// Saves `body` as the draft `kind` of `case_id` if the core lets `actor` write it now.
async fn save<T: Serialize>(
    state: &AppState,
    meta: &RequestMeta,
    actor: &Actor,
    case_id: CaseId,
    kind: &ContentKind,
    body: &T,
) -> Result<serde_json::Value, AppError> {
    let json = encode(body)?;
    state
        .store
        .save_draft(case_id, kind, &json, actor, &meta.audit(actor), state.now())
        .await?;
    Ok(json)
}

/// The draft `kind` of `case_id` decoded as `T` (`T::default()` when nothing was saved). The
/// caller has checked that the actor may write it, which implies reading it.
async fn saved<T: DeserializeOwned + Default>(
    state: &AppState,
    case_id: CaseId,
    kind: &ContentKind,
) -> Result<T, AppError> {
    match state.store.draft(case_id, kind).await? {
        Some(d) => decode(&d),
        None => Ok(T::default()),
    }
}

/// Submits: runs `command` and freezes `body` as the draft `kind` in the same transaction.
async fn submit(
    state: &AppState,
    meta: &RequestMeta,
    actor: &Actor,
    case_id: CaseId,
    command: &Command,
    freeze: (&ContentKind, &serde_json::Value),
) -> Result<Envelope<CaseSummary>, AppError> {
    let done = state
        .store
        .execute_freezing(
            case_id,
            command,
            actor,
            &meta.audit(actor),
            &state.settings.limits,
            state.now(),
            Some(freeze),
        )
        .await?;
    Ok(ok(CaseSummary::of(&done.case, state.now())))
}

/// The body of `/pro/save-notes`.
#[derive(Debug, Deserialize)]
pub struct SaveNotesRequest {
    pub case_id: CaseId,
    /// Required: a body without it must not wipe the saved notes (send `""` to clear them).
    pub notes: String,
}

/// `POST /pro/save-notes`: the doctor's private notes (never shown to anyone else).
pub async fn save_notes(
    State(state): State<AppState>,
    DoctorAuth(user): DoctorAuth,
    meta: RequestMeta,
    Json(req): Json<SaveNotesRequest>,
) -> Result<Envelope<Saved<NotesBody>>, AppError> {
    let (actor, me) = doctor(user);
    let body = NotesBody { notes: req.notes };
    save(
        &state,
        &meta,
        &actor,
        req.case_id,
        &ContentKind::Notes(me),
        &body,
    )
    .await?;
    Ok(ok(Saved {
        case_id: req.case_id,
        body,
    }))
}

/// An opinion as stored and as sent: every section optional, so that a save can carry only
/// what changed.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct OpinionDraft {
    pub summary: Option<String>,
    pub diagnosis: Option<String>,
    pub recommendations: Option<String>,
    pub concordance: Option<Concordance>,
    pub free_text: Option<String>,
}

impl OpinionDraft {
    fn is_empty(&self) -> bool {
        self.summary.is_none()
            && self.diagnosis.is_none()
            && self.recommendations.is_none()
            && self.concordance.is_none()
            && self.free_text.is_none()
    }

    /// `self` with the sections `patch` carries replaced.
    fn merged(self, patch: OpinionDraft) -> OpinionDraft {
        OpinionDraft {
            summary: patch.summary.or(self.summary),
            diagnosis: patch.diagnosis.or(self.diagnosis),
            recommendations: patch.recommendations.or(self.recommendations),
            concordance: patch.concordance.or(self.concordance),
            free_text: patch.free_text.or(self.free_text),
        }
    }

    fn into_content(self) -> OpinionContent {
        OpinionContent {
            summary: self.summary.unwrap_or_default(),
            diagnosis: self.diagnosis.unwrap_or_default(),
            recommendations: self.recommendations.unwrap_or_default(),
            concordance: self.concordance,
            free_text: self.free_text.unwrap_or_default(),
        }
    }
}

/// The body of `/pro/save-opinion` and `/pro/submit-opinion`.
#[derive(Debug, Deserialize)]
pub struct OpinionRequest {
    pub case_id: CaseId,
    #[serde(flatten)]
    pub sections: OpinionDraft,
}

/// Merges the sections sent into the doctor's saved opinion and saves it.
async fn save_opinion_sections(
    state: &AppState,
    meta: &RequestMeta,
    actor: &Actor,
    kind: &ContentKind,
    req: OpinionRequest,
) -> Result<OpinionContent, AppError> {
    let current: OpinionDraft = saved(state, req.case_id, kind).await?;
    let merged = current.merged(req.sections).into_content();
    save(state, meta, actor, req.case_id, kind, &merged).await?;
    Ok(merged)
}

/// `POST /pro/save-opinion`: saves the sections sent (the others stay as saved).
pub async fn save_opinion(
    State(state): State<AppState>,
    DoctorAuth(user): DoctorAuth,
    meta: RequestMeta,
    Json(req): Json<OpinionRequest>,
) -> Result<Envelope<Saved<OpinionContent>>, AppError> {
    let (actor, me) = doctor(user);
    let case_id = req.case_id;
    let kind = ContentKind::Opinion(me);
    let body = save_opinion_sections(&state, &meta, &actor, &kind, req).await?;
    Ok(ok(Saved { case_id, body }))
}

/// `POST /pro/submit-opinion`: T14. Sections sent with it are saved first; the saved opinion
/// is then submitted and frozen.
pub async fn submit_opinion(
    State(state): State<AppState>,
    DoctorAuth(user): DoctorAuth,
    meta: RequestMeta,
    Json(req): Json<OpinionRequest>,
) -> Result<Envelope<CaseSummary>, AppError> {
    let (actor, me) = doctor(user);
    let case_id = req.case_id;
    let kind = ContentKind::Opinion(me);
    let opinion = if req.sections.is_empty() {
        saved::<OpinionDraft>(&state, case_id, &kind)
            .await?
            .into_content()
    } else {
        save_opinion_sections(&state, &meta, &actor, &kind, req).await?
    };
    let body = encode(&opinion)?;
    let command = Command::SubmitOpinion { opinion };
    submit(&state, &meta, &actor, case_id, &command, (&kind, &body)).await
}

/// The body of `/pro/save-summary` and `/pro/submit-summary`.
#[derive(Debug, Deserialize)]
pub struct SummaryRequest {
    pub case_id: CaseId,
    pub summary: Option<String>,
}

/// `POST /pro/save-summary`: the coordinator's final summary draft.
pub async fn save_summary(
    State(state): State<AppState>,
    DoctorAuth(user): DoctorAuth,
    meta: RequestMeta,
    Json(req): Json<SummaryRequest>,
) -> Result<Envelope<Saved<SummaryBody>>, AppError> {
    let (actor, _) = doctor(user);
    // Required here (optional only with submit-summary): a body without it must not wipe the
    // saved draft.
    let Some(summary) = req.summary else {
        return Err(Refusal::field("summary").into());
    };
    let body = SummaryBody { summary };
    save(
        &state,
        &meta,
        &actor,
        req.case_id,
        &ContentKind::Summary,
        &body,
    )
    .await?;
    Ok(ok(Saved {
        case_id: req.case_id,
        body,
    }))
}

/// `POST /pro/submit-summary`: T15. A `summary` sent with it is saved first; the saved summary
/// is then submitted and frozen, which completes the case.
pub async fn submit_summary(
    State(state): State<AppState>,
    DoctorAuth(user): DoctorAuth,
    meta: RequestMeta,
    Json(req): Json<SummaryRequest>,
) -> Result<Envelope<CaseSummary>, AppError> {
    let (actor, _) = doctor(user);
    let kind = ContentKind::Summary;
    let body = match req.summary {
        Some(summary) => {
            let body = SummaryBody { summary };
            save(&state, &meta, &actor, req.case_id, &kind, &body).await?;
            body
        }
        None => saved(&state, req.case_id, &kind).await?,
    };
    let json = encode(&body)?;
    let command = Command::SubmitSummary {
        summary: body.summary,
    };
    submit(&state, &meta, &actor, req.case_id, &command, (&kind, &json)).await
}

// ----- Downloads -----------------------------------------------------------------------------

/// The body of `/pro/get-document`.
#[derive(Debug, Deserialize)]
pub struct GetDocumentRequest {
    pub case_id: CaseId,
    pub document_id: DocumentId,
}

/// `POST /pro/get-document`: a document's bytes with their content type. Audited.
pub async fn get_document(
    State(state): State<AppState>,
    DoctorAuth(user): DoctorAuth,
    meta: RequestMeta,
    Json(req): Json<GetDocumentRequest>,
) -> Result<Response, AppError> {
    let (actor, _) = doctor(user);
    downloads::document(&state, &meta, &actor, req.case_id, req.document_id).await
}

/// `POST /pro/get-report`: the report PDF, for the coordinator and the specialists of a
/// completed case. Audited.
pub async fn get_report(
    State(state): State<AppState>,
    DoctorAuth(user): DoctorAuth,
    meta: RequestMeta,
    RequestLang(lang): RequestLang,
    Json(req): Json<ReportRequest>,
) -> Result<Response, AppError> {
    let (actor, _) = doctor(user);
    let lang = req.lang(lang);
    downloads::report(&state, &meta, &actor, req.case_id, lang).await
}

// ----- Inbox ---------------------------------------------------------------------------------

/// `POST /pro/list-notifications`: the doctor's inbox (SPEC §7), newest first, in the request
/// language.
pub async fn list_notifications(
    State(state): State<AppState>,
    DoctorAuth(user): DoctorAuth,
    RequestLang(lang): RequestLang,
    JsonOrEmpty(req): JsonOrEmpty<PageQuery>,
) -> Result<Envelope<Vec<NotificationItem>>, AppError> {
    inbox(&state, &[user.sub], lang, req).await
}
