//! The element catalog: one file per element, all behind the [`Element`] trait,
//! so adding an element touches one new file and one line of [`REGISTRY`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::values::Configuration;
use crate::error::ApiError;
use crate::polling::{
    PagePosition, PageSeen, PollFailure, PollPage, PollQuery, PollRequest, PollResponse,
};
use crate::webhook::{WebhookContent, WebhookRequest};

pub mod bigcommerce;
pub mod ecwid;
pub mod one;
pub mod woocommerce;

pub use bigcommerce::BigCommerce;
pub use ecwid::Ecwid;
pub use one::One;
pub use woocommerce::WooCommerce;

/// How an instance learns about changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventMode {
    Polling,
    Webhook,
}

impl EventMode {
    pub fn as_str(self) -> &'static str {
        match self {
            EventMode::Polling => "polling",
            EventMode::Webhook => "webhook",
        }
    }
}

/// A Cloud Elements hub resource (`/hubs/ecommerce/orders`) and the vendor
/// endpoint that serves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubResource {
    pub hub: &'static str,
    pub name: &'static str,
    pub vendor_path: &'static str,
}

impl HubResource {
    pub fn hub_path(&self) -> String {
        format!("/hubs/{}/{}", self.hub, self.name)
    }
}

/// Configuration keys that hold a secret, for every element.
pub const COMMON_SECRET_KEYS: &[&str] = &["event.notification.signature.key"];

