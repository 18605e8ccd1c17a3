//! Ecwid (Lightspeed E-Series) webhook simulator, written from
//! `docs/vendors/webhooks.md` §2 (which cites `Ecwid/ecwid-api-docs`
//! `includes/_webhooks.md` and the api-docs.ecwid.com / docs.ecwid.com pages).
//!
//! One webhook URL serves every store that installed the app (§2.1), so
//! tests send webhooks of stores with no instance here; Ecwid retries a
//! refusal for 24 hours and blocks the app after two weeks of failures (§2.5).
//!
//! The signature is implemented here with `hmac`/`sha2`/`base64`,
//! independently of the production code. Note that Ecwid signs only
//! `"{eventCreated}.{eventId}"`, not the body (§2.3).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;

pub use super::woocommerce::Delivery;

/// Every documented event type (§2.4).
pub const EVENT_TYPES: &[&str] = &[
    "profile.updated",
    "profile.subscriptionStatusChanged",
    "order.created",
    "order.updated",
    "order.deleted",
    "unfinished_order.created",
    "unfinished_order.updated",
    "unfinished_order.deleted",
    "product.created",
    "product.updated",
    "product.deleted",
    "category.created",
    "category.updated",
    "category.deleted",
    "customer.created",
    "customer.updated",
    "customer.deleted",
    "customer_group.created",
    "customer_group.updated",
    "customer_group.deleted",
    "discount_coupon.created",
    "discount_coupon.updated",
    "discount_coupon.deleted",
    "promotion.created",
    "promotion.updated",
    "promotion.deleted",
    "product_class.created",
    "product_class.updated",
    "product_class.deleted",
    "review.created",
    "review.updated",
    "review.deleted",
    "invoice.created",
    "invoice.deleted",
    "application.installed",
    "application.uninstalled",
    "application.subscriptionStatusChanged",
    "application.storageChanged",
    "customer.personalDataRemovalRequest",
    "customer.personalDataExportRequest",
    "profile.personalDataRemovalRequest",
    "profile.personalDataExportRequest",
];

/// A webhook body (§2.2): `eventId`, `eventCreated`, `storeId`, `entityId`,
/// `eventType`, and `data` unless `data` is `Value::Null`.
pub fn event(
    event_type: &str,
    store_id: u64,
    entity_id: u64,
    event_id: &str,
    event_created: i64,
    data: Value,
) -> Value {
    let mut body = Map::new();
    body.insert("eventId".into(), json!(event_id));
    body.insert("eventCreated".into(), json!(event_created));
    body.insert("storeId".into(), json!(store_id));
    body.insert("entityId".into(), json!(entity_id));
    body.insert("eventType".into(), json!(event_type));
    if !data.is_null() {
        body.insert("data".into(), data);
    }
    Value::Object(body)
}

/// `data` of `order.updated`, values from the docs' example (§2.2).
pub fn order_updated_data(order_id: &str) -> Value {
    json!({
        "orderId": order_id,
        "oldPaymentStatus": "PAID",
        "newPaymentStatus": "PAID",
        "oldFulfillmentStatus": "PROCESSING",
        "newFulfillmentStatus": "SHIPPED"
    })
}

/// `data` of `order.created`/`order.deleted`: `orderId` plus the new
/// statuses (§2.2; the status values are illustrative Ecwid statuses).
pub fn order_created_data(order_id: &str) -> Value {
    json!({
        "orderId": order_id,
        "newPaymentStatus": "AWAITING_PAYMENT",
        "newFulfillmentStatus": "AWAITING_PROCESSING"
    })
}

/// `data` of `unfinished_order.*` (abandoned cart): `orderId`, `cartId` (§2.2).
pub fn unfinished_order_data(order_id: &str, cart_id: &str) -> Value {
    json!({ "orderId": order_id, "cartId": cart_id })
}

/// `data` of `application.subscriptionStatusChanged` (§2.2).
pub fn subscription_status_changed_data(old: &str, new: &str) -> Value {
    json!({ "oldSubscriptionStatus": old, "newSubscriptionStatus": new })
}

/// The docs' `order.updated` example body, verbatim (§2.2).
pub fn docs_order_updated_example() -> Value {
    event(
        "order.updated",
        1003,
        450012387,
        "80aece08-40e8-4145-8764-6c2f0d38678",
        1234567,
        order_updated_data("B8HGD"),
    )
}

