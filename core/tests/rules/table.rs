//! The transition table of SPEC §3.2 as data, checked against every combination of
//! case status (plus "no case yet") × command × kind of actor.
//!
//! The expectations below are written from the SPEC, not derived from the code under test: for
//! each command, who may issue it, from which statuses, to which status, and which events it
//! records; plus the explicit exceptions where the fixture's state makes a guard answer instead
//! (each is commented). The generic parts of the SPEC are encoded once in [`expected`]:
//!
//! - no case yet: every command but creation → `case_not_found`;
//! - creation: patients only (`forbidden` for anyone else); on an existing id →
//!   `case_already_exists`;
//! - a person who may not see the case (another patient, a doctor not on it, a removed doctor,
//!   a doctor on a case closed by cancel/reject — SPEC §8) → `case_not_found`;
//! - anyone else outside the "Who" column → `forbidden`;
//! - a status outside the "From" column → `invalid_status`, with a message naming the status.
//!
//! Commands run at [`now`]: 30 days after the fixtures were built, so the scheduled jobs are due
//! (draft idle ≥ 24 h, `due_at` passed) and the T18 12-hour window is open.

use crate::fixtures::{self, Fx, Variant};
use chrono::TimeDelta;
use sop_core::Timestamp;
use sop_core::actor::Actor;
use sop_core::case::{Gender, IntakePatch, Status};
use sop_core::command::Command;
use sop_core::lang::status_name_en;
use sop_core::refusal::RefusalCode as R;
use std::collections::HashMap;

/// When the table's commands run.
fn now() -> Timestamp {
    fixtures::base() + TimeDelta::days(30)
}

/// The kinds of actor of the table, each a fixed person of the fixtures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// P1, who owns the case.
    OwningPatient,
    /// P2.
    OtherPatient,
    /// D1: an active specialist from `doctors_assigned` on (before that, a doctor not on the case).
    ActiveSpecialist,
    /// D3: assigned then removed in `doctors_assigned` (before that, a doctor not on the case).
    RemovedSpecialist,
    /// C1: the coordinator from `awaiting_payment` on (before that, a doctor not on the case).
    Coordinator,
    /// D9: never on the case.
    OtherDoctor,
    Admin,
    PaymentPlatform,
    System,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::OwningPatient,
        Kind::OtherPatient,
        Kind::ActiveSpecialist,
        Kind::RemovedSpecialist,
        Kind::Coordinator,
        Kind::OtherDoctor,
        Kind::Admin,
        Kind::PaymentPlatform,
        Kind::System,
    ];

    pub fn actor(self) -> Actor {
        match self {
            Kind::OwningPatient => fixtures::owner(),
            Kind::OtherPatient => fixtures::patient(fixtures::p2()),
            Kind::ActiveSpecialist => fixtures::doctor(fixtures::d1()),
            Kind::RemovedSpecialist => fixtures::doctor(fixtures::d3()),
            Kind::Coordinator => fixtures::doctor(fixtures::c1()),
            Kind::OtherDoctor => fixtures::doctor(fixtures::d9()),
            Kind::Admin => fixtures::admin(),
            Kind::PaymentPlatform => fixtures::platform(),
            Kind::System => fixtures::system(),
        }
    }

    fn is_person(self) -> bool {
        !matches!(self, Kind::PaymentPlatform | Kind::System)
    }

    fn is_patient(self) -> bool {
        matches!(self, Kind::OwningPatient | Kind::OtherPatient)
    }
}

/// How an actor stands to the fixture case: the SPEC's "own patient / own coordinator / own
/// doctor", written here from how the fixtures are built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rel {
    Owner,
    OtherPatient,
    Specialist,
    Removed,
    Coordinator,
    NotOnCase,
    Admin,
    Platform,
    System,
}

