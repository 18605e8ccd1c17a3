//! Notification items: stored once per change (the id is derived from the
//! vendor's dedupe key, and the write is conditional on its absence), read
//! one at a time or as an instance's event log.

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use chrono::{DateTime, Duration, TimeZone, Utc};

use super::attempts::AttemptRecord;
use super::attrs::{get_n, get_opt_n, get_opt_s, get_s, get_time, n, s, Item};
use super::instances::PageCursor;
use super::{classify, keys, Store, StoreError};
use crate::events::{DeliveryStatus, Event, EventFilter, Notification, Source, StoredNotification};
use crate::model::format_date;

/// An instance's notifications by creation: keys, `status` and `attempts`
/// only, so claims and completions do not rewrite raw bodies into it.
pub const BY_INSTANCE_INDEX: &str = "by-instance-log";
/// An organization's notifications by creation, projected the same way.
pub const BY_ORG_INDEX: &str = "by-org-log";
pub const BY_DUE_INDEX: &str = "by-due";

/// How long a notification is kept (DynamoDB TTL on `expires_at`): from its
/// creation, and again from each moment it is re-queued (replay, recover),
/// queued (events paused) or failed (retries exhausted), so an event is
/// never deleted mid-schedule or before it can be replayed.
pub const RETENTION_DAYS: i64 = 30;

/// The out-of-line parts of a large raw body outlive their notification's
/// first retention: they go this long after creation. A notification kept
/// longer by replays then reads `{"rawExpired": true}` as its raw body.
pub const RAW_PART_RETENTION_DAYS: i64 = 90;

/// `expires_at` for a notification (re)starting its life at `now`.
fn retention_from(now: DateTime<Utc>) -> i64 {
    (now + Duration::days(RETENTION_DAYS)).timestamp()
}

/// Raw vendor bodies up to this size live in the notification item. Larger
/// ones (a page of WooCommerce orders with their line items and plugin meta,
/// a 1 MB product) would pass DynamoDB's 400 KB item limit, so they are
/// stored out of line, in part items of the same table (`{id}#raw{n}`),
/// written before the notification and read back with it.
pub const INLINE_RAW_BYTES: usize = 64 * 1024;

/// The size of one out-of-line part: well under the item limit.
pub const RAW_PART_BYTES: usize = 256 * 1024;

use super::keys::raw_part_key as raw_part_id;

/// The raw body cut into parts at character boundaries.
fn raw_parts(raw: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = raw;
    while !rest.is_empty() {
        let mut end = rest.len().min(RAW_PART_BYTES);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        parts.push(&rest[..end]);
        rest = &rest[end..];
    }
    parts
}

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

/// The item of a new notification; pending ones are written to one of
/// `due_shards` `by-due` partitions.
fn to_item(notification: &Notification, status: DeliveryStatus, due_shards: u32) -> Item {
    let nt = notification;
    let out_of_line = nt.raw.len() > INLINE_RAW_BYTES;
    let mut item = Item::from([
        ("id".into(), s(&nt.id)),
        (
            "instance_id".into(),
            s(keys::instance_log_partition(nt.instance_id)),
        ),
        ("org_id".into(), s(keys::org_log_partition(&nt.org_id))),
        ("element_key".into(), s(&nt.element_key)),
        ("source".into(), s(nt.source.as_str())),
        ("status".into(), s(status.as_str())),
        (
            "events".into(),
            s(serde_json::to_string(&nt.events).expect("events serialize")),
        ),
        ("dedupe_key".into(), s(&nt.dedupe_key)),
        ("created_at".into(), s(format_date(nt.created_at))),
        ("updated_at".into(), s(format_date(nt.created_at))),
        ("created_key".into(), s(created_key(nt.created_at, &nt.id))),
        ("attempts".into(), n(0)),
        ("schedule_pos".into(), n(0)),
        (
            "next_attempt_at".into(),
            n(nt.created_at.timestamp_millis()),
        ),
        (
            "pending_shard".into(),
            s(keys::due_shard(&nt.id, due_shards)),
        ),
        (
            "expires_at".into(),
            n((nt.created_at + Duration::days(RETENTION_DAYS)).timestamp()),
        ),
    ]);
    if out_of_line {
        item.insert("raw_parts".into(), n(raw_parts(&nt.raw).len()));
    } else {
        item.insert("raw".into(), s(&nt.raw));
    }
    item
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
            // Out of line when `raw_parts` is set: filled by `fill_raw`.
            raw: get_opt_s(item, "raw")?.unwrap_or_default(),
            dedupe_key: get_s(item, "dedupe_key")?,
            created_at: get_time(item, "created_at")?,
        },
        status,
        attempts: get_n(item, "attempts")?,
        schedule_pos: get_opt_n(item, "schedule_pos")?.unwrap_or(0),
        next_attempt_at: get_opt_n::<i64>(item, "next_attempt_at")?
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single()),
        last_status: get_opt_n(item, "last_status")?,
        last_error: get_opt_s(item, "last_error")?,
        updated_at: get_time(item, "updated_at")?,
    })
}

