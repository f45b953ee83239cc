//! `decide`: one handler per command, each the SPEC §3.2 row it names. The checks common to all
//! (case exists, who, status) run first, in the order the module doc of [`super`] gives.

use super::outcome::Outcome;
use super::{Context, gate, guards};
use crate::access;
use crate::actor::Actor;
use crate::case::{
    AssignmentRole, Case, DocumentMeta, DocumentRequest, PaymentStatus, Pricing, RefundStatus,
    Status, TimelineKind,
};
use crate::catalog::Catalog;
use crate::command::{Command, DoctorToAssign, NewDocument, RequestSpec};
use crate::event::{Decision, Effect, EventKind, NotificationKind as N};
use crate::ids::{PaymentId, ReviewTypeId, UserId};
use crate::refusal::{Refusal, RefusalCode};
use std::collections::HashSet;

type Decided = Result<Decision, Refusal>;

fn refuse<T>(code: RefusalCode) -> Result<T, Refusal> {
    Err(Refusal::new(code))
}

/// Decides `command` from `actor` on `case` (`None`: no case with that id yet). A command that
/// does not read the catalog ([`Command::reads_catalog`]) is decided with an empty one.
pub fn decide(case: Option<&Case>, command: &Command, actor: &Actor, ctx: &Context<'_>) -> Decided {
    if command.reads_catalog() {
        decide_with(case, command, actor, ctx)
    } else {
        let empty = Catalog::default();
        let ctx = Context {
            catalog: &empty,
            ..*ctx
        };
        decide_with(case, command, actor, &ctx)
    }
}

