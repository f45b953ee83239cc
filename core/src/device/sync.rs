//! The sync client: upload pending files, then exchange (push the outbox, pull from the cursor)
//! until the server has nothing more, applying each answer in one transaction.
//!
//! **Push.** Queued operations go in the order the user made them, at most
//! `Limits::max_push_ops` per exchange. A change op gets its bytes when first sent — the
//! document's changes after the server heads the device knows — and they are stored with it, so
//! a retried push (the answer was lost) resends the same op and the server answers `duplicate`.
//! Later unsent change ops of the same document in the batch are dropped: the first one already
//! carries their changes. An `UploadDocument` whose file is not uploaded yet stops the batch
//! there (order matters: later ops may depend on it).
//!
//! **Answers.** `applied`/`duplicate`: the op leaves the outbox. `refused`: the op leaves the
//! outbox and the refusal is kept; for a command the case is recomputed from the server's state
//! (rolled back), for a content change the document goes back to the server's version, the
//! other queued changes of that document are dropped, and what was typed is kept as a recovered
//! draft (`content::recovered_draft`).
//!
//! **Feed.** Case records replace the server state (then the queued commands are replayed on
//! it); content is merged into the documents; notifications and catalog entries are stored;
//! `access_revoked` purges the case.

use super::cases;
use super::error::{DeviceError, Result};
use super::net;
use super::rows::{self, json, now_text, parse};
use super::types::SyncReport;
use super::{Device, lock, now};
use crate::access::ContentKind;
use crate::command::Command;
use crate::content::{self, ContentDoc, DocRef};
use crate::ids::CaseId;
use crate::refusal::Refusal;
use crate::rules::Limits;
use crate::sync::wire::{
    ChangeOp, Cursor, ExchangeRequest, ExchangeResponse, FeedItem, Op, OpId, Outcome, PullRequest,
    PushRequest,
};
use rusqlite::{Transaction, params};
use std::collections::BTreeSet;

/// At most this many exchanges per `sync()` (a safety stop; a device this far behind gets
/// snapshot pages, 50 cases each).
const MAX_ROUNDS: usize = 10_000;

/// An outbox row: seq, op id, case id, doc id (change ops), op (once known).
type OutboxRow = (i64, String, String, Option<String>, Option<String>);

/// The outbox rows of one push, in order.
pub(crate) struct Batch {
    pub ops: Vec<Op>,
    /// Row `seq`s, parallel to `ops`.
    pub seqs: Vec<i64>,
}

impl Batch {
    #[cfg(test)]
    pub fn empty() -> Self {
        Batch {
            ops: Vec::new(),
            seqs: Vec::new(),
        }
    }
}

impl Device {
    /// Uploads pending files, pushes the outbox and pulls until the feed is drained. Transport
    /// errors and 5xx answers are retried with backoff, then reported as `Offline`; what was
    /// done before stays done, and nothing queued is lost.
    pub fn sync(&self) -> Result<SyncReport> {
        let _one_at_a_time = lock(&self.syncing);
        let client = net::client()?;
        let mut report = SyncReport {
            uploaded_bytes: self.upload_pending(&client)?,
            ..SyncReport::default()
        };
        let mut changed: BTreeSet<String> = BTreeSet::new();
        let mut round = 0;
        let result = loop {
            round += 1;
            if round > MAX_ROUNDS {
                break Ok(());
            }
            let batch = self.prepare_push()?;
            let cursor = self.read(cursor)?;
            let request = ExchangeRequest {
                push: PushRequest {
                    device_id: self.device_id,
                    ops: batch.ops.clone(),
                },
                pull: PullRequest {
                    cursor,
                    limit: None,
                },
            };
            let endpoint = lock(&self.endpoint).clone();
            let response: ExchangeResponse =
                match net::post(&client, &endpoint, "/sync/v1/exchange", &request) {
                    Ok(r) => r,
                    Err(e) => break Err(e),
                };
            report.pushed += batch.ops.len() as i64;
            let more = response.pull.more;
            let full = batch.ops.len() >= Limits::default().max_push_ops;
            self.write(|tx| {
                // The exchange may write documents (pulled content, rollbacks, purges): the
                // cache goes while the connection is held, so no edit can start from a stale
                // copy.
                self.forget_docs();
                self.apply_exchange(tx, &batch, response, &mut report, &mut changed)
            })?;
            // Ops queued while this exchange was in flight wait for the next sync.
            if !more && !full {
                break Ok(());
            }
        };
        report.pending_ops = self.pending_op_count()?;
        if !changed.is_empty() || report.pushed > 0 {
            self.notify(changed.into_iter().collect());
        }
        result.map(|()| report)
    }

