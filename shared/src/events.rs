//! The normalized event and the notification that carries events to the
//! client's callback URL (DESIGN.md §5 "Callback").

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::model::format_date;

/// At most this many events go in one notification built from a webhook.
pub const MAX_EVENTS_PER_WEBHOOK_NOTIFICATION: usize = 20;
/// At most this many events go in one notification built by polling.
pub const MAX_EVENTS_PER_POLL_NOTIFICATION: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum EventType {
    Created,
    Updated,
    Deleted,
    Unknown,
}

impl EventType {
    /// The event type a vendor verb means (`created`, `updated`, `deleted`,
    /// `restored`, …); anything else is `Unknown`.
    pub fn from_verb(verb: &str) -> Self {
        match verb.to_ascii_lowercase().as_str() {
            "created" | "create" | "added" => EventType::Created,
            "updated" | "update" | "restored" | "edited" | "changed" | "statusupdated" => {
                EventType::Updated
            }
            "deleted" | "delete" | "removed" | "archived" => EventType::Deleted,
            _ => EventType::Unknown,
        }
    }
}

/// One change of one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub object_type: String,
    pub object_id: String,
    pub event_type: EventType,
    pub event_date: String,
    /// Cloud Elements' events carry `date` beside `eventDate`, the same value.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub date: String,
    pub element_key: String,
    pub hub_key: String,
    /// The vendor's own name for the event, where it has one worth keeping.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub vendor_event_type: Option<String>,
    /// What the vendor said beyond the object, where the object alone would
    /// mislead (a BigCommerce address event names the address, the event is
    /// about its customer; an unmapped scope keeps its `data`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub vendor_detail: Option<serde_json::Value>,
}

impl Event {
    pub fn new(
        element_key: &str,
        object_type: impl Into<String>,
        object_id: impl Into<String>,
        event_type: EventType,
        event_date: DateTime<Utc>,
    ) -> Self {
        let event_date = format_date(event_date);
        Self {
            object_type: object_type.into(),
            object_id: object_id.into(),
            event_type,
            date: event_date.clone(),
            event_date,
            element_key: element_key.to_string(),
            hub_key: "ecommerce".to_string(),
            vendor_event_type: None,
            vendor_detail: None,
        }
    }

    pub fn with_vendor_event_type(mut self, name: impl Into<String>) -> Self {
        self.vendor_event_type = Some(name.into());
        self
    }

    pub fn with_vendor_detail(mut self, detail: serde_json::Value) -> Self {
        self.vendor_detail = Some(detail);
        self
    }
}

/// One version of one object: (hub resource, object id, modified). A poll
/// and a webhook that saw the same version mark it alike, so whichever
/// stores it second finds it already notified.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ObjectVersion {
    pub resource: String,
    pub object_id: String,
    pub modified_ms: i64,
}

/// Where a notification came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Webhook,
    Polling,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Webhook => "webhook",
            Source::Polling => "polling",
        }
    }
}

/// One callback to be delivered: 1..n events and the raw vendor data.
/// Serializable so that the ingestion spool can carry it (shared::spool).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Stable across delivery attempts and across vendor retries of the same
    /// change: derived from the instance and the vendor's dedupe key.
    pub id: String,
    pub instance_id: u64,
    pub org_id: String,
    pub element_key: String,
    pub source: Source,
    pub events: Vec<Event>,
    /// The vendor's body, byte for byte (JSON text).
    pub raw: String,
    pub dedupe_key: String,
    pub created_at: DateTime<Utc>,
}

/// The notification id for a dedupe key: the same change reported twice by
/// the vendor maps to the same id, so the conditional write collapses it.
pub fn notification_id(instance_id: u64, dedupe_key: &str) -> String {
    let mut h = Sha256::new();
    h.update(instance_id.to_be_bytes());
    h.update([0]);
    h.update(dedupe_key.as_bytes());
    let digest = h.finalize();
    format!("evt_{}", hex::encode(&digest[..16]))
}

/// SHA-256 of a body, hex: the dedupe key of vendors that send no id.
pub fn body_digest(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CallbackMessage<'a> {
    event_id: &'a str,
    instance_id: u64,
    #[serde(rename = "instance_id")]
    instance_id_snake: u64,
    element_key: &'a str,
    events: &'a [Event],
    raw: &'a RawValue,
}

#[derive(Serialize)]
struct CallbackBody<'a> {
    message: CallbackMessage<'a>,
}