pub trait Element: Send + Sync + 'static {
    /// The Cloud Elements element key, e.g. `woocommercerest`.
    fn key(&self) -> &'static str;

    /// The event modes the vendor supports. An element with one mode needs no
    /// `event.vendor.type`.
    fn modes(&self) -> &'static [EventMode];

    /// Configuration keys that are credentials or keys: encrypted at rest and
    /// redacted from every response and log.
    fn secret_keys(&self) -> &'static [&'static str];

    /// Checks that the store credentials this element needs are present.
    fn validate_credentials(&self, cfg: &Configuration) -> Result<(), ApiError>;

    /// Completes the configuration from the instance body's `providerData`
    /// (what the vendor's OAuth callback gave the client, as Cloud Elements
    /// took it), before the configuration is validated. Elements without an
    /// OAuth exchange ignore it.
    fn exchange_provider_data<'a>(
        &'a self,
        _ctx: ProviderDataContext<'a>,
        _cfg: &'a mut Configuration,
    ) -> BoxFuture<'a, Result<(), ApiError>> {
        Box::pin(async { Ok(()) })
    }

    /// What the client should know about a configuration that is accepted
    /// but will not work as it may expect (shown as `warnings` when the
    /// instance is created). Never names a secret's value.
    fn configuration_warnings(&self, _cfg: &Configuration, _events_enabled: bool) -> Vec<String> {
        Vec::new()
    }

    /// Checks what webhook mode needs beyond credentials.
    fn validate_webhook_settings(&self, _cfg: &Configuration) -> Result<(), ApiError> {
        Ok(())
    }

    /// The hub resources polling can reach.
    fn hub_resources(&self) -> &'static [HubResource] {
        &[]
    }

    /// The poller configuration used when polling is on and none was given.
    fn default_poller_configuration(&self) -> Option<Value> {
        None
    }

    /// Which store this instance is connected to, for routing webhooks that
    /// arrive without an instance id (`/events/ecwid`). `None` when the element
    /// does not route that way.
    fn store_identity(&self, _cfg: &Configuration) -> Option<String> {
        None
    }

    /// Outbound URLs the user supplied (store API bases), as (key, url), to be
    /// validated and run through the network guard.
    fn outbound_url_keys(&self) -> &'static [&'static str] {
        &[]
    }

    /// A request answered 2xx before the instance is even looked up, such as
    /// WooCommerce's unsigned creation ping.
    fn is_handshake(&self, _req: &WebhookRequest) -> bool {
        false
    }

    /// For a webhook that arrives without an instance id: the store identity
    /// it carries, matched against [`Element::store_identity`]. `None` means
    /// this element needs the instance id in the URL.
    fn webhook_store_identity(&self, _req: &WebhookRequest) -> Result<Option<String>, ApiError> {
        Ok(None)
    }

    /// Whether a webhook routed by store identity to a store with no instance
    /// here is acknowledged (200, dropped) rather than refused (404). Right
    /// for a vendor whose one app URL serves every store that installed the
    /// app and that punishes refusals (Ecwid); wrong where a refusal is how a
    /// stray hook gets disabled (WooCommerce).
    fn acknowledges_unknown_stores(&self) -> bool {
        false
    }

    /// Verifies the sender against the instance's configuration. Every
    /// comparison of a secret is constant-time. Fails with 401.
    fn verify_webhook(&self, _cfg: &Configuration, _req: &WebhookRequest) -> Result<(), ApiError> {
        Err(ApiError::Unauthorized(format!(
            "element {} does not accept webhooks",
            self.key()
        )))
    }

    /// The path below `/elements/api-v2` where the vendor must deliver this
    /// instance's webhooks.
    fn webhook_path(&self, instance_id: u64) -> String {
        format!("/events/{}/{instance_id}", self.key())
    }

    /// Subscribes the store to deliver to us, for vendors with a webhooks API.
    /// Returns the vendor's ids of what it created, kept to unsubscribe later.
    /// May add keys to the configuration (a generated signing secret) first,
    /// through [`Element::prepare_webhook_configuration`].
    fn register_webhooks<'a>(
        &'a self,
        _ctx: RegistrationContext<'a>,
    ) -> BoxFuture<'a, Result<Vec<String>, ApiError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// Removes what [`Element::register_webhooks`] created. Best effort.
    fn unregister_webhooks<'a>(
        &'a self,
        _ctx: RegistrationContext<'a>,
        _ids: &'a [String],
    ) -> BoxFuture<'a, Result<(), ApiError>> {
        Box::pin(async { Ok(()) })
    }

    /// Fills in configuration the webhook subscription needs and the user
    /// does not give (a signing secret we generate).
    fn prepare_webhook_configuration(&self, _cfg: &mut Configuration) {}

    /// The dates the element's objects carry, for a resource whose
    /// `datesConfiguration` leaves them out (the docs send `{}`).
    fn default_dates(&self, _resource: &HubResource) -> crate::config::poller::DatesConfiguration {
        Default::default()
    }

    /// The store request for one page of a poll.
    fn poll_request(&self, _q: &PollQuery) -> Result<PollRequest, ApiError> {
        Err(ApiError::BadRequest(format!(
            "element {} does not poll",
            self.key()
        )))
    }

    /// Reads one page of a poll.
    fn read_poll_page(&self, _r: &PollResponse) -> Result<PollPage, PollFailure> {
        Err(PollFailure::Transient(format!(
            "element {} does not poll",
            self.key()
        )))
    }

    /// Where the next page starts, or `None` when the window is done.
    fn next_position(&self, _q: &PollQuery, _seen: &PageSeen) -> Option<PagePosition> {
        None
    }

    /// How many listings one poll of this resource reads, each through the
    /// whole window ([`PollQuery::pass`]).
    fn poll_passes(&self, _resource: &HubResource) -> usize {
        1
    }

    /// Checks a page's raw objects against the query that fetched them: a
    /// store that ignored the date filter is unsupported, not paged forever.
    fn check_page(&self, _q: &PollQuery, _items: &[Value]) -> Result<(), PollFailure> {
        Ok(())
    }

    /// The dates polling reads, from the resource's configuration: where the
    /// vendor has an exact twin of a configured field (WooCommerce's `_gmt`
    /// fields), the twin.
    fn dates_to_read(
        &self,
        configured: &crate::config::poller::DatesConfiguration,
    ) -> crate::config::poller::DatesConfiguration {
        configured.clone()
    }

    /// [`Element::dates_to_read`] for one instance's resource, where the
    /// dates depend on which API the instance reads it from (BigCommerce v3
    /// dates are ISO 8601, v2 ones RFC 2822).
    fn dates_to_read_for(
        &self,
        _cfg: &Configuration,
        _resource: &HubResource,
        configured: &crate::config::poller::DatesConfiguration,
    ) -> crate::config::poller::DatesConfiguration {
        self.dates_to_read(configured)
    }

    /// Whether a listed object is really gone (WooCommerce lists trashed
    /// orders and products with `status: trash`): reported as DELETED.
    fn is_deleted_in_listing(&self, _object: &Value) -> bool {
        false
    }

    /// Whether webhook instances are also polled, slowly, to deliver what the
    /// webhooks missed (`event.reconciliation.interval`).
    fn reconciles_webhooks(&self) -> bool {
        false
    }

    /// Checks the webhooks registered at the store, re-activates disabled or
    /// paused ones and re-creates missing ones. Elements without a webhooks
    /// API report nothing.
    fn check_webhooks<'a>(
        &'a self,
        _ctx: RegistrationContext<'a>,
        _registered: &'a [String],
    ) -> BoxFuture<'a, Result<Option<WebhookHealth>, ApiError>> {
        Box::pin(async { Ok(None) })
    }

    /// Normalizes a verified webhook into events.
    fn parse_webhook(
        &self,
        _req: &WebhookRequest,
        _now: DateTime<Utc>,
    ) -> Result<WebhookContent, ApiError> {
        Err(ApiError::BadRequest(format!(
            "element {} does not accept webhooks",
            self.key()
        )))
    }
}

/// What registering an instance's webhooks at the store needs.
pub struct RegistrationContext<'a> {
    pub cfg: &'a Configuration,
    /// Where the store must deliver: this instance's ingestion URL.
    pub delivery_url: &'a str,
    pub guard: &'a crate::netguard::NetGuard,
}

/// What an OAuth code exchange needs.
pub struct ProviderDataContext<'a> {
    /// The instance body's `providerData`.
    pub provider_data: &'a Value,
    /// The vendor's token endpoint host (configurable, so tests reach a
    /// simulator).
    pub login_url: &'a str,
}

