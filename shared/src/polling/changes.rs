//! A vendor object as a change: its id, modified and created times read with
//! the resource's `idField` and `datesConfiguration`, and its event type.

use chrono::{DateTime, Duration, FixedOffset, Utc};
use serde_json::Value;

use crate::config::poller::{DatesConfiguration, PollResource};
use crate::events::EventType;
use crate::javadate::{parse_zone, JavaDateFormat};

/// Created and updated times closer than this make a CREATED event: stores
/// stamp both fields in the same save, a moment apart.
pub const CREATED_TOLERANCE_SECS: i64 = 1;

#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub object_id: String,
    pub modified: DateTime<Utc>,
    pub event_type: EventType,
    pub object: Value,
}

/// How to read one resource's objects: fields, formats, zones.
#[derive(Debug, Clone)]
pub struct ChangeReader {
    id_field: String,
    updated: DateField,
    created: Option<DateField>,
}

#[derive(Debug, Clone)]
struct DateField {
    path: String,
    format: Option<JavaDateFormat>,
    zone: FixedOffset,
}

fn utc() -> FixedOffset {
    FixedOffset::east_opt(0).expect("zero offset")
}

impl ChangeReader {
    /// The client's configuration, with the element's defaults for what it
    /// leaves out (the docs' `"datesConfiguration": {}`).
    pub fn new(poll: &PollResource, defaults: &DatesConfiguration) -> Result<Self, String> {
        let d = &poll.dates;
        let field = |given: &Option<String>, default: &Option<String>| {
            given.clone().or_else(|| default.clone())
        };
        let build = |path: Option<String>,
                     format: Option<String>,
                     zone: Option<String>|
         -> Result<Option<DateField>, String> {
            let Some(path) = path else { return Ok(None) };
            let format = format
                .map(|f| JavaDateFormat::compile(&f).map_err(|e| format!("date format '{f}': {e}")))
                .transpose()?;
            let zone = zone
                .map(|z| parse_zone(&z).map_err(|e| e.to_string()))
                .transpose()?
                .unwrap_or_else(utc);
            Ok(Some(DateField { path, format, zone }))
        };
        // The updated field's format and zone come with the field: a client
        // naming its own field is not given the default's format.
        let (up_path, up_format, up_zone) = if d.updated_field.is_some() {
            (
                d.updated_field.clone(),
                d.updated_format.clone(),
                d.updated_timezone.clone(),
            )
        } else {
            (
                defaults.updated_field.clone(),
                field(&d.updated_format, &defaults.updated_format),
                field(&d.updated_timezone, &defaults.updated_timezone),
            )
        };
        let (cr_path, cr_format, cr_zone) = if d.created_field.is_some() {
            (
                d.created_field.clone(),
                d.created_format.clone(),
                d.created_timezone.clone(),
            )
        } else {
            (
                defaults.created_field.clone(),
                field(&d.created_format, &defaults.created_format),
                field(&d.created_timezone, &defaults.created_timezone),
            )
        };
        let updated = build(up_path, up_format, up_zone)?
            .ok_or_else(|| "no updated date field".to_string())?;
        Ok(Self {
            id_field: poll.id_field.clone(),
            updated,
            created: build(cr_path, cr_format, cr_zone)?,
        })
    }

    pub fn read(&self, object: Value) -> Result<Change, String> {
        let object_id = text_at(&object, &self.id_field)
            .ok_or_else(|| format!("no {} in the object", self.id_field))?;
        let modified = self.updated.read(&object)?;
        let event_type = match self.created.as_ref().map(|c| c.read(&object)) {
            Some(Ok(created))
                if (modified - created).abs() <= Duration::seconds(CREATED_TOLERANCE_SECS) =>
            {
                EventType::Created
            }
            _ => EventType::Updated,
        };
        Ok(Change {
            object_id,
            modified,
            event_type,
            object,
        })
    }
}

impl DateField {
    fn read(&self, object: &Value) -> Result<DateTime<Utc>, String> {
        let text =
            text_at(object, &self.path).ok_or_else(|| format!("no {} in the object", self.path))?;
        match &self.format {
            Some(format) => format
                .parse(&text, self.zone)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| e.to_string()),
            // No format given: the ISO and RFC forms stores use.
            None => DateTime::parse_from_rfc3339(&text)
                .or_else(|_| DateTime::parse_from_rfc2822(&text))
                .map(|t| t.with_timezone(&Utc))
                .or_else(|_| {
                    chrono::NaiveDateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M:%S")
                        .map(|t| {
                            t.and_local_timezone(self.zone)
                                .single()
                                .map(|t| t.with_timezone(&Utc))
                        })
                        .ok()
                        .flatten()
                        .ok_or(())
                })
                .map_err(|_| {
                    format!(
                        "'{text}' in {} is not a date this poller can read; set its format",
                        self.path
                    )
                }),
        }
    }
}

/// A dotted path of an object, as text (`crate::webhook::text_at`).
fn text_at(object: &Value, path: &str) -> Option<String> {
    crate::webhook::text_at(object.as_object()?, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn poll(dates: DatesConfiguration) -> PollResource {
        PollResource {
            name: "orders".into(),
            resource: "orders".into(),
            where_clause: None,
            id_field: "id".into(),
            dates,
        }
    }

    #[test]
    fn reads_dotted_fields_formats_and_classifies() {
        let dates = DatesConfiguration {
            updated_field: Some("_info.lastUpdated".into()),
            updated_format: Some("yyyy-MM-dd'T'HH:mm:ss'Z'".into()),
            updated_timezone: Some("GMT".into()),
            created_field: Some("_info.created".into()),
            created_format: Some("yyyy-MM-dd'T'HH:mm:ss'Z'".into()),
            created_timezone: None,
        };
        let reader = ChangeReader::new(&poll(dates), &DatesConfiguration::default()).unwrap();
        let c = reader.read(json!({"id": 7, "_info": {"lastUpdated": "2026-11-23T10:15:30Z", "created": "2026-11-23T10:15:30Z"}})).unwrap();
        assert_eq!(
            (c.object_id.as_str(), c.event_type),
            ("7", EventType::Created)
        );
        let u = reader.read(json!({"id": 7, "_info": {"lastUpdated": "2026-11-23T10:15:30Z", "created": "2026-11-20T10:15:30Z"}})).unwrap();
        assert_eq!(u.event_type, EventType::Updated);
        assert!(reader.read(json!({"_info": {}})).is_err());
    }

    #[test]
    fn empty_dates_configuration_takes_the_element_defaults() {
        let defaults = DatesConfiguration {
            updated_field: Some("date_modified".into()),
            updated_format: Some("EEE, dd MMM yyyy HH:mm:ss Z".into()),
            created_field: Some("date_created".into()),
            created_format: Some("EEE, dd MMM yyyy HH:mm:ss Z".into()),
            ..Default::default()
        };
        let reader = ChangeReader::new(&poll(DatesConfiguration::default()), &defaults).unwrap();
        let c = reader
            .read(json!({"id": 1, "date_modified": "Tue, 20 Nov 2012 00:00:01 +0000", "date_created": "Tue, 20 Nov 2012 00:00:00 +0000"}))
            .unwrap();
        assert_eq!(c.event_type, EventType::Created, "within the 1 s tolerance");
        assert_eq!(c.modified.to_rfc3339(), "2012-11-20T00:00:01+00:00");
    }
}
