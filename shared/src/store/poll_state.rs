//! Polling state, per instance: the lease that keeps two pollers off the
//! same instance, one cursor per resource, and a marker per object version
//! already notified, so overlapping windows never notify a change twice.

use aws_sdk_dynamodb::types::{ConditionCheck, Put, TransactWriteItem, Update};
use chrono::{DateTime, Duration, TimeZone, Utc};

use super::attrs::{get_opt_n, get_opt_s, n, s, Item};
use super::{classify, Store, StoreError};
use crate::events::Notification;

/// How long a marker of a notified object version is kept: far longer than
/// any overlap between poll windows.
pub const MARKER_RETENTION_DAYS: i64 = 7;

use super::keys::{marker_sort_key as marker_sk, poll_state_partition as pk};

pub use crate::events::ObjectVersion;

/// A resource's polling position.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CursorState {
    /// Everything changed before it (less the overlap) is notified.
    pub cursor: Option<DateTime<Utc>>,
    /// An unfinished window, to resume.
    pub checkpoint: Option<PollCheckpoint>,
}

/// How far an unfinished window got: its frozen bounds, the listing (pass)
/// and the page it stopped before. Every page before it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollCheckpoint {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub pass: usize,
    pub position: crate::polling::PagePosition,
}

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

    /// A resource's cursor: where the next window starts.
    pub async fn poll_cursor(
        &self,
        instance_id: u64,
        resource: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(self.poll_cursor_state(instance_id, resource).await?.cursor)
    }

    /// A resource's cursor and, if a window was left unfinished, the
    /// checkpoint to resume it from.
    pub async fn poll_cursor_state(
        &self,
        instance_id: u64,
        resource: &str,
    ) -> Result<CursorState, StoreError> {
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
        let Some(item) = out.item else {
            return Ok(CursorState::default());
        };
        let time = |name: &str| -> Result<Option<DateTime<Utc>>, StoreError> {
            Ok(get_opt_n::<i64>(&item, name)?.and_then(|ms| Utc.timestamp_millis_opt(ms).single()))
        };
        let checkpoint = match (
            time("scan_since_ms")?,
            time("scan_until_ms")?,
            get_opt_s(&item, "scan_position")?,
        ) {
            (Some(since), Some(until), Some(position)) => Some(PollCheckpoint {
                since,
                until,
                pass: get_opt_n(&item, "scan_pass")?.unwrap_or(0),
                position: serde_json::from_str(&position)
                    .map_err(|e| StoreError::Corrupt(format!("poll checkpoint: {e}")))?,
            }),
            _ => None,
        };
        Ok(CursorState {
            cursor: time("cursor_ms")?,
            checkpoint,
        })
    }

    /// Records how far an unfinished window got (every page before
    /// `position` is stored), while `owner` holds the lease. The cursor
    /// stays; the next poll resumes the same window there.
    pub async fn save_poll_checkpoint(
        &self,
        instance_id: u64,
        resource: &str,
        checkpoint: &PollCheckpoint,
        owner: &str,
    ) -> Result<(), StoreError> {
        let position = serde_json::to_string(&checkpoint.position)
            .map_err(|e| StoreError::Config(e.to_string()))?;
        let lease = self.lease_check(instance_id, owner)?;
        let update = Update::builder()
            .table_name(&self.tables.poll_state)
            .key("pk", s(pk(instance_id)))
            .key("sk", s(format!("cursor#{resource}")))
            .update_expression(
                "SET scan_since_ms = :s, scan_until_ms = :u, scan_pass = :p, scan_position = :pos, updated_at = :now",
            )
            .expression_attribute_values(":s", n(checkpoint.since.timestamp_millis()))
            .expression_attribute_values(":u", n(checkpoint.until.timestamp_millis()))
            .expression_attribute_values(":p", n(checkpoint.pass))
            .expression_attribute_values(":pos", s(position))
            .expression_attribute_values(":now", s(crate::model::format_date(Utc::now())))
            .build()
            .map_err(|e| StoreError::Config(e.to_string()))?;
        self.client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().condition_check(lease).build())
            .transact_items(TransactWriteItem::builder().update(update).build())
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    /// Extends the lease `owner` holds to `until`; `ConditionFailed` when it
    /// is no longer theirs (expired and taken by another poller).
    pub async fn renew_poll_lease(
        &self,
        instance_id: u64,
        owner: &str,
        until: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.tables.poll_state)
            .key("pk", s(pk(instance_id)))
            .key("sk", s("lease"))
            .update_expression("SET lease_until = :until")
            .condition_expression("#o = :me")
            .expression_attribute_names("#o", "owner")
            .expression_attribute_values(":me", s(owner))
            .expression_attribute_values(":until", n(until.timestamp_millis()))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    fn lease_check(&self, instance_id: u64, owner: &str) -> Result<ConditionCheck, StoreError> {
        ConditionCheck::builder()
            .table_name(&self.tables.poll_state)
            .key("pk", s(pk(instance_id)))
            .key("sk", s("lease"))
            .condition_expression("#o = :me")
            .expression_attribute_names("#o", "owner")
            .expression_attribute_values(":me", s(owner))
            .build()
            .map_err(|e| StoreError::Config(e.to_string()))
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
        let lease = self.lease_check(instance_id, owner)?;
        // A whole-item put: the window is done, so its checkpoint goes.
        let cursor = Put::builder()
            .table_name(&self.tables.poll_state)
            .item("pk", s(pk(instance_id)))
            .item("sk", s(format!("cursor#{resource}")))
            .item("cursor_ms", n(to.timestamp_millis()))
            .item("updated_at", s(crate::model::format_date(Utc::now())))
            .condition_expression(
                "attribute_not_exists(pk) OR attribute_not_exists(cursor_ms) OR cursor_ms <= :to",
            )
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
        let mut by_sk = std::collections::HashMap::new();
        for v in versions {
            by_sk.insert(marker_sk(&v.resource, &v.object_id, v.modified_ms), v);
        }
        let keys = by_sk
            .keys()
            .map(|sk| Item::from([("pk".into(), s(pk(instance_id))), ("sk".into(), s(sk))]))
            .collect();
        let mut seen = std::collections::HashSet::new();
        for item in self.batch_get(&self.tables.poll_state, keys).await? {
            if let Some(aws_sdk_dynamodb::types::AttributeValue::S(sk)) = item.get("sk") {
                if let Some(v) = by_sk.get(sk) {
                    seen.insert((*v).clone());
                }
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
        self.put_raw_parts(notification).await?;
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
        match tx.send().await.map_err(super::classify_transaction) {
            Ok(_) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
