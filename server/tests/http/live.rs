//! The live channel `GET /sync/v1/live` (DESIGN §3 "Live", §6): who hears which hint, refused
//! upgrades, coalescing, lagging connections, token expiry, shutdown, and hints crossing
//! server instances through PostgreSQL `LISTEN/NOTIFY`.
//!
//! Most tests serve `sop_server::app` in-process on a real port (a WebSocket needs a real
//! connection) and publish with `state.hints.publish`, as the sync endpoints do after a commit.
//! They run on Tokio's single-threaded test runtime: a loop of `publish` calls that never yields
//! finishes before any connection task runs, which makes coalescing and lagging deterministic.

use crate::support::{self, ServerOptions, TestPg, TestServer};
use futures_util::StreamExt as _;
use serde_json::Value;
use sop_server::AppState;
use sop_server::auth::{AudClaim, Audience, Claims, LocalKey};
use sop_server::config::{DatabaseConfig, SecretUrl};
use sop_server::db::Db;
use sop_server::hints::{Hint, Hints};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a test waits for a hint that must come.
const ARRIVES_WITHIN: Duration = Duration::from_secs(1);

/// How long a test waits to be sure a hint does not come (beyond the coalescing interval).
const QUIET_FOR: Duration = Duration::from_millis(400);

/// `state`'s application on a free local port; the server task ends with the test's runtime.
async fn serve(state: AppState) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let service = sop_server::app(state).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, service).await });
    addr
}

fn live_url(addr: SocketAddr) -> String {
    format!("ws://{addr}/sync/v1/live")
}

/// Opens the live channel with `token` in the `Authorization` header.
async fn connect(addr: SocketAddr, token: &str) -> Socket {
    let mut request = live_url(addr).into_client_request().expect("request");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header value"),
    );
    let (socket, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("live channel opens");
    assert_eq!(response.status(), 101);
    socket
}

/// Opens the live channel with `token` in the `access_token` query parameter.
async fn connect_with_query(addr: SocketAddr, token: &str) -> Socket {
    let (socket, _) =
        tokio_tungstenite::connect_async(format!("{}?access_token={token}", live_url(addr)))
            .await
            .expect("live channel opens");
    socket
}

/// The HTTP status and envelope of a refused upgrade.
async fn refused(request: tungstenite::handshake::client::Request) -> (u16, Value) {
    match tokio_tungstenite::connect_async(request).await {
        Err(tungstenite::Error::Http(response)) => {
            let body = response.body().clone().unwrap_or_default();
            let envelope = serde_json::from_slice(&body).unwrap_or(Value::Null);
            (response.status().as_u16(), envelope)
        }
        Err(e) => panic!("unexpected error: {e}"),
        Ok(_) => panic!("the upgrade was accepted"),
    }
}

/// The next hint's cursor, skipping pings; `None` if none arrives within `wait`. Panics on
/// anything but a `pull_now` hint.
async fn next_hint(socket: &mut Socket, wait: Duration) -> Option<u64> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let message = tokio::time::timeout_at(deadline, socket.next())
            .await
            .ok()?;
        match message.expect("socket open").expect("readable message") {
            Message::Text(text) => {
                let hint: Value = serde_json::from_str(&text).expect("JSON hint");
                assert_eq!(hint["type"], "pull_now", "{hint}");
                assert_eq!(
                    hint.as_object().map(|o| o.len()),
                    Some(2),
                    "no data: {hint}"
                );
                return Some(hint["cursor"].as_u64().expect("numeric cursor"));
            }
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected message {other:?}"),
        }
    }
}

/// The close frame the server sends next (skipping hints and pings).
async fn close_frame(socket: &mut Socket) -> tungstenite::protocol::CloseFrame {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("closed in time")
            .expect("socket open")
            .expect("readable message");
        if let Message::Close(frame) = message {
            return frame.expect("a close frame with a code");
        }
    }
}

