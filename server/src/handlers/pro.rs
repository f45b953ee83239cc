//! `/pro/*`: the doctors' endpoints (audience `snr_pro`), SPEC §10.
//!
//! A doctor's role is per case (coordinator or specialist, from the assignments); the core
//! decides what each may do and see. A doctor who is not (or no longer) on a case gets "Case not
//! found" from every endpoint taking a `case_id`.
//!
//! Notes, opinions and the summary are content documents, the same ones devices edit offline
//! and push through `/sync/v1/push` (`store::docs`): a save edits the document server-side with
//! the core's typed setters; a submit runs the command in the transaction of its last save, and
//! the command takes the text from the document and freezes it, so what the report shows is
//! exactly what was submitted.

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
use crate::store::{CaseFilter, Edit, StoredContent};
use crate::views::{CaseSummary, CaseView};
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sop_core::Refusal;
use sop_core::access::{ContentKind, Resource, can_view};
use sop_core::actor::Actor;
use sop_core::case::{AssignmentRole, Case, Relation};
use sop_core::command::{Command, Concordance, DoctorToAssign, OpinionContent, RequestSpec};
use sop_core::content::opinion::{self, Section};
use sop_core::content::{Content, ContentDoc, DocRef, notes, summary};
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

impl From<&StoredContent> for DraftState {
    fn from(d: &StoredContent) -> Self {
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

/// The notes as answered by `/pro/save-notes`.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct NotesBody {
    #[serde(default)]
    pub notes: String,
}

/// The summary as answered by `/pro/save-summary`.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct SummaryBody {
    #[serde(default)]
    pub summary: String,
}

/// The notes text of a notes document's content.
fn notes_text(content: &Content) -> String {
    match content {
        Content::Notes { text } => text.clone(),
        _ => String::new(),
    }
}

/// The sections of an opinion document's content.
fn opinion_sections(content: &Content) -> OpinionContent {
    match content {
        Content::Opinion(opinion) => opinion.clone(),
        _ => OpinionContent::default(),
    }
}

/// The text of a summary document's content.
fn summary_text(content: &Content) -> String {
    match content {
        Content::Summary { summary } => summary.clone(),
        _ => String::new(),
    }
}

/// The content document `kind` of `case_id`, if anything was ever written to it (the frozen
/// text once submitted). The caller checks who may read it.
async fn stored(
    state: &AppState,
    case_id: CaseId,
    kind: ContentKind,
) -> Result<Option<StoredContent>, AppError> {
    Ok(state.store.content(&DocRef::new(case_id, kind)).await?)
}

