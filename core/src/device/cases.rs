//! Cases on the device: the core [`Case`] rebuilt from the server's record (so the core rules
//! can run offline against it), the optimistic local case (the server's plus the queued
//! commands, replayed), and the records handed to the app.
//!
//! A server record is what the user may see of a case (SPEC §8), not the whole case: payment
//! history, pricing and reminder times are missing or partial. The rebuilt case fills them
//! with what the record says (the current payment, the pricing of the card) and neutral values
//! otherwise. That is enough for the rules a device user can trigger. Data a device never has
//! (a category's eligible doctors, the coordinator mappings, catalog entries not received yet)
//! is assumed to pass in the catalog the device decides with (`Device::catalog_for`), so such a
//! command shows its expected effect locally until the server answers; [`needs_server`] covers
//! what is left (a price or payment the record lacks) by queueing without a local effect.

use crate::Timestamp;
use crate::actor::Actor;
use crate::card::{StatusCard, status_card};
use crate::case::{
    Assignment, AssignmentRole, Case, DocumentMeta, DocumentRequest, Gender, Intake, Payment,
    PaymentStatus, Pricing, RefundStatus, ReportRef, Status, TimelineEntry, case_reference,
};
use crate::catalog::{Catalog, DoctorProfile};
use crate::command::Command;
use crate::ids::{
    CaseId, CategoryId, DocumentId, PaymentId, ReportId, RequestId, ReviewTypeId, UserId,
};
use crate::lang::Lang;
use crate::refusal::{Refusal, RefusalCode};
use crate::rules::{Context, Limits, execute};
use crate::substate::{SubState, sub_states};
use serde::Deserialize;
use serde_json::Value;

use super::types::{
    AssignmentInfo, CaseDetail, DocumentInfo, RequestInfo, StatusCardInfo, TimelineItem,
};

/// Refusals that depend on data a device does not hold (prices or payments it never saw; the
/// eligibility and catalog codes are a safety net, `Device::catalog_for` assumes those pass):
/// the device queues the command without a local effect and lets the server decide.
pub(crate) fn needs_server(code: RefusalCode) -> bool {
    matches!(
        code,
        RefusalCode::CoordinatorNotEligible
            | RefusalCode::DoctorNotEligible
            | RefusalCode::PricingMissing
            | RefusalCode::ReviewTypeInactive
            | RefusalCode::CategoryInactive
            | RefusalCode::UnknownPayment
    )
}

/// The fields of a server case record (`views::CaseView` on the server) the device reads.
#[derive(Debug, Deserialize)]
struct Record {
    case_id: CaseId,
    patient_id: UserId,
    rt_id: ReviewTypeId,
    dc_id: CategoryId,
    status: Status,
    coordinator_id: Option<UserId>,
    created_at: Timestamp,
    updated_at: Timestamp,
    submitted_at: Option<Timestamp>,
    due_at: Option<Timestamp>,
    completed_at: Option<Timestamp>,
    #[serde(default)]
    paid_at: Option<Timestamp>,
    #[serde(default)]
    closed_reason: Option<String>,
    #[serde(default)]
    closed_by: Option<String>,
    #[serde(default)]
    patient_age: Option<i32>,
    #[serde(default)]
    patient_gender: Option<Gender>,
    #[serde(default)]
    medical_history: Option<String>,
    #[serde(default)]
    questions: Option<String>,
    #[serde(default)]
    documents: Vec<RecordDocument>,
    #[serde(default)]
    document_requests: Vec<RecordRequest>,
    #[serde(default)]
    assignments: Vec<RecordAssignment>,
    #[serde(default)]
    timeline: Vec<TimelineEntry>,
    #[serde(default)]
    payment: Option<RecordPayment>,
    #[serde(default)]
    report: Option<RecordReport>,
    #[serde(default)]
    card: Option<StatusCard>,
}

#[derive(Debug, Deserialize)]
struct RecordDocument {
    document_id: DocumentId,
    file_name: String,
    content_type: String,
    size: i64,
    sha256: String,
    uploaded_by: UserId,
    uploaded_at: Timestamp,
    request_id: Option<RequestId>,
}

#[derive(Debug, Deserialize)]
struct RecordRequest {
    request_id: RequestId,
    items: Vec<String>,
    open: bool,
    requested_by: UserId,
    created_at: Timestamp,
    answered_at: Option<Timestamp>,
}

#[derive(Debug, Deserialize)]
struct RecordAssignment {
    doctor_id: UserId,
    role: AssignmentRole,
    active: bool,
    assigned_at: Timestamp,
    removed_at: Option<Timestamp>,
    opinion_submitted: bool,
}

