//! Languages the product speaks (English and Arabic) and the localized names of statuses.

use crate::case::Status;
use serde::{Deserialize, Serialize};

/// A display language.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lang {
    #[default]
    En,
    Ar,
}

impl Lang {
    /// Reads the `lang` header convention of SPEC §10: `1` or `ar` → Arabic, anything else English.
    pub fn from_header(value: Option<&str>) -> Self {
        match value.map(str::trim) {
            Some(v) if v == "1" || v.eq_ignore_ascii_case("ar") => Lang::Ar,
            _ => Lang::En,
        }
    }

    /// Picks the text of this language.
    pub fn pick<'a>(self, en: &'a str, ar: &'a str) -> &'a str {
        match self {
            Lang::En => en,
            Lang::Ar => ar,
        }
    }
}

/// Text in both languages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Localized {
    pub en: String,
    pub ar: String,
}

impl Localized {
    pub fn new(en: impl Into<String>, ar: impl Into<String>) -> Self {
        Self {
            en: en.into(),
            ar: ar.into(),
        }
    }

    pub fn get(&self, lang: Lang) -> &str {
        lang.pick(&self.en, &self.ar)
    }
}

/// The human name of a status in English.
pub fn status_name_en(status: Status) -> &'static str {
    match status {
        Status::Draft => "draft",
        Status::Submitted => "submitted",
        Status::AwaitingPayment => "awaiting payment",
        Status::PaymentFailed => "payment failed",
        Status::PaymentSuccessful => "payment successful",
        Status::DoctorsAssigned => "doctors assigned",
        Status::Completed => "completed",
        Status::Cancelled => "cancelled",
        Status::Rejected => "rejected",
    }
}

/// The human name of a status in Arabic.
pub fn status_name_ar(status: Status) -> &'static str {
    match status {
        Status::Draft => "مسودة",
        Status::Submitted => "مُرسلة",
        Status::AwaitingPayment => "بانتظار الدفع",
        Status::PaymentFailed => "فشل الدفع",
        Status::PaymentSuccessful => "تم الدفع",
        Status::DoctorsAssigned => "تم تعيين الأطباء",
        Status::Completed => "مكتملة",
        Status::Cancelled => "ملغاة",
        Status::Rejected => "مرفوضة",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lang_header_follows_spec_convention() {
        assert_eq!(Lang::from_header(Some("1")), Lang::Ar);
        assert_eq!(Lang::from_header(Some("ar")), Lang::Ar);
        assert_eq!(Lang::from_header(Some("0")), Lang::En);
        assert_eq!(Lang::from_header(Some("en")), Lang::En);
        assert_eq!(Lang::from_header(Some("fr")), Lang::En);
        assert_eq!(Lang::from_header(None), Lang::En);
    }
}
