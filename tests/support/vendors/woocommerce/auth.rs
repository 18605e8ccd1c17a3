//! `WC_REST_Authentication` (includes/class-wc-rest-authentication.php):
//! Basic / query-string keys when `is_ssl()`, OAuth 1.0a one-legged
//! signatures otherwise (and as the fallback), with WooCommerce's own
//! signature base string, 15-minute timestamp window and nonce memory.
//!
//! Also a client-side RFC 5849 signer ([`oauth1_signed_url`],
//! [`oauth1_authorization_header`]) for tests that call the store directly;
//! it is written from the RFC, separately from the verifier, so the two
//! check each other.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;
use shared::api::{ApiRequest, ApiResponse};

use super::php::{php_array, php_empty, query_pairs, rawurlencode, PhpArray, PhpValue};
use super::rest::wp_error;
use super::StoreState;

pub(super) enum Auth {
    /// Valid credentials.
    User,
    /// No (known) credentials: the controllers' permission checks answer 401.
    Anonymous,
}

/// `valid_window` of `check_oauth_timestamp_and_nonce()`: 15 minutes.
pub const OAUTH_WINDOW_SECONDS: i64 = 15 * 60;

fn auth_error(message: &str) -> ApiResponse {
    wp_error(401, "woocommerce_rest_authentication_error", message)
}

/// `WC_REST_Authentication::authenticate()` then `check_authentication_error()`:
/// `if ( is_ssl() ) basic; if ( ! $user_id ) oauth;` — an error set by
/// either (kept even if the other one then succeeds) fails the request; no
/// credentials at all leave it anonymous. Records the method that
/// authenticated (`basic`, `query`, `oauth1`) in the store's auth log.
pub(super) fn authenticate(s: &mut StoreState, req: &ApiRequest) -> Result<Auth, ApiResponse> {
    // A host that strips `Authorization` hides it from `PHP_AUTH_*`,
    // `$_SERVER['HTTP_AUTHORIZATION']` and `getallheaders()` alike.
    let header = if s.strip_authorization {
        None
    } else {
        req.header("authorization").map(str::to_string)
    };
    let get = php_array(&query_pairs(req.query.as_deref()));
    let post = if req.method == http::Method::POST && is_form(req) {
        php_array(
            &url::form_urlencoded::parse(&req.body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect::<Vec<_>>(),
        )
    } else {
        Vec::new()
    };
    let mut error = None;
    let mut method = None;
    if s.https {
        method = basic(s, &get, header.as_deref(), &mut error);
    }
    if method.is_none() {
        method = oauth(s, req, &get, &post, header.as_deref(), &mut error);
    }
    if let Some(e) = error {
        return Err(e);
    }
    Ok(match method {
        Some(m) => {
            s.auth_log.push(m);
            Auth::User
        }
        None => Auth::Anonymous,
    })
}

fn is_form(req: &ApiRequest) -> bool {
    req.header("content-type").is_some_and(|ct| {
        ct.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
    })
}

fn get<'a>(arr: &'a PhpArray, key: &str) -> Option<&'a PhpValue> {
    arr.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

fn get_str<'a>(arr: &'a PhpArray, key: &str) -> &'a str {
    get(arr, key).and_then(PhpValue::as_str).unwrap_or("")
}

/// `PHP_AUTH_USER` / `PHP_AUTH_PW`: PHP fills them from `Basic` credentials
/// that contain a `:`.
fn php_auth(header: Option<&str>) -> Option<(String, String)> {
    let h = header?;
    let (scheme, rest) = h.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = STANDARD.decode(rest.trim()).ok()?;
    let pair = String::from_utf8(raw).ok()?;
    let (user, pw) = pair.split_once(':')?;
    Some((user.to_string(), pw.to_string()))
}

