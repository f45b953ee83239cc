//! The SQL of the device store's tables, one small function per statement. All take the open
//! transaction, so a user action's local effect and its outbox entry commit together.

use super::cases;
use super::error::{DeviceError, Result};
use crate::Timestamp;
use crate::access::ContentKind;
use crate::case::Case;
use crate::catalog::{Catalog, DiseaseCategory, ReviewType};
use crate::command::Command;
use crate::content::{ChangeHash, ContentDoc, DocId, DocKind, DocRef};
use crate::ids::CaseId;
use crate::lang::Lang;
use crate::sync::wire::{CommandOp, Op, OpId};
use automerge::ActorId;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

pub(crate) fn json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| DeviceError::storage(format!("encode: {e}")))
}

pub(crate) fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| DeviceError::storage(format!("decode: {e}")))
}

pub(crate) fn now_text(now: Timestamp) -> String {
    now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

// ---------------------------------------------------------------------------------------------
// Cases

/// A case row.
pub(crate) struct CaseRow {
    /// The server's record as delivered (`None`: the server has never seen the case).
    pub record: Option<String>,
    /// The core case rebuilt from the record.
    pub base: Option<Case>,
    /// The case after the queued commands.
    pub local: Case,
}

pub(crate) fn case_row(conn: &Connection, case_id: CaseId) -> Result<Option<CaseRow>> {
    let row: Option<(Option<String>, Option<String>, String)> = conn
        .query_row(
            "SELECT record, base, local FROM cases WHERE case_id = ?1",
            [case_id.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((record, base, local)) = row else {
        return Ok(None);
    };
    Ok(Some(CaseRow {
        record,
        base: base.as_deref().map(parse).transpose()?,
        local: parse(&local)?,
    }))
}

pub(crate) fn case_exists(conn: &Connection, case_id: CaseId) -> Result<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM cases WHERE case_id = ?1",
            [case_id.to_string()],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Writes a case row (the list columns are derived from `local`).
pub(crate) fn put_case(conn: &Connection, row: &CaseRow, lang: Lang, now: Timestamp) -> Result<()> {
    let record: Option<Value> = row.record.as_deref().map(parse).transpose()?;
    let cols = cases::list_columns(&row.local, record.as_ref(), lang, now);
    conn.execute(
        "INSERT INTO cases (case_id, record, base, local, status, reference, sub_state,
                            card_title, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (case_id) DO UPDATE SET record = excluded.record, base = excluded.base,
             local = excluded.local, status = excluded.status, reference = excluded.reference,
             sub_state = excluded.sub_state, card_title = excluded.card_title,
             updated_at = excluded.updated_at",
        params![
            row.local.case_id.to_string(),
            row.record,
            row.base.as_ref().map(json).transpose()?,
            json(&row.local)?,
            cols.status,
            cols.reference,
            cols.sub_state,
            cols.card_title,
            cols.updated_at,
        ],
    )?;
    Ok(())
}

/// Deletes everything the device holds of a case: record, documents, queued operations,
/// pending uploads (their files are returned for the caller to delete after the commit),
/// refusals and recovered drafts.
pub(crate) fn purge_case(conn: &Connection, case_id: CaseId) -> Result<Vec<String>> {
    let id = case_id.to_string();
    let mut stmt = conn.prepare("SELECT path FROM uploads WHERE case_id = ?1")?;
    let files = stmt
        .query_map([&id], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for table in [
        "cases",
        "documents",
        "outbox",
        "uploads",
        "refusals",
        "recovered_drafts",
    ] {
        conn.execute(&format!("DELETE FROM {table} WHERE case_id = ?1"), [&id])?;
    }
    Ok(files)
}

// ---------------------------------------------------------------------------------------------
// Outbox

/// Queues a command; returns its op id.
pub(crate) fn queue_command(
    conn: &Connection,
    case_id: CaseId,
    command: &Command,
    now: Timestamp,
) -> Result<OpId> {
    let op_id = OpId(uuid::Uuid::now_v7());
    let op = Op::Command(CommandOp {
        op_id,
        case_id,
        command: command.clone(),
    });
    conn.execute(
        "INSERT INTO outbox (op_id, case_id, doc_id, op, sent, created_at)
         VALUES (?1, ?2, NULL, ?3, 0, ?4)",
        params![
            op_id.0.to_string(),
            case_id.to_string(),
            json(&op)?,
            now_text(now)
        ],
    )?;
    Ok(op_id)
}

/// Makes sure the document's edits are queued: nothing to do when the last queued operation is
/// an unsent change of this document (its bytes are computed when it is sent, so it already
/// covers this edit); else a new change op at the end of the queue.
pub(crate) fn queue_change(
    conn: &Connection,
    case_id: CaseId,
    doc_id: DocId,
    now: Timestamp,
) -> Result<()> {
    let tail: Option<(Option<String>, i64)> = conn
        .query_row(
            "SELECT doc_id, sent FROM outbox ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if let Some((Some(tail_doc), 0)) = &tail
        && *tail_doc == doc_id.to_string()
    {
        return Ok(());
    }
    conn.execute(
        "INSERT INTO outbox (op_id, case_id, doc_id, op, sent, created_at)
         VALUES (?1, ?2, ?3, NULL, 0, ?4)",
        params![
            uuid::Uuid::now_v7().to_string(),
            case_id.to_string(),
            doc_id.to_string(),
            now_text(now)
        ],
    )?;
    Ok(())
}

/// The commands queued for a case, in order.
pub(crate) fn queued_commands(conn: &Connection, case_id: CaseId) -> Result<Vec<Command>> {
    let mut stmt =
        conn.prepare("SELECT op FROM outbox WHERE case_id = ?1 AND doc_id IS NULL ORDER BY seq")?;
    let ops = stmt
        .query_map([case_id.to_string()], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut out = Vec::with_capacity(ops.len());
    for text in ops {
        if let Op::Command(c) = parse::<Op>(&text)? {
            out.push(c.command);
        }
    }
    Ok(out)
}

/// Operations queued for one case (all of them with `None`).
pub(crate) fn pending_count(conn: &Connection, case_id: Option<CaseId>) -> Result<i64> {
    Ok(match case_id {
        Some(id) => conn.query_row(
            "SELECT count(*) FROM outbox WHERE case_id = ?1",
            [id.to_string()],
            |r| r.get(0),
        )?,
        None => conn.query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))?,
    })
}

// ---------------------------------------------------------------------------------------------
// Documents

/// A stored content document and the heads of the server's version of it.
pub(crate) struct DocRow {
    pub doc: ContentDoc,
    pub server_heads: Vec<ChangeHash>,
}

fn parse_heads(text: &str) -> Result<Vec<ChangeHash>> {
    let hex: Vec<String> = parse(text)?;
    hex.iter()
        .map(|h| h.parse().map_err(|_| DeviceError::storage("stored heads")))
        .collect()
}

pub(crate) fn heads_text(heads: &[ChangeHash]) -> Result<String> {
    json(&heads.iter().map(ToString::to_string).collect::<Vec<_>>())
}

pub(crate) fn doc_row(
    conn: &Connection,
    doc_id: DocId,
    kind: DocKind,
    actor: &ActorId,
) -> Result<Option<DocRow>> {
    let row: Option<(Vec<u8>, String)> = conn
        .query_row(
            "SELECT data, server_heads FROM documents WHERE doc_id = ?1",
            [doc_id.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((data, heads)) = row else {
        return Ok(None);
    };
    Ok(Some(DocRow {
        doc: ContentDoc::load(kind, &data, actor.clone())?,
        server_heads: parse_heads(&heads)?,
    }))
}

pub(crate) fn put_doc(
    conn: &Connection,
    doc_ref: &DocRef,
    doc: &ContentDoc,
    server_heads: &[ChangeHash],
) -> Result<()> {
    conn.execute(
        "INSERT INTO documents (doc_id, case_id, kind, data, server_heads)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (doc_id) DO UPDATE SET data = excluded.data,
             server_heads = excluded.server_heads",
        params![
            doc_ref.doc_id().to_string(),
            doc_ref.case_id.to_string(),
            json(&doc_ref.kind)?,
            doc.save(),
            heads_text(server_heads)?
        ],
    )?;
    Ok(())
}

pub(crate) fn doc_kind_of(conn: &Connection, doc_id: &str) -> Result<Option<ContentKind>> {
    let kind: Option<String> = conn
        .query_row(
            "SELECT kind FROM documents WHERE doc_id = ?1",
            [doc_id],
            |r| r.get(0),
        )
        .optional()?;
    kind.as_deref().map(parse).transpose()
}

// ---------------------------------------------------------------------------------------------
// Catalog

/// The catalog as the device knows it, from the feed's entries. Categories carry no eligible
/// doctors (the feed does not send them): the rules that need them are left to the server.
pub(crate) fn catalog(conn: &Connection) -> Result<Catalog> {
    let mut stmt = conn.prepare("SELECT json FROM catalog")?;
    let entries = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut catalog = Catalog::default();
    for text in entries {
        let v: Value = parse(&text)?;
        match v.get("type").and_then(Value::as_str) {
            Some("review_type") => {
                if let Some(rt) = v
                    .get("review_type")
                    .and_then(|rt| ReviewType::deserialize(rt).ok())
                {
                    catalog.review_types.push(rt);
                }
            }
            Some("disease_category") => {
                if let Some(dc) = v.get("disease_category") {
                    let mut dc = dc.clone();
                    dc["doctor_ids"] = Value::Array(Vec::new());
                    if let Ok(dc) = DiseaseCategory::deserialize(&dc) {
                        catalog.categories.push(dc);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(catalog)
}

use serde::Deserialize as _;

/// Stores a catalog entry from the feed under its type and id.
pub(crate) fn put_catalog(conn: &Connection, entry: &Value) -> Result<()> {
    let kind = entry.get("type").and_then(Value::as_str).unwrap_or("other");
    let id = entry
        .get(kind)
        .and_then(|e| e.get("rt_id").or_else(|| e.get("dc_id")))
        .map(Value::to_string)
        .unwrap_or_else(|| entry.to_string());
    conn.execute(
        "INSERT INTO catalog (key, json) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET json = excluded.json",
        params![format!("{kind}:{id}"), entry.to_string()],
    )?;
    Ok(())
}
