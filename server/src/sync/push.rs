//! `POST /sync/v1/push`: a device's operations, applied in order, one answer each, in one
//! transaction of the store (`store::push`: units, exactly-once answers, refusals).
//!
//! Here each op is prepared: refusals that depend only on the request (a `doc_id` that is not
//! the one derived from `case_id` and `kind`, a referenced file whose upload is not complete:
//! `upload_incomplete`) are answered without being recorded: a retry gets the same answer anyway,
//! or succeeds once the file is there. Pushes are bounded by the [`PushGate`].

use crate::api::RequestMeta;
use crate::error::AppError;
use crate::state::AppState;
use crate::store::{PushItem, PushOp, Pusher, StoreError};
use crate::sync::SyncSettings;
use sop_core::actor::Actor;
use sop_core::command::{Command, NewDocument};
use sop_core::sync::v1::{CommandOp, Op, OpResult, PushRequest, PushResponse};
use sop_core::{Refusal, RefusalCode};
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bounds the pushes applied at once (overload answers 503 with `Retry-After` instead of
/// queueing on the database pool until its acquire timeout turns into a 500).
///
/// A push holds one pool connection at a time, so more pushes than connections only queue
/// inside the pool; here they queue in order, for at most `SyncSettings::push_wait`.
#[derive(Clone, Debug)]
pub struct PushGate {
    slots: Arc<Semaphore>,
    wait: Duration,
}

impl PushGate {
    pub fn new(settings: &SyncSettings) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(settings.max_concurrent_pushes.max(1))),
            wait: settings.push_wait,
        }
    }

    /// A slot, or `Unavailable` (503) when none frees up in time.
    async fn enter(&self) -> Result<OwnedSemaphorePermit, AppError> {
        match tokio::time::timeout(self.wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(AppError::Unavailable(
                "sync push: no slot free in time".to_owned(),
            )),
        }
    }
}

/// A store error, with a database pool that stayed exhausted answered as overload (503).
fn store_error(e: StoreError) -> AppError {
    match e {
        StoreError::Db(sqlx::Error::PoolTimedOut) => {
            AppError::Unavailable("sync push: database pool timed out".to_owned())
        }
        other => other.into(),
    }
}

/// Who pushes.
#[derive(Clone, Copy, Debug)]
pub struct Sender<'a> {
    pub user: &'a str,
    pub actor: &'a Actor,
    pub meta: &'a RequestMeta,
}

/// Applies a push (see the module docs).
pub async fn push(
    state: &AppState,
    sender: Sender<'_>,
    req: &PushRequest,
) -> Result<PushResponse, AppError> {
    req.check_limits(&state.settings.limits)?;
    let _slot = state.push_gate.enter().await?;
    let audit = sender.meta.audit(sender.actor);
    let pusher = Pusher {
        user: sender.user,
        device: req.device_id.0,
        actor: sender.actor,
        meta: &audit,
        limits: &state.settings.limits,
    };
    let mut items = Vec::with_capacity(req.ops.len());
    for op in &req.ops {
        items.push(PushItem {
            op_id: op.op_id().0,
            op: prepare(state, sender.user, op).await?,
        });
    }
    let pushed = state
        .store
        .push(&pusher, &items, state.now())
        .await
        .map_err(store_error)?;
    if pushed.effects {
        state.outbox_wake.notify();
    }
    state.metrics.pushed(&pushed.outcomes);
    let results = req
        .ops
        .iter()
        .zip(pushed.outcomes)
        .map(|(op, outcome)| OpResult {
            op_id: op.op_id(),
            outcome,
        })
        .collect();
    Ok(PushResponse { results })
}

/// An op as the store applies it, or its answer when the request alone decides it.
async fn prepare<'r>(state: &AppState, user: &str, op: &'r Op) -> Result<PushOp<'r>, AppError> {
    Ok(match op {
        Op::Change(change) => match change.doc_ref() {
            Ok(doc_ref) => PushOp::Change {
                doc_ref,
                change: change.remote(),
            },
            Err(refusal) => PushOp::Answered(refusal.into()),
        },
        Op::Command(CommandOp {
            case_id, command, ..
        }) => {
            let command = match command {
                Command::UploadDocument { document } => {
                    match uploaded(state, user, document).await? {
                        Ok(stored) => Cow::Owned(Command::UploadDocument { document: stored }),
                        Err(refusal) => return Ok(PushOp::Answered(refusal.into())),
                    }
                }
                other => Cow::Borrowed(other),
            };
            PushOp::Command {
                case_id: *case_id,
                command,
            }
        }
    })
}

/// A document attached by a pushed command must reference a file this user finished uploading
/// (`crate::uploads`); its size and content type are the stored ones (detected from the
/// bytes), whatever the device said.
async fn uploaded(
    state: &AppState,
    user: &str,
    document: &NewDocument,
) -> Result<Result<NewDocument, Refusal>, AppError> {
    if !crate::blobs::is_sha256_key(&document.sha256) {
        return Ok(Err(Refusal::new(RefusalCode::Sha256Invalid)));
    }
    if !crate::uploads::uploaded_by(state, user, &document.sha256).await? {
        return Ok(Err(Refusal::new(RefusalCode::UploadIncomplete)));
    }
    Ok(match state.store.blob_info(&document.sha256).await? {
        Some((size, content_type)) => Ok(NewDocument {
            size,
            content_type,
            ..document.clone()
        }),
        None => Err(Refusal::new(RefusalCode::UploadIncomplete)),
    })
}
