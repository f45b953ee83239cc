//! The patient endpoints (`/app/*`) in process: each endpoint's happy path and its main refusal,
//! uploads (type detection from the bytes, storage once, the size limit), audited reads and the
//! patient's access history.

use crate::case_flow::{DC, Flow, JPEG, PDF, PRICE, RT};
use serde_json::{Value, json};
use sop_core::actor::Actor;
use sop_core::command::Command;
use sop_core::ids::{PaymentId, RequestId, ReviewTypeId};
use sop_core::rules::Limits;
use sop_server::store::{AuditFilter, Page};
use uuid::Uuid;

/// Blob files under the store's root (the temporary directory excluded).
fn stored_blobs(flow: &Flow) -> Vec<String> {
    let root = flow.state.blobs.root();
    let Ok(dirs) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for dir in dirs.flatten().filter(|d| d.file_name() != "tmp") {
        for file in std::fs::read_dir(dir.path()).expect("blob dir").flatten() {
            found.push(file.file_name().to_string_lossy().into_owned());
        }
    }
    found
}

/// The audit rows of a case, oldest first, as `(user, action, outcome)`.
async fn audit_of(flow: &Flow, case_id: &Value) -> Vec<(String, String, String)> {
    let case_id: Uuid = serde_json::from_value(case_id.clone()).expect("uuid");
    let filter = AuditFilter {
        case_id: Some(case_id),
        ..AuditFilter::default()
    };
    let page = flow
        .state
        .store
        .list_audit(&filter, Page::new(Some(1), Some(100)))
        .await
        .expect("audit");
    page.items
        .into_iter()
        .rev()
        .map(|r| (r.user_id.unwrap_or_default(), r.action, r.outcome))
        .collect()
}

#[tokio::test]
async fn review_types_are_active_only_newest_first_and_localized() {
    let flow = Flow::new().await;
    let newer = ReviewTypeId(Uuid::from_u128(0x7002));
    flow.save_review_type(newer, "Expedited", true, -60).await;
    flow.save_review_type(
        ReviewTypeId(Uuid::from_u128(0x7003)),
        "Retired",
        false,
        -120,
    )
    .await;
    let reply = flow
        .post_lang(
            "/app/list-reviewtypes",
            &flow.patient("P1"),
            json!({}),
            Some("ar"),
        )
        .await;
    let items = reply.data().as_array().expect("list");
    let ids: Vec<&Value> = items.iter().map(|i| &i["rt_id"]).collect();
    assert_eq!(ids, [&json!(newer), &json!(RT)]);
    assert_eq!(items[0]["title"], "Expedited (ar)");
    assert_eq!(items[0]["title_en"], "Expedited");
    assert_eq!(items[1]["price"], PRICE);
    assert_eq!(
        reply.body["pagination"],
        json!({"total": 2, "page": 1, "page_size": 15})
    );
}

#[tokio::test]
async fn review_types_need_a_patient_token() {
    let flow = Flow::new().await;
    let reply = flow
        .post("/app/list-reviewtypes", &flow.doctor("C1"), json!({}))
        .await;
    assert_eq!((reply.status, &reply.body["status"]), (403, &json!(2000)));
}

#[tokio::test]
async fn disease_categories_are_active_only_without_staff_data() {
    let flow = Flow::new().await;
    let reply = flow
        .post_lang(
            "/app/list-disease-categories",
            &flow.patient("P1"),
            json!({"size": 5}),
            Some("1"),
        )
        .await;
    let items = reply.data().as_array().expect("list");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["dc_id"], json!(DC));
    assert_eq!(items[0]["label"], "أمراض القلب");
    assert!(items[0].get("doctor_ids").is_none());
    assert_eq!(reply.body["pagination"]["page_size"], 5);
}

