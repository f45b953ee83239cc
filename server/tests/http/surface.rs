//! The whole HTTP surface as test data: every endpoint of the OpenAPI table
//! (`sop_server::openapi::ENDPOINTS`) with the case state it needs, a valid request for that
//! state, and what each kind of caller must get (SPEC §8). Shared by the authorization matrix
//! (`authz`) and the robustness tests (`robustness`).
//!
//! Adding an endpoint: add its row to [`rows`] (the matrix fails for a documented endpoint
//! without one), choosing the [`Fixture`] in which its allowed callers succeed.

use crate::case_flow::{DC, Flow, PDF, RT};
use axum::body::Body;
use axum::http::Request;
use chrono::Utc;
use serde_json::{Value, json};
use sha2::Digest;
use sop_core::actor::Actor;
use sop_core::catalog::DiseaseCategory;
use sop_core::command::Command;
use sop_core::ids::{CaseId, CategoryId, UserId};
use sop_core::rules::Limits;
use sop_server::auth::Audience;
use sop_server::db::Db;
use sop_server::openapi::{ENDPOINTS, Endpoint, Group, Method};
use sop_server::store::AuditMeta;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Mutex;
use tokio::sync::OnceCell;
use uuid::Uuid;

/// The patient who owns the prepared case.
pub const OWNER: &str = "P1";
/// A patient with no case.
pub const OTHER_PATIENT: &str = "P2";
/// A specialist assigned to the prepared case (with `S2`).
pub const SPECIALIST: &str = "S1";
/// An eligible specialist who is not on the prepared case.
pub const OTHER_DOCTOR: &str = "S3";
/// The prepared case's coordinator.
pub const COORDINATOR: &str = "C1";
/// The admin.
pub const ADMIN: &str = "A1";

/// The mapping of the seeded category ([`crate::case_flow`] seeds it with this id).
pub const MAPPING: Uuid = Uuid::from_u128(0xcc01);
/// An active category without a coordinator mapping (so a mapping can be created for it).
pub const FREE_CATEGORY: Uuid = Uuid::from_u128(0xdc02);

/// Who calls an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    /// No `Authorization` header.
    NoToken,
    /// `Bearer` followed by something that is not a JWT.
    Garbage,
    /// An authentic token of another route group's audience.
    WrongAudience,
    /// [`OWNER`], as a patient.
    Owner,
    /// [`OTHER_PATIENT`], as a patient.
    OtherPatient,
    /// [`SPECIALIST`], as a doctor.
    Specialist,
    /// [`OTHER_DOCTOR`], as a doctor.
    OtherDoctor,
    /// [`COORDINATOR`], as a doctor.
    Coordinator,
    /// [`ADMIN`], on the dashboard.
    Admin,
}

/// Every caller, in the order of the expectation columns of [`rows`].
pub const CALLERS: [Caller; 9] = [
    Caller::NoToken,
    Caller::Garbage,
    Caller::WrongAudience,
    Caller::Owner,
    Caller::OtherPatient,
    Caller::Specialist,
    Caller::OtherDoctor,
    Caller::Coordinator,
    Caller::Admin,
];

impl Caller {
    /// The `Authorization` header this caller sends to `path` in `world`.
    pub fn authorization(self, world: &World, path: &str) -> Option<String> {
        let bearer = |sub: &str, aud| Some(format!("Bearer {}", world.token(sub, aud)));
        match self {
            Caller::NoToken => None,
            Caller::Garbage => Some("Bearer not-a.jwt.at-all".to_owned()),
            Caller::WrongAudience => match Group::of(path) {
                // A doctor's token on the patient app, a dashboard's on the sync API (which
                // takes patients and doctors), a patient's on the others.
                Group::App => bearer(OWNER, Audience::Doctor),
                Group::Pro => bearer(COORDINATOR, Audience::Patient),
                Group::Sync => bearer(ADMIN, Audience::Admin),
                _ => bearer(ADMIN, Audience::Patient),
            },
            Caller::Owner => bearer(OWNER, Audience::Patient),
            Caller::OtherPatient => bearer(OTHER_PATIENT, Audience::Patient),
            Caller::Specialist => bearer(SPECIALIST, Audience::Doctor),
            Caller::OtherDoctor => bearer(OTHER_DOCTOR, Audience::Doctor),
            Caller::Coordinator => bearer(COORDINATOR, Audience::Doctor),
            Caller::Admin => bearer(ADMIN, Audience::Admin),
        }
    }
}

/// What a caller must get (SPEC §8, §10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// 200, the call does what it says.
    Ok,
    /// 401, code 2000: no or an unusable token (or no payment signature).
    Unauthorized,
    /// 403, code 2000: an authentic token for another route group.
    WrongAudience,
    /// 404, exactly "Case not found", the same answer as for a case that does not exist.
    CaseNotFound,
    /// 403, code 2000, refusal `forbidden`: on the case, but not in the role that may do this.
    Forbidden,
}

