//! End-to-end (issue #3 acceptance): the real `sop-server` binary on a free port, driven only
//! over HTTP with tokens from the real `token` subcommand, walking a case from an empty catalog
//! to `completed` — once on SQLite and once on PostgreSQL — and then the side roads: a failed
//! payment and its retry, a cancellation after payment (refund), a rejection, and a coordinator
//! reassignment before payment.
//!
//! Nothing here sleeps for a fixed time: what the outbox worker does in the background (payment
//! links, refunds) is polled for with a short interval and a deadline ([`eventually`]). Status
//! checks while waiting go through `/admin/list-cases`, which is not audited, so the audit log
//! holds exactly the reads the test makes on purpose.

use crate::support::{self, Reply, ServerOptions, TestPg, TestServer, command, mint_token};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How long background work (outbox deliveries, callbacks) may take before a test fails.
const DEADLINE: Duration = Duration::from_secs(15);
/// How often a poll asks again.
const POLL_EVERY: Duration = Duration::from_millis(25);

// The people of every scenario.
const ADMIN: &str = "A1";
const PATIENT: &str = "P1";
/// The coordinator the admin assigns, and the one who takes over in the reassignment.
const C1: &str = "EMP21";
const C2: &str = "EMP22";
/// The specialists of the category.
const S1: &str = "EMP31";
const S2: &str = "EMP32";
/// (user id, JWT audience) of everyone a scenario signs in as.
const USERS: [(&str, &str); 6] = [
    (ADMIN, "snr_dash"),
    (PATIENT, "snr_usr"),
    (C1, "snr_pro"),
    (C2, "snr_pro"),
    (S1, "snr_pro"),
    (S2, "snr_pro"),
];

/// The review type's price, in minor units of SAR.
const PRICE: i64 = 150_000;
/// Patient content that must never show up in notifications or audit rows.
const MEDICAL_HISTORY: &str = "Biopsy in March showed a 2 cm lesion";
const OPINION_S1: &str = "The imaging supports the original diagnosis";
const OPINION_S2: &str = "Agree, with a minor difference on staging";
const FINAL_SUMMARY: &str = "Both specialists confirm the diagnosis";

/// A running server and the tokens of [`USERS`]. Fields drop in order: the server stops before
/// its data directory and its PostgreSQL database go away.
struct Api {
    server: TestServer,
    tokens: HashMap<&'static str, String>,
    database_url: Option<String>,
    dir: tempfile::TempDir,
    pg: Option<TestPg>,
}

/// The ids of the catalog an admin set up.
struct Catalog {
    rt_id: String,
    dc_id: String,
}

impl Api {
    /// Starts the binary on SQLite in a fresh data directory.
    async fn sqlite() -> Self {
        Self::start(None).await
    }

    /// Starts the binary on a fresh PostgreSQL database.
    async fn postgres() -> Self {
        Self::start(Some(TestPg::create().await)).await
    }

    async fn start(pg: Option<TestPg>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let database_url = pg.as_ref().map(|pg| pg.url.clone());
        let server = TestServer::start(
            dir.path(),
            ServerOptions {
                database_url: database_url.clone(),
                ..ServerOptions::default()
            },
        )
        .await;
        let tokens = USERS
            .iter()
            .map(|&(sub, aud)| (sub, mint_token(dir.path(), sub, aud)))
            .collect();
        Self {
            server,
            tokens,
            database_url,
            dir,
            pg,
        }
    }

    /// `POST path` as `who` with a JSON body.
    async fn post(&self, path: &str, who: &str, body: Value) -> Reply {
        let token = &self.tokens[who];
        self.server
            .post(path, Some(token), Some(&body.to_string()))
            .await
    }

    /// `POST path` as `who`, asserting success; the envelope's `data`.
    async fn ok(&self, path: &str, who: &str, body: Value) -> Value {
        let reply = self.post(path, who, body).await;
        assert_eq!(
            (reply.status, reply.code()),
            (200, 1000),
            "{path} as {who}: {reply:?}"
        );
        reply.body["data"].clone()
    }

