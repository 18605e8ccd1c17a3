//! Ecwid: webhooks only, delivered to `/events/ecwid` without an instance id
//! and routed by `storeId` (docs/vendors/webhooks.md §2).
//!
//! Configuration keys: `ecwid.store.id`, `ecwid.order.key`, `ecwid.product.key`
//! (the legacy API secrets the Cloud Elements docs ask for) and
//! `ecwid.client.secret`, the app's client secret Ecwid signs webhooks with:
//! `X-Ecwid-Webhook-Signature: base64(HMAC-SHA256(client secret, "{eventCreated}.{eventId}"))`.
//! Without `ecwid.client.secret` no webhook can be verified, so all are refused,
//! and an instance created that way with events on is told so (`warnings`).
//!
//! The Cloud Elements setup pasted the URL into the legacy "ION Cannon"
//! (Instant Order Notification) field and gave the legacy order and product
//! keys. That channel posts a bare form field `order_id` (see the script in
//! gist.github.com/cornelisonc/2883084, which reads `$_POST['order_id']` and
//! fetches the order from the legacy v1 API with its secret key): no
//! signature, no store id, nothing the legacy keys can verify. It is not
//! supported; Ecwid's signed webhooks are.

use chrono::{DateTime, Utc};

use super::{require_all, webhook_denied, Element, EventMode};
use crate::config::values::{optional_str, required_str, Configuration};
use crate::error::ApiError;
use crate::events::{Event, EventType};
use crate::webhook::{
    epoch_seconds_at, plural_object_type, text_at, WebhookContent, WebhookRequest,
};

pub struct Ecwid;

pub const CLIENT_SECRET_KEY: &str = "ecwid.client.secret";

impl Element for Ecwid {
    fn key(&self) -> &'static str {
        "ecwid"
    }

    fn modes(&self) -> &'static [EventMode] {
        &[EventMode::Webhook]
    }

    fn secret_keys(&self) -> &'static [&'static str] {
        &["ecwid.order.key", "ecwid.product.key", CLIENT_SECRET_KEY]
    }

    fn validate_credentials(&self, cfg: &Configuration) -> Result<(), ApiError> {
        require_all(cfg, &["ecwid.store.id", "ecwid.order.key"])?;
        let store_id = required_str(cfg, "ecwid.store.id")?;
        if !store_id.chars().all(|c| c.is_ascii_digit()) {
            return Err(ApiError::field(
                "configuration.ecwid.store.id",
                format!("must be the numeric Ecwid store id, got '{store_id}'"),
            ));
        }
        optional_str(cfg, "ecwid.product.key")?;
        optional_str(cfg, CLIENT_SECRET_KEY)?;
        Ok(())
    }

    fn configuration_warnings(&self, cfg: &Configuration, events_enabled: bool) -> Vec<String> {
        let has_secret = optional_str(cfg, CLIENT_SECRET_KEY)
            .ok()
            .flatten()
            .is_some();
        if !events_enabled || has_secret {
            return Vec::new();
        }
        vec![format!(
            "configuration.{CLIENT_SECRET_KEY} is not set: Ecwid signs every webhook with the \
             app's client secret, so until it is set (PATCH the instance) every webhook for \
             store {} is refused with 401. The legacy ION Cannon URL and the order and \
             product keys cannot verify a webhook.",
            optional_str(cfg, "ecwid.store.id")
                .ok()
                .flatten()
                .unwrap_or_default()
        )]
    }

    fn store_identity(&self, cfg: &Configuration) -> Option<String> {
        optional_str(cfg, "ecwid.store.id").ok().flatten()
    }

    /// Ecwid has one URL for every store: the app's webhook URL.
    fn webhook_path(&self, _instance_id: u64) -> String {
        "/events/ecwid".to_string()
    }

    /// One app URL serves every store that installed the app; Ecwid retries
    /// a refusal for 24 hours and blocks the app's webhooks after two weeks
    /// of failures (docs/vendors/webhooks.md §2.5).
    fn acknowledges_unknown_stores(&self) -> bool {
        true
    }

    fn webhook_store_identity(&self, req: &WebhookRequest) -> Result<Option<String>, ApiError> {
        let body = req.json_object()?;
        text_at(&body, "storeId")
            .map(Some)
            .ok_or_else(|| ApiError::BadRequest("Ecwid webhook has no storeId".into()))
    }

    fn verify_webhook(&self, cfg: &Configuration, req: &WebhookRequest) -> Result<(), ApiError> {
        let secret = optional_str(cfg, CLIENT_SECRET_KEY)
            .ok()
            .flatten()
            .ok_or_else(webhook_denied)?;
        let signature = req
            .header("x-ecwid-webhook-signature")
            .ok_or_else(webhook_denied)?;
        let body = req.json_object().map_err(|_| webhook_denied())?;
        let created = text_at(&body, "eventCreated").ok_or_else(webhook_denied)?;
        let event_id = text_at(&body, "eventId").ok_or_else(webhook_denied)?;
        let signed = [created.as_bytes(), b".", event_id.as_bytes()];
        if crate::signing::verify_base64_hmac(secret.as_bytes(), &signed, signature) {
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
        let body = req.json_object()?;
        let event_id = text_at(&body, "eventId")
            .ok_or_else(|| ApiError::BadRequest("Ecwid webhook has no eventId".into()))?;
        let event_type = text_at(&body, "eventType")
            .ok_or_else(|| ApiError::BadRequest("Ecwid webhook has no eventType".into()))?;
        let (resource, verb) = event_type
            .split_once('.')
            .unwrap_or((event_type.as_str(), ""));
        // Orders are known to clients by their public order id, other
        // entities by their numeric id.
        let object_id = if resource == "order" {
            text_at(&body, "data.orderId").or_else(|| text_at(&body, "entityId"))
        } else {
            text_at(&body, "entityId")
        }
        .ok_or_else(|| ApiError::BadRequest("Ecwid webhook has no entityId".into()))?;
        let event_date = epoch_seconds_at(&body, "eventCreated").unwrap_or(now);
        let event = Event::new(
            self.key(),
            plural_object_type(resource),
            object_id,
            EventType::from_verb(verb),
            event_date,
        )
        .with_vendor_event_type(event_type.clone());
        Ok(WebhookContent::Events {
            dedupe_key: format!("ecwid-event:{event_id}"),
            events: vec![event],
            versions: Vec::new(),
        })
    }
}