/// The state a row's allowed callers need. Every fixture has the seeded catalog of
/// [`crate::case_flow`] plus [`FREE_CATEGORY`]; the case belongs to [`OWNER`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fixture {
    /// No case.
    Catalog,
    /// A draft.
    Draft,
    /// A draft with one uploaded PDF.
    DraftWithDocument,
    /// Submitted, no coordinator yet.
    Submitted,
    /// Coordinator `C1` assigned; the sandbox payment and its link exist.
    AwaitingPayment,
    /// As [`Fixture::AwaitingPayment`], then the payment failed.
    PaymentFailed,
    /// Coordinator `C1` assigned, and the call asking the platform for the payment link failed
    /// for good (its outbox row `failed`).
    FailedCall,
    /// Paid; specialists `S1`, `S2` assigned by `C1`; a document request of `S1` open, with one
    /// document uploaded for it.
    Assigned,
    /// As [`Fixture::Assigned`], both opinions submitted.
    OpinionsIn,
    /// As [`Fixture::OpinionsIn`], the summary submitted and the report stored.
    Completed,
}

/// The ids a request may need, from its fixture (random where the fixture has none).
#[derive(Clone, Debug)]
pub struct Ctx {
    pub case_id: Uuid,
    pub document_id: Uuid,
    pub request_id: Uuid,
    pub payment_id: Uuid,
    pub outbox_id: Uuid,
}

/// A prepared application.
pub struct World {
    pub flow: Flow,
    pub ctx: Ctx,
    /// Tokens minted so far: ES256 signing is slow in debug builds and the tests send
    /// thousands of requests.
    tokens: Mutex<HashMap<(String, Audience), String>>,
    /// The table names and the query of [`snapshot`].
    snapshot_query: OnceCell<(Vec<String>, String)>,
}

impl World {
    /// A bearer token of `sub` for `aud`.
    pub fn token(&self, sub: &str, aud: Audience) -> String {
        let mut tokens = self.tokens.lock().expect("tokens");
        tokens
            .entry((sub.to_owned(), aud))
            .or_insert_with(|| self.flow.token(sub, aud))
            .clone()
    }
}

fn admin_meta() -> AuditMeta {
    AuditMeta {
        user_id: Some(ADMIN.to_owned()),
        role: "admin".to_owned(),
        ..AuditMeta::default()
    }
}

/// A fresh application in `fixture`.
pub async fn prepare(fixture: Fixture) -> World {
    prepare_with(fixture, Limits::default()).await
}

/// A fresh application with these limits in `fixture`.
pub async fn prepare_with(fixture: Fixture, limits: Limits) -> World {
    let flow = Flow::with_limits(limits).await;
    flow.state
        .store
        .save_category(
            &DiseaseCategory {
                dc_id: CategoryId(FREE_CATEGORY),
                label_en: "Neurology".into(),
                label_ar: "الأعصاب".into(),
                active: true,
                doctor_ids: vec![UserId::from(SPECIALIST)],
            },
            &admin_meta(),
            Utc::now(),
        )
        .await
        .expect("free category");
    let mut ctx = Ctx {
        case_id: Uuid::new_v4(),
        document_id: Uuid::new_v4(),
        request_id: Uuid::new_v4(),
        payment_id: Uuid::new_v4(),
        outbox_id: Uuid::new_v4(),
    };
    match fixture {
        Fixture::Catalog => {}
        Fixture::Draft | Fixture::DraftWithDocument => {
            let case_id = flow.create_case(OWNER, false).await;
            ctx.case_id = case_id.0;
            if fixture == Fixture::DraftWithDocument {
                ctx.document_id = upload(&flow, case_id, None).await;
            }
        }
        Fixture::Submitted => ctx.case_id = flow.create_case(OWNER, true).await.0,
        Fixture::AwaitingPayment | Fixture::PaymentFailed => {
            awaiting_payment(&flow, &mut ctx, fixture == Fixture::PaymentFailed).await;
        }
        Fixture::FailedCall => failed_call(&flow, &mut ctx).await,
        Fixture::Assigned | Fixture::OpinionsIn | Fixture::Completed => {
            assigned(&flow, &mut ctx).await;
            if fixture != Fixture::Assigned {
                opinions_in(&flow, &ctx).await;
            }
            if fixture == Fixture::Completed {
                completed(&flow, &ctx).await;
            }
        }
    }
    World {
        flow,
        ctx,
        tokens: Mutex::default(),
        snapshot_query: OnceCell::new(),
    }
}

/// A submitted case with coordinator `C1`, its sandbox payment and link; the payment failed if
/// `failed`.
async fn awaiting_payment(flow: &Flow, ctx: &mut Ctx, failed: bool) {
    let case_id = flow.create_case(OWNER, true).await;
    let payment_id = flow.assign_coordinator(case_id, None).await;
    // The worker's job: the sandbox records the payment and the case gets its link.
    sop_server::outbox::run_once(&flow.state, Utc::now())
        .await
        .expect("outbox");
    if failed {
        let command = Command::PaymentFailed { payment_id };
        flow.run(case_id, command, Actor::PaymentPlatform).await;
    }
    ctx.case_id = case_id.0;
    ctx.payment_id = payment_id.0;
}

