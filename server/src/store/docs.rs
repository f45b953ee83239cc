//! Content documents on the server (DESIGN.md §2, docs/adr/0003): the patient's intake, the
//! doctors' notes and opinions, the coordinator's summary, as Automerge documents. This is the
//! one store of what people type: the `/app` and `/pro` endpoints and `/sync/v1/push` all write
//! through [`write_in`], and every reader reads the documents.
//!
//! **Storage.** A document is a row of `content_docs` (a compacted snapshot covering the feed up
//! to `snapshot_seq`, the current heads, the frozen heads) plus the feed's `content` rows after
//! the snapshot, each holding the changes of one write (appended with the rest of the feed, in
//! bulk, by the transaction's [`FeedBatch`]). A new document's snapshot is its genesis alone, so
//! every content row applies on any device (every device has the genesis). Loading is snapshot
//! plus later changes (a writer first tries the [`DocCache`] of committed documents, checked
//! against the stored heads); the periodic [`Store::compact_documents`] folds the changes into
//! a new snapshot (written first) and then clears the change bytes the previous snapshot already
//! held (so devices slightly behind still get plain changes), in one transaction.
//!
//! **Writing** ([`write_in`]) runs inside the caller's transaction, holding the case's row: the
//! write permission (core `check_write` for pushes, so a late edit is `content_frozen`; core
//! `may_write` for the API, whose refusals the API has always answered), then **one**
//! `apply_remote_batch` for all the request's operations on the document (never one change at a
//! time: TECH-NOTES), then one feed row with the changes the batch added, as they came. A
//! server-side edit (the API's save endpoints, `UpdateIntake`'s patch) is made with the core's
//! typed setters as the fixed [`server_actor`] on the transaction's document and checked as a
//! pushed change is (core `apply_local_edit`), without applying it a second time. A write to a
//! draft's intake does not rewrite the case (docs/adr/0009): the case's copy of the intake is
//! refreshed from the document when a command writes the draft ([`with_current_intake`]) and
//! read from the document while it is a draft ([`read_current_intake`]); T2/T3 freeze it.
//!
//! **Freezing.** When T2/T3, T14 or T15 go through, [`freeze_for`] records the document's heads
//! (`content::Frozen::of`) in the same transaction; readers then see the content as of those
//! heads. T14 and T15 take the submitted text from the document ([`document_command`]), whatever
//! the command carried.

use super::audit::{AuditEntry, AuditMeta};
use super::cases::{Executed, execute_in, load_for_update, locked_case};
use super::feed_log::FeedBatch;
use super::rows::DocRow;
use super::sql::Tx;
use super::{MAX_ATTEMPTS, Store, StoreError, read_tx};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sop_core::access::{ContentKind, may_write};
use sop_core::actor::Actor;
use sop_core::case::{Case, Intake, IntakePatch, Status};
use sop_core::command::{Command, OpinionContent};
use sop_core::content::{
    self, ActorId, ChangeHash, Content, ContentDoc, DocRef, Frozen, RemoteChange, apply_local_edit,
    apply_remote_batch, check_write, genesis_hash, intake,
};
use sop_core::ids::UserId;
use sop_core::rules::Limits;
use sop_core::{Refusal, RefusalCode};
use sqlx::types::Json;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use uuid::Uuid;

/// A server-side edit of a document, made with the core's typed setters (e.g.
/// `|doc| content::notes::set(doc, text)`).
pub type Edit<'a> = dyn Fn(&mut ContentDoc) -> Result<(), Refusal> + Send + Sync + 'a;

/// The actor id the server writes content as: fixed for every server instance (derived from a
/// constant), not random per request, so a document does not grow a new actor per edit. Safe
/// across instances because the server only edits the latest committed document while holding
/// the case's row, so its changes form one sequence.
pub fn server_actor() -> ActorId {
    static ACTOR: OnceLock<ActorId> = OnceLock::new();
    ACTOR
        .get_or_init(|| ActorId::from(&Sha256::digest(b"sop/server-actor/v1")[..16]))
        .clone()
}

/// Materialized documents kept between writes, so that a write does not reload a document
/// from its snapshot and every change row since (docs/PERFORMANCE.md: ~27% of the server's CPU,
/// growing with the history).
///
/// An entry is used only when its heads equal the heads stored in `content_docs`, read by the
/// writer in its own transaction while it holds the case's row: heads name the whole history,
/// so equal heads mean the very same document, whichever instance wrote it. A stale entry
/// (another instance wrote, a transaction rolled back) is simply not used. A writer takes the
/// entry out and the document it committed is put back after COMMIT, so the cache never holds
/// anything that was not committed and never needs a copy of a document.
#[derive(Clone, Default)]
pub struct DocCache(Arc<Mutex<CacheInner>>);

