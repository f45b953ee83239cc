//! Bearer tokens against the binary in local-key mode.

use crate::support::{ServerOptions, TestServer, mint_token};
use sop_server::auth::{Audience, Claims, LOCAL_KEY_FILE, LocalKey};
use std::time::Duration;

#[tokio::test]
async fn cli_token_opens_app_how_in_both_languages() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // Minted before the first start: the server must reuse the key `token` created.
    let token = mint_token(tmp.path(), "patient-1", "snr_usr");
    let server = TestServer::start(tmp.path(), ServerOptions::default()).await;

    let en = server.post("/app/how", Some(&token), None).await;
    en.assert(200, 1000);
    let steps = en.body["data"].as_array().expect("steps");
    assert_eq!(steps.len(), 5);
    assert_eq!(steps[0]["step"], 1);
    assert_eq!(steps[0]["title"], "Submit your case");
    assert_eq!(steps[4]["title"], "Receive your report");

    for lang in ["1", "ar"] {
        let ar = server
            .post_with("/app/how", Some(&token), Some("{}"), &[("lang", lang)])
            .await;
        ar.assert(200, 1000);
        assert_eq!(ar.body["data"][0]["title"], "أرسل حالتك", "lang {lang}");
    }
    for lang in ["0", "en", "fr"] {
        let en = server
            .post_with("/app/how", Some(&token), None, &[("lang", lang)])
            .await;
        assert_eq!(
            en.body["data"][0]["title"], "Submit your case",
            "lang {lang}"
        );
    }
}

#[tokio::test]
async fn wrong_audience_is_a_403_envelope() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(tmp.path(), ServerOptions::default()).await;
    for aud in ["snr_pro", "snr_dash"] {
        let token = mint_token(tmp.path(), "someone", aud);
        let reply = server.post("/app/how", Some(&token), None).await;
        reply.assert(403, 2000);
        assert!(reply.message().contains("snr_usr"), "{reply:?}");
    }
}

#[tokio::test]
async fn missing_garbled_foreign_or_expired_tokens_are_401_envelopes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(tmp.path(), ServerOptions::default()).await;

    server.post("/app/how", None, None).await.assert(401, 2000);
    server
        .post("/app/how", Some("garbage"), None)
        .await
        .assert(401, 2000);
    server
        .post_with("/app/how", None, None, &[("authorization", "Basic dTpw")])
        .await
        .assert(401, 2000);

    // Signed by another data directory's key.
    let other = tempfile::tempdir().expect("tempdir");
    let foreign = mint_token(other.path(), "patient-1", "snr_usr");
    server
        .post("/app/how", Some(&foreign), None)
        .await
        .assert(401, 2000);

    // Signed by the right key (the same file the server uses) but expired.
    let key = LocalKey::load_or_create(tmp.path()).expect("server's key");
    let expired = key
        .sign(&Claims {
            exp: jsonwebtoken_now() - 3600,
            ..Claims::new("patient-1", Audience::Patient, Duration::ZERO)
        })
        .expect("sign");
    let reply = server.post("/app/how", Some(&expired), None).await;
    reply.assert(401, 2000);
    assert!(reply.message().contains("expired"), "{reply:?}");

    // Tampered: the payload of one token with the signature of another.
    let good = key
        .mint("patient-1", Audience::Patient, Duration::from_secs(60))
        .expect("sign");
    let evil = key
        .mint("patient-2", Audience::Patient, Duration::from_secs(60))
        .expect("sign");
    let g: Vec<&str> = good.split('.').collect();
    let e: Vec<&str> = evil.split('.').collect();
    let tampered = format!("{}.{}.{}", g[0], e[1], g[2]);
    server
        .post("/app/how", Some(&tampered), None)
        .await
        .assert(401, 2000);
}

fn jsonwebtoken_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

#[tokio::test]
async fn local_key_persists_across_restarts() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(tmp.path(), ServerOptions::default()).await;
    let token = mint_token(tmp.path(), "doctor-1", "snr_usr");
    server
        .post("/app/how", Some(&token), None)
        .await
        .assert(200, 1000);
    let (status, _) = server.terminate();
    assert!(status.success());

    let key_file = tmp.path().join(LOCAL_KEY_FILE);
    let before = std::fs::read(&key_file).expect("key file");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "key file mode {mode:o}");
    }

    let server = TestServer::start(tmp.path(), ServerOptions::default()).await;
    server
        .post("/app/how", Some(&token), None)
        .await
        .assert(200, 1000);
    assert_eq!(std::fs::read(&key_file).expect("key file"), before);
}
