//! `/app/*`: the patient app's endpoints (audience `snr_usr`), SPEC §10.
//!
//! Every decision about a case is the core's: handlers turn a request into a `Command` (or a
//! visibility check), run it through the store and answer the envelope. Ids of things the
//! server creates (cases without a client id, payment attempts, documents) are UUIDv7.
//!
//! Uploads (`/app/upload-document`) are multipart: the `file` field streams into the blob store
//! while it is hashed and counted against `limits.max_file_bytes`; its type is detected from the
//! bytes ([`crate::detect`]); the core then decides on the `upload_document` command before the
//! bytes are kept.

use crate::api::{
    CaseRequest, PageQuery, RequestMeta, audit_read, case_details, case_not_found, command_summary,
    paged, run_command, visible_case,
};
use crate::auth::{AuthUser, PatientAuth};
use crate::blobs::{BlobWriter, StagedBlob};
use crate::detect;
use crate::envelope::{Envelope, ok};
use crate::error::AppError;
use crate::extract::{Json, JsonOrEmpty};
use crate::handlers::downloads::{self, ReportRequest};
use crate::lang::RequestLang;
use crate::state::AppState;
use crate::store::CaseFilter;
use crate::store::rows::{AuditRow, NotificationRow};
use crate::views::{CaseSummary, CaseView};
use axum::Router;
use axum::body::Body;
use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sop_core::Refusal;
use sop_core::access::{Resource, can_view};
use sop_core::actor::Actor;
use sop_core::card::{StatusCard, status_card};
use sop_core::case::{
    Case, Gender, Intake, IntakePatch, PaymentStatus, RefundStatus, Relation, Status,
};
use sop_core::catalog::{DiseaseCategory, DoctorProfile, ReviewType};
use sop_core::command::{Command, NewDocument};
use sop_core::ids::{CaseId, CategoryId, DocumentId, PaymentId, RequestId, ReviewTypeId, UserId};
use sop_core::lang::Lang;
use std::collections::HashMap;
use uuid::Uuid;

/// The routes of `/app`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/how", post(how))
        .route("/list-reviewtypes", post(list_review_types))
        .route("/list-disease-categories", post(list_disease_categories))
        .route("/create-case", post(create_case))
        .route("/update-case", post(update_case))
        .route("/submit-case", post(submit_case))
        .route("/list-cases", post(list_cases))
        .route("/review-case-details", post(review_case_details))
        .route("/cancel-case", post(cancel_case))
        .route("/payment-summary", post(payment_summary))
        .route("/retry-payment", post(retry_payment))
        .route(
            "/upload-document",
            // The upload enforces its own limit from the settings (see `upload_document`).
            post(upload_document).layer(DefaultBodyLimit::disable()),
        )
        .route("/remove-document", post(remove_document))
        .route("/answer-document-request", post(answer_document_request))
        .route("/get-report", post(get_report))
        .route("/get-document", post(downloads::app_document))
        .route("/list-notifications", post(list_notifications))
        .route("/access-history", post(access_history))
}

/// The patient making a request.
fn patient(user: AuthUser) -> Actor {
    Actor::Patient(UserId::new(user.sub))
}

/// The body of `/app/how`: nothing is needed (the language comes from the `lang` header); an
/// empty body or `{}` are both fine and unknown fields are ignored.
#[derive(Debug, Default, Deserialize)]
pub struct HowRequest {}

/// One step of "how it works".
#[derive(Debug, Serialize)]
pub struct HowStep {
    /// Position, from 1.
    pub step: u8,
    /// Short title.
    pub title: &'static str,
    /// One-sentence explanation.
    pub description: &'static str,
}

/// (title en, title ar, description en, description ar), in order.
const HOW_STEPS: [(&str, &str, &str, &str); 5] = [
    (
        "Submit your case",
        "أرسل حالتك",
        "Describe your condition, answer a few questions and upload your medical documents.",
        "صف حالتك وأجب عن بعض الأسئلة وارفع مستنداتك الطبية.",
    ),
    (
        "A coordinator is assigned",
        "يتم تعيين منسق",
        "A coordinating doctor takes charge of your case and may ask for more documents.",
        "يتولى طبيب منسق متابعة حالتك وقد يطلب مستندات إضافية.",
    ),
    (
        "Pay",
        "ادفع",
        "Pay the review fee securely through the payment link.",
        "ادفع رسوم المراجعة بأمان من خلال رابط الدفع.",
    ),
    (
        "Specialists review",
        "مراجعة الأطباء المختصين",
        "Specialists study your case and give their opinions.",
        "يدرس الأطباء المختصون حالتك ويقدمون آراءهم.",
    ),
    (
        "Receive your report",
        "استلم تقريرك",
        "Receive the final second-opinion report in the app.",
        "استلم تقرير الرأي الطبي الثاني النهائي في التطبيق.",
    ),
];

