//! Command line and environment configuration (SPEC §11).
//!
//! Every setting is a flag with an environment fallback and a working default, so a bare
//! `sop-server` starts a standalone server (SQLite and a local signing key under `./sop-data`).
//! `--data-dir`, `--database-url` and `--log-format` are global: every subcommand accepts them.
//!
//! Anything that may carry a credential (database and JWKS URLs) is a [`SecretUrl`], whose `Debug`
//! and `Display` hide passwords, so configuration can be logged as a whole. Adding a setting: add
//! the flag here (with `env = "SOP_..."`), resolve it in [`ServeConfig::from_cli`] if the server
//! needs it, and keep `Debug` free of secrets.

use crate::auth::Audience;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// The `sop-server` command line.
#[derive(Debug, Parser)]
#[command(
    name = "sop-server",
    version,
    about = "SOP second-opinion service backend",
    // `sop-server --bind ...` means `sop-server serve --bind ...`; mixing both forms is an error.
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// Settings shared by every subcommand.
    #[command(flatten)]
    pub global: GlobalArgs,

    /// Server settings when no subcommand is given (`serve` is the default).
    #[command(flatten)]
    pub serve: ServeArgs,

    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Settings every subcommand accepts.
#[derive(Clone, Debug, Args)]
pub struct GlobalArgs {
    /// Directory for the SQLite database, the local signing key and blobs; created on first start.
    #[arg(
        long,
        env = "SOP_DATA_DIR",
        default_value = "./sop-data",
        global = true
    )]
    pub data_dir: PathBuf,

    /// Database URL: `postgres://...` for PostgreSQL, `sqlite:...` for a specific SQLite file.
    /// When unset, a SQLite database in the data directory is used.
    #[arg(long, env = "SOP_DATABASE_URL", global = true)]
    pub database_url: Option<SecretUrl>,

    /// Log output format.
    #[arg(long, env = "SOP_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human, global = true)]
    pub log_format: LogFormat,
}

/// Settings of the HTTP server.
#[derive(Clone, Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (`host:port`; port 0 picks a free port).
    #[arg(long, env = "SOP_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,

    /// JWKS URL of the identity service. When unset, tokens are verified with the local signing
    /// key in the data directory (the one `sop-server token` signs with).
    #[arg(long, env = "SOP_JWKS_URL")]
    pub jwks_url: Option<SecretUrl>,

    /// Minimum number of seconds between two JWKS fetches triggered by tokens with an unknown
    /// key id (protects the identity service from floods of forged tokens).
    #[arg(long, env = "SOP_JWKS_MIN_REFETCH_SECONDS", default_value_t = 30)]
    pub jwks_min_refetch_seconds: u64,

    /// Bearer token `GET /metrics` requires (Prometheus's `authorization` setting); unset, the
    /// metrics are open like `/health` (they carry no health information).
    #[arg(long, env = "SOP_METRICS_TOKEN")]
    pub metrics_token: Option<SecretString>,

    /// The outside platform services (payments, profiles, push); each defaults to its embedded
    /// standalone stand-in when its URL is unset.
    #[command(flatten)]
    pub platform: PlatformArgs,

    /// Where documents and reports are stored, and the upload limits.
    #[command(flatten)]
    pub storage: StorageArgs,
}

/// Blob storage (a directory under the data directory unless an S3 bucket is configured) and
/// upload limits. See docs/adr/0006-blobs-and-report.md.
#[derive(Clone, Debug, Default, Args)]
pub struct StorageArgs {
    /// S3 bucket for documents and reports. When unset, they are files under `<data-dir>/blobs`.
    #[arg(long, env = "SOP_S3_BUCKET")]
    pub s3_bucket: Option<String>,

    /// Endpoint of an S3-compatible server (`http://` allowed, e.g. a store on loopback);
    /// AWS when unset.
    #[arg(long, env = "SOP_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,

    /// Region of the bucket.
    #[arg(long, env = "SOP_S3_REGION", default_value = "us-east-1")]
    pub s3_region: String,

    /// Access key id for the bucket.
    #[arg(long, env = "SOP_S3_ACCESS_KEY_ID")]
    pub s3_access_key_id: Option<String>,

    /// Secret access key for the bucket.
    #[arg(long, env = "SOP_S3_SECRET_ACCESS_KEY")]
    pub s3_secret_access_key: Option<SecretString>,

