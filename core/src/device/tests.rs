//! Tests of the device store without a server: schema and upgrade, optimistic commands,
//! transactionality, refusal rollback with recovered drafts, and purge on revoke (the sync
//! answers are built here and applied as the sync client applies them). The sync client against
//! a real server is tested in `server/tests/http/device.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::sync::tests_support::apply_answer;
use super::*;
use crate::refusal::{Refusal, RefusalCode};
use crate::sync::wire::{FeedItem, Outcome};
use rusqlite::Connection;

const RT: &str = "0195a000-0000-7000-8000-00000000a001";
const DC: &str = "0195a000-0000-7000-8000-00000000d001";

fn config(dir: &tempfile::TempDir, user: &str, role: Role) -> DeviceConfig {
    DeviceConfig {
        db_path: dir.path().join("store.db").to_string_lossy().into_owned(),
        // Nothing listens there: these tests never reach a server.
        server_url: "http://127.0.0.1:9".into(),
        user_id: user.into(),
        role,
        token: "t".into(),
        lang: "en".into(),
    }
}

fn patient(dir: &tempfile::TempDir) -> Device {
    Device::open(config(dir, "P1", Role::Patient)).unwrap()
}

fn full_intake() -> IntakeEdit {
    IntakeEdit {
        patient_age: Some(40),
        patient_gender: Some("female".into()),
        medical_history: Some("asthma".into()),
        questions: Some("surgery?".into()),
    }
}

/// A draft with a complete intake, created offline.
fn draft(device: &Device) -> String {
    device
        .create_case(RT.into(), DC.into(), full_intake(), false)
        .unwrap()
}

fn code(e: DeviceError) -> String {
    match e {
        DeviceError::Refused { code, .. } => code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Every table's rows, in a stable order, as text (for comparing whole databases).
fn dump(conn: &Connection) -> Vec<String> {
    let mut out = Vec::new();
    let mut tables = conn
        .prepare("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name")
        .unwrap();
    let schema: Vec<(String, String, String, Option<String>)> = tables
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    for (kind, name, _, sql) in &schema {
        out.push(format!(
            "{kind} {name}: {}",
            sql.clone().unwrap_or_default()
        ));
        if kind == "table" && name != "sqlite_sequence" {
            let mut stmt = conn
                .prepare(&format!("SELECT * FROM {name} ORDER BY 1"))
                .unwrap();
            let n = stmt.column_count();
            let rows: Vec<String> = stmt
                .query_map([], |r| {
                    Ok((0..n)
                        .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                        .collect::<Vec<_>>()
                        .join("|"))
                })
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            out.extend(rows.into_iter().map(|r| format!("  {name}: {r}")));
        }
    }
    out
}

#[test]
fn a_new_store_is_wal_at_the_current_version_and_keeps_its_identity() {
    let dir = tempfile::tempdir().unwrap();
    let device = patient(&dir);
    let id = device.device_id();
    drop(device);
    let conn = Connection::open(dir.path().join("store.db")).unwrap();
    assert_eq!(store::version(&conn).unwrap(), store::SCHEMA_VERSION);
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    drop(conn);
    assert_eq!(patient(&dir).device_id(), id, "device id is persisted");
    let other = Device::open(config(&dir, "P2", Role::Patient));
    assert!(matches!(other, Err(DeviceError::InvalidInput { .. })));
}

#[test]
fn a_version_1_database_upgrades_to_what_a_fresh_one_is() {
    // The same facts written into a v1 file (from the fixture SQL) and into a fresh store.
    let facts = "INSERT INTO meta VALUES ('user_id', 'P1'), ('role', 'patient'),
            ('device_id', '0195a000-0000-7000-8000-0000000000d1'), ('actor', '00112233445566778899aabbccddeeff');
        INSERT INTO cases VALUES ('c1', NULL, NULL, '{}', 'draft', 'R-1', NULL, 'Draft', '2026-01-01');
        INSERT INTO outbox (op_id, case_id, doc_id, op, sent, created_at)
            VALUES ('o1', 'c1', NULL, '{}', 0, '2026-01-01');
        INSERT INTO notifications (case_id, json, received_at) VALUES ('c1', '{}', '2026-01-01');
        INSERT INTO uploads VALUES ('d1', 'c1', 'ab', '/x', 3, 1, 0);";
    let old_dir = tempfile::tempdir().unwrap();
    let old_path = old_dir.path().join("old.db");
    {
        let conn = Connection::open(&old_path).unwrap();
        conn.execute_batch(store::V1_SQL).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute_batch(facts).unwrap();
    }
    let old = store::open(old_path.to_str().unwrap()).unwrap();
    assert_eq!(store::version(&old).unwrap(), store::SCHEMA_VERSION);

    let fresh_dir = tempfile::tempdir().unwrap();
    let fresh = store::open(fresh_dir.path().join("new.db").to_str().unwrap()).unwrap();
    fresh.execute_batch(facts).unwrap();
    assert_eq!(dump(&old), dump(&fresh));
    // And the upgraded file opens as a store.
    drop(old);
    let mut cfg = config(&old_dir, "P1", Role::Patient);
    cfg.db_path = old_path.to_string_lossy().into_owned();
    let device = Device::open(cfg).unwrap();
    assert_eq!(device.device_id(), "0195a000-0000-7000-8000-0000000000d1");
    assert_eq!(device.pending_op_count().unwrap(), 1);
}

#[test]
fn a_newer_schema_is_refused_not_downgraded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", store::SCHEMA_VERSION + 1)
            .unwrap();
    }
    assert!(matches!(
        store::open(path.to_str().unwrap()),
        Err(DeviceError::Storage { .. })
    ));
}

