//! The webhooks REST controller (`WC_REST_Webhooks_Controller`, v3 over
//! the v2/v1 controllers in includes/rest-api/Controllers/Version{1,2}/):
//! list, get, create (with the synchronous ping), update, delete, batch.

use std::sync::Mutex;

use chrono::NaiveDateTime;
use http::Method;
use serde_json::{json, Map, Value};
use shared::api::{ApiRequest, ApiResponse};

use super::auth::Auth;
use super::deliveries::{is_valid_topic, ping, post, topic_hooks, user_agent, PingRecord};
use super::php::php_query;
use super::query::wp_page_link;
use super::rest::{cannot, invalid_param, params, wp_error, wp_error_data, wp_json, WpError};
use super::{generate_secret, lock, store_now, wc_date, StoreState};

/// Path of the webhooks collection under a store's base URL (§1.7).
pub const WEBHOOKS_PATH: &str = "/wp-json/wc/v3/webhooks";

/// `woocommerce_rest_batch_items_limit` default of
/// `WC_REST_Controller::check_batch_limit()` (create + update + delete).
pub const BATCH_LIMIT: usize = 100;

/// A webhook as the store holds it (`WC_Webhook` data).
#[derive(Debug, Clone)]
pub(super) struct Hook {
    pub id: u64,
    pub name: String,
    pub status: String,
    pub topic: String,
    pub delivery_url: String,
    pub secret: String,
    pub date_created: NaiveDateTime,
    pub date_modified: NaiveDateTime,
    pub failure_count: u32,
    pub pending_delivery: bool,
}

/// `WC_REST_Webhooks_V2_Controller::prepare_item_for_response()`: no
/// secret; `date_x` site-local, `date_x_gmt` UTC.
fn hook_json(s: &StoreState, h: &Hook) -> Value {
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
        "date_created": wc_date(&s.zone.local(h.date_created)),
        "date_created_gmt": wc_date(&h.date_created),
        "date_modified": wc_date(&s.zone.local(h.date_modified)),
        "date_modified_gmt": wc_date(&h.date_modified),
        "_links": {
            "self": [{ "href": format!("{}{WEBHOOKS_PATH}/{}", s.base_url, h.id) }],
            "collection": [{ "href": format!("{}{WEBHOOKS_PATH}", s.base_url) }]
        }
    })
}

pub(super) enum WebhookRoute {
    Collection,
    Item(u64),
    Batch,
}

pub(super) fn match_route(route: &str) -> Option<WebhookRoute> {
    let route = route.trim_end_matches('/');
    let rest = route.strip_prefix("/wc/v3/webhooks")?;
    if rest.is_empty() {
        return Some(WebhookRoute::Collection);
    }
    let id = rest.strip_prefix('/')?;
    if id == "batch" {
        return Some(WebhookRoute::Batch);
    }
    if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
        return id.parse().ok().map(WebhookRoute::Item);
    }
    None
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

const FIELDS: [&str; 5] = ["name", "topic", "delivery_url", "secret", "status"];

