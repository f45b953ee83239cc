//! Downloads shared by the patient (`/app`) and doctor (`/pro`) groups: the final report PDF (one
//! per language, see [`crate::report`]) and the case's documents (`/app/get-document` for the
//! owner, `/pro/get-document` for the case's doctors). Each is checked with the core's visibility rules (SPEC §8) and audited,
//! refused attempts included; the bytes come from the blob store by their SHA-256.

use crate::api::{RequestMeta, audit_read, case_not_found, visible_case};
use crate::auth::PatientAuth;
use crate::blobs::file_response;
use crate::error::AppError;
use crate::extract::Json;
use crate::state::AppState;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use sop_core::access::{Resource, can_view};
use sop_core::actor::Actor;
use sop_core::ids::{CaseId, DocumentId};
use sop_core::lang::Lang;
use sop_core::{Refusal, RefusalCode};

/// The body of `get-report`: the case and, optionally, the language of the PDF (`en`/`ar`,
/// `0`/`1`); the `lang` header decides otherwise.
#[derive(Debug, Deserialize)]
pub struct ReportRequest {
    pub case_id: CaseId,
    pub lang: Option<String>,
}

impl ReportRequest {
    /// The language asked for in the body, else the request's.
    pub fn lang(&self, header: Lang) -> Lang {
        match self.lang.as_deref() {
            Some(l) if !l.trim().is_empty() => Lang::from_header(Some(l)),
            _ => header,
        }
    }
}

fn missing_blob(what: &str) -> AppError {
    AppError::Internal(anyhow::anyhow!(
        "{what} is recorded but its blob is not stored"
    ))
}

fn blob_error(err: std::io::Error) -> AppError {
    AppError::Internal(anyhow::Error::new(err).context("cannot read a blob"))
}

/// The report of `case_id` in `lang` as a PDF download, or a 409 `report_not_ready` while the
/// PDF is not stored yet. Audited as `download_report`.
pub async fn report(
    state: &AppState,
    meta: &RequestMeta,
    actor: &Actor,
    case_id: CaseId,
    lang: Lang,
) -> Result<Response, AppError> {
    let result = report_pdf(state, actor, case_id, lang).await;
    audit_read(state, meta, actor, "download_report", case_id, None, result).await
}

async fn report_pdf(
    state: &AppState,
    actor: &Actor,
    case_id: CaseId,
    lang: Lang,
) -> Result<Response, AppError> {
    let case = visible_case(state, case_id, actor).await?;
    if !can_view(&case, actor, &Resource::SummaryAndReport) {
        return Err(Refusal::new(RefusalCode::Forbidden).into());
    }
    let Some(key) = crate::report::pdf_key(state, &case, lang).await? else {
        return Err(Refusal::new(RefusalCode::ReportNotReady).into());
    };
    let bytes = state
        .blobs
        .get(&key)
        .await
        .map_err(blob_error)?
        .ok_or_else(|| missing_blob("a report"))?;
    let lang_tag = lang.pick("en", "ar");
    let name = format!("{}-{lang_tag}.pdf", case.reference());
    Ok(file_response(bytes, "application/pdf", &name))
}

/// Document `document_id` of `case_id` with its detected content type, for whoever may see the
/// patient's content. Audited as `download_document`.
pub async fn document(
    state: &AppState,
    meta: &RequestMeta,
    actor: &Actor,
    case_id: CaseId,
    document_id: DocumentId,
) -> Result<Response, AppError> {
    let result = document_bytes(state, actor, case_id, document_id).await;
    let resource = Some(document_id.to_string());
    audit_read(
        state,
        meta,
        actor,
        "download_document",
        case_id,
        resource,
        result,
    )
    .await
}

async fn document_bytes(
    state: &AppState,
    actor: &Actor,
    case_id: CaseId,
    document_id: DocumentId,
) -> Result<Response, AppError> {
    let case = visible_case(state, case_id, actor).await?;
    if !can_view(&case, actor, &Resource::PatientContent) {
        return Err(case_not_found());
    }
    let Some(doc) = case.document(document_id).filter(|d| !d.removed) else {
        return Err(Refusal::new(RefusalCode::DocumentNotFound).into());
    };
    let bytes = state
        .blobs
        .get(&doc.sha256)
        .await
        .map_err(blob_error)?
        .ok_or_else(|| missing_blob("a document"))?;
    Ok(file_response(bytes, &doc.content_type, &doc.file_name))
}

/// The body of `/app/get-document`.
#[derive(Debug, Deserialize)]
pub struct DocumentDownload {
    pub case_id: CaseId,
    pub document_id: DocumentId,
}

/// `POST /app/get-document`: a document of the patient's own case (another patient gets "Case
/// not found"). Audited.
pub async fn app_document(
    State(state): State<AppState>,
    PatientAuth(user): PatientAuth,
    meta: RequestMeta,
    Json(req): Json<DocumentDownload>,
) -> Result<Response, AppError> {
    let actor = Actor::Patient(sop_core::ids::UserId::new(user.sub));
    document(&state, &meta, &actor, req.case_id, req.document_id).await
}
