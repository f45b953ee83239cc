//! One failing test (at least) for every guard of the SPEC §3.2 table, named after the behaviour,
//! with the boundary that still passes where the SPEC gives a number. The money rules of §5 are
//! in `money`, the recipients of §7 in `notifications`.

use crate::fixtures::*;
use chrono::TimeDelta;
use sop_core::case::{Gender, Intake, IntakePatch, RefundStatus, Status};
use sop_core::command::{Command, DoctorToAssign, NewDocument};
use sop_core::event::Effect;
use sop_core::ids::{DocumentId, ReviewTypeId};
use sop_core::refusal::RefusalCode as R;
use uuid::Uuid;

fn intake_without(edit: impl FnOnce(&mut Intake)) -> Intake {
    let mut intake = full_intake();
    edit(&mut intake);
    intake
}

fn submit_refusal(intake: Intake) -> R {
    draft_with(intake).refused(&owner(), Command::SubmitCase)
}

// ---------------------------------------------------------------------------------------------
// T1 create case, T2 create and submit

#[test]
fn create_refused_when_review_type_inactive() {
    let code = Fx::new().refused(&owner(), create_with(RT_INACTIVE, DC, full_intake(), false));
    assert_eq!(code, R::ReviewTypeInactive);
}

#[test]
fn create_refused_when_review_type_unknown() {
    let unknown = ReviewTypeId(Uuid::from_u128(0x7fff));
    let code = Fx::new().refused(&owner(), create_with(unknown, DC, full_intake(), false));
    assert_eq!(code, R::ReviewTypeInactive);
}

#[test]
fn create_refused_when_category_inactive() {
    let code = Fx::new().refused(&owner(), create_with(RT, DC_INACTIVE, full_intake(), false));
    assert_eq!(code, R::CategoryInactive);
}

#[test]
fn create_draft_accepts_an_incomplete_intake() {
    let mut fx = Fx::new();
    fx.run(&owner(), create_with(RT, DC, Intake::default(), false));
    assert_eq!(fx.status(), Status::Draft);
    assert_eq!(fx.case().patient_id, p1());
}

#[test]
fn create_refused_when_age_out_of_range() {
    let intake = intake_without(|i| i.patient_age = Some(131));
    let code = Fx::new().refused(&owner(), create_with(RT, DC, intake, false));
    assert_eq!(code, R::AgeInvalid);
}

#[test]
fn create_and_submit_refused_when_review_type_inactive() {
    let code = Fx::new().refused(&owner(), create_with(RT_INACTIVE, DC, full_intake(), true));
    assert_eq!(code, R::ReviewTypeInactive);
}

#[test]
fn create_and_submit_refused_when_category_inactive() {
    let code = Fx::new().refused(&owner(), create_with(RT, DC_INACTIVE, full_intake(), true));
    assert_eq!(code, R::CategoryInactive);
}

#[test]
fn create_and_submit_refused_when_gender_missing() {
    let intake = intake_without(|i| i.patient_gender = None);
    let code = Fx::new().refused(&owner(), create_with(RT, DC, intake, true));
    assert_eq!(code, R::GenderRequired);
}

#[test]
fn create_and_submit_refused_when_medical_history_empty() {
    let intake = intake_without(|i| i.medical_history = String::new());
    let code = Fx::new().refused(&owner(), create_with(RT, DC, intake, true));
    assert_eq!(code, R::MedicalHistoryRequired);
}

#[test]
fn create_and_submit_fixes_price_and_sla() {
    let mut fx = Fx::new();
    fx.run(&owner(), create(true));
    let case = fx.case();
    assert_eq!(case.status, Status::Submitted);
    let pricing = case.pricing.clone().unwrap();
    assert_eq!(
        (
            pricing.price,
            pricing.currency.as_str(),
            pricing.expected_review_days
        ),
        (PRICE, CURRENCY, REVIEW_DAYS)
    );
    assert_eq!(case.submitted_at, Some(base()));
}

