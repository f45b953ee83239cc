//! The case (SPEC §3) and everything it holds: status, patient intake, assignments, document
//! requests, documents, payments, the report reference and the timeline.
//!
//! A `Case` changes only through [`crate::rules::apply`]; its fields are public for reading.

use crate::Timestamp;
use crate::actor::Actor;
use crate::ids::{
    CaseId, CategoryId, DocumentId, PaymentId, ReportId, RequestId, ReviewTypeId, UserId,
};
use serde::{Deserialize, Serialize};

/// The nine statuses of SPEC §3.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Draft,
    Submitted,
    AwaitingPayment,
    PaymentFailed,
    PaymentSuccessful,
    DoctorsAssigned,
    Completed,
    Cancelled,
    Rejected,
}

impl Status {
    pub const ALL: [Status; 9] = [
        Status::Draft,
        Status::Submitted,
        Status::AwaitingPayment,
        Status::PaymentFailed,
        Status::PaymentSuccessful,
        Status::DoctorsAssigned,
        Status::Completed,
        Status::Cancelled,
        Status::Rejected,
    ];

    /// Final statuses accept nothing but reads (and the bookkeeping of money and the report).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Status::Completed | Status::Cancelled | Status::Rejected
        )
    }

    /// The wire name (`awaiting_payment`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Submitted => "submitted",
            Status::AwaitingPayment => "awaiting_payment",
            Status::PaymentFailed => "payment_failed",
            Status::PaymentSuccessful => "payment_successful",
            Status::DoctorsAssigned => "doctors_assigned",
            Status::Completed => "completed",
            Status::Cancelled => "cancelled",
            Status::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// The patient's gender as entered in the intake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gender {
    Male,
    Female,
    Other,
}

/// Patient-provided content. Editable by the patient while the case is a draft.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intake {
    pub patient_age: Option<i32>,
    pub patient_gender: Option<Gender>,
    pub medical_history: String,
    pub questions: String,
}

/// A partial update of the intake: `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntakePatch {
    pub patient_age: Option<i32>,
    pub patient_gender: Option<Gender>,
    pub medical_history: Option<String>,
    pub questions: Option<String>,
}

impl IntakePatch {
    pub fn is_empty(&self) -> bool {
        self == &IntakePatch::default()
    }
}

/// The price and SLA of the review type, fixed when the case is submitted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pricing {
    pub price: i64,
    pub currency: String,
    pub expected_review_days: i32,
}

/// Which role an assignment gives a doctor on this case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssignmentRole {
    Coordinator,
    Specialist,
}

/// A doctor's assignment to the case. Removed assignments stay, inactive, for the record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    pub doctor_id: UserId,
    pub role: AssignmentRole,
    pub active: bool,
    pub assigned_at: Timestamp,
    pub removed_at: Option<Timestamp>,
    /// Specialists only: when their opinion was submitted (frozen).
    pub opinion_submitted_at: Option<Timestamp>,
}

/// Documents a doctor or the coordinator asked the patient for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentRequest {
    pub request_id: RequestId,
    pub requested_by: UserId,
    pub items: Vec<String>,
    pub open: bool,
    pub created_at: Timestamp,
    pub answered_at: Option<Timestamp>,
}

/// Metadata of an uploaded medical document; the bytes live in the blob store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentMeta {
    pub document_id: DocumentId,
    pub file_name: String,
    pub content_type: String,
    pub size: i64,
    /// Lowercase hex SHA-256 of the content.
    pub sha256: String,
    pub uploaded_by: UserId,
    pub uploaded_at: Timestamp,
    pub request_id: Option<RequestId>,
    /// Removed from the case (T13); the blob is kept for the audit trail.
    pub removed: bool,
}

/// Where a payment attempt stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Pending,
    Succeeded,
    Failed,
}

/// Where a refund stands (SPEC §5: `refund_requested` → `refunded` or `refund_failed`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    Requested,
    Refunded,
    Failed,
}

/// One payment attempt. A retry (T8) opens a new attempt and supersedes the older ones.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub payment_id: PaymentId,
    pub amount: i64,
    pub currency: String,
    pub status: PaymentStatus,
    pub link: Option<String>,
    pub created_at: Timestamp,
    pub settled_at: Option<Timestamp>,
    pub superseded: bool,
    pub refund: Option<RefundStatus>,
}

/// The stored final report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportRef {
    pub report_id: ReportId,
    pub sha256: String,
    pub ready_at: Timestamp,
}

/// What a timeline entry records. Never clinical text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimelineKind {
    CaseCreated,
    Submitted,
    CoordinatorAssigned,
    AwaitingPayment,
    CoordinatorChanged,
    PaymentReceived,
    PaymentFailed,
    DoctorsAssigned,
    DoctorAdded,
    DoctorRemoved,
    DocumentsRequested,
    DocumentAdded,
    DocumentsProvided,
    DocumentRemoved,
    OpinionSubmitted,
    Completed,
    ReportReady,
    Cancelled,
    Rejected,
    OverdueReminderSent,
    RefundRequested,
    Refunded,
    RefundFailed,
}

/// One line of the case's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub kind: TimelineKind,
    /// `patient`, `doctor`, `admin`, `payment_platform` or `system`.
    pub actor_kind: String,
    pub actor_id: Option<UserId>,
    pub at: Timestamp,
    /// A short non-clinical detail, such as the doctor concerned.
    pub detail: Option<String>,
}