/// A submitted case with coordinator `C1` whose payment-link call failed for good.
async fn failed_call(flow: &Flow, ctx: &mut Ctx) {
    let case_id = flow.create_case(OWNER, true).await;
    flow.assign_coordinator(case_id, None).await;
    let store = &flow.state.store;
    let filter = sop_server::store::OutboxFilter {
        case_id: Some(case_id.0),
        status: Some("pending".to_owned()),
    };
    let rows = store
        .list_outbox(&filter, sop_server::store::Page::new(None, Some(100)))
        .await
        .expect("outbox");
    let row = rows
        .items
        .iter()
        .find(|r| r.kind == "create_payment")
        .expect("the payment-link call");
    store
        .finish_outbox(
            row.outbox_id,
            "failed",
            10,
            Utc::now(),
            Some("HTTP 500"),
            None,
        )
        .await
        .expect("fail the call");
    ctx.case_id = case_id.0;
    ctx.outbox_id = row.outbox_id;
}

/// A case in `doctors_assigned` with an open document request of `S1` and a document for it.
async fn assigned(flow: &Flow, ctx: &mut Ctx) {
    let case_id = flow.assigned_case(OWNER).await;
    ctx.case_id = case_id.0;
    let opened = flow
        .post(
            "/pro/request-documents",
            &flow.doctor(SPECIALIST),
            json!({"case_id": case_id, "items": ["Latest MRI"]}),
        )
        .await;
    ctx.request_id = uuid(&opened.data()["request_id"]);
    ctx.document_id = upload(flow, case_id, Some(ctx.request_id)).await;
    let case = flow.state.store.case(case_id).await.expect("store");
    ctx.payment_id = case.expect("case").payments[0].payment_id.0;
}

/// Both specialists submit their opinions.
async fn opinions_in(flow: &Flow, ctx: &Ctx) {
    for doctor in [SPECIALIST, "S2"] {
        flow.submit_opinion(CaseId(ctx.case_id), doctor).await;
    }
}

/// The coordinator submits the summary and the report is stored.
async fn completed(flow: &Flow, ctx: &Ctx) {
    flow.post(
        "/pro/submit-summary",
        &flow.doctor(COORDINATOR),
        json!({"case_id": ctx.case_id, "summary": "Final summary"}),
    )
    .await
    .data();
    flow.store_report(CaseId(ctx.case_id), PDF).await;
}

fn uuid(value: &Value) -> Uuid {
    serde_json::from_value(value.clone()).expect("a UUID")
}

/// Uploads a PDF to `case_id` as its owner; the document id.
async fn upload(flow: &Flow, case_id: CaseId, request_id: Option<Uuid>) -> Uuid {
    let request_id = request_id.map(|r| r.to_string());
    let reply = flow
        .upload(
            &flow.patient(OWNER),
            &case_id.to_string(),
            "scan.pdf",
            PDF,
            request_id.as_deref(),
        )
        .await;
    uuid(&reply.data()["document_id"])
}

/// One part of a multipart form.
#[derive(Clone, Debug)]
pub struct Part {
    pub name: &'static str,
    pub file_name: Option<&'static str>,
    pub bytes: Vec<u8>,
}

impl Part {
    /// A text field.
    pub fn text(name: &'static str, value: &str) -> Self {
        Self {
            name,
            file_name: None,
            bytes: value.as_bytes().to_vec(),
        }
    }

    /// A file field.
    pub fn file(name: &'static str, file_name: &'static str, bytes: &[u8]) -> Self {
        Self {
            name,
            file_name: Some(file_name),
            bytes: bytes.to_vec(),
        }
    }
}

/// The multipart boundary of [`Req::Multipart`].
pub const BOUNDARY: &str = "sop-authz-boundary-41c7";