#[tokio::test]
async fn a_draft_is_created_with_a_client_id_edited_in_part_and_submitted() {
    let flow = Flow::new().await;
    let p1 = flow.patient("P1");
    // Any UUID version is accepted as the client's id.
    let case_id = Uuid::new_v4();
    let created = flow
        .post(
            "/app/create-case",
            &p1,
            json!({"case_id": case_id, "rt_id": RT, "dc_id": DC, "extra": true}),
        )
        .await;
    assert_eq!(
        created.data(),
        &json!({"case_id": case_id, "status": "draft"})
    );

    flow.post("/app/submit-case", &p1, json!({"case_id": case_id}))
        .await
        .refused(400, "age_invalid");
    let updated = flow
        .post(
            "/app/update-case",
            &p1,
            json!({"case_id": case_id, "patient_age": 61, "patient_gender": "male",
                   "medical_history": "Hypertension"}),
        )
        .await;
    assert_eq!(updated.data()["status"], "draft");
    flow.post(
        "/app/update-case",
        &p1,
        json!({"case_id": case_id, "questions": "Which drug?"}),
    )
    .await
    .data();

    let submitted = flow
        .post("/app/submit-case", &p1, json!({"case_id": case_id}))
        .await;
    assert_eq!(submitted.data()["status"], "submitted");
    flow.post(
        "/app/update-case",
        &p1,
        json!({"case_id": case_id, "patient_age": 62}),
    )
    .await
    .refused(409, "invalid_status");

    let details = flow
        .post("/app/review-case-details", &p1, json!({"case_id": case_id}))
        .await;
    let d = details.data();
    assert_eq!(
        (
            &d["patient_age"],
            &d["patient_gender"],
            &d["medical_history"],
            &d["questions"]
        ),
        (
            &json!(61),
            &json!("male"),
            &json!("Hypertension"),
            &json!("Which drug?")
        )
    );
}

#[tokio::test]
async fn a_case_with_the_same_id_is_refused_and_a_bad_gender_is_a_400() {
    let flow = Flow::new().await;
    let p1 = flow.patient("P1");
    let body = json!({"case_id": Uuid::now_v7(), "rt_id": RT, "dc_id": DC});
    flow.post("/app/create-case", &p1, body.clone())
        .await
        .data();
    flow.post("/app/create-case", &p1, body)
        .await
        .refused(409, "case_already_exists");
    let bad = flow
        .post(
            "/app/create-case",
            &p1,
            json!({"rt_id": RT, "dc_id": DC, "patient_gender": "unknown"}),
        )
        .await;
    assert_eq!((bad.status, &bad.body["status"]), (400, &json!(1002)));
    assert!(
        bad.body["message"]
            .as_str()
            .unwrap()
            .contains("patient_gender")
    );
}

#[tokio::test]
async fn create_and_submit_is_refused_when_the_review_type_is_inactive() {
    let flow = Flow::new().await;
    let retired = ReviewTypeId(Uuid::from_u128(0x7009));
    flow.save_review_type(retired, "Retired", false, 0).await;
    flow.post(
        "/app/create-case",
        &flow.patient("P1"),
        json!({"rt_id": retired, "dc_id": DC, "submit": true}),
    )
    .await
    .refused(409, "review_type_inactive");
}

#[tokio::test]
async fn another_patient_gets_case_not_found_everywhere() {
    let flow = Flow::new().await;
    let case_id = flow.create_case("P1", false).await;
    let p2 = flow.patient("P2");
    let doc = Uuid::now_v7();
    for (path, body) in [
        (
            "/app/update-case",
            json!({"case_id": case_id, "patient_age": 1}),
        ),
        ("/app/submit-case", json!({"case_id": case_id})),
        ("/app/review-case-details", json!({"case_id": case_id})),
        (
            "/app/cancel-case",
            json!({"case_id": case_id, "reason": "x"}),
        ),
        ("/app/payment-summary", json!({"case_id": case_id})),
        ("/app/retry-payment", json!({"case_id": case_id})),
        (
            "/app/remove-document",
            json!({"case_id": case_id, "document_id": doc}),
        ),
        (
            "/app/answer-document-request",
            json!({"case_id": case_id, "request_id": doc}),
        ),
        ("/app/get-report", json!({"case_id": case_id})),
        ("/app/access-history", json!({"case_id": case_id})),
    ] {
        let reply = flow.post(path, &p2, body).await;
        assert_eq!(reply.status, 404, "{path}: {reply:?}");
        assert_eq!(reply.body["message"], "Case not found", "{path}");
    }
    let upload = flow
        .upload(&p2, &case_id.to_string(), "a.pdf", PDF, None)
        .await;
    upload.refused(404, "case_not_found");
    // Nothing of P2's attempt was stored.
    assert!(stored_blobs(&flow).is_empty());
}

