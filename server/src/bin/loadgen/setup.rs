//! Everything the load runs against: a scratch PostgreSQL database, the real `sop-server`
//! process (started on a free port with a temporary data directory, stopped with SIGTERM),
//! tokens minted with `sop-server token`, the demo catalog from `sop-server seed-demo`, and a
//! small JSON client that unwraps the API envelope.

use anyhow::{Context, anyhow, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::Connection;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Environment variables of the server that must not leak from the caller's shell.
const SOP_ENV: [&str; 6] = [
    "SOP_BIND",
    "SOP_DATA_DIR",
    "SOP_DATABASE_URL",
    "SOP_JWKS_URL",
    "SOP_LOG_FORMAT",
    "SOP_JWKS_MIN_REFETCH_SECONDS",
];

/// How long the server may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A database created for this run, dropped by [`ScratchDb::drop_db`].
#[derive(Debug)]
pub struct ScratchDb {
    /// URL of the new database.
    pub url: String,
    /// Its name.
    pub name: String,
    admin_url: String,
}

impl ScratchDb {
    /// Creates `sop_loadgen_<random>` through `admin_url`.
    pub async fn create(admin_url: &str) -> anyhow::Result<Self> {
        let mut admin = sqlx::PgConnection::connect(admin_url)
            .await
            .with_context(|| format!("cannot connect to PostgreSQL at {admin_url}"))?;
        let name = format!("sop_loadgen_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .context("CREATE DATABASE")?;
        admin.close().await?;
        Ok(Self {
            url: with_database(admin_url, &name),
            name,
            admin_url: admin_url.to_owned(),
        })
    }

    /// Drops the database (closing any connection still open to it).
    pub async fn drop_db(self) -> anyhow::Result<()> {
        let mut admin = sqlx::PgConnection::connect(&self.admin_url).await?;
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut admin)
            .await
            .context("DROP DATABASE")?;
        admin.close().await?;
        Ok(())
    }
}

/// `url` with its database name replaced by `name` (query parameters kept).
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let prefix = match base[after_scheme..].find('/') {
        Some(i) => &base[..after_scheme + i],
        None => base,
    };
    match query {
        Some(q) => format!("{prefix}/{name}?{q}"),
        None => format!("{prefix}/{name}"),
    }
}

/// The `sop-server` binary: `explicit`, else the one next to this executable.
pub fn server_bin(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    let bin = match explicit {
        Some(p) => p.to_path_buf(),
        None => std::env::current_exe()
            .context("cannot locate this executable")?
            .parent()
            .ok_or_else(|| anyhow!("this executable has no directory"))?
            .join(format!("sop-server{}", std::env::consts::EXE_SUFFIX)),
    };
    if !bin.is_file() {
        bail!(
            "no sop-server binary at {} (build it with `cargo build --release -p sop-server --bins`, or pass --server-bin)",
            bin.display()
        );
    }
    Ok(bin)
}

/// A `Command` for the server binary with a clean environment.
fn command(bin: &Path) -> Command {
    let mut cmd = Command::new(bin);
    for var in SOP_ENV {
        cmd.env_remove(var);
    }
    cmd
}

