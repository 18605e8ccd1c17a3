//! The dispatcher function: delivers pending notifications to the instance's
//! callback URL, signed, at least once, with a stable id across attempts.
//!
//! Triggers (template.yaml): the NotificationsTable stream (a new pending
//! notification is attempted within about a second; `ReportBatchItemFailures`)
//! and a `rate(1 minute)` sweep of the retries that are due.
//!
//! Every attempt first claims the notification with a conditional write and
//! a lease, so the stream and the sweep never deliver the same notification
//! concurrently; a dispatcher that dies mid-attempt loses its lease and the
//! next sweep delivers again, with the same `webhook-id`.

pub mod callback;
pub mod schedule;

use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, Utc};
use futures_util::stream::{self, StreamExt};
use serde_json::{json, Value};
use shared::events::DeliveryStatus;
use shared::model::Instance;
use shared::settings::Settings;
use shared::store::{AttemptRecord, Claim, Completion, Store, StoreError};
use tracing::Instrument;

use schedule::{parse_retry_after, random_unit, RetrySchedule};

/// Tunables, with the documented defaults.
#[derive(Debug, Clone)]
pub struct DispatchConfig {
    /// Each attempt's timeout.
    pub attempt_timeout: StdDuration,
    pub schedule: RetrySchedule,
    /// At most this many deliveries in flight per invocation.
    pub concurrency: usize,
    /// A retry due within this long is waited for in the same invocation
    /// (the 5 s step), instead of waiting for the next minute's sweep.
    pub inline_retry_max: StdDuration,
    /// Notifications a sweep takes per shard.
    pub sweep_batch: i32,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        Self {
            attempt_timeout: StdDuration::from_secs(15),
            schedule: RetrySchedule::default(),
            concurrency: 16,
            inline_retry_max: StdDuration::from_secs(10),
            sweep_batch: 100,
        }
    }
}

#[derive(Debug, Clone)]
pub struct App {
    pub store: Store,
    pub settings: Settings,
    pub config: DispatchConfig,
    /// One client per container: its connections are reused across
    /// invocations. DNS answers pass the network guard.
    pub http: reqwest::Client,
}

impl App {
    pub fn new(store: Store, settings: Settings, config: DispatchConfig) -> Self {
        let http = shared::outbound::guarded_client(settings.guard, config.attempt_timeout)
            .expect("the HTTP client builds with static settings");
        Self {
            store,
            settings,
            config,
            http,
        }
    }

    pub async fn from_env() -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let (_, settings, store) = shared::settings::function_context().await?;
        let mut config = DispatchConfig::default();
        if let Ok(secs) = std::env::var("CALLBACK_TIMEOUT_SECONDS") {
            config.attempt_timeout = StdDuration::from_secs(secs.trim().parse()?);
        }
        Ok(Self::new(store, settings, config))
    }

    fn lease(&self) -> Duration {
        // Longer than any attempt can take, so a live attempt keeps its claim.
        Duration::from_std(self.config.attempt_timeout).unwrap_or(Duration::seconds(15))
            + Duration::seconds(30)
    }
}

/// What one call of [`deliver`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not due, not pending, or claimed by another dispatcher.
    Skipped,
    Delivered,
    RetryScheduled {
        at: DateTime<Utc>,
    },
    Failed,
    Queued,
}

/// Attempts one notification now, if it is due and unclaimed, and retries
/// inline while the next attempt is due within `inline_retry_max`.
pub async fn deliver(app: &App, id: &str) -> Result<Outcome, StoreError> {
    loop {
        let outcome = attempt(app, id, Utc::now()).await?;
        match outcome {
            Outcome::RetryScheduled { at } => {
                let wait = (at - Utc::now()).to_std().unwrap_or_default();
                if wait > app.config.inline_retry_max {
                    return Ok(outcome);
                }
                tokio::time::sleep(wait).await;
            }
            other => return Ok(other),
        }
    }
}

/// One attempt at `now`: claim, send, record, complete. Everything it logs
/// carries the event id and, once claimed, the instance id.
pub async fn attempt(app: &App, id: &str, now: DateTime<Utc>) -> Result<Outcome, StoreError> {
    attempt_in_span(app, id, now)
        .instrument(shared::logging::delivery_span(id))
        .await
}

