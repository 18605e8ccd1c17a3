//! BigCommerce webhook simulator, written from `docs/vendors/webhooks.md` §3
//! (BigCommerce docs: webhooks overview, HTTPS webhooks, events) and §4
//! (Standard Webhooks v1.0.0 spec and reference Python library).
//!
//! The Standard Webhooks signature is implemented here with
//! `hmac`/`sha2`/`base64`, independently of the production code.
//!
//! [`start_store`] runs a store serving the legacy v2 list API a poller uses
//! (`/api/v2/{orders,products,customers}`), written from
//! `docs/vendors/polling.md` §2: HTTP Basic (or `X-Auth-Token`), id-ascending
//! pages, `min_date_modified` in RFC 2822 or ISO 8601, `204 No Content` for an
//! empty page, `X-Rate-Limit-*` headers and `429` once the window's quota is
//! used up, plus adversity controls for tests. Also, as BigCommerce behaves
//! (`docs/vendors/polling.md` §3, sources there):
//! - the OAuth token endpoint `POST /oauth2/token` of an app install
//!   (`bigcommerce/docs:docs/integrations/apps/guide/auth.mdx`), refusing a
//!   wrong or used code;
//! - the current v3 listings of an OAuth store,
//!   `/stores/{hash}/v3/catalog/products` and `/stores/{hash}/v3/customers`
//!   (`date_modified:min`, sorting by modification date, `meta.pagination`;
//!   `bigcommerce/docs:reference/catalog/products_catalog.v3.yml`,
//!   `reference/customers.v3.yml`);
//! - archived orders: hidden from the default order listing, listed with
//!   `is_deleted=true` and marked `"is_deleted": true`
//!   (`reference/orders.v2.oas2.yml`);
//! - the legacy hourly quota header `X-BC-ApiLimit-Remaining` on Basic-auth
//!   responses (`docs/start/about/index.mdx`, "rolling one hour").

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ce_local::http_server::{serve, BoxFuture, Handler};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Timelike, Utc};
use hmac::{Hmac, Mac};
use http::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use shared::api::{ApiRequest, ApiResponse};
use tokio::sync::oneshot;

pub use super::woocommerce::Delivery;

/// `store_id` of the docs' callback example (§3.1); a string of digits.
pub const DOCS_STORE_ID: &str = "1025646";

/// `data.type` for a scope: the segment after `store/` (§3.1 examples:
/// `store/order/created` → `order`, `store/customer/address/created` → `customer`).
pub fn data_type(scope: &str) -> &str {
    let rest = scope.strip_prefix("store/").unwrap_or(scope);
    rest.split('/').next().unwrap_or(rest)
}

/// A callback body (§3.1): `{scope, store_id, data:{type,id}, hash,
/// created_at, producer:"stores/{store_hash}"}`, with the docs' `store_id`.
pub fn webhook(scope: &str, store_hash: &str, id: u64, hash: &str, created_at: i64) -> Value {
    webhook_for_store(scope, DOCS_STORE_ID, store_hash, id, hash, created_at)
}

/// [`webhook`] with an explicit `store_id` (a string of digits, §3.1).
pub fn webhook_for_store(
    scope: &str,
    store_id: &str,
    store_hash: &str,
    id: u64,
    hash: &str,
    created_at: i64,
) -> Value {
    webhook_with_data(
        scope,
        store_id,
        store_hash,
        json!({ "type": data_type(scope), "id": id }),
        hash,
        created_at,
    )
}

/// A callback body with scope-specific `data` (§3.1 examples, e.g.
/// `{"type":"cart","id":"<uuid>","orderId":252}` for `store/cart/converted`).
pub fn webhook_with_data(
    scope: &str,
    store_id: &str,
    store_hash: &str,
    data: Value,
    hash: &str,
    created_at: i64,
) -> Value {
    json!({
        "scope": scope,
        "store_id": store_id,
        "data": data,
        "hash": hash,
        "created_at": created_at,
        "producer": format!("stores/{store_hash}")
    })
}

/// A `store/customer/address/*` callback (BC-EVT "Example customer address
/// created payload object"): `data.id` is the ADDRESS, the customer is
/// `data.address.customer_id`. The hash is over `data`, as BigCommerce's.
pub fn address_webhook(
    scope: &str,
    store_hash: &str,
    address_id: u64,
    customer_id: u64,
    created_at: i64,
) -> Value {
    let data =
        json!({ "type": "customer", "id": address_id, "address": { "customer_id": customer_id } });
    let hash = payload_hash(&data);
    webhook_with_data(scope, DOCS_STORE_ID, store_hash, data, &hash, created_at)
}

/// `data` of `store/order/message/created` (BC-EVT): the order and the message.
pub fn order_message_data(order_id: u64, message_id: u64) -> Value {
    json!({ "type": "order", "id": order_id, "message": { "order_message_id": message_id } })
}

/// `data` of `store/order/refund/created` (BC-EVT): the order and the refund.
pub fn order_refund_data(order_id: u64, refund_id: u64) -> Value {
    json!({ "type": "order", "id": order_id, "refund": { "refund_id": refund_id } })
}

/// `data` of `store/order/transaction/{created,updated}` (BC-EVT): the order
/// is `order_id`, a string; there is no `data.id`.
pub fn order_transaction_data(order_id: u64, transaction_id: &str) -> Value {
    json!({
        "type": "transaction", "order_id": order_id.to_string(),
        "transaction_id": transaction_id, "transaction_status": "complete",
        "transaction_type": "capture", "platform_transaction_id": "964899682",
        "provider_transaction_id": "CK65FBPKR472P4V5"
    })
}

/// A callback with scope-specific `data` and BigCommerce's `hash` of it:
/// "SHA-1 hash of the JSON-encoded payload data" (§3.1), so two deliveries
/// with the same `data` (two updates of one product) carry the same hash.
/// (40 hex digits derived with SHA-256 here: the exact input is not given.)
pub fn event_with_data(scope: &str, store_hash: &str, data: Value, created_at: i64) -> Value {
    let hash = payload_hash(&data);
    webhook_with_data(scope, DOCS_STORE_ID, store_hash, data, &hash, created_at)
}

/// The `hash` BigCommerce puts on a payload with this `data`.
pub fn payload_hash(data: &Value) -> String {
    dedupe_hash(&data.to_string())
}

/// `data` of `store/order/statusUpdated` (§3.1 example shape).
pub fn order_status_updated_data(order_id: u64, previous: u64, new: u64) -> Value {
    json!({
        "type": "order",
        "id": order_id,
        "status": { "previous_status_id": previous, "new_status_id": new }
    })
}