#[test]
fn an_offline_draft_is_listed_queued_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let device = patient(&dir);
    let case_id = device
        .create_case(RT.into(), DC.into(), IntakeEdit::default(), false)
        .unwrap();
    device
        .edit_intake(
            case_id.clone(),
            IntakeEdit {
                medical_history: Some("asthma since 2001".into()),
                ..IntakeEdit::default()
            },
        )
        .unwrap();
    // More typing into the same field coalesces into the same queued change.
    device
        .edit_intake(
            case_id.clone(),
            IntakeEdit {
                medical_history: Some("asthma since 2001, mild".into()),
                ..IntakeEdit::default()
            },
        )
        .unwrap();
    assert_eq!(device.pending_op_count().unwrap(), 2);
    drop(device);

    let device = patient(&dir);
    let list = device.list_cases().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!((list[0].status.as_str(), list[0].pending_ops), ("draft", 2));
    let detail = device.get_case(case_id.clone()).unwrap();
    assert_eq!(detail.server_status, None);
    assert_eq!(
        device.intake(case_id).unwrap().medical_history,
        "asthma since 2001, mild"
    );
}

#[test]
fn a_command_the_rules_refuse_is_answered_at_once_and_queues_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let device = patient(&dir);
    let case_id = device
        .create_case(RT.into(), DC.into(), IntakeEdit::default(), false)
        .unwrap();
    let before = device.pending_op_count().unwrap();
    let err = device.submit_case(case_id.clone()).unwrap_err();
    assert_eq!(code(err), RefusalCode::AgeInvalid.to_string());
    assert_eq!(device.pending_op_count().unwrap(), before);
    assert_eq!(device.get_case(case_id.clone()).unwrap().status, "draft");

    // Allowed once the intake is complete: the local status moves at once.
    device.edit_intake(case_id.clone(), full_intake()).unwrap();
    device.submit_case(case_id.clone()).unwrap();
    assert_eq!(
        device.get_case(case_id.clone()).unwrap().status,
        "submitted"
    );
    // And the intake is no longer the patient's to edit.
    let err = device
        .edit_intake(
            case_id.clone(),
            IntakeEdit {
                questions: Some("more".into()),
                ..IntakeEdit::default()
            },
        )
        .unwrap_err();
    assert_eq!(code(err), RefusalCode::InvalidStatus.to_string());
    // Bad values are refused by the core's setters, and unknown cases are not found.
    assert!(matches!(
        device.cancel_case("not-an-id".into(), "x".into()),
        Err(DeviceError::InvalidInput { .. })
    ));
    assert!(matches!(
        device.get_case(uuid::Uuid::now_v7().to_string()),
        Err(DeviceError::NotFound { .. })
    ));
}