/// The opinion of `doctor_id` on `case`, as a view.
async fn opinion_of(
    state: &AppState,
    case: &Case,
    doctor_id: &UserId,
) -> Result<OpinionView, AppError> {
    let draft = stored(state, case.case_id, ContentKind::Opinion(doctor_id.clone())).await?;
    let submitted = case
        .active_specialist(doctor_id)
        .is_some_and(|a| a.opinion_submitted_at.is_some());
    Ok(OpinionView {
        doctor_id: doctor_id.clone(),
        opinion: draft
            .as_ref()
            .map(|d| opinion_sections(&d.content))
            .unwrap_or_default(),
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
    let notes = match stored(state, case.case_id, ContentKind::Notes(me.clone())).await? {
        Some(d) if can_view(case, actor, &Resource::Notes { doctor: me }) => Some(NotesView {
            notes: notes_text(&d.content),
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
    let summary = match stored(state, case.case_id, ContentKind::Summary).await? {
        // Others see the summary once it is submitted; the coordinator sees their draft too.
        Some(d)
            if can_view(case, actor, &Resource::SummaryAndReport)
                && (d.frozen_at.is_some() || case.relation_of(actor) == Relation::Coordinator) =>
        {
            Some(SummaryView {
                summary: summary_text(&d.content),
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
//
// Notes, opinions and the summary are content documents (`store::docs`): a save edits the
// document with the core's typed setters, as one change that devices pull like any pushed one;
// a submit saves what it carries and runs the command in one transaction, the command taking
// the text from the document and freezing it there.

/// A saved draft.
#[derive(Debug, Serialize)]
pub struct Saved<T> {
    pub case_id: CaseId,
    #[serde(flatten)]
    pub body: T,
}

/// Edits the document `kind` of `case_id` if the core lets `actor` write it now; answers the
/// document's content after the edit.
async fn save(
    state: &AppState,
    meta: &RequestMeta,
    actor: &Actor,
    case_id: CaseId,
    kind: ContentKind,
    edit: &Edit<'_>,
) -> Result<Content, AppError> {
    Ok(state
        .store
        .edit_content(
            &DocRef::new(case_id, kind),
            edit,
            actor,
            &meta.audit(actor),
            &state.settings.limits,
            state.now(),
        )
        .await?)
}

/// Submits: applies `edit` (what the request carried, if anything) to the document `kind` and
/// runs `command` in the same transaction.
async fn submit(
    state: &AppState,
    meta: &RequestMeta,
    actor: &Actor,
    (case_id, kind): (CaseId, ContentKind),
    edit: Option<&Edit<'_>>,
    command: &Command,
) -> Result<Envelope<CaseSummary>, AppError> {
    let done = state
        .store
        .edit_and_execute(
            &DocRef::new(case_id, kind),
            edit,
            command,
            actor,
            &meta.audit(actor),
            &state.settings.limits,
            state.now(),
        )
        .await?;
    if !done.decision.effects.is_empty() {
        state.outbox_wake.notify();
    }
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
    let edit = |doc: &mut ContentDoc| notes::set(doc, &req.notes);
    let content = save(
        &state,
        &meta,
        &actor,
        req.case_id,
        ContentKind::Notes(me),
        &edit,
    )
    .await?;
    Ok(ok(Saved {
        case_id: req.case_id,
        body: NotesBody {
            notes: notes_text(&content),
        },
    }))
}

/// The opinion sections a request carries: each optional, so that a save changes only what it
/// sends.
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

    /// Writes the sections this draft carries into an opinion document.
    fn apply(&self, doc: &mut ContentDoc) -> Result<(), Refusal> {
        let sections = [
            (Section::Summary, &self.summary),
            (Section::Diagnosis, &self.diagnosis),
            (Section::Recommendations, &self.recommendations),
            (Section::FreeText, &self.free_text),
        ];
        for (section, text) in sections {
            if let Some(text) = text {
                opinion::set_section(doc, section, text)?;
            }
        }
        if let Some(c) = self.concordance {
            opinion::set_concordance(doc, Some(c))?;
        }
        Ok(())
    }
}

/// The body of `/pro/save-opinion` and `/pro/submit-opinion`.
#[derive(Debug, Deserialize)]
pub struct OpinionRequest {
    pub case_id: CaseId,
    #[serde(flatten)]
    pub sections: OpinionDraft,
}

/// `POST /pro/save-opinion`: saves the sections sent (the others stay as saved).
pub async fn save_opinion(
    State(state): State<AppState>,
    DoctorAuth(user): DoctorAuth,
    meta: RequestMeta,
    Json(req): Json<OpinionRequest>,
) -> Result<Envelope<Saved<OpinionContent>>, AppError> {
    let (actor, me) = doctor(user);
    let edit = |doc: &mut ContentDoc| req.sections.apply(doc);
    let kind = ContentKind::Opinion(me);
    let content = save(&state, &meta, &actor, req.case_id, kind, &edit).await?;
    Ok(ok(Saved {
        case_id: req.case_id,
        body: opinion_sections(&content),
    }))
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
    let edit = |doc: &mut ContentDoc| req.sections.apply(doc);
    let edit: Option<&Edit<'_>> = (!req.sections.is_empty()).then_some(&edit);
    // The store takes the opinion from the document.
    let command = Command::SubmitOpinion {
        opinion: OpinionContent::default(),
    };
    let target = (req.case_id, ContentKind::Opinion(me));
    submit(&state, &meta, &actor, target, edit, &command).await
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
    let Some(text) = req.summary else {
        return Err(Refusal::field("summary").into());
    };
    let edit = |doc: &mut ContentDoc| summary::set(doc, &text);
    let content = save(
        &state,
        &meta,
        &actor,
        req.case_id,
        ContentKind::Summary,
        &edit,
    )
    .await?;
    Ok(ok(Saved {
        case_id: req.case_id,
        body: SummaryBody {
            summary: summary_text(&content),
        },
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
    let edit = |doc: &mut ContentDoc| match &req.summary {
        Some(text) => summary::set(doc, text),
        None => Ok(()),
    };
    let edit: Option<&Edit<'_>> = req.summary.is_some().then_some(&edit);
    // The store takes the summary from the document.
    let command = Command::SubmitSummary {
        summary: String::new(),
    };
    let target = (req.case_id, ContentKind::Summary);
    submit(&state, &meta, &actor, target, edit, &command).await
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
