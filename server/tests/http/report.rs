//! The final report end to end (SPEC §6): the summary is submitted, the outbox worker generates
//! the English and Arabic PDFs from the frozen opinions and summary, stores them and sends
//! `report_ready`; `pdftotext` (poppler-utils, installed by `.ci/run`) finds the case reference,
//! every opinion's summary and the coordinator's summary in both, Arabic included (after NFKC
//! normalization); the verification endpoint answers for the printed and the PDF hashes.

use crate::case_flow::Flow;
use axum::body::Body;
use axum::http::Request;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sop_core::case::case_reference;
use sop_core::ids::CaseId;
use std::process::Command;
use unicode_normalization::UnicodeNormalization;

const S1_SUMMARY: &str = "Benign arrhythmia; ورم حميد في القلب";
const S2_SUMMARY: &str = "Mild valve disease — مرض خفيف في الصمام";
const FINAL: &str = "The specialists agree. الأطباء متفقون على التشخيص";

/// The text of a PDF, NFKC-normalized, with whitespace runs folded to one space.
pub fn pdf_text(pdf: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.pdf");
    std::fs::write(&path, pdf).unwrap();
    let out = Command::new("pdftotext")
        .arg(&path)
        .arg("-")
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run pdftotext ({e}): install poppler-utils (.ci/run does)")
        });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text: String = String::from_utf8(out.stdout).unwrap().nfkc().collect();
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `text` as pdftotext gives it back: NFKC, whitespace folded.
fn normalized(text: &str) -> String {
    let text: String = text.nfkc().collect();
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Every word of `expected` appears in `text` (line breaks may split phrases, and extractors
/// move neutral punctuation such as `;` around in mixed-direction lines, so it is left out).
#[track_caller]
fn assert_words(text: &str, expected: &str) {
    let words = normalized(expected);
    let words = words
        .split(' ')
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
        .filter(|w| !w.is_empty());
    for word in words {
        assert!(text.contains(word), "`{word}` missing from:\n{text}");
    }
}

/// A completed case with bilingual opinions and summary, and the outbox run once.
async fn completed_with_report(flow: &Flow) -> CaseId {
    let case_id = flow.assigned_case("P1").await;
    for (doctor, summary) in [("S1", S1_SUMMARY), ("S2", S2_SUMMARY)] {
        flow.post(
            "/pro/submit-opinion",
            &flow.doctor(doctor),
            json!({"case_id": case_id, "summary": summary, "diagnosis": "Diagnosis text",
                   "recommendations": "Follow up in six months; متابعة بعد ستة أشهر",
                   "concordance": "agrees", "free_text": ""}),
        )
        .await
        .data();
    }
    flow.post(
        "/pro/submit-summary",
        &flow.doctor("C1"),
        json!({"case_id": case_id, "summary": FINAL}),
    )
    .await
    .data();
    // Before the worker runs, the report is not there.
    flow.post(
        "/app/get-report",
        &flow.patient("P1"),
        json!({"case_id": case_id}),
    )
    .await
    .refused(409, "report_not_ready");
    let run = sop_server::outbox::run_once(&flow.state, chrono::Utc::now())
        .await
        .unwrap();
    assert!(run.delivered >= 1, "{run:?}");
    case_id
}

async fn report_in_both_languages(flow: Flow) {
    let case_id = completed_with_report(&flow).await;
    let case = flow.state.store.case(case_id).await.unwrap().unwrap();
    let stored = case.report.clone().expect("report recorded on the case");

    // report_ready reached the patient (and the coordinator).
    let inbox = flow
        .post("/app/list-notifications", &flow.patient("P1"), json!({}))
        .await;
    let kinds: Vec<_> = inbox
        .data()
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].clone())
        .collect();
    assert!(kinds.contains(&json!("report_ready")), "{kinds:?}");

    let reference = case_reference(case_id);
    let mut pdf_shas = Vec::new();
    for (lang, label) in [
        ("en", "Second Opinion Report"),
        ("ar", "تقرير الرأي الطبي الثاني"),
    ] {
        let raw = flow
            .download(
                "/app/get-report",
                &flow.patient("P1"),
                json!({"case_id": case_id, "lang": lang}),
            )
            .await;
        assert_eq!(
            (raw.status, raw.content_type.as_str()),
            (200, "application/pdf"),
            "{lang}"
        );
        let text = pdf_text(&raw.bytes);
        assert_words(&text, label);
        assert!(text.contains(&reference), "{lang}: {text}");
        for expected in [S1_SUMMARY, S2_SUMMARY, FINAL] {
            assert_words(&text, expected);
        }
        // The report id and the certified hash are printed.
        assert!(text.contains(&stored.report_id.to_string()), "{text}");
        assert!(text.contains(&stored.sha256), "{text}");
        // The coordinator gets the same bytes.
        let c1 = flow
            .download(
                "/pro/get-report",
                &flow.doctor("C1"),
                json!({"case_id": case_id, "lang": lang}),
            )
            .await;
        assert_eq!(c1.bytes, raw.bytes);
        if let Ok(dir) = std::env::var("SOP_REPORT_SAMPLES_DIR") {
            std::fs::write(format!("{dir}/report-{lang}.pdf"), &raw.bytes).unwrap();
        }
        pdf_shas.push(hex::encode(Sha256::digest(&raw.bytes)));
    }
    assert_ne!(pdf_shas[0], pdf_shas[1]);
    // The Arabic words are joined letters, not isolated presentation forms, once normalized:
    // the extraction of the Arabic PDF holds the words as they were typed.
    let ar = flow
        .download(
            "/app/get-report",
            &flow.patient("P1"),
            json!({"case_id": case_id, "lang": "ar"}),
        )
        .await;
    assert!(pdf_text(&ar.bytes).contains("الأطباء"));

    // Verification: the printed content hash and each PDF's hash are valid; anything else is not.
    let verify = |id: String, sha: String| {
        let flow = &flow;
        async move {
            let req = Request::get(format!("/reports/verify?id={id}&sha256={sha}"))
                .body(Body::empty())
                .unwrap();
            let raw = flow.send(req).await;
            (
                raw.status,
                serde_json::from_slice::<Value>(&raw.bytes).unwrap_or(Value::Null),
            )
        }
    };
    let id = stored.report_id.to_string();
    for sha in [
        stored.sha256.clone(),
        pdf_shas[0].clone(),
        pdf_shas[1].clone(),
    ] {
        let (status, body) = verify(id.clone(), sha).await;
        assert_eq!(
            (status, &body["data"]),
            (200, &json!({"valid": true})),
            "{body}"
        );
    }
    let (_, body) = verify(id.clone(), "0".repeat(64)).await;
    assert_eq!(body["data"], json!({"valid": false}));
    let (_, body) = verify(uuid::Uuid::now_v7().to_string(), stored.sha256.clone()).await;
    assert_eq!(body["data"], json!({"valid": false}));
    // The answer says nothing about the case.
    let (_, body) = verify(id.clone(), stored.sha256.clone()).await;
    assert!(
        !body.to_string().contains(&reference) && !body.to_string().contains("P1"),
        "{body}"
    );
    let (status, _) = verify("nope".into(), stored.sha256.clone()).await;
    assert_eq!(status, 400);

    // Running the worker again does not make a second report.
    sop_server::outbox::run_once(
        &flow.state,
        chrono::Utc::now() + chrono::TimeDelta::hours(2),
    )
    .await
    .unwrap();
    let again = flow.state.store.case(case_id).await.unwrap().unwrap();
    assert_eq!(again.report, case.report);
    assert_eq!(
        sop_server::report::stored(&flow.state, case_id)
            .await
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn report_in_english_and_arabic_sqlite() {
    report_in_both_languages(Flow::new().await).await;
}

#[tokio::test]
async fn report_in_english_and_arabic_postgres() {
    report_in_both_languages(Flow::on_postgres().await).await;
}
