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

mod cases;
mod content_api;
mod error;
mod live;
mod net;
mod rows;
pub mod store;
mod sync;
#[cfg(test)]
mod tests;
pub mod types;
mod upload;

pub use error::{DeviceError, Result};
pub use types::*;

use crate::Timestamp;
use crate::actor::Actor;
use crate::case::Case;
use crate::command::{Command, DoctorToAssign, RequestSpec};
use crate::content::DocId;
use crate::content::{self, ActorId, ContentDoc, DocRef};
use crate::ids::{CaseId, DocumentId, PaymentId, RequestId, UserId};
use crate::lang::Lang;
use crate::sync::wire::DeviceId;
use rusqlite::{Connection, Transaction, TransactionBehavior};
use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Mutex, MutexGuard};

/// One signed-in user's local store and sync client.
pub struct Device {
    conn: Mutex<Connection>,
    endpoint: Mutex<net::Endpoint>,
    user: UserId,
    actor: Actor,
    doc_actor: ActorId,
    device_id: DeviceId,
    lang: Lang,
    /// Copies of attached files, named by SHA-256, until they are uploaded.
    files_dir: PathBuf,
    listener: Mutex<Option<Listener>>,
    live: Mutex<Option<live::LiveHandle>>,
    /// Only one sync at a time (a second caller waits, then finds little to do).
    syncing: Mutex<()>,
    /// Documents as last loaded or written by this object, so typing does not reparse the
    /// document on every character. Write-through: SQLite stays the truth; the sync client
    /// writes to SQLite only and empties the cache in each of its transactions; a commit by
    /// another connection (another `Device` on the same file) empties it too.
    docs: Mutex<DocCache>,
}

/// The document cache and the `PRAGMA data_version` it was filled at.
#[derive(Default)]
struct DocCache {
    data_version: i64,
    docs: HashMap<DocId, rows::DocRow>,
}

fn parse_id<T: FromStr>(what: &str, s: &str) -> Result<T> {
    s.parse()
        .map_err(|_| DeviceError::invalid(format!("{what} is not a valid id")))
}

