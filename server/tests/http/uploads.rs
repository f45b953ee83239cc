//! Resumable uploads (`/sync/v1/upload/{sha256}`, docs/upload-protocol.md) and the documents
//! they become: a large file interrupted halfway and resumed on another instance (in process
//! on SQLite and PostgreSQL; across a real restart on S3), the same bytes stored once, bytes
//! that do not match their SHA-256, a JPEG named `.pdf`, the file and case limits, and
//! downloads refused (404) to another patient and an unassigned doctor. Abandoned uploads are
//! removed after their expiry (in process with a test clock on SQLite and PostgreSQL; by the
//! real server's own timer with `SOP_UPLOAD_EXPIRY_HOURS`), live and completed ones kept.

use crate::case_flow::{Flow, JPEG};
use crate::support::{Moto, ServerOptions, TestPg, TestServer, mint_token};
use axum::body::Body;
use axum::http::Request;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sop_core::ids::CaseId;
use sop_core::rules::Limits;
use sop_server::uploads::remove_expired_uploads;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// A JPEG of `len` bytes: a real JPEG signature, then varied bytes.
fn jpeg(len: usize, seed: u8) -> Vec<u8> {
    let mut bytes = JPEG.to_vec();
    bytes.extend(
        (JPEG.len()..len).map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[2] ^ seed),
    );
    bytes
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A decoded reply.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: Value,
}

async fn send(app: &axum::Router, req: Request<Body>) -> Answer {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer { status, body }
}

async fn patch(
    app: &axum::Router,
    token: &str,
    sha256: &str,
    offset: usize,
    total: usize,
    body: &[u8],
) -> Answer {
    let req = Request::patch(format!("/sync/v1/upload/{sha256}"))
        .header("authorization", format!("Bearer {token}"))
        .header("upload-offset", offset.to_string())
        .header("upload-length", total.to_string())
        .header("content-type", "application/octet-stream")
        .body(Body::from(body.to_vec()))
        .unwrap();
    send(app, req).await
}

async fn status(app: &axum::Router, token: &str, sha256: &str) -> Answer {
    let req = Request::get(format!("/sync/v1/upload/{sha256}"))
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    send(app, req).await
}

/// Pushes `UploadDocument` for `bytes` named `file_name` (declared a PDF, as a careless client
/// would); the op's outcome.
async fn attach(flow: &Flow, token: &str, case_id: CaseId, file_name: &str, bytes: &[u8]) -> Value {
    let body = json!({"device_id": Uuid::now_v7(), "ops": [{
        "type": "command", "op_id": Uuid::now_v7(), "case_id": case_id,
        "command": {"type": "upload_document", "document": {
            "document_id": Uuid::now_v7(), "file_name": file_name,
            "content_type": "application/pdf", "size": bytes.len(), "sha256": sha(bytes),
            "request_id": null}}}]});
    let req = Request::post("/sync/v1/push")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let answer = send(&flow.app, req).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    answer.body["data"]["results"][0].clone()
}

/// Blob files in the local store (staging and upload chunks excluded).
fn stored_blobs(flow: &Flow) -> Vec<String> {
    let mut found = Vec::new();
    for dir in std::fs::read_dir(flow.state.blobs.root())
        .unwrap()
        .flatten()
    {
        let name = dir.file_name().to_string_lossy().into_owned();
        if name.len() == 2 {
            for file in std::fs::read_dir(dir.path()).unwrap().flatten() {
                found.push(file.file_name().to_string_lossy().into_owned());
            }
        }
    }
    found
}

