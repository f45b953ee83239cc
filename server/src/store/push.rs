//! Pushed operations, applied exactly once (DESIGN.md §3 "Push", docs/adr/0004 "Exactly once"),
//! a whole push in **one** transaction (docs/adr/0005, "Ingest path").
//!
//! The operations are cut into units: a command is a unit; consecutive content changes of one
//! document are one unit, applied with one `apply_remote_batch` (each op still answered as if
//! it had come alone). A unit the core refuses as a whole is undone (a savepoint) and its ops
//! get the refusal, with its audit row; the units after it still run, in order.
//!
//! Each operation's answer is recorded in `sync_ops` under (user, device, op id) **in the
//! transaction of its effect**: an op is acknowledged only once its effect is committed, and a
//! retried op finds its answer instead of running again. Answers replay as they were, except
//! that an op applied before answers `duplicate` (nothing was applied this time); an op id
//! repeated inside one push answers like a retry of the first.
//!
//! Two concurrent pushes of the same op (a retry racing its original) both run, but only one
//! can record the answer: the other's insert finds the row (on PostgreSQL it waits for the first
//! transaction to commit), its whole transaction rolls back, and it runs again, now finding the
//! recorded answers.

use super::audit::{AuditEntry, AuditMeta};
use super::cases::{Executed, execute_in};
use super::docs::{Permission, Write, update_intake_in, write_in};
use super::feed_log::FeedBatch;
use super::sql::Tx;
use super::{MAX_ATTEMPTS, Store, StoreError, read_tx};
use chrono::{DateTime, Utc};
use sop_core::Refusal;
use sop_core::actor::Actor;
use sop_core::command::Command;
use sop_core::content::{DocRef, RemoteChange};
use sop_core::ids::CaseId;
use sop_core::rules::Limits;
use sop_core::sync::v1::Outcome;
use std::borrow::Cow;
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

/// One pushed operation as the sync endpoint prepared it.
#[derive(Clone, Debug)]
pub enum PushOp<'a> {
    /// A content change of one document.
    Change {
        doc_ref: DocRef,
        change: RemoteChange<'a>,
    },
    /// A command on a case.
    Command {
        case_id: CaseId,
        command: Cow<'a, Command>,
    },
    /// Answered from the request alone (a `doc_id` that is not the derived one, a file not
    /// uploaded): not recorded, since a retry gets the same answer anyway, or succeeds later.
    Answered(Outcome),
}

/// An operation of a push, with its id.
#[derive(Clone, Debug)]
pub struct PushItem<'a> {
    pub op_id: Uuid,
    pub op: PushOp<'a>,
}