fn rel(kind: Kind, status: Status) -> Rel {
    use Status::*;
    let specialists_on = matches!(status, DoctorsAssigned | Completed | Cancelled);
    let coordinator_on = !matches!(status, Draft | Submitted);
    match kind {
        Kind::OwningPatient => Rel::Owner,
        Kind::OtherPatient => Rel::OtherPatient,
        Kind::ActiveSpecialist if specialists_on => Rel::Specialist,
        Kind::RemovedSpecialist if specialists_on => Rel::Removed,
        Kind::Coordinator if coordinator_on => Rel::Coordinator,
        Kind::ActiveSpecialist | Kind::RemovedSpecialist | Kind::Coordinator => Rel::NotOnCase,
        Kind::OtherDoctor => Rel::NotOnCase,
        Kind::Admin => Rel::Admin,
        Kind::PaymentPlatform => Rel::Platform,
        Kind::System => Rel::System,
    }
}

/// SPEC §8: who may see the case at all. Doctors lose access when removed (T10) or when the case
/// is closed for them (cancelled or rejected).
fn sees(rel: Rel, status: Status) -> bool {
    match rel {
        Rel::Owner | Rel::Admin => true,
        Rel::Coordinator | Rel::Specialist => {
            !matches!(status, Status::Cancelled | Status::Rejected)
        }
        _ => false,
    }
}

/// An expected outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exp {
    /// Allowed: the status afterwards (`None`: unchanged) and the event kind names in order.
    Ok(Option<Status>, &'static [&'static str]),
    Refused(R),
}

fn to(status: Status, events: &'static [&'static str]) -> Exp {
    Exp::Ok(Some(status), events)
}
fn same(events: &'static [&'static str]) -> Exp {
    Exp::Ok(None, events)
}
fn no(code: R) -> Exp {
    Exp::Refused(code)
}

/// One column of the table: a command with a valid payload.
struct Column {
    name: &'static str,
    /// The "Who" column; empty for creation (any patient, checked in [`expected`]).
    who: &'static [Rel],
    /// Creation only: the outcome for a patient when there is no case yet.
    create: Option<Exp>,
    /// The "From" column with the outcome in each such status; any other status is refused
    /// with `invalid_status`.
    from: Vec<(Status, Exp)>,
    variant: Variant,
    command: fn() -> Command,
}

const CLOSE: &[&str] = &["closed", "status_changed", "timeline"];
const CLOSE_AND_REFUND: &[&str] = &[
    "closed",
    "status_changed",
    "timeline",
    "refund_requested",
    "timeline",
];
const PAID: &[&str] = &["payment_settled", "paid", "status_changed", "timeline"];
const DOCUMENT_ADDED: &[&str] = &["document_added", "timeline"];
const REQUEST_ANSWERED: &[&str] = &["document_request_answered", "timeline"];
const LINK_SET: &[&str] = &["payment_link_set"];
const NOTHING: &[&str] = &[];

