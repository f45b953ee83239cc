//! Running a command on a case: load, decide with `sop-core`, apply, and store the new state,
//! its events, notifications, outbox rows, audit row and feed rows (the case row, its
//! notifications, access changes; docs/adr/0004) in one transaction. Commands that submit a text
//! (T2/T3, T14, T15) take it from its content document and freeze the document's heads there.

use super::audit::{AuditEntry, AuditMeta};
use super::docs;
use super::feed_log::FeedBatch;
use super::rows::{NotificationRow, OutboxRow};
use super::sql::{CaseFilter, Tx};
use super::{Page, Paged, Store, StoreError, read_tx};
use chrono::{DateTime, Utc};
use sop_core::actor::Actor;
use sop_core::case::case_reference;
use sop_core::catalog::Catalog;
use sop_core::command::Command;
use sop_core::event::{Decision, Effect, EventKind, Recipient};
use sop_core::ids::{CaseId, CategoryId, PaymentId, ReviewTypeId};
use sop_core::rules::{self, Context, Limits};
use sop_core::{Case, Refusal};
use sqlx::types::Json;
use uuid::Uuid;

/// The recipient key of notifications meant for every admin.
pub const ADMINS_RECIPIENT: &str = "*admins";

/// A command that went through.
#[derive(Clone, Debug)]
pub struct Executed {
    /// The case after the command.
    pub case: Case,
    pub decision: Decision,
}

/// The review type, category and mappings a decision on this case may consult.
async fn catalog_for<T: Tx>(
    tx: &mut T,
    rt: ReviewTypeId,
    dc: CategoryId,
) -> Result<Catalog, StoreError> {
    Ok(Catalog {
        review_types: tx.review_type(rt.0).await?.into_iter().collect(),
        categories: tx.category(dc.0).await?.into_iter().collect(),
        mappings: tx.mappings_of(dc.0).await?,
    })
}

/// Loads a case and the version it was stored at.
pub(crate) async fn load<T: Tx>(tx: &mut T, id: CaseId) -> Result<Option<(Case, i64)>, StoreError> {
    Ok(tx
        .case_row(id.0)
        .await?
        .map(|row| (row.state.0, row.version)))
}

/// Loads a case to change it, holding it until the transaction ends.
pub(crate) async fn load_for_update<T: Tx>(
    tx: &mut T,
    id: CaseId,
) -> Result<Option<(Case, i64)>, StoreError> {
    Ok(tx
        .case_row_for_update(id.0)
        .await?
        .map(|row| (row.state.0, row.version)))
}

/// [`load_for_update`] inside a write transaction: the row is read (and locked) once, later
/// units of the transaction take the case as it last read or wrote it ([`super::held`]).
pub(crate) async fn locked_case<T: Tx>(
    tx: &mut T,
    id: CaseId,
    feed: &mut FeedBatch,
) -> Result<Option<(Case, i64)>, StoreError> {
    if let Some(held) = feed.held.case(id.0) {
        return Ok(Some(held));
    }
    let found = load_for_update(tx, id).await?;
    if let Some((case, version)) = &found {
        feed.held.set_case(case.clone(), *version);
    }
    Ok(found)
}

/// The key that makes an outbound call happen once however often the effect is recorded.
fn idempotency_key(case_id: CaseId, effect: &Effect) -> String {
    match effect {
        Effect::CreatePayment { payment_id, .. } => format!("create_payment:{payment_id}"),
        Effect::RequestRefund { payment_id, .. } => format!("refund:{payment_id}"),
        Effect::RequestInvoice { payment_id } => format!("invoice:{payment_id}"),
        Effect::GenerateReport => format!("report:{case_id}"),
    }
}

fn effect_kind(effect: &Effect) -> &'static str {
    match effect {
        Effect::CreatePayment { .. } => "create_payment",
        Effect::RequestRefund { .. } => "refund",
        Effect::RequestInvoice { .. } => "invoice",
        Effect::GenerateReport => "generate_report",
    }
}

