//! The signature of payment callbacks: header `x-sop-signature: t=<unix>,v1=<hex>` where the hex
//! is HMAC-SHA256 over `"<t>.<raw body>"` with the webhook secret. The signed timestamp must be
//! within [`TOLERANCE`] of the receiver's clock, so a captured callback cannot be replayed later.
//!
//! The sandbox signs with [`header_value`]; the callback endpoint checks with [`verify`]. Several
//! `v1=` entries are accepted (one per secret while a secret is being rotated).

use chrono::{DateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header carrying the signature.
pub const HEADER: &str = "x-sop-signature";

/// How far the signed timestamp may be from now, either way (SPEC §5: 5 minutes).
pub const TOLERANCE: TimeDelta = TimeDelta::minutes(5);

/// Why a signature was not accepted. Logged as is: it never contains the body.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header is missing")]
    Missing,
    #[error("the signature header is malformed")]
    Malformed,
    #[error("the signed timestamp is outside the accepted window")]
    Stale,
    #[error("the signature does not match")]
    Mismatch,
}

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The header value signing `body` at `timestamp` (unix seconds).
pub fn header_value(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let sig = hex::encode(mac(secret, timestamp, body).finalize().into_bytes());
    format!("t={timestamp},v1={sig}")
}

/// Checks a header value against the raw `body` at `now`. The comparison is constant-time.
pub fn verify(
    secret: &[u8],
    header: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => {
                timestamp = Some(t.parse::<i64>().map_err(|_| SignatureError::Malformed)?);
            }
            Some(("v1", sig)) => {
                signatures.push(hex::decode(sig).map_err(|_| SignatureError::Malformed)?);
            }
            // Other schemes may be added by the platform; they are not ours to check.
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let signed_at = DateTime::from_timestamp(timestamp, 0).ok_or(SignatureError::Stale)?;
    if (now - signed_at).abs() > TOLERANCE {
        return Err(SignatureError::Stale);
    }
    let expected = mac(secret, timestamp, body);
    if signatures
        .iter()
        .any(|sig| expected.clone().verify_slice(sig).is_ok())
    {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a failing test should panic loudly
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_test";
    const BODY: &[u8] = br#"{"a":1}"#;

    fn at(t: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(t, 0).unwrap()
    }

    #[test]
    fn header_matches_an_independent_hmac() {
        // Computed with Python's hmac module over b'1700000000.{"a":1}'.
        assert_eq!(
            header_value(SECRET, 1_700_000_000, BODY),
            "t=1700000000,v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
        );
    }

    #[test]
    fn a_fresh_signature_verifies() {
        let h = header_value(SECRET, 1_700_000_000, BODY);
        assert_eq!(verify(SECRET, Some(&h), BODY, at(1_700_000_100)), Ok(()));
    }

    #[test]
    fn signature_over_another_body_or_secret_is_refused() {
        let h = header_value(SECRET, 1_700_000_000, BODY);
        let now = at(1_700_000_000);
        assert_eq!(
            verify(SECRET, Some(&h), br#"{"a":2}"#, now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"other", Some(&h), BODY, now),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn timestamps_outside_five_minutes_are_refused_both_ways() {
        let h = header_value(SECRET, 1_700_000_000, BODY);
        assert_eq!(
            verify(SECRET, Some(&h), BODY, at(1_700_000_301)),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(SECRET, Some(&h), BODY, at(1_699_999_699)),
            Err(SignatureError::Stale)
        );
        assert!(verify(SECRET, Some(&h), BODY, at(1_700_000_300)).is_ok());
    }

    #[test]
    fn malformed_headers_are_refused() {
        let now = at(1_700_000_000);
        for h in [
            "",
            "t=x,v1=00",
            "v1=00",
            "t=1700000000",
            "t=1700000000,v1=zz",
        ] {
            assert_eq!(
                verify(SECRET, Some(h), BODY, now),
                Err(SignatureError::Malformed),
                "{h}"
            );
        }
        assert_eq!(
            verify(SECRET, None, BODY, now),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn any_of_several_signatures_may_match() {
        let good = header_value(SECRET, 1_700_000_000, BODY);
        let sig = good.split("v1=").nth(1).unwrap();
        let h = format!("t=1700000000,v1={},v1={sig}", "00".repeat(32));
        assert!(verify(SECRET, Some(&h), BODY, at(1_700_000_000)).is_ok());
    }
}
