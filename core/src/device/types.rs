//! The plain records the device API hands out and takes: owned, `String` ids, `i64` numbers,
//! RFC 3339 times, so the uniffi bindings can wrap them one to one.

use std::sync::Arc;

/// Which app is signed in: patients (JWT audience `snr_usr`) or doctors (`snr_pro`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Patient,
    Doctor,
}

/// What [`super::Device::open`] needs.
#[derive(Clone, Debug)]
pub struct DeviceConfig {
    /// The SQLite file (created if missing).
    pub db_path: String,
    /// The server's base URL, e.g. `http://127.0.0.1:8080`.
    pub server_url: String,
    /// The signed-in user's id (the JWT `sub`).
    pub user_id: String,
    pub role: Role,
    /// The bearer JWT.
    pub token: String,
    /// `en` or `ar`: the language of status cards computed on the device.
    pub lang: String,
}

/// "Something changed": the bindings forward this to the app.
pub trait ChangeListener: Send + Sync {
    /// Local data changed (a user action or a sync). Empty `case_ids`: anything (catalog,
    /// notifications, refusals).
    fn changed(&self, case_ids: Vec<String>);
    /// A live hint arrived: the app should call `sync()` soon.
    fn sync_hint(&self);
}

/// A shared listener.
pub type Listener = Arc<dyn ChangeListener>;

/// A partial intake edit: `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IntakeEdit {
    pub patient_age: Option<i32>,
    /// `male`, `female` or `other`.
    pub patient_gender: Option<String>,
    pub medical_history: Option<String>,
    pub questions: Option<String>,
}

/// The intake as the device's document holds it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IntakeContent {
    pub patient_age: Option<i32>,
    pub patient_gender: Option<String>,
    pub medical_history: String,
    pub questions: String,
}

/// A text section of an opinion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpinionSection {
    Summary,
    Diagnosis,
    Recommendations,
    FreeText,
}

/// A specialist's opinion draft.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpinionDraft {
    pub summary: String,
    pub diagnosis: String,
    pub recommendations: String,
    /// `agrees`, `minor_difference` or `major_difference`.
    pub concordance: Option<String>,
    pub free_text: String,
}

/// One doctor to assign, with the documents they need (empty: no request).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DoctorAssignment {
    pub doctor_id: String,
    pub requested_items: Vec<String>,
}

/// A case in the list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseListItem {
    pub case_id: String,
    pub reference: String,
    pub status: String,
    pub sub_state: Option<String>,
    pub updated_at: String,
    pub pending_ops: i64,
    pub card_title: String,
}

/// The patient's status card.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusCardInfo {
    pub title: String,
    pub message: String,
    pub actions: Vec<String>,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub payment_link: Option<String>,
    pub due_at: Option<String>,
    pub requested_items: Vec<String>,
    pub reason: Option<String>,
}

/// A document's metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentInfo {
    pub document_id: String,
    pub file_name: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub request_id: Option<String>,
    /// The server has the bytes (false while the upload is pending on this device).
    pub uploaded: bool,
}

/// A document request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestInfo {
    pub request_id: String,
    pub items: Vec<String>,
    pub open: bool,
    pub requested_by: String,
}

/// A doctor's assignment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssignmentInfo {
    pub doctor_id: String,
    /// `coordinator` or `specialist`.
    pub role: String,
    pub active: bool,
    pub opinion_submitted: bool,
}

/// A timeline entry (never clinical text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimelineItem {
    pub kind: String,
    pub actor_kind: String,
    pub at: String,
    pub detail: Option<String>,
}

/// A case as the device shows it: the server's state plus the effect of queued commands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseDetail {
    pub case_id: String,
    pub reference: String,
    pub patient_id: String,
    pub rt_id: String,
    pub dc_id: String,
    /// The local (optimistic) status.
    pub status: String,
    /// The server's status as last pulled; `None` while the server has never seen the case.
    pub server_status: Option<String>,
    pub sub_state: Option<String>,
    pub sub_states: Vec<String>,
    pub card: StatusCardInfo,
    pub coordinator_id: Option<String>,
    pub documents: Vec<DocumentInfo>,
    pub document_requests: Vec<RequestInfo>,
    pub assignments: Vec<AssignmentInfo>,
    pub timeline: Vec<TimelineItem>,
    pub report_id: Option<String>,
    pub due_at: Option<String>,
    pub closed_reason: Option<String>,
    pub pending_ops: i64,
    /// The server record exactly as the feed delivered it.
    pub record_json: Option<String>,
}

/// An in-app notification from the feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotificationInfo {
    pub id: i64,
    pub case_id: Option<String>,
    pub json: String,
}

/// A refusal the server gave to a queued operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefusalInfo {
    pub id: i64,
    pub case_id: String,
    pub op_id: String,
    /// The command's name, or `content:<kind>` for a content change.
    pub what: String,
    pub code: String,
    pub message_en: String,
    pub message_ar: String,
    pub at: String,
}

/// What the device kept of typing the server refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveredDraftInfo {
    pub id: i64,
    pub case_id: String,
    /// `intake`, `notes`, `opinion` or `summary`.
    pub kind: String,
    /// The typed content (`sop_core::content::Content` as JSON).
    pub content_json: String,
    pub fields: Vec<String>,
    pub code: String,
    pub message_en: String,
    pub message_ar: String,
    pub at: String,
}

/// A file waiting to be uploaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingUploadInfo {
    pub sha256: String,
    pub case_id: String,
    pub document_id: String,
    pub size: i64,
    /// Bytes the server confirmed so far.
    pub received: i64,
}

/// What one `sync()` did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub pushed: i64,
    pub applied: i64,
    pub duplicates: i64,
    pub refused: i64,
    pub pulled: i64,
    pub uploaded_bytes: i64,
    pub pending_ops: i64,
    pub revoked_cases: i64,
}
