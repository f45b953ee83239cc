//! Saved drafts of what people type — doctor notes, opinions, the coordinator's summary — with
//! the write permission of `sop-core` checked against the case in the same transaction.
//! (The patient's intake lives on the case itself and changes through `UpdateIntake`.)

use super::audit::{self, AuditEntry, AuditMeta};
use super::cases::load_for_update;
use super::sql::Tx;
use super::{Store, StoreError, read_tx, write_tx};
use chrono::{DateTime, Utc};
use sop_core::access::{ContentKind, may_write};
use sop_core::actor::Actor;
use sop_core::ids::CaseId;
use sop_core::{Refusal, RefusalCode};

/// The storage key of a content document: its kind and the doctor it belongs to ("" for the
/// summary, which belongs to the case).
pub fn content_key(kind: &ContentKind) -> (&'static str, String) {
    match kind {
        ContentKind::Intake => ("intake", String::new()),
        ContentKind::Notes(d) => ("notes", d.to_string()),
        ContentKind::Opinion(d) => ("opinion", d.to_string()),
        ContentKind::Summary => ("summary", String::new()),
    }
}

/// A stored draft.
#[derive(Clone, Debug, PartialEq)]
pub struct Draft {
    pub body: serde_json::Value,
    pub updated_at: DateTime<Utc>,
    pub frozen_at: Option<DateTime<Utc>>,
}

impl Store {
    /// Saves a draft if `actor` may write it now.
    pub async fn save_draft(
        &self,
        case_id: CaseId,
        kind: &ContentKind,
        body: &serde_json::Value,
        actor: &Actor,
        meta: &AuditMeta,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (kind_name, owner) = content_key(kind);
        write_tx!(&self.db, |tx| {
            save_in(
                &mut tx, case_id, kind, kind_name, &owner, body, actor, meta, now,
            )
            .await
        })
    }

    /// Reads a draft (the caller checks visibility).
    pub async fn draft(
        &self,
        case_id: CaseId,
        kind: &ContentKind,
    ) -> Result<Option<Draft>, StoreError> {
        let (kind_name, owner) = content_key(kind);
        let row = read_tx!(&self.db, |tx| tx
            .content(case_id.0, kind_name, &owner)
            .await)?;
        Ok(row.map(|r| Draft {
            body: r.body.0,
            updated_at: r.updated_at,
            frozen_at: r.frozen_at,
        }))
    }
}

#[allow(clippy::too_many_arguments)]
async fn save_in<T: Tx>(
    tx: &mut T,
    case_id: CaseId,
    kind: &ContentKind,
    kind_name: &str,
    owner: &str,
    body: &serde_json::Value,
    actor: &Actor,
    meta: &AuditMeta,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let Some((case, _)) = load_for_update(tx, case_id).await? else {
        return Err(Refusal::new(RefusalCode::CaseNotFound).into());
    };
    may_write(&case, actor, kind)?;
    if tx
        .content(case_id.0, kind_name, owner)
        .await?
        .is_some_and(|row| row.frozen_at.is_some())
    {
        return Err(Refusal::new(RefusalCode::OpinionAlreadySubmitted).into());
    }
    tx.put_content(case_id.0, kind_name, owner, body, now, false)
        .await?;
    let entry = AuditEntry {
        action: match kind {
            ContentKind::Intake => "save_intake",
            ContentKind::Notes(_) => "save_notes",
            ContentKind::Opinion(_) => "save_opinion",
            ContentKind::Summary => "save_summary",
        },
        case_id: Some(case_id.0),
        resource_id: None,
        outcome: "ok".to_owned(),
    };
    audit::append(tx, meta, entry, now).await
}
