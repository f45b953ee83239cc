//! Editing the content documents from the app: intake fields (patient), notes and opinion
//! sections (doctors), the final summary (coordinator). Each call is one Automerge change on the
//! device's document, checked first with the core's write rule (`access::may_write`) and schema
//! (`content::validate`), then saved with its queued change op in one transaction.

use super::error::{DeviceError, Result};
use super::types::{IntakeContent, IntakeEdit, OpinionDraft, OpinionSection};
use super::{Device, now, parse_id, rows};
use crate::access::{ContentKind, may_write};
use crate::case::{Gender, Intake, IntakePatch};
use crate::command::Command;
use crate::content::opinion::{Section, parse_concordance};
use crate::content::{self, ContentDoc, DocRef};
use crate::ids::CaseId;
use crate::refusal::Refusal;
use crate::rules::Limits;

fn gender(s: &str) -> Result<Gender> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| DeviceError::invalid("gender must be male, female or other"))
}

fn gender_text(g: Gender) -> String {
    match g {
        Gender::Male => "male",
        Gender::Female => "female",
        Gender::Other => "other",
    }
    .to_owned()
}

/// The intake of a new case from the app's edit.
pub(crate) fn intake_of(edit: &IntakeEdit) -> Result<Intake> {
    Ok(Intake {
        patient_age: edit.patient_age,
        patient_gender: edit.patient_gender.as_deref().map(gender).transpose()?,
        medical_history: edit.medical_history.clone().unwrap_or_default(),
        questions: edit.questions.clone().unwrap_or_default(),
    })
}

impl Device {
    /// Applies `edit` to the case's document of `kind`, if the user may write it now. Returns
    /// whether anything changed (typing the same text twice queues nothing).
    fn edit_doc(
        &self,
        case_id: &str,
        kind: ContentKind,
        edit: impl FnOnce(&mut ContentDoc) -> Result<(), Refusal>,
    ) -> Result<bool> {
        let case_id: CaseId = parse_id("case id", case_id)?;
        let doc_ref = DocRef::new(case_id, kind);
        let (changed, row) = self.write(|tx| {
            // The write rule needs the case's status and assignments, not its intake: the
            // stored local case is enough.
            let case = rows::case_row(tx, case_id)?
                .ok_or_else(|| DeviceError::not_found("case"))?
                .local;
            may_write(&case, &self.actor, &doc_ref.kind)?;
            let mut row = self.take_doc(tx, &doc_ref)?;
            let before = row.doc.heads();
            edit(&mut row.doc)?;
            if row.doc.heads() == before {
                return Ok((false, row));
            }
            content::validate(&row.doc, &Limits::default())?;
            let now = now();
            rows::put_doc(tx, &doc_ref, &row.doc, &row.server_heads)?;
            rows::queue_change(tx, case_id, doc_ref.doc_id(), now)?;
            Ok((true, row))
        })?;
        self.cache_doc(doc_ref.doc_id(), row);
        if changed {
            self.notify(vec![case_id.to_string()]);
        }
        Ok(changed)
    }

    /// Reads a document of a case with `f` (`None` if the device has never had it).
    fn read_doc<T>(
        &self,
        case_id: &str,
        kind: ContentKind,
        f: impl FnOnce(&ContentDoc) -> Result<T, Refusal>,
    ) -> Result<Option<T>> {
        let case_id: CaseId = parse_id("case id", case_id)?;
        self.read(|conn| {
            if !rows::case_exists(conn, case_id)? {
                return Err(DeviceError::not_found("case"));
            }
            self.with_doc(conn, &DocRef::new(case_id, kind), f)
        })
    }

    fn my_kind(&self, make: fn(crate::ids::UserId) -> ContentKind) -> ContentKind {
        make(self.user.clone())
    }

    /// The intake: the device's document if it has one, else what the case record shows.
    pub fn intake(&self, case_id: String) -> Result<IntakeContent> {
        let intake = match self.read_doc(&case_id, ContentKind::Intake, content::intake::get)? {
            Some(intake) => intake,
            None => {
                let id: CaseId = parse_id("case id", &case_id)?;
                self.read(|conn| self.current_case(conn, id))?
                    .ok_or_else(|| DeviceError::not_found("case"))?
                    .intake
            }
        };
        Ok(IntakeContent {
            patient_age: intake.patient_age,
            patient_gender: intake.patient_gender.map(gender_text),
            medical_history: intake.medical_history,
            questions: intake.questions,
        })
    }

