//! What a store sends: `WC_Webhook::deliver()` event deliveries (signed,
//! with a delivery id), the creation ping, the store's `fire`, and the topic
//! rules of includes/wc-webhook-functions.php.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde_json::Value;
use sha2::Sha256;
use shared::api::ApiRequest;

use super::php::{php_json_encode, wp_hash, wp_specialchars_decode};
use super::{lock, store_now, Hook, WooStore};

/// `User-Agent` of deliveries and pings (§1.1, §1.3) of a store at the
/// default version: `WooCommerce/%s Hookshot (WordPress/%s)`.
pub const USER_AGENT: &str = "WooCommerce/9.8.1 Hookshot (WordPress/6.7.2)";

/// The WordPress version the simulated stores report.
pub const WP_VERSION: &str = "6.7.2";

/// `sprintf( 'WooCommerce/%s Hookshot (WordPress/%s)', WC_VERSION, $wp_version )`.
pub(super) fn user_agent(wc_version: &str) -> String {
    format!("WooCommerce/{wc_version} Hookshot (WordPress/{WP_VERSION})")
}

/// An HTTP request as a vendor sends it: exact header names and body bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Header names with the vendor's casing, in the order they are set.
    pub headers: Vec<(String, String)>,
    /// The exact body bytes (what any signature covers).
    pub body: Vec<u8>,
}

impl Delivery {
    /// The first header with this name, matched case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as UTF-8 text (lossy).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A `POST` [`ApiRequest`] carrying this delivery, for calling a handler
    /// in-process; `path_and_query` is e.g. `/elements/api-v2/events/woo?x=1`.
    pub fn to_api_request(&self, path_and_query: &str) -> ApiRequest {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let (path, query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p.to_string(), Some(q.to_string())),
            None => (path_and_query.to_string(), None),
        };
        let mut headers = HeaderMap::new();
        for (k, v) in &self.headers {
            headers.append(
                HeaderName::from_bytes(k.as_bytes()).expect("valid header name"),
                HeaderValue::from_str(v).expect("valid header value"),
            );
        }
        ApiRequest {
            method: Method::POST,
            path,
            query,
            headers,
            body: self.body.clone(),
            request_id: format!("sim-{}", NEXT.fetch_add(1, Ordering::Relaxed)),
        }
    }

    fn set_header(&mut self, name: &str, value: String) {
        match self
            .headers
            .iter_mut()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
        {
            Some(slot) => slot.1 = value,
            None => self.headers.push((name.to_string(), value)),
        }
    }
}

/// `X-WC-Webhook-Signature`: base64(HMAC-SHA256(key = decoded secret, body))
/// (`WC_Webhook::generate_signature()`, §1.2).
pub fn signature(secret: &str, body: &[u8]) -> String {
    let key = wp_specialchars_decode(secret);
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(body);
    STANDARD.encode(mac.finalize().into_bytes())
}

/// An event delivery exactly as `WC_Webhook::deliver()` sends it (§1.1, §1.2).
///
/// `source` is `home_url('/')` (trailing slash included, e.g.
/// `https://shop.example/`); `delivery_id` is the `X-WC-Webhook-Delivery-ID`
/// value (see [`delivery_id_at`]).
pub fn delivery(
    topic: &str,
    source: &str,
    webhook_id: u64,
    delivery_id: &str,
    secret: &str,
    payload: &Value,
) -> Delivery {
    let body = php_json_encode(payload);
    let (resource, event) = topic.split_once('.').unwrap_or((topic, ""));
    let headers = vec![
        ("User-Agent", USER_AGENT.to_string()),
        ("Content-Type", "application/json".to_string()),
        ("X-WC-Webhook-Source", source.to_string()),
        ("X-WC-Webhook-Topic", topic.to_string()),
        ("X-WC-Webhook-Resource", resource.to_string()),
        ("X-WC-Webhook-Event", event.to_string()),
        ("X-WC-Webhook-Signature", signature(secret, &body)),
        ("X-WC-Webhook-ID", webhook_id.to_string()),
        ("X-WC-Webhook-Delivery-ID", delivery_id.to_string()),
    ];
    Delivery {
        headers: headers
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        body,
    }
}