/// `POST /app/how`: the "how it works" steps in the language of the `lang` header.
pub async fn how(
    PatientAuth(_user): PatientAuth,
    RequestLang(lang): RequestLang,
    // Parsed so that a malformed body is refused like everywhere else; it carries nothing yet.
    JsonOrEmpty(_request): JsonOrEmpty<HowRequest>,
) -> Envelope<Vec<HowStep>> {
    let steps = HOW_STEPS
        .iter()
        .zip(1u8..)
        .map(|(&(title_en, title_ar, desc_en, desc_ar), step)| HowStep {
            step,
            title: lang.pick(title_en, title_ar),
            description: lang.pick(desc_en, desc_ar),
        })
        .collect();
    ok(steps)
}

// ----- Catalog -------------------------------------------------------------------------------

/// The body of the paged lists that take nothing else.
#[derive(Debug, Default, Deserialize)]
pub struct ListRequest {
    #[serde(flatten)]
    pub page: PageQuery,
}

/// A review type as patients see it: every field of SPEC §2 plus the texts in the request's
/// language.
#[derive(Debug, Serialize)]
pub struct ReviewTypeItem {
    #[serde(flatten)]
    pub review_type: ReviewType,
    pub title: String,
    pub description: String,
    pub duration: String,
}

impl ReviewTypeItem {
    fn of(rt: ReviewType, lang: Lang) -> Self {
        Self {
            title: lang.pick(&rt.title_en, &rt.title_ar).to_owned(),
            description: lang.pick(&rt.description_en, &rt.description_ar).to_owned(),
            duration: lang.pick(&rt.duration_en, &rt.duration_ar).to_owned(),
            review_type: rt,
        }
    }
}

/// SPEC §2: patients see at most this many review types.
const MAX_REVIEW_TYPES: i64 = 100;

/// `POST /app/list-reviewtypes`: active review types, newest first, at most 100 in all.
pub async fn list_review_types(
    State(state): State<AppState>,
    PatientAuth(_user): PatientAuth,
    RequestLang(lang): RequestLang,
    JsonOrEmpty(req): JsonOrEmpty<ListRequest>,
) -> Result<Envelope<Vec<ReviewTypeItem>>, AppError> {
    let page = req.page.page();
    let mut listed = state.store.list_review_types(true, page).await?;
    // Past the first 100, nothing: cut the page where the 100th item falls.
    let first = page.window().offset;
    let room = usize::try_from((MAX_REVIEW_TYPES - first).max(0)).unwrap_or(0);
    listed.items.truncate(room);
    listed.total = listed.total.min(MAX_REVIEW_TYPES);
    Ok(paged(listed, |rt| ReviewTypeItem::of(rt, lang)))
}

/// A disease category as patients see it (the eligible doctors are staff data, not shown).
#[derive(Debug, Serialize)]
pub struct CategoryItem {
    pub dc_id: CategoryId,
    pub label_en: String,
    pub label_ar: String,
    /// The label in the request's language.
    pub label: String,
    pub active: bool,
}

impl CategoryItem {
    fn of(dc: DiseaseCategory, lang: Lang) -> Self {
        Self {
            label: lang.pick(&dc.label_en, &dc.label_ar).to_owned(),
            dc_id: dc.dc_id,
            label_en: dc.label_en,
            label_ar: dc.label_ar,
            active: dc.active,
        }
    }
}

/// `POST /app/list-disease-categories`: active categories, newest first; `q` searches labels.
#[derive(Debug, Default, Deserialize)]
pub struct ListCategoriesRequest {
    #[serde(flatten)]
    pub page: PageQuery,
    pub q: Option<String>,
}