/// Decides and stores one command inside `tx`, adding its feed rows to `feed`. A draft is
/// decided with the intake its document holds ([`docs::with_current_intake`]).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn execute_in<T: Tx>(
    tx: &mut T,
    case_id: CaseId,
    command: &Command,
    actor: &Actor,
    meta: &AuditMeta,
    limits: &Limits,
    now: DateTime<Utc>,
    feed: &mut FeedBatch,
) -> Result<Executed, StoreError> {
    let current = match locked_case(tx, case_id, feed).await? {
        Some((case, version)) => Some((docs::with_current_intake(tx, case, feed).await?, version)),
        None => None,
    };
    if let Command::CreateCase {
        case_id: created, ..
    } = command
        && *created != case_id
    {
        return Err(Refusal::field("case_id").into());
    }
    let (rt, dc) = match (&current, command) {
        (Some((case, _)), _) => (case.rt_id, case.dc_id),
        (None, Command::CreateCase { rt_id, dc_id, .. }) => (*rt_id, *dc_id),
        (None, _) => return Err(Refusal::new(sop_core::RefusalCode::CaseNotFound).into()),
    };
    // Most commands never read the catalog: the core decides them on an empty one.
    let catalog = if command.reads_catalog() {
        catalog_for(tx, rt, dc).await?
    } else {
        Catalog::default()
    };
    let ctx = Context {
        catalog: &catalog,
        limits,
        now,
    };
    let before = current.as_ref().map(|(case, _)| case);
    let submitted = docs::document_command(tx, before, command, actor, feed).await?;
    let command = &*submitted;
    let (after, decision) = rules::execute(before, command, actor, &ctx)?;
    let Some(case) = after else {
        return Err(StoreError::Corrupt("a command left no case".into()));
    };

    let old_version = current.as_ref().map_or(0, |(_, v)| *v);
    let new_version = old_version + decision.events.len() as i64;
    if !decision.events.is_empty() {
        let stored = if current.is_some() {
            tx.update_case(&case, old_version, new_version).await?
        } else {
            tx.insert_case(&case, new_version).await?
        };
        if !stored {
            return Err(StoreError::Conflict);
        }
        feed.held.set_case(case.clone(), new_version);
        for (i, event) in decision.events.iter().enumerate() {
            tx.insert_event(case.case_id.0, old_version + i as i64 + 1, event)
                .await?;
            if let EventKind::PaymentOpened { payment_id, .. } = &event.kind {
                tx.insert_payment(payment_id.0, case.case_id.0, event.at)
                    .await?;
            }
        }
        // The doctors' rows depend only on the assignments, the coordinator and the status
        // (core `sees_case`): most events (intake edits, document requests) change none.
        let same_doctors = before.is_some_and(|b| {
            b.assignments == case.assignments
                && b.coordinator_id == case.coordinator_id
                && b.status == case.status
        });
        if !same_doctors {
            tx.replace_case_doctors(&case).await?;
        }
        feed.case_changed(&case);
        if let Command::CreateCase { intake, .. } = command {
            docs::create_intake(tx, &case, intake, feed, now).await?;
        }
        docs::freeze_for(tx, command, actor, &case, feed, now).await?;
    }
    store_notifications(tx, &decision, feed, now).await?;
    for effect in &decision.effects {
        tx.insert_outbox(&OutboxRow {
            outbox_id: Uuid::now_v7(),
            case_id: Some(case.case_id.0),
            kind: effect_kind(effect).to_owned(),
            payload: Json(
                serde_json::to_value(effect).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            ),
            idempotency_key: idempotency_key(case.case_id, effect),
            status: "pending".to_owned(),
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
            created_at: now,
            done_at: None,
        })
        .await?;
    }
    feed.audit(
        meta,
        AuditEntry {
            action: command.name(),
            case_id: Some(case.case_id.0),
            resource_id: None,
            outcome: "ok".to_owned(),
        },
        now,
    );
    if !decision.events.is_empty() {
        feed.access_changes(before, &case);
    }
    Ok(Executed { case, decision })
}

