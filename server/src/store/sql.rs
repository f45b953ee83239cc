//! Every SQL statement of the server, written once and compiled for both backends.
//!
//! [`Tx`] lists the operations the store needs inside a transaction; `impl_tx!` implements it for
//! `Transaction<Postgres>` and `Transaction<Sqlite>` from the same text, so each statement must be
//! valid on both (numbered `$1` placeholders work on SQLite too). Where the dialects differ, the
//! difference is a parameter of the macro (`lock_audit`). The logic above (`cases`, `audit`, …)
//! is written once, generic over `Tx`.
//!
//! Adding a statement: add the method to `Tx`, its body in `impl_tx!`, and cover it in the store
//! test suite, which runs on both databases.

use super::rows::{
    AuditRow, CaseRow, CategoryRow, DocRow, DoctorRow, FeedRow, MappingRow, NotificationRow,
    OutboxRow, ReviewTypeRow,
};
use chrono::{DateTime, Utc};
use sop_core::Case;
use sop_core::catalog::{CoordinatorMapping, DiseaseCategory, DoctorProfile, ReviewType};
use sop_core::event::Event;
use sqlx::types::Json;
use std::future::Future;
use uuid::Uuid;

type R<T> = sqlx::Result<T>;

/// Filters of the case lists (admin, patient, doctor).
#[derive(Clone, Debug, Default)]
pub struct CaseFilter {
    pub patient_id: Option<String>,
    /// Cases where this doctor has an active assignment.
    pub doctor_id: Option<String>,
    /// With `doctor_id`: only cases they coordinate (`true`) or review (`false`).
    pub doctor_is_coordinator: Option<bool>,
    pub status: Option<String>,
    pub rt_id: Option<Uuid>,
    pub dc_id: Option<Uuid>,
    pub coordinator_id: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Matches a case id exactly or a patient id partly.
    pub q: Option<String>,
}

/// Filters of the audit log.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub case_id: Option<Uuid>,
    pub user_id: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// Which outbox rows an admin lists; every field optional.
#[derive(Clone, Debug, Default)]
pub struct OutboxFilter {
    /// `pending`, `delivering`, `done` or `failed`.
    pub status: Option<String>,
    pub case_id: Option<Uuid>,
}

/// Whose feed is read: decides which cases' rows are candidates (visibility itself is decided
/// afterwards, with the core, on the cases' current state).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FeedViewer {
    /// A patient: the cases they own.
    Patient(String),
    /// A doctor: the cases they are or were assigned to.
    Doctor(String),
}

impl FeedViewer {
    /// The user id.
    pub fn user(&self) -> &str {
        match self {
            FeedViewer::Patient(u) | FeedViewer::Doctor(u) => u,
        }
    }
}

/// How many feed rows one `INSERT` writes at most (bound parameters stay far below both
/// backends' limits).
const FEED_INSERT_CHUNK: usize = 500;

/// How many audit rows one `INSERT` writes at most (14 parameters each).
const AUDIT_INSERT_CHUNK: usize = 500;

/// `LIMIT`/`OFFSET` of a page.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub limit: i64,
    pub offset: i64,
}

/// The operations of the store inside one transaction.
pub trait Tx: Send {
    fn case_row(&mut self, id: Uuid) -> impl Future<Output = R<Option<CaseRow>>> + Send;
    /// Like `case_row`, and holds the row until the transaction ends where the backend can
    /// (PostgreSQL `FOR UPDATE`; SQLite write transactions are exclusive already), so concurrent
    /// commands on one case queue instead of conflicting.
    fn case_row_for_update(&mut self, id: Uuid) -> impl Future<Output = R<Option<CaseRow>>> + Send;
    fn insert_case(&mut self, case: &Case, version: i64) -> impl Future<Output = R<bool>> + Send;
    fn update_case(
        &mut self,
        case: &Case,
        old_version: i64,
        new_version: i64,
    ) -> impl Future<Output = R<bool>> + Send;
    fn insert_event(
        &mut self,
        case_id: Uuid,
        seq: i64,
        event: &Event,
    ) -> impl Future<Output = R<()>> + Send;
    fn case_events(&mut self, case_id: Uuid) -> impl Future<Output = R<Vec<Event>>> + Send;
    fn replace_case_doctors(&mut self, case: &Case) -> impl Future<Output = R<()>> + Send;
    fn insert_payment(
        &mut self,
        payment_id: Uuid,
        case_id: Uuid,
        at: DateTime<Utc>,
    ) -> impl Future<Output = R<()>> + Send;
    fn case_of_payment(&mut self, payment_id: Uuid)
    -> impl Future<Output = R<Option<Uuid>>> + Send;
    fn list_cases(
        &mut self,
        filter: &CaseFilter,
        window: Window,
    ) -> impl Future<Output = R<(Vec<Case>, i64)>> + Send;

    fn review_type(&mut self, id: Uuid) -> impl Future<Output = R<Option<ReviewType>>> + Send;
    fn upsert_review_type(&mut self, rt: &ReviewType) -> impl Future<Output = R<()>> + Send;
    fn list_review_types(
        &mut self,
        active_only: bool,
        window: Window,
    ) -> impl Future<Output = R<(Vec<ReviewType>, i64)>> + Send;
    fn category(&mut self, id: Uuid) -> impl Future<Output = R<Option<DiseaseCategory>>> + Send;
    fn upsert_category(
        &mut self,
        dc: &DiseaseCategory,
        at: DateTime<Utc>,
    ) -> impl Future<Output = R<()>> + Send;
    fn list_categories(
        &mut self,
        active_only: bool,
        q: Option<&str>,
        window: Window,
    ) -> impl Future<Output = R<(Vec<DiseaseCategory>, i64)>> + Send;
    fn mapping(&mut self, id: Uuid) -> impl Future<Output = R<Option<CoordinatorMapping>>> + Send;
    fn mappings_of(
        &mut self,
        category: Uuid,
    ) -> impl Future<Output = R<Vec<CoordinatorMapping>>> + Send;
    fn upsert_mapping(
        &mut self,
        m: &CoordinatorMapping,
        at: DateTime<Utc>,
    ) -> impl Future<Output = R<()>> + Send;
    fn list_mappings(
        &mut self,
        q: Option<&str>,
        window: Window,
    ) -> impl Future<Output = R<(Vec<CoordinatorMapping>, i64)>> + Send;
    fn doctor(&mut self, id: &str) -> impl Future<Output = R<Option<DoctorProfile>>> + Send;
    fn upsert_doctor(
        &mut self,
        d: &DoctorProfile,
        at: DateTime<Utc>,
    ) -> impl Future<Output = R<()>> + Send;
    fn list_doctors(
        &mut self,
        q: Option<&str>,
        window: Window,
    ) -> impl Future<Output = R<(Vec<DoctorProfile>, i64)>> + Send;

    fn insert_notification(&mut self, n: &NotificationRow) -> impl Future<Output = R<()>> + Send;
    fn list_notifications(
        &mut self,
        recipients: &[String],
        window: Window,
    ) -> impl Future<Output = R<(Vec<NotificationRow>, i64)>> + Send;

