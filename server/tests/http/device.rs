//! The device layer of sop-core (`sop_core::device`, issue #5) against the real `sop-server`
//! binary over HTTP, on SQLite and PostgreSQL: a phone's SQLite store and blocking sync client,
//! exactly as the bindings use them.
//!
//! - an offline draft (server unreachable) with an attached file, kept across reopening, then
//!   synced: the admin sees the submitted case and its document;
//! - two phones of a patient typing into one draft converge;
//! - a change the server refuses rolls the document back and keeps a recovered draft;
//! - a coordinator's device assigns doctors, a specialist's device holds the case, and after
//!   the unassignment it purges everything of it;
//! - an interrupted upload continues from the server's `received` offset.
//!
//! Device calls block (reqwest's blocking client), so they run on `spawn_blocking`.

use crate::support::{ServerOptions, TestPg, TestServer, mint_token};
use serde_json::{Value, json};
use sop_core::device::{
    Device, DeviceConfig, DeviceError, DoctorAssignment, IntakeEdit, Role, SyncReport,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ADMIN: &str = "A1";
const PATIENT: &str = "P1";
const C1: &str = "EMP21";
const S1: &str = "EMP31";
const S2: &str = "EMP32";
const USERS: [(&str, &str); 5] = [
    (ADMIN, "snr_dash"),
    (PATIENT, "snr_usr"),
    (C1, "snr_pro"),
    (S1, "snr_pro"),
    (S2, "snr_pro"),
];
const HISTORY: &str = "Persistent cough since January";

/// Runs a blocking device call off the runtime's threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// A running server, its users' tokens, and a directory for the phones' stores.
struct World {
    server: TestServer,
    tokens: HashMap<&'static str, String>,
    phones: tempfile::TempDir,
    _dir: tempfile::TempDir,
    _pg: Option<TestPg>,
    rt_id: String,
    dc_id: String,
}

impl World {
    async fn start(postgres: bool) -> Self {
        let pg = if postgres {
            Some(TestPg::create().await)
        } else {
            None
        };
        let dir = tempfile::tempdir().unwrap();
        let server = TestServer::start(
            dir.path(),
            ServerOptions {
                database_url: pg.as_ref().map(|pg| pg.url.clone()),
                ..ServerOptions::default()
            },
        )
        .await;
        let tokens = USERS
            .iter()
            .map(|&(sub, aud)| (sub, mint_token(dir.path(), sub, aud)))
            .collect();
        let mut world = World {
            server,
            tokens,
            phones: tempfile::tempdir().unwrap(),
            _dir: dir,
            _pg: pg,
            rt_id: String::new(),
            dc_id: String::new(),
        };
        world.catalog().await;
        world
    }

    async fn ok(&self, path: &str, who: &str, body: Value) -> Value {
        let reply = self
            .server
            .post(path, Some(&self.tokens[who]), Some(&body.to_string()))
            .await;
        assert_eq!(
            (reply.status, reply.code()),
            (200, 1000),
            "{path}: {reply:?}"
        );
        reply.body["data"].clone()
    }

    /// A review type, a category with specialists S1 and S2, the doctors, coordinator C1.
    async fn catalog(&mut self) {
        let rt = self
            .ok(
                "/admin/save-reviewtype",
                ADMIN,
                json!({
                    "title_en": "Standard review", "title_ar": "مراجعة قياسية",
                    "description_en": "A second opinion", "description_ar": "رأي طبي ثانٍ",
                    "duration_en": "5–7 days", "duration_ar": "5–7 أيام",
                    "price": 150_000, "currency": "SAR", "expected_review_days": 7,
                    "icon": "clock",
                }),
            )
            .await;
        let dc = self
            .ok(
                "/admin/save-disease-category",
                ADMIN,
                json!({"label_en": "Pulmonology", "label_ar": "أمراض الرئة", "doctor_ids": [S1, S2]}),
            )
            .await;
        self.rt_id = rt["rt_id"].as_str().unwrap().to_owned();
        self.dc_id = dc["dc_id"].as_str().unwrap().to_owned();
        for doctor in [C1, S1, S2] {
            self.ok(
                "/admin/save-doctor",
                ADMIN,
                json!({
                    "doctor_id": doctor, "name_en": format!("Dr {doctor}"),
                    "name_ar": format!("د. {doctor}"), "phone": "+966500000000",
                    "email": format!("{doctor}@example.org"), "specialties": [self.dc_id],
                }),
            )
            .await;
        }
        self.ok(
            "/admin/save-case-coordinators",
            ADMIN,
            json!({"speciality_id": self.dc_id, "doctor_ids": [C1]}),
        )
        .await;
    }

    /// A phone of `who` with its own store file `name` (reopening the same name reopens it).
    fn phone_at(&self, who: &str, name: &str, url: &str) -> Arc<Device> {
        let role = if who.starts_with("EMP") {
            Role::Doctor
        } else {
            Role::Patient
        };
        Arc::new(
            Device::open(DeviceConfig {
                db_path: self.store_path(name).to_string_lossy().into_owned(),
                server_url: url.to_owned(),
                user_id: who.to_owned(),
                role,
                token: self.tokens[who].clone(),
                lang: "en".into(),
            })
            .unwrap(),
        )
    }

    fn phone(&self, who: &str, name: &str) -> Arc<Device> {
        self.phone_at(who, name, &self.server.base_url)
    }

    fn store_path(&self, name: &str) -> PathBuf {
        self.phones.path().join(format!("{name}.db"))
    }

    async fn details(&self, case_id: &str) -> Value {
        self.ok("/admin/case-details", ADMIN, json!({"case_id": case_id}))
            .await
    }

    /// The case's status from the (unaudited) admin list.
    async fn status(&self, case_id: &str) -> String {
        let listed = self
            .ok("/admin/list-cases", ADMIN, json!({"q": case_id}))
            .await;
        listed
            .as_array()
            .and_then(|cases| cases.iter().find(|c| c["case_id"] == case_id))
            .and_then(|c| c["status"].as_str())
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits (polling, with a deadline) until the case has `status`.
    async fn wait_status(&self, case_id: &str, status: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.status(case_id).await != status {
            assert!(Instant::now() < deadline, "timed out waiting for {status}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Takes a submitted case to `payment_successful`: coordinator C1, sandbox payment.
    async fn pay(&self, case_id: &str) {
        self.ok(
            "/admin/assign-coordinator",
            ADMIN,
            json!({"case_id": case_id, "doctor_id": C1}),
        )
        .await;
        let deadline = Instant::now() + Duration::from_secs(20);
        let link = loop {
            let summary = self
                .ok("/app/payment-summary", PATIENT, json!({"case_id": case_id}))
                .await;
            if let Some(link) = summary["payment_link"].as_str() {
                break link.to_owned();
            }
            assert!(Instant::now() < deadline, "no payment link");
            tokio::time::sleep(Duration::from_millis(25)).await;
        };
        let resp = self
            .server
            .client
            .post(&link)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("result=success")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        self.wait_status(case_id, "payment_successful").await;
    }
}

async fn sync(device: &Arc<Device>) -> SyncReport {
    let d = device.clone();
    blocking(move || d.sync()).await.unwrap()
}

fn full_intake() -> IntakeEdit {
    IntakeEdit {
        patient_age: Some(61),
        patient_gender: Some("male".into()),
        medical_history: Some(HISTORY.into()),
        questions: Some("Is a biopsy needed?".into()),
    }
}

/// A small PDF-looking file of `size` bytes.
fn pdf(dir: &Path, name: &str, size: usize) -> PathBuf {
    let mut bytes = b"%PDF-1.7\n".to_vec();
    let mut x: u32 = 7;
    while bytes.len() < size {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        bytes.push((x >> 16) as u8);
    }
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Two phones of the patient, both synced on a draft phone A created.
async fn two_phones_on_a_draft(w: &World) -> (Arc<Device>, Arc<Device>, String) {
    let a = w.phone(PATIENT, "a");
    let b = w.phone(PATIENT, "b");
    let (rt, dc) = (w.rt_id.clone(), w.dc_id.clone());
    let pa = a.clone();
    let case_id = blocking(move || pa.create_case(rt, dc, full_intake(), false).unwrap()).await;
    sync(&a).await;
    sync(&b).await;
    (a, b, case_id)
}

macro_rules! on_both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread")]
            async fn sqlite() {
                super::$name(super::World::start(false).await).await;
            }

            #[tokio::test(flavor = "multi_thread")]
            async fn postgres() {
                super::$name(super::World::start(true).await).await;
            }
        }
    };
}

async fn an_offline_draft_with_a_file_syncs_once_online(w: World) {
    // Offline: nothing listens on port 9.
    let phone = w.phone_at(PATIENT, "p", "http://127.0.0.1:9");
    let (rt, dc) = (w.rt_id.clone(), w.dc_id.clone());
    let file = pdf(w.phones.path(), "xray.pdf", 70_000);
    let p = phone.clone();
    let case_id = blocking(move || {
        let case_id = p.create_case(rt, dc, IntakeEdit::default(), false).unwrap();
        p.edit_intake(case_id.clone(), full_intake()).unwrap();
        p.attach_document(
            case_id.clone(),
            file.to_string_lossy().into(),
            "xray.pdf".into(),
            None,
            None,
        )
        .unwrap();
        p.submit_case(case_id.clone()).unwrap();
        assert!(matches!(p.sync(), Err(DeviceError::Offline { .. })));
        case_id
    })
    .await;
    assert_eq!(phone.pending_op_count().unwrap(), 4);
    drop(phone);

    // The app restarts, online now: everything is still there, then synced.
    let phone = w.phone(PATIENT, "p");
    let listed = phone.list_cases().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].status.as_str(), listed[0].pending_ops),
        ("submitted", 4)
    );
    let report = sync(&phone).await;
    assert_eq!(
        (
            report.pushed,
            report.applied,
            report.refused,
            report.uploaded_bytes
        ),
        (4, 4, 0, 70_000),
        "{report:?}"
    );
    assert_eq!(phone.pending_op_count().unwrap(), 0);
    assert!(phone.pending_uploads().unwrap().is_empty());
    let detail = phone.get_case(case_id.clone()).unwrap();
    assert_eq!(detail.server_status.as_deref(), Some("submitted"));
    assert_eq!(detail.documents.len(), 1);
    assert!(detail.documents[0].uploaded);
    assert!(
        phone
            .catalog_json()
            .unwrap()
            .unwrap()
            .contains("Standard review")
    );

    let admin = w.details(&case_id).await;
    assert_eq!(admin["status"], "submitted");
    assert_eq!(admin["medical_history"], HISTORY);
    assert_eq!(admin["documents"][0]["file_name"], "xray.pdf");
    assert_eq!(admin["documents"][0]["content_type"], "application/pdf");
    // A second sync finds nothing to do.
    let again = sync(&phone).await;
    assert_eq!((again.pushed, again.refused), (0, 0));
}
on_both!(an_offline_draft_with_a_file_syncs_once_online);