impl Notification {
    /// Splits events into notifications of at most `max` events each. Each
    /// chunk's dedupe key is the key plus its index, so a replay of the same
    /// vendor delivery yields the same ids.
    #[allow(clippy::too_many_arguments)]
    pub fn batch(
        instance_id: u64,
        org_id: &str,
        element_key: &str,
        source: Source,
        events: Vec<Event>,
        raw: &str,
        dedupe_key: &str,
        max: usize,
        now: DateTime<Utc>,
    ) -> Vec<Notification> {
        let chunks: Vec<Vec<Event>> = events.chunks(max.max(1)).map(<[Event]>::to_vec).collect();
        let single = chunks.len() == 1;
        chunks
            .into_iter()
            .enumerate()
            .map(|(i, events)| {
                let key = if single {
                    dedupe_key.to_string()
                } else {
                    format!("{dedupe_key}#{i}")
                };
                Notification {
                    id: notification_id(instance_id, &key),
                    instance_id,
                    org_id: org_id.to_string(),
                    element_key: element_key.to_string(),
                    source,
                    events,
                    raw: raw.to_string(),
                    dedupe_key: key,
                    created_at: now,
                }
            })
            .collect()
    }

    /// The callback body, Cloud Elements-compatible. `raw` is embedded as the
    /// vendor sent it; a body that is not JSON is embedded as a JSON string.
    pub fn callback_body(&self) -> Vec<u8> {
        let quoted;
        let raw: &RawValue = match serde_json::from_str::<&RawValue>(&self.raw) {
            Ok(raw) => raw,
            Err(_) => {
                quoted = serde_json::value::to_raw_value(&self.raw).expect("a string serializes");
                &quoted
            }
        };
        serde_json::to_vec(&CallbackBody {
            message: CallbackMessage {
                event_id: &self.id,
                instance_id: self.instance_id,
                instance_id_snake: self.instance_id,
                element_key: &self.element_key,
                events: &self.events,
                raw,
            },
        })
        .expect("callback body serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(i: u32) -> Event {
        Event::new(
            "ecwid",
            "orders",
            i.to_string(),
            EventType::Updated,
            Utc::now(),
        )
    }

    #[test]
    fn verbs_map_to_event_types() {
        assert_eq!(EventType::from_verb("created"), EventType::Created);
        assert_eq!(EventType::from_verb("restored"), EventType::Updated);
        assert_eq!(EventType::from_verb("Deleted"), EventType::Deleted);
        assert_eq!(
            EventType::from_verb("subscriptionStatusChanged"),
            EventType::Unknown
        );
    }

    #[test]
    fn ids_are_stable_per_instance_and_key() {
        assert_eq!(notification_id(1, "k"), notification_id(1, "k"));
        assert_ne!(notification_id(1, "k"), notification_id(2, "k"));
        assert_ne!(notification_id(1, "k"), notification_id(1, "k2"));
    }

    #[test]
    fn batches_hold_at_most_max_events_with_stable_ids() {
        let events: Vec<Event> = (0..45).map(event).collect();
        let a = Notification::batch(
            7,
            "o",
            "ecwid",
            Source::Webhook,
            events.clone(),
            "{}",
            "d",
            20,
            Utc::now(),
        );
        let b = Notification::batch(
            7,
            "o",
            "ecwid",
            Source::Webhook,
            events,
            "{}",
            "d",
            20,
            Utc::now(),
        );
        assert_eq!(
            a.iter().map(|n| n.events.len()).collect::<Vec<_>>(),
            [20, 20, 5]
        );
        assert_eq!(
            a.iter().map(|n| &n.id).collect::<Vec<_>>(),
            b.iter().map(|n| &n.id).collect::<Vec<_>>()
        );
        let one = Notification::batch(
            7,
            "o",
            "ecwid",
            Source::Webhook,
            vec![event(1)],
            "{}",
            "d",
            20,
            Utc::now(),
        );
        assert_eq!(one[0].id, notification_id(7, "d"));
    }

    #[test]
    fn the_callback_body_embeds_raw_bytes_verbatim() {
        let raw = r#"{"url":"https:\/\/a\/b","n":1.50}"#;
        let n = &Notification::batch(
            9,
            "o",
            "woocommercerest",
            Source::Webhook,
            vec![event(1)],
            raw,
            "d",
            20,
            Utc::now(),
        )[0];
        let body = String::from_utf8(n.callback_body()).unwrap();
        assert!(body.contains(raw), "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["message"]["eventId"], n.id.as_str());
        assert_eq!(v["message"]["instanceId"], 9);
        assert_eq!(v["message"]["instance_id"], 9);
        assert_eq!(v["message"]["elementKey"], "woocommercerest");
        assert_eq!(v["message"]["events"][0]["eventType"], "UPDATED");
        assert_eq!(v["message"]["events"][0]["hubKey"], "ecommerce");
        let not_json = &Notification::batch(
            9,
            "o",
            "one",
            Source::Webhook,
            vec![event(1)],
            "a=b",
            "d",
            20,
            Utc::now(),
        )[0];
        let v: serde_json::Value = serde_json::from_slice(&not_json.callback_body()).unwrap();
        assert_eq!(v["message"]["raw"], "a=b");
    }
}

/// Where a notification stands in its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Waiting for its next delivery attempt.
    Pending,
    /// Accepted (2xx) by the callback URL.
    Delivered,
    /// The retry schedule is exhausted; kept, listable and replayable.
    Failed,
    /// Held while events are paused for the instance (a 410 from the receiver).
    Queued,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Queued => "queued",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(DeliveryStatus::Pending),
            "delivered" => Some(DeliveryStatus::Delivered),
            "failed" => Some(DeliveryStatus::Failed),
            "queued" => Some(DeliveryStatus::Queued),
            _ => None,
        }
    }
}