#[derive(Default)]
struct CacheInner {
    entries: HashMap<Uuid, Cached>,
    tick: u64,
}

struct Cached {
    heads: Vec<String>,
    doc: ContentDoc,
    used: u64,
}

impl std::fmt::Debug for DocCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocCache").finish_non_exhaustive()
    }
}

impl DocCache {
    /// How many documents are kept (a small document costs ~30 KiB resident: TECH-NOTES).
    pub const CAPACITY: usize = 2048;

    fn inner(&self) -> std::sync::MutexGuard<'_, CacheInner> {
        // A panic while holding the lock leaves at worst a missing entry: keep going.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes document `doc_id` out of the cache if it is the one with `heads` (sorted hex).
    pub(crate) fn take(&self, doc_id: Uuid, heads: &[String]) -> Option<ContentDoc> {
        let mut inner = self.inner();
        let entry = inner.entries.remove(&doc_id)?;
        (entry.heads == heads).then_some(entry.doc)
    }

    /// Keeps committed documents, dropping the least recently used beyond [`Self::CAPACITY`].
    pub(crate) fn put(&self, docs: impl IntoIterator<Item = (Uuid, ContentDoc)>) {
        let mut inner = self.inner();
        for (doc_id, doc) in docs {
            inner.tick += 1;
            let used = inner.tick;
            let heads = hex_heads(&doc.heads());
            inner.entries.insert(doc_id, Cached { heads, doc, used });
        }
        if inner.entries.len() > Self::CAPACITY {
            // Evict an eighth at once, so the scan is paid once per many inserts.
            let mut ages: Vec<u64> = inner.entries.values().map(|c| c.used).collect();
            let cut = ages.len() - Self::CAPACITY + Self::CAPACITY / 8;
            ages.select_nth_unstable(cut);
            let oldest_kept = ages[cut];
            inner.entries.retain(|_, c| c.used >= oldest_kept);
        }
    }
}

/// The stored name and doctor of a document kind.
fn kind_key(kind: &ContentKind) -> (&'static str, String) {
    match kind {
        ContentKind::Intake => ("intake", String::new()),
        ContentKind::Notes(d) => ("notes", d.to_string()),
        ContentKind::Opinion(d) => ("opinion", d.to_string()),
        ContentKind::Summary => ("summary", String::new()),
    }
}

/// The document a stored row is.
pub(crate) fn doc_ref_of(row: &DocRow) -> Result<DocRef, StoreError> {
    let doctor = || UserId::new(row.doctor_id.clone());
    let kind = match row.kind.as_str() {
        "intake" => ContentKind::Intake,
        "notes" => ContentKind::Notes(doctor()),
        "opinion" => ContentKind::Opinion(doctor()),
        "summary" => ContentKind::Summary,
        other => {
            return Err(StoreError::Corrupt(format!(
                "document {} has an unknown kind {other}",
                row.doc_id
            )));
        }
    };
    Ok(DocRef::new(sop_core::ids::CaseId(row.case_id), kind))
}

/// Heads as sorted lowercase hex.
fn hex_heads(heads: &[ChangeHash]) -> Vec<String> {
    let mut out: Vec<String> = heads.iter().map(ChangeHash::to_string).collect();
    out.sort();
    out
}

fn parse_heads(row: &DocRow, heads: &[String]) -> Result<Vec<ChangeHash>, StoreError> {
    heads
        .iter()
        .map(|h| {
            h.parse()
                .map_err(|_| StoreError::Corrupt(format!("document {} has bad heads", row.doc_id)))
        })
        .collect()
}

fn corrupt(row: &DocRow, refusal: &Refusal) -> StoreError {
    StoreError::Corrupt(format!(
        "document {} does not load: {}",
        row.doc_id, refusal.code
    ))
}

/// The heads in a content row's payload.
fn row_heads(payload: Option<&Json<serde_json::Value>>) -> Option<Vec<String>> {
    serde_json::from_value(payload?.0.get("heads")?.clone()).ok()
}

