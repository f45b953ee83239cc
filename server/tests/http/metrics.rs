//! `GET /metrics` (DESIGN §4 "Operations"): the real binary on SQLite and on PostgreSQL counts
//! requests under their route templates, pushed operations by answer, open live connections
//! and outbox rows, behind the configured bearer token, and no label or value carries an id, a
//! path a client sent or anything a patient wrote.

use crate::support::{ServerOptions, TestPg, TestServer, content_type, mint_token};
use crate::sync::{demo_catalog, seed_demo};
use serde_json::json;
use sop_core::access::ContentKind;
use sop_core::case::IntakePatch;
use sop_core::command::Command;
use sop_core::content::DocRef;
use sop_core::ids::CaseId;
use sop_core::sync::v1::{
    Bytes, ChangeOp, CommandOp, DeviceId, Op, OpId, Outcome, PushRequest, PushResponse,
};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The scrape token the servers of these tests require.
const TOKEN: &str = "scrape-token-1f9c";

/// Words a patient typed: they must never show in the metrics.
const TYPED: &str = "Marker-history-4417 chest pain since May";

/// The metrics text, scraped with `token`: (status, content type, body).
async fn scrape(server: &TestServer, token: Option<&str>) -> (u16, String, String) {
    let mut req = server.client.get(server.url("/metrics"));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.expect("GET /metrics");
    let status = resp.status().as_u16();
    let content_type = content_type(resp.headers());
    (status, content_type, resp.text().await.expect("body"))
}

/// The value of the sample `series` (name and labels exactly as exposed), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().expect("a number"))
}

/// Scrapes until `series` has `value` (gauges follow a closing socket a moment later).
async fn eventually(server: &TestServer, series: &str, value: f64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, _, text) = scrape(server, Some(TOKEN)).await;
        if sample(&text, series) == Some(value) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{series} never reached {value}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One push: an intake edit (applied) and a change of garbage bytes (refused).
fn push_body(case_id: CaseId) -> String {
    let req = PushRequest {
        device_id: DeviceId(Uuid::now_v7()),
        ops: vec![
            Op::Command(CommandOp {
                op_id: OpId(Uuid::now_v7()),
                case_id,
                command: Command::UpdateIntake {
                    patch: IntakePatch {
                        medical_history: Some(TYPED.to_owned()),
                        ..IntakePatch::default()
                    },
                },
            }),
            Op::Change(ChangeOp {
                op_id: OpId(Uuid::now_v7()),
                doc_id: DocRef::new(case_id, ContentKind::Intake).doc_id(),
                case_id,
                kind: ContentKind::Intake,
                change: Bytes(b"not an automerge change".to_vec()),
                heads_before: Vec::new(),
            }),
        ],
    };
    serde_json::to_string(&req).expect("push JSON")
}

