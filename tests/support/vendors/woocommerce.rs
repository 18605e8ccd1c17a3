//! WooCommerce simulator: webhook deliveries, the creation ping, and the
//! webhooks REST API of a store, written from `docs/vendors/webhooks.md` §1
//! (which cites WooCommerce's `class-wc-webhook.php`, `wc-webhook-functions.php`
//! and the v1/v2/v3 webhooks REST controllers) and from the WooCommerce REST
//! API v3 docs (`woocommerce/woocommerce-rest-api-docs`, `source/includes/wp-api-v3/`).
//!
//! Everything here (the PHP-compatible JSON encoder, the HMAC signature, the
//! HTML-entity decoding of the secret) is implemented locally with `hmac`,
//! `sha2` and `base64`, independently of the production code under test.
//!
//! Fidelity notes (all from the doc or the WooCommerce source it cites):
//! - Delivery bodies are `wp_json_encode($payload)` bytes (§1.1), produced by
//!   [`php_json_encode`]; the signature covers exactly those bytes (§1.2).
//! - The ping is unsigned, form-encoded and has no `X-WC-*` header (§1.3).
//! - The store answers webhook API calls like `WC_REST_Webhooks_Controller`
//!   (v3, inheriting v2/v1; §1.7): the secret is write-only and never
//!   returned; `status` in a create request is ignored (always `active`);
//!   the ping is sent synchronously before the 201 is returned.
//! - The store plays the HTTPS "basic auth" path of `WC_REST_Authentication`
//!   (HTTP Basic `consumer_key:consumer_secret`, or `consumer_key` /
//!   `consumer_secret` query parameters) even though it is served over plain
//!   HTTP on loopback; OAuth 1.0a is not simulated.
//! - Real WooCommerce refuses loopback delivery URLs unless the
//!   `http_request_host_is_external` / `http_allowed_safe_ports` filters are
//!   set (§1.1 "SSRF guard"); the simulator behaves as a store with those
//!   filters set.
//! - The same store serves the v3 list endpoints a poller uses
//!   (`/wp-json/wc/v3/{orders,products,customers,coupons}`), written from
//!   `docs/vendors/polling.md` §1: controllable catalog state
//!   ([`WooStore::upsert`], [`WooStore::delete`]), WordPress arg validation,
//!   exclusive `modified_after`/`modified_before` with `WP_Date_Query`'s
//!   zone handling, `X-WP-Total`/`X-WP-TotalPages`/`Link` exactly as
//!   WooCommerce builds them (unencoded values), and adversity controls
//!   ([`WooStore::fail_next`], [`WooStore::set_delay`],
//!   [`WooStore::schedule_upsert_after_calls`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ce_local::http_server::{serve, BoxFuture, Handler};
use chrono::{NaiveDateTime, Timelike, Utc};
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use shared::api::{ApiRequest, ApiResponse};
use tokio::sync::oneshot;

/// `User-Agent` of deliveries and pings (§1.1, §1.3; illustrative versions).
pub const USER_AGENT: &str = "WooCommerce/9.8.1 Hookshot (WordPress/6.7.2)";

/// Path of the webhooks collection under a store's base URL (§1.7).
pub const WEBHOOKS_PATH: &str = "/wp-json/wc/v3/webhooks";

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
}

// ---------------------------------------------------------------------------
// PHP json_encode
// ---------------------------------------------------------------------------

/// PHP `json_encode($v)` with default flags, as `wp_json_encode` (§1.1):
/// `/` → `\/`, non-ASCII → lowercase `\uXXXX` (surrogate pairs above U+FFFF).
///
/// No whitespace is emitted. Object keys come out in `serde_json::Map` order,
/// which is sorted here (the crate is built without `preserve_order`); PHP
/// keeps insertion order, but receivers must not depend on key order anyway.
/// Numbers use serde_json's formatting (identical to PHP for integers and
/// ordinary floats; exponent forms differ, e.g. PHP writes `1.0e+25`).
pub fn php_json_encode(v: &Value) -> Vec<u8> {
    let mut out = String::new();
    encode_value(v, &mut out);
    out.into_bytes()
}

fn encode_value(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => encode_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                encode_value(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                encode_string(k, out);
                out.push(':');
                encode_value(item, out);
            }
            out.push('}');
        }
    }
}

fn encode_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7f => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{:04x}", unit);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

// ---------------------------------------------------------------------------
// Signature
// ---------------------------------------------------------------------------

