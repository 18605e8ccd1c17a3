//! Secrets stay home: a PATCH that points an instance's outbound traffic at
//! a new host must send the secrets bound to it again.
//!
//! Without this rule anyone holding the organization's API credentials could
//! change only `configuration.store.url` and have the service send the
//! stored consumer secret or password (shown by the API only as `********`)
//! to a host of their choosing; or change only the callback URL and receive
//! payloads signed with the stored signature key.
//!
//! - `store.url` changed: every secret of the element the client supplied
//!   (credentials, webhook verification secrets) must be in the PATCH, with a
//!   value other than the mask. Secrets the service generates itself (e.g.
//!   WooCommerce's webhook secret) are dropped instead, so the new store gets
//!   a fresh one.
//! - `event.notification.callback.url` changed while a signature key is
//!   set: the key must be sent again.
//!
//! Otherwise the answer is 400 naming the first missing secret and listing
//! all of them; nothing is sent anywhere.

use serde_json::{Map, Value};
use shared::config::values::Configuration;
use shared::config::REDACTED;
use shared::elements::Element;
use shared::error::ApiError;

pub const STORE_URL: &str = "store.url";
pub const CALLBACK_URL: &str = "event.notification.callback.url";
pub const SIGNATURE_KEY: &str = "event.notification.signature.key";

/// Whether the PATCH carries a real value for `key` (not `null`, not the
/// mask a client echoes from a GET).
fn sent(changes: Option<&Map<String, Value>>, key: &str) -> bool {
    match changes.and_then(|c| c.get(key)) {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => s != REDACTED,
        Some(_) => true,
    }
}

/// The secrets the element generates itself (it fills them in when they
/// are absent), found by asking it to prepare an empty configuration.
fn generated(element: &dyn Element) -> Vec<String> {
    let mut probe = Configuration::new();
    element.prepare_webhook_configuration(&mut probe);
    probe.keys().cloned().collect()
}

/// Checks a PATCH's outbound URL changes against the secrets it carries;
/// drops generated secrets bound to a store being left. `next` is the merged
/// configuration, `changes` the PATCH's `configuration` object.
pub fn check(
    element: &dyn Element,
    current: &Configuration,
    next: &mut Configuration,
    changes: Option<&Map<String, Value>>,
) -> Result<(), ApiError> {
    let mut missing: Vec<&str> = Vec::new();
    // A new destination; removing a URL sends nothing anywhere (validation
    // then names it as required).
    let changed = |next: &Configuration, key: &str| {
        current.contains_key(key)
            && next.get(key).is_some_and(|v| !v.is_null())
            && current.get(key) != next.get(key)
    };
    if changed(next, STORE_URL) {
        let generated = generated(element);
        for key in element.secret_keys() {
            if !current.contains_key(*key) || !next.contains_key(*key) || sent(changes, key) {
                continue;
            }
            if generated.iter().any(|g| g == key) {
                next.remove(*key);
            } else {
                missing.push(key);
            }
        }
    }
    if changed(next, CALLBACK_URL)
        && current.contains_key(SIGNATURE_KEY)
        && next.contains_key(SIGNATURE_KEY)
        && !sent(changes, SIGNATURE_KEY)
    {
        missing.push(SIGNATURE_KEY);
    }
    let Some(first) = missing.first() else {
        return Ok(());
    };
    let url = if missing.iter().any(|k| *k != SIGNATURE_KEY) {
        STORE_URL
    } else {
        CALLBACK_URL
    };
    let all: Vec<String> = missing
        .iter()
        .map(|k| format!("configuration.{k}"))
        .collect();
    Err(ApiError::field(
        format!("configuration.{first}"),
        format!(
            "changing configuration.{url} requires the secrets bound to it to be sent again: {}",
            all.join(", ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg(v: Value) -> Configuration {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn a_new_store_url_needs_the_store_secrets_again() {
        let element = shared::elements::find("bigcommerce").unwrap();
        let current =
            cfg(json!({"store.url": "https://a.example/api/v2", "username": "u", "password": "p"}));
        let patch = cfg(json!({"store.url": "https://evil.example/api/v2"}));
        let mut next = shared::config::merge_configuration(&current, &patch);
        let err = check(element, &current, &mut next, Some(&patch)).unwrap_err();
        assert!(err.to_string().contains("configuration.password"), "{err}");

        let masked = cfg(json!({"store.url": "https://evil.example/api/v2", "password": REDACTED}));
        let mut next = shared::config::merge_configuration(&current, &masked);
        assert!(check(element, &current, &mut next, Some(&masked)).is_err());

        let resent = cfg(json!({"store.url": "https://evil.example/api/v2", "password": "p2"}));
        let mut next = shared::config::merge_configuration(&current, &resent);
        assert!(check(element, &current, &mut next, Some(&resent)).is_ok());
    }

    #[test]
    fn a_new_callback_needs_the_signature_key_again() {
        let element = shared::elements::find("one").unwrap();
        let current = cfg(
            json!({CALLBACK_URL: "https://a.example/cb", SIGNATURE_KEY: "k",
                                 "one.webhook.password": "pw"}),
        );
        let patch = cfg(json!({CALLBACK_URL: "https://evil.example/cb"}));
        let mut next = shared::config::merge_configuration(&current, &patch);
        let err = check(element, &current, &mut next, Some(&patch)).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("configuration.event.notification.signature.key: changing configuration.event.notification.callback.url"),
            "{err}"
        );
        // Unchanged URLs need nothing.
        let rename = cfg(json!({"other": 1}));
        let mut next = shared::config::merge_configuration(&current, &rename);
        assert!(check(element, &current, &mut next, Some(&rename)).is_ok());
    }
}