/// The body of `parts` as `multipart/form-data` with [`BOUNDARY`].
pub fn multipart_body(parts: &[Part]) -> Vec<u8> {
    let mut body = Vec::new();
    for part in parts {
        let file_name = part
            .file_name
            .map(|f| format!("; filename=\"{f}\""))
            .unwrap_or_default();
        let content_type = if part.file_name.is_some() {
            "Content-Type: application/octet-stream\r\n"
        } else {
            ""
        };
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{}\"{file_name}\r\n{content_type}\r\n",
                part.name
            )
            .as_bytes(),
        );
        body.extend_from_slice(&part.bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// A request body.
#[derive(Clone, Debug)]
pub enum Req {
    /// A `GET` without a body.
    Get,
    /// A `GET` asking for a WebSocket upgrade.
    Upgrade,
    /// `application/json`.
    Json(Value),
    /// `multipart/form-data`.
    Multipart(Vec<Part>),
    /// `application/x-www-form-urlencoded`.
    Form(&'static str),
    /// A `GET` with a query string.
    Query(String),
    /// One chunk of a resumable upload: `application/octet-stream` with its offset and the
    /// whole file's length in the upload headers.
    Chunk {
        offset: usize,
        length: usize,
        body: &'static [u8],
    },
    /// Any bytes with any (or no) content type, as a careless or hostile client sends them.
    Raw {
        content_type: Option<String>,
        body: Vec<u8>,
    },
}

/// Builds a row's request for a prepared case.
pub type Build = fn(&Ctx) -> Req;

/// One endpoint: where it is, what it needs, and what each of [`CALLERS`] must get.
pub struct Row {
    pub method: Method,
    pub path: &'static str,
    pub fixture: Fixture,
    pub request: Build,
    pub expect: [Expect; 9],
}

impl Row {
    /// The OpenAPI entry of this row.
    pub fn endpoint(&self) -> &'static Endpoint {
        ENDPOINTS
            .iter()
            .find(|e| e.method == self.method && e.path == self.path)
            .unwrap_or_else(|| panic!("{} is not in the OpenAPI table", self.path))
    }

    /// The first caller the row allows (the one the robustness tests use).
    pub fn allowed_caller(&self) -> Caller {
        CALLERS
            .into_iter()
            .zip(self.expect)
            .find(|(_, e)| *e == Expect::Ok)
            .map(|(c, _)| c)
            .unwrap_or_else(|| panic!("{}: nobody may call it", self.path))
    }

    /// Whether the endpoint acts on one case named by `case_id`.
    pub fn case_bound(&self) -> bool {
        self.expect.contains(&Expect::CaseNotFound)
    }

    /// The request path, with `{payment_id}` and `{sha256}` filled in.
    pub fn uri(&self, ctx: &Ctx) -> String {
        fill_path(self.path, ctx)
    }
}

/// `path` with its `{payment_id}` and `{sha256}` (of [`UPLOAD_BYTES`]) filled in.
pub fn fill_path(path: &str, ctx: &Ctx) -> String {
    path.replace("{payment_id}", &ctx.payment_id.to_string())
        .replace("{sha256}", &upload_sha256())
}

/// The file the upload rows send whole in one chunk (a PDF by its first bytes).
pub const UPLOAD_BYTES: &[u8] = b"%PDF-1.4\n% the access matrix's upload\n";

/// The SHA-256 of [`UPLOAD_BYTES`], in hex.
pub fn upload_sha256() -> String {
    hex::encode(sha2::Sha256::digest(UPLOAD_BYTES))
}

/// The row of an endpoint of the OpenAPI table, if there is one.
pub fn row_of(endpoint: &Endpoint) -> Option<Row> {
    rows()
        .into_iter()
        .find(|r| r.method == endpoint.method && r.path == endpoint.path)
}

/// Every documented endpoint that is served (the planned sync API is not).
pub fn served_endpoints() -> impl Iterator<Item = &'static Endpoint> {
    ENDPOINTS.iter().filter(|e| !Group::of(e.path).planned())
}

fn case(c: &Ctx) -> Req {
    Req::Json(json!({"case_id": c.case_id}))
}

fn empty(_: &Ctx) -> Req {
    Req::Json(json!({}))
}

fn get(_: &Ctx) -> Req {
    Req::Get
}

fn upgrade(_: &Ctx) -> Req {
    Req::Upgrade
}

/// A device's push with nothing in it.
fn empty_push() -> Value {
    json!({"device_id": DEVICE, "ops": []})
}

/// A first pull.
fn first_pull() -> Value {
    json!({"cursor": 0})
}

/// The device of the sync requests.
pub const DEVICE: Uuid = Uuid::from_u128(0xde71ce);

/// The headers of a WebSocket upgrade request (RFC 6455 §4.1; the key is the RFC's example).
pub const UPGRADE_HEADERS: [(&str, &str); 4] = [
    ("connection", "Upgrade"),
    ("upgrade", "websocket"),
    ("sec-websocket-version", "13"),
    ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
];

