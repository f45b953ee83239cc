//! Live hints: a background thread holding the WebSocket `/sync/v1/live` open (token in the
//! query string, as mobile WebSocket clients send it) and calling the listener's `sync_hint` on
//! every `pull_now` message. It reconnects with growing delays (1 s doubling to 60 s) until
//! stopped; hints sent while disconnected are not replayed, so the app should sync on reconnect
//! anyway (the listener gets a hint on every successful connection for that reason).

use super::error::{DeviceError, Result};
use super::net::Endpoint;
use super::types::Listener;
use futures_util::StreamExt;
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

/// The running live thread.
pub(crate) struct LiveHandle {
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl LiveHandle {
    pub fn start(endpoint: Endpoint, listener: Option<Listener>) -> Result<LiveHandle> {
        let (stop, stopped) = watch::channel(false);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| DeviceError::storage(format!("live runtime: {e}")))?;
        let thread = std::thread::Builder::new()
            .name("sop-live".into())
            .spawn(move || runtime.block_on(run(endpoint, listener, stopped)))
            .map_err(|e| DeviceError::storage(format!("live thread: {e}")))?;
        Ok(LiveHandle {
            stop,
            thread: Some(thread),
        })
    }

    pub fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn ws_url(endpoint: &Endpoint) -> String {
    let base = endpoint.url("/sync/v1/live");
    let base = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base
    };
    format!("{base}?access_token={}", endpoint.token)
}

async fn run(endpoint: Endpoint, listener: Option<Listener>, mut stopped: watch::Receiver<bool>) {
    let hint = || {
        if let Some(l) = &listener {
            l.sync_hint();
        }
    };
    let mut delay = Duration::from_secs(1);
    loop {
        if *stopped.borrow() {
            return;
        }
        let connect = tokio_tungstenite::connect_async(ws_url(&endpoint));
        let connected = tokio::select! {
            c = connect => c.ok(),
            _ = stopped.changed() => return,
        };
        if let Some((mut ws, _)) = connected {
            delay = Duration::from_secs(1);
            hint();
            loop {
                tokio::select! {
                    msg = ws.next() => match msg {
                        Some(Ok(Message::Text(text))) => {
                            if text.contains("pull_now") {
                                hint();
                            }
                        }
                        Some(Ok(_)) => {}
                        Some(Err(_)) | None => break,
                    },
                    _ = stopped.changed() => {
                        let _ = ws.close(None).await;
                        return;
                    }
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stopped.changed() => return,
        }
        delay = (delay * 2).min(Duration::from_secs(60));
    }
}
