//! Cloud Elements' instance finder, `event.notification.instance.finder`:
//! `"<configuration key>|<payload path>"`. A webhook sent to
//! `/events/{elementKey}` (no instance id, no `Element-Instances` header)
//! reaches every instance of the element whose configuration value at the
//! key equals the payload's value at the (dotted) path. Each found instance
//! still verifies the sender with its own secret.
//!
//! Used by elements that have no store identity of their own (ONe,
//! BigCommerce); Ecwid and WooCommerce route by their store.

use serde_json::Value;

use crate::config::values::{field_path, optional_str, Configuration};
use crate::error::ApiError;

pub const KEY: &str = "event.notification.instance.finder";

/// The finder an instance is found by: the payload path, and the value it
/// must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finder {
    pub payload_path: String,
    pub value: String,
}

impl Finder {
    /// The routing key stored with the instance (`store_key`) and looked up
    /// for a webhook.
    pub fn route_key(element_key: &str, payload_path: &str, value: &str) -> String {
        format!("{element_key}#finder#{payload_path}#{value}")
    }
}

/// The instance's finder, validated: 400 naming the key when it is not
/// `key|path`, or the key it names has no value in the configuration.
pub fn parse(cfg: &Configuration) -> Result<Option<Finder>, ApiError> {
    let Some(raw) = optional_str(cfg, KEY)? else {
        return Ok(None);
    };
    let field = field_path(KEY);
    let (key, path) = raw
        .split_once('|')
        .map(|(k, p)| (k.trim(), p.trim()))
        .filter(|(k, p)| !k.is_empty() && !p.is_empty() && !p.contains('#'))
        .ok_or_else(|| {
            ApiError::field(
                &field,
                format!("must be '<configuration key>|<payload path>', got '{raw}'"),
            )
        })?;
    let value = match cfg.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => {
            return Err(ApiError::field(
                &field,
                format!("names '{key}', which has no value in this configuration"),
            ))
        }
    };
    Ok(Some(Finder {
        payload_path: path.to_string(),
        value,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg(v: Value) -> Configuration {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn finders_name_a_configured_key_and_a_path() {
        let f = parse(&cfg(
            json!({KEY: "one.account|data.account", "one.account": "acct-7"}),
        ))
        .unwrap()
        .unwrap();
        assert_eq!(
            (f.payload_path.as_str(), f.value.as_str()),
            ("data.account", "acct-7")
        );
        assert!(parse(&cfg(json!({}))).unwrap().is_none());
        for bad in [
            json!({KEY: "nopipe"}),
            json!({KEY: "missing.key|x"}),
            json!({KEY: "|x"}),
        ] {
            let e = parse(&cfg(bad)).unwrap_err().to_string();
            assert!(
                e.contains("instance.finder") || e.contains("must be"),
                "{e}"
            );
        }
    }
}