impl Store {
    /// Writes the out-of-line parts of a large raw body, before the
    /// notification that points at them. Each put is conditional on the part
    /// being new: a re-send of the same notification keeps the parts stored
    /// first. Parts of a notification that then turns out a duplicate expire.
    pub(crate) async fn put_raw_parts(&self, nt: &Notification) -> Result<(), StoreError> {
        if nt.raw.len() <= INLINE_RAW_BYTES {
            return Ok(());
        }
        let expires = (nt.created_at + Duration::days(RAW_PART_RETENTION_DAYS)).timestamp();
        for (i, part) in raw_parts(&nt.raw).into_iter().enumerate() {
            let result = self
                .client
                .put_item()
                .table_name(&self.tables.notifications)
                .item("id", s(raw_part_id(&nt.id, i)))
                .item("data", s(part))
                .item("expires_at", n(expires))
                .condition_expression("attribute_not_exists(id)")
                .send()
                .await
                .map_err(classify);
            match result {
                Ok(_) | Err(StoreError::ConditionFailed) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads the out-of-line parts of a notification's raw body back into it.
    async fn fill_raw(
        &self,
        item: &Item,
        stored: &mut StoredNotification,
    ) -> Result<(), StoreError> {
        let Some(count) = get_opt_n::<usize>(item, "raw_parts")? else {
            return Ok(());
        };
        let id = stored.notification.id.clone();
        let mut parts: Vec<Option<String>> = vec![None; count];
        let keys = (0..count)
            .map(|i| Item::from([("id".into(), s(raw_part_id(&id, i)))]))
            .collect();
        for part in self.batch_get(&self.tables.notifications, keys).await? {
            let part_id = get_s(&part, "id")?;
            let n: usize = part_id
                .rsplit_once("#raw")
                .and_then(|(_, n)| n.parse().ok())
                .filter(|n| *n < count)
                .ok_or_else(|| StoreError::Corrupt(format!("raw part id {part_id}")))?;
            parts[n] = Some(get_s(&part, "data")?);
        }
        if parts.iter().any(Option::is_none) {
            // Expired (RAW_PART_RETENTION_DAYS): the events are still there.
            tracing::warn!(event_id = %id, "raw body parts expired");
            stored.notification.raw = r#"{"rawExpired":true}"#.to_string();
            return Ok(());
        }
        stored.notification.raw = parts.into_iter().flatten().collect();
        Ok(())
    }

    /// An item as a notification, its raw body complete.
    async fn read_item(&self, item: &Item) -> Result<StoredNotification, StoreError> {
        let mut stored = from_item(item)?;
        self.fill_raw(item, &mut stored).await?;
        Ok(stored)
    }

    /// The conditional put of a new pending notification, for transactions.
    pub(crate) fn notification_put(&self, notification: &Notification) -> Result<Put, StoreError> {
        Put::builder()
            .table_name(&self.tables.notifications)
            .set_item(Some(to_item(
                notification,
                DeliveryStatus::Pending,
                self.due_shards.write_count(),
            )))
            .condition_expression("attribute_not_exists(id)")
            .build()
            .map_err(|e| StoreError::Config(e.to_string()))
    }

    /// Stores new pending notifications, all or none. Storing the same ones
    /// again (a vendor retry) changes nothing and reports `Duplicate`.
    pub async fn put_notifications(&self, batch: &[Notification]) -> Result<Stored, StoreError> {
        for notification in batch {
            self.put_raw_parts(notification).await?;
        }
        let result = match batch {
            [] => return Ok(Stored::New),
            [single] => self
                .client
                .put_item()
                .table_name(&self.tables.notifications)
                .set_item(Some(to_item(
                    single,
                    DeliveryStatus::Pending,
                    self.due_shards.write_count(),
                )))
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
                        .set_item(Some(to_item(
                            notification,
                            DeliveryStatus::Pending,
                            self.due_shards.write_count(),
                        )))
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
        match out.item {
            Some(item) => Ok(Some(self.read_item(&item).await?)),
            None => Ok(None),
        }
    }

    /// An instance's notifications, newest first, optionally of one status.
    pub async fn list_notifications(
        &self,
        instance_id: u64,
        status: Option<DeliveryStatus>,
        page_size: i32,
        after: Option<&PageCursor>,
    ) -> Result<(Vec<StoredNotification>, Option<PageCursor>), StoreError> {
        let filter = EventFilter {
            any_of: status.map(|s| (s, None)).into_iter().collect(),
            ..Default::default()
        };
        self.list_events(EventScope::Instance(instance_id), &filter, page_size, after)
            .await
    }

    /// Notifications of an instance or of an organization, newest first,
    /// filtered. The index gives ids in order (it projects only what the
    /// filter reads); the items come from the table, consistent.
    pub async fn list_events(
        &self,
        scope: EventScope<'_>,
        filter: &EventFilter,
        page_size: i32,
        after: Option<&PageCursor>,
    ) -> Result<(Vec<StoredNotification>, Option<PageCursor>), StoreError> {
        if filter.matches_nothing {
            return Ok((Vec::new(), None));
        }
        let (index, hash_name, hash_value) = match scope {
            EventScope::Instance(id) => (BY_INSTANCE_INDEX, "instance_id", id.to_string()),
            EventScope::Organization(org) => (BY_ORG_INDEX, "org_id", org.to_string()),
        };
        let mut key_condition = format!("{hash_name} = :h");
        let mut query = self
            .client
            .query()
            .table_name(&self.tables.notifications)
            .index_name(index)
            .expression_attribute_values(":h", s(&hash_value))
            .scan_index_forward(false)
            .limit(page_size);
        // `created_key` is `<RFC 3339 millis, Z>#<id>`: it sorts by time.
        match (filter.since, filter.until) {
            (Some(since), Some(until)) => {
                key_condition.push_str(" AND created_key BETWEEN :since AND :until");
                query = query
                    .expression_attribute_values(":since", s(format_date(since)))
                    .expression_attribute_values(":until", s(format_date(until)));
            }
            (Some(since), None) => {
                key_condition.push_str(" AND created_key >= :since");
                query = query.expression_attribute_values(":since", s(format_date(since)));
            }
            (None, Some(until)) => {
                key_condition.push_str(" AND created_key < :until");
                query = query.expression_attribute_values(":until", s(format_date(until)));
            }
            (None, None) => {}
        }
        query = query.key_condition_expression(key_condition);
        if !filter.any_of.is_empty() {
            // `status` is a reserved word in DynamoDB expressions.
            let mut clauses = Vec::new();
            for (i, (status, attempted)) in filter.any_of.iter().enumerate() {
                let mut clause = format!("#st = :s{i}");
                match attempted {
                    Some(true) => clause.push_str(" AND attempts > :zero"),
                    Some(false) => clause.push_str(" AND attempts = :zero"),
                    None => {}
                }
                clauses.push(format!("({clause})"));
                query = query.expression_attribute_values(format!(":s{i}"), s(status.as_str()));
            }
            if filter.any_of.iter().any(|(_, a)| a.is_some()) {
                query = query.expression_attribute_values(":zero", n(0));
            }
            query = query
                .filter_expression(clauses.join(" OR "))
                .expression_attribute_names("#st", "status");
        }
        if let Some(cursor) = after {
            query = query
                .exclusive_start_key(hash_name, s(&hash_value))
                .exclusive_start_key("created_key", s(cursor.sort_key()))
                .exclusive_start_key("id", s(cursor.item_id()));
        }
        let out = query.send().await.map_err(classify)?;
        let ids: Vec<String> = out
            .items()
            .iter()
            .map(|item| get_s(item, "id"))
            .collect::<Result<_, _>>()?;
        let items = self.notifications_by_id(&ids).await?;
        let next = out.last_evaluated_key().and_then(PageCursor::from_last_key);
        Ok((items, next))
    }

    /// Full notifications for these ids, in this order; ids since expired
    /// are left out.
    async fn notifications_by_id(
        &self,
        ids: &[String],
    ) -> Result<Vec<StoredNotification>, StoreError> {
        let keys = ids
            .iter()
            .map(|id| Item::from([("id".into(), s(id))]))
            .collect();
        let mut found: std::collections::HashMap<String, Item> = std::collections::HashMap::new();
        for item in self.batch_get(&self.tables.notifications, keys).await? {
            found.insert(get_s(&item, "id")?, item);
        }
        let mut items = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(item) = found.get(id) {
                items.push(self.read_item(item).await?);
            }
        }
        Ok(items)
    }
}

/// Whose notifications a listing reads.
#[derive(Debug, Clone, Copy)]
pub enum EventScope<'a> {
    Instance(u64),
    Organization(&'a str),
}

/// A notification claimed for one delivery attempt: nobody else attempts it
/// until the lease ends or this attempt completes.
#[derive(Debug, Clone)]
pub struct Claim {
    pub stored: StoredNotification,
    /// 1-based number of this attempt over the notification's life.
    pub attempt: u32,
    pub lease_owner: String,
}

/// A due notification and its owners, for the sweep's fair shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueNotification {
    pub id: String,
    pub instance_id: u64,
    pub org_id: String,
}

/// How an attempt ended, as recorded on the notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    Delivered {
        status: u16,
    },
    Retry {
        next_at: DateTime<Utc>,
        schedule_pos: u32,
        status: Option<u16>,
        error: String,
    },
    Failed {
        status: Option<u16>,
        error: String,
    },
    /// Held: delivery is paused for the instance.
    Queued {
        reason: String,
    },
}

