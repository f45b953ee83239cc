//! Live "pull now" hints (DESIGN §3 "Live"): after a transaction that added feed rows commits,
//! the writer publishes a [`Hint`] naming who should pull; connected devices of those users get a
//! small message on their live channel. Hints carry no data, only the feed position.
//!
//! In one process, hints travel over a broadcast channel. Across server instances they travel
//! through PostgreSQL `LISTEN/NOTIFY` (see the live-channel module).

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

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

/// The publisher and subscription point of hints. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Hints {
    local: broadcast::Sender<Hint>,
}

impl Default for Hints {
    fn default() -> Self {
        Self::new()
    }
}

impl Hints {
    pub fn new() -> Self {
        let (local, _) = broadcast::channel(1024);
        Self { local }
    }

    /// Publishes a hint to this process's subscribers. A hint nobody listens to is dropped.
    pub fn publish(&self, hint: Hint) {
        // `send` fails only when there is no subscriber, which is fine: nobody is connected.
        let _ = self.local.send(hint);
    }

    /// Receives every hint published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Hint> {
        self.local.subscribe()
    }
}
