//! The delivery log: one record per attempt, kept where it costs least.
//!
//! The first [`INLINE_ATTEMPTS`] attempts of a notification travel in the
//! completion's own UpdateItem, appended to the notification's `attempt_log`
//! list: a delivery that succeeds first time is then two requests (claim and
//! completion), not three. The alternatives were measured and compared in
//! docs/benchmarks.md ("Where the attempt record goes"): a separate PutItem
//! to the `DeliveriesTable` is one request more; a transaction of the two
//! costs twice the write units of both items.
//!
//! The list is bounded: the default schedule is 9 attempts, and a replayed
//! notification (which starts the schedule again) keeps adding to it only up
//! to [`INLINE_ATTEMPTS`]. Later attempts, and an attempt whose completion
//! lost its lease, are written apart to the `DeliveriesTable`, as every
//! attempt was before. The delivery log reads both.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, Utc};

use super::attrs::{get_n, get_opt_n, get_opt_s, get_s, get_time, n, s, Item};
use super::notifications::RETENTION_DAYS;
use super::{classify, Store, StoreError};
use crate::model::format_date;

/// Attempts kept in the notification item. Each is at most about 1.2 KB (a
/// response head of 1 KiB), so the list adds at most about 30 KB to an item
/// that keeps up to 64 KiB of raw body inline: far under the 400 KB limit.
pub const INLINE_ATTEMPTS: u32 = 24;

/// One delivery attempt, kept for the delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub notification_id: String,
    pub attempt: u32,
    pub at: DateTime<Utc>,
    pub status: Option<u16>,
    pub latency_ms: u64,
    /// The first 1 KiB of the response body.
    pub response_head: String,
    pub error: Option<String>,
}

impl AttemptRecord {
    pub fn to_api_json(&self) -> serde_json::Value {
        serde_json::json!({
            "attempt": self.attempt,
            "date": format_date(self.at),
            "status": self.status,
            "latencyMs": self.latency_ms,
            "response": self.response_head,
            "error": self.error,
        })
    }

    /// Whether this attempt travels with its completion.
    pub(crate) fn inline(&self) -> bool {
        self.attempt <= INLINE_ATTEMPTS
    }

    /// The attributes every form shares.
    fn fields(&self) -> Item {
        let mut item = Item::from([
            ("attempt".into(), n(self.attempt)),
            ("at".into(), s(format_date(self.at))),
            ("latency_ms".into(), n(self.latency_ms)),
            ("response_head".into(), s(&self.response_head)),
        ]);
        if let Some(code) = self.status {
            item.insert("status".into(), n(code));
        }
        if let Some(error) = &self.error {
            item.insert("error".into(), s(error));
        }
        item
    }

    /// A one-element list, for `list_append` onto `attempt_log`.
    pub(crate) fn as_log_entry(&self) -> AttributeValue {
        AttributeValue::L(vec![AttributeValue::M(self.fields())])
    }

    fn from_fields(notification_id: &str, item: &Item) -> Result<Self, StoreError> {
        Ok(AttemptRecord {
            notification_id: notification_id.to_string(),
            attempt: get_n(item, "attempt")?,
            at: get_time(item, "at")?,
            status: get_opt_n(item, "status")?,
            latency_ms: get_n(item, "latency_ms")?,
            response_head: get_opt_s(item, "response_head")?.unwrap_or_default(),
            error: get_opt_s(item, "error")?,
        })
    }
}

/// The attempts of a notification item's `attempt_log`.
fn inline_attempts(notification_id: &str, item: &Item) -> Result<Vec<AttemptRecord>, StoreError> {
    let Some(AttributeValue::L(entries)) = item.get("attempt_log") else {
        return Ok(Vec::new());
    };
    entries
        .iter()
        .map(|entry| match entry {
            AttributeValue::M(fields) => AttemptRecord::from_fields(notification_id, fields),
            _ => Err(StoreError::Corrupt(format!(
                "notification {notification_id} has an unreadable attempt log"
            ))),
        })
        .collect()
}

impl Store {
    /// Writes one attempt apart, to the `DeliveriesTable`.
    pub async fn record_attempt(&self, a: &AttemptRecord) -> Result<(), StoreError> {
        let mut item = a.fields();
        item.insert("notification_id".into(), s(&a.notification_id));
        item.insert(
            "expires_at".into(),
            n((a.at + Duration::days(RETENTION_DAYS)).timestamp()),
        );
        self.client
            .put_item()
            .table_name(&self.tables.deliveries)
            .set_item(Some(item))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    /// Every recorded attempt of a notification, first attempt first: those
    /// in the notification item and those written apart.
    pub async fn list_attempts(
        &self,
        notification_id: &str,
    ) -> Result<Vec<AttemptRecord>, StoreError> {
        let inline = self
            .client
            .get_item()
            .table_name(&self.tables.notifications)
            .key("id", s(notification_id))
            .projection_expression("attempt_log")
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        let mut attempts = match inline.item() {
            Some(item) => inline_attempts(notification_id, item)?,
            None => Vec::new(),
        };
        let apart = self
            .client
            .query()
            .table_name(&self.tables.deliveries)
            .key_condition_expression("notification_id = :n")
            .expression_attribute_values(":n", s(notification_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        for item in apart.items() {
            let record = AttemptRecord::from_fields(&get_s(item, "notification_id")?, item)?;
            // An attempt is in one place only; if a completion that lost
            // its lease wrote it apart too, it is listed once.
            if !attempts.iter().any(|a| a.attempt == record.attempt) {
                attempts.push(record);
            }
        }
        attempts.sort_by_key(|a| a.attempt);
        Ok(attempts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_entry_reads_back_whole() {
        let record = AttemptRecord {
            notification_id: "evt_1".into(),
            attempt: 3,
            at: Utc::now().with_nanosecond_zero(),
            status: Some(503),
            latency_ms: 120,
            response_head: "busy".into(),
            error: Some("callback URL answered 503".into()),
        };
        let AttributeValue::L(list) = record.as_log_entry() else {
            panic!("a list");
        };
        let item = Item::from([("attempt_log".into(), AttributeValue::L(list))]);
        assert_eq!(inline_attempts("evt_1", &item).unwrap(), vec![record]);
    }

    trait WholeMillis {
        fn with_nanosecond_zero(self) -> Self;
    }
    impl WholeMillis for DateTime<Utc> {
        fn with_nanosecond_zero(self) -> Self {
            use chrono::Timelike;
            self.with_nanosecond(0).unwrap()
        }
    }
}
