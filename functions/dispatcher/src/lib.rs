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
pub mod fair;
pub mod schedule;

use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, Utc};
use futures_util::FutureExt;
use serde_json::{json, Value};
use shared::events::DeliveryStatus;
use shared::instance_cache::{InstanceCache, Staleness};
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
    /// Notifications a sweep attempts per shard, at most (after fair shares).
    pub sweep_batch: i32,
    /// Due notifications a sweep reads per shard to choose from: further
    /// than it attempts, so one tenant's backlog cannot hide another's.
    pub sweep_scan: usize,
    /// Fair shares and in-flight caps per instance and organization.
    pub shares: fair::Shares,
    /// How long a notification of an instance whose secrets do not open
    /// (wrong key after a deploy, a rolled-back element) waits before the
    /// next try. It is never failed for that: the operator fixes the key.
    pub unreadable_retry: Duration,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        Self {
            attempt_timeout: StdDuration::from_secs(15),
            schedule: RetrySchedule::default(),
            concurrency: 16,
            inline_retry_max: StdDuration::from_secs(10),
            sweep_batch: 100,
            sweep_scan: 1_000,
            shares: fair::Shares {
                instance_share: 100,
                org_share: 400,
                instance_in_flight: 4,
                org_in_flight: 8,
                instance_budget: StdDuration::from_secs(30),
            },
            unreadable_retry: Duration::minutes(5),
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
    /// The ingestion spool, drained at the start of every sweep.
    pub spool: Option<shared::spool::Spool>,
    /// Instances read within the staleness bound: a first attempt that
    /// succeeds is then two store requests, the claim and the completion.
    pub instances: InstanceCache,
}

/// Receives of 10 spooled messages per sweep, at most: 500 webhooks a
/// minute, far above what an outage leaves behind.
pub const SPOOL_DRAIN_ROUNDS: usize = 50;

impl App {
    pub fn new(store: Store, settings: Settings, config: DispatchConfig) -> Self {
        let http = shared::outbound::guarded_client(settings.guard, config.attempt_timeout)
            .expect("the HTTP client builds with static settings");
        Self {
            store,
            settings,
            config,
            http,
            spool: None,
            instances: InstanceCache::default(),
        }
    }

    pub fn with_spool(mut self, spool: shared::spool::Spool) -> Self {
        self.spool = Some(spool);
        self
    }