    /// Largest document accepted, in bytes (default 50 MiB).
    #[arg(long, env = "SOP_MAX_FILE_BYTES", default_value_t = 50 * 1024 * 1024)]
    pub max_file_bytes: i64,

    /// Largest total of a case's documents, in bytes (default 500 MiB).
    #[arg(long, env = "SOP_MAX_CASE_BYTES", default_value_t = 500 * 1024 * 1024)]
    pub max_case_bytes: i64,

    /// Hours an incomplete resumable upload is kept without receiving a chunk before its
    /// partial data is deleted (default 168, 7 days; at least 1).
    #[arg(long, env = "SOP_UPLOAD_EXPIRY_HOURS", default_value_t = 7 * 24)]
    pub upload_expiry_hours: u64,
}

impl StorageArgs {
    /// How long an incomplete upload is kept without receiving a chunk.
    pub fn upload_expiry(&self) -> Duration {
        Duration::from_secs(self.upload_expiry_hours.clamp(1, u64::MAX / 3600) * 3600)
    }

    /// The S3 settings, when a bucket is configured.
    pub fn s3(&self) -> Option<crate::blobs::S3Config> {
        self.s3_bucket
            .as_ref()
            .map(|bucket| crate::blobs::S3Config {
                bucket: bucket.clone(),
                endpoint: self.s3_endpoint.clone(),
                region: self.s3_region.clone(),
                access_key_id: self.s3_access_key_id.clone(),
                secret_access_key: self.s3_secret_access_key.clone(),
            })
    }
}

/// Where the platform's payment hub, profiles service and push service are (SPEC §9), and the
/// timing of the server's own jobs. See `docs/adr/0007-platform-clients.md` for the requests.
#[derive(Clone, Debug, Default, Args)]
pub struct PlatformArgs {
    /// Base URL of the payment platform. When unset, the built-in sandbox is the platform.
    #[arg(long, env = "SOP_PAYMENTS_URL")]
    pub payments_url: Option<SecretUrl>,

    /// API key sent as `Authorization: Bearer` to the payment platform.
    #[arg(long, env = "SOP_PAYMENTS_API_KEY")]
    pub payments_api_key: Option<SecretString>,

    /// Secret the payment platform signs its callbacks with (HMAC-SHA256); required with
    /// `--payments-url`.
    #[arg(long, env = "SOP_PAYMENTS_WEBHOOK_SECRET")]
    pub payments_webhook_secret: Option<SecretString>,

    /// Base URL of the profiles (persistence proxy) service. When unset, the local tables answer
    /// and invoices are only logged.
    #[arg(long, env = "SOP_PROFILES_URL")]
    pub profiles_url: Option<SecretUrl>,

    /// API key sent as `Authorization: Bearer` to the profiles service.
    #[arg(long, env = "SOP_PROFILES_API_KEY")]
    pub profiles_api_key: Option<SecretString>,

    /// Base URL of the push notification service. When unset, push deliveries are logged.
    #[arg(long, env = "SOP_PUSH_URL")]
    pub push_url: Option<SecretUrl>,

    /// API key sent as `Authorization: Bearer` to the push service.
    #[arg(long, env = "SOP_PUSH_API_KEY")]
    pub push_api_key: Option<SecretString>,

    /// How long one call to an outside service may take before it counts as failed (retried by
    /// the outbox).
    #[arg(long, env = "SOP_OUTBOUND_TIMEOUT_SECONDS", default_value_t = 10)]
    pub outbound_timeout_seconds: u64,

    /// How often the server runs its scheduled jobs (draft reminders, overdue alerts).
    #[arg(long, env = "SOP_JOBS_EVERY_SECONDS", default_value_t = 600)]
    pub jobs_every_seconds: u64,

    /// FOR TESTS ONLY: shifts the server's clock by this many seconds (may be negative), so
    /// tests can make drafts 24 h old without waiting. Never set it in production.
    #[arg(
        long,
        env = "SOP_CLOCK_OFFSET_SECONDS",
        default_value_t = 0,
        hide = true,
        allow_hyphen_values = true
    )]
    pub clock_offset_seconds: i64,
}

