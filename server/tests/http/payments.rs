//! Payments end to end (SPEC §5, §9): the sandbox platform, its signed callback over real HTTP,
//! the outbox worker, refunds and reconciliation.
//!
//! Each test runs the application in process on a real `127.0.0.1` socket whose address is the
//! state's `public_url`, so the sandbox's callback travels over HTTP to the same server. The
//! catalog and the case commands before payment go through the store (other route groups are
//! not under test here).

use crate::support::TestPg;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use sop_core::actor::Actor;
use sop_core::case::{Gender, Intake, Status, TimelineKind};
use sop_core::catalog::{CoordinatorMapping, DiseaseCategory, ReviewType};
use sop_core::command::Command;
use sop_core::ids::{CaseId, CategoryId, MappingId, PaymentId, ReviewTypeId, UserId};
use sop_core::{Case, Refusal};
use sop_server::AppState;
use sop_server::auth::{Audience, Authenticator, LocalKey};
use sop_server::config::{DatabaseConfig, SecretUrl};
use sop_server::db::Db;
use sop_server::outbox::{self, LEASE, MAX_ATTEMPTS, RunReport, Worker};
use sop_server::payments::reconcile::reconcile;
use sop_server::payments::sandbox::{SandboxResult, WEBHOOK_SECRET_FILE};
use sop_server::payments::{
    BoxFuture, CallbackError, CallbackEvent, CreatedPayment, PaymentProvider, PaymentRequest,
    PaymentState, ProviderError, RefundOutcome, RefundRequest, Sandbox, signature,
};
use sop_server::store::rows::OutboxRow;
use sop_server::store::{AuditFilter, AuditMeta, Page, Store};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const PRICE: i64 = 150_000;
const DAYS: i32 = 7;
const COORDINATOR: &str = "EMP1";
const PATIENT: &str = "P1";
const HISTORY: &str = "Chest pain since March";

/// The application served on a real socket, and what the tests need around it.
struct Harness {
    state: AppState,
    key: LocalKey,
    base: String,
    client: reqwest::Client,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    worker: Option<Worker>,
    rt_id: ReviewTypeId,
    dc_id: CategoryId,
    dir: tempfile::TempDir,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.worker.take();
        self.server.abort();
    }
}

/// What a test wants of its harness.
#[derive(Default)]
struct Options {
    /// Run the background outbox worker (else tests call `run_once`).
    worker: bool,
    /// Use the [`Flaky`] platform whose first `n` payment creations fail instead of the sandbox.
    flaky_failures: Option<u32>,
    /// A PostgreSQL database instead of SQLite.
    database: Option<DatabaseConfig>,
}

async fn start(options: Options) -> Harness {
    let dir = tempfile::tempdir().expect("tempdir");
    let database = options.database.unwrap_or(DatabaseConfig::Sqlite {
        path: dir.path().join("sop.db"),
    });
    let db = Db::connect(&database).await.expect("database");
    db.migrate().await.expect("migrate");
    let key = LocalKey::generate().expect("key");
    let auth = Authenticator::local(&key).expect("authenticator");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let settings = sop_server::state::Settings::new(dir.path().to_path_buf(), base.clone());
    let mut state = AppState::new(db, auth, settings);
    if let Some(failures) = options.flaky_failures {
        state = state.with_payments(Arc::new(Flaky {
            inner: Sandbox::new(dir.path(), &base),
            failures_left: AtomicU32::new(failures),
        }));
    }
    let server = tokio::spawn(sop_server::serve_until_signal(
        listener,
        sop_server::app(state.clone()),
        std::future::pending(),
    ));
    let worker = options.worker.then(|| outbox::spawn(state.clone()));
    let (rt_id, dc_id) = seed_catalog(&state.store).await;
    Harness {
        state,
        key,
        base,
        client: reqwest::Client::new(),
        server,
        worker,
        rt_id,
        dc_id,
        dir,
    }
}