/// The expectation table. Columns, in [`CALLERS`] order: no token, garbage token, wrong
/// audience, owning patient, other patient, specialist on the case, other doctor, coordinator,
/// admin.
#[rustfmt::skip]
pub fn rows() -> Vec<Row> {
    use Expect::{CaseNotFound as NF, Forbidden as FB, Ok as OK, Unauthorized as U, WrongAudience as A};
    use Fixture::*;
    use Method::{Get, Patch, Post};
    let row = |method, path, fixture, request: Build, expect| Row { method, path, fixture, request, expect };
    // Shapes that repeat: a patient endpoint any patient may call, one that only the owner may,
    // an admin endpoint, a public one, a sync endpoint (any patient or doctor).
    const APP_ANY: [Expect; 9] = [U, U, A, OK, OK, A, A, A, A];
    const APP_OWN: [Expect; 9] = [U, U, A, OK, NF, A, A, A, A];
    const ADMIN_ONLY: [Expect; 9] = [U, U, A, A, A, A, A, A, OK];
    const PUBLIC: [Expect; 9] = [OK; 9];
    const SYNC: [Expect; 9] = [U, U, A, OK, OK, OK, OK, OK, A];
    vec![
        row(Get, "/health", Catalog, get, PUBLIC),
        row(Get, "/reports/verify", Catalog, |_| Req::Query(format!("id={}&sha256={}", Uuid::nil(), upload_sha256())), PUBLIC),
        row(Get, "/ready", Catalog, get, PUBLIC),
        row(Get, "/metrics", Catalog, get, PUBLIC),
        row(Get, "/openapi.json", Catalog, get, PUBLIC),
        // ----- /app ------------------------------------------------------------------------
        row(Post, "/app/how", Catalog, empty, APP_ANY),
        row(Post, "/app/list-reviewtypes", Catalog, |_| Req::Json(json!({"page": 1, "size": 15})), APP_ANY),
        row(Post, "/app/list-disease-categories", Catalog, |_| Req::Json(json!({"q": "Card"})), APP_ANY),
        row(Post, "/app/create-case", Catalog, |_| Req::Json(json!({
            "rt_id": RT, "dc_id": DC, "patient_age": 40, "patient_gender": "male",
            "medical_history": "Headaches", "questions": "Is it serious?", "submit": false})), APP_ANY),
        row(Post, "/app/update-case", Draft, |c| Req::Json(json!({"case_id": c.case_id, "patient_age": 43})), APP_OWN),
        row(Post, "/app/submit-case", Draft, case, APP_OWN),
        row(Post, "/app/list-cases", Draft, |_| Req::Json(json!({"status": "draft"})), APP_ANY),
        row(Post, "/app/review-case-details", Assigned, case, APP_OWN),
        row(Post, "/app/cancel-case", Assigned, |c| Req::Json(json!({"case_id": c.case_id, "reason": "Changed my mind"})), APP_OWN),
        row(Post, "/app/payment-summary", AwaitingPayment, case, APP_OWN),
        row(Post, "/app/retry-payment", PaymentFailed, case, APP_OWN),
        row(Post, "/app/upload-document", Draft, |c| Req::Multipart(vec![
            Part::text("case_id", &c.case_id.to_string()), Part::file("file", "scan.pdf", PDF)]), APP_OWN),
        row(Post, "/app/get-document", DraftWithDocument, |c| Req::Json(json!({"case_id": c.case_id, "document_id": c.document_id})), APP_OWN),
        row(Post, "/app/remove-document", DraftWithDocument, |c| Req::Json(json!({"case_id": c.case_id, "document_id": c.document_id})), APP_OWN),
        row(Post, "/app/answer-document-request", Assigned, |c| Req::Json(json!({"case_id": c.case_id, "request_id": c.request_id})), APP_OWN),
        row(Post, "/app/get-report", Completed, |c| Req::Json(json!({"case_id": c.case_id, "lang": "en"})), APP_OWN),
        row(Post, "/app/list-notifications", Assigned, empty, APP_ANY),
        row(Post, "/app/access-history", Assigned, case, APP_OWN),
        // ----- /pro: specialist S1, other doctor S3, coordinator C1 ----------------------------
        row(Post, "/pro/sops", Assigned, |_| Req::Json(json!({"coordinator": false})), [U, U, A, A, A, OK, OK, OK, A]),
        row(Post, "/pro/review-case-details", Assigned, case, [U, U, A, A, A, OK, NF, OK, A]),
        row(Post, "/pro/assign-doctor", Assigned, |c| Req::Json(json!({"case_id": c.case_id, "doctor_id": "S3"})), [U, U, A, A, A, FB, NF, OK, A]),
        row(Post, "/pro/unassign-doctor", Assigned, |c| Req::Json(json!({"case_id": c.case_id, "doctor_id": "S2"})), [U, U, A, A, A, FB, NF, OK, A]),
        row(Post, "/pro/request-documents", Assigned, |c| Req::Json(json!({"case_id": c.case_id, "items": ["Blood test"]})), [U, U, A, A, A, OK, NF, OK, A]),
        row(Post, "/pro/save-notes", Assigned, |c| Req::Json(json!({"case_id": c.case_id, "notes": "Check lead II"})), [U, U, A, A, A, OK, NF, OK, A]),
        row(Post, "/pro/save-opinion", Assigned, |c| Req::Json(json!({"case_id": c.case_id, "summary": "Benign", "concordance": "agrees"})), [U, U, A, A, A, OK, NF, FB, A]),
        row(Post, "/pro/submit-opinion", Assigned, |c| Req::Json(json!({"case_id": c.case_id, "summary": "Benign", "concordance": "agrees"})), [U, U, A, A, A, OK, NF, FB, A]),
        row(Post, "/pro/save-summary", Assigned, |c| Req::Json(json!({"case_id": c.case_id, "summary": "Draft summary"})), [U, U, A, A, A, FB, NF, OK, A]),
        row(Post, "/pro/submit-summary", OpinionsIn, |c| Req::Json(json!({"case_id": c.case_id, "summary": "Final summary"})), [U, U, A, A, A, FB, NF, OK, A]),
        row(Post, "/pro/send-overdue-reminder", Assigned, case, [U, U, A, A, A, FB, NF, OK, A]),
        row(Post, "/pro/get-document", Assigned, |c| Req::Json(json!({"case_id": c.case_id, "document_id": c.document_id})), [U, U, A, A, A, OK, NF, OK, A]),
        row(Post, "/pro/get-report", Completed, case, [U, U, A, A, A, OK, NF, OK, A]),
        row(Post, "/pro/list-notifications", Assigned, empty, [U, U, A, A, A, OK, OK, OK, A]),
        // ----- /admin --------------------------------------------------------------------------
        row(Post, "/admin/save-reviewtype", Catalog, |_| Req::Json(json!({
            "title_en": "Expedited", "title_ar": "مستعجل", "price": 90000, "currency": "SAR",
            "expected_review_days": 2})), ADMIN_ONLY),
        row(Post, "/admin/update-reviewtype", Catalog, |_| Req::Json(json!({"rt_id": RT, "price": 60000})), ADMIN_ONLY),
        row(Post, "/admin/list-reviewtypes", Catalog, empty, ADMIN_ONLY),
        row(Post, "/admin/save-disease-category", Catalog, |_| Req::Json(json!({
            "label_en": "Oncology", "label_ar": "الأورام", "doctor_ids": ["S1"]})), ADMIN_ONLY),
        row(Post, "/admin/update-disease-category", Catalog, |_| Req::Json(json!({"dc_id": DC, "label_en": "Cardiology (adult)"})), ADMIN_ONLY),
        row(Post, "/admin/list-disease-categories", Catalog, |_| Req::Json(json!({"q": "Card"})), ADMIN_ONLY),
        row(Post, "/admin/save-case-coordinators", Catalog, |_| Req::Json(json!({"speciality_id": FREE_CATEGORY, "doctor_ids": ["C1"]})), ADMIN_ONLY),
        row(Post, "/admin/edit-case-coordinators", Catalog, |_| Req::Json(json!({"cc_id": MAPPING, "doctor_ids": ["C1", "C2"]})), ADMIN_ONLY),
        row(Post, "/admin/list-case-coordinators", Catalog, empty, ADMIN_ONLY),
        row(Post, "/admin/save-doctor", Catalog, |_| Req::Json(json!({"doctor_id": "EMP9", "name_en": "Dr Nine", "name_ar": "د. تسعة"})), ADMIN_ONLY),
        row(Post, "/admin/list-doctors", Catalog, empty, ADMIN_ONLY),
        row(Post, "/admin/list-cases", Assigned, |_| Req::Json(json!({"status": "doctors_assigned"})), ADMIN_ONLY),
        row(Post, "/admin/case-details", Assigned, case, ADMIN_ONLY),
        row(Post, "/admin/assign-coordinator", Submitted, |c| Req::Json(json!({"case_id": c.case_id, "doctor_id": "C1", "requested_documents": ["ECG"]})), ADMIN_ONLY),
        row(Post, "/admin/edit-coordinator", AwaitingPayment, |c| Req::Json(json!({"case_id": c.case_id, "doctor_id": "C2"})), ADMIN_ONLY),
        row(Post, "/admin/cancel-case", Assigned, |c| Req::Json(json!({"case_id": c.case_id, "reason": "Duplicate case"})), ADMIN_ONLY),
        row(Post, "/admin/reject-case", Submitted, |c| Req::Json(json!({"case_id": c.case_id, "reason": "Out of scope"})), ADMIN_ONLY),
        row(Post, "/admin/audit-log", Assigned, |c| Req::Json(json!({"case_id": c.case_id})), ADMIN_ONLY),
        row(Post, "/admin/outbox", Assigned, |c| Req::Json(json!({"status": "done", "case_id": c.case_id})), ADMIN_ONLY),
        row(Post, "/admin/retry-outbox", FailedCall, |c| Req::Json(json!({"outbox_id": c.outbox_id})), ADMIN_ONLY),
        row(Post, "/admin/list-notifications", Submitted, empty, ADMIN_ONLY),
        row(Post, "/admin/get-report", Completed, case, ADMIN_ONLY),
        // ----- /scheduler (an admin token, ADR 0002) --------------------------------------------
        row(Post, "/scheduler/run-draft-reminders", Draft, empty, ADMIN_ONLY),
        row(Post, "/scheduler/run-overdue-alerts", Assigned, empty, ADMIN_ONLY),
        row(Post, "/scheduler/run-reconciliation", AwaitingPayment, empty, ADMIN_ONLY),
        // ----- The payment platform: a signature, never a JWT, opens the callback ----------------
        row(Post, "/payments/callback", AwaitingPayment, unsigned_callback, [U; 9]),
        // ----- The sandbox payment page: public --------------------------------------------------
        row(Get, "/sandbox/pay/{payment_id}", AwaitingPayment, get, PUBLIC),
        row(Post, "/sandbox/pay/{payment_id}", AwaitingPayment, |_| Req::Form("result=success"), PUBLIC),
        // ----- The devices' sync API: patients and doctors; the live channel also dashboards ------
        row(Post, "/sync/v1/push", Assigned, |_| Req::Json(empty_push()), SYNC),
        row(Get, "/sync/v1/upload/{sha256}", Catalog, get, SYNC),
        row(Patch, "/sync/v1/upload/{sha256}", Catalog, |_| Req::Chunk { offset: 0, length: UPLOAD_BYTES.len(), body: UPLOAD_BYTES }, SYNC),
        row(Post, "/sync/v1/pull", Assigned, |_| Req::Json(first_pull()), SYNC),
        row(Post, "/sync/v1/exchange", Assigned, |_| Req::Json(json!({"push": empty_push(), "pull": first_pull()})), SYNC),
        row(Get, "/sync/v1/live", Assigned, upgrade, [U, U, OK, OK, OK, OK, OK, OK, OK]),
    ]
}

