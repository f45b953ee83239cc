//! Shared helpers of the HTTP integration tests.
//!
//! - [`TestServer`]: runs the real `sop-server` binary on a free port (`--bind 127.0.0.1:0`,
//!   the address is read from its "listening on" log line), waits for `/health`, keeps its logs
//!   for assertions, and kills it on drop.
//! - [`TestPg`]: a fresh PostgreSQL database per test, created through the admin URL of
//!   `SOP_TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`) and dropped
//!   afterwards (best effort). No PostgreSQL is a test failure, never a silent skip.
//! - [`mint_token`]: `sop-server token` with a data directory, as a user would run it.
//! - [`in_process`]: an [`AppState`] over a temporary SQLite database and an in-memory key, for
//!   driving `sop_server::app` without a process.

#![allow(dead_code)] // not every test module uses every helper

use reqwest::header::HeaderMap;
use serde_json::Value;
use sop_server::AppState;
use sop_server::auth::{Authenticator, LocalKey};
use sop_server::config::DatabaseConfig;
use sop_server::db::Db;
use sqlx::Connection;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The server binary built by Cargo for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_sop-server");

/// Admin connection used to create per-test PostgreSQL databases, unless overridden.
pub const DEFAULT_PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// How long a server may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Environment variables of the server that must not leak from the developer's shell.
const SOP_ENV: [&str; 24] = [
    "SOP_BIND",
    "SOP_DATA_DIR",
    "SOP_DATABASE_URL",
    "SOP_JWKS_URL",
    "SOP_LOG_FORMAT",
    "SOP_JWKS_MIN_REFETCH_SECONDS",
    "SOP_PAYMENTS_URL",
    "SOP_PAYMENTS_API_KEY",
    "SOP_PAYMENTS_WEBHOOK_SECRET",
    "SOP_PROFILES_URL",
    "SOP_PROFILES_API_KEY",
    "SOP_PUSH_URL",
    "SOP_PUSH_API_KEY",
    "SOP_OUTBOUND_TIMEOUT_SECONDS",
    "SOP_JOBS_EVERY_SECONDS",
    "SOP_CLOCK_OFFSET_SECONDS",
    "SOP_S3_BUCKET",
    "SOP_S3_ENDPOINT",
    "SOP_S3_REGION",
    "SOP_S3_ACCESS_KEY_ID",
    "SOP_S3_SECRET_ACCESS_KEY",
    "SOP_MAX_FILE_BYTES",
    "SOP_MAX_CASE_BYTES",
    "SOP_UPLOAD_EXPIRY_HOURS",
];

/// A `Command` for the server binary with a clean, predictable environment.
pub fn command() -> Command {
    let mut cmd = Command::new(BIN);
    for var in SOP_ENV {
        cmd.env_remove(var);
    }
    cmd.env("RUST_LOG", "info");
    cmd
}

/// Runs `sop-server token` for `sub`/`aud` with `data_dir` and returns the printed JWT.
pub fn mint_token(data_dir: &Path, sub: &str, aud: &str) -> String {
    let out = command()
        .arg("token")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--sub", sub, "--aud", aud])
        .output()
        .expect("run sop-server token");
    assert!(
        out.status.success(),
        "token failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).expect("utf-8 token");
    let token = token.trim().to_owned();
    assert_eq!(token.split('.').count(), 3, "not a JWT: {token:?}");
    token
}

/// Options of a [`TestServer`] beyond its data directory.
#[derive(Clone, Debug, Default)]
pub struct ServerOptions {
    /// `--database-url`; SQLite in the data directory when `None`.
    pub database_url: Option<String>,
    /// `--jwks-url`.
    pub jwks_url: Option<String>,
    /// Any further arguments.
    pub extra_args: Vec<String>,
    /// Environment variables of the server process.
    pub env: Vec<(String, String)>,
}

/// A response, decoded.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// The body as JSON (`Value::String` of the raw text when it is not JSON).
    pub body: Value,
}

impl Reply {
    /// The envelope `status` code.
    pub fn code(&self) -> i64 {
        self.body["status"].as_i64().unwrap_or(-1)
    }

