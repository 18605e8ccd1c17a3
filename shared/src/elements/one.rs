//! ONe platform: webhooks only, authenticated with HTTP_BASIC.
//!
//! Configuration keys: `one.webhook.username` and `one.webhook.password`, the
//! credentials entered in ONe's webhook form ("Username"/"Password").
//!
//! ONe publishes no payload schema. We accept a JSON object whose event name
//! is in `event` (or `eventName`, `eventType`, `name`, `type`) and whose ids
//! are at the top level or under `data`/`payload`:
//!
//! | ONe event | objectType | objectId | eventType |
//! |---|---|---|---|
//! | `Cart opened` | `carts` | `cartId` | UNKNOWN |
//! | `Client logged` | `customers` | `customerId` (or `clientId`) | UNKNOWN |
//! | `OfferOpened BO` | `offers` | `offerId` | UNKNOWN |
//! | any other | `events` | the first id found | UNKNOWN |
//! | `Submit test webhook` (any name containing "test webhook") | answered 200, nothing stored | | |
//!
//! These are activities, not changes, so the event type is UNKNOWN and the
//! vendor's name is kept as `vendorEventType`.
//!
//! A verified body we cannot map (no event name, no id, not even a JSON
//! object) is still an event: UNKNOWN under objectType `events`, the raw body
//! kept, never a 400, since ONe does not retry and a refusal is a loss.
//!
//! ONe sends no delivery id, and an activity repeats with an identical body
//! ("Client logged" after 30 minutes of inactivity, "Cart opened" on every
//! opening). So identical bodies collapse only within one
//! [`REPEAT_WINDOW_SECONDS`] window (aligned 5-minute buckets of our clock):
//! a quick re-send collapses, the same login an hour or a day later is
//! delivered. A re-send that straddles a bucket boundary is delivered twice
//! (a duplicate, never a loss).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::{require_all, webhook_denied, Element, EventMode};
use crate::auth::constant_time_eq;
use crate::config::values::{optional_str, Configuration};
use crate::error::ApiError;
use crate::events::{body_digest, Event, EventType};
use crate::webhook::{text_at, WebhookContent, WebhookRequest};

pub struct One;

/// Identical bodies within one window of this many seconds are one event.
pub const REPEAT_WINDOW_SECONDS: i64 = 300;

const EVENT_NAME_KEYS: &[&str] = &["event", "eventName", "eventType", "name", "type"];
const NESTED: &[&str] = &["", "data.", "payload."];

impl Element for One {
    fn key(&self) -> &'static str {
        "one"
    }

    fn modes(&self) -> &'static [EventMode] {
        &[EventMode::Webhook]
    }

    fn secret_keys(&self) -> &'static [&'static str] {
        &["one.webhook.password"]
    }

    fn validate_credentials(&self, _cfg: &Configuration) -> Result<(), ApiError> {
        // ONe pushes to us; there is no store API to call.
        Ok(())
    }

    fn validate_webhook_settings(&self, cfg: &Configuration) -> Result<(), ApiError> {
        require_all(cfg, &["one.webhook.username", "one.webhook.password"])
    }

    fn verify_webhook(&self, cfg: &Configuration, req: &WebhookRequest) -> Result<(), ApiError> {
        let user = optional_str(cfg, "one.webhook.username")
            .ok()
            .flatten()
            .ok_or_else(webhook_denied)?;
        let pass = optional_str(cfg, "one.webhook.password")
            .ok()
            .flatten()
            .ok_or_else(webhook_denied)?;
        let header = req.header("authorization").ok_or_else(webhook_denied)?;
        let (scheme, encoded) = header.split_once(' ').ok_or_else(webhook_denied)?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(webhook_denied());
        }
        let decoded = B64.decode(encoded.trim()).map_err(|_| webhook_denied())?;
        let split = decoded
            .iter()
            .position(|&b| b == b':')
            .ok_or_else(webhook_denied)?;
        let (given_user, given_pass) = (&decoded[..split], &decoded[split + 1..]);
        // Compare both halves before deciding, so timing tells nothing about
        // which one was wrong.
        let user_ok = constant_time_eq(given_user, user.as_bytes());
        let pass_ok = constant_time_eq(given_pass, pass.as_bytes());
        if user_ok & pass_ok {
            Ok(())
        } else {
            Err(webhook_denied())
        }
    }

    fn parse_webhook(
        &self,
        req: &WebhookRequest,
        now: DateTime<Utc>,
    ) -> Result<WebhookContent, ApiError> {
        let body = match serde_json::from_slice::<Value>(req.body) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        };
        let name = EVENT_NAME_KEYS.iter().find_map(|k| text_at(&body, k));
        if name
            .as_deref()
            .is_some_and(|n| n.to_ascii_lowercase().contains("test webhook"))
        {
            return Ok(WebhookContent::Ping);
        }
        let digest = body_digest(req.body);
        let (object_type, id_keys): (&str, &[&str]) = match name.as_deref() {
            Some("Cart opened") => ("carts", &["cartId"]),
            Some("Client logged") => ("customers", &["customerId", "clientId"]),
            Some("OfferOpened BO" | "OfferOpened" | "Offer opened") => ("offers", &["offerId"]),
            _ => (
                "events",
                &["cartId", "offerId", "customerId", "clientId", "id"],
            ),
        };
        let event_date = ["timestamp", "eventDate", "date", "createdAt"]
            .iter()
            .find_map(|k| text_at(&body, k))
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(now);
        let event = match find_id(&body, id_keys) {
            Some(object_id) => Event::new(
                self.key(),
                object_type,
                object_id,
                EventType::Unknown,
                event_date,
            ),
            // Nothing to name: the event is the body itself (kept as `raw`).
            None => Event::new(
                self.key(),
                "events",
                format!("one-body-{}", &digest[..16]),
                EventType::Unknown,
                event_date,
            )
            .with_vendor_detail(serde_json::json!({
                "unmapped": match &name {
                    Some(n) => format!("'{n}' carries none of {}", id_keys.join(", ")),
                    None => "no event name".to_string(),
                }
            })),
        };
        let event = match name {
            Some(name) => event.with_vendor_event_type(name),
            None => event,
        };
        let window = now.timestamp().div_euclid(REPEAT_WINDOW_SECONDS);
        Ok(WebhookContent::Events {
            dedupe_key: format!("one-body:{digest}:{window}"),
            events: vec![event],
            versions: Vec::new(),
        })
    }
}

fn find_id(body: &Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter()
        .flat_map(|k| NESTED.iter().map(move |prefix| format!("{prefix}{k}")))
        .find_map(|path| text_at(body, &path))
}
