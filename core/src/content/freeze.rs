//! Freezing on submit (DESIGN.md §2): when the case (T2/T3), an opinion (T14) or the summary (T15)
//! is submitted, the server records the document's exact heads as a [`Frozen`]; the report and
//! every later reader see the content as of those heads ([`read_at`]), whatever arrives after.

use super::{Content, ContentDoc, invalid, read};
use crate::refusal::Refusal;
use automerge::ChangeHash;
use serde::{Deserialize, Serialize};

/// The heads a document was frozen at, as lowercase hex change hashes (sorted).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Frozen {
    pub heads: Vec<String>,
}

impl Frozen {
    /// Freezes `doc` as it is now.
    pub fn of(doc: &ContentDoc) -> Self {
        let mut heads: Vec<String> = doc.heads().iter().map(ChangeHash::to_string).collect();
        heads.sort();
        Self { heads }
    }

    /// The heads as change hashes; `document_invalid` if one is not a hash.
    pub fn hashes(&self) -> Result<Vec<ChangeHash>, Refusal> {
        self.heads
            .iter()
            .map(|h| h.parse().map_err(|_| invalid("heads")))
            .collect()
    }
}

/// The content of `doc` as of `frozen` (the document may have grown since).
pub fn read_at(doc: &ContentDoc, frozen: &Frozen) -> Result<Content, Refusal> {
    let heads = frozen.hashes()?;
    if !heads.iter().all(|h| doc.has_change(h)) {
        return Err(invalid("heads"));
    }
    read(&doc.fork_at(&heads)?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::content::{DocKind, summary};
    use automerge::ActorId;

    #[test]
    fn read_at_shows_the_frozen_text_not_later_edits() {
        let mut doc = ContentDoc::new(DocKind::Summary, ActorId::random()).unwrap();
        summary::set(&mut doc, "final words").unwrap();
        let frozen = Frozen::of(&doc);
        summary::set(&mut doc, "final words, edited late").unwrap();
        assert_eq!(
            read_at(&doc, &frozen).unwrap(),
            Content::Summary {
                summary: "final words".into()
            }
        );
        let json = serde_json::to_value(&frozen).unwrap();
        assert_eq!(serde_json::from_value::<Frozen>(json).unwrap(), frozen);
    }

    #[test]
    fn read_at_refuses_unknown_or_bad_heads() {
        let doc = ContentDoc::new(DocKind::Summary, ActorId::random()).unwrap();
        let bad = Frozen {
            heads: vec!["zz".into()],
        };
        assert!(read_at(&doc, &bad).is_err());
        let unknown = Frozen {
            heads: vec!["00".repeat(32)],
        };
        assert!(read_at(&doc, &unknown).is_err());
    }
}
