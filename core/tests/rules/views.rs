//! Who sees what (SPEC §8), who writes which content document when (DESIGN §2), the computed
//! sub-states (SPEC §3.3) and the patient's status card (SPEC §3.4).

use crate::fixtures::*;
use sop_core::access::{ContentKind, Resource, can_view, may_write, sees_case};
use sop_core::actor::Actor;
use sop_core::card::{CardAction, status_card};
use sop_core::case::Status;
use sop_core::catalog::DoctorProfile;
use sop_core::lang::Lang;
use sop_core::refusal::RefusalCode;
use sop_core::substate::{SubState, sub_states};

fn coordinator_profile() -> DoctorProfile {
    DoctorProfile {
        doctor_id: c1(),
        name_en: "Dr. Coordinator".into(),
        name_ar: "د. المنسق".into(),
        phone: "+966500000000".into(),
        email: "c1@example.org".into(),
        specialties: vec![DC],
    }
}

#[test]
fn only_owner_staff_on_case_and_admin_see_a_case() {
    let fx = doctors_assigned();
    let case = fx.case();
    for (actor, sees) in [
        (owner(), true),
        (patient(p2()), false),
        (doctor(c1()), true),
        (doctor(d1()), true),
        (doctor(d3()), false), // removed
        (doctor(d9()), false), // never on it
        (admin(), true),
    ] {
        assert_eq!(sees_case(case, &actor), sees, "{actor:?}");
        assert_eq!(
            can_view(case, &actor, &Resource::CaseRecord),
            sees,
            "{actor:?}"
        );
        assert_eq!(
            can_view(case, &actor, &Resource::PatientContent),
            sees,
            "{actor:?}"
        );
    }
}

#[test]
fn doctors_lose_access_when_the_case_is_cancelled_but_keep_it_when_completed() {
    let cancelled = cancelled();
    assert!(!sees_case(cancelled.case(), &doctor(c1())));
    assert!(!sees_case(cancelled.case(), &doctor(d1())));
    assert!(sees_case(cancelled.case(), &owner()));
    let completed = completed();
    assert!(sees_case(completed.case(), &doctor(c1())));
    assert!(sees_case(completed.case(), &doctor(d1())));
}

#[test]
fn payment_details_for_owner_and_admin_status_only_for_coordinator() {
    let fx = doctors_assigned();
    let case = fx.case();
    for (actor, details, status) in [
        (owner(), true, true),
        (admin(), true, true),
        (doctor(c1()), false, true),
        (doctor(d1()), false, false),
    ] {
        assert_eq!(
            can_view(case, &actor, &Resource::PaymentDetails),
            details,
            "{actor:?}"
        );
        assert_eq!(
            can_view(case, &actor, &Resource::PaymentStatus),
            status,
            "{actor:?}"
        );
    }
}

#[test]
fn notes_are_private_to_their_doctor() {
    let fx = doctors_assigned();
    let case = fx.case();
    let d1_notes = Resource::Notes { doctor: &d1() };
    assert!(can_view(case, &doctor(d1()), &d1_notes));
    for actor in [owner(), doctor(d2()), doctor(c1()), admin()] {
        assert!(!can_view(case, &actor, &d1_notes), "{actor:?}");
    }
}

#[test]
fn specialists_see_other_opinions_only_after_submitting_their_own() {
    let mut fx = doctors_assigned();
    let d2_opinion = Resource::Opinion { doctor: &d2() };
    assert!(!can_view(fx.case(), &doctor(d1()), &d2_opinion));
    assert!(can_view(
        fx.case(),
        &doctor(d1()),
        &Resource::Opinion { doctor: &d1() }
    ));
    assert!(can_view(fx.case(), &doctor(c1()), &d2_opinion));
    assert!(can_view(fx.case(), &admin(), &d2_opinion));
    assert!(!can_view(fx.case(), &owner(), &d2_opinion));
    fx.run(&doctor(d1()), opinion("Agree with the diagnosis."));
    assert!(can_view(fx.case(), &doctor(d1()), &d2_opinion));
}