    /// Edits the intake (the patient, while the case is a draft). Text fields take the whole
    /// new text.
    pub fn edit_intake(&self, case_id: String, edit: IntakeEdit) -> Result<()> {
        let patch = IntakePatch {
            patient_age: edit.patient_age,
            patient_gender: edit.patient_gender.as_deref().map(gender).transpose()?,
            medical_history: edit.medical_history,
            questions: edit.questions,
        };
        self.edit_doc(&case_id, ContentKind::Intake, |doc| {
            content::intake::apply_patch(doc, &patch)
        })?;
        Ok(())
    }

    /// The signed-in doctor's notes on a case (empty if none yet).
    pub fn notes(&self, case_id: String) -> Result<String> {
        Ok(self
            .read_doc(
                &case_id,
                self.my_kind(ContentKind::Notes),
                content::notes::get,
            )?
            .unwrap_or_default())
    }

    /// Replaces the notes text (stored as a minimal diff).
    pub fn set_notes(&self, case_id: String, text: String) -> Result<()> {
        self.edit_doc(&case_id, self.my_kind(ContentKind::Notes), |doc| {
            content::notes::set(doc, &text)
        })?;
        Ok(())
    }

    fn my_opinion(&self, case_id: &str) -> Result<crate::command::OpinionContent> {
        Ok(self
            .read_doc(
                case_id,
                self.my_kind(ContentKind::Opinion),
                content::opinion::get,
            )?
            .unwrap_or_default())
    }

    /// The signed-in specialist's opinion draft.
    pub fn opinion(&self, case_id: String) -> Result<OpinionDraft> {
        let o = self.my_opinion(&case_id)?;
        Ok(OpinionDraft {
            summary: o.summary,
            diagnosis: o.diagnosis,
            recommendations: o.recommendations,
            concordance: o
                .concordance
                .map(|c| content::opinion::concordance_str(c).to_owned()),
            free_text: o.free_text,
        })
    }

    /// Replaces one opinion section's text.
    pub fn set_opinion_section(
        &self,
        case_id: String,
        section: OpinionSection,
        text: String,
    ) -> Result<()> {
        let section = match section {
            OpinionSection::Summary => Section::Summary,
            OpinionSection::Diagnosis => Section::Diagnosis,
            OpinionSection::Recommendations => Section::Recommendations,
            OpinionSection::FreeText => Section::FreeText,
        };
        self.edit_doc(&case_id, self.my_kind(ContentKind::Opinion), |doc| {
            content::opinion::set_section(doc, section, &text)
        })?;
        Ok(())
    }

    /// Sets or clears the opinion's concordance.
    pub fn set_concordance(&self, case_id: String, concordance: Option<String>) -> Result<()> {
        let concordance = concordance
            .map(|c| {
                parse_concordance(&c).ok_or_else(|| {
                    DeviceError::invalid(
                        "concordance must be agrees, minor_difference or major_difference",
                    )
                })
            })
            .transpose()?;
        self.edit_doc(&case_id, self.my_kind(ContentKind::Opinion), |doc| {
            content::opinion::set_concordance(doc, concordance)
        })?;
        Ok(())
    }

    /// The coordinator's summary draft.
    pub fn summary(&self, case_id: String) -> Result<String> {
        Ok(self
            .read_doc(&case_id, ContentKind::Summary, content::summary::get)?
            .unwrap_or_default())
    }

    /// Replaces the summary text.
    pub fn set_summary(&self, case_id: String, text: String) -> Result<()> {
        self.edit_doc(&case_id, ContentKind::Summary, |doc| {
            content::summary::set(doc, &text)
        })?;
        Ok(())
    }

    /// T14, with the opinion document's content as it is now.
    pub fn submit_opinion(&self, case_id: String) -> Result<()> {
        let opinion = self.my_opinion(&case_id)?;
        self.simple(&case_id, Command::SubmitOpinion { opinion })
    }

    /// T15, with the summary document's content as it is now.
    pub fn submit_summary(&self, case_id: String) -> Result<()> {
        let summary = self.summary(case_id.clone())?;
        self.simple(&case_id, Command::SubmitSummary { summary })
    }
}
