//! The records and enums the apps see, exported as uniffi "remote" types: each definition here
//! mirrors a type of `sop_core::device` field for field, and uniffi generates the FFI code for
//! the core's own type, so no conversion code exists to drift. If the core changes a type, this
//! file stops compiling until the mirror is updated (which is the point).
//!
//! The `///` docs here are what the Kotlin and Swift developers read.

pub use sop_core::device::{
    AssignmentInfo, CaseDetail, CaseListItem, DeviceConfig, DoctorAssignment, DocumentInfo,
    IntakeContent, IntakeEdit, NotificationInfo, OpinionDraft, OpinionSection, PendingUploadInfo,
    RecoveredDraftInfo, RefusalInfo, RequestInfo, Role, StatusCardInfo, SyncReport, TimelineItem,
};

/// Which app is signed in.
#[uniffi::remote(Enum)]
pub enum Role {
    /// The patient app (JWT audience `snr_usr`).
    Patient,
    /// The doctor app, for specialists and coordinators alike (JWT audience `snr_pro`).
    Doctor,
}

/// What opening a signed-in user's store needs.
#[uniffi::remote(Record)]
pub struct DeviceConfig {
    /// Path of the SQLite file; created if missing. One file per signed-in user.
    pub db_path: String,
    /// The server's base URL, e.g. `https://sop.example`.
    pub server_url: String,
    /// The signed-in user's id (the JWT `sub`). A store opened for another user is refused.
    pub user_id: String,
    /// Patient or doctor app.
    pub role: Role,
    /// The bearer JWT; replace it with `set_token` after a refresh.
    pub token: String,
    /// `en` or `ar`: the language of status cards computed on the device.
    pub lang: String,
}

/// A partial edit of the patient's intake form: `null`/`nil` leaves a field as it is.
#[uniffi::remote(Record)]
pub struct IntakeEdit {
    /// The patient's age in years.
    #[uniffi(default)]
    pub patient_age: Option<i32>,
    /// `male`, `female` or `other`.
    #[uniffi(default)]
    pub patient_gender: Option<String>,
    /// The whole new medical history text.
    #[uniffi(default)]
    pub medical_history: Option<String>,
    /// The whole new text of the patient's questions.
    #[uniffi(default)]
    pub questions: Option<String>,
}

/// The patient's intake form as this device holds it.
#[uniffi::remote(Record)]
pub struct IntakeContent {
    /// The patient's age in years, if given.
    pub patient_age: Option<i32>,
    /// `male`, `female` or `other`, if given.
    pub patient_gender: Option<String>,
    /// The medical history text.
    pub medical_history: String,
    /// The patient's questions.
    pub questions: String,
}

/// A text section of a specialist's opinion.
#[uniffi::remote(Enum)]
pub enum OpinionSection {
    /// The opinion's summary (required to submit).
    Summary,
    /// The specialist's diagnosis.
    Diagnosis,
    /// Recommendations to the patient.
    Recommendations,
    /// Anything else.
    FreeText,
}

/// A specialist's opinion draft on one case.
#[uniffi::remote(Record)]
pub struct OpinionDraft {
    /// The summary section.
    pub summary: String,
    /// The diagnosis section.
    pub diagnosis: String,
    /// The recommendations section.
    pub recommendations: String,
    /// `agrees`, `minor_difference` or `major_difference`; required to submit.
    pub concordance: Option<String>,
    /// The free text section.
    pub free_text: String,
}

/// One specialist to assign, with the documents they ask the patient for.
#[uniffi::remote(Record)]
pub struct DoctorAssignment {
    /// The doctor's user id.
    pub doctor_id: String,
    /// Items to request from the patient at the same time; empty for none.
    #[uniffi(default)]
    pub requested_items: Vec<String>,
}

/// A case in the case list.
#[uniffi::remote(Record)]
pub struct CaseListItem {
    /// The case id.
    pub case_id: String,
    /// The human reference shown to the patient (e.g. on the report).
    pub reference: String,
    /// The status as this device shows it (queued commands applied).
    pub status: String,
    /// The sub-state (e.g. waiting for documents), if any.
    pub sub_state: Option<String>,
    /// When the case last changed (RFC 3339).
    pub updated_at: String,
    /// Operations on this case waiting for the server.
    pub pending_ops: i64,
    /// The status card's title in the store's language.
    pub card_title: String,
}

/// The patient's status card: what the case waits for and what the patient can do.
#[uniffi::remote(Record)]
pub struct StatusCardInfo {
    /// Title in the store's language.
    pub title: String,
    /// Message in the store's language.
    pub message: String,
    /// The actions the app should offer (e.g. `pay`, `upload_documents`).
    pub actions: Vec<String>,
    /// Amount due, in minor units.
    pub amount: Option<i64>,
    /// Currency of `amount`.
    pub currency: Option<String>,
    /// Where the patient pays, once the platform has created the link.
    pub payment_link: Option<String>,
    /// When the review is due (RFC 3339).
    pub due_at: Option<String>,
    /// Documents the doctors asked for and that are still open.
    pub requested_items: Vec<String>,
    /// Why the case was closed, when it was.
    pub reason: Option<String>,
}

/// A document attached to a case.
#[uniffi::remote(Record)]
pub struct DocumentInfo {
    /// The document id.
    pub document_id: String,
    /// The file name the patient gave.
    pub file_name: String,
    /// The MIME type detected from the bytes.
    pub content_type: String,
    /// Size in bytes.
    pub size: i64,
    /// SHA-256 of the bytes, hex.
    pub sha256: String,
    /// The document request it answers, if any.
    pub request_id: Option<String>,
    /// Whether the server has the bytes (false while the upload waits on this device).
    pub uploaded: bool,
}

