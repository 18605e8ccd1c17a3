//! WooCommerce REST API v3 (`/wp-json/wc/v3`): polling or webhooks.
//!
//! Webhooks (docs/vendors/webhooks.md §1): we register them at the store with
//! a secret we generate (`woocommerce.webhook.secret`, sealed); each delivery
//! is signed `X-WC-Webhook-Signature: base64(HMAC-SHA256(secret, body))`, names
//! its topic in `X-WC-Webhook-Topic` and its store in `X-WC-Webhook-Source`,
//! and carries `X-WC-Webhook-Delivery-ID`, which the vendor's retries share.

use chrono::{DateTime, NaiveDateTime, Utc};

use std::time::Duration;

use serde_json::{json, Value};

use super::{
    default_poller_for, require_all, webhook_denied, BoxFuture, Element, EventMode, HubResource,
    RegistrationContext,
};
use crate::config::poller::DatesConfiguration;
use crate::config::values::{field_path, optional_str, required_str, Configuration};
use crate::error::ApiError;
use crate::events::{body_digest, Event, EventType};
use crate::polling::{PagePosition, PollFailure, PollPage, PollQuery, PollRequest, PollResponse};
use crate::webhook::{plural_object_type, text_at, WebhookContent, WebhookRequest};

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

    /// Orders, products and coupons: keyset pagination on the modified time
    /// (`orderby=modified&order=asc`, `modified_after` exclusive, GMT), so an
    /// object changed during the scan moves to the end instead of shifting a
    /// page. Customers have no modified filter: a full scan by id, filtered
    /// on `date_modified_gmt` here (docs/vendors/polling.md).
    fn poll_request(&self, q: &PollQuery) -> Result<PollRequest, ApiError> {
        let store_url = required_str(q.cfg, "store.url")?;
        let mut url = url::Url::parse(&format!(
            "{}{}",
            store_url.trim_end_matches('/'),
            q.resource.vendor_path
        ))
        .map_err(|e| ApiError::field(field_path("store.url"), format!("is not a URL: {e}")))?;
        {
            let mut params = url.query_pairs_mut();
            params.append_pair("per_page", &POLL_PAGE_SIZE.to_string());
            if q.resource.name == "customers" {
                let page = q.position.page_number();
                params
                    .append_pair("orderby", "id")
                    .append_pair("order", "asc")
                    .append_pair("page", &page.to_string());
            } else {
                let (after, page) = match q.position {
                    // One second back: `modified_after` is exclusive and the
                    // dates have whole seconds, so siblings of the last object
                    // seen come again (and are recognized as seen).
                    PagePosition::After { modified, page } => {
                        (*modified - chrono::Duration::seconds(1), *page)
                    }
                    _ => (q.since, 1),
                };
                params
                    .append_pair("orderby", "modified")
                    .append_pair("order", "asc")
                    .append_pair("dates_are_gmt", "true")
                    .append_pair(
                        "modified_after",
                        &after.format("%Y-%m-%dT%H:%M:%S").to_string(),
                    )
                    .append_pair("page", &page.to_string());
            }
            for (k, v) in super::passthrough(q.extra_params, RESERVED_PARAMS) {
                params.append_pair(k, v);
            }
        }
        Ok(PollRequest {
            url: url.to_string(),
            basic_auth: Some((
                required_str(q.cfg, "oauth.api.key")?,
                required_str(q.cfg, "oauth.api.secret")?,
            )),
            headers: Vec::new(),
        })
    }

    fn read_poll_page(&self, r: &PollResponse) -> Result<PollPage, PollFailure> {
        super::read_json_array_page(r, "WooCommerce")
    }

    fn next_position(
        &self,
        q: &PollQuery,
        page_len: usize,
        last_modified: Option<DateTime<Utc>>,
    ) -> Option<PagePosition> {
        if page_len < POLL_PAGE_SIZE {
            return None;
        }
        if q.resource.name == "customers" {
            return Some(q.position.next_page());
        }
        let last = last_modified?;
        if last > q.until {
            // Ordered by modified: everything after is newer than this poll.
            return None;
        }
        Some(match q.position {
            // A whole page of one second: page on within that second.
            PagePosition::After { modified, page } if *modified == last => PagePosition::After {
                modified: last,
                page: page + 1,
            },
            _ => PagePosition::After {
                modified: last,
                page: 1,
            },
        })
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
            let mut created = Vec::new();
            for topic in WEBHOOK_TOPICS {
                let body = json!({
                    "name": format!("connector-events {topic}"),
                    "topic": topic,
                    "delivery_url": ctx.delivery_url,
                    "secret": secret,
                    "status": "active",
                });
                match api.create_webhook(&body).await {
                    Ok(id) => created.push(id),
                    Err(err) => {
                        // Nothing half-done: remove what this call created.
                        api.delete_webhooks(&created).await;
                        return Err(err);
                    }
                }
            }
            Ok(created)
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
        let event = Event::new(self.key(), object_type, object_id, event_type, event_date)
            .with_vendor_event_type(topic);
        let dedupe_key = match req.header("x-wc-webhook-delivery-id") {
            Some(id) if !id.is_empty() => format!("wc-delivery:{id}"),
            _ => format!("wc-body:{topic}:{}", body_digest(req.body)),
        };
        Ok(WebhookContent::Events {
            dedupe_key,
            events: vec![event],
        })
    }
}

