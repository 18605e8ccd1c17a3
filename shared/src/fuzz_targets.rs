//! Property-based fuzz targets: whatever the input, these parsers answer
//! with a value or a clear error, never a panic. CI runs the default 256
//! cases each; a longer run is documented in docs/reliability.md:
//! `PROPTEST_CASES=20000 cargo test -p connector-events-shared -- fuzz_targets javadate`.

use proptest::prelude::*;
use serde_json::{json, Value};

use crate::config::{macros, where_clause};
use crate::config::{parse_instance_body, validate_configuration};
use crate::elements;
use crate::netguard::NetGuard;
use crate::webhook::WebhookRequest;

/// Arbitrary JSON, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
        "<[A-Z_]{1,12}>".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z.]{1,24}", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A configuration built from the keys real bodies use, with arbitrary values.
fn config_like() -> impl Strategy<Value = Value> {
    let keys = prop::sample::select(vec![
        "store.url",
        "oauth.api.key",
        "oauth.api.secret",
        "event.notification.enabled",
        "event.vendor.type",
        "event.notification.callback.url",
        "event.notification.signature.key",
        "event.poller.refresh_interval",
        "event.poller.configuration",
        "username",
        "password",
        "ecwid.store.id",
        "ecwid.order.key",
        "one.webhook.username",
        "one.webhook.password",
        "bigcommerce.webhook.header.secret",
    ]);
    prop::collection::btree_map(keys, any_json(), 0..12)
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
}

proptest! {
    #[test]
    fn fuzz_macro_expansion_never_panics(text in ".{0,80}", secs in 0i64..4_102_444_800) {
        let at = chrono::DateTime::from_timestamp(secs, 0).unwrap();
        let _ = macros::expand(&text, at, chrono::FixedOffset::east_opt(0).unwrap(), "f");
        let _ = macros::expand(&format!("${{date:{text}}}"), at, chrono::FixedOffset::east_opt(3600).unwrap(), "f");
    }

    #[test]
    fn fuzz_where_clauses_never_panic(text in ".{0,120}") {
        let _ = where_clause::parse(&text, "f");
        let _ = where_clause::parse(&format!("a='{text}' and b>'${{gmtDate:{text}}}'"), "f");
    }

    #[test]
    fn fuzz_instance_bodies_never_panic(element in prop::sample::select(vec!["woocommercerest", "bigcommerce", "ecwid", "one", "x"]),
                                        cfg in config_like(), extra in any_json()) {
        let body = json!({"element": {"key": element}, "name": "n", "configuration": cfg, "tags": extra});
        if let Ok(mut parsed) = parse_instance_body(&body) {
            let _ = validate_configuration(parsed.element, &mut parsed.configuration, &NetGuard::new(false));
        }
        let _ = parse_instance_body(&extra);
    }

    #[test]
    fn fuzz_webhook_parsers_never_panic(body in prop_oneof![any_json().prop_map(|v| v.to_string().into_bytes()), prop::collection::vec(any::<u8>(), 0..256)],
                                        topic in "[a-z_.]{0,24}", auth in ".{0,40}") {
        let mut headers = http::HeaderMap::new();
        if let Ok(v) = http::HeaderValue::from_str(&topic) {
            headers.insert("x-wc-webhook-topic", v.clone());
            headers.insert("x-wc-webhook-signature", v);
        }
        if let Ok(v) = http::HeaderValue::from_str(&auth) {
            headers.insert("authorization", v.clone());
            headers.insert("x-ecwid-webhook-signature", v);
        }
        let req = WebhookRequest { headers: &headers, body: &body };
        let cfg: crate::config::values::Configuration = serde_json::from_value(json!({
            "woocommerce.webhook.secret": "s", "ecwid.client.secret": "s", "one.webhook.username": "u",
            "one.webhook.password": "p", "bigcommerce.webhook.header.secret": "s"})).unwrap();
        for key in elements::known_keys() {
            let element = elements::find(key).unwrap();
            let _ = element.is_handshake(&req);
            let _ = element.webhook_store_identity(&req);
            let _ = element.verify_webhook(&cfg, &req);
            let _ = element.parse_webhook(&req, chrono::Utc::now());
        }
    }
}
