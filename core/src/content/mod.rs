//! Collaborative content documents (DESIGN.md §2): the patient's intake, a doctor's private notes,
//! a specialist's opinion draft and the coordinator's final summary draft. Each is an Automerge
//! document edited offline on any number of devices and merged without loss.
//!
//! - [`id`]: the document id, derived from the case (and the doctor for notes and opinions).
//! - [`ContentDoc`] (in `doc`): the document, always grown from one **deterministic genesis**
//!   change per kind, so documents created independently on two devices merge with both texts.
//! - [`intake`], [`notes`], [`opinion`], [`summary`]: one typed module per kind, the only code that
//!   reads or writes document fields; everyone else gets plain Rust values.
//! - [`validate`] (in `schema`): the schema check of a (merged) document.
//! - [`apply_remote`] / [`apply_remote_batch`] (in `remote`): the server applies pushed change
//!   bytes to a copy of its document and refuses what does not decode, lacks dependencies, is too
//!   large or leaves the document invalid; [`check_write`] is the write-permission rule.
//! - [`Frozen`] / [`read_at`] (in `freeze`): the heads recorded when a text is submitted, and the
//!   content as of those heads.
//! - [`recovered_draft`] (in `recovered`): what a device keeps of its text when the server refused
//!   its change.
//!
//! Changing a document's shape: edit the kind's `FIELDS` table (and its typed getters/setters).
//! Adding or reordering a **text** field changes the genesis change, so documents made by older
//! apps no longer merge with new ones: that needs a new document kind, not an edit. The pinned
//! genesis hashes in the tests of `doc` catch it.

mod doc;
mod field;
mod freeze;
pub mod id;
pub mod intake;
pub mod notes;
pub mod opinion;
mod recovered;
mod remote;
mod schema;
pub mod summary;

pub use automerge::{ActorId, ChangeHash};
pub use doc::{ContentDoc, genesis_actor, genesis_change, genesis_hash};
pub use freeze::{Frozen, read_at};
pub use id::{DocId, DocRef};
pub use recovered::{RecoveredDraft, recovered_draft};
pub use remote::{
    Applied, BatchOutcome, RemoteChange, apply_local_edit, apply_remote, apply_remote_batch,
    check_write, decode_changes,
};
pub use schema::validate;

use crate::access::ContentKind;
use crate::case::Intake;
use crate::command::OpinionContent;
use crate::refusal::{Refusal, RefusalCode};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The shape of a content document: [`ContentKind`] without the doctor. The genesis change and
/// the schema depend on this only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocKind {
    Intake,
    Notes,
    Opinion,
    Summary,
}

impl DocKind {
    pub const ALL: [DocKind; 4] = [
        DocKind::Intake,
        DocKind::Notes,
        DocKind::Opinion,
        DocKind::Summary,
    ];

    /// The wire name (`intake`, `notes`, `opinion`, `summary`).
    pub fn as_str(self) -> &'static str {
        match self {
            DocKind::Intake => "intake",
            DocKind::Notes => "notes",
            DocKind::Opinion => "opinion",
            DocKind::Summary => "summary",
        }
    }

    /// The root fields of this kind, in genesis order.
    pub(crate) fn fields(self) -> &'static [field::Field] {
        match self {
            DocKind::Intake => intake::FIELDS,
            DocKind::Notes => notes::FIELDS,
            DocKind::Opinion => opinion::FIELDS,
            DocKind::Summary => summary::FIELDS,
        }
    }
}

impl From<&ContentKind> for DocKind {
    fn from(kind: &ContentKind) -> Self {
        match kind {
            ContentKind::Intake => DocKind::Intake,
            ContentKind::Notes(_) => DocKind::Notes,
            ContentKind::Opinion(_) => DocKind::Opinion,
            ContentKind::Summary => DocKind::Summary,
        }
    }
}

impl fmt::Display for DocKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The typed content of a document of any kind, as plain values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Content {
    Intake(Intake),
    Notes { text: String },
    Opinion(OpinionContent),
    Summary { summary: String },
}

impl Content {
    /// The kind of document this content comes from.
    pub fn kind(&self) -> DocKind {
        match self {
            Content::Intake(_) => DocKind::Intake,
            Content::Notes { .. } => DocKind::Notes,
            Content::Opinion(_) => DocKind::Opinion,
            Content::Summary { .. } => DocKind::Summary,
        }
    }