pub async fn list_disease_categories(
    State(state): State<AppState>,
    PatientAuth(_user): PatientAuth,
    RequestLang(lang): RequestLang,
    JsonOrEmpty(req): JsonOrEmpty<ListCategoriesRequest>,
) -> Result<Envelope<Vec<CategoryItem>>, AppError> {
    let listed = state
        .store
        .list_categories(true, req.q.as_deref(), req.page.page())
        .await?;
    Ok(paged(listed, |dc| CategoryItem::of(dc, lang)))
}

// ----- The case and its intake ---------------------------------------------------------------

/// The body of `/app/create-case`. `case_id` is the client's (any UUID version); without one
/// the server makes a v7.
#[derive(Debug, Deserialize)]
pub struct CreateCaseRequest {
    pub case_id: Option<CaseId>,
    pub rt_id: ReviewTypeId,
    pub dc_id: CategoryId,
    pub patient_age: Option<i32>,
    pub patient_gender: Option<Gender>,
    #[serde(default)]
    pub medical_history: String,
    #[serde(default)]
    pub questions: String,
    /// Create and submit at once (T2) instead of keeping a draft (T1).
    #[serde(default)]
    pub submit: bool,
}

/// The id of a created case.
#[derive(Debug, Serialize)]
pub struct CreatedCase {
    pub case_id: CaseId,
    pub status: Status,
}

/// `POST /app/create-case`: T1, or T2 with `submit: true`.
pub async fn create_case(
    State(state): State<AppState>,
    PatientAuth(user): PatientAuth,
    meta: RequestMeta,
    Json(req): Json<CreateCaseRequest>,
) -> Result<Envelope<CreatedCase>, AppError> {
    let case_id = req.case_id.unwrap_or_else(CaseId::new_v7);
    let command = Command::CreateCase {
        case_id,
        rt_id: req.rt_id,
        dc_id: req.dc_id,
        intake: Intake {
            patient_age: req.patient_age,
            patient_gender: req.patient_gender,
            medical_history: req.medical_history,
            questions: req.questions,
        },
        submit: req.submit,
    };
    let done = run_command(&state, case_id, &command, &patient(user), &meta).await?;
    Ok(ok(CreatedCase {
        case_id,
        status: done.case.status,
    }))
}

/// The body of `/app/update-case`: the case and any subset of the intake fields.
#[derive(Debug, Deserialize)]
pub struct UpdateCaseRequest {
    pub case_id: CaseId,
    pub patient_age: Option<i32>,
    pub patient_gender: Option<Gender>,
    pub medical_history: Option<String>,
    pub questions: Option<String>,
}

/// `POST /app/update-case`: a partial edit of the intake while the case is a draft. The intake
/// is a content document (the one the patient's phones edit offline): the core decides the
/// patch, and the same transaction writes it into the document (`store.update_intake`).
pub async fn update_case(
    State(state): State<AppState>,
    PatientAuth(user): PatientAuth,
    meta: RequestMeta,
    Json(req): Json<UpdateCaseRequest>,
) -> Result<Envelope<CaseSummary>, AppError> {
    let actor = patient(user);
    let patch = IntakePatch {
        patient_age: req.patient_age,
        patient_gender: req.patient_gender,
        medical_history: req.medical_history,
        questions: req.questions,
    };
    let done = state
        .store
        .update_intake(
            req.case_id,
            &patch,
            &actor,
            &meta.audit(&actor),
            &state.settings.limits,
            state.now(),
        )
        .await?;
    Ok(ok(CaseSummary::of(&done.case, state.now())))
}

/// `POST /app/submit-case`: T3.
pub async fn submit_case(
    State(state): State<AppState>,
    PatientAuth(user): PatientAuth,
    meta: RequestMeta,
    Json(req): Json<CaseRequest>,
) -> Result<Envelope<CaseSummary>, AppError> {
    command_summary(
        &state,
        req.case_id,
        &Command::SubmitCase,
        &patient(user),
        &meta,
    )
    .await
}

/// The body of `/app/cancel-case`.
#[derive(Debug, Deserialize)]
pub struct CancelRequest {
    pub case_id: CaseId,
    /// Required by the core (1–1000 characters); missing counts as empty.
    #[serde(default)]
    pub reason: String,
}

