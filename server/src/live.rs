//! `GET /sync/v1/live`: the WebSocket on which devices hear "pull now" (DESIGN §3 "Live").
//!
//! **Connecting.** The same bearer JWT as the sync API, audience `snr_usr` (patients) or
//! `snr_pro` (doctors); admins' dashboards may connect with `snr_dash`. The token goes in the
//! `Authorization: Bearer` header or, for browsers and mobile WebSocket clients that cannot set
//! headers, in the query string: `GET /sync/v1/live?access_token=<JWT>` (the header wins when
//! both are sent; the request log never contains the query string). A missing or invalid token
//! refuses the upgrade with 401, a token of another audience with 403, a request that is not a
//! WebSocket upgrade with 400 (all in the SPEC §10 envelope).
//!
//! **Messages.** The server sends nothing until something visible to the user changed (a
//! [`Signal`] naming the user, any admin-visible change for admins, or an "everyone" signal);
//! then a text message [`LiveHint`]: `{"type":"pull_now","cursor":N}`. Bursts are coalesced: at
//! most one message per [`MIN_INTERVAL`] per connection, carrying the highest cursor heard. A
//! device should pull on a hint unless its own cursor is already at or past `cursor`; it pulls
//! on (re)connecting anyway, since hints sent while it was away are not replayed. A connection
//! that falls more than [`crate::hints::LOCAL_CAPACITY`] signals behind gets one hint with the
//! latest cursor instead of the ones it missed. Messages from the client are ignored (they are
//! limited to [`MAX_CLIENT_MESSAGE`] bytes).
//!
//! **Keep-alive and closing.** The server pings every [`PING_EVERY`] and drops a connection it
//! has heard nothing from (pong or otherwise) for [`DEAD_AFTER`]. It closes with `1001` (going
//! away) on shutdown, and with [`CLOSE_TOKEN_EXPIRED`] when the token expires (at the latest
//! after [`MAX_TOKEN_LIFETIME`]): reconnect with a fresh one.

use crate::auth::{Audience, AuthError, AuthUser, Authenticator, Claims, bearer_token};
use crate::error::AppError;
use crate::hints::{Hints, Signal};
use crate::state::AppState;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use serde::Deserialize;
use sop_core::sync::wire::{Cursor, LiveHint};
use std::time::Duration;
use tokio::sync::{broadcast, watch};
use tokio::time::{Instant, sleep_until, timeout};

/// The path of the live channel.
pub const PATH: &str = "/sync/v1/live";

/// At most one hint per connection per this interval.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// How often the server pings.
pub const PING_EVERY: Duration = Duration::from_secs(30);

/// A connection silent for this long (no pong, no message) is dropped.
pub const DEAD_AFTER: Duration = Duration::from_secs(75);

/// The close code sent when the token the connection was opened with expires.
pub const CLOSE_TOKEN_EXPIRED: u16 = 4401;

/// A connection lives at most this long even if its token says otherwise.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// The largest message or frame a client may send (it has nothing to say).
pub const MAX_CLIENT_MESSAGE: usize = 4 * 1024;

/// A send that takes longer than this (a client not reading) ends the connection.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the closing handshake may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// The audiences that may connect, tried in this order.
const AUDIENCES: [Audience; 3] = [Audience::Patient, Audience::Doctor, Audience::Admin];

/// The query string of the upgrade request; unknown parameters are ignored.
#[derive(Debug, Default, Deserialize)]
struct LiveQuery {
    access_token: Option<String>,
}

/// Who is listening on a connection.
#[derive(Clone, Debug)]
struct Listener {
    user: String,
    admin: bool,
    /// When the token expires (its `exp`).
    expires_at: Instant,
}

/// `GET /sync/v1/live` ([`PATH`], routed in `router.rs`): authenticate, then upgrade.
pub async fn connect(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, AppError> {
    let listener = authenticate(&state.auth, &headers, &uri).await?;
    let upgrade = upgrade.map_err(|rejection| {
        AppError::BadRequest(format!(
            "{PATH} only accepts WebSocket upgrades ({rejection})"
        ))
    })?;
    // Subscribe before answering, so nothing published between the answer and the start of
    // the session is missed.
    let session = Session::new(&state.hints, listener);
    let counted = state.metrics.live_connection();
    Ok(upgrade
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| async move {
            session.run(socket).await;
            drop(counted);
        }))
}

/// The caller, from the `Authorization` header or else the `access_token` query parameter.
async fn authenticate(
    auth: &Authenticator,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<Listener, AppError> {
    let query = Query::<LiveQuery>::try_from_uri(uri)
        .map(|Query(q)| q)
        .unwrap_or_default();
    let token = match bearer_token(headers) {
        Ok(token) => token,
        Err(AuthError::MissingToken) => query
            .access_token
            .as_deref()
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::MissingToken)?,
        Err(e) => return Err(e.into()),
    };
    let user = verify_any_audience(auth, token).await?;
    // The signature was verified just above; only `exp` is read here.
    let claims = jsonwebtoken::dangerous::insecure_decode_claims::<Claims>(token)
        .map_err(|_| AuthError::InvalidToken)?;
    Ok(Listener {
        admin: user.audience == Audience::Admin,
        user: user.sub,
        expires_at: instant_of_unix(claims.exp),
    })
}

