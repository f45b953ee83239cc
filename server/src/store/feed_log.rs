//! The sync feed (docs/adr/0004-sync-feed.md): one ordered log of everything a device may learn
//! about, written by every transaction that changes something, and read by pulls.
//!
//! **Writing.** A write transaction collects its rows in a [`FeedBatch`] while it works (the
//! case row, content changes, notifications, access changes, catalog changes) and calls
//! [`FeedBatch::commit`] as its very last statement: the batch takes its sequence numbers from
//! the one-row `feed_clock` (`UPDATE … RETURNING`, whose row lock is held until commit) and
//! inserts the rows in bulk. So numbers become visible in order: a reader that saw the clock at
//! `M` finds every row up to `M` committed, and none can appear below `M` later. The batch also
//! knows who should be told to pull (a [`Hint`]), which the store publishes after the commit.
//!
//! **Access changes** are computed here by comparing, for everyone related to the case, what
//! the core's `access::sees_case` / `can_view` say before and after the command:
//! `access_granted` (now sees the case), `access_revoked` (no longer does) and `content_refresh`
//! (sees more of it, e.g. a specialist who submitted may now read the other opinions). They are
//! the last rows of their transaction, after its notifications (a removed doctor still gets the
//! "you were removed" notice before the revoke).
//!
//! **Reading** ([`Store::pull_feed`], [`Store::pull_snapshot`]) happens in one snapshot
//! (REPEATABLE READ on PostgreSQL). Visibility is decided at pull time, on the cases' current
//! state, with the core: a `case` row becomes the current case record once per page, a
//! `content` row its changes (or the document's snapshot once compaction cleared them), a grant
//! or refresh the current record plus snapshots of every document the user may see now. Rows of
//! a case older than a grant that is still ahead in the pull sequence are skipped (the grant
//! brings everything), and nothing of a case follows its revoke in a page.

use super::StoreError;
use super::audit::{self, AuditEntry, AuditMeta, PendingAudit};
use super::cases::{ADMINS_RECIPIENT, load};
use super::docs::{DocCache, content_upto, doc_ref_of, read_current_intake};
use super::held::Held;
use super::rows::{DocRow, FeedRow, NotificationRow};
use super::sql::{FeedViewer, Tx};
use super::{Store, read_tx};
use crate::hints::Hint;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sop_core::access::{ContentKind, Resource, can_view, sees_case};
use sop_core::actor::Actor;
use sop_core::case::Case;
use sop_core::catalog::{DiseaseCategory, ReviewType};
use sop_core::content::{ContentDoc, DocRef};
use sop_core::ids::{CaseId, UserId};
use sqlx::types::Json;
use std::collections::{BTreeSet, HashMap, HashSet};
use uuid::Uuid;

/// The kinds of feed rows.
pub mod kind {
    pub const CASE: &str = "case";
    pub const CONTENT: &str = "content";
    pub const NOTIFICATION: &str = "notification";
    pub const CATALOG: &str = "catalog";
    pub const ACCESS_GRANTED: &str = "access_granted";
    pub const ACCESS_REVOKED: &str = "access_revoked";
    pub const CONTENT_REFRESH: &str = "content_refresh";
}

/// A row waiting for its sequence number.
#[derive(Debug)]
struct Pending {
    kind: &'static str,
    case_id: Option<Uuid>,
    recipient: Option<String>,
    doc_id: Option<Uuid>,
    payload: Option<Value>,
    data: Option<Vec<u8>>,
}

