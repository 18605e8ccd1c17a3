//! The Cloud Elements instance body and its configuration, parsed and
//! validated into what the rest of the system relies on.

pub mod poller;
pub mod values;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::elements::{self, Element, EventMode};
use crate::error::ApiError;
use crate::netguard::NetGuard;
use poller::PollResource;
use values::{
    field_path, http_url, optional_bool, optional_positive_int, optional_str, Configuration,
};

/// The polling interval when a polling instance names none, as Cloud Elements.
pub const DEFAULT_POLL_INTERVAL_MINUTES: u32 = 15;

/// How often a webhook instance of an element that reconciles is polled for
/// what its webhooks missed, unless `event.reconciliation.interval` says.
pub const DEFAULT_RECONCILIATION_INTERVAL_MINUTES: u32 = 60;

/// The configuration key of the reconciliation interval, in minutes.
pub const RECONCILIATION_INTERVAL_KEY: &str = "event.reconciliation.interval";

/// `POST /instances` body: the fields we use; unknown top-level fields are
/// ignored, as Cloud Elements did.
#[derive(Debug, Clone)]
pub struct InstanceBody {
    pub element: &'static dyn Element,
    pub name: String,
    pub tags: Vec<String>,
    pub configuration: Configuration,
}

/// What the event configuration means, derived from the configuration map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventSettings {
    pub enabled: bool,
    pub callback_url: Option<String>,
    pub mode: Option<EventMode>,
    pub poll_interval_minutes: Option<u32>,
    pub poll_resources: Vec<PollResource>,
}

impl EventSettings {
    /// The interval this instance is polled at: polling instances, and
    /// webhook instances that are reconciled, with events on.
    pub fn poll_interval(&self) -> Option<u32> {
        if self.enabled && !self.poll_resources.is_empty() {
            self.poll_interval_minutes
        } else {
            None
        }
    }
}

pub fn parse_instance_body(body: &Value) -> Result<InstanceBody, ApiError> {
    let obj = body
        .as_object()
        .ok_or_else(|| ApiError::BadRequest("request body must be a JSON object".into()))?;
    let element = parse_element(obj.get("element"))?;
    let name = match obj.get("name") {
        Some(Value::String(s)) if !s.trim().is_empty() => {
            if values::is_unfilled_placeholder(s) {
                return Err(ApiError::field(
                    "name",
                    format!("'{s}' looks like an unfilled placeholder"),
                ));
            }
            s.trim().to_string()
        }
        Some(Value::String(_)) => return Err(ApiError::required("name")),
        // The BigCommerce docs' OAuth example sends no name at all.
        None | Some(Value::Null) => format!("{} instance", element.key()),
        Some(other) => {
            return Err(ApiError::field(
                "name",
                format!("must be a string, got {}", values::json_type(other)),
            ))
        }
    };
    let tags = parse_tags(obj.get("tags"))?;
    let configuration = match obj.get("configuration") {
        Some(Value::Object(map)) => map.clone(),
        None | Some(Value::Null) => return Err(ApiError::required("configuration")),
        Some(other) => {
            return Err(ApiError::field(
                "configuration",
                format!("must be an object, got {}", values::json_type(other)),
            ))
        }
    };
    Ok(InstanceBody {
        element,
        name,
        tags,
        configuration,
    })
}

fn parse_element(value: Option<&Value>) -> Result<&'static dyn Element, ApiError> {
    let key = match value {
        Some(Value::Object(e)) => match e.get("key") {
            Some(Value::String(k)) if !k.trim().is_empty() => k.trim().to_string(),
            Some(Value::String(_)) | None | Some(Value::Null) => {
                return Err(ApiError::required("element.key"))
            }
            Some(other) => {
                return Err(ApiError::field(
                    "element.key",
                    format!("must be a string, got {}", values::json_type(other)),
                ))
            }
        },
        None | Some(Value::Null) => return Err(ApiError::required("element.key")),
        Some(other) => {
            return Err(ApiError::field(
                "element",
                format!(
                    "must be an object with a key, got {}",
                    values::json_type(other)
                ),
            ))
        }
    };
    elements::find(&key).ok_or_else(|| {
        ApiError::field(
            "element.key",
            format!(
                "unknown element '{key}'; known elements: {}",
                elements::known_keys().join(", ")
            ),
        )
    })
}

