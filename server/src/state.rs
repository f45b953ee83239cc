//! The shared application state handed to every handler (`State<AppState>`).
//!
//! Sub-states are extracted with `FromRef` (e.g. the [`Authenticator`] used by the auth
//! extractors), so handlers ask only for what they use. Adding a service: add a field here and
//! build it in [`AppState::new`] (or with a `with_*` builder for test doubles).

use crate::auth::Authenticator;
use crate::blobs::BlobStore;
use crate::db::Db;
use crate::payments::{PaymentProvider, Sandbox};
use crate::store::Store;
use axum::extract::FromRef;
use chrono::{DateTime, Utc};
use sop_core::rules::Limits;
use std::path::PathBuf;
use std::sync::Arc;

/// Where "now" comes from; tests and jobs inject their own.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The wall clock shifted by a fixed offset: for tests of the real binary that must see drafts
/// 24 h old (`SOP_CLOCK_OFFSET_SECONDS`, hidden, for tests only).
#[derive(Debug)]
pub struct OffsetClock(pub chrono::TimeDelta);

impl Clock for OffsetClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.0
    }
}

/// Server settings the handlers consult.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The data directory (SQLite, local blobs, local keys).
    pub data_dir: PathBuf,
    /// The base URL clients reach this server at (payment links, sandbox callbacks).
    pub public_url: String,
    /// The limits the core rules enforce.
    pub limits: Limits,
    /// Pull paging, first-sync and compaction settings of `/sync/v1`.
    pub sync: crate::sync::SyncSettings,
    /// An incomplete resumable upload that receives no chunk for this long is removed
    /// ([`crate::uploads::remove_expired_uploads`]).
    pub upload_expiry: std::time::Duration,
    /// The bearer token `GET /metrics` requires; `None` leaves it open (it carries no PHI).
    pub metrics_token: Option<crate::config::SecretString>,
}

impl Settings {
    /// Standalone defaults for a data directory and a public URL.
    pub fn new(data_dir: PathBuf, public_url: String) -> Self {
        Self {
            data_dir,
            public_url,
            limits: Limits::default(),
            sync: crate::sync::SyncSettings::default(),
            upload_expiry: crate::uploads::DEFAULT_UPLOAD_EXPIRY,
            metrics_token: None,
        }
    }
}

/// Everything a request handler may need. Cheap to clone: every field is a shared handle.
#[derive(Clone, Debug, FromRef)]
pub struct AppState {
    /// The database pool.
    pub db: Db,
    /// Verifies bearer tokens.
    pub auth: Authenticator,
    /// Cases, catalog, notifications, audit log, outbox.
    pub store: Store,
    pub settings: Arc<Settings>,
    pub clock: Arc<dyn Clock>,
    /// Uploaded documents and generated reports.
    pub blobs: BlobStore,
    /// The payment platform (the built-in sandbox unless one is configured).
    pub payments: Arc<dyn PaymentProvider>,
    /// Wakes the outbox worker when new outbound calls were stored.
    pub outbox_wake: crate::outbox::Wake,
    /// Live "pull now" hints for connected devices.
    pub hints: crate::hints::Hints,
    /// People's details and invoices (the local tables unless a service is configured).
    pub profiles: Arc<dyn crate::profiles::Profiles>,
    /// Push deliveries (logged unless a service is configured).
    pub push: Arc<dyn crate::push::PushService>,
    /// Bounds the `/sync/v1` pushes applied at once.
    pub push_gate: crate::sync::push::PushGate,
    /// What `GET /metrics` reports.
    pub metrics: crate::metrics::Metrics,
}

impl AppState {
    /// A standalone state over a connected (and migrated) database: local blobs under the data
    /// directory, the sandbox payment platform, the system clock.
    pub fn new(db: Db, auth: Authenticator, settings: Settings) -> Self {
        let blobs = BlobStore::local(settings.data_dir.join("blobs"));
        let payments: Arc<dyn PaymentProvider> =
            Arc::new(Sandbox::new(&settings.data_dir, &settings.public_url));
        // On PostgreSQL, hints also reach the other instances (DESIGN §6).
        let hints = crate::hints::Hints::for_db(&db);
        // The store publishes a hint after every commit that wrote feed rows.
        let store = Store::new(db.clone()).with_hints(hints.clone());
        let push_gate = crate::sync::push::PushGate::new(&settings.sync);
        Self {
            push_gate,
            metrics: crate::metrics::Metrics::default(),
            profiles: Arc::new(crate::profiles::LocalProfiles::new(store.clone())),
            push: Arc::new(crate::push::LogPush),
            store,
            db,
            auth,
            settings: Arc::new(settings),
            clock: Arc::new(SystemClock),
            blobs,
            payments,
            outbox_wake: crate::outbox::Wake::default(),
            hints,
        }
    }

    /// Replaces the payment platform (tests).
    pub fn with_payments(mut self, payments: Arc<dyn PaymentProvider>) -> Self {
        self.payments = payments;
        self
    }

    /// Replaces the profiles service.
    pub fn with_profiles(mut self, profiles: Arc<dyn crate::profiles::Profiles>) -> Self {
        self.profiles = profiles;
        self
    }

    /// Replaces the push service.
    pub fn with_push(mut self, push: Arc<dyn crate::push::PushService>) -> Self {
        self.push = push;
        self
    }

    /// Replaces the blob store (an S3 bucket, tests).
    pub fn with_blobs(mut self, blobs: BlobStore) -> Self {
        self.blobs = blobs;
        self
    }

    /// Replaces the clock (tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// "Now" for this request.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}