/// The feed rows of one write transaction, and who should hear about them.
#[derive(Debug, Default)]
pub(crate) struct FeedBatch {
    rows: Vec<Pending>,
    users: BTreeSet<String>,
    admins: bool,
    /// The content documents this transaction changed, as they are now: their changes reach
    /// the feed table only at commit, so later reads in the same transaction take them here.
    docs: HashMap<Uuid, ContentDoc>,
    /// The transaction's audit rows, chained at commit (the chain's lock is taken last).
    audits: Vec<PendingAudit>,
    /// Where committed documents are kept for the next write (none: nowhere).
    cache: Option<DocCache>,
    /// While a [`Mark`] is open: the documents' previous values, to put back on a rewind.
    undo: Option<Vec<(Uuid, Option<ContentDoc>)>>,
    /// The cases and document rows the transaction holds (undone with a [`Mark`] too).
    pub(crate) held: Held,
}

/// Where a batch stood when part of its transaction began (a savepoint), so that undoing that
/// part in the database also forgets what it added here ([`FeedBatch::rewind`]).
#[derive(Debug)]
#[must_use]
pub(crate) struct Mark {
    rows: usize,
    audits: usize,
}

/// What a committed [`FeedBatch`] leaves to do once the transaction committed.
#[derive(Debug, Default)]
pub(crate) struct Committed {
    /// The "pull now" hint, if feed rows were written.
    pub hint: Option<Hint>,
    /// The documents the transaction wrote, for the cache.
    docs: Vec<(Uuid, ContentDoc)>,
    cache: Option<DocCache>,
}

impl Committed {
    /// Keeps the written documents for the next write (call once the COMMIT succeeded).
    pub(crate) fn cache_docs(&mut self) {
        if let Some(cache) = &self.cache {
            cache.put(std::mem::take(&mut self.docs));
        }
    }
}

/// The people related to a case (owner and every doctor ever assigned, coordinator included).
fn people(case: &Case) -> Vec<Actor> {
    let mut seen = BTreeSet::new();
    let mut out = vec![Actor::Patient(case.patient_id.clone())];
    let doctors = case
        .assignments
        .iter()
        .map(|a| &a.doctor_id)
        .chain(case.coordinator_id.as_ref());
    for d in doctors {
        if seen.insert(d.clone()) {
            out.push(Actor::Doctor(d.clone()));
        }
    }
    out
}

/// The resource of SPEC §8 a content document is.
pub(crate) fn doc_resource(kind: &ContentKind) -> Resource<'_> {
    match kind {
        ContentKind::Intake => Resource::PatientContent,
        ContentKind::Notes(doctor) => Resource::Notes { doctor },
        ContentKind::Opinion(doctor) => Resource::Opinion { doctor },
        ContentKind::Summary => Resource::SummaryAndReport,
    }
}

/// The documents whose visibility can change for `who` on `case`.
fn doc_kinds(case: &Case, who: &Actor) -> Vec<ContentKind> {
    let mut kinds = vec![ContentKind::Intake, ContentKind::Summary];
    if let Actor::Doctor(me) = who {
        kinds.push(ContentKind::Notes(me.clone()));
    }
    let specialists: BTreeSet<&UserId> = case
        .assignments
        .iter()
        .filter(|a| a.role == sop_core::case::AssignmentRole::Specialist)
        .map(|a| &a.doctor_id)
        .collect();
    kinds.extend(specialists.into_iter().cloned().map(ContentKind::Opinion));
    kinds
}

fn user_of(actor: &Actor) -> Option<String> {
    actor.user_id().map(|u| u.to_string())
}

impl FeedBatch {
    /// An empty batch whose committed documents go to `cache`.
    pub(crate) fn with_cache(cache: DocCache) -> Self {
        Self {
            cache: Some(cache),
            ..Self::default()
        }
    }

    /// The committed document `doc_id` if the cache holds it at `heads` (taken out: the
    /// transaction puts back what it commits).
    pub(crate) fn cached_doc(&self, doc_id: Uuid, heads: &[String]) -> Option<ContentDoc> {
        self.cache.as_ref()?.take(doc_id, heads)
    }

    /// Puts back a document taken with [`FeedBatch::cached_doc`] and only read: it is still the
    /// committed one (the caller holds its case), so the next writer can use it.
    pub(crate) fn return_to_cache(&self, doc_id: Uuid, doc: ContentDoc) {
        if let Some(cache) = &self.cache {
            cache.put([(doc_id, doc)]);
        }
    }