    /// `POST /app/upload-document` (multipart) as the patient.
    async fn upload(
        &self,
        case_id: &str,
        request_id: Option<&str>,
        file_name: &str,
        bytes: &[u8],
    ) -> Reply {
        let (content_type, body) = multipart(case_id, request_id, file_name, bytes);
        let resp = self
            .server
            .client
            .post(self.server.url("/app/upload-document"))
            .bearer_auth(&self.tokens[PATIENT])
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("POST upload");
        support::reply(resp).await
    }

    /// Presses Pay (`success`) or Fail (`failure`) on the sandbox page at `link`, as a browser
    /// would; answers the page's HTTP status.
    async fn press(&self, link: &str, result: &str) -> u16 {
        let resp = self
            .server
            .client
            .post(link)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("result={result}"))
            .send()
            .await
            .expect("POST sandbox page");
        resp.status().as_u16()
    }

    /// The catalog of SPEC §2, set up in order through the admin API: a review type, a disease
    /// category with specialists [`S1`] and [`S2`], the doctors, and the coordinator mapping
    /// ([`C1`], [`C2`]).
    async fn catalog(&self) -> Catalog {
        let rt = self
            .ok(
                "/admin/save-reviewtype",
                ADMIN,
                json!({
                    "title_en": "Standard review", "title_ar": "مراجعة قياسية",
                    "description_en": "A second opinion", "description_ar": "رأي طبي ثانٍ",
                    "duration_en": "5–7 days", "duration_ar": "5–7 أيام",
                    "price": PRICE, "currency": "SAR", "expected_review_days": 7, "icon": "clock",
                }),
            )
            .await;
        let dc = self
            .ok(
                "/admin/save-disease-category",
                ADMIN,
                json!({"label_en": "Oncology", "label_ar": "الأورام", "doctor_ids": [S1, S2]}),
            )
            .await;
        let dc_id = id(&dc, "dc_id");
        for doctor in [C1, C2, S1, S2] {
            let saved = self
                .ok(
                    "/admin/save-doctor",
                    ADMIN,
                    json!({
                        "doctor_id": doctor, "name_en": format!("Dr {doctor}"),
                        "name_ar": format!("د. {doctor}"), "phone": "+966500000000",
                        "email": format!("{doctor}@example.org"), "specialties": [dc_id],
                    }),
                )
                .await;
            assert_eq!(saved["doctor_id"], doctor);
        }
        let mapping = self
            .ok(
                "/admin/save-case-coordinators",
                ADMIN,
                json!({"speciality_id": dc_id, "doctor_ids": [C1, C2]}),
            )
            .await;
        assert!(mapping["cc_id"].is_string(), "{mapping}");
        Catalog {
            rt_id: id(&rt, "rt_id"),
            dc_id,
        }
    }

    /// A case created and submitted at once (T2); its id.
    async fn submitted_case(&self, catalog: &Catalog) -> String {
        let created = self
            .ok("/app/create-case", PATIENT, intake(catalog, None, true))
            .await;
        assert_eq!(created["status"], "submitted");
        id(&created, "case_id")
    }

    /// A submitted case with coordinator [`C1`] and its payment link; (case id, link).
    async fn awaiting_payment(&self, catalog: &Catalog) -> (String, String) {
        let case_id = self.submitted_case(catalog).await;
        let assigned = self
            .ok(
                "/admin/assign-coordinator",
                ADMIN,
                json!({"case_id": case_id, "doctor_id": C1}),
            )
            .await;
        assert_eq!(assigned["status"], "awaiting_payment");
        let link = self.payment_link(&case_id, None).await;
        (case_id, link)
    }

    /// A case paid in the sandbox; (case id, link).
    async fn paid(&self, catalog: &Catalog) -> (String, String) {
        let (case_id, link) = self.awaiting_payment(catalog).await;
        assert_eq!(self.press(&link, "success").await, 200);
        self.wait_status(&case_id, "payment_successful").await;
        (case_id, link)
    }

    /// Waits until the payment summary shows a link other than `not`; the link.
    async fn payment_link(&self, case_id: &str, not: Option<&str>) -> String {
        eventually("the payment link", || async {
            let summary = self.payment_summary(case_id).await;
            summary["payment_link"]
                .as_str()
                .filter(|link| Some(*link) != not)
                .map(str::to_owned)
        })
        .await
    }

    async fn payment_summary(&self, case_id: &str) -> Value {
        self.ok("/app/payment-summary", PATIENT, json!({"case_id": case_id}))
            .await
    }

    /// The case's status, from the (unaudited) admin list.
    async fn status(&self, case_id: &str) -> String {
        let listed = self
            .ok("/admin/list-cases", ADMIN, json!({"q": case_id}))
            .await;
        let case = listed
            .as_array()
            .and_then(|cases| cases.iter().find(|c| c["case_id"] == case_id))
            .unwrap_or_else(|| panic!("{case_id} not in {listed}"));
        case["status"].as_str().expect("status").to_owned()
    }

    /// Waits until the case reaches `status` (background deliveries, callbacks).
    async fn wait_status(&self, case_id: &str, status: &str) {
        eventually(&format!("status {status}"), || async {
            (self.status(case_id).await == status).then_some(())
        })
        .await;
    }

    /// The admin's case details (an audited read).
    async fn details(&self, case_id: &str) -> Value {
        self.ok("/admin/case-details", ADMIN, json!({"case_id": case_id}))
            .await
    }

    /// The notification kinds of `who`'s inbox for `case_id`, oldest first.
    async fn notifications(&self, who: &str, case_id: &str) -> Vec<String> {
        let path = match who {
            ADMIN => "/admin/list-notifications",
            PATIENT => "/app/list-notifications",
            _ => "/pro/list-notifications",
        };
        let inbox = self.ok(path, who, json!({"size": 100})).await;
        let mut kinds: Vec<String> = inbox
            .as_array()
            .expect("a list")
            .iter()
            .filter(|n| n["case_id"] == case_id)
            .map(|n| {
                // SPEC §7: the event and the case reference, never health information.
                let text = n.to_string();
                assert!(!text.contains(MEDICAL_HISTORY), "health data in {text}");
                n["kind"].as_str().expect("kind").to_owned()
            })
            .collect();
        kinds.reverse();
        kinds
    }

    /// The audit rows of `case_id`, oldest first.
    async fn audit(&self, case_id: &str) -> Vec<Value> {
        let mut rows = self
            .ok(
                "/admin/audit-log",
                ADMIN,
                json!({"case_id": case_id, "size": 100}),
            )
            .await
            .as_array()
            .expect("a list")
            .clone();
        rows.reverse();
        rows
    }

    /// Stops the server (SIGTERM), then runs `sop-server audit verify` against the same data
    /// directory and database, as an operator would; asserts it reports an intact chain.
    fn stop_and_verify_audit(self) {
        let Api {
            server,
            database_url,
            dir,
            pg,
            ..
        } = self;
        let (status, _) = server.terminate();
        assert!(status.success(), "server exit: {status:?}");
        let mut verify = command();
        verify
            .args(["audit", "verify", "--data-dir"])
            .arg(dir.path());
        if let Some(url) = &database_url {
            verify.args(["--database-url", url]);
        }
        let out = verify.output().expect("run sop-server audit verify");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("audit chain OK"),
            "audit verify: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        drop(dir);
        drop(pg);
    }
}

