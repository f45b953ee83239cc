//! Applying content changes pushed by a device to the server's document (DESIGN.md §3, "content
//! validation before commit"), and the write-permission rule the server checks first.
//!
//! The server calls, per pushed content operation: [`check_write`] (who may write this document
//! now), then, once per document and request, [`apply_remote_batch`] with every operation of that
//! document in the order the device made them. Each operation's bytes are one or more Automerge
//! changes, concatenated (what [`ContentDoc::save_after`] gives). An operation is refused when:
//!
//! - its bytes exceed `Limits::max_change_bytes` → `change_too_large`;
//! - they do not decode as whole, checksum-valid change chunks (garbage, truncated, a document
//!   chunk, a forged genesis) → `change_malformed`. The chunks are split and decoded one by one
//!   here because `load_incremental` applies the valid prefix of a truncated input and still
//!   returns `Ok`;
//! - a change depends on a change neither the document nor an earlier accepted operation of the
//!   batch has, or a claimed `heads_before` is unknown → `change_missing_deps` (Automerge would
//!   queue such a change silently: checked before applying, and `get_missing_deps` after);
//! - the resulting document is not schema-valid ([`super::validate`]) → `document_invalid` /
//!   `text_too_long`, or its compacted save exceeds `Limits::max_document_bytes` →
//!   `document_too_large`.
//!
//! **Batching.** Applying changes one call at a time costs time proportional to the document's
//! history per call (TECH-NOTES: ~7 ms per change at 10k changes), so the fast path applies every
//! accepted change of the batch in **one** `apply_changes` call on one copy, then validates once.
//! Validity is a property of the committed document, which is the only state anyone reads (pulls
//! and freezes see batch boundaries). Only when that whole-batch result is refused does the slow
//! path judge the operations one at a time, each on the document left by the accepted ones before
//! it, so a bad operation is refused alone and the others still apply, in order. The slow path
//! costs a copy and an apply per operation: it is the price of a batch holding a bad change.
//! One call walks the whole history of the objects it touches, whatever the batch size
//! (`cargo bench -p sop-core --bench apply`), so the server's own edits are not applied as
//! changes at all: [`apply_local_edit`] makes them on the document and gives them the same
//! checks.

use super::doc::{genesis_actor, genesis_hash};
use super::id::DocRef;
use super::{ContentDoc, DocKind, over_limit, validate};
use crate::access::{ContentKind, may_write};
use crate::actor::Actor;
use crate::case::Case;
use crate::refusal::{Refusal, RefusalCode};
use crate::rules::Limits;
use automerge::{ActorId, Change, ChangeHash};
use std::collections::{BTreeSet, HashSet};

/// One pushed content operation: change bytes and the heads the device had before making them.
#[derive(Clone, Copy, Debug)]
pub struct RemoteChange<'a> {
    pub bytes: &'a [u8],
    pub heads_before: &'a [ChangeHash],
}

/// An accepted operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The changes this operation added (changes the document already had are not repeated).
    pub added: Vec<ChangeHash>,
    /// The document's heads after this operation (sorted).
    pub new_heads: Vec<ChangeHash>,
}

/// What a batch did to one document.
#[derive(Clone, Debug)]
pub struct BatchOutcome {
    /// The document with every accepted operation applied (a copy: the input is untouched).
    pub doc: ContentDoc,
    /// One result per operation, in order.
    pub results: Vec<Result<Applied, Refusal>>,
    /// The changes the accepted operations added, as they came (concatenated chunks, in the
    /// order applied): what the document gained, which the server stores without re-encoding
    /// it from the document (`save_after` rebuilds every change from the op set).
    pub added_bytes: Vec<u8>,
}

impl BatchOutcome {
    /// Whether any operation added a change.
    pub fn changed(&self) -> bool {
        self.results
            .iter()
            .any(|r| r.as_ref().is_ok_and(|a| !a.added.is_empty()))
    }
}

