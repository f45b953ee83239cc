//! Property tests of the rules' invariants over random walks: start from a fixture in a random
//! status (or no case), then apply random commands from random actors with `execute`, moving the
//! clock forward a random amount each step. Payloads come from small pools of ids and
//! valid-or-broken values, and most steps (not all) come from the actor the command is meant for,
//! so walks get deep into the table instead of being refused at the door.
//!
//! Invariants: every status change is a (from → to) pair of the SPEC table; a final status never
//! changes; the timeline only grows; replaying every accepted event from nothing rebuilds the
//! case; a refused command leaves the case untouched.

use crate::fixtures::{self, Variant};
use chrono::TimeDelta;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use sop_core::Timestamp;
use sop_core::actor::Actor;
use sop_core::case::{Case, Gender, Intake, IntakePatch, Status};
use sop_core::command::{Command, DoctorToAssign, NewDocument, OpinionContent, RequestSpec};
use sop_core::event::{Decision, Event, EventKind};
use sop_core::ids::{DocumentId, PaymentId, RequestId, UserId};
use sop_core::refusal::Refusal;
use sop_core::rules::{apply, decide, execute, replay};
use uuid::Uuid;

/// The (from → to) pairs of SPEC §3.2: T2/T3, T4, T6 (also from `payment_failed`), T7, T8, T9,
/// T15, T16 (any non-final status) and T17.
pub fn spec_allows(from: Status, to: Status) -> bool {
    use Status::*;
    match (from, to) {
        (Draft, Submitted)
        | (Submitted, AwaitingPayment)
        | (AwaitingPayment, PaymentSuccessful)
        | (PaymentFailed, PaymentSuccessful)
        | (AwaitingPayment, PaymentFailed)
        | (PaymentFailed, AwaitingPayment)
        | (PaymentSuccessful, DoctorsAssigned)
        | (DoctorsAssigned, Completed) => true,
        (from, Cancelled) => !from.is_final(),
        (Submitted | AwaitingPayment | PaymentFailed | PaymentSuccessful, Rejected) => true,
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Generators

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    P1,
    P2,
    C1,
    C2,
    D1,
    D2,
    D3,
    D9,
    A1,
    Platform,
    System,
}

const EVERYONE: [Who; 11] = [
    Who::P1,
    Who::P2,
    Who::C1,
    Who::C2,
    Who::D1,
    Who::D2,
    Who::D3,
    Who::D9,
    Who::A1,
    Who::Platform,
    Who::System,
];

fn actor(who: Who) -> Actor {
    use fixtures::*;
    match who {
        Who::P1 => owner(),
        Who::P2 => patient(p2()),
        Who::C1 => doctor(c1()),
        Who::C2 => doctor(c2()),
        Who::D1 => doctor(d1()),
        Who::D2 => doctor(d2()),
        Who::D3 => doctor(d3()),
        Who::D9 => doctor(d9()),
        Who::A1 => admin(),
        Who::Platform => platform(),
        Who::System => system(),
    }
}

/// Who a command is meant for.
fn natural(command: &Command) -> &'static [Who] {
    match command {
        Command::CreateCase { .. }
        | Command::UpdateIntake { .. }
        | Command::SubmitCase
        | Command::RetryPayment { .. }
        | Command::UploadDocument { .. }
        | Command::AnswerDocumentRequest { .. }
        | Command::RemoveDocument { .. } => &[Who::P1],
        Command::Cancel { .. } => &[Who::P1, Who::A1],
        Command::AssignCoordinator { .. }
        | Command::ReassignCoordinator { .. }
        | Command::Reject { .. } => &[Who::A1],
        Command::PaymentSucceeded { .. } | Command::PaymentFailed { .. } => &[Who::Platform],
        Command::AssignDoctors { .. }
        | Command::UnassignDoctor { .. }
        | Command::SubmitSummary { .. }
        | Command::SendOverdueReminder => &[Who::C1, Who::C2],
        Command::RequestDocuments { .. } => &[Who::C1, Who::D1, Who::D2, Who::D3],
        Command::SubmitOpinion { .. } => &[Who::D1, Who::D2, Who::D3],
        Command::PaymentLinkCreated { .. } | Command::RefundSettled { .. } => {
            &[Who::Platform, Who::System]
        }
        _ => &[Who::System],
    }
}

/// PAY1 (the fixtures' attempt) most often, then PAY2–PAY4.
fn payment_id() -> impl Strategy<Value = PaymentId> {
    prop_oneof![
        2 => Just(fixtures::PAY1),
        3 => (0u128..4).prop_map(|i| PaymentId(Uuid::from_u128(0xfa01 + i))),
    ]
}