async fn two_phones_typing_into_one_draft_converge(w: World) {
    let (a, b, case_id) = two_phones_on_a_draft(&w).await;
    assert_eq!(b.intake(case_id.clone()).unwrap().medical_history, HISTORY);
    a.edit_intake(
        case_id.clone(),
        IntakeEdit {
            medical_history: Some(format!("{HISTORY}, worse at night")),
            ..IntakeEdit::default()
        },
    )
    .unwrap();
    b.edit_intake(
        case_id.clone(),
        IntakeEdit {
            questions: Some("Is a biopsy needed? Which hospital?".into()),
            ..IntakeEdit::default()
        },
    )
    .unwrap();
    assert_eq!(sync(&b).await.applied, 1);
    assert_eq!(sync(&a).await.applied, 1);
    sync(&b).await;
    let (ia, ib) = (
        a.intake(case_id.clone()).unwrap(),
        b.intake(case_id.clone()).unwrap(),
    );
    assert_eq!(ia, ib);
    assert_eq!(ia.medical_history, format!("{HISTORY}, worse at night"));
    assert_eq!(ia.questions, "Is a biopsy needed? Which hospital?");
    let admin = w.details(&case_id).await;
    assert_eq!(admin["questions"], "Is a biopsy needed? Which hospital?");
}
on_both!(two_phones_typing_into_one_draft_converge);