    fn push(&mut self, row: Pending) {
        self.rows.push(row);
    }

    /// Starts a part that may be undone (one at a time): see [`Mark`].
    pub(crate) fn mark(&mut self) -> Mark {
        self.undo = Some(Vec::new());
        self.held.mark();
        Mark {
            rows: self.rows.len(),
            audits: self.audits.len(),
        }
    }

    /// Keeps the part since `mark`.
    pub(crate) fn keep(&mut self, mark: Mark) {
        let _ = mark;
        self.undo = None;
        self.held.keep();
    }

    /// Forgets the part since `mark`: its feed rows, audit rows and document versions. Hint
    /// recipients stay (an extra "pull now" is harmless).
    pub(crate) fn rewind(&mut self, mark: Mark) {
        self.rows.truncate(mark.rows);
        self.audits.truncate(mark.audits);
        self.held.rewind();
        for (doc_id, before) in self.undo.take().unwrap_or_default().into_iter().rev() {
            match before {
                Some(doc) => self.docs.insert(doc_id, doc),
                None => self.docs.remove(&doc_id),
            };
        }
    }

    /// A document as this transaction left it, if it changed it.
    pub(crate) fn written_doc(&self, doc_id: Uuid) -> Option<&ContentDoc> {
        self.docs.get(&doc_id)
    }

    /// An audit row of this transaction: appended to the chain at commit, in the order given,
    /// so that the chain's global lock is held only for the last few statements.
    pub(crate) fn audit(&mut self, meta: &AuditMeta, entry: AuditEntry<'_>, at: DateTime<Utc>) {
        self.audits.push(PendingAudit::new(meta, entry, at));
    }

    /// The case record changed: everyone who sees the case should pull it.
    pub(crate) fn case_changed(&mut self, case: &Case) {
        self.push(Pending {
            kind: kind::CASE,
            case_id: Some(case.case_id.0),
            recipient: None,
            doc_id: None,
            payload: None,
            data: None,
        });
        let viewers = people(case).into_iter().filter(|p| sees_case(case, p));
        self.users.extend(viewers.filter_map(|p| user_of(&p)));
        self.admins = true;
    }

    /// New changes of a content document (`data`: Automerge changes; `heads`: after them;
    /// `doc`: the document with them, kept as this transaction's version of it).
    pub(crate) fn content(
        &mut self,
        case: &Case,
        doc_ref: &DocRef,
        doc: ContentDoc,
        data: Vec<u8>,
        heads: &[String],
    ) {
        let before = self.docs.insert(doc_ref.doc_id().0, doc);
        if let Some(undo) = &mut self.undo {
            undo.push((doc_ref.doc_id().0, before));
        }
        let payload = json!({"kind": doc_ref.kind, "heads": heads});
        self.push(Pending {
            kind: kind::CONTENT,
            case_id: Some(case.case_id.0),
            recipient: None,
            doc_id: Some(doc_ref.doc_id().0),
            payload: Some(payload),
            data: Some(data),
        });
        let resource = doc_resource(&doc_ref.kind);
        let viewers = people(case)
            .into_iter()
            .filter(|p| can_view(case, p, &resource));
        self.users.extend(viewers.filter_map(|p| user_of(&p)));
        self.admins = true;
    }

    /// An in-app notification, for its recipient.
    pub(crate) fn notification(&mut self, n: &NotificationRow) -> Result<(), StoreError> {
        let payload = serde_json::to_value(n).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.push(Pending {
            kind: kind::NOTIFICATION,
            case_id: Some(n.case_id),
            recipient: Some(n.recipient.clone()),
            doc_id: None,
            payload: Some(payload),
            data: None,
        });
        if n.recipient == ADMINS_RECIPIENT {
            self.admins = true;
        } else {
            self.users.insert(n.recipient.clone());
        }
        Ok(())
    }

