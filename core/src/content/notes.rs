//! A doctor's private notes on a case: one text, written by that doctor while assigned, read by
//! nobody else (SPEC §8). The only code that reads or writes the notes field.

use super::field::{self, Field};
use super::{ContentDoc, DocKind};
use crate::refusal::Refusal;

pub const TEXT: &str = "text";

/// The root fields; the texts in genesis order.
pub(crate) const FIELDS: &[Field] = &[Field::text(TEXT)];

/// The notes' text.
pub fn get(doc: &ContentDoc) -> Result<String, Refusal> {
    doc.expect_kind(DocKind::Notes)?;
    field::text(doc.am(), TEXT)
}

/// Replaces the notes' text (a minimal text diff).
pub fn set(doc: &mut ContentDoc, text: &str) -> Result<(), Refusal> {
    doc.edit(DocKind::Notes, |tx| field::set_text(tx, TEXT, text))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use automerge::ActorId;

    #[test]
    fn notes_round_trip() {
        let mut d = ContentDoc::new(DocKind::Notes, ActorId::random()).unwrap();
        assert_eq!(get(&d).unwrap(), "");
        set(&mut d, "check the 2019 scan").unwrap();
        set(&mut d, "check the 2019 and 2021 scans").unwrap();
        assert_eq!(get(&d).unwrap(), "check the 2019 and 2021 scans");
    }
}
