//! [`ContentDoc`]: an Automerge document of one [`DocKind`], grown from a deterministic genesis.
//!
//! **Genesis** (DESIGN.md §2). Every document of a kind starts with the same single change: actor
//! [`genesis_actor`] (16 bytes of SHA-256 over a tag naming the kind, never a device's actor),
//! sequence 1, timestamp 0, a fixed message, no dependencies, creating the kind's `Text` fields at
//! the root in the order of the kind's `FIELDS` table. Every device generates it byte-identically,
//! so two devices that create the same case's intake offline share the genesis and their edits
//! land in the *same* `Text` objects: the merge keeps both texts. (Were each device to create its
//! own `Text` under `medical_history`, one object would win and the other device's typing would
//! vanish from view.) The genesis hashes are pinned by a test; an Automerge upgrade that encoded
//! the genesis differently would fail it before any app shipped.
//!
//! After the genesis the document takes the device's own persisted actor id (an argument): Automerge
//! requires a distinct actor per writer, and a random one per app start would bloat the document.
//!
//! `Debug` never prints content (PHI): only the kind, the actor and the number of heads.

use super::field::FieldType;
use super::{DocKind, invalid};
use crate::refusal::{Refusal, RefusalCode};
use automerge::transaction::{CommitOptions, Transactable, Transaction};
use automerge::{ActorId, Automerge, AutomergeError, Change, ChangeHash, ObjType, ROOT, ReadDoc};
use sha2::{Digest, Sha256};
use std::fmt;

/// A content document of one kind. Read and write its fields through the kind's typed module.
#[derive(Clone)]
pub struct ContentDoc {
    kind: DocKind,
    doc: Automerge,
    size: SizeBound,
}

/// How much larger than its change bytes a document's compacted save can grow per applied
/// change, at most, as this module assumes ([`ContentDoc::saved_len_within`]). The document
/// format stores a change's ops in shared columns and its metadata as small indexes (no
/// dependency hashes), so it grows by less than the change's own bytes; 2 leaves a margin.
const GROWTH_PER_CHANGE_BYTE: usize = 2;

/// What the last `save()` measured, and the change bytes applied since: an upper bound of the
/// document's size that costs nothing to keep, so the size limit does not compact the whole
/// document on every write.
#[derive(Clone, Copy, Debug, Default)]
struct SizeBound {
    /// `None`: not measured since loading or a local edit.
    measured: Option<usize>,
    grown: usize,
}

impl SizeBound {
    fn upper(&self) -> Option<usize> {
        let grown = self.grown.checked_mul(GROWTH_PER_CHANGE_BYTE)?;
        self.measured?.checked_add(grown)
    }
}

/// The genesis hashes of the four kinds, computed once (building a genesis document costs
/// tens of microseconds, and every validation asks).
static GENESIS_HASHES: std::sync::OnceLock<Result<[ChangeHash; 4], Refusal>> =
    std::sync::OnceLock::new();

impl fmt::Debug for ContentDoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContentDoc")
            .field("kind", &self.kind)
            .field("actor", &self.doc.get_actor().to_hex_string())
            .field("heads", &self.doc.get_heads().len())
            .finish()
    }
}

/// The fixed actor id of the genesis change of `kind`.
pub fn genesis_actor(kind: DocKind) -> ActorId {
    let digest = Sha256::digest(format!("sop/content-genesis/v1/{}", kind.as_str()));
    ActorId::from(&digest[..16])
}

/// The fixed message of the genesis change of `kind`.
fn genesis_message(kind: DocKind) -> String {
    format!("sop genesis {} v1", kind.as_str())
}

/// The document holding only the genesis change of `kind` (actor: the genesis actor).
fn genesis_doc(kind: DocKind) -> Result<Automerge, Refusal> {
    let mut doc = Automerge::new().with_actor(genesis_actor(kind));
    doc.transact_with(
        |_| {
            CommitOptions::default()
                .with_message(genesis_message(kind))
                .with_time(0)
        },
        |tx| {
            for field in kind.fields() {
                if field.ty == FieldType::Text {
                    tx.put_object(ROOT, field.key, ObjType::Text)?;
                }
            }
            Ok::<_, AutomergeError>(())
        },
    )
    .map_err(|_| invalid("genesis"))?;
    Ok(doc)
}

