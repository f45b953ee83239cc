//! The push gate's overload answer (`sync::push::PushGate`), on SQLite and PostgreSQL: with one
//! slot and a short wait, a push that finds the slot taken is answered 503 with `Retry-After: 1`
//! and the error envelope, and nothing of it is applied; retried later, each op is applied
//! exactly once.
//!
//! The slot is held deterministically, without timing: before the pushes start, the test holds
//! the database lock the push's write transaction needs (SQLite's write lock through `BEGIN
//! IMMEDIATE`; on PostgreSQL the case row, `FOR UPDATE`). The push that gets the slot waits on
//! the database inside it, so every other push must be answered 503 before the lock is let go;
//! none of them can succeed meanwhile.

use crate::case_flow::Flow;
use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::Value;
use sop_core::command::{Command, RequestSpec};
use sop_core::event::EventKind;
use sop_core::ids::{CaseId, RequestId};
use sop_core::sync::v1::{CommandOp, DeviceId, Op, OpId, Outcome, PushRequest, PushResponse};
use sop_server::db::Db;
use sop_server::sync::push::PushGate;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tower::ServiceExt;
use uuid::Uuid;

/// Pushes sent at once while the single slot is held.
const PUSHES: usize = 6;

/// A push's answer: HTTP status, the `Retry-After` and `Content-Type` headers, the envelope.
#[derive(Debug)]
struct Answer {
    status: u16,
    retry_after: Option<String>,
    content_type: Option<String>,
    body: Value,
}

