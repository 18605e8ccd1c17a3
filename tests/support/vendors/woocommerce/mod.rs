//! WooCommerce store simulator: webhook deliveries, the creation ping, the
//! webhooks REST API, the v3 list endpoints a poller uses, and the REST
//! authentication in front of them — written from WooCommerce's own source
//! (`woocommerce/woocommerce`, plugins/woocommerce/includes/...) and
//! WordPress core (`wordpress-develop`, src/wp-includes/...); the facts and
//! the functions they come from are in `/work/notes/woocommerce-facts.md`
//! and cited next to the code that implements them.
//!
//! Everything (the PHP-compatible JSON encoder, the HMAC signatures, the
//! OAuth 1.0a verifier, `wp_hash`) is implemented here with `hmac`, `sha1`,
//! `sha2`, `md-5` and `base64`, independently of the production code.
//!
//! What a default store does that a naive client may not expect:
//! - It is plain HTTP, so `WC_REST_Authentication` REQUIRES OAuth 1.0a
//!   one-legged signatures (HMAC-SHA1 or HMAC-SHA256, WooCommerce's base
//!   string, 15-minute timestamp window, nonces remembered per key) and
//!   ignores HTTP Basic and `consumer_key`/`consumer_secret` query
//!   parameters ([`WooStore::set_https`] changes that; see `auth.rs`).
//! - `X-WC-Webhook-Delivery-ID` is `wp_hash(webhook id . unix second)`:
//!   deliveries of one webhook in the same second share it
//!   ([`delivery_id_at`], [`WooStore::freeze_clock`]).
//! - Deliveries are never retried; the 7th consecutive failure (outside
//!   200..=302, or a transport error) disables the webhook, and re-activating
//!   it over REST keeps its failure count ([`WooStore::fire`]).
//! - Webhook creation pings the delivery URL synchronously before the 201
//!   ([`WooStore::set_create_latency`] adds a slow host on top); there is a
//!   batch endpoint (`/webhooks/batch`, 100 entries at most).
//! - The site zone is `America/New_York` ([`DEFAULT_TIMEZONE`]): `date_x` are
//!   site-local wall times (DST included) without an offset, `date_x_gmt`
//!   are UTC; `modified_after` without `dates_are_gmt=true` compares with
//!   the site-local column. `GET /wp-json/` tells `gmt_offset` and
//!   `timezone_string`.
//! - Trashing bumps `date_modified`; `status=any` lists hide trashed orders
//!   and products, while the v3 coupon list shows trashed coupons.
//! - The version is 9.8.1: `GET /wp-json/wc/v3/system_status` reports it;
//!   below 5.8 ([`WooStore::set_version`]) `modified_after`/`modified_before`
//!   are silently ignored.
//!
//! Opt-in adversity: [`WooStore::hide_from_api`] (short pages),
//! [`WooStore::fail_next`] (WordPress JSON errors),
//! [`WooStore::fail_next_html`] (WAF / maintenance / proxy HTML pages),
//! [`WooStore::set_strip_authorization`] (hosts that drop `Authorization`),
//! [`WooStore::set_delay`], [`WooStore::schedule_upsert_after_calls`].
//!
//! Also still true from the first version: bodies are `wp_json_encode`
//! bytes ([`php_json_encode`]) and signed over exactly those bytes; the
//! ping is unsigned and form-encoded; loopback delivery URLs are accepted
//! (as a store with `http_request_host_is_external` set).

mod admin;
mod auth;
mod catalog;
mod deliveries;
mod payloads;
mod php;
mod query;
mod rest;
mod webhooks_api;
mod zone;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ce_local::http_server::{serve, BoxFuture, Handler};
use chrono::{NaiveDateTime, Utc};
use shared::api::ApiRequest;
use tokio::sync::oneshot;

pub use auth::{oauth1_authorization_header, oauth1_signed_url, OAUTH_WINDOW_SECONDS};
pub use catalog::CATALOG_RESOURCES;
pub use deliveries::{
    delivery, delivery_id, delivery_id_at, is_valid_topic, ping, send, signature, topic_hooks,
    Delivery, FireRecord, PingRecord, USER_AGENT, WP_VERSION,
};
pub use payloads::{
    action_payload, coupon_payload, customer_payload, deleted_payload, localize, order_payload,
    order_payload_with_line_items, product_payload,
};
pub use php::{php_json_encode, rawurlencode, wp_hash, wp_specialchars_decode};
pub use webhooks_api::{BATCH_LIMIT, WEBHOOKS_PATH};
pub use zone::{SiteZone, DEFAULT_TIMEZONE};