/// A second-opinion case.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Case {
    pub case_id: CaseId,
    pub patient_id: UserId,
    pub rt_id: ReviewTypeId,
    pub dc_id: CategoryId,
    pub status: Status,
    pub coordinator_id: Option<UserId>,
    pub intake: Intake,
    pub pricing: Option<Pricing>,
    pub assignments: Vec<Assignment>,
    pub document_requests: Vec<DocumentRequest>,
    pub documents: Vec<DocumentMeta>,
    pub payments: Vec<Payment>,
    pub summary_submitted_at: Option<Timestamp>,
    pub report: Option<ReportRef>,
    pub timeline: Vec<TimelineEntry>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub submitted_at: Option<Timestamp>,
    pub paid_at: Option<Timestamp>,
    pub due_at: Option<Timestamp>,
    pub completed_at: Option<Timestamp>,
    pub closed_reason: Option<String>,
    /// The kind and id of who closed it, e.g. `admin:A1` or `patient:P1`.
    pub closed_by: Option<String>,
    pub last_overdue_reminder_at: Option<Timestamp>,
    pub draft_reminder_sent_at: Option<Timestamp>,
    pub overdue_alert_sent_at: Option<Timestamp>,
}

/// How an actor relates to one case; decides what they may see and do (SPEC §8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Relation {
    /// The patient who owns the case.
    Owner,
    /// A patient who does not.
    OtherPatient,
    /// The case's current coordinator.
    Coordinator,
    /// A doctor with an active specialist assignment.
    Specialist,
    /// A doctor whose specialist (or coordinator) assignment was removed.
    FormerDoctor,
    /// A doctor never assigned to the case.
    OtherDoctor,
    Admin,
    PaymentPlatform,
    System,
}

impl Relation {
    /// People who may see the case at all; everyone else gets "Case not found".
    pub fn sees_case(self) -> bool {
        matches!(
            self,
            Relation::Owner | Relation::Coordinator | Relation::Specialist | Relation::Admin
        )
    }
}

impl Case {
    /// How `actor` relates to this case.
    pub fn relation_of(&self, actor: &Actor) -> Relation {
        match actor {
            Actor::Patient(id) if *id == self.patient_id => Relation::Owner,
            Actor::Patient(_) => Relation::OtherPatient,
            Actor::Doctor(id) => {
                if self.coordinator_id.as_ref() == Some(id) {
                    Relation::Coordinator
                } else if self.active_specialist(id).is_some() {
                    Relation::Specialist
                } else if self.assignments.iter().any(|a| &a.doctor_id == id) {
                    Relation::FormerDoctor
                } else {
                    Relation::OtherDoctor
                }
            }
            Actor::Admin(_) => Relation::Admin,
            Actor::PaymentPlatform => Relation::PaymentPlatform,
            Actor::System => Relation::System,
        }
    }

    /// The active specialist assignment of `doctor`, if any.
    pub fn active_specialist(&self, doctor: &UserId) -> Option<&Assignment> {
        self.active_specialists().find(|a| &a.doctor_id == doctor)
    }

    /// Every active specialist assignment.
    pub fn active_specialists(&self) -> impl Iterator<Item = &Assignment> {
        self.assignments
            .iter()
            .filter(|a| a.active && a.role == AssignmentRole::Specialist)
    }

    /// Active specialists who have not submitted their opinion yet.
    pub fn pending_specialists(&self) -> impl Iterator<Item = &Assignment> {
        self.active_specialists()
            .filter(|a| a.opinion_submitted_at.is_none())
    }

    /// The payment attempt that counts now (the newest one not superseded).
    pub fn current_payment(&self) -> Option<&Payment> {
        self.payments.iter().rev().find(|p| !p.superseded)
    }

    pub fn payment(&self, id: PaymentId) -> Option<&Payment> {
        self.payments.iter().find(|p| p.payment_id == id)
    }

    /// A succeeded payment whose money has not been (or is not being) returned.
    pub fn refundable_payment(&self) -> Option<&Payment> {
        self.payments
            .iter()
            .find(|p| p.status == PaymentStatus::Succeeded && p.refund.is_none())
    }

    pub fn request(&self, id: RequestId) -> Option<&DocumentRequest> {
        self.document_requests.iter().find(|r| r.request_id == id)
    }

    pub fn open_requests(&self) -> impl Iterator<Item = &DocumentRequest> {
        self.document_requests.iter().filter(|r| r.open)
    }

    pub fn has_open_request(&self) -> bool {
        self.open_requests().next().is_some()
    }

    /// Documents currently on the case (removed ones excluded).
    pub fn present_documents(&self) -> impl Iterator<Item = &DocumentMeta> {
        self.documents.iter().filter(|d| !d.removed)
    }

    pub fn document(&self, id: DocumentId) -> Option<&DocumentMeta> {
        self.documents.iter().find(|d| d.document_id == id)
    }

    /// Bytes the case's present documents take, for the per-case limit.
    pub fn stored_bytes(&self) -> i64 {
        self.present_documents().map(|d| d.size).sum()
    }

    /// A short, non-identifying reference for notifications and the report (`SOP-1A2B3C4D`).
    pub fn reference(&self) -> String {
        case_reference(self.case_id)
    }
}

/// The short reference of a case: the last 8 hex digits of its id (the first ones of a v7 id are
/// a timestamp and would repeat between cases made the same hour).
pub fn case_reference(case_id: CaseId) -> String {
    let hex = case_id.0.simple().to_string();
    format!("SOP-{}", hex[hex.len() - 8..].to_uppercase())
}
