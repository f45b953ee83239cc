//! The schema check of a content document, run by the server on every document it would commit
//! (after merging pushed changes) and usable by a device before it pushes.
//!
//! A document is valid when:
//! - it contains its kind's genesis change;
//! - its root has no key but the kind's fields;
//! - each text field holds exactly one value, the `Text` object the genesis created (a device that
//!   created its own `Text` under the key would hide other devices' typing), with at most
//!   `Limits::max_text_chars` characters;
//! - each scalar field is absent, or every value it holds (concurrent writes keep several, one
//!   visible) is null or of the right type and range: age an integer 0–130, gender one of
//!   `male`/`female`/`other`, concordance one of `agrees`/`minor_difference`/`major_difference`.
//!
//! Refusals name the field concerned (its wire name), never a value or an unexpected key's text.

use super::doc::{genesis_actor, genesis_hash};
use super::field::FieldType;
use super::{ContentDoc, intake, invalid, opinion, over_limit};
use crate::refusal::{Refusal, RefusalCode};
use crate::rules::Limits;
use automerge::{ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value};

/// Checks that `doc` has its kind's shape and sizes (see the module docs).
pub fn validate(doc: &ContentDoc, limits: &Limits) -> Result<(), Refusal> {
    let kind = doc.kind();
    let am = doc.am();
    if !doc.has_change(&genesis_hash(kind)?) {
        return Err(invalid("genesis"));
    }
    let fields = kind.fields();
    if am
        .keys(ROOT)
        .any(|key| !fields.iter().any(|f| f.key == key))
    {
        return Err(invalid("root"));
    }
    let genesis = genesis_actor(kind);
    let mut text_counter = 0u64;
    for f in fields {
        let values = am.get_all(ROOT, f.key).map_err(|_| invalid(f.key))?;
        match f.ty {
            FieldType::Text => {
                // The genesis change creates the texts in table order, op counters 1, 2, …
                text_counter += 1;
                let [(Value::Object(ObjType::Text), id)] = values.as_slice() else {
                    return Err(invalid(f.key));
                };
                if !matches!(id, ObjId::Id(ctr, actor, _) if *ctr == text_counter && *actor == genesis)
                {
                    return Err(invalid(f.key));
                }
                // Text lengths count Unicode code points (Automerge's default encoding, pinned
                // by a test), so the length needs no copy of the text.
                let chars = am.length(id);
                if chars > limits.max_text_chars {
                    return Err(text_too_long(f.key, limits.max_text_chars));
                }
            }
            ty => {
                for (value, _) in &values {
                    let ok = match value {
                        Value::Scalar(v) => scalar_ok(ty, v),
                        Value::Object(_) => false,
                    };
                    if !ok {
                        return Err(invalid(f.key));
                    }
                }
            }
        }
    }
    Ok(())
}

fn scalar_ok(ty: FieldType, v: &ScalarValue) -> bool {
    match (ty, v) {
        (_, ScalarValue::Null) => true,
        (FieldType::Age, ScalarValue::Int(n)) => intake::AGE_RANGE.contains(n),
        (FieldType::Gender, ScalarValue::Str(s)) => intake::parse_gender(s).is_some(),
        (FieldType::Concordance, ScalarValue::Str(s)) => opinion::parse_concordance(s).is_some(),
        _ => false,
    }
}

fn text_too_long(key: &str, limit: usize) -> Refusal {
    let r = over_limit(RefusalCode::TextTooLong, limit, "characters", "حرف");
    Refusal {
        message_en: format!("{} (`{key}`)", r.message_en),
        message_ar: format!("{} (`{key}`)", r.message_ar),
        ..r
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::content::{DocKind, notes};
    use automerge::ActorId;

    #[test]
    fn fresh_documents_are_valid() {
        for kind in DocKind::ALL {
            let doc = ContentDoc::new(kind, ActorId::random()).unwrap();
            validate(&doc, &Limits::default()).unwrap();
        }
    }

    #[test]
    fn a_text_over_the_limit_is_refused_naming_the_field_and_limit() {
        let mut doc = ContentDoc::new(DocKind::Notes, ActorId::random()).unwrap();
        notes::set(&mut doc, "abcdef").unwrap();
        let limits = Limits {
            max_text_chars: 5,
            ..Limits::default()
        };
        let err = validate(&doc, &limits).unwrap_err();
        assert_eq!(err.code, RefusalCode::TextTooLong);
        assert!(err.message_en.contains("`text`") && err.message_en.contains('5'));
        // Characters (Unicode code points), not bytes nor UTF-16 units.
        notes::set(&mut doc, "ااااا").unwrap();
        validate(&doc, &limits).unwrap();
        notes::set(&mut doc, "😀😀😀😀😀").unwrap();
        validate(&doc, &limits).unwrap();
        notes::set(&mut doc, "😀😀😀😀😀😀").unwrap();
        assert_eq!(
            validate(&doc, &limits).unwrap_err().code,
            RefusalCode::TextTooLong
        );
    }
}