fn hint(cursor: u64, users: &[&str], admins: bool) -> Hint {
    Hint {
        cursor,
        users: users.iter().map(|u| (*u).to_owned()).collect(),
        admins,
    }
}

fn token(key: &LocalKey, sub: &str, audience: Audience) -> String {
    key.mint(sub, audience, Duration::from_secs(600))
        .expect("token")
}

#[tokio::test]
async fn hints_reach_only_the_users_they_name() {
    let (state, key, _dir) = support::in_process().await;
    let hints = state.hints.clone();
    let addr = serve(state).await;
    let mut p1 = connect(addr, &token(&key, "P1", Audience::Patient)).await;
    // Browsers cannot set headers: the query parameter works too.
    let mut doctor = connect_with_query(addr, &token(&key, "EMP1", Audience::Doctor)).await;
    let mut admin = connect(addr, &token(&key, "A1", Audience::Admin)).await;

    // Nothing is sent on connect.
    assert_eq!(next_hint(&mut p1, QUIET_FOR).await, None);

    hints.publish(hint(1, &["P2"], false));
    hints.publish(hint(2, &["P1", "EMP1"], false));
    // Hints arrive in order, so P1's first hint being 2 shows it never got P2's.
    assert_eq!(next_hint(&mut p1, ARRIVES_WITHIN).await, Some(2));
    assert_eq!(next_hint(&mut doctor, ARRIVES_WITHIN).await, Some(2));
    assert_eq!(
        next_hint(&mut admin, QUIET_FOR).await,
        None,
        "not for admins"
    );

    hints.publish(hint(3, &[], true));
    assert_eq!(next_hint(&mut admin, ARRIVES_WITHIN).await, Some(3));
    assert_eq!(next_hint(&mut p1, QUIET_FOR).await, None, "admins only");
    assert_eq!(next_hint(&mut doctor, Duration::ZERO).await, None);
}

#[tokio::test]
async fn upgrade_without_a_valid_token_is_refused() {
    let (state, key, _dir) = support::in_process().await;
    let addr = serve(state).await;

    let no_token = live_url(addr).into_client_request().expect("request");
    let (status, envelope) = refused(no_token).await;
    assert_eq!((status, envelope["status"].as_i64()), (401, Some(2000)));

    let mut bad = live_url(addr).into_client_request().expect("request");
    bad.headers_mut()
        .insert("authorization", "Bearer not-a-jwt".parse().expect("value"));
    assert_eq!(refused(bad).await.0, 401);

    let bad_query = format!("{}?access_token=not-a-jwt", live_url(addr))
        .into_client_request()
        .expect("request");
    assert_eq!(refused(bad_query).await.0, 401);

    // Signed by another key: 401 as well.
    let stranger = LocalKey::generate().expect("key");
    let foreign = format!(
        "{}?access_token={}",
        live_url(addr),
        token(&stranger, "P1", Audience::Patient)
    )
    .into_client_request()
    .expect("request");
    assert_eq!(refused(foreign).await.0, 401);

    // An authentic token for some other service: 403.
    let other_audience = key
        .sign(&Claims {
            aud: Some(AudClaim::One("billing".to_owned())),
            ..Claims::new("P1", Audience::Patient, Duration::from_secs(60))
        })
        .expect("token");
    let mut request = live_url(addr).into_client_request().expect("request");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {other_audience}").parse().expect("value"),
    );
    let (status, envelope) = refused(request).await;
    assert_eq!((status, envelope["status"].as_i64()), (403, Some(2000)));

    // A valid token on a plain GET (no upgrade): a 400 envelope, not a hang.
    let plain = reqwest::Client::new()
        .get(format!("http://{addr}/sync/v1/live"))
        .bearer_auth(token(&key, "P1", Audience::Patient))
        .send()
        .await
        .expect("GET");
    let status = plain.status().as_u16();
    let body: Value = plain.json().await.expect("envelope");
    assert_eq!(
        (status, body["status"].as_i64()),
        (400, Some(1002)),
        "{body}"
    );
}

