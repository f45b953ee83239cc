//! The intake document: the patient's age, gender, medical history and questions (SPEC §4).
//! Written by the case's patient while the case is a draft; frozen when the case is submitted.
//!
//! The only code that reads or writes intake fields. Age and gender are scalars (absent until
//! set); the history and the questions are texts that merge character-wise.

use super::field::{self, Field, FieldType};
use super::{ContentDoc, DocKind, invalid};
use crate::case::{Gender, Intake, IntakePatch};
use crate::ids::CaseId;
use crate::refusal::{Refusal, RefusalCode};
use automerge::{ActorId, ScalarValue};
use sha2::{Digest, Sha256};

pub const PATIENT_AGE: &str = "patient_age";
pub const PATIENT_GENDER: &str = "patient_gender";
pub const MEDICAL_HISTORY: &str = "medical_history";
pub const QUESTIONS: &str = "questions";

/// The root fields; the texts in genesis order.
pub(crate) const FIELDS: &[Field] = &[
    Field::scalar(PATIENT_AGE, FieldType::Age),
    Field::scalar(PATIENT_GENDER, FieldType::Gender),
    Field::text(MEDICAL_HISTORY),
    Field::text(QUESTIONS),
];

/// The youngest and oldest accepted ages (SPEC §4).
pub const AGE_RANGE: std::ops::RangeInclusive<i64> = 0..=130;

/// The wire name of a gender, as stored in the document.
pub(crate) fn gender_str(gender: Gender) -> &'static str {
    match gender {
        Gender::Male => "male",
        Gender::Female => "female",
        Gender::Other => "other",
    }
}

pub(crate) fn parse_gender(s: &str) -> Option<Gender> {
    [Gender::Male, Gender::Female, Gender::Other]
        .into_iter()
        .find(|g| gender_str(*g) == s)
}

/// The intake as plain values.
pub fn get(doc: &ContentDoc) -> Result<Intake, Refusal> {
    doc.expect_kind(DocKind::Intake)?;
    let am = doc.am();
    let patient_age = match field::scalar(am, PATIENT_AGE)? {
        None => None,
        Some(ScalarValue::Int(n)) if AGE_RANGE.contains(&n) => {
            Some(i32::try_from(n).map_err(|_| invalid(PATIENT_AGE))?)
        }
        Some(_) => return Err(invalid(PATIENT_AGE)),
    };
    let patient_gender = match field::scalar_str(am, PATIENT_GENDER)? {
        None => None,
        Some(s) => Some(parse_gender(&s).ok_or_else(|| invalid(PATIENT_GENDER))?),
    };
    Ok(Intake {
        patient_age,
        patient_gender,
        medical_history: field::text(am, MEDICAL_HISTORY)?,
        questions: field::text(am, QUESTIONS)?,
    })
}

/// Sets (or clears) the patient's age; refuses `age_invalid` outside 0–130.
pub fn set_age(doc: &mut ContentDoc, age: Option<i32>) -> Result<(), Refusal> {
    let value = age_value(age)?;
    doc.edit(DocKind::Intake, |tx| {
        field::set_scalar(tx, PATIENT_AGE, value)
    })
}

/// Sets (or clears) the patient's gender.
pub fn set_gender(doc: &mut ContentDoc, gender: Option<Gender>) -> Result<(), Refusal> {
    doc.edit(DocKind::Intake, |tx| {
        field::set_scalar(tx, PATIENT_GENDER, gender.map(|g| gender_str(g).into()))
    })
}

/// Replaces the medical history (a minimal text diff).
pub fn set_medical_history(doc: &mut ContentDoc, text: &str) -> Result<(), Refusal> {
    doc.edit(DocKind::Intake, |tx| {
        field::set_text(tx, MEDICAL_HISTORY, text)
    })
}

/// Replaces the questions (a minimal text diff).
pub fn set_questions(doc: &mut ContentDoc, text: &str) -> Result<(), Refusal> {
    doc.edit(DocKind::Intake, |tx| field::set_text(tx, QUESTIONS, text))
}

/// Writes every field of `intake` in one change.
pub fn set(doc: &mut ContentDoc, intake: &Intake) -> Result<(), Refusal> {
    let age = age_value(intake.patient_age)?;
    doc.edit(DocKind::Intake, |tx| {
        field::set_scalar(tx, PATIENT_AGE, age)?;
        field::set_scalar(
            tx,
            PATIENT_GENDER,
            intake.patient_gender.map(|g| gender_str(g).into()),
        )?;
        field::set_text(tx, MEDICAL_HISTORY, &intake.medical_history)?;
        field::set_text(tx, QUESTIONS, &intake.questions)
    })
}

/// Writes the fields a patch sets (`None` leaves a field as it is), in one change.
pub fn apply_patch(doc: &mut ContentDoc, patch: &IntakePatch) -> Result<(), Refusal> {
    let age = match patch.patient_age {
        Some(age) => Some(age_value(Some(age))?),
        None => None,
    };
    doc.edit(DocKind::Intake, |tx| {
        if let Some(age) = age {
            field::set_scalar(tx, PATIENT_AGE, age)?;
        }
        if let Some(g) = patch.patient_gender {
            field::set_scalar(tx, PATIENT_GENDER, Some(gender_str(g).into()))?;
        }
        if let Some(text) = &patch.medical_history {
            field::set_text(tx, MEDICAL_HISTORY, text)?;
        }
        if let Some(text) = &patch.questions {
            field::set_text(tx, QUESTIONS, text)?;
        }
        Ok(())
    })
}