async fn requests_pushes_and_live_connections_are_counted(database_url: Option<String>) {
    let dir = tempfile::tempdir().expect("tempdir");
    seed_demo(dir.path(), database_url.as_deref());
    let server = TestServer::start(
        dir.path(),
        ServerOptions {
            database_url,
            env: vec![("SOP_METRICS_TOKEN".to_owned(), TOKEN.to_owned())],
            ..ServerOptions::default()
        },
    )
    .await;

    // The token is required, and a wrong one is refused like a missing one.
    for token in [None, Some("wrong-token")] {
        let (status, _, body) = scrape(&server, token).await;
        assert_eq!(status, 401, "{body}");
        let envelope: serde_json::Value = serde_json::from_str(&body).expect("an envelope");
        assert_eq!(envelope["status"], 2000);
    }

    let patient = mint_token(dir.path(), "P-metrics-1", "snr_usr");
    let (rt, dc) = demo_catalog();
    let created = server
        .post(
            "/app/create-case",
            Some(&patient),
            Some(&json!({"rt_id": rt, "dc_id": dc, "medical_history": TYPED}).to_string()),
        )
        .await;
    assert_eq!(created.status, 200, "{created:?}");
    let case_id: CaseId =
        serde_json::from_value(created.body["data"]["case_id"].clone()).expect("a case id");
    // A submitted case: its notification to the admins is one outbound call.
    let submitted = server
        .post(
            "/app/create-case",
            Some(&patient),
            Some(
                &json!({"rt_id": rt, "dc_id": dc, "medical_history": TYPED, "patient_age": 40,
                        "patient_gender": "male", "questions": "Surgery?", "submit": true})
                .to_string(),
            ),
        )
        .await;
    assert_eq!(submitted.status, 200, "{submitted:?}");
    let missing = server.get(&format!("/no/such/path/{case_id}")).await;
    assert_eq!(missing.status, 404);
    let body = push_body(case_id);
    for _ in 0..2 {
        let reply = server
            .post("/sync/v1/push", Some(&patient), Some(&body))
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let resp: PushResponse =
            serde_json::from_value(reply.body["data"].clone()).expect("a push response");
        assert!(matches!(resp.results[1].outcome, Outcome::Refused { .. }));
    }
    let live = format!(
        "{}/sync/v1/live?access_token={patient}",
        server.base_url.replace("http://", "ws://")
    );
    let (socket, _) = tokio_tungstenite::connect_async(live)
        .await
        .expect("live channel opens");
    eventually(&server, "sop_live_connections", 1.0).await;

    let (status, content_type, text) = scrape(&server, Some(TOKEN)).await;
    assert_eq!(status, 200, "{text}");
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let count = |series: &str| sample(&text, series).unwrap_or_else(|| panic!("{series}:\n{text}"));
    assert_eq!(
        count(r#"sop_http_requests_total{method="POST",route="/app/create-case",status="200"}"#),
        2.0
    );
    assert_eq!(
        count(r#"sop_http_requests_total{method="POST",route="/sync/v1/push",status="200"}"#),
        2.0
    );
    assert_eq!(
        count(r#"sop_http_requests_total{method="GET",route="unmatched",status="404"}"#),
        1.0
    );
    assert_eq!(
        count(r#"sop_http_requests_total{method="GET",route="/metrics",status="401"}"#),
        2.0
    );
    assert_eq!(
        count(r#"sop_http_request_duration_seconds_count{method="POST",route="/sync/v1/push"}"#),
        2.0
    );
    assert_eq!(
        count(
            r#"sop_http_request_duration_seconds_bucket{method="POST",route="/sync/v1/push",le="+Inf"}"#
        ),
        2.0
    );
    // The first push ran its command and refused the garbage; the retry replayed both answers.
    let ops = |outcome: &str| count(&format!("sop_sync_push_ops_total{{outcome=\"{outcome}\"}}"));
    assert_eq!(
        (ops("applied"), ops("duplicate"), ops("refused")),
        (1.0, 1.0, 2.0)
    );
    assert!(count(r#"sop_db_connections{state="idle"}"#) >= 0.0);
    assert!(text.contains("# TYPE sop_outbox_rows gauge"), "{text}");
    assert!(count("sop_uptime_seconds") > 0.0);
    // Nothing personal: not the typed text, the case id, the user or a path a client sent.
    for secret in [
        "Marker-history",
        &case_id.to_string(),
        "P-metrics-1",
        "/no/such",
        &patient,
    ] {
        assert!(!text.contains(secret), "{secret} in the metrics:\n{text}");
    }

    drop(socket);
    eventually(&server, "sop_live_connections", 0.0).await;
    // Read from the database at each scrape: the one outbound call, delivered.
    eventually(&server, r#"sop_outbox_rows{status="done"}"#, 1.0).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_pushes_and_live_connections_are_counted_on_sqlite() {
    requests_pushes_and_live_connections_are_counted(None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_pushes_and_live_connections_are_counted_on_postgres() {
    let pg = TestPg::create().await;
    requests_pushes_and_live_connections_are_counted(Some(pg.url.clone())).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_token_the_metrics_are_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path(), ServerOptions::default()).await;
    let (status, _, text) = scrape(&server, None).await;
    assert_eq!(status, 200, "{text}");
    assert!(
        text.contains("# TYPE sop_http_requests_total counter"),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"sop_http_requests_total{method="GET",route="/health",status="200"}"#
        ),
        Some(1.0),
        "the start-up check counted:\n{text}"
    );
}