    /// An `UploadDocument` whose file this device has not finished uploading.
    fn blocked_by_upload(&self, conn: &rusqlite::Connection, op: &Op) -> Result<bool> {
        let Op::Command(c) = op else {
            return Ok(false);
        };
        let Command::UploadDocument { document } = &c.command else {
            return Ok(false);
        };
        let complete: Option<i64> = conn
            .query_row(
                "SELECT complete FROM uploads WHERE document_id = ?1",
                [document.document_id.to_string()],
                |r| r.get(0),
            )
            .ok();
        // No row: attached elsewhere or already uploaded and cleaned up.
        Ok(complete == Some(0))
    }

    /// Takes the next operations to push, giving unsent change ops their bytes (stored, so a
    /// retry resends the same op).
    pub(crate) fn prepare_push(&self) -> Result<Batch> {
        self.write(|tx| {
            let max = Limits::default().max_push_ops;
            let rows: Vec<OutboxRow> = {
                let mut stmt =
                    tx.prepare("SELECT seq, op_id, case_id, doc_id, op FROM outbox ORDER BY seq")?;
                stmt.query_map([], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?
                .collect::<rusqlite::Result<_>>()?
            };
            let mut batch = Batch {
                ops: Vec::new(),
                seqs: Vec::new(),
            };
            let mut covered: BTreeSet<String> = BTreeSet::new();
            for (seq, op_id, case_id, doc_id, op) in rows {
                if batch.ops.len() >= max {
                    break;
                }
                let op = match (op, doc_id) {
                    (Some(text), _) => parse::<Op>(&text)?,
                    (None, Some(doc_id)) => {
                        if covered.contains(&doc_id) {
                            tx.execute("DELETE FROM outbox WHERE seq = ?1", [seq])?;
                            continue;
                        }
                        match self.change_op(tx, &op_id, &case_id, &doc_id)? {
                            Some(op) => {
                                covered.insert(doc_id);
                                tx.execute(
                                    "UPDATE outbox SET op = ?1, sent = 1 WHERE seq = ?2",
                                    params![json(&op)?, seq],
                                )?;
                                op
                            }
                            None => {
                                tx.execute("DELETE FROM outbox WHERE seq = ?1", [seq])?;
                                continue;
                            }
                        }
                    }
                    (None, None) => {
                        tx.execute("DELETE FROM outbox WHERE seq = ?1", [seq])?;
                        continue;
                    }
                };
                if self.blocked_by_upload(tx, &op)? {
                    break;
                }
                tx.execute("UPDATE outbox SET sent = 1 WHERE seq = ?1", [seq])?;
                batch.ops.push(op);
                batch.seqs.push(seq);
            }
            Ok(batch)
        })
    }

    /// The change op of a document: its changes after the server heads (`None` if there are
    /// none, e.g. the server already has them, or the document is gone).
    fn change_op(
        &self,
        tx: &Transaction<'_>,
        op_id: &str,
        case_id: &str,
        doc_id: &str,
    ) -> Result<Option<Op>> {
        let Some(kind) = rows::doc_kind_of(tx, doc_id)? else {
            return Ok(None);
        };
        let case_id: CaseId = super::parse_id("case id", case_id)?;
        let doc_ref = DocRef::new(case_id, kind.clone());
        let Some(row) = rows::doc_row(tx, doc_ref.doc_id(), doc_ref.doc_kind(), &self.doc_actor)?
        else {
            return Ok(None);
        };
        let change = row.doc.save_after(&row.server_heads);
        if change.is_empty() {
            return Ok(None);
        }
        Ok(Some(Op::Change(ChangeOp {
            op_id: OpId(super::parse_id("op id", op_id)?),
            doc_id: doc_ref.doc_id(),
            case_id,
            kind,
            change: change.into(),
            heads_before: row.server_heads,
        })))
    }

    /// Applies an exchange's answer: push results, then the pulled items, then the cursor.
    fn apply_exchange(
        &self,
        tx: &Transaction<'_>,
        batch: &Batch,
        response: ExchangeResponse,
        report: &mut SyncReport,
        changed: &mut BTreeSet<String>,
    ) -> Result<()> {
        let now = now();
        let mut touched: BTreeSet<CaseId> = BTreeSet::new();
        for (i, result) in response.push.results.iter().enumerate() {
            let Some(op) = batch.ops.get(i).filter(|op| op.op_id() == result.op_id) else {
                continue;
            };
            tx.execute("DELETE FROM outbox WHERE seq = ?1", [batch.seqs[i]])?;
            touched.insert(op.case_id());
            match &result.outcome {
                Outcome::Applied | Outcome::Duplicate => {
                    if result.outcome == Outcome::Applied {
                        report.applied += 1;
                    } else {
                        report.duplicates += 1;
                    }
                    if let Op::Command(c) = op {
                        self.fold_into_base(tx, c, now)?;
                    }
                }
                Outcome::Refused { .. } => {
                    report.refused += 1;
                    let refusal = result
                        .outcome
                        .refusal()
                        .unwrap_or_else(|| Refusal::field("outcome"));
                    self.keep_refusal(tx, op, &refusal, now)?;
                }
            }
            // The command of an attached file is answered: applied, the server has the file;
            // refused, the command is gone. Either way the local copy is no longer needed.
            if let Op::Command(c) = op
                && let Command::UploadDocument { document } = &c.command
            {
                self.forget_upload(tx, &document.document_id.to_string())?;
            }
        }
        for item in response.pull.items {
            report.pulled += 1;
            match item {
                FeedItem::CaseRecord { case_id, record } => {
                    self.put_record(tx, case_id, &record, now)?;
                    touched.insert(case_id);
                }
                FeedItem::Content {
                    case_id,
                    kind,
                    data,
                    heads,
                    ..
                } => {
                    self.merge_content(tx, case_id, kind, &data.0, &heads)?;
                    touched.insert(case_id);
                }
                FeedItem::Notification {
                    case_id,
                    notification,
                } => {
                    tx.execute(
                        "INSERT INTO notifications (case_id, json, received_at) VALUES (?1, ?2, ?3)",
                        params![
                            case_id.map(|c| c.to_string()),
                            notification.to_string(),
                            now_text(now)
                        ],
                    )?;
                    changed.insert(String::new());
                }
                FeedItem::Catalog { catalog } => {
                    rows::put_catalog(tx, &catalog)?;
                    changed.insert(String::new());
                }
                FeedItem::AccessGranted { case_id } => {
                    touched.insert(case_id);
                }
                FeedItem::AccessRevoked { case_id } => {
                    let files = rows::purge_case(tx, case_id)?;
                    for f in files {
                        // Best effort: a leftover copy is removed with the next purge of the dir.
                        let _ = std::fs::remove_file(f);
                    }
                    touched.remove(&case_id);
                    changed.insert(case_id.to_string());
                    report.revoked_cases += 1;
                }
            }
        }
        for case_id in &touched {
            self.recompute(tx, *case_id, now)?;
            changed.insert(case_id.to_string());
        }
        changed.remove("");
        set_cursor(tx, response.pull.cursor)?;
        Ok(())
    }

    /// The server applied a command whose record has not arrived yet: the device's idea of the
    /// server state takes it in now (the record replaces it when it comes), so the case does not
    /// fall back to before the command meanwhile. An applied creation also tells the device what
    /// the server's intake document is: the same `intake::initial` the device built.
    fn fold_into_base(
        &self,
        tx: &Transaction<'_>,
        op: &crate::sync::wire::CommandOp,
        now: crate::Timestamp,
    ) -> Result<()> {
        let Some(row) = rows::case_row(tx, op.case_id)? else {
            return Ok(());
        };
        let catalog = self.catalog_for(tx, row.base.as_ref(), std::slice::from_ref(&op.command))?;
        if let Ok(Some(base)) =
            cases::run(row.base.as_ref(), &op.command, &self.actor, &catalog, now)
        {
            rows::put_case(
                tx,
                &rows::CaseRow {
                    record: row.record,
                    base: Some(base),
                    local: row.local,
                },
                self.lang,
                now,
            )?;
        }
        if let Command::CreateCase { intake, .. } = &op.command {
            let doc_ref = DocRef::new(op.case_id, ContentKind::Intake);
            if let Some(doc) =
                rows::doc_row(tx, doc_ref.doc_id(), doc_ref.doc_kind(), &self.doc_actor)?
                && doc.server_heads.is_empty()
            {
                let server = content::intake::initial(op.case_id, intake, self.doc_actor.clone())?;
                rows::put_doc(tx, &doc_ref, &doc.doc, &server.heads())?;
            }
        }
        Ok(())
    }

    /// A server record: the new server state of the case (the local state is recomputed from
    /// it by the caller).
    fn put_record(
        &self,
        tx: &Transaction<'_>,
        case_id: CaseId,
        record: &serde_json::Value,
        now: crate::Timestamp,
    ) -> Result<()> {
        let base = cases::case_from_record(record)
            .map_err(|e| DeviceError::storage(format!("case record: {e}")))?;
        let local = match rows::case_row(tx, case_id)? {
            Some(row) => row.local,
            None => base.clone(),
        };
        rows::put_case(
            tx,
            &rows::CaseRow {
                record: Some(record.to_string()),
                base: Some(base),
                local,
            },
            self.lang,
            now,
        )
    }

    /// Merges pulled content into the device's document and records the server's heads.
    fn merge_content(
        &self,
        tx: &Transaction<'_>,
        case_id: CaseId,
        kind: ContentKind,
        data: &[u8],
        heads: &[content::ChangeHash],
    ) -> Result<()> {
        let doc_ref = DocRef::new(case_id, kind);
        let mut row = self.load_doc(tx, &doc_ref)?;
        row.doc.load_incremental(data)?;
        rows::put_doc(tx, &doc_ref, &row.doc, heads)
    }

    /// Keeps the server's refusal of `op` and undoes its local effect.
    fn keep_refusal(
        &self,
        tx: &Transaction<'_>,
        op: &Op,
        refusal: &Refusal,
        now: crate::Timestamp,
    ) -> Result<()> {
        let what = match op {
            Op::Command(c) => {
                // The case is recomputed from the server's state without this command by the
                // caller. A refused creation of a case the server never had removes the case;
                // what was typed in its intake is kept as a recovered draft.
                if let Command::CreateCase { .. } = c.command
                    && rows::case_row(tx, c.case_id)?.is_some_and(|r| r.record.is_none())
                {
                    let doc_ref = DocRef::new(c.case_id, ContentKind::Intake);
                    if let Some(row) =
                        rows::doc_row(tx, doc_ref.doc_id(), doc_ref.doc_kind(), &self.doc_actor)?
                    {
                        let empty = ContentDoc::new(doc_ref.doc_kind(), self.doc_actor.clone())?;
                        rows::purge_case(tx, c.case_id)?;
                        self.keep_draft(tx, &doc_ref, &row.doc, &empty, refusal, now)?;
                    } else {
                        rows::purge_case(tx, c.case_id)?;
                    }
                }
                c.command.name().to_owned()
            }
            Op::Change(c) => {
                self.roll_back_document(tx, c, refusal, now)?;
                format!("content:{}", content::DocKind::from(&c.kind))
            }
        };
        tx.execute(
            "INSERT INTO refusals (case_id, op_id, what, code, message_en, message_ar, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                op.case_id().to_string(),
                op.op_id().0.to_string(),
                what,
                refusal.code.to_string(),
                refusal.message_en,
                refusal.message_ar,
                now_text(now)
            ],
        )?;
        Ok(())
    }