// ---------------------------------------------------------------------------------------------
// T3 submit

#[test]
fn submit_refused_when_medical_history_empty() {
    let code = submit_refusal(intake_without(|i| i.medical_history = String::new()));
    assert_eq!(code, R::MedicalHistoryRequired);
}

#[test]
fn submit_refused_when_medical_history_only_spaces() {
    let code = submit_refusal(intake_without(|i| i.medical_history = "  \n\t ".into()));
    assert_eq!(code, R::MedicalHistoryRequired);
}

#[test]
fn submit_refused_when_gender_missing() {
    let code = submit_refusal(intake_without(|i| i.patient_gender = None));
    assert_eq!(code, R::GenderRequired);
}

#[test]
fn submit_refused_when_age_missing() {
    let code = submit_refusal(intake_without(|i| i.patient_age = None));
    assert_eq!(code, R::AgeInvalid);
}

#[test]
fn age_outside_0_to_130_refused_before_it_can_reach_submit() {
    // A draft holds only ages in range (T1 and the intake edit check them), so T3's age guard
    // is met by those entry points; the draft then submits with its valid age.
    let mut fx = draft();
    for age in [131, -1] {
        let patch = IntakePatch {
            patient_age: Some(age),
            ..IntakePatch::default()
        };
        let code = fx.refused(&owner(), Command::UpdateIntake { patch });
        assert_eq!(code, R::AgeInvalid, "{age}");
    }
    fx.run(&owner(), Command::SubmitCase);
    assert_eq!(fx.status(), Status::Submitted);
}

#[test]
fn submit_accepts_ages_0_and_130() {
    for age in [0, 130] {
        let mut fx = draft_with(intake_without(|i| i.patient_age = Some(age)));
        fx.run(&owner(), Command::SubmitCase);
        assert_eq!(fx.status(), Status::Submitted, "age {age}");
    }
}

#[test]
fn submit_refused_when_review_type_deactivated_after_drafting() {
    let mut fx = draft();
    fx.catalog.review_types[0].active = false;
    assert_eq!(
        fx.refused(&owner(), Command::SubmitCase),
        R::ReviewTypeInactive
    );
}

#[test]
fn submit_refused_when_category_deactivated_after_drafting() {
    let mut fx = draft();
    fx.catalog.categories[0].active = false;
    assert_eq!(
        fx.refused(&owner(), Command::SubmitCase),
        R::CategoryInactive
    );
}

#[test]
fn submitted_case_keeps_the_price_and_sla_of_submission() {
    let mut fx = submitted();
    fx.catalog.review_types[0].price = 99;
    fx.catalog.review_types[0].expected_review_days = 1;
    let decision = fx.run(&admin(), assign_coordinator(c1(), PAY1));
    assert!(decision.effects.contains(&Effect::CreatePayment {
        payment_id: PAY1,
        amount: PRICE,
        currency: CURRENCY.into()
    }));
    let paid_at = fx.now;
    fx.run(&platform(), paid(PAY1));
    assert_eq!(fx.case().paid_at, Some(paid_at));
    assert_eq!(
        fx.case().due_at,
        Some(paid_at + TimeDelta::days(i64::from(REVIEW_DAYS)))
    );
}

// ---------------------------------------------------------------------------------------------
// Editing the intake (not a transition)

#[test]
fn update_intake_refused_when_nothing_to_update() {
    let patch = IntakePatch::default();
    assert_eq!(
        draft().refused(&owner(), Command::UpdateIntake { patch }),
        R::NothingToUpdate
    );
}

#[test]
fn update_intake_changes_only_the_given_fields() {
    let mut fx = draft_with(Intake::default());
    fx.run(
        &owner(),
        Command::UpdateIntake {
            patch: IntakePatch {
                patient_gender: Some(Gender::Male),
                ..IntakePatch::default()
            },
        },
    );
    let intake = &fx.case().intake;
    assert_eq!(intake.patient_gender, Some(Gender::Male));
    assert_eq!(intake.patient_age, None);
    assert_eq!(intake.medical_history, "");
}