    fn insert_outbox(&mut self, row: &OutboxRow) -> impl Future<Output = R<bool>> + Send;
    fn due_outbox(
        &mut self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> impl Future<Output = R<Vec<OutboxRow>>> + Send;
    /// Takes a due row for delivery until `lease_until`; false when another worker has it.
    fn claim_outbox(
        &mut self,
        id: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> impl Future<Output = R<bool>> + Send;
    fn finish_outbox(
        &mut self,
        id: Uuid,
        status: &str,
        attempts: i32,
        next_attempt_at: DateTime<Utc>,
        last_error: Option<&str>,
        done_at: Option<DateTime<Utc>>,
    ) -> impl Future<Output = R<()>> + Send;
    fn list_outbox(
        &mut self,
        filter: &OutboxFilter,
        window: Window,
    ) -> impl Future<Output = R<(Vec<OutboxRow>, i64)>> + Send;
    /// A row's status and case, if the row exists.
    fn outbox_state(
        &mut self,
        id: Uuid,
    ) -> impl Future<Output = R<Option<(String, Option<Uuid>)>>> + Send;
    /// Puts a `failed` row back in the queue: `pending`, no attempts, due at `now`; a row that
    /// is not `failed` (any more) is left as it is.
    fn requeue_failed_outbox(
        &mut self,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> impl Future<Output = R<()>> + Send;
    /// Outbox rows per delivery status.
    fn count_outbox(&mut self) -> impl Future<Output = R<Vec<(String, i64)>>> + Send;

    fn insert_blob(
        &mut self,
        sha256: &str,
        size: i64,
        content_type: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = R<()>> + Send;

    // ----- The sync feed (docs/adr/0004-sync-feed.md)

    /// Takes `feed` numbers from the feed clock and `audit` positions in the audit chain, and
    /// answers where they start. The clock's row stays locked until the transaction ends, so
    /// numbers and chain positions are handed out in commit order: every writer serializes
    /// here, so call it last, just before [`Tx::append_log`] and COMMIT.
    fn take_positions(
        &mut self,
        feed: i64,
        audit: i64,
    ) -> impl Future<Output = R<Positions>> + Send;
    /// Writes chained audit rows (and the chain's new tail into the clock's row) and feed rows
    /// numbered by [`Tx::take_positions`]: one statement on PostgreSQL.
    fn append_log(
        &mut self,
        audits: &[AuditRow],
        feed: &[FeedRow],
    ) -> impl Future<Output = R<()>> + Send;
    /// The last number taken from the feed clock: every row up to it is committed.
    fn feed_head(&mut self) -> impl Future<Output = R<i64>> + Send;
    /// Makes every later statement of this (read) transaction see one snapshot.
    fn repeatable_read(&mut self) -> impl Future<Output = R<()>> + Send;
    /// Rows in (`after`, `upto`] that may concern `viewer`, oldest first, at most `limit`.
    fn feed_page(
        &mut self,
        viewer: &FeedViewer,
        after: i64,
        upto: i64,
        limit: i64,
    ) -> impl Future<Output = R<Vec<FeedRow>>> + Send;
    /// Per case, the last `access_granted`/`content_refresh` row for `user` in (`after`, `upto`].
    fn feed_grants(
        &mut self,
        user: &str,
        after: i64,
        upto: i64,
    ) -> impl Future<Output = R<Vec<(Uuid, i64)>>> + Send;
    /// The cases with an `access_revoked` row for `user` in (`after`, `upto`].
    fn feed_revoked(
        &mut self,
        user: &str,
        after: i64,
        upto: i64,
    ) -> impl Future<Output = R<Vec<Uuid>>> + Send;
    /// The cases `viewer` owns or was ever assigned to (a set that only grows), ordered by id,
    /// from the `offset`-th on.
    fn viewer_cases(
        &mut self,
        viewer: &FeedViewer,
        offset: i64,
        limit: i64,
    ) -> impl Future<Output = R<Vec<Uuid>>> + Send;

    // ----- Content documents

    fn content_doc(&mut self, doc_id: Uuid) -> impl Future<Output = R<Option<DocRow>>> + Send;
    /// [`Tx::content_doc`] without the snapshot (empty): what a writer needs when the document
    /// itself comes from the cache (the snapshot can be large, and is rarely needed).
    fn content_doc_meta(&mut self, doc_id: Uuid) -> impl Future<Output = R<Option<DocRow>>> + Send;
    fn case_docs(&mut self, case_id: Uuid) -> impl Future<Output = R<Vec<DocRow>>> + Send;
    /// The content rows of a document in (`after`, `upto`], oldest first.
    fn doc_changes(
        &mut self,
        doc_id: Uuid,
        after: i64,
        upto: i64,
    ) -> impl Future<Output = R<Vec<FeedRow>>> + Send;
    /// The payload of the feed row `seq`, if there is one.
    fn feed_payload(
        &mut self,
        seq: i64,
    ) -> impl Future<Output = R<Option<Json<serde_json::Value>>>> + Send;
    fn insert_content_doc(&mut self, row: &DocRow) -> impl Future<Output = R<()>> + Send;
    /// Records new heads and `added` more content rows after the snapshot.
    fn touch_content_doc(
        &mut self,
        doc_id: Uuid,
        heads: &[String],
        added: i32,
        at: DateTime<Utc>,
    ) -> impl Future<Output = R<()>> + Send;
    fn freeze_content_doc(
        &mut self,
        doc_id: Uuid,
        heads: &[String],
        at: DateTime<Utc>,
    ) -> impl Future<Output = R<()>> + Send;
    /// Documents with at least `min_pending` content rows after their snapshot.
    fn docs_to_compact(
        &mut self,
        min_pending: i32,
        limit: i64,
    ) -> impl Future<Output = R<Vec<Uuid>>> + Send;
    /// Replaces the snapshot (taken at `old_seq`) by one covering the feed up to `new_seq`
    /// (`covered` content rows), then clears the change bytes the previous snapshot already
    /// held. False (nothing done) when another compaction moved the snapshot meanwhile.
    fn compact_content_doc(
        &mut self,
        doc_id: Uuid,
        old_seq: i64,
        snapshot: &[u8],
        new_seq: i64,
        covered: i32,
    ) -> impl Future<Output = R<bool>> + Send;

    // ----- Exactly-once pushes

    /// The recorded answers of `ops` pushed by `user` from `device`.
    fn sync_results(
        &mut self,
        user: &str,
        device: Uuid,
        ops: &[Uuid],
    ) -> impl Future<Output = R<Vec<(Uuid, Json<serde_json::Value>)>>> + Send;
    /// Records the answers of several ops in one statement per chunk (PostgreSQL: one `UNNEST`);
    /// ops that have an answer already are left as they are. Answers how many were recorded.
    fn insert_sync_results_bulk(
        &mut self,
        user: &str,
        device: Uuid,
        ops: &[(Uuid, String)],
        at: DateTime<Utc>,
    ) -> impl Future<Output = R<u64>> + Send;
    /// A stored blob's size and detected content type.
    fn blob(&mut self, sha256: &str) -> impl Future<Output = R<Option<(i64, String)>>> + Send;
    /// Marks where [`Tx::rollback_to_savepoint`] returns to (one level: a push's unit).
    fn savepoint(&mut self) -> impl Future<Output = R<()>> + Send;
    /// Undoes everything since [`Tx::savepoint`]; the transaction goes on.
    fn rollback_to_savepoint(&mut self) -> impl Future<Output = R<()>> + Send;
    /// Keeps everything since [`Tx::savepoint`] and forgets the mark.
    fn release_savepoint(&mut self) -> impl Future<Output = R<()>> + Send;

    fn list_audit(
        &mut self,
        filter: &AuditFilter,
        window: Window,
    ) -> impl Future<Output = R<(Vec<AuditRow>, i64)>> + Send;
    fn audit_after(
        &mut self,
        seq: i64,
        limit: i64,
    ) -> impl Future<Output = R<Vec<AuditRow>>> + Send;
    /// Audit rows of doctors and admins about the cases of `patient_id` (optionally one case),
    /// newest first: the patient's "who viewed my case".
    fn access_history(
        &mut self,
        patient_id: &str,
        case_id: Option<Uuid>,
        window: Window,
    ) -> impl Future<Output = R<(Vec<AuditRow>, i64)>> + Send;
}

const REVIEW_TYPE_COLUMNS: &str = "rt_id, title_en, title_ar, description_en, description_ar, \
     duration_en, duration_ar, price, currency, expected_review_days, icon, active, created_at";
const AUDIT_COLUMNS: &str = "seq, at, user_id, role, action, case_id, resource_id, outcome, \
     request_id, device_id, device_time, ip, prev_hash, hash";
/// Where a write transaction's feed rows and audit rows go ([`Tx::take_positions`]).
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Positions {
    /// The last feed number taken (the first is `feed_last - feed + 1`).
    pub feed_last: i64,
    /// The chain's last row before this transaction's (0: none yet) and its hash.
    pub audit_prev: i64,
    pub audit_prev_hash: String,
}

const OUTBOX_COLUMNS: &str = "outbox_id, case_id, kind, payload, idempotency_key, status, \
     attempts, next_attempt_at, last_error, created_at, done_at";

/// A `LIKE` pattern matching `q` anywhere, with `%` and `_` in `q` taken literally.
fn like_pattern(q: &str) -> String {
    let escaped = q
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

const FEED_COLUMNS: &str = "seq, kind, case_id, recipient, doc_id, payload, data, at";
const DOC_COLUMNS: &str = "doc_id, case_id, kind, doctor_id, snapshot, snapshot_seq, pending, \
     heads, frozen_heads, frozen_at, updated_at";

macro_rules! impl_tx {
    ($db:ty, for_update = $for_update:literal,
     repeatable_read = $rr:expr, sync_results = $sync_results:path,
     insert_sync_results = $insert_sync_results:path,
     append_log = $append_log:path) => {
        impl Tx for sqlx::Transaction<'_, $db> {
            async fn case_row(&mut self, id: Uuid) -> R<Option<CaseRow>> {
                sqlx::query_as("SELECT version, state FROM cases WHERE case_id = $1")
                    .bind(id)
                    .fetch_optional(&mut **self)
                    .await
            }

            async fn case_row_for_update(&mut self, id: Uuid) -> R<Option<CaseRow>> {
                sqlx::query_as(concat!(
                    "SELECT version, state FROM cases WHERE case_id = $1",
                    $for_update
                ))
                .bind(id)
                .fetch_optional(&mut **self)
                .await
            }

            async fn insert_case(&mut self, case: &Case, version: i64) -> R<bool> {
                let done = sqlx::query(
                    "INSERT INTO cases (case_id, patient_id, rt_id, dc_id, status, coordinator_id, \
                     created_at, updated_at, due_at, version, state) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                     ON CONFLICT (case_id) DO NOTHING",
                )
                .bind(case.case_id.0)
                .bind(case.patient_id.as_str())
                .bind(case.rt_id.0)
                .bind(case.dc_id.0)
                .bind(case.status.as_str())
                .bind(case.coordinator_id.as_ref().map(|c| c.as_str()))
                .bind(case.created_at)
                .bind(case.updated_at)
                .bind(case.due_at)
                .bind(version)
                .bind(Json(case))
                .execute(&mut **self)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn update_case(&mut self, case: &Case, old: i64, new: i64) -> R<bool> {
                let done = sqlx::query(
                    "UPDATE cases SET status = $2, coordinator_id = $3, updated_at = $4, \
                     due_at = $5, version = $6, state = $7 WHERE case_id = $1 AND version = $8",
                )
                .bind(case.case_id.0)
                .bind(case.status.as_str())
                .bind(case.coordinator_id.as_ref().map(|c| c.as_str()))
                .bind(case.updated_at)
                .bind(case.due_at)
                .bind(new)
                .bind(Json(case))
                .bind(old)
                .execute(&mut **self)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn insert_event(&mut self, case_id: Uuid, seq: i64, event: &Event) -> R<()> {
                sqlx::query("INSERT INTO case_events (case_id, seq, at, event) VALUES ($1, $2, $3, $4)")
                    .bind(case_id)
                    .bind(seq)
                    .bind(event.at)
                    .bind(Json(event))
                    .execute(&mut **self)
                    .await?;
                Ok(())
            }

            async fn case_events(&mut self, case_id: Uuid) -> R<Vec<Event>> {
                let rows: Vec<(Json<Event>,)> =
                    sqlx::query_as("SELECT event FROM case_events WHERE case_id = $1 ORDER BY seq")
                        .bind(case_id)
                        .fetch_all(&mut **self)
                        .await?;
                Ok(rows.into_iter().map(|(e,)| e.0).collect())
            }

            async fn replace_case_doctors(&mut self, case: &Case) -> R<()> {
                sqlx::query("DELETE FROM case_doctors WHERE case_id = $1")
                    .bind(case.case_id.0)
                    .execute(&mut **self)
                    .await?;
                let mut seen = std::collections::HashSet::new();
                // Newest assignment first: it decides whether the doctor is active in that role.
                for a in case.assignments.iter().rev() {
                    let role = match a.role {
                        sop_core::case::AssignmentRole::Coordinator => "coordinator",
                        sop_core::case::AssignmentRole::Specialist => "specialist",
                    };
                    if !seen.insert((a.doctor_id.as_str(), role)) {
                        continue;
                    }
                    sqlx::query(
                        "INSERT INTO case_doctors (case_id, doctor_id, role, active) VALUES ($1, $2, $3, $4)",
                    )
                    .bind(case.case_id.0)
                    .bind(a.doctor_id.as_str())
                    .bind(role)
                    // "Active" for the doctors' lists means the doctor still sees the case: a
                    // cancelled or rejected case is closed for them (core `sees_case`).
                    .bind(a.active && sop_core::access::sees_case(
                        case,
                        &sop_core::Actor::Doctor(a.doctor_id.clone()),
                    ))
                    .execute(&mut **self)
                    .await?;
                }
                Ok(())
            }

            async fn insert_payment(&mut self, payment_id: Uuid, case_id: Uuid, at: DateTime<Utc>) -> R<()> {
                sqlx::query("INSERT INTO payments (payment_id, case_id, created_at) VALUES ($1, $2, $3)")
                    .bind(payment_id)
                    .bind(case_id)
                    .bind(at)
                    .execute(&mut **self)
                    .await?;
                Ok(())
            }

            async fn case_of_payment(&mut self, payment_id: Uuid) -> R<Option<Uuid>> {
                sqlx::query_scalar("SELECT case_id FROM payments WHERE payment_id = $1")
                    .bind(payment_id)
                    .fetch_optional(&mut **self)
                    .await
            }

            async fn list_cases(&mut self, f: &CaseFilter, w: Window) -> R<(Vec<Case>, i64)> {
                let push_where = |qb: &mut sqlx::QueryBuilder<$db>| {
                    qb.push(" WHERE 1 = 1");
                    if let Some(p) = &f.patient_id {
                        qb.push(" AND c.patient_id = ").push_bind(p.clone());
                    }
                    if let Some(d) = &f.doctor_id {
                        qb.push(" AND EXISTS (SELECT 1 FROM case_doctors cd WHERE cd.case_id = c.case_id AND cd.active AND cd.doctor_id = ")
                            .push_bind(d.clone());
                        match f.doctor_is_coordinator {
                            Some(true) => { qb.push(" AND cd.role = 'coordinator'"); }
                            Some(false) => { qb.push(" AND cd.role = 'specialist'"); }
                            None => {}
                        }
                        qb.push(")");
                    }
                    if let Some(s) = &f.status {
                        qb.push(" AND c.status = ").push_bind(s.clone());
                    }
                    if let Some(rt) = f.rt_id {
                        qb.push(" AND c.rt_id = ").push_bind(rt);
                    }
                    if let Some(dc) = f.dc_id {
                        qb.push(" AND c.dc_id = ").push_bind(dc);
                    }
                    if let Some(cc) = &f.coordinator_id {
                        qb.push(" AND c.coordinator_id = ").push_bind(cc.clone());
                    }
                    if let Some(from) = f.from {
                        qb.push(" AND c.created_at >= ").push_bind(from);
                    }
                    if let Some(to) = f.to {
                        qb.push(" AND c.created_at <= ").push_bind(to);
                    }
                    if let Some(q) = f.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
                        match Uuid::parse_str(q) {
                            Ok(id) => { qb.push(" AND c.case_id = ").push_bind(id); }
                            Err(_) => {
                                qb.push(" AND LOWER(c.patient_id) LIKE ").push_bind(like_pattern(q)).push(" ESCAPE '\\'");
                            }
                        }
                    }
                };
                let mut count = sqlx::QueryBuilder::<$db>::new("SELECT COUNT(*) FROM cases c");
                push_where(&mut count);
                let total: i64 = count.build_query_scalar().fetch_one(&mut **self).await?;
                let mut page = sqlx::QueryBuilder::<$db>::new("SELECT c.state FROM cases c");
                push_where(&mut page);
                page.push(" ORDER BY c.created_at DESC, c.case_id LIMIT ").push_bind(w.limit)
                    .push(" OFFSET ").push_bind(w.offset);
                let rows: Vec<(Json<Case>,)> = page.build_query_as().fetch_all(&mut **self).await?;
                Ok((rows.into_iter().map(|(c,)| c.0).collect(), total))
            }

            async fn review_type(&mut self, id: Uuid) -> R<Option<ReviewType>> {
                let sql = format!("SELECT {REVIEW_TYPE_COLUMNS} FROM review_types WHERE rt_id = $1");
                let row: Option<ReviewTypeRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(id)
                    .fetch_optional(&mut **self)
                    .await?;
                Ok(row.map(Into::into))
            }

            async fn upsert_review_type(&mut self, rt: &ReviewType) -> R<()> {
                sqlx::query(
                    "INSERT INTO review_types (rt_id, title_en, title_ar, description_en, description_ar, \
                     duration_en, duration_ar, price, currency, expected_review_days, icon, active, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
                     ON CONFLICT (rt_id) DO UPDATE SET title_en = $2, title_ar = $3, description_en = $4, \
                     description_ar = $5, duration_en = $6, duration_ar = $7, price = $8, currency = $9, \
                     expected_review_days = $10, icon = $11, active = $12",
                )
                .bind(rt.rt_id.0)
                .bind(&rt.title_en)
                .bind(&rt.title_ar)
                .bind(&rt.description_en)
                .bind(&rt.description_ar)
                .bind(&rt.duration_en)
                .bind(&rt.duration_ar)
                .bind(rt.price)
                .bind(&rt.currency)
                .bind(rt.expected_review_days)
                .bind(&rt.icon)
                .bind(rt.active)
                .bind(rt.created_at)
                .execute(&mut **self)
                .await?;
                Ok(())
            }

            async fn list_review_types(&mut self, active_only: bool, w: Window) -> R<(Vec<ReviewType>, i64)> {
                let filter = if active_only { " WHERE active" } else { "" };
                let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT COUNT(*) FROM review_types{filter}"
                )))
                .fetch_one(&mut **self)
                .await?;
                let rows: Vec<ReviewTypeRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {REVIEW_TYPE_COLUMNS} FROM review_types{filter} \
                     ORDER BY created_at DESC, rt_id LIMIT $1 OFFSET $2"
                )))
                .bind(w.limit)
                .bind(w.offset)
                .fetch_all(&mut **self)
                .await?;
                Ok((rows.into_iter().map(Into::into).collect(), total))
            }

            async fn category(&mut self, id: Uuid) -> R<Option<DiseaseCategory>> {
                let row: Option<CategoryRow> = sqlx::query_as(
                    "SELECT dc_id, label_en, label_ar, active, doctor_ids FROM disease_categories WHERE dc_id = $1",
                )
                .bind(id)
                .fetch_optional(&mut **self)
                .await?;
                Ok(row.map(Into::into))
            }

            async fn upsert_category(&mut self, dc: &DiseaseCategory, at: DateTime<Utc>) -> R<()> {
                sqlx::query(
                    "INSERT INTO disease_categories (dc_id, label_en, label_ar, active, doctor_ids, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (dc_id) DO UPDATE SET \
                     label_en = $2, label_ar = $3, active = $4, doctor_ids = $5",
                )
                .bind(dc.dc_id.0)
                .bind(&dc.label_en)
                .bind(&dc.label_ar)
                .bind(dc.active)
                .bind(Json(&dc.doctor_ids))
                .bind(at)
                .execute(&mut **self)
                .await?;
                Ok(())
            }

            async fn list_categories(&mut self, active_only: bool, q: Option<&str>, w: Window) -> R<(Vec<DiseaseCategory>, i64)> {
                let push_where = |qb: &mut sqlx::QueryBuilder<$db>| {
                    qb.push(" WHERE 1 = 1");
                    if active_only {
                        qb.push(" AND active");
                    }
                    if let Some(q) = q.map(str::trim).filter(|q| !q.is_empty()) {
                        let pattern = like_pattern(q);
                        qb.push(" AND (LOWER(label_en) LIKE ").push_bind(pattern.clone())
                            .push(" ESCAPE '\\' OR LOWER(label_ar) LIKE ").push_bind(pattern)
                            .push(" ESCAPE '\\')");
                    }
                };
                let mut count = sqlx::QueryBuilder::<$db>::new("SELECT COUNT(*) FROM disease_categories");
                push_where(&mut count);
                let total: i64 = count.build_query_scalar().fetch_one(&mut **self).await?;
                let mut page = sqlx::QueryBuilder::<$db>::new(
                    "SELECT dc_id, label_en, label_ar, active, doctor_ids FROM disease_categories",
                );
                push_where(&mut page);
                page.push(" ORDER BY created_at DESC, dc_id LIMIT ").push_bind(w.limit)
                    .push(" OFFSET ").push_bind(w.offset);
                let rows: Vec<CategoryRow> = page.build_query_as().fetch_all(&mut **self).await?;
                Ok((rows.into_iter().map(Into::into).collect(), total))
            }

            async fn mapping(&mut self, id: Uuid) -> R<Option<CoordinatorMapping>> {
                let row: Option<MappingRow> = sqlx::query_as(
                    "SELECT cc_id, speciality_id, doctor_ids, active FROM coordinator_mappings WHERE cc_id = $1",
                )
                .bind(id)
                .fetch_optional(&mut **self)
                .await?;
                Ok(row.map(Into::into))
            }

            async fn mappings_of(&mut self, category: Uuid) -> R<Vec<CoordinatorMapping>> {
                let rows: Vec<MappingRow> = sqlx::query_as(
                    "SELECT cc_id, speciality_id, doctor_ids, active FROM coordinator_mappings \
                     WHERE speciality_id = $1 ORDER BY created_at",
                )
                .bind(category)
                .fetch_all(&mut **self)
                .await?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn upsert_mapping(&mut self, m: &CoordinatorMapping, at: DateTime<Utc>) -> R<()> {
                sqlx::query(
                    "INSERT INTO coordinator_mappings (cc_id, speciality_id, doctor_ids, active, created_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (cc_id) DO UPDATE SET doctor_ids = $3, active = $4",
                )
                .bind(m.cc_id.0)
                .bind(m.speciality_id.0)
                .bind(Json(&m.doctor_ids))
                .bind(m.active)
                .bind(at)
                .execute(&mut **self)
                .await?;
                Ok(())
            }

            async fn list_mappings(&mut self, q: Option<&str>, w: Window) -> R<(Vec<CoordinatorMapping>, i64)> {
                let push_where = |qb: &mut sqlx::QueryBuilder<$db>| {
                    qb.push(" WHERE 1 = 1");
                    if let Some(q) = q.map(str::trim).filter(|q| !q.is_empty()) {
                        match Uuid::parse_str(q) {
                            Ok(id) => { qb.push(" AND speciality_id = ").push_bind(id); }
                            Err(_) => {
                                qb.push(" AND LOWER(CAST(doctor_ids AS TEXT)) LIKE ")
                                    .push_bind(like_pattern(q)).push(" ESCAPE '\\'");
                            }
                        }
                    }
                };
                let mut count = sqlx::QueryBuilder::<$db>::new("SELECT COUNT(*) FROM coordinator_mappings");
                push_where(&mut count);
                let total: i64 = count.build_query_scalar().fetch_one(&mut **self).await?;
                let mut page = sqlx::QueryBuilder::<$db>::new(
                    "SELECT cc_id, speciality_id, doctor_ids, active FROM coordinator_mappings",
                );
                push_where(&mut page);
                page.push(" ORDER BY created_at DESC, cc_id LIMIT ").push_bind(w.limit)
                    .push(" OFFSET ").push_bind(w.offset);
                let rows: Vec<MappingRow> = page.build_query_as().fetch_all(&mut **self).await?;
                Ok((rows.into_iter().map(Into::into).collect(), total))
            }

            async fn doctor(&mut self, id: &str) -> R<Option<DoctorProfile>> {
                let row: Option<DoctorRow> = sqlx::query_as(
                    "SELECT doctor_id, name_en, name_ar, phone, email, specialties FROM doctors WHERE doctor_id = $1",
                )
                .bind(id)
                .fetch_optional(&mut **self)
                .await?;
                Ok(row.map(Into::into))
            }

            async fn upsert_doctor(&mut self, d: &DoctorProfile, at: DateTime<Utc>) -> R<()> {
                sqlx::query(
                    "INSERT INTO doctors (doctor_id, name_en, name_ar, phone, email, specialties, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (doctor_id) DO UPDATE SET \
                     name_en = $2, name_ar = $3, phone = $4, email = $5, specialties = $6",
                )
                .bind(d.doctor_id.as_str())
                .bind(&d.name_en)
                .bind(&d.name_ar)
                .bind(&d.phone)
                .bind(&d.email)
                .bind(Json(&d.specialties))
                .bind(at)
                .execute(&mut **self)
                .await?;
                Ok(())
            }

            async fn list_doctors(&mut self, q: Option<&str>, w: Window) -> R<(Vec<DoctorProfile>, i64)> {
                let push_where = |qb: &mut sqlx::QueryBuilder<$db>| {
                    qb.push(" WHERE 1 = 1");
                    if let Some(q) = q.map(str::trim).filter(|q| !q.is_empty()) {
                        let pattern = like_pattern(q);
                        qb.push(" AND (LOWER(doctor_id) LIKE ").push_bind(pattern.clone())
                            .push(" ESCAPE '\\' OR LOWER(name_en) LIKE ").push_bind(pattern.clone())
                            .push(" ESCAPE '\\' OR LOWER(name_ar) LIKE ").push_bind(pattern)
                            .push(" ESCAPE '\\')");
                    }
                };
                let mut count = sqlx::QueryBuilder::<$db>::new("SELECT COUNT(*) FROM doctors");
                push_where(&mut count);
                let total: i64 = count.build_query_scalar().fetch_one(&mut **self).await?;
                let mut page = sqlx::QueryBuilder::<$db>::new(
                    "SELECT doctor_id, name_en, name_ar, phone, email, specialties FROM doctors",
                );
                push_where(&mut page);
                page.push(" ORDER BY doctor_id LIMIT ").push_bind(w.limit)
                    .push(" OFFSET ").push_bind(w.offset);
                let rows: Vec<DoctorRow> = page.build_query_as().fetch_all(&mut **self).await?;
                Ok((rows.into_iter().map(Into::into).collect(), total))
            }

            async fn insert_notification(&mut self, n: &NotificationRow) -> R<()> {
                sqlx::query(
                    "INSERT INTO notifications (notification_id, recipient, case_id, kind, title_en, title_ar, \
                     body_en, body_ar, created_at, read_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(n.notification_id)
                .bind(&n.recipient)
                .bind(n.case_id)
                .bind(&n.kind)
                .bind(&n.title_en)
                .bind(&n.title_ar)
                .bind(&n.body_en)
                .bind(&n.body_ar)
                .bind(n.created_at)
                .bind(n.read_at)
                .execute(&mut **self)
                .await?;
                Ok(())
            }

            async fn list_notifications(&mut self, recipients: &[String], w: Window) -> R<(Vec<NotificationRow>, i64)> {
                let push_where = |qb: &mut sqlx::QueryBuilder<$db>| {
                    qb.push(" WHERE recipient IN (");
                    let mut sep = qb.separated(", ");
                    for r in recipients {
                        sep.push_bind(r.clone());
                    }
                    qb.push(")");
                };
                if recipients.is_empty() {
                    return Ok((Vec::new(), 0));
                }
                let mut count = sqlx::QueryBuilder::<$db>::new("SELECT COUNT(*) FROM notifications");
                push_where(&mut count);
                let total: i64 = count.build_query_scalar().fetch_one(&mut **self).await?;
                let mut page = sqlx::QueryBuilder::<$db>::new(
                    "SELECT notification_id, recipient, case_id, kind, title_en, title_ar, body_en, body_ar, \
                     created_at, read_at FROM notifications",
                );
                push_where(&mut page);
                page.push(" ORDER BY created_at DESC, notification_id DESC LIMIT ").push_bind(w.limit)
                    .push(" OFFSET ").push_bind(w.offset);
                let rows: Vec<NotificationRow> = page.build_query_as().fetch_all(&mut **self).await?;
                Ok((rows, total))
            }

            async fn insert_outbox(&mut self, row: &OutboxRow) -> R<bool> {
                let done = sqlx::query(
                    "INSERT INTO outbox (outbox_id, case_id, kind, payload, idempotency_key, status, attempts, \
                     next_attempt_at, last_error, created_at, done_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                     ON CONFLICT (idempotency_key) DO NOTHING",
                )
                .bind(row.outbox_id)
                .bind(row.case_id)
                .bind(&row.kind)
                .bind(&row.payload)
                .bind(&row.idempotency_key)
                .bind(&row.status)
                .bind(row.attempts)
                .bind(row.next_attempt_at)
                .bind(&row.last_error)
                .bind(row.created_at)
                .bind(row.done_at)
                .execute(&mut **self)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn due_outbox(&mut self, now: DateTime<Utc>, limit: i64) -> R<Vec<OutboxRow>> {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE status IN ('pending', 'delivering') \
                     AND next_attempt_at <= $1 ORDER BY next_attempt_at, created_at LIMIT $2"
                )))
                .bind(now)
                .bind(limit)
                .fetch_all(&mut **self)
                .await
            }

            // A `delivering` row whose lease ran out was left by a worker that stopped; it is
            // due again. Only one of several racing workers sees its UPDATE match.
            async fn claim_outbox(
                &mut self,
                id: Uuid,
                now: DateTime<Utc>,
                lease_until: DateTime<Utc>,
            ) -> R<bool> {
                let done = sqlx::query(
                    "UPDATE outbox SET status = 'delivering', next_attempt_at = $2 WHERE outbox_id = $1 \
                     AND status IN ('pending', 'delivering') AND next_attempt_at <= $3",
                )
                .bind(id)
                .bind(lease_until)
                .bind(now)
                .execute(&mut **self)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn finish_outbox(
                &mut self,
                id: Uuid,
                status: &str,
                attempts: i32,
                next_attempt_at: DateTime<Utc>,
                last_error: Option<&str>,
                done_at: Option<DateTime<Utc>>,
            ) -> R<()> {
                sqlx::query(
                    "UPDATE outbox SET status = $2, attempts = $3, next_attempt_at = $4, last_error = $5, \
                     done_at = $6 WHERE outbox_id = $1",
                )
                .bind(id)
                .bind(status)
                .bind(attempts)
                .bind(next_attempt_at)
                .bind(last_error)
                .bind(done_at)
                .execute(&mut **self)
                .await?;
                Ok(())
            }

            async fn count_outbox(&mut self) -> R<Vec<(String, i64)>> {
                sqlx::query_as("SELECT status, COUNT(*) FROM outbox GROUP BY status ORDER BY status")
                    .fetch_all(&mut **self)
                    .await
            }

            async fn list_outbox(&mut self, f: &OutboxFilter, w: Window) -> R<(Vec<OutboxRow>, i64)> {
                let push_where = |qb: &mut sqlx::QueryBuilder<$db>| {
                    qb.push(" WHERE 1 = 1");
                    if let Some(s) = &f.status {
                        qb.push(" AND status = ").push_bind(s.clone());
                    }
                    if let Some(c) = f.case_id {
                        qb.push(" AND case_id = ").push_bind(c);
                    }
                };
                let mut count = sqlx::QueryBuilder::<$db>::new("SELECT COUNT(*) FROM outbox");
                push_where(&mut count);
                let total: i64 = count.build_query_scalar().fetch_one(&mut **self).await?;
                let mut page = sqlx::QueryBuilder::<$db>::new(format!("SELECT {OUTBOX_COLUMNS} FROM outbox"));
                push_where(&mut page);
                page.push(" ORDER BY created_at DESC, outbox_id LIMIT ").push_bind(w.limit)
                    .push(" OFFSET ").push_bind(w.offset);
                let rows: Vec<OutboxRow> = page.build_query_as().fetch_all(&mut **self).await?;
                Ok((rows, total))
            }

            async fn outbox_state(&mut self, id: Uuid) -> R<Option<(String, Option<Uuid>)>> {
                sqlx::query_as("SELECT status, case_id FROM outbox WHERE outbox_id = $1")
                    .bind(id)
                    .fetch_optional(&mut **self)
                    .await
            }

            async fn requeue_failed_outbox(&mut self, id: Uuid, now: DateTime<Utc>) -> R<()> {
                sqlx::query(
                    "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = $2 \
                     WHERE outbox_id = $1 AND status = 'failed'",
                )
                .bind(id)
                .bind(now)
                .execute(&mut **self)
                .await
                .map(drop)
            }

            async fn insert_blob(&mut self, sha256: &str, size: i64, content_type: &str, at: DateTime<Utc>) -> R<()> {
                sqlx::query(
                    "INSERT INTO blobs (sha256, size, content_type, created_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (sha256) DO NOTHING",
                )
                .bind(sha256)
                .bind(size)
                .bind(content_type)
                .bind(at)
                .execute(&mut **self)
                .await?;
                Ok(())
            }

            async fn list_audit(&mut self, f: &AuditFilter, w: Window) -> R<(Vec<AuditRow>, i64)> {
                let push_where = |qb: &mut sqlx::QueryBuilder<$db>| {
                    qb.push(" WHERE 1 = 1");
                    if let Some(c) = f.case_id {
                        qb.push(" AND case_id = ").push_bind(c);
                    }
                    if let Some(u) = &f.user_id {
                        qb.push(" AND user_id = ").push_bind(u.clone());
                    }
                    if let Some(from) = f.from {
                        qb.push(" AND at >= ").push_bind(from);
                    }
                    if let Some(to) = f.to {
                        qb.push(" AND at <= ").push_bind(to);
                    }
                };
                let mut count = sqlx::QueryBuilder::<$db>::new("SELECT COUNT(*) FROM audit_log");
                push_where(&mut count);
                let total: i64 = count.build_query_scalar().fetch_one(&mut **self).await?;
                let mut page = sqlx::QueryBuilder::<$db>::new(format!("SELECT {AUDIT_COLUMNS} FROM audit_log"));
                push_where(&mut page);
                page.push(" ORDER BY seq DESC LIMIT ").push_bind(w.limit)
                    .push(" OFFSET ").push_bind(w.offset);
                let rows: Vec<AuditRow> = page.build_query_as().fetch_all(&mut **self).await?;
                Ok((rows, total))
            }

            async fn access_history(
                &mut self,
                patient_id: &str,
                case_id: Option<Uuid>,
                w: Window,
            ) -> R<(Vec<AuditRow>, i64)> {
                let push_where = |qb: &mut sqlx::QueryBuilder<$db>| {
                    qb.push(" WHERE role IN ('doctor', 'admin') AND case_id IN \
                             (SELECT case_id FROM cases WHERE patient_id = ")
                        .push_bind(patient_id.to_owned())
                        .push(")");
                    if let Some(c) = case_id {
                        qb.push(" AND case_id = ").push_bind(c);
                    }
                };
                let mut count = sqlx::QueryBuilder::<$db>::new("SELECT COUNT(*) FROM audit_log");
                push_where(&mut count);
                let total: i64 = count.build_query_scalar().fetch_one(&mut **self).await?;
                let mut page = sqlx::QueryBuilder::<$db>::new(format!("SELECT {AUDIT_COLUMNS} FROM audit_log"));
                push_where(&mut page);
                page.push(" ORDER BY seq DESC LIMIT ").push_bind(w.limit)
                    .push(" OFFSET ").push_bind(w.offset);
                let rows: Vec<AuditRow> = page.build_query_as().fetch_all(&mut **self).await?;
                Ok((rows, total))
            }

            async fn take_positions(&mut self, feed: i64, audit: i64) -> R<Positions> {
                sqlx::query_as(
                    "UPDATE feed_clock SET seq = seq + $1, audit_seq = audit_seq + $2 WHERE id = 1 \
                     RETURNING seq AS feed_last, audit_seq - $2 AS audit_prev, audit_hash AS audit_prev_hash",
                )
                .bind(feed)
                .bind(audit)
                .fetch_one(&mut **self)
                .await
            }

            async fn append_log(&mut self, audits: &[AuditRow], feed: &[FeedRow]) -> R<()> {
                $append_log(self, audits, feed).await
            }

            async fn feed_head(&mut self) -> R<i64> {
                sqlx::query_scalar("SELECT seq FROM feed_clock WHERE id = 1")
                    .fetch_one(&mut **self)
                    .await
            }

            async fn repeatable_read(&mut self) -> R<()> {
                if let Some(sql) = $rr {
                    sqlx::query(sql).execute(&mut **self).await?;
                }
                Ok(())
            }

            async fn feed_page(&mut self, viewer: &FeedViewer, after: i64, upto: i64, limit: i64) -> R<Vec<FeedRow>> {
                let cases = match viewer {
                    FeedViewer::Patient(_) => "SELECT case_id FROM cases WHERE patient_id = $3",
                    FeedViewer::Doctor(_) => "SELECT case_id FROM case_doctors WHERE doctor_id = $3",
                };
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {FEED_COLUMNS} FROM feed WHERE seq > $1 AND seq <= $2 AND (recipient = $3 \
                     OR (recipient IS NULL AND (case_id IS NULL OR case_id IN ({cases})))) \
                     ORDER BY seq LIMIT $4"
                )))
                .bind(after)
                .bind(upto)
                .bind(viewer.user())
                .bind(limit)
                .fetch_all(&mut **self)
                .await
            }

            async fn feed_grants(&mut self, user: &str, after: i64, upto: i64) -> R<Vec<(Uuid, i64)>> {
                sqlx::query_as(
                    "SELECT case_id, MAX(seq) FROM feed WHERE recipient = $1 AND seq > $2 AND seq <= $3 \
                     AND kind IN ('access_granted', 'content_refresh') AND case_id IS NOT NULL GROUP BY case_id",
                )
                .bind(user)
                .bind(after)
                .bind(upto)
                .fetch_all(&mut **self)
                .await
            }

            async fn feed_revoked(&mut self, user: &str, after: i64, upto: i64) -> R<Vec<Uuid>> {
                sqlx::query_scalar(
                    "SELECT DISTINCT case_id FROM feed WHERE recipient = $1 AND seq > $2 AND seq <= $3 \
                     AND kind = 'access_revoked' AND case_id IS NOT NULL",
                )
                .bind(user)
                .bind(after)
                .bind(upto)
                .fetch_all(&mut **self)
                .await
            }

            async fn viewer_cases(&mut self, viewer: &FeedViewer, offset: i64, limit: i64) -> R<Vec<Uuid>> {
                let sql = match viewer {
                    FeedViewer::Patient(_) => {
                        "SELECT case_id FROM cases WHERE patient_id = $1 ORDER BY case_id LIMIT $2 OFFSET $3"
                    }
                    FeedViewer::Doctor(_) => {
                        "SELECT DISTINCT case_id FROM case_doctors WHERE doctor_id = $1 \
                         ORDER BY case_id LIMIT $2 OFFSET $3"
                    }
                };
                sqlx::query_scalar(sql)
                    .bind(viewer.user())
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(&mut **self)
                    .await
            }

            async fn content_doc(&mut self, doc_id: Uuid) -> R<Option<DocRow>> {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {DOC_COLUMNS} FROM content_docs WHERE doc_id = $1"
                )))
                .bind(doc_id)
                .fetch_optional(&mut **self)
                .await
            }

            async fn content_doc_meta(&mut self, doc_id: Uuid) -> R<Option<DocRow>> {
                // `substr(…, 1, 0)`: an empty snapshot of the column's type on both backends,
                // without sending the stored one.
                sqlx::query_as(
                    "SELECT doc_id, case_id, kind, doctor_id, substr(snapshot, 1, 0) AS snapshot, \
                     snapshot_seq, pending, heads, frozen_heads, frozen_at, updated_at \
                     FROM content_docs WHERE doc_id = $1",
                )
                .bind(doc_id)
                .fetch_optional(&mut **self)
                .await
            }

            async fn case_docs(&mut self, case_id: Uuid) -> R<Vec<DocRow>> {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {DOC_COLUMNS} FROM content_docs WHERE case_id = $1 ORDER BY kind, doctor_id"
                )))
                .bind(case_id)
                .fetch_all(&mut **self)
                .await
            }

            async fn doc_changes(&mut self, doc_id: Uuid, after: i64, upto: i64) -> R<Vec<FeedRow>> {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {FEED_COLUMNS} FROM feed WHERE doc_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq"
                )))
                .bind(doc_id)
                .bind(after)
                .bind(upto)
                .fetch_all(&mut **self)
                .await
            }

            async fn feed_payload(&mut self, seq: i64) -> R<Option<Json<serde_json::Value>>> {
                let row: Option<(Option<Json<serde_json::Value>>,)> =
                    sqlx::query_as("SELECT payload FROM feed WHERE seq = $1")
                        .bind(seq)
                        .fetch_optional(&mut **self)
                        .await?;
                Ok(row.and_then(|(p,)| p))
            }

            async fn insert_content_doc(&mut self, row: &DocRow) -> R<()> {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO content_docs ({DOC_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                )))
                .bind(row.doc_id)
                .bind(row.case_id)
                .bind(&row.kind)
                .bind(&row.doctor_id)
                .bind(&row.snapshot)
                .bind(row.snapshot_seq)
                .bind(row.pending)
                .bind(&row.heads)
                .bind(&row.frozen_heads)
                .bind(row.frozen_at)
                .bind(row.updated_at)
                .execute(&mut **self)
                .await?;
                Ok(())
            }

            async fn touch_content_doc(&mut self, doc_id: Uuid, heads: &[String], added: i32, at: DateTime<Utc>) -> R<()> {
                sqlx::query(
                    "UPDATE content_docs SET heads = $2, pending = pending + $3, updated_at = $4 WHERE doc_id = $1",
                )
                .bind(doc_id)
                .bind(Json(heads))
                .bind(added)
                .bind(at)
                .execute(&mut **self)
                .await?;
                Ok(())
            }

            async fn freeze_content_doc(&mut self, doc_id: Uuid, heads: &[String], at: DateTime<Utc>) -> R<()> {
                sqlx::query("UPDATE content_docs SET frozen_heads = $2, frozen_at = $3 WHERE doc_id = $1")
                    .bind(doc_id)
                    .bind(Json(heads))
                    .bind(at)
                    .execute(&mut **self)
                    .await?;
                Ok(())
            }

            async fn docs_to_compact(&mut self, min_pending: i32, limit: i64) -> R<Vec<Uuid>> {
                sqlx::query_scalar(
                    "SELECT doc_id FROM content_docs WHERE pending >= $1 ORDER BY pending DESC LIMIT $2",
                )
                .bind(min_pending)
                .bind(limit)
                .fetch_all(&mut **self)
                .await
            }

            async fn compact_content_doc(
                &mut self,
                doc_id: Uuid,
                old_seq: i64,
                snapshot: &[u8],
                new_seq: i64,
                covered: i32,
            ) -> R<bool> {
                let done = sqlx::query(
                    "UPDATE content_docs SET snapshot = $3, snapshot_seq = $4, pending = pending - $5 \
                     WHERE doc_id = $1 AND snapshot_seq = $2",
                )
                .bind(doc_id)
                .bind(old_seq)
                .bind(snapshot)
                .bind(new_seq)
                .bind(covered)
                .execute(&mut **self)
                .await?;
                if done.rows_affected() != 1 {
                    return Ok(false);
                }
                sqlx::query(
                    "UPDATE feed SET data = NULL WHERE doc_id = $1 AND seq <= $2 AND data IS NOT NULL",
                )
                .bind(doc_id)
                .bind(old_seq)
                .execute(&mut **self)
                .await?;
                Ok(true)
            }

            async fn sync_results(&mut self, user: &str, device: Uuid, ops: &[Uuid]) -> R<Vec<(Uuid, Json<serde_json::Value>)>> {
                $sync_results(self, user, device, ops).await
            }

            async fn insert_sync_results_bulk(
                &mut self,
                user: &str,
                device: Uuid,
                ops: &[(Uuid, String)],
                at: DateTime<Utc>,
            ) -> R<u64> {
                $insert_sync_results(self, user, device, ops, at).await
            }

            async fn savepoint(&mut self) -> R<()> {
                sqlx::query("SAVEPOINT push_unit").execute(&mut **self).await.map(drop)
            }

            async fn rollback_to_savepoint(&mut self) -> R<()> {
                sqlx::query("ROLLBACK TO SAVEPOINT push_unit").execute(&mut **self).await.map(drop)
            }

            async fn release_savepoint(&mut self) -> R<()> {
                sqlx::query("RELEASE SAVEPOINT push_unit").execute(&mut **self).await.map(drop)
            }

            async fn blob(&mut self, sha256: &str) -> R<Option<(i64, String)>> {
                sqlx::query_as("SELECT size, content_type FROM blobs WHERE sha256 = $1")
                    .bind(sha256)
                    .fetch_optional(&mut **self)
                    .await
            }

            async fn audit_after(&mut self, seq: i64, limit: i64) -> R<Vec<AuditRow>> {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"
                )))
                .bind(seq)
                .bind(limit)
                .fetch_all(&mut **self)
                .await
            }
        }
    };
}

