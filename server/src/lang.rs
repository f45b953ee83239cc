//! The response language chosen by the `lang` request header (SPEC §10).
//!
//! `1` or `ar` → Arabic; `0`, `en`, a missing header or anything else → English. The language
//! type is the core's; [`RequestLang`] is the extractor (a newtype, since neither the trait nor
//! the type is ours).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use std::convert::Infallible;

/// The core's display language; as an extractor it never rejects and falls back to English.
pub use sop_core::lang::Lang;

/// The language of a request, read from its `lang` header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestLang(pub Lang);

impl<S: Send + Sync> FromRequestParts<S> for RequestLang {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // A header that is not valid UTF-8 cannot be "1" or "ar", so it counts as missing.
        let value = parts.headers.get("lang").and_then(|v| v.to_str().ok());
        Ok(RequestLang(Lang::from_header(value)))
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