fn decide_with(
    case: Option<&Case>,
    command: &Command,
    actor: &Actor,
    ctx: &Context<'_>,
) -> Decided {
    if let Command::CreateCase { .. } = command {
        return create(case, command, actor, ctx);
    }
    let Some(case) = case else {
        return refuse(RefusalCode::CaseNotFound);
    };

    let relation = case.relation_of(actor);
    let is_person = matches!(
        actor,
        Actor::Patient(_) | Actor::Doctor(_) | Actor::Admin(_)
    );
    // SPEC §8: a person without access (never on the case, removed, or a doctor on a case that
    // was cancelled or rejected) gets 404, whatever the command.
    if is_person && !access::sees_case(case, actor) {
        return refuse(RefusalCode::CaseNotFound);
    }
    if !gate::who_may(command).contains(&relation) {
        return refuse(RefusalCode::Forbidden);
    }
    if !gate::status_allows(command, case) {
        return Err(Refusal::with_status(
            RefusalCode::InvalidStatus,
            Some(case.status),
        ));
    }

    let mut out = Outcome::new(case.case_id, actor, ctx.now);
    match command {
        // Handled by `create` above; listed for exhaustiveness.
        Command::CreateCase { .. } => return refuse(RefusalCode::CaseAlreadyExists),
        Command::UpdateIntake { patch } => {
            guards::intake_patch(patch, ctx.limits)?;
            out.event(EventKind::IntakeUpdated {
                patch: patch.clone(),
            });
        }
        Command::SubmitCase => {
            guards::catalog_active(ctx.catalog, case.rt_id, case.dc_id)?;
            guards::intake_complete(&case.intake)?;
            submit_effects(&mut out, case.status, case.rt_id, ctx)?;
        }
        Command::AssignCoordinator {
            doctor_id,
            payment_id,
            requested_documents,
        } => assign_coordinator(
            &mut out,
            case,
            doctor_id,
            *payment_id,
            requested_documents,
            ctx,
        )?,
        Command::ReassignCoordinator { doctor_id } => {
            if !ctx.catalog.may_coordinate(case.dc_id, doctor_id) {
                return refuse(RefusalCode::CoordinatorNotEligible);
            }
            let old = case.coordinator_id.clone();
            if old.as_ref() == Some(doctor_id) {
                return refuse(RefusalCode::SameCoordinator);
            }
            out.event(EventKind::CoordinatorSet {
                doctor_id: doctor_id.clone(),
            })
            .timeline_about(TimelineKind::CoordinatorChanged, doctor_id);
            if let Some(old) = &old {
                out.notify(old, N::CoordinatorChanged);
            }
            out.notify(doctor_id, N::CoordinatorChanged);
        }
        Command::PaymentSucceeded {
            payment_id,
            amount,
            currency,
        } => return payment_succeeded(out, case, *payment_id, *amount, currency),
        Command::PaymentFailed { payment_id } => {
            return payment_failed(out, case, *payment_id);
        }
        Command::RetryPayment { payment_id } => {
            open_payment(&mut out, case, *payment_id)?;
            out.status(case.status, Status::AwaitingPayment)
                .timeline(TimelineKind::AwaitingPayment);
        }
        Command::AssignDoctors { doctors } => assign_doctors(&mut out, case, doctors, ctx)?,
        Command::UnassignDoctor { doctor_id } => {
            let Some(assignment) = case.active_specialist(doctor_id) else {
                return refuse(RefusalCode::DoctorNotAssigned);
            };
            if assignment.opinion_submitted_at.is_some() {
                return refuse(RefusalCode::OpinionAlreadySubmitted);
            }
            if case.active_specialists().count() <= 1 {
                return refuse(RefusalCode::LastDoctor);
            }
            out.event(EventKind::SpecialistRemoved {
                doctor_id: doctor_id.clone(),
            })
            .timeline_about(TimelineKind::DoctorRemoved, doctor_id)
            .notify(doctor_id, N::DoctorRemoved);
        }
        Command::RequestDocuments { request } => {
            let requester = person(actor)?;
            open_request(&mut out, case, requester, request, ctx)?;
        }
        Command::UploadDocument { document } => upload(&mut out, case, actor, document, ctx)?,
        Command::AnswerDocumentRequest { request_id } => {
            let Some(request) = case.request(*request_id) else {
                return refuse(RefusalCode::RequestNotFound);
            };
            if !request.open {
                return refuse(RefusalCode::RequestNotOpen);
            }
            out.event(EventKind::DocumentRequestAnswered {
                request_id: *request_id,
            })
            .timeline(TimelineKind::DocumentsProvided)
            .notify(&request.requested_by, N::DocumentsProvided);
        }
        Command::RemoveDocument { document_id } => {
            if case.document(*document_id).is_none_or(|d| d.removed) {
                return refuse(RefusalCode::DocumentNotFound);
            }
            out.event(EventKind::DocumentRemoved {
                document_id: *document_id,
            })
            .timeline(TimelineKind::DocumentRemoved);
        }
        Command::SubmitOpinion { opinion } => {
            let doctor = person(actor)?;
            if case
                .active_specialist(doctor)
                .is_some_and(|a| a.opinion_submitted_at.is_some())
            {
                return refuse(RefusalCode::OpinionAlreadySubmitted);
            }
            if opinion.summary.trim().is_empty() {
                return refuse(RefusalCode::OpinionEmpty);
            }
            out.event(EventKind::OpinionSubmitted {
                doctor_id: doctor.clone(),
            })
            .timeline_about(TimelineKind::OpinionSubmitted, doctor);
            if let Some(coordinator) = &case.coordinator_id {
                out.notify(coordinator, N::OpinionSubmitted);
            }
        }
        Command::SubmitSummary { summary } => {
            if case.pending_specialists().next().is_some() {
                return refuse(RefusalCode::OpinionsMissing);
            }
            if summary.trim().is_empty() {
                return refuse(RefusalCode::SummaryEmpty);
            }
            out.event(EventKind::SummarySubmitted)
                .status(case.status, Status::Completed)
                .timeline(TimelineKind::Completed)
                .effect(Effect::GenerateReport);
        }
        Command::Cancel { reason } => {
            guards::reason(reason, ctx.limits)?;
            close(&mut out, case, actor, reason, Status::Cancelled);
        }
        Command::Reject { reason } => {
            guards::reason(reason, ctx.limits)?;
            close(&mut out, case, actor, reason, Status::Rejected);
        }
        Command::SendOverdueReminder => {
            if case
                .last_overdue_reminder_at
                .is_some_and(|last| ctx.now - last < ctx.limits.overdue_reminder_every)
            {
                return refuse(RefusalCode::ReminderTooSoon);
            }
            out.event(EventKind::OverdueReminderSent)
                .timeline(TimelineKind::OverdueReminderSent);
            for a in case.pending_specialists() {
                out.notify(&a.doctor_id, N::OverdueReport);
            }
        }
        Command::PaymentLinkCreated { payment_id, link } => {
            let Some(payment) = case.payment(*payment_id) else {
                return refuse(RefusalCode::UnknownPayment);
            };
            if link.trim().is_empty() || link.len() > 2048 {
                return refuse(RefusalCode::LinkInvalid);
            }
            if payment.link.as_deref() != Some(link.as_str()) {
                out.event(EventKind::PaymentLinkSet {
                    payment_id: *payment_id,
                    link: link.clone(),
                });
            }
        }
        Command::RefundSettled {
            payment_id,
            refunded,
        } => {
            let Some(payment) = case.payment(*payment_id) else {
                return refuse(RefusalCode::UnknownPayment);
            };
            match (payment.refund, refunded) {
                (None, _) => return refuse(RefusalCode::RefundNotRequested),
                // Settled already with this result, or a late failure after money came back.
                (Some(RefundStatus::Refunded), _) | (Some(RefundStatus::Failed), false) => {}
                (Some(_), true) => {
                    out.event(EventKind::RefundSettled {
                        payment_id: *payment_id,
                        refunded: true,
                    })
                    .timeline(TimelineKind::Refunded)
                    .notify(&case.patient_id, N::RefundCompleted);
                }
                (Some(RefundStatus::Requested), false) => {
                    out.event(EventKind::RefundSettled {
                        payment_id: *payment_id,
                        refunded: false,
                    })
                    .timeline(TimelineKind::RefundFailed)
                    .notify_admins(N::RefundFailed);
                }
            }
        }
        Command::ReportReady { report_id, sha256 } => match &case.report {
            Some(r) if r.report_id == *report_id && r.sha256 == *sha256 => {}
            Some(_) => return refuse(RefusalCode::ReportAlreadyStored),
            None => {
                out.event(EventKind::ReportStored {
                    report_id: *report_id,
                    sha256: sha256.clone(),
                })
                .timeline(TimelineKind::ReportReady)
                .notify(&case.patient_id, N::ReportReady);
                if let Some(coordinator) = &case.coordinator_id {
                    out.notify(coordinator, N::ReportReady);
                }
            }
        },
        Command::SendDraftReminder => {
            if case.draft_reminder_sent_at.is_some() {
                return refuse(RefusalCode::AlreadySent);
            }
            if ctx.now - case.updated_at < ctx.limits.draft_reminder_after {
                return Err(Refusal::with_status(RefusalCode::NotDue, Some(case.status)));
            }
            out.event(EventKind::DraftReminderSent)
                .notify(&case.patient_id, N::DraftReminder);
        }
        Command::SendOverdueAlert => {
            if case.overdue_alert_sent_at.is_some() {
                return refuse(RefusalCode::AlreadySent);
            }
            if case.due_at.is_none_or(|due| ctx.now <= due) {
                return Err(Refusal::with_status(RefusalCode::NotDue, Some(case.status)));
            }
            out.event(EventKind::OverdueAlertSent);
            if let Some(coordinator) = &case.coordinator_id {
                out.notify(coordinator, N::OverdueReport);
            }
            for a in case.pending_specialists() {
                out.notify(&a.doctor_id, N::OverdueReport);
            }
        }
    }
    Ok(out.finish())
}