// ---------------------------------------------------------------------------------------------
// T4 assign coordinator, T5 reassign

#[test]
fn assign_coordinator_refused_when_doctor_not_in_mapping() {
    let code = submitted().refused(&admin(), assign_coordinator(d1(), PAY1));
    assert_eq!(code, R::CoordinatorNotEligible);
}

#[test]
fn assign_coordinator_refused_when_mapping_inactive() {
    let mut fx = Fx::new();
    fx.run(&owner(), create_with(RT, DC_UNMAPPED, full_intake(), true));
    assert_eq!(
        fx.refused(&admin(), assign_coordinator(c1(), PAY1)),
        R::CoordinatorNotEligible
    );
}

#[test]
fn assign_coordinator_refused_when_requested_item_too_long() {
    let long = "x".repeat(501);
    let code = submitted().refused(
        &admin(),
        Command::AssignCoordinator {
            doctor_id: c1(),
            payment_id: PAY1,
            requested_documents: Some(request(REQ1, &[&long])),
        },
    );
    assert_eq!(code, R::ItemTooLong);
}

#[test]
fn assign_coordinator_with_requested_documents_opens_a_request_by_the_coordinator() {
    let fx = awaiting_payment();
    let case = fx.case();
    assert_eq!(case.coordinator_id, Some(c1()));
    let req = case.request(REQ1).unwrap();
    assert!(req.open);
    assert_eq!(req.requested_by, c1());
    assert_eq!(req.items, vec!["Latest angiography report".to_owned()]);
}

#[test]
fn reassign_coordinator_refused_when_same_coordinator() {
    let code =
        awaiting_payment().refused(&admin(), Command::ReassignCoordinator { doctor_id: c1() });
    assert_eq!(code, R::SameCoordinator);
}

#[test]
fn reassign_coordinator_refused_when_doctor_not_eligible() {
    let code = payment_failed().refused(&admin(), Command::ReassignCoordinator { doctor_id: d1() });
    assert_eq!(code, R::CoordinatorNotEligible);
}

#[test]
fn reassign_coordinator_keeps_the_payment_and_ends_the_old_assignment() {
    let mut fx = awaiting_payment();
    let payments = fx.case().payments.clone();
    fx.run(&admin(), Command::ReassignCoordinator { doctor_id: c2() });
    let case = fx.case();
    assert_eq!(case.coordinator_id, Some(c2()));
    assert_eq!(case.payments, payments, "the payment and its link stay");
    assert_eq!(case.current_payment().unwrap().link.as_deref(), Some(LINK1));
    let c1_assignment = case
        .assignments
        .iter()
        .find(|a| a.doctor_id == c1())
        .unwrap();
    assert!(!c1_assignment.active);
    // The old coordinator has lost the case.
    assert_eq!(
        fx.refused(&doctor(c1()), cancel("not mine anymore")),
        R::CaseNotFound
    );
}

// ---------------------------------------------------------------------------------------------
// T9 assign doctors

#[test]
fn assign_doctors_refused_when_doctor_not_eligible() {
    let code = payment_successful().refused(&doctor(c1()), assign(&[d1(), d9()]));
    assert_eq!(code, R::DoctorNotEligible);
}

#[test]
fn assign_doctors_refused_when_doctor_already_active() {
    let code = doctors_assigned().refused(&doctor(c1()), assign(&[d1()]));
    assert_eq!(code, R::DoctorAlreadyAssigned);
}

#[test]
fn assign_doctors_refused_when_doctor_listed_twice() {
    let code = payment_successful().refused(&doctor(c1()), assign(&[d1(), d1()]));
    assert_eq!(code, R::DoctorAlreadyAssigned);
}

