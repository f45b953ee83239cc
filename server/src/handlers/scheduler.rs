//! `/scheduler/*`: triggers of the scheduled jobs of SPEC §7 for an external cron, and the jobs
//! themselves ([`run_draft_reminders`], [`run_overdue_alerts`]) for any in-process timer.
//!
//! [`spawn`] runs both jobs inside the server every [`RUN_EVERY`]; the HTTP triggers run them on
//! demand. A job lists the candidate cases by status and runs its command on each as [`Actor::System`];
//! the core decides whether the notice is due and keeps it at most once per case, ever (so
//! several instances or overlapping runs are safe). The claim is the case row itself: the store
//! takes it `FOR UPDATE` on PostgreSQL (`BEGIN IMMEDIATE` on SQLite) before deciding, and the
//! "sent" mark (`draft_reminder_sent_at`, `overdue_alert_sent_at`) commits in the same
//! transaction as the inbox notification and its push delivery row, so a second instance
//! waiting on the lock sees the mark and is refused. "Now" is the state's clock
//! (`AppState::now`), injectable in tests. The trigger needs an admin token
//! (`snr_dash`): see `docs/adr/0002-scheduler-trigger-auth.md`.
//! (`/scheduler/run-reconciliation` is routed with the payments, in `handlers::payments`.)
//!
//! The timer also removes abandoned resumable uploads ([`crate::uploads::remove_expired_uploads`];
//! no HTTP trigger): housekeeping that needs no case and no command.

use crate::api::RequestMeta;
use crate::auth::AdminAuth;
use crate::envelope::{Envelope, ok};
use crate::error::AppError;
use crate::extract::JsonOrEmpty;
use crate::state::AppState;
use crate::store::{AuditMeta, CaseFilter, Page, StoreError};
use axum::Router;
use axum::extract::State;
use axum::routing::post;
use serde::{Deserialize, Serialize};
use sop_core::actor::Actor;
use sop_core::case::{Case, Status};
use sop_core::catalog::Catalog;
use sop_core::command::Command;
use sop_core::ids::CaseId;
use sop_core::rules::{Context, decide};

/// How often the server runs the jobs itself. The draft reminder waits 24 h and the overdue
/// alert a day or more, so a few minutes' delay is of no consequence.
pub const RUN_EVERY: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// The in-process timer of the jobs; stops when dropped.
#[derive(Debug)]
pub struct Timer(tokio::task::JoinHandle<()>);

impl Drop for Timer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts running both jobs, then the removal of expired uploads, every `every` ([`RUN_EVERY`]
/// by default; the first run at once), on the state's clock. Several server instances may each
/// run it: the core sends each notice once per case, and an upload is removed once.
pub fn spawn(state: AppState, every: std::time::Duration) -> Timer {
    Timer(tokio::spawn(async move {
        let meta = RequestMeta::default().audit(&Actor::System);
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            for (job, result) in [
                ("draft reminders", run_draft_reminders(&state, &meta).await),
                ("overdue alerts", run_overdue_alerts(&state, &meta).await),
            ] {
                match result {
                    Ok(r) if r.sent > 0 => tracing::info!(job, sent = r.sent, "scheduled job ran"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(job, error = %e, "scheduled job failed"),
                }
            }
            let job = "expired uploads";
            match crate::uploads::remove_expired_uploads(&state).await {
                Ok(0) => {}
                Ok(removed) => tracing::info!(job, removed, "scheduled job ran"),
                Err(e) => tracing::warn!(job, error = %e, "scheduled job failed"),
            }
        }
    }))
}

/// The routes of `/scheduler`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/run-draft-reminders", post(draft_reminders))
        .route("/run-overdue-alerts", post(overdue_alerts))
}

/// The body of a trigger: nothing is needed; an empty body or `{}` are both fine.
#[derive(Debug, Default, Deserialize)]
pub struct RunRequest {}

/// What one run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RunReport {
    /// Notices sent.
    pub sent: u64,
    /// Candidate cases with nothing to send (not due yet, already sent, or changed meanwhile).
    pub skipped: u64,
}