    /// A refused change: the document goes back to the server's version, the document's other
    /// queued changes are dropped (they were built on the refused one), and the typed content
    /// is kept as a recovered draft.
    fn roll_back_document(
        &self,
        tx: &Transaction<'_>,
        op: &ChangeOp,
        refusal: &Refusal,
        now: crate::Timestamp,
    ) -> Result<()> {
        let doc_ref = DocRef::new(op.case_id, op.kind.clone());
        let Some(mut row) =
            rows::doc_row(tx, doc_ref.doc_id(), doc_ref.doc_kind(), &self.doc_actor)?
        else {
            return Ok(());
        };
        let server = if row.server_heads.is_empty() {
            ContentDoc::new(doc_ref.doc_kind(), self.doc_actor.clone())?
        } else {
            row.doc.fork_at(&row.server_heads)?
        };
        self.keep_draft(tx, &doc_ref, &row.doc, &server, refusal, now)?;
        row.doc.reset_to(&server)?;
        rows::put_doc(tx, &doc_ref, &row.doc, &row.server_heads)?;
        tx.execute(
            "DELETE FROM outbox WHERE doc_id = ?1",
            [doc_ref.doc_id().to_string()],
        )?;
        Ok(())
    }

    fn keep_draft(
        &self,
        tx: &Transaction<'_>,
        doc_ref: &DocRef,
        local: &ContentDoc,
        server: &ContentDoc,
        refusal: &Refusal,
        now: crate::Timestamp,
    ) -> Result<()> {
        let Some(draft) = content::recovered_draft(local, server)? else {
            return Ok(());
        };
        tx.execute(
            "INSERT INTO recovered_drafts (case_id, doc_id, kind, content, fields, code,
                                           message_en, message_ar, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                doc_ref.case_id.to_string(),
                doc_ref.doc_id().to_string(),
                doc_ref.doc_kind().as_str(),
                json(&draft.content)?,
                json(&draft.fields)?,
                refusal.code.to_string(),
                refusal.message_en,
                refusal.message_ar,
                now_text(now)
            ],
        )?;
        Ok(())
    }
}