#[test]
fn a_failing_outbox_write_leaves_no_local_effect() {
    let dir = tempfile::tempdir().unwrap();
    let device = patient(&dir);
    let case_id = draft(&device);
    // Make every outbox insert fail, as a full disk would.
    device
        .read(|c| {
            c.execute_batch(
                "CREATE TRIGGER no_outbox BEFORE INSERT ON outbox
                 BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
            )?;
            Ok(())
        })
        .unwrap();
    assert!(matches!(
        device.submit_case(case_id.clone()),
        Err(DeviceError::Storage { .. })
    ));
    assert_eq!(device.get_case(case_id.clone()).unwrap().status, "draft");
    assert!(matches!(
        device.create_case(RT.into(), DC.into(), full_intake(), true),
        Err(DeviceError::Storage { .. })
    ));
    assert_eq!(
        device.list_cases().unwrap().len(),
        1,
        "no half-created case"
    );
    let file = dir.path().join("scan.pdf");
    std::fs::write(&file, b"%PDF-1.7 test").unwrap();
    assert!(
        device
            .attach_document(
                case_id,
                file.to_string_lossy().into(),
                "scan.pdf".into(),
                None,
                None
            )
            .is_err()
    );
    assert!(device.pending_uploads().unwrap().is_empty());
    assert_eq!(device.pending_op_count().unwrap(), 1, "only the creation");
}

#[test]
fn attaching_copies_hashes_and_queues_in_one_step() {
    let dir = tempfile::tempdir().unwrap();
    let device = patient(&dir);
    let case_id = draft(&device);
    let file = dir.path().join("scan.bin");
    std::fs::write(&file, b"%PDF-1.7 a small pdf").unwrap();
    let document_id = device
        .attach_document(
            case_id.clone(),
            file.to_string_lossy().into(),
            "scan.pdf".into(),
            None,
            None,
        )
        .unwrap();
    std::fs::remove_file(&file).unwrap();
    let uploads = device.pending_uploads().unwrap();
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].document_id, document_id);
    assert_eq!(uploads[0].size, 20);
    use sha2::Digest;
    assert_eq!(
        uploads[0].sha256,
        hex::encode(sha2::Sha256::digest(b"%PDF-1.7 a small pdf"))
    );
    let detail = device.get_case(case_id.clone()).unwrap();
    assert_eq!(detail.documents.len(), 1);
    assert_eq!(detail.documents[0].content_type, "application/pdf");
    assert!(!detail.documents[0].uploaded);
    // A type the rules do not allow is refused before anything is queued.
    let exe = dir.path().join("tool.exe");
    std::fs::write(&exe, b"MZ\x90\x00").unwrap();
    let err = device
        .attach_document(
            case_id,
            exe.to_string_lossy().into(),
            "tool.exe".into(),
            None,
            None,
        )
        .unwrap_err();
    assert_eq!(code(err), RefusalCode::FileTypeNotAllowed.to_string());
    assert_eq!(device.pending_uploads().unwrap().len(), 1);
}

#[test]
fn a_refused_content_change_rolls_the_document_back_and_keeps_a_draft() {
    let dir = tempfile::tempdir().unwrap();
    let device = patient(&dir);
    let case_id = draft(&device);
    device
        .edit_intake(
            case_id.clone(),
            IntakeEdit {
                questions: Some("typed while phone B submitted".into()),
                ..IntakeEdit::default()
            },
        )
        .unwrap();
    let batch = device.prepare_push().unwrap();
    assert_eq!(batch.ops.len(), 2, "creation, then the change");
    let refused: Outcome = Refusal::new(RefusalCode::ContentFrozen).into();
    apply_answer(&device, &batch, vec![Outcome::Applied, refused], vec![]);

    assert_eq!(device.pending_op_count().unwrap(), 0);
    let drafts = device.recovered_drafts().unwrap();
    assert_eq!(drafts.len(), 1);
    assert_eq!(drafts[0].kind, "intake");
    assert_eq!(drafts[0].code, "content_frozen");
    assert!(
        drafts[0]
            .content_json
            .contains("typed while phone B submitted")
    );
    assert_eq!(drafts[0].fields, vec!["questions".to_owned()]);
    let refusals = device.refusals().unwrap();
    assert_eq!(refusals[0].what, "content:intake");
    // The document is back to the server's version.
    assert_ne!(
        device.intake(case_id).unwrap().questions,
        "typed while phone B submitted"
    );
    device.dismiss_recovered_draft(drafts[0].id).unwrap();
    device.dismiss_refusal(refusals[0].id).unwrap();
    assert!(device.recovered_drafts().unwrap().is_empty());
    assert!(device.refusals().unwrap().is_empty());
}