#[tokio::test]
async fn list_cases_shows_own_cases_with_their_card() {
    let flow = Flow::new().await;
    let draft = flow.create_case("P1", false).await;
    let submitted = flow.create_case("P1", true).await;
    flow.create_case("P2", true).await;
    let p1 = flow.patient("P1");
    let reply = flow.post("/app/list-cases", &p1, json!({})).await;
    let items = reply.data().as_array().expect("list");
    let ids: Vec<&Value> = items.iter().map(|i| &i["case_id"]).collect();
    assert_eq!(ids, [&json!(submitted), &json!(draft)]);
    assert_eq!(items[1]["card"]["actions"], json!(["submit_case"]));
    assert!(items[0]["reference"].as_str().unwrap().starts_with("SOP-"));
    assert_eq!(reply.body["pagination"]["total"], 2);

    let only = flow
        .post("/app/list-cases", &p1, json!({"status": "draft"}))
        .await;
    assert_eq!(only.data().as_array().unwrap().len(), 1);
    flow.post("/app/list-cases", &p1, json!({"status": "lost"}))
        .await
        .refused(400, "field_invalid");
}

#[tokio::test]
async fn case_details_are_audited_for_the_owner_and_for_refused_readers() {
    let flow = Flow::new().await;
    let case_id = flow.create_case("P1", true).await;
    let id = json!(case_id);
    let details = flow
        .post_lang(
            "/app/review-case-details",
            &flow.patient("P1"),
            json!({"case_id": id}),
            Some("ar"),
        )
        .await;
    let d = details.data();
    assert_eq!(d["status"], "submitted");
    assert!(d["timeline"].as_array().unwrap().len() >= 2);
    assert!(d["card"]["title"].as_str().is_some());
    flow.post(
        "/app/review-case-details",
        &flow.patient("P2"),
        json!({"case_id": id}),
    )
    .await
    .refused(404, "case_not_found");
    let audit = audit_of(&flow, &id).await;
    assert!(
        audit.contains(&("P1".into(), "view_case".into(), "ok".into())),
        "{audit:?}"
    );
    assert!(
        audit.contains(&(
            "P2".into(),
            "view_case".into(),
            "refused:case_not_found".into()
        )),
        "{audit:?}"
    );
}

#[tokio::test]
async fn cancel_needs_a_reason_and_closes_the_case() {
    let flow = Flow::new().await;
    let case_id = flow.create_case("P1", true).await;
    let p1 = flow.patient("P1");
    flow.post("/app/cancel-case", &p1, json!({"case_id": case_id}))
        .await
        .refused(400, "reason_required");
    let done = flow
        .post(
            "/app/cancel-case",
            &p1,
            json!({"case_id": case_id, "reason": "Feeling better"}),
        )
        .await;
    assert_eq!(done.data()["status"], "cancelled");
    let again = flow
        .post_lang(
            "/app/cancel-case",
            &p1,
            json!({"case_id": case_id, "reason": "again"}),
            Some("ar"),
        )
        .await;
    again.refused(409, "invalid_status");
    assert_eq!(again.body["message"], again.body["data"]["message_ar"]);
}

#[tokio::test]
async fn payment_summary_before_and_after_the_payment_is_created() {
    let flow = Flow::new().await;
    let p1 = flow.patient("P1");
    let draft = flow.create_case("P1", false).await;
    let before = flow
        .post_lang(
            "/app/payment-summary",
            &p1,
            json!({"case_id": draft}),
            Some("ar"),
        )
        .await;
    let s = before.data();
    assert_eq!(
        (
            &s["amount"],
            &s["currency"],
            &s["status"],
            &s["payment_link"]
        ),
        (
            &json!(PRICE),
            &json!("SAR"),
            &json!("not_created"),
            &Value::Null
        )
    );
    assert_eq!(s["review_type"], "Standard (ar)");
    assert!(s["reference"].as_str().unwrap().starts_with("SOP-"));

    let case_id = flow.create_case("P1", true).await;
    let payment_id = flow.assign_coordinator(case_id, None).await;
    flow.run(
        case_id,
        Command::PaymentLinkCreated {
            payment_id,
            link: "https://pay.example/abc".into(),
        },
        Actor::System,
    )
    .await;
    let after = flow
        .post("/app/payment-summary", &p1, json!({"case_id": case_id}))
        .await;
    let s = after.data();
    assert_eq!(
        (
            &s["amount"],
            &s["status"],
            &s["payment_link"],
            &s["payment_id"]
        ),
        (
            &json!(PRICE),
            &json!("pending"),
            &json!("https://pay.example/abc"),
            &json!(payment_id)
        )
    );
    flow.pay(case_id, payment_id).await;
    let paid = flow
        .post("/app/payment-summary", &p1, json!({"case_id": case_id}))
        .await;
    assert_eq!(paid.data()["status"], "succeeded");
    assert!(paid.data()["paid_at"].is_string());
}

