//! Who may see what of a case (SPEC §8) and who may write which content document when
//! (DESIGN.md §2). The server checks every read and every content change with these; the device
//! uses them to hide what its user may not see.

use crate::actor::Actor;
use crate::case::{Case, Relation, Status};
use crate::ids::UserId;
use crate::refusal::{Refusal, RefusalCode};
use serde::{Deserialize, Serialize};

/// The parts of a case that SPEC §8 distinguishes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Resource<'a> {
    /// Status, timeline, status card, assignments, document requests.
    CaseRecord,
    /// Intake (age, gender, history, questions) and the uploaded documents.
    PatientContent,
    /// Amount, currency, link, attempts, refunds.
    PaymentDetails,
    /// Whether the case is paid, nothing more.
    PaymentStatus,
    /// A doctor's private notes.
    Notes { doctor: &'a UserId },
    /// A specialist's opinion.
    Opinion { doctor: &'a UserId },
    /// The coordinator's final summary and the report.
    SummaryAndReport,
    /// The audit log of the case (patients see their own access history).
    AuditLog,
}

/// Whether `actor` still has access to the case at all. Doctors lose it when removed, and when
/// the case is cancelled or rejected ("a case closed for them", SPEC §8).
pub fn sees_case(case: &Case, actor: &Actor) -> bool {
    let relation = case.relation_of(actor);
    match relation {
        Relation::Coordinator | Relation::Specialist => {
            !matches!(case.status, Status::Cancelled | Status::Rejected)
        }
        other => other.sees_case(),
    }
}

/// Whether `actor` may see `resource` of `case`.
pub fn can_view(case: &Case, actor: &Actor, resource: &Resource<'_>) -> bool {
    if !sees_case(case, actor) {
        return false;
    }
    let relation = case.relation_of(actor);
    let completed = case.status == Status::Completed;
    match resource {
        Resource::CaseRecord | Resource::PatientContent => true,
        Resource::PaymentDetails => matches!(relation, Relation::Owner | Relation::Admin),
        Resource::PaymentStatus => matches!(
            relation,
            Relation::Owner | Relation::Admin | Relation::Coordinator
        ),
        Resource::Notes { doctor } => actor_is(actor, doctor),
        Resource::Opinion { doctor } => match relation {
            Relation::Coordinator | Relation::Admin => true,
            Relation::Specialist => actor_is(actor, doctor) || own_opinion_submitted(case, actor),
            // Patients read opinions through the report.
            _ => false,
        },
        Resource::SummaryAndReport => match relation {
            Relation::Coordinator | Relation::Admin => true,
            Relation::Owner | Relation::Specialist => completed,
            _ => false,
        },
        Resource::AuditLog => matches!(relation, Relation::Owner | Relation::Admin),
    }
}

fn actor_is(actor: &Actor, user: &UserId) -> bool {
    matches!(actor, Actor::Doctor(id) if id == user)
}

fn own_opinion_submitted(case: &Case, actor: &Actor) -> bool {
    actor
        .user_id()
        .and_then(|id| case.active_specialist(id))
        .is_some_and(|a| a.opinion_submitted_at.is_some())
}

/// The four collaborative content documents (DESIGN.md §2).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "doctor_id", rename_all = "snake_case")]
pub enum ContentKind {
    /// The patient's intake: age, gender, medical history, questions.
    Intake,
    /// A doctor's private notes.
    Notes(UserId),
    /// A specialist's opinion draft.
    Opinion(UserId),
    /// The coordinator's final summary draft.
    Summary,
}

/// Whether `actor` may change the content document `kind` of `case` now (DESIGN.md §2 table).
pub fn may_write(case: &Case, actor: &Actor, kind: &ContentKind) -> Result<(), Refusal> {
    if !sees_case(case, actor) {
        return Err(match actor {
            Actor::Patient(_) | Actor::Doctor(_) | Actor::Admin(_) => {
                Refusal::new(RefusalCode::CaseNotFound)
            }
            _ => Refusal::new(RefusalCode::Forbidden),
        });
    }
    let relation = case.relation_of(actor);
    let status_refusal = || Refusal::with_status(RefusalCode::InvalidStatus, Some(case.status));
    match kind {
        ContentKind::Intake => {
            if relation != Relation::Owner {
                return Err(Refusal::new(RefusalCode::Forbidden));
            }
            if case.status != Status::Draft {
                return Err(status_refusal());
            }
        }
        ContentKind::Notes(doctor) => {
            let assigned = matches!(relation, Relation::Coordinator | Relation::Specialist);
            if !assigned || !actor_is(actor, doctor) {
                return Err(Refusal::new(RefusalCode::Forbidden));
            }
            if case.status.is_final() {
                return Err(status_refusal());
            }
        }
        ContentKind::Opinion(doctor) => {
            if relation != Relation::Specialist || !actor_is(actor, doctor) {
                return Err(Refusal::new(RefusalCode::Forbidden));
            }
            if case
                .active_specialist(doctor)
                .is_some_and(|a| a.opinion_submitted_at.is_some())
            {
                return Err(Refusal::new(RefusalCode::OpinionAlreadySubmitted));
            }
            if case.status != Status::DoctorsAssigned {
                return Err(status_refusal());
            }
        }
        ContentKind::Summary => {
            if relation != Relation::Coordinator {
                return Err(Refusal::new(RefusalCode::Forbidden));
            }
            if case.status != Status::DoctorsAssigned {
                return Err(status_refusal());
            }
        }
    }
    Ok(())
}
