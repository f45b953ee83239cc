//! Recovered drafts (DESIGN.md §3, "nothing typed is lost"). When the server refuses a device's
//! content change (say the patient typed into the intake on phone A while phone B submitted the
//! case), the device:
//!
//! 1. computes [`recovered_draft`] of its local document against the server's version of it (the
//!    server's document as the device last received it, e.g. `local.fork_at(server_heads)` plus
//!    what the next pull brings);
//! 2. resets the document to the server's version ([`ContentDoc::reset_to`]) and drops every
//!    pending change of that document from its outbox (they were built on the refused one);
//! 3. keeps the draft, with the refusal's reason, until the user has seen (and maybe copied) it.
//!
//! Deliberately simple: the draft is the device's whole typed content, plus the names of the
//! fields where it differs from the server's, not a character-level diff. The user sees what they
//! wrote and can copy it wherever it may still go.

use super::{Content, ContentDoc, invalid, read};
use crate::refusal::Refusal;
use serde::{Deserialize, Serialize};

/// What a device keeps of its refused edits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveredDraft {
    /// The device's content as it was before the reset.
    pub content: Content,
    /// Wire names of the fields whose local value is not the server's.
    pub fields: Vec<String>,
}

/// The local content that the server's version does not have, or `None` when the local typed
/// content equals the server's (nothing would be lost by resetting).
pub fn recovered_draft(
    local: &ContentDoc,
    server: &ContentDoc,
) -> Result<Option<RecoveredDraft>, Refusal> {
    if local.kind() != server.kind() {
        return Err(invalid("kind"));
    }
    let mine = read(local)?;
    let theirs = read(server)?;
    let fields = mine.differing_fields(&theirs);
    if fields.is_empty() {
        return Ok(None);
    }
    Ok(Some(RecoveredDraft {
        content: mine,
        fields: fields.into_iter().map(str::to_owned).collect(),
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::content::{DocKind, intake};
    use automerge::ActorId;

    #[test]
    fn a_draft_holds_the_local_text_and_names_the_fields() {
        let mut server = ContentDoc::new(DocKind::Intake, ActorId::random()).unwrap();
        intake::set_medical_history(&mut server, "submitted history").unwrap();
        let mut local = server.fork_at(&server.heads()).unwrap();
        local.set_actor(ActorId::random());
        assert_eq!(recovered_draft(&local, &server).unwrap(), None);
        intake::set_medical_history(&mut local, "submitted history, and more").unwrap();
        let draft = recovered_draft(&local, &server).unwrap().unwrap();
        assert_eq!(draft.fields, vec!["medical_history".to_owned()]);
        let Content::Intake(i) = &draft.content else {
            panic!("intake expected")
        };
        assert_eq!(i.medical_history, "submitted history, and more");
        local.reset_to(&server).unwrap();
        assert_eq!(recovered_draft(&local, &server).unwrap(), None);
    }
}
