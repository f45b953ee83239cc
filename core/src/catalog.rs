//! The admin-configured catalog (SPEC §2): review types, disease categories with their eligible
//! specialists, coordinator mappings, and the doctor directory.
//!
//! The rules only need the few entries a command touches, so callers may fill a [`Catalog`] with
//! just those (the server loads the case's review type, category and mapping).
//!
//! The `check_*` functions are the catalog's own rules (SPEC §2), used on every admin write.

use crate::Timestamp;
use crate::ids::{CategoryId, MappingId, ReviewTypeId, UserId};
use crate::refusal::{Refusal, RefusalCode};
use serde::{Deserialize, Serialize};

/// A kind of opinion offered (standard, expedited, …).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewType {
    pub rt_id: ReviewTypeId,
    pub title_en: String,
    pub title_ar: String,
    pub description_en: String,
    pub description_ar: String,
    pub duration_en: String,
    pub duration_ar: String,
    /// Integer minor units of `currency`.
    pub price: i64,
    /// ISO 4217 code, `SAR` by default.
    pub currency: String,
    /// The SLA in days, ≥ 1.
    pub expected_review_days: i32,
    pub icon: String,
    pub active: bool,
    pub created_at: Timestamp,
}

/// A disease category (specialty) and the specialists eligible for its cases.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiseaseCategory {
    pub dc_id: CategoryId,
    pub label_en: String,
    pub label_ar: String,
    pub active: bool,
    pub doctor_ids: Vec<UserId>,
}

/// The doctors who may coordinate cases of one category.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoordinatorMapping {
    pub cc_id: MappingId,
    pub speciality_id: CategoryId,
    pub doctor_ids: Vec<UserId>,
    pub active: bool,
}

/// A doctor in the directory. `specialties` is display data; eligibility comes from categories
/// and mappings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoctorProfile {
    pub doctor_id: UserId,
    pub name_en: String,
    pub name_ar: String,
    pub phone: String,
    pub email: String,
    pub specialties: Vec<CategoryId>,
}

/// The part of the catalog the rules consult.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    pub review_types: Vec<ReviewType>,
    pub categories: Vec<DiseaseCategory>,
    pub mappings: Vec<CoordinatorMapping>,
}

impl Catalog {
    pub fn review_type(&self, id: ReviewTypeId) -> Option<&ReviewType> {
        self.review_types.iter().find(|rt| rt.rt_id == id)
    }

    pub fn category(&self, id: CategoryId) -> Option<&DiseaseCategory> {
        self.categories.iter().find(|dc| dc.dc_id == id)
    }

    /// The one active coordinator mapping of a category, if any.
    pub fn active_mapping(&self, category: CategoryId) -> Option<&CoordinatorMapping> {
        self.mappings
            .iter()
            .find(|m| m.active && m.speciality_id == category)
    }

    /// Whether `doctor` may coordinate cases of `category`.
    pub fn may_coordinate(&self, category: CategoryId, doctor: &UserId) -> bool {
        self.active_mapping(category)
            .is_some_and(|m| m.doctor_ids.contains(doctor))
    }

    /// Whether `doctor` is an eligible specialist for `category`.
    pub fn may_review(&self, category: CategoryId, doctor: &UserId) -> bool {
        self.category(category)
            .is_some_and(|dc| dc.doctor_ids.contains(doctor))
    }
}

fn non_empty(value: &str, field: &str) -> Result<(), Refusal> {
    if value.trim().is_empty() || value.chars().count() > 500 {
        return Err(Refusal::field(field));
    }
    Ok(())
}

