//! `sop-server`: the SOP backend (SPEC §9–§11, DESIGN §4).
//!
//! - [`config`]: command line and environment; [`run`] executes a parsed command line.
//! - [`app`] builds the HTTP application over an [`AppState`]; tests call it directly.
//! - [`router`] lists every route; [`handlers`] hold them, one module per route group.
//! - [`error`] and [`envelope`]: the SPEC §10 response envelope, mapped in one place.
//! - [`extract`], [`auth`], [`lang`]: our request extractors (JSON body, bearer token, language).
//! - [`db`]: the PostgreSQL or SQLite pool and the embedded migrations.
//! - [`payments`]: the payment platform (the built-in sandbox by default); [`profiles`] and
//!   [`push`]: the profiles and push services (local tables and logs by default); [`outbound`]:
//!   their shared HTTP plumbing; [`outbox`]: the background worker that delivers outbound calls,
//!   started by `serve`.
//! - [`hints`] and [`live`]: "pull now" hints to connected devices, across instances on
//!   PostgreSQL (the relay is started by `serve`).
//! - [`sync`]: the `/sync/v1` push, pull and exchange, and the background compaction of
//!   content documents started by `serve`.
//! - [`telemetry`] sets up logging.

pub mod api;
pub mod auth;
pub mod blobs;
pub mod config;
pub mod db;
pub mod detect;
pub mod envelope;
pub mod error;
pub mod extract;
pub mod handlers;
pub mod hints;
pub mod lang;
pub mod live;
pub mod metrics;
pub mod openapi;
pub mod outbound;
pub mod outbox;
pub mod payments;
pub mod profiles;
pub mod push;
pub mod report;
pub mod router;
pub mod seed;
pub mod state;
pub mod store;
pub mod sync;
pub mod telemetry;
pub mod uploads;
pub mod views;

pub use router::app;
pub use state::AppState;

use anyhow::Context as _;
use auth::{Authenticator, LocalKey};
use config::{
    AuditCommand, Cli, Command, DatabaseConfig, GlobalArgs, ServeArgs, ServeConfig, TokenArgs,
};
use db::Db;
use std::future::Future;
use std::path::Path;
use std::time::Duration;
use tokio::net::TcpListener;

/// After a shutdown signal, in-flight requests get this long to finish before the server exits.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// At start-up, how long to wait for the live-hint relay to listen before serving anyway.
const RELAY_START_TIMEOUT: Duration = Duration::from_secs(5);

/// On shutdown, how long live connections get to finish their closing handshake.
const LIVE_CLOSE_GRACE: Duration = Duration::from_secs(3);

/// Runs a parsed command line to completion.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    telemetry::init(cli.global.log_format);
    match cli.command {
        None => serve(&cli.global, &cli.serve).await,
        Some(Command::Serve(args)) => serve(&cli.global, &args).await,
        Some(Command::Migrate) => migrate(&cli.global).await,
        Some(Command::Token(args)) => token(&cli.global, &args).await,
        Some(Command::SeedDemo) => seed_demo(&cli.global).await,
        Some(Command::Openapi) => print_openapi(),
        Some(Command::Audit(args)) => match args.command {
            AuditCommand::Verify => audit_verify(&cli.global).await,
        },
    }
}