/// The hash of the genesis change of `kind`; every valid document of that kind contains it.
pub fn genesis_hash(kind: DocKind) -> Result<ChangeHash, Refusal> {
    let hashes = GENESIS_HASHES.get_or_init(|| {
        let mut out = [ChangeHash([0; 32]); 4];
        for (slot, kind) in out.iter_mut().zip(DocKind::ALL) {
            *slot = genesis_doc(kind)?
                .get_heads()
                .first()
                .copied()
                .ok_or_else(|| invalid("genesis"))?;
        }
        Ok(out)
    });
    let index = DocKind::ALL.iter().position(|k| *k == kind);
    match (hashes, index) {
        (Ok(hashes), Some(i)) => Ok(hashes[i]),
        (Err(refusal), _) => Err(refusal.clone()),
        (Ok(_), None) => Err(invalid("genesis")),
    }
}

/// The genesis change of `kind`, as bytes (what a device would push first, were it ever needed).
pub fn genesis_change(kind: DocKind) -> Result<Vec<u8>, Refusal> {
    Ok(genesis_doc(kind)?.save_after(&[]))
}

impl ContentDoc {
    /// A new document of `kind`: the genesis, then `actor` (the device's persisted actor id) for
    /// every later edit.
    pub fn new(kind: DocKind, actor: ActorId) -> Result<Self, Refusal> {
        let mut doc = genesis_doc(kind)?;
        doc.set_actor(actor);
        Ok(Self {
            kind,
            doc,
            size: SizeBound::default(),
        })
    }

    /// Loads a saved document (a snapshot, possibly followed by changes) and sets `actor`.
    /// Refuses bytes that do not decode, lack dependencies, or do not grow from this kind's
    /// genesis. Does not run [`super::validate`].
    pub fn load(kind: DocKind, bytes: &[u8], actor: ActorId) -> Result<Self, Refusal> {
        let mut doc =
            Automerge::load(bytes).map_err(|_| Refusal::new(RefusalCode::ChangeMalformed))?;
        if !doc.get_missing_deps(&[]).is_empty() {
            return Err(Refusal::new(RefusalCode::ChangeMissingDeps));
        }
        doc.set_actor(actor);
        let this = Self {
            kind,
            doc,
            size: SizeBound::default(),
        };
        if !this.has_change(&genesis_hash(kind)?) {
            return Err(invalid("genesis"));
        }
        Ok(this)
    }

    pub fn kind(&self) -> DocKind {
        self.kind
    }

    /// The actor this document writes as.
    pub fn actor(&self) -> &ActorId {
        self.doc.get_actor()
    }

    /// Changes the actor later edits are made as.
    pub fn set_actor(&mut self, actor: ActorId) {
        self.doc.set_actor(actor);
    }