/// A review type's fields: titles present, price ≥ 0, an ISO 4217 currency, SLA ≥ 1 day.
pub fn check_review_type(rt: &ReviewType) -> Result<(), Refusal> {
    non_empty(&rt.title_en, "title_en")?;
    non_empty(&rt.title_ar, "title_ar")?;
    if rt.price < 0 {
        return Err(Refusal::field("price"));
    }
    if rt.currency.len() != 3 || !rt.currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(Refusal::field("currency"));
    }
    if !(1..=365).contains(&rt.expected_review_days) {
        return Err(Refusal::field("expected_review_days"));
    }
    for (value, field) in [
        (&rt.description_en, "description_en"),
        (&rt.description_ar, "description_ar"),
        (&rt.duration_en, "duration_en"),
        (&rt.duration_ar, "duration_ar"),
        (&rt.icon, "icon"),
    ] {
        if value.chars().count() > 2000 {
            return Err(Refusal::field(field));
        }
    }
    Ok(())
}

/// A disease category's fields: both labels present.
pub fn check_category(dc: &DiseaseCategory) -> Result<(), Refusal> {
    non_empty(&dc.label_en, "label_en")?;
    non_empty(&dc.label_ar, "label_ar")?;
    if dc.doctor_ids.iter().any(|d| d.as_str().trim().is_empty()) {
        return Err(Refusal::field("doctor_ids"));
    }
    Ok(())
}

/// A coordinator mapping (SPEC §2): its category exists and is active (400), its doctor list is
/// non-empty (400), and no other active mapping covers the category (409). `catalog` holds the
/// category and the category's current mappings.
pub fn check_mapping(catalog: &Catalog, mapping: &CoordinatorMapping) -> Result<(), Refusal> {
    if !catalog
        .category(mapping.speciality_id)
        .is_some_and(|dc| dc.active)
    {
        return Err(Refusal::new(RefusalCode::MappingCategoryInvalid));
    }
    if mapping.doctor_ids.is_empty()
        || mapping
            .doctor_ids
            .iter()
            .any(|d| d.as_str().trim().is_empty())
    {
        return Err(Refusal::new(RefusalCode::MappingDoctorsRequired));
    }
    let other_active = catalog
        .mappings
        .iter()
        .any(|m| m.active && m.cc_id != mapping.cc_id && m.speciality_id == mapping.speciality_id);
    if mapping.active && other_active {
        return Err(Refusal::new(RefusalCode::MappingExists));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn category(active: bool) -> DiseaseCategory {
        DiseaseCategory {
            dc_id: CategoryId(Uuid::from_u128(1)),
            label_en: "Oncology".into(),
            label_ar: "الأورام".into(),
            active,
            doctor_ids: vec![UserId::from("EMP11")],
        }
    }

    fn mapping(id: u128, doctors: &[&str]) -> CoordinatorMapping {
        CoordinatorMapping {
            cc_id: MappingId(Uuid::from_u128(id)),
            speciality_id: CategoryId(Uuid::from_u128(1)),
            doctor_ids: doctors.iter().map(|d| UserId::from(*d)).collect(),
            active: true,
        }
    }

    fn code(catalog: &Catalog, m: &CoordinatorMapping) -> Option<RefusalCode> {
        check_mapping(catalog, m).err().map(|r| r.code)
    }

    #[test]
    fn mapping_needs_an_active_category_and_doctors() {
        let inactive = Catalog {
            categories: vec![category(false)],
            ..Catalog::default()
        };
        assert_eq!(
            code(&inactive, &mapping(10, &["EMP10"])),
            Some(RefusalCode::MappingCategoryInvalid)
        );
        let active = Catalog {
            categories: vec![category(true)],
            ..Catalog::default()
        };
        assert_eq!(
            code(&active, &mapping(10, &[])),
            Some(RefusalCode::MappingDoctorsRequired)
        );
        assert_eq!(code(&active, &mapping(10, &["EMP10"])), None);
    }

    #[test]
    fn at_most_one_active_mapping_per_category_but_editing_it_is_fine() {
        let catalog = Catalog {
            categories: vec![category(true)],
            mappings: vec![mapping(10, &["EMP10"])],
            ..Catalog::default()
        };
        assert_eq!(
            code(&catalog, &mapping(11, &["EMP12"])),
            Some(RefusalCode::MappingExists)
        );
        assert_eq!(code(&catalog, &mapping(10, &["EMP12"])), None);
    }
}