/// Whether `actor` may write the document `doc_ref` of `case` now: [`may_write`] (DESIGN.md §2
/// table), except that a refusal because the text was already submitted (the intake after T2/T3,
/// an opinion after T14, the summary after T15) becomes `content_frozen`, so the device knows
/// its edit came too late and keeps it as a recovered draft.
pub fn check_write(case: &Case, actor: &Actor, doc_ref: &DocRef) -> Result<(), Refusal> {
    if doc_ref.case_id != case.case_id {
        return Err(Refusal::new(RefusalCode::CaseNotFound));
    }
    match may_write(case, actor, &doc_ref.kind) {
        Err(r)
            if matches!(
                r.code,
                RefusalCode::InvalidStatus | RefusalCode::OpinionAlreadySubmitted
            ) && submitted(case, &doc_ref.kind) =>
        {
            Err(Refusal::with_status(
                RefusalCode::ContentFrozen,
                Some(case.status),
            ))
        }
        other => other,
    }
}

fn submitted(case: &Case, kind: &ContentKind) -> bool {
    match kind {
        ContentKind::Intake => case.submitted_at.is_some(),
        ContentKind::Notes(_) => false,
        ContentKind::Opinion(doctor) => case
            .active_specialist(doctor)
            .is_some_and(|a| a.opinion_submitted_at.is_some()),
        ContentKind::Summary => case.summary_submitted_at.is_some(),
    }
}

/// Applies one operation to a copy of `doc`: [`apply_remote_batch`] with a batch of one.
pub fn apply_remote(
    doc: &ContentDoc,
    change: RemoteChange<'_>,
    limits: &Limits,
) -> Result<(ContentDoc, Applied), Refusal> {
    let mut outcome = apply_remote_batch(doc, &[change], limits);
    match outcome.results.pop() {
        Some(Ok(applied)) => Ok((outcome.doc, applied)),
        Some(Err(refusal)) => Err(refusal),
        None => Err(malformed()),
    }
}

/// An edit the server makes itself (the API's save endpoints, `UpdateIntake`'s patch), made
/// with the typed setters on `doc` and checked like a pushed change: its change within
/// `max_change_bytes`, the edited document schema-valid and within its size limit. No second
/// `apply_changes` of the change onto a copy (each costs a walk of the edited object's whole
/// history: docs/PERFORMANCE.md). On a refusal `doc` holds the refused edit: drop it. Answers
/// whether the edit changed anything.
pub fn apply_local_edit(
    doc: &mut ContentDoc,
    edit: impl FnOnce(&mut ContentDoc) -> Result<(), Refusal>,
    limits: &Limits,
) -> Result<bool, Refusal> {
    let bytes = doc.edit_measured(edit)?;
    if bytes.is_empty() {
        return Ok(false);
    }
    if bytes.len() > limits.max_change_bytes {
        return Err(over_limit(
            RefusalCode::ChangeTooLarge,
            limits.max_change_bytes,
            "bytes",
            "بايت",
        ));
    }
    check(doc, limits)?;
    Ok(true)
}

/// Applies a batch of operations on one document (see the module docs). Never fails as a whole:
/// each operation gets its own result, and the returned document holds the accepted ones.
pub fn apply_remote_batch(
    doc: &ContentDoc,
    ops: &[RemoteChange<'_>],
    limits: &Limits,
) -> BatchOutcome {
    let guard = GenesisGuard::new(doc.kind());
    let decoded: Vec<Result<Decoded, Refusal>> =
        ops.iter().map(|op| decode(op, &guard, limits)).collect();
    match whole_batch(doc, &decoded, limits) {
        Some(outcome) => outcome,
        None => one_by_one(doc, &decoded, limits),
    }
}

/// The fast path: every operation that passes the pre-checks, in one `apply_changes`. `None` when
/// the result is refused (then the slow path decides per operation).
fn whole_batch(
    doc: &ContentDoc,
    decoded: &[Result<Decoded, Refusal>],
    limits: &Limits,
) -> Option<BatchOutcome> {
    let mut batch_known = HashSet::new();
    let mut heads: BTreeSet<ChangeHash> = doc.heads().into_iter().collect();
    let mut results = Vec::with_capacity(decoded.len());
    let mut all = Vec::new();
    for op in decoded {
        let planned = op
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|op| plan(doc, &batch_known, &heads, op));
        match planned {
            Ok(p) => {
                batch_known.extend(p.added.iter().map(Change::hash));
                heads = p.new_heads;
                results.push(Ok(Applied {
                    added: p.added.iter().map(Change::hash).collect(),
                    new_heads: heads.iter().copied().collect(),
                }));
                all.extend(p.added);
            }
            Err(refusal) => results.push(Err(refusal)),
        }
    }
    let mut next = doc.clone();
    let added_bytes = raw_bytes(&all);
    if !all.is_empty() {
        next.apply_changes(all).ok()?;
        settled(&next, &heads).ok()?;
        check(&mut next, limits).ok()?;
    }
    Some(BatchOutcome {
        doc: next,
        results,
        added_bytes,
    })
}