pub(super) async fn webhooks_request(
    state: &Mutex<StoreState>,
    req: &ApiRequest,
    auth: Auth,
    route: WebhookRoute,
) -> ApiResponse {
    let params = match params(req) {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let anonymous = matches!(auth, Auth::Anonymous);
    match (route, req.method.clone()) {
        (WebhookRoute::Collection, Method::GET) => {
            if anonymous {
                return cannot(&req.method, false);
            }
            list(state, req, &params)
        }
        (WebhookRoute::Collection, Method::POST) => {
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
            if let Err(resp) = string_params(&params, &FIELDS) {
                return resp;
            }
            if anonymous {
                return cannot(&req.method, false);
            }
            match create_item(state, &params).await {
                Ok((id, body)) => {
                    let mut resp = wp_json(201, &body);
                    let base = lock(state).base_url.clone();
                    resp.headers
                        .push(("Location".into(), format!("{base}{WEBHOOKS_PATH}/{id}")));
                    resp
                }
                Err(e) => e.response(),
            }
        }
        (WebhookRoute::Batch, Method::POST | Method::PUT | Method::PATCH) => {
            if anonymous {
                return wp_error(
                    401,
                    "woocommerce_rest_cannot_batch",
                    "Sorry, you are not allowed to batch manipulate this resource.",
                );
            }
            batch(state, &params).await
        }
        (WebhookRoute::Item(id), Method::GET) => {
            if anonymous {
                return cannot(&req.method, true);
            }
            if id == 0 {
                return WpError::new(
                    404,
                    "woocommerce_rest_shop_webhook_invalid_id",
                    "Invalid ID.",
                )
                .response();
            }
            let s = lock(state);
            match s.hooks.get(&id) {
                Some(h) => wp_json(200, &hook_json(&s, h)),
                None => invalid_id().response(),
            }
        }
        (WebhookRoute::Item(id), Method::POST | Method::PUT | Method::PATCH) => {
            if let Err(resp) = string_params(&params, &FIELDS) {
                return resp;
            }
            if anonymous {
                return cannot(&req.method, true);
            }
            match update_item(state, id, &params) {
                Ok(body) => wp_json(200, &body),
                Err(e) => e.response(),
            }
        }
        (WebhookRoute::Item(id), Method::DELETE) => {
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
            if anonymous {
                return cannot(&req.method, true);
            }
            match delete_item(state, id, force) {
                Ok(body) => wp_json(200, &body),
                Err(e) => e.response(),
            }
        }
        _ => super::rest::no_route(),
    }
}

fn invalid_id() -> WpError {
    WpError::new(
        400,
        "woocommerce_rest_shop_webhook_invalid_id",
        "ID is invalid.",
    )
}

/// `WC_REST_Webhooks_V1_Controller::get_items()`: `status` filter (default
/// `all`), `X-WP-Total`, `X-WP-TotalPages`, and prev/next links built from
/// all the request's query parameters (`add_query_arg`, unencoded).
fn list(state: &Mutex<StoreState>, req: &ApiRequest, params: &Map<String, Value>) -> ApiResponse {
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
        .map(|h| hook_json(&s, h))
        .collect();
    let mut resp = wp_json(200, &Value::Array(items));
    resp.headers.push(("X-WP-Total".into(), total.to_string()));
    resp.headers
        .push(("X-WP-TotalPages".into(), pages.to_string()));
    let base = format!("{}{}", s.base_url, WEBHOOKS_PATH);
    let q = php_query(req.query.as_deref());
    let mut links = Vec::new();
    if page > 1 {
        let prev = (page - 1).min(pages);
        links.push(format!("<{}>; rel=\"prev\"", wp_page_link(&base, &q, prev)));
    }
    if pages > page {
        links.push(format!(
            "<{}>; rel=\"next\"",
            wp_page_link(&base, &q, page + 1)
        ));
    }
    if !links.is_empty() {
        resp.headers.push(("Link".into(), links.join(", ")));
    }
    resp
}

/// `WC_REST_Webhooks_V1_Controller::create_item()`: validate topic and URL,
/// save the hook `active` (a requested `status` is ignored), build the
/// response, then `$webhook->deliver_ping()` synchronously (its result is
/// ignored); then the store's create latency (a slow host) before answering.
async fn create_item(
    state: &Mutex<StoreState>,
    params: &Map<String, Value>,
) -> Result<(u64, Value), WpError> {
    let topic = str_param(params, "topic");
    if topic.is_empty() || !is_valid_topic(&topic.to_lowercase()) {
        return Err(WpError::new(
            400,
            "woocommerce_rest_shop_webhook_invalid_topic",
            "Webhook topic is required and must be valid.",
        ));
    }
    let delivery_url = str_param(params, "delivery_url");
    if delivery_url.is_empty() || !is_valid_url(delivery_url) {
        return Err(WpError::new(
            400,
            "woocommerce_rest_shop_webhook_invalid_delivery_url",
            "Webhook delivery URL must be a valid URL starting with http:// or https://.",
        ));
    }
    let (id, body, ping_to, version, latency) = {
        let mut s = lock(state);
        let created = store_now(&s);
        let id = s.next_id;
        s.next_id += 1;
        let name = match str_param(params, "name") {
            "" => format!(
                "Webhook created on {}",
                s.zone.local(created).format("%b %d, %Y @ %I:%M %p")
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
        let body = hook_json(&s, &hook);
        s.hooks.insert(id, hook);
        (
            id,
            body,
            s.ping_enabled.then(|| delivery_url.to_string()),
            s.version.clone(),
            s.create_latency,
        )
    };
    if let Some(url) = ping_to {
        let mut p = ping(id);
        p.headers[0].1 = user_agent(&version);
        // `wp_safe_remote_post` defaults: 5 redirects, 5 s timeout, HTTP/1.0.
        let (status, _) = post(&p, &url, reqwest::redirect::Policy::limited(5), 5, true).await;
        let status = (status != 0).then_some(status);
        let mut s = lock(state);
        // Only exactly 200 clears `pending_delivery`.
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
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    Ok((id, body))
}

/// `WC_REST_Webhooks_V1_Controller::update_item()`: topic, delivery URL,
/// secret, status (`active`/`paused`/`disabled`), name. It does NOT touch
/// `failure_count`: a hook re-activated after being disabled keeps its
/// count, so its next failure disables it again. No ping.
fn update_item(
    state: &Mutex<StoreState>,
    id: u64,
    params: &Map<String, Value>,
) -> Result<Value, WpError> {
    let mut s = lock(state);
    let Some(mut hook) = s.hooks.get(&id).cloned() else {
        return Err(invalid_id());
    };
    let topic = str_param(params, "topic");
    if !topic.is_empty() {
        if !is_valid_topic(&topic.to_lowercase()) {
            return Err(WpError::new(
                400,
                "woocommerce_rest_shop_webhook_invalid_topic",
                "Webhook topic must be valid.",
            ));
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
            return Err(WpError::new(
                400,
                "woocommerce_rest_shop_webhook_invalid_delivery_url",
                "Webhook delivery URL must be a valid URL starting with http:// or https://.",
            ));
        }
        hook.delivery_url = delivery_url.to_string();
    }
    let secret = str_param(params, "secret");
    if !secret.is_empty() {
        hook.secret = secret.to_string();
    }
    let status = str_param(params, "status");
    if !status.is_empty() {
        if !["active", "paused", "disabled"].contains(&status.to_lowercase().as_str()) {
            return Err(WpError::new(
                400,
                "woocommerce_rest_shop_webhook_invalid_status",
                "Webhook status must be valid.",
            ));
        }
        // WC_Webhook::set_status(): anything not a known key becomes `disabled`.
        hook.status = if ["active", "paused", "disabled"].contains(&status) {
            status.to_string()
        } else {
            "disabled".to_string()
        };
    }
    let name = str_param(params, "name");
    if !name.is_empty() {
        hook.name = name.to_string();
    }
    hook.date_modified = store_now(&s);
    let body = hook_json(&s, &hook);
    s.hooks.insert(id, hook);
    Ok(body)
}

/// `WC_REST_Webhooks_V1_Controller::delete_item()`: `force` required.
fn delete_item(state: &Mutex<StoreState>, id: u64, force: bool) -> Result<Value, WpError> {
    if !force {
        return Err(WpError::new(
            501,
            "woocommerce_rest_trash_not_supported",
            "Webhooks do not support trashing.",
        ));
    }
    let mut s = lock(state);
    match s.hooks.remove(&id) {
        Some(h) => Ok(hook_json(&s, &h)),
        None => Err(WpError::new(
            404,
            "woocommerce_rest_shop_webhook_invalid_id",
            "Invalid ID.",
        )),
    }
}

fn entries<'a>(params: &'a Map<String, Value>, name: &str) -> &'a [Value] {
    params
        .get(name)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// `WC_REST_Controller::batch_items()` (Version3/class-wc-rest-controller.php):
/// at most [`BATCH_LIMIT`] entries in all (else 413
/// `woocommerce_rest_request_entity_too_large`); each `create` entry runs
/// `create_item` (one synchronous ping each), each `update` entry
/// `update_item`, each `delete` id `delete_item` with `force=true` (id 0
/// skipped). 200 with `create`/`update`/`delete` lists, each key present
/// only when its input list was non-empty; failed entries are
/// `{"id", "error": {"code","message","data":{"status"}}}` (id 0 for creates).
async fn batch(state: &Mutex<StoreState>, params: &Map<String, Value>) -> ApiResponse {
    let (create, update, delete) = (
        entries(params, "create"),
        entries(params, "update"),
        entries(params, "delete"),
    );
    if create.len() + update.len() + delete.len() > BATCH_LIMIT {
        return wp_error(
            413,
            "woocommerce_rest_request_entity_too_large",
            &format!("Unable to accept more than {BATCH_LIMIT} items for this request."),
        );
    }
    let mut out = Map::new();
    if !create.is_empty() {
        let mut results = Vec::new();
        for item in create {
            let p = item.as_object().cloned().unwrap_or_default();
            results.push(match create_item(state, &p).await {
                Ok((_, body)) => body,
                Err(e) => e.batch_entry(json!(0)),
            });
        }
        out.insert("create".into(), Value::Array(results));
    }
    if !update.is_empty() {
        let mut results = Vec::new();
        for item in update {
            let p = item.as_object().cloned().unwrap_or_default();
            let id = p.get("id").cloned().unwrap_or(Value::Null);
            let n = id
                .as_u64()
                .or_else(|| id.as_str().and_then(|s| s.parse().ok()))
                .unwrap_or(0);
            results.push(match update_item(state, n, &p) {
                Ok(body) => body,
                Err(e) => e.batch_entry(id),
            });
        }
        out.insert("update".into(), Value::Array(results));
    }
    if !delete.is_empty() {
        let mut results = Vec::new();
        for raw in delete {
            let id = raw
                .as_u64()
                .or_else(|| raw.as_str().and_then(|s| s.parse().ok()))
                .unwrap_or(0);
            if id == 0 {
                continue;
            }
            results.push(match delete_item(state, id, true) {
                Ok(body) => body,
                Err(e) => e.batch_entry(json!(id)),
            });
        }
        if !results.is_empty() {
            out.insert("delete".into(), Value::Array(results));
        }
    }
    if out.is_empty() {
        // An empty PHP array encodes as `[]`.
        return wp_json(200, &json!([]));
    }
    wp_json(200, &Value::Object(out))
}