fn columns() -> Vec<Column> {
    use Status::*;
    let std = Variant::Standard;
    vec![
        Column {
            name: "T1 create_case",
            who: &[],
            create: Some(to(Draft, &["case_created", "timeline"])),
            from: vec![],
            variant: std,
            command: || fixtures::create(false),
        },
        Column {
            name: "T2 create_and_submit",
            who: &[],
            create: Some(to(
                Submitted,
                &[
                    "case_created",
                    "timeline",
                    "pricing_fixed",
                    "status_changed",
                    "timeline",
                ],
            )),
            from: vec![],
            variant: std,
            command: || fixtures::create(true),
        },
        Column {
            name: "T3 submit_case",
            who: &[Rel::Owner],
            create: None,
            from: vec![(
                Draft,
                to(Submitted, &["pricing_fixed", "status_changed", "timeline"]),
            )],
            variant: std,
            command: || Command::SubmitCase,
        },
        Column {
            name: "T4 assign_coordinator",
            who: &[Rel::Admin],
            create: None,
            from: vec![(
                Submitted,
                to(
                    AwaitingPayment,
                    &[
                        "coordinator_set",
                        "timeline",
                        "payment_opened",
                        "status_changed",
                        "timeline",
                    ],
                ),
            )],
            variant: std,
            command: || fixtures::assign_coordinator(fixtures::c1(), fixtures::PAY2),
        },
        Column {
            name: "T5 reassign_coordinator",
            who: &[Rel::Admin],
            create: None,
            from: vec![
                (AwaitingPayment, same(&["coordinator_set", "timeline"])),
                (PaymentFailed, same(&["coordinator_set", "timeline"])),
            ],
            variant: std,
            command: || Command::ReassignCoordinator {
                doctor_id: fixtures::c2(),
            },
        },
        Column {
            // SPEC §5: callbacks are processed in any state. Before T4 there is no attempt
            // (unknown payment); once PAY1 succeeded, a repeated success changes nothing.
            name: "T6 payment_succeeded",
            who: &[Rel::Platform],
            create: None,
            from: vec![
                (Draft, no(R::UnknownPayment)),
                (Submitted, no(R::UnknownPayment)),
                (AwaitingPayment, to(PaymentSuccessful, PAID)),
                // Late success after failure is honoured.
                (PaymentFailed, to(PaymentSuccessful, PAID)),
                (PaymentSuccessful, same(NOTHING)),
                (DoctorsAssigned, same(NOTHING)),
                (Completed, same(NOTHING)),
                (Cancelled, same(NOTHING)),
                (Rejected, same(NOTHING)),
            ],
            variant: std,
            command: || fixtures::paid(fixtures::PAY1),
        },
        Column {
            // A failure moves only an awaiting case; afterwards PAY1 is settled and a repeated or
            // stale result changes nothing.
            name: "T7 payment_failed",
            who: &[Rel::Platform],
            create: None,
            from: vec![
                (Draft, no(R::UnknownPayment)),
                (Submitted, no(R::UnknownPayment)),
                (
                    AwaitingPayment,
                    to(
                        PaymentFailed,
                        &["payment_settled", "status_changed", "timeline"],
                    ),
                ),
                (PaymentFailed, same(NOTHING)),
                (PaymentSuccessful, same(NOTHING)),
                (DoctorsAssigned, same(NOTHING)),
                (Completed, same(NOTHING)),
                (Cancelled, same(NOTHING)),
                (Rejected, same(NOTHING)),
            ],
            variant: std,
            command: || fixtures::failed(fixtures::PAY1),
        },
        Column {
            name: "T8 retry_payment",
            who: &[Rel::Owner],
            create: None,
            from: vec![(
                PaymentFailed,
                to(
                    AwaitingPayment,
                    &["payment_opened", "status_changed", "timeline"],
                ),
            )],
            variant: std,
            command: || Command::RetryPayment {
                payment_id: fixtures::PAY2,
            },
        },
        Column {
            // D3 is eligible; in `doctors_assigned` D3 is the removed specialist, who is not
            // active, so may be assigned again ("not already active on the case").
            name: "T9 assign_doctors",
            who: &[Rel::Coordinator],
            create: None,
            from: vec![
                (
                    PaymentSuccessful,
                    to(
                        DoctorsAssigned,
                        &["doctor_assigned", "status_changed", "timeline"],
                    ),
                ),
                (DoctorsAssigned, same(&["doctor_assigned", "timeline"])),
            ],
            variant: std,
            command: || fixtures::assign(&[fixtures::d3()]),
        },
        Column {
            // D2 has not submitted and D1 remains.
            name: "T10 unassign_doctor",
            who: &[Rel::Coordinator],
            create: None,
            from: vec![(DoctorsAssigned, same(&["specialist_removed", "timeline"]))],
            variant: std,
            command: || Command::UnassignDoctor {
                doctor_id: fixtures::d2(),
            },
        },
        Column {
            name: "T11 request_documents",
            who: &[Rel::Coordinator, Rel::Specialist],
            create: None,
            from: vec![(
                DoctorsAssigned,
                same(&["document_request_opened", "timeline"]),
            )],
            variant: std,
            command: || Command::RequestDocuments {
                request: fixtures::request(fixtures::REQ2, &["Biopsy slides"]),
            },
        },
        Column {
            // "draft; or any non-final status while a document request is open": `submitted` has
            // no request yet (REQ1 is opened with T4), so the open-request guard answers.
            name: "T12 upload_document",
            who: &[Rel::Owner],
            create: None,
            from: vec![
                (Draft, same(DOCUMENT_ADDED)),
                (Submitted, no(R::NoOpenRequest)),
                (AwaitingPayment, same(DOCUMENT_ADDED)),
                (PaymentFailed, same(DOCUMENT_ADDED)),
                (PaymentSuccessful, same(DOCUMENT_ADDED)),
                (DoctorsAssigned, same(DOCUMENT_ADDED)),
            ],
            variant: std,
            command: || fixtures::upload(fixtures::DOC2, 3 * fixtures::MIB),
        },
        Column {
            name: "T13 remove_document",
            who: &[Rel::Owner],
            create: None,
            from: vec![(Draft, same(&["document_removed", "timeline"]))],
            variant: std,
            command: || Command::RemoveDocument {
                document_id: fixtures::DOC1,
            },
        },
        Column {
            name: "T14 submit_opinion",
            who: &[Rel::Specialist],
            create: None,
            from: vec![(DoctorsAssigned, same(&["opinion_submitted", "timeline"]))],
            variant: std,
            command: || fixtures::opinion("I agree with the proposed treatment."),
        },
        Column {
            // Run on the fixture where D1 and D2 have submitted (Variant::OpinionsIn).
            name: "T15 submit_summary",
            who: &[Rel::Coordinator],
            create: None,
            from: vec![(
                DoctorsAssigned,
                to(
                    Completed,
                    &["summary_submitted", "status_changed", "timeline"],
                ),
            )],
            variant: Variant::OpinionsIn,
            command: || fixtures::summary("Medical therapy first; review in 3 months."),
        },
        Column {
            // Paid from `payment_successful` on: the refund is requested in the same step.
            name: "T16 cancel",
            who: &[Rel::Owner, Rel::Admin],
            create: None,
            from: vec![
                (Draft, to(Cancelled, CLOSE)),
                (Submitted, to(Cancelled, CLOSE)),
                (AwaitingPayment, to(Cancelled, CLOSE)),
                (PaymentFailed, to(Cancelled, CLOSE)),
                (PaymentSuccessful, to(Cancelled, CLOSE_AND_REFUND)),
                (DoctorsAssigned, to(Cancelled, CLOSE_AND_REFUND)),
            ],
            variant: std,
            command: || fixtures::cancel("I found another provider."),
        },
        Column {
            name: "T17 reject",
            who: &[Rel::Admin],
            create: None,
            from: vec![
                (Submitted, to(Rejected, CLOSE)),
                (AwaitingPayment, to(Rejected, CLOSE)),
                (PaymentFailed, to(Rejected, CLOSE)),
                (PaymentSuccessful, to(Rejected, CLOSE_AND_REFUND)),
            ],
            variant: std,
            command: || fixtures::reject("Not a case we can review."),
        },
        Column {
            name: "T18 send_overdue_reminder",
            who: &[Rel::Coordinator],
            create: None,
            from: vec![(
                DoctorsAssigned,
                same(&["overdue_reminder_sent", "timeline"]),
            )],
            variant: std,
            command: || Command::SendOverdueReminder,
        },
        Column {
            // T12's second half. Before T4 there is no request at all.
            name: "answer_document_request",
            who: &[Rel::Owner],
            create: None,
            from: vec![
                (Draft, no(R::RequestNotFound)),
                (Submitted, no(R::RequestNotFound)),
                (AwaitingPayment, same(REQUEST_ANSWERED)),
                (PaymentFailed, same(REQUEST_ANSWERED)),
                (PaymentSuccessful, same(REQUEST_ANSWERED)),
                (DoctorsAssigned, same(REQUEST_ANSWERED)),
            ],
            variant: std,
            command: || Command::AnswerDocumentRequest {
                request_id: fixtures::REQ1,
            },
        },
        Column {
            // SPEC §4: patient content is editable by the patient while `draft` only.
            name: "update_intake",
            who: &[Rel::Owner],
            create: None,
            from: vec![(Draft, same(&["intake_updated"]))],
            variant: std,
            command: || Command::UpdateIntake {
                patch: IntakePatch {
                    patient_gender: Some(Gender::Female),
                    questions: Some("Is surgery needed at all?".into()),
                    ..IntakePatch::default()
                },
            },
        },
        Column {
            // The platform's answer to the CreatePayment effect; any status (it is bookkeeping),
            // but only for a known attempt.
            name: "payment_link_created",
            who: &[Rel::Platform, Rel::System],
            create: None,
            from: vec![
                (Draft, no(R::UnknownPayment)),
                (Submitted, no(R::UnknownPayment)),
                (AwaitingPayment, same(LINK_SET)),
                (PaymentFailed, same(LINK_SET)),
                (PaymentSuccessful, same(LINK_SET)),
                (DoctorsAssigned, same(LINK_SET)),
                (Completed, same(LINK_SET)),
                (Cancelled, same(LINK_SET)),
                (Rejected, same(LINK_SET)),
            ],
            variant: std,
            command: || Command::PaymentLinkCreated {
                payment_id: fixtures::PAY1,
                link: "https://pay.example/p/fa01-renewed".into(),
            },
        },
        Column {
            // A refund of PAY1 is requested only in the cancelled and rejected fixtures (both
            // were paid).
            name: "refund_settled",
            who: &[Rel::Platform, Rel::System],
            create: None,
            from: vec![
                (Draft, no(R::UnknownPayment)),
                (Submitted, no(R::UnknownPayment)),
                (AwaitingPayment, no(R::RefundNotRequested)),
                (PaymentFailed, no(R::RefundNotRequested)),
                (PaymentSuccessful, no(R::RefundNotRequested)),
                (DoctorsAssigned, no(R::RefundNotRequested)),
                (Completed, no(R::RefundNotRequested)),
                (Cancelled, same(&["refund_settled", "timeline"])),
                (Rejected, same(&["refund_settled", "timeline"])),
            ],
            variant: std,
            command: || Command::RefundSettled {
                payment_id: fixtures::PAY1,
                refunded: true,
            },
        },
        Column {
            // T15's second half: the PDF is stored.
            name: "report_ready",
            who: &[Rel::System],
            create: None,
            from: vec![(Completed, same(&["report_stored", "timeline"]))],
            variant: std,
            command: || Command::ReportReady {
                report_id: fixtures::REPORT,
                sha256: fixtures::SHA_B.into(),
            },
        },
        Column {
            name: "send_draft_reminder",
            who: &[Rel::System],
            create: None,
            from: vec![(Draft, same(&["draft_reminder_sent"]))],
            variant: std,
            command: || Command::SendDraftReminder,
        },
        Column {
            // SPEC §7: a case in payment_successful or doctors_assigned with now > due_at.
            name: "send_overdue_alert",
            who: &[Rel::System],
            create: None,
            from: vec![
                (PaymentSuccessful, same(&["overdue_alert_sent"])),
                (DoctorsAssigned, same(&["overdue_alert_sent"])),
            ],
            variant: std,
            command: || Command::SendOverdueAlert,
        },
    ]
}

