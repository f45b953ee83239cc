//! The profiles service (SPEC §9, "persistence proxy"): people's details (names, contact,
//! language) and invoice creation on payment success, behind the [`Profiles`] trait.
//!
//! - [`LocalProfiles`] (standalone default): the local tables answer — doctors from the catalog's
//!   doctor records; patients have no local record, so their language is English. Invoices are
//!   logged with ids only (the payment on record is the invoice).
//! - [`HttpProfiles`] (`--profiles-url`): `GET /v1/users/{user_id}` → `{user_id, name_en,
//!   name_ar, language, phone, email}` (404: unknown) and `POST /v1/invoices` with an
//!   `Idempotency-Key` (`invoice:<payment id>`), see `docs/adr/0007-platform-clients.md`.
//!
//! Who calls it: the outbox worker (invoices; the language of push deliveries) and the views
//! that show people ([`doctor_profile`]: the coordinator's name and contact on the status card;
//! [`Profiles::display_name`]: names for the report and the access history).
//!
//! [`HttpProfiles`] keeps the people it looked up in a [`PersonCache`] for [`CACHE_TTL`] (unknown
//! people for [`UNKNOWN_TTL`]), so a push, a card or a list does not cost a call each: names and
//! languages change rarely, and a change shows within the TTL. Failures are not cached. The
//! cache lives in memory only, and neither it nor [`Person`] prints names or contact details in
//! `Debug` (nothing of a person reaches a log).

use crate::outbound::{OutboundError, Service};
use crate::payments::BoxFuture;
use crate::state::AppState;
use crate::store::{Store, StoreError};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use sop_core::catalog::DoctorProfile;
use sop_core::ids::{CaseId, PaymentId, UserId};
use sop_core::lang::Lang;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a person looked up on the profiles service is kept.
pub const CACHE_TTL: Duration = Duration::from_secs(10 * 60);
/// How long "the service does not know this person" is kept (they may be created meanwhile).
pub const UNKNOWN_TTL: Duration = Duration::from_secs(60);
/// The most people kept; past it, expired entries go first, then everything.
const CACHE_MAX: usize = 10_000;
/// How long a view waits for the profiles service before it shows the local directory instead
/// (shorter than the outbox's call timeout: someone is looking at the screen).
pub const VIEW_LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// A person's details as the profiles service knows them. `Debug` shows the id and language
/// only: names and contact details are personal data and stay out of logs.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    pub user_id: String,
    #[serde(default)]
    pub name_en: String,
    #[serde(default)]
    pub name_ar: String,
    /// `en` or `ar`; anything else is English.
    #[serde(default)]
    pub language: String,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

impl std::fmt::Debug for Person {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Person")
            .field("user_id", &self.user_id)
            .field("language", &self.language)
            .finish_non_exhaustive()
    }
}

impl Person {
    /// The language notifications to this person are written in.
    pub fn lang(&self) -> Lang {
        Lang::from_header(Some(&self.language))
    }

    /// The name to show in `lang`, the other language's when it has none, `None` when both
    /// are blank.
    pub fn name_in(&self, lang: Lang) -> Option<String> {
        let (first, second) = match lang {
            Lang::En => (&self.name_en, &self.name_ar),
            Lang::Ar => (&self.name_ar, &self.name_en),
        };
        [first, second]
            .into_iter()
            .map(|n| n.trim())
            .find(|n| !n.is_empty())
            .map(str::to_owned)
    }
}

/// People looked up recently, with when each entry stops being fresh. Times come in as
/// arguments so tests control them.
#[derive(Default)]
pub struct PersonCache {
    entries: Mutex<HashMap<String, (Instant, Option<Person>)>>,
}

impl std::fmt::Debug for PersonCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let len = self.entries.lock().map(|e| e.len()).unwrap_or_default();
        f.debug_struct("PersonCache")
            .field("entries", &len)
            .finish()
    }
}

impl PersonCache {
    /// The fresh entry of `user_id` at `now`: `Some(None)` for a person known to be unknown.
    pub fn get(&self, user_id: &str, now: Instant) -> Option<Option<Person>> {
        // A poisoned lock only means another lookup panicked: the map itself is intact.
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(user_id)
            .filter(|(until, _)| now < *until)
            .map(|(_, person)| person.clone())
    }

    /// Keeps the answer for `user_id` from `now` ([`CACHE_TTL`], or [`UNKNOWN_TTL`] for `None`).
    pub fn put(&self, user_id: &str, person: Option<Person>, now: Instant) {
        let ttl = if person.is_some() {
            CACHE_TTL
        } else {
            UNKNOWN_TTL
        };
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CACHE_MAX {
            entries.retain(|_, (until, _)| now < *until);
            if entries.len() >= CACHE_MAX {
                entries.clear();
            }
        }
        entries.insert(user_id.to_owned(), (now + ttl, person));
    }
}