/// A well-formed success callback for the fixture's payment, without a signature.
pub fn unsigned_callback(c: &Ctx) -> Req {
    Req::Json(callback_body(c, "success"))
}

/// The body of a payment callback for the fixture's payment.
pub fn callback_body(c: &Ctx, status: &str) -> Value {
    json!({
        "payment_id": c.payment_id, "status": status, "amount": crate::case_flow::PRICE,
        "currency": "SAR", "timestamp": Utc::now(),
    })
}

/// A decoded answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub bytes: Vec<u8>,
    /// The body as JSON, if it is JSON.
    pub json: Option<Value>,
}

impl Answer {
    /// The envelope, if the body is one: an object with an integer `status` and a string
    /// `message` (and nothing but `data` and `pagination` besides).
    pub fn envelope(&self) -> Option<&Value> {
        let body = self.json.as_ref()?;
        let object = body.as_object()?;
        let known = object
            .keys()
            .all(|k| ["status", "message", "data", "pagination"].contains(&k.as_str()));
        (known && body["status"].is_u64() && body["message"].is_string()).then_some(body)
    }

    /// The envelope's `message` (empty without one).
    pub fn message(&self) -> &str {
        self.envelope()
            .and_then(|e| e["message"].as_str())
            .unwrap_or_default()
    }

