//! [`SopDevice`]: the one object an app holds per signed-in user, and the "something changed"
//! listener. Every method delegates to `sop_core::device::Device` in a line; the rules, the store
//! and the sync client live in the core.
//!
//! Calls are blocking (see bindings/README.md): local ones read or write the SQLite file and
//! return in milliseconds; `sync()` does network I/O and must be called off the UI thread.

use crate::error::SopError;
use crate::types::{
    CaseDetail, CaseListItem, DeviceConfig, DoctorAssignment, IntakeContent, IntakeEdit,
    NotificationInfo, OpinionDraft, OpinionSection, PendingUploadInfo, RecoveredDraftInfo,
    RefusalInfo, SyncReport,
};
use sop_core::device::{ChangeListener as CoreListener, Device};
use std::sync::{Arc, Mutex, Weak};

/// Results of exported calls.
type Result<T> = std::result::Result<T, SopError>;

/// Told when local data changes, implemented by the app (Kotlin, Swift, Python).
///
/// Called on the thread that made the change (the caller's thread for a user action, the sync
/// thread for a sync, the live thread for a hint). Keep it short: post to the UI thread and
/// return. It must not throw, and must not call back into the same `SopDevice` synchronously.
#[uniffi::export(with_foreign)]
pub trait ChangeListener: Send + Sync {
    /// Local data changed. `case_ids` lists the cases concerned; empty means "anything" (the
    /// catalog, notifications, refusals): reload what is on screen.
    fn changed(&self, case_ids: Vec<String>);
    /// The server said there is something new: call `sync()` soon (off the UI thread).
    fn sync_hint(&self);
}

/// Forwards the core's callbacks to the app's listener.
struct Forward(Arc<dyn ChangeListener>);

impl CoreListener for Forward {
    fn changed(&self, case_ids: Vec<String>) {
        self.0.changed(case_ids);
    }

    fn sync_hint(&self) {
        self.0.sync_hint();
    }
}

/// Which subscription currently owns the device's listener slot.
struct ListenerSlot {
    /// Incremented by every `subscribe`; a handle clears the slot only if it is still current.
    generation: Mutex<u64>,
}

/// A signed-in user's local store and sync client, opened on a database file and a server URL.
///
/// Open one per signed-in user and keep it for the app's lifetime. Opening the same file again
/// (e.g. after the app restarts) finds everything that was there, including operations not yet
/// synced. All methods are blocking; see bindings/README.md.
#[derive(uniffi::Object)]
pub struct SopDevice {
    inner: Arc<Device>,
    listeners: Arc<ListenerSlot>,
}

/// Keeps a listener registered; dropping it (or calling `cancel`) unregisters it.
///
/// Only one listener is registered at a time: a newer `subscribe` replaces this one, and this
/// handle then does nothing when dropped.
#[derive(uniffi::Object)]
pub struct Subscription {
    device: Weak<Device>,
    listeners: Weak<ListenerSlot>,
    generation: u64,
}

#[uniffi::export]
impl Subscription {
    /// Unregisters the listener now (also done when the handle is dropped).
    pub fn cancel(&self) {
        let (Some(device), Some(slot)) = (self.device.upgrade(), self.listeners.upgrade()) else {
            return;
        };
        // A poisoned lock only means another thread panicked mid-subscribe; the counter
        // itself is still a valid number.
        let current = slot.generation.lock().unwrap_or_else(|e| e.into_inner());
        if *current == self.generation {
            device.set_listener(None);
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.cancel();
    }
}

#[uniffi::export]
impl SopDevice {
    /// Opens (creating or upgrading) the store at `config.db_path` for `config.user_id`.
    /// No network: works offline.
    #[uniffi::constructor]
    pub fn open(config: DeviceConfig) -> Result<Arc<Self>> {
        Ok(Arc::new(Self {
            inner: Arc::new(Device::open(config)?),
            listeners: Arc::new(ListenerSlot {
                generation: Mutex::new(0),
            }),
        }))
    }

    /// This installation's id, persisted in the store.
    pub fn device_id(&self) -> String {
        self.inner.device_id()
    }

    /// Replaces the bearer token after a refresh.
    pub fn set_token(&self, token: String) {
        self.inner.set_token(token);
    }

    /// Points the sync client at another server URL.
    pub fn set_server_url(&self, url: String) {
        self.inner.set_server_url(url);
    }