    /// The envelope `message`.
    pub fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or_default()
    }

    /// Asserts HTTP status and envelope code together, showing the body on failure.
    #[track_caller]
    pub fn assert(&self, status: u16, code: i64) -> &Self {
        assert_eq!(
            (self.status, self.code()),
            (status, code),
            "unexpected reply: {self:?}"
        );
        self
    }
}

/// Decodes a reqwest response into a [`Reply`].
pub async fn reply(resp: reqwest::Response) -> Reply {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("response body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Reply {
        status,
        headers,
        body,
    }
}

/// The `content-type` of a response's `headers`, or `""`.
pub fn content_type(headers: &axum::http::HeaderMap) -> String {
    headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The real server binary, running.
pub struct TestServer {
    child: Option<Child>,
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    /// The data directory it was started with.
    pub data_dir: PathBuf,
    logs: Arc<Mutex<String>>,
    /// A client for talking to it.
    pub client: reqwest::Client,
}

impl TestServer {
    /// Starts `sop-server serve` with `data_dir` (created by the server if missing) and waits
    /// until `/health` answers. Panics with the server's log if it does not come up.
    pub async fn start(data_dir: &Path, options: ServerOptions) -> Self {
        let mut cmd = command();
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--bind", "127.0.0.1:0"]);
        if let Some(url) = &options.database_url {
            cmd.args(["--database-url", url]);
        }
        if let Some(url) = &options.jwks_url {
            cmd.args(["--jwks-url", url]);
        }
        cmd.args(&options.extra_args);
        cmd.envs(options.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn sop-server");

        // A thread copies stderr into `logs` and reports the "listening on" address once.
        let logs = Arc::new(Mutex::new(String::new()));
        let (addr_tx, addr_rx) = tokio::sync::oneshot::channel::<String>();
        let stderr = child.stderr.take().expect("piped stderr");
        let thread_logs = Arc::clone(&logs);
        std::thread::spawn(move || {
            let mut addr_tx = Some(addr_tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let addr = rest
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    if let Some(tx) = addr_tx.take() {
                        let _ = tx.send(addr);
                    }
                }
                let mut logs = thread_logs.lock().expect("logs lock");
                logs.push_str(&line);
                logs.push('\n');
            }
        });

        let mut server = Self {
            child: Some(child),
            base_url: String::new(),
            data_dir: data_dir.to_path_buf(),
            logs,
            client: reqwest::Client::new(),
        };
        match tokio::time::timeout(START_TIMEOUT, addr_rx).await {
            Ok(Ok(addr)) => server.base_url = addr,
            _ => {
                server.kill();
                panic!("sop-server did not start; log:\n{}", server.logs());
            }
        }
        let health = server.get("/health").await;
        assert_eq!(health.status, 200, "health after start: {health:?}");
        server
    }

    /// The full URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Everything the server has logged so far.
    pub fn logs(&self) -> String {
        self.logs.lock().expect("logs lock").clone()
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Reply {
        reply(self.client.get(self.url(path)).send().await.expect("GET")).await
    }

    /// `POST path` with an optional bearer token and JSON body.
    pub async fn post(&self, path: &str, token: Option<&str>, body: Option<&str>) -> Reply {
        self.post_with(path, token, body, &[]).await
    }

    /// `POST path` with an optional bearer token, JSON body and extra headers.
    pub async fn post_with(
        &self,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = self.client.post(self.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        reply(req.send().await.expect("POST")).await
    }

    /// The process id (for signals).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("running")
    }

    /// Sends SIGTERM and waits (at most 10 s) for the process to exit; returns its status and
    /// how long it took.
    pub fn terminate(mut self) -> (ExitStatus, Duration) {
        let mut child = self.child.take().expect("running");
        let started = Instant::now();
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return (status, started.elapsed());
            }
            if started.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "sop-server did not exit within 10 s of SIGTERM; log:\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A fresh PostgreSQL database for one test, dropped (best effort) when this value is dropped.
/// Drop it after any server using it (declare it first).
pub struct TestPg {
    /// URL of the new database.
    pub url: String,
    admin_url: String,
    name: String,
}

impl TestPg {
    /// Creates `sop_test_<random>` through the admin connection. Panics if PostgreSQL is not
    /// reachable: these tests must not pass by skipping.
    pub async fn create() -> Self {
        let admin_url = std::env::var("SOP_TEST_DATABASE_URL")
            .unwrap_or_else(|_| DEFAULT_PG_ADMIN_URL.to_owned());
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| {
                panic!("PostgreSQL is required (SOP_TEST_DATABASE_URL={admin_url}): {e}")
            });
        let name = format!("sop_test_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("CREATE DATABASE");
        admin.close().await.expect("close admin connection");
        let url = with_database(&admin_url, &name);
        Self {
            url,
            admin_url,
            name,
        }
    }

    /// A connection to the test database.
    pub async fn connect(&self) -> sqlx::PgConnection {
        sqlx::PgConnection::connect(&self.url)
            .await
            .expect("connect to test database")
    }
}

impl Drop for TestPg {
    fn drop(&mut self) {
        // Drop may run inside a runtime, which must not be blocked on; a thread with its own
        // runtime does the async work.
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let cleanup = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url).await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .execute(&mut admin)
                        .await;
                    let _ = admin.close().await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// `url` with its database name replaced by `name` (query parameters kept).
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let host_and_path = &base[after_scheme..];
    let prefix = match host_and_path.find('/') {
        Some(i) => &base[..after_scheme + i],
        None => base,
    };
    match query {
        Some(q) => format!("{prefix}/{name}?{q}"),
        None => format!("{prefix}/{name}"),
    }
}

/// An in-process application: state over a migrated SQLite database in a temporary directory
/// and an in-memory signing key. Keep the `TempDir` alive as long as the state.
pub async fn in_process() -> (AppState, LocalKey, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::connect(&DatabaseConfig::Sqlite {
        path: dir.path().join("sop.db"),
    })
    .await
    .expect("sqlite");
    db.migrate().await.expect("migrate");
    let key = LocalKey::generate().expect("key");
    let auth = Authenticator::local(&key).expect("authenticator");
    let settings =
        sop_server::state::Settings::new(dir.path().to_path_buf(), "http://127.0.0.1:0".to_owned());
    (AppState::new(db, auth, settings), key, dir)
}

#[test]
fn database_name_is_replaced() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(
        with_database("postgres://u:p@h/db?sslmode=disable", "x"),
        "postgres://u:p@h/x?sslmode=disable"
    );
    assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
}

/// A real S3-compatible server for the blob store tests: `moto_server` (PyPI `moto[server]`,
/// installed by `.ci/run`) on a free loopback port, with one bucket. Stopped when dropped.
/// Panics with a clear message when `moto_server` is not installed: these tests never skip.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    pub bucket: String,
}

impl Moto {
    /// Starts the server and creates the bucket `bucket`.
    pub async fn start(bucket: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start moto_server ({e}): install it with `pip install 'moto[server]'` \
                     (.ci/run does); the S3 tests need a real S3-compatible server"
                )
            });
        let moto = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket: bucket.to_owned(),
        };
        let client = reqwest::Client::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            // Creating the bucket doubles as the readiness probe.
            match client
                .put(format!("{}/{bucket}", moto.endpoint))
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => break,
                _ if std::time::Instant::now() > deadline => {
                    panic!("moto_server did not answer on {}", moto.endpoint)
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        moto
    }

    /// The blob store settings for this server.
    pub fn config(&self) -> sop_server::blobs::S3Config {
        sop_server::blobs::S3Config {
            bucket: self.bucket.clone(),
            endpoint: Some(self.endpoint.clone()),
            region: "us-east-1".to_owned(),
            access_key_id: Some("test".to_owned()),
            secret_access_key: Some(sop_server::config::SecretString::new("test")),
        }
    }

    /// The `SOP_S3_*` environment of a server process using this bucket.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("SOP_S3_BUCKET", self.bucket.as_str()),
            ("SOP_S3_ENDPOINT", self.endpoint.as_str()),
            ("SOP_S3_REGION", "us-east-1"),
            ("SOP_S3_ACCESS_KEY_ID", "test"),
            ("SOP_S3_SECRET_ACCESS_KEY", "test"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