#[tokio::test]
async fn retry_payment_opens_a_new_attempt_only_after_a_failure() {
    let flow = Flow::new().await;
    let p1 = flow.patient("P1");
    let case_id = flow.create_case("P1", true).await;
    let first = flow.assign_coordinator(case_id, None).await;
    flow.post("/app/retry-payment", &p1, json!({"case_id": case_id}))
        .await
        .refused(409, "invalid_status");
    flow.run(
        case_id,
        Command::PaymentFailed { payment_id: first },
        Actor::PaymentPlatform,
    )
    .await;
    let retried = flow
        .post("/app/retry-payment", &p1, json!({"case_id": case_id}))
        .await;
    let r = retried.data();
    assert_eq!(r["status"], "awaiting_payment");
    let new_id: PaymentId = serde_json::from_value(r["payment_id"].clone()).unwrap();
    assert_ne!(new_id, first);
    let summary = flow
        .post("/app/payment-summary", &p1, json!({"case_id": case_id}))
        .await;
    assert_eq!(summary.data()["payment_id"], json!(new_id));
    assert_eq!(summary.data()["status"], "pending");
}

#[tokio::test]
async fn upload_detects_the_type_from_the_bytes_not_the_name() {
    let flow = Flow::new().await;
    let p1 = flow.patient("P1");
    let case_id = flow.create_case("P1", false).await.to_string();
    let reply = flow.upload(&p1, &case_id, "scan.pdf", JPEG, None).await;
    let d = reply.data();
    assert_eq!(d["content_type"], "image/jpeg");
    assert_eq!(d["size"], JPEG.len());
    let sha = d["sha256"].as_str().unwrap().to_owned();
    assert_eq!(sha.len(), 64);
    assert_eq!(stored_blobs(&flow), std::slice::from_ref(&sha));

    let details = flow
        .post("/app/review-case-details", &p1, json!({"case_id": case_id}))
        .await;
    let docs = details.data()["documents"].as_array().unwrap().clone();
    assert_eq!(docs.len(), 1);
    assert_eq!(
        (
            &docs[0]["file_name"],
            &docs[0]["content_type"],
            &docs[0]["sha256"]
        ),
        (&json!("scan.pdf"), &json!("image/jpeg"), &json!(sha))
    );
}

#[tokio::test]
async fn an_unknown_file_type_is_refused_and_not_kept() {
    let flow = Flow::new().await;
    let p1 = flow.patient("P1");
    let case_id = flow.create_case("P1", false).await.to_string();
    let reply = flow
        .upload(
            &p1,
            &case_id,
            "notes.pdf",
            b"just some text, not a scan\n",
            None,
        )
        .await;
    reply.refused(400, "file_type_not_allowed");
    assert!(stored_blobs(&flow).is_empty());
    let audit = audit_of(&flow, &json!(case_id)).await;
    assert!(
        audit.contains(&(
            "P1".into(),
            "upload_document".into(),
            "refused:file_type_not_allowed".into()
        )),
        "{audit:?}"
    );
}