/// The slow path: one operation at a time, each on the document the accepted ones left.
fn one_by_one(
    doc: &ContentDoc,
    decoded: &[Result<Decoded, Refusal>],
    limits: &Limits,
) -> BatchOutcome {
    let mut state = doc.clone();
    let mut results = Vec::with_capacity(decoded.len());
    let mut added_bytes = Vec::new();
    for op in decoded {
        let result = op.as_ref().map_err(Clone::clone).and_then(|op| {
            let heads = state.heads().into_iter().collect();
            let p = plan(&state, &HashSet::new(), &heads, op)?;
            let applied = Applied {
                added: p.added.iter().map(Change::hash).collect(),
                new_heads: p.new_heads.iter().copied().collect(),
            };
            if !p.added.is_empty() {
                let bytes = raw_bytes(&p.added);
                let mut next = state.clone();
                next.apply_changes(p.added)?;
                settled(&next, &p.new_heads)?;
                check(&mut next, limits)?;
                state = next;
                added_bytes.extend(bytes);
            }
            Ok(applied)
        });
        results.push(result);
    }
    BatchOutcome {
        doc: state,
        results,
        added_bytes,
    }
}

/// A decoded operation.
#[derive(Debug)]
struct Decoded {
    changes: Vec<Change>,
    heads_before: Vec<ChangeHash>,
}

/// The changes an operation adds to a document and the heads it leaves.
struct Plan {
    added: Vec<Change>,
    new_heads: BTreeSet<ChangeHash>,
}

/// Refuses changes by any kind's genesis actor other than this kind's genesis itself: nobody
/// but the genesis writes as a genesis actor.
struct GenesisGuard {
    actors: Vec<ActorId>,
    genesis: Option<ChangeHash>,
}

impl GenesisGuard {
    fn new(kind: DocKind) -> Self {
        Self {
            actors: DocKind::ALL.into_iter().map(genesis_actor).collect(),
            genesis: genesis_hash(kind).ok(),
        }
    }

    fn allows(&self, change: &Change) -> bool {
        !self.actors.contains(change.actor_id()) || Some(change.hash()) == self.genesis
    }
}

fn decode(
    op: &RemoteChange<'_>,
    guard: &GenesisGuard,
    limits: &Limits,
) -> Result<Decoded, Refusal> {
    if op.bytes.len() > limits.max_change_bytes {
        return Err(over_limit(
            RefusalCode::ChangeTooLarge,
            limits.max_change_bytes,
            "bytes",
            "بايت",
        ));
    }
    let changes = decode_changes(op.bytes)?;
    if !changes.iter().all(|c| guard.allows(c)) {
        return Err(malformed());
    }
    Ok(Decoded {
        changes,
        heads_before: op.heads_before.to_vec(),
    })
}

/// Checks an operation's dependencies against `doc` plus the changes `batch_known` accepted
/// earlier in the batch, and computes what it adds.
fn plan(
    doc: &ContentDoc,
    batch_known: &HashSet<ChangeHash>,
    heads: &BTreeSet<ChangeHash>,
    op: &Decoded,
) -> Result<Plan, Refusal> {
    let known = |h: &ChangeHash| batch_known.contains(h) || doc.has_change(h);
    if !op.heads_before.iter().all(known) {
        return Err(missing_deps());
    }
    let in_op: HashSet<ChangeHash> = op.changes.iter().map(Change::hash).collect();
    let deps_ok = op
        .changes
        .iter()
        .flat_map(|c| c.deps())
        .all(|d| in_op.contains(d) || known(d));
    if !deps_ok {
        return Err(missing_deps());
    }
    let mut seen = HashSet::new();
    let added: Vec<Change> = op
        .changes
        .iter()
        .filter(|c| !known(&c.hash()) && seen.insert(c.hash()))
        .cloned()
        .collect();
    // Heads after: the old heads and the added changes, minus everything an added change
    // depends on (order-independent, so the changes' order inside the operation is free).
    let mut new_heads = heads.clone();
    new_heads.extend(added.iter().map(Change::hash));
    for d in added.iter().flat_map(|c| c.deps()) {
        new_heads.remove(d);
    }
    Ok(Plan { added, new_heads })
}