/// The document as of feed position `upto`, for a device: its snapshot followed by its changes
/// up to `upto` (what `load_incremental` takes), and the heads once they are applied. A
/// snapshot newer than `upto` (compacted meanwhile) is sent as it is.
pub(crate) async fn content_upto<T: Tx>(
    tx: &mut T,
    row: &DocRow,
    upto: i64,
) -> Result<(Vec<u8>, Vec<String>), StoreError> {
    let mut bytes = row.snapshot.clone();
    let changes = tx.doc_changes(row.doc_id, row.snapshot_seq, upto).await?;
    let mut heads = None;
    for change in changes {
        bytes.extend(change.data.unwrap_or_default());
        heads = row_heads(change.payload.as_ref());
    }
    let heads = match heads {
        Some(h) => h,
        // No change after the snapshot: the heads the snapshot was taken at.
        None if row.snapshot_seq > 0 => {
            row_heads(tx.feed_payload(row.snapshot_seq).await?.as_ref()).ok_or_else(|| {
                StoreError::Corrupt(format!("document {} has no snapshot heads", row.doc_id))
            })?
        }
        None => {
            let doc = ContentDoc::load(doc_ref_of(row)?.doc_kind(), &row.snapshot, server_actor())
                .map_err(|r| corrupt(row, &r))?;
            hex_heads(&doc.heads())
        }
    };
    Ok((bytes, heads))
}

/// Loads a stored document, writing as the [`server_actor`].
async fn load_row<T: Tx>(tx: &mut T, row: &DocRow) -> Result<ContentDoc, StoreError> {
    let doc_ref = doc_ref_of(row)?;
    let mut doc = ContentDoc::load(doc_ref.doc_kind(), &row.snapshot, server_actor())
        .map_err(|r| corrupt(row, &r))?;
    let mut changes = Vec::new();
    for change in tx
        .doc_changes(row.doc_id, row.snapshot_seq, i64::MAX)
        .await?
    {
        changes.extend(change.data.unwrap_or_default());
    }
    if !changes.is_empty() {
        doc.load_incremental(&changes)
            .map_err(|r| corrupt(row, &r))?;
    }
    Ok(doc)
}

/// The document as stored, or the one it starts as when nothing was stored yet: the genesis,
/// or for the intake the case's current values (cases created before documents existed).
async fn current_doc<T: Tx>(
    tx: &mut T,
    case: &Case,
    doc_ref: &DocRef,
    feed: &mut FeedBatch,
) -> Result<(Option<DocRow>, ContentDoc), StoreError> {
    // The row without its snapshot: the document usually comes from this transaction or the
    // cache, and only a miss needs the stored bytes.
    if let Some(row) = doc_meta(tx, doc_ref.doc_id().0, feed).await? {
        let doc = match feed.written_doc(row.doc_id) {
            Some(doc) => doc.clone(),
            None => committed_doc(tx, &row, feed).await?,
        };
        return Ok((Some(row), doc));
    }
    let doc = match doc_ref.kind {
        ContentKind::Intake => intake::initial(case.case_id, &case.intake, server_actor())?,
        _ => ContentDoc::new(doc_ref.doc_kind(), server_actor())?,
    };
    Ok((None, doc))
}

/// The row of document `doc_id` without its snapshot, as this transaction holds it, else read
/// (and then held: [`super::held`]).
async fn doc_meta<T: Tx>(
    tx: &mut T,
    doc_id: Uuid,
    feed: &mut FeedBatch,
) -> Result<Option<DocRow>, StoreError> {
    if let Some(row) = feed.held.doc_row(doc_id) {
        return Ok(Some(row));
    }
    let row = tx.content_doc_meta(doc_id).await?;
    if let Some(r) = &row {
        feed.held.set_doc_row(r.clone());
    }
    Ok(row)
}

/// The committed document of `row` (read without its snapshot, under the case's lock): from
/// the cache when it holds these heads (taken out), else loaded with the stored snapshot.
async fn committed_doc<T: Tx>(
    tx: &mut T,
    row: &DocRow,
    feed: &FeedBatch,
) -> Result<ContentDoc, StoreError> {
    if let Some(doc) = feed.cached_doc(row.doc_id, &row.heads.0) {
        return Ok(doc);
    }
    match tx.content_doc(row.doc_id).await? {
        Some(full) => load_row(tx, &full).await,
        None => Err(StoreError::Corrupt(format!(
            "document {} vanished",
            row.doc_id
        ))),
    }
}

