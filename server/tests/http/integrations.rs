//! The platform clients against real HTTP services (issue #6 acceptance): stub payment
//! platform, profiles and push services on real sockets (axum on `127.0.0.1:0` in the test) that
//! record every request and fail on demand (HTTP 500, or hanging past the client's timeout),
//! and the real `sop-server` binary configured through its environment to talk to them.
//!
//! The stubs honour idempotency keys the way `docs/adr/0007-platform-clients.md` assumes the
//! real services do: an effect (a charge, a refund, an invoice, a push) happens once per key,
//! however often it is asked for. The tests assert the exact requests sent, refunds, retries
//! without duplicate effects, draining after recovery, restarts, signed callbacks, refunds the
//! platform declines or rejects, reconciliation, people's names and languages from the profiles
//! service (looked up once each), and two instances on one PostgreSQL running the jobs over many
//! due cases. Most scenarios run on SQLite and on PostgreSQL ([`on_both_databases`]).

use crate::support::{Reply, ServerOptions, TestPg, TestServer, mint_token};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sop_core::catalog::DoctorProfile;
use sop_core::event::NotificationKind;
use sop_core::ids::UserId;
use sop_core::lang::Lang;
use sop_server::outbound::Service;
use sop_server::payments::signature;
use sop_server::profiles;
use sop_server::store::AuditMeta;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ADMIN: &str = "A1";
const PATIENT: &str = "P1";
const C1: &str = "EMP21";
const S1: &str = "EMP31";
const PRICE: i64 = 150_000;
const API_KEY: &str = "pk_test_integrations";
const WEBHOOK_SECRET: &str = "whsec_integrations";
/// What the profiles stub knows of the patient, and what must never reach a push.
const PATIENT_NAME: &str = "Layla Haddad";
const MEDICAL_HISTORY: &str = "Biopsy in March showed a 2 cm lesion";
const CATEGORY_EN: &str = "Oncology";
const CATEGORY_AR: &str = "الأورام";
const REVIEW_EN: &str = "Standard review";
const REVIEW_AR: &str = "مراجعة قياسية";
/// What the profiles stub knows of the coordinator (the local directory says `Dr EMP21`).
const C1_NAME_EN: &str = "Salma Nour";
const C1_NAME_AR: &str = "سلمى نور";
const C1_PHONE: &str = "+966522222222";
const DEADLINE: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// The stub services.

/// One request a stub received.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    key: Option<String>,
    authorization: Option<String>,
    body: Value,
    /// The status the stub answered (a hang answers 200 after the client gave up).
    answered: u16,
}

/// A failure to inject.
#[derive(Clone, Debug)]
enum Fault {
    /// Answer 500 without any effect.
    Error,
    /// Take effect, but answer only after the client's timeout.
    Hang,
    /// Answer this status and body without any effect (a declined refund, a 4xx).
    Reply(u16, Value),
}

#[derive(Default)]
struct StubInner {
    seen: Vec<Seen>,
    /// Faults to inject, each on the next request whose path starts with its prefix.
    faults: VecDeque<(String, Fault)>,
    down: bool,
    /// Idempotency keys whose effect happened, and how many requests asked for it.
    effects: HashMap<String, u32>,
    /// Fixed answers by (method, exact path), in place of [`answer`]'s.
    overrides: HashMap<(String, String), (u16, Value)>,
}

/// A stub service (the three services answer on one router; each test starts one stub per
/// service so every service has its own record).
#[derive(Clone)]
struct Stub {
    addr: SocketAddr,
    inner: Arc<Mutex<StubInner>>,
}

impl Stub {
    async fn start() -> Self {
        let inner = Arc::new(Mutex::new(StubInner::default()));
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&inner));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, inner }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.inner.lock().unwrap().seen.clone()
    }

    fn fail_next(&self, path_prefix: &str, faults: &[Fault]) {
        let mut inner = self.inner.lock().unwrap();
        for fault in faults {
            inner
                .faults
                .push_back((path_prefix.to_owned(), fault.clone()));
        }
    }

    /// From now on, answers `method path` with `status` and `body`.
    fn answer_with(&self, method: &str, path: &str, status: u16, body: Value) {
        self.inner
            .lock()
            .unwrap()
            .overrides
            .insert((method.to_owned(), path.to_owned()), (status, body));
    }

    fn set_down(&self, down: bool) {
        self.inner.lock().unwrap().down = down;
    }

    /// Requests answered 2xx on `path_prefix`.
    fn ok(&self, method: &str, path_prefix: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.method == method && s.path.starts_with(path_prefix))
            .filter(|s| (200..300).contains(&s.answered))
            .collect()
    }

    fn effects(&self) -> HashMap<String, u32> {
        self.inner.lock().unwrap().effects.clone()
    }
}

async fn handle(
    State(inner): State<Arc<Mutex<StubInner>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let path = uri.path().to_owned();
    let key = header("idempotency-key");
    let (fault, fixed) = {
        let mut inner = inner.lock().unwrap();
        let fault = if inner.down {
            Some(Fault::Error)
        } else {
            let at = inner
                .faults
                .iter()
                .position(|(p, _)| path.starts_with(p.as_str()));
            at.and_then(|i| inner.faults.remove(i))
                .map(|(_, fault)| fault)
        };
        let fixed = inner
            .overrides
            .get(&(method.to_string(), path.clone()))
            .cloned();
        (fault, fixed)
    };
    let (status, answer, effect) = match (&fault, fixed) {
        (Some(Fault::Error), _) => (500, json!({"error": "injected"}), false),
        (Some(Fault::Reply(status, body)), _) => (*status, body.clone(), false),
        (_, Some((status, body))) => (status, body, false),
        _ => {
            let (status, answer) = answer(&method, &path, &body);
            (status, answer, true)
        }
    };
    {
        let mut inner = inner.lock().unwrap();
        if effect
            && (200..300).contains(&status)
            && let Some(key) = &key
        {
            *inner.effects.entry(key.clone()).or_default() += 1;
        }
        inner.seen.push(Seen {
            method: method.to_string(),
            path,
            key,
            authorization: header("authorization"),
            body,
            answered: status,
        });
    }
    if let Some(Fault::Hang) = fault {
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let status = StatusCode::from_u16(status).unwrap();
    (status, axum::Json(answer)).into_response()
}

/// What the stub services answer, by path.
fn answer(method: &Method, path: &str, body: &Value) -> (u16, Value) {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method.as_str(), parts.as_slice()) {
        ("POST", ["v1", "payments"]) => {
            let reference = body["reference"].as_str().unwrap_or_default();
            (
                200,
                json!({"id": format!("plat-{reference}"), "link": format!("https://pay.example/checkout/{reference}")}),
            )
        }
        ("POST", ["v1", "payments", _, "refunds"]) => (200, json!({"status": "refunded"})),
        ("GET", ["v1", "payments", _]) => (200, json!({"status": "pending"})),
        ("GET", ["v1", "users", user]) if *user == PATIENT => (
            200,
            json!({"user_id": PATIENT, "name_en": PATIENT_NAME, "name_ar": "ليلى حداد", "language": "ar", "phone": "+966511111111"}),
        ),
        ("GET", ["v1", "users", user]) if *user == C1 => (
            200,
            json!({"user_id": C1, "name_en": C1_NAME_EN, "name_ar": C1_NAME_AR, "language": "en", "phone": C1_PHONE, "email": "salma@example.org"}),
        ),
        ("GET", ["v1", "users", _]) => (404, json!({"error": "unknown user"})),
        ("POST", ["v1", "invoices"]) => (201, json!({"invoice_id": "inv-1"})),
        ("POST", ["v1", "push"]) => (202, json!({"accepted": true})),
        _ => (404, json!({"error": "no such route"})),
    }
}

// ---------------------------------------------------------------------------------------------
// The server under test.

struct Platform {
    payments: Stub,
    profiles: Stub,
    push: Stub,
}

impl Platform {
    async fn start() -> Self {
        Self {
            payments: Stub::start().await,
            profiles: Stub::start().await,
            push: Stub::start().await,
        }
    }