/// The actor of the change that writes a case's initial intake (the values sent with T1/T2):
/// derived from the case, so the server and the device that created the case offline write a
/// byte-identical change and merging them never doubles a text.
pub fn creation_actor(case_id: CaseId) -> ActorId {
    let mut h = Sha256::new();
    h.update(b"sop/intake-creation/v1");
    h.update([0u8]);
    h.update(case_id.0.as_bytes());
    ActorId::from(&h.finalize()[..16])
}

/// The intake document of a new case: the genesis, then `intake` written as one change by
/// [`creation_actor`] (no change when `intake` is empty), then `actor` for later edits. The
/// server builds it when it creates the case; a device creating a case offline must build its
/// document the same way (not `ContentDoc::new` plus its own edit), or the values it sent with
/// the command and the values in its document would merge as two copies.
pub fn initial(case_id: CaseId, intake: &Intake, actor: ActorId) -> Result<ContentDoc, Refusal> {
    let mut doc = ContentDoc::new(DocKind::Intake, creation_actor(case_id))?;
    set(&mut doc, intake)?;
    doc.set_actor(actor);
    Ok(doc)
}

fn age_value(age: Option<i32>) -> Result<Option<ScalarValue>, Refusal> {
    match age {
        None => Ok(None),
        Some(a) if AGE_RANGE.contains(&i64::from(a)) => Ok(Some(ScalarValue::Int(a.into()))),
        Some(_) => Err(Refusal::new(RefusalCode::AgeInvalid)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use automerge::ActorId;

    fn doc() -> ContentDoc {
        ContentDoc::new(DocKind::Intake, ActorId::from([1u8; 16])).unwrap()
    }

    #[test]
    fn a_new_intake_is_empty() {
        assert_eq!(get(&doc()).unwrap(), Intake::default());
    }

    #[test]
    fn setters_round_trip() {
        let mut d = doc();
        set_age(&mut d, Some(42)).unwrap();
        set_gender(&mut d, Some(Gender::Female)).unwrap();
        set_medical_history(&mut d, "asthma since 2001").unwrap();
        set_questions(&mut d, "is surgery needed?").unwrap();
        let intake = get(&d).unwrap();
        assert_eq!(
            intake,
            Intake {
                patient_age: Some(42),
                patient_gender: Some(Gender::Female),
                medical_history: "asthma since 2001".into(),
                questions: "is surgery needed?".into(),
            }
        );
        set_age(&mut d, None).unwrap();
        set_gender(&mut d, None).unwrap();
        let intake = get(&d).unwrap();
        assert_eq!((intake.patient_age, intake.patient_gender), (None, None));
    }

    #[test]
    fn set_age_refuses_out_of_range() {
        let mut d = doc();
        for bad in [-1, 131] {
            let err = set_age(&mut d, Some(bad)).unwrap_err();
            assert_eq!(err.code, RefusalCode::AgeInvalid);
        }
        assert_eq!(get(&d).unwrap().patient_age, None);
    }

    #[test]
    fn setting_the_same_value_makes_no_change() {
        let mut d = doc();
        set(
            &mut d,
            &Intake {
                patient_age: Some(30),
                patient_gender: Some(Gender::Male),
                medical_history: "x".into(),
                questions: "y".into(),
            },
        )
        .unwrap();
        let heads = d.heads();
        set_age(&mut d, Some(30)).unwrap();
        set_gender(&mut d, Some(Gender::Male)).unwrap();
        set_medical_history(&mut d, "x").unwrap();
        assert_eq!(d.heads(), heads);
    }

    #[test]
    fn a_patch_sets_only_its_fields() {
        let mut d = doc();
        set_medical_history(&mut d, "kept").unwrap();
        apply_patch(
            &mut d,
            &IntakePatch {
                patient_age: Some(5),
                questions: Some("q".into()),
                ..IntakePatch::default()
            },
        )
        .unwrap();
        let intake = get(&d).unwrap();
        assert_eq!(intake.medical_history, "kept");
        assert_eq!(intake.questions, "q");
        assert_eq!(intake.patient_age, Some(5));
    }

    #[test]
    fn initial_documents_of_one_case_are_identical_and_merge_without_doubling() {
        let case = CaseId(uuid::Uuid::from_u128(7));
        let intake = Intake {
            patient_age: Some(40),
            patient_gender: None,
            medical_history: "asthma".into(),
            questions: String::new(),
        };
        let server = initial(case, &intake, ActorId::from([1u8; 16])).unwrap();
        let mut device = initial(case, &intake, ActorId::from([2u8; 16])).unwrap();
        assert_eq!(server.heads(), device.heads());
        set_questions(&mut device, "why?").unwrap();
        let mut merged = server.clone();
        merged.merge(&device).unwrap();
        let got = get(&merged).unwrap();
        assert_eq!(got.medical_history, "asthma");
        assert_eq!(got.questions, "why?");
        let empty = initial(case, &Intake::default(), ActorId::random()).unwrap();
        assert_eq!(empty.heads().len(), 1, "only the genesis");
        let other = initial(CaseId(uuid::Uuid::from_u128(8)), &intake, ActorId::random()).unwrap();
        assert_ne!(other.heads(), server.heads());
    }

    #[test]
    fn typed_access_refuses_another_kind() {
        let mut notes = ContentDoc::new(DocKind::Notes, ActorId::random()).unwrap();
        assert_eq!(get(&notes).unwrap_err().code, RefusalCode::DocumentInvalid);
        assert_eq!(
            set_questions(&mut notes, "x").unwrap_err().code,
            RefusalCode::DocumentInvalid
        );
    }
}
