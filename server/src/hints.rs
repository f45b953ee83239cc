//! Live "pull now" hints (DESIGN §3 "Live", §6): after a transaction that added feed rows commits,
//! the writer publishes a [`Hint`] naming who should pull; connected devices of those users get a
//! small message on their live channel ([`crate::live`]). Hints carry no data, only the feed
//! position.
//!
//! - **In one process** hints travel over a broadcast channel as [`Signal`]s; every live
//!   connection subscribes and keeps what concerns its user.
//! - **Across instances** (PostgreSQL only) [`Hints::publish`] also hands the hint to a notifier
//!   task that sends `NOTIFY sop_hints, '<json>'` (bursts merged into one notification), and the
//!   [`Relay`] task started by `serve` (`LISTEN sop_hints`, reconnecting on failure) re-broadcasts
//!   other instances' hints locally. Each payload names the instance that sent it, so an instance
//!   never re-broadcasts its own hints (it already did, locally). A payload that would exceed
//!   PostgreSQL's 8000-byte limit becomes `{"cursor":N,"all":true}`: every connected user pulls.
//! - **Gaps**: notifications sent while the relay's connection was down are lost, so after every
//!   reconnection the relay reads the feed head and wakes every local connection with it
//!   ([`Signal::All`]): a device already there skips the pull, any other pulls. Nothing committed
//!   after the head was read can be missed, since the relay listens again by then.
//! - **SQLite** is one process by construction: the local broadcast is enough.
//! - **Shutdown**: [`Hints::shut_down`] tells every live connection to close cleanly;
//!   [`Hints::sessions_closed`] waits for them.
//!
//! Payloads and logs carry user ids and cursors only, never case content.

use crate::db::Db;
use crate::store::Store;
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

/// The PostgreSQL channel hints travel on between instances.
pub const CHANNEL: &str = "sop_hints";

/// PostgreSQL refuses `NOTIFY` payloads of 8000 bytes or more; stay clearly below.
pub const MAX_PAYLOAD_BYTES: usize = 7900;

/// How many signals a slow live connection may fall behind before it lags (and then gets one
/// hint with the latest cursor instead of the ones it missed).
pub const LOCAL_CAPACITY: usize = 1024;

/// The first wait before reconnecting the relay; doubled on each failure up to [`RETRY_MAX`].
const RETRY_MIN: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(10);

/// Who should pull, and up to where the feed has grown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hint {
    /// The feed position after the commit.
    pub cursor: u64,
    /// The users who may see something new.
    pub users: Vec<String>,
    /// Whether admins may see something new (they see every case).
    pub admins: bool,
}

/// What travels to the live connections of this process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signal {
    /// Something changed for the hint's users (and admins, if it says so).
    Some(Arc<Hint>),
    /// Every connected user should pull: a hint too large to name its users, or hints may have
    /// been lost while the relay was reconnecting.
    All {
        /// The feed position to report.
        cursor: u64,
    },
}

impl Signal {
    /// The feed position this signal reports.
    pub fn cursor(&self) -> u64 {
        match self {
            Signal::Some(hint) => hint.cursor,
            Signal::All { cursor } => *cursor,
        }
    }

    /// Whether a connection of `user` (an admin's when `admin`) should be told to pull.
    /// Admins are addressed as a group, patients and doctors by user id.
    pub fn concerns(&self, user: &str, admin: bool) -> bool {
        match self {
            Signal::All { .. } => true,
            Signal::Some(hint) if admin => hint.admins,
            Signal::Some(hint) => hint.users.iter().any(|u| u == user),
        }
    }
}

/// The publisher and subscription point of hints. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Hints {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    local: broadcast::Sender<Signal>,
    /// Names this process in `NOTIFY` payloads, so the relay skips its own.
    instance: Uuid,
    /// The highest cursor published or relayed so far (reported to lagging connections).
    latest: AtomicU64,
    /// To the notifier task (PostgreSQL only).
    outgoing: Option<mpsc::UnboundedSender<Hint>>,
    /// `true` once the server shuts down; every live connection holds a receiver.
    shutdown: watch::Sender<bool>,
}

impl Default for Hints {
    fn default() -> Self {
        Self::new()
    }
}

impl Hints {
    /// Hints for this process only (SQLite, tests).
    pub fn new() -> Self {
        Self::with_capacity(LOCAL_CAPACITY)
    }