/// `perform_basic_authentication()`: the `consumer_key`/`consumer_secret`
/// query parameters first ("If the $_GET parameters are present, use those
/// first"), else `PHP_AUTH_USER`/`PHP_AUTH_PW`. An unknown key is not an
/// error (just no user); a wrong secret is "Consumer secret is invalid.".
fn basic(
    s: &StoreState,
    get_params: &PhpArray,
    header: Option<&str>,
    error: &mut Option<ApiResponse>,
) -> Option<&'static str> {
    let mut how = "query";
    let (mut key, mut secret) = (String::new(), String::new());
    if !php_empty(get(get_params, "consumer_key")) && !php_empty(get(get_params, "consumer_secret"))
    {
        key = get_str(get_params, "consumer_key").to_string();
        secret = get_str(get_params, "consumer_secret").to_string();
    }
    let falsy = |v: &str| v.is_empty() || v == "0";
    if falsy(&key) {
        if let Some((user, pw)) = php_auth(header) {
            if !falsy(&user) && !falsy(&pw) {
                (key, secret, how) = (user, pw, "basic");
            }
        }
    }
    if falsy(&key) || falsy(&secret) {
        return None;
    }
    if key.trim() != s.consumer_key {
        return None;
    }
    if secret != s.consumer_secret {
        *error = Some(auth_error("Consumer secret is invalid."));
        return None;
    }
    Some(how)
}

/// `parse_header()`: `OAuth ` prefix, then
/// `/(oauth_[a-z_-]*)=(:?"([^"]*)"|([^,]*))/` matches, values `urldecode`d.
fn parse_header(header: &str) -> PhpArray {
    let mut out: PhpArray = Vec::new();
    let Some(rest) = header.strip_prefix("OAuth ") else {
        return out;
    };
    let b = rest.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if !rest[i..].starts_with("oauth_") {
            i += 1;
            continue;
        }
        let name_end = i
            + 6
            + b[i + 6..]
                .iter()
                .take_while(|c| c.is_ascii_lowercase() || **c == b'_' || **c == b'-')
                .count();
        if b.get(name_end) != Some(&b'=') {
            i += 1;
            continue;
        }
        let name = rest[i..name_end].to_string();
        let v = name_end + 1;
        // First alternative `:?"([^"]*)"`, else `([^,]*)`.
        let q = if b.get(v) == Some(&b':') { v + 1 } else { v };
        let quoted = (b.get(q) == Some(&b'"'))
            .then(|| rest[q + 1..].find('"'))
            .flatten()
            .map(|close| (&rest[q + 1..q + 1 + close], q + 1 + close + 1));
        let (value, end) = quoted.unwrap_or_else(|| {
            let len = rest[v..].find(',').unwrap_or(rest.len() - v);
            (&rest[v..v + len], v + len)
        });
        let decoded: String = url::form_urlencoded::parse(format!("x={value}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        match out.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = PhpValue::Str(decoded),
            None => out.push((name, PhpValue::Str(decoded))),
        }
        i = end.max(i + 1);
    }
    out
}

/// `array_merge()` for string keys: later values replace in place.
fn merge(into: &mut PhpArray, from: &PhpArray) {
    for (k, v) in from {
        match into.iter_mut().find(|(key, _)| key == k) {
            Some(slot) => slot.1 = v.clone(),
            None => into.push((k.clone(), v.clone())),
        }
    }
}

const REQUIRED: [&str; 5] = [
    "oauth_consumer_key",
    "oauth_timestamp",
    "oauth_nonce",
    "oauth_signature",
    "oauth_signature_method",
];

/// `perform_oauth_authentication()`: `get_oauth_parameters()` ($_GET +
/// $_POST + `OAuth` header), key lookup, `check_oauth_signature()`,
/// `check_oauth_timestamp_and_nonce()`, in that order.
fn oauth(
    s: &mut StoreState,
    req: &ApiRequest,
    get_params: &PhpArray,
    post: &PhpArray,
    header: Option<&str>,
    error: &mut Option<ApiResponse>,
) -> Option<&'static str> {
    let mut params = get_params.clone();
    merge(&mut params, post);
    if let Some(h) = header {
        let from_header = parse_header(h.trim());
        merge(&mut params, &from_header);
    }
    let missing: Vec<&str> = REQUIRED
        .into_iter()
        .filter(|n| php_empty(get(&params, n)))
        .collect();
    if missing.len() == REQUIRED.len() {
        // "All keys are missing, so we're probably not even trying to use OAuth."
        return None;
    }
    if !missing.is_empty() {
        let noun = if missing.len() == 1 {
            "parameter"
        } else {
            "parameters"
        };
        *error = Some(wp_error(
            401,
            "woocommerce_rest_authentication_missing_parameter",
            &format!("Missing OAuth {noun} {}", missing.join(", ")),
        ));
        return None;
    }
    if get_str(&params, "oauth_consumer_key").trim() != s.consumer_key {
        *error = Some(auth_error("Consumer key is invalid."));
        return None;
    }
    if let Err(e) = check_signature(s, req, &params) {
        *error = Some(e);
        return None;
    }
    let timestamp = get_str(&params, "oauth_timestamp").to_string();
    let nonce = get_str(&params, "oauth_nonce").to_string();
    if let Err(e) = check_timestamp_and_nonce(s, &timestamp, &nonce) {
        *error = Some(e);
        return None;
    }
    Some("oauth1")
}

