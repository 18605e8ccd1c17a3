//! BigCommerce: polling (legacy v2 API with Basic auth, or an OAuth store
//! through `api.bigcommerce.com`), and webhooks beyond the Cloud Elements docs
//! (docs/vendors/webhooks.md §3).
//!
//! - [`polling`]: the list endpoints, quota headers and archived orders;
//! - [`webhook`]: callbacks → events, every documented scope mapped;
//! - [`oauth`]: the app-install code exchange for OAuth stores.
//!
//! Webhooks arrive at `/events/bigcommerce/{instanceId}` and are verified by
//! what the instance configures, all of which must pass:
//! - `bigcommerce.webhook.header.secret`: the value of a custom header set when
//!   the webhook was created (header name `bigcommerce.webhook.header.name`,
//!   default `X-Webhook-Secret`);
//! - `bigcommerce.webhook.signing.secret`: the key of a Standard Webhooks
//!   signature (`webhook-id`, `webhook-timestamp`, `webhook-signature`), given
//!   as the app's client secret or in `whsec_…` form.

mod oauth;
mod polling;
mod webhook;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chrono::{DateTime, Utc};

use super::{
    default_poller_for, require_all, webhook_denied, BoxFuture, Element, EventMode, HubResource,
    ProviderDataContext,
};
use crate::config::poller::DatesConfiguration;
use crate::config::values::{field_path, optional_str, Configuration};
use crate::error::ApiError;
use crate::polling::{
    PagePosition, PageSeen, PollFailure, PollPage, PollQuery, PollRequest, PollResponse,
};
use crate::webhook::{WebhookContent, WebhookRequest};

pub use oauth::DEFAULT_LOGIN_URL;
pub use polling::{LEGACY_QUOTA_RESERVE, POLL_PAGE_SIZE};

pub struct BigCommerce;

pub const HEADER_NAME_KEY: &str = "bigcommerce.webhook.header.name";
pub const HEADER_SECRET_KEY: &str = "bigcommerce.webhook.header.secret";
pub const SIGNING_SECRET_KEY: &str = "bigcommerce.webhook.signing.secret";
pub const DEFAULT_SECRET_HEADER: &str = "X-Webhook-Secret";
/// With OAuth (no `store.url`): the store hash of `api.bigcommerce.com/stores/{hash}`.
pub const STORE_HASH_KEY: &str = "bigcommerce.store.hash";
/// With OAuth: the store's access token (from the code exchange, or given).
pub const ACCESS_TOKEN_KEY: &str = "oauth.access.token";
/// With OAuth: the API host, `https://api.bigcommerce.com` unless set.
pub const API_URL_KEY: &str = "bigcommerce.api.url";
pub const DEFAULT_API_URL: &str = "https://api.bigcommerce.com";

const RFC_2822: &str = "EEE, dd MMM yyyy HH:mm:ss Z";

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
            ACCESS_TOKEN_KEY,
            HEADER_SECRET_KEY,
            SIGNING_SECRET_KEY,
        ]
    }

    /// Either the legacy v2 API account (`username`, `password`, `store.url`
    /// ending in `/api/v2`) or an OAuth app (`oauth.api.key`, `oauth.api.secret`),
    /// the two bodies the Cloud Elements docs show. An OAuth app can only
    /// reach a store with that store's access token and hash: from
    /// `providerData` (exchanged before this check) or given directly.
    fn validate_credentials(&self, cfg: &Configuration) -> Result<(), ApiError> {
        let basic = ["username", "password", "store.url"];
        let oauth = ["oauth.api.key", "oauth.api.secret"];
        let any_given = |keys: &[&str]| keys.iter().any(|k| cfg.contains_key(*k));
        if any_given(&basic) || !any_given(&oauth) {
            return require_all(cfg, &basic);
        }
        require_all(cfg, &oauth)?;
        optional_str(cfg, "oauth.callback.url")?;
        optional_str(cfg, API_URL_KEY)?;
        match (
            optional_str(cfg, STORE_HASH_KEY)?,
            optional_str(cfg, ACCESS_TOKEN_KEY)?,
        ) {
            (Some(hash), Some(_)) if !hash.chars().all(|c| c.is_ascii_alphanumeric()) => {
                Err(ApiError::field(
                    field_path(STORE_HASH_KEY),
                    "must be the store hash of api.bigcommerce.com/stores/{hash} (letters and digits)",
                ))
            }
            (Some(_), Some(_)) => Ok(()),
            (Some(_), None) => Err(ApiError::required(field_path(ACCESS_TOKEN_KEY))),
            (None, Some(_)) => Err(ApiError::required(field_path(STORE_HASH_KEY))),
            (None, None) => Err(ApiError::field(
                "providerData.code",
                format!(
                    "an OAuth instance needs providerData (code, context, scope) from BigCommerce's \
                     app auth callback, or {STORE_HASH_KEY} and {ACCESS_TOKEN_KEY} given directly"
                ),
            )),
        }
    }

    fn exchange_provider_data<'a>(
        &'a self,
        ctx: ProviderDataContext<'a>,
        cfg: &'a mut Configuration,
    ) -> BoxFuture<'a, Result<(), ApiError>> {
        Box::pin(oauth::exchange(ctx, cfg))
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
        &["store.url", "oauth.callback.url", API_URL_KEY]
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

    fn dates_to_read_for(
        &self,
        cfg: &Configuration,
        resource: &HubResource,
        configured: &DatesConfiguration,
    ) -> DatesConfiguration {
        polling::dates_for(cfg, resource, configured)
    }

    fn poll_request(&self, q: &PollQuery) -> Result<PollRequest, ApiError> {
        polling::poll_request(q)
    }

    fn read_poll_page(&self, r: &PollResponse) -> Result<PollPage, PollFailure> {
        polling::read_poll_page(r)
    }

    fn next_position(&self, q: &PollQuery, seen: &PageSeen) -> Option<PagePosition> {
        polling::next_position(q, seen)
    }

    fn poll_passes(&self, resource: &HubResource) -> usize {
        polling::poll_passes(resource)
    }

    fn is_deleted_in_listing(&self, object: &serde_json::Value) -> bool {
        polling::is_deleted_in_listing(object)
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
        webhook::parse(self.key(), req, now)
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