#[derive(Debug, Deserialize)]
struct RecordPayment {
    status: PaymentStatus,
    payment_id: Option<PaymentId>,
    amount: Option<i64>,
    currency: Option<String>,
    payment_link: Option<String>,
    refund: Option<RefundStatus>,
}

#[derive(Debug, Deserialize)]
struct RecordReport {
    report_id: ReportId,
    sha256: String,
    ready_at: Timestamp,
}

/// The core case a server record describes (see the module docs for what is approximated).
pub(crate) fn case_from_record(record: &Value) -> Result<Case, serde_json::Error> {
    let r = Record::deserialize(record)?;
    let card_amount = r
        .card
        .as_ref()
        .and_then(|c| c.amount.zip(c.currency.clone()));
    let payment = r.payment.as_ref().map(|p| Payment {
        payment_id: p.payment_id.unwrap_or(PaymentId(uuid::Uuid::nil())),
        amount: p.amount.or(card_amount.as_ref().map(|a| a.0)).unwrap_or(0),
        currency: p
            .currency
            .clone()
            .or(card_amount.as_ref().map(|a| a.1.clone()))
            .unwrap_or_default(),
        status: p.status,
        link: p.payment_link.clone(),
        created_at: r.updated_at,
        settled_at: None,
        superseded: false,
        refund: p.refund,
    });
    let pricing = payment
        .as_ref()
        .map(|p| (p.amount, p.currency.clone()))
        .or(card_amount)
        .map(|(price, currency)| Pricing {
            price,
            currency,
            expected_review_days: 0,
        });
    Ok(Case {
        case_id: r.case_id,
        patient_id: r.patient_id,
        rt_id: r.rt_id,
        dc_id: r.dc_id,
        status: r.status,
        coordinator_id: r.coordinator_id,
        intake: Intake {
            patient_age: r.patient_age,
            patient_gender: r.patient_gender,
            medical_history: r.medical_history.unwrap_or_default(),
            questions: r.questions.unwrap_or_default(),
        },
        pricing,
        assignments: r
            .assignments
            .into_iter()
            .map(|a| Assignment {
                doctor_id: a.doctor_id,
                role: a.role,
                active: a.active,
                assigned_at: a.assigned_at,
                removed_at: a.removed_at,
                // The record says whether, not when; the time only matters as "frozen".
                opinion_submitted_at: a.opinion_submitted.then_some(r.updated_at),
            })
            .collect(),
        document_requests: r
            .document_requests
            .into_iter()
            .map(|q| DocumentRequest {
                request_id: q.request_id,
                requested_by: q.requested_by,
                items: q.items,
                open: q.open,
                created_at: q.created_at,
                answered_at: q.answered_at,
            })
            .collect(),
        documents: r
            .documents
            .into_iter()
            .map(|d| DocumentMeta {
                document_id: d.document_id,
                file_name: d.file_name,
                content_type: d.content_type,
                size: d.size,
                sha256: d.sha256,
                uploaded_by: d.uploaded_by,
                uploaded_at: d.uploaded_at,
                request_id: d.request_id,
                removed: false,
            })
            .collect(),
        payments: payment.into_iter().collect(),
        summary_submitted_at: (r.status == Status::Completed).then_some(r.updated_at),
        report: r.report.map(|p| ReportRef {
            report_id: p.report_id,
            sha256: p.sha256,
            ready_at: p.ready_at,
        }),
        timeline: r.timeline,
        created_at: r.created_at,
        updated_at: r.updated_at,
        submitted_at: r.submitted_at,
        paid_at: r.paid_at,
        due_at: r.due_at,
        completed_at: r.completed_at,
        closed_reason: r.closed_reason,
        closed_by: r.closed_by,
        last_overdue_reminder_at: None,
        draft_reminder_sent_at: None,
        overdue_alert_sent_at: None,
    })
}

/// The coordinator's contact as the server's card gave it, as a directory entry for the
/// device's own cards.
pub(crate) fn coordinator_of(record: Option<&Value>, case: &Case) -> Option<DoctorProfile> {
    let contact = record?.get("card")?.get("coordinator")?;
    let field = |k: &str| contact.get(k).and_then(Value::as_str).unwrap_or_default();
    Some(DoctorProfile {
        doctor_id: case.coordinator_id.clone()?,
        name_en: field("name").to_owned(),
        name_ar: field("name").to_owned(),
        phone: field("phone").to_owned(),
        email: field("email").to_owned(),
        specialties: Vec::new(),
    })
}

