//! BigCommerce: polling (v2 API with Basic auth, or OAuth with X-Auth-Token),
//! and webhooks beyond the Cloud Elements docs (docs/vendors/webhooks.md §3).
//!
//! Webhooks arrive at `/events/bigcommerce/{instanceId}` as
//! `{scope, store_id, data{type,id}, hash, created_at, producer}` and are
//! verified by what the instance configures, all of which must pass:
//! - `bigcommerce.webhook.header.secret`: the value of a custom header set when
//!   the webhook was created (header name `bigcommerce.webhook.header.name`,
//!   default `X-Webhook-Secret`);
//! - `bigcommerce.webhook.signing.secret`: the key of a Standard Webhooks
//!   signature (`webhook-id`, `webhook-timestamp`, `webhook-signature`), given
//!   as the app's client secret or in `whsec_…` form.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chrono::{DateTime, Utc};

use super::{default_poller_for, require_all, webhook_denied, Element, EventMode, HubResource};
use crate::config::poller::DatesConfiguration;
use crate::config::values::{field_path, optional_str, required_str, Configuration};
use crate::error::ApiError;
use crate::events::{Event, EventType};
use crate::polling::{
    PagePosition, PageSeen, PollFailure, PollPage, PollQuery, PollRequest, PollResponse,
};
use crate::request_auth::RequestAuth;
use crate::webhook::{
    epoch_seconds_at, plural_object_type, text_at, WebhookContent, WebhookRequest,
};

pub struct BigCommerce;

pub const HEADER_NAME_KEY: &str = "bigcommerce.webhook.header.name";
pub const HEADER_SECRET_KEY: &str = "bigcommerce.webhook.header.secret";
pub const SIGNING_SECRET_KEY: &str = "bigcommerce.webhook.signing.secret";
pub const DEFAULT_SECRET_HEADER: &str = "X-Webhook-Secret";
/// With OAuth (no `store.url`): the store hash of `api.bigcommerce.com/stores/{hash}`.
pub const STORE_HASH_KEY: &str = "bigcommerce.store.hash";

/// BigCommerce's maximum `limit`.
pub const POLL_PAGE_SIZE: usize = 250;
const RFC_2822: &str = "EEE, dd MMM yyyy HH:mm:ss Z";
/// Query parameters the poller sets itself.
const RESERVED_PARAMS: &[&str] = &["min_date_modified", "limit", "page"];

const RESOURCES: &[HubResource] = &[
    HubResource {
        hub: "ecommerce",
        name: "orders",
        vendor_path: "/orders",
    },
    HubResource {
        hub: "ecommerce",
        name: "products",
        vendor_path: "/products",
    },
    HubResource {
        hub: "ecommerce",
        name: "customers",
        vendor_path: "/customers",
    },
];

