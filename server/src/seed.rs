//! `sop-server seed-demo`: a demo catalog, so the whole flow can be walked at once (SPEC §11).
//!
//! Two review types, two disease categories with their specialists, a coordinator mapping for
//! each, and the five doctors of the directory. Every entry has a fixed id and fixed contents, and
//! is written only when missing or different, so a second run changes nothing (not even the audit
//! log). Writes go through the store like the admin API's, so the core's catalog rules apply.

use crate::store::{AuditMeta, Store, StoreError};
use chrono::{DateTime, Utc};
use sop_core::RefusalCode;
use sop_core::catalog::{CoordinatorMapping, DiseaseCategory, DoctorProfile, ReviewType};
use sop_core::ids::{CategoryId, MappingId, ReviewTypeId, UserId};
use std::fmt::Write as _;
use std::path::Path;
use uuid::Uuid;

/// The standard review: 1500.00 SAR, 7 days.
pub const STANDARD: ReviewTypeId =
    ReviewTypeId(Uuid::from_u128(0x0190f5a0_0000_7000_8000_000000000001));
/// The expedited review: 3000.00 SAR, 3 days.
pub const EXPEDITED: ReviewTypeId =
    ReviewTypeId(Uuid::from_u128(0x0190f5a0_0000_7000_8000_000000000002));
/// Oncology.
pub const ONCOLOGY: CategoryId =
    CategoryId(Uuid::from_u128(0x0190f5a0_0000_7000_8000_0000000000d1));
/// Cardiology.
pub const CARDIOLOGY: CategoryId =
    CategoryId(Uuid::from_u128(0x0190f5a0_0000_7000_8000_0000000000d2));
/// The coordinator mapping of oncology.
pub const ONCOLOGY_COORDINATORS: MappingId =
    MappingId(Uuid::from_u128(0x0190f5a0_0000_7000_8000_0000000000c1));
/// The coordinator mapping of cardiology.
pub const CARDIOLOGY_COORDINATORS: MappingId =
    MappingId(Uuid::from_u128(0x0190f5a0_0000_7000_8000_0000000000c2));

/// The demo catalog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Demo {
    pub review_types: Vec<ReviewType>,
    pub categories: Vec<DiseaseCategory>,
    pub mappings: Vec<CoordinatorMapping>,
    pub doctors: Vec<DoctorProfile>,
}

/// A fixed creation time, so that a re-run finds the review types unchanged. The standard
/// review is the newer one, so patients see it first.
fn created_at(second: i64) -> DateTime<Utc> {
    // 2025-01-01T00:00:00Z plus a few seconds is always representable.
    DateTime::from_timestamp(1_735_689_600 + second, 0).unwrap_or_default()
}

fn ids(list: &[&str]) -> Vec<UserId> {
    list.iter().map(|id| UserId::new(*id)).collect()
}

/// (id, English name, Arabic name, specialties).
const DOCTORS: [(&str, &str, &str, &[CategoryId]); 5] = [
    (
        "EMP10",
        "Dr. Sara Al-Harbi",
        "د. سارة الحربي",
        &[ONCOLOGY, CARDIOLOGY],
    ),
    ("EMP11", "Dr. Omar Haddad", "د. عمر حداد", &[ONCOLOGY]),
    ("EMP12", "Dr. Lina Qasem", "د. لينا قاسم", &[ONCOLOGY]),
    (
        "EMP13",
        "Dr. Khalid Al-Otaibi",
        "د. خالد العتيبي",
        &[CARDIOLOGY],
    ),
    (
        "EMP14",
        "Dr. Maha Al-Zahrani",
        "د. مها الزهراني",
        &[CARDIOLOGY],
    ),
];

/// The display texts of a review type in one language.
struct Texts {
    title: &'static str,
    description: &'static str,
    duration: &'static str,
}

/// A demo review type in SAR; `second` orders the creation times.
fn review_type(
    rt_id: ReviewTypeId,
    en: Texts,
    ar: Texts,
    price: i64,
    days: i32,
    icon: &str,
    second: i64,
) -> ReviewType {
    ReviewType {
        rt_id,
        title_en: en.title.to_owned(),
        title_ar: ar.title.to_owned(),
        description_en: en.description.to_owned(),
        description_ar: ar.description.to_owned(),
        duration_en: en.duration.to_owned(),
        duration_ar: ar.duration.to_owned(),
        price,
        currency: "SAR".to_owned(),
        expected_review_days: days,
        icon: icon.to_owned(),
        active: true,
        created_at: created_at(second),
    }
}