/// `sop-server serve`: connect, migrate, listen until SIGTERM or Ctrl-C.
async fn serve(global: &GlobalArgs, args: &ServeArgs) -> anyhow::Result<()> {
    let config = ServeConfig::from_cli(global, args)?;
    tracing::info!(?config, version = sop_core::VERSION, "starting sop-server");
    prepare_data_dir(&config.data_dir).await?;

    let db = connect_and_migrate(&config.database).await?;
    let auth = match &config.jwks {
        Some(jwks) => Authenticator::jwks(jwks)
            .await
            .context("cannot build the JWKS client")?,
        None => {
            let key = load_local_key(&config.data_dir).await?;
            tracing::info!(
                kid = key.kid(),
                "verifying tokens with the local signing key"
            );
            Authenticator::local(&key)?
        }
    };

    let listener = TcpListener::bind(&config.bind)
        .await
        .with_context(|| format!("cannot listen on {}", config.bind))?;
    let addr = listener.local_addr()?;
    tracing::info!("listening on http://{addr}");

    let mut settings = state::Settings::new(config.data_dir.clone(), config.public_url(addr));
    settings.limits.max_file_bytes = config.storage.max_file_bytes;
    settings.limits.max_case_bytes = config.storage.max_case_bytes;
    settings.upload_expiry = config.storage.upload_expiry();
    settings.metrics_token = config.metrics_token.clone();
    let mut state = AppState::new(db.clone(), auth, settings);
    if let Some(s3) = config.storage.s3() {
        tracing::info!(?s3, "documents and reports go to the S3 bucket");
        let staging = config.data_dir.join("blobs").join("tmp");
        state = state.with_blobs(blobs::BlobStore::s3(&s3, staging).context("cannot set up S3")?);
    }
    let state = with_platform(state, &config.platform)?;
    let outbox_worker = outbox::spawn(state.clone());
    let scheduler = handlers::scheduler::spawn(
        state.clone(),
        Duration::from_secs(config.platform.jobs_every_seconds.max(1)),
    );
    let compaction = sync::spawn_compaction(state.clone());
    let hints = state.hints.clone();
    let mut relay = hints.relay(&db, state.store.clone());
    if !relay.wait_listening(RELAY_START_TIMEOUT).await {
        tracing::warn!("live hints from other instances are not relayed yet; still trying");
    }
    // Live connections are upgraded out of the HTTP server's sight: tell them to close as soon
    // as the shutdown starts, and give them a moment once the server has stopped.
    let signal = {
        let hints = hints.clone();
        async move {
            shutdown_signal().await;
            hints.shut_down();
        }
    };
    let result = serve_until_signal(listener, app(state), signal).await;
    if !hints.sessions_closed(LIVE_CLOSE_GRACE).await {
        tracing::warn!("some live connections did not close in time");
    }
    drop(relay);
    drop(outbox_worker);
    drop(scheduler);
    drop(compaction);
    db.close().await;
    tracing::info!("stopped");
    result
}

/// Replaces the standalone stand-ins of `state` by the outside services that are configured
/// (SPEC §9), and applies the test-only clock offset.
fn with_platform(mut state: AppState, platform: &config::PlatformArgs) -> anyhow::Result<AppState> {
    use std::sync::Arc;
    let timeout = Duration::from_secs(platform.outbound_timeout_seconds.max(1));
    let service = |name, url: &config::SecretUrl, key: &Option<config::SecretString>| {
        outbound::Service::new(name, url.clone(), key.clone(), timeout)
            .with_context(|| format!("cannot build the {name} client"))
    };
    if let Some(url) = &platform.payments_url {
        let secret = platform.payments_webhook_secret.clone().context(
            "--payments-url needs --payments-webhook-secret (SOP_PAYMENTS_WEBHOOK_SECRET)",
        )?;
        let client = service("payments", url, &platform.payments_api_key)?;
        tracing::info!(%url, "payments go to the payment platform");
        state = state.with_payments(Arc::new(payments::http::HttpPlatform::new(client, secret)));
    }
    if let Some(url) = &platform.profiles_url {
        let client = service("profiles", url, &platform.profiles_api_key)?;
        tracing::info!(%url, "profiles and invoices go to the profiles service");
        state = state.with_profiles(Arc::new(profiles::HttpProfiles::new(client)));
    }
    if let Some(url) = &platform.push_url {
        let client = service("push", url, &platform.push_api_key)?;
        tracing::info!(%url, "push deliveries go to the push service");
        state = state.with_push(Arc::new(push::HttpPush::new(client)));
    }
    if platform.clock_offset_seconds != 0 {
        let offset = chrono::TimeDelta::seconds(platform.clock_offset_seconds);
        tracing::warn!(
            seconds = platform.clock_offset_seconds,
            "the clock is shifted (SOP_CLOCK_OFFSET_SECONDS, for tests only)"
        );
        state = state.with_clock(Arc::new(state::OffsetClock(offset)));
    }
    Ok(state)
}