async fn seed_catalog(store: &Store) -> (ReviewTypeId, CategoryId) {
    let meta = AuditMeta::default();
    let now = Utc::now();
    let rt_id = ReviewTypeId::new_v7();
    let dc_id = CategoryId::new_v7();
    store
        .save_review_type(
            &ReviewType {
                rt_id,
                title_en: "Standard".into(),
                title_ar: "عادي".into(),
                description_en: "d".into(),
                description_ar: "d".into(),
                duration_en: "5–7 days".into(),
                duration_ar: "٥–٧ أيام".into(),
                price: PRICE,
                currency: "SAR".into(),
                expected_review_days: DAYS,
                icon: "star".into(),
                active: true,
                created_at: now,
            },
            &meta,
            now,
        )
        .await
        .expect("review type");
    store
        .save_category(
            &DiseaseCategory {
                dc_id,
                label_en: "Cardiology".into(),
                label_ar: "أمراض القلب".into(),
                active: true,
                doctor_ids: vec![UserId("EMP2".into())],
            },
            &meta,
            now,
        )
        .await
        .expect("category");
    store
        .save_mapping(
            &CoordinatorMapping {
                cc_id: MappingId::new_v7(),
                speciality_id: dc_id,
                doctor_ids: vec![UserId(COORDINATOR.into())],
                active: true,
            },
            &meta,
            now,
        )
        .await
        .expect("mapping");
    (rt_id, dc_id)
}

impl Harness {
    async fn run(&self, case_id: CaseId, command: Command, actor: Actor) -> Result<Case, Refusal> {
        let state = &self.state;
        let meta = AuditMeta::default();
        match state
            .store
            .execute(
                case_id,
                &command,
                &actor,
                &meta,
                &state.settings.limits,
                state.now(),
            )
            .await
        {
            Ok(executed) => {
                // What `api::run_command` does for requests.
                if !executed.decision.effects.is_empty() {
                    state.outbox_wake.notify();
                }
                Ok(executed.case)
            }
            Err(sop_server::store::StoreError::Refused(r)) => Err(r),
            Err(e) => panic!("store error: {e}"),
        }
    }

    /// A submitted case with a coordinator assigned: awaiting payment on attempt `payment_id`.
    async fn awaiting_payment(&self) -> (CaseId, PaymentId) {
        let case_id = CaseId::new_v7();
        let patient = Actor::Patient(UserId(PATIENT.into()));
        self.run(
            case_id,
            Command::CreateCase {
                case_id,
                rt_id: self.rt_id,
                dc_id: self.dc_id,
                intake: Intake {
                    patient_age: Some(40),
                    patient_gender: Some(Gender::Female),
                    medical_history: HISTORY.into(),
                    questions: "Is surgery needed?".into(),
                },
                submit: true,
            },
            patient,
        )
        .await
        .expect("create and submit");
        let payment_id = PaymentId::new_v7();
        let case = self
            .run(
                case_id,
                Command::AssignCoordinator {
                    doctor_id: UserId(COORDINATOR.into()),
                    payment_id,
                    requested_documents: None,
                },
                Actor::Admin(UserId("A1".into())),
            )
            .await
            .expect("assign coordinator");
        assert_eq!(case.status, Status::AwaitingPayment);
        (case_id, payment_id)
    }

    async fn case(&self, case_id: CaseId) -> Case {
        self.state
            .store
            .case(case_id)
            .await
            .expect("store")
            .expect("case")
    }

