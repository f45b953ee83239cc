//! `/admin/*`: the dashboard endpoints (audience `snr_dash`, SPEC §10).
//!
//! - [`catalog`]: review types, disease categories, coordinator mappings and the doctor directory
//!   (SPEC §2); the catalog rules are `sop_core::catalog::check_*`, applied by the store.
//! - [`cases`]: the case list, the case details with the seven-step progress (SPEC §3.4), and the
//!   admin's commands (T4, T5, T16, T17), all decided by the core rules.
//! - [`records`]: the audit log, the outbox, the admins' inbox and the report download.
//!
//! Adding an endpoint: write the handler in the module it belongs to, add its route here, and its
//! row in [`crate::openapi`] (a test fails when a route is missing from the document).

mod cases;
mod catalog;
mod records;

use crate::auth::AuthUser;
use crate::state::AppState;
use axum::Router;
use axum::routing::post;
use sop_core::actor::Actor;
use sop_core::ids::UserId;

/// The routes of `/admin`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/save-reviewtype", post(catalog::save_review_type))
        .route("/update-reviewtype", post(catalog::update_review_type))
        .route("/list-reviewtypes", post(catalog::list_review_types))
        .route("/save-disease-category", post(catalog::save_category))
        .route("/update-disease-category", post(catalog::update_category))
        .route("/list-disease-categories", post(catalog::list_categories))
        .route("/save-case-coordinators", post(catalog::save_mapping))
        .route("/edit-case-coordinators", post(catalog::edit_mapping))
        .route("/list-case-coordinators", post(catalog::list_mappings))
        .route("/save-doctor", post(catalog::save_doctor))
        .route("/list-doctors", post(catalog::list_doctors))
        .route("/list-cases", post(cases::list_cases))
        .route("/case-details", post(cases::case_details))
        .route("/assign-coordinator", post(cases::assign_coordinator))
        .route("/edit-coordinator", post(cases::edit_coordinator))
        .route("/cancel-case", post(cases::cancel_case))
        .route("/reject-case", post(cases::reject_case))
        .route("/audit-log", post(records::audit_log))
        .route("/outbox", post(records::outbox))
        .route("/retry-outbox", post(records::retry_outbox))
        .route("/list-notifications", post(records::list_notifications))
        .route("/get-report", post(records::get_report))
}

/// The core's actor for an authenticated dashboard user.
fn admin_actor(user: &AuthUser) -> Actor {
    Actor::Admin(UserId::new(user.sub.clone()))
}
