//! The recipients of SPEC §7 for each event, exactly (no one missing, no one extra), and that
//! every notification is about the case and nothing else.

use crate::fixtures::*;
use chrono::TimeDelta;
use sop_core::command::Command;
use sop_core::event::{Decision, NotificationKind as N, Recipient};
use sop_core::ids::UserId;

fn user(id: UserId) -> Recipient {
    Recipient::User(id)
}

/// Asserts the notifications of `decision` are exactly `expected`, in any order.
fn assert_notified(decision: &Decision, expected: &[(Recipient, N)]) {
    let key = |(r, k): &(Recipient, N)| format!("{r:?} {k:?}");
    let mut got: Vec<(Recipient, N)> = decision
        .notifications
        .iter()
        .map(|n| {
            assert_eq!(n.case_id, CASE);
            (n.recipient.clone(), n.kind)
        })
        .collect();
    let mut want = expected.to_vec();
    got.sort_by_key(key);
    want.sort_by_key(key);
    assert_eq!(got, want);
}

#[test]
fn t3_submit_notifies_admins() {
    let mut fx = draft();
    let d = fx.run(&owner(), Command::SubmitCase);
    assert_notified(&d, &[(Recipient::Admins, N::CaseSubmitted)]);
}

#[test]
fn t2_create_and_submit_notifies_admins() {
    let mut fx = Fx::new();
    let d = fx.run(&owner(), create(true));
    assert_notified(&d, &[(Recipient::Admins, N::CaseSubmitted)]);
}

#[test]
fn t1_create_draft_notifies_no_one() {
    let mut fx = Fx::new();
    assert_notified(&fx.run(&owner(), create(false)), &[]);
}

#[test]
fn t4_assign_coordinator_notifies_coordinator_and_patient() {
    let mut fx = submitted();
    let d = fx.run(&admin(), assign_coordinator(c2(), PAY1));
    assert_notified(
        &d,
        &[
            (user(c2()), N::CoordinatorAssigned),
            (user(p1()), N::CoordinatorAssigned),
        ],
    );
}

#[test]
fn t5_reassign_coordinator_notifies_old_and_new_coordinator() {
    let mut fx = payment_failed();
    let d = fx.run(&admin(), Command::ReassignCoordinator { doctor_id: c2() });
    assert_notified(
        &d,
        &[
            (user(c1()), N::CoordinatorChanged),
            (user(c2()), N::CoordinatorChanged),
        ],
    );
}

#[test]
fn t6_payment_success_notifies_coordinator_and_patient() {
    let mut fx = awaiting_payment();
    let d = fx.run(&platform(), paid(PAY1));
    assert_notified(
        &d,
        &[
            (user(c1()), N::PaymentSuccessful),
            (user(p1()), N::PaymentSuccessful),
        ],
    );
}

#[test]
fn t7_payment_failure_notifies_the_patient() {
    let mut fx = awaiting_payment();
    let d = fx.run(&platform(), failed(PAY1));
    assert_notified(&d, &[(user(p1()), N::PaymentFailed)]);
}

#[test]
fn t9_first_assignment_notifies_each_doctor_and_the_patient() {
    let mut fx = payment_successful();
    let d = fx.run(&doctor(c1()), assign(&[d1(), d2()]));
    assert_notified(
        &d,
        &[
            (user(d1()), N::DoctorsAssigned),
            (user(d2()), N::DoctorsAssigned),
            (user(p1()), N::DoctorsAssigned),
        ],
    );
}

#[test]
fn t9_doctor_added_later_notifies_that_doctor_and_the_patient() {
    let mut fx = doctors_assigned();
    let d = fx.run(&doctor(c1()), assign(&[d3()]));
    assert_notified(
        &d,
        &[
            (user(d3()), N::DoctorAdded),
            (user(p1()), N::DoctorsAssigned),
        ],
    );
}

#[test]
fn t10_unassign_notifies_that_doctor() {
    let mut fx = doctors_assigned();
    let d = fx.run(&doctor(c1()), Command::UnassignDoctor { doctor_id: d2() });
    assert_notified(&d, &[(user(d2()), N::DoctorRemoved)]);
}

#[test]
fn t11_request_documents_notifies_the_patient() {
    let mut fx = doctors_assigned();
    let d = fx.run(
        &doctor(d1()),
        Command::RequestDocuments {
            request: request(REQ2, &["ECG"]),
        },
    );
    assert_notified(&d, &[(user(p1()), N::DocumentsRequested)]);
}