/// `POST /app/cancel-case`: T16 by the owner.
pub async fn cancel_case(
    State(state): State<AppState>,
    PatientAuth(user): PatientAuth,
    meta: RequestMeta,
    Json(req): Json<CancelRequest>,
) -> Result<Envelope<CaseSummary>, AppError> {
    let command = Command::Cancel { reason: req.reason };
    command_summary(&state, req.case_id, &command, &patient(user), &meta).await
}

/// The body of `/app/list-cases`: a page and an optional `status` filter.
#[derive(Debug, Default, Deserialize)]
pub struct ListCasesRequest {
    #[serde(flatten)]
    pub page: PageQuery,
    pub status: Option<String>,
}

/// One of the patient's cases: its summary and status card.
#[derive(Debug, Serialize)]
pub struct PatientCaseItem {
    #[serde(flatten)]
    pub summary: CaseSummary,
    pub card: StatusCard,
}

/// The directory entries of the coordinators of `cases`, each looked up once.
async fn coordinators_of(
    state: &AppState,
    cases: &[Case],
) -> Result<HashMap<UserId, DoctorProfile>, AppError> {
    let mut found = HashMap::new();
    for id in cases.iter().filter_map(|c| c.coordinator_id.as_ref()) {
        if !found.contains_key(id)
            && let Some(profile) = crate::profiles::doctor_profile(state, id.as_str()).await?
        {
            found.insert(id.clone(), profile);
        }
    }
    Ok(found)
}

/// `POST /app/list-cases`: the patient's own cases, newest first.
pub async fn list_cases(
    State(state): State<AppState>,
    PatientAuth(user): PatientAuth,
    RequestLang(lang): RequestLang,
    JsonOrEmpty(req): JsonOrEmpty<ListCasesRequest>,
) -> Result<Envelope<Vec<PatientCaseItem>>, AppError> {
    let status = match req.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(
            Status::parse(s)
                .ok_or_else(|| Refusal::field("status"))?
                .as_str()
                .to_owned(),
        ),
    };
    let filter = CaseFilter {
        patient_id: Some(user.sub),
        status,
        ..CaseFilter::default()
    };
    let listed = state.store.list_cases(&filter, req.page.page()).await?;
    let coordinators = coordinators_of(&state, &listed.items).await?;
    let now = state.now();
    Ok(paged(listed, |case| {
        let coordinator = case
            .coordinator_id
            .as_ref()
            .and_then(|id| coordinators.get(id));
        PatientCaseItem {
            card: status_card(&case, coordinator, lang, now),
            summary: CaseSummary::of(&case, now),
        }
    }))
}

