//! WooCommerce REST API v3 (`/wp-json/wc/v3`): polling or webhooks.
//!
//! Webhooks (docs/vendors/webhooks.md §1): we register them at the store with
//! a secret we generate (`woocommerce.webhook.secret`, sealed); each delivery
//! is signed `X-WC-Webhook-Signature: base64(HMAC-SHA256(secret, body))`, names
//! its topic in `X-WC-Webhook-Topic` and its store in `X-WC-Webhook-Source`.
//! Its `X-WC-Webhook-Delivery-ID` is `wp_hash(webhook id . unix second)`
//! (`WC_Webhook::get_new_delivery_id`): every delivery of one hook within a
//! second shares it, whatever object it is about, and WooCommerce never
//! re-sends a delivery. So the dedupe key adds the topic and a digest of the
//! body: different deliveries in one second stay apart, and only a true
//! re-send of the same bytes collapses.
//!
//! WooCommerce does not retry and disables a hook after more than 5 failed
//! deliveries, so webhook instances are also polled on a slow schedule
//! (reconciliation, `event.reconciliation.interval`), and each of those
//! polls checks and repairs the hooks ([`health`]).

mod health;
mod polling;
mod store_api;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{json, Value};

use super::{
    default_poller_for, require_all, webhook_denied, BoxFuture, Element, EventMode, HubResource,
    RegistrationContext, WebhookHealth,
};
use crate::config::poller::DatesConfiguration;
use crate::config::values::{optional_str, required_str, Configuration};
use crate::error::ApiError;
use crate::events::{body_digest, Event, EventType, ObjectVersion};
use crate::polling::{PagePosition, PageSeen, PollFailure, PollPage, PollQuery, PollRequest, PollResponse};
use crate::webhook::{plural_object_type, text_at, WebhookContent, WebhookRequest};
use store_api::StoreApi;

pub struct WooCommerce;

/// WooCommerce's maximum `per_page`.
pub const POLL_PAGE_SIZE: usize = 100;

/// Query parameters the poller sets itself.
const RESERVED_PARAMS: &[&str] = &[
    "per_page",
    "page",
    "orderby",
    "order",
    "dates_are_gmt",
    "modified_after",
    "modified_before",
    "status",
];

/// The configuration key of the secret our registered webhooks are signed with.
pub const WEBHOOK_SECRET_KEY: &str = "woocommerce.webhook.secret";

/// The topics registered for a webhook-mode instance.
pub const WEBHOOK_TOPICS: &[&str] = &[
    "order.created",
    "order.updated",
    "order.deleted",
    "order.restored",
    "product.created",
    "product.updated",
    "product.deleted",
    "product.restored",
    "customer.created",
    "customer.updated",
    "customer.deleted",
    // WooCommerce accepts it though customers are never trashed; subscribing
    // keeps the four resources alike if a plugin adds trashing.
    "customer.restored",
    "coupon.created",
    "coupon.updated",
    "coupon.deleted",
    "coupon.restored",
];

const RESOURCES: &[HubResource] = &[
    HubResource {
        hub: "ecommerce",
        name: "orders",
        vendor_path: "/wp-json/wc/v3/orders",
    },
    HubResource {
        hub: "ecommerce",
        name: "products",
        vendor_path: "/wp-json/wc/v3/products",
    },
    HubResource {
        hub: "ecommerce",
        name: "customers",
        vendor_path: "/wp-json/wc/v3/customers",
    },
    // Cloud Elements calls WooCommerce coupons "discounts".
    HubResource {
        hub: "ecommerce",
        name: "discounts",
        vendor_path: "/wp-json/wc/v3/coupons",
    },
];