/// A draft with the intake its document holds now, for a command about to decide on it (inside
/// the writer's transaction, seeing its own pending changes). Pushed intake changes do not
/// rewrite the case (docs/adr/0009): `case.intake` is refreshed from the document whenever a
/// command writes a draft, so the core decides `UpdateIntake` and T2/T3 on the current text.
pub(crate) async fn with_current_intake<T: Tx>(
    tx: &mut T,
    mut case: Case,
    feed: &mut FeedBatch,
) -> Result<Case, StoreError> {
    if case.status != Status::Draft {
        return Ok(case);
    }
    let doc_id = DocRef::new(case.case_id, ContentKind::Intake).doc_id().0;
    if let Some(doc) = feed.written_doc(doc_id) {
        case.intake = intake::get(doc)?;
        return Ok(case);
    }
    let Some(row) = doc_meta(tx, doc_id, feed).await? else {
        return Ok(case);
    };
    let doc = committed_doc(tx, &row, feed).await?;
    case.intake = intake::get(&doc)?;
    // Only read: the committed document goes back for the next writer.
    feed.return_to_cache(doc_id, doc);
    Ok(case)
}

/// A draft as readers see it: with the intake its document holds (see [`with_current_intake`]).
pub(crate) async fn read_current_intake<T: Tx>(
    tx: &mut T,
    mut case: Case,
) -> Result<Case, StoreError> {
    if case.status == Status::Draft {
        let doc_ref = DocRef::new(case.case_id, ContentKind::Intake);
        if let Some(row) = tx.content_doc(doc_ref.doc_id().0).await? {
            case.intake = intake::get(&load_row(tx, &row).await?)?;
        }
    }
    Ok(case)
}

/// Stores what `new` adds to the stored document (`row`; `None`: nothing stored yet, so the
/// base is the genesis): a feed content row with the added changes, and the new heads. The
/// changes are `added` when the caller has them as they came and the document was stored
/// (with no row, `new` may also hold a starting intake made here: then they come from `new`).
#[allow(clippy::too_many_arguments)]
async fn store_changes<T: Tx>(
    tx: &mut T,
    case: &Case,
    doc_ref: &DocRef,
    row: Option<&DocRow>,
    new: ContentDoc,
    added: Option<Vec<u8>>,
    feed: &mut FeedBatch,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let data = match (added, row) {
        (Some(bytes), Some(_)) => bytes,
        (_, Some(r)) => new.save_after(&parse_heads(r, &r.heads.0)?),
        (_, None) => new.save_after(&[genesis_hash(doc_ref.doc_kind())?]),
    };
    if data.is_empty() {
        return Ok(());
    }
    let heads = hex_heads(&new.heads());
    match row {
        // The heads are written once, at commit, however many units wrote the document.
        Some(r) if feed.held.add_content(r.doc_id, &heads, now) => {}
        Some(r) => tx.touch_content_doc(r.doc_id, &heads, 1, now).await?,
        None => {
            let (kind, doctor_id) = kind_key(&doc_ref.kind);
            let genesis = ContentDoc::new(doc_ref.doc_kind(), server_actor())?;
            tx.insert_content_doc(&DocRow {
                doc_id: doc_ref.doc_id().0,
                case_id: case.case_id.0,
                kind: kind.to_owned(),
                doctor_id,
                snapshot: genesis.save(),
                snapshot_seq: 0,
                pending: 1,
                heads: Json(heads.clone()),
                frozen_heads: None,
                frozen_at: None,
                updated_at: now,
            })
            .await?;
        }
    }
    feed.content(case, doc_ref, new, data, &heads);
    Ok(())
}

/// Creates the intake document of a new case with the values it was created with (T1/T2),
/// written by the core's per-case creation actor so a device that created the case offline
/// holds the very same change.
pub(crate) async fn create_intake<T: Tx>(
    tx: &mut T,
    case: &Case,
    values: &Intake,
    feed: &mut FeedBatch,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let doc_ref = DocRef::new(case.case_id, ContentKind::Intake);
    if doc_meta(tx, doc_ref.doc_id().0, feed).await?.is_some() {
        return Ok(());
    }
    let doc = intake::initial(case.case_id, values, server_actor())?;
    store_changes(tx, case, &doc_ref, None, doc.clone(), None, feed, now).await?;
    ensure_row(tx, case, &doc_ref, &doc, feed, now).await
}

/// Makes sure a stored row exists for `doc` (an empty intake or a never-written document adds
/// no change, hence no row, in [`store_changes`]).
async fn ensure_row<T: Tx>(
    tx: &mut T,
    case: &Case,
    doc_ref: &DocRef,
    doc: &ContentDoc,
    feed: &mut FeedBatch,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if doc_meta(tx, doc_ref.doc_id().0, feed).await?.is_some() {
        return Ok(());
    }
    let (kind, doctor_id) = kind_key(&doc_ref.kind);
    tx.insert_content_doc(&DocRow {
        doc_id: doc_ref.doc_id().0,
        case_id: case.case_id.0,
        kind: kind.to_owned(),
        doctor_id,
        snapshot: doc.save(),
        snapshot_seq: 0,
        pending: 0,
        heads: Json(hex_heads(&doc.heads())),
        frozen_heads: None,
        frozen_at: None,
        updated_at: now,
    })
    .await
    .map_err(Into::into)
}

