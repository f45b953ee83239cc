//! The `/admin` and `/scheduler` endpoints, in process: each endpoint's happy path and its main
//! refusal. The patient's and the payment platform's steps are driven through the store.

use crate::support::in_process;
use axum::body::Body;
use axum::http::Request;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use sop_core::actor::Actor;
use sop_core::case::{Gender, Intake};
use sop_core::command::Command;
use sop_core::ids::{CaseId, CategoryId, PaymentId, ReviewTypeId, UserId};
use sop_server::AppState;
use sop_server::auth::{Audience, LocalKey};
use sop_server::state::Clock;
use sop_server::store::{AuditMeta, Page};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower::ServiceExt;

/// A clock the test moves by hand.
#[derive(Debug)]
struct TestClock(Mutex<DateTime<Utc>>);

impl TestClock {
    fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().expect("clock lock") = at;
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().expect("clock lock")
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 8, 0, 0)
        .single()
        .expect("valid time")
}

/// The application over a fresh SQLite database, a test clock at [`t0`] and an admin token.
struct Dash {
    state: AppState,
    clock: Arc<TestClock>,
    key: LocalKey,
    admin: String,
    _dir: tempfile::TempDir,
}

impl Dash {
    async fn new() -> Self {
        let (state, key, dir) = in_process().await;
        let clock = Arc::new(TestClock(Mutex::new(t0())));
        let state = state.with_clock(clock.clone());
        let admin = key
            .mint("A1", Audience::Admin, Duration::from_secs(3600))
            .expect("token");
        Self {
            state,
            clock,
            key,
            admin,
            _dir: dir,
        }
    }

    fn token(&self, sub: &str, audience: Audience) -> String {
        self.key
            .mint(sub, audience, Duration::from_secs(3600))
            .expect("token")
    }

    /// `POST path` with the admin token.
    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.post_as(&self.admin.clone(), path, body, &[]).await
    }

    async fn post_as(
        &self,
        token: &str,
        path: &str,
        body: Value,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut req = Request::post(path)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json");
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let req = req.body(Body::from(body.to_string())).expect("request");
        let resp = sop_server::app(self.state.clone())
            .oneshot(req)
            .await
            .expect("infallible");
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).expect("JSON envelope"),
        )
    }

    /// `POST path`, expecting success; returns `data`.
    async fn ok(&self, path: &str, body: Value) -> Value {
        let (status, reply) = self.post(path, body).await;
        assert_eq!(
            (status, &reply["status"]),
            (200, &json!(1000)),
            "{path}: {reply}"
        );
        reply["data"].clone()
    }

    /// `POST path`, expecting a refusal with `code`.
    async fn refused(&self, path: &str, body: Value, status: u16, code: &str) {
        let (got, reply) = self.post(path, body).await;
        assert_eq!(got, status, "{path}: {reply}");
        assert_eq!(reply["data"]["code"], code, "{path}: {reply}");
    }

    /// A review type, a category with specialists EMP11/EMP12 and a mapping of EMP10/EMP13.
    async fn catalog(&self) -> (ReviewTypeId, CategoryId) {
        let rt = self
            .ok(
                "/admin/save-reviewtype",
                json!({"title_en": "Standard", "title_ar": "قياسية", "price": 150000,
                       "expected_review_days": 7}),
            )
            .await;
        let dc = self
            .ok(
                "/admin/save-disease-category",
                json!({"label_en": "Oncology", "label_ar": "الأورام",
                       "doctor_ids": ["EMP11", "EMP12"]}),
            )
            .await;
        let dc_id = dc["dc_id"].as_str().expect("dc_id").to_owned();
        self.ok(
            "/admin/save-case-coordinators",
            json!({"speciality_id": dc_id, "doctor_ids": ["EMP10", "EMP13"]}),
        )
        .await;
        (
            ReviewTypeId::from_str(rt["rt_id"].as_str().expect("rt_id")).expect("uuid"),
            CategoryId::from_str(&dc_id).expect("uuid"),
        )
    }

    /// A case of patient P1 created at the clock's time, submitted or left as a draft.
    async fn case(&self, rt: ReviewTypeId, dc: CategoryId, submit: bool) -> CaseId {
        let case_id = CaseId::new_v7();
        let command = Command::CreateCase {
            case_id,
            rt_id: rt,
            dc_id: dc,
            intake: Intake {
                patient_age: Some(44),
                patient_gender: Some(Gender::Female),
                medical_history: "history".to_owned(),
                questions: String::new(),
            },
            submit,
        };
        self.run(case_id, &command, &Actor::Patient(UserId::new("P1")))
            .await;
        case_id
    }

    async fn run(&self, case_id: CaseId, command: &Command, actor: &Actor) {
        self.state
            .store
            .execute(
                case_id,
                command,
                actor,
                &AuditMeta::default(),
                &self.state.settings.limits,
                self.state.now(),
            )
            .await
            .expect("command runs");
    }
}

