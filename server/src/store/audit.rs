//! The audit log (SPEC §8): append-only, every row carrying the hash of the previous one, so that
//! changing, removing or reordering a row breaks the chain at that row. Rows say who, what, which,
//! when, where and the outcome — never clinical text, bodies or document contents.

use super::rows::AuditRow;
use super::sql::{AuditFilter, Tx};
use super::{Page, Paged, Store, StoreError, read_tx, write_tx};
use chrono::{DateTime, SubsecRound, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The hash before the first row.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who is acting and from where, for the audit row of a request.
#[derive(Clone, Debug, Default)]
pub struct AuditMeta {
    pub user_id: Option<String>,
    /// `patient`, `doctor`, `admin`, `payment_platform`, `system`.
    pub role: String,
    pub request_id: Option<String>,
    pub device_id: Option<String>,
    pub device_time: Option<DateTime<Utc>>,
    pub ip: Option<String>,
}

/// What an audit row is about.
#[derive(Clone, Debug)]
pub struct AuditEntry<'a> {
    pub action: &'a str,
    pub case_id: Option<Uuid>,
    pub resource_id: Option<String>,
    /// `ok`, or `refused:<code>`, `denied`, …
    pub outcome: String,
}

/// The result of checking the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainReport {
    pub rows: i64,
    /// The first row whose hash or link does not match, if any.
    pub broken_at: Option<i64>,
}

/// The hash of a row: SHA-256 over the previous hash and every field, each length-prefixed so
/// that no two different rows serialize alike.
pub fn row_hash(row: &AuditRow) -> String {
    let mut h = Sha256::new();
    let mut field = |value: &str| {
        h.update((value.len() as u64).to_be_bytes());
        h.update(value.as_bytes());
    };
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "\u{0}".to_owned());
    field(&row.prev_hash);
    field(&row.seq.to_string());
    field(&row.at.to_rfc3339());
    field(&opt(&row.user_id));
    field(&row.role);
    field(&row.action);
    field(&opt(&row.case_id.map(|c| c.to_string())));
    field(&opt(&row.resource_id));
    field(&row.outcome);
    field(&opt(&row.request_id));
    field(&opt(&row.device_id));
    field(&opt(&row.device_time.map(|t| t.to_rfc3339())));
    field(&opt(&row.ip));
    hex::encode(h.finalize())
}

/// An audit row waiting for its place in the chain: a write transaction collects them in its
/// `FeedBatch` and [`append_all`] chains them right before the feed rows, at commit.
#[derive(Debug)]
pub(crate) struct PendingAudit {
    meta: AuditMeta,
    action: String,
    case_id: Option<Uuid>,
    resource_id: Option<String>,
    outcome: String,
    at: DateTime<Utc>,
}

impl PendingAudit {
    pub(crate) fn new(meta: &AuditMeta, entry: AuditEntry<'_>, at: DateTime<Utc>) -> Self {
        Self {
            meta: meta.clone(),
            action: entry.action.to_owned(),
            case_id: entry.case_id,
            resource_id: entry.resource_id,
            outcome: entry.outcome,
            at,
        }
    }
}

/// Appends one row inside the caller's transaction (see [`append_all`]).
pub(crate) async fn append<T: Tx>(
    tx: &mut T,
    meta: &AuditMeta,
    entry: AuditEntry<'_>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    append_all(tx, vec![PendingAudit::new(meta, entry, now)]).await
}

/// Appends `pending` to the chain inside the caller's transaction (see [`chain`]).
///
/// This takes the feed clock's row, which serializes every writer until COMMIT: callers make it
/// their **last** step. `FeedBatch::commit` does, for every transaction that writes feed rows.
pub(crate) async fn append_all<T: Tx>(
    tx: &mut T,
    pending: Vec<PendingAudit>,
) -> Result<(), StoreError> {
    if pending.is_empty() {
        return Ok(());
    }
    let n = i64::try_from(pending.len()).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let at = tx.take_positions(0, n).await?;
    let rows = chain(pending, at.audit_prev, at.audit_prev_hash);
    tx.append_log(&rows, &[]).await?;
    Ok(())
}

/// The rows of `pending`, chained after row `prev` whose hash is `prev_hash` (the tail the
/// feed clock's row handed out: `Tx::take_positions`).
pub(crate) fn chain(pending: Vec<PendingAudit>, prev: i64, mut prev_hash: String) -> Vec<AuditRow> {
    let mut rows = Vec::with_capacity(pending.len());
    for (seq, p) in (prev + 1..).zip(pending) {
        // Both databases keep microseconds; hash what will be read back.
        let mut row = AuditRow {
            seq,
            at: p.at.trunc_subsecs(6),
            user_id: p.meta.user_id,
            role: p.meta.role,
            action: p.action,
            case_id: p.case_id,
            resource_id: p.resource_id,
            outcome: p.outcome,
            request_id: p.meta.request_id,
            device_id: p.meta.device_id,
            device_time: p.meta.device_time.map(|t| t.trunc_subsecs(6)),
            ip: p.meta.ip,
            prev_hash,
            hash: String::new(),
        };
        row.hash = row_hash(&row);
        prev_hash = row.hash.clone();
        rows.push(row);
    }
    rows
}

impl Store {
    /// Records one audited action in its own transaction (reads, refused commands).
    pub async fn audit(
        &self,
        meta: &AuditMeta,
        entry: AuditEntry<'_>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        write_tx!(&self.db, |tx| append(&mut tx, meta, entry, now).await)
    }

    /// A page of audit rows matching `filter`, newest first.
    pub async fn list_audit(
        &self,
        filter: &AuditFilter,
        page: Page,
    ) -> Result<Paged<AuditRow>, StoreError> {
        let (items, total) = read_tx!(&self.db, |tx| tx.list_audit(filter, page.window()).await)?;
        Ok(Paged { items, total, page })
    }

    /// The "who viewed my case" of a patient (SPEC §8): audit rows of doctors and admins about
    /// the patient's cases (or one of them), newest first.
    pub async fn access_history(
        &self,
        patient_id: &str,
        case_id: Option<Uuid>,
        page: Page,
    ) -> Result<Paged<AuditRow>, StoreError> {
        let (items, total) = read_tx!(&self.db, |tx| tx
            .access_history(patient_id, case_id, page.window())
            .await)?;
        Ok(Paged { items, total, page })
    }

    /// Walks the whole chain and reports the first broken row.
    pub async fn verify_audit_chain(&self) -> Result<ChainReport, StoreError> {
        const BATCH: i64 = 1000;
        let mut prev_hash = GENESIS_HASH.to_owned();
        let mut last_seq = 0;
        let mut rows = 0;
        loop {
            let batch = read_tx!(&self.db, |tx| tx.audit_after(last_seq, BATCH).await)?;
            if batch.is_empty() {
                return Ok(ChainReport {
                    rows,
                    broken_at: None,
                });
            }
            for row in &batch {
                rows += 1;
                if row.seq != last_seq + 1
                    || row.prev_hash != prev_hash
                    || row_hash(row) != row.hash
                {
                    return Ok(ChainReport {
                        rows,
                        broken_at: Some(row.seq),
                    });
                }
                prev_hash.clone_from(&row.hash);
                last_seq = row.seq;
            }
        }
    }
}