/// The user id of a person actor (the gate already admitted only people for these commands).
fn person(actor: &Actor) -> Result<&UserId, Refusal> {
    actor
        .user_id()
        .ok_or_else(|| Refusal::new(RefusalCode::Forbidden))
}

/// T1 and T2.
fn create(case: Option<&Case>, command: &Command, actor: &Actor, ctx: &Context<'_>) -> Decided {
    let Command::CreateCase {
        case_id,
        rt_id,
        dc_id,
        intake,
        submit,
    } = command
    else {
        return refuse(RefusalCode::Forbidden);
    };
    let Actor::Patient(patient_id) = actor else {
        return refuse(RefusalCode::Forbidden);
    };
    if case.is_some() {
        return refuse(RefusalCode::CaseAlreadyExists);
    }
    guards::catalog_active(ctx.catalog, *rt_id, *dc_id)?;
    guards::intake_values(intake, ctx.limits)?;
    if *submit {
        guards::intake_complete(intake)?;
    }
    let mut out = Outcome::new(*case_id, actor, ctx.now);
    out.event(EventKind::CaseCreated {
        case_id: *case_id,
        patient_id: patient_id.clone(),
        rt_id: *rt_id,
        dc_id: *dc_id,
        intake: intake.clone(),
    })
    .timeline(TimelineKind::CaseCreated);
    if *submit {
        submit_effects(&mut out, Status::Draft, *rt_id, ctx)?;
    }
    Ok(out.finish())
}

