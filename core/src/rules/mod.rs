//! The transition rules of SPEC §3.2 as pure functions.
//!
//! [`decide`] checks a command from an actor against a case (or its absence) and returns either the
//! [`Decision`] (events, notifications, effects) or a [`Refusal`]. [`apply`] folds events into a
//! case. Nothing here does I/O or reads a clock: `now` is in the [`Context`].
//!
//! Checks run in a fixed order so every caller gets the same refusal for the same situation:
//! 1. the case exists (else `case_not_found`; creating an existing case: `case_already_exists`);
//! 2. the actor's relation to the case permits the command ([`gate::who_may`]): a person who may not
//!    even see the case (including a removed doctor, and any doctor once the case is cancelled or
//!    rejected) gets `case_not_found` (SPEC §8), anyone else `forbidden`;
//! 3. the case's status permits it ([`gate::status_allows`]), else `invalid_status`;
//! 4. the command's own guards (eligibility, content, limits), in [`decide`]'s handlers.

mod apply;
mod decide;
mod gate;
mod guards;
mod outcome;

pub use apply::{apply, replay};
pub use decide::decide;
pub use gate::{status_allows, who_may};

use crate::Timestamp;
use crate::actor::Actor;
use crate::case::Case;
use crate::catalog::Catalog;
use crate::command::Command;
use crate::event::Decision;
use crate::refusal::Refusal;
use chrono::TimeDelta;

/// Content types accepted for medical documents (SPEC §4); the server detects them from content.
pub const ALLOWED_CONTENT_TYPES: [&str; 6] = [
    "application/pdf",
    "image/jpeg",
    "image/png",
    "image/heic",
    "application/dicom",
    "application/zip",
];

/// Configurable limits the rules enforce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_file_bytes: i64,
    pub max_case_bytes: i64,
    pub max_request_items: usize,
    pub max_request_item_chars: usize,
    pub max_reason_chars: usize,
    /// Per intake text field (medical history, questions) and per opinion/summary section.
    pub max_text_chars: usize,
    pub max_file_name_chars: usize,
    /// Bytes of one pushed content change operation (its Automerge change bytes).
    pub max_change_bytes: usize,
    /// Bytes of a content document, measured as its compacted save (`content::ContentDoc::save`).
    pub max_document_bytes: usize,
    /// Operations in one sync push.
    pub max_push_ops: usize,
    pub overdue_reminder_every: TimeDelta,
    pub draft_reminder_after: TimeDelta,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_file_bytes: 50 * 1024 * 1024,
            max_case_bytes: 500 * 1024 * 1024,
            max_request_items: 20,
            max_request_item_chars: 500,
            max_reason_chars: 1000,
            max_text_chars: 50_000,
            max_file_name_chars: 255,
            max_change_bytes: 256 * 1024,
            max_document_bytes: 5 * 1024 * 1024,
            max_push_ops: 500,
            overdue_reminder_every: TimeDelta::hours(12),
            draft_reminder_after: TimeDelta::hours(24),
        }
    }
}

/// What a decision may consult besides the case and the command.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    pub catalog: &'a Catalog,
    pub limits: &'a Limits,
    pub now: Timestamp,
}

/// Decides and applies in one step: the case after the command, and the decision.
pub fn execute(
    case: Option<&Case>,
    command: &Command,
    actor: &Actor,
    ctx: &Context<'_>,
) -> Result<(Option<Case>, Decision), Refusal> {
    let decision = decide(case, command, actor, ctx)?;
    let next = decision.events.iter().fold(case.cloned(), apply);
    Ok((next, decision))
}