async fn a_refused_edit_rolls_back_and_keeps_a_recovered_draft(w: World) {
    let (a, b, case_id) = two_phones_on_a_draft(&w).await;
    // Phone B submits; phone A, not knowing, keeps typing.
    b.submit_case(case_id.clone()).unwrap();
    sync(&b).await;
    a.edit_intake(
        case_id.clone(),
        IntakeEdit {
            questions: Some("Typed after the other phone submitted".into()),
            ..IntakeEdit::default()
        },
    )
    .unwrap();
    let report = sync(&a).await;
    assert_eq!(report.refused, 1, "{report:?}");
    let drafts = a.recovered_drafts().unwrap();
    assert_eq!(drafts.len(), 1);
    assert_eq!(drafts[0].fields, vec!["questions".to_owned()]);
    assert!(
        drafts[0]
            .content_json
            .contains("Typed after the other phone submitted")
    );
    assert!(!drafts[0].message_en.is_empty() && !drafts[0].message_ar.is_empty());
    assert_eq!(a.refusals().unwrap()[0].what, "content:intake");
    // Back to the server's text and status.
    assert_eq!(
        a.intake(case_id.clone()).unwrap().questions,
        "Is a biopsy needed?"
    );
    let detail = a.get_case(case_id.clone()).unwrap();
    assert_eq!(
        (detail.status.as_str(), detail.pending_ops),
        ("submitted", 0)
    );
    // A local command the rules refuse never reaches the server.
    let err = a
        .edit_intake(
            case_id,
            IntakeEdit {
                questions: Some("again".into()),
                ..IntakeEdit::default()
            },
        )
        .unwrap_err();
    assert!(matches!(err, DeviceError::Refused { ref code, .. } if code == "invalid_status"));
}
on_both!(a_refused_edit_rolls_back_and_keeps_a_recovered_draft);