/// WordPress `wp_specialchars_decode($s, ENT_QUOTES)`, applied by WooCommerce
/// to the stored secret before using it as the HMAC key (§1.2).
///
/// Decodes `&lt;` `&gt;` `&amp;` `&quot;` and the numeric forms of `<` `>`
/// `&` `"` `'` (decimal with any leading zeros; hex for `&`, `"`, `'`), in a
/// single pass like PHP's `strtr` (so `&amp;lt;` becomes `&lt;`).
pub fn wp_specialchars_decode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        match decode_entity(rest) {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Decodes one entity at the start of `s` (which starts with `&`).
fn decode_entity(s: &str) -> Option<(char, usize)> {
    for (name, c) in [
        ("&lt;", '<'),
        ("&gt;", '>'),
        ("&amp;", '&'),
        ("&quot;", '"'),
    ] {
        if s.starts_with(name) {
            return Some((c, name.len()));
        }
    }
    let body = s.strip_prefix("&#")?;
    let end = body.find(';')?;
    let digits = &body[..end];
    let len = 2 + end + 1;
    if let Some(hex) = digits
        .strip_prefix('x')
        .or_else(|| digits.strip_prefix('X'))
    {
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let trimmed = hex.trim_start_matches('0');
        return match trimmed.to_ascii_lowercase().as_str() {
            "27" => Some(('\'', len)),
            "22" => Some(('"', len)),
            "26" => Some(('&', len)),
            _ => None,
        };
    }
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match digits.trim_start_matches('0') {
        "39" => Some(('\'', len)),
        "34" => Some(('"', len)),
        "60" => Some(('<', len)),
        "62" => Some(('>', len)),
        "38" => Some(('&', len)),
        _ => None,
    }
}

/// `X-WC-Webhook-Signature`: base64(HMAC-SHA256(key = decoded secret, body)) (§1.2).
pub fn signature(secret: &str, body: &[u8]) -> String {
    let key = wp_specialchars_decode(secret);
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(body);
    STANDARD.encode(mac.finalize().into_bytes())
}

// ---------------------------------------------------------------------------
// Deliveries
// ---------------------------------------------------------------------------

/// An event delivery exactly as `WC_Webhook::deliver()` sends it (§1.1, §1.2).
///
/// `source` is `home_url('/')` (trailing slash included, e.g.
/// `https://shop.example/`); `delivery_id` is the `X-WC-Webhook-Delivery-ID`
/// value (32 lowercase hex in practice, see [`delivery_id`]).
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

/// A fresh `X-WC-Webhook-Delivery-ID`-shaped value: 32 lowercase hex (§1.1).
pub fn delivery_id(webhook_id: u64) -> String {
    let mut h = Sha256::new();
    h.update(webhook_id.to_be_bytes());
    h.update(random_u64().to_be_bytes());
    hex::encode(&h.finalize()[..16])
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
/// deliveries (§1.1: HTTP/1.0, no redirects followed, 60 s timeout).
///
/// Returns the status and body text; a transport error gives status 0 (what
/// `intval()` of a `WP_Error` code is) and the error text.
pub async fn send(delivery: &Delivery, url: &str) -> (u16, String) {
    post(delivery, url, reqwest::redirect::Policy::none(), 60, true).await
}

async fn post(
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

// ---------------------------------------------------------------------------
// Payloads (WooCommerce REST API v3 docs examples, trimmed)
// ---------------------------------------------------------------------------

/// Site-local time for a GMT `Y-m-d\TH:i:s` stamp; the docs' examples use a
/// UTC-3 site (`16:28:02` local for `19:28:02` GMT).
fn site_local(gmt: &str) -> String {
    NaiveDateTime::parse_from_str(gmt, "%Y-%m-%dT%H:%M:%S")
        .map(|t| {
            (t - chrono::Duration::hours(3))
                .format("%Y-%m-%dT%H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|_| gmt.to_string())
}

/// Merges JSON objects (keeps `json!` literals under the macro recursion limit).
fn merge<const N: usize>(parts: [Value; N]) -> Value {
    let mut out = Map::new();
    for part in parts {
        if let Value::Object(map) = part {
            out.extend(map);
        }
    }
    Value::Object(out)
}

fn links(resource: &str, id: u64) -> Value {
    json!({
        "self": [{ "href": format!("https://example.com/wp-json/wc/v3/{resource}/{id}") }],
        "collection": [{ "href": format!("https://example.com/wp-json/wc/v3/{resource}") }]
    })
}

/// An order as `GET /wc/v3/orders/{id}` returns it, i.e. the `order.*`
/// payload (§1.5); from the v3 "Create an order" response example (order
/// 727), with the billing name changed to "Zoë" so escaping matters.
///
/// Dates are `Y-m-d\TH:i:s` with no zone (§1.8); `*_gmt` are the inputs.
pub fn order_payload(
    id: u64,
    status: &str,
    date_created_gmt: &str,
    date_modified_gmt: &str,
) -> Value {
    merge([
        json!({
            "id": id,
            "parent_id": 0,
            "number": id.to_string(),
            "order_key": "wc_order_58d2d042d1d",
            "created_via": "rest-api",
            "version": "3.0.0",
            "status": status,
            "currency": "USD",
            "date_created": site_local(date_created_gmt),
            "date_created_gmt": date_created_gmt,
            "date_modified": site_local(date_modified_gmt),
            "date_modified_gmt": date_modified_gmt,
            "discount_total": "0.00",
            "discount_tax": "0.00",
            "shipping_total": "10.00",
            "shipping_tax": "0.00",
            "cart_tax": "1.35",
            "total": "29.35",
            "total_tax": "1.35",
            "prices_include_tax": false,
            "customer_id": 0,
            "customer_ip_address": "",
            "customer_user_agent": "",
            "customer_note": "",
        }),
        json!({
            "billing": {
                "first_name": "Zoë",
                "last_name": "Doe",
                "company": "",
                "address_1": "969 Market",
                "address_2": "",
                "city": "San Francisco",
                "state": "CA",
                "postcode": "94103",
                "country": "US",
                "email": "zoe.doe@example.com",
                "phone": "(555) 555-5555"
            },
            "shipping": {
                "first_name": "Zoë",
                "last_name": "Doe",
                "company": "",
                "address_1": "969 Market",
                "address_2": "",
                "city": "San Francisco",
                "state": "CA",
                "postcode": "94103",
                "country": "US"
            },
            "payment_method": "bacs",
            "payment_method_title": "Direct Bank Transfer",
            "transaction_id": "",
            "date_paid": site_local(date_modified_gmt),
            "date_paid_gmt": date_modified_gmt,
            "date_completed": null,
            "date_completed_gmt": null,
            "cart_hash": "",
            "meta_data": [
                { "id": 13106, "key": "_download_permissions_granted", "value": "yes" }
            ],
        }),
        json!({
            "line_items": [
                {
                    "id": 315,
                    "name": "Woo Single #1",
                    "product_id": 93,
                    "variation_id": 0,
                    "quantity": 2,
                    "tax_class": "",
                    "subtotal": "6.00",
                    "subtotal_tax": "0.45",
                    "total": "6.00",
                    "total_tax": "0.45",
                    "taxes": [{ "id": 75, "total": "0.45", "subtotal": "0.45" }],
                    "meta_data": [],
                    "sku": "",
                    "price": 3
                }
            ],
            "tax_lines": [
                {
                    "id": 318,
                    "rate_code": "US-CA-STATE TAX",
                    "rate_id": 75,
                    "label": "State Tax",
                    "compound": false,
                    "tax_total": "1.35",
                    "shipping_tax_total": "0.00",
                    "meta_data": []
                }
            ],
            "shipping_lines": [
                {
                    "id": 317,
                    "method_title": "Flat Rate",
                    "method_id": "flat_rate",
                    "total": "10.00",
                    "total_tax": "0.00",
                    "taxes": [],
                    "meta_data": []
                }
            ],
            "fee_lines": [],
            "coupon_lines": [],
            "refunds": [],
            "_links": links("orders", id)
        }),
    ])
}

/// A product as `GET /wc/v3/products/{id}` returns it (`product.*` payload,
/// §1.5); from the v3 "Retrieve a product" example (product 794), trimmed.
///
/// `price_html` and `permalink` carry `/` so the `\/` escaping matters.
pub fn product_payload(
    id: u64,
    name: &str,
    date_created_gmt: &str,
    date_modified_gmt: &str,
) -> Value {
    let slug = name.to_ascii_lowercase().replace(' ', "-");
    merge([
        json!({
            "id": id,
            "name": name,
            "slug": slug,
            "permalink": format!("https://example.com/product/{slug}/"),
            "date_created": site_local(date_created_gmt),
            "date_created_gmt": date_created_gmt,
            "date_modified": site_local(date_modified_gmt),
            "date_modified_gmt": date_modified_gmt,
            "type": "simple",
            "status": "publish",
            "featured": false,
            "catalog_visibility": "visible",
            "description": "<p>Pellentesque habitant morbi tristique senectus et netus et malesuada fames ac turpis egestas.</p>\n",
            "short_description": "<p>Pellentesque habitant morbi tristique senectus et netus et malesuada fames ac turpis egestas.</p>\n",
            "sku": "",
            "price": "21.99",
            "regular_price": "21.99",
            "sale_price": "",
            "date_on_sale_from": null,
            "date_on_sale_from_gmt": null,
            "date_on_sale_to": null,
            "date_on_sale_to_gmt": null,
            "price_html": "<span class=\"woocommerce-Price-amount amount\"><span class=\"woocommerce-Price-currencySymbol\">&#36;</span>21.99</span>",
            "on_sale": false,
            "purchasable": true,
            "total_sales": 0,
            "virtual": false,
            "downloadable": false,
            "downloads": [],
            "download_limit": -1,
            "download_expiry": -1,
            "external_url": "",
            "button_text": "",
        }),
        json!({
            "tax_status": "taxable",
            "tax_class": "",
            "manage_stock": false,
            "stock_quantity": null,
            "stock_status": "instock",
            "backorders": "no",
            "backorders_allowed": false,
            "backordered": false,
            "sold_individually": false,
            "weight": "",
            "dimensions": { "length": "", "width": "", "height": "" },
            "shipping_required": true,
            "shipping_taxable": true,
            "shipping_class": "",
            "shipping_class_id": 0,
            "reviews_allowed": true,
            "average_rating": "0.00",
            "rating_count": 0,
            "related_ids": [53, 40, 56, 479, 99],
            "upsell_ids": [],
            "cross_sell_ids": [],
            "parent_id": 0,
            "purchase_note": "",
            "categories": [
                { "id": 9, "name": "Clothing", "slug": "clothing" },
                { "id": 14, "name": "T-shirts", "slug": "t-shirts" }
            ],
            "tags": [],
            "images": [
                {
                    "id": 792,
                    "date_created": "2017-03-23T14:01:13",
                    "date_created_gmt": "2017-03-23T20:01:13",
                    "date_modified": "2017-03-23T14:01:13",
                    "date_modified_gmt": "2017-03-23T20:01:13",
                    "src": "https://example.com/wp-content/uploads/2017/03/T_2_front-4.jpg",
                    "name": "",
                    "alt": ""
                }
            ],
            "attributes": [],
            "default_attributes": [],
            "variations": [],
            "grouped_products": [],
            "menu_order": 0,
            "meta_data": [],
            "_links": links("products", id)
        }),
    ])
}

/// A customer as `GET /wc/v3/customers/{id}` returns it (`customer.*`
/// payload, §1.5); from the v3 "List all customers" example (João Silva).
pub fn customer_payload(
    id: u64,
    email: &str,
    date_created_gmt: &str,
    date_modified_gmt: &str,
) -> Value {
    json!({
        "id": id,
        "date_created": site_local(date_created_gmt),
        "date_created_gmt": date_created_gmt,
        "date_modified": site_local(date_modified_gmt),
        "date_modified_gmt": date_modified_gmt,
        "email": email,
        "first_name": "João",
        "last_name": "Silva",
        "role": "customer",
        "username": "joao.silva",
        "billing": {
            "first_name": "João",
            "last_name": "Silva",
            "company": "",
            "address_1": "Av. Brasil, 432",
            "address_2": "",
            "city": "Rio de Janeiro",
            "state": "RJ",
            "postcode": "12345-000",
            "country": "BR",
            "email": email,
            "phone": "(55) 5555-5555"
        },
        "shipping": {
            "first_name": "João",
            "last_name": "Silva",
            "company": "",
            "address_1": "Av. Brasil, 432",
            "address_2": "",
            "city": "Rio de Janeiro",
            "state": "RJ",
            "postcode": "12345-000",
            "country": "BR"
        },
        "is_paying_customer": false,
        "avatar_url": "https://secure.gravatar.com/avatar/be7b5febff88a2d947c3289e90cdf017?s=96",
        "meta_data": [],
        "_links": links("customers", id)
    })
}

/// A coupon as `GET /wc/v3/coupons/{id}` returns it (`coupon.*` payload,
/// §1.5); from the v3 "Create a coupon" example (coupon 719, `10off`).
pub fn coupon_payload(
    id: u64,
    code: &str,
    date_created_gmt: &str,
    date_modified_gmt: &str,
) -> Value {
    json!({
        "id": id,
        "code": code,
        "amount": "10.00",
        "date_created": site_local(date_created_gmt),
        "date_created_gmt": date_created_gmt,
        "date_modified": site_local(date_modified_gmt),
        "date_modified_gmt": date_modified_gmt,
        "discount_type": "percent",
        "description": "",
        "date_expires": null,
        "date_expires_gmt": null,
        "usage_count": 0,
        "individual_use": true,
        "product_ids": [],
        "excluded_product_ids": [],
        "usage_limit": null,
        "usage_limit_per_user": null,
        "limit_usage_to_x_items": null,
        "free_shipping": false,
        "product_categories": [],
        "excluded_product_categories": [],
        "exclude_sale_items": true,
        "minimum_amount": "100.00",
        "maximum_amount": "0.00",
        "email_restrictions": [],
        "used_by": [],
        "meta_data": [],
        "_links": links("coupons", id)
    })
}

/// The payload of every `*.deleted` topic: exactly `{"id": N}` (§1.5).
pub fn deleted_payload(id: u64) -> Value {
    json!({ "id": id })
}

/// The payload of `action.*` topics: `{"action": hook, "arg": arg}` (§1.5).
pub fn action_payload(hook: &str, arg: Value) -> Value {
    json!({ "action": hook, "arg": arg })
}

// ---------------------------------------------------------------------------
// Topics
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Store simulator
// ---------------------------------------------------------------------------

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

#[derive(Debug, Clone)]
struct Hook {
    id: u64,
    name: String,
    status: String,
    topic: String,
    delivery_url: String,
    secret: String,
    date_created: NaiveDateTime,
    date_modified: NaiveDateTime,
    failure_count: u32,
    pending_delivery: bool,
}

struct StoreState {
    consumer_key: String,
    consumer_secret: String,
    base_url: String,
    next_id: u64,
    hooks: BTreeMap<u64, Hook>,
    requests: usize,
    fail: Option<(u16, usize)>,
    pings: Vec<PingRecord>,
    ping_enabled: bool,
    /// Catalog objects by resource (`orders`, `products`, ...), by id.
    catalog: BTreeMap<&'static str, BTreeMap<u64, CatalogItem>>,
    /// Site UTC offset in hours (WordPress `gmt_offset`), for the
    /// non-`_gmt` date fields and columns.
    site_offset_hours: i32,
    /// Added before every response.
    delay: Duration,
    /// GET requests to a catalog collection route, whatever their outcome.
    list_calls: usize,
    /// Catalog changes waiting for a given list call to be answered.
    scheduled: Vec<(usize, CatalogOp)>,
}

/// A running WooCommerce store simulator serving the webhooks REST API
/// (§1.7) on `127.0.0.1`; it stops when dropped.
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

/// Starts a store that accepts these REST API credentials (§1.7).
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
        site_offset_hours: 0,
        delay: Duration::ZERO,
        list_calls: 0,
        scheduled: Vec::new(),
    }));
    let handler_state = state.clone();
    let handler: Handler = Arc::new(move |req: ApiRequest| -> BoxFuture {
        let state = handler_state.clone();
        Box::pin(async move { handle(state, req).await })
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

    /// The webhooks currently stored, by ascending id.
    pub fn registered(&self) -> Vec<RegisteredWebhook> {
        lock(&self.state)
            .hooks
            .values()
            .map(|h| RegisteredWebhook {
                id: h.id,
                topic: h.topic.clone(),
                delivery_url: h.delivery_url.clone(),
                secret: h.secret.clone(),
                status: h.status.clone(),
            })
            .collect()
    }

    /// How many HTTP requests the store's API has received.
    pub fn requests(&self) -> usize {
        lock(&self.state).requests
    }

    /// Makes the next `n` API calls answer `status` with a WordPress-style error body.
    pub fn fail_next(&self, status: u16, n: usize) {
        lock(&self.state).fail = (n > 0).then_some((status, n));
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
        match s.hooks.get_mut(&id) {
            Some(h) => {
                h.status = status.to_string();
                h.date_modified = now();
                true
            }
            None => false,
        }
    }

    /// Delivers `payload` to every `active` webhook whose topic is `topic`,
    /// once each, like `WC_Webhook::deliver()` (§1.1, §1.6): success is
    /// 200..=302; a failure bumps `failure_count`, and a failure found with
    /// `failure_count > 5` disables the webhook (the 7th in a row). No retries.
    pub async fn fire(&self, topic: &str, payload: &Value) -> Vec<FireRecord> {
        let targets: Vec<Hook> = lock(&self.state)
            .hooks
            .values()
            .filter(|h| h.status == "active" && h.topic == topic)
            .cloned()
            .collect();
        let source = self.source();
        let mut out = Vec::new();
        for hook in targets {
            let d = delivery(
                topic,
                &source,
                hook.id,
                &delivery_id(hook.id),
                &hook.secret,
                payload,
            );
            let (status, body) = send(&d, &hook.delivery_url).await;
            {
                let mut s = lock(&self.state);
                if let Some(h) = s.hooks.get_mut(&hook.id) {
                    if (200..303).contains(&status) {
                        h.failure_count = 0;
                    } else if h.failure_count > 5 {
                        h.status = "disabled".to_string();
                    } else {
                        h.failure_count += 1;
                    }
                }
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

fn now() -> NaiveDateTime {
    Utc::now().naive_utc()
}

fn wc_date(t: &NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
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

/// A WordPress REST error response: `{"code","message","data":{"status"}}`.
fn wp_error(status: u16, code: &str, message: &str) -> ApiResponse {
    wp_error_data(status, code, message, json!({ "status": status }))
}

fn wp_error_data(status: u16, code: &str, message: &str, data: Value) -> ApiResponse {
    wp_json(
        status,
        &json!({ "code": code, "message": message, "data": data }),
    )
}

/// A WordPress REST JSON response (encoded by `wp_json_encode`).
fn wp_json(status: u16, body: &Value) -> ApiResponse {
    ApiResponse {
        status,
        headers: vec![(
            "Content-Type".to_string(),
            "application/json; charset=UTF-8".to_string(),
        )],
        body: php_json_encode(body),
    }
}

fn injected_error(status: u16) -> ApiResponse {
    match status {
        401 => wp_error(
            401,
            "woocommerce_rest_authentication_error",
            "Consumer secret is invalid.",
        ),
        403 => wp_error(
            403,
            "woocommerce_rest_cannot_create",
            "Sorry, you are not allowed to create resources.",
        ),
        404 => wp_error(
            404,
            "rest_no_route",
            "No route was found matching the URL and request method.",
        ),
        500 => wp_error(
            500,
            "internal_server_error",
            "<p>There has been a critical error on this website.</p>",
        ),
        s => wp_error(s, "simulated_error", "Simulated failure."),
    }
}

fn hook_json(base_url: &str, h: &Hook) -> Value {
    let (resource, event) = h.topic.split_once('.').unwrap_or((h.topic.as_str(), ""));
    json!({
        "id": h.id,
        "name": h.name,
        "status": h.status,
        "topic": h.topic,
        "resource": resource,
        "event": event,
        "hooks": topic_hooks(&h.topic),
        "delivery_url": h.delivery_url,
        "date_created": wc_date(&h.date_created),
        "date_created_gmt": wc_date(&h.date_created),
        "date_modified": wc_date(&h.date_modified),
        "date_modified_gmt": wc_date(&h.date_modified),
        "_links": {
            "self": [{ "href": format!("{base_url}{WEBHOOKS_PATH}/{}", h.id) }],
            "collection": [{ "href": format!("{base_url}{WEBHOOKS_PATH}") }]
        }
    })
}

enum Route {
    Collection,
    Item(u64),
}

/// The REST route of a request: `/wp-json/<route>` or `?rest_route=<route>`.
fn rest_route(req: &ApiRequest) -> Option<String> {
    if let Some(r) = req.path.strip_prefix("/wp-json") {
        return Some(r.to_string());
    }
    if req.path == "/" || req.path == "/index.php" {
        return query_pairs(req)
            .into_iter()
            .find(|(k, _)| k == "rest_route")
            .map(|(_, v)| v);
    }
    None
}

fn query_pairs(req: &ApiRequest) -> Vec<(String, String)> {
    url::form_urlencoded::parse(req.query.as_deref().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn match_route(route: &str) -> Option<Route> {
    let route = route.trim_end_matches('/');
    let rest = route.strip_prefix("/wc/v3/webhooks")?;
    if rest.is_empty() {
        return Some(Route::Collection);
    }
    let id = rest.strip_prefix('/')?;
    if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
        return id.parse().ok().map(Route::Item);
    }
    None
}

enum Auth {
    /// Valid credentials.
    User,
    /// No (known) credentials: permission checks fail with 401.
    Anonymous,
}

/// `WC_REST_Authentication::perform_basic_authentication()`.
fn authenticate(s: &StoreState, req: &ApiRequest) -> Result<Auth, ApiResponse> {
    let from_header = req
        .header("authorization")
        .and_then(|h| {
            let (scheme, rest) = h.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("basic")
                .then(|| STANDARD.decode(rest.trim()).ok())
                .flatten()
        })
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|pair| {
            let (k, v) = pair.split_once(':')?;
            Some((k.to_string(), v.to_string()))
        });
    let (key, secret) = match from_header {
        Some(kv) => kv,
        None => {
            let q = query_pairs(req);
            let get = |name: &str| {
                q.iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            (get("consumer_key"), get("consumer_secret"))
        }
    };
    if key.is_empty() || secret.is_empty() || key != s.consumer_key {
        return Ok(Auth::Anonymous);
    }
    if secret != s.consumer_secret {
        return Err(wp_error(
            401,
            "woocommerce_rest_authentication_error",
            "Consumer secret is invalid.",
        ));
    }
    Ok(Auth::User)
}

/// Request parameters as `WP_REST_Request` merges them: query, then a form
/// or JSON body (JSON is parsed only for `application/json`).
fn params(req: &ApiRequest) -> Result<Map<String, Value>, ApiResponse> {
    let mut out = Map::new();
    for (k, v) in query_pairs(req) {
        out.insert(k, Value::String(v));
    }
    let media = req
        .header("content-type")
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media == "application/x-www-form-urlencoded" {
        for (k, v) in url::form_urlencoded::parse(&req.body) {
            out.insert(k.into_owned(), Value::String(v.into_owned()));
        }
    } else if media == "application/json" && !req.body.iter().all(u8::is_ascii_whitespace) {
        match serde_json::from_slice::<Value>(&req.body) {
            Ok(Value::Object(map)) => out.extend(map),
            Ok(_) => {}
            Err(e) => {
                return Err(wp_error_data(
                    400,
                    "rest_invalid_json",
                    "Invalid JSON body passed.",
                    json!({ "status": 400, "json_error_code": 4, "json_error_message": e.to_string() }),
                ))
            }
        }
    }
    Ok(out)
}

fn invalid_param(name: &str, reason: &str) -> ApiResponse {
    wp_error_data(
        400,
        "rest_invalid_param",
        &format!("Invalid parameter(s): {name}"),
        json!({ "status": 400, "params": { name: reason } }),
    )
}

/// Type-checks string args the way REST arg validation does.
fn string_params(p: &Map<String, Value>, names: &[&str]) -> Result<(), ApiResponse> {
    for name in names {
        if let Some(v) = p.get(*name) {
            if !v.is_string() {
                return Err(invalid_param(
                    name,
                    &format!("{name} is not of type string."),
                ));
            }
        }
    }
    if let Some(Value::String(status)) = p.get("status") {
        if !["active", "paused", "disabled"].contains(&status.as_str()) {
            return Err(invalid_param(
                "status",
                "status is not one of active, paused, and disabled.",
            ));
        }
    }
    Ok(())
}

fn str_param<'a>(p: &'a Map<String, Value>, name: &str) -> &'a str {
    p.get(name).and_then(Value::as_str).unwrap_or("")
}

/// `wc_is_valid_url()`: starts with http(s):// and is a valid URL.
fn is_valid_url(u: &str) -> bool {
    (u.starts_with("http://") || u.starts_with("https://"))
        && url::Url::parse(u).is_ok_and(|p| p.host_str().is_some_and(|h| !h.is_empty()))
}

fn cannot(method: &Method, item: bool) -> ApiResponse {
    let (code, message) = match *method {
        Method::GET if item => (
            "woocommerce_rest_cannot_view",
            "Sorry, you cannot view this resource.",
        ),
        Method::GET => (
            "woocommerce_rest_cannot_view",
            "Sorry, you cannot list resources.",
        ),
        Method::DELETE => (
            "woocommerce_rest_cannot_delete",
            "Sorry, you are not allowed to delete this resource.",
        ),
        _ if item => (
            "woocommerce_rest_cannot_edit",
            "Sorry, you are not allowed to edit this resource.",
        ),
        _ => (
            "woocommerce_rest_cannot_create",
            "Sorry, you are not allowed to create resources.",
        ),
    };
    wp_error(401, code, message)
}

fn no_route() -> ApiResponse {
    wp_error(
        404,
        "rest_no_route",
        "No route was found matching the URL and request method.",
    )
}

async fn handle(state: Arc<Mutex<StoreState>>, req: ApiRequest) -> ApiResponse {
    let delay = lock(&state).delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let is_list = req.method == Method::GET
        && rest_route(&req)
            .and_then(|r| catalog_route(&r))
            .is_some_and(|(_, item)| item.is_none());
    let call = is_list.then(|| {
        let mut s = lock(&state);
        s.list_calls += 1;
        s.list_calls
    });
    let resp = handle_request(&state, req).await;
    if let Some(n) = call {
        run_scheduled(&mut lock(&state), n);
    }
    resp
}

async fn handle_request(state: &Arc<Mutex<StoreState>>, req: ApiRequest) -> ApiResponse {
    {
        let mut s = lock(state);
        s.requests += 1;
        if let Some((status, n)) = s.fail {
            s.fail = (n > 1).then_some((status, n - 1));
            return injected_error(status);
        }
    }
    let Some(route) = rest_route(&req) else {
        return ApiResponse {
            status: 404,
            headers: vec![("Content-Type".into(), "text/html; charset=UTF-8".into())],
            body: b"<html><body>Page not found</body></html>".to_vec(),
        };
    };
    let auth = match authenticate(&lock(state), &req) {
        Ok(a) => a,
        Err(resp) => return resp,
    };
    if let Some((resource, item)) = catalog_route(&route) {
        return catalog_request(state, &req, auth, resource, item);
    }
    let Some(route) = match_route(&route) else {
        return no_route();
    };
    let params = match params(&req) {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    match (route, req.method.clone()) {
        (Route::Collection, Method::GET) => {
            if let Auth::Anonymous = auth {
                return cannot(&req.method, false);
            }
            list(state, &params)
        }
        (Route::Collection, Method::POST) => {
            let missing: Vec<&str> = ["topic", "delivery_url"]
                .into_iter()
                .filter(|n| !params.contains_key(*n))
                .collect();
            if !missing.is_empty() {
                return wp_error_data(
                    400,
                    "rest_missing_callback_param",
                    &format!("Missing parameter(s): {}", missing.join(", ")),
                    json!({ "status": 400, "params": missing }),
                );
            }
            if let Err(resp) = string_params(
                &params,
                &["name", "topic", "delivery_url", "secret", "status"],
            ) {
                return resp;
            }
            if let Auth::Anonymous = auth {
                return cannot(&req.method, false);
            }
            create(state, &params).await
        }
        (Route::Item(id), Method::GET) => {
            if let Auth::Anonymous = auth {
                return cannot(&req.method, true);
            }
            if id == 0 {
                return wp_error(
                    404,
                    "woocommerce_rest_shop_webhook_invalid_id",
                    "Invalid ID.",
                );
            }
            let s = lock(state);
            match s.hooks.get(&id) {
                Some(h) => wp_json(200, &hook_json(&s.base_url, h)),
                None => wp_error(
                    400,
                    "woocommerce_rest_shop_webhook_invalid_id",
                    "ID is invalid.",
                ),
            }
        }
        (Route::Item(id), Method::POST | Method::PUT | Method::PATCH) => {
            if let Err(resp) = string_params(
                &params,
                &["name", "topic", "delivery_url", "secret", "status"],
            ) {
                return resp;
            }
            if let Auth::Anonymous = auth {
                return cannot(&req.method, true);
            }
            update(state, id, &params)
        }
        (Route::Item(id), Method::DELETE) => {
            let force = match params.get("force") {
                None => false,
                Some(Value::Bool(b)) => *b,
                Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
                    "true" | "1" => true,
                    "false" | "0" | "" => false,
                    _ => return invalid_param("force", "force is not of type boolean."),
                },
                Some(_) => return invalid_param("force", "force is not of type boolean."),
            };
            if let Auth::Anonymous = auth {
                return cannot(&req.method, true);
            }
            if !force {
                return wp_error(
                    501,
                    "woocommerce_rest_trash_not_supported",
                    "Webhooks do not support trashing.",
                );
            }
            let mut s = lock(state);
            match s.hooks.remove(&id) {
                Some(h) => wp_json(200, &hook_json(&s.base_url, &h)),
                None => wp_error(
                    404,
                    "woocommerce_rest_shop_webhook_invalid_id",
                    "Invalid ID.",
                ),
            }
        }
        _ => no_route(),
    }
}

fn list(state: &Mutex<StoreState>, params: &Map<String, Value>) -> ApiResponse {
    let int_param = |name: &str, default: u64| -> Result<u64, ApiResponse> {
        match params.get(name) {
            None => Ok(default),
            Some(v) => v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                .ok_or_else(|| invalid_param(name, &format!("{name} is not of type integer."))),
        }
    };
    let per_page = match int_param("per_page", 10) {
        Ok(n) if (1..=100).contains(&n) => n,
        Ok(_) => {
            return invalid_param(
                "per_page",
                "per_page must be between 1 (inclusive) and 100 (inclusive)",
            )
        }
        Err(resp) => return resp,
    };
    let page = match int_param("page", 1) {
        Ok(n) if n >= 1 => n,
        Ok(_) => return invalid_param("page", "page must be greater than or equal to 1"),
        Err(resp) => return resp,
    };
    let status = str_param(params, "status");
    let status = if status.is_empty() { "all" } else { status };
    if !["all", "active", "paused", "disabled"].contains(&status) {
        return invalid_param(
            "status",
            "status is not one of all, active, paused, and disabled.",
        );
    }
    let s = lock(state);
    // Default orderby=date, order=desc (ids break ties).
    let mut hooks: Vec<&Hook> = s
        .hooks
        .values()
        .filter(|h| status == "all" || h.status == status)
        .collect();
    hooks.sort_by_key(|h| std::cmp::Reverse((h.date_created, h.id)));
    let total = hooks.len() as u64;
    let pages = total.div_ceil(per_page);
    let items: Vec<Value> = hooks
        .into_iter()
        .skip(((page - 1) * per_page) as usize)
        .take(per_page as usize)
        .map(|h| hook_json(&s.base_url, h))
        .collect();
    let mut resp = wp_json(200, &Value::Array(items));
    resp.headers.push(("X-WP-Total".into(), total.to_string()));
    resp.headers
        .push(("X-WP-TotalPages".into(), pages.to_string()));
    let base = format!("{}{}", s.base_url, WEBHOOKS_PATH);
    let mut links = Vec::new();
    if page > 1 {
        links.push(format!(
            "<{base}?per_page={per_page}&page={}>; rel=\"prev\"",
            (page - 1).min(pages.max(1))
        ));
    }
    if pages > page {
        links.push(format!(
            "<{base}?per_page={per_page}&page={}>; rel=\"next\"",
            page + 1
        ));
    }
    if !links.is_empty() {
        resp.headers.push(("Link".into(), links.join(", ")));
    }
    resp
}

async fn create(state: &Mutex<StoreState>, params: &Map<String, Value>) -> ApiResponse {
    let topic = str_param(params, "topic");
    if topic.is_empty() || !is_valid_topic(&topic.to_lowercase()) {
        return wp_error(
            400,
            "woocommerce_rest_shop_webhook_invalid_topic",
            "Webhook topic is required and must be valid.",
        );
    }
    let delivery_url = str_param(params, "delivery_url");
    if delivery_url.is_empty() || !is_valid_url(delivery_url) {
        return wp_error(
            400,
            "woocommerce_rest_shop_webhook_invalid_delivery_url",
            "Webhook delivery URL must be a valid URL starting with http:// or https://.",
        );
    }
    let created = now();
    let (resp, ping_to) = {
        let mut s = lock(state);
        let id = s.next_id;
        s.next_id += 1;
        let name = match str_param(params, "name") {
            "" => format!(
                "Webhook created on {}",
                created.format("%b %d, %Y @ %I:%M %p")
            ),
            n => n.to_string(),
        };
        let secret = match str_param(params, "secret") {
            "" => generate_secret(),
            given => given.to_string(),
        };
        let hook = Hook {
            id,
            name,
            // create_item ignores the requested status (§1.7).
            status: "active".to_string(),
            // WC_Webhook::set_topic() keeps only a topic valid as given.
            topic: if is_valid_topic(topic) {
                topic.to_string()
            } else {
                String::new()
            },
            delivery_url: delivery_url.to_string(),
            secret,
            date_created: created,
            date_modified: created,
            failure_count: 0,
            pending_delivery: true,
        };
        let mut resp = wp_json(201, &hook_json(&s.base_url, &hook));
        resp.headers.push((
            "Location".into(),
            format!("{}{}/{}", s.base_url, WEBHOOKS_PATH, id),
        ));
        s.hooks.insert(id, hook);
        (resp, s.ping_enabled.then(|| (id, delivery_url.to_string())))
    };
    // The ping is sent synchronously, after saving, before the 201 (§1.3).
    if let Some((id, url)) = ping_to {
        // Pings follow up to 5 redirects, 5 s timeout, HTTP/1.0 (§1.3).
        let (status, _) = post(
            &ping(id),
            &url,
            reqwest::redirect::Policy::limited(5),
            5,
            true,
        )
        .await;
        let status = (status != 0).then_some(status);
        let mut s = lock(state);
        if status == Some(200) {
            if let Some(h) = s.hooks.get_mut(&id) {
                h.pending_delivery = false;
            }
        }
        s.pings.push(PingRecord {
            webhook_id: id,
            delivery_url: url,
            status,
        });
    }
    resp
}

fn update(state: &Mutex<StoreState>, id: u64, params: &Map<String, Value>) -> ApiResponse {
    let invalid_id = || {
        wp_error(
            400,
            "woocommerce_rest_shop_webhook_invalid_id",
            "ID is invalid.",
        )
    };
    let mut s = lock(state);
    let base_url = s.base_url.clone();
    let Some(mut hook) = s.hooks.get(&id).cloned() else {
        return invalid_id();
    };
    let topic = str_param(params, "topic");
    if !topic.is_empty() {
        if !is_valid_topic(&topic.to_lowercase()) {
            return wp_error(
                400,
                "woocommerce_rest_shop_webhook_invalid_topic",
                "Webhook topic must be valid.",
            );
        }
        hook.topic = if is_valid_topic(topic) {
            topic.to_string()
        } else {
            String::new()
        };
    }
    let delivery_url = str_param(params, "delivery_url");
    if !delivery_url.is_empty() {
        if !is_valid_url(delivery_url) {
            return wp_error(
                400,
                "woocommerce_rest_shop_webhook_invalid_delivery_url",
                "Webhook delivery URL must be a valid URL starting with http:// or https://.",
            );
        }
        hook.delivery_url = delivery_url.to_string();
    }
    let secret = str_param(params, "secret");
    if !secret.is_empty() {
        hook.secret = secret.to_string();
    }
    let status = str_param(params, "status");
    if !status.is_empty() {
        hook.status = status.to_string();
        if status == "active" {
            hook.failure_count = 0;
        }
    }
    let name = str_param(params, "name");
    if !name.is_empty() {
        hook.name = name.to_string();
    }
    hook.date_modified = now();
    let body = hook_json(&base_url, &hook);
    s.hooks.insert(id, hook);
    wp_json(200, &body)
}

// ---------------------------------------------------------------------------
// Catalog: the v3 list endpoints a poller uses (docs/vendors/polling.md §1)
// ---------------------------------------------------------------------------

/// Resources with a simulated v3 collection at `/wp-json/wc/v3/{resource}`.
pub const CATALOG_RESOURCES: [&str; 4] = ["orders", "products", "customers", "coupons"];

/// A catalog object as the store holds it (dates at one-second resolution,
/// like the MySQL `DATETIME` columns).
#[derive(Debug, Clone)]
struct CatalogItem {
    id: u64,
    created_gmt: NaiveDateTime,
    modified_gmt: NaiveDateTime,
    /// `processing` for orders, `publish` for products and coupons, `trash`
    /// once deleted; unused for customers (deleted customers are removed).
    status: String,
}

#[derive(Debug, Clone)]
enum CatalogOp {
    Upsert {
        resource: &'static str,
        id: u64,
        modified_gmt: NaiveDateTime,
        created_gmt: NaiveDateTime,
    },
    Delete {
        resource: &'static str,
        id: u64,
    },
}

fn catalog_resource(resource: &str) -> &'static str {
    CATALOG_RESOURCES
        .into_iter()
        .find(|r| *r == resource)
        .unwrap_or_else(|| panic!("unknown WooCommerce resource {resource:?}"))
}

fn whole_seconds(t: NaiveDateTime) -> NaiveDateTime {
    t.with_nanosecond(0).unwrap_or(t)
}

fn apply_op(s: &mut StoreState, op: CatalogOp) {
    match op {
        CatalogOp::Upsert {
            resource,
            id,
            modified_gmt,
            created_gmt,
        } => {
            let status = match resource {
                "orders" => "processing",
                "customers" => "",
                _ => "publish",
            };
            s.catalog.entry(resource).or_default().insert(
                id,
                CatalogItem {
                    id,
                    created_gmt: whole_seconds(created_gmt),
                    modified_gmt: whole_seconds(modified_gmt),
                    status: status.to_string(),
                },
            );
        }
        CatalogOp::Delete { resource, id } => {
            let items = s.catalog.entry(resource).or_default();
            if resource == "customers" {
                // WP users have no trash.
                items.remove(&id);
            } else if let Some(item) = items.get_mut(&id) {
                // `wp_trash_post` / `woocommerce_trash_order` (§1.4 of webhooks.md).
                item.status = "trash".to_string();
            }
        }
    }
}

fn run_scheduled(s: &mut StoreState, answered: usize) {
    let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut s.scheduled)
        .into_iter()
        .partition(|(after, _)| *after <= answered);
    s.scheduled = later;
    for (_, op) in due {
        apply_op(s, op);
    }
}

impl WooStore {
    /// `{base_url}/wp-json/wc/v3/{resource}`.
    pub fn catalog_url(&self, resource: &str) -> String {
        format!(
            "{}/wp-json/wc/v3/{}",
            self.base_url,
            catalog_resource(resource)
        )
    }

    /// Creates or modifies an object of `resource` (`orders`, `products`,
    /// `customers` or `coupons`); times are GMT and kept to the second. An
    /// upsert of a trashed object restores it (status back to the default).
    pub fn upsert(
        &self,
        resource: &str,
        id: u64,
        modified_gmt: NaiveDateTime,
        created_gmt: NaiveDateTime,
    ) {
        apply_op(
            &mut lock(&self.state),
            CatalogOp::Upsert {
                resource: catalog_resource(resource),
                id,
                modified_gmt,
                created_gmt,
            },
        );
    }

    /// Deletes an object the way the store's UI does: orders, products and
    /// coupons move to the trash (hidden from `status=any` lists); customers
    /// are removed.
    pub fn delete(&self, resource: &str, id: u64) {
        apply_op(
            &mut lock(&self.state),
            CatalogOp::Delete {
                resource: catalog_resource(resource),
                id,
            },
        );
    }

    /// Objects of `resource` a default list shows (trashed ones excluded).
    pub fn object_count(&self, resource: &str) -> usize {
        lock(&self.state)
            .catalog
            .get(catalog_resource(resource))
            .map_or(0, |m| m.values().filter(|i| i.status != "trash").count())
    }

    /// The site's UTC offset in hours (default 0), used for the site-local
    /// `date_created`/`date_modified` fields and the non-GMT filter columns.
    pub fn set_site_offset_hours(&self, hours: i32) {
        lock(&self.state).site_offset_hours = hours;
    }

    /// Delays every response by `d` (default none).
    pub fn set_delay(&self, d: Duration) {
        lock(&self.state).delay = d;
    }

    /// GET requests to a catalog collection so far (whatever their outcome,
    /// injected failures included).
    pub fn list_calls(&self) -> usize {
        lock(&self.state).list_calls
    }

    /// Applies [`upsert`](Self::upsert) right after list call number
    /// `after_calls` (1-based, counted by [`list_calls`](Self::list_calls)) is
    /// answered, i.e. between two pages of a scan; at once if already past.
    pub fn schedule_upsert_after_calls(
        &self,
        after_calls: usize,
        resource: &str,
        id: u64,
        modified_gmt: NaiveDateTime,
        created_gmt: NaiveDateTime,
    ) {
        self.schedule(
            after_calls,
            CatalogOp::Upsert {
                resource: catalog_resource(resource),
                id,
                modified_gmt,
                created_gmt,
            },
        );
    }

    /// Like [`schedule_upsert_after_calls`](Self::schedule_upsert_after_calls)
    /// for [`delete`](Self::delete).
    pub fn schedule_delete_after_calls(&self, after_calls: usize, resource: &str, id: u64) {
        self.schedule(
            after_calls,
            CatalogOp::Delete {
                resource: catalog_resource(resource),
                id,
            },
        );
    }

    fn schedule(&self, after_calls: usize, op: CatalogOp) {
        let mut s = lock(&self.state);
        s.scheduled.push((after_calls, op));
        let answered = s.list_calls;
        run_scheduled(&mut s, answered);
    }
}

/// `/wc/v3/{resource}` → (resource, None); `/wc/v3/{resource}/{id}` → (resource, Some(id)).
fn catalog_route(route: &str) -> Option<(&'static str, Option<u64>)> {
    let rest = route.trim_end_matches('/').strip_prefix("/wc/v3/")?;
    let (name, id) = match rest.split_once('/') {
        Some((name, id)) => (name, Some(id)),
        None => (rest, None),
    };
    let resource = CATALOG_RESOURCES.into_iter().find(|r| *r == name)?;
    match id {
        None => Some((resource, None)),
        Some(id) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => {
            id.parse().ok().map(|n| (resource, Some(n)))
        }
        Some(_) => None,
    }
}

/// Query parameters as PHP parses them: a later duplicate replaces the value
/// but keeps the first position.
fn php_query(req: &ApiRequest) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in query_pairs(req) {
        match out.iter_mut().find(|(key, _)| *key == k) {
            Some(slot) => slot.1 = v,
            None => out.push((k, v)),
        }
    }
    out
}

/// `wp_sprintf_l('%l', $items)`: "a", "a and b", "a, b, and c".
fn wp_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => one.to_string(),
        [a, b] => format!("{a} and {b}"),
        [init @ .., last] => format!("{}, and {last}", init.join(", ")),
    }
}

/// Collects REST arg validation failures like `WP_REST_Request::has_valid_params`.
#[derive(Default)]
struct ArgErrors(Vec<(String, String)>);

impl ArgErrors {
    fn push(&mut self, name: &str, reason: String) {
        self.0.push((name.to_string(), reason));
    }

    fn into_response(self) -> Option<ApiResponse> {
        if self.0.is_empty() {
            return None;
        }
        let names: Vec<&str> = self.0.iter().map(|(n, _)| n.as_str()).collect();
        let params: Map<String, Value> = self
            .0
            .iter()
            .map(|(n, r)| (n.clone(), Value::String(r.clone())))
            .collect();
        Some(wp_error_data(
            400,
            "rest_invalid_param",
            &format!("Invalid parameter(s): {}", names.join(", ")),
            json!({ "status": 400, "params": params }),
        ))
    }
}

/// `rest_is_integer` + minimum/maximum checks, with WordPress's messages.
fn int_arg(
    q: &[(String, String)],
    errors: &mut ArgErrors,
    name: &str,
    min: Option<i64>,
    max: Option<i64>,
) -> Option<i64> {
    let raw = q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())?;
    let Ok(n) = raw.trim().parse::<i64>() else {
        errors.push(name, format!("{name} is not of type integer."));
        return None;
    };
    match (min, max) {
        (Some(lo), Some(hi)) if n < lo || n > hi => {
            errors.push(
                name,
                format!("{name} must be between {lo} (inclusive) and {hi} (inclusive)"),
            );
            None
        }
        (Some(lo), None) if n < lo => {
            errors.push(
                name,
                format!("{name} must be greater than or equal to {lo}"),
            );
            None
        }
        _ => Some(n),
    }
}

fn enum_arg<'a>(
    q: &'a [(String, String)],
    errors: &mut ArgErrors,
    name: &str,
    allowed: &[&str],
) -> Option<&'a str> {
    let raw = q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())?;
    if allowed.contains(&raw) {
        Some(raw)
    } else {
        errors.push(name, format!("{name} is not one of {}.", wp_list(allowed)));
        None
    }
}