    /// A catalog change (everyone's feed). No hint: devices pick it up at their next pull.
    pub(crate) fn catalog(&mut self, payload: Value) {
        self.push(Pending {
            kind: kind::CATALOG,
            case_id: None,
            recipient: None,
            doc_id: None,
            payload: Some(payload),
            data: None,
        });
        self.admins = true;
    }

    fn addressed(&mut self, kind: &'static str, case: &Case, to: String) {
        self.push(Pending {
            kind,
            case_id: Some(case.case_id.0),
            recipient: Some(to.clone()),
            doc_id: None,
            payload: None,
            data: None,
        });
        self.users.insert(to);
    }

    /// Grants, revokes and refreshes for everyone whose view of the case changed between
    /// `before` (`None`: the case is new) and `after`.
    pub(crate) fn access_changes(&mut self, before: Option<&Case>, after: &Case) {
        let mut everyone = people(after);
        if let Some(b) = before {
            for p in people(b) {
                if !everyone.contains(&p) {
                    everyone.push(p);
                }
            }
        }
        for person in everyone {
            let Some(user) = user_of(&person) else {
                continue;
            };
            let saw = before.is_some_and(|b| sees_case(b, &person));
            let sees = sees_case(after, &person);
            match (saw, sees, before) {
                (false, true, _) => self.addressed(kind::ACCESS_GRANTED, after, user),
                (true, false, _) => self.addressed(kind::ACCESS_REVOKED, after, user),
                (true, true, Some(b)) if sees_more(b, after, &person) => {
                    self.addressed(kind::CONTENT_REFRESH, after, user);
                }
                _ => {}
            }
        }
    }

    /// Writes the documents' new heads ([`Held::unwritten`]), then the batch's audit rows and
    /// feed rows: call it as the transaction's last step. Two statements for the log: the feed
    /// clock's row hands out the feed numbers and the audit chain's tail (and serializes every
    /// writer from there to COMMIT), then one statement writes both (`Tx::append_log`). The
    /// hint to publish after the commit, if feed rows were written.
    pub(crate) async fn commit<T: Tx>(
        self,
        tx: &mut T,
        now: DateTime<Utc>,
    ) -> Result<Committed, StoreError> {
        for (doc_id, heads, added, at) in self.held.unwritten() {
            tx.touch_content_doc(doc_id, heads, added, at).await?;
        }
        let mut done = Committed {
            hint: None,
            docs: self.docs.into_iter().collect(),
            cache: self.cache,
        };
        if self.rows.is_empty() && self.audits.is_empty() {
            return Ok(done);
        }
        let count = |n: usize| i64::try_from(n).map_err(|e| StoreError::Corrupt(e.to_string()));
        let n = count(self.rows.len())?;
        let at = tx.take_positions(n, count(self.audits.len())?).await?;
        let audits = audit::chain(self.audits, at.audit_prev, at.audit_prev_hash);
        let first = at.feed_last - n + 1;
        let rows: Vec<FeedRow> = self
            .rows
            .into_iter()
            .zip(first..)
            .map(|(p, seq)| FeedRow {
                seq,
                kind: p.kind.to_owned(),
                case_id: p.case_id,
                recipient: p.recipient,
                doc_id: p.doc_id,
                payload: p.payload.map(Json),
                data: p.data,
                at: now,
            })
            .collect();
        tx.append_log(&audits, &rows).await?;
        if n > 0 {
            done.hint = Some(Hint {
                cursor: u64::try_from(at.feed_last).unwrap_or_default(),
                users: self.users.into_iter().collect(),
                admins: self.admins,
            });
        }
        Ok(done)
    }
}

/// Whether `person` may see a content document of `after` that they could not see in `before`.
fn sees_more(before: &Case, after: &Case, person: &Actor) -> bool {
    doc_kinds(after, person).iter().any(|k| {
        let r = doc_resource(k);
        !can_view(before, person, &r) && can_view(after, person, &r)
    })
}