    /// Hints for this process only, with a broadcast buffer of `capacity` signals (tests use a
    /// small one to make a connection lag).
    pub fn with_capacity(capacity: usize) -> Self {
        Self::build(capacity, None)
    }

    /// Hints over `db`: on PostgreSQL, published hints also go to the other instances (a
    /// notifier task is started; it ends when the last clone of these hints is dropped). Must be
    /// called inside a Tokio runtime; outside one, hints stay local (and a warning is logged).
    pub fn for_db(db: &Db) -> Self {
        let Db::Postgres(pool) = db else {
            return Self::new();
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("no async runtime: live hints will not reach other instances");
            return Self::new();
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let hints = Self::build(LOCAL_CAPACITY, Some(tx));
        runtime.spawn(notify_loop(pool.clone(), hints.inner.instance, rx));
        hints
    }

    fn build(capacity: usize, outgoing: Option<mpsc::UnboundedSender<Hint>>) -> Self {
        let (local, _) = broadcast::channel(capacity.max(1));
        let (shutdown, _) = watch::channel(false);
        Self {
            inner: Arc::new(Inner {
                local,
                instance: Uuid::new_v4(),
                latest: AtomicU64::new(0),
                outgoing,
                shutdown,
            }),
        }
    }

    /// Publishes a hint to this process's live connections and, on PostgreSQL, to the other
    /// instances. Never blocks and never fails: a hint nobody listens to is dropped.
    pub fn publish(&self, hint: Hint) {
        if let Some(outgoing) = &self.inner.outgoing {
            // Fails only once the notifier task has ended (runtime shutting down).
            let _ = outgoing.send(hint.clone());
        }
        self.broadcast(Signal::Some(Arc::new(hint)));
    }

    /// Sends `signal` to this process's live connections.
    fn broadcast(&self, signal: Signal) {
        self.inner
            .latest
            .fetch_max(signal.cursor(), Ordering::Relaxed);
        // `send` fails only when there is no subscriber, which is fine: nobody is connected.
        let _ = self.inner.local.send(signal);
    }

    /// Receives every signal broadcast in this process from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Signal> {
        self.inner.local.subscribe()
    }

    /// The highest cursor published or relayed so far (`0` before any).
    pub fn latest(&self) -> u64 {
        self.inner.latest.load(Ordering::Relaxed)
    }

    /// Watches for shutdown: the value turns `true` when live connections must close. Holding
    /// the receiver counts as an open connection for [`Hints::sessions_closed`].
    pub fn shutdown_watch(&self) -> watch::Receiver<bool> {
        self.inner.shutdown.subscribe()
    }

    /// Tells every live connection to close (the server is shutting down).
    pub fn shut_down(&self) {
        self.inner.shutdown.send_replace(true);
    }

    /// Waits until every live connection has closed, at most `timeout`; `true` if they all did.
    pub async fn sessions_closed(&self, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, self.inner.shutdown.closed())
            .await
            .is_ok()
    }

    /// Starts relaying other instances' hints into this process (`LISTEN sop_hints`); `store`
    /// (over `db`) tells the feed head after a reconnection. On SQLite there is nothing to relay
    /// and the returned relay is idle. The task stops when the relay is dropped.
    pub fn relay(&self, db: &Db, store: Store) -> Relay {
        let (listening_tx, listening) = watch::channel(false);
        let task = match db {
            Db::Postgres(pool) => Some(tokio::spawn(relay_loop(
                pool.clone(),
                store,
                self.clone(),
                listening_tx,
            ))),
            Db::Sqlite(_) => {
                listening_tx.send_replace(true);
                None
            }
        };
        Relay { task, listening }
    }
}

/// The background task relaying other instances' hints; aborted on drop.
#[derive(Debug)]
pub struct Relay {
    task: Option<JoinHandle<()>>,
    listening: watch::Receiver<bool>,
}

impl Relay {
    /// Waits until the relay listens (at most `timeout`); `true` if it does. Hints other
    /// instances send before that are not relayed.
    pub async fn wait_listening(&mut self, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, self.listening.wait_for(|listening| *listening))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// A hint as it travels between instances. `users`/`admins` are absent in the "everyone"
/// form (`all: true`).
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Payload {
    instance: Uuid,
    cursor: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    users: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    admins: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    all: bool,
}

impl Payload {
    /// The JSON sent with `NOTIFY`: the hint itself, or the "everyone" form when naming every
    /// user would exceed [`MAX_PAYLOAD_BYTES`].
    fn encode(instance: Uuid, hint: &Hint) -> String {
        let full = Payload {
            instance,
            cursor: hint.cursor,
            users: hint.users.clone(),
            admins: hint.admins,
            all: false,
        };
        match serde_json::to_string(&full) {
            Ok(json) if json.len() <= MAX_PAYLOAD_BYTES => json,
            _ => Self::everyone(instance, hint.cursor),
        }
    }