    /// Registers `listener` for "something changed" (replacing any earlier one) until the
    /// returned handle is cancelled or dropped. Keep the handle.
    pub fn subscribe(&self, listener: Arc<dyn ChangeListener>) -> Arc<Subscription> {
        let mut generation = self
            .listeners
            .generation
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *generation += 1;
        self.inner.set_listener(Some(Arc::new(Forward(listener))));
        Arc::new(Subscription {
            device: Arc::downgrade(&self.inner),
            listeners: Arc::downgrade(&self.listeners),
            generation: *generation,
        })
    }

    // ---- reading: local only, never the network

    /// The cases on this device, most recently updated first.
    pub fn list_cases(&self) -> Result<Vec<CaseListItem>> {
        Ok(self.inner.list_cases()?)
    }

    /// One case with its status card, sub-state, documents, requests, assignments and timeline.
    pub fn get_case(&self, case_id: String) -> Result<CaseDetail> {
        Ok(self.inner.get_case(case_id)?)
    }

    /// The catalog (review types, disease categories) as last synced, as a JSON array;
    /// `null`/`nil` before the first sync.
    pub fn catalog_json(&self) -> Result<Option<String>> {
        Ok(self.inner.catalog_json()?)
    }

    /// In-app notifications, newest first.
    pub fn notifications(&self) -> Result<Vec<NotificationInfo>> {
        Ok(self.inner.notifications()?)
    }

    /// How many operations wait for the server.
    pub fn pending_op_count(&self) -> Result<i64> {
        Ok(self.inner.pending_op_count()?)
    }

    /// Operations the server refused, to show the user.
    pub fn refusals(&self) -> Result<Vec<RefusalInfo>> {
        Ok(self.inner.refusals()?)
    }

    /// Forgets a refusal the user has seen.
    pub fn dismiss_refusal(&self, id: i64) -> Result<()> {
        Ok(self.inner.dismiss_refusal(id)?)
    }

    /// Text the server refused, kept so the user can copy it back.
    pub fn recovered_drafts(&self) -> Result<Vec<RecoveredDraftInfo>> {
        Ok(self.inner.recovered_drafts()?)
    }

    /// Forgets a recovered draft the user has seen.
    pub fn dismiss_recovered_draft(&self, id: i64) -> Result<()> {
        Ok(self.inner.dismiss_recovered_draft(id)?)
    }

    /// Attached files whose upload has not finished (the next `sync()` continues them).
    pub fn pending_uploads(&self) -> Result<Vec<PendingUploadInfo>> {
        Ok(self.inner.pending_uploads()?)
    }

    // ---- patient: each command is checked on the device first (refused: `SopError::Refused`,
    //      nothing queued), then applied locally and queued in one transaction.

    /// Creates a case (works offline) with its intake; `submit` also submits it. Returns the id.
    pub fn create_case(
        &self,
        rt_id: String,
        dc_id: String,
        intake: IntakeEdit,
        submit: bool,
    ) -> Result<String> {
        Ok(self.inner.create_case(rt_id, dc_id, intake, submit)?)
    }

    /// The intake form as this device holds it.
    pub fn intake(&self, case_id: String) -> Result<IntakeContent> {
        Ok(self.inner.intake(case_id)?)
    }

    /// Edits the intake of a draft (only the fields given).
    pub fn edit_intake(&self, case_id: String, edit: IntakeEdit) -> Result<()> {
        Ok(self.inner.edit_intake(case_id, edit)?)
    }

    /// Submits a draft.
    pub fn submit_case(&self, case_id: String) -> Result<()> {
        Ok(self.inner.submit_case(case_id)?)
    }

    /// Cancels the case (refunded when already paid).
    pub fn cancel_case(&self, case_id: String, reason: String) -> Result<()> {
        Ok(self.inner.cancel_case(case_id, reason)?)
    }

    /// Opens a new payment attempt after a failed one; returns its id. The link arrives on the
    /// status card after a sync.
    pub fn retry_payment(&self, case_id: String) -> Result<String> {
        Ok(self.inner.retry_payment(case_id)?)
    }

    /// Attaches the file at `file_path` (copied into the store at once, so the app may delete
    /// it); uploaded by the next syncs, resuming where an interrupted upload stopped. The type is
    /// detected from the bytes, else `content_type` is used. `request_id` links it to a doctor's
    /// request. Returns the document id.
    pub fn attach_document(
        &self,
        case_id: String,
        file_path: String,
        file_name: String,
        content_type: Option<String>,
        request_id: Option<String>,
    ) -> Result<String> {
        Ok(self
            .inner
            .attach_document(case_id, file_path, file_name, content_type, request_id)?)
    }

