//! What a decided command produces: the [`Event`]s that change the case (replayed by
//! [`crate::rules::apply`]), the [`Notification`]s to deliver (SPEC §7) and the [`Effect`]s — calls
//! to outside systems the server makes through its outbox. The server stores and delivers these; it
//! decides nothing itself.

use crate::Timestamp;
use crate::case::{
    AssignmentRole, DocumentMeta, DocumentRequest, Intake, IntakePatch, PaymentStatus, Pricing,
    Status, TimelineEntry,
};
use crate::ids::{
    CaseId, CategoryId, DocumentId, PaymentId, ReportId, RequestId, ReviewTypeId, UserId,
};
use crate::lang::{Lang, Localized};
use serde::{Deserialize, Serialize};

/// One change to a case, at one time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub at: Timestamp,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// The changes a case can undergo. Status changes only through [`EventKind::StatusChanged`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    CaseCreated {
        case_id: CaseId,
        patient_id: UserId,
        rt_id: ReviewTypeId,
        dc_id: CategoryId,
        intake: Intake,
    },
    IntakeUpdated {
        patch: IntakePatch,
    },
    StatusChanged {
        from: Status,
        to: Status,
    },
    /// Price and SLA snapshot; sets `submitted_at`.
    PricingFixed {
        pricing: Pricing,
    },
    /// The coordinator is set; any previous coordinator assignment ends.
    CoordinatorSet {
        doctor_id: UserId,
    },
    /// A new payment attempt; older attempts are superseded.
    PaymentOpened {
        payment_id: PaymentId,
        amount: i64,
        currency: String,
    },
    PaymentLinkSet {
        payment_id: PaymentId,
        link: String,
    },
    PaymentSettled {
        payment_id: PaymentId,
        outcome: PaymentStatus,
    },
    /// The case is paid: `paid_at` and `due_at`.
    Paid {
        due_at: Timestamp,
    },
    RefundRequested {
        payment_id: PaymentId,
    },
    RefundSettled {
        payment_id: PaymentId,
        refunded: bool,
    },
    DoctorAssigned {
        doctor_id: UserId,
        role: AssignmentRole,
    },
    SpecialistRemoved {
        doctor_id: UserId,
    },
    DocumentRequestOpened {
        request: DocumentRequest,
    },
    DocumentRequestAnswered {
        request_id: RequestId,
    },
    DocumentAdded {
        document: DocumentMeta,
    },
    DocumentRemoved {
        document_id: DocumentId,
    },
    OpinionSubmitted {
        doctor_id: UserId,
    },
    /// Sets `completed_at`.
    SummarySubmitted,
    /// Cancelled or rejected: the reason and who closed it.
    Closed {
        reason: String,
        closed_by: String,
    },
    ReportStored {
        report_id: ReportId,
        sha256: String,
    },
    OverdueReminderSent,
    DraftReminderSent,
    OverdueAlertSent,
    Timeline {
        entry: TimelineEntry,
    },
}

impl EventKind {
    /// The stable snake_case name of the event.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::CaseCreated { .. } => "case_created",
            EventKind::IntakeUpdated { .. } => "intake_updated",
            EventKind::StatusChanged { .. } => "status_changed",
            EventKind::PricingFixed { .. } => "pricing_fixed",
            EventKind::CoordinatorSet { .. } => "coordinator_set",
            EventKind::PaymentOpened { .. } => "payment_opened",
            EventKind::PaymentLinkSet { .. } => "payment_link_set",
            EventKind::PaymentSettled { .. } => "payment_settled",
            EventKind::Paid { .. } => "paid",
            EventKind::RefundRequested { .. } => "refund_requested",
            EventKind::RefundSettled { .. } => "refund_settled",
            EventKind::DoctorAssigned { .. } => "doctor_assigned",
            EventKind::SpecialistRemoved { .. } => "specialist_removed",
            EventKind::DocumentRequestOpened { .. } => "document_request_opened",
            EventKind::DocumentRequestAnswered { .. } => "document_request_answered",
            EventKind::DocumentAdded { .. } => "document_added",
            EventKind::DocumentRemoved { .. } => "document_removed",
            EventKind::OpinionSubmitted { .. } => "opinion_submitted",
            EventKind::SummarySubmitted => "summary_submitted",
            EventKind::Closed { .. } => "closed",
            EventKind::ReportStored { .. } => "report_stored",
            EventKind::OverdueReminderSent => "overdue_reminder_sent",
            EventKind::DraftReminderSent => "draft_reminder_sent",
            EventKind::OverdueAlertSent => "overdue_alert_sent",
            EventKind::Timeline { .. } => "timeline",
        }
    }
}

/// Who receives a notification.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "to", content = "user_id", rename_all = "snake_case")]
pub enum Recipient {
    User(UserId),
    /// Every admin (the server resolves who they are).
    Admins,
}

/// The events of SPEC §7 that notify people.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    CaseSubmitted,
    CoordinatorAssigned,
    CoordinatorChanged,
    PaymentSuccessful,
    PaymentFailed,
    DoctorsAssigned,
    DoctorAdded,
    DoctorRemoved,
    DocumentsRequested,
    DocumentsProvided,
    OpinionSubmitted,
    ReportReady,
    CaseCancelled,
    CaseRejected,
    RefundCompleted,
    RefundFailed,
    DraftReminder,
    OverdueReport,
}

/// A notification to deliver to the in-app inbox and push.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub recipient: Recipient,
    pub kind: NotificationKind,
    pub case_id: CaseId,
}