#[tokio::test]
async fn review_types_save_with_defaults_update_partially_and_list_inactive_ones_too() {
    let dash = Dash::new().await;
    let rt = dash
        .ok(
            "/admin/save-reviewtype",
            json!({"title_en": "Standard", "title_ar": "قياسية", "description_en": "Seven days",
                   "price": 150000, "expected_review_days": 7, "icon": "clock",
                   "unknown_field": "ignored"}),
        )
        .await;
    let rt_id = rt["rt_id"].as_str().expect("rt_id").to_owned();
    let id = uuid::Uuid::parse_str(&rt_id).expect("uuid");
    assert_eq!(id.get_version_num(), 7, "server makes v7 ids");

    dash.ok(
        "/admin/update-reviewtype",
        json!({"rt_id": rt_id, "price": 99000, "active": false}),
    )
    .await;
    let list = dash.ok("/admin/list-reviewtypes", json!({})).await;
    let saved = &list[0];
    assert_eq!(saved["rt_id"], rt_id.as_str());
    assert_eq!(saved["currency"], "SAR");
    assert_eq!(saved["price"], 99000);
    assert_eq!(
        saved["active"], false,
        "inactive ones are listed for admins"
    );
    assert_eq!(saved["title_en"], "Standard", "unsent fields are kept");
    assert_eq!(saved["description_en"], "Seven days");

    // Required fields and the core's rules.
    dash.refused(
        "/admin/save-reviewtype",
        json!({"title_en": "X", "title_ar": "س", "expected_review_days": 7}),
        400,
        "field_invalid",
    )
    .await;
    dash.refused(
        "/admin/save-reviewtype",
        json!({"title_en": "", "title_ar": "س", "price": 1, "expected_review_days": 7}),
        400,
        "field_invalid",
    )
    .await;
    dash.refused(
        "/admin/update-reviewtype",
        json!({"rt_id": rt_id, "expected_review_days": 0}),
        400,
        "field_invalid",
    )
    .await;
    let (status, reply) = dash
        .post(
            "/admin/update-reviewtype",
            json!({"rt_id": uuid::Uuid::new_v4(), "price": 1}),
        )
        .await;
    assert_eq!((status, &reply["status"]), (404, &json!(1002)), "{reply}");
}

#[tokio::test]
async fn disease_categories_save_update_and_search() {
    let dash = Dash::new().await;
    let dc = dash
        .ok(
            "/admin/save-disease-category",
            json!({"label_en": "Cardiology", "label_ar": "أمراض القلب", "doctor_ids": ["EMP13"]}),
        )
        .await;
    let dc_id = dc["dc_id"].as_str().expect("dc_id").to_owned();
    dash.ok(
        "/admin/save-disease-category",
        json!({"label_en": "Oncology", "label_ar": "الأورام"}),
    )
    .await;
    dash.ok(
        "/admin/update-disease-category",
        json!({"dc_id": dc_id, "doctor_ids": ["EMP13", "EMP14"], "active": false}),
    )
    .await;

    let (status, reply) = dash
        .post("/admin/list-disease-categories", json!({"q": "cardio"}))
        .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["pagination"]["total"], 1, "{reply}");
    let found = &reply["data"][0];
    assert_eq!(found["dc_id"], dc_id.as_str());
    assert_eq!(found["doctor_ids"], json!(["EMP13", "EMP14"]));
    assert_eq!(found["active"], false);
    assert_eq!(found["label_ar"], "أمراض القلب");

    let (_, all) = dash
        .post("/admin/list-disease-categories", json!({"size": 1}))
        .await;
    assert_eq!(
        all["pagination"],
        json!({"total": 2, "page": 1, "page_size": 1})
    );

    dash.refused(
        "/admin/save-disease-category",
        json!({"label_en": "No Arabic label"}),
        400,
        "field_invalid",
    )
    .await;
}