/// The effects of T3 on a draft (also the second half of T2).
fn submit_effects(
    out: &mut Outcome<'_>,
    from: Status,
    rt: ReviewTypeId,
    ctx: &Context<'_>,
) -> Result<(), Refusal> {
    let Some(review_type) = ctx.catalog.review_type(rt) else {
        return refuse(RefusalCode::ReviewTypeInactive);
    };
    out.event(EventKind::PricingFixed {
        pricing: Pricing {
            price: review_type.price,
            currency: review_type.currency.clone(),
            expected_review_days: review_type.expected_review_days,
        },
    })
    .status(from, Status::Submitted)
    .timeline(TimelineKind::Submitted)
    .notify_admins(N::CaseSubmitted);
    Ok(())
}

/// T4.
fn assign_coordinator(
    out: &mut Outcome<'_>,
    case: &Case,
    doctor: &UserId,
    payment_id: PaymentId,
    requested: &Option<RequestSpec>,
    ctx: &Context<'_>,
) -> Result<(), Refusal> {
    if !ctx.catalog.may_coordinate(case.dc_id, doctor) {
        return refuse(RefusalCode::CoordinatorNotEligible);
    }
    if let Some(request) = requested {
        guards::request_items(request, ctx.limits)?;
        guards::fresh_request(Some(case), request)?;
    }
    out.event(EventKind::CoordinatorSet {
        doctor_id: doctor.clone(),
    })
    .timeline_about(TimelineKind::CoordinatorAssigned, doctor);
    open_payment(out, case, payment_id)?;
    out.status(case.status, Status::AwaitingPayment)
        .timeline(TimelineKind::AwaitingPayment)
        .notify(doctor, N::CoordinatorAssigned)
        .notify(&case.patient_id, N::CoordinatorAssigned);
    if let Some(request) = requested {
        open_request(out, case, doctor, request, ctx)?;
    }
    Ok(())
}

/// A new payment attempt at the case's fixed price (T4, T8).
fn open_payment(out: &mut Outcome<'_>, case: &Case, payment_id: PaymentId) -> Result<(), Refusal> {
    let Some(pricing) = &case.pricing else {
        return refuse(RefusalCode::PricingMissing);
    };
    if case.payment(payment_id).is_some() {
        return refuse(RefusalCode::IdAlreadyUsed);
    }
    out.event(EventKind::PaymentOpened {
        payment_id,
        amount: pricing.price,
        currency: pricing.currency.clone(),
    })
    .effect(Effect::CreatePayment {
        payment_id,
        amount: pricing.price,
        currency: pricing.currency.clone(),
    });
    Ok(())
}