/// `rest_parse_date()`'s RFC 3339 pattern
/// `^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}(?::\d{2})?)?$`;
/// returns the wall-clock time (fraction dropped) and the offset in seconds
/// if one was given.
fn parse_rest_date(s: &str) -> Option<(NaiveDateTime, Option<i32>)> {
    let b = s.as_bytes();
    let digits = |from: usize, to: usize| {
        b.get(from..to)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    };
    let at = |i: usize, c: &[u8]| b.get(i).is_some_and(|x| c.contains(x));
    if !(digits(0, 4)
        && at(4, b"-")
        && digits(5, 7)
        && at(7, b"-")
        && digits(8, 10)
        && at(10, b"Tt ")
        && digits(11, 13)
        && at(13, b":")
        && digits(14, 16)
        && at(16, b":")
        && digits(17, 19))
    {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        rest = &frac[n..];
    }
    let offset = match rest.as_bytes() {
        [] => None,
        [b'Z'] => Some(0),
        [sign @ (b'+' | b'-'), h1, h2, tail @ ..] if h1.is_ascii_digit() && h2.is_ascii_digit() => {
            let hours = i32::from((h1 - b'0') * 10 + (h2 - b'0'));
            let minutes = match tail {
                [] => 0,
                [b':', m1, m2] if m1.is_ascii_digit() && m2.is_ascii_digit() => {
                    i32::from((m1 - b'0') * 10 + (m2 - b'0'))
                }
                _ => return None,
            };
            let secs = hours * 3600 + minutes * 60;
            Some(if *sign == b'-' { -secs } else { secs })
        }
        _ => return None,
    };
    let wall =
        NaiveDateTime::parse_from_str(&format!("{} {}", &s[..10], &s[11..19]), "%Y-%m-%d %H:%M:%S")
            .ok()?;
    Some((wall, offset))
}