// A pull reads several statements that must agree (the feed head, rows, documents): PostgreSQL
// gives one snapshot to the whole transaction at REPEATABLE READ.
impl_tx!(
    sqlx::Postgres,
    for_update = " FOR UPDATE",
    repeatable_read = Some("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"),
    sync_results = pg_sync_results,
    insert_sync_results = pg_insert_sync_results,
    append_log = pg_append_log
);
// SQLite write transactions start with BEGIN IMMEDIATE and so are already one at a time; a read
// transaction in WAL mode keeps the snapshot of its first read.
impl_tx!(
    sqlx::Sqlite,
    for_update = "",
    repeatable_read = None::<&'static str>,
    sync_results = sqlite_sync_results,
    insert_sync_results = sqlite_insert_sync_results,
    append_log = sqlite_append_log
);

/// Adds the audit rows `$rows` as the `VALUES` of an `INSERT INTO audit_log` to `$qb`.
macro_rules! push_audit_values {
    ($qb:expr, $rows:expr) => {{
        $qb.push(format!("INSERT INTO audit_log ({AUDIT_COLUMNS}) "));
        $qb.push_values($rows, |mut b, a| {
            b.push_bind(a.seq)
                .push_bind(a.at)
                .push_bind(a.user_id.clone())
                .push_bind(a.role.clone())
                .push_bind(a.action.clone())
                .push_bind(a.case_id)
                .push_bind(a.resource_id.clone())
                .push_bind(a.outcome.clone())
                .push_bind(a.request_id.clone())
                .push_bind(a.device_id.clone())
                .push_bind(a.device_time)
                .push_bind(a.ip.clone())
                .push_bind(a.prev_hash.clone())
                .push_bind(a.hash.clone());
        });
    }};
}