    /// Says a document request is answered (after attaching what it asked for).
    pub fn answer_document_request(&self, case_id: String, request_id: String) -> Result<()> {
        Ok(self.inner.answer_document_request(case_id, request_id)?)
    }

    /// Removes a document from a draft.
    pub fn remove_document(&self, case_id: String, document_id: String) -> Result<()> {
        Ok(self.inner.remove_document(case_id, document_id)?)
    }

    // ---- doctors and coordinators

    /// The signed-in doctor's private notes on a case.
    pub fn notes(&self, case_id: String) -> Result<String> {
        Ok(self.inner.notes(case_id)?)
    }

    /// Replaces the notes with `text` (the whole text; stored as a minimal edit so typing on
    /// two devices merges).
    pub fn set_notes(&self, case_id: String, text: String) -> Result<()> {
        Ok(self.inner.set_notes(case_id, text)?)
    }

    /// The signed-in specialist's opinion draft.
    pub fn opinion(&self, case_id: String) -> Result<OpinionDraft> {
        Ok(self.inner.opinion(case_id)?)
    }

    /// Replaces one section of the opinion draft with `text` (the whole section).
    pub fn set_opinion_section(
        &self,
        case_id: String,
        section: OpinionSection,
        text: String,
    ) -> Result<()> {
        Ok(self.inner.set_opinion_section(case_id, section, text)?)
    }

    /// Sets (`agrees`, `minor_difference`, `major_difference`) or clears the concordance.
    pub fn set_concordance(&self, case_id: String, concordance: Option<String>) -> Result<()> {
        Ok(self.inner.set_concordance(case_id, concordance)?)
    }

    /// Submits the opinion as the draft holds it.
    pub fn submit_opinion(&self, case_id: String) -> Result<()> {
        Ok(self.inner.submit_opinion(case_id)?)
    }

    /// Asks the patient for documents; returns the request id.
    pub fn request_documents(&self, case_id: String, items: Vec<String>) -> Result<String> {
        Ok(self.inner.request_documents(case_id, items)?)
    }

    /// Coordinator: assigns specialists (each optionally asking for documents).
    pub fn assign_doctors(&self, case_id: String, doctors: Vec<DoctorAssignment>) -> Result<()> {
        Ok(self.inner.assign_doctors(case_id, doctors)?)
    }

    /// Coordinator: unassigns a specialist (their devices then drop the case).
    pub fn unassign_doctor(&self, case_id: String, doctor_id: String) -> Result<()> {
        Ok(self.inner.unassign_doctor(case_id, doctor_id)?)
    }

    /// Coordinator: the final summary draft.
    pub fn summary(&self, case_id: String) -> Result<String> {
        Ok(self.inner.summary(case_id)?)
    }

    /// Coordinator: replaces the summary with `text` (the whole text).
    pub fn set_summary(&self, case_id: String, text: String) -> Result<()> {
        Ok(self.inner.set_summary(case_id, text)?)
    }

    /// Coordinator: submits the summary, which completes the case.
    pub fn submit_summary(&self, case_id: String) -> Result<()> {
        Ok(self.inner.submit_summary(case_id)?)
    }

    /// Coordinator: reminds the specialists of an overdue case.
    pub fn send_overdue_reminder(&self, case_id: String) -> Result<()> {
        Ok(self.inner.send_overdue_reminder(case_id)?)
    }

    /// Coordinator: rejects the case with a reason the patient sees.
    pub fn reject_case(&self, case_id: String, reason: String) -> Result<()> {
        Ok(self.inner.reject_case(case_id, reason)?)
    }

    // ---- sync: network I/O, call off the UI thread

    /// Uploads pending files, pushes queued operations and pulls everything new, retrying
    /// briefly on network errors. Fails with `Offline` (nothing lost) or `Unauthorized`.
    pub fn sync(&self) -> Result<SyncReport> {
        Ok(self.inner.sync()?)
    }

    /// Listens for the server's "something new" hints in the background; each one reaches the
    /// listener's `sync_hint`.
    pub fn start_live(&self) -> Result<()> {
        Ok(self.inner.start_live()?)
    }

    /// Stops listening for hints.
    pub fn stop_live(&self) {
        self.inner.stop_live();
    }
}