    fn everyone(instance: Uuid, cursor: u64) -> String {
        let payload = Payload {
            instance,
            cursor,
            users: Vec::new(),
            admins: false,
            all: true,
        };
        // A struct of a UUID, a number and a bool always serializes; the fallback is the same
        // JSON written by hand.
        serde_json::to_string(&payload).unwrap_or_else(|_| {
            format!(r#"{{"instance":"{instance}","cursor":{cursor},"all":true}}"#)
        })
    }

    /// The local signal for a payload another instance sent; `None` for our own or an
    /// unreadable one.
    fn decode(json: &str, own: Uuid) -> Option<Signal> {
        let payload: Payload = match serde_json::from_str(json) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "ignoring an unreadable hint notification");
                return None;
            }
        };
        if payload.instance == own {
            return None;
        }
        Some(if payload.all {
            Signal::All {
                cursor: payload.cursor,
            }
        } else {
            Signal::Some(Arc::new(Hint {
                cursor: payload.cursor,
                users: payload.users,
                admins: payload.admins,
            }))
        })
    }
}

/// Merges `next` into `into`: the highest cursor, the union of users, admins if either.
fn merge(into: &mut Hint, next: Hint) {
    into.cursor = into.cursor.max(next.cursor);
    into.admins |= next.admins;
    let mut users: BTreeSet<String> = std::mem::take(&mut into.users).into_iter().collect();
    users.extend(next.users);
    into.users = users.into_iter().collect();
}

/// Sends published hints to the other instances, one `NOTIFY` per burst. A failed `NOTIFY` is
/// retried (merged with what arrived meanwhile) until it goes through; the merged hint stays
/// small because an oversized one is sent in the "everyone" form.
async fn notify_loop(pool: PgPool, instance: Uuid, mut rx: mpsc::UnboundedReceiver<Hint>) {
    let mut retry = RETRY_MIN;
    let mut pending: Option<Hint> = None;
    loop {
        if pending.is_none() {
            match rx.recv().await {
                Some(hint) => pending = Some(hint),
                None => return, // every `Hints` is gone
            }
        }
        let Some(hint) = pending.as_mut() else {
            continue;
        };
        while let Ok(next) = rx.try_recv() {
            merge(hint, next);
        }
        let payload = Payload::encode(instance, hint);
        match sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(&payload)
            .execute(&pool)
            .await
        {
            Ok(_) => {
                pending = None;
                retry = RETRY_MIN;
            }
            Err(e) if pool.is_closed() => {
                tracing::debug!(error = %e, "database closed: no more hints to other instances");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, ?retry, "cannot send a hint to other instances; retrying");
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(RETRY_MAX);
            }
        }
    }
}

/// `LISTEN sop_hints` on a connection of its own (not one of the request pool's), relaying what
/// other instances send. Reconnects with backoff; after every reconnection every local
/// connection is told to pull, because notifications sent meanwhile are lost.
async fn relay_loop(pool: PgPool, store: Store, hints: Hints, listening: watch::Sender<bool>) {
    // A one-connection pool without lifetime limits: the listening connection stays open.
    let own_pool = PgPoolOptions::new()
        .max_connections(1)
        .max_lifetime(None)
        .idle_timeout(None)
        .connect_lazy_with((*pool.connect_options()).clone());
    let mut retry = RETRY_MIN;
    let mut first = true;
    loop {
        match listen(&own_pool).await {
            Ok(mut listener) => {
                retry = RETRY_MIN;
                listening.send_replace(true);
                if !first {
                    tracing::info!("hint relay listening again");
                    wake_everyone(&store, &hints).await;
                }
                first = false;
                let error = relay_notifications(&mut listener, &store, &hints).await;
                tracing::warn!(error = %error, "hint relay lost its connection; reconnecting");
            }
            Err(e) => {
                tracing::warn!(error = %e, ?retry, "hint relay cannot listen; retrying");
            }
        }
        listening.send_replace(false);
        tokio::time::sleep(retry).await;
        retry = (retry * 2).min(RETRY_MAX);
    }
}