    /// Waits (up to `within`) until `check` holds for the case, and returns it.
    async fn wait_case(
        &self,
        case_id: CaseId,
        within: Duration,
        check: impl Fn(&Case) -> bool,
    ) -> Case {
        let started = Instant::now();
        loop {
            let case = self.case(case_id).await;
            if check(&case) {
                return case;
            }
            assert!(
                started.elapsed() < within,
                "case did not reach the expected state within {within:?}: status {:?}, payments {:?}, timeline {:?}",
                case.status,
                case.payments,
                case.timeline.iter().map(|t| t.kind).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The link of attempt `payment_id`, once the worker has delivered its creation.
    async fn link(&self, case_id: CaseId, payment_id: PaymentId) -> String {
        let case = self
            .wait_case(case_id, Duration::from_secs(2), |c| {
                c.payment(payment_id).is_some_and(|p| p.link.is_some())
            })
            .await;
        case.payment(payment_id)
            .and_then(|p| p.link.clone())
            .expect("link")
    }

    fn secret(&self) -> Vec<u8> {
        std::fs::read_to_string(self.dir.path().join(WEBHOOK_SECRET_FILE))
            .expect("secret file")
            .trim()
            .as_bytes()
            .to_vec()
    }

    /// Posts a callback body signed with `secret` at `signed_at`.
    async fn callback_signed(
        &self,
        body: &Value,
        secret: &[u8],
        signed_at: DateTime<Utc>,
    ) -> (u16, Value) {
        let raw = serde_json::to_vec(body).expect("json");
        let header = signature::header_value(secret, signed_at.timestamp(), &raw);
        let resp = self
            .client
            .post(format!("{}/payments/callback", self.base))
            .header("content-type", "application/json")
            .header(signature::HEADER, header)
            .body(raw)
            .send()
            .await
            .expect("POST callback");
        let status = resp.status().as_u16();
        (status, resp.json().await.expect("JSON envelope"))
    }

    /// Posts a properly signed callback.
    async fn callback(&self, body: &Value) -> (u16, Value) {
        self.callback_signed(body, &self.secret(), Utc::now()).await
    }

    /// Presses a button of the sandbox page at `link`.
    async fn press(&self, link: &str, result: &str) -> (u16, String) {
        let resp = self
            .client
            .post(link)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("result={result}"))
            .send()
            .await
            .expect("POST sandbox page");
        (resp.status().as_u16(), resp.text().await.expect("page"))
    }

    async fn outbox(&self) -> Vec<OutboxRow> {
        self.state
            .store
            .list_outbox(
                &sop_server::store::OutboxFilter::default(),
                Page::new(Some(1), Some(100)),
            )
            .await
            .expect("outbox")
            .items
    }

    async fn outbox_of_kind(&self, kind: &str) -> Vec<OutboxRow> {
        self.outbox()
            .await
            .into_iter()
            .filter(|r| r.kind == kind)
            .collect()
    }

    async fn audit_outcomes(
        &self,
        case_id: Option<CaseId>,
    ) -> Vec<(String, String, Option<String>)> {
        let filter = AuditFilter {
            case_id: case_id.map(|c| c.0),
            ..AuditFilter::default()
        };
        self.state
            .store
            .list_audit(&filter, Page::new(Some(1), Some(100)))
            .await
            .expect("audit")
            .items
            .into_iter()
            .map(|r| (r.action, r.outcome, r.resource_id))
            .collect()
    }

    fn token(&self, sub: &str, aud: Audience) -> String {
        self.key
            .mint(sub, aud, Duration::from_secs(300))
            .expect("token")
    }
}

fn success_body(payment_id: PaymentId, amount: i64) -> Value {
    json!({
        "payment_id": payment_id,
        "status": "success",
        "amount": amount,
        "currency": "SAR",
        "timestamp": Utc::now(),
    })
}

fn timeline(case: &Case) -> Vec<TimelineKind> {
    case.timeline.iter().map(|t| t.kind).collect()
}

#[tokio::test]
async fn paying_on_the_sandbox_page_makes_the_case_paid_and_the_invoice_is_delivered() {
    let h = start(Options {
        worker: true,
        ..Options::default()
    })
    .await;
    let started = Instant::now();
    let (case_id, payment_id) = h.awaiting_payment().await;
    let link = h.link(case_id, payment_id).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the link took {:?}",
        started.elapsed()
    );
    assert_eq!(link, format!("{}/sandbox/pay/{payment_id}", h.base));

    let page = h.client.get(&link).send().await.expect("GET page");
    assert_eq!(page.status().as_u16(), 200);
    let page = page.text().await.expect("page");
    assert!(page.contains("1500.00 SAR"), "{page}");
    assert!(
        page.contains(&sop_core::case::case_reference(case_id)),
        "{page}"
    );
    assert!(page.contains(r#"value="success""#) && page.contains(r#"value="failure""#));
    assert!(!page.contains(HISTORY), "no health information on the page");

    let (status, page) = h.press(&link, "success").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Payment succeeded"), "{page}");
    assert!(page.contains("The service was notified"), "{page}");

    // The callback went over HTTP before the page answered.
    let case = h.case(case_id).await;
    assert_eq!(case.status, Status::PaymentSuccessful);
    let paid_at = case.paid_at.expect("paid_at");
    assert_eq!(
        case.due_at,
        Some(paid_at + TimeDelta::days(i64::from(DAYS)))
    );
    assert!(timeline(&case).contains(&TimelineKind::PaymentReceived));

    let started = Instant::now();
    loop {
        let invoices = h.outbox_of_kind("invoice").await;
        assert_eq!(invoices.len(), 1);
        if invoices[0].status == "done" {
            assert!(invoices[0].done_at.is_some());
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "{invoices:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let created = h.outbox_of_kind("create_payment").await;
    assert_eq!(created[0].status, "done");
    assert_eq!(created[0].attempts, 1);
}

#[tokio::test]
async fn a_failed_payment_can_be_retried_with_a_new_link_and_then_paid() {
    let h = start(Options {
        worker: true,
        ..Options::default()
    })
    .await;
    let (case_id, first) = h.awaiting_payment().await;
    let first_link = h.link(case_id, first).await;

    let (status, page) = h.press(&first_link, "failure").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Payment failed"), "{page}");
    assert_eq!(h.case(case_id).await.status, Status::PaymentFailed);

    let second = PaymentId::new_v7();
    let case = h
        .run(
            case_id,
            Command::RetryPayment { payment_id: second },
            Actor::Patient(UserId(PATIENT.into())),
        )
        .await
        .expect("retry payment");
    assert_eq!(case.status, Status::AwaitingPayment);
    let second_link = h.link(case_id, second).await;
    assert_ne!(first_link, second_link);

    let (status, _) = h.press(&second_link, "success").await;
    assert_eq!(status, 200);
    let case = h.case(case_id).await;
    assert_eq!(case.status, Status::PaymentSuccessful);
    assert!(case.paid_at.is_some());
}

#[tokio::test]
async fn a_forged_or_missing_signature_is_401_and_changes_nothing() {
    let h = start(Options::default()).await;
    let (case_id, payment_id) = h.awaiting_payment().await;
    let before = h.case(case_id).await;
    let audit_before = h.audit_outcomes(None).await.len();

    let (status, body) = h
        .callback_signed(
            &success_body(payment_id, PRICE),
            b"not-the-secret",
            Utc::now(),
        )
        .await;
    assert_eq!(
        (status, body["status"].as_i64()),
        (401, Some(2000)),
        "{body}"
    );

    let resp = h
        .client
        .post(format!("{}/payments/callback", h.base))
        .header("content-type", "application/json")
        .body(success_body(payment_id, PRICE).to_string())
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status().as_u16(), 401);

    assert_eq!(h.case(case_id).await, before);
    assert_eq!(h.audit_outcomes(None).await.len(), audit_before);
}

#[tokio::test]
async fn a_callback_signed_six_minutes_ago_is_401() {
    let h = start(Options::default()).await;
    let (case_id, payment_id) = h.awaiting_payment().await;
    let (status, body) = h
        .callback_signed(
            &success_body(payment_id, PRICE),
            &h.secret(),
            Utc::now() - TimeDelta::minutes(6),
        )
        .await;
    assert_eq!(
        (status, body["status"].as_i64()),
        (401, Some(2000)),
        "{body}"
    );
    assert_eq!(h.case(case_id).await.status, Status::AwaitingPayment);
}

#[tokio::test]
async fn a_replayed_callback_answers_200_and_changes_nothing() {
    let h = start(Options::default()).await;
    let (case_id, payment_id) = h.awaiting_payment().await;
    let body = success_body(payment_id, PRICE);

    let (status, first) = h.callback(&body).await;
    assert_eq!(
        (status, first["status"].as_i64()),
        (200, Some(1000)),
        "{first}"
    );
    assert_eq!(first["data"]["result"], "processed");
    let paid = h.case(case_id).await;
    let events = h
        .state
        .store
        .case_events(case_id)
        .await
        .expect("events")
        .len();

    let (status, again) = h.callback(&body).await;
    assert_eq!(
        (status, again["status"].as_i64()),
        (200, Some(1000)),
        "{again}"
    );
    assert_eq!(again["data"]["result"], "no_change");
    assert_eq!(h.case(case_id).await, paid);
    assert_eq!(
        h.state
            .store
            .case_events(case_id)
            .await
            .expect("events")
            .len(),
        events
    );
    assert_eq!(h.outbox_of_kind("invoice").await.len(), 1);
    assert_eq!(h.outbox_of_kind("refund").await.len(), 0);
}

#[tokio::test]
async fn a_wrong_amount_is_refused_with_400_and_flagged_in_the_audit_log() {
    let h = start(Options::default()).await;
    let (case_id, payment_id) = h.awaiting_payment().await;
    let (status, body) = h.callback(&success_body(payment_id, PRICE - 1)).await;
    assert_eq!(
        (status, body["status"].as_i64()),
        (400, Some(1002)),
        "{body}"
    );
    assert_eq!(body["data"]["code"], "amount_mismatch");
    let case = h.case(case_id).await;
    assert_eq!(case.status, Status::AwaitingPayment);
    assert!(case.paid_at.is_none());
    let audit = h.audit_outcomes(Some(case_id)).await;
    assert!(
        audit
            .iter()
            .any(|(action, outcome, _)| action == "payment_succeeded"
                && outcome == "refused:amount_mismatch"),
        "{audit:?}"
    );
}

#[tokio::test]
async fn a_result_for_an_unknown_payment_is_recorded_without_a_transition() {
    let h = start(Options::default()).await;
    let unknown = PaymentId::new_v7();
    let (status, body) = h.callback(&success_body(unknown, PRICE)).await;
    assert_eq!(
        (status, body["status"].as_i64()),
        (200, Some(1000)),
        "{body}"
    );
    assert_eq!(body["message"], "recorded");
    assert_eq!(body["data"]["result"], "recorded");
    let audit = h.audit_outcomes(None).await;
    assert!(
        audit
            .iter()
            .any(|(action, outcome, resource)| action == "payment_callback"
                && outcome == "unknown_payment"
                && resource.as_deref() == Some(unknown.to_string().as_str())),
        "{audit:?}"
    );
}

#[tokio::test]
async fn a_malformed_but_signed_callback_is_400() {
    let h = start(Options::default()).await;
    let (status, body) = h
        .callback(
            &json!({"payment_id": PaymentId::new_v7(), "status": "maybe",
                          "amount": 1, "currency": "SAR", "timestamp": Utc::now()}),
        )
        .await;
    assert_eq!(
        (status, body["status"].as_i64()),
        (400, Some(1002)),
        "{body}"
    );
}

#[tokio::test]
async fn a_success_after_the_case_was_cancelled_is_refunded() {
    let h = start(Options {
        worker: true,
        ..Options::default()
    })
    .await;
    let (case_id, payment_id) = h.awaiting_payment().await;
    let link = h.link(case_id, payment_id).await;
    h.run(
        case_id,
        Command::Cancel {
            reason: "changed my mind".into(),
        },
        Actor::Patient(UserId(PATIENT.into())),
    )
    .await
    .expect("cancel");

    let (status, _) = h.press(&link, "success").await;
    assert_eq!(status, 200);
    let case = h
        .wait_case(case_id, Duration::from_secs(5), |c| {
            timeline(c).contains(&TimelineKind::Refunded)
        })
        .await;
    assert_eq!(case.status, Status::Cancelled);
    let kinds = timeline(&case);
    let requested = kinds
        .iter()
        .position(|k| *k == TimelineKind::RefundRequested);
    let refunded = kinds.iter().position(|k| *k == TimelineKind::Refunded);
    assert!(requested < refunded, "{kinds:?}");
    assert!(!kinds.contains(&TimelineKind::PaymentReceived));
    let refunds = h.outbox_of_kind("refund").await;
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0].idempotency_key, format!("refund:{payment_id}"));
    let sandbox = h.state.payments.sandbox().expect("sandbox");
    assert!(
        sandbox
            .payment(payment_id)
            .await
            .expect("read")
            .expect("record")
            .refunded
    );
}

#[tokio::test]
async fn the_sandbox_page_answers_404_for_unknown_payments_and_400_for_bad_forms() {
    let h = start(Options::default()).await;
    for path in [
        format!("/sandbox/pay/{}", PaymentId::new_v7()),
        "/sandbox/pay/not-a-uuid".to_owned(),
    ] {
        let resp = h
            .client
            .get(format!("{}{path}", h.base))
            .send()
            .await
            .expect("GET");
        assert_eq!(resp.status().as_u16(), 404);
        assert!(
            resp.text()
                .await
                .expect("page")
                .contains("Payment not found")
        );
    }
    let (case_id, payment_id) = h.awaiting_payment().await;
    outbox::run_once(&h.state, Utc::now()).await.expect("run");
    let link = h.link(case_id, payment_id).await;
    let (status, _) = h.press(&link, "maybe").await;
    assert_eq!(status, 400);
    assert_eq!(h.case(case_id).await.status, Status::AwaitingPayment);
}

#[tokio::test]
async fn an_undeliverable_sandbox_callback_is_retried_through_the_outbox() {
    let h = start(Options::default()).await;
    let sandbox = h.state.payments.sandbox().expect("sandbox");
    let payment_id = PaymentId::new_v7();
    // A payment whose callback URL nothing listens on.
    let created = sandbox
        .create_payment(&PaymentRequest {
            payment_id,
            amount: 100,
            currency: "SAR".into(),
            case_reference: "SOP-00000000".into(),
            callback_url: "http://127.0.0.1:1/payments/callback".into(),
        })
        .await
        .expect("create");
    let (status, page) = h.press(&created.link, "success").await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("Payment succeeded") && page.contains("within moments"),
        "{page}"
    );
    let rows = h.outbox_of_kind(outbox::SANDBOX_CALLBACK).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, "pending");

