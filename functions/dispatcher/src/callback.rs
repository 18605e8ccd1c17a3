//! The signed callback request: the exact bytes that were signed, and the
//! headers a receiver verifies them with.
//!
//! - `Elements-Webhook-Signature: sha256=<base64 HMAC-SHA256(signature key, body)>`
//!   (Cloud Elements' scheme), when the instance has a signature key;
//! - `Elements-Webhook-Id` and the Standard Webhooks `webhook-id`: the
//!   notification id, the same on every attempt;
//! - `webhook-timestamp`: fresh on every attempt;
//! - `webhook-signature: v1,<base64>` over `{id}.{timestamp}.{body}`, keyed
//!   with the signature key's bytes; a Standard Webhooks library verifies it
//!   given the secret `whsec_` + base64(signature key).

use shared::signing::{hmac_sha256_base64, standard_webhooks_signature};

pub struct CallbackRequest {
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
}

pub fn build(
    notification_id: &str,
    body: Vec<u8>,
    signature_key: Option<&str>,
    timestamp: i64,
) -> CallbackRequest {
    let mut headers = vec![
        ("content-type", "application/json".to_string()),
        ("elements-webhook-id", notification_id.to_string()),
        ("webhook-id", notification_id.to_string()),
        ("webhook-timestamp", timestamp.to_string()),
    ];
    if let Some(key) = signature_key {
        headers.push((
            "elements-webhook-signature",
            format!("sha256={}", hmac_sha256_base64(key.as_bytes(), &body)),
        ));
        headers.push((
            "webhook-signature",
            standard_webhooks_signature(key.as_bytes(), notification_id, timestamp, &body),
        ));
    }
    CallbackRequest { body, headers }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_the_exact_body_in_both_schemes() {
        let req = build(
            "evt_1",
            br#"{"message":{}}"#.to_vec(),
            Some("sig-key"),
            1_700_000_000,
        );
        let header = |name: &str| {
            req.headers
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(header("webhook-id"), Some("evt_1"));
        assert_eq!(header("elements-webhook-id"), Some("evt_1"));
        assert_eq!(header("webhook-timestamp"), Some("1700000000"));
        // python3: base64(hmac.new(b"sig-key", b'{"message":{}}', sha256).digest())
        assert_eq!(
            header("elements-webhook-signature"),
            Some("sha256=Z4+pjXsVUaT/W5xTpTovNmx4kSREyv/bg3ZZydfgRec=")
        );
        // python3: base64(hmac.new(b"sig-key", b'evt_1.1700000000.{"message":{}}', sha256).digest())
        assert_eq!(
            header("webhook-signature"),
            Some("v1,TyNgV3bqZK+nj4z3hQYqu1W8CiNQaD55LnhUg9/dvUI=")
        );
    }

    #[test]
    fn without_a_key_nothing_is_signed() {
        let req = build("evt_1", b"{}".to_vec(), None, 1);
        assert!(req.headers.iter().all(|(k, _)| !k.contains("signature")));
    }
}
