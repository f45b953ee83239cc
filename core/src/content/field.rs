//! The root fields of the content documents and the low-level Automerge reads and writes of one
//! field. Only the typed kind modules ([`super::intake`], [`super::notes`], [`super::opinion`],
//! [`super::summary`]) and the schema check use this; nothing outside `content` touches fields.
//!
//! Every field sits at the document root. Texts are Automerge `Text` objects created by the
//! genesis change (never by a device: see [`super::doc`]); scalars are absent until first set,
//! and a scalar set back to "none" is deleted.

use super::invalid;
use crate::refusal::Refusal;
use automerge::transaction::{Transactable, Transaction};
use automerge::{ObjType, ROOT, ReadDoc, ScalarValue, Value};

/// What a root field holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FieldType {
    /// A `Text` object made by the genesis change.
    Text,
    /// An integer age in 0–130, or absent / null.
    Age,
    /// `male`, `female` or `other`, or absent / null.
    Gender,
    /// `agrees`, `minor_difference` or `major_difference`, or absent / null.
    Concordance,
}

/// One root field of a document kind.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Field {
    pub key: &'static str,
    pub ty: FieldType,
}

impl Field {
    pub(crate) const fn text(key: &'static str) -> Self {
        Self {
            key,
            ty: FieldType::Text,
        }
    }

    pub(crate) const fn scalar(key: &'static str, ty: FieldType) -> Self {
        Self { key, ty }
    }
}

/// The current text of the `Text` field `key`.
pub(crate) fn text(doc: &impl ReadDoc, key: &str) -> Result<String, Refusal> {
    match doc.get(ROOT, key) {
        Ok(Some((Value::Object(ObjType::Text), id))) => doc.text(&id).map_err(|_| invalid(key)),
        _ => Err(invalid(key)),
    }
}

/// The current value of the scalar field `key`: `None` when absent or null.
pub(crate) fn scalar(doc: &impl ReadDoc, key: &str) -> Result<Option<ScalarValue>, Refusal> {
    match doc.get(ROOT, key) {
        Ok(None) => Ok(None),
        Ok(Some((Value::Scalar(v), _))) if v.is_null() => Ok(None),
        Ok(Some((Value::Scalar(v), _))) => Ok(Some(v.into_owned())),
        _ => Err(invalid(key)),
    }
}

/// A string scalar: `None` when absent or null; anything but a string is invalid.
pub(crate) fn scalar_str(doc: &impl ReadDoc, key: &str) -> Result<Option<String>, Refusal> {
    match scalar(doc, key)? {
        None => Ok(None),
        Some(ScalarValue::Str(s)) => Ok(Some(s.to_string())),
        Some(_) => Err(invalid(key)),
    }
}

/// Replaces the whole text of the field `key` by `value`, as a minimal diff (Automerge's
/// `update_text`), so concurrent edits elsewhere in the text survive the merge.
pub(crate) fn set_text(tx: &mut Transaction<'_>, key: &str, value: &str) -> Result<(), Refusal> {
    match tx.get(ROOT, key) {
        Ok(Some((Value::Object(ObjType::Text), id))) => {
            tx.update_text(&id, value).map_err(|_| invalid(key))
        }
        _ => Err(invalid(key)),
    }
}

/// Sets the scalar field `key` to `value` (deletes it for `None`). Writing the value it already
/// has (with no concurrent conflict) makes no operation, so no change.
pub(crate) fn set_scalar(
    tx: &mut Transaction<'_>,
    key: &str,
    value: Option<ScalarValue>,
) -> Result<(), Refusal> {
    let current: Vec<_> = tx.get_all(ROOT, key).map_err(|_| invalid(key))?;
    match value {
        Some(v) => {
            let same =
                matches!(current.as_slice(), [(Value::Scalar(cur), _)] if cur.as_ref() == &v);
            if !same {
                tx.put(ROOT, key, v).map_err(|_| invalid(key))?;
            }
        }
        None => {
            if !current.is_empty() {
                tx.delete(ROOT, key).map_err(|_| invalid(key))?;
            }
        }
    }
    Ok(())
}