    /// The wire names of the fields whose values differ between `self` and `other` (every field
    /// of `self` when the kinds differ).
    pub fn differing_fields(&self, other: &Content) -> Vec<&'static str> {
        let mut out = Vec::new();
        let mut check = |name: &'static str, differs: bool| {
            if differs {
                out.push(name);
            }
        };
        match (self, other) {
            (Content::Intake(a), Content::Intake(b)) => {
                check(intake::PATIENT_AGE, a.patient_age != b.patient_age);
                check(intake::PATIENT_GENDER, a.patient_gender != b.patient_gender);
                check(
                    intake::MEDICAL_HISTORY,
                    a.medical_history != b.medical_history,
                );
                check(intake::QUESTIONS, a.questions != b.questions);
            }
            (Content::Notes { text: a }, Content::Notes { text: b }) => check(notes::TEXT, a != b),
            (Content::Opinion(a), Content::Opinion(b)) => {
                check(opinion::SUMMARY, a.summary != b.summary);
                check(opinion::DIAGNOSIS, a.diagnosis != b.diagnosis);
                check(
                    opinion::RECOMMENDATIONS,
                    a.recommendations != b.recommendations,
                );
                check(opinion::CONCORDANCE, a.concordance != b.concordance);
                check(opinion::FREE_TEXT, a.free_text != b.free_text);
            }
            (Content::Summary { summary: a }, Content::Summary { summary: b }) => {
                check(summary::SUMMARY, a != b);
            }
            _ => {
                for f in self.kind().fields() {
                    out.push(f.key);
                }
            }
        }
        out
    }
}

/// The whole typed content of `doc`, whatever its kind.
pub fn read(doc: &ContentDoc) -> Result<Content, Refusal> {
    Ok(match doc.kind() {
        DocKind::Intake => Content::Intake(intake::get(doc)?),
        DocKind::Notes => Content::Notes {
            text: notes::get(doc)?,
        },
        DocKind::Opinion => Content::Opinion(opinion::get(doc)?),
        DocKind::Summary => Content::Summary {
            summary: summary::get(doc)?,
        },
    })
}

/// `document_invalid`, naming the field concerned (a wire name from the schema, never a value).
pub(crate) fn invalid(what: &str) -> Refusal {
    let base = Refusal::new(RefusalCode::DocumentInvalid);
    Refusal {
        message_en: format!("{} (`{what}`)", base.message_en),
        message_ar: format!("{} (`{what}`)", base.message_ar),
        ..base
    }
}

/// A refusal whose message names the limit that was exceeded.
pub(crate) fn over_limit(code: RefusalCode, limit: usize, unit_en: &str, unit_ar: &str) -> Refusal {
    let base = Refusal::new(code);
    Refusal {
        message_en: format!("{} (limit: {limit} {unit_en})", base.message_en),
        message_ar: format!("{} (الحد: {limit} {unit_ar})", base.message_ar),
        ..base
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::case::Gender;

    #[test]
    fn content_serializes_tagged_by_kind_and_round_trips() {
        let c = Content::Intake(Intake {
            patient_age: Some(3),
            patient_gender: Some(Gender::Other),
            medical_history: "h".into(),
            questions: String::new(),
        });
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["kind"], "intake");
        assert_eq!(json["patient_gender"], "other");
        assert_eq!(serde_json::from_value::<Content>(json).unwrap(), c);
        let n = Content::Notes { text: "t".into() };
        assert_eq!(
            serde_json::to_value(&n).unwrap(),
            serde_json::json!({"kind": "notes", "text": "t"})
        );
    }

    #[test]
    fn differing_fields_names_what_changed() {
        let a = Content::Opinion(OpinionContent {
            summary: "a".into(),
            ..OpinionContent::default()
        });
        let b = Content::Opinion(OpinionContent::default());
        assert_eq!(a.differing_fields(&b), vec!["summary"]);
        assert!(a.differing_fields(&a).is_empty());
        let s = Content::Summary {
            summary: String::new(),
        };
        assert_eq!(a.differing_fields(&s).len(), 5, "another kind: every field");
    }

    #[test]
    fn doc_kind_follows_content_kind() {
        use crate::ids::UserId;
        assert_eq!(
            DocKind::from(&ContentKind::Opinion(UserId::new("D"))),
            DocKind::Opinion
        );
        assert_eq!(DocKind::Notes.to_string(), "notes");
    }
}