/// `POST /app/review-case-details`: the case as its owner sees it (SPEC §8). Audited.
pub async fn review_case_details(
    State(state): State<AppState>,
    PatientAuth(user): PatientAuth,
    meta: RequestMeta,
    RequestLang(lang): RequestLang,
    Json(req): Json<CaseRequest>,
) -> Result<Envelope<CaseView>, AppError> {
    let actor = patient(user);
    let result = async {
        let case = visible_case(&state, req.case_id, &actor).await?;
        case_details(&state, &case, &actor, lang).await
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

// ----- Payment -------------------------------------------------------------------------------

/// The order summary (SPEC §5): what the patient pays, for what, and where.
#[derive(Debug, Serialize)]
pub struct PaymentSummary {
    pub case_id: CaseId,
    /// The case reference shown on the order (`SOP-…`).
    pub reference: String,
    pub rt_id: ReviewTypeId,
    /// The review type's title in the request's language.
    pub review_type: String,
    /// Minor units of `currency`.
    pub amount: i64,
    pub currency: String,
    /// `not_created` before a coordinator is assigned, then the current attempt's
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    pub payment_id: Option<PaymentId>,
    pub payment_link: Option<String>,
    pub refund: Option<RefundStatus>,
    pub paid_at: Option<DateTime<Utc>>,
}

fn payment_status_name(status: PaymentStatus) -> &'static str {
    match status {
        PaymentStatus::Pending => "pending",
        PaymentStatus::Succeeded => "succeeded",
        PaymentStatus::Failed => "failed",
    }
}

/// `POST /app/payment-summary`: the order of the owner's case, before and after paying.
pub async fn payment_summary(
    State(state): State<AppState>,
    PatientAuth(user): PatientAuth,
    RequestLang(lang): RequestLang,
    Json(req): Json<CaseRequest>,
) -> Result<Envelope<PaymentSummary>, AppError> {
    let actor = patient(user);
    let case = visible_case(&state, req.case_id, &actor).await?;
    if !can_view(&case, &actor, &Resource::PaymentDetails) {
        return Err(case_not_found());
    }
    let review_type = state.store.review_type(case.rt_id).await?;
    let title = review_type
        .as_ref()
        .map(|rt| lang.pick(&rt.title_en, &rt.title_ar).to_owned())
        .unwrap_or_default();
    // The attempt's own amount once there is one; before, the price fixed at submission, or
    // for a draft the review type's current price.
    let (amount, currency) = match (case.current_payment(), &case.pricing, &review_type) {
        (Some(p), _, _) => (p.amount, p.currency.clone()),
        (None, Some(pricing), _) => (pricing.price, pricing.currency.clone()),
        (None, None, Some(rt)) => (rt.price, rt.currency.clone()),
        (None, None, None) => {
            return Err(AppError::Internal(anyhow::anyhow!(
                "case without pricing and without its review type"
            )));
        }
    };
    let payment = case.current_payment();
    Ok(ok(PaymentSummary {
        case_id: case.case_id,
        reference: case.reference(),
        rt_id: case.rt_id,
        review_type: title,
        amount,
        currency,
        status: payment
            .map_or("not_created", |p| payment_status_name(p.status))
            .to_owned(),
        payment_id: payment.map(|p| p.payment_id),
        payment_link: payment.and_then(|p| p.link.clone()),
        refund: payment.and_then(|p| p.refund),
        paid_at: case.paid_at,
    }))
}

/// The new payment attempt of a retry.
#[derive(Debug, Serialize)]
pub struct RetriedPayment {
    pub case_id: CaseId,
    pub payment_id: PaymentId,
    pub status: Status,
}

/// `POST /app/retry-payment`: T8, a new attempt (its link arrives from the payment platform
/// shortly after; `payment-summary` shows it).
pub async fn retry_payment(
    State(state): State<AppState>,
    PatientAuth(user): PatientAuth,
    meta: RequestMeta,
    Json(req): Json<CaseRequest>,
) -> Result<Envelope<RetriedPayment>, AppError> {
    let payment_id = PaymentId::new_v7();
    let command = Command::RetryPayment { payment_id };
    let done = run_command(&state, req.case_id, &command, &patient(user), &meta).await?;
    Ok(ok(RetriedPayment {
        case_id: req.case_id,
        payment_id,
        status: done.case.status,
    }))
}

// ----- Documents -----------------------------------------------------------------------------

/// Room for the multipart framing and the text fields beyond the file itself.
const UPLOAD_SLACK: usize = 64 * 1024;
/// Text fields (`case_id`, `request_id`, ...) longer than this are not ids.
const MAX_TEXT_FIELD: usize = 1024;
/// The file name recorded when the client sends none.
const DEFAULT_FILE_NAME: &str = "document";

/// A stored document.
#[derive(Debug, Serialize)]
pub struct UploadedDocument {
    pub document_id: DocumentId,
    pub sha256: String,
    /// Detected from the bytes, whatever the file name says.
    pub content_type: String,
    pub size: i64,
}

fn too_large(max_file_bytes: i64) -> AppError {
    AppError::PayloadTooLarge(format!(
        "The file is larger than the limit of {max_file_bytes} bytes ({:.1} MiB)",
        max_file_bytes as f64 / (1024.0 * 1024.0)
    ))
}

fn multipart_error(err: MultipartError, max_file_bytes: i64) -> AppError {
    if err.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large(max_file_bytes)
    } else {
        AppError::BadRequest(err.body_text())
    }
}

fn io_error(err: std::io::Error) -> AppError {
    AppError::Internal(anyhow::Error::new(err).context("cannot store an upload"))
}

/// What the multipart form of an upload carried.
#[derive(Debug, Default)]
struct UploadForm {
    case_id: Option<String>,
    request_id: Option<String>,
    file: Option<(String, StagedBlob)>,
}

