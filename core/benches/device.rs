//! The local calls the apps make on every screen, with 500 cases on the device (issue #5):
//! list the cases, open one, type one character into a text field (an Automerge change saved
//! with its queued op in one SQLite transaction). Target: each under 5 ms.
//!
//! Baseline, measured in the same run on the same file: one durable one-row SQLite insert
//! (`BEGIN IMMEDIATE; INSERT; COMMIT` in WAL), the floor of any user action that is kept.
//!
//! Run: `cargo bench -p sop-core --features device --bench device`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use sop_core::device::{Device, DeviceConfig, IntakeEdit, Role};
use std::time::{Duration, Instant};

const CASES: usize = 500;
const RUNS: usize = 300;
const RT: &str = "0195a000-0000-7000-8000-00000000a001";
const DC: &str = "0195a000-0000-7000-8000-00000000d001";

fn stats(name: &str, mut samples: Vec<Duration>, baseline: Option<Duration>) -> Duration {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize];
    let (p50, p95, max) = (at(0.5), at(0.95), at(1.0));
    let ratio = baseline
        .map(|b| {
            format!(
                "  ({:.1}× baseline p50)",
                p50.as_secs_f64() / b.as_secs_f64()
            )
        })
        .unwrap_or_default();
    println!(
        "{name:<34} p50 {:>8.3} ms  p95 {:>8.3} ms  max {:>8.3} ms{ratio}",
        p50.as_secs_f64() * 1e3,
        p95.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3
    );
    p50
}

fn time(mut f: impl FnMut(usize)) -> Vec<Duration> {
    (0..RUNS)
        .map(|i| {
            let t = Instant::now();
            f(i);
            t.elapsed()
        })
        .collect()
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bench.db");
    let device = Device::open(DeviceConfig {
        db_path: db.to_string_lossy().into_owned(),
        server_url: "http://127.0.0.1:9".into(),
        user_id: "P1".into(),
        role: Role::Patient,
        token: String::new(),
        lang: "en".into(),
    })
    .unwrap();
    // 500 cases, each with a realistic intake (a couple of kB of history).
    let history = "Persistent cough since January, worse at night; CT in March. ".repeat(30);
    let mut ids = Vec::with_capacity(CASES);
    let setup = Instant::now();
    for _ in 0..CASES {
        let id = device
            .create_case(
                RT.into(),
                DC.into(),
                IntakeEdit {
                    patient_age: Some(50),
                    patient_gender: Some("female".into()),
                    medical_history: Some(history.clone()),
                    questions: Some("Is surgery needed?".into()),
                },
                false,
            )
            .unwrap();
        ids.push(id);
    }
    println!(
        "setup: {CASES} cases created in {:.2} s",
        setup.elapsed().as_secs_f64()
    );

    // Baseline: one durable one-row insert on a second connection to the same file.
    let conn = rusqlite::Connection::open(&db).unwrap();
    // The same durability setting as the store's own connection.
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL; CREATE TABLE IF NOT EXISTS bench_baseline (v INTEGER)",
    )
    .unwrap();
    let baseline = stats(
        "baseline: 1-row insert + commit",
        time(|i| {
            conn.execute_batch(&format!(
                "BEGIN IMMEDIATE; INSERT INTO bench_baseline VALUES ({i}); COMMIT;"
            ))
            .unwrap();
        }),
        None,
    );

    let list = stats(
        "list_cases (500)",
        time(|_| {
            assert_eq!(device.list_cases().unwrap().len(), CASES);
        }),
        Some(baseline),
    );
    let open = stats(
        "get_case + intake",
        time(|i| {
            let id = &ids[(i * 7919) % CASES];
            device.get_case(id.clone()).unwrap();
            device.intake(id.clone()).unwrap();
        }),
        Some(baseline),
    );
    // Typing: the same case, one more character each time (the app sends the whole field).
    let case = ids[CASES / 2].clone();
    let mut text = history.clone();
    let typing = stats(
        "type one character (intake)",
        time(|_| {
            text.push('x');
            device
                .edit_intake(
                    case.clone(),
                    IntakeEdit {
                        medical_history: Some(text.clone()),
                        ..IntakeEdit::default()
                    },
                )
                .unwrap();
        }),
        Some(baseline),
    );
    let worst = list.max(open).max(typing);
    println!(
        "target < 5 ms each: {}",
        if worst < Duration::from_millis(5) {
            "met (p50)"
        } else {
            "NOT met (p50)"
        }
    );
}