/// Adds the feed rows `$rows` as the `VALUES` of an `INSERT INTO feed` to `$qb`.
macro_rules! push_feed_values {
    ($qb:expr, $rows:expr) => {{
        $qb.push(format!("INSERT INTO feed ({FEED_COLUMNS}) "));
        $qb.push_values($rows, |mut b, r| {
            b.push_bind(r.seq)
                .push_bind(r.kind.clone())
                .push_bind(r.case_id)
                .push_bind(r.recipient.clone())
                .push_bind(r.doc_id)
                .push_bind(r.payload.clone())
                .push_bind(r.data.clone())
                .push_bind(r.at);
        });
    }};
}

/// `Tx::append_log` as one statement per table and chunk, for backend `$db`.
macro_rules! chunked_append_log {
    ($db:ty, $tx:expr, $audits:expr, $feed:expr) => {{
        for chunk in $audits.chunks(AUDIT_INSERT_CHUNK) {
            let mut qb = sqlx::QueryBuilder::<$db>::new("");
            push_audit_values!(qb, chunk);
            qb.build().execute(&mut **$tx).await?;
        }
        if let Some(tail) = $audits.last() {
            sqlx::query(SET_AUDIT_TAIL)
                .bind(tail.hash.clone())
                .execute(&mut **$tx)
                .await?;
        }
        for chunk in $feed.chunks(FEED_INSERT_CHUNK) {
            let mut qb = sqlx::QueryBuilder::<$db>::new("");
            push_feed_values!(qb, chunk);
            qb.build().execute(&mut **$tx).await?;
        }
        Ok(())
    }};
}