    /// The environment pointing a server at these stubs.
    fn env(&self, extra: &[(&str, String)]) -> Vec<(String, String)> {
        let mut env = vec![
            ("SOP_PAYMENTS_URL", self.payments.url()),
            ("SOP_PAYMENTS_API_KEY", API_KEY.to_owned()),
            ("SOP_PAYMENTS_WEBHOOK_SECRET", WEBHOOK_SECRET.to_owned()),
            ("SOP_PROFILES_URL", self.profiles.url()),
            ("SOP_PROFILES_API_KEY", API_KEY.to_owned()),
            ("SOP_PUSH_URL", self.push.url()),
            ("SOP_PUSH_API_KEY", API_KEY.to_owned()),
            ("SOP_OUTBOUND_TIMEOUT_SECONDS", "1".to_owned()),
        ];
        env.extend(extra.iter().cloned());
        env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }

    /// Every push the stub accepted, as (recipient, kind).
    fn pushes(&self) -> Vec<Value> {
        self.push
            .ok("POST", "/v1/push")
            .into_iter()
            .map(|s| s.body)
            .collect()
    }
}

struct Api {
    server: TestServer,
    tokens: HashMap<&'static str, String>,
}

async fn start_server(
    dir: &std::path::Path,
    platform: &Platform,
    database_url: Option<String>,
    extra: &[(&str, String)],
) -> Api {
    let server = TestServer::start(
        dir,
        ServerOptions {
            database_url,
            env: platform.env(extra),
            ..ServerOptions::default()
        },
    )
    .await;
    let tokens = [
        (ADMIN, "snr_dash"),
        (PATIENT, "snr_usr"),
        (C1, "snr_pro"),
        (S1, "snr_pro"),
    ]
    .iter()
    .map(|&(sub, aud)| (sub, mint_token(dir, sub, aud)))
    .collect();
    Api { server, tokens }
}

impl Api {
    async fn post(&self, path: &str, who: &str, body: Value) -> Reply {
        self.server
            .post(path, Some(&self.tokens[who]), Some(&body.to_string()))
            .await
    }

    async fn ok(&self, path: &str, who: &str, body: Value) -> Value {
        let reply = self.post(path, who, body).await;
        assert_eq!(
            (reply.status, reply.code()),
            (200, 1000),
            "{path}: {reply:?}"
        );
        reply.body["data"].clone()
    }

