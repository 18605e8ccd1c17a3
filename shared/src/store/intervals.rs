//! Which instances poll at which interval, as items of the PollState table
//! (`pk = interval#<N>`, `sk = instance#<id>`), read with strong consistency.
//!
//! The `by-poll-interval` index answers the same question, but a GSI is
//! eventually consistent. Removing an interval's EventBridge rule must not
//! race a create at that interval into an instance with no rule, so the
//! removal asks these items instead. A create or an interval change records
//! the membership *before* it ensures the rule; the removal checks the
//! members again *after* deleting the rule and restores it if any appeared.
//! Either the create's ensure comes after the deletion (and restores the
//! rule), or its membership is visible to the strong re-check.
//!
//! A membership whose instance was never written (a create that failed or
//! crashed) only keeps an idle rule alive. It stops counting once it is older
//! than [`UNCONFIRMED_MEMBER_GRACE_MINUTES`], and is then deleted.

use chrono::{DateTime, Duration, Utc};

use super::attrs::{get_opt_n, get_s, n, s};
use super::{classify, Store, StoreError};

/// Longer than any instance create or update can take (API Gateway gives a
/// request 29 s).
pub const UNCONFIRMED_MEMBER_GRACE_MINUTES: i64 = 5;

fn interval_pk(minutes: u32) -> String {
    format!("interval#{minutes}")
}

fn member_sk(instance_id: u64) -> String {
    format!("instance#{instance_id}")
}

impl Store {
    /// Records that `instance_id` polls (or is about to poll) every
    /// `minutes`. Returns the writer's token, for [`Self::undo_interval_member`].
    pub async fn add_interval_member(
        &self,
        minutes: u32,
        instance_id: u64,
        now: DateTime<Utc>,
    ) -> Result<String, StoreError> {
        let writer = crate::ids::new_request_id();
        self.client
            .put_item()
            .table_name(&self.tables.poll_state)
            .item("pk", s(interval_pk(minutes)))
            .item("sk", s(member_sk(instance_id)))
            .item("since", n(now.timestamp_millis()))
            .item("writer", s(&writer))
            .send()
            .await
            .map_err(classify)?;
        Ok(writer)
    }

    /// The instance left the interval (deleted, or moved to another).
    pub async fn remove_interval_member(
        &self,
        minutes: u32,
        instance_id: u64,
    ) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.tables.poll_state)
            .key("pk", s(interval_pk(minutes)))
            .key("sk", s(member_sk(instance_id)))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    /// Takes back a membership whose write failed, unless another request
    /// (a concurrent update that succeeded) has written it since.
    pub async fn undo_interval_member(
        &self,
        minutes: u32,
        instance_id: u64,
        writer: &str,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.tables.poll_state)
            .key("pk", s(interval_pk(minutes)))
            .key("sk", s(member_sk(instance_id)))
            .condition_expression("writer = :me")
            .expression_attribute_values(":me", s(writer))
            .send()
            .await;
        match result.map_err(classify) {
            Ok(_) | Err(StoreError::ConditionFailed) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Whether any instance polls, or is being created or changed to poll,
    /// every `minutes`. Memberships are read strongly; instances written
    /// before memberships existed are found through the index.
    pub async fn interval_in_use(&self, minutes: u32) -> Result<bool, StoreError> {
        let grace = Duration::minutes(UNCONFIRMED_MEMBER_GRACE_MINUTES);
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.tables.poll_state)
                .key_condition_expression("pk = :p")
                .expression_attribute_values(":p", s(interval_pk(minutes)))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(classify)?;
            for item in out.items() {
                let sk = get_s(item, "sk")?;
                let Some(id) = sk
                    .strip_prefix("instance#")
                    .and_then(|id| id.parse::<u64>().ok())
                else {
                    continue;
                };
                let confirmed = self
                    .get_instance(id)
                    .await?
                    .is_some_and(|rec| rec.poll_interval == Some(minutes));
                if confirmed {
                    return Ok(true);
                }
                let since = get_opt_n::<i64>(item, "since")?
                    .and_then(DateTime::<Utc>::from_timestamp_millis)
                    .unwrap_or_default();
                if Utc::now() - since < grace {
                    // A create or an interval change in progress.
                    return Ok(true);
                }
                self.remove_interval_member(minutes, id).await?;
            }
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => break,
            }
        }
        Ok(!self
            .instances_by_interval(minutes, None, 1)
            .await?
            .is_empty())
    }
}