#[test]
fn a_refused_command_rolls_the_case_back_to_the_server_state() {
    let dir = tempfile::tempdir().unwrap();
    let device = patient(&dir);
    let case_id = draft(&device);
    device.submit_case(case_id.clone()).unwrap();
    assert_eq!(
        device.get_case(case_id.clone()).unwrap().status,
        "submitted"
    );
    let batch = device.prepare_push().unwrap();
    let refused: Outcome = Refusal::new(RefusalCode::ReviewTypeInactive).into();
    apply_answer(&device, &batch, vec![Outcome::Applied, refused], vec![]);
    // Still a draft (the server has it as one), the refusal is kept for the app.
    let detail = device.get_case(case_id).unwrap();
    assert_eq!((detail.status.as_str(), detail.pending_ops), ("draft", 0));
    assert_eq!(device.refusals().unwrap()[0].what, "submit_case");
}

#[test]
fn a_refused_creation_removes_the_case_and_keeps_what_was_typed() {
    let dir = tempfile::tempdir().unwrap();
    let device = patient(&dir);
    let case_id = draft(&device);
    let batch = device.prepare_push().unwrap();
    let refused: Outcome = Refusal::new(RefusalCode::CategoryInactive).into();
    apply_answer(&device, &batch, vec![refused], vec![]);
    assert!(device.list_cases().unwrap().is_empty());
    let drafts = device.recovered_drafts().unwrap();
    assert_eq!(drafts.len(), 1);
    assert!(drafts[0].content_json.contains("asthma"));
    assert_eq!(device.refusals().unwrap()[0].case_id, case_id);
}