    /// The envelope's `status` code (0 without one).
    pub fn code(&self) -> u64 {
        self.envelope()
            .and_then(|e| e["status"].as_u64())
            .unwrap_or_default()
    }

    /// The refusal code in `data.code`, if any.
    pub fn refusal(&self) -> &str {
        self.envelope()
            .and_then(|e| e["data"]["code"].as_str())
            .unwrap_or_default()
    }

    /// A short description for failure messages (the body cut to a few hundred characters).
    pub fn describe(&self) -> String {
        let text = String::from_utf8_lossy(&self.bytes);
        let cut: String = text.chars().take(300).collect();
        format!("HTTP {} ({}) {cut}", self.status, self.content_type)
    }
}

/// Sends `req` to `uri` as `caller` (with `headers` added) and decodes the answer.
pub async fn send(
    world: &World,
    method: Method,
    uri: &str,
    req: &Req,
    caller: Caller,
    headers: &[(&str, String)],
) -> Answer {
    let uri = match req {
        Req::Query(query) => format!("{uri}?{query}"),
        _ => uri.to_owned(),
    };
    let mut builder = Request::builder().uri(&uri).method(match method {
        Method::Get => "GET",
        Method::Post => "POST",
        Method::Patch => "PATCH",
    });
    if let Some(auth) = caller.authorization(world, &uri) {
        builder = builder.header("authorization", auth);
    }
    if let Req::Chunk { offset, length, .. } = req {
        builder = builder
            .header("upload-offset", offset.to_string())
            .header("upload-length", length.to_string());
    }
    if matches!(req, Req::Upgrade) {
        for (name, value) in UPGRADE_HEADERS {
            builder = builder.header(name, value);
        }
    }
    let (content_type, body) = match req {
        Req::Get | Req::Upgrade | Req::Query(_) => (None, Vec::new()),
        Req::Chunk { body, .. } => (Some("application/octet-stream".to_owned()), body.to_vec()),
        Req::Json(value) => (
            Some("application/json".to_owned()),
            value.to_string().into_bytes(),
        ),
        Req::Multipart(parts) => (
            Some(format!("multipart/form-data; boundary={BOUNDARY}")),
            multipart_body(parts),
        ),
        Req::Form(form) => (
            Some("application/x-www-form-urlencoded".to_owned()),
            form.as_bytes().to_vec(),
        ),
        Req::Raw { content_type, body } => (content_type.clone(), body.clone()),
    };
    if let Some(content_type) = content_type {
        builder = builder.header("content-type", content_type);
    }
    for (name, value) in headers {
        builder = builder.header(*name, value);
    }
    let raw = world
        .flow
        .send(builder.body(Body::from(body)).expect("request"))
        .await;
    let json = raw
        .content_type
        .starts_with("application/json")
        .then(|| serde_json::from_slice(&raw.bytes).ok())
        .flatten();
    Answer {
        status: raw.status,
        content_type: raw.content_type,
        bytes: raw.bytes,
        json,
    }
}