impl Element for BigCommerce {
    fn key(&self) -> &'static str {
        "bigcommerce"
    }

    fn modes(&self) -> &'static [EventMode] {
        &[EventMode::Polling, EventMode::Webhook]
    }

    fn secret_keys(&self) -> &'static [&'static str] {
        &[
            "password",
            "oauth.api.secret",
            "oauth.access.token",
            HEADER_SECRET_KEY,
            SIGNING_SECRET_KEY,
        ]
    }

    /// Either the legacy v2 API account (`username`, `password`, `store.url`
    /// ending in `/api/v2`) or an OAuth app (`oauth.api.key`, `oauth.api.secret`),
    /// the two bodies the Cloud Elements docs show.
    fn validate_credentials(&self, cfg: &Configuration) -> Result<(), ApiError> {
        let basic = ["username", "password", "store.url"];
        let oauth = ["oauth.api.key", "oauth.api.secret"];
        let any_given = |keys: &[&str]| keys.iter().any(|k| cfg.contains_key(*k));
        if any_given(&basic) || !any_given(&oauth) {
            require_all(cfg, &basic)
        } else {
            require_all(cfg, &oauth)?;
            optional_str(cfg, "oauth.callback.url")?;
            Ok(())
        }
    }

    fn validate_webhook_settings(&self, cfg: &Configuration) -> Result<(), ApiError> {
        let header = optional_str(cfg, HEADER_SECRET_KEY)?;
        let signing = optional_str(cfg, SIGNING_SECRET_KEY)?;
        optional_str(cfg, HEADER_NAME_KEY)?;
        if header.is_none() && signing.is_none() {
            return Err(ApiError::field(
                field_path(HEADER_SECRET_KEY),
                format!("webhooks need {HEADER_SECRET_KEY} or {SIGNING_SECRET_KEY} to verify the sender"),
            ));
        }
        if let Some(secret) = signing {
            signing_key(&secret)
                .map_err(|reason| ApiError::field(field_path(SIGNING_SECRET_KEY), reason))?;
        }
        Ok(())
    }

    fn hub_resources(&self) -> &'static [HubResource] {
        RESOURCES
    }

    fn default_poller_configuration(&self) -> Option<serde_json::Value> {
        Some(default_poller_for(
            RESOURCES,
            "date_modified",
            "date_created",
            RFC_2822,
        ))
    }

    fn outbound_url_keys(&self) -> &'static [&'static str] {
        &["store.url", "oauth.callback.url"]
    }

    fn default_dates(&self, _resource: &HubResource) -> DatesConfiguration {
        DatesConfiguration {
            updated_field: Some("date_modified".into()),
            updated_format: Some(RFC_2822.into()),
            created_field: Some("date_created".into()),
            created_format: Some(RFC_2822.into()),
            ..Default::default()
        }
    }

    /// The v2 list endpoints, `min_date_modified` (RFC 2822) and page numbers:
    /// v2 orders by id, so objects changed during the scan keep their page
    /// (they still match a lower bound) and new ones come last.
    fn poll_request(&self, q: &PollQuery) -> Result<PollRequest, ApiError> {
        let (base, auth, headers) = match optional_str(q.cfg, "store.url")? {
            Some(url) => (
                url.trim_end_matches('/').to_string(),
                RequestAuth::Basic {
                    user: required_str(q.cfg, "username")?,
                    password: required_str(q.cfg, "password")?,
                },
                Vec::new(),
            ),
            None => {
                let hash = required_str(q.cfg, STORE_HASH_KEY)?;
                let token = required_str(q.cfg, "oauth.access.token")?;
                (
                    format!("https://api.bigcommerce.com/stores/{hash}/v2"),
                    RequestAuth::None,
                    vec![
                        ("X-Auth-Token".to_string(), token),
                        (
                            "X-Auth-Client".to_string(),
                            required_str(q.cfg, "oauth.api.key")?,
                        ),
                    ],
                )
            }
        };
        let page = q.position.page_number();
        let mut url = url::Url::parse(&format!("{base}{}", q.resource.vendor_path))
            .map_err(|e| ApiError::field(field_path("store.url"), format!("is not a URL: {e}")))?;
        {
            let mut params = url.query_pairs_mut();
            params
                .append_pair(
                    "min_date_modified",
                    &q.since.format("%a, %d %b %Y %H:%M:%S +0000").to_string(),
                )
                .append_pair("limit", &POLL_PAGE_SIZE.to_string())
                .append_pair("page", &page.to_string());
            for (k, v) in super::passthrough(q.extra_params, RESERVED_PARAMS) {
                params.append_pair(k, v);
            }
        }
        Ok(PollRequest {
            url: url.to_string(),
            auth,
            headers: {
                let mut h = headers;
                h.push(("Accept".into(), "application/json".into()));
                h
            },
        })
    }

    /// A 204 is an empty page; when the quota is used up
    /// (`X-Rate-Limit-Requests-Left: 0`) the next call waits for the window.
    fn read_poll_page(&self, r: &PollResponse) -> Result<PollPage, PollFailure> {
        let mut page = super::read_json_array_page(r, "BigCommerce")?;
        if crate::polling::header_ms(r.headers, "x-rate-limit-requests-left") == Some(0) {
            page.pause = crate::polling::header_ms(r.headers, "x-rate-limit-time-reset-ms")
                .map(chrono::Duration::milliseconds);
        }
        Ok(page)
    }

    fn next_position(&self, q: &PollQuery, seen: &PageSeen) -> Option<PagePosition> {
        if seen.len < POLL_PAGE_SIZE {
            return None;
        }
        Some(q.position.next_page())
    }

    fn verify_webhook(&self, cfg: &Configuration, req: &WebhookRequest) -> Result<(), ApiError> {
        let header_secret = optional_str(cfg, HEADER_SECRET_KEY).ok().flatten();
        let signing_secret = optional_str(cfg, SIGNING_SECRET_KEY).ok().flatten();
        if header_secret.is_none() && signing_secret.is_none() {
            return Err(webhook_denied());
        }
        if let Some(expected) = header_secret {
            let name = optional_str(cfg, HEADER_NAME_KEY)
                .ok()
                .flatten()
                .unwrap_or_else(|| DEFAULT_SECRET_HEADER.to_string());
            let given = req.header(&name).ok_or_else(webhook_denied)?;
            if !crate::auth::constant_time_eq(given.as_bytes(), expected.as_bytes()) {
                return Err(webhook_denied());
            }
        }
        if let Some(secret) = signing_secret {
            let key = signing_key(&secret).map_err(|_| webhook_denied())?;
            crate::signing::verify_standard_webhooks(
                &key,
                req.header("webhook-id"),
                req.header("webhook-timestamp"),
                req.header("webhook-signature"),
                req.body,
                Utc::now().timestamp(),
            )
            .map_err(|_| webhook_denied())?;
        }
        Ok(())
    }

    fn parse_webhook(
        &self,
        req: &WebhookRequest,
        now: DateTime<Utc>,
    ) -> Result<WebhookContent, ApiError> {
        let body = req.json_object()?;
        let scope = text_at(&body, "scope")
            .ok_or_else(|| ApiError::BadRequest("BigCommerce webhook has no scope".into()))?;
        // store/order/created, store/order/statusUpdated, store/cart/lineItem/updated
        let parts: Vec<&str> = scope.split('/').collect();
        let (resource, verb) = match parts.as_slice() {
            [_, resource, .., verb] => (*resource, *verb),
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "BigCommerce scope '{scope}' is not store/<resource>/<event>"
                )))
            }
        };
        let object_id = text_at(&body, "data.id")
            .ok_or_else(|| ApiError::BadRequest("BigCommerce webhook has no data.id".into()))?;
        let event_date = epoch_seconds_at(&body, "created_at").unwrap_or(now);
        let dedupe_key = match text_at(&body, "hash") {
            Some(hash) => format!("bc-hash:{hash}"),
            None => format!("bc-body:{}", crate::events::body_digest(req.body)),
        };
        let event = Event::new(
            self.key(),
            plural_object_type(resource),
            object_id,
            EventType::from_verb(verb),
            event_date,
        )
        .with_vendor_event_type(scope.clone());
        Ok(WebhookContent::Events {
            dedupe_key,
            events: vec![event],
            versions: Vec::new(),
        })
    }
}

/// The HMAC key of a Standard Webhooks secret: `whsec_<base64>` decodes to the
/// key bytes; any other text is the key itself (BigCommerce's client secret).
fn signing_key(secret: &str) -> Result<Vec<u8>, String> {
    match secret.strip_prefix("whsec_") {
        Some(encoded) => B64
            .decode(encoded)
            .map_err(|_| "a whsec_ secret must be followed by base64".to_string()),
        None => Ok(secret.as_bytes().to_vec()),
    }
}