/// Reads a short text field.
async fn text_field(field: Field<'_>, max_file_bytes: i64) -> Result<String, AppError> {
    let name = field.name().unwrap_or_default().to_owned();
    let text = field
        .text()
        .await
        .map_err(|e| multipart_error(e, max_file_bytes))?;
    if text.len() > MAX_TEXT_FIELD {
        return Err(Refusal::field(&name).into());
    }
    Ok(text)
}

/// Streams the `file` field into the blob store, refusing it as soon as it passes the limit.
async fn file_field(
    state: &AppState,
    mut field: Field<'_>,
    max_file_bytes: i64,
) -> Result<(String, StagedBlob), AppError> {
    let file_name = field
        .file_name()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or(DEFAULT_FILE_NAME)
        .to_owned();
    let limit = u64::try_from(max_file_bytes).unwrap_or(0);
    let mut writer: BlobWriter = state.blobs.begin().await.map_err(io_error)?;
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| multipart_error(e, max_file_bytes))?
    {
        if writer.size() + chunk.len() as u64 > limit {
            return Err(too_large(max_file_bytes));
        }
        writer.write(&chunk).await.map_err(io_error)?;
    }
    Ok((file_name, writer.finish().await.map_err(io_error)?))
}

/// Reads the whole form: the file into a staged blob, the rest as text. Unknown fields are
/// ignored, like unknown JSON fields.
async fn read_upload_form(
    state: &AppState,
    mut multipart: Multipart,
    max_file_bytes: i64,
) -> Result<UploadForm, AppError> {
    let mut form = UploadForm::default();
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| multipart_error(e, max_file_bytes))?
    {
        match field.name() {
            Some("file") if form.file.is_some() => {
                return Err(AppError::BadRequest(
                    "send one `file` per upload request".to_owned(),
                ));
            }
            Some("file") => form.file = Some(file_field(state, field, max_file_bytes).await?),
            Some("case_id") => form.case_id = Some(text_field(field, max_file_bytes).await?),
            Some("request_id") => {
                form.request_id = Some(text_field(field, max_file_bytes).await?);
            }
            _ => {}
        }
    }
    Ok(form)
}

fn parse_id<T: std::str::FromStr>(value: Option<&str>, field: &str) -> Result<T, AppError> {
    value
        .map(str::trim)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Refusal::field(field).into())
}

/// `POST /app/upload-document` (multipart: `file`, `case_id`, optional `request_id`): T12.
///
/// The bytes are kept only if the core accepts the upload (checked before and decided again
/// when the command runs). Uploading a file the case already holds (for the same request)
/// answers that document instead of adding a copy (uploads are idempotent by SHA-256, SPEC §4),
/// and the same bytes are stored once whichever cases they belong to.
pub async fn upload_document(
    State(state): State<AppState>,
    PatientAuth(user): PatientAuth,
    meta: RequestMeta,
    request: Request,
) -> Result<Envelope<UploadedDocument>, AppError> {
    let max_file_bytes = state.settings.limits.max_file_bytes;
    let body_limit = usize::try_from(max_file_bytes)
        .unwrap_or(0)
        .saturating_add(UPLOAD_SLACK);
    let request = request.map(|body| Body::new(http_body_util::Limited::new(body, body_limit)));
    let multipart = Multipart::from_request(request, &state)
        .await
        .map_err(|e: MultipartRejection| AppError::BadRequest(e.body_text()))?;
    let form = read_upload_form(&state, multipart, max_file_bytes).await?;
    let case_id: CaseId = parse_id(form.case_id.as_deref(), "case_id")?;
    let request_id: Option<RequestId> = match form.request_id.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(id) => Some(parse_id(Some(id), "request_id")?),
    };
    let Some((file_name, staged)) = form.file else {
        return Err(Refusal::field("file").into());
    };
    let actor = patient(user);
    store_upload(
        &state, &meta, &actor, case_id, request_id, file_name, staged,
    )
    .await
}