/// A doctor's request for documents.
#[uniffi::remote(Record)]
pub struct RequestInfo {
    /// The request id.
    pub request_id: String,
    /// What was asked for.
    pub items: Vec<String>,
    /// Whether the patient has not answered it yet.
    pub open: bool,
    /// The doctor who asked.
    pub requested_by: String,
}

/// A doctor's assignment to a case.
#[uniffi::remote(Record)]
pub struct AssignmentInfo {
    /// The doctor's user id.
    pub doctor_id: String,
    /// `coordinator` or `specialist`.
    pub role: String,
    /// False once the doctor was unassigned.
    pub active: bool,
    /// Whether this specialist has submitted their opinion.
    pub opinion_submitted: bool,
}

/// One entry of a case's timeline (never clinical text).
#[uniffi::remote(Record)]
pub struct TimelineItem {
    /// What happened (e.g. `submitted`, `payment_completed`).
    pub kind: String,
    /// Who did it: `patient`, `doctor`, `admin` or `system`.
    pub actor_kind: String,
    /// When (RFC 3339).
    pub at: String,
    /// A short non-clinical detail, if any.
    pub detail: Option<String>,
}

/// A case as this device shows it: the server's state plus the effect of queued commands.
#[uniffi::remote(Record)]
pub struct CaseDetail {
    /// The case id.
    pub case_id: String,
    /// The human reference (printed on the report).
    pub reference: String,
    /// The patient's user id.
    pub patient_id: String,
    /// The review type.
    pub rt_id: String,
    /// The disease category.
    pub dc_id: String,
    /// The status as this device shows it (queued commands applied).
    pub status: String,
    /// The server's status as last synced; `null`/`nil` while the server has never seen the case.
    pub server_status: Option<String>,
    /// The main sub-state, if any.
    pub sub_state: Option<String>,
    /// Every sub-state that applies.
    pub sub_states: Vec<String>,
    /// The patient's status card.
    pub card: StatusCardInfo,
    /// The case coordinator, once assigned.
    pub coordinator_id: Option<String>,
    /// Attached documents.
    pub documents: Vec<DocumentInfo>,
    /// Document requests, open and answered.
    pub document_requests: Vec<RequestInfo>,
    /// Doctors' assignments.
    pub assignments: Vec<AssignmentInfo>,
    /// What happened so far, oldest first.
    pub timeline: Vec<TimelineItem>,
    /// The final report's id, once the case is completed.
    pub report_id: Option<String>,
    /// When the review is due (RFC 3339).
    pub due_at: Option<String>,
    /// Why the case was closed, when it was.
    pub closed_reason: Option<String>,
    /// Operations on this case waiting for the server.
    pub pending_ops: i64,
    /// The server's record as JSON, exactly as the sync feed delivered it.
    pub record_json: Option<String>,
}

/// An in-app notification.
#[uniffi::remote(Record)]
pub struct NotificationInfo {
    /// Local id.
    pub id: i64,
    /// The case it is about, if any.
    pub case_id: Option<String>,
    /// The notification as JSON (title, body, kind, time).
    pub json: String,
}

/// A queued operation the server refused; the case shows the server's state again.
#[uniffi::remote(Record)]
pub struct RefusalInfo {
    /// Local id, for `dismiss_refusal`.
    pub id: i64,
    /// The case.
    pub case_id: String,
    /// The refused operation's id.
    pub op_id: String,
    /// The command's name, or `content:<kind>` for an edit.
    pub what: String,
    /// Stable machine code of the reason.
    pub code: String,
    /// The reason in English.
    pub message_en: String,
    /// The reason in Arabic.
    pub message_ar: String,
    /// When the server refused it (RFC 3339).
    pub at: String,
}

/// Text the user typed that the server refused, kept so it is not lost.
#[uniffi::remote(Record)]
pub struct RecoveredDraftInfo {
    /// Local id, for `dismiss_recovered_draft`.
    pub id: i64,
    /// The case.
    pub case_id: String,
    /// `intake`, `notes`, `opinion` or `summary`.
    pub kind: String,
    /// What was typed, as JSON.
    pub content_json: String,
    /// The fields that differ from the server's version.
    pub fields: Vec<String>,
    /// Stable machine code of the refusal.
    pub code: String,
    /// The reason in English.
    pub message_en: String,
    /// The reason in Arabic.
    pub message_ar: String,
    /// When (RFC 3339).
    pub at: String,
}

/// An attached file whose upload has not finished.
#[uniffi::remote(Record)]
pub struct PendingUploadInfo {
    /// SHA-256 of the file, hex.
    pub sha256: String,
    /// The case.
    pub case_id: String,
    /// The document.
    pub document_id: String,
    /// Size in bytes.
    pub size: i64,
    /// Bytes the server has confirmed so far; the next sync continues from here.
    pub received: i64,
}

/// What one `sync()` did.
#[uniffi::remote(Record)]
pub struct SyncReport {
    /// Operations pushed.
    pub pushed: i64,
    /// Operations the server applied.
    pub applied: i64,
    /// Operations the server had already applied (a retry after a lost answer).
    pub duplicates: i64,
    /// Operations the server refused (see `refusals()`).
    pub refused: i64,
    /// Feed items pulled.
    pub pulled: i64,
    /// Bytes of attached files uploaded.
    pub uploaded_bytes: i64,
    /// Operations still waiting after this sync.
    pub pending_ops: i64,
    /// Cases removed from this device because access to them was revoked.
    pub revoked_cases: i64,
}
