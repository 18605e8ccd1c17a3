//! ONe platform webhook simulator.
//!
//! ONe has no public webhook documentation (`docs/vendors/webhooks.md` §5).
//! What is known comes from the ONe release note in the seeds
//! (`/work/shared/seeds/004_…`, "Webhooks"):
//! - HTTP_BASIC authentication with the username and password entered in the
//!   webhook form;
//! - "Cart opened" carries "the id of the customer and the id of the shopping
//!   cart", and is sent every time a cart is opened;
//! - "Client logged" carries the customer id; "In case of inactivity for 30
//!   minutes, renewed activity will resend this event";
//! - "OfferOpened BO" is "sent whenever the offer ID in the URL changes".
//!
//! Nothing says the body carries a time or a delivery id, so by default it
//! carries neither: `{"event": <name>, "customerId", "cartId", "offerId"}`.
//! The same activity repeated is the same bytes. [`with_timestamp`] adds the
//! `timestamp` our parser also reads, for tests about event dates.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{SecondsFormat, TimeZone, Utc};
use serde_json::{json, Value};

pub use super::woocommerce::Delivery;

/// Event name of a cart being opened (carries `customerId`, `cartId`).
pub const CART_OPENED: &str = "Cart opened";
/// Event name of a client logging in (carries `customerId`).
pub const CLIENT_LOGGED: &str = "Client logged";
/// Event name of an offer being opened in the back office (`customerId`, `offerId`).
pub const OFFER_OPENED: &str = "OfferOpened BO";
/// Event name of ONe's "send a test webhook" button (no ids).
pub const TEST_WEBHOOK: &str = "Submit test webhook";

/// Unix seconds as RFC 3339 UTC with a `Z`, e.g. `2024-05-01T12:00:00Z`.
pub fn rfc3339(unix_seconds: i64) -> String {
    Utc.timestamp_opt(unix_seconds, 0)
        .single()
        .expect("timestamp in range")
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `{"event":"Cart opened","customerId":..,"cartId":..}`: the same bytes
/// every time this customer opens this cart.
pub fn cart_opened(customer_id: &str, cart_id: &str) -> Value {
    json!({ "event": CART_OPENED, "customerId": customer_id, "cartId": cart_id })
}

/// `{"event":"Client logged","customerId":..}`: the same bytes at every
/// login (and again after 30 minutes of inactivity).
pub fn client_logged(customer_id: &str) -> Value {
    json!({ "event": CLIENT_LOGGED, "customerId": customer_id })
}

/// `{"event":"OfferOpened BO","customerId":..,"offerId":..}`.
pub fn offer_opened(customer_id: &str, offer_id: &str) -> Value {
    json!({ "event": OFFER_OPENED, "customerId": customer_id, "offerId": offer_id })
}

/// The body with a `timestamp` (RFC 3339), which ONe is not known to send.
pub fn with_timestamp(mut body: Value, ts: &str) -> Value {
    body["timestamp"] = json!(ts);
    body
}

/// A verified body of a shape we do not know (ONe publishes no schema).
pub fn unknown_shape() -> Value {
    json!({ "type": "basket.viewed", "payload": { "basket": "b-7" } })
}

/// `{"event":"Submit test webhook","timestamp":ts}`.
pub fn test_webhook(ts: &str) -> Value {
    json!({ "event": TEST_WEBHOOK, "timestamp": ts })
}

/// `Basic base64(username:password)` (§5).
pub fn basic_auth(username: &str, password: &str) -> String {
    format!(
        "Basic {}",
        STANDARD.encode(format!("{username}:{password}"))
    )
}

/// The request: compact JSON body, `Content-Type: application/json`, and
/// `Authorization: Basic base64(username:password)` (§5).
pub fn delivery(body: &Value, username: &str, password: &str) -> Delivery {
    Delivery {
        headers: vec![
            ("Content-Type".to_string(), "application/json".to_string()),
            ("Authorization".to_string(), basic_auth(username, password)),
        ],
        body: serde_json::to_vec(body).expect("JSON serializes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_matches_independent_value() {
        // Python: base64.b64encode(b"user:pass") == b"dXNlcjpwYXNz"
        assert_eq!(basic_auth("user", "pass"), "Basic dXNlcjpwYXNz");
        let d = delivery(&test_webhook("2024-05-01T12:00:00Z"), "user", "pass");
        assert_eq!(d.header("authorization"), Some("Basic dXNlcjpwYXNz"));
        assert_eq!(d.header("content-type"), Some("application/json"));
    }

    #[test]
    fn event_shapes() {
        let ts = rfc3339(1714564800);
        assert_eq!(ts, "2024-05-01T12:00:00Z");
        let c = cart_opened("c1", "k1");
        assert_eq!(c["event"], "Cart opened");
        assert_eq!(c["cartId"], "k1");
        assert!(c.get("timestamp").is_none());
        assert!(client_logged("c1").get("cartId").is_none());
        assert_eq!(offer_opened("c1", "o1")["offerId"], "o1");
        assert_eq!(with_timestamp(client_logged("c1"), &ts)["timestamp"], ts);
        assert_eq!(
            test_webhook(&ts),
            json!({"event": "Submit test webhook", "timestamp": "2024-05-01T12:00:00Z"})
        );
    }
}