use catalog::{CatalogItem, CatalogOp};
use webhooks_api::Hook;

/// The WooCommerce version a store reports by default.
pub const DEFAULT_VERSION: &str = "9.8.1";

/// A webhook as the simulated store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredWebhook {
    /// Webhook ID (what `X-WC-Webhook-ID` carries).
    pub id: u64,
    /// Topic, e.g. `order.updated`.
    pub topic: String,
    /// Where deliveries and the ping go.
    pub delivery_url: String,
    /// The stored secret (given, or generated like `wp_generate_password(50, true, true)`).
    pub secret: String,
    /// `active`, `paused` or `disabled`.
    pub status: String,
    /// Consecutive failed deliveries (`failure_count`).
    pub failure_count: u32,
    /// True until a ping got exactly 200 (`pending_delivery`).
    pub pending_delivery: bool,
}

impl RegisteredWebhook {
    fn of(h: &Hook) -> RegisteredWebhook {
        RegisteredWebhook {
            id: h.id,
            topic: h.topic.clone(),
            delivery_url: h.delivery_url.clone(),
            secret: h.secret.clone(),
            status: h.status.clone(),
            failure_count: h.failure_count,
            pending_delivery: h.pending_delivery,
        }
    }
}

/// An injected answer to the next API calls.
#[derive(Debug, Clone, Copy)]
enum Injected {
    /// A WordPress JSON error with this status.
    Json(u16),
    /// An HTML page from in front of WordPress with this status.
    Html(u16),
}

