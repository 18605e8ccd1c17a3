//! ONe platform webhook simulator.
//!
//! ONe has no public webhook documentation (`docs/vendors/webhooks.md` §5):
//! the only known fact is HTTP Basic authentication with the username and
//! password entered in ONe's webhook form. The body shape used here is the
//! project's own documented contract, which the production parser accepts:
//! `{"event": <name>, "timestamp": "<RFC 3339 UTC>", "customerId", "cartId",
//! "offerId"}`, with the ids present only for the events that carry them.

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

/// `{"event":"Cart opened","timestamp":ts,"customerId":..,"cartId":..}`.
pub fn cart_opened(customer_id: &str, cart_id: &str, ts: &str) -> Value {
    json!({ "event": CART_OPENED, "timestamp": ts, "customerId": customer_id, "cartId": cart_id })
}

/// `{"event":"Client logged","timestamp":ts,"customerId":..}`.
pub fn client_logged(customer_id: &str, ts: &str) -> Value {
    json!({ "event": CLIENT_LOGGED, "timestamp": ts, "customerId": customer_id })
}

/// `{"event":"OfferOpened BO","timestamp":ts,"customerId":..,"offerId":..}`.
pub fn offer_opened(customer_id: &str, offer_id: &str, ts: &str) -> Value {
    json!({ "event": OFFER_OPENED, "timestamp": ts, "customerId": customer_id, "offerId": offer_id })
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
        let c = cart_opened("c1", "k1", &ts);
        assert_eq!(c["event"], "Cart opened");
        assert_eq!(c["cartId"], "k1");
        assert!(client_logged("c1", &ts).get("cartId").is_none());
        assert_eq!(offer_opened("c1", "o1", &ts)["offerId"], "o1");
        assert_eq!(
            test_webhook(&ts),
            json!({"event": "Submit test webhook", "timestamp": "2024-05-01T12:00:00Z"})
        );
    }
}