    // The worker tries again, fails again, and backs off.
    let now = Utc::now();
    let report = outbox::run_once(&h.state, now).await.expect("run");
    assert_eq!(report.retried, 1, "{report:?}");
    let row = &h.outbox_of_kind(outbox::SANDBOX_CALLBACK).await[0];
    assert_eq!((row.status.as_str(), row.attempts), ("pending", 1));
    assert!(row.last_error.is_some());
}

/// A platform whose first `create_payment` calls fail (a test double around the sandbox).
#[derive(Debug)]
struct Flaky {
    inner: Sandbox,
    failures_left: AtomicU32,
}

impl PaymentProvider for Flaky {
    fn name(&self) -> &'static str {
        "flaky"
    }

    fn create_payment<'a>(
        &'a self,
        request: &'a PaymentRequest,
    ) -> BoxFuture<'a, Result<CreatedPayment, ProviderError>> {
        let fail = self
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if fail {
            Box::pin(async { Err(ProviderError("platform unavailable".into())) })
        } else {
            self.inner.create_payment(request)
        }
    }

    fn refund<'a>(
        &'a self,
        request: &'a RefundRequest,
    ) -> BoxFuture<'a, Result<RefundOutcome, ProviderError>> {
        self.inner.refund(request)
    }

    fn status(&self, payment_id: PaymentId) -> BoxFuture<'_, Result<PaymentState, ProviderError>> {
        self.inner.status(payment_id)
    }

    fn verify_callback(
        &self,
        headers: &axum::http::HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<CallbackEvent, CallbackError> {
        self.inner.verify_callback(headers, body, now)
    }
}

