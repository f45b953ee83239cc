//! `POST /sync/v1/push`: a device's operations, applied in order, one answer each.
//!
//! The operations are cut into units: a command is a unit; consecutive content changes of one
//! document are one unit, applied in one transaction with one `apply_remote_batch` (the store
//! still answers each op as if it had come alone). A refused op does not stop the ones after
//! it. Before anything runs, ops answered before (a retried push) get their recorded answer;
//! an op id repeated inside the request gets the answer of its first occurrence.
//!
//! Refusals that depend only on the request (a `doc_id` that is not the one derived from
//! `case_id` and `kind`, a referenced file whose upload is not complete: `upload_incomplete`) are answered without being
//! recorded: a retry gets the same answer anyway, or succeeds once the file is there.

use crate::api::RequestMeta;
use crate::error::AppError;
use crate::state::AppState;
use crate::store::{ChangeRef, Pusher, StoreError};
use crate::sync::SyncSettings;
use sop_core::actor::Actor;
use sop_core::command::{Command, NewDocument};
use sop_core::content::DocRef;
use sop_core::sync::v1::{ChangeOp, CommandOp, Op, OpResult, Outcome, PushRequest, PushResponse};
use sop_core::{Refusal, RefusalCode};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

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

/// Consecutive change ops of one document, waiting to be applied.
struct Group<'r> {
    doc_ref: DocRef,
    ops: Vec<(usize, &'r ChangeOp)>,
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
    let ids: Vec<Uuid> = req.ops.iter().map(|op| op.op_id().0).collect();
    let recorded = state
        .store
        .recorded_results(&pusher, &ids)
        .await
        .map_err(store_error)?;
    let mut answers: Vec<Option<Outcome>> = vec![None; req.ops.len()];
    let mut first_seen: HashMap<Uuid, usize> = HashMap::new();
    let mut repeats: Vec<(usize, usize)> = Vec::new();
    let mut group: Option<Group<'_>> = None;
    for (i, op) in req.ops.iter().enumerate() {
        let id = op.op_id().0;
        if let Some(answer) = recorded.get(&id) {
            answers[i] = Some(answer.clone());
            continue;
        }
        if let Some(&first) = first_seen.get(&id) {
            repeats.push((i, first));
            continue;
        }
        first_seen.insert(id, i);
        match op {
            Op::Change(change) => match change.doc_ref() {
                Err(refusal) => answers[i] = Some(refusal.into()),
                Ok(doc_ref) => {
                    if group.as_ref().is_some_and(|g| g.doc_ref != doc_ref) {
                        flush(state, &pusher, group.take(), &mut answers).await?;
                    }
                    group
                        .get_or_insert_with(|| Group {
                            doc_ref,
                            ops: Vec::new(),
                        })
                        .ops
                        .push((i, change));
                }
            },
            Op::Command(command) => {
                flush(state, &pusher, group.take(), &mut answers).await?;
                answers[i] = Some(run_command(state, &pusher, command).await?);
            }
        }
    }
    flush(state, &pusher, group.take(), &mut answers).await?;
    for (i, first) in repeats {
        answers[i] = answers[first].clone().map(|a| match a {
            Outcome::Applied => Outcome::Duplicate,
            other => other,
        });
    }
    let results = req
        .ops
        .iter()
        .zip(answers)
        .map(|(op, answer)| OpResult {
            op_id: op.op_id(),
            // Every op got an answer above; `duplicate` is the harmless fallback.
            outcome: answer.unwrap_or(Outcome::Duplicate),
        })
        .collect();
    Ok(PushResponse { results })
}

/// Applies a group of change ops, if there is one.
async fn flush(
    state: &AppState,
    pusher: &Pusher<'_>,
    group: Option<Group<'_>>,
    answers: &mut [Option<Outcome>],
) -> Result<(), AppError> {
    let Some(group) = group else {
        return Ok(());
    };
    let ops: Vec<ChangeRef<'_>> = group
        .ops
        .iter()
        .map(|(_, op)| ChangeRef {
            op_id: op.op_id.0,
            change: op.remote(),
        })
        .collect();
    let outcomes = state
        .store
        .push_changes(pusher, &group.doc_ref, &ops, state.now())
        .await
        .map_err(store_error)?;
    for ((i, _), outcome) in group.ops.iter().zip(outcomes) {
        answers[*i] = Some(outcome);
    }
    Ok(())
}

/// Runs one command op.
async fn run_command(
    state: &AppState,
    pusher: &Pusher<'_>,
    op: &CommandOp,
) -> Result<Outcome, AppError> {
    let mut command = Cow::Borrowed(&op.command);
    if let Command::UploadDocument { document } = &op.command {
        match uploaded(state, pusher.user, document).await? {
            Ok(stored) => command = Cow::Owned(Command::UploadDocument { document: stored }),
            Err(refusal) => return Ok(refusal.into()),
        }
    }
    let done = state
        .store
        .push_command(pusher, op.op_id.0, op.case_id, &command, state.now())
        .await
        .map_err(store_error)?;
    if done.effects {
        state.outbox_wake.notify();
    }
    Ok(done.outcome)
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