#[tokio::test]
async fn bursts_are_coalesced_to_the_latest_cursor() {
    let (state, key, _dir) = support::in_process().await;
    let hints = state.hints.clone();
    let addr = serve(state).await;
    let mut p1 = connect(addr, &token(&key, "P1", Audience::Patient)).await;

    // Twenty hints over about 300 ms: at most one message per 100 ms goes out, so a handful
    // (a slow machine only makes it fewer), the last with the last cursor.
    for cursor in 1..=20 {
        hints.publish(hint(cursor, &["P1"], false));
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    let mut received = Vec::new();
    while let Some(cursor) = next_hint(&mut p1, ARRIVES_WITHIN).await {
        received.push(cursor);
        if cursor == 20 {
            break;
        }
    }
    assert_eq!(received.last(), Some(&20), "{received:?}");
    assert!(received.len() <= 6, "not coalesced: {received:?}");
    assert!(received.windows(2).all(|w| w[0] < w[1]), "{received:?}");
    assert_eq!(next_hint(&mut p1, QUIET_FOR).await, None);
}

#[tokio::test]
async fn a_lagging_connection_gets_one_hint_with_the_latest_cursor() {
    let (mut state, key, _dir) = support::in_process().await;
    state.hints = Hints::with_capacity(4);
    let hints = state.hints.clone();
    let addr = serve(state).await;
    let mut p1 = connect(addr, &token(&key, "P1", Audience::Patient)).await;

    // P1's hint is pushed out of the connection's buffer by twenty hints for someone else
    // before the connection reads any of them.
    hints.publish(hint(1, &["P1"], false));
    for cursor in 2..=21 {
        hints.publish(hint(cursor, &["P2"], false));
    }
    assert_eq!(next_hint(&mut p1, ARRIVES_WITHIN).await, Some(21));
    assert_eq!(next_hint(&mut p1, QUIET_FOR).await, None);
}

#[tokio::test]
async fn the_connection_closes_when_its_token_expires() {
    let (state, key, _dir) = support::in_process().await;
    let addr = serve(state).await;
    let now = jsonwebtoken::get_current_timestamp();
    let short = key
        .sign(&Claims {
            exp: now + 1,
            ..Claims::new("P1", Audience::Patient, Duration::ZERO)
        })
        .expect("token");
    let mut p1 = connect(addr, &short).await;
    let frame = close_frame(&mut p1).await;
    assert_eq!(frame.code, CloseCode::from(4401));
}

#[tokio::test]
async fn shutdown_closes_live_connections_cleanly() {
    let (state, key, _dir) = support::in_process().await;
    let hints = state.hints.clone();
    let addr = serve(state).await;
    let mut p1 = connect(addr, &token(&key, "P1", Audience::Patient)).await;
    assert!(!hints.sessions_closed(Duration::from_millis(50)).await);

    hints.shut_down();
    let frame = close_frame(&mut p1).await;
    assert_eq!(frame.code, CloseCode::Away);
    // Answer the close, as a client does; the server's session then ends.
    let _ = p1.close(None).await;
    assert!(hints.sessions_closed(Duration::from_secs(3)).await);
}

#[tokio::test]
async fn sigterm_closes_live_connections_of_the_real_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path(), ServerOptions::default()).await;
    let token = support::mint_token(dir.path(), "P1", "snr_usr");
    let url = format!(
        "{}/sync/v1/live",
        server.base_url.replace("http://", "ws://")
    );
    let (mut p1, _) = tokio_tungstenite::connect_async(format!("{url}?access_token={token}"))
        .await
        .expect("live channel opens");

    let stopping = tokio::task::spawn_blocking(move || server.terminate());
    let frame = close_frame(&mut p1).await;
    assert_eq!(frame.code, CloseCode::Away);
    let _ = p1.close(None).await;
    let (status, took) = stopping.await.expect("terminate");
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(8), "took {took:?}");
}