/// An invoice for a successful payment (no health information: ids, amount, reference).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InvoiceRequest {
    pub payment_reference: PaymentId,
    pub case_id: CaseId,
    pub case_reference: String,
    pub patient_id: String,
    /// Integer minor units of `currency`.
    pub amount: i64,
    pub currency: String,
}

/// What the server asks of the profiles service.
pub trait Profiles: Send + Sync + std::fmt::Debug {
    /// A short name for logs.
    fn name(&self) -> &'static str;

    /// The details of `user_id`, `None` when the service does not know them.
    fn person<'a>(
        &'a self,
        user_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Person>, OutboundError>>;

    /// Creates the invoice of a payment, once per `idempotency_key`.
    fn create_invoice<'a>(
        &'a self,
        invoice: &'a InvoiceRequest,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<(), OutboundError>>;

    /// The name of `user_id` to show in `lang` (the other language's when it has none), `None`
    /// when the service does not know them. For the report and lists of people.
    fn display_name<'a>(
        &'a self,
        user_id: &'a str,
        lang: Lang,
    ) -> BoxFuture<'a, Result<Option<String>, OutboundError>> {
        Box::pin(async move { Ok(self.person(user_id).await?.and_then(|p| p.name_in(lang))) })
    }

    /// Whether the answers come from the local tables (standalone), so callers need not ask
    /// the tables a second time.
    fn is_local(&self) -> bool {
        false
    }
}

/// The name of `user_id` in `lang` for a view, `None` when nobody knows it or the profiles
/// service does not answer within [`VIEW_LOOKUP_TIMEOUT`] (the view is shown without it).
pub async fn name_for_view(state: &AppState, user_id: &str, lang: Lang) -> Option<String> {
    match tokio::time::timeout(
        VIEW_LOOKUP_TIMEOUT,
        state.profiles.display_name(user_id, lang),
    )
    .await
    {
        Ok(Ok(name)) => name,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "profiles: no answer for a name; the view goes without it");
            None
        }
        Err(_) => {
            tracing::warn!("profiles: a name's look-up is slow; the view goes without it");
            None
        }
    }
}

/// The directory entry of doctor `doctor_id` as cards and views show it (SPEC §3.4: the
/// coordinator's name and contact): the local directory's entry (which holds the specialties),
/// with the name, phone and email of the profiles service when one is configured. When the
/// service does not answer within [`VIEW_LOOKUP_TIMEOUT`], the local entry is shown: a view is
/// not refused or held up because the profiles service is down. `None` when neither knows the
/// doctor.
pub async fn doctor_profile(
    state: &AppState,
    doctor_id: &str,
) -> Result<Option<DoctorProfile>, StoreError> {
    let local = state.store.doctor(doctor_id).await?;
    if state.profiles.is_local() {
        return Ok(local);
    }
    let asked = tokio::time::timeout(VIEW_LOOKUP_TIMEOUT, state.profiles.person(doctor_id)).await;
    let person = match asked {
        Ok(Ok(person)) => person,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "profiles: no answer for a doctor; the local directory is shown");
            return Ok(local);
        }
        Err(_) => {
            tracing::warn!("profiles: a doctor's look-up is slow; the local directory is shown");
            return Ok(local);
        }
    };
    Ok(match (person, local) {
        (Some(p), local) => {
            let specialties = local.map(|l| l.specialties).unwrap_or_default();
            Some(DoctorProfile {
                doctor_id: UserId::new(doctor_id.to_owned()),
                name_en: p.name_en,
                name_ar: p.name_ar,
                phone: p.phone.unwrap_or_default(),
                email: p.email.unwrap_or_default(),
                specialties,
            })
        }
        (None, local) => local,
    })
}

/// The standalone profiles: the local tables.
#[derive(Clone, Debug)]
pub struct LocalProfiles {
    store: Store,
}

impl LocalProfiles {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    async fn lookup(&self, user_id: &str) -> Result<Option<Person>, OutboundError> {
        let doctor = self
            .store
            .doctor(user_id)
            .await
            .map_err(|e| OutboundError::Transient(format!("local profiles: {e}")))?;
        Ok(doctor.map(|d| Person {
            user_id: d.doctor_id.to_string(),
            name_en: d.name_en,
            name_ar: d.name_ar,
            language: "en".to_owned(),
            phone: Some(d.phone),
            email: Some(d.email),
        }))
    }
}

