//! The wire shapes of cases (SPEC §10): what each caller sees of a case, filtered by the core's
//! visibility rules (SPEC §8), with the status card and sub-state computed by the core.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sop_core::Case;
use sop_core::access::{Resource, can_view};
use sop_core::actor::Actor;
use sop_core::card::{StatusCard, status_card};
use sop_core::case::{
    AssignmentRole, DocumentMeta, Gender, PaymentStatus, RefundStatus, Status, TimelineEntry,
    case_reference,
};
use sop_core::catalog::DoctorProfile;
use sop_core::ids::{
    CaseId, CategoryId, DocumentId, PaymentId, ReportId, RequestId, ReviewTypeId, UserId,
};
use sop_core::lang::Lang;
use sop_core::substate::{SubState, sub_state, sub_states};

/// A case in a list.
#[derive(Clone, Debug, Serialize)]
pub struct CaseSummary {
    pub case_id: CaseId,
    pub reference: String,
    pub patient_id: UserId,
    pub rt_id: ReviewTypeId,
    pub dc_id: CategoryId,
    pub status: Status,
    pub sub_state: Option<SubState>,
    pub coordinator_id: Option<UserId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub due_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
}

impl CaseSummary {
    pub fn of(case: &Case, now: DateTime<Utc>) -> Self {
        Self {
            case_id: case.case_id,
            reference: case_reference(case.case_id),
            patient_id: case.patient_id.clone(),
            rt_id: case.rt_id,
            dc_id: case.dc_id,
            status: case.status,
            sub_state: sub_state(case, now),
            coordinator_id: case.coordinator_id.clone(),
            created_at: case.created_at,
            updated_at: case.updated_at,
            submitted_at: case.submitted_at,
            due_at: case.due_at,
            completed_at: case.completed_at,
        }
    }
}

/// A document request as shown.
#[derive(Clone, Debug, Serialize)]
pub struct RequestView {
    pub request_id: RequestId,
    pub items: Vec<String>,
    pub open: bool,
    pub requested_by: UserId,
    pub created_at: DateTime<Utc>,
    pub answered_at: Option<DateTime<Utc>>,
}

/// A doctor's assignment as shown.
#[derive(Clone, Debug, Serialize)]
pub struct AssignmentView {
    pub doctor_id: UserId,
    pub role: AssignmentRole,
    pub active: bool,
    pub assigned_at: DateTime<Utc>,
    pub removed_at: Option<DateTime<Utc>>,
    pub opinion_submitted: bool,
}

/// A document's metadata as shown.
#[derive(Clone, Debug, Serialize)]
pub struct DocumentView {
    pub document_id: DocumentId,
    pub file_name: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub uploaded_by: UserId,
    pub uploaded_at: DateTime<Utc>,
    pub request_id: Option<RequestId>,
}

impl From<&DocumentMeta> for DocumentView {
    fn from(d: &DocumentMeta) -> Self {
        Self {
            document_id: d.document_id,
            file_name: d.file_name.clone(),
            content_type: d.content_type.clone(),
            size: d.size,
            sha256: d.sha256.clone(),
            uploaded_by: d.uploaded_by.clone(),
            uploaded_at: d.uploaded_at,
            request_id: d.request_id,
        }
    }
}

/// The current payment: everything for the patient and admins, the status alone for the
/// coordinator (SPEC §8).
#[derive(Clone, Debug, Serialize)]
pub struct PaymentView {
    pub status: PaymentStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<PaymentId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_link: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund: Option<RefundStatus>,
}

/// The report reference, once the PDF is stored.
#[derive(Clone, Debug, Serialize)]
pub struct ReportView {
    pub report_id: ReportId,
    pub sha256: String,
    pub ready_at: DateTime<Utc>,
}

/// A case's details for one caller.
#[derive(Clone, Debug, Serialize)]
pub struct CaseView {
    #[serde(flatten)]
    pub summary: CaseSummary,
    pub sub_states: Vec<SubState>,
    pub card: StatusCard,
    pub paid_at: Option<DateTime<Utc>>,
    pub closed_reason: Option<String>,
    pub closed_by: Option<String>,
    /// The patient's name in the reader's language, from the profiles service, for those who
    /// see the patient's content; absent standalone (patients have no local record) or when
    /// the service does not answer. Filled by `api::case_details`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient_age: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient_gender: Option<Gender>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub medical_history: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub questions: Option<String>,
    pub documents: Vec<DocumentView>,
    pub document_requests: Vec<RequestView>,
    pub assignments: Vec<AssignmentView>,
    pub timeline: Vec<TimelineEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment: Option<PaymentView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<ReportView>,
}

/// What `actor` may see of `case`, in `lang`. The caller has already checked that the actor
/// sees the case at all (else "Case not found"). `coordinator` is the directory entry of the
/// case's coordinator, for the status card.
pub fn case_view(
    case: &Case,
    actor: &Actor,
    lang: Lang,
    now: DateTime<Utc>,
    coordinator: Option<&DoctorProfile>,
) -> CaseView {
    let content = can_view(case, actor, &Resource::PatientContent);
    let payment_details = can_view(case, actor, &Resource::PaymentDetails);
    let payment = case.current_payment().and_then(|p| {
        if payment_details {
            Some(PaymentView {
                status: p.status,
                payment_id: Some(p.payment_id),
                amount: Some(p.amount),
                currency: Some(p.currency.clone()),
                payment_link: p.link.clone(),
                refund: p.refund,
            })
        } else if can_view(case, actor, &Resource::PaymentStatus) {
            Some(PaymentView {
                status: p.status,
                payment_id: None,
                amount: None,
                currency: None,
                payment_link: None,
                refund: None,
            })
        } else {
            None
        }
    });
    let report = case
        .report
        .as_ref()
        .filter(|_| can_view(case, actor, &Resource::SummaryAndReport))
        .map(|r| ReportView {
            report_id: r.report_id,
            sha256: r.sha256.clone(),
            ready_at: r.ready_at,
        });
    let intake = content.then_some(&case.intake);
    CaseView {
        summary: CaseSummary::of(case, now),
        sub_states: sub_states(case, now),
        card: status_card(case, coordinator, lang, now),
        paid_at: case.paid_at,
        closed_reason: case.closed_reason.clone(),
        closed_by: case.closed_by.clone(),
        patient_name: None,
        patient_age: intake.and_then(|i| i.patient_age),
        patient_gender: intake.and_then(|i| i.patient_gender),
        medical_history: intake.map(|i| i.medical_history.clone()),
        questions: intake.map(|i| i.questions.clone()),
        documents: if content {
            case.present_documents().map(DocumentView::from).collect()
        } else {
            Vec::new()
        },
        document_requests: case
            .document_requests
            .iter()
            .map(|r| RequestView {
                request_id: r.request_id,
                items: r.items.clone(),
                open: r.open,
                requested_by: r.requested_by.clone(),
                created_at: r.created_at,
                answered_at: r.answered_at,
            })
            .collect(),
        assignments: case
            .assignments
            .iter()
            .map(|a| AssignmentView {
                doctor_id: a.doctor_id.clone(),
                role: a.role,
                active: a.active,
                assigned_at: a.assigned_at,
                removed_at: a.removed_at,
                opinion_submitted: a.opinion_submitted_at.is_some(),
            })
            .collect(),
        timeline: case.timeline.clone(),
        payment,
        report,
    }
}