/// The changes' chunks as they came, concatenated.
fn raw_bytes(changes: &[Change]) -> Vec<u8> {
    changes
        .iter()
        .flat_map(|c| c.raw_bytes().iter().copied())
        .collect()
}

/// After applying: nothing queued, and the heads are the planned ones (a change Automerge did
/// not really apply, e.g. one skipping an actor's sequence number, shows up here).
fn settled(doc: &ContentDoc, expected: &BTreeSet<ChangeHash>) -> Result<(), Refusal> {
    if !doc.missing_deps().is_empty() {
        return Err(missing_deps());
    }
    let heads: BTreeSet<ChangeHash> = doc.heads().into_iter().collect();
    if &heads != expected {
        return Err(malformed());
    }
    Ok(())
}

/// Schema and size of a document about to be committed.
fn check(doc: &mut ContentDoc, limits: &Limits) -> Result<(), Refusal> {
    validate(doc, limits)?;
    if !doc.saved_len_within(limits.max_document_bytes) {
        return Err(over_limit(
            RefusalCode::DocumentTooLarge,
            limits.max_document_bytes,
            "bytes",
            "بايت",
        ));
    }
    Ok(())
}

fn malformed() -> Refusal {
    Refusal::new(RefusalCode::ChangeMalformed)
}

fn missing_deps() -> Refusal {
    Refusal::new(RefusalCode::ChangeMissingDeps)
}

/// Automerge's chunk magic bytes, then a 4-byte checksum, a type byte and a LEB128 length.
const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
const CHUNK_CHANGE: u8 = 1;
const CHUNK_COMPRESSED_CHANGE: u8 = 2;
const HEADER_FIXED: usize = 9;

/// Splits concatenated change chunks and decodes each one whole: a truncated, garbage, document
/// or checksum-failing chunk refuses the input (`change_malformed`). Empty input is refused too.
pub fn decode_changes(bytes: &[u8]) -> Result<Vec<Change>, Refusal> {
    if bytes.is_empty() {
        return Err(malformed());
    }
    let mut rest = bytes;
    let mut changes = Vec::new();
    while !rest.is_empty() {
        let len = chunk_len(rest).ok_or_else(malformed)?;
        let (chunk, tail) = rest.split_at(len);
        let change = Change::try_from(chunk).map_err(|_| malformed())?;
        // The header's checksum is the first 4 bytes of the change hash (for compressed chunks,
        // of the uncompressed change): a flipped bit anywhere fails here.
        if chunk.get(4..8) != change.hash().0.get(..4) {
            return Err(malformed());
        }
        changes.push(change);
        rest = tail;
    }
    Ok(changes)
}

/// The length of the change chunk at the start of `b`, if its header is sound and it is whole.
fn chunk_len(b: &[u8]) -> Option<usize> {
    if b.get(..4)? != MAGIC {
        return None;
    }
    let ty = *b.get(8)?;
    if ty != CHUNK_CHANGE && ty != CHUNK_COMPRESSED_CHANGE {
        return None;
    }
    let (data_len, leb_len) = uleb128(b.get(HEADER_FIXED..)?)?;
    let total = HEADER_FIXED
        .checked_add(leb_len)?
        .checked_add(usize::try_from(data_len).ok()?)?;
    (total <= b.len()).then_some(total)
}

