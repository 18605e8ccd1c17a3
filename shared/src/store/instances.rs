//! Instance items: create, read, list by organization, replace, delete.
//! Every write is conditional: creation on absence, replacement on the owner
//! and the version read, deletion on the owner.

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::attrs::{
    get_n, get_opt_n, get_opt_s, get_s, get_string_list, get_time, n, s, string_list, Item,
};
use super::{classify, Store, StoreError};
use chrono::{DateTime, Utc};

use crate::model::{format_date, InstanceRecord};

pub const BY_ORG_INDEX: &str = "by-org";
pub const BY_STORE_INDEX: &str = "by-store";
pub const BY_POLL_INTERVAL_INDEX: &str = "by-poll-interval";

/// Instances one store (an Ecwid store id, a WooCommerce URL) may have here:
/// a webhook without instance id is routed with one index Query and one
/// BatchGetItem (at most 100 keys). Creating one more is refused.
pub const MAX_INSTANCES_PER_STORE: usize = 100;

/// What [`Store::find_instances_by_store`] found.
#[derive(Debug, Default)]
pub struct StoreMatches {
    pub records: Vec<InstanceRecord>,
    /// Candidates that could not be read (skipped, logged).
    pub unreadable: usize,
    /// More instances than [`MAX_INSTANCES_PER_STORE`] share the store
    /// (possible only through a race of creations); the rest were not read.
    pub truncated: bool,
}

/// Where the next page of a listing starts. Opaque to clients; it holds no
/// organization, so a token can never open another organization's listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageCursor {
    created_key: String,
    id: String,
}

impl PageCursor {
    pub(crate) fn new(sort_key: String, item_id: String) -> Self {
        Self {
            created_key: sort_key,
            id: item_id,
        }
    }

    pub(crate) fn sort_key(&self) -> &str {
        &self.created_key
    }

    pub(crate) fn item_id(&self) -> &str {
        &self.id
    }

    /// Where a `created_key`-sorted query left off, from its last key.
    pub(crate) fn from_last_key(
        key: &std::collections::HashMap<String, AttributeValue>,
    ) -> Option<Self> {
        match (key.get("created_key"), key.get("id")) {
            (Some(AttributeValue::S(c)), Some(AttributeValue::S(i))) => {
                Some(Self::new(c.clone(), i.clone()))
            }
            _ => None,
        }
    }

    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}\n{}", self.created_key, self.id))
    }

    pub fn decode(token: &str) -> Option<Self> {
        let raw = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
        let text = String::from_utf8(raw).ok()?;
        let (created_key, id) = text.split_once('\n')?;
        let id_ok = !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !id_ok || created_key.is_empty() {
            return None;
        }
        Some(Self {
            created_key: created_key.to_string(),
            id: id.to_string(),
        })
    }
}

fn created_key(rec: &InstanceRecord) -> String {
    // RFC 3339 with fixed millis and `Z` sorts lexically by time; the id
    // breaks ties.
    format!("{}#{:016}", format_date(rec.created_at), rec.id)
}

fn to_item(rec: &InstanceRecord) -> Item {
    let mut item = Item::from([
        ("id".into(), s(rec.id.to_string())),
        ("org_id".into(), s(&rec.org_id)),
        ("created_key".into(), s(created_key(rec))),
        ("element_key".into(), s(&rec.element_key)),
        ("name".into(), s(&rec.name)),
        ("tags".into(), string_list(&rec.tags)),
        ("public_config".into(), s(&rec.public_config)),
        ("sealed_secrets".into(), s(&rec.sealed_secrets)),
        ("events".into(), s(&rec.events)),
        ("token_hash".into(), s(&rec.token_hash)),
        (
            "registered_webhooks".into(),
            string_list(&rec.registered_webhooks),
        ),
        ("created_at".into(), s(format_date(rec.created_at))),
        ("updated_at".into(), s(format_date(rec.updated_at))),
        ("version".into(), n(rec.version)),
    ]);
    if let Some(interval) = rec.poll_interval {
        item.insert("poll_interval".into(), n(interval));
    }
    if let Some(key) = &rec.store_key {
        item.insert("store_key".into(), s(key));
    }
    item
}

