//! The payment rules of SPEC §5 (and T6–T8): results are idempotent by payment id, late success
//! after failure is honoured, a superseded attempt's success is refunded, money arriving on a
//! closed case goes back, and a paid case that closes requests its refund in the same step.

use crate::fixtures::*;
use chrono::TimeDelta;
use sop_core::case::{PaymentStatus, RefundStatus, Status, TimelineKind};
use sop_core::command::Command;
use sop_core::event::{Effect, NotificationKind, Recipient};
use sop_core::refusal::RefusalCode as R;

fn refund_of(payment_id: sop_core::ids::PaymentId) -> Effect {
    Effect::RequestRefund {
        payment_id,
        amount: PRICE,
        currency: CURRENCY.into(),
    }
}

fn timeline_kinds(fx: &Fx) -> Vec<TimelineKind> {
    fx.case().timeline.iter().map(|t| t.kind).collect()
}

#[test]
fn assign_coordinator_creates_a_payment_at_the_case_price() {
    let mut fx = submitted();
    let decision = fx.run(&admin(), assign_coordinator(c1(), PAY1));
    assert_eq!(
        decision.effects,
        vec![Effect::CreatePayment {
            payment_id: PAY1,
            amount: PRICE,
            currency: CURRENCY.into()
        }]
    );
    let payment = fx.case().current_payment().unwrap();
    assert_eq!(payment.status, PaymentStatus::Pending);
}

#[test]
fn payment_success_sets_due_date_and_requests_the_invoice() {
    let mut fx = awaiting_payment();
    let at = fx.now;
    let decision = fx.run(&platform(), paid(PAY1));
    assert_eq!(
        decision.effects,
        vec![Effect::RequestInvoice { payment_id: PAY1 }]
    );
    let case = fx.case();
    assert_eq!(case.status, Status::PaymentSuccessful);
    assert_eq!(case.paid_at, Some(at));
    assert_eq!(case.due_at, Some(at + TimeDelta::days(7)));
    assert_eq!(case.payment(PAY1).unwrap().status, PaymentStatus::Succeeded);
}

#[test]
fn payment_success_with_wrong_amount_refused() {
    let command = Command::PaymentSucceeded {
        payment_id: PAY1,
        amount: PRICE - 1,
        currency: CURRENCY.into(),
    };
    assert_eq!(
        awaiting_payment().refused(&platform(), command),
        R::AmountMismatch
    );
}

#[test]
fn payment_success_with_wrong_currency_refused() {
    let command = Command::PaymentSucceeded {
        payment_id: PAY1,
        amount: PRICE,
        currency: "USD".into(),
    };
    assert_eq!(
        awaiting_payment().refused(&platform(), command),
        R::AmountMismatch
    );
}

#[test]
fn payment_result_for_an_unknown_attempt_refused() {
    let fx = awaiting_payment();
    assert_eq!(fx.refused(&platform(), paid(PAY3)), R::UnknownPayment);
    assert_eq!(fx.refused(&platform(), failed(PAY3)), R::UnknownPayment);
}

#[test]
fn payment_results_come_only_from_the_payment_platform() {
    let fx = awaiting_payment();
    assert_eq!(fx.refused(&system(), paid(PAY1)), R::Forbidden);
    assert_eq!(fx.refused(&owner(), paid(PAY1)), R::Forbidden);
    assert_eq!(fx.refused(&admin(), failed(PAY1)), R::Forbidden);
}

#[test]
fn late_success_after_failure_is_honoured() {
    let mut fx = payment_failed();
    let decision = fx.run(&platform(), paid(PAY1));
    assert_eq!(fx.status(), Status::PaymentSuccessful);
    assert_eq!(
        decision.effects,
        vec![Effect::RequestInvoice { payment_id: PAY1 }]
    );
    assert!(fx.case().due_at.is_some());
}

#[test]
fn retry_opens_a_new_attempt_and_supersedes_the_old() {
    let mut fx = payment_failed();
    let decision = fx.run(&owner(), Command::RetryPayment { payment_id: PAY2 });
    assert_eq!(fx.status(), Status::AwaitingPayment);
    assert_eq!(
        decision.effects,
        vec![Effect::CreatePayment {
            payment_id: PAY2,
            amount: PRICE,
            currency: CURRENCY.into()
        }]
    );
    let case = fx.case();
    assert_eq!(case.current_payment().unwrap().payment_id, PAY2);
    assert!(case.payment(PAY1).unwrap().superseded);
}

#[test]
fn retry_refused_when_payment_id_already_used() {
    let code = payment_failed().refused(&owner(), Command::RetryPayment { payment_id: PAY1 });
    assert_eq!(code, R::IdAlreadyUsed);
}

#[test]
fn success_for_a_superseded_attempt_is_recorded_and_refunded_without_transition() {
    let mut fx = payment_failed();
    fx.run(&owner(), Command::RetryPayment { payment_id: PAY2 });
    let decision = fx.run(&platform(), paid(PAY1));
    assert_eq!(
        names(&decision),
        ["payment_settled", "refund_requested", "timeline"]
    );
    assert_eq!(decision.new_status(), None);
    assert_eq!(decision.effects, vec![refund_of(PAY1)]);
    assert!(decision.notifications.is_empty());
    let case = fx.case();
    assert_eq!(case.status, Status::AwaitingPayment);
    assert_eq!(case.paid_at, None);
    let old = case.payment(PAY1).unwrap();
    assert_eq!(old.status, PaymentStatus::Succeeded);
    assert_eq!(old.refund, Some(RefundStatus::Requested));
    // The current attempt still counts.
    fx.run(&platform(), paid(PAY2));
    assert_eq!(fx.status(), Status::PaymentSuccessful);
    assert_eq!(fx.case().payment(PAY2).unwrap().refund, None);
}