/// An unsigned LEB128 and the number of bytes it took.
fn uleb128(b: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, byte) in b.iter().take(10).enumerate() {
        let part = u64::from(byte & 0x7f);
        if i == 9 && part > 1 {
            return None;
        }
        value |= part << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::content::notes;

    #[test]
    fn uleb128_reads_multi_byte_lengths() {
        assert_eq!(uleb128(&[0x05]), Some((5, 1)));
        assert_eq!(uleb128(&[0xe5, 0x8e, 0x26]), Some((624_485, 3)));
        assert_eq!(uleb128(&[0x80]), None);
        assert_eq!(uleb128(&[0xff; 11]), None);
    }

    #[test]
    fn decode_splits_concatenated_and_compressed_changes() {
        let mut d = ContentDoc::new(DocKind::Notes, ActorId::random()).unwrap();
        let base = d.heads();
        notes::set(&mut d, "one").unwrap();
        // Large enough for Automerge to compress it.
        notes::set(&mut d, &"long text ".repeat(200)).unwrap();
        let raw = d.save_after(&base);
        assert_eq!(decode_changes(&raw).unwrap().len(), 2);
        let am = automerge::Automerge::load(&d.save()).unwrap();
        let mut changes = am.get_changes(&base);
        let compressed: Vec<u8> = changes
            .iter_mut()
            .flat_map(|c| c.bytes().to_vec())
            .collect();
        assert!(compressed.len() < raw.len(), "the long change compresses");
        let decoded = decode_changes(&compressed).unwrap();
        assert_eq!(decoded.len(), 2);
        let last = decoded.last().cloned();
        assert_eq!(last.map(|c| c.hash()), d.heads().first().copied());
    }

    #[test]
    fn a_local_edit_is_checked_like_a_pushed_change() {
        let limits = Limits::default();
        let base = ContentDoc::new(DocKind::Notes, ActorId::random()).unwrap();
        let mut doc = base.clone();
        assert!(apply_local_edit(&mut doc, |d| notes::set(d, "checked"), &limits).unwrap());
        assert_eq!(notes::get(&doc).unwrap(), "checked");
        // The same text again changes nothing.
        assert!(!apply_local_edit(&mut doc, |d| notes::set(d, "checked"), &limits).unwrap());
        let refused = |limits: &Limits, text: &str| {
            let mut doc = base.clone();
            apply_local_edit(&mut doc, |d| notes::set(d, text), limits)
                .unwrap_err()
                .code
        };
        let long = "x".repeat(limits.max_text_chars + 1);
        assert_eq!(refused(&limits, &long), RefusalCode::TextTooLong);
        let small_changes = Limits {
            max_change_bytes: 64,
            ..Limits::default()
        };
        assert_eq!(
            refused(&small_changes, &"a fairly long note ".repeat(10)),
            RefusalCode::ChangeTooLarge
        );
        let small_docs = Limits {
            max_document_bytes: 100,
            ..Limits::default()
        };
        assert_eq!(
            refused(&small_docs, &"unrepeatable text 0123456789 ".repeat(8)),
            RefusalCode::DocumentTooLarge
        );
    }

    #[test]
    fn the_added_bytes_are_the_changes_the_document_gained() {
        let limits = Limits::default();
        let base = ContentDoc::new(DocKind::Notes, ActorId::random()).unwrap();
        let mut device = base.clone();
        device.set_actor(ActorId::random());
        let mut pushed = Vec::new();
        for text in ["one", "one two", "one two three"] {
            let before = device.heads();
            notes::set(&mut device, text).unwrap();
            pushed.push((device.save_after(&before), before));
        }
        // The second operation again, as a retry inside the batch: nothing added twice.
        pushed.push(pushed[1].clone());
        let ops: Vec<RemoteChange<'_>> = pushed
            .iter()
            .map(|(bytes, heads)| RemoteChange {
                bytes,
                heads_before: heads,
            })
            .collect();
        let hashes = |bytes: &[u8]| -> Vec<ChangeHash> {
            let mut h: Vec<ChangeHash> = decode_changes(bytes)
                .unwrap()
                .iter()
                .map(Change::hash)
                .collect();
            h.sort();
            h
        };
        let outcome = apply_remote_batch(&base, &ops, &limits);
        assert!(outcome.results.iter().all(Result::is_ok));
        let gained = outcome.doc.save_after(&base.heads());
        assert_eq!(hashes(&outcome.added_bytes), hashes(&gained));
        // The slow path (the whole batch refused: the third operation passes a text limit)
        // says the same of what it kept.
        let short = Limits {
            max_text_chars: 8,
            ..Limits::default()
        };
        let outcome = apply_remote_batch(&base, &ops, &short);
        assert!(outcome.results[2].is_err());
        let gained = outcome.doc.save_after(&base.heads());
        assert_eq!(hashes(&outcome.added_bytes), hashes(&gained));
        assert_eq!(hashes(&outcome.added_bytes).len(), 2);
    }
}