async fn create_payment_row(h: &Harness) -> OutboxRow {
    h.outbox_of_kind("create_payment").await.remove(0)
}

#[tokio::test]
async fn a_provider_failure_is_retried_with_exponential_backoff() {
    let h = start(Options {
        flaky_failures: Some(2),
        ..Options::default()
    })
    .await;
    let (case_id, payment_id) = h.awaiting_payment().await;
    let t0 = Utc::now();

    let report = outbox::run_once(&h.state, t0).await.expect("run");
    // The other due rows are the notifications' push deliveries (logged, done at once).
    assert_eq!(
        (report.retried, report.due - report.delivered),
        (1, 1),
        "{report:?}"
    );
    let row = create_payment_row(&h).await;
    assert_eq!((row.status.as_str(), row.attempts), ("pending", 1));
    assert_eq!(row.next_attempt_at, t0 + TimeDelta::seconds(5));
    assert!(
        row.last_error
            .as_deref()
            .is_some_and(|e| e.contains("platform unavailable"))
    );

    // Not due before its backoff.
    let report = outbox::run_once(&h.state, t0 + TimeDelta::seconds(4))
        .await
        .expect("run");
    assert_eq!(report, RunReport::default());

    let t1 = t0 + TimeDelta::seconds(5);
    let report = outbox::run_once(&h.state, t1).await.expect("run");
    assert_eq!(report.retried, 1);
    let row = create_payment_row(&h).await;
    assert_eq!(row.attempts, 2);
    assert_eq!(row.next_attempt_at, t1 + TimeDelta::seconds(10));

    let t2 = t1 + TimeDelta::seconds(10);
    let report = outbox::run_once(&h.state, t2).await.expect("run");
    assert_eq!(report.delivered, 1, "{report:?}");
    let row = create_payment_row(&h).await;
    assert_eq!((row.status.as_str(), row.attempts), ("done", 3));
    assert_eq!(row.last_error, None);
    let case = h.case(case_id).await;
    assert!(
        case.payment(payment_id)
            .and_then(|p| p.link.clone())
            .is_some()
    );
}