/// The document a command submits (and so freezes), if any: the intake for T2/T3, the
/// actor's opinion for T14, the summary for T15.
fn submitted_doc(command: &Command, actor: &Actor, case: &Case) -> Option<DocRef> {
    let kind = match command {
        Command::CreateCase { submit: true, .. } | Command::SubmitCase => ContentKind::Intake,
        Command::SubmitOpinion { .. } => ContentKind::Opinion(actor.user_id()?.clone()),
        Command::SubmitSummary { .. } => ContentKind::Summary,
        _ => return None,
    };
    Some(DocRef::new(case.case_id, kind))
}

/// `command` with the text it submits taken from the document (T14, T15): the document is the
/// one source of truth, whatever text the command carried. Other commands are unchanged.
pub(crate) async fn document_command<'c, T: Tx>(
    tx: &mut T,
    case: Option<&Case>,
    command: &'c Command,
    actor: &Actor,
    feed: &mut FeedBatch,
) -> Result<Cow<'c, Command>, StoreError> {
    let (Some(case), Some(doc_ref)) = (case, case.and_then(|c| submitted_doc(command, actor, c)))
    else {
        return Ok(Cow::Borrowed(command));
    };
    if doc_ref.kind == ContentKind::Intake {
        return Ok(Cow::Borrowed(command));
    }
    let stored = match current_doc(tx, case, &doc_ref, feed).await? {
        (Some(_), doc) => Some(content::read(&doc)?),
        (None, _) => None,
    };
    Ok(Cow::Owned(match (command, stored) {
        (Command::SubmitOpinion { .. }, Some(Content::Opinion(opinion))) => {
            Command::SubmitOpinion { opinion }
        }
        (Command::SubmitOpinion { .. }, _) => Command::SubmitOpinion {
            opinion: OpinionContent::default(),
        },
        (Command::SubmitSummary { .. }, Some(Content::Summary { summary })) => {
            Command::SubmitSummary { summary }
        }
        (Command::SubmitSummary { .. }, _) => Command::SubmitSummary {
            summary: String::new(),
        },
        (other, _) => other.clone(),
    }))
}

/// Records the heads of the document `command` submitted, if it submits one (called once the
/// command went through, in its transaction).
pub(crate) async fn freeze_for<T: Tx>(
    tx: &mut T,
    command: &Command,
    actor: &Actor,
    case: &Case,
    feed: &mut FeedBatch,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let Some(doc_ref) = submitted_doc(command, actor, case) else {
        return Ok(());
    };
    let (row, doc) = current_doc(tx, case, &doc_ref, feed).await?;
    if row.is_none() {
        store_changes(tx, case, &doc_ref, None, doc.clone(), None, feed, now).await?;
        ensure_row(tx, case, &doc_ref, &doc, feed, now).await?;
    }
    let frozen = Frozen::of(&doc);
    tx.freeze_content_doc(doc_ref.doc_id().0, &frozen.heads, now)
        .await?;
    feed.held.froze(doc_ref.doc_id().0, &frozen.heads, now);
    Ok(())
}

/// What is written to a document.
#[derive(Clone, Copy)]
pub(crate) enum Write<'a> {
    /// Changes pushed by a device, in the order it made them.
    Pushed(&'a [RemoteChange<'a>]),
    /// An edit the server makes (the API's save endpoints).
    Edit(&'a Edit<'a>),
}

/// Which write-permission answer the caller gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Permission {
    /// Sync pushes: `content_frozen` for an edit that came too late (core `check_write`).
    Sync,
    /// The API: the core's `may_write` refusals.
    Api,
}

/// The result of [`write_in`].
#[derive(Debug)]
pub(crate) struct Written {
    /// One result per pushed operation (one for an edit).
    pub results: Vec<Result<(), Refusal>>,
    /// An edit that changed nothing: the document as it is. (A changed document is the
    /// transaction's version in its [`FeedBatch`].)
    pub unchanged: Option<ContentDoc>,
}

