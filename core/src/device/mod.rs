//! The device side of SOP (DESIGN.md §5, issue #5): the whole data layer the patient and doctor
//! apps embed, behind the cargo feature `device`.
//!
//! - [`Device`]: one signed-in user's store (SQLite, WAL) and sync client, opened on a database
//!   path and a server URL. Every user action is checked with the core rules against local state
//!   first (refused: the caller gets the reason, nothing is queued), then writes its local effect
//!   and its outbox entry in one transaction.
//! - `store`: the schema (versioned with `PRAGMA user_version`, one upgrade step per version) and
//!   the SQL; `cases`: rebuilding core cases from server records and replaying queued commands;
//!   `docs`: content documents; `sync`: push/pull/exchange with backoff, applying the feed;
//!   `upload`: resumable uploads of attached files; `live`: hints from `/sync/v1/live`.
//! - [`types`]: the plain records handed out (owned, `String` ids, `i64`), shaped for uniffi.
//!
//! The HTTP client is reqwest's blocking one: every method blocks; `sync` does network I/O and
//! must be called off the UI thread (and, inside a tokio runtime, through `spawn_blocking`).

mod error;
pub mod types;

pub use error::{DeviceError, Result};
pub use types::*;

use crate::command::Command;
use crate::ids::CaseId;
use std::sync::Mutex;

/// One signed-in user's local store and sync client.
pub struct Device {
    config: Mutex<DeviceConfig>,
    listener: Mutex<Option<Listener>>,
}

fn pending() -> DeviceError {
    DeviceError::storage("not implemented yet")
}

impl Device {
    /// Opens (creating or upgrading) the store at `config.db_path`.
    pub fn open(config: DeviceConfig) -> Result<Device> {
        Ok(Device {
            config: Mutex::new(config),
            listener: Mutex::new(None),
        })
    }

    /// Replaces the bearer token (after a refresh).
    pub fn set_token(&self, token: String) {
        if let Ok(mut c) = self.config.lock() {
            c.token = token;
        }
    }

    /// Points the client at another server URL.
    pub fn set_server_url(&self, url: String) {
        if let Ok(mut c) = self.config.lock() {
            c.server_url = url;
        }
    }

    /// Sets (or clears) the "something changed" listener.
    pub fn set_listener(&self, listener: Option<Listener>) {
        if let Ok(mut l) = self.listener.lock() {
            *l = listener;
        }
    }

    /// This installation's persisted device id.
    pub fn device_id(&self) -> String {
        String::new()
    }

    /// The cases on this device, most recently updated first.
    pub fn list_cases(&self) -> Result<Vec<CaseListItem>> {
        Err(pending())
    }

    /// One case as the device shows it.
    pub fn get_case(&self, _case_id: String) -> Result<CaseDetail> {
        Err(pending())
    }

    /// The catalog entries last received, as a JSON array.
    pub fn catalog_json(&self) -> Result<Option<String>> {
        Err(pending())
    }

    /// In-app notifications, newest first.
    pub fn notifications(&self) -> Result<Vec<NotificationInfo>> {
        Err(pending())
    }

    /// Operations waiting for the server.
    pub fn pending_op_count(&self) -> Result<i64> {
        Err(pending())
    }

    /// Refusals the server gave to queued operations.
    pub fn refusals(&self) -> Result<Vec<RefusalInfo>> {
        Err(pending())
    }

    /// Forgets a refusal the user has seen.
    pub fn dismiss_refusal(&self, _id: i64) -> Result<()> {
        Err(pending())
    }

    /// Typing the server refused, kept for the user.
    pub fn recovered_drafts(&self) -> Result<Vec<RecoveredDraftInfo>> {
        Err(pending())
    }

    /// Forgets a recovered draft the user has seen.
    pub fn dismiss_recovered_draft(&self, _id: i64) -> Result<()> {
        Err(pending())
    }

    /// Attached files not yet fully uploaded.
    pub fn pending_uploads(&self) -> Result<Vec<PendingUploadInfo>> {
        Err(pending())
    }

    /// T1/T2: a new case (offline-capable); returns its id.
    pub fn create_case(
        &self,
        _rt_id: String,
        _dc_id: String,
        _intake: IntakeEdit,
        _submit: bool,
    ) -> Result<String> {
        Err(pending())
    }