#[tokio::test]
async fn a_row_fails_for_good_after_the_last_attempt() {
    let h = start(Options {
        flaky_failures: Some(u32::MAX),
        ..Options::default()
    })
    .await;
    h.awaiting_payment().await;
    let mut now = Utc::now();
    for _ in 0..MAX_ATTEMPTS {
        outbox::run_once(&h.state, now).await.expect("run");
        now += TimeDelta::hours(2);
    }
    let row = create_payment_row(&h).await;
    assert_eq!(
        (row.status.as_str(), row.attempts),
        ("failed", MAX_ATTEMPTS)
    );
    assert_eq!(
        outbox::run_once(&h.state, now).await.expect("run"),
        RunReport::default()
    );
}

/// A row the worker can never deliver (here: a report for a case that is not completed) fails
/// for good on its first attempt instead of being retried ten times.
#[tokio::test]
async fn an_undeliverable_row_fails_at_once_without_retries() {
    let h = start(Options::default()).await;
    let (case_id, _) = h.awaiting_payment().await;
    let now = Utc::now();
    // Deliver the payment creation first so only the report row is due afterwards.
    outbox::run_once(&h.state, now).await.expect("run");
    h.state
        .store
        .enqueue_outbox(&OutboxRow {
            outbox_id: uuid::Uuid::now_v7(),
            case_id: Some(case_id.0),
            kind: "generate_report".into(),
            payload: sqlx::types::Json(json!({"effect": "generate_report"})),
            idempotency_key: format!("report:{case_id}"),
            status: "pending".into(),
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
            created_at: now,
            done_at: None,
        })
        .await
        .expect("enqueue");
    let report = outbox::run_once(&h.state, now).await.expect("run");
    assert_eq!((report.due, report.failed), (1, 1), "{report:?}");
    let row = h.outbox_of_kind("generate_report").await.remove(0);
    assert_eq!((row.status.as_str(), row.attempts), ("failed", 1));
    assert!(row.last_error.is_some());
    let later = now + TimeDelta::hours(2);
    assert_eq!(
        outbox::run_once(&h.state, later).await.expect("run"),
        RunReport::default()
    );
}