/// Runs `sop-server seed-demo` against `database_url` (the demo catalog; idempotent).
pub fn seed_demo(bin: &Path, data_dir: &Path, database_url: &str) -> anyhow::Result<()> {
    let out = command(bin)
        .arg("seed-demo")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--database-url", database_url])
        .output()
        .context("run sop-server seed-demo")?;
    if !out.status.success() {
        bail!(
            "seed-demo failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Runs `sop-server token` for each subject (a few processes at a time); the JWTs in order.
pub fn mint_tokens(
    bin: &Path,
    data_dir: &Path,
    subs: &[String],
    aud: &str,
) -> anyhow::Result<Vec<String>> {
    const PARALLEL: usize = 8;
    let mut tokens = Vec::with_capacity(subs.len());
    for chunk in subs.chunks(PARALLEL) {
        let children = chunk
            .iter()
            .map(|sub| {
                command(bin)
                    .arg("token")
                    .arg("--data-dir")
                    .arg(data_dir)
                    .args(["--sub", sub, "--aud", aud])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .context("run sop-server token")
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        for child in children {
            let out = child.wait_with_output()?;
            if !out.status.success() {
                bail!(
                    "sop-server token failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            let token = String::from_utf8(out.stdout)?.trim().to_owned();
            if token.split('.').count() != 3 {
                bail!("sop-server token printed no JWT");
            }
            tokens.push(token);
        }
    }
    Ok(tokens)
}

/// The server process started for this run.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    /// Where its log (stderr) goes.
    pub log: PathBuf,
}

impl ServerProcess {
    /// Starts `sop-server serve` on a free port with `data_dir` and `database_url`, its log in
    /// `data_dir/server.log` (`RUST_LOG=rust_log`), and waits for `/health`.
    pub async fn start(
        bin: &Path,
        data_dir: &Path,
        database_url: &str,
        rust_log: &str,
    ) -> anyhow::Result<Self> {
        let log = data_dir.join("server.log");
        let stderr = File::create(&log).context("create the server log")?;
        let child = command(bin)
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--database-url", database_url, "--bind", "127.0.0.1:0"])
            .env("RUST_LOG", rust_log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .context("spawn sop-server")?;
        let mut server = Self {
            child,
            base_url: String::new(),
            log,
        };
        let started = Instant::now();
        loop {
            let text = std::fs::read_to_string(&server.log).unwrap_or_default();
            if let Some(rest) = text.split("listening on ").nth(1) {
                let addr = rest.split_whitespace().next().unwrap_or_default();
                server.base_url = if addr.starts_with("http") {
                    addr.to_owned()
                } else {
                    format!("http://{addr}")
                };
                break;
            }
            if let Some(status) = server.child.try_wait()? {
                bail!("sop-server exited with {status} before listening; log:\n{text}");
            }
            if started.elapsed() > START_TIMEOUT {
                server.stop();
                bail!("sop-server did not start within {START_TIMEOUT:?}; log:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let client = reqwest::Client::new();
        let health = client
            .get(format!("{}/health", server.base_url))
            .send()
            .await?;
        if !health.status().is_success() {
            server.stop();
            bail!("sop-server /health answered {}", health.status());
        }
        Ok(server)
    }

    /// The process id (for CPU accounting and profilers).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then SIGKILL after 10 s.
    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The API envelope (SPEC §10), as far as the load generator reads it.
#[derive(Debug, serde::Deserialize)]
struct Envelope<T> {
    status: i64,
    #[serde(default)]
    message: String,
    data: Option<T>,
}

/// A JSON client of one server.
#[derive(Clone, Debug)]
pub struct Api {
    /// The shared connection pool.
    pub client: reqwest::Client,
    /// `http://host:port`.
    pub base_url: String,
}

impl Api {
    /// A client for `base_url` keeping up to `connections` idle connections.
    pub fn new(base_url: &str, connections: usize) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(connections)
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(120))
            .build()?;
        Ok(Self {
            client,
            base_url: base_url.trim_end_matches('/').to_owned(),
        })
    }

    /// `POST path` with a JSON body and bearer token; the envelope's `data`, or an error naming
    /// the status and message.
    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        token: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        let body = serde_json::to_vec(body)?;
        let (status, bytes) = self.post_raw(path, token, None, body).await?;
        decode(path, status, &bytes)
    }

    /// `POST path` with a ready JSON body: HTTP status and response body.
    pub async fn post_raw(
        &self,
        path: &str,
        token: &str,
        device: Option<&str>,
        body: Vec<u8>,
    ) -> anyhow::Result<(u16, Vec<u8>)> {
        let mut req = self
            .client
            .post(format!("{}{path}", self.base_url))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body);
        if let Some(device) = device {
            req = req.header("x-device-id", device);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await?;
        Ok((status, bytes.to_vec()))
    }
}

/// The `data` of a success envelope, or an error naming the HTTP status and message.
pub fn decode<T: DeserializeOwned>(path: &str, status: u16, body: &[u8]) -> anyhow::Result<T> {
    let envelope: Envelope<T> = serde_json::from_slice(body).with_context(|| {
        format!(
            "{path}: HTTP {status}, not an envelope: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        )
    })?;
    match envelope.data {
        Some(data) if status == 200 && envelope.status == 1000 => Ok(data),
        _ => bail!(
            "{path}: HTTP {status}, status {}: {}",
            envelope.status,
            envelope.message
        ),
    }
}