#[tokio::test]
async fn coordinator_mappings_follow_the_catalog_rules() {
    let dash = Dash::new().await;
    let active = dash
        .ok(
            "/admin/save-disease-category",
            json!({"label_en": "Oncology", "label_ar": "الأورام"}),
        )
        .await["dc_id"]
        .clone();
    let inactive = dash
        .ok(
            "/admin/save-disease-category",
            json!({"label_en": "Old", "label_ar": "قديم", "active": false}),
        )
        .await["dc_id"]
        .clone();

    dash.refused(
        "/admin/save-case-coordinators",
        json!({"speciality_id": inactive, "doctor_ids": ["EMP10"]}),
        400,
        "mapping_category_invalid",
    )
    .await;
    dash.refused(
        "/admin/save-case-coordinators",
        json!({"speciality_id": uuid::Uuid::new_v4(), "doctor_ids": ["EMP10"]}),
        400,
        "mapping_category_invalid",
    )
    .await;
    dash.refused(
        "/admin/save-case-coordinators",
        json!({"speciality_id": active, "doctor_ids": []}),
        400,
        "mapping_doctors_required",
    )
    .await;

    let cc = dash
        .ok(
            "/admin/save-case-coordinators",
            json!({"speciality_id": active, "doctor_ids": ["EMP10"]}),
        )
        .await;
    let cc_id = cc["cc_id"].clone();
    dash.refused(
        "/admin/save-case-coordinators",
        json!({"speciality_id": active, "doctor_ids": ["EMP11"]}),
        409,
        "mapping_exists",
    )
    .await;

    // Editing changes the doctors only; the category, if sent, must be the mapping's.
    dash.refused(
        "/admin/edit-case-coordinators",
        json!({"cc_id": cc_id, "doctor_ids": ["EMP11"], "speciality_id": inactive}),
        400,
        "field_invalid",
    )
    .await;
    dash.refused(
        "/admin/edit-case-coordinators",
        json!({"cc_id": cc_id, "doctor_ids": []}),
        400,
        "mapping_doctors_required",
    )
    .await;
    let edited = dash
        .ok(
            "/admin/edit-case-coordinators",
            json!({"cc_id": cc_id, "doctor_ids": ["EMP10", "EMP11"], "speciality_id": active}),
        )
        .await;
    assert_eq!(edited["cc_id"], cc_id);
    let (status, reply) = dash
        .post(
            "/admin/edit-case-coordinators",
            json!({"cc_id": uuid::Uuid::new_v4(), "doctor_ids": ["EMP10"]}),
        )
        .await;
    assert_eq!((status, &reply["status"]), (404, &json!(1002)), "{reply}");

    // Search by doctor id and by category id.
    for q in [json!("emp11"), active.clone()] {
        let (_, list) = dash
            .post("/admin/list-case-coordinators", json!({"q": q}))
            .await;
        assert_eq!(list["pagination"]["total"], 1, "{q}: {list}");
        assert_eq!(list["data"][0]["cc_id"], cc_id);
        assert_eq!(list["data"][0]["doctor_ids"], json!(["EMP10", "EMP11"]));
        assert_eq!(list["data"][0]["speciality_id"], active);
    }
    let (_, none) = dash
        .post("/admin/list-case-coordinators", json!({"q": "EMP99"}))
        .await;
    assert_eq!(none["pagination"]["total"], 0);
}