/// The chain's new tail into the clock's row (the hash of the last audit row written).
const SET_AUDIT_TAIL: &str = "UPDATE feed_clock SET audit_hash = $1 WHERE id = 1";

/// The end of a write transaction in **one** statement: the audit rows, the chain's tail and
/// the feed rows as data-modifying CTEs of one `INSERT` (every writer waits for the clock's row
/// during this, so each round trip counts: docs/PERFORMANCE.md). Transactions with more rows
/// than one statement should carry (bulk imports) take one statement per chunk.
async fn pg_append_log(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    audits: &[AuditRow],
    feed: &[FeedRow],
) -> R<()> {
    if audits.len() > AUDIT_INSERT_CHUNK || feed.len() > FEED_INSERT_CHUNK {
        return chunked_append_log!(sqlx::Postgres, tx, audits, feed);
    }
    let mut qb = sqlx::QueryBuilder::<sqlx::Postgres>::new("");
    match (audits.last(), feed.is_empty()) {
        (None, true) => return Ok(()),
        (None, false) => push_feed_values!(qb, feed),
        (Some(tail), feed_empty) => {
            qb.push("WITH tail AS (UPDATE feed_clock SET audit_hash = ")
                .push_bind(tail.hash.clone())
                .push(" WHERE id = 1)");
            if feed_empty {
                qb.push(" ");
                push_audit_values!(qb, audits);
            } else {
                qb.push(", audits AS (");
                push_audit_values!(qb, audits);
                qb.push(") ");
                push_feed_values!(qb, feed);
            }
        }
    }
    qb.build().execute(&mut **tx).await.map(drop)
}

