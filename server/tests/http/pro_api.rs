//! The doctor endpoints (`/pro/*`) in process: each endpoint's happy path and main refusal, the
//! blinded review and private notes (SPEC §4, §8), downloads, and "Case not found" for a doctor
//! who is not on the case.

use crate::case_flow::{Flow, JPEG, PDF};
use serde_json::{Value, json};
use sop_core::ids::CaseId;
use uuid::Uuid;

#[tokio::test]
async fn sops_lists_the_doctors_cases_with_their_role() {
    let flow = Flow::new().await;
    let case_id = flow.assigned_case("P1").await;
    let paid = flow.paid_case("P2").await;
    let c1 = flow.doctor("C1");
    let all = flow.post("/pro/sops", &c1, json!({})).await;
    let items = all.data().as_array().unwrap();
    let ids: Vec<&Value> = items.iter().map(|i| &i["case_id"]).collect();
    assert_eq!(ids, [&json!(paid), &json!(case_id)]);
    assert!(items.iter().all(|i| i["role"] == "coordinator"));
    assert_eq!(all.body["pagination"]["total"], 2);

    let s1 = flow.doctor("S1");
    let reviews = flow
        .post("/pro/sops", &s1, json!({"coordinator": false}))
        .await;
    assert_eq!(reviews.data()[0]["role"], "specialist");
    assert_eq!(reviews.data()[0]["case_id"], json!(case_id));
    let coordinated = flow
        .post("/pro/sops", &s1, json!({"coordinator": true}))
        .await;
    assert_eq!(coordinated.data(), &json!([]));
    let none = flow.post("/pro/sops", &flow.doctor("S3"), json!({})).await;
    assert_eq!(none.data(), &json!([]));
}

#[tokio::test]
async fn a_cancelled_case_leaves_the_doctors_lists() {
    let flow = Flow::new().await;
    let case_id = flow.assigned_case("P1").await;
    flow.post(
        "/app/cancel-case",
        &flow.patient("P1"),
        json!({"case_id": case_id, "reason": "Changed my mind"}),
    )
    .await
    .data();
    let s1 = flow.doctor("S1");
    assert_eq!(
        flow.post("/pro/sops", &s1, json!({})).await.data(),
        &json!([])
    );
    flow.post("/pro/review-case-details", &s1, json!({"case_id": case_id}))
        .await
        .refused(404, "case_not_found");
}

#[tokio::test]
async fn a_doctor_not_on_the_case_gets_case_not_found_everywhere() {
    let flow = Flow::new().await;
    let case_id = flow.assigned_case("P1").await;
    let s3 = flow.doctor("S3");
    let id = Uuid::now_v7();
    for (path, body) in [
        ("/pro/review-case-details", json!({"case_id": case_id})),
        (
            "/pro/assign-doctor",
            json!({"case_id": case_id, "doctor_id": "S3"}),
        ),
        (
            "/pro/unassign-doctor",
            json!({"case_id": case_id, "doctor_id": "S1"}),
        ),
        (
            "/pro/request-documents",
            json!({"case_id": case_id, "items": ["CT"]}),
        ),
        ("/pro/save-notes", json!({"case_id": case_id, "notes": "x"})),
        (
            "/pro/save-opinion",
            json!({"case_id": case_id, "summary": "x"}),
        ),
        ("/pro/submit-opinion", json!({"case_id": case_id})),
        (
            "/pro/submit-opinion",
            json!({"case_id": case_id, "summary": "x"}),
        ),
        (
            "/pro/save-summary",
            json!({"case_id": case_id, "summary": "x"}),
        ),
        ("/pro/submit-summary", json!({"case_id": case_id})),
        ("/pro/send-overdue-reminder", json!({"case_id": case_id})),
        (
            "/pro/get-document",
            json!({"case_id": case_id, "document_id": id}),
        ),
        ("/pro/get-report", json!({"case_id": case_id})),
    ] {
        let reply = flow.post(path, &s3, body).await;
        assert_eq!(reply.status, 404, "{path}: {reply:?}");
        assert_eq!(reply.body["message"], "Case not found", "{path}");
        assert_eq!(reply.body["data"]["code"], "case_not_found", "{path}");
    }
    // The same answer as for a case that does not exist.
    let missing = flow
        .post(
            "/pro/review-case-details",
            &s3,
            json!({"case_id": CaseId::new_v7()}),
        )
        .await;
    assert_eq!(missing.status, 404);
}