/// Everything a request could change: the full contents of every table but the audit log,
/// the number of audit rows that record a success, and the files of the data directory (blobs,
/// sandbox records) other than the database's own.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub tables: BTreeMap<String, Vec<String>>,
    pub audited_successes: i64,
    pub files: BTreeMap<String, u64>,
}

impl Snapshot {
    /// Whether the data is the same, successful audit rows (reads) aside.
    pub fn same_data(&self, other: &Snapshot) -> bool {
        self.tables == other.tables && self.files == other.files
    }
}

/// The tables the snapshot must cover (SPEC §10 data; a renamed table fails the tests).
pub const TABLES: [&str; 14] = [
    "cases",
    "case_events",
    "notifications",
    "outbox",
    "blobs",
    "content_docs",
    "feed",
    "feed_clock",
    "sync_ops",
    "payments",
    "review_types",
    "disease_categories",
    "coordinator_mappings",
    "doctors",
];

/// The query that reads everything a [`Snapshot`] holds from the database in one go: one
/// `(table, row)` pair per row of every table but the audit log and its tail in `feed_clock` (the
/// row's values quoted by SQLite), then `('#audit_ok', count)`. Built once per world: the schema does not change.
async fn snapshot_query(pool: &sqlx::SqlitePool) -> (Vec<String>, String) {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         AND name NOT IN ('audit_log', '_sqlx_migrations') ORDER BY name",
    )
    .fetch_all(pool)
    .await
    .expect("table names");
    for table in TABLES {
        assert!(names.iter().any(|n| n == table), "no table {table}");
    }
    let mut selects = Vec::new();
    for name in &names {
        let columns: Vec<String> =
            sqlx::query_scalar("SELECT name FROM pragma_table_info(?1) ORDER BY cid")
                .bind(name)
                .fetch_all(pool)
                .await
                .expect("columns");
        // The chain's tail in the clock's row moves with every audit row, like the audit log.
        let row = columns
            .iter()
            .filter(|c| !(name == "feed_clock" && c.starts_with("audit_")))
            .map(|c| format!("quote(\"{c}\")"))
            .collect::<Vec<_>>()
            .join(" || '|' || ");
        selects.push(format!("SELECT '{name}', {row} FROM \"{name}\""));
    }
    selects.push(
        "SELECT '#audit_ok', CAST(count(*) AS TEXT) FROM audit_log WHERE outcome = 'ok'".to_owned(),
    );
    (names, selects.join(" UNION ALL "))
}

/// A [`Snapshot`] of `world`'s database (SQLite) and data directory.
pub async fn snapshot(world: &World) -> Snapshot {
    let Db::Sqlite(pool) = &world.flow.state.db else {
        panic!("snapshots read the SQLite test database");
    };
    let (names, sql) = world
        .snapshot_query
        .get_or_init(|| snapshot_query(pool))
        .await;
    let rows: Vec<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .fetch_all(pool)
        .await
        .expect("snapshot");
    let mut tables: BTreeMap<String, Vec<String>> =
        names.iter().map(|n| (n.clone(), Vec::new())).collect();
    let mut audited_successes = 0;
    for (table, row) in rows {
        if table == "#audit_ok" {
            audited_successes = row.parse().expect("a count");
        } else {
            tables.entry(table).or_default().push(row);
        }
    }
    for rows in tables.values_mut() {
        rows.sort();
    }
    let mut files = BTreeMap::new();
    list_files(&world.flow.state.settings.data_dir, "", &mut files);
    Snapshot {
        tables,
        audited_successes,
        files,
    }
}

fn list_files(dir: &Path, prefix: &str, out: &mut BTreeMap<String, u64>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = format!("{prefix}/{}", entry.file_name().to_string_lossy());
        let path = entry.path();
        if path.is_dir() {
            list_files(&path, &name, out);
        } else if !name.starts_with("/sop.db") {
            out.insert(name, entry.metadata().map(|m| m.len()).unwrap_or_default());
        }
    }
}

/// What changed between two snapshots, for failure messages (empty: nothing).
pub fn diff(before: &Snapshot, after: &Snapshot) -> String {
    let mut out = Vec::new();
    for (table, rows) in &after.tables {
        if before.tables.get(table) != Some(rows) {
            out.push(format!("table {table} changed"));
        }
    }
    if before.audited_successes != after.audited_successes {
        out.push(format!(
            "{} new successful audit rows",
            after.audited_successes - before.audited_successes
        ));
    }
    if before.files != after.files {
        out.push(format!(
            "files changed: {:?} → {:?}",
            before.files.keys().collect::<Vec<_>>(),
            after.files.keys().collect::<Vec<_>>()
        ));
    }
    out.join("; ")
}
