//! Notifications (the in-app inbox) and the outbox of outbound calls, as the API lists them.

use super::rows::{NotificationRow, OutboxRow};
use super::sql::Tx;
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

    /// Every outbound call, newest first, with its delivery state (for admins).
    pub async fn list_outbox(&self, page: Page) -> Result<Paged<OutboxRow>, StoreError> {
        let (items, total) = read_tx!(&self.db, |tx| tx.list_outbox(page.window()).await)?;
        Ok(Paged { items, total, page })
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
