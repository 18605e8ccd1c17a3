//! DynamoDB state. This module is the only place that knows the table layout;
//! everything else speaks in [`InstanceRecord`]s and [`Account`]s.
//!
//! Tables (defined in `template.yaml`, created locally from it):
//!
//! **InstancesTable** — key `id` (S, the numeric instance id as text).
//! | index | keys | used for |
//! |---|---|---|
//! | table | `id` | get/replace/delete one instance (every write conditional on `org_id` and `version`) |
//! | table, Scan projected to `id, sealed_secrets` | | `ce-admin reseal`: each re-seal conditional on the old sealed value |
//! | `by-org` | `org_id`, `created_key` (`<createdDate>#<id>`) | list an organization's instances, newest first, paged; its quotas (projected to `id, poll_interval`) |
//! | `by-poll-interval` | `poll_interval` (N), `id` | the poller's instances for one interval (sparse: only polling instances) |
//! | `by-store` | `store_key` (`<element>#<store identity>`) | route a webhook that carries no instance id (sparse) |
//!
//! `events_paused` and `delivery_epoch` (N, counts resumes) are written only
//! by the dispatcher's pause (conditional on the epoch it read) and by
//! recover's resume (which adds 1), never by instance updates.
//!
//! **NotificationsTable** — key `id` (S, `evt_<hex>`, derived from the instance
//! and the vendor's dedupe key, so a vendor retry maps to the same item).
//! | index | keys | used for |
//! |---|---|---|
//! | table | `id` | store once (`attribute_not_exists(id)`), read one event |
//! | `by-instance` | `instance_id`, `created_key` (`<createdDate>#<id>`) | an instance's event log, newest first, filtered by `status` |
//! | `by-due` | `pending_shard` (`p0`..`p<DUE_SHARDS - 1>`, default 4, only while pending; the sweep reads `max(DUE_SHARDS, DUE_SHARDS_PREVIOUS)`), `next_attempt_at` (N, ms) | the retry sweep: pending notifications due now (keys only; owners then by BatchGetItem projected to `id, instance_id, org_id`, for fair shares) |
//! Items expire through TTL on `expires_at` (30 days). Delivery claims a
//! notification with a lease (`lease_until`, `lease_owner`); completing an
//! attempt is conditional on still holding it; completing it as `queued` is
//! a transaction with a condition check that the instance is still paused at
//! the epoch the dispatcher read. Recover re-queues page by page through
//! `by-instance` (a cursor per call). `import_notifications` writes with
//! BatchWriteItem, unconditionally: fixtures and load tests only.
//!
//! The first 24 attempts of a notification are kept in its own
//! `attempt_log` list (status, latency, first 1 KiB of the response, error),
//! appended by the completion's UpdateItem (`attempts.rs`).
//!
//! **DeliveriesTable** — key `notification_id` (S), `attempt` (N): one item
//! per delivery attempt past the 24th, or whose completion lost its lease
//! (and every attempt of notifications from before `attempt_log`). The
//! delivery log of one event reads both. TTL on `expires_at`.
//!
//! **PollStateTable** — key `pk` (S, `instance#<id>`), `sk` (S).
//! | item (`sk`) | attributes | used for |
//! |---|---|---|
//! | `lease` | `owner`, `lease_until` | one poller per instance: conditional put if absent or expired |
//! | `cursor#<resource>` | `cursor_ms` | where the next window starts; moved forward only with the lease held, after the notifications it covers are stored |
//! | `seen#<resource>#<object id>#<modified ms>` | `notification_id` | an object version already notified; written in the notification's transaction; TTL 7 days |
//!
//! **AccountsTable** — key `pk` (S).
//! | item | attributes | used for |
//! |---|---|---|
//! | `USER#<sha256(user secret)>` | `org_id`, `org_secret_hash`, `user_name` | authenticate a request with one GetItem |
//! | `ORG#<org_id>` | `name`, `org_secret_hash` | the organization itself |

mod accounts;
mod attempts;
mod attrs;
mod due_shards;
mod finders;
mod instances;
mod intervals;
pub mod keys;
pub mod metering;
mod notifications;
mod poll_state;

