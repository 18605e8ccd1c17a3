//! How a request to a store API is authenticated, and sending it that way.
//!
//! WooCommerce (`WC_REST_Authentication::authenticate`) takes HTTP Basic,
//! or the `consumer_key`/`consumer_secret` query parameters, only over
//! HTTPS (`is_ssl()`); over plain HTTP it requires OAuth 1.0a one-legged
//! signing. Many hosts strip the `Authorization` header before PHP sees it,
//! which is why WooCommerce reads the query parameters first: a store that
//! answers 401 to Basic is asked again with the keys in the query, and the
//! host is remembered so later calls go straight there.

use std::collections::HashSet;
use std::sync::Mutex;

use serde_json::Value;

/// The credentials of one store request.
#[derive(Clone, PartialEq, Eq)]
pub enum RequestAuth {
    None,
    /// HTTP Basic (BigCommerce v2, ONe).
    Basic { user: String, password: String },
    /// WooCommerce consumer keys over HTTPS: Basic, falling back to the query.
    WooCommerceKeys { key: String, secret: String },
    /// OAuth 1.0a, HMAC-SHA256, parameters in the query (WooCommerce over HTTP).
    OAuth1 { key: String, secret: String },
}

impl std::fmt::Debug for RequestAuth {
    // Never prints a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RequestAuth::None => "None",
            RequestAuth::Basic { .. } => "Basic",
            RequestAuth::WooCommerceKeys { .. } => "WooCommerceKeys",
            RequestAuth::OAuth1 { .. } => "OAuth1",
        })
    }
}

impl RequestAuth {
    /// WooCommerce's choice for a store URL: keys over HTTPS, OAuth 1.0a
    /// over HTTP (never a secret in the clear).
    pub fn woocommerce(store_url: &str, key: String, secret: String) -> Self {
        if store_url.trim().to_ascii_lowercase().starts_with("https://") {
            RequestAuth::WooCommerceKeys { key, secret }
        } else {
            RequestAuth::OAuth1 { key, secret }
        }
    }
}

/// Hosts known to strip `Authorization`: asked with the keys in the query.
static QUERY_KEY_HOSTS: Mutex<Option<HashSet<String>>> = Mutex::new(None);

fn host_key(url: &url::Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap_or_default(),
        url.port_or_known_default().unwrap_or(0)
    )
}

fn strips_authorization(url: &url::Url) -> bool {
    QUERY_KEY_HOSTS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .is_some_and(|s| s.contains(&host_key(url)))
}

fn remember_strips_authorization(url: &url::Url) {
    QUERY_KEY_HOSTS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashSet::new)
        .insert(host_key(url));
}

fn with_query_keys(url: &url::Url, key: &str, secret: &str) -> url::Url {
    let mut u = url.clone();
    u.query_pairs_mut()
        .append_pair("consumer_key", key)
        .append_pair("consumer_secret", secret);
    u
}

/// A GET with extra headers, authenticated with `auth`.
pub async fn send_get(
    client: &reqwest::Client,
    url: &url::Url,
    headers: &[(String, String)],
    auth: &RequestAuth,
) -> Result<reqwest::Response, reqwest::Error> {
    send_with(client, reqwest::Method::GET, url, headers, None, auth).await
}

/// Sends one request with `auth`. A JSON `body` is sent as JSON.
pub async fn send(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &url::Url,
    body: Option<&Value>,
    auth: &RequestAuth,
) -> Result<reqwest::Response, reqwest::Error> {
    send_with(client, method, url, &[], body, auth).await
}

async fn send_with(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &url::Url,
    headers: &[(String, String)],
    body: Option<&Value>,
    auth: &RequestAuth,
) -> Result<reqwest::Response, reqwest::Error> {
    let build = |url: &str| {
        let mut b = client.request(method.clone(), url);
        for (k, v) in headers {
            b = b.header(k, v);
        }
        match body {
            Some(v) => b.json(v),
            None => b,
        }
    };
    match auth {
        RequestAuth::None => build(url.as_str()).send().await,
        RequestAuth::Basic { user, password } => {
            build(url.as_str())
                .basic_auth(user, Some(password))
                .send()
                .await
        }
        RequestAuth::OAuth1 { key, secret } => {
            let signed = crate::oauth1::sign_url(method.as_str(), url, key, secret);
            build(&signed).send().await
        }
        RequestAuth::WooCommerceKeys { key, secret } => {
            if strips_authorization(url) {
                return build(with_query_keys(url, key, secret).as_str())
                    .send()
                    .await;
            }
            let resp = build(url.as_str())
                .basic_auth(key, Some(secret))
                .send()
                .await?;
            if resp.status().as_u16() != 401 {
                return Ok(resp);
            }
            let retry = build(with_query_keys(url, key, secret).as_str())
                .send()
                .await?;
            if retry.status().as_u16() != 401 {
                tracing::info!(
                    "store ignored the Authorization header; using the query parameters"
                );
                remember_strips_authorization(url);
            }
            Ok(retry)
        }
    }
}