fn from_item(item: &Item) -> Result<InstanceRecord, StoreError> {
    Ok(InstanceRecord {
        id: get_s(item, "id")?
            .parse()
            .map_err(|_| StoreError::Corrupt("instance id is not numeric".into()))?,
        org_id: get_s(item, "org_id")?,
        element_key: get_s(item, "element_key")?,
        name: get_s(item, "name")?,
        tags: get_string_list(item, "tags")?,
        public_config: get_s(item, "public_config")?,
        sealed_secrets: get_s(item, "sealed_secrets")?,
        events: get_s(item, "events")?,
        poll_interval: get_opt_n(item, "poll_interval")?,
        store_key: get_opt_s(item, "store_key")?,
        token_hash: get_s(item, "token_hash")?,
        registered_webhooks: get_string_list(item, "registered_webhooks")?,
        events_paused: get_opt_s(item, "events_paused")?,
        delivery_epoch: get_opt_n(item, "delivery_epoch")?.unwrap_or(0),
        poll_invalid: get_opt_s(item, "poll_invalid")?,
        webhook_health: get_opt_s(item, "webhook_health")?,
        created_at: get_time(item, "created_at")?,
        updated_at: get_time(item, "updated_at")?,
        version: get_n(item, "version")?,
    })
}

impl Store {
    /// Writes a new instance; `ConditionFailed` if the id is taken.
    pub async fn create_instance(&self, rec: &InstanceRecord) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.tables.instances)
            .set_item(Some(to_item(rec)))
            .condition_expression("attribute_not_exists(id)")
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    pub async fn get_instance(&self, id: u64) -> Result<Option<InstanceRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.instances)
            .key("id", s(id.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        out.item.as_ref().map(from_item).transpose()
    }

    /// The organization's instances, newest first, one page at a time.
    pub async fn list_instances(
        &self,
        org_id: &str,
        page_size: i32,
        after: Option<&PageCursor>,
    ) -> Result<(Vec<InstanceRecord>, Option<PageCursor>), StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.tables.instances)
            .index_name(BY_ORG_INDEX)
            .key_condition_expression("org_id = :o")
            .expression_attribute_values(":o", s(org_id))
            .scan_index_forward(false)
            .limit(page_size);
        if let Some(cursor) = after {
            query = query
                .exclusive_start_key("org_id", s(org_id))
                .exclusive_start_key("created_key", s(&cursor.created_key))
                .exclusive_start_key("id", s(&cursor.id));
        }
        let out = query.send().await.map_err(classify)?;
        let records = out
            .items()
            .iter()
            .map(from_item)
            .collect::<Result<Vec<_>, _>>()?;
        let next = out.last_evaluated_key().and_then(PageCursor::from_last_key);
        Ok((records, next))
    }

    /// One page of every instance's sealed secrets, in table order, for
    /// re-sealing under a new key. `after` is the last id of the previous page.
    pub async fn sealed_secrets_page(
        &self,
        after: Option<u64>,
        page_size: i32,
    ) -> Result<(Vec<(u64, String)>, Option<u64>), StoreError> {
        let mut scan = self
            .client
            .scan()
            .table_name(&self.tables.instances)
            .projection_expression("id, sealed_secrets")
            .limit(page_size);
        if let Some(id) = after {
            scan = scan.exclusive_start_key("id", s(id.to_string()));
        }
        let out = scan.send().await.map_err(classify)?;
        let mut page = Vec::new();
        for item in out.items() {
            let id = get_s(item, "id")?
                .parse()
                .map_err(|_| StoreError::Corrupt("instance id is not numeric".into()))?;
            page.push((id, get_s(item, "sealed_secrets")?));
        }
        let next = match out.last_evaluated_key() {
            Some(key) => Some(
                key.get("id")
                    .and_then(|v| v.as_s().ok())
                    .and_then(|id| id.parse().ok())
                    .ok_or_else(|| StoreError::Corrupt("scan key without an id".into()))?,
            ),
            None => None,
        };
        Ok((page, next))
    }

    /// Replaces an instance's sealed secrets if they are still `expected`:
    /// a PATCH in between (which seals afresh) wins, and `false` says so.
    pub async fn reseal_instance(
        &self,
        id: u64,
        expected: &str,
        resealed: &str,
    ) -> Result<bool, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.tables.instances)
            .key("id", s(id.to_string()))
            .update_expression("SET sealed_secrets = :new")
            .condition_expression("sealed_secrets = :old")
            .expression_attribute_values(":new", s(resealed))
            .expression_attribute_values(":old", s(expected))
            .send()
            .await;
        match out.map_err(classify) {
            Ok(_) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// What an organization uses, for its quotas: how many instances, and
    /// each instance's poll interval. Reads the `by-org` index projected to
    /// two attributes, at most `limit` instances (the quota bounds the cost).
    pub async fn org_usage(&self, org_id: &str, limit: usize) -> Result<OrgUsage, StoreError> {
        let mut usage = OrgUsage::default();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.tables.instances)
                .index_name(BY_ORG_INDEX)
                .key_condition_expression("org_id = :o")
                .expression_attribute_values(":o", s(org_id))
                .projection_expression("id, poll_interval")
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(classify)?;
            for item in out.items() {
                let id: u64 = get_s(item, "id")?
                    .parse()
                    .map_err(|_| StoreError::Corrupt("instance id is not numeric".into()))?;
                usage
                    .instances
                    .push((id, get_opt_n(item, "poll_interval")?));
            }
            start = out.last_evaluated_key;
            if start.is_none() || usage.instances.len() > limit {
                return Ok(usage);
            }
        }
    }

    /// Every instance connected to a store (`<element>#<identity>`), for
    /// webhooks that carry no instance id. Several organizations may connect
    /// the same store, at most [`MAX_INSTANCES_PER_STORE`] of them, so this
    /// costs one Query of the index and one BatchGetItem whatever their
    /// number (plus a retry of keys DynamoDB left unprocessed). An item that
    /// cannot be read is counted and skipped, so one bad candidate does not
    /// fail the webhook for the others. The index is eventually consistent: an
    /// instance created a moment ago may not be found yet, and the vendor's
    /// retry finds it.
    pub async fn find_instances_by_store(
        &self,
        store_key: &str,
    ) -> Result<StoreMatches, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.tables.instances)
            .index_name(BY_STORE_INDEX)
            .key_condition_expression("store_key = :k")
            .expression_attribute_values(":k", s(store_key))
            .limit(MAX_INSTANCES_PER_STORE as i32)
            .send()
            .await
            .map_err(classify)?;
        let mut matches = StoreMatches {
            truncated: out.last_evaluated_key().is_some(),
            ..Default::default()
        };
        let ids: Vec<String> = out
            .items()
            .iter()
            .filter_map(|item| get_s(item, "id").ok())
            .collect();
        matches.unreadable += out.items().len() - ids.len();
        if ids.is_empty() {
            return Ok(matches);
        }
        let keys = ids
            .iter()
            .map(|id| Item::from([("id".to_string(), s(id))]))
            .collect();
        for item in self.batch_get(&self.tables.instances, keys).await? {
            match from_item(&item) {
                // The instance may have moved to another store since the
                // index saw it.
                Ok(rec) if rec.store_key.as_deref() == Some(store_key) => matches.records.push(rec),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "instance item unreadable; skipped");
                    matches.unreadable += 1;
                }
            }
        }
        Ok(matches)
    }

    /// How many instances are connected to a store, counting up to `limit`.
    pub async fn count_instances_by_store(
        &self,
        store_key: &str,
        limit: usize,
    ) -> Result<usize, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.tables.instances)
            .index_name(BY_STORE_INDEX)
            .key_condition_expression("store_key = :k")
            .expression_attribute_values(":k", s(store_key))
            .select(aws_sdk_dynamodb::types::Select::Count)
            .limit(limit as i32)
            .send()
            .await
            .map_err(classify)?;
        Ok(out.count().max(0) as usize)
    }

    /// Replaces an instance if it still belongs to `rec.org_id` and still has
    /// version `expected_version`; `rec.version` must be the next version.
    pub async fn replace_instance(
        &self,
        rec: &InstanceRecord,
        expected_version: u64,
    ) -> Result<(), StoreError> {
        // An update of the attributes this record owns, not a whole-item put:
        // the dispatcher's pause flag lives on the same item and must survive.
        let mut item = to_item(rec);
        item.remove("id");
        let mut sets = Vec::new();
        let mut update = self
            .client
            .update_item()
            .table_name(&self.tables.instances)
            .key("id", s(rec.id.to_string()));
        for (i, (name, value)) in item.into_iter().enumerate() {
            sets.push(format!("#a{i} = :a{i}"));
            update = update
                .expression_attribute_names(format!("#a{i}"), name)
                .expression_attribute_values(format!(":a{i}"), value);
        }
        // A new configuration gets a fresh chance: the invalid mark goes.
        let removes: Vec<&str> = [
            ("poll_interval", rec.poll_interval.is_none()),
            ("store_key", rec.store_key.is_none()),
            ("poll_invalid", true),
        ]
        .iter()
        .filter(|(_, absent)| *absent)
        .map(|(name, _)| *name)
        .collect();
        let mut expression = format!("SET {}", sets.join(", "));
        if !removes.is_empty() {
            expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        update
            .update_expression(expression)
            .condition_expression("org_id = :expected_org AND version = :expected_version")
            .expression_attribute_values(":expected_org", s(&rec.org_id))
            .expression_attribute_values(":expected_version", n(expected_version))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    /// Ids of the instances polled every `interval` minutes, in index order,
    /// after `start_after` (a continuation's starting point).
    pub async fn instances_by_interval(
        &self,
        interval: u32,
        start_after: Option<u64>,
        limit: i32,
    ) -> Result<Vec<u64>, StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.tables.instances)
            .index_name(BY_POLL_INTERVAL_INDEX)
            .expression_attribute_values(":n", n(interval))
            .limit(limit);
        query = match start_after {
            Some(after) => query
                .key_condition_expression("poll_interval = :n AND id > :a")
                .expression_attribute_values(":a", s(after.to_string())),
            None => query.key_condition_expression("poll_interval = :n"),
        };
        let out = query.send().await.map_err(classify)?;
        out.items()
            .iter()
            .map(|item| {
                get_s(item, "id")?
                    .parse()
                    .map_err(|_| StoreError::Corrupt("instance id is not numeric".into()))
            })
            .collect()
    }

    /// Marks an instance invalid: the store refused its credentials. Polling
    /// skips it until an update (which clears the mark) fixes them.
    /// Marks an instance invalid (the store refused its credentials), only
    /// if it is still at the version the poll read: a PATCH that fixed the
    /// credentials meanwhile is not undone. `Ok(false)` when it changed.
    pub async fn mark_instance_poll_invalid(
        &self,
        id: u64,
        reason: &str,
        read_version: u64,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.instances)
            .key("id", s(id.to_string()))
            .update_expression("SET poll_invalid = :r")
            .condition_expression("version = :v")
            .expression_attribute_values(":r", s(format!("{} {reason}", format_date(Utc::now()))))
            .expression_attribute_values(":v", n(read_version))
            .send()
            .await
            .map_err(classify);
        match result {
            Ok(_) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Records a webhook health check. When the check changed the hooks
    /// (`webhook_ids`), the write is conditional on the instance still being
    /// at the version the check read, so a concurrent PATCH's subscription
    /// wins; `Err(ConditionFailed)` then tells the caller to undo its hooks.
    pub async fn record_webhook_health(
        &self,
        id: u64,
        health_json: &str,
        webhook_ids: Option<(&[String], u64)>,
    ) -> Result<(), StoreError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.tables.instances)
            .key("id", s(id.to_string()))
            .expression_attribute_values(":h", s(health_json));
        update = match webhook_ids {
            Some((ids, version)) => update
                .update_expression("SET webhook_health = :h, registered_webhooks = :w")
                .condition_expression("version = :v")
                .expression_attribute_values(":w", string_list(ids))
                .expression_attribute_values(":v", n(version)),
            None => update
                .update_expression("SET webhook_health = :h")
                .condition_expression("attribute_exists(id)"),
        };
        update.send().await.map_err(classify)?;
        Ok(())
    }

    /// Pauses event delivery for an instance (its callback URL answered 410).
    pub async fn pause_instance_events(
        &self,
        id: u64,
        reason: &str,
        at: DateTime<Utc>,
        epoch_read: u64,
    ) -> Result<bool, StoreError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.tables.instances)
            .key("id", s(id.to_string()))
            .update_expression("SET events_paused = :r")
            .expression_attribute_values(":r", s(format!("{} {reason}", format_date(at))));
        // Only if nobody resumed delivery since the writer read the instance:
        // a 410 answered before a recover must not pause after it.
        match epoch_condition(update, epoch_read)
            .send()
            .await
            .map_err(classify)
        {
            Ok(_) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Resumes event delivery for an instance of `org_id`, and counts the
    /// resume, so that pauses and "queued" completions based on an earlier
    /// read fail their condition.
    pub async fn resume_instance_events(&self, id: u64, org_id: &str) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.tables.instances)
            .key("id", s(id.to_string()))
            .update_expression("REMOVE events_paused ADD delivery_epoch :one")
            .condition_expression("org_id = :o")
            .expression_attribute_values(":o", s(org_id))
            .expression_attribute_values(":one", n(1))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    /// Deletes an instance of `org_id` and returns what was deleted, or
    /// `ConditionFailed` if there is no such instance for that organization.
    pub async fn delete_instance(
        &self,
        id: u64,
        org_id: &str,
    ) -> Result<InstanceRecord, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.tables.instances)
            .key("id", s(id.to_string()))
            .condition_expression("org_id = :o")
            .expression_attribute_values(":o", s(org_id))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(classify)?;
        let old = out
            .attributes
            .ok_or_else(|| StoreError::Corrupt("delete returned no item".into()))?;
        from_item(&old)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_cursor_round_trips_and_rejects_garbage() {
        let c = PageCursor {
            created_key: "2026-01-01T00:00:00.000Z#0000000000000042".into(),
            id: "42".into(),
        };
        assert_eq!(PageCursor::decode(&c.encode()), Some(c));
        for bad in [
            "",
            "!!!",
            "bm9uZXdsaW5l",
            &URL_SAFE_NO_PAD.encode("k\nnot-a-number"),
        ] {
            assert_eq!(PageCursor::decode(bad), None, "{bad}");
        }
    }
}

/// An organization's instances and their poll intervals ([`Store::org_usage`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrgUsage {
    pub instances: Vec<(u64, Option<u32>)>,
}

impl OrgUsage {
    /// The distinct poll intervals, leaving out one instance (the one a
    /// PATCH changes).
    pub fn intervals_except(&self, instance: Option<u64>) -> std::collections::BTreeSet<u32> {
        self.instances
            .iter()
            .filter(|(id, _)| Some(*id) != instance)
            .filter_map(|(_, interval)| *interval)
            .collect()
    }
}

/// `attribute_exists(id)` and the delivery epoch still `epoch_read`.
pub(crate) fn epoch_condition(
    update: aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
    epoch_read: u64,
) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
    if epoch_read == 0 {
        update.condition_expression(
            "attribute_exists(id) AND (attribute_not_exists(delivery_epoch) OR delivery_epoch = :epoch)",
        )
    } else {
        update.condition_expression("attribute_exists(id) AND delivery_epoch = :epoch")
    }
    .expression_attribute_values(":epoch", n(epoch_read))
}