/// Verifies `token` for the first of [`AUDIENCES`] it was issued for.
async fn verify_any_audience(auth: &Authenticator, token: &str) -> Result<AuthUser, AppError> {
    match auth.verify_any(token, &AUDIENCES).await {
        Err(AuthError::WrongAudience { .. }) => Err(AppError::Forbidden(
            "this token is not valid for the live channel (expected audience snr_usr, snr_pro or snr_dash)"
                .to_owned(),
        )),
        result => Ok(result?),
    }
}

/// The monotonic instant of a Unix time in seconds: now if it is already past, at most
/// [`MAX_TOKEN_LIFETIME`] ahead (an `Instant` far in the future would overflow).
fn instant_of_unix(seconds: u64) -> Instant {
    let now = jsonwebtoken::get_current_timestamp();
    let left = Duration::from_secs(seconds.saturating_sub(now)).min(MAX_TOKEN_LIFETIME);
    Instant::now() + left
}

/// Why a session ends.
enum End {
    /// Close the socket with this code and reason.
    Close(u16, &'static str),
    /// The client left or cannot be reached: nothing more to send.
    Gone,
}

/// One live connection.
struct Session {
    hints: Hints,
    signals: broadcast::Receiver<Signal>,
    /// Held for the whole session: [`Hints::sessions_closed`] waits for it to be dropped.
    shutdown: watch::Receiver<bool>,
    listener: Listener,
    /// The highest cursor heard and not yet sent.
    pending: Option<u64>,
    /// The earliest time the next hint may go out.
    next_send: Instant,
}

impl Session {
    fn new(hints: &Hints, listener: Listener) -> Self {
        Self {
            hints: hints.clone(),
            signals: hints.subscribe(),
            shutdown: hints.shutdown_watch(),
            listener,
            pending: None,
            next_send: Instant::now(),
        }
    }

    async fn run(mut self, mut socket: WebSocket) {
        tracing::debug!(admin = self.listener.admin, "live connection opened");
        let end = self.serve(&mut socket).await;
        if let End::Close(code, reason) = end {
            close(&mut socket, code, reason).await;
        }
        tracing::debug!(admin = self.listener.admin, "live connection closed");
    }

    /// Relays hints until the session must end.
    async fn serve(&mut self, socket: &mut WebSocket) -> End {
        if *self.shutdown.borrow_and_update() {
            return going_away();
        }
        let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_heard = Instant::now();
        loop {
            tokio::select! {
                // Shutdown (or the hints going away) first: nothing else matters then.
                biased;
                _ = self.shutdown.changed() => return going_away(),
                () = sleep_until(self.listener.expires_at) => {
                    return End::Close(CLOSE_TOKEN_EXPIRED, "token expired");
                }
                () = sleep_until(self.next_send), if self.pending.is_some() => {
                    if !self.flush(socket).await {
                        return End::Gone;
                    }
                }
                signal = self.signals.recv() => {
                    if !self.hear(signal) {
                        return going_away();
                    }
                }
                message = socket.recv() => match message {
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return End::Gone,
                    // Pongs (and anything else) only show the client is alive.
                    Some(Ok(_)) => last_heard = Instant::now(),
                },
                _ = ping.tick() => {
                    if last_heard.elapsed() >= DEAD_AFTER {
                        tracing::debug!("live connection silent too long; dropping it");
                        return End::Gone;
                    }
                    if !send(socket, Message::Ping(Default::default())).await {
                        return End::Gone;
                    }
                }
            }
        }
    }

    /// Takes note of a broadcast signal; `false` when the broadcast is closed.
    fn hear(&mut self, signal: Result<Signal, broadcast::error::RecvError>) -> bool {
        match signal {
            Ok(signal) if signal.concerns(&self.listener.user, self.listener.admin) => {
                self.note(signal.cursor());
            }
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                // Some of the missed signals may have concerned this user: one hint with the
                // latest cursor covers them all.
                tracing::debug!(missed, "live connection lagged; sending the latest cursor");
                self.note(self.hints.latest());
            }
            Err(broadcast::error::RecvError::Closed) => return false,
        }
        true
    }

    fn note(&mut self, cursor: u64) {
        self.pending = Some(self.pending.map_or(cursor, |p| p.max(cursor)));
    }

    /// Sends the pending hint; `false` when the client cannot be reached.
    async fn flush(&mut self, socket: &mut WebSocket) -> bool {
        let Some(cursor) = self.pending.take() else {
            return true;
        };
        self.next_send = Instant::now() + MIN_INTERVAL;
        let hint = LiveHint {
            cursor: Cursor(cursor),
        };
        match serde_json::to_string(&hint) {
            Ok(json) => send(socket, Message::Text(json.into())).await,
            Err(e) => {
                // A struct of one number always serializes; never end the session over it.
                tracing::error!(error = %e, "cannot encode a live hint");
                true
            }
        }
    }
}

fn going_away() -> End {
    End::Close(close_code::AWAY, "server shutting down")
}

/// Sends `message`; `false` when the client cannot be reached or does not read in time.
async fn send(socket: &mut WebSocket, message: Message) -> bool {
    matches!(
        timeout(SEND_TIMEOUT, socket.send(message)).await,
        Ok(Ok(()))
    )
}

/// The closing handshake: our close frame, then the client's (bounded by [`CLOSE_TIMEOUT`]).
async fn close(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = timeout(CLOSE_TIMEOUT, async {
        if socket.send(Message::Close(Some(frame))).await.is_err() {
            return;
        }
        while let Some(Ok(message)) = socket.recv().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}