#[tokio::test]
async fn assign_doctor_by_the_coordinator_with_requested_documents() {
    let flow = Flow::new().await;
    let case_id = flow.paid_case("P1").await;
    let c1 = flow.doctor("C1");
    flow.post(
        "/pro/assign-doctor",
        &c1,
        json!({"case_id": case_id, "doctor_id": "C2"}),
    )
    .await
    .refused(400, "doctor_not_eligible");
    let reply = flow
        .post(
            "/pro/assign-doctor",
            &c1,
            json!({"case_id": case_id, "doctor_id": "S1", "doctor_ids": ["S1", "S2"],
                   "requested_documents": ["Echocardiogram"]}),
        )
        .await;
    let d = reply.data();
    assert_eq!(d["status"], "doctors_assigned");
    let requests = d["requests"].as_array().unwrap();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0]["doctor_id"], "S1");
    // A specialist may not assign (the coordinator only): 403.
    flow.post(
        "/pro/assign-doctor",
        &flow.doctor("S1"),
        json!({"case_id": case_id, "doctor_id": "S3"}),
    )
    .await
    .refused(403, "forbidden");
    flow.post("/pro/assign-doctor", &c1, json!({"case_id": case_id}))
        .await
        .refused(400, "no_doctors");

    let details = flow
        .post(
            "/app/review-case-details",
            &flow.patient("P1"),
            json!({"case_id": case_id}),
        )
        .await;
    let open: Vec<&Value> = details.data()["document_requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["open"] == true)
        .collect();
    assert_eq!(open.len(), 2);
    assert_eq!(open[0]["items"], json!(["Echocardiogram"]));
}

#[tokio::test]
async fn unassign_keeps_at_least_one_specialist() {
    let flow = Flow::new().await;
    let case_id = flow.assigned_case("P1").await;
    let c1 = flow.doctor("C1");
    let done = flow
        .post(
            "/pro/unassign-doctor",
            &c1,
            json!({"case_id": case_id, "doctor_id": "S2"}),
        )
        .await;
    assert_eq!(done.data()["status"], "doctors_assigned");
    flow.post(
        "/pro/unassign-doctor",
        &c1,
        json!({"case_id": case_id, "doctor_id": "S1"}),
    )
    .await
    .refused(409, "last_doctor");
    // S2 lost access at once.
    flow.post(
        "/pro/review-case-details",
        &flow.doctor("S2"),
        json!({"case_id": case_id}),
    )
    .await
    .refused(404, "case_not_found");
}

#[tokio::test]
async fn request_documents_answers_the_request_id() {
    let flow = Flow::new().await;
    let case_id = flow.assigned_case("P1").await;
    let s1 = flow.doctor("S1");
    let reply = flow
        .post(
            "/pro/request-documents",
            &s1,
            json!({"case_id": case_id, "items": ["Blood test"]}),
        )
        .await;
    let request_id = reply.data()["request_id"].clone();
    assert!(request_id.is_string());
    flow.post("/pro/request-documents", &s1, json!({"case_id": case_id}))
        .await
        .refused(400, "items_required");
    let details = flow
        .post("/pro/review-case-details", &s1, json!({"case_id": case_id}))
        .await;
    let d = details.data();
    assert_eq!(d["document_requests"][0]["request_id"], request_id);
    assert_eq!(d["sub_state"], "awaiting_documents");
}

#[tokio::test]
async fn notes_are_private_to_their_doctor() {
    let flow = Flow::new().await;
    let case_id = flow.assigned_case("P1").await;
    let s1 = flow.doctor("S1");
    let saved = flow
        .post(
            "/pro/save-notes",
            &s1,
            json!({"case_id": case_id, "notes": "Check the ECG lead II"}),
        )
        .await;
    assert_eq!(saved.data()["notes"], "Check the ECG lead II");
    let mine = flow
        .post("/pro/review-case-details", &s1, json!({"case_id": case_id}))
        .await;
    assert_eq!(mine.data()["notes"]["notes"], "Check the ECG lead II");
    for viewer in ["C1", "S2"] {
        let other = flow
            .post(
                "/pro/review-case-details",
                &flow.doctor(viewer),
                json!({"case_id": case_id}),
            )
            .await;
        assert_eq!(other.data()["notes"], Value::Null, "{viewer}");
        assert!(!other.body.to_string().contains("lead II"), "{viewer}");
    }
    let patient = flow
        .post(
            "/app/review-case-details",
            &flow.patient("P1"),
            json!({"case_id": case_id}),
        )
        .await;
    assert!(!patient.body.to_string().contains("lead II"));
}