    /// The current heads.
    pub fn heads(&self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    /// Whether the change `hash` is in this document.
    pub fn has_change(&self, hash: &ChangeHash) -> bool {
        self.doc.get_change_meta_by_hash(hash).is_some()
    }

    /// The whole document, compacted (what the server stores as a snapshot and sends to a new
    /// device).
    pub fn save(&self) -> Vec<u8> {
        self.doc.save()
    }

    /// The changes not reachable from `heads`, concatenated (what a device pushes: `heads` are
    /// the server heads it last saw).
    pub fn save_after(&self, heads: &[ChangeHash]) -> Vec<u8> {
        self.doc.save_after(heads)
    }

    /// Applies pulled bytes (a snapshot and/or changes) from the server, which validated them.
    /// The server's data is trusted here; it is still refused if it does not decode or leaves
    /// dependencies missing.
    pub fn load_incremental(&mut self, bytes: &[u8]) -> Result<(), Refusal> {
        self.size = SizeBound::default();
        self.doc
            .load_incremental(bytes)
            .map_err(|_| Refusal::new(RefusalCode::ChangeMalformed))?;
        if !self.doc.get_missing_deps(&[]).is_empty() {
            return Err(Refusal::new(RefusalCode::ChangeMissingDeps));
        }
        Ok(())
    }

    /// Merges every change of `other` (a document of the same kind) into this one.
    pub fn merge(&mut self, other: &ContentDoc) -> Result<(), Refusal> {
        if other.kind != self.kind {
            return Err(invalid("kind"));
        }
        let changes = self.doc.get_changes_added(&other.doc);
        self.apply_changes(changes)
    }

    /// A copy of this document as of `heads`, writing as the same actor.
    pub fn fork_at(&self, heads: &[ChangeHash]) -> Result<ContentDoc, Refusal> {
        let mut doc = self.doc.fork_at(heads).map_err(|_| invalid("heads"))?;
        doc.set_actor(self.doc.get_actor().clone());
        Ok(Self {
            kind: self.kind,
            doc,
            size: SizeBound::default(),
        })
    }

    /// Replaces this document by a copy of `server`'s, keeping this document's actor. A device
    /// does this after the server refused its change (see [`super::recovered_draft`]); the
    /// refused changes, and every pending change built on them, must be dropped with it.
    pub fn reset_to(&mut self, server: &ContentDoc) -> Result<(), Refusal> {
        if server.kind != self.kind {
            return Err(invalid("kind"));
        }
        let actor = self.doc.get_actor().clone();
        self.doc = server.doc.clone();
        self.size = server.size;
        self.doc.set_actor(actor);
        Ok(())
    }

    /// Dependencies of queued changes that are not in the document (Automerge queues a change
    /// with missing dependencies silently).
    pub(crate) fn missing_deps(&self) -> Vec<ChangeHash> {
        self.doc.get_missing_deps(&[])
    }

    /// Read access for the typed modules and the schema check.
    pub(crate) fn am(&self) -> &Automerge {
        &self.doc
    }

    /// Applies decoded changes in one call (never one by one: TECH-NOTES, Automerge 0.12).
    pub(crate) fn apply_changes(&mut self, changes: Vec<Change>) -> Result<(), Refusal> {
        if changes.is_empty() {
            return Ok(());
        }
        let bytes: usize = changes.iter().map(|c| c.raw_bytes().len()).sum();
        self.size.grown = self.size.grown.saturating_add(bytes);
        self.doc
            .apply_changes(changes)
            .map_err(|_| Refusal::new(RefusalCode::ChangeMalformed))
    }

    /// Whether the document's compacted save is at most `limit` bytes. Saves (compacts) it only
    /// when the bound kept since the last measurement ([`GROWTH_PER_CHANGE_BYTE`] per change
    /// byte applied) does not already answer: a refusal always rests on a real measurement.
    pub(crate) fn saved_len_within(&mut self, limit: usize) -> bool {
        if self.size.upper().is_some_and(|upper| upper <= limit) {
            return true;
        }
        let len = self.doc.save().len();
        self.size = SizeBound {
            measured: Some(len),
            grown: 0,
        };
        len <= limit
    }

    /// Runs `edit` (typed setters) and answers the bytes of the changes it made. Unlike a plain
    /// typed edit, which forgets the size bound, this keeps it, grown by those bytes as for
    /// applied changes: the server's own edits use it, so checking their size limit does not
    /// compact the whole document.
    pub(crate) fn edit_measured<F>(&mut self, edit: F) -> Result<Vec<u8>, Refusal>
    where
        F: FnOnce(&mut ContentDoc) -> Result<(), Refusal>,
    {
        let before = self.heads();
        let size = self.size;
        edit(self)?;
        let bytes = self.save_after(&before);
        self.size = SizeBound {
            measured: size.measured,
            grown: size.grown.saturating_add(bytes.len()),
        };
        Ok(bytes)
    }

    /// Runs one edit of a `kind` document as one transaction, so one change (none if nothing
    /// changed). Refuses a document of another kind.
    pub(crate) fn edit<F>(&mut self, kind: DocKind, f: F) -> Result<(), Refusal>
    where
        F: FnOnce(&mut Transaction<'_>) -> Result<(), Refusal>,
    {
        self.expect_kind(kind)?;
        self.size = SizeBound::default();
        self.doc
            .transact_with(|_| CommitOptions::default().with_time(0), f)
            .map(|_| ())
            .map_err(|failure| failure.error)
    }

    /// Refuses a document of another kind than the typed module expects.
    pub(crate) fn expect_kind(&self, kind: DocKind) -> Result<(), Refusal> {
        if self.kind == kind {
            Ok(())
        } else {
            Err(invalid("kind"))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// `base` with `text` typed into the notes by another actor, applied as changes.
    fn with_remote_notes(base: &ContentDoc, text: &str) -> ContentDoc {
        let mut writer = base.clone();
        writer.set_actor(ActorId::random());
        crate::content::notes::set(&mut writer, text).unwrap();
        let mut doc = base.clone();
        let changes = doc.doc.get_changes_added(&writer.doc);
        doc.apply_changes(changes).unwrap();
        doc
    }

    #[test]
    fn the_size_bound_saves_only_when_it_cannot_answer_and_refuses_only_on_a_measurement() {
        let mut doc = ContentDoc::new(DocKind::Notes, ActorId::random()).unwrap();
        // Never measured: it saves, and remembers.
        assert!(doc.saved_len_within(1 << 20));
        let measured = doc.size.measured.unwrap();
        assert_eq!(measured, doc.save().len());
        let mut grown = with_remote_notes(&doc, &"x".repeat(300));
        assert!(grown.size.grown > 0);
        let upper = grown.size.upper().unwrap();
        assert!(upper >= grown.save().len(), "{upper} bounds the real size");
        // Far under the limit: answered from the bound, no measurement.
        assert!(grown.saved_len_within(upper));
        assert_eq!(grown.size.measured, Some(measured));
        // At a limit the bound exceeds, it measures: the real size decides.
        let real = grown.save().len();
        assert!(grown.saved_len_within(real));
        assert_eq!(grown.size.measured, Some(real));
        assert!(!grown.saved_len_within(real - 1));
        // A measured edit keeps it, grown by the edit's change bytes, still an upper bound.
        let changes = grown
            .edit_measured(|d| crate::content::notes::set(d, &"z".repeat(500)))
            .unwrap();
        assert!(!changes.is_empty());
        assert_eq!(grown.size.measured, Some(real));
        assert_eq!(grown.size.grown, changes.len());
        let upper = grown.size.upper().unwrap();
        assert!(upper >= grown.save().len(), "{upper} bounds the real size");
        // A plain local edit forgets the measurement.
        crate::content::notes::set(&mut grown, "y").unwrap();
        assert_eq!(grown.size.measured, None);
    }

    #[test]
    fn genesis_hashes_are_pinned() {
        // Pinned: a device on another build must generate the very same genesis. If an Automerge
        // upgrade changes these, ship the old genesis bytes as constants instead of rebuilding.
        let expected = [
            (
                DocKind::Intake,
                "13f436f431c61d801898197efc1dcb0803c95f5911b2ac6d2ea67c5950c7f7c4",
            ),
            (
                DocKind::Notes,
                "e36a3bfec93620d62ff2a080fa64abd7326af4ef5030227b0c2f777c97136cae",
            ),
            (
                DocKind::Opinion,
                "e3926a7d6c4ace99e319a89e602258f8949923fd9ade30d76aea0c873197e475",
            ),
            (
                DocKind::Summary,
                "37d7fe5f9fbb02dad5f7abead20c13cac3f4ff39f630fd5572da6f29a2243736",
            ),
        ];
        let actual: Vec<_> = expected
            .iter()
            .map(|(kind, _)| (*kind, genesis_hash(*kind).unwrap().to_string()))
            .collect();
        let expected: Vec<_> = expected.iter().map(|(k, h)| (*k, h.to_string())).collect();
        assert_eq!(actual, expected);
    }

    #[test]
    fn genesis_is_one_change_of_the_genesis_actor_at_time_zero() {
        for kind in DocKind::ALL {
            let bytes = genesis_change(kind).unwrap();
            let change = Change::try_from(bytes.as_slice()).unwrap();
            assert_eq!(change.actor_id(), &genesis_actor(kind));
            assert_eq!(change.seq(), 1);
            assert_eq!(change.timestamp(), 0);
            assert!(change.deps().is_empty());
            assert_eq!(
                change.message().map(str::to_owned),
                Some(genesis_message(kind))
            );
            assert_eq!(change.hash(), genesis_hash(kind).unwrap());
        }
    }

    #[test]
    fn new_documents_share_the_genesis_and_write_as_the_device() {
        let device = ActorId::from([7u8; 16]);
        let a = ContentDoc::new(DocKind::Intake, device.clone()).unwrap();
        let b = ContentDoc::new(DocKind::Intake, ActorId::from([8u8; 16])).unwrap();
        assert_eq!(a.heads(), b.heads());
        assert_eq!(a.heads(), vec![genesis_hash(DocKind::Intake).unwrap()]);
        assert_eq!(a.actor(), &device);
        assert_eq!(a.save(), b.save());
    }

    #[test]
    fn load_refuses_a_document_of_another_kind_and_garbage() {
        let notes = ContentDoc::new(DocKind::Notes, ActorId::random()).unwrap();
        let err = ContentDoc::load(DocKind::Intake, &notes.save(), ActorId::random()).unwrap_err();
        assert_eq!(err.code, RefusalCode::DocumentInvalid);
        let err = ContentDoc::load(DocKind::Intake, b"garbage", ActorId::random()).unwrap_err();
        assert_eq!(err.code, RefusalCode::ChangeMalformed);
        let loaded = ContentDoc::load(DocKind::Notes, &notes.save(), ActorId::random()).unwrap();
        assert_eq!(loaded.heads(), notes.heads());
    }

    #[test]
    fn debug_shows_no_content() {
        let doc = ContentDoc::new(DocKind::Summary, ActorId::from([1u8; 16])).unwrap();
        let shown = format!("{doc:?}");
        assert!(
            shown.contains("Summary") && shown.contains("heads: 1"),
            "{shown}"
        );
    }
}
