//! Pushed operations, applied exactly once (DESIGN.md §3 "Push", docs/adr/0004 "Exactly once").
//!
//! Each operation's answer is recorded in `sync_ops` under (user, device, op id) **in the
//! transaction of its effect**: an op is acknowledged only once its effect is committed, and a
//! retried op finds its answer instead of running again. Answers replay as they were, except
//! that an op applied before answers `duplicate` (nothing was applied this time).
//!
//! Two concurrent pushes of the same op (a retry racing its original) both run, but only one
//! can record the answer: the other's insert finds the row (on PostgreSQL it waits for the first
//! transaction to commit), its whole transaction rolls back, and it answers the recorded result.
//! A refused op is recorded (with its audit row) in a transaction of its own, since the refused
//! work was rolled back.

use super::audit::{AuditEntry, AuditMeta};
use super::cases::{Executed, execute_in};
use super::docs::{Permission, Write, update_intake_in, write_in};
use super::sql::Tx;
use super::{MAX_ATTEMPTS, Store, StoreError, read_tx, write_tx};
use chrono::{DateTime, Utc};
use sop_core::Refusal;
use sop_core::actor::Actor;
use sop_core::command::Command;
use sop_core::content::{DocRef, RemoteChange};
use sop_core::ids::CaseId;
use sop_core::rules::Limits;
use sop_core::sync::v1::Outcome;
use std::collections::HashMap;
use uuid::Uuid;

/// Who pushes, from which device, acting as whom.
#[derive(Clone, Copy, Debug)]
pub struct Pusher<'a> {
    pub user: &'a str,
    pub device: Uuid,
    pub actor: &'a Actor,
    pub meta: &'a AuditMeta,
    pub limits: &'a Limits,
}

/// A pushed content operation.
#[derive(Clone, Copy, Debug)]
pub struct ChangeRef<'a> {
    pub op_id: Uuid,
    pub change: RemoteChange<'a>,
}

/// The answer to a pushed command.
#[derive(Clone, Debug)]
pub struct PushOutcome {
    pub outcome: Outcome,
    /// The command went through now and asked for outbound calls (wake the outbox).
    pub effects: bool,
}

/// Why a push transaction did not commit.
#[derive(Debug)]
enum PushError {
    Store(StoreError),
    /// Another push recorded an answer for one of the ops first.
    Recorded,
}

impl From<StoreError> for PushError {
    fn from(e: StoreError) -> Self {
        PushError::Store(e)
    }
}

impl From<sqlx::Error> for PushError {
    fn from(e: sqlx::Error) -> Self {
        PushError::Store(e.into())
    }
}

/// A recorded answer as it is given again.
fn replayed(outcome: Outcome) -> Outcome {
    match outcome {
        Outcome::Applied => Outcome::Duplicate,
        other => other,
    }
}

fn to_json(outcome: &Outcome) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(outcome).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Records `outcome` for each op of `ops`, in one statement; [`PushError::Recorded`] when
/// one of them has an answer already (the whole transaction is then rolled back).
async fn record<T: Tx>(
    tx: &mut T,
    pusher: &Pusher<'_>,
    ops: &[Uuid],
    outcomes: &[Outcome],
    now: DateTime<Utc>,
) -> Result<(), PushError> {
    let rows = ops
        .iter()
        .zip(outcomes)
        .map(|(op, outcome)| Ok((*op, to_json(outcome)?.to_string())))
        .collect::<Result<Vec<_>, StoreError>>()?;
    let recorded = tx
        .insert_sync_results_bulk(pusher.user, pusher.device, &rows, now)
        .await?;
    if recorded == rows.len() as u64 {
        Ok(())
    } else {
        Err(PushError::Recorded)
    }
}

impl Store {
    /// The answers recorded for `ops` of this user and device, as they are given again.
    pub async fn recorded_results(
        &self,
        pusher: &Pusher<'_>,
        ops: &[Uuid],
    ) -> Result<HashMap<Uuid, Outcome>, StoreError> {
        let rows = read_tx!(&self.db, |tx| {
            tx.sync_results(pusher.user, pusher.device, ops).await
        })?;
        rows.into_iter()
            .map(|(op, json)| {
                serde_json::from_value::<Outcome>(json.0)
                    .map(|o| (op, replayed(o)))
                    .map_err(|e| StoreError::Corrupt(format!("sync op {op}: {e}")))
            })
            .collect()
    }

    /// The recorded answers of all `ops`, or `None` if one has none.
    async fn all_recorded(
        &self,
        pusher: &Pusher<'_>,
        ops: &[Uuid],
    ) -> Result<Option<Vec<Outcome>>, StoreError> {
        let mut recorded = self.recorded_results(pusher, ops).await?;
        Ok(ops.iter().map(|op| recorded.remove(op)).collect())
    }