/// `WP_Date_Query::build_mysql_datetime()` for a full date-time string:
/// `date_create($value, wp_timezone())` then formatted in the site zone, so
/// a value with an offset is converted to SITE-LOCAL time and a value
/// without one is taken as it is, whichever column it is compared with.
fn date_query_bound(
    q: &[(String, String)],
    errors: &mut ArgErrors,
    name: &str,
    site_offset_hours: i32,
) -> Option<NaiveDateTime> {
    let raw = q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())?;
    match parse_rest_date(raw) {
        Some((wall, None)) => Some(wall),
        Some((wall, Some(offset))) => Some(
            wall - chrono::Duration::seconds(i64::from(offset))
                + chrono::Duration::hours(i64::from(site_offset_hours)),
        ),
        None => {
            errors.push(name, "Invalid date.".to_string());
            None
        }
    }
}

/// `rest_is_boolean` + `rest_sanitize_boolean`.
fn bool_arg(q: &[(String, String)], errors: &mut ArgErrors, name: &str) -> Option<bool> {
    let raw = q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())?;
    match raw.to_ascii_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => {
            errors.push(name, format!("{name} is not of type boolean."));
            None
        }
    }
}

/// `wp_parse_id_list`: split on commas/spaces, `absint` each, unique.
fn id_list(q: &[(String, String)], name: &str) -> Vec<u64> {
    let raw = q
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str());
    let mut out: Vec<u64> = Vec::new();
    for token in raw.split([',', ' ']).filter(|t| !t.is_empty()) {
        let digits: String = token
            .trim_start_matches('-')
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        let n = digits.parse().unwrap_or(0);
        if !out.contains(&n) {
            out.push(n);
        }
    }
    out
}