/// The demo catalog's contents. EMP10 coordinates both categories; a second coordinator per
/// category (a specialist of the other one) lets the demo reassign a coordinator (T5).
pub fn demo() -> Demo {
    Demo {
        review_types: vec![
            review_type(
                STANDARD,
                Texts {
                    title: "Standard review",
                    description: "A second opinion from specialists within 7 days.",
                    duration: "5–7 days",
                },
                Texts {
                    title: "مراجعة قياسية",
                    description: "رأي طبي ثانٍ من أطباء مختصين خلال 7 أيام.",
                    duration: "5–7 أيام",
                },
                150_000,
                7,
                "clock",
                1,
            ),
            review_type(
                EXPEDITED,
                Texts {
                    title: "Expedited review",
                    description: "A priority second opinion within 3 days.",
                    duration: "2–3 days",
                },
                Texts {
                    title: "مراجعة عاجلة",
                    description: "رأي طبي ثانٍ بأولوية خلال 3 أيام.",
                    duration: "2–3 أيام",
                },
                300_000,
                3,
                "bolt",
                0,
            ),
        ],
        categories: vec![
            DiseaseCategory {
                dc_id: ONCOLOGY,
                label_en: "Oncology".to_owned(),
                label_ar: "الأورام".to_owned(),
                active: true,
                doctor_ids: ids(&["EMP11", "EMP12"]),
            },
            DiseaseCategory {
                dc_id: CARDIOLOGY,
                label_en: "Cardiology".to_owned(),
                label_ar: "أمراض القلب".to_owned(),
                active: true,
                doctor_ids: ids(&["EMP13", "EMP14"]),
            },
        ],
        mappings: vec![
            CoordinatorMapping {
                cc_id: ONCOLOGY_COORDINATORS,
                speciality_id: ONCOLOGY,
                doctor_ids: ids(&["EMP10", "EMP13"]),
                active: true,
            },
            CoordinatorMapping {
                cc_id: CARDIOLOGY_COORDINATORS,
                speciality_id: CARDIOLOGY,
                doctor_ids: ids(&["EMP10", "EMP11"]),
                active: true,
            },
        ],
        doctors: DOCTORS
            .iter()
            .map(|(id, name_en, name_ar, specialties)| DoctorProfile {
                doctor_id: UserId::new(*id),
                name_en: (*name_en).to_owned(),
                name_ar: (*name_ar).to_owned(),
                phone: format!("+9665000000{}", &id[3..]),
                email: format!("{}@demo.sop.example", id.to_lowercase()),
                specialties: specialties.to_vec(),
            })
            .collect(),
    }
}

/// What a seeding run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeedReport {
    /// Entries written (missing or different).
    pub written: usize,
    /// Entries already as in the demo.
    pub unchanged: usize,
    /// Entries left alone, with why (e.g. the category already has another active mapping).
    pub skipped: Vec<String>,
}

impl SeedReport {
    fn count(&mut self, written: bool) {
        if written {
            self.written += 1;
        } else {
            self.unchanged += 1;
        }
    }
}

/// Writes every entry of `demo` that is missing or different.
pub async fn seed(
    store: &Store,
    demo: &Demo,
    now: DateTime<Utc>,
) -> Result<SeedReport, StoreError> {
    let meta = AuditMeta {
        role: "system".to_owned(),
        ..AuditMeta::default()
    };
    let mut report = SeedReport::default();
    for rt in &demo.review_types {
        let same = store.review_type(rt.rt_id).await?.as_ref() == Some(rt);
        if !same {
            store.save_review_type(rt, &meta, now).await?;
        }
        report.count(!same);
    }
    for dc in &demo.categories {
        let same = store.category(dc.dc_id).await?.as_ref() == Some(dc);
        if !same {
            store.save_category(dc, &meta, now).await?;
        }
        report.count(!same);
    }
    for doctor in &demo.doctors {
        let same = store.doctor(doctor.doctor_id.as_str()).await?.as_ref() == Some(doctor);
        if !same {
            store.save_doctor(doctor, &meta, now).await?;
        }
        report.count(!same);
    }
    for mapping in &demo.mappings {
        if store.mapping(mapping.cc_id).await?.as_ref() == Some(mapping) {
            report.count(false);
            continue;
        }
        match store.save_mapping(mapping, &meta, now).await {
            Ok(()) => report.count(true),
            // An admin already mapped coordinators for this category: theirs stays.
            Err(StoreError::Refused(r)) if r.code == RefusalCode::MappingExists => {
                report.skipped.push(format!(
                    "coordinator mapping {}: {}",
                    mapping.cc_id, r.message_en
                ));
            }
            Err(other) => return Err(other),
        }
    }
    Ok(report)
}