/// The docs' `product.updated` example body, verbatim (§2.2, no `data`).
pub fn docs_product_updated_example() -> Value {
    event(
        "product.updated",
        1003,
        66722483,
        "08a78904-0aa0-4c1a-953a-2e33c56236f0",
        1469429912,
        Value::Null,
    )
}

/// `X-Ecwid-Webhook-Signature`: base64(HMAC-SHA256(client_secret,
/// "{eventCreated}.{eventId}")) (§2.3).
pub fn signature(client_secret: &str, event_created: i64, event_id: &str) -> String {
    sign(client_secret, &format!("{event_created}.{event_id}"))
}

fn sign(client_secret: &str, message: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(client_secret.as_bytes()).expect("any key length");
    mac.update(message.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// The webhook URL with the event type repeated as `?eventtype=` (§2.1).
pub fn callback_url(webhook_url: &str, event_type: &str) -> String {
    let sep = if webhook_url.contains('?') { '&' } else { '?' };
    let encoded: String = url::form_urlencoded::byte_serialize(event_type.as_bytes()).collect();
    format!("{webhook_url}{sep}eventtype={encoded}")
}

/// The request Ecwid sends (§2.1, §2.3): compact JSON body, `Content-Type:
/// application/json; charset=UTF-8`, `Cache-Control: no-cache`, and the
/// signature over the body's own `eventCreated` and `eventId`.
///
/// A missing/non-integer `eventCreated` or non-string `eventId` is signed as
/// its JSON text (or empty when absent), so malformed bodies still get a header.
pub fn delivery(body: &Value, client_secret: &str) -> Delivery {
    let created = match body.get("eventCreated") {
        Some(v) => v.as_i64().map(|n| n.to_string()).unwrap_or(v.to_string()),
        None => String::new(),
    };
    let event_id = match body.get("eventId") {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => String::new(),
    };
    let sig = sign(client_secret, &format!("{created}.{event_id}"));
    Delivery {
        headers: vec![
            (
                "Content-Type".to_string(),
                "application/json; charset=UTF-8".to_string(),
            ),
            ("Cache-Control".to_string(), "no-cache".to_string()),
            ("X-Ecwid-Webhook-Signature".to_string(), sig),
        ],
        body: serde_json::to_vec(body).expect("JSON serializes"),
    }
}

/// What the legacy "ION Cannon" (Instant Order Notification) URL of the
/// Cloud Elements setup received, as far as anything public shows
/// (`docs/vendors/webhooks.md` §2.6: gist.github.com/cornelisonc/2883084
/// reads `$_POST['order_id']`): a form post of the order id, no signature,
/// no store id, no event type.
pub fn ion_cannon_delivery(order_id: u64) -> Delivery {
    Delivery {
        headers: vec![(
            "Content-Type".to_string(),
            "application/x-www-form-urlencoded".to_string(),
        )],
        body: format!("order_id={order_id}").into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_independent_values() {
        // Python: base64(hmac.new(b"abcde123456789",
        //   b"1469429912.08a78904-0aa0-4c1a-953a-2e33c56236f0", sha256).digest())
        assert_eq!(
            signature(
                "abcde123456789",
                1469429912,
                "08a78904-0aa0-4c1a-953a-2e33c56236f0"
            ),
            "AT6vx56ZwtETOr5EEUtgZC3aJqzCZ1Ccl++RUFVEjP4="
        );
        // Python: base64(hmac.new(b"my-client-secret",
        //   b"1234567.80aece08-40e8-4145-8764-6c2f0d38678", sha256).digest())
        let d = delivery(&docs_order_updated_example(), "my-client-secret");
        assert_eq!(
            d.header("X-Ecwid-Webhook-Signature"),
            Some("mrfGuljkTl9sUY/NwMOGe0Zsi7x4cWJZntqO2rDiLm4=")
        );
        assert_eq!(
            d.header("content-type"),
            Some("application/json; charset=UTF-8")
        );
    }

    #[test]
    fn event_shape() {
        let e = docs_product_updated_example();
        assert_eq!(e["storeId"], 1003);
        assert_eq!(e["eventCreated"], 1469429912);
        assert!(e.get("data").is_none());
        assert_eq!(docs_order_updated_example()["data"]["orderId"], "B8HGD");
        assert_eq!(
            callback_url("https://app.example/cb", "order.updated"),
            "https://app.example/cb?eventtype=order.updated"
        );
    }
}