/// Decides and stores one staged upload.
async fn store_upload(
    state: &AppState,
    meta: &RequestMeta,
    actor: &Actor,
    case_id: CaseId,
    request_id: Option<RequestId>,
    file_name: String,
    staged: StagedBlob,
) -> Result<Envelope<UploadedDocument>, AppError> {
    let path = staged.path().to_path_buf();
    let content_type = tokio::task::spawn_blocking(move || detect::detect_file(&path))
        .await
        .map_err(|e| AppError::Internal(anyhow::Error::new(e)))?
        .map_err(io_error)?;
    let size = i64::try_from(staged.size()).unwrap_or(i64::MAX);
    let sha256 = staged.sha256().to_owned();
    if let Some(existing) = already_uploaded(state, actor, case_id, &sha256, request_id).await? {
        return Ok(ok(existing));
    }
    let document_id = DocumentId::new_v7();
    let document = NewDocument {
        document_id,
        file_name,
        content_type: content_type.to_owned(),
        size,
        sha256: sha256.clone(),
        request_id,
    };
    let command = Command::UploadDocument { document };
    let now = state.now();
    let limits = &state.settings.limits;
    state
        .store
        .precheck(case_id, &command, actor, &meta.audit(actor), limits, now)
        .await?;
    staged.commit().await.map_err(io_error)?;
    state
        .store
        .record_blob(&sha256, size, content_type, now)
        .await?;
    if let Some(user) = actor.user_id() {
        // The patient holds these bytes: a device of theirs may attach them too (sync push).
        crate::uploads::record_uploaded(state, user.as_str(), &sha256, size, now).await?;
    }
    run_command(state, case_id, &command, actor, meta).await?;
    Ok(ok(UploadedDocument {
        document_id,
        sha256,
        content_type: content_type.to_owned(),
        size,
    }))
}

/// The document of the owner's case that already holds these bytes for the same request, if
/// any: a repeated upload (a retry after a lost answer) rather than a new document.
async fn already_uploaded(
    state: &AppState,
    actor: &Actor,
    case_id: CaseId,
    sha256: &str,
    request_id: Option<RequestId>,
) -> Result<Option<UploadedDocument>, AppError> {
    let Some(case) = state.store.case(case_id).await? else {
        return Ok(None);
    };
    if case.relation_of(actor) != Relation::Owner {
        return Ok(None);
    }
    Ok(case
        .present_documents()
        .find(|d| d.sha256 == sha256 && d.request_id == request_id)
        .map(|d| UploadedDocument {
            document_id: d.document_id,
            sha256: d.sha256.clone(),
            content_type: d.content_type.clone(),
            size: d.size,
        }))
}

/// The body of `/app/remove-document`.
#[derive(Debug, Deserialize)]
pub struct DocumentRequest {
    pub case_id: CaseId,
    pub document_id: DocumentId,
}

/// `POST /app/remove-document`: T13.
pub async fn remove_document(
    State(state): State<AppState>,
    PatientAuth(user): PatientAuth,
    meta: RequestMeta,
    Json(req): Json<DocumentRequest>,
) -> Result<Envelope<CaseSummary>, AppError> {
    let command = Command::RemoveDocument {
        document_id: req.document_id,
    };
    command_summary(&state, req.case_id, &command, &patient(user), &meta).await
}

/// The body of `/app/answer-document-request`.
#[derive(Debug, Deserialize)]
pub struct AnswerRequest {
    pub case_id: CaseId,
    pub request_id: RequestId,
}

/// `POST /app/answer-document-request`: the patient says a request is answered (T12).
pub async fn answer_document_request(
    State(state): State<AppState>,
    PatientAuth(user): PatientAuth,
    meta: RequestMeta,
    Json(req): Json<AnswerRequest>,
) -> Result<Envelope<CaseSummary>, AppError> {
    let command = Command::AnswerDocumentRequest {
        request_id: req.request_id,
    };
    command_summary(&state, req.case_id, &command, &patient(user), &meta).await
}

// ----- Report --------------------------------------------------------------------------------

/// `POST /app/get-report`: the report PDF of the owner's completed case. Audited.
pub async fn get_report(
    State(state): State<AppState>,
    PatientAuth(user): PatientAuth,
    meta: RequestMeta,
    RequestLang(lang): RequestLang,
    Json(req): Json<ReportRequest>,
) -> Result<Response, AppError> {
    let lang = req.lang(lang);
    downloads::report(&state, &meta, &patient(user), req.case_id, lang).await
}

// ----- Inbox and access history --------------------------------------------------------------

/// One notification of the inbox, in the request's language. Never health information.
#[derive(Debug, Serialize)]
pub struct NotificationItem {
    pub notification_id: Uuid,
    pub case_id: Uuid,
    pub kind: String,
    pub title: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
}

