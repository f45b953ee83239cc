//! Catch-up: a device that is many changes behind pulls until the server says `more = false`.
//!
//! A patient has a draft and two phones. The reader phone syncs once (first sync, whole case)
//! and goes quiet; the writer phone then types `--catchup-changes` small changes into the
//! medical history and pushes them in batches of `--batch`. The reader then pulls from its
//! stale cursor, page after page, applying the page's content to its document in one
//! `load_incremental` (TECH-NOTES: never one change at a time), and must end with every change
//! of the writer. A second stale reader applies item by item, to show what that costs, and a
//! fresh device (cursor 0) goes through the snapshot path. Every pull sequence is timed wall
//! clock, apply included.

use crate::device::Typist;
use crate::setup::{Api, decode};
use anyhow::{Context, bail, ensure};
use sop_core::case::Intake;
use sop_core::content::{ActorId, ContentDoc, DocId, DocKind};
use sop_core::sync::v1::{Cursor, FeedItem, Outcome, PullRequest, PullResponse, PushResponse};
use std::time::{Duration, Instant};

/// One pull sequence.
#[derive(Clone, Debug, Default)]
pub struct PullRun {
    /// Wall clock from the first request to the last page applied.
    pub seconds: f64,
    /// Of which: applying content items to the device's document.
    pub apply_seconds: f64,
    pub pages: usize,
    pub items: usize,
    pub content_items: usize,
    /// Bytes of content data received.
    pub content_bytes: usize,
    /// Bytes of response bodies received.
    pub response_bytes: usize,
}

/// The catch-up measurement.
#[derive(Clone, Debug, Default)]
pub struct CatchUp {
    pub changes: usize,
    pub pushes: usize,
    pub push_seconds: f64,
    pub push_max: Duration,
    /// The reader, from its stale cursor, applying each page at once.
    pub stale: PullRun,
    /// The same, applying each content item on its own.
    pub stale_per_item: PullRun,
    /// A new device, from cursor 0 (snapshot path).
    pub fresh: PullRun,
}

/// How a reader applies the content of a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Apply {
    /// Everything of the document in the page, in one `load_incremental`.
    PerPage,
    /// One `load_incremental` per content item.
    PerItem,
}

/// A device that only pulls, holding the one document it cares about.
struct Reader {
    doc: ContentDoc,
    cursor: Cursor,
}

impl Reader {
    fn apply(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.doc
            .load_incremental(bytes)
            .map_err(|r| anyhow::anyhow!("applying pulled content: {}", r.code))
    }

    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            doc: ContentDoc::new(DocKind::Intake, ActorId::random())
                .map_err(|r| anyhow::anyhow!("genesis: {}", r.code))?,
            cursor: Cursor(0),
        })
    }

    /// Pulls until `more` is false, applying the content items of `doc_id`.
    async fn pull_all(
        &mut self,
        api: &Api,
        token: &str,
        doc_id: DocId,
        apply: Apply,
    ) -> anyhow::Result<PullRun> {
        let mut run = PullRun::default();
        let started = Instant::now();
        loop {
            let body = serde_json::to_vec(&PullRequest {
                cursor: self.cursor,
                limit: None,
            })?;
            let (status, bytes) = api.post_raw("/sync/v1/pull", token, None, body).await?;
            run.response_bytes += bytes.len();
            let page: PullResponse = decode("/sync/v1/pull", status, &bytes)?;
            run.pages += 1;
            run.items += page.items.len();
            let applying = Instant::now();
            let mut pending = Vec::new();
            for item in &page.items {
                if let FeedItem::Content {
                    doc_id: id, data, ..
                } = item
                {
                    run.content_items += 1;
                    run.content_bytes += data.0.len();
                    if *id == doc_id {
                        pending.extend_from_slice(&data.0);
                        if apply == Apply::PerItem {
                            self.apply(&pending)?;
                            pending.clear();
                        }
                    }
                }
            }
            self.apply(&pending)?;
            run.apply_seconds += applying.elapsed().as_secs_f64();
            self.cursor = page.cursor;
            if !page.more {
                break;
            }
            if run.pages > 100_000 {
                bail!("the pull sequence never ended");
            }
        }
        run.seconds = started.elapsed().as_secs_f64();
        Ok(run)
    }
}

/// Runs the catch-up scenario on the draft `case_id` (created with `initial`) of the patient
/// whose token is `token`.
pub async fn run(
    api: &Api,
    token: &str,
    writer: &mut Typist,
    changes: usize,
    batch: usize,
) -> anyhow::Result<CatchUp> {
    let doc_id = writer.doc_id();
    let mut reader = Reader::new()?;
    reader
        .pull_all(api, token, doc_id, Apply::PerPage)
        .await
        .context("the reader's first sync")?;
    let mut item_reader = Reader::new()?;
    item_reader
        .pull_all(api, token, doc_id, Apply::PerItem)
        .await
        .context("the second reader's first sync")?;

    // The writer types and pushes.
    let batch = batch.clamp(1, 500);
    let mut out = CatchUp {
        changes,
        ..CatchUp::default()
    };
    let device = writer.device_id.0.to_string();
    let mut left = changes;
    let started = Instant::now();
    while left > 0 {
        let n = left.min(batch);
        let b = writer.batch(n, 0)?;
        let sent = Instant::now();
        let (status, bytes) = api
            .post_raw("/sync/v1/push", token, Some(&device), b.body)
            .await?;
        out.push_max = out.push_max.max(sent.elapsed());
        let resp: PushResponse = decode("/sync/v1/push", status, &bytes)?;
        ensure!(
            resp.results.iter().all(|r| r.outcome == Outcome::Applied),
            "a catch-up push was not applied: {:?}",
            resp.results.iter().find(|r| r.outcome != Outcome::Applied)
        );
        out.pushes += 1;
        left -= n;
    }
    out.push_seconds = started.elapsed().as_secs_f64();

    out.stale = reader
        .pull_all(api, token, doc_id, Apply::PerPage)
        .await
        .context("the stale reader's catch-up")?;
    out.stale_per_item = item_reader
        .pull_all(api, token, doc_id, Apply::PerItem)
        .await
        .context("the second stale reader's catch-up")?;
    ensure!(
        item_reader.doc.heads() == reader.doc.heads(),
        "the two stale readers hold different documents"
    );
    for head in writer.heads() {
        ensure!(
            reader.doc.has_change(&head),
            "the reader lacks a change of the writer after catching up"
        );
    }
    let mut fresh = Reader::new()?;
    out.fresh = fresh
        .pull_all(api, token, doc_id, Apply::PerPage)
        .await
        .context("the fresh device's first sync")?;
    ensure!(
        fresh.doc.heads() == reader.doc.heads(),
        "the fresh device and the caught-up reader hold different documents"
    );
    Ok(out)
}

/// The intake a catch-up case is created with.
pub fn initial_intake() -> Intake {
    Intake {
        medical_history: "Catch-up case. ".to_owned(),
        ..Intake::default()
    }
}