async fn interrupted_upload_resumes_on_another_instance(flow: Flow) {
    let p1 = flow.patient("P1");
    let case_id = flow.create_case("P1", false).await;
    let bytes = jpeg(3 * 1024 * 1024 + 17, 1);
    let key = sha(&bytes);
    let half = bytes.len() / 2;

    // Attaching before the upload is complete is refused.
    let early = attach(&flow, &p1, case_id, "scan.pdf", &bytes).await;
    assert_eq!(early["code"], "upload_incomplete", "{early}");

    // The first half, in two requests, then the connection "drops".
    let a = patch(&flow.app, &p1, &key, 0, bytes.len(), &bytes[..half / 2]).await;
    assert_eq!(
        (a.status, &a.body["data"]["received"]),
        (200, &json!(half / 2)),
        "{a:?}"
    );
    let b = patch(
        &flow.app,
        &p1,
        &key,
        half / 2,
        bytes.len(),
        &bytes[half / 2..half],
    )
    .await;
    assert_eq!(
        b.body["data"],
        json!({"sha256": key, "received": half, "complete": false})
    );

    // A second instance over the same database and store sees where the upload stopped.
    let other = sop_server::app(sop_server::AppState::new(
        flow.state.db.clone(),
        flow.state.auth.clone(),
        (*flow.state.settings).clone(),
    ));
    let st = status(&other, &p1, &key).await;
    assert_eq!(
        st.body["data"],
        json!({"sha256": key, "received": half, "complete": false})
    );
    // Another patient has uploaded nothing of it.
    let p2 = status(&other, &flow.patient("P2"), &key).await;
    assert_eq!(p2.body["data"]["received"], 0);

    // A wrong offset is refused with where to resume.
    let wrong = patch(&other, &p1, &key, 0, bytes.len(), &bytes[..10]).await;
    assert_eq!(wrong.status, 409, "{wrong:?}");
    assert_eq!(wrong.body["data"]["code"], "upload_offset_mismatch");
    assert_eq!(wrong.body["data"]["received"], half);
    assert_eq!(wrong.body["status"], 1002);

    // The rest, on the other instance: verified and stored.
    let done = patch(&other, &p1, &key, half, bytes.len(), &bytes[half..]).await;
    assert_eq!(
        done.body["data"],
        json!({"sha256": key, "received": bytes.len(), "complete": true}),
        "{done:?}"
    );
    let stored = flow.state.blobs.get(&key).await.unwrap().unwrap();
    assert!(stored == bytes, "the stored blob differs from the upload");
    // A repeated last request changes nothing.
    let again = patch(&flow.app, &p1, &key, half, bytes.len(), &bytes[half..]).await;
    assert_eq!(again.body["data"]["complete"], true);

    // Attached from the device: the type comes from the bytes, not from the `.pdf` name.
    let attached = attach(&flow, &p1, case_id, "scan.pdf", &bytes).await;
    assert_eq!(attached["outcome"], "applied", "{attached}");
    let case = flow.state.store.case(case_id).await.unwrap().unwrap();
    let doc = case.present_documents().next().expect("a document");
    assert_eq!(
        (doc.content_type.as_str(), doc.size),
        ("image/jpeg", bytes.len() as i64)
    );

    // The owner downloads it; another patient and an unassigned doctor get 404.
    let body = json!({"case_id": case_id, "document_id": doc.document_id});
    let own = flow.download("/app/get-document", &p1, body.clone()).await;
    assert_eq!((own.status, own.content_type.as_str()), (200, "image/jpeg"));
    assert!(own.bytes == bytes, "the download differs from the upload");
    let other_patient = flow
        .post("/app/get-document", &flow.patient("P2"), body.clone())
        .await;
    other_patient.refused(404, "case_not_found");
    let unassigned = flow
        .post("/pro/get-document", &flow.doctor("S3"), body)
        .await;
    unassigned.refused(404, "case_not_found");
}

#[tokio::test]
async fn interrupted_upload_resumes_on_another_instance_sqlite() {
    interrupted_upload_resumes_on_another_instance(Flow::new().await).await;
}

#[tokio::test]
async fn interrupted_upload_resumes_on_another_instance_postgres() {
    interrupted_upload_resumes_on_another_instance(Flow::on_postgres().await).await;
}

