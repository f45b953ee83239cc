//! Row types shared by both backends, and the conversions between rows and core types.

use chrono::{DateTime, Utc};
use sop_core::catalog::{CoordinatorMapping, DiseaseCategory, DoctorProfile, ReviewType};
use sop_core::ids::{CategoryId, MappingId, ReviewTypeId, UserId};
use sqlx::types::Json;
use uuid::Uuid;

#[derive(Debug, sqlx::FromRow)]
pub struct CaseRow {
    pub version: i64,
    pub state: Json<sop_core::Case>,
}

#[derive(Debug, sqlx::FromRow)]
pub struct ReviewTypeRow {
    pub rt_id: Uuid,
    pub title_en: String,
    pub title_ar: String,
    pub description_en: String,
    pub description_ar: String,
    pub duration_en: String,
    pub duration_ar: String,
    pub price: i64,
    pub currency: String,
    pub expected_review_days: i32,
    pub icon: String,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

impl From<ReviewTypeRow> for ReviewType {
    fn from(r: ReviewTypeRow) -> Self {
        ReviewType {
            rt_id: ReviewTypeId(r.rt_id),
            title_en: r.title_en,
            title_ar: r.title_ar,
            description_en: r.description_en,
            description_ar: r.description_ar,
            duration_en: r.duration_en,
            duration_ar: r.duration_ar,
            price: r.price,
            currency: r.currency,
            expected_review_days: r.expected_review_days,
            icon: r.icon,
            active: r.active,
            created_at: r.created_at,
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct CategoryRow {
    pub dc_id: Uuid,
    pub label_en: String,
    pub label_ar: String,
    pub active: bool,
    pub doctor_ids: Json<Vec<UserId>>,
}

impl From<CategoryRow> for DiseaseCategory {
    fn from(r: CategoryRow) -> Self {
        DiseaseCategory {
            dc_id: CategoryId(r.dc_id),
            label_en: r.label_en,
            label_ar: r.label_ar,
            active: r.active,
            doctor_ids: r.doctor_ids.0,
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct MappingRow {
    pub cc_id: Uuid,
    pub speciality_id: Uuid,
    pub doctor_ids: Json<Vec<UserId>>,
    pub active: bool,
}

impl From<MappingRow> for CoordinatorMapping {
    fn from(r: MappingRow) -> Self {
        CoordinatorMapping {
            cc_id: MappingId(r.cc_id),
            speciality_id: CategoryId(r.speciality_id),
            doctor_ids: r.doctor_ids.0,
            active: r.active,
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct DoctorRow {
    pub doctor_id: String,
    pub name_en: String,
    pub name_ar: String,
    pub phone: String,
    pub email: String,
    pub specialties: Json<Vec<CategoryId>>,
}

impl From<DoctorRow> for DoctorProfile {
    fn from(r: DoctorRow) -> Self {
        DoctorProfile {
            doctor_id: UserId(r.doctor_id),
            name_en: r.name_en,
            name_ar: r.name_ar,
            phone: r.phone,
            email: r.email,
            specialties: r.specialties.0,
        }
    }
}

/// A stored in-app notification.
#[derive(Clone, Debug, sqlx::FromRow, serde::Serialize)]
pub struct NotificationRow {
    pub notification_id: Uuid,
    pub recipient: String,
    pub case_id: Uuid,
    pub kind: String,
    pub title_en: String,
    pub title_ar: String,
    pub body_en: String,
    pub body_ar: String,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
}

/// One row of the audit log.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow, serde::Serialize)]
pub struct AuditRow {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub user_id: Option<String>,
    pub role: String,
    pub action: String,
    pub case_id: Option<Uuid>,
    pub resource_id: Option<String>,
    pub outcome: String,
    pub request_id: Option<String>,
    pub device_id: Option<String>,
    pub device_time: Option<DateTime<Utc>>,
    pub ip: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

/// One outbound call in the outbox.
#[derive(Clone, Debug, sqlx::FromRow, serde::Serialize)]
pub struct OutboxRow {
    pub outbox_id: Uuid,
    pub case_id: Option<Uuid>,
    pub kind: String,
    pub payload: Json<serde_json::Value>,
    pub idempotency_key: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub done_at: Option<DateTime<Utc>>,
}

/// One row of the sync feed (docs/adr/0004-sync-feed.md).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct FeedRow {
    pub seq: i64,
    /// `case`, `content`, `notification`, `catalog`, `access_granted`, `access_revoked`,
    /// `content_refresh`.
    pub kind: String,
    pub case_id: Option<Uuid>,
    /// The one user this row is for (or `*admins`); `None` when readers are decided at pull time.
    pub recipient: Option<String>,
    pub doc_id: Option<Uuid>,
    pub payload: Option<Json<serde_json::Value>>,
    /// Content rows: the Automerge changes (until compaction clears them).
    pub data: Option<Vec<u8>>,
    pub at: DateTime<Utc>,
}

/// A stored content document: its snapshot and bookkeeping (the changes after the snapshot are
/// the feed's content rows).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct DocRow {
    pub doc_id: Uuid,
    pub case_id: Uuid,
    /// `intake`, `notes`, `opinion`, `summary`.
    pub kind: String,
    /// The doctor of notes and opinions; empty for the intake and the summary.
    pub doctor_id: String,
    pub snapshot: Vec<u8>,
    /// The feed position the snapshot covers.
    pub snapshot_seq: i64,
    /// Content rows after `snapshot_seq`.
    pub pending: i32,
    /// The current heads (lowercase hex).
    pub heads: Json<Vec<String>>,
    pub frozen_heads: Option<Json<Vec<String>>>,
    pub frozen_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}
