//! Who is asking. The role a doctor plays (coordinator or specialist) is per case and comes from
//! the case's assignments, not from the actor: see [`crate::case::Case::relation_of`].

use crate::ids::UserId;
use serde::{Deserialize, Serialize};

/// The authenticated caller of a command, as the server (or the device) knows it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Actor {
    /// A patient (JWT audience `snr_usr`).
    Patient(UserId),
    /// A doctor (JWT audience `snr_pro`); coordinator or specialist depending on the case.
    Doctor(UserId),
    /// A dashboard user (JWT audience `snr_dash`).
    Admin(UserId),
    /// The payment platform, through a verified callback.
    PaymentPlatform,
    /// The server itself: scheduled jobs, report generation, outbox results.
    System,
}

impl Actor {
    /// The user id, for actors that are people.
    pub fn user_id(&self) -> Option<&UserId> {
        match self {
            Actor::Patient(id) | Actor::Doctor(id) | Actor::Admin(id) => Some(id),
            Actor::PaymentPlatform | Actor::System => None,
        }
    }

    /// A stable short name of the actor's kind, for the timeline and the audit log.
    pub fn kind(&self) -> &'static str {
        match self {
            Actor::Patient(_) => "patient",
            Actor::Doctor(_) => "doctor",
            Actor::Admin(_) => "admin",
            Actor::PaymentPlatform => "payment_platform",
            Actor::System => "system",
        }
    }
}