#[tokio::test]
async fn doctors_are_saved_replaced_and_searched() {
    let dash = Dash::new().await;
    let dc = dash
        .ok(
            "/admin/save-disease-category",
            json!({"label_en": "Oncology", "label_ar": "الأورام"}),
        )
        .await["dc_id"]
        .clone();
    let saved = dash
        .ok(
            "/admin/save-doctor",
            json!({"doctor_id": "EMP12", "name_en": "Dr. Lina Qasem", "name_ar": "د. لينا قاسم",
                   "phone": "+966500000012", "email": "emp12@example.org", "specialties": [dc]}),
        )
        .await;
    assert_eq!(saved, json!({"doctor_id": "EMP12"}));
    dash.ok(
        "/admin/save-doctor",
        json!({"doctor_id": "EMP12", "name_en": "Dr. Lina Qasem-Odeh", "name_ar": "د. لينا قاسم"}),
    )
    .await;
    dash.ok(
        "/admin/save-doctor",
        json!({"doctor_id": "EMP13", "name_en": "Dr. Khalid", "name_ar": "د. خالد"}),
    )
    .await;

    let (_, list) = dash.post("/admin/list-doctors", json!({"q": "odeh"})).await;
    assert_eq!(list["pagination"]["total"], 1, "{list}");
    assert_eq!(list["data"][0]["doctor_id"], "EMP12");
    assert_eq!(list["data"][0]["name_en"], "Dr. Lina Qasem-Odeh");
    let (_, all) = dash.post("/admin/list-doctors", json!({})).await;
    assert_eq!(all["pagination"]["total"], 2);

    dash.refused(
        "/admin/save-doctor",
        json!({"doctor_id": " ", "name_en": "x", "name_ar": "x"}),
        400,
        "field_invalid",
    )
    .await;
}

#[tokio::test]
async fn admin_assigns_reassigns_and_rejects_with_progress_and_audit() {
    let dash = Dash::new().await;
    let (rt, dc) = dash.catalog().await;
    let case_id = dash.case(rt, dc, true).await;
    let id = case_id.to_string();

    let (_, list) = dash
        .post("/admin/list-cases", json!({"status": "submitted"}))
        .await;
    assert_eq!(list["pagination"]["total"], 1, "{list}");
    assert_eq!(list["data"][0]["case_id"], id.as_str());
    let (_, none) = dash
        .post("/admin/list-cases", json!({"status": "draft"}))
        .await;
    assert_eq!(none["pagination"]["total"], 0);
    let (status, bad) = dash
        .post("/admin/list-cases", json!({"status": "nonsense"}))
        .await;
    assert_eq!((status, &bad["status"]), (400, &json!(1002)), "{bad}");
    let (_, by_q) = dash
        .post(
            "/admin/list-cases",
            json!({"q": id, "rt_id": rt.0, "dc_id": dc.0,
                   "from": "2026-03-01T00:00:00Z", "to": "2026-03-03T00:00:00Z"}),
        )
        .await;
    assert_eq!(by_q["pagination"]["total"], 1, "{by_q}");

    // T4: only a doctor of the mapping coordinates.
    dash.refused(
        "/admin/assign-coordinator",
        json!({"case_id": id, "doctor_id": "EMP11"}),
        400,
        "coordinator_not_eligible",
    )
    .await;
    let assigned = dash
        .ok(
            "/admin/assign-coordinator",
            json!({"case_id": id, "doctor_id": "EMP10",
                   "requested_documents": ["Latest CT scan"]}),
        )
        .await;
    assert_eq!(assigned["status"], "awaiting_payment");
    assert_eq!(assigned["coordinator_id"], "EMP10");
    assert!(assigned["payment_id"].is_string(), "{assigned}");
    assert!(assigned["request_id"].is_string(), "{assigned}");

    // T5: another eligible doctor, not the same one.
    dash.refused(
        "/admin/edit-coordinator",
        json!({"case_id": id, "doctor_id": "EMP10"}),
        409,
        "same_coordinator",
    )
    .await;
    let edited = dash
        .ok(
            "/admin/edit-coordinator",
            json!({"case_id": id, "doctor_id": "EMP13"}),
        )
        .await;
    assert_eq!(edited["coordinator_id"], "EMP13");

    // T17 needs a reason.
    dash.refused(
        "/admin/reject-case",
        json!({"case_id": id}),
        400,
        "reason_required",
    )
    .await;
    dash.refused(
        "/admin/reject-case",
        json!({"case_id": id, "reason": "  "}),
        400,
        "reason_required",
    )
    .await;
    let rejected = dash
        .ok(
            "/admin/reject-case",
            json!({"case_id": id, "reason": "Outside the service's scope"}),
        )
        .await;
    assert_eq!(rejected["status"], "rejected");

    let details = dash.ok("/admin/case-details", json!({"case_id": id})).await;
    assert_eq!(details["status"], "rejected");
    assert_eq!(details["closed_reason"], "Outside the service's scope");
    assert_eq!(details["medical_history"], "history");
    assert_eq!(
        details["document_requests"][0]["items"],
        json!(["Latest CT scan"])
    );
    let steps: Vec<(String, bool)> = details["progress"]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            (
                s["step"].as_str().expect("step").to_owned(),
                s["done"] == true,
            )
        })
        .collect();
    let expected = [
        ("created", true),
        ("coordinator_assigned", true),
        ("awaiting_payment", true),
        ("payment_received", false),
        ("doctors_assigned", false),
        ("under_specialist_review", false),
        ("completed", false),
    ];
    assert_eq!(
        steps,
        expected
            .iter()
            .map(|(s, d)| ((*s).to_owned(), *d))
            .collect::<Vec<_>>()
    );
    assert_eq!(details["progress"]["outcome"], "rejected");
    assert!(details["progress"]["outcome_at"].is_string());
    assert!(
        details["timeline"]
            .as_array()
            .expect("timeline")
            .iter()
            .any(|e| e["kind"] == "coordinator_changed")
    );

    // The audit log has the writes, the refusals and the read.
    let (_, audit) = dash
        .post("/admin/audit-log", json!({"case_id": id, "size": 100}))
        .await;
    let actions: Vec<(String, String)> = audit["data"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r["action"].as_str().expect("action").to_owned(),
                r["outcome"].as_str().expect("outcome").to_owned(),
            )
        })
        .collect();
    for expected in [
        ("view_case_details", "ok"),
        ("reject", "ok"),
        ("reject", "refused:reason_required"),
        ("reassign_coordinator", "ok"),
        ("assign_coordinator", "ok"),
        ("assign_coordinator", "refused:coordinator_not_eligible"),
    ] {
        let expected = (expected.0.to_owned(), expected.1.to_owned());
        assert!(actions.contains(&expected), "{expected:?} in {actions:?}");
    }
    let (_, by_user) = dash
        .post(
            "/admin/audit-log",
            json!({"user_id": "A1", "to": "2026-03-02T09:00:00Z"}),
        )
        .await;
    assert!(
        by_user["data"]
            .as_array()
            .expect("rows")
            .iter()
            .all(|r| r["user_id"] == "A1"),
        "{by_user}"
    );
    assert!(by_user["pagination"]["total"].as_u64().expect("total") > 0);
}