#[tokio::test]
async fn opinions_merge_on_save_freeze_on_submit_and_stay_blinded() {
    let flow = Flow::new().await;
    let case_id = flow.assigned_case("P1").await;
    let (s1, s2, c1) = (flow.doctor("S1"), flow.doctor("S2"), flow.doctor("C1"));
    flow.post(
        "/pro/save-opinion",
        &s1,
        json!({"case_id": case_id, "summary": "Stable angina", "diagnosis": "CAD"}),
    )
    .await
    .data();
    let merged = flow
        .post(
            "/pro/save-opinion",
            &s1,
            json!({"case_id": case_id, "recommendations": "Stress test", "concordance": "minor_difference"}),
        )
        .await;
    let m = merged.data();
    assert_eq!(
        (
            &m["summary"],
            &m["diagnosis"],
            &m["recommendations"],
            &m["concordance"]
        ),
        (
            &json!("Stable angina"),
            &json!("CAD"),
            &json!("Stress test"),
            &json!("minor_difference")
        )
    );
    let bad = flow
        .post(
            "/pro/save-opinion",
            &s1,
            json!({"case_id": case_id, "concordance": "maybe"}),
        )
        .await;
    assert_eq!(bad.status, 400);
    // The coordinator does not write opinions.
    flow.post(
        "/pro/save-opinion",
        &c1,
        json!({"case_id": case_id, "summary": "x"}),
    )
    .await
    .refused(403, "forbidden");
    // S2 cannot submit an empty opinion.
    flow.post("/pro/submit-opinion", &s2, json!({"case_id": case_id}))
        .await
        .refused(400, "opinion_empty");

    flow.post(
        "/pro/submit-opinion",
        &s1,
        json!({"case_id": case_id, "free_text": "Seen"}),
    )
    .await
    .data();
    flow.post(
        "/pro/save-opinion",
        &s1,
        json!({"case_id": case_id, "summary": "changed"}),
    )
    .await
    .refused(409, "opinion_already_submitted");
    let mine = flow
        .post("/pro/review-case-details", &s1, json!({"case_id": case_id}))
        .await;
    let my = &mine.data()["my_opinion"];
    assert_eq!(
        (&my["summary"], &my["free_text"], &my["submitted"]),
        (&json!("Stable angina"), &json!("Seen"), &json!(true))
    );
    assert!(my["submitted_at"].is_string());

    // Blinded: S2 does not see S1's opinion before submitting their own.
    let before = flow
        .post("/pro/review-case-details", &s2, json!({"case_id": case_id}))
        .await;
    assert_eq!(before.data()["opinions"], json!([]));
    assert!(!before.body.to_string().contains("Stable angina"));
    // The coordinator sees every submitted opinion.
    let coordinator = flow
        .post("/pro/review-case-details", &c1, json!({"case_id": case_id}))
        .await;
    assert_eq!(coordinator.data()["opinions"][0]["doctor_id"], "S1");
    assert_eq!(
        coordinator.data()["opinions"][0]["summary"],
        "Stable angina"
    );
    assert_eq!(coordinator.data()["role"], "coordinator");

    flow.submit_opinion(case_id, "S2").await;
    let after = flow
        .post("/pro/review-case-details", &s2, json!({"case_id": case_id}))
        .await;
    assert_eq!(after.data()["opinions"][0]["summary"], "Stable angina");
    assert_eq!(after.data()["sub_state"], "opinions_complete");
    // Patients read opinions only through the report.
    let patient = flow
        .post(
            "/app/review-case-details",
            &flow.patient("P1"),
            json!({"case_id": case_id}),
        )
        .await;
    assert!(!patient.body.to_string().contains("Stable angina"));
}

#[tokio::test]
async fn the_summary_completes_the_case_once_every_opinion_is_in() {
    let flow = Flow::new().await;
    let case_id = flow.assigned_case("P1").await;
    let c1 = flow.doctor("C1");
    flow.post(
        "/pro/save-summary",
        &flow.doctor("S1"),
        json!({"case_id": case_id, "summary": "x"}),
    )
    .await
    .refused(403, "forbidden");
    flow.post(
        "/pro/save-summary",
        &c1,
        json!({"case_id": case_id, "summary": "Draft summary"}),
    )
    .await
    .data();
    flow.post("/pro/submit-summary", &c1, json!({"case_id": case_id}))
        .await
        .refused(409, "opinions_missing");
    flow.submit_opinion(case_id, "S1").await;
    flow.submit_opinion(case_id, "S2").await;
    // The specialists do not see the coordinator's draft.
    let s1_view = flow
        .post(
            "/pro/review-case-details",
            &flow.doctor("S1"),
            json!({"case_id": case_id}),
        )
        .await;
    assert_eq!(s1_view.data()["summary"], Value::Null);
    let coordinator = flow
        .post("/pro/review-case-details", &c1, json!({"case_id": case_id}))
        .await;
    assert_eq!(coordinator.data()["summary"]["summary"], "Draft summary");
    assert_eq!(coordinator.data()["summary"]["submitted"], false);

    let done = flow
        .post("/pro/submit-summary", &c1, json!({"case_id": case_id}))
        .await;
    assert_eq!(done.data()["status"], "completed");
    let s1_view = flow
        .post(
            "/pro/review-case-details",
            &flow.doctor("S1"),
            json!({"case_id": case_id}),
        )
        .await;
    assert_eq!(s1_view.data()["summary"]["summary"], "Draft summary");
    assert_eq!(s1_view.data()["summary"]["submitted"], true);
    flow.post(
        "/pro/save-summary",
        &c1,
        json!({"case_id": case_id, "summary": "late"}),
    )
    .await
    .refused(409, "invalid_status");
}