/// PHP `rawurldecode()`: `%XX` only (`+` stays).
fn rawurldecode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `normalize_parameters()` + `join_with_equals_sign()`: top-level keys
/// and all values `wc_rest_urlencode_rfc3986()`-encoded, nested keys as
/// `key%5Bsub%5D`, then each `key=value` encoded again.
fn join_with_equals_sign(params: &PhpArray, prefix: Option<&str>, out: &mut Vec<String>) {
    for (k, v) in params {
        let key = match prefix {
            Some(p) => format!("{p}%5B{k}%5D"),
            None => rawurlencode(k),
        };
        match v {
            PhpValue::Arr(inner) => join_with_equals_sign(inner, Some(&key), out),
            PhpValue::Str(value) => {
                out.push(rawurlencode(&format!("{key}={}", rawurlencode(value))))
            }
        }
    }
}

/// The signature base string `check_oauth_signature()` builds (exposed to
/// the simulator's tests).
pub(super) fn wc_string_to_sign(method: &str, base_url: &str, params: &PhpArray) -> String {
    let mut sorted: PhpArray = params
        .iter()
        .filter(|(k, _)| k != "oauth_signature")
        .cloned()
        .collect();
    // `uksort( $params, 'strcmp' )`: raw keys, byte order, before encoding.
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut pairs = Vec::new();
    join_with_equals_sign(&sorted, None, &mut pairs);
    format!(
        "{}&{}&{}",
        method.to_ascii_uppercase(),
        rawurlencode(base_url),
        pairs.join("%26")
    )
}