/// A secret value (API key, webhook secret): `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that sends or uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl FromStr for SecretString {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::new(s))
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The subcommands.
#[derive(Clone, Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (the default).
    Serve(Box<ServeArgs>),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print a JWT signed by the local key in the data directory, for curl and tests.
    Token(TokenArgs),
    /// Create the demo catalog (review types, disease categories, coordinator mappings, doctors);
    /// running it again changes nothing. Prints the ids and example token commands.
    SeedDemo,
    /// Print the OpenAPI 3.1 document of the HTTP API (the one `GET /openapi.json` serves).
    Openapi,
    /// Audit log tools.
    Audit(AuditArgs),
}

/// Arguments of `sop-server audit`.
#[derive(Clone, Debug, Args)]
pub struct AuditArgs {
    /// What to do with the audit log.
    #[command(subcommand)]
    pub command: AuditCommand,
}

/// The `audit` subcommands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain of the whole audit log; exits 1 naming the first broken row.
    Verify,
}

/// Arguments of `sop-server token`.
#[derive(Clone, Debug, Args)]
pub struct TokenArgs {
    /// The user id the token is for (`sub` claim).
    #[arg(long)]
    pub sub: String,

    /// The route group the token opens (`aud` claim).
    #[arg(long, value_enum)]
    pub aud: Audience,

    /// Lifetime of the token in seconds.
    #[arg(long, default_value_t = 86_400)]
    pub ttl_seconds: u64,
}

/// How log lines are written (always to stderr, so `token` output stays clean).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// A URL that may contain credentials. `Debug` and `Display` show it with passwords and
/// secret-looking query parameters replaced by `***`; [`SecretUrl::expose`] gives the real value.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(String);

impl SecretUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL with its credentials, for the one place that connects with it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl FromStr for SecretUrl {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::new(s))
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", redact_url(&self.0))
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

/// Replaces the password of `scheme://user:password@host` and the values of query parameters
/// whose name suggests a secret (`password`, `sslpassword`, `token`, `secret`, `key`) with `***`.
fn redact_url(url: &str) -> String {
    let (before_query, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut out = String::with_capacity(url.len());
    match before_query.split_once("://") {
        Some((scheme, rest)) => {
            out.push_str(scheme);
            out.push_str("://");
            // The authority ends at the first '/'; userinfo ends at its last '@'.
            let (authority, path) = match rest.find('/') {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            match authority.rsplit_once('@') {
                Some((userinfo, host)) => {
                    match userinfo.split_once(':') {
                        Some((user, _password)) => {
                            out.push_str(user);
                            out.push_str(":***");
                        }
                        None => out.push_str(userinfo),
                    }
                    out.push('@');
                    out.push_str(host);
                }
                None => out.push_str(authority),
            }
            out.push_str(path);
        }
        None => out.push_str(before_query),
    }
    if let Some(query) = query {
        out.push('?');
        let redacted: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) if is_secret_param(name) => format!("{name}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        out.push_str(&redacted.join("&"));
    }
    out
}

fn is_secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["password", "token", "secret", "key"]
        .iter()
        .any(|s| name.contains(s))
}

/// Where the data lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseConfig {
    /// A SQLite file (created if missing), the standalone default.
    Sqlite {
        /// Path of the database file.
        path: PathBuf,
    },
    /// A SQLite database given by a `sqlite:` URL (options in the URL are honoured).
    SqliteUrl(SecretUrl),
    /// A PostgreSQL server.
    Postgres(SecretUrl),
}

/// The name of the SQLite file in the data directory when no database URL is given.
pub const SQLITE_FILE_NAME: &str = "sop.db";

impl DatabaseConfig {
    /// Chooses the backend from the optional URL: none → `<data_dir>/sop.db`, `postgres://` or
    /// `postgresql://` → PostgreSQL, `sqlite:` → SQLite.
    pub fn resolve(url: Option<&SecretUrl>, data_dir: &Path) -> Result<Self, ConfigError> {
        let Some(url) = url else {
            return Ok(Self::Sqlite {
                path: data_dir.join(SQLITE_FILE_NAME),
            });
        };
        let raw = url.expose();
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            Ok(Self::Postgres(url.clone()))
        } else if raw.starts_with("sqlite:") {
            Ok(Self::SqliteUrl(url.clone()))
        } else {
            Err(ConfigError::UnsupportedDatabaseUrl(url.clone()))
        }
    }
}

