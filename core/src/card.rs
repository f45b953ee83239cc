//! The patient's status card (SPEC §3.4): what the patient app shows on top of a case, computed
//! here so that it reads the same offline and online, in English or Arabic.

use crate::Timestamp;
use crate::case::{Case, Status};
use crate::catalog::DoctorProfile;
use crate::lang::Lang;
use crate::substate::{SubState, sub_states};
use serde::{Deserialize, Serialize};

/// What the card invites the patient to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CardAction {
    SubmitCase,
    Pay,
    RetryPayment,
    UploadDocuments,
    ViewReport,
}

/// How to reach the coordinator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoordinatorContact {
    pub name: String,
    pub phone: String,
    pub email: String,
}

/// The card, in one language.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCard {
    pub status: Status,
    pub title: String,
    pub message: String,
    pub actions: Vec<CardAction>,
    /// Awaiting payment: amount in minor units, currency and the link.
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub payment_link: Option<String>,
    /// Doctors assigned: the coordinator and the expected date.
    pub coordinator: Option<CoordinatorContact>,
    pub due_at: Option<Timestamp>,
    /// Awaiting documents: what was requested.
    pub requested_items: Vec<String>,
    /// Cancelled or rejected: why.
    pub reason: Option<String>,
}

/// The status card of `case` in `lang`. `coordinator` is the directory entry of the case's
/// coordinator, when known.
pub fn status_card(
    case: &Case,
    coordinator: Option<&DoctorProfile>,
    lang: Lang,
    now: Timestamp,
) -> StatusCard {
    let t = |en: &str, ar: &str| lang.pick(en, ar).to_owned();
    let mut card = StatusCard {
        status: case.status,
        title: String::new(),
        message: String::new(),
        actions: Vec::new(),
        amount: None,
        currency: None,
        payment_link: None,
        coordinator: None,
        due_at: None,
        requested_items: Vec::new(),
        reason: None,
    };
    match case.status {
        Status::Draft => {
            card.title = t("Finish and submit", "أكمل وأرسل");
            card.message = t(
                "Complete your details and submit your case for review.",
                "أكمل بياناتك وأرسل حالتك للمراجعة.",
            );
            card.actions.push(CardAction::SubmitCase);
        }
        Status::Submitted => {
            card.title = t("Waiting for a coordinator", "بانتظار تعيين منسق");
            card.message = t(
                "Your case was received. A case coordinator will be assigned soon.",
                "تم استلام حالتك. سيتم تعيين منسق للحالة قريبًا.",
            );
        }
        Status::AwaitingPayment => {
            let payment = case.current_payment();
            card.amount = payment.map(|p| p.amount);
            card.currency = payment.map(|p| p.currency.clone());
            card.payment_link = payment.and_then(|p| p.link.clone());
            let amount = payment
                .map(|p| format_amount(p.amount, &p.currency))
                .unwrap_or_default();
            card.title = t("Pay now", "ادفع الآن");
            card.message = match lang {
                Lang::En => format!("Pay {amount} to start the review of your case."),
                Lang::Ar => format!("ادفع {amount} لبدء مراجعة حالتك."),
            };
            card.actions.push(CardAction::Pay);
        }
        Status::PaymentFailed => {
            card.title = t("Payment failed", "فشل الدفع");
            card.message = t(
                "Payment failed — retry or cancel.",
                "فشل الدفع — أعد المحاولة أو ألغِ الحالة.",
            );
            card.actions.push(CardAction::RetryPayment);
        }
        Status::PaymentSuccessful => {
            card.title = t("Payment received", "تم استلام الدفع");
            card.message = t(
                "Specialists are being assigned to your case.",
                "يتم الآن تعيين الأطباء المختصين لحالتك.",
            );
            card.due_at = case.due_at;
        }
        Status::DoctorsAssigned => {
            card.title = t("Under specialist review", "قيد مراجعة الأطباء المختصين");
            let date = case
                .due_at
                .map(|d| d.format("%Y-%m-%d").to_string())
                .unwrap_or_default();
            let name = coordinator
                .map(|c| lang.pick(&c.name_en, &c.name_ar).to_owned())
                .unwrap_or_else(|| t("your coordinator", "منسق حالتك"));
            card.message = match lang {
                Lang::En => format!("Your case is with {name}. Expected by {date}."),
                Lang::Ar => format!("حالتك لدى {name}. الموعد المتوقع {date}."),
            };
            card.coordinator = coordinator.map(|c| CoordinatorContact {
                name: lang.pick(&c.name_en, &c.name_ar).to_owned(),
                phone: c.phone.clone(),
                email: c.email.clone(),
            });
            card.due_at = case.due_at;
        }
        Status::Completed => {
            if case.report.is_some() {
                card.title = t("Report ready", "التقرير جاهز");
                card.message = t(
                    "Your second-opinion report is ready.",
                    "تقرير الرأي الثاني الخاص بك جاهز.",
                );
                card.actions.push(CardAction::ViewReport);
            } else {
                card.title = t("Preparing your report", "جارٍ إعداد تقريرك");
                card.message = t(
                    "The review is complete. Your report will be ready shortly.",
                    "اكتملت المراجعة. سيكون تقريرك جاهزًا قريبًا.",
                );
            }
        }
        Status::Cancelled | Status::Rejected => {
            let cancelled = case.status == Status::Cancelled;
            card.title = if cancelled {
                t("Case cancelled", "تم إلغاء الحالة")
            } else {
                t("Case rejected", "تم رفض الحالة")
            };
            card.reason = case.closed_reason.clone();
            card.message = case.closed_reason.clone().unwrap_or_default();
        }
    }
    if sub_states(case, now).contains(&SubState::AwaitingDocuments) {
        card.requested_items = case
            .open_requests()
            .flat_map(|r| r.items.iter().cloned())
            .collect();
        card.title = t("Documents requested", "مستندات مطلوبة");
        card.message = t(
            "Your doctors need more documents: upload them and mark the request answered.",
            "يحتاج أطباؤك إلى مستندات إضافية: ارفعها ثم أكد الإجابة على الطلب.",
        );
        card.actions.insert(0, CardAction::UploadDocuments);
    }
    card
}

/// `150000, "SAR"` → `1500.00 SAR` (currencies with two minor digits).
fn format_amount(minor: i64, currency: &str) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    format!("{sign}{}.{:02} {currency}", abs / 100, abs % 100)
}

#[cfg(test)]
mod tests {
    use super::format_amount;

    #[test]
    fn amounts_are_shown_in_major_units() {
        assert_eq!(format_amount(150_000, "SAR"), "1500.00 SAR");
        assert_eq!(format_amount(5, "SAR"), "0.05 SAR");
    }
}
