//! The response language chosen by the `lang` request header (SPEC §10).
//!
//! `1` or `ar` → Arabic; `0`, `en`, a missing header or anything else → English. This is a local
//! stand-in with the same shape as `sop_core::lang::Lang` (`En`/`Ar`, `from_header`, `pick`); to
//! switch to the core's type, replace the enum and its inherent impl with
//! `pub use sop_core::lang::Lang;` and keep the extractor impl below.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use std::convert::Infallible;

/// A display language. Used as an extractor: it never rejects, it falls back to English.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Lang {
    /// English, the default.
    #[default]
    En,
    /// Arabic.
    Ar,
}

impl Lang {
    /// Reads the `lang` header value: `1` or `ar` (any case) → Arabic, anything else English.
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

impl<S: Send + Sync> FromRequestParts<S> for Lang {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // A header that is not valid UTF-8 cannot be "1" or "ar", so it counts as missing.
        let value = parts.headers.get("lang").and_then(|v| v.to_str().ok());
        Ok(Lang::from_header(value))
    }
}

#[cfg(test)]
mod tests {
    use super::Lang;

    #[test]
    fn lang_header_values_follow_spec() {
        for (value, expected) in [
            (Some("1"), Lang::Ar),
            (Some("ar"), Lang::Ar),
            (Some(" AR "), Lang::Ar),
            (Some("0"), Lang::En),
            (Some("en"), Lang::En),
            (Some("fr"), Lang::En),
            (Some(""), Lang::En),
            (None, Lang::En),
        ] {
            assert_eq!(Lang::from_header(value), expected, "{value:?}");
        }
    }
}
