//! Benchmark of the final report (issue 7): a case with 5 opinions of about 2 pages each,
//! rendered in English and Arabic (shaping, bidi, layout, PDF with the embedded font), as the
//! outbox worker does, plus storing both PDFs in a local blob store.
//!
//! Baselines measured in the same run: the same report with 1 opinion, and writing the same
//! text as a plain-text blob (no typesetting).
//!
//! Run: `cargo bench -p sop-server --bench report` (plain timing loop, `harness = false`).
//! Writes the two PDFs to `target/report-bench/` and prints their page counts (`pdfinfo`).

// A benchmark panics on any failure, like a test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sop_core::command::{Concordance, OpinionContent};
use sop_core::ids::ReportId;
use sop_core::lang::Lang;
use sop_server::blobs::BlobStore;
use sop_server::report::{Named, PrintedOpinion, ReportData, Stamp, render};
use std::time::{Duration, Instant};

const EN: &str = "The patient presented with intermittent chest pain radiating to the left arm, \
    worse on exertion and relieved by rest. The electrocardiogram shows sinus rhythm with \
    occasional premature ventricular complexes; the echocardiogram shows preserved ejection \
    fraction and mild mitral regurgitation. ";
const AR: &str = "يعاني المريض من ألم متقطع في الصدر يمتد إلى الذراع الأيسر، ويزداد مع الجهد \
    ويخف مع الراحة. يظهر تخطيط القلب نظمًا جيبيًا مع انقباضات بطينية مبكرة متفرقة، ويظهر \
    تخطيط صدى القلب كسرًا قذفيًا محفوظًا وقلسًا تاجيًا خفيفًا. ";

/// About `paragraphs` paragraphs of alternating English and Arabic.
fn text(paragraphs: usize) -> String {
    (0..paragraphs)
        .map(|i| {
            if i % 2 == 0 {
                EN.repeat(3)
            } else {
                AR.repeat(3)
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn person(id: &str) -> Named {
    Named {
        user_id: id.to_owned(),
        name_en: format!("Dr {id}"),
        name_ar: format!("د. {id}"),
        specialties_en: vec!["Cardiology".to_owned()],
        specialties_ar: vec!["أمراض القلب".to_owned()],
    }
}

fn data(opinions: usize) -> ReportData {
    ReportData {
        case_id: uuid::Uuid::now_v7(),
        case_reference: "SOP-1A2B3C4D".to_owned(),
        submitted_at: Some(chrono::Utc::now()),
        completed_at: Some(chrono::Utc::now()),
        patient: person("P1"),
        patient_age: Some(54),
        patient_gender: None,
        review_type_en: "Standard review".to_owned(),
        review_type_ar: "مراجعة قياسية".to_owned(),
        category_en: "Cardiology".to_owned(),
        category_ar: "أمراض القلب".to_owned(),
        coordinator: Some(person("C1")),
        opinions: (0..opinions)
            .map(|i| PrintedOpinion {
                doctor: person(&format!("S{i}")),
                submitted_at: Some(chrono::Utc::now()),
                opinion: OpinionContent {
                    summary: text(2),
                    diagnosis: text(4),
                    recommendations: text(4),
                    concordance: Some(Concordance::MinorDifference),
                    free_text: text(2),
                },
            })
            .collect(),
        summary: text(3),
    }
}

fn stamp(data: &ReportData) -> Stamp {
    let report_id = ReportId::new_v7();
    let content_sha256 = data.content_sha256();
    Stamp {
        report_id,
        verify_url: sop_server::report::verify_url(
            "https://sop.example",
            report_id,
            &content_sha256,
        ),
        content_sha256,
    }
}

/// Median of `runs` timings of `f`.
fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn pages(path: &std::path::Path) -> String {
    std::process::Command::new("pdfinfo")
        .arg(path)
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Pages:"))
                .map(|l| l.trim_start_matches("Pages:").trim().to_owned())
        })
        .unwrap_or_else(|| "? (pdfinfo missing)".to_owned())
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::local(dir.path().join("blobs"));
    let five = data(5);
    let one = data(1);
    let (s5, s1) = (stamp(&five), stamp(&one));

    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/report-bench");
    std::fs::create_dir_all(&out).unwrap();
    for lang in [Lang::En, Lang::Ar] {
        let pdf = render(&five, &s5, lang).unwrap();
        let path = out.join(format!("report-5x2-{}.pdf", lang.pick("en", "ar")));
        std::fs::write(&path, &pdf).unwrap();
        println!(
            "{}: {} bytes, {} pages",
            path.display(),
            pdf.len(),
            pages(&path)
        );
    }

    // Warm-up (font parsing happens once per process).
    let _ = render(&one, &s1, Lang::En);
    let runs = 15;
    let full = median(runs, || {
        let en = render(&five, &s5, Lang::En).unwrap();
        let ar = render(&five, &s5, Lang::Ar).unwrap();
        runtime.block_on(async {
            store.put(&en).await.unwrap();
            store.put(&ar).await.unwrap();
        });
    });
    let render_only = median(runs, || {
        render(&five, &s5, Lang::En).unwrap();
        render(&five, &s5, Lang::Ar).unwrap();
    });
    let one_opinion = median(runs, || {
        render(&one, &s1, Lang::En).unwrap();
        render(&one, &s1, Lang::Ar).unwrap();
    });
    let plain = median(runs, || {
        let json = serde_json::to_vec(&five).unwrap();
        runtime.block_on(async { store.put(&json).await.unwrap() });
    });
    println!(
        "report, 5 opinions x ~2 pages, en + ar, rendered and stored: {full:?} (median of {runs})"
    );
    println!("  rendering only (en + ar): {render_only:?}");
    println!(
        "  baseline, 1 opinion (en + ar): {one_opinion:?}  ratio {:.1}x",
        render_only.as_secs_f64() / one_opinion.as_secs_f64()
    );
    println!(
        "  baseline, same content as a plain-text blob: {plain:?}  ratio {:.0}x",
        full.as_secs_f64() / plain.as_secs_f64()
    );
    assert!(
        full < Duration::from_secs(1),
        "the report must take under 1 s"
    );
}
