//! Notification items: stored once per change (the id is derived from the
//! vendor's dedupe key, and the write is conditional on its absence), read
//! one at a time or as an instance's event log.

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use chrono::{DateTime, Duration, Utc};

use super::attrs::{get_n, get_s, get_time, n, s, Item};
use super::instances::PageCursor;
use super::{classify, Store, StoreError};
use crate::events::{DeliveryStatus, Event, Notification, Source, StoredNotification};
use crate::model::format_date;

pub const BY_INSTANCE_INDEX: &str = "by-instance";

/// How long a notification is kept (DynamoDB TTL on `expires_at`).
pub const RETENTION_DAYS: i64 = 30;

/// What storing a batch of notifications did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    New,
    /// The same notifications were stored before (a vendor retry).
    Duplicate,
}

fn created_key(created_at: DateTime<Utc>, id: &str) -> String {
    format!("{}#{id}", format_date(created_at))
}

fn to_item(notification: &Notification, status: DeliveryStatus) -> Item {
    let nt = notification;
    Item::from([
        ("id".into(), s(&nt.id)),
        ("instance_id".into(), s(nt.instance_id.to_string())),
        ("org_id".into(), s(&nt.org_id)),
        ("element_key".into(), s(&nt.element_key)),
        ("source".into(), s(nt.source.as_str())),
        ("status".into(), s(status.as_str())),
        (
            "events".into(),
            s(serde_json::to_string(&nt.events).expect("events serialize")),
        ),
        ("raw".into(), s(&nt.raw)),
        ("dedupe_key".into(), s(&nt.dedupe_key)),
        ("created_at".into(), s(format_date(nt.created_at))),
        ("updated_at".into(), s(format_date(nt.created_at))),
        ("created_key".into(), s(created_key(nt.created_at, &nt.id))),
        ("attempts".into(), n(0)),
        (
            "expires_at".into(),
            n((nt.created_at + Duration::days(RETENTION_DAYS)).timestamp()),
        ),
    ])
}

fn from_item(item: &Item) -> Result<StoredNotification, StoreError> {
    let events: Vec<Event> = serde_json::from_str(&get_s(item, "events")?)
        .map_err(|_| StoreError::Corrupt("notification events are unreadable".into()))?;
    let source = match get_s(item, "source")?.as_str() {
        "webhook" => Source::Webhook,
        "polling" => Source::Polling,
        other => {
            return Err(StoreError::Corrupt(format!(
                "unknown notification source {other}"
            )))
        }
    };
    let status_text = get_s(item, "status")?;
    let status = DeliveryStatus::parse(&status_text)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown notification status {status_text}")))?;
    Ok(StoredNotification {
        notification: Notification {
            id: get_s(item, "id")?,
            instance_id: get_s(item, "instance_id")?.parse().map_err(|_| {
                StoreError::Corrupt("notification instance id is not numeric".into())
            })?,
            org_id: get_s(item, "org_id")?,
            element_key: get_s(item, "element_key")?,
            source,
            events,
            raw: get_s(item, "raw")?,
            dedupe_key: get_s(item, "dedupe_key")?,
            created_at: get_time(item, "created_at")?,
        },
        status,
        attempts: get_n(item, "attempts")?,
        updated_at: get_time(item, "updated_at")?,
    })
}

impl Store {
    /// Stores new pending notifications, all or none. Storing the same ones
    /// again (a vendor retry) changes nothing and reports `Duplicate`.
    pub async fn put_notifications(&self, batch: &[Notification]) -> Result<Stored, StoreError> {
        let result = match batch {
            [] => return Ok(Stored::New),
            [single] => self
                .client
                .put_item()
                .table_name(&self.tables.notifications)
                .set_item(Some(to_item(single, DeliveryStatus::Pending)))
                .condition_expression("attribute_not_exists(id)")
                .send()
                .await
                .map(|_| ())
                .map_err(classify),
            many => {
                let mut tx = self.client.transact_write_items();
                for notification in many {
                    let put = Put::builder()
                        .table_name(&self.tables.notifications)
                        .set_item(Some(to_item(notification, DeliveryStatus::Pending)))
                        .condition_expression("attribute_not_exists(id)")
                        .build()
                        .map_err(|e| StoreError::Config(e.to_string()))?;
                    tx = tx.transact_items(TransactWriteItem::builder().put(put).build());
                }
                tx.send().await.map(|_| ()).map_err(classify)
            }
        };
        match result {
            Ok(()) => Ok(Stored::New),
            Err(StoreError::ConditionFailed) => Ok(Stored::Duplicate),
            Err(e) => Err(e),
        }
    }

    pub async fn get_notification(
        &self,
        id: &str,
    ) -> Result<Option<StoredNotification>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.notifications)
            .key("id", s(id))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        out.item.as_ref().map(from_item).transpose()
    }

    /// An instance's notifications, newest first, optionally of one status.
    pub async fn list_notifications(
        &self,
        instance_id: u64,
        status: Option<DeliveryStatus>,
        page_size: i32,
        after: Option<&PageCursor>,
    ) -> Result<(Vec<StoredNotification>, Option<PageCursor>), StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.tables.notifications)
            .index_name(BY_INSTANCE_INDEX)
            .key_condition_expression("instance_id = :i")
            .expression_attribute_values(":i", s(instance_id.to_string()))
            .scan_index_forward(false)
            .limit(page_size);
        if let Some(status) = status {
            // `status` is a reserved word in DynamoDB expressions.
            query = query
                .filter_expression("#st = :s")
                .expression_attribute_names("#st", "status")
                .expression_attribute_values(":s", s(status.as_str()));
        }
        if let Some(cursor) = after {
            query = query
                .exclusive_start_key("instance_id", s(instance_id.to_string()))
                .exclusive_start_key("created_key", s(cursor.sort_key()))
                .exclusive_start_key("id", s(cursor.item_id()));
        }
        let out = query.send().await.map_err(classify)?;
        let items = out
            .items()
            .iter()
            .map(from_item)
            .collect::<Result<Vec<_>, _>>()?;
        let next = out.last_evaluated_key().and_then(|key| {
            match (key.get("created_key"), key.get("id")) {
                (Some(AttributeValue::S(c)), Some(AttributeValue::S(i))) => {
                    Some(PageCursor::new(c.clone(), i.clone()))
                }
                _ => None,
            }
        });
        Ok((items, next))
    }
}
