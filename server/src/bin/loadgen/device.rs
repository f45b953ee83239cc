//! A simulated phone: a patient typing into the medical history of their draft case.
//!
//! The device holds the intake document as the app does: built with the core's
//! `intake::initial` (the values the case was created with, so the creation change is
//! byte-identical to the server's), written with its own persisted actor through the typed
//! setter `intake::set_medical_history`, one Automerge change per few characters typed. A push
//! is a [`PushRequest`] of such changes (each `heads_before` = the document's heads before it)
//! followed by commands (`UpdateIntake` of the age), serialized once into a ready body.

use anyhow::Context;
use sop_core::access::ContentKind;
use sop_core::case::{Intake, IntakePatch};
use sop_core::command::Command;
use sop_core::content::{ActorId, ChangeHash, ContentDoc, DocId, DocRef, intake};
use sop_core::ids::CaseId;
use sop_core::sync::v1::{Bytes, ChangeOp, CommandOp, DeviceId, Op, OpId, PushRequest};
use uuid::Uuid;

/// What the simulated patients type, cycled (English and Arabic, as in the product).
const CORPUS: &str = "Intermittent chest pain since March, worse on exertion, radiating to the \
left arm; ECG in April showed ST depression. Father had a myocardial infarction at 52. Takes \
aspirin 81 mg and atorvastatin 20 mg. ألم في الصدر منذ شهر مارس ويزداد مع المجهود. Questions: \
is a stent needed, or can medication alone control the symptoms? ";

/// When the text reaches this many characters, the change that crosses it also deletes the
/// oldest [`TRIM_CHARS`] (the patient rewrites the start): a long run stays a realistic
/// medical history, far below the server's `max_text_chars` (50 000). It also bounds the
/// device's cost: the typed setter diffs the whole text (grapheme by grapheme) on every change.
pub const MAX_TEXT_CHARS: usize = 4_000;
/// Characters deleted from the start when the text reaches [`MAX_TEXT_CHARS`].
pub const TRIM_CHARS: usize = 1_000;

/// The characters device `index` types per change when the devices type `mean` on average:
/// `mean - 2` to `mean + 2`, cycling. Devices typing exactly alike grow documents of exactly the
/// same shape, so Automerge's costlier steps (a trim's thousand deletions, its storage
/// reorganizing as a document grows) would come to all of them in the same second; real
/// patients type at different speeds.
pub fn chars_per_change(mean: usize, index: usize) -> usize {
    if mean < 3 {
        mean.max(1)
    } else {
        mean - 2 + index % 5
    }
}

/// A push body ready to send.
#[derive(Clone, Debug)]
pub struct Batch {
    /// The serialized `PushRequest`.
    pub body: Vec<u8>,
    /// Operations in it.
    pub ops: usize,
}

/// One device of one patient, typing into one draft.
pub struct Typist {
    /// The device's id (sent in pushes and as `x-device-id`).
    pub device_id: DeviceId,
    /// The draft it types into.
    pub case_id: CaseId,
    /// The values the draft was created with.
    initial: Intake,
    doc_id: DocId,
    doc: ContentDoc,
    text: String,
    /// Characters in `text`.
    text_chars: usize,
    /// The length at which the next change trims the text: [`MAX_TEXT_CHARS`], except before
    /// the first trim (see [`Typist::new`]).
    trim_at: usize,
    corpus: Vec<char>,
    typed: usize,
    commands: u64,
    chars_per_change: usize,
    /// Change bytes produced so far (for the raw-ceiling rows), at most `keep_changes`.
    pub kept_changes: Vec<Vec<u8>>,
    keep_changes: usize,
}

