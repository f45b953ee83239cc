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
//! Calls are made by the outbox worker only (invoices, the language of push deliveries).

use crate::outbound::{OutboundError, Service};
use crate::payments::BoxFuture;
use crate::store::Store;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use sop_core::ids::{CaseId, PaymentId};
use sop_core::lang::Lang;

/// A person's details as the profiles service knows them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

impl Person {
    /// The language notifications to this person are written in.
    pub fn lang(&self) -> Lang {
        Lang::from_header(Some(&self.language))
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

/// The profiles service over HTTP.
#[derive(Debug)]
pub struct HttpProfiles {
    service: Service,
}

impl HttpProfiles {
    pub fn new(service: Service) -> Self {
        Self { service }
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
        Box::pin(async move {
            let path = format!("/v1/users/{user_id}");
            self.service
                .call::<(), Person>(Method::GET, &path, None, None, true)
                .await
        })
    }

    fn create_invoice<'a>(
        &'a self,
        invoice: &'a InvoiceRequest,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<(), OutboundError>> {
        Box::pin(async move {
            self.service
                .call::<_, serde_json::Value>(
                    Method::POST,
                    "/v1/invoices",
                    Some(invoice),
                    Some(idempotency_key),
                    false,
                )
                .await
                .map(|_| ())
        })
    }
}
