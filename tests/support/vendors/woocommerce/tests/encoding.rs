//! Pure functions: encoding, signatures, ids, payloads, dates, PHP parsing.

use serde_json::json;

use super::super::php::{php_array, PhpValue};
use super::super::query::{parse_rest_date, wp_list};
use super::super::*;
use super::t;

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
    // New York is on EDT (UTC-4) on 2017-03-22.
    assert!(body.contains(r#""date_created":"2017-03-22T15:28:02""#));
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

#[test]
fn delivery_ids_are_wp_hash_of_id_and_second() {
    // Python: hmac.new(WP_AUTH_SALT, b"1421700000000", hashlib.md5).hexdigest()
    assert_eq!(
        delivery_id_at(142, 1_700_000_000),
        "eb79adbb9d3de819aaf5392370d35d93"
    );
    assert_eq!(wp_hash("1421700000000"), delivery_id_at(142, 1_700_000_000));
    assert_eq!(
        delivery_id_at(142, 1_700_000_001),
        "4a82422a166d918bed65daf76c432f14"
    );
    // No separator: webhook 14 at second 21700000000 is the same input.
    assert_eq!(
        delivery_id_at(14, 21_700_000_000),
        delivery_id_at(142, 1_700_000_000)
    );
}

#[test]
fn php_array_parses_like_get() {
    let pairs: Vec<(String, String)> = [
        ("status[]", "trash"),
        ("status[]", "completed"),
        ("a.b c", "1"),
        ("x", "1"),
        ("x", "2"),
        ("f[k][]", "v"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let arr = php_array(&pairs);
    let s = |v: &str| PhpValue::Str(v.to_string());
    assert_eq!(
        arr,
        vec![
            (
                "status".to_string(),
                PhpValue::Arr(vec![("0".into(), s("trash")), ("1".into(), s("completed"))])
            ),
            ("a_b_c".to_string(), s("1")),
            ("x".to_string(), s("2")),
            (
                "f".to_string(),
                PhpValue::Arr(vec![(
                    "k".into(),
                    PhpValue::Arr(vec![("0".into(), s("v"))])
                )])
            ),
        ]
    );
    assert_eq!(rawurlencode("a b+~/é"), "a%20b%2B~%2F%C3%A9");
}

#[test]
fn site_zone_follows_dst() {
    let ny = SiteZone::default();
    assert_eq!(ny.timezone_string(), "America/New_York");
    // EST in January, EDT in July.
    assert_eq!(ny.local(t("2026-01-15T12:00:00")), t("2026-01-15T07:00:00"));
    assert_eq!(ny.local(t("2026-07-15T12:00:00")), t("2026-07-15T08:00:00"));
    assert_eq!(ny.gmt_offset_json(t("2026-07-15T12:00:00")), json!(-4.0));
    assert_eq!(ny.gmt_offset_json(t("2026-01-15T12:00:00")), json!(-5.0));
    // 2026-11-01 06:30 and 05:30 UTC are both 01:30 local (the repeated hour).
    assert_eq!(ny.local(t("2026-11-01T05:30:00")), t("2026-11-01T01:30:00"));
    assert_eq!(ny.local(t("2026-11-01T06:30:00")), t("2026-11-01T01:30:00"));
    let fixed = SiteZone::FixedHours(2);
    assert_eq!(fixed.timezone_string(), "");
    assert_eq!(fixed.gmt_offset_json(t("2026-07-15T12:00:00")), json!("2"));
    assert!(SiteZone::named("Mars/Olympus").is_none());
}

#[test]
fn localize_rewrites_local_dates_from_gmt() {
    let mut p = order_payload(
        5,
        "processing",
        "2026-07-01T12:00:00",
        "2026-12-01T12:00:00",
    );
    assert_eq!(p["date_created"], "2026-07-01T08:00:00");
    assert_eq!(p["date_modified"], "2026-12-01T07:00:00");
    localize(&mut p, &SiteZone::named("Asia/Kolkata").unwrap());
    assert_eq!(p["date_created"], "2026-07-01T17:30:00");
    assert_eq!(p["date_modified"], "2026-12-01T17:30:00");
    assert_eq!(p["date_paid"], "2026-12-01T17:30:00");
    assert_eq!(p["date_created_gmt"], "2026-07-01T12:00:00");
    assert!(p["date_completed"].is_null());
}

#[test]
fn large_order_payload() {
    let p = order_payload_with_line_items(727, 600);
    let body = php_json_encode(&p);
    assert!(body.len() > 256 * 1024, "{}", body.len());
    let items = p["line_items"].as_array().unwrap();
    assert_eq!(items.len(), 600);
    assert_eq!(items[0]["sku"], "WOO-1000");
    assert!(String::from_utf8(body)
        .unwrap()
        .contains(r#"Gr\u00f6\u00dfe"#));
    assert_eq!(order_payload_with_line_items(1, 0)["line_items"], json!([]));
}
