//! JWKS mode: tokens of an identity service, verified with keys fetched from its JWKS URL.
//!
//! A stub identity service (axum on a free port inside the test) serves a key set the test can
//! change and counts fetches; tokens are signed with in-memory keys.

use crate::support::{ServerOptions, TestServer};
use axum::extract::State;
use axum::routing::get;
use jsonwebtoken::jwk::Jwk;
use sop_server::auth::{Audience, AuthError, Authenticator, LocalKey};
use sop_server::config::{JwksConfig, SecretUrl};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Default)]
struct StubState {
    keys: Arc<Mutex<Vec<Jwk>>>,
    fetches: Arc<AtomicUsize>,
}

/// A JWKS endpoint on 127.0.0.1; stops when dropped.
struct StubIdp {
    state: StubState,
    url: String,
    task: tokio::task::JoinHandle<()>,
}

impl StubIdp {
    async fn start(keys: &[&LocalKey]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind stub");
        Self::start_on(listener, keys)
    }

    fn start_on(listener: tokio::net::TcpListener, keys: &[&LocalKey]) -> Self {
        let state = StubState::default();
        for key in keys {
            state.publish(key);
        }
        let app = axum::Router::new()
            .route(
                "/.well-known/jwks.json",
                get(|State(s): State<StubState>| async move {
                    s.fetches.fetch_add(1, Ordering::SeqCst);
                    let keys = s.keys.lock().expect("lock").clone();
                    axum::Json(serde_json::json!({ "keys": keys }))
                }),
            )
            .with_state(state.clone());
        let url = format!(
            "http://{}/.well-known/jwks.json",
            listener.local_addr().expect("addr")
        );
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("stub server");
        });
        Self { state, url, task }
    }

    fn fetches(&self) -> usize {
        self.state.fetches.load(Ordering::SeqCst)
    }
}

impl StubState {
    fn publish(&self, key: &LocalKey) {
        self.keys
            .lock()
            .expect("lock")
            .push(key.public_jwk().clone());
    }
}

impl Drop for StubIdp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn token(key: &LocalKey, sub: &str, audience: Audience) -> String {
    key.mint(sub, audience, Duration::from_secs(300))
        .expect("sign")
}

#[tokio::test]
async fn jwks_mode_verifies_identity_tokens_and_refetches_for_a_new_kid() {
    let first = LocalKey::generate().expect("key");
    let idp = StubIdp::start(&[&first]).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(
        tmp.path(),
        ServerOptions {
            jwks_url: Some(idp.url.clone()),
            // Tests must not wait 30 s for a refetch.
            extra_args: vec!["--jwks-min-refetch-seconds".into(), "0".into()],
            ..ServerOptions::default()
        },
    )
    .await;
    assert_eq!(idp.fetches(), 1, "fetched once at start");

    server
        .post(
            "/app/how",
            Some(&token(&first, "p1", Audience::Patient)),
            None,
        )
        .await
        .assert(200, 1000);
    server
        .post(
            "/app/how",
            Some(&token(&first, "d1", Audience::Doctor)),
            None,
        )
        .await
        .assert(403, 2000);
    assert_eq!(idp.fetches(), 1, "known kid: served from the cache");

    // The identity service rotates in a new key: the unknown kid triggers a fetch.
    let second = LocalKey::generate().expect("key");
    idp.state.publish(&second);
    server
        .post(
            "/app/how",
            Some(&token(&second, "p2", Audience::Patient)),
            None,
        )
        .await
        .assert(200, 1000);
    assert_eq!(idp.fetches(), 2, "refetched for the new kid");

    // A key the identity service never published stays unknown.
    let stranger = LocalKey::generate().expect("key");
    server
        .post(
            "/app/how",
            Some(&token(&stranger, "x", Audience::Patient)),
            None,
        )
        .await
        .assert(401, 2000);

    // The local key of the data directory is not trusted in JWKS mode.
    let local = crate::support::mint_token(tmp.path(), "p1", "snr_usr");
    server
        .post("/app/how", Some(&local), None)
        .await
        .assert(401, 2000);
}

#[tokio::test]
async fn jwks_refetches_are_rate_limited() {
    let first = LocalKey::generate().expect("key");
    let idp = StubIdp::start(&[&first]).await;
    let auth = Authenticator::jwks(&JwksConfig {
        url: SecretUrl::new(idp.url.clone()),
        min_refetch_interval: Duration::from_secs(3600),
    })
    .await
    .expect("authenticator");
    assert_eq!(idp.fetches(), 1);

    let ok = auth
        .verify(&token(&first, "p1", Audience::Patient), Audience::Patient)
        .await;
    assert!(ok.is_ok(), "{ok:?}");

    // A flood of tokens with unknown kids does not turn into a flood of fetches, even when the
    // key really exists by now: the next fetch waits for the interval.
    let second = LocalKey::generate().expect("key");
    idp.state.publish(&second);
    for _ in 0..5 {
        let refused = auth
            .verify(&token(&second, "p1", Audience::Patient), Audience::Patient)
            .await;
        assert_eq!(refused, Err(AuthError::UnknownKey));
    }
    assert_eq!(idp.fetches(), 1);
}

#[tokio::test]
async fn jwks_verifier_starts_while_the_identity_service_is_down_and_recovers() {
    // Reserve a port and free it: nothing answers there for now.
    let reserved = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = reserved.local_addr().expect("addr");
    drop(reserved);
    let auth = Authenticator::jwks(&JwksConfig {
        url: SecretUrl::new(format!("http://{addr}/.well-known/jwks.json")),
        min_refetch_interval: Duration::ZERO,
    })
    .await
    .expect("authenticator builds without keys");
    let key = LocalKey::generate().expect("key");
    let token = token(&key, "p1", Audience::Patient);
    assert_eq!(
        auth.verify(&token, Audience::Patient).await,
        Err(AuthError::UnknownKey)
    );

    // The identity service comes up on that address: the next token fetches and verifies.
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("rebind the reserved port");
    let idp = StubIdp::start_on(listener, &[&key]);
    let user = auth
        .verify(&token, Audience::Patient)
        .await
        .expect("verified after recovery");
    assert_eq!(user.sub, "p1");
    assert_eq!(idp.fetches(), 1);
}