#[test]
fn assign_doctors_refused_when_list_empty() {
    let code = payment_successful().refused(&doctor(c1()), assign(&[]));
    assert_eq!(code, R::NoDoctors);
}

#[test]
fn assign_doctors_refused_for_the_coordinator_as_specialist() {
    let mut fx = payment_successful();
    fx.catalog.categories[0].doctor_ids.push(c1());
    assert_eq!(
        fx.refused(&doctor(c1()), assign(&[c1()])),
        R::DoctorIsCoordinator
    );
}

#[test]
fn assign_doctors_refused_for_anyone_but_the_coordinator() {
    let fx = doctors_assigned();
    // A specialist who sees the case: 403. The admin: 403. A doctor not on it: 404 (SPEC §8).
    assert_eq!(fx.refused(&doctor(d1()), assign(&[d3()])), R::Forbidden);
    assert_eq!(fx.refused(&admin(), assign(&[d3()])), R::Forbidden);
    assert_eq!(fx.refused(&doctor(c2()), assign(&[d3()])), R::CaseNotFound);
}

#[test]
fn assign_doctors_refused_when_requested_item_empty() {
    let code = payment_successful().refused(
        &doctor(c1()),
        Command::AssignDoctors {
            doctors: vec![DoctorToAssign {
                doctor_id: d1(),
                requested_documents: Some(request(REQ2, &["  "])),
            }],
        },
    );
    assert_eq!(code, R::ItemEmpty);
}

#[test]
fn assign_doctors_opens_each_doctors_document_request() {
    let mut fx = payment_successful();
    fx.run(
        &doctor(c1()),
        Command::AssignDoctors {
            doctors: vec![
                DoctorToAssign {
                    doctor_id: d1(),
                    requested_documents: Some(request(REQ2, &["ECG"])),
                },
                DoctorToAssign {
                    doctor_id: d2(),
                    requested_documents: None,
                },
            ],
        },
    );
    let case = fx.case();
    assert_eq!(case.status, Status::DoctorsAssigned);
    assert_eq!(case.request(REQ2).unwrap().requested_by, d1());
    assert_eq!(case.active_specialists().count(), 2);
}

#[test]
fn assign_doctors_may_bring_back_a_removed_specialist() {
    let mut fx = doctors_assigned();
    assert_eq!(fx.refused(&doctor(d3()), opinion("x")), R::CaseNotFound);
    fx.run(&doctor(c1()), assign(&[d3()]));
    fx.run(&doctor(d3()), opinion("Back on the case."));
    assert!(
        fx.case()
            .active_specialist(&d3())
            .unwrap()
            .opinion_submitted_at
            .is_some()
    );
}

// ---------------------------------------------------------------------------------------------
// T10 unassign doctor

#[test]
fn unassign_refused_for_last_doctor() {
    let mut fx = doctors_assigned();
    fx.run(&doctor(c1()), Command::UnassignDoctor { doctor_id: d2() });
    let code = fx.refused(&doctor(c1()), Command::UnassignDoctor { doctor_id: d1() });
    assert_eq!(code, R::LastDoctor);
}

#[test]
fn unassign_refused_after_the_doctor_submitted() {
    let mut fx = doctors_assigned();
    fx.run(&doctor(d1()), opinion("Done."));
    let code = fx.refused(&doctor(c1()), Command::UnassignDoctor { doctor_id: d1() });
    assert_eq!(code, R::OpinionAlreadySubmitted);
}

#[test]
fn unassign_refused_for_a_doctor_not_active_on_the_case() {
    let fx = doctors_assigned();
    for who in [d3(), d9(), c1()] {
        let code = fx.refused(
            &doctor(c1()),
            Command::UnassignDoctor {
                doctor_id: who.clone(),
            },
        );
        assert_eq!(code, R::DoctorNotAssigned, "{who}");
    }
}

