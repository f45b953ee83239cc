//! `sop_server::app` driven in process, without a binary or a socket.

use crate::support::in_process;
use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::Value;
use sop_server::auth::Audience;
use std::time::Duration;
use tower::ServiceExt;

async fn call(app: axum::Router, req: Request<Body>) -> (u16, Value) {
    let resp = app.oneshot(req).await.expect("infallible");
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).expect("JSON envelope"),
    )
}

#[tokio::test]
async fn app_router_serves_requests_in_process() {
    let (state, key, _dir) = in_process().await;
    let app = sop_server::app(state);

    let (status, body) = call(
        app.clone(),
        Request::get("/health").body(Body::empty()).expect("req"),
    )
    .await;
    assert_eq!((status, &body["status"]), (200, &Value::from(1000)));

    let token = key
        .mint("p1", Audience::Patient, Duration::from_secs(60))
        .expect("token");
    let req = Request::post("/app/how")
        .header("authorization", format!("Bearer {token}"))
        .header("lang", "ar")
        .body(Body::empty())
        .expect("req");
    let (status, body) = call(app, req).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"][2]["title"], "ادفع");
}

#[tokio::test]
async fn ready_is_503_with_a_generic_message_when_the_database_is_gone() {
    let (state, _key, _dir) = in_process().await;
    let app = sop_server::app(state.clone());
    let (status, _) = call(
        app.clone(),
        Request::get("/ready").body(Body::empty()).expect("req"),
    )
    .await;
    assert_eq!(status, 200);

    state.db.close().await;
    let (status, body) = call(
        app,
        Request::get("/ready").body(Body::empty()).expect("req"),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], 1001);
    let message = body["message"].as_str().expect("message");
    assert!(!message.contains("closed"), "detail leaked: {message}");
    assert!(body.get("data").is_none());
}
