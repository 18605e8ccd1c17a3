//! The Cloud Elements poller configuration (`event.poller.configuration`),
//! accepted as Cloud Elements documented it, with its quirks:
//! - given as an object or as a JSON string;
//! - each resource's `url` is a hub path with an optional `?where=` clause;
//! - `datesConfiguration` spelled `updatedAtField` or `updatedDateField`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::values::{json_type, optional_str_at, required_str_at};
use crate::elements::{Element, HubResource};
use crate::error::ApiError;

pub const FIELD: &str = "configuration.event.poller.configuration";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollResource {
    /// The key the client gave the resource (`contacts`, `orders`, …).
    pub name: String,
    /// The hub resource it polls, e.g. `customers`.
    pub resource: String,
    /// The `where` clause after `?where=`, macros still unexpanded.
    pub where_clause: Option<String>,
    pub id_field: String,
    pub dates: DatesConfiguration,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatesConfiguration {
    pub updated_field: Option<String>,
    pub updated_format: Option<String>,
    pub updated_timezone: Option<String>,
    pub created_field: Option<String>,
    pub created_format: Option<String>,
    pub created_timezone: Option<String>,
}

/// Turns the configuration value into an object, parsing it when it came as a
/// JSON string.
pub fn normalize(value: &Value) -> Result<Map<String, Value>, ApiError> {
    match value {
        Value::Object(map) => Ok(map.clone()),
        Value::String(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(other) => Err(ApiError::field(
                FIELD,
                format!("must be a JSON object, got {}", json_type(&other)),
            )),
            Err(e) => Err(ApiError::field(
                FIELD,
                format!("is a string but not valid JSON: {e}"),
            )),
        },
        other => Err(ApiError::field(
            FIELD,
            format!(
                "must be a JSON object or a JSON string, got {}",
                json_type(other)
            ),
        )),
    }
}

pub fn parse(
    element: &dyn Element,
    config: &Map<String, Value>,
) -> Result<Vec<PollResource>, ApiError> {
    if config.is_empty() {
        return Err(ApiError::field(
            FIELD,
            "must configure at least one resource to poll",
        ));
    }
    config
        .iter()
        .map(|(name, spec)| parse_resource(element, name, spec))
        .collect()
}

fn parse_resource(
    element: &dyn Element,
    name: &str,
    spec: &Value,
) -> Result<PollResource, ApiError> {
    let base = format!("{FIELD}.{name}");
    let obj = spec.as_object().ok_or_else(|| {
        ApiError::field(&base, format!("must be an object, got {}", json_type(spec)))
    })?;
    let url_field = format!("{base}.url");
    let url = required_str_at(obj, "url", &url_field)?;
    let (resource, where_clause) = parse_hub_url(element, &url_field, &url)?;
    let id_field = optional_str_at(obj, "idField", &format!("{base}.idField"))?
        .unwrap_or_else(|| "id".to_string());
    let dates = match obj.get("datesConfiguration") {
        None | Some(Value::Null) => DatesConfiguration::default(),
        Some(Value::Object(d)) => parse_dates(d, &format!("{base}.datesConfiguration"))?,
        Some(other) => {
            return Err(ApiError::field(
                format!("{base}.datesConfiguration"),
                format!("must be an object, got {}", json_type(other)),
            ))
        }
    };
    if let Some(clause) = &where_clause {
        for condition in crate::config::where_clause::parse(clause, &url_field)? {
            crate::config::macros::validate(&condition.value, &url_field)?;
        }
    }
    validate_dates(&dates, &format!("{base}.datesConfiguration"))?;
    Ok(PollResource {
        name: name.to_string(),
        resource: resource.name.to_string(),
        where_clause,
        id_field,
        dates,
    })
}

/// `/hubs/ecommerce/orders?where=…` → (known hub resource, where clause).
fn parse_hub_url<'e>(
    element: &'e dyn Element,
    field: &str,
    url: &str,
) -> Result<(&'e HubResource, Option<String>), ApiError> {
    let (path, query) = match url.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (url, None),
    };
    let path = path.trim_end_matches('/');
    let known = element.hub_resources();
    let resource = known.iter().find(|r| r.hub_path() == path).ok_or_else(|| {
        let list: Vec<String> = known.iter().map(HubResource::hub_path).collect();
        ApiError::field(
            field,
            format!(
                "unknown resource '{path}' for element {}; known resources: {}",
                element.key(),
                list.join(", ")
            ),
        )
    })?;
    let where_clause = match query {
        None => None,
        Some(q) => {
            let clause = q.strip_prefix("where=").ok_or_else(|| {
                ApiError::field(field, "only a 'where=' query is supported after '?'")
            })?;
            // Clients paste clauses both raw (as the docs show) and encoded.
            let decoded = if clause.contains('%') {
                url::form_urlencoded::parse(format!("w={clause}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            } else {
                clause.to_string()
            };
            if decoded.trim().is_empty() {
                return Err(ApiError::field(field, "'where=' is empty"));
            }
            Some(decoded)
        }
    };
    Ok((resource, where_clause))
}

fn parse_dates(d: &Map<String, Value>, base: &str) -> Result<DatesConfiguration, ApiError> {
    // Both spellings appear in the Cloud Elements docs; `…At…` is the newer.
    let pick = |suffix: &str| -> Result<Option<String>, ApiError> {
        for prefix in ["At", "Date"] {
            let key = suffix.replace('#', prefix);
            if let Some(v) = optional_str_at(d, &key, &format!("{base}.{key}"))? {
                return Ok(Some(v));
            }
        }
        Ok(None)
    };
    Ok(DatesConfiguration {
        updated_field: pick("updated#Field")?,
        updated_format: pick("updated#Format")?,
        updated_timezone: pick("updated#Timezone")?,
        created_field: pick("created#Field")?,
        created_format: pick("created#Format")?,
        created_timezone: pick("created#Timezone")?,
    })
}

/// Every format compiles and every zone is one we can apply.
fn validate_dates(d: &DatesConfiguration, base: &str) -> Result<(), ApiError> {
    for (format, key) in [
        (&d.updated_format, "updatedAtFormat"),
        (&d.created_format, "createdAtFormat"),
    ] {
        if let Some(f) = format {
            crate::javadate::JavaDateFormat::compile(f).map_err(|e| {
                ApiError::field(
                    format!("{base}.{key}"),
                    format!("'{f}' is not a usable date format: {e}"),
                )
            })?;
        }
    }
    for (zone, key) in [
        (&d.updated_timezone, "updatedAtTimezone"),
        (&d.created_timezone, "createdAtTimezone"),
    ] {
        if let Some(z) = zone {
            crate::javadate::parse_zone(z).map_err(|e| {
                ApiError::field(
                    format!("{base}.{key}"),
                    format!("{e}; use UTC, GMT or an offset such as +02:00"),
                )
            })?;
        }
    }
    Ok(())
}
