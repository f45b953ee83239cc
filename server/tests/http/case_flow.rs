//! A seeded in-process application and the steps that drive a case through its statuses, for
//! the `/app` and `/pro` tests. The endpoints of other groups (admin, payment callbacks, report
//! generation) are stood in for by commands run directly through the store with the actor they
//! would use.
//!
//! Seed: review type [`RT`] (price 50 000 SAR minor units, 5 days), category [`DC`] whose
//! specialists are `S1`, `S2`, `S3`, coordinators `C1`, `C2`; every doctor in the directory.

use crate::support::{TestPg, in_process};
use axum::Router;
use axum::body::Body;
use axum::http::Request;
use chrono::Utc;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use sop_core::actor::Actor;
use sop_core::catalog::{CoordinatorMapping, DiseaseCategory, DoctorProfile, ReviewType};
use sop_core::command::{Command, RequestSpec};
use sop_core::ids::{
    CaseId, CategoryId, MappingId, PaymentId, ReportId, RequestId, ReviewTypeId, UserId,
};
use sop_core::rules::Limits;
use sop_server::AppState;
use sop_server::auth::{Audience, LocalKey};
use sop_server::store::AuditMeta;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;
use uuid::Uuid;

pub const RT: ReviewTypeId = ReviewTypeId(Uuid::from_u128(0x7001));
pub const DC: CategoryId = CategoryId(Uuid::from_u128(0xdc01));
pub const PRICE: i64 = 50_000;

/// A seeded application.
pub struct Flow {
    pub state: AppState,
    pub key: LocalKey,
    pub app: Router,
    // Declared last: dropped after the state that uses them.
    _dir: tempfile::TempDir,
    /// The PostgreSQL database, dropped with the flow.
    _pg: Option<TestPg>,
}

/// A decoded JSON reply.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    /// Asserts success and returns `data`.
    #[track_caller]
    pub fn data(&self) -> &Value {
        assert_eq!(
            (self.status, &self.body["status"]),
            (200, &json!(1000)),
            "{self:?}"
        );
        &self.body["data"]
    }

    /// Asserts a refusal with this HTTP status and core code.
    #[track_caller]
    pub fn refused(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.body["data"]["code"], code, "{self:?}");
        let envelope = if status == 403 { 2000 } else { 1002 };
        assert_eq!(self.body["status"], envelope, "{self:?}");
    }
}

/// A raw reply (downloads).
pub struct Raw {
    pub status: u16,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

fn meta(role: &str, user: Option<&str>) -> AuditMeta {
    AuditMeta {
        user_id: user.map(str::to_owned),
        role: role.to_owned(),
        ..AuditMeta::default()
    }
}

impl Flow {
    /// A seeded application over SQLite.
    pub async fn new() -> Self {
        Self::with_limits(Limits::default()).await
    }

    /// A seeded application over SQLite with these limits.
    pub async fn with_limits(limits: Limits) -> Self {
        let (mut state, key, dir) = in_process().await;
        let mut settings = (*state.settings).clone();
        settings.limits = limits;
        state.settings = Arc::new(settings);
        Self::seeded(state, key, dir, None).await
    }

    /// A seeded application over a fresh PostgreSQL database.
    pub async fn on_postgres() -> Self {
        let pg = TestPg::create().await;
        let db = sop_server::db::Db::connect(&sop_server::config::DatabaseConfig::Postgres(
            sop_server::config::SecretUrl::new(pg.url.clone()),
        ))
        .await
        .expect("postgres");
        db.migrate().await.expect("migrate");
        let (sqlite_state, key, dir) = in_process().await;
        let settings = (*sqlite_state.settings).clone();
        let state = AppState::new(db, sqlite_state.auth.clone(), settings);
        Self::seeded(state, key, dir, Some(pg)).await
    }

    async fn seeded(
        state: AppState,
        key: LocalKey,
        dir: tempfile::TempDir,
        pg: Option<TestPg>,
    ) -> Self {
        let flow = Self {
            app: sop_server::app(state.clone()),
            state,
            key,
            _dir: dir,
            _pg: pg,
        };
        flow.save_review_type(RT, "Standard", true, 0).await;
        let now = Utc::now();
        let admin = meta("admin", Some("A1"));
        let store = &flow.state.store;
        store
            .save_category(
                &DiseaseCategory {
                    dc_id: DC,
                    label_en: "Cardiology".into(),
                    label_ar: "أمراض القلب".into(),
                    active: true,
                    doctor_ids: ["S1", "S2", "S3"].map(UserId::from).to_vec(),
                },
                &admin,
                now,
            )
            .await
            .expect("category");
        store
            .save_mapping(
                &CoordinatorMapping {
                    cc_id: MappingId(Uuid::from_u128(0xcc01)),
                    speciality_id: DC,
                    doctor_ids: ["C1", "C2"].map(UserId::from).to_vec(),
                    active: true,
                },
                &admin,
                now,
            )
            .await
            .expect("mapping");
        for id in ["C1", "C2", "S1", "S2", "S3"] {
            store
                .save_doctor(
                    &DoctorProfile {
                        doctor_id: UserId::from(id),
                        name_en: format!("Dr {id}"),
                        name_ar: format!("د. {id}"),
                        phone: "+966500000000".into(),
                        email: format!("{id}@example.org"),
                        specialties: vec![DC],
                    },
                    &admin,
                    now,
                )
                .await
                .expect("doctor");
        }
        flow
    }