pub use accounts::{Account, NewAccount};
pub use attempts::{AttemptRecord, INLINE_ATTEMPTS};
pub use due_shards::{DueShards, MAX_DUE_SHARDS, PENDING_SHARDS};
pub use finders::MAX_FINDER_PATHS;
pub use instances::{OrgUsage, PageCursor, StoreMatches, MAX_INSTANCES_PER_STORE};
pub use intervals::UNCONFIRMED_MEMBER_GRACE_MINUTES;
pub use notifications::{
    Claim, Completion, DueNotification, EventScope, Stored, INLINE_RAW_BYTES, RAW_PART_BYTES,
    RETENTION_DAYS,
};
pub use poll_state::{CursorState, ObjectVersion, PollCheckpoint, MARKER_RETENTION_DAYS};

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::Client;

use crate::error::ApiError;

/// Which template resource each table is, and the environment variable the
/// functions read its name from (`!Ref` of the resource in AWS).
#[derive(Debug, Clone, Copy)]
pub struct TableBinding {
    pub logical_id: &'static str,
    pub env_var: &'static str,
}

pub const TABLE_BINDINGS: &[TableBinding] = &[
    TableBinding {
        logical_id: "InstancesTable",
        env_var: "INSTANCES_TABLE",
    },
    TableBinding {
        logical_id: "AccountsTable",
        env_var: "ACCOUNTS_TABLE",
    },
    TableBinding {
        logical_id: "NotificationsTable",
        env_var: "NOTIFICATIONS_TABLE",
    },
    TableBinding {
        logical_id: "DeliveriesTable",
        env_var: "DELIVERIES_TABLE",
    },
    TableBinding {
        logical_id: "PollStateTable",
        env_var: "POLL_STATE_TABLE",
    },
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tables {
    pub instances: String,
    pub accounts: String,
    pub notifications: String,
    pub deliveries: String,
    pub poll_state: String,
}

impl Tables {
    pub fn from_env() -> Result<Self, StoreError> {
        let read = |var: &str| {
            std::env::var(var)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| StoreError::Config(format!("environment variable {var} is not set")))
        };
        Ok(Self {
            instances: read("INSTANCES_TABLE")?,
            accounts: read("ACCOUNTS_TABLE")?,
            notifications: read("NOTIFICATIONS_TABLE")?,
            deliveries: read("DELIVERIES_TABLE")?,
            poll_state: read("POLL_STATE_TABLE")?,
        })
    }

    /// Local and test table names: the template's logical id behind a prefix.
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            instances: format!("{prefix}InstancesTable"),
            accounts: format!("{prefix}AccountsTable"),
            notifications: format!("{prefix}NotificationsTable"),
            deliveries: format!("{prefix}DeliveriesTable"),
            poll_state: format!("{prefix}PollStateTable"),
        }
    }

    /// The table name for a template logical id.
    pub fn name_for(&self, logical_id: &str) -> Option<&str> {
        match logical_id {
            "InstancesTable" => Some(&self.instances),
            "AccountsTable" => Some(&self.accounts),
            "NotificationsTable" => Some(&self.notifications),
            "DeliveriesTable" => Some(&self.deliveries),
            "PollStateTable" => Some(&self.poll_state),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Store {
    /// The client every store call goes through: `base` with the meter.
    client: Client,
    /// The client as given, without this store's meter, for building other
    /// clients from it (a function's own credentials, a proxy endpoint).
    base: Client,
    meter: metering::RequestMeter,
    tables: Tables,
    /// The `by-due` shard counts (`DUE_SHARDS`, `DUE_SHARDS_PREVIOUS`).
    due_shards: DueShards,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    /// A conditional write found the item not in the expected state.
    #[error("conditional check failed")]
    ConditionFailed,
    #[error("DynamoDB is unavailable: {0}")]
    Unavailable(String),
    #[error("stored item is unreadable: {0}")]
    Corrupt(String),
    /// DynamoDB refused the request itself (`ValidationException`: an item
    /// too large, a malformed expression). Permanent: retrying the same
    /// write fails the same way, so it is not reported as unavailable.
    #[error("DynamoDB refused the request: {0}")]
    Rejected(String),
    #[error("store configuration: {0}")]
    Config(String),
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::ConditionFailed => {
                ApiError::Conflict("the resource was changed concurrently; retry".into())
            }
            StoreError::Unavailable(detail) => {
                tracing::error!(error = %detail, "DynamoDB call failed");
                ApiError::Unavailable("state store is unavailable; retry later".into())
            }
            StoreError::Corrupt(detail)
            | StoreError::Config(detail)
            | StoreError::Rejected(detail) => ApiError::Internal(detail),
        }
    }
}