/// The outcome the SPEC gives for `column` from `kind` on a case in `status`.
fn expected(column: &Column, status: Option<Status>, kind: Kind) -> Exp {
    if let Some(create) = column.create {
        return match (status, kind.is_patient()) {
            (_, false) => no(R::Forbidden),
            (None, true) => create,
            (Some(_), true) => no(R::CaseAlreadyExists),
        };
    }
    let Some(status) = status else {
        return no(R::CaseNotFound);
    };
    let rel = rel(kind, status);
    if kind.is_person() && !sees(rel, status) {
        return no(R::CaseNotFound);
    }
    if !column.who.contains(&rel) {
        return no(R::Forbidden);
    }
    column
        .from
        .iter()
        .find(|(s, _)| *s == status)
        .map_or(no(R::InvalidStatus), |(_, e)| *e)
}

/// Compares one run with its expectation; `None` when they agree.
fn check(fx: &Fx, kind: Kind, command: &Command, exp: Exp) -> Option<String> {
    let before = fx.case.clone();
    let got = fx.try_run(&kind.actor(), command);
    match (exp, got) {
        (Exp::Ok(to, events), Ok((next, decision))) => {
            let names = fixtures::names(&decision);
            if names != events {
                return Some(format!("events {names:?}, expected {events:?}"));
            }
            let Some(next) = next else {
                return Some("allowed but left no case".into());
            };
            let prior = before.as_ref().map(|c| c.status);
            let want = to.or(prior);
            if Some(next.status) != want {
                return Some(format!("status {:?}, expected {want:?}", next.status));
            }
            // Creating a draft makes the case without a status change; every other move is one
            // `StatusChanged`.
            let change = to.filter(|t| *t != Status::Draft);
            if decision.new_status() != change {
                return Some(format!(
                    "new_status {:?}, expected {change:?}",
                    decision.new_status()
                ));
            }
            None
        }
        (Exp::Ok(..), Err(refusal)) => Some(format!("refused {refusal}, expected allowed")),
        (Exp::Refused(code), Ok((_, decision))) => Some(format!(
            "allowed with {:?}, expected {code}",
            fixtures::names(&decision)
        )),
        (Exp::Refused(code), Err(refusal)) => {
            if refusal.code != code {
                return Some(format!("refused {}, expected {code}", refusal.code));
            }
            if code == R::InvalidStatus {
                let status = before.as_ref().map(|c| c.status)?;
                if !refusal.message_en.contains(status_name_en(status)) {
                    return Some(format!(
                        "message {:?} does not name the status",
                        refusal.message_en
                    ));
                }
            }
            None
        }
    }
}

