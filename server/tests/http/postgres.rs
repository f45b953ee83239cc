//! The binary and the database layer on PostgreSQL (a fresh database per test).

use crate::support::{ServerOptions, TestPg, TestServer, command};
use sop_server::config::{DatabaseConfig, SecretUrl};
use sop_server::db::{Backend, Db};

async fn server_info_exists(pg: &TestPg) -> bool {
    let mut conn = pg.connect().await;
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'server_info'",
    )
    .fetch_one(&mut conn)
    .await
    .expect("query");
    n == 1
}

#[tokio::test]
async fn binary_serves_health_and_ready_on_postgres() {
    let pg = TestPg::create().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(
        tmp.path(),
        ServerOptions {
            database_url: Some(pg.url.clone()),
            ..ServerOptions::default()
        },
    )
    .await;

    server.get("/health").await.assert(200, 1000);
    server.get("/ready").await.assert(200, 1000);
    assert!(server_info_exists(&pg).await, "migrations ran at start");
    assert!(
        !tmp.path().join("sop.db").exists(),
        "no SQLite file with PostgreSQL"
    );
    drop(server);
}

#[tokio::test]
async fn migrate_subcommand_applies_migrations_on_postgres() {
    let pg = TestPg::create().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = command()
        .arg("migrate")
        .arg("--data-dir")
        .arg(tmp.path())
        .args(["--database-url", &pg.url])
        .output()
        .expect("run migrate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(server_info_exists(&pg).await);
}

#[tokio::test]
async fn db_layer_connects_migrates_idempotently_and_pings_on_postgres() {
    let pg = TestPg::create().await;
    let db = Db::connect(&DatabaseConfig::Postgres(SecretUrl::new(pg.url.clone())))
        .await
        .expect("connect");
    assert_eq!(db.backend(), Backend::Postgres);
    db.migrate().await.expect("migrate");
    db.migrate().await.expect("second migrate is a no-op");
    db.ping().await.expect("ping");
    let Db::Postgres(pool) = &db else {
        panic!("expected PostgreSQL")
    };
    sqlx::query("INSERT INTO server_info (key, value) VALUES ($1, $2)")
        .bind("k")
        .bind("v")
        .execute(pool)
        .await
        .expect("insert");
    let v: String = sqlx::query_scalar("SELECT value FROM server_info WHERE key = $1")
        .bind("k")
        .fetch_one(pool)
        .await
        .expect("select");
    assert_eq!(v, "v");
    db.close().await;
}
