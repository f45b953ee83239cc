//! The operator subcommands of the real binary: `seed-demo`, `openapi`, `audit verify`.

use crate::support::{ServerOptions, TestPg, TestServer, command};
use serde_json::Value;
use sqlx::Connection;
use std::path::Path;
use std::process::Output;

/// Runs `sop-server <args> --data-dir <dir> [--database-url <url>]`.
fn run(args: &[&str], data_dir: &Path, database_url: Option<&str>) -> Output {
    let mut cmd = command();
    cmd.args(args).arg("--data-dir").arg(data_dir);
    if let Some(url) = database_url {
        cmd.args(["--database-url", url]);
    }
    cmd.output().expect("run sop-server")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[track_caller]
fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        stdout(out),
        stderr(out)
    );
}

/// `seed-demo` twice: the second run finds everything in place and writes nothing.
fn seed_twice(data_dir: &Path, database_url: Option<&str>) {
    let first = run(&["seed-demo"], data_dir, database_url);
    assert_success(&first);
    let text = stdout(&first);
    assert!(text.contains("11 written, 0 unchanged"), "{text}");
    assert!(
        text.contains(&sop_server::seed::STANDARD.to_string()),
        "{text}"
    );
    assert!(text.contains("1500.00 SAR, 7 days"), "{text}");
    assert!(text.contains("--sub EMP10 --aud snr_pro"), "{text}");

    let second = run(&["seed-demo"], data_dir, database_url);
    assert_success(&second);
    assert!(
        stdout(&second).contains("0 written, 11 unchanged"),
        "{}",
        stdout(&second)
    );
}

#[tokio::test]
async fn seed_demo_is_idempotent_and_audit_verify_catches_a_tampered_row() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    seed_twice(dir, None);

    let verify = run(&["audit", "verify"], dir, None);
    assert_success(&verify);
    assert!(
        stdout(&verify).contains("audit chain OK: 11 rows checked"),
        "the second seed added no audit row: {}",
        stdout(&verify)
    );

    let db = dir.join("sop.db");
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite:{}", db.display()))
        .await
        .expect("open the SQLite file");
    sqlx::query("UPDATE audit_log SET action = 'x' WHERE seq = 2")
        .execute(&mut conn)
        .await
        .expect("tamper");
    conn.close().await.expect("close");

    let broken = run(&["audit", "verify"], dir, None);
    assert_eq!(broken.status.code(), Some(1), "{}", stderr(&broken));
    assert!(
        stderr(&broken).contains("broken at seq 2"),
        "{}",
        stderr(&broken)
    );
}

#[tokio::test]
async fn seed_demo_is_idempotent_on_postgres() {
    let pg = TestPg::create().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    seed_twice(tmp.path(), Some(&pg.url));
    let verify = run(&["audit", "verify"], tmp.path(), Some(&pg.url));
    assert_success(&verify);
    assert!(
        stdout(&verify).contains("11 rows checked"),
        "{}",
        stdout(&verify)
    );
}

#[tokio::test]
async fn openapi_command_prints_what_the_server_serves() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = run(&["openapi"], tmp.path(), None);
    assert_success(&out);
    let printed: Value = serde_json::from_str(&stdout(&out)).expect("JSON on stdout");
    assert_eq!(printed["openapi"], "3.1.0");

    let server = TestServer::start(tmp.path(), ServerOptions::default()).await;
    let served = server.get("/openapi.json").await;
    assert_eq!(served.status, 200);
    assert_eq!(served.body, printed);
}