fn statuses() -> impl Iterator<Item = Option<Status>> {
    std::iter::once(None).chain(Status::ALL.into_iter().map(Some))
}

#[test]
fn every_status_command_and_actor_gets_the_spec_outcome() {
    let columns = columns();
    let mut fixtures: HashMap<(Option<Status>, Variant), Fx> = HashMap::new();
    let mut failures = Vec::new();
    let mut asserted = 0usize;
    for column in &columns {
        let command = (column.command)();
        for status in statuses() {
            let fx = fixtures.entry((status, column.variant)).or_insert_with(|| {
                let mut fx = fixtures::at(status, column.variant);
                fx.now = now();
                fx
            });
            for kind in Kind::ALL {
                asserted += 1;
                let exp = expected(column, status, kind);
                if let Some(problem) = check(fx, kind, &command, exp) {
                    let st = status.map_or("no case", |s| s.as_str());
                    failures.push(format!("{} | {st} | {kind:?}: {problem}", column.name));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {asserted} combinations differ from the SPEC table:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // 10 states × 25 commands × 9 kinds of actor.
    assert_eq!(asserted, 10 * 25 * 9);
}

/// The table itself: every command of T1–T18 appears, and each allowed row's (from → to) is a
/// transition the SPEC lists.
#[test]
fn the_table_lists_every_command_once() {
    let names: Vec<&str> = columns().iter().map(|c| c.name).collect();
    for t in 1..=18 {
        let prefix = format!("T{t} ");
        assert!(
            names.iter().any(|n| n.starts_with(&prefix)),
            "T{t} is missing from the table"
        );
    }
    let mut sorted = names.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), names.len(), "a command is listed twice");
    for column in columns() {
        for (from, exp) in &column.from {
            if let Exp::Ok(Some(to), _) = exp {
                assert!(
                    crate::properties::spec_allows(*from, *to),
                    "{}: {from:?} → {to:?} is not in the SPEC",
                    column.name
                );
            }
        }
    }
}