const ORDER_STATUSES: [&str; 10] = [
    "any",
    "trash",
    "pending",
    "processing",
    "on-hold",
    "completed",
    "cancelled",
    "refunded",
    "failed",
    "checkout-draft",
];
const PRODUCT_STATUSES: [&str; 7] = [
    "any", "future", "trash", "draft", "pending", "private", "publish",
];
const POST_ORDERBY: [&str; 6] = ["date", "id", "include", "title", "slug", "modified"];
const PRODUCT_ORDERBY: [&str; 10] = [
    "date",
    "id",
    "include",
    "title",
    "slug",
    "modified",
    "menu_order",
    "price",
    "popularity",
    "rating",
];
const CUSTOMER_ORDERBY: [&str; 4] = ["id", "include", "name", "registered_date"];

/// A validated list request.
struct ListArgs {
    per_page: u64,
    page: u64,
    offset: Option<u64>,
    desc: bool,
    orderby: String,
    include: Vec<u64>,
    exclude: Vec<u64>,
    /// Post statuses to show; `None` = WP_Query `any` (everything but trash).
    statuses: Option<Vec<String>>,
    use_gmt: bool,
    after: Option<NaiveDateTime>,
    before: Option<NaiveDateTime>,
    modified_after: Option<NaiveDateTime>,
    modified_before: Option<NaiveDateTime>,
}

/// Validates in `get_collection_params()` order; arguments a controller does
/// not register are ignored (for customers that includes every date filter).
fn list_args(
    resource: &str,
    q: &[(String, String)],
    site_offset_hours: i32,
) -> Result<ListArgs, ApiResponse> {
    let mut errors = ArgErrors::default();
    let customers = resource == "customers";
    let page = int_arg(q, &mut errors, "page", Some(1), None).unwrap_or(1);
    let per_page = int_arg(q, &mut errors, "per_page", Some(1), Some(100)).unwrap_or(10);
    let mut args = ListArgs {
        per_page: per_page as u64,
        page: page as u64,
        offset: None,
        desc: !customers,
        orderby: if customers { "name" } else { "date" }.to_string(),
        include: Vec::new(),
        exclude: Vec::new(),
        statuses: None,
        use_gmt: false,
        after: None,
        before: None,
        modified_after: None,
        modified_before: None,
    };
    if !customers {
        args.after = date_query_bound(q, &mut errors, "after", site_offset_hours);
        args.before = date_query_bound(q, &mut errors, "before", site_offset_hours);
        args.modified_after = date_query_bound(q, &mut errors, "modified_after", site_offset_hours);
        args.modified_before =
            date_query_bound(q, &mut errors, "modified_before", site_offset_hours);
        args.use_gmt = bool_arg(q, &mut errors, "dates_are_gmt").unwrap_or(false);
    }
    args.exclude = id_list(q, "exclude");
    args.include = id_list(q, "include");
    args.offset = int_arg(q, &mut errors, "offset", None, None).map(|n| n.unsigned_abs());
    if let Some(order) = enum_arg(q, &mut errors, "order", &["asc", "desc"]) {
        args.desc = order == "desc";
    }
    let orderby: &[&str] = match resource {
        "customers" => &CUSTOMER_ORDERBY,
        "products" => &PRODUCT_ORDERBY,
        _ => &POST_ORDERBY,
    };
    if let Some(o) = enum_arg(q, &mut errors, "orderby", orderby) {
        args.orderby = o.to_string();
    }
    match resource {
        "orders" => {
            // v3: `status` is an array of enum strings (comma list accepted).
            if let Some((_, raw)) = q.iter().find(|(k, _)| k == "status") {
                let mut statuses = Vec::new();
                for (i, s) in raw.split(',').map(str::trim).enumerate() {
                    if ORDER_STATUSES.contains(&s) {
                        statuses.push(s.to_string());
                    } else {
                        errors.push(
                            "status",
                            format!("status[{i}] is not one of {}.", wp_list(&ORDER_STATUSES)),
                        );
                        break;
                    }
                }
                if !statuses.iter().any(|s| s == "any") {
                    args.statuses = Some(statuses);
                }
            }
        }
        "products" => {
            if let Some(s) = enum_arg(q, &mut errors, "status", &PRODUCT_STATUSES) {
                if s != "any" {
                    args.statuses = Some(vec![s.to_string()]);
                }
            }
        }
        _ => {}
    }
    match errors.into_response() {
        Some(resp) => Err(resp),
        None => Ok(args),
    }
}