async fn an_unassigned_doctor_device_purges_the_case(w: World) {
    let patient = w.phone(PATIENT, "p");
    let (rt, dc) = (w.rt_id.clone(), w.dc_id.clone());
    let p = patient.clone();
    let case_id = blocking(move || p.create_case(rt, dc, full_intake(), true).unwrap()).await;
    sync(&patient).await;
    w.pay(&case_id).await;

    // The coordinator assigns both specialists from their phone.
    let coordinator = w.phone(C1, "c1");
    sync(&coordinator).await;
    assert_eq!(
        coordinator.get_case(case_id.clone()).unwrap().status,
        "payment_successful"
    );
    coordinator
        .assign_doctors(
            case_id.clone(),
            vec![
                DoctorAssignment {
                    doctor_id: S1.into(),
                    requested_items: vec![],
                },
                DoctorAssignment {
                    doctor_id: S2.into(),
                    requested_items: vec![],
                },
            ],
        )
        .unwrap();
    assert_eq!(sync(&coordinator).await.applied, 1);
    w.wait_status(&case_id, "doctors_assigned").await;

    // S1's phone gets the case and writes notes and an opinion draft, synced.
    let s1 = w.phone(S1, "s1");
    sync(&s1).await;
    assert_eq!(
        s1.get_case(case_id.clone()).unwrap().status,
        "doctors_assigned"
    );
    s1.set_notes(case_id.clone(), "Check the CT from March".into())
        .unwrap();
    s1.set_opinion_section(
        case_id.clone(),
        sop_core::device::OpinionSection::Summary,
        "Likely benign".into(),
    )
    .unwrap();
    assert_eq!(sync(&s1).await.applied, 2);
    // Offline typing that will never be pushed.
    s1.set_notes(case_id.clone(), "Check the CT from March and April".into())
        .unwrap();

    // The coordinator unassigns S1; S1's phone purges the case on its next sync.
    sync(&coordinator).await;
    coordinator
        .unassign_doctor(case_id.clone(), S1.into())
        .unwrap();
    assert_eq!(sync(&coordinator).await.applied, 1);
    let report = sync(&s1).await;
    assert_eq!(report.revoked_cases, 1, "{report:?}");
    assert!(s1.list_cases().unwrap().is_empty());
    assert!(matches!(
        s1.get_case(case_id.clone()),
        Err(DeviceError::NotFound { .. })
    ));
    assert_eq!(s1.pending_op_count().unwrap(), 0);
    let conn = rusqlite::Connection::open(w.store_path("s1")).unwrap();
    let left: i64 = conn
        .query_row(
            "SELECT (SELECT count(*) FROM documents WHERE case_id = ?1)
                  + (SELECT count(*) FROM outbox WHERE case_id = ?1)
                  + (SELECT count(*) FROM cases WHERE case_id = ?1)",
            [&case_id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 0);
    // The coordinator still holds it, with S1 inactive.
    let detail = coordinator.get_case(case_id).unwrap();
    assert!(
        detail
            .assignments
            .iter()
            .any(|a| a.doctor_id == S1 && !a.active)
    );
}
on_both!(an_unassigned_doctor_device_purges_the_case);

async fn an_interrupted_upload_continues_where_the_server_stopped(w: World) {
    let phone = w.phone(PATIENT, "p");
    let (rt, dc) = (w.rt_id.clone(), w.dc_id.clone());
    let size = 2_500_000;
    let file = pdf(w.phones.path(), "scan.pdf", size);
    let bytes = std::fs::read(&file).unwrap();
    let p = phone.clone();
    let case_id = blocking(move || {
        let case_id = p.create_case(rt, dc, full_intake(), false).unwrap();
        p.attach_document(
            case_id.clone(),
            file.to_string_lossy().into(),
            "scan.pdf".into(),
            None,
            None,
        )
        .unwrap();
        case_id
    })
    .await;
    let sha = phone.pending_uploads().unwrap()[0].sha256.clone();

    // An earlier attempt got the first megabyte through before the connection dropped.
    let first = 1024 * 1024;
    let resp = w
        .server
        .client
        .patch(w.server.url(&format!("/sync/v1/upload/{sha}")))
        .bearer_auth(&w.tokens[PATIENT])
        .header("upload-offset", "0")
        .header("upload-length", size.to_string())
        .header("content-type", "application/octet-stream")
        .body(bytes[..first].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);

    let report = sync(&phone).await;
    assert_eq!(report.uploaded_bytes, (size - first) as i64, "{report:?}");
    assert_eq!((report.applied, report.refused), (2, 0));
    let admin = w.details(&case_id).await;
    assert_eq!(admin["documents"][0]["size"], size);
    assert_eq!(admin["documents"][0]["sha256"], sha);
}
on_both!(an_interrupted_upload_continues_where_the_server_stopped);

/// Counts what the device tells its app.
#[derive(Default)]
struct Counter {
    hints: std::sync::atomic::AtomicUsize,
    changes: std::sync::Mutex<Vec<Vec<String>>>,
}

impl sop_core::device::ChangeListener for Counter {
    fn changed(&self, case_ids: Vec<String>) {
        self.changes.lock().unwrap().push(case_ids);
    }

    fn sync_hint(&self) {
        self.hints.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

async fn live_hints_reach_the_listener_and_changes_are_announced(w: World) {
    let (a, b, case_id) = two_phones_on_a_draft(&w).await;
    let counter = Arc::new(Counter::default());
    a.set_listener(Some(counter.clone()));
    a.start_live().unwrap();
    let hints = || counter.hints.load(std::sync::atomic::Ordering::SeqCst);
    // One hint on connecting (the app syncs on every reconnect).
    let deadline = Instant::now() + Duration::from_secs(20);
    while hints() < 1 {
        assert!(Instant::now() < deadline, "no hint on connecting");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let connected = hints();
    // Phone B edits and syncs: phone A hears about it.
    b.edit_intake(
        case_id.clone(),
        IntakeEdit {
            questions: Some("Edited on phone B".into()),
            ..IntakeEdit::default()
        },
    )
    .unwrap();
    sync(&b).await;
    while hints() <= connected {
        assert!(
            Instant::now() < deadline,
            "no hint after another phone's change"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The app syncs on the hint; the listener hears which case changed.
    sync(&a).await;
    assert_eq!(
        a.intake(case_id.clone()).unwrap().questions,
        "Edited on phone B"
    );
    assert!(
        counter
            .changes
            .lock()
            .unwrap()
            .iter()
            .any(|ids| ids.contains(&case_id))
    );
    let a2 = a.clone();
    blocking(move || a2.stop_live()).await;
}
on_both!(live_hints_reach_the_listener_and_changes_are_announced);