impl Store {
    /// Claims a due, pending, unleased notification for one attempt and
    /// counts the attempt. `None` when it is not due, not pending, or another
    /// dispatcher holds it: the caller simply skips it.
    pub async fn claim_notification(
        &self,
        id: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Option<Claim>, StoreError> {
        let owner = crate::ids::new_request_id();
        let out = self
            .client
            .update_item()
            .table_name(&self.tables.notifications)
            .key("id", s(id))
            .update_expression("SET lease_until = :lu, lease_owner = :lo, attempts = attempts + :one")
            .condition_expression(
                "#st = :pending AND next_attempt_at <= :now AND (attribute_not_exists(lease_until) OR lease_until < :now)",
            )
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":pending", s(DeliveryStatus::Pending.as_str()))
            .expression_attribute_values(":now", n(now.timestamp_millis()))
            .expression_attribute_values(":lu", n((now + lease).timestamp_millis()))
            .expression_attribute_values(":lo", s(&owner))
            .expression_attribute_values(":one", n(1))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await;
        match out {
            Ok(out) => {
                let item = out
                    .attributes
                    .ok_or_else(|| StoreError::Corrupt("claim returned no item".into()))?;
                let stored = self.read_item(&item).await?;
                Ok(Some(Claim {
                    attempt: stored.attempts,
                    stored,
                    lease_owner: owner,
                }))
            }
            Err(e) => match classify(e) {
                StoreError::ConditionFailed => Ok(None),
                other => Err(other),
            },
        }
    }