async fn listen(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Relays notifications until the listener fails. A connection the listener re-established by
/// itself (`Ok(None)`) may have missed notifications: every local connection is told to pull.
async fn relay_notifications(
    listener: &mut PgListener,
    store: &Store,
    hints: &Hints,
) -> sqlx::Error {
    let own = hints.inner.instance;
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => {
                if let Some(signal) = Payload::decode(notification.payload(), own) {
                    hints.broadcast(signal);
                }
            }
            Ok(None) => {
                tracing::info!("hint relay reconnected");
                wake_everyone(store, hints).await;
            }
            Err(e) => return e,
        }
    }
}

/// Tells every local connection to pull up to the feed head (once the relay listens again).
/// Without the head (the database failing again), the highest cursor this instance knows of.
async fn wake_everyone(store: &Store, hints: &Hints) {
    let head = match store.feed_head().await {
        Ok(head) => u64::try_from(head).unwrap_or_default(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the feed head after reconnecting");
            0
        }
    };
    hints.broadcast(Signal::All {
        cursor: head.max(hints.latest()),
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a failing test should panic loudly
mod tests {
    use super::*;

    fn hint(cursor: u64, users: &[&str], admins: bool) -> Hint {
        Hint {
            cursor,
            users: users.iter().map(|u| (*u).to_owned()).collect(),
            admins,
        }
    }

    #[test]
    fn signals_concern_their_users_or_admins_or_everyone() {
        let some = Signal::Some(Arc::new(hint(3, &["P1", "EMP1"], false)));
        assert!(some.concerns("P1", false));
        assert!(some.concerns("EMP1", false));
        assert!(!some.concerns("P2", false));
        assert!(
            !some.concerns("P1", true),
            "admins are addressed as a group"
        );
        let admins = Signal::Some(Arc::new(hint(4, &[], true)));
        assert!(admins.concerns("A1", true));
        assert!(!admins.concerns("P1", false));
        let all = Signal::All { cursor: 5 };
        assert!(all.concerns("P2", false) && all.concerns("A1", true));
        assert_eq!((some.cursor(), all.cursor()), (3, 5));
    }

    #[test]
    fn payload_round_trip_and_own_hints_are_skipped() {
        let me = Uuid::new_v4();
        let other = Uuid::new_v4();
        let json = Payload::encode(other, &hint(7, &["P1"], true));
        assert_eq!(
            Payload::decode(&json, me),
            Some(Signal::Some(Arc::new(hint(7, &["P1"], true))))
        );
        assert_eq!(Payload::decode(&json, other), None);
        assert_eq!(Payload::decode("not json", me), None);
    }

    #[test]
    fn oversized_payload_becomes_everyone() {
        let users: Vec<String> = (0..2000).map(|i| format!("user-{i:06}")).collect();
        let big = Hint {
            cursor: 42,
            users,
            admins: false,
        };
        let other = Uuid::new_v4();
        let json = Payload::encode(other, &big);
        assert!(json.len() < 200, "{json}");
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["cursor"], 42);
        assert_eq!(value["all"], true);
        assert_eq!(
            Payload::decode(&json, Uuid::new_v4()),
            Some(Signal::All { cursor: 42 })
        );
    }

    #[test]
    fn bursts_merge_into_one_hint() {
        let mut merged = hint(5, &["P2", "P1"], false);
        merge(&mut merged, hint(3, &["P1", "EMP1"], true));
        assert_eq!(merged, hint(5, &["EMP1", "P1", "P2"], true));
    }

    #[tokio::test]
    async fn local_publish_reaches_subscribers_and_tracks_the_latest_cursor() {
        let hints = Hints::new();
        let mut rx = hints.subscribe();
        hints.publish(hint(9, &["P1"], false));
        hints.publish(hint(4, &["P2"], false));
        assert_eq!(rx.recv().await.unwrap().cursor(), 9);
        assert_eq!(rx.recv().await.unwrap().cursor(), 4);
        assert_eq!(hints.latest(), 9);
    }

    #[tokio::test]
    async fn shutdown_waits_for_sessions() {
        let hints = Hints::new();
        assert!(hints.sessions_closed(Duration::from_millis(10)).await);
        let mut session = hints.shutdown_watch();
        assert!(!hints.sessions_closed(Duration::from_millis(10)).await);
        hints.shut_down();
        session.changed().await.unwrap();
        assert!(*session.borrow());
        drop(session);
        assert!(hints.sessions_closed(Duration::from_millis(10)).await);
    }
}