#[test]
fn summary_and_report_for_patient_and_specialists_only_when_completed() {
    let open = opinions_in();
    let done = completed();
    for actor in [owner(), doctor(d1())] {
        assert!(
            !can_view(open.case(), &actor, &Resource::SummaryAndReport),
            "{actor:?}"
        );
        assert!(
            can_view(done.case(), &actor, &Resource::SummaryAndReport),
            "{actor:?}"
        );
    }
    for actor in [doctor(c1()), admin()] {
        assert!(
            can_view(open.case(), &actor, &Resource::SummaryAndReport),
            "{actor:?}"
        );
    }
}

#[test]
fn audit_log_for_owner_and_admin_only() {
    let fx = doctors_assigned();
    for (actor, sees) in [
        (owner(), true),
        (admin(), true),
        (doctor(c1()), false),
        (doctor(d1()), false),
    ] {
        assert_eq!(
            can_view(fx.case(), &actor, &Resource::AuditLog),
            sees,
            "{actor:?}"
        );
    }
}

fn write_code(fx: &Fx, actor: &Actor, kind: &ContentKind) -> Option<RefusalCode> {
    may_write(fx.case(), actor, kind).err().map(|r| r.code)
}

#[test]
fn intake_is_writable_by_its_patient_while_draft_only() {
    let draft = draft();
    assert_eq!(write_code(&draft, &owner(), &ContentKind::Intake), None);
    assert_eq!(
        write_code(&draft, &patient(p2()), &ContentKind::Intake),
        Some(RefusalCode::CaseNotFound)
    );
    assert_eq!(
        write_code(&draft, &admin(), &ContentKind::Intake),
        Some(RefusalCode::Forbidden)
    );
    let submitted = submitted();
    assert_eq!(
        write_code(&submitted, &owner(), &ContentKind::Intake),
        Some(RefusalCode::InvalidStatus)
    );
}

#[test]
fn notes_are_writable_by_that_doctor_while_assigned() {
    let fx = doctors_assigned();
    assert_eq!(
        write_code(&fx, &doctor(d1()), &ContentKind::Notes(d1())),
        None
    );
    assert_eq!(
        write_code(&fx, &doctor(c1()), &ContentKind::Notes(c1())),
        None
    );
    assert_eq!(
        write_code(&fx, &doctor(d2()), &ContentKind::Notes(d1())),
        Some(RefusalCode::Forbidden)
    );
    assert_eq!(
        write_code(&fx, &doctor(d3()), &ContentKind::Notes(d3())),
        Some(RefusalCode::CaseNotFound),
        "a removed doctor"
    );
}

#[test]
fn opinion_is_writable_by_its_specialist_until_submitted() {
    let mut fx = doctors_assigned();
    assert_eq!(
        write_code(&fx, &doctor(d1()), &ContentKind::Opinion(d1())),
        None
    );
    assert_eq!(
        write_code(&fx, &doctor(c1()), &ContentKind::Opinion(c1())),
        Some(RefusalCode::Forbidden)
    );
    fx.run(&doctor(d1()), opinion("Agree."));
    assert_eq!(
        write_code(&fx, &doctor(d1()), &ContentKind::Opinion(d1())),
        Some(RefusalCode::OpinionAlreadySubmitted)
    );
}

#[test]
fn summary_is_writable_by_the_coordinator_while_doctors_assigned() {
    let fx = doctors_assigned();
    assert_eq!(write_code(&fx, &doctor(c1()), &ContentKind::Summary), None);
    assert_eq!(
        write_code(&fx, &doctor(d1()), &ContentKind::Summary),
        Some(RefusalCode::Forbidden)
    );
    let done = completed();
    assert_eq!(
        write_code(&done, &doctor(c1()), &ContentKind::Summary),
        Some(RefusalCode::InvalidStatus)
    );
}