async fn attempt_in_span(app: &App, id: &str, now: DateTime<Utc>) -> Result<Outcome, StoreError> {
    let Some(claim) = app.store.claim_notification(id, now, app.lease()).await? else {
        return Ok(Outcome::Skipped);
    };
    let n = &claim.stored.notification;
    shared::logging::record_instance(n.instance_id);
    let instance = match app.store.get_instance(n.instance_id).await? {
        Some(record) => match record.open(&app.settings.secrets) {
            Ok(instance) => Some(instance),
            Err(e) => {
                tracing::error!(error = %e, "instance unreadable");
                None
            }
        },
        None => None,
    };
    let Some(instance) = instance else {
        let completion = Completion::Failed {
            status: None,
            error: "the instance no longer exists".into(),
        };
        app.store.complete_attempt(&claim, &completion, now).await?;
        return Ok(Outcome::Failed);
    };
    if let Some(paused) = &instance.events_paused {
        let completion = Completion::Queued {
            reason: format!("events are paused: {paused}"),
        };
        app.store.complete_attempt(&claim, &completion, now).await?;
        return Ok(Outcome::Queued);
    }

    let sent = send(app, &claim, &instance).await;
    let finished = now + Duration::milliseconds(sent.latency_ms as i64);
    app.store
        .record_attempt(&AttemptRecord {
            notification_id: n.id.clone(),
            attempt: claim.attempt,
            at: now,
            status: sent.status,
            latency_ms: sent.latency_ms,
            response_head: sent.response_head.clone(),
            error: sent.error.clone(),
        })
        .await?;

    let (completion, outcome) = decide(app, &claim, &sent, finished);
    if let Completion::Queued { reason } = &completion {
        app.store
            .pause_instance_events(instance.id, reason, finished)
            .await?;
    }
    app.store
        .complete_attempt(&claim, &completion, finished)
        .await?;
    let latency = (
        "DeliveryLatency",
        sent.latency_ms as f64,
        shared::metrics::Unit::Milliseconds,
    );
    match outcome {
        Outcome::Delivered => shared::metrics::emit(
            &n.element_key,
            &[
                latency,
                ("NotificationsDelivered", 1.0, shared::metrics::Unit::Count),
            ],
        ),
        Outcome::Failed => shared::metrics::emit(
            &n.element_key,
            &[
                latency,
                ("NotificationsFailed", 1.0, shared::metrics::Unit::Count),
            ],
        ),
        _ => shared::metrics::emit(&n.element_key, &[latency]),
    }
    tracing::info!(
        attempt = claim.attempt,
        status = sent.status.unwrap_or(0),
        latency_ms = sent.latency_ms,
        outcome = ?outcome,
        "delivery attempt"
    );
    Ok(outcome)
}

struct Sent {
    status: Option<u16>,
    retry_after: Option<Duration>,
    latency_ms: u64,
    response_head: String,
    error: Option<String>,
}

const RESPONSE_HEAD_BYTES: usize = 1024;

async fn send(app: &App, claim: &Claim, instance: &Instance) -> Sent {
    let started = Instant::now();
    let failed = |error: String| Sent {
        status: None,
        retry_after: None,
        latency_ms: started.elapsed().as_millis() as u64,
        response_head: String::new(),
        error: Some(error),
    };
    let Some(url) = instance.events.callback_url.as_deref() else {
        return failed("the instance has no callback URL".into());
    };
    let parsed = match url::Url::parse(url) {
        Ok(u) => u,
        Err(e) => return failed(format!("callback URL is invalid: {e}")),
    };
    // Literal addresses never reach the guarded resolver; check them here.
    if let Err(e) = app.settings.guard.check_url(&parsed) {
        return failed(format!("refused by the network guard: {e}"));
    }
    let n = &claim.stored.notification;
    let key = shared::config::values::optional_str(
        &instance.configuration,
        "event.notification.signature.key",
    )
    .ok()
    .flatten();
    let request = callback::build(
        &n.id,
        n.callback_body(),
        key.as_deref(),
        Utc::now().timestamp(),
    );
    let mut builder = app.http.post(parsed);
    for (name, value) in &request.headers {
        builder = builder.header(*name, value);
    }
    match builder.body(request.body).send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, Utc::now()));
            let head = read_head(resp).await;
            Sent {
                status: Some(status),
                retry_after,
                latency_ms: started.elapsed().as_millis() as u64,
                response_head: head,
                error: None,
            }
        }
        Err(e) => failed(describe_send_error(&e)),
    }
}

/// The first KiB of the response body, as text.
async fn read_head(mut resp: reqwest::Response) -> String {
    let mut head = Vec::new();
    while head.len() < RESPONSE_HEAD_BYTES {
        match resp.chunk().await {
            Ok(Some(chunk)) => head.extend_from_slice(&chunk),
            _ => break,
        }
    }
    head.truncate(RESPONSE_HEAD_BYTES);
    String::from_utf8_lossy(&head).into_owned()
}

