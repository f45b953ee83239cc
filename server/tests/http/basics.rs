//! The binary on SQLite: health, readiness, envelopes for bad requests, request ids, logs.

use crate::support::{ServerOptions, TestServer, mint_token};

#[tokio::test]
async fn binary_serves_health_and_ready_on_sqlite_creating_the_data_dir() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data_dir = tmp.path().join("nested").join("data");
    let server = TestServer::start(&data_dir, ServerOptions::default()).await;

    let health = server.get("/health").await;
    health.assert(200, 1000);
    assert_eq!(health.body["data"]["status"], "up");
    server.get("/ready").await.assert(200, 1000);

    assert!(data_dir.join("sop.db").is_file(), "SQLite file in data dir");
    assert!(server.logs().contains("listening on http://127.0.0.1:"));
}

#[tokio::test]
async fn unknown_route_and_wrong_method_answer_envelopes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(tmp.path(), ServerOptions::default()).await;

    let missing = server.post("/app/no-such-thing", None, Some("{}")).await;
    missing.assert(404, 1002);
    assert!(!missing.message().is_empty());
    server.get("/nowhere").await.assert(404, 1002);

    server.get("/app/how").await.assert(405, 1002);
    server.post("/health", None, None).await.assert(405, 1002);
}

#[tokio::test]
async fn malformed_json_is_a_400_envelope_with_a_clear_message() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(tmp.path(), ServerOptions::default()).await;
    let token = mint_token(tmp.path(), "patient-1", "snr_usr");

    let reply = server
        .post("/app/how", Some(&token), Some(r#"{"lang": "#))
        .await;
    reply.assert(400, 1002);
    assert!(
        reply
            .message()
            .contains("Failed to parse the request body as JSON"),
        "{reply:?}"
    );

    // A JSON body that is not an object for a struct is a type error, also 400.
    let reply = server.post("/app/how", Some(&token), Some("[1, 2]")).await;
    reply.assert(400, 1002);

    // A body without a JSON content type.
    let reply = server
        .client
        .post(server.url("/app/how"))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .expect("send");
    let reply = crate::support::reply(reply).await;
    reply.assert(400, 1002);
    assert!(reply.message().contains("Content-Type: application/json"));

    // Larger than the 1 MiB limit.
    let big = format!(r#"{{"pad": "{}"}}"#, "x".repeat(2 * 1024 * 1024));
    let reply = server.post("/app/how", Some(&token), Some(&big)).await;
    reply.assert(413, 1002);
    assert!(reply.message().contains("1 MiB"), "{reply:?}");
}

#[tokio::test]
async fn every_response_has_a_request_id_that_is_logged_without_bodies() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(tmp.path(), ServerOptions::default()).await;
    let token = mint_token(tmp.path(), "patient-1", "snr_usr");

    let marker = "CLINICAL-TEXT-MARKER-8f3a";
    let body = format!(r#"{{"medical_history": "{marker}"}}"#);
    let reply = server.post("/app/how", Some(&token), Some(&body)).await;
    reply.assert(200, 1000);
    let id = reply.headers["x-request-id"]
        .to_str()
        .expect("ascii id")
        .to_owned();
    assert!(!id.is_empty());

    // A caller's id is kept and echoed.
    let reply = server
        .post_with(
            "/app/how",
            Some(&token),
            Some(&body),
            &[("x-request-id", "caller-id-123")],
        )
        .await;
    assert_eq!(reply.headers["x-request-id"], "caller-id-123");

    // Error responses carry one too.
    let reply = server.get("/nowhere").await;
    assert!(reply.headers.contains_key("x-request-id"));

    // The log line of a request is written when the response is; give the pipe a moment.
    let mut logs = server.logs();
    for _ in 0..100 {
        if logs.contains("caller-id-123") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        logs = server.logs();
    }
    assert!(logs.contains(&id), "request id in logs:\n{logs}");
    assert!(logs.contains("caller-id-123"), "caller id in logs:\n{logs}");
    assert!(
        !logs.contains(marker),
        "request body leaked into logs:\n{logs}"
    );
    assert!(!logs.contains(&token), "token leaked into logs:\n{logs}");
}

#[test]
fn migrate_subcommand_creates_the_sqlite_database() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data_dir = tmp.path().join("fresh");
    let out = crate::support::command()
        .arg("migrate")
        .arg("--data-dir")
        .arg(&data_dir)
        .output()
        .expect("run migrate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(data_dir.join("sop.db").is_file());
}