impl Profiles for LocalProfiles {
    fn name(&self) -> &'static str {
        "local profiles"
    }

    fn person<'a>(
        &'a self,
        user_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Person>, OutboundError>> {
        Box::pin(self.lookup(user_id))
    }

    fn is_local(&self) -> bool {
        true
    }

    fn create_invoice<'a>(
        &'a self,
        invoice: &'a InvoiceRequest,
        _idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<(), OutboundError>> {
        Box::pin(async move {
            // Standalone mode has no billing system: the invoice is the payment on record.
            tracing::info!(case_id = %invoice.case_id, payment_id = %invoice.payment_reference, "invoice recorded");
            Ok(())
        })
    }
}

/// The profiles service over HTTP, with a cache of the people it looked up.
#[derive(Debug)]
pub struct HttpProfiles {
    service: Service,
    cache: PersonCache,
}

impl HttpProfiles {
    pub fn new(service: Service) -> Self {
        Self {
            service,
            cache: PersonCache::default(),
        }
    }

    async fn lookup(&self, user_id: &str) -> Result<Option<Person>, OutboundError> {
        if let Some(known) = self.cache.get(user_id, Instant::now()) {
            return Ok(known);
        }
        // A user id is put in a URL path: only ids that need no escaping are asked about
        // (the platform's are like `P1`, `EMP12`); anything else is nobody the service knows.
        if user_id.is_empty()
            || !user_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b))
        {
            return Ok(None);
        }
        let path = format!("/v1/users/{user_id}");
        let person = self
            .service
            .call::<(), Person>(Method::GET, &path, None, None, true)
            .await?;
        self.cache.put(user_id, person.clone(), Instant::now());
        Ok(person)
    }
}

impl Profiles for HttpProfiles {
    fn name(&self) -> &'static str {
        "profiles"
    }

    fn person<'a>(
        &'a self,
        user_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Person>, OutboundError>> {
        Box::pin(self.lookup(user_id))
    }

    fn create_invoice<'a>(
        &'a self,
        invoice: &'a InvoiceRequest,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<(), OutboundError>> {
        Box::pin(
            self.service
                .post_keyed("/v1/invoices", invoice, idempotency_key),
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a failing test should panic loudly
mod tests {
    use super::*;

    fn person(id: &str, en: &str, ar: &str) -> Person {
        Person {
            user_id: id.to_owned(),
            name_en: en.to_owned(),
            name_ar: ar.to_owned(),
            language: "ar".to_owned(),
            phone: Some("+966500000000".to_owned()),
            email: None,
        }
    }

    #[test]
    fn cached_people_expire_after_their_ttl_and_unknown_ones_sooner() {
        let cache = PersonCache::default();
        let t0 = Instant::now();
        assert_eq!(cache.get("P1", t0), None);
        cache.put("P1", Some(person("P1", "Layla", "ليلى")), t0);
        cache.put("P2", None, t0);
        let p1 = cache.get("P1", t0 + CACHE_TTL - Duration::from_secs(1));
        assert_eq!(p1.flatten().map(|p| p.user_id), Some("P1".to_owned()));
        assert_eq!(cache.get("P1", t0 + CACHE_TTL), None);
        assert_eq!(cache.get("P2", t0 + Duration::from_secs(1)), Some(None));
        assert_eq!(cache.get("P2", t0 + UNKNOWN_TTL), None);
    }

    #[test]
    fn a_full_cache_drops_expired_entries_first() {
        let cache = PersonCache::default();
        let t0 = Instant::now();
        for i in 0..CACHE_MAX {
            cache.put(&format!("U{i}"), None, t0);
        }
        let later = t0 + UNKNOWN_TTL;
        cache.put("P1", Some(person("P1", "a", "b")), later);
        assert!(cache.get("P1", later).is_some());
        assert_eq!(cache.entries.lock().unwrap().len(), 1);
    }

    #[test]
    fn names_fall_back_to_the_other_language_and_debug_hides_them() {
        let p = person("P1", "Layla Haddad", "");
        assert_eq!(p.name_in(Lang::Ar).as_deref(), Some("Layla Haddad"));
        assert_eq!(p.name_in(Lang::En).as_deref(), Some("Layla Haddad"));
        assert_eq!(person("P1", " ", "").name_in(Lang::En), None);
        let both = person("P1", "Layla", "ليلى");
        assert_eq!(both.name_in(Lang::Ar).as_deref(), Some("ليلى"));
        let debug = format!("{both:?}");
        assert!(
            !debug.contains("Layla") && !debug.contains("+966"),
            "{debug}"
        );
        let cache = PersonCache::default();
        cache.put("P1", Some(both), Instant::now());
        assert!(!format!("{cache:?}").contains("Layla"));
    }
}