/// Polls `probe` every [`POLL_EVERY`] until it answers `Some`, failing after [`DEADLINE`].
async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// The string id `field` of a reply's data.
#[track_caller]
fn id(data: &Value, field: &str) -> String {
    data[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {data}"))
        .to_owned()
}

/// A complete intake for a new case of `catalog`.
fn intake(catalog: &Catalog, case_id: Option<&str>, submit: bool) -> Value {
    let mut body = json!({
        "rt_id": catalog.rt_id, "dc_id": catalog.dc_id,
        "patient_age": 54, "patient_gender": "female",
        "medical_history": MEDICAL_HISTORY, "questions": "Is surgery needed?",
        "submit": submit,
    });
    if let Some(case_id) = case_id {
        body["case_id"] = json!(case_id);
    }
    body
}

/// The timeline kinds of case details, in order.
fn timeline(details: &Value) -> Vec<&str> {
    details["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .map(|e| e["kind"].as_str().expect("kind"))
        .collect()
}

/// `(action, user id)` of audit rows.
fn actions(rows: &[Value]) -> Vec<(&str, &str)> {
    rows.iter()
        .map(|r| {
            (
                r["action"].as_str().expect("action"),
                r["user_id"].as_str().unwrap_or("-"),
            )
        })
        .collect()
}

/// The content type and body of a multipart upload form.
fn multipart(
    case_id: &str,
    request_id: Option<&str>,
    file_name: &str,
    bytes: &[u8],
) -> (String, Vec<u8>) {
    let boundary = format!("sop-e2e-{}", Uuid::new_v4().simple());
    let mut body = Vec::new();
    let mut field = |name: &str, value: &str| {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    };
    field("case_id", case_id);
    if let Some(request_id) = request_id {
        field("request_id", request_id);
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; \
             filename=\"{file_name}\"\r\nContent-Type: application/pdf\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// A small, valid one-page PDF: objects, a cross-reference table with their real offsets, and
/// the trailer.
fn tiny_pdf() -> Vec<u8> {
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] >>",
    ];
    let mut pdf = String::from("%PDF-1.4\n");
    let mut offsets = Vec::new();
    for (n, object) in (1..).zip(objects) {
        offsets.push(pdf.len());
        pdf += &format!("{n} 0 obj\n{object}\nendobj\n");
    }
    let xref = pdf.len();
    pdf += &format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
    for offset in offsets {
        pdf += &format!("{offset:010} 00000 n \n");
    }
    pdf += &format!(
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    );
    pdf.into_bytes()
}

// ----- The main walk -------------------------------------------------------------------------

/// Catalog → create and submit → coordinator → sandbox payment → two doctors → a document
/// request answered with an upload → both opinions → the summary → `completed`; then the
/// timeline, every party's notifications, the audit rows, and `audit verify` after shutdown.
async fn walk_a_case_through_its_life(api: Api) {
    let catalog = api.catalog().await;

    // T1 with a client-generated id, then T3.
    let case_id = Uuid::now_v7().to_string();
    let created = api
        .ok(
            "/app/create-case",
            PATIENT,
            intake(&catalog, Some(&case_id), false),
        )
        .await;
    assert_eq!(
        (id(&created, "case_id"), &created["status"]),
        (case_id.clone(), &json!("draft"))
    );
    let submitted = api
        .ok("/app/submit-case", PATIENT, json!({"case_id": case_id}))
        .await;
    assert_eq!(submitted["status"], "submitted");
    // T2: create and submit in one call.
    let other = api.submitted_case(&catalog).await;
    assert_ne!(other, case_id);

    // T4: the payment link appears once the outbox worker has asked the sandbox for it.
    let assigned = api
        .ok(
            "/admin/assign-coordinator",
            ADMIN,
            json!({"case_id": case_id, "doctor_id": C1}),
        )
        .await;
    assert_eq!(
        (&assigned["status"], &assigned["coordinator_id"]),
        (&json!("awaiting_payment"), &json!(C1))
    );
    let link = api.payment_link(&case_id, None).await;
    let summary = api.payment_summary(&case_id).await;
    assert_eq!(
        (&summary["amount"], &summary["currency"], &summary["status"]),
        (&json!(PRICE), &json!("SAR"), &json!("pending"))
    );
    assert!(link.contains("/sandbox/pay/"), "{link}");

    // T6: the sandbox posts the signed callback to the server itself.
    assert_eq!(api.press(&link, "success").await, 200);
    api.wait_status(&case_id, "payment_successful").await;
    assert_eq!(api.payment_summary(&case_id).await["status"], "succeeded");

    // T9: two specialists; the patient's card shows the coordinator and the due date.
    let assigned = api
        .ok(
            "/pro/assign-doctor",
            C1,
            json!({"case_id": case_id, "doctor_ids": [S1, S2]}),
        )
        .await;
    assert_eq!(assigned["status"], "doctors_assigned");

    // T11, then T12: the patient uploads a PDF for the request and says it is answered.
    let opened = api
        .ok(
            "/pro/request-documents",
            S1,
            json!({"case_id": case_id, "items": ["Pathology report"]}),
        )
        .await;
    let request_id = id(&opened, "request_id");
    let patient_view = api
        .ok(
            "/app/review-case-details",
            PATIENT,
            json!({"case_id": case_id}),
        )
        .await;
    assert_eq!(patient_view["sub_state"], "awaiting_documents");
    assert_eq!(
        patient_view["card"]["requested_items"],
        json!(["Pathology report"])
    );
    assert_eq!(
        patient_view["card"]["coordinator"]["name"],
        format!("Dr {C1}")
    );
    assert!(patient_view["card"]["due_at"].is_string(), "{patient_view}");
    let pdf = tiny_pdf();
    let uploaded = api
        .upload(&case_id, Some(&request_id), "pathology.pdf", &pdf)
        .await;
    uploaded.assert(200, 1000);
    assert_eq!(uploaded.body["data"]["content_type"], "application/pdf");
    let document_id = id(&uploaded.body["data"], "document_id");
    api.ok(
        "/app/answer-document-request",
        PATIENT,
        json!({"case_id": case_id, "request_id": request_id}),
    )
    .await;
    // The specialist reads the document: the same bytes, and an audited read.
    let download = api
        .server
        .client
        .post(api.server.url("/pro/get-document"))
        .bearer_auth(&api.tokens[S1])
        .json(&json!({"case_id": case_id, "document_id": document_id}))
        .send()
        .await
        .expect("get-document");
    assert_eq!(download.status().as_u16(), 200);
    assert_eq!(
        download.bytes().await.expect("bytes").as_ref(),
        pdf.as_slice()
    );

    // T14 twice: a save, then a submit (one with its sections sent along).
    api.ok(
        "/pro/save-opinion",
        S1,
        json!({"case_id": case_id, "summary": OPINION_S1, "concordance": "agrees"}),
    )
    .await;
    api.ok("/pro/submit-opinion", S1, json!({"case_id": case_id}))
        .await;
    api.ok(
        "/pro/save-opinion",
        S2,
        json!({"case_id": case_id, "summary": "draft"}),
    )
    .await;
    api.ok(
        "/pro/submit-opinion",
        S2,
        json!({"case_id": case_id, "summary": OPINION_S2, "concordance": "minor_difference"}),
    )
    .await;

    // T15.
    api.ok(
        "/pro/save-summary",
        C1,
        json!({"case_id": case_id, "summary": FINAL_SUMMARY}),
    )
    .await;
    let completed = api
        .ok("/pro/submit-summary", C1, json!({"case_id": case_id}))
        .await;
    assert_eq!(completed["status"], "completed");

    // The admin's view: the timeline in order, the seven steps done.
    let details = api.details(&case_id).await;
    assert_eq!(details["status"], "completed");
    assert_eq!(
        timeline(&details),
        [
            "case_created",
            "submitted",
            "coordinator_assigned",
            "awaiting_payment",
            "payment_received",
            "doctors_assigned",
            "documents_requested",
            "document_added",
            "documents_provided",
            "opinion_submitted",
            "opinion_submitted",
            "completed",
        ]
    );
    let steps = details["progress"]["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 7);
    assert!(steps.iter().all(|s| s["done"] == true), "{steps:?}");
    assert_eq!(details["document_requests"][0]["open"], false);
    assert_eq!(details["documents"][0]["document_id"], document_id.as_str());

    // SPEC §7: who was told what.
    assert_eq!(
        api.notifications(PATIENT, &case_id).await,
        [
            "coordinator_assigned",
            "payment_successful",
            "doctors_assigned",
            "documents_requested",
        ]
    );
    assert_eq!(
        api.notifications(C1, &case_id).await,
        [
            "coordinator_assigned",
            "payment_successful",
            "opinion_submitted",
            "opinion_submitted",
        ]
    );
    assert_eq!(
        api.notifications(S1, &case_id).await,
        ["doctors_assigned", "documents_provided"]
    );
    assert_eq!(api.notifications(S2, &case_id).await, ["doctors_assigned"]);
    assert_eq!(api.notifications(C2, &case_id).await, Vec::<String>::new());
    assert_eq!(api.notifications(ADMIN, &case_id).await, ["case_submitted"]);
    assert_eq!(api.notifications(ADMIN, &other).await, ["case_submitted"]);

    // SPEC §8: every command and every audited read, by whom, in order; no clinical text.
    let rows = api.audit(&case_id).await;
    assert_eq!(
        actions(&rows),
        [
            ("create_case", PATIENT),
            ("submit_case", PATIENT),
            ("assign_coordinator", ADMIN),
            ("payment_link_created", "-"),
            ("payment_succeeded", "-"),
            ("assign_doctors", C1),
            ("request_documents", S1),
            ("view_case", PATIENT),
            ("upload_document", PATIENT),
            ("answer_document_request", PATIENT),
            ("download_document", S1),
            ("save_opinion", S1),
            ("submit_opinion", S1),
            ("save_opinion", S2),
            ("save_opinion", S2),
            ("submit_opinion", S2),
            ("save_summary", C1),
            ("submit_summary", C1),
            ("view_case_details", ADMIN),
        ]
    );
    assert!(rows.iter().all(|r| r["outcome"] == "ok"), "{rows:?}");
    let by_http = rows
        .iter()
        .filter(|r| r["role"] != "system" && r["role"] != "payment_platform");
    for row in by_http {
        assert!(
            row["request_id"].is_string() && row["ip"].is_string(),
            "{row}"
        );
    }
    let text = serde_json::to_string(&rows).expect("rows");
    for clinical in [MEDICAL_HISTORY, OPINION_S1, OPINION_S2, FINAL_SUMMARY] {
        assert!(!text.contains(clinical), "clinical text in the audit log");
    }
    // The patient sees who looked at their case.
    let history = api
        .ok("/app/access-history", PATIENT, json!({"case_id": case_id}))
        .await;
    assert!(
        history
            .as_array()
            .expect("a list")
            .iter()
            .any(|r| r["action"] == "download_document" && r["user_id"] == S1),
        "{history}"
    );

    api.stop_and_verify_audit();
}

#[tokio::test]
async fn a_case_walks_from_catalog_to_completed_on_sqlite() {
    walk_a_case_through_its_life(Api::sqlite().await).await;
}

#[tokio::test]
async fn a_case_walks_from_catalog_to_completed_on_postgres() {
    walk_a_case_through_its_life(Api::postgres().await).await;
}

// ----- Side roads ----------------------------------------------------------------------------

#[tokio::test]
async fn a_failed_payment_is_retried_with_a_new_link_and_then_paid() {
    let api = Api::sqlite().await;
    let catalog = api.catalog().await;
    let (case_id, first_link) = api.awaiting_payment(&catalog).await;

    // T7.
    assert_eq!(api.press(&first_link, "failure").await, 200);
    api.wait_status(&case_id, "payment_failed").await;
    let card = api
        .ok(
            "/app/review-case-details",
            PATIENT,
            json!({"case_id": case_id}),
        )
        .await["card"]
        .clone();
    assert_eq!(card["actions"], json!(["retry_payment"]), "{card}");

    // T8: a new attempt with its own link; then T6 on it.
    let retried = api
        .ok("/app/retry-payment", PATIENT, json!({"case_id": case_id}))
        .await;
    assert_eq!(retried["status"], "awaiting_payment");
    let second_link = api.payment_link(&case_id, Some(&first_link)).await;
    assert!(second_link.ends_with(retried["payment_id"].as_str().expect("payment_id")));
    assert_eq!(api.press(&second_link, "success").await, 200);
    api.wait_status(&case_id, "payment_successful").await;

    let details = api.details(&case_id).await;
    assert_eq!(
        timeline(&details),
        [
            "case_created",
            "submitted",
            "coordinator_assigned",
            "awaiting_payment",
            "payment_failed",
            "awaiting_payment",
            "payment_received",
        ]
    );
    assert_eq!(
        api.notifications(PATIENT, &case_id).await,
        [
            "coordinator_assigned",
            "payment_failed",
            "payment_successful"
        ]
    );
    api.stop_and_verify_audit();
}

#[tokio::test]
async fn a_patient_cancelling_after_payment_is_refunded() {
    let api = Api::sqlite().await;
    let catalog = api.catalog().await;
    let (case_id, _) = api.paid(&catalog).await;

    let cancelled = api
        .ok(
            "/app/cancel-case",
            PATIENT,
            json!({"case_id": case_id, "reason": "I found a doctor nearby"}),
        )
        .await;
    assert_eq!(cancelled["status"], "cancelled");
    // The refund goes out through the outbox; the sandbox settles it at once.
    eventually("the refund", || async {
        (api.payment_summary(&case_id).await["refund"] == "refunded").then_some(())
    })
    .await;

    let details = api.details(&case_id).await;
    assert_eq!(
        timeline(&details),
        [
            "case_created",
            "submitted",
            "coordinator_assigned",
            "awaiting_payment",
            "payment_received",
            "cancelled",
            "refund_requested",
            "refunded",
        ]
    );
    assert_eq!(details["closed_reason"], "I found a doctor nearby");
    assert_eq!(
        api.notifications(C1, &case_id).await,
        [
            "coordinator_assigned",
            "payment_successful",
            "case_cancelled"
        ]
    );
    assert_eq!(
        api.notifications(PATIENT, &case_id).await,
        [
            "coordinator_assigned",
            "payment_successful",
            "refund_completed"
        ]
    );
    // Closed for the coordinator (SPEC §8).
    let hidden = api
        .post("/pro/review-case-details", C1, json!({"case_id": case_id}))
        .await;
    hidden.assert(404, 1002);
    api.stop_and_verify_audit();
}

#[tokio::test]
async fn an_admin_rejects_a_case_with_a_reason_the_patient_sees() {
    let api = Api::sqlite().await;
    let catalog = api.catalog().await;
    let case_id = api.submitted_case(&catalog).await;

    let refused = api
        .post("/admin/reject-case", ADMIN, json!({"case_id": case_id}))
        .await;
    refused.assert(400, 1002);
    assert_eq!(refused.body["data"]["code"], "reason_required");

    let reason = "Outside the scope of a second opinion";
    let rejected = api
        .ok(
            "/admin/reject-case",
            ADMIN,
            json!({"case_id": case_id, "reason": reason}),
        )
        .await;
    assert_eq!(rejected["status"], "rejected");
    let view = api
        .ok(
            "/app/review-case-details",
            PATIENT,
            json!({"case_id": case_id}),
        )
        .await;
    assert_eq!(
        (
            &view["status"],
            &view["card"]["reason"],
            &view["closed_reason"]
        ),
        (&json!("rejected"), &json!(reason), &json!(reason))
    );
    assert_eq!(
        timeline(&api.details(&case_id).await),
        ["case_created", "submitted", "rejected"]
    );
    assert_eq!(
        api.notifications(PATIENT, &case_id).await,
        ["case_rejected"]
    );
    api.stop_and_verify_audit();
}

#[tokio::test]
async fn a_coordinator_reassigned_before_payment_loses_the_case_and_the_link_stays() {
    let api = Api::sqlite().await;
    let catalog = api.catalog().await;
    let (case_id, link) = api.awaiting_payment(&catalog).await;
    let payment_id = api.payment_summary(&case_id).await["payment_id"].clone();
    api.ok("/pro/review-case-details", C1, json!({"case_id": case_id}))
        .await;

    // T5.
    let edited = api
        .ok(
            "/admin/edit-coordinator",
            ADMIN,
            json!({"case_id": case_id, "doctor_id": C2}),
        )
        .await;
    assert_eq!(
        (&edited["status"], &edited["coordinator_id"]),
        (&json!("awaiting_payment"), &json!(C2))
    );

    let gone = api
        .post("/pro/review-case-details", C1, json!({"case_id": case_id}))
        .await;
    gone.assert(404, 1002);
    assert_eq!(gone.message(), "Case not found");
    let mine = api
        .ok("/pro/review-case-details", C2, json!({"case_id": case_id}))
        .await;
    assert_eq!(mine["role"], "coordinator");

    let summary = api.payment_summary(&case_id).await;
    assert_eq!(
        (&summary["payment_link"], &summary["payment_id"]),
        (&json!(link), &payment_id)
    );
    assert_eq!(
        timeline(&api.details(&case_id).await),
        [
            "case_created",
            "submitted",
            "coordinator_assigned",
            "awaiting_payment",
            "coordinator_changed",
        ]
    );
    assert_eq!(
        api.notifications(C1, &case_id).await,
        ["coordinator_assigned", "coordinator_changed"]
    );
    assert_eq!(
        api.notifications(C2, &case_id).await,
        ["coordinator_changed"]
    );

    // The link still pays the case, now under the new coordinator.
    assert_eq!(api.press(&link, "success").await, 200);
    api.wait_status(&case_id, "payment_successful").await;
    api.stop_and_verify_audit();
}