    /// Records a refusal of `ops` (their work was rolled back) with its audit row; answers
    /// the recorded answers if another push recorded them first.
    async fn record_refusal(
        &self,
        pusher: &Pusher<'_>,
        ops: &[Uuid],
        refusal: &Refusal,
        action: &str,
        case_id: CaseId,
        now: DateTime<Utc>,
    ) -> Result<Vec<Outcome>, StoreError> {
        let outcome = Outcome::from(refusal.clone());
        let entry = AuditEntry {
            action,
            case_id: Some(case_id.0),
            resource_id: None,
            outcome: format!("refused:{}", refusal.code),
        };
        // The answers first, the audit row last: like every writer, this takes the audit
        // chain's lock only at the end, so no transaction ever waits for an op's row while
        // holding the lock that the op's other writer needs to commit.
        let result: Result<(), PushError> = write_tx!(&self.db, |tx| {
            let outcomes = vec![outcome.clone(); ops.len()];
            match record(&mut tx, pusher, ops, &outcomes, now).await {
                Ok(()) => super::audit::append(&mut tx, pusher.meta, entry, now)
                    .await
                    .map_err(PushError::from),
                Err(e) => Err(e),
            }
        });
        match result {
            Ok(()) => Ok(vec![outcome; ops.len()]),
            Err(PushError::Store(e)) => Err(e),
            Err(PushError::Recorded) => Ok(self
                .all_recorded(pusher, ops)
                .await?
                .unwrap_or_else(|| vec![outcome; ops.len()])),
        }
    }

    /// Runs a pushed command once (see the module docs).
    pub async fn push_command(
        &self,
        pusher: &Pusher<'_>,
        op_id: Uuid,
        case_id: CaseId,
        command: &Command,
        now: DateTime<Utc>,
    ) -> Result<PushOutcome, StoreError> {
        for _ in 0..MAX_ATTEMPTS {
            let result: Result<Executed, PushError> = super::feed_tx!(self, now, |tx, feed| {
                let executed = match command {
                    // The intake text lives in its document: edit it there too.
                    Command::UpdateIntake { patch } => {
                        update_intake_in(
                            &mut tx,
                            case_id,
                            patch,
                            pusher.actor,
                            pusher.meta,
                            pusher.limits,
                            now,
                            &mut feed,
                        )
                        .await
                    }
                    _ => {
                        execute_in(
                            &mut tx,
                            case_id,
                            command,
                            pusher.actor,
                            pusher.meta,
                            pusher.limits,
                            now,
                            &mut feed,
                        )
                        .await
                    }
                };
                match executed {
                    Ok(done) => record(&mut tx, pusher, &[op_id], &[Outcome::Applied], now)
                        .await
                        .map(|()| done),
                    Err(e) => Err(PushError::Store(e)),
                }
            });
            return match result {
                Ok(done) => Ok(PushOutcome {
                    outcome: Outcome::Applied,
                    effects: !done.decision.effects.is_empty(),
                }),
                Err(PushError::Store(StoreError::Conflict)) => continue,
                Err(PushError::Store(StoreError::Refused(refusal))) => {
                    let ops = [op_id];
                    let mut answers = self
                        .record_refusal(pusher, &ops, &refusal, command.name(), case_id, now)
                        .await?;
                    Ok(PushOutcome {
                        outcome: answers.pop().unwrap_or_else(|| refusal.into()),
                        effects: false,
                    })
                }
                Err(PushError::Store(e)) => Err(e),
                Err(PushError::Recorded) => Ok(PushOutcome {
                    outcome: self
                        .all_recorded(pusher, &[op_id])
                        .await?
                        .and_then(|mut v| v.pop())
                        .unwrap_or(Outcome::Duplicate),
                    effects: false,
                }),
            };
        }
        Err(StoreError::Conflict)
    }

    /// Applies consecutive pushed changes of one document in one transaction, with one answer
    /// per op exactly as if they had been pushed one by one (see the module docs).
    pub async fn push_changes(
        &self,
        pusher: &Pusher<'_>,
        doc_ref: &DocRef,
        ops: &[ChangeRef<'_>],
        now: DateTime<Utc>,
    ) -> Result<Vec<Outcome>, StoreError> {
        let ids: Vec<Uuid> = ops.iter().map(|o| o.op_id).collect();
        let changes: Vec<RemoteChange<'_>> = ops.iter().map(|o| o.change).collect();
        for _ in 0..MAX_ATTEMPTS {
            let result: Result<Vec<Outcome>, PushError> = super::feed_tx!(self, now, |tx, feed| {
                let written = write_in(
                    &mut tx,
                    doc_ref,
                    Write::Pushed(&changes),
                    Permission::Sync,
                    pusher.actor,
                    pusher.meta,
                    pusher.limits,
                    now,
                    &mut feed,
                )
                .await;
                match written {
                    Ok(written) => {
                        let outcomes: Vec<Outcome> = written
                            .results
                            .into_iter()
                            .map(|r| r.map_or_else(Outcome::from, |()| Outcome::Applied))
                            .collect();
                        record(&mut tx, pusher, &ids, &outcomes, now)
                            .await
                            .map(|()| outcomes)
                    }
                    Err(e) => Err(PushError::Store(e)),
                }
            });
            return match result {
                Ok(outcomes) => Ok(outcomes),
                Err(PushError::Store(StoreError::Conflict)) => continue,
                Err(PushError::Store(StoreError::Refused(refusal))) => {
                    self.record_refusal(
                        pusher,
                        &ids,
                        &refusal,
                        "push_content",
                        doc_ref.case_id,
                        now,
                    )
                    .await
                }
                Err(PushError::Store(e)) => Err(e),
                Err(PushError::Recorded) => match self.all_recorded(pusher, &ids).await? {
                    Some(answers) => Ok(answers),
                    None => continue,
                },
            };
        }
        Err(StoreError::Conflict)
    }

    /// A stored blob's size and content type (a document pushed by reference must exist).
    pub async fn blob_info(&self, sha256: &str) -> Result<Option<(i64, String)>, StoreError> {
        Ok(read_tx!(&self.db, |tx| tx.blob(sha256).await)?)
    }
}