#[test]
fn failure_for_a_superseded_attempt_changes_nothing() {
    let mut fx = payment_failed();
    fx.run(&owner(), Command::RetryPayment { payment_id: PAY2 });
    let before = fx.case.clone();
    assert!(fx.run(&platform(), failed(PAY1)).is_noop());
    assert_eq!(fx.case, before);
}

#[test]
fn success_after_cancel_requests_a_refund() {
    let mut fx = awaiting_payment();
    let decision = fx.run(&owner(), cancel("Changed my mind"));
    assert!(decision.effects.is_empty(), "nothing was paid yet");
    let decision = fx.run(&platform(), paid(PAY1));
    assert_eq!(fx.status(), Status::Cancelled);
    assert_eq!(decision.new_status(), None);
    assert_eq!(decision.effects, vec![refund_of(PAY1)]);
    assert_eq!(
        fx.case().payment(PAY1).unwrap().refund,
        Some(RefundStatus::Requested)
    );
}

#[test]
fn success_after_reject_requests_a_refund() {
    let mut fx = payment_failed();
    fx.run(&admin(), reject("Not reviewable"));
    let decision = fx.run(&platform(), paid(PAY1));
    assert_eq!(fx.status(), Status::Rejected);
    assert_eq!(decision.effects, vec![refund_of(PAY1)]);
}

#[test]
fn repeated_success_callback_is_a_noop() {
    let mut fx = payment_successful();
    let before = fx.case.clone();
    let decision = fx.run(&platform(), paid(PAY1));
    assert!(decision.is_noop());
    assert_eq!(fx.case, before);
    // Also once the case has moved on.
    let mut fx = doctors_assigned();
    assert!(fx.run(&platform(), paid(PAY1)).is_noop());
}

#[test]
fn repeated_failure_callback_is_a_noop() {
    let mut fx = payment_failed();
    let before = fx.case.clone();
    assert!(fx.run(&platform(), failed(PAY1)).is_noop());
    assert_eq!(fx.case, before);
}

#[test]
fn failure_after_success_changes_nothing() {
    let mut fx = payment_successful();
    assert!(fx.run(&platform(), failed(PAY1)).is_noop());
    assert_eq!(fx.status(), Status::PaymentSuccessful);
}

#[test]
fn cancel_after_payment_requests_the_refund() {
    for mut fx in [payment_successful(), doctors_assigned()] {
        let decision = fx.run(&owner(), cancel("No longer needed"));
        assert_eq!(fx.status(), Status::Cancelled);
        assert!(names(&decision).contains(&"refund_requested"));
        assert_eq!(decision.effects, vec![refund_of(PAY1)]);
        assert_eq!(
            fx.case().payment(PAY1).unwrap().refund,
            Some(RefundStatus::Requested)
        );
    }
}

#[test]
fn reject_after_payment_requests_the_refund() {
    let mut fx = payment_successful();
    let decision = fx.run(&admin(), reject("Outside scope"));
    assert!(names(&decision).contains(&"refund_requested"));
    assert_eq!(decision.effects, vec![refund_of(PAY1)]);
}

#[test]
fn cancel_before_payment_requests_no_refund() {
    for mut fx in [draft(), submitted(), awaiting_payment(), payment_failed()] {
        let decision = fx.run(&admin(), cancel("Duplicate"));
        assert!(decision.effects.is_empty());
        assert!(!names(&decision).contains(&"refund_requested"));
    }
}

#[test]
fn completed_case_cancelled_is_refused_and_keeps_the_money() {
    assert_eq!(
        completed().refused(&admin(), cancel("late")),
        R::InvalidStatus
    );
}

#[test]
fn refund_is_tracked_from_requested_to_refunded_on_the_timeline() {
    let mut fx = cancelled();
    let decision = fx.run(
        &platform(),
        Command::RefundSettled {
            payment_id: PAY1,
            refunded: true,
        },
    );
    assert_eq!(
        decision
            .notifications
            .iter()
            .map(|n| &n.recipient)
            .collect::<Vec<_>>(),
        [&Recipient::User(p1())]
    );
    assert_eq!(
        decision.notifications[0].kind,
        NotificationKind::RefundCompleted
    );
    let kinds = timeline_kinds(&fx);
    let requested = kinds
        .iter()
        .position(|k| *k == TimelineKind::RefundRequested);
    let refunded = kinds.iter().position(|k| *k == TimelineKind::Refunded);
    assert!(requested.is_some() && refunded > requested, "{kinds:?}");
    // Repeated settlement: nothing more.
    let again = fx.run(
        &system(),
        Command::RefundSettled {
            payment_id: PAY1,
            refunded: true,
        },
    );
    assert!(again.is_noop());
}

#[test]
fn failed_refund_is_shown_to_admins_and_may_still_succeed() {
    let mut fx = rejected();
    let decision = fx.run(
        &system(),
        Command::RefundSettled {
            payment_id: PAY1,
            refunded: false,
        },
    );
    assert_eq!(decision.notifications.len(), 1);
    assert_eq!(decision.notifications[0].recipient, Recipient::Admins);
    assert_eq!(
        decision.notifications[0].kind,
        NotificationKind::RefundFailed
    );
    assert_eq!(
        fx.case().payment(PAY1).unwrap().refund,
        Some(RefundStatus::Failed)
    );
    assert!(timeline_kinds(&fx).contains(&TimelineKind::RefundFailed));
    fx.run(
        &platform(),
        Command::RefundSettled {
            payment_id: PAY1,
            refunded: true,
        },
    );
    assert_eq!(
        fx.case().payment(PAY1).unwrap().refund,
        Some(RefundStatus::Refunded)
    );
    assert_eq!(fx.status(), Status::Rejected);
}
