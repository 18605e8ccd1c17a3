//! A vendor webhook as received, and what an element makes of it.

use http::HeaderMap;
use serde_json::Value;

use crate::error::ApiError;
use crate::events::Event;

/// The parts of an incoming webhook request that elements look at.
#[derive(Debug, Clone, Copy)]
pub struct WebhookRequest<'a> {
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

impl<'a> WebhookRequest<'a> {
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    }

    /// The body as a JSON object; 400 otherwise.
    pub fn json_object(&self) -> Result<serde_json::Map<String, Value>, ApiError> {
        match serde_json::from_slice::<Value>(self.body) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err(ApiError::BadRequest(
                "webhook body must be a JSON object".into(),
            )),
            Err(e) => Err(ApiError::BadRequest(format!(
                "webhook body is not valid JSON: {e}"
            ))),
        }
    }
}

/// What a verified webhook carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookContent {
    /// A handshake or test delivery: answered 2xx, nothing stored.
    Ping,
    /// Changes, with the key that collapses true re-sends of the delivery.
    Events {
        dedupe_key: String,
        events: Vec<Event>,
        /// The object versions the events report, where the payload dates
        /// them; stored as markers with the notification so that a
        /// reconciliation poll does not deliver them again.
        versions: Vec<crate::events::ObjectVersion>,
    },
}

/// Reads a dotted path (`data.orderId`) of a JSON object as text; numbers
/// are rendered.
pub fn text_at(obj: &serde_json::Map<String, Value>, path: &str) -> Option<String> {
    let mut parts = path.split('.');
    let mut current = obj.get(parts.next()?)?;
    for part in parts {
        current = current.as_object()?.get(part)?;
    }
    match current {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Reads a dotted path holding Unix seconds (a number or numeric text) as a
/// time.
pub fn epoch_seconds_at(
    obj: &serde_json::Map<String, Value>,
    path: &str,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let secs = text_at(obj, path)?.parse::<i64>().ok()?;
    chrono::DateTime::from_timestamp(secs, 0)
}

/// The plural object type for a vendor's singular resource name.
pub fn plural_object_type(resource: &str) -> String {
    match resource.to_ascii_lowercase().as_str() {
        "coupon" | "discount_coupon" | "discount" => "discounts".into(),
        "category" => "categories".into(),
        "address" => "addresses".into(),
        r if r.ends_with('s') => r.to_string(),
        r => format!("{r}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_dotted_paths() {
        let v = json!({"data": {"orderId": "XJ12", "n": 5}, "id": 7, "e": ""});
        let o = v.as_object().unwrap();
        assert_eq!(text_at(o, "data.orderId").as_deref(), Some("XJ12"));
        assert_eq!(text_at(o, "data.n").as_deref(), Some("5"));
        assert_eq!(text_at(o, "id").as_deref(), Some("7"));
        assert_eq!(text_at(o, "e"), None);
        assert_eq!(text_at(o, "data.missing"), None);
    }

    #[test]
    fn pluralizes_resources() {
        assert_eq!(plural_object_type("order"), "orders");
        assert_eq!(plural_object_type("coupon"), "discounts");
        assert_eq!(plural_object_type("category"), "categories");
        assert_eq!(plural_object_type("customers"), "customers");
    }
}