/// The catalog feed payload of a review type (public: what patients browse).
pub(crate) fn review_type_payload(rt: &ReviewType) -> Value {
    json!({"type": "review_type", "review_type": rt})
}

/// The catalog feed payload of a disease category: its labels and state (the eligible doctors
/// are the admins' and coordinators' business, read through `/admin` and `/pro`).
pub(crate) fn category_payload(dc: &DiseaseCategory) -> Value {
    json!({
        "type": "disease_category",
        "disease_category": {
            "dc_id": dc.dc_id,
            "label_en": dc.label_en,
            "label_ar": dc.label_ar,
            "active": dc.active,
        },
    })
}

// ---------------------------------------------------------------------------------------------
// Reading

/// One thing a pull hands to the sync layer (which shapes the case records for the wire).
#[derive(Clone, Debug)]
pub enum Pulled {
    /// The current case, to be shown as this user may see it.
    Case(Box<Case>),
    /// Automerge bytes of a document (changes, or a snapshot followed by changes) and the
    /// document's heads once they are applied.
    Content {
        doc_ref: DocRef,
        data: Vec<u8>,
        heads: Vec<String>,
    },
    Notification {
        case_id: Option<CaseId>,
        notification: Value,
    },
    Catalog(Value),
    Granted(CaseId),
    Revoked(CaseId),
}

/// A page of the feed.
#[derive(Clone, Debug)]
pub struct FeedPage {
    pub items: Vec<Pulled>,
    /// The feed head when the pull started.
    pub head: i64,
    /// The position this page reaches (the next cursor).
    pub end: i64,
    /// Rows after `end` (up to `head`) are waiting.
    pub more: bool,
}

/// A page of a first (or catch-up) sync: whole cases instead of history.
#[derive(Clone, Debug)]
pub struct SnapshotPage {
    pub items: Vec<Pulled>,
    /// The feed head the snapshot is consistent with (the cursor once it is complete).
    pub head: i64,
    /// Where the next page starts (an offset into the user's cases), or `None` when complete.
    pub next: Option<i64>,
    /// The feed head when this page was read (beyond `head`: more happened meanwhile).
    pub current: i64,
}

/// What a snapshot page should contain besides cases.
#[derive(Clone, Copy, Debug)]
pub struct SnapshotExtras {
    /// The catalog and the user's latest notifications (the first page of a snapshot).
    pub catalog_and_inbox: bool,
    /// Revokes after this position for cases the user no longer sees (a device that was far
    /// behind may still hold them).
    pub revoked_after: Option<i64>,
}

impl SnapshotExtras {
    /// Cases only (the later pages of a snapshot).
    pub fn none() -> Self {
        Self {
            catalog_and_inbox: false,
            revoked_after: None,
        }
    }
}

/// How many of the user's latest notifications a snapshot carries.
const SNAPSHOT_NOTIFICATIONS: i64 = 50;

/// The largest catalog a snapshot carries, per list.
const SNAPSHOT_CATALOG: i64 = 1000;

/// The actor a viewer reads as.
fn actor_of(viewer: &FeedViewer) -> Actor {
    match viewer {
        FeedViewer::Patient(u) => Actor::Patient(UserId::new(u.clone())),
        FeedViewer::Doctor(u) => Actor::Doctor(UserId::new(u.clone())),
    }
}

/// Builds the items of one page, remembering what it sent already.
struct PageBuilder<'a> {
    actor: &'a Actor,
    /// The feed position the page reaches: documents are sent as of it.
    upto: i64,
    cases: HashMap<Uuid, Option<Case>>,
    records_sent: HashSet<Uuid>,
    docs_sent: HashSet<Uuid>,
    revoked: HashSet<Uuid>,
    items: Vec<Pulled>,
}