fn request_id() -> impl Strategy<Value = RequestId> {
    (0u128..3).prop_map(|i| RequestId(Uuid::from_u128(0xe001 + i)))
}

fn document_id() -> impl Strategy<Value = DocumentId> {
    (0u128..3).prop_map(|i| DocumentId(Uuid::from_u128(0xd0c1 + i)))
}

fn doctor_id() -> impl Strategy<Value = UserId> {
    use fixtures::*;
    select(vec![c1(), c2(), d1(), d2(), d3(), d9()])
}

/// Mostly one of the category's coordinators.
fn coordinator_id() -> impl Strategy<Value = UserId> {
    use fixtures::*;
    prop_oneof![3 => select(vec![c1(), c2()]), 1 => doctor_id()]
}

/// Mostly one of the category's specialists.
fn specialist_id() -> impl Strategy<Value = UserId> {
    use fixtures::*;
    prop_oneof![4 => select(vec![d1(), d2(), d3()]), 1 => doctor_id()]
}

/// Mostly no request attached.
fn maybe_request() -> impl Strategy<Value = Option<RequestSpec>> {
    prop_oneof![3 => Just(None), 1 => request_spec().prop_map(Some)]
}

/// Mostly a valid text, sometimes empty or blank.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just("Some words".to_owned()),
        1 => Just(String::new()),
        1 => Just("   ".to_owned()),
    ]
}

fn request_spec() -> impl Strategy<Value = RequestSpec> {
    let items = prop_oneof![
        4 => Just(vec!["ECG".to_owned()]),
        1 => Just(vec![]),
        1 => Just(vec![" ".to_owned()]),
    ];
    (request_id(), items).prop_map(|(request_id, items)| RequestSpec { request_id, items })
}

fn intake() -> impl Strategy<Value = Intake> {
    prop_oneof![
        3 => Just(fixtures::full_intake()),
        1 => Just(Intake::default()),
    ]
}

fn patch() -> impl Strategy<Value = IntakePatch> {
    (
        prop::option::of(select(vec![-1, 40, 131])),
        prop::option::of(Just(Gender::Male)),
        prop::option::of(text()),
    )
        .prop_map(
            |(patient_age, patient_gender, medical_history)| IntakePatch {
                patient_age,
                patient_gender,
                medical_history,
                questions: None,
            },
        )
}

fn new_document() -> impl Strategy<Value = NewDocument> {
    (
        document_id(),
        prop_oneof![4 => Just("application/pdf"), 1 => Just("text/plain")],
        prop_oneof![4 => Just(fixtures::MIB), 1 => Just(0), 1 => Just(60 * fixtures::MIB)],
        prop::option::of(request_id()),
    )
        .prop_map(
            |(document_id, content_type, size, request_id)| NewDocument {
                document_id,
                file_name: "file.pdf".into(),
                content_type: content_type.into(),
                size,
                sha256: fixtures::SHA_A.into(),
                request_id,
            },
        )
}