    /// Records how a claimed attempt ended, and the attempt itself when one
    /// was sent (in the same UpdateItem while the notification's log has
    /// room; see [`super::attempts`]). Conditional on still holding the
    /// lease, so a slow dispatcher whose lease ran out cannot overwrite the
    /// outcome of the one that took over; its attempt is still recorded,
    /// apart.
    pub async fn complete_attempt(
        &self,
        claim: &Claim,
        completion: &Completion,
        attempt: Option<&AttemptRecord>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let inline = attempt.filter(|a| a.inline());
        if let Some(apart) = attempt.filter(|a| !a.inline()) {
            self.record_attempt(apart).await?;
        }
        let mut update = self
            .client
            .update_item()
            .table_name(&self.tables.notifications)
            .key("id", s(&claim.stored.notification.id))
            .condition_expression("lease_owner = :me")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":me", s(&claim.lease_owner))
            .expression_attribute_values(":now", s(format_date(now)));
        let (status, set, remove) = match completion {
            Completion::Delivered { status: code } => {
                update = update.expression_attribute_values(":code", n(*code));
                (
                    DeliveryStatus::Delivered,
                    "SET #st = :st, updated_at = :now, last_status = :code",
                    "REMOVE pending_shard, lease_until, lease_owner, last_error",
                )
            }
            Completion::Retry {
                next_at,
                schedule_pos,
                status: code,
                error,
            } => {
                update = update
                    .expression_attribute_values(":next", n(next_at.timestamp_millis()))
                    .expression_attribute_values(":pos", n(*schedule_pos))
                    .expression_attribute_values(":err", s(error))
                    .expression_attribute_values(":code", n(code.unwrap_or(0)));
                (
                    DeliveryStatus::Pending,
                    "SET #st = :st, updated_at = :now, next_attempt_at = :next, schedule_pos = :pos, last_error = :err, last_status = :code",
                    "REMOVE lease_until, lease_owner",
                )
            }
            Completion::Failed {
                status: code,
                error,
            } => {
                update = update
                    .expression_attribute_values(":err", s(error))
                    .expression_attribute_values(":code", n(code.unwrap_or(0)))
                    .expression_attribute_values(":exp", n(retention_from(now)));
                (
                    DeliveryStatus::Failed,
                    "SET #st = :st, updated_at = :now, last_error = :err, last_status = :code, expires_at = :exp",
                    "REMOVE pending_shard, lease_until, lease_owner",
                )
            }
            Completion::Queued { reason } => {
                update = update
                    .expression_attribute_values(":err", s(reason))
                    .expression_attribute_values(":exp", n(retention_from(now)));
                (
                    DeliveryStatus::Queued,
                    "SET #st = :st, updated_at = :now, last_error = :err, expires_at = :exp",
                    "REMOVE pending_shard, lease_until, lease_owner",
                )
            }
        };
        let expression = match inline {
            Some(a) => {
                update = update
                    .expression_attribute_values(":alog", a.as_log_entry())
                    .expression_attribute_values(
                        ":nolog",
                        aws_sdk_dynamodb::types::AttributeValue::L(Vec::new()),
                    );
                format!("{set}, attempt_log = list_append(if_not_exists(attempt_log, :nolog), :alog) {remove}")
            }
            None => format!("{set} {remove}"),
        };
        let result = update
            .update_expression(expression)
            .expression_attribute_values(":st", s(status.as_str()))
            .send()
            .await
            .map_err(classify);
        if let (Err(StoreError::ConditionFailed), Some(a)) = (&result, inline) {
            // The attempt was sent even though its lease ran out.
            self.record_attempt(a).await?;
        }
        result.map(|_| ())
    }

    /// Pending notifications due by `now`, with whose they are, reading up to
    /// `scan_per_shard` of each shard in due order. The sweep reads further
    /// than it will attempt, so that one tenant's backlog at the head of a
    /// shard cannot hide another tenant's notification behind it.
    ///
    /// The `by-due` index holds keys only; owners come from one BatchGetItem
    /// per 100 ids (projected to three small attributes).
    pub async fn due_notifications(
        &self,
        now: DateTime<Utc>,
        scan_per_shard: usize,
    ) -> Result<Vec<DueNotification>, StoreError> {
        let mut ids = Vec::new();
        // Every shard a writer may have used, the old count's too: a pending
        // notification keeps its shard until it leaves `pending`.
        for shard in 0..self.due_shards.read_count() {
            let mut start = None;
            let mut read = 0usize;
            loop {
                let page = (scan_per_shard - read).min(1_000) as i32;
                let out = self
                    .client
                    .query()
                    .table_name(&self.tables.notifications)
                    .index_name(BY_DUE_INDEX)
                    .key_condition_expression("pending_shard = :p AND next_attempt_at <= :now")
                    .expression_attribute_values(":p", s(keys::due_shard_name(shard)))
                    .expression_attribute_values(":now", n(now.timestamp_millis()))
                    .limit(page.max(1))
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(classify)?;
                for item in out.items() {
                    ids.push(get_s(item, "id")?);
                }
                read += out.items().len();
                start = out.last_evaluated_key;
                if start.is_none() || read >= scan_per_shard {
                    break;
                }
            }
        }
        let mut owners = std::collections::HashMap::new();
        for chunk in ids.chunks(100) {
            let mut keys: Vec<Item> = chunk
                .iter()
                .map(|id| Item::from([("id".to_string(), s(id))]))
                .collect();
            // Unprocessed keys are asked again a few times; any left are
            // simply not attempted in this sweep.
            for _ in 0..4 {
                if keys.is_empty() {
                    break;
                }
                let request = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .projection_expression("id, instance_id, org_id")
                    .build()
                    .map_err(|e| StoreError::Config(e.to_string()))?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.tables.notifications, request)
                    .send()
                    .await
                    .map_err(classify)?;
                for item in out
                    .responses
                    .as_ref()
                    .and_then(|r| r.get(&self.tables.notifications))
                    .into_iter()
                    .flatten()
                {
                    let instance_id = get_s(item, "instance_id")?.parse().map_err(|_| {
                        StoreError::Corrupt("notification instance id is not numeric".into())
                    })?;
                    owners.insert(get_s(item, "id")?, (instance_id, get_s(item, "org_id")?));
                }
                keys = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.tables.notifications))
                    .map(|k| k.keys)
                    .unwrap_or_default();
            }
        }
        Ok(ids
            .into_iter()
            .filter_map(|id| {
                let (instance_id, org_id) = owners.remove(&id)?;
                Some(DueNotification {
                    id,
                    instance_id,
                    org_id,
                })
            })
            .collect())
    }

    /// Puts a notification back in the queue, due now, with a fresh retry
    /// schedule. Only for the owner's notification of that instance; `false`
    /// when there is none.
    pub async fn requeue_notification(
        &self,
        id: &str,
        org_id: &str,
        instance_id: u64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.requeue_where(
            id,
            now,
            "org_id = :o AND instance_id = :i",
            org_id,
            instance_id,
            false,
        )
        .await
    }

    async fn requeue_where(
        &self,
        id: &str,
        now: DateTime<Utc>,
        condition: &str,
        org_id: &str,
        instance_id: u64,
        only_stuck: bool,
    ) -> Result<bool, StoreError> {
        let mut condition = condition.to_string();
        let mut update = self
            .client
            .update_item()
            .table_name(&self.tables.notifications)
            .key("id", s(id))
            .update_expression(
                "SET #st = :pending, next_attempt_at = :next, schedule_pos = :zero, pending_shard = :shard, updated_at = :now, expires_at = :exp REMOVE lease_until, lease_owner",
            )
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":pending", s(DeliveryStatus::Pending.as_str()))
            .expression_attribute_values(":next", n(now.timestamp_millis()))
            .expression_attribute_values(":exp", n(retention_from(now)))
            .expression_attribute_values(":zero", n(0))
            // Re-queued under the current count, wherever it was before.
            .expression_attribute_values(
                ":shard",
                s(keys::due_shard(id, self.due_shards.write_count())),
            )
            .expression_attribute_values(":now", s(format_date(now)))
            .expression_attribute_values(":o", s(org_id))
            .expression_attribute_values(":i", s(instance_id.to_string()));
        if only_stuck {
            condition.push_str(" AND (#st = :failed OR #st = :queued)");
            update = update
                .expression_attribute_values(":failed", s(DeliveryStatus::Failed.as_str()))
                .expression_attribute_values(":queued", s(DeliveryStatus::Queued.as_str()));
        }
        match update.condition_expression(condition).send().await {
            Ok(_) => Ok(true),
            Err(e) => match classify(e) {
                StoreError::ConditionFailed => Ok(false),
                other => Err(other),
            },
        }
    }

    /// Re-queues the failed or queued notifications of an instance created
    /// at or after `since`, oldest first, reading at most `max_read` of its
    /// notifications: a bounded piece of work. Returns how many were
    /// re-queued and where to go on (`None`: done). Each re-queue is a
    /// conditional write, a few in parallel.
    #[allow(clippy::too_many_arguments)]
    pub async fn requeue_stuck_page(
        &self,
        instance_id: u64,
        org_id: &str,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
        after: Option<&PageCursor>,
        max_read: usize,
    ) -> Result<(usize, Option<PageCursor>), StoreError> {
        use futures_util::stream::{self, StreamExt, TryStreamExt};
        let mut start = after.map(|c| {
            std::collections::HashMap::from([
                ("instance_id".to_string(), s(instance_id.to_string())),
                ("created_key".to_string(), s(c.sort_key())),
                ("id".to_string(), s(c.item_id())),
            ])
        });
        let mut read = 0;
        let mut count = 0;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.tables.notifications)
                .index_name(BY_INSTANCE_INDEX)
                .key_condition_expression("instance_id = :i AND created_key >= :since")
                .filter_expression("#st = :failed OR #st = :queued")
                .projection_expression("id, instance_id, created_key")
                .expression_attribute_names("#st", "status")
                .expression_attribute_values(":i", s(instance_id.to_string()))
                .expression_attribute_values(":since", s(format_date(since)))
                .expression_attribute_values(":failed", s(DeliveryStatus::Failed.as_str()))
                .expression_attribute_values(":queued", s(DeliveryStatus::Queued.as_str()))
                .limit((max_read - read).clamp(1, 1_000) as i32)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(classify)?;
            read += out.scanned_count().max(0) as usize;
            let ids = out
                .items()
                .iter()
                .map(|item| get_s(item, "id"))
                .collect::<Result<Vec<_>, _>>()?;
            let requeued: Vec<bool> = stream::iter(ids)
                .map(|id| async move {
                    self.requeue_where(
                        &id,
                        now,
                        "org_id = :o AND instance_id = :i",
                        org_id,
                        instance_id,
                        true,
                    )
                    .await
                })
                .buffer_unordered(8)
                .try_collect()
                .await?;
            count += requeued.into_iter().filter(|r| *r).count();
            start = out.last_evaluated_key;
            let next = start.as_ref().and_then(PageCursor::from_last_key);
            if start.is_none() {
                return Ok((count, None));
            }
            if read >= max_read {
                return Ok((count, next));
            }
        }
    }

    /// Completes a claimed attempt as `queued`, but only if the instance is
    /// still paused at the delivery epoch the dispatcher read: if a recover
    /// resumed it meanwhile, nothing is written and `false` says "deliver".
    pub async fn queue_if_still_paused(
        &self,
        claim: &Claim,
        reason: &str,
        now: DateTime<Utc>,
        epoch_read: u64,
    ) -> Result<bool, StoreError> {
        use aws_sdk_dynamodb::types::{ConditionCheck, Update};
        let n_id = &claim.stored.notification;
        let mut check = ConditionCheck::builder()
            .table_name(&self.tables.instances)
            .key("id", s(n_id.instance_id.to_string()))
            .expression_attribute_values(":epoch", n(epoch_read));
        check = if epoch_read == 0 {
            check.condition_expression(
                "attribute_exists(events_paused) AND (attribute_not_exists(delivery_epoch) OR delivery_epoch = :epoch)",
            )
        } else {
            check
                .condition_expression("attribute_exists(events_paused) AND delivery_epoch = :epoch")
        };
        let update = Update::builder()
            .table_name(&self.tables.notifications)
            .key("id", s(&n_id.id))
            .update_expression(
                "SET #st = :st, updated_at = :now, last_error = :err, expires_at = :exp REMOVE pending_shard, lease_until, lease_owner",
            )
            .condition_expression("lease_owner = :me")
            .expression_attribute_values(":exp", n(retention_from(now)))
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":st", s(DeliveryStatus::Queued.as_str()))
            .expression_attribute_values(":now", s(format_date(now)))
            .expression_attribute_values(":err", s(reason))
            .expression_attribute_values(":me", s(&claim.lease_owner))
            .build()
            .map_err(|e| StoreError::Config(e.to_string()))?;
        let out = self
            .client
            .transact_write_items()
            .transact_items(
                TransactWriteItem::builder()
                    .condition_check(
                        check
                            .build()
                            .map_err(|e| StoreError::Config(e.to_string()))?,
                    )
                    .build(),
            )
            .transact_items(TransactWriteItem::builder().update(update).build())
            .send()
            .await;
        match out.map_err(classify) {
            Ok(_) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Writes notifications with a given status in batches of 25
    /// (BatchWriteItem), unconditionally: for fixtures and load tests that
    /// need many items fast (moto takes about 150 single writes a second).
    /// Not for ingestion, whose writes must be conditional.
    pub async fn import_notifications(
        &self,
        batch: &[Notification],
        status: DeliveryStatus,
    ) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
        for chunk in batch.chunks(25) {
            let mut requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|nt| {
                    let mut item = to_item(nt, status, self.due_shards.write_count());
                    if status != DeliveryStatus::Pending {
                        item.remove("pending_shard");
                    }
                    Ok(WriteRequest::builder()
                        .put_request(
                            PutRequest::builder()
                                .set_item(Some(item))
                                .build()
                                .map_err(|e| StoreError::Config(e.to_string()))?,
                        )
                        .build())
                })
                .collect::<Result<_, StoreError>>()?;
            for _ in 0..10 {
                if requests.is_empty() {
                    break;
                }
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.tables.notifications, requests)
                    .send()
                    .await
                    .map_err(classify)?;
                requests = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.tables.notifications))
                    .unwrap_or_default();
            }
            if !requests.is_empty() {
                return Err(StoreError::Unavailable(
                    "BatchWriteItem left items unprocessed".into(),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_parts_cut_at_character_boundaries_and_join_back() {
        let raw = "é".repeat(RAW_PART_BYTES); // 2 bytes each
        let parts = raw_parts(&raw);
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| p.len() <= RAW_PART_BYTES));
        assert_eq!(parts.concat(), raw);
        assert!(raw_parts("").is_empty());
    }
}