/// Stores the decision's notifications with their texts in both languages, and their feed rows.
async fn store_notifications<T: Tx>(
    tx: &mut T,
    decision: &Decision,
    feed: &mut FeedBatch,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    for n in &decision.notifications {
        let (title, body) = n.kind.text(&case_reference(n.case_id));
        let recipient = match &n.recipient {
            Recipient::User(user) => user.to_string(),
            Recipient::Admins => ADMINS_RECIPIENT.to_owned(),
        };
        let kind = serde_json::to_value(n.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let row = NotificationRow {
            notification_id: Uuid::now_v7(),
            recipient,
            case_id: n.case_id.0,
            kind,
            title_en: title.en,
            title_ar: title.ar,
            body_en: body.en,
            body_ar: body.ar,
            created_at: now,
            read_at: None,
        };
        tx.insert_notification(&row).await?;
        feed.notification(&row)?;
        enqueue_push(tx, &row, n, now).await?;
    }
    Ok(())
}

/// Queues the push delivery of a stored notification (SPEC §7: push and in-app inbox), in the
/// same transaction, once per notification (its key is the notification id).
async fn enqueue_push<T: Tx>(
    tx: &mut T,
    row: &NotificationRow,
    notification: &sop_core::Notification,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let delivery = crate::push::PushDelivery {
        notification_id: row.notification_id,
        recipient: row.recipient.clone(),
        case_id: notification.case_id,
        kind: notification.kind,
    };
    tx.insert_outbox(&OutboxRow {
        outbox_id: Uuid::now_v7(),
        case_id: Some(row.case_id),
        kind: crate::push::KIND.to_owned(),
        payload: Json(
            serde_json::to_value(&delivery).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        ),
        idempotency_key: delivery.idempotency_key(),
        status: "pending".to_owned(),
        attempts: 0,
        next_attempt_at: now,
        last_error: None,
        created_at: now,
        done_at: None,
    })
    .await?;
    Ok(())
}

impl Store {
    /// Runs `command` from `actor` on case `case_id`. A refusal is audited and returned as
    /// [`StoreError::Refused`]; nothing else of it is stored.
    pub async fn execute(
        &self,
        case_id: CaseId,
        command: &Command,
        actor: &Actor,
        meta: &AuditMeta,
        limits: &Limits,
        now: DateTime<Utc>,
    ) -> Result<Executed, StoreError> {
        let result = self
            .retrying(|| async {
                super::feed_tx!(self, now, |tx, feed| {
                    execute_in(
                        &mut tx, case_id, command, actor, meta, limits, now, &mut feed,
                    )
                    .await
                })
            })
            .await;
        self.audit_refusal(result, command, case_id, meta, now)
            .await
    }

    /// Passes `result` through, auditing it first if the core refused `command`.
    pub(crate) async fn audit_refusal<O>(
        &self,
        result: Result<O, StoreError>,
        command: &Command,
        case_id: CaseId,
        meta: &AuditMeta,
        now: DateTime<Utc>,
    ) -> Result<O, StoreError> {
        if let Err(StoreError::Refused(refusal)) = &result {
            let entry = AuditEntry {
                action: command.name(),
                case_id: Some(case_id.0),
                resource_id: None,
                outcome: format!("refused:{}", refusal.code),
            };
            self.audit(meta, entry, now).await?;
        }
        result
    }

    /// Whether `command` would go through now, deciding it with the core without storing
    /// anything (used before expensive side effects such as storing an upload's bytes). A
    /// refusal is audited like one from [`Store::execute`]; the real `execute` decides again.
    pub async fn precheck(
        &self,
        case_id: CaseId,
        command: &Command,
        actor: &Actor,
        meta: &AuditMeta,
        limits: &Limits,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let decided = read_tx!(&self.db, |tx| {
            let current = load(&mut tx, case_id).await?;
            match current {
                None => Err(StoreError::Refused(Refusal::new(
                    sop_core::RefusalCode::CaseNotFound,
                ))),
                Some((case, _)) => {
                    let catalog = if command.reads_catalog() {
                        catalog_for(&mut tx, case.rt_id, case.dc_id).await?
                    } else {
                        Catalog::default()
                    };
                    let ctx = Context {
                        catalog: &catalog,
                        limits,
                        now,
                    };
                    rules::decide(Some(&case), command, actor, &ctx)
                        .map(|_| ())
                        .map_err(StoreError::Refused)
                }
            }
        });
        if let Err(StoreError::Refused(refusal)) = &decided {
            let entry = AuditEntry {
                action: command.name(),
                case_id: Some(case_id.0),
                resource_id: None,
                outcome: format!("refused:{}", refusal.code),
            };
            self.audit(meta, entry, now).await?;
        }
        decided
    }

    /// The current state of a case, if it exists.
    pub async fn case(&self, id: CaseId) -> Result<Option<Case>, StoreError> {
        read_tx!(&self.db, |tx| match load(&mut tx, id).await? {
            Some((case, _)) => docs::read_current_intake(&mut tx, case).await.map(Some),
            None => Ok(None),
        })
    }

    /// The case a payment attempt belongs to.
    pub async fn case_of_payment(&self, id: PaymentId) -> Result<Option<CaseId>, StoreError> {
        let found = read_tx!(&self.db, |tx| tx.case_of_payment(id.0).await)?;
        Ok(found.map(CaseId))
    }

    /// Every event of a case, oldest first.
    pub async fn case_events(&self, id: CaseId) -> Result<Vec<sop_core::Event>, StoreError> {
        Ok(read_tx!(&self.db, |tx| tx.case_events(id.0).await)?)
    }

    /// A page of cases matching `filter`, newest first.
    pub async fn list_cases(
        &self,
        filter: &CaseFilter,
        page: Page,
    ) -> Result<Paged<Case>, StoreError> {
        let (items, total) = read_tx!(&self.db, |tx| tx.list_cases(filter, page.window()).await)?;
        Ok(Paged { items, total, page })
    }
}
