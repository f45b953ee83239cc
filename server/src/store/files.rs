//! The index of stored blobs (uploaded documents, reports): one row per SHA-256, whatever how
//! many documents point at it. The bytes themselves live in [`crate::blobs::BlobStore`].

use super::sql::Tx;
use super::{Store, StoreError, write_tx};
use chrono::{DateTime, Utc};

impl Store {
    /// Records that the blob `sha256` is stored (a no-op if it already is).
    pub async fn record_blob(
        &self,
        sha256: &str,
        size: i64,
        content_type: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        Ok(write_tx!(&self.db, |tx| {
            tx.insert_blob(sha256, size, content_type, now).await
        })?)
    }
}