/// SQLite has no data-modifying CTEs: one statement per table (its writers are serialized by
/// `BEGIN IMMEDIATE` anyway, in-process).
async fn sqlite_append_log(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    audits: &[AuditRow],
    feed: &[FeedRow],
) -> R<()> {
    chunked_append_log!(sqlx::Sqlite, tx, audits, feed)
}

/// The recorded answers among `ops`, with the ids as **one** array parameter: a fixed text whose
/// generic plan probes the primary key once per id. (An `IN ($3, …, $52)` list made the generic
/// plan rebuild the array for every row of the device's answers: docs/PERFORMANCE.md.)
async fn pg_sync_results(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    user: &str,
    device: Uuid,
    ops: &[Uuid],
) -> R<Vec<(Uuid, Json<serde_json::Value>)>> {
    if ops.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_as(
        "SELECT op_id, result FROM sync_ops WHERE user_id = $1 AND device_id = $2 \
         AND op_id = ANY($3::uuid[])",
    )
    .bind(user)
    .bind(device)
    .bind(ops)
    .fetch_all(&mut **tx)
    .await
}

/// SQLite has no arrays: an `IN` list.
async fn sqlite_sync_results(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    user: &str,
    device: Uuid,
    ops: &[Uuid],
) -> R<Vec<(Uuid, Json<serde_json::Value>)>> {
    if ops.is_empty() {
        return Ok(Vec::new());
    }
    let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
        "SELECT op_id, result FROM sync_ops WHERE user_id = ",
    );
    qb.push_bind(user.to_owned())
        .push(" AND device_id = ")
        .push_bind(device)
        .push(" AND op_id IN (");
    let mut sep = qb.separated(", ");
    for op in ops {
        sep.push_bind(*op);
    }
    qb.push(")");
    qb.build_query_as().fetch_all(&mut **tx).await
}