/// Maps an SDK error: a failed condition (plain or inside a cancelled
/// transaction) is [`StoreError::ConditionFailed`], anything else unavailable.
pub(crate) fn classify<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match err.code() {
        Some("ConditionalCheckFailedException") => StoreError::ConditionFailed,
        Some("TransactionCanceledException")
            if err
                .message()
                .is_some_and(|m| m.contains("ConditionalCheckFailed")) =>
        {
            StoreError::ConditionFailed
        }
        Some("ValidationException") => {
            StoreError::Rejected(err.message().unwrap_or("ValidationException").to_string())
        }
        _ => StoreError::Unavailable(DisplayErrorContext(&err).to_string()),
    }
}

/// A failed `TransactWriteItems`, read from its cancellation reasons (not
/// its message text): `ConditionFailed` when any item's condition failed.
pub(crate) fn classify_transaction(
    err: SdkError<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
        aws_sdk_dynamodb::config::http::HttpResponse,
    >,
) -> StoreError {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    if let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
        err.as_service_error()
    {
        if cancelled
            .cancellation_reasons()
            .iter()
            .any(|r| r.code() == Some("ConditionalCheckFailed"))
        {
            return StoreError::ConditionFailed;
        }
    }
    classify(err)
}

impl Store {
    /// Consistent reads of these keys of one table, 100 at a time, asking
    /// again for what DynamoDB leaves unprocessed under load. Keys with no
    /// item are simply absent from the answer, which is in no set order.
    pub(crate) async fn batch_get(
        &self,
        table: &str,
        keys: Vec<attrs::Item>,
    ) -> Result<Vec<attrs::Item>, StoreError> {
        let mut items = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(100) {
            let mut request = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                .consistent_read(true)
                .set_keys(Some(chunk.to_vec()))
                .build()
                .map(Some)
                .map_err(|e| StoreError::Config(e.to_string()))?;
            while let Some(keys) = request.take() {
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(table, keys)
                    .send()
                    .await
                    .map_err(classify)?;
                if let Some(found) = out.responses().and_then(|r| r.get(table)) {
                    items.extend(found.iter().cloned());
                }
                // (An empty map of unprocessed keys means none.)
                request = out
                    .unprocessed_keys()
                    .and_then(|u| u.get(table))
                    .cloned()
                    .filter(|k| !k.keys().is_empty());
            }
        }
        Ok(items)
    }

    pub fn new(client: Client, tables: Tables) -> Self {
        let meter = metering::RequestMeter::default();
        Self {
            client: meter.wrap(&client),
            base: client,
            meter,
            tables,
            due_shards: DueShards::default(),
        }
    }

    /// What this store has asked of DynamoDB so far.
    pub fn meter(&self) -> &metering::RequestMeter {
        &self.meter
    }

    /// The client without this store's meter.
    pub fn base_client(&self) -> &Client {
        &self.base
    }

    /// The same tables, writing and sweeping `by-due` with these counts.
    pub fn with_due_shards(mut self, due_shards: DueShards) -> Self {
        self.due_shards = due_shards;
        self
    }

    pub fn due_shards(&self) -> DueShards {
        self.due_shards
    }

    /// Builds the client from the environment (`AWS_ENDPOINT_URL` points it at
    /// a local server), the table names from `*_TABLE` variables and the
    /// `by-due` shard counts from `DUE_SHARDS` and `DUE_SHARDS_PREVIOUS`.
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, StoreError> {
        Ok(
            Self::new(Client::new(sdk), Tables::from_env()?)
                .with_due_shards(DueShards::from_env()?),
        )
    }

    /// Opens the connection to DynamoDB during init, so the first request
    /// does not pay for DNS and TLS. One GetItem of a key that never exists,
    /// on the table every function may read; a failure is only logged.
    pub async fn warm_up(&self) {
        let result = self
            .client
            .get_item()
            .table_name(&self.tables.instances)
            .key(
                "id",
                aws_sdk_dynamodb::types::AttributeValue::S("warm-up".into()),
            )
            .send()
            .await;
        if let Err(e) = result {
            tracing::warn!(error = %DisplayErrorContext(&e), "DynamoDB warm-up failed; the first request will connect");
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn tables(&self) -> &Tables {
        &self.tables
    }
}

pub async fn client_from_env() -> Client {
    Client::new(&sdk_config_from_env().await)
}

/// The AWS SDK configuration from the environment; `AWS_ENDPOINT_URL` points
/// every client at a local server.
pub async fn sdk_config_from_env() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}
