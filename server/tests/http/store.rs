//! The store test suite, run on SQLite and on PostgreSQL alike (DESIGN §4: every store test runs
//! on both). Each scenario is an async fn over a fresh `Store`; `on_both!` makes one test per
//! backend.

use crate::support::TestPg;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use sop_core::actor::Actor;
use sop_core::case::{Gender, Intake, Status};
use sop_core::catalog::{CoordinatorMapping, DiseaseCategory, DoctorProfile, ReviewType};
use sop_core::command::Command;
use sop_core::ids::{CaseId, CategoryId, MappingId, PaymentId, ReviewTypeId, UserId};
use sop_core::refusal::RefusalCode;
use sop_core::rules::Limits;
use sop_server::config::DatabaseConfig;
use sop_server::db::Db;
use sop_server::store::{AuditMeta, CaseFilter, Page, Store, StoreError};
use uuid::Uuid;

const RT: ReviewTypeId = ReviewTypeId(Uuid::from_u128(0x7001));
const DC: CategoryId = CategoryId(Uuid::from_u128(0xdc01));

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0)
        .single()
        .expect("valid time")
}

async fn sqlite() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::connect(&DatabaseConfig::Sqlite {
        path: dir.path().join("sop.db"),
    })
    .await
    .expect("sqlite");
    db.migrate().await.expect("migrate");
    (Store::new(db), dir)
}

async fn postgres() -> (Store, TestPg) {
    let pg = TestPg::create().await;
    let db = Db::connect(&DatabaseConfig::Postgres(
        sop_server::config::SecretUrl::new(pg.url.clone()),
    ))
    .await
    .expect("postgres");
    db.migrate().await.expect("migrate");
    (Store::new(db), pg)
}

macro_rules! on_both {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test]
                async fn sqlite() {
                    let (store, _guard) = super::sqlite().await;
                    super::$scenario(&store).await;
                }

                #[tokio::test]
                async fn postgres() {
                    let (store, _guard) = super::postgres().await;
                    super::$scenario(&store).await;
                }
            }
        )*
    };
}

on_both!(
    commands_store_state_events_and_audit,
    refused_commands_change_nothing_but_are_audited,
    concurrent_commands_on_one_case_all_apply_in_some_order,
    catalog_round_trips_and_pages,
    coordinator_mapping_rules_apply,
    case_lists_filter_by_patient_doctor_and_status,
    audit_chain_detects_tampering,
    drafts_are_permission_checked_and_frozen_with_submit,
);

fn admin_meta() -> AuditMeta {
    AuditMeta {
        user_id: Some("A1".into()),
        role: "admin".into(),
        ..AuditMeta::default()
    }
}

fn meta(actor: &Actor) -> AuditMeta {
    AuditMeta {
        user_id: actor.user_id().map(|u| u.to_string()),
        role: actor.kind().into(),
        request_id: Some("req-1".into()),
        ..AuditMeta::default()
    }
}

async fn seed(store: &Store) {
    let rt = ReviewType {
        rt_id: RT,
        title_en: "Standard".into(),
        title_ar: "قياسي".into(),
        description_en: String::new(),
        description_ar: String::new(),
        duration_en: "5-7 days".into(),
        duration_ar: "٥-٧ أيام".into(),
        price: 150_000,
        currency: "SAR".into(),
        expected_review_days: 7,
        icon: "star".into(),
        active: true,
        created_at: t0(),
    };
    store
        .save_review_type(&rt, &admin_meta(), t0())
        .await
        .expect("rt");
    let dc = DiseaseCategory {
        dc_id: DC,
        label_en: "Oncology".into(),
        label_ar: "الأورام".into(),
        active: true,
        doctor_ids: vec!["EMP11".into(), "EMP12".into()],
    };
    store
        .save_category(&dc, &admin_meta(), t0())
        .await
        .expect("dc");
    let mapping = CoordinatorMapping {
        cc_id: MappingId(Uuid::from_u128(0xcc01)),
        speciality_id: DC,
        doctor_ids: vec!["EMP10".into()],
        active: true,
    };
    store
        .save_mapping(&mapping, &admin_meta(), t0())
        .await
        .expect("mapping");
    for id in ["EMP10", "EMP11", "EMP12"] {
        let doctor = DoctorProfile {
            doctor_id: id.into(),
            name_en: format!("Dr {id}"),
            name_ar: format!("د. {id}"),
            phone: "+966".into(),
            email: format!("{id}@example.org"),
            specialties: vec![DC],
        };
        store
            .save_doctor(&doctor, &admin_meta(), t0())
            .await
            .expect("doctor");
    }
}