/// Invalid configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The database URL has a scheme we do not speak.
    #[error("unsupported database URL {0} (expected postgres://... or sqlite:...)")]
    UnsupportedDatabaseUrl(SecretUrl),
}

/// Where JWT verification keys come from when an identity service is configured.
#[derive(Clone, Debug)]
pub struct JwksConfig {
    /// The JWKS document URL.
    pub url: SecretUrl,
    /// Minimum time between two fetches (see [`ServeArgs::jwks_min_refetch_seconds`]).
    pub min_refetch_interval: Duration,
}

/// Everything `serve` needs, resolved from the command line and environment.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// Address to listen on.
    pub bind: String,
    /// The data directory.
    pub data_dir: PathBuf,
    /// The database.
    pub database: DatabaseConfig,
    /// The identity service, if any; `None` means the local signing key.
    pub jwks: Option<JwksConfig>,
    /// The outside platform services and job timing.
    pub platform: PlatformArgs,
    /// Blob storage and upload limits.
    pub storage: StorageArgs,
    /// The bearer token of `GET /metrics`, if any.
    pub metrics_token: Option<SecretString>,
}

impl ServeConfig {
    /// The base URL clients reach this server at: `SOP_PUBLIC_URL` if set, else the address the
    /// server actually bound (so port 0 resolves to the real port) over plain HTTP.
    pub fn public_url(&self, bound: std::net::SocketAddr) -> String {
        match std::env::var("SOP_PUBLIC_URL") {
            Ok(url) if !url.trim().is_empty() => url.trim().trim_end_matches('/').to_owned(),
            _ => format!("http://{bound}"),
        }
    }

    /// Resolves the configuration of `serve` from the global and server arguments.
    pub fn from_cli(global: &GlobalArgs, serve: &ServeArgs) -> Result<Self, ConfigError> {
        Ok(Self {
            bind: serve.bind.clone(),
            data_dir: global.data_dir.clone(),
            database: DatabaseConfig::resolve(global.database_url.as_ref(), &global.data_dir)?,
            jwks: serve.jwks_url.clone().map(|url| JwksConfig {
                url,
                min_refetch_interval: Duration::from_secs(serve.jwks_min_refetch_seconds),
            }),
            platform: serve.platform.clone(),
            storage: serve.storage.clone(),
            metrics_token: serve.metrics_token.clone(),
        })
    }
}