/// Which notifications an events listing returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Any of these states, each optionally only if attempted at least once
    /// (`Some(true)`) or never (`Some(false)`); empty means all.
    pub any_of: Vec<(DeliveryStatus, Option<bool>)>,
    /// A status word that is never produced: nothing matches.
    pub matches_nothing: bool,
    /// Created at or after.
    pub since: Option<DateTime<Utc>>,
    /// Created before.
    pub until: Option<DateTime<Utc>>,
}

/// Cloud Elements' event status words, and what each means here:
///
/// | CE `status` | our `deliveryStatus` |
/// |---|---|
/// | `RECEIVED` | `pending` not attempted yet, or `queued` (held while events are paused) |
/// | `DISPATCHED` | `pending` after a failed attempt (retrying), or `failed` (retries exhausted) |
/// | `NOTIFIED` | `delivered`: the callback URL accepted it (2xx) |
/// | `NEW`, `CONSUMED` | never produced; as filters they match nothing |
pub fn ce_status(status: DeliveryStatus, attempts: u32) -> &'static str {
    match status {
        DeliveryStatus::Delivered => "NOTIFIED",
        DeliveryStatus::Failed => "DISPATCHED",
        DeliveryStatus::Pending if attempts > 0 => "DISPATCHED",
        DeliveryStatus::Pending | DeliveryStatus::Queued => "RECEIVED",
    }
}

/// A `?status=` value in either vocabulary, as the states it selects;
/// `None` if it is neither.
pub fn status_filter(text: &str) -> Option<EventFilter> {
    use DeliveryStatus::*;
    let (any_of, matches_nothing) = match DeliveryStatus::parse(text) {
        Some(ours) => (vec![(ours, None)], false),
        None => match text.to_ascii_uppercase().as_str() {
            "NOTIFIED" => (vec![(Delivered, None)], false),
            "RECEIVED" => (vec![(Pending, Some(false)), (Queued, None)], false),
            "DISPATCHED" => (vec![(Pending, Some(true)), (Failed, None)], false),
            "NEW" | "CONSUMED" => (Vec::new(), true),
            _ => return None,
        },
    };
    Some(EventFilter {
        any_of,
        matches_nothing,
        ..Default::default()
    })
}

/// A notification as stored, with its delivery state.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredNotification {
    pub notification: Notification,
    pub status: DeliveryStatus,
    /// Attempts over the notification's life.
    pub attempts: u32,
    /// Failed attempts since it was (re)queued: the retry schedule position.
    pub schedule_pos: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub updated_at: DateTime<Utc>,
}

impl StoredNotification {
    /// The event log's JSON for one notification: Cloud Elements' event
    /// record (`id`, `eventDate`, `status` in CE's words, `providerData` as a
    /// string, `notifiedData`), with our delivery state beside it.
    pub fn to_api_json(&self) -> serde_json::Value {
        let n = &self.notification;
        let raw: serde_json::Value = serde_json::from_str(&n.raw)
            .unwrap_or_else(|_| serde_json::Value::String(n.raw.clone()));
        // What the callback URL was sent: the same body on every attempt.
        let notified: Vec<serde_json::Value> = if self.attempts > 0 {
            serde_json::from_slice(&n.callback_body())
                .ok()
                .into_iter()
                .collect()
        } else {
            Vec::new()
        };
        serde_json::json!({
            "id": n.id,
            "eventId": n.id,
            "instanceId": n.instance_id,
            "elementKey": n.element_key,
            "source": n.source.as_str(),
            "status": ce_status(self.status, self.attempts),
            "deliveryStatus": self.status.as_str(),
            "attempts": self.attempts,
            "nextAttemptDate": (self.status == DeliveryStatus::Pending)
                .then_some(self.next_attempt_at)
                .flatten()
                .map(format_date),
            "lastStatus": self.last_status.filter(|&c| c != 0),
            "lastError": self.last_error,
            "eventDate": format_date(n.created_at),
            "createdDate": format_date(n.created_at),
            "updatedDate": format_date(self.updated_at),
            "events": n.events,
            "providerData": n.raw,
            "notifiedData": notified,
            "raw": raw,
        })
    }
}
