//! CloudWatch metrics in the Embedded Metric Format: one JSON line on stdout
//! per measurement, which CloudWatch Logs turns into metrics with no API
//! call on the request path. Namespace `ConnectorEvents`.
//!
//! | metric | unit | dimensions | emitted by |
//! |---|---|---|---|
//! | `EventsIngested` | Count | `Element` | webhooks, per stored notification's events |
//! | `NotificationsDelivered`, `NotificationsFailed` | Count | `Element` | dispatcher |
//! | `DeliveryLatency` | Milliseconds | `Element` | dispatcher, per attempt |
//! | `PollDuration` | Milliseconds | `Element` | poller, per instance |
//! | `StoreApiCalls`, `StoreThrottled` | Count | `Element` | poller (`StoreThrottled`: 429s and quota waits) |
//! | `InstanceUnreadable` | Count | `Element`, and none (alarmed) | dispatcher: an instance whose secrets do not open; its notification is retried |
//! | `NotificationsRejected` | Count | `Element`, and none (alarmed) | poller: an object version DynamoDB refused to store even alone (`ValidationException`) |
//! | `DeliveryPanics`, `PollPanics` | Count | none (alarmed) | dispatcher, poller: one delivery or poll panicked; the others went on |
//!
//! Only Lambda's stdout feeds CloudWatch, so nothing is printed elsewhere
//! (tests, the local stack) unless `EMF_METRICS=1`.

use serde_json::{json, Map, Value};

pub const NAMESPACE: &str = "ConnectorEvents";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

fn enabled() -> bool {
    std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some()
        || std::env::var("EMF_METRICS").is_ok_and(|v| v == "1")
}

/// The EMF document for these metrics under one `Element` dimension.
pub fn document(element: &str, metrics: &[(&str, f64, Unit)], timestamp_ms: i64) -> Value {
    document_in(element, metrics, timestamp_ms, json!([["Element"]]))
}

fn document_in(
    element: &str,
    metrics: &[(&str, f64, Unit)],
    timestamp_ms: i64,
    dimensions: Value,
) -> Value {
    let mut doc = Map::new();
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": dimensions,
                "Metrics": metrics.iter().map(|(name, _, unit)| json!({"Name": name, "Unit": unit.as_str()})).collect::<Vec<_>>(),
            }],
        }),
    );
    doc.insert("Element".into(), Value::String(element.to_string()));
    for (name, value, _) in metrics {
        doc.insert((*name).to_string(), json!(value));
    }
    Value::Object(doc)
}

/// Emits the metrics both per element and without any dimension, so that one
/// alarm (template.yaml) watches every element at once.
pub fn emit_alarmed(element: &str, metrics: &[(&str, f64, Unit)]) {
    if enabled() && !metrics.is_empty() {
        let now = chrono::Utc::now().timestamp_millis();
        println!(
            "{}",
            document_in(element, metrics, now, json!([["Element"], []]))
        );
    }
}

/// Emits the metrics (a no-op outside Lambda).
pub fn emit(element: &str, metrics: &[(&str, f64, Unit)]) {
    if enabled() && !metrics.is_empty() {
        println!(
            "{}",
            document(element, metrics, chrono::Utc::now().timestamp_millis())
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_follow_the_embedded_metric_format() {
        let doc = document(
            "ecwid",
            &[
                ("EventsIngested", 2.0, Unit::Count),
                ("DeliveryLatency", 12.5, Unit::Milliseconds),
            ],
            1_700_000_000_000,
        );
        assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_000i64);
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "ConnectorEvents");
        assert_eq!(directive["Dimensions"], json!([["Element"]]));
        assert_eq!(
            directive["Metrics"][1],
            json!({"Name": "DeliveryLatency", "Unit": "Milliseconds"})
        );
        assert_eq!(doc["Element"], "ecwid");
        assert_eq!(doc["EventsIngested"], 2.0);
        assert_eq!(doc["DeliveryLatency"], 12.5);
    }
}