/// T6 and the money rules of SPEC §5.
fn payment_succeeded(
    mut out: Outcome<'_>,
    case: &Case,
    payment_id: PaymentId,
    amount: i64,
    currency: &str,
) -> Decided {
    let Some(payment) = case.payment(payment_id) else {
        return refuse(RefusalCode::UnknownPayment);
    };
    if payment.amount != amount || payment.currency != currency {
        return refuse(RefusalCode::AmountMismatch);
    }
    if payment.status == PaymentStatus::Succeeded {
        // A repeated callback changes nothing.
        return Ok(out.finish());
    }
    out.event(EventKind::PaymentSettled {
        payment_id,
        outcome: PaymentStatus::Succeeded,
    });
    let is_current = case.current_payment().map(|p| p.payment_id) == Some(payment_id);
    let awaiting = matches!(case.status, Status::AwaitingPayment | Status::PaymentFailed);
    if is_current && awaiting {
        let now = out.now();
        let days = case.pricing.as_ref().map_or(0, |p| p.expected_review_days);
        out.event(EventKind::Paid {
            due_at: now + chrono::TimeDelta::days(i64::from(days)),
        })
        .status(case.status, Status::PaymentSuccessful)
        .timeline(TimelineKind::PaymentReceived)
        .effect(Effect::RequestInvoice { payment_id })
        .notify(&case.patient_id, N::PaymentSuccessful);
        if let Some(coordinator) = &case.coordinator_id {
            out.notify(coordinator, N::PaymentSuccessful);
        }
    } else {
        // Superseded attempt, a second success, or the case closed meanwhile: keep no money.
        out.event(EventKind::RefundRequested { payment_id })
            .timeline(TimelineKind::RefundRequested)
            .effect(Effect::RequestRefund {
                payment_id,
                amount,
                currency: currency.to_owned(),
            });
    }
    Ok(out.finish())
}

/// T7: a failure moves the case only for the current attempt while awaiting payment; otherwise it
/// is recorded on the attempt and nothing else changes.
fn payment_failed(mut out: Outcome<'_>, case: &Case, payment_id: PaymentId) -> Decided {
    let Some(payment) = case.payment(payment_id) else {
        return refuse(RefusalCode::UnknownPayment);
    };
    if payment.status != PaymentStatus::Pending {
        // Repeated, or stale after a success: changes nothing.
        return Ok(out.finish());
    }
    out.event(EventKind::PaymentSettled {
        payment_id,
        outcome: PaymentStatus::Failed,
    });
    let is_current = case.current_payment().map(|p| p.payment_id) == Some(payment_id);
    if is_current && case.status == Status::AwaitingPayment {
        out.status(case.status, Status::PaymentFailed)
            .timeline(TimelineKind::PaymentFailed)
            .notify(&case.patient_id, N::PaymentFailed);
    }
    Ok(out.finish())
}

/// T9.
fn assign_doctors(
    out: &mut Outcome<'_>,
    case: &Case,
    doctors: &[DoctorToAssign],
    ctx: &Context<'_>,
) -> Result<(), Refusal> {
    if doctors.is_empty() {
        return refuse(RefusalCode::NoDoctors);
    }
    let mut seen = HashSet::new();
    let mut request_ids = HashSet::new();
    for d in doctors {
        if !ctx.catalog.may_review(case.dc_id, &d.doctor_id) {
            return refuse(RefusalCode::DoctorNotEligible);
        }
        if case.coordinator_id.as_ref() == Some(&d.doctor_id) {
            return refuse(RefusalCode::DoctorIsCoordinator);
        }
        if case.active_specialist(&d.doctor_id).is_some() || !seen.insert(&d.doctor_id) {
            return refuse(RefusalCode::DoctorAlreadyAssigned);
        }
        if let Some(request) = &d.requested_documents {
            guards::request_items(request, ctx.limits)?;
            guards::fresh_request(Some(case), request)?;
            if !request_ids.insert(request.request_id) {
                return refuse(RefusalCode::IdAlreadyUsed);
            }
        }
    }
    let first = case.status == Status::PaymentSuccessful;
    for d in doctors {
        out.event(EventKind::DoctorAssigned {
            doctor_id: d.doctor_id.clone(),
            role: AssignmentRole::Specialist,
        });
        if !first {
            out.timeline_about(TimelineKind::DoctorAdded, &d.doctor_id);
        }
        out.notify(
            &d.doctor_id,
            if first {
                N::DoctorsAssigned
            } else {
                N::DoctorAdded
            },
        );
    }
    if first {
        out.status(case.status, Status::DoctorsAssigned)
            .timeline(TimelineKind::DoctorsAssigned);
    }
    out.notify(&case.patient_id, N::DoctorsAssigned);
    for d in doctors {
        if let Some(request) = &d.requested_documents {
            open_request(out, case, &d.doctor_id, request, ctx)?;
        }
    }
    Ok(())
}

