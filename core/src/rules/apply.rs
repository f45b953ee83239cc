//! `apply`: folds one event into a case. Replaying a case's events from nothing rebuilds it
//! exactly; that is how the server and the device agree on state.

use crate::case::{
    Assignment, AssignmentRole, Case, Payment, PaymentStatus, RefundStatus, ReportRef, Status,
};
use crate::event::{Event, EventKind};

/// The case after `event`. Events are the output of `decide`, so they fit the case; an event that
/// needs a case (anything but `CaseCreated`) on `None` is ignored.
pub fn apply(case: Option<Case>, event: &Event) -> Option<Case> {
    let at = event.at;
    if let EventKind::CaseCreated {
        case_id,
        patient_id,
        rt_id,
        dc_id,
        intake,
    } = &event.kind
    {
        return Some(Case {
            case_id: *case_id,
            patient_id: patient_id.clone(),
            rt_id: *rt_id,
            dc_id: *dc_id,
            status: Status::Draft,
            coordinator_id: None,
            intake: intake.clone(),
            pricing: None,
            assignments: Vec::new(),
            document_requests: Vec::new(),
            documents: Vec::new(),
            payments: Vec::new(),
            summary_submitted_at: None,
            report: None,
            timeline: Vec::new(),
            created_at: at,
            updated_at: at,
            submitted_at: None,
            paid_at: None,
            due_at: None,
            completed_at: None,
            closed_reason: None,
            closed_by: None,
            last_overdue_reminder_at: None,
            draft_reminder_sent_at: None,
            overdue_alert_sent_at: None,
        });
    }
    let mut case = case?;
    case.updated_at = at;
    match &event.kind {
        EventKind::CaseCreated { .. } => {}
        EventKind::IntakeUpdated { patch } => {
            let intake = &mut case.intake;
            if let Some(age) = patch.patient_age {
                intake.patient_age = Some(age);
            }
            if let Some(gender) = patch.patient_gender {
                intake.patient_gender = Some(gender);
            }
            if let Some(history) = &patch.medical_history {
                intake.medical_history.clone_from(history);
            }
            if let Some(questions) = &patch.questions {
                intake.questions.clone_from(questions);
            }
        }
        EventKind::StatusChanged { to, .. } => case.status = *to,
        EventKind::PricingFixed { pricing } => {
            case.pricing = Some(pricing.clone());
            case.submitted_at = Some(at);
        }
        EventKind::CoordinatorSet { doctor_id } => {
            end_assignments(&mut case, AssignmentRole::Coordinator, None, at);
            case.assignments
                .push(new_assignment(doctor_id, AssignmentRole::Coordinator, at));
            case.coordinator_id = Some(doctor_id.clone());
        }
        EventKind::PaymentOpened {
            payment_id,
            amount,
            currency,
        } => {
            for p in &mut case.payments {
                p.superseded = true;
            }
            case.payments.push(Payment {
                payment_id: *payment_id,
                amount: *amount,
                currency: currency.clone(),
                status: PaymentStatus::Pending,
                link: None,
                created_at: at,
                settled_at: None,
                superseded: false,
                refund: None,
            });
        }
        EventKind::PaymentLinkSet { payment_id, link } => {
            if let Some(p) = payment_mut(&mut case, *payment_id) {
                p.link = Some(link.clone());
            }
        }
        EventKind::PaymentSettled {
            payment_id,
            outcome,
        } => {
            if let Some(p) = payment_mut(&mut case, *payment_id) {
                p.status = *outcome;
                p.settled_at = Some(at);
            }
        }
        EventKind::Paid { due_at } => {
            case.paid_at = Some(at);
            case.due_at = Some(*due_at);
        }
        EventKind::RefundRequested { payment_id } => {
            if let Some(p) = payment_mut(&mut case, *payment_id) {
                p.refund = Some(RefundStatus::Requested);
            }
        }
        EventKind::RefundSettled {
            payment_id,
            refunded,
        } => {
            if let Some(p) = payment_mut(&mut case, *payment_id) {
                p.refund = Some(if *refunded {
                    RefundStatus::Refunded
                } else {
                    RefundStatus::Failed
                });
            }
        }
        EventKind::DoctorAssigned { doctor_id, role } => {
            case.assignments.push(new_assignment(doctor_id, *role, at));
        }
        EventKind::SpecialistRemoved { doctor_id } => {
            end_assignments(&mut case, AssignmentRole::Specialist, Some(doctor_id), at);
        }
        EventKind::DocumentRequestOpened { request } => {
            case.document_requests.push(request.clone());
        }
        EventKind::DocumentRequestAnswered { request_id } => {
            if let Some(r) = case
                .document_requests
                .iter_mut()
                .find(|r| r.request_id == *request_id)
            {
                r.open = false;
                r.answered_at = Some(at);
            }
        }
        EventKind::DocumentAdded { document } => case.documents.push(document.clone()),
        EventKind::DocumentRemoved { document_id } => {
            if let Some(d) = case
                .documents
                .iter_mut()
                .find(|d| d.document_id == *document_id)
            {
                d.removed = true;
            }
        }
        EventKind::OpinionSubmitted { doctor_id } => {
            if let Some(a) = case.assignments.iter_mut().find(|a| {
                a.active && a.role == AssignmentRole::Specialist && a.doctor_id == *doctor_id
            }) {
                a.opinion_submitted_at = Some(at);
            }
        }
        EventKind::SummarySubmitted => {
            case.summary_submitted_at = Some(at);
            case.completed_at = Some(at);
        }
        EventKind::Closed { reason, closed_by } => {
            case.closed_reason = Some(reason.clone());
            case.closed_by = Some(closed_by.clone());
        }
        EventKind::ReportStored { report_id, sha256 } => {
            case.report = Some(ReportRef {
                report_id: *report_id,
                sha256: sha256.clone(),
                ready_at: at,
            });
        }
        EventKind::OverdueReminderSent => case.last_overdue_reminder_at = Some(at),
        EventKind::DraftReminderSent => case.draft_reminder_sent_at = Some(at),
        EventKind::OverdueAlertSent => case.overdue_alert_sent_at = Some(at),
        EventKind::Timeline { entry } => case.timeline.push(entry.clone()),
    }
    Some(case)
}

/// Rebuilds a case from its whole event history.
pub fn replay<'a>(events: impl IntoIterator<Item = &'a Event>) -> Option<Case> {
    events.into_iter().fold(None, apply)
}

fn new_assignment(
    doctor_id: &crate::ids::UserId,
    role: AssignmentRole,
    at: crate::Timestamp,
) -> Assignment {
    Assignment {
        doctor_id: doctor_id.clone(),
        role,
        active: true,
        assigned_at: at,
        removed_at: None,
        opinion_submitted_at: None,
    }
}

/// Deactivates the active assignments of `role` (of one doctor, or all).
fn end_assignments(
    case: &mut Case,
    role: AssignmentRole,
    doctor: Option<&crate::ids::UserId>,
    at: crate::Timestamp,
) {
    for a in case
        .assignments
        .iter_mut()
        .filter(|a| a.active && a.role == role && doctor.is_none_or(|d| *d == a.doctor_id))
    {
        a.active = false;
        a.removed_at = Some(at);
    }
}

fn payment_mut(case: &mut Case, id: crate::ids::PaymentId) -> Option<&mut Payment> {
    case.payments.iter_mut().find(|p| p.payment_id == id)
}