/// What a webhook health check found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookHealth {
    /// When the store was asked.
    pub checked_at: String,
    /// Our webhooks the store holds.
    pub registered: usize,
    /// Of those, active.
    pub active: usize,
    /// Found disabled or paused and set active again by this check.
    pub reactivated: usize,
    /// Found missing and created again by this check.
    pub recreated: usize,
    /// Hooks to our URL that no instance registered (left by an interrupted
    /// registration), deleted by this check.
    pub strays_removed: usize,
    /// The vendor's ids of the instance's webhooks after the check.
    #[serde(skip)]
    pub webhook_ids: Vec<String>,
    /// What went wrong, if the check could not finish.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}

pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Reads a JSON array page; a store error status is the matching failure.
pub(crate) fn read_json_array_page(
    r: &PollResponse,
    vendor: &str,
) -> Result<PollPage, PollFailure> {
    match r.status {
        200..=299 => {}
        401 | 403 => {
            return Err(PollFailure::Unauthorized(format!(
                "{vendor} answered {}",
                r.status
            )));
        }
        429 => {
            let wait = crate::polling::header_ms(r.headers, "x-rate-limit-time-reset-ms")
                .map(chrono::Duration::milliseconds)
                .or_else(|| {
                    crate::polling::header_ms(r.headers, "retry-after")
                        .map(|s| chrono::Duration::seconds(s))
                })
                .unwrap_or(chrono::Duration::seconds(5));
            return Err(PollFailure::RateLimited(wait));
        }
        status => {
            let head: String = String::from_utf8_lossy(r.body).chars().take(200).collect();
            return Err(PollFailure::Transient(format!(
                "{vendor} answered {status}: {head}"
            )));
        }
    }
    if r.status == 204 || r.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(PollPage::of(Vec::new()));
    }
    match serde_json::from_slice::<Value>(r.body) {
        Ok(Value::Array(items)) => Ok(PollPage::of(items)),
        Ok(_) => Err(PollFailure::Transient(format!(
            "{vendor} answered a page that is not a JSON array"
        ))),
        Err(e) => Err(PollFailure::Transient(format!(
            "{vendor} answered a page that is not JSON: {e}"
        ))),
    }
}

/// Query parameters from the client's `where` clause, minus those the poller
/// sets itself (its window and paging must win).
pub(crate) fn passthrough<'a>(
    extra: &'a [(String, String)],
    reserved: &'a [&str],
) -> impl Iterator<Item = &'a (String, String)> {
    extra
        .iter()
        .filter(move |(k, _)| !reserved.contains(&k.as_str()))
}

/// The 401 every failed webhook verification answers with; the reason is
/// logged, never returned, so a prober learns nothing.
pub(crate) fn webhook_denied() -> ApiError {
    ApiError::Unauthorized("webhook signature or credentials are invalid".into())
}

impl std::fmt::Debug for dyn Element {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Element({})", self.key())
    }
}

static REGISTRY: &[&dyn Element] = &[&WooCommerce, &BigCommerce, &Ecwid, &One];

pub fn find(key: &str) -> Option<&'static dyn Element> {
    REGISTRY.iter().copied().find(|e| e.key() == key)
}

pub fn known_keys() -> Vec<&'static str> {
    REGISTRY.iter().map(|e| e.key()).collect()
}

/// Every secret key of the element, common ones included.
pub fn all_secret_keys(element: &dyn Element) -> impl Iterator<Item = &'static str> + '_ {
    COMMON_SECRET_KEYS
        .iter()
        .chain(element.secret_keys().iter())
        .copied()
}

/// Fails with the first missing key, named.
pub(crate) fn require_all(cfg: &Configuration, keys: &[&str]) -> Result<(), ApiError> {
    for key in keys {
        crate::config::values::required_str(cfg, key)?;
    }
    Ok(())
}

/// The default poller configuration for a list of hub resources, in the shape
/// Cloud Elements documents (`{name: {url, idField, datesConfiguration}}`).
pub(crate) fn default_poller_for(
    resources: &[HubResource],
    updated_field: &str,
    created_field: &str,
    format: &str,
) -> Value {
    let mut map = serde_json::Map::new();
    for r in resources {
        map.insert(
            r.name.to_string(),
            serde_json::json!({
                "url": r.hub_path(),
                "idField": "id",
                "datesConfiguration": {
                    "updatedAtField": updated_field,
                    "updatedAtFormat": format,
                    "createdAtField": created_field,
                    "createdAtFormat": format,
                }
            }),
        );
    }
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_finds_every_element_by_key() {
        for key in ["woocommercerest", "bigcommerce", "ecwid", "one"] {
            assert_eq!(find(key).map(|e| e.key()), Some(key));
        }
        assert!(find("shopify").is_none());
        assert_eq!(known_keys().len(), 4);
    }

    #[test]
    fn every_element_keeps_the_signature_key_secret() {
        for key in known_keys() {
            let e = find(key).unwrap();
            assert!(all_secret_keys(e).any(|k| k == "event.notification.signature.key"));
        }
    }
}