fn intake() -> Intake {
    Intake {
        patient_age: Some(40),
        patient_gender: Some(Gender::Female),
        medical_history: "History".into(),
        questions: "Questions".into(),
    }
}

async fn run(
    store: &Store,
    case: CaseId,
    actor: &Actor,
    command: Command,
) -> Result<Status, StoreError> {
    store
        .execute(
            case,
            &command,
            actor,
            &meta(actor),
            &Limits::default(),
            t0(),
        )
        .await
        .map(|done| done.case.status)
}

async fn new_case(store: &Store, patient: &str, submit: bool) -> CaseId {
    let case_id = CaseId::new_v7();
    let command = Command::CreateCase {
        case_id,
        rt_id: RT,
        dc_id: DC,
        intake: intake(),
        submit,
    };
    run(store, case_id, &Actor::Patient(patient.into()), command)
        .await
        .expect("create");
    case_id
}

/// Submitted → coordinator EMP10 → paid → EMP11 and EMP12 assigned.
async fn assigned_case(store: &Store, patient: &str) -> CaseId {
    let case = new_case(store, patient, true).await;
    let admin = Actor::Admin("A1".into());
    let payment_id = PaymentId::new_v7();
    run(
        store,
        case,
        &admin,
        Command::AssignCoordinator {
            doctor_id: "EMP10".into(),
            payment_id,
            requested_documents: None,
        },
    )
    .await
    .expect("assign coordinator");
    run(
        store,
        case,
        &Actor::PaymentPlatform,
        Command::PaymentSucceeded {
            payment_id,
            amount: 150_000,
            currency: "SAR".into(),
        },
    )
    .await
    .expect("paid");
    let doctors = ["EMP11", "EMP12"]
        .iter()
        .map(|d| sop_core::command::DoctorToAssign {
            doctor_id: UserId::from(*d),
            requested_documents: None,
        })
        .collect();
    run(
        store,
        case,
        &Actor::Doctor("EMP10".into()),
        Command::AssignDoctors { doctors },
    )
    .await
    .expect("assign doctors");
    case
}

async fn commands_store_state_events_and_audit(store: &Store) {
    seed(store).await;
    let case = assigned_case(store, "P1").await;
    let stored = store.case(case).await.unwrap().expect("case stored");
    assert_eq!(stored.status, Status::DoctorsAssigned);
    assert_eq!(stored.due_at, Some(t0() + TimeDelta::days(7)));

    // Replaying the stored events rebuilds the stored state exactly.
    let events = store.case_events(case).await.unwrap();
    assert_eq!(sop_core::rules::replay(&events), Some(stored.clone()));

    // The payment is findable by id (callbacks), outbox rows exist for the effects.
    let payment = stored.current_payment().unwrap().payment_id;
    assert_eq!(store.case_of_payment(payment).await.unwrap(), Some(case));
    let outbox = store
        .list_outbox(
            &sop_server::store::OutboxFilter::default(),
            Page::new(None, Some(100)),
        )
        .await
        .unwrap();
    let kinds: Vec<&str> = outbox.items.iter().map(|o| o.kind.as_str()).collect();
    assert!(
        kinds.contains(&"create_payment") && kinds.contains(&"invoice"),
        "{kinds:?}"
    );

    // Notifications: admins for the submission, both doctors and the patient for the assignment.
    let admins = store
        .list_notifications(&["*admins".into()], Page::new(None, None))
        .await
        .unwrap();
    assert_eq!(admins.total, 1);
    assert_eq!(admins.items[0].kind, "case_submitted");
    let patient = store
        .list_notifications(&["P1".into()], Page::new(None, None))
        .await
        .unwrap();
    let kinds: Vec<&str> = patient.items.iter().map(|n| n.kind.as_str()).collect();
    assert!(kinds.contains(&"coordinator_assigned") && kinds.contains(&"doctors_assigned"));
    assert!(patient.items.iter().all(|n| !n.body_en.contains("History")));

    // One audit row per command, chained.
    let report = store.verify_audit_chain().await.unwrap();
    assert_eq!(report.broken_at, None);
    assert!(
        report.rows >= 4 + 6,
        "catalog writes and four commands: {}",
        report.rows
    );
}