/// `X-WC-Webhook-Delivery-ID` for a delivery made now (this machine's clock).
/// See [`delivery_id_at`].
pub fn delivery_id(webhook_id: u64) -> String {
    delivery_id_at(webhook_id, chrono::Utc::now().timestamp())
}

/// `WC_Webhook::get_new_delivery_id()` (includes/class-wc-webhook.php):
/// `wp_hash( $this->get_id() . strtotime( 'now' ) )`, i.e. HMAC-MD5 under
/// the site's auth salt of the webhook id followed by the unix second. Two
/// deliveries of one webhook within the same second share the id; it is not
/// a per-delivery identifier.
pub fn delivery_id_at(webhook_id: u64, unix_second: i64) -> String {
    wp_hash(&format!("{webhook_id}{unix_second}"))
}

/// The creation ping of `WC_Webhook::deliver_ping()` (§1.3): body
/// `webhook_id=N`, the cURL transport's form content type, no `X-WC-*` headers.
pub fn ping(webhook_id: u64) -> Delivery {
    Delivery {
        headers: vec![
            ("User-Agent".to_string(), USER_AGENT.to_string()),
            (
                "Content-Type".to_string(),
                "application/x-www-form-urlencoded".to_string(),
            ),
            ("Connection".to_string(), "close".to_string()),
        ],
        body: format!("webhook_id={webhook_id}").into_bytes(),
    }
}

/// POSTs a [`Delivery`] to `url` like `wp_safe_remote_request` does for
/// deliveries (`WC_Webhook::deliver()`: HTTP/1.0, `redirection => 0`,
/// `timeout => MINUTE_IN_SECONDS`).
///
/// Returns the status and body text; a transport error gives status 0 (what
/// `intval()` of a `WP_Error` code is) and the error text.
pub async fn send(delivery: &Delivery, url: &str) -> (u16, String) {
    post(delivery, url, reqwest::redirect::Policy::none(), 60, true).await
}

pub(super) async fn post(
    delivery: &Delivery,
    url: &str,
    redirects: reqwest::redirect::Policy,
    timeout_secs: u64,
    http10: bool,
) -> (u16, String) {
    let client = match reqwest::Client::builder()
        .no_proxy()
        .redirect(redirects)
        .timeout(Duration::from_secs(timeout_secs))
        .build()
    {
        Ok(c) => c,
        Err(e) => return (0, e.to_string()),
    };
    let mut req = client.post(url).body(delivery.body.clone());
    if http10 {
        req = req.version(http::Version::HTTP_10);
    }
    for (k, v) in &delivery.headers {
        req = req.header(k.as_str(), v.as_str());
    }
    match req.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            (status, resp.text().await.unwrap_or_default())
        }
        Err(e) => (0, e.to_string()),
    }
}

/// The outcome of one creation ping the store sent (§1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingRecord {
    /// The webhook that was created.
    pub webhook_id: u64,
    /// Where the ping went.
    pub delivery_url: String,
    /// Response status; `None` on a transport error.
    pub status: Option<u16>,
}

/// The outcome of one event delivery sent by [`WooStore::fire`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FireRecord {
    /// The webhook delivered to.
    pub webhook_id: u64,
    /// Response status; 0 on a transport error (§1.6).
    pub status: u16,
    /// Response body text (or the transport error).
    pub body: String,
    /// The exact request that was sent.
    pub delivery: Delivery,
}

/// `WC_Webhook::log_delivery()` + `failed_delivery()`
/// (includes/class-wc-webhook.php): success is `200 <= code < 303` and
/// resets `failure_count`; otherwise, if `failure_count > 5`
/// (`woocommerce_max_webhook_delivery_failures`) the hook is `disabled`
/// (count unchanged), else the count goes up by one. So the 7th consecutive
/// failure disables it. Nothing is retried.
pub(super) fn record_outcome(hook: &mut Hook, status: u16) {
    if (200..303).contains(&status) {
        hook.failure_count = 0;
    } else if hook.failure_count > 5 {
        hook.status = "disabled".to_string();
    } else {
        hook.failure_count += 1;
    }
}