/// The title/slug WordPress sorts by (approximations for orders).
fn post_title(resource: &str, item: &CatalogItem, offset_hours: i32) -> String {
    match resource {
        "products" => format!("Product {}", item.id),
        "coupons" => format!("coupon{}", item.id),
        _ => format!(
            "Order &ndash; {}",
            site_time(item.created_gmt, offset_hours).format("%B %d, %Y @ %I:%M %p")
        ),
    }
}

fn site_time(gmt: NaiveDateTime, offset_hours: i32) -> NaiveDateTime {
    gmt + chrono::Duration::hours(i64::from(offset_hours))
}

/// `add_query_arg( $request->get_query_params(), rest_url(...) )` then
/// `add_query_arg( 'page', N, $base )`: WooCommerce does NOT urlencode the
/// values (WC-CRUD `get_items`), and `add_query_arg` drops `=` from empty
/// values. Control and non-ASCII bytes, which cannot go in a header value,
/// are percent-encoded here.
fn wp_page_link(base: &str, q: &[(String, String)], page: u64) -> String {
    let mut pairs: Vec<(String, String)> = q.to_vec();
    match pairs.iter_mut().find(|(k, _)| k == "page") {
        Some(slot) => slot.1 = page.to_string(),
        None => pairs.push(("page".to_string(), page.to_string())),
    }
    let raw = |s: &str| {
        s.bytes()
            .map(|b| {
                if (0x20..0x7f).contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    let query: Vec<String> = pairs
        .iter()
        .map(|(k, v)| {
            if v.is_empty() {
                raw(k)
            } else {
                format!("{}={}", raw(k), raw(v))
            }
        })
        .collect();
    format!("{base}?{}", query.join("&"))
}

fn catalog_json(base_url: &str, resource: &str, item: &CatalogItem, offset_hours: i32) -> Value {
    let created = wc_date(&item.created_gmt);
    let modified = wc_date(&item.modified_gmt);
    let mut v = match resource {
        "orders" => order_payload(item.id, &item.status, &created, &modified),
        "products" => product_payload(
            item.id,
            &format!("Product {}", item.id),
            &created,
            &modified,
        ),
        "customers" => customer_payload(
            item.id,
            &format!("customer{}@example.com", item.id),
            &created,
            &modified,
        ),
        _ => coupon_payload(item.id, &format!("coupon{}", item.id), &created, &modified),
    };
    let local_created = wc_date(&site_time(item.created_gmt, offset_hours));
    let local_modified = wc_date(&site_time(item.modified_gmt, offset_hours));
    v["date_created"] = json!(local_created);
    v["date_modified"] = json!(local_modified);
    match resource {
        "orders" => v["date_paid"] = json!(local_modified),
        "products" => v["status"] = json!(item.status),
        _ => {}
    }
    v["_links"] = json!({
        "self": [{ "href": format!("{base_url}/wp-json/wc/v3/{resource}/{}", item.id) }],
        "collection": [{ "href": format!("{base_url}/wp-json/wc/v3/{resource}") }]
    });
    v
}

fn catalog_request(
    state: &Mutex<StoreState>,
    req: &ApiRequest,
    auth: Auth,
    resource: &'static str,
    item: Option<u64>,
) -> ApiResponse {
    if req.method != Method::GET {
        // Writes to the catalog are not simulated (use `upsert`/`delete`).
        return no_route();
    }
    let Some(id) = item else {
        return catalog_list(state, req, auth, resource);
    };
    if let Auth::Anonymous = auth {
        return cannot(&req.method, true);
    }
    let s = lock(state);
    match s.catalog.get(resource).and_then(|m| m.get(&id)) {
        Some(item) => wp_json(
            200,
            &catalog_json(&s.base_url, resource, item, s.site_offset_hours),
        ),
        None if resource == "customers" => {
            wp_error(404, "woocommerce_rest_invalid_id", "Invalid resource ID.")
        }
        None => {
            let post_type = match resource {
                "orders" => "shop_order",
                "coupons" => "shop_coupon",
                _ => "product",
            };
            wp_error(
                404,
                &format!("woocommerce_rest_{post_type}_invalid_id"),
                "Invalid ID.",
            )
        }
    }
}

/// `WC_REST_CRUD_Controller::get_items()` (orders, products, coupons) and
/// `WC_REST_Customers_V1_Controller::get_items()` (customers).
fn catalog_list(
    state: &Mutex<StoreState>,
    req: &ApiRequest,
    auth: Auth,
    resource: &'static str,
) -> ApiResponse {
    let q = php_query(req);
    let s = lock(state);
    let offset_hours = s.site_offset_hours;
    // Arg validation runs before the permission callback (WP_REST_Server::dispatch).
    let args = match list_args(resource, &q, offset_hours) {
        Ok(a) => a,
        Err(resp) => return resp,
    };
    if let Auth::Anonymous = auth {
        return cannot(&req.method, false);
    }
    let customers = resource == "customers";
    let column = |t: NaiveDateTime| {
        if args.use_gmt {
            t
        } else {
            site_time(t, offset_hours)
        }
    };
    let mut items: Vec<&CatalogItem> = s
        .catalog
        .get(resource)
        .map(|m| m.values().collect())
        .unwrap_or_default();
    items.retain(|i| {
        let status_ok = customers
            || match &args.statuses {
                None => i.status != "trash",
                Some(wanted) => wanted.contains(&i.status),
            };
        // WP_Date_Query: `column > after`, `column < before` (no `inclusive`).
        status_ok
            && (args.include.is_empty() || args.include.contains(&i.id))
            && !args.exclude.contains(&i.id)
            && args.after.is_none_or(|b| column(i.created_gmt) > b)
            && args.before.is_none_or(|b| column(i.created_gmt) < b)
            && args
                .modified_after
                .is_none_or(|b| column(i.modified_gmt) > b)
            && args
                .modified_before
                .is_none_or(|b| column(i.modified_gmt) < b)
    });
    let position = |id: u64| args.include.iter().position(|x| *x == id);
    items.sort_by(|a, b| {
        let ord = match args.orderby.as_str() {
            "id" => a.id.cmp(&b.id),
            "modified" => (a.modified_gmt, a.id).cmp(&(b.modified_gmt, b.id)),
            "include" if !args.include.is_empty() => position(a.id).cmp(&position(b.id)),
            "title" | "slug" | "menu_order" if !customers => {
                let ta = post_title(resource, a, offset_hours);
                let tb = post_title(resource, b, offset_hours);
                (ta.to_lowercase(), a.id).cmp(&(tb.to_lowercase(), b.id))
            }
            // Customers: every simulated display_name is the same.
            "name" => a.id.cmp(&b.id),
            "price" | "popularity" | "rating" => a.id.cmp(&b.id),
            // date, registered_date, and `include` without ids.
            _ => (a.created_gmt, a.id).cmp(&(b.created_gmt, b.id)),
        };
        if args.desc {
            ord.reverse()
        } else {
            ord
        }
    });
    let total = items.len() as u64;
    let start = args.offset.unwrap_or((args.page - 1) * args.per_page);
    // Customers derive the page from the offset; posts report `paged`.
    let page = if customers {
        start / args.per_page + 1
    } else {
        args.page
    };
    let body: Vec<Value> = items
        .iter()
        .skip(start as usize)
        .take(args.per_page as usize)
        .map(|i| catalog_json(&s.base_url, resource, i, offset_hours))
        .collect();
    let max_pages = total.div_ceil(args.per_page);
    let mut resp = wp_json(200, &Value::Array(body));
    resp.headers.push(("X-WP-Total".into(), total.to_string()));
    resp.headers
        .push(("X-WP-TotalPages".into(), max_pages.to_string()));
    let base = format!("{}/wp-json/wc/v3/{resource}", s.base_url);
    let mut links = Vec::new();
    if page > 1 {
        let prev = (page - 1).min(max_pages);
        links.push(format!("<{}>; rel=\"prev\"", wp_page_link(&base, &q, prev)));
    }
    if max_pages > page {
        links.push(format!(
            "<{}>; rel=\"next\"",
            wp_page_link(&base, &q, page + 1)
        ));
    }
    if !links.is_empty() {
        // WP_REST_Response::link_header appends to one `Link` header with ", ".
        resp.headers.push(("Link".into(), links.join(", ")));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn php_json_encode_escapes_like_php() {
        let v = json!({"url": "https://a/b", "name": "Zoë"});
        assert_eq!(
            String::from_utf8(php_json_encode(&v)).unwrap(),
            r#"{"name":"Zo\u00eb","url":"https:\/\/a\/b"}"#
        );
        // Python json.dumps("😀é\x01\n/") gives "\ud83d\ude00\u00e9\u0001\n/";
        // PHP additionally escapes the slash.
        let v = json!(["😀é\u{1}\n/", "q\"\\", 1, 2.5, null, true, {}]);
        assert_eq!(
            String::from_utf8(php_json_encode(&v)).unwrap(),
            r#"["\ud83d\ude00\u00e9\u0001\n\/","q\"\\",1,2.5,null,true,{}]"#
        );
    }

    #[test]
    fn signature_matches_independent_values() {
        // Python: base64(hmac.new(b"my-webhook-secret", b'{"id":727}', sha256).digest())
        assert_eq!(
            signature("my-webhook-secret", br#"{"id":727}"#),
            "JaGpRYL9Z950U5xyvgPsGyKcqfXJ7P2IdMd6XsgN+T4="
        );
        // Python, body with PHP-escaped slashes (docs/vendors/webhooks.md §1.2).
        let body = php_json_encode(&json!({"id": 727, "permalink": "https://example.com/"}));
        assert_eq!(body, br#"{"id":727,"permalink":"https:\/\/example.com\/"}"#);
        assert_eq!(
            signature("my-webhook-secret", &body),
            "nV8tF4YZPPMsDEK65O5aXzjiprllRYnw5gzPDVt/UEI="
        );
        // Python: key b"a&b'c" (the stored "a&amp;b&#039;c" after
        // wp_specialchars_decode), body '{"name":"Zo\u00eb","url":"https:\/\/a\/b"}'.
        let body = php_json_encode(&json!({"url": "https://a/b", "name": "Zoë"}));
        assert_eq!(
            signature("a&amp;b&#039;c", &body),
            "QJnUYVBoS+kN4goLJ9+6sQnCO9s47O9uz/C4aifJbvc="
        );
    }

    #[test]
    fn specialchars_decode_is_single_pass() {
        assert_eq!(wp_specialchars_decode("a&amp;lt;b"), "a&lt;b");
        assert_eq!(
            wp_specialchars_decode("&#0039;&#x27;&quot;&#60;&gt;"),
            "''\"<>"
        );
        assert_eq!(wp_specialchars_decode("&nbsp;&#x3c;&"), "&nbsp;&#x3c;&");
    }

    #[test]
    fn delivery_has_the_documented_headers() {
        let d = delivery(
            "order.updated",
            "https://shop.example/",
            142,
            "0123456789abcdef0123456789abcdef",
            "my-webhook-secret",
            &deleted_payload(727),
        );
        let names: Vec<&str> = d.headers.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "User-Agent",
                "Content-Type",
                "X-WC-Webhook-Source",
                "X-WC-Webhook-Topic",
                "X-WC-Webhook-Resource",
                "X-WC-Webhook-Event",
                "X-WC-Webhook-Signature",
                "X-WC-Webhook-ID",
                "X-WC-Webhook-Delivery-ID"
            ]
        );
        assert_eq!(d.body, br#"{"id":727}"#);
        assert_eq!(
            d.header("x-wc-webhook-signature"),
            Some("JaGpRYL9Z950U5xyvgPsGyKcqfXJ7P2IdMd6XsgN+T4=")
        );
        assert_eq!(d.header("X-WC-Webhook-Resource"), Some("order"));
        assert_eq!(d.header("X-WC-Webhook-Event"), Some("updated"));
        let p = ping(142);
        assert_eq!(p.body, b"webhook_id=142");
        assert!(p.headers.iter().all(|(k, _)| !k.starts_with("X-WC")));
        assert_eq!(delivery_id(1).len(), 32);
    }

    #[test]
    fn topics() {
        assert!(is_valid_topic("order.updated"));
        assert!(is_valid_topic("product.restored"));
        assert!(is_valid_topic("action.woocommerce_add_to_cart"));
        assert!(!is_valid_topic("action.woocommerce_login_credentials"));
        assert!(!is_valid_topic("order.published"));
        assert!(!is_valid_topic("Order.updated"));
        assert!(!is_valid_topic("order"));
        assert_eq!(topic_hooks("order.created"), ["woocommerce_new_order"]);
    }

    #[test]
    fn payloads_have_escaping_cases() {
        let body = String::from_utf8(php_json_encode(&order_payload(
            727,
            "processing",
            "2017-03-22T19:28:02",
            "2017-03-22T19:28:08",
        )))
        .unwrap();
        assert!(body.contains(r#""first_name":"Zo\u00eb""#));
        assert!(body.contains(r#""date_created":"2017-03-22T16:28:02""#));
        assert!(body.contains(r#"https:\/\/example.com\/wp-json\/wc\/v3\/orders\/727"#));
        let p = product_payload(
            794,
            "Premium Quality",
            "2017-03-23T20:01:14",
            "2017-03-23T20:01:14",
        );
        assert_eq!(p["slug"], "premium-quality");
        let c = customer_payload(
            26,
            "joao.silva@example.com",
            "2017-03-21T19:11:14",
            "2017-03-21T19:11:16",
        );
        assert_eq!(c["first_name"], "João");
        assert_eq!(
            coupon_payload(719, "10off", "2017-03-21T18:23:00", "2017-03-21T18:23:00")["code"],
            "10off"
        );
    }

    /// A loopback receiver recording what it gets; `/fail` answers 500.
    async fn receiver() -> (String, Arc<Mutex<Vec<ApiRequest>>>, oneshot::Sender<()>) {
        let got = Arc::new(Mutex::new(Vec::new()));
        let rec = got.clone();
        let handler: Handler = Arc::new(move |req: ApiRequest| -> BoxFuture {
            let rec = rec.clone();
            Box::pin(async move {
                let status = if req.path == "/fail" { 500 } else { 200 };
                rec.lock().unwrap().push(req);
                ApiResponse {
                    status,
                    headers: vec![],
                    body: b"ok".to_vec(),
                }
            })
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(serve(listener, handler, async move {
            let _ = rx.await;
        }));
        (url, got, tx)
    }

    #[tokio::test]
    async fn store_simulator_round_trip() {
        let (hook_base, got, _stop) = receiver().await;
        let store = start_store("ck_test", "cs_test").await;
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let url = store.webhooks_url();
        let body = json!({
            "name": "Order updated",
            "topic": "order.updated",
            "delivery_url": format!("{hook_base}/hooks/woo"),
            "secret": "my-webhook-secret"
        });
        let post = |auth: Option<(&str, &str)>, body: &Value| {
            let mut r = client.post(&url).json(body);
            if let Some((k, s)) = auth {
                r = r.basic_auth(k, Some(s));
            }
            r.send()
        };

        let r = post(None, &body).await.unwrap();
        assert_eq!(r.status(), 401);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["code"], "woocommerce_rest_cannot_create");
        assert_eq!(v["data"]["status"], 401);

        let r = post(Some(("ck_test", "wrong")), &body).await.unwrap();
        assert_eq!(r.status(), 401);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["code"], "woocommerce_rest_authentication_error");

        let mut bad = body.clone();
        bad["topic"] = json!("order.exploded");
        let r = post(Some(("ck_test", "cs_test")), &bad).await.unwrap();
        assert_eq!(r.status(), 400);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["code"], "woocommerce_rest_shop_webhook_invalid_topic");

        let r = post(Some(("ck_test", "cs_test")), &body).await.unwrap();
        assert_eq!(r.status(), 201);
        let location = r.headers()["location"].to_str().unwrap().to_string();
        let raw = r.text().await.unwrap();
        assert!(
            raw.contains(r#"http:\/\/127.0.0.1"#),
            "WP escapes slashes: {raw}"
        );
        let created: Value = serde_json::from_str(&raw).unwrap();
        let id = created["id"].as_u64().unwrap();
        assert_eq!(location, format!("{url}/{id}"));
        assert_eq!(created["status"], "active");
        assert_eq!(created["resource"], "order");
        assert_eq!(created["event"], "updated");
        assert!(created.get("secret").is_none());
        assert_eq!(
            store.registered(),
            vec![RegisteredWebhook {
                id,
                topic: "order.updated".into(),
                delivery_url: format!("{hook_base}/hooks/woo"),
                secret: "my-webhook-secret".into(),
                status: "active".into(),
            }]
        );

        // The ping reached the receiver before the 201.
        assert_eq!(store.pings()[0].status, Some(200));
        {
            let got = got.lock().unwrap();
            let ping = &got[0];
            assert_eq!(ping.body, format!("webhook_id={id}").as_bytes());
            assert_eq!(
                ping.header("content-type"),
                Some("application/x-www-form-urlencoded")
            );
            assert_eq!(ping.header("user-agent"), Some(USER_AGENT));
            assert!(ping.header("x-wc-webhook-signature").is_none());
        }
        assert_eq!(store.delivery_state(id), Some((0, false)));

        let r = client
            .get(&url)
            .basic_auth("ck_test", Some("cs_test"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-wp-total"], "1");
        let list: Value = r.json().await.unwrap();
        assert_eq!(list[0]["id"], id);

        let r = client
            .get(format!("{url}/999999"))
            .basic_auth("ck_test", Some("cs_test"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);

        // An event delivery, signed over the exact PHP-encoded bytes.
        let payload = order_payload(
            727,
            "processing",
            "2017-03-22T19:28:02",
            "2017-03-22T19:28:08",
        );
        let fired = store.fire("order.updated", &payload).await;
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].status, 200);
        {
            let got = got.lock().unwrap();
            let d = &got[1];
            assert_eq!(d.path, "/hooks/woo");
            assert_eq!(d.body, php_json_encode(&payload));
            assert_eq!(
                d.header("x-wc-webhook-signature").unwrap(),
                signature("my-webhook-secret", &d.body)
            );
            assert_eq!(d.header("x-wc-webhook-id"), Some(id.to_string().as_str()));
            assert_eq!(
                d.header("x-wc-webhook-source"),
                Some(store.source().as_str())
            );
        }

        // Injected failures, then normal service again.
        let before = store.requests();
        store.fail_next(503, 2);
        for _ in 0..2 {
            let r = client.get(&url).send().await.unwrap();
            assert_eq!(r.status(), 503);
        }
        let r = client
            .get(&url)
            .basic_auth("ck_test", Some("cs_test"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(store.requests(), before + 3);

        // DELETE: trash unsupported, then force, then unknown.
        let del = |path: String| {
            client
                .delete(path)
                .basic_auth("ck_test", Some("cs_test"))
                .send()
        };
        let r = del(format!("{url}/{id}")).await.unwrap();
        assert_eq!(r.status(), 501);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["code"], "woocommerce_rest_trash_not_supported");
        let r = del(format!("{url}/{id}?force=true")).await.unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["id"], id);
        let r = del(format!("{url}/{id}?force=true")).await.unwrap();
        assert_eq!(r.status(), 404);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["code"], "woocommerce_rest_shop_webhook_invalid_id");
        assert!(store.registered().is_empty());
    }

    #[tokio::test]
    async fn store_disables_after_the_seventh_failure() {
        let (hook_base, _got, _stop) = receiver().await;
        let store = start_store("ck", "cs").await;
        store.set_ping(false);
        let r = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .post(store.webhooks_url())
            .basic_auth("ck", Some("cs"))
            .json(&json!({"topic": "order.created", "delivery_url": format!("{hook_base}/fail")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let hook = store.registered().remove(0);
        assert_eq!(hook.secret.chars().count(), 50);
        assert!(store.pings().is_empty());
        for n in 1..=6 {
            let fired = store.fire("order.created", &deleted_payload(1)).await;
            assert_eq!(fired[0].status, 500);
            assert_eq!(store.delivery_state(hook.id).unwrap().0, n);
        }
        assert_eq!(store.registered()[0].status, "active");
        store.fire("order.created", &deleted_payload(1)).await;
        assert_eq!(store.registered()[0].status, "disabled");
        assert!(store
            .fire("order.created", &deleted_payload(1))
            .await
            .is_empty());
    }

    fn t(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").unwrap()
    }

    /// GETs with the store's Basic credentials: (status, headers, JSON body).
    async fn wc_get(url: &str) -> (u16, reqwest::header::HeaderMap, Value) {
        let r = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .get(url)
            .basic_auth("ck", Some("cs"))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, headers, r.json().await.unwrap_or(Value::Null))
    }

    fn ids(v: &Value) -> Vec<u64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_u64().unwrap())
            .collect()
    }

    #[test]
    fn rest_date_parsing_follows_rest_parse_date() {
        let wall = t("2017-03-22T19:28:08");
        assert_eq!(parse_rest_date("2017-03-22T19:28:08"), Some((wall, None)));
        assert_eq!(
            parse_rest_date("2017-03-22 19:28:08.123Z"),
            Some((wall, Some(0)))
        );
        assert_eq!(
            parse_rest_date("2017-03-22t19:28:08-03:00"),
            Some((wall, Some(-3 * 3600)))
        );
        assert_eq!(
            parse_rest_date("2017-03-22T19:28:08+05"),
            Some((wall, Some(5 * 3600)))
        );
        for bad in [
            "2017-03-22",
            "2017-03-22T19:28",
            "2017-03-22T19:28:08z",
            "2017-03-22T19:28:08+0530",
            "2017-03-22T19:28:08.",
            "Wed, 22 Mar 2017 19:28:08 +0000",
        ] {
            assert_eq!(parse_rest_date(bad), None, "{bad}");
        }
        assert_eq!(wp_list(&["asc", "desc"]), "asc and desc");
        assert_eq!(wp_list(&["a", "b", "c"]), "a, b, and c");
    }

    #[tokio::test]
    async fn catalog_pagination_headers_and_links() {
        let store = start_store("ck", "cs").await;
        for id in 1..=25 {
            let at = t("2026-01-01T00:00:00") + chrono::Duration::minutes(id as i64);
            store.upsert("orders", id, at, at);
        }
        assert_eq!(store.object_count("orders"), 25);
        let url = store.catalog_url("orders");
        let q = "modified_after=2025-12-31T23:00:00%2B00:00&orderby=modified&order=asc&per_page=10";

        let (status, h, body) = wc_get(&format!("{url}?{q}")).await;
        assert_eq!(status, 200);
        assert_eq!(h["x-wp-total"], "25");
        assert_eq!(h["x-wp-totalpages"], "3");
        assert_eq!(ids(&body), (1..=10).collect::<Vec<_>>());
        // Values are NOT urlencoded in the link (the `+` comes back raw), and
        // `page` is appended after the request's own parameters...
        let next = format!(
            "{url}?modified_after=2025-12-31T23:00:00+00:00&orderby=modified&order=asc&per_page=10&page=2"
        );
        assert_eq!(h["link"], format!("<{next}>; rel=\"next\"").as_str());
        // ...so following it verbatim turns `+` into a space: 400.
        let (status, _, err) = wc_get(&next).await;
        assert_eq!(status, 400);
        assert_eq!(err["data"]["params"]["modified_after"], "Invalid date.");
        let o = &body[0];
        assert_eq!(o["date_modified_gmt"], "2026-01-01T00:01:00");
        assert_eq!(o["date_modified"], "2026-01-01T00:01:00");
        assert_eq!(o["status"], "processing");
        assert_eq!(o["_links"]["self"][0]["href"], format!("{url}/1").as_str());

        let (_, h, body) = wc_get(&format!("{url}?per_page=10&page=2&orderby=id&order=asc")).await;
        assert_eq!(ids(&body), (11..=20).collect::<Vec<_>>());
        assert_eq!(
            h["link"],
            format!(
                "<{url}?per_page=10&page=1&orderby=id&order=asc>; rel=\"prev\", \
                 <{url}?per_page=10&page=3&orderby=id&order=asc>; rel=\"next\""
            )
            .as_str()
        );

        // The default order is date desc; the last page has no `next`.
        let (_, h, body) = wc_get(&format!("{url}?page=3")).await;
        assert_eq!(ids(&body), (1..=5).rev().collect::<Vec<_>>());
        assert_eq!(h["link"], format!("<{url}?page=2>; rel=\"prev\"").as_str());

        // Past the last page: 200 with [] and the real totals (WC-CRUD re-counts).
        let (status, h, body) = wc_get(&format!("{url}?page=9")).await;
        assert_eq!(status, 200);
        assert_eq!(body, json!([]));
        assert_eq!(h["x-wp-total"], "25");
        assert_eq!(h["x-wp-totalpages"], "3");
        assert_eq!(h["link"], format!("<{url}?page=3>; rel=\"prev\"").as_str());

        // An empty result: no Link at all.
        let (status, h, body) = wc_get(&format!("{url}?modified_after=2030-01-01T00:00:00")).await;
        assert_eq!((status, body), (200, json!([])));
        assert_eq!(h["x-wp-totalpages"], "0");
        assert!(h.get("link").is_none());

        // Arg validation.
        let (status, _, body) = wc_get(&format!("{url}?per_page=101&orderby=bogus")).await;
        assert_eq!(status, 400);
        assert_eq!(body["code"], "rest_invalid_param");
        assert_eq!(body["message"], "Invalid parameter(s): per_page, orderby");
        assert_eq!(
            body["data"]["params"]["per_page"],
            "per_page must be between 1 (inclusive) and 100 (inclusive)"
        );
        assert_eq!(
            body["data"]["params"]["orderby"],
            "orderby is not one of date, id, include, title, slug, and modified."
        );
        let (status, _, body) = wc_get(&format!("{url}?modified_after=2026-01-01")).await;
        assert_eq!(status, 400);
        assert_eq!(body["data"]["params"]["modified_after"], "Invalid date.");
        let (status, _, _) = wc_get(&format!("{url}?status=nonsense")).await;
        assert_eq!(status, 400);

        // Without credentials: args are validated first, then 401.
        let anon = reqwest::Client::builder().no_proxy().build().unwrap();
        let r = anon.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 401);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["code"], "woocommerce_rest_cannot_view");
    }

    #[tokio::test]
    async fn customers_have_no_modified_filter() {
        let store = start_store("ck", "cs").await;
        store.upsert(
            "customers",
            7,
            t("2026-01-02T00:00:00"),
            t("2026-01-01T00:00:00"),
        );
        store.upsert(
            "customers",
            3,
            t("2020-01-02T00:00:00"),
            t("2020-01-01T00:00:00"),
        );
        let url = store.catalog_url("customers");
        // Unregistered params are ignored: both customers come back, ordered
        // by the default orderby=name, order=asc.
        let (status, h, body) = wc_get(&format!(
            "{url}?modified_after=2025-01-01T00:00:00&dates_are_gmt=true"
        ))
        .await;
        assert_eq!(status, 200);
        assert_eq!(ids(&body), [3, 7]);
        assert_eq!(h["x-wp-total"], "2");
        // ...but orderby is validated against the customers enum.
        let (status, _, body) = wc_get(&format!("{url}?orderby=modified")).await;
        assert_eq!(status, 400);
        assert_eq!(
            body["data"]["params"]["orderby"],
            "orderby is not one of id, include, name, and registered_date."
        );
        let (_, _, body) = wc_get(&format!("{url}?orderby=registered_date&order=desc")).await;
        assert_eq!(ids(&body), [7, 3]);
        assert_eq!(body[0]["email"], "customer7@example.com");
        // Deleting a customer removes it; there is no trash.
        store.delete("customers", 7);
        let (_, _, body) = wc_get(&url).await;
        assert_eq!(ids(&body), [3]);
        let (status, _, body) = wc_get(&format!("{url}/7")).await;
        assert_eq!(status, 404);
        assert_eq!(body["code"], "woocommerce_rest_invalid_id");
    }

    #[tokio::test]
    async fn modified_bounds_are_exclusive_and_zone_aware() {
        let store = start_store("ck", "cs").await;
        let base = t("2026-03-01T12:00:00");
        for (id, secs) in [(1, -1), (2, 0), (3, 1)] {
            store.upsert("products", id, base + chrono::Duration::seconds(secs), base);
        }
        let url = store.catalog_url("products");
        let list = |q: String| {
            let url = url.clone();
            async move { ids(&wc_get(&format!("{url}?orderby=id&order=asc&{q}")).await.2) }
        };
        // Strictly greater / strictly less (WP_Date_Query without `inclusive`).
        assert_eq!(
            list("modified_after=2026-03-01T12:00:00&dates_are_gmt=true".into()).await,
            [3]
        );
        assert_eq!(
            list("modified_before=2026-03-01T12:00:00&dates_are_gmt=1".into()).await,
            [1]
        );
        assert_eq!(
            list("modified_after=2026-03-01T11:59:59&modified_before=2026-03-01T12:00:01".into())
                .await,
            [2]
        );
        // Fractions are dropped, not rounded: .999 still means 12:00:00.
        assert_eq!(
            list("modified_after=2026-03-01T12:00:00.999".into()).await,
            [3]
        );

        // A UTC+2 site: the plain columns are site-local.
        store.set_site_offset_hours(2);
        let (_, _, body) = wc_get(&format!("{url}/2")).await;
        assert_eq!(body["date_modified_gmt"], "2026-03-01T12:00:00");
        assert_eq!(body["date_modified"], "2026-03-01T14:00:00");
        // Zone-less bound against the local column (dates_are_gmt=false).
        assert_eq!(list("modified_after=2026-03-01T14:00:00".into()).await, [3]);
        // A bound with an offset is converted to site-local time first...
        assert_eq!(
            list("modified_after=2026-03-01T12:00:00Z".into()).await,
            [3]
        );
        // ...even when it is then compared with the GMT column: `...12:00:00Z`
        // becomes 14:00:00 and filters out all three GMT 12:00:xx objects.
        assert!(
            list("modified_after=2026-03-01T12:00:00Z&dates_are_gmt=true".into())
                .await
                .is_empty()
        );
        // `after`/`before` act on the created date.
        store.upsert("products", 4, base, t("2026-03-02T00:00:00"));
        assert_eq!(
            list("after=2026-03-01T23:59:59&dates_are_gmt=true".into()).await,
            [4]
        );
    }

    #[tokio::test]
    async fn trashed_objects_leave_the_default_list() {
        let store = start_store("ck", "cs").await;
        let at = t("2026-02-01T00:00:00");
        for id in [10, 11] {
            store.upsert("orders", id, at, at);
            store.upsert("coupons", id, at, at);
        }
        store.delete("orders", 10);
        store.delete("coupons", 11);
        assert_eq!(store.object_count("orders"), 1);
        let url = store.catalog_url("orders");
        let (_, h, body) = wc_get(&format!("{url}?status=any")).await;
        assert_eq!(ids(&body), [11]);
        assert_eq!(h["x-wp-total"], "1");
        let (_, _, body) = wc_get(&format!("{url}?status=trash")).await;
        assert_eq!(ids(&body), [10]);
        assert_eq!(body[0]["status"], "trash");
        let (_, _, body) = wc_get(&format!("{url}?status=processing,completed")).await;
        assert_eq!(ids(&body), [11]);
        // Coupons have no `status` arg; trash is hidden anyway.
        let (_, _, body) = wc_get(&format!("{}?status=trash", store.catalog_url("coupons"))).await;
        assert_eq!(ids(&body), [10]);
        // A trashed order can still be fetched by id.
        let (status, _, body) = wc_get(&format!("{url}/10")).await;
        assert_eq!((status, body["status"].clone()), (200, json!("trash")));
        let (status, _, body) = wc_get(&format!("{url}/99")).await;
        assert_eq!(status, 404);
        assert_eq!(body["code"], "woocommerce_rest_shop_order_invalid_id");
        // Upserting restores it.
        store.upsert("orders", 10, at, at);
        assert_eq!(store.object_count("orders"), 2);
    }

    #[tokio::test]
    async fn adversity_failures_delay_and_mid_scan_changes() {
        let store = start_store("ck", "cs").await;
        let at = t("2026-04-01T00:00:00");
        for id in 1..=4 {
            store.upsert("orders", id, at + chrono::Duration::seconds(id as i64), at);
        }
        let url = format!(
            "{}?orderby=modified&order=asc&per_page=2&dates_are_gmt=true",
            store.catalog_url("orders")
        );
        // Order 1 is modified right after the first page is answered: it
        // moves to the end, everything shifts left, and order 3 is never seen.
        store.schedule_upsert_after_calls(1, "orders", 1, at + chrono::Duration::seconds(60), at);
        let (_, _, p1) = wc_get(&format!("{url}&page=1")).await;
        assert_eq!(ids(&p1), [1, 2]);
        let (_, h, p2) = wc_get(&format!("{url}&page=2")).await;
        assert_eq!(ids(&p2), [4, 1]);
        assert_eq!(h["x-wp-totalpages"], "2");
        store.schedule_delete_after_calls(2, "orders", 2);
        let (_, _, p1) = wc_get(&format!("{url}&page=1")).await;
        assert_eq!(ids(&p1), [3, 4]);
        assert_eq!(store.list_calls(), 3);

        // Injected failures count as list calls.
        store.fail_next(503, 1);
        let (status, _, body) = wc_get(&url).await;
        assert_eq!(status, 503);
        assert_eq!(body["data"]["status"], 503);
        assert_eq!(store.list_calls(), 4);
        let (status, _, _) = wc_get(&format!("{}/1", store.catalog_url("orders"))).await;
        assert_eq!(status, 200);
        assert_eq!(store.list_calls(), 4, "item GETs are not list calls");

        store.set_delay(Duration::from_millis(150));
        let started = std::time::Instant::now();
        let (status, _, _) = wc_get(&url).await;
        assert_eq!(status, 200);
        assert!(started.elapsed() >= Duration::from_millis(150));
    }
}