    /// Saves a review type created `age_secs` seconds ago.
    pub async fn save_review_type(
        &self,
        rt_id: ReviewTypeId,
        title: &str,
        active: bool,
        age_secs: i64,
    ) {
        let rt = ReviewType {
            rt_id,
            title_en: title.into(),
            title_ar: format!("{title} (ar)"),
            description_en: "A second opinion".into(),
            description_ar: "رأي ثان".into(),
            duration_en: "5–7 days".into(),
            duration_ar: "5–7 أيام".into(),
            price: PRICE,
            currency: "SAR".into(),
            expected_review_days: 5,
            icon: "star".into(),
            active,
            created_at: Utc::now() - chrono::TimeDelta::seconds(age_secs),
        };
        self.state
            .store
            .save_review_type(&rt, &meta("admin", Some("A1")), Utc::now())
            .await
            .expect("review type");
    }

    /// A bearer token for `sub`.
    pub fn token(&self, sub: &str, aud: Audience) -> String {
        self.key
            .mint(sub, aud, Duration::from_secs(600))
            .expect("token")
    }

    pub fn patient(&self, sub: &str) -> String {
        self.token(sub, Audience::Patient)
    }

    pub fn doctor(&self, sub: &str) -> String {
        self.token(sub, Audience::Doctor)
    }

    /// Sends a request to the application.
    pub async fn send(&self, req: Request<Body>) -> Raw {
        let resp = self.app.clone().oneshot(req).await.expect("infallible");
        let status = resp.status().as_u16();
        let content_type = crate::support::content_type(resp.headers());
        let bytes = resp
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
            .to_vec();
        Raw {
            status,
            content_type,
            bytes,
        }
    }

    fn json_request(path: &str, token: &str, body: &Value, lang: Option<&str>) -> Request<Body> {
        let mut req = Request::post(path)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json");
        if let Some(lang) = lang {
            req = req.header("lang", lang);
        }
        req.body(Body::from(body.to_string())).expect("request")
    }

    /// `POST path` with a JSON body; the reply decoded.
    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.post_lang(path, token, body, None).await
    }

    /// [`Flow::post`] with a `lang` header.
    pub async fn post_lang(
        &self,
        path: &str,
        token: &str,
        body: Value,
        lang: Option<&str>,
    ) -> Reply {
        let raw = self
            .send(Self::json_request(path, token, &body, lang))
            .await;
        let body = serde_json::from_slice(&raw.bytes).unwrap_or_else(|_| {
            panic!(
                "not JSON ({}): {}",
                raw.status,
                String::from_utf8_lossy(&raw.bytes)
            )
        });
        Reply {
            status: raw.status,
            body,
        }
    }

    /// `POST path` with a JSON body, the reply undecoded (downloads).
    pub async fn download(&self, path: &str, token: &str, body: Value) -> Raw {
        self.send(Self::json_request(path, token, &body, None))
            .await
    }

    /// Uploads `bytes` as `file_name` (declared `application/pdf` whatever it is, as a careless
    /// client would) to `case_id`.
    pub async fn upload(
        &self,
        token: &str,
        case_id: &str,
        file_name: &str,
        bytes: &[u8],
        request_id: Option<&str>,
    ) -> Reply {
        let boundary = "sop-test-boundary-7f3a";
        let mut body = Vec::new();
        let mut text = |name: &str, value: &str| {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        };
        text("case_id", case_id);
        if let Some(r) = request_id {
            text("request_id", r);
        }
        text("unknown_field", "ignored");
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n\
                 Content-Type: application/pdf\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let req = Request::post("/app/upload-document")
            .header("authorization", format!("Bearer {token}"))
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(Body::from(body))
            .expect("request");
        let raw = self.send(req).await;
        Reply {
            status: raw.status,
            body: serde_json::from_slice(&raw.bytes).expect("JSON envelope"),
        }
    }