impl NotificationKind {
    /// The localized title and body. They carry the event and the case reference only: no names,
    /// no clinical content, no specialty (SPEC §7).
    pub fn text(self, case_reference: &str) -> (Localized, Localized) {
        let r = case_reference;
        let (title_en, title_ar, body_en, body_ar) = match self {
            Self::CaseSubmitted => (
                "New case submitted",
                "تم إرسال حالة جديدة",
                format!("Case {r} was submitted and needs a coordinator."),
                format!("تم إرسال الحالة {r} وتحتاج إلى منسق."),
            ),
            Self::CoordinatorAssigned => (
                "Coordinator assigned",
                "تم تعيين منسق",
                format!("A coordinator was assigned to case {r}. Payment is now open."),
                format!("تم تعيين منسق للحالة {r}. يمكنك الدفع الآن."),
            ),
            Self::CoordinatorChanged => (
                "Coordinator changed",
                "تم تغيير المنسق",
                format!("The coordinator of case {r} changed."),
                format!("تم تغيير منسق الحالة {r}."),
            ),
            Self::PaymentSuccessful => (
                "Payment received",
                "تم استلام الدفع",
                format!("Payment for case {r} was received."),
                format!("تم استلام الدفع للحالة {r}."),
            ),
            Self::PaymentFailed => (
                "Payment failed",
                "فشل الدفع",
                format!("Payment for case {r} failed. You can retry."),
                format!("فشل الدفع للحالة {r}. يمكنك المحاولة مرة أخرى."),
            ),
            Self::DoctorsAssigned => (
                "Doctors assigned",
                "تم تعيين الأطباء",
                format!("Specialists were assigned to case {r}."),
                format!("تم تعيين أطباء مختصين للحالة {r}."),
            ),
            Self::DoctorAdded => (
                "Added to a case",
                "تمت إضافتك إلى حالة",
                format!("You were added to case {r}."),
                format!("تمت إضافتك إلى الحالة {r}."),
            ),
            Self::DoctorRemoved => (
                "Removed from a case",
                "تمت إزالتك من حالة",
                format!("You were removed from case {r}."),
                format!("تمت إزالتك من الحالة {r}."),
            ),
            Self::DocumentsRequested => (
                "Documents requested",
                "طلب مستندات",
                format!("More documents were requested for case {r}."),
                format!("تم طلب مستندات إضافية للحالة {r}."),
            ),
            Self::DocumentsProvided => (
                "Documents provided",
                "تم تقديم المستندات",
                format!("The requested documents for case {r} were provided."),
                format!("تم تقديم المستندات المطلوبة للحالة {r}."),
            ),
            Self::OpinionSubmitted => (
                "Opinion submitted",
                "تم تقديم الرأي",
                format!("An opinion was submitted on case {r}."),
                format!("تم تقديم رأي طبي في الحالة {r}."),
            ),
            Self::ReportReady => (
                "Report ready",
                "التقرير جاهز",
                format!("The final report of case {r} is ready."),
                format!("التقرير النهائي للحالة {r} جاهز."),
            ),
            Self::CaseCancelled => (
                "Case cancelled",
                "تم إلغاء الحالة",
                format!("Case {r} was cancelled."),
                format!("تم إلغاء الحالة {r}."),
            ),
            Self::CaseRejected => (
                "Case rejected",
                "تم رفض الحالة",
                format!("Case {r} was rejected."),
                format!("تم رفض الحالة {r}."),
            ),
            Self::RefundCompleted => (
                "Refund completed",
                "تم استرداد المبلغ",
                format!("The payment for case {r} was refunded."),
                format!("تم استرداد مبلغ الحالة {r}."),
            ),
            Self::RefundFailed => (
                "Refund failed",
                "فشل الاسترداد",
                format!("The refund for case {r} failed and needs attention."),
                format!("فشل استرداد مبلغ الحالة {r} ويحتاج إلى متابعة."),
            ),
            Self::DraftReminder => (
                "Finish your case",
                "أكمل حالتك",
                format!("Case {r} is still a draft. Finish and submit it."),
                format!("الحالة {r} ما زالت مسودة. أكملها وأرسلها."),
            ),
            Self::OverdueReport => (
                "Case overdue",
                "حالة متأخرة",
                format!("Case {r} is past its due date."),
                format!("تجاوزت الحالة {r} موعدها المحدد."),
            ),
        };
        (
            Localized::new(title_en, title_ar),
            Localized::new(body_en, body_ar),
        )
    }

    /// The title and body in one language.
    pub fn text_in(self, lang: Lang, case_reference: &str) -> (String, String) {
        let (title, body) = self.text(case_reference);
        (title.get(lang).to_owned(), body.get(lang).to_owned())
    }
}

/// A call to an outside system, made by the server through its transactional outbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    /// Ask the payment platform for a payment and its link.
    CreatePayment {
        payment_id: PaymentId,
        amount: i64,
        currency: String,
    },
    /// Return the money of a succeeded payment.
    RequestRefund {
        payment_id: PaymentId,
        amount: i64,
        currency: String,
    },
    /// Create the invoice of a succeeded payment in the billing system.
    RequestInvoice { payment_id: PaymentId },
    /// Build the final report from the frozen opinions and summary.
    GenerateReport,
}

/// The outcome of an allowed command.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub events: Vec<Event>,
    pub notifications: Vec<Notification>,
    pub effects: Vec<Effect>,
}

impl Decision {
    /// True when the command was accepted but changes nothing (a repeated callback, say).
    pub fn is_noop(&self) -> bool {
        self.events.is_empty() && self.notifications.is_empty() && self.effects.is_empty()
    }

    /// The status this decision moves the case to, if it moves it.
    pub fn new_status(&self) -> Option<Status> {
        self.events.iter().rev().find_map(|e| match e.kind {
            EventKind::StatusChanged { to, .. } => Some(to),
            _ => None,
        })
    }
}
