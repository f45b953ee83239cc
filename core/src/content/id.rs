//! Content document ids, derived from what the document belongs to (DESIGN.md §2 table): the
//! case for the intake and the summary, the case and the doctor for notes and opinions. Every
//! device computes the same id offline, so two devices that start the same draft address the same
//! document.
//!
//! The id is the first 16 bytes of SHA-256 over a domain-separated, unambiguous encoding, shown as
//! a UUID (version 8, "custom"). Changing the encoding changes every id: don't, add a new domain
//! tag instead. The server keeps a table from id to [`DocRef`]; there is no parsing back.

use super::DocKind;
use crate::access::ContentKind;
use crate::ids::CaseId;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use uuid::Uuid;

/// The domain tag hashed before the fields; the `v1` is the version of this encoding.
const DOMAIN: &[u8] = b"sop/content-doc-id/v1";

/// A content document's id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DocId(pub Uuid);

impl fmt::Display for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for DocId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

/// What a content document belongs to: its case and its kind (with the doctor for notes and
/// opinions).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DocRef {
    pub case_id: CaseId,
    pub kind: ContentKind,
}

impl DocRef {
    pub fn new(case_id: CaseId, kind: ContentKind) -> Self {
        Self { case_id, kind }
    }

    /// The document's shape (the kind without the doctor).
    pub fn doc_kind(&self) -> DocKind {
        DocKind::from(&self.kind)
    }

    /// The derived id. Stable forever: see the module docs.
    pub fn doc_id(&self) -> DocId {
        let mut h = Sha256::new();
        h.update(DOMAIN);
        h.update([0u8]);
        h.update(self.case_id.0.as_bytes());
        h.update(self.doc_kind().as_str().as_bytes());
        h.update([0u8]);
        match &self.kind {
            ContentKind::Notes(doctor) | ContentKind::Opinion(doctor) => {
                let bytes = doctor.as_str().as_bytes();
                // Length-prefixed, so no doctor id can be confused with another field.
                h.update((bytes.len() as u64).to_be_bytes());
                h.update(bytes);
            }
            ContentKind::Intake | ContentKind::Summary => {}
        }
        let digest = h.finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        DocId(uuid::Builder::from_custom_bytes(bytes).into_uuid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::UserId;

    const CASE: CaseId = CaseId(Uuid::from_u128(0x0195_a000_0000_7000_8000_0000_0000_0001));

    fn id(kind: ContentKind) -> String {
        DocRef::new(CASE, kind).doc_id().to_string()
    }

    #[test]
    fn doc_ids_are_pinned() {
        // Fixed expected values: if one of these changes, every device and server disagree
        // about which document is which.
        assert_eq!(
            id(ContentKind::Intake),
            "350e6c27-2449-8bfc-a3e4-1489ca99e1ea"
        );
        assert_eq!(
            id(ContentKind::Notes(UserId::new("EMP12"))),
            "a10d7903-1416-871f-ad92-da2a9670d9fe"
        );
        assert_eq!(
            id(ContentKind::Opinion(UserId::new("EMP12"))),
            "a4cf64a2-4a44-858e-975e-aafe2b0cb489"
        );
        assert_eq!(
            id(ContentKind::Summary),
            "e6ce45dd-1ffc-892f-b4af-0d30596ec053"
        );
    }

    #[test]
    fn doc_ids_differ_by_case_kind_and_doctor() {
        let other_case = CaseId(Uuid::from_u128(2));
        let a = UserId::new("EMP1");
        let b = UserId::new("EMP2");
        let ids = [
            DocRef::new(CASE, ContentKind::Intake).doc_id(),
            DocRef::new(other_case, ContentKind::Intake).doc_id(),
            DocRef::new(CASE, ContentKind::Summary).doc_id(),
            DocRef::new(CASE, ContentKind::Notes(a.clone())).doc_id(),
            DocRef::new(CASE, ContentKind::Notes(b.clone())).doc_id(),
            DocRef::new(CASE, ContentKind::Opinion(a)).doc_id(),
            DocRef::new(CASE, ContentKind::Opinion(b)).doc_id(),
        ];
        let unique: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
        assert!(ids.iter().all(|id| id.0.get_version_num() == 8));
    }
}