#[tokio::test]
async fn the_overdue_reminder_is_sent_at_most_every_12_hours() {
    let flow = Flow::new().await;
    let case_id = flow.assigned_case("P1").await;
    let c1 = flow.doctor("C1");
    flow.post(
        "/pro/send-overdue-reminder",
        &c1,
        json!({"case_id": case_id}),
    )
    .await
    .data();
    flow.post(
        "/pro/send-overdue-reminder",
        &c1,
        json!({"case_id": case_id}),
    )
    .await
    .refused(409, "reminder_too_soon");
    flow.post(
        "/pro/send-overdue-reminder",
        &flow.doctor("S1"),
        json!({"case_id": case_id}),
    )
    .await
    .refused(403, "forbidden");
}

#[tokio::test]
async fn documents_download_with_their_detected_type() {
    let flow = Flow::new().await;
    let p1 = flow.patient("P1");
    let case_id = flow.create_case("P1", false).await;
    let up = flow
        .upload(&p1, &case_id.to_string(), "scan.pdf", JPEG, None)
        .await;
    let document_id = up.data()["document_id"].clone();
    flow.post("/app/submit-case", &p1, json!({"case_id": case_id}))
        .await
        .data();
    let payment = flow.assign_coordinator(case_id, None).await;
    flow.pay(case_id, payment).await;
    let c1 = flow.doctor("C1");
    let raw = flow
        .download(
            "/pro/get-document",
            &c1,
            json!({"case_id": case_id, "document_id": document_id}),
        )
        .await;
    assert_eq!((raw.status, raw.content_type.as_str()), (200, "image/jpeg"));
    assert_eq!(raw.bytes, JPEG);
    let missing = flow
        .post(
            "/pro/get-document",
            &c1,
            json!({"case_id": case_id, "document_id": Uuid::now_v7()}),
        )
        .await;
    missing.refused(404, "document_not_found");
}

#[tokio::test]
async fn the_report_is_for_the_coordinator_and_specialists_of_a_completed_case() {
    let flow = Flow::new().await;
    let case_id = flow.completed_case("P1").await;
    let c1 = flow.doctor("C1");
    flow.post("/pro/get-report", &c1, json!({"case_id": case_id}))
        .await
        .refused(409, "report_not_ready");
    flow.store_report(case_id, PDF).await;
    for doctor in ["C1", "S1", "S2"] {
        let raw = flow
            .download(
                "/pro/get-report",
                &flow.doctor(doctor),
                json!({"case_id": case_id}),
            )
            .await;
        assert_eq!(
            (raw.status, raw.content_type.as_str()),
            (200, "application/pdf"),
            "{doctor}"
        );
        assert_eq!(raw.bytes, PDF);
    }
    flow.post(
        "/pro/get-report",
        &flow.doctor("S3"),
        json!({"case_id": case_id}),
    )
    .await
    .refused(404, "case_not_found");
}

#[tokio::test]
async fn the_doctor_flow_works_on_postgres() {
    let flow = Flow::on_postgres().await;
    let case_id = flow.assigned_case("P1").await;
    flow.post(
        "/pro/save-notes",
        &flow.doctor("S1"),
        json!({"case_id": case_id, "notes": "n"}),
    )
    .await
    .data();
    flow.submit_opinion(case_id, "S1").await;
    flow.submit_opinion(case_id, "S2").await;
    let done = flow
        .post(
            "/pro/submit-summary",
            &flow.doctor("C1"),
            json!({"case_id": case_id, "summary": "s"}),
        )
        .await;
    assert_eq!(done.data()["status"], "completed");
    let sops = flow
        .post(
            "/pro/sops",
            &flow.doctor("S2"),
            json!({"coordinator": false}),
        )
        .await;
    assert_eq!(sops.data()[0]["case_id"], json!(case_id));
}