async fn refused_commands_change_nothing_but_are_audited(store: &Store) {
    seed(store).await;
    let case = new_case(store, "P1", false).await;
    let before = store.case(case).await.unwrap();
    let events_before = store.case_events(case).await.unwrap().len();
    let err = run(
        store,
        case,
        &Actor::Patient("P2".into()),
        Command::SubmitCase,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, StoreError::Refused(ref r) if r.code == RefusalCode::CaseNotFound),
        "{err:?}"
    );
    let err = run(
        store,
        case,
        &Actor::Admin("A1".into()),
        Command::Reject { reason: "x".into() },
    )
    .await
    .unwrap_err();
    assert!(matches!(err, StoreError::Refused(ref r) if r.code == RefusalCode::InvalidStatus));
    assert_eq!(store.case(case).await.unwrap(), before);
    assert_eq!(store.case_events(case).await.unwrap().len(), events_before);
    let audit = store
        .list_audit(
            &sop_server::store::AuditFilter {
                case_id: Some(case.0),
                ..Default::default()
            },
            Page::new(None, None),
        )
        .await
        .unwrap();
    let outcomes: Vec<&str> = audit.items.iter().map(|a| a.outcome.as_str()).collect();
    assert!(outcomes.contains(&"refused:case_not_found"), "{outcomes:?}");
    assert!(outcomes.contains(&"refused:invalid_status"), "{outcomes:?}");
}

async fn concurrent_commands_on_one_case_all_apply_in_some_order(store: &Store) {
    seed(store).await;
    let case = assigned_case(store, "P1").await;
    let coordinator = Actor::Doctor("EMP10".into());
    let mut tasks = Vec::new();
    for i in 0..12 {
        let store = store.clone();
        let coordinator = coordinator.clone();
        tasks.push(tokio::spawn(async move {
            let request = sop_core::command::RequestSpec {
                request_id: sop_core::ids::RequestId::new_v7(),
                items: vec![format!("scan {i}")],
            };
            run(
                &store,
                case,
                &coordinator,
                Command::RequestDocuments { request },
            )
            .await
        }));
    }
    for task in tasks {
        task.await.unwrap().expect("every request applies");
    }
    let stored = store.case(case).await.unwrap().unwrap();
    assert_eq!(stored.document_requests.len(), 12);
    let events = store.case_events(case).await.unwrap();
    assert_eq!(sop_core::rules::replay(&events), Some(stored));
}

