//! BigCommerce webhook simulator, written from `docs/vendors/webhooks.md` §3
//! (BigCommerce docs: webhooks overview, HTTPS webhooks, events) and §4
//! (Standard Webhooks v1.0.0 spec and reference Python library).
//!
//! The Standard Webhooks signature is implemented here with
//! `hmac`/`sha2`/`base64`, independently of the production code.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub use super::woocommerce::Delivery;

/// `store_id` of the docs' callback example (§3.1); a string of digits.
pub const DOCS_STORE_ID: &str = "1025646";

/// `data.type` for a scope: the segment after `store/` (§3.1 examples:
/// `store/order/created` → `order`, `store/customer/address/created` → `customer`).
pub fn data_type(scope: &str) -> &str {
    let rest = scope.strip_prefix("store/").unwrap_or(scope);
    rest.split('/').next().unwrap_or(rest)
}

/// A callback body (§3.1): `{scope, store_id, data:{type,id}, hash,
/// created_at, producer:"stores/{store_hash}"}`, with the docs' `store_id`.
pub fn webhook(scope: &str, store_hash: &str, id: u64, hash: &str, created_at: i64) -> Value {
    webhook_for_store(scope, DOCS_STORE_ID, store_hash, id, hash, created_at)
}

/// [`webhook`] with an explicit `store_id` (a string of digits, §3.1).
pub fn webhook_for_store(
    scope: &str,
    store_id: &str,
    store_hash: &str,
    id: u64,
    hash: &str,
    created_at: i64,
) -> Value {
    webhook_with_data(
        scope,
        store_id,
        store_hash,
        json!({ "type": data_type(scope), "id": id }),
        hash,
        created_at,
    )
}

/// A callback body with scope-specific `data` (§3.1 examples, e.g.
/// `{"type":"cart","id":"<uuid>","orderId":252}` for `store/cart/converted`).
pub fn webhook_with_data(
    scope: &str,
    store_id: &str,
    store_hash: &str,
    data: Value,
    hash: &str,
    created_at: i64,
) -> Value {
    json!({
        "scope": scope,
        "store_id": store_id,
        "data": data,
        "hash": hash,
        "created_at": created_at,
        "producer": format!("stores/{store_hash}")
    })
}

/// `data` of `store/order/statusUpdated` (§3.1 example shape).
pub fn order_status_updated_data(order_id: u64, previous: u64, new: u64) -> Value {
    json!({
        "type": "order",
        "id": order_id,
        "status": { "previous_status_id": previous, "new_status_id": new }
    })
}

/// A 40-hex value shaped like the payload `hash` (BigCommerce documents it as
/// SHA-1 of the payload data; the exact input is not specified, §3.1), derived
/// deterministically from `seed` so the same event gets the same hash.
pub fn dedupe_hash(seed: &str) -> String {
    hex::encode(&Sha256::digest(seed.as_bytes())[..20])
}

/// Standard Webhooks `webhook-signature` (§3.2, §4):
/// `v1,` + base64(HMAC-SHA256(secret, "{msg_id}.{timestamp}.{body}")).
pub fn standard_webhooks_signature(
    secret: &[u8],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(format!("{msg_id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The Standard Webhooks display form of a symmetric secret: `whsec_` +
/// base64(secret) (§4).
pub fn whsec(secret: &[u8]) -> String {
    format!("whsec_{}", STANDARD.encode(secret))
}

/// The callback request (§3.1, §3.2): compact JSON body, `Content-Type:
/// application/json` (assumed; UNCONFIRMED in the docs), then the hook's
/// custom `headers`, then, when `standard_webhooks_secret` is given (the raw
/// client-secret bytes), `webhook-id`, `webhook-timestamp`, `webhook-signature`.
pub fn delivery(
    body: &Value,
    custom_headers: &[(&str, &str)],
    standard_webhooks_secret: Option<&[u8]>,
    msg_id: &str,
    timestamp: i64,
) -> Delivery {
    let bytes = serde_json::to_vec(body).expect("JSON serializes");
    let mut headers = vec![("Content-Type".to_string(), "application/json".to_string())];
    headers.extend(
        custom_headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    if let Some(secret) = standard_webhooks_secret {
        headers.push(("webhook-id".to_string(), msg_id.to_string()));
        headers.push(("webhook-timestamp".to_string(), timestamp.to_string()));
        headers.push((
            "webhook-signature".to_string(),
            standard_webhooks_signature(secret, msg_id, timestamp, &bytes),
        ));
    }
    Delivery {
        headers,
        body: bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_webhooks_reference_vector() {
        // SW-PY test_sign_function (docs/vendors/webhooks.md §4), re-checked
        // in Python: key = base64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").
        let key = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(whsec(&key), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        assert_eq!(
            standard_webhooks_signature(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn bigcommerce_client_secret_signature() {
        // Python: "v1," + base64(hmac.new(b"my-client-secret",
        //   b'msg_1.1700000000.{"scope":"store/order/created"}', sha256).digest())
        assert_eq!(
            standard_webhooks_signature(
                b"my-client-secret",
                "msg_1",
                1700000000,
                br#"{"scope":"store/order/created"}"#
            ),
            "v1,xtUrGYVOtIhKYzPAkOuzC+pyWdT0QX7KW5HaYrMW4MU="
        );
        // Python: "whsec_" + base64(b"my-client-secret")
        assert_eq!(whsec(b"my-client-secret"), "whsec_bXktY2xpZW50LXNlY3JldA==");
        let d = delivery(
            &json!({"scope": "store/order/created"}),
            &[("X-Custom-Auth", "s3cret")],
            Some(b"my-client-secret"),
            "msg_1",
            1700000000,
        );
        assert_eq!(d.body, br#"{"scope":"store/order/created"}"#);
        assert_eq!(
            d.header("webhook-signature"),
            Some("v1,xtUrGYVOtIhKYzPAkOuzC+pyWdT0QX7KW5HaYrMW4MU=")
        );
        assert_eq!(d.header("x-custom-auth"), Some("s3cret"));
        let unsigned = delivery(&json!({}), &[], None, "msg_1", 1);
        assert!(unsigned.header("webhook-signature").is_none());
    }

    #[test]
    fn webhook_shape() {
        let w = webhook(
            "store/order/created",
            "abc123",
            250,
            "dd70c0976e06b67aaf671e73f49dcb79230ebf9d",
            1561479335,
        );
        assert_eq!(w["store_id"], "1025646");
        assert_eq!(w["data"], json!({"type": "order", "id": 250}));
        assert_eq!(w["producer"], "stores/abc123");
        assert_eq!(data_type("store/customer/address/created"), "customer");
        assert_eq!(dedupe_hash("x").len(), 40);
    }
}