#[test]
fn revoked_access_purges_the_case_its_documents_queue_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let device = patient(&dir);
    let keep = draft(&device);
    let gone = draft(&device);
    let file = dir.path().join("x.png");
    std::fs::write(&file, b"\x89PNG\r\n\x1a\nrest").unwrap();
    device
        .attach_document(
            gone.clone(),
            file.to_string_lossy().into(),
            "x.png".into(),
            None,
            None,
        )
        .unwrap();
    let copy = dir
        .path()
        .join("store.db.files")
        .join(&device.pending_uploads().unwrap()[0].sha256);
    assert!(copy.exists());
    let batch = super::sync::Batch::empty();
    apply_answer(
        &device,
        &batch,
        vec![],
        vec![FeedItem::AccessRevoked {
            case_id: gone.parse().unwrap(),
        }],
    );
    let ids: Vec<String> = device
        .list_cases()
        .unwrap()
        .into_iter()
        .map(|c| c.case_id)
        .collect();
    assert_eq!(ids, vec![keep]);
    assert!(device.pending_uploads().unwrap().is_empty());
    assert!(!copy.exists());
    let left: i64 = device
        .read(|c| {
            Ok(c.query_row(
                "SELECT (SELECT count(*) FROM documents WHERE case_id = ?1)
                      + (SELECT count(*) FROM outbox WHERE case_id = ?1)",
                [&gone],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert_eq!(left, 0);
}

#[test]
fn a_doctor_cannot_write_a_patients_intake_nor_a_case_it_lacks() {
    let dir = tempfile::tempdir().unwrap();
    let doctor = Device::open(config(&dir, "EMP1", Role::Doctor)).unwrap();
    assert!(matches!(
        doctor.set_notes(uuid::Uuid::now_v7().to_string(), "x".into()),
        Err(DeviceError::NotFound { .. })
    ));
}

#[test]
fn a_device_can_be_shared_between_threads() {
    // The bindings hand one `Device` to the app's threads (uniffi objects are `Arc`s).
    fn shared<T: Send + Sync>() {}
    shared::<Device>();
}

#[test]
fn two_objects_on_one_file_never_overwrite_each_others_typing() {
    let dir = tempfile::tempdir().unwrap();
    let first = patient(&dir);
    let case_id = draft(&first);
    first
        .edit_intake(
            case_id.clone(),
            IntakeEdit {
                questions: Some("from the first".into()),
                ..IntakeEdit::default()
            },
        )
        .unwrap();
    let second = patient(&dir);
    second
        .edit_intake(
            case_id.clone(),
            IntakeEdit {
                medical_history: Some("from the second".into()),
                ..IntakeEdit::default()
            },
        )
        .unwrap();
    // The first object's cached document is stale now; its next edit must build on the file.
    first
        .edit_intake(
            case_id.clone(),
            IntakeEdit {
                patient_age: Some(41),
                ..IntakeEdit::default()
            },
        )
        .unwrap();
    let intake = patient(&dir).intake(case_id).unwrap();
    assert_eq!(
        (
            intake.questions.as_str(),
            intake.medical_history.as_str(),
            intake.patient_age
        ),
        ("from the first", "from the second", Some(41))
    );
}

/// A paid case as the feed shows it to its coordinator EMP10.
fn paid_case_record(case_id: &str) -> FeedItem {
    let at = "2026-01-02T10:00:00Z";
    FeedItem::CaseRecord {
        case_id: case_id.parse().unwrap(),
        record: serde_json::json!({
            "case_id": case_id, "patient_id": "P1", "rt_id": RT, "dc_id": DC,
            "status": "payment_successful", "coordinator_id": "EMP10",
            "created_at": at, "updated_at": at, "submitted_at": at, "paid_at": at,
            "assignments": [{
                "doctor_id": "EMP10", "role": "coordinator", "active": true,
                "assigned_at": at, "removed_at": null, "opinion_submitted": false
            }],
        }),
    }
}

fn assignment(doctor: &str) -> DoctorAssignment {
    DoctorAssignment {
        doctor_id: doctor.into(),
        requested_items: Vec::new(),
    }
}

/// The specialists a case shows as active.
fn specialists(device: &Device, case_id: &str) -> Vec<String> {
    let detail = device.get_case(case_id.into()).unwrap();
    detail
        .assignments
        .into_iter()
        .filter(|a| a.role == "specialist" && a.active)
        .map(|a| a.doctor_id)
        .collect()
}

#[test]
fn a_coordinators_assignment_shows_at_once_and_a_server_refusal_rolls_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::open(config(&dir, "EMP10", Role::Doctor)).unwrap();
    let case_id = uuid::Uuid::now_v7().to_string();
    apply_answer(
        &device,
        &super::sync::Batch::empty(),
        vec![],
        vec![paid_case_record(&case_id)],
    );
    assert_eq!(
        device.get_case(case_id.clone()).unwrap().status,
        "payment_successful"
    );

    // What the device can know is refused at once, with nothing queued.
    for (doctors, expected) in [
        (vec![], RefusalCode::NoDoctors),
        (
            vec![assignment("EMP11"), assignment("EMP11")],
            RefusalCode::DoctorAlreadyAssigned,
        ),
        (vec![assignment("EMP10")], RefusalCode::DoctorIsCoordinator),
    ] {
        let err = device.assign_doctors(case_id.clone(), doctors).unwrap_err();
        assert_eq!(code(err), expected.to_string());
    }
    let err = device
        .unassign_doctor(case_id.clone(), "EMP11".into())
        .unwrap_err();
    assert_eq!(code(err), RefusalCode::InvalidStatus.to_string());
    assert_eq!(device.pending_op_count().unwrap(), 0);

    // Eligibility is the server's to know: assumed, so the expected result shows at once, and
    // a command that needs it (a request on an assigned case) replays on top of it.
    device
        .assign_doctors(
            case_id.clone(),
            vec![assignment("EMP11"), assignment("EMP12")],
        )
        .unwrap();
    let request_id = device
        .request_documents(case_id.clone(), vec!["Pathology report".into()])
        .unwrap();
    let detail = device.get_case(case_id.clone()).unwrap();
    assert_eq!(
        (detail.status.as_str(), detail.pending_ops),
        ("doctors_assigned", 2)
    );
    assert_eq!(specialists(&device, &case_id), ["EMP11", "EMP12"]);
    assert_eq!(detail.document_requests[0].request_id, request_id);
    assert_eq!(
        device.list_cases().unwrap()[0].status,
        "doctors_assigned",
        "the list shows it too"
    );

    // The server says EMP12 may not review this category: back to the server's state, the
    // refusal kept; the request, refused after it, is gone too.
    let batch = device.prepare_push().unwrap();
    let not_eligible: Outcome = Refusal::new(RefusalCode::DoctorNotEligible).into();
    let invalid: Outcome = Refusal::new(RefusalCode::InvalidStatus).into();
    apply_answer(&device, &batch, vec![not_eligible, invalid], vec![]);
    let detail = device.get_case(case_id.clone()).unwrap();
    assert_eq!(
        (detail.status.as_str(), detail.pending_ops),
        ("payment_successful", 0)
    );
    assert!(specialists(&device, &case_id).is_empty());
    assert!(detail.document_requests.is_empty());
    let refusals = device.refusals().unwrap();
    assert_eq!(
        (refusals[0].what.as_str(), refusals[0].code.as_str()),
        ("assign_doctors", "doctor_not_eligible")
    );
}