async fn catalog_round_trips_and_pages(store: &Store) {
    seed(store).await;
    for i in 0..20 {
        let rt = ReviewType {
            rt_id: ReviewTypeId(Uuid::from_u128(0x8000 + i)),
            title_en: format!("Type {i}"),
            title_ar: format!("نوع {i}"),
            description_en: String::new(),
            description_ar: String::new(),
            duration_en: String::new(),
            duration_ar: String::new(),
            price: 100,
            currency: "SAR".into(),
            expected_review_days: 3,
            icon: String::new(),
            active: i % 2 == 0,
            created_at: t0() + TimeDelta::minutes(i as i64),
        };
        store
            .save_review_type(&rt, &admin_meta(), t0())
            .await
            .unwrap();
    }
    let all = store
        .list_review_types(false, Page::new(Some(2), Some(15)))
        .await
        .unwrap();
    assert_eq!(all.total, 21);
    assert_eq!(all.items.len(), 6);
    let active = store
        .list_review_types(true, Page::new(None, Some(100)))
        .await
        .unwrap();
    assert_eq!(active.total, 11);
    assert_eq!(active.items[0].title_en, "Type 18", "newest first");
    let rt = store.review_type(RT).await.unwrap().unwrap();
    assert_eq!(rt.title_ar, "قياسي");
    assert_eq!(rt.created_at, t0());
    let bad = ReviewType {
        currency: "sar".into(),
        ..rt
    };
    assert!(matches!(
        store.save_review_type(&bad, &admin_meta(), t0()).await,
        Err(StoreError::Refused(r)) if r.code == RefusalCode::FieldInvalid
    ));
    let doctors = store
        .list_doctors(Some("emp1"), Page::new(None, None))
        .await
        .unwrap();
    assert_eq!(doctors.total, 3);
    let one = store
        .list_doctors(Some("EMP11"), Page::new(None, None))
        .await
        .unwrap();
    assert_eq!(one.total, 1);
    assert_eq!(one.items[0].name_ar, "د. EMP11");
}

async fn coordinator_mapping_rules_apply(store: &Store) {
    seed(store).await;
    let second = CoordinatorMapping {
        cc_id: MappingId(Uuid::from_u128(0xcc02)),
        speciality_id: DC,
        doctor_ids: vec!["EMP12".into()],
        active: true,
    };
    assert!(matches!(
        store.save_mapping(&second, &admin_meta(), t0()).await,
        Err(StoreError::Refused(r)) if r.code == RefusalCode::MappingExists
    ));
    let unknown = CoordinatorMapping {
        speciality_id: CategoryId(Uuid::from_u128(0xdead)),
        ..second.clone()
    };
    assert!(matches!(
        store.save_mapping(&unknown, &admin_meta(), t0()).await,
        Err(StoreError::Refused(r)) if r.code == RefusalCode::MappingCategoryInvalid
    ));
    let mut edited = store
        .mapping(MappingId(Uuid::from_u128(0xcc01)))
        .await
        .unwrap()
        .unwrap();
    edited.doctor_ids.push("EMP12".into());
    store
        .save_mapping(&edited, &admin_meta(), t0())
        .await
        .unwrap();
    let found = store
        .list_mappings(Some("emp12"), Page::new(None, None))
        .await
        .unwrap();
    assert_eq!(found.total, 1);
    let by_category = store
        .list_mappings(Some(&DC.to_string()), Page::new(None, None))
        .await
        .unwrap();
    assert_eq!(by_category.total, 1);
}

