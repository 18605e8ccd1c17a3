//! `WC_REST_Authentication`: OAuth 1.0a over HTTP, Basic/query over "TLS",
//! stripped `Authorization` headers, and the errors each case gives.

use serde_json::Value;

use super::super::auth::{hmac_base64, wc_string_to_sign};
use super::super::php::{PhpArray, PhpValue};
use super::super::*;
use super::{client, nonce, signed};

/// (status, JSON body) of a GET on an already built URL, with optional
/// Authorization header / Basic credentials.
async fn get_with(url: &str, header: Option<String>, basic: Option<(&str, &str)>) -> (u16, Value) {
    let mut r = client().get(url);
    if let Some(h) = header {
        r = r.header("Authorization", h);
    }
    if let Some((k, s)) = basic {
        r = r.basic_auth(k, Some(s));
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[test]
fn the_base_string_is_woocommerces() {
    let s = |v: &str| PhpValue::Str(v.to_string());
    let params: PhpArray = vec![
        ("per_page".into(), s("10")),
        ("modified_after".into(), s("2026-01-01T00:00:00+00:00")),
        ("oauth_consumer_key".into(), s("ck_test")),
        ("oauth_nonce".into(), s("abc123")),
        ("oauth_signature_method".into(), s("HMAC-SHA1")),
        ("oauth_timestamp".into(), s("1700000000")),
        ("oauth_signature".into(), s("ignored")),
        (
            "status".into(),
            PhpValue::Arr(vec![("0".into(), s("trash")), ("1".into(), s("completed"))]),
        ),
    ];
    let sts = wc_string_to_sign("get", "http://127.0.0.1:8080/wp-json/wc/v3/orders", &params);
    // Python, following check_oauth_signature(): keys sorted raw, each pair
    // rawurlencode(rawurlencode(k) . '=' . rawurlencode(v)), arrays as k%5Bi%5D.
    assert_eq!(
        sts,
        "GET&http%3A%2F%2F127.0.0.1%3A8080%2Fwp-json%2Fwc%2Fv3%2Forders&\
         modified_after%3D2026-01-01T00%253A00%253A00%252B00%253A00%26\
         oauth_consumer_key%3Dck_test%26oauth_nonce%3Dabc123%26\
         oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D1700000000%26\
         per_page%3D10%26status%255B0%255D%3Dtrash%26status%255B1%255D%3Dcompleted"
    );
    // Python: base64(hmac.new(b"cs_test&", sts, sha1 / sha256).digest())
    assert_eq!(
        hmac_base64("HMAC-SHA1", b"cs_test&", sts.as_bytes()).unwrap(),
        "/1Iup8D4i9srP/FhWSmyDzudrFE="
    );
    assert_eq!(
        hmac_base64("HMAC-SHA256", b"cs_test&", sts.as_bytes()).unwrap(),
        "SzYC7v+Vc0wAVEgGES3qE8AWz+/hv6TrUZqb67aotiU="
    );
    assert_eq!(hmac_base64("RSA-SHA1", b"k", b"d"), None);
}

#[tokio::test]
async fn oauth1_is_required_over_http() {
    let store = start_store("ck", "cs").await;
    let url = store.catalog_url("orders");

    // HMAC-SHA1 and HMAC-SHA256, in the query or in the header.
    for method in ["HMAC-SHA1", "HMAC-SHA256"] {
        let q = oauth1_signed_url("GET", &url, "ck", "cs", method, now(), &nonce());
        assert_eq!(get_with(&q, None, None).await.0, 200, "{method} query");
        let h = oauth1_authorization_header("GET", &url, "ck", "cs", method, now(), &nonce());
        assert_eq!(
            get_with(&url, Some(h), None).await.0,
            200,
            "{method} header"
        );
    }
    // Query parameters of the request are part of the signature.
    let with_query = format!("{url}?per_page=5&modified_after=2026-01-01T00:00:00%2B00:00");
    assert_eq!(
        get_with(&signed("GET", &with_query), None, None).await.0,
        200
    );
    assert_eq!(store.auth_log(), ["oauth1"; 5]);

    // Basic and query-string keys mean nothing over plain HTTP: anonymous.
    let (status, v) = get_with(&url, None, Some(("ck", "cs"))).await;
    assert_eq!(status, 401);
    assert_eq!(v["code"], "woocommerce_rest_cannot_view");
    assert_eq!(v["message"], "Sorry, you cannot list resources.");
    let (status, _) = get_with(
        &format!("{url}?consumer_key=ck&consumer_secret=cs"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(store.auth_log().len(), 5);

    let err = |v: &Value| {
        (
            v["code"].as_str().unwrap().to_string(),
            v["message"].as_str().unwrap().to_string(),
        )
    };
    // A tampered query after signing.
    let tampered = signed("GET", &format!("{url}?per_page=5")).replace("per_page=5", "per_page=6");
    let (status, v) = get_with(&tampered, None, None).await;
    assert_eq!(status, 401);
    assert_eq!(
        err(&v),
        (
            "woocommerce_rest_authentication_error".into(),
            "Invalid signature - provided signature does not match.".into()
        )
    );
    // Wrong secret, unknown key, unsupported method, missing parameters.
    let (_, v) = get_with(
        &oauth1_signed_url("GET", &url, "ck", "nope", "HMAC-SHA1", now(), &nonce()),
        None,
        None,
    )
    .await;
    assert_eq!(
        v["message"],
        "Invalid signature - provided signature does not match."
    );
    let (_, v) = get_with(
        &oauth1_signed_url("GET", &url, "ck_other", "cs", "HMAC-SHA1", now(), &nonce()),
        None,
        None,
    )
    .await;
    assert_eq!(
        err(&v),
        (
            "woocommerce_rest_authentication_error".into(),
            "Consumer key is invalid.".into()
        )
    );
    let plaintext = signed("GET", &url).replace("HMAC-SHA1", "PLAINTEXT");
    let (_, v) = get_with(&plaintext, None, None).await;
    assert_eq!(
        v["message"],
        "Invalid signature - signature method is invalid."
    );
    let (status, v) = get_with(
        &format!("{url}?oauth_consumer_key=ck&oauth_nonce=x"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(
        err(&v),
        (
            "woocommerce_rest_authentication_missing_parameter".into(),
            "Missing OAuth parameters oauth_timestamp, oauth_signature, oauth_signature_method"
                .into()
        )
    );
    // Timestamp window: 15 minutes either way.
    let old = oauth1_signed_url(
        "GET",
        &url,
        "ck",
        "cs",
        "HMAC-SHA1",
        now() - 16 * 60,
        &nonce(),
    );
    let (_, v) = get_with(&old, None, None).await;
    assert_eq!(v["message"], "Invalid timestamp.");
    let late = oauth1_signed_url(
        "GET",
        &url,
        "ck",
        "cs",
        "HMAC-SHA1",
        now() - 14 * 60,
        &nonce(),
    );
    assert_eq!(get_with(&late, None, None).await.0, 200);
    // A replay: the nonce is remembered.
    let once = signed("GET", &url);
    assert_eq!(get_with(&once, None, None).await.0, 200);
    let (status, v) = get_with(&once, None, None).await;
    assert_eq!(status, 401);
    assert_eq!(v["message"], "Invalid nonce - nonce has already been used.");
}

#[tokio::test]
async fn nonces_are_remembered_by_timestamp() {
    let store = start_store("ck", "cs").await;
    let url = store.catalog_url("products");
    let ts = now();
    let first = oauth1_signed_url("GET", &url, "ck", "cs", "HMAC-SHA1", ts, "nonce-a");
    let second = oauth1_signed_url("GET", &url, "ck", "cs", "HMAC-SHA1", ts, "nonce-b");
    assert_eq!(get_with(&first, None, None).await.0, 200);
    assert_eq!(get_with(&second, None, None).await.0, 200);
    // `$used_nonces[ $timestamp ] = $nonce`: nonce-b replaced nonce-a, so
    // the first request can be replayed.
    assert_eq!(get_with(&first, None, None).await.0, 200);
    assert_eq!(get_with(&first, None, None).await.0, 401);
}

#[tokio::test]
async fn array_params_are_signed_with_php_indices() {
    let store = start_store("ck", "cs").await;
    let url = format!("{}?status[]=trash", store.catalog_url("orders"));
    // An RFC 5849 client signs the name `status[]`; WooCommerce signs `status[0]`.
    let (status, v) = get_with(&signed("GET", &url), None, None).await;
    assert_eq!(status, 401);
    assert_eq!(
        v["message"],
        "Invalid signature - provided signature does not match."
    );
    // Signed for the name WooCommerce sees, sent with `status[]`: accepted.
    let indexed = format!("{}?status[0]=trash", store.catalog_url("orders"));
    let h = oauth1_authorization_header("GET", &indexed, "ck", "cs", "HMAC-SHA1", now(), &nonce());
    assert_eq!(get_with(&url, Some(h), None).await.0, 200);
    // A comma list is one plain value: no such problem.
    let comma = format!("{}?status=trash,completed", store.catalog_url("orders"));
    assert_eq!(get_with(&signed("GET", &comma), None, None).await.0, 200);
}

#[tokio::test]
async fn over_tls_query_keys_come_first_then_basic_then_oauth() {
    let store = start_store("ck", "cs").await;
    store.set_https(true);
    let url = store.catalog_url("coupons");
    assert_eq!(get_with(&url, None, Some(("ck", "cs"))).await.0, 200);
    let q = format!("{url}?consumer_key=ck&consumer_secret=cs");
    assert_eq!(get_with(&q, None, None).await.0, 200);
    // Query keys win over a wrong Basic header.
    assert_eq!(get_with(&q, None, Some(("ck", "wrong"))).await.0, 200);
    // OAuth is still tried when Basic found nothing; the base URI is https.
    let https_url = url.replace("http://", "https://");
    let h =
        oauth1_authorization_header("GET", &https_url, "ck", "cs", "HMAC-SHA1", now(), &nonce());
    assert_eq!(get_with(&url, Some(h), None).await.0, 200);
    assert_eq!(store.auth_log(), ["basic", "query", "query", "oauth1"]);

    let (status, v) = get_with(&url, None, Some(("ck", "wrong"))).await;
    assert_eq!(status, 401);
    assert_eq!(v["code"], "woocommerce_rest_authentication_error");
    assert_eq!(v["message"], "Consumer secret is invalid.");
    // An unknown key is no error, just no user.
    let (status, v) = get_with(&url, None, Some(("ck_other", "cs"))).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (401, Some("woocommerce_rest_cannot_view"))
    );
    // The secret error stands even if OAuth then succeeds.
    let with_keys = format!("{https_url}?consumer_key=ck&consumer_secret=wrong");
    let mixed = oauth1_signed_url("GET", &with_keys, "ck", "cs", "HMAC-SHA1", now(), &nonce())
        .replace("https://", "http://");
    let (status, v) = get_with(&mixed, None, None).await;
    assert_eq!(
        (status, v["message"].as_str()),
        (401, Some("Consumer secret is invalid."))
    );
}

#[tokio::test]
async fn a_host_that_strips_authorization() {
    let store = start_store("ck", "cs").await;
    store.set_https(true);
    store.set_strip_authorization(true);
    let url = store.catalog_url("orders");
    // Basic vanishes: anonymous.
    let (status, v) = get_with(&url, None, Some(("ck", "cs"))).await;
    assert_eq!(status, 401);
    assert_eq!(v["code"], "woocommerce_rest_cannot_view");
    // So does an OAuth header.
    let https_url = url.replace("http://", "https://");
    let h =
        oauth1_authorization_header("GET", &https_url, "ck", "cs", "HMAC-SHA1", now(), &nonce());
    assert_eq!(get_with(&url, Some(h), None).await.0, 401);
    // Query credentials still work.
    let q = format!("{url}?consumer_key=ck&consumer_secret=cs");
    assert_eq!(get_with(&q, None, None).await.0, 200);
    assert_eq!(store.auth_log(), ["query"]);
    // Over plain HTTP, query-string OAuth still works.
    store.set_https(false);
    assert_eq!(get_with(&signed("GET", &url), None, None).await.0, 200);
}