/// The store's `/wp-json/wc/v3/webhooks` endpoint, authenticated with the
/// consumer key and secret (HTTP Basic, as WooCommerce accepts over HTTPS).
struct StoreApi {
    client: reqwest::Client,
    endpoint: String,
    key: String,
    secret: String,
}

const STORE_API_TIMEOUT: Duration = Duration::from_secs(15);

impl StoreApi {
    async fn connect(ctx: &RegistrationContext<'_>) -> Result<Self, ApiError> {
        let store_url = required_str(ctx.cfg, "store.url")?;
        let endpoint = format!("{}/wp-json/wc/v3/webhooks", store_url.trim_end_matches('/'));
        let parsed = url::Url::parse(&endpoint)
            .map_err(|e| ApiError::field(field_path("store.url"), format!("is not a URL: {e}")))?;
        let client = crate::outbound::pinned_client(ctx.guard, &parsed, STORE_API_TIMEOUT)
            .await
            .map_err(|e| {
                ApiError::field(field_path("store.url"), format!("cannot be reached: {e}"))
            })?;
        Ok(Self {
            client,
            endpoint,
            key: required_str(ctx.cfg, "oauth.api.key")?,
            secret: required_str(ctx.cfg, "oauth.api.secret")?,
        })
    }

    async fn create_webhook(&self, body: &Value) -> Result<String, ApiError> {
        let resp = self
            .client
            .post(&self.endpoint)
            .basic_auth(&self.key, Some(&self.secret))
            .json(body)
            .send()
            .await
            .map_err(|e| {
                ApiError::BadGateway(format!(
                    "WooCommerce store at {} did not answer: {e}",
                    self.endpoint
                ))
            })?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        if !(200..300).contains(&status) {
            return Err(store_refusal(&self.endpoint, status, &text));
        }
        let created: Value = serde_json::from_str(&text).map_err(|_| {
            ApiError::BadGateway(format!(
                "WooCommerce store at {} answered {status} without JSON",
                self.endpoint
            ))
        })?;
        crate::webhook::text_at(created.as_object().unwrap_or(&Default::default()), "id")
            .ok_or_else(|| {
                ApiError::BadGateway(format!(
                    "WooCommerce store at {} created a webhook without an id",
                    self.endpoint
                ))
            })
    }

    async fn delete_webhooks(&self, ids: &[String]) {
        for id in ids {
            let url = format!("{}/{id}?force=true", self.endpoint);
            match self
                .client
                .delete(&url)
                .basic_auth(&self.key, Some(&self.secret))
                .send()
                .await
            {
                Ok(resp) if resp.status().is_success() || resp.status().as_u16() == 404 => {}
                Ok(resp) => {
                    tracing::warn!(webhook_id = %id, status = resp.status().as_u16(), "WooCommerce webhook not deleted")
                }
                Err(e) => {
                    tracing::warn!(webhook_id = %id, error = %e, "WooCommerce webhook not deleted")
                }
            }
        }
    }
}

/// A store's refusal as the client's error, naming the field to fix.
fn store_refusal(endpoint: &str, status: u16, body: &str) -> ApiError {
    let detail = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| {
            let code = v.get("code")?.as_str()?.to_string();
            let message = v.get("message").and_then(Value::as_str).unwrap_or("");
            Some(format!("{code}: {message}"))
        })
        .unwrap_or_else(|| body.chars().take(200).collect());
    let what = format!("the WooCommerce store refused to create webhooks ({status} {detail})");
    match status {
        401 | 403 => ApiError::field(
            field_path("oauth.api.key"),
            format!("{what}; check the consumer key and secret and their read/write permission"),
        ),
        404 => ApiError::field(
            field_path("store.url"),
            format!("no WooCommerce REST API at {endpoint} ({status})"),
        ),
        400..=499 => ApiError::field(field_path("store.url"), what),
        _ => ApiError::BadGateway(what),
    }
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