// ---------------------------------------------------------------------------------------------
// Across instances (PostgreSQL)

/// An instance of the server over `pg`: its own pool, its own hints (its own instance id), its
/// relay listening.
struct Instance {
    state: AppState,
    addr: SocketAddr,
    _relay: sop_server::hints::Relay,
}

async fn instance(pg: &TestPg, key: &LocalKey, dir: &std::path::Path) -> Instance {
    let db = Db::connect(&DatabaseConfig::Postgres(SecretUrl::new(pg.url.clone())))
        .await
        .expect("connect");
    db.migrate().await.expect("migrate");
    let auth = sop_server::auth::Authenticator::local(key).expect("authenticator");
    let settings =
        sop_server::state::Settings::new(dir.to_path_buf(), "http://127.0.0.1:0".to_owned());
    let state = AppState::new(db.clone(), auth, settings);
    let mut relay = state.hints.relay(&db, state.store.clone());
    assert!(relay.wait_listening(Duration::from_secs(5)).await);
    let addr = serve(state.clone()).await;
    Instance {
        state,
        addr,
        _relay: relay,
    }
}

#[tokio::test]
async fn hints_cross_instances_through_postgres() {
    let pg = TestPg::create().await;
    let key = LocalKey::generate().expect("key");
    let dir = tempfile::tempdir().expect("tempdir");
    let a = instance(&pg, &key, dir.path()).await;
    let b = instance(&pg, &key, dir.path()).await;
    let mut p1_on_b = connect(b.addr, &token(&key, "P1", Audience::Patient)).await;
    let mut admin_on_b = connect(b.addr, &token(&key, "A1", Audience::Admin)).await;

    // Published on A, heard on B; only by those it names.
    a.state.hints.publish(hint(1, &["P2"], false));
    a.state.hints.publish(hint(2, &["P1"], true));
    assert_eq!(next_hint(&mut p1_on_b, ARRIVES_WITHIN).await, Some(2));
    assert_eq!(next_hint(&mut admin_on_b, ARRIVES_WITHIN).await, Some(2));

    // B does not hear its own hints twice (once locally, once through PostgreSQL).
    b.state.hints.publish(hint(3, &["P1"], false));
    assert_eq!(next_hint(&mut p1_on_b, ARRIVES_WITHIN).await, Some(3));
    assert_eq!(next_hint(&mut p1_on_b, QUIET_FOR).await, None, "no echo");

    // Too many users for a notification: everyone on B is told to pull.
    let many: Vec<String> = (0..2000).map(|i| format!("patient-{i:06}")).collect();
    a.state.hints.publish(Hint {
        cursor: 4,
        users: many,
        admins: false,
    });
    assert_eq!(next_hint(&mut p1_on_b, ARRIVES_WITHIN).await, Some(4));
    assert_eq!(next_hint(&mut admin_on_b, ARRIVES_WITHIN).await, Some(4));
}

#[tokio::test]
async fn the_relay_reconnects_and_wakes_everyone_after_losing_its_connection() {
    let pg = TestPg::create().await;
    let key = LocalKey::generate().expect("key");
    let dir = tempfile::tempdir().expect("tempdir");
    let a = instance(&pg, &key, dir.path()).await;
    let b = instance(&pg, &key, dir.path()).await;
    let mut p1_on_b = connect(b.addr, &token(&key, "P1", Audience::Patient)).await;
    a.state.hints.publish(hint(7, &["P1"], false));
    assert_eq!(next_hint(&mut p1_on_b, ARRIVES_WITHIN).await, Some(7));

    // Kill every listening connection, as a database restart or a network cut would.
    let mut admin = pg.connect().await;
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_all(&mut admin)
    .await
    .expect("terminate listeners");
    assert_eq!(killed, vec![true, true]);

    // Notifications may have been lost meanwhile: once listening again, B wakes everyone with
    // the latest cursor it knows.
    assert_eq!(
        next_hint(&mut p1_on_b, Duration::from_secs(10)).await,
        Some(7)
    );
    a.state.hints.publish(hint(8, &["P1"], false));
    assert_eq!(next_hint(&mut p1_on_b, ARRIVES_WITHIN).await, Some(8));
}