impl NotificationItem {
    /// A stored notification in `lang`.
    pub fn of(n: NotificationRow, lang: Lang) -> Self {
        let (title, body) = match lang {
            Lang::En => (n.title_en, n.body_en),
            Lang::Ar => (n.title_ar, n.body_ar),
        };
        Self {
            notification_id: n.notification_id,
            case_id: n.case_id,
            kind: n.kind,
            title,
            body,
            created_at: n.created_at,
            read_at: n.read_at,
        }
    }
}

/// The inbox of `recipients` (user ids, or [`crate::store::ADMINS_RECIPIENT`]), newest first, in
/// `lang`: what every `list-notifications` answers.
pub async fn inbox(
    state: &AppState,
    recipients: &[String],
    lang: Lang,
    page: PageQuery,
) -> Result<Envelope<Vec<NotificationItem>>, AppError> {
    let listed = state
        .store
        .list_notifications(recipients, page.page())
        .await?;
    Ok(paged(listed, |n| NotificationItem::of(n, lang)))
}

/// `POST /app/list-notifications`: the patient's inbox, newest first.
pub async fn list_notifications(
    State(state): State<AppState>,
    PatientAuth(user): PatientAuth,
    RequestLang(lang): RequestLang,
    JsonOrEmpty(req): JsonOrEmpty<ListRequest>,
) -> Result<Envelope<Vec<NotificationItem>>, AppError> {
    inbox(&state, &[user.sub], lang, req.page).await
}

/// The body of `/app/access-history`: optionally one case, and a page.
#[derive(Debug, Default, Deserialize)]
pub struct AccessHistoryRequest {
    pub case_id: Option<CaseId>,
    #[serde(flatten)]
    pub page: PageQuery,
}

/// One access to the patient's case by someone else: who, what, when, and whether it was
/// allowed. No device or network details.
#[derive(Debug, Serialize)]
pub struct AccessItem {
    pub at: DateTime<Utc>,
    pub case_id: Option<Uuid>,
    /// `doctor` or `admin`.
    pub role: String,
    pub user_id: Option<String>,
    /// The doctor's name in the request's language, when the directory knows them.
    pub name: Option<String>,
    /// `view_case`, `download_document`, `download_report`, or a command such as
    /// `request_documents`.
    pub action: String,
    /// `ok`, or `refused:<code>`.
    pub outcome: String,
}

/// `POST /app/access-history`: who viewed or acted on the patient's case(s) (SPEC §8), newest
/// first.
pub async fn access_history(
    State(state): State<AppState>,
    PatientAuth(user): PatientAuth,
    RequestLang(lang): RequestLang,
    JsonOrEmpty(req): JsonOrEmpty<AccessHistoryRequest>,
) -> Result<Envelope<Vec<AccessItem>>, AppError> {
    let actor = patient(user);
    if let Some(case_id) = req.case_id {
        let case = visible_case(&state, case_id, &actor).await?;
        if !can_view(&case, &actor, &Resource::AuditLog) {
            return Err(case_not_found());
        }
    }
    let patient_id = actor.user_id().map(UserId::as_str).unwrap_or_default();
    let listed = state
        .store
        .access_history(patient_id, req.case_id.map(|c| c.0), req.page.page())
        .await?;
    let names = doctor_names(&state, &listed.items, lang).await?;
    Ok(paged(listed, |row| AccessItem {
        name: row.user_id.as_ref().and_then(|u| names.get(u).cloned()),
        at: row.at,
        case_id: row.case_id,
        role: row.role,
        user_id: row.user_id,
        action: row.action,
        outcome: row.outcome,
    }))
}

/// The names of the doctors in `rows`, each looked up once.
async fn doctor_names(
    state: &AppState,
    rows: &[AuditRow],
    lang: Lang,
) -> Result<HashMap<String, String>, AppError> {
    let mut names = HashMap::new();
    let doctors = rows
        .iter()
        .filter(|r| r.role == "doctor")
        .filter_map(|r| r.user_id.as_deref());
    for id in doctors {
        if !names.contains_key(id)
            && let Some(d) = crate::profiles::doctor_profile(state, id).await?
        {
            names.insert(id.to_owned(), lang.pick(&d.name_en, &d.name_ar).to_owned());
        }
    }
    Ok(names)
}