#[test]
fn t12_answered_request_notifies_the_requester() {
    // REQ1 was asked by the coordinator (T4), REQ2 by specialist D1.
    let mut fx = doctors_assigned();
    fx.run(
        &doctor(d1()),
        Command::RequestDocuments {
            request: request(REQ2, &["ECG"]),
        },
    );
    let d = fx.run(&owner(), upload(DOC2, MIB));
    assert_notified(&d, &[]);
    let d = fx.run(
        &owner(),
        Command::AnswerDocumentRequest { request_id: REQ1 },
    );
    assert_eq!(names(&d), ["document_request_answered", "timeline"]);
    assert_notified(&d, &[(user(c1()), N::DocumentsProvided)]);
    let d = fx.run(
        &owner(),
        Command::AnswerDocumentRequest { request_id: REQ2 },
    );
    assert_notified(&d, &[(user(d1()), N::DocumentsProvided)]);
}

#[test]
fn t14_submit_opinion_notifies_the_coordinator() {
    let mut fx = doctors_assigned();
    let d = fx.run(&doctor(d2()), opinion("Agree."));
    assert_notified(&d, &[(user(c1()), N::OpinionSubmitted)]);
}

#[test]
fn t15_summary_notifies_no_one_until_the_report_is_ready() {
    let mut fx = opinions_in();
    let d = fx.run(&doctor(c1()), summary("Final."));
    assert_notified(&d, &[]);
    let d = fx.run(
        &system(),
        Command::ReportReady {
            report_id: REPORT,
            sha256: SHA_B.into(),
        },
    );
    assert_notified(
        &d,
        &[(user(p1()), N::ReportReady), (user(c1()), N::ReportReady)],
    );
}

#[test]
fn t16_cancel_by_patient_notifies_coordinator_and_active_doctors() {
    // D3 was removed: not concerned any more.
    let mut fx = doctors_assigned();
    let d = fx.run(&owner(), cancel("No longer needed"));
    assert_notified(
        &d,
        &[
            (user(c1()), N::CaseCancelled),
            (user(d1()), N::CaseCancelled),
            (user(d2()), N::CaseCancelled),
        ],
    );
}

#[test]
fn t16_cancel_by_admin_also_notifies_the_patient() {
    let mut fx = doctors_assigned();
    let d = fx.run(&admin(), cancel("Fraud suspected"));
    assert_notified(
        &d,
        &[
            (user(p1()), N::CaseCancelled),
            (user(c1()), N::CaseCancelled),
            (user(d1()), N::CaseCancelled),
            (user(d2()), N::CaseCancelled),
        ],
    );
}

#[test]
fn t16_cancel_of_a_draft_by_its_patient_notifies_no_one() {
    let mut fx = draft();
    assert_notified(&fx.run(&owner(), cancel("Not needed")), &[]);
}

#[test]
fn t17_reject_notifies_patient_and_coordinator() {
    let mut fx = payment_successful();
    let d = fx.run(&admin(), reject("Outside scope"));
    assert_notified(
        &d,
        &[(user(p1()), N::CaseRejected), (user(c1()), N::CaseRejected)],
    );
    let mut fx = submitted();
    let d = fx.run(&admin(), reject("Outside scope"));
    assert_notified(&d, &[(user(p1()), N::CaseRejected)]);
}

#[test]
fn t18_overdue_reminder_notifies_specialists_who_have_not_submitted() {
    let mut fx = doctors_assigned();
    fx.run(&doctor(d1()), opinion("Done."));
    let d = fx.run(&doctor(c1()), Command::SendOverdueReminder);
    assert_notified(&d, &[(user(d2()), N::OverdueReport)]);
}

#[test]
fn scheduled_overdue_alert_notifies_coordinator_and_pending_specialists() {
    let mut fx = doctors_assigned();
    fx.run(&doctor(d2()), opinion("Done."));
    fx.advance(TimeDelta::days(8));
    let d = fx.run(&system(), Command::SendOverdueAlert);
    assert_notified(
        &d,
        &[
            (user(c1()), N::OverdueReport),
            (user(d1()), N::OverdueReport),
        ],
    );
}

#[test]
fn scheduled_draft_reminder_notifies_the_patient() {
    let mut fx = draft();
    fx.advance(TimeDelta::days(1));
    let d = fx.run(&system(), Command::SendDraftReminder);
    assert_notified(&d, &[(user(p1()), N::DraftReminder)]);
}

#[test]
fn notification_texts_carry_only_the_case_reference() {
    let fx = doctors_assigned();
    let reference = fx.case().reference();
    for kind in [
        N::CaseSubmitted,
        N::DoctorsAssigned,
        N::ReportReady,
        N::OverdueReport,
    ] {
        let (title, body) = kind.text(&reference);
        assert!(body.en.contains(&reference) && body.ar.contains(&reference));
        for text in [&title.en, &title.ar, &body.en, &body.ar] {
            assert!(
                !text.contains("Cardiology") && !text.contains("PAT1"),
                "{text}"
            );
        }
    }
}