/// The answers of a push in one statement, whatever their number (a fixed text, so one
/// prepared statement): the bulk insert TECH-NOTES measured at ~20× one row per statement.
async fn pg_insert_sync_results(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    user: &str,
    device: Uuid,
    ops: &[(Uuid, String)],
    at: DateTime<Utc>,
) -> R<u64> {
    if ops.is_empty() {
        return Ok(0);
    }
    let (ids, results): (Vec<Uuid>, Vec<&str>) =
        ops.iter().map(|(id, r)| (*id, r.as_str())).unzip();
    let done = sqlx::query(
        "INSERT INTO sync_ops (user_id, device_id, op_id, result, at) \
         SELECT $1, $2, u.op, u.result::jsonb, $5 FROM UNNEST($3::uuid[], $4::text[]) AS u(op, result) \
         ON CONFLICT (user_id, device_id, op_id) DO NOTHING",
    )
    .bind(user)
    .bind(device)
    .bind(ids)
    .bind(results)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

/// SQLite has no arrays: multi-row `VALUES`, in chunks that stay below its parameter limit.
async fn sqlite_insert_sync_results(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    user: &str,
    device: Uuid,
    ops: &[(Uuid, String)],
    at: DateTime<Utc>,
) -> R<u64> {
    let mut inserted = 0;
    for chunk in ops.chunks(FEED_INSERT_CHUNK) {
        let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "INSERT INTO sync_ops (user_id, device_id, op_id, result, at) ",
        );
        qb.push_values(chunk, |mut b, (op, result)| {
            b.push_bind(user.to_owned())
                .push_bind(device)
                .push_bind(*op)
                .push_bind(result.clone())
                .push_bind(at);
        });
        qb.push(" ON CONFLICT (user_id, device_id, op_id) DO NOTHING");
        inserted += qb.build().execute(&mut **tx).await?.rows_affected();
    }
    Ok(inserted)
}

// ===== Resumable uploads and reports (issue 7, docs/adr/0006-blobs-and-report.md) ==========
//
// Kept apart from `Tx` so that this section can change without touching the statements above;
// implemented for both backends from one text like `Tx`. Used by `crate::uploads` and
// `crate::report`.

/// A resumable upload of one user's file.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct UploadRow {
    pub total: i64,
    pub received: i64,
    pub complete: bool,
}

/// A chunk of a resumable upload, stored as the object `object_key`.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ChunkRow {
    pub start_offset: i64,
    pub length: i64,
    pub object_key: String,
}

/// An incomplete upload nobody has touched for a while (see [`BlobTx::expired_uploads`]).
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ExpiredUpload {
    pub user_id: String,
    pub sha256: String,
}

/// One language's PDF of a case's final report.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ReportRow {
    pub report_id: Uuid,
    pub lang: String,
    pub case_id: Uuid,
    pub sha256: String,
    pub content_sha256: String,
    pub created_at: DateTime<Utc>,
}

