//! A specialist's opinion draft, in the sections of SPEC §4: summary, diagnosis, recommendations,
//! concordance with the original diagnosis, and free text. Written by that specialist while
//! assigned; frozen when the opinion is submitted (T14). The only code that reads or writes
//! opinion fields.

use super::field::{self, Field, FieldType};
use super::{ContentDoc, DocKind, invalid};
use crate::command::{Concordance, OpinionContent};
use crate::refusal::Refusal;
use serde::{Deserialize, Serialize};

pub const SUMMARY: &str = "summary";
pub const DIAGNOSIS: &str = "diagnosis";
pub const RECOMMENDATIONS: &str = "recommendations";
pub const CONCORDANCE: &str = "concordance";
pub const FREE_TEXT: &str = "free_text";

/// The root fields; the texts in genesis order.
pub(crate) const FIELDS: &[Field] = &[
    Field::text(SUMMARY),
    Field::text(DIAGNOSIS),
    Field::text(RECOMMENDATIONS),
    Field::text(FREE_TEXT),
    Field::scalar(CONCORDANCE, FieldType::Concordance),
];

/// The text sections of an opinion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    Summary,
    Diagnosis,
    Recommendations,
    FreeText,
}

impl Section {
    pub const ALL: [Section; 4] = [
        Section::Summary,
        Section::Diagnosis,
        Section::Recommendations,
        Section::FreeText,
    ];

    /// The field (and wire) name.
    pub fn key(self) -> &'static str {
        match self {
            Section::Summary => SUMMARY,
            Section::Diagnosis => DIAGNOSIS,
            Section::Recommendations => RECOMMENDATIONS,
            Section::FreeText => FREE_TEXT,
        }
    }
}

/// The wire name of a concordance, as stored in the document.
pub(crate) fn concordance_str(c: Concordance) -> &'static str {
    match c {
        Concordance::Agrees => "agrees",
        Concordance::MinorDifference => "minor_difference",
        Concordance::MajorDifference => "major_difference",
    }
}

pub(crate) fn parse_concordance(s: &str) -> Option<Concordance> {
    [
        Concordance::Agrees,
        Concordance::MinorDifference,
        Concordance::MajorDifference,
    ]
    .into_iter()
    .find(|c| concordance_str(*c) == s)
}

/// The opinion as plain values.
pub fn get(doc: &ContentDoc) -> Result<OpinionContent, Refusal> {
    doc.expect_kind(DocKind::Opinion)?;
    let am = doc.am();
    let concordance = match field::scalar_str(am, CONCORDANCE)? {
        None => None,
        Some(s) => Some(parse_concordance(&s).ok_or_else(|| invalid(CONCORDANCE))?),
    };
    Ok(OpinionContent {
        summary: field::text(am, SUMMARY)?,
        diagnosis: field::text(am, DIAGNOSIS)?,
        recommendations: field::text(am, RECOMMENDATIONS)?,
        concordance,
        free_text: field::text(am, FREE_TEXT)?,
    })
}

/// The text of one section.
pub fn section(doc: &ContentDoc, section: Section) -> Result<String, Refusal> {
    doc.expect_kind(DocKind::Opinion)?;
    field::text(doc.am(), section.key())
}

/// Replaces one section's text (a minimal text diff).
pub fn set_section(doc: &mut ContentDoc, section: Section, text: &str) -> Result<(), Refusal> {
    doc.edit(DocKind::Opinion, |tx| {
        field::set_text(tx, section.key(), text)
    })
}

pub fn set_summary(doc: &mut ContentDoc, text: &str) -> Result<(), Refusal> {
    set_section(doc, Section::Summary, text)
}

pub fn set_diagnosis(doc: &mut ContentDoc, text: &str) -> Result<(), Refusal> {
    set_section(doc, Section::Diagnosis, text)
}

pub fn set_recommendations(doc: &mut ContentDoc, text: &str) -> Result<(), Refusal> {
    set_section(doc, Section::Recommendations, text)
}

pub fn set_free_text(doc: &mut ContentDoc, text: &str) -> Result<(), Refusal> {
    set_section(doc, Section::FreeText, text)
}

/// Sets (or clears) the concordance.
pub fn set_concordance(doc: &mut ContentDoc, c: Option<Concordance>) -> Result<(), Refusal> {
    doc.edit(DocKind::Opinion, |tx| {
        field::set_scalar(tx, CONCORDANCE, c.map(|c| concordance_str(c).into()))
    })
}

/// Writes every section of `opinion` in one change.
pub fn set(doc: &mut ContentDoc, opinion: &OpinionContent) -> Result<(), Refusal> {
    doc.edit(DocKind::Opinion, |tx| {
        field::set_text(tx, SUMMARY, &opinion.summary)?;
        field::set_text(tx, DIAGNOSIS, &opinion.diagnosis)?;
        field::set_text(tx, RECOMMENDATIONS, &opinion.recommendations)?;
        field::set_text(tx, FREE_TEXT, &opinion.free_text)?;
        field::set_scalar(
            tx,
            CONCORDANCE,
            opinion.concordance.map(|c| concordance_str(c).into()),
        )
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use automerge::ActorId;

    #[test]
    fn opinion_round_trip() {
        let mut d = ContentDoc::new(DocKind::Opinion, ActorId::random()).unwrap();
        assert_eq!(get(&d).unwrap(), OpinionContent::default());
        set_summary(&mut d, "s").unwrap();
        set_diagnosis(&mut d, "d").unwrap();
        set_recommendations(&mut d, "r").unwrap();
        set_free_text(&mut d, "f").unwrap();
        set_concordance(&mut d, Some(Concordance::MinorDifference)).unwrap();
        let expected = OpinionContent {
            summary: "s".into(),
            diagnosis: "d".into(),
            recommendations: "r".into(),
            concordance: Some(Concordance::MinorDifference),
            free_text: "f".into(),
        };
        assert_eq!(get(&d).unwrap(), expected);
        assert_eq!(section(&d, Section::Diagnosis).unwrap(), "d");
        let mut e = ContentDoc::new(DocKind::Opinion, ActorId::random()).unwrap();
        set(&mut e, &expected).unwrap();
        assert_eq!(get(&e).unwrap(), expected);
        set_concordance(&mut e, None).unwrap();
        assert_eq!(get(&e).unwrap().concordance, None);
    }
}