/// Runs `command` against `case` with the device's view of the world.
pub(crate) fn run(
    case: Option<&Case>,
    command: &Command,
    actor: &Actor,
    catalog: &Catalog,
    now: Timestamp,
) -> Result<Option<Case>, Refusal> {
    let limits = Limits::default();
    let ctx = Context {
        catalog,
        limits: &limits,
        now,
    };
    execute(case, command, actor, &ctx).map(|(next, _)| next)
}

/// The server's case with the queued commands replayed on it, in order. A command the rules
/// now refuse (the server moved on) has no local effect; the server will answer it.
pub(crate) fn replay<'a>(
    base: Option<Case>,
    commands: impl IntoIterator<Item = &'a Command>,
    actor: &Actor,
    catalog: &Catalog,
    now: Timestamp,
) -> Option<Case> {
    commands.into_iter().fold(base, |case, command| {
        match run(case.as_ref(), command, actor, catalog, now) {
            Ok(next) => next,
            Err(_) => case,
        }
    })
}

fn text<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

fn time(t: Timestamp) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The columns of the case list, computed from the local case.
pub(crate) struct ListColumns {
    pub status: String,
    pub reference: String,
    pub sub_state: Option<String>,
    pub card_title: String,
    pub updated_at: String,
}

/// The list columns of `case`.
pub(crate) fn list_columns(
    case: &Case,
    record: Option<&Value>,
    lang: Lang,
    now: Timestamp,
) -> ListColumns {
    let coordinator = coordinator_of(record, case);
    let card = status_card(case, coordinator.as_ref(), lang, now);
    let states = sub_states(case, now);
    ListColumns {
        status: case.status.as_str().to_owned(),
        reference: case_reference(case.case_id),
        sub_state: states.first().map(text::<SubState>),
        card_title: card.title,
        updated_at: time(case.updated_at),
    }
}

/// What the app shows of a case.
pub(crate) struct DetailInput<'a> {
    pub local: &'a Case,
    pub record: Option<&'a Value>,
    pub record_text: Option<String>,
    pub pending_ops: i64,
    /// Documents whose file is still being uploaded from this device.
    pub uploading: &'a [String],
    pub lang: Lang,
    pub now: Timestamp,
}

/// The app's record of a case.
pub(crate) fn detail(input: DetailInput<'_>) -> CaseDetail {
    let case = input.local;
    let coordinator = coordinator_of(input.record, case);
    let card = status_card(case, coordinator.as_ref(), input.lang, input.now);
    let states = sub_states(case, input.now);
    CaseDetail {
        case_id: case.case_id.to_string(),
        reference: case_reference(case.case_id),
        patient_id: case.patient_id.to_string(),
        rt_id: case.rt_id.to_string(),
        dc_id: case.dc_id.to_string(),
        status: case.status.as_str().to_owned(),
        server_status: input
            .record
            .and_then(|r| r.get("status"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        sub_state: states.first().map(text),
        sub_states: states.iter().map(text).collect(),
        card: StatusCardInfo {
            title: card.title,
            message: card.message,
            actions: card.actions.iter().map(text).collect(),
            amount: card.amount,
            currency: card.currency,
            payment_link: card.payment_link,
            due_at: card.due_at.map(time),
            requested_items: card.requested_items,
            reason: card.reason,
        },
        coordinator_id: case.coordinator_id.as_ref().map(ToString::to_string),
        documents: case
            .present_documents()
            .map(|d| DocumentInfo {
                document_id: d.document_id.to_string(),
                file_name: d.file_name.clone(),
                content_type: d.content_type.clone(),
                size: d.size,
                sha256: d.sha256.clone(),
                request_id: d.request_id.map(|r| r.to_string()),
                uploaded: !input.uploading.contains(&d.document_id.to_string()),
            })
            .collect(),
        document_requests: case
            .document_requests
            .iter()
            .map(|r| RequestInfo {
                request_id: r.request_id.to_string(),
                items: r.items.clone(),
                open: r.open,
                requested_by: r.requested_by.to_string(),
            })
            .collect(),
        assignments: case
            .assignments
            .iter()
            .map(|a| AssignmentInfo {
                doctor_id: a.doctor_id.to_string(),
                role: text(&a.role),
                active: a.active,
                opinion_submitted: a.opinion_submitted_at.is_some(),
            })
            .collect(),
        timeline: case
            .timeline
            .iter()
            .map(|t| TimelineItem {
                kind: text(&t.kind),
                actor_kind: t.actor_kind.clone(),
                at: time(t.at),
                detail: t.detail.clone(),
            })
            .collect(),
        report_id: case.report.as_ref().map(|r| r.report_id.to_string()),
        due_at: case.due_at.map(time),
        closed_reason: case.closed_reason.clone(),
        pending_ops: input.pending_ops,
        record_json: input.record_text,
    }
}