/// The statements of uploads and reports.
pub trait BlobTx: Send {
    fn upload(
        &mut self,
        user: &str,
        sha256: &str,
    ) -> impl Future<Output = R<Option<UploadRow>>> + Send;
    /// Starts an upload of `total` bytes unless one exists (then changes nothing).
    fn start_upload(
        &mut self,
        user: &str,
        sha256: &str,
        total: i64,
        at: DateTime<Utc>,
    ) -> impl Future<Output = R<()>> + Send;
    /// Records the chunk `[from, from + length)` if exactly `from` bytes were received so far
    /// (the row is the arbiter between concurrent requests and instances); `false` otherwise.
    fn append_chunk(
        &mut self,
        user: &str,
        sha256: &str,
        from: i64,
        length: i64,
        object_key: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = R<bool>> + Send;
    fn upload_chunks(
        &mut self,
        user: &str,
        sha256: &str,
    ) -> impl Future<Output = R<Vec<ChunkRow>>> + Send;
    /// Marks the upload complete and forgets its chunks.
    fn complete_upload(
        &mut self,
        user: &str,
        sha256: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = R<()>> + Send;
    /// Forgets an upload and its chunks.
    fn drop_upload(&mut self, user: &str, sha256: &str) -> impl Future<Output = R<()>> + Send;
    /// Incomplete uploads last touched (started or given a chunk) before `before`, the
    /// longest-untouched first, at most `limit`.
    fn expired_uploads(
        &mut self,
        before: DateTime<Utc>,
        limit: i64,
    ) -> impl Future<Output = R<Vec<ExpiredUpload>>> + Send;
    /// Forgets the upload if it is still incomplete and untouched since before `before`, with
    /// its chunks: their object keys, or `None` (and nothing changed) when it was touched or
    /// completed meanwhile. The condition is in the `DELETE`, so a chunk recorded concurrently
    /// keeps the upload.
    fn drop_expired_upload(
        &mut self,
        user: &str,
        sha256: &str,
        before: DateTime<Utc>,
    ) -> impl Future<Output = R<Option<Vec<String>>>> + Send;
    fn insert_report(&mut self, row: &ReportRow) -> impl Future<Output = R<()>> + Send;
    fn reports_of_case(&mut self, case_id: Uuid) -> impl Future<Output = R<Vec<ReportRow>>> + Send;
    fn report_rows(&mut self, report_id: Uuid) -> impl Future<Output = R<Vec<ReportRow>>> + Send;
}

const REPORT_COLUMNS: &str = "report_id, lang, case_id, sha256, content_sha256, created_at";

macro_rules! impl_blob_tx {
    ($db:ty) => {
        impl BlobTx for sqlx::Transaction<'_, $db> {
            async fn upload(&mut self, user: &str, sha256: &str) -> R<Option<UploadRow>> {
                sqlx::query_as(
                    "SELECT total, received, complete FROM uploads WHERE user_id = $1 AND sha256 = $2",
                )
                .bind(user)
                .bind(sha256)
                .fetch_optional(&mut **self)
                .await
            }

            async fn start_upload(&mut self, user: &str, sha256: &str, total: i64, at: DateTime<Utc>) -> R<()> {
                sqlx::query(
                    "INSERT INTO uploads (user_id, sha256, total, received, complete, created_at, updated_at) \
                     VALUES ($1, $2, $3, 0, $4, $5, $5) ON CONFLICT (user_id, sha256) DO NOTHING",
                )
                .bind(user)
                .bind(sha256)
                .bind(total)
                .bind(false)
                .bind(at)
                .execute(&mut **self)
                .await?;
                Ok(())
            }

            async fn append_chunk(
                &mut self,
                user: &str,
                sha256: &str,
                from: i64,
                length: i64,
                object_key: &str,
                at: DateTime<Utc>,
            ) -> R<bool> {
                let done = sqlx::query(
                    "UPDATE uploads SET received = $3, updated_at = $4 \
                     WHERE user_id = $1 AND sha256 = $2 AND received = $5 AND complete = $6 \
                     AND $3 <= total",
                )
                .bind(user)
                .bind(sha256)
                .bind(from + length)
                .bind(at)
                .bind(from)
                .bind(false)
                .execute(&mut **self)
                .await?;
                if done.rows_affected() != 1 {
                    return Ok(false);
                }
                sqlx::query(
                    "INSERT INTO upload_chunks (user_id, sha256, start_offset, length, object_key) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(user)
                .bind(sha256)
                .bind(from)
                .bind(length)
                .bind(object_key)
                .execute(&mut **self)
                .await?;
                Ok(true)
            }

            async fn upload_chunks(&mut self, user: &str, sha256: &str) -> R<Vec<ChunkRow>> {
                sqlx::query_as(
                    "SELECT start_offset, length, object_key FROM upload_chunks \
                     WHERE user_id = $1 AND sha256 = $2 ORDER BY start_offset",
                )
                .bind(user)
                .bind(sha256)
                .fetch_all(&mut **self)
                .await
            }

            async fn complete_upload(&mut self, user: &str, sha256: &str, at: DateTime<Utc>) -> R<()> {
                sqlx::query("DELETE FROM upload_chunks WHERE user_id = $1 AND sha256 = $2")
                    .bind(user)
                    .bind(sha256)
                    .execute(&mut **self)
                    .await?;
                sqlx::query(
                    "UPDATE uploads SET received = total, complete = $3, updated_at = $4 \
                     WHERE user_id = $1 AND sha256 = $2",
                )
                .bind(user)
                .bind(sha256)
                .bind(true)
                .bind(at)
                .execute(&mut **self)
                .await?;
                Ok(())
            }

            async fn drop_upload(&mut self, user: &str, sha256: &str) -> R<()> {
                sqlx::query("DELETE FROM upload_chunks WHERE user_id = $1 AND sha256 = $2")
                    .bind(user)
                    .bind(sha256)
                    .execute(&mut **self)
                    .await?;
                sqlx::query("DELETE FROM uploads WHERE user_id = $1 AND sha256 = $2")
                    .bind(user)
                    .bind(sha256)
                    .execute(&mut **self)
                    .await?;
                Ok(())
            }

            async fn expired_uploads(&mut self, before: DateTime<Utc>, limit: i64) -> R<Vec<ExpiredUpload>> {
                sqlx::query_as(
                    "SELECT user_id, sha256 FROM uploads WHERE complete = $1 AND updated_at < $2 \
                     ORDER BY updated_at, user_id, sha256 LIMIT $3",
                )
                .bind(false)
                .bind(before)
                .bind(limit)
                .fetch_all(&mut **self)
                .await
            }

            async fn drop_expired_upload(
                &mut self,
                user: &str,
                sha256: &str,
                before: DateTime<Utc>,
            ) -> R<Option<Vec<String>>> {
                // The keys first: the cascade of the `DELETE` below removes the chunk rows. A
                // chunk recorded after this read also moves `updated_at`, so the `DELETE` then
                // matches nothing and no key goes unlisted.
                let keys: Vec<String> = sqlx::query_scalar(
                    "SELECT object_key FROM upload_chunks WHERE user_id = $1 AND sha256 = $2 \
                     ORDER BY start_offset",
                )
                .bind(user)
                .bind(sha256)
                .fetch_all(&mut **self)
                .await?;
                let dropped = sqlx::query(
                    "DELETE FROM uploads WHERE user_id = $1 AND sha256 = $2 AND complete = $3 \
                     AND updated_at < $4",
                )
                .bind(user)
                .bind(sha256)
                .bind(false)
                .bind(before)
                .execute(&mut **self)
                .await?;
                if dropped.rows_affected() != 1 {
                    return Ok(None);
                }
                sqlx::query("DELETE FROM upload_chunks WHERE user_id = $1 AND sha256 = $2")
                    .bind(user)
                    .bind(sha256)
                    .execute(&mut **self)
                    .await?;
                Ok(Some(keys))
            }

            async fn insert_report(&mut self, row: &ReportRow) -> R<()> {
                sqlx::query(
                    "INSERT INTO reports (report_id, lang, case_id, sha256, content_sha256, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (report_id, lang) DO NOTHING",
                )
                .bind(row.report_id)
                .bind(&row.lang)
                .bind(row.case_id)
                .bind(&row.sha256)
                .bind(&row.content_sha256)
                .bind(row.created_at)
                .execute(&mut **self)
                .await?;
                Ok(())
            }

            async fn reports_of_case(&mut self, case_id: Uuid) -> R<Vec<ReportRow>> {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {REPORT_COLUMNS} FROM reports WHERE case_id = $1 ORDER BY created_at, lang"
                )))
                .bind(case_id)
                .fetch_all(&mut **self)
                .await
            }

            async fn report_rows(&mut self, report_id: Uuid) -> R<Vec<ReportRow>> {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {REPORT_COLUMNS} FROM reports WHERE report_id = $1 ORDER BY lang"
                )))
                .bind(report_id)
                .fetch_all(&mut **self)
                .await
            }
        }
    };
}

impl_blob_tx!(sqlx::Postgres);
impl_blob_tx!(sqlx::Sqlite);
