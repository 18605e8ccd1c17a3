//! The ingestion spool: a verified webhook is never lost to a state-store
//! outage.
//!
//! WooCommerce never retries and ONe publishes no retry policy, so a 5xx to
//! a verified delivery is a lost event. When storing the notifications of a
//! verified webhook fails because DynamoDB is throttled or unreachable, the
//! webhooks function sends them, exactly as they would have been stored, to
//! an SQS queue (template.yaml `IngestSpoolQueue`) and answers 200. The
//! dispatcher's minute sweep drains the queue first, storing each batch with
//! the same conditional writes as ingestion: notification ids derive from
//! the vendor's dedupe key, so a batch drained twice, or a delivery both
//! spooled and later re-sent, is stored once.
//!
//! A message is deleted only after its batch is stored (or found stored);
//! while DynamoDB is still down, draining stops and the messages reappear
//! after their visibility timeout.

use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
use serde::{Deserialize, Serialize};

use crate::events::{Notification, ObjectVersion};
use crate::store::{Store, StoreError, Stored};

/// The queue's URL, set by template.yaml (and by the local runner).
pub const QUEUE_URL_ENV: &str = "INGEST_SPOOL_QUEUE_URL";

/// SQS's message size limit. A batch larger than this cannot be spooled and
/// the delivery is answered 503 as before.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// How long a received message stays invisible to other drainers.
const VISIBILITY_TIMEOUT_SECS: i32 = 60;

/// One instance's notifications of one verified webhook, as they would have
/// been stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpooledBatch {
    pub notifications: Vec<Notification>,
    /// The object versions the webhook reports (markers for the
    /// reconciliation poll), stored with a single notification.
    pub versions: Vec<ObjectVersion>,
}

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("the spooled batch is {0} bytes, over SQS's limit")]
    TooLarge(usize),
    #[error("SQS: {0}")]
    Sqs(String),
}

/// What one drain did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DrainReport {
    pub received: usize,
    pub stored: usize,
    pub duplicates: usize,
    /// Left in the queue: the state store failed again, or unreadable.
    pub left: usize,
}

#[derive(Debug, Clone)]
pub struct Spool {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

fn sqs_error<E: std::error::Error + 'static, R: std::fmt::Debug>(
    e: aws_sdk_sqs::error::SdkError<E, R>,
) -> SpoolError {
    SpoolError::Sqs(aws_sdk_sqs::error::DisplayErrorContext(&e).to_string())
}

/// Stores one batch the way ingestion does: a single notification with the
/// markers of the versions it reports, in one transaction; otherwise the
/// notifications alone, all or none.
pub async fn store_batch(
    store: &Store,
    notifications: &[Notification],
    versions: &[ObjectVersion],
) -> Result<Stored, StoreError> {
    match notifications {
        [single] if !versions.is_empty() => {
            match store
                .put_notification_with_markers(single, versions)
                .await?
            {
                true => Ok(Stored::New),
                false => Ok(Stored::Duplicate),
            }
        }
        _ => store.put_notifications(notifications).await,
    }
}

impl Spool {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    /// The spool named by `INGEST_SPOOL_QUEUE_URL`, if set.
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Option<Self> {
        let url = std::env::var(QUEUE_URL_ENV)
            .ok()
            .filter(|u| !u.is_empty())?;
        Some(Self::new(aws_sdk_sqs::Client::new(sdk), url))
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    /// Spools one batch; `Ok` once SQS holds it durably.
    pub async fn send(&self, batch: &SpooledBatch) -> Result<(), SpoolError> {
        let body = serde_json::to_string(batch).expect("a batch serializes");
        if body.len() > MAX_MESSAGE_BYTES {
            return Err(SpoolError::TooLarge(body.len()));
        }
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(sqs_error)?;
        Ok(())
    }

    /// Stores spooled batches, up to `max_rounds` receives of 10 messages,
    /// and deletes each message whose batch is stored (or was already).
    /// Stops at the first state-store failure: the rest stay queued.
    pub async fn drain(&self, store: &Store, max_rounds: usize) -> Result<DrainReport, SpoolError> {
        let mut report = DrainReport::default();
        for _ in 0..max_rounds {
            let out = self
                .client
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .visibility_timeout(VISIBILITY_TIMEOUT_SECS)
                .wait_time_seconds(0)
                .send()
                .await
                .map_err(sqs_error)?;
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                break;
            }
            report.received += messages.len();
            let mut done = Vec::new();
            let mut store_down = false;
            for (i, message) in messages.iter().enumerate() {
                let Some(handle) = message.receipt_handle() else {
                    continue;
                };
                if store_down {
                    report.left += 1;
                    continue;
                }
                let batch: SpooledBatch = match message
                    .body()
                    .map(serde_json::from_str)
                    .transpose()
                    .ok()
                    .flatten()
                {
                    Some(b) => b,
                    None => {
                        // Our own format, so a bug: kept for a person (the
                        // queue's age alarm), never silently deleted.
                        tracing::error!(
                            message_id = message.message_id().unwrap_or(""),
                            "spooled message unreadable; left in the queue"
                        );
                        report.left += 1;
                        continue;
                    }
                };
                match store_batch(store, &batch.notifications, &batch.versions).await {
                    Ok(stored) => {
                        match stored {
                            Stored::New => report.stored += 1,
                            Stored::Duplicate => report.duplicates += 1,
                        }
                        done.push(
                            DeleteMessageBatchRequestEntry::builder()
                                .id(i.to_string())
                                .receipt_handle(handle)
                                .build()
                                .map_err(|e| SpoolError::Sqs(e.to_string()))?,
                        );
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "spooled batch not stored yet; it stays queued");
                        report.left += 1;
                        store_down = matches!(e, StoreError::Unavailable(_));
                    }
                }
            }
            if !done.is_empty() {
                self.client
                    .delete_message_batch()
                    .queue_url(&self.queue_url)
                    .set_entries(Some(done))
                    .send()
                    .await
                    .map_err(sqs_error)?;
            }
            if store_down {
                break;
            }
        }
        Ok(report)
    }
}