/// Opens a document request on behalf of `requester` (T4, T9, T11).
fn open_request(
    out: &mut Outcome<'_>,
    case: &Case,
    requester: &UserId,
    request: &RequestSpec,
    ctx: &Context<'_>,
) -> Result<(), Refusal> {
    guards::request_items(request, ctx.limits)?;
    guards::fresh_request(Some(case), request)?;
    out.event(EventKind::DocumentRequestOpened {
        request: DocumentRequest {
            request_id: request.request_id,
            requested_by: requester.clone(),
            items: request.items.iter().map(|i| i.trim().to_owned()).collect(),
            open: true,
            created_at: out.now(),
            answered_at: None,
        },
    })
    .timeline(TimelineKind::DocumentsRequested)
    .notify(&case.patient_id, N::DocumentsRequested);
    Ok(())
}

/// T12: attach a document (to a draft, or for an open request).
fn upload(
    out: &mut Outcome<'_>,
    case: &Case,
    actor: &Actor,
    doc: &NewDocument,
    ctx: &Context<'_>,
) -> Result<(), Refusal> {
    if case.status != Status::Draft && !case.has_open_request() {
        return Err(Refusal::with_status(
            RefusalCode::NoOpenRequest,
            Some(case.status),
        ));
    }
    if let Some(request_id) = doc.request_id {
        match case.request(request_id) {
            None => return refuse(RefusalCode::RequestNotFound),
            Some(r) if !r.open => return refuse(RefusalCode::RequestNotOpen),
            Some(_) => {}
        }
    }
    guards::document(case, doc, ctx.limits)?;
    let uploaded_by = person(actor)?.clone();
    out.event(EventKind::DocumentAdded {
        document: DocumentMeta {
            document_id: doc.document_id,
            file_name: doc.file_name.clone(),
            content_type: doc.content_type.clone(),
            size: doc.size,
            sha256: doc.sha256.to_ascii_lowercase(),
            uploaded_by,
            uploaded_at: out.now(),
            request_id: doc.request_id,
            removed: false,
        },
    })
    .timeline(TimelineKind::DocumentAdded);
    Ok(())
}

/// T16 and T17: close the case, return the money if it was paid, tell those concerned.
fn close(out: &mut Outcome<'_>, case: &Case, actor: &Actor, reason: &str, to: Status) {
    let closed_by = match actor.user_id() {
        Some(id) => format!("{}:{id}", actor.kind()),
        None => actor.kind().to_owned(),
    };
    out.event(EventKind::Closed {
        reason: reason.trim().to_owned(),
        closed_by,
    })
    .status(case.status, to)
    .timeline(if to == Status::Cancelled {
        TimelineKind::Cancelled
    } else {
        TimelineKind::Rejected
    });
    if let Some(payment) = case.refundable_payment() {
        out.event(EventKind::RefundRequested {
            payment_id: payment.payment_id,
        })
        .timeline(TimelineKind::RefundRequested)
        .effect(Effect::RequestRefund {
            payment_id: payment.payment_id,
            amount: payment.amount,
            currency: payment.currency.clone(),
        });
    }
    let kind = if to == Status::Cancelled {
        N::CaseCancelled
    } else {
        N::CaseRejected
    };
    if !matches!(actor, Actor::Patient(_)) {
        out.notify(&case.patient_id, kind);
    }
    if let Some(coordinator) = &case.coordinator_id {
        out.notify(coordinator, kind);
    }
    for a in case.active_specialists() {
        out.notify(&a.doctor_id, kind);
    }
}