/// What a push did.
#[derive(Clone, Debug)]
pub struct Pushed {
    /// One answer per item, in order.
    pub outcomes: Vec<Outcome>,
    /// A command went through now and asked for outbound calls (wake the outbox).
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

fn to_json(outcome: &Outcome) -> Result<String, StoreError> {
    serde_json::to_string(outcome).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The answers recorded for `ops` of this pusher, as they are given again.
async fn recorded<T: Tx>(
    tx: &mut T,
    pusher: &Pusher<'_>,
    ops: &[Uuid],
) -> Result<HashMap<Uuid, Outcome>, StoreError> {
    tx.sync_results(pusher.user, pusher.device, ops)
        .await?
        .into_iter()
        .map(|(op, json)| {
            serde_json::from_value::<Outcome>(json.0)
                .map(|o| (op, replayed(o)))
                .map_err(|e| StoreError::Corrupt(format!("sync op {op}: {e}")))
        })
        .collect()
}

/// A unit of a push: what one step applies.
enum Unit<'p> {
    /// Consecutive changes of one document: (item index, change).
    Changes {
        doc_ref: &'p DocRef,
        ops: Vec<(usize, RemoteChange<'p>)>,
    },
    Command {
        index: usize,
        case_id: CaseId,
        command: &'p Command,
    },
}

/// Cuts the items still to run into units (see the module docs).
fn units<'p>(items: &'p [PushItem<'p>], to_run: &[usize]) -> Vec<Unit<'p>> {
    let mut out: Vec<Unit<'p>> = Vec::new();
    for &i in to_run {
        match &items[i].op {
            PushOp::Change { doc_ref, change } => match out.last_mut() {
                Some(Unit::Changes { doc_ref: d, ops }) if *d == doc_ref => ops.push((i, *change)),
                _ => out.push(Unit::Changes {
                    doc_ref,
                    ops: vec![(i, *change)],
                }),
            },
            PushOp::Command { case_id, command } => out.push(Unit::Command {
                index: i,
                case_id: *case_id,
                command,
            }),
            PushOp::Answered(_) => {}
        }
    }
    out
}

/// Runs one command (the intake's text goes to its document too).
async fn run_command<T: Tx>(
    tx: &mut T,
    pusher: &Pusher<'_>,
    case_id: CaseId,
    command: &Command,
    now: DateTime<Utc>,
    feed: &mut FeedBatch,
) -> Result<Executed, StoreError> {
    let Pusher {
        actor,
        meta,
        limits,
        ..
    } = *pusher;
    match command {
        Command::UpdateIntake { patch } => {
            update_intake_in(tx, case_id, patch, actor, meta, limits, now, feed).await
        }
        _ => execute_in(tx, case_id, command, actor, meta, limits, now, feed).await,
    }
}

/// Applies one unit; `Err(Refused)` refuses it as a whole.
async fn run_unit<T: Tx>(
    tx: &mut T,
    pusher: &Pusher<'_>,
    unit: &Unit<'_>,
    now: DateTime<Utc>,
    feed: &mut FeedBatch,
    effects: &mut bool,
) -> Result<Vec<Outcome>, StoreError> {
    match unit {
        Unit::Changes { doc_ref, ops } => {
            let changes: Vec<RemoteChange<'_>> = ops.iter().map(|(_, c)| *c).collect();
            let written = write_in(
                tx,
                doc_ref,
                Write::Pushed(&changes),
                Permission::Sync,
                pusher.actor,
                pusher.meta,
                pusher.limits,
                now,
                feed,
            )
            .await?;
            Ok(written
                .results
                .into_iter()
                .map(|r| r.map_or_else(Outcome::from, |()| Outcome::Applied))
                .collect())
        }
        Unit::Command {
            case_id, command, ..
        } => {
            let done = run_command(tx, pusher, *case_id, command, now, feed).await?;
            *effects |= !done.decision.effects.is_empty();
            Ok(vec![Outcome::Applied])
        }
    }
}

impl Unit<'_> {
    /// The items this unit answers.
    fn indexes(&self) -> Vec<usize> {
        match self {
            Unit::Changes { ops, .. } => ops.iter().map(|(i, _)| *i).collect(),
            Unit::Command { index, .. } => vec![*index],
        }
    }

    /// The audit row of a refusal of the whole unit.
    fn refusal_entry(&self, refusal: &Refusal) -> AuditEntry<'_> {
        let (action, case_id) = match self {
            Unit::Changes { doc_ref, .. } => ("push_content", doc_ref.case_id),
            Unit::Command {
                case_id, command, ..
            } => (command.name(), *case_id),
        };
        AuditEntry {
            action,
            case_id: Some(case_id.0),
            resource_id: None,
            outcome: format!("refused:{}", refusal.code),
        }
    }
}

/// One attempt at a whole push, inside `tx` (see the module docs).
async fn push_in<T: Tx>(
    tx: &mut T,
    pusher: &Pusher<'_>,
    items: &[PushItem<'_>],
    now: DateTime<Utc>,
    feed: &mut FeedBatch,
) -> Result<Pushed, PushError> {
    let ids: Vec<Uuid> = items.iter().map(|item| item.op_id).collect();
    let mut known = recorded(tx, pusher, &ids).await?;
    let mut answers: Vec<Option<Outcome>> = vec![None; items.len()];
    let mut first_seen: HashMap<Uuid, usize> = HashMap::new();
    let mut repeats: Vec<(usize, usize)> = Vec::new();
    let mut to_run = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if let Some(answer) = known.remove(&item.op_id) {
            answers[i] = Some(answer);
        } else if let Some(&first) = first_seen.get(&item.op_id) {
            repeats.push((i, first));
        } else {
            first_seen.insert(item.op_id, i);
            match &item.op {
                PushOp::Answered(outcome) => answers[i] = Some(outcome.clone()),
                _ => to_run.push(i),
            }
        }
    }
    let mut effects = false;
    let mut to_record: Vec<(Uuid, String)> = Vec::new();
    for unit in units(items, &to_run) {
        let outcomes = match unit {
            // A change unit refuses only before it writes anything (case, permission).
            Unit::Changes { .. } => run_unit(tx, pusher, &unit, now, feed, &mut effects).await,
            // A command may be refused after a first write (its document edit): a savepoint.
            Unit::Command { .. } => {
                tx.savepoint().await?;
                let mark = feed.mark();
                let mut unit_effects = false;
                match run_unit(tx, pusher, &unit, now, feed, &mut unit_effects).await {
                    Ok(outcomes) => {
                        tx.release_savepoint().await?;
                        feed.keep(mark);
                        effects |= unit_effects;
                        Ok(outcomes)
                    }
                    Err(e) => {
                        tx.rollback_to_savepoint().await?;
                        feed.rewind(mark);
                        Err(e)
                    }
                }
            }
        };
        let outcomes = match outcomes {
            Ok(outcomes) => outcomes,
            Err(StoreError::Refused(refusal)) => {
                feed.audit(pusher.meta, unit.refusal_entry(&refusal), now);
                vec![Outcome::from(refusal); unit.indexes().len()]
            }
            Err(e) => return Err(e.into()),
        };
        for (i, outcome) in unit.indexes().into_iter().zip(outcomes) {
            to_record.push((items[i].op_id, to_json(&outcome)?));
            answers[i] = Some(outcome);
        }
    }
    let stored = tx
        .insert_sync_results_bulk(pusher.user, pusher.device, &to_record, now)
        .await?;
    if stored != to_record.len() as u64 {
        return Err(PushError::Recorded);
    }
    for (i, first) in repeats {
        answers[i] = answers[first].clone().map(replayed);
    }
    Ok(Pushed {
        // Every item got an answer above; `duplicate` is the harmless fallback.
        outcomes: answers
            .into_iter()
            .map(|a| a.unwrap_or(Outcome::Duplicate))
            .collect(),
        effects,
    })
}

impl Store {
    /// Applies a push in one transaction (see the module docs), retried as a whole when another
    /// request changed a case first or recorded one of its ops first.
    pub async fn push(
        &self,
        pusher: &Pusher<'_>,
        items: &[PushItem<'_>],
        now: DateTime<Utc>,
    ) -> Result<Pushed, StoreError> {
        for _ in 0..MAX_ATTEMPTS {
            let result: Result<Pushed, PushError> = super::feed_tx!(self, now, |tx, feed| {
                push_in(&mut tx, pusher, items, now, &mut feed).await
            });
            match result {
                Ok(pushed) => return Ok(pushed),
                Err(PushError::Store(StoreError::Conflict) | PushError::Recorded) => continue,
                Err(PushError::Store(e)) => return Err(e),
            }
        }
        Err(StoreError::Conflict)
    }

    /// A stored blob's size and content type (a document pushed by reference must exist).
    pub async fn blob_info(&self, sha256: &str) -> Result<Option<(i64, String)>, StoreError> {
        Ok(read_tx!(&self.db, |tx| tx.blob(sha256).await)?)
    }
}