pub fn parse_tags(value: Option<&Value>) -> Result<Vec<String>, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => {
            let mut tags = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match item {
                    // The docs' templates hold `[""]`: an empty tag is no tag.
                    Value::String(s) if s.trim().is_empty() => {}
                    Value::String(s) if values::is_unfilled_placeholder(s) => {
                        return Err(ApiError::field(
                            format!("tags[{i}]"),
                            format!("'{s}' looks like an unfilled placeholder"),
                        ))
                    }
                    Value::String(s) => tags.push(s.trim().to_string()),
                    other => {
                        return Err(ApiError::field(
                            format!("tags[{i}]"),
                            format!("must be a string, got {}", values::json_type(other)),
                        ))
                    }
                }
            }
            Ok(tags)
        }
        Some(other) => Err(ApiError::field(
            "tags",
            format!(
                "must be an array of strings, got {}",
                values::json_type(other)
            ),
        )),
    }
}

/// Validates the configuration for `element` and derives its event settings.
/// Normalizes in place what Cloud Elements accepted in two forms: a poller
/// configuration sent as a JSON string is stored as an object.
pub fn validate_configuration(
    element: &dyn Element,
    cfg: &mut Configuration,
    guard: &NetGuard,
) -> Result<EventSettings, ApiError> {
    reject_placeholders(cfg)?;
    element.validate_credentials(cfg)?;
    for key in element.outbound_url_keys() {
        if let Some(raw) = optional_str(cfg, key)? {
            let url = http_url(&field_path(key), &raw)?;
            guard.check_field(&field_path(key), &url)?;
        }
    }

    let enabled = optional_bool(cfg, "event.notification.enabled")?.unwrap_or(false);
    let callback_url = match optional_str(cfg, "event.notification.callback.url")? {
        Some(raw) => {
            let field = field_path("event.notification.callback.url");
            let url = http_url(&field, &raw)?;
            guard.check_field(&field, &url)?;
            Some(raw)
        }
        None if enabled => {
            return Err(ApiError::required(field_path(
                "event.notification.callback.url",
            )))
        }
        None => None,
    };
    optional_str(cfg, "event.notification.signature.key")?;

    if let Some(raw) = cfg.get("event.poller.configuration") {
        if !raw.is_null() {
            let normalized = poller::normalize(raw)?;
            cfg.insert(
                "event.poller.configuration".into(),
                Value::Object(normalized),
            );
        }
    }
    let interval = optional_positive_int(cfg, "event.poller.refresh_interval")?;
    let mode = event_mode(element, cfg)?;

    let mut settings = EventSettings {
        enabled,
        callback_url,
        mode,
        poll_interval_minutes: None,
        poll_resources: Vec::new(),
    };
    match mode {
        Some(EventMode::Polling) => {
            let given = cfg
                .get("event.poller.configuration")
                .and_then(Value::as_object)
                .cloned();
            let poller_cfg = match given {
                Some(map) => map,
                None => element
                    .default_poller_configuration()
                    .and_then(|v| v.as_object().cloned())
                    .unwrap_or_default(),
            };
            settings.poll_resources = poller::parse(element, &poller_cfg)?;
            settings.poll_interval_minutes =
                Some(interval.unwrap_or(DEFAULT_POLL_INTERVAL_MINUTES));
        }
        Some(EventMode::Webhook) if enabled => {
            element.validate_webhook_settings(cfg)?;
            if element.reconciles_webhooks() {
                // Webhooks are hints: the same poller, cursors and markers
                // deliver what they missed, on a slow schedule.
                let poller_cfg = match cfg.get("event.poller.configuration").and_then(Value::as_object) {
                    Some(map) => map.clone(),
                    None => element
                        .default_poller_configuration()
                        .and_then(|v| v.as_object().cloned())
                        .unwrap_or_default(),
                };
                settings.poll_resources = poller::parse(element, &poller_cfg)?;
                settings.poll_interval_minutes = Some(
                    optional_positive_int(cfg, RECONCILIATION_INTERVAL_KEY)?
                        .unwrap_or(DEFAULT_RECONCILIATION_INTERVAL_MINUTES),
                );
            }
        }
        _ => {}
    }
    Ok(settings)
}