fn command() -> impl Strategy<Value = Command> {
    use fixtures::*;
    let create = (
        select(vec![RT, RT, RT_INACTIVE]),
        select(vec![DC, DC, DC_INACTIVE]),
        intake(),
        any::<bool>(),
    )
        .prop_map(|(rt_id, dc_id, intake, submit)| create_with(rt_id, dc_id, intake, submit));
    let assign_coordinator = (coordinator_id(), payment_id(), maybe_request()).prop_map(
        |(doctor_id, payment_id, requested_documents)| Command::AssignCoordinator {
            doctor_id,
            payment_id,
            requested_documents,
        },
    );
    let succeeded = (
        payment_id(),
        prop_oneof![5 => Just(PRICE), 1 => Just(1)],
        prop_oneof![5 => Just(CURRENCY), 1 => Just("USD")],
    )
        .prop_map(|(payment_id, amount, currency)| Command::PaymentSucceeded {
            payment_id,
            amount,
            currency: currency.into(),
        });
    let assign_doctors = prop::collection::vec(
        (specialist_id(), maybe_request()).prop_map(|(doctor_id, requested_documents)| {
            DoctorToAssign {
                doctor_id,
                requested_documents,
            }
        }),
        0..3,
    )
    .prop_map(|doctors| Command::AssignDoctors { doctors });
    let opinion = text().prop_map(|summary| Command::SubmitOpinion {
        opinion: OpinionContent {
            summary,
            ..OpinionContent::default()
        },
    });
    // Weights: progress commands more often; closing (cancel, reject) rarely, or most walks
    // would end in a final status after a few steps.
    prop_oneof![
        4 => create,
        4 => patch().prop_map(|patch| Command::UpdateIntake { patch }),
        8 => Just(Command::SubmitCase),
        8 => assign_coordinator,
        4 => coordinator_id().prop_map(|doctor_id| Command::ReassignCoordinator { doctor_id }),
        8 => succeeded,
        4 => payment_id().prop_map(|payment_id| Command::PaymentFailed { payment_id }),
        4 => payment_id().prop_map(|payment_id| Command::RetryPayment { payment_id }),
        12 => assign_doctors,
        4 => specialist_id().prop_map(|doctor_id| Command::UnassignDoctor { doctor_id }),
        4 => request_spec().prop_map(|request| Command::RequestDocuments { request }),
        4 => new_document().prop_map(|document| Command::UploadDocument { document }),
        4 => request_id().prop_map(|request_id| Command::AnswerDocumentRequest { request_id }),
        4 => document_id().prop_map(|document_id| Command::RemoveDocument { document_id }),
        16 => opinion,
        12 => text().prop_map(|summary| Command::SubmitSummary { summary }),
        1 => text().prop_map(|reason| Command::Cancel { reason }),
        1 => text().prop_map(|reason| Command::Reject { reason }),
        4 => Just(Command::SendOverdueReminder),
        4 => (payment_id(), select(vec!["https://pay.example/x", ""])).prop_map(
            |(payment_id, link)| Command::PaymentLinkCreated {
                payment_id,
                link: link.into(),
            }
        ),
        4 => (payment_id(), any::<bool>()).prop_map(|(payment_id, refunded)| {
            Command::RefundSettled {
                payment_id,
                refunded,
            }
        }),
        4 => select(vec![SHA_A, SHA_B]).prop_map(|sha| Command::ReportReady {
            report_id: REPORT,
            sha256: sha.into(),
        }),
        4 => Just(Command::SendDraftReminder),
        4 => Just(Command::SendOverdueAlert),
    ]
}

/// One command from one actor: its natural actor (which one: `pick`) or `other`.
#[derive(Clone, Debug)]
struct Try {
    command: Command,
    natural: bool,
    pick: Index,
    other: Who,
}

impl Try {
    fn actor(&self) -> Actor {
        if self.natural {
            let pool = natural(&self.command);
            actor(pool[self.pick.index(pool.len())])
        } else {
            actor(self.other)
        }
    }
}

/// One step of a walk: the clock moves on, then the tries run in order until one is accepted
/// (each refused one is checked too). Several tries per step keep walks moving through the table
/// instead of stalling on commands the status does not take.
#[derive(Clone, Debug)]
struct Step {
    minutes: i64,
    tries: Vec<Try>,
}

fn attempt() -> impl Strategy<Value = Try> {
    (
        command(),
        prop::bool::weighted(0.85),
        any::<Index>(),
        select(EVERYONE.to_vec()),
    )
        .prop_map(|(command, natural, pick, other)| Try {
            command,
            natural,
            pick,
            other,
        })
}

fn step() -> impl Strategy<Value = Step> {
    (
        prop_oneof![3 => 0i64..120, 2 => 0i64..3_000, 1 => Just(8 * 24 * 60)],
        prop::collection::vec(attempt(), 1..10),
    )
        .prop_map(|(minutes, tries)| Step { minutes, tries })
}

/// Mostly a case still in progress: a walk from a final status is refused almost throughout.
fn start() -> impl Strategy<Value = Option<Status>> {
    let in_progress: Vec<Option<Status>> = Status::ALL
        .into_iter()
        .filter(|s| !s.is_final())
        .map(Some)
        .collect();
    let closed: Vec<Option<Status>> = Status::ALL
        .into_iter()
        .filter(|s| s.is_final())
        .map(Some)
        .collect();
    prop_oneof![
        1 => Just(None),
        6 => select(in_progress),
        1 => select(closed),
    ]
}

fn walk_input() -> impl Strategy<Value = (Option<Status>, Vec<Step>)> {
    (start(), prop::collection::vec(step(), 1..20))
}

// ---------------------------------------------------------------------------------------------
// The walk

/// One try as it happened: the case before and after, when, and the answer.
struct Taken {
    before: Option<Case>,
    after: Option<Case>,
    now: Timestamp,
    outcome: Result<Decision, Refusal>,
}

struct Walk {
    /// Every accepted event from the very first (the fixture's included).
    history: Vec<Event>,
    /// Every try, refused or accepted, in order.
    steps: Vec<Taken>,
    last: Option<Case>,
}