#[test]
fn unassigned_doctor_loses_access_at_once() {
    let mut fx = doctors_assigned();
    fx.run(&doctor(c1()), Command::UnassignDoctor { doctor_id: d2() });
    assert_eq!(fx.refused(&doctor(d2()), opinion("late")), R::CaseNotFound);
    let req = Command::RequestDocuments {
        request: request(REQ2, &["ECG"]),
    };
    assert_eq!(fx.refused(&doctor(d2()), req), R::CaseNotFound);
}

// ---------------------------------------------------------------------------------------------
// T11 request documents

fn request_docs(items: &[&str]) -> Command {
    Command::RequestDocuments {
        request: request(REQ2, items),
    }
}

#[test]
fn request_documents_refused_when_items_empty() {
    assert_eq!(
        doctors_assigned().refused(&doctor(d1()), request_docs(&[])),
        R::ItemsRequired
    );
}

#[test]
fn request_item_over_500_chars_refused() {
    let long = "é".repeat(501);
    assert_eq!(
        doctors_assigned().refused(&doctor(c1()), request_docs(&["ECG", &long])),
        R::ItemTooLong
    );
}

#[test]
fn request_item_of_500_chars_accepted() {
    // 500 characters, 1000 bytes: the limit counts characters.
    let item = "é".repeat(500);
    let mut fx = doctors_assigned();
    fx.run(&doctor(d1()), request_docs(&[&item]));
    assert_eq!(fx.case().request(REQ2).unwrap().items, vec![item]);
}

#[test]
fn request_item_blank_refused() {
    assert_eq!(
        doctors_assigned().refused(&doctor(d1()), request_docs(&["ECG", "   "])),
        R::ItemEmpty
    );
}

#[test]
fn request_with_too_many_items_refused() {
    let items: Vec<String> = (0..21).map(|i| format!("item {i}")).collect();
    let items: Vec<&str> = items.iter().map(String::as_str).collect();
    assert_eq!(
        doctors_assigned().refused(&doctor(d1()), request_docs(&items)),
        R::TooManyItems
    );
}

#[test]
fn request_refused_when_request_id_already_used() {
    let command = Command::RequestDocuments {
        request: request(REQ1, &["ECG"]),
    };
    assert_eq!(
        doctors_assigned().refused(&doctor(d1()), command),
        R::IdAlreadyUsed
    );
}

// ---------------------------------------------------------------------------------------------
// T12 upload document (and answering a request)

fn upload_doc(document: NewDocument) -> Command {
    Command::UploadDocument { document }
}

#[test]
fn upload_refused_for_a_disallowed_type() {
    for content_type in ["text/plain", "application/msword", "image/gif", ""] {
        let code = draft().refused(&owner(), upload_doc(doc(DOC2, content_type, MIB)));
        assert_eq!(code, R::FileTypeNotAllowed, "{content_type}");
    }
}

#[test]
fn upload_accepts_every_allowed_type() {
    let types = [
        "application/pdf",
        "image/jpeg",
        "image/png",
        "image/heic",
        "application/dicom",
        "application/zip",
    ];
    let mut fx = draft();
    for (i, content_type) in types.into_iter().enumerate() {
        let id = DocumentId(Uuid::from_u128(0xd200 + i as u128));
        fx.run(&owner(), upload_doc(doc(id, content_type, MIB)));
    }
    assert_eq!(fx.case().present_documents().count(), 1 + types.len());
}

#[test]
fn upload_refused_over_the_per_file_limit() {
    let code = draft().refused(&owner(), upload(DOC2, 50 * MIB + 1));
    assert_eq!(code, R::FileTooLarge);
    let mut fx = draft();
    fx.run(&owner(), upload(DOC2, 50 * MIB));
}