    async fn catalog(&self) -> (String, String) {
        let rt = self
            .ok(
                "/admin/save-reviewtype",
                ADMIN,
                json!({
                    "title_en": REVIEW_EN, "title_ar": REVIEW_AR,
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
                json!({"label_en": CATEGORY_EN, "label_ar": CATEGORY_AR, "doctor_ids": [S1]}),
            )
            .await;
        let dc_id = dc["dc_id"].as_str().unwrap().to_owned();
        for doctor in [C1, S1] {
            self.ok(
                "/admin/save-doctor",
                ADMIN,
                json!({
                    "doctor_id": doctor, "name_en": format!("Dr {doctor}"),
                    "name_ar": format!("د. {doctor}"), "phone": "+966500000000",
                    "email": format!("{doctor}@example.org"), "specialties": [dc_id],
                }),
            )
            .await;
        }
        self.ok(
            "/admin/save-case-coordinators",
            ADMIN,
            json!({"speciality_id": dc_id, "doctor_ids": [C1]}),
        )
        .await;
        (rt["rt_id"].as_str().unwrap().to_owned(), dc_id)
    }

    async fn case(&self, catalog: &(String, String), submit: bool) -> String {
        let created = self
            .ok(
                "/app/create-case",
                PATIENT,
                json!({
                    "rt_id": catalog.0, "dc_id": catalog.1,
                    "patient_age": 54, "patient_gender": "female",
                    "medical_history": MEDICAL_HISTORY, "questions": "Is surgery needed?",
                    "submit": submit,
                }),
            )
            .await;
        created["case_id"].as_str().unwrap().to_owned()
    }

    /// Submits a case and assigns [`C1`]; answers (case id, our payment id) once the platform
    /// was asked for the payment.
    async fn awaiting_payment(
        &self,
        platform: &Platform,
        catalog: &(String, String),
    ) -> (String, String) {
        let case_id = self.case(catalog, true).await;
        self.ok(
            "/admin/assign-coordinator",
            ADMIN,
            json!({"case_id": case_id, "doctor_id": C1}),
        )
        .await;
        let reference = eventually("the payment creation", || async {
            platform
                .payments
                .ok("POST", "/v1/payments")
                .iter()
                .find(|s| s.body["case_reference"] == reference_of(&case_id))
                .map(|s| s.body["reference"].as_str().unwrap().to_owned())
        })
        .await;
        // The link the platform answered reaches the patient.
        let link = format!("https://pay.example/checkout/{reference}");
        eventually("the payment link", || async {
            let summary = self
                .ok("/app/payment-summary", PATIENT, json!({"case_id": case_id}))
                .await;
            (summary["payment_link"] == link.as_str()).then_some(())
        })
        .await;
        (case_id, reference)
    }

    /// Posts a callback signed with `secret` at `signed_at` (unix seconds).
    async fn callback(&self, body: &Value, secret: &str, signed_at: i64) -> Reply {
        let raw = body.to_string();
        let header = signature::header_value(secret.as_bytes(), signed_at, raw.as_bytes());
        self.server
            .post_with(
                "/payments/callback",
                None,
                Some(&raw),
                &[(signature::HEADER, header.as_str())],
            )
            .await
    }

    async fn status(&self, case_id: &str) -> String {
        let listed = self
            .ok("/admin/list-cases", ADMIN, json!({"q": case_id}))
            .await;
        listed
            .as_array()
            .and_then(|cases| cases.iter().find(|c| c["case_id"] == case_id))
            .map(|c| c["status"].as_str().unwrap().to_owned())
            .unwrap()
    }

    async fn wait_status(&self, case_id: &str, status: &str) {
        eventually(status, || async {
            (self.status(case_id).await == status).then_some(())
        })
        .await;
    }

    /// Posts the platform's properly signed result (`success` or `failure`, the full price) for
    /// attempt `reference`, and expects it accepted.
    async fn report(&self, reference: &str, status: &str) {
        self.callback(
            &result_body(reference, status, PRICE),
            WEBHOOK_SECRET,
            now_unix(),
        )
        .await
        .assert(200, 1000);
    }

    /// A case paid through a signed success callback: (case id, payment reference).
    async fn paid(&self, platform: &Platform, catalog: &(String, String)) -> (String, String) {
        let (case_id, reference) = self.awaiting_payment(platform, catalog).await;
        self.report(&reference, "success").await;
        self.wait_status(&case_id, "payment_successful").await;
        (case_id, reference)
    }

    /// Asserts the audit log shows admins a payment result for `case_id` refused for its amount.
    async fn assert_amount_mismatch_flagged(&self, case_id: &str) {
        let audit = self
            .ok(
                "/admin/audit-log",
                ADMIN,
                json!({"case_id": case_id, "size": 100}),
            )
            .await;
        assert!(
            audit
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["outcome"] == "refused:amount_mismatch"),
            "{audit}"
        );
    }

    /// The case as an admin sees it.
    async fn details(&self, case_id: &str) -> Value {
        self.ok("/admin/case-details", ADMIN, json!({"case_id": case_id}))
            .await
    }

    /// Waits until no outbox row is pending or being delivered; answers the rows.
    async fn settled(&self) -> Vec<Value> {
        eventually("the outbox to settle", || async {
            let rows = self.ok("/admin/outbox", ADMIN, json!({"size": 100})).await;
            let rows = rows.as_array().unwrap().clone();
            rows.iter()
                .all(|r| r["status"] == "done" || r["status"] == "failed")
                .then_some(rows)
        })
        .await
    }

    /// Waits until every outbox row is `done`; answers the rows.
    async fn drained(&self) -> Vec<Value> {
        eventually("the outbox to drain", || async {
            let rows = self.ok("/admin/outbox", ADMIN, json!({"size": 100})).await;
            let rows = rows.as_array().unwrap().clone();
            rows.iter().all(|r| r["status"] == "done").then_some(rows)
        })
        .await
    }
}

/// The stubs, and a server pointed at them (on `database_url`, else SQLite in its fresh data
/// directory), with the catalog saved.
async fn with_stubs(
    database_url: Option<String>,
) -> (Platform, tempfile::TempDir, Api, (String, String)) {
    let platform = Platform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let api = start_server(dir.path(), &platform, database_url, &[]).await;
    let catalog = api.catalog().await;
    (platform, dir, api, catalog)
}

fn reference_of(case_id: &str) -> String {
    sop_core::case::case_reference(sop_core::ids::CaseId(case_id.parse().unwrap()))
}

/// The kinds of a case's timeline entries, in order.
fn timeline(case: &Value) -> Vec<String> {
    case["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["kind"].as_str().unwrap().to_owned())
        .collect()
}

fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

fn result_body(reference: &str, status: &str, amount: i64) -> Value {
    json!({
        "payment_id": reference, "status": status, "amount": amount, "currency": "SAR",
        "timestamp": chrono::Utc::now(),
    })
}

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
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Asserts no push carries health information (SPEC §7): the texts, with the case reference
/// taken out, name no person, age, gender, history, category or review type.
fn assert_no_health_information(pushes: &[Value]) {
    for push in pushes {
        let reference = push["data"]["case_reference"].as_str().unwrap();
        let text = format!("{} {}", push["title"], push["body"]).replace(reference, "");
        for secret in [
            PATIENT_NAME,
            "ليلى حداد",
            "54",
            "female",
            MEDICAL_HISTORY,
            CATEGORY_EN,
            CATEGORY_AR,
            REVIEW_EN,
            REVIEW_AR,
        ] {
            assert!(!text.contains(secret), "{secret:?} in push {push}");
        }
        let whole = push.to_string();
        for secret in [
            PATIENT_NAME,
            MEDICAL_HISTORY,
            CATEGORY_EN,
            REVIEW_EN,
            "female",
        ] {
            assert!(!whole.contains(secret), "{secret:?} in push {push}");
        }
    }
}

/// (recipient, kind) of pushes of one case, sorted.
fn push_kinds(pushes: &[Value], case_id: &str) -> Vec<(String, String)> {
    let mut kinds: Vec<(String, String)> = pushes
        .iter()
        .filter(|p| p["data"]["case_id"] == case_id)
        .map(|p| {
            let to = p["to"]["user_id"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("role:{}", p["to"]["role"].as_str().unwrap()));
            (to, p["data"]["kind"].as_str().unwrap().to_owned())
        })
        .collect();
    kinds.sort();
    kinds
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = items
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
    v.sort();
    v
}

/// Runs the scenario `fn $scenario(database_url: Option<String>)` as two tests,
/// `$scenario::on_sqlite` and `$scenario::on_postgres` (a fresh database each).
macro_rules! on_both_databases {
    ($scenario:ident) => {
        mod $scenario {
            use crate::support::TestPg;

            #[tokio::test]
            async fn on_sqlite() {
                super::$scenario(None).await;
            }

            #[tokio::test]
            async fn on_postgres() {
                let pg = TestPg::create().await;
                super::$scenario(Some(pg.url.clone())).await;
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------
// A full case life.

#[tokio::test]
async fn a_case_life_sends_exactly_these_requests_and_a_cancelled_paid_case_is_refunded() {
    let (platform, _dir, api, catalog) = with_stubs(None).await;
    let (case_id, reference) = api.awaiting_payment(&platform, &catalog).await;

    let paid = api
        .callback(
            &result_body(&reference, "success", PRICE),
            WEBHOOK_SECRET,
            now_unix(),
        )
        .await;
    paid.assert(200, 1000);
    assert_eq!(paid.body["data"]["result"], "processed");
    api.wait_status(&case_id, "payment_successful").await;
    api.ok(
        "/app/cancel-case",
        PATIENT,
        json!({"case_id": case_id, "reason": "changed my mind"}),
    )
    .await;
    eventually("the refund", || async {
        let summary = api
            .ok("/app/payment-summary", PATIENT, json!({"case_id": case_id}))
            .await;
        (summary["refund"] == "refunded").then_some(())
    })
    .await;
    api.drained().await;

    // The payment platform: one creation, one refund, each with its key and the API key.
    let callback_url = format!("{}/payments/callback", api.server.base_url);
    let calls = platform.payments.seen();
    let shapes: Vec<(String, String, Option<String>, Value)> = calls
        .iter()
        .map(|s| {
            (
                s.method.clone(),
                s.path.clone(),
                s.key.clone(),
                s.body.clone(),
            )
        })
        .collect();
    assert_eq!(
        shapes,
        [
            (
                "POST".to_owned(),
                "/v1/payments".to_owned(),
                Some(format!("create_payment:{reference}")),
                json!({
                    "reference": reference, "amount": PRICE, "currency": "SAR",
                    "case_reference": reference_of(&case_id), "callback_url": callback_url,
                }),
            ),
            (
                "POST".to_owned(),
                format!("/v1/payments/{reference}/refunds"),
                Some(format!("refund:{reference}")),
                json!({"amount": PRICE, "currency": "SAR"}),
            ),
        ]
    );
    for call in calls
        .iter()
        .chain(&platform.profiles.seen())
        .chain(&platform.push.seen())
    {
        assert_eq!(
            call.authorization.as_deref(),
            Some(&*format!("Bearer {API_KEY}"))
        );
    }

    // The profiles service: one invoice, and language look-ups for the pushes' recipients.
    let invoices = platform.profiles.ok("POST", "/v1/invoices");
    assert_eq!(invoices.len(), 1, "{invoices:?}");
    assert_eq!(invoices[0].key, Some(format!("invoice:{reference}")));
    assert_eq!(
        invoices[0].body,
        json!({
            "payment_reference": reference, "case_id": case_id,
            "case_reference": reference_of(&case_id), "patient_id": PATIENT,
            "amount": PRICE, "currency": "SAR",
        })
    );
    let looked_up: HashSet<String> = platform
        .profiles
        .seen()
        .iter()
        .filter(|s| s.method == "GET")
        .map(|s| s.path.clone())
        .collect();
    assert_eq!(
        looked_up,
        HashSet::from([format!("/v1/users/{PATIENT}"), format!("/v1/users/{C1}")])
    );

    // The push service: one push per notification, in the recipient's language.
    let pushes = platform.pushes();
    assert_eq!(
        push_kinds(&pushes, &case_id),
        pairs(&[
            ("role:admin", "case_submitted"),
            (C1, "coordinator_assigned"),
            (PATIENT, "coordinator_assigned"),
            (C1, "payment_successful"),
            (PATIENT, "payment_successful"),
            // The patient cancelled: the core tells the others, not the one who did it.
            (C1, "case_cancelled"),
            (PATIENT, "refund_completed"),
        ])
    );
    for push in &pushes {
        let kind: NotificationKind = serde_json::from_value(push["data"]["kind"].clone()).unwrap();
        let reference = push["data"]["case_reference"].as_str().unwrap();
        let lang = if push["to"]["user_id"] == PATIENT {
            Lang::Ar
        } else {
            Lang::En
        };
        let (title, body) = kind.text_in(lang, reference);
        assert_eq!(
            (&push["title"], &push["body"]),
            (&json!(title), &json!(body))
        );
        let key = push["data"]["notification_id"].as_str().unwrap();
        assert!(platform.push.effects().contains_key(&format!("push:{key}")));
    }
    assert_no_health_information(&pushes);
    // Every push of every key happened once.
    assert!(platform.push.effects().values().all(|n| *n == 1));
}

#[tokio::test]
async fn a_rejected_paid_case_is_refunded() {
    let (platform, _dir, api, catalog) = with_stubs(None).await;
    let (case_id, reference) = api.paid(&platform, &catalog).await;
    api.ok(
        "/admin/reject-case",
        ADMIN,
        json!({"case_id": case_id, "reason": "Outside our scope"}),
    )
    .await;
    eventually("the refund request", || async {
        let refunds = platform
            .payments
            .ok("POST", &format!("/v1/payments/{reference}/refunds"));
        (refunds.len() == 1).then_some(())
    })
    .await;
    api.drained().await;
    assert_eq!(api.status(&case_id).await, "rejected");
    assert_no_health_information(&platform.pushes());
}

/// A case's whole life to its report (SPEC §3.4, §5, §7, §9): exactly these pushes and platform
/// calls. The people on cards come from the profiles service (the coordinator's name and
/// contact on the status card, in the reader's language, not the local directory's), each push
/// is in its recipient's language (the patient's is Arabic, the coordinator's English, an
/// unknown specialist's English), and each person is looked up once however many pushes and
/// views name them (the cache). Nothing of them, nor any clinical text, reaches the server's
/// log.
async fn a_completed_case_life_pushes_in_each_language_asking_each_person_once(
    database_url: Option<String>,
) {
    let (platform, _dir, api, catalog) = with_stubs(database_url).await;
    let (case_id, _) = api.paid(&platform, &catalog).await;
    api.ok(
        "/pro/assign-doctor",
        C1,
        json!({"case_id": case_id, "doctor_ids": [S1]}),
    )
    .await;
    api.wait_status(&case_id, "doctors_assigned").await;

    for (lang, name) in [("en", C1_NAME_EN), ("ar", C1_NAME_AR)] {
        let reply = api
            .server
            .post_with(
                "/app/review-case-details",
                Some(&api.tokens[PATIENT]),
                Some(&json!({"case_id": case_id}).to_string()),
                &[("lang", lang)],
            )
            .await;
        reply.assert(200, 1000);
        let card = &reply.body["data"]["card"];
        assert_eq!(card["coordinator"]["name"], name, "{card}");
        assert_eq!(card["coordinator"]["phone"], C1_PHONE, "{card}");
        assert!(card["message"].as_str().unwrap().contains(name), "{card}");
    }
    // Those who see the patient's content see the patient's name, in their language.
    for (path, who, lang, name) in [
        ("/pro/review-case-details", C1, "ar", "ليلى حداد"),
        ("/pro/review-case-details", S1, "en", PATIENT_NAME),
        ("/admin/case-details", ADMIN, "en", PATIENT_NAME),
    ] {
        let reply = api
            .server
            .post_with(
                path,
                Some(&api.tokens[who]),
                Some(&json!({"case_id": case_id}).to_string()),
                &[("lang", lang)],
            )
            .await;
        reply.assert(200, 1000);
        assert_eq!(reply.body["data"]["patient_name"], name, "{who}");
    }
    let listed = api.ok("/app/list-cases", PATIENT, json!({})).await;
    let item = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["case_id"] == case_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(item["card"]["coordinator"]["name"], C1_NAME_EN, "{item}");

    // The specialist's opinion, the coordinator's summary, then the report.
    api.ok(
        "/pro/save-opinion",
        S1,
        json!({"case_id": case_id, "summary": "Agree with the biopsy reading", "concordance": "agrees"}),
    )
    .await;
    api.ok("/pro/submit-opinion", S1, json!({"case_id": case_id}))
        .await;
    api.ok(
        "/pro/save-summary",
        C1,
        json!({"case_id": case_id, "summary": "Surgery is not needed now"}),
    )
    .await;
    let completed = api
        .ok("/pro/submit-summary", C1, json!({"case_id": case_id}))
        .await;
    assert_eq!(completed["status"], "completed");
    eventually("the report-ready pushes", || async {
        let ready = push_kinds(&platform.pushes(), &case_id)
            .into_iter()
            .filter(|(_, kind)| kind == "report_ready")
            .count();
        (ready == 2).then_some(())
    })
    .await;
    api.drained().await;
    assert_eq!(
        push_kinds(&platform.pushes(), &case_id),
        pairs(&[
            ("role:admin", "case_submitted"),
            (C1, "coordinator_assigned"),
            (PATIENT, "coordinator_assigned"),
            (C1, "payment_successful"),
            (PATIENT, "payment_successful"),
            (S1, "doctors_assigned"),
            (PATIENT, "doctors_assigned"),
            (C1, "opinion_submitted"),
            (C1, "report_ready"),
            (PATIENT, "report_ready"),
        ])
    );
    // The platform was asked for the payment once, nothing else; one invoice.
    let paths: Vec<(String, String)> = platform
        .payments
        .seen()
        .into_iter()
        .map(|s| (s.method, s.path))
        .collect();
    assert_eq!(paths, [("POST".to_owned(), "/v1/payments".to_owned())]);
    assert_eq!(platform.profiles.ok("POST", "/v1/invoices").len(), 1);

    // Every push in its recipient's language: Arabic for the patient, English for the others.
    let pushes = platform.pushes();
    let mut languages: BTreeMap<String, HashSet<String>> = BTreeMap::new();
    for push in &pushes {
        let to = push["to"]["user_id"]
            .as_str()
            .unwrap_or("role:admin")
            .to_owned();
        let lang = push["language"].as_str().unwrap().to_owned();
        let kind: NotificationKind = serde_json::from_value(push["data"]["kind"].clone()).unwrap();
        let reference = push["data"]["case_reference"].as_str().unwrap();
        let expected = kind.text_in(if lang == "ar" { Lang::Ar } else { Lang::En }, reference);
        assert_eq!(
            (&push["title"], &push["body"]),
            (&json!(expected.0), &json!(expected.1))
        );
        languages.entry(to).or_default().insert(lang);
    }
    let one = |l: &str| HashSet::from([l.to_owned()]);
    assert_eq!(languages[PATIENT], one("ar"));
    assert_eq!(languages[C1], one("en"));
    assert_eq!(languages[S1], one("en"));
    assert_eq!(languages["role:admin"], one("en"));
    let patient_pushes = pushes
        .iter()
        .filter(|p| p["to"]["user_id"] == PATIENT)
        .count();
    assert!(patient_pushes >= 3, "{pushes:?}");
    assert_no_health_information(&pushes);

    // One look-up per person, for all those pushes and views.
    let mut asked: HashMap<String, usize> = HashMap::new();
    for seen in platform
        .profiles
        .seen()
        .iter()
        .filter(|s| s.method == "GET")
    {
        *asked.entry(seen.path.clone()).or_default() += 1;
    }
    assert_eq!(
        asked,
        HashMap::from([
            (format!("/v1/users/{PATIENT}"), 1),
            (format!("/v1/users/{C1}"), 1),
            (format!("/v1/users/{S1}"), 1),
        ])
    );
    let logs = api.server.logs();
    for secret in [
        PATIENT_NAME,
        "ليلى حداد",
        C1_NAME_EN,
        C1_NAME_AR,
        C1_PHONE,
        MEDICAL_HISTORY,
        "Agree with the biopsy reading",
        "Surgery is not needed now",
    ] {
        assert!(!logs.contains(secret), "{secret:?} in the server log");
    }
    let (status, _) = api.server.terminate();
    assert!(status.success());
}

on_both_databases!(a_completed_case_life_pushes_in_each_language_asking_each_person_once);

/// SPEC §5: once a retry (T8) opened a newer attempt, a success for the older one is recorded
/// and refunded, with no transition; the newer attempt then pays the case. One invoice, for the
/// attempt that paid.
async fn a_success_for_a_superseded_attempt_is_refunded_and_the_newer_attempt_pays(
    database_url: Option<String>,
) {
    let (platform, _dir, api, catalog) = with_stubs(database_url).await;
    let (case_id, first) = api.awaiting_payment(&platform, &catalog).await;
    api.report(&first, "failure").await;
    api.wait_status(&case_id, "payment_failed").await;
    let retried = api
        .ok("/app/retry-payment", PATIENT, json!({"case_id": case_id}))
        .await;
    let second = retried["payment_id"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    eventually("the second attempt at the platform", || async {
        let created = platform.payments.ok("POST", "/v1/payments");
        created
            .iter()
            .any(|s| s.body["reference"] == second.as_str())
            .then_some(())
    })
    .await;
    api.wait_status(&case_id, "awaiting_payment").await;

    // The payer had paid the first link after all.
    let late = api
        .callback(
            &result_body(&first, "success", PRICE),
            WEBHOOK_SECRET,
            now_unix(),
        )
        .await;
    late.assert(200, 1000);
    eventually("the refund of the superseded attempt", || async {
        let refunds = platform
            .payments
            .ok("POST", &format!("/v1/payments/{first}/refunds"));
        (refunds.len() == 1).then_some(())
    })
    .await;
    assert_eq!(api.status(&case_id).await, "awaiting_payment");
    api.report(&second, "success").await;
    api.wait_status(&case_id, "payment_successful").await;
    api.drained().await;

    let refunds: Vec<Seen> = platform
        .payments
        .ok("POST", "/v1/payments/")
        .into_iter()
        .filter(|s| s.path.ends_with("/refunds"))
        .collect();
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0].path, format!("/v1/payments/{first}/refunds"));
    assert_eq!(refunds[0].key, Some(format!("refund:{first}")));
    let invoices = platform.profiles.ok("POST", "/v1/invoices");
    assert_eq!(invoices.len(), 1, "{invoices:?}");
    assert_eq!(invoices[0].key, Some(format!("invoice:{second}")));
    let paid: Vec<(String, String)> = push_kinds(&platform.pushes(), &case_id)
        .into_iter()
        .filter(|(_, kind)| kind == "payment_successful")
        .collect();
    assert_eq!(
        paid,
        pairs(&[(C1, "payment_successful"), (PATIENT, "payment_successful")])
    );
}

on_both_databases!(a_success_for_a_superseded_attempt_is_refunded_and_the_newer_attempt_pays);

/// SPEC §5: a refund the platform does not make is `refund_failed`, shown to admins on the case
/// (payment and timeline), in their inbox and by push. A decline (`{status: "failed"}`) is
/// retried with backoff and may still go through; a 4xx is final: the outbox row turns
/// `failed` at once and is not repeated (`docs/adr/0007-platform-clients.md`) until an admin
/// retries it (`/admin/retry-outbox`), which then refunds the case.
async fn refunds_the_platform_declines_or_rejects_are_shown_to_admins(
    database_url: Option<String>,
) {
    let (platform, _dir, api, catalog) = with_stubs(database_url).await;
    let (declined, declined_ref) = api.paid(&platform, &catalog).await;
    let (rejected, rejected_ref) = api.paid(&platform, &catalog).await;
    let refunds = |reference: &str| format!("/v1/payments/{reference}/refunds");
    // The first refund of one is declined (then it goes through); the other's is refused.
    platform.payments.fail_next(
        &refunds(&declined_ref),
        &[Fault::Reply(
            200,
            json!({"status": "failed", "reason": "merchant balance too low"}),
        )],
    );
    platform.payments.answer_with(
        "POST",
        &refunds(&rejected_ref),
        422,
        json!({"error": "payment not refundable"}),
    );
    for case_id in [&declined, &rejected] {
        api.ok(
            "/admin/cancel-case",
            ADMIN,
            json!({"case_id": case_id, "reason": "Duplicate request"}),
        )
        .await;
    }

    // Both show `refund_failed` to admins, on the case and in their inbox.
    for case_id in [&declined, &rejected] {
        eventually("refund_failed on the case", || async {
            let case = api.details(case_id).await;
            (case["payment"]["refund"] == "failed").then_some(())
        })
        .await;
        let case = api.details(case_id).await;
        assert_eq!(case["status"], "cancelled");
        assert!(
            timeline(&case).contains(&"refund_failed".to_owned()),
            "{case}"
        );
        let inbox = api
            .ok("/admin/list-notifications", ADMIN, json!({"size": 100}))
            .await;
        assert!(
            inbox
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["case_id"] == case_id.as_str() && n["kind"] == "refund_failed"),
            "{inbox}"
        );
    }

    // The declined one is retried after its backoff (5 s) with the same key, and refunded.
    asked_twice_then_refunded(&platform, &api, &declined, &declined_ref).await;

    // The rejected one was asked once, its row is `failed` with the status, nothing retries it.
    let rows = api.settled().await;
    let row = rows
        .iter()
        .find(|r| r["case_id"] == rejected.as_str() && r["kind"] == "refund")
        .unwrap();
    assert_eq!(
        (&row["status"], &row["attempts"]),
        (&json!("failed"), &json!(1))
    );
    assert!(
        row["last_error"].as_str().unwrap().contains("HTTP 422"),
        "{row}"
    );
    assert_eq!(
        platform
            .payments
            .seen()
            .iter()
            .filter(|s| s.path == refunds(&rejected_ref))
            .count(),
        1
    );
    assert_eq!(api.details(&rejected).await["payment"]["refund"], "failed");

    // Pushes: admins told of each failure once, the patient of the one refund that happened.
    let pushes = platform.pushes();
    for (case_id, expected) in [
        (
            &declined,
            &[
                ("role:admin", "refund_failed"),
                (PATIENT, "refund_completed"),
            ][..],
        ),
        (&rejected, &[("role:admin", "refund_failed")][..]),
    ] {
        let refund_pushes: Vec<(String, String)> = push_kinds(&pushes, case_id)
            .into_iter()
            .filter(|(_, kind)| kind.starts_with("refund"))
            .collect();
        assert_eq!(refund_pushes, pairs(expected), "{case_id}");
    }
    assert_no_health_information(&pushes);

    // Once the platform accepts it, an admin finds the failed refund and retries it: the same
    // key is sent again, the case is refunded and the patient told.
    platform.payments.answer_with(
        "POST",
        &refunds(&rejected_ref),
        200,
        json!({"status": "refunded"}),
    );
    let failed = api
        .ok(
            "/admin/outbox",
            ADMIN,
            json!({"status": "failed", "case_id": rejected}),
        )
        .await;
    let failed = failed.as_array().unwrap();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["kind"], "refund");
    let outbox_id = failed[0]["outbox_id"].clone();
    let queued = api
        .ok(
            "/admin/retry-outbox",
            ADMIN,
            json!({"outbox_id": outbox_id}),
        )
        .await;
    assert_eq!(queued, json!({"outbox_id": outbox_id, "status": "pending"}));
    asked_twice_then_refunded(&platform, &api, &rejected, &rejected_ref).await;
    let row = api
        .ok("/admin/outbox", ADMIN, json!({"case_id": rejected}))
        .await
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["outbox_id"] == outbox_id)
        .cloned()
        .unwrap();
    assert_eq!(
        (&row["status"], &row["attempts"]),
        (&json!("done"), &json!(1))
    );
    eventually("the patient to be told", || async {
        push_kinds(&platform.pushes(), &rejected)
            .contains(&(PATIENT.to_owned(), "refund_completed".to_owned()))
            .then_some(())
    })
    .await;

    // A call that is not `failed` is not retried (409), an unknown one is 404, a bad status
    // filter is 400; every retry is in the audit log.
    let again = api
        .post(
            "/admin/retry-outbox",
            ADMIN,
            json!({"outbox_id": outbox_id}),
        )
        .await;
    assert_eq!((again.status, again.code()), (409, 1002), "{again:?}");
    assert!(again.message().contains("done"), "{again:?}");
    let unknown = api
        .post(
            "/admin/retry-outbox",
            ADMIN,
            json!({"outbox_id": uuid::Uuid::now_v7()}),
        )
        .await;
    assert_eq!((unknown.status, unknown.code()), (404, 1002), "{unknown:?}");
    let bad = api
        .post("/admin/outbox", ADMIN, json!({"status": "lost"}))
        .await;
    assert_eq!((bad.status, bad.code()), (400, 1002), "{bad:?}");
    let audit = api
        .ok(
            "/admin/audit-log",
            ADMIN,
            json!({"case_id": rejected, "size": 100}),
        )
        .await;
    let retries: Vec<&Value> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "retry_outbox")
        .collect();
    assert_eq!(
        retries
            .iter()
            .map(|r| (
                r["outcome"].as_str().unwrap(),
                r["user_id"].as_str().unwrap()
            ))
            .collect::<Vec<_>>(),
        [("refused:not_failed", ADMIN), ("ok", ADMIN)],
        "newest first"
    );
}

on_both_databases!(refunds_the_platform_declines_or_rejects_are_shown_to_admins);

/// Waits until the case `case_id` is refunded, then checks that the refund of its payment
/// `reference` was asked twice, each time with its idempotency key, and that the case's
/// timeline went requested → failed → refunded.
async fn asked_twice_then_refunded(platform: &Platform, api: &Api, case_id: &str, reference: &str) {
    eventually("the refund to go through", || async {
        let case = api.details(case_id).await;
        (case["payment"]["refund"] == "refunded").then_some(())
    })
    .await;
    let path = format!("/v1/payments/{reference}/refunds");
    let tried: Vec<Seen> = platform
        .payments
        .seen()
        .into_iter()
        .filter(|s| s.path == path)
        .collect();
    assert_eq!(tried.len(), 2, "{tried:?}");
    assert!(
        tried
            .iter()
            .all(|s| s.key == Some(format!("refund:{reference}")))
    );
    assert_eq!(
        timeline(&api.details(case_id).await)
            .into_iter()
            .filter(|k| k.starts_with("refund"))
            .collect::<Vec<_>>(),
        ["refund_requested", "refund_failed", "refunded"]
    );
}

/// SPEC §5: payments pending for over an hour are looked up on the platform over HTTP. A
/// success there follows the payment-succeeded rules (paid, invoice, notices), a failure the
/// payment-failed ones, a payment still pending is left alone, and a success for another
/// amount is refused and flagged like such a callback; before the hour nothing is asked. The
/// server is restarted in between, with the payments pending.
async fn reconciliation_asks_the_platform_and_applies_each_answer(database_url: Option<String>) {
    let (platform, dir, api, catalog) = with_stubs(database_url.clone()).await;
    let (succeeded, succeeded_ref) = api.awaiting_payment(&platform, &catalog).await;
    let (failed, failed_ref) = api.awaiting_payment(&platform, &catalog).await;
    let (pending, pending_ref) = api.awaiting_payment(&platform, &catalog).await;
    let (mismatched, mismatched_ref) = api.awaiting_payment(&platform, &catalog).await;
    platform.payments.answer_with(
        "GET",
        &format!("/v1/payments/{mismatched_ref}"),
        200,
        json!({"status": "succeeded", "amount": PRICE - 100, "currency": "SAR"}),
    );
    platform.payments.answer_with(
        "GET",
        &format!("/v1/payments/{succeeded_ref}"),
        200,
        json!({"status": "succeeded", "amount": PRICE, "currency": "SAR"}),
    );
    platform.payments.answer_with(
        "GET",
        &format!("/v1/payments/{failed_ref}"),
        200,
        json!({"status": "failed"}),
    );
    let early = api
        .ok("/scheduler/run-reconciliation", ADMIN, json!({}))
        .await;
    assert_eq!(early, json!({"checked": 0, "changed": 0}));
    assert!(platform.payments.ok("GET", "/v1/payments/").is_empty());
    let (status, _) = api.server.terminate();
    assert!(status.success());

    // An hour and a bit later (the worker's own reconciliation runs every 10 minutes, so
    // only the trigger runs it here).
    let api = start_server(
        dir.path(),
        &platform,
        database_url.clone(),
        &[("SOP_CLOCK_OFFSET_SECONDS", "3700".to_owned())],
    )
    .await;
    let run = api
        .ok("/scheduler/run-reconciliation", ADMIN, json!({}))
        .await;
    assert_eq!(run, json!({"checked": 4, "changed": 2}));
    let asked: HashSet<String> = platform
        .payments
        .ok("GET", "/v1/payments/")
        .into_iter()
        .map(|s| s.path)
        .collect();
    assert_eq!(
        asked,
        [&succeeded_ref, &failed_ref, &pending_ref, &mismatched_ref]
            .iter()
            .map(|r| format!("/v1/payments/{r}"))
            .collect()
    );
    assert_eq!(api.status(&succeeded).await, "payment_successful");
    assert_eq!(api.status(&failed).await, "payment_failed");
    assert_eq!(api.status(&pending).await, "awaiting_payment");
    assert_eq!(api.status(&mismatched).await, "awaiting_payment");
    api.assert_amount_mismatch_flagged(&mismatched).await;
    api.drained().await;
    // The success created its invoice and told the patient and coordinator; the failure told
    // the patient; the pending one produced nothing.
    let invoices = platform.profiles.ok("POST", "/v1/invoices");
    assert_eq!(invoices.len(), 1, "{invoices:?}");
    assert_eq!(invoices[0].key, Some(format!("invoice:{succeeded_ref}")));
    let pushes = platform.pushes();
    let after_payment = |case_id: &str| -> Vec<(String, String)> {
        push_kinds(&pushes, case_id)
            .into_iter()
            .filter(|(_, kind)| kind.starts_with("payment"))
            .collect()
    };
    assert_eq!(
        after_payment(&succeeded),
        pairs(&[(C1, "payment_successful"), (PATIENT, "payment_successful")])
    );
    assert_eq!(
        after_payment(&failed),
        pairs(&[(PATIENT, "payment_failed")])
    );
    assert!(after_payment(&pending).is_empty());
    assert!(after_payment(&mismatched).is_empty());
    // Asking again changes nothing more (the pending and the mismatched are asked again).
    let again = api
        .ok("/scheduler/run-reconciliation", ADMIN, json!({}))
        .await;
    assert_eq!(again, json!({"checked": 2, "changed": 0}));
}

on_both_databases!(reconciliation_asks_the_platform_and_applies_each_answer);

/// The profiles client in process. Standalone, the local directory answers (doctors by name in
/// either language; patients unknown). Over HTTP, a service that is down or hangs past
/// [`profiles::VIEW_LOOKUP_TIMEOUT`] does not hold up or fail a view: the local entry is shown;
/// failures are not cached, so the service's answer shows as soon as it is back.
#[tokio::test]
async fn doctor_names_come_from_the_local_directory_when_the_profiles_service_cannot_answer() {
    let (state, _key, _dir) = crate::support::in_process().await;
    let local = DoctorProfile {
        doctor_id: UserId::new(C1),
        name_en: "Dr Local".to_owned(),
        name_ar: "د. محلي".to_owned(),
        phone: "+966500000001".to_owned(),
        email: "local@example.org".to_owned(),
        specialties: Vec::new(),
    };
    state
        .store
        .save_doctor(&local, &AuditMeta::default(), chrono::Utc::now())
        .await
        .unwrap();

    // Standalone: the local tables.
    assert!(state.profiles.is_local());
    let name = |lang| state.profiles.display_name(C1, lang);
    assert_eq!(name(Lang::Ar).await.unwrap().as_deref(), Some("د. محلي"));
    assert_eq!(name(Lang::En).await.unwrap().as_deref(), Some("Dr Local"));
    assert_eq!(
        state
            .profiles
            .display_name(PATIENT, Lang::En)
            .await
            .unwrap(),
        None
    );
    let card = profiles::doctor_profile(&state, C1).await.unwrap().unwrap();
    assert_eq!(card, local);

    // Over HTTP, with the service down, then hanging, then back.
    let stub = Stub::start().await;
    let service = Service::new(
        "profiles",
        stub.url().parse().unwrap(),
        None,
        Duration::from_secs(5),
    )
    .unwrap();
    let state = state.with_profiles(Arc::new(profiles::HttpProfiles::new(service)));
    stub.set_down(true);
    let shown = profiles::doctor_profile(&state, C1).await.unwrap().unwrap();
    assert_eq!(shown.name_en, "Dr Local");
    stub.set_down(false);
    stub.fail_next("/v1/users", &[Fault::Hang]);
    let started = Instant::now();
    let shown = profiles::doctor_profile(&state, C1).await.unwrap().unwrap();
    assert_eq!(shown.name_en, "Dr Local");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let shown = profiles::doctor_profile(&state, C1).await.unwrap().unwrap();
    assert_eq!(
        (shown.name_en.as_str(), shown.phone.as_str()),
        (C1_NAME_EN, C1_PHONE)
    );
    assert_eq!(
        state
            .profiles
            .display_name(C1, Lang::Ar)
            .await
            .unwrap()
            .as_deref(),
        Some(C1_NAME_AR)
    );
    // Unknown to the service and to the directory.
    assert_eq!(
        profiles::doctor_profile(&state, "EMP404").await.unwrap(),
        None
    );
}

// ---------------------------------------------------------------------------------------------
// Failures, retries, restarts.

async fn failed_and_timed_out_calls_are_retried_with_their_keys_and_the_outbox_drains(
    database_url: Option<String>,
) {
    let platform = Platform::start().await;
    // The creation hangs past the client's 1 s timeout once (the platform did take it), the
    // first push fails with 500, the first invoice too.
    platform.payments.fail_next("/v1/payments", &[Fault::Hang]);
    platform.push.fail_next("/v1/push", &[Fault::Error]);
    let dir = tempfile::tempdir().unwrap();
    let api = start_server(dir.path(), &platform, database_url, &[]).await;
    let catalog = api.catalog().await;
    let (case_id, reference) = api.awaiting_payment(&platform, &catalog).await;
    platform.profiles.fail_next("/v1/invoices", &[Fault::Error]);
    api.report(&reference, "success").await;
    api.wait_status(&case_id, "payment_successful").await;
    let rows = api.drained().await;

    // The creation was asked for twice with one key: one charge at the platform.
    let creations: Vec<Seen> = platform
        .payments
        .seen()
        .into_iter()
        .filter(|s| s.path == "/v1/payments")
        .collect();
    assert_eq!(creations.len(), 2, "{creations:?}");
    assert!(
        creations
            .iter()
            .all(|s| s.key == Some(format!("create_payment:{reference}")))
    );
    assert_eq!(creations[0].body, creations[1].body);
    // Rows retried show their attempts to admins.
    let attempts: BTreeMap<String, i64> = rows
        .iter()
        .filter(|r| r["attempts"].as_i64().unwrap() > 1)
        .map(|r| {
            (
                r["kind"].as_str().unwrap().to_owned(),
                r["attempts"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(attempts.contains_key("create_payment"), "{attempts:?}");
    assert!(attempts.contains_key("push"), "{attempts:?}");
    // The push that failed was sent again with its key; each push took effect once.
    let pushes = platform.push.seen();
    let failed = pushes.iter().find(|s| s.answered == 500).unwrap();
    let again: Vec<&Seen> = pushes.iter().filter(|s| s.key == failed.key).collect();
    assert_eq!(again.len(), 2);
    assert_eq!(again[0].body, again[1].body);
    assert!(platform.push.effects().values().all(|n| *n == 1));
    // The invoice too: one 500, then once.
    let invoices: Vec<Seen> = platform
        .profiles
        .seen()
        .into_iter()
        .filter(|s| s.path == "/v1/invoices")
        .collect();
    assert_eq!(
        invoices.iter().map(|s| s.answered).collect::<Vec<_>>(),
        [500, 201]
    );
    assert_eq!(
        platform.profiles.effects()[&format!("invoice:{reference}")],
        1
    );
}

on_both_databases!(failed_and_timed_out_calls_are_retried_with_their_keys_and_the_outbox_drains);

async fn pending_deliveries_survive_a_restart_and_drain_when_the_service_recovers(
    database_url: Option<String>,
) {
    let platform = Platform::start().await;
    platform.push.set_down(true);
    let dir = tempfile::tempdir().unwrap();
    let api = start_server(dir.path(), &platform, database_url.clone(), &[]).await;
    let catalog = api.catalog().await;
    let mut cases = Vec::new();
    for _ in 0..3 {
        cases.push(api.case(&catalog, true).await);
    }
    // Each submission queued a push for the admins; the service is down.
    eventually("failed attempts", || async {
        let failed = platform
            .push
            .seen()
            .iter()
            .filter(|s| s.answered == 500)
            .count();
        (failed >= 3).then_some(())
    })
    .await;
    let (status, _) = api.server.terminate();
    assert!(status.success());

    // Restarted an hour later (every backoff and lease is over), with the service back.
    platform.push.set_down(false);
    let api = start_server(
        dir.path(),
        &platform,
        database_url,
        &[("SOP_CLOCK_OFFSET_SECONDS", "3600".to_owned())],
    )
    .await;
    api.drained().await;
    let pushes = platform.pushes();
    for case_id in &cases {
        assert_eq!(
            push_kinds(&pushes, case_id),
            pairs(&[("role:admin", "case_submitted")])
        );
    }
    assert!(platform.push.effects().values().all(|n| *n == 1));
}

on_both_databases!(pending_deliveries_survive_a_restart_and_drain_when_the_service_recovers);

/// The push service goes down while the server keeps running: the notices are in the in-app
/// inbox at once, their pushes fail and back off, and once the service is back they all drain
/// on their own (no restart), each push once with its key.
#[tokio::test]
async fn pushes_drain_on_their_own_once_the_push_service_recovers() {
    let (platform, _dir, api, catalog) = with_stubs(None).await;
    platform.push.set_down(true);
    let mut cases = Vec::new();
    for _ in 0..3 {
        cases.push(api.case(&catalog, true).await);
    }
    let inbox = api
        .ok("/admin/list-notifications", ADMIN, json!({"size": 100}))
        .await;
    for case_id in &cases {
        assert!(
            inbox
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["case_id"] == case_id.as_str() && n["kind"] == "case_submitted"),
            "{inbox}"
        );
    }
    eventually("failed attempts", || async {
        let failed = platform
            .push
            .seen()
            .iter()
            .filter(|s| s.answered == 500)
            .count();
        (failed >= 3).then_some(())
    })
    .await;
    let rows = api.ok("/admin/outbox", ADMIN, json!({"size": 100})).await;
    let waiting = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "push" && r["status"] == "pending" && r["last_error"].is_string())
        .count();
    assert_eq!(waiting, 3, "{rows}");

    platform.push.set_down(false);
    let rows = api.drained().await;
    assert!(rows.iter().all(|r| r["attempts"].as_i64().unwrap() >= 1));
    let pushes = platform.pushes();
    for case_id in &cases {
        assert_eq!(
            push_kinds(&pushes, case_id),
            pairs(&[("role:admin", "case_submitted")])
        );
    }
    assert!(platform.push.effects().values().all(|n| *n == 1));
}

// ---------------------------------------------------------------------------------------------
// Callbacks with the platform's signature (SPEC §5).

async fn callbacks_are_verified_and_each_has_its_spec_outcome(database_url: Option<String>) {
    let (platform, _dir, api, catalog) = with_stubs(database_url).await;
    let (case_id, reference) = api.awaiting_payment(&platform, &catalog).await;
    let success = result_body(&reference, "success", PRICE);

    // Forged (another secret) and stale (signed six minutes ago): 401, nothing changes.
    api.callback(&success, "whsec_forged", now_unix())
        .await
        .assert(401, 2000);
    api.callback(&success, WEBHOOK_SECRET, now_unix() - 360)
        .await
        .assert(401, 2000);
    assert_eq!(api.status(&case_id).await, "awaiting_payment");
    // Wrong amount: refused (amount_mismatch), flagged in the audit log, nothing changes.
    let wrong = api
        .callback(
            &result_body(&reference, "success", PRICE - 1),
            WEBHOOK_SECRET,
            now_unix(),
        )
        .await;
    assert_eq!(wrong.status, 400, "{wrong:?}");
    assert_eq!(wrong.body["data"]["code"], "amount_mismatch");
    assert_eq!(api.status(&case_id).await, "awaiting_payment");
    api.assert_amount_mismatch_flagged(&case_id).await;
    // Unknown payment: recorded, no transition anywhere.
    let unknown = uuid::Uuid::now_v7().to_string();
    let recorded = api
        .callback(
            &result_body(&unknown, "success", PRICE),
            WEBHOOK_SECRET,
            now_unix(),
        )
        .await;
    recorded.assert(200, 1000);
    assert_eq!(recorded.body["data"]["result"], "recorded");
    // Out of order: a failure, then the success that really happened (late success) → paid.
    api.report(&reference, "failure").await;
    api.wait_status(&case_id, "payment_failed").await;
    let late = api.callback(&success, WEBHOOK_SECRET, now_unix()).await;
    late.assert(200, 1000);
    assert_eq!(late.body["data"]["result"], "processed");
    assert_eq!(api.status(&case_id).await, "payment_successful");
    // Replayed (the same signed body again) and a failure after success: no change.
    let replay = api.callback(&success, WEBHOOK_SECRET, now_unix()).await;
    replay.assert(200, 1000);
    assert_eq!(replay.body["data"]["result"], "no_change");
    let after = api
        .callback(
            &result_body(&reference, "failure", PRICE),
            WEBHOOK_SECRET,
            now_unix(),
        )
        .await;
    after.assert(200, 1000);
    assert_eq!(after.body["data"]["result"], "no_change");
    assert_eq!(api.status(&case_id).await, "payment_successful");
    api.drained().await;
    // Exactly one invoice and no refund came of all this.
    assert_eq!(platform.profiles.ok("POST", "/v1/invoices").len(), 1);
    assert!(
        platform
            .payments
            .ok("POST", &format!("/v1/payments/{reference}/refunds"))
            .is_empty()
    );
}

on_both_databases!(callbacks_are_verified_and_each_has_its_spec_outcome);

// ---------------------------------------------------------------------------------------------
// Two instances on one PostgreSQL.

/// Many drafts left for over a day and many paid cases past their due date, two server
/// processes on one database running both jobs at the same time (their own timers every second,
/// and the HTTP triggers of both jobs on both instances at once): each patient is reminded
/// exactly once, and each overdue case alerts its coordinator and every specialist who has not
/// submitted exactly once — in the inbox and by push. (A change made through one instance
/// reaching a device connected to the other is `live::a_change_made_through_instance_a_wakes_a_
/// device_on_b_which_pulls_it_from_b`.)
#[tokio::test]
async fn two_instances_send_every_reminder_and_overdue_alert_exactly_once() {
    const DRAFTS: usize = 30;
    const OVERDUE: usize = 16;
    let pg = TestPg::create().await;
    let platform = Platform::start().await;
    let dir_a = tempfile::tempdir().unwrap();
    let mut drafts = Vec::new();
    // (case id, who must be alerted)
    let mut overdue: Vec<(String, Vec<&str>)> = Vec::new();
    {
        let setup = start_server(dir_a.path(), &platform, Some(pg.url.clone()), &[]).await;
        let catalog = setup.catalog().await;
        for _ in 0..DRAFTS {
            drafts.push(setup.case(&catalog, false).await);
        }
        // Half are paid only (the coordinator is alerted), half have a specialist who has not
        // submitted (both are alerted). Due in 7 days (the review type's SLA).
        for i in 0..OVERDUE {
            let (case_id, _) = setup.paid(&platform, &catalog).await;
            if i % 2 == 0 {
                setup
                    .ok(
                        "/pro/assign-doctor",
                        C1,
                        json!({"case_id": case_id, "doctor_ids": [S1]}),
                    )
                    .await;
                overdue.push((case_id, vec![C1, S1]));
            } else {
                overdue.push((case_id, vec![C1]));
            }
        }
        setup.drained().await;
        let (status, _) = setup.server.terminate();
        assert!(status.success());
    }
    let pushed_before = platform.pushes().len();

    // Both instances live 8 days later and run their jobs every second.
    let later = [
        ("SOP_CLOCK_OFFSET_SECONDS", (8 * 24 * 3600).to_string()),
        ("SOP_JOBS_EVERY_SECONDS", "1".to_owned()),
    ];
    let a = start_server(dir_a.path(), &platform, Some(pg.url.clone()), &later).await;
    // B shares A's data directory (its signing key); the data itself is in PostgreSQL.
    let b = start_server(dir_a.path(), &platform, Some(pg.url.clone()), &later).await;
    let (ra, rb, oa, ob) = tokio::join!(
        a.post("/scheduler/run-draft-reminders", ADMIN, json!({})),
        b.post("/scheduler/run-draft-reminders", ADMIN, json!({})),
        a.post("/scheduler/run-overdue-alerts", ADMIN, json!({})),
        b.post("/scheduler/run-overdue-alerts", ADMIN, json!({})),
    );
    for reply in [&ra, &rb, &oa, &ob] {
        reply.assert(200, 1000);
    }

    let alerts_expected: usize = overdue.iter().map(|(_, to)| to.len()).sum();
    let count =
        |pushes: &[Value], kind: &str| pushes.iter().filter(|p| p["data"]["kind"] == kind).count();
    eventually("every reminder and alert pushed", || async {
        let pushes = platform.pushes();
        (count(&pushes, "draft_reminder") >= DRAFTS
            && count(&pushes, "overdue_report") >= alerts_expected)
            .then_some(())
    })
    .await;
    // Let both timers run a few more times.
    tokio::time::sleep(Duration::from_secs(3)).await;
    a.drained().await;

    let pushes = platform.pushes();
    assert_eq!(count(&pushes, "draft_reminder"), DRAFTS);
    assert_eq!(count(&pushes, "overdue_report"), alerts_expected);
    // Nothing else was pushed by the jobs.
    assert_eq!(pushes.len() - pushed_before, DRAFTS + alerts_expected);
    for case_id in &drafts {
        assert_eq!(
            push_kinds(&pushes, case_id),
            pairs(&[(PATIENT, "draft_reminder")]),
            "{case_id}"
        );
    }
    for (case_id, to) in &overdue {
        let alerted: Vec<(String, String)> = push_kinds(&pushes, case_id)
            .into_iter()
            .filter(|(_, kind)| kind == "overdue_report")
            .collect();
        let expected: Vec<(&str, &str)> = to.iter().map(|d| (*d, "overdue_report")).collect();
        assert_eq!(alerted, pairs(&expected), "{case_id}");
    }
    assert!(platform.push.effects().values().all(|n| *n == 1));
    assert_no_health_information(&pushes);

    // The inbox holds the same, once each; each case's "sent" mark is set.
    let mut db = pg.connect().await;
    let stored: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT kind, recipient, COUNT(*) FROM notifications \
         WHERE kind IN ('draft_reminder', 'overdue_report') \
         GROUP BY kind, recipient, case_id ORDER BY kind, recipient",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    assert!(stored.iter().all(|(_, _, n)| *n == 1), "{stored:?}");
    let of_kind = |kind: &str| stored.iter().filter(|(k, _, _)| k == kind).count();
    assert_eq!(of_kind("draft_reminder"), DRAFTS);
    assert_eq!(of_kind("overdue_report"), alerts_expected);
    let to_specialist = stored
        .iter()
        .filter(|(k, r, _)| k == "overdue_report" && r == S1)
        .count();
    assert_eq!(to_specialist, OVERDUE / 2);
    let marked: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM cases WHERE state->>'overdue_alert_sent_at' IS NOT NULL",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert_eq!(marked, OVERDUE as i64);
    // One "sent" event per case in its history, whichever instance won.
    let events: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM case_events WHERE event->>'event' = 'overdue_alert_sent'",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert_eq!(events, OVERDUE as i64);
    drop(a);
    drop(b);
}