fn describe_send_error(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "could not connect".to_string()
    } else {
        "request failed".to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        text.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    text
}

/// Success is a 2xx only; a 410 pauses the instance; anything else retries
/// on the schedule until it is exhausted.
fn decide(app: &App, claim: &Claim, sent: &Sent, now: DateTime<Utc>) -> (Completion, Outcome) {
    match sent.status {
        Some(code) if (200..300).contains(&code) => {
            (Completion::Delivered { status: code }, Outcome::Delivered)
        }
        Some(410) => (
            Completion::Queued {
                reason: "the callback URL answered 410 Gone; events are paused".into(),
            },
            Outcome::Queued,
        ),
        status => {
            let error = sent
                .error
                .clone()
                .unwrap_or_else(|| format!("callback URL answered {}", status.unwrap_or(0)));
            let failed = claim.stored.schedule_pos + 1;
            match app
                .config
                .schedule
                .next_delay(failed, random_unit(), sent.retry_after)
            {
                Some(delay) => {
                    let at = now + delay;
                    (
                        Completion::Retry {
                            next_at: at,
                            schedule_pos: failed,
                            status,
                            error,
                        },
                        Outcome::RetryScheduled { at },
                    )
                }
                None => (Completion::Failed { status, error }, Outcome::Failed),
            }
        }
    }
}

/// What a sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    pub due: usize,
    pub delivered: usize,
    pub retrying: usize,
    pub failed: usize,
    pub queued: usize,
    pub skipped: usize,
    pub errors: usize,
}

/// The `rate(1 minute)` trigger: attempts every pending notification due by
/// `now`, with bounded concurrency.
pub async fn sweep(app: &App, now: DateTime<Utc>) -> Result<SweepReport, StoreError> {
    let ids = app
        .store
        .due_notification_ids(now, app.config.sweep_batch)
        .await?;
    let mut report = SweepReport {
        due: ids.len(),
        ..Default::default()
    };
    let outcomes: Vec<Result<Outcome, StoreError>> = stream::iter(ids)
        .map(|id| async move { attempt(app, &id, now).await })
        .buffer_unordered(app.config.concurrency.max(1))
        .collect()
        .await;
    for outcome in outcomes {
        match outcome {
            Ok(Outcome::Delivered) => report.delivered += 1,
            Ok(Outcome::RetryScheduled { .. }) => report.retrying += 1,
            Ok(Outcome::Failed) => report.failed += 1,
            Ok(Outcome::Queued) => report.queued += 1,
            Ok(Outcome::Skipped) => report.skipped += 1,
            Err(e) => {
                tracing::error!(error = %e, "sweep attempt failed");
                report.errors += 1;
            }
        }
    }
    Ok(report)
}

/// The stream trigger: each record whose new image is a pending notification
/// is attempted. Records that could not be processed (the state store failed)
/// are reported back, so Lambda retries only those.
pub async fn handle_stream(app: &App, event: &Value) -> Value {
    let records: Vec<(String, String)> = event["Records"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let sequence = r["dynamodb"]["SequenceNumber"]
                .as_str()
                .or_else(|| r["eventID"].as_str())?;
            let image = &r["dynamodb"]["NewImage"];
            let pending = image["status"]["S"].as_str() == Some(DeliveryStatus::Pending.as_str());
            let id = r["dynamodb"]["Keys"]["id"]["S"].as_str()?;
            pending.then(|| (sequence.to_string(), id.to_string()))
        })
        .collect();
    let failures: Vec<Value> = stream::iter(records)
        .map(|(sequence, id)| async move {
            match deliver(app, &id).await {
                Ok(_) => None,
                Err(e) => {
                    tracing::error!(event_id = %id, error = %e, "stream record not processed");
                    Some(json!({ "itemIdentifier": sequence }))
                }
            }
        })
        .buffer_unordered(app.config.concurrency.max(1))
        .filter_map(|f| async move { f })
        .collect()
        .await;
    json!({ "batchItemFailures": failures })
}

/// Routes a Lambda event: a DynamoDB stream batch, or the scheduled sweep.
pub async fn handle_event(app: &App, event: &Value) -> Value {
    if event.get("Records").is_some() {
        return handle_stream(app, event).await;
    }
    match sweep(app, Utc::now()).await {
        Ok(report) => {
            tracing::info!(?report, "retry sweep");
            json!({ "due": report.due, "delivered": report.delivered, "retrying": report.retrying,
                    "failed": report.failed, "queued": report.queued, "skipped": report.skipped })
        }
        Err(e) => {
            tracing::error!(error = %e, "retry sweep failed");
            json!({ "error": "retry sweep failed" })
        }
    }
}