#[test]
fn upload_refused_when_the_case_total_would_exceed_500_mib() {
    // DOC1 is 2 MiB; nine files of 50 MiB make 452 MiB.
    let mut fx = draft();
    for i in 0..9 {
        let id = DocumentId(Uuid::from_u128(0xd300 + i));
        fx.run(&owner(), upload(id, 50 * MIB));
    }
    assert_eq!(
        fx.refused(&owner(), upload(DOC2, 49 * MIB)),
        R::CaseStorageFull
    );
    // Exactly 500 MiB fits.
    fx.run(&owner(), upload(DOC2, 48 * MIB));
    assert_eq!(fx.case().stored_bytes(), 500 * MIB);
    // A removed document no longer counts.
    fx.run(&owner(), Command::RemoveDocument { document_id: DOC1 });
    fx.run(&owner(), upload(DOC3, 2 * MIB));
}

#[test]
fn upload_refused_for_an_empty_file() {
    assert_eq!(draft().refused(&owner(), upload(DOC2, 0)), R::FileEmpty);
}

#[test]
fn upload_refused_for_an_invalid_name_or_checksum() {
    let mut nameless = doc(DOC2, "application/pdf", MIB);
    nameless.file_name = " ".into();
    assert_eq!(
        draft().refused(&owner(), upload_doc(nameless)),
        R::FileNameInvalid
    );
    let mut bad_sha = doc(DOC2, "application/pdf", MIB);
    bad_sha.sha256 = "xyz".into();
    assert_eq!(
        draft().refused(&owner(), upload_doc(bad_sha)),
        R::Sha256Invalid
    );
}

#[test]
fn upload_refused_for_a_document_id_already_used() {
    assert_eq!(
        draft().refused(&owner(), upload(DOC1, MIB)),
        R::IdAlreadyUsed
    );
}

#[test]
fn upload_refused_after_submit_without_an_open_request() {
    assert_eq!(
        submitted().refused(&owner(), upload(DOC2, MIB)),
        R::NoOpenRequest
    );
}

#[test]
fn upload_refused_once_the_only_request_is_answered() {
    let mut fx = awaiting_payment();
    let mut answering = doc(DOC2, "application/pdf", MIB);
    answering.request_id = Some(REQ1);
    fx.run(&owner(), upload_doc(answering));
    fx.run(
        &owner(),
        Command::AnswerDocumentRequest { request_id: REQ1 },
    );
    assert_eq!(fx.refused(&owner(), upload(DOC3, MIB)), R::NoOpenRequest);
}

#[test]
fn upload_refused_for_an_answered_or_unknown_request() {
    let mut fx = doctors_assigned();
    fx.run(&doctor(d1()), request_docs(&["ECG"]));
    fx.run(
        &owner(),
        Command::AnswerDocumentRequest { request_id: REQ1 },
    );
    let mut late = doc(DOC2, "application/pdf", MIB);
    late.request_id = Some(REQ1);
    assert_eq!(
        fx.refused(&owner(), upload_doc(late.clone())),
        R::RequestNotOpen
    );
    late.request_id = Some(REQ3);
    assert_eq!(fx.refused(&owner(), upload_doc(late)), R::RequestNotFound);
}

#[test]
fn answer_request_refused_when_already_answered() {
    let mut fx = payment_successful();
    fx.run(
        &owner(),
        Command::AnswerDocumentRequest { request_id: REQ1 },
    );
    let code = fx.refused(
        &owner(),
        Command::AnswerDocumentRequest { request_id: REQ1 },
    );
    assert_eq!(code, R::RequestNotOpen);
}

// ---------------------------------------------------------------------------------------------
// T13 remove document

#[test]
fn remove_refused_for_an_unknown_document() {
    let code = draft().refused(&owner(), Command::RemoveDocument { document_id: DOC2 });
    assert_eq!(code, R::DocumentNotFound);
}