#[test]
fn sub_states_follow_spec_3_3() {
    let awaiting = awaiting_payment();
    assert_eq!(
        sub_states(awaiting.case(), awaiting.now),
        vec![SubState::AwaitingDocuments]
    );

    let mut assigned = doctors_assigned();
    let due = assigned.case().due_at.expect("paid cases have a due date");
    assert!(!sub_states(assigned.case(), due).contains(&SubState::Overdue));
    assert!(
        sub_states(assigned.case(), due + chrono::TimeDelta::seconds(1))
            .contains(&SubState::Overdue)
    );
    assigned.run(&doctor(d1()), opinion("Agree."));
    assigned.run(&doctor(d2()), opinion("Agree too."));
    assert!(sub_states(assigned.case(), assigned.now).contains(&SubState::OpinionsComplete));

    let done = completed();
    assert_eq!(
        sub_states(done.case(), done.now),
        vec![SubState::ReportPending]
    );
    let far_later = done.now + chrono::TimeDelta::days(365);
    assert!(!sub_states(done.case(), far_later).contains(&SubState::Overdue));
}

#[test]
fn status_card_speaks_both_languages_for_every_status() {
    for fx in [
        draft(),
        submitted(),
        awaiting_payment(),
        payment_failed(),
        payment_successful(),
        doctors_assigned(),
        completed(),
        cancelled(),
        rejected(),
    ] {
        let case = fx.case();
        let en = status_card(case, Some(&coordinator_profile()), Lang::En, fx.now);
        let ar = status_card(case, Some(&coordinator_profile()), Lang::Ar, fx.now);
        assert_eq!(en.status, case.status);
        assert!(
            !en.title.is_empty() && !ar.title.is_empty(),
            "{:?}",
            case.status
        );
        assert_ne!(en.title, ar.title, "{:?}", case.status);
        assert!(
            ar.title
                .chars()
                .any(|c| ('\u{0600}'..='\u{06FF}').contains(&c)),
            "Arabic title for {:?}: {}",
            case.status,
            ar.title
        );
    }
}

#[test]
fn status_card_shows_what_the_patient_needs_in_each_status() {
    let draft = draft();
    let card = status_card(draft.case(), None, Lang::En, draft.now);
    assert_eq!(card.actions, vec![CardAction::SubmitCase]);

    // Awaiting payment with REQ1 open: the card asks for documents and still offers to pay.
    let awaiting = awaiting_payment();
    let card = status_card(awaiting.case(), None, Lang::En, awaiting.now);
    assert_eq!(card.amount, Some(PRICE));
    assert_eq!(card.currency.as_deref(), Some(CURRENCY));
    assert_eq!(card.payment_link.as_deref(), Some(LINK1));
    assert!(card.actions.contains(&CardAction::Pay));
    assert!(card.actions.contains(&CardAction::UploadDocuments));
    assert!(!card.requested_items.is_empty());

    let failed = payment_failed();
    let card = status_card(failed.case(), None, Lang::En, failed.now);
    assert!(card.actions.contains(&CardAction::RetryPayment));

    let mut assigned = doctors_assigned();
    assigned.run(
        &owner(),
        sop_core::Command::AnswerDocumentRequest { request_id: REQ1 },
    );
    let card = status_card(
        assigned.case(),
        Some(&coordinator_profile()),
        Lang::En,
        assigned.now,
    );
    let contact = card.coordinator.expect("coordinator contact");
    assert_eq!(contact.phone, "+966500000000");
    assert_eq!(card.due_at, assigned.case().due_at);
    assert!(card.message.contains("Dr. Coordinator"), "{}", card.message);
    let ar = status_card(
        assigned.case(),
        Some(&coordinator_profile()),
        Lang::Ar,
        assigned.now,
    );
    assert!(ar.message.contains("د. المنسق"), "{}", ar.message);

    let cancelled = cancelled();
    let card = status_card(cancelled.case(), None, Lang::En, cancelled.now);
    assert_eq!(card.status, Status::Cancelled);
    assert_eq!(card.reason, cancelled.case().closed_reason);
    assert!(card.reason.is_some());
}