fn now() -> Timestamp {
    chrono::Utc::now()
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock leaves data that SQLite already protects (the transaction
    // rolled back); keep going rather than poisoning the whole app.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Device {
    /// Opens (creating or upgrading) the store at `config.db_path`. A store belongs to one user:
    /// opening it for another is `InvalidInput`.
    pub fn open(config: DeviceConfig) -> Result<Device> {
        if config.user_id.trim().is_empty() {
            return Err(DeviceError::invalid("user id is empty"));
        }
        let conn = store::open(&config.db_path)?;
        let role = match config.role {
            Role::Patient => "patient",
            Role::Doctor => "doctor",
        };
        match store::meta(&conn, "user_id")? {
            Some(owner) if owner != config.user_id => {
                return Err(DeviceError::invalid("this store belongs to another user"));
            }
            Some(_) => {}
            None => {
                store::set_meta(&conn, "user_id", &config.user_id)?;
                store::set_meta(&conn, "role", role)?;
            }
        }
        let device_id = match store::meta(&conn, "device_id")? {
            Some(id) => DeviceId(parse_id("device id", &id)?),
            None => {
                let id = uuid::Uuid::new_v4();
                store::set_meta(&conn, "device_id", &id.to_string())?;
                DeviceId(id)
            }
        };
        let doc_actor = match store::meta(&conn, "actor")? {
            Some(hex) => {
                ActorId::from(hex::decode(hex).map_err(|_| DeviceError::storage("stored actor"))?)
            }
            None => {
                // Random per installation: two devices of one user must never share an actor.
                let bytes = uuid::Uuid::new_v4().into_bytes();
                store::set_meta(&conn, "actor", &hex::encode(bytes))?;
                ActorId::from(&bytes[..])
            }
        };
        let user = UserId::new(config.user_id.clone());
        let actor = match config.role {
            Role::Patient => Actor::Patient(user.clone()),
            Role::Doctor => Actor::Doctor(user.clone()),
        };
        let lang = if config.lang.starts_with("ar") {
            Lang::Ar
        } else {
            Lang::En
        };
        Ok(Device {
            conn: Mutex::new(conn),
            endpoint: Mutex::new(net::Endpoint {
                base: config.server_url,
                token: config.token,
                lang: if lang == Lang::Ar { "ar" } else { "en" },
            }),
            user,
            actor,
            doc_actor,
            device_id,
            lang,
            files_dir: PathBuf::from(format!("{}.files", config.db_path)),
            listener: Mutex::new(None),
            live: Mutex::new(None),
            syncing: Mutex::new(()),
            docs: Mutex::new(DocCache::default()),
        })
    }

    /// Replaces the bearer token (after a refresh).
    pub fn set_token(&self, token: String) {
        lock(&self.endpoint).token = token;
    }

    /// Points the client at another server URL.
    pub fn set_server_url(&self, url: String) {
        lock(&self.endpoint).base = url;
    }

    /// Sets (or clears) the "something changed" listener.
    pub fn set_listener(&self, listener: Option<Listener>) {
        *lock(&self.listener) = listener;
    }

    /// This installation's persisted device id.
    pub fn device_id(&self) -> String {
        self.device_id.0.to_string()
    }

    /// Runs `f` in one immediate transaction (the write lock is taken up front, so two
    /// writers never deadlock on an upgrade) and commits.
    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = lock(&self.conn);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = lock(&self.conn);
        f(&conn)
    }

    /// Tells the listener (outside any lock).
    fn notify(&self, case_ids: Vec<String>) {
        let listener = lock(&self.listener).clone();
        if let Some(l) = listener {
            l.changed(case_ids);
        }
    }

    /// The case as the app sees it now: the local case, with the intake from the device's
    /// intake document while it is the patient's to edit (the document is what they typed).
    fn current_case(&self, conn: &Connection, case_id: CaseId) -> Result<Option<Case>> {
        let Some(row) = rows::case_row(conn, case_id)? else {
            return Ok(None);
        };
        self.with_typed_intake(conn, row.local).map(Some)
    }

    /// `case` with the intake from the device's intake document while it is the patient's to
    /// edit: the server's record of a draft carries the intake as of its last command (docs/adr/0009).
    fn with_typed_intake(&self, conn: &Connection, mut case: Case) -> Result<Case> {
        if matches!(self.actor, Actor::Patient(_)) {
            let doc_ref = DocRef::new(case.case_id, crate::access::ContentKind::Intake);
            if let Some(intake) = self.with_doc(conn, &doc_ref, content::intake::get)? {
                case.intake = intake;
            }
        }
        Ok(case)
    }

    /// Recomputes a case's local state from its server state and the commands still queued.
    /// A case the server never had and whose creation is no longer queued is removed.
    fn recompute(&self, tx: &Transaction<'_>, case_id: CaseId, now: Timestamp) -> Result<()> {
        let Some(row) = rows::case_row(tx, case_id)? else {
            return Ok(());
        };
        let commands = rows::queued_commands(tx, case_id)?;
        let catalog = self.catalog_for(tx, row.base.as_ref(), &commands)?;
        // Queued commands (a submit) are decided on what the patient typed, as the server will.
        let base = match row.base.clone() {
            Some(case) if case.status == crate::case::Status::Draft => {
                Some(self.with_typed_intake(tx, case)?)
            }
            other => other,
        };
        match cases::replay(base, &commands, &self.actor, &catalog, now) {
            Some(local) => rows::put_case(
                tx,
                &rows::CaseRow {
                    record: row.record,
                    base: row.base,
                    local,
                },
                self.lang,
                now,
            ),
            None => {
                tx.execute(
                    "DELETE FROM cases WHERE case_id = ?1",
                    [case_id.to_string()],
                )?;
                Ok(())
            }
        }
    }

    /// The catalog for deciding `commands` (in order) on `case`: the device's copy, with what a
    /// device cannot know assumed to pass, as the server will check it for real. A review type
    /// or category the device has not received yet is an active placeholder (a patient may
    /// create a case before the first sync); the feed never carries a category's specialists nor
    /// the coordinator mappings, so the doctors these commands name count as eligible (the
    /// coordinator's phone shows the assignment at once; a server refusal rolls it back).
    fn catalog_for(
        &self,
        conn: &Connection,
        case: Option<&Case>,
        commands: &[Command],
    ) -> Result<crate::catalog::Catalog> {
        let mut catalog = rows::catalog(conn)?;
        let created = commands.iter().find_map(|c| match c {
            Command::CreateCase { rt_id, dc_id, .. } => Some((*rt_id, *dc_id)),
            _ => None,
        });
        let Some((rt, dc)) = created.or(case.map(|c| (c.rt_id, c.dc_id))) else {
            return Ok(catalog);
        };
        if catalog.review_type(rt).is_none() {
            catalog.review_types.push(crate::catalog::ReviewType {
                rt_id: rt,
                title_en: String::new(),
                title_ar: String::new(),
                description_en: String::new(),
                description_ar: String::new(),
                duration_en: String::new(),
                duration_ar: String::new(),
                price: 0,
                currency: String::new(),
                expected_review_days: 1,
                icon: String::new(),
                active: true,
                created_at: now(),
            });
        }
        if catalog.category(dc).is_none() {
            catalog.categories.push(crate::catalog::DiseaseCategory {
                dc_id: dc,
                label_en: String::new(),
                label_ar: String::new(),
                active: true,
                doctor_ids: Vec::new(),
            });
        }
        for command in commands {
            match command {
                Command::AssignDoctors { doctors } => {
                    if let Some(category) = catalog.categories.iter_mut().find(|c| c.dc_id == dc) {
                        category
                            .doctor_ids
                            .extend(doctors.iter().map(|d| d.doctor_id.clone()));
                    }
                }
                Command::AssignCoordinator { doctor_id, .. }
                | Command::ReassignCoordinator { doctor_id } => {
                    match catalog
                        .mappings
                        .iter_mut()
                        .find(|m| m.active && m.speciality_id == dc)
                    {
                        Some(mapping) => mapping.doctor_ids.push(doctor_id.clone()),
                        None => catalog.mappings.push(crate::catalog::CoordinatorMapping {
                            cc_id: crate::ids::MappingId(uuid::Uuid::nil()),
                            speciality_id: dc,
                            doctor_ids: vec![doctor_id.clone()],
                            active: true,
                        }),
                    }
                }
                _ => {}
            }
        }
        Ok(catalog)
    }

    // -----------------------------------------------------------------------------------------
    // Reading

    /// The cases on this device, most recently updated first.
    pub fn list_cases(&self) -> Result<Vec<CaseListItem>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT c.case_id, c.reference, c.status, c.sub_state, c.updated_at, c.card_title,
                        (SELECT count(*) FROM outbox o WHERE o.case_id = c.case_id)
                 FROM cases c ORDER BY c.updated_at DESC, c.case_id",
            )?;
            let items = stmt
                .query_map([], |r| {
                    Ok(CaseListItem {
                        case_id: r.get(0)?,
                        reference: r.get(1)?,
                        status: r.get(2)?,
                        sub_state: r.get(3)?,
                        updated_at: r.get(4)?,
                        card_title: r.get(5)?,
                        pending_ops: r.get(6)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(items)
        })
    }

    /// One case as the device shows it (`NotFound` if the device does not hold it).
    pub fn get_case(&self, case_id: String) -> Result<CaseDetail> {
        let id: CaseId = parse_id("case id", &case_id)?;
        self.read(|conn| {
            let case = self
                .current_case(conn, id)?
                .ok_or_else(|| DeviceError::not_found("case"))?;
            let record_text: Option<String> = conn.query_row(
                "SELECT record FROM cases WHERE case_id = ?1",
                [&case_id],
                |r| r.get(0),
            )?;
            let record: Option<serde_json::Value> =
                record_text.as_deref().map(rows::parse).transpose()?;
            let mut stmt = conn.prepare_cached(
                "SELECT document_id FROM uploads WHERE case_id = ?1 AND complete = 0",
            )?;
            let uploading = stmt
                .query_map([&case_id], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(cases::detail(cases::DetailInput {
                local: &case,
                record: record.as_ref(),
                record_text,
                pending_ops: rows::pending_count(conn, Some(id))?,
                uploading: &uploading,
                lang: self.lang,
                now: now(),
            }))
        })
    }

    /// The catalog entries last received (review types, categories), as a JSON array; `None`
    /// before the first sync.
    pub fn catalog_json(&self) -> Result<Option<String>> {
        self.read(|conn| {
            let mut stmt = conn.prepare("SELECT json FROM catalog ORDER BY key")?;
            let entries = stmt
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            if entries.is_empty() {
                return Ok(None);
            }
            Ok(Some(format!("[{}]", entries.join(","))))
        })
    }

    /// In-app notifications, newest first.
    pub fn notifications(&self) -> Result<Vec<NotificationInfo>> {
        self.read(|conn| {
            let mut stmt =
                conn.prepare("SELECT id, case_id, json FROM notifications ORDER BY id DESC")?;
            let items = stmt
                .query_map([], |r| {
                    Ok(NotificationInfo {
                        id: r.get(0)?,
                        case_id: r.get(1)?,
                        json: r.get(2)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(items)
        })
    }

    /// Operations waiting for the server.
    pub fn pending_op_count(&self) -> Result<i64> {
        self.read(|conn| rows::pending_count(conn, None))
    }

    /// Refusals the server gave to queued operations, oldest first.
    pub fn refusals(&self) -> Result<Vec<RefusalInfo>> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT id, case_id, op_id, what, code, message_en, message_ar, at
                 FROM refusals ORDER BY id",
            )?;
            let items = stmt
                .query_map([], |r| {
                    Ok(RefusalInfo {
                        id: r.get(0)?,
                        case_id: r.get(1)?,
                        op_id: r.get(2)?,
                        what: r.get(3)?,
                        code: r.get(4)?,
                        message_en: r.get(5)?,
                        message_ar: r.get(6)?,
                        at: r.get(7)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(items)
        })
    }

    /// Forgets a refusal the user has seen.
    pub fn dismiss_refusal(&self, id: i64) -> Result<()> {
        self.write(|tx| Ok(tx.execute("DELETE FROM refusals WHERE id = ?1", [id])?))?;
        self.notify(Vec::new());
        Ok(())
    }

    /// Typing the server refused, kept for the user, oldest first.
    pub fn recovered_drafts(&self) -> Result<Vec<RecoveredDraftInfo>> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT id, case_id, kind, content, fields, code, message_en, message_ar, at
                 FROM recovered_drafts ORDER BY id",
            )?;
            let items = stmt
                .query_map([], |r| {
                    Ok((
                        RecoveredDraftInfo {
                            id: r.get(0)?,
                            case_id: r.get(1)?,
                            kind: r.get(2)?,
                            content_json: r.get(3)?,
                            fields: Vec::new(),
                            code: r.get(5)?,
                            message_en: r.get(6)?,
                            message_ar: r.get(7)?,
                            at: r.get(8)?,
                        },
                        r.get::<_, String>(4)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            items
                .into_iter()
                .map(|(mut info, fields)| {
                    info.fields = rows::parse(&fields)?;
                    Ok(info)
                })
                .collect()
        })
    }

    /// Forgets a recovered draft the user has seen.
    pub fn dismiss_recovered_draft(&self, id: i64) -> Result<()> {
        self.write(|tx| Ok(tx.execute("DELETE FROM recovered_drafts WHERE id = ?1", [id])?))?;
        self.notify(Vec::new());
        Ok(())
    }

    /// Attached files not yet fully uploaded.
    pub fn pending_uploads(&self) -> Result<Vec<PendingUploadInfo>> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT sha256, case_id, document_id, size, received FROM uploads
                 WHERE complete = 0 ORDER BY rowid",
            )?;
            let items = stmt
                .query_map([], |r| {
                    Ok(PendingUploadInfo {
                        sha256: r.get(0)?,
                        case_id: r.get(1)?,
                        document_id: r.get(2)?,
                        size: r.get(3)?,
                        received: r.get(4)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(items)
        })
    }

    // -----------------------------------------------------------------------------------------
    // Commands

    /// Any core command, optimistic: checked with the core rules against the local case;
    /// refused → the refusal, nothing queued; allowed → the local case changes and the command
    /// is queued, in one transaction.
    pub fn execute(&self, case_id: CaseId, command: Command) -> Result<()> {
        self.write(|tx| self.execute_in(tx, case_id, &command))?;
        self.notify(vec![case_id.to_string()]);
        Ok(())
    }

    fn execute_in(&self, tx: &Transaction<'_>, case_id: CaseId, command: &Command) -> Result<()> {
        let now = now();
        let row = rows::case_row(tx, case_id)?;
        let current = self.current_case(tx, case_id)?;
        let catalog = self.catalog_for(tx, current.as_ref(), std::slice::from_ref(command))?;
        match cases::run(current.as_ref(), command, &self.actor, &catalog, now) {
            Ok(Some(local)) => {
                let (record, base) = row.map(|r| (r.record, r.base)).unwrap_or_default();
                rows::put_case(
                    tx,
                    &rows::CaseRow {
                        record,
                        base,
                        local,
                    },
                    self.lang,
                    now,
                )?;
            }
            Ok(None) => {}
            // The device lacks what this rule needs: the server decides (the case shows the
            // server's state until then).
            Err(r) if current.is_some() && cases::needs_server(r.code) => {}
            Err(r) => return Err(r.into()),
        }
        rows::queue_command(tx, case_id, command, now)?;
        Ok(())
    }

    /// T1/T2: a new case, offline-capable; returns its id. Its intake document is built exactly
    /// as the server builds it (`content::intake::initial`), so the two merge without doubling.
    pub fn create_case(
        &self,
        rt_id: String,
        dc_id: String,
        intake: IntakeEdit,
        submit: bool,
    ) -> Result<String> {
        let case_id = CaseId::new_v7();
        let intake = content_api::intake_of(&intake)?;
        let command = Command::CreateCase {
            case_id,
            rt_id: parse_id("review type id", &rt_id)?,
            dc_id: parse_id("category id", &dc_id)?,
            intake: intake.clone(),
            submit,
        };
        self.write(|tx| {
            self.execute_in(tx, case_id, &command)?;
            let doc = content::intake::initial(case_id, &intake, self.doc_actor.clone())?;
            let doc_ref = DocRef::new(case_id, crate::access::ContentKind::Intake);
            rows::put_doc(tx, &doc_ref, &doc, &[])
        })?;
        self.notify(vec![case_id.to_string()]);
        Ok(case_id.to_string())
    }

    fn simple(&self, case_id: &str, command: Command) -> Result<()> {
        self.execute(parse_id("case id", case_id)?, command)
    }

    /// T3.
    pub fn submit_case(&self, case_id: String) -> Result<()> {
        self.simple(&case_id, Command::SubmitCase)
    }

    /// T16.
    pub fn cancel_case(&self, case_id: String, reason: String) -> Result<()> {
        self.simple(&case_id, Command::Cancel { reason })
    }

    /// T8; returns the new payment attempt's id.
    pub fn retry_payment(&self, case_id: String) -> Result<String> {
        let payment_id = PaymentId::new_v7();
        self.simple(&case_id, Command::RetryPayment { payment_id })?;
        Ok(payment_id.to_string())
    }

    /// T12: marks a document request answered.
    pub fn answer_document_request(&self, case_id: String, request_id: String) -> Result<()> {
        let request_id: RequestId = parse_id("request id", &request_id)?;
        self.simple(&case_id, Command::AnswerDocumentRequest { request_id })
    }

    /// T13.
    pub fn remove_document(&self, case_id: String, document_id: String) -> Result<()> {
        let document_id: DocumentId = parse_id("document id", &document_id)?;
        self.simple(&case_id, Command::RemoveDocument { document_id })
    }

    /// T11; returns the request id.
    pub fn request_documents(&self, case_id: String, items: Vec<String>) -> Result<String> {
        let request_id = RequestId::new_v7();
        self.simple(
            &case_id,
            Command::RequestDocuments {
                request: RequestSpec { request_id, items },
            },
        )?;
        Ok(request_id.to_string())
    }

    /// T9.
    pub fn assign_doctors(&self, case_id: String, doctors: Vec<DoctorAssignment>) -> Result<()> {
        let doctors = doctors
            .into_iter()
            .map(|d| DoctorToAssign {
                doctor_id: UserId::new(d.doctor_id),
                requested_documents: (!d.requested_items.is_empty()).then(|| RequestSpec {
                    request_id: RequestId::new_v7(),
                    items: d.requested_items,
                }),
            })
            .collect();
        self.simple(&case_id, Command::AssignDoctors { doctors })
    }

    /// T10.
    pub fn unassign_doctor(&self, case_id: String, doctor_id: String) -> Result<()> {
        self.simple(
            &case_id,
            Command::UnassignDoctor {
                doctor_id: UserId::new(doctor_id),
            },
        )
    }

    /// T18.
    pub fn send_overdue_reminder(&self, case_id: String) -> Result<()> {
        self.simple(&case_id, Command::SendOverdueReminder)
    }

    /// T17.
    pub fn reject_case(&self, case_id: String, reason: String) -> Result<()> {
        self.simple(&case_id, Command::Reject { reason })
    }

    /// Runs `f` on a case's content document (`None` if the device has none), from the cache
    /// or loaded into it.
    fn with_doc<T>(
        &self,
        conn: &Connection,
        doc_ref: &DocRef,
        f: impl FnOnce(&ContentDoc) -> std::result::Result<T, crate::refusal::Refusal>,
    ) -> Result<Option<T>> {
        let doc_id = doc_ref.doc_id();
        let mut cache = self.doc_cache(conn)?;
        let row = match cache.docs.entry(doc_id) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                match rows::doc_row(conn, doc_id, doc_ref.doc_kind(), &self.doc_actor)? {
                    Some(row) => e.insert(row),
                    None => return Ok(None),
                }
            }
        };
        Ok(Some(f(&row.doc)?))
    }

    /// Takes a case's content document out of the cache (or loads it, or starts a new one from
    /// the genesis) for editing; [`Device::cache_doc`] puts it back once the edit is committed.
    fn take_doc(&self, conn: &Connection, doc_ref: &DocRef) -> Result<rows::DocRow> {
        if let Some(row) = self.doc_cache(conn)?.docs.remove(&doc_ref.doc_id()) {
            return Ok(row);
        }
        self.load_doc(conn, doc_ref)
    }

    fn cache_doc(&self, doc_id: DocId, row: rows::DocRow) {
        lock(&self.docs).docs.insert(doc_id, row);
    }

    /// Empties the document cache (the sync client is about to write documents).
    fn forget_docs(&self) {
        lock(&self.docs).docs.clear();
    }

    /// The document cache, emptied first if another connection committed to the file since it
    /// was filled (`data_version` changes only for other connections' commits).
    fn doc_cache(&self, conn: &Connection) -> Result<MutexGuard<'_, DocCache>> {
        let version: i64 = conn.query_row("PRAGMA data_version", [], |r| r.get(0))?;
        let mut cache = lock(&self.docs);
        if cache.data_version != version {
            cache.docs.clear();
            cache.data_version = version;
        }
        Ok(cache)
    }

    /// Loads a content document of a case from SQLite, or a new one (genesis) if the device
    /// has none yet.
    fn load_doc(&self, conn: &Connection, doc_ref: &DocRef) -> Result<rows::DocRow> {
        match rows::doc_row(conn, doc_ref.doc_id(), doc_ref.doc_kind(), &self.doc_actor)? {
            Some(row) => Ok(row),
            None => Ok(rows::DocRow {
                doc: ContentDoc::new(doc_ref.doc_kind(), self.doc_actor.clone())?,
                server_heads: Vec::new(),
            }),
        }
    }

    /// Starts listening on `/sync/v1/live` in a background thread: every hint calls the
    /// listener's `sync_hint`. Reconnects with backoff until [`Device::stop_live`].
    pub fn start_live(&self) -> Result<()> {
        let mut live = lock(&self.live);
        if live.is_some() {
            return Ok(());
        }
        let endpoint = lock(&self.endpoint).clone();
        let listener = lock(&self.listener).clone();
        *live = Some(live::LiveHandle::start(endpoint, listener)?);
        Ok(())
    }

    /// Stops the live thread, if any.
    pub fn stop_live(&self) {
        if let Some(handle) = lock(&self.live).take() {
            handle.stop();
        }
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        self.stop_live();
    }
}