fn event_mode(element: &dyn Element, cfg: &Configuration) -> Result<Option<EventMode>, ApiError> {
    let field = field_path("event.vendor.type");
    let supported = element.modes();
    let named = match optional_str(cfg, "event.vendor.type")? {
        Some(raw) => Some(match raw.to_ascii_lowercase().as_str() {
            "polling" => EventMode::Polling,
            "webhook" | "webhooks" => EventMode::Webhook,
            _ => {
                return Err(ApiError::field(
                    &field,
                    format!("must be 'polling' or 'webhook', got '{raw}'"),
                ))
            }
        }),
        None => None,
    };
    match named {
        Some(mode) if supported.contains(&mode) => Ok(Some(mode)),
        Some(mode) => Err(ApiError::field(
            &field,
            format!(
                "element {} does not support {} events; it supports: {}",
                element.key(),
                mode.as_str(),
                supported
                    .iter()
                    .map(|m| m.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
        None if supported.len() == 1 => Ok(Some(supported[0])),
        // Both modes possible: a poller configuration says which was meant.
        None if cfg.contains_key("event.poller.configuration") => Ok(Some(EventMode::Polling)),
        None if optional_bool(cfg, "event.notification.enabled")?.unwrap_or(false) => {
            Err(ApiError::field(
                &field,
                "is required for this element: 'polling' or 'webhook'",
            ))
        }
        None => Ok(None),
    }
}

/// Any string value that is still a `<PLACEHOLDER>` is an error naming its key.
fn reject_placeholders(cfg: &Configuration) -> Result<(), ApiError> {
    for (key, value) in cfg {
        if let Value::String(s) = value {
            if values::is_unfilled_placeholder(s) {
                return Err(ApiError::field(
                    field_path(key),
                    format!("'{s}' looks like an unfilled placeholder; put the real value here"),
                ));
            }
        }
    }
    Ok(())
}

/// Splits a configuration into its public part and its secret part.
pub fn split_secrets(element: &dyn Element, cfg: &Configuration) -> (Configuration, Configuration) {
    let mut public = Map::new();
    let mut secret = Map::new();
    for (k, v) in cfg {
        if elements::all_secret_keys(element).any(|s| s == k) {
            secret.insert(k.clone(), v.clone());
        } else {
            public.insert(k.clone(), v.clone());
        }
    }
    (public, secret)
}

/// The mask shown in place of every secret value.
pub const REDACTED: &str = "********";

/// The configuration as a response may show it: secrets masked.
pub fn redact(element: &dyn Element, cfg: &Configuration) -> Configuration {
    let mut shown = cfg.clone();
    for key in elements::all_secret_keys(element) {
        if let Some(v) = shown.get_mut(key) {
            *v = Value::String(REDACTED.into());
        }
    }
    shown
}

/// Merges a PATCH configuration into the current one: keys set to a value
/// replace, keys set to `null` are removed, and a secret sent back as the
/// redaction mask keeps its stored value (clients echo GET responses).
pub fn merge_configuration(current: &Configuration, patch: &Map<String, Value>) -> Configuration {
    let mut merged = current.clone();
    for (k, v) in patch {
        match v {
            Value::Null => {
                merged.remove(k);
            }
            Value::String(s) if s == REDACTED => {}
            _ => {
                merged.insert(k.clone(), v.clone());
            }
        }
    }
    merged
}
