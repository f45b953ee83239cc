//! The catalog endpoints (SPEC §2): review types, disease categories, coordinator mappings and the
//! doctor directory. The server picks the ids of new entries (UUIDv7); the catalog rules are the
//! core's `check_*`, applied by the store inside the write, which also audits it.

use super::admin_actor;
use crate::api::{PageQuery, RequestMeta, paged};
use crate::auth::AdminAuth;
use crate::envelope::{Envelope, ok};
use crate::error::AppError;
use crate::extract::{Json, JsonOrEmpty};
use crate::state::AppState;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use sop_core::Refusal;
use sop_core::catalog::{CoordinatorMapping, DiseaseCategory, DoctorProfile, ReviewType};
use sop_core::ids::{CategoryId, MappingId, ReviewTypeId, UserId};

/// The currency of a review type when none is given (SPEC §2).
const DEFAULT_CURRENCY: &str = "SAR";

/// The review type fields of `save-reviewtype` and `update-reviewtype`. Every field is optional
/// here: a save requires `price` and `expected_review_days` (and the core requires the titles),
/// an update changes only what is sent.
#[derive(Debug, Default, Deserialize)]
pub struct ReviewTypeFields {
    pub title_en: Option<String>,
    pub title_ar: Option<String>,
    pub description_en: Option<String>,
    pub description_ar: Option<String>,
    pub duration_en: Option<String>,
    pub duration_ar: Option<String>,
    pub price: Option<i64>,
    pub currency: Option<String>,
    pub expected_review_days: Option<i32>,
    pub icon: Option<String>,
    pub active: Option<bool>,
}

impl ReviewTypeFields {
    /// Overwrites the fields of `rt` that were sent.
    fn apply_to(self, rt: &mut ReviewType) {
        let set = |target: &mut String, value: Option<String>| {
            if let Some(value) = value {
                *target = value;
            }
        };
        set(&mut rt.title_en, self.title_en);
        set(&mut rt.title_ar, self.title_ar);
        set(&mut rt.description_en, self.description_en);
        set(&mut rt.description_ar, self.description_ar);
        set(&mut rt.duration_en, self.duration_en);
        set(&mut rt.duration_ar, self.duration_ar);
        set(&mut rt.currency, self.currency);
        set(&mut rt.icon, self.icon);
        rt.price = self.price.unwrap_or(rt.price);
        rt.expected_review_days = self.expected_review_days.unwrap_or(rt.expected_review_days);
        rt.active = self.active.unwrap_or(rt.active);
    }
}

/// The body of `update-reviewtype`: the id and the fields to change.
#[derive(Debug, Deserialize)]
pub struct UpdateReviewTypeRequest {
    pub rt_id: ReviewTypeId,
    #[serde(flatten)]
    pub fields: ReviewTypeFields,
}

/// The `data` of a review type save.
#[derive(Debug, Serialize)]
pub struct RtIdReply {
    pub rt_id: ReviewTypeId,
}

/// `POST /admin/save-reviewtype`: a new review type (`currency` SAR and `active` true unless
/// given) → `{rt_id}`.
pub async fn save_review_type(
    State(state): State<AppState>,
    AdminAuth(user): AdminAuth,
    meta: RequestMeta,
    Json(fields): Json<ReviewTypeFields>,
) -> Result<Envelope<RtIdReply>, AppError> {
    let now = state.now();
    let mut rt = ReviewType {
        rt_id: ReviewTypeId::new_v7(),
        title_en: String::new(),
        title_ar: String::new(),
        description_en: String::new(),
        description_ar: String::new(),
        duration_en: String::new(),
        duration_ar: String::new(),
        price: fields.price.ok_or_else(|| Refusal::field("price"))?,
        currency: DEFAULT_CURRENCY.to_owned(),
        expected_review_days: fields
            .expected_review_days
            .ok_or_else(|| Refusal::field("expected_review_days"))?,
        icon: String::new(),
        active: true,
        created_at: now,
    };
    fields.apply_to(&mut rt);
    let actor = admin_actor(&user);
    state
        .store
        .save_review_type(&rt, &meta.audit(&actor), now)
        .await?;
    Ok(ok(RtIdReply { rt_id: rt.rt_id }))
}

/// `POST /admin/update-reviewtype`: changes the fields sent (deactivate with `active: false`; a
/// review type in use is never deleted) → `{rt_id}`.
pub async fn update_review_type(
    State(state): State<AppState>,
    AdminAuth(user): AdminAuth,
    meta: RequestMeta,
    Json(req): Json<UpdateReviewTypeRequest>,
) -> Result<Envelope<RtIdReply>, AppError> {
    let Some(mut rt) = state.store.review_type(req.rt_id).await? else {
        return Err(AppError::NotFound("Review type not found".to_owned()));
    };
    req.fields.apply_to(&mut rt);
    let actor = admin_actor(&user);
    state
        .store
        .save_review_type(&rt, &meta.audit(&actor), state.now())
        .await?;
    Ok(ok(RtIdReply { rt_id: rt.rt_id }))
}

