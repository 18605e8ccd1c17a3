//! The WordPress REST server around the controllers: routing
//! (`/wp-json/...` or `?rest_route=`), request parameters, WordPress JSON
//! errors, injected failures, the site index and `system_status`.

use std::sync::{Arc, Mutex};

use http::Method;
use serde_json::{json, Map, Value};
use shared::api::{ApiRequest, ApiResponse};

use super::auth::{authenticate, Auth};
use super::catalog::{catalog_request, catalog_route, run_scheduled};
use super::deliveries::WP_VERSION;
use super::php::{php_json_encode, query_pairs};
use super::webhooks_api::{match_route, webhooks_request};
use super::{lock, store_now, Injected, StoreState};

/// A `WP_Error` a controller returns: `{"code","message","data":{"status"}}`.
#[derive(Debug, Clone)]
pub(super) struct WpError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl WpError {
    pub fn new(status: u16, code: &str, message: &str) -> WpError {
        WpError {
            status,
            code: code.to_string(),
            message: message.to_string(),
        }
    }

    pub fn response(&self) -> ApiResponse {
        wp_error(self.status, &self.code, &self.message)
    }

    /// One failed entry of a batch answer (`WC_REST_Controller::batch_items()`).
    pub fn batch_entry(&self, id: Value) -> Value {
        json!({
            "id": id,
            "error": {
                "code": self.code,
                "message": self.message,
                "data": { "status": self.status }
            }
        })
    }
}

/// A WordPress REST error response: `{"code","message","data":{"status"}}`.
pub(super) fn wp_error(status: u16, code: &str, message: &str) -> ApiResponse {
    wp_error_data(status, code, message, json!({ "status": status }))
}

pub(super) fn wp_error_data(status: u16, code: &str, message: &str, data: Value) -> ApiResponse {
    wp_json(
        status,
        &json!({ "code": code, "message": message, "data": data }),
    )
}

/// A WordPress REST JSON response (encoded by `wp_json_encode`).
pub(super) fn wp_json(status: u16, body: &Value) -> ApiResponse {
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
        404 => no_route(),
        500 => wp_error(
            500,
            "internal_server_error",
            "<p>There has been a critical error on this website.</p>",
        ),
        s => wp_error(s, "simulated_error", "Simulated failure."),
    }
}

/// A page from something in front of WordPress, not a JSON error: a
/// Cloudflare "Access denied" (403), WordPress's maintenance page (503,
/// `wp_maintenance()` with `Retry-After: 600`), or an nginx error page.
fn injected_html(status: u16, host: &str) -> ApiResponse {
    let mut headers = vec![(
        "Content-Type".to_string(),
        "text/html; charset=UTF-8".to_string(),
    )];
    let body = match status {
        403 => {
            headers.push(("Server".into(), "cloudflare".into()));
            headers.push(("CF-RAY".into(), "8f1c2a3b4d5e6f70-IAD".into()));
            format!(
                "<!DOCTYPE html>\n<html lang=\"en-US\"><head><title>Access denied | {host} used Cloudflare to restrict access</title>\
                 <meta charset=\"UTF-8\" /></head><body><div id=\"cf-wrapper\"><h1>Access denied</h1>\
                 <p>Error code 1020</p><p>You do not have access to {host}.</p>\
                 <p>The site owner may have set restrictions that prevent you from accessing the site.</p>\
                 <span>Cloudflare Ray ID: <strong>8f1c2a3b4d5e6f70</strong></span></div></body></html>\n"
            )
        }
        503 => {
            headers.push(("Retry-After".into(), "600".into()));
            "<!DOCTYPE html>\n<html lang=\"en-US\"><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\" />\
             <title>Maintenance</title></head><body id=\"error-page\"><div class=\"wp-die-message\">\
             <h1>Briefly unavailable for scheduled maintenance. Check back in a minute.</h1></div></body></html>\n"
                .to_string()
        }
        s => {
            let reason = http::StatusCode::from_u16(s)
                .ok()
                .and_then(|c| c.canonical_reason())
                .unwrap_or("Error");
            headers.push(("Server".into(), "nginx".into()));
            format!(
                "<html>\r\n<head><title>{s} {reason}</title></head>\r\n<body>\r\n<center><h1>{s} {reason}</h1></center>\r\n\
                 <hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
            )
        }
    };
    ApiResponse {
        status,
        headers,
        body: body.into_bytes(),
    }
}

pub(super) fn no_route() -> ApiResponse {
    wp_error(
        404,
        "rest_no_route",
        "No route was found matching the URL and request method.",
    )
}

