//! The instance bodies of ../shared/seeds, copied verbatim into
//! tests/fixtures/seeds/, and the values a user fills their placeholders with.

use serde_json::Value;

pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/seeds");

pub fn names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(FIXTURES)
        .expect("fixtures folder exists")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    names
}

pub fn load(name: &str) -> Value {
    let text = std::fs::read_to_string(format!("{FIXTURES}/{name}")).expect("fixture exists");
    serde_json::from_str(&text).expect("fixture is JSON")
}

pub fn is_placeholder(v: &Value) -> bool {
    matches!(v, Value::String(s) if s.trim().is_empty() || (s.starts_with('<') && s.ends_with('>')))
}

/// The real value a user would put in place of a placeholder, by key.
pub fn fill_value(element: &str, key: &str) -> Value {
    let text = match (element, key) {
        ("bigcommerce", "store.url") => "https://store-wuxeae6.mybigcommerce.com/api/v2",
        (_, "store.url") => "https://shop.example.com",
        (_, "oauth.api.key") => "ck_2f5e1b0c9a8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f",
        (_, "oauth.api.secret") => "cs_9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b",
        (_, "event.notification.signature.key") => "sig-key-7f3a9c",
        (_, "event.poller.refresh_interval") => "15",
        (_, "event.notification.callback.url") => "https://mycoolapp.com/events",
        (_, "ecwid.store.id") => "1003",
        (_, "ecwid.order.key") => "secret_order_4b2c",
        (_, "ecwid.product.key") => "secret_product_9d1e",
        (_, "username") => "store-admin",
        (_, "password") => "api-token-5e6f",
        (_, other) => panic!("no fill value for placeholder key {other}"),
    };
    Value::String(text.to_string())
}

/// The body with every placeholder filled, as a user sends it.
pub fn filled(name: &str) -> Value {
    let mut body = load(name);
    let element = body["element"]["key"].as_str().unwrap().to_string();
    let cfg = body["configuration"].as_object_mut().unwrap();
    for (key, value) in cfg.iter_mut() {
        if is_placeholder(value) {
            *value = fill_value(&element, key);
        }
    }
    if body.get("name").is_some_and(is_placeholder) {
        body["name"] = Value::String("My store".into());
    }
    if let Some(tags) = body.get_mut("tags").and_then(Value::as_array_mut) {
        for tag in tags.iter_mut() {
            if is_placeholder(tag) {
                *tag = Value::String("Docs".into());
            }
        }
    }
    body
}

/// Configuration keys the body leaves as placeholders.
pub fn placeholder_keys(name: &str) -> Vec<String> {
    let body = load(name);
    body["configuration"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, v)| is_placeholder(v))
        .map(|(k, _)| k.clone())
        .collect()
}