pub(super) fn hmac_base64(algorithm: &str, key: &[u8], data: &[u8]) -> Option<String> {
    let raw = match algorithm {
        "HMAC-SHA1" => {
            let mut mac = Hmac::<Sha1>::new_from_slice(key).expect("any key length");
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        "HMAC-SHA256" => {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        _ => return None,
    };
    Some(STANDARD.encode(raw))
}

/// `check_oauth_signature()`: base URI is `get_home_url( null, $path,
/// is_ssl() ? 'https' : 'http' )` (the configured home, not the Host
/// header; no query), the key is `consumer_secret . '&'` (not encoded).
fn check_signature(s: &StoreState, req: &ApiRequest, params: &PhpArray) -> Result<(), ApiResponse> {
    let scheme = if s.https { "https" } else { "http" };
    let host = s
        .base_url
        .split_once("://")
        .map_or(s.base_url.as_str(), |(_, h)| h);
    let path = req.path.strip_prefix('/').unwrap_or(&req.path);
    let base_url = if path.is_empty() {
        format!("{scheme}://{host}")
    } else {
        format!("{scheme}://{host}/{}", path.trim_start_matches('/'))
    };
    let provided = rawurldecode(&get_str(params, "oauth_signature").replace(' ', "+"));
    let string_to_sign = wc_string_to_sign(req.method.as_str(), &base_url, params);
    let key = format!("{}&", s.consumer_secret);
    let Some(expected) = hmac_base64(
        get_str(params, "oauth_signature_method"),
        key.as_bytes(),
        string_to_sign.as_bytes(),
    ) else {
        return Err(auth_error(
            "Invalid signature - signature method is invalid.",
        ));
    };
    if expected != provided {
        return Err(auth_error(
            "Invalid signature - provided signature does not match.",
        ));
    }
    Ok(())
}

/// `check_oauth_timestamp_and_nonce()`: `time()` ± 15 minutes, then the
/// nonce must not be among the key's stored ones; it is stored as
/// `$used_nonces[ $timestamp ] = $nonce` (so a later request with the same
/// timestamp replaces it) and entries older than the window are dropped.
fn check_timestamp_and_nonce(
    s: &mut StoreState,
    timestamp: &str,
    nonce: &str,
) -> Result<(), ApiResponse> {
    let now = chrono::Utc::now().timestamp();
    let ts = timestamp.trim().parse::<i64>().ok();
    let Some(ts) =
        ts.filter(|t| *t >= now - OAUTH_WINDOW_SECONDS && *t <= now + OAUTH_WINDOW_SECONDS)
    else {
        return Err(auth_error("Invalid timestamp."));
    };
    if s.nonces.values().any(|n| n == nonce) {
        return Err(auth_error("Invalid nonce - nonce has already been used."));
    }
    s.nonces.insert(ts, nonce.to_string());
    s.nonces.retain(|t, _| *t >= now - OAUTH_WINDOW_SECONDS);
    Ok(())
}

// ---------------------------------------------------------------------------
// Client side (RFC 5849), for tests
// ---------------------------------------------------------------------------

/// RFC 5849 §3.6 percent-encoding (unreserved `A-Z a-z 0-9 - . _ ~` kept).
fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The `oauth_*` parameters and signature of an RFC 5849 one-legged request
/// (no token; RFC 5849 §3.4.1 base string, §3.4.2 HMAC with key
/// `pct(consumer_secret) & ""`). `url` may carry a query; its parameters are
/// signed as `application/x-www-form-urlencoded` pairs.
fn rfc5849_params(
    method: &str,
    url: &str,
    consumer_key: &str,
    consumer_secret: &str,
    signature_method: &str,
    timestamp: i64,
    nonce: &str,
) -> Vec<(String, String)> {
    let parsed = url::Url::parse(url).expect("an absolute URL");
    let mut base_uri = format!(
        "{}://{}",
        parsed.scheme(),
        parsed.host_str().unwrap_or("").to_ascii_lowercase()
    );
    if let Some(port) = parsed.port() {
        base_uri.push_str(&format!(":{port}"));
    }
    base_uri.push_str(parsed.path());
    let oauth = vec![
        ("oauth_consumer_key".to_string(), consumer_key.to_string()),
        ("oauth_nonce".to_string(), nonce.to_string()),
        (
            "oauth_signature_method".to_string(),
            signature_method.to_string(),
        ),
        ("oauth_timestamp".to_string(), timestamp.to_string()),
    ];
    let mut all: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(k, v)| (pct(&k), pct(&v)))
        .chain(oauth.iter().map(|(k, v)| (pct(k), pct(v))))
        .collect();
    all.sort();
    let normalized: Vec<String> = all.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let base = format!(
        "{}&{}&{}",
        method.to_ascii_uppercase(),
        pct(&base_uri),
        pct(&normalized.join("&"))
    );
    let key = format!("{}&", pct(consumer_secret));
    let signature = hmac_base64(signature_method, key.as_bytes(), base.as_bytes())
        .expect("HMAC-SHA1 or HMAC-SHA256");
    let mut out = oauth;
    out.push(("oauth_signature".to_string(), signature));
    out
}

/// `url` with RFC 5849 one-legged OAuth 1.0a parameters appended to its
/// query (how WooCommerce documents plain-HTTP API calls).
/// `signature_method` is `HMAC-SHA1` or `HMAC-SHA256`.
pub fn oauth1_signed_url(
    method: &str,
    url: &str,
    consumer_key: &str,
    consumer_secret: &str,
    signature_method: &str,
    timestamp: i64,
    nonce: &str,
) -> String {
    let params = rfc5849_params(
        method,
        url,
        consumer_key,
        consumer_secret,
        signature_method,
        timestamp,
        nonce,
    );
    let query: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{}={}", pct(k), pct(v)))
        .collect();
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{}", query.join("&"))
}

/// An `Authorization: OAuth ...` header value (RFC 5849 §3.5.1) for the
/// same signature as [`oauth1_signed_url`]; the URL is sent unchanged.
pub fn oauth1_authorization_header(
    method: &str,
    url: &str,
    consumer_key: &str,
    consumer_secret: &str,
    signature_method: &str,
    timestamp: i64,
    nonce: &str,
) -> String {
    let params = rfc5849_params(
        method,
        url,
        consumer_key,
        consumer_secret,
        signature_method,
        timestamp,
        nonce,
    );
    let fields: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{}=\"{}\"", pct(k), pct(v)))
        .collect();
    format!("OAuth {}", fields.join(", "))
}
