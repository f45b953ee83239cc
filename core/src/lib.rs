//! `sop-core`: the one place where the rules of a second-opinion case live.
//!
//! The server calls these functions to enforce, the device calls them to answer at once while
//! offline; both get the same answer because there is only one implementation. Nothing in this
//! crate does I/O or reads a clock: time, ids and the catalog come in as arguments.
//!
//! - [`ids`], [`actor`], [`catalog`], [`case`]: the model (SPEC §1–§4).
//! - [`command`], [`event`], [`refusal`]: what may be asked, what happens, why not.
//! - [`rules`]: `decide` (T1–T18 and the system facts) and `apply`.
//! - [`access`], [`substate`], [`card`]: who sees and edits what (SPEC §8, DESIGN §2), the computed
//!   sub-states (§3.3) and the patient's status card (§3.4).
//! - [`content`]: the collaborative content documents (Automerge) of DESIGN §2 — ids, genesis,
//!   typed access per kind, schema validation, applying pushed changes, freezing, recovered drafts.
//! - [`sync`]: the versioned wire types of the sync protocol (DESIGN §3).
//! - `device` (feature `device`): the apps' data layer — SQLite store, optimistic commands, sync
//!   client (DESIGN §5, ADR 0008). The only part that does I/O.

pub mod access;
pub mod actor;
pub mod card;
pub mod case;
pub mod catalog;
pub mod command;
pub mod content;
#[cfg(feature = "device")]
pub mod device;
pub mod event;
pub mod ids;
pub mod lang;
pub mod refusal;
pub mod rules;
pub mod substate;
pub mod sync;

/// A point in time. Always UTC; always passed in, never read from a clock inside the core.
pub type Timestamp = chrono::DateTime<chrono::Utc>;

/// The version of this crate, for diagnostics in apps and the server.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub use actor::Actor;
pub use case::{Case, Status};
pub use command::Command;
pub use event::{Decision, Effect, Event, Notification};
pub use refusal::{Refusal, RefusalCode};
pub use rules::{Context, Limits, apply, decide};