/// Writes to the document `doc_ref` inside the caller's transaction (see the module docs).
/// A refusal of the whole write (no such case, no permission) is an `Err`; a refusal of single
/// pushed operations is in [`Written::results`] while the others are stored.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn write_in<T: Tx>(
    tx: &mut T,
    doc_ref: &DocRef,
    write: Write<'_>,
    permission: Permission,
    actor: &Actor,
    meta: &AuditMeta,
    limits: &Limits,
    now: DateTime<Utc>,
    feed: &mut FeedBatch,
) -> Result<Written, StoreError> {
    let Some((case, _)) = locked_case(tx, doc_ref.case_id, feed).await? else {
        return Err(Refusal::new(RefusalCode::CaseNotFound).into());
    };
    write_loaded(
        tx, &case, doc_ref, write, permission, actor, meta, limits, now, feed,
    )
    .await
}

/// [`write_in`] to a document of `case`, which the caller holds in this transaction already
/// (its row locked, its state current): saves reading the case again.
#[allow(clippy::too_many_arguments)]
async fn write_loaded<T: Tx>(
    tx: &mut T,
    case: &Case,
    doc_ref: &DocRef,
    write: Write<'_>,
    permission: Permission,
    actor: &Actor,
    meta: &AuditMeta,
    limits: &Limits,
    now: DateTime<Utc>,
    feed: &mut FeedBatch,
) -> Result<Written, StoreError> {
    if doc_ref.case_id != case.case_id {
        return Err(Refusal::new(RefusalCode::CaseNotFound).into());
    }
    match permission {
        Permission::Sync => check_write(case, actor, doc_ref)?,
        Permission::Api => may_write(case, actor, &doc_ref.kind)?,
    }
    let (row, doc) = current_doc(tx, case, doc_ref, feed).await?;
    let (results, changed) = match write {
        Write::Pushed(ops) => {
            let outcome = super::cpu::heavy(|| apply_remote_batch(&doc, ops, limits));
            let changed = outcome.changed();
            let results = outcome.results.into_iter().map(|r| r.map(drop)).collect();
            (
                results,
                changed.then_some((outcome.doc, Some(outcome.added_bytes))),
            )
        }
        Write::Edit(edit) => {
            let mut edited = doc;
            let changed = apply_local_edit(&mut edited, edit, limits)?;
            if !changed {
                return Ok(Written {
                    results: vec![Ok(())],
                    unchanged: Some(edited),
                });
            }
            (vec![Ok(())], Some((edited, None)))
        }
    };
    let Some((new, added)) = changed else {
        return Ok(Written {
            results,
            unchanged: None,
        });
    };
    store_changes(tx, case, doc_ref, row.as_ref(), new, added, feed, now).await?;
    let action = match (write, &doc_ref.kind) {
        (Write::Pushed(_), _) => "push_content",
        (Write::Edit(_), ContentKind::Intake) => "save_intake",
        (Write::Edit(_), ContentKind::Notes(_)) => "save_notes",
        (Write::Edit(_), ContentKind::Opinion(_)) => "save_opinion",
        (Write::Edit(_), ContentKind::Summary) => "save_summary",
    };
    let entry = AuditEntry {
        action,
        case_id: Some(case.case_id.0),
        resource_id: Some(doc_ref.doc_id().to_string()),
        outcome: "ok".to_owned(),
    };
    feed.audit(meta, entry, now);
    Ok(Written {
        results,
        unchanged: None,
    })
}

/// `UpdateIntake` (from `/app/update-case` or a pushed command) inside the caller's
/// transaction: the core decides the patch (so refusals read as they always have), then the
/// same patch is written into the intake document, which stays the one source of the text.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn update_intake_in<T: Tx>(
    tx: &mut T,
    case_id: sop_core::ids::CaseId,
    patch: &IntakePatch,
    actor: &Actor,
    meta: &AuditMeta,
    limits: &Limits,
    now: DateTime<Utc>,
    feed: &mut FeedBatch,
) -> Result<Executed, StoreError> {
    let command = Command::UpdateIntake {
        patch: patch.clone(),
    };
    let executed = execute_in(tx, case_id, &command, actor, meta, limits, now, feed).await?;
    let edit = |doc: &mut ContentDoc| intake::apply_patch(doc, patch);
    let doc_ref = DocRef::new(case_id, ContentKind::Intake);
    let write = Write::Edit(&edit);
    // The case as the command left it, in this transaction: no second read.
    write_loaded(
        tx,
        &executed.case,
        &doc_ref,
        write,
        Permission::Api,
        actor,
        meta,
        limits,
        now,
        feed,
    )
    .await?;
    Ok(executed)
}

/// A document's content as readers see it.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredContent {
    /// The frozen content once submitted, else the current one.
    pub content: Content,
    pub updated_at: DateTime<Utc>,
    /// When it was submitted (frozen), if it was.
    pub frozen_at: Option<DateTime<Utc>>,
}

