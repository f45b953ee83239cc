//! What an actor may ask of a case: the commands T1–T18 of SPEC §3.2, the intake edit, and the
//! facts reported by outside systems and the server itself (payment link created, refund settled,
//! report stored, scheduled reminders).
//!
//! Ids of things a command creates (payment attempts, document requests, documents) are chosen by
//! the caller, so the rules stay pure and a device can create them offline.

use crate::case::{Intake, IntakePatch};
use crate::ids::{
    CaseId, CategoryId, DocumentId, PaymentId, ReportId, RequestId, ReviewTypeId, UserId,
};
use serde::{Deserialize, Serialize};

/// A request for documents attached to an assignment (T4, T9) or made on its own (T11).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestSpec {
    pub request_id: RequestId,
    pub items: Vec<String>,
}

/// One doctor to assign in T9, with the documents they need.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoctorToAssign {
    pub doctor_id: UserId,
    pub requested_documents: Option<RequestSpec>,
}

/// A document being attached (T12). The content type is the one detected from the bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewDocument {
    pub document_id: DocumentId,
    pub file_name: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub request_id: Option<RequestId>,
}

/// The opinion sections of SPEC §4, as submitted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpinionContent {
    pub summary: String,
    pub diagnosis: String,
    pub recommendations: String,
    pub concordance: Option<Concordance>,
    pub free_text: String,
}

/// How the opinion relates to the original diagnosis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Concordance {
    Agrees,
    MinorDifference,
    MajorDifference,
}

/// A command on a case.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Command {
    /// T1 (`submit: false`) and T2 (`submit: true`).
    CreateCase {
        case_id: CaseId,
        rt_id: ReviewTypeId,
        dc_id: CategoryId,
        intake: Intake,
        submit: bool,
    },
    /// Edit the patient's content while the case is a draft (not a transition).
    UpdateIntake { patch: IntakePatch },
    /// T3.
    SubmitCase,
    /// T4.
    AssignCoordinator {
        doctor_id: UserId,
        payment_id: PaymentId,
        requested_documents: Option<RequestSpec>,
    },
    /// T5.
    ReassignCoordinator { doctor_id: UserId },
    /// T6, from a verified callback.
    PaymentSucceeded {
        payment_id: PaymentId,
        amount: i64,
        currency: String,
    },
    /// T7, from a verified callback.
    PaymentFailed { payment_id: PaymentId },
    /// T8.
    RetryPayment { payment_id: PaymentId },
    /// T9.
    AssignDoctors { doctors: Vec<DoctorToAssign> },
    /// T10.
    UnassignDoctor { doctor_id: UserId },
    /// T11.
    RequestDocuments { request: RequestSpec },
    /// T12: attach a document.
    UploadDocument { document: NewDocument },
    /// T12: the patient marks a document request answered.
    AnswerDocumentRequest { request_id: RequestId },
    /// T13.
    RemoveDocument { document_id: DocumentId },
    /// T14, with the opinion as saved.
    SubmitOpinion { opinion: OpinionContent },
    /// T15, with the final summary as saved.
    SubmitSummary { summary: String },
    /// T16.
    Cancel { reason: String },
    /// T17.
    Reject { reason: String },
    /// T18.
    SendOverdueReminder,
    /// The payment platform returned the link of an attempt.
    PaymentLinkCreated { payment_id: PaymentId, link: String },
    /// The payment platform settled a refund.
    RefundSettled {
        payment_id: PaymentId,
        refunded: bool,
    },
    /// The report PDF is stored.
    ReportReady { report_id: ReportId, sha256: String },
    /// Scheduled: remind the patient of a stale draft.
    SendDraftReminder,
    /// Scheduled: alert about an overdue case.
    SendOverdueAlert,
}

impl Command {
    /// The stable snake_case name of the command (for logs, audit and tests).
    pub fn name(&self) -> &'static str {
        match self {
            Command::CreateCase { submit: false, .. } => "create_case",
            Command::CreateCase { submit: true, .. } => "create_and_submit_case",
            Command::UpdateIntake { .. } => "update_intake",
            Command::SubmitCase => "submit_case",
            Command::AssignCoordinator { .. } => "assign_coordinator",
            Command::ReassignCoordinator { .. } => "reassign_coordinator",
            Command::PaymentSucceeded { .. } => "payment_succeeded",
            Command::PaymentFailed { .. } => "payment_failed",
            Command::RetryPayment { .. } => "retry_payment",
            Command::AssignDoctors { .. } => "assign_doctors",
            Command::UnassignDoctor { .. } => "unassign_doctor",
            Command::RequestDocuments { .. } => "request_documents",
            Command::UploadDocument { .. } => "upload_document",
            Command::AnswerDocumentRequest { .. } => "answer_document_request",
            Command::RemoveDocument { .. } => "remove_document",
            Command::SubmitOpinion { .. } => "submit_opinion",
            Command::SubmitSummary { .. } => "submit_summary",
            Command::Cancel { .. } => "cancel",
            Command::Reject { .. } => "reject",
            Command::SendOverdueReminder => "send_overdue_reminder",
            Command::PaymentLinkCreated { .. } => "payment_link_created",
            Command::RefundSettled { .. } => "refund_settled",
            Command::ReportReady { .. } => "report_ready",
            Command::SendDraftReminder => "send_draft_reminder",
            Command::SendOverdueAlert => "send_overdue_alert",
        }
    }

    /// Whether deciding this command consults the catalog (review types, categories, coordinator
    /// mappings). The others are decided with an empty catalog whatever the caller passes
    /// (`rules::decide`), so a store may skip reading it for them and a rule that starts reading
    /// it for a command not listed here fails its tests instead of going unnoticed.
    pub fn reads_catalog(&self) -> bool {
        match self {
            Command::CreateCase { .. }
            | Command::SubmitCase
            | Command::AssignCoordinator { .. }
            | Command::ReassignCoordinator { .. }
            | Command::AssignDoctors { .. } => true,
            Command::UpdateIntake { .. }
            | Command::PaymentSucceeded { .. }
            | Command::PaymentFailed { .. }
            | Command::RetryPayment { .. }
            | Command::UnassignDoctor { .. }
            | Command::RequestDocuments { .. }
            | Command::UploadDocument { .. }
            | Command::AnswerDocumentRequest { .. }
            | Command::RemoveDocument { .. }
            | Command::SubmitOpinion { .. }
            | Command::SubmitSummary { .. }
            | Command::Cancel { .. }
            | Command::Reject { .. }
            | Command::SendOverdueReminder
            | Command::PaymentLinkCreated { .. }
            | Command::RefundSettled { .. }
            | Command::ReportReady { .. }
            | Command::SendDraftReminder
            | Command::SendOverdueAlert => false,
        }
    }
}