/// Creates the data directory (and parents) if missing. On Unix a new directory is private to
/// the server's user (0700): it holds the signing key and, with SQLite, all case data.
pub fn ensure_data_dir(path: &Path) -> std::io::Result<()> {
    if path.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(path)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a failing test should panic loudly
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn debug_redacts_database_password() {
        let url = SecretUrl::new("postgres://sop:hunter2@db.example:5432/sop?sslmode=require");
        let shown = format!("{url:?} {url}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("postgres://sop:***@db.example:5432/sop?sslmode=require"));
    }

    #[test]
    fn debug_redacts_secret_query_parameters() {
        let url = SecretUrl::new("postgres://db/sop?user=a&password=hunter2&sslmode=disable");
        let shown = url.to_string();
        assert_eq!(
            shown,
            "postgres://db/sop?user=a&password=***&sslmode=disable"
        );
    }

    #[test]
    fn debug_keeps_urls_without_credentials() {
        for raw in [
            "postgres://postgres@127.0.0.1:5432/test",
            "sqlite:///tmp/x.db",
            "https://idp.example/.well-known/jwks.json",
        ] {
            assert_eq!(SecretUrl::new(raw).to_string(), raw);
        }
    }

    #[test]
    fn serve_config_debug_hides_credentials() {
        let cli = Cli::parse_from([
            "sop-server",
            "--database-url",
            "postgres://u:hunter2@h/db",
            "--jwks-url",
            "https://a:b-secret@idp/jwks",
        ]);
        let config = ServeConfig::from_cli(&cli.global, &cli.serve).expect("valid config");
        let shown = format!("{config:?} {cli:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("b-secret"),
            "{shown}"
        );
    }

    #[test]
    fn platform_secrets_are_hidden_and_defaults_are_standalone() {
        let cli = Cli::parse_from([
            "sop-server",
            "--payments-url",
            "https://pay.example",
            "--payments-api-key",
            "pk-hunter2",
            "--payments-webhook-secret",
            "whsec-hunter3",
            "--clock-offset-seconds",
            "-90000",
        ]);
        let config = ServeConfig::from_cli(&cli.global, &cli.serve).expect("valid config");
        let shown = format!("{config:?} {cli:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("hunter3"),
            "{shown}"
        );
        assert_eq!(config.platform.clock_offset_seconds, -90_000);
        let bare = Cli::parse_from(["sop-server"]);
        assert!(bare.serve.platform.payments_url.is_none());
        assert_eq!(bare.serve.platform.jobs_every_seconds, 600);
        assert_eq!(bare.serve.platform.clock_offset_seconds, 0);
    }

    #[test]
    fn upload_expiry_defaults_to_seven_days_and_is_at_least_an_hour() {
        let bare = Cli::parse_from(["sop-server"]);
        assert_eq!(
            bare.serve.storage.upload_expiry(),
            Duration::from_secs(7 * 24 * 3600)
        );
        let set = Cli::parse_from(["sop-server", "--upload-expiry-hours", "36"]);
        assert_eq!(
            set.serve.storage.upload_expiry(),
            Duration::from_secs(36 * 3600)
        );
        let zero = Cli::parse_from(["sop-server", "--upload-expiry-hours", "0"]);
        assert_eq!(
            zero.serve.storage.upload_expiry(),
            Duration::from_secs(3600)
        );
    }

    #[test]
    fn database_backend_follows_url_scheme() {
        let dir = Path::new("/data");
        assert_eq!(
            DatabaseConfig::resolve(None, dir).expect("default"),
            DatabaseConfig::Sqlite {
                path: dir.join("sop.db")
            }
        );
        let pg = SecretUrl::new("postgresql://h/db");
        assert!(matches!(
            DatabaseConfig::resolve(Some(&pg), dir),
            Ok(DatabaseConfig::Postgres(_))
        ));
        let lite = SecretUrl::new("sqlite:/tmp/a.db");
        assert!(matches!(
            DatabaseConfig::resolve(Some(&lite), dir),
            Ok(DatabaseConfig::SqliteUrl(_))
        ));
        let bad = SecretUrl::new("mysql://h/db");
        assert!(DatabaseConfig::resolve(Some(&bad), dir).is_err());
    }

    #[test]
    fn bare_command_means_serve_and_globals_work_after_subcommands() {
        let cli = Cli::parse_from(["sop-server", "--bind", "0.0.0.0:1"]);
        assert!(cli.command.is_none());
        assert_eq!(cli.serve.bind, "0.0.0.0:1");

        let cli = Cli::parse_from([
            "sop-server",
            "token",
            "--data-dir",
            "/d",
            "--database-url",
            "sqlite:/d/x.db",
            "--sub",
            "u1",
            "--aud",
            "snr_pro",
        ]);
        assert_eq!(cli.global.data_dir, Path::new("/d"));
        match cli.command {
            Some(Command::Token(t)) => {
                assert_eq!(t.sub, "u1");
                assert_eq!(t.aud, Audience::Doctor);
            }
            other => panic!("unexpected {other:?}"),
        }

        let cli = Cli::parse_from(["sop-server", "migrate", "--data-dir", "/m"]);
        assert!(matches!(cli.command, Some(Command::Migrate)));
        assert_eq!(cli.global.data_dir, Path::new("/m"));
    }

    #[test]
    fn seed_openapi_and_audit_verify_parse_with_globals() {
        let cli = Cli::parse_from(["sop-server", "seed-demo", "--data-dir", "/s"]);
        assert!(matches!(cli.command, Some(Command::SeedDemo)));
        assert_eq!(cli.global.data_dir, Path::new("/s"));

        let cli = Cli::parse_from(["sop-server", "openapi"]);
        assert!(matches!(cli.command, Some(Command::Openapi)));

        let cli = Cli::parse_from([
            "sop-server",
            "audit",
            "verify",
            "--database-url",
            "sqlite:/a/x.db",
        ]);
        match cli.command {
            Some(Command::Audit(args)) => assert_eq!(args.command, AuditCommand::Verify),
            other => panic!("unexpected {other:?}"),
        }
        assert!(cli.global.database_url.is_some());
    }
}
