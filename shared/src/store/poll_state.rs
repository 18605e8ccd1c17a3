//! Polling state, per instance: the lease that keeps two pollers off the
//! same instance, one cursor per resource, and a marker per object version
//! already notified, so overlapping windows never notify a change twice.

use aws_sdk_dynamodb::types::{ConditionCheck, KeysAndAttributes, Put, TransactWriteItem};
use chrono::{DateTime, Duration, TimeZone, Utc};

use super::attrs::{get_n, n, s, Item};
use super::{classify, Store, StoreError};
use crate::events::Notification;

/// How long a marker of a notified object version is kept: far longer than
/// any overlap between poll windows.
pub const MARKER_RETENTION_DAYS: i64 = 7;

fn pk(instance_id: u64) -> String {
    format!("instance#{instance_id}")
}

fn marker_sk(resource: &str, object_id: &str, modified_ms: i64) -> String {
    format!("seen#{resource}#{object_id}#{modified_ms}")
}

pub use crate::events::ObjectVersion;

impl Store {
    /// Takes the instance's poll lease until `now + duration`, if free or
    /// expired. Returns the owner token to release or check it with.
    pub async fn acquire_poll_lease(
        &self,
        instance_id: u64,
        now: DateTime<Utc>,
        duration: Duration,
    ) -> Result<Option<String>, StoreError> {
        let owner = crate::ids::new_request_id();
        let result = self
            .client
            .put_item()
            .table_name(&self.tables.poll_state)
            .item("pk", s(pk(instance_id)))
            .item("sk", s("lease"))
            .item("owner", s(&owner))
            .item("lease_until", n((now + duration).timestamp_millis()))
            .item(
                "expires_at",
                n((now + duration + Duration::days(1)).timestamp()),
            )
            .condition_expression("attribute_not_exists(pk) OR lease_until < :now")
            .expression_attribute_values(":now", n(now.timestamp_millis()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Some(owner)),
            Err(e) => match classify(e) {
                StoreError::ConditionFailed => Ok(None),
                other => Err(other),
            },
        }
    }

    pub async fn release_poll_lease(
        &self,
        instance_id: u64,
        owner: &str,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.tables.poll_state)
            .key("pk", s(pk(instance_id)))
            .key("sk", s("lease"))
            .condition_expression("#o = :me")
            .expression_attribute_names("#o", "owner")
            .expression_attribute_values(":me", s(owner))
            .send()
            .await;
        match result.map_err(classify) {
            Ok(_) | Err(StoreError::ConditionFailed) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub async fn poll_cursor(
        &self,
        instance_id: u64,
        resource: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.poll_state)
            .key("pk", s(pk(instance_id)))
            .key("sk", s(format!("cursor#{resource}")))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        match out.item {
            None => Ok(None),
            Some(item) => {
                let ms: i64 = get_n(&item, "cursor_ms")?;
                Ok(Utc.timestamp_millis_opt(ms).single())
            }
        }
    }

    /// Moves a resource's cursor forward to `to`, only while `owner` still
    /// holds the lease (a poller that lost it cannot move the cursor) and
    /// never backwards.
    pub async fn advance_poll_cursor(
        &self,
        instance_id: u64,
        resource: &str,
        to: DateTime<Utc>,
        owner: &str,
    ) -> Result<(), StoreError> {
        let lease = ConditionCheck::builder()
            .table_name(&self.tables.poll_state)
            .key("pk", s(pk(instance_id)))
            .key("sk", s("lease"))
            .condition_expression("#o = :me")
            .expression_attribute_names("#o", "owner")
            .expression_attribute_values(":me", s(owner))
            .build()
            .map_err(|e| StoreError::Config(e.to_string()))?;
        let cursor = Put::builder()
            .table_name(&self.tables.poll_state)
            .item("pk", s(pk(instance_id)))
            .item("sk", s(format!("cursor#{resource}")))
            .item("cursor_ms", n(to.timestamp_millis()))
            .item("updated_at", s(crate::model::format_date(Utc::now())))
            .condition_expression("attribute_not_exists(pk) OR cursor_ms <= :to")
            .expression_attribute_values(":to", n(to.timestamp_millis()))
            .build()
            .map_err(|e| StoreError::Config(e.to_string()))?;
        self.client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().condition_check(lease).build())
            .transact_items(TransactWriteItem::builder().put(cursor).build())
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    /// Which of these object versions were already notified.
    pub async fn seen_versions(
        &self,
        instance_id: u64,
        versions: &[ObjectVersion],
    ) -> Result<std::collections::HashSet<ObjectVersion>, StoreError> {
        let mut seen = std::collections::HashSet::new();
        for chunk in versions.chunks(100) {
            let mut keys = KeysAndAttributes::builder().consistent_read(true);
            let mut unique = std::collections::HashSet::new();
            for v in chunk {
                let sk = marker_sk(&v.resource, &v.object_id, v.modified_ms);
                if unique.insert(sk.clone()) {
                    keys = keys.keys(Item::from([
                        ("pk".into(), s(pk(instance_id))),
                        ("sk".into(), s(sk)),
                    ]));
                }
            }
            let mut request = Some(
                keys.build()
                    .map_err(|e| StoreError::Config(e.to_string()))?,
            );
            // BatchGetItem may leave keys unprocessed under load; ask again.
            while let Some(keys) = request.take() {
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.tables.poll_state, keys)
                    .send()
                    .await
                    .map_err(classify)?;
                for item in out
                    .responses()
                    .and_then(|r| r.get(&self.tables.poll_state))
                    .into_iter()
                    .flatten()
                {
                    if let Some(aws_sdk_dynamodb::types::AttributeValue::S(sk)) = item.get("sk") {
                        if let Some(v) = chunk
                            .iter()
                            .find(|v| marker_sk(&v.resource, &v.object_id, v.modified_ms) == *sk)
                        {
                            seen.insert(v.clone());
                        }
                    }
                }
                request = out
                    .unprocessed_keys()
                    .and_then(|u| u.get(&self.tables.poll_state))
                    .cloned()
                    .filter(|k| !k.keys().is_empty());
            }
        }
        Ok(seen)
    }

    /// Stores a notification (from a poll or a webhook) and the markers of the
    /// versions it carries,
    /// all or nothing. `Ok(false)` when any of them was stored before.
    pub async fn put_notification_with_markers(
        &self,
        notification: &Notification,
        versions: &[ObjectVersion],
    ) -> Result<bool, StoreError> {
        let mut tx = self.client.transact_write_items().transact_items(
            TransactWriteItem::builder()
                .put(self.notification_put(notification)?)
                .build(),
        );
        let expires = (Utc::now() + Duration::days(MARKER_RETENTION_DAYS)).timestamp();
        for v in versions {
            let put = Put::builder()
                .table_name(&self.tables.poll_state)
                .item("pk", s(pk(notification.instance_id)))
                .item("sk", s(marker_sk(&v.resource, &v.object_id, v.modified_ms)))
                .item("notification_id", s(&notification.id))
                .item("expires_at", n(expires))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(|e| StoreError::Config(e.to_string()))?;
            tx = tx.transact_items(TransactWriteItem::builder().put(put).build());
        }
        match tx.send().await.map_err(classify) {
            Ok(_) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