async fn push(app: axum::Router, token: String, req: PushRequest) -> Answer {
    let body = serde_json::to_string(&req).expect("push JSON");
    let request = Request::post("/sync/v1/push")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("request");
    let resp = app.oneshot(request).await.expect("infallible");
    let headers = resp.headers();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (retry_after, content_type) = (header("retry-after"), header("content-type"));
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    Answer {
        status,
        retry_after,
        content_type,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// The per-op outcomes of a successful push (in request order, checked).
#[track_caller]
fn outcomes(answer: &Answer, req: &PushRequest) -> Vec<Outcome> {
    assert_eq!(
        (answer.status, &answer.body["status"]),
        (200, &Value::from(1000)),
        "{answer:?}"
    );
    let resp: PushResponse =
        serde_json::from_value(answer.body["data"].clone()).expect("a push response");
    let ids: Vec<OpId> = resp.results.iter().map(|r| r.op_id).collect();
    let sent: Vec<OpId> = req.ops.iter().map(Op::op_id).collect();
    assert_eq!(ids, sent, "one answer per op, in request order");
    resp.results.into_iter().map(|r| r.outcome).collect()
}

/// Asserts the overload answer: 503, `Retry-After: 1`, the JSON error envelope (server error
/// code, a generic message, no data).
#[track_caller]
fn assert_overloaded(answer: &Answer) {
    assert_eq!(answer.status, 503, "{answer:?}");
    assert_eq!(answer.retry_after.as_deref(), Some("1"), "{answer:?}");
    assert!(
        answer
            .content_type
            .as_deref()
            .is_some_and(|t| t.starts_with("application/json")),
        "{answer:?}"
    );
    assert_eq!(answer.body["status"], 1001, "{answer:?}");
    let message = answer.body["message"].as_str().unwrap_or_default();
    assert!(
        !message.is_empty() && !message.contains("slot"),
        "{answer:?}"
    );
    assert!(answer.body.get("data").is_none(), "{answer:?}");
}

/// A lock the push's write transaction waits for; released by dropping it (rolled back).
enum Held {
    Sqlite(#[allow(dead_code)] sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(#[allow(dead_code)] sqlx::Transaction<'static, sqlx::Postgres>),
}

/// Takes the database lock a command on `case_id` needs.
async fn hold_case(db: &Db, case_id: CaseId) -> Held {
    match db {
        // Write transactions on SQLite are `BEGIN IMMEDIATE`: this one makes the push's wait
        // (the busy timeout, 5 s, far longer than the other pushes take to be answered).
        Db::Sqlite(pool) => Held::Sqlite(
            pool.begin_with("BEGIN IMMEDIATE")
                .await
                .expect("SQLite write lock"),
        ),
        Db::Postgres(pool) => {
            let mut tx = pool.begin().await.expect("begin");
            sqlx::query("SELECT case_id FROM cases WHERE case_id = $1 FOR UPDATE")
                .bind(case_id.0)
                .fetch_one(&mut *tx)
                .await
                .expect("case row lock");
            Held::Postgres(tx)
        }
    }
}

async fn overloaded_pushes_get_503_retry_after_and_apply_once_when_retried(flow: Flow) {
    let mut flow = flow;
    let case_id = flow.assigned_case("P1").await;
    // One slot, a short wait: the state's gate is rebuilt from the new settings.
    let mut settings = (*flow.state.settings).clone();
    settings.sync.max_concurrent_pushes = 1;
    settings.sync.push_wait = Duration::from_millis(50);
    flow.state.push_gate = PushGate::new(&settings.sync);
    flow.state.settings = Arc::new(settings);
    flow.app = sop_server::app(flow.state.clone());

    // Each push comes from its own device of the specialist S1 and opens one document request.
    let s1 = flow.doctor("S1");
    let pushes: Vec<(RequestId, PushRequest)> = (0..PUSHES)
        .map(|i| {
            let request_id = RequestId::new_v7();
            let req = PushRequest {
                device_id: DeviceId(Uuid::now_v7()),
                ops: vec![Op::Command(CommandOp {
                    op_id: OpId(Uuid::now_v7()),
                    case_id,
                    command: Command::RequestDocuments {
                        request: RequestSpec {
                            request_id,
                            items: vec![format!("Scan {i}")],
                        },
                    },
                })],
            };
            (request_id, req)
        })
        .collect();

    let held = hold_case(&flow.state.db, case_id).await;
    let mut running = JoinSet::new();
    for (i, (_, req)) in pushes.iter().enumerate() {
        let (app, token, req) = (flow.app.clone(), s1.clone(), req.clone());
        running.spawn(async move { (i, push(app, token, req).await) });
    }
    // While the lock is held, the push in the slot cannot finish: the others are answered
    // first, and each of them must be the overload answer.
    let mut first: HashMap<usize, Answer> = HashMap::new();
    while first.len() < PUSHES - 1 {
        let (i, answer) = tokio::time::timeout(Duration::from_secs(30), running.join_next())
            .await
            .expect("the pushes outside the slot are answered while it is held")
            .expect("a push is running")
            .expect("push task");
        assert_overloaded(&answer);
        first.insert(i, answer);
    }
    drop(held);
    let (slot, answer) = running
        .join_next()
        .await
        .expect("the push in the slot")
        .expect("push task");
    assert!(running.is_empty());
    assert_eq!(
        outcomes(&answer, &pushes[slot].1),
        vec![Outcome::Applied],
        "the push that held the slot is applied once the database lets it"
    );

    // Nothing of the refused pushes was applied.
    let case = flow.state.store.case(case_id).await.unwrap().unwrap();
    let opened: Vec<RequestId> = case
        .document_requests
        .iter()
        .map(|r| r.request_id)
        .collect();
    assert_eq!(
        opened,
        vec![pushes[slot].0],
        "only the admitted push applied"
    );

    // Retried after the overload, each refused push is applied.
    for &i in first.keys() {
        let answer = push(flow.app.clone(), s1.clone(), pushes[i].1.clone()).await;
        assert_eq!(outcomes(&answer, &pushes[i].1), vec![Outcome::Applied]);
    }
    // Every push sent once more (answers lost on the way): nothing is applied twice.
    for (_, req) in &pushes {
        let answer = push(flow.app.clone(), s1.clone(), req.clone()).await;
        assert_eq!(outcomes(&answer, req), vec![Outcome::Duplicate]);
    }

    // The case holds each request exactly once, and its event log opened each exactly once.
    let case = flow.state.store.case(case_id).await.unwrap().unwrap();
    let mut opened: Vec<RequestId> = case
        .document_requests
        .iter()
        .map(|r| r.request_id)
        .collect();
    let mut expected: Vec<RequestId> = pushes.iter().map(|(id, _)| *id).collect();
    opened.sort();
    expected.sort();
    assert_eq!(opened, expected);
    let mut events: Vec<RequestId> = flow
        .state
        .store
        .case_events(case_id)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::DocumentRequestOpened { request } => Some(request.request_id),
            _ => None,
        })
        .collect();
    events.sort();
    assert_eq!(events, expected, "each request opened by exactly one event");
}

#[tokio::test(flavor = "multi_thread")]
async fn overloaded_pushes_get_503_retry_after_and_apply_once_when_retried_sqlite() {
    overloaded_pushes_get_503_retry_after_and_apply_once_when_retried(Flow::new().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn overloaded_pushes_get_503_retry_after_and_apply_once_when_retried_postgres() {
    overloaded_pushes_get_503_retry_after_and_apply_once_when_retried(Flow::on_postgres().await)
        .await;
}