impl<'a> PageBuilder<'a> {
    fn new(actor: &'a Actor, upto: i64) -> Self {
        Self {
            actor,
            upto,
            cases: HashMap::new(),
            records_sent: HashSet::new(),
            docs_sent: HashSet::new(),
            revoked: HashSet::new(),
            items: Vec::new(),
        }
    }

    async fn case<T: Tx>(&mut self, tx: &mut T, id: Uuid) -> Result<Option<Case>, StoreError> {
        if let Some(known) = self.cases.get(&id) {
            return Ok(known.clone());
        }
        let loaded = match load(tx, CaseId(id)).await? {
            Some((case, _)) => Some(read_current_intake(tx, case).await?),
            None => None,
        };
        self.cases.insert(id, loaded.clone());
        Ok(loaded)
    }

    fn record(&mut self, case: &Case) {
        if self.records_sent.insert(case.case_id.0) {
            self.items.push(Pulled::Case(Box::new(case.clone())));
        }
    }

    /// The whole current case: its record and every document the user may see, as snapshots
    /// as of the page's end (what follows comes as changes in later pages).
    async fn whole_case<T: Tx>(&mut self, tx: &mut T, case: &Case) -> Result<(), StoreError> {
        self.record(case);
        for row in tx.case_docs(case.case_id.0).await? {
            let doc_ref = doc_ref_of(&row)?;
            if !can_view(case, self.actor, &doc_resource(&doc_ref.kind)) {
                continue;
            }
            self.snapshot_doc(tx, doc_ref, &row).await?;
        }
        Ok(())
    }

    /// A document's snapshot as of the page's end; its later rows in this page are skipped.
    async fn snapshot_doc<T: Tx>(
        &mut self,
        tx: &mut T,
        doc_ref: DocRef,
        row: &DocRow,
    ) -> Result<(), StoreError> {
        let (data, heads) = content_upto(tx, row, self.upto).await?;
        self.docs_sent.insert(row.doc_id);
        self.items.push(Pulled::Content {
            doc_ref,
            data,
            heads,
        });
        Ok(())
    }

    async fn row<T: Tx>(
        &mut self,
        tx: &mut T,
        row: FeedRow,
        grants: &HashMap<Uuid, i64>,
    ) -> Result<(), StoreError> {
        match row.kind.as_str() {
            kind::NOTIFICATION => {
                self.items.push(Pulled::Notification {
                    case_id: row.case_id.map(CaseId),
                    notification: row.payload.map(|p| p.0).unwrap_or(Value::Null),
                });
                return Ok(());
            }
            kind::CATALOG => {
                self.items.push(Pulled::Catalog(
                    row.payload.map(|p| p.0).unwrap_or(Value::Null),
                ));
                return Ok(());
            }
            _ => {}
        }
        let Some(case_id) = row.case_id else {
            return Ok(());
        };
        // A grant still ahead in this pull sequence brings the whole case: skip its past.
        if grants.get(&case_id).is_some_and(|&g| row.seq < g) {
            return Ok(());
        }
        let Some(case) = self.case(tx, case_id).await? else {
            return Ok(());
        };
        match row.kind.as_str() {
            kind::ACCESS_REVOKED => {
                self.revoked.insert(case_id);
                self.records_sent.remove(&case_id);
                self.items.push(Pulled::Revoked(CaseId(case_id)));
            }
            kind::ACCESS_GRANTED | kind::CONTENT_REFRESH => {
                if !sees_case(&case, self.actor) {
                    return Ok(());
                }
                self.revoked.remove(&case_id);
                if row.kind == kind::ACCESS_GRANTED {
                    self.items.push(Pulled::Granted(CaseId(case_id)));
                }
                self.records_sent.remove(&case_id);
                self.whole_case(tx, &case).await?;
            }
            _ if self.revoked.contains(&case_id) || !sees_case(&case, self.actor) => {}
            kind::CASE => self.record(&case),
            kind::CONTENT => self.content(tx, &case, row).await?,
            _ => {}
        }
        Ok(())
    }