/// A 40-hex value shaped like the payload `hash` (BigCommerce documents it as
/// SHA-1 of the payload data; the exact input is not specified, §3.1), derived
/// deterministically from `seed` so the same event gets the same hash.
pub fn dedupe_hash(seed: &str) -> String {
    hex::encode(&Sha256::digest(seed.as_bytes())[..20])
}

/// Standard Webhooks `webhook-signature` (§3.2, §4):
/// `v1,` + base64(HMAC-SHA256(secret, "{msg_id}.{timestamp}.{body}")).
pub fn standard_webhooks_signature(
    secret: &[u8],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(format!("{msg_id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The Standard Webhooks display form of a symmetric secret: `whsec_` +
/// base64(secret) (§4).
pub fn whsec(secret: &[u8]) -> String {
    format!("whsec_{}", STANDARD.encode(secret))
}

/// The callback request (§3.1, §3.2): compact JSON body, `Content-Type:
/// application/json` (assumed; UNCONFIRMED in the docs), then the hook's
/// custom `headers`, then, when `standard_webhooks_secret` is given (the raw
/// client-secret bytes), `webhook-id`, `webhook-timestamp`, `webhook-signature`.
pub fn delivery(
    body: &Value,
    custom_headers: &[(&str, &str)],
    standard_webhooks_secret: Option<&[u8]>,
    msg_id: &str,
    timestamp: i64,
) -> Delivery {
    let bytes = serde_json::to_vec(body).expect("JSON serializes");
    let mut headers = vec![("Content-Type".to_string(), "application/json".to_string())];
    headers.extend(
        custom_headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    if let Some(secret) = standard_webhooks_secret {
        headers.push(("webhook-id".to_string(), msg_id.to_string()));
        headers.push(("webhook-timestamp".to_string(), timestamp.to_string()));
        headers.push((
            "webhook-signature".to_string(),
            standard_webhooks_signature(secret, msg_id, timestamp, &bytes),
        ));
    }
    Delivery {
        headers,
        body: bytes,
    }
}

// ---------------------------------------------------------------------------
// Store simulator: the legacy v2 list API a poller uses
// (docs/vendors/polling.md §2)
// ---------------------------------------------------------------------------

/// Resources with a simulated v2 collection at `/api/v2/{resource}`.
pub const V2_RESOURCES: [&str; 3] = ["orders", "products", "customers"];

/// Default `limit` (BC-ORD2 "requests sent without parameters will only
/// return 50 orders").
pub const DEFAULT_LIMIT: u64 = 50;

/// Largest page the simulator serves (REST overview "The maximum number of
/// products returned is 250"); larger `limit`s are clamped (UNCONFIRMED).
pub const MAX_LIMIT: u64 = 250;

/// An RFC 2822 date as v2 writes it: `Tue, 20 Nov 2012 00:00:00 +0000`.
pub fn rfc2822(t: &DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S +0000").to_string()
}

/// A `min_date_*`/`max_date_*` value: RFC 2822 or ISO 8601 (BC-ORD2). A date
/// without a zone is taken as UTC and a bare date as its midnight
/// (both UNCONFIRMED).
pub fn parse_v2_date(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc2822(s) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Some(t.and_utc());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

#[derive(Debug, Clone)]
struct V2Item {
    id: u64,
    created: DateTime<Utc>,
    modified: DateTime<Utc>,
    /// An archived order (`is_deleted`).
    deleted: bool,
}

/// The app registered with BigCommerce: what the token endpoint checks.
#[derive(Debug, Clone)]
struct OAuthApp {
    client_id: String,
    client_secret: String,
    redirect_uri: String,
}

/// Which API a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    V2(&'static str, Option<u64>),
    V3(&'static str),
}

#[derive(Debug, Clone)]
enum V2Op {
    Upsert {
        resource: &'static str,
        id: u64,
        modified: DateTime<Utc>,
        created: DateTime<Utc>,
    },
    Delete {
        resource: &'static str,
        id: u64,
    },
}

struct BcState {
    username: String,
    api_token: String,
    oauth_token: Option<String>,
    base_url: String,
    objects: BTreeMap<&'static str, BTreeMap<u64, V2Item>>,
    quota: u32,
    window: Duration,
    window_start: Option<Instant>,
    used: u32,
    fail: Option<(u16, usize)>,
    requests: usize,
    list_calls: usize,
    throttled_calls: usize,
    scheduled: Vec<(usize, V2Op)>,
    inclusive: bool,
    delay: Duration,
    store_hash: String,
    app: Option<OAuthApp>,
    /// Codes handed to the app's auth callback, not yet exchanged.
    codes: Vec<(String, String)>,
    /// Legacy accounts' hourly quota left (`X-BC-ApiLimit-Remaining`).
    hourly_left: u64,
    v3_calls: usize,
    token_calls: usize,
}

/// A running BigCommerce store simulator serving the legacy v2 REST API
/// (orders, products, customers) on `127.0.0.1`; it stops when dropped.
pub struct BigCommerceStore {
    /// `http://127.0.0.1:<port>`; the API is at `{base_url}/api/v2/...`.
    pub base_url: String,
    state: Arc<Mutex<BcState>>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Drop for BigCommerceStore {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

fn lock(state: &Mutex<BcState>) -> MutexGuard<'_, BcState> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

fn v2_resource(resource: &str) -> &'static str {
    V2_RESOURCES
        .into_iter()
        .find(|r| *r == resource)
        .unwrap_or_else(|| panic!("unknown BigCommerce v2 resource {resource:?}"))
}

fn whole_seconds(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_nanosecond(0).unwrap_or(t)
}

fn apply_v2(s: &mut BcState, op: V2Op) {
    match op {
        V2Op::Upsert {
            resource,
            id,
            modified,
            created,
        } => {
            s.objects.entry(resource).or_default().insert(
                id,
                V2Item {
                    id,
                    created: whole_seconds(created),
                    modified: whole_seconds(modified),
                    deleted: false,
                },
            );
        }
        V2Op::Delete {
            resource: "orders",
            id,
        } => {
            // `DELETE /orders/{id}` "Archives an order" (BC-ORD2): it leaves
            // the default listing and shows with `is_deleted=true`. That the
            // archive moves `date_modified` is UNCONFIRMED (assumed: it is a
            // change of the order).
            if let Some(order) = s.objects.get_mut("orders").and_then(|m| m.get_mut(&id)) {
                order.deleted = true;
                order.modified = whole_seconds(Utc::now());
            }
        }
        V2Op::Delete { resource, id } => {
            // Products and customers are deleted: gone from every list.
            if let Some(m) = s.objects.get_mut(resource) {
                m.remove(&id);
            }
        }
    }
}

fn run_scheduled(s: &mut BcState, answered: usize) {
    let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut s.scheduled)
        .into_iter()
        .partition(|(after, _)| *after <= answered);
    s.scheduled = later;
    for (_, op) in due {
        apply_v2(s, op);
    }
}

/// Starts a store whose legacy API account is `username` / `api_token`
/// (HTTP Basic). The quota defaults to the Standard plan's 150 requests per
/// 30 s window (BC-RATE).
pub async fn start_store(username: &str, api_token: &str) -> BigCommerceStore {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let base_url = format!("http://{}", listener.local_addr().expect("local addr"));
    let state = Arc::new(Mutex::new(BcState {
        username: username.to_string(),
        api_token: api_token.to_string(),
        oauth_token: None,
        base_url: base_url.clone(),
        objects: BTreeMap::new(),
        quota: 150,
        window: Duration::from_secs(30),
        window_start: None,
        used: 0,
        fail: None,
        requests: 0,
        list_calls: 0,
        throttled_calls: 0,
        scheduled: Vec::new(),
        inclusive: true,
        delay: Duration::ZERO,
        store_hash: "abc123".into(),
        app: None,
        codes: Vec::new(),
        // The legacy hourly quota's size is UNCONFIRMED; large enough that
        // only tests that set it see it run low.
        hourly_left: 20_000,
        v3_calls: 0,
        token_calls: 0,
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
    BigCommerceStore {
        base_url,
        state,
        shutdown: Some(tx),
    }
}

impl BigCommerceStore {
    /// `{base_url}/api/v2/{resource}`.
    pub fn list_url(&self, resource: &str) -> String {
        format!("{}/api/v2/{}", self.base_url, v2_resource(resource))
    }

    /// Also accept `X-Auth-Token: <token>` (the OAuth API account header).
    pub fn set_oauth_token(&self, token: &str) {
        lock(&self.state).oauth_token = Some(token.to_string());
    }

    /// The store hash of `/stores/{hash}/…` (default `abc123`).
    pub fn store_hash(&self) -> String {
        lock(&self.state).store_hash.clone()
    }

    /// Registers the app whose install codes the token endpoint exchanges.
    pub fn register_app(&self, client_id: &str, client_secret: &str, redirect_uri: &str) {
        lock(&self.state).app = Some(OAuthApp {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            redirect_uri: redirect_uri.into(),
        });
    }

    /// A merchant installs the app: the `code` its auth callback receives
    /// (with `context=stores/{hash}` and `scope`), exchangeable once.
    pub fn issue_code(&self, scope: &str) -> String {
        let mut s = lock(&self.state);
        let code = format!("code{}", s.codes.len() + s.token_calls + 1);
        s.codes.push((code.clone(), scope.to_string()));
        code
    }

    /// Sets what the legacy hourly quota has left (`X-BC-ApiLimit-Remaining`).
    pub fn set_hourly_quota_left(&self, left: u64) {
        lock(&self.state).hourly_left = left;
    }

    /// GET requests to a v3 listing so far.
    pub fn v3_calls(&self) -> usize {
        lock(&self.state).v3_calls
    }

    /// Requests to the token endpoint so far.
    pub fn token_calls(&self) -> usize {
        lock(&self.state).token_calls
    }

    /// Creates or modifies an object of `resource` (`orders`, `products` or
    /// `customers`); times are kept to the second, as v2 reports them.
    pub fn upsert(&self, resource: &str, id: u64, modified: DateTime<Utc>, created: DateTime<Utc>) {
        apply_v2(
            &mut lock(&self.state),
            V2Op::Upsert {
                resource: v2_resource(resource),
                id,
                modified,
                created,
            },
        );
    }

    /// Deletes (orders: archives) an object; it no longer shows in lists.
    pub fn delete(&self, resource: &str, id: u64) {
        apply_v2(
            &mut lock(&self.state),
            V2Op::Delete {
                resource: v2_resource(resource),
                id,
            },
        );
    }

    /// Objects of `resource` the default list shows (archived orders not).
    pub fn object_count(&self, resource: &str) -> usize {
        lock(&self.state)
            .objects
            .get(v2_resource(resource))
            .map_or(0, |m| m.values().filter(|i| !i.deleted).count())
    }

    /// `requests_per_window` requests per fixed `window`, starting with the
    /// first request after the previous window ended (default 150 per 30 s).
    pub fn set_quota(&self, requests_per_window: u32, window: Duration) {
        let mut s = lock(&self.state);
        s.quota = requests_per_window;
        s.window = window;
        s.window_start = None;
        s.used = 0;
    }

    /// Makes the next `n` API calls answer `status` (before auth and quota).
    /// An injected 429 carries no `X-Rate-Limit-*` header: BC-RATE's
    /// "platform load shedding" case.
    pub fn fail_next(&self, status: u16, n: usize) {
        lock(&self.state).fail = (n > 0).then_some((status, n));
    }

    /// `min_date_*`/`max_date_*` as `>=`/`<=` (default, UNCONFIRMED) or as
    /// strict `>`/`<`.
    pub fn set_date_bounds_inclusive(&self, inclusive: bool) {
        lock(&self.state).inclusive = inclusive;
    }

    /// Delays every response by `d` (default none).
    pub fn set_delay(&self, d: Duration) {
        lock(&self.state).delay = d;
    }

    /// All HTTP requests received.
    pub fn requests(&self) -> usize {
        lock(&self.state).requests
    }

    /// GET requests to a v2 collection so far, whatever their outcome
    /// (throttled and injected failures included).
    pub fn list_calls(&self) -> usize {
        lock(&self.state).list_calls
    }

    /// Requests answered 429 because the quota was used up (not injected ones).
    pub fn throttled_calls(&self) -> usize {
        lock(&self.state).throttled_calls
    }

    /// Applies [`upsert`](Self::upsert) right after list call number
    /// `after_calls` (1-based) is answered; at once if already past.
    pub fn schedule_upsert_after_calls(
        &self,
        after_calls: usize,
        resource: &str,
        id: u64,
        modified: DateTime<Utc>,
        created: DateTime<Utc>,
    ) {
        self.schedule(
            after_calls,
            V2Op::Upsert {
                resource: v2_resource(resource),
                id,
                modified,
                created,
            },
        );
    }

    /// Like [`schedule_upsert_after_calls`](Self::schedule_upsert_after_calls)
    /// for [`delete`](Self::delete).
    pub fn schedule_delete_after_calls(&self, after_calls: usize, resource: &str, id: u64) {
        self.schedule(
            after_calls,
            V2Op::Delete {
                resource: v2_resource(resource),
                id,
            },
        );
    }

    fn schedule(&self, after_calls: usize, op: V2Op) {
        let mut s = lock(&self.state);
        s.scheduled.push((after_calls, op));
        let answered = s.list_calls;
        run_scheduled(&mut s, answered);
    }
}

/// `/api/v2/{resource}[.json][/{id}]` or `/stores/{hash}/v2/...`.
fn v2_route(path: &str) -> Option<(&'static str, Option<u64>)> {
    let rest = match path.strip_prefix("/api/v2/") {
        Some(r) => r,
        None => {
            let r = path.strip_prefix("/stores/")?;
            r.split_once("/v2/")?.1
        }
    };
    let rest = rest.trim_end_matches('/');
    let (name, id) = match rest.split_once('/') {
        Some((n, id)) => (n, Some(id)),
        None => (rest, None),
    };
    let name = name.strip_suffix(".json").unwrap_or(name);
    let resource = V2_RESOURCES.into_iter().find(|r| *r == name)?;
    match id {
        None => Some((resource, None)),
        Some(id) => {
            let id = id.strip_suffix(".json").unwrap_or(id);
            id.parse().ok().map(|n| (resource, Some(n)))
        }
    }
}

/// A v2 error body: `[{"status":N,"message":"..."}]`.
fn v2_error(status: u16, message: &str) -> ApiResponse {
    ApiResponse {
        status,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: json!([{ "status": status, "message": message }])
            .to_string()
            .into_bytes(),
    }
}

fn rate_headers(resp: &mut ApiResponse, quota: u32, left: u32, window: Duration, reset: Duration) {
    for (k, v) in [
        (
            "X-Rate-Limit-Time-Window-Ms",
            window.as_millis().to_string(),
        ),
        (
            "X-Rate-Limit-Time-Reset-Ms",
            reset.as_millis().max(1).to_string(),
        ),
        ("X-Rate-Limit-Requests-Quota", quota.to_string()),
        ("X-Rate-Limit-Requests-Left", left.to_string()),
    ] {
        resp.headers.push((k.to_string(), v));
    }
}

fn authorized(s: &BcState, req: &ApiRequest) -> bool {
    if let (Some(token), Some(given)) = (&s.oauth_token, req.header("x-auth-token")) {
        if given == token {
            return true;
        }
    }
    req.header("authorization")
        .and_then(|h| {
            let (scheme, rest) = h.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("basic")
                .then(|| STANDARD.decode(rest.trim()).ok())
                .flatten()
        })
        .and_then(|raw| String::from_utf8(raw).ok())
        .is_some_and(|pair| pair == format!("{}:{}", s.username, s.api_token))
}

/// `/stores/{hash}/v3/catalog/products` or `/stores/{hash}/v3/customers`,
/// with the path's store hash.
fn v3_route(path: &str) -> Option<(&str, &'static str)> {
    let rest = path.strip_prefix("/stores/")?;
    let (hash, rest) = rest.split_once("/v3/")?;
    match rest.trim_end_matches('/') {
        "catalog/products" => Some((hash, "products")),
        "customers" => Some((hash, "customers")),
        _ => None,
    }
}

async fn handle(state: Arc<Mutex<BcState>>, req: ApiRequest) -> ApiResponse {
    let delay = lock(&state).delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if req.path == "/oauth2/token" {
        return token(&mut lock(&state), &req);
    }
    let route = match v3_route(&req.path) {
        Some((hash, resource)) => {
            if hash != lock(&state).store_hash {
                return v2_error(404, "The requested store was not found.");
            }
            Some(Route::V3(resource))
        }
        None => v2_route(&req.path).map(|(r, id)| Route::V2(r, id)),
    };
    let listing = matches!(route, Some(Route::V2(_, None) | Route::V3(_)));
    let call = (req.method == Method::GET && listing).then(|| {
        let mut s = lock(&state);
        s.list_calls += 1;
        if matches!(route, Some(Route::V3(_))) {
            s.v3_calls += 1;
        }
        s.list_calls
    });
    let resp = respond(&mut lock(&state), &req, route);
    if let Some(n) = call {
        run_scheduled(&mut lock(&state), n);
    }
    resp
}

/// The app-install token exchange (auth.mdx "Requesting the access_token"):
/// JSON `{client_id, client_secret, code, context, scope, grant_type,
/// redirect_uri}` → `{access_token, scope, user, owner, context,
/// account_uuid}`. BigCommerce does not document the error answer: a wrong,
/// used or foreign code is 400 `{"error": "Invalid grant"}` here (UNCONFIRMED).
fn token(s: &mut BcState, req: &ApiRequest) -> ApiResponse {
    s.token_calls += 1;
    if req.method != Method::POST {
        return json_response(405, &json!({ "error": "Method not allowed" }));
    }
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let field = |name: &str| body.get(name).and_then(Value::as_str).unwrap_or_default();
    let Some(app) = s.app.clone() else {
        return json_response(401, &json!({ "error": "Invalid client" }));
    };
    if field("client_id") != app.client_id || field("client_secret") != app.client_secret {
        return json_response(401, &json!({ "error": "Invalid client" }));
    }
    let context = format!("stores/{}", s.store_hash);
    let known = s.codes.iter().position(|(code, _)| code == field("code"));
    let valid = field("grant_type") == "authorization_code"
        && field("redirect_uri") == app.redirect_uri
        && field("context") == context;
    let Some(index) = known.filter(|_| valid) else {
        return json_response(400, &json!({ "error": "Invalid grant" }));
    };
    let (_, scope) = s.codes.remove(index);
    let access_token = format!("tok-{}-{}", s.store_hash, s.token_calls);
    s.oauth_token = Some(access_token.clone());
    json_response(
        200,
        &json!({
            "access_token": access_token,
            "scope": scope,
            "user": { "id": 24654, "username": "merchant@example.com", "email": "merchant@example.com" },
            "owner": { "id": 12345, "username": "owner@example.com", "email": "owner@example.com" },
            "context": context,
            "account_uuid": "12345678-90ab-cdef-1234-567890abcdef"
        }),
    )
}

fn basic_authorized(s: &BcState, req: &ApiRequest) -> bool {
    req.header("authorization")
        .and_then(|h| {
            let (scheme, rest) = h.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("basic")
                .then(|| STANDARD.decode(rest.trim()).ok())
                .flatten()
        })
        .and_then(|raw| String::from_utf8(raw).ok())
        .is_some_and(|pair| pair == format!("{}:{}", s.username, s.api_token))
}

fn respond(s: &mut BcState, req: &ApiRequest, route: Option<Route>) -> ApiResponse {
    s.requests += 1;
    let now = Instant::now();
    if s.window_start.is_none_or(|start| now >= start + s.window) {
        s.window_start = Some(now);
        s.used = 0;
    }
    let reset = (s.window_start.unwrap_or(now) + s.window).saturating_duration_since(now);
    let (quota, window) = (s.quota, s.window);
    if let Some((status, n)) = s.fail {
        s.fail = (n > 1).then_some((status, n - 1));
        let mut resp = v2_error(status, "Simulated failure.");
        if status != 429 {
            rate_headers(
                &mut resp,
                quota,
                quota.saturating_sub(s.used),
                window,
                reset,
            );
        }
        return resp;
    }
    // v3 is OAuth only (`X-Auth-Token`); v2 takes either.
    let token_ok =
        matches!((&s.oauth_token, req.header("x-auth-token")), (Some(t), Some(g)) if t == g);
    let allowed = match route {
        Some(Route::V3(_)) => token_ok,
        _ => authorized(s, req),
    };
    if !allowed {
        let mut resp = v2_error(401, "You are not authorized to access this resource.");
        rate_headers(
            &mut resp,
            quota,
            quota.saturating_sub(s.used),
            window,
            reset,
        );
        return resp;
    }
    if s.used >= quota {
        s.throttled_calls += 1;
        let mut resp = v2_error(429, "Too Many Requests");
        rate_headers(&mut resp, quota, 0, window, reset);
        return resp;
    }
    s.used += 1;
    let left = quota - s.used;
    let legacy = basic_authorized(s, req);
    if legacy && s.hourly_left == 0 {
        // What the legacy API answered past the hourly quota is UNCONFIRMED.
        let mut resp = v2_error(509, "You have exceeded your hourly API limit.");
        resp.headers
            .push(("X-BC-ApiLimit-Remaining".into(), "0".into()));
        return resp;
    }
    let mut resp = match (route, req.method == Method::GET) {
        (Some(Route::V2(resource, None)), true) => list(s, req, resource),
        (Some(Route::V3(resource)), true) => list_v3(s, req, resource),
        (Some(Route::V2(resource, Some(id))), true) => {
            match s.objects.get(resource).and_then(|m| m.get(&id)) {
                Some(item) => json_response(200, &v2_json(&s.base_url, resource, item)),
                None => v2_error(404, "The requested resource was not found."),
            }
        }
        (Some(_), false) => v2_error(405, "The requested method is not supported."),
        (None, _) => v2_error(404, "The requested resource was not found."),
    };
    rate_headers(&mut resp, quota, left, window, reset);
    if legacy {
        s.hourly_left = s.hourly_left.saturating_sub(1);
        resp.headers
            .push(("X-BC-ApiLimit-Remaining".into(), s.hourly_left.to_string()));
    }
    resp
}

fn json_response(status: u16, body: &Value) -> ApiResponse {
    ApiResponse {
        status,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: body.to_string().into_bytes(),
    }
}

fn list(s: &BcState, req: &ApiRequest, resource: &'static str) -> ApiResponse {
    let q: Vec<(String, String)> =
        url::form_urlencoded::parse(req.query.as_deref().unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    let get = |name: &str| {
        q.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let invalid = |name: &str| v2_error(400, &format!("The field '{name}' is invalid."));
    let mut bounds: Vec<(&str, DateTime<Utc>)> = Vec::new();
    for name in [
        "min_date_created",
        "max_date_created",
        "min_date_modified",
        "max_date_modified",
    ] {
        if let Some(raw) = get(name) {
            match parse_v2_date(raw) {
                Some(t) => bounds.push((name, t)),
                None => return invalid(name),
            }
        }
    }
    let mut ids: Vec<(&str, u64)> = Vec::new();
    for name in ["min_id", "max_id"] {
        if let Some(raw) = get(name) {
            match raw.trim().parse() {
                Ok(n) => ids.push((name, n)),
                Err(_) => return invalid(name),
            }
        }
    }
    let positive = |name: &str, default: u64| -> Result<u64, ApiResponse> {
        match get(name) {
            None => Ok(default),
            Some(raw) => match raw.trim().parse::<u64>() {
                Ok(n) if n >= 1 => Ok(n),
                _ => Err(invalid(name)),
            },
        }
    };
    let limit = match positive("limit", DEFAULT_LIMIT) {
        Ok(n) => n.min(MAX_LIMIT),
        Err(resp) => return resp,
    };
    let page = match positive("page", 1) {
        Ok(n) => n,
        Err(resp) => return resp,
    };
    // Orders accept `sort=<field>:<asc|desc>` (BC-ORD2); the default, and the
    // only order for products and customers here, is id ascending.
    let mut sort = ("id", false);
    if resource == "orders" {
        if let Some(raw) = get("sort") {
            let (field, dir) = raw.split_once(':').unwrap_or((raw, "asc"));
            let field = match field {
                "id" => "id",
                "date_created" => "date_created",
                "date_modified" => "date_modified",
                _ => return invalid("sort"),
            };
            sort = (field, dir.eq_ignore_ascii_case("desc"));
        }
    }
    let inclusive = s.inclusive;
    // Archived orders only with `is_deleted=true` (the parameter "If the
    // order was deleted or archived.", BC-ORD2 before commit 5bfc83e2).
    let archived = resource == "orders" && get("is_deleted").is_some_and(|v| v == "true");
    let mut items: Vec<&V2Item> = s
        .objects
        .get(resource)
        .map(|m| m.values().collect())
        .unwrap_or_default();
    items.retain(|i| i.deleted == archived);
    items.retain(|i| {
        bounds.iter().all(|(name, t)| {
            let v = if name.ends_with("created") {
                i.created
            } else {
                i.modified
            };
            match (name.starts_with("min"), inclusive) {
                (true, true) => v >= *t,
                (true, false) => v > *t,
                (false, true) => v <= *t,
                (false, false) => v < *t,
            }
        }) && ids.iter().all(|(name, n)| {
            if *name == "min_id" {
                i.id >= *n
            } else {
                i.id <= *n
            }
        })
    });
    items.sort_by(|a, b| {
        let ord = match sort.0 {
            "date_created" => (a.created, a.id).cmp(&(b.created, b.id)),
            "date_modified" => (a.modified, a.id).cmp(&(b.modified, b.id)),
            _ => a.id.cmp(&b.id),
        };
        if sort.1 {
            ord.reverse()
        } else {
            ord
        }
    });
    let body: Vec<Value> = items
        .into_iter()
        .skip(((page - 1) * limit) as usize)
        .take(limit as usize)
        .map(|i| v2_json(&s.base_url, resource, i))
        .collect();
    if body.is_empty() {
        // v2 answers an empty page with 204 and no body.
        return ApiResponse {
            status: 204,
            headers: vec![],
            body: vec![],
        };
    }
    json_response(200, &Value::Array(body))
}

/// A v3 listing (`products_catalog.v3.yml`, `customers.v3.yml`):
/// `date_modified:min`/`:max` (ISO 8601 or a date), products
/// `sort=date_modified&direction=asc|desc`, customers
/// `sort=date_modified:asc|desc`, `limit` (default 50, at most 250), `page`;
/// answered `{"data": [...], "meta": {"pagination": {total, count, per_page,
/// current_page, total_pages, links}}}`, an empty page included (v3 has no
/// 204).
fn list_v3(s: &BcState, req: &ApiRequest, resource: &'static str) -> ApiResponse {
    let q: Vec<(String, String)> =
        url::form_urlencoded::parse(req.query.as_deref().unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    let get = |name: &str| {
        q.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let invalid = |name: &str| {
        json_response(
            422,
            &json!({ "status": 422, "title": format!("The field '{name}' is invalid.") }),
        )
    };
    let mut min = None;
    let mut max = None;
    for (name, slot) in [
        ("date_modified:min", &mut min),
        ("date_modified:max", &mut max),
    ] {
        if let Some(raw) = get(name) {
            match parse_v2_date(raw) {
                Some(t) => *slot = Some(t),
                None => return invalid(name),
            }
        }
    }
    let number = |name: &str, default: u64| -> Result<u64, ApiResponse> {
        match get(name) {
            None => Ok(default),
            Some(raw) => raw
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| invalid(name)),
        }
    };
    let limit = match number("limit", DEFAULT_LIMIT) {
        Ok(n) => n.min(MAX_LIMIT),
        Err(r) => return r,
    };
    let page = match number("page", 1) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let by_modified = match (resource, get("sort")) {
        ("customers", Some(sort)) => sort.starts_with("date_modified"),
        (_, Some(sort)) => sort == "date_modified",
        _ => false,
    };
    let descending = match resource {
        "customers" => get("sort").is_some_and(|s| s.ends_with(":desc")),
        _ => get("direction") == Some("desc"),
    };
    let inclusive = s.inclusive;
    let mut items: Vec<&V2Item> = s
        .objects
        .get(resource)
        .map(|m| m.values().collect())
        .unwrap_or_default();
    items.retain(|i| {
        min.is_none_or(|t| {
            if inclusive {
                i.modified >= t
            } else {
                i.modified > t
            }
        }) && max.is_none_or(|t| {
            if inclusive {
                i.modified <= t
            } else {
                i.modified < t
            }
        })
    });
    if by_modified {
        items.sort_by_key(|i| (i.modified, i.id));
    }
    if descending {
        items.reverse();
    }
    let total = items.len() as u64;
    let total_pages = total.div_ceil(limit).max(1);
    let data: Vec<Value> = items
        .into_iter()
        .skip(((page - 1) * limit) as usize)
        .take(limit as usize)
        .map(|i| v3_json(resource, i))
        .collect();
    let mut links = json!({ "current": format!("?page={page}&limit={limit}") });
    if page < total_pages {
        links["next"] = json!(format!("?page={}&limit={limit}", page + 1));
    }
    json_response(
        200,
        &json!({
            "data": data,
            "meta": { "pagination": {
                "total": total, "count": data.len(), "per_page": limit,
                "current_page": page, "total_pages": total_pages, "links": links
            }}
        }),
    )
}

/// A v3 object: products date as `2018-08-15T14:48:31+00:00`, customers as
/// `2019-08-24T14:15:22Z` (the specs' examples).
fn v3_json(resource: &str, item: &V2Item) -> Value {
    match resource {
        "customers" => json!({
            "id": item.id,
            "email": format!("customer{}@example.com", item.id),
            "first_name": "Jane",
            "last_name": "Doe",
            "company": "BigCommerce",
            "phone": "1234567890",
            "customer_group_id": 0,
            "notes": "",
            "tax_exempt_category": "",
            "date_created": item.created.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "date_modified": item.modified.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "accepts_product_review_abandoned_cart_emails": true,
            "channel_ids": [1]
        }),
        _ => json!({
            "id": item.id,
            "name": format!("Product {}", item.id),
            "type": "physical",
            "sku": format!("SKU-{}", item.id),
            "price": 10.0,
            "is_visible": true,
            "inventory_level": 0,
            "availability": "available",
            "date_created": item.created.format("%Y-%m-%dT%H:%M:%S+00:00").to_string(),
            "date_modified": item.modified.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
        }),
    }
}

fn sub_resource(base_url: &str, path: &str) -> Value {
    json!({ "url": format!("{base_url}/api/v2{path}"), "resource": path })
}

/// A v2 object, trimmed from the docs' examples (BC-ORD2 `order_Resp`,
/// Customers V2 `customer_Full`); product fields are the legacy v2 names.
fn v2_json(base_url: &str, resource: &str, item: &V2Item) -> Value {
    let (id, created, modified) = (item.id, rfc2822(&item.created), rfc2822(&item.modified));
    match resource {
        "orders" => json!({
            "id": id,
            "customer_id": 11,
            "date_created": created,
            "date_modified": modified,
            "date_shipped": "",
            "status_id": 7,
            "status": "Awaiting Payment",
            "subtotal_ex_tax": "62.6793",
            "subtotal_inc_tax": "67.8400",
            "subtotal_tax": "4.4000",
            "total_ex_tax": "64.5300",
            "total_inc_tax": "69.8400",
            "total_tax": "5.3100",
            "items_total": 4,
            "payment_method": "Cash",
            "payment_status": "authorized",
            "refunded_amount": "0.0000",
            "currency_code": "USD",
            "is_deleted": item.deleted,
            "billing_address": {
                "first_name": "Jane", "last_name": "Doe", "street_1": "123 Main Street",
                "city": "Austin", "state": "Texas", "zip": "78751",
                "country": "United States", "country_iso2": "US", "email": "janedoe@example.com"
            },
            "products": sub_resource(base_url, &format!("/orders/{id}/products")),
            "shipping_addresses": sub_resource(base_url, &format!("/orders/{id}/shippingaddresses")),
            "coupons": sub_resource(base_url, &format!("/orders/{id}/coupons"))
        }),
        "customers" => json!({
            "id": id,
            "company": "BigCommerce",
            "first_name": "Jane",
            "last_name": "Doe",
            "email": format!("customer{id}@example.com"),
            "phone": "1234567890",
            "form_fields": null,
            "date_created": created,
            "date_modified": modified,
            "store_credit": "0.0000",
            "registration_ip_address": "12.345.678.910",
            "customer_group_id": 2,
            "notes": "",
            "tax_exempt_category": "",
            "reset_pass_on_login": false,
            "accepts_marketing": true,
            "addresses": sub_resource(base_url, &format!("/customers/{id}/addresses"))
        }),
        _ => json!({
            "id": id,
            "name": format!("Product {id}"),
            "type": "physical",
            "sku": format!("SKU-{id}"),
            "price": "10.0000",
            "is_visible": true,
            "inventory_level": 0,
            "availability": "available",
            "condition": "New",
            "custom_url": format!("/product-{id}/"),
            "date_created": created,
            "date_modified": modified,
            "images": sub_resource(base_url, &format!("/products/{id}/images"))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_webhooks_reference_vector() {
        // SW-PY test_sign_function (docs/vendors/webhooks.md §4), re-checked
        // in Python: key = base64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").
        let key = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(whsec(&key), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        assert_eq!(
            standard_webhooks_signature(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn bigcommerce_client_secret_signature() {
        // Python: "v1," + base64(hmac.new(b"my-client-secret",
        //   b'msg_1.1700000000.{"scope":"store/order/created"}', sha256).digest())
        assert_eq!(
            standard_webhooks_signature(
                b"my-client-secret",
                "msg_1",
                1700000000,
                br#"{"scope":"store/order/created"}"#
            ),
            "v1,xtUrGYVOtIhKYzPAkOuzC+pyWdT0QX7KW5HaYrMW4MU="
        );
        // Python: "whsec_" + base64(b"my-client-secret")
        assert_eq!(whsec(b"my-client-secret"), "whsec_bXktY2xpZW50LXNlY3JldA==");
        let d = delivery(
            &json!({"scope": "store/order/created"}),
            &[("X-Custom-Auth", "s3cret")],
            Some(b"my-client-secret"),
            "msg_1",
            1700000000,
        );
        assert_eq!(d.body, br#"{"scope":"store/order/created"}"#);
        assert_eq!(
            d.header("webhook-signature"),
            Some("v1,xtUrGYVOtIhKYzPAkOuzC+pyWdT0QX7KW5HaYrMW4MU=")
        );
        assert_eq!(d.header("x-custom-auth"), Some("s3cret"));
        let unsigned = delivery(&json!({}), &[], None, "msg_1", 1);
        assert!(unsigned.header("webhook-signature").is_none());
    }

    #[test]
    fn webhook_shape() {
        let w = webhook(
            "store/order/created",
            "abc123",
            250,
            "dd70c0976e06b67aaf671e73f49dcb79230ebf9d",
            1561479335,
        );
        assert_eq!(w["store_id"], "1025646");
        assert_eq!(w["data"], json!({"type": "order", "id": 250}));
        assert_eq!(w["producer"], "stores/abc123");
        assert_eq!(data_type("store/customer/address/created"), "customer");
        assert_eq!(dedupe_hash("x").len(), 40);
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    struct Got {
        status: u16,
        headers: reqwest::header::HeaderMap,
        body: Vec<u8>,
    }

    impl Got {
        fn json(&self) -> Value {
            serde_json::from_slice(&self.body).unwrap()
        }
        fn ids(&self) -> Vec<u64> {
            self.json()
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["id"].as_u64().unwrap())
                .collect()
        }
        fn header(&self, name: &str) -> &str {
            self.headers[name].to_str().unwrap()
        }
    }

    async fn bc_get(url: &str, auth: Option<(&str, &str)>, token: Option<&str>) -> Got {
        let mut r = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .get(url)
            .header("Accept", "application/json");
        if let Some((u, p)) = auth {
            r = r.basic_auth(u, Some(p));
        }
        if let Some(t) = token {
            r = r.header("X-Auth-Token", t);
        }
        let r = r.send().await.unwrap();
        Got {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            body: r.bytes().await.unwrap().to_vec(),
        }
    }

    async fn get(url: &str) -> Got {
        bc_get(url, Some(("admin", "tok")), None).await
    }

    #[test]
    fn v2_dates() {
        let t = at("2012-11-20T00:00:00Z");
        assert_eq!(rfc2822(&t), "Tue, 20 Nov 2012 00:00:00 +0000");
        assert_eq!(parse_v2_date("Tue, 20 Nov 2012 00:00:00 +0000"), Some(t));
        assert_eq!(parse_v2_date("Mon, 19 Nov 2012 19:00:00 -0500"), Some(t));
        assert_eq!(parse_v2_date("2012-11-19T21:00:00.000-03:00"), Some(t));
        assert_eq!(parse_v2_date("2012-11-20T00:00:00"), Some(t));
        assert_eq!(parse_v2_date("2012-11-20"), Some(t));
        assert_eq!(parse_v2_date("yesterday"), None);
    }

    #[tokio::test]
    async fn pages_by_id_then_204() {
        let store = start_store("admin", "tok").await;
        let t0 = at("2026-05-01T10:00:00Z");
        // Inserted out of id order, modified in reverse id order.
        for id in (1..=120).rev() {
            store.upsert("orders", id, t0 - chrono::Duration::seconds(id as i64), t0);
        }
        let url = store.list_url("orders");
        let r = get(&url).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), "application/json");
        assert_eq!(
            r.ids(),
            (1..=50).collect::<Vec<_>>(),
            "default limit 50, id asc"
        );
        assert_eq!(r.header("x-rate-limit-requests-quota"), "150");
        assert_eq!(r.header("x-rate-limit-requests-left"), "149");
        assert_eq!(r.header("x-rate-limit-time-window-ms"), "30000");
        let reset: u64 = r.header("x-rate-limit-time-reset-ms").parse().unwrap();
        assert!(reset > 0 && reset <= 30000);
        let o = &r.json()[0];
        assert_eq!(o["date_created"], "Fri, 01 May 2026 10:00:00 +0000");
        assert_eq!(o["date_modified"], "Fri, 01 May 2026 09:59:59 +0000");
        assert_eq!(o["products"]["resource"], "/orders/1/products");

        let r = get(&format!("{url}?limit=500&page=1")).await;
        assert_eq!(r.ids().len(), 120, "limit is capped at 250");
        let r = get(&format!("{url}?limit=100&page=2")).await;
        assert_eq!(r.ids(), (101..=120).collect::<Vec<_>>());
        // Past the end: 204 No Content, empty body, still rate-limit headers.
        let r = get(&format!("{url}?limit=100&page=3")).await;
        assert_eq!(r.status, 204);
        assert!(r.body.is_empty());
        assert!(r.headers.get("content-type").is_none());
        assert_eq!(r.header("x-rate-limit-requests-left"), "146");
        let r = get(&format!("{}?page=1", store.list_url("customers"))).await;
        assert_eq!(r.status, 204);

        let r = get(&format!("{url}?sort=date_modified:asc&limit=3")).await;
        assert_eq!(r.ids(), [120, 119, 118]);
        let r = get(&format!("{url}.json?min_id=119")).await;
        assert_eq!(r.ids(), [119, 120]);
        let r = get(&format!("{url}?limit=0")).await;
        assert_eq!(r.status, 400);
        assert_eq!(r.json()[0]["status"], 400);

        store.delete("orders", 119);
        assert_eq!(store.object_count("orders"), 119);
        let r = get(&format!("{url}?min_id=119")).await;
        assert_eq!(r.ids(), [120]);
        // Archived, not gone: listed with `is_deleted=true`, readable by id.
        let r = get(&format!("{url}?is_deleted=true")).await;
        assert_eq!(r.ids(), [119]);
        assert_eq!(r.json()[0]["is_deleted"], true);
        let r = get(&format!("{url}/119")).await;
        assert_eq!(r.json()["is_deleted"], true);
        let r = get(&format!("{url}/120")).await;
        assert_eq!(r.json()["id"], 120);
        assert_eq!(store.list_calls(), 10, "item GETs are not list calls");
    }

    #[tokio::test]
    async fn min_date_modified_bounds() {
        let store = start_store("admin", "tok").await;
        let t = at("2026-06-01T12:00:00Z");
        for (id, secs) in [(1, -1), (2, 0), (3, 1)] {
            store.upsert("products", id, t + chrono::Duration::seconds(secs), t);
        }
        let url = store.list_url("products");
        // RFC 2822 needs its `+` percent-encoded in the query.
        let rfc = "Mon,%2001%20Jun%202026%2012:00:00%20%2B0000";
        assert_eq!(
            get(&format!("{url}?min_date_modified={rfc}")).await.ids(),
            [2, 3]
        );
        assert_eq!(
            get(&format!("{url}?max_date_modified={rfc}")).await.ids(),
            [1, 2]
        );
        let iso = "2026-06-01T09:00:00.000-03:00";
        assert_eq!(
            get(&format!("{url}?min_date_modified={iso}")).await.ids(),
            [2, 3]
        );
        store.set_date_bounds_inclusive(false);
        assert_eq!(
            get(&format!("{url}?min_date_modified={iso}")).await.ids(),
            [3]
        );
        // An unencoded `+` arrives as a space: not a date.
        let r = get(&format!(
            "{url}?min_date_modified=Mon,%2001%20Jun%202026%2012:00:00%20+0000"
        ))
        .await;
        assert_eq!(r.status, 400);
        assert_eq!(
            r.json()[0]["message"],
            "The field 'min_date_modified' is invalid."
        );
        let r = get(&format!("{url}?min_date_created=2026-06-01T12:00:01Z")).await;
        assert_eq!(r.status, 204);
    }

    #[tokio::test]
    async fn quota_429_then_reset() {
        let store = start_store("admin", "tok").await;
        store.upsert(
            "customers",
            5,
            at("2026-01-01T00:00:00Z"),
            at("2026-01-01T00:00:00Z"),
        );
        store.set_quota(3, Duration::from_millis(400));
        let url = store.list_url("customers");
        for left in ["2", "1", "0"] {
            let r = get(&url).await;
            assert_eq!(r.status, 200);
            assert_eq!(r.header("x-rate-limit-requests-left"), left);
            assert_eq!(r.header("x-rate-limit-requests-quota"), "3");
        }
        let r = get(&url).await;
        assert_eq!(r.status, 429);
        assert_eq!(r.header("x-rate-limit-requests-left"), "0");
        assert_eq!(r.header("x-rate-limit-time-window-ms"), "400");
        let reset: u64 = r.header("x-rate-limit-time-reset-ms").parse().unwrap();
        assert!((1..=400).contains(&reset), "{reset}");
        assert_eq!(store.throttled_calls(), 1);
        assert_eq!(store.list_calls(), 4);
        tokio::time::sleep(Duration::from_millis(reset + 20)).await;
        let r = get(&url).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-rate-limit-requests-left"), "2");
        assert_eq!(r.json()[0]["email"], "customer5@example.com");
        assert_eq!(store.throttled_calls(), 1);
    }

    #[tokio::test]
    async fn auth_injected_failures_and_mid_scan_changes() {
        let store = start_store("admin", "tok").await;
        let t = at("2026-07-01T00:00:00Z");
        for id in 1..=4 {
            store.upsert("orders", id, t, t);
        }
        let url = format!("{}?limit=2", store.list_url("orders"));
        let r = bc_get(&url, None, None).await;
        assert_eq!(r.status, 401);
        assert_eq!(r.json()[0]["status"], 401);
        assert!(r.headers.get("x-rate-limit-requests-left").is_some());
        assert_eq!(
            bc_get(&url, Some(("admin", "nope")), None).await.status,
            401
        );
        assert_eq!(bc_get(&url, None, Some("oauth-1")).await.status, 401);
        store.set_oauth_token("oauth-1");
        assert_eq!(bc_get(&url, None, Some("oauth-1")).await.status, 200);
        let oauth_path = format!("{}/stores/abc123/v2/orders?limit=2", store.base_url);
        assert_eq!(
            bc_get(&oauth_path, None, Some("oauth-1")).await.ids(),
            [1, 2]
        );

        store.fail_next(503, 1);
        let r = get(&url).await;
        assert_eq!(r.status, 503);
        assert!(r.headers.get("x-rate-limit-requests-left").is_some());
        // An injected 429 is load shedding: no rate-limit headers at all.
        store.fail_next(429, 1);
        let r = get(&url).await;
        assert_eq!(r.status, 429);
        assert!(r.headers.get("x-rate-limit-time-reset-ms").is_none());
        assert_eq!(store.throttled_calls(), 0);

        // A new order appears after the next page-1 call is answered.
        let before = store.list_calls();
        store.schedule_upsert_after_calls(before + 1, "orders", 0, t, t);
        assert_eq!(get(&format!("{url}&page=1")).await.ids(), [1, 2]);
        // Ids shift right: page 2 repeats order 2.
        assert_eq!(get(&format!("{url}&page=2")).await.ids(), [2, 3]);
        store.schedule_delete_after_calls(0, "orders", 0);
        assert_eq!(store.object_count("orders"), 4);

        store.set_delay(Duration::from_millis(120));
        let started = Instant::now();
        assert_eq!(get(&url).await.status, 200);
        assert!(started.elapsed() >= Duration::from_millis(120));
    }
}