impl Typist {
    /// A device holding the intake of `case_id` as created with `initial`, writing as a new
    /// random actor (the device's persisted one, in the app). Its first trim comes
    /// `trim_phase` characters before [`MAX_TEXT_CHARS`] (at most [`TRIM_CHARS`]), the later
    /// ones every [`TRIM_CHARS`] typed: devices started together with different phases do not
    /// all delete a thousand characters in the same second, which no real patients would do.
    pub fn new(
        case_id: CaseId,
        initial: &Intake,
        chars_per_change: usize,
        keep_changes: usize,
        trim_phase: usize,
    ) -> anyhow::Result<Self> {
        let doc = intake::initial(case_id, initial, ActorId::random())
            .map_err(|r| anyhow::anyhow!("initial intake: {}", r.code))?;
        Ok(Self {
            device_id: DeviceId(Uuid::now_v7()),
            case_id,
            initial: initial.clone(),
            doc_id: DocRef::new(case_id, ContentKind::Intake).doc_id(),
            doc,
            text: initial.medical_history.clone(),
            text_chars: initial.medical_history.chars().count(),
            trim_at: MAX_TEXT_CHARS - trim_phase.min(TRIM_CHARS),
            corpus: CORPUS.chars().collect(),
            typed: 0,
            commands: 0,
            chars_per_change: chars_per_change.max(1),
            kept_changes: Vec::new(),
            keep_changes,
        })
    }

    /// The document's heads.
    pub fn heads(&self) -> Vec<ChangeHash> {
        self.doc.heads()
    }

    /// The values the draft was created with.
    pub fn initial(&self) -> &Intake {
        &self.initial
    }

    /// The id of the document typed into.
    pub fn doc_id(&self) -> DocId {
        self.doc_id
    }

    /// Types the next few characters: one change op.
    pub fn change(&mut self) -> anyhow::Result<ChangeOp> {
        let before = self.doc.heads();
        for _ in 0..self.chars_per_change {
            self.text.push(self.corpus[self.typed % self.corpus.len()]);
            self.typed += 1;
        }
        self.text_chars += self.chars_per_change;
        if self.text_chars >= self.trim_at {
            self.text = self.text.chars().skip(TRIM_CHARS).collect();
            self.text_chars -= TRIM_CHARS;
            self.trim_at = MAX_TEXT_CHARS;
        }
        intake::set_medical_history(&mut self.doc, &self.text)
            .map_err(|r| anyhow::anyhow!("typing: {}", r.code))?;
        let change = self.doc.save_after(&before);
        if self.kept_changes.len() < self.keep_changes {
            self.kept_changes.push(change.clone());
        }
        Ok(ChangeOp {
            op_id: OpId(Uuid::now_v7()),
            doc_id: self.doc_id,
            case_id: self.case_id,
            kind: ContentKind::Intake,
            change: Bytes(change),
            heads_before: before,
        })
    }

    /// A command op: the patient corrects the age.
    pub fn command(&mut self) -> CommandOp {
        self.commands += 1;
        let age = 18 + i32::try_from(self.commands % 70).unwrap_or(0);
        CommandOp {
            op_id: OpId(Uuid::now_v7()),
            case_id: self.case_id,
            command: Command::UpdateIntake {
                patch: IntakePatch {
                    patient_age: Some(age),
                    ..IntakePatch::default()
                },
            },
        }
    }

    /// The next push: `changes` change ops, then `commands` command ops.
    pub fn push(&mut self, changes: usize, commands: usize) -> anyhow::Result<PushRequest> {
        let mut ops = Vec::with_capacity(changes + commands);
        for _ in 0..changes {
            ops.push(Op::Change(self.change()?));
        }
        for _ in 0..commands {
            ops.push(Op::Command(self.command()));
        }
        Ok(PushRequest {
            device_id: self.device_id,
            ops,
        })
    }

    /// [`Typist::push`], serialized.
    pub fn batch(&mut self, changes: usize, commands: usize) -> anyhow::Result<Batch> {
        let req = self.push(changes, commands)?;
        Ok(Batch {
            body: serde_json::to_vec(&req).context("serialize a push")?,
            ops: req.ops.len(),
        })
    }
}