impl Element for WooCommerce {
    fn key(&self) -> &'static str {
        "woocommercerest"
    }

    fn modes(&self) -> &'static [EventMode] {
        &[EventMode::Polling, EventMode::Webhook]
    }

    fn secret_keys(&self) -> &'static [&'static str] {
        &["oauth.api.secret", WEBHOOK_SECRET_KEY]
    }

    fn validate_credentials(&self, cfg: &Configuration) -> Result<(), ApiError> {
        require_all(cfg, &["store.url", "oauth.api.key", "oauth.api.secret"])
    }

    fn hub_resources(&self) -> &'static [HubResource] {
        RESOURCES
    }

    fn default_poller_configuration(&self) -> Option<serde_json::Value> {
        // WooCommerce's `_gmt` fields are UTC without an offset.
        Some(default_poller_for(
            RESOURCES,
            "date_modified_gmt",
            "date_created_gmt",
            "yyyy-MM-dd'T'HH:mm:ss",
        ))
    }

    fn store_identity(&self, cfg: &Configuration) -> Option<String> {
        optional_str(cfg, "store.url")
            .ok()
            .flatten()
            .map(|u| normalize_store_url(&u))
    }

    fn outbound_url_keys(&self) -> &'static [&'static str] {
        &["store.url"]
    }

    /// The ping WooCommerce sends when a webhook is created: a form body
    /// `webhook_id=N` with no X-WC headers and no signature.
    fn is_handshake(&self, req: &WebhookRequest) -> bool {
        req.header("x-wc-webhook-signature").is_none()
            && req.header("x-wc-webhook-topic").is_none()
            && is_ping_body(req.body)
    }

    fn webhook_store_identity(&self, req: &WebhookRequest) -> Result<Option<String>, ApiError> {
        match req.header("x-wc-webhook-source") {
            Some(source) if !source.is_empty() => Ok(Some(normalize_store_url(source))),
            _ => Err(ApiError::NotFound(
                "no instance id in the URL and no X-WC-Webhook-Source header to find one".into(),
            )),
        }
    }

    fn verify_webhook(&self, cfg: &Configuration, req: &WebhookRequest) -> Result<(), ApiError> {
        let secret = optional_str(cfg, WEBHOOK_SECRET_KEY)
            .ok()
            .flatten()
            .ok_or_else(webhook_denied)?;
        let signature = req
            .header("x-wc-webhook-signature")
            .ok_or_else(webhook_denied)?;
        if crate::signing::verify_base64_hmac(secret.as_bytes(), &[req.body], signature) {
            Ok(())
        } else {
            Err(webhook_denied())
        }
    }

    fn default_dates(&self, _resource: &HubResource) -> DatesConfiguration {
        // The `_gmt` fields are UTC; the plain ones are in the site's zone.
        DatesConfiguration {
            updated_field: Some("date_modified_gmt".into()),
            updated_format: Some("yyyy-MM-dd'T'HH:mm:ss".into()),
            created_field: Some("date_created_gmt".into()),
            created_format: Some("yyyy-MM-dd'T'HH:mm:ss".into()),
            ..Default::default()
        }
    }

    fn dates_to_read(&self, configured: &DatesConfiguration) -> DatesConfiguration {
        polling::dates_to_read(configured)
    }

    fn poll_passes(&self, resource: &HubResource) -> usize {
        polling::passes(resource)
    }

    fn poll_request(&self, q: &PollQuery) -> Result<PollRequest, ApiError> {
        polling::request(q)
    }

    fn read_poll_page(&self, r: &PollResponse) -> Result<PollPage, PollFailure> {
        polling::read_page(r)
    }

    fn next_position(&self, q: &PollQuery, seen: &PageSeen) -> Option<PagePosition> {
        polling::next_position(q, seen)
    }

    fn check_page(&self, q: &PollQuery, items: &[Value]) -> Result<(), PollFailure> {
        polling::check_page(q, items)
    }

    fn is_deleted_in_listing(&self, object: &Value) -> bool {
        polling::is_trashed(object)
    }

    fn reconciles_webhooks(&self) -> bool {
        true
    }

    fn check_webhooks<'a>(
        &'a self,
        ctx: RegistrationContext<'a>,
        registered: &'a [String],
    ) -> BoxFuture<'a, Result<Option<WebhookHealth>, ApiError>> {
        Box::pin(async move { health::check(ctx, registered).await.map(Some) })
    }

    fn prepare_webhook_configuration(&self, cfg: &mut Configuration) {
        if optional_str(cfg, WEBHOOK_SECRET_KEY)
            .ok()
            .flatten()
            .is_none()
        {
            cfg.insert(
                WEBHOOK_SECRET_KEY.into(),
                Value::String(crate::ids::new_secret_token()),
            );
        }
    }

    fn register_webhooks<'a>(
        &'a self,
        ctx: RegistrationContext<'a>,
    ) -> BoxFuture<'a, Result<Vec<String>, ApiError>> {
        Box::pin(async move {
            let api = StoreApi::connect(&ctx).await?;
            let secret = required_str(ctx.cfg, WEBHOOK_SECRET_KEY)?;
            let bodies = WEBHOOK_TOPICS
                .iter()
                .map(|topic| webhook_body(topic, ctx.delivery_url, &secret))
                .collect();
            api.create_webhooks(bodies).await
        })
    }

    fn unregister_webhooks<'a>(
        &'a self,
        ctx: RegistrationContext<'a>,
        ids: &'a [String],
    ) -> BoxFuture<'a, Result<(), ApiError>> {
        Box::pin(async move {
            StoreApi::connect(&ctx).await?.delete_webhooks(ids).await;
            Ok(())
        })
    }

    fn parse_webhook(
        &self,
        req: &WebhookRequest,
        now: DateTime<Utc>,
    ) -> Result<WebhookContent, ApiError> {
        let topic = req
            .header("x-wc-webhook-topic")
            .ok_or_else(|| ApiError::BadRequest("missing X-WC-Webhook-Topic header".into()))?;
        let (resource, verb) = topic.split_once('.').ok_or_else(|| {
            ApiError::BadRequest(format!(
                "X-WC-Webhook-Topic '{topic}' is not resource.event"
            ))
        })?;
        let body = req.json_object()?;
        let object_id = text_at(&body, "id")
            .ok_or_else(|| ApiError::BadRequest("webhook payload has no id".into()))?;
        // Deleted payloads are just {"id": N}; the delivery time stands in.
        let event_date = text_at(&body, "date_modified_gmt")
            .and_then(|d| parse_wc_gmt(&d))
            .unwrap_or(now);
        let (object_type, event_type) = if resource == "action" {
            (verb.to_string(), EventType::Unknown)
        } else {
            (plural_object_type(resource), EventType::from_verb(verb))
        };
        // The version a reconciliation poll would find, where the payload
        // dates it (deletions carry only the id).
        let versions = text_at(&body, "date_modified_gmt")
            .and_then(|d| parse_wc_gmt(&d))
            .filter(|_| resource != "action")
            .map(|modified| ObjectVersion {
                resource: object_type.clone(),
                object_id: object_id.clone(),
                modified_ms: modified.timestamp_millis(),
            })
            .into_iter()
            .collect();
        let event = Event::new(self.key(), object_type, object_id, event_type, event_date)
            .with_vendor_event_type(topic);
        Ok(WebhookContent::Events {
            dedupe_key: dedupe_key(req, topic),
            events: vec![event],
            versions,
        })
    }
}

