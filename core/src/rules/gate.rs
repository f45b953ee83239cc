//! The first two checks of every command: who may issue it (by their relation to the case) and in
//! which statuses. These two tables are the "Who" and "From" columns of SPEC §3.2.

use crate::case::{Case, Relation, Status};
use crate::command::Command;

/// The relations to a case that may issue `command` (the "Who" column).
pub fn who_may(command: &Command) -> &'static [Relation] {
    use Relation::*;
    match command {
        // Creation has no case yet; `decide` checks the actor is a patient.
        Command::CreateCase { .. } => &[],
        Command::UpdateIntake { .. }
        | Command::SubmitCase
        | Command::RetryPayment { .. }
        | Command::UploadDocument { .. }
        | Command::AnswerDocumentRequest { .. }
        | Command::RemoveDocument { .. } => &[Owner],
        Command::AssignCoordinator { .. }
        | Command::ReassignCoordinator { .. }
        | Command::Reject { .. } => &[Admin],
        Command::PaymentSucceeded { .. } | Command::PaymentFailed { .. } => &[PaymentPlatform],
        Command::AssignDoctors { .. }
        | Command::UnassignDoctor { .. }
        | Command::SubmitSummary { .. }
        | Command::SendOverdueReminder => &[Coordinator],
        Command::RequestDocuments { .. } => &[Coordinator, Specialist],
        Command::SubmitOpinion { .. } => &[Specialist],
        Command::Cancel { .. } => &[Owner, Admin],
        Command::PaymentLinkCreated { .. } | Command::RefundSettled { .. } => {
            &[PaymentPlatform, System]
        }
        Command::ReportReady { .. } | Command::SendDraftReminder | Command::SendOverdueAlert => {
            &[System]
        }
    }
}

/// Whether the case's status permits `command` (the "From" column). Payment results and refund
/// settlements are accepted in every status: what they do there is decided by SPEC §5.
pub fn status_allows(command: &Command, case: &Case) -> bool {
    use Status::*;
    let s = case.status;
    match command {
        Command::CreateCase { .. } => false,
        Command::UpdateIntake { .. } | Command::SubmitCase | Command::RemoveDocument { .. } => {
            s == Draft
        }
        Command::AssignCoordinator { .. } => s == Submitted,
        Command::ReassignCoordinator { .. } => matches!(s, AwaitingPayment | PaymentFailed),
        Command::RetryPayment { .. } => s == PaymentFailed,
        Command::AssignDoctors { .. } => matches!(s, PaymentSuccessful | DoctorsAssigned),
        Command::UnassignDoctor { .. }
        | Command::RequestDocuments { .. }
        | Command::SubmitOpinion { .. }
        | Command::SubmitSummary { .. }
        | Command::SendOverdueReminder => s == DoctorsAssigned,
        // Draft, or any non-final status while a request is open: the open-request part is a
        // guard with its own code so the patient learns why.
        Command::UploadDocument { .. } | Command::AnswerDocumentRequest { .. } => !s.is_final(),
        Command::Cancel { .. } => !s.is_final(),
        Command::Reject { .. } => {
            matches!(
                s,
                Submitted | AwaitingPayment | PaymentFailed | PaymentSuccessful
            )
        }
        Command::PaymentSucceeded { .. }
        | Command::PaymentFailed { .. }
        | Command::PaymentLinkCreated { .. }
        | Command::RefundSettled { .. } => true,
        Command::ReportReady { .. } => s == Completed,
        Command::SendDraftReminder => s == Draft,
        Command::SendOverdueAlert => matches!(s, PaymentSuccessful | DoctorsAssigned),
    }
}