#[tokio::test]
async fn cancel_and_case_details_answer_404_for_unknown_cases() {
    let dash = Dash::new().await;
    let (rt, dc) = dash.catalog().await;
    let case_id = dash.case(rt, dc, false).await;

    let unknown = json!({"case_id": uuid::Uuid::new_v4()});
    dash.refused(
        "/admin/case-details",
        unknown.clone(),
        404,
        "case_not_found",
    )
    .await;
    dash.refused(
        "/admin/cancel-case",
        json!({"case_id": unknown["case_id"], "reason": "x"}),
        404,
        "case_not_found",
    )
    .await;

    let cancelled = dash
        .ok(
            "/admin/cancel-case",
            json!({"case_id": case_id, "reason": "Duplicate request"}),
        )
        .await;
    assert_eq!(cancelled["status"], "cancelled");
    let details = dash
        .ok("/admin/case-details", json!({"case_id": case_id}))
        .await;
    assert_eq!(details["progress"]["outcome"], "cancelled");
    assert_eq!(details["progress"]["steps"][0]["done"], true);
    assert_eq!(details["progress"]["steps"][1]["done"], false);
}

#[tokio::test]
async fn outbox_shows_kinds_and_ids_only_and_the_inbox_is_the_admins() {
    let dash = Dash::new().await;
    let (rt, dc) = dash.catalog().await;
    let case_id = dash.case(rt, dc, true).await;
    let assigned = dash
        .ok(
            "/admin/assign-coordinator",
            json!({"case_id": case_id, "doctor_id": "EMP10"}),
        )
        .await;

    let (_, outbox) = dash.post("/admin/outbox", json!({})).await;
    // Besides the payment creation, each notification queued its push delivery.
    let calls: Vec<&Value> = outbox["data"]
        .as_array()
        .expect("rows")
        .iter()
        .filter(|row| row["kind"] != "push")
        .collect();
    assert_eq!(calls.len(), 1, "{outbox}");
    let row = calls[0];
    assert_eq!(row["kind"], "create_payment");
    assert_eq!(row["status"], "pending");
    assert_eq!(row["attempts"], 0);
    assert_eq!(row["case_id"], case_id.to_string().as_str());
    assert!(
        row["reference"]
            .as_str()
            .expect("reference")
            .starts_with("SOP-")
    );
    assert_eq!(row["ids"], json!({"payment_id": assigned["payment_id"]}));
    assert!(row.get("payload").is_none(), "no payload: {row}");
    assert!(!row.to_string().contains("150000"), "no amount: {row}");

    // "Case submitted" went to every admin; the inbox answers in the request's language.
    let token = dash.admin.clone();
    let (status, inbox) = dash
        .post_as(
            &token,
            "/admin/list-notifications",
            json!({}),
            &[("lang", "ar")],
        )
        .await;
    assert_eq!(status, 200, "{inbox}");
    assert_eq!(inbox["pagination"]["total"], 1, "{inbox}");
    let n = &inbox["data"][0];
    assert_eq!(n["kind"], "case_submitted");
    assert_eq!(n["case_id"], case_id.to_string().as_str());
    assert!(
        n["title"]
            .as_str()
            .expect("title")
            .chars()
            .any(|c| ('\u{0600}'..='\u{06FF}').contains(&c)),
        "Arabic title: {n}"
    );
}