fn cursor(conn: &rusqlite::Connection) -> Result<Cursor> {
    Ok(match super::store::meta(conn, "cursor")? {
        Some(c) => Cursor(
            c.parse()
                .map_err(|_| DeviceError::storage("stored cursor"))?,
        ),
        None => Cursor::default(),
    })
}

fn set_cursor(conn: &rusqlite::Connection, cursor: Cursor) -> Result<()> {
    super::store::set_meta(conn, "cursor", &cursor.0.to_string())
}

#[cfg(test)]
pub(crate) mod tests_support {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::sync::wire::{OpResult, PullResponse, PushResponse};

    /// Applies a made-up server answer to `batch` as `sync()` would.
    pub fn apply_answer(
        device: &Device,
        batch: &Batch,
        outcomes: Vec<Outcome>,
        items: Vec<FeedItem>,
    ) {
        let response = ExchangeResponse {
            push: PushResponse {
                results: batch
                    .ops
                    .iter()
                    .zip(outcomes)
                    .map(|(op, outcome)| OpResult {
                        op_id: op.op_id(),
                        outcome,
                    })
                    .collect(),
            },
            pull: PullResponse {
                items,
                cursor: Cursor(1),
                more: false,
            },
        };
        let mut report = SyncReport::default();
        let mut changed = BTreeSet::new();
        device
            .write(|tx| {
                device.forget_docs();
                device.apply_exchange(tx, batch, response, &mut report, &mut changed)
            })
            .unwrap();
    }
}