#[tokio::test]
async fn reconciliation_picks_up_a_result_whose_callback_was_missed() {
    let h = start(Options::default()).await;
    let (case_id, payment_id) = h.awaiting_payment().await;
    outbox::run_once(&h.state, Utc::now()).await.expect("run");
    // The payer paid, but the callback never arrived.
    let sandbox = h.state.payments.sandbox().expect("sandbox");
    sandbox
        .settle(payment_id, SandboxResult::Success)
        .await
        .expect("settle");

    let meta = sop_server::api::RequestMeta::default();
    let early = reconcile(&h.state, &meta, Utc::now())
        .await
        .expect("reconcile");
    assert_eq!(
        (early.checked, early.changed),
        (0, 0),
        "not pending an hour yet"
    );

    let later = Utc::now() + TimeDelta::hours(2);
    let report = reconcile(&h.state, &meta, later).await.expect("reconcile");
    assert_eq!((report.checked, report.changed), (1, 1));
    assert_eq!(h.case(case_id).await.status, Status::PaymentSuccessful);
    let again = reconcile(&h.state, &meta, later).await.expect("reconcile");
    assert_eq!((again.checked, again.changed), (0, 0));
}

#[tokio::test]
async fn the_reconciliation_trigger_needs_an_admin_token() {
    let h = start(Options::default()).await;
    let post = |token: Option<String>| {
        let mut req = h
            .client
            .post(format!("{}/scheduler/run-reconciliation", h.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move {
            let resp = req.send().await.expect("POST");
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.expect("JSON"))
        }
    };
    let (status, body) = post(Some(h.token("A1", Audience::Admin))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"], json!({"checked": 0, "changed": 0}));
    assert_eq!(post(Some(h.token(PATIENT, Audience::Patient))).await.0, 403);
    assert_eq!(post(None).await.0, 401);
}

/// Claims on one database: only the first claim wins, the row is not due while leased, and it
/// is due again (and claimable) once the lease has run out.
async fn claims_are_exclusive_until_the_lease_expires(store: &Store) {
    let now = Utc::now();
    let id = uuid::Uuid::now_v7();
    let inserted = store
        .enqueue_outbox(&OutboxRow {
            outbox_id: id,
            case_id: None,
            kind: "invoice".into(),
            payload: sqlx::types::Json(json!({})),
            idempotency_key: format!("test:{id}"),
            status: "pending".into(),
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
            created_at: now,
            done_at: None,
        })
        .await
        .expect("enqueue");
    assert!(inserted);
    let due = |at| async move { store.due_outbox(at, 10).await.expect("due").len() };

    assert_eq!(due(now).await, 1);
    assert!(
        store
            .claim_outbox(id, now, now + LEASE)
            .await
            .expect("claim")
    );
    assert!(
        !store
            .claim_outbox(id, now, now + LEASE)
            .await
            .expect("claim")
    );
    assert_eq!(due(now + LEASE - TimeDelta::seconds(1)).await, 0);

    let later = now + LEASE + TimeDelta::seconds(1);
    assert_eq!(
        due(later).await,
        1,
        "an expired lease makes the row due again"
    );
    assert!(
        store
            .claim_outbox(id, later, later + LEASE)
            .await
            .expect("claim")
    );
    assert!(
        !store
            .claim_outbox(id, later, later + LEASE)
            .await
            .expect("claim")
    );
}

#[tokio::test]
async fn outbox_claims_on_sqlite() {
    let h = start(Options::default()).await;
    claims_are_exclusive_until_the_lease_expires(&h.state.store).await;
}

#[tokio::test]
async fn outbox_claims_and_a_paid_callback_on_postgres() {
    let pg = TestPg::create().await;
    let h = start(Options {
        database: Some(DatabaseConfig::Postgres(SecretUrl::new(pg.url.clone()))),
        ..Options::default()
    })
    .await;
    claims_are_exclusive_until_the_lease_expires(&h.state.store).await;

    let (case_id, payment_id) = h.awaiting_payment().await;
    let report = outbox::run_once(&h.state, Utc::now()).await.expect("run");
    // The payment creation and the notifications' push deliveries.
    assert_eq!(report.delivered, report.due, "{report:?}");
    let link = h.link(case_id, payment_id).await;
    let (status, _) = h.press(&link, "success").await;
    assert_eq!(status, 200);
    assert_eq!(h.case(case_id).await.status, Status::PaymentSuccessful);
    drop(h);
}

#[tokio::test]
async fn the_binary_keeps_its_sandbox_secret_across_restarts_and_serves_the_payment_routes() {
    use crate::support::{ServerOptions, TestServer};
    let tmp = tempfile::tempdir().expect("tempdir");
    let secret_path = tmp.path().join(WEBHOOK_SECRET_FILE);

    let server = TestServer::start(tmp.path(), ServerOptions::default()).await;
    let secret = std::fs::read_to_string(&secret_path).expect("secret created at start");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secret_path)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let page = server
        .client
        .get(server.url(&format!("/sandbox/pay/{}", PaymentId::new_v7())))
        .send()
        .await
        .expect("GET");
    assert_eq!(page.status().as_u16(), 404);
    server
        .post("/payments/callback", None, Some(r#"{"payment_id":"x"}"#))
        .await
        .assert(401, 2000);
    let body = success_body(PaymentId::new_v7(), PRICE).to_string();
    let header = signature::header_value(
        secret.trim().as_bytes(),
        Utc::now().timestamp(),
        body.as_bytes(),
    );
    let recorded = server
        .post_with(
            "/payments/callback",
            None,
            Some(&body),
            &[(signature::HEADER, &header)],
        )
        .await;
    recorded.assert(200, 1000);
    assert_eq!(recorded.message(), "recorded");
    assert!(
        !server.logs().contains("\"amount\""),
        "no callback body in the logs"
    );
    drop(server);

    let _again = TestServer::start(tmp.path(), ServerOptions::default()).await;
    assert_eq!(
        std::fs::read_to_string(&secret_path).expect("secret"),
        secret
    );
}