/// The key that collapses only a true re-send: the hook, its delivery id
/// (which is per second, not per delivery), the topic and the body.
fn dedupe_key(req: &WebhookRequest, topic: &str) -> String {
    let hook = req.header("x-wc-webhook-id").unwrap_or_default();
    let delivery = req.header("x-wc-webhook-delivery-id").unwrap_or_default();
    format!(
        "wc:{hook}:{delivery}:{topic}:{}",
        body_digest(req.body)
    )
}

/// The create body of one of our webhooks.
fn webhook_body(topic: &str, delivery_url: &str, secret: &str) -> Value {
    json!({
        "name": format!("connector-events {topic}"),
        "topic": topic,
        "delivery_url": delivery_url,
        "secret": secret,
        "status": "active",
    })
}

fn is_ping_body(body: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(body) else {
        return false;
    };
    let text = text.trim();
    text.strip_prefix("webhook_id=")
        .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
}

/// `2026-11-23T10:15:30`, the GMT form WooCommerce's `_gmt` fields use.
pub fn parse_wc_gmt(text: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(text.trim_end_matches('Z'), "%Y-%m-%dT%H:%M:%S")
        .ok()
        .map(|t| t.and_utc())
}

/// Scheme + host + path without trailing slash, lowercase host: the form both
/// the configuration and the `X-WC-Webhook-Source` header are compared in.
pub fn normalize_store_url(raw: &str) -> String {
    match url::Url::parse(raw.trim()) {
        Ok(u) => format!(
            "{}://{}{}{}",
            u.scheme(),
            u.host_str().unwrap_or_default().to_ascii_lowercase(),
            u.port().map(|p| format!(":{p}")).unwrap_or_default(),
            u.path().trim_end_matches('/')
        ),
        Err(_) => raw.trim().trim_end_matches('/').to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls_compare_without_trailing_slash_or_case() {
        assert_eq!(
            normalize_store_url("https://Shop.Example.com/"),
            "https://shop.example.com"
        );
        assert_eq!(
            normalize_store_url("http://127.0.0.1:8080/wp/"),
            "http://127.0.0.1:8080/wp"
        );
    }

    #[test]
    fn recognizes_only_the_ping_form_body() {
        assert!(is_ping_body(b"webhook_id=12"));
        assert!(!is_ping_body(b"webhook_id="));
        assert!(!is_ping_body(b"{\"id\":1}"));
        assert!(!is_ping_body(b"webhook_id=1&x=2"));
    }

    #[test]
    fn parses_gmt_dates() {
        assert_eq!(
            parse_wc_gmt("2026-11-23T10:15:30").unwrap().to_rfc3339(),
            "2026-11-23T10:15:30+00:00"
        );
        assert!(parse_wc_gmt("yesterday").is_none());
    }
}
