//! What a write transaction already holds, so a push's later units do not ask the database
//! again (docs/PERFORMANCE.md, fourth round): the cases it locked, as it last read or wrote
//! them, and the `content_docs` rows (without snapshot) it read or wrote, whose new heads are
//! written once, at commit ([`Held::unwritten`]), however many units wrote the document.
//!
//! Safe because every writer of a case's row or of its documents holds the case's row lock
//! (`SELECT … FOR UPDATE`) until it commits: what this transaction read stays true until then,
//! except for its own writes, which go through here. A part undone by a savepoint forgets what
//! it added here too ([`Held::rewind`]), which also matters because PostgreSQL releases a row
//! lock taken after a savepoint that is rolled back.

use super::rows::DocRow;
use chrono::{DateTime, Utc};
use sop_core::case::Case;
use sqlx::types::Json;
use std::collections::HashMap;
use uuid::Uuid;

/// A document row as this transaction knows it.
#[derive(Clone, Debug)]
struct KnownRow {
    row: DocRow,
    /// Content rows added whose heads are not written yet.
    unwritten: i32,
}

/// The cases and document rows of one write transaction (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Held {
    cases: HashMap<Uuid, (Case, i64)>,
    rows: HashMap<Uuid, KnownRow>,
    /// While a part that may be undone is open: the previous values.
    undo: Option<Undo>,
}

#[derive(Debug, Default)]
struct Undo {
    cases: Vec<(Uuid, Option<(Case, i64)>)>,
    rows: Vec<(Uuid, Option<KnownRow>)>,
}

/// Sets `map[key]`, keeping the previous value in `undo` when a part is open.
fn set<V>(map: &mut HashMap<Uuid, V>, undo: Option<&mut Vec<(Uuid, Option<V>)>>, key: Uuid, v: V) {
    let before = map.insert(key, v);
    if let Some(undo) = undo {
        undo.push((key, before));
    }
}

/// Puts back the values `undo` kept, newest first.
fn restore<V>(map: &mut HashMap<Uuid, V>, undo: Vec<(Uuid, Option<V>)>) {
    for (key, before) in undo.into_iter().rev() {
        match before {
            Some(v) => map.insert(key, v),
            None => map.remove(&key),
        };
    }
}

impl Held {
    /// The case `case_id` with its version, if this transaction locked it.
    pub(crate) fn case(&self, case_id: Uuid) -> Option<(Case, i64)> {
        self.cases.get(&case_id).cloned()
    }

    /// The case as this transaction just read (locking it) or wrote it.
    pub(crate) fn set_case(&mut self, case: Case, version: i64) {
        let undo = self.undo.as_mut().map(|u| &mut u.cases);
        set(&mut self.cases, undo, case.case_id.0, (case, version));
    }

    /// The row of document `doc_id` (no snapshot), if this transaction read or wrote it.
    pub(crate) fn doc_row(&self, doc_id: Uuid) -> Option<DocRow> {
        self.rows.get(&doc_id).map(|k| k.row.clone())
    }

    /// A row this transaction just read (its snapshot left out).
    pub(crate) fn set_doc_row(&mut self, row: DocRow) {
        let undo = self.undo.as_mut().map(|u| &mut u.rows);
        let known = KnownRow { row, unwritten: 0 };
        set(&mut self.rows, undo, known.row.doc_id, known);
    }

    /// A content row was added to document `doc_id`, leaving `heads`: recorded here and
    /// written at commit. Answers false when the row is not known here (the caller writes it).
    pub(crate) fn add_content(
        &mut self,
        doc_id: Uuid,
        heads: &[String],
        at: DateTime<Utc>,
    ) -> bool {
        let Some(known) = self.rows.get(&doc_id) else {
            return false;
        };
        let mut known = known.clone();
        known.row.heads = Json(heads.to_vec());
        known.row.pending += 1;
        known.row.updated_at = at;
        known.unwritten += 1;
        let undo = self.undo.as_mut().map(|u| &mut u.rows);
        set(&mut self.rows, undo, doc_id, known);
        true
    }

    /// Document `doc_id` was frozen at `heads`.
    pub(crate) fn froze(&mut self, doc_id: Uuid, heads: &[String], at: DateTime<Utc>) {
        if let Some(known) = self.rows.get(&doc_id) {
            let mut known = known.clone();
            known.row.frozen_heads = Some(Json(heads.to_vec()));
            known.row.frozen_at = Some(at);
            let undo = self.undo.as_mut().map(|u| &mut u.rows);
            set(&mut self.rows, undo, doc_id, known);
        }
    }

    /// The heads to write at commit: (document, heads, content rows added, when).
    pub(crate) fn unwritten(&self) -> Vec<(Uuid, &[String], i32, DateTime<Utc>)> {
        self.rows
            .values()
            .filter(|k| k.unwritten > 0)
            .map(|k| {
                let r = &k.row;
                (r.doc_id, r.heads.0.as_slice(), k.unwritten, r.updated_at)
            })
            .collect()
    }

    /// Opens a part that may be undone (one at a time).
    pub(crate) fn mark(&mut self) {
        self.undo = Some(Undo::default());
    }

    /// Keeps the open part.
    pub(crate) fn keep(&mut self) {
        self.undo = None;
    }

    /// Forgets what the open part set.
    pub(crate) fn rewind(&mut self) {
        let undo = self.undo.take().unwrap_or_default();
        restore(&mut self.cases, undo.cases);
        restore(&mut self.rows, undo.rows);
    }
}