    /// T3.
    pub fn submit_case(&self, _case_id: String) -> Result<()> {
        Err(pending())
    }

    /// T16.
    pub fn cancel_case(&self, _case_id: String, _reason: String) -> Result<()> {
        Err(pending())
    }

    /// T8; returns the new payment attempt's id.
    pub fn retry_payment(&self, _case_id: String) -> Result<String> {
        Err(pending())
    }

    /// T12: attaches a file; returns the document id.
    pub fn attach_document(
        &self,
        _case_id: String,
        _file_path: String,
        _file_name: String,
        _content_type: Option<String>,
        _request_id: Option<String>,
    ) -> Result<String> {
        Err(pending())
    }

    /// T12: marks a document request answered.
    pub fn answer_document_request(&self, _case_id: String, _request_id: String) -> Result<()> {
        Err(pending())
    }

    /// T13.
    pub fn remove_document(&self, _case_id: String, _document_id: String) -> Result<()> {
        Err(pending())
    }

    /// T11; returns the request id.
    pub fn request_documents(&self, _case_id: String, _items: Vec<String>) -> Result<String> {
        Err(pending())
    }

    /// T9.
    pub fn assign_doctors(&self, _case_id: String, _doctors: Vec<DoctorAssignment>) -> Result<()> {
        Err(pending())
    }

    /// T10.
    pub fn unassign_doctor(&self, _case_id: String, _doctor_id: String) -> Result<()> {
        Err(pending())
    }

    /// T14, with the opinion document's content.
    pub fn submit_opinion(&self, _case_id: String) -> Result<()> {
        Err(pending())
    }

    /// T15, with the summary document's content.
    pub fn submit_summary(&self, _case_id: String) -> Result<()> {
        Err(pending())
    }

    /// T18.
    pub fn send_overdue_reminder(&self, _case_id: String) -> Result<()> {
        Err(pending())
    }

    /// T17.
    pub fn reject_case(&self, _case_id: String, _reason: String) -> Result<()> {
        Err(pending())
    }

    /// Any core command, optimistic like the typed methods.
    pub fn execute(&self, _case_id: CaseId, _command: Command) -> Result<()> {
        Err(pending())
    }

    /// The intake as this device's document holds it.
    pub fn intake(&self, _case_id: String) -> Result<IntakeContent> {
        Err(pending())
    }

    /// Edits the intake (patient, draft only).
    pub fn edit_intake(&self, _case_id: String, _edit: IntakeEdit) -> Result<()> {
        Err(pending())
    }

    /// The signed-in doctor's notes on a case.
    pub fn notes(&self, _case_id: String) -> Result<String> {
        Err(pending())
    }

    /// Replaces the notes text (stored as a minimal diff).
    pub fn set_notes(&self, _case_id: String, _text: String) -> Result<()> {
        Err(pending())
    }

    /// The signed-in specialist's opinion draft.
    pub fn opinion(&self, _case_id: String) -> Result<OpinionDraft> {
        Err(pending())
    }

    /// Replaces one opinion section's text.
    pub fn set_opinion_section(
        &self,
        _case_id: String,
        _section: OpinionSection,
        _text: String,
    ) -> Result<()> {
        Err(pending())
    }

    /// Sets or clears the opinion's concordance.
    pub fn set_concordance(&self, _case_id: String, _concordance: Option<String>) -> Result<()> {
        Err(pending())
    }

    /// The coordinator's summary draft.
    pub fn summary(&self, _case_id: String) -> Result<String> {
        Err(pending())
    }

    /// Replaces the summary text.
    pub fn set_summary(&self, _case_id: String, _text: String) -> Result<()> {
        Err(pending())
    }

    /// Uploads pending files, pushes the outbox and pulls until the feed is drained.
    pub fn sync(&self) -> Result<SyncReport> {
        Err(pending())
    }

    /// Starts listening on `/sync/v1/live` in a background thread.
    pub fn start_live(&self) -> Result<()> {
        Err(pending())
    }

    /// Stops the live thread, if any.
    pub fn stop_live(&self) {}
}