async fn case_lists_filter_by_patient_doctor_and_status(store: &Store) {
    seed(store).await;
    let assigned = assigned_case(store, "P1").await;
    let draft = new_case(store, "P1", false).await;
    let other = new_case(store, "P2", true).await;
    let ids = |page: sop_server::store::Paged<sop_core::Case>| -> Vec<CaseId> {
        page.items.iter().map(|c| c.case_id).collect()
    };
    let page = Page::new(None, None);
    let p1 = store
        .list_cases(
            &CaseFilter {
                patient_id: Some("P1".into()),
                ..Default::default()
            },
            page,
        )
        .await
        .unwrap();
    assert_eq!(p1.total, 2);
    assert!(ids(p1).contains(&draft));
    let specialist = store
        .list_cases(
            &CaseFilter {
                doctor_id: Some("EMP11".into()),
                ..Default::default()
            },
            page,
        )
        .await
        .unwrap();
    assert_eq!(ids(specialist), vec![assigned]);
    let coordinating = store
        .list_cases(
            &CaseFilter {
                doctor_id: Some("EMP10".into()),
                doctor_is_coordinator: Some(true),
                ..Default::default()
            },
            page,
        )
        .await
        .unwrap();
    assert_eq!(ids(coordinating), vec![assigned]);
    let reviewing_as_coordinator = store
        .list_cases(
            &CaseFilter {
                doctor_id: Some("EMP10".into()),
                doctor_is_coordinator: Some(false),
                ..Default::default()
            },
            page,
        )
        .await
        .unwrap();
    assert_eq!(reviewing_as_coordinator.total, 0);
    let submitted = store
        .list_cases(
            &CaseFilter {
                status: Some("submitted".into()),
                ..Default::default()
            },
            page,
        )
        .await
        .unwrap();
    assert_eq!(ids(submitted), vec![other]);
    let by_id = store
        .list_cases(
            &CaseFilter {
                q: Some(draft.to_string()),
                ..Default::default()
            },
            page,
        )
        .await
        .unwrap();
    assert_eq!(ids(by_id), vec![draft]);
}

async fn audit_chain_detects_tampering(store: &Store) {
    seed(store).await;
    new_case(store, "P1", true).await;
    assert_eq!(store.verify_audit_chain().await.unwrap().broken_at, None);
    let tamper = "UPDATE audit_log SET action = 'nothing' WHERE seq = 3";
    match store.db() {
        Db::Postgres(pool) => sqlx::query(tamper).execute(pool).await.map(|_| ()),
        Db::Sqlite(pool) => sqlx::query(tamper).execute(pool).await.map(|_| ()),
    }
    .unwrap();
    assert_eq!(store.verify_audit_chain().await.unwrap().broken_at, Some(3));
}

async fn drafts_are_permission_checked_and_frozen_with_submit(store: &Store) {
    use sop_core::access::ContentKind;
    use sop_core::content::{Content, ContentDoc, DocRef, opinion};
    seed(store).await;
    let case = assigned_case(store, "P1").await;
    let d1 = Actor::Doctor("EMP11".into());
    let doc = DocRef::new(case, ContentKind::Opinion("EMP11".into()));
    let limits = Limits::default();
    let edit = |d: &mut ContentDoc| {
        opinion::set_summary(d, "Agree")?;
        opinion::set_diagnosis(d, "Benign")
    };
    store
        .edit_content(&doc, &edit, &d1, &meta(&d1), &limits, t0())
        .await
        .unwrap();
    let other = Actor::Doctor("EMP12".into());
    assert!(matches!(
        store.edit_content(&doc, &edit, &other, &meta(&other), &limits, t0()).await,
        Err(StoreError::Refused(r)) if r.code == RefusalCode::Forbidden
    ));
    let stranger = Actor::Doctor("EMP99".into());
    assert!(matches!(
        store.edit_content(&doc, &edit, &stranger, &meta(&stranger), &limits, t0()).await,
        Err(StoreError::Refused(r)) if r.code == RefusalCode::CaseNotFound
    ));
    // The command's own text is ignored: the submitted opinion is the document's.
    let opinion = sop_core::command::OpinionContent {
        summary: "Something else".into(),
        ..Default::default()
    };
    store
        .execute(
            case,
            &Command::SubmitOpinion { opinion },
            &d1,
            &meta(&d1),
            &limits,
            t0(),
        )
        .await
        .unwrap();
    let draft = store.content(&doc).await.unwrap().unwrap();
    assert!(draft.frozen_at.is_some());
    let Content::Opinion(saved) = draft.content else {
        panic!("an opinion")
    };
    assert_eq!(
        (saved.summary.as_str(), saved.diagnosis.as_str()),
        ("Agree", "Benign")
    );
    assert!(matches!(
        store.edit_content(&doc, &edit, &d1, &meta(&d1), &limits, t0()).await,
        Err(StoreError::Refused(r)) if r.code == RefusalCode::OpinionAlreadySubmitted
    ));
}