    pub async fn from_env() -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let (sdk, settings, store) = shared::settings::function_context().await?;
        let spool = shared::spool::Spool::from_env(&sdk);
        let mut config = DispatchConfig::default();
        if let Ok(secs) = std::env::var("CALLBACK_TIMEOUT_SECONDS") {
            config.attempt_timeout = StdDuration::from_secs(secs.trim().parse()?);
        }
        let number = |name: &str, default: usize| -> Result<usize, String> {
            match std::env::var(name) {
                Ok(v) => v
                    .trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("{name} must be a positive integer, got {v:?}")),
                Err(_) => Ok(default),
            }
        };
        let shares = &mut config.shares;
        shares.instance_share = number("DISPATCH_INSTANCE_SHARE", shares.instance_share)?;
        shares.org_share = number("DISPATCH_ORG_SHARE", shares.org_share)?;
        shares.instance_in_flight =
            number("DISPATCH_INSTANCE_IN_FLIGHT", shares.instance_in_flight)?;
        shares.org_in_flight = number("DISPATCH_ORG_IN_FLIGHT", shares.org_in_flight)?;
        shares.instance_budget =
            StdDuration::from_secs(number("DISPATCH_INSTANCE_BUDGET_SECONDS", 30)? as u64);
        // Deliveries in flight per invocation (template: DispatchConcurrency).
        config.concurrency = number("DISPATCH_CONCURRENCY", config.concurrency)?;
        let mut app = Self::new(store, settings, config);
        app.instances = InstanceCache::new(
            Staleness::from_env()?,
            shared::instance_cache::DEFAULT_CAPACITY,
        );
        Ok(match spool {
            Some(spool) => app.with_spool(spool),
            None => app,
        })
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
    let mut record = app.instances.get(&app.store, n.instance_id).await?;
    if record.as_ref().is_some_and(|r| r.events_paused.is_some()) {
        // A pause read from the cache may have been lifted by a recover
        // since: read again before holding the notification back. (Without
        // this, every attempt after a recover ran the conditional queueing
        // on a stale pause, and concurrent ones conflicted.)
        record = app.instances.refresh(&app.store, n.instance_id).await?;
    }
    let instance = match record {
        Some(record) => match record.open(&app.settings.secrets) {
            Ok(instance) => Some(instance),
            Err(e) => {
                // Unreadable is not deleted: a wrong key after a deploy or a
                // rolled-back element is fixed by the operator, and then the
                // notification is delivered. Retry, keep the schedule where it
                // is, and raise the alarm (template.yaml InstanceUnreadableAlarm).
                tracing::error!(error = %e, "instance unreadable; the notification waits");
                shared::metrics::emit_alarmed(
                    &n.element_key,
                    &[("InstanceUnreadable", 1.0, shared::metrics::Unit::Count)],
                );
                let at = now + app.config.unreadable_retry;
                let completion = Completion::Retry {
                    next_at: at,
                    schedule_pos: claim.stored.schedule_pos,
                    status: None,
                    error: "the instance's configuration cannot be read with this deployment's keys; retrying".into(),
                };
                app.store
                    .complete_attempt(&claim, &completion, None, now)
                    .await?;
                return Ok(Outcome::RetryScheduled { at });
            }
        },
        None => None,
    };
    let Some(instance) = instance else {
        let completion = Completion::Failed {
            status: None,
            error: "the instance no longer exists".into(),
        };
        app.store
            .complete_attempt(&claim, &completion, None, now)
            .await?;
        return Ok(Outcome::Failed);
    };
    if let Some(paused) = &instance.events_paused {
        // Queued only if still paused as read: a recover in between resumed
        // delivery, and then this attempt simply goes on.
        if app
            .store
            .queue_if_still_paused(
                &claim,
                &format!("events are paused: {paused}"),
                now,
                instance.delivery_epoch,
            )
            .await?
        {
            return Ok(Outcome::Queued);
        }
        tracing::info!("delivery resumed while this attempt read the pause; delivering");
    }

    let sent = send(app, &claim, &instance).await;
    let finished = now + Duration::milliseconds(sent.latency_ms as i64);
    let record = AttemptRecord {
        notification_id: n.id.clone(),
        attempt: claim.attempt,
        at: now,
        status: sent.status,
        latency_ms: sent.latency_ms,
        response_head: sent.response_head.clone(),
        error: sent.error.clone(),
    };

    let (mut completion, mut outcome) = decide(app, &claim, &sent, finished);
    if let Completion::Queued { reason } = &completion {
        // Whatever the pause finds, this container's copy of the instance
        // is out of date: the next attempt reads it afresh.
        app.instances.forget(instance.id);
        let paused = app
            .store
            .pause_instance_events(instance.id, reason, finished, instance.delivery_epoch)
            .await?;
        if !paused {
            // A recover resumed delivery after this attempt read the
            // instance: its 410 predates the recover and must not undo it.
            // The notification is retried at once instead of queued.
            completion = Completion::Retry {
                next_at: finished,
                schedule_pos: claim.stored.schedule_pos,
                status: sent.status,
                error: "410 Gone answered before a recover; retrying".into(),
            };
            outcome = Outcome::RetryScheduled { at: finished };
        }
    }
    app.store
        .complete_attempt(&claim, &completion, Some(&record), finished)
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
    /// Due, but over their instance's or organization's share of this sweep:
    /// left for the next one.
    pub deferred: usize,
    pub errors: usize,
}

/// One attempt, isolated: a panic inside it (a bug, or a remote value that
/// slipped past a clamp) is caught, logged and counted, and the other
/// attempts of the invocation go on. The notification keeps its lease and is
/// tried again after it. Needs `panic = "unwind"` (the release profile).
async fn isolated<F, T>(id: &str, work: F) -> Result<T, StoreError>
where
    F: std::future::Future<Output = Result<T, StoreError>>,
{
    match std::panic::AssertUnwindSafe(work).catch_unwind().await {
        Ok(result) => result,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(event_id = %id, panic = %what, "delivery panicked; the others go on");
            shared::metrics::emit_alarmed(
                "all",
                &[("DeliveryPanics", 1.0, shared::metrics::Unit::Count)],
            );
            Err(StoreError::Corrupt(format!("delivery panicked: {what}")))
        }
    }
}