/// The body of a paged catalog list: `page`, `size` and an optional search term `q`.
#[derive(Debug, Default, Deserialize)]
pub struct ListRequest {
    #[serde(flatten)]
    pub page: PageQuery,
    pub q: Option<String>,
}

/// `POST /admin/list-reviewtypes`: every review type, active or not, newest first.
pub async fn list_review_types(
    State(state): State<AppState>,
    AdminAuth(_user): AdminAuth,
    JsonOrEmpty(req): JsonOrEmpty<ListRequest>,
) -> Result<Envelope<Vec<ReviewType>>, AppError> {
    let page = state
        .store
        .list_review_types(false, req.page.page())
        .await?;
    Ok(paged(page, |rt| rt))
}

/// The disease category fields of `save-disease-category` and `update-disease-category`.
#[derive(Debug, Default, Deserialize)]
pub struct CategoryFields {
    pub label_en: Option<String>,
    pub label_ar: Option<String>,
    /// The specialists eligible for cases of this category.
    pub doctor_ids: Option<Vec<UserId>>,
    pub active: Option<bool>,
}

impl CategoryFields {
    fn apply_to(self, dc: &mut DiseaseCategory) {
        if let Some(label) = self.label_en {
            dc.label_en = label;
        }
        if let Some(label) = self.label_ar {
            dc.label_ar = label;
        }
        if let Some(doctors) = self.doctor_ids {
            dc.doctor_ids = doctors;
        }
        dc.active = self.active.unwrap_or(dc.active);
    }
}

/// The body of `update-disease-category`.
#[derive(Debug, Deserialize)]
pub struct UpdateCategoryRequest {
    pub dc_id: CategoryId,
    #[serde(flatten)]
    pub fields: CategoryFields,
}

/// The `data` of a disease category save.
#[derive(Debug, Serialize)]
pub struct DcIdReply {
    pub dc_id: CategoryId,
}

/// `POST /admin/save-disease-category`: a new category (`active` true unless given) → `{dc_id}`.
pub async fn save_category(
    State(state): State<AppState>,
    AdminAuth(user): AdminAuth,
    meta: RequestMeta,
    Json(fields): Json<CategoryFields>,
) -> Result<Envelope<DcIdReply>, AppError> {
    let mut dc = DiseaseCategory {
        dc_id: CategoryId::new_v7(),
        label_en: String::new(),
        label_ar: String::new(),
        active: true,
        doctor_ids: Vec::new(),
    };
    fields.apply_to(&mut dc);
    let actor = admin_actor(&user);
    state
        .store
        .save_category(&dc, &meta.audit(&actor), state.now())
        .await?;
    Ok(ok(DcIdReply { dc_id: dc.dc_id }))
}

/// `POST /admin/update-disease-category`: changes the fields sent → `{dc_id}`.
pub async fn update_category(
    State(state): State<AppState>,
    AdminAuth(user): AdminAuth,
    meta: RequestMeta,
    Json(req): Json<UpdateCategoryRequest>,
) -> Result<Envelope<DcIdReply>, AppError> {
    let Some(mut dc) = state.store.category(req.dc_id).await? else {
        return Err(AppError::NotFound("Disease category not found".to_owned()));
    };
    req.fields.apply_to(&mut dc);
    let actor = admin_actor(&user);
    state
        .store
        .save_category(&dc, &meta.audit(&actor), state.now())
        .await?;
    Ok(ok(DcIdReply { dc_id: dc.dc_id }))
}

/// `POST /admin/list-disease-categories`: every category, active or not; `q` searches the labels.
pub async fn list_categories(
    State(state): State<AppState>,
    AdminAuth(_user): AdminAuth,
    JsonOrEmpty(req): JsonOrEmpty<ListRequest>,
) -> Result<Envelope<Vec<DiseaseCategory>>, AppError> {
    let page = state
        .store
        .list_categories(false, req.q.as_deref(), req.page.page())
        .await?;
    Ok(paged(page, |dc| dc))
}

/// The body of `save-case-coordinators`.
#[derive(Debug, Deserialize)]
pub struct SaveMappingRequest {
    /// The disease category the mapping is for.
    pub speciality_id: CategoryId,
    /// The doctors who may coordinate its cases (non-empty).
    pub doctor_ids: Vec<UserId>,
}

