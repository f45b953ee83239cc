//! What the server's ingest path costs in the core, as the document's history grows (issue #4,
//! docs/PERFORMANCE.md "Fourth round"): one device types into the intake's medical history as
//! the load generator does (4 characters per change, 49 changes per push, the text kept under
//! 4 000 characters by cutting the oldest 1 000), and at several history sizes the bench times
//!
//! - `apply_remote_batch` of 1, 10 and 49 of the next push's changes: one `apply_changes` call
//!   walks the whole history of the text it touches, so the cost follows the history, hardly
//!   the batch;
//! - the server's own edit (`UpdateIntake`'s patch of the age) the way it was made before the
//!   fourth round (typed setter on a copy, then its change applied to another copy with
//!   `apply_remote_batch`) and now (`apply_local_edit` on the document);
//! - a copy of the document (`clone`), which the server makes once per applied batch.
//!
//! Baseline, in the same run: the same 49 changes applied to a fresh document (no history).
//!
//! Run: `cargo bench -p sop-core --bench apply`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use sop_core::case::Intake;
use sop_core::content::{
    ActorId, ChangeHash, ContentDoc, RemoteChange, apply_local_edit, apply_remote_batch, intake,
};
use sop_core::ids::CaseId;
use sop_core::rules::Limits;
use std::time::{Duration, Instant};

const CHANGES_PER_PUSH: usize = 49;
const CHARS_PER_CHANGE: usize = 4;
const MAX_TEXT_CHARS: usize = 4_000;
const TRIM_CHARS: usize = 1_000;
const RUNS: usize = 15;
/// Pushes already applied when each row is measured.
const AT_PUSHES: [usize; 5] = [0, 10, 50, 100, 200];

/// A device typing into the medical history, one change per few characters.
struct Typist {
    doc: ContentDoc,
    text: String,
    chars: usize,
    typed: usize,
}

impl Typist {
    fn push(&mut self) -> Vec<(Vec<u8>, Vec<ChangeHash>)> {
        const CORPUS: &[u8] = b"The patient reports intermittent chest pain radiating to the arm. ";
        (0..CHANGES_PER_PUSH)
            .map(|_| {
                let before = self.doc.heads();
                for _ in 0..CHARS_PER_CHANGE {
                    self.text
                        .push(char::from(CORPUS[self.typed % CORPUS.len()]));
                    self.typed += 1;
                }
                self.chars += CHARS_PER_CHANGE;
                if self.chars >= MAX_TEXT_CHARS {
                    self.text = self.text.chars().skip(TRIM_CHARS).collect();
                    self.chars -= TRIM_CHARS;
                }
                intake::set_medical_history(&mut self.doc, &self.text).unwrap();
                (self.doc.save_after(&before), before)
            })
            .collect()
    }
}

fn ops(changes: &[(Vec<u8>, Vec<ChangeHash>)]) -> Vec<RemoteChange<'_>> {
    changes
        .iter()
        .map(|(bytes, heads)| RemoteChange {
            bytes,
            heads_before: heads,
        })
        .collect()
}

/// The median of `RUNS` runs of `f`.
fn median(mut f: impl FnMut()) -> Duration {
    let mut samples: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    samples.sort();
    samples[RUNS / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}

fn main() {
    let case_id = CaseId(uuid::Uuid::now_v7());
    let initial = Intake::default();
    let limits = Limits::default();
    let mut typist = Typist {
        doc: intake::initial(case_id, &initial, ActorId::random()).unwrap(),
        text: String::new(),
        chars: 0,
        typed: 0,
    };
    let server_actor = ActorId::from(&[7u8; 16][..]);
    let fresh = intake::initial(case_id, &initial, server_actor.clone()).unwrap();
    let mut server = fresh.clone();
    let mut baseline = None;
    println!(
        "| Changes applied before | Apply 1 | Apply 10 | Apply 49 | Edit, before (copy + apply) | Edit, now (in place) | Copy |"
    );
    println!("|---|---|---|---|---|---|---|");
    for pushes in 0..=AT_PUSHES[AT_PUSHES.len() - 1] {
        let next = typist.push();
        let next = ops(&next);
        if AT_PUSHES.contains(&pushes) {
            let apply =
                |n: usize| median(|| drop(apply_remote_batch(&server, &next[..n], &limits)));
            let (one, ten, all) = (apply(1), apply(10), apply(CHANGES_PER_PUSH));
            let age = Some(i32::try_from(pushes % 90).unwrap());
            let before = median(|| {
                let mut copy = server.clone();
                let heads = server.heads();
                intake::set_age(&mut copy, age).unwrap();
                let bytes = copy.save_after(&heads);
                let change = RemoteChange {
                    bytes: &bytes,
                    heads_before: &heads,
                };
                assert!(apply_remote_batch(&server, &[change], &limits).results[0].is_ok());
            });
            let now = median(|| {
                let mut doc = server.clone();
                apply_local_edit(&mut doc, |d| intake::set_age(d, age), &limits).unwrap();
            });
            let copy = median(|| drop(server.clone()));
            let fresh_apply = *baseline.get_or_insert(all);
            println!(
                "| {} | {} ms | {} ms | {} ms ({:.1}× the fresh document) | {} ms | {} ms (copy included) | {} ms |",
                pushes * CHANGES_PER_PUSH,
                ms(one),
                ms(ten),
                ms(all),
                all.as_secs_f64() / fresh_apply.as_secs_f64(),
                ms(before),
                ms(now),
                ms(copy),
            );
        }
        server = apply_remote_batch(&server, &next, &limits).doc;
    }
}
