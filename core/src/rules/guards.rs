//! Input guards shared by several commands: reasons, requested items, intake fields, documents.

use super::{ALLOWED_CONTENT_TYPES, Limits};
use crate::case::{Case, Intake, IntakePatch};
use crate::catalog::Catalog;
use crate::command::{NewDocument, RequestSpec};
use crate::refusal::{Refusal, RefusalCode};

type Guard = Result<(), Refusal>;

fn refuse(code: RefusalCode) -> Guard {
    Err(Refusal::new(code))
}

/// A cancel or reject reason: 1–`max_reason_chars` characters, not only spaces.
pub(super) fn reason(reason: &str, limits: &Limits) -> Guard {
    if reason.trim().is_empty() {
        return refuse(RefusalCode::ReasonRequired);
    }
    if reason.chars().count() > limits.max_reason_chars {
        return refuse(RefusalCode::ReasonTooLong);
    }
    Ok(())
}

/// A list of requested documents: non-empty, each item non-empty and short enough.
pub(super) fn request_items(request: &RequestSpec, limits: &Limits) -> Guard {
    if request.items.is_empty() {
        return refuse(RefusalCode::ItemsRequired);
    }
    if request.items.len() > limits.max_request_items {
        return refuse(RefusalCode::TooManyItems);
    }
    for item in &request.items {
        if item.trim().is_empty() {
            return refuse(RefusalCode::ItemEmpty);
        }
        if item.chars().count() > limits.max_request_item_chars {
            return refuse(RefusalCode::ItemTooLong);
        }
    }
    Ok(())
}

/// A request id the case has not used yet.
pub(super) fn fresh_request(case: Option<&Case>, request: &RequestSpec) -> Guard {
    match case.and_then(|c| c.request(request.request_id)) {
        Some(_) => refuse(RefusalCode::IdAlreadyUsed),
        None => Ok(()),
    }
}

/// The review type and category exist and are active.
pub(super) fn catalog_active(
    catalog: &Catalog,
    rt: crate::ids::ReviewTypeId,
    dc: crate::ids::CategoryId,
) -> Guard {
    if !catalog.review_type(rt).is_some_and(|r| r.active) {
        return refuse(RefusalCode::ReviewTypeInactive);
    }
    if !catalog.category(dc).is_some_and(|c| c.active) {
        return refuse(RefusalCode::CategoryInactive);
    }
    Ok(())
}

fn age(age: i32) -> Guard {
    if (0..=130).contains(&age) {
        Ok(())
    } else {
        refuse(RefusalCode::AgeInvalid)
    }
}

fn text(value: &str, limits: &Limits) -> Guard {
    if value.chars().count() > limits.max_text_chars {
        refuse(RefusalCode::TextTooLong)
    } else {
        Ok(())
    }
}

/// Intake values as entered: whatever is given must be in range (a draft may be incomplete).
pub(super) fn intake_values(intake: &Intake, limits: &Limits) -> Guard {
    if let Some(a) = intake.patient_age {
        age(a)?;
    }
    text(&intake.medical_history, limits)?;
    text(&intake.questions, limits)
}

/// A partial intake update: non-empty, and whatever is given in range.
pub(super) fn intake_patch(patch: &IntakePatch, limits: &Limits) -> Guard {
    if patch.is_empty() {
        return refuse(RefusalCode::NothingToUpdate);
    }
    if let Some(a) = patch.patient_age {
        age(a)?;
    }
    for t in [&patch.medical_history, &patch.questions]
        .into_iter()
        .flatten()
    {
        text(t, limits)?;
    }
    Ok(())
}

/// The intake is complete enough to submit (T3).
pub(super) fn intake_complete(intake: &Intake) -> Guard {
    match intake.patient_age {
        Some(a) => age(a)?,
        None => return refuse(RefusalCode::AgeInvalid),
    }
    if intake.patient_gender.is_none() {
        return refuse(RefusalCode::GenderRequired);
    }
    if intake.medical_history.trim().is_empty() {
        return refuse(RefusalCode::MedicalHistoryRequired);
    }
    Ok(())
}

/// A document's metadata, type and size limits (T12).
pub(super) fn document(case: &Case, doc: &NewDocument, limits: &Limits) -> Guard {
    let name_len = doc.file_name.chars().count();
    if doc.file_name.trim().is_empty() || name_len > limits.max_file_name_chars {
        return refuse(RefusalCode::FileNameInvalid);
    }
    if doc.sha256.len() != 64 || !doc.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return refuse(RefusalCode::Sha256Invalid);
    }
    // An empty file has no type to detect: say it is empty, not that its type is wrong.
    if doc.size <= 0 {
        return refuse(RefusalCode::FileEmpty);
    }
    if !ALLOWED_CONTENT_TYPES.contains(&doc.content_type.as_str()) {
        return refuse(RefusalCode::FileTypeNotAllowed);
    }
    if doc.size > limits.max_file_bytes {
        return refuse(RefusalCode::FileTooLarge);
    }
    if case.stored_bytes().saturating_add(doc.size) > limits.max_case_bytes {
        return refuse(RefusalCode::CaseStorageFull);
    }
    if case.document(doc.document_id).is_some() {
        return refuse(RefusalCode::IdAlreadyUsed);
    }
    Ok(())
}