async fn stored_content<T: Tx>(
    tx: &mut T,
    doc_ref: &DocRef,
) -> Result<Option<StoredContent>, StoreError> {
    let Some(row) = tx.content_doc(doc_ref.doc_id().0).await? else {
        return Ok(None);
    };
    let doc = load_row(tx, &row).await?;
    let content = match &row.frozen_heads {
        Some(heads) => content::read_at(
            &doc,
            &Frozen {
                heads: heads.0.clone(),
            },
        )?,
        None => content::read(&doc)?,
    };
    Ok(Some(StoredContent {
        content,
        updated_at: row.updated_at,
        frozen_at: row.frozen_at,
    }))
}

impl Store {
    /// The content of a document (the caller checks that its reader may see it); `None` when
    /// nothing was ever written to it.
    pub async fn content(&self, doc_ref: &DocRef) -> Result<Option<StoredContent>, StoreError> {
        read_tx!(&self.db, |tx| stored_content(&mut tx, doc_ref).await)
    }

    /// Edits a document on behalf of `actor` (the API's save endpoints), if the core lets them
    /// write it now; the change reaches devices like a pushed one. Answers the content after the
    /// edit.
    pub async fn edit_content(
        &self,
        doc_ref: &DocRef,
        edit: &Edit<'_>,
        actor: &Actor,
        meta: &AuditMeta,
        limits: &Limits,
        now: DateTime<Utc>,
    ) -> Result<Content, StoreError> {
        self.retrying(|| async {
            super::feed_tx!(self, now, |tx, feed| {
                let written = write_in(
                    &mut tx,
                    doc_ref,
                    Write::Edit(edit),
                    Permission::Api,
                    actor,
                    meta,
                    limits,
                    now,
                    &mut feed,
                )
                .await?;
                let doc = written
                    .unchanged
                    .as_ref()
                    .or_else(|| feed.written_doc(doc_ref.doc_id().0));
                match doc {
                    Some(doc) => Ok(content::read(doc)?),
                    None => Err(StoreError::Corrupt(format!(
                        "document {} has no content after an edit",
                        doc_ref.doc_id()
                    ))),
                }
            })
        })
        .await
    }

    /// Edits a document (if `edit` is given) and runs `command` in one transaction: what the
    /// API's submit endpoints do (the command takes the submitted text from the document and
    /// freezes it). A refusal is audited like one of [`Store::execute`].
    #[allow(clippy::too_many_arguments)]
    pub async fn edit_and_execute(
        &self,
        doc_ref: &DocRef,
        edit: Option<&Edit<'_>>,
        command: &Command,
        actor: &Actor,
        meta: &AuditMeta,
        limits: &Limits,
        now: DateTime<Utc>,
    ) -> Result<Executed, StoreError> {
        let result = self
            .retrying(|| async {
                super::feed_tx!(self, now, |tx, feed| {
                    let edited = match edit {
                        Some(edit) => write_in(
                            &mut tx,
                            doc_ref,
                            Write::Edit(edit),
                            Permission::Api,
                            actor,
                            meta,
                            limits,
                            now,
                            &mut feed,
                        )
                        .await
                        .map(drop),
                        None => Ok(()),
                    };
                    match edited {
                        Ok(()) => {
                            execute_in(
                                &mut tx,
                                doc_ref.case_id,
                                command,
                                actor,
                                meta,
                                limits,
                                now,
                                &mut feed,
                            )
                            .await
                        }
                        Err(e) => Err(e),
                    }
                })
            })
            .await;
        self.audit_refusal(result, command, doc_ref.case_id, meta, now)
            .await
    }

    /// Edits the intake of a draft with `patch` (see [`update_intake_in`]). A refusal is
    /// audited like one of [`Store::execute`].
    pub async fn update_intake(
        &self,
        case_id: sop_core::ids::CaseId,
        patch: &IntakePatch,
        actor: &Actor,
        meta: &AuditMeta,
        limits: &Limits,
        now: DateTime<Utc>,
    ) -> Result<Executed, StoreError> {
        let result = self
            .retrying(|| async {
                super::feed_tx!(self, now, |tx, feed| {
                    update_intake_in(&mut tx, case_id, patch, actor, meta, limits, now, &mut feed)
                        .await
                })
            })
            .await;
        let command = Command::UpdateIntake {
            patch: patch.clone(),
        };
        self.audit_refusal(result, &command, case_id, meta, now)
            .await
    }