impl WooStore {
    /// Delivers `payload` to every `active` webhook whose topic is `topic`,
    /// once each, like `WC_Webhook::deliver()` (§1.1, §1.6): the delivery id
    /// is [`delivery_id_at`] of the store's clock (see
    /// [`freeze_clock`](Self::freeze_clock)), the `User-Agent` carries the
    /// store's version; success is 200..=302, a failure (a transport error
    /// included) bumps `failure_count`, and a failure found with
    /// `failure_count > 5` disables the webhook (the 7th in a row). No
    /// retries: a failed delivery is gone.
    pub async fn fire(&self, topic: &str, payload: &Value) -> Vec<FireRecord> {
        let (targets, version) = {
            let s = lock(&self.state);
            let targets: Vec<Hook> = s
                .hooks
                .values()
                .filter(|h| h.status == "active" && h.topic == topic)
                .cloned()
                .collect();
            (targets, s.version.clone())
        };
        let source = self.source();
        let mut out = Vec::new();
        for hook in targets {
            let unix = store_now(&lock(&self.state)).and_utc().timestamp();
            let mut d = delivery(
                topic,
                &source,
                hook.id,
                &delivery_id_at(hook.id, unix),
                &hook.secret,
                payload,
            );
            d.set_header("User-Agent", user_agent(&version));
            let (status, body) = send(&d, &hook.delivery_url).await;
            if let Some(h) = lock(&self.state).hooks.get_mut(&hook.id) {
                record_outcome(h, status);
            }
            out.push(FireRecord {
                webhook_id: hook.id,
                status,
                body,
                delivery: d,
            });
        }
        out
    }
}

/// `wc_is_webhook_valid_topic()` (§1.4, WC-FUNC), on the topic as given.
pub fn is_valid_topic(topic: &str) -> bool {
    const INVALID: [&str; 3] = [
        "action.woocommerce_login_credentials",
        "action.woocommerce_product_csv_importer_check_import_file_path",
        "action.woocommerce_webhook_should_deliver",
    ];
    if INVALID.contains(&topic) {
        return false;
    }
    if topic.starts_with("action.woocommerce_") || topic.starts_with("action.wc_") {
        return true;
    }
    // PHP: explode('.', $topic) and look at [0] and [1] only.
    let mut parts = topic.split('.');
    let (Some(resource), Some(event)) = (parts.next(), parts.next()) else {
        return false;
    };
    ["coupon", "customer", "order", "product"].contains(&resource)
        && ["created", "updated", "deleted", "restored"].contains(&event)
}

/// The `hooks` a webhook with this topic reports (§1.4 topic-to-hook map).
pub fn topic_hooks(topic: &str) -> Vec<String> {
    if let Some(hook) = topic.strip_prefix("action.") {
        return vec![hook.to_string()];
    }
    let hooks: &[&str] = match topic {
        "coupon.created" => &[
            "woocommerce_process_shop_coupon_meta",
            "woocommerce_new_coupon",
        ],
        "coupon.updated" => &[
            "woocommerce_process_shop_coupon_meta",
            "woocommerce_update_coupon",
        ],
        "coupon.deleted" | "product.deleted" => &["wp_trash_post"],
        "coupon.restored" | "product.restored" => &["untrashed_post"],
        "customer.created" => &[
            "user_register",
            "woocommerce_created_customer",
            "woocommerce_new_customer",
        ],
        "customer.updated" => &["profile_update", "woocommerce_update_customer"],
        "customer.deleted" => &["delete_user"],
        "order.created" => &["woocommerce_new_order"],
        "order.updated" => &[
            "woocommerce_update_order",
            "woocommerce_order_refunded",
            "woocommerce_delete_order_refund",
        ],
        "order.deleted" => &["wp_trash_post", "woocommerce_trash_order"],
        "order.restored" => &["untrashed_post", "woocommerce_untrash_order"],
        "product.created" => &[
            "woocommerce_process_product_meta",
            "woocommerce_new_product",
            "woocommerce_new_product_variation",
        ],
        "product.updated" => &[
            "woocommerce_process_product_meta",
            "woocommerce_update_product",
            "woocommerce_update_product_variation",
        ],
        _ => &[],
    };
    hooks.iter().map(|h| h.to_string()).collect()
}