    async fn content<T: Tx>(
        &mut self,
        tx: &mut T,
        case: &Case,
        row: FeedRow,
    ) -> Result<(), StoreError> {
        let Some(doc_id) = row.doc_id else {
            return Ok(());
        };
        if self.docs_sent.contains(&doc_id) {
            return Ok(());
        }
        let payload = row.payload.map(|p| p.0).unwrap_or(Value::Null);
        let kind: ContentKind = serde_json::from_value(payload["kind"].clone())
            .map_err(|e| StoreError::Corrupt(format!("feed row {}: {e}", row.seq)))?;
        if !can_view(case, self.actor, &doc_resource(&kind)) {
            return Ok(());
        }
        let doc_ref = DocRef::new(case.case_id, kind);
        match row.data {
            Some(data) => {
                let heads = serde_json::from_value(payload["heads"].clone())
                    .map_err(|e| StoreError::Corrupt(format!("feed row {}: {e}", row.seq)))?;
                self.items.push(Pulled::Content {
                    doc_ref,
                    data,
                    heads,
                });
            }
            // Compacted away: the document's snapshot carries these changes and every later one.
            None => {
                if let Some(doc) = tx.content_doc(doc_id).await? {
                    self.snapshot_doc(tx, doc_ref, &doc).await?;
                }
            }
        }
        Ok(())
    }
}

async fn feed_page_in<T: Tx>(
    tx: &mut T,
    viewer: &FeedViewer,
    after: i64,
    limit: i64,
) -> Result<FeedPage, StoreError> {
    tx.repeatable_read().await?;
    let head = tx.feed_head().await?;
    if after >= head {
        return Ok(FeedPage {
            items: Vec::new(),
            head,
            end: after.max(head),
            more: false,
        });
    }
    let rows = tx.feed_page(viewer, after, head, limit).await?;
    let more = i64::try_from(rows.len()).unwrap_or(i64::MAX) >= limit;
    let end = match rows.last() {
        Some(last) if more => last.seq,
        _ => head,
    };
    let grants: HashMap<Uuid, i64> = tx
        .feed_grants(viewer.user(), after, head)
        .await?
        .into_iter()
        .collect();
    let actor = actor_of(viewer);
    let mut page = PageBuilder::new(&actor, end);
    for row in rows {
        page.row(tx, row, &grants).await?;
    }
    Ok(FeedPage {
        items: page.items,
        head,
        end,
        more: more && end < head,
    })
}

/// The case ids of one snapshot page from `offset` on, and where the next page starts.
///
/// The candidates (the cases a patient owns, the cases a doctor was ever assigned to) only
/// ever grow, so resuming at an offset never skips a case: a case added meanwhile at most
/// moves one already sent into the next page (sent twice, harmlessly), and itself arrives
/// through the feed after the snapshot. Candidates the user does not see are skipped later.
async fn snapshot_ids<T: Tx>(
    tx: &mut T,
    viewer: &FeedViewer,
    offset: i64,
    max_cases: i64,
) -> Result<(Vec<Uuid>, Option<i64>), StoreError> {
    let ids = tx.viewer_cases(viewer, offset, max_cases).await?;
    let taken = i64::try_from(ids.len()).unwrap_or(i64::MAX);
    let next = (taken >= max_cases).then(|| offset.saturating_add(taken));
    Ok((ids, next))
}

