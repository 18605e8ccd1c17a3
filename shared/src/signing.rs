//! HMAC-SHA256 signatures: computing them (callbacks) and verifying them
//! (vendor webhooks) in constant time, plus the Standard Webhooks scheme.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// How far a Standard Webhooks timestamp may be from now, as the reference
/// Constant-time equality for secrets, digests and signatures.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // `ct_eq` on slices of different length returns false without leaking
    // where they differ; the length itself is not secret.
    a.ct_eq(b).into()
}

/// libraries allow.
pub const STANDARD_WEBHOOKS_TOLERANCE_SECS: i64 = 5 * 60;

fn mac(key: &[u8]) -> HmacSha256 {
    HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length")
}

pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut m = mac(key);
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().to_vec()
}

pub fn hmac_sha256_base64(key: &[u8], message: &[u8]) -> String {
    B64.encode(hmac_sha256(key, &[message]))
}

/// True if `provided_b64` is the base64 HMAC-SHA256 of the parts under `key`.
/// The comparison is constant-time (`Mac::verify_slice`).
pub fn verify_base64_hmac(key: &[u8], parts: &[&[u8]], provided_b64: &str) -> bool {
    let Ok(provided) = B64.decode(provided_b64.trim()) else {
        return false;
    };
    let mut m = mac(key);
    for p in parts {
        m.update(p);
    }
    m.verify_slice(&provided).is_ok()
}

/// `whsec_` + base64(key): the secret a Standard Webhooks library is given.
pub fn standard_webhooks_secret(key: &[u8]) -> String {
    format!("whsec_{}", B64.encode(key))
}

/// `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`.
pub fn standard_webhooks_signature(
    key: &[u8],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    let ts = timestamp.to_string();
    let sig = hmac_sha256(key, &[msg_id.as_bytes(), b".", ts.as_bytes(), b".", body]);
    format!("v1,{}", B64.encode(sig))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StandardWebhooksError {
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    #[error("webhook-timestamp is not a number")]
    BadTimestamp,
    #[error("webhook-timestamp is outside the allowed window")]
    Stale,
    #[error("no webhook-signature matches")]
    NoMatch,
}

/// Verifies a Standard Webhooks delivery: any `v1,` signature in the
/// space-separated header may match, and the timestamp must be recent.
pub fn verify_standard_webhooks(
    key: &[u8],
    msg_id: Option<&str>,
    timestamp: Option<&str>,
    signatures: Option<&str>,
    body: &[u8],
    now_secs: i64,
) -> Result<(), StandardWebhooksError> {
    let msg_id = msg_id.ok_or(StandardWebhooksError::MissingHeader("webhook-id"))?;
    let ts_text = timestamp.ok_or(StandardWebhooksError::MissingHeader("webhook-timestamp"))?;
    let signatures = signatures.ok_or(StandardWebhooksError::MissingHeader("webhook-signature"))?;
    let ts: i64 = ts_text
        .trim()
        .parse()
        .map_err(|_| StandardWebhooksError::BadTimestamp)?;
    if (now_secs - ts).abs() > STANDARD_WEBHOOKS_TOLERANCE_SECS {
        return Err(StandardWebhooksError::Stale);
    }
    let ts_text = ts.to_string();
    let matched = signatures
        .split_whitespace()
        .any(|entry| match entry.split_once(',') {
            Some(("v1", sig)) => verify_base64_hmac(
                key,
                &[msg_id.as_bytes(), b".", ts_text.as_bytes(), b".", body],
                sig,
            ),
            _ => false,
        });
    if matched {
        Ok(())
    } else {
        Err(StandardWebhooksError::NoMatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_what_it_signs_and_nothing_else() {
        let sig = hmac_sha256_base64(b"secret", b"body");
        assert!(verify_base64_hmac(b"secret", &[b"body"], &sig));
        assert!(verify_base64_hmac(b"secret", &[b"bo", b"dy"], &sig));
        assert!(!verify_base64_hmac(b"secret", &[b"body!"], &sig));
        assert!(!verify_base64_hmac(b"other", &[b"body"], &sig));
        assert!(!verify_base64_hmac(b"secret", &[b"body"], "not base64!"));
        assert!(!verify_base64_hmac(b"secret", &[b"body"], ""));
    }

    #[test]
    fn standard_webhooks_reference_vector() {
        // The test vector of the Standard Webhooks reference libraries.
        let secret = B64.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let sig =
            standard_webhooks_signature(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert_eq!(
            standard_webhooks_secret(&secret),
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        );
        let ok = verify_standard_webhooks(
            &secret,
            Some("msg_p5jXN8AQM9LWM0D4loKWxJek"),
            Some("1614265330"),
            Some(&format!("v1,bogus {sig}")),
            body,
            1614265330 + 10,
        );
        assert_eq!(ok, Ok(()));
        let stale = verify_standard_webhooks(
            &secret,
            Some("m"),
            Some("1614265330"),
            Some(&sig),
            body,
            1614265330 + 301,
        );
        assert_eq!(stale, Err(StandardWebhooksError::Stale));
        let wrong = verify_standard_webhooks(
            &secret,
            Some("other"),
            Some("1614265330"),
            Some(&sig),
            body,
            1614265330,
        );
        assert_eq!(wrong, Err(StandardWebhooksError::NoMatch));
    }
}