#[test]
fn remove_refused_for_a_document_already_removed() {
    let mut fx = draft();
    fx.run(&owner(), Command::RemoveDocument { document_id: DOC1 });
    // The metadata stays for the audit trail, marked removed.
    assert!(fx.case().document(DOC1).unwrap().removed);
    let code = fx.refused(&owner(), Command::RemoveDocument { document_id: DOC1 });
    assert_eq!(code, R::DocumentNotFound);
}

// ---------------------------------------------------------------------------------------------
// T14 submit opinion, T15 submit summary

#[test]
fn submit_opinion_refused_when_already_submitted() {
    let mut fx = doctors_assigned();
    fx.run(&doctor(d1()), opinion("First."));
    assert_eq!(
        fx.refused(&doctor(d1()), opinion("Second thoughts.")),
        R::OpinionAlreadySubmitted
    );
}

#[test]
fn submit_opinion_refused_when_summary_empty() {
    for text in ["", "   \n"] {
        assert_eq!(
            doctors_assigned().refused(&doctor(d2()), opinion(text)),
            R::OpinionEmpty,
            "{text:?}"
        );
    }
}

#[test]
fn submit_summary_refused_when_opinions_missing() {
    let mut fx = doctors_assigned();
    assert_eq!(
        fx.refused(&doctor(c1()), summary("Done")),
        R::OpinionsMissing
    );
    fx.run(&doctor(d1()), opinion("One of two."));
    assert_eq!(
        fx.refused(&doctor(c1()), summary("Done")),
        R::OpinionsMissing
    );
}

#[test]
fn submit_summary_refused_when_summary_empty() {
    for text in ["", " \t "] {
        assert_eq!(
            opinions_in().refused(&doctor(c1()), summary(text)),
            R::SummaryEmpty,
            "{text:?}"
        );
    }
}

#[test]
fn submit_summary_does_not_wait_for_a_removed_specialist() {
    // D3 was removed without an opinion; D1 and D2 submitted.
    let mut fx = opinions_in();
    let at = fx.now;
    let decision = fx.run(&doctor(c1()), summary("Final."));
    assert_eq!(fx.status(), Status::Completed);
    assert_eq!(fx.case().completed_at, Some(at));
    assert_eq!(decision.effects, vec![Effect::GenerateReport]);
}

// ---------------------------------------------------------------------------------------------
// T16 cancel, T17 reject

#[test]
fn cancel_reason_over_1000_chars_refused() {
    let long = "r".repeat(1001);
    assert_eq!(draft().refused(&owner(), cancel(&long)), R::ReasonTooLong);
    assert_eq!(
        doctors_assigned().refused(&admin(), cancel(&long)),
        R::ReasonTooLong
    );
}

#[test]
fn cancel_reason_of_1000_chars_accepted() {
    let reason = "ر".repeat(1000);
    let mut fx = draft();
    fx.run(&owner(), cancel(&reason));
    assert_eq!(fx.case().closed_reason.as_deref(), Some(reason.as_str()));
}

#[test]
fn cancel_refused_without_a_reason() {
    for reason in ["", "   "] {
        assert_eq!(draft().refused(&owner(), cancel(reason)), R::ReasonRequired);
    }
}

#[test]
fn cancel_records_the_reason_and_who_closed() {
    let mut fx = awaiting_payment();
    fx.run(&owner(), cancel("  Too expensive  "));
    assert_eq!(fx.case().closed_reason.as_deref(), Some("Too expensive"));
    assert_eq!(fx.case().closed_by.as_deref(), Some("patient:PAT1"));
    let mut fx = submitted();
    fx.run(&admin(), cancel("Duplicate case"));
    assert_eq!(fx.case().closed_by.as_deref(), Some("admin:ADM1"));
}

#[test]
fn reject_refused_without_a_reason() {
    for reason in ["", "\t"] {
        assert_eq!(
            submitted().refused(&admin(), reject(reason)),
            R::ReasonRequired
        );
    }
}

// ---------------------------------------------------------------------------------------------
// T18 overdue reminder and the scheduled jobs