/// `POST /scheduler/run-draft-reminders`: reminds patients of drafts left unedited (24 h by
/// default) → `{sent, skipped}`.
pub async fn draft_reminders(
    State(state): State<AppState>,
    AdminAuth(user): AdminAuth,
    meta: RequestMeta,
    JsonOrEmpty(_req): JsonOrEmpty<RunRequest>,
) -> Result<Envelope<RunReport>, AppError> {
    let report = run_draft_reminders(&state, &meta.audit(&Actor::System)).await?;
    tracing::info!(triggered_by = %user.sub, sent = report.sent, skipped = report.skipped, "draft reminders run");
    Ok(ok(report))
}

/// `POST /scheduler/run-overdue-alerts`: alerts the coordinator and the specialists still due of
/// cases past `due_at` → `{sent, skipped}`.
pub async fn overdue_alerts(
    State(state): State<AppState>,
    AdminAuth(user): AdminAuth,
    meta: RequestMeta,
    JsonOrEmpty(_req): JsonOrEmpty<RunRequest>,
) -> Result<Envelope<RunReport>, AppError> {
    let report = run_overdue_alerts(&state, &meta.audit(&Actor::System)).await?;
    tracing::info!(triggered_by = %user.sub, sent = report.sent, skipped = report.skipped, "overdue alerts run");
    Ok(ok(report))
}

/// The draft-reminder job: every case in `draft`.
pub async fn run_draft_reminders(
    state: &AppState,
    meta: &AuditMeta,
) -> Result<RunReport, StoreError> {
    run_job(state, meta, &[Status::Draft], &Command::SendDraftReminder).await
}

/// The overdue-alert job: every case in `payment_successful` or `doctors_assigned`.
pub async fn run_overdue_alerts(
    state: &AppState,
    meta: &AuditMeta,
) -> Result<RunReport, StoreError> {
    let statuses = [Status::PaymentSuccessful, Status::DoctorsAssigned];
    run_job(state, meta, &statuses, &Command::SendOverdueAlert).await
}

/// Runs `command` as the system on every case in one of `statuses`.
///
/// Each candidate is first decided in memory, so the many cases with nothing due do not add a
/// refused row to the audit log on every run; the store decides again inside its transaction,
/// which is what counts. (These two commands consult no catalog, hence the empty one.)
async fn run_job(
    state: &AppState,
    meta: &AuditMeta,
    statuses: &[Status],
    command: &Command,
) -> Result<RunReport, StoreError> {
    let now = state.now();
    let limits = &state.settings.limits;
    let catalog = Catalog::default();
    let ctx = Context {
        catalog: &catalog,
        limits,
        now,
    };
    let mut report = RunReport::default();
    for case in candidates(state, statuses).await? {
        if decide(Some(&case), command, &Actor::System, &ctx).is_err() {
            report.skipped += 1;
            continue;
        }
        match state
            .store
            .execute(case.case_id, command, &Actor::System, meta, limits, now)
            .await
        {
            Ok(_) => report.sent += 1,
            // Changed since it was listed (sent by another instance, edited, moved on).
            Err(StoreError::Refused(refusal)) => {
                tracing::debug!(case_id = %case.case_id, code = %refusal.code, "scheduled notice skipped");
                report.skipped += 1;
            }
            Err(other) => return Err(other),
        }
    }
    Ok(report)
}

/// Every case in one of `statuses`, all pages, oldest pages included.
async fn candidates(state: &AppState, statuses: &[Status]) -> Result<Vec<Case>, StoreError> {
    let mut cases = Vec::new();
    for status in statuses {
        let filter = CaseFilter {
            status: Some(status.as_str().to_owned()),
            ..CaseFilter::default()
        };
        let mut page = Page::new(Some(1), Some(Page::MAX_SIZE));
        loop {
            let found = state.store.list_cases(&filter, page).await?;
            let fetched = (page.page - 1) * page.size + found.items.len() as i64;
            let last = found.items.is_empty() || fetched >= found.total;
            cases.extend(found.items);
            if last {
                break;
            }
            page.page += 1;
        }
    }
    // A case that changed status between two pages could be listed twice.
    let mut seen = std::collections::HashSet::<CaseId>::new();
    cases.retain(|case| seen.insert(case.case_id));
    Ok(cases)
}