    /// Runs a command as `actor` straight through the store (the other groups' endpoints).
    pub async fn run(&self, case_id: CaseId, command: Command, actor: Actor) {
        let role = actor.kind();
        let user = actor.user_id().map(|u| u.to_string());
        self.state
            .store
            .execute(
                case_id,
                &command,
                &actor,
                &meta(role, user.as_deref()),
                &self.state.settings.limits,
                Utc::now(),
            )
            .await
            .unwrap_or_else(|e| panic!("{} refused: {e}", command.name()));
    }

    /// A case of `patient` created through `/app/create-case`, submitted or a draft.
    pub async fn create_case(&self, patient: &str, submit: bool) -> CaseId {
        let reply = self
            .post(
                "/app/create-case",
                &self.patient(patient),
                json!({
                    "rt_id": RT, "dc_id": DC, "patient_age": 42, "patient_gender": "female",
                    "medical_history": "Chest pain for two months", "questions": "Is surgery needed?",
                    "submit": submit,
                }),
            )
            .await;
        serde_json::from_value(reply.data()["case_id"].clone()).expect("case id")
    }

    /// T4 by admin `A1` with coordinator `C1`, optionally requesting documents; the payment id.
    pub async fn assign_coordinator(
        &self,
        case_id: CaseId,
        documents: Option<RequestId>,
    ) -> PaymentId {
        let payment_id = PaymentId::new_v7();
        let requested_documents = documents.map(|request_id| RequestSpec {
            request_id,
            items: vec!["Latest ECG".into()],
        });
        self.run(
            case_id,
            Command::AssignCoordinator {
                doctor_id: UserId::from("C1"),
                payment_id,
                requested_documents,
            },
            Actor::Admin(UserId::from("A1")),
        )
        .await;
        payment_id
    }

    /// T6: the payment platform reports success.
    pub async fn pay(&self, case_id: CaseId, payment_id: PaymentId) {
        self.run(
            case_id,
            Command::PaymentSucceeded {
                payment_id,
                amount: PRICE,
                currency: "SAR".into(),
            },
            Actor::PaymentPlatform,
        )
        .await;
    }

    /// A paid case of `patient` coordinated by `C1` (`payment_successful`).
    pub async fn paid_case(&self, patient: &str) -> CaseId {
        let case_id = self.create_case(patient, true).await;
        let payment_id = self.assign_coordinator(case_id, None).await;
        self.pay(case_id, payment_id).await;
        case_id
    }

    /// A case of `patient` with specialists `S1` and `S2` assigned by `C1` (`doctors_assigned`).
    pub async fn assigned_case(&self, patient: &str) -> CaseId {
        let case_id = self.paid_case(patient).await;
        self.post(
            "/pro/assign-doctor",
            &self.doctor("C1"),
            json!({"case_id": case_id, "doctor_ids": ["S1", "S2"]}),
        )
        .await
        .data();
        case_id
    }

    /// Submits `doctor`'s opinion through `/pro/submit-opinion`.
    pub async fn submit_opinion(&self, case_id: CaseId, doctor: &str) {
        self.post(
            "/pro/submit-opinion",
            &self.doctor(doctor),
            json!({"case_id": case_id, "summary": format!("Opinion of {doctor}"), "concordance": "agrees"}),
        )
        .await
        .data();
    }

    /// A completed case of `patient` (both opinions and the summary submitted).
    pub async fn completed_case(&self, patient: &str) -> CaseId {
        let case_id = self.assigned_case(patient).await;
        self.submit_opinion(case_id, "S1").await;
        self.submit_opinion(case_id, "S2").await;
        self.post(
            "/pro/submit-summary",
            &self.doctor("C1"),
            json!({"case_id": case_id, "summary": "Final summary"}),
        )
        .await
        .data();
        case_id
    }

    /// Stores `pdf` as the case's report in both languages, as the report generator would.
    pub async fn store_report(&self, case_id: CaseId, pdf: &[u8]) {
        let sha256 = self.state.blobs.put(pdf).await.expect("store report");
        let report_id = ReportId::new_v7();
        let rows: Vec<_> = ["en", "ar"]
            .into_iter()
            .map(|lang| sop_server::store::sql::ReportRow {
                report_id: report_id.0,
                lang: lang.to_owned(),
                case_id: case_id.0,
                sha256: sha256.clone(),
                content_sha256: sha256.clone(),
                created_at: chrono::Utc::now(),
            })
            .collect();
        sop_server::report::record_pdfs(&self.state, &rows)
            .await
            .expect("record report");
        self.run(
            case_id,
            Command::ReportReady { report_id, sha256 },
            Actor::System,
        )
        .await;
    }
}

/// The smallest JPEG header: enough for content detection.
pub const JPEG: &[u8] = &[
    0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0, 1, 1, 0, 0, 1,
];
/// A PDF header.
pub const PDF: &[u8] = b"%PDF-1.7\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n";