#[tokio::test]
async fn admin_endpoints_need_an_admin_token() {
    let dash = Dash::new().await;
    let patient = dash.token("P1", Audience::Patient);
    for path in [
        "/admin/list-cases",
        "/admin/save-reviewtype",
        "/admin/audit-log",
        "/scheduler/run-draft-reminders",
        "/scheduler/run-overdue-alerts",
    ] {
        let (status, reply) = dash.post_as(&patient, path, json!({}), &[]).await;
        assert_eq!(
            (status, &reply["status"]),
            (403, &json!(2000)),
            "{path}: {reply}"
        );
        let (status, reply) = dash.post_as("not-a-token", path, json!({}), &[]).await;
        assert_eq!(
            (status, &reply["status"]),
            (401, &json!(2000)),
            "{path}: {reply}"
        );
    }
}

#[tokio::test]
async fn draft_reminder_is_sent_once_for_drafts_left_a_day() {
    let dash = Dash::new().await;
    let (rt, dc) = dash.catalog().await;
    let stale = dash.case(rt, dc, false).await;
    dash.clock.set(t0() + TimeDelta::hours(20));
    let fresh = dash.case(rt, dc, false).await;
    dash.case(rt, dc, true).await; // submitted: not a candidate

    dash.clock.set(t0() + TimeDelta::hours(25));
    let first = dash.ok("/scheduler/run-draft-reminders", json!({})).await;
    assert_eq!(first, json!({"sent": 1, "skipped": 1}));
    let second = dash.ok("/scheduler/run-draft-reminders", json!({})).await;
    assert_eq!(second, json!({"sent": 0, "skipped": 2}));

    let inbox = dash
        .state
        .store
        .list_notifications(&["P1".to_owned()], Page::new(None, None))
        .await
        .expect("inbox");
    let reminders: Vec<_> = inbox
        .items
        .iter()
        .filter(|n| n.kind == "draft_reminder")
        .collect();
    assert_eq!(reminders.len(), 1);
    assert_eq!(reminders[0].case_id, stale.0);

    // Nothing due is skipped without a refused audit row; the fresh draft's turn comes later.
    let (_, audit) = dash
        .post("/admin/audit-log", json!({"case_id": fresh, "size": 100}))
        .await;
    assert!(
        audit["data"]
            .as_array()
            .expect("rows")
            .iter()
            .all(|r| r["action"] != "send_draft_reminder"),
        "{audit}"
    );
    dash.clock.set(t0() + TimeDelta::hours(45));
    let later = dash.ok("/scheduler/run-draft-reminders", json!({})).await;
    assert_eq!(later, json!({"sent": 1, "skipped": 1}));
}

