//! The coordinator's final summary draft: one text, written by the case's coordinator while the
//! doctors are assigned; frozen when the summary is submitted (T15). The only code that reads or
//! writes the summary field.

use super::field::{self, Field};
use super::{ContentDoc, DocKind};
use crate::refusal::Refusal;

pub const SUMMARY: &str = "summary";

/// The root fields; the texts in genesis order.
pub(crate) const FIELDS: &[Field] = &[Field::text(SUMMARY)];

/// The summary's text.
pub fn get(doc: &ContentDoc) -> Result<String, Refusal> {
    doc.expect_kind(DocKind::Summary)?;
    field::text(doc.am(), SUMMARY)
}

/// Replaces the summary's text (a minimal text diff).
pub fn set(doc: &mut ContentDoc, text: &str) -> Result<(), Refusal> {
    doc.edit(DocKind::Summary, |tx| field::set_text(tx, SUMMARY, text))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use automerge::ActorId;

    #[test]
    fn summary_round_trip() {
        let mut d = ContentDoc::new(DocKind::Summary, ActorId::random()).unwrap();
        assert_eq!(get(&d).unwrap(), "");
        set(&mut d, "Both specialists agree.").unwrap();
        assert_eq!(get(&d).unwrap(), "Both specialists agree.");
    }
}