async fn snapshot_in<T: Tx>(
    tx: &mut T,
    viewer: &FeedViewer,
    head: Option<i64>,
    offset: i64,
    max_cases: i64,
    extras: SnapshotExtras,
) -> Result<SnapshotPage, StoreError> {
    tx.repeatable_read().await?;
    let current = tx.feed_head().await?;
    let head = head.unwrap_or(current);
    let actor = actor_of(viewer);
    let mut page = PageBuilder::new(&actor, head);
    if extras.catalog_and_inbox {
        snapshot_extras(tx, viewer, &mut page.items).await?;
    }
    if let Some(after) = extras.revoked_after {
        for case_id in tx.feed_revoked(viewer.user(), after, current).await? {
            let still_sees = page
                .case(tx, case_id)
                .await?
                .is_some_and(|c| sees_case(&c, &actor));
            if !still_sees {
                page.items.push(Pulled::Revoked(CaseId(case_id)));
            }
        }
    }
    let (ids, next) = snapshot_ids(tx, viewer, offset, max_cases).await?;
    for id in ids {
        if let Some(case) = page.case(tx, id).await?
            && sees_case(&case, &actor)
        {
            page.whole_case(tx, &case).await?;
        }
    }
    Ok(SnapshotPage {
        items: page.items,
        head,
        next,
        current,
    })
}

/// The catalog and the user's latest notifications, for the first page of a snapshot.
async fn snapshot_extras<T: Tx>(
    tx: &mut T,
    viewer: &FeedViewer,
    items: &mut Vec<Pulled>,
) -> Result<(), StoreError> {
    let all = super::sql::Window {
        limit: SNAPSHOT_CATALOG,
        offset: 0,
    };
    let (review_types, _) = tx.list_review_types(false, all).await?;
    items.extend(
        review_types
            .iter()
            .map(|rt| Pulled::Catalog(review_type_payload(rt))),
    );
    let (categories, _) = tx.list_categories(false, None, all).await?;
    items.extend(
        categories
            .iter()
            .map(|dc| Pulled::Catalog(category_payload(dc))),
    );
    let latest = super::sql::Window {
        limit: SNAPSHOT_NOTIFICATIONS,
        offset: 0,
    };
    let (notifications, _) = tx
        .list_notifications(&[viewer.user().to_owned()], latest)
        .await?;
    // Oldest first, like the feed.
    for n in notifications.into_iter().rev() {
        items.push(Pulled::Notification {
            case_id: Some(CaseId(n.case_id)),
            notification: serde_json::to_value(&n)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        });
    }
    Ok(())
}

impl Store {
    /// The feed after `after` as `viewer` may see it now: at most `limit` rows read (a page
    /// may hold fewer items, or more when a grant expands into a whole case).
    pub async fn pull_feed(
        &self,
        viewer: &FeedViewer,
        after: i64,
        limit: i64,
    ) -> Result<FeedPage, StoreError> {
        read_tx!(&self.db, |tx| feed_page_in(
            &mut tx,
            viewer,
            after,
            limit.max(1)
        )
        .await)
    }

    /// A page of whole cases (record plus document snapshots as of `head`) that `viewer` sees:
    /// at most `max_cases` candidates from `offset` on (see `snapshot_ids`), consistent with
    /// the feed at `head` (`None`: now).
    pub async fn pull_snapshot(
        &self,
        viewer: &FeedViewer,
        head: Option<i64>,
        offset: i64,
        max_cases: i64,
        extras: SnapshotExtras,
    ) -> Result<SnapshotPage, StoreError> {
        read_tx!(&self.db, |tx| {
            snapshot_in(&mut tx, viewer, head, offset, max_cases.max(1), extras).await
        })
    }

    /// Records several audited actions of one request in one transaction (a pull's reads).
    pub async fn audit_all(
        &self,
        meta: &AuditMeta,
        entries: Vec<AuditEntry<'_>>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let pending = entries
            .into_iter()
            .map(|entry| PendingAudit::new(meta, entry, now))
            .collect();
        super::write_tx!(&self.db, |tx| audit::append_all(&mut tx, pending).await)
    }

    /// The feed head: the newest position.
    pub async fn feed_head(&self) -> Result<i64, StoreError> {
        Ok(read_tx!(&self.db, |tx| tx.feed_head().await)?)
    }
}