#[tokio::test]
async fn overdue_alert_is_sent_once_after_the_due_date() {
    let dash = Dash::new().await;
    let (rt, dc) = dash.catalog().await;
    let case_id = dash.case(rt, dc, true).await;
    let assigned = dash
        .ok(
            "/admin/assign-coordinator",
            json!({"case_id": case_id, "doctor_id": "EMP10"}),
        )
        .await;
    let payment_id =
        PaymentId::from_str(assigned["payment_id"].as_str().expect("payment_id")).expect("uuid");
    dash.run(
        case_id,
        &Command::PaymentSucceeded {
            payment_id,
            amount: 150_000,
            currency: "SAR".to_owned(),
        },
        &Actor::PaymentPlatform,
    )
    .await;

    let early = dash.ok("/scheduler/run-overdue-alerts", json!({})).await;
    assert_eq!(early, json!({"sent": 0, "skipped": 1}));
    dash.clock.set(t0() + TimeDelta::days(8));
    let due = dash.ok("/scheduler/run-overdue-alerts", json!({})).await;
    assert_eq!(due, json!({"sent": 1, "skipped": 0}));
    let again = dash.ok("/scheduler/run-overdue-alerts", json!({})).await;
    assert_eq!(again, json!({"sent": 0, "skipped": 1}));

    let inbox = dash
        .state
        .store
        .list_notifications(&["EMP10".to_owned()], Page::new(None, None))
        .await
        .expect("inbox");
    assert_eq!(
        inbox
            .items
            .iter()
            .filter(|n| n.kind == "overdue_report")
            .count(),
        1
    );
}

#[tokio::test]
async fn openapi_json_is_served_and_lists_the_admin_surface() {
    let dash = Dash::new().await;
    let resp = sop_server::app(dash.state.clone())
        .oneshot(
            Request::get("/openapi.json")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("infallible");
    assert_eq!(resp.status().as_u16(), 200);
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let doc: Value = serde_json::from_slice(&bytes).expect("JSON");
    assert_eq!(doc, sop_server::openapi::document());
    for path in [
        "/admin/assign-coordinator",
        "/admin/outbox",
        "/scheduler/run-draft-reminders",
        "/sync/v1/live",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path}");
    }
}

#[tokio::test]
async fn a_second_active_mapping_racing_the_check_is_mapping_exists_on_postgres() {
    use sop_core::catalog::{CoordinatorMapping, DiseaseCategory};
    use sop_core::ids::MappingId;
    use sop_core::refusal::{RefusalClass, RefusalCode};
    use sop_server::config::{DatabaseConfig, SecretUrl};
    use sop_server::db::Db;
    use sop_server::store::{Store, StoreError};
    use sqlx::Connection;

    let pg = crate::support::TestPg::create().await;
    let db = Db::connect(&DatabaseConfig::Postgres(SecretUrl::new(pg.url.clone())))
        .await
        .expect("connect");
    db.migrate().await.expect("migrate");
    let store = Store::new(db.clone());
    let meta = AuditMeta::default();
    let dc = DiseaseCategory {
        dc_id: CategoryId::new_v7(),
        label_en: "Oncology".to_owned(),
        label_ar: "الأورام".to_owned(),
        active: true,
        doctor_ids: Vec::new(),
    };
    store
        .save_category(&dc, &meta, t0())
        .await
        .expect("category");

    // Another writer has inserted an active mapping for the category but not committed yet: the
    // store's check cannot see it, and its insert waits on the unique index.
    let mut other = pg.connect().await;
    let mut tx = other.begin().await.expect("begin");
    sqlx::query(
        "INSERT INTO coordinator_mappings (cc_id, speciality_id, doctor_ids, active, created_at) \
         VALUES ($1, $2, '[\"EMP10\"]', true, $3)",
    )
    .bind(uuid::Uuid::new_v4())
    .bind(dc.dc_id.0)
    .bind(t0())
    .execute(&mut *tx)
    .await
    .expect("insert");
    let mapping = CoordinatorMapping {
        cc_id: MappingId::new_v7(),
        speciality_id: dc.dc_id,
        doctor_ids: vec![UserId::new("EMP11")],
        active: true,
    };
    let racing = {
        let store = store.clone();
        tokio::spawn(async move { store.save_mapping(&mapping, &meta, t0()).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    tx.commit().await.expect("commit");

    match racing.await.expect("join") {
        Err(StoreError::Refused(r)) => {
            assert_eq!(r.code, RefusalCode::MappingExists);
            assert_eq!(r.class(), RefusalClass::Conflict, "answered 409");
        }
        other => panic!("expected mapping_exists, got {other:?}"),
    }
    db.close().await;
}