/// The text `seed-demo` prints: what it did, the ids, and token commands to try the flow.
pub fn summary(demo: &Demo, report: &SeedReport, data_dir: &Path) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail; the results are ignored for that reason.
    let _ = writeln!(
        out,
        "Demo catalog ready: {} written, {} unchanged.",
        report.written, report.unchanged
    );
    for reason in &report.skipped {
        let _ = writeln!(out, "  skipped {reason}");
    }
    let _ = writeln!(out, "\nReview types (rt_id):");
    for rt in &demo.review_types {
        let _ = writeln!(
            out,
            "  {}  {:<17} {}.{:02} {}, {} days",
            rt.rt_id,
            rt.title_en,
            rt.price / 100,
            rt.price % 100,
            rt.currency,
            rt.expected_review_days
        );
    }
    let _ = writeln!(out, "\nDisease categories (dc_id):");
    for dc in &demo.categories {
        let coordinators = demo
            .mappings
            .iter()
            .find(|m| m.speciality_id == dc.dc_id)
            .map(|m| join(&m.doctor_ids))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {}  {:<11} specialists {}; coordinators {}",
            dc.dc_id,
            dc.label_en,
            join(&dc.doctor_ids),
            coordinators
        );
    }
    let _ = writeln!(out, "\nCoordinator mappings (cc_id):");
    for m in &demo.mappings {
        let _ = writeln!(out, "  {}  {}", m.cc_id, join(&m.doctor_ids));
    }
    let _ = writeln!(out, "\nDoctors:");
    for d in &demo.doctors {
        let _ = writeln!(out, "  {}  {} / {}", d.doctor_id, d.name_en, d.name_ar);
    }
    let dir = data_dir.display();
    let _ = writeln!(out, "\nTokens (signed with the key in {dir}):");
    for (sub, aud, who) in [
        ("P1", "snr_usr", "a patient"),
        ("EMP10", "snr_pro", "the coordinator"),
        ("EMP11", "snr_pro", "a specialist"),
        ("A1", "snr_dash", "an admin"),
    ] {
        let _ = writeln!(
            out,
            "  sop-server token --data-dir {dir} --sub {sub} --aud {aud}   # {who}"
        );
    }
    out
}

fn join(ids: &[UserId]) -> String {
    ids.iter()
        .map(UserId::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a failing test should panic loudly
mod tests {
    use super::*;
    use sop_core::catalog::{Catalog, check_category, check_mapping, check_review_type};

    #[test]
    fn demo_catalog_passes_the_catalog_rules() {
        let demo = demo();
        for rt in &demo.review_types {
            check_review_type(rt).expect("valid review type");
        }
        for dc in &demo.categories {
            check_category(dc).expect("valid category");
        }
        let catalog = Catalog {
            review_types: demo.review_types.clone(),
            categories: demo.categories.clone(),
            mappings: Vec::new(),
        };
        for m in &demo.mappings {
            check_mapping(&catalog, m).expect("valid mapping");
        }
    }

    #[test]
    fn summary_names_prices_ids_and_token_commands() {
        let demo = demo();
        let text = summary(&demo, &SeedReport::default(), Path::new("/d"));
        assert!(text.contains("1500.00 SAR, 7 days"), "{text}");
        assert!(text.contains("3000.00 SAR, 3 days"), "{text}");
        assert!(text.contains(&ONCOLOGY.to_string()), "{text}");
        assert!(
            text.contains("sop-server token --data-dir /d --sub A1 --aud snr_dash"),
            "{text}"
        );
    }
}