#[tokio::test]
async fn the_same_file_is_stored_once() {
    let flow = Flow::new().await;
    let p1 = flow.patient("P1");
    let a = flow.create_case("P1", false).await.to_string();
    let b = flow.create_case("P1", false).await.to_string();
    let first = flow.upload(&p1, &a, "x.pdf", PDF, None).await;
    let again = flow.upload(&p1, &a, "x-again.pdf", PDF, None).await;
    // A repeated upload to the same case answers the document it already has.
    assert_eq!(first.data()["document_id"], again.data()["document_id"]);
    let other = flow.upload(&p1, &b, "x.pdf", PDF, None).await;
    assert_ne!(first.data()["document_id"], other.data()["document_id"]);
    assert_eq!(first.data()["sha256"], other.data()["sha256"]);
    assert_eq!(stored_blobs(&flow).len(), 1);
    let details = flow
        .post("/app/review-case-details", &p1, json!({"case_id": a}))
        .await;
    assert_eq!(details.data()["documents"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_file_over_the_limit_is_refused_naming_the_limit() {
    let flow = Flow::with_limits(Limits {
        max_file_bytes: 1000,
        ..Limits::default()
    })
    .await;
    let p1 = flow.patient("P1");
    let case_id = flow.create_case("P1", false).await.to_string();
    let mut big = PDF.to_vec();
    big.resize(1001, b' ');
    let reply = flow.upload(&p1, &case_id, "big.pdf", &big, None).await;
    assert_eq!(
        (reply.status, &reply.body["status"]),
        (413, &json!(1002)),
        "{reply:?}"
    );
    assert!(
        reply.body["message"]
            .as_str()
            .unwrap()
            .contains("1000 bytes"),
        "{reply:?}"
    );
    // Far over the limit: the body limit stops it too.
    big.resize(200_000, b' ');
    let reply = flow.upload(&p1, &case_id, "bigger.pdf", &big, None).await;
    assert_eq!(reply.status, 413, "{reply:?}");
    assert!(stored_blobs(&flow).is_empty());
    big.truncate(1000);
    flow.upload(&p1, &case_id, "fits.pdf", &big, None)
        .await
        .data();
}

#[tokio::test]
async fn a_multipart_upload_needs_a_case_id_and_a_file() {
    let flow = Flow::new().await;
    let p1 = flow.patient("P1");
    flow.upload(&p1, "not-a-uuid", "a.pdf", PDF, None)
        .await
        .refused(400, "field_invalid");
    let req = axum::http::Request::post("/app/upload-document")
        .header("authorization", format!("Bearer {p1}"))
        .header("content-type", "application/json")
        .body(axum::body::Body::from("{}"))
        .unwrap();
    let raw = flow.send(req).await;
    assert_eq!(raw.status, 400);
}

#[tokio::test]
async fn documents_are_removed_from_a_draft_only() {
    let flow = Flow::new().await;
    let p1 = flow.patient("P1");
    let case_id = flow.create_case("P1", false).await;
    let doc = flow
        .upload(&p1, &case_id.to_string(), "a.pdf", PDF, None)
        .await;
    let document_id = doc.data()["document_id"].clone();
    flow.post(
        "/app/remove-document",
        &p1,
        json!({"case_id": case_id, "document_id": document_id}),
    )
    .await
    .data();
    flow.post(
        "/app/remove-document",
        &p1,
        json!({"case_id": case_id, "document_id": document_id}),
    )
    .await
    .refused(404, "document_not_found");
    // The bytes are kept for the audit trail.
    assert_eq!(stored_blobs(&flow).len(), 1);
}

#[tokio::test]
async fn a_document_request_is_answered_with_an_upload() {
    let flow = Flow::new().await;
    let p1 = flow.patient("P1");
    let case_id = flow.create_case("P1", true).await;
    // No request open: a submitted case takes no uploads.
    flow.upload(&p1, &case_id.to_string(), "a.pdf", PDF, None)
        .await
        .refused(409, "no_open_request");
    let request_id = RequestId::new_v7();
    flow.assign_coordinator(case_id, Some(request_id)).await;
    let rid = request_id.to_string();
    flow.upload(&p1, &case_id.to_string(), "ecg.pdf", PDF, Some(&rid))
        .await
        .data();
    let body = json!({"case_id": case_id, "request_id": request_id});
    flow.post("/app/answer-document-request", &p1, body.clone())
        .await
        .data();
    flow.post("/app/answer-document-request", &p1, body)
        .await
        .refused(409, "request_not_open");
    let details = flow
        .post("/app/review-case-details", &p1, json!({"case_id": case_id}))
        .await;
    let requests = &details.data()["document_requests"];
    assert_eq!(requests[0]["request_id"], json!(request_id));
    assert_eq!(requests[0]["open"], false);
    assert_eq!(
        details.data()["documents"][0]["request_id"],
        json!(request_id)
    );
}

#[tokio::test]
async fn the_report_is_409_until_stored_then_a_pdf() {
    let flow = Flow::new().await;
    let p1 = flow.patient("P1");
    let case_id = flow.completed_case("P1").await;
    let pending = flow
        .post("/app/get-report", &p1, json!({"case_id": case_id}))
        .await;
    pending.refused(409, "report_not_ready");
    flow.store_report(case_id, PDF).await;
    let raw = flow
        .download(
            "/app/get-report",
            &p1,
            json!({"case_id": case_id, "lang": "ar"}),
        )
        .await;
    assert_eq!(
        (raw.status, raw.content_type.as_str()),
        (200, "application/pdf")
    );
    assert_eq!(raw.bytes, PDF);
    let audit = audit_of(&flow, &json!(case_id)).await;
    let downloads: Vec<_> = audit.iter().filter(|a| a.1 == "download_report").collect();
    assert_eq!(downloads.len(), 2, "{audit:?}");
    assert_eq!(downloads[0].2, "refused:report_not_ready");
    assert_eq!(downloads[1].2, "ok");
}

#[tokio::test]
async fn notifications_are_the_patients_own_in_their_language() {
    let flow = Flow::new().await;
    let case_id = flow.create_case("P1", true).await;
    flow.assign_coordinator(case_id, None).await;
    flow.create_case("P2", true).await;
    let reply = flow
        .post_lang(
            "/app/list-notifications",
            &flow.patient("P1"),
            json!({}),
            Some("ar"),
        )
        .await;
    let items = reply.data().as_array().unwrap();
    assert!(!items.is_empty());
    assert!(items.iter().all(|n| n["case_id"] == json!(case_id)));
    let title = items[0]["title"].as_str().unwrap();
    assert!(
        title
            .chars()
            .any(|c| ('\u{0600}'..='\u{06FF}').contains(&c)),
        "{title}"
    );
    let none = flow
        .post("/app/list-notifications", &flow.patient("P3"), json!({}))
        .await;
    assert_eq!(none.data(), &json!([]));
}

#[tokio::test]
async fn access_history_shows_who_else_read_the_case() {
    let flow = Flow::new().await;
    let p1 = flow.patient("P1");
    let case_id = flow.assigned_case("P1").await;
    let other = flow.create_case("P1", false).await;
    flow.post("/app/review-case-details", &p1, json!({"case_id": case_id}))
        .await
        .data();
    flow.post(
        "/pro/review-case-details",
        &flow.doctor("S1"),
        json!({"case_id": case_id}),
    )
    .await
    .data();
    flow.post(
        "/pro/review-case-details",
        &flow.doctor("S3"),
        json!({"case_id": case_id}),
    )
    .await
    .refused(404, "case_not_found");

    let reply = flow
        .post("/app/access-history", &p1, json!({"case_id": case_id}))
        .await;
    let items = reply.data().as_array().unwrap();
    assert!(
        items
            .iter()
            .all(|i| i["role"] == "doctor" || i["role"] == "admin")
    );
    assert!(items.iter().all(|i| i["case_id"] == json!(case_id)));
    let seen: Vec<(&Value, &Value, &Value)> = items
        .iter()
        .map(|i| (&i["user_id"], &i["action"], &i["outcome"]))
        .collect();
    assert!(
        seen.contains(&(&json!("S1"), &json!("view_case"), &json!("ok"))),
        "{seen:?}"
    );
    assert!(
        seen.contains(&(
            &json!("S3"),
            &json!("view_case"),
            &json!("refused:case_not_found")
        )),
        "{seen:?}"
    );
    assert!(
        seen.contains(&(&json!("C1"), &json!("assign_doctors"), &json!("ok"))),
        "{seen:?}"
    );
    let s1 = items.iter().find(|i| i["user_id"] == "S1").unwrap();
    assert_eq!(s1["name"], "Dr S1");
    assert!(s1.get("ip").is_none());

    // All cases: includes the admin's assignment; the draft has no one else's access.
    let all = flow
        .post("/app/access-history", &p1, json!({"size": 100}))
        .await;
    assert!(
        all.data()
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["user_id"] == "A1")
    );
    let draft = flow
        .post("/app/access-history", &p1, json!({"case_id": other}))
        .await;
    assert_eq!(draft.data(), &json!([]));
}

#[tokio::test]
async fn the_patient_flow_works_on_postgres() {
    let flow = Flow::on_postgres().await;
    let p1 = flow.patient("P1");
    let case_id = flow.create_case("P1", false).await;
    flow.upload(&p1, &case_id.to_string(), "scan.pdf", JPEG, None)
        .await
        .data();
    flow.post("/app/submit-case", &p1, json!({"case_id": case_id}))
        .await
        .data();
    let payment = flow.assign_coordinator(case_id, None).await;
    flow.pay(case_id, payment).await;
    flow.post(
        "/pro/review-case-details",
        &flow.doctor("C1"),
        json!({"case_id": case_id}),
    )
    .await
    .data();
    let history = flow.post("/app/access-history", &p1, json!({})).await;
    let items = history.data().as_array().unwrap();
    assert!(
        items
            .iter()
            .any(|i| i["user_id"] == "C1" && i["action"] == "view_case")
    );
    let cases = flow.post("/app/list-cases", &p1, json!({})).await;
    assert_eq!(cases.data()[0]["status"], "payment_successful");
    let sops = flow.post("/pro/sops", &flow.doctor("C1"), json!({})).await;
    assert_eq!(sops.data()[0]["role"], "coordinator");
}