/// The controllers' permission-check errors for an unauthenticated request
/// (`rest_authorization_required_code()` is 401 when nobody is logged in).
pub(super) fn cannot(method: &Method, item: bool) -> ApiResponse {
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

pub(super) fn invalid_param(name: &str, reason: &str) -> ApiResponse {
    wp_error_data(
        400,
        "rest_invalid_param",
        &format!("Invalid parameter(s): {name}"),
        json!({ "status": 400, "params": { name: reason } }),
    )
}

/// The REST route of a request: `/wp-json<route>` or `?rest_route=<route>`;
/// `""` and `"/"` are the index.
fn rest_route(req: &ApiRequest) -> Option<String> {
    if let Some(r) = req.path.strip_prefix("/wp-json") {
        if r.is_empty() || r.starts_with('/') {
            return Some(r.to_string());
        }
        return None;
    }
    if req.path == "/" || req.path == "/index.php" {
        return query_pairs(req.query.as_deref())
            .into_iter()
            .find(|(k, _)| k == "rest_route")
            .map(|(_, v)| v);
    }
    None
}

/// Request parameters as `WP_REST_Request` merges them: query, then a form
/// or JSON body (JSON is parsed only for `application/json`).
pub(super) fn params(req: &ApiRequest) -> Result<Map<String, Value>, ApiResponse> {
    let mut out = Map::new();
    for (k, v) in query_pairs(req.query.as_deref()) {
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

/// Entry point of the store's HTTP server.
pub(super) async fn handle(state: Arc<Mutex<StoreState>>, req: ApiRequest) -> ApiResponse {
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
        if let Some((failure, n)) = s.fail {
            s.fail = (n > 1).then_some((failure, n - 1));
            return match failure {
                Injected::Json(status) => injected_error(status),
                Injected::Html(status) => {
                    let host = s
                        .base_url
                        .split_once("://")
                        .map_or(s.base_url.as_str(), |(_, h)| h)
                        .to_string();
                    injected_html(status, &host)
                }
            };
        }
    }
    let Some(route) = rest_route(&req) else {
        return ApiResponse {
            status: 404,
            headers: vec![("Content-Type".into(), "text/html; charset=UTF-8".into())],
            body: b"<html><body>Page not found</body></html>".to_vec(),
        };
    };
    // The index is not a `wc/` route: WC_REST_Authentication does not run.
    if route.is_empty() || route == "/" {
        return match req.method {
            Method::GET | Method::HEAD => wp_json(200, &index_json(&lock(state))),
            _ => no_route(),
        };
    }
    let auth = match authenticate(&mut lock(state), &req) {
        Ok(a) => a,
        Err(resp) => return resp,
    };
    if let Some((resource, item)) = catalog_route(&route) {
        return catalog_request(state, &req, auth, resource, item);
    }
    if route.trim_end_matches('/') == "/wc/v3/system_status" {
        if req.method != Method::GET {
            return no_route();
        }
        if let Auth::Anonymous = auth {
            return wp_error(
                401,
                "woocommerce_rest_cannot_view",
                "Sorry, you cannot list resources.",
            );
        }
        return wp_json(200, &system_status_json(&lock(state)));
    }
    match match_route(&route) {
        Some(route) => webhooks_request(state, &req, auth, route).await,
        None => no_route(),
    }
}

/// `WP_REST_Server::get_index()` (src/wp-includes/rest-api/class-wp-rest-server.php),
/// trimmed: the site fields, `gmt_offset` / `timezone_string`, namespaces.
fn index_json(s: &StoreState) -> Value {
    json!({
        "name": "WooCommerce Simulator",
        "description": "Just another WordPress site",
        "url": s.base_url,
        "home": s.base_url,
        "gmt_offset": s.zone.gmt_offset_json(store_now(s)),
        "timezone_string": s.zone.timezone_string(),
        "namespaces": ["oembed/1.0", "wc/store/v1", "wc/v1", "wc/v2", "wc/v3", "wp/v2", "wp-site-health/v1"],
        "authentication": [],
        "routes": {
            "/": { "namespace": "", "methods": ["GET"] },
            "/wc/v3": { "namespace": "wc/v3", "methods": ["GET"] }
        },
        "_links": { "help": [{ "href": "https://developer.wordpress.org/rest-api/" }] }
    })
}

/// `GET /wc/v3/system_status`, trimmed to what reveals the versions and the
/// zone: `environment.version` is `WC_VERSION`.
fn system_status_json(s: &StoreState) -> Value {
    json!({
        "environment": {
            "home_url": s.base_url,
            "site_url": s.base_url,
            "version": s.version,
            "wp_version": WP_VERSION,
            "wp_multisite": false,
            "wp_memory_limit": 268_435_456,
            "wp_debug_mode": false,
            "wp_cron": true,
            "language": "en_US",
            "server_info": "nginx/1.24.0",
            "php_version": "8.2.27",
            "default_timezone": "UTC",
            "secure_connection": s.https
        },
        "database": { "wc_database_version": s.version },
        "active_plugins": [],
        "settings": { "api_enabled": true, "currency": "USD" }
    })
}