#[tokio::test]
async fn the_same_bytes_are_stored_once() {
    let flow = Flow::new().await;
    let bytes = jpeg(200_000, 2);
    let key = sha(&bytes);
    for patient in ["P1", "P2"] {
        let token = flow.patient(patient);
        let done = patch(&flow.app, &token, &key, 0, bytes.len(), &bytes).await;
        assert_eq!(done.body["data"]["complete"], true, "{done:?}");
    }
    // And once more through the multipart endpoint, into a case.
    let case_id = flow.create_case("P1", false).await;
    flow.upload(
        &flow.patient("P1"),
        &case_id.to_string(),
        "x.jpg",
        &bytes,
        None,
    )
    .await
    .data();
    assert_eq!(stored_blobs(&flow), vec![key.clone()]);
    // No chunk is left once uploads are complete.
    let uploads = flow.state.blobs.root().join("uploads");
    let leftovers = walk(&uploads);
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

#[tokio::test]
async fn bytes_that_do_not_match_their_sha256_are_refused_and_discarded() {
    let flow = Flow::new().await;
    let p1 = flow.patient("P1");
    let bytes = jpeg(100_000, 3);
    let claimed = sha(b"something else entirely");
    let first = patch(&flow.app, &p1, &claimed, 0, bytes.len(), &bytes[..50_000]).await;
    assert_eq!(first.status, 200);
    let last = patch(
        &flow.app,
        &p1,
        &claimed,
        50_000,
        bytes.len(),
        &bytes[50_000..],
    )
    .await;
    assert_eq!(last.status, 422, "{last:?}");
    assert_eq!(last.body["data"]["code"], "sha256_mismatch");
    let after = status(&flow.app, &p1, &claimed).await;
    assert_eq!(
        after.body["data"],
        json!({"sha256": claimed, "received": 0, "complete": false})
    );
    assert!(stored_blobs(&flow).is_empty());
    assert!(walk(&flow.state.blobs.root().join("uploads")).is_empty());
    // A key that is not a SHA-256 is a 400 with its code.
    let bad = patch(&flow.app, &p1, "not-a-sha", 0, 3, b"abc").await;
    assert_eq!(
        (bad.status, &bad.body["data"]["code"]),
        (400, &json!("sha256_invalid"))
    );
    // Missing headers say which.
    let req = Request::patch(format!("/sync/v1/upload/{claimed}"))
        .header("authorization", format!("Bearer {p1}"))
        .body(Body::from("abc"))
        .unwrap();
    let missing = send(&flow.app, req).await;
    assert_eq!(missing.status, 400);
    assert!(
        missing.body["message"]
            .as_str()
            .unwrap()
            .contains("upload-offset"),
        "{missing:?}"
    );
    // Without a token: 401.
    let req = Request::get(format!("/sync/v1/upload/{claimed}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&flow.app, req).await.status, 401);
}

#[tokio::test]
async fn file_and_case_limits_are_enforced_and_explained() {
    let limits = Limits {
        max_file_bytes: 4096,
        max_case_bytes: 6000,
        ..Limits::default()
    };
    let flow = Flow::with_limits(limits).await;
    let p1 = flow.patient("P1");
    let case_id = flow.create_case("P1", false).await;

    // Over the per-file limit: refused before any byte is stored.
    let big = jpeg(5000, 4);
    let over = patch(&flow.app, &p1, &sha(&big), 0, big.len(), &big[..100]).await;
    assert_eq!(over.status, 413, "{over:?}");
    assert_eq!(over.body["data"]["code"], "file_too_large");
    assert!(
        over.body["message"].as_str().unwrap().contains("4096"),
        "{over:?}"
    );
    assert_eq!(
        status(&flow.app, &p1, &sha(&big)).await.body["data"]["received"],
        0
    );
    let multipart = flow
        .upload(&p1, &case_id.to_string(), "big.jpg", &big, None)
        .await;
    assert_eq!(multipart.status, 413, "{multipart:?}");

    // Two files under the file limit, over the case limit together.
    let first = jpeg(3500, 5);
    let second = jpeg(3500, 6);
    for file in [&first, &second] {
        let done = patch(&flow.app, &p1, &sha(file), 0, file.len(), file).await;
        assert_eq!(done.body["data"]["complete"], true, "{done:?}");
    }
    let ok = attach(&flow, &p1, case_id, "a.jpg", &first).await;
    assert_eq!(ok["outcome"], "applied", "{ok}");
    let full = attach(&flow, &p1, case_id, "b.jpg", &second).await;
    assert_eq!(full["code"], "case_storage_full", "{full}");
}

/// The real binary on S3 (moto) and PostgreSQL: half an upload, the server stopped, another
/// server process started on the same database and bucket finishes it.
#[tokio::test]
async fn an_upload_survives_a_server_restart_on_s3() {
    let moto = Moto::start("sop-restart").await;
    let pg = TestPg::create().await;
    let dir = tempfile::tempdir().unwrap();
    let options = ServerOptions {
        database_url: Some(pg.url.clone()),
        env: moto.env(),
        ..ServerOptions::default()
    };
    let bytes = jpeg(2 * 1024 * 1024, 8);
    let key = sha(&bytes);
    let half = bytes.len() / 2;
    let client = reqwest::Client::new();
    let send_part = |server: &TestServer, token: &str, offset: usize, part: &[u8]| {
        client
            .patch(server.url(&format!("/sync/v1/upload/{key}")))
            .bearer_auth(token)
            .header("upload-offset", offset.to_string())
            .header("upload-length", bytes.len().to_string())
            .body(part.to_vec())
            .send()
    };

    let first = TestServer::start(dir.path(), options.clone()).await;
    let token = mint_token(dir.path(), "P9", "snr_usr");
    let r = send_part(&first, &token, 0, &bytes[..half]).await.unwrap();
    assert_eq!(r.status(), 200);
    first.terminate();

    // The chunks are in the bucket and the database: nothing in the process carries them over.
    let second = TestServer::start(dir.path(), options).await;
    let st: Value = client
        .get(second.url(&format!("/sync/v1/upload/{key}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        st["data"],
        json!({"sha256": key, "received": half, "complete": false})
    );
    let done: Value = send_part(&second, &token, half, &bytes[half..])
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(done["data"]["complete"], true, "{done}");
    // The blob is in the bucket, whole (read with a store of its own).
    let staging = tempfile::tempdir().unwrap();
    let bucket =
        sop_server::blobs::BlobStore::s3(&moto.config(), staging.path().to_path_buf()).unwrap();
    let stored = bucket.get(&key).await.unwrap().expect("blob in the bucket");
    assert_eq!(sha(&stored), key);
}

/// A clock the test moves by hand.
#[derive(Debug)]
struct TestClock(Mutex<DateTime<Utc>>);

impl TestClock {
    fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap() = at;
    }
}

impl sop_server::state::Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// The chunk objects in the local store.
fn chunk_objects(flow: &Flow) -> BTreeSet<PathBuf> {
    walk(&flow.state.blobs.root().join("uploads"))
        .into_iter()
        .collect()
}

/// `GET` of `sha256` for `token`: `(received, complete)`.
async fn progress(app: &axum::Router, token: &str, sha256: &str) -> (i64, bool) {
    let st = status(app, token, sha256).await;
    assert_eq!(st.status, 200, "{st:?}");
    let data = &st.body["data"];
    (
        data["received"].as_i64().unwrap(),
        data["complete"].as_bool().unwrap(),
    )
}

/// A PATCH expected to succeed: `(received, complete)`.
async fn sent(app: &axum::Router, token: &str, file: &[u8], from: usize, to: usize) -> (i64, bool) {
    let answer = patch(app, token, &sha(file), from, file.len(), &file[from..to]).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let data = &answer.body["data"];
    (
        data["received"].as_i64().unwrap(),
        data["complete"].as_bool().unwrap(),
    )
}

async fn abandoned_uploads_are_removed_after_their_expiry(flow: Flow) {
    let mut flow = flow;
    let t0 = Utc.with_ymd_and_hms(2026, 3, 2, 8, 0, 0).single().unwrap();
    let clock = Arc::new(TestClock(Mutex::new(t0)));
    flow.state = flow.state.clone().with_clock(clock.clone());
    flow.app = sop_server::app(flow.state.clone());
    let expiry = TimeDelta::from_std(flow.state.settings.upload_expiry).unwrap();
    assert_eq!(expiry, TimeDelta::days(7), "the default expiry");
    let (app, p1, p2) = (flow.app.clone(), flow.patient("P1"), flow.patient("P2"));
    let abandoned = jpeg(300_000, 11);
    let resumed = jpeg(300_000, 12);
    let completed = jpeg(100_000, 13);
    let fresh = jpeg(200_000, 14);

    // Day 0: P1 starts two uploads and sends a third whole.
    let before = chunk_objects(&flow);
    assert_eq!(
        sent(&app, &p1, &abandoned, 0, 100_000).await,
        (100_000, false)
    );
    let abandoned_chunks: BTreeSet<PathBuf> =
        chunk_objects(&flow).difference(&before).cloned().collect();
    assert_eq!(abandoned_chunks.len(), 1, "{abandoned_chunks:?}");
    assert_eq!(
        sent(&app, &p1, &resumed, 0, 100_000).await,
        (100_000, false)
    );
    assert_eq!(
        sent(&app, &p1, &completed, 0, 100_000).await,
        (100_000, true)
    );

    // Day 6: P1 resumes one of them; P2 starts the same file as P1's abandoned one, and another.
    clock.set(t0 + TimeDelta::days(6));
    assert_eq!(
        sent(&app, &p1, &resumed, 100_000, 200_000).await,
        (200_000, false)
    );
    assert_eq!(
        sent(&app, &p2, &abandoned, 0, 50_000).await,
        (50_000, false)
    );
    assert_eq!(sent(&app, &p2, &fresh, 0, 100_000).await, (100_000, false));
    let all_chunks = chunk_objects(&flow);
    assert_eq!(all_chunks.len(), 5, "{all_chunks:?}");

    // Just before the abandoned upload's expiry, nothing is removed.
    clock.set(t0 + expiry - TimeDelta::minutes(1));
    assert_eq!(remove_expired_uploads(&flow.state).await.unwrap(), 0);
    assert_eq!(chunk_objects(&flow), all_chunks);
    assert_eq!(
        progress(&app, &p1, &sha(&abandoned)).await,
        (100_000, false)
    );

    // An hour past it: that upload alone is gone, its chunk objects with it.
    clock.set(t0 + expiry + TimeDelta::hours(1));
    assert_eq!(remove_expired_uploads(&flow.state).await.unwrap(), 1);
    assert_eq!(progress(&app, &p1, &sha(&abandoned)).await, (0, false));
    let left = chunk_objects(&flow);
    assert!(left.is_disjoint(&abandoned_chunks), "{left:?}");
    assert_eq!(
        left,
        all_chunks.difference(&abandoned_chunks).cloned().collect()
    );
    // The resumed one (touched on day 6), the other user's and the completed one are kept.
    assert_eq!(progress(&app, &p1, &sha(&resumed)).await, (200_000, false));
    assert_eq!(progress(&app, &p2, &sha(&abandoned)).await, (50_000, false));
    assert_eq!(progress(&app, &p2, &sha(&fresh)).await, (100_000, false));
    assert_eq!(progress(&app, &p1, &sha(&completed)).await, (100_000, true));
    assert!(
        flow.state.blobs.get(&sha(&completed)).await.unwrap() == Some(completed.clone()),
        "the completed upload's blob is kept"
    );
    // A second run finds nothing more.
    assert_eq!(remove_expired_uploads(&flow.state).await.unwrap(), 0);

    // What was kept still completes, and P1 starts the removed upload again from 0.
    assert_eq!(
        sent(&app, &p1, &resumed, 200_000, resumed.len()).await,
        (resumed.len() as i64, true)
    );
    let resume_lost = patch(
        &app,
        &p1,
        &sha(&abandoned),
        100_000,
        abandoned.len(),
        &abandoned[100_000..],
    )
    .await;
    assert_eq!(resume_lost.status, 409, "{resume_lost:?}");
    assert_eq!(resume_lost.body["data"]["received"], 0);
    assert_eq!(
        sent(&app, &p1, &abandoned, 0, abandoned.len()).await,
        (abandoned.len() as i64, true)
    );
}

#[tokio::test]
async fn abandoned_uploads_are_removed_after_their_expiry_sqlite() {
    abandoned_uploads_are_removed_after_their_expiry(Flow::new().await).await;
}

#[tokio::test]
async fn abandoned_uploads_are_removed_after_their_expiry_postgres() {
    abandoned_uploads_are_removed_after_their_expiry(Flow::on_postgres().await).await;
}

/// The real binary removes expired uploads by itself (the scheduler's timer), with the expiry
/// of `SOP_UPLOAD_EXPIRY_HOURS`: half an upload, then the server restarted 25 hours later
/// (`SOP_CLOCK_OFFSET_SECONDS`) with a 24-hour expiry.
#[tokio::test]
async fn the_server_removes_expired_uploads_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = jpeg(400_000, 15);
    let key = sha(&bytes);
    let client = reqwest::Client::new();
    let first = TestServer::start(dir.path(), ServerOptions::default()).await;
    let token = mint_token(dir.path(), "P9", "snr_usr");
    let r = client
        .patch(first.url(&format!("/sync/v1/upload/{key}")))
        .bearer_auth(&token)
        .header("upload-offset", "0")
        .header("upload-length", bytes.len().to_string())
        .body(bytes[..200_000].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    first.terminate();
    let chunks_dir = dir.path().join("blobs").join("uploads");
    assert_eq!(walk(&chunks_dir).len(), 1);

    let env = [
        ("SOP_UPLOAD_EXPIRY_HOURS", "24".to_owned()),
        ("SOP_CLOCK_OFFSET_SECONDS", (25 * 3600).to_string()),
        ("SOP_JOBS_EVERY_SECONDS", "1".to_owned()),
    ];
    let options = ServerOptions {
        env: env.map(|(k, v)| (k.to_owned(), v)).to_vec(),
        ..ServerOptions::default()
    };
    let second = TestServer::start(dir.path(), options).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let st: Value = client
            .get(second.url(&format!("/sync/v1/upload/{key}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        // The row goes first, then the chunk objects.
        let left = walk(&chunks_dir);
        if st["data"] == json!({"sha256": key, "received": 0, "complete": false}) && left.is_empty()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the upload was not removed: {st}, chunks {left:?}; log:\n{}",
            second.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