    /// Folds the changes of documents with at least `min_pending` of them into new snapshots
    /// (at most `limit` documents); answers how many were compacted. Safe to run from several
    /// instances at once: a compaction that lost a race changes nothing.
    pub async fn compact_documents(
        &self,
        min_pending: i32,
        limit: i64,
    ) -> Result<usize, StoreError> {
        let ids = read_tx!(&self.db, |tx| tx.docs_to_compact(min_pending, limit).await)?;
        let mut done = 0;
        for doc_id in ids {
            if self.compact_document(doc_id).await? {
                done += 1;
            }
        }
        Ok(done)
    }

    /// Compacts one document: reads it, saves a new snapshot, then (holding the case) replaces
    /// the old one if nobody compacted it meanwhile.
    async fn compact_document(&self, doc_id: uuid::Uuid) -> Result<bool, StoreError> {
        let read = read_tx!(&self.db, |tx| {
            match tx.content_doc(doc_id).await? {
                Some(row) => {
                    let changes = tx.doc_changes(doc_id, row.snapshot_seq, i64::MAX).await?;
                    let doc = load_row(&mut tx, &row).await?;
                    Ok::<_, StoreError>(Some((row, changes, doc)))
                }
                None => Ok(None),
            }
        })?;
        let Some((row, changes, doc)) = read else {
            return Ok(false);
        };
        let Some(new_seq) = changes.last().map(|c| c.seq) else {
            return Ok(false);
        };
        let covered = i32::try_from(changes.len()).unwrap_or(i32::MAX);
        let snapshot = tokio::task::spawn_blocking(move || doc.save())
            .await
            .map_err(|e| StoreError::Corrupt(format!("compaction task failed: {e}")))?;
        let case_id = sop_core::ids::CaseId(row.case_id);
        Ok(super::write_tx!(&self.db, |tx| {
            // Holding the case keeps writers of this document out while the rows change.
            load_for_update(&mut tx, case_id).await?;
            tx.compact_content_doc(doc_id, row.snapshot_seq, &snapshot, new_seq, covered)
                .await
                .map_err(StoreError::from)
        })?)
    }

    /// Runs `attempt` again while it fails with [`StoreError::Conflict`] (another request
    /// changed the case first), at most [`MAX_ATTEMPTS`] times.
    pub(crate) async fn retrying<F, Fut, O>(&self, attempt: F) -> Result<O, StoreError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<O, StoreError>>,
    {
        for _ in 0..MAX_ATTEMPTS {
            match attempt().await {
                Err(StoreError::Conflict) => continue,
                other => return other,
            }
        }
        Err(StoreError::Conflict)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use sop_core::ids::CaseId;

    fn intake_doc(n: u128) -> (Uuid, ContentDoc) {
        let doc_ref = DocRef::new(CaseId(Uuid::from_u128(n)), ContentKind::Intake);
        let doc = ContentDoc::new(doc_ref.doc_kind(), server_actor()).unwrap();
        (doc_ref.doc_id().0, doc)
    }

    #[test]
    fn the_cache_answers_only_at_the_stored_heads() {
        let cache = DocCache::default();
        let (id, doc) = intake_doc(1);
        let mut edited = doc.clone();
        intake::set_medical_history(&mut edited, "since May").unwrap();
        cache.put([(id, edited.clone())]);
        // The database says the document is elsewhere (another instance wrote, or this
        // write rolled back): the entry is not used, and dropped.
        assert!(cache.take(id, &hex_heads(&doc.heads())).is_none());
        assert!(cache.take(id, &hex_heads(&edited.heads())).is_none());
        cache.put([(id, edited.clone())]);
        let back = cache.take(id, &hex_heads(&edited.heads())).unwrap();
        assert_eq!(back.heads(), edited.heads());
        assert_eq!(intake::get(&back).unwrap().medical_history, "since May");
        // Taken out: a second writer cannot get the same copy.
        assert!(cache.take(id, &hex_heads(&edited.heads())).is_none());
    }

    #[test]
    fn the_cache_drops_the_least_recently_written_beyond_its_capacity() {
        let cache = DocCache::default();
        let n = DocCache::CAPACITY as u128 + 10;
        for i in 0..n {
            cache.put([intake_doc(i)]);
        }
        let len = cache.inner().entries.len();
        assert!(len <= DocCache::CAPACITY, "{len}");
        let (newest, doc) = intake_doc(n - 1);
        assert!(cache.take(newest, &hex_heads(&doc.heads())).is_some());
        let (oldest, doc) = intake_doc(0);
        assert!(cache.take(oldest, &hex_heads(&doc.heads())).is_none());
    }
}