struct StoreState {
    consumer_key: String,
    consumer_secret: String,
    base_url: String,
    next_id: u64,
    hooks: BTreeMap<u64, Hook>,
    requests: usize,
    fail: Option<(Injected, usize)>,
    pings: Vec<PingRecord>,
    ping_enabled: bool,
    /// Catalog objects by resource (`orders`, `products`, ...), by id.
    catalog: BTreeMap<&'static str, BTreeMap<u64, CatalogItem>>,
    /// Objects the API key's user may not read (listed, counted, not shown).
    hidden: BTreeSet<(&'static str, u64)>,
    /// The site's time zone setting.
    zone: SiteZone,
    /// Added before every response.
    delay: Duration,
    /// GET requests to a catalog collection route, whatever their outcome.
    list_calls: usize,
    /// Catalog changes waiting for a given list call to be answered.
    scheduled: Vec<(usize, CatalogOp)>,
    /// A frozen "now" (UTC) for delivery ids, webhook and trash dates.
    clock: Option<NaiveDateTime>,
    /// `is_ssl()`.
    https: bool,
    /// The host drops the `Authorization` header before PHP sees it.
    strip_authorization: bool,
    /// How each authenticated request was authenticated.
    auth_log: Vec<&'static str>,
    /// The API key's used OAuth nonces by timestamp (`nonces` column).
    nonces: BTreeMap<i64, String>,
    /// `WC_VERSION`.
    version: String,
    /// Extra wait after a webhook create's ping, before the 201.
    create_latency: Duration,
}

/// A running WooCommerce store simulator on `127.0.0.1`; it stops when dropped.
pub struct WooStore {
    /// `http://127.0.0.1:<port>`; the webhooks API is at `{base_url}/wp-json/wc/v3/webhooks`.
    pub base_url: String,
    state: Arc<Mutex<StoreState>>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Drop for WooStore {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

fn lock(state: &Mutex<StoreState>) -> MutexGuard<'_, StoreState> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts a store with one read/write API key (§1.7).
pub async fn start_store(consumer_key: &str, consumer_secret: &str) -> WooStore {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    let base_url = format!("http://{addr}");
    let state = Arc::new(Mutex::new(StoreState {
        consumer_key: consumer_key.to_string(),
        consumer_secret: consumer_secret.to_string(),
        base_url: base_url.clone(),
        next_id: 142,
        hooks: BTreeMap::new(),
        requests: 0,
        fail: None,
        pings: Vec::new(),
        ping_enabled: true,
        catalog: BTreeMap::new(),
        hidden: BTreeSet::new(),
        zone: SiteZone::default(),
        delay: Duration::ZERO,
        list_calls: 0,
        scheduled: Vec::new(),
        clock: None,
        https: false,
        strip_authorization: false,
        auth_log: Vec::new(),
        nonces: BTreeMap::new(),
        version: DEFAULT_VERSION.to_string(),
        create_latency: Duration::ZERO,
    }));
    let handler_state = state.clone();
    let handler: Handler = Arc::new(move |req: ApiRequest| -> BoxFuture {
        let state = handler_state.clone();
        Box::pin(async move { rest::handle(state, req).await })
    });
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(serve(listener, handler, async move {
        let _ = rx.await;
    }));
    WooStore {
        base_url,
        state,
        shutdown: Some(tx),
    }
}

impl WooStore {
    /// `home_url('/')`, the `X-WC-Webhook-Source` of this store's deliveries.
    pub fn source(&self) -> String {
        format!("{}/", self.base_url)
    }

    /// `{base_url}/wp-json/wc/v3/webhooks`.
    pub fn webhooks_url(&self) -> String {
        format!("{}{}", self.base_url, WEBHOOKS_PATH)
    }

    /// `{base_url}/wp-json/`, the WordPress REST index (no authentication).
    pub fn index_url(&self) -> String {
        format!("{}/wp-json/", self.base_url)
    }

    /// The webhooks currently stored, by ascending id.
    pub fn registered(&self) -> Vec<RegisteredWebhook> {
        lock(&self.state)
            .hooks
            .values()
            .map(RegisteredWebhook::of)
            .collect()
    }

    /// One stored webhook.
    pub fn hook(&self, id: u64) -> Option<RegisteredWebhook> {
        lock(&self.state).hooks.get(&id).map(RegisteredWebhook::of)
    }

    /// How many HTTP requests the store's API has received.
    pub fn requests(&self) -> usize {
        lock(&self.state).requests
    }

    /// Makes the next `n` API calls answer `status` with a WordPress-style
    /// JSON error body.
    pub fn fail_next(&self, status: u16, n: usize) {
        lock(&self.state).fail = (n > 0).then_some((Injected::Json(status), n));
    }

    /// Makes the next `n` API calls answer `status` with an HTML page
    /// (`Content-Type: text/html`) from in front of WordPress: 403 is a
    /// Cloudflare "Access denied" (error 1020), 503 WordPress's "Briefly
    /// unavailable for scheduled maintenance" with `Retry-After: 600`, any
    /// other status an nginx error page.
    pub fn fail_next_html(&self, status: u16, n: usize) {
        lock(&self.state).fail = (n > 0).then_some((Injected::Html(status), n));
    }

    /// Turns the creation ping on (the default, as WooCommerce) or off.
    pub fn set_ping(&self, enabled: bool) {
        lock(&self.state).ping_enabled = enabled;
    }

    /// The creation pings sent so far, in order.
    pub fn pings(&self) -> Vec<PingRecord> {
        lock(&self.state).pings.clone()
    }

    /// `failure_count` and `pending_delivery` of a webhook (§1.3, §1.6).
    pub fn delivery_state(&self, id: u64) -> Option<(u32, bool)> {
        lock(&self.state)
            .hooks
            .get(&id)
            .map(|h| (h.failure_count, h.pending_delivery))
    }

    /// Sets a webhook's status as an admin edit would; false if unknown.
    pub fn set_status(&self, id: u64, status: &str) -> bool {
        let mut s = lock(&self.state);
        let now = store_now(&s);
        match s.hooks.get_mut(&id) {
            Some(h) => {
                h.status = status.to_string();
                h.date_modified = now;
                true
            }
            None => false,
        }
    }

    /// Freezes the store's clock at `at` (UTC), or lets it run again with
    /// `None`. The frozen time stamps delivery ids (so several
    /// [`fire`](Self::fire)s fall in the same second), webhook and trash
    /// dates, and the index's current `gmt_offset`. Catalog dates given to
    /// [`upsert`](Self::upsert) and the OAuth timestamp window (checked
    /// against this machine's clock) are unaffected.
    pub fn freeze_clock(&self, at: Option<NaiveDateTime>) {
        lock(&self.state).clock = at;
    }

    /// Whether the store sees requests as TLS (`is_ssl()`; default false,
    /// the store is served over plain HTTP). With TLS,
    /// `perform_basic_authentication()` runs first: `consumer_key` /
    /// `consumer_secret` query parameters, then HTTP Basic; OAuth 1.0a is
    /// only tried when those gave no user. Without it only OAuth 1.0a works.
    pub fn set_https(&self, on: bool) {
        lock(&self.state).https = on;
    }

    /// Models a host that strips the `Authorization` header: HTTP Basic
    /// finds no credentials (the request is anonymous, 401
    /// `woocommerce_rest_cannot_view`), and neither does an `OAuth`
    /// header; query-string credentials and query-string OAuth still work.
    pub fn set_strip_authorization(&self, on: bool) {
        lock(&self.state).strip_authorization = on;
    }

    /// How each authenticated API request was authenticated, in order:
    /// `"oauth1"`, `"basic"` (HTTP Basic) or `"query"` (`consumer_key` /
    /// `consumer_secret` query parameters). Anonymous and rejected requests
    /// are not listed.
    pub fn auth_log(&self) -> Vec<&'static str> {
        lock(&self.state).auth_log.clone()
    }

    /// Sets `WC_VERSION` (default [`DEFAULT_VERSION`]): reported by
    /// `system_status` and the deliveries' `User-Agent`; below 5.8 the list
    /// endpoints ignore `modified_after` / `modified_before` (unregistered
    /// args are dropped by the REST server) and return objects regardless of
    /// their modification time.
    pub fn set_version(&self, version: &str) {
        lock(&self.state).version = version.to_string();
    }

    /// Adds `d` to every webhook create (REST or batch entry), after its
    /// synchronous ping and before the answer: a slow shared host.
    pub fn set_create_latency(&self, d: Duration) {
        lock(&self.state).create_latency = d;
    }

    /// Sets the site zone to an IANA name (`timezone_string`, DST applies);
    /// panics on an unknown name. Default [`DEFAULT_TIMEZONE`].
    pub fn set_timezone(&self, name: &str) {
        let zone = SiteZone::named(name).unwrap_or_else(|| panic!("unknown time zone {name:?}"));
        lock(&self.state).zone = zone;
    }

    /// Sets a manual UTC offset in hours (`timezone_string` empty,
    /// `gmt_offset` = `hours`), used for the site-local `date_created` /
    /// `date_modified` fields and the non-GMT filter columns.
    pub fn set_site_offset_hours(&self, hours: i32) {
        lock(&self.state).zone = SiteZone::FixedHours(hours);
    }

    /// The site's zone setting.
    pub fn site_zone(&self) -> SiteZone {
        lock(&self.state).zone
    }

    /// Delays every response by `d` (default none).
    pub fn set_delay(&self, d: Duration) {
        lock(&self.state).delay = d;
    }
}

fn now() -> NaiveDateTime {
    Utc::now().naive_utc()
}

/// The store's "now" (UTC): the frozen clock if set.
fn store_now(s: &StoreState) -> NaiveDateTime {
    s.clock.unwrap_or_else(now)
}

/// `Y-m-d\TH:i:s`, the REST date format.
fn wc_date(t: &NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// `version_compare( $version, "major.minor", '>=' )` for dotted numbers.
fn version_at_least(version: &str, major: u64, minor: u64) -> bool {
    let mut parts = version
        .split(['.', '-'])
        .map(|p| p.parse::<u64>().unwrap_or(0));
    let v = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    v >= (major, minor)
}

fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_i64(Utc::now().timestamp_nanos_opt().unwrap_or_default());
    h.finish()
}

/// `wp_generate_password(50, true, true)`'s alphabet and length.
fn generate_secret() -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!@#$%^&*()-_ []{}<>~`+=,.;:/?|";
    (0..50)
        .map(|_| CHARS[(random_u64() % CHARS.len() as u64) as usize] as char)
        .collect()
}
