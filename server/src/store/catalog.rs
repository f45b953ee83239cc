//! Catalog writes and reads (SPEC §2). Every write checks the catalog rules of `sop-core` and is
//! audited in the same transaction; review type and category writes also add a `catalog` row to
//! the sync feed.

use super::audit::{self, AuditEntry, AuditMeta};
use super::feed_log::{category_payload, review_type_payload};
use super::sql::Tx;
use super::{Page, Paged, Store, StoreError, read_tx, write_tx};
use chrono::{DateTime, Utc};
use sop_core::catalog::{
    Catalog, CoordinatorMapping, DiseaseCategory, DoctorProfile, ReviewType, check_category,
    check_mapping, check_review_type,
};
use sop_core::ids::{CategoryId, MappingId, ReviewTypeId};

async fn audited<T: Tx>(
    tx: &mut T,
    meta: &AuditMeta,
    action: &str,
    resource_id: String,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let entry = AuditEntry {
        action,
        case_id: None,
        resource_id: Some(resource_id),
        outcome: "ok".to_owned(),
    };
    audit::append(tx, meta, entry, now).await
}

/// The unique index keeping one active coordinator mapping per category.
const ONE_ACTIVE_MAPPING: &str = "coordinator_mappings_one_active";

/// A write that broke [`ONE_ACTIVE_MAPPING`] (another request saved an active mapping for the
/// category after this one checked) is the same refusal the check gives: `mapping_exists`, 409.
/// PostgreSQL names the index; SQLite names the column (and cannot race: its write transactions
/// take the lock first).
fn second_active_mapping(err: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &err
        && db.is_unique_violation()
        && (db.constraint() == Some(ONE_ACTIVE_MAPPING)
            || db.message().contains("coordinator_mappings.speciality_id"))
    {
        return StoreError::Refused(sop_core::Refusal::new(sop_core::RefusalCode::MappingExists));
    }
    err.into()
}

impl Store {
    /// Creates or replaces a review type.
    pub async fn save_review_type(
        &self,
        rt: &ReviewType,
        meta: &AuditMeta,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        check_review_type(rt)?;
        super::feed_tx!(self, now, |tx, feed| {
            tx.upsert_review_type(rt).await?;
            feed.catalog(review_type_payload(rt));
            audited(&mut tx, meta, "save_reviewtype", rt.rt_id.to_string(), now).await
        })
    }

    pub async fn review_type(&self, id: ReviewTypeId) -> Result<Option<ReviewType>, StoreError> {
        Ok(read_tx!(&self.db, |tx| tx.review_type(id.0).await)?)
    }

    pub async fn list_review_types(
        &self,
        active_only: bool,
        page: Page,
    ) -> Result<Paged<ReviewType>, StoreError> {
        let (items, total) = read_tx!(&self.db, |tx| tx
            .list_review_types(active_only, page.window())
            .await)?;
        Ok(Paged { items, total, page })
    }

    /// Creates or replaces a disease category.
    pub async fn save_category(
        &self,
        dc: &DiseaseCategory,
        meta: &AuditMeta,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        check_category(dc)?;
        super::feed_tx!(self, now, |tx, feed| {
            tx.upsert_category(dc, now).await?;
            feed.catalog(category_payload(dc));
            audited(
                &mut tx,
                meta,
                "save_disease_category",
                dc.dc_id.to_string(),
                now,
            )
            .await
        })
    }

    pub async fn category(&self, id: CategoryId) -> Result<Option<DiseaseCategory>, StoreError> {
        Ok(read_tx!(&self.db, |tx| tx.category(id.0).await)?)
    }

    pub async fn list_categories(
        &self,
        active_only: bool,
        q: Option<&str>,
        page: Page,
    ) -> Result<Paged<DiseaseCategory>, StoreError> {
        let (items, total) = read_tx!(&self.db, |tx| tx
            .list_categories(active_only, q, page.window())
            .await)?;
        Ok(Paged { items, total, page })
    }

    /// Creates or edits a coordinator mapping, checked against its category and the category's
    /// other mappings in the same transaction.
    pub async fn save_mapping(
        &self,
        mapping: &CoordinatorMapping,
        meta: &AuditMeta,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        write_tx!(&self.db, |tx| {
            let catalog = Catalog {
                review_types: Vec::new(),
                categories: tx
                    .category(mapping.speciality_id.0)
                    .await?
                    .into_iter()
                    .collect(),
                mappings: tx.mappings_of(mapping.speciality_id.0).await?,
            };
            match check_mapping(&catalog, mapping) {
                Ok(()) => {
                    tx.upsert_mapping(mapping, now)
                        .await
                        .map_err(second_active_mapping)?;
                    audited(
                        &mut tx,
                        meta,
                        "save_case_coordinators",
                        mapping.cc_id.to_string(),
                        now,
                    )
                    .await
                }
                Err(refusal) => Err(StoreError::Refused(refusal)),
            }
        })
    }

    pub async fn mapping(&self, id: MappingId) -> Result<Option<CoordinatorMapping>, StoreError> {
        Ok(read_tx!(&self.db, |tx| tx.mapping(id.0).await)?)
    }

    pub async fn list_mappings(
        &self,
        q: Option<&str>,
        page: Page,
    ) -> Result<Paged<CoordinatorMapping>, StoreError> {
        let (items, total) = read_tx!(&self.db, |tx| tx.list_mappings(q, page.window()).await)?;
        Ok(Paged { items, total, page })
    }

    /// Creates or replaces a doctor in the directory.
    pub async fn save_doctor(
        &self,
        doctor: &DoctorProfile,
        meta: &AuditMeta,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if doctor.doctor_id.as_str().trim().is_empty() || doctor.doctor_id.as_str().len() > 128 {
            return Err(StoreError::Refused(sop_core::Refusal::field("doctor_id")));
        }
        write_tx!(&self.db, |tx| {
            tx.upsert_doctor(doctor, now).await?;
            audited(
                &mut tx,
                meta,
                "save_doctor",
                doctor.doctor_id.to_string(),
                now,
            )
            .await
        })
    }

    pub async fn doctor(&self, id: &str) -> Result<Option<DoctorProfile>, StoreError> {
        Ok(read_tx!(&self.db, |tx| tx.doctor(id).await)?)
    }

    pub async fn list_doctors(
        &self,
        q: Option<&str>,
        page: Page,
    ) -> Result<Paged<DoctorProfile>, StoreError> {
        let (items, total) = read_tx!(&self.db, |tx| tx.list_doctors(q, page.window()).await)?;
        Ok(Paged { items, total, page })
    }
}