/// The body of `edit-case-coordinators`.
#[derive(Debug, Deserialize)]
pub struct EditMappingRequest {
    pub cc_id: MappingId,
    pub doctor_ids: Vec<UserId>,
    /// If sent, must be the mapping's category (a mapping never moves to another category).
    pub speciality_id: Option<CategoryId>,
}

/// The `data` of a mapping save.
#[derive(Debug, Serialize)]
pub struct CcIdReply {
    pub cc_id: MappingId,
}

/// `POST /admin/save-case-coordinators`: a new active mapping → `{cc_id}`. The category must
/// exist and be active and the list be non-empty (400); a second active mapping is a 409.
pub async fn save_mapping(
    State(state): State<AppState>,
    AdminAuth(user): AdminAuth,
    meta: RequestMeta,
    Json(req): Json<SaveMappingRequest>,
) -> Result<Envelope<CcIdReply>, AppError> {
    let mapping = CoordinatorMapping {
        cc_id: MappingId::new_v7(),
        speciality_id: req.speciality_id,
        doctor_ids: req.doctor_ids,
        active: true,
    };
    let actor = admin_actor(&user);
    state
        .store
        .save_mapping(&mapping, &meta.audit(&actor), state.now())
        .await?;
    Ok(ok(CcIdReply {
        cc_id: mapping.cc_id,
    }))
}

/// `POST /admin/edit-case-coordinators`: replaces the mapping's `doctor_ids` (non-empty) → `{cc_id}`.
pub async fn edit_mapping(
    State(state): State<AppState>,
    AdminAuth(user): AdminAuth,
    meta: RequestMeta,
    Json(req): Json<EditMappingRequest>,
) -> Result<Envelope<CcIdReply>, AppError> {
    let Some(mut mapping) = state.store.mapping(req.cc_id).await? else {
        return Err(AppError::NotFound(
            "Coordinator mapping not found".to_owned(),
        ));
    };
    if req
        .speciality_id
        .is_some_and(|id| id != mapping.speciality_id)
    {
        return Err(Refusal::field("speciality_id").into());
    }
    mapping.doctor_ids = req.doctor_ids;
    let actor = admin_actor(&user);
    state
        .store
        .save_mapping(&mapping, &meta.audit(&actor), state.now())
        .await?;
    Ok(ok(CcIdReply {
        cc_id: mapping.cc_id,
    }))
}

/// `POST /admin/list-case-coordinators`: the mappings, newest first; `q` is a category id or part
/// of a doctor id.
pub async fn list_mappings(
    State(state): State<AppState>,
    AdminAuth(_user): AdminAuth,
    JsonOrEmpty(req): JsonOrEmpty<ListRequest>,
) -> Result<Envelope<Vec<CoordinatorMapping>>, AppError> {
    let page = state
        .store
        .list_mappings(req.q.as_deref(), req.page.page())
        .await?;
    Ok(paged(page, |m| m))
}

/// The body of `save-doctor`.
#[derive(Debug, Deserialize)]
pub struct SaveDoctorRequest {
    pub doctor_id: UserId,
    pub name_en: String,
    pub name_ar: String,
    #[serde(default)]
    pub phone: String,
    #[serde(default)]
    pub email: String,
    /// Disease category ids, for display (eligibility comes from categories and mappings).
    #[serde(default)]
    pub specialties: Vec<CategoryId>,
}

/// The `data` of a doctor save.
#[derive(Debug, Serialize)]
pub struct DoctorIdReply {
    pub doctor_id: UserId,
}

/// `POST /admin/save-doctor`: creates or replaces a directory entry → `{doctor_id}`.
pub async fn save_doctor(
    State(state): State<AppState>,
    AdminAuth(user): AdminAuth,
    meta: RequestMeta,
    Json(req): Json<SaveDoctorRequest>,
) -> Result<Envelope<DoctorIdReply>, AppError> {
    let doctor = DoctorProfile {
        doctor_id: req.doctor_id,
        name_en: req.name_en,
        name_ar: req.name_ar,
        phone: req.phone,
        email: req.email,
        specialties: req.specialties,
    };
    let actor = admin_actor(&user);
    state
        .store
        .save_doctor(&doctor, &meta.audit(&actor), state.now())
        .await?;
    Ok(ok(DoctorIdReply {
        doctor_id: doctor.doctor_id,
    }))
}

/// `POST /admin/list-doctors`: the directory by doctor id; `q` searches ids and names.
pub async fn list_doctors(
    State(state): State<AppState>,
    AdminAuth(_user): AdminAuth,
    JsonOrEmpty(req): JsonOrEmpty<ListRequest>,
) -> Result<Envelope<Vec<DoctorProfile>>, AppError> {
    let page = state
        .store
        .list_doctors(req.q.as_deref(), req.page.page())
        .await?;
    Ok(paged(page, |d| d))
}
