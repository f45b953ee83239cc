//! A small builder for a [`Decision`], so each handler reads as the SPEC row it implements.

use crate::Timestamp;
use crate::actor::Actor;
use crate::case::{Status, TimelineEntry, TimelineKind};
use crate::event::{Decision, Effect, Event, EventKind, Notification, NotificationKind, Recipient};
use crate::ids::{CaseId, UserId};

pub(super) struct Outcome<'a> {
    case_id: CaseId,
    actor: &'a Actor,
    now: Timestamp,
    decision: Decision,
}

impl<'a> Outcome<'a> {
    pub(super) fn new(case_id: CaseId, actor: &'a Actor, now: Timestamp) -> Self {
        Self {
            case_id,
            actor,
            now,
            decision: Decision::default(),
        }
    }

    pub(super) fn now(&self) -> Timestamp {
        self.now
    }

    pub(super) fn event(&mut self, kind: EventKind) -> &mut Self {
        self.decision.events.push(Event { at: self.now, kind });
        self
    }

    pub(super) fn status(&mut self, from: Status, to: Status) -> &mut Self {
        self.event(EventKind::StatusChanged { from, to })
    }

    pub(super) fn timeline(&mut self, kind: TimelineKind) -> &mut Self {
        self.timeline_with(kind, None)
    }

    pub(super) fn timeline_about(&mut self, kind: TimelineKind, doctor: &UserId) -> &mut Self {
        self.timeline_with(kind, Some(doctor.to_string()))
    }

    fn timeline_with(&mut self, kind: TimelineKind, detail: Option<String>) -> &mut Self {
        let entry = TimelineEntry {
            kind,
            actor_kind: self.actor.kind().to_owned(),
            actor_id: self.actor.user_id().cloned(),
            at: self.now,
            detail,
        };
        self.event(EventKind::Timeline { entry })
    }

    pub(super) fn notify(&mut self, user: &UserId, kind: NotificationKind) -> &mut Self {
        self.notify_recipient(Recipient::User(user.clone()), kind)
    }

    pub(super) fn notify_admins(&mut self, kind: NotificationKind) -> &mut Self {
        self.notify_recipient(Recipient::Admins, kind)
    }

    fn notify_recipient(&mut self, recipient: Recipient, kind: NotificationKind) -> &mut Self {
        let n = Notification {
            recipient,
            kind,
            case_id: self.case_id,
        };
        if !self.decision.notifications.contains(&n) {
            self.decision.notifications.push(n);
        }
        self
    }

    pub(super) fn effect(&mut self, effect: Effect) -> &mut Self {
        self.decision.effects.push(effect);
        self
    }

    pub(super) fn finish(self) -> Decision {
        self.decision
    }
}
