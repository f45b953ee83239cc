//! Notifications (the in-app inbox) and the outbox of outbound calls, as the API lists them, and
//! an admin's retry of a call that failed for good.

use super::audit::{self, AuditEntry, AuditMeta};
use super::rows::{NotificationRow, OutboxRow};
use super::sql::{OutboxFilter, Tx};
use super::{Page, Paged, Store, StoreError, read_tx, write_tx};
use chrono::{DateTime, Utc};
use uuid::Uuid;

impl Store {
    /// The inbox of a user: notifications addressed to any of `recipients` (the user id, plus
    /// [`super::ADMINS_RECIPIENT`] for admins), newest first.
    pub async fn list_notifications(
        &self,
        recipients: &[String],
        page: Page,
    ) -> Result<Paged<NotificationRow>, StoreError> {
        let (items, total) = read_tx!(&self.db, |tx| tx
            .list_notifications(recipients, page.window())
            .await)?;
        Ok(Paged { items, total, page })
    }

    /// The outbound calls matching `filter`, newest first, with their delivery state (for
    /// admins).
    pub async fn list_outbox(
        &self,
        filter: &OutboxFilter,
        page: Page,
    ) -> Result<Paged<OutboxRow>, StoreError> {
        let (items, total) = read_tx!(&self.db, |tx| tx.list_outbox(filter, page.window()).await)?;
        Ok(Paged { items, total, page })
    }

    /// Puts an outbound call that failed for good back in the queue (an admin's retry, once
    /// the other side is fixed): `pending`, attempts from zero, due now, with the idempotency
    /// key it always had, so the other side still acts at most once. Audited, whatever the
    /// answer.
    pub async fn retry_outbox(
        &self,
        id: Uuid,
        meta: &AuditMeta,
        now: DateTime<Utc>,
    ) -> Result<Retry, StoreError> {
        write_tx!(&self.db, |tx| {
            let (retry, case_id) = match tx.outbox_state(id).await? {
                None => (Retry::Unknown, None),
                Some((status, case_id)) if status != "failed" => {
                    (Retry::NotFailed(status), case_id)
                }
                // Another admin's retry may have come first: the row is queued either way.
                Some((_, case_id)) => {
                    tx.requeue_failed_outbox(id, now).await?;
                    (Retry::Queued, case_id)
                }
            };
            let outcome = match &retry {
                Retry::Queued => "ok",
                Retry::Unknown => "not_found",
                Retry::NotFailed(_) => "refused:not_failed",
            };
            let entry = AuditEntry {
                action: "retry_outbox",
                case_id,
                resource_id: Some(id.to_string()),
                outcome: outcome.to_owned(),
            };
            audit::append(&mut tx, meta, entry, now).await?;
            Ok(retry)
        })
    }

    /// Outbox rows per delivery status (`pending`, `delivering`, `done`, `failed`), for the
    /// metrics.
    pub async fn count_outbox(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(read_tx!(&self.db, |tx| tx.count_outbox().await)?)
    }

    /// Adds an outbound call made outside a case command (the sandbox's callback retry);
    /// false when a row with the same idempotency key exists already.
    pub async fn enqueue_outbox(&self, row: &OutboxRow) -> Result<bool, StoreError> {
        Ok(write_tx!(&self.db, |tx| tx.insert_outbox(row).await)?)
    }

    /// Takes a due row (`pending`, or `delivering` with an expired lease) for delivery until
    /// `lease_until`. Only one caller gets `true`, so several workers never deliver a row twice
    /// at once; a worker that dies leaves the row to be retried once its lease ends.
    pub async fn claim_outbox(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(write_tx!(&self.db, |tx| tx
            .claim_outbox(id, now, lease_until)
            .await)?)
    }

    /// Outbox rows due for delivery (including rows whose delivery lease expired).
    pub async fn due_outbox(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        Ok(read_tx!(&self.db, |tx| tx.due_outbox(now, limit).await)?)
    }

    /// Records the result of one delivery attempt.
    pub async fn finish_outbox(
        &self,
        id: Uuid,
        status: &str,
        attempts: i32,
        next_attempt_at: DateTime<Utc>,
        last_error: Option<&str>,
        done_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        Ok(write_tx!(&self.db, |tx| {
            tx.finish_outbox(id, status, attempts, next_attempt_at, last_error, done_at)
                .await
        })?)
    }
}

/// What an admin's retry of an outbound call did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Back in the queue; the worker delivers it shortly.
    Queued,
    /// No such row.
    Unknown,
    /// Only a `failed` row can be retried; this one is in the given status.
    NotFailed(String),
}