fn run_walk(start: Option<Status>, steps: &[Step]) -> Walk {
    let fx = fixtures::at(start, Variant::Standard);
    let mut history = fx.events.clone();
    let mut case = fx.case.clone();
    let mut now = fx.now;
    let mut taken = Vec::new();
    for step in steps {
        now += TimeDelta::minutes(step.minutes);
        let ctx = sop_core::rules::Context {
            catalog: &fx.catalog,
            limits: &fx.limits,
            now,
        };
        for attempt in &step.tries {
            let (command, actor) = (&attempt.command, attempt.actor());
            let before = case.clone();
            let result = execute(case.as_ref(), command, &actor, &ctx);
            // `execute` must agree with `decide` on the same input.
            let decided = decide(before.as_ref(), command, &actor, &ctx);
            let outcome = match result {
                Ok((next, decision)) => {
                    assert_eq!(decided.as_ref(), Ok(&decision), "decide and execute differ");
                    history.extend(decision.events.iter().cloned());
                    case = next;
                    Ok(decision)
                }
                Err(refusal) => {
                    assert_eq!(decided.as_ref(), Err(&refusal), "decide and execute differ");
                    Err(refusal)
                }
            };
            let accepted = outcome.is_ok();
            taken.push(Taken {
                before,
                after: case.clone(),
                now,
                outcome,
            });
            if accepted {
                break;
            }
        }
    }
    Walk {
        history,
        steps: taken,
        last: case,
    }
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 64,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn status_changes_stay_within_the_spec_table((start, steps) in walk_input()) {
        let walk = run_walk(start, &steps);
        for t in &walk.steps {
            let Ok(decision) = &t.outcome else { continue };
            // Fold the events one by one so each `from` is checked against the status it leaves.
            let mut state = t.before.clone();
            for event in &decision.events {
                if let EventKind::StatusChanged { from, to } = event.kind {
                    let current = state.as_ref().map(|c| c.status);
                    prop_assert_eq!(current, Some(from), "from is not the current status");
                    prop_assert!(spec_allows(from, to), "{:?} → {:?} is not in the SPEC", from, to);
                }
                prop_assert_eq!(event.at, t.now);
                state = apply(state, event);
            }
            prop_assert_eq!(&state, &t.after);
        }
    }

    #[test]
    fn a_final_status_never_changes((start, steps) in walk_input()) {
        let walk = run_walk(start, &steps);
        for t in &walk.steps {
            if let Some(before) = t.before.as_ref().filter(|c| c.status.is_final()) {
                let after = t.after.as_ref().map(|c| c.status);
                prop_assert_eq!(after, Some(before.status));
            }
        }
    }

    #[test]
    fn the_timeline_only_grows((start, steps) in walk_input()) {
        let walk = run_walk(start, &steps);
        for t in &walk.steps {
            let before = t.before.as_ref().map_or(&[][..], |c| &c.timeline[..]);
            let after = t.after.as_ref().map_or(&[][..], |c| &c.timeline[..]);
            prop_assert!(after.starts_with(before), "timeline rewritten");
            prop_assert!(after[before.len()..].iter().all(|e| e.at == t.now));
        }
    }

    #[test]
    fn replaying_accepted_events_rebuilds_the_case((start, steps) in walk_input()) {
        let walk = run_walk(start, &steps);
        prop_assert_eq!(replay(&walk.history), walk.last);
    }

    #[test]
    fn a_refused_command_leaves_the_case_untouched((start, steps) in walk_input()) {
        let walk = run_walk(start, &steps);
        for t in &walk.steps {
            if t.outcome.is_err() {
                prop_assert_eq!(&t.before, &t.after);
            }
        }
        // And the same input gives the same answers again.
        let again = run_walk(start, &steps);
        prop_assert_eq!(walk.steps.len(), again.steps.len());
        for (first, second) in walk.steps.iter().zip(&again.steps) {
            prop_assert_eq!(&first.outcome, &second.outcome);
        }
    }
}

/// The generator is only useful if walks get somewhere: over a fixed set of inputs, every
/// status is entered and walks accept a fair number of commands (no-ops included).
#[test]
fn random_walks_reach_every_status() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut reached = std::collections::HashSet::new();
    let (walks, mut accepted) = (120, 0usize);
    for _ in 0..walks {
        let (start, steps) = walk_input().new_tree(&mut runner).unwrap().current();
        for t in run_walk(start, &steps).steps {
            if let Ok(decision) = &t.outcome {
                accepted += 1;
                reached.extend(decision.new_status());
            }
        }
    }
    // Every status but `draft`, which is entered by creation without a status change.
    assert_eq!(reached.len(), Status::ALL.len() - 1, "{reached:?}");
    assert!(accepted >= 2 * walks, "only {accepted} accepted commands");
}
