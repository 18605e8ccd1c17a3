//! Typed reads of a Cloud Elements `configuration` map.
//!
//! Cloud Elements clients send booleans as `"true"`, numbers as `"15"` and
//! leave `<PLACEHOLDER>` text in copied examples; these readers accept the
//! first two and reject the third, always naming the offending key.

use serde_json::{Map, Value};

use crate::error::ApiError;

pub type Configuration = Map<String, Value>;

/// The field path used in error messages for a configuration key.
pub fn field_path(key: &str) -> String {
    format!("configuration.{key}")
}

/// `<SOMETHING>` left in from a documentation example.
pub fn is_unfilled_placeholder(value: &str) -> bool {
    let v = value.trim();
    v.len() >= 3 && v.starts_with('<') && v.ends_with('>')
}

/// Reads `key` as text. Numbers are accepted and rendered, since clients send
/// ids such as `ecwid.store.id` either way. Missing, null and blank are `None`.
pub fn optional_str(cfg: &Configuration, key: &str) -> Result<Option<String>, ApiError> {
    optional_str_at(cfg, key, &field_path(key))
}

pub(crate) fn optional_str_at(
    obj: &Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<Option<String>, ApiError> {
    let text = match obj.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => {
            return Err(ApiError::field(
                field,
                format!("must be a string, got {}", json_type(other)),
            ))
        }
    };
    if text.is_empty() {
        return Ok(None);
    }
    if is_unfilled_placeholder(&text) {
        return Err(ApiError::field(
            field,
            format!("'{text}' looks like an unfilled placeholder; put the real value here"),
        ));
    }
    Ok(Some(text))
}

pub fn required_str(cfg: &Configuration, key: &str) -> Result<String, ApiError> {
    optional_str(cfg, key)?.ok_or_else(|| ApiError::required(field_path(key)))
}

pub(crate) fn required_str_at(
    obj: &Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<String, ApiError> {
    optional_str_at(obj, key, field)?.ok_or_else(|| ApiError::required(field))
}

/// Reads a boolean sent as `true` or `"true"` (any case).
pub fn optional_bool(cfg: &Configuration, key: &str) -> Result<Option<bool>, ApiError> {
    match cfg.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "" => Ok(None),
            "true" => Ok(Some(true)),
            "false" => Ok(Some(false)),
            _ => Err(ApiError::field(
                field_path(key),
                format!("must be true or false, got '{s}'"),
            )),
        },
        Some(other) => Err(ApiError::field(
            field_path(key),
            format!("must be true or false, got {}", json_type(other)),
        )),
    }
}

/// Reads a positive whole number sent as `15` or `"15"`.
pub fn optional_positive_int(cfg: &Configuration, key: &str) -> Result<Option<u32>, ApiError> {
    let field = field_path(key);
    let invalid = |shown: String| {
        ApiError::field(
            &field,
            format!("must be a positive whole number of minutes, got {shown}"),
        )
    };
    match cfg.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) if v > 0 && v <= u32::MAX as u64 => Ok(Some(v as u32)),
            _ => Err(invalid(n.to_string())),
        },
        Some(Value::String(s)) => {
            let t = s.trim();
            if t.is_empty() {
                return Err(ApiError::required(&field));
            }
            match t.parse::<u32>() {
                Ok(v) if v > 0 => Ok(Some(v)),
                _ => Err(invalid(format!("'{s}'"))),
            }
        }
        Some(other) => Err(invalid(json_type(other).to_string())),
    }
}

/// An absolute http(s) URL with a host.
pub fn http_url(field: &str, text: &str) -> Result<url::Url, ApiError> {
    let parsed = url::Url::parse(text)
        .map_err(|e| ApiError::field(field, format!("must be an absolute http(s) URL ({e})")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(ApiError::field(
            field,
            format!("must use http or https, not '{}'", parsed.scheme()),
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(ApiError::field(field, "must name a host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        // Credentials in URLs end up in logs; they have their own fields.
        return Err(ApiError::field(
            field,
            "must not carry a user name or password",
        ));
    }
    Ok(parsed)
}

pub fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg(v: Value) -> Configuration {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn strings_numbers_blank_and_placeholders() {
        let c = cfg(json!({"a": " x ", "n": 1234, "e": "", "p": "<INSERT_STORE_ID>", "o": {}}));
        assert_eq!(optional_str(&c, "a").unwrap().as_deref(), Some("x"));
        assert_eq!(optional_str(&c, "n").unwrap().as_deref(), Some("1234"));
        assert_eq!(optional_str(&c, "e").unwrap(), None);
        assert_eq!(optional_str(&c, "missing").unwrap(), None);
        let err = optional_str(&c, "p").unwrap_err();
        assert_eq!(err.field_name(), Some("configuration.p"));
        assert!(err.to_string().contains("placeholder"));
        assert_eq!(
            optional_str(&c, "o").unwrap_err().field_name(),
            Some("configuration.o")
        );
        assert_eq!(
            required_str(&c, "e").unwrap_err().field_name(),
            Some("configuration.e")
        );
    }

    #[test]
    fn booleans_as_strings() {
        let c = cfg(json!({"t": "true", "f": false, "T": "TRUE", "bad": "yes"}));
        assert_eq!(optional_bool(&c, "t").unwrap(), Some(true));
        assert_eq!(optional_bool(&c, "f").unwrap(), Some(false));
        assert_eq!(optional_bool(&c, "T").unwrap(), Some(true));
        assert!(optional_bool(&c, "bad").is_err());
    }

    #[test]
    fn intervals_as_strings_or_numbers() {
        let c = cfg(
            json!({"s": "15", "n": 5, "z": "0", "neg": -1, "e": "", "frac": 1.5, "w": "<minutes>"}),
        );
        assert_eq!(optional_positive_int(&c, "s").unwrap(), Some(15));
        assert_eq!(optional_positive_int(&c, "n").unwrap(), Some(5));
        for bad in ["z", "neg", "e", "frac", "w"] {
            let err = optional_positive_int(&c, bad).unwrap_err();
            assert_eq!(err.field_name(), Some(field_path(bad).as_str()), "{bad}");
        }
    }

    #[test]
    fn urls_must_be_absolute_http() {
        assert!(http_url("f", "https://shop.example.com/x").is_ok());
        for bad in [
            "mycoolapp.com",
            "ftp://x.com",
            "http://",
            "/relative",
            "https://u:p@x.com",
        ] {
            assert!(http_url("f", bad).is_err(), "{bad}");
        }
    }
}