/// Serves until `signal` resolves, then lets in-flight requests finish for at most
/// [`SHUTDOWN_GRACE`].
pub async fn serve_until_signal(
    listener: TcpListener,
    app: axum::Router,
    signal: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (signalled_tx, signalled_rx) = tokio::sync::oneshot::channel::<()>();
    let service = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = axum::serve(listener, service).with_graceful_shutdown(async move {
        signal.await;
        tracing::info!("shutdown requested; finishing in-flight requests");
        // The receiver only goes away when the server future already finished.
        let _ = signalled_tx.send(());
    });
    let deadline = async move {
        if signalled_rx.await.is_ok() {
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        result = server => result.context("server error"),
        () = deadline => {
            tracing::warn!(grace = ?SHUTDOWN_GRACE, "requests still running after the grace period; exiting");
            Ok(())
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C (SIGINT).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// `sop-server migrate`: apply pending migrations and exit.
async fn migrate(global: &GlobalArgs) -> anyhow::Result<()> {
    let db = open_database(global).await?;
    db.close().await;
    tracing::info!(backend = ?db.backend(), "migrations applied");
    Ok(())
}

/// The database of the global settings, migrated (the data directory is created for SQLite).
async fn open_database(global: &GlobalArgs) -> anyhow::Result<Db> {
    let database = DatabaseConfig::resolve(global.database_url.as_ref(), &global.data_dir)?;
    if matches!(database, DatabaseConfig::Sqlite { .. }) {
        prepare_data_dir(&global.data_dir).await?;
    }
    connect_and_migrate(&database).await
}

/// `sop-server seed-demo`: write the demo catalog (idempotent) and print its ids.
async fn seed_demo(global: &GlobalArgs) -> anyhow::Result<()> {
    let db = open_database(global).await?;
    let store = store::Store::new(db.clone());
    let demo = seed::demo();
    let report = seed::seed(&store, &demo, chrono::Utc::now()).await;
    db.close().await;
    let report = report.context("cannot write the demo catalog")?;
    print!("{}", seed::summary(&demo, &report, &global.data_dir));
    Ok(())
}

/// `sop-server openapi`: print the OpenAPI document.
fn print_openapi() -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(&openapi::document())?);
    Ok(())
}

/// `sop-server audit verify`: walk the audit chain; a broken chain is an error naming the row.
async fn audit_verify(global: &GlobalArgs) -> anyhow::Result<()> {
    let db = open_database(global).await?;
    let report = store::Store::new(db.clone()).verify_audit_chain().await;
    db.close().await;
    let report = report.context("cannot read the audit log")?;
    match report.broken_at {
        None => {
            println!("audit chain OK: {} rows checked", report.rows);
            Ok(())
        }
        Some(seq) => anyhow::bail!(
            "audit chain broken at seq {seq} ({} rows checked): the row was changed, removed or reordered",
            report.rows
        ),
    }
}

/// `sop-server token`: print a JWT signed by the local key of the data directory.
async fn token(global: &GlobalArgs, args: &TokenArgs) -> anyhow::Result<()> {
    prepare_data_dir(&global.data_dir).await?;
    let key = load_local_key(&global.data_dir).await?;
    let token = key.mint(&args.sub, args.aud, Duration::from_secs(args.ttl_seconds))?;
    println!("{token}");
    Ok(())
}

async fn connect_and_migrate(database: &DatabaseConfig) -> anyhow::Result<Db> {
    let db = Db::connect(database)
        .await
        .with_context(|| format!("cannot open the database {database:?}"))?;
    db.migrate().await.context("cannot apply migrations")?;
    Ok(db)
}

async fn prepare_data_dir(dir: &Path) -> anyhow::Result<()> {
    let owned = dir.to_path_buf();
    tokio::task::spawn_blocking(move || config::ensure_data_dir(&owned))
        .await?
        .with_context(|| format!("cannot create the data directory {}", dir.display()))
}

async fn load_local_key(dir: &Path) -> anyhow::Result<LocalKey> {
    let owned = dir.to_path_buf();
    Ok(tokio::task::spawn_blocking(move || LocalKey::load_or_create(&owned)).await??)
}
