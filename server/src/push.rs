//! Push notifications (SPEC §7, §9): every notification the core emits is stored in the in-app
//! inbox **and** queued as a push delivery in the outbox, in the same transaction
//! ([`PushDelivery`], kind [`KIND`], idempotency key `push:<notification id>`).
//!
//! The worker renders the delivery in the recipient's language (from the profiles service,
//! whose client caches each person, so a recipient is not looked up per push; English when
//! unknown) with the core's templates ([`NotificationKind::text_in`]): the event
//! and the case reference only — never a name, age, gender, history, category or review type.
//! Then it hands the message to a [`PushService`]:
//!
//! - [`LogPush`] (standalone default): the delivery is logged with ids only.
//! - [`HttpPush`] (`--push-url`): `POST /v1/push` with an `Idempotency-Key`, see
//!   `docs/adr/0007-platform-clients.md`.

use crate::outbound::{OutboundError, Service};
use crate::payments::BoxFuture;
use crate::store::ADMINS_RECIPIENT;
use serde::{Deserialize, Serialize};
use sop_core::case::case_reference;
use sop_core::event::NotificationKind;
use sop_core::ids::CaseId;
use sop_core::lang::Lang;
use uuid::Uuid;

/// The outbox kind of a push delivery.
pub const KIND: &str = "push";

/// The outbox payload of a push delivery: which notification, for whom.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushDelivery {
    pub notification_id: Uuid,
    /// A user id, or [`ADMINS_RECIPIENT`] for every admin.
    pub recipient: String,
    pub case_id: CaseId,
    pub kind: NotificationKind,
}

impl PushDelivery {
    /// The outbox idempotency key, also sent to the push service.
    pub fn idempotency_key(&self) -> String {
        format!("{KIND}:{}", self.notification_id)
    }

    /// Whether it is meant for every admin rather than one user.
    pub fn for_admins(&self) -> bool {
        self.recipient == ADMINS_RECIPIENT
    }
}

/// Who a push goes to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PushTarget {
    /// One user, by id.
    UserId(String),
    /// Everyone with a role (`admin`).
    Role(&'static str),
}

/// The data a device gets with the push to open the right screen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PushData {
    pub notification_id: Uuid,
    pub kind: NotificationKind,
    pub case_id: CaseId,
    pub case_reference: String,
}

/// A rendered push message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PushMessage {
    pub to: PushTarget,
    /// `en` or `ar`.
    pub language: &'static str,
    pub title: String,
    pub body: String,
    pub data: PushData,
}

/// Renders `delivery` in `lang`: the event and the case reference only.
pub fn render(delivery: &PushDelivery, lang: Lang) -> PushMessage {
    let reference = case_reference(delivery.case_id);
    let (title, body) = delivery.kind.text_in(lang, &reference);
    let to = if delivery.for_admins() {
        PushTarget::Role("admin")
    } else {
        PushTarget::UserId(delivery.recipient.clone())
    };
    PushMessage {
        to,
        language: match lang {
            Lang::Ar => "ar",
            Lang::En => "en",
        },
        title,
        body,
        data: PushData {
            notification_id: delivery.notification_id,
            kind: delivery.kind,
            case_id: delivery.case_id,
            case_reference: reference,
        },
    }
}

/// What the server asks of a push service.
pub trait PushService: Send + Sync + std::fmt::Debug {
    /// A short name for logs.
    fn name(&self) -> &'static str;

    /// Sends `message`, once per `idempotency_key`.
    fn send<'a>(
        &'a self,
        message: &'a PushMessage,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<(), OutboundError>>;
}

/// The standalone push: deliveries are logged (ids only), the in-app inbox is the channel.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogPush;

impl PushService for LogPush {
    fn name(&self) -> &'static str {
        "log push"
    }

    fn send<'a>(
        &'a self,
        message: &'a PushMessage,
        _idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<(), OutboundError>> {
        Box::pin(async move {
            tracing::info!(
                notification_id = %message.data.notification_id,
                case_id = %message.data.case_id,
                kind = ?message.data.kind,
                "push delivery (standalone: logged only)"
            );
            Ok(())
        })
    }
}

/// The push service over HTTP.
#[derive(Debug)]
pub struct HttpPush {
    service: Service,
}

impl HttpPush {
    pub fn new(service: Service) -> Self {
        Self { service }
    }
}

impl PushService for HttpPush {
    fn name(&self) -> &'static str {
        "push"
    }

    fn send<'a>(
        &'a self,
        message: &'a PushMessage,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<(), OutboundError>> {
        Box::pin(
            self.service
                .post_keyed("/v1/push", message, idempotency_key),
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a failing test should panic loudly
mod tests {
    use super::*;

    #[test]
    fn renders_in_the_recipient_language_with_the_case_reference_only() {
        let delivery = PushDelivery {
            notification_id: Uuid::nil(),
            recipient: "P1".to_owned(),
            case_id: CaseId(Uuid::nil()),
            kind: NotificationKind::PaymentSuccessful,
        };
        let en = render(&delivery, Lang::En);
        let ar = render(&delivery, Lang::Ar);
        assert_eq!(en.to, PushTarget::UserId("P1".to_owned()));
        assert_eq!((en.language, ar.language), ("en", "ar"));
        assert_ne!(en.title, ar.title);
        assert!(en.body.contains(&en.data.case_reference), "{}", en.body);
        let json = serde_json::to_value(&en).unwrap();
        assert_eq!(json["to"], serde_json::json!({"user_id": "P1"}));
        let admins = PushDelivery {
            recipient: ADMINS_RECIPIENT.to_owned(),
            ..delivery
        };
        assert_eq!(render(&admins, Lang::En).to, PushTarget::Role("admin"));
    }
}
