//! `POST /sync/v1/pull`: the feed after a device's cursor, as its user may see it now.
//!
//! A cursor of 0, one beyond the feed head (the server's database was replaced) or one more
//! than [`SyncSettings::far_behind`](super::SyncSettings) positions behind gets whole cases
//! instead of history: a paged snapshot of every case the user sees (record plus document
//! snapshots), the catalog, the latest notifications and, for a device that was far behind,
//! revokes of the cases it may still hold. The snapshot is consistent with the feed head taken
//! on its first page, which becomes the cursor once the last page is sent, so nothing that
//! happens meanwhile is missed.
//!
//! Every pull that hands out case records or content is audited, one row per case (SPEC §8:
//! every read of case details is).

use super::cursor::{self, Position};
use crate::api::{RequestMeta, case_details};
use crate::error::AppError;
use crate::state::AppState;
use crate::store::{AuditEntry, FeedViewer, Pulled, SnapshotExtras};
use sop_core::actor::Actor;
use sop_core::content::ChangeHash;
use sop_core::lang::Lang;
use sop_core::sync::v1::{Bytes, Cursor, FeedItem, PullRequest, PullResponse};
use std::collections::BTreeSet;

/// The audit action of a pull that handed out case data.
const AUDIT_ACTION: &str = "sync_pull";

/// Who pulls.
#[derive(Clone, Copy, Debug)]
pub struct Puller<'a> {
    pub viewer: &'a FeedViewer,
    pub actor: &'a Actor,
    pub lang: Lang,
    pub meta: &'a RequestMeta,
}

/// Answers a pull (see the module docs).
pub async fn pull(
    state: &AppState,
    puller: Puller<'_>,
    req: &PullRequest,
) -> Result<PullResponse, AppError> {
    let settings = &state.settings.sync;
    let limit = req
        .limit
        .unwrap_or(settings.default_pull_limit)
        .clamp(1, settings.max_pull_limit);
    let response = match cursor::decode(req.cursor) {
        Position::Snapshot { head, offset } => {
            snapshot(state, puller, Some(head), offset, SnapshotExtras::none()).await?
        }
        Position::Feed(after) => {
            let head = state.store.feed_head().await?;
            if after == 0 || after > head || head - after > settings.far_behind {
                let extras = SnapshotExtras {
                    catalog_and_inbox: true,
                    revoked_after: (after > 0 && after <= head).then_some(after),
                };
                snapshot(state, puller, None, 0, extras).await?
            } else {
                let page = state
                    .store
                    .pull_feed(puller.viewer, after, i64::from(limit))
                    .await?;
                let items = items(state, puller, page.items).await?;
                PullResponse {
                    items,
                    cursor: feed_cursor(page.end)?,
                    more: page.more,
                }
            }
        }
    };
    Ok(response)
}

/// One page of a snapshot.
async fn snapshot(
    state: &AppState,
    puller: Puller<'_>,
    head: Option<i64>,
    offset: i64,
    extras: SnapshotExtras,
) -> Result<PullResponse, AppError> {
    let settings = &state.settings.sync;
    // A head a cursor cannot carry: no paging, the whole snapshot at once.
    let paged = head.is_none_or(|h| h <= cursor::MAX_SNAPSHOT_HEAD);
    let max_cases = if paged {
        settings.snapshot_cases
    } else {
        i64::MAX
    };
    let page = state
        .store
        .pull_snapshot(puller.viewer, head, offset, max_cases, extras)
        .await?;
    let next = match page.next {
        Some(offset) => Some(
            cursor::encode(Position::Snapshot {
                head: page.head,
                offset,
            })
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("snapshot position out of range")))?,
        ),
        None => None,
    };
    let items = items(state, puller, page.items).await?;
    Ok(match next {
        Some(cursor) => PullResponse {
            items,
            cursor,
            more: true,
        },
        None => PullResponse {
            items,
            cursor: feed_cursor(page.head)?,
            more: page.current > page.head,
        },
    })
}

fn feed_cursor(position: i64) -> Result<Cursor, AppError> {
    cursor::encode(Position::Feed(position))
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("feed position {position} out of range")))
}

/// The wire items of a page, with case records shaped for the puller, audited.
async fn items(
    state: &AppState,
    puller: Puller<'_>,
    pulled: Vec<Pulled>,
) -> Result<Vec<FeedItem>, AppError> {
    let mut read_cases = BTreeSet::new();
    let mut out = Vec::with_capacity(pulled.len());
    for item in pulled {
        out.push(match item {
            Pulled::Case(case) => {
                read_cases.insert(case.case_id);
                let view = case_details(state, &case, puller.actor, puller.lang).await?;
                FeedItem::CaseRecord {
                    case_id: case.case_id,
                    record: serde_json::to_value(view)
                        .map_err(|e| AppError::Internal(anyhow::Error::new(e)))?,
                }
            }
            Pulled::Content {
                doc_ref,
                data,
                heads,
            } => {
                read_cases.insert(doc_ref.case_id);
                FeedItem::Content {
                    doc_id: doc_ref.doc_id(),
                    case_id: doc_ref.case_id,
                    kind: doc_ref.kind,
                    data: Bytes(data),
                    heads: parse_heads(&heads)?,
                }
            }
            Pulled::Notification {
                case_id,
                notification,
            } => FeedItem::Notification {
                case_id,
                notification,
            },
            Pulled::Catalog(catalog) => FeedItem::Catalog { catalog },
            Pulled::Granted(case_id) => FeedItem::AccessGranted { case_id },
            Pulled::Revoked(case_id) => FeedItem::AccessRevoked { case_id },
        });
    }
    if !read_cases.is_empty() {
        let meta = puller.meta.audit(puller.actor);
        let entries = read_cases.into_iter().map(|case_id| AuditEntry {
            action: AUDIT_ACTION,
            case_id: Some(case_id.0),
            resource_id: None,
            outcome: "ok".to_owned(),
        });
        state
            .store
            .audit_all(&meta, entries.collect(), state.now())
            .await?;
    }
    Ok(out)
}

fn parse_heads(heads: &[String]) -> Result<Vec<ChangeHash>, AppError> {
    heads
        .iter()
        .map(|h| {
            h.parse()
                .map_err(|_| AppError::Internal(anyhow::anyhow!("stored heads do not parse")))
        })
        .collect()
}
