//! The computed sub-states of SPEC §3.3. Never stored: always derived from the case and `now`.

use crate::Timestamp;
use crate::case::{Case, Status};
use serde::{Deserialize, Serialize};

/// A refinement of the status shown to people.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubState {
    /// A document request is open.
    AwaitingDocuments,
    /// Every specialist submitted; the summary is not written yet.
    OpinionsComplete,
    /// Completed, the PDF is not ready yet.
    ReportPending,
    /// Past `due_at` and not completed.
    Overdue,
}

/// Every sub-state that holds, most useful to show first: what blocks the patient, then what is
/// late, then progress.
pub fn sub_states(case: &Case, now: Timestamp) -> Vec<SubState> {
    let mut states = Vec::new();
    if case.status == Status::Completed && case.report.is_none() {
        states.push(SubState::ReportPending);
    }
    if !case.status.is_final() && case.has_open_request() {
        states.push(SubState::AwaitingDocuments);
    }
    if !case.status.is_final() && case.due_at.is_some_and(|due| now > due) {
        states.push(SubState::Overdue);
    }
    if case.status == Status::DoctorsAssigned
        && case.active_specialists().next().is_some()
        && case.pending_specialists().next().is_none()
    {
        states.push(SubState::OpinionsComplete);
    }
    states
}

/// The one sub-state to show where there is room for one.
pub fn sub_state(case: &Case, now: Timestamp) -> Option<SubState> {
    sub_states(case, now).into_iter().next()
}