/// The whole path over two real server processes on one PostgreSQL: a command through
/// instance A's `/app` API commits feed rows and publishes a hint; a device of that patient
/// connected to instance B hears it and pulls the change from B.
#[tokio::test]
async fn a_change_made_through_instance_a_wakes_a_device_on_b_which_pulls_it_from_b() {
    let pg = TestPg::create().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let options = ServerOptions {
        database_url: Some(pg.url.clone()),
        ..ServerOptions::default()
    };
    // One data directory: both instances verify tokens with the same local key.
    let a = TestServer::start(dir.path(), options.clone()).await;
    let b = TestServer::start(dir.path(), options).await;
    let admin = support::mint_token(dir.path(), "A1", "snr_dash");
    let p1 = support::mint_token(dir.path(), "P1", "snr_usr");
    let p2 = support::mint_token(dir.path(), "P2", "snr_usr");

    let rt = a
        .post(
            "/admin/save-reviewtype",
            Some(&admin),
            Some(
                r#"{"title_en": "Standard", "title_ar": "قياسية", "description_en": "d",
                    "description_ar": "د", "duration_en": "5 days", "duration_ar": "5 أيام",
                    "price": 50000, "currency": "SAR", "expected_review_days": 7, "icon": "clock"}"#,
            ),
        )
        .await;
    rt.assert(200, 1000);
    let dc = a
        .post(
            "/admin/save-disease-category",
            Some(&admin),
            Some(r#"{"label_en": "Oncology", "label_ar": "الأورام", "doctor_ids": ["EMP1"]}"#),
        )
        .await;
    dc.assert(200, 1000);

    let live = |server: &TestServer, token: &str| {
        format!(
            "{}/sync/v1/live?access_token={token}",
            server.base_url.replace("http://", "ws://")
        )
    };
    let (mut p1_on_b, _) = tokio_tungstenite::connect_async(live(&b, &p1))
        .await
        .expect("P1's live channel on B");
    let (mut p2_on_b, _) = tokio_tungstenite::connect_async(live(&b, &p2))
        .await
        .expect("P2's live channel on B");

    let created = a
        .post(
            "/app/create-case",
            Some(&p1),
            Some(
                &serde_json::json!({
                    "rt_id": rt.body["data"]["rt_id"], "dc_id": dc.body["data"]["dc_id"],
                    "patient_age": 54, "patient_gender": "female",
                    "medical_history": "history", "questions": "questions",
                })
                .to_string(),
            ),
        )
        .await;
    created.assert(200, 1000);
    let case_id = created.body["data"]["case_id"].as_str().expect("case id");

    let hinted = next_hint(&mut p1_on_b, ARRIVES_WITHIN)
        .await
        .expect("P1's device on B hears of the case created through A");
    assert_eq!(next_hint(&mut p2_on_b, QUIET_FOR).await, None, "not P2's");

    let pulled = b
        .post("/sync/v1/pull", Some(&p1), Some(r#"{"cursor": 0}"#))
        .await;
    pulled.assert(200, 1000);
    let data = &pulled.body["data"];
    assert_eq!(data["more"], false, "{data}");
    assert!(data["cursor"].as_u64().expect("cursor") >= hinted, "{data}");
    let items = data["items"].as_array().expect("items");
    assert!(
        items
            .iter()
            .any(|item| item["type"] == "case_record" && item["case_id"] == case_id),
        "the case is in B's feed: {items:?}"
    );
}