/// The `rate(1 minute)` trigger: attempts the pending notifications due by
/// `now`, each owner within its fair share, with bounded concurrency.
pub async fn sweep(app: &App, now: DateTime<Utc>) -> Result<SweepReport, StoreError> {
    drain_spool(app).await;
    let due = app
        .store
        .due_notifications(now, app.config.sweep_scan.max(1))
        .await?;
    // `sweep_batch` per shard read, the old count's shards included.
    let total =
        app.config.sweep_batch.max(1) as usize * app.store.due_shards().read_count() as usize;
    let (chosen, deferred) = fair::select(due, &app.config.shares, total);
    let mut report = SweepReport {
        due: chosen.len() + deferred,
        deferred,
        ..Default::default()
    };
    let outcomes = fair::run(
        chosen,
        &app.config.shares,
        app.config.concurrency,
        |due| async move { isolated(&due.id, attempt(app, &due.id, now)).await },
    )
    .await;
    for outcome in outcomes {
        let Some(outcome) = outcome else {
            report.deferred += 1;
            continue;
        };
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

/// Stores what ingestion spooled while the state store was down (the same
/// conditional writes, so nothing twice). Its new pending notifications reach
/// the stream, and this sweep, like any others. A failure is logged: the
/// messages stay queued for the next sweep.
pub async fn drain_spool(app: &App) -> Option<shared::spool::DrainReport> {
    let spool = app.spool.as_ref()?;
    match spool.drain(&app.store, SPOOL_DRAIN_ROUNDS).await {
        Ok(report) => {
            if report.received > 0 {
                tracing::info!(?report, "ingestion spool drained");
            }
            Some(report)
        }
        Err(e) => {
            tracing::error!(error = %e, "ingestion spool not drained");
            None
        }
    }
}

/// A stream record to attempt.
struct StreamWork {
    sequence: String,
    id: String,
    instance_id: u64,
    org_id: String,
}

impl fair::Owned for StreamWork {
    fn instance_id(&self) -> u64 {
        self.instance_id
    }
    fn org_id(&self) -> &str {
        &self.org_id
    }
}

/// The stream trigger: each record whose new image is a pending notification
/// is attempted, within its owner's fair share of the batch; the rest stay
/// pending and due, so the next sweep takes them in turn. Records that could
/// not be processed (the state store failed) are reported back, so Lambda
/// retries only those.
pub async fn handle_stream(app: &App, event: &Value) -> Value {
    let records: Vec<StreamWork> = event["Records"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let sequence = r["dynamodb"]["SequenceNumber"]
                .as_str()
                .or_else(|| r["eventID"].as_str())?;
            let image = &r["dynamodb"]["NewImage"];
            // The event source's filter (template.yaml), applied here too
            // for the local stream reader: new or re-queued pending
            // notifications, not a claim's own record nor a scheduled retry.
            let pending = image["status"]["S"].as_str() == Some(DeliveryStatus::Pending.as_str())
                && image.get("lease_owner").is_none()
                && image["schedule_pos"]["N"].as_str() == Some("0");
            let id = r["dynamodb"]["Keys"]["id"]["S"].as_str()?;
            // Owners from the new image; a record without them is its own
            // owner (instance 0 is never allocated), so it is still attempted.
            let instance_id = image["instance_id"]["S"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let org_id = image["org_id"]["S"].as_str().unwrap_or(id).to_string();
            pending.then(|| StreamWork {
                sequence: sequence.to_string(),
                id: id.to_string(),
                instance_id,
                org_id,
            })
        })
        .collect();
    let (chosen, deferred) = fair::select(records, &app.config.shares, usize::MAX);
    if deferred > 0 {
        tracing::info!(
            deferred,
            "stream records over their fair share left for the sweep"
        );
    }
    let failures: Vec<Value> = fair::run(
        chosen,
        &app.config.shares,
        app.config.concurrency,
        |work| async move {
            match isolated(&work.id, deliver(app, &work.id)).await {
                Ok(_) => None,
                // A panic is not reported back: Lambda would retry the batch
                // for ever. The notification stays pending for the sweep.
                Err(StoreError::Corrupt(_)) => None,
                Err(e) => {
                    tracing::error!(event_id = %work.id, error = %e, "stream record not processed");
                    Some(json!({ "itemIdentifier": work.sequence }))
                }
            }
        },
    )
    .await
    .into_iter()
    // Not started (the instance's budget was spent): still pending and
    // due, the sweep takes it; not a failure of the batch.
    .flatten()
    .flatten()
    .collect();
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
                    "failed": report.failed, "queued": report.queued, "skipped": report.skipped,
                    "deferred": report.deferred, "errors": report.errors })
        }
        Err(e) => {
            tracing::error!(error = %e, "retry sweep failed");
            json!({ "error": "retry sweep failed" })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A panic inside one delivery becomes that delivery's error; the other
    /// deliveries of the invocation (run by `fair::run` alongside) finish.
    #[tokio::test]
    async fn a_panicking_delivery_is_isolated_from_the_others() {
        let shares = fair::Shares {
            instance_share: 10,
            org_share: 10,
            instance_in_flight: 2,
            org_in_flight: 4,
            instance_budget: StdDuration::from_secs(60),
        };
        let work: Vec<shared::store::DueNotification> = (0..4)
            .map(|i| shared::store::DueNotification {
                id: format!("evt_{i}"),
                instance_id: i,
                org_id: "org".into(),
            })
            .collect();
        let outcomes = fair::run(work, &shares, 2, |due| async move {
            isolated(&due.id, async {
                if due.id == "evt_1" {
                    panic!("a remote value slipped past a clamp");
                }
                Ok::<_, StoreError>(due.id.clone())
            })
            .await
        })
        .await;
        let ok: Vec<_> = outcomes
            .iter()
            .flatten()
            .filter_map(|r| r.as_ref().ok())
            .collect();
        assert_eq!(ok.len(), 3, "{outcomes:?}");
        assert!(outcomes
            .iter()
            .flatten()
            .any(|r| matches!(r, Err(StoreError::Corrupt(m)) if m.contains("slipped past"))));
    }
}