#[test]
fn overdue_reminder_refused_within_12_hours() {
    let mut fx = doctors_assigned();
    let first = fx.now;
    fx.run(&doctor(c1()), Command::SendOverdueReminder);
    assert_eq!(fx.case().last_overdue_reminder_at, Some(first));
    fx.now = first + TimeDelta::hours(12) - TimeDelta::seconds(1);
    assert_eq!(
        fx.refused(&doctor(c1()), Command::SendOverdueReminder),
        R::ReminderTooSoon
    );
    fx.now = first + TimeDelta::hours(12);
    fx.run(&doctor(c1()), Command::SendOverdueReminder);
}

#[test]
fn draft_reminder_refused_before_24_hours_without_edit() {
    let mut fx = draft();
    let last_edit = fx.case().updated_at;
    fx.now = last_edit + TimeDelta::hours(24) - TimeDelta::seconds(1);
    assert_eq!(fx.refused(&system(), Command::SendDraftReminder), R::NotDue);
    fx.now = last_edit + TimeDelta::hours(24);
    fx.run(&system(), Command::SendDraftReminder);
}

#[test]
fn draft_reminder_sent_at_most_once() {
    let mut fx = draft();
    fx.advance(TimeDelta::days(2));
    fx.run(&system(), Command::SendDraftReminder);
    fx.advance(TimeDelta::days(2));
    assert_eq!(
        fx.refused(&system(), Command::SendDraftReminder),
        R::AlreadySent
    );
}

#[test]
fn overdue_alert_refused_until_past_due() {
    let mut fx = doctors_assigned();
    let due = fx.case().due_at.unwrap();
    fx.now = due;
    assert_eq!(fx.refused(&system(), Command::SendOverdueAlert), R::NotDue);
    fx.now = due + TimeDelta::seconds(1);
    fx.run(&system(), Command::SendOverdueAlert);
    fx.advance(TimeDelta::days(1));
    assert_eq!(
        fx.refused(&system(), Command::SendOverdueAlert),
        R::AlreadySent
    );
}

#[test]
fn report_ready_repeated_is_a_noop_and_a_different_report_is_refused() {
    let mut fx = completed();
    let ready = Command::ReportReady {
        report_id: REPORT,
        sha256: SHA_B.into(),
    };
    fx.run(&system(), ready.clone());
    assert!(fx.case().report.is_some());
    assert!(fx.run(&system(), ready).is_noop());
    let other = Command::ReportReady {
        report_id: REPORT,
        sha256: SHA_A.into(),
    };
    assert_eq!(fx.refused(&system(), other), R::ReportAlreadyStored);
}

#[test]
fn payment_link_refused_when_empty_and_same_link_is_a_noop() {
    let mut fx = awaiting_payment();
    let empty = Command::PaymentLinkCreated {
        payment_id: PAY1,
        link: " ".into(),
    };
    assert_eq!(fx.refused(&system(), empty), R::LinkInvalid);
    let same = Command::PaymentLinkCreated {
        payment_id: PAY1,
        link: LINK1.into(),
    };
    assert!(fx.run(&platform(), same).is_noop());
    let unknown = Command::PaymentLinkCreated {
        payment_id: PAY3,
        link: LINK1.into(),
    };
    assert_eq!(fx.refused(&system(), unknown), R::UnknownPayment);
}

#[test]
fn refund_settled_refused_when_no_refund_was_requested() {
    let command = Command::RefundSettled {
        payment_id: PAY1,
        refunded: true,
    };
    assert_eq!(
        payment_successful().refused(&platform(), command),
        R::RefundNotRequested
    );
    let mut fx = cancelled();
    fx.run(
        &platform(),
        Command::RefundSettled {
            payment_id: PAY1,
            refunded: true,
        },
    );
    assert_eq!(
        fx.case().payment(PAY1).unwrap().refund,
        Some(RefundStatus::Refunded)
    );
}
